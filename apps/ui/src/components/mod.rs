//! The screens and their parts. Each component draws part of the [`crate::model`] state
//! and turns clicks and keys into client calls and model updates.

mod chat_screen;
mod conversation;
mod login;
mod notices;
mod room;
mod sidebar;

pub use chat_screen::ChatScreen;
use conversation::send_each;
pub use conversation::{
    BackButton, Bubble, Conversation, MessageComposer, PeerInfo, PicturePicker, drop_pictures,
    paste_pictures,
};
pub use login::LoginScreen;
pub use notices::Notices;
pub use room::{RoomConversation, RoomList};
pub use sidebar::{ListRow, NameForm, PeerRow, Sidebar};

use dioxus::prelude::*;
use peerchat_core::{Client, ClientEvent};

use crate::model::ChatState;
use crate::platform;

/// The signed-in client, provided by [`crate::App`].
fn use_client() -> Signal<Option<Client>> {
    use_context()
}

/// Calls `peer`; a refusal (offline, too many peers…) shows up like any client error.
fn call(client: Signal<Option<Client>>, mut chat: Signal<Option<ChatState>>, peer: &str) {
    let Some(client) = client.read().clone() else {
        return;
    };
    if let Err(error) = client.connect_to_peer(peer)
        && let Some(state) = chat.write().as_mut()
    {
        state.apply(ClientEvent::Error(error), platform::now());
    }
}

/// How many kept messages a conversation opens with.
const HISTORY_SHOWN: usize = 200;

/// Fills `peer`'s new conversation with what earlier runs kept, once it is read.
fn restore_history(
    client: Signal<Option<Client>>,
    mut chat: Signal<Option<ChatState>>,
    peer: &str,
) {
    let Some(client) = client.read().clone() else {
        return;
    };
    if !chat.read().as_ref().is_some_and(|s| s.wants_history(peer)) {
        return;
    }
    let peer = peer.to_owned();
    spawn(async move {
        let kept = client.history(&peer, HISTORY_SHOWN).await;
        if let Some(state) = chat.write().as_mut() {
            state.restore_history(&peer, kept, platform::time_at);
        }
    });
}

#[cfg(test)]
mod tests;
