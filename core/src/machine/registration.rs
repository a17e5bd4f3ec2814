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
    /// The register went out on this broker connection.
    registered_here: bool,
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
            registered_here: false,
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

    pub fn offline_presence(&self) -> (String, Vec<u8>) {
        (presence_topic(&self.me), self.presence_payload(false))
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
        self.registered_here = false;
        match self.phase {
            Phase::Done => return,
            Phase::Waiting => {
                self.phase = Phase::Joining {
                    give_up: now + REGISTER_TIMEOUT_MS,
                    grace_until: None,
                }
            }
            Phase::Joining { .. } => {}
            Phase::Online => self
                .events
                .push(ClientEvent::Signaling(SignalingState::Online)),
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
        match self.phase {
            // After the register: a server that checks who publishes knows the name by then.
            Phase::Online => self.publish_presence(true),
            Phase::Joining {
                give_up,
                grace_until: None,
            } => {
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
    }

    pub fn on_register_ack(&mut self, success: bool, message: &str, reason: Option<&str>) {
        match (self.phase, success) {
            (Phase::Joining { .. }, true) => self.go_online(),
            (Phase::Joining { .. }, false) => {
                debug!(message, ?reason, "registration refused");
                let me = self.me.clone();
                self.refuse(if reason == Some(protocol::REFUSED_OTHER_KEY) {
                    ClientError::NameOfAnotherKey(me)
                } else {
                    ClientError::NameTaken(me)
                });
            }
            // Everyone subscribed to our incoming topic sees acks meant for someone else
            // trying our name on the original server: not ours to act on.
            _ => debug!(success, message, "register-ack while not joining ignored"),
        }
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

    /// Leaving on purpose: say so in our presence record.
    pub fn leave(&mut self) {
        if self.phase == Phase::Online && self.broker_up {
            self.publish_presence(false);
        }
        self.phase = Phase::Done;
    }

    fn go_online(&mut self) {
        self.phase = Phase::Online;
        self.publish_presence(true);
        self.events.push(ClientEvent::Registered);
    }

    fn refuse(&mut self, error: ClientError) {
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
        }))
    }
}
