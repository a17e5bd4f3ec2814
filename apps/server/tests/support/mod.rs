//! Test support: runs the built `peerchat-server` on free loopback ports, self-contained or
//! as a gateway of a NATS cluster ([`Target`]), and drives it with rumqttc clients over TCP
//! or WebSocket, and raw MQTT clients ([`raw`]).

// Each test binary uses part of this module.
#![allow(dead_code)]

pub mod raw;
pub mod websocket;

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use peerchat_core::identity::{Identity, signature_text};
use peerchat_core::protocol::{
    MAX_MQTT_PACKET_BYTES, REGISTER_TOPIC, RegisterProof, SignalMessage, decode, encode,
    incoming_topic, register_proof_bytes,
};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, Publish, QoS, Transport};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Generous bound on every wait: the machine may be slow, and nothing here measures speed.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Which kind of server a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One process that is the whole server.
    SelfContained,
    /// One `--cluster` gateway over a three-node NATS cluster (shared by the test binary;
    /// each server gets a namespace of its own there).
    ClusterGateway,
}

/// The NATS cluster of this test binary, started on first use.
fn shared_cluster() -> &'static peerchat_e2e::nats::NatsCluster {
    static CLUSTER: OnceLock<peerchat_e2e::nats::NatsCluster> = OnceLock::new();
    CLUSTER.get_or_init(peerchat_e2e::nats::NatsCluster::start)
}

/// A running `peerchat-server` process, killed on drop.
pub struct TestServer {
    process: Child,
    pub mqtt_port: u16,
    pub http_port: u16,
}

/// The server binary under test: this build's, or the one `PEERCHAT_SERVER_UNDER_TEST`
/// names (to show that a test fails against an older server).
pub fn server_binary() -> String {
    std::env::var("PEERCHAT_SERVER_UNDER_TEST")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_peerchat-server").to_owned())
}

impl TestServer {
    /// Starts the binary on port 0 for both listeners and reads the real ports off stdout.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Starts a server of kind `target` with extra flags.
    pub async fn start_on(target: Target, flags: &[&str]) -> Self {
        match target {
            Target::SelfContained => Self::start_with(flags).await,
            Target::ClusterGateway => {
                // Blocks this test's runtime while the cluster starts: nothing else runs on it yet.
                let cluster = shared_cluster();
                let namespace = peerchat_e2e::nats::fresh_namespace("attacks");
                let urls = cluster.urls();
                let mut all = vec!["--cluster", &urls, "--cluster-namespace", &namespace];
                all.extend_from_slice(flags);
                Self::start_with(&all).await
            }
        }
    }

    /// Starts the binary with extra flags.
    pub async fn start_with(flags: &[&str]) -> Self {
        let log = std::env::var("PEERCHAT_TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        let mut process = Command::new(server_binary())
            .args(["--mqtt-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(["--log", &log])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the peerchat-server binary starts");
        let stdout = process.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let (mut mqtt_port, mut http_port) = (None, None);
        while mqtt_port.is_none() || http_port.is_none() {
            // A gateway joins its cluster first (it may create the names bucket).
            let line = timeout(PATIENCE * 6, lines.next_line())
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
            process,
            mqtt_port: mqtt_port.unwrap(),
            http_port: http_port.unwrap(),
        }
    }

    /// The server's resident memory (VmRSS), in bytes.
    pub fn resident_bytes(&self) -> u64 {
        let pid = self.process.id().expect("the server runs");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("procfs");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status");
        kib * 1024
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
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
        self.packets_until_closed().await;
    }

    /// Waits until the connection ends, within [`PATIENCE`], and panics if anything was
    /// published to it first: all a refused connection is owed is its close (PROTOCOL.md: "A
    /// refused connection gets nothing more and is closed 1 s later").
    pub async fn wait_until_closed_hearing_nothing_more(&mut self) {
        let heard = self.packets_until_closed().await;
        let published: Vec<_> = (heard.iter())
            .filter(|packet| matches!(packet, Packet::Publish(_)))
            .collect();
        assert!(published.is_empty(), "sent before its close: {published:?}");
    }

    /// Every packet that arrives until the connection ends, within [`PATIENCE`].
    async fn packets_until_closed(&mut self) -> Vec<Packet> {
        let mut heard = Vec::new();
        timeout(PATIENCE, async {
            loop {
                match self.seen.recv().await {
                    Some(Seen::Packet(packet)) => heard.push(packet),
                    Some(Seen::Closed(_)) | None => return,
                }
            }
        })
        .await
        .expect("the connection closes in time");
        heard
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
        self.register_as(name, session, None).await
    }

    /// Registers as a peerchat client does: with `identity`'s proof over the server's
    /// challenge, when there is one.
    pub async fn register_as(
        &mut self,
        name: &str,
        session: Option<&str>,
        identity: Option<&Identity>,
    ) -> (bool, String) {
        let inbox = incoming_topic(name);
        self.mqtt
            .subscribe(&inbox, QoS::AtMostOnce)
            .await
            .expect("subscribe queued");
        // The challenge, if the server sends one, comes before the SUBACK.
        let mut challenge = None;
        self.wait_for(|packet| match packet {
            Packet::Publish(publish) if publish.topic == inbox => {
                if let Ok(SignalMessage::RegisterChallenge { nonce, .. }) = decode(&publish.payload)
                {
                    challenge = Some(nonce);
                }
                None
            }
            Packet::SubAck(_) => Some(()),
            _ => None,
        })
        .await;
        let proof = challenge.zip(identity).map(|(nonce, identity)| {
            let signed = register_proof_bytes(name, &nonce, session.unwrap_or_default());
            RegisterProof {
                key: identity.public().to_text(),
                sig: signature_text(&identity.sign(&signed)),
                nonce,
            }
        });
        let register = SignalMessage::Register {
            from: name.to_owned(),
            username: name.to_owned(),
            session: session.map(str::to_owned),
            proof,
        };
        self.mqtt
            .publish(REGISTER_TOPIC, QoS::AtMostOnce, false, encode(&register))
            .await
            .expect("publish queued");
        self.wait_for(|packet| match packet {
            Packet::Publish(publish) if publish.topic == inbox => match decode(&publish.payload) {
                Ok(SignalMessage::RegisterAck {
                    from,
                    success,
                    message,
                    ..
                }) => {
                    assert_eq!(from, "server");
                    Some((success, message))
                }
                _ => None,
            },
            _ => None,
        })
        .await
    }

    /// Whether the connection is still open: a subscription (to a presence record, which
    /// any client may watch) is answered.
    pub async fn is_open(&mut self) -> bool {
        let probe = "peerchat/presence/liveness-probe";
        if self.mqtt.subscribe(probe, QoS::AtMostOnce).await.is_err() {
            return false;
        }
        let answered = timeout(PATIENCE, async {
            loop {
                match self.seen.recv().await {
                    Some(Seen::Packet(Packet::SubAck(_))) => return true,
                    Some(Seen::Packet(_)) => {}
                    Some(Seen::Closed(_)) | None => return false,
                }
            }
        });
        answered.await.unwrap_or(false)
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
