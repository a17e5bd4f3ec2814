//! What the client tells the application: events, peer statuses and errors.
//!
//! The names follow the original app's event API (message, peer connected, peer
//! disconnected, connection status) so a UI ported from it maps one to one.

use std::fmt;

use thiserror::Error;

use crate::json;
use crate::json::Value;
use crate::path::PeerPath;
use crate::protocol::{MessageId, ProtocolError};
use crate::room::{Holders, Picture, RoomError, RoomId};

/// The status of the connection to one peer, as the original app reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerStatus {
    New,
    Connecting,
    Connected,
    /// The path to the peer was lost; it may come back by itself.
    Disconnected,
    Failed,
    Closed,
}

impl PeerStatus {
    /// The lowercase word the original app and `peerchat-cli --json` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Failed => "failed",
            Self::Closed => "closed",
        }
    }

    /// Whether a new `connect_to_peer` may replace a session in this status.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Failed | Self::Closed)
    }
}

impl fmt::Display for PeerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a chat ended. Between peerchat peers a chat ends only on purpose (either side
/// closes it or leaves) or when no way back was found within the recovery window; a lost
/// connection, a network switch or a peer's broker connection dying are recovered instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatEnd {
    /// This side closed the chat or left.
    Closed,
    /// The peer closed the chat or left, and said so (`bye`).
    PeerLeft,
    /// The connection was lost and no new one could be made within the recovery window
    /// (60 s): the peer is gone, or unreachable from here.
    Unreachable,
    /// The connection was lost with a peer that cannot recover chats (an original client,
    /// or a peerchat without recovery).
    ConnectionLost,
    /// A peer that cannot recover chats lost its path and left the broker.
    PeerOffline,
}

impl ChatEnd {
    /// The word `peerchat-cli --json` uses (`reason` of `peer_disconnected`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::PeerLeft => "peer_left",
            Self::Unreachable => "unreachable",
            Self::ConnectionLost => "connection_lost",
            Self::PeerOffline => "peer_offline",
        }
    }

    /// Why, in words for the user, about `peer`.
    pub fn describe(self, peer: &str) -> String {
        match self {
            Self::Closed => format!("You ended the chat with {peer}."),
            Self::PeerLeft => format!("{peer} ended the chat."),
            Self::Unreachable => {
                format!("The chat with {peer} ended: no way back to {peer} was found in time.")
            }
            Self::ConnectionLost => format!("The connection to {peer} was lost."),
            Self::PeerOffline => format!("{peer} went offline."),
        }
    }
}

impl fmt::Display for ChatEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the client can reach the signaling server right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalingState {
    /// Registered: new peers can be reached.
    Online,
    /// The broker connection dropped; the client is reconnecting. Open chats keep working.
    Reconnecting,
}

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// Registration finished: the client is online under its username.
    Registered,
    /// Registration was refused; the client will not go online. Terminal.
    RegistrationRefused(ClientError),
    Message {
        from: String,
        text: String,
    },
    /// A peerchat peer acknowledged my message or file `id` (the id `try_send_message` or
    /// `send_file` returned). Original clients send no acknowledgements.
    Delivered {
        peer: String,
        id: MessageId,
    },
    /// A whole file from a peerchat peer (an image, say).
    File {
        from: String,
        id: MessageId,
        name: String,
        mime: String,
        data: Vec<u8>,
    },
    /// Progress of a file transfer: one of mine (`incoming: false`, the id `send_file`
    /// returned) or one from `peer` (`incoming: true`, the id of its `File` to come).
    Transfer {
        peer: String,
        id: MessageId,
        incoming: bool,
        done: u64,
        total: u64,
    },
    PeerConnected(String),
    /// The chat with `peer` ended for good, and why. A chat being recovered (status
    /// `disconnected` or `connecting` after it was connected) has not ended.
    PeerDisconnected {
        peer: String,
        reason: ChatEnd,
    },
    /// A peer's identity key became known (pinned on first use) or was marked verified;
    /// `safety_number` is to be compared with the peer's out of band.
    PeerIdentity {
        peer: String,
        key: String,
        safety_number: Option<String>,
        verified: bool,
    },
    Status {
        peer: String,
        status: PeerStatus,
    },
    /// How the chat with `peer` runs now; reported when it connects and every
    /// [`crate::path::PATH_REPORT_INTERVAL`] while it stays connected (never otherwise).
    Path {
        peer: String,
        path: PeerPath,
    },
    /// A user's presence changed (known only for peerchat clients).
    Presence {
        user: String,
        online: bool,
    },
    Signaling(SignalingState),
    /// A message in a room, new to this client (each is reported once). Rooms show their
    /// messages in one order for every member: by `lamport`, then by `author`; a message
    /// that arrives late may belong before ones already shown.
    /// A message with a picture says what the picture is; its bytes come in
    /// [`ClientEvent::RoomPicture`] once whole (they travel apart).
    RoomMessage {
        room: RoomId,
        author: String,
        seq: u64,
        lamport: u64,
        text: String,
        picture: Option<Picture>,
    },
    /// The whole bytes of the picture room message `seq` of `author` carries (reported
    /// after the message, once every piece arrived and they match the signed SHA-256).
    RoomPicture {
        room: RoomId,
        author: String,
        seq: u64,
        picture: Picture,
        data: Vec<u8>,
    },
    /// Who is in a room now (after its creation, our joining, or a membership change);
    /// `joined` is false once this client left or was removed.
    RoomMembers {
        room: RoomId,
        name: String,
        members: Vec<String>,
        joined: bool,
    },
    /// Which of the room's current members hold my message `seq` (me included) and which
    /// do not yet: delivered to all when none lacks it. Reported as receipts arrive and,
    /// for each of my messages, when members come or go.
    RoomDelivery {
        room: RoomId,
        seq: u64,
        holders: Holders,
    },
    /// A message shown before is no longer part of the room: its author had left or been
    /// removed before writing it, which this client learned only later. Every member drops
    /// it, so all keep the same messages.
    RoomWithdrawn {
        room: RoomId,
        author: String,
        seq: u64,
    },
    /// A room message or change from `from` was refused (forged, from a non-member, after
    /// its author's removal, ...); nothing of it was kept.
    RoomRefused {
        room: RoomId,
        from: String,
        error: RoomError,
    },
    /// Something went wrong that the client survived: bad input, an unreachable peer.
    Error(ClientError),
}

impl SignalingState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Reconnecting => "reconnecting",
        }
    }
}

impl ClientEvent {
    /// The event as one JSON object, in the shapes `peerchat-cli --json` prints (a contract:
    /// add fields, never rename). Registration outcomes have none: `connect` answers them.
    pub fn to_json(&self) -> Option<Value> {
        Some(match self {
            Self::Message { from, text } => json!({"event": "message", "from": from, "text": text}),
            Self::Delivered { peer, id } => json!({"event": "delivered", "peer": peer, "id": id}),
            Self::File {
                from,
                id,
                name,
                mime,
                data,
            } => json!({
                "event": "file", "from": from, "id": id, "name": name, "mime": mime,
                "size": data.len()
            }),
            Self::Transfer {
                peer,
                id,
                incoming,
                done,
                total,
            } => json!({
                "event": "transfer", "peer": peer, "id": id, "incoming": incoming,
                "done": done, "total": total
            }),
            Self::PeerConnected(peer) => json!({"event": "peer_connected", "peer": peer}),
            Self::PeerIdentity {
                peer,
                key,
                safety_number,
                verified,
            } => json!({
                "event": "identity", "peer": peer, "key": key,
                "safety_number": safety_number, "verified": verified
            }),
            Self::PeerDisconnected { peer, reason } => {
                json!({"event": "peer_disconnected", "peer": peer, "reason": reason.as_str()})
            }
            Self::Status { peer, status } => {
                json!({"event": "status", "peer": peer, "status": status.as_str()})
            }
            Self::Presence { user, online } => {
                json!({"event": "presence", "user": user, "online": online})
            }
            Self::Path { peer, path } => json!({
                "event": "path", "peer": peer, "kind": path.kind.as_str(), "rtt_ms": path.rtt_ms
            }),
            Self::Signaling(state) => json!({"event": "signaling", "state": state.as_str()}),
            Self::Error(error) => json!({"event": "error", "message": error.to_string()}),
            Self::RoomMessage {
                room,
                author,
                seq,
                lamport,
                text,
                picture,
            } => {
                let mut value = json!({
                    "event": "room_message", "room": room.as_str(), "author": author,
                    "seq": seq, "lamport": lamport, "text": text
                });
                if let Some(picture) = picture {
                    let fields = value.as_object_mut().expect("an object");
                    fields.insert("file".into(), picture_json(picture));
                }
                value
            }
            // Size and hash of the bytes carried, which the client checked against the
            // signed ones: a script comparing them compares what arrived.
            Self::RoomPicture {
                room,
                author,
                seq,
                picture,
                data,
            } => json!({
                "event": "room_picture", "room": room.as_str(), "author": author, "seq": seq,
                "file": json!({
                    "name": picture.name, "mime": picture.mime, "size": data.len(),
                    "sha256": crate::room::sha256_hex(data)
                })
            }),
            Self::RoomMembers {
                room,
                name,
                members,
                joined,
            } => json!({
                "event": "room_members", "room": room.as_str(), "name": name,
                "members": members, "joined": joined
            }),
            Self::RoomDelivery { room, seq, holders } => json!({
                "event": "room_delivery", "room": room.as_str(), "seq": seq,
                "holders": holders.have.len(), "members": holders.members(),
                "delivered": holders.delivered(), "have": holders.have, "lack": holders.lack
            }),
            Self::RoomWithdrawn { room, author, seq } => json!({
                "event": "room_withdrawn", "room": room.as_str(), "author": author, "seq": seq
            }),
            Self::RoomRefused { room, from, error } => json!({
                "event": "room_refused", "room": room.as_str(), "from": from,
                "message": error.to_string()
            }),
            Self::Registered | Self::RegistrationRefused(_) => return None,
        })
    }
}

/// A room picture as `--json` events describe it.
fn picture_json(picture: &Picture) -> Value {
    json!({
        "name": picture.name, "mime": picture.mime, "size": picture.size,
        "sha256": picture.sha256
    })
}

/// Everything that can go wrong, with a message that says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    #[error("{0}")]
    InvalidUsername(ProtocolError),
    #[error("the username `{0}` is already taken on this server; choose another name")]
    NameTaken(String),
    #[error(
        "the username `{0}` belongs to another identity key on this server (another device \
         of yours, or someone else): sign in from the device that first used it, or choose \
         another name"
    )]
    NameOfAnotherKey(String),
    #[error(
        "the username `{0}` was taken by another client while the connection to the \
         signaling server was down: new chats cannot reach this one (open chats go on); \
         sign in again, or under another name"
    )]
    NameLost(String),
    #[error("the signaling server sent a packet this client refuses ({0}); connecting again")]
    BadBrokerPacket(String),
    #[error("cannot reach the signaling server at {url}: {reason}")]
    ServerUnreachable { url: String, reason: String },
    #[error("the signaling server did not confirm registration in time; check the server URL")]
    RegistrationTimeout,
    #[error("unsupported server URL `{0}`: use mqtt://, mqtts://, ws:// or wss://")]
    BadServerUrl(String),
    #[error("not connected to the signaling server yet; call connect first")]
    NotConnected,
    #[error("cannot connect to yourself")]
    SelfConnect,
    #[error("already connected or connecting to `{0}`")]
    AlreadyConnected(String),
    #[error("`{0}` is offline")]
    PeerOffline(String),
    #[error("`{0}` did not answer in time; they may be offline or behind a blocking network")]
    PeerTimeout(String),
    #[error("not connected to `{0}`; connect first")]
    PeerNotConnected(String),
    #[error("message of {size} bytes exceeds the {limit}-byte limit")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("file of {size} bytes exceeds the {limit}-byte limit")]
    FileTooLarge { size: u64, limit: u64 },
    #[error("cannot send this file: {0}")]
    BadFile(String),
    #[error("`{0}` uses an app that cannot receive files")]
    FilesUnsupported(String),
    #[error("files to `{0}` are still on their way; send more once they have arrived")]
    TransfersPending(String),
    #[error("too many peers at once (limit {0}); close some chats first")]
    TooManyPeers(usize),
    #[error("bad signaling from `{from}`: {error}")]
    BadSignal { from: String, error: ProtocolError },
    #[error("unexpected `{kind}` from `{from}`: {detail}")]
    UnexpectedSignal {
        from: String,
        kind: &'static str,
        detail: String,
    },
    #[error("file {id} with `{peer}` was interrupted when the connection was lost; send it again")]
    TransferInterrupted { peer: String, id: MessageId },
    #[error("refused signaling from `{from}`: {reason}")]
    Untrusted { from: String, reason: String },
    #[error(
        "`{0}` now presents a different identity key than before: someone may be \
         impersonating them. Compare safety numbers out of band before trusting the new key"
    )]
    KeyChanged(String),
    #[error("no identity key is known for `{0}` yet")]
    NoKeyFor(String),
    #[error("peer connection with `{peer}` failed: {reason}")]
    Transport { peer: String, reason: String },
    #[error("the client has been disconnected")]
    Closed,
    #[error("{0}")]
    Room(#[from] RoomError),
    #[error("no room {0} here; create it, or wait for an invitation")]
    UnknownRoom(String),
    #[error(
        "`{0}` uses an app without rooms (an original client or an older peerchat): it cannot join"
    )]
    RoomsUnsupported(String),
    #[error("this client holds {0} rooms, the most it can; leave some first")]
    TooManyRooms(usize),
    #[error("cannot use the message store {location}: {error}")]
    Store {
        location: String,
        error: crate::store::StoreError,
    },
    #[error(
        "the message store {location} could not be read ({reason}); it was kept aside as \
         {kept_aside} and this client starts with an empty history"
    )]
    StoreSetAside {
        location: String,
        kept_aside: String,
        reason: String,
    },
    #[error(
        "the pinned keys in {location} could not all be read ({reason}); the file was kept \
         aside as {kept_aside}: peers whose keys were lost will be pinned anew on first use, \
         so compare safety numbers with them again"
    )]
    PinsSetAside {
        location: String,
        kept_aside: String,
        reason: String,
    },
    #[error(
        "the application did not read its events ({events} waiting, {file_bytes} bytes of \
         files): the client left to bound its memory; peers keep what was not acknowledged"
    )]
    EventsNotRead { events: usize, file_bytes: u64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `room_delivery` as docs/cli.md shows it: the counts it always had, and the names.
    #[test]
    fn room_delivery_names_who_has_it_and_keeps_the_counts() {
        let names = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        let event = ClientEvent::RoomDelivery {
            room: RoomId::from_random([1; 16]),
            seq: 4,
            holders: Holders {
                have: names(&["alice", "bob"]),
                lack: names(&["carol"]),
            },
        };
        let json = event.to_json().expect("shown");
        assert_eq!(json["event"], "room_delivery");
        assert_eq!(
            (json["seq"].as_u64(), json["holders"].as_u64()),
            (Some(4), Some(2))
        );
        assert_eq!(json["members"], 3);
        assert_eq!(json["delivered"], false);
        assert_eq!(json["have"], json!(["alice", "bob"]));
        assert_eq!(json["lack"], json!(["carol"]));
    }
}
