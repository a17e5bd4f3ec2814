//! A peerchat client running in headless Chromium: the test page (tests/browser-page) in
//! its own `Browser`, driven over WebDriver and checked like a `Cli`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::benchmark::TimedClient;
use crate::steady::{SteadyClient, WRITE_EVERY, Written};
use crate::turn::TurnServer;
use crate::webdriver::Browser;
use crate::{ChatClient, EventLog, PATIENCE};

/// The built test page: `<target>/browser-page`, made by tests/run.sh (cargo build for
/// wasm32, then wasm-bindgen). Pass it to `PeerchatServer::serving`.
pub fn page_dir() -> PathBuf {
    let dir = crate::target_path("browser-page");
    assert!(
        dir.join("index.html").exists() && dir.join("peerchat_browser_page_bg.wasm").exists(),
        "the browser test page is missing from {}: build it as tests/run.sh does \
         (cargo build -p peerchat-browser-page --target wasm32-unknown-unknown --release, \
         then wasm-bindgen --target web)",
        dir.display()
    );
    dir
}

/// The test page in a browser of its own, holding at most one peerchat client.
pub struct BrowserClient {
    pub user: String,
    browser: Browser,
    log: EventLog,
    page_url: String,
    /// The test's clock ([`crate::clock_ms`]) minus the page's (`performance.now()`), to
    /// stamp the page's events `at` on the test's clock.
    clock_offset: f64,
}

impl BrowserClient {
    /// Opens the test page at `page_url` in a new browser and waits until it is ready.
    pub fn open(page_url: &str, user: &str) -> Self {
        Self::open_with(page_url, user, &[])
    }

    /// Opens the page in a browser started with extra Chromium `flags`.
    pub fn open_with(page_url: &str, user: &str, flags: &[&str]) -> Self {
        let mut client = Self {
            user: user.to_owned(),
            browser: Browser::start_with(flags),
            log: EventLog::new(user),
            page_url: page_url.to_owned(),
            clock_offset: 0.0,
        };
        client.load_page();
        client
    }

    fn load_page(&mut self) {
        let Self { browser, user, .. } = self;
        browser.navigate(&self.page_url);
        let check = "return window.peerchatReady === true ? null \
                     : (window.peerchatError || 'loading')";
        crate::wait_for(&format!("{user}: the test page to load"), || match browser
            .execute(check, json!([]))
        {
            Ok(Value::Null) => Some(()),
            Ok(Value::String(state)) if state == "loading" => None,
            other => panic!("{user}: the test page failed to load: {other:?}"),
        });
        // A page's clock starts with it; read it between two readings of the test's.
        let before = crate::clock_ms();
        let page = browser.run(user, "return performance.now();", json!([]));
        let after = crate::clock_ms();
        self.clock_offset = (before + after) / 2.0 - page.as_f64().expect("a time");
    }

    /// Opens the page and joins `server_url` as `user`, keeping history and undelivered
    /// messages in the browser (IndexedDB).
    pub fn join_keeping_history(page_url: &str, server_url: &str, user: &str) -> Self {
        let mut client = Self::open(page_url, user);
        client.join_again_keeping_history(server_url);
        client
    }

    /// Loads the page again, as a closed and reopened app: nothing of the old page's
    /// client is closed cleanly. Then joins with what the browser kept.
    pub fn reload_keeping_history(&mut self, server_url: &str) {
        self.load_page();
        self.join_again_keeping_history(server_url);
    }

    fn join_again_keeping_history(&mut self, server_url: &str) {
        let script = "const [url, user, done] = arguments; \
                      peerchat.connect(url, user, null, false, true) \
                      .then(() => done(null), e => done(String(e)));";
        let user = self.user.clone();
        let outcome = self
            .browser
            .run_async(&user, script, json!([server_url, user]));
        assert_eq!(
            outcome,
            Value::Null,
            "{user}: connect to {server_url} failed"
        );
        self.expect("connected", &|e| {
            e["event"] == "connected" && e["user"] == user.as_str()
        });
    }

    /// Opens the page and joins `server_url` (a ws:// URL) as `user`.
    pub fn join(page_url: &str, server_url: &str, user: &str) -> Self {
        Self::join_with(page_url, server_url, user, &[])
    }

    /// Joins from a browser started with extra Chromium `flags`.
    pub fn join_with(page_url: &str, server_url: &str, user: &str, flags: &[&str]) -> Self {
        let mut client = Self::open_with(page_url, user, flags);
        if let Err(error) = client.connect(server_url) {
            panic!("{user}: connect to {server_url} failed: {error}");
        }
        client.expect("connected", &|e| {
            e["event"] == "connected" && e["user"] == user
        });
        client
    }

    /// Starts sampling the page's JavaScript and WebAssembly (the DevTools CPU profiler,
    /// every 50 µs); [`BrowserClient::stop_profile`] reads the result.
    pub fn start_profile(&self) {
        self.devtools("Profiler.enable", json!({}));
        self.devtools("Profiler.setSamplingInterval", json!({"interval": 50}));
        self.devtools("Profiler.start", json!({}));
    }

    /// The functions with the most self time since `start_profile`, in ms, most first.
    /// The whole profile is saved as `<target>/test-output/<user>.cpuprofile`, which
    /// Chromium's DevTools (Performance panel) opens.
    pub fn stop_profile(&self) -> Vec<(String, f64)> {
        let profile = self.devtools("Profiler.stop", json!({}));
        let path = crate::app_page::output_dir().join(format!("{}.cpuprofile", self.user));
        if let Err(error) = std::fs::write(&path, profile["profile"].to_string()) {
            eprintln!("{}: could not save {}: {error}", self.user, path.display());
        }
        crate::benchmark::self_times(&profile["profile"])
    }

    fn devtools(&self, method: &str, params: Value) -> Value {
        self.browser
            .devtools(method, params)
            .unwrap_or_else(|e| panic!("{}: {method} failed: {e}", self.user))
    }

    /// `peerchat.connect`: the error's message when it rejects.
    pub fn connect(&mut self, server_url: &str) -> Result<(), String> {
        self.connect_with(server_url, None)
    }

    /// `peerchat.connect` through `turn` only (the `relay` ICE transport policy).
    pub fn connect_relayed(&mut self, server_url: &str, turn: &TurnServer) -> Result<(), String> {
        let servers = json!([{
            "urls": [turn.url],
            "username": crate::turn::USERNAME,
            "credential": crate::turn::CREDENTIAL,
        }]);
        self.connect_with(server_url, Some(servers.to_string()))
    }

    fn connect_with(&mut self, server_url: &str, relays: Option<String>) -> Result<(), String> {
        let script = "const [url, user, relays, done] = arguments; \
                      peerchat.connect(url, user, relays, relays !== null) \
                      .then(() => done(null), e => done(String(e)));";
        match self
            .browser
            .run_async(&self.user, script, json!([server_url, self.user, relays]))
        {
            Value::Null => Ok(()),
            error => Err(error.as_str().unwrap_or_default().to_owned()),
        }
    }

    /// `peerchat.connectToPeer`: returns the page's clock (`performance.now()`, ms) just
    /// before the call, for setup times, and the error message if it refused.
    pub fn connect_to_peer(&mut self, peer: &str) -> (f64, Option<String>) {
        let script = "const t = performance.now(); \
                      return [t, peerchat.connectToPeer(arguments[0]) ?? null];";
        let answer = self.browser.run(&self.user, script, json!([peer]));
        (
            answer[0].as_f64().expect("a time"),
            answer[1].as_str().map(str::to_owned),
        )
    }

    /// `peerchat.sendFile`: sends `peer` a file of `bytes` bytes; returns the ms until the
    /// peer acknowledged all of it.
    pub fn send_file(&mut self, peer: &str, bytes: usize) -> f64 {
        let script = "const [peer, bytes, done] = arguments; \
                      peerchat.sendFile(peer, bytes).then(done, e => done(String(e)));";
        let answer = self
            .browser
            .run_async(&self.user, script, json!([peer, bytes]));
        answer
            .as_f64()
            .unwrap_or_else(|| panic!("{}: sendFile to {peer} failed: {answer}", self.user))
    }

    /// `peerchat.sendKept`: sends and returns once the page has kept the message (the
    /// page may be closed from then on); returns its id.
    pub fn send_kept(&mut self, peer: &str, text: &str) -> u64 {
        let script = "const [peer, text, done] = arguments; \
                      peerchat.sendKept(peer, text).then(done, e => done(String(e)));";
        let answer = self
            .browser
            .run_async(&self.user, script, json!([peer, text]));
        answer
            .as_f64()
            .unwrap_or_else(|| panic!("{}: sendKept to {peer} failed: {answer}", self.user))
            as u64
    }

    /// Sends `text` with `peerchat.sendKept` and reloads the page in the very task in which
    /// it reports the message kept (no WebDriver round trip in between, so nothing the page
    /// started later can finish), then joins again with what the browser kept.
    pub fn send_kept_then_reload(&mut self, peer: &str, text: &str, server_url: &str) {
        let script = "const [peer, text] = arguments; window.peerchatReloading = true; \
                      peerchat.sendKept(peer, text).then(() => location.reload(), \
                      e => { window.peerchatSendError = String(e); }); return null;";
        self.browser.run(&self.user, script, json!([peer, text]));
        // The old page knows it is going; the new one does not. Scripts may fail while
        // the page is between the two: that is waiting too.
        let check = "return window.peerchatSendError ?? \
                     (window.peerchatReloading === true || window.peerchatReady !== true \
                      ? null : 'reloaded');";
        let user = self.user.clone();
        crate::wait_for(&format!("{user}: the page reloaded"), || {
            match self.browser.execute(check, json!([])) {
                Ok(Value::String(state)) if state == "reloaded" => Some(()),
                Ok(Value::String(error)) => panic!("{user}: sendKept failed: {error}"),
                _ => None,
            }
        });
        self.join_again_keeping_history(server_url);
    }

    /// Runs `script` in the page with `args` (as `arguments`); returns what it returns.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.browser.run(&self.user, script, args)
    }

    /// Runs an async `script` (it calls `arguments[arguments.length - 1]` with its result).
    pub fn run_async(&self, script: &str, args: Value) -> Value {
        self.browser.run_async(&self.user, script, args)
    }

    /// `peerchat.disconnect`: leaves the broker cleanly.
    pub fn disconnect(&mut self) {
        let script = "const done = arguments[0]; peerchat.disconnect().then(() => done(null));";
        self.browser.run_async(&self.user, script, json!([]));
    }

    /// Fires the window's `online` event, as the browser does when the device finds a
    /// network again.
    pub fn announce_online(&mut self) {
        let script = "window.dispatchEvent(new Event('online')); return null;";
        self.browser.run(&self.user, script, json!([]));
    }

    /// Every event seen so far, for failure messages and benchmarks.
    pub fn seen(&self) -> &[Value] {
        &self.log.seen
    }
}

impl ChatClient for BrowserClient {
    fn user(&self) -> &str {
        &self.user
    }

    fn connect_to(&mut self, peer: &str) {
        if let (_, Some(error)) = self.connect_to_peer(peer) {
            panic!("{}: connectToPeer({peer}) refused: {error}", self.user);
        }
    }

    fn send(&mut self, peer: &str, text: &str) {
        let script = "return peerchat.send(arguments[0], arguments[1]);";
        let sent = self.browser.run(&self.user, script, json!([peer, text]));
        assert_eq!(sent, true, "{}: send to {peer} refused", self.user);
    }

    fn expect(&mut self, what: &str, wanted: &dyn Fn(&Value) -> bool) -> Value {
        let Self {
            browser,
            log,
            clock_offset,
            ..
        } = self;
        log.expect(what, wanted, PATIENCE, |left| {
            take_stamped(browser, *clock_offset, left)
        })
    }
}

/// The page's new events, each stamped `at` on the test's clock.
fn take_stamped(browser: &Browser, offset: f64, left: Duration) -> Result<Vec<Value>, String> {
    let mut events = browser.take_events("peerchat", left)?;
    for event in &mut events {
        if let Some(t) = event["t"].as_f64() {
            event["at"] = Value::from(t + offset);
        }
    }
    Ok(events)
}

impl SteadyClient for BrowserClient {
    fn start_writing(&mut self, peer: &str) {
        // A timer inside the page, so no WebDriver call sits between two messages.
        let script = "const [peer, label, every] = arguments; \
                      const steady = window.steady = {at: [], refused: 0, thrown: []}; \
                      steady.timer = setInterval(() => { \
                        steady.at.push(performance.now()); \
                        const text = label + ' #' + steady.at.length; \
                        try { \
                          if (!peerchat.send(peer, text)) steady.refused += 1; \
                        } catch (e) { steady.thrown.push(text + ': ' + e); } \
                      }, every); \
                      return null;";
        let every = WRITE_EVERY.as_millis() as u64;
        self.browser
            .run(&self.user, script, json!([peer, self.user, every]));
    }

    fn stop_writing(&mut self) -> Written {
        let script = "clearInterval(window.steady.timer); \
                      return [window.steady.at, window.steady.refused, window.steady.thrown];";
        let written = self.browser.run(&self.user, script, json!([]));
        assert_eq!(
            written[2],
            json!([]),
            "{}: sending threw in the page",
            self.user
        );
        let at = (written[0].as_array().expect("times").iter())
            .map(|t| t.as_f64().expect("a time") + self.clock_offset)
            .collect();
        Written {
            at,
            refused: written[1].as_u64().expect("a count"),
        }
    }

    fn take_in(&mut self, wait: Duration) {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let events = take_stamped(&self.browser, self.clock_offset, left)
                .unwrap_or_else(|why| panic!("{}: {why}", self.user));
            self.log.keep(events);
            if left.is_zero() {
                return;
            }
        }
    }

    fn events(&self) -> &[Value] {
        &self.log.seen
    }
}

impl TimedClient for BrowserClient {
    fn connect_timed(&mut self, peer: &str) -> f64 {
        match self.connect_to_peer(peer) {
            (start, None) => start,
            (_, Some(error)) => panic!("{}: connectToPeer({peer}) refused: {error}", self.user),
        }
    }

    fn close_peer(&mut self, peer: &str) {
        let error = self.browser.run(
            &self.user,
            "return peerchat.closePeer(arguments[0]) ?? null;",
            json!([peer]),
        );
        assert_eq!(error, Value::Null, "{}: closing {peer} failed", self.user);
    }

    fn ping_loop(&mut self, peer: &str, n: usize) -> Vec<f64> {
        crate::benchmark::run_ping_loop(&self.browser, &self.user, "peerchat", peer, n)
    }

    fn set_echo(&mut self, on: bool) {
        self.browser
            .run(&self.user, "peerchat.setEcho(arguments[0]);", json!([on]));
    }
}
