//! A signaling relay that misbehaves: an MQTT proxy between clients and the broker that
//! changes what clients publish, as a dishonest broker operator, or anyone on the path to
//! the broker, could. Every change keeps its length, so packets stay well formed and only
//! the content is false. It also counts the presence records the broker delivers, and keeps
//! every byte it relays, both ways, for tests of what a broker gets to see.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// What the relay does to the offers, answers and candidates clients publish.
#[derive(Debug, Clone, Copy)]
pub enum Tamper {
    /// Swaps the DTLS fingerprint in every SDP for another of the same shape: what a
    /// relay that wanted to sit in the middle of the peer-to-peer session would do.
    Fingerprint,
    /// Makes messages from one user claim another sender (two names of equal length).
    Rename {
        from: &'static str,
        to: &'static str,
    },
    /// Delivers every offer twice: a replay.
    ReplayOffers,
    /// Renames the `recovery` feature in every `peerchat` field (a downgrade: the receiver
    /// would think the sender cannot recover a lost connection).
    Features,
    /// Changes nothing (the relay only counts).
    Nothing,
    /// Swallows the first offer any client publishes and then cuts that client's broker
    /// connection: an offer written into a connection as it died, which reached nobody.
    LoseFirstOffer,
    /// Takes the first `n` connections, reads what the client sends, and closes them
    /// before the broker sees anything: a busy or restarting broker dropping newcomers.
    DropConnections(usize),
}

/// A running relay on a loopback port, forwarding to a broker.
pub struct Mitm {
    /// `mqtt://127.0.0.1:PORT`: give this to clients instead of the broker's URL.
    pub url: String,
    seen: Arc<Seen>,
}

/// What the relay has seen so far, shared by its threads.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    presence_delivered: AtomicUsize,
    /// Whether `Tamper::LoseFirstOffer` has swallowed its offer yet.
    lost_offer: AtomicBool,
    /// Every byte relayed, either way, in the order each direction saw it.
    carried: Mutex<Vec<u8>>,
}

impl Mitm {
    /// Relays to the MQTT broker at `broker_url` (`mqtt://host:port`), tampering as told.
    pub fn start(broker_url: &str, tamper: Tamper) -> Self {
        let upstream = broker_url
            .strip_prefix("mqtt://")
            .expect("the relay speaks MQTT over TCP")
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("mqtt://{}", listener.local_addr().expect("bound"));
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let taken = shared.connections.fetch_add(1, Ordering::Relaxed);
                if let Tamper::DropConnections(n) = tamper
                    && taken < n
                {
                    thread::spawn(move || drop_after_connect(client));
                    continue;
                }
                let Ok(broker) = TcpStream::connect(&upstream) else {
                    continue;
                };
                relay(client, broker, tamper, shared.clone());
            }
        });
        Self { url, seen }
    }

    /// Client connections the relay has taken so far.
    pub fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::Relaxed)
    }

    /// Presence records (PUBLISH on `peerchat/presence/…`) the broker delivered to clients
    /// through this relay so far.
    pub fn presence_delivered(&self) -> usize {
        self.seen.presence_delivered.load(Ordering::Relaxed)
    }

    /// Whether `bytes` went through the relay, either way: looked for in everything relayed,
    /// so bytes within one MQTT packet are always found.
    pub fn carried(&self, bytes: &[u8]) -> bool {
        let carried = self.seen.carried.lock().unwrap();
        carried.windows(bytes.len()).any(|window| window == bytes)
    }

    /// Every ICE candidate the relayed signaling named, in candidate messages and in SDP
    /// alike: each `candidate:` up to the end of its JSON string or SDP line.
    pub fn candidates(&self) -> Vec<String> {
        let carried = self.seen.carried.lock().unwrap();
        let text = String::from_utf8_lossy(&carried);
        (text.match_indices("candidate:"))
            .map(|(at, _)| {
                let rest = &text[at..];
                rest[..rest.find(['"', '\\']).unwrap_or(rest.len())].to_owned()
            })
            .collect()
    }
}

/// Reads the client's first bytes (its CONNECT) and closes the connection unanswered.
fn drop_after_connect(mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let _ = client.read(&mut [0u8; 1024]);
    let _ = client.shutdown(Shutdown::Both);
}

/// Client to broker through `tamper`; broker to client as it is, counting presence records.
/// Keeps every packet it relays in `seen`.
fn relay(client: TcpStream, broker: TcpStream, tamper: Tamper, seen: Arc<Seen>) {
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let (mut client_in, mut broker_out) =
        (client.try_clone().unwrap(), broker.try_clone().unwrap());
    let (mut broker_in, mut client_out) = (broker, client);
    let broker_seen = seen.clone();
    thread::spawn(move || {
        let mut pending = Vec::new();
        let mut buffer = [0u8; 65536];
        while let Ok(n @ 1..) = client_in.read(&mut buffer) {
            pending.extend_from_slice(&buffer[..n]);
            while let Some(length) = packet_length(&pending) {
                let packet: Vec<u8> = pending.drain(..length).collect();
                if matches!(tamper, Tamper::LoseFirstOffer)
                    && String::from_utf8_lossy(&packet).contains("\"signal-offer\"")
                    && !seen.lost_offer.swap(true, Ordering::Relaxed)
                {
                    // The connection dies with the offer in it: neither side hears more.
                    let _ = broker_out.shutdown(Shutdown::Both);
                    let _ = client_in.shutdown(Shutdown::Both);
                    return;
                }
                for packet in tampered(packet, tamper) {
                    seen.carried.lock().unwrap().extend_from_slice(&packet);
                    if broker_out.write_all(&packet).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = broker_out.shutdown(Shutdown::Both);
    });
    thread::spawn(move || {
        let mut pending = Vec::new();
        let mut buffer = [0u8; 65536];
        while let Ok(n @ 1..) = broker_in.read(&mut buffer) {
            pending.extend_from_slice(&buffer[..n]);
            while let Some(length) = packet_length(&pending) {
                let packet: Vec<u8> = pending.drain(..length).collect();
                if is_presence_record(&packet) {
                    broker_seen
                        .presence_delivered
                        .fetch_add(1, Ordering::Relaxed);
                }
                broker_seen
                    .carried
                    .lock()
                    .unwrap()
                    .extend_from_slice(&packet);
                if client_out.write_all(&packet).is_err() {
                    return;
                }
            }
        }
        let _ = client_out.shutdown(Shutdown::Both);
    });
}

/// Whether `packet` is a PUBLISH on a presence topic.
fn is_presence_record(packet: &[u8]) -> bool {
    if packet[0] >> 4 != 3 {
        return false;
    }
    let header = 1 + packet[1..].iter().take_while(|b| *b & 0x80 != 0).count() + 1;
    packet
        .get(header + 2..)
        .is_some_and(|rest| rest.starts_with(b"peerchat/presence/"))
}

/// The length of the first whole MQTT packet in `bytes`, once it has all arrived.
fn packet_length(bytes: &[u8]) -> Option<usize> {
    let mut remaining = 0usize;
    for (i, byte) in bytes.iter().enumerate().skip(1).take(4) {
        remaining |= usize::from(byte & 0x7f) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            let total = 1 + i + remaining;
            return (bytes.len() >= total).then_some(total);
        }
    }
    None
}

/// The packets to send for `packet`: itself, changed or repeated when it publishes
/// signaling.
fn tampered(packet: Vec<u8>, tamper: Tamper) -> Vec<Vec<u8>> {
    let publish = packet[0] >> 4 == 3;
    let text = String::from_utf8_lossy(&packet);
    let signaling = publish && text.contains("\"signal-");
    if !signaling {
        return vec![packet];
    }
    match tamper {
        Tamper::Fingerprint => vec![swap_fingerprints(packet)],
        Tamper::Rename { from, to } => {
            assert_eq!(from.len(), to.len(), "renames keep lengths");
            let (from, to) = (format!("\"from\":\"{from}\""), format!("\"from\":\"{to}\""));
            vec![replace_bytes(&packet, from.as_bytes(), to.as_bytes())]
        }
        Tamper::ReplayOffers if text.contains("\"signal-offer\"") => vec![packet.clone(), packet],
        Tamper::ReplayOffers => vec![packet],
        Tamper::Features => vec![replace_bytes(&packet, b"\"recovery\"", b"\"xecovery\"")],
        Tamper::Nothing | Tamper::LoseFirstOffer | Tamper::DropConnections(_) => vec![packet],
    }
}

/// Every hex digit after `a=fingerprint:sha-256 ` becomes another one.
fn swap_fingerprints(mut packet: Vec<u8>) -> Vec<u8> {
    let marker = b"a=fingerprint:sha-256 ";
    let mut at = 0;
    while let Some(found) = find(&packet[at..], marker) {
        let mut i = at + found + marker.len();
        while i < packet.len() && (packet[i].is_ascii_hexdigit() || packet[i] == b':') {
            if packet[i] != b':' {
                packet[i] = if packet[i] == b'0' { b'1' } else { b'0' };
            }
            i += 1;
        }
        at = i;
    }
    packet
}

fn replace_bytes(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = haystack.to_vec();
    let mut at = 0;
    while let Some(found) = find(&out[at..], from) {
        out[at + found..at + found + from.len()].copy_from_slice(to);
        at += found + from.len();
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A relay in front of a broker's WebSocket endpoint that lets the first `drops`
/// connections open (the upgrade goes through) and closes each as the client's first MQTT
/// packet arrives, before the broker could accept it: a busy or restarting broker, as a
/// browser meets one. Later connections pass untouched.
pub struct DroppingWebSocketRelay {
    /// `ws://127.0.0.1:PORT/PATH`: give this to clients instead of the broker's URL.
    pub ws_url: String,
    connections: Arc<AtomicUsize>,
}

impl DroppingWebSocketRelay {
    /// Relays to the broker at `broker_ws_url` (`ws://host:port/path`).
    pub fn start(broker_ws_url: &str, drops: usize) -> Self {
        let (upstream, path) = broker_ws_url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split_once('/'))
            .expect("a ws://host:port/path URL");
        let upstream = upstream.to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let ws_url = format!("ws://{}/{path}", listener.local_addr().expect("bound"));
        let connections = Arc::new(AtomicUsize::new(0));
        let taken = connections.clone();
        thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let dropped = taken.fetch_add(1, Ordering::Relaxed) < drops;
                let Ok(broker) = TcpStream::connect(&upstream) else {
                    continue;
                };
                thread::spawn(move || {
                    if dropped {
                        open_then_drop(client, broker);
                    } else {
                        pass_through(client, broker);
                    }
                });
            }
        });
        Self {
            ws_url,
            connections,
        }
    }

    /// Client connections the relay has taken so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Passes the WebSocket upgrade both ways, then closes both ends at the client's next bytes.
fn open_then_drop(mut client: TcpStream, mut broker: TcpStream) {
    let timeout = Some(std::time::Duration::from_secs(10));
    let _ = client.set_read_timeout(timeout);
    let _ = broker.set_read_timeout(timeout);
    let upgraded = http_head(&mut client)
        .and_then(|request| broker.write_all(&request).ok())
        .and_then(|()| http_head(&mut broker))
        .and_then(|response| client.write_all(&response).ok());
    if upgraded.is_some() {
        let _ = client.read(&mut [0u8; 1024]);
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = broker.shutdown(Shutdown::Both);
}

/// An HTTP request or response head, read up to its blank line (nothing follows it before
/// the other side answers).
fn http_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buffer).ok().filter(|&n| n > 0)?;
        head.extend_from_slice(&buffer[..n]);
    }
    Some(head)
}

/// Copies bytes both ways until either side closes.
fn pass_through(client: TcpStream, broker: TcpStream) {
    let (mut client_in, mut broker_out) =
        (client.try_clone().unwrap(), broker.try_clone().unwrap());
    let (mut broker_in, mut client_out) = (broker, client);
    thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut broker_out);
        let _ = broker_out.shutdown(Shutdown::Both);
    });
    let _ = std::io::copy(&mut broker_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Both);
}
