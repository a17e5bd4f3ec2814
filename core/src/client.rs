//! The async client API (`connect`, `connect_to_peer`, `send_message`, `disconnect`) and the
//! loop that runs the state machine against a transport backend.
//!
//! Work is done in the turn it arises: an API call, or a backend's report (a message from a
//! peer, say), goes into the machine under a short lock, and the actions and events that
//! follow are carried out at once, in the order the machine made them. A driver task keeps
//! the machine's timers and takes over whenever the machine is busy elsewhere.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{Either, select};
use futures::{FutureExt, Stream, StreamExt};

use crate::backend::Backend;
use crate::event::{ClientError, ClientEvent, PeerStatus, SignalingState};
use crate::machine::{Action, ClientMachine, ConnId, SavedState, SignalingInput, TransportEvent};
use crate::options::ClientOptions;
use crate::platform::{rt, store::Store};
use crate::protocol::{self, MessageId};
use crate::room::RoomId;
use crate::server_url::ServerUrl;
use crate::store::StoredMessage;
use crate::unread::Unread;

/// What backends report to the machine.
#[derive(Debug)]
pub(crate) enum Input {
    Signaling(SignalingInput),
    Transport(ConnId, TransportEvent),
    /// The platform reported a network change (see [`crate::network`]).
    NetworkChanged,
    /// Store writes the backend waited for have landed: what waited behind them may go.
    StoreLanded,
    /// Every `Client` handle was dropped.
    Stop,
}

/// How backends hand inputs to the machine: each is handled in the turn it arrives (a chat
/// message is answered inside the browser event that brought it, with no task hop), or by
/// the driver task when the machine is busy.
#[derive(Clone)]
pub(crate) struct InputSender(Arc<Inbox>);

impl InputSender {
    /// A handle that does not keep the client's inbox alive.
    pub fn downgrade(&self) -> Weak<Inbox> {
        Arc::downgrade(&self.0)
    }
}

impl From<Arc<Inbox>> for InputSender {
    fn from(inbox: Arc<Inbox>) -> Self {
        Self(inbox)
    }
}

/// Inputs waiting for the machine, in arrival order.
pub(crate) struct Inbox {
    queue: Mutex<VecDeque<Input>>,
    /// The client, once it exists; until then inputs wait for the driver's first round.
    shared: OnceLock<Weak<Shared>>,
    /// Wakes the driver.
    wake: mpsc::UnboundedSender<()>,
}

impl InputSender {
    /// Queues `input` for the driver task without handling it here: for threads that are
    /// not the client's (a platform callback), which must not run the backend.
    pub fn post(&self, input: Input) {
        self.0.push(input);
        self.0.wake();
    }

    pub fn send(&self, input: Input) {
        let inbox = &self.0;
        inbox.push(input);
        match inbox.shared.get().and_then(Weak::upgrade) {
            Some(shared) => shared.run_here(),
            None => inbox.wake(),
        }
    }
}

impl Inbox {
    fn push(&self, input: Input) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(input);
    }

    fn wake(&self) {
        let _ = self.wake.unbounded_send(());
    }

    fn pop(&self) -> Option<Input> {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

struct Shared {
    machine: Mutex<ClientMachine>,
    /// The history and outbox's store; the backend writes to it, the app reads history.
    store: Store,
    /// Where actions and events go. Locked before `machine` whenever both are held, so
    /// actions reach the backend, and events the app, in the order the machine made them;
    /// `None` once the driver has shut the backend down.
    outlet: Mutex<Option<Outlet>>,
    inbox: Arc<Inbox>,
    clock: rt::Clock,
    /// The machine's next deadline (`u64::MAX`: none), as of the last run.
    deadline: AtomicU64,
    /// The deadline the driver's timer is armed for (`u64::MAX`: none), so a run elsewhere
    /// wakes the driver only when it brings the next deadline forward.
    armed: AtomicU64,
    /// The machine asked to close the broker connection: the driver shuts down.
    closing: AtomicBool,
}

struct Outlet {
    backend: Backend,
    events: mpsc::UnboundedSender<ClientEvent>,
    /// What the app has not read of `events` (see [`crate::unread`]).
    unread: Arc<Unread>,
    reader: Reader,
}

/// Whether the app keeps up with its events.
enum Reader {
    Keeping,
    /// Too far behind: the client leaves in its next run.
    Behind(ClientError),
    /// Leaving; the reason is said as the last event once the broker connection closes.
    Leaving(ClientError),
    Told,
}

impl Shared {
    fn machine(&self) -> MutexGuard<'_, ClientMachine> {
        // The machine never panics while locked; recover the guard if a caller did.
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The machine's time now, the wall clock read at the same moment and given to the
    /// machine with it: every reading of the clock goes through here, so seals carry the
    /// wall time of their making even after the device slept (the monotonic clock stops
    /// during suspend; the wall clock does not).
    fn now(&self, machine: &mut ClientMachine) -> u64 {
        let now = self.clock.now();
        machine.handle_wall_clock(now, rt::wall_ms());
        now
    }

    /// Handles the waiting inputs and carries out what follows, unless the machine is busy:
    /// held by another thread, or further up this very stack (a browser event fired inside
    /// a backend call). Then the driver is woken to do it.
    fn run_here(&self) {
        let ran = self.run(false);
        let closing = self.closing.load(Ordering::Relaxed);
        let sooner = self.deadline.load(Ordering::Relaxed) < self.armed.load(Ordering::Relaxed);
        if !ran || closing || sooner {
            self.inbox.wake();
        }
    }

    /// Feeds the waiting inputs to the machine, executes its actions and forwards its
    /// events. Returns `false`, having done nothing, when a lock is held and `wait` is not
    /// set.
    fn run(&self, wait: bool) -> bool {
        let Some(mut outlet) = lock(&self.outlet, wait) else {
            return false;
        };
        let (actions, events) = {
            let Some(mut machine) = lock(&self.machine, wait) else {
                return false;
            };
            let now = self.now(&mut machine);
            while let Some(input) = self.inbox.pop() {
                tracing::trace!(user = machine.username(), ?input, "input");
                match input {
                    Input::Signaling(input) => machine.handle_signaling(input, now),
                    Input::Transport(conn, event) => machine.handle_transport(conn, event, now),
                    Input::NetworkChanged => machine.network_changed(now),
                    Input::StoreLanded => {}
                    Input::Stop => machine.disconnect(),
                }
            }
            if let Some(outlet) = outlet.as_mut()
                && let Reader::Behind(error) = &outlet.reader
            {
                outlet.reader = Reader::Leaving(error.clone());
                machine.disconnect();
            }
            let actions: Vec<Action> = std::iter::from_fn(|| machine.poll_action()).collect();
            let events: Vec<ClientEvent> = std::iter::from_fn(|| machine.poll_event()).collect();
            let deadline = machine.poll_timeout().unwrap_or(u64::MAX);
            self.deadline.store(deadline, Ordering::Relaxed);
            (actions, events)
        };
        let Some(outlet) = outlet.as_mut() else {
            return true;
        };
        // What waited for store writes goes first, if they have landed.
        outlet.backend.resume();
        for action in actions {
            if action == Action::CloseSignaling {
                self.closing.store(true, Ordering::Relaxed);
            }
            outlet.backend.execute(action);
        }
        for event in events {
            if let Some(error) = outlet.unread.handed(&event)
                && matches!(outlet.reader, Reader::Keeping)
            {
                // The app stopped reading: the next run leaves.
                tracing::warn!(%error, "leaving");
                outlet.reader = Reader::Behind(error);
                self.inbox.wake();
            }
            let _ = outlet.events.unbounded_send(event);
        }
        if let Reader::Leaving(error) = &outlet.reader
            && self.closing.load(Ordering::Relaxed)
        {
            let last = ClientEvent::Error(error.clone());
            outlet.unread.handed(&last);
            let _ = outlet.events.unbounded_send(last);
            outlet.reader = Reader::Told;
        }
        true
    }
}

/// Locks `mutex`, or only tries to unless `wait`. A panic while locked is recovered from:
/// the machine never panics while locked.
fn lock<T>(mutex: &Mutex<T>, wait: bool) -> Option<MutexGuard<'_, T>> {
    if wait {
        return Some(mutex.lock().unwrap_or_else(|e| e.into_inner()));
    }
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Stops the driver when the last [`Client`] handle goes away.
struct StopOnDrop(InputSender);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.send(Input::Stop);
    }
}

/// A connected peerchat client. Cheap to clone; every clone drives the same session.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    finished: futures::future::Shared<oneshot::Receiver<()>>,
    _stop: Arc<StopOnDrop>,
}

/// The client's events, in order. Ends when the client is disconnected. Read them: an app
/// that leaves too many unread (16,384 events, or two largest files) makes the client
/// leave, and its last event, [`crate::ClientError::EventsNotRead`], says why.
pub struct Events {
    early: VecDeque<ClientEvent>,
    rx: mpsc::UnboundedReceiver<ClientEvent>,
    unread: Arc<Unread>,
}

impl Client {
    /// Joins the broker at `server_url` as `username`, with default options.
    ///
    /// Fails with [`ClientError::NameTaken`] when the name is in use, and with
    /// [`ClientError::ServerUnreachable`] or [`ClientError::RegistrationTimeout`] when the
    /// server cannot be reached.
    pub async fn connect(server_url: &str, username: &str) -> Result<(Self, Events), ClientError> {
        Self::connect_with(ClientOptions::new(server_url, username)).await
    }

    #[cfg_attr(
        target_arch = "wasm32",
        expect(
            clippy::arc_with_non_send_sync,
            reason = "a browser page has one thread; on native the client is Send and Sync"
        )
    )]
    pub async fn connect_with(options: ClientOptions) -> Result<(Self, Events), ClientError> {
        let urls = ServerUrl::parse_list(&options.server_url)?;
        protocol::validate_username(&options.username).map_err(ClientError::InvalidUsername)?;
        // A restarted client continues its run: same session, same numbering, its outbox.
        let (store, saved, store_notice) = Store::open(&options.storage, &options.username).await?;
        let saved = saved.filter(|s| !s.run.is_empty());
        let may_start_offline = options.start_offline && saved.is_some();
        let saved = saved.unwrap_or_else(|| SavedState::fresh(rt::session_id()));
        let mut machine = ClientMachine::resume(&options.username, saved)?;
        let clock = rt::Clock::new();
        machine.handle_wall_clock(clock.now(), rt::wall_ms());
        if let Some(identity) = crate::platform::load_identity(&options) {
            machine.set_identity(identity);
        }
        let (pins, pins_notice) = crate::platform::open_pins(&options);
        for (peer, pin) in pins.pins().iter() {
            machine.pin_key(peer, pin.clone());
        }
        // What was unreadable and set aside: the app hears it first, loudly.
        let notices: VecDeque<ClientEvent> = [store_notice, pins_notice]
            .into_iter()
            .flatten()
            .inspect(|notice| tracing::error!(%notice, "set aside"))
            .map(ClientEvent::Error)
            .collect();
        let (wake, wakes) = mpsc::unbounded();
        let inbox = Arc::new(Inbox {
            queue: Mutex::new(VecDeque::new()),
            shared: OnceLock::new(),
            wake,
        });
        let inputs = InputSender(inbox.clone());
        let (events_tx, events_rx) = mpsc::unbounded();
        let unread = Arc::new(Unread::default());
        let (backend, unreachable) = Backend::start(
            &urls,
            &machine,
            &options,
            store.clone(),
            pins,
            inputs.clone(),
        );
        let shared = Arc::new(Shared {
            store,
            machine: Mutex::new(machine),
            outlet: Mutex::new(Some(Outlet {
                backend,
                events: events_tx,
                unread: unread.clone(),
                reader: Reader::Keeping,
            })),
            inbox: inbox.clone(),
            clock,
            deadline: AtomicU64::new(u64::MAX),
            armed: AtomicU64::new(u64::MAX),
            closing: AtomicBool::new(false),
        });
        let _ = inbox.shared.set(Arc::downgrade(&shared));
        crate::network::listen(&inputs);
        let (finished_tx, finished_rx) = oneshot::channel();
        rt::spawn(drive(shared.clone(), wakes, finished_tx));
        let client = Self {
            shared,
            finished: finished_rx.shared(),
            _stop: Arc::new(StopOnDrop(inputs)),
        };
        let mut events = Events {
            early: notices,
            rx: events_rx,
            unread,
        };

        let unreachable = async move {
            match unreachable.await {
                Ok(reason) => ClientError::ServerUnreachable {
                    url: options.server_url.clone(),
                    reason,
                },
                // The backend reached the server: only registration can end the wait now.
                Err(_) => futures::future::pending().await,
            }
        };
        let deadline = rt::sleep(options.connect_timeout).map(|_| ClientError::RegistrationTimeout);
        let failure = select(Box::pin(unreachable), Box::pin(deadline)).map(|e| e.factor_first().0);
        let outcome = match select(Box::pin(events.registration()), Box::pin(failure)).await {
            Either::Left((registered, _)) => registered,
            Either::Right((error, _)) => Err(error),
        };
        match outcome {
            Ok(()) => Ok((client, events)),
            Err(ClientError::ServerUnreachable { .. }) if may_start_offline => {
                // Offline with what the store kept; registering follows once a server
                // answers (`Registered`, or `RegistrationRefused` if the name went meanwhile).
                (events.early).push_back(ClientEvent::Signaling(SignalingState::Reconnecting));
                Ok((client, events))
            }
            Err(error) => {
                client.disconnect().await;
                Err(error)
            }
        }
    }

    /// This client's username.
    pub fn username(&self) -> String {
        self.shared.machine().username().to_owned()
    }

    /// Watches `peer`'s presence: a contact the app lists, whose coming and going arrives as
    /// presence events. Peers with a chat or waiting messages are watched anyway.
    pub fn watch_presence(&self, peer: &str) -> Result<(), ClientError> {
        let result = self.shared.machine().watch_presence(peer);
        self.shared.run_here();
        result
    }

    /// Stops watching `peer`'s presence (unless a chat or waiting messages need it).
    pub fn unwatch_presence(&self, peer: &str) {
        self.shared.machine().unwatch_presence(peer);
        self.shared.run_here();
    }

    /// Starts a chat with `peer`; progress arrives as status events.
    pub fn connect_to_peer(&self, peer: &str) -> Result<(), ClientError> {
        let result = {
            let mut machine = self.shared.machine();
            let now = self.shared.now(&mut machine);
            machine.connect_to_peer(peer, now)
        };
        self.shared.run_here();
        result
    }

    /// Sends `text` to a connected peer; `false` when it cannot be sent (see
    /// [`Client::try_send_message`] for why).
    pub fn send_message(&self, peer: &str, text: &str) -> bool {
        self.try_send_message(peer, text).is_ok()
    }

    /// Sends `text` to a connected peer; the id comes back in [`ClientEvent::Delivered`]
    /// when a peerchat peer acknowledges it.
    pub fn try_send_message(&self, peer: &str, text: &str) -> Result<MessageId, ClientError> {
        let result = self.shared.machine().send_message(peer, text);
        self.shared.run_here();
        result
    }

    /// Sends a file (at most [`crate::protocol::MAX_FILE_BYTES`]) to a connected peerchat
    /// peer; progress and delivery come back as events under the returned id.
    pub fn send_file(
        &self,
        peer: &str,
        name: &str,
        mime: &str,
        data: &[u8],
    ) -> Result<MessageId, ClientError> {
        let result = self.shared.machine().send_file(peer, name, mime, data);
        self.shared.run_here();
        result
    }

    /// Creates a group room named `name`, with this client as its creator and only
    /// member; its id names it in the other room calls and events.
    pub fn create_room(&self, name: &str) -> Result<RoomId, ClientError> {
        let mut random = [0u8; 16];
        random[..8].copy_from_slice(&rt::random_u64().to_le_bytes());
        random[8..].copy_from_slice(&rt::random_u64().to_le_bytes());
        let result = self.shared.machine().create_room(name, random);
        self.shared.run_here();
        result
    }

    /// Invites `peer` into `room` (a peerchat peer whose identity key is known: one this
    /// client has chatted with). It joins when it next meets a member.
    pub fn invite(&self, room: &RoomId, peer: &str) -> Result<(), ClientError> {
        let result = self.shared.machine().invite_to_room(room, peer);
        self.shared.run_here();
        result
    }

    /// Writes `text` into `room`; returns its number among this client's messages there,
    /// which [`ClientEvent::RoomDelivery`] reports against.
    pub fn send_room_message(&self, room: &RoomId, text: &str) -> Result<u64, ClientError> {
        let result = self.shared.machine().send_room_message(room, text);
        self.shared.run_here();
        result
    }

    /// Writes picture `name` of type `mime` (its `data`, at most
    /// [`crate::room::MAX_ROOM_PICTURE_BYTES`]) into `room`; members that take pictures
    /// get its bytes with it ([`ClientEvent::RoomPicture`] on their side). Returns its
    /// number among this client's messages there.
    pub fn send_room_picture(
        &self,
        room: &RoomId,
        name: &str,
        mime: &str,
        data: &[u8],
    ) -> Result<u64, ClientError> {
        let result = self
            .shared
            .machine()
            .send_room_picture(room, name, mime, data);
        self.shared.run_here();
        result
    }

    /// Removes `peer` from `room` (its creator and admins may): it gets nothing written
    /// there from now on, and what it writes is refused.
    pub fn remove_from_room(&self, room: &RoomId, peer: &str) -> Result<(), ClientError> {
        let result = self.shared.machine().remove_from_room(room, peer);
        self.shared.run_here();
        result
    }

    /// Makes `peer` an admin of `room`: it may invite and remove members too.
    pub fn make_room_admin(&self, room: &RoomId, peer: &str) -> Result<(), ClientError> {
        let result = self.shared.machine().make_room_admin(room, peer);
        self.shared.run_here();
        result
    }

    /// Leaves `room`; its members are told as they are met.
    pub fn leave_room(&self, room: &RoomId) -> Result<(), ClientError> {
        let result = self.shared.machine().leave_room(room);
        self.shared.run_here();
        result
    }

    /// The last `limit` messages with `peer`, oldest first, from this run and earlier ones
    /// (empty with [`crate::Storage::Memory`]).
    pub async fn history(&self, peer: &str, limit: usize) -> Vec<StoredMessage> {
        self.shared.store.history(peer, limit).await
    }

    /// Ends the chat with `peer`.
    pub fn close_peer(&self, peer: &str) -> Result<(), ClientError> {
        let result = self.shared.machine().close_peer(peer);
        self.shared.run_here();
        result
    }

    /// The status of the chat with `peer`, if there is one.
    pub fn peer_status(&self, peer: &str) -> Option<PeerStatus> {
        self.shared.machine().peer_status(peer)
    }

    /// This device's identity key for this user, as peers see it.
    pub fn identity_key(&self) -> Option<String> {
        self.shared.machine().identity_key().map(|k| k.to_text())
    }

    /// The safety number of this client's key and `peer`'s, to compare out of band.
    pub fn safety_number(&self, peer: &str) -> Option<String> {
        self.shared.machine().safety_number(peer)
    }

    /// Marks `peer`'s key verified, once the user compared safety numbers.
    pub fn mark_verified(&self, peer: &str) -> Result<(), ClientError> {
        let result = self.shared.machine().mark_verified(peer);
        self.shared.run_here();
        result
    }

    /// Forgets `peer`'s pinned key, so its next key is pinned: for a peer that changed
    /// devices, once the user has checked the new safety number.
    pub fn forget_key(&self, peer: &str) {
        self.shared.machine().forget_key(peer);
    }

    /// Tells the client the device's network changed, when the app learns it from its
    /// platform; see [`crate::network::notify_changed`] for every client at once.
    pub fn network_changed(&self) {
        {
            let mut machine = self.shared.machine();
            let now = self.shared.now(&mut machine);
            machine.network_changed(now);
        }
        self.shared.run_here();
    }

    /// Waits until every store write asked for so far has landed (and what the machine
    /// held back behind it has gone out): a message whose send returned before this is
    /// kept even if the app is killed right after. Immediate without a store. Native
    /// stores write in the turn a message is sent; the browser's IndexedDB commits a
    /// moment later, and what follows a write waits for its commit.
    pub async fn stored(&self) {
        // Whatever the machine asked for reaches the backend first (a run elsewhere may
        // have been busy when the send came).
        self.shared.run(true);
        let landed = {
            let mut outlet = lock(&self.shared.outlet, true).expect("waited for");
            match outlet.as_mut() {
                Some(outlet) => outlet.backend.when_stored(),
                None => return,
            }
        };
        let _ = landed.await;
    }

    /// Closes every chat, leaves the broker cleanly and waits until that is done.
    pub async fn disconnect(&self) {
        self.shared.machine().disconnect();
        self.shared.run_here();
        let _ = self.finished.clone().await;
    }
}

impl Events {
    /// Waits for the outcome of registration, keeping every other event for later.
    async fn registration(&mut self) -> Result<(), ClientError> {
        while let Some(event) = self.rx.next().await {
            match event {
                ClientEvent::Registered => return Ok(()),
                ClientEvent::RegistrationRefused(error) => return Err(error),
                other => {
                    self.unread.taken(&other);
                    self.early.push_back(other);
                }
            }
        }
        Err(ClientError::Closed)
    }
}

impl Stream for Events {
    type Item = ClientEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        // What waits in `early` (notices, what came during registration) is not counted.
        let early = self.early.pop_front();
        let event = match early {
            Some(event) => return Poll::Ready(Some(event)),
            None => std::task::ready!(self.rx.poll_next_unpin(cx)),
        };
        if let Some(event) = &event {
            self.unread.taken(event);
        }
        Poll::Ready(event)
    }
}

/// Runs the machine whenever it is woken or its next deadline comes, and shuts the
/// backend down when the machine closes the broker connection.
async fn drive(
    shared: Arc<Shared>,
    mut wakes: mpsc::UnboundedReceiver<()>,
    finished: oneshot::Sender<()>,
) {
    // One timer for the machine's next deadline, replaced only when the deadline moves
    // earlier: in a browser, arming and clearing a timer for every message costs more than
    // the message itself. A timer that fires early finds nothing due and is armed again.
    let mut alarm = None;
    loop {
        shared.run(true);
        if shared.closing.load(Ordering::Relaxed) {
            break;
        }
        let deadline = shared.deadline.load(Ordering::Relaxed);
        if deadline != u64::MAX && alarm.as_ref().is_none_or(|(armed, _)| deadline < *armed) {
            let wait = deadline.saturating_sub(shared.clock.now());
            alarm = Some((deadline, Box::pin(rt::sleep(Duration::from_millis(wait)))));
            shared.armed.store(deadline, Ordering::Relaxed);
        }
        let woken = match &mut alarm {
            Some((_, timer)) => match select(wakes.next(), timer.as_mut()).await {
                Either::Left((woken, _)) => woken,
                Either::Right(((), _)) => {
                    alarm = None;
                    shared.armed.store(u64::MAX, Ordering::Relaxed);
                    let mut machine = shared.machine();
                    let now = shared.now(&mut machine);
                    machine.handle_timeout(now);
                    continue;
                }
            },
            None => wakes.next().await,
        };
        // The inbox holds the sender as long as the client exists; a wake is a wake.
        if woken.is_none() {
            shared.machine().disconnect();
        }
        while wakes.try_recv().is_ok() {}
    }
    let outlet = shared
        .outlet
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(outlet) = outlet {
        outlet.backend.shutdown().await;
    }
    let _ = finished.send(());
}

/// On native, apps hold the client across threads (Dioxus desktop handlers, Tokio tasks).
#[cfg(not(target_arch = "wasm32"))]
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Client>();
    send_and_sync::<InputSender>();
};
