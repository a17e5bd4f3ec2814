//! The MQTT brokers a benchmark starts for itself on loopback, as child processes, so it can
//! read their memory: peerchat-server (with its rules, or with its per-message checks off to
//! measure what they cost), or aedes (the original server's broker) as a baseline.

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
}

impl BrokerKind {
    /// Whether the broker answers `register` (peerchat-server does; a plain broker does not).
    pub fn registers(self) -> bool {
        self != Self::Aedes
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Peerchat => "peerchat-server",
            Self::PeerchatUnchecked => "peerchat-server --unchecked-senders",
            Self::Aedes => "aedes",
        }
    }

    /// Starts the broker on a free loopback port and waits until it says where it listens.
    pub async fn start(self) -> anyhow::Result<RunningBroker> {
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
        })
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
}

impl RunningBroker {
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    pub fn resident_bytes(&self) -> anyhow::Result<u64> {
        resident_bytes(self.pid)
    }
}
