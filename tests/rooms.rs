//! Group rooms end to end: real `peerchat-cli` processes on peerchat-server, real WebRTC on
//! loopback. A member who was away (out of touch, or not running at all) gets what was
//! written meanwhile from another member, signed by its author, though the author has left.

use peerchat_core::room::sha256_hex;
use peerchat_e2e::rooms::{RoomMember, messages_in_one_order, room_of_all};
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
    // Bob holds all ten: alice hears so from his receipts; carol, away, does not yet.
    let delivery = alice.expect("the tenth note with bob", |e| {
        e["event"] == "room_delivery" && e["seq"] == 10 && e["holders"] == 2
    });
    assert_eq!(
        delivery["have"],
        serde_json::json!(["alice", "bob"]),
        "{delivery}"
    );
    assert_eq!(delivery["lack"], serde_json::json!(["carol"]), "{delivery}");
    assert_eq!(delivery["delivered"], false, "{delivery}");

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
/// gets each message of the others once, in one order (see `rooms::messages_in_one_order`;
/// tests/browser.rs runs it with two browsers among the members).
#[test]
fn eight_members_get_fifty_messages_once_each_in_one_order() {
    let server = PeerchatServer::start();
    let url = &server.broker.tcp_url;
    let mut clis: Vec<Cli> = (0..8)
        .map(|i| Cli::join(url, &format!("member{i}")))
        .collect();
    let mut members: Vec<&mut dyn RoomMember> = clis
        .iter_mut()
        .map(|cli| cli as &mut dyn RoomMember)
        .collect();
    let room = room_of_all(&mut members);
    messages_in_one_order(&mut members, &room, 50);
}

/// The creator removes carol: she is told she is out, and nothing written after her removal
/// reaches her, though she still chats with both members.
#[test]
fn a_removed_member_receives_nothing_written_after_its_removal() {
    let server = PeerchatServer::start();
    let url = &server.broker.tcp_url;
    let mut alice = Cli::join(url, "alice");
    let mut bob = Cli::join(url, "bob");
    let mut carol = Cli::join(url, "carol");
    let mut members: Vec<&mut dyn RoomMember> = vec![&mut alice, &mut bob, &mut carol];
    let room = room_of_all(&mut members);
    // The mesh: bob calls carol.
    bob.expect_peer_connected("carol");
    carol.expect_peer_connected("bob");
    alice.command(&format!("/room send {room} before"));
    carol.expect("the message before", |e| {
        e["event"] == "room_message" && e["text"] == "before"
    });

    alice.command(&format!("/room remove {room} carol"));
    carol.expect("out of the room", |e| {
        e["event"] == "room_members" && e["room"] == room && e["joined"] == false
    });
    // Bob writes once he knows: alice's next message comes under the membership without
    // carol, so bob has taken in the removal when it reaches him.
    alice.command(&format!("/room send {room} carol is out"));
    bob.expect("carol is out", |e| {
        e["event"] == "room_message" && e["text"] == "carol is out"
    });
    for n in 0..5 {
        alice.command(&format!("/room send {room} after {n} from alice"));
        bob.command(&format!("/room send {room} after {n} from bob"));
    }
    alice.expect("bob's last", |e| {
        e["event"] == "room_message" && e["text"] == "after 4 from bob"
    });
    bob.expect("alice's last", |e| {
        e["event"] == "room_message" && e["text"] == "after 4 from alice"
    });
    // Carol still chats with both: a plain message after the room's ten arrives, so they
    // had their chance to reach her.
    alice.command("/send carol still friends");
    bob.command("/send carol me too");
    carol.expect_message("alice", "still friends");
    carol.expect_message("bob", "me too");
    let after: Vec<&Value> = (carol.seen().iter())
        .filter(|e| e["event"] == "room_message" && e["text"] != "before")
        .collect();
    assert!(
        after.is_empty(),
        "carol got room messages after her removal: {after:?}"
    );
}

/// A picture of about 300 KB (seven pieces), written to `dir`; its path and SHA-256.
fn picture_file(dir: &TempDir) -> (String, String) {
    let data: Vec<u8> = (0..300_000u32).map(|n| (n * 31 % 251) as u8).collect();
    let path = dir.0.join("harbour view.png");
    std::fs::write(&path, &data).expect("the picture is written");
    let path = path.to_str().expect("a UTF-8 temp path").to_owned();
    (path, sha256_hex(&data))
}

/// Waits until `cli` has the whole picture of `author` in `room`; checks what it says of it.
fn expect_picture(cli: &mut Cli, room: &str, author: &str, sha256: &str) {
    let got = cli.expect("the whole picture", |e| {
        e["event"] == "room_picture" && e["room"] == room && e["author"] == author
    });
    assert_eq!(got["file"]["sha256"], sha256, "{}: {got}", cli.user);
    assert_eq!(got["file"]["size"], 300_000, "{}: {got}", cli.user);
    assert_eq!(got["file"]["name"], "harbour view.png");
    assert_eq!(got["file"]["mime"], "image/png");
    let described = (cli.seen().iter())
        .find(|e| e["event"] == "room_message" && e["room"] == room && e["author"] == author)
        .expect("the message came before its bytes");
    assert_eq!(described["file"]["sha256"], sha256, "{described}");
    let refused = (cli.seen().iter()).filter(|e| e["event"] == "room_refused");
    assert_eq!(refused.count(), 0, "{} refused something", cli.user);
}

/// Alice sends a picture into a room of three: bob and carol each get the same bytes.
#[test]
fn a_picture_sent_into_a_room_reaches_every_member_whole() {
    let server = PeerchatServer::start();
    let url = &server.broker.tcp_url;
    let dir = TempDir::new("room-picture");
    let (path, sha256) = picture_file(&dir);
    let mut alice = Cli::join(url, "alice");
    let mut bob = Cli::join(url, "bob");
    let mut carol = Cli::join(url, "carol");
    let mut members: Vec<&mut dyn RoomMember> = vec![&mut alice, &mut bob, &mut carol];
    let room = room_of_all(&mut members);
    alice.command(&format!("/room picture {room} {path}"));
    let sent = alice.expect("room_sent", |e| e["event"] == "room_sent");
    assert_eq!(sent["ok"], true, "{sent}");
    expect_picture(&mut bob, &room, "alice", &sha256);
    expect_picture(&mut carol, &room, "alice", &sha256);
}

/// Carol is away when alice sends a picture; alice quits; carol meets bob, who passes on
/// the message and its bytes.
#[test]
fn a_member_who_was_away_gets_a_picture_from_another_member_after_the_author_left() {
    let server = PeerchatServer::start();
    let url = &server.broker.tcp_url;
    let dir = TempDir::new("room-picture-away");
    let (path, sha256) = picture_file(&dir);
    let mut alice = Cli::join(url, "alice");
    let mut bob = Cli::join(url, "bob");
    let mut carol = Cli::join(url, "carol");
    let mut members: Vec<&mut dyn RoomMember> = vec![&mut alice, &mut bob, &mut carol];
    let room = room_of_all(&mut members);
    carol.expect_peer_connected("bob");
    carol.command("/close alice");
    carol.command("/close bob");
    for member in [&mut alice, &mut bob] {
        member.expect("carol gone", |e| {
            e["event"] == "peer_disconnected" && e["peer"] == "carol"
        });
    }
    alice.command(&format!("/room picture {room} {path}"));
    expect_picture(&mut bob, &room, "alice", &sha256);
    alice.command("/quit");
    assert!(alice.finish().success());
    carol.command("/connect bob");
    carol.expect_peer_connected("bob");
    expect_picture(&mut carol, &room, "alice", &sha256);
}

/// Carol keeps alice's picture in her store: after alice left and carol restarted, bob
/// (away until then) gets it from her.
#[test]
fn a_kept_picture_is_passed_on_after_a_restart() {
    let server = PeerchatServer::start();
    let url = server.broker.tcp_url.clone();
    let dir = TempDir::new("room-picture-kept");
    let (path, sha256) = picture_file(&dir);
    let store = dir.0.join("carol.db");
    let carol_flags = ["--store", store.to_str().expect("a UTF-8 temp path")];
    let mut alice = Cli::join(&url, "alice");
    let mut bob = Cli::join(&url, "bob");
    let mut carol = Cli::join_with(Network::Loopback, &url, "carol", &carol_flags);
    let mut members: Vec<&mut dyn RoomMember> = vec![&mut alice, &mut bob, &mut carol];
    let room = room_of_all(&mut members);
    bob.expect_peer_connected("carol");
    bob.command("/close alice");
    bob.command("/close carol");
    for member in [&mut alice, &mut carol] {
        member.expect("bob gone", |e| {
            e["event"] == "peer_disconnected" && e["peer"] == "bob"
        });
    }
    alice.command(&format!("/room picture {room} {path}"));
    expect_picture(&mut carol, &room, "alice", &sha256);
    alice.command("/quit");
    assert!(alice.finish().success());
    carol.command("/quit");
    assert!(carol.finish().success());

    let mut carol = Cli::join_with(Network::Loopback, &url, "carol", &carol_flags);
    bob.command("/connect carol");
    carol.expect_peer_connected("bob");
    expect_picture(&mut bob, &room, "alice", &sha256);
}
