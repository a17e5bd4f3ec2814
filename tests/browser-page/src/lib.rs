//! peerchat's browser test page: one peerchat-core web `Client` per page behind a small
//! JavaScript API (`window.peerchat`), so WebDriver tests drive it as an app would.
//!
//! Events are queued with their arrival time (`performance.now()`) in the JSON shapes of
//! `peerchat-cli --json`, so one set of test expectations reads browsers and CLIs alike.
#![cfg(target_arch = "wasm32")]

use std::cell::{Cell, RefCell};

use futures::StreamExt;
use futures::channel::oneshot;
use peerchat_core::json;
use peerchat_core::json::Value;
use peerchat_core::room::RoomId;
use peerchat_core::{Client, ClientEvent, ClientOptions, IceServer, Storage};
use wasm_bindgen::prelude::*;

/// What a page-timed measurement waits for, and where the arrival time goes.
type Waiting<K> = RefCell<Option<(K, oneshot::Sender<f64>)>>;

thread_local! {
    static CLIENT: RefCell<Option<Client>> = const { RefCell::new(None) };
    static EVENTS: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
    static ECHO: Cell<bool> = const { Cell::new(false) };
    /// `pingLoop`'s wait: the peer it pinged and where the echo's arrival time goes.
    static AWAITING_ECHO: Waiting<String> = const { RefCell::new(None) };
    /// `sendFile`'s wait: the file's id and where its delivery time goes.
    static AWAITING_DELIVERY: Waiting<u64> = const { RefCell::new(None) };
}

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: milliseconds, sub-millisecond resolution, for benchmarks.
    #[wasm_bindgen(js_namespace = performance)]
    fn now() -> f64;
}

/// Joins `server_url` (`ws://` or `wss://`) as `username`. `ice_servers_json` is an
/// optional JSON array of `{"urls": [..], "username": .., "credential": ..}`; with
/// `relay_only`, every chat goes through one of them (TURN); with `keep_history`, history
/// and undelivered messages outlive the page (IndexedDB). Rejects with the error's message.
#[wasm_bindgen]
pub async fn connect(
    server_url: String,
    username: String,
    ice_servers_json: Option<String>,
    relay_only: Option<bool>,
    keep_history: Option<bool>,
) -> Result<(), JsValue> {
    if CLIENT.with_borrow(Option::is_some) {
        return Err("this page already holds a client; disconnect it first".into());
    }
    let mut options = ClientOptions::new(server_url, username.as_str());
    if let Some(json) = ice_servers_json {
        options.ice_servers = parse_ice_servers(&json).map_err(|e| JsValue::from_str(&e))?;
    }
    options.relay_only = relay_only.unwrap_or(false);
    if keep_history.unwrap_or(false) {
        options.storage = Storage::Browser;
    }
    let (client, mut events) = Client::connect_with(options)
        .await
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    CLIENT.with_borrow_mut(|slot| *slot = Some(client));
    record(json!({"event": "connected", "user": username}));
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(event) = events.next().await {
            if let Some(mut value) = event.to_json() {
                if let ClientEvent::File { data, .. } = &event {
                    // Whether the bytes are `sendFile`'s pattern, so tests can check them.
                    let intact = data.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8);
                    value["intact"] = Value::from(intact);
                }
                record(value);
            }
            if let ClientEvent::Delivered { id, .. } = &event {
                arrived(&AWAITING_DELIVERY, id);
            }
            if let ClientEvent::Message { from, text } = &event {
                if ECHO.get() {
                    with_client_bool(|client| client.send_message(from, text));
                }
                arrived(&AWAITING_ECHO, from);
            }
        }
    });
    Ok(())
}

/// Starts a chat with `peer`; returns the error's message, or null.
#[wasm_bindgen(js_name = connectToPeer)]
pub fn connect_to_peer(peer: &str) -> JsValue {
    with_client(|client| client.connect_to_peer(peer).err().map(|e| e.to_string()))
}

/// Sends `text` to a connected `peer`; false when it cannot be sent.
#[wasm_bindgen]
pub fn send(peer: &str, text: &str) -> bool {
    with_client_bool(|client| client.send_message(peer, text))
}

/// Sends `text` to a connected `peer` and resolves with its id once it is kept (in
/// IndexedDB with history on): the page may be closed from then on without losing it, as
/// `peerchat-cli` may be killed once it printed `sent`. Rejects with why it was not sent.
#[wasm_bindgen(js_name = sendKept)]
pub async fn send_kept(peer: String, text: String) -> Result<f64, JsValue> {
    let client = CLIENT
        .with_borrow(Option::clone)
        .ok_or("not connected; call connect first")?;
    let id = client
        .try_send_message(&peer, &text)
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    client.stored().await;
    Ok(id as f64)
}

/// Ends the chat with `peer`; returns the error's message, or null.
#[wasm_bindgen(js_name = closePeer)]
pub fn close_peer(peer: &str) -> JsValue {
    with_client(|client| client.close_peer(peer).err().map(|e| e.to_string()))
}

/// Leaves the broker cleanly; the page may `connect` again afterwards.
#[wasm_bindgen]
pub async fn disconnect() {
    let client = CLIENT.with_borrow_mut(Option::take);
    if let Some(client) = client {
        client.disconnect().await;
    }
}

/// Whether every message received is sent straight back to its sender: the far end of
/// round-trip benchmarks, answering without a WebDriver round trip.
#[wasm_bindgen(js_name = setEcho)]
pub fn set_echo(on: bool) {
    ECHO.set(on);
}

/// Round trips timed inside the page, with no WebDriver call between them: sends `n`
/// messages to `peer` (which echoes), each once the previous one came back. Resolves with
/// every round trip in ms.
#[wasm_bindgen(js_name = pingLoop)]
pub async fn ping_loop(peer: String, n: u32) -> Result<Vec<f64>, JsValue> {
    let mut rtts = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (waiter, echoed) = oneshot::channel();
        AWAITING_ECHO.set(Some((peer.clone(), waiter)));
        let start = now();
        if !send(&peer, &format!("ping {i}")) {
            return Err(format!("send to {peer} refused").into());
        }
        let end = echoed
            .await
            .map_err(|_| JsValue::from_str("the client ended while waiting for an echo"))?;
        rtts.push(end - start);
    }
    Ok(rtts)
}

/// Sends `peer` a file of `bytes` bytes (byte `i` is `i % 251`, so the far end can check
/// it) and resolves with the ms until the peer acknowledged all of it.
#[wasm_bindgen(js_name = sendFile)]
pub async fn send_file(peer: String, bytes: u32) -> Result<f64, JsValue> {
    let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    let client = CLIENT
        .with_borrow(Option::clone)
        .ok_or("not connected; call connect first")?;
    let (waiter, delivered) = oneshot::channel();
    let start = now();
    let id = client
        .send_file(&peer, "bulk.bin", "application/octet-stream", &data)
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    AWAITING_DELIVERY.set(Some((id, waiter)));
    let end = delivered
        .await
        .map_err(|_| JsValue::from_str("the client ended before the file was delivered"))?;
    Ok(end - start)
}

/// Creates a group room named `name`; resolves with its id. Its `room_members` event
/// follows, as for any member.
#[wasm_bindgen(js_name = createRoom)]
pub fn create_room(name: &str) -> Result<String, JsValue> {
    let client = CLIENT
        .with_borrow(Option::clone)
        .ok_or("not connected; call connect first")?;
    let room = client
        .create_room(name)
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(room.as_str().to_owned())
}

/// Invites `peer` into `room` (an id from `createRoom` or a `room_members` event); returns
/// the error's message, or null.
#[wasm_bindgen(js_name = inviteToRoom)]
pub fn invite_to_room(room: &str, peer: &str) -> JsValue {
    with_room(room, |client, room| client.invite(room, peer).err())
}

/// Writes `text` into `room`; returns the error's message, or null.
#[wasm_bindgen(js_name = sendToRoom)]
pub fn send_to_room(room: &str, text: &str) -> JsValue {
    with_room(room, |client, room| {
        client.send_room_message(room, text).err()
    })
}

/// [`with_client`] for a call about the room whose id is `room`.
fn with_room(
    room: &str,
    f: impl FnOnce(&Client, &RoomId) -> Option<peerchat_core::ClientError>,
) -> JsValue {
    with_client(|client| match RoomId::parse(room) {
        Some(room) => f(client, &room).map(|e| e.to_string()),
        None => Some(format!("`{room}` is not a room id")),
    })
}

/// The events received since the last call, as a JSON array.
#[wasm_bindgen(js_name = takeEvents)]
pub fn take_events() -> String {
    let events = EVENTS.with_borrow_mut(std::mem::take);
    Value::Array(events).to_string()
}

/// Runs `f` on the page's client (a clone, so no borrow is held across the call) and
/// hands its error message to JavaScript: a string, or null (not undefined) for none.
fn with_client(f: impl FnOnce(&Client) -> Option<String>) -> JsValue {
    let error = match CLIENT.with_borrow(Option::clone) {
        Some(client) => f(&client),
        None => Some("not connected; call connect first".to_owned()),
    };
    error.map_or(JsValue::NULL, |message| JsValue::from_str(&message))
}

/// Runs `f` on the page's client; false when there is none.
fn with_client_bool(f: impl FnOnce(&Client) -> bool) -> bool {
    CLIENT
        .with_borrow(Option::clone)
        .is_some_and(|client| f(&client))
}

/// Tells a `pingLoop` or `sendFile` waiting for `key` that it came, and when.
fn arrived<K: PartialEq + 'static>(waiting: &'static std::thread::LocalKey<Waiting<K>>, key: &K) {
    let waiter = waiting.with_borrow_mut(|slot| slot.take_if(|(k, _)| k == key).map(|(_, w)| w));
    if let Some(waiter) = waiter {
        let _ = waiter.send(now());
    }
}

fn record(mut event: Value) {
    event["t"] = Value::from(now());
    EVENTS.with_borrow_mut(|events| events.push(event));
}

fn parse_ice_servers(json: &str) -> Result<Vec<IceServer>, String> {
    let bad = |why: &str| format!("iceServersJson: {why}");
    let servers = json::parse(json).map_err(|e| bad(&e.to_string()))?;
    let servers = servers.as_array().ok_or_else(|| bad("expected an array"))?;
    servers
        .iter()
        .map(|server| {
            let urls = match &server["urls"] {
                Value::String(url) => vec![url.clone()],
                Value::Array(urls) => urls
                    .iter()
                    .map(|u| u.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| bad("`urls` must hold strings"))?,
                _ => return Err(bad("each server needs `urls`")),
            };
            let text = |key: &str| server[key].as_str().unwrap_or_default().to_owned();
            Ok(IceServer {
                urls,
                username: text("username"),
                credential: text("credential"),
            })
        })
        .collect()
}
