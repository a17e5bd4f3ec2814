//! The bounds of PROTOCOL.md's "Limits" table on what a client is sent, each at its
//! literal figure and on both sides of it: the last that is taken and the first that is
//! refused, with one clear error and nothing else changed. (The rooms' bounds are in
//! `rooms_tests`, the recovery schedule in `tests`.)

use super::tests::{
    T0, candidate, carry, chat_frames, conn_of, connected_pair, deliver, drain, online, sdp, shown,
};
use super::*;
use crate::protocol::ChatFrame;

/// An offer from `peer` as an original client sends it (no `peerchat` capabilities).
fn offer_from(peer: &str) -> SignalMessage {
    SignalMessage::SignalOffer {
        seal: None,
        from: peer.into(),
        offer: SessionDescription {
            kind: SdpKind::Offer,
            sdp: sdp(&format!("{peer}-ufrag")),
        },
        peerchat: None,
    }
}

#[test]
fn a_client_keeps_256_chats_and_refuses_a_257th_it_starts_or_is_offered() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    // 255 more peers offer chats and each opens: with Bob's, 256.
    for n in 1..256 {
        deliver(&mut alice, &offer_from(&format!("peer{n:03}")));
        let conn = conn_of(&drain(&mut alice).0);
        alice.handle_transport(conn, TransportEvent::ChannelOpen, T0);
        drain(&mut alice);
    }
    assert_eq!(alice.peers().count(), 256);
    assert_eq!(alice.peer_status("peer255"), Some(PeerStatus::Connected));

    // A 257th is not started...
    assert_eq!(
        alice.connect_to_peer("carol", T0),
        Err(ClientError::TooManyPeers(256))
    );
    assert_eq!(drain(&mut alice), (vec![], vec![]));
    // ...nor taken from strangers flooding the client with offers: one error each.
    for n in 0..3 {
        let stranger = format!("flood{n}");
        deliver(&mut alice, &offer_from(&stranger));
        assert_eq!(
            drain(&mut alice),
            (
                vec![],
                vec![ClientEvent::Error(ClientError::TooManyPeers(256))]
            )
        );
        assert_eq!(alice.peer_status(&stranger), None);
    }
    assert_eq!(alice.peers().count(), 256);

    // The chats there were go on.
    alice.send_message("bob", "still here").unwrap();
    carry(chat_frames(drain(&mut alice).0), &mut bob, b_conn);
    assert_eq!(shown(&drain(&mut bob).1, "alice"), ["still here"]);
}

/// A candidate line of exactly `bytes` bytes: a host candidate with a long extension
/// attribute.
fn candidate_line_of(bytes: usize) -> IceCandidate {
    let mut line = candidate(1, None);
    line.candidate.push_str(" ufrag ");
    let padding = bytes - line.candidate.len();
    line.candidate.push_str(&"x".repeat(padding));
    assert_eq!(line.candidate.len(), bytes);
    line
}

#[test]
fn a_candidate_line_of_1_kib_is_applied_and_one_a_byte_longer_is_refused() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    let from_alice = |candidate| SignalMessage::SignalCandidate {
        seal: None,
        from: "alice".into(),
        candidate,
    };

    deliver(&mut bob, &from_alice(candidate_line_of(1025)));
    let (actions, events) = drain(&mut bob);
    assert_eq!(actions, []);
    assert!(
        matches!(
            events.as_slice(),
            [ClientEvent::Error(ClientError::BadSignal { from, .. })] if from == "alice"
        ),
        "{events:?}"
    );
    assert_eq!(bob.peer_status("alice"), Some(PeerStatus::Connected));

    let line = candidate_line_of(1024);
    deliver(&mut bob, &from_alice(line.clone()));
    assert_eq!(
        drain(&mut bob),
        (
            vec![Action::AddCandidate {
                conn: b_conn,
                candidate: line
            }],
            vec![]
        )
    );
}

/// A file name of `bytes` bytes in 128 characters: what counts is bytes ("é" is two).
fn name_of(bytes: usize) -> String {
    "é".repeat(bytes - 128) + &"x".repeat(256 - bytes)
}

/// A media type of `bytes` bytes.
fn media_type_of(bytes: usize) -> String {
    format!("image/{}", "x".repeat(bytes - "image/".len()))
}

#[test]
fn a_file_may_have_a_255_byte_name_and_a_127_byte_type_and_no_longer() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    let (_, b_conn) = connected_pair(&mut alice, &mut bob);
    assert_eq!(name_of(255).chars().count(), name_of(256).chars().count());
    let cases = [
        (1, name_of(255), media_type_of(127), true),
        (2, name_of(256), media_type_of(127), false),
        (3, name_of(255), media_type_of(128), false),
    ];
    for (id, name, mime, taken) in cases {
        let (name_bytes, mime_bytes) = (name.len(), mime.len());
        let sent = alice.send_file("bob", &name, &mime, b"!");
        assert_eq!(sent.is_ok(), taken, "sending {name_bytes} and {mime_bytes}");
        if !taken {
            assert!(matches!(sent, Err(ClientError::BadFile(_))), "{sent:?}");
        }
        drain(&mut alice);
        // A peer that does not check sends it anyway.
        let announce = ChatFrame::File {
            id,
            name: name.clone(),
            mime: mime.clone(),
            size: 1,
        };
        bob.handle_transport(
            b_conn,
            TransportEvent::ChannelMessage(announce.encode()),
            T0,
        );
        let chunk = protocol::encode_chunk(id, b"!");
        bob.handle_transport(b_conn, TransportEvent::ChannelData(chunk), T0);
        let (_, events) = drain(&mut bob);
        let received = events.iter().any(|e| {
            matches!(e, ClientEvent::File { id: got, name: n, mime: m, .. }
                if *got == id && *n == name && *m == mime)
        });
        let refusals = (events.iter())
            .filter(|e| {
                matches!(
                    e,
                    ClientEvent::Error(ClientError::UnexpectedSignal { kind: "file", .. })
                )
            })
            .count();
        let errors = (events.iter())
            .filter(|e| matches!(e, ClientEvent::Error(_)))
            .count();
        assert_eq!(
            (received, refusals, errors),
            (taken, usize::from(!taken), usize::from(!taken)),
            "receiving {name_bytes} and {mime_bytes}: {events:?}"
        );
        assert_eq!(bob.peer_status("alice"), Some(PeerStatus::Connected));
    }
}
