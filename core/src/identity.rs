//! A user's identity on one device: an Ed25519 key pair, made on first start and kept by
//! the platform, that seals what this client says in signaling (see
//! [`crate::protocol::Seal`]). Peers pin the first key they see for a name (trust on first
//! use) and compare a [`safety_number`] out of band to be sure nobody sits in between.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha512};

/// This device's key pair for one user.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret half.
        f.debug_tuple("Identity").field(&self.public()).finish()
    }
}

impl Identity {
    /// The identity whose secret key is `seed` (32 random bytes, kept by the platform).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The secret to keep, to be this identity again after a restart.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// Someone's public identity key: what peers pin and compare.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.to_text())
    }
}

impl PublicKey {
    /// The key as it travels: base64url, no padding (43 characters).
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// A key from its text form; `None` unless it is 32 bytes that form a valid key.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes).ok()?;
        Some(Self(bytes))
    }

    /// Whether `signature` (base64url) is this key's signature of `message`. Strict
    /// verification: no malleable or small-order forms.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some(signature) = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        else {
            return false;
        };
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        key.verify_strict(message, &Signature::from_bytes(&signature))
            .is_ok()
    }
}

/// Encodes a signature as it travels (base64url, no padding).
pub fn signature_text(signature: &[u8; 64]) -> String {
    URL_SAFE_NO_PAD.encode(signature)
}

/// A number both users see the same for their two keys, and differently for any other
/// pair: read aloud or compared side by side, equal numbers mean each has the other's
/// real key. 60 digits in 12 groups of 5, from SHA-512 over both keys in sorted order.
pub fn safety_number(a: &PublicKey, b: &PublicKey) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    let digest = Sha512::new()
        .chain_update(b"peerchat safety number v1")
        .chain_update(first.0)
        .chain_update(second.0)
        .finalize();
    digest
        .chunks_exact(5)
        .take(12)
        .map(|chunk| {
            let value = chunk
                .iter()
                .fold(0u64, |n, byte| (n << 8) | u64::from(*byte));
            format!("{:05}", value % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(n: u8) -> Identity {
        Identity::from_seed([n; 32])
    }

    #[test]
    fn a_signature_verifies_only_for_its_message_and_key() {
        let (alice, mallory) = (identity(1), identity(2));
        let signature = signature_text(&alice.sign(b"offer"));
        assert!(alice.public().verifies(b"offer", &signature));
        assert!(!alice.public().verifies(b"offer!", &signature));
        assert!(!mallory.public().verifies(b"offer", &signature));
        assert!(!alice.public().verifies(b"offer", "not base64 at all"));
        assert!(!alice.public().verifies(b"offer", &signature[..20]));
    }

    #[test]
    fn keys_travel_as_text_and_garbage_is_refused() {
        let key = identity(3).public();
        assert_eq!(PublicKey::parse(&key.to_text()), Some(key));
        assert_eq!(key.to_text().len(), 43);
        for bad in ["", "abc", &"A".repeat(44), "!!!!"] {
            assert_eq!(PublicKey::parse(bad), None, "{bad}");
        }
        assert_eq!(Identity::from_seed(identity(3).seed()).public(), key);
    }

    #[test]
    fn safety_numbers_agree_on_both_sides_and_differ_for_other_keys() {
        let (alice, bob, mallory) = (
            identity(1).public(),
            identity(2).public(),
            identity(9).public(),
        );
        let number = safety_number(&alice, &bob);
        assert_eq!(number, safety_number(&bob, &alice));
        assert_ne!(number, safety_number(&alice, &mallory));
        assert_eq!(number.len(), 12 * 5 + 11);
        assert!(
            number
                .split(' ')
                .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit()))
        );
    }
}
