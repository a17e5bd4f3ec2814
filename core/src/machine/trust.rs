//! Trust in signaling. Offers, answers and candidates go out sealed with this device's
//! identity key ([`crate::protocol::Seal`]); a peer's are checked before anything reads
//! them. Refused, with an error event and no effect: a seal that does not verify (a changed
//! `from`, SDP, DTLS fingerprint, candidate or `peerchat` field), a seal made for another
//! user, a stale seal, a replay ([`super::replay`]), a key other than the pinned one, an
//! older seal format than the sender used before (a downgrade), and an unsealed message
//! from a name with a pinned key.
//!
//! Keys are pinned only for peers this client chats with, once their seal verified: the
//! sender of an offer it accepts, or of the answer to its own offer (trust on first use).
//! Nothing else pins, so strangers' messages cannot fill the pins; a full store refuses a
//! chat with a new sealed name rather than leave it unpinned. Unsealed messages from names
//! with no pin are original clients: they chat, unverified.

use super::replay::ReplayMarks;
use super::{Action, ClientMachine};
use crate::event::{ClientError, ClientEvent};
use crate::identity::{Identity, PublicKey, safety_number, signature_text};
use crate::protocol::{
    Capabilities, SEAL_VERSION, Seal, SignalMessage, sealed_bytes_v1, sealed_bytes_v2,
};
use crate::small_map::{SmallMap, SmallSet};

/// How far a seal's moment may be from our clock: generous for clocks that are off, short
/// enough that a captured seal is useless soon.
pub(super) const SEAL_MAX_SKEW_MS: u64 = 10 * 60 * 1000;

/// Most pinned names. Only chats pin, so this many takes a long time to reach even for
/// someone who offers from new names all day; then chats with new sealed names are
/// refused (never left unpinned) until the user forgets some. ~1.7 MB as text, which a
/// browser's local storage still holds.
pub const MAX_PINS: usize = 16_384;

/// How far ahead of our clock our seal moments may run to keep growing (several seals in
/// one millisecond, a clock set back a little). A clock set back further is followed:
/// peers then refuse our seals until it catches up with what they saw.
const MAX_SEAL_LEAD_MS: u64 = 60_000;

/// Names whose candidates came before their offer or answer, with who sealed them: as
/// many as may hold early candidates.
const MAX_EARLY_SIGNERS: usize = super::MAX_PEERS + super::MAX_EARLY_PEERS;

/// A pinned key, whether the user compared safety numbers and marked it verified, and the
/// newest seal format the peer has used (an older one from it is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub key: PublicKey,
    pub verified: bool,
    pub seal_version: u8,
}

#[derive(Debug, Default)]
pub(super) struct Trust {
    identity: Option<Identity>,
    /// Wall-clock ms (since the Unix epoch) minus machine time, as of the latest reading
    /// (see [`ClientMachine::handle_wall_clock`]).
    wall_offset: Option<i64>,
    /// The wall clock's last reading.
    last_wall: Option<u64>,
    /// The moment of our latest seal: each one's is later.
    last_sealed: u64,
    pins: SmallMap<String, Pin>,
    marks: ReplayMarks,
    early_signers: SmallMap<String, Signer>,
    /// Peers whose identity the app has been told of in this run.
    announced: SmallSet<String>,
}

/// Who sealed the candidates a name sent before its offer or answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signer {
    Unsealed,
    Key(PublicKey),
    /// More than one key, or sealed and unsealed: some are not the peer's.
    Mixed,
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

    /// The moment for our next seal: the clock, or just after our last seal if that is
    /// not behind it (peers refuse a moment they have seen from us).
    fn next_seal_moment(&mut self, now: u64) -> u64 {
        let clock = self.wall(now).unwrap_or(now);
        let next = self.last_sealed.saturating_add(1);
        let ts = if next > clock && next - clock <= MAX_SEAL_LEAD_MS {
            next
        } else {
            clock
        };
        self.last_sealed = ts;
        ts
    }
}

/// A peer's signaling let in, and what sealed it, until the machine has handled it
/// (see [`ClientMachine::settle`]).
#[derive(Debug)]
pub(super) struct Admission {
    from: String,
    kind: &'static str,
    /// The key and seal format that sealed it; `None` when unsealed.
    sealed: Option<(PublicKey, u8)>,
    /// How many actions were queued before the message was handled.
    actions_before: usize,
}

/// Why a peer's signaling was refused.
enum Refusal {
    /// Sealed, but with a key other than the one pinned for the name.
    KeyChanged,
    Other(String),
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

    /// The wall clock read `wall_ms` (ms since the Unix epoch) at machine time `now`. A
    /// driver reports it with every input: the machine's own time is a monotonic clock,
    /// which stops while the device sleeps, and seals carry wall-clock moments.
    pub fn handle_wall_clock(&mut self, now: u64, wall_ms: u64) {
        self.trust.wall_offset = Some(wall_ms as i64 - now as i64);
        self.trust.last_wall = Some(wall_ms);
    }

    /// The wall clock (ms since the Unix epoch) as last given, if ever.
    pub(super) fn last_wall(&self) -> Option<u64> {
        self.trust.last_wall
    }

    /// Pins `pin` for `peer` (a pin kept from an earlier run).
    pub fn pin_key(&mut self, peer: &str, pin: Pin) {
        self.trust.pins.insert(peer.to_owned(), pin);
    }

    /// Asks the backend to keep `peer`'s pin as it is now.
    fn keep_pin(&mut self, peer: &str) {
        let pin = self.trust.pins.get(peer).cloned();
        self.actions.push_back(Action::KeepPin {
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
            self.trust.announced.remove(peer);
            self.keep_pin(peer);
        }
    }

    /// Adds our seal to an offer, answer or candidate for `peer`: a v1 signature for peers
    /// of the first format and a v2 one, which also covers the `peerchat` field.
    pub(super) fn seal_for(&mut self, peer: &str, message: &mut SignalMessage, now: u64) {
        if self.trust.identity.is_none() {
            return;
        }
        let ts = self.trust.next_seal_moment(now);
        let Some(identity) = &self.trust.identity else {
            return;
        };
        let Some(parts) = sealed_parts(message) else {
            return;
        };
        let v1 = sealed_bytes_v1(parts.kind, parts.from, peer, ts, &parts.body);
        let v2 = sealed_bytes_v2(
            parts.kind,
            parts.from,
            peer,
            ts,
            parts.peerchat,
            &parts.body,
        );
        let seal = Seal {
            key: identity.public().to_text(),
            to: peer.to_owned(),
            ts,
            sig: signature_text(&identity.sign(&v1)),
            sig2: Some(signature_text(&identity.sign(&v2))),
        };
        if let SignalMessage::SignalOffer { seal: slot, .. }
        | SignalMessage::SignalAnswer { seal: slot, .. }
        | SignalMessage::SignalCandidate { seal: slot, .. } = message
        {
            *slot = Some(seal);
        }
    }

    /// Lets a peer's offer, answer or candidate in, or refuses it with an error event (see
    /// the module doc). What is let in is settled once the machine has handled it.
    pub(super) fn admit(&mut self, message: &SignalMessage, now: u64) -> Option<Admission> {
        let actions_before = self.actions.len();
        let Some(parts) = sealed_parts(message) else {
            return Some(Admission {
                from: String::new(),
                kind: "",
                sealed: None,
                actions_before,
            });
        };
        let (kind, from) = (parts.kind, parts.from.to_owned());
        match self.verdict(message, &parts, now) {
            Ok(sealed) => {
                self.note_signer(&from, kind, sealed.map(|(key, _)| key));
                Some(Admission {
                    from,
                    kind,
                    sealed,
                    actions_before,
                })
            }
            Err(Refusal::KeyChanged) => {
                tracing::warn!(%from, kind, "signaling with another identity key refused");
                self.events
                    .push_back(ClientEvent::Error(ClientError::KeyChanged(from)));
                None
            }
            Err(Refusal::Other(reason)) => {
                tracing::warn!(%from, kind, %reason, "signaling refused");
                self.events
                    .push_back(ClientEvent::Error(ClientError::Untrusted { from, reason }));
                None
            }
        }
    }

    /// After the machine handled what `admit` let in: the first key of a peer we now chat
    /// with (we accepted its offer, or applied its answer to ours) is pinned.
    pub(super) fn settle(&mut self, admission: Admission) {
        let Some((key, seal_version)) = admission.sealed else {
            return;
        };
        let from = admission.from;
        if self.trust.pins.contains_key(&from) {
            return;
        }
        let conn = self.peers.get(&from).map(|s| s.conn);
        let handled = self.actions.iter().skip(admission.actions_before);
        let chatting = match admission.kind {
            "signal-offer" => handled
                .into_iter()
                .any(|a| matches!(a, Action::AcceptOffer { peer, .. } if *peer == from)),
            "signal-answer" => handled
                .into_iter()
                .any(|a| matches!(a, Action::ApplyAnswer { conn: c, .. } if Some(*c) == conn)),
            _ => false,
        };
        if chatting {
            let pin = Pin {
                key,
                verified: false,
                seal_version,
            };
            self.trust.pins.insert(from.clone(), pin);
            self.keep_pin(&from);
            self.announce_identity(&from);
        }
    }

    /// The key and seal format a peer's message was sealed with (`None`: unsealed), or why
    /// it is refused.
    fn verdict(
        &mut self,
        message: &SignalMessage,
        parts: &SealedParts<'_>,
        now: u64,
    ) -> Result<Option<(PublicKey, u8)>, Refusal> {
        let refuse = |reason: &str| Err(Refusal::Other(reason.to_owned()));
        let from = parts.from;
        let Some(seal) = message_seal(message) else {
            return if self.trust.pins.contains_key(from) {
                refuse("unsealed, though this user seals what it sends")
            } else {
                Ok(None)
            };
        };
        let Some(key) = PublicKey::parse(&seal.key) else {
            return refuse("its seal names no valid key");
        };
        if seal.to != self.me {
            return Err(Refusal::Other(format!(
                "sealed for `{}`, not for us",
                seal.to
            )));
        }
        if let Some(wall) = self.trust.wall(now)
            && seal.ts.abs_diff(wall) > SEAL_MAX_SKEW_MS
        {
            return refuse("its seal is too old (or our clock is far off)");
        }
        let (version, sig, bytes) = match &seal.sig2 {
            Some(sig2) => {
                let bytes = sealed_bytes_v2(
                    parts.kind,
                    from,
                    &seal.to,
                    seal.ts,
                    parts.peerchat,
                    &parts.body,
                );
                (SEAL_VERSION, sig2, bytes)
            }
            None => {
                let bytes = sealed_bytes_v1(parts.kind, from, &seal.to, seal.ts, &parts.body);
                (1, &seal.sig, bytes)
            }
        };
        if !key.verifies(&bytes, sig) {
            return refuse("its seal does not match it: it was altered on the way, or forged");
        }
        if self.trust.marks.is_replay(&key, seal.ts, sig) {
            return refuse("a replay of a message already received");
        }
        let pinned = (self.trust.pins.get(from)).map(|pin| (pin.key, pin.seal_version));
        match pinned {
            Some((pinned_key, _)) if pinned_key != key => return Err(Refusal::KeyChanged),
            Some((_, pinned_version)) if version < pinned_version => {
                return refuse(
                    "sealed in an older format than this user's earlier messages: someone \
                     removed the newer seal on the way",
                );
            }
            Some((_, pinned_version)) => {
                if version > pinned_version
                    && let Some(pin) = self.trust.pins.get_mut(from)
                {
                    pin.seal_version = version;
                    self.keep_pin(from);
                }
                // Pinned in an earlier run: the app hears of it once in this one.
                if !self.trust.announced.contains(from) {
                    self.announce_identity(from);
                }
            }
            None if parts.kind != "signal-candidate" && self.trust.pins.len() >= MAX_PINS => {
                return Err(Refusal::Other(format!(
                    "a new contact, and this client keeps {MAX_PINS} pinned keys, the most it \
                     may: forget some to chat with someone new"
                )));
            }
            None => {}
        }
        let pins = &self.trust.pins;
        let pinned = || pins.values().map(|pin| pin.key).collect();
        self.trust.marks.accept(key, seal.ts, sig, pinned);
        Ok(Some((key, version)))
    }

    /// Remembers who sealed candidates that arrive before a name's offer or answer, and
    /// drops them when the offer or answer comes from someone else: only the peer's own
    /// candidates are applied to its chat.
    fn note_signer(&mut self, from: &str, kind: &str, key: Option<PublicKey>) {
        let signer = key.map_or(Signer::Unsealed, Signer::Key);
        if kind != "signal-candidate" {
            let early = self.trust.early_signers.remove(from);
            if early.is_some_and(|early| early != signer) {
                tracing::debug!(%from, "early candidates sealed by someone else dropped");
                self.early_candidates.remove(from);
                if let Some(session) = self.peers.get_mut(from) {
                    session.early_remote.clear();
                }
            }
            return;
        }
        let waiting = self.peers.get(from).is_none_or(|s| !s.remote_applied);
        if !waiting || self.trust.pins.contains_key(from) {
            return;
        }
        let signers = &mut self.trust.early_signers;
        if !signers.contains_key(from) && signers.len() >= MAX_EARLY_SIGNERS {
            // Whose candidates these are can no longer be told: they go.
            if let Some((name, _)) = signers.pop_first() {
                self.early_candidates.remove(&name);
                if let Some(session) = self.peers.get_mut(&name) {
                    session.early_remote.clear();
                }
            }
        }
        let entry = self.trust.early_signers.entry(from.to_owned());
        let seen = entry.or_insert(signer);
        if *seen != signer {
            *seen = Signer::Mixed;
        }
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

/// What a seal covers in a message that carries one.
struct SealedParts<'a> {
    kind: &'static str,
    from: &'a str,
    peerchat: Option<&'a Capabilities>,
    /// The SDP, or the candidate's JSON.
    body: String,
}

/// The sealed parts of an offer, answer or candidate; `None` for other messages.
fn sealed_parts(message: &SignalMessage) -> Option<SealedParts<'_>> {
    Some(match message {
        SignalMessage::SignalOffer {
            from,
            offer,
            peerchat,
            ..
        } => SealedParts {
            kind: "signal-offer",
            from,
            peerchat: peerchat.as_ref(),
            body: offer.sdp.clone(),
        },
        SignalMessage::SignalAnswer {
            from,
            answer,
            peerchat,
            ..
        } => SealedParts {
            kind: "signal-answer",
            from,
            peerchat: peerchat.as_ref(),
            body: answer.sdp.clone(),
        },
        SignalMessage::SignalCandidate {
            from, candidate, ..
        } => SealedParts {
            kind: "signal-candidate",
            from,
            peerchat: None,
            // The codec fixes the field order, so both ends write the same text.
            body: crate::protocol::write_candidate(candidate),
        },
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
