//! What a peer can make a client hold is bounded, even when the app falls behind: an app
//! that stops reading its events is not grown without end. Its client leaves, with every
//! event made before still in the stream and the reason as the last one; nothing the peer
//! saw acknowledged is missing from it.
//!
//! Bob is a `peerchat_core::Client` in this test's process (an app that never reads), Alice
//! a real `peerchat-cli`, on a real `peerchat-server`.

use std::collections::HashMap;

use futures::StreamExt;
use peerchat_core::{Client, ClientError, ClientEvent, ClientOptions};
use peerchat_e2e::{ChatClient, Cli, PeerchatServer, TempDir};

/// More messages than a client keeps for an app that does not read (16,384 events).
const SENT: usize = 17_000;

#[test]
fn an_app_that_stops_reading_is_left_with_every_event_before_the_reason() {
    let server = PeerchatServer::start();
    let url = server.broker.tcp_url.clone();
    let dir = TempDir::new("unread");
    let runtime = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let mut options = ClientOptions::new(&url, "bob");
    options.bind_addrs = vec!["127.0.0.1:0".into()];
    options.mdns = false;
    options.identity_file = Some(dir.0.join("bob.identity"));
    let (bob, mut events) = runtime
        .block_on(Client::connect_with(options))
        .expect("bob joins");

    let mut alice = Cli::join(&url, "alice");
    alice.connect_to("bob");
    alice.expect_peer_connected("bob");
    // From here on Bob's app reads nothing, and Alice writes more than it may leave unread.
    for i in 0..SENT {
        alice.command(&format!("/send bob m{i}"));
    }
    alice.expect_peer_disconnected("bob");

    // Alice's numbering of her messages (the i-th `sent` is m{i}); those sent once Bob had
    // left were refused. Her acknowledgements all came before his leaving.
    let mut texts = HashMap::new();
    for i in 0..SENT {
        let sent = alice.expect("sent", |e| e["event"] == "sent");
        if let Some(id) = sent["id"].as_u64() {
            texts.insert(id, i);
        }
    }
    let delivered: Vec<u64> = (alice.seen().iter())
        .filter(|e| e["event"] == "delivered")
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert!(!delivered.is_empty(), "alice saw acknowledgements");

    // Bob's app reads at last: every message it was handed, in order, then why the client
    // left, then the end.
    let read: Vec<ClientEvent> = runtime.block_on(events.by_ref().collect());
    let shown: Vec<&str> = (read.iter())
        .filter_map(|e| match e {
            ClientEvent::Message { from, text } if from == "alice" => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..shown.len()).map(|i| format!("m{i}")).collect();
    assert_eq!(shown, expected, "bob's messages, in order, none missing");
    // The client left once the app was more than 16,384 events behind. Messages already on
    // their way when it did may still have been handed over (on a fast machine, all of them).
    assert!(
        read.len() > 16_384,
        "bob's client left early: {}",
        read.len()
    );
    assert!(
        matches!(
            read.last(),
            Some(ClientEvent::Error(ClientError::EventsNotRead { .. }))
        ),
        "the last event says why: {:?}",
        read.last()
    );
    // Whatever Alice saw acknowledged, Bob's app has: nothing was lost silently.
    for id in delivered {
        let index = texts[&id];
        assert!(
            index < shown.len(),
            "alice's #{id} (m{index}) was acknowledged, never shown"
        );
    }
    drop(bob);
}
