//! The stand-in for the ORIGINAL JavaScript client (tests/original-client) in headless
//! Chromium, driven over WebDriver and checked like a `Cli` or a `BrowserClient`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::benchmark::TimedClient;
use crate::webdriver::Browser;
use crate::{ChatClient, EventLog, PATIENCE};

/// The stand-in's silence before it counts itself registered on a broker that answers no
/// `register` (its documented assumption): a few seconds, as the original's users waited.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(3);

/// The built stand-in: `<target>/original-client`, laid out by tests/run.sh (the page, its
/// script and mqtt.js's browser bundle). Pass it to `PeerchatServer::serving`.
pub fn original_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/original-client
    let dir = exe
        .ancestors()
        .nth(3)
        .expect("tests run from target/<profile>/deps")
        .join("original-client");
    assert!(
        ["index.html", "original-client.js", "mqtt.min.js"]
            .iter()
            .all(|file| dir.join(file).exists()),
        "the original-client stand-in is missing from {}: lay it out as tests/run.sh does \
         (npm ci in tests/original-client, then copy the page, its script and \
         node_modules/mqtt/dist/mqtt.min.js)",
        dir.display()
    );
    dir
}

/// The stand-in page in a browser of its own, holding one original client.
pub struct OriginalClient {
    pub user: String,
    browser: Browser,
    log: EventLog,
}

impl OriginalClient {
    /// Opens the stand-in at `page_url` in a new browser and waits until it is ready.
    pub fn open(page_url: &str, user: &str) -> Self {
        let browser = Browser::start();
        browser.navigate(page_url);
        let check = "return window.originalReady === true ? null \
                     : (window.originalError || 'loading')";
        crate::wait_for(
            &format!("{user}: the stand-in page to load"),
            || match browser.execute(check, json!([])) {
                Ok(Value::Null) => Some(()),
                Ok(Value::String(state)) if state == "loading" => None,
                other => panic!("{user}: the stand-in page failed to load: {other:?}"),
            },
        );
        Self {
            user: user.to_owned(),
            browser,
            log: EventLog::new(&format!("{user} (original)")),
        }
    }

    /// Opens the page and joins `server_url` (a ws:// URL) as `user`, which must succeed.
    pub fn join(page_url: &str, server_url: &str, user: &str) -> Self {
        let mut client = Self::open(page_url, user);
        assert!(
            client.connect(server_url),
            "{user}: the original client's connect to {server_url} resolved false; saw {:#?}",
            client.drain()
        );
        client
    }

    /// `original.connect`: what its promise resolved to (false: name taken or no broker).
    pub fn connect(&mut self, server_url: &str) -> bool {
        let script = "const [url, user, timeout, done] = arguments; \
                      original.connect(url, user, timeout).then(done, e => done(String(e)));";
        let timeout = REGISTER_TIMEOUT.as_millis() as u64;
        match self
            .browser
            .run_async(&self.user, script, json!([server_url, self.user, timeout]))
        {
            Value::Bool(ok) => ok,
            other => panic!("{}: original.connect failed: {other}", self.user),
        }
    }

    /// Every event seen so far, after reading what the page has queued: for reports.
    pub fn drain(&mut self) -> &[Value] {
        if let Ok(events) = self.browser.take_events("original", Duration::ZERO) {
            self.log.keep(events);
        }
        &self.log.seen
    }
}

impl ChatClient for OriginalClient {
    fn user(&self) -> &str {
        &self.user
    }

    fn connect_to(&mut self, peer: &str) {
        self.browser.run(
            &self.user,
            "original.connectToPeer(arguments[0]);",
            json!([peer]),
        );
    }

    fn send(&mut self, peer: &str, text: &str) {
        let script = "return original.send(arguments[0], arguments[1]);";
        let sent = self.browser.run(&self.user, script, json!([peer, text]));
        assert_eq!(sent, true, "{}: send to {peer} refused", self.user);
    }

    fn expect(&mut self, what: &str, wanted: &dyn Fn(&Value) -> bool) -> Value {
        let Self { browser, log, .. } = self;
        log.expect(what, wanted, PATIENCE, |left| {
            browser.take_events("original", left)
        })
    }
}

/// The stand-in's test hooks (`closePeer`, `setEcho`) do what the original's UI did by hand:
/// leave a chat, and answer a message.
impl TimedClient for OriginalClient {
    fn connect_timed(&mut self, peer: &str) -> f64 {
        let script = "const t = performance.now(); original.connectToPeer(arguments[0]); return t;";
        let start = self.browser.run(&self.user, script, json!([peer]));
        start.as_f64().expect("a time")
    }

    fn close_peer(&mut self, peer: &str) {
        self.browser.run(
            &self.user,
            "original.closePeer(arguments[0]);",
            json!([peer]),
        );
    }

    fn ping_loop(&mut self, peer: &str, n: usize) -> Vec<f64> {
        crate::benchmark::run_ping_loop(&self.browser, &self.user, "original", peer, n)
    }

    fn set_echo(&mut self, on: bool) {
        self.browser
            .run(&self.user, "original.setEcho(arguments[0]);", json!([on]));
    }
}
