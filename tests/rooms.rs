//! Group rooms end to end: real `peerchat-cli` processes on peerchat-server, real WebRTC on
//! loopback. A member who was away (out of touch, or not running at all) gets what was
//! written meanwhile from another member, signed by its author, though the author has left.

use peerchat_e2e::{Cli, Network, PeerchatServer, TempDir};
use serde_json::Value;

/// The room messages `cli` has shown so far, as (author, text), in the order shown.
fn room_messages(cli: &Cli, room: &str) -> Vec<(String, String)> {
    (cli.seen().iter())
        .filter(|e| e["event"] == "room_message" && e["room"] == room)
        .map(|e| {
            let field = |name: &str| e[name].as_str().unwrap_or_default().to_owned();
            (field("author"), field("text"))
        })
        .collect()
}

/// Waits until `cli` is in `room` with all three members.
fn joined(cli: &mut Cli, room: &str) -> Value {
    cli.expect("in the room with all three", |e| {
        e["event"] == "room_members"
            && e["room"] == room
            && e["joined"] == true
            && e["members"].as_array().map(Vec::len) == Some(3)
    })
}

#[test]
fn a_member_who_was_away_gets_everything_from_another_member_after_the_author_left() {
    let server = PeerchatServer::start();
    let url = &server.broker.tcp_url;
    let mut alice = Cli::join(url, "alice");
    let mut bob = Cli::join(url, "bob");
    let mut carol = Cli::join(url, "carol");
    alice.command("/connect bob");
    alice.command("/connect carol");
    alice.expect_peer_connected("bob");
    alice.expect_peer_connected("carol");
    bob.expect_peer_connected("alice");
    carol.expect_peer_connected("alice");

    alice.command("/room create book club");
    let created = alice.expect("room created", |e| e["event"] == "room_members");
    let room = created["room"].as_str().expect("a room id").to_owned();
    assert_eq!(created["name"], "book club");
    alice.command(&format!("/room invite {room} bob"));
    alice.command(&format!("/room invite {room} carol"));
    joined(&mut bob, &room);
    joined(&mut carol, &room);
    // Members call each other: bob (whose name sorts first) calls carol.
    carol.expect_peer_connected("bob");

    // Carol is away: she talks to nobody. A chat closed on purpose is not called again.
    carol.command("/close alice");
    carol.command("/close bob");
    for member in [&mut alice, &mut bob] {
        member.expect("carol gone", |e| {
            e["event"] == "peer_disconnected" && e["peer"] == "carol"
        });
    }
    let notes: Vec<(String, String)> = (1..=10)
        .map(|n| ("alice".to_owned(), format!("note {n}")))
        .collect();
    for (_, text) in &notes {
        alice.command(&format!("/room send {room} {text}"));
        let sent = alice.expect("room_sent", |e| e["event"] == "room_sent");
        assert_eq!(sent["ok"], true, "{sent}");
    }
    bob.expect("the tenth note", |e| {
        e["event"] == "room_message" && e["text"] == "note 10"
    });
    assert_eq!(room_messages(&bob, &room), notes);
    // Bob holds all ten: alice hears so from his receipts.
    alice.expect("the tenth note with bob", |e| {
        e["event"] == "room_delivery" && e["seq"] == 10 && e["holders"] == 2
    });

    // Alice leaves altogether; then carol and bob meet.
    alice.command("/quit");
    assert!(alice.finish().success());
    carol.command("/connect bob");
    carol.expect_peer_connected("bob");
    carol.expect("the tenth note", |e| {
        e["event"] == "room_message" && e["text"] == "note 10"
    });
    assert_eq!(room_messages(&carol, &room), notes);
    let refused = (carol.seen().iter()).filter(|e| e["event"] == "room_refused");
    assert_eq!(refused.count(), 0, "carol refused what bob passed on");
}

/// Carol's client is not running while alice writes; it keeps the room in its store, and
/// once started again it meets bob and gets all ten notes, each shown once.
#[test]
fn a_member_whose_client_was_not_running_catches_up_from_its_store_and_another_member() {
    let server = PeerchatServer::start();
    let url = server.broker.tcp_url.clone();
    let dir = TempDir::new("room-restart");
    let store = dir.0.join("carol.db");
    let carol_flags = ["--store", store.to_str().expect("a UTF-8 temp path")];
    let mut alice = Cli::join(&url, "alice");
    let mut bob = Cli::join(&url, "bob");
    let mut carol = Cli::join_with(Network::Loopback, &url, "carol", &carol_flags);
    alice.command("/connect bob");
    alice.command("/connect carol");
    alice.expect_peer_connected("bob");
    alice.expect_peer_connected("carol");

    alice.command("/room create plans");
    let created = alice.expect("room created", |e| e["event"] == "room_members");
    let room = created["room"].as_str().expect("a room id").to_owned();
    alice.command(&format!("/room invite {room} bob"));
    alice.command(&format!("/room invite {room} carol"));
    joined(&mut bob, &room);
    joined(&mut carol, &room);
    alice.command(&format!("/room send {room} before"));
    carol.expect("the first note", |e| {
        e["event"] == "room_message" && e["text"] == "before"
    });
    carol.command("/quit");
    assert!(carol.finish().success());

    let notes: Vec<(String, String)> = (1..=10)
        .map(|n| ("alice".to_owned(), format!("note {n}")))
        .collect();
    for (_, text) in &notes {
        alice.command(&format!("/room send {room} {text}"));
    }
    bob.expect("the tenth note", |e| {
        e["event"] == "room_message" && e["text"] == "note 10"
    });
    alice.command("/quit");
    assert!(alice.finish().success());

    let mut carol = Cli::join_with(Network::Loopback, &url, "carol", &carol_flags);
    carol.command("/connect bob");
    carol.expect_peer_connected("bob");
    carol.expect("the tenth note", |e| {
        e["event"] == "room_message" && e["text"] == "note 10"
    });
    assert_eq!(
        room_messages(&carol, &room),
        notes,
        "the new notes, in order, and the first not again"
    );
}

/// Eight members in one room, 50 messages from members in a scrambled turn: every member
/// gets each message of the others once, every receiver gives each message the same place
/// in the room's order (its Lamport time and author), and each author's messages keep the
/// order they were written in.
#[test]
fn eight_members_get_fifty_messages_once_each_in_one_order() {
    const MEMBERS: usize = 8;
    const MESSAGES: usize = 50;
    let server = PeerchatServer::start();
    let url = &server.broker.tcp_url;
    let names: Vec<String> = (0..MEMBERS).map(|i| format!("member{i}")).collect();
    let mut clis: Vec<Cli> = names.iter().map(|name| Cli::join(url, name)).collect();
    for name in &names[1..] {
        clis[0].command(&format!("/connect {name}"));
    }
    for name in &names[1..] {
        clis[0].expect_peer_connected(name);
    }
    clis[0].command("/room create eight");
    let created = clis[0].expect("room created", |e| e["event"] == "room_members");
    let room = created["room"].as_str().expect("a room id").to_owned();
    for name in &names[1..] {
        clis[0].command(&format!("/room invite {room} {name}"));
    }
    for cli in &mut clis {
        cli.expect("in the room with all eight", |e| {
            e["event"] == "room_members"
                && e["room"] == room
                && e["members"].as_array().map(Vec::len) == Some(MEMBERS)
        });
    }

    // Authors in a scrambled turn (5 is coprime with 8: everyone writes).
    let author_of = |n: usize| (n * 5 + 3) % MEMBERS;
    for n in 0..MESSAGES {
        let cli = &mut clis[author_of(n)];
        cli.command(&format!("/room send {room} message {n}"));
        let sent = cli.expect("room_sent", |e| e["event"] == "room_sent");
        assert_eq!(sent["ok"], true, "{sent}");
    }
    // (lamport, author) of each text, as each receiver has it.
    let mut place: std::collections::BTreeMap<String, (u64, String)> = Default::default();
    for (i, cli) in clis.iter_mut().enumerate() {
        let others = (0..MESSAGES).filter(|n| author_of(*n) != i).count();
        for _ in 0..others {
            cli.expect("a room message", |e| e["event"] == "room_message");
        }
        let got: Vec<&Value> = (cli.seen().iter())
            .filter(|e| e["event"] == "room_message" && e["room"] == room)
            .collect();
        assert_eq!(got.len(), others, "{}: each message once", names[i]);
        for e in got {
            let text = e["text"].as_str().expect("text").to_owned();
            let key = (
                e["lamport"].as_u64().expect("lamport"),
                e["author"].as_str().expect("author").to_owned(),
            );
            let n: usize = text["message ".len()..]
                .parse()
                .expect("a numbered message");
            assert_eq!(key.1, names[author_of(n)], "{text}: its author");
            assert_ne!(key.1, names[i], "{}: its own message came back", names[i]);
            if let Some(before) = place.insert(text.clone(), key.clone()) {
                assert_eq!(before, key, "{text}: one place in the order for everyone");
            }
        }
    }
    assert_eq!(place.len(), MESSAGES, "every message reached someone");
    // The room's order: each author's messages in the order written.
    let mut order: Vec<(&(u64, String), &String)> = place.iter().map(|(t, k)| (k, t)).collect();
    order.sort();
    for name in &names {
        let written: Vec<usize> = (order.iter())
            .filter(|(key, _)| key.1 == *name)
            .map(|(_, text)| text["message ".len()..].parse().expect("numbered"))
            .collect();
        assert!(
            written.windows(2).all(|w| w[0] < w[1]),
            "{name}'s messages out of order: {written:?}"
        );
    }
}
