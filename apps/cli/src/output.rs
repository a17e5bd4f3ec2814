//! What the CLI prints: human text, or one JSON object per line with `--json`.
//!
//! The JSON shapes are a contract relied on by scripts and tests; add fields, never rename.

use std::io::Write;

use peerchat_core::{ClientError, ClientEvent};
use serde_json::{Value, json};

pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    pub fn connected(&self, user: &str) {
        self.emit(
            json!({"event": "connected", "user": user}),
            format!("* connected as {user}"),
        );
    }

    pub fn sent(&self, peer: &str, error: Option<&ClientError>) {
        let mut value = json!({"event": "sent", "peer": peer, "ok": error.is_none()});
        if let Some(error) = error {
            value["reason"] = Value::from(error.to_string());
        }
        let text = match error {
            None => format!("* sent to {peer}"),
            Some(error) => format!("! not sent to {peer}: {error}"),
        };
        self.emit(value, text);
    }

    pub fn error(&self, message: &str) {
        self.emit(
            json!({"event": "error", "message": message}),
            format!("! {message}"),
        );
    }

    pub fn event(&self, event: &ClientEvent) {
        let Some(value) = event.to_json() else {
            return;
        };
        let text = match event {
            ClientEvent::Message { from, text } => format!("[{from}] {text}"),
            ClientEvent::PeerConnected(peer) => format!("* {peer} connected"),
            ClientEvent::PeerDisconnected(peer) => format!("* {peer} disconnected"),
            ClientEvent::Status { peer, status } => format!("* {peer}: {status}"),
            ClientEvent::Presence { user, online } => {
                format!("* {user} is {}", if *online { "online" } else { "offline" })
            }
            ClientEvent::Signaling(state) => format!("* signaling server: {}", state.as_str()),
            ClientEvent::Error(error) => format!("! {error}"),
            ClientEvent::Registered | ClientEvent::RegistrationRefused(_) => return,
        };
        self.emit(value, text);
    }

    fn emit(&self, value: Value, text: String) {
        let mut stdout = std::io::stdout().lock();
        let line = if self.json { value.to_string() } else { text };
        // A closed stdout (the reader went away) is not worth a panic.
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}
