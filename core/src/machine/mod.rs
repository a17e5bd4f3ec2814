//! The client state machine, sans-IO: it takes API calls, signaling input, transport events
//! and the time, and answers with [`Action`]s for a backend and [`ClientEvent`]s for the app.
//!
//! No sockets, clocks or threads live here, so every ordering problem of signaling (early
//! candidates, glare, a broker that never answers) is a deterministic unit test. Backends are
//! drivers: they execute actions in the order given and feed back what happened.

mod chat;
mod durable;
#[cfg(test)]
mod durable_tests;
mod incoming;
#[cfg(test)]
mod limits_tests;
mod peer;
mod presence;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties;
mod recovery;
mod registration;
mod replay;
#[cfg(test)]
mod roaming_tests;
mod room_mesh;
mod rooms;
#[cfg(test)]
mod rooms_tests;
#[cfg(test)]
mod tests;
mod trust;
#[cfg(test)]
mod trust_tests;

use std::collections::VecDeque;

use tracing::{debug, warn};

use crate::event::{ChatEnd, ClientError, ClientEvent, PeerStatus};
use crate::path::PeerPath;
use crate::protocol::{
    self, Capabilities, IceCandidate, MessageId, PROTOCOL_VERSION, SdpKind, SessionDescription,
    SignalMessage, incoming_topic,
};
use crate::small_map::{SmallMap, SmallSet};

pub use chat::{MAX_ARRIVING_FILE_BYTES, SEND_BUFFER_LOW};
use durable::Durable;
pub use durable::{SavedState, StoreOp};
pub use peer::Role;
use peer::{PeerSession, push_bounded};
use recovery::Trigger;
use registration::Registration;
pub use rooms::MAX_ROOMS;
pub use trust::{MAX_PINS, Pin};

/// Identifies one peer connection in a backend. A peer gets a new one after glare or a
/// restart, so events from a replaced connection are recognised and ignored.
pub type ConnId = u64;

/// How long a peer connection may take from offer to open data channel.
pub const SETUP_TIMEOUT_MS: u64 = 30_000;

/// Most peer sessions at once, so a flood of offers cannot exhaust the client.
pub const MAX_PEERS: usize = 256;

/// Most peers whose candidates may wait for an offer that has not arrived yet.
const MAX_EARLY_PEERS: usize = 32;

/// Most contacts whose presence is watched (peerchat-server allows 1024 watches per
/// connection, one of them our own record); contacts beyond it show no presence.
pub const MAX_WATCHED: usize = 1000;

/// How hard the broker must try to deliver (MQTT QoS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// QoS 0, for signaling, as the original client does: a duplicated offer would restart
    /// a connection, and a lost one is retried by the user or times out.
    AtMostOnce,
    /// QoS 1, for retained presence: state that must not be lost, and repeating it is harmless.
    AtLeastOnce,
}

/// What the backend must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Subscribe {
        topic: String,
        delivery: Delivery,
    },
    Unsubscribe {
        topic: String,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
        retain: bool,
        delivery: Delivery,
    },
    /// Disconnect cleanly from the broker (so no last will is published).
    CloseSignaling,
    /// Drop the broker connection and connect again at once: the network changed, so the
    /// old connection may be on a path that no longer exists.
    RestartSignaling,
    /// Connect under `client_id` from now on; a connection that is up ends cleanly (no
    /// last will) and the next follows at once. Used on the original server (see
    /// `registration`).
    ConnectAs {
        client_id: String,
    },
    /// Create a peer connection with the `chat` data channel and produce an offer.
    StartOffer {
        peer: String,
        conn: ConnId,
    },
    /// Create a peer connection, apply the remote offer and produce an answer.
    AcceptOffer {
        peer: String,
        conn: ConnId,
        sdp: String,
    },
    ApplyAnswer {
        conn: ConnId,
        sdp: String,
    },
    /// Keep `peer`'s pinned key (or forget it, `None`) where it outlives the app.
    KeepPin {
        peer: String,
        pin: Option<Pin>,
    },
    /// Restart ICE on an existing connection and produce the offer that asks the peer to
    /// (fresh candidates, and on native fresh sockets, for a network that changed).
    RestartIce {
        conn: ConnId,
    },
    /// Apply a remote candidate; only ever issued after the remote description.
    AddCandidate {
        conn: ConnId,
        candidate: IceCandidate,
    },
    SendText {
        conn: ConnId,
        text: String,
    },
    /// A binary message on the chat channel.
    SendData {
        conn: ConnId,
        data: Vec<u8>,
    },
    ClosePeer {
        conn: ConnId,
    },
    /// Write what must survive a restart (see [`StoreOp`]); never waited for.
    Store(StoreOp),
}

/// What the signaling connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalingInput {
    /// The broker accepted the MQTT connection (CONNACK), first time or after a reconnect.
    Connected,
    /// Every subscription asked for since `Connected` is acknowledged.
    Subscribed,
    Message {
        topic: String,
        payload: Vec<u8>,
    },
    /// The broker connection dropped; the backend is reconnecting.
    Lost,
    /// The broker sent a packet this client refuses (over the size limit, malformed); the
    /// connection is being dropped for it.
    BadPacket(String),
}

/// What a peer connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportEvent {
    /// Our offer or answer, set as local description, ready to publish.
    LocalDescription(String),
    LocalCandidate(IceCandidate),
    ChannelOpen,
    ChannelMessage(String),
    /// A binary message on the chat channel (a file chunk from a peerchat peer).
    ChannelData(Vec<u8>),
    /// How the connection runs now (see [`crate::path`]).
    Path(PeerPath),
    /// The chat channel's send buffer holds `buffered` bytes, after `chunk_bytes` bytes of
    /// file chunks were written to it in all: room for more chunks. Reported when the
    /// buffer drains to [`SEND_BUFFER_LOW`] (the browser's and webrtc-rs's
    /// buffered-amount-low event), and by a transport that finds it there after a write.
    SendBufferLow {
        buffered: u64,
        chunk_bytes: u64,
    },
    ChannelClosed,
    /// The peer connection's overall state changed.
    StateChanged(PeerStatus),
    /// An operation on the connection failed; the connection is unusable.
    Failed(String),
}

/// peerchat's client, as a state machine.
#[derive(Debug)]
pub struct ClientMachine {
    me: String,
    registration: Registration,
    peers: SmallMap<String, PeerSession>,
    /// Candidates from peers whose offer has not arrived (yet).
    early_candidates: SmallMap<String, Vec<IceCandidate>>,
    /// Last known presence of contacts (see `presence`).
    presence: SmallMap<String, bool>,
    /// Peers the app wants to see the presence of (its contact list).
    watched: SmallSet<String>,
    /// Presence records subscribed to on the current broker connection.
    presence_subscribed: SmallSet<String>,
    /// Identity keys: ours, and the ones pinned for peers (see `trust`).
    trust: trust::Trust,
    next_conn: ConnId,
    /// The id of my next chat message (see [`protocol::ChatFrame`]).
    next_message: MessageId,
    /// The outbox and what was shown, kept beyond one chat (see `durable`).
    durable: Durable,
    /// Group rooms and the exchanges with their members (see `rooms`).
    rooms: rooms::Rooms,
    mesh: room_mesh::Mesh,
    actions: VecDeque<Action>,
    events: VecDeque<ClientEvent>,
}

impl ClientMachine {
    /// A client for `username`; `session` must be unique per run (a random id).
    pub fn new(username: &str, session: &str) -> Result<Self, ClientError> {
        protocol::validate_username(username).map_err(ClientError::InvalidUsername)?;
        Ok(Self {
            me: username.to_owned(),
            registration: Registration::new(username, session),
            peers: SmallMap::new(),
            early_candidates: SmallMap::new(),
            presence: SmallMap::new(),
            watched: SmallSet::new(),
            presence_subscribed: SmallSet::new(),
            trust: trust::Trust::default(),
            next_conn: 1,
            next_message: 1,
            durable: Durable::default(),
            rooms: rooms::Rooms::default(),
            mesh: room_mesh::Mesh::default(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    pub fn username(&self) -> &str {
        &self.me
    }

    /// The MQTT client id: unique per run, so a second device with the same name cannot
    /// silently take over this one's broker connection.
    pub fn client_id(&self) -> String {
        self.registration.client_id()
    }

    /// The last will to give the broker: our retained presence saying offline, since now
    /// (the client's start; a will is fixed when the connection is made).
    pub fn last_will(&self) -> (String, Vec<u8>) {
        self.registration.offline_presence(self.last_wall())
    }

    pub fn is_online(&self) -> bool {
        self.registration.is_online()
    }

    /// The status of the chat with `peer`, if there is one.
    pub fn peer_status(&self, peer: &str) -> Option<PeerStatus> {
        self.peers.get(peer).map(|s| s.status)
    }

    /// Peers with a session, and their status.
    pub fn peers(&self) -> impl Iterator<Item = (&str, PeerStatus)> {
        self.peers.iter().map(|(name, s)| (name.as_str(), s.status))
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The earliest time at which [`ClientMachine::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        let peers = self.peers.values();
        // An ack waits for an open channel (see `send_due_acks`).
        let deadlines = peers
            .flat_map(|s| {
                [
                    s.setup_deadline,
                    s.ack_due.filter(|_| s.channel_open),
                    s.hear_by,
                ]
            })
            .flatten();
        deadlines
            .chain(self.registration.deadline())
            .chain(self.recovery_deadline())
            .chain(self.receipt_deadline())
            .chain(self.mesh_deadline())
            .min()
    }

    // ---- API calls -------------------------------------------------------------------

    /// Starts a chat with `peer`: this client offers.
    pub fn connect_to_peer(&mut self, peer: &str, now: u64) -> Result<(), ClientError> {
        if !self.registration.is_online() {
            return Err(ClientError::NotConnected);
        }
        protocol::validate_username(peer).map_err(ClientError::InvalidUsername)?;
        if peer == self.me {
            return Err(ClientError::SelfConnect);
        }
        if self.peers.contains_key(peer) {
            return Err(ClientError::AlreadyConnected(peer.to_owned()));
        }
        if self.presence.get(peer) == Some(&false) {
            return Err(ClientError::PeerOffline(peer.to_owned()));
        }
        if self.peers.len() >= MAX_PEERS {
            return Err(ClientError::TooManyPeers(MAX_PEERS));
        }
        self.mesh_may_call(peer);
        self.call(peer, now);
        self.sync_presence();
        Ok(())
    }

    /// Offers a chat to `peer`, which has no session with us.
    fn call(&mut self, peer: &str, now: u64) {
        // Candidates that waited for an offer from this peer belong to no session of ours.
        self.early_candidates.remove(peer);
        let conn = self.open_session(peer, Role::Offerer, now);
        self.actions.push_back(Action::StartOffer {
            peer: peer.to_owned(),
            conn,
        });
    }

    /// Ends the chat with `peer`; the peer sees it closed.
    pub fn close_peer(&mut self, peer: &str) -> Result<(), ClientError> {
        if !self.peers.contains_key(peer) {
            return Err(ClientError::PeerNotConnected(peer.to_owned()));
        }
        self.leave_chat(peer);
        self.sync_presence();
        Ok(())
    }

    /// Leaves: closes every chat, clears presence and disconnects from the broker.
    pub fn disconnect(&mut self) {
        let names: Vec<String> = self.peers.keys().cloned().collect();
        for name in names {
            self.leave_chat(&name);
        }
        self.registration.leave(self.last_wall());
        self.drain_registration();
        self.actions.push_back(Action::CloseSignaling);
    }

    // ---- Inputs ----------------------------------------------------------------------

    pub fn handle_signaling(&mut self, input: SignalingInput, now: u64) {
        let was_ready = self.registration.is_ready();
        match input {
            SignalingInput::Connected => {
                self.registration.on_connected(now);
                self.presence_subscribed.clear();
            }
            SignalingInput::Subscribed => {
                let identity = self.trust.identity();
                self.registration.on_subscribed(now, identity);
            }
            SignalingInput::Lost => {
                self.registration.on_lost();
                self.presence_subscribed.clear();
            }
            SignalingInput::BadPacket(reason) => self
                .events
                .push_back(ClientEvent::Error(ClientError::BadBrokerPacket(reason))),
            SignalingInput::Message { topic, payload } => self.on_publish(&topic, &payload, now),
        }
        self.drain_registration();
        self.sync_presence();
        if !was_ready && self.registration.is_ready() {
            self.signaling_restored(now);
            self.deliver_outbox(now);
        }
        self.form_mesh(now);
        self.sync_presence();
    }

    pub fn handle_transport(&mut self, conn: ConnId, event: TransportEvent, now: u64) {
        self.on_transport(conn, event, now);
        // What arrived may have changed a room's members.
        self.form_mesh(now);
        self.sync_presence();
    }

    fn on_transport(&mut self, conn: ConnId, event: TransportEvent, now: u64) {
        let Some(peer) = self.peer_of(conn) else {
            return self.on_left_connection(conn, event);
        };
        match event {
            TransportEvent::LocalDescription(sdp) => self.publish_description(&peer, sdp, now),
            TransportEvent::LocalCandidate(candidate) => {
                let session = self.peers.get_mut(&peer).expect("peer_of found it");
                if session.local_sent {
                    self.publish_candidate(&peer, candidate, now);
                } else {
                    push_bounded(&mut session.early_local, candidate);
                }
            }
            TransportEvent::ChannelOpen => {
                let session = self.peers.get_mut(&peer).expect("peer_of found it");
                if session.channel_open {
                    return;
                }
                session.channel_open = true;
                session.last_open = Some(conn);
                session.setup_deadline = None;
                // Our own channel opens once the peer acknowledged it: its end is open. The
                // end of one the peer opened may not be yet (see `chat::heard_from`).
                let ours = session.role == Role::Offerer;
                session.heard = ours || !session.speaks(protocol::FEATURE_ACKS);
                session.hear_by = (!session.heard).then_some(now + chat::HEAR_WAIT_MS);
                self.set_status(&peer, PeerStatus::Connected);
                self.events
                    .push_back(ClientEvent::PeerConnected(peer.clone()));
                self.mesh_may_call(&peer);
                self.outbox_to_original(&peer);
                if ours {
                    // The peer's cue that our end is open.
                    self.send_sign_of_life(&peer);
                }
                self.finish_recovery(&peer);
            }
            TransportEvent::ChannelMessage(text) => self.on_chat(peer, text, now),
            TransportEvent::ChannelData(data) => self.on_chat_data(peer, &data),
            TransportEvent::SendBufferLow {
                buffered,
                chunk_bytes,
            } => self.on_send_buffer_low(&peer, buffered, chunk_bytes),
            TransportEvent::Path(path) => {
                let session = &self.peers[&peer];
                // A report raced with a loss of the path says nothing true any more.
                if session.channel_open && session.status == PeerStatus::Connected {
                    self.events.push_back(ClientEvent::Path { peer, path });
                }
            }
            // Without a `bye` first, a closing channel is the peer moving the chat to a new
            // connection (or an association that gave up): the chat follows.
            TransportEvent::ChannelClosed => {
                debug!(%peer, conn, "chat channel closed");
                self.connection_lost(&peer, now, PeerStatus::Closed, false);
            }
            TransportEvent::StateChanged(status) => self.on_transport_state(&peer, status, now),
            TransportEvent::Failed(reason) => {
                self.events
                    .push_back(ClientEvent::Error(ClientError::Transport {
                        peer: peer.clone(),
                        reason,
                    }));
                // An unusable connection cannot be restarted in place.
                self.connection_lost(&peer, now, PeerStatus::Failed, false);
            }
        }
    }

    pub fn handle_timeout(&mut self, now: u64) {
        let was_ready = self.registration.is_ready();
        self.registration.on_timeout(now);
        self.drain_registration();
        if !was_ready && self.registration.is_ready() {
            // Online on a plain broker (its presence grace passed): the outbox may go.
            self.deliver_outbox(now);
        }
        self.send_due_acks(now);
        self.send_due_receipts(now);
        self.hear_anyway(now);
        let expired: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, s)| s.setup_deadline.is_some_and(|d| d <= now))
            .map(|(name, _)| name.clone())
            .collect();
        for peer in expired {
            if self.peers[&peer].recovery.is_some() {
                // One recovery attempt did not open: the next one follows.
                self.begin_recovery(&peer, now, Trigger::AttemptFailed);
                continue;
            }
            if self.peers[&peer].reported_away {
                self.events
                    .push_back(ClientEvent::Error(ClientError::PeerOffline(peer.clone())));
                self.end_session(&peer, PeerStatus::Failed, ChatEnd::PeerOffline);
                continue;
            }
            self.events
                .push_back(ClientEvent::Error(ClientError::PeerTimeout(peer.clone())));
            self.end_session(&peer, PeerStatus::Failed, ChatEnd::Unreachable);
        }
        self.recovery_timeouts(now);
        self.form_mesh(now);
        self.sync_presence();
    }

    // ---- Transport -------------------------------------------------------------------

    fn publish_description(&mut self, peer: &str, sdp: String, now: u64) {
        let sdp = protocol::sdp_concealed(sdp);
        let session = self.peers.get_mut(peer).expect("caller checked");
        session.local_sent = true;
        session.local_description = Some(sdp.clone());
        let early = std::mem::take(&mut session.early_local);
        let message = self.description_message(peer, sdp);
        self.publish_to(peer, message, now);
        for candidate in early {
            self.publish_candidate(peer, candidate, now);
        }
    }

    /// Publishes our offer or answer and the candidates that went with it once more, as
    /// they were: the peer may not have had them, since signaling is at most once (see
    /// `incoming::on_offer` and `recovery::signaling_restored`). A peer that had them takes
    /// the copy for the duplicate it is.
    fn publish_description_again(&mut self, peer: &str, now: u64) {
        let Some(session) = self.peers.get(peer) else {
            return;
        };
        let Some(sdp) = session.local_description.clone() else {
            // Not published yet: it goes as soon as it is ready.
            return;
        };
        let candidates = session.published_candidates.clone();
        let message = self.description_message(peer, sdp);
        self.publish_to(peer, message, now);
        for candidate in candidates {
            let message = SignalMessage::SignalCandidate {
                seal: None,
                from: self.me.clone(),
                candidate,
            };
            self.publish_to(peer, message, now);
        }
    }

    /// Our offer or answer to `peer`, as our role in its session says, announcing what this
    /// client supports; an answer names the ICE ufrag of the offer it answers (see
    /// `incoming::on_answer`).
    fn description_message(&self, peer: &str, sdp: String) -> SignalMessage {
        let session = &self.peers[peer];
        let role = session.role;
        let answers = (role == Role::Answerer)
            .then(|| session.remote_ufrag.clone())
            .flatten();
        let caps = Some(Capabilities {
            version: PROTOCOL_VERSION,
            features: protocol::supported_features(),
            run: Some(self.registration.session().to_owned()),
            answers,
        });
        let from = self.me.clone();
        match role {
            Role::Offerer => SignalMessage::SignalOffer {
                seal: None,
                from,
                offer: SessionDescription {
                    kind: SdpKind::Offer,
                    sdp,
                },
                peerchat: caps,
            },
            Role::Answerer => SignalMessage::SignalAnswer {
                seal: None,
                from,
                answer: SessionDescription {
                    kind: SdpKind::Answer,
                    sdp,
                },
                peerchat: caps,
            },
        }
    }

    fn publish_candidate(&mut self, peer: &str, candidate: IceCandidate, now: u64) {
        let candidate = candidate.concealed();
        let session = self.peers.get_mut(peer).expect("caller checked");
        push_bounded(&mut session.published_candidates, candidate.clone());
        let message = SignalMessage::SignalCandidate {
            seal: None,
            from: self.me.clone(),
            candidate,
        };
        self.publish_to(peer, message, now);
    }

    fn on_transport_state(&mut self, peer: &str, status: PeerStatus, now: u64) {
        let current = self.peers[peer].status;
        debug!(%peer, ?status, ?current, "connection state");
        match status {
            // A peerchat chat moves to a new connection; others end. After ICE failed, the
            // association may still live on a restarted ICE.
            PeerStatus::Failed | PeerStatus::Closed => {
                self.connection_lost(peer, now, status, status == PeerStatus::Failed)
            }
            // The path is lost and a peer that cannot recover chats has left the broker: it
            // is gone. (A peerchat peer may be roaming: its broker connection dies with its
            // old network, and its chat is recovered.)
            PeerStatus::Disconnected
                if self.presence.get(peer) == Some(&false) && !self.recoverable(peer) =>
            {
                self.end_session(peer, PeerStatus::Closed, ChatEnd::PeerOffline)
            }
            // A lost path may come back (ICE keeps checking); the chat stays, and moves to
            // a new connection if the path stays lost (see `recovery`).
            PeerStatus::Disconnected if current == PeerStatus::Connected => {
                self.peers
                    .get_mut(peer)
                    .expect("caller found it")
                    .lost_since = Some(now);
                self.set_status(peer, PeerStatus::Disconnected)
            }
            // ICE restarted in place and found a path again.
            PeerStatus::Connected if self.recovering(peer) && self.peers[peer].channel_open => {
                self.path_back(peer)
            }
            PeerStatus::Connected if current == PeerStatus::Disconnected => {
                self.peers
                    .get_mut(peer)
                    .expect("caller found it")
                    .lost_since = None;
                self.set_status(peer, PeerStatus::Connected)
            }
            // `connected` is reported when the data channel opens: that is when chat works.
            _ => {}
        }
    }

    // ---- Sessions --------------------------------------------------------------------

    fn open_session(&mut self, peer: &str, role: Role, now: u64) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        let mut session = PeerSession::new(conn, role, now + SETUP_TIMEOUT_MS);
        // What waited for a chat goes once its channel opens (see `finish_recovery`).
        session.unacked = self.durable.outbox.remove(peer).unwrap_or_default();
        self.peers.insert(peer.to_owned(), session);
        self.events.push_back(ClientEvent::Status {
            peer: peer.to_owned(),
            status: PeerStatus::New,
        });
        self.set_status(peer, PeerStatus::Connecting);
        conn
    }

    /// Ends the current connection to make room for a new one from the same peer.
    fn replace_session(&mut self, peer: &str, status: PeerStatus) {
        if let Some(mut old) = self.peers.remove(peer) {
            self.keep_unacked(peer, &mut old);
            self.actions.push_back(Action::ClosePeer { conn: old.conn });
            if old.channel_open {
                self.events.push_back(ClientEvent::Status {
                    peer: peer.to_owned(),
                    status,
                });
            }
        }
    }

    /// Ends the chat on purpose: a peerchat peer is told first (`bye`), so it does not
    /// take the closing channel for a connection being replaced.
    fn leave_chat(&mut self, peer: &str) {
        if let Some(session) = self.peers.get(peer)
            && session.channel_open
            && session.speaks(protocol::FEATURE_RECOVERY)
        {
            self.actions.push_back(Action::SendText {
                conn: session.conn,
                text: protocol::ChatFrame::Bye.encode(),
            });
        }
        self.end_session(peer, PeerStatus::Closed, ChatEnd::Closed);
    }

    /// Ends the chat for good: the application hears the status and, if the chat had
    /// opened, that it ended and why. Never for a chat that can still be recovered, except
    /// on purpose (a `bye`, leaving) or when its recovery window ran out.
    fn end_session(&mut self, peer: &str, status: PeerStatus, reason: ChatEnd) {
        let Some(mut session) = self.peers.remove(peer) else {
            return;
        };
        debug!(%peer, ?status, ?reason, conn = session.conn, "chat ended");
        self.mesh_chat_ended(peer, reason);
        self.keep_unacked(peer, &mut session);
        self.actions
            .push_back(Action::ClosePeer { conn: session.conn });
        self.events.push_back(ClientEvent::Status {
            peer: peer.to_owned(),
            status,
        });
        if session.channel_open || session.recovery.is_some() {
            self.events.push_back(ClientEvent::PeerDisconnected {
                peer: peer.to_owned(),
                reason,
            });
        }
    }

    /// A chat ends with messages of mine unacknowledged: they wait in the outbox for the
    /// next chat with the peer, as they would across a restart.
    fn keep_unacked(&mut self, peer: &str, session: &mut PeerSession) {
        if !session.unacked.is_empty() {
            let mut unacked = std::mem::take(&mut session.unacked);
            durable::without_acks(&mut unacked);
            self.durable.outbox.insert(peer.to_owned(), unacked);
        }
    }

    fn set_status(&mut self, peer: &str, status: PeerStatus) {
        let session = self.peers.get_mut(peer).expect("caller checked");
        if session.status != status {
            session.status = status;
            self.events.push_back(ClientEvent::Status {
                peer: peer.to_owned(),
                status,
            });
        }
    }

    /// An event from a connection no chat uses any more. Only a `bye` still counts: the
    /// peer left on purpose, and its closing connection was reported first, so the chat
    /// was being recovered; it ends now instead of when the recovery window runs out.
    fn on_left_connection(&mut self, conn: ConnId, event: TransportEvent) {
        let left_by = self.peers.iter().find(|(_, s)| {
            s.last_open == Some(conn) && !s.channel_open && s.speaks(protocol::FEATURE_RECOVERY)
        });
        match (left_by, &event) {
            (Some((peer, _)), TransportEvent::ChannelMessage(text))
                if protocol::ChatFrame::decode(text) == Some(protocol::ChatFrame::Bye) =>
            {
                let peer = peer.clone();
                debug!(%peer, conn, "bye on the connection the chat left: the peer left");
                self.end_session(&peer, PeerStatus::Closed, ChatEnd::PeerLeft);
            }
            _ => debug!(conn, ?event, "event from a replaced connection ignored"),
        }
    }

    fn peer_of(&self, conn: ConnId) -> Option<String> {
        self.peers
            .iter()
            .find(|(_, s)| s.conn == conn)
            .map(|(name, _)| name.clone())
    }

    /// Publishes `message` to `peer`'s incoming topic, sealed (see `trust`).
    fn publish_to(&mut self, peer: &str, mut message: SignalMessage, now: u64) {
        self.seal_for(peer, &mut message, now);
        let message = &message;
        self.actions.push_back(Action::Publish {
            topic: incoming_topic(peer),
            payload: protocol::encode(message),
            retain: false,
            delivery: Delivery::AtMostOnce,
        });
    }

    pub(super) fn unexpected(&mut self, from: String, kind: &'static str, detail: &str) {
        warn!(%from, kind, detail, "unexpected signaling");
        self.events
            .push_back(ClientEvent::Error(ClientError::UnexpectedSignal {
                from,
                kind,
                detail: detail.to_owned(),
            }));
    }

    fn drain_registration(&mut self) {
        let (actions, events) = self.registration.drain();
        self.actions.extend(actions);
        self.events.extend(events);
    }
}
