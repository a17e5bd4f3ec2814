//! Signaling sealed with identity keys: neither the broker nor another user can change who
//! speaks, to whom, or which DTLS certificate a chat will use, without being refused.
//!
//! Real `peerchat-server` and `peerchat-cli` processes on loopback; the attacks come from a
//! relay between the clients and the broker (`mitm`) that changes what clients publish.

use peerchat_e2e::mitm::{Mitm, Tamper};
use peerchat_e2e::wire::WireCapture;
use peerchat_e2e::{ChatClient, Cli, Mosquitto, PeerchatServer, TempDir, namespaced_test};
use serde_json::Value;

/// A relay to `broker_url` that makes Carol's signaling claim to be Alice's.
fn carol_as_alice(broker_url: &str) -> Mitm {
    let rename = Tamper::Rename {
        from: "carol",
        to: "alice",
    };
    Mitm::start(broker_url, rename)
}

fn key_changed(e: &Value) -> bool {
    e["event"] == "error"
        && e["message"]
            .as_str()
            .is_some_and(|m| m.contains("different identity key"))
}

fn refusal(containing: &'static str) -> impl Fn(&Value) -> bool {
    move |e| {
        e["event"] == "error"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("refused signaling") && m.contains(containing))
    }
}

#[test]
fn an_offer_whose_dtls_fingerprint_was_rewritten_on_the_way_is_refused() {
    let server = PeerchatServer::start();
    let relay = Mitm::start(&server.broker.tcp_url, Tamper::Fingerprint);
    let mut alice = Cli::join(&relay.url, "alice");
    let mut bob = Cli::join(&relay.url, "bob");
    alice.connect_to("bob");
    bob.expect("the altered offer refused", refusal("altered on the way"));
    assert!(
        !bob.seen().iter().any(|e| e["event"] == "peer_connected"),
        "bob must not chat over a description someone changed"
    );
}

/// On a plain broker (Mosquitto), which checks nothing, the client refuses.
#[test]
fn signaling_claiming_another_sender_is_refused() {
    let broker = Mosquitto::start();
    // Carol's offers reach Bob as if from Alice.
    let relay = carol_as_alice(&broker.broker.tcp_url);
    let mut bob = Cli::join(&relay.url, "bob");
    let mut carol = Cli::join(&relay.url, "carol");
    carol.connect_to("bob");
    let refused = bob.expect("the spoofed offer refused", refusal("altered on the way"));
    assert!(refused["message"].as_str().unwrap().contains("`alice`"));
    assert!(!bob.seen().iter().any(|e| e["event"] == "peer_connected"));
}

/// peerchat-server stops it sooner: a client publishes only in the name it registered.
#[test]
fn peerchat_server_drops_signaling_in_another_name() {
    let server = PeerchatServer::start();
    let relay = carol_as_alice(&server.broker.tcp_url);
    let mut bob = Cli::join(&relay.url, "bob");
    let mut carol = Cli::join(&relay.url, "carol");
    carol.connect_to("bob");
    // Nothing of Carol's reaches Bob, in either name (on loopback it would take
    // milliseconds; two seconds of nothing is the server refusing).
    let seen = bob.gather(std::time::Duration::from_secs(2));
    assert!(
        !seen
            .iter()
            .any(|e| e["event"] == "error" || e["event"] == "status"),
        "{seen:?}"
    );
}

/// The features a peer announces are sealed too: a relay that changes them (here, hiding
/// `recovery`) gets the offer refused rather than a chat that silently lost a feature.
#[test]
fn an_offer_whose_features_were_changed_on_the_way_is_refused() {
    let server = PeerchatServer::start();
    let relay = Mitm::start(&server.broker.tcp_url, Tamper::Features);
    let mut alice = Cli::join(&relay.url, "alice");
    let mut bob = Cli::join(&relay.url, "bob");
    alice.connect_to("bob");
    bob.expect("the altered offer refused", refusal("altered on the way"));
    assert!(
        !bob.seen().iter().any(|e| e["event"] == "peer_connected"),
        "bob must not chat with features someone changed"
    );
}

/// A pins file that does not read back is not dropped quietly: it is kept aside and the
/// user is told, first thing.
#[test]
fn a_damaged_pins_file_is_kept_aside_and_said_so() {
    let server = PeerchatServer::start();
    let pins = peerchat_e2e::cli_data_dir().join("peerchat/bob.pins");
    std::fs::create_dir_all(pins.parent().unwrap()).expect("the data directory made");
    std::fs::write(&pins, "{\"alice\": {\"key\": \"cut off here").expect("pins written");
    let mut bob = Cli::join(&server.broker.tcp_url, "bob");
    let told = bob.expect("the pins set aside", |e| {
        e["event"] == "error"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("bob.pins") && m.contains("kept aside"))
    });
    let aside: Vec<_> = std::fs::read_dir(pins.parent().unwrap())
        .expect("the data directory reads")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("bob.pins.unreadable-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{told}");
}

#[test]
fn a_replayed_offer_is_refused_and_the_real_one_still_works() {
    let server = PeerchatServer::start();
    let relay = Mitm::start(&server.broker.tcp_url, Tamper::ReplayOffers);
    let mut alice = Cli::join(&relay.url, "alice");
    let mut bob = Cli::join(&relay.url, "bob");
    alice.connect_to("bob");
    bob.expect("the replay refused", refusal("replay"));
    alice.expect_peer_connected("bob");
    bob.expect_peer_connected("alice");
    alice.send("bob", "hello once");
    bob.expect_message("alice", "hello once");
}

/// On a plain broker anyone may use any name, so the client's pins are what catch another
/// key (on peerchat-server the name itself is bound to the key: see the next test).
#[test]
fn safety_numbers_agree_and_a_changed_key_is_flagged() {
    let broker = Mosquitto::start();
    let url = &broker.broker.tcp_url;
    let mut alice = Cli::join(url, "alice");
    let mut bob = Cli::join(url, "bob");
    alice.connect_to("bob");
    let identity =
        |peer: &'static str| move |e: &Value| e["event"] == "identity" && e["peer"] == peer;
    let seen_by_bob = bob.expect("alice's key pinned", identity("alice"));
    let seen_by_alice = alice.expect("bob's key pinned", identity("bob"));
    let number = seen_by_bob["safety_number"]
        .as_str()
        .expect("a safety number");
    assert_eq!(
        seen_by_alice["safety_number"], number,
        "both see one number"
    );
    assert_eq!(seen_by_bob["verified"], false);
    bob.command("/verify alice");
    let verified = bob.expect("alice verified", identity("alice"));
    assert_eq!(verified["verified"], true);
    alice.expect_peer_connected("bob");

    // Alice's name comes back with another key (another device, or someone else).
    alice.command("/quit");
    assert!(alice.finish().success());
    bob.expect_peer_disconnected("alice");
    let elsewhere = TempDir::new("other-identity");
    let other_key = elsewhere.0.join("alice.identity");
    let flag = format!("--identity={}", other_key.display());
    let mut impostor = Cli::join_with(peerchat_e2e::Network::Loopback, url, "alice", &[&flag]);
    impostor.connect_to("bob");
    bob.expect("the new key flagged", key_changed);
    assert_eq!(
        bob.seen()
            .iter()
            .filter(|e| e["event"] == "peer_connected")
            .count(),
        1,
        "bob must not chat with the new key"
    );
}

/// Trust on first use means first use ever: a key pinned before a restart still holds.
#[test]
fn peerchat_server_keeps_a_name_for_the_key_that_first_used_it() {
    let server = PeerchatServer::start();
    let url = &server.broker.tcp_url;
    let mut alice = Cli::join(url, "alice");
    alice.command("/quit");
    assert!(alice.finish().success());
    let elsewhere = TempDir::new("other-identity");
    let flag = format!(
        "--identity={}",
        elsewhere.0.join("alice.identity").display()
    );
    let mut impostor = Cli::start_with(peerchat_e2e::Network::Loopback, url, "alice", &[&flag]);
    let error = impostor.expect("a refusal", |e| e["event"] == "error");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("another identity key")),
        "{error}"
    );
    assert_eq!(impostor.finish().code(), Some(2));
    // The key that first used it gets it back.
    Cli::join(url, "alice");
}

#[test]
fn a_pinned_key_outlives_a_restart() {
    let broker = Mosquitto::start();
    let url = &broker.broker.tcp_url;
    let mut alice = Cli::join(url, "alice");
    let mut bob = Cli::join(url, "bob");
    alice.connect_to("bob");
    bob.expect("alice's key pinned", |e| {
        e["event"] == "identity" && e["peer"] == "alice"
    });
    bob.expect_peer_connected("alice");
    for cli in [&mut alice, &mut bob] {
        cli.command("/quit");
    }
    assert!(alice.finish().success() && bob.finish().success());

    // Bob starts again (same data directory); someone else now uses Alice's name.
    let mut bob = Cli::join(url, "bob");
    let elsewhere = TempDir::new("impostor-identity");
    let flag = format!(
        "--identity={}",
        elsewhere.0.join("alice.identity").display()
    );
    let mut impostor = Cli::join_with(peerchat_e2e::Network::Loopback, url, "alice", &[&flag]);
    impostor.connect_to("bob");
    bob.expect("the new key flagged", key_changed);
}

/// The broker carries only signaling: a chat's messages and files go peer to peer, so a
/// relay that keeps every byte between the clients and the broker (what a broker operator
/// sees) finds the offers and answers in them and none of what the users wrote or sent.
#[test]
fn a_chats_messages_and_files_never_pass_through_the_broker() {
    use base64::Engine as _;
    let server = PeerchatServer::start();
    let relay = Mitm::start(&server.broker.tcp_url, Tamper::Nothing);
    let [question, answer] = ["meet at the harbour at 7?", "yes, by the blue boat"];
    let content = chat_and_send_a_file(&relay.url, [question, answer]);

    assert!(
        relay.carried(b"signal-offer"),
        "the relay saw the signaling"
    );
    assert!(
        relay.carried(b"signal-answer"),
        "the relay saw the signaling"
    );
    for text in [question, answer] {
        assert!(
            !relay.carried(text.as_bytes()),
            "{text:?} went through the broker"
        );
    }
    // The file as it is, and in base64 at each of the three alignments a sender could use.
    let middle = &content[100_000..100_051];
    assert!(
        !relay.carried(&middle[..48]),
        "the file went through the broker"
    );
    for skip in 0..3 {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&middle[skip..skip + 48]);
        assert!(
            !relay.carried(encoded.as_bytes()),
            "the file went through the broker in base64"
        );
    }
}

/// Alice and Bob join through `broker_url` and chat: Alice writes `question`, Bob reads it
/// and writes `answer`, Alice reads it; then Alice sends Bob a file. Returns its bytes.
fn chat_and_send_a_file(broker_url: &str, [question, answer]: [&str; 2]) -> Vec<u8> {
    let mut alice = Cli::join(broker_url, "alice");
    let mut bob = Cli::join(broker_url, "bob");
    alice.connect_to("bob");
    alice.expect_peer_connected("bob");
    bob.expect_peer_connected("alice");
    let id = alice.send("bob", question);
    bob.expect_message("alice", question);
    alice.expect_delivered("bob", id);
    bob.send("alice", answer);
    alice.expect_message("bob", answer);
    send_a_file(&mut alice, &mut bob)
}

/// Alice sends Bob 200,000 bytes no signaling could hold by chance; returns them once Bob
/// has the file.
fn send_a_file(alice: &mut Cli, bob: &mut Cli) -> Vec<u8> {
    let dir = TempDir::new("unseen-file");
    let path = dir.0.join("map.bin");
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let content: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&path, &content).expect("the file is written");
    alice.command(&format!("/sendfile bob {}", path.display()));
    let file = bob.expect("the file", |e| e["event"] == "file" && e["from"] == "alice");
    assert_eq!(file["size"], content.len(), "{file}");
    content
}

namespaced_test! {
    /// A chat is DTLS-encrypted end to end: a capture of every interface the two clients
    /// and the broker share sees the signaling in clear (plain MQTT, the capture's check on
    /// itself) and the chat's messages and file only as DTLS application data, never as
    /// what the users wrote or sent.
    fn a_chats_messages_and_files_cross_the_wire_only_encrypted() {
        let server = PeerchatServer::start();
        let capture = WireCapture::start();
        let [question, answer] = ["the key is under the third stone", "found it, thanks"];
        let content = chat_and_send_a_file(&server.broker.tcp_url, [question, answer]);
        let wire = capture.finish();

        let encrypted = wire.dtls_application_bytes();
        println!(
            "captured {} frames, {} UDP datagrams, {encrypted} bytes of DTLS application data",
            wire.frame_count(),
            wire.udp_payloads().count()
        );
        assert!(wire.carried(b"signal-offer"), "the capture saw the signaling in clear");
        assert!(
            encrypted >= content.len(),
            "the file crossed as DTLS application data ({encrypted} bytes of it)"
        );
        for text in [question, answer] {
            assert!(!wire.carried(text.as_bytes()), "{text:?} crossed the wire in clear");
        }
        assert!(
            !wire.carried(&content[100_000..100_048]),
            "the file crossed the wire in clear"
        );
    }
}
