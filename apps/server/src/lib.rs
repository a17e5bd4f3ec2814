//! peerchat's signaling server: an embedded MQTT broker behind a gateway that answers
//! registrations, reachable over MQTT/TCP and MQTT over WebSocket.
//!
//! Layout: [`broker`] starts rumqttd on a private loopback port; [`gateway`] pipes every
//! client connection to it packet by packet, consulting the [`registry`] of usernames and
//! each connection's [`acl`] (what it may read and write);
//! [`http`] holds the WebSocket endpoint and health check. [`Server`] ties them together.

pub mod acl;
pub mod broker;
pub mod gateway;
pub mod http;
pub mod registry;
pub mod static_files;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::broker::BrokerError;
use crate::gateway::{Gateway, StreamInput, StreamOutput};

/// Where the server listens.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// MQTT 3.1.1 over plain TCP.
    pub mqtt_addr: SocketAddr,
    /// HTTP: MQTT over WebSocket on [`http::MQTT_PATH`], and `/healthz`.
    pub http_addr: SocketAddr,
    /// A web build to serve on the HTTP port (the chat app), if any.
    pub web_root: Option<std::path::PathBuf>,
    /// Lets every client read and write any topic, as a plain broker does: no per-client
    /// rules (see [`acl`]). For measuring the broker alone; never for users.
    pub open_broker: bool,
}

/// Why the server could not start or stopped.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("could not listen for {what} on {addr}: {source} (is another server using the port?)")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("the {0} listener stopped: {1}")]
    Listener(&'static str, #[source] io::Error),
    #[error("the embedded broker stopped (see the log above); restart the server")]
    BrokerStopped,
    #[error("a listener task failed: {0}")]
    ListenerTask(String),
}

/// A started server; it runs until [`Server::run`]'s shutdown signal, or until a listener
/// or the embedded broker fails.
pub struct Server {
    mqtt_addr: SocketAddr,
    http_addr: SocketAddr,
    broker_stopped: oneshot::Receiver<()>,
    listeners: JoinSet<Result<(), ServerError>>,
}

impl Server {
    /// Starts the broker, then binds both listeners (port 0 picks a free port).
    pub async fn start(options: ServerOptions) -> Result<Self, ServerError> {
        let broker = broker::start().await?;
        info!(broker = %broker.addr, "embedded broker ready");
        let gateway = Gateway::with_rules(broker.addr, !options.open_broker);

        let mqtt = bind("MQTT", options.mqtt_addr).await?;
        let http = bind("HTTP", options.http_addr).await?;
        let mqtt_addr = local_addr("MQTT", &mqtt, options.mqtt_addr)?;
        let http_addr = local_addr("HTTP", &http, options.http_addr)?;

        let mut listeners = JoinSet::new();
        listeners.spawn(accept_mqtt(mqtt, gateway.clone()));
        let web_root = options.web_root.map(static_files::WebRoot::new);
        let app = http::router(gateway.clone(), web_root)
            .into_make_service_with_connect_info::<SocketAddr>();
        listeners.spawn(async move {
            axum::serve(http, app)
                .await
                .map_err(|e| ServerError::Listener("HTTP", e))
        });

        Ok(Self {
            mqtt_addr,
            http_addr,
            broker_stopped: broker.stopped,
            listeners,
        })
    }

    /// The bound MQTT/TCP address (the real port when 0 was asked for).
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// The bound HTTP address (the real port when 0 was asked for).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Serves until `shutdown` completes (then returns `Ok`), or a listener or the broker
    /// fails. Open client connections are dropped with the runtime.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        tokio::select! {
            () = shutdown => Ok(()),
            _ = &mut self.broker_stopped => Err(ServerError::BrokerStopped),
            Some(ended) = self.listeners.join_next() => match ended {
                Ok(result) => result,
                Err(join) => Err(ServerError::ListenerTask(join.to_string())),
            },
        }
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { what, addr, source })
}

fn local_addr(
    what: &'static str,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, ServerError> {
    listener
        .local_addr()
        .map_err(|source| ServerError::Bind { what, addr, source })
}

async fn accept_mqtt(listener: TcpListener, gateway: Arc<Gateway>) -> Result<(), ServerError> {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(serve_tcp(stream, peer, gateway.clone()));
            }
            // Out of file descriptors and the like: the next accept may well succeed.
            Err(e) => {
                warn!("could not accept an MQTT connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_tcp(stream: TcpStream, peer: SocketAddr, gateway: Arc<Gateway>) {
    stream.set_nodelay(true).ok();
    let (read, write) = stream.into_split();
    gateway
        .serve(StreamInput(read), StreamOutput(write), peer, "tcp")
        .await;
}
