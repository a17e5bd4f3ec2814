//! Accepting connections. Both ports speak everything: a connection whose first byte is an
//! MQTT CONNECT is MQTT over TCP; anything else is HTTP (the app, the health check, or MQTT
//! over WebSocket at any path). So original clients built for `ws://host:1883` connect
//! unchanged, and one port can serve a whole deployment.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::admission::Admission;
use crate::connection::{ConnectionContext, TcpInput, TcpOutput, serve};
use crate::http::Peer;
use crate::hub::Hub;

/// The first byte of an MQTT CONNECT packet.
const CONNECT_BYTE: u8 = 0x10;

/// How long an HTTP client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` forever.
pub async fn accept<H: Hub>(
    listener: TcpListener,
    connections: Arc<ConnectionContext<H>>,
    http: Router,
    admission: Arc<Admission>,
) -> Result<(), Infallible> {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Some(ticket) = admission.admit(peer.ip()) else {
                    drop(stream);
                    continue;
                };
                let (connections, http) = (connections.clone(), http.clone());
                tokio::spawn(async move {
                    handle(stream, peer, connections, http).await;
                    drop(ticket);
                });
            }
            // Out of file descriptors and the like: the next accept may well succeed.
            Err(e) => {
                warn!("could not accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle<H: Hub>(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    connections: Arc<ConnectionContext<H>>,
    http: Router,
) {
    stream.set_nodelay(true).ok();
    let mut first = [0u8; 1];
    let wait = connections.limits.connect_timeout;
    match timeout(wait, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == CONNECT_BYTE => {
            let (read, write) = stream.into_split();
            serve(&connections, TcpInput(read), TcpOutput(write), peer, "tcp").await;
        }
        Ok(Ok(1)) => {
            let service = http.map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(Peer(peer));
                request
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades()
                .await;
            if let Err(error) = served {
                debug!(%peer, %error, "HTTP connection ended with an error");
            }
        }
        Ok(_) => debug!(%peer, "closed before sending anything"),
        Err(_) => debug!(%peer, "sent nothing within {wait:?}"),
    }
}
