//! The embedded rumqttd broker: routes publishes and keeps retained messages, reachable only
//! by the gateway on a loopback port. Its configuration is built here, in code.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::thread;
use std::time::Duration;

use bytes::BytesMut;
use peerchat_core::protocol::MAX_MQTT_PACKET_BYTES;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Packet};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, timeout};
use tracing::{debug, error};

use crate::gateway::{FrameBuffer, parse, serialize};

/// How long the broker may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the broker could not be started.
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("could not pick a free loopback port for the embedded broker: {0}")]
    NoPort(#[source] io::Error),
    #[error("could not start the embedded broker's thread: {0}")]
    Thread(#[source] io::Error),
    #[error(
        "the embedded broker did not answer on {addr} within {START_TIMEOUT:?} (last error: {last}); \
         another process may have taken the port: start again"
    )]
    NotReady { addr: SocketAddr, last: String },
}

/// The rumqttd configuration: one MQTT 3.1.1 listener on `listen`, nothing else (no console,
/// no metrics, no cluster).
///
/// `RouterConfig::default()` allows zero connections and rumqttd panics on segments under
/// 1 KiB, so every field is set. Each subscription filter keeps a log of the publishes that
/// matched it, in segments; `max_segment_size` × `max_segment_count` bounds that log's memory,
/// and a reader that falls further behind skips ahead. Signaling needs little history, so the
/// bound is modest, yet a segment holds many maximum-size packets.
pub fn config(listen: SocketAddr) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: MAX_MQTT_PACKET_BYTES,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "gateway-v4".to_owned(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 200,
            // 1 MiB × 2 per filter: thousands of signaling messages of backlog. 4 MiB × 4
            // held 16 MiB per busy user: 1 GiB after 10 s of 50 users' load.
            max_segment_size: 8 * MAX_MQTT_PACKET_BYTES,
            max_segment_count: 2,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("gateway".to_owned(), server)])),
        ..Config::default()
    }
}

/// A running embedded broker.
pub struct EmbeddedBroker {
    /// Where the gateway reaches it (loopback).
    pub addr: SocketAddr,
    /// Completes if the broker stops, which it only does when its listener fails.
    pub stopped: oneshot::Receiver<()>,
}

/// Starts the broker on a free loopback port and waits until it answers MQTT there.
///
/// The port is found by binding port 0 and letting it go, so another process could take it
/// in between; that shows as [`BrokerError::NotReady`].
pub async fn start() -> Result<EmbeddedBroker, BrokerError> {
    let addr = free_loopback_port().map_err(BrokerError::NoPort)?;
    let config = config(addr);
    let (stop_signal, stopped) = oneshot::channel();
    thread::Builder::new()
        .name("rumqttd".to_owned())
        .spawn(move || {
            // `start` blocks for as long as the broker's listener thread runs.
            let mut broker = Broker::new(config);
            match broker.start() {
                Ok(()) => error!("the embedded broker's listener stopped"),
                Err(e) => error!("the embedded broker stopped: {e}"),
            }
            stop_signal.send(()).ok();
        })
        .map_err(BrokerError::Thread)?;
    wait_until_ready(addr).await?;
    Ok(EmbeddedBroker { addr, stopped })
}

fn free_loopback_port() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.local_addr()
}

/// Retries an MQTT CONNECT (and a clean DISCONNECT) until the broker accepts one.
async fn wait_until_ready(addr: SocketAddr) -> Result<(), BrokerError> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let last = match timeout(Duration::from_secs(2), probe(addr)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no CONNACK within 2 s".to_owned(),
        };
        if Instant::now() >= deadline {
            return Err(BrokerError::NotReady { addr, last });
        }
        debug!(%addr, "broker not ready yet: {last}");
        sleep(Duration::from_millis(20)).await;
    }
}

async fn probe(addr: SocketAddr) -> io::Result<()> {
    let invalid = |e: crate::gateway::FrameError| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut stream = TcpStream::connect(addr).await?;
    let connect = Packet::Connect(Connect::new("peerchat-gw-probe"));
    stream
        .write_all(&serialize(&connect).map_err(invalid)?)
        .await?;
    let mut frames = FrameBuffer::new(MAX_MQTT_PACKET_BYTES);
    loop {
        if let Some(frame) = frames.next_frame().map_err(invalid)? {
            return match parse(&frame).map_err(invalid)? {
                Packet::ConnAck(ConnAck {
                    code: ConnectReturnCode::Success,
                    ..
                }) => {
                    let disconnect = serialize(&Packet::Disconnect).map_err(invalid)?;
                    stream.write_all(&disconnect).await?;
                    stream.shutdown().await?;
                    // Give the broker a moment to close first, so it reads the DISCONNECT
                    // rather than a reset (which would make it publish a will, were there one).
                    let mut rest = BytesMut::new();
                    timeout(Duration::from_millis(500), async {
                        while matches!(stream.read_buf(&mut rest).await, Ok(n) if n > 0) {
                            rest.clear();
                        }
                    })
                    .await
                    .ok();
                    Ok(())
                }
                other => Err(io::Error::other(format!(
                    "expected a CONNACK, got {other:?}"
                ))),
            };
        }
        if stream.read_buf(frames.read_buffer()).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before CONNACK",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_admits_connections_and_the_largest_packets() {
        let config = config("127.0.0.1:1".parse().unwrap());
        assert!(config.router.max_connections > 0);
        assert!(config.router.max_segment_size >= 8 * MAX_MQTT_PACKET_BYTES);
        assert!(config.router.max_segment_count >= 1);
        let listeners = config.v4.unwrap();
        let settings = &listeners["gateway"].connections;
        assert_eq!(settings.max_payload_size, MAX_MQTT_PACKET_BYTES);
        assert!(settings.dynamic_filters);
        assert!(config.ws.is_none() && config.console.is_none() && config.prometheus.is_none());
    }
}
