//! The UI's state in plain Rust types: what the screens show, and how client events and
//! user actions change it. No Dioxus here, so every rule is a unit test.

mod attachment;
mod chat;
mod login;
mod room;

pub use attachment::{Attachment, DataUrl, media_type};
pub use chat::{
    AddPeerError, Alert, ChatMessage, ChatState, Composer, Delivery, Direction,
    MAX_MESSAGES_PER_PEER, MessageTime, Notice, PeerEntry, Tone,
};
pub use login::{LoginForm, default_server_url};
pub use room::{RoomMessage, RoomView};

#[cfg(test)]
mod tests;
