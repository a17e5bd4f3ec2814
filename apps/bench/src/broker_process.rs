//! The MQTT brokers a benchmark starts for itself on loopback, as child processes, so it can
//! read their memory: peerchat-server (with its rules, or with its per-message checks off to
//! measure what they cost), two peerchat-server gateways over a three-node NATS cluster,
//! and for comparison aedes (the original server's broker), Mosquitto and a single NATS
//! node (both from Debian).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

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
    /// Two peerchat-server gateways (`--cluster`) over a three-node NATS cluster: users
    /// alternate between the gateways, and publishers and their subscribers sit on
    /// different ones, so every message crosses the cluster. Memory and CPU are the whole
    /// cluster's (gateways and nodes).
    Cluster,
}

impl BrokerKind {
    /// Whether the broker answers `register` (peerchat-server does; a plain broker does not).
    pub fn registers(self) -> bool {
        matches!(
            self,
            Self::Peerchat | Self::PeerchatUnchecked | Self::Cluster
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Peerchat => "peerchat-server",
            Self::PeerchatUnchecked => "peerchat-server --unchecked-senders",
            Self::Aedes => "aedes",
            Self::Mosquitto => "mosquitto",
            Self::Nats => "nats-server",
            Self::Cluster => "2 peerchat-server gateways over 3 NATS nodes",
        }
    }

    /// Starts the broker on a free loopback port and waits until it says where it listens
    /// (or, for brokers that do not say, until it accepts connections).
    pub async fn start(self) -> anyhow::Result<RunningBroker> {
        if matches!(self, Self::Mosquitto | Self::Nats) {
            return self.start_configured().await;
        }
        if self == Self::Cluster {
            return start_cluster().await;
        }
        let (mut command, announcement) = match self {
            Self::Peerchat | Self::PeerchatUnchecked => {
                let mut command = Command::new(sibling_binary("peerchat-server")?);
                command
                    .args(["--mqtt-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
                    .args(["--log", "warn"])
                    .args(LOAD_LIMITS);
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
            Self::Mosquitto | Self::Nats | Self::Cluster => {
                unreachable!("started from a configuration")
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
            addrs: vec![addr],
            processes: vec![(pid, child)],
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
        let (pid, child) = spawn_configured(program, &dir.join("broker.conf"), &config)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_until_listening(addr, self.name()).await?;
        Ok(RunningBroker {
            kind: self,
            addrs: vec![addr],
            processes: vec![(pid, child)],
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

/// peerchat-server's limits under load: the bench's connections all come from one address,
/// and each publisher sends as fast as its window allows, so the limits meant for users
/// would cap the load, not measure the server.
const LOAD_LIMITS: [&str; 6] = [
    "--max-connections-per-address",
    "0",
    "--max-connections",
    "1000000",
    "--max-publish-rate",
    "1000000",
];

/// Writes `config` to `path` and starts `program -c path`, silent, killed when dropped.
fn spawn_configured(program: &str, path: &Path, config: &str) -> anyhow::Result<(u32, Child)> {
    std::fs::write(path, config)?;
    let child = Command::new(program)
        .arg("-c")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let pid = child
        .id()
        .with_context(|| format!("{program} exited at once"))?;
    Ok((pid, child))
}

/// Waits up to 20 s until `addr` accepts connections.
async fn wait_until_listening(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if tokio::time::Instant::now() > deadline {
            bail!("{what} did not listen on {addr} within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Three NATS nodes clustered on loopback (JetStream on, as `deploy/nats/` configures
/// them), then two gateways joined to them, each through a node of its own.
async fn start_cluster() -> anyhow::Result<RunningBroker> {
    let program = "/usr/sbin/nats-server";
    if !std::path::Path::new(program).exists() {
        bail!("{program} is missing: install Debian's nats-server first");
    }
    let dir = std::env::temp_dir().join(format!("peerchat-bench-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let routes: Vec<u16> = (0..3).map(|_| free_port()).collect::<Result<_, _>>()?;
    let route_list = (routes.iter())
        .map(|port| format!("nats-route://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut processes = Vec::new();
    let mut clients = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        let client = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let config = format!(
            "server_name: n{i}\nlisten: {client}\n\
             jetstream {{ store_dir: \"{}\" }}\n\
             cluster {{ name: bench, listen: 127.0.0.1:{route}, routes: [{route_list}] }}\n",
            dir.join(format!("n{i}")).display()
        );
        processes.push(spawn_configured(
            program,
            &dir.join(format!("n{i}.conf")),
            &config,
        )?);
        clients.push(client);
    }
    for client in &clients {
        wait_until_listening(*client, "nats-server").await?;
    }
    let mut addrs = Vec::new();
    for node in &clients[..2] {
        let (pid, child, addr) = start_gateway(&format!("nats://{node}")).await?;
        processes.push((pid, child));
        addrs.push(addr);
    }
    Ok(RunningBroker {
        kind: BrokerKind::Cluster,
        addrs,
        processes,
        _dir: Some(TempDir(dir)),
    })
}

/// A gateway joined to the cluster through `node`; tried again while JetStream elects its
/// first leader (the gateway exits when it cannot open the names bucket).
async fn start_gateway(node: &str) -> anyhow::Result<(u32, Child, SocketAddr)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut child = Command::new(sibling_binary("peerchat-server")?)
            .args(["--mqtt-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(["--log", "warn", "--cluster", node])
            .args(LOAD_LIMITS)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start peerchat-server")?;
        let pid = child.id().context("peerchat-server exited at once")?;
        match announced_addr(&mut child, "peerchat-server: mqtt listening on ").await {
            Ok(addr) => return Ok((pid, child, addr)),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error.context("no gateway joined the NATS cluster")),
        }
    }
}

/// A broker's processes, killed when dropped.
pub struct RunningBroker {
    pub kind: BrokerKind,
    /// Its MQTT-over-TCP listeners (loopback): one, or a cluster's gateways.
    addrs: Vec<SocketAddr>,
    processes: Vec<(u32, Child)>,
    _dir: Option<TempDir>,
}

impl RunningBroker {
    /// Where user number `n` connects: users alternate between a cluster's gateways.
    pub fn entry(&self, n: usize) -> SocketAddr {
        self.addrs[n % self.addrs.len()]
    }

    pub fn url(&self) -> String {
        format!("mqtt://{}", self.entry(0))
    }

    /// Resident memory of all its processes.
    pub fn resident_bytes(&self) -> anyhow::Result<u64> {
        (self.processes.iter())
            .map(|(pid, _)| resident_bytes(*pid))
            .sum()
    }

    /// CPU time of all its processes.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        (self.processes.iter())
            .map(|(pid, _)| crate::process::cpu_seconds(*pid))
            .sum()
    }
}
