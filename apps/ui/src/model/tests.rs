use peerchat_core::room::{Holders, RoomError, RoomId};
use peerchat_core::{
    ChatEnd, ClientError, ClientEvent, IceServer, PathKind, PeerPath, PeerStatus, SignalingState,
    StoredMessage,
};

use super::*;

const T: MessageTime = MessageTime { hour: 9, minute: 5 };

fn message(from: &str, text: &str) -> ClientEvent {
    ClientEvent::Message {
        from: from.to_owned(),
        text: text.to_owned(),
    }
}

fn ended(peer: &str, reason: ChatEnd) -> ClientEvent {
    ClientEvent::PeerDisconnected {
        peer: peer.to_owned(),
        reason,
    }
}

fn status(peer: &str, status: PeerStatus) -> ClientEvent {
    ClientEvent::Status {
        peer: peer.to_owned(),
        status,
    }
}

#[test]
fn the_page_host_gives_the_default_server() {
    assert_eq!(
        default_server_url("http:", "localhost:8080", None),
        "ws://localhost:8080/mqtt"
    );
    assert_eq!(
        default_server_url("https:", "chat.example", None),
        "wss://chat.example/mqtt"
    );
    assert_eq!(
        default_server_url("http:", "a:1", Some(" mqtt://b:1883 ")),
        "mqtt://b:1883"
    );
    assert_eq!(
        default_server_url("http:", "a:1", Some("")),
        "ws://a:1/mqtt"
    );
}

fn login(username: &str, server_url: &str) -> LoginForm {
    LoginForm {
        username: username.to_owned(),
        server_url: server_url.to_owned(),
        ..LoginForm::default()
    }
}

#[test]
fn login_needs_a_valid_name_and_a_server() {
    let options = login(" alice ", " ws://h/mqtt ").validated().unwrap();
    assert_eq!(
        (options.username.as_str(), options.server_url.as_str()),
        ("alice", "ws://h/mqtt")
    );
    assert!(options.ice_servers.is_empty() && !options.relay_only);
    assert!(
        login("  ", "ws://h/mqtt")
            .validated()
            .unwrap_err()
            .contains("username")
    );
    assert!(login("a/b", "ws://h/mqtt").validated().is_err());
    assert!(
        login("alice", "")
            .validated()
            .unwrap_err()
            .contains("server")
    );
}

#[test]
fn turn_settings_become_ice_servers_and_relay_only_needs_turn() {
    let mut form = login("alice", "ws://h/mqtt");
    form.ice_urls = " turn:relay.example:3478, stun:stun.example:3478 ".to_owned();
    form.ice_username = " alice ".to_owned();
    form.ice_credential = "s3cret".to_owned();
    form.relay_only = true;
    let options = form.validated().unwrap();
    assert_eq!(
        options.ice_servers,
        [IceServer {
            urls: vec![
                "turn:relay.example:3478".to_owned(),
                "stun:stun.example:3478".to_owned()
            ],
            username: "alice".to_owned(),
            credential: "s3cret".to_owned(),
        }]
    );
    assert!(options.relay_only);

    form.ice_urls = "stun:stun.example:3478".to_owned();
    assert!(form.validated().unwrap_err().contains("TURN"));
    form.ice_urls = "relay.example:3478".to_owned();
    assert!(
        form.validated()
            .unwrap_err()
            .contains("not a STUN or TURN URL")
    );
}

#[test]
fn adding_a_peer_opens_its_conversation() {
    let mut chat = ChatState::new("alice");
    assert_eq!(chat.add_peer(" bob "), Ok("bob".to_owned()));
    assert_eq!(chat.selected.as_deref(), Some("bob"));
    assert_eq!(chat.peer("bob").unwrap().status, PeerStatus::New);
    assert_eq!(chat.add_peer(""), Err(AddPeerError::Empty));
    assert_eq!(chat.add_peer("alice"), Err(AddPeerError::Yourself));
    assert_eq!(chat.add_peer("bob"), Ok("bob".to_owned()));
    assert_eq!(chat.peers().len(), 1, "adding twice keeps one entry");
}

#[test]
fn a_caller_appears_by_itself() {
    let mut chat = ChatState::new("alice");
    chat.apply(status("carol", PeerStatus::Connecting), T);
    chat.apply(ClientEvent::PeerConnected("carol".to_owned()), T);
    let carol = chat.peer("carol").expect("carol is listed");
    assert_eq!(carol.status, PeerStatus::Connected);
    assert_eq!(carol.tone(), Tone::Good);
}

#[test]
fn messages_to_other_conversations_count_as_unread() {
    let mut chat = ChatState::new("alice");
    chat.add_peer("bob").unwrap();
    chat.apply(message("bob", "hi"), T);
    chat.apply(message("carol", "psst"), T);
    chat.apply(message("carol", "there?"), T);
    assert_eq!(chat.peer("bob").unwrap().unread, 0, "bob's chat is open");
    assert_eq!(chat.peer("carol").unwrap().unread, 2);
    chat.select("carol");
    assert_eq!(chat.peer("carol").unwrap().unread, 0);
}

#[test]
fn the_sidebar_shows_the_latest_activity_first_with_a_preview() {
    let mut chat = ChatState::new("alice");
    chat.add_peer("bob").unwrap();
    chat.add_peer("carol").unwrap();
    chat.apply(message("bob", "newest"), T);
    let names: Vec<_> = chat.peers().iter().map(|p| p.name.clone()).collect();
    assert_eq!(names, ["bob", "carol"]);
    assert_eq!(
        chat.peer("bob").unwrap().preview().as_deref(),
        Some("newest")
    );
    chat.record_sent("bob", &"x".repeat(50), Ok(1), T);
    let preview = chat.peer("bob").unwrap().preview().unwrap();
    assert_eq!(preview, format!("You: {}…", "x".repeat(40)));
    assert_eq!(chat.peer("carol").unwrap().preview(), None);
}

#[test]
fn my_messages_carry_their_delivery_and_acks_make_them_delivered() {
    let mut chat = ChatState::new("alice");
    chat.add_peer("bob").unwrap();
    chat.record_sent("bob", "one", Ok(1), T);
    chat.record_sent("bob", "two", Ok(2), T);
    let refused = Err(ClientError::PeerNotConnected("bob".to_owned()));
    chat.record_sent("bob", "three", refused, T);
    let delivered = |id| ClientEvent::Delivered {
        peer: "bob".to_owned(),
        id,
    };
    chat.apply(delivered(2), T);
    chat.apply(delivered(99), T);
    let messages = &chat.peer("bob").unwrap().messages;
    let deliveries: Vec<_> = messages.iter().map(|m| m.delivery).collect();
    assert_eq!(
        deliveries,
        [
            Some(Delivery::Sent),
            Some(Delivery::Delivered),
            Some(Delivery::Failed),
            None
        ]
    );
    let note = messages.last().unwrap();
    assert_eq!(note.direction, Direction::Note, "the refusal says why");
    assert!(note.text.contains("not connected"));
}

#[test]
fn the_composer_says_why_it_cannot_send() {
    let mut chat = ChatState::new("alice");
    assert!(matches!(chat.composer("bob"), Composer::Disabled(_)));
    chat.add_peer("bob").unwrap();
    assert!(chat.can_call("bob"), "a new peer is called");
    chat.apply(status("bob", PeerStatus::Connecting), T);
    assert!(!chat.can_call("bob"));
    assert_eq!(
        chat.composer("bob"),
        Composer::Disabled("Connecting to bob…".to_owned())
    );
    chat.apply(ClientEvent::PeerConnected("bob".to_owned()), T);
    assert_eq!(chat.composer("bob"), Composer::Ready);
    assert!(!chat.can_call("bob"));
    chat.apply(ended("bob", ChatEnd::PeerLeft), T);
    assert_eq!(
        chat.composer("bob"),
        Composer::Disabled("bob ended the chat. Press Connect to chat again.".to_owned())
    );
    assert!(chat.can_call("bob"));
    assert_eq!(chat.peer("bob").unwrap().tone(), Tone::Bad);
}

#[test]
fn a_chat_being_reconnected_stays_open_for_writing() {
    let mut chat = ChatState::new("alice");
    chat.add_peer("bob").unwrap();
    chat.apply(status("bob", PeerStatus::Connecting), T);
    assert_eq!(
        chat.peer("bob").unwrap().status_label(),
        "connecting",
        "a first connection is not a reconnection"
    );
    chat.apply(ClientEvent::PeerConnected("bob".to_owned()), T);
    // Bob's phone changes networks: the chat moves to a new connection.
    for step in [PeerStatus::Disconnected, PeerStatus::Connecting] {
        chat.apply(status("bob", step), T);
        let bob = chat.peer("bob").unwrap();
        assert_eq!(bob.status_label(), "reconnecting");
        assert_eq!(bob.tone(), Tone::Pending, "amber, not red");
        assert_eq!(
            chat.composer("bob"),
            Composer::Ready,
            "messages wait for it"
        );
        assert!(!chat.can_call("bob"), "nothing to call: the chat goes on");
    }
    chat.apply(ClientEvent::PeerConnected("bob".to_owned()), T);
    assert_eq!(chat.peer("bob").unwrap().status_label(), "connected");
}

#[test]
fn a_chat_that_ends_says_why() {
    for (reason, why) in [
        (ChatEnd::PeerLeft, "bob ended the chat."),
        (ChatEnd::Closed, "You ended the chat with bob."),
        (
            ChatEnd::Unreachable,
            "The chat with bob ended: no way back to bob was found in time.",
        ),
        (ChatEnd::ConnectionLost, "The connection to bob was lost."),
    ] {
        let mut chat = ChatState::new("alice");
        chat.add_peer("bob").unwrap();
        chat.apply(ClientEvent::PeerConnected("bob".to_owned()), T);
        chat.apply(status("bob", PeerStatus::Disconnected), T);
        chat.apply(status("bob", PeerStatus::Failed), T);
        chat.apply(ended("bob", reason), T);
        let bob = chat.peer("bob").unwrap();
        let note = bob.messages.last().unwrap();
        assert_eq!((note.direction, note.text.as_str()), (Direction::Note, why));
        assert_eq!(bob.tone(), Tone::Bad);
        assert!(chat.can_call("bob"));
        assert!(matches!(chat.composer("bob"), Composer::Disabled(text) if text.starts_with(why)));
        // A new chat clears it once it opens.
        chat.apply(status("bob", PeerStatus::New), T);
        chat.apply(ClientEvent::PeerConnected("bob".to_owned()), T);
        assert_eq!(chat.peer("bob").unwrap().ended, None);
    }
}

#[test]
fn status_dots_follow_the_status() {
    assert_eq!(Tone::of(PeerStatus::Connecting), Tone::Pending);
    assert_eq!(Tone::of(PeerStatus::New), Tone::Pending);
    assert_eq!(Tone::of(PeerStatus::Failed), Tone::Bad);
    assert_eq!(Tone::of(PeerStatus::Disconnected), Tone::Bad);
}

#[test]
fn errors_about_a_listed_peer_go_into_its_conversation() {
    let mut chat = ChatState::new("alice");
    chat.add_peer("bob").unwrap();
    chat.apply(
        ClientEvent::Error(ClientError::PeerOffline("bob".to_owned())),
        T,
    );
    let note = chat.peer("bob").unwrap().messages.last().unwrap().clone();
    assert_eq!(note.direction, Direction::Note);
    assert!(note.text.contains("offline"));
    assert!(chat.notices.is_empty());
}

#[test]
fn errors_about_strangers_become_notices_and_add_no_peer() {
    let mut chat = ChatState::new("alice");
    for _ in 0..5 {
        let error = ClientError::PeerTimeout("mallory".to_owned());
        chat.apply(ClientEvent::Error(error), T);
    }
    assert!(
        chat.peer("mallory").is_none(),
        "a stranger's error lists no one"
    );
    assert_eq!(chat.notices.len(), 3, "old notices make room");
    let id = chat.notices[0].id;
    chat.dismiss(id);
    assert_eq!(chat.notices.len(), 2);
}

#[test]
fn presence_heard_before_a_peer_is_added_shows_once_it_is() {
    let mut chat = ChatState::new("alice");
    chat.apply(
        ClientEvent::Presence {
            user: "bob".to_owned(),
            online: true,
        },
        T,
    );
    assert!(chat.peer("bob").is_none(), "presence alone lists no one");
    chat.add_peer("bob").unwrap();
    assert_eq!(chat.peer("bob").unwrap().presence(), "Online");
}

#[test]
fn presence_and_signaling_reach_the_screen() {
    let mut chat = ChatState::new("alice");
    chat.add_peer("bob").unwrap();
    chat.apply(
        ClientEvent::Presence {
            user: "bob".to_owned(),
            online: true,
        },
        T,
    );
    assert_eq!(chat.peer("bob").unwrap().online, Some(true));
    chat.apply(ClientEvent::Signaling(SignalingState::Reconnecting), T);
    assert_eq!(chat.signaling, SignalingState::Reconnecting);
}

#[test]
fn times_print_as_hours_and_minutes() {
    assert_eq!(T.to_string(), "09:05");
}

#[test]
fn the_info_panel_describes_the_route_and_round_trip() {
    let mut chat = ChatState::new("alice");
    chat.add_peer("bob").unwrap();
    let bob = |chat: &ChatState| chat.peer("bob").unwrap().clone();
    assert_eq!(bob(&chat).route(), "Not connected");
    chat.apply(ClientEvent::PeerConnected("bob".to_owned()), T);
    assert_eq!(bob(&chat).route(), "Connected; measuring…");
    assert_eq!(bob(&chat).round_trip(), "—");
    let path = |kind, rtt_ms| ClientEvent::Path {
        peer: "bob".to_owned(),
        path: PeerPath { kind, rtt_ms },
    };
    chat.apply(path(PathKind::Direct, Some(0.42)), T);
    assert_eq!(bob(&chat).route(), "Direct, on the same network");
    assert_eq!(bob(&chat).round_trip(), "0.4 ms");
    chat.apply(path(PathKind::Relayed, Some(48.6)), T);
    assert!(bob(&chat).route().starts_with("Relayed"));
    assert_eq!(bob(&chat).round_trip(), "49 ms");
    chat.apply(ended("bob", ChatEnd::ConnectionLost), T);
    assert_eq!(
        bob(&chat).route(),
        "Not connected",
        "a lost chat forgets its path"
    );
    assert_eq!(bob(&chat).presence(), "Unknown (not announced)");
}

#[test]
fn an_image_i_send_shows_at_once_with_progress_until_acknowledged() {
    let mut chat = ChatState::new("alice");
    chat.add_peer("bob").unwrap();
    let image = Attachment::new("cat.png".to_owned(), "image/png".to_owned(), b"\x89PNG");
    chat.record_file_sent("bob", image, Ok(4), T);
    let last = |chat: &ChatState| chat.peer("bob").unwrap().messages.last().unwrap().clone();
    assert_eq!(last(&chat).progress, Some((0, 4)));
    assert_eq!(
        last(&chat).attachment.unwrap().url.as_str(),
        "data:image/png;base64,iVBORw=="
    );
    assert_eq!(
        chat.peer("bob").unwrap().preview().as_deref(),
        Some("You: Image")
    );
    chat.apply(
        ClientEvent::Transfer {
            peer: "bob".to_owned(),
            id: 4,
            incoming: false,
            done: 2,
            total: 4,
        },
        T,
    );
    assert_eq!(last(&chat).progress, Some((2, 4)));
    chat.apply(
        ClientEvent::Delivered {
            peer: "bob".to_owned(),
            id: 4,
        },
        T,
    );
    assert_eq!(last(&chat).progress, None);
    assert_eq!(last(&chat).delivery, Some(Delivery::Delivered));
}

#[test]
fn a_file_arriving_shows_its_progress_then_itself() {
    let mut chat = ChatState::new("alice");
    let transfer = |done| ClientEvent::Transfer {
        peer: "bob".to_owned(),
        id: 7,
        incoming: true,
        done,
        total: 10,
    };
    chat.apply(transfer(0), T);
    chat.apply(transfer(5), T);
    let bob = chat.peer("bob").expect("a sender appears by itself");
    assert_eq!(bob.messages.len(), 1, "one placeholder, updated");
    assert_eq!(bob.messages[0].progress, Some((5, 10)));
    assert_eq!(bob.preview().as_deref(), Some("Receiving a file…"));
    chat.apply(transfer(10), T);
    chat.apply(
        ClientEvent::File {
            from: "bob".to_owned(),
            id: 7,
            name: "notes.txt".to_owned(),
            mime: "text/plain".to_owned(),
            data: b"0123456789".to_vec(),
        },
        T,
    );
    let bob = chat.peer("bob").unwrap();
    assert_eq!(bob.messages.len(), 1);
    let file = bob.messages[0].attachment.clone().unwrap();
    assert!(!file.is_image());
    assert_eq!(file.size_label(), "10 bytes");
    assert_eq!(bob.messages[0].progress, None);
    assert_eq!(bob.unread, 1);
    assert_eq!(bob.preview().as_deref(), Some("notes.txt"));
}

#[test]
fn only_raster_pictures_are_shown_and_nothing_else_can_render_as_a_page() {
    for mime in [
        "text/html",
        "image/svg+xml",
        "application/xhtml+xml",
        "x;<script>",
    ] {
        let file = Attachment::new("x".to_owned(), mime.to_owned(), b"<b>hi</b>");
        assert!(!file.is_image(), "{mime}");
        assert!(
            file.url
                .as_str()
                .starts_with("data:application/octet-stream;base64,"),
            "{mime}"
        );
    }
    let png = Attachment::new("x.png".to_owned(), "image/png".to_owned(), b"png");
    assert!(png.is_image());
}

#[test]
fn a_restarted_peer_reusing_an_id_cannot_replace_an_old_picture() {
    let mut chat = ChatState::new("alice");
    let file = |data: &[u8]| ClientEvent::File {
        from: "bob".to_owned(),
        id: 1,
        name: "p.png".to_owned(),
        mime: "image/png".to_owned(),
        data: data.to_vec(),
    };
    chat.apply(file(b"old"), T);
    chat.apply(file(b"new"), T);
    let messages = &chat.peer("bob").unwrap().messages;
    assert_eq!(messages.len(), 2, "the second is a new message");
    assert_ne!(messages[0].attachment, messages[1].attachment);
}

#[test]
fn a_chat_that_ends_mid_transfer_stops_its_progress_bars() {
    let mut chat = ChatState::new("alice");
    chat.add_peer("bob").unwrap();
    chat.apply(ClientEvent::PeerConnected("bob".to_owned()), T);
    let picture = Attachment::new("a.png".to_owned(), "image/png".to_owned(), b"png");
    chat.record_file_sent("bob", picture, Ok(3), T);
    chat.apply(
        ClientEvent::Transfer {
            peer: "bob".to_owned(),
            id: 9,
            incoming: true,
            done: 0,
            total: 100,
        },
        T,
    );
    chat.apply(ended("bob", ChatEnd::ConnectionLost), T);
    let messages = &chat.peer("bob").unwrap().messages;
    assert!(messages.iter().all(|m| m.progress.is_none()));
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts[texts.len() - 2..],
        [
            "The file did not arrive: the chat ended.",
            "The connection to bob was lost."
        ]
    );
}

#[test]
fn picked_files_get_a_media_type() {
    assert_eq!(
        media_type(Some("image/webp".to_owned()), "a.bin"),
        "image/webp"
    );
    assert_eq!(media_type(None, "Photo.JPG"), "image/jpeg");
    assert_eq!(media_type(Some(String::new()), "a.png"), "image/png");
    assert_eq!(media_type(None, "README"), "application/octet-stream");
    let big = Attachment::new(
        "b".to_owned(),
        "x/y".to_owned(),
        &vec![0; 3 * 1024 * 1024 / 2],
    );
    assert_eq!(big.size_label(), "1.5 MB");
}

#[test]
fn a_conversation_keeps_its_newest_messages_within_a_bound() {
    let mut chat = ChatState::new("alice");
    for i in 0..MAX_MESSAGES_PER_PEER + 5 {
        chat.apply(message("bob", &format!("#{i}")), T);
    }
    let messages = &chat.peer("bob").unwrap().messages;
    assert_eq!(messages.len(), MAX_MESSAGES_PER_PEER);
    assert_eq!(messages[0].text, "#5");
}

fn kept(outgoing: bool, text: &str, id: u64, delivered: bool) -> StoredMessage {
    StoredMessage {
        peer: "bob".into(),
        outgoing,
        text: text.into(),
        at_ms: 0,
        id: Some(id),
        delivered,
    }
}

#[test]
fn kept_history_opens_a_new_conversation_once_and_an_unsent_message_turns_delivered() {
    let mut state = ChatState::new("alice");
    state.add_peer("bob").unwrap();
    assert!(state.wants_history("bob"));
    let history = vec![
        kept(false, "hi alice", 4, false),
        kept(true, "hi bob", 1, true),
        kept(true, "still on its way", 2, false),
    ];
    state.restore_history("bob", history.clone(), |_| T);
    assert!(!state.wants_history("bob"));
    let bob = state.peer("bob").unwrap();
    let texts: Vec<_> = bob.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hi alice", "hi bob", "still on its way"]);
    assert_eq!(bob.messages[0].direction, Direction::Theirs);
    assert_eq!(bob.messages[1].delivery, Some(Delivery::Delivered));
    assert_eq!(bob.messages[2].delivery, Some(Delivery::Sent));
    // The restarted client delivers its outbox: the ack reaches the restored message.
    state.apply(
        ClientEvent::Delivered {
            peer: "bob".into(),
            id: 2,
        },
        T,
    );
    let last = state.peer("bob").unwrap().messages.last().unwrap();
    assert_eq!(last.delivery, Some(Delivery::Delivered));
    // Asked again, nothing doubles.
    state.restore_history("bob", history, |_| T);
    assert_eq!(state.peer("bob").unwrap().messages.len(), 3);
}

#[test]
fn kept_history_never_doubles_what_this_run_already_shows() {
    let mut state = ChatState::new("alice");
    state.apply(message("bob", "live"), T);
    state.restore_history("bob", vec![kept(false, "live", 1, false)], |_| T);
    assert_eq!(state.peer("bob").unwrap().messages.len(), 1);
}

// ---- Attention: unread counts, alerts, the window title ----------------------------------

fn alerted(state: &mut ChatState) -> Vec<(String, String)> {
    (state.take_alerts().into_iter())
        .map(|a| (a.title, a.body))
        .collect()
}

#[test]
fn a_message_for_a_chat_not_in_view_is_unread_and_alerts() {
    let mut state = ChatState::new("me");
    state.add_peer("bob").unwrap();
    state.add_peer("alice").unwrap();
    state.select("bob");
    state.apply(message("alice", "hi"), T);
    state.apply(message("bob", "in view"), T);
    assert_eq!(alerted(&mut state), [("alice".to_owned(), "hi".to_owned())]);
    assert_eq!(state.peer("alice").unwrap().unread, 1);
    assert_eq!(state.peer("bob").unwrap().unread, 0);
    assert_eq!(state.window_title(), "(1) peerchat");
    state.select("alice");
    assert_eq!(state.window_title(), "peerchat");
}

#[test]
fn while_the_page_is_hidden_even_the_open_chat_alerts_until_it_is_seen() {
    let mut state = ChatState::new("me");
    state.add_peer("bob").unwrap();
    state.select("bob");
    state.set_hidden(true);
    state.apply(message("bob", "are you there?"), T);
    state.apply(message("bob", "hello?"), T);
    assert_eq!(alerted(&mut state).len(), 2);
    assert_eq!(state.window_title(), "(2) peerchat");
    state.set_hidden(false);
    assert_eq!(state.window_title(), "peerchat");
    assert!(state.take_alerts().is_empty(), "taken once");
}

#[test]
fn a_room_message_not_in_view_alerts_under_the_room_and_its_author() {
    let mut state = in_room();
    state.add_peer("bob").unwrap();
    state.select("bob");
    state.apply(room_message("carol", 1, 1, "page 40?"), T);
    let alerts = state.take_alerts();
    let [alert] = alerts.as_slice() else {
        panic!("one alert: {alerts:?}")
    };
    assert_eq!(alert.title, "carol in book club");
    assert_eq!(alert.body, "page 40?");
    // Its own notification, apart from a 1:1 chat's.
    assert_eq!(alert.chat, format!("#{}", room_id()));
    assert_eq!(state.window_title(), "(1) peerchat");

    // In view: read at once, no alert; hidden again, even the open room alerts.
    state.select_room(&room_id());
    state.apply(room_message("bob", 1, 2, "yes"), T);
    assert!(state.take_alerts().is_empty());
    state.set_hidden(true);
    state.apply(room_message("bob", 2, 3, "hello?"), T);
    let expected = [("bob in book club".to_owned(), "hello?".to_owned())];
    assert_eq!(alerted(&mut state), expected);
    assert_eq!(state.window_title(), "(1) peerchat");
    // A message shown already (passed on again by another member) alerts no more.
    state.apply(room_message("bob", 2, 3, "hello?"), T);
    assert!(state.take_alerts().is_empty());
    state.set_hidden(false);
    assert_eq!(state.window_title(), "peerchat");
}

#[test]
fn alerts_are_bounded_and_short() {
    let mut state = ChatState::new("me");
    let long = "x".repeat(1000);
    for _ in 0..20 {
        state.apply(message("flood", &long), T);
    }
    let alerts = alerted(&mut state);
    assert_eq!(alerts.len(), 8);
    assert!(alerts.iter().all(|(_, body)| body.chars().count() == 140));
    assert_eq!(state.peer("flood").unwrap().unread, 20);
}

#[test]
fn nobody_is_called_while_offline() {
    let mut chat = ChatState::new("alice");
    chat.apply(ClientEvent::Signaling(SignalingState::Reconnecting), T);
    chat.add_peer("bob").unwrap();
    assert!(!chat.can_call("bob"), "the call would go nowhere");
    chat.apply(ClientEvent::Registered, T);
    assert!(chat.can_call("bob"));
}

#[test]
fn a_peer_without_an_identity_key_is_shown_as_unsigned_and_one_with_a_key_as_unverified() {
    let mut chat = ChatState::new("alice");
    chat.add_peer("original").unwrap();
    chat.apply(status("original", PeerStatus::Connected), T);
    assert!(
        (chat.peer("original").unwrap().identity_label()).starts_with("Unsigned: no identity key")
    );
    chat.add_peer("bob").unwrap();
    chat.apply(
        ClientEvent::PeerIdentity {
            peer: "bob".into(),
            key: "k".into(),
            safety_number: Some("12345".into()),
            verified: false,
        },
        T,
    );
    assert!((chat.peer("bob").unwrap().identity_label()).starts_with("Not verified yet"));
}

fn room_id() -> RoomId {
    RoomId::from_random([7; 16])
}

fn room_members(members: &[&str], joined: bool) -> ClientEvent {
    ClientEvent::RoomMembers {
        room: room_id(),
        name: "book club".to_owned(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        joined,
    }
}

fn room_message(author: &str, seq: u64, lamport: u64, text: &str) -> ClientEvent {
    ClientEvent::RoomMessage {
        room: room_id(),
        author: author.to_owned(),
        seq,
        lamport,
        text: text.to_owned(),
        picture: None,
    }
}

/// The client's report on alice's message `seq`: who holds it, who not yet.
fn room_delivery(seq: u64, have: &[&str], lack: &[&str]) -> ClientEvent {
    let names = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
    ClientEvent::RoomDelivery {
        room: room_id(),
        seq,
        holders: Holders {
            have: names(have),
            lack: names(lack),
        },
    }
}

/// Alice's chat state with the book club room, bob and carol in it.
fn in_room() -> ChatState {
    let mut chat = ChatState::new("alice");
    chat.apply(room_members(&["alice", "bob", "carol"], true), T);
    chat
}

fn room_texts(chat: &ChatState) -> Vec<String> {
    let room = chat.room(&room_id()).unwrap();
    room.messages().iter().map(|m| m.text.clone()).collect()
}

#[test]
fn room_messages_follow_lamport_time_then_author_whatever_the_arrival_order() {
    let arrivals = [
        ("carol", 1, 2, "c2"),
        ("bob", 1, 1, "b1"),
        ("carol", 2, 3, "c3"),
        ("dan", 1, 2, "d2"),
        ("bob", 2, 3, "b3"),
    ];
    let expected = ["b1", "c2", "d2", "b3", "c3"];
    // Every rotation of the arrivals ends in the same order.
    for start in 0..arrivals.len() {
        let mut chat = in_room();
        for (author, seq, lamport, text) in arrivals.iter().cycle().skip(start).take(5) {
            chat.apply(room_message(author, *seq, *lamport, text), T);
        }
        assert_eq!(room_texts(&chat), expected, "arrivals from {start}");
    }
}

#[test]
fn a_room_picture_shows_as_arriving_then_whole_and_mine_at_once() {
    let mut chat = in_room();
    let data = b"not really a png".to_vec();
    let picture = peerchat_core::room::Picture::of("cat.png", "image/png", &data).unwrap();
    chat.apply(
        ClientEvent::RoomMessage {
            room: room_id(),
            author: "bob".to_owned(),
            seq: 1,
            lamport: 1,
            text: String::new(),
            picture: Some(picture.clone()),
        },
        T,
    );
    let bubble = |chat: &ChatState| chat.room(&room_id()).unwrap().messages()[0].bubble();
    assert_eq!(bubble(&chat).progress, Some((0, data.len() as u64)));
    assert!(bubble(&chat).attachment.is_none());
    let view = chat.room(&room_id()).unwrap();
    assert_eq!(view.preview().as_deref(), Some("bob: a picture"));
    chat.apply(
        ClientEvent::RoomPicture {
            room: room_id(),
            author: "bob".to_owned(),
            seq: 1,
            picture,
            data: data.clone(),
        },
        T,
    );
    let shown = bubble(&chat);
    assert_eq!(shown.progress, None);
    let attachment = shown.attachment.expect("the picture is shown");
    assert!(attachment.is_image() && attachment.name == "cat.png");
    let view = chat.room(&room_id()).unwrap();
    assert_eq!(view.preview().as_deref(), Some("bob: cat.png"));

    let mine = Attachment::new("dog.png".into(), "image/png".into(), &data);
    chat.record_room_picture_sent(&room_id(), mine, Ok(1), T);
    let last = chat
        .room(&room_id())
        .unwrap()
        .messages()
        .last()
        .unwrap()
        .bubble();
    assert_eq!(last.attachment.map(|a| a.name), Some("dog.png".to_owned()));
    assert_eq!(last.delivery, Some(Delivery::Sent));
}

#[test]
fn a_room_message_arriving_twice_is_shown_once() {
    let mut chat = in_room();
    chat.apply(room_message("bob", 1, 1, "hello"), T);
    chat.apply(room_message("bob", 1, 1, "hello"), T);
    chat.apply(room_message("bob", 2, 2, "again"), T);
    assert_eq!(room_texts(&chat), ["hello", "again"]);
    assert_eq!(chat.room(&room_id()).unwrap().unread, 2);
}

#[test]
fn room_messages_are_unread_until_the_room_is_open_and_in_view() {
    let mut chat = ChatState::new("alice");
    // Opened as it is created, before the client lists it.
    chat.select_room(&room_id());
    assert!(chat.selected_room().is_none());
    chat.apply(room_members(&["alice", "bob", "carol"], true), T);
    assert_eq!(chat.selected_room().unwrap().name, "book club");
    chat.deselect();
    chat.apply(room_message("bob", 1, 1, "one"), T);
    chat.apply(room_message("carol", 1, 2, "two"), T);
    assert_eq!(chat.room(&room_id()).unwrap().unread, 2);
    assert_eq!(chat.window_title(), "(2) peerchat");

    chat.select_room(&room_id());
    assert_eq!(chat.room(&room_id()).unwrap().unread, 0);
    chat.apply(room_message("bob", 2, 3, "seen"), T);
    assert_eq!(chat.room(&room_id()).unwrap().unread, 0);

    chat.set_hidden(true);
    chat.apply(room_message("bob", 3, 4, "while away"), T);
    assert_eq!(chat.room(&room_id()).unwrap().unread, 1);
    chat.set_hidden(false);
    assert_eq!(chat.room(&room_id()).unwrap().unread, 0);

    // Opening a peer's chat closes the room: its messages count again.
    chat.add_peer("bob").unwrap();
    assert_eq!(chat.selected_room, None);
    chat.apply(room_message("carol", 2, 5, "later"), T);
    assert_eq!(chat.room(&room_id()).unwrap().unread, 1);
}

#[test]
fn my_room_message_shows_at_once_last_and_turns_delivered_when_every_member_holds_it() {
    let mut chat = in_room();
    chat.apply(room_message("bob", 1, 4, "before"), T);
    chat.record_room_sent(&room_id(), "mine", Ok(1), T);
    assert_eq!(room_texts(&chat), ["before", "mine"]);
    let mine = |chat: &ChatState| chat.room(&room_id()).unwrap().messages()[1].clone();
    assert!(mine(&chat).mine);
    assert_eq!(mine(&chat).delivery(), Some(Delivery::Sent));
    assert_eq!(mine(&chat).bubble().direction, Direction::Mine);

    chat.apply(room_delivery(1, &["alice", "bob"], &["carol"]), T);
    assert_eq!(mine(&chat).delivery(), Some(Delivery::Sent));
    chat.apply(room_delivery(1, &["alice", "bob", "carol"], &[]), T);
    assert_eq!(mine(&chat).delivery(), Some(Delivery::Delivered));
    assert_eq!(mine(&chat).bubble().delivery, Some(Delivery::Delivered));

    // A message written after mine by someone who had seen it goes after it; others' are
    // never marked.
    chat.apply(room_message("carol", 1, 6, "after"), T);
    assert_eq!(room_texts(&chat), ["before", "mine", "after"]);
    assert_eq!(
        chat.room(&room_id()).unwrap().messages()[2].delivery(),
        None
    );
    // Mine is not unread.
    assert_eq!(chat.room(&room_id()).unwrap().unread, 2);
}

#[test]
fn my_room_message_says_who_has_it_and_who_not_yet_as_reports_come() {
    let mut chat = in_room();
    chat.apply(room_message("bob", 1, 4, "theirs"), T);
    chat.record_room_sent(&room_id(), "mine", Ok(1), T);
    let words = |chat: &ChatState| {
        let room = chat.room(&room_id()).unwrap();
        let [theirs, mine] = room.messages() else {
            panic!("two messages")
        };
        assert_eq!(room.holders_in_words(theirs, "alice"), None, "not mine");
        room.holders_in_words(mine, "alice").unwrap()
    };
    // Nobody reported yet: every other member is waited for; I am never listed.
    assert_eq!(words(&chat), "Not yet: bob and carol");
    chat.apply(room_delivery(1, &["alice", "bob"], &["carol"]), T);
    assert_eq!(words(&chat), "Has it: bob · Not yet: carol");
    // Dan joins: the client reports him lacking it.
    chat.apply(room_delivery(1, &["alice", "bob"], &["carol", "dan"]), T);
    assert_eq!(words(&chat), "Has it: bob · Not yet: carol and dan");
    chat.apply(room_delivery(1, &["alice", "bob", "carol", "dan"], &[]), T);
    assert_eq!(words(&chat), "Has it: bob, carol and dan");

    let mut alone = ChatState::new("alice");
    alone.apply(room_members(&["alice"], true), T);
    alone.record_room_sent(&room_id(), "echo", Ok(1), T);
    let room = alone.room(&room_id()).unwrap();
    let words = room.holders_in_words(&room.messages()[0], "alice");
    assert_eq!(words.as_deref(), Some("Nobody else is in the room."));
}

#[test]
fn a_room_message_the_client_refuses_becomes_a_notice() {
    let mut chat = in_room();
    let refused = Err(ClientError::UnknownRoom(room_id().to_string()));
    chat.record_room_sent(&room_id(), "lost", refused, T);
    assert!(room_texts(&chat).is_empty());
    assert_eq!(chat.notices.len(), 1);
}

#[test]
fn a_withdrawn_room_message_disappears() {
    let mut chat = in_room();
    chat.apply(room_message("bob", 1, 1, "kept"), T);
    chat.apply(room_message("carol", 1, 2, "unmade"), T);
    chat.apply(
        ClientEvent::RoomWithdrawn {
            room: room_id(),
            author: "carol".to_owned(),
            seq: 1,
        },
        T,
    );
    assert_eq!(room_texts(&chat), ["kept"]);
}

#[test]
fn members_leaving_and_my_removal_are_shown_and_close_the_composer() {
    let mut chat = in_room();
    fn chat_room(chat: &ChatState) -> RoomView {
        chat.room(&room_id()).unwrap().clone()
    }
    assert_eq!(chat_room(&chat).change, None);
    assert_eq!(chat.room_composer(&room_id()), Composer::Ready);

    chat.apply(room_members(&["alice", "bob", "carol", "dan"], true), T);
    assert_eq!(chat_room(&chat).change.as_deref(), Some("dan joined."));
    chat.apply(room_members(&["alice", "bob"], true), T);
    assert_eq!(
        chat_room(&chat).change.as_deref(),
        Some("carol and dan left or were removed.")
    );
    assert_eq!(chat_room(&chat).members, ["alice", "bob"]);

    chat.apply(room_members(&["bob"], false), T);
    let room = chat_room(&chat);
    assert!(!room.joined);
    assert_eq!(
        room.change.as_deref(),
        Some("You are no longer in this room.")
    );
    assert!(matches!(
        chat.room_composer(&room_id()),
        Composer::Disabled(why) if why.contains("no longer")
    ));
}

#[test]
fn room_members_show_how_my_chat_with_each_runs() {
    let mut chat = in_room();
    chat.apply(status("bob", PeerStatus::Connected), T);
    let members = chat.room_members(&room_id());
    assert_eq!(
        members,
        [
            ("alice".to_owned(), Tone::Good, "you"),
            ("bob".to_owned(), Tone::Good, "connected"),
            ("carol".to_owned(), Tone::Pending, "not chatting yet"),
        ]
    );
}

#[test]
fn a_refused_room_frame_is_a_notice() {
    let mut chat = in_room();
    chat.apply(
        ClientEvent::RoomRefused {
            room: room_id(),
            from: "mallory".to_owned(),
            error: RoomError::NotAMember {
                name: "mallory".to_owned(),
                version: 1,
            },
        },
        T,
    );
    assert!(chat.notices[0].text.contains("mallory"));
}
