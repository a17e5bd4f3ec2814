//! Accepting connections. Both ports speak everything: a connection whose first byte is an
//! MQTT CONNECT is MQTT over TCP; anything else is HTTP (the app, the health check, or MQTT
//! over WebSocket at any path). So original clients built for `ws://host:1883` connect
//! unchanged, and one port can serve a whole deployment. With a certificate, every
//! connection is TLS first, and the same choice is made inside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bytes::BytesMut;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::admission::Admission;
use crate::connection::{ConnectionContext, StreamInput, StreamOutput, TcpInput, TcpOutput, serve};
use crate::http::Peer;
use crate::hub::Hub;
use crate::tls::Rewound;

/// The first byte of an MQTT CONNECT packet.
const CONNECT_BYTE: u8 = 0x10;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// How long an HTTP client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What every accepted connection is served with.
pub struct Listening<H> {
    pub connections: Arc<ConnectionContext<H>>,
    pub http: Router,
    pub admission: Arc<Admission>,
    /// Every connection is TLS when set.
    pub tls: Option<TlsAcceptor>,
}

/// Accepts connections on `listener` forever.
pub async fn accept<H: Hub>(listener: TcpListener, listening: Arc<Listening<H>>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let Some(ticket) = listening.admission.admit(peer.ip()) else {
                    drop(stream);
                    continue;
                };
                let listening = listening.clone();
                tokio::spawn(async move {
                    listening.handle(stream, peer).await;
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

impl<H: Hub> Listening<H> {
    async fn handle(&self, stream: TcpStream, peer: SocketAddr) {
        stream.set_nodelay(true).ok();
        let mut first = [0u8; 1];
        let wait = self.connections.limits.connect_timeout;
        match (timeout(wait, stream.peek(&mut first)).await, &self.tls) {
            (Ok(Ok(1)), None) if first[0] == CONNECT_BYTE => {
                let (read, write) = stream.into_split();
                serve(
                    &self.connections,
                    TcpInput(read),
                    TcpOutput(write),
                    peer,
                    "tcp",
                )
                .await;
            }
            (Ok(Ok(1)), None) => self.serve_http(stream, peer).await,
            (Ok(Ok(1)), Some(tls)) if first[0] == TLS_HANDSHAKE_BYTE => {
                self.serve_tls(tls, stream, peer).await
            }
            (Ok(Ok(1)), Some(_)) => debug!(%peer, "not TLS, on a server that speaks only TLS"),
            (Ok(_), _) => debug!(%peer, "closed before sending anything"),
            (Err(_), _) => debug!(%peer, "sent nothing within {wait:?}"),
        }
    }

    /// A TLS connection: the handshake, then MQTT or HTTP inside it, by its first byte.
    async fn serve_tls(&self, tls: &TlsAcceptor, stream: TcpStream, peer: SocketAddr) {
        let wait = self.connections.limits.connect_timeout;
        let mut stream = match timeout(wait, tls.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => return debug!(%peer, "no TLS handshake within {wait:?}"),
        };
        let mut first = BytesMut::with_capacity(1024);
        match timeout(wait, stream.read_buf(&mut first)).await {
            Ok(Ok(1..)) => {}
            _ => return debug!(%peer, "nothing sent over TLS"),
        }
        let mqtt = first[0] == CONNECT_BYTE;
        let stream = Rewound::new(first.freeze(), stream);
        if mqtt {
            let (read, write) = tokio::io::split(stream);
            let (input, output) = (StreamInput(read), StreamOutput(write));
            serve(&self.connections, input, output, peer, "tls").await;
        } else {
            self.serve_http(stream, peer).await;
        }
    }

    async fn serve_http<S>(&self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service =
            self.http
                .clone()
                .map_request(move |mut request: hyper::Request<Incoming>| {
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
}
