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

/// The scenario every store must keep across a reopen; each platform's tests write it and
/// check what comes back, so the two stores are held to one contract (Android keeps none yet).
#[cfg(all(test, not(target_os = "android")))]
pub(crate) mod contract {
    use super::StoredMessage;
    use crate::machine::{SavedState, StoreOp};

    /// Bob's run numbers from 1; he sends Alice three messages, she acknowledges the first,
    /// and one of hers (her run's #7) is shown.
    pub fn writes() -> Vec<StoreOp> {
        let sent = |id, text: &str| StoreOp::Sent {
            peer: "alice".into(),
            id,
            text: text.into(),
            awaiting_ack: true,
        };
        vec![
            StoreOp::Numbering {
                run: "run-1".into(),
                next_message: 1,
            },
            sent(1, "one"),
            sent(2, "two"),
            sent(3, "three"),
            StoreOp::Acknowledged {
                peer: "alice".into(),
                upto: 1,
            },
            StoreOp::Received {
                peer: "alice".into(),
                text: "hi bob".into(),
                numbering: Some(("alice-run".into(), 7)),
            },
        ]
    }

    /// What a store reopened after [`writes`] must hand back.
    pub fn check_saved(saved: &SavedState) {
        assert_eq!(saved.run, "run-1");
        assert_eq!(saved.next_message, 4);
        assert_eq!(
            saved.outbox["alice"],
            vec![(2, "two".to_owned()), (3, "three".to_owned())]
        );
        assert_eq!(saved.received["alice"], ("alice-run".to_owned(), 7));
    }

    /// The conversation with Alice after [`writes`]: the last three (`last`), and all.
    pub fn check_history(last: &[StoredMessage], all: &[StoredMessage]) {
        let texts: Vec<_> = last.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["two", "three", "hi bob"]);
        assert!(!last[2].outgoing && last[2].at_ms > 0);
        assert!(all[0].delivered && !all[1].delivered);
    }
}
