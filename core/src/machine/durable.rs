//! What of a client outlives its process: my messages the peer has not acknowledged (the
//! outbox), the last message shown from each peer, and this run's numbering.
//!
//! The machine reports every change as a [`StoreOp`] action and a platform store writes it;
//! on the next start the store hands back a [`SavedState`]. The restarted client keeps its
//! run id and numbering, so the outbox goes again under the ids it had, and a peer that
//! already showed one of them shows it once (it de-duplicates by run and id).

use std::collections::VecDeque;

use tracing::debug;

use super::{Action, ClientMachine, MAX_PEERS};
use crate::event::ClientError;
use crate::protocol::{self, ChatFrame, FEATURE_ACKS, MessageId};
use crate::room::RoomId;
use crate::small_map::SmallMap;

/// A change to what must survive a restart, in the order the machine made it. Stores write
/// them in that order; a lost write may cost repeated or missing messages after a restart,
/// never the chat now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// This run's id (also the registration session) and the id my next message gets.
    Numbering {
        run: String,
        next_message: MessageId,
    },
    /// A message of mine went to `peer` (into the outbox when `awaiting_ack`: a peerchat
    /// peer acknowledges it; an original client never does).
    Sent {
        peer: String,
        id: MessageId,
        text: String,
        awaiting_ack: bool,
    },
    /// `peer` has every message of mine numbered up to `upto`: they leave the outbox.
    Acknowledged { peer: String, upto: MessageId },
    /// A message from `peer` was shown; `numbering` is its run and id when it had them.
    Received {
        peer: String,
        text: String,
        numbering: Option<(String, MessageId)>,
    },
    /// A room membership change or message to keep, as a room frame (`crate::room::RoomFrame`):
    /// frames of one room are handed back in the order kept, and checked again on start.
    Room { room: RoomId, frame: String },
}

/// What a store hands back on start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedState {
    /// The run to continue (a new random one for a fresh store).
    pub run: String,
    /// The id my next message gets (ids of the outbox are below it).
    pub next_message: MessageId,
    /// My unacknowledged messages per peer, oldest first: id and text.
    pub outbox: SmallMap<String, Vec<(MessageId, String)>>,
    /// Per peer, the run and id of the last numbered message shown from it.
    pub received: SmallMap<String, (String, MessageId)>,
    /// Per room, its kept frames in the order kept (see [`StoreOp::Room`]).
    pub rooms: SmallMap<RoomId, Vec<String>>,
}

impl SavedState {
    /// Nothing saved yet: a new run numbering from 1.
    pub fn fresh(run: impl Into<String>) -> Self {
        Self {
            run: run.into(),
            next_message: 1,
            ..Self::default()
        }
    }
}

/// The machine's memory of what outlives a chat and a process.
#[derive(Debug, Default)]
pub(super) struct Durable {
    /// Messages of mine waiting for a chat with their peer: encoded frames, oldest first.
    /// A chat takes them over when it opens and gives back what is unacknowledged when it
    /// ends.
    pub outbox: SmallMap<String, VecDeque<(MessageId, String)>>,
    /// Per peer, the run and id of the last numbered message shown.
    pub received: SmallMap<String, (String, MessageId)>,
}

/// Takes the acknowledgements off frames that will go again, perhaps to another run of the
/// peer: an ack names the peer's numbering, and one from its old run would confirm
/// messages of its new run that never arrived.
pub(super) fn without_acks(frames: &mut VecDeque<(MessageId, String)>) {
    for (_, frame) in frames.iter_mut() {
        if let Some(ChatFrame::Message {
            id,
            text,
            ack: Some(_),
        }) = ChatFrame::decode(frame)
        {
            *frame = ChatFrame::Message {
                id,
                text,
                ack: None,
            }
            .encode();
        }
    }
}

impl ClientMachine {
    /// A client for `username` continuing what `saved` holds: the same run (so the broker
    /// and peers see the same session), numbering where it stopped, the outbox to deliver
    /// once online.
    pub fn resume(username: &str, saved: SavedState) -> Result<Self, ClientError> {
        let mut machine = Self::new(username, &saved.run)?;
        let mut next = saved.next_message.max(1);
        for (peer, messages) in saved.outbox {
            if protocol::validate_username(&peer).is_err() || peer == machine.me {
                debug!(%peer, "saved outbox for an impossible peer dropped");
                continue;
            }
            let frames: VecDeque<_> = messages
                .into_iter()
                .map(|(id, text)| {
                    next = next.max(id.saturating_add(1));
                    let frame = ChatFrame::Message {
                        id,
                        text,
                        ack: None,
                    };
                    (id, frame.encode())
                })
                .collect();
            if !frames.is_empty() {
                machine.durable.outbox.insert(peer, frames);
            }
        }
        machine.durable.received = saved.received;
        machine.restore_rooms(saved.rooms);
        machine.next_message = next;
        machine.store(StoreOp::Numbering {
            run: saved.run,
            next_message: next,
        });
        Ok(machine)
    }

    /// Peers with messages of mine waiting for a chat, and how many.
    pub fn outbox(&self) -> impl Iterator<Item = (&str, usize)> {
        let waiting = self.durable.outbox.iter();
        waiting.map(|(peer, frames)| (peer.as_str(), frames.len()))
    }

    pub(super) fn store(&mut self, op: StoreOp) {
        self.actions.push_back(Action::Store(op));
    }

    /// Offers a chat to every peer with a waiting outbox and no chat, unless its presence
    /// says it is away: its coming back online brings the next try.
    pub(super) fn deliver_outbox(&mut self, now: u64) {
        if !self.registration.is_ready() {
            return;
        }
        let due: Vec<String> = (self.durable.outbox.keys())
            .filter(|peer| !self.peers.contains_key(*peer))
            .filter(|peer| self.presence.get(*peer) != Some(&false))
            .cloned()
            .collect();
        for peer in due {
            if self.peers.len() >= MAX_PEERS {
                return;
            }
            debug!(%peer, "offering a chat to deliver the outbox");
            self.call(&peer, now);
        }
    }

    /// The chat with `peer` opened without acknowledgements (an original client now holds
    /// the name): what waited goes as the plain text it was, once, and leaves the outbox,
    /// since no acknowledgement will ever take it out.
    pub(super) fn outbox_to_original(&mut self, peer: &str) {
        let Some(session) = self.peers.get_mut(peer) else {
            return;
        };
        if session.speaks(FEATURE_ACKS) || session.unacked.is_empty() {
            return;
        }
        let conn = session.conn;
        let waiting = std::mem::take(&mut session.unacked);
        let upto = waiting.back().map(|(id, _)| *id);
        for (_, frame) in waiting {
            if let Some(ChatFrame::Message { text, .. }) = ChatFrame::decode(&frame) {
                self.actions.push_back(Action::SendText { conn, text });
            }
        }
        if let Some(upto) = upto {
            self.store(StoreOp::Acknowledged {
                peer: peer.to_owned(),
                upto,
            });
        }
    }

    /// The peer's announced run is known: if it is the run whose messages were shown
    /// before (in an earlier chat or process), numbering continues and repeats are dropped.
    pub(super) fn resume_numbering(&mut self, peer: &str) {
        let Some(session) = self.peers.get_mut(peer) else {
            return;
        };
        let run = session.remote_caps.as_ref().and_then(|c| c.run.as_deref());
        if let Some((seen_run, id)) = self.durable.received.get(peer)
            && Some(seen_run.as_str()) == run
        {
            session.last_received = session.last_received.max(Some(*id));
        }
    }

    /// Records a message shown from `peer` (numbered: the peer's run and the id).
    pub(super) fn shown(&mut self, peer: &str, text: &str, id: Option<MessageId>) {
        let run = (self.peers.get(peer))
            .and_then(|s| s.remote_caps.as_ref())
            .and_then(|c| c.run.clone());
        let numbering = run.zip(id);
        if let Some((run, id)) = &numbering {
            (self.durable.received).insert(peer.to_owned(), (run.clone(), *id));
        }
        self.store(StoreOp::Received {
            peer: peer.to_owned(),
            text: text.to_owned(),
            numbering,
        });
    }
}
