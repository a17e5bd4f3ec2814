//! The gateway: stands between every client connection and the embedded broker, forwarding
//! whole MQTT packets both ways, answering registrations and reporting undeliverable messages.
//!
//! Each client connection gets its own broker connection. Two pumps run per client: the
//! *uplink* (client → broker) reads and inspects every packet; the *downlink* (broker →
//! client) forwards whole frames and writes the gateway's own packets between them.

mod downlink;
mod framing;
mod inject;
mod transport;
mod uplink;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use peerchat_core::protocol::MAX_MQTT_PACKET_BYTES;
use rumqttc::mqttbytes::{
    Protocol,
    v4::{ConnAck, Connect, ConnectReturnCode, Packet},
};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::timeout;
use tracing::{Instrument, debug, info, info_span, warn};

pub use framing::{FrameBuffer, FrameError, parse, serialize};
pub use inject::{OFFLINE_REASON, REGISTERED_TEXT, TAKEN_TEXT};
pub use transport::{ClientInput, ClientOutput, StreamInput, StreamOutput};

use crate::registry::{ConnectionId, Registration, Registry};
use downlink::downlink;
use uplink::Uplink;

/// How long a new connection may take to send CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client refused a name keeps its connection, so the refusal reaches it before
/// the close does.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);

/// How long a connection that is ending on purpose waits for the broker to finish its side.
const CLOSING_GRACE: Duration = Duration::from_secs(2);

/// Extra room on the broker → client limit: a publish the broker upgrades to the subscriber's
/// QoS gains a 2-byte packet id, and must not cost the subscriber its connection.
const BROKER_FRAME_SLACK: usize = 64;

/// Injected packets waiting for the downlink.
const INJECT_QUEUE: usize = 64;

/// Client ids rumqttd drops a connection for (without an answer).
const FORBIDDEN_CLIENT_ID_CHARS: [char; 4] = ['+', '$', '#', '/'];

/// The gateway shared by every client connection.
pub struct Gateway {
    broker: SocketAddr,
    /// Each client is held to its [`crate::acl::Acl`]; off only for an open broker.
    rules: bool,
    next_connection: AtomicU64,
    shared: Mutex<Shared>,
}

#[derive(Default)]
struct Shared {
    registry: Registry,
    /// Rung to close a connection whose name another connection of its session took over.
    closers: HashMap<ConnectionId, Arc<Notify>>,
}

/// Why a client connection ended, when nothing went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    ClientClosed,
    ClientDisconnected,
    BrokerClosed,
    TakenOver,
    Refused,
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ClientClosed => "the client closed the connection",
            Self::ClientDisconnected => "the client disconnected",
            Self::BrokerClosed => "the broker closed the connection",
            Self::TakenOver => "a newer connection of the same session took the name over",
            Self::Refused => "the client asked for a name in use",
        })
    }
}

/// Why a client connection was cut.
#[derive(Debug, Error)]
enum SessionError {
    #[error("no CONNECT within {0:?}")]
    ConnectTimeout(Duration),
    #[error("the connection closed before CONNECT")]
    ClosedBeforeConnect,
    #[error("the first packet is not CONNECT: {0:?}")]
    NotConnect(Box<Packet>),
    #[error("the client asked for MQTT 5; this server speaks MQTT 3.1.1")]
    NotMqtt311,
    #[error("client id {0:?} is empty or holds '+', '$', '#' or '/' and the session is not clean")]
    BadClientId(String),
    #[error("a second CONNECT on one connection")]
    SecondConnect,
    #[error("client sent bad MQTT: {0}")]
    ClientFrame(#[source] FrameError),
    #[error("broker sent bad MQTT: {0}")]
    BrokerFrame(#[source] FrameError),
    #[error("client connection failed: {0}")]
    Client(#[source] io::Error),
    #[error("broker connection failed: {0}")]
    Broker(#[source] io::Error),
}

impl Gateway {
    /// A gateway in front of the broker listening on `broker` (loopback).
    pub fn new(broker: SocketAddr) -> Arc<Self> {
        Self::with_rules(broker, true)
    }

    /// A gateway that holds clients to their access rules (`rules`), or lets them do
    /// anything a plain broker allows.
    pub fn with_rules(broker: SocketAddr, rules: bool) -> Arc<Self> {
        Arc::new(Self {
            broker,
            rules,
            next_connection: AtomicU64::new(1),
            shared: Mutex::default(),
        })
    }

    /// Serves one client connection until it ends; never fails, logs why it ended.
    pub async fn serve<I: ClientInput, O: ClientOutput>(
        self: Arc<Self>,
        input: I,
        output: O,
        peer: SocketAddr,
        transport: &'static str,
    ) {
        let id = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let span = info_span!("client", connection = id, %peer, transport);
        async move {
            debug!("connection opened");
            match self.session(id, input, output).await {
                Ok(end) => info!("connection closed: {end}"),
                Err(error) => warn!("connection cut: {error}"),
            }
        }
        .instrument(span)
        .await
    }

    async fn session<I: ClientInput, O: ClientOutput>(
        &self,
        id: ConnectionId,
        mut input: I,
        mut output: O,
    ) -> Result<SessionEnd, SessionError> {
        let mut from_client = FrameBuffer::new(MAX_MQTT_PACKET_BYTES);
        let first = timeout(CONNECT_TIMEOUT, first_packet(&mut input, &mut from_client))
            .await
            .map_err(|_| SessionError::ConnectTimeout(CONNECT_TIMEOUT))??;
        let connect = match broker_connect(id, first) {
            Ok(connect) => connect,
            Err(refusal) => {
                if let Some(code) = refusal.connack_code() {
                    let connack = Packet::ConnAck(ConnAck::new(code, false));
                    if let Ok(bytes) = serialize(&connack) {
                        output.send(bytes).await.ok();
                    }
                    output.close().await.ok();
                }
                return Err(refusal);
            }
        };

        let will = (connect.last_will.as_ref()).map(|w| (w.topic.clone(), w.message.to_vec()));
        let broker = TcpStream::connect(self.broker)
            .await
            .map_err(SessionError::Broker)?;
        broker.set_nodelay(true).ok();
        let (broker_read, mut broker_write) = broker.into_split();
        let connect_bytes =
            serialize(&Packet::Connect(connect)).map_err(SessionError::ClientFrame)?;
        broker_write
            .write_all(&connect_bytes)
            .await
            .map_err(SessionError::Broker)?;

        let closer = Arc::new(Notify::new());
        let _enrolment = self.enrol(id, closer.clone());
        let (to_client, commands) = mpsc::channel(INJECT_QUEUE);
        let uplink = Uplink::new(self, id, &to_client, will);
        let mut uplink = pin!(uplink.run(input, from_client, broker_write, &closer));
        let mut downlink = pin!(downlink(broker_read, output, commands));
        tokio::select! {
            end = &mut downlink => end,
            end = &mut uplink => {
                // The client is gone: its name is free now, not after the broker's goodbye.
                self.release_name(id);
                let end = end?;
                if matches!(end, SessionEnd::ClientDisconnected | SessionEnd::TakenOver) {
                    // The broker closes after DISCONNECT; let the client have what it still sent.
                    timeout(CLOSING_GRACE, &mut downlink).await.ok();
                }
                Ok(end)
            }
        }
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        // The bookkeeping stays consistent even if a holder panicked: every update is one call.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the connection reachable for takeovers until the returned value drops, which also
    /// frees the name it registered.
    fn enrol(&self, id: ConnectionId, closer: Arc<Notify>) -> Enrolment<'_> {
        self.shared().closers.insert(id, closer);
        Enrolment { gateway: self, id }
    }

    fn register(&self, id: ConnectionId, name: &str, session: Option<&str>) -> Registration {
        let mut shared = self.shared();
        let outcome = shared.registry.register(id, name, session);
        if let Registration::TookOver { previous } = outcome
            && let Some(closer) = shared.closers.get(&previous)
        {
            closer.notify_one();
        }
        outcome
    }

    fn release_name(&self, id: ConnectionId) {
        if let Some(name) = self.shared().registry.release(id) {
            info!(user = %name, "name freed");
        }
    }

    fn undeliverable(&self, sender: ConnectionId, target: &str) -> Option<String> {
        self.shared()
            .registry
            .undeliverable(sender, target)
            .map(str::to_owned)
    }
}

/// A connection's place in the gateway's bookkeeping; dropping it frees the name.
struct Enrolment<'a> {
    gateway: &'a Gateway,
    id: ConnectionId,
}

impl Drop for Enrolment<'_> {
    fn drop(&mut self) {
        self.gateway.shared().closers.remove(&self.id);
        self.gateway.release_name(self.id);
    }
}

impl SessionError {
    /// The CONNACK code that tells the client why its CONNECT was refused, if any applies.
    fn connack_code(&self) -> Option<ConnectReturnCode> {
        match self {
            Self::NotMqtt311 => Some(ConnectReturnCode::RefusedProtocolVersion),
            Self::BadClientId(_) => Some(ConnectReturnCode::BadClientId),
            _ => None,
        }
    }
}

async fn first_packet<I: ClientInput>(
    input: &mut I,
    frames: &mut FrameBuffer,
) -> Result<Packet, SessionError> {
    loop {
        if let Some(frame) = frames.next_frame().map_err(SessionError::ClientFrame)? {
            return parse(&frame).map_err(SessionError::ClientFrame);
        }
        let read = input
            .read_into(frames.read_buffer())
            .await
            .map_err(SessionError::Client)?;
        if read == 0 {
            return Err(SessionError::ClosedBeforeConnect);
        }
    }
}

/// The CONNECT the broker sees for the client's first packet.
///
/// A clean-session client gets a client id of its own (`peerchat-gw-<connection>`): the
/// original client uses the username as client id, and rumqttd drops the older of two
/// connections with one id, so a second user trying a taken name would otherwise cut the
/// owner off before the gateway could refuse the name. (It would also fire the newcomer's
/// last will on the owner's behalf.) Names are the registry's business instead. A persistent
/// session keeps its id: the broker finds the session by it.
fn broker_connect(id: ConnectionId, first: Packet) -> Result<Connect, SessionError> {
    let Packet::Connect(mut connect) = first else {
        return Err(SessionError::NotConnect(Box::new(first)));
    };
    if connect.protocol != Protocol::V4 {
        return Err(SessionError::NotMqtt311);
    }
    info!(client_id = %connect.client_id, clean_session = connect.clean_session, "client connected");
    if connect.clean_session {
        connect.client_id = format!("peerchat-gw-{id}");
    } else if connect.client_id.is_empty() || connect.client_id.contains(FORBIDDEN_CLIENT_ID_CHARS)
    {
        return Err(SessionError::BadClientId(connect.client_id));
    }
    Ok(connect)
}

#[cfg(test)]
mod tests;
