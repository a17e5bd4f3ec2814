//! Test support: runs the built `peerchat-server` on free loopback ports and drives it with
//! rumqttc clients over TCP or WebSocket.

use std::process::Stdio;
use std::time::Duration;

use peerchat_core::protocol::{
    MAX_MQTT_PACKET_BYTES, REGISTER_TOPIC, SignalMessage, decode, encode, incoming_topic,
};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, Publish, QoS, Transport};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Generous bound on every wait: the machine may be slow, and nothing here measures speed.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A running `peerchat-server` process, killed on drop.
pub struct TestServer {
    _process: Child,
    pub mqtt_port: u16,
    pub http_port: u16,
}

impl TestServer {
    /// Starts the binary on port 0 for both listeners and reads the real ports off stdout.
    pub async fn start() -> Self {
        let log =
            std::env::var("PEERCHAT_TEST_LOG").unwrap_or_else(|_| "warn,rumqttd=off".to_owned());
        let mut process = Command::new(env!("CARGO_BIN_EXE_peerchat-server"))
            .args(["--mqtt-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(["--log", &log])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the peerchat-server binary starts");
        let stdout = process.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let (mut mqtt_port, mut http_port) = (None, None);
        while mqtt_port.is_none() || http_port.is_none() {
            let line = timeout(PATIENCE, lines.next_line())
                .await
                .expect("the server announces its ports in time")
                .expect("stdout is readable")
                .expect("the server announces its ports before exiting");
            let port = |prefix: &str| {
                line.strip_prefix(prefix)
                    .and_then(|addr| addr.rsplit(':').next())
                    .map(|port| port.parse::<u16>().expect("a port number"))
            };
            mqtt_port = mqtt_port.or(port("peerchat-server: mqtt listening on "));
            http_port = http_port.or(port("peerchat-server: http listening on "));
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            _process: process,
            mqtt_port: mqtt_port.unwrap(),
            http_port: http_port.unwrap(),
        }
    }

    pub fn tcp_options(&self, client_id: &str) -> MqttOptions {
        options(MqttOptions::new(client_id, "127.0.0.1", self.mqtt_port))
    }

    pub fn ws_options(&self, client_id: &str) -> MqttOptions {
        let url = format!("ws://127.0.0.1:{}/mqtt", self.http_port);
        let mut options = options(MqttOptions::new(client_id, url, self.http_port));
        options.set_transport(Transport::Ws);
        options
    }
}

fn options(mut options: MqttOptions) -> MqttOptions {
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(MAX_MQTT_PACKET_BYTES, MAX_MQTT_PACKET_BYTES);
    options
}

/// What a test client sees.
#[derive(Debug)]
pub enum Seen {
    Packet(Packet),
    /// The connection ended (by either side); the client does not reconnect.
    Closed(String),
}

/// An MQTT client whose event loop runs in the background, without reconnecting.
pub struct TestClient {
    pub mqtt: AsyncClient,
    seen: mpsc::UnboundedReceiver<Seen>,
    event_loop: JoinHandle<()>,
}

impl TestClient {
    /// Connects and waits for the CONNACK.
    pub async fn connect(options: MqttOptions) -> Self {
        let (mqtt, mut event_loop) = AsyncClient::new(options, 64);
        let (tx, seen) = mpsc::unbounded_channel();
        let event_loop = tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(packet)) => {
                        if tx.send(Seen::Packet(packet)).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(error) => {
                        tx.send(Seen::Closed(error.to_string())).ok();
                        return;
                    }
                }
            }
        });
        let mut client = Self {
            mqtt,
            seen,
            event_loop,
        };
        client
            .wait_for(|p| matches!(p, Packet::ConnAck(_)).then_some(()))
            .await;
        client
    }

    /// Connects with a last will.
    pub async fn connect_with_will(mut options: MqttOptions, will: LastWill) -> Self {
        options.set_last_will(will);
        Self::connect(options).await
    }

    /// Waits for the first packet `want` picks, skipping others; panics on close or timeout.
    pub async fn wait_for<T>(&mut self, mut want: impl FnMut(&Packet) -> Option<T>) -> T {
        let found = timeout(PATIENCE, async {
            loop {
                match self.seen.recv().await {
                    Some(Seen::Packet(packet)) => {
                        if let Some(found) = want(&packet) {
                            return found;
                        }
                    }
                    Some(Seen::Closed(why)) => panic!("connection closed while waiting: {why}"),
                    None => panic!("event loop gone while waiting"),
                }
            }
        })
        .await;
        found.expect("the awaited packet arrives in time")
    }

    /// Waits for the next signaling message published on `topic`.
    pub async fn next_message_on(&mut self, topic: &str) -> (Publish, SignalMessage) {
        self.wait_for(|packet| match packet {
            Packet::Publish(publish) if publish.topic == topic => {
                let message = decode(&publish.payload).expect("a valid signaling message");
                Some((publish.clone(), message))
            }
            _ => None,
        })
        .await
    }

    /// Waits until the connection ends, skipping whatever arrives before.
    pub async fn wait_until_closed(&mut self) {
        timeout(PATIENCE, async {
            loop {
                match self.seen.recv().await {
                    Some(Seen::Packet(_)) => {}
                    Some(Seen::Closed(_)) | None => return,
                }
            }
        })
        .await
        .expect("the connection closes in time");
    }

    /// Subscribes and waits for the SUBACK, so later publishes by others are seen.
    pub async fn subscribe(&mut self, filter: &str) {
        self.mqtt
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
        self.wait_for(|p| matches!(p, Packet::SubAck(_)).then_some(()))
            .await;
    }

    /// Does what the original client does after CONNACK: subscribes to its incoming topic,
    /// publishes `register`, and returns the `register-ack`'s `(success, message)`.
    pub async fn register(&mut self, name: &str, session: Option<&str>) -> (bool, String) {
        self.subscribe(&incoming_topic(name)).await;
        let register = SignalMessage::Register {
            from: name.to_owned(),
            username: name.to_owned(),
            session: session.map(str::to_owned),
        };
        self.mqtt
            .publish(REGISTER_TOPIC, QoS::AtMostOnce, false, encode(&register))
            .await
            .expect("publish queued");
        self.wait_for(|packet| match packet {
            Packet::Publish(publish) if publish.topic == incoming_topic(name) => {
                match decode(&publish.payload) {
                    Ok(SignalMessage::RegisterAck {
                        from,
                        success,
                        message,
                    }) => {
                        assert_eq!(from, "server");
                        Some((success, message))
                    }
                    _ => None,
                }
            }
            _ => None,
        })
        .await
    }

    /// Closes the connection with an MQTT DISCONNECT and waits for the close.
    pub async fn disconnect(mut self) {
        self.mqtt.disconnect().await.expect("disconnect queued");
        self.wait_until_closed().await;
    }

    /// Drops the connection without a DISCONNECT, as a crashed client would.
    pub fn vanish(self) {
        self.event_loop.abort();
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.event_loop.abort();
    }
}
