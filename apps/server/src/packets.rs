//! The messages the server writes itself: register challenges and acks, delivery failures
//! and presence records. They reach a client as if a broker had delivered them on a topic it
//! subscribed to, at QoS 0 (no packet id, so nothing for a client to acknowledge).

use std::time::{SystemTime, UNIX_EPOCH};

use peerchat_core::protocol::{
    Presence, SERVER_NAME, SignalMessage, encode, incoming_topic, presence_topic,
};
use rumqttc::mqttbytes::{QoS, v4::Publish};

/// What the original server answers a successful `register` with; its client shows it.
pub const REGISTERED_TEXT: &str = "Registration successful";

/// What the original server answers a `register` for a name in use with.
pub const TAKEN_TEXT: &str = "Username is already taken";

/// The `reason` of a `delivery-failed` for a recipient nobody has registered.
pub const OFFLINE_REASON: &str = "user-offline";

/// The answer to `user`'s `register`: granted, or refused for `reason` (a word peerchat
/// clients read; the original client shows the message).
pub fn register_ack(user: &str, refusal: Option<&str>) -> Publish {
    let message = if refusal.is_none() {
        REGISTERED_TEXT
    } else {
        TAKEN_TEXT
    };
    to_incoming(
        user,
        &SignalMessage::RegisterAck {
            from: SERVER_NAME.to_owned(),
            success: refusal.is_none(),
            message: message.to_owned(),
            reason: refusal.map(str::to_owned),
        },
    )
}

/// The fresh value a client about to register as `user` signs to prove its identity key.
pub fn register_challenge(user: &str, nonce: &str) -> Publish {
    to_incoming(
        user,
        &SignalMessage::RegisterChallenge {
            from: SERVER_NAME.to_owned(),
            nonce: nonce.to_owned(),
        },
    )
}

/// Tells `sender` that its message to `target` reached nobody.
pub fn delivery_failed(sender: &str, target: &str, timestamp_ms: u64) -> Publish {
    to_incoming(
        sender,
        &SignalMessage::DeliveryFailed {
            target: target.to_owned(),
            reason: OFFLINE_REASON.to_owned(),
            timestamp: timestamp_ms,
        },
    )
}

/// `user`'s presence record: online under `session`, or offline. `retained` marks the copy
/// a new watcher gets (what a broker sends for a retained message) from a live change.
pub fn presence(user: &str, session: &str, online: bool, retained: bool) -> Publish {
    let record = SignalMessage::Presence(Presence {
        from: user.to_owned(),
        session: session.to_owned(),
        online,
        since: None,
    });
    let mut publish = Publish::new(presence_topic(user), QoS::AtMostOnce, encode(&record));
    publish.retain = retained;
    publish
}

/// Milliseconds since the Unix epoch, the unit of `delivery-failed` timestamps.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

fn to_incoming(user: &str, message: &SignalMessage) -> Publish {
    Publish::new(incoming_topic(user), QoS::AtMostOnce, encode(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerchat_core::protocol::decode;

    #[test]
    fn acks_carry_the_original_servers_texts() {
        let ack = register_ack("alice", Some("in-use"));
        assert_eq!(ack.topic, "alice/incoming");
        assert_eq!(ack.qos, QoS::AtMostOnce);
        assert!(!ack.retain);
        assert_eq!(
            decode(&ack.payload).unwrap(),
            SignalMessage::RegisterAck {
                from: "server".into(),
                success: false,
                message: "Username is already taken".into(),
                reason: Some("in-use".into()),
            }
        );
    }

    #[test]
    fn delivery_failures_name_the_target_and_go_to_the_sender() {
        let failure = delivery_failed("alice", "carol", 1_795_680_000_000);
        assert_eq!(failure.topic, "alice/incoming");
        assert_eq!(
            decode(&failure.payload).unwrap(),
            SignalMessage::DeliveryFailed {
                target: "carol".into(),
                reason: "user-offline".into(),
                timestamp: 1_795_680_000_000,
            }
        );
    }

    #[test]
    fn presence_records_say_who_and_whether() {
        let record = presence("bob", "s1", true, true);
        assert_eq!(record.topic, "peerchat/presence/bob");
        assert!(record.retain);
        assert_eq!(
            decode(&record.payload).unwrap(),
            SignalMessage::Presence(Presence {
                from: "bob".into(),
                session: "s1".into(),
                online: true,
                since: None,
            })
        );
    }
}
