//! A minimal W3C WebDriver client for headless Chromium: each `Browser` is its own
//! chromedriver and Chromium with a fresh profile, so browsers in one test share nothing.
//!
//! HTTP/1.1 over a std `TcpStream`, one connection per command, so there is no pooling or
//! keep-alive state to get wrong; every read is bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{PATIENCE, Process, TempDir, free_port};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Bound on one WebDriver command. Longer than the page's script timeout (`PATIENCE`), so
/// a slow script is reported by the driver with its reason rather than cut off here.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One headless Chromium behind its own chromedriver, with one WebDriver session.
pub struct Browser {
    port: u16,
    session: String,
    chromedriver: Process,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with default WebRTC settings (users
    /// pass no flags either), minus everything that would phone home.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts one with extra Chromium flags (for a test's own network, say).
    pub fn start_with(flags: &[&str]) -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: install Debian's `chromium chromium-driver` (tests/run.sh does)"
            );
        }
        let port = free_port();
        let profile = TempDir::new("chromium");
        let chromedriver = Process(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so Chromium goes down with it on drop.
                .process_group(0)
                .spawn()
                .expect("chromedriver starts"),
        );
        let started = Instant::now();
        while !matches!(request(port, "GET", "/status", None), Ok(status) if status["ready"] == true)
        {
            assert!(
                started.elapsed() < PATIENCE,
                "chromedriver on port {port} never became ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.0.display())])
        .chain(flags.iter().map(|flag| flag.to_string()))
        .collect::<Vec<_>>();
        let ms = PATIENCE.as_millis() as u64;
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "timeouts": {"script": ms, "pageLoad": ms, "implicit": 0},
        }}});
        let session = request(port, "POST", "/session", Some(&capabilities))
            .unwrap_or_else(|e| panic!("Chromium did not start: {e}"));
        let session = session["sessionId"]
            .as_str()
            .expect("a new session has an id")
            .to_owned();
        Self {
            port,
            session,
            chromedriver,
            _profile: profile,
        }
    }

    /// Loads `url` and waits for its load event.
    pub fn navigate(&self, url: &str) {
        self.command("POST", "url", json!({ "url": url }))
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// Runs `script` as a function body with `args` as `arguments`; returns its result.
    pub fn execute(&self, script: &str, args: Value) -> Result<Value, String> {
        self.command(
            "POST",
            "execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Runs `script` with a callback as its last argument; returns what it passes to it.
    pub fn execute_async(&self, script: &str, args: Value) -> Result<Value, String> {
        self.command(
            "POST",
            "execute/async",
            json!({"script": script, "args": args}),
        )
    }

    /// The first element matching the CSS `selector`, as a WebDriver element id.
    pub fn find(&self, selector: &str) -> Result<String, String> {
        let found = self.command(
            "POST",
            "element",
            json!({"using": "css selector", "value": selector}),
        )?;
        found[ELEMENT_KEY]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no element id in {found}"))
    }

    /// Types `text` into the element as a user would, key by key (`\u{E007}` is Enter).
    pub fn type_into(&self, selector: &str, text: &str) -> Result<(), String> {
        let element = self.find(selector)?;
        self.command(
            "POST",
            &format!("element/{element}/value"),
            json!({ "text": text }),
        )
        .map(drop)
    }

    /// Clicks the element.
    pub fn click(&self, selector: &str) -> Result<(), String> {
        let element = self.find(selector)?;
        self.command("POST", &format!("element/{element}/click"), json!({}))
            .map(drop)
    }

    /// Resizes the browser window (CSS pixels), as a phone-sized screen would be.
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<(), String> {
        self.command(
            "POST",
            "window/rect",
            json!({"width": width, "height": height}),
        )
        .map(drop)
    }

    /// A PNG of the page as shown.
    pub fn screenshot(&self) -> Result<Vec<u8>, String> {
        let path = format!("/session/{}/screenshot", self.session);
        let encoded = request(self.port, "GET", &path, None)?;
        let encoded = encoded.as_str().ok_or("the screenshot is not a string")?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("the screenshot is not base64: {e}"))
    }

    /// Sends a DevTools protocol command to the page (chromedriver's `goog/cdp/execute`),
    /// for what WebDriver has no command for, such as the CPU profiler.
    pub fn devtools(&self, method: &str, params: Value) -> Result<Value, String> {
        self.command(
            "POST",
            "goog/cdp/execute",
            json!({"cmd": method, "params": params}),
        )
    }

    fn command(&self, method: &str, what: &str, body: Value) -> Result<Value, String> {
        let path = format!("/session/{}/{what}", self.session);
        request(self.port, method, &path, Some(&body))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Quits Chromium cleanly; then the process group goes, whatever is left of it.
        let _ = request(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        // The shell's builtin `kill`: Debian's procps (/usr/bin/kill) may be absent.
        let group = format!("kill -KILL -- -{}", self.chromedriver.0.id());
        let _ = Command::new("sh")
            .args(["-c", &group])
            .stderr(Stdio::null())
            .status();
    }
}

/// The key under which WebDriver names an element (W3C WebDriver §12.1).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One WebDriver command: the `value` of a 200 answer, or the driver's error message.
fn request(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(COMMAND_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(COMMAND_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let (status, json) = read_response(&mut stream).map_err(|e| format!("{method} {path}: {e}"))?;
    let value: Value = serde_json::from_slice(&json)
        .map_err(|e| format!("{method} {path}: answer is not JSON: {e}"))?;
    if status == 200 {
        Ok(value["value"].clone())
    } else {
        let error = &value["value"];
        Err(format!(
            "{method} {path}: HTTP {status}: {}: {}",
            error["error"].as_str().unwrap_or("?"),
            error["message"].as_str().unwrap_or("?")
        ))
    }
}

/// Reads one HTTP/1.1 response: status and body. chromedriver keeps connections open
/// whatever the request says and writes `Content-Length:N` without a space, so the body is
/// read by its length, and to the end only when there is none.
fn read_response(stream: &mut impl Read) -> Result<(u16, Vec<u8>), String> {
    let mut data = Vec::new();
    let mut buf = [0; 8192];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) => return Err("connection closed before the headers ended".into()),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("no answer: {e}")),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok());
    let mut body = data.split_off(head_end);
    match length {
        Some(length) => {
            while body.len() < length {
                match stream.read(&mut buf) {
                    Ok(0) => return Err("connection closed inside the body".into()),
                    Ok(n) => body.extend_from_slice(&buf[..n]),
                    Err(e) => return Err(format!("body unfinished: {e}")),
                }
            }
            body.truncate(length);
        }
        None => {
            stream
                .read_to_end(&mut body)
                .map_err(|e| format!("body unfinished: {e}"))?;
        }
    }
    Ok((status, body))
}

/// How long to wait between polls of an idle page's event queue.
const POLL: Duration = Duration::from_millis(10);

impl Browser {
    /// Runs `script`; a page that stops answering fails the test, naming `who`.
    pub fn run(&self, who: &str, script: &str, args: Value) -> Value {
        self.execute(script, args)
            .unwrap_or_else(|e| panic!("{who}: script failed: {e}"))
    }

    /// Runs an async `script` (it calls `arguments[arguments.length - 1]` when done).
    pub fn run_async(&self, who: &str, script: &str, args: Value) -> Value {
        self.execute_async(script, args)
            .unwrap_or_else(|e| panic!("{who}: script failed: {e}"))
    }

    /// The events a test page queued in `<global>.takeEvents()`; waits up to a short poll
    /// interval (at most `left`) when there are none yet.
    pub fn take_events(&self, global: &str, left: Duration) -> Result<Vec<Value>, String> {
        let text = self
            .execute(
                &format!("return {global}.takeEvents();"),
                Value::Array(Vec::new()),
            )
            .map_err(|e| format!("the page stopped answering: {e}"))?;
        let events: Vec<Value> = serde_json::from_str(text.as_str().unwrap_or("[]"))
            .map_err(|e| format!("takeEvents returned bad JSON: {e}"))?;
        if events.is_empty() {
            std::thread::sleep(left.min(POLL));
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::read_response;

    #[test]
    fn bodies_are_read_by_length_or_to_the_end() {
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length:2\r\n\r\n{}trailing";
        assert_eq!(
            read_response(&mut &sized[..]).unwrap(),
            (200, b"{}".to_vec())
        );
        let unsized_ = b"HTTP/1.1 404 Not Found\r\nContent-Type: x\r\n\r\n{\"a\":1}";
        assert_eq!(
            read_response(&mut &unsized_[..]).unwrap(),
            (404, b"{\"a\":1}".to_vec())
        );
    }
}
