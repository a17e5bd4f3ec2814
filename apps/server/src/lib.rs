//! peerchat's signaling server: an MQTT 3.1.1 server of its own for peerchat's protocol,
//! over TCP and WebSocket, that answers registrations, binds names to identity keys, keeps
//! presence and reports undeliverable messages.
//!
//! Layout: the [`listener`] accepts connections on both ports (MQTT over TCP, HTTP and MQTT
//! over WebSocket, told apart by their first byte) after [`admission`]; each MQTT client is
//! a [`connection`] (a sans-IO state machine that allows only what the protocol needs, and
//! its pump); the [`hub`] routes messages between connections and keeps names and presence;
//! [`http`] serves the WebSocket endpoint, the health check and the web app. Every bound is
//! in [`limits`].

pub mod admission;
pub mod connection;
pub mod http;
pub mod hub;
pub mod limits;
pub mod listener;
pub mod origin;
pub mod packets;
pub mod static_files;
pub mod tls;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::warn;

use crate::admission::Admission;
use crate::connection::ConnectionContext;
use crate::http::Site;
use crate::hub::{ClusterError, ClusterHub, ClusterOptions, Hub, LocalHub};
use crate::limits::Limits;
use crate::listener::Listening;
use crate::origin::OriginPolicy;

/// Where the server listens and what it keeps.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// MQTT over TCP (and HTTP, told apart by the first byte).
    pub mqtt_addr: SocketAddr,
    /// HTTP: the app, `/healthz`, MQTT over WebSocket at any path (and MQTT over TCP).
    pub http_addr: SocketAddr,
    /// A web build to serve on the HTTP port (the chat app), if any.
    pub web_root: Option<PathBuf>,
    /// Where name bindings (name → identity key) are kept across restarts; in memory only
    /// if `None`.
    pub data_dir: Option<PathBuf>,
    /// Name bindings unused this long are forgotten.
    pub binding_lifetime: Duration,
    /// NATS servers of a cluster to join as one gateway of many (names and routing live
    /// there, not here); empty: this process is the whole server ([`LocalHub`]).
    pub cluster: Vec<String>,
    /// How many NATS nodes keep a copy of the names bucket, in cluster mode.
    pub cluster_replicas: usize,
    /// Prefix of the cluster's subjects and bucket for this community, in cluster mode.
    pub cluster_namespace: String,
    /// Which web pages may open WebSocket connections.
    pub origins: OriginPolicy,
    pub limits: Limits,
    /// TLS on both ports (HTTPS, WSS, MQTT over TLS), when given a certificate.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Why the server could not start or stopped.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("could not listen for {what} on {addr}: {source} (is another server using the port?)")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: io::Error,
    },
    #[error("could not use the data directory {dir}: {source}")]
    DataDir { dir: PathBuf, source: io::Error },
    #[error("could not join the cluster: {0}")]
    Cluster(#[from] ClusterError),
    #[error("a listener task failed: {0}")]
    ListenerTask(String),
}

/// Which hub the server's connections share: its own, or a cluster's.
enum AnyHub {
    Local(Arc<LocalHub>),
    Cluster(Arc<ClusterHub>),
}

/// A started server; it runs until [`Server::run`]'s shutdown signal.
pub struct Server {
    mqtt_addr: SocketAddr,
    http_addr: SocketAddr,
    hub: AnyHub,
    listeners: JoinSet<()>,
}

impl Server {
    /// Loads what the data directory keeps (or joins the cluster), then binds both
    /// listeners (port 0 picks a free port).
    pub async fn start(options: ServerOptions) -> Result<Self, ServerError> {
        let hub = if options.cluster.is_empty() {
            AnyHub::Local(local_hub(&options)?)
        } else {
            if options.data_dir.is_some() {
                warn!("--data-dir is not used with --cluster: the cluster keeps the names");
            }
            AnyHub::Cluster(
                ClusterHub::join(ClusterOptions {
                    servers: options.cluster.clone(),
                    replicas: options.cluster_replicas,
                    binding_lifetime: options.binding_lifetime,
                    namespace: options.cluster_namespace.clone(),
                })
                .await?,
            )
        };
        let mqtt = bind("MQTT", options.mqtt_addr).await?;
        let web = bind("HTTP", options.http_addr).await?;
        let mqtt_addr = local_addr("MQTT", &mqtt, options.mqtt_addr)?;
        let http_addr = local_addr("HTTP", &web, options.http_addr)?;
        let listeners = match &hub {
            AnyHub::Local(hub) => listen(hub.clone(), options, [mqtt, web]),
            AnyHub::Cluster(hub) => listen(hub.clone(), options, [mqtt, web]),
        };
        Ok(Self {
            mqtt_addr,
            http_addr,
            hub,
            listeners,
        })
    }

    /// The bound MQTT address (the real port when 0 was asked for).
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt_addr
    }

    /// The bound HTTP address (the real port when 0 was asked for).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// How many names are held right now (through this gateway, in a cluster).
    pub fn online(&self) -> usize {
        match &self.hub {
            AnyHub::Local(hub) => hub.online(),
            AnyHub::Cluster(hub) => hub.online(),
        }
    }

    /// Serves until `shutdown` completes (then returns `Ok`). Open client connections are
    /// dropped with the runtime.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        tokio::select! {
            () = shutdown => Ok(()),
            Some(ended) = self.listeners.join_next() => Err(ServerError::ListenerTask(
                ended.err().map_or_else(|| "a listener returned".to_owned(), |e| e.to_string()),
            )),
        }
    }
}

fn local_hub(options: &ServerOptions) -> Result<Arc<LocalHub>, ServerError> {
    if let Some(dir) = &options.data_dir {
        std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
            dir: dir.clone(),
            source,
        })?;
    } else {
        warn!("no --data-dir: names are bound to identity keys in memory only, until a restart");
    }
    LocalHub::new(options.data_dir.clone(), options.binding_lifetime).map_err(|source| {
        ServerError::DataDir {
            dir: options.data_dir.clone().unwrap_or_default(),
            source,
        }
    })
}

/// Serves both listeners' connections through `hub`.
fn listen<H: Hub>(hub: Arc<H>, options: ServerOptions, listeners: [TcpListener; 2]) -> JoinSet<()> {
    let connections = ConnectionContext::new(hub, options.limits);
    let site = Arc::new(Site {
        connections: connections.clone(),
        web_root: options.web_root.map(static_files::WebRoot::new),
        origins: options.origins,
    });
    let listening = Arc::new(Listening {
        connections,
        http: http::router(site),
        admission: Admission::new(&options.limits),
        tls: options.tls.map(TlsAcceptor::from),
    });
    let mut tasks = JoinSet::new();
    for listener in listeners {
        tasks.spawn(listener::accept(listener, listening.clone()));
    }
    tasks
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
