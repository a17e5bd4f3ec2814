//! Compatibility with the ORIGINAL JavaScript client, played by its stand-in
//! (tests/original-client) in headless Chromium, against peerchat's web and native clients.
//!
//! Each test runs in a private network namespace, as tests/browser.rs does, with default
//! Chromium WebRTC settings. The stand-in page comes from a peerchat-server of its own (its
//! `--web-root` is `<target>/original-client`); its MQTT goes wherever the test says.

use peerchat_e2e::benchmark::{self, TimedClient};
use peerchat_e2e::browser_client::{BrowserClient, page_dir};
use peerchat_e2e::original_client::{OriginalClient, original_dir};
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
    fn original_calls_native_cli() {
        let server = PeerchatServer::serving(&original_dir());
        let ws = &server.broker.ws_url;
        let mut alice = OriginalClient::join(&server.http_url, ws, "alice");
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
