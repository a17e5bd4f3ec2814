//! The broker connection on native: rumqttc over TCP, TLS or WebSocket, with reconnects.
//!
//! rumqttc retries at once after an error; this link waits with exponential backoff and
//! jitter instead, so a restarting broker is not hammered by every client at the same moment.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::channel::oneshot;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
    StateError, TlsConfiguration, Transport,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::rt;
use crate::client::{Input, InputSender};
use crate::machine::{ClientMachine, Delivery, SignalingInput};
use crate::protocol::MAX_MQTT_PACKET_BYTES;
use crate::reconnect::{FirstAttempt, ServerChoice, backoff};
use crate::server_url::{Carrier, ServerUrl};

/// Seconds between MQTT pings; a dead connection is noticed after about 1.5 times this.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a clean close may take before it is abandoned.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

pub(crate) struct SignalingLink {
    client: AsyncClient,
    /// Subscriptions sent and not yet acknowledged.
    pending_subscriptions: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
    /// Asks the task to drop the connection and connect again at once.
    restart: Arc<Notify>,
    /// The client id to connect under from the next connection on, when it changes.
    next_client_id: Arc<Mutex<Option<String>>>,
    /// A broker connection is up (CONNACK received, not lost since).
    connected: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl SignalingLink {
    /// Starts connecting to the first of `urls` (brokers of one cluster, tried in turn).
    /// Connects to the first broker that answers. If none does, the receiver hears why;
    /// then the link stops, unless `keep_trying` (a client started offline), when it goes on
    /// as after a lost connection.
    pub fn start(
        urls: &[ServerUrl],
        machine: &ClientMachine,
        inputs: InputSender,
        keep_trying: bool,
    ) -> (Self, oneshot::Receiver<String>) {
        let brokers = Brokers {
            options: urls.iter().map(|url| mqtt_options(url, machine)).collect(),
            choice: ServerChoice::new(urls.len()),
            client_id: machine.client_id(),
        };
        let (client, mut eventloop) = AsyncClient::new(brokers.options[0].clone(), 1024);
        // Signaling is a few small messages that someone waits for: no Nagle delay.
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let pending_subscriptions = Arc::new(AtomicUsize::new(0));
        let closing = Arc::new(AtomicBool::new(false));
        let restart = Arc::new(Notify::new());
        let next_client_id = Arc::new(Mutex::new(None));
        let connected = Arc::new(AtomicBool::new(false));
        let (unreachable_tx, unreachable_rx) = oneshot::channel();
        let task = tokio::spawn(run(
            eventloop,
            brokers,
            inputs,
            (unreachable_tx, keep_trying),
            Control {
                pending_subscriptions: pending_subscriptions.clone(),
                closing: closing.clone(),
                restart: restart.clone(),
                next_client_id: next_client_id.clone(),
                connected: connected.clone(),
            },
        ));
        let link = Self {
            client,
            pending_subscriptions,
            closing,
            restart,
            next_client_id,
            connected,
            task,
        };
        (link, unreachable_rx)
    }

    pub fn subscribe(&self, topic: String, delivery: Delivery) {
        self.pending_subscriptions.fetch_add(1, Ordering::SeqCst);
        if let Err(error) = self.client.try_subscribe(topic, qos(delivery)) {
            warn!(%error, "subscribe could not be queued");
        }
    }

    pub fn unsubscribe(&self, topic: String) {
        if let Err(error) = self.client.try_unsubscribe(topic) {
            warn!(%error, "unsubscribe could not be queued");
        }
    }

    pub fn publish(&self, topic: String, payload: Vec<u8>, retain: bool, delivery: Delivery) {
        if let Err(error) = self
            .client
            .try_publish(topic, qos(delivery), retain, payload)
        {
            warn!(%error, "publish could not be queued");
        }
    }

    /// Drops the broker connection and connects again without waiting: after a network
    /// change the old one may sit on a path that is gone until keep-alive notices.
    pub fn restart(&self) {
        self.restart.notify_one();
    }

    /// Connects under `client_id` from now on: a connection that is up ends with a
    /// DISCONNECT (so no last will fires) and the next follows at once.
    pub fn connect_as(&self, client_id: String) {
        *self
            .next_client_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(client_id);
        // While no connection is up, the next attempt takes the new id by itself.
        if self.connected.load(Ordering::SeqCst) && self.client.try_disconnect().is_err() {
            self.restart.notify_one();
        }
    }

    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        if self.client.try_disconnect().is_err() {
            self.task.abort();
        }
    }

    /// Resolves when the connection is closed, or after a short grace.
    pub async fn closed(self) {
        self.close();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(CLOSE_GRACE, self.task).await.is_err() {
            abort.abort();
        }
    }
}

fn qos(delivery: Delivery) -> QoS {
    match delivery {
        Delivery::AtMostOnce => QoS::AtMostOnce,
        Delivery::AtLeastOnce => QoS::AtLeastOnce,
    }
}

fn mqtt_options(url: &ServerUrl, machine: &ClientMachine) -> MqttOptions {
    let client_id = machine.client_id();
    let mut options = match url.carrier {
        Carrier::WebSocket | Carrier::SecureWebSocket => {
            MqttOptions::new(client_id, url.websocket_url(), url.port)
        }
        Carrier::Tcp | Carrier::Tls => MqttOptions::new(client_id, url.host.clone(), url.port),
    };
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_max_packet_size(MAX_MQTT_PACKET_BYTES, MAX_MQTT_PACKET_BYTES);
    let (will_topic, will_payload) = machine.last_will();
    options.set_last_will(LastWill::new(
        will_topic,
        will_payload,
        QoS::AtLeastOnce,
        true,
    ));
    match url.carrier {
        Carrier::Tcp => {}
        Carrier::WebSocket => {
            options.set_transport(Transport::Ws);
        }
        Carrier::Tls => {
            options.set_transport(Transport::Tls(tls_configuration()));
        }
        Carrier::SecureWebSocket => {
            options.set_transport(Transport::Wss(tls_configuration()));
        }
    }
    options
}

/// TLS with the system's roots and the ring provider (the one crypto backend peerchat builds).
fn tls_configuration() -> TlsConfiguration {
    let _ = rustls::crypto::ring::default_provider().install_default();
    TlsConfiguration::default()
}

/// What the link shares with its task.
struct Control {
    pending_subscriptions: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
    restart: Arc<Notify>,
    next_client_id: Arc<Mutex<Option<String>>>,
    connected: Arc<AtomicBool>,
}

impl Control {
    /// Takes a client id change asked for, if any.
    fn client_id_change(&self) -> Option<String> {
        (self.next_client_id.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The brokers a client may use, and the one it uses now.
struct Brokers {
    /// The MQTT options of each broker, in the order given.
    options: Vec<MqttOptions>,
    choice: ServerChoice,
    /// The client id every connection is made under (see `Action::ConnectAs`).
    client_id: String,
}

impl Brokers {
    /// Makes the next connection go to the broker chosen now, under the current client id.
    fn aim(&self, eventloop: &mut EventLoop) {
        eventloop.mqtt_options = self.options[self.choice.current].clone();
        eventloop.mqtt_options.set_client_id(self.client_id.clone());
    }

    /// Takes a client id change the machine asked for; whether there was one.
    fn take_client_id(&mut self, control: &Control, eventloop: &mut EventLoop) -> bool {
        match control.client_id_change() {
            Some(client_id) => {
                self.client_id = client_id;
                self.aim(eventloop);
                true
            }
            None => false,
        }
    }
}

/// Whether the broker took the connection before `error` ended it (it answered, then
/// dropped it: busy or restarting), rather than never being reached at all.
fn answered(error: &ConnectionError) -> bool {
    let dropped = |io: &std::io::Error| {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
        matches!(
            io.kind(),
            ConnectionReset | ConnectionAborted | UnexpectedEof | BrokenPipe
        )
    };
    match error {
        ConnectionError::MqttState(StateError::ConnectionAborted) => true,
        ConnectionError::MqttState(StateError::Io(io)) | ConnectionError::Io(io) => dropped(io),
        _ => false,
    }
}

/// Polls the MQTT connection forever, reporting to the driver, until closed.
async fn run(
    mut eventloop: EventLoop,
    mut brokers: Brokers,
    inputs: InputSender,
    (unreachable, keep_trying): (oneshot::Sender<String>, bool),
    control: Control,
) {
    let Control {
        pending_subscriptions,
        closing,
        restart,
        connected,
        ..
    } = &control;
    let send = |input: SignalingInput| {
        inputs.send(Input::Signaling(input));
    };
    let mut unreachable = Some(unreachable);
    let mut failures: u32 = 0;
    let mut up = false;
    loop {
        let polled = tokio::select! {
            polled = eventloop.poll() => polled,
            () = restart.notified() => {
                brokers.take_client_id(&control, &mut eventloop);
                info!("the network changed; connecting to the broker again");
                if up {
                    up = false;
                    connected.store(false, Ordering::SeqCst);
                    send(SignalingInput::Lost);
                }
                // Dropping the connection makes the next poll connect; queued requests stay.
                eventloop.clean();
                failures = 0;
                continue;
            }
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                debug!(?ack, "broker accepted the connection");
                // Being connected once means the server exists: outages are retried.
                unreachable.take();
                failures = 0;
                up = true;
                connected.store(true, Ordering::SeqCst);
                pending_subscriptions.store(0, Ordering::SeqCst);
                send(SignalingInput::Connected);
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let before = pending_subscriptions
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        Some(n.saturating_sub(1))
                    })
                    .unwrap_or(0);
                if before == 1 {
                    send(SignalingInput::Subscribed);
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => send(SignalingInput::Message {
                topic: publish.topic,
                payload: publish.payload.to_vec(),
            }),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                if brokers.take_client_id(&control, &mut eventloop) {
                    // The machine asked for this switch and knows the connection ends.
                    debug!(client_id = %brokers.client_id, "connecting again under another client id");
                    up = false;
                    connected.store(false, Ordering::SeqCst);
                    eventloop.clean();
                    continue;
                }
                if closing.load(Ordering::SeqCst) {
                    debug!("left the broker");
                    return;
                }
                // A DISCONNECT queued for a connection that was gone by then: connect again.
                up = false;
                connected.store(false, Ordering::SeqCst);
                eventloop.clean();
                continue;
            }
            Ok(_) => {}
            Err(error) => {
                if closing.load(Ordering::SeqCst) {
                    return;
                }
                let mut again_here = false;
                if unreachable.is_some() {
                    // Never connected yet: the next broker in the list, until all failed.
                    match brokers.choice.failed_before_connecting(answered(&error)) {
                        FirstAttempt::NextServer => {
                            debug!(%error, "broker unreachable; trying the next");
                            brokers.aim(&mut eventloop);
                            continue;
                        }
                        FirstAttempt::AgainLater => {
                            info!(%error, "the broker dropped the connection; trying again");
                            again_here = true;
                        }
                        FirstAttempt::GiveUp => {
                            if let Some(report) = unreachable.take() {
                                let _ = report.send(error.to_string());
                            }
                            if !keep_trying {
                                return;
                            }
                        }
                    }
                }
                if let ConnectionError::MqttState(StateError::Deserialization(refused)) = &error {
                    warn!(%refused, "the broker sent a packet this client refuses");
                    send(SignalingInput::BadPacket(refused.to_string()));
                }
                if up {
                    info!(%error, "lost the broker; reconnecting");
                    // Before the machine hears of it: what it asks for now finds no
                    // connection up.
                    up = false;
                    connected.store(false, Ordering::SeqCst);
                    send(SignalingInput::Lost);
                }
                failures = failures.saturating_add(1);
                tokio::select! {
                    () = rt::sleep(backoff(failures, rt::random_u64())) => {}
                    // A new network is worth trying at once.
                    () = restart.notified() => failures = 0,
                }
                // Another broker (if there are several; the same one when it only dropped a
                // first connection), under the client id the machine wants now.
                brokers.take_client_id(&control, &mut eventloop);
                if !again_here {
                    brokers.choice.lost(rt::random_u64());
                }
                brokers.aim(&mut eventloop);
            }
        }
    }
}
