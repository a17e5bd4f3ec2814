//! Compatibility with the ORIGINAL JavaScript client, played by its stand-in
//! (tests/original-client) in headless Chromium, against peerchat's web and native clients.
//!
//! Each test runs in a private network namespace, as tests/browser.rs does, with default
//! Chromium WebRTC settings. The stand-in page comes from a peerchat-server of its own (its
//! `--web-root` is `<target>/original-client`); its MQTT goes wherever the test says.

use peerchat_e2e::benchmark::{self, TimedClient};
use peerchat_e2e::browser_client::{BrowserClient, page_dir};
use std::time::Instant;

use peerchat_e2e::original_client::{OriginalClient, original_dir};
use peerchat_e2e::original_server::OriginalServer;
use peerchat_e2e::{
    ChatClient, Cli, Mosquitto, Network, PeerchatServer, chat_both_ways, namespaced_test,
};

/// A peerchat-server serving the peerchat test page (and the MQTT endpoint), and one
/// serving the stand-in page only.
fn servers() -> (PeerchatServer, PeerchatServer) {
    (
        PeerchatServer::serving(&page_dir()),
        PeerchatServer::serving(&original_dir()),
    )
}

namespaced_test! {
    fn original_calls_peerchat_browser() {
        let (server, original_page) = servers();
        let ws = &server.broker.ws_url;
        let mut alice = OriginalClient::join(&original_page.http_url, ws, "alice");
        let mut bob = BrowserClient::join(&server.http_url, ws, "bob");
        chat_both_ways(&mut alice, &mut bob);
    }
}

namespaced_test! {
    fn peerchat_browser_calls_original() {
        let (server, original_page) = servers();
        let ws = &server.broker.ws_url;
        let mut alice = BrowserClient::join(&server.http_url, ws, "alice");
        let mut bob = OriginalClient::join(&original_page.http_url, ws, "bob");
        chat_both_ways(&mut alice, &mut bob);
    }
}

namespaced_test! {
    /// The original client as its users configured it for the original server:
    /// `ws://host:<MQTT port>`, no path.
    fn original_calls_native_cli() {
        let server = PeerchatServer::serving(&original_dir());
        let ws = server.broker.tcp_url.replace("mqtt://", "ws://");
        let mut alice = OriginalClient::join(&server.http_url, &ws, "alice");
        let mut bob = Cli::join_on(Network::PrivateNamespace, &server.broker.tcp_url, "bob");
        chat_both_ways(&mut alice, &mut bob);
    }
}

namespaced_test! {
    fn native_cli_calls_original() {
        let server = PeerchatServer::serving(&original_dir());
        let ws = &server.broker.ws_url;
        let mut alice = Cli::join_on(Network::PrivateNamespace, &server.broker.tcp_url, "alice");
        let mut bob = OriginalClient::join(&server.http_url, ws, "bob");
        chat_both_ways(&mut alice, &mut bob);
    }
}

namespaced_test! {
    /// Mosquitto answers no `register`: the stand-in counts itself connected after its
    /// register timeout (its documented assumption); the CLIs use peerchat's presence.
    fn original_and_native_chat_through_mosquitto() {
        let pages = PeerchatServer::serving(&original_dir());
        let mosquitto = Mosquitto::start();
        let (ws, tcp) = (&mosquitto.broker.ws_url, &mosquitto.broker.tcp_url);
        let mut alice = OriginalClient::join(&pages.http_url, ws, "alice");
        let mut bob = Cli::join_on(Network::PrivateNamespace, tcp, "bob");
        chat_both_ways(&mut alice, &mut bob);
        let mut carol = Cli::join_on(Network::PrivateNamespace, tcp, "carol");
        chat_both_ways(&mut carol, &mut alice);
    }
}

namespaced_test! {
    /// peerchat-server refuses a name a peerchat client holds, also to an original client.
    fn original_cannot_take_a_name_held_by_peerchat() {
        let server = PeerchatServer::serving(&original_dir());
        let _holder = Cli::join_on(Network::PrivateNamespace, &server.broker.tcp_url, "alice");
        let mut thief = OriginalClient::open(&server.http_url, "alice");
        assert!(
            !thief.connect(&server.broker.ws_url),
            "a second `alice` was accepted; saw {:#?}",
            thief.drain()
        );
        // Refused by a register-ack (which carries a message), not by a broken connection.
        let refused = thief.expect("connect_failed", &|e| e["event"] == "connect_failed");
        assert!(refused["message"].is_string(), "not a register-ack refusal: {refused}");
    }
}

// ---- On the original server (its stand-in, tests/original-server) ---------------------

namespaced_test! {
    /// The original server frees a name only when a connection whose client id is that name
    /// ends: a peerchat client continues under its name as client id there, so its name is
    /// free again once it quits, for peerchat and for original clients.
    fn on_the_original_server_a_quitting_clients_name_is_free_again() {
        let server = OriginalServer::start(Some(&original_dir()));
        for _ in 0..3 {
            let mut alice = Cli::join_on(Network::PrivateNamespace, &server.ws_url, "alice");
            alice.command("/quit");
            assert!(alice.finish().success());
        }
        let mut original = OriginalClient::join(&server.http_url, &server.ws_url, "alice");
        let mut bob = Cli::join_on(Network::PrivateNamespace, &server.ws_url, "bob");
        chat_both_ways(&mut bob, &mut original);
    }
}

/// The original server reports a message to an offline peer to the sender whose client id
/// is registered: a peerchat client's call to nobody fails at once, not after 30 s.
#[test]
fn on_the_original_server_an_offline_peer_is_reported_at_once() {
    let server = OriginalServer::start(None);
    let mut alice = Cli::join(&server.ws_url, "alice");
    let asked = Instant::now();
    alice.command("/connect nobody");
    let error = alice.expect("error", |e| e["event"] == "error");
    let took = asked.elapsed();
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("offline")),
        "{error}"
    );
    println!("call to an offline peer on the original server: reported after {took:?}");
}

namespaced_test! {
    /// One name, one holder: an original client that takes a name a peerchat client holds
    /// (the original server hands it over with the MQTT client id) gets it alone, and the
    /// peerchat client says so instead of taking it back; after the original client leaves,
    /// the next gets it.
    fn on_the_original_server_no_name_is_held_twice() {
        let server = OriginalServer::start(Some(&original_dir()));
        let mut holder = Cli::join_on(Network::PrivateNamespace, &server.ws_url, "alice");
        let mut first = OriginalClient::open(&server.http_url, "alice");
        let first_got_it = first.connect(&server.ws_url);
        if first_got_it {
            let lost = holder.expect("the name reported lost", |e| {
                e["event"] == "error"
                    && e["message"].as_str().is_some_and(|m| m.contains("was taken"))
            });
            println!("the peerchat client was told: {}", lost["message"]);
        }
        drop(first);
        let mut second = OriginalClient::open(&server.http_url, "alice");
        let second_got_it = second.connect(&server.ws_url);
        // Whoever holds the name, only one does.
        let holder_lost_it = holder
            .seen()
            .iter()
            .any(|e| e["event"] == "error" && e["message"].as_str().is_some_and(|m| m.contains("was taken")));
        assert_eq!(
            second_got_it, holder_lost_it,
            "the second original client got the name: {second_got_it}; the peerchat client \
             gave it up: {holder_lost_it}"
        );
    }
}

namespaced_test! {
    /// Two original clients through peerchat-server set up every chat. The original client
    /// drops candidates that reach it while it applies the offer or answer they follow; on
    /// loopback they come a fraction of a millisecond behind it, so without
    /// `SETTLE_TIME` none survives on either side and no setup opens (as through the
    /// original server's stand-in on the same machine). Each MQTT packet also goes in a
    /// WebSocket message of its own.
    fn fifty_setups_between_original_clients_through_peerchat_server() {
        let (server, original_page) = servers();
        let ws = &server.broker.ws_url;
        let mut caller = OriginalClient::join(&original_page.http_url, ws, "caller");
        let mut callee = OriginalClient::join(&original_page.http_url, ws, "callee");
        let setups = benchmark::setups(&mut caller, &mut callee, 50);
        assert_eq!(setups.len(), 50);
        let (median, p99) = benchmark::median_p99(&setups);
        println!("50 of 50 original↔original setups through peerchat-server: median {median:.1} ms, p99 {p99:.1} ms");
    }
}

namespaced_test! {
    /// The baseline peerchat's browser figures are held to: the original client's setup and
    /// round trip between two browsers, measured exactly as tests/browser.rs measures
    /// peerchat's (same harness, same namespace, same broker).
    /// `cargo test -p peerchat-e2e --test compat -- --ignored --nocapture`
    #[ignore = "benchmark: run explicitly"]
    fn original_client_setup_and_round_trip_baseline() {
        let setups = benchmark::env_number("PEERCHAT_BENCH_SETUPS", 50);
        let messages = benchmark::env_number("PEERCHAT_BENCH_MESSAGES", 200);
        let (server, original_page) = servers();
        let ws = &server.broker.ws_url;
        let mut caller = OriginalClient::join(&original_page.http_url, ws, "caller");
        let mut callee = OriginalClient::join(&original_page.http_url, ws, "callee");
        callee.set_echo(true);
        let setup = benchmark::setups(&mut caller, &mut callee, setups);
        let rtt = benchmark::round_trips(&mut caller, &mut callee, messages);
        benchmark::report("original browser↔browser", &setup, &rtt);
    }
}
