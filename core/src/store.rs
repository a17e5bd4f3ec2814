//! History and the outbox between runs: what the platform stores (SQLite on native,
//! IndexedDB in the browser) keep and hand back, in one shape for both.
//!
//! The machine decides what must be durable ([`crate::machine::StoreOp`]); a store only
//! writes it in order and reads it back on start ([`crate::machine::SavedState`]).

use std::path::PathBuf;

use crate::protocol::MessageId;

/// Where a client keeps its history and outbox between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Storage {
    /// Nothing outlives the process: a restart starts a new run with an empty history.
    #[default]
    Memory,
    /// Native: one SQLite database file (created if missing), used by one client at a time.
    File(PathBuf),
    /// Browser: IndexedDB of the page's origin, one database per username. Where IndexedDB
    /// is unavailable (a private window may refuse it) the client runs in memory.
    Browser,
}

/// One message of a conversation, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub peer: String,
    /// Mine (to `peer`) or the peer's (from `peer`).
    pub outgoing: bool,
    pub text: String,
    /// When it was sent or shown, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Its id in its sender's numbering, when it had one (not from original clients).
    pub id: Option<MessageId>,
    /// Mine, and acknowledged by the peer.
    pub delivered: bool,
}

/// Why a store cannot be used; the client does not start with a store it was asked for
/// and cannot have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the store is in use by another peerchat client; give each client its own store")]
    InUse,
    #[error("{0}")]
    Failed(String),
}
