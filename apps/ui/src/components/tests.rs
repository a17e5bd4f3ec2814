//! The screens rendered to HTML (server-side rendering, no browser): what a user sees for
//! a given state.

use dioxus::prelude::*;
use peerchat_core::room::Holders;
use peerchat_core::{Client, ClientEvent, PeerStatus, SignalingState};

use super::{ChatScreen, LoginScreen};
use crate::model::{ChatState, MessageTime};

const T: MessageTime = MessageTime {
    hour: 14,
    minute: 3,
};

fn render_chat(state: ChatState) -> String {
    #[component]
    fn Harness(state: ChatState) -> Element {
        let client = use_signal(|| None::<Client>);
        use_context_provider(|| client);
        let chat = use_signal(|| Some(state.clone()));
        rsx! { ChatScreen { chat, on_leave: |_| {} } }
    }
    let mut dom = VirtualDom::new_with_props(Harness, HarnessProps { state });
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

fn connected(state: &mut ChatState, peer: &str) {
    state.apply(ClientEvent::PeerConnected(peer.to_owned()), T);
}

#[test]
fn login_offers_name_and_server_fields() {
    #[component]
    fn Login() -> Element {
        rsx! { LoginScreen { on_joined: |_| {} } }
    }
    let mut dom = VirtualDom::new(Login);
    dom.rebuild_in_place();
    let html = dioxus_ssr::render(&dom);
    assert!(html.contains(r#"id="username""#), "{html}");
    assert!(html.contains(r#"id="server""#), "{html}");
    assert!(
        html.contains("mqtt://localhost:1883"),
        "native default server: {html}"
    );
    assert!(html.contains(">Join<"), "{html}");
    for field in ["ice-urls", "ice-username", "ice-credential"] {
        assert!(
            html.contains(&format!(r#"id="{field}""#)),
            "{field}: {html}"
        );
    }
    assert!(html.contains(r#"type="password""#), "{html}");
}

#[test]
fn the_sidebar_lists_peers_with_dots_unread_counts_and_previews() {
    let mut state = ChatState::new("alice");
    state.add_peer("bob").unwrap();
    connected(&mut state, "bob");
    state.apply(
        ClientEvent::Status {
            peer: "carol".to_owned(),
            status: PeerStatus::Connecting,
        },
        T,
    );
    state.apply(
        ClientEvent::Message {
            from: "carol".to_owned(),
            text: "are you there?".to_owned(),
        },
        T,
    );
    let html = render_chat(state);
    assert!(html.contains("Signed in as"), "{html}");
    assert!(
        html.contains(r#"class="dot good""#),
        "bob's dot is green: {html}"
    );
    assert!(
        html.contains(r#"class="dot pending""#),
        "carol's dot is amber: {html}"
    );
    assert!(html.contains(r#"aria-label="1 unread""#), "{html}");
    assert!(html.contains("are you there?"), "carol's preview: {html}");
}

#[test]
fn the_open_conversation_shows_bubbles_times_and_delivery() {
    let mut state = ChatState::new("alice");
    state.add_peer("bob").unwrap();
    connected(&mut state, "bob");
    state.record_sent("bob", "hello bob", Ok(1), T);
    state.record_sent("bob", "and again", Ok(2), T);
    state.apply(
        ClientEvent::Delivered {
            peer: "bob".to_owned(),
            id: 2,
        },
        T,
    );
    state.apply(
        ClientEvent::Message {
            from: "bob".to_owned(),
            text: "hi alice".to_owned(),
        },
        T,
    );
    let html = render_chat(state);
    assert!(html.contains(r#"class="chat-screen chat-open""#), "{html}");
    assert!(html.contains(r#"class="bubble mine""#), "{html}");
    assert!(html.contains(r#"class="bubble theirs""#), "{html}");
    assert!(html.contains("14:03"), "{html}");
    assert!(
        html.contains(r#"aria-label="sent""#),
        "the ✓ on my message: {html}"
    );
    assert!(
        html.contains(r#"aria-label="delivered""#),
        "the ✓✓ once acknowledged: {html}"
    );
    // Newest first in the DOM (the list is shown bottom-up).
    assert!(html.find("hi alice") < html.find("hello bob"), "{html}");
    assert!(
        !html.contains("disabled="),
        "a connected peer can be written to: {html}"
    );
}

#[test]
fn the_input_is_disabled_with_a_reason_until_the_peer_connects() {
    let mut state = ChatState::new("alice");
    state.add_peer("bob").unwrap();
    state.apply(
        ClientEvent::Status {
            peer: "bob".to_owned(),
            status: PeerStatus::Connecting,
        },
        T,
    );
    let html = render_chat(state);
    assert!(
        html.contains(r#"placeholder="Connecting to bob…""#),
        "{html}"
    );
    assert!(html.contains("disabled="), "{html}");
}

#[test]
fn a_broken_chat_offers_to_connect_again() {
    let mut state = ChatState::new("alice");
    state.add_peer("bob").unwrap();
    connected(&mut state, "bob");
    state.apply(
        ClientEvent::PeerDisconnected {
            peer: "bob".to_owned(),
            reason: peerchat_core::ChatEnd::PeerLeft,
        },
        T,
    );
    let html = render_chat(state);
    assert!(html.contains(">Connect<"), "{html}");
    assert!(html.contains(r#"class="dot bad""#), "{html}");
    assert!(html.contains("bob ended the chat."), "says why: {html}");
}

#[test]
fn a_chat_being_reconnected_shows_amber_and_takes_messages() {
    let mut state = ChatState::new("alice");
    state.add_peer("bob").unwrap();
    connected(&mut state, "bob");
    state.apply(
        ClientEvent::Status {
            peer: "bob".to_owned(),
            status: peerchat_core::PeerStatus::Disconnected,
        },
        T,
    );
    let html = render_chat(state);
    assert!(html.contains(">reconnecting<"), "{html}");
    assert!(html.contains(r#"class="dot pending""#), "{html}");
    assert!(!html.contains(">Connect<"), "{html}");
    assert!(
        !html.contains("disabled="),
        "the composer stays open: {html}"
    );
}

#[test]
fn the_banner_shows_while_signaling_reconnects() {
    let mut state = ChatState::new("alice");
    assert!(!render_chat(state.clone()).contains("unreachable"));
    state.apply(ClientEvent::Signaling(SignalingState::Reconnecting), T);
    assert!(render_chat(state).contains("Offline: the signaling server is unreachable"));
}

#[test]
fn pictures_show_inline_with_progress_while_they_travel() {
    use crate::model::Attachment;
    let mut state = ChatState::new("alice");
    state.add_peer("bob").unwrap();
    connected(&mut state, "bob");
    let image = Attachment::new("cat.png".to_owned(), "image/png".to_owned(), b"png");
    state.record_file_sent("bob", image, Ok(1), T);
    let html = render_chat(state);
    assert!(html.contains(r#"class="picture""#), "{html}");
    assert!(html.contains(r#"src="data:image/png;base64,"#), "{html}");
    assert!(html.contains(r#"alt="cat.png""#), "{html}");
    assert!(html.contains("<progress"), "{html}");
    assert!(html.contains(r#"aria-label="Send an image""#), "{html}");
}

fn book_club() -> peerchat_core::room::RoomId {
    peerchat_core::room::RoomId::from_random([3; 16])
}

fn room_members(members: &[&str], joined: bool) -> ClientEvent {
    ClientEvent::RoomMembers {
        room: book_club(),
        name: "book club".to_owned(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        joined,
    }
}

#[test]
fn an_open_room_shows_authors_delivery_members_and_its_controls() {
    let mut state = ChatState::new("alice");
    state.add_peer("bob").unwrap();
    connected(&mut state, "bob");
    state.apply(room_members(&["alice", "bob", "carol"], true), T);
    state.select_room(&book_club());
    state.apply(
        ClientEvent::RoomMessage {
            room: book_club(),
            author: "carol".to_owned(),
            seq: 1,
            lamport: 1,
            text: "chapter one?".to_owned(),
            picture: None,
        },
        T,
    );
    state.record_room_sent(&book_club(), "yes", Ok(1), T);
    state.record_room_sent(&book_club(), "and two", Ok(2), T);
    state.apply(
        ClientEvent::RoomDelivery {
            room: book_club(),
            seq: 1,
            holders: Holders {
                have: vec!["alice".into(), "bob".into(), "carol".into()],
                lack: Vec::new(),
            },
        },
        T,
    );
    let html = render_chat(state);
    assert!(html.contains(r#"aria-label="Room book club""#), "{html}");
    assert!(
        html.contains(r#"<span class="author">carol</span>"#),
        "{html}"
    );
    assert!(!html.contains(r#"class="author">alice"#), "{html}");
    assert!(html.contains(r#"aria-label="delivered""#), "✓✓: {html}");
    assert!(html.contains(r#"aria-label="sent""#), "✓: {html}");
    // Each mark of mine opens who has the message, closed at first.
    assert!(
        html.contains(
            r#"title="Has it: bob and carol" aria-label="delivered" aria-expanded="false""#
        ),
        "{html}"
    );
    assert!(
        html.contains(r#"title="Not yet: bob and carol" aria-label="sent""#),
        "{html}"
    );
    assert!(!html.contains(r#"class="holders""#), "{html}");
    assert!(html.find("and two") < html.find("chapter one?"), "{html}");
    assert!(html.contains(r#"aria-label="Invite peer""#), "{html}");
    assert!(html.contains(">Leave room<"), "{html}");
    assert!(
        html.contains(r#"aria-label="Send an image""#),
        "the room's composer picks pictures as a chat's does: {html}"
    );
    assert!(
        html.contains(r#"class="dot good" title="connected""#),
        "bob's chat runs: {html}"
    );
    assert!(
        html.contains(r#"title="not chatting yet""#),
        "carol: {html}"
    );
    assert!(html.contains(">Rooms<"), "{html}");
    assert!(html.contains("3 members"), "{html}");
}

#[test]
fn a_room_i_left_stays_listed_read_only() {
    let mut state = ChatState::new("alice");
    state.apply(room_members(&["alice", "bob"], true), T);
    state.apply(
        ClientEvent::RoomMessage {
            room: book_club(),
            author: "bob".to_owned(),
            seq: 1,
            lamport: 1,
            text: "bye then".to_owned(),
            picture: None,
        },
        T,
    );
    state.apply(room_members(&["bob"], false), T);
    let sidebar = render_chat(state.clone());
    assert!(sidebar.contains(r#"aria-label="1 unread""#), "{sidebar}");
    assert!(sidebar.contains("bob: bye then"), "{sidebar}");
    state.select_room(&book_club());
    let html = render_chat(state);
    assert!(html.contains("You are no longer in this room."), "{html}");
    assert!(html.contains("disabled="), "{html}");
    assert!(!html.contains(">Leave room<"), "{html}");
    assert!(!html.contains(r#"aria-label="Invite peer""#), "{html}");
}
