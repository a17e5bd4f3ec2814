//! Group rooms: their part of the sidebar with the "new room" field, and an open room's
//! conversation with its members, the invite field and the Leave button.

use dioxus::prelude::*;
use peerchat_core::room::RoomId;
use peerchat_core::{Client, ClientError, ClientEvent};

use super::{
    BackButton, Bubble, ListRow, MessageComposer, NameForm, PicturePicker, drop_pictures,
    paste_pictures, send_each, use_client,
};
use crate::model::{ChatState, Composer, RoomView, Tone};
use crate::platform::{self, LocalFile};

/// Runs `act` with the client; what it refuses (no such peer, a full room…) becomes a
/// notice like any client error. Returns what it gave, if it gave anything.
fn with_client<T>(
    client: Signal<Option<Client>>,
    mut chat: Signal<Option<ChatState>>,
    act: impl FnOnce(&Client) -> Result<T, ClientError>,
) -> Option<T> {
    let client = client.read().clone()?;
    match act(&client) {
        Ok(done) => Some(done),
        Err(error) => {
            if let Some(state) = chat.write().as_mut() {
                state.apply(ClientEvent::Error(error), platform::now());
            }
            None
        }
    }
}

/// The rooms in the sidebar, newest activity first, under the field that creates one.
#[component]
pub fn RoomList(chat: Signal<Option<ChatState>>) -> Element {
    let client = use_client();
    let mut draft = use_signal(String::new);
    let state = chat.read();
    let Some(state) = state.as_ref() else {
        return rsx! {};
    };
    let open = state.selected_room.clone();
    let rooms: Vec<RoomView> = state.rooms().into_iter().cloned().collect();
    let create = move |event: FormEvent| {
        event.prevent_default();
        let name = draft().trim().to_owned();
        if name.is_empty() {
            return;
        }
        if let Some(id) = with_client(client, chat, |c| c.create_room(&name)) {
            draft.set(String::new());
            if let Some(state) = chat.write().as_mut() {
                state.select_room(&id);
            }
        }
    };
    rsx! {
        h2 { class: "list-heading", "Rooms" }
        NameForm {
            class: "add-peer new-room",
            field: "Room name",
            placeholder: "New room",
            action: "Create room",
            button: "Create",
            draft,
            onsubmit: create,
        }
        ul { class: "peer-list room-list",
            for room in rooms {
                RoomRow {
                    key: "{room.id}",
                    selected: open.as_ref() == Some(&room.id),
                    room: room.clone(),
                    on_select: move |id: RoomId| {
                        if let Some(state) = chat.write().as_mut() {
                            state.select_room(&id);
                        }
                    },
                }
            }
        }
    }
}

/// One room in the list, drawn as a peer is.
#[component]
fn RoomRow(room: RoomView, selected: bool, on_select: EventHandler<RoomId>) -> Element {
    let id = room.id.clone();
    let (tone, state) = if room.joined {
        (Tone::Good, format!("{} members", room.members.len()))
    } else {
        (Tone::Bad, "left".to_owned())
    };
    rsx! {
        ListRow {
            title: room.name.clone(),
            label: "Room {room.name}, {state}",
            dot: tone.class(),
            dot_title: state.clone(),
            preview: room.preview().unwrap_or(state),
            unread: room.unread,
            selected,
            on_select: move |_| on_select.call(id.clone()),
        }
    }
}

/// An open room: header with Leave, members and the invite field, the messages (others'
/// under their author's name, mine with ✓ / ✓✓, which opens who has it), and the composer.
#[component]
pub fn RoomConversation(chat: Signal<Option<ChatState>>, room: RoomId) -> Element {
    let client = use_client();
    let state = chat.read();
    let Some(view) = state.as_ref().and_then(|s| s.room(&room)).cloned() else {
        return rsx! {};
    };
    let composer = state.as_ref().map(|s| s.room_composer(&room));
    let me = state.as_ref().map(|s| s.me.clone()).unwrap_or_default();
    drop(state);

    let to = room.clone();
    let send = move |text: String| {
        let sent = with_client(client, chat, |c| c.send_room_message(&to, &text));
        let Some(seq) = sent else {
            return false;
        };
        if let Some(state) = chat.write().as_mut() {
            state.record_room_sent(&to, &text, Ok(seq), platform::now());
        }
        true
    };
    // Pictures are picked, pasted or dropped as in a 1:1 chat.
    let (pick_to, paste_to, drop_to) = (room.clone(), room.clone(), room.clone());
    let on_pick = move |files: Vec<LocalFile>| send_pictures(client, chat, &pick_to, files);
    let on_paste = move |event: ClipboardEvent| {
        let to = paste_to.clone();
        paste_pictures(event, move |files| send_pictures(client, chat, &to, files));
    };
    let composer = composer.unwrap_or(Composer::Ready);
    let ready = composer == Composer::Ready;
    let leaving = room.clone();
    let leave = move |_| {
        with_client(client, chat, |c| c.leave_room(&leaving));
    };
    rsx! {
        section { class: "conversation room", aria_label: "Room {view.name}",
            ondragover: move |event| event.prevent_default(),
            ondrop: move |event: DragEvent| {
                let to = drop_to.clone();
                drop_pictures(event, ready, move |files| send_pictures(client, chat, &to, files));
            },
            header { class: "conversation-header",
                BackButton { chat }
                div { class: "title",
                    h2 { "{view.name}" }
                    span { class: "status", role: "status",
                        {view.change.clone().unwrap_or_else(|| format!("{} members", view.members.len()))}
                    }
                }
                if view.joined {
                    button { class: "leave-room", onclick: leave, "Leave room" }
                }
            }
            RoomMembers { chat, room: room.clone(), joined: view.joined }
            ol { class: "messages", aria_live: "polite",
                for message in view.messages().iter().rev() {
                    Bubble {
                        key: "{message.id}",
                        message: message.bubble(),
                        author: (!message.mine).then(|| message.author.clone()),
                        holders: view.holders_in_words(message, &me),
                    }
                }
            }
            MessageComposer {
                to: view.name.clone(),
                composer,
                on_send: send,
                on_paste,
                PicturePicker { ready, on_pick }
            }
        }
    }
}

/// Sends each file into `room` as a picture; each shows in the room at once, whole (a
/// refused one becomes a notice).
fn send_pictures(
    client: Signal<Option<Client>>,
    chat: Signal<Option<ChatState>>,
    room: &RoomId,
    files: Vec<LocalFile>,
) {
    send_each(
        client,
        chat,
        files,
        |client, (name, mime, data)| client.send_room_picture(room, name, mime, data),
        |state, attachment, sent| {
            state.record_room_picture_sent(room, attachment, sent, platform::now())
        },
    );
}

/// Who is in the room, each with how my chat with them runs, and the field that invites
/// someone I have chatted with (while I am in the room).
#[component]
fn RoomMembers(chat: Signal<Option<ChatState>>, room: RoomId, joined: bool) -> Element {
    let client = use_client();
    let mut draft = use_signal(String::new);
    let members = (chat.read().as_ref()).map_or_else(Vec::new, |s| s.room_members(&room));
    let invite = move |event: FormEvent| {
        event.prevent_default();
        let peer = draft().trim().to_owned();
        if !peer.is_empty() && with_client(client, chat, |c| c.invite(&room, &peer)).is_some() {
            draft.set(String::new());
        }
    };
    rsx! {
        ul { class: "room-members", aria_label: "Members",
            for (name, tone, status) in members {
                li { key: "{name}", class: "member",
                    span { class: "dot {tone.class()}", title: "{status}" }
                    "{name}"
                }
            }
        }
        if joined {
            NameForm {
                class: "add-peer invite",
                field: "Invite peer",
                placeholder: "Invite someone you chat with",
                action: "Invite",
                button: "Invite",
                draft,
                onsubmit: invite,
            }
        }
    }
}
