//! How a client is set up: server, name, ICE servers, local network choices and storage.

use std::path::PathBuf;
use std::time::Duration;

use crate::store::Storage;

/// A STUN or TURN server for ICE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// Everything `connect` needs. [`ClientOptions::new`] gives defaults that work on a LAN.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The signaling server's URL, or several separated by commas (brokers of one cluster):
    /// the first is tried first; on a lost connection the client moves to another.
    pub server_url: String,
    pub username: String,
    /// None by default: on a LAN host candidates suffice, and no traffic leaves for a
    /// third-party server unless the user asks for one.
    pub ice_servers: Vec<IceServer>,
    /// Native only: local UDP addresses to gather host candidates on. `0.0.0.0:0` covers
    /// every interface but loopback, so loopback is listed too for peers on one machine.
    pub bind_addrs: Vec<String>,
    /// Resolve browsers' `<uuid>.local` candidates over multicast DNS (native only).
    pub mdns: bool,
    /// Every chat goes through a TURN server from `ice_servers` (ICE transport policy
    /// `relay`): peers never learn each other's addresses. Off by default, when a direct
    /// path is used if there is one and TURN only when there is none.
    pub relay_only: bool,
    /// How long `connect` may take to reach the server and register.
    pub connect_timeout: Duration,
    /// Native only: the file holding this user's identity key on this device, made on
    /// first start. `None`: `peerchat/<user>.identity` in the user's data directory
    /// (`$XDG_DATA_HOME`, else `~/.local/share`). Browsers keep it in local storage.
    pub identity_file: Option<PathBuf>,
    /// Where history and unacknowledged messages outlive the app; in memory by default.
    pub storage: Storage,
    /// A user who has used this device before (its store holds a session) starts even when
    /// no server answers: offline, with history and outbox, trying as after a lost
    /// connection. Off by default: `connect` then fails with `ServerUnreachable`.
    pub start_offline: bool,
}

impl ClientOptions {
    pub fn new(server_url: impl Into<String>, username: impl Into<String>) -> Self {
        Self {
            server_url: server_url.into(),
            username: username.into(),
            ice_servers: Vec::new(),
            bind_addrs: vec!["0.0.0.0:0".to_owned(), "127.0.0.1:0".to_owned()],
            mdns: true,
            relay_only: false,
            connect_timeout: Duration::from_secs(15),
            identity_file: None,
            storage: Storage::Memory,
            start_offline: false,
        }
    }
}
