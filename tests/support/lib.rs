//! Support for peerchat's end-to-end tests: real processes (peerchat-server, Mosquitto,
//! peerchat-cli) on loopback, driven through the CLI's JSON-lines contract.
//!
//! Every wait is generous and every process is killed on drop, so a failing test reports
//! what it saw instead of hanging.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
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

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
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
    _process: Process,
}

impl PeerchatServer {
    pub fn start() -> Self {
        let mut child = Command::new(workspace_bin("peerchat-server"))
            .args(["--mqtt-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(["--log", "warn,rumqttd=off"])
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
        Self {
            broker: Broker {
                tcp_url: format!("mqtt://{}", mqtt.unwrap()),
                ws_url: format!("ws://{}/mqtt", http.unwrap()),
            },
            _process: process,
        }
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

fn wait_until_listening(port: u16) {
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

/// A `peerchat-cli --json` process: commands in, JSON events out.
pub struct Cli {
    pub user: String,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
    /// Every event read so far, for failure messages.
    seen: Vec<Value>,
    /// Events read but not yet matched by an expectation, in arrival order.
    unmatched: Vec<Value>,
    process: Process,
}

impl Cli {
    /// Starts a client on loopback only, with mDNS off, so no traffic leaves the machine.
    pub fn start(server_url: &str, user: &str) -> Self {
        let mut child = Command::new(workspace_bin("peerchat-cli"))
            .args(["--server", server_url, "--user", user, "--json"])
            .args(["--bind", "127.0.0.1:0", "--no-mdns"])
            .env("RUST_LOG", "error")
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
                    Ok(value) => {
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
            events,
            seen: Vec::new(),
            unmatched: Vec::new(),
            process: Process(child),
        }
    }

    /// Starts a client and waits until it is registered.
    pub fn join(server_url: &str, user: &str) -> Self {
        let mut cli = Self::start(server_url, user);
        cli.expect("connected", |e| {
            e["event"] == "connected" && e["user"] == user
        });
        cli
    }

    pub fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("the client reads its stdin");
        stdin.flush().expect("stdin flushes");
    }

    /// Takes the earliest event matching `wanted`, waiting for it if need be. Events that
    /// do not match stay available to later expectations: peers connect in any order.
    pub fn expect(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.unmatched.iter().position(&wanted) {
            return self.unmatched.remove(i);
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    if wanted(&event) {
                        return event;
                    }
                    self.unmatched.push(event);
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{}: no `{what}` within {PATIENCE:?}; saw {:#?}",
                    self.user, self.seen
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{}: exited before `{what}`; saw {:#?}",
                    self.user, self.seen
                ),
            }
        }
    }

    pub fn expect_peer_connected(&mut self, peer: &str) {
        self.expect(&format!("peer_connected {peer}"), |e| {
            e["event"] == "peer_connected" && e["peer"] == peer
        });
    }

    /// Takes the next message from `from` and checks it is `text`: messages from one
    /// sender must arrive in the order sent.
    pub fn expect_message(&mut self, from: &str, text: &str) {
        let got = self.expect(&format!("message {text:?} from {from}"), |e| {
            e["event"] == "message" && e["from"] == from
        });
        assert_eq!(
            got["text"], text,
            "{}: messages from {from} out of order",
            self.user
        );
    }

    /// Sends and checks the CLI accepted it.
    pub fn send(&mut self, peer: &str, text: &str) {
        self.command(&format!("/send {peer} {text}"));
        let sent = self.expect("sent", |e| e["event"] == "sent" && e["peer"] == peer);
        assert_eq!(
            sent["ok"], true,
            "{}: send to {peer} refused: {sent}",
            self.user
        );
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
        &self.seen
    }
}
