//! `peerchat-bench memory`: resident memory of one native client (a `peerchat-cli` process,
//! the hub) as the number of chats it holds open grows, and what each extra chat costs.
//!
//! Every peer is a `peerchat-cli` process of its own, so the hub's memory is the hub's alone.
//! All of them use the peerchat-server the benchmark starts, and loopback only.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::broker_process::BrokerKind;
use crate::process::{mib, resident_bytes, sibling_binary};

/// Measure one native client's resident memory as its open chats grow.
#[derive(Debug, clap::Args)]
pub struct MemoryFlags {
    /// Open chats at which the hub's memory is read (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 50])]
    peers: Vec<usize>,
    /// Chats the hub starts at once while growing.
    #[arg(long, default_value_t = 10)]
    batch: usize,
}

/// How long a client may take to join or a batch of chats to open.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Peer processes started at once.
const START_CONCURRENCY: usize = 8;

/// Time for the hub's memory to settle after chats open.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn run(mut flags: MemoryFlags) -> anyhow::Result<()> {
    flags.peers.sort_unstable();
    flags.peers.dedup();
    let most = *flags
        .peers
        .last()
        .context("--peers needs at least one count")?;
    ensure!(flags.batch > 0, "--batch must be at least 1");

    let broker = BrokerKind::Peerchat.start().await?;
    let url = broker.url();
    let run = std::process::id();
    let mut hub = ChatProcess::start(&url, format!("bench-hub-{run}"), Stdio::inherit()).await?;
    let peers: Vec<ChatProcess> = stream::iter(0..most)
        .map(|i| ChatProcess::start(&url, format!("bench-peer-{run}-{i}"), Stdio::null()))
        .buffer_unordered(START_CONCURRENCY)
        .try_collect()
        .await
        .context("starting the peers")?;
    tokio::time::sleep(SETTLE).await;
    let alone = resident_bytes(hub.pid)?;

    let mut readings = Vec::with_capacity(flags.peers.len());
    let mut open = 0;
    for &target in &flags.peers {
        while open < target {
            let batch = &peers[open..target.min(open + flags.batch)];
            hub.open_chats(batch.iter().map(|p| p.user.as_str()))
                .await
                .with_context(|| format!("opening chats {}–{}", open + 1, open + batch.len()))?;
            open += batch.len();
        }
        tokio::time::sleep(SETTLE).await;
        readings.push((target, resident_bytes(hub.pid)?));
    }

    let per_extra = per_extra_peer(&readings);
    println!("{:<24} {:>12}", "open chats", "hub resident");
    println!("{:<24} {:>8.1} MiB", 0, mib(alone as f64));
    for (peers, rss) in &readings {
        println!("{peers:<24} {:>8.1} MiB", mib(*rss as f64));
    }
    if let Some(bytes) = per_extra {
        println!("{:<24} {:>8.2} MiB", "per extra chat", mib(bytes));
    }
    println!(
        "{}",
        serde_json::json!({
            "peers": readings.iter().map(|r| r.0).collect::<Vec<_>>(),
            "rss_bytes": readings.iter().map(|r| r.1).collect::<Vec<_>>(),
            "rss_no_peers_bytes": alone,
            "bytes_per_extra_peer": per_extra,
            "mib_per_extra_peer": per_extra.map(mib),
        })
    );
    drop(peers);
    hub.quit().await;
    Ok(())
}

/// Memory each chat beyond the first reading adds, from the first and last readings; `None`
/// with fewer than two counts.
fn per_extra_peer(readings: &[(usize, u64)]) -> Option<f64> {
    let (&(first_peers, first_rss), &(last_peers, last_rss)) =
        (readings.first()?, readings.last()?);
    (last_peers > first_peers)
        .then(|| (last_rss as f64 - first_rss as f64) / (last_peers - first_peers) as f64)
}

/// A `peerchat-cli --json` process on loopback: commands in, events out; killed when dropped.
struct ChatProcess {
    user: String,
    pid: u32,
    stdin: ChildStdin,
    events: mpsc::UnboundedReceiver<Value>,
    child: Child,
}

impl ChatProcess {
    /// Starts a client and waits until it has joined the server.
    async fn start(server_url: &str, user: String, stderr: Stdio) -> anyhow::Result<Self> {
        let mut command = Command::new(sibling_binary("peerchat-cli")?);
        command
            .args(["--server", server_url, "--user", &user, "--json"])
            .args(["--bind", "127.0.0.1:0", "--no-mdns"]);
        if std::env::var_os("RUST_LOG").is_none() {
            // webrtc-rs warns about ordinary events of every setup; errors are what matter.
            command.env("RUST_LOG", "error");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start peerchat-cli for {user}"))?;
        let pid = child.id().context("peerchat-cli exited at once")?;
        let stdin = child.stdin.take().context("stdin is piped")?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let (sender, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(event) = serde_json::from_str(&line)
                    && sender.send(event).is_err()
                {
                    return;
                }
            }
        });
        let mut process = Self {
            user,
            pid,
            stdin,
            events,
            child,
        };
        process
            .expect(|e| e["event"] == "connected")
            .await
            .with_context(|| format!("{} did not join {server_url}", process.user))?;
        Ok(process)
    }

    /// Starts a chat with each of `peers` and waits until every one is open.
    async fn open_chats<'a>(&mut self, peers: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
        let mut waiting = HashSet::new();
        for peer in peers {
            self.command(&format!("/connect {peer}")).await?;
            waiting.insert(peer.to_owned());
        }
        while !waiting.is_empty() {
            let event = self
                .expect(|e| e["event"] == "peer_connected")
                .await
                .with_context(|| format!("still waiting for {waiting:?}"))?;
            if let Some(peer) = event["peer"].as_str() {
                waiting.remove(peer);
            }
        }
        Ok(())
    }

    async fn command(&mut self, line: &str) -> anyhow::Result<()> {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .with_context(|| format!("{}: cannot send {line:?}", self.user))
    }

    /// Waits for the first event that matches, skipping others; an `error` event fails.
    async fn expect(&mut self, wanted: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let search = async {
            while let Some(event) = self.events.recv().await {
                if event["event"] == "error" {
                    bail!("{}: {}", self.user, event["message"]);
                }
                if wanted(&event) {
                    return Ok(event);
                }
            }
            bail!("{} exited", self.user)
        };
        tokio::time::timeout(STEP_TIMEOUT, search)
            .await
            .with_context(|| format!("{}: timed out after {STEP_TIMEOUT:?}", self.user))?
    }

    /// Leaves cleanly, so the server sees a goodbye rather than a dropped connection.
    async fn quit(mut self) {
        self.command("/quit").await.ok();
        tokio::time::timeout(Duration::from_secs(3), self.child.wait())
            .await
            .ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_peer_cost_spans_first_to_last_reading() {
        assert_eq!(per_extra_peer(&[(1, 10), (10, 30), (50, 108)]), Some(2.0));
        assert_eq!(per_extra_peer(&[(5, 10)]), None);
        assert_eq!(per_extra_peer(&[]), None);
    }
}
