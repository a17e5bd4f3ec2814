//! The side that stays put while its peer roams (a phone between Wi-Fi and mobile data):
//! in every order a roaming peer's news can reach it (its last will saying offline, its
//! offers, its old connection's last reports, an offer of ours it never got, an answer to
//! an offer replaced since) the chat stays in recovery, what the user writes waits, and
//! nothing says the chat ended; on the new channel nothing is sent before the far end is
//! open. Each scenario runs with the roaming name sorting first and second, and with
//! either side having called.

use super::tests::{
    T0, carry, conn_of, deliver, drain, ended_why, file_under_way, online, presence, relay, sdp,
    sdp_of, shown, statuses,
};
use super::*;

/// (stays put, roams): the roaming name sorts first, then second.
const NAMES: [(&str, &str); 2] = [("bob", "alice"), ("bob", "zoe")];

/// Every way to start: both name orders, either side calling.
fn every_pair() -> impl Iterator<Item = Pair> {
    NAMES.into_iter().flat_map(|(stay, roam)| {
        [true, false].map(|stay_calls| Pair::chatting(stay, roam, stay_calls))
    })
}

/// A chat between a peer that stays put and one that roams, both with DTLS certificates
/// (so an ICE restart is told from a new connection).
struct Pair {
    stay: ClientMachine,
    roam: ClientMachine,
    stay_conn: ConnId,
    roam_conn: ConnId,
    /// How many descriptions were made so far, for fresh ICE credentials.
    descriptions: u32,
}

impl Pair {
    fn chatting(stay: &str, roam: &str, stay_calls: bool) -> Self {
        let mut pair = Self {
            stay: online(stay),
            roam: online(roam),
            stay_conn: 0,
            roam_conn: 0,
            descriptions: 0,
        };
        let (caller, callee) = if stay_calls {
            (&mut pair.stay, &mut pair.roam)
        } else {
            (&mut pair.roam, &mut pair.stay)
        };
        let callee_name = callee.username().to_owned();
        caller.connect_to_peer(&callee_name, T0).unwrap();
        let caller_conn = conn_of(&drain(caller).0);
        let cert = format!("CERT-{}-1", caller.username());
        caller.handle_transport(
            caller_conn,
            TransportEvent::LocalDescription(sdp_of("c1c1", &cert)),
            T0,
        );
        relay(drain(caller).0, callee);
        let callee_conn = conn_of(&drain(callee).0);
        let cert = format!("CERT-{callee_name}-1");
        callee.handle_transport(
            callee_conn,
            TransportEvent::LocalDescription(sdp_of("d1d1", &cert)),
            T0,
        );
        relay(drain(callee).0, caller);
        caller.handle_transport(caller_conn, TransportEvent::ChannelOpen, T0);
        callee.handle_transport(callee_conn, TransportEvent::ChannelOpen, T0);
        // The caller's first frame tells the callee that its end is open.
        carry(sends(&drain(caller).0), callee, callee_conn);
        drain(callee);
        (pair.stay_conn, pair.roam_conn) = if stay_calls {
            (caller_conn, callee_conn)
        } else {
            (callee_conn, caller_conn)
        };
        pair
    }

    fn names(&self) -> (String, String) {
        (
            self.stay.username().to_owned(),
            self.roam.username().to_owned(),
        )
    }

    /// The roaming peer's network changes and its broker connection is renewed. With
    /// `in_flight`, it offers a new connection; else a file of its is on its way, so it
    /// restarts ICE on the connection they share. Returns its offer, as published, and the
    /// connection it offers on.
    fn roam_moves(&mut self, in_flight: bool) -> (Vec<Action>, ConnId) {
        let stay = self.stay.username().to_owned();
        if in_flight {
            self.roam.send_message(&stay, "on the move").unwrap();
        } else {
            file_under_way(&mut self.roam, &stay);
        }
        drain(&mut self.roam);
        self.roam.network_changed(T0);
        self.roam.handle_signaling(SignalingInput::Lost, T0);
        self.roam.handle_signaling(SignalingInput::Connected, T0);
        self.roam.handle_signaling(SignalingInput::Subscribed, T0);
        let (actions, _) = drain(&mut self.roam);
        let conn = actions
            .iter()
            .find_map(|a| match a {
                Action::RestartIce { conn } => Some(*conn),
                Action::StartOffer { conn, .. } => Some(*conn),
                _ => None,
            })
            .expect("the roaming peer offers a way back");
        assert_eq!(conn == self.roam_conn, !in_flight, "{actions:?}");
        self.descriptions += 1;
        let ufrag = format!("r{:03}", self.descriptions);
        // An ICE restart keeps the certificate; a new connection has its own.
        let cert = if in_flight {
            format!("CERT-roam-{}", self.descriptions)
        } else {
            format!("CERT-{}-1", self.roam.username())
        };
        self.roam.handle_transport(
            conn,
            TransportEvent::LocalDescription(sdp_of(&ufrag, &cert)),
            T0,
        );
        (drain(&mut self.roam).0, conn)
    }

    /// Both ends of their new connection open and pass on what they send until it is quiet;
    /// returns what the roaming peer was shown from the side that stays put.
    fn open_both(&mut self, stay_conn: ConnId, roam_conn: ConnId) -> Vec<String> {
        let stay = self.stay.username().to_owned();
        self.roam
            .handle_transport(roam_conn, TransportEvent::ChannelOpen, T0);
        self.stay
            .handle_transport(stay_conn, TransportEvent::ChannelOpen, T0);
        let mut shown_to_roam = Vec::new();
        for _ in 0..3 {
            let (to_stay, events) = drain(&mut self.roam);
            shown_to_roam.extend(shown(&events, &stay));
            carry(sends(&to_stay), &mut self.stay, stay_conn);
            carry(sends(&drain(&mut self.stay).0), &mut self.roam, roam_conn);
        }
        shown_to_roam
    }

    /// What the side that stays put did with `actions` from the roaming peer.
    fn stay_receives(&mut self, actions: Vec<Action>) -> (Vec<Action>, Vec<ClientEvent>) {
        relay(actions, &mut self.stay);
        drain(&mut self.stay)
    }
}

/// `events` of the side that stays put say nothing of an ending, nor of a chat starting
/// over; a message written now is accepted.
fn assert_still_in_the_chat(m: &mut ClientMachine, events: &[ClientEvent], peer: &str) {
    assert_eq!(ended_why(events, peer), None, "{events:?}");
    let ending = [PeerStatus::Closed, PeerStatus::Failed, PeerStatus::New];
    assert!(
        !statuses(events, peer).iter().any(|s| ending.contains(s)),
        "{events:?}"
    );
    assert!(
        m.send_message(peer, "still here").is_ok(),
        "a message written while the chat is recovered waits for it"
    );
}

/// Chat-channel actions only (leaving out publishes and connection changes).
fn sends(actions: &[Action]) -> Vec<Action> {
    (actions.iter())
        .filter(|a| matches!(a, Action::SendText { .. } | Action::SendData { .. }))
        .cloned()
        .collect()
}

#[test]
fn a_restart_offer_after_the_roaming_peers_last_will_is_answered_on_the_same_connection() {
    for mut pair in every_pair() {
        let (_, roam) = pair.names();
        // The phone's old broker connection died with its network: its will says offline.
        presence(&mut pair.stay, &roam, false);
        let (offer, _) = pair.roam_moves(false);
        let (actions, events) = pair.stay_receives(offer);
        assert!(
            matches!(&actions[0], Action::AcceptOffer { conn, .. } if *conn == pair.stay_conn),
            "answered on the connection they share: {actions:?}"
        );
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::ClosePeer { .. }))
        );
        assert_still_in_the_chat(&mut pair.stay, &events, &roam);
        assert_eq!(
            sends(&drain(&mut pair.stay).0).len(),
            1,
            "written onto the kept channel"
        );
    }
}

#[test]
fn the_old_channel_closing_after_the_last_will_keeps_the_chat_in_recovery() {
    for mut pair in every_pair() {
        let (stay, roam) = pair.names();
        presence(&mut pair.stay, &roam, false);
        // The roaming peer dropped its old connection, and that reached us.
        pair.stay
            .handle_transport(pair.stay_conn, TransportEvent::ChannelClosed, T0);
        // The name that sorts first offers at once (into the roaming peer's renewal of its
        // broker connection: lost), the other a little later.
        let (ours, events) = drain(&mut pair.stay);
        let reconnecting = [PeerStatus::Disconnected, PeerStatus::Connecting];
        assert!(reconnecting.contains(&pair.stay.peer_status(&roam).unwrap()));
        assert_still_in_the_chat(&mut pair.stay, &events, &roam);
        let (actions, _) = drain(&mut pair.stay);
        assert!(sends(&actions).is_empty(), "the message waits: {actions:?}");
        let offered = ours.iter().find_map(|a| match a {
            Action::StartOffer { conn, .. } => Some(*conn),
            _ => None,
        });
        if let Some(conn) = offered {
            pair.stay.handle_transport(
                conn,
                TransportEvent::LocalDescription(sdp_of("s1s1", "CERT-stay-1")),
                T0,
            );
            drain(&mut pair.stay);
        }

        // The roaming peer offers too. Whose offer wins, the first name's goes (again).
        let (offer, roam_conn) = pair.roam_moves(true);
        let (actions, events) = pair.stay_receives(offer);
        assert_still_in_the_chat(&mut pair.stay, &events, &roam);
        let (stay_conn, roam_conn) = match offered {
            // Ours won, and went again: the roaming peer answers it.
            Some(conn) if stay < roam => {
                relay(actions, &mut pair.roam);
                let answering = conn_of(&drain(&mut pair.roam).0);
                pair.roam.handle_transport(
                    answering,
                    TransportEvent::LocalDescription(sdp_of("r2r2", "CERT-roam-2")),
                    T0,
                );
                relay(drain(&mut pair.roam).0, &mut pair.stay);
                (conn, answering)
            }
            // Theirs won: we answer it.
            _ => {
                let answering = conn_of(&actions);
                pair.stay.handle_transport(
                    answering,
                    TransportEvent::LocalDescription(sdp_of("s2s2", "CERT-stay-2")),
                    T0,
                );
                relay(drain(&mut pair.stay).0, &mut pair.roam);
                (answering, roam_conn)
            }
        };
        assert_ne!(stay_conn, pair.stay_conn, "a new connection");
        // The new channel opens: what waited goes, once each, in order.
        assert_eq!(
            pair.open_both(stay_conn, roam_conn),
            ["still here", "still here"]
        );
        assert_eq!(pair.stay.peer_status(&roam), Some(PeerStatus::Connected));
    }
}

#[test]
fn a_new_connection_offered_while_the_channel_still_looks_open_carries_the_chat_on() {
    for last_will in [false, true] {
        for mut pair in every_pair() {
            let (_, roam) = pair.names();
            // Written just before the switch: it dies in the air with the old path.
            pair.stay.send_message(&roam, "before").unwrap();
            drain(&mut pair.stay);
            if last_will {
                presence(&mut pair.stay, &roam, false);
            }
            let (offer, roam_conn) = pair.roam_moves(true);
            let (actions, events) = pair.stay_receives(offer);
            assert_eq!(
                actions[0],
                Action::ClosePeer {
                    conn: pair.stay_conn
                }
            );
            let stay_conn = conn_of(&actions);
            assert_eq!(statuses(&events, &roam), [PeerStatus::Connecting]);
            assert_still_in_the_chat(&mut pair.stay, &events, &roam);
            assert!(sends(&drain(&mut pair.stay).0).is_empty());

            pair.stay.handle_transport(
                stay_conn,
                TransportEvent::LocalDescription(sdp_of("s2s2", "CERT-stay-2")),
                T0,
            );
            relay(drain(&mut pair.stay).0, &mut pair.roam);
            assert_eq!(
                pair.open_both(stay_conn, roam_conn),
                ["before", "still here"]
            );
        }
    }
}

#[test]
fn reports_from_the_replaced_connection_change_nothing() {
    for mut pair in every_pair() {
        let (_, roam) = pair.names();
        let (offer, _) = pair.roam_moves(true);
        pair.stay_receives(offer);
        let status = pair.stay.peer_status(&roam);
        // The old connection's last words arrive after the new offer.
        for event in [
            TransportEvent::ChannelClosed,
            TransportEvent::StateChanged(PeerStatus::Disconnected),
            TransportEvent::StateChanged(PeerStatus::Failed),
            TransportEvent::StateChanged(PeerStatus::Closed),
            TransportEvent::Failed("gone".into()),
        ] {
            pair.stay.handle_transport(pair.stay_conn, event, T0);
            assert_eq!(drain(&mut pair.stay), (vec![], vec![]));
        }
        assert_eq!(pair.stay.peer_status(&roam), status);
    }
}

#[test]
fn the_current_connection_reported_closed_or_failed_is_recovered_not_ended() {
    for report in [
        TransportEvent::StateChanged(PeerStatus::Closed),
        TransportEvent::StateChanged(PeerStatus::Failed),
        TransportEvent::Failed("broken".into()),
    ] {
        for mut pair in every_pair() {
            let (_, roam) = pair.names();
            presence(&mut pair.stay, &roam, false);
            pair.stay
                .handle_transport(pair.stay_conn, report.clone(), T0);
            let (_, events) = drain(&mut pair.stay);
            assert_still_in_the_chat(&mut pair.stay, &events, &roam);
            assert!(pair.stay.recovering(&roam));
        }
    }
}

#[test]
fn an_undelivered_recovery_offer_is_tried_again_rather_than_ending_the_chat() {
    for mut pair in every_pair() {
        let (_, roam) = pair.names();
        // Our path is lost with a message in flight: we offer a new connection (at once,
        // or a little later when our name sorts second).
        pair.stay.send_message(&roam, "in flight").unwrap();
        pair.stay
            .handle_transport(pair.stay_conn, TransportEvent::Failed("lost".into()), T0);
        let at = T0 + 3_000;
        pair.stay.handle_timeout(at);
        let (actions, _) = drain(&mut pair.stay);
        let conn = conn_of(&actions);
        pair.stay.handle_transport(
            conn,
            TransportEvent::LocalDescription(sdp_of("s3s3", "CERT-stay-3")),
            at,
        );
        drain(&mut pair.stay);
        // The roaming peer was between broker connections: the server says so.
        deliver(
            &mut pair.stay,
            &SignalMessage::DeliveryFailed {
                target: roam.clone(),
                reason: "user-offline".into(),
                timestamp: 0,
            },
        );
        let (_, events) = drain(&mut pair.stay);
        assert_still_in_the_chat(&mut pair.stay, &events, &roam);
        assert!(pair.stay.recovering(&roam));
        assert!(
            pair.stay.poll_timeout().is_some(),
            "another offer is planned"
        );
        // Its presence comes back: the next offer goes at once.
        presence(&mut pair.stay, &roam, false);
        presence(&mut pair.stay, &roam, true);
        let (actions, _) = drain(&mut pair.stay);
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::StartOffer { .. })),
            "{actions:?}"
        );
    }
}

#[test]
fn a_lost_path_while_the_peer_looks_offline_is_recovered_until_the_window_ends() {
    for mut pair in every_pair() {
        let (_, roam) = pair.names();
        presence(&mut pair.stay, &roam, false);
        pair.stay.handle_transport(
            pair.stay_conn,
            TransportEvent::StateChanged(PeerStatus::Disconnected),
            T0,
        );
        let mut now = T0;
        let ended = loop {
            let (_, events) = drain(&mut pair.stay);
            if let Some(reason) = ended_why(&events, &roam) {
                break reason;
            }
            assert_still_in_the_chat(&mut pair.stay, &events, &roam);
            now = pair.stay.poll_timeout().expect("recovery goes on");
            pair.stay.handle_timeout(now);
        };
        assert_eq!(ended, ChatEnd::Unreachable);
        // docs/PROTOCOL.md: lost "for 2 s", then "After 60 s the chat ends".
        assert_eq!(now, T0 + 2_000 + 60_000);
        assert!(pair.stay.send_message(&roam, "too late").is_err());
    }
}

#[test]
fn a_bye_ends_the_chat_at_once_whatever_the_presence_says() {
    for mut pair in every_pair() {
        let (_, roam) = pair.names();
        presence(&mut pair.stay, &roam, false);
        pair.stay.handle_transport(
            pair.stay_conn,
            TransportEvent::ChannelMessage(protocol::ChatFrame::Bye.encode()),
            T0,
        );
        let (_, events) = drain(&mut pair.stay);
        assert_eq!(ended_why(&events, &roam), Some(ChatEnd::PeerLeft));
        assert_eq!(statuses(&events, &roam), [PeerStatus::Closed]);
    }
}

/// A peer that leaves says `bye` and closes. The close can be reported first (the
/// connection's state and the channel's messages come from different tasks), and the
/// `bye` then arrives on the connection the chat has just left: it still ends the chat at
/// once, as the peer leaving, instead of after the recovery window.
#[test]
fn a_bye_overtaken_by_its_connection_closing_still_ends_the_chat() {
    for mut pair in every_pair() {
        let (_, roam) = pair.names();
        let left = pair.stay_conn;
        pair.stay
            .handle_transport(left, TransportEvent::StateChanged(PeerStatus::Closed), T0);
        let (_, events) = drain(&mut pair.stay);
        assert_still_in_the_chat(&mut pair.stay, &events, &roam);
        pair.stay.handle_transport(
            left,
            TransportEvent::ChannelMessage(protocol::ChatFrame::Bye.encode()),
            T0 + 1,
        );
        let (_, events) = drain(&mut pair.stay);
        assert_eq!(ended_why(&events, &roam), Some(ChatEnd::PeerLeft));
        assert_eq!(statuses(&events, &roam), [PeerStatus::Closed]);
    }
}

/// Once the peer has offered a way back, or the chat's new connection is open, the old
/// connection has nothing more to say: a `bye` arriving on it late ends nothing.
#[test]
fn a_late_bye_on_a_connection_left_behind_ends_nothing_once_the_chat_moved_on() {
    for opened in [false, true] {
        for mut pair in every_pair() {
            let (_, roam) = pair.names();
            let left = pair.stay_conn;
            let (offer, _) = pair.roam_moves(true);
            let (actions, _) = pair.stay_receives(offer);
            let moved = conn_of(&actions);
            assert_ne!(moved, left, "{actions:?}");
            if opened {
                pair.stay
                    .handle_transport(moved, TransportEvent::ChannelOpen, T0);
            }
            drain(&mut pair.stay);
            pair.stay.handle_transport(
                left,
                TransportEvent::ChannelMessage(protocol::ChatFrame::Bye.encode()),
                T0 + 1,
            );
            let (_, events) = drain(&mut pair.stay);
            assert_still_in_the_chat(&mut pair.stay, &events, &roam);
        }
    }
}

#[test]
fn an_answer_to_an_offer_replaced_since_is_ignored() {
    for mut pair in every_pair() {
        // The phone's network changes twice in a row (the new link, then the old one
        // going): its first offer is answered after it has offered again.
        let (first_offer, _) = pair.roam_moves(true);
        let (actions, _) = pair.stay_receives(first_offer);
        let answering = conn_of(&actions);
        pair.stay.handle_transport(
            answering,
            TransportEvent::LocalDescription(sdp_of("a1a1", "CERT-stay-a1")),
            T0,
        );
        let (late_answer, _) = drain(&mut pair.stay);
        let (second_offer, roam_conn) = pair.roam_moves(true);

        relay(late_answer, &mut pair.roam);
        let (actions, events) = drain(&mut pair.roam);
        assert!(actions.is_empty(), "{actions:?}");
        assert!(events.is_empty(), "no error either: {events:?}");

        // The answer to the second offer is the one applied.
        let (actions, _) = pair.stay_receives(second_offer);
        let answering = conn_of(&actions);
        pair.stay.handle_transport(
            answering,
            TransportEvent::LocalDescription(sdp_of("a2a2", "CERT-stay-a2")),
            T0,
        );
        relay(drain(&mut pair.stay).0, &mut pair.roam);
        let (actions, _) = drain(&mut pair.roam);
        assert!(
            matches!(&actions[..], [Action::ApplyAnswer { conn, .. }, ..] if *conn == roam_conn),
            "{actions:?}"
        );
    }
}

#[test]
fn the_answerer_writes_on_a_new_channel_once_the_offerers_end_is_open() {
    for (stay, roam) in NAMES {
        let mut offerer = online(roam);
        let mut answerer = online(stay);
        offerer.connect_to_peer(stay, T0).unwrap();
        let o_conn = conn_of(&drain(&mut offerer).0);
        offerer.handle_transport(o_conn, TransportEvent::LocalDescription(sdp("o1o1")), T0);
        relay(drain(&mut offerer).0, &mut answerer);
        let a_conn = conn_of(&drain(&mut answerer).0);
        answerer.handle_transport(a_conn, TransportEvent::LocalDescription(sdp("a1a1")), T0);
        relay(drain(&mut answerer).0, &mut offerer);
        // The answerer's end opens first (the offerer's opens when its acknowledgement
        // of the channel arrives): what it writes waits.
        answerer.handle_transport(a_conn, TransportEvent::ChannelOpen, T0);
        answerer.send_message(roam, "first").unwrap();
        assert!(sends(&drain(&mut answerer).0).is_empty());
        // The offerer's end opens and it says so; then the message goes.
        offerer.handle_transport(o_conn, TransportEvent::ChannelOpen, T0);
        let hello = sends(&drain(&mut offerer).0);
        assert_eq!(hello.len(), 1, "{hello:?}");
        carry(hello, &mut answerer, a_conn);
        let first = sends(&drain(&mut answerer).0);
        carry(first, &mut offerer, o_conn);
        assert_eq!(shown(&drain(&mut offerer).1, stay), ["first"]);
        // Later messages go at once.
        answerer.send_message(roam, "second").unwrap();
        assert_eq!(sends(&drain(&mut answerer).0).len(), 1);
    }
}

#[test]
fn a_silent_peer_gets_what_waited_after_a_moment() {
    let (mut alice, mut bob) = (online("alice"), online("bob"));
    alice.connect_to_peer("bob", T0).unwrap();
    let a_conn = conn_of(&drain(&mut alice).0);
    alice.handle_transport(a_conn, TransportEvent::LocalDescription(sdp("o1o1")), T0);
    relay(drain(&mut alice).0, &mut bob);
    let b_conn = conn_of(&drain(&mut bob).0);
    bob.handle_transport(b_conn, TransportEvent::LocalDescription(sdp("a1a1")), T0);
    relay(drain(&mut bob).0, &mut alice);
    bob.handle_transport(b_conn, TransportEvent::ChannelOpen, T0);
    bob.send_message("alice", "waited").unwrap();
    drain(&mut bob);
    // Alice's first frame is lost, or she is a build that says nothing.
    // docs/PROTOCOL.md: "until it has heard from the peer on it (or 200 ms passed)".
    assert_eq!(bob.poll_timeout(), Some(T0 + 200));
    bob.handle_timeout(T0 + 200);
    assert_eq!(sends(&drain(&mut bob).0).len(), 1, "it goes anyway");
}
