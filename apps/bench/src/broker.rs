//! `peerchat-bench broker`: what a broker sustains for signaling. Delivered messages per
//! second between publisher/subscriber pairs, and resident memory per idle connection.
//!
//! The load is signaling's shape, as users make it: each subscriber listens on its own
//! `<user>/incoming` topic, and one publisher sends it QoS 0 signaling messages of a few
//! hundred bytes in its own name (`signal-candidate`s). On peerchat-server both register
//! first, so every message takes the production path (the sender check, the rate, the
//! registry); aedes carries the same packets without the registers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use peerchat_core::protocol::{
    IceCandidate, REGISTER_TOPIC, SignalMessage, decode, encode, incoming_topic,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::broker_process::{BrokerKind, RunningBroker};
use crate::process::mib;

/// Measure a broker: delivered messages per second and memory per idle connection.
#[derive(Debug, clap::Args)]
pub struct BrokerFlags {
    /// The broker to start and measure (aedes needs `npm ci --prefix apps/bench/aedes`).
    #[arg(long, value_enum, default_value = "peerchat")]
    broker: BrokerKind,
    /// Publisher/subscriber pairs; each publisher sends to its own subscriber.
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Bytes per message (signaling messages are a few hundred bytes).
    #[arg(long, default_value_t = 300)]
    payload_bytes: usize,
    /// Messages each publisher may have on their way at once: enough to keep the broker busy,
    /// few enough that it never has to queue or drop (a message that is lost anyway keeps
    /// its place, so losses show as a lower rate).
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Seconds of load before measuring, so connections and buffers are warm.
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
    /// Seconds over which delivered messages are counted.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Idle connections to open and hold for the memory figure (each subscribed to its own
    /// topic, as an idle chat client is).
    #[arg(long, default_value_t = 1000)]
    idle: usize,
}

/// How long one connection may take to be accepted and subscribed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Connections opened at once: a burst larger than the broker's accept backlog would be
/// measuring the backlog.
const CONNECT_CONCURRENCY: usize = 32;

/// Time for the broker's memory to settle after connections open or close.
const SETTLE: Duration = Duration::from_secs(1);

pub async fn run(flags: BrokerFlags) -> anyhow::Result<()> {
    let broker = flags.broker.start().await?;
    tokio::time::sleep(SETTLE).await;
    let idle = measure_idle(&broker, flags.idle).await?;
    let load = measure_delivery(&broker, &flags).await?;

    let name = broker.kind.name();
    println!("{:<34} {name}", "broker");
    println!(
        "{:<34} {} pairs, {} B payload, window {}",
        "load", flags.pairs, flags.payload_bytes, flags.window
    );
    println!(
        "{:<34} {:>10.0} msg/s ({} in {:.1} s)",
        "delivered", load.per_second, load.delivered, flags.seconds
    );
    println!(
        "{:<34} {:>10.2} µs",
        "broker CPU per message", load.cpu_us_per_message
    );
    println!(
        "{:<34} {:>10.1} MiB",
        "resident after load",
        mib(load.resident_after as f64)
    );
    println!(
        "{:<34} {:>10.1} MiB → {:.1} MiB",
        format!("resident, {} idle connections", flags.idle),
        mib(idle.before as f64),
        mib(idle.with_idle as f64)
    );
    println!(
        "{:<34} {:>10.1} KiB",
        "per idle connection",
        idle.per_connection() / 1024.0
    );
    println!(
        "{}",
        serde_json::json!({
            "broker": name,
            "pairs": flags.pairs,
            "payload_bytes": flags.payload_bytes,
            "window": flags.window,
            "seconds": flags.seconds,
            "delivered": load.delivered,
            "messages_per_second": load.per_second,
            "cpu_us_per_message": load.cpu_us_per_message,
            "rss_after_load_bytes": load.resident_after,
            "idle_connections": flags.idle,
            "rss_before_idle_bytes": idle.before,
            "rss_with_idle_bytes": idle.with_idle,
            "bytes_per_idle_connection": idle.per_connection(),
        })
    );
    Ok(())
}

/// The broker's resident memory without and with the idle connections.
struct IdleMemory {
    connections: usize,
    before: u64,
    with_idle: u64,
}

impl IdleMemory {
    fn per_connection(&self) -> f64 {
        (self.with_idle as f64 - self.before as f64) / self.connections.max(1) as f64
    }
}

/// Opens `count` subscribed connections that then say nothing, and reads the broker's memory
/// before and after; closes them again.
async fn measure_idle(broker: &RunningBroker, count: usize) -> anyhow::Result<IdleMemory> {
    let before = broker.resident_bytes()?;
    let run = std::process::id();
    let links: Vec<Link> = stream::iter(0..count)
        .map(|i| {
            let user = format!("bench-idle-{run}-{i}");
            Link::open(broker, i, user, true, || {})
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await
        .context("opening idle connections")?;
    tokio::time::sleep(SETTLE).await;
    let with_idle = broker.resident_bytes()?;
    drop(links);
    tokio::time::sleep(SETTLE).await;
    Ok(IdleMemory {
        connections: count,
        before,
        with_idle,
    })
}

/// What the publisher/subscriber pairs achieved.
struct Delivery {
    delivered: u64,
    per_second: f64,
    /// The broker's CPU time per delivered message, in microseconds.
    cpu_us_per_message: f64,
    resident_after: u64,
}

/// Runs the pairs for the warm-up and the measured time; counts messages the subscribers
/// received during the measured time.
async fn measure_delivery(broker: &RunningBroker, flags: &BrokerFlags) -> anyhow::Result<Delivery> {
    let run = std::process::id();
    let delivered = Arc::new(AtomicU64::new(0));
    let pairs: Vec<(Link, Link, Arc<Semaphore>, String, Bytes)> = stream::iter(0..flags.pairs)
        .map(|i| {
            let delivered = delivered.clone();
            async move {
                let user = format!("bench-sub-{run}-{i}");
                let topic = incoming_topic(&user);
                // A delivery frees a place in the publisher's window.
                let window = Arc::new(Semaphore::new(flags.window));
                let freed = window.clone();
                // On a cluster the subscriber's gateway is not the publisher's.
                let subscriber = Link::open(broker, 1, user, true, move || {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    freed.add_permits(1);
                })
                .await?;
                let sender = format!("bench-pub-{run}-{i}");
                let payload = signal_of(&sender, flags.payload_bytes);
                let publisher = Link::open(broker, 0, sender, false, || {}).await?;
                anyhow::Ok((subscriber, publisher, window, topic, payload))
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await
        .context("opening publisher/subscriber pairs")?;

    let publishing: Vec<JoinHandle<()>> = pairs
        .iter()
        .map(|(_, publisher, window, topic, payload)| {
            let (client, window, topic) = (publisher.client.clone(), window.clone(), topic.clone());
            let payload = payload.clone();
            tokio::spawn(async move {
                loop {
                    let Ok(place) = window.acquire().await else {
                        return;
                    };
                    place.forget();
                    if client
                        .publish_bytes(topic.clone(), QoS::AtMostOnce, false, payload.clone())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs_f64(flags.warmup_seconds)).await;
    let (first, started) = (delivered.load(Ordering::Relaxed), Instant::now());
    let cpu_before = broker.cpu_seconds()?;
    tokio::time::sleep(Duration::from_secs_f64(flags.seconds)).await;
    let (last, took) = (delivered.load(Ordering::Relaxed), started.elapsed());
    let cpu = broker.cpu_seconds()? - cpu_before;
    let resident_after = broker.resident_bytes()?;
    for task in publishing {
        task.abort();
    }
    drop(pairs);
    let counted = last - first;
    Ok(Delivery {
        delivered: counted,
        per_second: counted as f64 / took.as_secs_f64(),
        cpu_us_per_message: cpu * 1e6 / counted.max(1) as f64,
        resident_after,
    })
}

/// One client connection to the broker under test. Its event loop runs on a task of its own
/// and stops when the link is dropped, which closes the connection.
struct Link {
    client: AsyncClient,
    task: JoinHandle<()>,
}

impl Link {
    /// Connects as `user` to the broker's `entry`, subscribes to its inbox if `listening`, registers the name where
    /// the broker answers registers, and returns once the broker has acknowledged;
    /// `on_message` runs for every publish that arrives after.
    async fn open(
        broker: &RunningBroker,
        entry: usize,
        user: String,
        listening: bool,
        mut on_message: impl FnMut() + Send + 'static,
    ) -> anyhow::Result<Self> {
        let addr = broker.entry(entry);
        let mut options = MqttOptions::new(user.clone(), addr.ip().to_string(), addr.port());
        options
            .set_keep_alive(Duration::from_secs(60))
            .set_clean_session(true);
        let (client, mut events) = AsyncClient::new(options, 64);
        let mut network = events.network_options();
        network.set_tcp_nodelay(true);
        events.set_network_options(network);
        let inbox = incoming_topic(&user);
        if listening {
            client.subscribe(inbox.clone(), QoS::AtMostOnce).await?;
        }
        let registering = broker.kind.registers();
        if registering {
            let register = SignalMessage::Register {
                from: user.clone(),
                username: user.clone(),
                session: None,
                proof: None,
            };
            client
                .publish(REGISTER_TOPIC, QoS::AtMostOnce, false, encode(&register))
                .await?;
        }
        let ready = async {
            loop {
                match events.poll().await? {
                    Event::Incoming(Packet::ConnAck(_)) if !listening && !registering => {
                        return anyhow::Ok(());
                    }
                    Event::Incoming(Packet::SubAck(_)) if !registering => return Ok(()),
                    Event::Incoming(Packet::Publish(p)) if registering && p.topic == inbox => {
                        match decode(&p.payload) {
                            Ok(SignalMessage::RegisterAck { success: true, .. }) => return Ok(()),
                            Ok(SignalMessage::RegisterAck { message, .. }) => {
                                anyhow::bail!("{user}: register refused: {message}")
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, ready)
            .await
            .with_context(|| format!("{user}: not accepted within {CONNECT_TIMEOUT:?}"))?
            .with_context(|| format!("{user} could not connect"))?;
        let task = tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(_))) => on_message(),
                    Ok(_) => {}
                    Err(error) => {
                        warn!(%error, "{user}: connection lost");
                        return;
                    }
                }
            }
        });
        Ok(Self { client, task })
    }
}

/// A `signal-candidate` from `sender` of about `size` bytes: what peerchat clients publish
/// most, and what peerchat-server's sender check reads.
fn signal_of(sender: &str, size: usize) -> Bytes {
    let message = |line: String| {
        encode(&SignalMessage::SignalCandidate {
            from: sender.to_owned(),
            candidate: IceCandidate {
                candidate: line,
                sdp_mid: Some("0".to_owned()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            },
            seal: None,
        })
    };
    let bare = message(String::new()).len();
    Bytes::from(message("x".repeat(size.saturating_sub(bare))))
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}
