//! Trust in signaling. Offers, answers and candidates go out sealed with this device's
//! identity key ([`crate::protocol::Seal`]); a peer's are checked before anything reads
//! them. The first key seen for a name is pinned (trust on first use). Refused, with an
//! error event and no effect: a seal that does not verify (a changed `from`, SDP, DTLS
//! fingerprint or candidate), a seal made for another user, a stale or replayed seal, a
//! key other than the pinned one, and an unsealed message from a name that sealed before.
//! Unsealed messages from names never seen sealed are original clients: they chat,
//! unverified.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::ClientMachine;
use crate::event::{ClientError, ClientEvent};
use crate::identity::{Identity, PublicKey, safety_number, signature_text};
use crate::protocol::{Seal, SignalMessage, sealed_bytes};

/// How far a seal's moment may be from our clock: generous for clocks that are off, short
/// enough that remembering every seal of the window is cheap.
pub(super) const SEAL_MAX_SKEW_MS: u64 = 10 * 60 * 1000;

/// Most seals remembered against replay; beyond it the oldest go (a flood of fresh seals
/// can only come from keys the flooder holds).
const MAX_REMEMBERED_SEALS: usize = 8192;

/// Most pinned names; beyond it new names are not pinned (and stay unverified).
const MAX_PINS: usize = 4096;

/// A pinned key, and whether the user compared safety numbers and marked it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub key: PublicKey,
    pub verified: bool,
}

#[derive(Debug, Default)]
pub(super) struct Trust {
    identity: Option<Identity>,
    /// Wall-clock ms (since the Unix epoch) at machine time 0, once known.
    wall_offset: Option<i64>,
    pins: BTreeMap<String, Pin>,
    /// Seals accepted within the skew window, oldest first, by signature.
    seen: VecDeque<(u64, String)>,
    seen_signatures: BTreeSet<String>,
    /// Peers whose identity the app has been told of in this run.
    announced: BTreeSet<String>,
}

impl Trust {
    /// This device's identity, once the platform gave it.
    pub(super) fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    fn wall(&self, now: u64) -> Option<u64> {
        self.wall_offset
            .map(|offset| (now as i64).saturating_add(offset).max(0) as u64)
    }

    fn remember(&mut self, ts: u64, signature: &str, wall: Option<u64>) {
        if let Some(wall) = wall {
            while self
                .seen
                .front()
                .is_some_and(|(t, _)| t.saturating_add(SEAL_MAX_SKEW_MS) < wall)
            {
                let (_, old) = self.seen.pop_front().expect("checked");
                self.seen_signatures.remove(&old);
            }
        }
        if self.seen.len() >= MAX_REMEMBERED_SEALS
            && let Some((_, old)) = self.seen.pop_front()
        {
            self.seen_signatures.remove(&old);
        }
        self.seen.push_back((ts, signature.to_owned()));
        self.seen_signatures.insert(signature.to_owned());
    }
}

/// What a peer's signaling said about its identity.
enum Verdict {
    /// Sealed with the pinned key, or with a key now pinned (the first one seen).
    Sealed,
    /// Not sealed, from a name never seen sealed: an original client.
    Unsealed,
    Refused(String),
    /// Sealed, but with a key other than the one pinned for the name.
    KeyChanged,
}

impl ClientMachine {
    /// Seals what this client says from now on with `identity`.
    pub fn set_identity(&mut self, identity: Identity) {
        self.trust.identity = Some(identity);
    }

    /// This client's public identity key, once it has one.
    pub fn identity_key(&self) -> Option<PublicKey> {
        self.trust.identity.as_ref().map(Identity::public)
    }

    /// Tells the machine the wall-clock time (`wall_ms` since the Unix epoch) at machine
    /// time `now`, for the moments in seals.
    pub fn set_wall_clock(&mut self, now: u64, wall_ms: u64) {
        self.trust.wall_offset = Some(wall_ms as i64 - now as i64);
    }

    /// Pins `key` for `peer` (a pin kept from an earlier run).
    pub fn pin_key(&mut self, peer: &str, key: PublicKey, verified: bool) {
        self.trust
            .pins
            .insert(peer.to_owned(), Pin { key, verified });
    }

    /// Asks the backend to keep `peer`'s pin as it is now.
    fn keep_pin(&mut self, peer: &str) {
        let pin = self.trust.pins.get(peer).cloned();
        self.actions.push_back(super::Action::KeepPin {
            peer: peer.to_owned(),
            pin,
        });
    }

    /// The key pinned for `peer`, if any.
    pub fn pinned_key(&self, peer: &str) -> Option<&Pin> {
        self.trust.pins.get(peer)
    }

    /// The safety number of our key and `peer`'s pinned key.
    pub fn safety_number(&self, peer: &str) -> Option<String> {
        let ours = self.identity_key()?;
        Some(safety_number(&ours, &self.trust.pins.get(peer)?.key))
    }

    /// Marks `peer`'s pinned key verified: the user compared safety numbers.
    pub fn mark_verified(&mut self, peer: &str) -> Result<(), ClientError> {
        let pin = (self.trust.pins.get_mut(peer))
            .ok_or_else(|| ClientError::NoKeyFor(peer.to_owned()))?;
        pin.verified = true;
        self.keep_pin(peer);
        self.announce_identity(peer);
        Ok(())
    }

    /// Forgets `peer`'s pinned key, so the next key it presents is pinned instead: for a
    /// peer that really changed devices, after comparing safety numbers anew.
    pub fn forget_key(&mut self, peer: &str) {
        if self.trust.pins.remove(peer).is_some() {
            self.keep_pin(peer);
        }
    }

    /// Adds our seal to an offer, answer or candidate for `peer`.
    pub(super) fn seal_for(&self, peer: &str, message: &mut SignalMessage, now: u64) {
        let Some(identity) = &self.trust.identity else {
            return;
        };
        let Some((kind, from, body)) = sealed_parts(message) else {
            return;
        };
        let ts = self.trust.wall(now).unwrap_or(now);
        let bytes = sealed_bytes(kind, from, peer, ts, &body);
        let seal = Seal {
            key: identity.public().to_text(),
            to: peer.to_owned(),
            ts,
            sig: signature_text(&identity.sign(&bytes)),
        };
        if let SignalMessage::SignalOffer { seal: slot, .. }
        | SignalMessage::SignalAnswer { seal: slot, .. }
        | SignalMessage::SignalCandidate { seal: slot, .. } = message
        {
            *slot = Some(seal);
        }
    }

    /// Whether a peer's offer, answer or candidate may be read (see the module doc);
    /// refusals become error events.
    pub(super) fn admit(&mut self, message: &SignalMessage, now: u64) -> bool {
        let Some((kind, from, _)) = sealed_parts(message) else {
            return true;
        };
        let from = from.to_owned();
        match self.verdict(message, now) {
            Verdict::Sealed | Verdict::Unsealed => true,
            Verdict::KeyChanged => {
                tracing::warn!(%from, kind, "signaling with another identity key refused");
                self.events
                    .push_back(ClientEvent::Error(ClientError::KeyChanged(from)));
                false
            }
            Verdict::Refused(reason) => {
                tracing::warn!(%from, kind, %reason, "signaling refused");
                self.events
                    .push_back(ClientEvent::Error(ClientError::Untrusted { from, reason }));
                false
            }
        }
    }

    fn verdict(&mut self, message: &SignalMessage, now: u64) -> Verdict {
        let (kind, from, body) = sealed_parts(message).expect("caller checked");
        let Some(seal) = message_seal(message) else {
            return if self.trust.pins.contains_key(from) {
                Verdict::Refused("unsealed, though this user seals what it sends".into())
            } else {
                Verdict::Unsealed
            };
        };
        let Some(key) = PublicKey::parse(&seal.key) else {
            return Verdict::Refused("its seal names no valid key".into());
        };
        if seal.to != self.me {
            return Verdict::Refused(format!("sealed for `{}`, not for us", seal.to));
        }
        let wall = self.trust.wall(now);
        if let Some(wall) = wall
            && seal.ts.abs_diff(wall) > SEAL_MAX_SKEW_MS
        {
            return Verdict::Refused("its seal is too old (or our clock is far off)".into());
        }
        let bytes = sealed_bytes(kind, from, &seal.to, seal.ts, &body);
        if !key.verifies(&bytes, &seal.sig) {
            return Verdict::Refused(
                "its seal does not match it: it was altered on the way, or forged".into(),
            );
        }
        if self.trust.seen_signatures.contains(&seal.sig) {
            return Verdict::Refused("a replay of a message already received".into());
        }
        match self.trust.pins.get(from) {
            Some(pin) if pin.key == key => {
                // Pinned in an earlier run: the app hears of it once in this one.
                if !self.trust.announced.contains(from) {
                    let from = from.to_owned();
                    self.announce_identity(&from);
                }
            }
            Some(_) => return Verdict::KeyChanged,
            None if self.trust.pins.len() >= MAX_PINS => {}
            None => {
                self.trust.pins.insert(
                    from.to_owned(),
                    Pin {
                        key,
                        verified: false,
                    },
                );
                let from = from.to_owned();
                self.keep_pin(&from);
                self.announce_identity(&from);
            }
        }
        let (ts, sig) = (seal.ts, seal.sig.clone());
        self.trust.remember(ts, &sig, wall);
        Verdict::Sealed
    }

    fn announce_identity(&mut self, peer: &str) {
        let Some(pin) = self.trust.pins.get(peer) else {
            return;
        };
        self.trust.announced.insert(peer.to_owned());
        self.events.push_back(ClientEvent::PeerIdentity {
            peer: peer.to_owned(),
            key: pin.key.to_text(),
            safety_number: self.safety_number(peer),
            verified: pin.verified,
        });
    }
}

/// The type tag, sender and signed content of a message that carries seals.
fn sealed_parts(message: &SignalMessage) -> Option<(&'static str, &str, String)> {
    Some(match message {
        SignalMessage::SignalOffer { from, offer, .. } => {
            ("signal-offer", from.as_str(), offer.sdp.clone())
        }
        SignalMessage::SignalAnswer { from, answer, .. } => {
            ("signal-answer", from.as_str(), answer.sdp.clone())
        }
        SignalMessage::SignalCandidate {
            from, candidate, ..
        } => (
            "signal-candidate",
            from.as_str(),
            // Field order is fixed by the struct, so both ends write the same text.
            serde_json::to_string(candidate).unwrap_or_default(),
        ),
        _ => return None,
    })
}

fn message_seal(message: &SignalMessage) -> Option<&Seal> {
    match message {
        SignalMessage::SignalOffer { seal, .. }
        | SignalMessage::SignalAnswer { seal, .. }
        | SignalMessage::SignalCandidate { seal, .. } => seal.as_ref(),
        _ => None,
    }
}
