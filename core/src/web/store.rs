//! The browser store: IndexedDB of the page's origin, one database per username, held by
//! one tab at a time (a Web Lock), so two tabs never resend one outbox.
//!
//! Writes are started in the turn the machine makes them (IndexedDB runs transactions on
//! the same stores in the order they were created) and committed at once; the store is
//! busy until every one has landed, and the backend holds what follows a write until then
//! (see [`crate::backend`]), so a page closed at any moment has sent nothing it has not
//! kept. A failure is logged. Where IndexedDB is unavailable the client runs in memory.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::select;
use js_sys::{Array, Object, Promise, Reflect};
use tracing::warn;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Event, IdbCursorDirection, IdbCursorWithValue, IdbDatabase, IdbFactory, IdbKeyRange,
    IdbObjectStoreParameters, IdbRequest, IdbTransaction, IdbTransactionMode,
};

use super::describe_js_error;
use crate::event::ClientError;
use crate::machine::{SavedState, StoreOp};
use crate::protocol::MessageId;
use crate::room::RoomId;
use crate::store::{Storage, StoreError, StoredMessage};

/// Bumped when the object stores change shape (`create_schema` then upgrades): 2 added
/// [`ROOM_FRAMES`].
const VERSION: u32 = 2;
/// One record under [`NUMBERING`]: this client's run and next message id.
const RUNS: &str = "runs";
const NUMBERING: &str = "numbering";
/// Every message kept, by an increasing key; indexed by peer and by awaiting an ack.
const MESSAGES: &str = "messages";
const BY_PEER: &str = "by_peer";
const AWAITING: &str = "awaiting";
/// The last numbered message shown per peer, keyed by the peer.
const RECEIVED: &str = "received";
/// Rooms' changes and messages as room frames (`{room, frame}`), by an increasing key: the
/// order kept.
const ROOM_FRAMES: &str = "room_frames";

/// A client's store: a database, or nothing (memory only). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Store {
    db: Option<Rc<Database>>,
    landing: Rc<Landing>,
}

/// Writes started and not yet landed (committed or failed), and who waits for them all.
#[derive(Default)]
struct Landing {
    pending: std::cell::Cell<usize>,
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

impl Landing {
    fn started(&self) {
        self.pending.set(self.pending.get() + 1);
    }

    fn landed(&self) {
        self.pending.set(self.pending.get().saturating_sub(1));
        if self.pending.get() == 0 {
            for waiter in self.waiters.borrow_mut().drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

struct Database {
    db: IdbDatabase,
    /// The run being written, for my messages' records.
    run: RefCell<String>,
    /// Held while the client lives; released when it goes (a new login in this tab may
    /// take the store again).
    _lock: Option<HeldLock>,
}

/// A Web Lock taken for the store; dropping it lets the lock go.
struct HeldLock {
    release: js_sys::Function,
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::UNDEFINED);
    }
}

impl Store {
    /// Opens the store `storage` names for `me`, with what it saved (`None`: nothing yet,
    /// or memory only). Fails only when another tab holds it.
    pub async fn open(
        storage: &Storage,
        me: &str,
    ) -> Result<(Self, Option<SavedState>, Option<ClientError>), ClientError> {
        let memory = Ok((Self::in_memory(), None, None));
        match storage {
            Storage::Memory => return memory,
            Storage::File(path) => {
                warn!(path = %path.display(), "no files in a browser; history stays in memory");
                return memory;
            }
            Storage::Browser => {}
        }
        let name = format!("peerchat-{me}");
        let Ok(lock) = hold_lock(&name).await else {
            return Err(ClientError::Store {
                location: format!("IndexedDB `{name}`"),
                error: StoreError::InUse,
            });
        };
        let opened = async {
            let db = open_database(&name).await?;
            let saved = load(&db).await?;
            Ok::<_, String>((db, saved))
        };
        // An open blocked by an older version held elsewhere would never finish.
        let gave_up = async {
            super::rt::sleep(OPEN_WAIT).await;
            Err(format!("no answer in {OPEN_WAIT:?}"))
        };
        let opened = select(Box::pin(opened), Box::pin(gave_up));
        match opened.await.factor_first().0 {
            Ok((db, saved)) => {
                let run = saved.as_ref().map(|s| s.run.clone()).unwrap_or_default();
                let db = Database {
                    db,
                    run: RefCell::new(run),
                    _lock: lock,
                };
                let store = Self {
                    db: Some(Rc::new(db)),
                    landing: Rc::default(),
                };
                Ok((store, saved, None))
            }
            Err(error) => {
                warn!(%error, "IndexedDB is unavailable; history stays in memory");
                memory
            }
        }
    }

    fn in_memory() -> Self {
        Self {
            db: None,
            landing: Rc::default(),
        }
    }

    /// Starts writing one change; the store is busy until it has landed. A failure is
    /// logged, never returned.
    pub fn apply(&self, op: StoreOp) {
        let Some(db) = &self.db else {
            return;
        };
        let tx = match db.apply(&op) {
            Ok(tx) => tx,
            Err(error) => {
                warn!(error = %describe_js_error(&error), ?op, "could not write to the message store");
                return;
            }
        };
        self.landing.started();
        let landing = self.landing.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(error) = finished(&tx).await {
                warn!(%error, "could not write to the message store");
            }
            landing.landed();
        });
    }

    /// Whether writes are still landing.
    pub fn busy(&self) -> bool {
        self.landing.pending.get() > 0
    }

    /// Resolves when every write started so far has landed.
    pub fn landed(&self) -> impl std::future::Future<Output = ()> + 'static {
        let wait = self.busy().then(|| {
            let (tx, rx) = oneshot::channel();
            self.landing.waiters.borrow_mut().push(tx);
            rx
        });
        async move {
            if let Some(rx) = wait {
                let _ = rx.await;
            }
        }
    }

    /// The last `limit` messages with `peer`, oldest first.
    pub async fn history(&self, peer: &str, limit: usize) -> Vec<StoredMessage> {
        let Some(db) = &self.db else {
            return Vec::new();
        };
        match db.history(peer, limit).await {
            Ok(messages) => messages,
            Err(error) => {
                warn!(%error, "could not read the message store");
                Vec::new()
            }
        }
    }
}

/// How long opening the database may take before the client goes on in memory.
const OPEN_WAIT: Duration = Duration::from_secs(5);

/// How long opening waits for a store another client holds: one that just left (a logout,
/// then a login under the same name) lets go within moments; one running does not.
const LOCK_WAIT_MS: u32 = 3_000;

/// Takes the Web Lock for store `name` until the returned guard is dropped; `Err` when
/// another tab (or client) holds it. A browser without Web Locks cannot tell, and is let
/// through with no guard.
async fn hold_lock(name: &str) -> Result<Option<HeldLock>, ()> {
    let global = js_sys::global();
    let locks = Reflect::get(&global, &"navigator".into())
        .and_then(|navigator| Reflect::get(&navigator, &"locks".into()))
        .ok()
        .filter(|locks| locks.is_object());
    let request = locks.as_ref().and_then(|locks| method(locks, "request"));
    let (Some(locks), Some(request)) = (locks, request) else {
        return Ok(None);
    };
    let (held_tx, held_rx) = oneshot::channel();
    let held_tx = Rc::new(RefCell::new(Some(held_tx)));
    let granted_tx = held_tx.clone();
    let granted = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        let Some(tx) = granted_tx.borrow_mut().take() else {
            return JsValue::UNDEFINED;
        };
        if lock.is_null() {
            let _ = tx.send(None);
            return JsValue::UNDEFINED;
        }
        // The lock is held until this promise settles: when the guard lets it go, or the
        // page goes.
        let mut release = None;
        let held = Promise::new(&mut |resolve, _| release = Some(resolve));
        let _ = tx.send(release);
        held.into()
    });
    // Wait a little for the lock (`AbortSignal.timeout`), or, where that is missing, take
    // it only if it is free.
    let options = Object::new();
    let abort_signal = Reflect::get(&global, &"AbortSignal".into()).ok();
    let timeout = abort_signal.as_ref().and_then(|a| method(a, "timeout"));
    match (abort_signal, timeout) {
        (Some(abort_signal), Some(timeout)) => {
            let signal = timeout.call1(&abort_signal, &LOCK_WAIT_MS.into());
            let _ = Reflect::set(&options, &"signal".into(), &signal.unwrap_or_default());
        }
        _ => {
            let _ = Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
        }
    }
    let lock_name = JsValue::from_str(&format!("{name}-store"));
    let Ok(outcome) = request.call3(&locks, &lock_name, &options, &granted) else {
        return Ok(None);
    };
    // The wait ran out: the request's promise fails (and the callback never runs).
    wasm_bindgen_futures::spawn_local(async move {
        if JsFuture::from(Promise::from(outcome)).await.is_err()
            && let Some(tx) = held_tx.borrow_mut().take()
        {
            let _ = tx.send(None);
        }
    });
    match held_rx.await {
        Ok(Some(release)) => Ok(Some(HeldLock { release })),
        Ok(None) => Err(()),
        Err(_) => Ok(None),
    }
}

/// `object[name]`, if it is a function.
fn method(object: &JsValue, name: &str) -> Option<js_sys::Function> {
    Reflect::get(object, &name.into()).ok()?.dyn_into().ok()
}

/// Waits for one request's outcome. The handlers are removed afterwards, so a request
/// waited for repeatedly (a cursor) leaks nothing.
async fn done(request: &IdbRequest) -> Result<JsValue, String> {
    let (tx, rx) = oneshot::channel();
    let tx = Rc::new(RefCell::new(Some(tx)));
    let (sender, source) = (tx.clone(), request.clone());
    let on_success = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        if let Some(tx) = sender.borrow_mut().take() {
            let _ = tx.send(source.result().map_err(|e| describe_js_error(&e)));
        }
    });
    let source = request.clone();
    let on_error = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        let error = match source.error() {
            Ok(Some(error)) => describe_js_error(&error.into()),
            _ => "unknown IndexedDB error".to_owned(),
        };
        if let Some(tx) = tx.borrow_mut().take() {
            let _ = tx.send(Err(error));
        }
    });
    request.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
    request.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    let outcome = rx
        .await
        .unwrap_or_else(|_| Err("the request was abandoned".to_owned()));
    request.set_onsuccess(None);
    request.set_onerror(None);
    outcome
}

/// Waits until transaction `tx` has committed (`Ok`) or aborted.
async fn finished(tx: &IdbTransaction) -> Result<(), String> {
    let (done, outcome) = oneshot::channel();
    let done = Rc::new(RefCell::new(Some(done)));
    let (on_done, source) = (done.clone(), tx.clone());
    let on_complete = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        if let Some(done) = on_done.borrow_mut().take() {
            let _ = done.send(Ok(()));
        }
    });
    let on_abort = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        let error = match source.error() {
            Some(error) => describe_js_error(&error.into()),
            None => "the transaction was aborted".to_owned(),
        };
        if let Some(done) = done.borrow_mut().take() {
            let _ = done.send(Err(error));
        }
    });
    tx.set_oncomplete(Some(on_complete.as_ref().unchecked_ref()));
    tx.set_onabort(Some(on_abort.as_ref().unchecked_ref()));
    let outcome = outcome
        .await
        .unwrap_or_else(|_| Err("the transaction was abandoned".to_owned()));
    tx.set_oncomplete(None);
    tx.set_onabort(None);
    outcome
}

async fn open_database(name: &str) -> Result<IdbDatabase, String> {
    let factory = Reflect::get(&js_sys::global(), &"indexedDB".into())
        .ok()
        .and_then(|value| value.dyn_into::<IdbFactory>().ok())
        .ok_or("this browser has no IndexedDB")?;
    let request = factory
        .open_with_u32(name, VERSION)
        .map_err(|e| describe_js_error(&e))?;
    let source = request.clone();
    // Fires before success when the database is new (or older): the schema is made then.
    let on_upgrade = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        let created = source
            .result()
            .and_then(|db| create_schema(&db.unchecked_into()));
        if let Err(error) = created {
            warn!(error = %describe_js_error(&error), "could not create the message store");
        }
    });
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let db = done(&request).await;
    request.set_onupgradeneeded(None);
    Ok(db?.unchecked_into())
}

/// Creates the object stores a database of an older version (or a new one) lacks.
fn create_schema(db: &IdbDatabase) -> Result<(), JsValue> {
    let names = Reflect::get(db, &"objectStoreNames".into())?;
    let has = |name: &str| {
        method(&names, "contains")
            .and_then(|contains| contains.call1(&names, &name.into()).ok())
            .is_some_and(|found| found.as_bool() == Some(true))
    };
    if !has(ROOM_FRAMES) {
        let keyed = IdbObjectStoreParameters::new();
        keyed.set_auto_increment(true);
        db.create_object_store_with_optional_parameters(ROOM_FRAMES, &keyed)?;
    }
    if has(RUNS) {
        return Ok(());
    }
    db.create_object_store(RUNS)?;
    let keyed = IdbObjectStoreParameters::new();
    keyed.set_auto_increment(true);
    let messages = db.create_object_store_with_optional_parameters(MESSAGES, &keyed)?;
    messages.create_index_with_str(BY_PEER, "peer")?;
    messages.create_index_with_str(AWAITING, "awaiting_ack")?;
    let by_peer = IdbObjectStoreParameters::new();
    by_peer.set_key_path(&"peer".into());
    db.create_object_store_with_optional_parameters(RECEIVED, &by_peer)?;
    Ok(())
}

/// A plain JS object with these fields.
fn record(fields: &[(&str, JsValue)]) -> Object {
    let object = Object::new();
    for (name, value) in fields {
        let _ = Reflect::set(&object, &JsValue::from_str(name), value);
    }
    object
}

fn text_field(object: &JsValue, name: &str) -> Option<String> {
    Reflect::get(object, &name.into()).ok()?.as_string()
}

fn number_field(object: &JsValue, name: &str) -> Option<u64> {
    Some(Reflect::get(object, &name.into()).ok()?.as_f64()? as u64)
}

fn id_value(id: MessageId) -> JsValue {
    JsValue::from_f64(id as f64)
}

/// Every value a cursor request walks over, handed to `each` (which may update it).
async fn walk(
    request: &IdbRequest,
    mut each: impl FnMut(&IdbCursorWithValue, JsValue) -> Result<bool, JsValue>,
) -> Result<(), String> {
    loop {
        let cursor = done(request).await?;
        let Ok(cursor) = cursor.dyn_into::<IdbCursorWithValue>() else {
            return Ok(());
        };
        let value = cursor.value().map_err(|e| describe_js_error(&e))?;
        let more = each(&cursor, value).map_err(|e| describe_js_error(&e))?;
        if !more {
            return Ok(());
        }
        cursor.continue_().map_err(|e| describe_js_error(&e))?;
    }
}

/// What this database saved: `None` when it has never been written.
async fn load(db: &IdbDatabase) -> Result<Option<SavedState>, String> {
    let js = |e: JsValue| describe_js_error(&e);
    let stores = Array::of4(
        &RUNS.into(),
        &MESSAGES.into(),
        &RECEIVED.into(),
        &ROOM_FRAMES.into(),
    );
    let tx = db
        .transaction_with_str_sequence_and_mode(&stores, IdbTransactionMode::Readonly)
        .map_err(js)?;
    let runs = tx.object_store(RUNS).map_err(js)?;
    let numbering = done(&runs.get(&NUMBERING.into()).map_err(js)?).await?;
    let (Some(run), Some(next_message)) = (
        text_field(&numbering, "run"),
        number_field(&numbering, "next_message"),
    ) else {
        return Ok(None);
    };
    let mut saved = SavedState {
        run,
        next_message,
        ..SavedState::default()
    };
    let awaiting = tx
        .object_store(MESSAGES)
        .and_then(|s| s.index(AWAITING))
        .map_err(js)?;
    let only_awaiting = IdbKeyRange::only(&JsValue::from_f64(1.0)).map_err(js)?;
    let cursor = awaiting
        .open_cursor_with_range_and_direction(&only_awaiting, IdbCursorDirection::Next)
        .map_err(js)?;
    walk(&cursor, |_, value| {
        let fields = (
            text_field(&value, "run"),
            text_field(&value, "peer"),
            number_field(&value, "id"),
            text_field(&value, "text"),
        );
        if let (Some(run), Some(peer), Some(id), Some(text)) = fields
            && run == saved.run
        {
            saved.outbox.entry(peer).or_default().push((id, text));
        }
        Ok(true)
    })
    .await?;
    for waiting in saved.outbox.values_mut() {
        waiting.sort_unstable_by_key(|(id, _)| *id);
    }
    let received = tx.object_store(RECEIVED).map_err(js)?;
    let all = done(&received.get_all().map_err(js)?).await?;
    for value in Array::from(&all).iter() {
        let fields = (
            text_field(&value, "peer"),
            text_field(&value, "run"),
            number_field(&value, "id"),
        );
        if let (Some(peer), Some(run), Some(id)) = fields {
            saved.received.insert(peer, (run, id));
        }
    }
    let rooms = tx.object_store(ROOM_FRAMES).map_err(js)?;
    let all = done(&rooms.get_all().map_err(js)?).await?;
    for value in Array::from(&all).iter() {
        let room = text_field(&value, "room").and_then(|room| RoomId::parse(&room));
        if let (Some(room), Some(frame)) = (room, text_field(&value, "frame")) {
            saved.rooms.entry(room).or_default().push(frame);
        }
    }
    Ok(Some(saved))
}

impl Database {
    /// Starts the transaction that writes `op`, committed as soon as its requests are in
    /// (an acknowledgement's cursor walk commits by itself when it ends).
    fn apply(&self, op: &StoreOp) -> Result<IdbTransaction, JsValue> {
        let at_ms = JsValue::from_f64(js_sys::Date::now());
        let tx = match op {
            StoreOp::Room { room, frame } => {
                let tx = (self.db)
                    .transaction_with_str_and_mode(ROOM_FRAMES, IdbTransactionMode::Readwrite)?;
                let kept = record(&[("room", room.as_str().into()), ("frame", frame.into())]);
                tx.object_store(ROOM_FRAMES)?.add(&kept)?;
                committed(tx)
            }
            StoreOp::Numbering { run, next_message } => {
                *self.run.borrow_mut() = run.clone();
                let tx =
                    (self.db).transaction_with_str_and_mode(RUNS, IdbTransactionMode::Readwrite)?;
                let numbering = record(&[
                    ("run", run.into()),
                    ("next_message", id_value(*next_message)),
                ]);
                tx.object_store(RUNS)?
                    .put_with_key(&numbering, &NUMBERING.into())?;
                committed(tx)
            }
            StoreOp::Sent {
                peer,
                id,
                text,
                awaiting_ack,
            } => {
                let run = self.run.borrow().clone();
                let stores = Array::of2(&MESSAGES.into(), &RUNS.into());
                let tx = (self.db).transaction_with_str_sequence_and_mode(
                    &stores,
                    IdbTransactionMode::Readwrite,
                )?;
                let message = record(&[
                    ("peer", peer.into()),
                    ("outgoing", JsValue::TRUE),
                    ("run", run.as_str().into()),
                    ("id", id_value(*id)),
                    ("text", text.into()),
                    ("at_ms", at_ms),
                    (
                        "awaiting_ack",
                        JsValue::from_f64(f64::from(u8::from(*awaiting_ack))),
                    ),
                    ("delivered", JsValue::FALSE),
                ]);
                tx.object_store(MESSAGES)?.add(&message)?;
                // Ids only grow within a run, so the latest write is the highest.
                let numbering = record(&[
                    ("run", run.into()),
                    ("next_message", id_value(id.saturating_add(1))),
                ]);
                tx.object_store(RUNS)?
                    .put_with_key(&numbering, &NUMBERING.into())?;
                committed(tx)
            }
            StoreOp::Acknowledged { peer, upto } => {
                let run = self.run.borrow().clone();
                let tx = (self.db)
                    .transaction_with_str_and_mode(MESSAGES, IdbTransactionMode::Readwrite)?;
                let awaiting = tx.object_store(MESSAGES)?.index(AWAITING)?;
                let only_awaiting = IdbKeyRange::only(&JsValue::from_f64(1.0))?;
                let cursor = awaiting.open_cursor_with_range_and_direction(
                    &only_awaiting,
                    IdbCursorDirection::Next,
                )?;
                let (peer, upto) = (peer.clone(), *upto);
                wasm_bindgen_futures::spawn_local(async move {
                    let walked = walk(&cursor, |cursor, value| {
                        let mine = text_field(&value, "peer").as_deref() == Some(peer.as_str())
                            && text_field(&value, "run").as_deref() == Some(run.as_str())
                            && number_field(&value, "id").is_some_and(|id| id <= upto);
                        if mine {
                            Reflect::set(&value, &"awaiting_ack".into(), &JsValue::from_f64(0.0))?;
                            Reflect::set(&value, &"delivered".into(), &JsValue::TRUE)?;
                            cursor.update(&value)?;
                        }
                        Ok(true)
                    })
                    .await;
                    if let Err(error) = walked {
                        warn!(%error, "could not mark messages delivered in the message store");
                    }
                });
                tx
            }
            StoreOp::Received {
                peer,
                text,
                numbering,
            } => {
                let stores = Array::of2(&MESSAGES.into(), &RECEIVED.into());
                let tx = (self.db).transaction_with_str_sequence_and_mode(
                    &stores,
                    IdbTransactionMode::Readwrite,
                )?;
                let (run, id) = numbering.clone().unzip();
                let message = record(&[
                    ("peer", peer.into()),
                    ("outgoing", JsValue::FALSE),
                    ("run", run.map_or(JsValue::NULL, JsValue::from)),
                    ("id", id.map_or(JsValue::NULL, id_value)),
                    ("text", text.into()),
                    ("at_ms", at_ms),
                    ("awaiting_ack", JsValue::from_f64(0.0)),
                    ("delivered", JsValue::FALSE),
                ]);
                tx.object_store(MESSAGES)?.add(&message)?;
                if let Some((run, id)) = numbering {
                    let last = record(&[
                        ("peer", peer.into()),
                        ("run", run.into()),
                        ("id", id_value(*id)),
                    ]);
                    tx.object_store(RECEIVED)?.put(&last)?;
                }
                committed(tx)
            }
        };
        Ok(tx)
    }

    async fn history(&self, peer: &str, limit: usize) -> Result<Vec<StoredMessage>, String> {
        let js = |e: JsValue| describe_js_error(&e);
        let tx = (self.db)
            .transaction_with_str_and_mode(MESSAGES, IdbTransactionMode::Readonly)
            .map_err(js)?;
        let by_peer = tx
            .object_store(MESSAGES)
            .and_then(|s| s.index(BY_PEER))
            .map_err(js)?;
        let only_peer = IdbKeyRange::only(&peer.into()).map_err(js)?;
        // Newest first (an index orders equal keys by primary key), then turned around.
        let cursor = by_peer
            .open_cursor_with_range_and_direction(&only_peer, IdbCursorDirection::Prev)
            .map_err(js)?;
        let mut messages = Vec::new();
        if limit > 0 {
            walk(&cursor, |_, value| {
                let flag = |name: &str| {
                    Reflect::get(&value, &name.into()).is_ok_and(|v| v.as_bool() == Some(true))
                };
                messages.push(StoredMessage {
                    peer: peer.to_owned(),
                    outgoing: flag("outgoing"),
                    text: text_field(&value, "text").unwrap_or_default(),
                    at_ms: number_field(&value, "at_ms").unwrap_or_default(),
                    id: number_field(&value, "id"),
                    delivered: flag("delivered"),
                });
                Ok(messages.len() < limit)
            })
            .await?;
        }
        messages.reverse();
        Ok(messages)
    }
}

/// Asks `tx` to commit now that its requests are in, rather than when the page's task
/// ends. A browser without `commit()` commits it then all the same.
fn committed(tx: IdbTransaction) -> IdbTransaction {
    // Looked up rather than bound: web-sys marks its binding deprecated.
    if let Some(commit) = method(&tx, "commit") {
        let _ = commit.call0(&tx);
    }
    tx
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;
    use crate::store::contract;
    use crate::web::rt::random_u64;

    #[wasm_bindgen_test]
    async fn what_was_written_is_read_back_after_reopening() {
        let name = format!("peerchat-test-{:016x}", random_u64());
        let db = open_database(&name).await.unwrap();
        assert_eq!(
            load(&db).await.unwrap(),
            None,
            "a new database holds nothing"
        );
        let writer = Database {
            db,
            run: RefCell::new(String::new()),
            _lock: None,
        };
        let ops = contract::writes();
        for op in &ops {
            writer.apply(op).unwrap();
        }
        // Another connection's reads wait for the writes before them, as a reload's would.
        let reader = Database {
            db: open_database(&name).await.unwrap(),
            run: RefCell::new(String::new()),
            _lock: None,
        };
        let saved = load(&reader.db).await.unwrap().expect("state was kept");
        contract::check_saved(&saved);
        let last = reader.history("alice", 3).await.unwrap();
        contract::check_history(&last, &reader.history("alice", 10).await.unwrap());
    }

    #[wasm_bindgen_test]
    async fn room_frames_are_read_back_per_room_in_the_order_kept() {
        let name = format!("peerchat-test-{:016x}", random_u64());
        let writer = Database {
            db: open_database(&name).await.unwrap(),
            run: RefCell::new(String::new()),
            _lock: None,
        };
        let (first, second) = (RoomId::from_random([1; 16]), RoomId::from_random([2; 16]));
        writer.apply(&contract::writes()[0]).unwrap();
        for (room, frame) in [(&first, "a"), (&second, "x"), (&first, "b")] {
            let op = StoreOp::Room {
                room: room.clone(),
                frame: frame.into(),
            };
            writer.apply(&op).unwrap();
        }
        let reader = open_database(&name).await.unwrap();
        let rooms = load(&reader).await.unwrap().expect("state was kept").rooms;
        assert_eq!(rooms[&first], ["a", "b"]);
        assert_eq!(rooms[&second], ["x"]);
    }

    /// A database as version 1 made it (before rooms), with its numbering written.
    async fn first_version_database(name: &str) -> IdbDatabase {
        let factory: IdbFactory = Reflect::get(&js_sys::global(), &"indexedDB".into())
            .unwrap()
            .unchecked_into();
        let request = factory.open_with_u32(name, 1).unwrap();
        let source = request.clone();
        let on_upgrade = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            let db: IdbDatabase = source.result().unwrap().unchecked_into();
            db.create_object_store(RUNS).unwrap();
            let keyed = IdbObjectStoreParameters::new();
            keyed.set_auto_increment(true);
            let messages =
                (db.create_object_store_with_optional_parameters(MESSAGES, &keyed)).unwrap();
            messages.create_index_with_str(BY_PEER, "peer").unwrap();
            messages
                .create_index_with_str(AWAITING, "awaiting_ack")
                .unwrap();
            let by_peer = IdbObjectStoreParameters::new();
            by_peer.set_key_path(&"peer".into());
            db.create_object_store_with_optional_parameters(RECEIVED, &by_peer)
                .unwrap();
        });
        request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
        let db: IdbDatabase = done(&request).await.unwrap().unchecked_into();
        request.set_onupgradeneeded(None);
        db
    }

    #[wasm_bindgen_test]
    async fn a_database_from_before_rooms_keeps_what_it_held_and_gains_rooms() {
        let name = format!("peerchat-test-{:016x}", random_u64());
        let old = Database {
            db: first_version_database(&name).await,
            run: RefCell::new(String::new()),
            _lock: None,
        };
        let written = old.apply(&contract::writes()[0]).unwrap();
        finished(&written).await.unwrap();
        // Closed, as a page of the old version would be: the upgrade waits for that.
        old.db.close();
        let upgraded = Database {
            db: open_database(&name).await.unwrap(),
            run: RefCell::new(String::new()),
            _lock: None,
        };
        let saved = load(&upgraded.db)
            .await
            .unwrap()
            .expect("the numbering was kept");
        assert_eq!(saved.run, "run-1");
        let room = RoomId::from_random([3; 16]);
        let op = StoreOp::Room {
            room: room.clone(),
            frame: "f".into(),
        };
        upgraded.apply(&op).unwrap();
        let saved = load(&upgraded.db).await.unwrap().expect("state was kept");
        assert_eq!(saved.rooms[&room], ["f"]);
    }

    #[wasm_bindgen_test]
    async fn the_store_is_busy_until_its_writes_have_landed() {
        let me = format!("carol{:016x}", random_u64());
        let (store, saved, notice) = Store::open(&Storage::Browser, &me).await.unwrap();
        assert_eq!((saved, notice), (None, None));
        assert!(!store.busy());
        for op in contract::writes() {
            store.apply(op);
        }
        assert!(store.busy(), "IndexedDB commits after this turn");
        store.landed().await;
        assert!(!store.busy());
        // Landed means committed: a connection opened now reads it all.
        let db = open_database(&format!("peerchat-{me}")).await.unwrap();
        let saved = load(&db).await.unwrap().expect("state was kept");
        contract::check_saved(&saved);
    }

    #[wasm_bindgen_test]
    async fn a_second_client_of_one_name_is_refused_until_the_first_is_gone() {
        let me = format!("bob{:016x}", random_u64());
        let (first, _, _) = Store::open(&Storage::Browser, &me).await.unwrap();
        assert!(first.db.is_some(), "IndexedDB is there in Chromium");
        let second = Store::open(&Storage::Browser, &me).await;
        assert!(matches!(
            second,
            Err(ClientError::Store {
                error: StoreError::InUse,
                ..
            })
        ));
        // Once the first client is gone (a logout), the name's store is free again.
        drop(first);
        let (again, _, _) = Store::open(&Storage::Browser, &me).await.unwrap();
        assert!(again.db.is_some());
    }
}
