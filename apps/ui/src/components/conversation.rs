//! The open conversation: header with status, the messages (newest at the bottom, kept in
//! view), and the input, disabled with a reason while the peer is not connected.

use dioxus::prelude::*;

use super::{call, use_client};
use crate::model::{ChatMessage, ChatState, Composer, Delivery, Direction, PeerEntry};
use crate::platform;

#[component]
pub fn Conversation(chat: Signal<Option<ChatState>>, peer: String) -> Element {
    let client = use_client();
    let mut draft = use_signal(String::new);
    let mut info_open = use_signal(|| false);
    let state = chat.read();
    let Some(entry) = state.as_ref().and_then(|s| s.peer(&peer)).cloned() else {
        return rsx! {};
    };
    let composer = state.as_ref().map(|s| s.composer(&peer));
    let can_call = state.as_ref().is_some_and(|s| s.can_call(&peer));
    drop(state);

    let ready = composer == Some(Composer::Ready);
    let reason = match &composer {
        Some(Composer::Disabled(why)) => why.clone(),
        _ => String::new(),
    };
    let to = peer.clone();
    let send = move |event: FormEvent| {
        event.prevent_default();
        let text = draft();
        if text.trim().is_empty() {
            return;
        }
        let Some(client) = client.read().clone() else {
            return;
        };
        let sent = client.try_send_message(&to, &text);
        let accepted = sent.is_ok();
        if let Some(state) = chat.write().as_mut() {
            state.record_sent(&to, &text, sent, platform::now());
        }
        if accepted {
            draft.set(String::new());
        }
    };
    let callee = peer.clone();
    let status = entry.status.as_str();

    rsx! {
        section { class: "conversation", aria_label: "Chat with {peer}",
            header { class: "conversation-header",
                button {
                    class: "icon back",
                    aria_label: "Back to peers",
                    onclick: move |_| {
                        if let Some(state) = chat.write().as_mut() {
                            state.deselect();
                        }
                    },
                    "‹"
                }
                span { class: "dot {entry.tone().class()}" }
                div { class: "title",
                    h2 { "{peer}" }
                    span { class: "status", role: "status", "{status}" }
                }
                if can_call {
                    button { onclick: move |_| call(client, chat, &callee), "Connect" }
                }
                button {
                    class: "info-button",
                    aria_label: "Connection details",
                    aria_expanded: if info_open() { "true" } else { "false" },
                    onclick: move |_| info_open.toggle(),
                    "i"
                }
            }
            if info_open() {
                PeerInfo { peer: entry.clone() }
            }
            ol { class: "messages", aria_live: "polite",
                for message in entry.messages.iter().rev() {
                    Bubble { key: "{message.id}", message: message.clone() }
                }
            }
            form { class: "composer", onsubmit: send,
                input {
                    aria_label: "Message to {peer}",
                    placeholder: if ready { "Message" } else { "{reason}" },
                    disabled: !ready,
                    value: "{draft}",
                    oninput: move |e| draft.set(e.value()),
                }
                button { r#type: "submit", disabled: !ready, aria_label: "Send", "Send" }
            }
        }
    }
}

/// How the chat runs: route, round trip and presence.
#[component]
pub fn PeerInfo(peer: PeerEntry) -> Element {
    rsx! {
        dl { class: "peer-info", aria_label: "Connection details",
            dt { "Route" }
            dd { class: "route", "{peer.route()}" }
            dt { "Round trip" }
            dd { class: "rtt", "{peer.round_trip()}" }
            dt { "Presence" }
            dd { class: "presence", "{peer.presence()}" }
        }
    }
}

/// One message: mine on the right with its delivery mark, theirs on the left, notes centred.
#[component]
pub fn Bubble(message: ChatMessage) -> Element {
    let class = match message.direction {
        Direction::Mine => "bubble mine",
        Direction::Theirs => "bubble theirs",
        Direction::Note => "bubble note",
    };
    let (mark, mark_label) = match message.delivery {
        Some(Delivery::Sent) => ("✓", "sent"),
        Some(Delivery::Delivered) => ("✓✓", "delivered"),
        Some(Delivery::Failed) => ("!", "not sent"),
        None => ("", ""),
    };
    rsx! {
        li { class: "{class}",
            p { class: "text", "{message.text}" }
            span { class: "meta",
                time { "{message.at}" }
                if !mark.is_empty() {
                    span { class: "delivery", title: "{mark_label}", aria_label: "{mark_label}", "{mark}" }
                }
            }
        }
    }
}
