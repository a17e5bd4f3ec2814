//! The client against a hostile broker or user: seals after the device slept, pinning that
//! strangers cannot wear down, the `peerchat` field under the seal, replays after a flood,
//! and bounds on what other users can make the client hold.

use super::tests::{
    T0, WALL0, carry, conn_of, connected_pair, drain, online, relay, sdp, sdp_of, sealed_offer,
    sealing, tampered, untrusted,
};
use super::*;
use crate::identity::Identity;
use crate::protocol::{ChatFrame, encode, presence_topic};

/// Hands every publish addressed to `to` over to it at machine time `now`.
fn relay_at(actions: Vec<Action>, to: &mut ClientMachine, now: u64) {
    for action in actions {
        if let Action::Publish { topic, payload, .. } = action
            && topic == incoming_topic(to.username())
        {
            to.handle_signaling(SignalingInput::Message { topic, payload }, now);
        }
    }
}

fn local_candidate(n: u16) -> IceCandidate {
    IceCandidate {
        candidate: format!(
            "candidate:{n} 1 udp 2122260223 127.0.0.1 {} typ host",
            40000 + n
        ),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    }
}

/// The publishes in `actions`.
fn publishes(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Publish { .. }))
        .count()
}

fn key_changed(events: &[ClientEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, ClientEvent::Error(ClientError::KeyChanged(_))))
}

/// A stranger `name` with its own key, online and sealing, calling `callee`: returns the
/// machine and its sealed offer's publishes, and, apart, a sealed candidate of its own.
fn stranger_calling(name: &str, n: u32, callee: &str) -> (ClientMachine, Vec<Action>, Vec<Action>) {
    let mut stranger = online(name);
    let mut seed = [0xA5; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    stranger.set_identity(Identity::from_seed(seed));
    stranger.handle_wall_clock(T0, WALL0);
    stranger.connect_to_peer(callee, T0).unwrap();
    let conn = conn_of(&drain(&mut stranger).0);
    stranger.handle_transport(conn, TransportEvent::LocalDescription(sdp("ssss")), T0);
    let offer = drain(&mut stranger).0;
    stranger.handle_transport(conn, TransportEvent::LocalCandidate(local_candidate(1)), T0);
    let candidate = drain(&mut stranger).0;
    (stranger, offer, candidate)
}

// ---- Seals and the wall clock (a device that slept) ---------------------------------

#[test]
fn seals_hold_both_ways_after_the_device_slept() {
    let (mut alice, mut bob) = (sealing("alice", 1), sealing("bob", 2));
    let (a_conn, b_conn) = connected_pair(&mut alice, &mut bob);
    // Both devices sleep for an hour: their monotonic clocks stand still (one second passes
    // in machine time), their wall clocks do not. Each input brings a fresh reading.
    let woke = T0 + 1_000;
    let wall = WALL0 + 3_600_000;
    for m in [&mut alice, &mut bob] {
        m.handle_wall_clock(woke, wall);
    }
    alice.handle_transport(
        a_conn,
        TransportEvent::LocalCandidate(local_candidate(7)),
        woke,
    );
    let (from_alice, _) = drain(&mut alice);
    assert_eq!(publishes(&from_alice), 1);
    relay_at(from_alice.clone(), &mut bob, woke);
    let (actions, events) = drain(&mut bob);
    assert!(untrusted(&events).is_empty(), "{events:?}");
    assert!(matches!(actions[..], [Action::AddCandidate { conn, .. }] if conn == b_conn));
    bob.handle_transport(
        b_conn,
        TransportEvent::LocalCandidate(local_candidate(8)),
        woke,
    );
    relay_at(drain(&mut bob).0, &mut alice, woke);
    let (actions, events) = drain(&mut alice);
    assert!(untrusted(&events).is_empty(), "{events:?}");
    assert!(matches!(actions[..], [Action::AddCandidate { conn, .. }] if conn == a_conn));

    // A client still on the wall time of before the sleep refuses those seals as stale:
    // the fresh reading is what keeps seals working.
    let mut behind = sealing("bob", 2);
    relay_at(from_alice, &mut behind, woke);
    let (_, events) = drain(&mut behind);
    assert!(untrusted(&events)[0].contains("too old"), "{events:?}");
}

#[test]
fn seal_moments_only_grow_even_within_one_millisecond() {
    let mut alice = sealing("alice", 1);
    let offer = sealed_offer(&mut alice);
    let conn = alice.peers["bob"].conn;
    for n in 0..3 {
        alice.handle_transport(conn, TransportEvent::LocalCandidate(local_candidate(n)), T0);
    }
    let candidates = drain(&mut alice).0;
    let moments: Vec<u64> = offer
        .iter()
        .chain(&candidates)
        .filter_map(|a| match a {
            Action::Publish { payload, .. } => match protocol::decode(payload).unwrap() {
                SignalMessage::SignalOffer { seal, .. }
                | SignalMessage::SignalCandidate { seal, .. } => Some(seal.unwrap().ts),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(moments.len(), 4);
    assert!(moments.windows(2).all(|w| w[0] < w[1]), "{moments:?}");
}

// ---- Pinning ---------------------------------------------------------------------------

#[test]
fn five_thousand_strangers_do_not_weaken_pinning() {
    let mut bob = sealing("bob", 2);
    // 5,000 names send Bob sealed candidates without ever being in a chat with him: once,
    // any sealed message pinned, and after 4,096 names nothing new was.
    for n in 0..5_000u32 {
        let (_, _, candidate) = stranger_calling(&format!("s{n}"), n, "bob");
        relay(candidate, &mut bob);
        let (actions, _) = drain(&mut bob);
        assert!(
            !actions.iter().any(|a| matches!(a, Action::KeepPin { .. })),
            "s{n}: {actions:?}"
        );
    }
    assert!((0..5_000).all(|n| bob.pinned_key(&format!("s{n}")).is_none()));

    // A new contact is pinned by its first chat, and every rule holds for it.
    let (_, offer, _) = stranger_calling("zed", 9_999, "bob");
    relay(offer, &mut bob);
    let (actions, _) = drain(&mut bob);
    assert!(
        matches!(actions[0], Action::AcceptOffer { .. }),
        "{actions:?}"
    );
    assert!(bob.pinned_key("zed").is_some());
    bob.close_peer("zed").unwrap();
    drain(&mut bob);
    let mut unsealed = online("zed");
    unsealed.handle_wall_clock(T0, WALL0);
    relay(offer_to(&mut unsealed, "bob"), &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(actions.is_empty(), "{actions:?}");
    assert!(untrusted(&events)[0].contains("unsealed"), "{events:?}");
    let (_, impostor, _) = stranger_calling("zed", 31_337, "bob");
    relay(impostor, &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(actions.is_empty() && key_changed(&events), "{events:?}");
}

/// `m`'s offer to `peer`, as published.
fn offer_to(m: &mut ClientMachine, peer: &str) -> Vec<Action> {
    m.connect_to_peer(peer, T0).unwrap();
    let conn = conn_of(&drain(m).0);
    m.handle_transport(conn, TransportEvent::LocalDescription(sdp("uuuu")), T0);
    drain(m).0
}

#[test]
fn only_offers_a_client_accepts_pin_a_key() {
    let mut bob = sealing("bob", 2);
    for n in 0..(MAX_PEERS + 20) as u32 {
        let (_, offer, _) = stranger_calling(&format!("c{n}"), n, "bob");
        relay(offer, &mut bob);
    }
    drain(&mut bob);
    let pinned = (0..MAX_PEERS + 20)
        .filter(|n| bob.pinned_key(&format!("c{n}")).is_some())
        .count();
    // The offers beyond the chats Bob may hold were refused: no chat, no pin.
    assert_eq!(pinned, MAX_PEERS);
}

/// The README's figure, 16,384 pins, is the behaviour driven: the 16,384th contact is
/// pinned, the next is refused.
#[test]
fn a_full_pin_store_refuses_new_sealed_contacts_instead_of_leaving_them_unpinned() {
    let mut bob = sealing("bob", 2);
    let key = Identity::from_seed([9; 32]).public();
    for n in 0..16_383 {
        let pin = Pin {
            key,
            verified: false,
            seal_version: 2,
        };
        bob.pin_key(&format!("known{n}"), pin);
    }
    let accepted = |actions: &[Action]| matches!(actions.first(), Some(Action::AcceptOffer { .. }));
    // One place left: a new contact takes it.
    let (_, offer, _) = stranger_calling("yan", 3, "bob");
    relay(offer, &mut bob);
    let (actions, _) = drain(&mut bob);
    assert!(accepted(&actions), "{actions:?}");
    assert!(bob.pinned_key("yan").is_some());
    // Full: the next is refused rather than left unpinned.
    let (_, offer, _) = stranger_calling("zed", 1, "bob");
    relay(offer.clone(), &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(actions.is_empty(), "{actions:?}");
    assert!(
        untrusted(&events)[0].contains("16384 pinned keys"),
        "{events:?}"
    );
    assert!(bob.pinned_key("zed").is_none());
    // Room made by forgetting one: the same contact is welcome (a fresh offer of its).
    bob.forget_key("known0");
    drain(&mut bob);
    let (_, offer, _) = stranger_calling("zed", 1, "bob");
    relay(offer, &mut bob);
    let (actions, _) = drain(&mut bob);
    assert!(accepted(&actions), "{actions:?}");
    assert!(bob.pinned_key("zed").is_some());
}

#[test]
fn early_candidates_sealed_by_someone_else_are_dropped_when_the_offer_comes() {
    let mut bob = sealing("bob", 2);
    let (_, offer, _) = stranger_calling("zed", 1, "bob");
    // Someone else's candidate under Zed's name arrives first.
    let (_, _, foreign) = stranger_calling("zed", 2, "bob");
    relay(foreign, &mut bob);
    relay(offer, &mut bob);
    let (actions, _) = drain(&mut bob);
    assert!(
        matches!(actions[0], Action::AcceptOffer { .. }),
        "{actions:?}"
    );
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::AddCandidate { .. })),
        "{actions:?}"
    );
}

// ---- Answers, and candidates once a chat is open --------------------------------------

/// Alice calls Bob: her offer reaches him and he answers. Returns her connection, her
/// offer and his answer as published (the answer not yet delivered).
fn call_answered(
    alice: &mut ClientMachine,
    bob: &mut ClientMachine,
) -> (ConnId, Vec<Action>, Vec<Action>) {
    alice.connect_to_peer("bob", T0).unwrap();
    let a_conn = conn_of(&drain(alice).0);
    let offer_sdp = sdp_of("aaaa", "AA:BB");
    alice.handle_transport(a_conn, TransportEvent::LocalDescription(offer_sdp), T0);
    let offer = drain(alice).0;
    let answer = answer_to(bob, &offer, "bbbb", "B1:B2");
    (a_conn, offer, answer)
}

/// `m`'s answer to `offer`, with ICE ufrag `ufrag` and DTLS fingerprint `cert`, as published.
fn answer_to(m: &mut ClientMachine, offer: &[Action], ufrag: &str, cert: &str) -> Vec<Action> {
    relay(offer.to_vec(), m);
    let conn = conn_of(&drain(m).0);
    m.handle_transport(
        conn,
        TransportEvent::LocalDescription(sdp_of(ufrag, cert)),
        T0,
    );
    drain(m).0
}

/// The connection an answer in `actions` was applied to, if any was.
fn applied(actions: &[Action]) -> Option<ConnId> {
    actions.iter().find_map(|a| match a {
        Action::ApplyAnswer { conn, .. } => Some(*conn),
        _ => None,
    })
}

/// Why `events` say signaling was refused: `key changed`, or the reason given.
fn refusals(events: &[ClientEvent]) -> Vec<String> {
    let changed = key_changed(events).then(|| "key changed".to_owned());
    changed.into_iter().chain(untrusted(events)).collect()
}

/// Both end the chat they had: each keeps the other's pinned key for the next one.
fn close_both(alice: &mut ClientMachine, bob: &mut ClientMachine) {
    alice.close_peer("bob").unwrap();
    bob.close_peer("alice").unwrap();
    drain(alice);
    drain(bob);
}

/// The README's "another key" and "unsealed" claims for answers: Bob's key is pinned by a
/// first chat, so in the next one only his own sealed answer may reach Alice's call.
#[test]
fn an_answer_under_a_pinned_name_with_another_key_or_unsealed_is_refused() {
    let (mut alice, mut bob) = (sealing("alice", 1), sealing("bob", 2));
    connected_pair(&mut alice, &mut bob);
    let pinned = alice.pinned_key("bob").expect("the chat pinned Bob").key;
    assert_eq!(bob.identity_key(), Some(pinned));
    close_both(&mut alice, &mut bob);
    let (a_conn, offer, answer) = call_answered(&mut alice, &mut bob);

    // Whoever intercepts Alice's offer answers it under Bob's name: with a key of their
    // own, or with no seal.
    let mut impostor = sealing("bob", 66);
    let mut unsealed = online("bob");
    unsealed.handle_wall_clock(T0, WALL0);
    let forged = [
        (
            "another key",
            answer_to(&mut impostor, &offer, "mmmm", "EE:FF"),
        ),
        (
            "unsealed",
            answer_to(&mut unsealed, &offer, "uuuu", "EE:FF"),
        ),
    ];
    for (what, forged) in forged {
        relay(forged, &mut alice);
        let (actions, events) = drain(&mut alice);
        assert_eq!(applied(&actions), None, "{what}: {actions:?}");
        let refused = refusals(&events);
        let expected = if what == "unsealed" {
            "unsealed"
        } else {
            "key changed"
        };
        assert!(
            refused.len() == 1 && refused[0].contains(expected),
            "{what}: {events:?}"
        );
        assert_eq!(alice.peer_status("bob"), Some(PeerStatus::Connecting));
    }
    // Bob's own answer is applied, and his key stays the pinned one.
    relay(answer, &mut alice);
    let (actions, events) = drain(&mut alice);
    assert_eq!(applied(&actions), Some(a_conn), "{actions:?}");
    assert!(refusals(&events).is_empty(), "{events:?}");
    assert_eq!(alice.pinned_key("bob").map(|pin| pin.key), Some(pinned));
}

/// Alice calling Carol, then Bob, with the same ICE credentials: an answer passed off as
/// Carol's would fit her call, and only the seal tells it apart. Returns her, her
/// connection to Bob and her offers as published.
fn calling_carol_and_bob() -> (ClientMachine, ConnId, Vec<Action>) {
    let mut alice = sealing("alice", 1);
    let mut offers = Vec::new();
    for peer in ["carol", "bob"] {
        alice.connect_to_peer(peer, T0).unwrap();
        let conn = conn_of(&drain(&mut alice).0);
        let offer = sdp_of("aaaa", "AA:BB");
        alice.handle_transport(conn, TransportEvent::LocalDescription(offer), T0);
        offers.extend(drain(&mut alice).0);
    }
    let a_conn = alice.peers["bob"].conn;
    (alice, a_conn, offers)
}

/// The publishes in `actions` delivered to Alice's inbox instead, as a broker could.
fn to_alice(actions: Vec<Action>) -> Vec<Action> {
    let redirect = |action| match action {
        Action::Publish {
            payload,
            retain,
            delivery,
            ..
        } => Action::Publish {
            topic: incoming_topic("alice"),
            payload,
            retain,
            delivery,
        },
        other => other,
    };
    actions.into_iter().map(redirect).collect()
}

/// The seal covers an answer's DTLS fingerprint, sender and recipient, even in a first chat
/// (nothing pinned yet): a change to any of them is refused, and so is Bob's genuine
/// answer to someone else. Each goes to a fresh Alice, so none hides behind another's
/// refusal; Bob's answer to her, as sent, is applied.
#[test]
fn an_answer_altered_or_misaddressed_on_the_way_is_refused() {
    let mut bob = sealing("bob", 2);
    let answer = answer_to(&mut bob, &calling_carol_and_bob().2, "bbbb", "B1:B2");
    // Bob also answers Dave, whose offer has the same ICE credentials as Alice's.
    let mut dave = sealing("dave", 4);
    dave.connect_to_peer("bob", T0).unwrap();
    let d_conn = conn_of(&drain(&mut dave).0);
    let dave_sdp = sdp_of("aaaa", "DD:DD");
    dave.handle_transport(d_conn, TransportEvent::LocalDescription(dave_sdp), T0);
    let for_dave = answer_to(&mut bob, &drain(&mut dave).0, "bbbb", "B1:B2");

    type Edit = fn(String) -> String;
    let edits: [(&str, &[Action], Edit, &str); 4] = [
        (
            "fingerprint",
            &answer,
            |p| p.replace("B1:B2", "EE:FF"),
            "altered",
        ),
        (
            "sender",
            &answer,
            |p| p.replace(r#""from":"bob""#, r#""from":"carol""#),
            "altered",
        ),
        (
            "recipient",
            &answer,
            |p| p.replace(r#""to":"alice""#, r#""to":"dave""#),
            "not for us",
        ),
        (
            "Bob's answer to Dave, readdressed to Alice",
            &for_dave,
            |p| p.replace(r#""to":"dave""#, r#""to":"alice""#),
            "altered",
        ),
    ];
    let mut cases = vec![(
        "Bob's answer to Dave",
        to_alice(for_dave.clone()),
        "not for us",
    )];
    for (what, original, edit, reason) in edits {
        let edited = tampered(original, edit);
        assert_ne!(edited, original, "{what}: the edit changed nothing");
        cases.push((what, to_alice(edited), reason));
    }
    for (what, forged, reason) in cases {
        let (mut alice, _, _) = calling_carol_and_bob();
        relay(forged, &mut alice);
        let (actions, events) = drain(&mut alice);
        assert_eq!(applied(&actions), None, "{what}: {actions:?}");
        let refused = untrusted(&events);
        assert!(
            refused.len() == 1 && refused[0].contains(reason),
            "{what}: {events:?}"
        );
        assert!(alice.pinned_key("bob").is_none(), "{what}: pinned");
    }
    let (mut alice, a_conn, _) = calling_carol_and_bob();
    relay(answer, &mut alice);
    let (actions, events) = drain(&mut alice);
    assert_eq!(applied(&actions), Some(a_conn), "{actions:?}");
    assert!(untrusted(&events).is_empty(), "{events:?}");
    assert_eq!(
        alice.pinned_key("bob").map(|pin| pin.key),
        bob.identity_key()
    );
}

/// The README's "replay" and "stale seal" claims for answers: Bob's answer when Alice's
/// clock is an hour past its seal, the same answer a second time, and the first call's
/// answer in a later call are refused. Both calls use the same descriptions, so only the
/// seal tells the old answer from the new one.
#[test]
fn a_replayed_or_stale_answer_is_refused() {
    let (mut alice, mut bob) = (sealing("alice", 1), sealing("bob", 2));
    let (a_conn, _, first) = call_answered(&mut alice, &mut bob);
    alice.handle_wall_clock(T0, WALL0 + 3_600_000);
    relay(first.clone(), &mut alice);
    let (actions, events) = drain(&mut alice);
    assert_eq!(applied(&actions), None, "{actions:?}");
    assert!(untrusted(&events)[0].contains("too old"), "{events:?}");
    // With her clock set right, the same answer is fresh: it is applied, once.
    alice.handle_wall_clock(T0, WALL0);
    relay(first.clone(), &mut alice);
    assert_eq!(applied(&drain(&mut alice).0), Some(a_conn));
    relay(first.clone(), &mut alice);
    let (actions, events) = drain(&mut alice);
    assert!(actions.is_empty(), "{actions:?}");
    assert!(untrusted(&events)[0].contains("replay"), "{events:?}");

    close_both(&mut alice, &mut bob);
    let (a_new, _, second) = call_answered(&mut alice, &mut bob);
    relay(first, &mut alice);
    let (actions, events) = drain(&mut alice);
    assert_eq!(applied(&actions), None, "{actions:?}");
    assert!(untrusted(&events)[0].contains("replay"), "{events:?}");
    relay(second, &mut alice);
    let (actions, events) = drain(&mut alice);
    assert_eq!(applied(&actions), Some(a_new), "{actions:?}");
    assert!(untrusted(&events).is_empty(), "{events:?}");
}

/// The offerer's side of the rule above: only the answerer's own early candidates count.
#[test]
fn early_candidates_sealed_by_someone_else_are_dropped_when_the_answer_comes() {
    let (mut alice, mut bob) = (sealing("alice", 1), sealing("bob", 2));
    let (a_conn, _, answer) = call_answered(&mut alice, &mut bob);
    // Someone else's candidate under Bob's name reaches Alice before his answer. (Bob's own
    // cannot: his seals are in time order, his candidates come after his answer, and a
    // seal older than one already taken is refused as a replay.)
    let (_, _, foreign) = stranger_calling("bob", 66, "alice");
    relay(foreign, &mut alice);
    assert!(drain(&mut alice).0.is_empty());
    relay(answer, &mut alice);
    let (actions, _) = drain(&mut alice);
    assert_eq!(applied(&actions), Some(a_conn), "{actions:?}");
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::AddCandidate { .. })),
        "{actions:?}"
    );
    // His own, after the answer, is applied.
    let b_conn = bob.peers["alice"].conn;
    let candidate = TransportEvent::LocalCandidate(local_candidate(5));
    bob.handle_transport(b_conn, candidate, T0);
    relay(drain(&mut bob).0, &mut alice);
    let bobs = Action::AddCandidate {
        conn: a_conn,
        candidate: local_candidate(5),
    };
    assert_eq!(drain(&mut alice).0, [bobs]);
}

/// The README's claims for candidates in an open chat, where each side pinned the other:
/// one under Bob's name with another key, unsealed, changed on the way or delivered twice
/// is dropped; his own, as sent, is applied.
#[test]
fn candidates_in_an_open_chat_count_only_as_the_peer_sealed_them() {
    let (mut alice, mut bob) = (sealing("alice", 1), sealing("bob", 2));
    let (a_conn, b_conn) = connected_pair(&mut alice, &mut bob);
    bob.handle_transport(
        b_conn,
        TransportEvent::LocalCandidate(local_candidate(5)),
        T0,
    );
    let genuine = drain(&mut bob).0;
    assert_eq!(publishes(&genuine), 1);

    let (_, _, foreign) = stranger_calling("bob", 66, "alice");
    let mut unsealed = online("bob");
    unsealed.handle_wall_clock(T0, WALL0);
    offer_to(&mut unsealed, "alice");
    let u_conn = unsealed.peers["alice"].conn;
    unsealed.handle_transport(
        u_conn,
        TransportEvent::LocalCandidate(local_candidate(6)),
        T0,
    );
    let unsealed_candidate = drain(&mut unsealed).0;
    let moved = tampered(&genuine, |p| p.replace("127.0.0.1", "203.0.113.9"));
    let readdressed = tampered(&genuine, |p| p.replace(r#""to":"alice""#, r#""to":"dave""#));
    assert!(moved != genuine && readdressed != genuine);
    let cases = [
        ("another key", foreign, "key changed"),
        ("unsealed", unsealed_candidate, "unsealed"),
        ("address", moved, "altered"),
        ("recipient", readdressed, "not for us"),
    ];
    for (what, forged, reason) in cases {
        relay(forged, &mut alice);
        let (actions, events) = drain(&mut alice);
        assert!(actions.is_empty(), "{what}: {actions:?}");
        let refused = refusals(&events);
        assert!(
            refused.len() == 1 && refused[0].contains(reason),
            "{what}: {events:?}"
        );
    }
    relay(genuine.clone(), &mut alice);
    let (actions, events) = drain(&mut alice);
    assert!(refusals(&events).is_empty(), "{events:?}");
    assert_eq!(
        actions,
        [Action::AddCandidate {
            conn: a_conn,
            candidate: local_candidate(5)
        }]
    );
    relay(genuine, &mut alice);
    let (actions, events) = drain(&mut alice);
    assert!(actions.is_empty(), "{actions:?}");
    assert!(refusals(&events)[0].contains("replay"), "{events:?}");
    assert_eq!(alice.peer_status("bob"), Some(PeerStatus::Connected));
}

// ---- The `peerchat` field under the seal ----------------------------------------------

#[test]
fn a_stripped_or_changed_peerchat_field_is_refused() {
    let mut alice = sealing("alice", 1);
    let offer = sealed_offer(&mut alice);
    type Edit = fn(String) -> String;
    let cases: [(&str, Edit); 4] = [
        ("features stripped", |p| {
            p.replace(
                r#""features":["acks","files","recovery","rooms","room-pictures"]"#,
                r#""features":[]"#,
            )
        }),
        ("a feature renamed", |p| {
            p.replace(r#""recovery""#, r#""xecovery""#)
        }),
        ("run set to an old run", |p| {
            p.replace(r#""run":"session-alice""#, r#""run":"an-older-run""#)
        }),
        ("the field removed", |p| {
            let start = p.find(r#""peerchat":"#).unwrap();
            let end = start + p[start..].find('}').unwrap() + 2;
            format!("{}{}", &p[..start], &p[end..])
        }),
    ];
    for (what, edit) in cases {
        let edited = tampered(&offer, edit);
        assert_ne!(edited, offer, "{what}: the edit changed nothing");
        let mut bob = sealing("bob", 2);
        relay(edited, &mut bob);
        let (actions, events) = drain(&mut bob);
        assert!(actions.is_empty(), "{what}: {actions:?}");
        assert!(
            untrusted(&events)[0].contains("altered"),
            "{what}: {events:?}"
        );
    }
}

/// Removes the v2 signature from every publish, as a relay that downgrades would (or as a
/// peer of the first seal format sends).
fn without_sig2(actions: &[Action]) -> Vec<Action> {
    tampered(actions, |p| {
        let Some(start) = p.find(r#","sig2":""#) else {
            return p;
        };
        let value = start + r#","sig2":""#.len();
        let end = value + p[value..].find('"').unwrap() + 1;
        format!("{}{}", &p[..start], &p[end..])
    })
}

#[test]
fn a_peer_that_sealed_with_the_new_format_is_never_accepted_with_the_old_one() {
    let (mut alice, mut bob) = (sealing("alice", 1), sealing("bob", 2));
    let (a_conn, _) = connected_pair(&mut alice, &mut bob);
    assert_eq!(bob.pinned_key("alice").unwrap().seal_version, 2);
    alice.handle_transport(
        a_conn,
        TransportEvent::LocalCandidate(local_candidate(3)),
        T0,
    );
    relay(without_sig2(&drain(&mut alice).0), &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(actions.is_empty(), "{actions:?}");
    assert!(untrusted(&events)[0].contains("older format"), "{events:?}");
}

#[test]
fn peers_of_the_first_seal_format_still_chat_until_they_upgrade() {
    let (mut alice, mut bob) = (sealing("alice", 1), sealing("bob", 2));
    // Alice runs the previous version: her seals carry the v1 signature only.
    relay(without_sig2(&sealed_offer(&mut alice)), &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(untrusted(&events).is_empty(), "{events:?}");
    let b_conn = conn_of(&actions);
    assert_eq!(bob.pinned_key("alice").unwrap().seal_version, 1);
    bob.handle_transport(b_conn, TransportEvent::LocalDescription(sdp("bbbb")), T0);
    relay(drain(&mut bob).0, &mut alice);
    let a_conn = alice.peers["bob"].conn;
    let candidate = |n| TransportEvent::LocalCandidate(local_candidate(n));
    alice.handle_transport(a_conn, candidate(1), T0);
    relay(without_sig2(&drain(&mut alice).0), &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(untrusted(&events).is_empty(), "{events:?}");
    assert!(
        matches!(actions[..], [Action::AddCandidate { .. }]),
        "{actions:?}"
    );
    // She upgrades: her first v2 seal raises the pin, and v1 alone is refused from then on.
    alice.handle_transport(a_conn, candidate(2), T0);
    relay(drain(&mut alice).0, &mut bob);
    let (actions, _) = drain(&mut bob);
    let raised = actions
        .iter()
        .any(|a| matches!(a, Action::KeepPin { pin: Some(pin), .. } if pin.seal_version == 2));
    assert!(raised, "{actions:?}");
    alice.handle_transport(a_conn, candidate(3), T0);
    relay(without_sig2(&drain(&mut alice).0), &mut bob);
    let (_, events) = drain(&mut bob);
    assert!(untrusted(&events)[0].contains("older format"), "{events:?}");
}

// ---- Replays ---------------------------------------------------------------------------

#[test]
fn a_replay_after_a_flood_of_fresh_seals_is_refused() {
    let (mut alice, mut bob) = (sealing("alice", 1), sealing("bob", 2));
    // Alice's offer, captured on its way to Bob.
    alice.connect_to_peer("bob", T0).unwrap();
    let a_conn = conn_of(&drain(&mut alice).0);
    alice.handle_transport(a_conn, TransportEvent::LocalDescription(sdp("aaaa")), T0);
    let captured = drain(&mut alice).0;
    relay(captured.clone(), &mut bob);
    let b_conn = conn_of(&drain(&mut bob).0);
    bob.handle_transport(b_conn, TransportEvent::LocalDescription(sdp("bbbb")), T0);
    relay(drain(&mut bob).0, &mut alice);
    alice.handle_transport(a_conn, TransportEvent::ChannelOpen, T0);
    bob.handle_transport(b_conn, TransportEvent::ChannelOpen, T0);
    drain(&mut alice);
    drain(&mut bob);

    // More fresh seals than the client ever remembered before, all accepted.
    for n in 0..10_000u32 {
        let (_, _, candidate) = stranger_calling(&format!("f{n}"), n, "bob");
        relay(candidate, &mut bob);
    }
    drain(&mut bob);
    // Five minutes on: the captured offer is still fresh, and still a replay.
    let later = T0 + 300_000;
    relay_at(captured, &mut bob, later);
    let (actions, events) = drain(&mut bob);
    assert!(actions.is_empty(), "the live chat was touched: {actions:?}");
    assert!(untrusted(&events)[0].contains("replay"), "{events:?}");
    assert_eq!(bob.peer_status("alice"), Some(PeerStatus::Connected));
}

// ---- Bounds on what others can make the client hold ------------------------------------

/// The README's figures are the behaviour driven: two files of 256 MiB, the largest, from
/// two peers fill the 512 MiB exactly, and one byte more, from a third, is refused.
#[test]
fn files_arriving_from_all_peers_together_are_capped() {
    const MIB: u64 = 1024 * 1024;
    let mut bob = online("bob");
    let mut announce = |name: &str, size: u64| {
        let mut sender = online(name);
        let (_, b_conn) = connected_pair(&mut sender, &mut bob);
        let announce = ChatFrame::File {
            id: 1,
            name: "big.bin".into(),
            mime: "application/octet-stream".into(),
            size,
        };
        let text = announce.encode();
        carry(vec![Action::SendText { conn: 0, text }], &mut bob, b_conn);
        let (_, events) = drain(&mut bob);
        let started = events.iter().any(
            |e| matches!(e, ClientEvent::Transfer { incoming: true, total, .. } if *total == size),
        );
        (started, events)
    };
    for name in ["amy", "ann"] {
        let (started, events) = announce(name, 256 * MIB);
        assert!(started, "{name}: {events:?}");
    }
    let (started, events) = announce("ava", 1);
    assert!(!started, "{events:?}");
    let refused = events.iter().any(|e| {
        matches!(e, ClientEvent::Error(ClientError::UnexpectedSignal { detail, .. })
            if detail.contains("all peers"))
    });
    assert!(refused, "{events:?}");
}

/// The README's figure, 1,000 contacts: Bob's app lists 2,000, and the broker floods him
/// with the records of 10,000 names, those among them; exactly 1,000 are watched and
/// remembered, and Zoe, whom he chats with, is one of them.
#[test]
fn presence_of_a_flood_of_names_is_bounded_and_peers_still_count() {
    let (mut zoe, mut bob) = (online("zoe"), online("bob"));
    connected_pair(&mut zoe, &mut bob);
    // Listed while the broker is away, so they are subscribed at once when it is back.
    bob.handle_signaling(SignalingInput::Lost, T0);
    for n in 0..2_000 {
        bob.watch_presence(&format!("u{n:05}")).unwrap();
    }
    bob.handle_signaling(SignalingInput::Connected, T0);
    bob.handle_signaling(SignalingInput::Subscribed, T0);
    drain(&mut bob);
    assert_eq!(bob.presence_subscribed.len(), 1_000);
    let record = |user: &str, online: bool| {
        encode(&SignalMessage::Presence(protocol::Presence {
            from: user.into(),
            session: format!("session-{user}"),
            online,
            since: None,
        }))
    };
    for n in 0..10_000 {
        let user = format!("u{n:05}");
        let payload = record(&user, true);
        let topic = presence_topic(&user);
        bob.handle_signaling(SignalingInput::Message { topic, payload }, T0);
        drain(&mut bob);
    }
    assert_eq!(bob.presence.len(), 999, "the watched contacts but Zoe");
    // Zoe, whom Bob chats with, is still heard: past the cap the app's listed contacts go
    // before a chat's peer, though her name sorts after all of theirs.
    let topic = presence_topic("zoe");
    let payload = record("zoe", false);
    bob.handle_signaling(SignalingInput::Message { topic, payload }, T0);
    let (_, events) = drain(&mut bob);
    let heard = ClientEvent::Presence {
        user: "zoe".into(),
        online: false,
    };
    assert!(events.contains(&heard), "{events:?}");
    assert_eq!(bob.presence.len(), 1_000);
    assert_eq!(bob.presence_subscribed.len(), 1_000);
}
