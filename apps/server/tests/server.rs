//! End-to-end behaviour of `peerchat-server` as clients see it: registration, presence and
//! delivery over MQTT/TCP and MQTT over WebSocket, and robustness against bad input.

mod support;

use std::time::Duration;

use peerchat_core::identity::Identity;
use peerchat_core::protocol::{
    Presence, SdpKind, SessionDescription, SignalMessage, encode, incoming_topic, presence_topic,
};
use rumqttc::{LastWill, Packet, QoS};
use support::{PATIENCE, TestClient, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

fn ok() -> (bool, String) {
    (true, "Registration successful".to_owned())
}

fn taken() -> (bool, String) {
    (false, "Username is already taken".to_owned())
}

/// Registers `name` on fresh connections until it succeeds: the server frees a name when it
/// notices its connection is gone, which may come a moment after the client saw the close.
async fn register_when_free(server: &TestServer, name: &str) -> TestClient {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut client = TestClient::connect(server.tcp_options(name)).await;
        if client.register(name, None).await == ok() {
            return client;
        }
        assert!(Instant::now() < deadline, "{name} is still taken");
        drop(client);
        sleep(Duration::from_millis(100)).await;
    }
}

fn offer_from(from: &str) -> SignalMessage {
    SignalMessage::SignalOffer {
        seal: None,
        from: from.to_owned(),
        offer: SessionDescription {
            kind: SdpKind::Offer,
            sdp: "v=0\r\n".to_owned(),
        },
        peerchat: None,
    }
}

#[tokio::test]
async fn register_gets_a_success_ack_over_tcp() {
    let server = TestServer::start().await;
    let mut alice = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(alice.register("alice", Some("s1")).await, ok());
}

#[tokio::test]
async fn register_gets_a_success_ack_over_websocket() {
    let server = TestServer::start().await;
    let mut alice = TestClient::connect(server.ws_options("alice")).await;
    assert_eq!(alice.register("alice", None).await, ok());
}

#[tokio::test]
async fn a_taken_name_is_refused_and_the_owner_keeps_it() {
    let server = TestServer::start().await;
    // Both use the username as client id, as the original client does.
    let mut owner = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(owner.register("alice", Some("s1")).await, ok());
    let mut bob = TestClient::connect(server.tcp_options("bob")).await;
    assert_eq!(bob.register("bob", None).await, ok());

    // The intruder subscribed to alice's inbox to register: while it waits for its close, a
    // message to alice is not sent to it.
    let mut intruder = TestClient::connect(server.ws_options("alice")).await;
    assert_eq!(intruder.register("alice", Some("s2")).await, taken());
    let offer = offer_from("bob");
    bob.mqtt
        .publish(
            incoming_topic("alice"),
            QoS::AtLeastOnce,
            false,
            encode(&offer),
        )
        .await
        .unwrap();
    intruder.wait_until_closed_hearing_nothing_more().await;

    // The owner's connection survived: it still receives its own incoming traffic.
    let (_, received) = owner.next_message_on(&incoming_topic("alice")).await;
    assert_eq!(received, offer);
}

#[tokio::test]
async fn clients_without_sessions_cannot_share_a_name() {
    let server = TestServer::start().await;
    let mut first = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(first.register("alice", None).await, ok());
    let mut second = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(second.register("alice", None).await, taken());
}

#[tokio::test]
async fn a_name_is_free_again_after_its_owner_disconnects() {
    let server = TestServer::start().await;
    let mut first = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(first.register("alice", Some("s1")).await, ok());
    first.disconnect().await;
    register_when_free(&server, "alice").await;
}

#[tokio::test]
async fn a_name_is_free_again_after_its_owner_vanishes() {
    let server = TestServer::start().await;
    let mut first = TestClient::connect(server.ws_options("alice")).await;
    assert_eq!(first.register("alice", Some("s1")).await, ok());
    first.vanish();
    register_when_free(&server, "alice").await;
}

#[tokio::test]
async fn the_same_run_with_the_same_key_takes_its_name_over() {
    let server = TestServer::start().await;
    let key = Identity::from_seed([1; 32]);
    let mut stale = TestClient::connect(server.tcp_options("alice")).await;
    let registered = stale.register_as("alice", Some("run-1"), Some(&key)).await;
    assert_eq!(registered, ok());
    let mut fresh = TestClient::connect(server.tcp_options("alice")).await;
    let registered = fresh.register_as("alice", Some("run-1"), Some(&key)).await;
    assert_eq!(registered, ok());
    stale.wait_until_closed().await;
    // Another run of the same key is a second window while the first is online.
    let mut second = TestClient::connect(server.tcp_options("alice")).await;
    let registered = second.register_as("alice", Some("run-2"), Some(&key)).await;
    assert_eq!(registered, taken());
}

#[tokio::test]
async fn a_name_stays_with_the_key_that_first_proved_itself() {
    let server = TestServer::start().await;
    let (alices, mallorys) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
    let mut alice = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(
        alice.register_as("alice", Some("s1"), Some(&alices)).await,
        ok()
    );
    alice.disconnect().await;
    sleep(Duration::from_millis(200)).await;
    for (key, session) in [(Some(&mallorys), "s2"), (None, "s3")] {
        let mut other = TestClient::connect(server.tcp_options("alice")).await;
        assert_eq!(
            other.register_as("alice", Some(session), key).await,
            taken()
        );
    }
    let mut again = TestClient::connect(server.ws_options("alice")).await;
    assert_eq!(
        again.register_as("alice", Some("s4"), Some(&alices)).await,
        ok()
    );
}

#[tokio::test]
async fn name_bindings_outlive_a_restart_of_the_server() {
    let dir = std::env::temp_dir().join(format!("peerchat-server-data-{}", std::process::id()));
    let data_dir = dir.to_str().unwrap().to_owned();
    let (alices, mallorys) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
    {
        let server = TestServer::start_with(&["--data-dir", &data_dir]).await;
        let mut alice = TestClient::connect(server.tcp_options("alice")).await;
        assert_eq!(
            alice.register_as("alice", Some("s1"), Some(&alices)).await,
            ok()
        );
        // Bindings are written within two seconds.
        let names = dir.join("names.json");
        let deadline = Instant::now() + PATIENCE;
        while !std::fs::read_to_string(&names).is_ok_and(|t| t.contains("alice")) {
            assert!(Instant::now() < deadline, "the binding was not written");
            sleep(Duration::from_millis(100)).await;
        }
    }
    let server = TestServer::start_with(&["--data-dir", &data_dir]).await;
    let mut mallory = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(
        mallory
            .register_as("alice", Some("s2"), Some(&mallorys))
            .await,
        taken()
    );
    let mut alice = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(
        alice.register_as("alice", Some("s3"), Some(&alices)).await,
        ok()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_message_to_an_offline_user_comes_back_as_delivery_failed() {
    let server = TestServer::start().await;
    let mut alice = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(alice.register("alice", None).await, ok());
    alice
        .mqtt
        .publish(
            incoming_topic("carol"),
            QoS::AtMostOnce,
            false,
            encode(&offer_from("alice")),
        )
        .await
        .unwrap();
    let (publish, failure) = alice.next_message_on(&incoming_topic("alice")).await;
    assert_eq!(publish.qos, QoS::AtMostOnce);
    let SignalMessage::DeliveryFailed {
        target,
        reason,
        timestamp,
    } = failure
    else {
        panic!("expected delivery-failed, got {failure:?}");
    };
    assert_eq!(
        (target.as_str(), reason.as_str()),
        ("carol", "user-offline")
    );
    assert!(
        timestamp > 1_700_000_000_000,
        "a Unix time in ms: {timestamp}"
    );
}

#[tokio::test]
async fn registered_users_exchange_messages_across_transports() {
    let server = TestServer::start().await;
    let mut alice = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(alice.register("alice", None).await, ok());
    let mut bob = TestClient::connect(server.ws_options("bob")).await;
    assert_eq!(bob.register("bob", None).await, ok());

    let offer = offer_from("alice");
    alice
        .mqtt
        .publish(
            incoming_topic("bob"),
            QoS::AtLeastOnce,
            false,
            encode(&offer),
        )
        .await
        .unwrap();
    assert_eq!(bob.next_message_on(&incoming_topic("bob")).await.1, offer);

    // A message near the packet limit crosses whole, in both directions.
    let big = SignalMessage::SignalOffer {
        seal: None,
        from: "bob".to_owned(),
        offer: SessionDescription {
            kind: SdpKind::Offer,
            sdp: "a".repeat(30 * 1024),
        },
        peerchat: None,
    };
    bob.mqtt
        .publish(
            incoming_topic("alice"),
            QoS::AtMostOnce,
            false,
            encode(&big),
        )
        .await
        .unwrap();
    assert_eq!(alice.next_message_on(&incoming_topic("alice")).await.1, big);
}

#[tokio::test]
async fn a_client_reads_no_inbox_but_its_own() {
    let server = TestServer::start().await;
    let mut carol = register_when_free(&server, "carol").await;
    carol
        .mqtt
        .subscribe(incoming_topic("bob"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let codes = carol
        .wait_for(|p| match p {
            Packet::SubAck(ack) => Some(ack.return_codes.clone()),
            _ => None,
        })
        .await;
    assert_eq!(codes, [rumqttc::SubscribeReasonCode::Failure]);
}

#[tokio::test]
async fn a_client_publishes_only_in_its_own_name() {
    let server = TestServer::start().await;
    let mut bob = register_when_free(&server, "bob").await;
    let carol = register_when_free(&server, "carol").await;
    for from in ["alice", "carol"] {
        carol
            .mqtt
            .publish(
                incoming_topic("bob"),
                QoS::AtMostOnce,
                false,
                encode(&offer_from(from)),
            )
            .await
            .unwrap();
    }
    // The spoofed one never arrives; the honest one, sent after it, does.
    let (_, first) = bob.next_message_on(&incoming_topic("bob")).await;
    assert_eq!(first, offer_from("carol"));
}

#[tokio::test]
async fn a_last_will_in_another_name_is_discarded() {
    let server = TestServer::start().await;
    let mut bob = register_when_free(&server, "bob").await;
    bob.subscribe(&presence_topic("alice")).await;
    let forged = SignalMessage::Presence(Presence {
        from: "alice".to_owned(),
        session: "s".to_owned(),
        online: false,
        since: None,
    });
    let will = LastWill::new(
        presence_topic("alice"),
        encode(&forged),
        QoS::AtLeastOnce,
        true,
    );
    let mut carol = TestClient::connect_with_will(server.tcp_options("carol"), will).await;
    assert_eq!(carol.register("carol", None).await, ok());
    carol.vanish();
    // The record alice's watchers get when they start watching: nobody holds the name.
    let (_, first) = bob.next_message_on(&presence_topic("alice")).await;
    assert!(matches!(first, SignalMessage::Presence(ref p) if !p.online && p.session.is_empty()));
    let seen = timeout(
        Duration::from_secs(2),
        bob.next_message_on(&presence_topic("alice")),
    )
    .await;
    assert!(seen.is_err(), "a forged will spoke for alice: {seen:?}");
}

#[tokio::test]
async fn presence_is_what_the_registry_says() {
    let server = TestServer::start().await;
    let mut bob = register_when_free(&server, "bob").await;
    bob.subscribe(&presence_topic("alice")).await;
    let (first, record) = bob.next_message_on(&presence_topic("alice")).await;
    assert!(
        first.retain,
        "the current record comes as a retained message"
    );
    assert!(matches!(record, SignalMessage::Presence(ref p) if !p.online));

    let mut alice = TestClient::connect(server.ws_options("alice")).await;
    assert_eq!(alice.register("alice", Some("s1")).await, ok());
    let online = SignalMessage::Presence(Presence {
        from: "alice".to_owned(),
        session: "s1".to_owned(),
        online: true,
        since: None,
    });
    assert_eq!(
        bob.next_message_on(&presence_topic("alice")).await.1,
        online
    );

    // A later watcher gets the record at once.
    let mut carol = register_when_free(&server, "carol").await;
    carol.subscribe(&presence_topic("alice")).await;
    let (publish, record) = carol.next_message_on(&presence_topic("alice")).await;
    assert!(publish.retain);
    assert_eq!(record, online);

    alice.vanish();
    let (_, gone) = bob.next_message_on(&presence_topic("alice")).await;
    assert!(matches!(gone, SignalMessage::Presence(ref p) if !p.online));
}

#[tokio::test]
async fn a_refused_clients_last_will_does_not_speak_for_the_owner() {
    let server = TestServer::start().await;
    let online = SignalMessage::Presence(Presence {
        from: "alice".to_owned(),
        session: "owner".to_owned(),
        online: true,
        since: None,
    });
    let mut owner = TestClient::connect(server.tcp_options("alice")).await;
    assert_eq!(owner.register("alice", Some("owner")).await, ok());
    owner
        .mqtt
        .publish(
            presence_topic("alice"),
            QoS::AtLeastOnce,
            true,
            encode(&online),
        )
        .await
        .unwrap();
    owner
        .wait_for(|p| matches!(p, Packet::PubAck(_)).then_some(()))
        .await;

    let offline = SignalMessage::Presence(Presence {
        from: "alice".to_owned(),
        session: "intruder".to_owned(),
        online: false,
        since: None,
    });
    let will = LastWill::new(
        presence_topic("alice"),
        encode(&offline),
        QoS::AtLeastOnce,
        true,
    );
    let mut intruder = TestClient::connect_with_will(server.tcp_options("alice"), will).await;
    assert_eq!(intruder.register("alice", Some("intruder")).await, taken());
    intruder.wait_until_closed_hearing_nothing_more().await;
    drop(intruder);

    let mut watcher = TestClient::connect(server.tcp_options("watcher")).await;
    watcher.subscribe(&presence_topic("alice")).await;
    let (_, seen) = watcher.next_message_on(&presence_topic("alice")).await;
    assert_eq!(seen, online);
}

#[tokio::test]
async fn garbage_and_oversized_packets_cut_only_their_own_connection() {
    let server = TestServer::start().await;
    let addr = ("127.0.0.1", server.mqtt_port);

    // Neither MQTT nor HTTP.
    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage
        .write_all(&[0x00, 0x01, 0xfe, b'\r', b'\n', b'\r', b'\n'])
        .await
        .unwrap();
    // Bytes that cannot even frame a packet.
    let mut noise = TcpStream::connect(addr).await.unwrap();
    noise
        .write_all(&[0x10, 0xff, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    expect_closed(&mut garbage).await;
    expect_closed(&mut noise).await;

    // A PUBLISH announcing 1 MiB, over the limit: refused from its header.
    let mut oversized = TcpStream::connect(addr).await.unwrap();
    oversized.write_all(&connect_packet("big")).await.unwrap();
    oversized
        .write_all(&[0x30, 0x80, 0x80, 0x40])
        .await
        .unwrap();
    expect_closed(&mut oversized).await;

    // A malformed register is ignored and the connection stays usable.
    let mut alice = TestClient::connect(server.tcp_options("alice")).await;
    alice
        .mqtt
        .publish(
            "system/register",
            QoS::AtLeastOnce,
            false,
            b"{not json".to_vec(),
        )
        .await
        .unwrap();
    alice
        .wait_for(|p| matches!(p, Packet::PubAck(_)).then_some(()))
        .await;
    assert_eq!(alice.register("alice", None).await, ok());
}

/// The figures PROTOCOL.md gives for peerchat-server (its limits table and the
/// "peerchat-server" section) are the limits the server runs with by default: 128 KiB
/// packets, 200 publishes a second in bursts of 400, closed past 100 refusals, 1024 presence
/// records watched, 128 connections per address and 200,000 in all, 1 MiB waiting for a
/// client, CONNECT and `register` within 10 s, keep-alive held to 300 s.
#[test]
fn the_default_limits_are_the_figures_the_protocol_documents() {
    let limits = peerchat_server::limits::Limits::default();
    assert_eq!(peerchat_core::protocol::MAX_MQTT_PACKET_BYTES, 128 * 1024);
    assert_eq!(limits.publishes_per_second, 200.0);
    assert_eq!(limits.publish_burst, 400.0);
    assert_eq!(limits.refusals_per_connection, 100);
    assert_eq!(limits.watches_per_connection, 1024);
    assert_eq!(limits.connections_per_address, 128);
    assert_eq!(limits.max_connections, 200_000);
    assert_eq!(limits.outbox_bytes, 1024 * 1024);
    assert_eq!(limits.connect_timeout, Duration::from_secs(10));
    assert_eq!(limits.register_timeout, Duration::from_secs(10));
    assert_eq!(limits.max_keep_alive, Duration::from_secs(300));
}

/// Original clients are built for `ws://host:1883` at any path: the MQTT port answers
/// WebSocket too, as does the HTTP port at any path.
#[tokio::test]
async fn websocket_mqtt_is_answered_on_both_ports_at_any_path() {
    let server = TestServer::start().await;
    for (port, path) in [
        (server.mqtt_port, ""),
        (server.mqtt_port, "/anything"),
        (server.http_port, "/"),
        (server.http_port, "/mqtt"),
    ] {
        let url = format!("ws://127.0.0.1:{port}{path}");
        let mut options = rumqttc::MqttOptions::new("original", url, port);
        options.set_transport(rumqttc::Transport::Ws);
        let name = format!("user{port}{}", path.len());
        let mut client = TestClient::connect(options).await;
        assert_eq!(client.register(&name, None).await, ok(), "{port}{path}");
    }
}

/// A browser gets each MQTT packet in a WebSocket message of its own, as the original
/// server sends them (the original client drops candidates that arrive in the same turn as
/// an offer they follow).
#[tokio::test]
async fn each_packet_travels_in_a_websocket_message_of_its_own() {
    let server = TestServer::start().await;
    let mut socket = support::websocket::RawWebSocket::open(server.http_port, "/mqtt").await;
    let mut connect = rumqttc::mqttbytes::v4::Connect::new("original");
    connect.keep_alive = 30;
    socket
        .send_packet(&rumqttc::mqttbytes::v4::Packet::Connect(connect))
        .await;
    let mut subscribe = rumqttc::mqttbytes::v4::Subscribe::new("alice/incoming", QoS::AtMostOnce);
    subscribe.pkid = 1;
    subscribe.add("peerchat/presence/bob".to_owned(), QoS::AtMostOnce);
    subscribe.add("peerchat/presence/carol".to_owned(), QoS::AtMostOnce);
    socket
        .send_packet(&rumqttc::mqttbytes::v4::Packet::Subscribe(subscribe))
        .await;
    // CONNACK, the register challenge, SUBACK and two presence records: five messages.
    for _ in 0..5 {
        let message = socket.next_message().await;
        let mut bytes = bytes::BytesMut::from(&message[..]);
        rumqttc::mqttbytes::v4::Packet::read(&mut bytes, usize::MAX).expect("one whole packet");
        assert!(
            bytes.is_empty(),
            "{} bytes after the first packet",
            bytes.len()
        );
    }
}

#[tokio::test]
async fn the_health_check_answers_ok() {
    let server = TestServer::start().await;
    let mut http = TcpStream::connect(("127.0.0.1", server.http_port))
        .await
        .unwrap();
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    timeout(PATIENCE, http.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");
}

/// A minimal MQTT 3.1.1 CONNECT with a clean session.
fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30];
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

/// Reads until the server closes the connection.
async fn expect_closed(stream: &mut TcpStream) {
    let mut sink = Vec::new();
    let closed = timeout(PATIENCE, stream.read_to_end(&mut sink)).await;
    assert!(
        closed.is_ok(),
        "the server closes a connection sending bad MQTT"
    );
    // A close may come as a reset, which read_to_end reports as an error: both are fine.
}

/// With a certificate, both ports speak TLS only: MQTT over TLS, HTTPS and WSS; a client
/// that does not start with TLS gets nothing.
#[tokio::test]
async fn with_a_certificate_both_ports_speak_only_tls() {
    let dir = std::env::temp_dir().join(format!("peerchat-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = TestServer::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await;
    let trusting = || rumqttc::TlsConfiguration::Simple {
        ca: certified.cert.pem().into_bytes(),
        alpn: None,
        client_auth: None,
    };

    let mut options = rumqttc::MqttOptions::new("alice", "localhost", server.mqtt_port);
    options.set_transport(rumqttc::Transport::Tls(trusting()));
    let mut alice = TestClient::connect(options).await;
    assert_eq!(alice.register("alice", None).await, ok());

    let url = format!("wss://localhost:{}/mqtt", server.http_port);
    let mut options = rumqttc::MqttOptions::new("bob", url, server.http_port);
    options.set_transport(rumqttc::Transport::Wss(trusting()));
    let mut bob = TestClient::connect(options).await;
    assert_eq!(bob.register("bob", None).await, ok());

    let mut plain = TcpStream::connect(("127.0.0.1", server.mqtt_port))
        .await
        .unwrap();
    plain.write_all(&connect_packet("plain")).await.unwrap();
    expect_closed(&mut plain).await;
    std::fs::remove_dir_all(&dir).ok();
}

/// A client that sends its register and, right behind it in the same write, a message: the
/// message finds the name registered (each packet's effect is complete before the next).
#[tokio::test]
async fn a_message_right_behind_a_register_goes_through() {
    use rumqttc::mqttbytes::v4::{Packet as Raw, Publish as RawPublish, Subscribe};
    let server = TestServer::start().await;
    let mut bob = TestClient::connect(server.tcp_options("bob")).await;
    assert_eq!(bob.register("bob", None).await, ok());
    let mut alice = support::raw::RawClient::connect(
        server.mqtt_port,
        support::raw::RawClient::connect_packet("alice"),
    )
    .await;
    let register = SignalMessage::Register {
        from: "alice".to_owned(),
        username: "alice".to_owned(),
        session: None,
        proof: None,
    };
    let mut subscribe =
        Subscribe::new(incoming_topic("alice"), rumqttc::mqttbytes::QoS::AtMostOnce);
    subscribe.pkid = 1;
    alice
        .send_all(&[
            Raw::Subscribe(subscribe),
            Raw::Publish(RawPublish::new(
                "system/register",
                rumqttc::mqttbytes::QoS::AtMostOnce,
                encode(&register),
            )),
            Raw::Publish(RawPublish::new(
                incoming_topic("bob"),
                rumqttc::mqttbytes::QoS::AtMostOnce,
                encode(&offer_from("alice")),
            )),
        ])
        .await
        .unwrap();
    let (_, offer) = bob.next_message_on(&incoming_topic("bob")).await;
    assert_eq!(offer, offer_from("alice"));
}
