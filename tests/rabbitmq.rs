//! peerchat clients pointed straight at a RabbitMQ cluster (Debian's `rabbitmq-server`, two
//! nodes, the MQTT and Web MQTT plugins): chats across nodes, and names that cannot be
//! stolen by picking another node, although RabbitMQ keeps retained messages per node (the
//! client's live `name-claim` asks the holder itself, wherever it is connected).
//!
//! One cluster for the whole file: a node takes several seconds to start.

use peerchat_e2e::rabbitmq::RabbitCluster;
use peerchat_e2e::{Cli, chat_both_ways};

#[test]
fn peerchat_on_a_two_node_rabbitmq_cluster() {
    let cluster = RabbitCluster::start(2);
    let (one, two) = (&cluster.nodes[0].broker, &cluster.nodes[1].broker);

    // Across nodes, over TCP and over WebSocket.
    let mut alice = Cli::join(&one.tcp_url, "alice");
    let mut bob = Cli::join(&two.ws_url, "bob");
    chat_both_ways(&mut alice, &mut bob);

    // The retained presence of `alice` lives on node one only; the holder answers a claim
    // made through node two.
    let mut thief = Cli::start(&two.tcp_url, "alice");
    let error = thief.expect("a refusal", |e| e["event"] == "error");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("already taken")),
        "{error}"
    );
    assert_eq!(thief.finish().code(), Some(2));
    // The holder keeps its name: a newcomer on node two reaches it.
    let mut carol = Cli::join(&two.tcp_url, "carol");
    chat_both_ways(&mut carol, &mut alice);
}
