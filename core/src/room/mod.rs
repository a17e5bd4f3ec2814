//! Group rooms (issue 17): a room's members, its signed messages in one order for everyone,
//! and what two members owe each other when they meet. Sans-IO like `machine`: plain values
//! in, plain values out, so every rule is a unit test.
//!
//! Who may do what is decided by signed, versioned membership changes (`membership`); each
//! room message is signed by its author (`message`), so members pass each other's messages
//! on without being able to forge or alter them; each member keeps the room's messages in
//! one total order with per-author high-water marks (`log`) and learns from those marks
//! who holds what (`delivery`). [`Room`] is one member's copy of all of it; [`RoomFrame`]
//! carries changes, messages and marks between members (`wire`), and
//! `machine::rooms` runs the exchanges over chat channels.

mod delivery;
mod id;
mod log;
mod membership;
mod message;
mod picture;
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties;
mod replica;
mod wire;

pub use delivery::{Delivery, Holders};
pub use id::RoomId;
pub use log::{Added, HighWaterMarks, RoomLog};
pub use membership::{Action, MemberChange, Membership};
pub use message::RoomMessage;
pub use picture::{
    MAX_ARRIVING_PICTURES, MAX_ROOM_PICTURE_BYTES, Picture, Pictures, PieceTaken, ROOM_PIECE_BYTES,
    sha256_hex,
};
pub use replica::{CatchUp, ChangeApplied, Room};
pub use wire::{MAX_CHANGES_PER_FRAME, MAX_LACKING_PER_FRAME, MAX_MARKS_PER_FRAME, RoomFrame};

use thiserror::Error;

/// Most members a room has at once. The transport is a full mesh of pairwise connections:
/// an author sends each message once per member it is connected to, and each member holds
/// up to `MAX_MEMBERS - 1` connections for the room; at 32 that is 31 sends per message and
/// 496 connections in the mesh, about what a phone on a mobile network still carries.
pub const MAX_MEMBERS: usize = 32;

/// Most room messages one member sends another in one meeting (on connecting, or when asked
/// to catch up). A member back after a long absence gets the rest at the next meeting;
/// the bound keeps one meeting from holding a channel (and the receiver's memory) for long.
pub const MAX_MESSAGES_PER_MEETING: usize = 256;

/// Most membership changes a room keeps. The whole chain is kept and handed to every new
/// member (it is how they check who may write), so it must stay small; a room that reaches
/// it takes no more changes.
pub const MAX_MEMBER_CHANGES: usize = 1024;

/// Longest room message text, in UTF-8 bytes. A room message travels in one data-channel
/// frame of at most 64 KiB with its author, numbers and signature; JSON may escape the text
/// to several times its size, so the text itself stays well under the frame's bound.
pub const MAX_ROOM_TEXT_BYTES: usize = 8 * 1024;

/// Latest Lamport time a room message may carry: 2^53, the largest integer every JSON
/// reader (JavaScript's included) reads exactly. An honest room counts up one per message
/// and never comes near; a member stamping a time beyond it is refused, so nobody can push
/// the room's clock to where it would overflow.
pub const MAX_LAMPORT: u64 = 1 << 53;

/// Longest room name, in UTF-8 bytes: the same bound as a username, as both are shown in
/// the same places.
pub const MAX_ROOM_NAME_BYTES: usize = 64;

/// Why a room change, message or request was refused. Each says what failed; none changes
/// the room.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoomError {
    #[error("this belongs to room {got}, not to room {expected}")]
    WrongRoom { expected: RoomId, got: RoomId },
    #[error(
        "the signature by `{name}` does not verify: it was altered or made by nobody in the room"
    )]
    BadSignature { name: String },
    #[error("`{signer}` signed this in the name of `{claimed}`: refused as a forgery")]
    Impersonation { claimed: String, signer: String },
    #[error("`{name}` is not a member of the room at membership version {version}")]
    NotAMember { name: String, version: u64 },
    #[error("`{name}` left or was removed from the room; its message {seq} came after that")]
    AfterRemoval { name: String, seq: u64 },
    #[error("the room has {limit} members, the most it can have: remove someone first")]
    RoomFull { limit: usize },
    #[error("`{by}` may not {what} in this room: only its creator and admins may")]
    NotAllowed { by: String, what: &'static str },
    #[error("`{name}` is already a member of the room")]
    AlreadyMember { name: String },
    #[error(
        "`{name}` cannot join rooms: it has no identity key (an original client or an old peerchat)"
    )]
    NoIdentityKey { name: String },
    #[error("membership version {needs} is needed and this member has only {have}: catch up first")]
    MembershipBehind { have: u64, needs: u64 },
    #[error(
        "membership change {got} does not follow version {have}: the changes between are missing"
    )]
    ChangeGap { have: u64, got: u64 },
    #[error(
        "membership change {version} differs from the one already applied: two admins changed the room at once"
    )]
    ConflictingChange { version: u64 },
    #[error("the room has {limit} membership changes, the most it keeps")]
    TooManyChanges { limit: usize },
    #[error("this client holds {limit} rooms, the most it keeps: the invitation is refused")]
    NoRoomLeft { limit: usize },
    #[error("malformed membership change: {0}")]
    BadChange(&'static str),
    #[error("`{author}` signed two different messages numbered {seq}: refused")]
    Equivocation { author: String, seq: u64 },
    #[error(
        "message {seq} of `{author}` is not later than its previous message in the room's order"
    )]
    OutOfOrder { author: String, seq: u64 },
    #[error("message {seq} of `{author}` is stamped with a time beyond any a room reaches")]
    ClockTooFar { author: String, seq: u64 },
    #[error("more than {limit} messages in one answer: the rest are refused, and asked for again")]
    MeetingTooLarge { limit: usize },
    #[error("room message of {size} bytes exceeds the {limit}-byte limit")]
    TextTooLarge { size: usize, limit: usize },
    #[error("room picture of {size} bytes exceeds the {limit}-byte limit")]
    PictureTooLarge { size: u64, limit: u64 },
    #[error("cannot use this room picture: {0}")]
    BadPicture(&'static str),
    #[error("the bytes of room picture {sha256} do not match its signed size and SHA-256")]
    PictureMismatch { sha256: String },
    #[error("piece at {offset} of room picture {sha256} does not fit it")]
    BadPiece { sha256: String, offset: u64 },
    #[error("invalid room name: {0}")]
    InvalidName(&'static str),
    #[error("invalid member name {name:?}: {reason}")]
    InvalidMemberName { name: String, reason: String },
}

/// Checks that `name` can name a room: shown to people next to usernames, so bounded and
/// free of control characters.
pub fn validate_room_name(name: &str) -> Result<(), RoomError> {
    let reason = if name.trim().is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_ROOM_NAME_BYTES {
        Some("it is longer than 64 bytes")
    } else if name.chars().any(char::is_control) {
        Some("it contains control characters")
    } else if name.trim() != name {
        Some("it starts or ends with whitespace")
    } else {
        None
    };
    reason.map_or(Ok(()), |reason| Err(RoomError::InvalidName(reason)))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Members with fixed keys, for the room's tests.
    use crate::identity::Identity;

    pub fn identity(name: &str) -> Identity {
        let mut seed = [7u8; 32];
        for (slot, byte) in seed.iter_mut().zip(name.bytes()) {
            *slot = byte;
        }
        Identity::from_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_are_bounded_and_printable() {
        assert_eq!(validate_room_name("book club"), Ok(()));
        for bad in ["", "  ", " x", "a\nb", &"x".repeat(65)] {
            assert!(validate_room_name(bad).is_err(), "{bad:?}");
        }
    }
}
