//! What the CLI prints: human text, or one JSON object per line with `--json`.
//!
//! The JSON shapes are a contract relied on by scripts and tests; add fields, never rename.

use std::io::Write;

use peerchat_core::json;
use peerchat_core::json::Value;
use peerchat_core::protocol::MessageId;
use peerchat_core::room::RoomId;
use peerchat_core::{ClientError, ClientEvent};

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Joined as `user`, with this identity key (what peers pin and compare).
    pub fn connected(&self, user: &str, key: Option<&str>) {
        self.emit(
            json!({"event": "connected", "user": user, "key": key}),
            format!(
                "* connected as {user} (identity key {})",
                key.unwrap_or("none")
            ),
        );
    }

    /// What became of a `/send`: its id (named again by a later `delivered`), or why not.
    pub fn sent(&self, peer: &str, result: &Result<MessageId, ClientError>) {
        let mut value = json!({"event": "sent", "peer": peer, "ok": result.is_ok()});
        let text = match result {
            Ok(id) => {
                value["id"] = Value::from(*id);
                format!("* sent to {peer} (#{id})")
            }
            Err(error) => {
                value["reason"] = Value::from(error.to_string());
                format!("! not sent to {peer}: {error}")
            }
        };
        self.emit(value, text);
    }

    /// What became of a `/room send` or `/room picture`: its number among my messages in
    /// the room (named again by `room_delivery`), or why not.
    pub fn room_sent(&self, room: &RoomId, result: &Result<u64, ClientError>) {
        let mut value = json!({"event": "room_sent", "room": room.as_str(), "ok": result.is_ok()});
        let text = match result {
            Ok(seq) => {
                value["seq"] = Value::from(*seq);
                format!("* sent to room {room} (#{seq})")
            }
            Err(error) => {
                value["reason"] = Value::from(error.to_string());
                format!("! not sent to room {room}: {error}")
            }
        };
        self.emit(value, text);
    }

    pub fn error(&self, message: &str) {
        self.emit(
            json!({"event": "error", "message": message}),
            format!("! {message}"),
        );
    }

    pub fn event(&self, event: &ClientEvent) {
        let Some(value) = event.to_json() else {
            return;
        };
        let text = match event {
            ClientEvent::Message { from, text } => format!("[{from}] {text}"),
            ClientEvent::Delivered { peer, id } => format!("* {peer} received #{id}"),
            ClientEvent::File {
                from, name, data, ..
            } => format!("* {from} sent a file: {name} ({} bytes)", data.len()),
            // Frequent, for programs rather than eyes: JSON only.
            ClientEvent::Path { .. } | ClientEvent::Transfer { .. } if !self.json => return,
            ClientEvent::Path { .. } | ClientEvent::Transfer { .. } => String::new(),
            ClientEvent::PeerConnected(peer) => format!("* {peer} connected"),
            ClientEvent::PeerDisconnected { peer, reason } => {
                format!("* {peer} disconnected: {}", reason.describe(peer))
            }
            ClientEvent::PeerIdentity {
                peer,
                safety_number,
                verified,
                ..
            } => format!(
                "* {peer}'s key is {}; safety number {}",
                if *verified {
                    "verified"
                } else {
                    "not verified yet"
                },
                safety_number.as_deref().unwrap_or("unknown")
            ),
            ClientEvent::Status { peer, status } => format!("* {peer}: {status}"),
            ClientEvent::Presence { user, online } => {
                format!("* {user} is {}", if *online { "online" } else { "offline" })
            }
            ClientEvent::Signaling(state) => format!("* signaling server: {}", state.as_str()),
            ClientEvent::Error(error) => format!("! {error}"),
            ClientEvent::RoomMessage {
                room,
                author,
                text,
                picture: None,
                ..
            } => format!("[{room} {author}] {text}"),
            // Its bytes follow apart (RoomPicture says when they are all here).
            ClientEvent::RoomMessage {
                room,
                author,
                text,
                picture: Some(picture),
                ..
            } => format!(
                "[{room} {author}] {text}{}[picture {}, {} bytes]",
                if text.is_empty() { "" } else { " " },
                picture.name,
                picture.size
            ),
            ClientEvent::RoomPicture {
                room,
                author,
                seq,
                picture,
                ..
            } => format!(
                "* room {room}: {author}'s picture #{seq} {} arrived whole (sha256 {})",
                picture.name, picture.sha256
            ),
            ClientEvent::RoomMembers {
                room,
                name,
                members,
                joined,
            } => match joined {
                true => format!("* room {name} ({room}): {}", members.join(", ")),
                false => format!("* you are no longer in room {name} ({room})"),
            },
            ClientEvent::RoomDelivery { room, seq, holders } => {
                let waiting = match holders.lack.as_slice() {
                    [] => String::new(),
                    lack => format!(" (not yet: {})", lack.join(", ")),
                };
                let (have, members) = (holders.have.len(), holders.members());
                format!("* room {room}: #{seq} held by {have} of {members}{waiting}")
            }
            ClientEvent::RoomWithdrawn { room, author, seq } => {
                format!("* room {room}: {author}'s #{seq} is withdrawn (written after they left)")
            }
            ClientEvent::RoomRefused { room, from, error } => {
                format!("! room {room}: refused from {from}: {error}")
            }
            ClientEvent::Registered | ClientEvent::RegistrationRefused(_) => return,
        };
        self.emit(value, text);
    }

    fn emit(&self, value: Value, text: String) {
        let mut stdout = std::io::stdout().lock();
        let line = if self.json { value.to_string() } else { text };
        // A closed stdout (the reader went away) is not worth a panic.
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

#[cfg(test)]
mod tests {
    use peerchat_core::{ChatEnd, ClientEvent};

    /// docs/cli.md: `peer_disconnected`'s `reason` is one of these words. Scripts match on
    /// them, so each is pinned as written there, not read back from the code.
    #[test]
    fn peer_disconnected_reasons_are_the_documented_words() {
        let documented = [
            (ChatEnd::Closed, "closed"),
            (ChatEnd::PeerLeft, "peer_left"),
            (ChatEnd::Unreachable, "unreachable"),
            (ChatEnd::ConnectionLost, "connection_lost"),
            (ChatEnd::PeerOffline, "peer_offline"),
        ];
        for (reason, word) in documented {
            // A new variant fails to compile here until it is documented and listed above.
            match reason {
                ChatEnd::Closed
                | ChatEnd::PeerLeft
                | ChatEnd::Unreachable
                | ChatEnd::ConnectionLost
                | ChatEnd::PeerOffline => {}
            }
            let event = ClientEvent::PeerDisconnected {
                peer: "bob".into(),
                reason,
            };
            let json = event.to_json().expect("printed with --json");
            assert_eq!(json["event"], "peer_disconnected");
            assert_eq!(json["peer"], "bob");
            assert_eq!(json["reason"], word, "{reason:?}");
        }
    }
}
