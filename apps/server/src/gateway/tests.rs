//! Tests of the gateway's decisions and of its pumps, the latter against a scripted broker
//! on a loopback port and a client on an in-memory pipe.

use super::*;
use peerchat_core::protocol::{
    REGISTER_TOPIC, SdpKind, SessionDescription, SignalMessage, decode, encode, incoming_topic,
};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{PubAck, PubComp, PubRec, PubRel, Publish};
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, ReadHalf, WriteHalf, duplex, split,
};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::sleep;

const PATIENCE: Duration = Duration::from_secs(10);

#[test]
fn clean_sessions_get_a_broker_client_id_of_their_own() {
    let connect = broker_connect(7, Packet::Connect(Connect::new("alice"))).unwrap();
    assert_eq!(connect.client_id, "peerchat-gw-7");
}

#[test]
fn persistent_sessions_keep_their_client_id_if_the_broker_accepts_it() {
    let mut connect = Connect::new("alice");
    connect.clean_session = false;
    let kept = broker_connect(7, Packet::Connect(connect.clone())).unwrap();
    assert_eq!(kept.client_id, "alice");
    connect.client_id = "a/b".into();
    assert!(matches!(
        broker_connect(7, Packet::Connect(connect)),
        Err(SessionError::BadClientId(_))
    ));
}

#[test]
fn only_mqtt_311_connects_open_a_session() {
    assert!(matches!(
        broker_connect(1, Packet::PingReq),
        Err(SessionError::NotConnect(_))
    ));
    let mut connect = Connect::new("alice");
    connect.protocol = Protocol::V5;
    assert!(matches!(
        broker_connect(1, Packet::Connect(connect)),
        Err(SessionError::NotMqtt311)
    ));
}

/// Reads whole packets off one side of a connection.
struct PacketReader<R> {
    source: R,
    frames: FrameBuffer,
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    fn new(source: R) -> Self {
        Self {
            source,
            frames: FrameBuffer::new(2 * MAX_MQTT_PACKET_BYTES),
        }
    }

    async fn next(&mut self) -> Packet {
        timeout(PATIENCE, async {
            loop {
                if let Some(frame) = self.frames.next_frame().unwrap() {
                    return parse(&frame).unwrap();
                }
                let read = self
                    .source
                    .read_buf(self.frames.read_buffer())
                    .await
                    .unwrap();
                assert!(read > 0, "closed while a packet was awaited");
            }
        })
        .await
        .expect("a packet in time")
    }

    async fn next_message(&mut self) -> (String, SignalMessage) {
        match self.next().await {
            Packet::Publish(publish) => (publish.topic, decode(&publish.payload).unwrap()),
            other => panic!("expected a publish, got {other:?}"),
        }
    }
}

async fn send<W: AsyncWrite + Unpin>(sink: &mut W, packet: Packet) {
    sink.write_all(&serialize(&packet).unwrap()).await.unwrap();
}

/// One client connected through a gateway to a broker the test plays.
struct Fixture {
    client: PacketReader<ReadHalf<DuplexStream>>,
    to_gateway: WriteHalf<DuplexStream>,
    broker: PacketReader<OwnedReadHalf>,
    to_client: OwnedWriteHalf,
}

impl Fixture {
    /// Connects client `alice` and answers its CONNECT from the broker side.
    async fn connected() -> Self {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let gateway = Gateway::new(listener.local_addr().unwrap());
        let (client_end, gateway_end) = duplex(256 * 1024);
        let (input, output) = split(gateway_end);
        let peer = SocketAddr::from(([127, 0, 0, 1], 9));
        tokio::spawn(gateway.serve(StreamInput(input), StreamOutput(output), peer, "test"));
        let (client, mut to_gateway) = split(client_end);
        send(&mut to_gateway, Packet::Connect(Connect::new("alice"))).await;

        let (broker, _) = timeout(PATIENCE, listener.accept()).await.unwrap().unwrap();
        let (broker, mut to_client) = broker.into_split();
        let mut broker = PacketReader::new(broker);
        let Packet::Connect(connect) = broker.next().await else {
            panic!("the broker's first packet is CONNECT");
        };
        assert!(connect.client_id.starts_with("peerchat-gw-"));
        let connack = ConnAck::new(ConnectReturnCode::Success, false);
        send(&mut to_client, Packet::ConnAck(connack)).await;

        let mut client = PacketReader::new(client);
        assert!(matches!(client.next().await, Packet::ConnAck(_)));
        Self {
            client,
            to_gateway,
            broker,
            to_client,
        }
    }

    async fn publish(&mut self, topic: &str, qos: QoS, pkid: u16, message: &SignalMessage) {
        let mut publish = Publish::new(topic, qos, encode(message));
        publish.pkid = pkid;
        send(&mut self.to_gateway, Packet::Publish(publish)).await;
    }

    async fn register(&mut self, qos: QoS, pkid: u16) {
        let register = SignalMessage::Register {
            from: "alice".into(),
            username: "alice".into(),
            session: None,
        };
        self.publish(REGISTER_TOPIC, qos, pkid, &register).await;
    }
}

fn is_success_ack(message: &SignalMessage) -> bool {
    matches!(message, SignalMessage::RegisterAck { success: true, .. })
}

#[tokio::test]
async fn injected_packets_never_split_a_broker_frame() {
    let mut fixture = Fixture::connected().await;
    fixture.register(QoS::AtMostOnce, 0).await;
    let (topic, ack) = fixture.client.next_message().await;
    assert_eq!(topic, "alice/incoming");
    assert!(is_success_ack(&ack), "{ack:?}");

    // The broker has sent half of a large frame when the gateway has something to inject.
    let big = Publish::new("alice/incoming", QoS::AtMostOnce, vec![b'x'; 20_000]);
    let big_bytes = serialize(&Packet::Publish(big.clone())).unwrap();
    let (first_half, second_half) = big_bytes.split_at(10_000);
    fixture.to_client.write_all(first_half).await.unwrap();
    sleep(Duration::from_millis(100)).await;
    let offer = SignalMessage::SignalOffer {
        seal: None,
        from: "alice".into(),
        offer: SessionDescription {
            kind: SdpKind::Offer,
            sdp: "v=0\r\n".into(),
        },
        peerchat: None,
    };
    fixture
        .publish(&incoming_topic("carol"), QoS::AtMostOnce, 0, &offer)
        .await;
    let (topic, failure) = fixture.client.next_message().await;
    assert_eq!(topic, "alice/incoming");
    assert!(
        matches!(&failure, SignalMessage::DeliveryFailed { target, .. } if target == "carol"),
        "{failure:?}"
    );

    // The rest of the frame follows, whole; the client's stream never broke.
    fixture.to_client.write_all(second_half).await.unwrap();
    assert_eq!(fixture.client.next().await, Packet::Publish(big));

    // The register never reached the broker; the message to carol did.
    let Packet::Publish(forwarded) = fixture.broker.next().await else {
        panic!("expected the forwarded publish");
    };
    assert_eq!(forwarded.topic, "carol/incoming");
}

#[tokio::test]
async fn registers_at_qos_1_and_2_are_acknowledged_by_the_gateway() {
    let mut fixture = Fixture::connected().await;
    fixture.register(QoS::AtLeastOnce, 7).await;
    assert_eq!(fixture.client.next().await, Packet::PubAck(PubAck::new(7)));
    assert!(is_success_ack(&fixture.client.next_message().await.1));

    fixture.register(QoS::ExactlyOnce, 8).await;
    assert_eq!(fixture.client.next().await, Packet::PubRec(PubRec::new(8)));
    assert!(is_success_ack(&fixture.client.next_message().await.1));
    send(&mut fixture.to_gateway, Packet::PubRel(PubRel::new(8))).await;
    assert_eq!(
        fixture.client.next().await,
        Packet::PubComp(PubComp::new(8))
    );

    // None of it reached the broker: the next thing it sees is the client's ping.
    send(&mut fixture.to_gateway, Packet::PingReq).await;
    assert_eq!(fixture.broker.next().await, Packet::PingReq);
}

#[tokio::test]
async fn a_client_disconnect_reaches_the_broker_and_ends_both_connections() {
    let mut fixture = Fixture::connected().await;
    send(&mut fixture.to_gateway, Packet::Disconnect).await;
    assert_eq!(fixture.broker.next().await, Packet::Disconnect);
    // The broker closes its side, as rumqttd does after DISCONNECT; the client sees the close.
    drop(fixture.to_client);
    let mut rest = Vec::new();
    timeout(PATIENCE, fixture.client.source.read_to_end(&mut rest))
        .await
        .expect("the client's connection closes")
        .unwrap();
}
