//! Room frames on the `chat` data channel between two peers that both announced `rooms`:
//! membership changes, messages, high-water marks and (between peers that also announced
//! `room-pictures`) pieces of pictures, as JSON objects of type `room`.
//! Written and read by hand through peerchat's own `json::Value` (no generic codec in the
//! web build).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::identity::PublicKey;
use crate::json;
use crate::json::{Map, Value};
use crate::protocol::MAX_CHAT_MESSAGE_BYTES;

use super::{
    Action, HighWaterMarks, MAX_MEMBERS, MemberChange, Picture, ROOM_PIECE_BYTES, RoomId,
    RoomMessage,
};

/// Most membership changes in one frame: a change is at most ~450 bytes of JSON, so 64 of
/// them stay well inside one 64 KiB channel message; a longer chain goes in several.
pub const MAX_CHANGES_PER_FRAME: usize = 64;

/// Most authors in one marks frame: a room's current members and, generously, former
/// ones; each entry is a name and a number (under 90 bytes), so the frame stays under
/// 64 KiB.
pub const MAX_MARKS_PER_FRAME: usize = 16 * MAX_MEMBERS;

/// Most pictures one marks frame names as lacking (64 hex digits each).
pub const MAX_LACKING_PER_FRAME: usize = 16;

/// One room frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomFrame {
    /// Consecutive membership changes of one room, oldest first.
    Changes {
        room: RoomId,
        changes: Vec<MemberChange>,
    },
    /// One room message, from its author or passed on by another member.
    Message(RoomMessage),
    /// What the sender holds of a room: its membership version (`None`: it has no copy)
    /// and its high-water marks. With `ask`, it asks for what it lacks; without, it is a
    /// receipt (and tells the receiver whether it lacks something the sender holds).
    /// `lacking` names (by SHA-256) pictures of messages the sender holds without their
    /// whole bytes, for the receiver to send if it has them; absent on the wire when empty,
    /// and ignored by members without `room-pictures`.
    Marks {
        room: RoomId,
        version: Option<u64>,
        marks: HighWaterMarks,
        ask: bool,
        lacking: Vec<String>,
    },
    /// Part of the bytes of the picture with SHA-256 `sha256` (a message the receiver
    /// holds or is being sent carries it), from `offset` on, at most
    /// [`ROOM_PIECE_BYTES`] of them; base64 on the wire.
    Piece {
        room: RoomId,
        sha256: String,
        offset: u64,
        data: Vec<u8>,
    },
}

impl RoomFrame {
    pub fn room(&self) -> &RoomId {
        match self {
            Self::Changes { room, .. } | Self::Marks { room, .. } | Self::Piece { room, .. } => {
                room
            }
            Self::Message(message) => &message.room,
        }
    }

    /// The frame as one channel message; `None` when it would exceed the channel's
    /// 64 KiB (a room message's text is bounded well under that, so only a frame of
    /// many long-named changes might).
    pub fn encode(&self) -> Option<String> {
        let value = match self {
            Self::Changes { room, changes } => json!({
                "type": "room", "op": "changes", "room": room.as_str(),
                "changes": changes.iter().map(change_value).collect::<Vec<_>>(),
            }),
            Self::Message(m) => {
                let mut value = json!({
                    "type": "room", "op": "message", "room": m.room.as_str(), "author": m.author,
                    "seq": m.seq, "lamport": m.lamport, "members": m.members, "text": m.text,
                    "sig": m.sig,
                });
                if let Some(p) = &m.picture {
                    let picture = json!({
                        "name": p.name, "mime": p.mime, "size": p.size, "sha256": p.sha256,
                    });
                    let fields = value.as_object_mut().expect("an object");
                    fields.insert("picture".into(), picture);
                }
                value
            }
            Self::Piece {
                room,
                sha256,
                offset,
                data,
            } => json!({
                "type": "room", "op": "piece", "room": room.as_str(), "sha256": sha256,
                "offset": offset, "data": STANDARD.encode(data),
            }),
            Self::Marks {
                room,
                version,
                marks,
                ask,
                lacking,
            } => {
                let marks: Map<String, Value> = marks
                    .iter()
                    .map(|(author, seq)| (author.to_owned(), json!(seq)))
                    .collect();
                let mut value = json!({
                    "type": "room", "op": "marks", "room": room.as_str(), "version": version,
                    "marks": marks, "ask": ask,
                });
                if !lacking.is_empty() {
                    let fields = value.as_object_mut().expect("an object");
                    fields.insert("lacking".into(), json!(lacking));
                }
                value
            }
        };
        let text = value.to_string();
        (text.len() <= MAX_CHAT_MESSAGE_BYTES).then_some(text)
    }

    /// The room frame in `text`: `None` when it is no room frame at all (another frame, or
    /// chat text), `Some(Err(why))` when it is one but malformed.
    pub fn decode(text: &str) -> Option<Result<Self, String>> {
        if !text.starts_with('{') || !text.contains("\"room\"") {
            return None;
        }
        let value = json::parse(text).ok()?;
        let object = value.as_object()?;
        if object.get("type")?.as_str()? != "room" {
            return None;
        }
        Some(decode_object(object))
    }
}

fn decode_object(object: &Map<String, Value>) -> Result<RoomFrame, String> {
    let room = RoomId::parse(string(object, "room")?).ok_or("`room` is not a room id")?;
    match string(object, "op")? {
        "changes" => {
            let list = object
                .get("changes")
                .and_then(Value::as_array)
                .ok_or("`changes` is not a list")?;
            if list.len() > MAX_CHANGES_PER_FRAME {
                return Err(format!("more than {MAX_CHANGES_PER_FRAME} changes"));
            }
            let changes = list
                .iter()
                .map(|change| decode_change(&room, change))
                .collect::<Result<_, _>>()?;
            Ok(RoomFrame::Changes { room, changes })
        }
        "message" => Ok(RoomFrame::Message(RoomMessage {
            room,
            author: string(object, "author")?.to_owned(),
            seq: number(object, "seq")?,
            lamport: number(object, "lamport")?,
            members: number(object, "members")?,
            text: string(object, "text")?.to_owned(),
            picture: match object.get("picture") {
                None | Some(Value::Null) => None,
                Some(picture) => Some(decode_picture(picture)?),
            },
            sig: string(object, "sig")?.to_owned(),
        })),
        "piece" => {
            let data = STANDARD
                .decode(string(object, "data")?)
                .map_err(|_| "`data` is not base64")?;
            if data.len() > ROOM_PIECE_BYTES {
                return Err(format!("a piece of more than {ROOM_PIECE_BYTES} bytes"));
            }
            Ok(RoomFrame::Piece {
                room,
                sha256: string(object, "sha256")?.to_owned(),
                offset: number(object, "offset")?,
                data,
            })
        }
        "marks" => {
            let version = match object.get("version") {
                None | Some(Value::Null) => None,
                Some(_) => Some(number(object, "version")?),
            };
            let entries = object
                .get("marks")
                .and_then(Value::as_object)
                .ok_or("`marks` is not an object")?;
            if entries.len() > MAX_MARKS_PER_FRAME {
                return Err(format!("more than {MAX_MARKS_PER_FRAME} marks"));
            }
            let marks = entries
                .iter()
                .map(|(author, seq)| {
                    let seq = seq.as_u64().ok_or("a mark is not a number")?;
                    Ok((author.clone(), seq))
                })
                .collect::<Result<_, &str>>()?;
            let lacking = match object.get("lacking") {
                None | Some(Value::Null) => Vec::new(),
                Some(list) => {
                    let list = list.as_array().ok_or("`lacking` is not a list")?;
                    if list.len() > MAX_LACKING_PER_FRAME {
                        return Err(format!(
                            "more than {MAX_LACKING_PER_FRAME} lacking pictures"
                        ));
                    }
                    (list.iter())
                        .map(|hash| hash.as_str().map(str::to_owned))
                        .collect::<Option<_>>()
                        .ok_or("a lacking picture is not a string")?
                }
            };
            Ok(RoomFrame::Marks {
                room,
                version,
                marks,
                ask: object.get("ask").and_then(Value::as_bool).unwrap_or(false),
                lacking,
            })
        }
        other => Err(format!("unknown room operation `{other}`")),
    }
}

fn decode_picture(value: &Value) -> Result<Picture, String> {
    let object = value.as_object().ok_or("`picture` is not an object")?;
    Ok(Picture {
        name: string(object, "name")?.to_owned(),
        mime: string(object, "mime")?.to_owned(),
        size: number(object, "size")?,
        sha256: string(object, "sha256")?.to_owned(),
    })
}

fn change_value(change: &MemberChange) -> Value {
    let mut value = json!({
        "version": change.version, "by": change.by, "action": change.action.kind(),
        "sig": change.sig,
    });
    let fields = value.as_object_mut().expect("an object");
    match &change.action {
        Action::Create { name, key } => {
            fields.insert("name".into(), json!(name));
            fields.insert("key".into(), json!(key.to_text()));
        }
        Action::Invite { member, key } => {
            fields.insert("member".into(), json!(member));
            fields.insert("key".into(), json!(key.to_text()));
        }
        Action::Promote { member } => {
            fields.insert("member".into(), json!(member));
        }
        Action::Remove { member, last_seq } => {
            fields.insert("member".into(), json!(member));
            fields.insert("last_seq".into(), json!(last_seq));
        }
        Action::Leave { last_seq } => {
            fields.insert("last_seq".into(), json!(last_seq));
        }
    }
    value
}

fn decode_change(room: &RoomId, value: &Value) -> Result<MemberChange, String> {
    let object = value.as_object().ok_or("a change is not an object")?;
    let key =
        || PublicKey::parse(string(object, "key")?).ok_or_else(|| "`key` is not a key".to_owned());
    let member = || string(object, "member").map(str::to_owned);
    let last_seq = || number(object, "last_seq");
    let action = match string(object, "action")? {
        "create" => Action::Create {
            name: string(object, "name")?.to_owned(),
            key: key()?,
        },
        "invite" => Action::Invite {
            member: member()?,
            key: key()?,
        },
        "promote" => Action::Promote { member: member()? },
        "remove" => Action::Remove {
            member: member()?,
            last_seq: last_seq()?,
        },
        "leave" => Action::Leave {
            last_seq: last_seq()?,
        },
        other => return Err(format!("unknown membership action `{other}`")),
    };
    Ok(MemberChange {
        room: room.clone(),
        version: number(object, "version")?,
        by: string(object, "by")?.to_owned(),
        action,
        sig: string(object, "sig")?.to_owned(),
    })
}

fn string<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str, String> {
    object
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{field}` is missing or not a string"))
}

fn number(object: &Map<String, Value>, field: &str) -> Result<u64, String> {
    object
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("`{field}` is missing or not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::Room;
    use crate::room::testing::identity;

    fn club() -> Room {
        let alice = identity("alice");
        let mut room = Room::create(RoomId::from_random([8; 16]), "club", "alice", &alice).unwrap();
        room.invite(&alice, "bob", Some(identity("bob").public()))
            .unwrap();
        room.promote(&alice, "bob").unwrap();
        room.write(&alice, "hi \"all\"\n").unwrap();
        room.remove(&alice, "bob").unwrap();
        room.leave(&alice).unwrap();
        room
    }

    #[test]
    fn every_frame_round_trips_and_still_verifies() {
        let room = club();
        let changes = RoomFrame::Changes {
            room: room.id().clone(),
            changes: room.membership().changes().to_vec(),
        };
        let text = changes.encode().unwrap();
        assert!(text.starts_with(r#"{"#) && text.contains(r#""op":"changes""#));
        let RoomFrame::Changes { changes, .. } = RoomFrame::decode(&text).unwrap().unwrap() else {
            panic!("not changes: {text}");
        };
        let copy = Room::join("bob", changes).expect("the decoded chain verifies");
        assert_eq!(copy.membership().version(), room.membership().version());

        let message = RoomFrame::Message(room.messages().next().unwrap().clone());
        let decoded = RoomFrame::decode(&message.encode().unwrap()).unwrap();
        assert_eq!(decoded, Ok(message));

        let marks = RoomFrame::Marks {
            room: room.id().clone(),
            version: None,
            marks: room.marks().clone(),
            ask: true,
            lacking: Vec::new(),
        };
        let text = marks.encode().unwrap();
        assert!(text.contains(r#""version":null"#), "{text}");
        assert!(!text.contains("lacking"), "{text}");
        assert_eq!(RoomFrame::decode(&text), Some(Ok(marks)));
        let asking = RoomFrame::Marks {
            room: room.id().clone(),
            version: Some(3),
            marks: room.marks().clone(),
            ask: true,
            lacking: vec![crate::room::sha256_hex(b"cat")],
        };
        let text = asking.encode().unwrap();
        assert_eq!(RoomFrame::decode(&text), Some(Ok(asking)));
    }

    #[test]
    fn a_picture_message_and_a_full_piece_round_trip_within_one_channel_message() {
        let room = club();
        let data = vec![0xff; ROOM_PIECE_BYTES];
        let picture = Picture::of("a \"cat\".png", "image/png", &data).unwrap();
        let message = RoomMessage::signed_with(
            room.id().clone(),
            "alice",
            (9, 9, 1),
            ("look", Some(picture.clone())),
            &identity("alice"),
        );
        let frame = RoomFrame::Message(message.clone());
        let text = frame.encode().unwrap();
        assert!(text.contains(r#""picture":{"#), "{text}");
        assert_eq!(RoomFrame::decode(&text), Some(Ok(frame)));
        let piece = RoomFrame::Piece {
            room: room.id().clone(),
            sha256: picture.sha256,
            offset: 80 * ROOM_PIECE_BYTES as u64,
            data,
        };
        let text = piece
            .encode()
            .expect("a full piece fits one channel message");
        assert_eq!(RoomFrame::decode(&text), Some(Ok(piece)));
        // A text message keeps its old shape: no `picture` field.
        let text = RoomFrame::Message(room.messages().next().unwrap().clone()).encode();
        assert!(!text.unwrap().contains("picture"));
    }

    #[test]
    fn other_frames_and_text_are_not_room_frames() {
        for text in [
            "hello room",
            r#"{"type":"message","id":1,"text":"room"}"#,
            r#"{"type":"ack","id":1}"#,
            "{\"room\"",
        ] {
            assert_eq!(RoomFrame::decode(text), None, "{text}");
        }
    }

    #[test]
    fn malformed_room_frames_say_why() {
        let id = "ab".repeat(16);
        for text in [
            r#"{"type":"room","op":"marks","room":"not an id","marks":{}}"#.to_owned(),
            format!(r#"{{"type":"room","op":"shout","room":"{id}"}}"#),
            format!(r#"{{"type":"room","op":"message","room":"{id}","author":"a"}}"#),
            format!(r#"{{"type":"room","op":"marks","room":"{id}","marks":{{"a":-1}}}}"#),
            format!(
                r#"{{"type":"room","op":"piece","room":"{id}","sha256":"x","offset":0,"data":"!"}}"#
            ),
            format!(
                r#"{{"type":"room","op":"changes","room":"{id}","changes":[{{"action":"invite"}}]}}"#
            ),
        ] {
            assert!(matches!(RoomFrame::decode(&text), Some(Err(_))), "{text}");
        }
        let many = vec![json!({}); MAX_CHANGES_PER_FRAME + 1];
        let text = json!({"type": "room", "op": "changes", "room": id, "changes": many});
        assert!(matches!(
            RoomFrame::decode(&text.to_string()),
            Some(Err(why)) if why.contains("more than")
        ));
    }
}
