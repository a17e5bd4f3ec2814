//! `peerchat-server`: the signaling server binary. Flags, logging and signals live here;
//! everything else is in the library (`peerchat_server`).

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use peerchat_server::{Server, ServerOptions, http::MQTT_PATH};
use tracing::info;
use tracing_subscriber::EnvFilter;

/// Log filter used when neither --log nor RUST_LOG is given. rumqttd logs every connection
/// at info and ordinary disconnects as errors, so it stays quiet unless asked for; the
/// gateway logs each connection's fate itself.
const DEFAULT_LOG: &str = "info,rumqttd=off";

/// peerchat's signaling server: an MQTT 3.1.1 broker for peerchat clients (and the original
/// JavaScript client) that answers `register` and reports messages to offline users.
#[derive(Debug, Parser)]
#[command(version, long_about = None)]
struct Flags {
    /// Address for MQTT over plain TCP (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:1883")]
    mqtt_addr: SocketAddr,

    /// Address for HTTP: MQTT over WebSocket on /mqtt (subprotocol `mqtt`) and /healthz
    /// (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,

    /// Directory of a web build to serve on the HTTP port (index.html at `/`).
    #[arg(long, value_name = "DIR")]
    web_root: Option<std::path::PathBuf>,

    /// Log filter in tracing's EnvFilter syntax, e.g. `debug` or `info,rumqttd=warn` (the
    /// embedded broker reports ordinary disconnects as errors, so it is off by default)
    /// [default: $RUST_LOG, else "info,rumqttd=off"].
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,

    /// No per-client rules: any client may read and write any topic, at any rate, as on a
    /// plain broker. For benchmarks that measure the broker alone; never for users.
    #[arg(long)]
    open_broker: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    init_logging(flags.log.as_deref())?;
    let shutdown = shutdown_signal()?;

    let server = Server::start(ServerOptions {
        mqtt_addr: flags.mqtt_addr,
        http_addr: flags.http_addr,
        web_root: flags.web_root,
        open_broker: flags.open_broker,
    })
    .await
    .context("could not start peerchat-server")?;

    let (mqtt, http) = (server.mqtt_addr(), server.http_addr());
    info!("listening for MQTT on {mqtt}");
    info!("listening for HTTP and MQTT-over-WebSocket on http://{http} ({MQTT_PATH})");
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
