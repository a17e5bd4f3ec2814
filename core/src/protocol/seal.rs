//! Seals: a peerchat client's signature on each offer, answer and candidate it sends, with
//! its identity key ([`crate::identity`]), the recipient and the moment. The seal covers the
//! whole SDP, and so its DTLS fingerprint, and (from seal v2 on) the `peerchat` field with
//! the sender's features and run: whoever relays signaling (the broker, or anyone who can
//! publish to it) cannot change who speaks, to whom, which certificate the peer-to-peer
//! session will present, or what the sender announced, without the recipient noticing.
//! Original clients send no seals and ignore them.

use super::message::Capabilities;

/// The signature block of a sealed message (`"seal"` in its JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// The sender's identity key (base64url).
    pub key: String,
    /// The recipient: a seal made for one user is refused by any other.
    pub to: String,
    /// When it was sealed, in ms since the Unix epoch: stale seals are refused, and each
    /// sender's moments only grow, so none is accepted twice.
    pub ts: u64,
    /// The Ed25519 signature (base64url) of [`sealed_bytes_v1`], for peers of the first
    /// seal format, which read only this one.
    pub sig: String,
    /// The Ed25519 signature (base64url) of [`sealed_bytes_v2`], which also covers the
    /// `peerchat` field. Absent from peers of the first format; once a sender has sealed
    /// with it, a message of that sender without it is refused (no downgrade).
    pub sig2: Option<String>,
}

/// The newest seal format this client makes and reads.
pub const SEAL_VERSION: u8 = 2;

/// What a v1 seal signs. Every field but the last is free of newlines (a type tag, two
/// validated usernames, a number), so no two messages sign the same bytes.
pub fn sealed_bytes_v1(kind: &str, from: &str, to: &str, ts: u64, body: &str) -> Vec<u8> {
    format!("peerchat seal v1\n{kind}\n{from}\n{to}\n{ts}\n{body}").into_bytes()
}

/// What a v2 seal signs: v1's fields and, before the body, the `peerchat` field as compact
/// JSON ([`capabilities_text`]). That line is free of newlines too (JSON escapes them).
pub fn sealed_bytes_v2(
    kind: &str,
    from: &str,
    to: &str,
    ts: u64,
    peerchat: Option<&Capabilities>,
    body: &str,
) -> Vec<u8> {
    let peerchat = capabilities_text(peerchat);
    format!("peerchat seal v2\n{kind}\n{from}\n{to}\n{ts}\n{peerchat}\n{body}").into_bytes()
}

/// The `peerchat` field as a seal covers it: `{"version":…,"features":[…],"run":"…"}` in
/// that order with no spaces (`run` left out when absent), or `null` without the field.
/// Fields this version does not know are not covered: a version that adds one seals it in
/// a new seal format.
pub fn capabilities_text(peerchat: Option<&Capabilities>) -> String {
    peerchat.map_or_else(|| "null".to_owned(), super::codec::write_capabilities)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peerchat_field_is_signed_in_a_fixed_form() {
        let caps = Capabilities {
            version: 1,
            features: vec!["acks".into(), "files".into()],
            run: Some("0123456789abcdef".into()),
            answers: None,
        };
        assert_eq!(
            capabilities_text(Some(&caps)),
            r#"{"version":1,"features":["acks","files"],"run":"0123456789abcdef"}"#
        );
        assert_eq!(capabilities_text(None), "null");
        let v2 = sealed_bytes_v2("signal-offer", "alice", "bob", 7, Some(&caps), "v=0");
        let expected = "peerchat seal v2\nsignal-offer\nalice\nbob\n7\n\
             {\"version\":1,\"features\":[\"acks\",\"files\"],\"run\":\"0123456789abcdef\"}\nv=0";
        assert_eq!(String::from_utf8(v2).unwrap(), expected);
        let without_run = Capabilities { run: None, ..caps };
        assert_eq!(
            capabilities_text(Some(&without_run)),
            r#"{"version":1,"features":["acks","files"]}"#
        );
    }
}
