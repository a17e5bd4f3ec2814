//! What peerchat peers say to each other on the `chat` data channel: numbered messages and
//! their acknowledgements (feature `acks`), and files (feature `files`), announced by a text
//! frame and carried in binary chunks.
//!
//! Toward a peer that did not announce them (the original client), a chat message stays the
//! raw text, as the original protocol has it, and no file is sent.

use super::json::{ObjectReader, ObjectWriter};

/// The feature name announced in offers and answers (`peerchat.features`).
pub const FEATURE_ACKS: &str = "acks";

/// The feature name for file transfers.
pub const FEATURE_FILES: &str = "files";

/// The feature name for moving a chat to a new connection when its path is lost
/// (`machine::recovery`); needs `acks`, which make re-sending safe.
pub const FEATURE_RECOVERY: &str = "recovery";

/// The feature name for group rooms: room frames on the `chat` channel (`crate::room`).
/// Needs an identity key at both ends, which signs every room message and change.
pub const FEATURE_ROOMS: &str = "rooms";

/// The feature name for pictures in group rooms: room messages signed with a picture
/// (`peerchat room message v2`) and the `piece` frames carrying its bytes. A member
/// without it is sent neither: it could not verify the one nor read the other.
pub const FEATURE_ROOM_PICTURES: &str = "room-pictures";

/// The features this version of peerchat announces.
pub fn supported_features() -> Vec<String> {
    [
        FEATURE_ACKS,
        FEATURE_FILES,
        FEATURE_RECOVERY,
        FEATURE_ROOMS,
        FEATURE_ROOM_PICTURES,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The largest file a chat carries. Both ends hold it in memory while it travels (the
/// sender until it is acknowledged, the receiver until it is whole); the channel's send
/// buffer holds only a few MiB of it at a time.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// File bytes per binary message. With its 8-byte header a chunk stays under the 64 KiB
/// message size webrtc-rs accepts by default (Chromium takes 256 KiB); between two
/// browsers 48 KiB chunks carried a file ~40 % faster than 16 KiB ones (fewer messages).
pub const FILE_CHUNK_BYTES: usize = 48 * 1024;

/// Longest file name and media type accepted, in bytes.
pub const MAX_FILE_NAME_BYTES: usize = 255;
pub const MAX_MEDIA_TYPE_BYTES: usize = 127;

/// The media type a file's name suggests, for a file picked or read without one: the
/// picture types by their usual extensions, anything else as opaque bytes.
pub fn media_type_of_name(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The id at the head of every binary chunk (big-endian), naming its file.
const CHUNK_HEADER_BYTES: usize = 8;

/// A binary message carrying part of file `id`.
pub fn encode_chunk(id: MessageId, data: &[u8]) -> Vec<u8> {
    let mut chunk = Vec::with_capacity(CHUNK_HEADER_BYTES + data.len());
    chunk.extend_from_slice(&id.to_be_bytes());
    chunk.extend_from_slice(data);
    chunk
}

/// The file id and data of a binary chunk; `None` when it is too short to be one.
pub fn decode_chunk(chunk: &[u8]) -> Option<(MessageId, &[u8])> {
    let (head, data) = chunk.split_first_chunk::<CHUNK_HEADER_BYTES>()?;
    Some((MessageId::from_be_bytes(*head), data))
}

/// Names a message or file on a chat channel, so its acknowledgement (and a file's chunks)
/// can be matched. Each client numbers what it sends, increasing within its run; the two
/// ends' numbers are independent.
pub type MessageId = u64;

/// One data-channel message between peerchat peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatFrame {
    /// A chat message; `ack` acknowledges, on the way, what the sender has received (as
    /// [`ChatFrame::Ack`] does), so a conversation needs no separate acks.
    Message {
        id: MessageId,
        text: String,
        ack: Option<MessageId>,
    },
    /// The sender has received every message numbered up to `id` (the channel is ordered,
    /// so one number says it all), and the whole of file `id` if it is one.
    Ack { id: MessageId },
    /// A file follows in binary chunks (`size` bytes in all) under this id.
    File {
        id: MessageId,
        name: String,
        mime: String,
        size: u64,
    },
    /// The receiver has `received` bytes of file `id` so far: the sender's progress bar.
    Progress { id: MessageId, received: u64 },
    /// The sender ends the chat on purpose (it closes it, or leaves); without this frame a
    /// closing channel may be a peer moving the chat to a new connection (`recovery`).
    Bye,
}

impl ChatFrame {
    /// The frame's text: `type` first, then its fields in the order declared above.
    pub fn encode(&self) -> String {
        let frame = |kind| ObjectWriter::new().str("type", kind);
        match self {
            Self::Message { id, text, ack } => frame("message")
                .number("id", *id)
                .str("text", text)
                .opt_number("ack", *ack),
            Self::Ack { id } => frame("ack").number("id", *id),
            Self::File {
                id,
                name,
                mime,
                size,
            } => frame("file")
                .number("id", *id)
                .str("name", name)
                .str("mime", mime)
                .number("size", *size),
            Self::Progress { id, received } => frame("progress")
                .number("id", *id)
                .number("received", *received),
            Self::Bye => frame("bye"),
        }
        .finish()
    }

    /// The frame in `text`, or `None` when it is not one (then it is plain chat text): not
    /// an object, an unknown `type`, or a field missing or of the wrong kind.
    pub fn decode(text: &str) -> Option<Self> {
        if !text.starts_with('{') {
            return None;
        }
        let value = crate::json::parse(text).ok()?;
        let frame = ObjectReader::new(&value, "frame").ok()?;
        let kind = frame.str("type").ok()?;
        if kind == "bye" {
            return Some(Self::Bye);
        }
        let id = frame.opt_u64("id").ok()??;
        let number = |name| frame.opt_u64(name).ok()?;
        let string = |name| frame.opt_str(name).ok()?;
        Some(match kind.as_str() {
            "message" => Self::Message {
                id,
                text: string("text")?,
                ack: frame.opt_u64("ack").ok()?,
            },
            "ack" => Self::Ack { id },
            "file" => Self::File {
                id,
                name: string("name")?,
                mime: string("mime")?,
                size: number("size")?,
            },
            "progress" => Self::Progress {
                id,
                received: number("received")?,
            },
            _ => return None,
        })
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
            ack: None,
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
        assert_eq!(ChatFrame::Bye.encode(), r#"{"type":"bye"}"#);
        assert_eq!(ChatFrame::decode(r#"{"type":"bye"}"#), Some(ChatFrame::Bye));
        let answer = ChatFrame::Message {
            id: 3,
            text: "yes".into(),
            ack: Some(7),
        };
        assert_eq!(
            answer.encode(),
            r#"{"type":"message","id":3,"text":"yes","ack":7}"#
        );
    }

    #[test]
    fn incomplete_or_unknown_frames_are_plain_text() {
        for text in [
            r#"{"type":"message","id":1}"#,
            r#"{"type":"file","id":1,"name":"a","mime":"b"}"#,
            r#"{"type":"progress","id":1}"#,
            r#"{"type":"shout","id":1}"#,
            r#"{"type":"ack"}"#,
            r#"{"type":"ack","id":-1}"#,
            r#"{"id":1}"#,
            "{not json",
        ] {
            assert_eq!(ChatFrame::decode(text), None, "{text}");
        }
        let extra = r#"{"type":"ack","id":4,"later":"fields are ignored"}"#;
        assert_eq!(ChatFrame::decode(extra), Some(ChatFrame::Ack { id: 4 }));
        let escaped = r#"{"type":"message","id":2,"text":"a\nb \u00e9"}"#;
        assert_eq!(
            ChatFrame::decode(escaped),
            Some(ChatFrame::Message {
                id: 2,
                text: "a\nb é".into(),
                ack: None
            })
        );
    }

    #[test]
    fn file_frames_and_chunks_round_trip() {
        let file = ChatFrame::File {
            id: 9,
            name: "cat.png".into(),
            mime: "image/png".into(),
            size: 3,
        };
        assert_eq!(
            file.encode(),
            r#"{"type":"file","id":9,"name":"cat.png","mime":"image/png","size":3}"#
        );
        assert_eq!(ChatFrame::decode(&file.encode()), Some(file));
        let chunk = encode_chunk(9, b"abc");
        assert_eq!(decode_chunk(&chunk), Some((9, &b"abc"[..])));
        assert_eq!(decode_chunk(&[0, 1, 2]), None);
    }

    #[test]
    fn anything_else_is_not_a_frame() {
        assert_eq!(ChatFrame::decode("hello"), None);
        assert_eq!(ChatFrame::decode(r#"{"type":"typing"}"#), None);
        assert_eq!(ChatFrame::decode(r#"{"type":"ack","id":-1}"#), None);
        assert_eq!(ChatFrame::decode("{"), None);
    }
}
