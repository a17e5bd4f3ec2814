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
use peerchat_e2e::browser_client::{BrowserClient, page_dir};
use peerchat_e2e::hosts::{self, Host};
use peerchat_e2e::{ChatClient, Cli, Network, PeerchatServer, TempDir, namespaced_test};

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

/// The router and the phone (on Wi-Fi), linked; the desk is linked by the caller.
struct Net {
    router: Host,
    phone: Host,
}

impl Net {
    fn new() -> Self {
        assert!(
            hosts::can_create(),
            "this test builds its network from namespaces and needs root, as CI has"
        );
        let router = Host::new("router");
        let phone = Host::new("phone");
        phone.link("wifi", &router, "wifi");
        phone.link("cell", &router, "cell");
        Self { router, phone }
    }

    /// Configures the router and the phone once the desk's link exists.
    fn start(&self) {
        self.router.run(ROUTER);
        self.phone.run(ON_WIFI);
    }
}

/// Alice at a desk and Bob on the phone (on Wi-Fi), both native, chatting.
struct Chatting {
    net: Net,
    alice: Cli,
    bob: Cli,
    _desk: Host,
    _server: PeerchatServer,
}

impl Chatting {
    fn native() -> Self {
        let net = Net::new();
        let desk = Host::new("desk");
        desk.link("lan", &net.router, "lan");
        net.start();
        desk.run(DESK);
        let server = PeerchatServer::start_in(&net.router, "198.18.0.1", None);
        let url = &server.broker.tcp_url;
        let mut alice = Cli::join_on(Network::Host(desk.name), url, "alice");
        let mut bob = Cli::join_on(Network::Host(net.phone.name), url, "bob");
        alice.connect_to("bob");
        alice.expect_peer_connected("bob");
        bob.expect_peer_connected("alice");
        Self {
            net,
            alice,
            bob,
            _desk: desk,
            _server: server,
        }
    }
}

/// `PEERCHAT_SWITCHES` switches (20 by default): after each, a message written by either
/// side at the moment of the switch arrives, and every message arrives once, in order
/// (`expect_message` takes the next message from a sender, so a repeat fails it). Returns
/// how long after each switch the messages written at that moment had both arrived.
fn switch_back_and_forth(net: &Net, desk: &mut dyn ChatClient, phone: &mut Cli) -> Vec<f64> {
    let switches = env_number("PEERCHAT_SWITCHES", 20);
    let (d, p) = (desk.user().to_owned(), phone.user.clone());
    let mut recovered_ms = Vec::new();
    for round in 0..switches {
        let (network, script) = if round % 2 == 0 {
            ("mobile data", ON_CELL)
        } else {
            ("Wi-Fi", ON_WIFI)
        };
        desk.send(&p, &format!("{round}: before, from {d}"));
        phone.send(&d, &format!("{round}: before, from {p}"));
        phone.expect_message(&d, &format!("{round}: before, from {d}"));
        desk.expect_message(&p, &format!("{round}: before, from {p}"));

        net.phone.run(script);
        let switched = Instant::now();
        desk.send(&p, &format!("{round}: during, from {d}"));
        phone.send(&d, &format!("{round}: during, from {p}"));
        phone.expect_message(&d, &format!("{round}: during, from {d}"));
        desk.expect_message(&p, &format!("{round}: during, from {p}"));
        let ms = switched.elapsed().as_secs_f64() * 1000.0;
        println!("switch {round} to {network}: messages through again after {ms:.0} ms");
        recovered_ms.push(ms);

        desk.send(&p, &format!("{round}: after, from {d}"));
        phone.send(&d, &format!("{round}: after, from {p}"));
        phone.expect_message(&d, &format!("{round}: after, from {d}"));
        desk.expect_message(&p, &format!("{round}: after, from {p}"));
    }
    // A last message each way: anything shown twice would have come before it.
    desk.send(&p, "the end");
    phone.send(&d, "the end");
    phone.expect_message(&d, "the end");
    desk.expect_message(&p, "the end");
    recovered_ms
}

fn report(who: &str, recovered_ms: &[f64]) {
    let (median, _) = median_p99(recovered_ms);
    let max = recovered_ms.iter().copied().fold(0.0, f64::max);
    println!(
        "network switches ({who}): {}, all recovered; messages lost 0, duplicated 0; \
         recovery median {median:.0} ms, max {max:.0} ms",
        recovered_ms.len()
    );
}

#[test]
fn a_chat_between_native_clients_follows_a_phone_between_wifi_and_mobile_data() {
    // The desk and the server stay bound until the test ends.
    let Chatting {
        net,
        mut alice,
        mut bob,
        _desk,
        _server,
    } = Chatting::native();
    let recovered_ms = switch_back_and_forth(&net, &mut alice, &mut bob);
    for (cli, peer) in [(&alice, "bob"), (&bob, "alice")] {
        let shown = cli
            .seen()
            .iter()
            .filter(|e| e["event"] == "message" && e["from"] == peer)
            .count();
        assert_eq!(
            shown,
            recovered_ms.len() * 3 + 1,
            "{} saw {shown} messages",
            cli.user
        );
    }
    report("native ↔ native", &recovered_ms);
}

/// A file on its way when the phone switches keeps going: with a transfer under way the
/// chat restarts ICE on the same connection (fresh sockets on the new network), so the
/// data channel and what is in flight on it survive; nothing starts over.
#[test]
fn a_file_on_its_way_survives_a_switch_by_an_ice_restart() {
    // The desk and the server stay bound until the test ends.
    let Chatting {
        net,
        mut alice,
        mut bob,
        _desk,
        _server,
    } = Chatting::native();
    let dir = TempDir::new("switch-file");
    let path = dir.0.join("video.bin");
    let size = 64 * 1024 * 1024;
    std::fs::write(
        &path,
        (0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>(),
    )
    .expect("the file is written");
    bob.command(&format!("/sendfile alice {}", path.display()));
    let sent = bob.expect("sent", |e| e["event"] == "sent" && e["peer"] == "alice");
    assert_eq!(sent["ok"], true, "bob could not send the file: {sent}");
    let id = sent["id"].as_u64().expect("an id");
    // Part of it has arrived when the phone moves.
    let progress = alice.expect("the file under way", |e| {
        e["event"] == "transfer" && e["incoming"] == true && e["done"].as_u64() > Some(0)
    });
    net.phone.run(ON_CELL);
    let switched = Instant::now();
    let file = alice.expect("the whole file", |e| {
        e["event"] == "file" && e["from"] == "bob"
    });
    assert_eq!(file["size"], size, "the file arrived whole");
    bob.expect_delivered("alice", id);
    let moved = switched.elapsed().as_secs_f64();
    for cli in [&alice, &bob] {
        let errors: Vec<_> = (cli.seen().iter())
            .filter(|e| e["event"] == "error")
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", cli.user);
    }
    alice.send("bob", "got it");
    bob.expect_message("alice", "got it");
    println!(
        "a {} MiB file, {} bytes in when the phone switched, arrived whole {moved:.1} s later",
        size / (1024 * 1024),
        progress["done"]
    );
}

namespaced_test! {
    /// The same with the desk's client in headless Chromium (the test's own namespace is
    /// the desk, so WebDriver stays on its loopback). Chromium offers raw addresses here:
    /// mDNS names do not cross a router.
    fn a_chat_between_a_browser_and_a_phone_follows_the_phone_between_networks() {
        let net = Net::new();
        // The namespace netns.sh made has a link of its own for browsers; the desk's
        // LAN replaces it.
        hosts::run_here("ip link del pc0");
        hosts::link_here("lan", &net.router, "lan");
        net.start();
        hosts::run_here(DESK);

        let server = PeerchatServer::start_in(&net.router, "198.18.0.1", Some(&page_dir()));
        let flags = ["--disable-features=WebRtcHideLocalIpsWithMdns"];
        let mut alice =
            BrowserClient::join_with(&server.http_url, &server.broker.ws_url, "alice", &flags);
        let mut bob = Cli::join_on(Network::Host(net.phone.name), &server.broker.tcp_url, "bob");
        alice.connect_to("bob");
        alice.expect_peer_connected("bob");
        bob.expect_peer_connected("alice");

        let recovered_ms = switch_back_and_forth(&net, &mut alice, &mut bob);
        report("browser ↔ native", &recovered_ms);
    }
}
