//! The MQTT brokers a benchmark starts for itself on loopback, as child processes, so it can
//! read their memory: peerchat-server (with its rules, or with its per-message checks off to
//! measure what they cost), and for comparison aedes (the original server's broker),
//! Mosquitto and a single NATS node (both from Debian).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, bail};
use clap::ValueEnum;
use tokio::process::{Child, Command};

use crate::process::{announced_addr, resident_bytes, sibling_binary};

/// Which broker to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BrokerKind {
    /// peerchat-server (the workspace binary next to peerchat-bench), as users run it.
    Peerchat,
    /// peerchat-server with `--unchecked-senders`: no sender check and no rate per message,
    /// to measure what those cost.
    PeerchatUnchecked,
    /// aedes on Node.js (apps/bench/aedes; `npm ci --prefix apps/bench/aedes` first).
    Aedes,
    /// Mosquitto (Debian's `mosquitto`).
    Mosquitto,
    /// One NATS node with its MQTT listener (Debian's `nats-server`; MQTT needs JetStream).
    Nats,
}

impl BrokerKind {
    /// Whether the broker answers `register` (peerchat-server does; a plain broker does not).
    pub fn registers(self) -> bool {
        matches!(self, Self::Peerchat | Self::PeerchatUnchecked)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Peerchat => "peerchat-server",
            Self::PeerchatUnchecked => "peerchat-server --unchecked-senders",
            Self::Aedes => "aedes",
            Self::Mosquitto => "mosquitto",
            Self::Nats => "nats-server",
        }
    }

    /// Starts the broker on a free loopback port and waits until it says where it listens
    /// (or, for brokers that do not say, until it accepts connections).
    pub async fn start(self) -> anyhow::Result<RunningBroker> {
        if matches!(self, Self::Mosquitto | Self::Nats) {
            return self.start_configured().await;
        }
        let (mut command, announcement) = match self {
            Self::Peerchat | Self::PeerchatUnchecked => {
                let mut command = Command::new(sibling_binary("peerchat-server")?);
                command
                    .args(["--mqtt-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
                    .args(["--log", "warn"])
                    // The bench's connections all come from one address, and each publisher
                    // sends as fast as its window allows: the limits for users would cap
                    // the load, not measure the server.
                    .args(["--max-connections-per-address", "0"])
                    .args(["--max-connections", "1000000"])
                    .args(["--max-publish-rate", "1000000"]);
                if self == Self::PeerchatUnchecked {
                    command.arg("--unchecked-senders");
                }
                (command, "peerchat-server: mqtt listening on ")
            }
            Self::Aedes => {
                let script = aedes_script()?;
                let mut command = Command::new("node");
                command.arg(script).arg("0");
                (command, "aedes: mqtt listening on ")
            }
            Self::Mosquitto | Self::Nats => unreachable!("started from a configuration"),
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.name()))?;
        let pid = child.id().context("the broker exited at once")?;
        let addr = announced_addr(&mut child, announcement)
            .await
            .with_context(|| format!("{} did not start", self.name()))?;
        Ok(RunningBroker {
            kind: self,
            addr,
            pid,
            _child: child,
            _dir: None,
        })
    }

    /// Mosquitto or NATS, from a configuration file written for the run, on a free port.
    async fn start_configured(self) -> anyhow::Result<RunningBroker> {
        let dir = std::env::temp_dir().join(format!(
            "peerchat-bench-{}-{}",
            self.name(),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let (program, config) = match self {
            Self::Mosquitto => (
                "/usr/sbin/mosquitto",
                format!(
                    "per_listener_settings false\nallow_anonymous true\nmax_connections -1\n\
                     listener {port} 127.0.0.1\n"
                ),
            ),
            _ => (
                "/usr/sbin/nats-server",
                format!(
                    "server_name: bench\nlisten: 127.0.0.1:{}\n\
                     jetstream {{ store_dir: \"{}\" }}\nmqtt {{ listen: 127.0.0.1:{port} }}\n",
                    free_port()?,
                    dir.join("jetstream").display()
                ),
            ),
        };
        if !std::path::Path::new(program).exists() {
            bail!("{program} is missing: install Debian's package first");
        }
        let config_path = dir.join("broker.conf");
        std::fs::write(&config_path, config)?;
        let child = Command::new(program)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.name()))?;
        let pid = child.id().context("the broker exited at once")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                bail!("{} did not listen on {addr} within 20 s", self.name());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Ok(RunningBroker {
            kind: self,
            addr,
            pid,
            _child: child,
            _dir: Some(TempDir(dir)),
        })
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A directory removed with the broker that used it.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// apps/bench/aedes/server.js, with its dependencies installed.
fn aedes_script() -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("aedes");
    if !dir.join("node_modules").join("aedes").exists() {
        bail!(
            "aedes is not installed: run `npm ci --prefix {}` (needs Node.js and npm)",
            dir.display()
        );
    }
    Ok(dir.join("server.js"))
}

/// A broker process, killed when dropped.
pub struct RunningBroker {
    pub kind: BrokerKind,
    /// Its MQTT-over-TCP listener (loopback).
    pub addr: SocketAddr,
    pid: u32,
    _child: Child,
    _dir: Option<TempDir>,
}

impl RunningBroker {
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    pub fn resident_bytes(&self) -> anyhow::Result<u64> {
        resident_bytes(self.pid)
    }

    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        crate::process::cpu_seconds(self.pid)
    }
}
