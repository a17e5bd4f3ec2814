//! Setup and round-trip measurements between pages in headless Chromium, timed by the
//! calling page's own clock (`performance.now()`), so WebDriver's latency is not in them.
//! Shared by peerchat's benchmarks (tests/browser.rs) and the original client's baseline
//! (tests/compat.rs), so both are measured the same way.

use serde_json::Value;

use crate::ChatClient;

/// A client in a page that can time what it does.
pub trait TimedClient: ChatClient {
    /// Starts a chat with `peer`; returns the page's clock (ms) just before.
    fn connect_timed(&mut self, peer: &str) -> f64;

    /// Sends `text` to `peer`, checked; returns the page's clock (ms) just before.
    fn send_timed(&mut self, peer: &str, text: &str) -> f64;

    /// Ends the chat with `peer`.
    fn close_peer(&mut self, peer: &str);

    /// Whether the page answers every message with itself (the far end of round trips).
    fn set_echo(&mut self, on: bool);
}

/// Setup times in ms: the caller's clock from starting the chat to its `peer_connected`;
/// after each, the caller closes and waits until the callee saw it.
pub fn setups(caller: &mut dyn TimedClient, callee: &mut dyn ChatClient, n: usize) -> Vec<f64> {
    let peer = callee.user().to_owned();
    let me = caller.user().to_owned();
    (0..n)
        .map(|_| {
            let start = caller.connect_timed(&peer);
            let open = caller.expect(&format!("peer_connected {peer}"), &|e| {
                e["event"] == "peer_connected" && e["peer"] == peer.as_str()
            });
            callee.expect_peer_connected(&me);
            caller.close_peer(&peer);
            callee.expect_peer_disconnected(&me);
            arrival(&open) - start
        })
        .collect()
}

/// Round trips in ms over one open chat. A callee that cannot echo by itself (a native
/// CLI) is answered by the test through its stdin and stdout, which the figure then
/// includes.
pub fn round_trips(
    caller: &mut dyn TimedClient,
    callee: &mut dyn ChatClient,
    n: usize,
    answer_by_hand: bool,
) -> Vec<f64> {
    let peer = callee.user().to_owned();
    let me = caller.user().to_owned();
    caller.connect_to(&peer);
    caller.expect_peer_connected(&peer);
    callee.expect_peer_connected(&me);
    (0..n)
        .map(|i| {
            let text = format!("ping {i}");
            let sent = caller.send_timed(&peer, &text);
            if answer_by_hand {
                callee.expect_message(&me, &text);
                callee.send(&me, &text);
            }
            let echo = caller.expect_message(&peer, &text);
            arrival(&echo) - sent
        })
        .collect()
}

/// Prints one result line: `what: N setups, median … p99 …; N round trips, median … p99 …`.
pub fn report(what: &str, setup: &[f64], rtt: &[f64]) {
    let (setup_median, setup_p99) = median_p99(setup);
    let (rtt_median, rtt_p99) = median_p99(rtt);
    println!(
        "{what}: {} setups, median {setup_median:.1} ms, p99 {setup_p99:.1} ms; \
         {} round trips, median {rtt_median:.2} ms, p99 {rtt_p99:.2} ms; 0 failures",
        setup.len(),
        rtt.len()
    );
}

/// The median and the 99th percentile (nearest rank) of `samples`, which must not be empty.
pub fn median_p99(samples: &[f64]) -> (f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let at =
        |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    (at(0.5), at(0.99))
}

/// A count from the environment (`PEERCHAT_BENCH_SETUPS`, …), or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn arrival(event: &Value) -> f64 {
    event["t"]
        .as_f64()
        .expect("page events carry their arrival time")
}
