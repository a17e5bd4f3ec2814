//! Phones switch between Wi-Fi and mobile data while both people keep writing; the chat
//! follows them, and the side that stays put never sees it end.
//!
//! A small network of namespaces ([`Host`]): a router that also runs `peerchat-server`
//! (reached at 198.18.0.1 from anywhere), a desk on the router's LAN, and one or two phones,
//! each with two links to the router, "wifi" and "cell", on different subnets. Each switch
//! takes the phone's address away with the old link, as a real handover does: the chat's
//! path and the phone's broker connection both die. The phone's client learns of the change
//! from the kernel (`network_watch`) and moves the chat. Switches alternate between losing
//! the old link first (Wi-Fi gone, then mobile data up) and bringing the new one up first
//! (the old link goes 300 ms later), as phones do both.
//!
//! Throughout, both sides write a numbered message every 100 ms (`steady`). Afterwards every
//! message must have arrived once and in order, none may have been refused, and neither side
//! may have seen the chat end. Figures (printed, never asserted): for switches that lose the
//! old link first, the time from that moment until the first message written after it
//! arrived, both ways; for the others, the longest a message written meanwhile took to
//! arrive (messages flow on the old link until the chat has moved); and the longest
//! silence a receiver saw.
//!
//! Combinations: the roaming peer's name sorting first and second, the desk native and in
//! headless Chromium, and both ends roaming. `PEERCHAT_SWITCHES` (20 by default) sets the
//! switches per roaming phone.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use peerchat_e2e::benchmark::{env_number, median_p99};
use peerchat_e2e::browser_client::{BrowserClient, page_dir};
use peerchat_e2e::hosts::{self, Host};
use peerchat_e2e::steady::{self, SteadyClient};
use peerchat_e2e::{ChatClient, Cli, Network, PeerchatServer, TempDir, clock_ms, netns};

/// How long messages keep flowing after a phone's chat recovered before it switches again.
const DWELL: Duration = Duration::from_millis(600);

/// How long both links work when a switch makes before it breaks.
const MAKE_BEFORE_BREAK: Duration = Duration::from_millis(300);

/// With both ends roaming, the time between one phone's switch and the other's.
const BOTH_ROAMING_GAP: Duration = Duration::from_secs(1);

/// One test at a time: the figures are times, and this machine has two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn serially() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A phone: a namespace with a "wifi" and a "cell" link to the router, on subnets of its
/// own (phone `i`: 198.18.(3i+1).0/24 and 198.18.(3i+2).0/24).
struct Phone {
    host: Host,
    index: u8,
    on_cell: std::cell::Cell<bool>,
    /// Switches made so far.
    switches: std::cell::Cell<u32>,
}

impl Phone {
    fn subnet(&self, link: &str) -> String {
        let third = 3 * self.index + if link == "wifi" { 1 } else { 2 };
        format!("198.18.{third}")
    }

    /// Moves the phone to its other link, whose address and default route replace the old
    /// ones; the old link goes down and its address with it. Switches alternate between
    /// breaking before making (the old link goes first, as when Wi-Fi is lost) and making
    /// before breaking (the new link and route come first and the old link follows a
    /// moment later, as when a phone moves on while its Wi-Fi still works: what it closes
    /// on the old link, a broker connection say, still gets through).
    fn switch(&self) -> Switch {
        let (from, to) = if self.on_cell.get() {
            ("cell", "wifi")
        } else {
            ("wifi", "cell")
        };
        let net = self.subnet(to);
        // The address goes on before the link comes up, so the phone announces it (see
        // `Net::build`) as it joins, as a phone's DHCP exchange would.
        let make = format!(
            "ip addr add {net}.2/24 dev {to} && ip link set {to} up
             ip route replace default via {net}.1 dev {to} onlink"
        );
        let brk = format!("ip addr flush dev {from} && ip link set {from} down");
        let make_first = self.switches.get() % 2 == 1;
        // Measured from the moment the old link is surely gone, or the new one is coming.
        let started;
        if make_first {
            started = clock_ms();
            self.host.run(&make);
            std::thread::sleep(MAKE_BEFORE_BREAK);
            self.host.run(&brk);
        } else {
            self.host.run(&brk);
            started = clock_ms();
            self.host.run(&make);
        }
        self.switches.set(self.switches.get() + 1);
        self.on_cell.set(!self.on_cell.get());
        Switch {
            started,
            make_first,
        }
    }
}

/// One switch as the figures need it.
#[derive(Clone, Copy)]
struct Switch {
    /// When it began (ms on the test's clock): the old link had gone, or the new one was
    /// about to come up.
    started: f64,
    /// The new link came up before the old one went.
    make_first: bool,
}

/// Where the desk computer runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DeskAt {
    /// A namespace of its own.
    Host,
    /// The test's own private namespace (a browser test: WebDriver stays on its loopback).
    Here,
    /// No desk: both ends are phones.
    Nowhere,
}

/// The router (with `peerchat-server`), the phones and the desk, configured.
struct Net {
    phones: Vec<Phone>,
    desk: Option<Host>,
    // Declared last: the server stops before its namespace goes.
    router: Host,
}

impl Net {
    fn build(phones: u8, desk_at: DeskAt) -> Self {
        assert!(
            hosts::can_create(),
            "this test builds its network from namespaces and needs root, as CI has"
        );
        let router = Host::new("router");
        let mut script =
            String::from("sysctl -qw net.ipv4.ip_forward=1\nip addr add 198.18.0.1/32 dev lo\n");
        let phones: Vec<Phone> = (0..phones)
            .map(|index| {
                let host = Host::new(&format!("phone{index}"));
                // A phone that joins a network makes itself known there (DHCP, in life), so
                // the router does not keep waiting on an address it failed to reach while
                // the phone was away: a gratuitous ARP when a link comes up.
                host.run(
                    "sysctl -qw net.ipv4.conf.all.arp_notify=1 net.ipv4.conf.default.arp_notify=1",
                );
                let phone = Phone {
                    host,
                    index,
                    on_cell: std::cell::Cell::new(false),
                    switches: std::cell::Cell::new(0),
                };
                for link in ["wifi", "cell"] {
                    let there = format!("{link}{index}");
                    phone.host.link(link, &router, &there);
                    let net = phone.subnet(link);
                    script.push_str(&format!(
                        "ip addr add {net}.1/24 dev {there} && ip link set {there} up\n"
                    ));
                }
                phone
            })
            .collect();
        let desk = match desk_at {
            DeskAt::Host => {
                let desk = Host::new("desk");
                desk.link("lan", &router, "lan");
                Some(desk)
            }
            DeskAt::Here => {
                // The namespace netns.sh made has a link of its own for browsers; the
                // desk's LAN replaces it.
                hosts::run_here("ip link del pc0");
                hosts::link_here("lan", &router, "lan");
                None
            }
            DeskAt::Nowhere => None,
        };
        if desk_at != DeskAt::Nowhere {
            script.push_str("ip addr add 198.18.3.1/24 dev lan && ip link set lan up\n");
        }
        router.run(&script);
        let desk_script = "ip addr add 198.18.3.2/24 dev lan && ip link set lan up
                           ip route add default via 198.18.3.1";
        match desk_at {
            DeskAt::Host => desk.as_ref().expect("made above").run(desk_script),
            DeskAt::Here => hosts::run_here(desk_script),
            DeskAt::Nowhere => {}
        }
        for phone in &phones {
            // Each phone starts on Wi-Fi; its switches count from the next one.
            phone.on_cell.set(true);
            phone.switch();
            phone.switches.set(0);
        }
        Self {
            phones,
            desk,
            router,
        }
    }

    fn server(&self, web_root: Option<&std::path::Path>) -> PeerchatServer {
        PeerchatServer::start_in(&self.router, "198.18.0.1", web_root)
    }
}

/// A native client on `host` of the test's network.
fn cli_on(host: &Host, server: &PeerchatServer, user: &str) -> Cli {
    Cli::join_on(Network::Host(host.name), &server.broker.tcp_url, user)
}

/// How the switches follow each other.
enum Pace {
    /// The next switch once messages flow both ways again, and [`DWELL`] more.
    AfterRecovery,
    /// One switch every so often, whether or not the last one has recovered.
    Every(Duration),
}

/// What one combination measured.
struct Figures {
    switches: usize,
    written: [u64; 2],
    /// Per switch that lost the old link first: ms until the first message written after it
    /// arrived, both ways.
    outages: Vec<f64>,
    /// Per switch that brought the new link up first: the longest a message written
    /// around it took to arrive, ms.
    held_up: Vec<f64>,
    /// The longest time a receiver went without a message, ms.
    longest_silence: f64,
}

impl Figures {
    fn report(&self, label: &str) {
        let summary = |ms: &[f64]| {
            let (median, _) = median_p99(ms);
            let worst = ms.iter().copied().fold(0.0, f64::max);
            let each: Vec<String> = ms.iter().map(|ms| format!("{ms:.0}")).collect();
            format!(
                "median {median:.0} ms, worst {worst:.0} ms ({})",
                each.join(" ")
            )
        };
        println!(
            "network switches, {label}: {} switches, {} + {} messages, each arrived once and \
             in order, none refused, the chat never ended on either side",
            self.switches, self.written[0], self.written[1]
        );
        println!(
            "  old link lost first ({}): messages both ways again after {}",
            self.outages.len(),
            summary(&self.outages)
        );
        println!(
            "  new link up first ({}): longest a message took, {}",
            self.held_up.len(),
            summary(&self.held_up)
        );
        println!(
            "  longest silence a receiver saw: {:.0} ms",
            self.longest_silence
        );
    }
}

/// Opens a chat from `caller` to `callee`, lets both write steadily while the phones switch
/// (in the order of `plan`, at `pace`), then checks every message and measures.
fn chat_through_switches(
    caller: &mut dyn SteadyClient,
    callee: &mut dyn SteadyClient,
    plan: &[&Phone],
    pace: Pace,
) -> Figures {
    let (a, b) = (caller.user().to_owned(), callee.user().to_owned());
    caller.connect_to(&b);
    caller.expect_peer_connected(&b);
    callee.expect_peer_connected(&a);

    let started = clock_ms();
    caller.start_writing(&b);
    callee.start_writing(&a);
    // Flowing both ways before the first switch.
    steady::wait_until_flowing(caller, callee, started);
    let mut switches = Vec::new();
    for phone in plan {
        let switch = phone.switch();
        switches.push(switch);
        match pace {
            Pace::AfterRecovery => {
                steady::wait_until_flowing(caller, callee, clock_ms());
                take_in_both(caller, callee, DWELL);
            }
            Pace::Every(gap) => {
                let next = switch.started + gap.as_secs_f64() * 1000.0;
                let left = (next - clock_ms()).max(0.0) / 1000.0;
                take_in_both(caller, callee, Duration::from_secs_f64(left));
            }
        }
    }
    // Recovered from the last switch, and a while more of steady traffic.
    steady::wait_until_flowing(caller, callee, clock_ms());
    take_in_both(caller, callee, DWELL);
    let written = [caller.stop_writing(), callee.stop_writing()];
    let stopped = clock_ms();
    steady::wait_for_message(callee, &a, written[0].count());
    steady::wait_for_message(caller, &b, written[1].count());

    for (who, peer, writing) in [(&a, &b, &written[0]), (&b, &a, &written[1])] {
        assert_eq!(writing.refused, 0, "{who} was refused sends to {peer}");
    }
    steady::assert_chat_never_ended(&a, caller.events(), &b);
    steady::assert_chat_never_ended(&b, callee.events(), &a);
    let checked = [
        steady::arrivals(&b, callee.events(), &a, written[0].count()),
        steady::arrivals(&a, caller.events(), &b, written[1].count()),
    ];
    let [at_callee, at_caller] = checked.map(|arrivals| {
        arrivals.unwrap_or_else(|wrong| {
            panic!(
                "{wrong}\n{a} saw besides messages:\n{}\n{b} saw besides messages:\n{}",
                steady::story(caller.events()),
                steady::story(callee.events())
            )
        })
    });
    let directions = [
        (written[0].at.as_slice(), at_callee.as_slice()),
        (written[1].at.as_slice(), at_caller.as_slice()),
    ];
    let (mut outages, mut held_up) = (Vec::new(), Vec::new());
    for (i, switch) in switches.iter().enumerate() {
        if switch.make_first {
            let next = switches.get(i + 1).map_or(stopped, |s| s.started);
            held_up.push(steady::held_up_ms(switch.started, next, &directions));
        } else {
            outages.push(steady::flowing_again_ms(switch.started, &directions));
        }
    }
    let longest_silence = [&at_callee, &at_caller]
        .map(|arrivals| steady::longest_silence_ms(arrivals, started, stopped))
        .into_iter()
        .fold(0.0, f64::max);
    Figures {
        switches: switches.len(),
        written: [written[0].count(), written[1].count()],
        outages,
        held_up,
        longest_silence,
    }
}

/// Reads both clients' events for `wait`, in small turns.
fn take_in_both(a: &mut dyn SteadyClient, b: &mut dyn SteadyClient, wait: Duration) {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        a.take_in(Duration::from_millis(10));
        b.take_in(Duration::from_millis(10));
    }
}

fn switches() -> usize {
    env_number("PEERCHAT_SWITCHES", 20)
}

#[test]
fn a_native_desk_never_sees_the_chat_end_while_the_phone_roams() {
    let _serial = serially();
    let net = Net::build(1, DeskAt::Host);
    let server = net.server(None);
    let (desk, phone) = (net.desk.as_ref().expect("a desk"), &net.phones[0]);
    let plan = vec![phone; switches()];
    // The roaming name sorts first (the desk calls), then second (the phone calls).
    for (roaming, desk_calls) in [("alice", true), ("zoe", false)] {
        let mut bob = cli_on(desk, &server, "bob");
        let mut roamer = cli_on(&phone.host, &server, roaming);
        let figures = if desk_calls {
            chat_through_switches(&mut bob, &mut roamer, &plan, Pace::AfterRecovery)
        } else {
            chat_through_switches(&mut roamer, &mut bob, &plan, Pace::AfterRecovery)
        };
        figures.report(&format!("native ↔ native, {roaming} roams, bob stays"));
        roamer.finish();
        bob.finish();
    }
}

#[test]
fn both_ends_roaming_a_second_apart_keep_their_chat() {
    let _serial = serially();
    let net = Net::build(2, DeskAt::Nowhere);
    let server = net.server(None);
    let mut alice = cli_on(&net.phones[0].host, &server, "alice");
    let mut zoe = cli_on(&net.phones[1].host, &server, "zoe");
    let plan: Vec<&Phone> = (0..switches())
        .flat_map(|_| [&net.phones[0], &net.phones[1]])
        .collect();
    let figures = chat_through_switches(&mut alice, &mut zoe, &plan, Pace::Every(BOTH_ROAMING_GAP));
    figures.report("native ↔ native, both roam, 1 s apart");
}

/// The same with the desk's client in headless Chromium (the test's own namespace is the
/// desk, so WebDriver stays on its loopback). Chromium offers raw addresses here: mDNS
/// names do not cross a router.
#[test]
fn a_browser_desk_never_sees_the_chat_end_while_the_phone_roams() {
    let _serial = serially();
    netns::in_private_network(
        "a_browser_desk_never_sees_the_chat_end_while_the_phone_roams",
        || {
            let net = Net::build(1, DeskAt::Here);
            let server = net.server(Some(&page_dir()));
            let phone = &net.phones[0];
            let plan = vec![phone; switches()];
            let flags = ["--disable-features=WebRtcHideLocalIpsWithMdns"];
            let mut bob =
                BrowserClient::join_with(&server.http_url, &server.broker.ws_url, "bob", &flags);
            for (roaming, desk_calls) in [("alice", true), ("zoe", false)] {
                let mut roamer = cli_on(&phone.host, &server, roaming);
                let figures = if desk_calls {
                    chat_through_switches(&mut bob, &mut roamer, &plan, Pace::AfterRecovery)
                } else {
                    chat_through_switches(&mut roamer, &mut bob, &plan, Pace::AfterRecovery)
                };
                figures.report(&format!("browser ↔ native, {roaming} roams, bob stays"));
                roamer.finish();
            }
        },
    );
}

/// A file on its way when the phone switches keeps going: with a transfer under way the
/// chat restarts ICE on the same connection (fresh sockets on the new network), so the
/// data channel and what is in flight on it survive; nothing starts over.
#[test]
fn a_file_on_its_way_survives_a_switch_by_an_ice_restart() {
    let _serial = serially();
    let net = Net::build(1, DeskAt::Host);
    let server = net.server(None);
    let mut alice = cli_on(net.desk.as_ref().expect("a desk"), &server, "alice");
    let mut bob = cli_on(&net.phones[0].host, &server, "bob");
    alice.connect_to("bob");
    alice.expect_peer_connected("bob");
    bob.expect_peer_connected("alice");
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
    // Part of it has arrived when the phone moves (losing Wi-Fi first).
    let progress = alice.expect("the file under way", |e| {
        e["event"] == "transfer" && e["incoming"] == true && e["done"].as_u64() > Some(0)
    });
    net.phones[0].switch();
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

/// A room member on a phone switches networks four times while the room keeps talking: it
/// writes through every switch and so do the members at the desk, and afterwards each
/// member holds every message of the others once, none refused.
#[test]
fn a_room_member_whose_network_switches_misses_nothing() {
    const SWITCHES: usize = 4;
    const PER_SWITCH: usize = 5;
    let _serial = serially();
    let net = Net::build(1, DeskAt::Host);
    let server = net.server(None);
    let (desk, phone) = (net.desk.as_ref().expect("a desk"), &net.phones[0]);
    let mut alice = cli_on(&phone.host, &server, "alice");
    let mut bob = cli_on(desk, &server, "bob");
    let mut carol = cli_on(desk, &server, "carol");
    alice.command("/connect bob");
    alice.command("/connect carol");
    alice.expect_peer_connected("bob");
    alice.expect_peer_connected("carol");
    alice.command("/room create on the move");
    let created = alice.expect("room created", |e| e["event"] == "room_members");
    let room = created["room"].as_str().expect("a room id").to_owned();
    alice.command(&format!("/room invite {room} bob"));
    alice.command(&format!("/room invite {room} carol"));
    for member in [&mut alice, &mut bob, &mut carol] {
        member.expect("in the room with all three", |e| {
            e["event"] == "room_members" && e["members"].as_array().map(Vec::len) == Some(3)
        });
    }

    for switch in 0..SWITCHES {
        phone.switch();
        // Everyone writes while the phone's chats move.
        for n in 0..PER_SWITCH {
            for member in [&mut alice, &mut bob, &mut carol] {
                let text = format!("{} {switch}.{n}", member.user);
                member.command(&format!("/room send {room} {text}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let written = SWITCHES * PER_SWITCH;
    for member in [&mut alice, &mut bob, &mut carol] {
        for _ in 0..2 * written {
            member.expect("a room message", |e| e["event"] == "room_message");
        }
        let got: Vec<String> = (member.seen().iter())
            .filter(|e| e["event"] == "room_message")
            .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        let distinct: std::collections::BTreeSet<&String> = got.iter().collect();
        assert_eq!(
            distinct.len(),
            got.len(),
            "{}: a message twice",
            member.user
        );
        let refused = (member.seen().iter()).filter(|e| e["event"] == "room_refused");
        assert_eq!(
            refused.count(),
            0,
            "{}: refused a member's frame",
            member.user
        );
        let unsent =
            (member.seen().iter()).filter(|e| e["event"] == "room_sent" && e["ok"] != true);
        assert_eq!(unsent.count(), 0, "{}: a message not taken", member.user);
    }
}
