//! One browser WebSocket carrying MQTT (subprotocol `mqtt`, binary frames): its events go
//! to the signaling task as [`SocketEvent`]s, and its JS callbacks live exactly as long as it.

use futures::channel::mpsc;
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

use super::describe_js_error;

/// The WebSocket subprotocol MQTT brokers answer to.
const MQTT_SUBPROTOCOL: &str = "mqtt";

/// The WebSocket close code for a deliberate, clean close.
const NORMAL_CLOSURE: u16 = 1000;

/// What the WebSocket reports.
#[derive(Debug)]
pub(super) enum SocketEvent {
    Open,
    Binary(Vec<u8>),
    /// A text (or otherwise non-binary) message, which MQTT over WebSocket forbids.
    NotBinary,
    /// Browsers give no detail here; the close event that follows says more.
    Error,
    Closed {
        code: u16,
        reason: String,
    },
}

/// A WebSocket and the callbacks it calls. Dropping it detaches them and closes the socket,
/// so nothing is leaked per connection attempt.
pub(super) struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(Event)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Starts opening a WebSocket to `url`; `Err` when the browser refuses the URL at once.
    pub fn open(url: &str, events: mpsc::UnboundedSender<SocketEvent>) -> Result<Self, String> {
        let ws = WebSocket::new_with_str(url, MQTT_SUBPROTOCOL).map_err(|error| {
            format!(
                "could not open a WebSocket to {url}: {}",
                describe_js_error(&error)
            )
        })?;
        ws.set_binary_type(BinaryType::Arraybuffer);

        let tx = events.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            let _ = tx.unbounded_send(SocketEvent::Open);
        });
        let tx = events.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let _ = tx.unbounded_send(message_event(&event));
        });
        let tx = events.clone();
        let on_error = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            let _ = tx.unbounded_send(SocketEvent::Error);
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            let _ = events.unbounded_send(SocketEvent::Closed {
                code: event.code(),
                reason: event.reason(),
            });
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Self {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_error: on_error,
            _on_close: on_close,
        })
    }

    /// Queues one binary message; `Err` when the socket is not open.
    pub fn send(&self, bytes: &[u8]) -> Result<(), String> {
        self.ws
            .send_with_u8_array(bytes)
            .map_err(|error| describe_js_error(&error))
    }

    /// Starts the closing handshake; messages already sent go out first.
    pub fn close(&self) {
        let _ = self.ws.close_with_code(NORMAL_CLOSURE);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onerror(None);
        self.ws.set_onclose(None);
        if matches!(
            self.ws.ready_state(),
            WebSocket::CONNECTING | WebSocket::OPEN
        ) {
            let _ = self.ws.close_with_code(NORMAL_CLOSURE);
        }
    }
}

fn message_event(event: &MessageEvent) -> SocketEvent {
    match event.data().dyn_into::<ArrayBuffer>() {
        Ok(buffer) => SocketEvent::Binary(Uint8Array::new(&buffer).to_vec()),
        Err(_) => SocketEvent::NotBinary,
    }
}
