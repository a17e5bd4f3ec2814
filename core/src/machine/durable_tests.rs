//! What survives a restart: the outbox goes again under the same run and ids, numbering
//! continues, and nothing already shown is shown twice.

use super::tests::{
    T0, carry, conn_of, connected_pair, deliver, drain, drain_stored, online, original_answer,
    presence, relay, sdp, shown,
};
use super::*;
use crate::event::ClientEvent;
use crate::protocol::{ChatFrame, MessageId};

/// What a store hands back after `ops`, written in order onto `saved`: the semantics every
/// platform store implements.
pub(super) fn apply(mut saved: SavedState, ops: &[StoreOp]) -> SavedState {
    for op in ops {
        match op.clone() {
            StoreOp::Numbering { run, next_message } => {
                saved.run = run;
                saved.next_message = saved.next_message.max(next_message);
            }
            StoreOp::Sent {
                peer,
                id,
                text,
                awaiting_ack,
            } => {
                saved.next_message = saved.next_message.max(id + 1);
                if awaiting_ack {
                    saved.outbox.entry(peer).or_default().push((id, text));
                }
            }
            StoreOp::Acknowledged { peer, upto } => {
                if let Some(waiting) = saved.outbox.get_mut(&peer) {
                    waiting.retain(|(id, _)| *id > upto);
                }
            }
            StoreOp::Received {
                peer,
                numbering: Some(last),
                ..
            } => {
                saved.received.insert(peer, last);
            }
            StoreOp::Received { .. } => {}
            StoreOp::Room { room, frame } => saved.rooms.entry(room).or_default().push(frame),
        }
    }
    saved
}

/// A client restarted from `saved`, online on a plain broker; returns it and what it did
/// on going online.
fn restarted(name: &str, saved: SavedState) -> (ClientMachine, Vec<Action>, Vec<StoreOp>) {
    let mut m = ClientMachine::resume(name, saved).unwrap();
    m.handle_signaling(SignalingInput::Connected, T0);
    m.handle_signaling(SignalingInput::Subscribed, T0);
    m.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    assert!(m.is_online());
    let (actions, _, stored) = drain_stored(&mut m);
    (m, actions, stored)
}

/// `offerer` offered on `o_conn`; `answerer` answers and both channels open. Returns the
/// answerer's connection and what each side sent when its channel opened.
fn answer_and_open(
    offerer: &mut ClientMachine,
    o_conn: ConnId,
    answerer: &mut ClientMachine,
) -> (ConnId, Vec<Action>, Vec<Action>) {
    offerer.handle_transport(o_conn, TransportEvent::LocalDescription(sdp("gggg")), T0);
    relay(drain(offerer).0, answerer);
    let a_conn = conn_of(&drain(answerer).0);
    answerer.handle_transport(a_conn, TransportEvent::LocalDescription(sdp("hhhh")), T0);
    relay(drain(answerer).0, offerer);
    drain(offerer);
    offerer.handle_transport(o_conn, TransportEvent::ChannelOpen, T0);
    answerer.handle_transport(a_conn, TransportEvent::ChannelOpen, T0);
    (a_conn, drain(offerer).0, drain(answerer).0)
}

fn sent_texts(actions: &[Action]) -> Vec<String> {
    (actions.iter())
        .filter_map(|a| match a {
            Action::SendText { text, .. } => match ChatFrame::decode(text) {
                Some(ChatFrame::Message { text, .. }) => Some(text),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn a_restarted_client_offers_by_itself_and_sends_its_outbox_once_in_order() {
    let mut alice = online("alice");
    let mut bob = ClientMachine::resume("bob", SavedState::fresh("session-bob")).unwrap();
    bob.handle_signaling(SignalingInput::Connected, T0);
    bob.handle_signaling(SignalingInput::Subscribed, T0);
    bob.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    let mut stored = drain_stored(&mut bob).2;
    let (a_conn, b_conn) = connected_pair(&mut alice, &mut bob);

    // "one" arrives and is acknowledged; "two" and "three" never leave (the path is gone).
    bob.send_message("alice", "one").unwrap();
    let (actions, _, ops) = drain_stored(&mut bob);
    stored.extend(ops);
    carry(actions, &mut alice, a_conn);
    assert_eq!(shown(&drain(&mut alice).1, "bob"), ["one"]);
    alice.handle_timeout(T0 + chat::ACK_DELAY_MS);
    carry(drain(&mut alice).0, &mut bob, b_conn);
    bob.send_message("alice", "two").unwrap();
    bob.send_message("alice", "three").unwrap();
    stored.extend(drain_stored(&mut bob).2);
    assert!(
        stored.contains(&StoreOp::Acknowledged {
            peer: "alice".into(),
            upto: 1
        }),
        "{stored:?}"
    );

    // Bob's process dies; what the store kept starts him again.
    let saved = apply(SavedState::default(), &stored);
    assert_eq!(saved.run, "session-bob");
    assert_eq!(saved.outbox["alice"].len(), 2);
    let (mut bob, actions, ops) = restarted("bob", saved);
    assert!(ops.contains(&StoreOp::Numbering {
        run: "session-bob".into(),
        next_message: 4
    }));
    let offer = actions
        .iter()
        .find_map(|a| match a {
            Action::StartOffer { peer, conn } if peer == "alice" => Some(*conn),
            _ => None,
        })
        .expect("the outbox makes the restarted client offer by itself");
    assert_eq!(bob.client_id(), "peerchat-session-bob", "the same session");

    // Alice still holds the old chat: the offer moves it, the run is the same, so the
    // outbox is new to her and shown once, in order.
    let (a_new, bob_sends, _) = answer_and_open(&mut bob, offer, &mut alice);
    assert_eq!(sent_texts(&bob_sends), ["two", "three"]);
    carry(bob_sends, &mut alice, a_new);
    assert_eq!(shown(&drain(&mut alice).1, "bob"), ["two", "three"]);
    // Numbering continues under the same run: the next message is new to Alice.
    assert_eq!(bob.send_message("alice", "four"), Ok(4));
    carry(drain(&mut bob).0, &mut alice, a_new);
    assert_eq!(shown(&drain(&mut alice).1, "bob"), ["four"]);
}

#[test]
fn a_message_shown_before_both_ends_restarted_is_not_shown_again() {
    let mut alice = ClientMachine::resume("alice", SavedState::fresh("session-alice")).unwrap();
    alice.handle_signaling(SignalingInput::Connected, T0);
    alice.handle_signaling(SignalingInput::Subscribed, T0);
    alice.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    let mut alice_ops = drain_stored(&mut alice).2;
    let mut bob = ClientMachine::resume("bob", SavedState::fresh("session-bob")).unwrap();
    bob.handle_signaling(SignalingInput::Connected, T0);
    bob.handle_signaling(SignalingInput::Subscribed, T0);
    bob.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    let mut bob_ops = drain_stored(&mut bob).2;
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);

    // Alice shows "hello" but both die before her acknowledgement reaches Bob.
    bob.send_message("alice", "hello").unwrap();
    let (actions, _, ops) = drain_stored(&mut bob);
    bob_ops.extend(ops);
    carry(actions, &mut alice, a_conn);
    let (_, events, ops) = drain_stored(&mut alice);
    alice_ops.extend(ops);
    assert_eq!(shown(&events, "bob"), ["hello"]);

    let alice_saved = apply(SavedState::default(), &alice_ops);
    assert_eq!(
        alice_saved.received["bob"],
        ("session-bob".to_owned(), 1),
        "the run and id shown last"
    );
    let (mut alice, _, _) = restarted("alice", alice_saved);
    let (mut bob, actions, _) = restarted("bob", apply(SavedState::default(), &bob_ops));
    let offer = conn_of(&actions);
    let (a_new, bob_sends, _) = answer_and_open(&mut bob, offer, &mut alice);
    assert_eq!(
        sent_texts(&bob_sends),
        ["hello"],
        "Bob cannot know it arrived"
    );
    carry(bob_sends, &mut alice, a_new);
    assert!(shown(&drain(&mut alice).1, "bob").is_empty(), "not twice");
    // Acknowledged again, so it leaves Bob's outbox for good.
    alice.handle_timeout(T0 + chat::ACK_DELAY_MS);
    let b_new = bob.peers.get("alice").unwrap().conn;
    carry(drain(&mut alice).0, &mut bob, b_new);
    let (_, events, ops) = drain_stored(&mut bob);
    assert!(events.contains(&ClientEvent::Delivered {
        peer: "alice".into(),
        id: 1
    }));
    assert!(ops.contains(&StoreOp::Acknowledged {
        peer: "alice".into(),
        upto: 1
    }));
}

#[test]
fn an_outbox_waits_for_a_peer_that_is_away_and_goes_when_it_is_back() {
    let mut saved = SavedState::fresh("session-bob");
    saved
        .outbox
        .insert("alice".into(), vec![(5, "while you were away".into())]);
    let mut bob = ClientMachine::resume("bob", saved).unwrap();
    bob.handle_signaling(SignalingInput::Connected, T0);
    bob.handle_signaling(SignalingInput::Subscribed, T0);
    // Alice's retained record says she is offline: no offer into the void.
    presence(&mut bob, "alice", false);
    bob.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    let (actions, _) = drain(&mut bob);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::StartOffer { .. }))
    );
    assert_eq!(bob.outbox().collect::<Vec<_>>(), [("alice", 1)]);
    // She comes back: Bob offers, and the message goes under its old id.
    presence(&mut bob, "alice", true);
    let offer = conn_of(&drain(&mut bob).0);
    let mut alice = online("alice");
    let (a_conn, bob_sends, _) = answer_and_open(&mut bob, offer, &mut alice);
    assert_eq!(sent_texts(&bob_sends), ["while you were away"]);
    carry(bob_sends, &mut alice, a_conn);
    assert_eq!(shown(&drain(&mut alice).1, "bob"), ["while you were away"]);
    assert_eq!(
        bob.send_message("alice", "next"),
        Ok(6),
        "ids go on after the outbox"
    );
}

#[test]
fn unacknowledged_messages_of_an_ended_chat_wait_in_the_outbox() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    alice.send_message("bob", "lost with the chat").unwrap();
    drain(&mut alice);
    // Bob ends the chat (his `bye`).
    let bye = TransportEvent::ChannelMessage(ChatFrame::Bye.encode());
    alice.handle_transport(a_conn, bye, T0);
    drain(&mut alice);
    assert_eq!(alice.outbox().collect::<Vec<_>>(), [("bob", 1)]);
    // The next chat, whoever starts it, carries it.
    alice.connect_to_peer("bob", T0).unwrap();
    let offer = conn_of(&drain(&mut alice).0);
    let (_, alice_sends, _) = answer_and_open(&mut alice, offer, &mut bob);
    assert_eq!(sent_texts(&alice_sends), ["lost with the chat"]);
}

#[test]
fn a_message_kept_for_the_next_chat_carries_no_acknowledgement_of_the_old_one() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    bob.send_message("alice", "from bob's first run").unwrap();
    carry(drain(&mut bob).0, &mut alice, a_conn);
    drain(&mut alice);
    // Alice's answer carries the ack of Bob's #1, and is lost with the chat.
    alice.send_message("bob", "answer").unwrap();
    let (sent, _) = drain(&mut alice);
    assert!(sent_texts(&sent) == ["answer"] && sent_frame_acks(&sent) == [Some(1)]);
    // Bob ends the chat (his `bye`).
    let bye = TransportEvent::ChannelMessage(ChatFrame::Bye.encode());
    alice.handle_transport(a_conn, bye, T0);
    drain(&mut alice);
    // The next chat may be with a new run of Bob, whose #1 is another message.
    alice.connect_to_peer("bob", T0).unwrap();
    let offer = conn_of(&drain(&mut alice).0);
    let mut bob = ClientMachine::new("bob", "session-bob-2").unwrap();
    bob.handle_signaling(SignalingInput::Connected, T0);
    bob.handle_signaling(SignalingInput::Subscribed, T0);
    bob.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    drain(&mut bob);
    let (_, alice_sends, _) = answer_and_open(&mut alice, offer, &mut bob);
    assert_eq!(sent_texts(&alice_sends), ["answer"]);
    assert_eq!(sent_frame_acks(&alice_sends), [None]);
}

fn sent_frame_acks(actions: &[Action]) -> Vec<Option<MessageId>> {
    (actions.iter())
        .filter_map(|a| match a {
            Action::SendText { text, .. } => match ChatFrame::decode(text) {
                Some(ChatFrame::Message { ack, .. }) => Some(ack),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[test]
fn an_outbox_for_a_name_now_held_by_an_original_client_goes_as_plain_text_once() {
    let mut saved = SavedState::fresh("session-alice");
    saved
        .outbox
        .insert("bob".into(), vec![(3, "hello bob".into())]);
    let (mut alice, actions, _) = restarted("alice", saved);
    let conn = conn_of(&actions);
    alice.handle_transport(conn, TransportEvent::LocalDescription(sdp("aaaa")), T0);
    drain(&mut alice);
    deliver(&mut alice, &original_answer());
    drain(&mut alice);
    alice.handle_transport(conn, TransportEvent::ChannelOpen, T0);
    let (sent, _, stored) = drain_stored(&mut alice);
    assert_eq!(
        sent,
        [Action::SendText {
            conn,
            text: "hello bob".into()
        }]
    );
    assert!(stored.contains(&StoreOp::Acknowledged {
        peer: "bob".into(),
        upto: 3
    }));
    assert_eq!(alice.outbox().count(), 0);
}

/// Past the presence cap the least needed go: a peer with a chat and one with an outbox are
/// watched before a thousand of the app's contacts, though their names sort after them all.
#[test]
fn past_the_watch_cap_chats_and_outboxes_come_before_listed_contacts() {
    let mut saved = SavedState::fresh("session-bob");
    saved
        .outbox
        .insert("zack".into(), vec![(5, "later".into())]);
    let mut bob = ClientMachine::resume("bob", saved).unwrap();
    for n in 0..MAX_WATCHED {
        bob.watch_presence(&format!("peer{n:05}")).unwrap();
    }
    bob.handle_signaling(SignalingInput::Connected, T0);
    bob.handle_signaling(SignalingInput::Subscribed, T0);
    bob.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
    bob.connect_to_peer("zoe", T0 + registration::PRESENCE_GRACE_MS)
        .unwrap();
    drain(&mut bob);
    let watched = &bob.presence_subscribed;
    assert_eq!(watched.len(), MAX_WATCHED);
    assert!(watched.contains("zack"), "the outbox's peer");
    assert!(watched.contains("zoe"), "the chat's peer");
    assert!(watched.contains("peer00997"));
    assert!(!watched.contains("peer00998") && !watched.contains("peer00999"));
}
