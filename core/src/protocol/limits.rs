//! Bounds on every size that crosses the wire.
//!
//! Each limit is generous for honest traffic and small enough that a hostile peer or broker
//! cannot make a client allocate without bound.

use super::ProtocolError;

/// Largest MQTT packet a client or the server accepts (topic, header and payload).
pub const MAX_MQTT_PACKET_BYTES: usize = 128 * 1024;

/// Largest signaling JSON message. A browser offer with trickled candidates is a few KiB.
pub const MAX_SIGNAL_BYTES: usize = 64 * 1024;

/// Largest SDP (offer or answer) accepted.
pub const MAX_SDP_BYTES: usize = 32 * 1024;

/// Largest single ICE candidate line.
pub const MAX_CANDIDATE_BYTES: usize = 1024;

/// Largest chat message, in UTF-8 bytes: one data-channel message, which every WebRTC
/// stack (browsers and webrtc-rs) delivers up to 64 KiB.
pub const MAX_CHAT_MESSAGE_BYTES: usize = 64 * 1024;

/// Longest username, in UTF-8 bytes.
pub const MAX_USERNAME_BYTES: usize = 64;

/// Checks that `name` can be a username: it is part of MQTT topic names, so it may not hold
/// topic separators or wildcards, and it is shown to people, so no control characters.
pub fn validate_username(name: &str) -> Result<(), ProtocolError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_USERNAME_BYTES {
        Some("it is longer than 64 bytes")
    } else if name.contains(['/', '+', '#']) {
        Some("it contains '/', '+' or '#', which MQTT topics reserve")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else if name.trim() != name {
        Some("it starts or ends with whitespace")
    } else if name == super::SERVER_NAME {
        Some("it is reserved for the signaling server")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ProtocolError::InvalidUsername {
            name: name.chars().take(80).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for name in ["alice", "Bob Smith", "żółw", "user_42", "a.b-c"] {
            assert_eq!(validate_username(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn names_that_would_break_topics_or_screens_are_refused() {
        let long = "x".repeat(65);
        for name in [
            "",
            "a/b",
            "a+",
            "#",
            "tab\there",
            " alice",
            "server",
            long.as_str(),
        ] {
            assert!(
                validate_username(name).is_err(),
                "{name:?} should be refused"
            );
        }
    }
}
