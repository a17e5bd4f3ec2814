//! The processes a benchmark starts and measures: workspace binaries found next to this one,
//! their announced addresses, and their resident memory as Linux reports it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// How long a started process may take to announce where it listens.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(20);

/// A binary built from this workspace in the same profile as this one (`target/<profile>/`),
/// so a release benchmark measures release servers and clients.
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find peerchat-bench's own path")?;
    let path = me.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing: build it with the benchmark, e.g. `cargo build --release -p peerchat-bench -p {name}`",
            path.display()
        );
    }
    Ok(path)
}

/// Resident memory of process `pid` in bytes: `VmRSS` in `/proc/<pid>/status`.
pub fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {path} (Linux only)"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .with_context(|| format!("no VmRSS line in {path}"))?;
    Ok(kib * 1024)
}

/// Bytes as mebibytes, the unit the tables print.
pub fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// Reads `child`'s stdout until a line `<announcement><ADDR>` and returns the address; the
/// rest of its output is drained in the background so the child never blocks on a full pipe.
pub async fn announced_addr(child: &mut Child, announcement: &str) -> anyhow::Result<SocketAddr> {
    let stdout = child
        .stdout
        .take()
        .context("the child's stdout is not piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(
        ANNOUNCE_TIMEOUT,
        find_announcement(&mut lines, announcement),
    )
    .await
    .with_context(|| format!("no `{announcement}…` line within {ANNOUNCE_TIMEOUT:?}"))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(addr)
}

async fn find_announcement(
    lines: &mut Lines<BufReader<ChildStdout>>,
    announcement: &str,
) -> anyhow::Result<SocketAddr> {
    while let Some(line) = lines.next_line().await? {
        if let Some(addr) = line.strip_prefix(announcement) {
            return addr
                .trim()
                .parse()
                .with_context(|| format!("bad address in {line:?}"));
        }
    }
    bail!("the process exited before announcing `{announcement}…`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_resident_memory_is_readable() {
        let rss = resident_bytes(std::process::id()).unwrap();
        assert!(rss > 0);
    }
}
