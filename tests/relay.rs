//! Relay fallback: when peers may not reach each other directly, the chat goes through a
//! TURN server. Forced here with the `relay` ICE transport policy on both sides, through
//! a real coturn on loopback.

use peerchat_e2e::mitm::{Mitm, Tamper};
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

/// `--relay-only` keeps each peer's addresses from the other: everything the clients
/// publish through the broker (a relay here keeps every byte of it) offers only the TURN
/// server's relayed addresses, with no host, reflexive or related address of the client's.
#[test]
fn with_relays_only_no_candidate_tells_a_peer_where_the_other_is() {
    let turn = TurnServer::start();
    let server = PeerchatServer::start();
    let relay = Mitm::start(&server.broker.tcp_url, Tamper::Nothing);
    let flags = turn.relay_only_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut alice = Cli::join_with(Network::Loopback, &relay.url, "alice", &flags);
    let mut bob = Cli::join_with(Network::Loopback, &relay.url, "bob", &flags);
    chat_both_ways(&mut alice, &mut bob);
    let candidates = relay.candidates();
    assert!(!candidates.is_empty(), "the relay saw the candidates");
    for candidate in &candidates {
        assert!(candidate.contains(" typ relay"), "{candidate}");
        // A relayed candidate names where its client reached the TURN server from, unless
        // that is hidden.
        let related = candidate.split(" raddr ").nth(1);
        assert!(
            related.is_none_or(|related| related.starts_with("0.0.0.0 rport 0")),
            "{candidate}"
        );
    }
}
