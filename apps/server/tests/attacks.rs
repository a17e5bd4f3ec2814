//! peerchat-server against a hostile client: raw MQTT over TCP and WebSocket sending what a
//! real client never would. One test per way in (docs/security.md names this
//! suite as its proof); each fails against a server that lets the attack through
//! (`PEERCHAT_SERVER_UNDER_TEST=path/to/old/peerchat-server` runs the suite against another
//! build). Every attack runs twice: against a self-contained server, and against a gateway
//! of a three-node NATS cluster (`--cluster`; one cluster for the whole suite), whose rules
//! must hold the same.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use peerchat_core::identity::Identity;
use peerchat_core::protocol::{
    Presence, REGISTER_TOPIC, SdpKind, SessionDescription, SignalMessage, decode, encode,
    incoming_topic, presence_topic,
};
use rumqttc::mqttbytes::v4::{
    LastWill, Packet, PubAck, PubComp, PubRec, PubRel, Publish, SubscribeFilter,
    SubscribeReasonCode,
};
use rumqttc::{Packet as ClientPacket, QoS};
use support::raw::RawClient;
use support::{PATIENCE, Target, TestClient, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

const MIB: u64 = 1024 * 1024;

/// Runs each attack against both kinds of server: `self_contained::NAME` and
/// `cluster_gateway::NAME`.
macro_rules! against_every_server {
    ($($attack:ident),* $(,)?) => {
        mod self_contained {
            $(#[tokio::test]
            async fn $attack() {
                super::$attack(super::Target::SelfContained).await
            })*
        }
        mod cluster_gateway {
            $(#[tokio::test]
            async fn $attack() {
                super::$attack(super::Target::ClusterGateway).await
            })*
        }
    };
}

against_every_server!(
    fifty_thousand_subscriptions_leave_memory_bounded,
    nobody_reads_another_users_inbox,
    last_wills_never_publish_anything,
    a_registered_users_own_will_never_speaks,
    a_session_id_read_from_presence_takes_no_name,
    odd_client_ids_disconnect_nobody,
    nothing_is_retained_for_later_subscribers,
    a_connection_that_never_registers_is_cut,
    an_endless_keep_alive_is_held_to_the_maximum,
    connections_from_one_address_are_limited,
    pages_of_other_sites_cannot_open_websockets,
    every_contacts_presence_arrives_however_many_users,
    stray_acknowledgements_break_nothing,
    wildcard_subscriptions_read_nothing,
    a_flood_of_publishes_is_held_to_the_rate_then_cut,
    a_packet_over_the_size_limit_cuts_its_sender_alone,
    a_connection_speaks_in_one_name_only,
);

fn offer_from(from: &str) -> Vec<u8> {
    encode(&SignalMessage::SignalOffer {
        seal: None,
        from: from.to_owned(),
        offer: SessionDescription {
            kind: SdpKind::Offer,
            sdp: "v=0\r\n".to_owned(),
        },
        peerchat: None,
    })
}

/// `from`'s offer padded, in a field of a newer version (which receivers ignore), to exactly
/// `bytes` of JSON.
fn offer_of_length(from: &str, bytes: usize) -> Vec<u8> {
    let mut offer = offer_from(from);
    assert_eq!(offer.pop(), Some(b'}'));
    offer.extend_from_slice(br#","padding":""#);
    offer.resize(bytes - br#""}"#.len(), b'a');
    offer.extend_from_slice(br#""}"#);
    assert_eq!(offer.len(), bytes);
    offer
}

/// `from`'s offer published to `topic` at QoS 1 (packet id `pkid`), in a packet of exactly
/// `length` bytes as the server counts them: the remaining length (variable header and
/// payload), without the fixed header's 4 bytes.
fn offer_in_packet_of_length(from: &str, topic: &str, pkid: u16, length: usize) -> Publish {
    let variable_header = 2 + topic.len() + 2;
    let payload = offer_of_length(from, length - variable_header);
    let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload);
    publish.pkid = pkid;
    assert_eq!(publish.size(), 1 + 3 + length, "a 3-byte remaining length");
    publish
}

fn presence_record(user: &str, session: &str, online: bool) -> Vec<u8> {
    encode(&SignalMessage::Presence(Presence {
        from: user.to_owned(),
        session: session.to_owned(),
        online,
        since: None,
    }))
}

/// A peerchat client's registration: a key proof where the server asks for one, and the
/// retained presence record it publishes once online (which peerchat-server keeps itself).
async fn join(server: &TestServer, name: &str, session: &str) -> TestClient {
    let identity = Identity::from_seed(*blake_seed(name));
    let mut client = TestClient::connect(server.tcp_options(&format!("peerchat-{session}"))).await;
    let ack = client
        .register_as(name, Some(session), Some(&identity))
        .await;
    assert!(ack.0, "{name} could not register: {ack:?}");
    client
        .mqtt
        .publish(
            presence_topic(name),
            QoS::AtLeastOnce,
            true,
            presence_record(name, session, true),
        )
        .await
        .unwrap();
    client
}

/// A fixed seed per name, so a test's users keep their keys.
fn blake_seed(name: &str) -> Box<[u8; 32]> {
    let mut seed = [7u8; 32];
    for (i, byte) in name.bytes().enumerate() {
        seed[i % 32] ^= byte;
    }
    Box::new(seed)
}

/// Sends `from`'s offer to `to` through `sender`, then checks that `to` receives it: the
/// victim's connection is alive and its inbox works.
async fn still_reachable(sender: &TestClient, from: &str, to: &mut TestClient, to_name: &str) {
    send_offer(sender, from, to_name).await;
    let (_, message) = to.next_message_on(&incoming_topic(to_name)).await;
    assert_eq!(message.sender(), Some(from));
}

/// Sends `from`'s offer to `to_name`'s inbox through `sender`.
async fn send_offer(sender: &TestClient, from: &str, to_name: &str) {
    sender
        .mqtt
        .publish(
            incoming_topic(to_name),
            QoS::AtMostOnce,
            false,
            offer_from(from),
        )
        .await
        .unwrap();
}

/// Nothing arrives on `topic` for `client` within a second.
/// `client` watches dave's presence and reads his record: online, in his own session.
async fn sees_dave_online_as_himself(client: &mut TestClient) {
    client.subscribe(&presence_topic("dave")).await;
    let (_, record) = client.next_message_on(&presence_topic("dave")).await;
    assert!(
        matches!(record, SignalMessage::Presence(ref p) if p.online && p.session == "dave-run"),
        "{record:?}"
    );
}

async fn nothing_on(client: &mut TestClient, topic: &str) {
    let seen = timeout(Duration::from_secs(1), client.next_message_on(topic)).await;
    assert!(seen.is_err(), "something arrived on {topic}: {seen:?}");
}

/// Attack 1: Subscriptions cannot exhaust the server's memory: 50,000 subscribe attempts (the
/// connection is cut once it asks for too much; the attacker comes back) leave the server
/// under 64 MiB, and near where it started once the attacker is gone.
async fn fifty_thousand_subscriptions_leave_memory_bounded(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let start = server.resident_bytes();
    let (mut attempts, mut peak, mut connections) = (0usize, start, 0);
    while attempts < 50_000 {
        let mut attacker =
            RawClient::connect(server.mqtt_port, RawClient::connect_packet("attacker")).await;
        connections += 1;
        loop {
            let filters: Vec<String> = (attempts..attempts + 100)
                .map(|i| format!("peerchat/presence/fake-{i}"))
                .collect();
            attempts += filters.len();
            let answered = attacker.subscribe(&filters).await;
            if attempts % 5_000 == 0 {
                peak = peak.max(server.resident_bytes());
            }
            if answered.is_none() || attempts >= 50_000 {
                break;
            }
        }
    }
    peak = peak.max(server.resident_bytes());
    sleep(Duration::from_secs(1)).await;
    let after = server.resident_bytes();
    println!(
        "50,000 subscribe attempts over {connections} connections: resident {:.1} MiB at \
         start, {:.1} MiB at most, {:.1} MiB after",
        start as f64 / MIB as f64,
        peak as f64 / MIB as f64,
        after as f64 / MIB as f64
    );
    assert!(peak < 64 * MIB, "peak resident memory {peak} bytes");
    assert!(
        after < start + 16 * MIB,
        "{after} bytes after, {start} at start"
    );
}

/// Attack 2: Nobody reads another user's inbox: not an unregistered connection that subscribes to
/// it first, not a registered user of another name.
async fn nobody_reads_another_users_inbox(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let mut bob = join(&server, "bob", "bob-run").await;
    let mut lurker = TestClient::connect(server.tcp_options("lurker")).await;
    lurker.subscribe(&incoming_topic("bob")).await;
    let mut mallory = join(&server, "mallory", "mallory-run").await;
    mallory
        .mqtt
        .subscribe(incoming_topic("bob"), QoS::AtMostOnce)
        .await
        .unwrap();
    let codes = mallory
        .wait_for(|p| match p {
            ClientPacket::SubAck(ack) => Some(ack.return_codes.clone()),
            _ => None,
        })
        .await;
    assert_eq!(codes, [rumqttc::SubscribeReasonCode::Failure]);

    let alice = join(&server, "alice", "alice-run").await;
    still_reachable(&alice, "alice", &mut bob, "bob").await;
    nothing_on(&mut lurker, &incoming_topic("bob")).await;
    nothing_on(&mut mallory, &incoming_topic("bob")).await;
}

/// Attack 3: A last will never speaks: not after a bogus acknowledgement makes a broker drop the
/// connection, not after keep-alive lapses, not after a plain close.
async fn last_wills_never_publish_anything(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let mut bob = join(&server, "bob", "bob-run").await;
    bob.subscribe(&presence_topic("bob")).await;
    // The record bob's watchers get when they start watching.
    bob.next_message_on(&presence_topic("bob")).await;

    let wills = [
        LastWill::new(
            incoming_topic("bob"),
            offer_from("alice"),
            QoS::AtLeastOnce,
            true,
        ),
        LastWill::new(
            presence_topic("bob"),
            presence_record("bob", "forged", false),
            QoS::AtLeastOnce,
            true,
        ),
    ];
    for (n, will) in wills.into_iter().enumerate() {
        // A bogus PUBACK, for a packet id the server never used.
        let mut connect = RawClient::connect_packet("attacker-ack");
        connect.last_will = Some(will.clone());
        let mut bogus = RawClient::connect(server.mqtt_port, connect).await;
        bogus
            .send(&Packet::PubAck(PubAck::new(4242)))
            .await
            .unwrap();
        // Keep-alive left to lapse.
        let mut connect = RawClient::connect_packet("attacker-silent");
        connect.keep_alive = 1;
        connect.last_will = Some(will.clone());
        let mut silent = RawClient::connect(server.mqtt_port, connect).await;
        assert!(
            silent.closed_within(PATIENCE).await,
            "a silent client is cut"
        );
        // And a registered client that just drops its socket.
        let mut connect = RawClient::connect_packet("attacker-gone");
        connect.last_will = Some(will);
        let mut gone = RawClient::connect(server.mqtt_port, connect).await;
        assert!(gone.register(&format!("mallory{n}"), None).await);
        drop(gone);
        drop(bogus);
    }
    nothing_on(&mut bob, &incoming_topic("bob")).await;
    // Bob's watchers still see him online, and so does a newcomer.
    let seen = timeout(
        Duration::from_secs(1),
        bob.next_message_on(&presence_topic("bob")),
    )
    .await;
    if let Ok((_, record)) = seen {
        panic!("bob's presence changed: {record:?}");
    }
    let mut newcomer = join(&server, "carol", "carol-run").await;
    newcomer.subscribe(&presence_topic("bob")).await;
    let (_, record) = newcomer.next_message_on(&presence_topic("bob")).await;
    let SignalMessage::Presence(presence) = record else {
        panic!("{record:?}");
    };
    assert!(presence.online, "bob is shown offline");
    assert_eq!(presence.session, "bob-run");
}

/// How a registered attacker's connection ends, never with a DISCONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaving {
    /// The socket is dropped with a TCP reset.
    Reset,
    /// The socket is closed (FIN), without a DISCONNECT.
    Closed,
    /// The client goes silent and the server cuts it past its keep-alive.
    Silent,
    /// A second connection of the same run and key takes the name over (the server closes
    /// the first); then that one vanishes too.
    TakenOver,
    /// A second connection with the same client id (no clean session) comes; both vanish.
    SameClientId,
    /// Over WebSocket, the connection dropped.
    WebSocket,
}

impl Leaving {
    const ALL: [Self; 6] = [
        Self::Reset,
        Self::Closed,
        Self::Silent,
        Self::TakenOver,
        Self::SameClientId,
        Self::WebSocket,
    ];
}

/// Connects `name` with `will`, registers it and makes it leave `how`. A client cut for
/// silence is kept in `held` (still open on its side) until the server has cut it.
async fn register_and_leave(
    server: &TestServer,
    how: Leaving,
    name: &str,
    will: LastWill,
    held: &mut Vec<RawClient>,
) {
    let session = format!("{name}-run");
    let client_id = format!("peerchat-{session}");
    let identity = Identity::from_seed(*blake_seed(name));
    let mut connect = RawClient::connect_packet(&client_id);
    connect.last_will = Some(will.clone());
    if how == Leaving::Silent {
        connect.keep_alive = 2;
    }
    match how {
        Leaving::Reset | Leaving::Closed | Leaving::Silent | Leaving::SameClientId => {
            let mut attacker = RawClient::connect(server.mqtt_port, connect.clone()).await;
            assert!(attacker.register(name, Some(&session)).await, "{name}");
            match how {
                Leaving::Reset => attacker.reset(),
                Leaving::Silent => held.push(attacker),
                Leaving::SameClientId => {
                    connect.clean_session = false;
                    let second = RawClient::connect(server.mqtt_port, connect).await;
                    drop(attacker);
                    drop(second);
                }
                _ => drop(attacker),
            }
        }
        Leaving::TakenOver => {
            let options = server.tcp_options(&client_id);
            let mut stale = TestClient::connect_with_will(options.clone(), will.clone()).await;
            let ack = (stale.register_as(name, Some(&session), Some(&identity))).await;
            assert!(ack.0, "{name}: {ack:?}");
            let mut fresh = TestClient::connect_with_will(options, will).await;
            let ack = (fresh.register_as(name, Some(&session), Some(&identity))).await;
            assert!(ack.0, "{name} taken over: {ack:?}");
            stale.wait_until_closed().await;
            fresh.vanish();
        }
        Leaving::WebSocket => {
            let options = server.ws_options(&client_id);
            let mut attacker = TestClient::connect_with_will(options, will).await;
            let ack = (attacker.register_as(name, Some(&session), Some(&identity))).await;
            assert!(ack.0, "{name}: {ack:?}");
            attacker.vanish();
        }
    }
}

/// What a watcher hears while attackers come and go.
#[derive(Debug)]
enum Heard {
    /// Anything on the watcher's own inbox.
    Inbox(Publish),
    Presence(Presence),
    /// A publish that is neither.
    Other(Publish),
    SubAck,
}

async fn next_heard(client: &mut TestClient, inbox: &str) -> Heard {
    client
        .wait_for(|packet| match packet {
            ClientPacket::Publish(p) if p.topic == inbox => Some(Heard::Inbox(p.clone())),
            ClientPacket::Publish(p) => Some(match decode(&p.payload) {
                Ok(SignalMessage::Presence(presence)) => Heard::Presence(presence),
                _ => Heard::Other(p.clone()),
            }),
            ClientPacket::SubAck(_) => Some(Heard::SubAck),
            _ => None,
        })
        .await
}

/// Where an attacker is, as its watcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Not gone yet: its records (offline before it came, online while registered) are fine.
    Here,
    /// Its connection ended; the server's offline record is awaited.
    Leaving,
    /// The server said it is offline: nothing more may come for it.
    Gone,
}

/// Judges one thing bob heard; panics at anything a will could have said.
fn judge(heard: Heard, stages: &mut BTreeMap<String, Stage>) {
    match heard {
        Heard::Inbox(p) => panic!("a will spoke on bob's inbox: {:?}", decode(&p.payload)),
        Heard::Other(p) => panic!("bob was sent {p:?}"),
        Heard::SubAck => {}
        Heard::Presence(p) => {
            assert_ne!(p.session, "forged", "a will spoke for {}: {p:?}", p.from);
            match stages.get_mut(&p.from) {
                Some(stage @ Stage::Leaving) if !p.online => *stage = Stage::Gone,
                Some(Stage::Gone) if p.online => panic!("{} back online after leaving", p.from),
                _ => {}
            }
        }
    }
}

/// Attack 3b: A registered user's will in its OWN name never speaks either: not one to
/// another user's inbox (a message the user could have sent, so the sender check cannot stop
/// it), not one on its own presence record (online, once the server says it left); at every
/// QoS, retained or not, however its connection ends without a DISCONNECT. Bob watches every
/// attacker's presence, so the server's offline record shows when each end was handled (when
/// a broker publishes the will); nothing may come after, nor be kept for a later subscriber.
async fn a_registered_users_own_will_never_speaks(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let mut bob = join(&server, "bob", "bob-run").await;
    let inbox = incoming_topic("bob");
    // What the inbox wills carry reaches bob when sent: a will that spoke would be seen.
    let control = join(&server, "control", "control-run").await;
    still_reachable(&control, "control", &mut bob, "bob").await;

    let mut wills: Vec<(Leaving, String, LastWill)> = Vec::new();
    for how in Leaving::ALL {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            for retain in [false, true] {
                for on_presence in [false, true] {
                    let name = format!(
                        "{how:?}-q{}-{}-{}",
                        qos as u8,
                        if retain { "retained" } else { "once" },
                        if on_presence { "presence" } else { "inbox" },
                    );
                    let will = if on_presence {
                        let record = presence_record(&name, "forged", true);
                        LastWill::new(presence_topic(&name), record, qos, retain)
                    } else {
                        LastWill::new(incoming_topic("bob"), offer_from(&name), qos, retain)
                    };
                    wills.push((how, name, will));
                }
            }
        }
    }
    let mut stages: BTreeMap<String, Stage> = (wills.iter())
        .map(|(_, name, _)| (name.clone(), Stage::Here))
        .collect();
    let filters = (wills.iter())
        .map(|(_, name, _)| SubscribeFilter::new(presence_topic(name), QoS::AtMostOnce));
    bob.mqtt.subscribe_many(filters).await.unwrap();
    // The SUBACK and a first (offline) record for each, in whatever order.
    let (mut subscribed, mut first_records) = (false, BTreeSet::new());
    while !subscribed || first_records.len() < stages.len() {
        match next_heard(&mut bob, &inbox).await {
            Heard::SubAck => subscribed = true,
            Heard::Presence(p) if !p.online && stages.contains_key(&p.from) => {
                first_records.insert(p.from);
            }
            other => judge(other, &mut stages),
        }
    }

    for how in Leaving::ALL {
        let mut held = Vec::new();
        let batch: Vec<_> = wills.iter().filter(|(way, ..)| *way == how).collect();
        for (_, name, will) in &batch {
            register_and_leave(&server, how, name, will.clone(), &mut held).await;
        }
        for (_, name, _) in &batch {
            stages.insert(name.clone(), Stage::Leaving);
        }
        while stages.values().any(|s| *s == Stage::Leaving) {
            let heard = next_heard(&mut bob, &inbox).await;
            judge(heard, &mut stages);
        }
        for mut silent in held {
            assert!(
                silent.closed_within(PATIENCE).await,
                "a silent client is cut"
            );
        }
    }
    // Every end was handled; a will published late would come now.
    let late = timeout(Duration::from_secs(3), async {
        loop {
            let heard = next_heard(&mut bob, &inbox).await;
            judge(heard, &mut stages);
        }
    });
    assert!(late.await.is_err());

    // Nothing was kept: bob subscribing again, and a newcomer watching, get only the truth.
    bob.mqtt.unsubscribe(&inbox).await.unwrap();
    bob.subscribe(&inbox).await;
    nothing_on(&mut bob, &inbox).await;
    let mut newcomer = join(&server, "newcomer", "newcomer-run").await;
    let filters = (wills.iter())
        .map(|(_, name, _)| SubscribeFilter::new(presence_topic(name), QoS::AtMostOnce));
    newcomer.mqtt.subscribe_many(filters).await.unwrap();
    let mut offline = BTreeSet::new();
    while offline.len() < wills.len() {
        match next_heard(&mut newcomer, &incoming_topic("newcomer")).await {
            Heard::Presence(p) if stages.contains_key(&p.from) => {
                assert!(!p.online && p.session.is_empty(), "a kept will: {p:?}");
                offline.insert(p.from);
            }
            Heard::SubAck => {}
            other => panic!("the newcomer was sent {other:?}"),
        }
    }
    // And bob's inbox still works.
    still_reachable(&control, "control", &mut bob, "bob").await;
}

/// Attack 4: A live name is not taken over with its (public) session id: the attacker reads dave's
/// run from his presence record and registers his name with it.
async fn a_session_id_read_from_presence_takes_no_name(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let mut dave = join(&server, "dave", "dave-run").await;
    let mut attacker = TestClient::connect(server.tcp_options("attacker")).await;
    attacker.subscribe(&presence_topic("dave")).await;
    let (_, record) = attacker.next_message_on(&presence_topic("dave")).await;
    let SignalMessage::Presence(presence) = record else {
        panic!("{record:?}");
    };
    assert_eq!(presence.session, "dave-run", "the session is public");
    drop(attacker);

    let alice = join(&server, "alice", "alice-run").await;
    let mallory = Identity::from_seed([66; 32]);
    for key in [None, Some(&mallory)] {
        let mut attacker = TestClient::connect(server.tcp_options("attacker")).await;
        let (granted, _) = attacker
            .register_as("dave", Some(&presence.session), key)
            .await;
        assert!(!granted, "dave's name was handed over");
        // While the refused attacker (subscribed to dave's inbox) waits for its close, dave is
        // sent a message: it reaches dave alone.
        send_offer(&alice, "alice", "dave").await;
        attacker.wait_until_closed_hearing_nothing_more().await;
        let (_, message) = dave.next_message_on(&incoming_topic("dave")).await;
        assert_eq!(message.sender(), Some("alice"));
    }
    still_reachable(&alice, "alice", &mut dave, "dave").await;
}

/// Attack 5: No client id, whatever its shape (the server's own naming, the victim's, wildcards,
/// empty, 64 KiB long, persistent sessions), disconnects anyone.
async fn odd_client_ids_disconnect_nobody(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let mut victim = join(&server, "victim", "victim-run").await;
    let mut ids: Vec<String> = (0..40).map(|n| format!("peerchat-gw-{n}")).collect();
    ids.extend(["peerchat-victim-run", "victim", "", "#", "+", "$SYS", "a/b"].map(String::from));
    // As long as MQTT lets a string be, and long in characters outside ASCII.
    ids.extend(["x".repeat(usize::from(u16::MAX)), "é".repeat(30_000)]);
    for id in &ids {
        for clean in [true, false] {
            let mut connect = RawClient::connect_packet(id);
            connect.clean_session = clean;
            if let Ok(mut attacker) = RawClient::open(server.mqtt_port, connect).await {
                attacker.next().await;
            }
        }
    }
    let alice = join(&server, "alice", "alice-run").await;
    still_reachable(&alice, "alice", &mut victim, "victim").await;
}

/// Attack 6a: Nothing is retained for later: not a registered user's retained message to an
/// inbox, not another user's presence record.
async fn nothing_is_retained_for_later_subscribers(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let mut mallory = RawClient::connect(server.mqtt_port, RawClient::connect_packet("m")).await;
    assert!(mallory.register("mallory", None).await);
    for _ in 0..50 {
        mallory
            .publish(&incoming_topic("carol"), offer_from("mallory"), true)
            .await
            .unwrap();
        mallory
            .publish(
                &presence_topic("carol"),
                presence_record("carol", "fake", true),
                true,
            )
            .await
            .unwrap();
    }
    sleep(Duration::from_millis(300)).await;
    let mut carol = join(&server, "carol", "carol-run").await;
    // Subscribed again once registered, so a retained message would come now.
    carol
        .mqtt
        .unsubscribe(incoming_topic("carol"))
        .await
        .unwrap();
    carol.subscribe(&incoming_topic("carol")).await;
    nothing_on(&mut carol, &incoming_topic("carol")).await;
    let mut watcher = join(&server, "watcher", "watcher-run").await;
    watcher.subscribe(&presence_topic("nobody")).await;
    let (_, record) = watcher.next_message_on(&presence_topic("nobody")).await;
    assert!(
        matches!(record, SignalMessage::Presence(ref p) if !p.online),
        "a record for a user who never came: {record:?}"
    );
}

/// Attack 6b: A connection that never registers is not kept.
async fn a_connection_that_never_registers_is_cut(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let mut idle = RawClient::connect(server.mqtt_port, RawClient::connect_packet("idle")).await;
    assert!(idle.closed_within(Duration::from_secs(20)).await);
}

/// Attack 6c: A keep-alive above the server's maximum (or none at all) does not let a silent
/// client stay.
async fn an_endless_keep_alive_is_held_to_the_maximum(target: Target) {
    let server = TestServer::start_on(target, &["--max-keep-alive", "2"]).await;
    for keep_alive in [u16::MAX, 0] {
        let mut connect = RawClient::connect_packet("sleepy");
        connect.keep_alive = keep_alive;
        let mut sleepy = RawClient::connect(server.mqtt_port, connect).await;
        assert!(sleepy.register(&format!("sleepy{keep_alive}"), None).await);
        let started = Instant::now();
        assert!(
            sleepy.closed_within(PATIENCE).await,
            "keep-alive {keep_alive}"
        );
        println!(
            "keep-alive {keep_alive} s asked: cut after {:?} of silence",
            started.elapsed()
        );
    }
}

/// Attack 6d: One address gets a bounded number of connections at once.
async fn connections_from_one_address_are_limited(target: Target) {
    let server = TestServer::start_on(target, &["--max-connections-per-address", "4"]).await;
    let mut held = Vec::new();
    for n in 0..4 {
        held.push(
            RawClient::connect(server.mqtt_port, RawClient::connect_packet(&n.to_string())).await,
        );
    }
    let mut extra = RawClient::open(server.mqtt_port, RawClient::connect_packet("extra"))
        .await
        .expect("the TCP connection is accepted");
    assert!(extra.next().await.is_none(), "a fifth connection is closed");
    // Once one goes, a new one is let in (as soon as the server noticed the close).
    held.pop();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut again = RawClient::open(server.mqtt_port, RawClient::connect_packet("again"))
            .await
            .unwrap();
        if let Some(Packet::ConnAck(_)) = again.next().await {
            assert!(again.register("again", None).await);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection let in after one closed"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// Attack 6e: Pages of other sites cannot open MQTT over WebSocket; the server's own pages and
/// native clients (no `Origin`) can.
async fn pages_of_other_sites_cannot_open_websockets(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let status = |origin: Option<&'static str>| {
        let port = server.http_port;
        async move {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let origin = origin
                .map(|o| format!("Origin: {o}\r\n"))
                .unwrap_or_default();
            let request = format!(
                "GET /mqtt HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n{origin}\r\n"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut head = vec![0u8; 12];
            timeout(PATIENCE, stream.read_exact(&mut head))
                .await
                .unwrap()
                .unwrap();
            String::from_utf8_lossy(&head[9..12]).into_owned()
        }
    };
    assert_eq!(status(Some("https://evil.example")).await, "403");
    assert_eq!(status(Some("null")).await, "403");
    assert_eq!(status(Some("http://localhost:8080")).await, "101");
    assert_eq!(status(None).await, "101");
}

/// Attack 7: A newcomer learns the presence of every contact, however many users the server has
/// seen, and fake records cannot hide a real one: presence is watched per contact by exact
/// name, and what the server says is its registry.
async fn every_contacts_presence_arrives_however_many_users(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    const USERS: usize = 300;
    let mut users = Vec::new();
    for n in 0..USERS {
        let name = format!("user{n}");
        // Spread over a few loopback addresses, as users are over the Internet.
        let source = format!("127.0.1.{}", n % 4 + 1);
        let mut user =
            RawClient::connect_from(&source, server.mqtt_port, RawClient::connect_packet(&name))
                .await;
        assert!(user.register(&name, Some(&format!("run{n}"))).await);
        user.publish(
            &presence_topic(&name),
            presence_record(&name, &format!("run{n}"), true),
            true,
        )
        .await
        .unwrap();
        users.push(user);
    }
    sleep(Duration::from_millis(500)).await;
    let mut newcomer = RawClient::connect(server.mqtt_port, RawClient::connect_packet("new")).await;
    assert!(newcomer.register("newcomer", None).await);
    let contacts: Vec<String> = (0..USERS)
        .map(|n| presence_topic(&format!("user{n}")))
        .collect();
    let codes = newcomer.subscribe(&contacts).await.expect("subscribed");
    assert!(codes.iter().all(|c| *c != SubscribeReasonCode::Failure));
    let mut online = std::collections::BTreeSet::new();
    while online.len() < USERS {
        match newcomer.next_within(Duration::from_secs(3)).await {
            Ok(Some(Packet::Publish(publish))) => {
                if let Ok(SignalMessage::Presence(p)) = decode(&publish.payload)
                    && p.online
                {
                    online.insert(p.from);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(()) => break,
        }
    }
    assert_eq!(
        online.len(),
        USERS,
        "{} of {USERS} contacts seen online",
        online.len()
    );
}

/// Reads what `client` is sent for `wait`: no publish at all may come (it reads nobody's
/// inbox); a close is no leak.
async fn hears_no_publish(client: &mut RawClient, who: &str, wait: Duration) {
    let (publishes, _) = client.publishes_within(wait).await;
    assert!(publishes.is_empty(), "{who} was sent {publishes:?}");
}

/// The server closes `client`'s connection within [`PATIENCE`], having sent it no publish
/// first.
async fn closed_hearing_nothing_more(client: &mut RawClient, who: &str) {
    let (publishes, closed) = client.publishes_within(PATIENCE).await;
    assert!(publishes.is_empty(), "{who} was sent {publishes:?}");
    assert!(closed, "{who} was not closed");
}

/// Attack 8: Acknowledgements of packets the server never sent (PUBACK, PUBREC, PUBCOMP for
/// ids it never used) are answered with nothing, a PUBREL for a publish never received only
/// with its PUBCOMP (as MQTT requires), and none of them upsets the attacker's own QoS 2
/// flow (delivered exactly once), reaches anyone else, or stops the server serving.
async fn stray_acknowledgements_break_nothing(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let mut bob = join(&server, "bob", "bob-run").await;
    let connect = RawClient::connect_packet("peerchat-mallory-run");
    let mut mallory = RawClient::connect(server.mqtt_port, connect).await;
    assert!(mallory.register("mallory", Some("mallory-run")).await);
    for pkid in [1, 7, 4242, u16::MAX] {
        let stray = [
            Packet::PubAck(PubAck::new(pkid)),
            Packet::PubRec(PubRec::new(pkid)),
            Packet::PubComp(PubComp::new(pkid)),
        ];
        mallory.send_all(&stray).await.unwrap();
    }
    mallory.send(&Packet::PubRel(PubRel::new(7))).await.unwrap();
    // Packets are answered in order: anything said to the strays would come first.
    assert_eq!(mallory.next().await, Some(Packet::PubComp(PubComp::new(7))));

    // Its own QoS 2 publish, with the id just released out of turn, and sent twice.
    let mut publish = Publish::new(
        incoming_topic("bob"),
        QoS::ExactlyOnce,
        offer_from("mallory"),
    );
    publish.pkid = 7;
    mallory
        .send(&Packet::Publish(publish.clone()))
        .await
        .unwrap();
    assert_eq!(mallory.next().await, Some(Packet::PubRec(PubRec::new(7))));
    publish.dup = true;
    mallory.send(&Packet::Publish(publish)).await.unwrap();
    assert_eq!(mallory.next().await, Some(Packet::PubRec(PubRec::new(7))));
    mallory.send(&Packet::PubRel(PubRel::new(7))).await.unwrap();
    assert_eq!(mallory.next().await, Some(Packet::PubComp(PubComp::new(7))));
    let (_, message) = bob.next_message_on(&incoming_topic("bob")).await;
    assert_eq!(message.sender(), Some("mallory"));
    nothing_on(&mut bob, &incoming_topic("bob")).await;

    // Everyone is still served, the attacker included, and it hears nothing of others'.
    let alice = join(&server, "alice", "alice-run").await;
    still_reachable(&alice, "alice", &mut bob, "bob").await;
    mallory.send(&Packet::PingReq).await.unwrap();
    assert_eq!(mallory.next().await, Some(Packet::PingResp));
    hears_no_publish(&mut mallory, "mallory", Duration::from_secs(1)).await;
}

/// Attack 9: Wildcards read nothing: `#`, `+/incoming`, `bob/#`, `peerchat/presence/+` and
/// the like are refused, whether the subscriber registered first or not (an unregistered
/// connection's first inbox is held for it), and what bob is sent reaches bob alone.
async fn wildcard_subscriptions_read_nothing(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let mut bob = join(&server, "bob", "bob-run").await;
    let filters: Vec<String> = [
        "#",
        "+",
        "+/incoming",
        "+/+",
        "+/#",
        "bob/#",
        "bob/+",
        "bob/incoming/#",
        "/#",
        "peerchat/#",
        "peerchat/presence/#",
        "peerchat/presence/+",
        "system/#",
        "$SYS/#",
    ]
    .map(String::from)
    .into();
    let mut lurkers = Vec::new();
    for (n, filter) in filters.iter().enumerate() {
        let connect = RawClient::connect_packet(&format!("lurker-{n}"));
        let mut lurker = RawClient::connect(server.mqtt_port, connect).await;
        let codes = lurker.subscribe(std::slice::from_ref(filter)).await;
        assert_eq!(codes, Some(vec![SubscribeReasonCode::Failure]), "{filter}");
        lurkers.push(lurker);
    }
    let connect = RawClient::connect_packet("peerchat-mallory-run");
    let mut mallory = RawClient::connect(server.mqtt_port, connect).await;
    assert!(mallory.register("mallory", Some("mallory-run")).await);
    let codes = mallory.subscribe(&filters).await.expect("answered");
    assert_eq!(codes, vec![SubscribeReasonCode::Failure; filters.len()]);

    let alice = join(&server, "alice", "alice-run").await;
    still_reachable(&alice, "alice", &mut bob, "bob").await;
    hears_no_publish(&mut mallory, "mallory", Duration::from_secs(1)).await;
    for (lurker, filter) in lurkers.iter_mut().zip(&filters) {
        hears_no_publish(lurker, filter, Duration::from_millis(100)).await;
    }
}

/// Attack 10: A flood of publishes is held to the rate limit, then cut (PROTOCOL.md: "At most
/// 200 publishes a second on average (bursts of 400)"; a connection "that is refused more than
/// 100 times, is closed"), and nobody else's signaling is held up. Mallory, after a quiet
/// spell, sends a burst of 400 publishes in one write, then more at twice the rate until she
/// is cut: her own `register` again, at QoS 1, the one publish whose acceptance she is told
/// (the same `register-ack` each time) and which costs the server no more than reading it,
/// so a gateway keeps up with the flood as well as a single server. The server acknowledges
/// each publish it reads (a refused one too, as a broker would) and answers each it takes,
/// in order: an acknowledgement with no answer behind it is a refusal.
async fn a_flood_of_publishes_is_held_to_the_rate_then_cut(target: Target) {
    const RATE: f64 = 200.0;
    const BURST: usize = 400;
    const REFUSALS: usize = 100;
    // Five seconds' worth at twice the rate after the burst, far more than she gets to send.
    const FLOOD: usize = BURST + 2 * 5 * RATE as usize;
    let server = TestServer::start_on(target, &[]).await;
    let mut bob = join(&server, "bob", "bob-run").await;
    let alice = join(&server, "alice", "alice-run").await;
    let connect = RawClient::connect_packet("peerchat-mallory-run");
    let mut mallory = RawClient::connect(server.mqtt_port, connect).await;
    assert!(mallory.register("mallory", Some("mallory-run")).await);
    // Her register took one publish of the burst; a quiet spell gives it back.
    sleep(Duration::from_millis(500)).await;
    let again = encode(&SignalMessage::Register {
        from: "mallory".to_owned(),
        username: "mallory".to_owned(),
        session: Some("mallory-run".to_owned()),
        proof: None,
    });
    let flood: Vec<Packet> = (0..FLOOD)
        .map(|_| {
            let mut publish = Publish::new(REGISTER_TOPIC, QoS::AtLeastOnce, again.clone());
            publish.pkid = mallory.pkid();
            Packet::Publish(publish)
        })
        .collect();
    let started = Instant::now();
    let flooding = async {
        let answers = mallory.flood_until_closed(&flood, BURST, 2.0 * RATE).await;
        (answers, started.elapsed().as_secs_f64())
    };
    // Meanwhile alice's offer reaches bob.
    let ((answers, elapsed), ()) =
        tokio::join!(flooding, still_reachable(&alice, "alice", &mut bob, "bob"),);
    // Whether each publish she got to send was taken, in order.
    let mut taken: Vec<bool> = Vec::new();
    for packet in answers {
        match packet {
            Packet::PubAck(_) => taken.push(false),
            Packet::Publish(publish) => match decode(&publish.payload) {
                Ok(SignalMessage::RegisterAck { success: true, .. }) => {
                    let last = taken
                        .last_mut()
                        .expect("an answer after its acknowledgement");
                    assert!(!*last, "two answers to one publish");
                    *last = true;
                }
                other => panic!("mallory was sent {other:?}"),
            },
            other => panic!("mallory was sent {other:?}"),
        }
    }
    let answered = taken.iter().filter(|t| **t).count();
    let refused = taken.len() - answered;
    println!("a flood of publishes: {answered} taken, {refused} refused, cut after {elapsed:.2} s");
    assert!(taken.len() >= BURST, "cut after {} publishes", taken.len());
    assert!(
        taken[..BURST].iter().all(|t| *t),
        "a burst of {BURST} sent at once is not taken whole"
    );
    // Never more than the burst and what came back while the flood lasted.
    let allowance = BURST as f64 + RATE * elapsed + 1.0;
    assert!(
        answered as f64 <= allowance,
        "{answered} taken in {elapsed:.2} s"
    );
    assert_eq!(
        refused,
        REFUSALS + 1,
        "cut at the first refusal past {REFUSALS}"
    );
    assert!(!taken[taken.len() - 1], "cut after a publish it took");
    // Bob was sent nothing of hers, and his inbox still works.
    still_reachable(&alice, "alice", &mut bob, "bob").await;
}

/// Attack 11: The packet limit (PROTOCOL.md: "MQTT packet | 128 KiB | the connection is
/// refused (server)"), counted as the server counts it: the packet's remaining length
/// (variable header and payload; the fixed header's bytes are not counted). A packet of
/// 128 KiB + 1 byte closes its sender's connection and nobody else's. One of exactly 128 KiB
/// is read and answered, and its sender stays; being signaling over the 64 KiB bound
/// ("signaling JSON message | 64 KiB") it reaches nobody, while a message of exactly 64 KiB
/// crosses whole.
async fn a_packet_over_the_size_limit_cuts_its_sender_alone(target: Target) {
    const PACKET_LIMIT: usize = 128 * 1024;
    const SIGNALING_LIMIT: usize = 64 * 1024;
    let server = TestServer::start_on(target, &[]).await;
    let mut bob = join(&server, "bob", "bob-run").await;
    let alice = join(&server, "alice", "alice-run").await;
    let inbox = incoming_topic("bob");
    let connect = RawClient::connect_packet("peerchat-mallory-run");
    let mut mallory = RawClient::connect(server.mqtt_port, connect).await;
    assert!(mallory.register("mallory", Some("mallory-run")).await);
    let connect = RawClient::connect_packet("peerchat-oscar-run");
    let mut oscar = RawClient::connect(server.mqtt_port, connect).await;
    assert!(oscar.register("oscar", Some("oscar-run")).await);

    let pkid = mallory.pkid();
    let at_limit = offer_in_packet_of_length("mallory", &inbox, pkid, PACKET_LIMIT);
    mallory.send(&Packet::Publish(at_limit)).await.unwrap();
    assert_eq!(
        mallory.next().await,
        Some(Packet::PubAck(PubAck::new(pkid)))
    );
    let largest = offer_of_length("mallory", SIGNALING_LIMIT);
    mallory
        .publish(&inbox, largest.clone(), false)
        .await
        .unwrap();
    let (publish, message) = bob.next_message_on(&inbox).await;
    assert_eq!(message.sender(), Some("mallory"));
    assert_eq!(
        publish.payload.len(),
        SIGNALING_LIMIT,
        "the first message bob gets"
    );
    assert_eq!(publish.payload, largest);

    let pkid = oscar.pkid();
    let over = offer_in_packet_of_length("oscar", &inbox, pkid, PACKET_LIMIT + 1);
    // The server may close before the write is done.
    oscar.send(&Packet::Publish(over)).await.ok();
    closed_hearing_nothing_more(&mut oscar, "oscar, over the packet limit").await;

    // Nobody else's connection: mallory is still answered, bob still reached, and nothing
    // of oscar's came through.
    mallory.send(&Packet::PingReq).await.unwrap();
    assert_eq!(mallory.next().await, Some(Packet::PingResp));
    still_reachable(&alice, "alice", &mut bob, "bob").await;
}

/// Attack 12: A connection speaks in one name only (PROTOCOL.md: "PUBLISH `register` (at
/// most one name per connection)"; "its own presence record is accepted and ignored"; "A
/// refused connection gets nothing more and is closed 1 s later"). Mallory, registered,
/// publishes presence records in dave's name (on dave's topic, and on her own), which are
/// acknowledged and dropped; then registers a second name, a free one or dave's, and is
/// refused and closed, sent nothing more even as a message comes for her name. Dave keeps
/// his name, his presence and his inbox, and the free name stays free.
async fn a_connection_speaks_in_one_name_only(target: Target) {
    let server = TestServer::start_on(target, &[]).await;
    let mut dave = join(&server, "dave", "dave-run").await;
    let alice = join(&server, "alice", "alice-run").await;
    let mut watcher = join(&server, "watcher", "watcher-run").await;
    sees_dave_online_as_himself(&mut watcher).await;

    for (n, second) in ["erin", "dave"].into_iter().enumerate() {
        let name = format!("mallory{n}");
        let connect = RawClient::connect_packet(&format!("peerchat-{name}-run"));
        let mut mallory = RawClient::connect(server.mqtt_port, connect).await;
        assert!(mallory.register(&name, Some(&format!("{name}-run"))).await);
        for topic in [presence_topic("dave"), presence_topic(&name)] {
            let mut forged = Publish::new(
                &topic,
                QoS::AtLeastOnce,
                presence_record("dave", "forged", false),
            );
            forged.pkid = mallory.pkid();
            forged.retain = true;
            mallory.send(&Packet::Publish(forged)).await.unwrap();
            let ack = mallory.next().await;
            assert!(matches!(ack, Some(Packet::PubAck(_))), "{topic}: {ack:?}");
        }

        let register = SignalMessage::Register {
            from: second.to_owned(),
            username: second.to_owned(),
            session: Some(format!("{name}-run")),
            proof: None,
        };
        mallory
            .publish(REGISTER_TOPIC, encode(&register), false)
            .await
            .unwrap();
        let Some(Packet::Publish(ack)) = mallory.next().await else {
            panic!("{name} got no answer to a second register");
        };
        assert_eq!(ack.topic, incoming_topic(second));
        let answer = decode(&ack.payload);
        assert!(
            matches!(
                answer,
                Ok(SignalMessage::RegisterAck { success: false, .. })
            ),
            "{name} registering {second}: {answer:?}"
        );
        // A message for the name she holds until her close: it is not sent to her.
        send_offer(&alice, "alice", &name).await;
        closed_hearing_nothing_more(&mut mallory, &format!("{name}, registering {second}")).await;
    }

    nothing_on(&mut watcher, &presence_topic("dave")).await;
    still_reachable(&alice, "alice", &mut dave, "dave").await;
    let mut newcomer = join(&server, "carol", "carol-run").await;
    sees_dave_online_as_himself(&mut newcomer).await;
    let connect = RawClient::connect_packet("peerchat-erin-run");
    let mut erin = RawClient::connect(server.mqtt_port, connect).await;
    assert!(
        erin.register("erin", Some("erin-run")).await,
        "erin was kept"
    );
}
