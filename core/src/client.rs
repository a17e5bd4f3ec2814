//! The async client API (`connect`, `connect_to_peer`, `send_message`, `disconnect`) and the
//! driver task that runs the state machine against a transport backend.
//!
//! API calls go straight into the machine under a short lock, so `send_message` answers at
//! once; the driver task executes the actions they produce and delivers events in order.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::channel::{mpsc, oneshot};
use futures::future::{Either, select};
use futures::{FutureExt, Stream, StreamExt};

use crate::backend::Backend;
use crate::event::{ClientError, ClientEvent, PeerStatus};
use crate::machine::{Action, ClientMachine, ConnId, SignalingInput, TransportEvent};
use crate::options::ClientOptions;
use crate::platform::rt;
use crate::protocol::MessageId;
use crate::server_url::ServerUrl;

/// What backends report to the driver.
#[derive(Debug)]
pub(crate) enum Input {
    Signaling(SignalingInput),
    Transport(ConnId, TransportEvent),
    /// The machine has new actions from an API call.
    Wake,
    /// Every `Client` handle was dropped.
    Stop,
}

pub(crate) type InputSender = mpsc::UnboundedSender<Input>;

struct Shared {
    machine: Mutex<ClientMachine>,
    inputs: InputSender,
    clock: rt::Clock,
}

impl Shared {
    fn machine(&self) -> MutexGuard<'_, ClientMachine> {
        // The machine never panics while locked; recover the guard if a caller did.
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        let _ = self.inputs.unbounded_send(Input::Wake);
    }
}

/// Stops the driver when the last [`Client`] handle goes away.
struct StopOnDrop(InputSender);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.unbounded_send(Input::Stop);
    }
}

/// A connected peerchat client. Cheap to clone; every clone drives the same session.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    finished: futures::future::Shared<oneshot::Receiver<()>>,
    _stop: Arc<StopOnDrop>,
}

/// The client's events, in order. Ends when the client is disconnected.
pub struct Events {
    early: VecDeque<ClientEvent>,
    rx: mpsc::UnboundedReceiver<ClientEvent>,
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

    pub async fn connect_with(options: ClientOptions) -> Result<(Self, Events), ClientError> {
        let url = ServerUrl::parse(&options.server_url)?;
        let machine = ClientMachine::new(&options.username, &rt::session_id())?;
        let (inputs, inputs_rx) = mpsc::unbounded();
        let (events_tx, events_rx) = mpsc::unbounded();
        let (backend, unreachable) = Backend::start(&url, &machine, &options, inputs.clone());
        let shared = Arc::new(Shared {
            machine: Mutex::new(machine),
            inputs: inputs.clone(),
            clock: rt::Clock::new(),
        });
        let (finished_tx, finished_rx) = oneshot::channel();
        rt::spawn(drive(
            shared.clone(),
            backend,
            inputs_rx,
            events_tx,
            finished_tx,
        ));
        let client = Self {
            shared,
            finished: finished_rx.shared(),
            _stop: Arc::new(StopOnDrop(inputs)),
        };
        let mut events = Events {
            early: VecDeque::new(),
            rx: events_rx,
        };

        let unreachable = async move {
            match unreachable.await {
                Ok(reason) => ClientError::ServerUnreachable {
                    url: url.original,
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

    /// Starts a chat with `peer`; progress arrives as status events.
    pub fn connect_to_peer(&self, peer: &str) -> Result<(), ClientError> {
        let now = self.shared.clock.now();
        let result = self.shared.machine().connect_to_peer(peer, now);
        self.shared.wake();
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
        self.shared.wake();
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
        self.shared.wake();
        result
    }

    /// Ends the chat with `peer`.
    pub fn close_peer(&self, peer: &str) -> Result<(), ClientError> {
        let result = self.shared.machine().close_peer(peer);
        self.shared.wake();
        result
    }

    /// The status of the chat with `peer`, if there is one.
    pub fn peer_status(&self, peer: &str) -> Option<PeerStatus> {
        self.shared.machine().peer_status(peer)
    }

    /// Closes every chat, leaves the broker cleanly and waits until that is done.
    pub async fn disconnect(&self) {
        self.shared.machine().disconnect();
        self.shared.wake();
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
                other => self.early.push_back(other),
            }
        }
        Err(ClientError::Closed)
    }
}

impl Stream for Events {
    type Item = ClientEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        if let Some(event) = self.early.pop_front() {
            return Poll::Ready(Some(event));
        }
        self.rx.poll_next_unpin(cx)
    }
}

/// Runs the machine: feeds it inputs and the time, executes its actions, forwards events.
async fn drive(
    shared: Arc<Shared>,
    mut backend: Backend,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    events: mpsc::UnboundedSender<ClientEvent>,
    finished: oneshot::Sender<()>,
) {
    loop {
        let (actions, new_events, deadline) = {
            let mut machine = shared.machine();
            let actions: Vec<Action> = std::iter::from_fn(|| machine.poll_action()).collect();
            let new_events: Vec<ClientEvent> =
                std::iter::from_fn(|| machine.poll_event()).collect();
            (actions, new_events, machine.poll_timeout())
        };
        let mut closing = false;
        for action in actions {
            closing |= action == Action::CloseSignaling;
            backend.execute(action);
        }
        for event in new_events {
            let _ = events.unbounded_send(event);
        }
        if closing {
            break;
        }

        let input = match deadline {
            Some(at) => {
                let wait = at.saturating_sub(shared.clock.now());
                let timer = rt::sleep(std::time::Duration::from_millis(wait));
                match select(inputs.next(), Box::pin(timer)).await {
                    Either::Left((input, _)) => input,
                    Either::Right(((), _)) => {
                        let now = shared.clock.now();
                        shared.machine().handle_timeout(now);
                        continue;
                    }
                }
            }
            None => inputs.next().await,
        };
        let now = shared.clock.now();
        let mut machine = shared.machine();
        tracing::trace!(user = machine.username(), ?input, "input");
        match input {
            Some(Input::Signaling(input)) => machine.handle_signaling(input, now),
            Some(Input::Transport(conn, event)) => machine.handle_transport(conn, event, now),
            Some(Input::Wake) => {}
            Some(Input::Stop) | None => machine.disconnect(),
        }
    }
    backend.shutdown().await;
    let _ = finished.send(());
}
