//! `peerchat-bench capacity`: how many users one server holds and what each costs, and how
//! fast a crowd gets online at once.
//!
//! Users are raw MQTT connections doing what a client does to get online (CONNECT,
//! SUBSCRIBE to its inbox, `register` where the server answers it), then nothing: an idle
//! user. They come from several loopback source addresses (one address has ~28,000
//! ephemeral ports), and the benchmark raises its open-file limit (inherited by the
//! broker) as root may.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use futures::{StreamExt, stream};
use peerchat_core::protocol::{REGISTER_TOPIC, SignalMessage, decode, encode, incoming_topic};
use rumqttc::mqttbytes::{
    self, QoS,
    v4::{Connect, Packet, Publish, Subscribe},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

use crate::broker_process::{BrokerKind, RunningBroker};
use crate::process::mib;

/// Measure how many idle users a broker holds and a login storm.
#[derive(Debug, clap::Args)]
pub struct CapacityFlags {
    /// The broker to start and measure.
    #[arg(long, value_enum, default_value = "peerchat")]
    broker: BrokerKind,
    /// Idle users to open and hold for the memory figure.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Users who log in at once for the storm (0: no storm).
    #[arg(long, default_value_t = 10_000)]
    storm: usize,
    /// Loopback source addresses (127.0.1.1 and up) the users come from.
    #[arg(long, default_value_t = 8)]
    sources: usize,
    /// Users opening at once while the idle ones are opened.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
}

/// The keep-alive idle users ask for: long enough that none needs to ping during the run.
const KEEP_ALIVE_S: u16 = 300;

/// How long one user may take to get online.
const ONLINE_TIMEOUT: Duration = Duration::from_secs(60);

/// Time for the broker's memory to settle after users come or go.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn run(flags: CapacityFlags) -> anyhow::Result<()> {
    let files = raise_open_file_limit(2 * (flags.users + flags.storm) as u64 + 4096);
    println!("{:<34} {files}", "open-file limit");
    let broker = flags.broker.start().await?;
    tokio::time::sleep(SETTLE).await;
    let run = std::process::id();
    let mut storm = None;
    if flags.storm > 0 {
        let stormed = login_storm(&broker, &flags, run).await?;
        println!(
            "{:<34} {} of {} online in {:.2} s ({} refused or failed)",
            "login storm",
            stormed.online,
            flags.storm,
            stormed.took.as_secs_f64(),
            flags.storm - stormed.online
        );
        storm = Some(stormed);
        tokio::time::sleep(SETTLE).await;
    }
    let before = broker.resident_bytes()?;
    let started = Instant::now();
    let users = hold_users(&broker, &flags, run).await?;
    let opened = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let with_users = broker.resident_bytes()?;
    let per_user = (with_users as f64 - before as f64) / users.held.max(1) as f64;
    println!("{:<34} {}", "broker", broker.kind.name());
    println!(
        "{:<34} {} of {} (opened in {:.1} s)",
        "idle users held",
        users.held,
        flags.users,
        opened.as_secs_f64()
    );
    println!(
        "{:<34} {:.1} MiB → {:.1} MiB",
        "resident",
        mib(before as f64),
        mib(with_users as f64)
    );
    println!("{:<34} {:.1} KiB", "per idle user", per_user / 1024.0);
    println!(
        "{}",
        serde_json::json!({
            "broker": broker.kind.name(),
            "storm_asked": flags.storm,
            "storm_online": storm.as_ref().map_or(0, |storm| storm.online),
            "storm_seconds": storm.as_ref().map_or(0.0, |storm| storm.took.as_secs_f64()),
            "users_asked": flags.users,
            "users_held": users.held,
            "seconds_to_open": opened.as_secs_f64(),
            "rss_before_bytes": before,
            "rss_with_users_bytes": with_users,
            "bytes_per_user": per_user,
        })
    );
    drop(users);
    Ok(())
}

/// Asks for `wanted` open files (soft and hard limit; root may raise the hard one) and
/// returns the soft limit in force.
fn raise_open_file_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        let raised = libc::rlimit {
            rlim_cur: wanted.max(limit.rlim_cur),
            rlim_max: wanted.max(limit.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            let soft = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

struct Storm {
    online: usize,
    took: Duration,
}

/// `flags.storm` users log in at the same moment; how many got online, and when the last did.
async fn login_storm(
    broker: &RunningBroker,
    flags: &CapacityFlags,
    run: u32,
) -> anyhow::Result<Storm> {
    let started = Instant::now();
    let mut logins = JoinSet::new();
    let online = Arc::new(AtomicUsize::new(0));
    for n in 0..flags.storm {
        let (kind, addr, sources) = (broker.kind, broker.entry(n), flags.sources);
        let online = online.clone();
        logins.spawn(async move {
            let user = format!("storm-{run}-{n}");
            if let Ok(Ok(connection)) = tokio::time::timeout(
                ONLINE_TIMEOUT,
                get_online(kind, addr, source(n, sources), &user),
            )
            .await
            {
                online.fetch_add(1, Ordering::Relaxed);
                connection
            } else {
                None
            }
        });
    }
    let mut held = Vec::new();
    while let Some(joined) = logins.join_next().await {
        held.push(joined.context("a login task failed")?);
    }
    let took = started.elapsed();
    drop(held);
    Ok(Storm {
        online: online.load(Ordering::Relaxed),
        took,
    })
}

/// Idle users, held open until dropped.
struct Users {
    held: usize,
    _connections: Vec<Option<TcpStream>>,
}

/// Opens `flags.users` idle users, `flags.concurrency` at a time.
async fn hold_users(
    broker: &RunningBroker,
    flags: &CapacityFlags,
    run: u32,
) -> anyhow::Result<Users> {
    let (kind, sources) = (broker.kind, flags.sources);
    let connections: Vec<Option<TcpStream>> = stream::iter(0..flags.users)
        .map(|n| (n, broker.entry(n)))
        .map(|(n, addr)| async move {
            let user = format!("idle-{run}-{n}");
            let login = get_online(kind, addr, source(n, sources), &user);
            match tokio::time::timeout(ONLINE_TIMEOUT, login).await {
                Ok(Ok(connection)) => connection,
                _ => None,
            }
        })
        .buffer_unordered(flags.concurrency)
        .collect()
        .await;
    let held = connections.iter().filter(|c| c.is_some()).count();
    if held == 0 {
        bail!("no user got online");
    }
    Ok(Users {
        held,
        _connections: connections,
    })
}

/// The `n`th user's source address: 127.0.1.1, 127.0.1.2, … round robin.
fn source(n: usize, sources: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + (n % sources.max(1)) as u8))
}

/// Connects from `source`, subscribes to `user`'s inbox and registers where the broker
/// answers registers; the open connection once online (`None`: refused).
async fn get_online(
    kind: BrokerKind,
    broker: SocketAddr,
    source: IpAddr,
    user: &str,
) -> anyhow::Result<Option<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let mut stream = socket.connect(broker).await?;
    stream.set_nodelay(true)?;
    let mut connect = Connect::new(format!("peerchat-{user}"));
    connect.keep_alive = KEEP_ALIVE_S;
    let mut subscribe = Subscribe::new(incoming_topic(user), QoS::AtMostOnce);
    subscribe.pkid = 1;
    let mut out = BytesMut::new();
    write(&mut out, &Packet::Connect(connect))?;
    write(&mut out, &Packet::Subscribe(subscribe))?;
    if kind.registers() {
        let register = SignalMessage::Register {
            from: user.to_owned(),
            username: user.to_owned(),
            session: None,
            proof: None,
        };
        let publish = Publish::new(REGISTER_TOPIC, QoS::AtMostOnce, encode(&register));
        write(&mut out, &Packet::Publish(publish))?;
    }
    stream.write_all(&out).await?;
    let mut buffer = BytesMut::with_capacity(512);
    loop {
        match Packet::read(&mut buffer, 64 * 1024) {
            Ok(Packet::SubAck(_)) if !kind.registers() => return Ok(Some(stream)),
            Ok(Packet::Publish(publish)) if kind.registers() => {
                if let Ok(SignalMessage::RegisterAck { success, .. }) = decode(&publish.payload) {
                    return Ok(success.then_some(stream));
                }
            }
            Ok(_) => {}
            Err(mqttbytes::Error::InsufficientBytes(_)) => {
                if stream.read_buf(&mut buffer).await? == 0 {
                    return Ok(None);
                }
            }
            Err(e) => bail!("bad MQTT from the broker: {e:?}"),
        }
    }
}

fn write(out: &mut BytesMut, packet: &Packet) -> anyhow::Result<()> {
    packet
        .write(out, usize::MAX)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}
