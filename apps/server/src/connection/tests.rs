//! The connection's decisions, packet by packet, without sockets.

use peerchat_core::identity::Identity;
use peerchat_core::identity::signature_text;
use peerchat_core::protocol::{
    REGISTER_TOPIC, RegisterProof, SignalMessage, decode, encode, register_proof_bytes,
};
use rumqttc::mqttbytes::v4::{LastWill, PubRel};

use super::*;

const NONCE: &str = "nonce-of-this-connection";

fn limits() -> Limits {
    Limits::default()
}

fn outputs(connection: &mut Connection) -> Vec<Output> {
    std::iter::from_fn(|| connection.poll_output()).collect()
}

fn connected() -> Connection {
    let mut connection = Connection::new(limits(), NONCE.to_owned(), 0);
    connection.handle_packet(Packet::Connect(Connect::new("anything")), 0);
    assert_eq!(
        outputs(&mut connection),
        [Output::Send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            false
        )))]
    );
    connection
}

fn subscribe(connection: &mut Connection, filters: &[&str]) -> Vec<Output> {
    let mut subscribe = Subscribe::new(filters[0], QoS::AtLeastOnce);
    for filter in &filters[1..] {
        subscribe.add((*filter).to_owned(), QoS::AtLeastOnce);
    }
    subscribe.pkid = 7;
    connection.handle_packet(Packet::Subscribe(subscribe), 0);
    outputs(connection)
}

fn suback_codes(outputs: &[Output]) -> Vec<SubscribeReasonCode> {
    outputs
        .iter()
        .find_map(|o| match o {
            Output::Send(Packet::SubAck(ack)) => Some(ack.return_codes.clone()),
            _ => None,
        })
        .expect("a SUBACK")
}

fn publish(connection: &mut Connection, topic: &str, payload: Vec<u8>) -> Vec<Output> {
    connection.handle_packet(
        Packet::Publish(Publish::new(topic, QoS::AtMostOnce, payload)),
        0,
    );
    outputs(connection)
}

fn register_payload(name: &str, proof: Option<RegisterProof>) -> Vec<u8> {
    encode(&SignalMessage::Register {
        from: name.to_owned(),
        username: name.to_owned(),
        session: Some("run-1".to_owned()),
        proof,
    })
}

fn proof(identity: &Identity, name: &str, nonce: &str) -> RegisterProof {
    let signed = register_proof_bytes(name, nonce, "run-1");
    RegisterProof {
        key: identity.public().to_text(),
        nonce: nonce.to_owned(),
        sig: signature_text(&identity.sign(&signed)),
    }
}

/// A connection registered as `name` without a key.
fn registered(name: &str) -> Connection {
    let mut connection = connected();
    subscribe(&mut connection, &[&format!("{name}/incoming")]);
    publish(
        &mut connection,
        REGISTER_TOPIC,
        register_payload(name, None),
    );
    connection.registered(name, Registered::Granted);
    outputs(&mut connection);
    connection
}

fn offer_from(from: &str) -> Vec<u8> {
    format!(r#"{{"type":"signal-offer","from":"{from}","offer":{{"type":"offer","sdp":"v=0"}}}}"#)
        .into_bytes()
}

fn closed(outputs: &[Output]) -> Option<&CloseReason> {
    outputs.iter().find_map(|o| match o {
        Output::Close { reason, .. } => Some(reason),
        _ => None,
    })
}

#[test]
fn nothing_but_connect_opens_a_connection() {
    let mut connection = Connection::new(limits(), NONCE.to_owned(), 0);
    connection.handle_packet(Packet::PingReq, 0);
    assert!(matches!(
        closed(&outputs(&mut connection)),
        Some(CloseReason::ProtocolViolation(_))
    ));
}

#[test]
fn a_connection_without_connect_or_without_a_name_is_cut() {
    let mut silent = Connection::new(limits(), NONCE.to_owned(), 0);
    let deadline = silent.poll_timeout().unwrap();
    assert_eq!(deadline, 10_000);
    silent.handle_timeout(deadline);
    assert_eq!(closed(&outputs(&mut silent)), Some(&CloseReason::NoConnect));

    let mut nameless = connected();
    let deadline = nameless.poll_timeout().unwrap();
    nameless.handle_timeout(deadline);
    assert_eq!(
        closed(&outputs(&mut nameless)),
        Some(&CloseReason::NotRegistered)
    );
}

#[test]
fn keep_alive_is_held_to_the_servers_maximum() {
    for asked in [0, u16::MAX] {
        let mut connection = Connection::new(limits(), NONCE.to_owned(), 0);
        let mut connect = Connect::new("c");
        connect.keep_alive = asked;
        connection.handle_packet(Packet::Connect(connect), 0);
        connection.registered("x", Registered::Granted);
        outputs(&mut connection);
        assert_eq!(connection.poll_timeout(), Some(450_000), "asked {asked}");
        connection.handle_timeout(450_000);
        assert_eq!(
            closed(&outputs(&mut connection)),
            Some(&CloseReason::KeepAliveExpired)
        );
    }
}

#[test]
fn a_will_is_never_kept() {
    let mut connection = Connection::new(limits(), NONCE.to_owned(), 0);
    let mut connect = Connect::new("c");
    connect.last_will = Some(LastWill::new(
        "bob/incoming",
        offer_from("bob"),
        QoS::AtLeastOnce,
        true,
    ));
    connection.handle_packet(Packet::Connect(connect), 0);
    connection.handle_closed();
    let hub_requests: Vec<_> = (outputs(&mut connection).into_iter())
        .filter(|o| matches!(o, Output::Hub(_)))
        .collect();
    assert!(hub_requests.is_empty(), "{hub_requests:?}");
}

#[test]
fn the_inbox_is_held_and_challenged_until_the_name_is_registered() {
    let mut connection = connected();
    let out = subscribe(&mut connection, &["alice/incoming", "bob/incoming"]);
    let challenge = out
        .iter()
        .find_map(|o| match o {
            Output::Send(Packet::Publish(p)) if p.topic == "alice/incoming" => {
                Some(decode(&p.payload).unwrap())
            }
            _ => None,
        })
        .expect("a challenge on the inbox");
    assert_eq!(
        challenge,
        SignalMessage::RegisterChallenge {
            from: "server".into(),
            nonce: NONCE.into()
        }
    );
    assert_eq!(
        suback_codes(&out),
        [
            SubscribeReasonCode::Success(QoS::AtMostOnce),
            SubscribeReasonCode::Failure
        ]
    );
    // Registering another name than the inbox it reads is refused.
    let out = publish(
        &mut connection,
        REGISTER_TOPIC,
        register_payload("bob", None),
    );
    assert_eq!(
        closed(&out),
        Some(&CloseReason::Refused(Refusal::OtherName))
    );
}

#[test]
fn a_register_proven_for_this_connection_carries_its_key() {
    let identity = Identity::from_seed([1; 32]);
    let mut connection = connected();
    subscribe(&mut connection, &["alice/incoming"]);
    let out = publish(
        &mut connection,
        REGISTER_TOPIC,
        register_payload("alice", Some(proof(&identity, "alice", NONCE))),
    );
    assert_eq!(
        out,
        [Output::Hub(Request::Register(Claim {
            name: "alice".into(),
            session: Some("run-1".into()),
            key: Some(identity.public()),
            listening: true,
        }))]
    );
}

#[test]
fn a_proof_for_another_connection_or_name_is_refused() {
    let identity = Identity::from_seed([1; 32]);
    for bad in [
        proof(&identity, "alice", "another-connections-nonce"),
        proof(&identity, "mallory", NONCE),
        RegisterProof {
            nonce: "another-connections-nonce".into(),
            ..proof(&identity, "alice", NONCE)
        },
    ] {
        let mut connection = connected();
        let out = publish(
            &mut connection,
            REGISTER_TOPIC,
            register_payload("alice", Some(bad)),
        );
        assert_eq!(closed(&out), Some(&CloseReason::Refused(Refusal::BadProof)));
    }
}

#[test]
fn only_a_registered_client_speaking_for_itself_is_delivered() {
    let mut connection = connected();
    let out = publish(&mut connection, "bob/incoming", offer_from("alice"));
    assert!(!out.iter().any(|o| matches!(o, Output::Hub(_))), "{out:?}");

    let mut alice = registered("alice");
    let out = publish(&mut alice, "bob/incoming", offer_from("alice"));
    assert!(matches!(
        &out[..],
        [Output::Hub(Request::Deliver { target, publish })]
            if target == "bob" && publish.topic == "bob/incoming" && !publish.retain
    ));
    for (topic, payload) in [
        ("bob/incoming", offer_from("carol")),
        (
            "bob/incoming",
            br#"{"type":"register-ack","from":"alice","success":true}"#.to_vec(),
        ),
        ("peerchat/presence/bob", b"{}".to_vec()),
        ("some/topic", offer_from("alice")),
        ("#", offer_from("alice")),
    ] {
        let out = publish(&mut alice, topic, payload);
        assert!(out.is_empty(), "{topic}: {out:?}");
    }
    let mut retained = Publish::new("bob/incoming", QoS::AtMostOnce, offer_from("alice"));
    retained.retain = true;
    alice.handle_packet(Packet::Publish(retained), 0);
    assert!(outputs(&mut alice).is_empty());
}

#[test]
fn presence_is_watched_by_exact_name_up_to_a_cap() {
    let mut connection = connected();
    let out = subscribe(
        &mut connection,
        &[
            "peerchat/presence/bob",
            "peerchat/presence/+",
            "#",
            "+/incoming",
        ],
    );
    assert!(out.contains(&Output::Hub(Request::Watch("bob".into()))));
    assert_eq!(suback_codes(&out)[1..], [SubscribeReasonCode::Failure; 3]);
    let small = Limits {
        watches_per_connection: 2,
        refusals_per_connection: 1000,
        ..limits()
    };
    let mut capped = Connection::new(small, NONCE.to_owned(), 0);
    capped.handle_packet(Packet::Connect(Connect::new("c")), 0);
    let out = subscribe(
        &mut capped,
        &[
            "peerchat/presence/a",
            "peerchat/presence/b",
            "peerchat/presence/c",
            "peerchat/presence/a",
        ],
    );
    let codes = suback_codes(&out);
    assert_eq!(codes[2], SubscribeReasonCode::Failure);
    assert_eq!(codes[3], SubscribeReasonCode::Success(QoS::AtMostOnce));
}

#[test]
fn a_client_that_keeps_asking_for_what_it_may_not_have_is_cut() {
    let mut connection = connected();
    let mut out = Vec::new();
    for i in 0..=limits().refusals_per_connection {
        out = subscribe(&mut connection, &[&format!("x/{i}")]);
    }
    assert_eq!(closed(&out), Some(&CloseReason::TooManyRefusals));
}

#[test]
fn acknowledgements_of_packets_never_sent_are_dropped() {
    let mut alice = registered("alice");
    for packet in [
        Packet::PubAck(PubAck::new(1)),
        Packet::PubRec(PubRec::new(2)),
        Packet::PubComp(PubComp::new(3)),
    ] {
        alice.handle_packet(packet, 0);
    }
    assert!(outputs(&mut alice).is_empty());
}

#[test]
fn qos2_publishes_are_handled_once_and_completed() {
    let mut alice = registered("alice");
    let mut offer = Publish::new("bob/incoming", QoS::ExactlyOnce, offer_from("alice"));
    offer.pkid = 9;
    alice.handle_packet(Packet::Publish(offer.clone()), 0);
    let first = outputs(&mut alice);
    assert_eq!(first[0], Output::Send(Packet::PubRec(PubRec::new(9))));
    assert!(matches!(first[1], Output::Hub(Request::Deliver { .. })));
    offer.dup = true;
    alice.handle_packet(Packet::Publish(offer), 0);
    assert_eq!(
        outputs(&mut alice),
        [Output::Send(Packet::PubRec(PubRec::new(9)))]
    );
    alice.handle_packet(Packet::PubRel(PubRel::new(9)), 0);
    assert_eq!(
        outputs(&mut alice),
        [Output::Send(Packet::PubComp(PubComp::new(9)))]
    );
}

#[test]
fn a_flood_is_refused_past_the_rate_limit() {
    let mut alice = registered("alice");
    let delivered = (0..1000)
        .filter(|_| {
            let out = publish(&mut alice, "bob/incoming", offer_from("alice"));
            out.iter()
                .any(|o| matches!(o, Output::Hub(Request::Deliver { .. })))
        })
        .count();
    // The register took one of the burst.
    assert_eq!(delivered as f64, limits().publish_burst - 1.0);
}

#[test]
fn an_offline_recipient_comes_back_as_delivery_failed() {
    let mut alice = registered("alice");
    alice.undeliverable("carol", 1_795_680_000_000);
    let out = outputs(&mut alice);
    let [Output::Send(Packet::Publish(failure))] = &out[..] else {
        panic!("{out:?}");
    };
    assert_eq!(failure.topic, "alice/incoming");
    assert!(matches!(
        decode(&failure.payload).unwrap(),
        SignalMessage::DeliveryFailed { target, .. } if target == "carol"
    ));
}

#[test]
fn an_undecided_register_closes_the_connection_unanswered() {
    let mut connection = connected();
    subscribe(&mut connection, &["carol/incoming"]);
    publish(
        &mut connection,
        "system/register",
        register_payload("carol", None),
    );
    connection.registered("carol", Registered::Unavailable);
    let outputs = outputs(&mut connection);
    assert!(
        !outputs
            .iter()
            .any(|o| matches!(o, Output::Send(Packet::Publish(_)))),
        "no register-ack: the client tries again rather than give up its name: {outputs:?}"
    );
    assert_eq!(closed(&outputs), Some(&CloseReason::RegistryUnavailable));
    assert_eq!(connection.name(), None);
}

#[test]
fn only_a_client_registering_as_the_original_app_does_is_given_time_to_settle() {
    let peerchat = registered("alice");
    assert!(!peerchat.needs_time_to_settle());
    let mut original = connected();
    assert!(!original.needs_time_to_settle());
    subscribe(&mut original, &["bob/incoming"]);
    let register = br#"{"type":"register","from":"bob","username":"bob"}"#.to_vec();
    let out = publish(&mut original, REGISTER_TOPIC, register);
    assert!(
        matches!(
            &out[..],
            [Output::Hub(Request::Register(Claim { session: None, .. }))]
        ),
        "{out:?}"
    );
    assert!(original.needs_time_to_settle());
}
