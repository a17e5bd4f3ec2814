//! Seals: a peerchat client's signature on each offer, answer and candidate it sends, with
//! its identity key ([`crate::identity`]), the recipient and the moment. The seal covers the
//! whole SDP, and so its DTLS fingerprint: whoever relays signaling (the broker, or anyone
//! who can publish to it) cannot change who speaks, to whom, or which certificate the
//! peer-to-peer session will present, without the recipient noticing. Original clients
//! send no seals and ignore them.

use serde::{Deserialize, Serialize};

/// The signature block of a sealed message (`"seal"` in its JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// The sender's identity key (base64url).
    pub key: String,
    /// The recipient: a seal made for one user is refused by any other.
    pub to: String,
    /// When it was sealed, in ms since the Unix epoch: stale seals are refused, and fresh
    /// ones are remembered until they go stale, so none is accepted twice.
    pub ts: u64,
    /// The Ed25519 signature (base64url) of [`sealed_bytes`].
    pub sig: String,
}

/// What a seal signs. Every field but the last is free of newlines (a type tag, two
/// validated usernames, a number), so no two messages sign the same bytes.
pub fn sealed_bytes(kind: &str, from: &str, to: &str, ts: u64, body: &str) -> Vec<u8> {
    format!("peerchat seal v1\n{kind}\n{from}\n{to}\n{ts}\n{body}").into_bytes()
}
