//! A raw MQTT client for attack tests: it sends whatever packet it is given (bogus
//! acknowledgements, odd client ids, wills in other names, floods), as no real client would.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use peerchat_core::protocol::{REGISTER_TOPIC, SignalMessage, decode, encode, incoming_topic};
use rumqttc::mqttbytes::{
    self, QoS,
    v4::{Connect, ConnectReturnCode, Packet, Publish, Subscribe},
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::PATIENCE;

/// One raw TCP connection speaking MQTT packet by packet.
pub struct RawClient {
    stream: TcpStream,
    buffer: BytesMut,
    next_pkid: u16,
}

impl RawClient {
    /// Opens a connection and sends `connect`; the CONNACK is left for [`RawClient::next`].
    pub async fn open(port: u16, connect: Connect) -> io::Result<Self> {
        Self::open_from("127.0.0.1", port, connect).await
    }

    /// Opens a connection from the loopback address `source`.
    pub async fn open_from(source: &str, port: u16, connect: Connect) -> io::Result<Self> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(format!("{source}:0").parse().map_err(io::Error::other)?)?;
        let stream = socket.connect(([127, 0, 0, 1], port).into()).await?;
        stream.set_nodelay(true)?;
        let mut client = Self {
            stream,
            buffer: BytesMut::new(),
            next_pkid: 1,
        };
        client.send(&Packet::Connect(connect)).await?;
        Ok(client)
    }

    /// Opens a connection and waits for a successful CONNACK.
    pub async fn connect(port: u16, connect: Connect) -> Self {
        Self::connect_from("127.0.0.1", port, connect).await
    }

    /// Opens a connection from the loopback address `source` and waits for a CONNACK.
    pub async fn connect_from(source: &str, port: u16, connect: Connect) -> Self {
        let mut client = Self::open_from(source, port, connect)
            .await
            .expect("connected");
        match client.next().await {
            Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => client,
            other => panic!("expected a CONNACK, got {other:?}"),
        }
    }

    /// A clean-session CONNECT with `client_id` and a 30 s keep-alive.
    pub fn connect_packet(client_id: &str) -> Connect {
        let mut connect = Connect::new(client_id);
        connect.keep_alive = 30;
        connect
    }

    pub async fn send(&mut self, packet: &Packet) -> io::Result<()> {
        self.send_all(std::slice::from_ref(packet)).await
    }

    /// Sends `packets` in one write, as a client that pipelines them does.
    pub async fn send_all(&mut self, packets: &[Packet]) -> io::Result<()> {
        let mut bytes = BytesMut::new();
        for packet in packets {
            packet
                .write(&mut bytes, usize::MAX)
                .map_err(|e| io::Error::other(format!("{e:?}")))?;
        }
        self.stream.write_all(&bytes).await
    }

    /// The next packet from the server; `None` once it closed the connection. Panics
    /// after [`PATIENCE`].
    pub async fn next(&mut self) -> Option<Packet> {
        timeout(PATIENCE, self.read_packet())
            .await
            .expect("a packet or a close in time")
    }

    /// The next packet within `wait`: `Err(())` if none came (the connection is open and
    /// quiet), `Ok(None)` if the server closed it.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Packet>, ()> {
        timeout(wait, self.read_packet()).await.map_err(|_| ())
    }

    async fn read_packet(&mut self) -> Option<Packet> {
        read_packet(&mut self.stream, &mut self.buffer).await
    }

    /// Sends `packets` while reading all the server answers until it closes the connection
    /// (within [`PATIENCE`]), so no answer waits on a full window and is lost with the close:
    /// the first `burst` in one write, the rest at `per_second` (catching up when late),
    /// until all are sent or the server has closed.
    pub async fn flood_until_closed(
        &mut self,
        packets: &[Packet],
        burst: usize,
        per_second: f64,
    ) -> Vec<Packet> {
        let (mut reader, mut writer) = self.stream.split();
        let buffer = &mut self.buffer;
        let reading = async {
            let mut answers = Vec::new();
            while let Some(packet) = read_packet(&mut reader, buffer).await {
                answers.push(packet);
            }
            answers
        };
        let writing = async {
            let tick = Duration::from_millis(10);
            let per_tick = (per_second * tick.as_secs_f64()).round().max(1.0) as usize;
            let (first, rest) = packets.split_at(burst.min(packets.len()));
            let mut ticks = tokio::time::interval(tick);
            for chunk in std::iter::once(first).chain(rest.chunks(per_tick)) {
                ticks.tick().await;
                let mut bytes = BytesMut::new();
                for packet in chunk {
                    packet.write(&mut bytes, usize::MAX).expect("a packet");
                }
                if writer.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        };
        let flood = async {
            tokio::pin!(reading, writing);
            tokio::select! {
                answers = &mut reading => answers,
                () = &mut writing => reading.await,
            }
        };
        (timeout(PATIENCE, flood).await).expect("the connection closes in time")
    }

    /// Reads what the server sends within `wait`: the publishes among it, and whether the
    /// server closed the connection (if not, it was still open when `wait` ran out).
    pub async fn publishes_within(&mut self, wait: Duration) -> (Vec<Publish>, bool) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut publishes = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Ok(Some(Packet::Publish(publish))) => publishes.push(publish),
                Ok(Some(_)) => {}
                Ok(None) => return (publishes, true),
                Err(()) => return (publishes, false),
            }
        }
    }

    /// Reads until the server closes the connection, within `wait`; whether it did.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let closed = timeout(wait, async { while self.read_packet().await.is_some() {} });
        closed.await.is_ok()
    }

    /// Drops the connection with a TCP reset: no DISCONNECT, not even a FIN, as when a
    /// client's machine drops off the network and its stack answers with RST.
    pub fn reset(self) {
        self.stream.set_zero_linger().expect("SO_LINGER 0 set");
        drop(self);
    }

    pub fn pkid(&mut self) -> u16 {
        let pkid = self.next_pkid;
        self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
        pkid
    }

    /// Subscribes to `filters` (QoS 1) and returns the SUBACK's return codes, skipping
    /// other packets; `None` if the connection closed first.
    pub async fn subscribe(
        &mut self,
        filters: &[String],
    ) -> Option<Vec<rumqttc::mqttbytes::v4::SubscribeReasonCode>> {
        let mut subscribe =
            Subscribe::new_many(filters.iter().map(|f| {
                rumqttc::mqttbytes::v4::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce)
            }));
        subscribe.pkid = self.pkid();
        self.send(&Packet::Subscribe(subscribe)).await.ok()?;
        loop {
            match self.next().await? {
                Packet::SubAck(ack) => return Some(ack.return_codes),
                _ => continue,
            }
        }
    }

    pub async fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool) -> io::Result<()> {
        let mut publish = Publish::new(topic, QoS::AtMostOnce, payload);
        publish.retain = retain;
        self.send(&Packet::Publish(publish)).await
    }

    /// Registers `name` as the original client does (no identity proof); whether the server
    /// granted it. Other packets before the ack are skipped.
    pub async fn register(&mut self, name: &str, session: Option<&str>) -> bool {
        self.subscribe(&[incoming_topic(name)]).await;
        let register = SignalMessage::Register {
            from: name.to_owned(),
            username: name.to_owned(),
            session: session.map(str::to_owned),
            proof: None,
        };
        self.publish(REGISTER_TOPIC, encode(&register), false)
            .await
            .expect("register sent");
        loop {
            match self.next().await {
                Some(Packet::Publish(p)) => {
                    if let Ok(SignalMessage::RegisterAck { success, .. }) = decode(&p.payload) {
                        return success;
                    }
                }
                Some(_) => {}
                None => return false,
            }
        }
    }
}

/// The next whole packet read from `stream` into `buffer`; `None` once it closed (or sent
/// something that is not MQTT).
async fn read_packet(
    stream: &mut (impl AsyncRead + Unpin),
    buffer: &mut BytesMut,
) -> Option<Packet> {
    loop {
        match Packet::read(buffer, usize::MAX) {
            Ok(packet) => return Some(packet),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(_) => return None,
        }
        match stream.read_buf(buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}
