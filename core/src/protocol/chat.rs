//! What peerchat peers say to each other on the `chat` data channel once both announced the
//! `acks` feature: numbered messages and their acknowledgements.
//!
//! Toward a peer that did not announce it (the original client), a chat message stays the
//! raw text, as the original protocol has it.

use serde::{Deserialize, Serialize};

/// The feature name announced in offers and answers (`peerchat.features`).
pub const FEATURE_ACKS: &str = "acks";

/// The features this version of peerchat announces.
pub fn supported_features() -> Vec<String> {
    vec![FEATURE_ACKS.to_owned()]
}

/// Identifies one of my messages to one peer, so its acknowledgement can be matched.
/// Increasing within a client's run.
pub type MessageId = u64;

/// One data-channel message between peerchat peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ChatFrame {
    /// A chat message.
    Message { id: MessageId, text: String },
    /// The peer received message `id` (and showed it, once).
    Ack { id: MessageId },
}

impl ChatFrame {
    pub fn encode(&self) -> String {
        // A tagged enum of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The frame in `text`, or `None` when it is not one (then it is plain chat text).
    pub fn decode(text: &str) -> Option<Self> {
        if !text.starts_with('{') {
            return None;
        }
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_their_wire_shape() {
        let message = ChatFrame::Message {
            id: 7,
            text: "hi \"bob\"".into(),
        };
        assert_eq!(
            message.encode(),
            r#"{"type":"message","id":7,"text":"hi \"bob\""}"#
        );
        assert_eq!(ChatFrame::decode(&message.encode()), Some(message));
        assert_eq!(
            ChatFrame::Ack { id: 7 }.encode(),
            r#"{"type":"ack","id":7}"#
        );
    }

    #[test]
    fn anything_else_is_not_a_frame() {
        assert_eq!(ChatFrame::decode("hello"), None);
        assert_eq!(ChatFrame::decode(r#"{"type":"typing"}"#), None);
        assert_eq!(ChatFrame::decode(r#"{"type":"ack","id":-1}"#), None);
        assert_eq!(ChatFrame::decode("{"), None);
    }
}
