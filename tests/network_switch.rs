//! A phone switches between Wi-Fi and mobile data mid-chat; the chat follows it.
//!
//! A small network of namespaces ([`Host`]): a router that also runs `peerchat-server`
//! (reached at 198.18.0.1 from anywhere), a desk computer on the router's LAN, and a phone
//! with two links to the router, "wifi" (198.18.1.0/24) and "cell" (198.18.2.0/24), only
//! one of them up at a time. Each switch takes the phone's address away with the old link,
//! as a real handover does: the chat's path and the phone's broker connection both die.
//! The phone's client learns of the change from the kernel (`network_watch`) and moves
//! the chat at once; its name sorts second, so nothing but that hint makes it offer.

use std::time::Instant;

use peerchat_e2e::benchmark::{env_number, median_p99};
use peerchat_e2e::hosts::{self, Host};
use peerchat_e2e::{ChatClient, Cli, Network, PeerchatServer};

const ROUTER: &str = "sysctl -qw net.ipv4.ip_forward=1
ip addr add 198.18.0.1/32 dev lo
ip addr add 198.18.1.1/24 dev wifi && ip link set wifi up
ip addr add 198.18.2.1/24 dev cell && ip link set cell up
ip addr add 198.18.3.1/24 dev lan && ip link set lan up";

const DESK: &str = "ip addr add 198.18.3.2/24 dev lan && ip link set lan up
ip route add default via 198.18.3.1";

const ON_WIFI: &str = "ip addr flush dev cell && ip link set cell down
ip link set wifi up && ip addr add 198.18.1.2/24 dev wifi
ip route replace default via 198.18.1.1 dev wifi onlink";

const ON_CELL: &str = "ip addr flush dev wifi && ip link set wifi down
ip link set cell up && ip addr add 198.18.2.2/24 dev cell
ip route replace default via 198.18.2.1 dev cell onlink";

/// `PEERCHAT_SWITCHES` switches (20 by default): after each, a message written by either
/// side at the moment of the switch arrives, and every message arrives once, in order.
#[test]
fn a_chat_follows_a_phone_between_wifi_and_mobile_data() {
    assert!(
        hosts::can_create(),
        "this test builds its network from namespaces and needs root, as CI has"
    );
    let switches = env_number("PEERCHAT_SWITCHES", 20);
    let router = Host::new("router");
    let desk = Host::new("desk");
    let phone = Host::new("phone");
    phone.link("wifi", &router, "wifi");
    phone.link("cell", &router, "cell");
    desk.link("lan", &router, "lan");
    router.run(ROUTER);
    desk.run(DESK);
    phone.run(ON_WIFI);

    let server = PeerchatServer::start_in(&router, "198.18.0.1");
    let url = &server.broker.tcp_url;
    let mut alice = Cli::join_on(Network::Host(desk.name), url, "alice");
    let mut bob = Cli::join_on(Network::Host(phone.name), url, "bob");
    alice.connect_to("bob");
    alice.expect_peer_connected("bob");
    bob.expect_peer_connected("alice");

    let mut recovered_ms = Vec::new();
    let mut sent = 0;
    for round in 0..switches {
        let (network, script) = if round % 2 == 0 {
            ("mobile data", ON_CELL)
        } else {
            ("Wi-Fi", ON_WIFI)
        };
        alice.send("bob", &format!("{round}: before, from alice"));
        bob.send("alice", &format!("{round}: before, from bob"));
        bob.expect_message("alice", &format!("{round}: before, from alice"));
        alice.expect_message("bob", &format!("{round}: before, from bob"));

        phone.run(script);
        let switched = Instant::now();
        alice.send("bob", &format!("{round}: during, from alice"));
        bob.send("alice", &format!("{round}: during, from bob"));
        bob.expect_message("alice", &format!("{round}: during, from alice"));
        alice.expect_message("bob", &format!("{round}: during, from bob"));
        let ms = switched.elapsed().as_secs_f64() * 1000.0;
        println!("switch {round} to {network}: messages through again after {ms:.0} ms");
        recovered_ms.push(ms);

        alice.send("bob", &format!("{round}: after, from alice"));
        bob.send("alice", &format!("{round}: after, from bob"));
        bob.expect_message("alice", &format!("{round}: after, from alice"));
        alice.expect_message("bob", &format!("{round}: after, from bob"));
        sent += 3;
    }

    // A last message each way: anything shown twice would have come before it.
    alice.send("bob", "the end");
    bob.send("alice", "the end");
    bob.expect_message("alice", "the end");
    alice.expect_message("bob", "the end");
    for (cli, peer) in [(&alice, "bob"), (&bob, "alice")] {
        let shown = cli
            .seen()
            .iter()
            .filter(|e| e["event"] == "message" && e["from"] == peer)
            .count();
        assert_eq!(shown, sent + 1, "{} saw {shown} messages", cli.user());
    }
    let (median, _) = median_p99(&recovered_ms);
    let max = recovered_ms.iter().copied().fold(0.0, f64::max);
    println!(
        "network switches: {switches}, all recovered; messages lost 0, duplicated 0; \
         recovery median {median:.0} ms, max {max:.0} ms"
    );
}
