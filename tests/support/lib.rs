//! Support for peerchat's end-to-end tests: real processes (peerchat-server, Mosquitto,
//! peerchat-cli, headless Chromium) driven through the CLI's JSON-lines contract.
//!
//! Every wait is generous and every process is killed on drop, so a failing test reports
//! what it saw instead of hanging. Browser tests run in a private network namespace
//! ([`netns`]); everything else stays on loopback.

pub mod app_page;
pub mod benchmark;
pub mod browser_client;
pub mod forger;
pub mod hosts;
pub mod mitm;
pub mod nats;
pub mod netns;
pub mod original_client;
pub mod original_server;
pub mod rabbitmq;
pub mod rooms;
pub mod steady;
pub mod turn;
pub mod webdriver;
pub mod wire;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Bound on any single wait. Nothing here measures speed; the machine may be busy.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Path of a binary built from this workspace (`cargo build --workspace` builds them).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (tests/run.sh does)",
        path.display()
    );
    path
}

/// Milliseconds since this test process first asked: one clock for every client's events
/// (each is stamped `at` on it when the test reads it in), so times from different
/// clients compare.
pub fn clock_ms() -> f64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Polls `ready` until it gives a value; panics after `PATIENCE` naming `what`.
pub fn wait_for<T>(what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no {what} within {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped.
pub struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Server URLs for one broker: one MQTT-over-TCP, one MQTT-over-WebSocket.
#[derive(Debug, Clone)]
pub struct Broker {
    pub tcp_url: String,
    pub ws_url: String,
}

/// A running `peerchat-server` on free loopback ports.
pub struct PeerchatServer {
    pub broker: Broker,
    /// Its HTTP root, `http://127.0.0.1:PORT/`: the web root's index.html when serving one.
    pub http_url: String,
    /// `None` while stopped (see [`PeerchatServer::stop`]).
    process: Option<Process>,
    web_root: Option<PathBuf>,
    addrs: (String, String),
    /// Extra flags it was started with, for [`PeerchatServer::resume`].
    flags: Vec<String>,
}

impl PeerchatServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a server that also serves the files in `web_root` on its HTTP port.
    pub fn serving(web_root: &Path) -> Self {
        Self::start_with(Some(web_root))
    }

    /// Kills the server, as a crash or a restart would: clients see their connection drop.
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Freezes the server (SIGSTOP): its connections stay open, it answers nothing.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let process = self.process.as_ref().expect("the server runs");
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{name} {}", process.0.id())])
            .status()
            .expect("sh runs");
        assert!(status.success(), "peerchat-server: SIG{name} failed");
    }

    /// Starts the server again on the same ports.
    pub fn resume(&mut self) {
        assert!(self.process.is_none(), "the server is running already");
        let (mqtt, http) = self.addrs.clone();
        let flags: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        let (process, _) = Self::spawn(self.web_root.as_deref(), &mqtt, &http, &flags);
        self.process = Some(process);
    }

    /// Starts a server inside `host` ([`hosts::Host`]), listening on every address there;
    /// clients reach it at `address`, one of the host's.
    pub fn start_in(host: &hosts::Host, address: &str, web_root: Option<&Path>) -> Self {
        let mut command = host.command(workspace_bin("peerchat-server"));
        command.args(["--mqtt-addr", "0.0.0.0:1883", "--http-addr", "0.0.0.0:8080"]);
        let (process, _) = Self::launch(command, web_root);
        Self {
            broker: Broker {
                tcp_url: format!("mqtt://{address}:1883"),
                ws_url: format!("ws://{address}:8080/mqtt"),
            },
            http_url: format!("http://{address}:8080/"),
            process: Some(process),
            web_root: web_root.map(Path::to_path_buf),
            addrs: ("0.0.0.0:1883".into(), "0.0.0.0:8080".into()),
            flags: Vec::new(),
        }
    }

    /// Starts a server on `address` (one of this namespace's, not loopback) serving
    /// `web_root` over HTTPS and MQTT over WSS and TLS, with `cert_dir`'s `cert.pem` and
    /// `key.pem` (as `platforms/web/serve.sh --tls` runs it).
    pub fn serving_over_tls(web_root: &Path, address: &str, cert_dir: &Path) -> Self {
        let (cert, key) = (cert_dir.join("cert.pem"), cert_dir.join("key.pem"));
        let flags = [
            "--tls-cert",
            cert.to_str().expect("a UTF-8 path"),
            "--tls-key",
            key.to_str().expect("a UTF-8 path"),
        ];
        let any_port = format!("{address}:0");
        let (process, (mqtt, http)) = Self::spawn(Some(web_root), &any_port, &any_port, &flags);
        Self {
            broker: Broker {
                tcp_url: format!("mqtts://{mqtt}"),
                ws_url: format!("wss://{http}/mqtt"),
            },
            http_url: format!("https://{http}/"),
            process: Some(process),
            web_root: Some(web_root.to_path_buf()),
            addrs: (mqtt, http),
            flags: flags.iter().map(|f| f.to_string()).collect(),
        }
    }

    /// Starts a server with extra flags (`--cluster …`, say).
    pub fn start_with_flags(flags: &[&str]) -> Self {
        let mut server = Self::start_with_all(None, flags);
        server.flags = flags.iter().map(|f| f.to_string()).collect();
        server
    }

    fn start_with(web_root: Option<&Path>) -> Self {
        Self::start_with_all(web_root, &[])
    }

    fn start_with_all(web_root: Option<&Path>, flags: &[&str]) -> Self {
        let (process, (mqtt, http)) = Self::spawn(web_root, "127.0.0.1:0", "127.0.0.1:0", flags);
        Self {
            broker: Broker {
                tcp_url: format!("mqtt://{mqtt}"),
                ws_url: format!("ws://{http}/mqtt"),
            },
            http_url: format!("http://{http}/"),
            process: Some(process),
            web_root: web_root.map(Path::to_path_buf),
            addrs: (mqtt, http),
            flags: Vec::new(),
        }
    }

    /// Starts `peerchat-server` on the given addresses; returns it and the addresses it
    /// listens on (the ports it picked for `:0`).
    fn spawn(
        web_root: Option<&Path>,
        mqtt_addr: &str,
        http_addr: &str,
        flags: &[&str],
    ) -> (Process, (String, String)) {
        let mut command = Command::new(workspace_bin("peerchat-server"));
        command.args(["--mqtt-addr", mqtt_addr, "--http-addr", http_addr]);
        command.args(flags);
        Self::launch(command, web_root)
    }

    fn launch(mut command: Command, web_root: Option<&Path>) -> (Process, (String, String)) {
        // PEERCHAT_SERVER_LOG turns the server's logs up when a test needs looking into.
        let log = std::env::var("PEERCHAT_SERVER_LOG").unwrap_or_else(|_| "warn".to_owned());
        command.args(["--log", &log]);
        if let Some(dir) = web_root {
            command.arg("--web-root").arg(dir);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("peerchat-server starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let process = Process(child);
        let mut lines = BufReader::new(stdout).lines();
        let (mut mqtt, mut http) = (None, None);
        while mqtt.is_none() || http.is_none() {
            let line = lines
                .next()
                .expect("peerchat-server announces its ports before exiting")
                .expect("stdout is readable");
            if let Some(addr) = line.strip_prefix("peerchat-server: mqtt listening on ") {
                mqtt = Some(addr.to_owned());
            }
            if let Some(addr) = line.strip_prefix("peerchat-server: http listening on ") {
                http = Some(addr.to_owned());
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        (process, (mqtt.unwrap(), http.unwrap()))
    }
}

/// A running Mosquitto with a TCP and a WebSocket listener on loopback.
pub struct Mosquitto {
    pub broker: Broker,
    _process: Process,
    _dir: TempDir,
}

impl Mosquitto {
    pub fn start() -> Self {
        let dir = TempDir::new("mosquitto");
        let (tcp, ws) = (free_port(), free_port());
        let config = format!(
            "per_listener_settings false\nallow_anonymous true\n\
             listener {tcp} 127.0.0.1\nlistener {ws} 127.0.0.1\nprotocol websockets\n"
        );
        let config_path = dir.0.join("mosquitto.conf");
        std::fs::write(&config_path, config).expect("config written");
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("mosquitto is installed (tests/run.sh installs it)");
        let process = Process(
            Command::new(binary)
                .arg("-c")
                .arg(&config_path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("mosquitto starts"),
        );
        wait_until_listening(tcp);
        wait_until_listening(ws);
        Self {
            broker: Broker {
                tcp_url: format!("mqtt://127.0.0.1:{tcp}"),
                ws_url: format!("ws://127.0.0.1:{ws}/mqtt"),
            },
            _process: process,
            _dir: dir,
        }
    }
}

/// Waits until something accepts TCP connections on a loopback port.
pub fn wait_until_listening(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < PATIENCE, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "peerchat-{label}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&path).expect("temp dir created");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks that each of `texts` was shown once among `seen` events of `who`: messages that
/// arrive again after a recovery or restart must not show twice.
pub fn assert_shown_once(who: &str, seen: &[Value], texts: &[&str]) {
    for text in texts {
        let times = (seen.iter())
            .filter(|e| e["event"] == "message" && e["text"] == *text)
            .count();
        assert_eq!(times, 1, "{who} saw `{text}` {times} times");
    }
}

/// `<target>/<name>`, next to the test binaries' profile directories.
pub fn target_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> → target/<name>
    exe.ancestors()
        .nth(3)
        .expect("tests run from target/<profile>/deps")
        .join(name)
}

/// Where one test's CLIs keep their data (identity keys, pinned keys):
/// `<target>/test-output/cli-data/<pid>/<test>`, so tests running side by side do not share
/// pins, while a client a test starts again finds its own.
pub fn cli_data_dir() -> PathBuf {
    let test = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", "-");
    target_path("test-output/cli-data")
        .join(std::process::id().to_string())
        .join(test)
}

/// Where a `Cli` gathers ICE candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Loopback only, mDNS off: no packet leaves the machine. Native peers only (browsers
    /// never use loopback).
    Loopback,
    /// Every interface with mDNS on, as users run it: only inside a private network
    /// namespace ([`netns`]), where browsers offer `<uuid>.local` candidates.
    PrivateNamespace,
    /// Inside a namespace of a test's own network ([`hosts::Host`]), every interface,
    /// mDNS off (native peers resolve no names there).
    Host(&'static str),
}

/// A `peerchat-cli --json` process: commands in, JSON events out.
pub struct Cli {
    pub user: String,
    stdin: Option<ChildStdin>,
    /// Writes a numbered message at a steady pace while set (see [`steady`]).
    writer: Option<steady::CliWriter>,
    events: Receiver<Value>,
    log: EventLog,
    process: Process,
}

impl Cli {
    /// Starts a client on loopback only, with mDNS off, so no traffic leaves the machine.
    pub fn start(server_url: &str, user: &str) -> Self {
        Self::start_on(Network::Loopback, server_url, user)
    }

    pub fn start_on(network: Network, server_url: &str, user: &str) -> Self {
        Self::start_with(network, server_url, user, &[])
    }

    /// Starts a client with extra command-line flags (`--echo`, say).
    pub fn start_with(network: Network, server_url: &str, user: &str, flags: &[&str]) -> Self {
        let mut command = match network {
            Network::Host(name) => {
                let mut command = Command::new("ip");
                command
                    .args(["netns", "exec", name])
                    .arg(workspace_bin("peerchat-cli"));
                command
            }
            _ => Command::new(workspace_bin("peerchat-cli")),
        };
        command.args(["--server", server_url, "--user", user, "--json"]);
        command.args(flags);
        match network {
            Network::Loopback => command.args(["--bind", "127.0.0.1:0", "--no-mdns"]),
            Network::PrivateNamespace => {
                assert!(
                    netns::is_inside(),
                    "Network::PrivateNamespace outside a private namespace would reach the real network"
                );
                command.args(["--bind", "0.0.0.0:0"])
            }
            Network::Host(_) => command.args(["--bind", "0.0.0.0:0", "--no-mdns"]),
        };
        let mut child = command
            // Identity keys live with the test run, not in the user's home; one directory
            // per test process, so a client started again keeps its key.
            .env("XDG_DATA_HOME", cli_data_dir())
            // PEERCHAT_CLI_LOG turns a client's logs on when a test needs looking into.
            .env(
                "RUST_LOG",
                std::env::var("PEERCHAT_CLI_LOG").unwrap_or_else(|_| "error".to_owned()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("peerchat-cli starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, events) = mpsc::channel();
        let label = user.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(mut value) => {
                        value["at"] = Value::from(clock_ms());
                        if tx.send(value).is_err() {
                            break;
                        }
                    }
                    Err(_) => panic!("{label}: stdout line is not JSON: {line}"),
                }
            }
        });
        Self {
            user: user.to_owned(),
            stdin,
            writer: None,
            events,
            log: EventLog::new(user),
            process: Process(child),
        }
    }

    /// Starts a client and waits until it is registered.
    pub fn join(server_url: &str, user: &str) -> Self {
        Self::join_on(Network::Loopback, server_url, user)
    }

    pub fn join_on(network: Network, server_url: &str, user: &str) -> Self {
        Self::join_with(network, server_url, user, &[])
    }

    pub fn join_with(network: Network, server_url: &str, user: &str, flags: &[&str]) -> Self {
        let mut cli = Self::start_with(network, server_url, user, flags);
        cli.expect("connected", |e| {
            e["event"] == "connected" && e["user"] == user
        });
        cli
    }

    /// Freezes the process (SIGSTOP), as a suspended laptop or a phone out of coverage:
    /// nothing it holds is closed, it just stops answering.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a frozen process run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// Kills the process at once (SIGKILL), as a crash or a phone reclaiming the app would:
    /// no goodbye to peers or broker, nothing flushed.
    pub fn crash(mut self) {
        let _ = self.process.0.kill();
        let _ = self.process.0.wait();
    }

    fn signal(&self, name: &str) {
        // The shell's builtin `kill`: Debian's procps (/usr/bin/kill) may be absent.
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{name} {}", self.process.0.id())])
            .status()
            .expect("sh runs");
        assert!(status.success(), "{}: SIG{name} failed", self.user);
    }

    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("the client reads its stdin");
        stdin.flush().expect("stdin flushes");
    }

    /// Takes the earliest event matching `wanted`, waiting for it if need be. Events that
    /// do not match stay available to later expectations: peers connect in any order.
    pub fn expect(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let events = &self.events;
        self.log.expect(what, &wanted, PATIENCE, |left| {
            match events.recv_timeout(left) {
                Ok(event) => Ok(vec![event]),
                Err(RecvTimeoutError::Timeout) => Ok(Vec::new()),
                Err(RecvTimeoutError::Disconnected) => Err("exited".to_owned()),
            }
        })
    }

    pub fn expect_peer_connected(&mut self, peer: &str) {
        ChatClient::expect_peer_connected(self, peer);
    }

    /// Takes the next message from `from` and checks it is `text`: messages from one
    /// sender must arrive in the order sent.
    pub fn expect_message(&mut self, from: &str, text: &str) {
        ChatClient::expect_message(self, from, text);
    }

    /// Sends and checks the CLI accepted it.
    /// Sends with `/send`, checks it was accepted and returns the message's id.
    pub fn send(&mut self, peer: &str, text: &str) -> u64 {
        self.command(&format!("/send {peer} {text}"));
        let sent = self.expect("sent", |e| e["event"] == "sent" && e["peer"] == peer);
        assert_eq!(
            sent["ok"], true,
            "{}: send to {peer} refused: {sent}",
            self.user
        );
        sent["id"].as_u64().expect("an accepted message has an id")
    }

    /// Waits until `peer` acknowledges message `id`.
    pub fn expect_delivered(&mut self, peer: &str, id: u64) {
        self.expect(&format!("delivered #{id} to {peer}"), |e| {
            e["event"] == "delivered" && e["peer"] == peer && e["id"] == id
        });
    }

    /// Closes stdin and waits for the process to exit.
    pub fn finish(mut self) -> ExitStatus {
        self.stdin.take();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.process.0.try_wait().expect("wait works") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.user);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// All events seen so far.
    pub fn seen(&self) -> &[Value] {
        &self.log.seen
    }

    /// Takes in every event that arrives within `wait`, and returns all seen: for checking
    /// that something did not happen.
    pub fn gather(&mut self, wait: Duration) -> &[Value] {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(event) => self.log.keep(vec![event]),
                Err(_) => break,
            }
        }
        &self.log.seen
    }
}

impl ChatClient for Cli {
    fn user(&self) -> &str {
        &self.user
    }

    fn connect_to(&mut self, peer: &str) {
        self.command(&format!("/connect {peer}"));
    }

    fn send(&mut self, peer: &str, text: &str) {
        Cli::send(self, peer, text);
    }

    fn expect(&mut self, what: &str, wanted: &dyn Fn(&Value) -> bool) -> Value {
        Cli::expect(self, what, wanted)
    }
}

/// `caller` opens a chat with `callee`; both see it open and messages flow both ways, in
/// order.
pub fn chat_both_ways(caller: &mut dyn ChatClient, callee: &mut dyn ChatClient) {
    let (a, b) = (caller.user().to_owned(), callee.user().to_owned());
    caller.connect_to(&b);
    caller.expect_peer_connected(&b);
    callee.expect_peer_connected(&a);
    for i in 0..10 {
        caller.send(&b, &format!("{a}→{b} #{i} ünïcødé 🙂"));
        callee.send(&a, &format!("{b}→{a} #{i}"));
    }
    for i in 0..10 {
        callee.expect_message(&a, &format!("{a}→{b} #{i} ünïcødé 🙂"));
        caller.expect_message(&b, &format!("{b}→{a} #{i}"));
    }
}

/// What tests do with any peerchat client, native (`Cli`) or in a browser
/// (`browser_client::BrowserClient`), so one scenario runs across both.
pub trait ChatClient {
    fn user(&self) -> &str;

    /// Starts a chat with `peer`; progress arrives as events.
    fn connect_to(&mut self, peer: &str);

    /// Sends `text` to `peer` and checks the client accepted it.
    fn send(&mut self, peer: &str, text: &str);

    /// Takes the earliest event matching `wanted`, waiting for it if need be. Events that
    /// do not match stay available to later expectations: peers connect in any order.
    fn expect(&mut self, what: &str, wanted: &dyn Fn(&Value) -> bool) -> Value;

    fn expect_peer_connected(&mut self, peer: &str) {
        self.expect(&format!("peer_connected {peer}"), &|e| {
            e["event"] == "peer_connected" && e["peer"] == peer
        });
    }

    fn expect_peer_disconnected(&mut self, peer: &str) -> Value {
        self.expect(&format!("peer_disconnected {peer}"), &|e| {
            e["event"] == "peer_disconnected" && e["peer"] == peer
        })
    }

    /// Takes the next message from `from` and checks it is `text`: messages from one
    /// sender must arrive in the order sent.
    fn expect_message(&mut self, from: &str, text: &str) -> Value {
        let got = self.expect(&format!("message {text:?} from {from}"), &|e| {
            e["event"] == "message" && e["from"] == from
        });
        assert_eq!(
            got["text"],
            text,
            "{}: messages from {from} out of order",
            self.user()
        );
        got
    }
}

/// One client's events as expectations consume them.
pub struct EventLog {
    who: String,
    /// Every event read so far, for failure messages.
    pub seen: Vec<Value>,
    /// Events read but not yet matched by an expectation, in arrival order.
    unmatched: Vec<Value>,
}

impl EventLog {
    pub fn new(who: &str) -> Self {
        Self {
            who: who.to_owned(),
            seen: Vec::new(),
            unmatched: Vec::new(),
        }
    }

    /// Adds events read outside an expectation; later expectations can still take them.
    pub fn keep(&mut self, events: Vec<Value>) {
        self.seen.extend(events.iter().cloned());
        self.unmatched.extend(events);
    }

    /// Takes the earliest event matching `wanted`, reading more with `more` (which waits
    /// at most the time it is given, and fails when the client is gone) for up to `patience`.
    pub fn expect(
        &mut self,
        what: &str,
        wanted: &dyn Fn(&Value) -> bool,
        patience: Duration,
        mut more: impl FnMut(Duration) -> Result<Vec<Value>, String>,
    ) -> Value {
        if let Some(i) = self.unmatched.iter().position(wanted) {
            return self.unmatched.remove(i);
        }
        let deadline = Instant::now() + patience;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{}: no `{what}` within {patience:?}; saw {:#?}",
                    self.who, self.seen
                );
            }
            let events = more(left).unwrap_or_else(|why| {
                panic!("{}: {why} before `{what}`; saw {:#?}", self.who, self.seen)
            });
            let mut found = None;
            for event in events {
                self.seen.push(event.clone());
                if found.is_none() && wanted(&event) {
                    found = Some(event);
                } else {
                    self.unmatched.push(event);
                }
            }
            if let Some(event) = found {
                return event;
            }
        }
    }
}
