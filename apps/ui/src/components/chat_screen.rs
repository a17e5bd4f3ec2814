//! The signed-in screen: banner and notices on top, the sidebar and the open conversation
//! side by side (one at a time at phone width).

use dioxus::prelude::*;
use peerchat_core::SignalingState;

use super::{Conversation, Notices, RoomConversation, Sidebar};
use crate::model::ChatState;

#[component]
pub fn ChatScreen(chat: Signal<Option<ChatState>>, on_leave: EventHandler<()>) -> Element {
    let state = chat.read();
    let Some(state) = state.as_ref() else {
        return rsx! {};
    };
    let open = state.selected_peer().map(|p| p.name.clone());
    let open_room = state.selected_room().map(|r| r.id.clone());
    let layout = if open.is_some() || open_room.is_some() {
        "chat-screen chat-open"
    } else {
        "chat-screen"
    };
    rsx! {
        div { class: "{layout}",
            if state.signaling == SignalingState::Reconnecting {
                div { class: "banner", role: "status",
                    "Offline: the signaling server is unreachable; reconnecting. Open chats keep working, and what you write waits."
                }
            }
            Notices { chat }
            div { class: "panes",
                Sidebar { chat, on_leave }
                if let Some(peer) = open {
                    Conversation { chat, peer }
                } else if let Some(room) = open_room {
                    RoomConversation { chat, room }
                } else {
                    section { class: "conversation empty",
                        p { "Add a peer by name to start chatting." }
                    }
                }
            }
        }
    }
}
