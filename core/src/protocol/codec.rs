//! Signaling messages to and from JSON, field by field: the original client's field names
//! and order, peerchat's additions after them, absent optional fields left out.
//!
//! Decoding is lenient where the original client is (unknown fields ignored, `null` read as
//! absent) and strict on types; the bounds are checked afterwards by `SignalMessage::validate`.

use crate::json::Value;

use super::json::{ObjectReader, ObjectWriter};
use super::message::{
    Capabilities, IceCandidate, Presence, SdpKind, SessionDescription, SignalMessage,
};
use super::proof::RegisterProof;
use super::seal::Seal;

/// The `type`s this version reads; others are ignored as a newer client's.
const KNOWN_TYPES: [&str; 10] = [
    "register",
    "register-challenge",
    "register-ack",
    "name-claim",
    "name-held",
    "signal-offer",
    "signal-answer",
    "signal-candidate",
    "delivery-failed",
    "presence",
];

pub fn is_known_type(kind: &str) -> bool {
    KNOWN_TYPES.contains(&kind)
}

/// The message as JSON text, `type` first.
pub fn write_message(message: &SignalMessage) -> String {
    let out = ObjectWriter::new().str("type", message.kind());
    match message {
        SignalMessage::Register {
            from,
            username,
            session,
            proof,
        } => out
            .str("from", from)
            .str("username", username)
            .opt_str("session", session.as_deref())
            .opt_raw("proof", proof.as_ref().map(write_proof)),
        SignalMessage::RegisterChallenge { from, nonce } => {
            out.str("from", from).str("nonce", nonce)
        }
        SignalMessage::RegisterAck {
            from,
            success,
            message,
            reason,
        } => out
            .str("from", from)
            .bool("success", *success)
            .str("message", message)
            .opt_str("reason", reason.as_deref()),
        SignalMessage::SignalOffer {
            from,
            offer: description,
            peerchat,
            seal,
        }
        | SignalMessage::SignalAnswer {
            from,
            answer: description,
            peerchat,
            seal,
        } => {
            let field = match description.kind {
                SdpKind::Offer => "offer",
                SdpKind::Answer => "answer",
            };
            out.str("from", from)
                .raw(field, &write_description(description))
                .opt_raw("peerchat", peerchat.as_ref().map(write_capabilities))
                .opt_raw("seal", seal.as_ref().map(write_seal))
        }
        SignalMessage::SignalCandidate {
            from,
            candidate,
            seal,
        } => out
            .str("from", from)
            .raw("candidate", &write_candidate(candidate))
            .opt_raw("seal", seal.as_ref().map(write_seal)),
        SignalMessage::NameClaim { from, session } | SignalMessage::NameHeld { from, session } => {
            out.str("from", from).str("session", session)
        }
        SignalMessage::DeliveryFailed {
            target,
            reason,
            timestamp,
        } => out
            .str("target", target)
            .str("reason", reason)
            .number("timestamp", *timestamp),
        SignalMessage::Presence(Presence {
            from,
            session,
            online,
            since,
        }) => out
            .str("from", from)
            .str("session", session)
            .bool("online", *online)
            .opt_number("since", *since),
    }
    .finish()
}

/// The message of type `kind` from its parsed JSON; the error names the bad field.
pub fn read_message(kind: &str, value: &Value) -> Result<SignalMessage, String> {
    let m = ObjectReader::new(value, "message")?;
    Ok(match kind {
        "register" => SignalMessage::Register {
            from: m.str("from")?,
            username: m.str("username")?,
            session: m.opt_str("session")?,
            proof: m.opt_object("proof", read_proof)?,
        },
        "register-challenge" => SignalMessage::RegisterChallenge {
            from: m.str("from")?,
            nonce: m.str("nonce")?,
        },
        "register-ack" => SignalMessage::RegisterAck {
            from: m.str("from")?,
            success: m.bool("success")?,
            message: m.opt_str("message")?.unwrap_or_default(),
            reason: m.opt_str("reason")?,
        },
        "signal-offer" => SignalMessage::SignalOffer {
            from: m.str("from")?,
            offer: m.object("offer", read_description)?,
            peerchat: m.opt_object("peerchat", read_capabilities)?,
            seal: m.opt_object("seal", read_seal)?,
        },
        "signal-answer" => SignalMessage::SignalAnswer {
            from: m.str("from")?,
            answer: m.object("answer", read_description)?,
            peerchat: m.opt_object("peerchat", read_capabilities)?,
            seal: m.opt_object("seal", read_seal)?,
        },
        "signal-candidate" => SignalMessage::SignalCandidate {
            from: m.str("from")?,
            candidate: m.object("candidate", read_candidate)?,
            seal: m.opt_object("seal", read_seal)?,
        },
        "name-claim" => SignalMessage::NameClaim {
            from: m.str("from")?,
            session: m.str("session")?,
        },
        "name-held" => SignalMessage::NameHeld {
            from: m.str("from")?,
            session: m.str("session")?,
        },
        "delivery-failed" => SignalMessage::DeliveryFailed {
            target: m.str("target")?,
            reason: m.opt_str("reason")?.unwrap_or_default(),
            timestamp: m.opt_u64("timestamp")?.unwrap_or_default(),
        },
        "presence" => SignalMessage::Presence(Presence {
            from: m.str("from")?,
            session: m.str("session")?,
            online: m.bool("online")?,
            since: m.opt_u64("since")?,
        }),
        other => return Err(format!("unknown type `{other}`")),
    })
}

fn write_description(description: &SessionDescription) -> String {
    let kind = match description.kind {
        SdpKind::Offer => "offer",
        SdpKind::Answer => "answer",
    };
    ObjectWriter::new()
        .str("type", kind)
        .str("sdp", &description.sdp)
        .finish()
}

fn read_description(d: ObjectReader) -> Result<SessionDescription, String> {
    let kind = match d.str("type")?.as_str() {
        "offer" => SdpKind::Offer,
        "answer" => SdpKind::Answer,
        other => return Err(format!("`type`: {:?} is neither offer nor answer", other)),
    };
    Ok(SessionDescription {
        kind,
        sdp: d.str("sdp")?,
    })
}

/// `RTCIceCandidate.toJSON()`'s shape, absent fields as `null`. A seal signs this text
/// (`machine::trust`), so both ends must write it alike: the order here is part of the
/// protocol.
pub fn write_candidate(candidate: &IceCandidate) -> String {
    ObjectWriter::new()
        .str("candidate", &candidate.candidate)
        .str_or_null("sdpMid", candidate.sdp_mid.as_deref())
        .number_or_null("sdpMLineIndex", candidate.sdp_mline_index.map(u64::from))
        .str_or_null("usernameFragment", candidate.username_fragment.as_deref())
        .finish()
}

/// A candidate from its JSON text (a browser's `RTCIceCandidate.toJSON()`).
pub fn read_candidate_json(json: &str) -> Result<IceCandidate, String> {
    let value = crate::json::parse(json).map_err(|e| e.to_string())?;
    read_candidate(ObjectReader::new(&value, "candidate")?)
}

fn read_candidate(c: ObjectReader) -> Result<IceCandidate, String> {
    let sdp_mline_index = c
        .opt_u64("sdpMLineIndex")?
        .map(|index| u16::try_from(index).map_err(|_| "`sdpMLineIndex`: out of range"))
        .transpose()?;
    Ok(IceCandidate {
        candidate: c.str("candidate")?,
        sdp_mid: c.opt_str("sdpMid")?,
        sdp_mline_index,
        username_fragment: c.opt_str("usernameFragment")?,
    })
}

/// The `peerchat` field; a seal (v2) signs this text, so its order is part of the protocol.
pub fn write_capabilities(capabilities: &Capabilities) -> String {
    ObjectWriter::new()
        .number("version", u64::from(capabilities.version))
        .strings("features", &capabilities.features)
        .opt_str("run", capabilities.run.as_deref())
        .opt_str("answers", capabilities.answers.as_deref())
        .finish()
}

fn read_capabilities(c: ObjectReader) -> Result<Capabilities, String> {
    let version = c.opt_u64("version")?.ok_or("missing field `version`")?;
    Ok(Capabilities {
        version: u32::try_from(version).map_err(|_| "`version`: out of range")?,
        features: c.strings("features")?,
        run: c.opt_str("run")?,
        answers: c.opt_str("answers")?,
    })
}

fn write_seal(seal: &Seal) -> String {
    ObjectWriter::new()
        .str("key", &seal.key)
        .str("to", &seal.to)
        .number("ts", seal.ts)
        .str("sig", &seal.sig)
        .opt_str("sig2", seal.sig2.as_deref())
        .finish()
}

fn read_seal(s: ObjectReader) -> Result<Seal, String> {
    Ok(Seal {
        key: s.str("key")?,
        to: s.str("to")?,
        ts: s.opt_u64("ts")?.ok_or("missing field `ts`")?,
        sig: s.str("sig")?,
        sig2: s.opt_str("sig2")?,
    })
}

fn write_proof(proof: &RegisterProof) -> String {
    ObjectWriter::new()
        .str("key", &proof.key)
        .str("nonce", &proof.nonce)
        .str("sig", &proof.sig)
        .finish()
}

fn read_proof(p: ObjectReader) -> Result<RegisterProof, String> {
    Ok(RegisterProof {
        key: p.str("key")?,
        nonce: p.str("nonce")?,
        sig: p.str("sig")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text serde wrote before the codec was hand-written: seals sign parts of it, and
    /// peers of earlier versions rebuild those parts the same way.
    #[test]
    fn messages_are_written_exactly_as_before() {
        let candidate = IceCandidate {
            candidate: "candidate:1 1 udp 1 192.0.2.1 9 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        assert_eq!(
            write_candidate(&candidate),
            r#"{"candidate":"candidate:1 1 udp 1 192.0.2.1 9 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null}"#
        );
        let offer = SignalMessage::SignalOffer {
            from: "alice".into(),
            offer: SessionDescription {
                kind: SdpKind::Offer,
                sdp: "v=0\r\n".into(),
            },
            peerchat: Some(Capabilities {
                version: 1,
                features: vec!["acks".into()],
                run: Some("r1".into()),
                answers: None,
            }),
            seal: Some(Seal {
                key: "k".into(),
                to: "bob".into(),
                ts: 5,
                sig: "s".into(),
                sig2: Some("s2".into()),
            }),
        };
        assert_eq!(
            write_message(&offer),
            r#"{"type":"signal-offer","from":"alice","offer":{"type":"offer","sdp":"v=0\r\n"},"peerchat":{"version":1,"features":["acks"],"run":"r1"},"seal":{"key":"k","to":"bob","ts":5,"sig":"s","sig2":"s2"}}"#
        );
        let register = SignalMessage::Register {
            from: "alice".into(),
            username: "alice".into(),
            session: Some("s".into()),
            proof: Some(RegisterProof {
                key: "k".into(),
                nonce: "n".into(),
                sig: "g".into(),
            }),
        };
        assert_eq!(
            write_message(&register),
            r#"{"type":"register","from":"alice","username":"alice","session":"s","proof":{"key":"k","nonce":"n","sig":"g"}}"#
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let read = |json: &str| {
            let value = crate::json::parse(json).unwrap();
            let kind = value["type"].as_str().unwrap().to_owned();
            read_message(&kind, &value).unwrap_err()
        };
        assert_eq!(
            read(r#"{"type":"presence","from":"a","session":"s","online":"yes"}"#),
            "`online`: expected true or false"
        );
        assert_eq!(
            read(
                r#"{"type":"signal-candidate","from":"a","candidate":{"candidate":"c","sdpMLineIndex":70000}}"#
            ),
            "candidate.`sdpMLineIndex`: out of range"
        );
        assert_eq!(
            read(r#"{"type":"signal-answer","from":"a","answer":{"type":"pranswer","sdp":""}}"#),
            r#"answer.`type`: "pranswer" is neither offer nor answer"#
        );
        assert_eq!(
            read(
                r#"{"type":"register","from":"a","username":"a","proof":{"key":"k","nonce":"n"}}"#
            ),
            "proof.missing field `sig`"
        );
    }
}
