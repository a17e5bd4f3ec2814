//! End to end: real brokers, real `peerchat-cli` processes, real WebRTC on loopback.
//!
//! The same scenarios run against peerchat-server and against Mosquitto, a plain MQTT broker
//! that answers no `register`.

use peerchat_e2e::{Broker, Cli, Mosquitto, PeerchatServer, chat_both_ways};

/// Three clients, two on MQTT over TCP and one over WebSocket: every pair chats both ways in
/// order, and a client that leaves is reported on the others.
fn three_clients_chat(broker: &Broker) {
    let mut alice = Cli::join(&broker.tcp_url, "alice");
    let mut bob = Cli::join(&broker.ws_url, "bob");
    let mut carol = Cli::join(&broker.tcp_url, "carol");

    alice.command("/connect bob");
    bob.command("/connect carol");
    carol.command("/connect alice");
    alice.expect_peer_connected("bob");
    alice.expect_peer_connected("carol");
    bob.expect_peer_connected("alice");
    bob.expect_peer_connected("carol");
    carol.expect_peer_connected("alice");
    carol.expect_peer_connected("bob");

    // Chats report how they run: host to host on loopback is direct.
    let path = alice.expect("path to bob", |e| {
        e["event"] == "path" && e["peer"] == "bob"
    });
    assert_eq!(path["kind"], "direct", "{path}");

    let mut clients = [alice, bob, carol];
    for round in 0..5 {
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    let to = clients[j].user.clone();
                    let from = clients[i].user.clone();
                    clients[i].send(&to, &format!("{from}→{to} #{round} ünïcødé"));
                }
            }
        }
    }
    for receiver in &mut clients {
        let me = receiver.user.clone();
        for sender in ["alice", "bob", "carol"].into_iter().filter(|s| *s != me) {
            for round in 0..5 {
                // Each expectation consumes events up to its match, so order is checked too.
                receiver.expect_message(sender, &format!("{sender}→{me} #{round} ünïcødé"));
            }
        }
    }

    let [mut alice, mut bob, mut carol] = clients;
    carol.command("/quit");
    assert!(carol.finish().success());
    for survivor in [&mut alice, &mut bob] {
        survivor.expect("peer_disconnected carol", |e| {
            e["event"] == "peer_disconnected" && e["peer"] == "carol"
        });
    }
    // The others still chat, and peerchat peers acknowledge what they receive.
    let id = alice.send("bob", "still here");
    bob.expect_message("alice", "still here");
    alice.expect_delivered("bob", id);
}

/// A second client with a name in use is refused with a clear message and a non-zero exit;
/// the first keeps working.
fn taken_name_is_refused(broker: &Broker) {
    let mut first = Cli::join(&broker.tcp_url, "dora");
    fails_saying(Cli::start(&broker.ws_url, "dora"), "already taken");

    let mut friend = Cli::join(&broker.tcp_url, "eve");
    first.command("/connect eve");
    first.expect_peer_connected("eve");
    friend.expect_peer_connected("dora");
    // After the first leaves, the name is free again.
    first.command("/quit");
    assert!(first.finish().success());
    friend.expect("peer_disconnected dora", |e| {
        e["event"] == "peer_disconnected"
    });
    let again = Cli::join(&broker.tcp_url, "dora");
    drop(again);
}

#[test]
fn three_clients_chat_on_peerchat_server() {
    let server = PeerchatServer::start();
    three_clients_chat(&server.broker);
}

#[test]
fn three_clients_chat_on_mosquitto() {
    let mosquitto = Mosquitto::start();
    three_clients_chat(&mosquitto.broker);
}

#[test]
fn taken_name_is_refused_on_peerchat_server() {
    let server = PeerchatServer::start();
    taken_name_is_refused(&server.broker);
}

#[test]
fn taken_name_is_refused_on_mosquitto() {
    let mosquitto = Mosquitto::start();
    taken_name_is_refused(&mosquitto.broker);
}

#[test]
fn offline_peer_is_reported_by_peerchat_server() {
    let server = PeerchatServer::start();
    let mut alice = Cli::join(&server.broker.tcp_url, "alice");
    alice.command("/connect nobody");
    let error = alice.expect("error", |e| e["event"] == "error");
    assert!(
        error["message"].as_str().unwrap().contains("offline"),
        "{error}"
    );
    alice.expect("status failed", |e| {
        e["event"] == "status" && e["peer"] == "nobody" && e["status"] == "failed"
    });
}

#[test]
fn offline_peer_is_reported_from_presence_on_mosquitto() {
    let mosquitto = Mosquitto::start();
    let gone = Cli::join(&mosquitto.broker.tcp_url, "gone");
    assert!(gone.finish().success());
    let mut alice = Cli::join(&mosquitto.broker.tcp_url, "alice");
    alice.command("/connect gone");
    let error = alice.expect("error", |e| e["event"] == "error");
    assert!(
        error["message"].as_str().unwrap().contains("offline"),
        "{error}"
    );
}

#[test]
fn bad_commands_and_self_connect_are_errors_not_crashes() {
    let server = PeerchatServer::start();
    let mut alice = Cli::join(&server.broker.tcp_url, "alice");
    for (line, expected) in [
        ("/connect alice", "yourself"),
        ("/connect bad/name", "invalid username"),
        ("/dance", "unknown command"),
    ] {
        alice.command(line);
        let error = alice.expect("error", |e| e["event"] == "error");
        assert!(
            error["message"].as_str().unwrap().contains(expected),
            "{line}: {error}"
        );
    }
    alice.command("/send bob hi");
    let sent = alice.expect("sent", |e| e["event"] == "sent");
    assert_eq!(sent["ok"], false);
    alice.command("/quit");
    assert!(alice.finish().success());
}

/// A user who quits the moment a chat opens is seen leaving (`peer_left`), not as a chat
/// to recover for a minute. Their `bye` goes out right behind the channel's first frames
/// and the connection closes right after it. Twenty rounds: before the native transport
/// closed the channel behind its last message, about one run in four lost a `bye`.
#[test]
fn a_peer_that_quits_as_the_chat_opens_is_seen_leaving() {
    let server = PeerchatServer::start();
    let mut stays = Cli::join(&server.broker.tcp_url, "stays");
    for round in 0..20 {
        let name = format!("quits{round}");
        let mut quits = Cli::join(&server.broker.tcp_url, &name);
        quits.command("/connect stays");
        quits.expect_peer_connected("stays");
        stays.expect_peer_connected(&name);
        quits.command("/quit");
        let left = stays.expect("the peer leaving", |e| {
            e["event"] == "peer_disconnected" && e["peer"] == name.as_str()
        });
        assert_eq!(left["reason"], "peer_left", "{left}");
        assert!(quits.finish().success());
    }
}

#[test]
fn unreachable_server_fails_clearly() {
    let port = peerchat_e2e::free_port();
    fails_saying(
        Cli::start(&format!("mqtt://127.0.0.1:{port}"), "alice"),
        "cannot reach",
    );
}

/// `cli` prints an error that says `what` and exits unsuccessfully.
/// An unreachable server or a taken name: an `error` saying `what`, then exit status 2
/// (docs/cli.md), which scripts tell from a crash.
fn fails_saying(mut cli: Cli, what: &str) {
    let error = cli.expect("error", |e| e["event"] == "error");
    assert!(error["message"].as_str().unwrap().contains(what), "{error}");
    assert_eq!(cli.finish().code(), Some(2), "{error}");
}

/// A server that takes a connection and drops it before accepting it (busy, or restarting)
/// is not unreachable: the first connection is tried again and the user gets in.
#[test]
fn a_server_that_drops_the_first_connections_is_tried_again() {
    use peerchat_e2e::mitm::{Mitm, Tamper};
    let server = PeerchatServer::start();
    let relay = Mitm::start(&server.broker.tcp_url, Tamper::DropConnections(2));
    let mut alice = Cli::join(&relay.url, "alice");
    assert_eq!(relay.connections(), 3, "two dropped, the third through");
    let mut bob = Cli::join(&server.broker.tcp_url, "bob");
    chat_both_ways(&mut alice, &mut bob);
}

/// A server that drops every connection before accepting it fails as clearly as one that
/// cannot be reached, after a few tries.
#[test]
fn a_server_that_always_drops_the_connection_fails_clearly() {
    use peerchat_e2e::mitm::{Mitm, Tamper};
    let server = PeerchatServer::start();
    let relay = Mitm::start(&server.broker.tcp_url, Tamper::DropConnections(usize::MAX));
    fails_saying(Cli::start(&relay.url, "alice"), "cannot reach");
    assert_eq!(
        relay.connections(),
        6,
        "the first try and five more, as the README says"
    );
}

/// Publishes a retained online presence record for each of `users` to the broker at
/// `tcp_url`, as that many users who logged in once would have left on a plain broker.
fn leave_presence_records(tcp_url: &str, users: usize) {
    use std::io::{Read, Write};
    let addr = tcp_url.strip_prefix("mqtt://").expect("an mqtt:// URL");
    let mut stream = std::net::TcpStream::connect(addr).expect("the broker answers");
    let mut packets = mqtt_packet(0x10, b"\0\x04MQTT\x04\x02\0\x3c\0\x06filler");
    for n in 0..users {
        let (user, record) = (
            format!("user{n}"),
            format!(r#"{{"type":"presence","from":"user{n}","session":"s{n}","online":true}}"#),
        );
        let topic = format!("peerchat/presence/{user}");
        let mut body = (topic.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(topic.as_bytes());
        body.extend_from_slice(record.as_bytes());
        packets.extend(mqtt_packet(0x31, &body));
    }
    packets.extend(mqtt_packet(0xe0, b""));
    stream.write_all(&packets).expect("records published");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).ok();
}

/// One MQTT packet: the fixed header byte, the remaining length, the body.
fn mqtt_packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut packet = vec![first];
    let mut remaining = body.len();
    loop {
        let mut byte = (remaining % 128) as u8;
        remaining /= 128;
        if remaining > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if remaining == 0 {
            break;
        }
    }
    packet.extend_from_slice(body);
    packet
}

/// Presence per contact: on a broker that has seen 10,000 users (their records retained),
/// a client with three contacts receives a handful of presence records, not one per user.
#[test]
fn a_login_costs_one_presence_record_per_contact_however_many_users() {
    use peerchat_e2e::mitm::{Mitm, Tamper};
    let mosquitto = Mosquitto::start();
    leave_presence_records(&mosquitto.broker.tcp_url, 10_000);
    let relay = Mitm::start(&mosquitto.broker.tcp_url, Tamper::Nothing);
    let mut alice = Cli::join(&relay.url, "alice");
    for contact in ["user1", "user5000", "user9999"] {
        alice.command(&format!("/watch {contact}"));
        alice.expect(&format!("{contact} online"), |e| {
            e["event"] == "presence" && e["user"] == contact && e["online"] == true
        });
    }
    // Anything else the broker had to send has had time to come.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let delivered = relay.presence_delivered();
    println!("presence records delivered at login with 3 contacts among 10,000 users: {delivered}");
    assert!(
        delivered <= 24,
        "{delivered} presence records for 3 contacts"
    );
}
