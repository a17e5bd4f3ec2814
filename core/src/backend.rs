//! What every backend does with the machine's actions: signaling actions go to the broker
//! link, peer actions become ordered commands for one peer connection, store operations to
//! the platform's store.
//!
//! A store write lands before any action after it is carried out: SQLite writes in the
//! turn it is asked to, and while IndexedDB commits (a moment later), what follows a write
//! is held, in order, and goes once the write has landed. So a message is on disk before it
//! is on the wire, and a received message is before its acknowledgement.
//!
//! The platform modules (`native`, `web`) supply `signaling::SignalingLink` and
//! `transport::Transport` and `store::Store` with the same methods; this file is the one place that routes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{join_all, select};

use crate::client::{Input, InputSender};
use crate::machine::{Action, ClientMachine, ConnId};
use crate::options::ClientOptions;
use crate::platform::{rt, signaling::SignalingLink, store::Store, transport::Transport};
use crate::protocol::IceCandidate;
use crate::server_url::ServerUrl;

/// What one peer connection's task is asked to do, strictly in order.
#[derive(Debug)]
pub(crate) enum PeerCommand {
    /// Create the `chat` channel and an offer.
    Offer,
    /// Apply a remote offer and produce an answer.
    Accept(String),
    Answer(String),
    /// Restart ICE and produce an offer on the existing connection.
    RestartIce,
    Candidate(IceCandidate),
    Send(String),
    SendData(Vec<u8>),
    Close,
}

/// Executes actions on the broker connection and the peer connections.
pub(crate) struct Backend {
    signaling: SignalingLink,
    transport: Transport,
    store: Store,
    pins: crate::platform::PinStore,
    inputs: InputSender,
    /// Actions waiting, in order, for the store writes before them to land.
    held: VecDeque<Action>,
    /// A task waits for the store to land and will wake the driver then.
    wake_armed: Arc<AtomicBool>,
    /// Callers of [`Backend::when_stored`] not answered yet.
    stored_waiters: Vec<oneshot::Sender<()>>,
}

impl Backend {
    /// Starts connecting to the broker. The receiver yields a reason if the server cannot
    /// be reached at all; it is dropped unanswered once the first connection succeeds.
    pub fn start(
        urls: &[ServerUrl],
        machine: &ClientMachine,
        options: &ClientOptions,
        store: Store,
        pins: crate::platform::PinStore,
        inputs: InputSender,
    ) -> (Self, oneshot::Receiver<String>) {
        let (signaling, unreachable) =
            SignalingLink::start(urls, machine, inputs.clone(), options.start_offline);
        let transport = Transport::new(options, inputs.clone());
        (
            Self {
                signaling,
                transport,
                store,
                pins,
                inputs,
                held: VecDeque::new(),
                wake_armed: Arc::new(AtomicBool::new(false)),
                stored_waiters: Vec::new(),
            },
            unreachable,
        )
    }

    /// Carries `action` out, or holds it until the store writes before it have landed. A
    /// write itself starts at once when nothing is held (the store keeps writes in order).
    pub fn execute(&mut self, action: Action) {
        let write = matches!(action, Action::Store(_));
        if self.held.is_empty() && (write || !self.store.busy()) {
            return self.execute_now(action);
        }
        self.held.push_back(action);
        self.wake_when_landed();
    }

    /// Carries out what was held, in order, as far as the store's writes have landed.
    pub fn resume(&mut self) {
        while let Some(action) = self.held.front() {
            if self.store.busy() && !matches!(action, Action::Store(_)) {
                self.wake_when_landed();
                return;
            }
            let action = self.held.pop_front().expect("just seen");
            self.execute_now(action);
        }
        if !self.store.busy() {
            for waiter in self.stored_waiters.drain(..) {
                let _ = waiter.send(());
            }
        } else if !self.stored_waiters.is_empty() {
            self.wake_when_landed();
        }
    }

    /// Resolves once every store write asked for so far has landed and nothing is held.
    pub fn when_stored(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.stored_waiters.push(tx);
        self.resume();
        rx
    }

    /// Wakes the driver (which resumes) once the store's writes have landed.
    fn wake_when_landed(&self) {
        if self.wake_armed.swap(true, Ordering::Relaxed) {
            return;
        }
        let (landed, armed) = (self.store.landed(), self.wake_armed.clone());
        let inputs = self.inputs.clone();
        rt::spawn(async move {
            landed.await;
            armed.store(false, Ordering::Relaxed);
            inputs.post(Input::StoreLanded);
        });
    }

    fn execute_now(&mut self, action: Action) {
        let (conn, command) = match action {
            Action::Subscribe { topic, delivery } => {
                return self.signaling.subscribe(topic, delivery);
            }
            Action::Unsubscribe { topic } => return self.signaling.unsubscribe(topic),
            Action::Publish {
                topic,
                payload,
                retain,
                delivery,
            } => return self.signaling.publish(topic, payload, retain, delivery),
            Action::CloseSignaling => return self.signaling.close(),
            Action::RestartSignaling => return self.signaling.restart(),
            Action::ConnectAs { client_id } => return self.signaling.connect_as(client_id),
            Action::Store(op) => return self.store.apply(op),
            Action::KeepPin { peer, pin } => return self.pins.keep(peer, pin),
            Action::StartOffer { conn, .. } => (conn, PeerCommand::Offer),
            Action::AcceptOffer { conn, sdp, .. } => (conn, PeerCommand::Accept(sdp)),
            Action::ApplyAnswer { conn, sdp } => (conn, PeerCommand::Answer(sdp)),
            Action::RestartIce { conn } => (conn, PeerCommand::RestartIce),
            Action::AddCandidate { conn, candidate } => (conn, PeerCommand::Candidate(candidate)),
            Action::SendText { conn, text } => (conn, PeerCommand::Send(text)),
            Action::SendData { conn, data } => (conn, PeerCommand::SendData(data)),
            Action::ClosePeer { conn } => (conn, PeerCommand::Close),
        };
        self.transport.execute(conn, command);
    }

    /// Waits (briefly) until the broker connection is closed and every peer connection has
    /// said goodbye, so a process that exits right after sees its peers told; what waited
    /// for store writes goes first, and the pins are written.
    pub async fn shutdown(mut self) {
        while !self.held.is_empty() {
            self.store.landed().await;
            self.resume();
        }
        self.store.landed().await;
        futures::join!(
            self.transport.closed(),
            self.signaling.closed(),
            self.pins.closed()
        );
    }
}

/// How long shutdown waits for peer connections to close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Held by a connection's task for as long as it runs; dropping it marks the task ended.
pub(crate) struct TaskAlive(#[expect(dead_code, reason = "held, never read")] oneshot::Sender<()>);

/// The peer connections' tasks, shared by both platforms: one ordered command queue per
/// connection, and a way to wait at shutdown until every task has closed its connection.
#[derive(Default)]
pub(crate) struct Connections {
    queues: HashMap<ConnId, mpsc::UnboundedSender<PeerCommand>>,
    running: Vec<oneshot::Receiver<()>>,
}

impl Connections {
    /// Hands `command` to `conn`'s task. A new connection's task is started by `start`, which
    /// receives the task's command queue and a [`TaskAlive`] the task must hold until it ends.
    /// A close drops the queue, which ends the task and so closes the connection.
    pub fn execute(
        &mut self,
        conn: ConnId,
        command: PeerCommand,
        start: impl FnOnce(mpsc::UnboundedReceiver<PeerCommand>, TaskAlive),
    ) {
        if let PeerCommand::Close = command {
            self.queues.remove(&conn);
            return;
        }
        let queue = self.queues.entry(conn).or_insert_with(|| {
            // Forget tasks that already ended (their sender is gone).
            self.running
                .retain_mut(|ended| matches!(ended.try_recv(), Ok(None)));
            let (alive, ended) = oneshot::channel();
            self.running.push(ended);
            let (queue, commands) = mpsc::unbounded();
            start(commands, TaskAlive(alive));
            queue
        });
        let _ = queue.unbounded_send(command);
    }

    /// Ends every connection and resolves when their tasks have ended, or after a grace.
    pub async fn closed(self) {
        drop(self.queues);
        let all = join_all(self.running);
        select(Box::pin(all), Box::pin(rt::sleep(CLOSE_GRACE))).await;
    }
}
