//! What one client connection may do through the gateway: read only its own inbox and the
//! public presence records, publish only as the name it registered, and not flood.
//!
//! The embedded broker has no access control of its own; the gateway sees every packet a
//! client sends before the broker does, so the rules live here. Pure bookkeeping (no I/O):
//! the uplink asks, and answers the client as the broker would for what is refused.

use std::time::Instant;

use peerchat_core::protocol::{
    PRESENCE_FILTER, REGISTER_TOPIC, decode, user_of_incoming_topic, user_of_presence_topic,
};

/// Publishes a connection may make per second, on average...
const PUBLISHES_PER_SECOND: f64 = 200.0;
/// ...and at once after a quiet spell (a burst of ICE candidates, a reconnect).
const PUBLISH_BURST: f64 = 400.0;

/// Why something was refused, for the log.
pub type Refusal = &'static str;

/// The rules for one connection.
#[derive(Debug)]
pub struct Acl {
    /// The name whose inbox this connection reads: claimed by its first subscription to an
    /// inbox (clients subscribe before they register), then fixed by registration.
    inbox: Option<String>,
    /// The name the gateway registered for this connection.
    registered: Option<String>,
    tokens: f64,
    refilled: Instant,
    /// No rules at all (an open broker, for benchmarks).
    open: bool,
}

impl Acl {
    pub fn new(now: Instant) -> Self {
        Self {
            inbox: None,
            registered: None,
            tokens: PUBLISH_BURST,
            refilled: now,
            open: false,
        }
    }

    /// Rules that allow everything, as a plain broker does.
    pub fn open() -> Self {
        Self {
            open: true,
            ..Self::new(Instant::now())
        }
    }

    /// May the connection subscribe to `filter`? Its own inbox (one name per connection)
    /// and the presence records; nothing else, and no wildcard that reads others' inboxes.
    pub fn subscribe(&mut self, filter: &str) -> Result<(), Refusal> {
        if self.open {
            return Ok(());
        }
        if filter == PRESENCE_FILTER || user_of_presence_topic(filter).is_some() {
            return Ok(());
        }
        let Some(owner) = user_of_incoming_topic(filter) else {
            return Err("only your own inbox and presence records can be read");
        };
        if owner.contains(['+', '#']) {
            return Err("no wildcards over inboxes");
        }
        match &self.inbox {
            Some(inbox) if inbox != owner => Err("another user's inbox"),
            _ => {
                self.inbox = Some(owner.to_owned());
                Ok(())
            }
        }
    }

    /// May the connection register as `name`? Not if it reads another name's inbox.
    pub fn register(&mut self, name: &str) -> Result<(), Refusal> {
        if self.open {
            self.registered = Some(name.to_owned());
            return Ok(());
        }
        if self.inbox.as_deref().is_some_and(|inbox| inbox != name) {
            return Err("registering one name while reading another's inbox");
        }
        self.inbox = Some(name.to_owned());
        self.registered = Some(name.to_owned());
        Ok(())
    }

    /// May the connection publish `payload` to `topic` at `now`? Registrations always
    /// (the gateway answers them); signaling to an inbox and its own presence record only
    /// once registered, and only saying `from` is its name; nothing past the rate limit.
    pub fn publish(&mut self, topic: &str, payload: &[u8], now: Instant) -> Result<(), Refusal> {
        if self.open {
            return Ok(());
        }
        self.refill(now);
        if self.tokens < 1.0 {
            return Err("too many messages: slow down");
        }
        self.tokens -= 1.0;
        if topic == REGISTER_TOPIC {
            return Ok(());
        }
        let Some(me) = self.registered.as_deref() else {
            return Err("register before publishing");
        };
        if let Some(user) = user_of_presence_topic(topic) {
            return if user != me {
                Err("another user's presence record")
            } else if payload.is_empty() || claims(payload, me) {
                Ok(())
            } else {
                Err("a presence record in another name")
            };
        }
        if user_of_incoming_topic(topic).is_none() {
            return Err("only inboxes and your presence record can be written");
        }
        // An empty payload clears a retained message; nothing to speak for.
        if payload.is_empty() || claims(payload, me) {
            Ok(())
        } else {
            Err("a message that names another sender")
        }
    }

    /// May a last will publish `payload` to `topic` when this connection vanishes? Only as
    /// its registered name's own presence record.
    pub fn may_leave_will(&self, topic: &str, payload: &[u8]) -> bool {
        self.open
            || self
                .registered
                .as_deref()
                .is_some_and(|me| user_of_presence_topic(topic) == Some(me) && claims(payload, me))
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * PUBLISHES_PER_SECOND).min(PUBLISH_BURST);
        self.refilled = now;
    }
}

/// Whether `payload` is a signaling message that says it comes from `name`. Messages of
/// types this server does not know cannot say, and are refused.
fn claims(payload: &[u8], name: &str) -> bool {
    decode(payload).is_ok_and(|message| message.sender() == Some(name))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use peerchat_core::protocol::{IceCandidate, Presence, SignalMessage, encode};

    use super::*;

    fn candidate_from(from: &str) -> Vec<u8> {
        encode(&SignalMessage::SignalCandidate {
            from: from.into(),
            candidate: IceCandidate {
                candidate: "candidate:1 1 udp 1 192.0.2.1 9 typ host".into(),
                sdp_mid: None,
                sdp_mline_index: None,
                username_fragment: None,
            },
            seal: None,
        })
    }

    fn registered(name: &str) -> (Acl, Instant) {
        let now = Instant::now();
        let mut acl = Acl::new(now);
        acl.subscribe(&format!("{name}/incoming")).unwrap();
        acl.subscribe(PRESENCE_FILTER).unwrap();
        acl.register(name).unwrap();
        (acl, now)
    }

    #[test]
    fn a_client_reads_its_own_inbox_and_presence_only() {
        let (mut acl, _) = registered("alice");
        assert!(acl.subscribe("alice/incoming").is_ok());
        for filter in [
            "bob/incoming",
            "+/incoming",
            "#",
            "peerchat/register",
            "other/topic",
        ] {
            assert!(acl.subscribe(filter).is_err(), "{filter}");
        }
    }

    #[test]
    fn a_client_cannot_register_a_name_whose_inbox_it_does_not_read() {
        let mut acl = Acl::new(Instant::now());
        acl.subscribe("alice/incoming").unwrap();
        assert!(acl.register("bob").is_err());
        assert!(acl.register("alice").is_ok());
    }

    #[test]
    fn a_client_publishes_only_in_its_own_name() {
        let (mut acl, now) = registered("alice");
        let (mine, spoofed) = (candidate_from("alice"), candidate_from("carol"));
        assert!(acl.publish("bob/incoming", &mine, now).is_ok());
        assert!(acl.publish("bob/incoming", &spoofed, now).is_err());
        assert!(acl.publish("bob/incoming", b"not json", now).is_err());
        let presence = encode(&SignalMessage::Presence(Presence {
            from: "alice".into(),
            session: "s".into(),
            online: true,
        }));
        let own = "peerchat/presence/alice";
        assert!(acl.publish(own, &presence, now).is_ok());
        assert!(
            acl.publish("peerchat/presence/bob", &presence, now)
                .is_err()
        );
        assert!(acl.publish("some/topic", &mine, now).is_err());
        assert!(acl.may_leave_will(own, &presence));
        assert!(!acl.may_leave_will("peerchat/presence/bob", &presence));
    }

    #[test]
    fn nothing_but_registering_before_registration() {
        let mut acl = Acl::new(Instant::now());
        let now = Instant::now();
        assert!(
            acl.publish("bob/incoming", &candidate_from("alice"), now)
                .is_err()
        );
        assert!(acl.publish(REGISTER_TOPIC, b"{}", now).is_ok());
    }

    #[test]
    fn a_flood_is_cut_and_the_allowance_comes_back() {
        let (mut acl, now) = registered("alice");
        let mine = candidate_from("alice");
        let allowed = (0..1000)
            .filter(|_| acl.publish("bob/incoming", &mine, now).is_ok())
            .count();
        assert_eq!(allowed as f64, PUBLISH_BURST);
        let later = now + Duration::from_secs(1);
        assert!(acl.publish("bob/incoming", &mine, later).is_ok());
    }
}
