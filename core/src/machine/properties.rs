//! Property tests: two clients chat through a simulated broker and network that fail at
//! random (paths lost and found, ICE giving up, the broker going away, network changes,
//! time passing). Whatever the sequence, neither machine panics or asks for the same
//! moment forever; once the network and the broker are back, every message each side sent
//! arrives exactly once and in order, and only sent messages are reported delivered.
//!
//! A network change is either a lost link (the old path dies with it) or a new link that
//! comes before the old one goes: then what the moving side closes still reaches the other
//! (its old connection's close, and its old broker connection's last will saying it is
//! offline). A side renewing its broker connection is unreachable until the next step, and
//! the server says so (`delivery-failed`) to whoever publishes to it meanwhile. Through all
//! of it the chat never ends, except when no way back was found within the recovery
//! window, and a message is refused only after a chat ended.
//!
//! The simulation stands in for the backends: a peer connection pairs with the remote one
//! whose ICE ufrag its description names, opens when the offerer applies the answer while
//! a path exists, and carries frames in order (holding them, as SCTP does, while the path
//! is down). Candidates are not simulated: a description is enough to connect.

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::event::ChatEnd;
use crate::protocol::presence_topic;

const NAMES: [&str; 2] = ["alice", "bob"];

/// Most machine inputs one step may cause: beyond it the machines are talking in circles.
const MAX_INPUTS_PER_STEP: usize = 20_000;

#[derive(Debug, Clone)]
enum Step {
    Send(usize),
    PathDown,
    PathUp,
    IceFails,
    BrokerDown,
    BrokerUp,
    /// A side's network changes; `true`: the new link comes before the old one goes.
    NetworkChanged(usize, bool),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0..2usize).prop_map(Step::Send),
        1 => Just(Step::PathDown),
        1 => Just(Step::PathUp),
        1 => Just(Step::IceFails),
        1 => Just(Step::BrokerDown),
        1 => Just(Step::BrokerUp),
        1 => (0..2usize, any::<bool>()).prop_map(|(side, make_first)| {
            Step::NetworkChanged(side, make_first)
        }),
        3 => (1..3_000u64).prop_map(Step::Wait),
    ]
}

/// One peer connection as the simulated network sees it.
#[derive(Debug, Default)]
struct Link {
    /// The ICE ufrag of its latest description.
    ufrag: String,
    /// Its DTLS certificate: the same across ICE restarts.
    cert: String,
    /// The connection at the other side it is paired with.
    remote: Option<(usize, ConnId)>,
    alive: bool,
    open: bool,
    /// ICE has a working path for it (until the network changes or ICE fails).
    connected: bool,
    /// Negotiated while no path worked: ICE keeps checking, and connects when one does.
    checking: bool,
    /// Sent while no path worked: SCTP delivers it, in order, when one does.
    in_flight: VecDeque<String>,
}

enum Input {
    Signal(SignalingInput),
    Transport(ConnId, TransportEvent),
}

struct World {
    machines: [ClientMachine; 2],
    links: BTreeMap<(usize, ConnId), Link>,
    path_up: bool,
    broker_up: bool,
    now: u64,
    queue: VecDeque<(usize, Input)>,
    sent: [Vec<String>; 2],
    ids: [Vec<MessageId>; 2],
    shown: [Vec<String>; 2],
    delivered: [Vec<MessageId>; 2],
    /// A side reported the chat ended (then messages in flight may be gone, and it says so).
    ended: bool,
    /// Why the chat ended, each time it did.
    endings: Vec<ChatEnd>,
    /// Messages a machine refused while its chat had not ended.
    refused_early: Vec<String>,
    /// Each side's broker connection is registered (else publishes to it fail).
    registered: [bool; 2],
    /// Sides renewing their broker connection: back at the next step.
    renewing: Vec<usize>,
    counter: u64,
}

impl World {
    /// Both online, with a chat open between them.
    fn chatting() -> Self {
        let machine = |name: &str| ClientMachine::new(name, &format!("run-{name}")).unwrap();
        let mut world = Self {
            machines: [machine(NAMES[0]), machine(NAMES[1])],
            links: BTreeMap::new(),
            path_up: true,
            broker_up: true,
            now: 1_000,
            queue: VecDeque::new(),
            sent: Default::default(),
            ids: Default::default(),
            shown: Default::default(),
            delivered: Default::default(),
            ended: false,
            endings: Vec::new(),
            refused_early: Vec::new(),
            registered: [false; 2],
            renewing: Vec::new(),
            counter: 0,
        };
        for side in 0..2 {
            world.reconnect(side);
        }
        world.settle();
        world.wait(registration::PRESENCE_GRACE_MS);
        assert!(world.machines.iter().all(ClientMachine::is_online));
        world.machines[0]
            .connect_to_peer(NAMES[1], world.now)
            .unwrap();
        world.drain(0);
        world.settle();
        for side in 0..2 {
            let peer = NAMES[1 - side];
            assert_eq!(
                world.machines[side].peer_status(peer),
                Some(PeerStatus::Connected)
            );
        }
        world
    }

    fn signal(&mut self, side: usize, input: SignalingInput) {
        self.queue.push_back((side, Input::Signal(input)));
    }

    fn transport(&mut self, (side, conn): (usize, ConnId), event: TransportEvent) {
        self.queue.push_back((side, Input::Transport(conn, event)));
    }

    fn run(&mut self, step: &Step) {
        for side in std::mem::take(&mut self.renewing) {
            self.reconnect(side);
        }
        self.settle();
        match *step {
            Step::Send(side) => {
                self.counter += 1;
                let text = format!("{} #{}", NAMES[side], self.counter);
                match self.machines[side].send_message(NAMES[1 - side], &text) {
                    Ok(id) => {
                        self.sent[side].push(text);
                        self.ids[side].push(id);
                    }
                    Err(_) if !self.ended => self.refused_early.push(text),
                    Err(_) => {}
                }
                self.drain(side);
            }
            Step::PathDown => {
                self.path_up = false;
                for key in self.live_keys() {
                    if self.links[&key].open && self.links[&key].connected {
                        self.transport(key, TransportEvent::StateChanged(PeerStatus::Disconnected));
                    }
                }
            }
            Step::PathUp => self.path_back(),
            Step::IceFails if !self.path_up => {
                for key in self.live_keys() {
                    let link = self.links.get_mut(&key).expect("live");
                    link.checking = false;
                    if link.connected {
                        link.connected = false;
                        self.transport(key, TransportEvent::StateChanged(PeerStatus::Failed));
                    }
                }
            }
            Step::IceFails => {}
            Step::BrokerDown => {
                if self.broker_up {
                    self.broker_up = false;
                    self.registered = [false; 2];
                    for side in 0..2 {
                        self.signal(side, SignalingInput::Lost);
                    }
                }
            }
            Step::BrokerUp => self.broker_back(),
            Step::NetworkChanged(side, make_first) => {
                if make_first {
                    // The old broker connection closes while its link still works: the
                    // broker publishes its last will.
                    if self.broker_up && self.registered[side] {
                        self.last_will(side);
                    }
                } else {
                    // The side's old path is gone; a new one exists if the network is up.
                    self.lose_links_of(side);
                }
                self.machines[side].network_changed(self.now);
                self.drain(side);
                if make_first {
                    // What it closed on the old link reached the other side; the old link
                    // goes now.
                    self.settle();
                    self.lose_links_of(side);
                }
            }
            Step::Wait(ms) => self.wait(ms),
        }
        self.settle();
    }

    fn path_back(&mut self) {
        self.path_up = true;
        for key in self.live_keys() {
            if std::mem::take(&mut self.links.get_mut(&key).expect("live").checking) {
                self.connect(key);
            }
        }
        for key in self.live_keys() {
            let link = &self.links[&key];
            if link.open && link.connected {
                self.transport(key, TransportEvent::StateChanged(PeerStatus::Connected));
                self.flush(key);
            }
        }
    }

    fn broker_back(&mut self) {
        if !self.broker_up {
            self.broker_up = true;
            for side in 0..2 {
                self.reconnect(side);
            }
        }
    }

    /// `side` connects to the broker again, if there is one, and registers.
    fn reconnect(&mut self, side: usize) {
        if self.broker_up {
            self.registered[side] = true;
            self.signal(side, SignalingInput::Connected);
            self.signal(side, SignalingInput::Subscribed);
        }
    }

    /// The paths of `side`'s connections are gone.
    fn lose_links_of(&mut self, side: usize) {
        for key in self.live_keys() {
            let remote = self.links[&key].remote;
            if key.0 == side || remote.is_some_and(|r| r.0 == side) {
                self.links.get_mut(&key).expect("live").connected = false;
            }
        }
    }

    /// The broker publishes `side`'s last will: its presence record saying offline.
    fn last_will(&mut self, side: usize) {
        let will = SignalMessage::Presence(protocol::Presence {
            from: NAMES[side].to_owned(),
            session: format!("run-{}", NAMES[side]),
            online: false,
            since: None,
        });
        self.signal(
            1 - side,
            SignalingInput::Message {
                topic: presence_topic(NAMES[side]),
                payload: protocol::encode(&will),
            },
        );
    }

    fn live_keys(&self) -> Vec<(usize, ConnId)> {
        (self.links.iter())
            .filter(|(_, link)| link.alive)
            .map(|(key, _)| *key)
            .collect()
    }

    /// Lets `ms` pass, handling every deadline on the way.
    fn wait(&mut self, ms: u64) {
        let target = self.now + ms;
        for _ in 0..MAX_INPUTS_PER_STEP {
            let next = (self.machines.iter())
                .filter_map(ClientMachine::poll_timeout)
                .min()
                .filter(|&t| t <= target);
            let Some(next) = next else {
                self.now = target;
                return;
            };
            self.now = self.now.max(next);
            for side in 0..2 {
                if self.machines[side].poll_timeout() <= Some(self.now) {
                    self.machines[side].handle_timeout(self.now);
                    self.drain(side);
                }
            }
            self.settle();
        }
        panic!("a machine asks for the same moment over and over");
    }

    /// Feeds queued inputs until nothing more happens.
    fn settle(&mut self) {
        for _ in 0..MAX_INPUTS_PER_STEP {
            let Some((side, input)) = self.queue.pop_front() else {
                return;
            };
            let now = self.now;
            match input {
                Input::Signal(input) => self.machines[side].handle_signaling(input, now),
                Input::Transport(conn, event) => {
                    self.machines[side].handle_transport(conn, event, now)
                }
            }
            self.drain(side);
        }
        panic!("the machines keep each other busy forever");
    }

    fn drain(&mut self, side: usize) {
        while let Some(event) = self.machines[side].poll_event() {
            match event {
                ClientEvent::Message { text, .. } => self.shown[side].push(text),
                ClientEvent::Delivered { id, .. } => self.delivered[side].push(id),
                ClientEvent::PeerDisconnected { reason, .. } => {
                    self.ended = true;
                    self.endings.push(reason);
                }
                _ => {}
            }
        }
        while let Some(action) = self.machines[side].poll_action() {
            self.execute(side, action);
        }
    }

    fn execute(&mut self, side: usize, action: Action) {
        let other = 1 - side;
        match action {
            Action::Subscribe { .. }
            | Action::Unsubscribe { .. }
            | Action::ConnectAs { .. }
            | Action::CloseSignaling
            | Action::AddCandidate { .. }
            | Action::SendData { .. }
            | Action::Store(_)
            | Action::KeepPin { .. } => {}
            Action::Publish { topic, payload, .. } => {
                let to_other = topic == protocol::incoming_topic(NAMES[other]);
                let for_other = to_other || topic == presence_topic(NAMES[side]);
                if !self.broker_up || !self.registered[side] {
                    return;
                }
                if to_other && !self.registered[other] {
                    // peerchat-server tells the sender the user is not there.
                    let failed = SignalMessage::DeliveryFailed {
                        target: NAMES[other].to_owned(),
                        reason: "user-offline".into(),
                        timestamp: 0,
                    };
                    let topic = protocol::incoming_topic(NAMES[side]);
                    let payload = protocol::encode(&failed);
                    self.signal(side, SignalingInput::Message { topic, payload });
                } else if for_other && self.registered[other] {
                    self.signal(other, SignalingInput::Message { topic, payload });
                }
            }
            Action::RestartSignaling => {
                // Unreachable until the next step: what is published to it meanwhile fails.
                self.registered[side] = false;
                self.signal(side, SignalingInput::Lost);
                self.renewing.push(side);
            }
            Action::StartOffer { conn, .. } => {
                self.new_link((side, conn));
                self.describe((side, conn));
            }
            Action::RestartIce { conn } => {
                if self.links.get(&(side, conn)).is_some_and(|l| l.alive) {
                    self.describe((side, conn));
                }
            }
            Action::AcceptOffer { conn, sdp, .. } => {
                if !self.links.contains_key(&(side, conn)) {
                    self.new_link((side, conn));
                }
                self.pair((side, conn), other, &sdp);
                self.describe((side, conn));
            }
            Action::ApplyAnswer { conn, sdp } => {
                self.pair((side, conn), other, &sdp);
                self.connect((side, conn));
            }
            Action::SendText { conn, text } => self.carry((side, conn), text),
            Action::ClosePeer { conn } => {
                let Some(link) = self.links.get_mut(&(side, conn)) else {
                    return;
                };
                link.alive = false;
                let reaches = self.path_up && link.connected;
                if let Some(remote) = link.remote
                    && reaches
                    && self.links[&remote].alive
                    && self.links[&remote].open
                {
                    self.transport(remote, TransportEvent::ChannelClosed);
                }
            }
        }
    }

    fn new_link(&mut self, key: (usize, ConnId)) {
        let link = Link {
            cert: format!("{}/{}", key.0, key.1),
            alive: true,
            ..Link::default()
        };
        self.links.insert(key, link);
    }

    /// A new description for `key` (an offer or answer, after a restart too).
    fn describe(&mut self, key: (usize, ConnId)) {
        self.counter += 1;
        let link = self.links.get_mut(&key).expect("described links exist");
        link.ufrag = format!("u{}", self.counter);
        let sdp = format!(
            "v=0\r\na=ice-ufrag:{}\r\na=fingerprint:sha-256 {}\r\n",
            link.ufrag, link.cert
        );
        self.transport(key, TransportEvent::LocalDescription(sdp));
    }

    /// Pairs `key` with the connection of `other` whose description `sdp` is.
    fn pair(&mut self, key: (usize, ConnId), other: usize, sdp: &str) {
        let ufrag = peer::ice_ufrag(sdp).expect("simulated descriptions name a ufrag");
        let remote = (self.links.iter())
            .find(|((side, _), link)| *side == other && link.alive && link.ufrag == ufrag)
            .map(|(key, _)| *key);
        if let Some(remote) = remote {
            self.links.get_mut(&key).expect("exists").remote = Some(remote);
            self.links.get_mut(&remote).expect("exists").remote = Some(key);
        }
    }

    /// The offerer applied the answer: ICE and the channel come up if a path exists.
    fn connect(&mut self, key: (usize, ConnId)) {
        let Some(remote) = self.links.get(&key).and_then(|l| l.remote) else {
            return;
        };
        let both_alive = self.links[&key].alive && self.links[&remote].alive;
        if !both_alive || self.links[&remote].remote != Some(key) {
            return;
        }
        if !self.path_up {
            self.links.get_mut(&key).expect("exists").checking = true;
            return;
        }
        for end in [key, remote] {
            let link = self.links.get_mut(&end).expect("exists");
            link.connected = true;
            if link.open {
                self.transport(end, TransportEvent::StateChanged(PeerStatus::Connected));
            } else {
                link.open = true;
                self.transport(end, TransportEvent::ChannelOpen);
            }
        }
        self.flush(key);
        self.flush(remote);
    }

    fn deliverable(&self, key: (usize, ConnId)) -> Option<(usize, ConnId)> {
        let link = &self.links[&key];
        let remote = link.remote?;
        let far = &self.links[&remote];
        let works = self.path_up && link.connected && far.connected;
        (link.alive && far.alive && far.open && works).then_some(remote)
    }

    fn carry(&mut self, key: (usize, ConnId), text: String) {
        let Some(link) = self.links.get_mut(&key) else {
            return;
        };
        if !link.alive || !link.open {
            return;
        }
        link.in_flight.push_back(text);
        self.flush(key);
    }

    fn flush(&mut self, key: (usize, ConnId)) {
        let Some(remote) = self.deliverable(key) else {
            return;
        };
        let in_flight = std::mem::take(&mut self.links.get_mut(&key).expect("exists").in_flight);
        for text in in_flight {
            self.transport(remote, TransportEvent::ChannelMessage(text));
        }
    }
}

/// Whether `shown` is `sent` with some left out, nothing repeated, nothing reordered.
fn in_order_once(shown: &[String], sent: &[String]) -> bool {
    let mut rest = sent.iter();
    shown.iter().all(|text| rest.any(|s| s == text))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_message_arrives_once_and_in_order_whatever_fails(
        steps in proptest::collection::vec(step(), 0..40)
    ) {
        let mut world = World::chatting();
        for step in &steps {
            world.run(step);
        }
        // Everything heals; recovery has time to finish.
        world.broker_back();
        for side in std::mem::take(&mut world.renewing) {
            world.reconnect(side);
        }
        world.path_back();
        world.settle();
        for _ in 0..90 {
            world.wait(1_000);
        }
        prop_assert!(
            world.endings.iter().all(|&end| end == ChatEnd::Unreachable),
            "a chat between peerchat peers ended other than by giving up: {:?}", world.endings
        );
        prop_assert!(
            world.refused_early.is_empty(),
            "refused while the chat went on: {:?}", world.refused_early
        );

        for side in 0..2 {
            let other = 1 - side;
            prop_assert!(
                in_order_once(&world.shown[other], &world.sent[side]),
                "{} showed {:?} of {:?}", NAMES[other], world.shown[other], world.sent[side]
            );
            if !world.ended {
                prop_assert_eq!(&world.shown[other], &world.sent[side]);
                prop_assert_eq!(
                    world.machines[side].peer_status(NAMES[other]),
                    Some(PeerStatus::Connected)
                );
            }
            let mut delivered = world.delivered[side].clone();
            delivered.sort_unstable();
            delivered.dedup();
            prop_assert_eq!(delivered.len(), world.delivered[side].len(), "delivered twice");
            prop_assert!(delivered.iter().all(|id| world.ids[side].contains(id)));
        }
    }
}
