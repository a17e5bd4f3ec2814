//! `peerchat-bench`: measures what users feel, between two real native clients.
//!
//! Connection setup (connect_to_peer → chat channel open) over many fresh connections,
//! message round-trip time and bulk file throughput over an open chat. Prints a table and
//! one JSON summary line.
//! Subcommands measure the rest: a broker's throughput and memory (`broker`), one client's
//! memory per open chat (`memory`), how many idle users a broker holds and a login storm
//! (`capacity`), a group room's forming and delivery (`room`).

mod broker;
mod broker_process;
mod capacity;
mod memory;
mod process;
mod room;
mod stats;
mod transfer;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use peerchat_core::{Client, ClientEvent, ClientOptions, Events};
use stats::Summary;

/// Measure peerchat's connection setup and message round-trip between two native clients.
///
/// Without a subcommand, times setups and round trips against `--server`.
#[derive(Debug, Parser)]
#[command(
    name = "peerchat-bench",
    version,
    args_conflicts_with_subcommands = true
)]
struct Flags {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Signaling server both clients join (a running peerchat-server or Mosquitto).
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    server: String,
    /// Fresh connection setups to time; every one must succeed.
    #[arg(long, default_value_t = 200)]
    setups: usize,
    /// Messages to bounce over one open chat for the round-trip time.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// File sizes in MiB to send over the open chat for bulk throughput (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 256])]
    transfer_mib: Vec<usize>,
    /// Local UDP address for ICE (loopback keeps the benchmark on this machine).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: String,
}

/// The benchmarks besides setup and round trip.
#[derive(Debug, Subcommand)]
enum Mode {
    /// Start a broker and measure delivered messages per second and memory per idle connection.
    Broker(broker::BrokerFlags),
    /// Start peerchat-server and peerchat-cli processes and measure one client's memory as its
    /// open chats grow.
    Memory(memory::MemoryFlags),
    /// Start a broker and measure how many idle users it holds, what each costs, and a login
    /// storm.
    Capacity(capacity::CapacityFlags),
    /// Start peerchat-server and measure a group room of native clients: forming from cold,
    /// and a message reaching every member.
    Room(room::RoomFlags),
}

/// How long one setup or one round trip may take before the run counts it as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut flags = Flags::parse();
    match flags.mode.take() {
        Some(Mode::Broker(broker)) => return broker::run(broker).await,
        Some(Mode::Memory(memory)) => return memory::run(memory).await,
        Some(Mode::Capacity(capacity)) => return capacity::run(capacity).await,
        Some(Mode::Room(room)) => return room::run(room).await,
        None => {}
    }
    let run = std::process::id();
    let (caller, mut caller_events) = join(&flags, &format!("bench-caller-{run}")).await?;
    let callee_name = format!("bench-callee-{run}");
    let (callee, mut callee_events) = join(&flags, &callee_name).await?;

    let mut setups = Vec::with_capacity(flags.setups);
    for trial in 0..flags.setups {
        let started = Instant::now();
        caller
            .connect_to_peer(&callee_name)
            .with_context(|| format!("setup {trial}"))?;
        wait_for(
            &mut caller_events,
            |e| matches!(e, ClientEvent::PeerConnected(p) if *p == callee_name),
        )
        .await
        .with_context(|| format!("setup {trial} did not open"))?;
        setups.push(started.elapsed());
        wait_for(&mut callee_events, |e| {
            matches!(e, ClientEvent::PeerConnected(_))
        })
        .await
        .with_context(|| format!("setup {trial}: callee never saw the chat"))?;
        if trial + 1 < flags.setups {
            caller.close_peer(&callee_name)?;
            wait_for(&mut callee_events, |e| {
                matches!(e, ClientEvent::PeerDisconnected { .. })
            })
            .await
            .with_context(|| format!("setup {trial}: close not seen"))?;
        }
    }

    let caller_name = caller.username();
    let mut round_trips = Vec::with_capacity(flags.messages);
    for n in 0..flags.messages {
        let text = format!("ping {n}");
        let started = Instant::now();
        if !caller.send_message(&callee_name, &text) {
            bail!("message {n} could not be sent");
        }
        let echo = wait_for(&mut callee_events, |e| {
            matches!(e, ClientEvent::Message { .. })
        })
        .await?;
        let ClientEvent::Message { text: got, .. } = echo else {
            unreachable!()
        };
        if !callee.send_message(&caller_name, &got) {
            bail!("echo {n} could not be sent");
        }
        wait_for(
            &mut caller_events,
            |e| matches!(e, ClientEvent::Message { text: t, .. } if *t == text),
        )
        .await?;
        round_trips.push(started.elapsed());
    }

    let mut transfers = Vec::new();
    for &mib in &flags.transfer_mib {
        let done = transfer::send_one(
            (&caller, &mut caller_events),
            (&callee, &mut callee_events),
            mib * 1024 * 1024,
        )
        .await?;
        println!(
            "transfer {mib:>4} MiB: {:>8.1} MB/s ({:.2} s)",
            done.megabytes_per_second(),
            done.took.as_secs_f64()
        );
        transfers.push(done);
    }

    let setup = Summary::of(&setups);
    let rtt = Summary::of(&round_trips);
    println!(
        "{:<28} {:>8} {:>10} {:>10} {:>10}",
        "measure", "samples", "median", "p99", "max"
    );
    setup.print_row("setup (connect → open)");
    rtt.print_row("message round trip");
    let transfers: Vec<serde_json::Value> = transfers
        .iter()
        .map(|t| {
            serde_json::json!({
                "bytes": t.bytes,
                "seconds": t.took.as_secs_f64(),
                "mb_per_s": t.megabytes_per_second(),
            })
        })
        .collect();
    let summary = serde_json::json!({
        "setups": setups.len(),
        "setup_failures": 0,
        "setup_median_ms": setup.median_ms(),
        "setup_p99_ms": setup.p99_ms(),
        "messages": round_trips.len(),
        "rtt_median_ms": rtt.median_ms(),
        "rtt_p99_ms": rtt.p99_ms(),
        "transfers": transfers,
    });
    println!("{summary}");
    caller.disconnect().await;
    callee.disconnect().await;
    Ok(())
}

async fn join(flags: &Flags, name: &str) -> anyhow::Result<(Client, Events)> {
    let mut options = ClientOptions::new(&flags.server, name);
    options.bind_addrs = vec![flags.bind.clone()];
    options.mdns = false;
    Client::connect_with(options)
        .await
        .with_context(|| format!("{name} could not join {}", flags.server))
}

/// Waits for the first event that matches, skipping the rest.
async fn wait_for(
    events: &mut Events,
    wanted: impl Fn(&ClientEvent) -> bool,
) -> anyhow::Result<ClientEvent> {
    wait_within(STEP_TIMEOUT, events, wanted).await
}

/// [`wait_for`] with its own time limit.
async fn wait_within(
    limit: Duration,
    events: &mut Events,
    wanted: impl Fn(&ClientEvent) -> bool,
) -> anyhow::Result<ClientEvent> {
    let search = async {
        while let Some(event) = events.next().await {
            if wanted(&event) {
                return Some(event);
            }
        }
        None
    };
    match tokio::time::timeout(limit, search).await {
        Ok(Some(event)) => Ok(event),
        Ok(None) => bail!("the client stopped"),
        Err(_) => bail!("timed out after {limit:?}"),
    }
}
