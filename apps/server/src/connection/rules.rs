//! What a connection may say: which topics exist for it, whether a payload speaks in its own
//! name, and how fast it may publish. Pure functions and bookkeeping, no I/O.

use peerchat_core::protocol::{
    MAX_SIGNAL_BYTES, REGISTER_TOPIC, user_of_incoming_topic, user_of_presence_topic,
    validate_username,
};
use serde::Deserialize;

/// A topic as the server understands it; peerchat's protocol has no others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic<'a> {
    /// `system/register`.
    Register,
    /// `<user>/incoming`.
    Inbox(&'a str),
    /// `peerchat/presence/<user>`.
    Presence(&'a str),
}

impl<'a> Topic<'a> {
    /// The topic `name` stands for, if it is one of the protocol's with a valid username
    /// (so no wildcard, no empty or over-long name).
    pub fn parse(name: &'a str) -> Option<Self> {
        if name == REGISTER_TOPIC {
            return Some(Self::Register);
        }
        let valid = |user: &'a str| validate_username(user).is_ok().then_some(user);
        if let Some(user) = user_of_incoming_topic(name).and_then(valid) {
            return Some(Self::Inbox(user));
        }
        user_of_presence_topic(name)
            .and_then(valid)
            .map(Self::Presence)
    }
}

/// Message types only the server writes: a client sending one to an inbox is forging it.
const SERVER_TYPES: [&str; 5] = [
    "register",
    "register-ack",
    "register-challenge",
    "delivery-failed",
    "presence",
];

/// The two fields every signaling message shares; the rest is the recipient's to check.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    from: Option<std::borrow::Cow<'a, str>>,
}

/// Whether `payload` is a signaling message from `name` that a client may send to another
/// client's inbox: a JSON object within the size limit whose `from` is `name`, of a type
/// clients send. Types this server does not know pass (newer clients add types); types only
/// the server sends do not.
pub fn speaks_as(payload: &[u8], name: &str) -> Result<(), &'static str> {
    if payload.len() > MAX_SIGNAL_BYTES {
        return Err("a message over the signaling size limit");
    }
    let envelope: Envelope =
        serde_json::from_slice(payload).map_err(|_| "not a signaling message")?;
    if envelope.from.as_deref() != Some(name) {
        return Err("a message that names another sender");
    }
    if SERVER_TYPES.contains(&envelope.kind.as_ref()) {
        return Err("a message type only the server sends");
    }
    Ok(())
}

/// A token bucket: `rate` publishes a second on average, `burst` at once.
#[derive(Debug, Clone)]
pub struct RateLimit {
    tokens: f64,
    refilled_ms: u64,
    rate: f64,
    burst: f64,
}

impl RateLimit {
    pub fn new(rate: f64, burst: f64, now_ms: u64) -> Self {
        Self {
            tokens: burst,
            refilled_ms: now_ms,
            rate,
            burst,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.refilled_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled_ms = now_ms;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_protocols_topics_exist() {
        assert_eq!(Topic::parse("system/register"), Some(Topic::Register));
        assert_eq!(Topic::parse("bob/incoming"), Some(Topic::Inbox("bob")));
        assert_eq!(
            Topic::parse("peerchat/presence/bob"),
            Some(Topic::Presence("bob"))
        );
        for other in [
            "+/incoming",
            "#",
            "peerchat/presence/+",
            "peerchat/presence/#",
            "server/incoming",
            "a/b/incoming",
            "/incoming",
            "$SYS/broker",
            "peerchat-gw-1",
            "",
        ] {
            assert_eq!(Topic::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_message_speaks_only_for_its_sender() {
        let offer =
            br#"{"type":"signal-offer","from":"alice","offer":{"type":"offer","sdp":"v=0"}}"#;
        assert_eq!(speaks_as(offer, "alice"), Ok(()));
        assert!(speaks_as(offer, "carol").is_err());
        assert_eq!(
            speaks_as(br#"{"type":"typing","from":"alice"}"#, "alice"),
            Ok(())
        );
        for forged in [
            &br#"{"type":"register-ack","from":"alice","success":true}"#[..],
            br#"{"type":"delivery-failed","from":"alice","target":"bob"}"#,
            br#"{"type":"register-challenge","from":"alice","nonce":"x"}"#,
            br#"{"type":"signal-offer"}"#,
            br#"{"from":"alice"}"#,
            b"not json",
            b"[1,2]",
        ] {
            assert!(
                speaks_as(forged, "alice").is_err(),
                "{}",
                String::from_utf8_lossy(forged)
            );
        }
    }

    #[test]
    fn a_flood_is_cut_and_the_allowance_comes_back() {
        let mut limit = RateLimit::new(200.0, 400.0, 0);
        let allowed = (0..1000).filter(|_| limit.take(0)).count();
        assert_eq!(allowed, 400);
        assert!(limit.take(1000));
        assert_eq!((0..1000).filter(|_| limit.take(1000)).count(), 199);
    }
}
