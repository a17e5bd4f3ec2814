//! Joining the broker under a username, on peerchat-server, the original server, or any
//! plain MQTT broker.
//!
//! The client subscribes first (its inbox and its own presence record), then registers once
//! the subscriptions are acknowledged. peerchat-server sends a challenge on the inbox
//! before that acknowledgement; the register then carries a proof signed with the identity
//! key, which binds the name to the key there. A server that answers `register` decides at
//! once. A plain broker answers nothing, so the client reads the retained presence of its
//! own name: a record saying another session is online means the name is taken; silence for
//! a short grace after the subscription is acknowledged means it is free.

use tracing::debug;

use crate::event::{ClientError, ClientEvent, SignalingState};
use crate::identity::{Identity, signature_text};
use crate::protocol::{
    self, Presence, RegisterProof, SignalMessage, incoming_topic, presence_topic,
    register_proof_bytes,
};

use super::{Action, Delivery};

/// How long after the subscription is acknowledged a plain broker's retained presence may
/// still be on its way. Brokers send retained messages right after SUBACK.
pub const PRESENCE_GRACE_MS: u64 = 300;

/// How long joining may take in all before `connect` fails.
pub const REGISTER_TIMEOUT_MS: u64 = 10_000;

/// How long an offline presence record is kept on a plain broker: a user away this long is
/// gone for good, and a client that reads the record deletes it.
pub const RECORD_LIFETIME_MS: u64 = 30 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the first CONNACK.
    Waiting,
    Joining {
        give_up: u64,
        grace_until: Option<u64>,
    },
    Online,
    /// Refused or left: terminal.
    Done,
}

/// What kind of server the client talks to, as far as it can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    /// Nothing answered a register yet.
    Unknown,
    /// peerchat-server: it challenges every connection before it registers.
    Peerchat,
    /// A server that answers `register` without a challenge: the original app's. Its
    /// registry frees a name only when a connection whose client id is that name ends, and
    /// reports offline peers only to such connections, so the client uses its username as
    /// client id there (see `on_register_ack`).
    Original,
}

#[derive(Debug)]
pub(super) struct Registration {
    me: String,
    session: String,
    phase: Phase,
    broker_up: bool,
    /// Every subscription of the current broker connection is acknowledged.
    subscribed: bool,
    /// The server's challenge on this broker connection, to sign in the register.
    challenge: Option<String>,
    /// The server challenged this broker connection.
    challenged: bool,
    /// The register went out on this broker connection.
    registered_here: bool,
    /// A register of ours is waiting for its ack on this broker connection.
    awaiting_ack: bool,
    server: Server,
    /// On the original server: the broker connection runs under our username as client id,
    /// its name registered by the connection before it.
    under_name: bool,
    actions: Vec<Action>,
    events: Vec<ClientEvent>,
}

impl Registration {
    /// This run's id.
    pub fn session(&self) -> &str {
        &self.session
    }

    pub fn new(me: &str, session: &str) -> Self {
        Self {
            me: me.to_owned(),
            session: session.to_owned(),
            phase: Phase::Waiting,
            broker_up: false,
            subscribed: false,
            challenge: None,
            challenged: false,
            registered_here: false,
            awaiting_ack: false,
            server: Server::Unknown,
            under_name: false,
            actions: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn client_id(&self) -> String {
        format!("peerchat-{}", self.session)
    }

    pub fn is_online(&self) -> bool {
        self.phase == Phase::Online
    }

    /// The broker connection is up and we have not left: subscriptions may go.
    pub fn is_connected(&self) -> bool {
        self.broker_up && self.phase != Phase::Done
    }

    /// Joining or joined (not before the first connection, not after leaving).
    pub fn is_started(&self) -> bool {
        matches!(self.phase, Phase::Joining { .. } | Phase::Online)
    }

    /// Online with every subscription in place: a message sent now can be answered.
    pub fn is_ready(&self) -> bool {
        self.is_online() && self.broker_up && self.subscribed
    }

    pub fn deadline(&self) -> Option<u64> {
        match self.phase {
            Phase::Joining {
                give_up,
                grace_until,
            } => Some(grace_until.map_or(give_up, |g| g.min(give_up))),
            _ => None,
        }
    }

    /// Our presence record saying offline, last known online at `since` (ms since the Unix
    /// epoch): the last will, and what leaving publishes. It stays retained on a plain
    /// broker, so a call to us fails at once; once it is older than
    /// [`RECORD_LIFETIME_MS`], a client that reads it clears it (see `presence`).
    pub fn offline_presence(&self, since: Option<u64>) -> (String, Vec<u8>) {
        let record = SignalMessage::Presence(Presence {
            from: self.me.clone(),
            session: self.session.clone(),
            online: false,
            since,
        });
        (presence_topic(&self.me), protocol::encode(&record))
    }

    /// Whether the server is peerchat-server (it keeps presence itself).
    pub fn on_peerchat_server(&self) -> bool {
        self.server == Server::Peerchat
    }

    pub fn drain(&mut self) -> (Vec<Action>, Vec<ClientEvent>) {
        (
            std::mem::take(&mut self.actions),
            std::mem::take(&mut self.events),
        )
    }

    /// CONNACK, the first or after a reconnect: (re)subscribe; the register follows once
    /// the subscriptions are acknowledged.
    pub fn on_connected(&mut self, now: u64) {
        self.broker_up = true;
        self.subscribed = false;
        self.challenge = None;
        self.challenged = false;
        self.registered_here = false;
        self.awaiting_ack = false;
        match self.phase {
            Phase::Done => return,
            Phase::Waiting => {
                self.phase = Phase::Joining {
                    give_up: now + REGISTER_TIMEOUT_MS,
                    grace_until: None,
                }
            }
            // Back online once the server confirms the name again (see `back_online`).
            Phase::Joining { .. } | Phase::Online => {}
        }
        self.actions.push(Action::Subscribe {
            topic: incoming_topic(&self.me),
            delivery: Delivery::AtMostOnce,
        });
        self.actions.push(Action::Subscribe {
            topic: presence_topic(&self.me),
            delivery: Delivery::AtLeastOnce,
        });
    }

    /// peerchat-server's challenge for this connection (it comes before the SUBACK).
    pub fn on_challenge(&mut self, nonce: String) {
        if self.broker_up && !self.registered_here {
            self.challenged = true;
            self.server = Server::Peerchat;
            self.challenge = Some(nonce);
        }
    }

    /// Every subscription so far is acknowledged: the first time on a broker connection,
    /// the register goes, proven with `identity` if the server challenged us.
    pub fn on_subscribed(&mut self, now: u64, identity: Option<&Identity>) {
        self.subscribed = self.broker_up;
        if !self.broker_up || self.registered_here || self.phase == Phase::Done {
            return;
        }
        self.registered_here = true;
        if self.under_name {
            // The connection before this one registered the name for it (see
            // `on_register_ack`); registering again would be refused as taken. Online now,
            // with every subscription in place under the name the server knows us by.
            match self.phase {
                Phase::Joining { .. } => self.go_online(),
                Phase::Online => self.back_online(),
                _ => {}
            }
            return;
        }
        self.awaiting_ack = true;
        let proof = (self.challenge.take())
            .zip(identity)
            .map(|(nonce, identity)| {
                let signed = register_proof_bytes(&self.me, &nonce, &self.session);
                RegisterProof {
                    key: identity.public().to_text(),
                    sig: signature_text(&identity.sign(&signed)),
                    nonce,
                }
            });
        let register = SignalMessage::Register {
            from: self.me.clone(),
            username: self.me.clone(),
            session: Some(self.session.clone()),
            proof,
        };
        self.actions.push(Action::Publish {
            topic: protocol::REGISTER_TOPIC.to_owned(),
            payload: protocol::encode(&register),
            retain: false,
            delivery: Delivery::AtMostOnce,
        });
        if !self.challenged {
            // Perhaps a plain broker: whoever holds the name live will say so.
            self.publish_own(SignalMessage::NameClaim {
                from: self.me.clone(),
                session: self.session.clone(),
            });
        }
        match self.phase {
            // A plain broker confirms nothing: back online with the subscriptions in place.
            Phase::Online if self.server == Server::Unknown => self.back_online(),
            // A server that challenged us decides the name itself: its answer is awaited
            // (until `give_up`), however long its registry takes. The grace is for brokers
            // that answer nothing; taking silence for consent here would let everyone who
            // asked for a name at once think they had it.
            Phase::Joining {
                give_up,
                grace_until: None,
            } if !self.challenged => {
                self.phase = Phase::Joining {
                    give_up,
                    grace_until: Some(now + PRESENCE_GRACE_MS),
                }
            }
            _ => {}
        }
    }

    pub fn on_lost(&mut self) {
        if self.broker_up && self.phase == Phase::Online {
            self.events
                .push(ClientEvent::Signaling(SignalingState::Reconnecting));
        }
        self.broker_up = false;
        self.subscribed = false;
        if self.under_name {
            // The original server freed the name with that connection. The next one asks
            // for it under our run's id, which displaces nobody: whoever took the name
            // meanwhile keeps it, and we hear so.
            self.under_name = false;
            self.actions.push(Action::ConnectAs {
                client_id: self.client_id(),
            });
        }
    }

    pub fn on_register_ack(&mut self, success: bool, message: &str, reason: Option<&str>) {
        if !self.awaiting_ack || self.phase == Phase::Done {
            // Everyone subscribed to our incoming topic sees acks meant for someone else
            // trying our name on the original server: not ours to act on.
            debug!(
                success,
                message, "register-ack for another register ignored"
            );
            return;
        }
        self.awaiting_ack = false;
        if !self.challenged {
            self.server = Server::Original;
        }
        if !success {
            debug!(message, ?reason, "registration refused");
            let me = self.me.clone();
            let error = if reason == Some(protocol::REFUSED_OTHER_KEY) {
                ClientError::NameOfAnotherKey(me)
            } else if self.phase == Phase::Online {
                ClientError::NameLost(me)
            } else {
                ClientError::NameTaken(me)
            };
            return self.refuse(error);
        }
        if self.server == Server::Original {
            // Our name is registered; continue under it as client id, so the original
            // server frees it when we leave and tells us of offline peers, as it does for
            // its own clients. The name stays registered across the switch (the server
            // frees only names equal to a closing connection's client id). Online once
            // that connection is subscribed (see `on_subscribed`).
            self.under_name = true;
            self.broker_up = false;
            if let Phase::Joining { give_up, .. } = self.phase {
                self.phase = Phase::Joining {
                    give_up,
                    grace_until: None,
                };
            }
            self.actions.push(Action::ConnectAs {
                client_id: self.me.clone(),
            });
            return;
        }
        match self.phase {
            Phase::Joining { .. } => self.go_online(),
            Phase::Online => self.back_online(),
            _ => {}
        }
    }

    /// A session claims our name (on a plain broker). Ours, echoed: nothing to do. Another
    /// one: if we hold the name, we say so; if we are joining too, the session that sorts
    /// first keeps the claim, so two clients joining at once do not both get the name.
    pub fn on_name_claim(&mut self, session: &str) {
        if session == self.session || !self.broker_up {
            return;
        }
        match self.phase {
            Phase::Online => self.hold_name(),
            Phase::Joining { .. } if session < self.session.as_str() => {
                self.refuse(ClientError::NameTaken(self.me.clone()))
            }
            Phase::Joining { .. } => self.hold_name(),
            _ => {}
        }
    }

    /// Another session says it holds our name.
    pub fn on_name_held(&mut self, session: &str) {
        if session == self.session {
            return;
        }
        match self.phase {
            Phase::Joining { .. } => self.refuse(ClientError::NameTaken(self.me.clone())),
            Phase::Online => self
                .events
                .push(ClientEvent::Error(ClientError::NameTaken(self.me.clone()))),
            _ => {}
        }
    }

    fn hold_name(&mut self) {
        self.publish_own(SignalMessage::NameHeld {
            from: self.me.clone(),
            session: self.session.clone(),
        });
    }

    /// A message on our own inbox, seen by every session subscribed to it.
    fn publish_own(&mut self, message: SignalMessage) {
        self.actions.push(Action::Publish {
            topic: incoming_topic(&self.me),
            payload: protocol::encode(&message),
            retain: false,
            delivery: Delivery::AtMostOnce,
        });
    }

    /// Our own name's retained presence record, or `None` when it was deleted.
    pub fn on_own_presence(&mut self, presence: Option<&Presence>) {
        let other_session_online = presence.is_some_and(|p| p.online && p.session != self.session);
        match self.phase {
            Phase::Joining { .. } if other_session_online => {
                self.refuse(ClientError::NameTaken(self.me.clone()))
            }
            Phase::Online if other_session_online => {
                // Two clients joined a plain broker at the same instant: say so loudly.
                self.events
                    .push(ClientEvent::Error(ClientError::NameTaken(self.me.clone())));
            }
            Phase::Online if self.broker_up && !presence.is_some_and(|p| p.online) => {
                // A stale last will or a deletion says we are offline: we are not.
                self.publish_presence(true);
            }
            _ => {}
        }
    }

    pub fn on_timeout(&mut self, now: u64) {
        if let Phase::Joining {
            give_up,
            grace_until,
        } = self.phase
        {
            if grace_until.is_some_and(|g| g <= now) {
                self.go_online();
            } else if give_up <= now {
                self.refuse(ClientError::RegistrationTimeout);
            }
        }
    }

    /// Leaving on purpose at `now_wall`: our presence record says so.
    pub fn leave(&mut self, now_wall: Option<u64>) {
        if self.phase == Phase::Online && self.broker_up {
            let (topic, payload) = self.offline_presence(now_wall);
            self.actions.push(Action::Publish {
                topic,
                payload,
                retain: true,
                delivery: Delivery::AtLeastOnce,
            });
        }
        self.phase = Phase::Done;
    }

    /// Registered again after a reconnect: our presence record says so (after the register,
    /// so a server that checks who publishes knows the name by then), and the app hears it.
    fn back_online(&mut self) {
        self.publish_presence(true);
        self.events
            .push(ClientEvent::Signaling(SignalingState::Online));
    }

    fn go_online(&mut self) {
        self.phase = Phase::Online;
        self.publish_presence(true);
        self.events.push(ClientEvent::Registered);
    }

    fn refuse(&mut self, error: ClientError) {
        if self.phase == Phase::Online {
            // Chats carry on peer to peer; the app hears that the name is gone.
            self.events.push(ClientEvent::Error(error.clone()));
        }
        self.phase = Phase::Done;
        self.events.push(ClientEvent::RegistrationRefused(error));
        self.actions.push(Action::CloseSignaling);
    }

    fn publish_presence(&mut self, online: bool) {
        self.actions.push(Action::Publish {
            topic: presence_topic(&self.me),
            payload: self.presence_payload(online),
            retain: true,
            delivery: Delivery::AtLeastOnce,
        });
    }

    fn presence_payload(&self, online: bool) -> Vec<u8> {
        protocol::encode(&SignalMessage::Presence(Presence {
            from: self.me.clone(),
            session: self.session.clone(),
            online,
            since: None,
        }))
    }
}
