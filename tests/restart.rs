//! History and the outbox survive an app restart: real `peerchat-server` and
//! `peerchat-cli` processes on loopback, the sender killed hard with messages still queued,
//! or the very moment it reported them sent, and started again on the same store; a damaged
//! store is kept aside and the client starts afresh. The browser's counterpart (a reloaded
//! page keeps its queue in IndexedDB) is in `browser.rs`.

use std::time::Duration;

use serde_json::Value;

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
    // `sent` is printed once the message is in the store: killed at once, nothing is lost.
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

/// Bob writes twenty messages in a burst to Alice, who is reading, and is killed the
/// moment he reports the last one sent: some have reached Alice, some are on the wire, some
/// only in Bob's store. Started again, he sends what was not acknowledged; Alice shows each
/// of the twenty once, in order, and what Bob writes next (numbered after them) too.
#[test]
fn messages_reported_sent_survive_a_kill_right_after() {
    let server = PeerchatServer::start();
    let url = server.broker.tcp_url.clone();
    let dir = TempDir::new("kill-after-send");
    let store = dir.0.join("bob.db");
    let bob_flags = ["--store", store.to_str().expect("a UTF-8 temp path")];

    let mut alice = Cli::join(&url, "alice");
    let mut bob = Cli::join_with(Network::Loopback, &url, "bob", &bob_flags);
    alice.connect_to("bob");
    alice.expect_peer_connected("bob");
    bob.expect_peer_connected("alice");
    let texts: Vec<String> = (1..=20).map(|i| format!("burst #{i}")).collect();
    for text in &texts {
        bob.command(&format!("/send alice {text}"));
    }
    bob.expect("the last one sent", |e| {
        e["event"] == "sent" && e["id"].as_u64() == Some(20)
    });
    bob.crash();

    let mut bob = Cli::join_with(Network::Loopback, &url, "bob", &bob_flags);
    for text in &texts {
        alice.expect_message("bob", text);
    }
    bob.expect_peer_connected("alice");
    let id = bob.send("alice", "after the kill");
    assert!(id > 20, "numbering goes on after what was sent: got #{id}");
    alice.expect_message("bob", "after the kill");
    bob.expect_delivered("alice", id);
    let mut all: Vec<&str> = texts.iter().map(String::as_str).collect();
    all.push("after the kill");
    assert_shown_once("alice", alice.seen(), &all);
}

/// A store file that is not a readable database (here: overwritten with noise) does not
/// keep the client from starting: it is kept aside, the user is told, and a new store is
/// used, which the next start finds.
#[test]
fn a_damaged_store_is_kept_aside_and_the_client_starts_afresh() {
    let server = PeerchatServer::start();
    let url = server.broker.tcp_url.clone();
    let dir = TempDir::new("damaged-store");
    let store = dir.0.join("bob.db");
    let noise: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&store, &noise).expect("the store file written");
    let bob_flags = ["--store", store.to_str().expect("a UTF-8 temp path")];

    let mut bob = Cli::join_with(Network::Loopback, &url, "bob", &bob_flags);
    let told = bob.expect("the store set aside", |e| {
        e["event"] == "error"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("kept aside") && m.contains("bob.db"))
    });
    let aside: Vec<_> = std::fs::read_dir(&dir.0)
        .expect("the temp dir reads")
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .starts_with("bob.db.unreadable-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "one file kept aside ({told})");
    assert_eq!(std::fs::read(aside[0].path()).expect("it reads"), noise);

    // The new store works: what Bob sends is kept, and the next start finds it, quietly
    // (a notice would be the first event after joining, before the chat opens).
    let mut alice = Cli::join(&url, "alice");
    alice.connect_to("bob");
    bob.expect_peer_connected("alice");
    let id = bob.send("alice", "on a new store");
    alice.expect_message("bob", "on a new store");
    bob.expect_delivered("alice", id);
    for cli in [&mut alice, &mut bob] {
        cli.command("/quit");
    }
    assert!(alice.finish().success() && bob.finish().success());
    let mut bob = Cli::join_with(Network::Loopback, &url, "bob", &bob_flags);
    let mut alice = Cli::join(&url, "alice");
    alice.connect_to("bob");
    bob.expect_peer_connected("alice");
    let notice = |e: &&Value| {
        e["event"] == "error" && e["message"].as_str().is_some_and(|m| m.contains("store"))
    };
    assert!(
        !bob.seen().iter().any(|e| notice(&e)),
        "a sound store gives no notice: {:?}",
        bob.seen()
    );
    let id = bob.send("alice", "still here");
    assert!(id > 1, "the numbering was kept: got #{id}");
    alice.expect_message("bob", "still here");
}

/// A client that ran on this device before starts without a server when asked to
/// (`start_offline`, as the app does): offline with its store, then online by itself once
/// the server is back. A first start on the device still needs the server.
#[test]
fn a_returning_user_starts_offline_and_comes_online_when_the_server_is_back() {
    use futures::StreamExt;
    use peerchat_core::{Client, ClientError, ClientEvent, ClientOptions, SignalingState, Storage};

    let mut server = PeerchatServer::start();
    let dir = TempDir::new("offline-start");
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let options = |url: &str| {
        let mut options = ClientOptions::new(url, "alice");
        options.bind_addrs = vec!["127.0.0.1:0".into()];
        options.mdns = false;
        options.identity_file = Some(dir.0.join("alice.identity"));
        options.storage = Storage::File(dir.0.join("alice.db"));
        options.start_offline = true;
        options
    };
    let url = server.broker.tcp_url.clone();
    server.stop();
    let first = runtime.block_on(Client::connect_with(options(&url)));
    assert!(
        matches!(first, Err(ClientError::ServerUnreachable { .. })),
        "a first start needs the server: {:?}",
        first.map(|_| ())
    );

    server.resume();
    let (alice, _) = runtime
        .block_on(Client::connect_with(options(&url)))
        .expect("alice joins");
    runtime.block_on(alice.disconnect());
    drop(alice);
    server.stop();

    let (alice, mut events) = runtime
        .block_on(Client::connect_with(options(&url)))
        .expect("a returning user starts offline");
    let offline = runtime.block_on(events.next());
    assert_eq!(
        offline,
        Some(ClientEvent::Signaling(SignalingState::Reconnecting))
    );
    server.resume();
    let online = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(event) = events.next().await {
                if event == ClientEvent::Registered {
                    return true;
                }
            }
            false
        })
        .await
    });
    assert_eq!(online, Ok(true), "online once the server is back");
    runtime.block_on(alice.disconnect());
}
