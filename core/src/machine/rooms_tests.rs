//! Rooms between client machines: three or four clients with identity keys, their chat
//! channels carried by hand, room frames and receipts included.

use std::collections::BTreeMap;

use super::durable_tests::apply;
use super::tests::{T0, connected_pair, connected_to_original, drain_stored, sealing};
use super::*;
use crate::room::{RoomError, RoomId, RoomMessage};

/// Clients whose chat channels are joined pairwise: what one sends on a connection reaches
/// the client at its other end.
struct Mesh {
    clients: Vec<ClientMachine>,
    channels: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    events: Vec<Vec<ClientEvent>>,
    /// What each client asked its store to keep.
    stored: Vec<Vec<StoreOp>>,
    restarts: u64,
    /// Pairs with a chat open, lower index first.
    open: std::collections::BTreeSet<(usize, usize)>,
    now: u64,
    /// Calls the clients made by themselves (the room mesh): caller, its conn, callee.
    calls: Vec<(usize, ConnId, String)>,
    /// Whether the clients call room members themselves; otherwise every chat is opened
    /// by the test.
    mesh_calls: bool,
}

impl Mesh {
    fn new(names: &[&str]) -> Self {
        Self::with_mesh_calls(names, false)
    }

    fn with_mesh_calls(names: &[&str], mesh_calls: bool) -> Self {
        let clients: Vec<_> = (names.iter().zip(1u8..))
            .map(|(name, seed)| {
                let mut client = sealing(name, seed);
                client.mesh.off = !mesh_calls;
                client
            })
            .collect();
        Self {
            calls: Vec::new(),
            mesh_calls,
            events: vec![Vec::new(); clients.len()],
            stored: vec![Vec::new(); clients.len()],
            open: Default::default(),
            restarts: 0,
            clients,
            channels: BTreeMap::new(),
            now: T0,
        }
    }

    /// Opens a chat between `a` and `b` (a offers), and lets their rooms meet.
    fn connect(&mut self, a: usize, b: usize) {
        let (low, high) = (a.min(b), a.max(b));
        let (left, right) = self.clients.split_at_mut(high);
        let (x, y) = (&mut left[low], &mut right[0]);
        let (x_conn, y_conn) = if a < b {
            connected_pair(x, y)
        } else {
            let (y_conn, x_conn) = connected_pair(y, x);
            (x_conn, y_conn)
        };
        self.open.insert((low, high));
        self.channels.insert((low, x_conn), (high, y_conn));
        self.channels.insert((high, y_conn), (low, x_conn));
        // `connected_pair` drained what the channel opening said: say it again.
        let (a_name, b_name) = (self.name(a), self.name(b));
        self.clients[a].meet_rooms(&b_name);
        self.clients[b].meet_rooms(&a_name);
        self.pump();
    }

    /// `a` closes its chat with `b`: the channel is gone.
    fn disconnect(&mut self, a: usize, b: usize) {
        let b_name = self.name(b);
        let a_name = self.name(a);
        self.open.remove(&(a.min(b), a.max(b)));
        self.clients[a].close_peer(&b_name).unwrap();
        self.channels
            .retain(|(from, _), (to, _)| !((*from == a && *to == b) || (*from == b && *to == a)));
        self.pump();
        let _ = self.clients[b].close_peer(&a_name);
        self.pump();
    }

    /// Client `n` stops and starts again from what its store kept: its chats are gone.
    fn restart(&mut self, n: usize) {
        self.channels
            .retain(|(from, _), (to, _)| *from != n && *to != n);
        self.open.retain(|(a, b)| *a != n && *b != n);
        let name = self.name(n);
        let saved = apply(SavedState::fresh(format!("run-{name}")), &self.stored[n]);
        let mut again = ClientMachine::resume(&name, saved).unwrap();
        again.set_identity(crate::identity::Identity::from_seed([n as u8 + 1; 32]));
        again.mesh.off = !self.mesh_calls;
        // Time went on: its seals are later than the ones before the restart (else peers
        // refuse them as replays).
        self.restarts += 1;
        again.handle_wall_clock(T0, super::tests::WALL0 + self.restarts * 10_000);
        again.handle_signaling(SignalingInput::Connected, T0);
        again.handle_signaling(SignalingInput::Subscribed, T0);
        again.handle_timeout(T0 + registration::PRESENCE_GRACE_MS);
        assert!(again.is_online());
        drain_stored(&mut again);
        self.clients[n] = again;
        self.events[n].clear();
        for (other, client) in self.clients.iter_mut().enumerate() {
            if other != n {
                let _ = client.close_peer(&name);
                drain_stored(client);
            }
        }
    }

    /// Carries the calls the clients made by themselves until they make no more, letting
    /// each chat's rooms meet; returns how many were answered.
    fn answer_calls(&mut self) -> usize {
        let mut answered = 0;
        while let Some((from, conn, peer)) = self.calls.pop() {
            let Some(to) = (0..self.clients.len()).find(|n| self.name(*n) == peer) else {
                continue;
            };
            let (low, high) = (from.min(to), from.max(to));
            let (left, right) = self.clients.split_at_mut(high);
            let (caller, callee) = if from < to {
                (&mut left[low], &mut right[0])
            } else {
                (&mut right[0], &mut left[low])
            };
            let to_conn = super::tests::answer_call(caller, conn, callee);
            self.open.insert((low, high));
            self.channels.insert((from, conn), (to, to_conn));
            self.channels.insert((to, to_conn), (from, conn));
            let (from_name, to_name) = (self.name(from), self.name(to));
            self.clients[from].meet_rooms(&to_name);
            self.clients[to].meet_rooms(&from_name);
            answered += 1;
            self.pump();
        }
        answered
    }

    fn name(&self, n: usize) -> String {
        self.clients[n].username().to_owned()
    }

    /// The connection on which client `at` hears client `from`.
    fn conn(&self, at: usize, from: usize) -> ConnId {
        (self.channels.iter())
            .find(|(sender, receiver)| sender.0 == from && receiver.0 == at)
            .map(|(_, receiver)| receiver.1)
            .expect("the two have a chat")
    }

    /// Hands `frame` to client `to` as client `from` would send it, now; what `to` says
    /// back waits for the next [`Mesh::pump`].
    fn hand_frame(&mut self, from: usize, to: usize, frame: &crate::room::RoomFrame) {
        let conn = self.conn(to, from);
        let text = frame.encode().expect("a frame that fits a channel message");
        self.clients[to].handle_transport(conn, TransportEvent::ChannelMessage(text), self.now);
    }

    /// Carries every chat frame until nobody has anything more to say, letting receipt
    /// delays pass.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut carried = false;
            for from in 0..self.clients.len() {
                let (actions, events, stored) = drain_stored(&mut self.clients[from]);
                self.events[from].extend(events);
                self.stored[from].extend(stored);
                for action in actions {
                    if let Action::StartOffer { peer, conn } = action {
                        self.calls.push((from, conn, peer));
                    } else if let Action::SendText { conn, text } = action
                        && let Some(&(to, to_conn)) = self.channels.get(&(from, conn))
                    {
                        let event = TransportEvent::ChannelMessage(text);
                        self.clients[to].handle_transport(to_conn, event, self.now);
                        carried = true;
                    }
                }
            }
            if !carried {
                let due = self.clients.iter().filter_map(|c| c.poll_timeout()).min();
                match due {
                    Some(at) if at <= self.now + 100 => {
                        self.now = self.now.max(at);
                        for client in &mut self.clients {
                            client.handle_timeout(self.now);
                        }
                    }
                    _ => return,
                }
            }
        }
        panic!("the clients never fell silent");
    }

    fn room_texts(&self, n: usize) -> Vec<(String, String)> {
        (self.events[n].iter())
            .filter_map(|e| match e {
                ClientEvent::RoomMessage { author, text, .. } => {
                    Some((author.clone(), text.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Who holds client `n`'s message `seq` and who lacks it, as `n` last reported it
    /// (its events taken in now; its frames wait for the next pump).
    fn delivery(&mut self, n: usize, seq: u64) -> (Vec<String>, Vec<String>) {
        while let Some(event) = self.clients[n].poll_event() {
            self.events[n].push(event);
        }
        (self.events[n].iter().rev())
            .find_map(|e| match e {
                ClientEvent::RoomDelivery {
                    seq: s, holders, ..
                } if *s == seq => Some((holders.have.clone(), holders.lack.clone())),
                _ => None,
            })
            .expect("a delivery was reported")
    }

    fn refusals(&self, n: usize) -> Vec<RoomError> {
        (self.events[n].iter())
            .filter_map(|e| match e {
                ClientEvent::RoomRefused { error, .. } => Some(error.clone()),
                _ => None,
            })
            .collect()
    }

    /// Alice (0) makes a room and invites everyone but the last client.
    fn room_of_all_but_last(&mut self) -> RoomId {
        let room = self.clients[0].create_room("club", [3; 16]).unwrap();
        for n in 1..self.clients.len() - 1 {
            let name = self.name(n);
            self.clients[0].invite_to_room(&room, &name).unwrap();
        }
        self.pump();
        room
    }

    /// Alice (0) makes a room and invites everyone else.
    fn room_of_all(&mut self) -> RoomId {
        let room = self.clients[0].create_room("club", [3; 16]).unwrap();
        for n in 1..self.clients.len() {
            let name = self.name(n);
            self.clients[0].invite_to_room(&room, &name).unwrap();
        }
        self.pump();
        room
    }
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;

#[test]
fn invited_members_join_and_a_message_reaches_and_is_delivered_to_all() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    let room = mesh.room_of_all();
    for n in [BOB, CAROL] {
        let joined = mesh.clients[n].room(&room).expect("invited and joined");
        assert!(joined.joined());
        assert_eq!(joined.members(), ["alice", "bob", "carol"]);
        assert!(mesh.events[n].iter().any(|e| matches!(
            e,
            ClientEvent::RoomMembers { members, joined: true, .. } if members.len() == 3
        )));
    }
    mesh.clients[ALICE]
        .send_room_message(&room, "hello room")
        .unwrap();
    mesh.pump();
    for n in [BOB, CAROL] {
        assert_eq!(
            mesh.room_texts(n),
            [("alice".to_owned(), "hello room".to_owned())]
        );
    }
    let last_delivery = mesh.events[ALICE].iter().rev().find_map(|e| match e {
        ClientEvent::RoomDelivery { seq, holders, .. } => Some((*seq, holders.delivered())),
        _ => None,
    });
    assert_eq!(last_delivery, Some((1, true)));
    assert_eq!(
        mesh.delivery(ALICE, 1),
        (names(&["alice", "bob", "carol"]), names(&[]))
    );
}

#[test]
fn the_author_learns_who_holds_its_message_as_receipts_arrive_and_members_come_and_go() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol", "dave"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    let room = mesh.room_of_all_but_last();
    mesh.disconnect(ALICE, CAROL);
    mesh.clients[ALICE].send_room_message(&room, "hi").unwrap();
    mesh.pump();
    let (have, lack) = mesh.delivery(ALICE, 1);
    assert_eq!((have, lack), (names(&["alice", "bob"]), names(&["carol"])));

    // Dave, invited, lacks it at once, and holds it once his receipt came.
    const DAVE: usize = 3;
    mesh.connect(ALICE, DAVE);
    mesh.clients[ALICE].invite_to_room(&room, "dave").unwrap();
    let (have, lack) = mesh.delivery(ALICE, 1);
    assert_eq!(have, names(&["alice", "bob"]));
    assert_eq!(lack, names(&["carol", "dave"]));
    mesh.pump();
    let (have, lack) = mesh.delivery(ALICE, 1);
    assert_eq!(have, names(&["alice", "bob", "dave"]));
    assert_eq!(lack, names(&["carol"]));

    // Carol, removed, is waited for no more: everyone left holds it.
    mesh.clients[ALICE]
        .remove_from_room(&room, "carol")
        .unwrap();
    let (have, lack) = mesh.delivery(ALICE, 1);
    assert_eq!(have, names(&["alice", "bob", "dave"]));
    assert!(lack.is_empty());
}

#[test]
fn a_member_who_was_away_gets_everything_from_another_member() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    let room = mesh.room_of_all();
    mesh.disconnect(ALICE, CAROL);
    for n in 1..=10 {
        mesh.clients[ALICE]
            .send_room_message(&room, &format!("note {n}"))
            .unwrap();
    }
    mesh.pump();
    mesh.disconnect(ALICE, BOB);
    assert!(mesh.room_texts(CAROL).is_empty());
    mesh.connect(BOB, CAROL);
    let expected: Vec<_> = (1..=10)
        .map(|n| ("alice".to_owned(), format!("note {n}")))
        .collect();
    assert_eq!(mesh.room_texts(CAROL), expected);
    let kept: Vec<&RoomMessage> = mesh.clients[CAROL]
        .room(&room)
        .unwrap()
        .messages()
        .collect();
    let alice_key = mesh.clients[ALICE].identity_key().unwrap();
    assert!(
        kept.iter()
            .all(|m| alice_key.verifies(&m.signed_bytes(), &m.sig)),
        "each is signed by alice"
    );
}

/// What client `n` was shown of room pictures: author, number and bytes.
fn pictures_shown(mesh: &Mesh, n: usize) -> Vec<(String, u64, Vec<u8>)> {
    (mesh.events[n].iter())
        .filter_map(|e| match e {
            ClientEvent::RoomPicture {
                author, seq, data, ..
            } => Some((author.clone(), *seq, data.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn one_picture_named_by_many_messages_is_handed_to_the_app_a_few_times_only() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    mesh.connect(ALICE, BOB);
    let room = mesh.room_of_all();
    let data = vec![5u8; 50_000];
    for _ in 0..6 {
        mesh.clients[ALICE]
            .send_room_picture(&room, "same.png", "image/png", &data)
            .unwrap();
    }
    mesh.pump();
    let messages = (mesh.events[BOB].iter())
        .filter(|e| {
            matches!(
                e,
                ClientEvent::RoomMessage {
                    picture: Some(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!(messages, 6, "every message is shown");
    let seqs: Vec<u64> = (pictures_shown(&mesh, BOB).into_iter())
        .map(|(_, seq, _)| seq)
        .collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4],
        "the picture's bytes go to the app four times at most"
    );
}

#[test]
fn past_the_bound_over_all_rooms_the_oldest_pictures_in_any_room_are_let_go() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    mesh.connect(ALICE, BOB);
    let mib = 1024 * 1024;
    let mut sent = Vec::new();
    for r in 0..3u8 {
        let room = mesh.clients[ALICE].create_room("club", [r; 16]).unwrap();
        mesh.clients[ALICE].invite_to_room(&room, "bob").unwrap();
        mesh.pump();
        for p in 0..2u8 {
            let data = vec![r * 2 + p; mib];
            mesh.clients[ALICE]
                .send_room_picture(&room, "p.png", "image/png", &data)
                .unwrap();
            mesh.pump();
            sent.push((room.clone(), crate::room::sha256_hex(&data)));
        }
    }
    // Six pictures of 1 MiB in three rooms, past the 5 MiB bound under test: each side
    // let the oldest go, whatever room it was in.
    for n in [ALICE, BOB] {
        let held: Vec<bool> = (sent.iter())
            .map(|(room, sha256)| {
                mesh.clients[n]
                    .room(room)
                    .unwrap()
                    .picture_bytes(sha256)
                    .is_some()
            })
            .collect();
        assert_eq!(held, [false, true, true, true, true, true], "client {n}");
    }
    assert_eq!(pictures_shown(&mesh, BOB).len(), 6, "bob was shown all six");
}

#[test]
fn a_picture_reaches_a_member_who_meets_a_relayer_after_the_author_left() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    let room = mesh.room_of_all();
    mesh.disconnect(ALICE, CAROL);
    let data: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
    mesh.clients[ALICE]
        .send_room_picture(&room, "cat.png", "image/png", &data)
        .unwrap();
    mesh.pump();
    let expected = vec![("alice".to_owned(), 1, data.clone())];
    assert_eq!(pictures_shown(&mesh, BOB), expected);
    mesh.disconnect(ALICE, BOB);
    mesh.connect(BOB, CAROL);
    let described = mesh.events[CAROL].iter().find_map(|e| match e {
        ClientEvent::RoomMessage { picture, .. } => picture.clone(),
        _ => None,
    });
    let described = described.expect("carol was shown the message, with its picture");
    assert_eq!(
        (described.size, &described.sha256),
        (300_000, &crate::room::sha256_hex(&data))
    );
    assert_eq!(pictures_shown(&mesh, CAROL), expected, "shown once, whole");
    assert!(
        mesh.refusals(CAROL).is_empty(),
        "{:?}",
        mesh.refusals(CAROL)
    );
    // Kept: after a restart carol still holds the bytes, and passes them on.
    mesh.restart(CAROL);
    let kept = mesh.clients[CAROL].room(&room).unwrap();
    assert_eq!(kept.picture_bytes(&described.sha256), Some(&data[..]));
    assert!(kept.lacking_pictures(8, 0).is_empty());
}

#[test]
fn a_member_without_room_pictures_is_sent_no_picture_and_hears_the_others_on() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    mesh.connect(BOB, CAROL);
    let room = mesh.room_of_all();
    // Carol runs a peerchat from before pictures in rooms, as alice and bob see her.
    for n in [ALICE, BOB] {
        let caps = mesh.clients[n].peers.get_mut("carol").unwrap();
        let caps = caps.remote_caps.as_mut().unwrap();
        caps.features
            .retain(|f| f != crate::protocol::FEATURE_ROOM_PICTURES);
    }
    mesh.clients[ALICE]
        .send_room_picture(&room, "cat.png", "image/png", b"not really a png")
        .unwrap();
    mesh.pump();
    assert_eq!(pictures_shown(&mesh, BOB).len(), 1);
    mesh.clients[BOB]
        .send_room_message(&room, "nice cat")
        .unwrap();
    mesh.pump();
    assert_eq!(
        mesh.room_texts(CAROL),
        [("bob".to_owned(), "nice cat".to_owned())]
    );
    let troubles = (mesh.events[CAROL].iter()).filter(|e| {
        matches!(
            e,
            ClientEvent::RoomRefused { .. }
                | ClientEvent::Error(_)
                | ClientEvent::RoomPicture { .. }
        )
    });
    assert_eq!(troubles.count(), 0, "{:?}", mesh.events[CAROL]);
}

#[test]
fn a_member_holding_a_picture_message_without_its_bytes_asks_for_them_at_the_next_meeting() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    mesh.connect(ALICE, BOB);
    let room = mesh.room_of_all();
    let data = vec![7u8; 100_000];
    let seq = mesh.clients[ALICE]
        .send_room_picture(&room, "grey.png", "image/png", &data)
        .unwrap();
    // Bob gets the message but the channel goes down before any piece arrives.
    let (actions, _, stored) = drain_stored(&mut mesh.clients[ALICE]);
    mesh.stored[ALICE].extend(stored);
    let message = (actions.iter())
        .find_map(|a| match a {
            Action::SendText { text, .. } if text.contains(r#""op":"message""#) => Some(text),
            _ => None,
        })
        .unwrap();
    let event = TransportEvent::ChannelMessage(message.clone());
    let conn = mesh.conn(BOB, ALICE);
    mesh.clients[BOB].handle_transport(conn, event, mesh.now);
    mesh.pump();
    let sha256 = crate::room::sha256_hex(&data);
    let bob = mesh.clients[BOB].room(&room).unwrap();
    assert_eq!(bob.lacking_pictures(8, 0), [sha256]);
    assert!(pictures_shown(&mesh, BOB).is_empty());
    mesh.disconnect(ALICE, BOB);
    mesh.connect(ALICE, BOB);
    assert_eq!(
        pictures_shown(&mesh, BOB),
        [("alice".to_owned(), seq, data)]
    );
}

#[test]
fn asks_in_a_stream_get_picture_bytes_at_most_once_a_second() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    mesh.connect(ALICE, BOB);
    let room = mesh.room_of_all();
    let data = vec![9u8; 100_000];
    mesh.clients[ALICE]
        .send_room_picture(&room, "grey.png", "image/png", &data)
        .unwrap();
    mesh.pump();
    // Bob's side of the chat, as a patched client would use it: asks, one after another.
    let conn = mesh.conn(ALICE, BOB);
    let ask = crate::room::RoomFrame::Marks {
        room: room.clone(),
        version: None,
        marks: Default::default(),
        ask: true,
        lacking: vec![crate::room::sha256_hex(&data)],
    };
    let text = ask.encode().unwrap();
    let pieces_sent = |mesh: &mut Mesh, asks: usize| {
        for _ in 0..asks {
            let event = TransportEvent::ChannelMessage(text.clone());
            mesh.clients[ALICE].handle_transport(conn, event, mesh.now);
        }
        let (actions, _, _) = drain_stored(&mut mesh.clients[ALICE]);
        (actions.iter())
            .filter(
                |a| matches!(a, Action::SendText { text, .. } if text.contains(r#""op":"piece""#)),
            )
            .count()
    };
    // The first answer carries the picture (in pieces), with the message; the others
    // within the second, messages only.
    let per_answer = data.len().div_ceil(crate::room::ROOM_PIECE_BYTES);
    assert_eq!(pieces_sent(&mut mesh, 5), per_answer);
    mesh.now += 1_000;
    assert_eq!(
        pieces_sent(&mut mesh, 5),
        per_answer,
        "a second later, once more"
    );
}

#[test]
fn a_catch_up_larger_than_one_meeting_takes_several_batches() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    let room = mesh.room_of_all();
    mesh.disconnect(ALICE, CAROL);
    let count = crate::room::MAX_MESSAGES_PER_MEETING + 10;
    for n in 0..count {
        mesh.clients[ALICE]
            .send_room_message(&room, &n.to_string())
            .unwrap();
    }
    mesh.pump();
    mesh.connect(ALICE, CAROL);
    assert_eq!(mesh.room_texts(CAROL).len(), count);
}

#[test]
fn a_message_forged_in_another_members_name_is_refused_with_an_event() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    mesh.connect(BOB, CAROL);
    let room = mesh.room_of_all();
    // Bob signs a message in alice's name and passes it to carol.
    let bob_identity = crate::identity::Identity::from_seed([2; 32]);
    let forged = RoomMessage::signed(room.clone(), "alice", (1, 5, 2), "bob wins", &bob_identity);
    let frame = crate::room::RoomFrame::Message(forged).encode().unwrap();
    let conn = mesh.conn(CAROL, BOB);
    mesh.clients[CAROL].handle_transport(conn, TransportEvent::ChannelMessage(frame), T0);
    mesh.pump();
    assert_eq!(
        mesh.refusals(CAROL),
        [RoomError::Impersonation {
            claimed: "alice".into(),
            signer: "bob".into()
        }]
    );
    assert!(mesh.room_texts(CAROL).is_empty());
}

#[test]
fn a_message_from_a_non_member_is_refused_with_an_event() {
    let mut mesh = Mesh::new(&["alice", "bob", "mallory"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(BOB, 2);
    let room = mesh.clients[ALICE].create_room("club", [4; 16]).unwrap();
    mesh.clients[ALICE].invite_to_room(&room, "bob").unwrap();
    mesh.pump();
    let mallory_identity = crate::identity::Identity::from_seed([3; 32]);
    let message = RoomMessage::signed(room, "mallory", (1, 1, 1), "let me in", &mallory_identity);
    let frame = crate::room::RoomFrame::Message(message).encode().unwrap();
    let conn = mesh.conn(BOB, 2);
    mesh.clients[BOB].handle_transport(conn, TransportEvent::ChannelMessage(frame), T0);
    mesh.pump();
    assert!(matches!(
        mesh.refusals(BOB)[..],
        [RoomError::NotAMember { .. }]
    ));
}

#[test]
fn a_removed_member_hears_nothing_more() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    mesh.connect(BOB, CAROL);
    let room = mesh.room_of_all();
    mesh.clients[BOB]
        .leave_room(&room)
        .expect("a member may leave");
    mesh.pump();
    assert_eq!(
        mesh.clients[ALICE].room(&room).unwrap().members(),
        ["alice", "carol"]
    );
    assert_eq!(
        mesh.clients[CAROL].room(&room).unwrap().members(),
        ["alice", "carol"]
    );
    mesh.clients[CAROL]
        .send_room_message(&room, "just us")
        .unwrap();
    mesh.pump();
    assert_eq!(mesh.room_texts(ALICE).len(), 1);
    assert!(mesh.room_texts(BOB).is_empty());
    assert!(matches!(
        mesh.clients[BOB].send_room_message(&room, "still here?"),
        Err(ClientError::Room(RoomError::AfterRemoval { .. }))
    ));
}

#[test]
fn inviting_an_original_client_or_a_stranger_says_they_cannot_join() {
    let mut alice = sealing("alice", 1);
    connected_to_original(&mut alice);
    let room = alice.create_room("club", [5; 16]).unwrap();
    assert_eq!(
        alice.invite_to_room(&room, "bob"),
        Err(ClientError::RoomsUnsupported("bob".into()))
    );
    assert_eq!(
        alice.invite_to_room(&room, "dave"),
        Err(ClientError::Room(RoomError::NoIdentityKey {
            name: "dave".into()
        }))
    );
    let unknown = RoomId::from_random([6; 16]);
    assert!(matches!(
        alice.send_room_message(&unknown, "hi"),
        Err(ClientError::UnknownRoom(_))
    ));
}

#[test]
fn a_client_without_an_identity_key_cannot_make_rooms() {
    let mut plain = super::tests::online("alice");
    assert!(matches!(
        plain.create_room("club", [7; 16]),
        Err(ClientError::Room(RoomError::NoIdentityKey { .. }))
    ));
}

#[test]
fn a_message_reaches_a_member_the_author_does_not_chat_with_through_another() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    mesh.connect(BOB, CAROL);
    let room = mesh.room_of_all();
    mesh.disconnect(ALICE, CAROL);
    mesh.clients[ALICE]
        .send_room_message(&room, "via bob")
        .unwrap();
    mesh.pump();
    assert_eq!(
        mesh.room_texts(CAROL),
        [("alice".to_owned(), "via bob".to_owned())]
    );
}

#[test]
fn an_invitation_reaches_the_invitee_through_another_member() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, CAROL);
    mesh.connect(ALICE, BOB);
    let room = mesh.clients[ALICE].create_room("club", [8; 16]).unwrap();
    mesh.clients[ALICE].invite_to_room(&room, "bob").unwrap();
    mesh.pump();
    mesh.connect(BOB, CAROL);
    mesh.disconnect(ALICE, CAROL);
    // Carol's key is pinned at alice from their chat; carol is not reached by alice now.
    mesh.clients[ALICE].invite_to_room(&room, "carol").unwrap();
    mesh.clients[ALICE]
        .send_room_message(&room, "welcome")
        .unwrap();
    mesh.pump();
    let carol = mesh.clients[CAROL]
        .room(&room)
        .expect("carol joined through bob");
    assert!(carol.joined());
    assert_eq!(
        mesh.room_texts(CAROL),
        [("alice".to_owned(), "welcome".to_owned())]
    );
}

#[test]
fn a_restarted_member_keeps_its_rooms_and_catches_up_without_showing_anything_twice() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    let room = mesh.room_of_all();
    mesh.clients[ALICE]
        .send_room_message(&room, "before")
        .unwrap();
    mesh.pump();
    mesh.restart(CAROL);
    let kept = mesh.clients[CAROL].room(&room).expect("the room was kept");
    assert!(kept.joined());
    assert_eq!(kept.messages().count(), 1);
    mesh.clients[ALICE]
        .send_room_message(&room, "after")
        .unwrap();
    mesh.pump();
    mesh.connect(BOB, CAROL);
    assert_eq!(
        mesh.room_texts(CAROL),
        [("alice".to_owned(), "after".to_owned())],
        "only what is new is shown after the restart"
    );
    let carol = mesh.clients[CAROL].room(&room).unwrap();
    assert_eq!(carol.messages().count(), 2);
    assert_eq!(carol.membership().version(), 2);
}

#[test]
fn a_member_who_left_is_invited_again_and_writes_on_from_its_last_number() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    mesh.connect(BOB, CAROL);
    let room = mesh.room_of_all();
    mesh.clients[BOB].send_room_message(&room, "bye").unwrap();
    mesh.pump();
    mesh.clients[BOB].leave_room(&room).unwrap();
    mesh.pump();
    mesh.clients[CAROL]
        .send_room_message(&room, "while bob was out")
        .unwrap();
    mesh.pump();
    assert!(
        mesh.room_texts(BOB).is_empty(),
        "nothing reaches bob while out"
    );

    mesh.clients[ALICE].invite_to_room(&room, "bob").unwrap();
    mesh.pump();
    assert!(
        mesh.clients[BOB].room(&room).unwrap().joined(),
        "bob is back"
    );
    assert_eq!(
        mesh.room_texts(BOB).last(),
        Some(&("carol".into(), "while bob was out".into())),
        "back in, bob catches up on what he missed"
    );
    let seq = mesh.clients[BOB]
        .send_room_message(&room, "I'm back")
        .unwrap();
    assert_eq!(seq, 2, "his numbers go on from before he left");
    mesh.pump();
    for n in [ALICE, CAROL] {
        assert_eq!(
            mesh.room_texts(n).last(),
            Some(&("bob".into(), "I'm back".into())),
            "client {n}"
        );
        assert!(mesh.refusals(n).is_empty(), "client {n}");
    }
}

#[test]
fn a_removed_member_shows_nothing_a_member_unaware_of_the_removal_still_sends() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    mesh.connect(BOB, CAROL);
    let room = mesh.room_of_all();
    mesh.disconnect(ALICE, BOB);
    mesh.disconnect(BOB, CAROL);
    mesh.clients[ALICE]
        .remove_from_room(&room, "carol")
        .unwrap();
    mesh.pump();
    assert!(!mesh.clients[CAROL].room(&room).unwrap().joined());
    // bob, out of touch, has not heard: he writes, and meets carol before alice.
    mesh.clients[BOB]
        .send_room_message(&room, "unaware")
        .unwrap();
    mesh.connect(BOB, CAROL);
    mesh.pump();
    assert!(
        mesh.room_texts(CAROL).is_empty(),
        "carol knew she was out: {:?}",
        mesh.room_texts(CAROL)
    );
    assert_eq!(
        mesh.clients[BOB].room(&room).unwrap().members(),
        ["alice", "bob"],
        "bob learned of the removal from carol"
    );
    mesh.connect(ALICE, BOB);
    mesh.pump();
    assert_eq!(mesh.room_texts(ALICE), [("bob".into(), "unaware".into())]);
}

#[test]
fn a_removed_member_gets_nothing_more_and_an_admin_may_remove() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol", "dave"]);
    for (a, b) in [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)] {
        mesh.connect(a, b);
    }
    let room = mesh.room_of_all();
    assert!(matches!(
        mesh.clients[BOB].remove_from_room(&room, "carol"),
        Err(ClientError::Room(RoomError::NotAllowed { .. }))
    ));
    mesh.clients[ALICE].make_room_admin(&room, "bob").unwrap();
    mesh.pump();
    mesh.clients[BOB].remove_from_room(&room, "carol").unwrap();
    mesh.pump();
    for n in [ALICE, BOB, 3] {
        let members = mesh.clients[n].room(&room).unwrap().members();
        assert_eq!(members, ["alice", "bob", "dave"], "client {n}");
    }
    assert!(
        !mesh.clients[CAROL].room(&room).unwrap().joined(),
        "carol was told"
    );
    mesh.clients[3]
        .send_room_message(&room, "without carol")
        .unwrap();
    mesh.pump();
    assert!(mesh.room_texts(CAROL).is_empty());
    assert_eq!(mesh.room_texts(ALICE).len(), 1);
    // What carol writes now (her copy says she is out) is refused by her own client.
    assert!(
        mesh.clients[CAROL]
            .send_room_message(&room, "hello?")
            .is_err()
    );
}

#[test]
fn a_long_membership_chain_reaches_a_new_member_in_several_frames() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    mesh.connect(ALICE, BOB);
    let room = mesh.clients[ALICE].create_room("club", [9; 16]).unwrap();
    for n in 0..40 {
        let name = format!("guest{n}");
        let pin = Pin {
            key: crate::identity::Identity::from_seed([100 + n as u8; 32]).public(),
            verified: false,
            seal_version: 2,
        };
        mesh.clients[ALICE].pin_key(&name, pin);
        mesh.clients[ALICE].invite_to_room(&room, &name).unwrap();
        mesh.clients[ALICE].remove_from_room(&room, &name).unwrap();
    }
    mesh.clients[ALICE]
        .send_room_message(&room, "finally")
        .unwrap();
    mesh.clients[ALICE].invite_to_room(&room, "bob").unwrap();
    mesh.pump();
    let bob = mesh.clients[BOB].room(&room).expect("bob joined");
    assert_eq!(bob.membership().version(), 81);
    assert_eq!(
        mesh.room_texts(BOB),
        [("alice".to_owned(), "finally".to_owned())]
    );
}

#[test]
fn chains_of_rooms_without_us_take_no_room_and_block_no_invitation() {
    let mut mesh = Mesh::new(&["alice", "bob", "mallory"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(BOB, 2);
    let mallory = crate::identity::Identity::from_seed([3; 32]);
    let conn = mesh.conn(BOB, 2);
    for n in 0..=MAX_ROOMS {
        let id = RoomId::from_random([n as u8; 16]);
        let room = crate::room::Room::create(id.clone(), "spam", "mallory", &mallory).unwrap();
        let frame = crate::room::RoomFrame::Changes {
            room: id,
            changes: room.membership().changes().to_vec(),
        };
        let text = frame.encode().unwrap();
        mesh.clients[BOB].handle_transport(conn, TransportEvent::ChannelMessage(text), T0);
    }
    mesh.pump();
    assert_eq!(mesh.clients[BOB].rooms().count(), 0);
    let room = mesh.clients[ALICE].create_room("club", [200; 16]).unwrap();
    mesh.clients[ALICE].invite_to_room(&room, "bob").unwrap();
    mesh.pump();
    assert!(mesh.clients[BOB].room(&room).is_some_and(|r| r.joined()));
}

#[test]
fn a_stranger_asking_about_a_room_learns_nothing() {
    let mut mesh = Mesh::new(&["alice", "bob", "mallory"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(BOB, 2);
    let room = mesh.clients[ALICE].create_room("club", [10; 16]).unwrap();
    mesh.clients[ALICE].invite_to_room(&room, "bob").unwrap();
    mesh.clients[ALICE]
        .send_room_message(&room, "private")
        .unwrap();
    mesh.pump();
    let conn = mesh.conn(BOB, 2);
    let ask = crate::room::RoomFrame::Marks {
        room: room.clone(),
        version: None,
        marks: Default::default(),
        ask: true,
        lacking: Vec::new(),
    };
    let text = ask.encode().unwrap();
    mesh.clients[BOB].handle_transport(conn, TransportEvent::ChannelMessage(text), mesh.now);
    let (actions, _, _) = drain_stored(&mut mesh.clients[BOB]);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::SendText { .. })),
        "bob answered a stranger: {actions:?}"
    );
}

#[test]
fn an_answer_over_the_meeting_bound_is_cut_and_said_so() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    mesh.connect(ALICE, BOB);
    let room = mesh.room_of_all();
    mesh.disconnect(ALICE, BOB);
    let limit = 2 * crate::room::MAX_MESSAGES_PER_MEETING;
    for n in 0..limit + 20 {
        mesh.clients[ALICE]
            .send_room_message(&room, &n.to_string())
            .unwrap();
    }
    mesh.pump();
    let mut clients = std::mem::take(&mut mesh.clients);
    let (left, right) = clients.split_at_mut(BOB);
    let (alice, bob) = (&mut left[ALICE], &mut right[0]);
    // A new chat: bob asks (what it says is dropped here), and alice answers with all of
    // it at once instead of one meeting's worth.
    let (_, b_conn) = connected_pair(alice, bob);
    bob.meet_rooms("alice");
    drain_stored(bob);
    let everything: Vec<RoomMessage> = alice.room(&room).unwrap().messages().cloned().collect();
    for message in everything {
        let text = crate::room::RoomFrame::Message(message).encode().unwrap();
        bob.handle_transport(b_conn, TransportEvent::ChannelMessage(text), T0);
    }
    let (_, events, _) = drain_stored(bob);
    let too_many = (events.iter()).filter(|e| {
        matches!(
            e,
            ClientEvent::RoomRefused {
                error: RoomError::MeetingTooLarge { .. },
                ..
            }
        )
    });
    assert_eq!(too_many.count(), 1, "said once");
    assert_eq!(bob.room(&room).unwrap().messages().count(), limit);
}

#[test]
fn a_client_holds_64_rooms_and_a_65th_is_neither_made_nor_joined() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    mesh.connect(ALICE, BOB);
    // Bob makes 63 rooms and is invited into a 64th: it joins.
    for n in 0..63 {
        mesh.clients[BOB].create_room("mine", [n; 16]).unwrap();
    }
    let last = mesh.clients[ALICE].create_room("club", [200; 16]).unwrap();
    mesh.clients[ALICE].invite_to_room(&last, "bob").unwrap();
    mesh.pump();
    assert!(mesh.clients[BOB].room(&last).is_some_and(|r| r.joined()));
    assert_eq!(mesh.clients[BOB].rooms().count(), 64);
    // A 65th is neither made nor joined.
    assert_eq!(
        mesh.clients[BOB].create_room("one more", [63; 16]),
        Err(ClientError::TooManyRooms(64))
    );
    let more = mesh.clients[ALICE].create_room("more", [201; 16]).unwrap();
    mesh.clients[ALICE].invite_to_room(&more, "bob").unwrap();
    mesh.events[BOB].clear();
    mesh.pump();
    assert!(mesh.clients[BOB].room(&more).is_none());
    assert_eq!(mesh.clients[BOB].rooms().count(), 64);
    // Bob is told, once, however often the room is announced to him again.
    mesh.clients[ALICE].remove_from_room(&more, "bob").unwrap();
    mesh.pump();
    let refused: Vec<_> = (mesh.events[BOB].iter())
        .filter(|e| matches!(e, ClientEvent::RoomRefused { room, .. } if *room == more))
        .collect();
    assert!(
        matches!(
            refused[..],
            [ClientEvent::RoomRefused {
                error: RoomError::NoRoomLeft { limit: 64 },
                ..
            }]
        ),
        "{refused:?}"
    );
    // Alice holds 2: she makes up to the 64th, and not a 65th.
    for n in 2..64 {
        mesh.clients[ALICE].create_room("mine", [n; 16]).unwrap();
    }
    assert_eq!(
        mesh.clients[ALICE].create_room("one more", [64; 16]),
        Err(ClientError::TooManyRooms(64))
    );
    assert_eq!(mesh.clients[ALICE].rooms().count(), 64);
}

#[test]
fn a_room_keeps_1024_membership_changes_and_refuses_a_1025th_made_or_received() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    let room = mesh.clients[ALICE].create_room("club", [9; 16]).unwrap();
    let guest = crate::identity::Identity::from_seed([100; 32]).public();
    let keys = [
        (
            "bob",
            crate::identity::Identity::from_seed([2; 32]).public(),
        ),
        ("guest", guest),
    ];
    for (name, key) in keys {
        let pin = Pin {
            key,
            verified: false,
            seal_version: 2,
        };
        mesh.clients[ALICE].pin_key(name, pin);
    }
    // The creation, Bob's invitation, and a guest in and out: 1,024 changes.
    let alice = &mut mesh.clients[ALICE];
    alice.invite_to_room(&room, "bob").unwrap();
    for _ in 0..511 {
        alice.invite_to_room(&room, "guest").unwrap();
        alice.remove_from_room(&room, "guest").unwrap();
    }
    let changes = |m: &ClientMachine| m.room(&room).unwrap().membership().changes().len();
    assert_eq!(changes(alice), 1024);
    assert_eq!(
        alice.invite_to_room(&room, "guest"),
        Err(ClientError::Room(RoomError::TooManyChanges { limit: 1024 }))
    );
    assert_eq!(changes(alice), 1024);

    // Bob joins with all of them.
    mesh.connect(ALICE, BOB);
    assert_eq!(changes(&mesh.clients[BOB]), 1024);
    assert_eq!(mesh.refusals(BOB), []);
    // A 1,025th, signed by Alice's key in a client that does not keep the bound, is
    // refused with an event.
    let mut change = crate::room::MemberChange {
        room: room.clone(),
        version: 1024,
        by: "alice".into(),
        action: crate::room::Action::Invite {
            member: "guest".into(),
            key: guest,
        },
        sig: String::new(),
    };
    let alice_identity = crate::identity::Identity::from_seed([1; 32]);
    change.sig = crate::identity::signature_text(&alice_identity.sign(&change.signed_bytes()));
    let frame = crate::room::RoomFrame::Changes {
        room: room.clone(),
        changes: vec![change],
    };
    mesh.hand_frame(ALICE, BOB, &frame);
    mesh.pump();
    assert_eq!(
        mesh.refusals(BOB),
        [RoomError::TooManyChanges { limit: 1024 }]
    );
    assert_eq!(changes(&mesh.clients[BOB]), 1024);
    assert!(
        !mesh.clients[BOB]
            .room(&room)
            .unwrap()
            .membership()
            .is_member("guest")
    );
}

#[test]
fn a_marks_frame_naming_512_authors_is_read_and_one_naming_513_is_refused() {
    let mut mesh = Mesh::new(&["alice", "bob"]);
    mesh.connect(ALICE, BOB);
    let room = mesh.room_of_all();
    for (authors, read) in [(512, true), (513, false)] {
        let ask = crate::room::RoomFrame::Marks {
            room: room.clone(),
            version: Some(1),
            marks: (0..authors).map(|n| (format!("author{n}"), 1)).collect(),
            ask: true,
            lacking: Vec::new(),
        };
        mesh.hand_frame(ALICE, BOB, &ask);
        let (actions, events, _) = drain_stored(&mut mesh.clients[BOB]);
        let answered = (actions.iter()).any(|a| matches!(a, Action::SendText { .. }));
        let refused = (events.iter())
            .filter(|e| {
                matches!(
                    e,
                    ClientEvent::Error(ClientError::UnexpectedSignal {
                        kind: "room frame",
                        ..
                    })
                )
            })
            .count();
        assert_eq!(
            (answered, refused, events.len()),
            (read, usize::from(!read), usize::from(!read)),
            "{authors} authors: {events:?}"
        );
    }
}

#[test]
fn invitations_to_4_rooms_may_arrive_at_once_and_a_5th_drops_one_of_them() {
    let carol = crate::identity::Identity::from_seed([3; 32]);
    let bob = crate::identity::Identity::from_seed([2; 32]).public();
    for (rooms, joined) in [(4, 4), (5, 4)] {
        let mut mesh = Mesh::new(&["alice", "bob"]);
        mesh.connect(ALICE, BOB);
        // Rooms of Carol's that invite Bob: their chains start (the creation) before any
        // goes on (the invitation).
        let chains: Vec<(RoomId, Vec<crate::room::MemberChange>)> = (0..rooms)
            .map(|n| {
                let id = RoomId::from_random([n; 16]);
                let mut room =
                    crate::room::Room::create(id.clone(), "club", "carol", &carol).expect("a room");
                room.invite(&carol, "bob", Some(bob)).unwrap();
                (id, room.membership().changes().to_vec())
            })
            .collect();
        for part in [0..1, 1..2] {
            for (id, changes) in &chains {
                let frame = crate::room::RoomFrame::Changes {
                    room: id.clone(),
                    changes: changes[part.clone()].to_vec(),
                };
                mesh.hand_frame(ALICE, BOB, &frame);
            }
        }
        let held = (chains.iter())
            .filter(|(id, _)| mesh.clients[BOB].room(id).is_some_and(|r| r.joined()))
            .count();
        assert_eq!(held, joined, "{rooms} chains arriving at once");
        assert_eq!(mesh.clients[BOB].rooms().count(), joined);
    }
}

#[test]
fn what_a_removed_member_wrote_unaware_is_withdrawn_where_it_was_shown() {
    let mut mesh = Mesh::new(&["alice", "bob", "carol"]);
    mesh.connect(ALICE, BOB);
    mesh.connect(ALICE, CAROL);
    mesh.connect(BOB, CAROL);
    let room = mesh.room_of_all();
    // Bob is cut off from alice; she removes him; he writes to carol, who has not heard.
    mesh.disconnect(ALICE, BOB);
    mesh.disconnect(ALICE, CAROL);
    mesh.clients[ALICE].remove_from_room(&room, "bob").unwrap();
    mesh.clients[BOB]
        .send_room_message(&room, "am I out?")
        .unwrap();
    mesh.pump();
    assert_eq!(mesh.room_texts(CAROL).len(), 1);
    mesh.connect(ALICE, CAROL);
    let withdrawn: Vec<_> = (mesh.events[CAROL].iter())
        .filter_map(|e| match e {
            ClientEvent::RoomWithdrawn { author, seq, .. } => Some((author.clone(), *seq)),
            _ => None,
        })
        .collect();
    assert_eq!(withdrawn, [("bob".to_owned(), 1)]);
    assert_eq!(
        mesh.clients[CAROL].room(&room).unwrap().messages().count(),
        0
    );
}

/// Clients that write, drop and open chats, restart from their stores and are removed at
/// random: once every pair has met, every member holds the creator's messages in its
/// order, nobody refused an honest frame, and a removed member holds nothing written after.
#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        Write(usize),
        Connect(usize, usize),
        Disconnect(usize, usize),
        Restart(usize),
        Remove(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0..4usize).prop_map(Step::Write),
            2 => (0..4usize, 0..4usize).prop_map(|(a, b)| Step::Connect(a, b)),
            2 => (0..4usize, 0..4usize).prop_map(|(a, b)| Step::Disconnect(a, b)),
            1 => (0..4usize).prop_map(Step::Restart),
            1 => (1..4usize).prop_map(Step::Remove),
        ]
    }

    fn held(mesh: &Mesh, n: usize, room: &RoomId) -> Vec<(String, u64, String)> {
        let copy = mesh.clients[n].room(room);
        (copy.into_iter().flat_map(|r| r.messages()))
            .map(|m| (m.author.clone(), m.seq, m.sig.clone()))
            .collect()
    }

    /// A room frame with fields drawn from the edges: big numbers, strange names, keys
    /// and signatures that are not ones, real and unknown rooms.
    fn hostile_frame(room: RoomId) -> impl Strategy<Value = String> {
        let number = prop_oneof![Just(0u64), Just(1), Just(2), Just(u64::MAX), any::<u64>()];
        let name = prop_oneof![
            Just("alice"),
            Just("bob"),
            Just("mallory"),
            Just(""),
            Just("a/b")
        ];
        let room = prop_oneof![
            Just(room.to_string()),
            Just("ab".repeat(16)),
            Just("x".into())
        ];
        let action = prop_oneof![
            Just("create"),
            Just("invite"),
            Just("remove"),
            Just("leave"),
            Just("promote"),
            Just("dance")
        ];
        (
            room,
            0..4u8,
            number.clone(),
            number.clone(),
            number,
            name.clone(),
            name,
            action,
        )
            .prop_map(|(room, op, a, b, c, who, member, action)| {
                let key = crate::identity::Identity::from_seed([3; 32])
                    .public()
                    .to_text();
                let value = match op {
                    0 => serde_json::json!({
                        "type": "room", "op": "message", "room": room, "author": who,
                        "seq": a, "lamport": b, "members": c, "text": "x", "sig": "AAAA"
                    }),
                    3 => serde_json::json!({
                        "type": "room", "op": "piece", "room": room, "sha256": who,
                        "offset": a, "data": "AAAA"
                    }),
                    1 => serde_json::json!({
                        "type": "room", "op": "marks", "room": room,
                        "version": if c % 2 == 0 { serde_json::Value::Null } else { a.into() },
                        "marks": {who: b, member: c}, "ask": a % 2 == 0
                    }),
                    _ => serde_json::json!({
                        "type": "room", "op": "changes", "room": room, "changes": [{
                            "version": a, "by": who, "action": action, "member": member,
                            "key": key, "name": "club", "last_seq": b, "sig": "AAAA"
                        }]
                    }),
                };
                value.to_string()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn hostile_room_frames_never_panic_and_change_nothing(
            frames in proptest::collection::vec(hostile_frame(RoomId::from_random([3; 16])), 1..20)
        ) {
            let mut mesh = Mesh::new(&["alice", "bob", "mallory"]);
            mesh.connect(ALICE, BOB);
            mesh.connect(BOB, 2);
            let room = mesh.room_of_all_but_last();
            prop_assert_eq!(room.clone(), RoomId::from_random([3; 16]));
            let conn = mesh.conn(BOB, 2);
            for frame in frames {
                let event = TransportEvent::ChannelMessage(frame);
                mesh.clients[BOB].handle_transport(conn, event, mesh.now);
            }
            mesh.pump();
            let bob = mesh.clients[BOB].room(&room).unwrap();
            prop_assert_eq!(bob.messages().count(), 0);
            prop_assert_eq!(bob.members(), ["alice", "bob"]);
        }

        #[test]
        fn members_that_meet_hold_the_same_messages_in_the_same_order(
            steps in proptest::collection::vec(step(), 0..40)
        ) {
            let mut mesh = Mesh::new(&["alice", "bob", "carol", "dave"]);
            for (a, b) in [(0, 1), (0, 2), (0, 3)] {
                mesh.connect(a, b);
            }
            let room = mesh.room_of_all();
            for step in &steps {
                match *step {
                    Step::Write(n) => {
                        let _ = mesh.clients[n].send_room_message(&room, "note");
                    }
                    Step::Connect(a, b) if a != b && !mesh.open.contains(&(a.min(b), a.max(b))) => {
                        mesh.connect(a, b)
                    }
                    Step::Disconnect(a, b) if mesh.open.contains(&(a.min(b), a.max(b))) => {
                        mesh.disconnect(a, b)
                    }
                    Step::Restart(n) => mesh.restart(n),
                    Step::Remove(n) => {
                        let name = mesh.name(n);
                        let _ = mesh.clients[ALICE].remove_from_room(&room, &name);
                    }
                    _ => {}
                }
                mesh.pump();
            }
            for a in 0..4 {
                for b in a + 1..4 {
                    if !mesh.open.contains(&(a, b)) {
                        mesh.connect(a, b);
                    }
                }
            }
            let membership = mesh.clients[ALICE].room(&room).unwrap().membership().clone();
            let reference = held(&mesh, ALICE, &room);
            for n in 0..4 {
                let name = mesh.name(n);
                let refused: Vec<_> = mesh.refusals(n).into_iter()
                    .filter(|e| !matches!(e, RoomError::AfterRemoval { .. }))
                    .collect();
                prop_assert!(refused.is_empty(), "{} refused {:?}", name, refused);
                let shown: Vec<_> = (mesh.events[n].iter())
                    .filter_map(|e| match e {
                        ClientEvent::RoomMessage { author, seq, .. } => Some((author.clone(), *seq)),
                        _ => None,
                    })
                    .collect();
                let once: std::collections::BTreeSet<_> = shown.iter().collect();
                prop_assert_eq!(once.len(), shown.len(), "{} showed one twice", name);
                if membership.is_member(&name) {
                    prop_assert_eq!(&held(&mesh, n, &room), &reference, "{}", name);
                } else if let Some((removed_at, _)) = membership.departure(&name) {
                    let copy = mesh.clients[n].room(&room).unwrap();
                    prop_assert!(!copy.joined(), "{} does not know it was removed", name);
                    prop_assert!(copy.messages().all(|m| m.members < removed_at));
                }
            }
        }
    }
}

#[test]
fn members_call_each_other_until_every_pair_chats() {
    const DAVE: usize = 3;
    let mut mesh = Mesh::with_mesh_calls(&["alice", "bob", "carol", "dave"], true);
    // The creator chats with each invitee (an invitation needs the invitee's key); the
    // invitees have never met.
    for member in [BOB, CAROL, DAVE] {
        mesh.connect(ALICE, member);
    }
    let room = mesh.clients[ALICE].create_room("club", [9; 16]).unwrap();
    for name in ["bob", "carol", "dave"] {
        mesh.clients[ALICE].invite_to_room(&room, name).unwrap();
    }
    mesh.pump();
    // bob calls carol and dave, carol calls dave: the name that sorts first calls.
    assert_eq!(mesh.answer_calls(), 3);
    let pairs: Vec<(usize, usize)> = mesh.open.iter().copied().collect();
    assert_eq!(pairs, [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]);
    // A message goes straight from its author to every member.
    mesh.clients[DAVE]
        .send_room_message(&room, "from dave")
        .unwrap();
    mesh.pump();
    for member in [ALICE, BOB, CAROL] {
        assert!(
            mesh.room_texts(member)
                .contains(&("dave".to_owned(), "from dave".to_owned())),
            "member {member}"
        );
    }
    // A chat closed on purpose is not called again, and a removed member is not called.
    mesh.disconnect(BOB, CAROL);
    mesh.clients[ALICE].remove_from_room(&room, "dave").unwrap();
    mesh.pump();
    mesh.disconnect(BOB, DAVE);
    mesh.now += 600_000;
    for client in &mut mesh.clients {
        client.handle_timeout(mesh.now);
    }
    mesh.pump();
    assert_eq!(mesh.answer_calls(), 0);
    assert!(!mesh.open.contains(&(BOB, CAROL)));
    assert!(!mesh.open.contains(&(BOB, DAVE)));
}
