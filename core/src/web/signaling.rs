//! The broker connection in the browser: an MQTT 3.1.1 client over the page's WebSocket,
//! with keep-alive, and reconnects after the shared backoff.
//!
//! It only moves packets: what to subscribe and publish, and what a lost connection means,
//! is decided by the state machine, which re-subscribes and re-registers after every
//! `Connected`. Only publishes made while disconnected are kept, and sent after CONNACK.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::select;
use futures::{FutureExt, StreamExt, pin_mut, select_biased};
use mqttrs::{
    Connack, Connect, ConnectReturnCode, LastWill, Packet, Pid, Protocol, Publish, QoS, QosPid,
    Suback, Subscribe, SubscribeReturnCodes, SubscribeTopic, Unsubscribe,
};
use tracing::{debug, info, warn};

use super::keepalive::{Due, KeepAlive};
use super::rt;
use super::socket::{Socket, SocketEvent};
use crate::client::{Input, InputSender};
use crate::machine::{ClientMachine, Delivery, SignalingInput};
use crate::mqtt_frames::{self as mqtt, FrameBuffer};
use crate::protocol::MAX_MQTT_PACKET_BYTES;
use crate::reconnect::{FirstAttempt, ServerChoice, backoff};
use crate::server_url::{Carrier, ServerUrl};

/// Seconds between MQTT pings; a dead connection is noticed after about 1.5 times this.
const KEEP_ALIVE_SECS: u16 = 15;
const KEEP_ALIVE: Duration = Duration::from_secs(KEEP_ALIVE_SECS as u64);
/// How long a connection attempt may take from opening the WebSocket to CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a clean close may take before it is abandoned.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Most publishes kept while the broker is away; the oldest go first.
const MAX_QUEUED_PUBLISHES: usize = 256;

/// What the backend asks of the signaling task.
#[derive(Debug)]
enum Request {
    Subscribe(String, Delivery),
    Unsubscribe(String),
    /// Connect under this client id from now on (see `Action::ConnectAs`).
    ConnectAs(String),
    Publish(Outgoing),
    /// The network changed: drop the connection and connect again without waiting.
    Restart,
    Close,
}

#[derive(Debug, Clone, PartialEq)]
struct Outgoing {
    topic: String,
    payload: Vec<u8>,
    retain: bool,
    delivery: Delivery,
}

/// The backend's handle on the signaling task.
pub(crate) struct SignalingLink {
    requests: mpsc::UnboundedSender<Request>,
    done: oneshot::Receiver<()>,
}

impl SignalingLink {
    /// Starts connecting. The receiver yields a reason if the broker cannot be reached at
    /// all; it is dropped unanswered once the first connection succeeds.
    /// Connects to the first broker that answers. If none does, the receiver hears why;
    /// then the link stops, unless `keep_trying` (a client started offline), when it goes on
    /// as after a lost connection.
    pub fn start(
        urls: &[ServerUrl],
        machine: &ClientMachine,
        inputs: InputSender,
        keep_trying: bool,
    ) -> (Self, oneshot::Receiver<String>) {
        let (requests_tx, requests) = mpsc::unbounded();
        let (unreachable_tx, unreachable) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        match urls
            .iter()
            .map(websocket_url)
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(urls) => {
                let session = Session {
                    choice: ServerChoice::new(urls.len()),
                    url: urls[0].clone(),
                    urls,
                    identity: Identity::of(machine),
                    inputs,
                    requests,
                    unreachable: Some(unreachable_tx),
                    keep_trying,
                    queue: PendingPublishes::default(),
                    clock: rt::Clock::new(),
                };
                rt::spawn(async move {
                    session.run().await;
                    let _ = done_tx.send(());
                });
            }
            Err(reason) => {
                let _ = unreachable_tx.send(reason);
                let _ = done_tx.send(());
            }
        }
        let link = Self {
            requests: requests_tx,
            done,
        };
        (link, unreachable)
    }

    pub fn subscribe(&self, topic: String, delivery: Delivery) {
        self.request(Request::Subscribe(topic, delivery));
    }

    pub fn unsubscribe(&self, topic: String) {
        self.request(Request::Unsubscribe(topic));
    }

    pub fn publish(&self, topic: String, payload: Vec<u8>, retain: bool, delivery: Delivery) {
        self.request(Request::Publish(Outgoing {
            topic,
            payload,
            retain,
            delivery,
        }));
    }

    /// Connects under `client_id` from now on; a connection that is up ends cleanly and the
    /// next follows at once.
    pub fn connect_as(&self, client_id: String) {
        self.request(Request::ConnectAs(client_id));
    }

    /// Connects again at once (see [`Request::Restart`]).
    pub fn restart(&self) {
        self.request(Request::Restart);
    }

    /// Leaves the broker cleanly (DISCONNECT, so no last will is published).
    pub fn close(&self) {
        self.request(Request::Close);
    }

    /// Resolves when the connection is closed, or after a short grace.
    pub async fn closed(self) {
        self.close();
        let grace = rt::sleep(CLOSE_GRACE);
        pin_mut!(grace);
        let _ = select(self.done, grace).await;
    }

    fn request(&self, request: Request) {
        if self.requests.unbounded_send(request).is_err() {
            debug!("signaling has stopped; request dropped");
        }
    }
}

/// A browser speaks MQTT only over WebSocket.
fn websocket_url(url: &ServerUrl) -> Result<String, String> {
    match url.carrier {
        Carrier::WebSocket | Carrier::SecureWebSocket => Ok(url.websocket_url()),
        Carrier::Tcp | Carrier::Tls => Err(format!(
            "a browser reaches MQTT brokers only over WebSocket: use a ws:// or wss:// URL \
             instead of {}",
            url.original
        )),
    }
}

/// Who we are to the broker: the client id and the last will.
struct Identity {
    client_id: String,
    will_topic: String,
    will_payload: Vec<u8>,
}

impl Identity {
    fn of(machine: &ClientMachine) -> Self {
        let (will_topic, will_payload) = machine.last_will();
        Self {
            client_id: machine.client_id(),
            will_topic,
            will_payload,
        }
    }

    fn connect_packet(&self) -> Packet<'_> {
        Packet::Connect(Connect {
            protocol: Protocol::MQTT311,
            keep_alive: KEEP_ALIVE_SECS,
            client_id: &self.client_id,
            clean_session: true,
            last_will: Some(LastWill {
                topic: &self.will_topic,
                message: &self.will_payload,
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
            username: None,
            password: None,
        })
    }
}

/// Publishes made while the broker is away, oldest first, bounded.
#[derive(Debug, Default)]
struct PendingPublishes(VecDeque<Outgoing>);

impl PendingPublishes {
    fn push(&mut self, publish: Outgoing) {
        if self.0.len() >= MAX_QUEUED_PUBLISHES
            && let Some(dropped) = self.0.pop_front()
        {
            warn!(topic = %dropped.topic, "broker away too long: oldest queued publish dropped");
        }
        self.0.push_back(publish);
    }

    fn drain(&mut self) -> impl Iterator<Item = Outgoing> + '_ {
        self.0.drain(..)
    }
}

/// What one step of a connection leads to.
enum Flow {
    Continue,
    /// Leave the broker cleanly and stop.
    Leave,
    /// The connection is unusable; the reason says why.
    Drop(String),
    /// Drop the connection and connect again at once.
    Restart,
    /// Leave cleanly and connect again at once (under another client id).
    Switch,
}

/// How one connection ended.
enum Ended {
    Left,
    Dropped {
        reason: String,
        /// The broker took the connection (the WebSocket opened) and dropped it without an
        /// answer: a busy or restarting broker, worth trying again before the first
        /// connection. False for a refusal or a connect timeout (see [`Link::conclusive`]).
        answered: bool,
        was_up: bool,
    },
    Restarted {
        was_up: bool,
    },
    /// Left cleanly on the machine's request, to connect again under another client id.
    Switched,
}

/// What woke a connection's loop.
enum Wake {
    Socket(Option<SocketEvent>),
    Request(Option<Request>),
    Tick,
}

/// The signaling task: connects, reconnects, and stops when asked or when the broker was
/// never reachable.
struct Session {
    /// The brokers (WebSocket URLs), and the one in use.
    urls: Vec<String>,
    choice: ServerChoice,
    url: String,
    identity: Identity,
    inputs: InputSender,
    requests: mpsc::UnboundedReceiver<Request>,
    unreachable: Option<oneshot::Sender<String>>,
    /// After no broker answered at first: go on trying (a client started offline).
    keep_trying: bool,
    queue: PendingPublishes,
    clock: rt::Clock,
}

impl Session {
    async fn run(mut self) {
        let mut failures: u32 = 0;
        loop {
            let (reason, answered, was_up) = match self.connection().await {
                Ended::Left => return,
                Ended::Switched => {
                    failures = 0;
                    continue;
                }
                Ended::Dropped {
                    reason,
                    answered,
                    was_up,
                } => (reason, answered, was_up),
                Ended::Restarted { was_up } => {
                    info!("the network changed; connecting to the broker again");
                    if was_up {
                        self.report(SignalingInput::Lost);
                    }
                    failures = 0;
                    continue;
                }
            };
            let mut again_here = false;
            if self.unreachable.is_some() {
                // Never connected yet: the next broker in the list, until all failed.
                match self.choice.failed_before_connecting(answered) {
                    FirstAttempt::NextServer => {
                        debug!(%reason, "broker unreachable; trying the next");
                        self.url = self.urls[self.choice.current].clone();
                        continue;
                    }
                    FirstAttempt::AgainLater => {
                        info!(%reason, "the broker dropped the connection; trying again");
                        again_here = true;
                    }
                    FirstAttempt::GiveUp => {
                        if let Some(report) = self.unreachable.take() {
                            let _ = report.send(reason.clone());
                        }
                        if !self.keep_trying {
                            return;
                        }
                    }
                }
            }
            // Another broker, if there are several; the same one when it only dropped a
            // first connection.
            if !again_here {
                self.choice.lost(rt::random_u64());
            }
            self.url = self.urls[self.choice.current].clone();
            if was_up {
                info!(%reason, "lost the broker; reconnecting");
                self.report(SignalingInput::Lost);
                failures = 0;
            } else {
                debug!(%reason, failures, "broker still unreachable");
            }
            failures = failures.saturating_add(1);
            if !self.wait(backoff(failures, rt::random_u64())).await {
                return;
            }
        }
    }

    /// Waits before the next attempt, holding requests meanwhile; `false` when asked to stop.
    async fn wait(&mut self, duration: Duration) -> bool {
        let timer = rt::sleep(duration).fuse();
        pin_mut!(timer);
        loop {
            let request = select_biased! {
                request = self.requests.next() => request,
                () = timer => return true,
            };
            match self.hold(request) {
                Flow::Leave => return false,
                Flow::Restart | Flow::Switch => return true,
                Flow::Continue | Flow::Drop(_) => {}
            }
        }
    }

    /// One connection, from opening the WebSocket until it ends.
    async fn connection(&mut self) -> Ended {
        let (events_tx, mut events) = mpsc::unbounded();
        let socket = match Socket::open(&self.url, events_tx) {
            Ok(socket) => socket,
            Err(reason) => {
                return Ended::Dropped {
                    reason,
                    answered: false,
                    was_up: false,
                };
            }
        };
        let mut link = Link::new(socket, self.clock);
        loop {
            let wake = {
                let wait = link.keep_alive.next_due().saturating_sub(self.clock.now());
                let timer = rt::sleep(Duration::from_millis(wait)).fuse();
                pin_mut!(timer);
                select_biased! {
                    event = events.next() => Wake::Socket(event),
                    request = self.requests.next() => Wake::Request(request),
                    () = timer => Wake::Tick,
                }
            };
            let flow = match wake {
                Wake::Socket(event) => self.on_socket_event(&mut link, event),
                Wake::Request(request) => self.on_request(&mut link, request),
                Wake::Tick => link.on_tick(),
            };
            match flow {
                Flow::Continue => {}
                Flow::Leave => {
                    link.leave(&mut events).await;
                    return Ended::Left;
                }
                Flow::Drop(reason) => {
                    return Ended::Dropped {
                        reason,
                        answered: link.opened && !link.conclusive,
                        was_up: link.up,
                    };
                }
                Flow::Restart => return Ended::Restarted { was_up: link.up },
                Flow::Switch => {
                    link.leave(&mut events).await;
                    return Ended::Switched;
                }
            }
        }
    }

    fn on_socket_event(&mut self, link: &mut Link, event: Option<SocketEvent>) -> Flow {
        match event {
            Some(SocketEvent::Open) => {
                link.opened = true;
                link.send(&self.identity.connect_packet());
                Flow::Continue
            }
            Some(SocketEvent::Binary(bytes)) => self.on_bytes(link, &bytes),
            Some(SocketEvent::NotBinary) => {
                Flow::Drop("the broker sent a text message; MQTT over WebSocket is binary".into())
            }
            Some(SocketEvent::Error) => {
                debug!("WebSocket error; its close event follows");
                Flow::Continue
            }
            Some(SocketEvent::Closed { code, reason }) => {
                Flow::Drop(describe_close(&self.url, link.opened, code, &reason))
            }
            None => Flow::Drop("the WebSocket's callbacks went away".into()),
        }
    }

    fn on_bytes(&mut self, link: &mut Link, bytes: &[u8]) -> Flow {
        link.frames.push(bytes);
        loop {
            let frame = match link.frames.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Flow::Continue,
                Err(error) => return self.refuse_packet(error.to_string()),
            };
            match self.on_frame(link, &frame) {
                Flow::Continue => {}
                other => return other,
            }
        }
    }

    fn on_frame(&mut self, link: &mut Link, frame: &[u8]) -> Flow {
        let packet = match mqtt::decode(frame) {
            Ok(packet) => packet,
            Err(error) => return self.refuse_packet(error.to_string()),
        };
        link.keep_alive.on_received(self.clock.now());
        match packet {
            Packet::Connack(ack) => return self.on_connack(link, ack),
            Packet::Suback(ack) => {
                if link.on_suback(&ack) {
                    self.report(SignalingInput::Subscribed);
                }
            }
            Packet::Publish(publish) => {
                link.acknowledge(&publish);
                self.report(SignalingInput::Message {
                    topic: publish.topic_name.to_owned(),
                    payload: publish.payload.to_vec(),
                });
            }
            Packet::Pubrel(pid) => link.send(&Packet::Pubcomp(pid)),
            Packet::Pingresp
            | Packet::Puback(_)
            | Packet::Pubrec(_)
            | Packet::Pubcomp(_)
            | Packet::Unsuback(_) => {}
            other => debug!(kind = ?other.get_type(), "unexpected packet from the broker ignored"),
        }
        Flow::Continue
    }

    fn on_connack(&mut self, link: &mut Link, ack: Connack) -> Flow {
        if ack.code != ConnectReturnCode::Accepted {
            link.conclusive = true;
            return Flow::Drop(format!("the broker refused the connection: {:?}", ack.code));
        }
        if link.up {
            debug!("a second CONNACK ignored");
            return Flow::Continue;
        }
        debug!("broker accepted the connection");
        link.up = true;
        link.keep_alive.on_connected(self.clock.now());
        // Being connected once means the server exists: outages from now on are retried.
        self.unreachable.take();
        self.report(SignalingInput::Connected);
        for publish in self.queue.drain() {
            link.publish(publish);
        }
        Flow::Continue
    }

    fn on_request(&mut self, link: &mut Link, request: Option<Request>) -> Flow {
        match request {
            Some(Request::Subscribe(topic, delivery)) if link.up => link.subscribe(topic, delivery),
            Some(Request::Unsubscribe(topic)) if link.up => link.unsubscribe(topic),
            Some(Request::ConnectAs(client_id)) if link.up => {
                self.identity.client_id = client_id;
                return Flow::Switch;
            }
            Some(Request::Publish(publish)) if link.up => link.publish(publish),
            other => return self.hold(other),
        }
        Flow::Continue
    }

    /// A request while no connection is up: publishes wait for the next CONNACK;
    /// subscriptions are dropped, since the machine subscribes again after `Connected`.
    fn hold(&mut self, request: Option<Request>) -> Flow {
        match request {
            Some(Request::Publish(publish)) => self.queue.push(publish),
            Some(Request::Subscribe(topic, _) | Request::Unsubscribe(topic)) => {
                debug!(%topic, "subscription change dropped while disconnected");
            }
            Some(Request::ConnectAs(client_id)) => self.identity.client_id = client_id,
            Some(Request::Restart) => return Flow::Restart,
            Some(Request::Close) | None => return Flow::Leave,
        }
        Flow::Continue
    }

    /// The broker sent a packet this client refuses: the app hears why, and the connection
    /// is dropped.
    fn refuse_packet(&self, reason: String) -> Flow {
        self.report(SignalingInput::BadPacket(reason.clone()));
        Flow::Drop(format!("refused a packet from the broker: {reason}"))
    }

    fn report(&self, input: SignalingInput) {
        self.inputs.send(Input::Signaling(input));
    }
}

/// One WebSocket connection's MQTT state.
struct Link {
    socket: Socket,
    frames: FrameBuffer,
    keep_alive: KeepAlive,
    clock: rt::Clock,
    /// The WebSocket opened (CONNECT was sent).
    opened: bool,
    /// The broker accepted us (CONNACK).
    up: bool,
    /// The attempt ended for good: the broker refused us (a CONNACK error), or did not
    /// accept us within the connect timeout. Trying it again at once would end alike.
    conclusive: bool,
    last_pid: Pid,
    /// Subscriptions sent and not yet acknowledged, by packet id.
    unacked: HashMap<Pid, String>,
}

impl Link {
    fn new(socket: Socket, clock: rt::Clock) -> Self {
        let keep_alive = KeepAlive::new(
            clock.now(),
            KEEP_ALIVE.as_millis() as u64,
            CONNECT_TIMEOUT.as_millis() as u64,
        );
        Self {
            socket,
            frames: FrameBuffer::new(MAX_MQTT_PACKET_BYTES),
            keep_alive,
            clock,
            opened: false,
            up: false,
            conclusive: false,
            last_pid: Pid::new(),
            unacked: HashMap::new(),
        }
    }

    fn next_pid(&mut self) -> Pid {
        self.last_pid = self.last_pid + 1;
        self.last_pid
    }

    fn send(&mut self, packet: &Packet<'_>) {
        let frame = match mqtt::encode(packet, MAX_MQTT_PACKET_BYTES) {
            Ok(frame) => frame,
            Err(error) => {
                warn!(%error, kind = ?packet.get_type(), "packet for the broker not sent");
                return;
            }
        };
        match self.socket.send(&frame) {
            Ok(()) => self.keep_alive.on_sent(self.clock.now()),
            Err(error) => debug!(%error, "packet not sent; the WebSocket is closing"),
        }
    }

    fn subscribe(&mut self, topic: String, delivery: Delivery) {
        let qos = match delivery {
            Delivery::AtMostOnce => QoS::AtMostOnce,
            Delivery::AtLeastOnce => QoS::AtLeastOnce,
        };
        let pid = self.next_pid();
        let topics = vec![SubscribeTopic {
            topic_path: topic.clone(),
            qos,
        }];
        self.send(&Packet::Subscribe(Subscribe::new(pid, topics)));
        self.unacked.insert(pid, topic);
    }

    fn unsubscribe(&mut self, topic: String) {
        let pid = self.next_pid();
        self.send(&Packet::Unsubscribe(Unsubscribe::new(pid, vec![topic])));
    }

    /// Whether this SUBACK completed every subscription asked for.
    fn on_suback(&mut self, ack: &Suback) -> bool {
        let Some(topic) = self.unacked.remove(&ack.pid) else {
            debug!(pid = ack.pid.get(), "SUBACK for no pending subscription");
            return false;
        };
        if ack.return_codes.contains(&SubscribeReturnCodes::Failure) {
            warn!(%topic, "the broker refused a subscription");
        }
        self.unacked.is_empty()
    }

    fn publish(&mut self, outgoing: Outgoing) {
        let qospid = match outgoing.delivery {
            Delivery::AtMostOnce => QosPid::AtMostOnce,
            Delivery::AtLeastOnce => QosPid::AtLeastOnce(self.next_pid()),
        };
        self.send(&Packet::Publish(Publish {
            dup: false,
            qospid,
            retain: outgoing.retain,
            topic_name: &outgoing.topic,
            payload: &outgoing.payload,
        }));
    }

    fn acknowledge(&mut self, publish: &Publish<'_>) {
        match publish.qospid {
            QosPid::AtMostOnce => {}
            QosPid::AtLeastOnce(pid) => self.send(&Packet::Puback(pid)),
            QosPid::ExactlyOnce(pid) => self.send(&Packet::Pubrec(pid)),
        }
    }

    fn on_tick(&mut self) -> Flow {
        let now = self.clock.now();
        match self.keep_alive.poll(now) {
            Due::Nothing => Flow::Continue,
            Due::Ping => {
                self.send(&Packet::Pingreq);
                self.keep_alive.on_ping_sent(now);
                Flow::Continue
            }
            Due::ConnectTimedOut => {
                self.conclusive = true;
                Flow::Drop(format!(
                    "the broker did not accept the connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            }
            Due::PingTimedOut => Flow::Drop("the broker stopped answering pings".into()),
        }
    }

    /// DISCONNECT (so no last will fires), close, and wait briefly for the close to finish.
    async fn leave(mut self, events: &mut mpsc::UnboundedReceiver<SocketEvent>) {
        if self.up {
            self.send(&Packet::Disconnect);
        }
        self.socket.close();
        let grace = rt::sleep(CLOSE_GRACE).fuse();
        pin_mut!(grace);
        loop {
            select_biased! {
                event = events.next() => {
                    if matches!(event, None | Some(SocketEvent::Closed { .. })) {
                        debug!("left the broker");
                        return;
                    }
                }
                () = grace => {
                    debug!("the broker did not finish closing in time");
                    return;
                }
            }
        }
    }
}

fn describe_close(url: &str, opened: bool, code: u16, reason: &str) -> String {
    let detail = if reason.is_empty() {
        format!("code {code}")
    } else {
        format!("code {code}: {reason}")
    };
    if opened {
        format!("the WebSocket to {url} closed ({detail})")
    } else {
        format!(
            "could not open a WebSocket to {url} ({detail}); check the address and that the \
             broker serves MQTT over WebSocket"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(n: usize) -> Outgoing {
        Outgoing {
            topic: format!("t/{n}"),
            payload: Vec::new(),
            retain: false,
            delivery: Delivery::AtMostOnce,
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn publishes_queued_while_away_are_bounded_dropping_the_oldest() {
        let mut queue = PendingPublishes::default();
        for n in 0..MAX_QUEUED_PUBLISHES + 3 {
            queue.push(outgoing(n));
        }
        let kept: Vec<Outgoing> = queue.drain().collect();
        assert_eq!(kept.len(), MAX_QUEUED_PUBLISHES);
        assert_eq!(kept[0], outgoing(3));
        assert_eq!(kept.last(), Some(&outgoing(MAX_QUEUED_PUBLISHES + 2)));
        assert_eq!(queue.drain().count(), 0);
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn mqtt_urls_are_refused_with_advice() {
        let url = ServerUrl::parse("mqtt://127.0.0.1:1883").expect("parses");
        let error = websocket_url(&url).expect_err("no TCP in a browser");
        assert!(error.contains("ws://"), "{error}");
        let url = ServerUrl::parse("wss://chat.example/mqtt").expect("parses");
        assert_eq!(
            websocket_url(&url),
            Ok("wss://chat.example:443/mqtt".into())
        );
    }
}
