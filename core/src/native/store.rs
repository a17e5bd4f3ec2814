//! The native store: one SQLite database file (WAL, so a write is one append), held
//! exclusively by one client at a time.
//!
//! Writes happen in the turn the machine makes them, before the next action reaches the
//! network, so a process killed right after sending has its message on disk. A failed write
//! is logged and chatting goes on: a full disk must not stop a conversation. A file that is
//! not a readable database (damaged, or not SQLite at all) does not stop the client either:
//! it is kept aside, the user is told, and a new store is started.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use tracing::warn;

use crate::event::ClientError;
use crate::machine::{SavedState, StoreOp};
use crate::room::RoomId;
use crate::store::{Storage, StoreError, StoredMessage};

/// Tables: this client's run and numbering, every message kept (mine awaiting an
/// acknowledgement form the outbox), the last numbered message shown per peer, and the
/// rooms' changes and messages as room frames, in the order kept. Rows
/// carry the username, so one file may serve several accounts (one at a time).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    me TEXT PRIMARY KEY,
    run TEXT NOT NULL,
    next_message INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    me TEXT NOT NULL,
    peer TEXT NOT NULL,
    outgoing INTEGER NOT NULL,
    run TEXT,
    id INTEGER,
    text TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    awaiting_ack INTEGER NOT NULL,
    delivered INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_peer ON messages (me, peer, seq);
CREATE INDEX IF NOT EXISTS outbox ON messages (me, run, id) WHERE awaiting_ack = 1;
CREATE TABLE IF NOT EXISTS received (
    me TEXT NOT NULL,
    peer TEXT NOT NULL,
    run TEXT NOT NULL,
    id INTEGER NOT NULL,
    PRIMARY KEY (me, peer)
);
CREATE TABLE IF NOT EXISTS room_frames (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    me TEXT NOT NULL,
    room TEXT NOT NULL,
    frame TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS room_frames_by_room ON room_frames (me, room, seq);
";

/// A client's store: a database, or nothing (memory only). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Store {
    db: Option<Arc<Database>>,
}

struct Database {
    me: String,
    /// The run being written, for the outbox's rows.
    run: Mutex<String>,
    connection: Mutex<Connection>,
}

impl Store {
    /// Opens the store `storage` names for `me`, with what it saved (`None`: nothing yet,
    /// or memory only), and a notice when an unreadable file was kept aside for a new one.
    pub async fn open(storage: &Storage, me: &str) -> Result<Opened, ClientError> {
        let path = match storage {
            Storage::Memory => return Ok((Self { db: None }, None, None)),
            Storage::Browser => {
                warn!("browser storage asked for on native; history stays in memory");
                return Ok((Self { db: None }, None, None));
            }
            Storage::File(path) => path,
        };
        let location = path.display().to_string();
        let failed = |error| ClientError::Store {
            location: location.clone(),
            error,
        };
        let (connection, saved, notice) = match open_and_load(path, me) {
            Ok((connection, saved)) => (connection, saved, None),
            Err(Unusable::Damaged(reason)) => {
                let kept_aside = set_aside(path).map_err(|e| {
                    failed(StoreError::Failed(format!(
                        "{reason}; it could not be moved aside: {e}"
                    )))
                })?;
                let shown = kept_aside.display();
                warn!(%location, kept_aside = %shown, %reason, "message store unreadable: kept aside");
                let (connection, saved) = open_and_load(path, me).map_err(|e| match e {
                    Unusable::Damaged(reason) => failed(StoreError::Failed(reason)),
                    Unusable::Other(error) => failed(error),
                })?;
                let notice = ClientError::StoreSetAside {
                    location: location.clone(),
                    kept_aside: kept_aside.display().to_string(),
                    reason,
                };
                (connection, saved, Some(notice))
            }
            Err(Unusable::Other(error)) => return Err(failed(error)),
        };
        let run = saved.as_ref().map(|s| s.run.clone()).unwrap_or_default();
        let db = Database {
            me: me.to_owned(),
            run: Mutex::new(run),
            connection: Mutex::new(connection),
        };
        let store = Self {
            db: Some(Arc::new(db)),
        };
        Ok((store, saved, notice))
    }

    /// Whether writes are still landing: never, here (each lands in the turn it is asked).
    pub fn busy(&self) -> bool {
        false
    }

    /// Resolves when every write asked for so far has landed: at once, here.
    pub fn landed(&self) -> std::future::Ready<()> {
        std::future::ready(())
    }

    /// Writes one change; a failure is logged, never returned.
    pub fn apply(&self, op: StoreOp) {
        let Some(db) = &self.db else {
            return;
        };
        if let Err(error) = db.apply(&op) {
            warn!(%error, ?op, "could not write to the message store");
        }
    }

    /// The last `limit` messages with `peer`, oldest first.
    pub async fn history(&self, peer: &str, limit: usize) -> Vec<StoredMessage> {
        let Some(db) = &self.db else {
            return Vec::new();
        };
        match db.history(peer, limit) {
            Ok(messages) => messages,
            Err(error) => {
                warn!(%error, "could not read the message store");
                Vec::new()
            }
        }
    }
}

/// What [`Store::open`] gives: the store, what it saved, and a notice for the user.
pub(crate) type Opened = (Store, Option<SavedState>, Option<ClientError>);

/// Why a store file cannot be used as it is.
enum Unusable {
    /// Not a readable peerchat database: it may be kept aside for a new one.
    Damaged(String),
    /// Anything else (in use, no permission, no space): the client does not start.
    Other(StoreError),
}

/// Opens the database at `path` and reads what `me` saved.
fn open_and_load(path: &Path, me: &str) -> Result<(Connection, Option<SavedState>), Unusable> {
    let classify = |error: rusqlite::Error| match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            Unusable::Damaged(error.to_string())
        }
        _ => Unusable::Other(describe(error)),
    };
    let connection = open_exclusive(path).map_err(classify)?;
    let saved = load(&connection, me).map_err(|error| match error {
        // Rows that do not read as what was written are damage too.
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => Unusable::Damaged(error.to_string()),
        error => classify(error),
    })?;
    Ok((connection, saved))
}

/// Moves `path` (and its WAL and shared-memory files) aside as `<path>.unreadable-<ms>`.
fn set_aside(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let stamp = super::rt::wall_ms();
    let with_suffix = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let aside = with_suffix(&format!(".unreadable-{stamp}"));
    std::fs::rename(path, &aside)?;
    for extra in ["-wal", "-shm"] {
        let from = with_suffix(extra);
        if from.exists() {
            let mut to = aside.as_os_str().to_owned();
            to.push(extra);
            let _ = std::fs::rename(&from, to);
        }
    }
    Ok(aside)
}

/// Opens (creating if need be) the database and takes it for this process alone.
fn open_exclusive(path: &Path) -> Result<Connection, rusqlite::Error> {
    let connection = Connection::open(path)?;
    // A client that just left (a logout, then a login under the same name) lets go of the
    // file within moments; a second client running on it does not, and is refused.
    connection.busy_timeout(LOCK_WAIT)?;
    // Exclusive: the lock taken by the first write below is held until the client ends, so
    // two clients never interleave outboxes. NORMAL synchronous in WAL survives a killed
    // process (only a power loss may lose the last writes) and costs no fsync per message.
    let setup = "PRAGMA locking_mode = EXCLUSIVE;
                 PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;";
    connection.execute_batch(setup)?;
    connection.execute_batch(SCHEMA)?;
    // A write, so the exclusive lock is ours even when the schema existed: the schema's
    // version, for a later change of shape.
    connection.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
    Ok(connection)
}

/// How long opening waits for a store another client holds.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// The shape of [`SCHEMA`].
const SCHEMA_VERSION: u32 = 1;

fn describe(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::InUse,
        _ => StoreError::Failed(error.to_string()),
    }
}

/// What `me` saved: `None` when this store has never seen it.
fn load(db: &Connection, me: &str) -> rusqlite::Result<Option<SavedState>> {
    let numbering = db
        .query_row(
            "SELECT run, next_message FROM runs WHERE me = ?1",
            [me],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?)),
        )
        .optional()?;
    let Some((run, next_message)) = numbering else {
        return Ok(None);
    };
    let mut saved = SavedState {
        run,
        next_message,
        ..SavedState::default()
    };
    let mut outbox = db.prepare(
        "SELECT peer, id, text FROM messages
         WHERE me = ?1 AND run = ?2 AND awaiting_ack = 1 ORDER BY id",
    )?;
    let rows = outbox.query_map(params![me, saved.run], |row| {
        Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?))
    })?;
    for row in rows {
        let (peer, id, text) = row?;
        saved.outbox.entry(peer).or_default().push((id, text));
    }
    let mut received = db.prepare("SELECT peer, run, id FROM received WHERE me = ?1")?;
    let rows = received.query_map([me], |row| {
        Ok((row.get::<_, String>(0)?, (row.get(1)?, row.get(2)?)))
    })?;
    for row in rows {
        let (peer, last) = row?;
        saved.received.insert(peer, last);
    }
    let mut rooms = db.prepare("SELECT room, frame FROM room_frames WHERE me = ?1 ORDER BY seq")?;
    let rows = rooms.query_map([me], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?;
    for row in rows {
        let (room, frame) = row?;
        if let Some(room) = RoomId::parse(&room) {
            saved.rooms.entry(room).or_default().push(frame);
        }
    }
    Ok(Some(saved))
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.map_or(0, |d| d.as_millis() as u64)
}

impl Database {
    fn apply(&self, op: &StoreOp) -> rusqlite::Result<()> {
        let mut db = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
        let me = &self.me;
        match op {
            StoreOp::Numbering {
                run: new_run,
                next_message,
            } => {
                *run = new_run.clone();
                db.execute(
                    "INSERT INTO runs (me, run, next_message) VALUES (?1, ?2, ?3)
                     ON CONFLICT (me) DO UPDATE SET run = ?2, next_message =
                        CASE WHEN run = ?2 THEN max(next_message, ?3) ELSE ?3 END",
                    params![me, new_run, next_message],
                )?;
            }
            StoreOp::Sent {
                peer,
                id,
                text,
                awaiting_ack,
            } => {
                let tx = db.transaction()?;
                tx.execute(
                    "INSERT INTO messages
                     (me, peer, outgoing, run, id, text, at_ms, awaiting_ack, delivered)
                     VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7, 0)",
                    params![me, peer, *run, id, text, now_ms(), awaiting_ack],
                )?;
                tx.execute(
                    "UPDATE runs SET next_message = max(next_message, ?2 + 1) WHERE me = ?1",
                    params![me, id],
                )?;
                tx.commit()?;
            }
            StoreOp::Acknowledged { peer, upto } => {
                db.execute(
                    "UPDATE messages SET awaiting_ack = 0, delivered = 1
                     WHERE me = ?1 AND run = ?2 AND peer = ?3 AND awaiting_ack = 1 AND id <= ?4",
                    params![me, *run, peer, upto],
                )?;
            }
            StoreOp::Received {
                peer,
                text,
                numbering,
            } => {
                let (their_run, id) = numbering.clone().unzip();
                let tx = db.transaction()?;
                tx.execute(
                    "INSERT INTO messages
                     (me, peer, outgoing, run, id, text, at_ms, awaiting_ack, delivered)
                     VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, 0, 0)",
                    params![me, peer, their_run, id, text, now_ms()],
                )?;
                if let Some((their_run, id)) = numbering {
                    tx.execute(
                        "INSERT INTO received (me, peer, run, id) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (me, peer) DO UPDATE SET run = ?3, id = ?4",
                        params![me, peer, their_run, id],
                    )?;
                }
                tx.commit()?;
            }
            StoreOp::Room { room, frame } => {
                db.execute(
                    "INSERT INTO room_frames (me, room, frame) VALUES (?1, ?2, ?3)",
                    params![me, room.as_str(), frame],
                )?;
            }
        }
        Ok(())
    }

    fn history(&self, peer: &str, limit: usize) -> rusqlite::Result<Vec<StoredMessage>> {
        let db = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        let mut query = db.prepare(
            "SELECT outgoing, text, at_ms, id, delivered FROM messages
             WHERE me = ?1 AND peer = ?2 ORDER BY seq DESC LIMIT ?3",
        )?;
        let rows = query.query_map(params![self.me, peer, limit as i64], |row| {
            Ok(StoredMessage {
                peer: peer.to_owned(),
                outgoing: row.get(0)?,
                text: row.get(1)?,
                at_ms: row.get(2)?,
                id: row.get(3)?,
                delivered: row.get(4)?,
            })
        })?;
        let mut messages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract;

    fn temp_file(label: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "peerchat-store-{label}-{}-{:x}",
            std::process::id(),
            crate::native::rt::random_u64()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("peerchat.db")
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        futures::executor::block_on(future)
    }

    fn sent(peer: &str, id: u64, text: &str) -> StoreOp {
        StoreOp::Sent {
            peer: peer.into(),
            id,
            text: text.into(),
            awaiting_ack: true,
        }
    }

    #[test]
    fn room_frames_are_read_back_per_room_in_the_order_kept() {
        let path = temp_file("rooms");
        let storage = Storage::File(path.clone());
        let (first, second) = (RoomId::from_random([1; 16]), RoomId::from_random([2; 16]));
        {
            let (store, _, _) = block_on(Store::open(&storage, "bob")).unwrap();
            store.apply(contract::writes().remove(0));
            for (room, frame) in [(&first, "a"), (&second, "x"), (&first, "b")] {
                store.apply(StoreOp::Room {
                    room: room.clone(),
                    frame: frame.into(),
                });
            }
        }
        let (_, saved, _) = block_on(Store::open(&storage, "bob")).unwrap();
        let rooms = saved.expect("bob's state was kept").rooms;
        assert_eq!(rooms[&first], ["a", "b"]);
        assert_eq!(rooms[&second], ["x"]);
        let (_, other, _) = block_on(Store::open(&storage, "carol")).unwrap();
        assert_eq!(other, None, "rooms are kept per user");
    }

    #[test]
    fn what_was_written_is_read_back_after_reopening() {
        let path = temp_file("reopen");
        let storage = Storage::File(path.clone());
        {
            let (store, saved, _) = block_on(Store::open(&storage, "bob")).unwrap();
            assert_eq!(saved, None, "a new file holds nothing");
            for op in contract::writes() {
                store.apply(op);
            }
            // Dropped without any goodbye, as a killed process would.
        }
        let (store, saved, _) = block_on(Store::open(&storage, "bob")).unwrap();
        let saved = saved.expect("bob's state was kept");
        contract::check_saved(&saved);
        let last = block_on(store.history("alice", 3));
        contract::check_history(&last, &block_on(store.history("alice", 10)));
        // Another user of the same file starts afresh.
        drop(store);
        let (_, carol, _) = block_on(Store::open(&storage, "carol")).unwrap();
        assert_eq!(carol, None);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_second_client_on_the_same_file_is_refused() {
        let path = temp_file("exclusive");
        let storage = Storage::File(path.clone());
        let (first, _, _) = block_on(Store::open(&storage, "bob")).unwrap();
        let second = block_on(Store::open(&storage, "bob"));
        assert!(
            matches!(
                second,
                Err(ClientError::Store {
                    error: StoreError::InUse,
                    ..
                })
            ),
            "{:?}",
            second.err()
        );
        drop(first);
        // The file exists now, schema and all: the lock is still taken on opening.
        let (_third, _, _) = block_on(Store::open(&storage, "bob")).unwrap();
        let fourth = block_on(Store::open(&storage, "bob"));
        assert!(
            matches!(
                fourth,
                Err(ClientError::Store {
                    error: StoreError::InUse,
                    ..
                })
            ),
            "{:?}",
            fourth.err()
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn an_unreadable_file_is_kept_aside_said_so_and_a_new_store_started() {
        let path = temp_file("damaged");
        let storage = Storage::File(path.clone());
        {
            let (store, _, _) = block_on(Store::open(&storage, "bob")).unwrap();
            for op in contract::writes() {
                store.apply(op);
            }
        }
        // Damage: the header and first page overwritten, as a bad disk or a stray write would.
        let mut bytes = std::fs::read(&path).unwrap();
        let end = bytes.len().min(4096);
        bytes[..end].fill(0x5a);
        std::fs::write(&path, &bytes).unwrap();
        let (store, saved, notice) = block_on(Store::open(&storage, "bob")).unwrap();
        assert_eq!(saved, None, "a new store holds nothing");
        let Some(ClientError::StoreSetAside { kept_aside, .. }) = notice else {
            panic!("no notice: {notice:?}");
        };
        assert_eq!(std::fs::read(&kept_aside).unwrap(), bytes, "kept as it was");
        // The new store works, and holds what is written to it.
        store.apply(sent("alice", 1, "after"));
        assert_eq!(block_on(store.history("alice", 10)).len(), 1);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn memory_storage_keeps_nothing() {
        let (store, saved, _) = block_on(Store::open(&Storage::Memory, "bob")).unwrap();
        assert_eq!(saved, None);
        store.apply(sent("alice", 1, "lost on exit"));
        assert!(block_on(store.history("alice", 10)).is_empty());
    }
}
