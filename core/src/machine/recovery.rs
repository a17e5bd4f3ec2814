//! Recovering a chat whose connection was lost (a network switch, a laptop waking up): a
//! new connection is negotiated through the broker while the conversation stays, and what
//! was sent meanwhile goes out, once and in order, when it opens.
//!
//! Only between peerchat peers (acknowledgements make the re-sending safe); an original
//! client ends its chat on a lost path, as it always did. The name that sorts first offers
//! the new connection, so both ends never offer at once; the other waits for that offer.

use super::peer::Role;
use super::{Action, ClientMachine};
use crate::event::PeerStatus;
use crate::protocol::FEATURE_ACKS;

/// How long ICE may report a path lost (`disconnected`) before the chat moves to a new
/// connection: long enough for a path that is only briefly lost to come back by itself.
pub(super) const LOST_GRACE_MS: u64 = 2_000;

/// How long a chat is recovered for before it counts as ended.
pub(super) const RECOVERY_WINDOW_MS: u64 = 60_000;

/// How long one attempt (offer to open channel) may take before the next: a setup takes
/// milliseconds when the peer is reachable.
const ATTEMPT_TIMEOUT_MS: u64 = 10_000;

/// The wait before offering again after a failed attempt: 0.5 s doubling to 8 s.
fn retry_delay(attempts: u32) -> u64 {
    (500u64 << attempts.min(4)).min(8_000)
}

/// A chat moving to a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recovery {
    /// Offers made so far.
    pub attempts: u32,
    /// When to offer next (the side that offers), if no attempt is under way.
    pub next_offer_at: Option<u64>,
    /// When the chat is given up.
    pub give_up_at: u64,
}

impl ClientMachine {
    /// Whether the chat with `peer` is worth moving to a new connection rather than ended.
    pub(super) fn recoverable(&self, peer: &str) -> bool {
        let Some(session) = self.peers.get(peer) else {
            return false;
        };
        (session.channel_open || session.recovery.is_some())
            && session.speaks(FEATURE_ACKS)
            && self.presence.get(peer) != Some(&false)
    }

    /// Drops the lost connection and starts (or continues) recovering the chat: the side
    /// that offers does so after a backoff, the other waits for the offer.
    pub(super) fn begin_recovery(&mut self, peer: &str, now: u64) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let offers = self.me.as_str() < peer;
        let session = self.peers.get_mut(peer).expect("caller checked");
        self.actions
            .push_back(Action::ClosePeer { conn: session.conn });
        let recovery = session.recovery.get_or_insert(Recovery {
            attempts: 0,
            next_offer_at: None,
            give_up_at: now + RECOVERY_WINDOW_MS,
        });
        recovery.next_offer_at = offers.then(|| {
            // The first offer goes at once; later ones back off.
            let delay = match recovery.attempts {
                0 => 0,
                n => retry_delay(n - 1),
            };
            now + delay
        });
        // A fresh connection id with nothing behind it yet: events from the old
        // connection no longer reach this chat, and the peer's offer replaces it.
        session.renew(conn, Role::Answerer, None);
        self.set_status(peer, PeerStatus::Disconnected);
    }

    /// Offers due, and chats whose recovery ran out of time.
    pub(super) fn recovery_timeouts(&mut self, now: u64) {
        let lost: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, s)| s.lost_since.is_some_and(|t| t + LOST_GRACE_MS <= now))
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in lost {
            if self.recoverable(&peer) {
                self.begin_recovery(&peer, now);
            } else if let Some(session) = self.peers.get_mut(&peer) {
                session.lost_since = None;
            }
        }
        let due: Vec<(String, bool)> = self
            .peers
            .iter()
            .filter_map(|(peer, s)| {
                let recovery = s.recovery.as_ref()?;
                if recovery.give_up_at <= now {
                    Some((peer.clone(), false))
                } else {
                    recovery
                        .next_offer_at
                        .is_some_and(|t| t <= now)
                        .then(|| (peer.clone(), true))
                }
            })
            .collect();
        for (peer, offer) in due {
            if offer {
                self.offer_again(&peer, now);
            } else {
                self.end_session(&peer, PeerStatus::Failed);
            }
        }
    }

    fn offer_again(&mut self, peer: &str, now: u64) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let session = self.peers.get_mut(peer).expect("caller found it");
        let recovery = session.recovery.as_mut().expect("caller found it");
        recovery.attempts += 1;
        recovery.next_offer_at = None;
        let deadline = (now + ATTEMPT_TIMEOUT_MS).min(recovery.give_up_at);
        session.renew(conn, Role::Offerer, Some(deadline));
        self.actions.push_back(Action::StartOffer {
            peer: peer.to_owned(),
            conn,
        });
        self.set_status(peer, PeerStatus::Connecting);
    }

    /// A chat's channel is open: what the peer has not acknowledged (kept from a lost
    /// connection, or written meanwhile) goes again, in order (the peer shows each once).
    pub(super) fn finish_recovery(&mut self, peer: &str) {
        let session = self.peers.get_mut(peer).expect("caller found it");
        session.recovery = None;
        let conn = session.conn;
        for (_, text) in &session.unacked {
            self.actions.push_back(Action::SendText {
                conn,
                text: text.clone(),
            });
        }
    }

    /// The next moment recovery has something to do.
    pub(super) fn recovery_deadline(&self) -> Option<u64> {
        self.peers
            .values()
            .flat_map(|s| {
                let recovery = s.recovery.as_ref();
                [
                    s.lost_since.map(|t| t + LOST_GRACE_MS),
                    recovery.and_then(|r| r.next_offer_at),
                    recovery.map(|r| r.give_up_at),
                ]
            })
            .flatten()
            .min()
    }
}
