//! The client against a hostile broker or user: seals after the device slept, pinning that
//! strangers cannot wear down, the `peerchat` field under the seal, replays after a flood,
//! and bounds on what other users can make the client hold.

use super::tests::{
    T0, WALL0, carry, conn_of, connected_pair, drain, online, relay, sdp, sealed_offer, sealing,
    tampered, untrusted,
};
use super::*;
use crate::identity::Identity;
use crate::protocol::{ChatFrame, MAX_FILE_BYTES, encode, presence_topic};

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

#[test]
fn a_full_pin_store_refuses_new_sealed_contacts_instead_of_leaving_them_unpinned() {
    let mut bob = sealing("bob", 2);
    let key = Identity::from_seed([9; 32]).public();
    for n in 0..MAX_PINS {
        let pin = Pin {
            key,
            verified: false,
            seal_version: 2,
        };
        bob.pin_key(&format!("known{n}"), pin);
    }
    let (_, offer, _) = stranger_calling("zed", 1, "bob");
    relay(offer.clone(), &mut bob);
    let (actions, events) = drain(&mut bob);
    assert!(actions.is_empty(), "{actions:?}");
    assert!(untrusted(&events)[0].contains("pinned keys"), "{events:?}");
    // Room made by forgetting one: the same contact is welcome (a fresh offer of its).
    bob.forget_key("known0");
    drain(&mut bob);
    let (_, offer, _) = stranger_calling("zed", 1, "bob");
    relay(offer, &mut bob);
    let (actions, _) = drain(&mut bob);
    assert!(
        matches!(actions[0], Action::AcceptOffer { .. }),
        "{actions:?}"
    );
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

#[test]
fn files_arriving_from_all_peers_together_are_capped() {
    let mut bob = online("bob");
    let size = MAX_FILE_BYTES - 1;
    let mut refusals = Vec::new();
    for (n, name) in ["amy", "ann", "ava"].into_iter().enumerate() {
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
        refusals.push((n, started, events));
    }
    // Two largest files may arrive at once, from two peers; the third waits its turn.
    assert!(refusals[0].1 && refusals[1].1, "{refusals:?}");
    assert!(!refusals[2].1);
    let refused = refusals[2].2.iter().any(|e| {
        matches!(e, ClientEvent::Error(ClientError::UnexpectedSignal { detail, .. })
            if detail.contains("all peers"))
    });
    assert!(refused, "{:?}", refusals[2].2);
}

#[test]
fn presence_of_a_flood_of_names_is_bounded_and_peers_still_count() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    connected_pair(&mut alice, &mut bob);
    let record = |user: &str, online: bool| {
        encode(&SignalMessage::Presence(protocol::Presence {
            from: user.into(),
            session: format!("session-{user}"),
            online,
            since: None,
        }))
    };
    for n in 0..10_000 {
        let user = format!("u{n}");
        let payload = record(&user, true);
        let topic = presence_topic(&user);
        bob.handle_signaling(SignalingInput::Message { topic, payload }, T0);
        drain(&mut bob);
    }
    assert!(bob.presence.len() <= super::MAX_WATCHED);
    // Alice, whom Bob chats with, is still heard.
    let topic = presence_topic("alice");
    let payload = record("alice", false);
    bob.handle_signaling(SignalingInput::Message { topic, payload }, T0);
    let (_, events) = drain(&mut bob);
    let heard = ClientEvent::Presence {
        user: "alice".into(),
        online: false,
    };
    assert!(events.contains(&heard), "{events:?}");
    assert!(bob.presence.len() <= super::MAX_WATCHED);
}
