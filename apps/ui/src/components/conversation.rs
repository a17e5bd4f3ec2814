//! The open conversation: header with status, the messages (newest at the bottom, kept in
//! view), and the input, disabled with a reason while the peer is not connected.

use dioxus::prelude::*;

use super::{call, use_client};
use dioxus::html::{FileData, HasFileData};
use peerchat_core::Client;

use crate::model::{
    Attachment, ChatMessage, ChatState, Composer, Delivery, Direction, PeerEntry, media_type,
};
use crate::platform::{self, LocalFile, PastedFiles};

#[component]
pub fn Conversation(chat: Signal<Option<ChatState>>, peer: String) -> Element {
    let client = use_client();
    let mut info_open = use_signal(|| false);
    let state = chat.read();
    let Some(entry) = state.as_ref().and_then(|s| s.peer(&peer)).cloned() else {
        return rsx! {};
    };
    let composer = state.as_ref().map(|s| s.composer(&peer));
    let can_call = state.as_ref().is_some_and(|s| s.can_call(&peer));
    drop(state);

    let composer = composer.unwrap_or(Composer::Ready);
    let ready = composer == Composer::Ready;
    let to = peer.clone();
    let send = move |text: String| {
        let Some(client) = client.read().clone() else {
            return false;
        };
        let sent = client.try_send_message(&to, &text);
        let accepted = sent.is_ok();
        if let Some(state) = chat.write().as_mut() {
            state.record_sent(&to, &text, sent, platform::now());
        }
        accepted
    };
    let callee = peer.clone();
    let status = entry.status_label();
    let (pick_to, drop_to) = (peer.clone(), peer.clone());
    let paste_to = peer.clone();
    let on_pick = move |files: Vec<LocalFile>| send_files(client, chat, &pick_to, files);
    let on_paste = move |event: ClipboardEvent| {
        let to = paste_to.clone();
        paste_pictures(event, move |files| send_files(client, chat, &to, files));
    };

    rsx! {
        section {
            class: "conversation",
            aria_label: "Chat with {peer}",
            ondragover: move |event| event.prevent_default(),
            ondrop: move |event: DragEvent| {
                let to = drop_to.clone();
                drop_pictures(event, ready, move |files| send_files(client, chat, &to, files));
            },
            header { class: "conversation-header",
                BackButton { chat }
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
            MessageComposer {
                to: peer.clone(),
                composer,
                on_send: send,
                on_paste,
                PicturePicker { ready, on_pick }
            }
        }
    }
}

/// The message field and its Send button, for a peer's chat and a room alike; disabled with
/// the reason while nothing can be sent. `on_send` answers whether the text was taken (the
/// field is cleared then). `children` go before the field (the 1:1 chat's file picker).
/// Back from a conversation to the list (at phone width the two are separate screens).
#[component]
pub fn BackButton(chat: Signal<Option<ChatState>>) -> Element {
    rsx! {
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
    }
}

#[component]
pub fn MessageComposer(
    to: String,
    composer: Composer,
    on_send: Callback<String, bool>,
    #[props(default)] on_paste: EventHandler<ClipboardEvent>,
    children: Element,
) -> Element {
    let mut draft = use_signal(String::new);
    let ready = composer == Composer::Ready;
    let reason = match &composer {
        Composer::Disabled(why) => why.clone(),
        Composer::Ready => String::new(),
    };
    let send = move |event: FormEvent| {
        event.prevent_default();
        let text = draft();
        if !text.trim().is_empty() && on_send.call(text) {
            draft.set(String::new());
        }
    };
    rsx! {
        form { class: "composer", onsubmit: send,
            {children}
            input {
                class: "message",
                aria_label: "Message to {to}",
                placeholder: if ready { "Message" } else { "{reason}" },
                disabled: !ready,
                value: "{draft}",
                oninput: move |e| draft.set(e.value()),
                onpaste: move |e| on_paste.call(e),
            }
            button { r#type: "submit", disabled: !ready, aria_label: "Send", "Send" }
        }
    }
}

/// The composer's "+" that picks images to send, in a 1:1 chat and a room alike; `on_pick`
/// gets the files read.
#[component]
pub fn PicturePicker(ready: bool, on_pick: EventHandler<Vec<LocalFile>>) -> Element {
    let pick = move |event: FormEvent| {
        let files = event.files();
        spawn(async move { on_pick.call(read_picked(files).await) });
    };
    rsx! {
        label {
            class: if ready { "attach" } else { "attach disabled" },
            title: "Send an image",
            input {
                r#type: "file",
                accept: "image/*",
                multiple: true,
                aria_label: "Send an image",
                disabled: !ready,
                onchange: pick,
            }
            "+"
        }
    }
}

/// A picture pasted into the message field goes to `send`; pasted text stays text.
pub fn paste_pictures(event: ClipboardEvent, send: impl FnOnce(Vec<LocalFile>) + 'static) {
    let pasted = PastedFiles::take(&event.data());
    if pasted.is_empty() {
        return;
    }
    event.prevent_default();
    spawn(async move { send(pasted.read().await) });
}

/// Files dropped anywhere on a conversation go to `send`, as picked ones do, while it can
/// send.
pub fn drop_pictures(event: DragEvent, ready: bool, send: impl FnOnce(Vec<LocalFile>) + 'static) {
    event.prevent_default();
    let files = event.files();
    if ready {
        spawn(async move { send(read_picked(files).await) });
    }
}

/// Reads picked or dropped files; one that cannot be read is skipped.
async fn read_picked(files: Vec<FileData>) -> Vec<LocalFile> {
    let mut read = Vec::new();
    for file in files {
        if let Ok(data) = file.read_bytes().await {
            read.push(LocalFile {
                name: file.name(),
                mime: file.content_type(),
                data: data.to_vec(),
            });
        }
    }
    read
}

/// Sends each file; each shows in the conversation at once, with its progress.
fn send_files(
    client: Signal<Option<Client>>,
    chat: Signal<Option<ChatState>>,
    peer: &str,
    files: Vec<LocalFile>,
) {
    send_each(
        client,
        chat,
        files,
        |client, (name, mime, data)| client.send_file(peer, name, mime, data),
        |state, attachment, sent| state.record_file_sent(peer, attachment, sent, platform::now()),
    );
}

/// Sends each file with `send` (its name, media type and bytes) and records it, shown
/// at once, with `record`: one way for files to a peer and pictures into a room.
pub(super) fn send_each<T>(
    client: Signal<Option<Client>>,
    mut chat: Signal<Option<ChatState>>,
    files: Vec<LocalFile>,
    send: impl Fn(&Client, (&str, &str, &[u8])) -> T,
    record: impl Fn(&mut ChatState, Attachment, T),
) {
    let Some(client) = client.read().clone() else {
        return;
    };
    for LocalFile { name, mime, data } in files {
        let mime = media_type(mime, &name);
        let sent = send(&client, (&name, &mime, &data));
        if let Some(state) = chat.write().as_mut() {
            record(state, Attachment::new(name, mime, &data), sent);
        }
    }
}

/// How the chat runs (route, round trip and presence) and who is at the other end: the
/// peer's identity, its safety number, and a way to mark it verified once compared.
#[component]
pub fn PeerInfo(peer: PeerEntry) -> Element {
    let client = use_client();
    let verifiable = peer.identity.as_ref().is_some_and(|id| !id.verified);
    let name = peer.name.clone();
    rsx! {
        dl { class: "peer-info", aria_label: "Connection details",
            dt { "Route" }
            dd { class: "route", "{peer.route()}" }
            dt { "Round trip" }
            dd { class: "rtt", "{peer.round_trip()}" }
            dt { "Presence" }
            dd { class: "presence", "{peer.presence()}" }
            dt { "Identity" }
            dd { class: "identity", "{peer.identity_label()}" }
            if let Some(number) = peer.identity.as_ref().and_then(|id| id.safety_number.clone()) {
                dt { "Safety number" }
                dd { class: "safety-number", "{number}" }
            }
        }
        if verifiable {
            button {
                class: "verify",
                onclick: move |_| {
                    if let Some(client) = client.read().clone() {
                        let _ = client.mark_verified(&name);
                    }
                },
                "Mark as verified"
            }
        }
    }
}

/// One message: mine on the right with its delivery mark, theirs on the left (under its
/// author's name in a room, where several people write), notes centred. In a room, where
/// ✓✓ waits for several members, `holders` says in words who has my message and who not
/// yet: the mark then opens and closes that line.
#[component]
pub fn Bubble(
    message: ChatMessage,
    #[props(default)] author: Option<String>,
    #[props(default)] holders: Option<String>,
) -> Element {
    let mut holders_shown = use_signal(|| false);
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
            if let Some(author) = author {
                span { class: "author", "{author}" }
            }
            if let Some(file) = &message.attachment {
                if file.is_image() {
                    img {
                        class: "picture",
                        src: file.url.as_str(),
                        alt: "{file.name}",
                    }
                } else {
                    a {
                        class: "file",
                        href: file.url.as_str(),
                        download: "{file.name}",
                        "{file.name} ({file.size_label()})"
                    }
                }
            } else if message.progress.is_some() {
                p { class: "text", "Receiving a file…" }
            }
            if let Some((done, total)) = message.progress {
                progress {
                    max: "{total.max(1)}",
                    value: "{done}",
                    aria_label: "Transfer progress",
                }
            }
            if !message.text.is_empty() {
                p { class: "text", "{message.text}" }
            }
            span { class: "meta",
                time { "{message.at}" }
                if let Some(words) = &holders {
                    button {
                        class: "delivery",
                        title: "{words}",
                        aria_label: "{mark_label}",
                        aria_expanded: if holders_shown() { "true" } else { "false" },
                        onclick: move |_| holders_shown.toggle(),
                        "{mark}"
                    }
                } else if !mark.is_empty() {
                    span { class: "delivery", title: "{mark_label}", aria_label: "{mark_label}", "{mark}" }
                }
            }
            if let Some(words) = holders.as_ref().filter(|_| holders_shown()) {
                p { class: "holders", role: "status", "{words}" }
            }
        }
    }
}
