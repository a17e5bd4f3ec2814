//! Every bound the server puts on a client, in one place: what an honest peerchat or
//! original client never reaches, and what keeps a hostile one from costing more than a few
//! kilobytes or a fair share of the server's time.

use std::time::Duration;

/// The server's limits. [`Limits::default`] is what `peerchat-server` runs with; a few are
/// flags (see `main.rs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Open connections from one IP address (TCP and WebSocket, both ports); 0: no limit.
    pub connections_per_address: usize,
    /// Open connections in all; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// Time from accepting a connection to its CONNECT.
    pub connect_timeout: Duration,
    /// Time from CONNECT to a successful `register`: a connection that holds no name is not
    /// kept.
    pub register_timeout: Duration,
    /// Longest keep-alive honoured; a client asking for more (or for none, 0) is held to
    /// this, and cut after one and a half times it without a packet.
    pub max_keep_alive: Duration,
    /// Presence records one connection may watch at once (one per contact).
    pub watches_per_connection: usize,
    /// Refused subscriptions and publishes after which a connection is cut: a client that
    /// keeps asking for what it may not have is not a peerchat client.
    pub refusals_per_connection: usize,
    /// Publishes a connection may make per second on average...
    pub publishes_per_second: f64,
    /// ...and at once after a quiet spell (a burst of ICE candidates, a reconnect).
    pub publish_burst: f64,
    /// QoS 2 publishes a client may leave waiting for their PUBREL.
    pub pending_qos2: usize,
    /// Bytes of signaling waiting for a slow client before further messages to it are
    /// dropped (and logged): a client that does not read cannot make the server hold more.
    pub outbox_bytes: usize,
    /// Whether each publish must speak in its client's own name and keep to the rate. Off
    /// only to measure what these checks cost (`--unchecked-senders`); never for users.
    pub check_senders: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections_per_address: 128,
            max_connections: 200_000,
            connect_timeout: Duration::from_secs(10),
            register_timeout: Duration::from_secs(10),
            max_keep_alive: Duration::from_secs(300),
            watches_per_connection: 1024,
            refusals_per_connection: 100,
            publishes_per_second: 200.0,
            publish_burst: 400.0,
            pending_qos2: 32,
            outbox_bytes: 1024 * 1024,
            check_senders: true,
        }
    }
}
