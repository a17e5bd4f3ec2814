//! Signaling that arrives from the broker: offers, answers, candidates, presence records,
//! acks and delivery failures, each checked and turned into actions and events.

use tracing::{debug, warn};

use super::peer::{dtls_fingerprint, ice_ufrag, push_bounded};
use super::recovery::{ATTEMPT_TIMEOUT_MS, IN_PLACE_TIMEOUT_MS, Recovery, Trigger};
use super::{Action, ClientMachine, MAX_EARLY_PEERS, MAX_PEERS, Role};
use crate::event::{ChatEnd, ClientError, ClientEvent, PeerStatus};
use crate::protocol::{
    self, Capabilities, IceCandidate, ProtocolError, SignalMessage, incoming_topic,
};

impl ClientMachine {
    pub(super) fn on_publish(&mut self, topic: &str, payload: &[u8], now: u64) {
        if let Some(user) = protocol::user_of_presence_topic(topic) {
            self.on_presence_record(user, payload, now);
            return;
        }
        if topic != incoming_topic(&self.me) {
            debug!(topic, "publish on a topic this client does not read");
            return;
        }
        let message = match protocol::decode(payload) {
            Ok(message) => message,
            Err(ProtocolError::UnknownType(kind)) => {
                debug!(kind, "unknown signaling type ignored");
                return;
            }
            Err(error) => {
                warn!(%error, "bad signaling message");
                self.events
                    .push_back(ClientEvent::Error(ClientError::BadSignal {
                        from: sender_hint(payload),
                        error,
                    }));
                return;
            }
        };
        match message {
            // Claims of our own name, by us or another session of it (see `registration`).
            SignalMessage::NameClaim { session, .. } => {
                return self.registration.on_name_claim(&session);
            }
            SignalMessage::NameHeld { session, .. } => {
                return self.registration.on_name_held(&session);
            }
            _ => {}
        }
        if message.sender() == Some(self.me.as_str()) {
            debug!("own message reflected back; ignored");
            return;
        }
        let Some(admission) = self.admit(&message, now) else {
            return;
        };
        match message {
            SignalMessage::RegisterAck {
                success,
                message,
                reason,
                ..
            } => (self.registration).on_register_ack(success, &message, reason.as_deref()),
            SignalMessage::RegisterChallenge { from, nonce } if from == protocol::SERVER_NAME => {
                self.registration.on_challenge(nonce)
            }
            SignalMessage::SignalOffer {
                from,
                offer,
                peerchat,
                ..
            } => self.on_offer(from, offer.sdp, peerchat, now),
            SignalMessage::SignalAnswer {
                from,
                answer,
                peerchat,
                ..
            } => self.on_answer(from, answer.sdp, peerchat),
            SignalMessage::SignalCandidate {
                from, candidate, ..
            } => self.on_remote_candidate(from, candidate),
            SignalMessage::DeliveryFailed { target, .. } => self.on_delivery_failed(target, now),
            other @ (SignalMessage::Register { .. }
            | SignalMessage::RegisterChallenge { .. }
            | SignalMessage::NameClaim { .. }
            | SignalMessage::NameHeld { .. }
            | SignalMessage::Presence(_)) => {
                let from = other.sender().unwrap_or_default().to_owned();
                self.unexpected(from, "register/presence", "sent to an incoming topic");
            }
        }
        self.settle(admission);
    }

    fn on_offer(&mut self, from: String, sdp: String, caps: Option<Capabilities>, now: u64) {
        if let Some(existing) = self.peers.get(&from) {
            if existing.role == Role::Answerer && existing.remote_ufrag == ice_ufrag(&sdp) {
                // A peerchat peer offers again while its chat is not open: our answer may
                // have reached nobody (see `recovery::signaling_restored`), so it goes again.
                debug!(peer = %from, "duplicate offer");
                if !existing.channel_open && existing.remote_caps.is_some() {
                    self.publish_description_again(&from, now);
                }
                return;
            }
            // An open chat that is not being recovered has no offer of ours in the way.
            let glare = existing.role == Role::Offerer
                && !existing.remote_applied
                && (!existing.channel_open || existing.recovery.is_some());
            if glare && self.me < from {
                // Both offered at once. The offer of the name that sorts first wins, so both
                // ends pick the same one and exactly one connection results. Ours goes
                // again: theirs shows the peer is reachable now, and ours may have reached
                // nobody (signaling is at most once, and a roaming peer offers as soon as
                // its renewed broker connection is subscribed, which may be after ours went).
                debug!(peer = %from, "glare: keeping our offer, sending it again");
                return self.publish_description_again(&from, now);
            }
            // The peer restarts ICE on the connection we share: answer on it.
            let same_connection = existing.channel_open
                && existing.remote_fingerprint.is_some()
                && existing.remote_fingerprint == dtls_fingerprint(&sdp);
            let recoverable = self.recoverable(&from);
            debug!(peer = %from, same_connection, recoverable, "offer for an existing chat");
            if same_connection && recoverable {
                return self.accept_restart_in_place(from, sdp, now);
            }
            // A chat with a peerchat peer moves to the new connection and keeps its
            // conversation: the peer recovers a lost connection, or it restarted.
            if recoverable {
                return self.accept_recovery_offer(from, sdp, caps, now);
            }
            // Ours yields to theirs, or the peer restarted and offers anew.
            let status = if glare {
                PeerStatus::Closed
            } else {
                PeerStatus::Disconnected
            };
            self.replace_session(&from, status);
        } else if self.peers.len() >= MAX_PEERS {
            self.events
                .push_back(ClientEvent::Error(ClientError::TooManyPeers(MAX_PEERS)));
            return;
        }
        let conn = self.open_session(&from, Role::Answerer, 0);
        let session = self.peers.get_mut(&from).expect("just opened");
        session.setup_deadline = None;
        session.remote_applied = true;
        session.remote_ufrag = ice_ufrag(&sdp);
        session.remote_fingerprint = dtls_fingerprint(&sdp);
        session.remote_caps = caps;
        self.resume_numbering(&from);
        self.actions.push_back(Action::AcceptOffer {
            peer: from.clone(),
            conn,
            sdp,
        });
        let early = self.early_candidates.remove(&from).unwrap_or_default();
        self.apply_remote_candidates(&from, early);
    }

    /// Answers an ICE restart of the connection we share. The chat channel stays; a frame
    /// on it tells the peer when a path works again (see `recovery::path_back`).
    fn accept_restart_in_place(&mut self, from: String, sdp: String, now: u64) {
        let session = self.peers.get_mut(&from).expect("caller found it");
        let deadline = session.recovery.as_mut().map(|recovery| {
            recovery.next_offer_at = None;
            recovery.in_place = true;
            now + IN_PLACE_TIMEOUT_MS
        });
        session.restart_in_place(Role::Answerer, deadline);
        session.remote_applied = true;
        session.remote_ufrag = ice_ufrag(&sdp);
        let conn = session.conn;
        self.actions.push_back(Action::AcceptOffer {
            peer: from.clone(),
            conn,
            sdp,
        });
        self.send_sign_of_life(&from);
        let early = self.early_candidates.remove(&from).unwrap_or_default();
        self.apply_remote_candidates(&from, early);
    }

    /// Answers an offer that moves an ongoing chat to a new connection.
    fn accept_recovery_offer(
        &mut self,
        from: String,
        sdp: String,
        caps: Option<Capabilities>,
        now: u64,
    ) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let session = self.peers.get_mut(&from).expect("caller found it");
        self.actions
            .push_back(Action::ClosePeer { conn: session.conn });
        // The chat is being recovered now, whether or not this side noticed a loss: the
        // peer leads this attempt, and if it does not open in time the next one follows.
        let recovery = session.recovery.get_or_insert_with(|| Recovery::new(now));
        recovery.next_offer_at = None;
        recovery.in_place = false;
        session.renew(conn, Role::Answerer, Some(now + ATTEMPT_TIMEOUT_MS));
        // A peer offering a way back is not leaving: a `bye` from the old connection is
        // stale (see `on_left_connection`).
        session.last_open = None;
        session.remote_applied = true;
        session.remote_ufrag = ice_ufrag(&sdp);
        session.remote_fingerprint = dtls_fingerprint(&sdp);
        session.adopt_caps(caps);
        self.resume_numbering(&from);
        self.actions.push_back(Action::AcceptOffer {
            peer: from.clone(),
            conn,
            sdp,
        });
        self.set_status(&from, PeerStatus::Connecting);
        let early = self.early_candidates.remove(&from).unwrap_or_default();
        self.apply_remote_candidates(&from, early);
    }

    fn on_answer(&mut self, from: String, sdp: String, caps: Option<Capabilities>) {
        let Some(session) = self.peers.get_mut(&from) else {
            self.unexpected(from, "signal-answer", "no offer was sent to this user");
            return;
        };
        // An answer to an offer we have since replaced (our network changed again before it
        // came) would pair our new connection with one the peer is about to drop: the
        // answer to the new offer follows.
        let ours = session.local_description.as_deref().and_then(ice_ufrag);
        let answered = caps.as_ref().and_then(|c| c.answers.as_ref());
        if answered.is_some_and(|answered| Some(answered) != ours.as_ref()) {
            debug!(peer = %from, "answer to an earlier offer ignored");
            return;
        }
        if session.role == Role::Offerer
            && session.remote_applied
            && session.remote_ufrag.is_some()
            && session.remote_ufrag == ice_ufrag(&sdp)
        {
            // The peer answered again (see `publish_description_again`): we have it.
            debug!(peer = %from, "duplicate answer ignored");
            return;
        }
        if session.role != Role::Offerer || session.remote_applied {
            self.unexpected(from, "signal-answer", "the session is not waiting for one");
            return;
        }
        session.remote_applied = true;
        session.remote_ufrag = ice_ufrag(&sdp);
        session.remote_fingerprint = dtls_fingerprint(&sdp);
        session.adopt_caps(caps);
        let conn = session.conn;
        let in_place = session.channel_open;
        let early = std::mem::take(&mut session.early_remote);
        self.resume_numbering(&from);
        self.actions.push_back(Action::ApplyAnswer { conn, sdp });
        self.apply_remote_candidates(&from, early);
        if in_place {
            self.send_sign_of_life(&from);
        }
    }

    fn on_remote_candidate(&mut self, from: String, candidate: IceCandidate) {
        match self.peers.get_mut(&from) {
            Some(session) if session.remote_applied => {
                self.apply_remote_candidates(&from, vec![candidate]);
            }
            Some(session) => push_bounded(&mut session.early_remote, candidate),
            None => {
                if !self.early_candidates.contains_key(&from)
                    && self.early_candidates.len() >= MAX_EARLY_PEERS
                {
                    self.unexpected(from, "signal-candidate", "too many unknown peers");
                    return;
                }
                push_bounded(self.early_candidates.entry(from).or_default(), candidate);
            }
        }
    }

    /// The server says `target` was not registered when we published to it. A first offer
    /// went nowhere: the peer is offline. A recovery offer may have gone out while the
    /// peer was between broker connections (a phone changing networks): the next attempt
    /// follows, as for any attempt that did not open.
    fn on_delivery_failed(&mut self, target: String, now: u64) {
        let setting_up = self
            .peers
            .get(&target)
            .is_some_and(|s| !s.channel_open && s.role == Role::Offerer);
        if setting_up && self.recovering(&target) {
            debug!(%target, "recovery offer not delivered; trying again later");
            self.begin_recovery(&target, now, Trigger::AttemptFailed);
        } else if setting_up {
            self.events
                .push_back(ClientEvent::Error(ClientError::PeerOffline(target.clone())));
            self.end_session(&target, PeerStatus::Failed, ChatEnd::PeerOffline);
        } else {
            debug!(%target, "delivery-failed for a peer we are not calling");
        }
    }

    /// Adds candidates to the current connection, dropping those of an older ICE session.
    fn apply_remote_candidates(&mut self, peer: &str, candidates: Vec<IceCandidate>) {
        let Some(session) = self.peers.get(peer) else {
            return;
        };
        for candidate in candidates {
            if session.is_current_candidate(&candidate) {
                self.actions.push_back(Action::AddCandidate {
                    conn: session.conn,
                    candidate,
                });
            } else {
                debug!(%peer, "candidate of a replaced connection dropped");
            }
        }
    }
}

/// The claimed sender of a payload that failed to decode, for the error event.
fn sender_hint(payload: &[u8]) -> String {
    crate::json::parse_bytes(payload)
        .ok()
        .and_then(|v| v.get("from").and_then(|f| f.as_str()).map(str::to_owned))
        .map(|from| from.chars().take(64).collect())
        .unwrap_or_else(|| "unknown".to_owned())
}
