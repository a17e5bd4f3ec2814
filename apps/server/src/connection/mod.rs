//! One client connection as the server sees it: the MQTT conversation, sans-IO.
//!
//! The server terminates MQTT itself; nothing a client sends reaches anyone as it was sent.
//! [`Connection`] takes the client's packets and the time, and answers with [`Output`]s:
//! packets for the client, [`Request`]s for the [`crate::hub`] (register a name, deliver a
//! message, watch a presence record) and the end of the connection. It allows only what
//! peerchat's protocol needs, as an allow-list:
//!
//! - CONNECT first; a will is never published (the server says when a user goes offline);
//!   client ids and persistent sessions mean nothing here (every session starts clean).
//! - SUBSCRIBE to exact topics only: the client's own inbox (held until its name is
//!   registered, so an original client that subscribes first still works) and presence
//!   records, one per contact, up to a cap.
//! - PUBLISH a `register`; once registered, signaling in its own name to other inboxes,
//!   never retained, at a bounded rate. Presence is the server's to say.
//! - PINGREQ, UNSUBSCRIBE, DISCONNECT, and PUBREL for its own QoS 2 publishes. The server
//!   sends nothing at QoS 1 or 2, so acknowledgements from the client are dropped.
//!
//! What is refused is answered as a broker would (a failure SUBACK; a publish acknowledged
//! and dropped) and logged; a client that keeps being refused, or does not register in time,
//! or goes quiet past its keep-alive, is cut.

mod framing;
mod pump;
mod rules;
#[cfg(test)]
mod tests;
mod transport;

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use peerchat_core::identity::PublicKey;
use peerchat_core::protocol::{
    RegisterProof, SignalMessage, decode, incoming_topic, register_proof_bytes,
};
use rumqttc::mqttbytes::{
    Protocol, QoS,
    v4::{
        ConnAck, Connect, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, Publish, SubAck,
        Subscribe, SubscribeReasonCode, UnsubAck, Unsubscribe,
    },
};
use tracing::{debug, info, warn};

pub use framing::{FrameBuffer, FrameError, parse, serialize};
pub use pump::{ConnectionContext, serve};
pub use rules::{RateLimit, Topic, speaks_as};
pub use transport::{ClientInput, ClientOutput, StreamInput, StreamOutput, TcpInput, TcpOutput};

use crate::hub::Claim;
use crate::limits::Limits;
use crate::packets;

/// Identifies one client connection, unique for the server's lifetime.
pub type ConnectionId = u64;

/// What the connection asks of the hub, in order; the pump carries each out before the next
/// packet is read, and reports back where an answer is needed.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Ask for a name; answer with [`Connection::registered`].
    Register(Claim),
    /// The registered name's inbox is subscribed (`true`) or not: only then do messages to
    /// it reach this connection.
    Listen(bool),
    /// Hand `publish` (for `target`'s inbox) to whoever holds `target`; if nobody does,
    /// answer with [`Connection::undeliverable`].
    Deliver {
        target: String,
        publish: Publish,
    },
    /// Send this connection `user`'s presence record now and whenever it changes.
    Watch(String),
    Unwatch(String),
}

/// What the pump must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A packet for the client.
    Send(Packet),
    Hub(Request),
    /// End the connection. `linger`: give what was just sent a moment to reach the client
    /// first (a refusal it should read).
    Close {
        reason: CloseReason,
        linger: bool,
    },
}

/// How the registry answered a register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The name is this connection's now (another connection of the same run and key may
    /// have been closed for it).
    Granted,
    /// Someone else holds the name, or it belongs to another identity key.
    Refused(Refusal),
    /// The registry could not decide (a cluster out of reach): the connection is closed
    /// unanswered, so the client tries again, on another server if it knows one.
    Unavailable,
}

/// Why a register was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another live connection holds it.
    InUse,
    /// The name belongs to an identity key this register did not prove.
    OtherKey,
    /// The register's identity proof does not verify.
    BadProof,
    /// The connection reads another name's inbox, or already holds another name.
    OtherName,
}

impl Refusal {
    /// The word a register-ack carries as its `reason`.
    pub fn word(self) -> &'static str {
        match self {
            Self::InUse => "in-use",
            Self::OtherKey => peerchat_core::protocol::REFUSED_OTHER_KEY,
            Self::BadProof => "bad-proof",
            Self::OtherName => "other-name",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InUse => "another connection holds the name",
            Self::OtherKey => "the name belongs to another identity key",
            Self::BadProof => "the identity proof does not verify",
            Self::OtherName => "the connection reads or holds another name",
        })
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// DISCONNECT: the client left on purpose.
    ClientLeft,
    /// The client closed the connection (or it broke).
    ClientGone,
    /// A newer connection of the same client run took its name over.
    TakenOver,
    /// The client asked for a name it may not have.
    Refused(Refusal),
    /// The registry could not decide the client's register.
    RegistryUnavailable,
    /// No CONNECT in time.
    NoConnect,
    /// CONNECT, but no successful register in time.
    NotRegistered,
    /// Silent past its keep-alive.
    KeepAliveExpired,
    /// Too many refused subscriptions or publishes.
    TooManyRefusals,
    /// Something MQTT 3.1.1 does not allow, or that no client sends.
    ProtocolViolation(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientLeft => f.write_str("the client disconnected"),
            Self::ClientGone => f.write_str("the client closed the connection"),
            Self::TakenOver => f.write_str("a newer connection of the same client took its name"),
            Self::Refused(why) => write!(f, "register refused: {why}"),
            Self::RegistryUnavailable => f.write_str("the name registry is out of reach"),
            Self::NoConnect => f.write_str("no CONNECT in time"),
            Self::NotRegistered => f.write_str("no name registered in time"),
            Self::KeepAliveExpired => f.write_str("silent past its keep-alive"),
            Self::TooManyRefusals => f.write_str("too many refused requests"),
            Self::ProtocolViolation(what) => write!(f, "protocol violation: {what}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingConnect,
    Connected,
    Ended,
}

/// One client connection's state. Times are milliseconds on any monotonic clock.
#[derive(Debug)]
pub struct Connection {
    limits: Limits,
    phase: Phase,
    /// This connection's register challenge (see [`RegisterProof`]).
    nonce: String,
    /// Whose inbox the client subscribed to before registering; held until then.
    pending_inbox: Option<String>,
    challenged: bool,
    /// The name registered on this connection, and whether its inbox is subscribed.
    name: Option<String>,
    listening: bool,
    /// The client registered as the original app does (no session): it drops ICE candidates
    /// that reach it before it has applied the offer or answer they follow.
    original_client: bool,
    watches: BTreeSet<String>,
    refusals: usize,
    rate: RateLimit,
    /// Packet ids of QoS 2 publishes received, until their PUBREL.
    pending_qos2: BTreeSet<u16>,
    keep_alive_ms: u64,
    last_heard: u64,
    /// When a connection without CONNECT, or without a name, is cut.
    deadline: Option<u64>,
    outputs: VecDeque<Output>,
}

impl Connection {
    /// A new connection at `now`, whose register proofs must sign `nonce` (fresh and random).
    pub fn new(limits: Limits, nonce: String, now: u64) -> Self {
        Self {
            limits,
            phase: Phase::AwaitingConnect,
            nonce,
            pending_inbox: None,
            challenged: false,
            name: None,
            listening: false,
            original_client: false,
            watches: BTreeSet::new(),
            refusals: 0,
            rate: RateLimit::new(limits.publishes_per_second, limits.publish_burst, now),
            pending_qos2: BTreeSet::new(),
            keep_alive_ms: limits.max_keep_alive.as_millis() as u64,
            last_heard: now,
            deadline: Some(now + limits.connect_timeout.as_millis() as u64),
            outputs: VecDeque::new(),
        }
    }

    /// The name this connection registered.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Whether what follows an offer or answer must wait a moment before it reaches this
    /// client: the original app's client, which drops candidates that arrive while it is
    /// still applying the description they follow (see `pump::SETTLE_TIME`).
    pub fn needs_time_to_settle(&self) -> bool {
        self.original_client
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next moment [`Connection::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<u64> {
        let silence =
            (self.phase == Phase::Connected).then(|| self.last_heard + self.keep_alive_ms * 3 / 2);
        [silence, self.deadline].into_iter().flatten().min()
    }

    pub fn handle_timeout(&mut self, now: u64) {
        if self.phase == Phase::Ended {
            return;
        }
        if self.deadline.is_some_and(|d| d <= now) {
            let reason = match self.phase {
                Phase::AwaitingConnect => CloseReason::NoConnect,
                _ => CloseReason::NotRegistered,
            };
            return self.close(reason, false);
        }
        if self.phase == Phase::Connected && self.last_heard + self.keep_alive_ms * 3 / 2 <= now {
            self.close(CloseReason::KeepAliveExpired, false);
        }
    }

    /// The client closed its side, or the connection broke.
    pub fn handle_closed(&mut self) {
        self.close(CloseReason::ClientGone, false);
    }

    /// The client sent bytes that are not MQTT, or a packet over the size limit.
    pub fn handle_malformed(&mut self, what: String) {
        self.violation(what);
    }

    /// Another connection of the same run took the name over.
    pub fn taken_over(&mut self) {
        self.close(CloseReason::TakenOver, false);
    }

    pub fn handle_packet(&mut self, packet: Packet, now: u64) {
        match self.phase {
            Phase::Ended => {}
            Phase::AwaitingConnect => match packet {
                Packet::Connect(connect) => self.on_connect(connect, now),
                other => self.violation(format!("{} before CONNECT", kind(&other))),
            },
            Phase::Connected => {
                self.last_heard = now;
                self.on_packet(packet, now)
            }
        }
    }

    /// Nobody holds `target`, to whom this connection's last message went.
    pub fn undeliverable(&mut self, target: &str, now_unix_ms: u64) {
        if let Some(me) = &self.name {
            debug!(target, "message to an offline user");
            let failure = packets::delivery_failed(me, target, now_unix_ms);
            self.send(Packet::Publish(failure));
        }
    }

    /// The registry's answer to this connection's register for `name`.
    pub fn registered(&mut self, name: &str, outcome: Registered) {
        match outcome {
            Registered::Granted => {
                info!(user = %name, "registered");
                self.name = Some(name.to_owned());
                self.deadline = None;
                self.send(Packet::Publish(packets::register_ack(name, None)));
            }
            Registered::Refused(why) => self.refuse_name(name, why),
            Registered::Unavailable => {
                warn!(user = %name, "register undecided: the name registry is out of reach");
                self.close(CloseReason::RegistryUnavailable, false);
            }
        }
    }

    fn on_connect(&mut self, connect: Connect, now: u64) {
        if connect.protocol != Protocol::V4 {
            self.send(Packet::ConnAck(ConnAck::new(
                ConnectReturnCode::RefusedProtocolVersion,
                false,
            )));
            return self.close(
                CloseReason::ProtocolViolation("MQTT 5; this server speaks MQTT 3.1.1".into()),
                true,
            );
        }
        let max = self.limits.max_keep_alive.as_millis() as u64;
        let asked = u64::from(connect.keep_alive) * 1000;
        if asked == 0 || asked > max {
            debug!(
                keep_alive_s = connect.keep_alive,
                "keep-alive held to the server's maximum"
            );
        }
        self.keep_alive_ms = if asked == 0 { max } else { asked.min(max) };
        if let Some(will) = &connect.last_will {
            // Presence is the server's to say; nothing else needs a will.
            debug!(topic = %will.topic, "last will not kept: the server reports who leaves");
        }
        debug!(client_id = %connect.client_id, clean_session = connect.clean_session, "client connected");
        self.phase = Phase::Connected;
        self.last_heard = now;
        self.deadline = Some(now + self.limits.register_timeout.as_millis() as u64);
        // No session is ever kept, so none is ever present.
        self.send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            false,
        )));
    }

    fn on_packet(&mut self, packet: Packet, now: u64) {
        match packet {
            Packet::Publish(publish) => self.on_publish(publish, now),
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(unsubscribe),
            Packet::PubRel(release) => {
                // Answered whether or not the id is known, as MQTT requires.
                self.pending_qos2.remove(&release.pkid);
                self.send(Packet::PubComp(PubComp::new(release.pkid)));
            }
            Packet::PingReq => self.send(Packet::PingResp),
            Packet::Disconnect => self.close(CloseReason::ClientLeft, false),
            // The server sends nothing that needs acknowledging: these answer nothing.
            Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) => {
                debug!("dropped an acknowledgement of a packet the server never sent");
            }
            other => self.violation(format!("{} from a client", kind(&other))),
        }
    }

    fn on_publish(&mut self, publish: Publish, now: u64) {
        let repeat = publish.qos == QoS::ExactlyOnce && self.pending_qos2.contains(&publish.pkid);
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(Packet::PubAck(PubAck::new(publish.pkid))),
            QoS::ExactlyOnce => {
                if !repeat && self.pending_qos2.len() >= self.limits.pending_qos2 {
                    return self.violation("too many QoS 2 publishes without PUBREL".into());
                }
                self.pending_qos2.insert(publish.pkid);
                self.send(Packet::PubRec(PubRec::new(publish.pkid)));
            }
        }
        if repeat {
            // A QoS 2 publish sent again before its PUBREL was handled the first time.
            return;
        }
        if self.limits.check_senders && !self.rate.take(now) {
            return self.refuse_publish(&publish.topic, "too many messages: slow down");
        }
        match Topic::parse(&publish.topic) {
            Some(Topic::Register) => self.on_register(&publish),
            Some(Topic::Inbox(target)) => {
                let Some(me) = self.name.as_deref() else {
                    return self.refuse_publish(&publish.topic, "register before publishing");
                };
                if publish.retain {
                    return self.refuse_publish(&publish.topic, "inbox messages are not kept");
                }
                if self.limits.check_senders
                    && let Err(why) = speaks_as(&publish.payload, me)
                {
                    return self.refuse_publish(&publish.topic, why);
                }
                let target = target.to_owned();
                let mut delivered =
                    Publish::from_bytes(incoming_topic(&target), QoS::AtMostOnce, publish.payload);
                delivered.retain = false;
                self.outputs.push_back(Output::Hub(Request::Deliver {
                    target,
                    publish: delivered,
                }));
            }
            // Presence is what the registry says; a client's own record is not needed.
            Some(Topic::Presence(user)) if self.name.as_deref() == Some(user) => {
                debug!("own presence record not kept: the server keeps presence");
            }
            Some(Topic::Presence(_)) => {
                self.refuse_publish(&publish.topic, "another user's presence record")
            }
            None => self.refuse_publish(&publish.topic, "not a topic of peerchat's"),
        }
    }

    fn on_register(&mut self, publish: &Publish) {
        let (username, session, proof) = match decode(&publish.payload) {
            Ok(SignalMessage::Register {
                username,
                session,
                proof,
                ..
            }) => (username, session, proof),
            other => {
                warn!(?other, "ignored a register that is not one");
                return;
            }
        };
        if self.name.as_deref() == Some(&username) {
            // Asked again: the same answer.
            return self.send(Packet::Publish(packets::register_ack(&username, None)));
        }
        let reads_other = (self.pending_inbox.as_ref()).is_some_and(|inbox| *inbox != username);
        if self.name.is_some() || reads_other {
            return self.refuse_name(&username, Refusal::OtherName);
        }
        let key = match proof {
            None => None,
            Some(proof) => match self.verify(&username, session.as_deref(), &proof) {
                Some(key) => Some(key),
                None => return self.refuse_name(&username, Refusal::BadProof),
            },
        };
        let listening = self.pending_inbox.as_deref() == Some(username.as_str());
        self.listening = listening;
        self.original_client = session.is_none();
        self.outputs.push_back(Output::Hub(Request::Register(Claim {
            name: username,
            session,
            key,
            listening,
        })));
    }

    /// The key of a proof that signs this connection's challenge for `username`.
    fn verify(
        &self,
        username: &str,
        session: Option<&str>,
        proof: &RegisterProof,
    ) -> Option<PublicKey> {
        let key = PublicKey::parse(&proof.key)?;
        let signed = register_proof_bytes(username, &self.nonce, session.unwrap_or_default());
        (proof.nonce == self.nonce && key.verifies(&signed, &proof.sig)).then_some(key)
    }

    fn on_subscribe(&mut self, subscribe: Subscribe) {
        if subscribe.filters.is_empty() || subscribe.pkid == 0 {
            return self.violation("a SUBSCRIBE without filters or packet id".into());
        }
        let codes: Vec<_> = (subscribe.filters.iter())
            .map(|filter| match self.subscription(&filter.path) {
                Ok(()) => SubscribeReasonCode::Success(QoS::AtMostOnce),
                Err(why) => {
                    warn!(filter = %filter.path, why, "subscription refused");
                    self.refusals += 1;
                    SubscribeReasonCode::Failure
                }
            })
            .collect();
        self.send(Packet::SubAck(SubAck::new(subscribe.pkid, codes)));
        self.check_refusals();
    }

    /// Takes one subscription, or says why not. Everything is delivered at QoS 0: the
    /// server keeps no sessions, so a higher QoS would promise nothing more.
    fn subscription(&mut self, filter: &str) -> Result<(), &'static str> {
        match Topic::parse(filter) {
            Some(Topic::Inbox(owner)) => match (&self.name, &self.pending_inbox) {
                (Some(me), _) if me == owner => {
                    if !self.listening {
                        self.listening = true;
                        self.outputs.push_back(Output::Hub(Request::Listen(true)));
                    }
                    Ok(())
                }
                (Some(_), _) => Err("another user's inbox"),
                (None, Some(pending)) if pending == owner => Ok(()),
                (None, Some(_)) => Err("a second inbox"),
                (None, None) => {
                    let owner = owner.to_owned();
                    if !self.challenged {
                        self.challenged = true;
                        let challenge = packets::register_challenge(&owner, &self.nonce);
                        self.send(Packet::Publish(challenge));
                    }
                    self.pending_inbox = Some(owner);
                    Ok(())
                }
            },
            Some(Topic::Presence(user)) => {
                if self.watches.contains(user) {
                    return Ok(());
                }
                if self.watches.len() >= self.limits.watches_per_connection {
                    return Err("too many presence records watched");
                }
                self.watches.insert(user.to_owned());
                (self.outputs).push_back(Output::Hub(Request::Watch(user.to_owned())));
                Ok(())
            }
            Some(Topic::Register) => Err("the register topic is the server's"),
            None => Err("only your own inbox and presence records, by exact name"),
        }
    }

    fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        for filter in &unsubscribe.topics {
            match Topic::parse(filter) {
                Some(Topic::Inbox(owner))
                    if self.name.as_deref() == Some(owner) && self.listening =>
                {
                    self.listening = false;
                    self.outputs.push_back(Output::Hub(Request::Listen(false)));
                }
                Some(Topic::Inbox(owner)) if self.pending_inbox.as_deref() == Some(owner) => {
                    self.pending_inbox = None;
                }
                Some(Topic::Presence(user)) if self.watches.remove(user) => {
                    (self.outputs).push_back(Output::Hub(Request::Unwatch(user.to_owned())));
                }
                _ => {}
            }
        }
        self.send(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)));
    }

    fn refuse_publish(&mut self, topic: &str, why: &'static str) {
        warn!(topic, why, "publish refused");
        self.refusals += 1;
        self.check_refusals();
    }

    fn refuse_name(&mut self, name: &str, why: Refusal) {
        info!(user = %name, %why, "register refused");
        self.send(Packet::Publish(packets::register_ack(
            name,
            Some(why.word()),
        )));
        self.close(CloseReason::Refused(why), true);
    }

    fn check_refusals(&mut self) {
        if self.refusals > self.limits.refusals_per_connection {
            self.close(CloseReason::TooManyRefusals, false);
        }
    }

    fn violation(&mut self, what: String) {
        self.close(CloseReason::ProtocolViolation(what), false);
    }

    fn send(&mut self, packet: Packet) {
        if self.phase != Phase::Ended {
            self.outputs.push_back(Output::Send(packet));
        }
    }

    fn close(&mut self, reason: CloseReason, linger: bool) {
        if self.phase != Phase::Ended {
            self.phase = Phase::Ended;
            self.outputs.push_back(Output::Close { reason, linger });
        }
    }
}

/// A packet's type, for messages.
fn kind(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}
