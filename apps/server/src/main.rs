//! `peerchat-server`: the signaling server binary. Flags, logging and signals live here;
//! everything else is in the library (`peerchat_server`).

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use std::time::Duration;

use peerchat_server::limits::Limits;
use peerchat_server::origin::OriginPolicy;
use peerchat_server::{Server, ServerOptions, http::MQTT_PATH};
use tracing::info;
use tracing_subscriber::EnvFilter;

/// Log filter used when neither --log nor RUST_LOG is given.
const DEFAULT_LOG: &str = "info";

/// peerchat's signaling server: an MQTT 3.1.1 server for peerchat clients (and the original
/// JavaScript client) that answers `register`, binds names to identity keys, keeps presence
/// and reports messages to offline users.
#[derive(Debug, Parser)]
#[command(version, long_about = None)]
struct Flags {
    /// Address for MQTT over TCP; it also answers HTTP and MQTT over WebSocket at any path,
    /// as the original server does on its port (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:1883")]
    mqtt_addr: SocketAddr,

    /// Address for HTTP: the app (with --web-root), /healthz, and MQTT over WebSocket at any
    /// path (the app uses /mqtt, subprotocol `mqtt`) (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,

    /// Directory of a web build to serve on the HTTP port (index.html at `/`).
    #[arg(long, value_name = "DIR")]
    web_root: Option<std::path::PathBuf>,

    /// Directory where the server keeps which identity key each name belongs to, across
    /// restarts (created if missing). Without it, names are bound in memory only.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,

    /// Days after which a name whose key has not been used is free again.
    #[arg(long, value_name = "DAYS", default_value_t = 365)]
    name_lifetime_days: u64,

    /// Join a NATS cluster as one gateway of many: a comma list of its servers
    /// (nats://host:port,...; the others are learned from them). Names, presence and
    /// routing then live in the cluster (JetStream on every node), so gateways come and go
    /// freely. Without it the server is self-contained.
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    cluster: Vec<String>,

    /// How many NATS nodes keep a copy of the names bucket (the first gateway creates it;
    /// a majority of them must be up to decide names).
    #[arg(long, value_name = "N", default_value_t = 3)]
    cluster_replicas: usize,

    /// Prefix of the subjects and of the names bucket in the cluster: every gateway of one
    /// community uses the same; other communities may share the cluster under others.
    #[arg(long, value_name = "NAME", default_value = "peerchat")]
    cluster_namespace: String,

    /// A web page origin (e.g. https://chat.example.com) allowed to open WebSocket
    /// connections, besides pages of the server's own host name; repeatable; `*` allows any.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,

    /// Open connections allowed from one IP address (0: no limit).
    #[arg(long, value_name = "N", default_value_t = Limits::default().connections_per_address)]
    max_connections_per_address: usize,

    /// Open connections allowed in all.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,

    /// Longest MQTT keep-alive honoured, in seconds: a client asking for more (or for none)
    /// is cut after one and a half times this without a packet.
    #[arg(long, value_name = "SECONDS", default_value_t = Limits::default().max_keep_alive.as_secs())]
    max_keep_alive: u64,

    /// Publishes one connection may make per second on average (bursts of twice as many).
    #[arg(long, value_name = "N", default_value_t = Limits::default().publishes_per_second)]
    max_publish_rate: f64,

    /// No check that a publish speaks in its client's own name, and no publish rate: for
    /// benchmarks that measure what these checks cost; never for users.
    #[arg(long)]
    unchecked_senders: bool,

    /// A TLS certificate chain (PEM, leaf first): both ports then speak only TLS (HTTPS and
    /// WSS for the app, MQTT over TLS for native clients). Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,

    /// Log filter in tracing's EnvFilter syntax, e.g. `debug` or `info,peerchat_server=debug`
    /// [default: $RUST_LOG, else "info"].
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    init_logging(flags.log.as_deref())?;
    let shutdown = shutdown_signal()?;

    let limits = Limits {
        connections_per_address: flags.max_connections_per_address,
        max_connections: flags.max_connections,
        max_keep_alive: Duration::from_secs(flags.max_keep_alive.max(1)),
        publishes_per_second: flags.max_publish_rate,
        publish_burst: 2.0 * flags.max_publish_rate,
        check_senders: !flags.unchecked_senders,
        ..Limits::default()
    };
    let tls = match (&flags.tls_cert, &flags.tls_key) {
        (Some(cert), Some(key)) => Some(peerchat_server::tls::load(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = Server::start(ServerOptions {
        mqtt_addr: flags.mqtt_addr,
        http_addr: flags.http_addr,
        web_root: flags.web_root,
        data_dir: flags.data_dir,
        binding_lifetime: Duration::from_secs(flags.name_lifetime_days.saturating_mul(86_400)),
        cluster: flags.cluster,
        cluster_replicas: flags.cluster_replicas,
        cluster_namespace: flags.cluster_namespace,
        origins: OriginPolicy::from_flags(&flags.allowed_origins),
        limits,
        tls,
    })
    .await
    .context("could not start peerchat-server")?;

    let (mqtt, http) = (server.mqtt_addr(), server.http_addr());
    info!("listening for MQTT on {mqtt}");
    info!("listening for HTTP and MQTT-over-WebSocket on {scheme}://{http} ({MQTT_PATH})");
    // On stdout for scripts and tests, which need the real ports when port 0 was asked for.
    println!("peerchat-server: mqtt listening on {mqtt}");
    println!("peerchat-server: http listening on {http}");

    server.run(shutdown).await?;
    info!("shutting down");
    Ok(())
}

fn init_logging(flag: Option<&str>) -> anyhow::Result<()> {
    let filter = match flag {
        Some(directives) => EnvFilter::try_new(directives)
            .with_context(|| format!("--log {directives:?} is not a valid log filter"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG)),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

/// Listens for Ctrl-C and, on Unix, SIGTERM, from now on (not from the first poll, so a
/// signal sent as soon as the ports are printed is not lost); completes on the first.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot catch Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            tokio::signal::ctrl_c().await.ok();
        })
    }
}
