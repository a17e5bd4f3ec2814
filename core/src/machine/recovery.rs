//! Recovering a chat whose connection was lost (a network switch, a laptop waking up): a
//! new connection is negotiated through the broker while the conversation stays, and what
//! was sent meanwhile goes out, once and in order, when it opens.
//!
//! Only between peers that announce `recovery` (acknowledgements make re-sending safe); an
//! original client ends its chat on a lost path, as it always did.
//!
//! Who offers: the side that knows first. A client told by its platform that the network
//! changed offers at once (it also knows its broker connection must be renewed). When ICE
//! notices a lost path instead, the name that sorts first offers at once and the other a
//! little later, so a peer that gave up its side of the chat (a laptop that slept through
//! the whole window) is still reached. Offers that cross are settled by glare: the name
//! that sorts first keeps its offer (see `incoming`).

use tracing::debug;

use super::peer::Role;
use super::{Action, ClientMachine};
use crate::event::{ChatEnd, ClientError, ClientEvent, PeerStatus};
use crate::protocol::FEATURE_RECOVERY;

/// How long ICE may report a path lost (`disconnected`) before the chat moves to a new
/// connection: long enough for a path that is only briefly lost to come back by itself.
pub(super) const LOST_GRACE_MS: u64 = 2_000;

/// How long a chat is recovered for before it counts as ended.
pub(super) const RECOVERY_WINDOW_MS: u64 = 60_000;

/// How long one attempt (offer to open channel) may take before the next: a setup takes
/// milliseconds when the peer is reachable.
pub(super) const ATTEMPT_TIMEOUT_MS: u64 = 10_000;

/// How long an ICE restart on the existing connection may take before a new connection is
/// negotiated instead: a reachable peer answers and checks a new path in milliseconds.
pub(super) const IN_PLACE_TIMEOUT_MS: u64 = 3_000;

/// How much later than the name that sorts first the other side offers: enough for the
/// first side's offer to arrive, so the two rarely cross.
pub(super) const SECOND_OFFER_DELAY_MS: u64 = 3_000;

/// The wait before offering again after a failed attempt: 0.5 s doubling to 8 s.
fn retry_delay(attempts: u32) -> u64 {
    (500u64 << attempts.min(4)).min(8_000)
}

/// Why a chat is (re)started on a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// ICE lost the path, or the connection failed.
    PathLost,
    /// An attempt did not open in time.
    AttemptFailed,
    /// The platform reported a network change here: offer at once, whatever the names.
    NetworkChanged,
    /// The peer is back on the broker (its presence says online again), or we are: what
    /// was offered meanwhile may have reached nobody, so an offer goes at once.
    Reachable,
}

/// A chat moving to a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recovery {
    /// Offers made so far.
    pub attempts: u32,
    /// When to offer next, if no attempt is under way.
    pub next_offer_at: Option<u64>,
    /// When the chat is given up.
    pub give_up_at: u64,
    /// The current attempt restarts ICE on the existing connection; the next one, if
    /// needed, negotiates a new connection.
    pub in_place: bool,
}

impl Recovery {
    /// A recovery starting `now`.
    pub fn new(now: u64) -> Self {
        Self {
            attempts: 0,
            next_offer_at: None,
            give_up_at: now + RECOVERY_WINDOW_MS,
            in_place: false,
        }
    }
}

impl ClientMachine {
    /// Whether the chat with `peer` is moved to a new connection rather than ended when its
    /// connection is lost: a chat that opened with a peer that announced `recovery`, until
    /// it ends on purpose or its recovery window runs out.
    ///
    /// The peer's presence has no say. A roaming phone's broker connection dies with its
    /// old network, and its last will says "offline" while the phone is already offering a
    /// way back from the new one; a peer that really left said `bye`, and one that crashed
    /// is given up after the window.
    pub(super) fn recoverable(&self, peer: &str) -> bool {
        self.peers.get(peer).is_some_and(|session| {
            session.speaks(FEATURE_RECOVERY) && (session.recovery.is_some() || session.channel_open)
        })
    }

    /// The chat's connection is lost: ICE failed (`channel_usable`: the association may
    /// live on after an ICE restart), or the channel closed without a `bye`, or the
    /// connection broke. A chat that can be recovered moves on, whatever the order in which
    /// these reports arrive; any other chat ends with `status`.
    pub(super) fn connection_lost(
        &mut self,
        peer: &str,
        now: u64,
        status: PeerStatus,
        channel_usable: bool,
    ) {
        if !self.recoverable(peer) {
            return self.end_session(peer, status, ChatEnd::ConnectionLost);
        }
        let trigger = if self.recovering(peer) {
            Trigger::AttemptFailed
        } else {
            Trigger::PathLost
        };
        let session = self.peers.get_mut(peer).expect("recoverable found it");
        session.channel_open &= channel_usable;
        self.begin_recovery(peer, now, trigger);
    }

    /// Whether the chat with `peer` is being moved to a new connection.
    pub(super) fn recovering(&self, peer: &str) -> bool {
        self.peers.get(peer).is_some_and(|s| s.recovery.is_some())
    }

    /// Schedules the next offer (see the module doc). The first tries to keep the
    /// connection, restarting its ICE; after that, or if the connection is unusable, the
    /// connection is dropped and the next offer negotiates a new one.
    pub(super) fn begin_recovery(&mut self, peer: &str, now: u64, trigger: Trigger) {
        let first = self.me.as_str() < peer;
        let session = self.peers.get_mut(peer).expect("caller checked");
        let recovery = session.recovery.get_or_insert_with(|| Recovery::new(now));
        let second = if first { 0 } else { SECOND_OFFER_DELAY_MS };
        let delay = match trigger {
            Trigger::NetworkChanged | Trigger::Reachable => 0,
            Trigger::PathLost => second,
            // A restart in place that did not work is followed by a new connection at once.
            Trigger::AttemptFailed if recovery.in_place => 0,
            Trigger::AttemptFailed => retry_delay(recovery.attempts.saturating_sub(1)),
        };
        recovery.next_offer_at = Some(now + delay);
        // Restarting ICE keeps the association, so files in flight go on; but data it lost
        // with the path waits for SCTP's retransmission timer (at least 1 s in webrtc-rs),
        // and even with nothing lost, webrtc-rs holds what is written after the restart
        // ~200 ms (measured under steady traffic), while a new connection opens in
        // milliseconds and re-sends what is unacknowledged at once. So: in place only
        // while a file is under way, a new connection otherwise.
        let transferring = !session.incoming_files.is_empty() || !session.outgoing_files.is_empty();
        let keep = session.channel_open && trigger != Trigger::AttemptFailed && transferring;
        recovery.in_place = false;
        debug!(%peer, ?trigger, keep, delay, "recovering the chat");
        if keep {
            session.setup_deadline = None;
            session.lost_since = None;
            self.set_status(peer, PeerStatus::Disconnected);
            if delay == 0 && self.registration.is_ready() {
                self.offer_again(peer, now);
            }
            return;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        let session = self.peers.get_mut(peer).expect("caller checked");
        self.actions
            .push_back(Action::ClosePeer { conn: session.conn });
        // Files in flight go with the old channel; the app hears which.
        let interrupted: Vec<_> = (session.incoming_files.keys())
            .chain(session.outgoing_files.keys())
            .copied()
            .collect();
        // A fresh connection id with nothing behind it yet: events from the old
        // connection no longer reach this chat, and the peer's offer replaces it.
        session.renew(conn, Role::Answerer, None);
        for id in interrupted {
            self.events
                .push_back(ClientEvent::Error(ClientError::TransferInterrupted {
                    peer: peer.to_owned(),
                    id,
                }));
        }
        self.set_status(peer, PeerStatus::Disconnected);
        if delay == 0 && self.registration.is_ready() {
            self.offer_again(peer, now);
        }
    }

    /// The platform reports that the network changed (another Wi-Fi, mobile data): every
    /// peer connection may be on a path that no longer exists, and so may the broker
    /// connection. Both are renewed at once instead of after timeouts.
    pub fn network_changed(&mut self, now: u64) {
        if !self.registration.is_started() {
            return;
        }
        self.registration.on_lost();
        self.drain_registration();
        self.actions.push_back(Action::RestartSignaling);
        let peers: Vec<String> = (self.peers.keys())
            .filter(|peer| self.recoverable(peer))
            .cloned()
            .collect();
        for peer in peers {
            self.begin_recovery(&peer, now, Trigger::NetworkChanged);
        }
    }

    /// Offers due, and chats whose recovery ran out of time. Offers wait while the broker
    /// connection is down or not yet subscribed: the answer would have nowhere to go.
    pub(super) fn recovery_timeouts(&mut self, now: u64) {
        let lost: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, s)| s.lost_since.is_some_and(|t| t + LOST_GRACE_MS <= now))
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in lost {
            if self.recoverable(&peer) {
                self.begin_recovery(&peer, now, Trigger::PathLost);
            } else if let Some(session) = self.peers.get_mut(&peer) {
                session.lost_since = None;
            }
        }
        let ready = self.registration.is_ready();
        let due: Vec<(String, bool)> = self
            .peers
            .iter()
            .filter_map(|(peer, s)| {
                let recovery = s.recovery.as_ref()?;
                if recovery.give_up_at <= now {
                    Some((peer.clone(), false))
                } else {
                    (ready && recovery.next_offer_at.is_some_and(|t| t <= now))
                        .then(|| (peer.clone(), true))
                }
            })
            .collect();
        for (peer, offer) in due {
            if offer {
                self.offer_again(&peer, now);
            } else {
                self.end_session(&peer, PeerStatus::Failed, ChatEnd::Unreachable);
            }
        }
    }

    /// The broker connection is usable again: attempts whose offer or answer may have been
    /// lost while it was down start over now rather than after their timeout.
    pub(super) fn signaling_restored(&mut self, now: u64) {
        let stalled: Vec<String> = (self.peers.iter())
            .filter(|(_, s)| {
                s.recovery
                    .as_ref()
                    .is_some_and(|r| r.next_offer_at.is_none())
            })
            .filter(|(_, s)| !s.channel_open)
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in stalled {
            self.begin_recovery(&peer, now, Trigger::Reachable);
        }
        self.recovery_timeouts(now);
        // A first setup whose offer or answer went out as the old connection died reached
        // nobody (signaling is at most once): it goes again, as it was, rather than the
        // chat waiting out its setup timeout. A peer that had it takes it for a duplicate.
        // An answer goes again only to a peerchat peer: the original client would apply a
        // second answer to a connection already set up.
        let unsettled: Vec<String> = (self.peers.iter())
            .filter(|(_, s)| s.recovery.is_none() && !s.channel_open && s.local_sent)
            .filter(|(_, s)| match s.role {
                Role::Offerer => !s.remote_applied,
                Role::Answerer => s.remote_caps.is_some(),
            })
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in unsettled {
            self.publish_description_again(&peer, now);
        }
    }

    fn offer_again(&mut self, peer: &str, now: u64) {
        let session = self.peers.get_mut(peer).expect("caller found it");
        let recovery = session.recovery.as_mut().expect("caller found it");
        recovery.attempts += 1;
        recovery.next_offer_at = None;
        debug!(%peer, in_place = session.channel_open, "offering a way back");
        if session.channel_open {
            // The connection is still there: restart its ICE, keeping the channel and
            // what is in flight on it.
            recovery.in_place = true;
            let deadline = (now + IN_PLACE_TIMEOUT_MS).min(recovery.give_up_at);
            session.restart_in_place(Role::Offerer, Some(deadline));
            let conn = session.conn;
            self.actions.push_back(Action::RestartIce { conn });
            self.set_status(peer, PeerStatus::Connecting);
            return;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        let deadline = (now + ATTEMPT_TIMEOUT_MS).min(recovery.give_up_at);
        session.renew(conn, Role::Offerer, Some(deadline));
        self.actions.push_back(Action::StartOffer {
            peer: peer.to_owned(),
            conn,
        });
        self.set_status(peer, PeerStatus::Connecting);
    }

    /// The chat's path works again without a new channel (ICE restarted in place, or the
    /// peer's frames arrive): the recovery is over.
    pub(super) fn path_back(&mut self, peer: &str) {
        let session = self.peers.get_mut(peer).expect("caller found it");
        session.setup_deadline = None;
        session.lost_since = None;
        self.set_status(peer, PeerStatus::Connected);
        self.events
            .push_back(ClientEvent::PeerConnected(peer.to_owned()));
        self.finish_recovery(peer);
    }

    /// A chat's channel is open: what the peer has not acknowledged (kept from a lost
    /// connection, or written meanwhile) goes again, in order (the peer shows each once),
    /// once the peer's end is known to be open (see `chat::heard_from`).
    pub(super) fn finish_recovery(&mut self, peer: &str) {
        let session = self.peers.get_mut(peer).expect("caller found it");
        session.recovery = None;
        if !session.heard {
            return;
        }
        let conn = session.conn;
        for (_, text) in &session.unacked {
            self.actions.push_back(Action::SendText {
                conn,
                text: text.clone(),
            });
        }
        // The channel is usable both ways: rooms shared with the peer catch up.
        self.meet_rooms(peer);
    }

    /// The next moment recovery has something to do.
    pub(super) fn recovery_deadline(&self) -> Option<u64> {
        let ready = self.registration.is_ready();
        self.peers
            .values()
            .flat_map(|s| {
                let recovery = s.recovery.as_ref();
                [
                    s.lost_since.map(|t| t + LOST_GRACE_MS),
                    recovery.and_then(|r| r.next_offer_at.filter(|_| ready)),
                    recovery.map(|r| r.give_up_at),
                ]
            })
            .flatten()
            .min()
    }
}
