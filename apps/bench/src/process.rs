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

/// CPU time process `pid` has used so far (user and system), in seconds: what a message
/// costs the broker whatever else the machine is doing, unlike messages per second.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // Fields after the command name (which may hold spaces) start after its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let (user, system) = (ticks(11), ticks(12));
    let (Some(user), Some(system)) = (user, system) else {
        bail!("no CPU times in {path}");
    };
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((user + system) / per_second)
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
    fn own_cpu_time_is_readable_and_grows() {
        let before = cpu_seconds(std::process::id()).unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {}
        assert!(cpu_seconds(std::process::id()).unwrap() > before);
    }

    #[test]
    fn own_resident_memory_is_readable() {
        let rss = resident_bytes(std::process::id()).unwrap();
        assert!(rss > 0);
    }
}
