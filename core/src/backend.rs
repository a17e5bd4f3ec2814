//! What every backend does with the machine's actions: signaling actions go to the broker
//! link, peer actions become ordered commands for one peer connection, store operations to
//! the platform's store.
//!
//! The platform modules (`native`, `web`) supply `signaling::SignalingLink` and
//! `transport::Transport` and `store::Store` with the same methods; this file is the one place that routes.

use std::collections::HashMap;
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{join_all, select};

use crate::client::InputSender;
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
}

impl Backend {
    /// Starts connecting to the broker. The receiver yields a reason if the server cannot
    /// be reached at all; it is dropped unanswered once the first connection succeeds.
    pub fn start(
        url: &ServerUrl,
        machine: &ClientMachine,
        options: &ClientOptions,
        store: Store,
        pins: crate::platform::PinStore,
        inputs: InputSender,
    ) -> (Self, oneshot::Receiver<String>) {
        let (signaling, unreachable) = SignalingLink::start(url, machine, inputs.clone());
        let transport = Transport::new(options, inputs);
        (
            Self {
                signaling,
                transport,
                store,
                pins,
            },
            unreachable,
        )
    }

    pub fn execute(&mut self, action: Action) {
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
    /// said goodbye, so a process that exits right after sees its peers told.
    pub async fn shutdown(self) {
        futures::join!(self.transport.closed(), self.signaling.closed());
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
