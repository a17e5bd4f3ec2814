//! A TURN server for relay tests: Debian's coturn (`turnserver`) on loopback, with one
//! long-term credential, relaying only between loopback addresses.

use std::process::{Command, Stdio};

use crate::{Process, TempDir, free_port};

const TURNSERVER: &str = "/usr/bin/turnserver";

/// The user and password every relay test uses.
pub const USERNAME: &str = "peerchat";
pub const CREDENTIAL: &str = "relay-secret";

/// A running coturn, killed on drop.
pub struct TurnServer {
    /// `turn:127.0.0.1:PORT`, for `--ice-server`.
    pub url: String,
    _process: Process,
    _dir: TempDir,
}

impl TurnServer {
    pub fn start() -> Self {
        assert!(
            std::path::Path::new(TURNSERVER).exists(),
            "{TURNSERVER} is missing: install Debian's `coturn` (tests/run.sh does)"
        );
        let dir = TempDir::new("coturn");
        let port = free_port();
        // Relayed addresses come from a small range next to a free port.
        let relay_from = free_port().clamp(10_000, 60_000);
        let process = Process(
            Command::new(TURNSERVER)
                .arg("-n") // no configuration file: everything is here
                .args(["--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1"])
                .arg(format!("--listening-port={port}"))
                .arg(format!("--min-port={relay_from}"))
                .arg(format!("--max-port={}", relay_from + 200))
                .args(["--lt-cred-mech", "--realm=peerchat.test"])
                .arg(format!("--user={USERNAME}:{CREDENTIAL}"))
                // Both peers are on loopback, which coturn refuses to relay to by default.
                .args([
                    "--allow-loopback-peers",
                    "--no-tls",
                    "--no-dtls",
                    "--no-cli",
                ])
                .arg(format!(
                    "--pidfile={}",
                    dir.0.join("turnserver.pid").display()
                ))
                .arg(format!("--userdb={}", dir.0.join("turndb").display()))
                .args(["--log-file=stdout", "--simple-log"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("turnserver starts"),
        );
        crate::wait_for("coturn to listen", || listening(port).then_some(()));
        Self {
            url: format!("turn:127.0.0.1:{port}"),
            _process: process,
            _dir: dir,
        }
    }

    /// The CLI flags that make a client use only this server's relays.
    pub fn relay_only_flags(&self) -> Vec<String> {
        [
            "--ice-server",
            &self.url,
            "--ice-username",
            USERNAME,
            "--ice-credential",
            CREDENTIAL,
            "--relay-only",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// Whether coturn listens on `port` (its TCP listener opens with the UDP one).
fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}
