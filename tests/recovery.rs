//! The signaling server may go away and come back at any time; the client recovers.
//!
//! Real `peerchat-server` and `peerchat-cli` processes on loopback: the server is killed
//! mid-chat (as a crash or a redeploy would) and started again on the same ports.

use std::time::{Duration, Instant};

use peerchat_e2e::benchmark::{env_number, median_p99};
use peerchat_e2e::{ChatClient, Cli, PeerchatServer, assert_shown_once};

/// Alice and Bob, joined to `url`, with a chat open between them.
fn chatting(url: &str) -> (Cli, Cli) {
    let mut alice = Cli::join(url, "alice");
    let mut bob = Cli::join(url, "bob");
    alice.connect_to("bob");
    alice.expect_peer_connected("bob");
    bob.expect_peer_connected("alice");
    (alice, bob)
}

/// While the broker is down, an open chat keeps carrying messages both ways (peer to peer,
/// nothing goes through the broker); when it is back, both clients go online again by
/// themselves, and afterwards a newcomer reaches them. `PEERCHAT_RESTARTS` rounds (3 by
/// default; docs/recovery.md's figure is from 10).
#[test]
fn chats_survive_broker_restarts_and_clients_come_back_online() {
    let restarts = env_number("PEERCHAT_RESTARTS", 3);
    let mut server = PeerchatServer::start();
    let url = server.broker.tcp_url.clone();
    let (mut alice, mut bob) = chatting(&url);

    let signaling = |state: &'static str| {
        move |e: &serde_json::Value| e["event"] == "signaling" && e["state"] == state
    };
    let mut back_online = Vec::new();
    for round in 0..restarts {
        server.stop();
        alice.expect("the broker gone", signaling("reconnecting"));
        bob.expect("the broker gone", signaling("reconnecting"));
        for i in 0..5 {
            alice.send("bob", &format!("outage {round} alice #{i}"));
            bob.send("alice", &format!("outage {round} bob #{i}"));
        }
        for i in 0..5 {
            bob.expect_message("alice", &format!("outage {round} alice #{i}"));
            alice.expect_message("bob", &format!("outage {round} bob #{i}"));
        }
        let resumed = Instant::now();
        server.resume();
        alice.expect("back online", signaling("online"));
        bob.expect("back online", signaling("online"));
        back_online.push(resumed.elapsed().as_secs_f64() * 1000.0);
    }

    // Registered again: a newcomer finds both and the old chat still runs.
    let mut carol = Cli::join(&url, "carol");
    for peer in ["alice", "bob"] {
        carol.connect_to(peer);
        carol.expect_peer_connected(peer);
        carol.send(peer, "hello after the restarts");
    }
    alice.expect_message("carol", "hello after the restarts");
    bob.expect_message("carol", "hello after the restarts");
    alice.send("bob", "still here");
    bob.expect_message("alice", "still here");

    let (median, _) = median_p99(&back_online);
    let max = back_online.iter().copied().fold(0.0, f64::max);
    println!(
        "broker restarts: {restarts}, P2P messages lost 0; both clients online again after \
         median {median:.0} ms, max {max:.0} ms"
    );
}

/// An offer written into a broker connection as it died reached nobody (signaling is at most
/// once). Once the caller is back on the broker the offer goes again, so the first chat opens
/// rather than waiting out its setup timeout and failing.
#[test]
fn an_offer_lost_with_the_broker_connection_goes_again_when_it_is_back() {
    use peerchat_e2e::mitm::{Mitm, Tamper};
    let server = PeerchatServer::start();
    let relay = Mitm::start(&server.broker.tcp_url, Tamper::LoseFirstOffer);
    let mut alice = Cli::join(&relay.url, "alice");
    let mut bob = Cli::join(&server.broker.tcp_url, "bob");
    alice.connect_to("bob");
    alice.expect("the broker connection cut with the offer in it", |e| {
        e["event"] == "signaling" && e["state"] == "reconnecting"
    });
    alice.expect_peer_connected("bob");
    bob.expect_peer_connected("alice");
    assert!(
        relay.connections() >= 2,
        "alice reconnected through the relay"
    );
    alice.send("bob", "after the lost offer");
    bob.expect_message("alice", "after the lost offer");
    bob.send("alice", "got it");
    alice.expect_message("bob", "got it");
}

/// A peer that stops answering (frozen with SIGSTOP for longer than ICE tolerates, like a
/// suspended laptop) loses its connection; the chat moves to a new one by itself once it
/// answers again, and every message sent meanwhile arrives once, in order.
#[test]
fn a_chat_recovers_after_the_peer_stops_answering_for_a_while() {
    let server = PeerchatServer::start();
    let url = server.broker.tcp_url.clone();
    let (mut alice, mut bob) = chatting(&url);
    alice.send("bob", "before");
    bob.expect_message("alice", "before");

    bob.freeze();
    for i in 0..3 {
        alice.send("bob", &format!("while bob is away #{i}"));
    }
    // ICE notices the silence; when the path stays lost, Alice offers a new connection
    // (her name sorts first) and keeps what she sends for it.
    let status = |state: &'static str| {
        move |e: &serde_json::Value| {
            e["event"] == "status" && e["peer"] == "bob" && e["status"] == state
        }
    };
    alice.expect("the path to bob lost", status("disconnected"));
    // Longer than ICE may stay lost before the chat moves (2 s): recovery is under way.
    std::thread::sleep(Duration::from_secs(4));
    alice.send("bob", "after the path was lost");
    let thawed = Instant::now();
    bob.thaw();

    alice.expect_peer_connected("bob");
    let reopened = thawed.elapsed();
    bob.expect_peer_connected("alice");
    for i in 0..3 {
        bob.expect_message("alice", &format!("while bob is away #{i}"));
    }
    bob.expect_message("alice", "after the path was lost");
    bob.send("alice", "back");
    alice.expect_message("bob", "back");
    // Nothing shown twice: "before" arrived once, before the freeze.
    assert_shown_once("bob", bob.seen(), &["before"]);
    println!(
        "chat reopened on a new connection {:.0} ms after the peer answered again",
        reopened.as_secs_f64() * 1000.0
    );
}

/// A client given several servers (`--server` repeated) moves to another when its own dies,
/// and goes online there by itself; one whose first server is dead starts on the next.
#[test]
fn a_client_given_several_servers_moves_to_another_when_its_own_dies() {
    let (mut first, second) = (PeerchatServer::start(), PeerchatServer::start());
    let (one, two) = (&first.broker.tcp_url, &second.broker.tcp_url);
    let mut alice = Cli::join(&format!("{one},{two}"), "alice");
    let mut bob = Cli::join(two, "bob");
    let online_again = |e: &serde_json::Value| e["event"] == "signaling" && e["state"] == "online";
    first.stop();
    let lost = Instant::now();
    alice.expect("online on the other server", online_again);
    let moved = lost.elapsed();
    bob.connect_to("alice");
    bob.expect_peer_connected("alice");
    alice.expect_peer_connected("bob");
    bob.send("alice", "found you on the other server");
    alice.expect_message("bob", "found you on the other server");

    let dead = format!("mqtt://127.0.0.1:{}", peerchat_e2e::free_port());
    let mut carol = Cli::join(&format!("{dead},{two}"), "carol");
    carol.connect_to("bob");
    carol.expect_peer_connected("bob");
    println!(
        "online on the second server {:.0} ms after the first died",
        moved.as_secs_f64() * 1000.0
    );
}
