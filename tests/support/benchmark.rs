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

    /// Ends the chat with `peer`.
    fn close_peer(&mut self, peer: &str);

    /// Whether the page answers every message with itself (the far end of round trips).
    fn set_echo(&mut self, on: bool);

    /// `n` round trips to `peer` (which echoes), run and timed inside the page one after
    /// another (`pingLoop`), so neither WebDriver's latency nor its calls into the page
    /// are in them; in ms.
    fn ping_loop(&mut self, peer: &str, n: usize) -> Vec<f64>;
}

/// Runs a page's `<global>.pingLoop(peer, n)` and reads its round trips.
pub fn run_ping_loop(
    browser: &crate::webdriver::Browser,
    who: &str,
    global: &str,
    peer: &str,
    n: usize,
) -> Vec<f64> {
    let script = format!(
        "const [peer, n, done] = arguments; \
         {global}.pingLoop(peer, n).then(r => done(Array.from(r)), e => done(String(e)));"
    );
    let answer = browser.run_async(who, &script, serde_json::json!([peer, n]));
    let rtts = answer
        .as_array()
        .unwrap_or_else(|| panic!("{who}: pingLoop to {peer} failed: {answer}"));
    rtts.iter()
        .map(|rtt| rtt.as_f64().expect("round trips are numbers"))
        .collect()
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

/// Round trips in ms over one open chat with a callee that echoes (a page with echo on,
/// or `peerchat-cli --echo`), timed inside the caller's page.
pub fn round_trips(
    caller: &mut dyn TimedClient,
    callee: &mut dyn ChatClient,
    n: usize,
) -> Vec<f64> {
    let peer = callee.user().to_owned();
    let me = caller.user().to_owned();
    caller.connect_to(&peer);
    caller.expect_peer_connected(&peer);
    callee.expect_peer_connected(&me);
    caller.ping_loop(&peer, n)
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

/// Self time per function in a DevTools CPU profile (`Profiler.stop`'s `profile`), in ms,
/// most first: each sample's interval is charged to the function on top of the stack.
pub fn self_times(profile: &Value) -> Vec<(String, f64)> {
    let nodes = profile["nodes"].as_array().cloned().unwrap_or_default();
    let names: std::collections::HashMap<u64, String> = nodes
        .iter()
        .filter_map(|node| {
            let frame = &node["callFrame"];
            let name = frame["functionName"].as_str().filter(|n| !n.is_empty());
            let name = name.map_or_else(
                || {
                    let url = frame["url"].as_str().unwrap_or("");
                    let file = url.rsplit('/').next().unwrap_or(url);
                    format!("(anonymous {file}:{})", frame["lineNumber"])
                },
                str::to_owned,
            );
            Some((node["id"].as_u64()?, name))
        })
        .collect();
    let mut totals: std::collections::HashMap<&str, f64> = std::collections::HashMap::new();
    let samples = profile["samples"].as_array().cloned().unwrap_or_default();
    let deltas = profile["timeDeltas"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (sample, delta) in samples.iter().zip(deltas.iter().skip(1)) {
        let name = sample
            .as_u64()
            .and_then(|id| names.get(&id))
            .map_or("?", String::as_str);
        *totals.entry(name).or_default() += delta.as_f64().unwrap_or(0.0) / 1000.0;
    }
    let mut totals: Vec<(String, f64)> =
        totals.into_iter().map(|(n, t)| (n.to_owned(), t)).collect();
    totals.sort_by(|a, b| b.1.total_cmp(&a.1));
    totals
}
