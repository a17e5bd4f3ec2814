//! Room frames on the `chat` data channel between two peers that both announced `rooms`:
//! membership changes, messages and high-water marks, as JSON objects of type `room`.
//! Written and read by hand through `serde_json::Value` (no derived code in the web build).

use serde_json::{Map, Value, json};

use crate::identity::PublicKey;
use crate::protocol::MAX_CHAT_MESSAGE_BYTES;

use super::{Action, HighWaterMarks, MAX_MEMBERS, MemberChange, RoomId, RoomMessage};

/// Most membership changes in one frame: a change is at most ~450 bytes of JSON, so 64 of
/// them stay well inside one 64 KiB channel message; a longer chain goes in several.
pub const MAX_CHANGES_PER_FRAME: usize = 64;

/// Most authors in one marks frame: a room's current members and, generously, former
/// ones; each entry is a name and a number (under 90 bytes), so the frame stays under
/// 64 KiB.
pub const MAX_MARKS_PER_FRAME: usize = 16 * MAX_MEMBERS;

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
    Marks {
        room: RoomId,
        version: Option<u64>,
        marks: HighWaterMarks,
        ask: bool,
    },
}

impl RoomFrame {
    pub fn room(&self) -> &RoomId {
        match self {
            Self::Changes { room, .. } | Self::Marks { room, .. } => room,
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
            Self::Message(m) => json!({
                "type": "room", "op": "message", "room": m.room.as_str(), "author": m.author,
                "seq": m.seq, "lamport": m.lamport, "members": m.members, "text": m.text,
                "sig": m.sig,
            }),
            Self::Marks {
                room,
                version,
                marks,
                ask,
            } => {
                let marks: Map<String, Value> = marks
                    .iter()
                    .map(|(author, seq)| (author.to_owned(), json!(seq)))
                    .collect();
                json!({
                    "type": "room", "op": "marks", "room": room.as_str(), "version": version,
                    "marks": marks, "ask": ask,
                })
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
        let value: Value = serde_json::from_str(text).ok()?;
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
            sig: string(object, "sig")?.to_owned(),
        })),
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
            Ok(RoomFrame::Marks {
                room,
                version,
                marks,
                ask: object.get("ask").and_then(Value::as_bool).unwrap_or(false),
            })
        }
        other => Err(format!("unknown room operation `{other}`")),
    }
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
        };
        let text = marks.encode().unwrap();
        assert!(text.contains(r#""version":null"#), "{text}");
        assert_eq!(RoomFrame::decode(&text), Some(Ok(marks)));
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
