//! History and the outbox survive an app restart: real `peerchat-server` and
//! `peerchat-cli` processes on loopback, the sender killed hard with messages still queued
//! and started again on the same store. The browser's counterpart (a reloaded page keeps
//! its queue in IndexedDB) is in `browser.rs`.

use std::time::Duration;

use peerchat_e2e::{
    ChatClient, Cli, Mosquitto, Network, PeerchatServer, TempDir, assert_shown_once,
};

#[test]
fn queued_messages_survive_a_hard_restart_on_peerchat_server() {
    let server = PeerchatServer::start();
    queued_messages_survive_a_hard_restart(&server.broker.tcp_url);
}

/// On a plain broker the restarted client finds its own retained presence (and the old
/// connection's last will): the same session means the name is still its own.
#[test]
fn queued_messages_survive_a_hard_restart_on_mosquitto() {
    let mosquitto = Mosquitto::start();
    queued_messages_survive_a_hard_restart(&mosquitto.broker.tcp_url);
}

/// Bob writes to Alice while she is unreachable (frozen), so his messages wait unacknowledged;
/// his process is killed with no chance to clean up and started again with the same
/// `--store`. He offers a chat by himself, and once Alice answers again the three messages
/// reach her exactly once, in order; the chat goes on afterwards, both ways.
fn queued_messages_survive_a_hard_restart(url: &str) {
    let url = url.to_owned();
    let dir = TempDir::new("restart");
    let store = dir.0.join("bob.db");
    let store = store.to_str().expect("a UTF-8 temp path");
    let bob_flags = ["--store", store];

    let mut alice = Cli::join(&url, "alice");
    let mut bob = Cli::join_with(Network::Loopback, &url, "bob", &bob_flags);
    alice.connect_to("bob");
    alice.expect_peer_connected("bob");
    bob.expect_peer_connected("alice");
    bob.send("alice", "before");
    alice.expect_message("bob", "before");

    // Alice stops answering; Bob's ICE gives the path up and his chat goes into recovery,
    // where what he writes waits for a new connection.
    alice.freeze();
    bob.expect("the path to alice lost", |e| {
        e["event"] == "status" && e["peer"] == "alice" && e["status"] == "disconnected"
    });
    // Longer than a path may stay lost before the chat moves (2 s).
    std::thread::sleep(Duration::from_secs(3));
    for i in 1..=3 {
        bob.send("alice", &format!("queued #{i}"));
    }
    // The store is written before a message is handed on; a moment for the last write.
    std::thread::sleep(Duration::from_millis(200));
    bob.crash();

    // Bob starts again on his store: same run, so the broker takes him back under his name
    // and Alice's de-duplication still applies.
    let mut bob = Cli::join_with(Network::Loopback, &url, "bob", &bob_flags);
    alice.thaw();
    bob.expect_peer_connected("alice");
    for i in 1..=3 {
        alice.expect_message("bob", &format!("queued #{i}"));
    }
    // Chat goes on both ways, numbering continued.
    let id = bob.send("alice", "after the restart");
    alice.expect_message("bob", "after the restart");
    bob.expect_delivered("alice", id);
    alice.send("bob", "welcome back");
    bob.expect_message("alice", "welcome back");

    // Exactly once: nothing Alice saw before shows again.
    let texts = [
        "before",
        "queued #1",
        "queued #2",
        "queued #3",
        "after the restart",
    ];
    assert_shown_once("alice", alice.seen(), &texts);

    // A second client on the same store is refused while Bob runs.
    let twin = Cli::start_with(Network::Loopback, &url, "bob", &bob_flags);
    let status = twin.finish();
    assert_eq!(
        status.code(),
        Some(2),
        "a store in use refuses a second client"
    );
}
