//! The signaling wire protocol: typed messages, topics and limits.
//!
//! Byte-compatible with the original JavaScript client (see `docs/PROTOCOL.md`); peerchat's
//! additions are extra fields and message types that the original client ignores.

mod chat;
mod codec;
mod json;
mod limits;
mod message;
mod proof;
mod seal;
mod topics;

pub use chat::{
    ChatFrame, FEATURE_ACKS, FEATURE_FILES, FEATURE_RECOVERY, FEATURE_ROOM_PICTURES, FEATURE_ROOMS,
    FILE_CHUNK_BYTES, MAX_FILE_BYTES, MAX_FILE_NAME_BYTES, MAX_MEDIA_TYPE_BYTES, MessageId,
    decode_chunk, encode_chunk, media_type_of_name, supported_features,
};
pub use codec::{read_candidate_json, write_candidate};
pub use limits::{
    MAX_CANDIDATE_BYTES, MAX_CHAT_MESSAGE_BYTES, MAX_MQTT_PACKET_BYTES, MAX_SDP_BYTES,
    MAX_SIGNAL_BYTES, MAX_USERNAME_BYTES, validate_username,
};
pub use message::{
    Capabilities, IceCandidate, PROTOCOL_VERSION, Presence, REFUSED_OTHER_KEY, SdpKind,
    SessionDescription, SignalMessage, decode, encode, sdp_concealed,
};
pub use proof::{MAX_NONCE_BYTES, RegisterProof, register_proof_bytes};
pub use seal::{SEAL_VERSION, Seal, capabilities_text, sealed_bytes_v1, sealed_bytes_v2};
pub use topics::{
    PRESENCE_FILTER, REGISTER_TOPIC, SERVER_NAME, incoming_topic, presence_topic,
    user_of_incoming_topic, user_of_presence_topic,
};

use thiserror::Error;

/// Why a piece of signaling could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("signaling message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("signaling message is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("signaling message has no string `type` field")]
    MissingType,
    #[error("unknown signaling message type `{0}` (ignored for forward compatibility)")]
    UnknownType(String),
    #[error("`{kind}` message is missing or has a bad field: {detail}")]
    BadField { kind: String, detail: String },
    #[error("invalid username {name:?}: {reason}")]
    InvalidUsername { name: String, reason: &'static str },
}
