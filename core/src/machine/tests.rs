//! Deterministic tests of the client machine: no network, no clock, no threads.

use super::*;
use crate::event::{ChatEnd, SignalingState};
use crate::protocol::{ChatFrame, MAX_CHAT_MESSAGE_BYTES, Presence, encode, presence_topic};

pub(super) const T0: u64 = 1_000;

/// A machine already online on a plain broker.
pub(super) fn online(name: &str) -> ClientMachine {
    let mut m = ClientMachine::new(name, &format!("session-{name}")).unwrap();
    m.handle_signaling(SignalingInput::Connected, T0);
    m.handle_signaling(SignalingInput::Subscribed, T0);
    m.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    assert!(m.is_online());
    drain(&mut m);
    m
}

/// What the machine asked for and told, leaving out store writes (see `durable_tests`) and
/// the presence records of contacts it (un)subscribes (see `presence_tests`).
pub(super) fn drain(m: &mut ClientMachine) -> (Vec<Action>, Vec<ClientEvent>) {
    let (actions, events, _) = drain_stored(m);
    let actions = actions
        .into_iter()
        .filter(|a| !is_contact_watch(m.username(), a))
        .collect();
    (actions, events)
}

/// A subscription change for a contact's presence record (not our own).
pub(super) fn is_contact_watch(me: &str, action: &Action) -> bool {
    match action {
        Action::Subscribe { topic, .. } | Action::Unsubscribe { topic } => {
            protocol::user_of_presence_topic(topic).is_some_and(|user| user != me)
        }
        _ => false,
    }
}

/// Actions, events and, apart, the store writes among the actions.
pub(super) fn drain_stored(m: &mut ClientMachine) -> (Vec<Action>, Vec<ClientEvent>, Vec<StoreOp>) {
    let mut actions = Vec::new();
    let mut stored = Vec::new();
    while let Some(a) = m.poll_action() {
        match a {
            Action::Store(op) => stored.push(op),
            other => actions.push(other),
        }
    }
    let mut events = Vec::new();
    while let Some(e) = m.poll_event() {
        events.push(e);
    }
    (actions, events, stored)
}

pub(super) fn deliver(m: &mut ClientMachine, message: &SignalMessage) {
    deliver_at(m, message, T0);
}

/// Hands `message` to `m` from the broker at time `now`.
pub(super) fn deliver_at(m: &mut ClientMachine, message: &SignalMessage, now: u64) {
    let topic = incoming_topic(m.username());
    m.handle_signaling(
        SignalingInput::Message {
            topic,
            payload: encode(message),
        },
        now,
    );
}

/// Hands every publish addressed to `to` over to it, in order; returns the other actions.
pub(super) fn relay(actions: Vec<Action>, to: &mut ClientMachine) -> Vec<Action> {
    let mut rest = Vec::new();
    for action in actions {
        match action {
            Action::Publish { topic, payload, .. } if topic == incoming_topic(to.username()) => {
                to.handle_signaling(SignalingInput::Message { topic, payload }, T0)
            }
            other => rest.push(other),
        }
    }
    rest
}

pub(super) fn candidate(n: u8, ufrag: Option<&str>) -> IceCandidate {
    IceCandidate {
        candidate: format!(
            "candidate:{n} 1 udp 2122260223 127.0.0.1 {} typ host",
            40000 + n as u16
        ),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: ufrag.map(str::to_owned),
    }
}

pub(super) fn sdp(ufrag: &str) -> String {
    format!("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:p\r\n")
}

pub(super) fn conn_of(actions: &[Action]) -> ConnId {
    actions
        .iter()
        .find_map(|a| match a {
            Action::StartOffer { conn, .. } | Action::AcceptOffer { conn, .. } => Some(*conn),
            _ => None,
        })
        .expect("a connection was created")
}

/// Why the chat with `peer` ended, if `events` say it did.
pub(super) fn ended_why(events: &[ClientEvent], peer: &str) -> Option<ChatEnd> {
    events.iter().find_map(|e| match e {
        ClientEvent::PeerDisconnected { peer: p, reason } if p == peer => Some(*reason),
        _ => None,
    })
}

pub(super) fn statuses(events: &[ClientEvent], peer: &str) -> Vec<PeerStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Status { peer: p, status } if p == peer => Some(*status),
            _ => None,
        })
        .collect()
}

/// Alice offers to Bob and both channels open; returns (alice conn, bob conn).
pub(super) fn connected_pair(
    alice: &mut ClientMachine,
    bob: &mut ClientMachine,
) -> (ConnId, ConnId) {
    let peer = bob.username().to_owned();
    alice.connect_to_peer(&peer, T0).unwrap();
    let (actions, _) = drain(alice);
    let a_conn = conn_of(&actions);
    let b_conn = answer_call(alice, a_conn, bob);
    (a_conn, b_conn)
}

/// Carries Alice's call on `a_conn` (her `StartOffer`) to Bob, who answers, and opens both
/// channels; returns Bob's conn.
pub(super) fn answer_call(
    alice: &mut ClientMachine,
    a_conn: ConnId,
    bob: &mut ClientMachine,
) -> ConnId {
    alice.handle_transport(a_conn, TransportEvent::LocalDescription(sdp("aaaa")), T0);
    let (actions, _) = drain(alice);
    relay(actions, bob);
    let (actions, _) = drain(bob);
    let b_conn = conn_of(&actions);
    bob.handle_transport(b_conn, TransportEvent::LocalDescription(sdp("bbbb")), T0);
    let (actions, _) = drain(bob);
    relay(actions, alice);
    alice.handle_transport(a_conn, TransportEvent::ChannelOpen, T0);
    bob.handle_transport(b_conn, TransportEvent::ChannelOpen, T0);
    // Alice's first frame tells Bob her end of the channel is open.
    carry(chat_frames(drain(alice).0), bob, b_conn);
    drain(bob);
    b_conn
}

// ---- Registration ----------------------------------------------------------------------

#[test]
fn joining_subscribes_then_registers() {
    let mut m = ClientMachine::new("alice", "s1").unwrap();
    m.handle_signaling(SignalingInput::Connected, T0);
    let (actions, events) = drain(&mut m);
    assert!(events.is_empty());
    assert_eq!(
        actions,
        [
            Action::Subscribe {
                topic: "alice/incoming".into(),
                delivery: Delivery::AtMostOnce,
            },
            Action::Subscribe {
                topic: presence_topic("alice"),
                delivery: Delivery::AtLeastOnce,
            },
        ]
    );
    // The register goes once the subscriptions are acknowledged; without a challenge (a
    // plain broker, the original server) it carries no proof.
    m.handle_signaling(SignalingInput::Subscribed, T0);
    let (actions, _) = drain(&mut m);
    let [
        Action::Publish { topic, payload, .. },
        Action::Publish {
            topic: claimed_on,
            payload: claim,
            ..
        },
    ] = &actions[..]
    else {
        panic!("register and claim expected, got {actions:?}");
    };
    assert_eq!(topic, "system/register");
    assert!(matches!(
        protocol::decode(payload),
        Ok(SignalMessage::Register { username, proof: None, .. }) if username == "alice"
    ));
    // Not challenged, so perhaps a plain broker: a live holder is asked to speak up.
    assert_eq!(claimed_on, "alice/incoming");
    assert!(matches!(
        protocol::decode(claim),
        Ok(SignalMessage::NameClaim { session, .. }) if session == "s1"
    ));
    // Acknowledgements of later subscriptions do not register again.
    m.handle_signaling(SignalingInput::Subscribed, T0);
    assert!(drain(&mut m).0.is_empty());
}

/// Joins `m` to peerchat-server's broker: connected, challenged with `nonce` (the server
/// challenges before the SUBACK), then subscribed.
fn challenged_then_subscribed(m: &mut ClientMachine, nonce: &str) {
    m.handle_signaling(SignalingInput::Connected, T0);
    deliver(
        m,
        &SignalMessage::RegisterChallenge {
            from: "server".into(),
            nonce: nonce.into(),
        },
    );
    m.handle_signaling(SignalingInput::Subscribed, T0);
}

#[test]
fn a_challenged_register_carries_a_proof_of_the_identity_key() {
    let identity = crate::identity::Identity::from_seed([5; 32]);
    let mut m = ClientMachine::new("alice", "s1").unwrap();
    m.set_identity(identity.clone());
    challenged_then_subscribed(&mut m, "fresh");
    let (actions, _) = drain(&mut m);
    let register = actions
        .iter()
        .find_map(|a| match a {
            Action::Publish { topic, payload, .. } if topic == "system/register" => {
                protocol::decode(payload).ok()
            }
            _ => None,
        })
        .expect("a register");
    let SignalMessage::Register {
        proof: Some(proof), ..
    } = register
    else {
        panic!("no proof in {register:?}");
    };
    assert_eq!(proof.nonce, "fresh");
    assert_eq!(proof.key, identity.public().to_text());
    let signed = protocol::register_proof_bytes("alice", "fresh", "s1");
    assert!(identity.public().verifies(&signed, &proof.sig));
}

#[test]
fn plain_broker_goes_online_after_presence_grace() {
    let mut m = ClientMachine::new("alice", "s1").unwrap();
    m.handle_signaling(SignalingInput::Connected, T0);
    m.handle_signaling(SignalingInput::Subscribed, T0 + 5);
    // docs/PROTOCOL.md: "300 ms after every SUBACK, nothing of the above → online".
    assert_eq!(m.poll_timeout(), Some(T0 + 5 + 300));
    m.handle_timeout(T0 + 100);
    assert!(!m.is_online());
    m.handle_timeout(T0 + 5 + 300);
    let (actions, events) = drain(&mut m);
    assert_eq!(events, [ClientEvent::Registered]);
    assert!(actions.iter().any(|a| matches!(a,
        Action::Publish { topic, retain: true, .. } if *topic == presence_topic("alice"))));
}

#[test]
fn register_ack_success_goes_online_at_once() {
    let mut m = ClientMachine::new("alice", "s1").unwrap();
    challenged_then_subscribed(&mut m, "n");
    deliver(
        &mut m,
        &SignalMessage::RegisterAck {
            from: "server".into(),
            success: true,
            message: "Registration successful".into(),
            reason: None,
        },
    );
    assert!(m.is_online());
    assert_eq!(drain(&mut m).1, [ClientEvent::Registered]);
}

/// peerchat-server decides a name itself, and a cluster's registry may take seconds to:
/// silence past a plain broker's grace is not consent. Everyone asking for one name at
/// once would otherwise think they had it.
#[test]
fn a_challenged_client_waits_for_the_servers_answer_past_the_grace() {
    let mut m = ClientMachine::new("alice", "s1").unwrap();
    challenged_then_subscribed(&mut m, "n");
    drain(&mut m);
    m.handle_timeout(T0 + 5 * registration::PRESENCE_GRACE_MS);
    assert!(!m.is_online());
    assert!(drain(&mut m).1.is_empty());
    deliver(&mut m, &ack(false));
    assert_eq!(
        drain(&mut m).1,
        [ClientEvent::RegistrationRefused(ClientError::NameTaken(
            "alice".into()
        ))]
    );
}

#[test]
fn refused_register_ack_means_name_taken() {
    let mut m = ClientMachine::new("alice", "s1").unwrap();
    m.handle_signaling(SignalingInput::Connected, T0);
    m.handle_signaling(SignalingInput::Subscribed, T0);
    drain(&mut m);
    deliver(
        &mut m,
        &SignalMessage::RegisterAck {
            from: "server".into(),
            success: false,
            message: "Username is already taken".into(),
            reason: None,
        },
    );
    let (actions, events) = drain(&mut m);
    assert_eq!(
        events,
        [ClientEvent::RegistrationRefused(ClientError::NameTaken(
            "alice".into()
        ))]
    );
    assert_eq!(actions, [Action::CloseSignaling]);
    assert!(!m.is_online());
}

#[test]
fn another_sessions_presence_means_name_taken_on_plain_brokers() {
    let mut m = ClientMachine::new("alice", "mine").unwrap();
    m.handle_signaling(SignalingInput::Connected, T0);
    m.handle_signaling(SignalingInput::Subscribed, T0);
    let record = SignalMessage::Presence(Presence {
        from: "alice".into(),
        session: "theirs".into(),
        online: true,
        since: None,
    });
    m.handle_signaling(
        SignalingInput::Message {
            topic: presence_topic("alice"),
            payload: encode(&record),
        },
        T0 + 1,
    );
    let (_, events) = drain(&mut m);
    assert_eq!(
        events,
        [ClientEvent::RegistrationRefused(ClientError::NameTaken(
            "alice".into()
        ))]
    );
    m.handle_timeout(T0 + 10_000);
    assert!(!m.is_online(), "a refused client never goes online");
}

#[test]
fn an_offline_record_of_our_name_does_not_block_joining() {
    let mut m = ClientMachine::new("alice", "mine").unwrap();
    m.handle_signaling(SignalingInput::Connected, T0);
    m.handle_signaling(SignalingInput::Subscribed, T0);
    let record = SignalMessage::Presence(Presence {
        from: "alice".into(),
        session: "old".into(),
        online: false,
        since: None,
    });
    m.handle_signaling(
        SignalingInput::Message {
            topic: presence_topic("alice"),
            payload: encode(&record),
        },
        T0,
    );
    m.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    assert!(m.is_online());
}

#[test]
fn silent_broker_times_out_registration() {
    let mut m = ClientMachine::new("alice", "s1").unwrap();
    m.handle_signaling(SignalingInput::Connected, T0);
    drain(&mut m);
    // docs/PROTOCOL.md: "10 s without SUBACK or ack → registration timeout".
    m.handle_timeout(T0 + 9_999);
    assert_eq!(drain(&mut m), (vec![], vec![]), "not before 10 s");
    m.handle_timeout(T0 + 10_000);
    let (actions, events) = drain(&mut m);
    assert_eq!(
        events,
        [ClientEvent::RegistrationRefused(
            ClientError::RegistrationTimeout
        )]
    );
    assert_eq!(actions, [Action::CloseSignaling]);
}

#[test]
fn reconnect_resubscribes_reregisters_and_keeps_chats() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    connected_pair(&mut alice, &mut bob);
    alice.handle_signaling(SignalingInput::Lost, T0);
    assert_eq!(
        drain(&mut alice).1,
        [ClientEvent::Signaling(SignalingState::Reconnecting)]
    );
    alice.handle_signaling(SignalingInput::Connected, T0 + 500);
    let (mut actions, events) = drain(&mut alice);
    assert!(
        events.is_empty(),
        "not online again before the name is: {events:?}"
    );
    // On a plain broker (nothing answers registers) the subscriptions say it.
    alice.handle_signaling(SignalingInput::Subscribed, T0 + 501);
    let (more, events) = drain(&mut alice);
    actions.extend(more);
    assert_eq!(events, [ClientEvent::Signaling(SignalingState::Online)]);
    let topics: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Subscribe { topic, .. } | Action::Publish { topic, .. } => Some(topic.as_str()),
            _ => None,
        })
        .collect();
    assert!(topics.contains(&"alice/incoming"));
    assert!(topics.contains(&"system/register"));
    assert!(topics.contains(&presence_topic("alice").as_str()));
    assert_eq!(alice.peer_status("bob"), Some(PeerStatus::Connected));
    assert!(alice.send_message("bob", "still here").is_ok());
}

#[test]
fn a_stale_offline_record_of_ours_is_corrected() {
    let mut alice = online("alice");
    let stale = SignalMessage::Presence(Presence {
        from: "alice".into(),
        session: "session-alice".into(),
        online: false,
        since: None,
    });
    alice.handle_signaling(
        SignalingInput::Message {
            topic: presence_topic("alice"),
            payload: encode(&stale),
        },
        T0,
    );
    let (actions, _) = drain(&mut alice);
    assert!(actions.iter().any(|a| matches!(a,
        Action::Publish { topic, payload, retain: true, .. }
            if *topic == presence_topic("alice")
            && matches!(protocol::decode(payload), Ok(SignalMessage::Presence(p)) if p.online))));
}

// ---- Connecting to peers ---------------------------------------------------------------

#[test]
fn happy_path_offerer_and_answerer() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    alice.connect_to_peer("bob", T0).unwrap();
    let (actions, events) = drain(&mut alice);
    assert_eq!(
        statuses(&events, "bob"),
        [PeerStatus::New, PeerStatus::Connecting]
    );
    let a_conn = conn_of(&actions);
    assert_eq!(
        actions,
        [Action::StartOffer {
            peer: "bob".into(),
            conn: a_conn
        }]
    );

    // A candidate gathered before the offer is published waits for it.
    alice.handle_transport(
        a_conn,
        TransportEvent::LocalCandidate(candidate(1, None)),
        T0,
    );
    assert!(drain(&mut alice).0.is_empty());
    alice.handle_transport(a_conn, TransportEvent::LocalDescription(sdp("aaaa")), T0);
    let (actions, _) = drain(&mut alice);
    assert_eq!(actions.len(), 2, "offer, then the candidate");
    let Action::Publish { payload, .. } = &actions[0] else {
        panic!()
    };
    assert!(matches!(
        protocol::decode(payload),
        Ok(SignalMessage::SignalOffer {
            peerchat: Some(_),
            ..
        })
    ));
    assert!(relay(actions, &mut bob).is_empty());

    let (actions, events) = drain(&mut bob);
    assert_eq!(
        statuses(&events, "alice"),
        [PeerStatus::New, PeerStatus::Connecting]
    );
    let b_conn = conn_of(&actions);
    assert_eq!(
        actions,
        [
            Action::AcceptOffer {
                peer: "alice".into(),
                conn: b_conn,
                sdp: sdp("aaaa")
            },
            Action::AddCandidate {
                conn: b_conn,
                candidate: candidate(1, None)
            },
        ]
    );
    bob.handle_transport(b_conn, TransportEvent::LocalDescription(sdp("bbbb")), T0);
    bob.handle_transport(
        b_conn,
        TransportEvent::LocalCandidate(candidate(2, None)),
        T0,
    );
    let (actions, _) = drain(&mut bob);
    relay(actions, &mut alice);
    assert_eq!(
        drain(&mut alice).0,
        [
            Action::ApplyAnswer {
                conn: a_conn,
                sdp: sdp("bbbb")
            },
            Action::AddCandidate {
                conn: a_conn,
                candidate: candidate(2, None)
            },
        ]
    );

    alice.handle_transport(
        a_conn,
        TransportEvent::StateChanged(PeerStatus::Connected),
        T0,
    );
    alice.handle_transport(a_conn, TransportEvent::ChannelOpen, T0);
    let events = drain(&mut alice).1;
    assert_eq!(
        events,
        [
            ClientEvent::Status {
                peer: "bob".into(),
                status: PeerStatus::Connected
            },
            ClientEvent::PeerConnected("bob".into()),
        ]
    );
    // Both announced acks: messages go numbered, and come back acknowledged.
    let id = alice.send_message("bob", "hi bob").unwrap();
    let frame = ChatFrame::Message {
        id,
        text: "hi bob".into(),
        ack: None,
    }
    .encode();
    assert_eq!(
        drain(&mut alice).0,
        [Action::SendText {
            conn: a_conn,
            text: frame.clone()
        }]
    );
    bob.handle_transport(b_conn, TransportEvent::ChannelOpen, T0);
    bob.handle_transport(b_conn, TransportEvent::ChannelMessage(frame), T0);
    let (actions, events) = drain(&mut bob);
    assert!(events.contains(&ClientEvent::Message {
        from: "alice".into(),
        text: "hi bob".into()
    }));
    assert!(actions.is_empty(), "the ack waits for an answer to ride on");
    // docs/PROTOCOL.md: "if it sends none within 20 ms, {"type":"ack","id":7} alone".
    assert_eq!(bob.poll_timeout(), Some(T0 + 20));
    bob.handle_timeout(T0 + 20);
    let ack = ChatFrame::Ack { id }.encode();
    assert_eq!(
        drain(&mut bob).0,
        [Action::SendText {
            conn: b_conn,
            text: ack.clone()
        }]
    );
    alice.handle_transport(a_conn, TransportEvent::ChannelMessage(ack), T0);
    assert_eq!(
        drain(&mut alice).1,
        [ClientEvent::Delivered {
            peer: "bob".into(),
            id
        }]
    );
}

#[test]
fn an_answer_carries_the_acknowledgement_and_one_ack_covers_many() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, b_conn) = connected_pair(&mut alice, &mut bob);
    let ids: Vec<MessageId> = ["one", "two", "three"]
        .iter()
        .map(|text| alice.send_message("bob", text).unwrap())
        .collect();
    for action in drain(&mut alice).0 {
        let Action::SendText { text, .. } = action else {
            panic!("{action:?}")
        };
        bob.handle_transport(b_conn, TransportEvent::ChannelMessage(text), T0);
    }
    drain(&mut bob);
    // Bob answers before the ack is due: the answer carries it, and no ack goes alone.
    bob.send_message("alice", "got them").unwrap();
    let (actions, _) = drain(&mut bob);
    let [Action::SendText { text, .. }] = actions.as_slice() else {
        panic!("{actions:?}")
    };
    assert!(text.contains(&format!(r#""ack":{}"#, ids[2])), "{text}");
    assert_eq!(bob.poll_timeout(), None, "nothing left to acknowledge");
    bob.handle_timeout(T0 + chat::ACK_DELAY_MS);
    assert!(drain(&mut bob).0.is_empty());

    alice.handle_transport(a_conn, TransportEvent::ChannelMessage(text.clone()), T0);
    let delivered: Vec<MessageId> = drain(&mut alice)
        .1
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Delivered { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(
        delivered, ids,
        "one number acknowledges all three, in order"
    );
}

/// Bob's answer as the original client sends it: no `peerchat` capabilities.
pub(super) fn original_answer() -> SignalMessage {
    SignalMessage::SignalAnswer {
        seal: None,
        from: "bob".into(),
        answer: SessionDescription {
            kind: SdpKind::Answer,
            sdp: sdp("bbbb"),
        },
        peerchat: None,
    }
}

/// Bob is an original client: his answer announces nothing.
pub(super) fn connected_to_original(alice: &mut ClientMachine) -> ConnId {
    alice.connect_to_peer("bob", T0).unwrap();
    let conn = conn_of(&drain(alice).0);
    alice.handle_transport(conn, TransportEvent::LocalDescription(sdp("aaaa")), T0);
    drain(alice);
    deliver(alice, &original_answer());
    alice.handle_transport(conn, TransportEvent::ChannelOpen, T0);
    drain(alice);
    conn
}

#[test]
fn messages_to_an_original_client_stay_plain_text() {
    let mut alice = online("alice");
    let conn = connected_to_original(&mut alice);
    alice.send_message("bob", "hello").unwrap();
    assert_eq!(
        drain(&mut alice).0,
        [Action::SendText {
            conn,
            text: "hello".into()
        }]
    );
    // Even text shaped like a frame is only text from an original client.
    let lookalike = r#"{"type":"ack","id":1}"#;
    alice.handle_transport(conn, TransportEvent::ChannelMessage(lookalike.into()), T0);
    let (actions, events) = drain(&mut alice);
    assert!(actions.is_empty(), "no ack goes to an original client");
    assert_eq!(
        events,
        [ClientEvent::Message {
            from: "bob".into(),
            text: lookalike.into()
        }]
    );
}

#[test]
fn a_repeated_numbered_message_is_shown_once_and_acknowledged_again() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    let frame = ChatFrame::Message {
        id: 5,
        text: "once".into(),
        ack: None,
    }
    .encode();
    bob.handle_transport(b_conn, TransportEvent::ChannelMessage(frame.clone()), T0);
    bob.handle_transport(b_conn, TransportEvent::ChannelMessage(frame), T0);
    let shown = drain(&mut bob)
        .1
        .iter()
        .filter(|e| matches!(e, ClientEvent::Message { .. }))
        .count();
    assert_eq!(shown, 1);
    bob.handle_timeout(T0 + chat::ACK_DELAY_MS);
    assert_eq!(
        drain(&mut bob).0,
        [Action::SendText {
            conn: b_conn,
            text: ChatFrame::Ack { id: 5 }.encode()
        }],
        "acknowledged (again), once"
    );
}

#[test]
fn text_from_a_peerchat_peer_that_is_no_frame_is_still_shown() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    for text in ["plain words", "{not json", r#"{"type":"typing"}"#] {
        bob.handle_transport(b_conn, TransportEvent::ChannelMessage(text.into()), T0);
        let (actions, events) = drain(&mut bob);
        assert!(actions.is_empty());
        assert_eq!(
            events,
            [ClientEvent::Message {
                from: "alice".into(),
                text: text.into()
            }]
        );
    }
}

#[test]
fn a_message_that_outgrows_the_limit_when_framed_is_refused() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    connected_pair(&mut alice, &mut bob);
    // Quotes double when escaped: the frame is over the limit though the text is not.
    let text = "\"".repeat(MAX_CHAT_MESSAGE_BYTES / 2 + 10);
    assert!(matches!(
        alice.send_message("bob", &text),
        Err(ClientError::MessageTooLarge { .. })
    ));
    assert!(drain(&mut alice).0.is_empty());
}

#[test]
fn early_candidates_are_applied_after_offer() {
    let mut bob = online("bob");
    for n in 1..=3 {
        deliver(
            &mut bob,
            &SignalMessage::SignalCandidate {
                seal: None,
                from: "alice".into(),
                candidate: candidate(n, Some("aaaa")),
            },
        );
    }
    assert!(
        drain(&mut bob).0.is_empty(),
        "nothing applied before the offer"
    );
    deliver(
        &mut bob,
        &SignalMessage::SignalOffer {
            seal: None,
            from: "alice".into(),
            offer: SessionDescription {
                kind: SdpKind::Offer,
                sdp: sdp("aaaa"),
            },
            peerchat: None,
        },
    );
    let (actions, _) = drain(&mut bob);
    assert!(matches!(actions[0], Action::AcceptOffer { .. }));
    let applied: Vec<&IceCandidate> = actions[1..]
        .iter()
        .map(|a| match a {
            Action::AddCandidate { candidate, .. } => candidate,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        applied,
        [
            &candidate(1, Some("aaaa")),
            &candidate(2, Some("aaaa")),
            &candidate(3, Some("aaaa"))
        ]
    );
}

#[test]
fn early_candidates_are_applied_after_answer() {
    let mut alice = online("alice");
    alice.connect_to_peer("bob", T0).unwrap();
    let conn = conn_of(&drain(&mut alice).0);
    alice.handle_transport(conn, TransportEvent::LocalDescription(sdp("aaaa")), T0);
    drain(&mut alice);
    // The original client may publish candidates before its answer.
    deliver(
        &mut alice,
        &SignalMessage::SignalCandidate {
            seal: None,
            from: "bob".into(),
            candidate: candidate(7, None),
        },
    );
    assert!(drain(&mut alice).0.is_empty());
    deliver(&mut alice, &original_answer());
    assert_eq!(
        drain(&mut alice).0,
        [
            Action::ApplyAnswer {
                conn,
                sdp: sdp("bbbb")
            },
            Action::AddCandidate {
                conn,
                candidate: candidate(7, None)
            },
        ]
    );
}

#[test]
fn glare_yields_exactly_one_connection() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    alice.connect_to_peer("bob", T0).unwrap();
    bob.connect_to_peer("alice", T0).unwrap();
    let a_conn = conn_of(&drain(&mut alice).0);
    let b_conn = conn_of(&drain(&mut bob).0);
    alice.handle_transport(a_conn, TransportEvent::LocalDescription(sdp("aaaa")), T0);
    bob.handle_transport(b_conn, TransportEvent::LocalDescription(sdp("bbbb")), T0);
    bob.handle_transport(
        b_conn,
        TransportEvent::LocalCandidate(candidate(9, Some("bbbb"))),
        T0,
    );
    let (to_bob, _) = drain(&mut alice);
    let (to_alice, _) = drain(&mut bob);
    // The offers cross in flight.
    relay(to_alice, &mut alice);
    relay(to_bob.clone(), &mut bob);

    let (alice_actions, _) = drain(&mut alice);
    let (bob_actions, _) = drain(&mut bob);
    // "alice" sorts first: her offer wins; she ignores Bob's offer (and his candidate) and
    // sends hers again, in case Bob never had it.
    assert_eq!(alice_actions, to_bob);
    assert_eq!(bob_actions[0], Action::ClosePeer { conn: b_conn });
    let bob_new = conn_of(&bob_actions);
    assert_ne!(bob_new, b_conn);
    assert!(matches!(&bob_actions[1], Action::AcceptOffer { peer, .. } if peer == "alice"));
    assert_eq!(bob_actions.len(), 2);
    // He had it: the copy is a duplicate.
    relay(alice_actions, &mut bob);
    assert!(drain(&mut bob).0.is_empty());

    // Bob's answer carries a new ufrag: his candidate from the abandoned offer is dropped.
    bob.handle_transport(bob_new, TransportEvent::LocalDescription(sdp("cccc")), T0);
    let (actions, _) = drain(&mut bob);
    relay(actions, &mut alice);
    assert_eq!(
        drain(&mut alice).0,
        [Action::ApplyAnswer {
            conn: a_conn,
            sdp: sdp("cccc")
        }]
    );
    // Events of Bob's abandoned connection change nothing.
    bob.handle_transport(b_conn, TransportEvent::ChannelOpen, T0);
    assert_eq!(bob.peer_status("alice"), Some(PeerStatus::Connecting));
}

/// The broker connection drops and comes back; what the machine did meanwhile.
fn reconnect_broker(m: &mut ClientMachine, now: u64) -> (Vec<Action>, Vec<ClientEvent>) {
    m.handle_signaling(SignalingInput::Lost, now);
    drain(m);
    m.handle_signaling(SignalingInput::Connected, now + 100);
    m.handle_signaling(SignalingInput::Subscribed, now + 101);
    drain(m)
}

/// The publishes among `actions` addressed to `peer`, decoded.
fn signals_to(actions: &[Action], peer: &str) -> Vec<SignalMessage> {
    (actions.iter())
        .filter_map(|a| match a {
            Action::Publish { topic, payload, .. } if *topic == incoming_topic(peer) => {
                Some(protocol::decode(payload).expect("our own signal decodes"))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_first_setup_goes_again_when_the_broker_connection_comes_back() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    alice.connect_to_peer("bob", T0).unwrap();
    let a_conn = conn_of(&drain(&mut alice).0);
    alice.handle_transport(a_conn, TransportEvent::LocalDescription(sdp("aaaa")), T0);
    alice.handle_transport(
        a_conn,
        TransportEvent::LocalCandidate(candidate(1, Some("aaaa"))),
        T0,
    );
    let (first_offer, _) = drain(&mut alice);
    assert_eq!(signals_to(&first_offer, "bob").len(), 2);

    // Alice's connection died as her offer and candidate went out: once she is back
    // online both go again, as they were.
    let (again, _) = reconnect_broker(&mut alice, T0 + 1_000);
    assert_eq!(signals_to(&again, "bob"), signals_to(&first_offer, "bob"));

    // Bob had the first copy; the second is a duplicate while he has no answer yet: it
    // changes no connection (the candidate goes to the ICE agent again, which keeps one).
    relay(first_offer, &mut bob);
    let b_conn = conn_of(&drain(&mut bob).0);
    relay(again.clone(), &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(
        (actions.iter()).all(|a| matches!(a, Action::AddCandidate { conn, .. } if *conn == b_conn)),
        "{actions:?}"
    );
    assert!(events.is_empty(), "{events:?}");

    // Bob answers, and his connection dies as the answer goes out: it goes again when he
    // is back, and again when Alice offers once more.
    bob.handle_transport(b_conn, TransportEvent::LocalDescription(sdp("bbbb")), T0);
    bob.handle_transport(
        b_conn,
        TransportEvent::LocalCandidate(candidate(2, Some("bbbb"))),
        T0,
    );
    let (answer, _) = drain(&mut bob);
    let (answer_again, _) = reconnect_broker(&mut bob, T0 + 2_000);
    assert_eq!(
        signals_to(&answer_again, "alice"),
        signals_to(&answer, "alice")
    );
    relay(again, &mut bob);
    let (answer_on_offer, _) = drain(&mut bob);
    assert_eq!(
        signals_to(&answer_on_offer, "alice"),
        signals_to(&answer, "alice")
    );

    // Alice applies the first answer once and takes the copies for duplicates, quietly.
    relay(answer, &mut alice);
    let (applied, _) = drain(&mut alice);
    assert!(matches!(&applied[0], Action::ApplyAnswer { conn, .. } if *conn == a_conn));
    for copy in [answer_again, answer_on_offer] {
        relay(copy, &mut alice);
        let (actions, events) = drain(&mut alice);
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::ApplyAnswer { .. })),
            "applied twice: {actions:?}"
        );
        assert!(
            !events.iter().any(|e| matches!(e, ClientEvent::Error(_))),
            "a duplicate answer is no error: {events:?}"
        );
    }

    // Once the chat is open, a broker reconnect sends nothing again.
    alice.handle_transport(a_conn, TransportEvent::ChannelOpen, T0);
    bob.handle_transport(b_conn, TransportEvent::ChannelOpen, T0);
    drain(&mut alice);
    drain(&mut bob);
    assert!(signals_to(&reconnect_broker(&mut alice, T0 + 3_000).0, "bob").is_empty());
    assert!(signals_to(&reconnect_broker(&mut bob, T0 + 3_000).0, "alice").is_empty());
}

#[test]
fn an_answer_to_an_original_client_goes_once() {
    // The original client would apply a second answer to a connection already set up.
    let mut bob = online("bob");
    let offer = SignalMessage::SignalOffer {
        seal: None,
        from: "alice".into(),
        offer: SessionDescription {
            kind: SdpKind::Offer,
            sdp: sdp("aaaa"),
        },
        peerchat: None,
    };
    deliver(&mut bob, &offer);
    let b_conn = conn_of(&drain(&mut bob).0);
    bob.handle_transport(b_conn, TransportEvent::LocalDescription(sdp("bbbb")), T0);
    assert_eq!(signals_to(&drain(&mut bob).0, "alice").len(), 1);
    assert!(signals_to(&reconnect_broker(&mut bob, T0 + 1_000).0, "alice").is_empty());
    deliver(&mut bob, &offer);
    assert!(signals_to(&drain(&mut bob).0, "alice").is_empty());
}

#[test]
fn connecting_to_yourself_twice_or_too_early_is_an_error() {
    let mut fresh = ClientMachine::new("alice", "s").unwrap();
    assert_eq!(
        fresh.connect_to_peer("bob", T0),
        Err(ClientError::NotConnected)
    );
    let mut alice = online("alice");
    assert_eq!(
        alice.connect_to_peer("alice", T0),
        Err(ClientError::SelfConnect)
    );
    assert!(matches!(
        alice.connect_to_peer("bo/b", T0),
        Err(ClientError::InvalidUsername(_))
    ));
    alice.connect_to_peer("bob", T0).unwrap();
    assert_eq!(
        alice.connect_to_peer("bob", T0),
        Err(ClientError::AlreadyConnected("bob".into()))
    );
    assert!(ClientMachine::new("", "s").is_err());
}

#[test]
fn delivery_failed_reports_offline_peer() {
    let mut alice = online("alice");
    alice.connect_to_peer("carol", T0).unwrap();
    let conn = conn_of(&drain(&mut alice).0);
    deliver(
        &mut alice,
        &SignalMessage::DeliveryFailed {
            target: "carol".into(),
            reason: "user-offline".into(),
            timestamp: 1,
        },
    );
    let (actions, events) = drain(&mut alice);
    assert_eq!(actions, [Action::ClosePeer { conn }]);
    assert!(
        events.contains(&ClientEvent::Error(ClientError::PeerOffline(
            "carol".into()
        )))
    );
    assert_eq!(statuses(&events, "carol"), [PeerStatus::Failed]);
    assert_eq!(alice.peer_status("carol"), None);
    // Trying again is allowed.
    assert!(alice.connect_to_peer("carol", T0).is_ok());
}

#[test]
fn known_offline_presence_refuses_at_once() {
    let mut alice = online("alice");
    alice.watch_presence("carol").unwrap();
    let record = SignalMessage::Presence(Presence {
        from: "carol".into(),
        session: "c".into(),
        online: false,
        since: None,
    });
    alice.handle_signaling(
        SignalingInput::Message {
            topic: presence_topic("carol"),
            payload: encode(&record),
        },
        T0,
    );
    assert_eq!(
        drain(&mut alice).1,
        [ClientEvent::Presence {
            user: "carol".into(),
            online: false
        }]
    );
    assert_eq!(
        alice.connect_to_peer("carol", T0),
        Err(ClientError::PeerOffline("carol".into()))
    );
}

/// The README's figure, 30 s, drives the clock: the test fails if the timeout drifts.
#[test]
fn unanswered_offer_times_out() {
    let mut alice = online("alice");
    alice.connect_to_peer("dave", T0).unwrap();
    let conn = conn_of(&drain(&mut alice).0);
    assert_eq!(alice.poll_timeout(), Some(T0 + 30_000));
    alice.handle_timeout(T0 + 29_999);
    let (actions, events) = drain(&mut alice);
    assert!(
        actions.is_empty() && events.is_empty(),
        "{actions:?} {events:?}"
    );
    assert_eq!(alice.peer_status("dave"), Some(PeerStatus::Connecting));
    alice.handle_timeout(T0 + 30_000);
    let (actions, events) = drain(&mut alice);
    assert_eq!(actions, [Action::ClosePeer { conn }]);
    assert!(events.contains(&ClientEvent::Error(ClientError::PeerTimeout("dave".into()))));
    assert_eq!(statuses(&events, "dave"), [PeerStatus::Failed]);
    assert_eq!(alice.peer_status("dave"), None);
}

// ---- Chat and teardown -----------------------------------------------------------------

#[test]
fn sending_needs_an_open_channel_and_a_bounded_message() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    assert_eq!(
        alice.send_message("bob", "hi"),
        Err(ClientError::PeerNotConnected("bob".into()))
    );
    connected_pair(&mut alice, &mut bob);
    let huge = "x".repeat(MAX_CHAT_MESSAGE_BYTES + 1);
    assert!(matches!(
        alice.send_message("bob", &huge),
        Err(ClientError::MessageTooLarge { .. })
    ));
    assert!(alice.send_message("bob", "hi").is_ok());
}

#[test]
fn a_bye_then_a_closed_channel_reports_peer_disconnected() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, b_conn) = connected_pair(&mut alice, &mut bob);
    // Bob closes the chat: he says so before his channel goes.
    bob.close_peer("alice").unwrap();
    let (actions, _) = drain(&mut bob);
    let bye = ChatFrame::Bye.encode();
    assert_eq!(
        actions,
        [
            Action::SendText {
                conn: b_conn,
                text: bye.clone()
            },
            Action::ClosePeer { conn: b_conn }
        ]
    );
    alice.handle_transport(a_conn, TransportEvent::ChannelMessage(bye), T0);
    let (actions, events) = drain(&mut alice);
    assert_eq!(actions, [Action::ClosePeer { conn: a_conn }]);
    assert_eq!(
        events,
        [
            ClientEvent::Status {
                peer: "bob".into(),
                status: PeerStatus::Closed
            },
            ClientEvent::PeerDisconnected {
                peer: "bob".into(),
                reason: ChatEnd::PeerLeft
            },
        ]
    );
}

#[test]
fn a_channel_closing_without_a_bye_is_a_chat_moving_to_a_new_connection() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    bob.handle_transport(b_conn, TransportEvent::ChannelClosed, T0);
    let (actions, events) = drain(&mut bob);
    assert_eq!(actions, [Action::ClosePeer { conn: b_conn }]);
    assert_eq!(ended_why(&events, "alice"), None);
    assert_eq!(bob.peer_status("alice"), Some(PeerStatus::Disconnected));
}

#[test]
fn a_new_chat_with_the_same_run_shows_nothing_twice() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    alice.send_message("bob", "once").unwrap();
    let first = drain(&mut alice).0;
    carry(first.clone(), &mut bob, b_conn);
    assert_eq!(shown(&drain(&mut bob).1, "alice"), ["once"]);
    // Bob's side of the chat ends (a timeout, say) before his ack went; Alice's app, the
    // same run, opens a new chat and sends what is unacknowledged again.
    bob.close_peer("alice").unwrap();
    drain(&mut bob);
    bob.connect_to_peer("alice", T0).unwrap();
    let b_new = conn_of(&drain(&mut bob).0);
    bob.handle_transport(b_new, TransportEvent::LocalDescription(sdp("b9b9")), T0);
    relay(drain(&mut bob).0, &mut alice);
    let a_new = conn_of(&drain(&mut alice).0);
    alice.handle_transport(a_new, TransportEvent::LocalDescription(sdp("a9a9")), T0);
    relay(drain(&mut alice).0, &mut bob);
    drain(&mut bob);
    carry(first, &mut bob, b_new);
    assert!(
        shown(&drain(&mut bob).1, "alice").is_empty(),
        "shown once only"
    );
}

#[test]
fn closing_one_chat_leaves_the_others() {
    let (mut alice, mut bob, mut carol) = (online("alice"), online("bob"), online("carol"));
    let (to_bob, _) = connected_pair(&mut alice, &mut bob);
    connected_pair(&mut alice, &mut carol);
    assert_eq!(
        alice.close_peer("dave"),
        Err(ClientError::PeerNotConnected("dave".into()))
    );
    alice.close_peer("bob").unwrap();
    let (actions, events) = drain(&mut alice);
    assert_eq!(actions.last(), Some(&Action::ClosePeer { conn: to_bob }));
    assert_eq!(ended_why(&events, "bob"), Some(ChatEnd::Closed));
    assert_eq!(alice.peer_status("carol"), Some(PeerStatus::Connected));
    assert!(
        alice.connect_to_peer("bob", T0).is_ok(),
        "a closed chat can be reopened"
    );
}

#[test]
fn transient_disconnect_keeps_the_chat() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    alice.handle_transport(
        a_conn,
        TransportEvent::StateChanged(PeerStatus::Disconnected),
        T0,
    );
    alice.handle_transport(
        a_conn,
        TransportEvent::StateChanged(PeerStatus::Connected),
        T0,
    );
    let (actions, events) = drain(&mut alice);
    assert!(actions.is_empty(), "the connection is not torn down");
    assert_eq!(
        statuses(&events, "bob"),
        [PeerStatus::Disconnected, PeerStatus::Connected]
    );
    alice.handle_transport(a_conn, TransportEvent::StateChanged(PeerStatus::Failed), T0);
    let (actions, events) = drain(&mut alice);
    assert!(
        ended_why(&events, "bob").is_none(),
        "a failed connection to a peerchat peer is recovered, not ended"
    );
    // No file under way: a new connection, at once (Alice's name sorts first).
    assert_eq!(actions[0], Action::ClosePeer { conn: a_conn });
    assert_eq!(offers(&actions), 1);
}

/// `from` starts sending `to` a file that is still on its way: a recovery restarts ICE in
/// place, so it can go on.
pub(super) fn file_under_way(from: &mut ClientMachine, to: &str) {
    from.send_file(to, "clip.bin", "application/octet-stream", &[7; 100])
        .unwrap();
    drain(from);
}

// ---- Recovery ----------------------------------------------------------------------------

/// Chat texts shown to `m`'s user from `peer`, in order.
pub(super) fn shown(events: &[ClientEvent], peer: &str) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Message { from, text } if from == peer => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// Both connections failed; Alice (whose name sorts first) offers anew, Bob answers, and
/// both new channels open. Returns the new (alice conn, bob conn) and what each side did
/// and saw once its channel opened.
fn recover(
    alice: &mut ClientMachine,
    bob: &mut ClientMachine,
    a_conn: ConnId,
    now: u64,
) -> ((ConnId, ConnId), Vec<Action>, Vec<Action>) {
    alice.handle_transport(a_conn, TransportEvent::LocalDescription(sdp("cccc")), now);
    let (actions, _) = drain(alice);
    relay(actions, bob);
    let (actions, _) = drain(bob);
    let b_conn = conn_of(&actions);
    bob.handle_transport(b_conn, TransportEvent::LocalDescription(sdp("dddd")), now);
    let (actions, _) = drain(bob);
    relay(actions, alice);
    drain(alice);
    alice.handle_transport(a_conn, TransportEvent::ChannelOpen, now);
    bob.handle_transport(b_conn, TransportEvent::ChannelOpen, now);
    let (alice_sends, _) = drain(alice);
    let (bob_sends, _) = drain(bob);
    ((a_conn, b_conn), alice_sends, bob_sends)
}

#[test]
fn a_lost_connection_moves_the_chat_to_a_new_one_and_nothing_is_lost_or_shown_twice() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, b_conn) = connected_pair(&mut alice, &mut bob);
    // One message reaches Bob, but his acknowledgement is lost with the connection.
    alice.send_message("bob", "before").unwrap();
    carry(drain(&mut alice).0, &mut bob, b_conn);
    let (_, events) = drain(&mut bob);
    assert_eq!(shown(&events, "alice"), ["before"]);
    bob.handle_timeout(T0 + chat::ACK_DELAY_MS);
    let (lost_ack, _) = drain(&mut bob);
    assert_eq!(
        lost_ack.len(),
        1,
        "Bob's ack goes, into a connection about to die"
    );

    // Bob wrote too; that message is lost with the connection.
    bob.send_message("alice", "from bob, before").unwrap();
    drain(&mut bob);

    // The path is lost on both sides and stays lost. Both have messages in flight, which a
    // new connection sends again at once: the old connections go, and Alice,
    // whose name sorts first, offers a new one at once; Bob waits for it.
    let lost_for_good = |m: &mut ClientMachine, conn| {
        m.handle_transport(
            conn,
            TransportEvent::StateChanged(PeerStatus::Disconnected),
            T0,
        );
        // docs/PROTOCOL.md: "`disconnected` for 2 s".
        assert_eq!(m.poll_timeout(), Some(T0 + 2_000));
        m.handle_timeout(T0 + 2_000);
        let (actions, events) = drain(m);
        assert_eq!(
            actions[0],
            Action::ClosePeer { conn },
            "the old connection goes"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, ClientEvent::PeerDisconnected { .. }))
        );
        actions[1..].to_vec()
    };
    let a_offer = conn_of(&lost_for_good(&mut alice, a_conn));
    assert_eq!(lost_for_good(&mut bob, b_conn), []);
    // Meanwhile both keep writing: the messages wait.
    let later = T0 + 2_000;
    alice.send_message("bob", "during").unwrap();
    let bob_id = bob.send_message("alice", "from bob, during").unwrap();
    assert!(drain(&mut alice).0.is_empty() && drain(&mut bob).0.is_empty());
    // Events from the dead connection no longer matter.
    bob.handle_transport(b_conn, TransportEvent::ChannelClosed, later);
    assert_eq!(bob.peer_status("alice"), Some(PeerStatus::Disconnected));

    let ((a_new, b_new), alice_sends, bob_sends) = recover(&mut alice, &mut bob, a_offer, later);
    assert!(a_new != a_conn && b_new != b_conn);
    assert_eq!(alice.peer_status("bob"), Some(PeerStatus::Connected));
    assert_eq!(bob.peer_status("alice"), Some(PeerStatus::Connected));
    // Every unacknowledged message goes again, in order; each is shown once. Bob answered:
    // his go once Alice's first frame shows that her end of the channel is open.
    assert!(bob_sends.is_empty(), "{bob_sends:?}");
    carry(alice_sends, &mut bob, b_new);
    let (bob_sends, bob_events) = drain(&mut bob);
    carry(bob_sends, &mut alice, a_new);
    let (alice_acks, alice_events) = drain(&mut alice);
    assert_eq!(shown(&bob_events, "alice"), ["during"]);
    assert_eq!(
        shown(&alice_events, "bob"),
        ["from bob, before", "from bob, during"]
    );
    // And the acknowledgements that follow confirm them.
    bob.handle_timeout(later + chat::ACK_DELAY_MS);
    alice.handle_timeout(later + chat::ACK_DELAY_MS);
    let (bob_out, alice_out) = (drain(&mut bob).0, drain(&mut alice).0);
    carry(bob_out, &mut alice, a_new);
    carry([alice_acks, alice_out].concat(), &mut bob, b_new);
    let delivered = |events: &[ClientEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Delivered { .. }))
            .count()
    };
    assert_eq!(delivered(&drain(&mut alice).1), 2, "before and during");
    assert!(drain(&mut bob).1.contains(&ClientEvent::Delivered {
        peer: "alice".into(),
        id: bob_id
    }));
}

#[test]
fn recovery_gives_up_after_its_window_and_reports_the_peer_gone() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    alice.handle_transport(a_conn, TransportEvent::StateChanged(PeerStatus::Failed), T0);
    // Each offer finds no answer: attempts back off until the window closes.
    let (_, ended) = recovery_offers(&mut alice, "bob", false);
    // docs/PROTOCOL.md: "After 60 s the chat ends".
    assert_eq!(ended, 60_000);
    assert_eq!(alice.peer_status("bob"), None);
}

/// Drives `m` by its own clock (each time [`ClientMachine::poll_timeout`] names) until its
/// chat with `peer` ends; `undelivered` says, after each offer, that the broker could not
/// deliver it. Returns when offers were made and when the chat ended, after `T0`.
fn recovery_offers(m: &mut ClientMachine, peer: &str, undelivered: bool) -> (Vec<u64>, u64) {
    let mut offered = Vec::new();
    let mut now = T0;
    loop {
        let (actions, events) = drain(m);
        if offers(&actions) > 0 {
            offered.push(now - T0);
            if undelivered {
                let failed = SignalMessage::DeliveryFailed {
                    target: peer.to_owned(),
                    reason: "user-offline".into(),
                    timestamp: 0,
                };
                deliver_at(m, &failed, now);
                continue;
            }
        }
        if let Some(reason) = ended_why(&events, peer) {
            assert_eq!(reason, ChatEnd::Unreachable);
            return (offered, now - T0);
        }
        now = m.poll_timeout().expect("the recovery has a next step");
        m.handle_timeout(now);
    }
}

#[test]
fn each_recovery_attempt_gets_10_s_and_the_waits_between_double_from_half_a_second() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    alice.handle_transport(a_conn, TransportEvent::StateChanged(PeerStatus::Failed), T0);
    let (offered, ended) = recovery_offers(&mut alice, "bob", false);
    // Each attempt gets 10 s; the waits after them are 0.5, 1, 2 and 4 s. The next wait,
    // 8 s, would end past the window: the chat ends after 60 s.
    assert_eq!(offered, [0, 10_500, 21_500, 33_500, 47_500]);
    assert_eq!(ended, 60_000);
}

#[test]
fn undelivered_recovery_offers_are_retried_after_waits_doubling_from_half_a_second_to_8_s() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    alice.handle_transport(a_conn, TransportEvent::StateChanged(PeerStatus::Failed), T0);
    let (offered, ended) = recovery_offers(&mut alice, "bob", true);
    let waits: Vec<u64> = offered.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        waits,
        [
            500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 8_000, 8_000, 8_000
        ]
    );
    assert_eq!(ended, 60_000);
}

#[test]
fn a_peer_that_left_the_broker_mid_recovery_is_offered_again_when_it_is_back() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    alice.handle_transport(a_conn, TransportEvent::StateChanged(PeerStatus::Failed), T0);
    assert_eq!(offers(&drain(&mut alice).0), 1);
    // Bob's broker connection died with his network (his last will): still recovering.
    presence(&mut alice, "bob", false);
    let (_, events) = drain(&mut alice);
    assert_eq!(ended_why(&events, "bob"), None);
    assert_eq!(alice.peer_status("bob"), Some(PeerStatus::Connecting));
    // Back online: the offer made while he was away never reached him; another goes.
    presence(&mut alice, "bob", true);
    assert_eq!(offers(&drain(&mut alice).0), 1);
}

/// The connection broke beyond restarting: the chat needs a new one.
fn lose_path(m: &mut ClientMachine, conn: ConnId, now: u64) -> Vec<Action> {
    m.handle_transport(conn, TransportEvent::Failed("broken".into()), now);
    drain(m).0
}

fn offers(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::StartOffer { .. }))
        .count()
}

#[test]
fn the_second_name_offers_too_when_the_first_stays_silent() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    // Alice's side of the chat is gone (she slept through it); Bob lost his path.
    assert_eq!(
        offers(&lose_path(&mut bob, b_conn, T0)),
        0,
        "Bob waits first"
    );
    let at = bob.poll_timeout().expect("a second offer is planned");
    // docs/PROTOCOL.md: "the other 3 s later".
    assert_eq!(at, T0 + 3_000);
    bob.handle_timeout(at);
    let (actions, _) = drain(&mut bob);
    assert_eq!(offers(&actions), 1);
}

#[test]
fn crossing_recovery_offers_settle_on_one_connection() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, b_conn) = connected_pair(&mut alice, &mut bob);
    let a_offer = conn_of(&lose_path(&mut alice, a_conn, T0));
    lose_path(&mut bob, b_conn, T0);
    bob.handle_timeout(T0 + 3_000);
    let b_offer = conn_of(&drain(&mut bob).0);
    let now = T0 + 3_000;
    alice.handle_transport(a_offer, TransportEvent::LocalDescription(sdp("a2a2")), now);
    bob.handle_transport(b_offer, TransportEvent::LocalDescription(sdp("b2b2")), now);
    let (from_alice, _) = drain(&mut alice);
    let (from_bob, _) = drain(&mut bob);
    // Both offers arrive: Alice keeps hers (her name sorts first) and sends it again, in
    // case Bob missed it; Bob answers it, and takes the copy for a duplicate.
    assert!(relay(from_bob, &mut alice).is_empty());
    let (again, _) = drain(&mut alice);
    assert_eq!(
        again, from_alice,
        "Alice ignores Bob's offer and repeats hers"
    );
    relay(from_alice, &mut bob);
    let (actions, _) = drain(&mut bob);
    assert!(
        matches!(actions[..], [Action::ClosePeer { conn }, Action::AcceptOffer { .. }, ..] if conn == b_offer)
    );
    relay(again, &mut bob);
    assert!(drain(&mut bob).0.is_empty());
}

/// A description of a connection whose DTLS certificate is `cert`.
pub(super) fn sdp_of(ufrag: &str, cert: &str) -> String {
    format!("{}a=fingerprint:sha-256 {cert}\r\n", sdp(ufrag))
}

#[test]
fn a_network_change_restarts_ice_once_the_broker_connection_is_renewed() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    alice.connect_to_peer("bob", T0).unwrap();
    let a_conn = conn_of(&drain(&mut alice).0);
    alice.handle_transport(
        a_conn,
        TransportEvent::LocalDescription(sdp_of("aaaa", "A")),
        T0,
    );
    relay(drain(&mut alice).0, &mut bob);
    let b_conn = conn_of(&drain(&mut bob).0);
    bob.handle_transport(
        b_conn,
        TransportEvent::LocalDescription(sdp_of("bbbb", "B")),
        T0,
    );
    relay(drain(&mut bob).0, &mut alice);
    alice.handle_transport(a_conn, TransportEvent::ChannelOpen, T0);
    bob.handle_transport(b_conn, TransportEvent::ChannelOpen, T0);
    carry(chat_frames(drain(&mut alice).0), &mut bob, b_conn);
    drain(&mut bob);
    // A file of Bob's is on its way: the chat keeps its connection, restarting ICE.
    file_under_way(&mut bob, "alice");

    // Bob's phone moves to mobile data; his name sorts second, yet he offers: he knows.
    bob.network_changed(T0);
    let (actions, events) = drain(&mut bob);
    assert_eq!(
        actions,
        [Action::RestartSignaling],
        "the connection is kept"
    );
    assert!(events.contains(&ClientEvent::Signaling(SignalingState::Reconnecting)));
    assert_eq!(bob.peer_status("alice"), Some(PeerStatus::Disconnected));
    // Written meanwhile: onto the kept channel, and kept until acknowledged.
    bob.send_message("alice", "on the move").unwrap();
    let first_copy = drain(&mut bob).0;
    // No offer until the broker connection is back with its subscriptions, or the answer
    // would have nowhere to go.
    bob.handle_timeout(T0 + 1);
    bob.handle_signaling(SignalingInput::Lost, T0 + 1);
    bob.handle_signaling(SignalingInput::Connected, T0 + 5);
    assert!(
        drain(&mut bob)
            .0
            .iter()
            .all(|a| !matches!(a, Action::RestartIce { .. }))
    );
    bob.handle_signaling(SignalingInput::Subscribed, T0 + 6);
    let (actions, _) = drain(&mut bob);
    let restarts: Vec<_> = (actions.iter())
        .filter(|a| !matches!(a, Action::Publish { .. }))
        .collect();
    assert_eq!(restarts, [&Action::RestartIce { conn: b_conn }]);

    // Same certificate: Alice answers on the connection they share, and says so on it.
    let restart = sdp_of("b2b2", "B");
    bob.handle_transport(
        b_conn,
        TransportEvent::LocalDescription(restart.clone()),
        T0 + 7,
    );
    relay(drain(&mut bob).0, &mut alice);
    let (actions, _) = drain(&mut alice);
    assert!(matches!(
        &actions[..],
        [Action::AcceptOffer { conn, sdp, .. }, Action::SendText { conn: c2, .. }]
            if *conn == a_conn && *sdp == restart && *c2 == a_conn
    ));
    let alice_sign = actions[1..].to_vec();
    alice.handle_transport(
        a_conn,
        TransportEvent::LocalDescription(sdp_of("a2a2", "A")),
        T0 + 8,
    );
    relay(drain(&mut alice).0, &mut bob);
    let (actions, _) = drain(&mut bob);
    assert!(matches!(actions[0], Action::ApplyAnswer { conn, .. } if conn == b_conn));
    // The path works when the peer's frame gets through: the chat is back, and what is
    // unacknowledged goes again (the peer shows it once).
    carry(alice_sign, &mut bob, b_conn);
    let (resent, events) = drain(&mut bob);
    assert!(events.contains(&ClientEvent::PeerConnected("alice".into())));
    assert_eq!(bob.peer_status("alice"), Some(PeerStatus::Connected));
    carry([first_copy, resent].concat(), &mut alice, a_conn);
    assert_eq!(shown(&drain(&mut alice).1, "bob"), ["on the move"]);
}

#[test]
fn a_restart_in_place_that_does_not_work_gives_way_to_a_new_connection() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    file_under_way(&mut alice, "bob");
    alice.handle_transport(a_conn, TransportEvent::StateChanged(PeerStatus::Failed), T0);
    assert_eq!(drain(&mut alice).0, [Action::RestartIce { conn: a_conn }]);
    let at = alice.poll_timeout().expect("the restart has a deadline");
    // docs/PROTOCOL.md: "when that has not worked within 3 s".
    assert_eq!(at, T0 + 3_000);
    alice.handle_timeout(at);
    let (actions, _) = drain(&mut alice);
    assert_eq!(actions[0], Action::ClosePeer { conn: a_conn });
    assert_eq!(offers(&actions), 1, "a new connection at once");
}

/// `me` calls `peer`, a peerchat build from before recovery (acknowledgements and files,
/// no `recovery`), and the chat opens; returns the connection.
fn connected_without_recovery(me: &mut ClientMachine, peer: &str) -> ConnId {
    me.connect_to_peer(peer, T0).unwrap();
    let conn = conn_of(&drain(me).0);
    me.handle_transport(conn, TransportEvent::LocalDescription(sdp("aaaa")), T0);
    drain(me);
    deliver(
        me,
        &SignalMessage::SignalAnswer {
            seal: None,
            from: peer.into(),
            answer: SessionDescription {
                kind: SdpKind::Answer,
                sdp: sdp("bbbb"),
            },
            peerchat: Some(Capabilities {
                version: PROTOCOL_VERSION,
                features: vec![
                    protocol::FEATURE_ACKS.into(),
                    protocol::FEATURE_FILES.into(),
                ],
                run: Some(format!("run-{peer}")),
                answers: None,
            }),
        },
    );
    me.handle_transport(conn, TransportEvent::ChannelOpen, T0);
    drain(me);
    conn
}

#[test]
fn only_peers_that_announce_recovery_are_recovered() {
    let mut alice = online("alice");
    let a_conn = connected_without_recovery(&mut alice, "bob");
    alice.network_changed(T0);
    let (actions, _) = drain(&mut alice);
    assert_eq!(
        actions,
        [Action::RestartSignaling],
        "the chat is left to ICE"
    );
    alice.handle_transport(a_conn, TransportEvent::StateChanged(PeerStatus::Failed), T0);
    let (_, events) = drain(&mut alice);
    assert_eq!(ended_why(&events, "bob"), Some(ChatEnd::ConnectionLost));
}

#[test]
fn a_restarted_peer_numbers_its_messages_anew() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    alice.send_message("bob", "first run").unwrap();
    carry(drain(&mut alice).0, &mut bob, b_conn);
    drain(&mut bob);
    // Alice's app starts again (a new run, ids from 1) and offers while Bob still chats.
    let mut restarted = ClientMachine::new("alice", "session-alice-2").unwrap();
    restarted.handle_signaling(SignalingInput::Connected, T0);
    restarted.handle_signaling(SignalingInput::Subscribed, T0);
    restarted.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    drain(&mut restarted);
    restarted.connect_to_peer("bob", T0).unwrap();
    let a_conn = conn_of(&drain(&mut restarted).0);
    restarted.handle_transport(a_conn, TransportEvent::LocalDescription(sdp("eeee")), T0);
    relay(drain(&mut restarted).0, &mut bob);
    let b_new = conn_of(&drain(&mut bob).0);
    bob.handle_transport(b_new, TransportEvent::LocalDescription(sdp("ffff")), T0);
    relay(drain(&mut bob).0, &mut restarted);
    restarted.handle_transport(a_conn, TransportEvent::ChannelOpen, T0);
    bob.handle_transport(b_new, TransportEvent::ChannelOpen, T0);
    drain(&mut restarted);
    drain(&mut bob);
    restarted.send_message("bob", "second run").unwrap();
    carry(drain(&mut restarted).0, &mut bob, b_new);
    let (_, events) = drain(&mut bob);
    assert_eq!(
        shown(&events, "alice"),
        ["second run"],
        "id 1 again, not a duplicate"
    );
}

pub(super) fn presence(m: &mut ClientMachine, user: &str, online: bool) {
    let record = SignalMessage::Presence(Presence {
        from: user.into(),
        session: format!("session-{user}"),
        online,
        since: None,
    });
    m.handle_signaling(
        SignalingInput::Message {
            topic: presence_topic(user),
            payload: encode(&record),
        },
        T0,
    );
}

#[test]
fn a_lost_path_to_a_peer_without_recovery_that_left_the_broker_ends_the_chat() {
    // Presence first, then the path drops.
    let mut alice = online("alice");
    let a_conn = connected_without_recovery(&mut alice, "bob");
    presence(&mut alice, "bob", false);
    assert_eq!(
        alice.peer_status("bob"),
        Some(PeerStatus::Connected),
        "P2P may outlive the broker"
    );
    alice.handle_transport(
        a_conn,
        TransportEvent::StateChanged(PeerStatus::Disconnected),
        T0,
    );
    let (actions, events) = drain(&mut alice);
    assert_eq!(actions, [Action::ClosePeer { conn: a_conn }]);
    assert_eq!(ended_why(&events, "bob"), Some(ChatEnd::PeerOffline));

    // The path drops first, then presence says the peer left.
    let mut carol = online("carol");
    let c_conn = connected_without_recovery(&mut carol, "dave");
    carol.handle_transport(
        c_conn,
        TransportEvent::StateChanged(PeerStatus::Disconnected),
        T0,
    );
    drain(&mut carol);
    presence(&mut carol, "dave", false);
    let (actions, events) = drain(&mut carol);
    assert_eq!(actions, [Action::ClosePeer { conn: c_conn }]);
    assert_eq!(ended_why(&events, "dave"), Some(ChatEnd::PeerOffline));
}

#[test]
fn disconnect_closes_chats_and_leaves_cleanly() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    alice.disconnect();
    let (actions, events) = drain(&mut alice);
    assert!(
        matches!(&actions[0], Action::SendText { conn, .. } if *conn == a_conn),
        "bye"
    );
    let actions = &actions[1..];
    assert_eq!(actions[0], Action::ClosePeer { conn: a_conn });
    assert!(
        matches!(&actions[1], Action::Publish { topic, payload, retain: true, .. }
        if *topic == presence_topic("alice")
        && matches!(protocol::decode(payload), Ok(SignalMessage::Presence(p)) if !p.online))
    );
    assert_eq!(actions[2], Action::CloseSignaling);
    assert_eq!(ended_why(&events, "bob"), Some(ChatEnd::Closed));
}

#[test]
fn a_peer_that_offers_again_replaces_its_old_connection() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    // Alice restarted and offers again.
    deliver(
        &mut bob,
        &SignalMessage::SignalOffer {
            seal: None,
            from: "alice".into(),
            offer: SessionDescription {
                kind: SdpKind::Offer,
                sdp: sdp("zzzz"),
            },
            peerchat: None,
        },
    );
    let (actions, _) = drain(&mut bob);
    assert_eq!(actions[0], Action::ClosePeer { conn: b_conn });
    assert!(matches!(&actions[1], Action::AcceptOffer { sdp: s, .. } if *s == sdp("zzzz")));
}

// ---- Bad input -------------------------------------------------------------------------

#[test]
fn malformed_oversized_and_spoofed_signaling_gives_errors_not_panics() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    connected_pair(&mut alice, &mut bob);
    let topic = incoming_topic("alice");
    let inputs: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"[]".to_vec(),
        b"\xff\xfe".to_vec(),
        br#"{"type":"signal-offer","from":"mallory"}"#.to_vec(),
        br#"{"type":"signal-answer","from":"mallory","answer":{"type":"answer","sdp":""}}"#
            .to_vec(),
        vec![b'x'; crate::protocol::MAX_SIGNAL_BYTES + 1],
    ];
    for payload in inputs {
        alice.handle_signaling(
            SignalingInput::Message {
                topic: topic.clone(),
                payload,
            },
            T0,
        );
        let (actions, events) = drain(&mut alice);
        assert!(actions.is_empty());
        assert!(
            matches!(events.as_slice(), [ClientEvent::Error(_)]),
            "{events:?}"
        );
    }
    // The chat with Bob is untouched.
    assert_eq!(alice.peer_status("bob"), Some(PeerStatus::Connected));
    assert!(alice.send_message("bob", "still fine").is_ok());
}

#[test]
fn unknown_types_are_ignored_quietly() {
    let mut alice = online("alice");
    alice.handle_signaling(
        SignalingInput::Message {
            topic: incoming_topic("alice"),
            payload: br#"{"type":"typing","from":"bob"}"#.to_vec(),
        },
        T0,
    );
    assert_eq!(drain(&mut alice), (vec![], vec![]));
}

#[test]
fn messages_claiming_to_be_from_ourselves_are_ignored() {
    let mut alice = online("alice");
    deliver(
        &mut alice,
        &SignalMessage::SignalOffer {
            seal: None,
            from: "alice".into(),
            offer: SessionDescription {
                kind: SdpKind::Offer,
                sdp: sdp("x"),
            },
            peerchat: None,
        },
    );
    assert_eq!(drain(&mut alice), (vec![], vec![]));
}

#[test]
fn presence_record_for_another_name_is_refused() {
    let mut alice = online("alice");
    alice.watch_presence("bob").unwrap();
    let forged = SignalMessage::Presence(Presence {
        from: "mallory".into(),
        session: "m".into(),
        online: false,
        since: None,
    });
    alice.handle_signaling(
        SignalingInput::Message {
            topic: presence_topic("bob"),
            payload: encode(&forged),
        },
        T0,
    );
    let (_, events) = drain(&mut alice);
    assert!(matches!(events.as_slice(), [ClientEvent::Error(_)]));
    assert!(
        alice.connect_to_peer("bob", T0).is_ok(),
        "bob not marked offline"
    );
}

#[test]
fn a_flood_of_candidates_from_unknown_peers_is_bounded() {
    let mut alice = online("alice");
    for peer in 0..(MAX_EARLY_PEERS + 5) {
        for n in 0..100u8 {
            deliver(
                &mut alice,
                &SignalMessage::SignalCandidate {
                    seal: None,
                    from: format!("peer{peer}"),
                    candidate: candidate(n, None),
                },
            );
        }
    }
    assert!(alice.early_candidates.len() <= MAX_EARLY_PEERS);
    assert!(
        alice
            .early_candidates
            .values()
            .all(|q| q.len() <= peer::MAX_PENDING_CANDIDATES)
    );
}

// ---- Files -------------------------------------------------------------------------------

/// The chat-channel actions among `actions`.
pub(super) fn chat_frames(actions: Vec<Action>) -> Vec<Action> {
    (actions.into_iter())
        .filter(|a| matches!(a, Action::SendText { .. } | Action::SendData { .. }))
        .collect()
}

/// Hands the chat-channel actions one machine produced to the other, as the channel would.
pub(super) fn carry(actions: Vec<Action>, to: &mut ClientMachine, conn: ConnId) {
    for action in actions {
        match action {
            Action::SendText { text, .. } => {
                to.handle_transport(conn, TransportEvent::ChannelMessage(text), T0);
            }
            Action::SendData { data, .. } => {
                to.handle_transport(conn, TransportEvent::ChannelData(data), T0);
            }
            other => panic!("not a chat-channel action: {other:?}"),
        }
    }
}

#[test]
fn a_file_reaches_a_peerchat_peer_in_chunks_and_is_acknowledged() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, b_conn) = connected_pair(&mut alice, &mut bob);
    let image: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let id = alice
        .send_file("bob", "cat.png", "image/png", &image)
        .unwrap();
    let (actions, _) = drain(&mut alice);
    let chunks = actions
        .iter()
        .filter(|a| matches!(a, Action::SendData { .. }))
        .count();
    assert_eq!(chunks, 3, "100 000 bytes in 48 KiB chunks");
    carry(actions, &mut bob, b_conn);

    let (actions, events) = drain(&mut bob);
    let file = events
        .iter()
        .find_map(|e| match e {
            ClientEvent::File {
                from,
                name,
                mime,
                data,
                ..
            } => Some((from.clone(), name.clone(), mime.clone(), data.clone())),
            _ => None,
        })
        .expect("bob gets the file");
    assert_eq!(
        file,
        ("alice".into(), "cat.png".into(), "image/png".into(), image)
    );
    carry(actions, &mut alice, a_conn);
    assert!(drain(&mut alice).1.contains(&ClientEvent::Delivered {
        peer: "bob".into(),
        id
    }));
}

#[test]
fn a_large_file_reports_progress_on_both_sides() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, b_conn) = connected_pair(&mut alice, &mut bob);
    let id = alice
        .send_file(
            "bob",
            "big.bin",
            "application/octet-stream",
            &vec![7; 600 * 1024],
        )
        .unwrap();
    carry(drain(&mut alice).0, &mut bob, b_conn);
    let (actions, events) = drain(&mut bob);
    let incoming: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Transfer {
                incoming: true,
                done,
                ..
            } => Some(*done),
            _ => None,
        })
        .collect();
    // Progress once 256 KiB more than last time has come (at a chunk's end), and at the end.
    let chunk = protocol::FILE_CHUNK_BYTES as u64;
    let total = 600 * 1024;
    let mut steps = Vec::new();
    let mut received = 0;
    while received + chunk < total {
        received += chunk;
        if received - steps.last().copied().unwrap_or(0) >= 256 * 1024 {
            steps.push(received);
        }
    }
    let expected: Vec<u64> = [0]
        .into_iter()
        .chain(steps.clone())
        .chain([total])
        .collect();
    assert_eq!(incoming, expected);
    carry(actions, &mut alice, a_conn);
    let outgoing: Vec<u64> = drain(&mut alice)
        .1
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Transfer {
                incoming: false,
                id: sent,
                done,
                total,
                ..
            } if *sent == id && *total == 600 * 1024 => Some(*done),
            _ => None,
        })
        .collect();
    assert_eq!(outgoing, steps);
}

#[test]
fn files_are_refused_toward_original_clients_and_over_the_limit() {
    let mut alice = online("alice");
    connected_to_original(&mut alice);
    assert_eq!(
        alice.send_file("bob", "a.png", "image/png", b"x"),
        Err(ClientError::FilesUnsupported("bob".into()))
    );
    let (mut carol, mut dave) = (online("carol"), online("dave"));
    connected_pair(&mut carol, &mut dave);
    let too_big = vec![0; protocol::MAX_FILE_BYTES as usize + 1];
    assert!(matches!(
        carol.send_file("dave", "a.bin", "application/octet-stream", &too_big),
        Err(ClientError::FileTooLarge { .. })
    ));
    assert!(drain(&mut carol).0.is_empty());
}

#[test]
fn bad_file_traffic_gives_errors_and_keeps_the_chat() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    let errors = |m: &mut ClientMachine| {
        drain(m)
            .1
            .into_iter()
            .filter(|e| matches!(e, ClientEvent::Error(_)))
            .count()
    };
    // A chunk of a file never announced, and one too short to name any.
    bob.handle_transport(
        b_conn,
        TransportEvent::ChannelData(protocol::encode_chunk(3, b"x")),
        T0,
    );
    bob.handle_transport(b_conn, TransportEvent::ChannelData(vec![1, 2]), T0);
    assert_eq!(errors(&mut bob), 2);
    // A file that grows past the size it announced is dropped.
    let announce = |id, size| {
        ChatFrame::File {
            id,
            name: "f".into(),
            mime: "text/plain".into(),
            size,
        }
        .encode()
    };
    bob.handle_transport(b_conn, TransportEvent::ChannelMessage(announce(4, 2)), T0);
    bob.handle_transport(
        b_conn,
        TransportEvent::ChannelData(protocol::encode_chunk(4, b"abc")),
        T0,
    );
    assert_eq!(errors(&mut bob), 1);
    // Too many at once, or too big, are refused.
    for id in 10..10 + chat::MAX_INCOMING_FILES as u64 {
        bob.handle_transport(b_conn, TransportEvent::ChannelMessage(announce(id, 5)), T0);
    }
    assert_eq!(errors(&mut bob), 0);
    bob.handle_transport(b_conn, TransportEvent::ChannelMessage(announce(99, 5)), T0);
    let huge = protocol::MAX_FILE_BYTES + 1;
    bob.handle_transport(
        b_conn,
        TransportEvent::ChannelMessage(announce(98, huge)),
        T0,
    );
    assert_eq!(errors(&mut bob), 2);
    assert_eq!(bob.peer_status("alice"), Some(PeerStatus::Connected));
}

#[test]
fn unacknowledged_files_are_capped_so_the_sender_holds_at_most_one_largest_file() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    connected_pair(&mut alice, &mut bob);
    let big = vec![0; protocol::MAX_FILE_BYTES as usize * 3 / 4];
    alice
        .send_file("bob", "one.bin", "application/octet-stream", &big)
        .unwrap();
    assert_eq!(
        alice.send_file("bob", "two.bin", "application/octet-stream", &big),
        Err(ClientError::TransfersPending("bob".into()))
    );
}

/// The chunks' bytes in `actions`, and the chat-channel actions themselves.
fn chunk_bytes(actions: &[Action]) -> u64 {
    actions
        .iter()
        .map(|a| match a {
            Action::SendData { data, .. } => data.len() as u64,
            _ => 0,
        })
        .sum()
}

#[test]
fn a_large_file_goes_out_as_the_send_buffer_drains() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, b_conn) = connected_pair(&mut alice, &mut bob);
    let data: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    alice
        .send_file("bob", "big.bin", "application/octet-stream", &data)
        .unwrap();
    let chunk = (protocol::FILE_CHUNK_BYTES + 8) as u64;
    let all = data.len() as u64 + 8 * data.len().div_ceil(protocol::FILE_CHUNK_BYTES) as u64;
    let (first, _) = drain(&mut alice);
    let mut handed = chunk_bytes(&first);
    let high = chat::SEND_BUFFER_HIGH;
    let low = u64::from(SEND_BUFFER_LOW);
    assert!(
        (high..high + chunk).contains(&handed),
        "the first batch fills the buffer to the high mark: {handed}"
    );
    let mut to_bob = first;

    // A report from before the last chunks were written counts them as still buffered.
    alice.handle_transport(
        a_conn,
        TransportEvent::SendBufferLow {
            buffered: low,
            chunk_bytes: handed - high / 2,
        },
        T0,
    );
    let (stale, _) = drain(&mut alice);
    assert!(
        chunk_bytes(&stale) <= high - low - high / 2 + chunk,
        "a stale report lets out only what truly fits: {}",
        chunk_bytes(&stale)
    );
    handed += chunk_bytes(&stale);
    to_bob.extend(stale);

    // Each drain to the low mark lets out one buffer's worth more, until all is out.
    let mut reports = 0;
    while handed < all {
        alice.handle_transport(
            a_conn,
            TransportEvent::SendBufferLow {
                buffered: low,
                chunk_bytes: handed,
            },
            T0,
        );
        let (batch, _) = drain(&mut alice);
        let bytes = chunk_bytes(&batch);
        if bytes == 0 {
            break;
        }
        assert!(bytes <= high - low + chunk, "one batch: {bytes}");
        handed += bytes;
        to_bob.extend(batch);
        reports += 1;
    }
    assert!(reports >= 5, "20 MiB took {reports} drains");
    // Every chunk of the file, each with its 8-byte header.
    assert_eq!(handed, all);
    carry(to_bob, &mut bob, b_conn);
    let (_, events) = drain(&mut bob);
    let received = events.iter().find_map(|e| match e {
        ClientEvent::File { data, .. } => Some(data),
        _ => None,
    });
    assert!(received == Some(&data), "bob gets the file whole");
}

#[test]
fn a_peer_may_not_announce_more_than_one_largest_file_at_once() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    drain(&mut bob);
    let half = protocol::MAX_FILE_BYTES / 2 + 1;
    for (id, expected_errors) in [(1, 0), (2, 1)] {
        let announce = ChatFrame::File {
            id,
            name: "half.bin".into(),
            mime: "application/octet-stream".into(),
            size: half,
        };
        bob.handle_transport(
            b_conn,
            TransportEvent::ChannelMessage(announce.encode()),
            T0,
        );
        let errors = drain(&mut bob)
            .1
            .iter()
            .filter(|e| matches!(e, ClientEvent::Error(_)))
            .count();
        assert_eq!(errors, expected_errors, "file {id}");
    }
}

#[test]
fn a_refused_file_costs_one_error_not_one_per_chunk() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    let announce = ChatFrame::File {
        id: 1,
        name: "huge".into(),
        mime: "application/octet-stream".into(),
        size: protocol::MAX_FILE_BYTES + 1,
    };
    bob.handle_transport(
        b_conn,
        TransportEvent::ChannelMessage(announce.encode()),
        T0,
    );
    for _ in 0..10 {
        let chunk = protocol::encode_chunk(1, &[0; 1024]);
        bob.handle_transport(b_conn, TransportEvent::ChannelData(chunk), T0);
    }
    let errors = drain(&mut bob)
        .1
        .into_iter()
        .filter(|e| matches!(e, ClientEvent::Error(_)))
        .count();
    assert_eq!(errors, 1);
}

#[test]
fn binary_from_an_original_client_is_shown_as_text() {
    let mut alice = online("alice");
    let conn = connected_to_original(&mut alice);
    alice.handle_transport(
        conn,
        TransportEvent::ChannelData(b"hi in bytes".to_vec()),
        T0,
    );
    assert_eq!(
        drain(&mut alice).1,
        [ClientEvent::Message {
            from: "bob".into(),
            text: "hi in bytes".into()
        }]
    );
}

#[test]
fn a_path_is_reported_only_while_the_chat_is_connected() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    let path = crate::path::PeerPath {
        kind: crate::path::PathKind::Direct,
        rtt_ms: Some(0.3),
    };
    alice.handle_transport(
        a_conn,
        TransportEvent::StateChanged(PeerStatus::Connected),
        T0,
    );
    alice.handle_transport(a_conn, TransportEvent::Path(path), T0);
    assert!(
        drain(&mut alice)
            .1
            .iter()
            .any(|e| matches!(e, ClientEvent::Path { .. }))
    );
    alice.handle_transport(
        a_conn,
        TransportEvent::StateChanged(PeerStatus::Disconnected),
        T0,
    );
    alice.handle_transport(a_conn, TransportEvent::Path(path), T0);
    assert!(
        !drain(&mut alice)
            .1
            .iter()
            .any(|e| matches!(e, ClientEvent::Path { .. }))
    );
}

// ---- Trust -----------------------------------------------------------------------------

/// Online, with an identity key from `seed` and a wall clock.
pub(super) fn sealing(name: &str, seed: u8) -> ClientMachine {
    let mut m = online(name);
    m.set_identity(crate::identity::Identity::from_seed([seed; 32]));
    m.handle_wall_clock(T0, WALL0);
    m
}

/// The wall clock at machine time `T0` in trust tests.
pub(super) const WALL0: u64 = 1_764_000_000_000;

/// Alice's sealed offer to Bob, as published.
pub(super) fn sealed_offer(alice: &mut ClientMachine) -> Vec<Action> {
    alice.connect_to_peer("bob", T0).unwrap();
    let conn = conn_of(&drain(alice).0);
    let sdp = format!("{}a=fingerprint:sha-256 AA:BB\r\n", sdp("aaaa"));
    alice.handle_transport(conn, TransportEvent::LocalDescription(sdp), T0);
    drain(alice).0
}

pub(super) fn untrusted(events: &[ClientEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Error(ClientError::Untrusted { reason, .. }) => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Rewrites the one publish in `actions` with `edit`, as someone relaying it could.
pub(super) fn tampered(actions: &[Action], edit: impl Fn(String) -> String) -> Vec<Action> {
    actions
        .iter()
        .map(|a| match a {
            Action::Publish {
                topic,
                payload,
                retain,
                delivery,
            } => Action::Publish {
                topic: topic.clone(),
                payload: edit(String::from_utf8(payload.clone()).unwrap()).into_bytes(),
                retain: *retain,
                delivery: *delivery,
            },
            other => other.clone(),
        })
        .collect()
}

#[test]
fn a_sealed_offer_is_accepted_pinned_and_both_sides_see_one_safety_number() {
    let (mut alice, mut bob) = (sealing("alice", 1), sealing("bob", 2));
    let offer = sealed_offer(&mut alice);
    relay(offer, &mut bob);
    let (actions, events) = drain(&mut bob);
    // The key is pinned once the offer is accepted, and kept where it outlives the app.
    let kept = |a: &Action| matches!(a, Action::KeepPin { peer, pin: Some(_) } if peer == "alice");
    assert!(actions.iter().any(kept), "{actions:?}");
    let actions: Vec<Action> = actions.into_iter().filter(|a| !kept(a)).collect();
    assert!(
        matches!(actions[0], Action::AcceptOffer { .. }),
        "{actions:?}"
    );
    let announced = events.iter().find_map(|e| match e {
        ClientEvent::PeerIdentity {
            peer,
            safety_number,
            verified: false,
            ..
        } if peer == "alice" => safety_number.clone(),
        _ => None,
    });
    let b_conn = conn_of(&actions);
    bob.handle_transport(b_conn, TransportEvent::LocalDescription(sdp("bbbb")), T0);
    relay(drain(&mut bob).0, &mut alice);
    drain(&mut alice);
    assert!(announced.is_some());
    assert_eq!(alice.safety_number("bob"), announced);
    assert_eq!(bob.safety_number("alice"), announced);
    bob.mark_verified("alice").unwrap();
    assert!(bob.pinned_key("alice").unwrap().verified);
}

#[test]
fn altered_spoofed_replayed_or_misaddressed_signaling_is_refused() {
    let mut alice = sealing("alice", 1);
    let offer = sealed_offer(&mut alice);
    type Edit = fn(String) -> String;
    let cases: [(&str, Edit); 3] = [
        ("fingerprint", |p| p.replace("AA:BB", "EE:FF")),
        ("from", |p| {
            p.replace("\"from\":\"alice\"", "\"from\":\"carol\"")
        }),
        ("recipient", |p| {
            p.replace("\"to\":\"bob\"", "\"to\":\"dan\"")
        }),
    ];
    for (what, edit) in cases {
        let mut bob = sealing("bob", 2);
        relay(tampered(&offer, edit), &mut bob);
        let (actions, events) = drain(&mut bob);
        assert!(actions.is_empty(), "{what}: {actions:?}");
        assert_eq!(untrusted(&events).len(), 1, "{what}: {events:?}");
    }
    // The untouched offer, twice: the second is a replay.
    let mut bob = sealing("bob", 2);
    relay(offer.clone(), &mut bob);
    drain(&mut bob);
    relay(offer, &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(actions.is_empty());
    assert!(untrusted(&events)[0].contains("replay"), "{events:?}");
}

#[test]
fn a_changed_key_and_an_unsealed_message_from_a_sealing_name_are_refused() {
    let (mut alice, mut bob) = (sealing("alice", 1), sealing("bob", 2));
    relay(sealed_offer(&mut alice), &mut bob);
    drain(&mut bob);
    // Someone else's key under Alice's name.
    let mut impostor = sealing("alice", 66);
    relay(sealed_offer(&mut impostor), &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(actions.is_empty());
    assert!(events.contains(&ClientEvent::Error(ClientError::KeyChanged("alice".into()))));
    // Alice's name without a seal at all.
    let mut unsealed = online("alice");
    unsealed.handle_wall_clock(T0, WALL0);
    relay(sealed_offer(&mut unsealed), &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(actions.is_empty());
    assert!(untrusted(&events)[0].contains("unsealed"), "{events:?}");
    // A name never seen sealed: an original client, welcome unverified.
    let mut carol_bob = sealing("bob", 2);
    let mut carol = online("carol");
    carol.connect_to_peer("bob", T0).unwrap();
    let conn = conn_of(&drain(&mut carol).0);
    carol.handle_transport(conn, TransportEvent::LocalDescription(sdp("cccc")), T0);
    relay(drain(&mut carol).0, &mut carol_bob);
    let (actions, events) = drain(&mut carol_bob);
    assert!(matches!(actions[0], Action::AcceptOffer { .. }));
    assert!(untrusted(&events).is_empty());
}

#[test]
fn a_stale_seal_is_refused() {
    let mut alice = sealing("alice", 1);
    let offer = sealed_offer(&mut alice);
    let mut bob = sealing("bob", 2);
    // Bob's clock is an hour ahead of the seal.
    bob.handle_wall_clock(T0, WALL0 + 3_600_000);
    relay(offer, &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(actions.is_empty());
    assert!(untrusted(&events)[0].contains("too old"), "{events:?}");
}

// ---- Presence per contact --------------------------------------------------------------

/// The contacts' presence records the machine (un)subscribed, in order.
fn watch_changes(m: &mut ClientMachine) -> Vec<String> {
    let me = m.username().to_owned();
    let (actions, _, _) = drain_stored(m);
    actions
        .iter()
        .filter(|a| is_contact_watch(&me, a))
        .map(|a| match a {
            Action::Subscribe { topic, .. } => format!("+{topic}"),
            Action::Unsubscribe { topic } => format!("-{topic}"),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn a_peer_is_watched_while_there_is_a_chat_with_it() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    alice.connect_to_peer("bob", T0).unwrap();
    assert_eq!(watch_changes(&mut alice), ["+peerchat/presence/bob"]);
    alice.close_peer("bob").unwrap();
    assert_eq!(watch_changes(&mut alice), ["-peerchat/presence/bob"]);
    // The app's contacts stay watched whatever becomes of their chats.
    alice.watch_presence("bob").unwrap();
    connected_pair(&mut alice, &mut bob);
    alice.close_peer("bob").unwrap();
    assert!(watch_changes(&mut alice).is_empty());
    alice.unwatch_presence("bob");
    assert_eq!(watch_changes(&mut alice), ["-peerchat/presence/bob"]);
}

#[test]
fn every_contact_is_watched_again_after_a_reconnect() {
    let mut alice = online("alice");
    for peer in ["bob", "carol"] {
        alice.watch_presence(peer).unwrap();
    }
    watch_changes(&mut alice);
    alice.handle_signaling(SignalingInput::Lost, T0);
    assert!(
        watch_changes(&mut alice).is_empty(),
        "nothing while the broker is away"
    );
    alice.watch_presence("dave").unwrap();
    alice.handle_signaling(SignalingInput::Connected, T0 + 1);
    assert_eq!(
        watch_changes(&mut alice),
        [
            "+peerchat/presence/bob",
            "+peerchat/presence/carol",
            "+peerchat/presence/dave"
        ]
    );
}

#[test]
fn presence_of_strangers_is_ignored() {
    let mut alice = online("alice");
    for n in 0..5_000 {
        let user = format!("stranger{n}");
        let record = SignalMessage::Presence(Presence {
            from: user.clone(),
            session: "s".into(),
            online: false,
            since: None,
        });
        alice.handle_signaling(
            SignalingInput::Message {
                topic: presence_topic(&user),
                payload: encode(&record),
            },
            T0,
        );
    }
    assert!(drain(&mut alice).1.is_empty());
    assert!(alice.presence.is_empty(), "nothing remembered of strangers");
    assert!(alice.connect_to_peer("stranger1", T0).is_ok());
}

#[test]
fn contacts_beyond_the_cap_are_not_watched() {
    let mut alice = online("alice");
    for n in 0..MAX_WATCHED + 10 {
        alice.watch_presence(&format!("peer{n:05}")).unwrap();
    }
    let subscribed = watch_changes(&mut alice);
    assert_eq!(subscribed.len(), MAX_WATCHED);
}

/// A presence record saying `gone` is away, as a plain broker keeps it.
fn away_record(alice: &mut ClientMachine, at: u64) {
    let record = SignalMessage::Presence(Presence {
        from: "gone".into(),
        session: "g".into(),
        online: false,
        since: None,
    });
    alice.handle_signaling(
        SignalingInput::Message {
            topic: presence_topic("gone"),
            payload: encode(&record),
        },
        at,
    );
}

#[test]
fn a_call_to_a_peer_whose_record_says_away_fails_soon_as_offline() {
    let mut alice = online("alice");
    alice.connect_to_peer("gone", T0).unwrap();
    drain(&mut alice);
    away_record(&mut alice, T0 + 1);
    let events = drain(&mut alice).1;
    assert!(
        !events.iter().any(|e| matches!(e, ClientEvent::Error(_))),
        "the record may be stale: {events:?}"
    );
    assert_eq!(alice.peer_status("gone"), Some(PeerStatus::Connecting));
    // docs/PROTOCOL.md: "fails as `PeerOffline` ... unless the peer answers within 3 s".
    assert_eq!(alice.poll_timeout(), Some(T0 + 1 + 3_000));
    alice.handle_timeout(T0 + 1 + 3_000);
    let (actions, events) = drain(&mut alice);
    assert!(events.contains(&ClientEvent::Error(ClientError::PeerOffline("gone".into()))));
    assert_eq!(alice.peer_status("gone"), None);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::ClosePeer { .. }))
    );
}

#[test]
fn a_peer_that_answers_despite_a_stale_away_record_gets_its_chat() {
    // An original client holds the name now; the record is a former holder's.
    let mut alice = online("alice");
    alice.connect_to_peer("gone", T0).unwrap();
    let conn = conn_of(&drain(&mut alice).0);
    alice.handle_transport(conn, TransportEvent::LocalDescription(sdp("o1o1")), T0);
    drain(&mut alice);
    away_record(&mut alice, T0 + 1);
    let answer = SignalMessage::SignalAnswer {
        from: "gone".into(),
        answer: SessionDescription {
            kind: SdpKind::Answer,
            sdp: sdp("a1a1"),
        },
        peerchat: None,
        seal: None,
    };
    alice.handle_signaling(
        SignalingInput::Message {
            topic: protocol::incoming_topic("alice"),
            payload: encode(&answer),
        },
        T0 + 2,
    );
    alice.handle_transport(conn, TransportEvent::ChannelOpen, T0 + 3);
    let events = drain(&mut alice).1;
    assert!(
        events.contains(&ClientEvent::PeerConnected("gone".into())),
        "{events:?}"
    );
    alice.handle_timeout(T0 + 10 * presence::AWAY_GRACE_MS);
    assert_eq!(alice.peer_status("gone"), Some(PeerStatus::Connected));
}

// ---- The original server ---------------------------------------------------------------

fn ack(success: bool) -> SignalMessage {
    SignalMessage::RegisterAck {
        from: "server".into(),
        success,
        message: if success {
            "Registration successful".into()
        } else {
            "Username taken!".into()
        },
        reason: None,
    }
}

/// Alice on the original server: registered under her run's id, then continuing under her
/// name as client id.
fn on_original_server() -> ClientMachine {
    let mut m = ClientMachine::new("alice", "s1").unwrap();
    m.handle_signaling(SignalingInput::Connected, T0);
    m.handle_signaling(SignalingInput::Subscribed, T0);
    deliver(&mut m, &ack(true));
    let (actions, events) = drain(&mut m);
    assert!(actions.contains(&Action::ConnectAs {
        client_id: "alice".into()
    }));
    // Online once the connection under the name is subscribed, not before, even past the
    // grace a plain broker gets.
    assert!(!events.contains(&ClientEvent::Registered));
    m.handle_timeout(T0 + registration::PRESENCE_GRACE_MS + 1);
    assert!(!m.is_online());
    m.handle_signaling(SignalingInput::Connected, T0 + 400);
    m.handle_signaling(SignalingInput::Subscribed, T0 + 401);
    m
}

#[test]
fn on_the_original_server_the_name_becomes_the_client_id_without_registering_twice() {
    let mut alice = on_original_server();
    let (actions, _) = drain(&mut alice);
    let registers = (actions.iter())
        .filter(|a| matches!(a, Action::Publish { topic, .. } if topic == "system/register"))
        .count();
    assert_eq!(registers, 0, "the name is registered already: {actions:?}");
    assert!(alice.is_online());
}

#[test]
fn after_a_loss_the_original_server_is_asked_again_under_the_runs_id() {
    let mut alice = on_original_server();
    drain(&mut alice);
    alice.handle_signaling(SignalingInput::Lost, T0 + 20);
    let (actions, _) = drain(&mut alice);
    assert!(actions.contains(&Action::ConnectAs {
        client_id: alice.client_id()
    }));
    alice.handle_signaling(SignalingInput::Connected, T0 + 300);
    alice.handle_signaling(SignalingInput::Subscribed, T0 + 301);
    let (actions, _) = drain(&mut alice);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Publish { topic, .. } if topic == "system/register"))
    );
    // Someone took the name meanwhile: the user hears it, and the client stops using it.
    deliver(&mut alice, &ack(false));
    let (actions, events) = drain(&mut alice);
    assert!(events.contains(&ClientEvent::Error(ClientError::NameLost("alice".into()))));
    assert!(actions.contains(&Action::CloseSignaling));
}

#[test]
fn acks_for_someone_elses_register_are_not_ours() {
    let mut alice = on_original_server();
    drain(&mut alice);
    // Another client trying our name is refused; the original server acks on our inbox.
    deliver(&mut alice, &ack(false));
    let (actions, events) = drain(&mut alice);
    assert!(
        events.is_empty() && actions.is_empty(),
        "{events:?} {actions:?}"
    );
    assert!(alice.is_online());
}

#[test]
fn a_register_ack_after_a_challenge_keeps_the_runs_client_id() {
    let mut m = ClientMachine::new("alice", "s1").unwrap();
    challenged_then_subscribed(&mut m, "n");
    deliver(&mut m, &ack(true));
    let (actions, events) = drain(&mut m);
    assert!(events.contains(&ClientEvent::Registered));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::ConnectAs { .. })),
        "{actions:?}"
    );
}

#[test]
fn a_refused_packet_from_the_broker_is_reported_with_its_reason() {
    let mut alice = online("alice");
    alice.handle_signaling(
        SignalingInput::BadPacket("payload of 1048576 bytes over the limit".into()),
        T0,
    );
    let (_, events) = drain(&mut alice);
    assert!(matches!(
        &events[..],
        [ClientEvent::Error(ClientError::BadBrokerPacket(reason))] if reason.contains("1048576")
    ));
}

// ---- Claims on plain brokers -------------------------------------------------------------

fn claim(session: &str) -> SignalMessage {
    SignalMessage::NameClaim {
        from: "alice".into(),
        session: session.into(),
    }
}

fn held(session: &str) -> SignalMessage {
    SignalMessage::NameHeld {
        from: "alice".into(),
        session: session.into(),
    }
}

#[test]
fn a_live_holder_answers_a_claim_and_the_claimant_is_refused() {
    let mut holder = online("alice");
    deliver(&mut holder, &claim("session-zzz"));
    let (actions, _) = drain(&mut holder);
    let answered = actions.iter().any(|a| {
        matches!(a,
        Action::Publish { topic, payload, .. } if topic == "alice/incoming"
            && matches!(protocol::decode(payload), Ok(SignalMessage::NameHeld { .. })))
    });
    assert!(answered, "{actions:?}");
    // Its own claim, echoed back by the broker, is nothing to answer.
    deliver(&mut holder, &claim("session-alice"));
    assert!(drain(&mut holder).0.is_empty());

    let mut claimant = ClientMachine::new("alice", "session-zzz").unwrap();
    claimant.handle_signaling(SignalingInput::Connected, T0);
    claimant.handle_signaling(SignalingInput::Subscribed, T0);
    deliver(&mut claimant, &held("session-alice"));
    let (_, events) = drain(&mut claimant);
    assert!(
        events.contains(&ClientEvent::RegistrationRefused(ClientError::NameTaken(
            "alice".into()
        )))
    );
}

#[test]
fn of_two_clients_joining_at_once_the_session_that_sorts_first_keeps_the_name() {
    let joining = |session: &str| {
        let mut m = ClientMachine::new("alice", session).unwrap();
        m.handle_signaling(SignalingInput::Connected, T0);
        m.handle_signaling(SignalingInput::Subscribed, T0);
        drain(&mut m);
        m
    };
    let (mut first, mut second) = (joining("a-session"), joining("b-session"));
    deliver(&mut first, &claim("b-session"));
    deliver(&mut second, &claim("a-session"));
    first.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    second.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    assert!(first.is_online());
    assert!(!second.is_online());
}

#[test]
fn the_record_of_a_user_gone_for_good_is_cleared_on_a_plain_broker() {
    let mut alice = online("alice");
    alice.handle_wall_clock(T0, 100 * registration::RECORD_LIFETIME_MS);
    for (user, since) in [("recent", 99), ("gone", 98)] {
        alice.watch_presence(user).unwrap();
        drain(&mut alice);
        let record = SignalMessage::Presence(Presence {
            from: user.into(),
            session: "s".into(),
            online: false,
            since: Some(since * registration::RECORD_LIFETIME_MS),
        });
        alice.handle_signaling(
            SignalingInput::Message {
                topic: presence_topic(user),
                payload: encode(&record),
            },
            T0,
        );
    }
    let (actions, _) = drain(&mut alice);
    let cleared: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish {
                topic,
                payload,
                retain: true,
                ..
            } if payload.is_empty() => Some(topic.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(cleared, ["peerchat/presence/gone"]);
    assert!(
        alice.connect_to_peer("gone", T0).is_err(),
        "still known to be away"
    );
}

#[test]
fn after_a_reconnect_to_peerchat_server_online_waits_for_the_name() {
    let mut m = ClientMachine::new("alice", "s1").unwrap();
    let challenge = SignalMessage::RegisterChallenge {
        from: "server".into(),
        nonce: "n".into(),
    };
    for round in 0..2 {
        m.handle_signaling(SignalingInput::Connected, T0);
        deliver(&mut m, &challenge);
        m.handle_signaling(SignalingInput::Subscribed, T0);
        assert!(
            !drain(&mut m)
                .1
                .contains(&ClientEvent::Signaling(SignalingState::Online)),
            "round {round}: online before the register-ack"
        );
        deliver(&mut m, &ack(true));
        let (_, events) = drain(&mut m);
        let expected = if round == 0 {
            ClientEvent::Registered
        } else {
            ClientEvent::Signaling(SignalingState::Online)
        };
        assert!(events.contains(&expected), "round {round}: {events:?}");
        m.handle_signaling(SignalingInput::Lost, T0);
        drain(&mut m);
    }
}
