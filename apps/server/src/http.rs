//! The HTTP side of both ports: MQTT over WebSocket at any path (subprotocol `mqtt`, as the
//! original server accepts it; peerchat's app uses `/mqtt`), a health check, and the web
//! app's files when the server was given a web root.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use peerchat_core::protocol::MAX_MQTT_PACKET_BYTES;
use tracing::warn;

use crate::connection::{ClientInput, ClientOutput, ConnectionContext, serve};
use crate::hub::Hub;
use crate::origin::OriginPolicy;
use crate::static_files::WebRoot;

/// The path peerchat's app opens MQTT-over-WebSocket connections on.
pub const MQTT_PATH: &str = "/mqtt";

/// Largest WebSocket message accepted: a client may pack a few MQTT packets into one message.
const MAX_WS_MESSAGE_BYTES: usize = 4 * MAX_MQTT_PACKET_BYTES;

/// What the HTTP side serves.
pub struct Site<H> {
    pub connections: Arc<ConnectionContext<H>>,
    pub web_root: Option<WebRoot>,
    pub origins: OriginPolicy,
}

/// The client's address, put on each request by the listener.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Every request goes to `answer`: a WebSocket upgrade at any path is MQTT.
pub fn router<H: Hub>(site: Arc<Site<H>>) -> Router {
    Router::new().fallback(answer::<H>).with_state(site)
}

async fn answer<H: Hub>(State(site): State<Arc<Site<H>>>, request: Request<Body>) -> Response {
    let peer = request.extensions().get::<Peer>().map(|p| p.0);
    if is_websocket_upgrade(&request) {
        return mqtt_over_websocket(site, peer, request).await;
    }
    match (request.uri().path(), &site.web_root) {
        ("/healthz", _) => "ok".into_response(),
        (_, Some(root)) => root.serve(request).await,
        (_, None) => StatusCode::NOT_FOUND.into_response(),
    }
}

fn is_websocket_upgrade(request: &Request<Body>) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn mqtt_over_websocket<H: Hub>(
    site: Arc<Site<H>>,
    peer: Option<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let header_text = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let (origin, host) = (header_text(header::ORIGIN), header_text(header::HOST));
    if !site.origins.allows(origin, host) {
        warn!(
            ?origin,
            ?host,
            "WebSocket refused: a page of another site (see --allow-origin)"
        );
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not connect\n",
        )
            .into_response();
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    upgrade
        .protocols(["mqtt"])
        .max_message_size(MAX_WS_MESSAGE_BYTES)
        .max_frame_size(MAX_WS_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            serve(
                &site.connections,
                WsInput(stream),
                WsOutput(sink),
                peer,
                "websocket",
            )
            .await
        })
}

/// MQTT bytes from a browser: the payloads of binary messages, in order.
struct WsInput(SplitStream<WebSocket>);

/// MQTT packets to a browser, one binary message each.
struct WsOutput(SplitSink<WebSocket, Message>);

impl ClientInput for WsInput {
    async fn read_into(&mut self, buffer: &mut BytesMut) -> io::Result<usize> {
        loop {
            match self.0.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(0),
                Some(Err(e)) => return Err(io::Error::other(e)),
                Some(Ok(Message::Binary(bytes))) if !bytes.is_empty() => {
                    buffer.extend_from_slice(&bytes);
                    return Ok(bytes.len());
                }
                Some(Ok(Message::Text(_))) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a text WebSocket message: MQTT travels in binary messages",
                    ));
                }
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_))) => {}
            }
        }
    }
}

impl ClientOutput for WsOutput {
    async fn send(&mut self, packet: Bytes) -> io::Result<()> {
        self.0
            .send(Message::Binary(packet))
            .await
            .map_err(io::Error::other)
    }

    async fn close(&mut self) -> io::Result<()> {
        self.0.close().await.map_err(io::Error::other)
    }
}
