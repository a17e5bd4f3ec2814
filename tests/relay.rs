//! Relay fallback: when peers may not reach each other directly, the chat goes through a
//! TURN server. Forced here with the `relay` ICE transport policy on both sides, through
//! a real coturn on loopback.

use peerchat_e2e::turn::TurnServer;
use peerchat_e2e::{ChatClient, Cli, Network, PeerchatServer, chat_both_ways};

#[test]
fn a_chat_goes_through_a_turn_relay_when_only_relays_are_allowed() {
    let turn = TurnServer::start();
    let server = PeerchatServer::start();
    let flags = turn.relay_only_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let url = &server.broker.tcp_url;
    let mut alice = Cli::join_with(Network::Loopback, url, "alice", &flags);
    let mut bob = Cli::join_with(Network::Loopback, url, "bob", &flags);
    chat_both_ways(&mut alice, &mut bob);
    for (me, peer) in [(&mut alice, "bob"), (&mut bob, "alice")] {
        let path = me.expect("how the chat runs", |e| {
            e["event"] == "path" && e["peer"] == peer
        });
        assert_eq!(path["kind"], "relayed", "{}: {path}", me.user());
    }
}
