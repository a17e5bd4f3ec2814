//! Who I am, the "add peer" field, and the peer list with status dots, unread counts and
//! previews; then the rooms, listed the same way, with the "new room" field.

use dioxus::prelude::*;

use super::{RoomList, call, restore_history, use_client};
use crate::model::{ChatState, PeerEntry};
use crate::platform::{self, NotifyPermission};

#[component]
pub fn Sidebar(chat: Signal<Option<ChatState>>, on_leave: EventHandler<()>) -> Element {
    let client = use_client();
    let mut draft = use_signal(String::new);
    let mut error = use_signal(|| None::<String>);
    let state = chat.read();
    let Some(state) = state.as_ref() else {
        return rsx! {};
    };
    let me = state.me.clone();
    let selected = state.selected.clone();
    let peers: Vec<PeerEntry> = state.peers().into_iter().cloned().collect();

    let add = move |event: FormEvent| {
        event.prevent_default();
        let added = match chat.write().as_mut() {
            Some(state) => state
                .add_peer(&draft())
                .map(|name| (state.can_call(&name), name)),
            None => return,
        };
        match added {
            Ok((should_call, name)) => {
                draft.set(String::new());
                error.set(None);
                // A listed peer's presence shows in the list, chat or not.
                if let Some(client) = client.read().as_ref() {
                    client.watch_presence(&name).ok();
                }
                restore_history(client, chat, &name);
                if should_call {
                    call(client, chat, &name);
                }
            }
            Err(why) => error.set(Some(why.to_string())),
        }
    };

    rsx! {
        aside { class: "sidebar", aria_label: "Peers",
            header { class: "me",
                div {
                    span { class: "label", "Signed in as" }
                    strong { class: "my-name", "{me}" }
                }
                AskToNotify {}
                button { class: "quiet", onclick: move |_| on_leave.call(()), "Leave" }
            }
            NameForm {
                class: "add-peer",
                field: "Peer name",
                placeholder: "Add a peer by name",
                action: "Add peer",
                button: "Add",
                draft,
                onsubmit: add,
            }
            if let Some(why) = error() {
                p { class: "error", role: "alert", "{why}" }
            }
            ul { class: "peer-list",
                for peer in peers {
                    PeerRow {
                        key: "{peer.name}",
                        selected: selected.as_deref() == Some(peer.name.as_str()),
                        peer: peer.clone(),
                        on_select: move |name: String| {
                            if let Some(state) = chat.write().as_mut() {
                                state.select(&name);
                            }
                            restore_history(client, chat, &name);
                        },
                    }
                }
            }
            RoomList { chat }
        }
    }
}

/// One peer in the list: dot, name, presence, preview, unread badge.
#[component]
pub fn PeerRow(peer: PeerEntry, selected: bool, on_select: EventHandler<String>) -> Element {
    let name = peer.name.clone();
    let status = peer.status_label();
    let presence = match peer.online {
        Some(true) => " · online",
        Some(false) => " · offline",
        None => "",
    };
    rsx! {
        ListRow {
            title: peer.name.clone(),
            label: "{peer.name}, {status}{presence}",
            dot: peer.tone().class(),
            dot_title: status,
            preview: peer.preview().unwrap_or_else(|| format!("{status}{presence}")),
            unread: peer.unread,
            selected,
            on_select: move |_| on_select.call(name.clone()),
        }
    }
}

/// The look every entry of the sidebar shares, a peer's or a room's: a dot, a name over a
/// line of preview, and the unread count.
#[component]
pub fn ListRow(
    title: String,
    label: String,
    dot: &'static str,
    dot_title: String,
    preview: String,
    unread: usize,
    selected: bool,
    on_select: EventHandler<()>,
) -> Element {
    let class = if selected { "peer selected" } else { "peer" };
    rsx! {
        li {
            button {
                class: "{class}",
                aria_current: if selected { "true" } else { "false" },
                aria_label: "{label}",
                onclick: move |_| on_select.call(()),
                span { class: "dot {dot}", title: "{dot_title}" }
                span { class: "peer-text",
                    span { class: "peer-name", "{title}" }
                    span { class: "preview", "{preview}" }
                }
                if unread > 0 {
                    span { class: "unread", aria_label: "{unread} unread", "{unread}" }
                }
            }
        }
    }
}

/// "Notify me": asks to show notifications, from a click as browsers require; shown only
/// while the user has not been asked.
#[component]
fn AskToNotify() -> Element {
    let mut permission = use_signal(platform::notify_permission);
    if permission() != NotifyPermission::Ask {
        return rsx! {};
    }
    let ask = move |_| {
        spawn(async move { permission.set(platform::ask_notify_permission().await) });
    };
    rsx! {
        button {
            class: "quiet",
            id: "ask-to-notify",
            aria_label: "Notify me",
            title: "Notify me: show a notification when a message arrives for a chat not in view",
            onclick: ask,
            // A bell, drawn: no emoji font needed.
            svg {
                width: "18",
                height: "18",
                view_box: "0 0 24 24",
                fill: "none",
                stroke: "currentColor",
                stroke_width: "2",
                stroke_linecap: "round",
                stroke_linejoin: "round",
                path { d: "M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" }
                path { d: "M10.3 21a1.94 1.94 0 0 0 3.4 0" }
            }
        }
    }
}

/// A one-field form that takes a name (a peer to add, a room to make, someone to invite):
/// the field keeps `draft`, and submitting calls `onsubmit`.
#[component]
pub fn NameForm(
    class: &'static str,
    /// The field's accessible name.
    field: &'static str,
    placeholder: &'static str,
    /// The button's accessible name.
    action: &'static str,
    button: &'static str,
    draft: Signal<String>,
    onsubmit: EventHandler<FormEvent>,
) -> Element {
    rsx! {
        form { class, onsubmit: move |e| onsubmit.call(e),
            input {
                aria_label: field,
                placeholder,
                value: "{draft}",
                oninput: move |e| draft.set(e.value()),
            }
            button { r#type: "submit", aria_label: action, "{button}" }
        }
    }
}
