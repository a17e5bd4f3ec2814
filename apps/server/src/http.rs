//! The HTTP side: MQTT over WebSocket on `/mqtt` (subprotocol `mqtt`), a health check, and
//! the web app's files when the server was given a web root.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use axum::routing::get;
use bytes::{Bytes, BytesMut};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use peerchat_core::protocol::MAX_MQTT_PACKET_BYTES;

use crate::gateway::{ClientInput, ClientOutput, Gateway};
use crate::static_files::WebRoot;

/// The path browsers open MQTT-over-WebSocket connections on.
pub const MQTT_PATH: &str = "/mqtt";

/// Largest WebSocket message accepted: a client may pack a few MQTT packets into one message.
const MAX_WS_MESSAGE_BYTES: usize = 4 * MAX_MQTT_PACKET_BYTES;

/// The HTTP routes. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(gateway: Arc<Gateway>, web_root: Option<WebRoot>) -> Router {
    let router = Router::new()
        .route(MQTT_PATH, get(mqtt_over_websocket))
        .route("/healthz", get(healthz))
        .with_state(gateway);
    match web_root {
        Some(root) => router.fallback(move |request| async move { root.serve(request).await }),
        None => router,
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn mqtt_over_websocket(
    upgrade: WebSocketUpgrade,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    State(gateway): State<Arc<Gateway>>,
) -> Response {
    upgrade
        .protocols(["mqtt"])
        .max_message_size(MAX_WS_MESSAGE_BYTES)
        .max_frame_size(MAX_WS_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let (sink, stream) = socket.split();
            gateway.serve(WsInput(stream), WsOutput(sink), peer, "websocket")
        })
}

/// MQTT bytes from a browser: the payloads of binary messages, in order.
struct WsInput(SplitStream<WebSocket>);

/// MQTT bytes to a browser, one binary message per write.
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
    async fn send(&mut self, bytes: Bytes) -> io::Result<()> {
        self.0
            .send(Message::Binary(bytes))
            .await
            .map_err(io::Error::other)
    }

    async fn close(&mut self) -> io::Result<()> {
        self.0.close().await.map_err(io::Error::other)
    }
}
