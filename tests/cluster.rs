//! peerchat at scale: a three-node NATS cluster (Debian's `nats-server`, JetStream on) with
//! `peerchat-server --cluster` gateways in front, and clients pointed at the NATS nodes'
//! own MQTT listeners with nothing in front.
//!
//! One cluster serves the whole binary (each test keeps to names, or a gateway namespace, of
//! its own); the test that kills a NATS node starts its own, and so does the browser test,
//! inside its private network namespace (see tests/browser.rs). Figures are printed, never
//! asserted: the machine may be busy.

use std::sync::{OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use peerchat_e2e::benchmark::median_p99;
use peerchat_e2e::browser_client::{BrowserClient, page_dir};
use peerchat_e2e::nats::{NatsCluster, fresh_namespace, gateway};
use peerchat_e2e::netns::in_private_network;
use peerchat_e2e::{ChatClient, Cli, Network, PeerchatServer, assert_shown_once, chat_both_ways};
use serde_json::Value;

/// Tests that start a NATS cluster of their own run alone. Three more JetStream nodes
/// starting (and Chromium, for one) on a 2-core machine can hold up the shared cluster's
/// requests past a gateway's liveness window; a gateway that misses it lets its clients go,
/// as designed, in the middle of another test's checks.
static CLUSTERS: RwLock<()> = RwLock::new(());

/// Held by a test on the shared cluster.
fn sharing() -> RwLockReadGuard<'static, ()> {
    CLUSTERS.read().unwrap_or_else(PoisonError::into_inner)
}

/// Held by a test with a cluster of its own.
fn alone() -> RwLockWriteGuard<'static, ()> {
    CLUSTERS.write().unwrap_or_else(PoisonError::into_inner)
}

fn shared_cluster() -> &'static NatsCluster {
    static CLUSTER: OnceLock<NatsCluster> = OnceLock::new();
    CLUSTER.get_or_init(NatsCluster::start)
}

/// Two gateways over the shared cluster, in a namespace of their own.
fn two_gateways(label: &str) -> (PeerchatServer, PeerchatServer) {
    let cluster = shared_cluster();
    let namespace = fresh_namespace(label);
    (gateway(cluster, &namespace), gateway(cluster, &namespace))
}

fn signaling(state: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["event"] == "signaling" && e["state"] == state
}

fn presence(user: &'static str, online: bool) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["event"] == "presence" && e["user"] == user && e["online"] == online
}

/// Milliseconds from `/connect` until both ends report the chat open.
fn timed_setup(caller: &mut Cli, callee: &mut Cli) -> f64 {
    let started = Instant::now();
    caller.connect_to(&callee.user.clone());
    caller.expect_peer_connected(&callee.user.clone());
    callee.expect_peer_connected(&caller.user.clone());
    started.elapsed().as_secs_f64() * 1000.0
}

/// A client asking for `holder`'s name through `url` is refused: it prints an error naming
/// it and exits with status 2. If it gets the name instead, what the holder heard says
/// whether its gateway had let it go first (cut off, as designed) or the name was given
/// twice.
fn refused_while_held(holder: &mut Cli, url: &str) {
    let user = holder.user.clone();
    let mut cli = Cli::start(url, &user);
    let outcome = cli.expect("refusal", |e| {
        e["event"] == "error" || e["event"] == "connected"
    });
    if outcome["event"] == "connected" {
        let heard = holder.gather(Duration::from_millis(500));
        panic!("{user} was given through {url} while held; the holder's events: {heard:#?}");
    }
    assert!(
        outcome["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&user),
        "{outcome}"
    );
    assert_eq!(cli.finish().code(), Some(2), "{user} through {url}");
}

fn summary(samples: &[f64]) -> String {
    let (median, _) = median_p99(samples);
    let max = samples.iter().copied().fold(0.0, f64::max);
    format!(
        "median {median:.0} ms, max {max:.0} ms over {}",
        samples.len()
    )
}

/// Clients on different gateways chat over MQTT on TCP and on WebSocket, both ways and in
/// order; chats through one gateway and across two are set up alike.
#[test]
fn clients_on_different_gateways_chat_over_tcp_and_websocket() {
    let _sharing = sharing();
    let (g1, g2) = two_gateways("chat");
    let mut alice = Cli::join(&g1.broker.tcp_url, "alice");
    let mut bob = Cli::join(&g2.broker.ws_url, "bob");
    let mut carol = Cli::join(&g1.broker.ws_url, "carol");
    chat_both_ways(&mut alice, &mut bob);
    chat_both_ways(&mut bob, &mut carol);

    let (mut one_gateway, mut across) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let mut a = Cli::join(&g1.broker.tcp_url, &format!("one-a{round}"));
        let mut b = Cli::join(&g1.broker.tcp_url, &format!("one-b{round}"));
        one_gateway.push(timed_setup(&mut a, &mut b));
        let mut c = Cli::join(&g1.broker.tcp_url, &format!("across-a{round}"));
        let mut d = Cli::join(&g2.broker.tcp_url, &format!("across-b{round}"));
        across.push(timed_setup(&mut c, &mut d));
    }
    println!(
        "chat setup through one gateway: {}; across two gateways: {}",
        summary(&one_gateway),
        summary(&across)
    );
}

/// A name held through one gateway is refused through another, over TCP and WebSocket;
/// once its holder quits it is free through any gateway.
#[test]
fn a_name_held_through_one_gateway_is_refused_through_another() {
    let _sharing = sharing();
    let (g1, g2) = two_gateways("names");
    let mut alice = Cli::join(&g1.broker.tcp_url, "alice");
    refused_while_held(&mut alice, &g2.broker.tcp_url);
    refused_while_held(&mut alice, &g2.broker.ws_url);
    refused_while_held(&mut alice, &g1.broker.tcp_url);
    assert!(alice.finish().success());
    // Same identity key (the test's data directory), any gateway.
    let mut again = Cli::join(&g2.broker.tcp_url, "alice");
    let mut bob = Cli::join(&g1.broker.tcp_url, "bob");
    chat_both_ways(&mut bob, &mut again);
}

/// Eight clients ask for one name at the same moment through two gateways: exactly one
/// gets it (the bucket's compare-and-set lets only one write win), every other is refused.
#[test]
fn a_name_asked_for_at_once_through_two_gateways_goes_to_exactly_one() {
    let _sharing = sharing();
    let (g1, g2) = two_gateways("race");
    let contenders: Vec<Cli> = (0..8)
        .map(|i| {
            let gateway = if i % 2 == 0 { &g1 } else { &g2 };
            Cli::start(&gateway.broker.tcp_url, "frank")
        })
        .collect();
    let (mut winners, mut refused) = (Vec::new(), 0);
    for mut cli in contenders {
        let outcome = cli.expect("connected or refused", |e| {
            e["event"] == "connected" || e["event"] == "error"
        });
        if outcome["event"] == "connected" {
            winners.push(cli);
        } else {
            assert_eq!(cli.finish().code(), Some(2), "{outcome}");
            refused += 1;
        }
    }
    assert_eq!(winners.len(), 1, "{refused} refused");
}

/// Watchers on one gateway hear a name come and go through another; a message to a name
/// nobody holds anywhere comes back as `delivery-failed`.
#[test]
fn presence_and_delivery_failures_cross_gateways() {
    let _sharing = sharing();
    let (g1, g2) = two_gateways("presence");
    let mut bob = Cli::join(&g2.broker.tcp_url, "bob");
    bob.command("/watch alice");
    bob.expect("alice offline", presence("alice", false));
    let alice = Cli::join(&g1.broker.tcp_url, "alice");
    bob.expect("alice online", presence("alice", true));

    bob.command("/connect nobody");
    let error = bob.expect("nobody is offline", |e| e["event"] == "error");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nobody"),
        "{error}"
    );

    assert!(alice.finish().success());
    bob.expect("alice offline again", presence("alice", false));
}

/// A gateway killed mid-chat: its clients that know another gateway are online through it
/// within seconds, their chats never stop (every message once), and clients that knew only
/// the dead gateway are reported offline on the others, watched or not.
#[test]
fn a_killed_gateways_clients_come_back_through_another() {
    let _sharing = sharing();
    let (mut g1, g2) = two_gateways("gateway-kill");
    let both = format!("{},{}", g1.broker.tcp_url, g2.broker.tcp_url);
    let mut alice = Cli::join(&both, "alice");
    let mut bob = Cli::join(&g2.broker.tcp_url, "bob");
    let dave = Cli::join(&g1.broker.tcp_url, "dave");
    let erin = Cli::join(&g1.broker.tcp_url, "erin");
    bob.command("/watch dave");
    bob.expect("dave online", presence("dave", true));
    alice.connect_to("bob");
    alice.expect_peer_connected("bob");
    bob.expect_peer_connected("alice");

    let mut texts = Vec::new();
    let mut send_round = |alice: &mut Cli, bob: &mut Cli, label: &str| {
        for i in 0..5 {
            alice.send("bob", &format!("{label} alice #{i}"));
            bob.send("alice", &format!("{label} bob #{i}"));
            texts.push((format!("{label} alice #{i}"), format!("{label} bob #{i}")));
        }
    };
    send_round(&mut alice, &mut bob, "before");
    g1.stop();
    let killed = Instant::now();
    send_round(&mut alice, &mut bob, "during");
    alice.expect("online through g2", signaling("online"));
    let online_again = killed.elapsed();
    send_round(&mut alice, &mut bob, "after");
    bob.expect("dave offline", presence("dave", false));
    let dave_offline = killed.elapsed();
    drop(dave);
    // Nobody watched erin when the gateway died: a watcher now finds her gone all the same.
    bob.command("/watch erin");
    bob.expect("erin offline", presence("erin", false));
    drop(erin);

    for (from_alice, from_bob) in &texts {
        bob.expect_message("alice", from_alice);
        alice.expect_message("bob", from_bob);
    }
    // Registered through g2 now: a newcomer there reaches alice.
    let mut carol = Cli::join(&g2.broker.tcp_url, "carol");
    carol.connect_to("alice");
    carol.expect_peer_connected("alice");
    carol.send("alice", "found you through g2");
    alice.expect_message("carol", "found you through g2");

    let all = |side: usize| -> Vec<&str> {
        (texts.iter())
            .map(|pair| {
                if side == 0 {
                    pair.0.as_str()
                } else {
                    pair.1.as_str()
                }
            })
            .collect()
    };
    alice.gather(Duration::from_millis(500));
    bob.gather(Duration::from_millis(500));
    assert_shown_once("bob", bob.seen(), &all(0));
    assert_shown_once("alice", alice.seen(), &all(1));
    println!(
        "gateway killed: alice online again through the other after {:.0} ms; dave (who \
         knew only the dead gateway) reported offline after {:.0} ms; {} messages each way, \
         none lost or repeated",
        online_again.as_secs_f64() * 1000.0,
        dave_offline.as_secs_f64() * 1000.0,
        texts.len()
    );
}

/// A gateway frozen past the liveness window (as if cut off from the cluster): its names
/// are given to others meanwhile, so when it runs again it closes its clients before
/// delivering anything; a name is never held twice.
#[test]
fn a_gateway_cut_off_lets_go_of_its_clients_before_serving_again() {
    let _sharing = sharing();
    let (g1, g2) = two_gateways("fence");
    let mut bob = Cli::join(&g2.broker.tcp_url, "bob");
    let mut old_alice = Cli::join(&g1.broker.tcp_url, "alice");
    bob.command("/watch alice");
    bob.expect("alice online", presence("alice", true));

    g1.freeze();
    let frozen = Instant::now();
    bob.expect("alice offline", presence("alice", false));
    let offline = frozen.elapsed();
    // Her other device (same key, another run) takes the name through g2.
    let mut new_alice = Cli::join(&g2.broker.tcp_url, "alice");
    g1.thaw();
    let error = old_alice.expect("her name lost", |e| e["event"] == "error");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("alice"),
        "{error}"
    );
    bob.connect_to("alice");
    bob.expect_peer_connected("alice");
    new_alice.expect_peer_connected("bob");
    bob.send("alice", "which one are you?");
    new_alice.expect_message("bob", "which one are you?");
    let old_events = old_alice.gather(Duration::from_millis(500));
    assert!(
        !old_events
            .iter()
            .any(|e| e["event"] == "status" && e["peer"] == "bob"),
        "bob's call reached the old connection: {old_events:#?}"
    );
    println!(
        "gateway frozen: its client reported offline after {:.0} ms; the name taken through \
         the other; the old connection closed when the gateway ran again",
        offline.as_secs_f64() * 1000.0
    );
}

/// A NATS node killed under two gateways: names stay held and refused elsewhere, chats go
/// on, and the gateway that used the dead node serves new clients through another node.
#[test]
fn a_killed_nats_node_loses_no_name_and_no_chat() {
    let _alone = alone();
    let mut cluster = NatsCluster::start();
    let namespace = fresh_namespace("node-kill");
    let node_url = |i: usize| format!("nats://127.0.0.1:{}", cluster.nodes[i].client_port);
    // Each gateway knows one node; it learns the others from it.
    let g1 = PeerchatServer::start_with_flags(&[
        "--cluster",
        &node_url(0),
        "--cluster-namespace",
        &namespace,
    ]);
    let g2 = PeerchatServer::start_with_flags(&[
        "--cluster",
        &node_url(1),
        "--cluster-namespace",
        &namespace,
    ]);
    let mut alice = Cli::join(&g1.broker.tcp_url, "alice");
    let mut bob = Cli::join(&g2.broker.tcp_url, "bob");
    alice.connect_to("bob");
    alice.expect_peer_connected("bob");
    bob.expect_peer_connected("alice");

    cluster.kill(0);
    let killed = Instant::now();
    for i in 0..5 {
        alice.send("bob", &format!("node down alice #{i}"));
        bob.send("alice", &format!("node down bob #{i}"));
    }
    for i in 0..5 {
        bob.expect_message("alice", &format!("node down alice #{i}"));
        alice.expect_message("bob", &format!("node down bob #{i}"));
    }
    // g1 serves again through another node: a newcomer registers there and reaches both.
    let mut carol = Cli::join(&g1.broker.tcp_url, "carol");
    let served_again = killed.elapsed();
    for peer in ["alice", "bob"] {
        carol.connect_to(peer);
        carol.expect_peer_connected(peer);
        carol.send(peer, "hello with a node down");
    }
    alice.expect_message("carol", "hello with a node down");
    bob.expect_message("carol", "hello with a node down");
    refused_while_held(&mut alice, &g2.broker.tcp_url);
    refused_while_held(&mut bob, &g1.broker.tcp_url);
    let alice_events = alice.gather(Duration::from_millis(300));
    assert!(
        !alice_events.iter().any(signaling("reconnecting")),
        "alice lost her gateway: {alice_events:#?}"
    );
    println!(
        "NATS node killed: the gateway on it registered a newcomer {:.0} ms later; \
         names kept, chats uninterrupted",
        served_again.as_secs_f64() * 1000.0
    );
}

/// Clients pointed straight at the NATS nodes' MQTT listeners (no peerchat-server): pairs
/// on different nodes chat over TCP and WebSocket. Setup times over each are printed.
#[test]
fn clients_on_different_nats_nodes_chat_directly() {
    let _sharing = sharing();
    let cluster = shared_cluster();
    let [n1, n2, n3] = [0, 1, 2].map(|i| cluster.nodes[i].broker());
    let mut alice = Cli::join(&n1.tcp_url, "direct-alice");
    let mut bob = Cli::join(&n2.ws_url, "direct-bob");
    let mut carol = Cli::join(&n3.tcp_url, "direct-carol");
    chat_both_ways(&mut alice, &mut bob);
    chat_both_ways(&mut carol, &mut bob);

    let (mut tcp, mut ws) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let mut a = Cli::join(&n1.tcp_url, &format!("direct-tcp-a{round}"));
        let mut b = Cli::join(&n2.tcp_url, &format!("direct-tcp-b{round}"));
        tcp.push(timed_setup(&mut a, &mut b));
        let mut c = Cli::join(&n1.ws_url, &format!("direct-ws-a{round}"));
        let mut d = Cli::join(&n2.ws_url, &format!("direct-ws-b{round}"));
        ws.push(timed_setup(&mut c, &mut d));
    }
    println!(
        "NATS MQTT directly, chat setup across nodes over TCP: {}; over WebSocket: {}",
        summary(&tcp),
        summary(&ws)
    );
}

/// Straight at NATS, a name held through one node is refused through every other, over
/// TCP and WebSocket: the holder answers the newcomer's live claim.
#[test]
fn a_name_held_on_one_nats_node_is_refused_on_every_other() {
    let _sharing = sharing();
    let cluster = shared_cluster();
    let mut holder = Cli::join_on(
        Network::Loopback,
        &cluster.nodes[0].broker().tcp_url,
        "direct-dave",
    );
    for node in &cluster.nodes[1..] {
        refused_while_held(&mut holder, &node.broker().tcp_url);
        refused_while_held(&mut holder, &node.broker().ws_url);
    }
    refused_while_held(&mut holder, &cluster.nodes[0].broker().ws_url);
    drop(holder);
}

/// Headless Chromium in the cluster: a page on one gateway chats with a CLI on another,
/// and a page on a NATS node's own WebSocket listener with a CLI on another node.
#[test]
fn a_browser_chats_across_the_cluster() {
    let _alone = alone();
    in_private_network("a_browser_chats_across_the_cluster", || {
        let pages = PeerchatServer::serving(&page_dir());
        let cluster = NatsCluster::start();
        let namespace = fresh_namespace("browser");
        let (g1, g2) = (gateway(&cluster, &namespace), gateway(&cluster, &namespace));
        let mut alice = BrowserClient::join(&pages.http_url, &g1.broker.ws_url, "alice");
        let mut bob = Cli::join_on(Network::PrivateNamespace, &g2.broker.tcp_url, "bob");
        chat_both_ways(&mut alice, &mut bob);
        let direct = |i: usize| cluster.nodes[i].broker();
        let mut carol = BrowserClient::join(&pages.http_url, &direct(0).ws_url, "carol");
        let mut dave = Cli::join_on(Network::PrivateNamespace, &direct(1).tcp_url, "dave");
        chat_both_ways(&mut dave, &mut carol);
    });
}
