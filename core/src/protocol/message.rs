//! Signaling messages as typed Rust, and their bounded JSON codec.

use crate::json::Value;

use super::ProtocolError;
use super::limits::{MAX_CANDIDATE_BYTES, MAX_SDP_BYTES, MAX_SIGNAL_BYTES, validate_username};
use super::proof::RegisterProof;
use super::seal::Seal;

/// A register-ack's `reason` when the name belongs to another identity key.
pub const REFUSED_OTHER_KEY: &str = "other-key";

/// The version of peerchat's additions, announced in offers and answers.
pub const PROTOCOL_VERSION: u32 = 1;

/// One signaling message: one MQTT PUBLISH payload.
///
/// The field names and `type` tags are those of the original JavaScript client; `session`,
/// `peerchat` and `presence` are peerchat's additions, which that client ignores.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalMessage {
    Register {
        from: String,
        username: String,
        /// Identifies one run of a peerchat client, so a reconnect is not mistaken for a
        /// second user taking the name.
        session: Option<String>,
        /// That the sender holds an identity key, answering the server's challenge: a name
        /// on peerchat-server belongs to the key that first proved itself for it.
        proof: Option<RegisterProof>,
    },
    /// peerchat-server's fresh value for this connection, sent on the inbox the client
    /// subscribes to before it registers: the client signs it in its `register` (see
    /// [`RegisterProof`]), so a captured proof is worth nothing on another connection.
    RegisterChallenge {
        from: String,
        nonce: String,
    },
    RegisterAck {
        from: String,
        success: bool,
        message: String,
        /// Why a register was refused, for peerchat clients (see [`REFUSED_OTHER_KEY`]):
        /// the message is the original server's text, which the original client shows.
        reason: Option<String>,
    },
    SignalOffer {
        from: String,
        offer: SessionDescription,
        peerchat: Option<Capabilities>,
        seal: Option<Seal>,
    },
    SignalAnswer {
        from: String,
        answer: SessionDescription,
        peerchat: Option<Capabilities>,
        seal: Option<Seal>,
    },
    SignalCandidate {
        from: String,
        candidate: IceCandidate,
        seal: Option<Seal>,
    },
    /// A client about to take its name on a plain broker asks whoever holds it to say so
    /// (on its own inbox): a claim that needs no retained message, so it holds on brokers
    /// that keep retained messages per node, or replicate them late.
    NameClaim {
        from: String,
        session: String,
    },
    /// The live holder of a name answers a claim by another session (on the same inbox).
    NameHeld {
        from: String,
        session: String,
    },
    DeliveryFailed {
        target: String,
        reason: String,
        timestamp: u64,
    },
    Presence(Presence),
}

/// A user's retained presence record (`peerchat/presence/<user>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub from: String,
    pub session: String,
    pub online: bool,
    /// For an offline record: when (ms since the Unix epoch) the user was last known
    /// online, so a record of someone gone for good can be told and cleared.
    pub since: Option<u64>,
}

/// What a peerchat client announces in its offer or answer; absent from original clients.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub version: u32,
    pub features: Vec<String>,
    /// The sender's run (a random id per start of the app): a chat recovered with the same
    /// run keeps its message numbering, one with a new run starts it again.
    pub run: Option<String>,
    /// In an answer: the ICE ufrag of the offer it answers, so an offerer that has offered
    /// again meanwhile (its network changed twice) ignores an answer to its earlier offer.
    pub answers: Option<String>,
}

/// `RTCSessionDescriptionInit` as browsers serialise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub kind: SdpKind,
    pub sdp: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpKind {
    Offer,
    Answer,
}

/// `RTCIceCandidate.toJSON()` as browsers serialise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u16>,
    pub username_fragment: Option<String>,
}

impl IceCandidate {
    /// The candidate as it may be published: a relayed candidate's related address (the
    /// client's own address, from which it reached the TURN server) becomes `0.0.0.0` port
    /// `0`, as browsers write it, so a peer that is offered only relays never learns where
    /// the other is. ICE does not use a related address to connect.
    pub fn concealed(mut self) -> Self {
        if let Some(concealed) = conceal_related_address(&self.candidate) {
            self.candidate = concealed;
        }
        self
    }
}

/// `sdp` as it may be published: its `a=candidate` lines concealed as
/// [`IceCandidate::concealed`] conceals a candidate (a description made after gathering
/// lists the candidates gathered so far).
pub fn sdp_concealed(sdp: String) -> String {
    if !sdp.contains("relay") {
        return sdp;
    }
    let lines = sdp.split("\r\n").map(|line| {
        match line.strip_prefix("a=").and_then(conceal_related_address) {
            Some(concealed) => format!("a={concealed}"),
            None => line.to_owned(),
        }
    });
    lines.collect::<Vec<_>>().join("\r\n")
}

/// A relayed candidate line with its related address hidden; `None` for any other line.
fn conceal_related_address(candidate: &str) -> Option<String> {
    let fields: Vec<&str> = candidate.split_whitespace().collect();
    let relayed = fields.first()?.starts_with("candidate:")
        && fields.windows(2).any(|pair| pair == ["typ", "relay"]);
    if !relayed {
        return None;
    }
    let mut kept = Vec::with_capacity(fields.len());
    let mut fields = fields.into_iter();
    while let Some(field) = fields.next() {
        kept.push(field);
        let hidden = match field {
            "raddr" => "0.0.0.0",
            "rport" => "0",
            _ => continue,
        };
        if fields.next().is_some() {
            kept.push(hidden);
        }
    }
    Some(kept.join(" "))
}

impl SignalMessage {
    /// The claimed sender, where the message type has one.
    pub fn sender(&self) -> Option<&str> {
        match self {
            Self::Register { from, .. }
            | Self::RegisterChallenge { from, .. }
            | Self::RegisterAck { from, .. }
            | Self::SignalOffer { from, .. }
            | Self::SignalAnswer { from, .. }
            | Self::SignalCandidate { from, .. }
            | Self::NameClaim { from, .. }
            | Self::NameHeld { from, .. } => Some(from),
            Self::Presence(p) => Some(&p.from),
            Self::DeliveryFailed { .. } => None,
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Register { .. } => "register",
            Self::RegisterChallenge { .. } => "register-challenge",
            Self::RegisterAck { .. } => "register-ack",
            Self::SignalOffer { .. } => "signal-offer",
            Self::SignalAnswer { .. } => "signal-answer",
            Self::SignalCandidate { .. } => "signal-candidate",
            Self::DeliveryFailed { .. } => "delivery-failed",
            Self::NameClaim { .. } => "name-claim",
            Self::NameHeld { .. } => "name-held",
            Self::Presence(_) => "presence",
        }
    }

    /// Checks the bounds that the codec's shape check does not.
    fn validate(&self) -> Result<(), ProtocolError> {
        let bad = |detail: String| ProtocolError::BadField {
            kind: self.kind().to_owned(),
            detail,
        };
        if let Some(from) = self.sender().filter(|from| *from != super::SERVER_NAME) {
            validate_username(from).map_err(|e| bad(format!("from: {e}")))?;
        }
        match self {
            Self::SignalOffer { offer: sd, .. } | Self::SignalAnswer { answer: sd, .. } => {
                if sd.sdp.len() > MAX_SDP_BYTES {
                    return Err(bad(format!(
                        "sdp of {} bytes exceeds {MAX_SDP_BYTES}",
                        sd.sdp.len()
                    )));
                }
                let expected = match self {
                    Self::SignalOffer { .. } => SdpKind::Offer,
                    _ => SdpKind::Answer,
                };
                if sd.kind != expected {
                    return Err(bad(format!("description type is {:?}", sd.kind)));
                }
            }
            Self::SignalCandidate { candidate, .. } => {
                if candidate.candidate.len() > MAX_CANDIDATE_BYTES {
                    return Err(bad(format!(
                        "candidate of {} bytes exceeds {MAX_CANDIDATE_BYTES}",
                        candidate.candidate.len()
                    )));
                }
            }
            Self::Register { username, .. } => {
                validate_username(username).map_err(|e| bad(format!("username: {e}")))?;
            }
            Self::DeliveryFailed { target, .. } => {
                validate_username(target).map_err(|e| bad(format!("target: {e}")))?;
            }
            Self::RegisterChallenge { nonce, .. } => {
                if nonce.is_empty() || nonce.len() > super::proof::MAX_NONCE_BYTES {
                    return Err(bad(format!("nonce of {} bytes", nonce.len())));
                }
            }
            Self::RegisterAck { .. }
            | Self::Presence(_)
            | Self::NameClaim { .. }
            | Self::NameHeld { .. } => {}
        }
        Ok(())
    }
}

/// Parses one MQTT payload into a message, enforcing every limit.
///
/// Unknown `type`s give [`ProtocolError::UnknownType`], which callers ignore quietly: newer
/// clients may speak types this one does not know.
pub fn decode(payload: &[u8]) -> Result<SignalMessage, ProtocolError> {
    if payload.len() > MAX_SIGNAL_BYTES {
        return Err(ProtocolError::TooLarge {
            size: payload.len(),
            limit: MAX_SIGNAL_BYTES,
        });
    }
    let value: Value = crate::json::parse_bytes(payload)
        .map_err(|e| ProtocolError::MalformedJson(e.to_string()))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or(ProtocolError::MissingType)?
        .to_owned();
    if !super::codec::is_known_type(&kind) {
        return Err(ProtocolError::UnknownType(kind.chars().take(64).collect()));
    }
    let message = super::codec::read_message(&kind, &value)
        .map_err(|detail| ProtocolError::BadField { kind, detail })?;
    message.validate()?;
    Ok(message)
}

/// Serialises a message for publishing.
pub fn encode(message: &SignalMessage) -> Vec<u8> {
    super::codec::write_message(message).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::MAX_SIGNAL_BYTES;

    #[test]
    fn a_relayed_candidate_is_published_without_the_clients_own_address() {
        let candidate = |text: &str| IceCandidate {
            candidate: text.to_owned(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        let relayed = candidate(
            "candidate:27 1 udp 16777215 203.0.113.9 46739 typ relay raddr 198.51.100.4 rport 59211 generation 0",
        );
        assert_eq!(
            relayed.clone().concealed().candidate,
            "candidate:27 1 udp 16777215 203.0.113.9 46739 typ relay raddr 0.0.0.0 rport 0 generation 0"
        );
        // Host and reflexive candidates are the address itself: they stay as they are
        // (a client that must hide them offers only relays).
        for kept in [
            "candidate:1 1 udp 2130706431 192.0.2.7 5000 typ host",
            "candidate:2 1 udp 1694498815 203.0.113.5 6000 typ srflx raddr 192.0.2.7 rport 5000",
            "candidate:3 1 udp 16777215 203.0.113.9 46739 typ relay",
        ] {
            assert_eq!(candidate(kept).concealed().candidate, kept);
        }
        // However it is spaced, and in a description's candidate lines too.
        let spaced = "candidate:27 1 udp 16777215 203.0.113.9 46739  typ relay\traddr 198.51.100.4 rport 59211";
        assert!(
            !candidate(spaced)
                .concealed()
                .candidate
                .contains("198.51.100.4")
        );
        let sdp = format!(
            "v=0\r\na=ice-ufrag:abcd\r\na={}\r\na=candidate:1 1 udp 2130706431 192.0.2.7 5000 typ host\r\n",
            relayed.candidate
        );
        assert_eq!(
            sdp_concealed(sdp),
            "v=0\r\na=ice-ufrag:abcd\r\na=candidate:27 1 udp 16777215 203.0.113.9 46739 typ relay raddr 0.0.0.0 rport 0 generation 0\r\na=candidate:1 1 udp 2130706431 192.0.2.7 5000 typ host\r\n"
        );
    }
    #[test]
    fn original_client_messages_decode() {
        let cases = [
            r#"{"type":"register","from":"alice","username":"alice"}"#,
            r#"{"type":"register-ack","from":"server","success":true,"message":"Registration successful"}"#,
            r#"{"type":"signal-offer","from":"alice","offer":{"type":"offer","sdp":"v=0\r\n"}}"#,
            r#"{"type":"signal-answer","from":"bob","answer":{"type":"answer","sdp":"v=0\r\n"}}"#,
            r#"{"type":"signal-candidate","from":"bob","candidate":{"candidate":"candidate:1 1 udp 2122260223 192.0.2.2 40000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"}}"#,
            r#"{"type":"delivery-failed","target":"carol","reason":"user-offline","timestamp":1795680000000}"#,
        ];
        for case in cases {
            let message = decode(case.as_bytes()).unwrap_or_else(|e| panic!("{case}: {e}"));
            // Re-encoding keeps every field the original client reads.
            let again = crate::json::parse_bytes(&encode(&message)).unwrap();
            let original = crate::json::parse(case).unwrap();
            assert_eq!(again, original, "{case}");
        }
    }

    #[test]
    fn candidate_with_null_mid_and_extra_fields_decodes() {
        let json = r#"{"type":"signal-candidate","from":"bob","extra":1,"candidate":{"candidate":"c","sdpMid":null,"sdpMLineIndex":null}}"#;
        let SignalMessage::SignalCandidate { candidate, .. } = decode(json.as_bytes()).unwrap()
        else {
            panic!("wrong kind");
        };
        assert_eq!(candidate.sdp_mid, None);
        assert_eq!(candidate.username_fragment, None);
    }

    #[test]
    fn malformed_and_unknown_input_gives_typed_errors() {
        assert!(matches!(
            decode(b"{not json"),
            Err(ProtocolError::MalformedJson(_))
        ));
        assert_eq!(decode(br#"{"from":"a"}"#), Err(ProtocolError::MissingType));
        assert_eq!(
            decode(br#"{"type":"typing","from":"a"}"#),
            Err(ProtocolError::UnknownType("typing".into()))
        );
        assert!(matches!(
            decode(br#"{"type":"signal-offer","from":"a"}"#),
            Err(ProtocolError::BadField { .. })
        ));
        assert!(matches!(
            decode(br#"{"type":"signal-offer","from":"a/b","offer":{"type":"offer","sdp":""}}"#),
            Err(ProtocolError::BadField { .. })
        ));
        assert!(matches!(
            decode(br#"{"type":"signal-offer","from":"a","offer":{"type":"answer","sdp":""}}"#),
            Err(ProtocolError::BadField { .. })
        ));
    }

    #[test]
    fn oversized_messages_and_fields_are_refused() {
        let huge = vec![b' '; MAX_SIGNAL_BYTES + 1];
        assert!(matches!(decode(&huge), Err(ProtocolError::TooLarge { .. })));
        let sdp = "a".repeat(MAX_SDP_BYTES + 1);
        let json = format!(
            r#"{{"type":"signal-offer","from":"a","offer":{{"type":"offer","sdp":"{sdp}"}}}}"#
        );
        assert!(matches!(
            decode(json.as_bytes()),
            Err(ProtocolError::BadField { .. })
        ));
    }

    #[test]
    fn peerchat_additions_round_trip() {
        let message = SignalMessage::SignalOffer {
            seal: None,
            from: "alice".into(),
            offer: SessionDescription {
                kind: SdpKind::Offer,
                sdp: "v=0".into(),
            },
            peerchat: Some(Capabilities {
                version: PROTOCOL_VERSION,
                features: vec![],
                run: None,
                answers: None,
            }),
        };
        assert_eq!(decode(&encode(&message)).unwrap(), message);
        let presence = SignalMessage::Presence(Presence {
            from: "alice".into(),
            session: "s1".into(),
            online: true,
            since: None,
        });
        assert_eq!(decode(&encode(&presence)).unwrap(), presence);
    }
}
