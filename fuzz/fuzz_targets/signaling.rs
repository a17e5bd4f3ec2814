//! The client state machine fed whatever arrives: signaling payloads on its own topic and
//! on presence topics, chat-channel text and bytes, transport reports, API calls and time,
//! in any order. It must never panic, whatever the bytes (malformed JSON, oversized or
//! spoofed messages, unknown peers, events for connections that do not exist).
//!
//! Every signaling payload that decodes is encoded and decoded again, unchanged.
//!
//! Besides not panicking, it keeps its promises whatever a peer claims: only what was sent
//! is ever reported delivered, each at most once.
//!
//! When the input's first byte is odd, the machine also has an identity key, so it seals
//! what it sends and pins what it accepts (sealing costs two signatures per message, so
//! only half the runs pay for it); its wall clock moves with its time and jumps when the
//! device "sleeps".
//!
//! The input is a list of steps separated by 0xFF; each step's first byte picks what
//! happens and the rest is its payload.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use peerchat_core::event::PeerStatus;
use peerchat_core::identity::Identity;
use peerchat_core::machine::{SignalingInput, TransportEvent};
use peerchat_core::protocol::{decode, encode, incoming_topic, presence_topic};
use peerchat_core::{ClientEvent, ClientMachine};

const PEERS: [&str; 3] = ["bob", "carol", "alice"];

fuzz_target!(|data: &[u8]| {
    let Ok(mut machine) = ClientMachine::new("alice", "fuzz-session") else {
        return;
    };
    if data.first().is_some_and(|b| b & 1 == 1) {
        machine.set_identity(Identity::from_seed([7; 32]));
    }
    // The wall clock minus the machine's: grows while the device sleeps.
    let mut wall_ahead = 1_764_000_000_000u64;
    machine.handle_wall_clock(0, wall_ahead);
    machine.handle_signaling(SignalingInput::Connected, 0);
    machine.handle_signaling(SignalingInput::Subscribed, 0);
    let mut now = 60_000;
    machine.handle_timeout(now);
    let mut sent = HashSet::new();
    let mut delivered = HashSet::new();
    for step in data.split(|b| *b == 0xFF) {
        let Some((&kind, body)) = step.split_first() else {
            continue;
        };
        let peer = PEERS[usize::from(kind >> 5) % PEERS.len()];
        let conn = u64::from(kind >> 6);
        let text = String::from_utf8_lossy(body).into_owned();
        now += u64::from(kind & 0x0F) * 100;
        machine.handle_wall_clock(now, now + wall_ahead);
        match kind & 0x0F {
            0 | 1 => {
                // The hand-written codec reads back exactly what it writes.
                if let Ok(message) = decode(body) {
                    assert_eq!(decode(&encode(&message)), Ok(message));
                }
                machine.handle_signaling(
                    SignalingInput::Message {
                        topic: incoming_topic("alice"),
                        payload: body.to_vec(),
                    },
                    now,
                )
            }
            2 => machine.handle_signaling(
                SignalingInput::Message {
                    topic: presence_topic(peer),
                    payload: body.to_vec(),
                },
                now,
            ),
            3 => machine.handle_transport(conn, TransportEvent::ChannelMessage(text), now),
            4 => machine.handle_transport(conn, TransportEvent::ChannelData(body.to_vec()), now),
            5 => machine.handle_transport(conn, TransportEvent::ChannelOpen, now),
            6 => machine.handle_transport(
                conn,
                TransportEvent::StateChanged(match body.first().map(|b| b % 4) {
                    Some(0) => PeerStatus::Connected,
                    Some(1) => PeerStatus::Disconnected,
                    Some(2) => PeerStatus::Failed,
                    _ => PeerStatus::Closed,
                }),
                now,
            ),
            7 => machine.handle_transport(conn, TransportEvent::LocalDescription(text), now),
            8 => {
                let _ = machine.connect_to_peer(peer, now);
            }
            9 => {
                if let Ok(id) = machine.send_message(peer, &text) {
                    sent.insert((peer, id));
                }
            }
            10 => {
                if let Ok(id) = machine.send_file(peer, "f.bin", "application/octet-stream", body) {
                    sent.insert((peer, id));
                }
            }
            11 => machine.handle_signaling(SignalingInput::Lost, now),
            12 => {
                machine.handle_signaling(SignalingInput::Connected, now);
                machine.handle_signaling(SignalingInput::Subscribed, now);
            }
            13 => machine.handle_transport(
                conn,
                TransportEvent::SendBufferLow {
                    buffered: u64::from(kind),
                    chunk_bytes: body.len() as u64,
                },
                now,
            ),
            14 => {
                let _ = machine.close_peer(peer);
            }
            _ => {
                // The device slept: minutes pass on the wall clock alone.
                wall_ahead += u64::from(body.first().copied().unwrap_or(0)) * 60_000;
                machine.handle_wall_clock(now, now + wall_ahead);
                machine.handle_timeout(now);
            }
        }
        while machine.poll_action().is_some() {}
        while let Some(event) = machine.poll_event() {
            if let ClientEvent::Delivered { peer, id } = event {
                let peer = PEERS.into_iter().find(|p| *p == peer);
                let key = (peer.expect("delivered by a peer we know"), id);
                assert!(
                    sent.contains(&key),
                    "{key:?} reported delivered, never sent"
                );
                assert!(delivered.insert(key), "{key:?} reported delivered twice");
            }
        }
        let _ = machine.poll_timeout();
    }
});
