//! MQTT 3.1.1 packets over a byte stream: reassembling whole frames from WebSocket messages,
//! and encoding/decoding them with `mqttrs` so that nothing from the wire can panic.
//!
//! Pure code (no browser API), so it is unit-tested like the state machine.

use mqttrs::Packet;
use thiserror::Error;

/// Why a frame from the broker, or one for it, cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    #[error("MQTT packet of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("MQTT packet has a malformed remaining length")]
    BadLength,
    #[error("MQTT packet is shorter than its fields say")]
    Truncated,
    #[error("MQTT packet type {0} is never sent by a broker")]
    Unexpected(u8),
    #[error("malformed MQTT packet: {0}")]
    Codec(mqttrs::Error),
}

/// Collects WebSocket messages and cuts them into whole MQTT frames: a packet may span
/// several messages, and one message may hold several packets.
#[derive(Debug)]
pub struct FrameBuffer {
    pending: Vec<u8>,
    limit: usize,
}

impl FrameBuffer {
    /// A buffer that refuses frames over `limit` bytes as soon as their header says so.
    pub fn new(limit: usize) -> Self {
        Self {
            pending: Vec::new(),
            limit,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete frame, `None` until one has fully arrived. After an error the
    /// stream cannot be resynchronised: the connection must be dropped.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, PacketError> {
        let Some(header) = FrameHeader::parse(&self.pending)? else {
            return Ok(None);
        };
        let size = header.frame_len();
        if size > self.limit {
            return Err(PacketError::TooLarge {
                size,
                limit: self.limit,
            });
        }
        if self.pending.len() < size {
            return Ok(None);
        }
        Ok(Some(self.pending.drain(..size).collect()))
    }
}

/// The fixed header's sizes: one type byte, then the remaining length as a 1–4 byte varint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHeader {
    header_len: usize,
    body_len: usize,
}

impl FrameHeader {
    /// `None` while the remaining length has not fully arrived.
    fn parse(bytes: &[u8]) -> Result<Option<Self>, PacketError> {
        let mut body_len = 0usize;
        for (i, byte) in bytes.iter().skip(1).take(4).enumerate() {
            body_len |= usize::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(Some(Self {
                    header_len: 2 + i,
                    body_len,
                }));
            }
        }
        if bytes.len() >= 5 {
            // A fourth length byte that still says "more follows".
            return Err(PacketError::BadLength);
        }
        Ok(None)
    }

    fn frame_len(self) -> usize {
        self.header_len + self.body_len
    }
}

/// Decodes one whole frame from the broker.
///
/// `mqttrs` indexes into its input without bounds checks for some packet types, so the
/// fields it reads unchecked are verified first, and packet types only a client sends are
/// refused undecoded.
pub fn decode(frame: &[u8]) -> Result<Packet<'_>, PacketError> {
    let header = FrameHeader::parse(frame)?.ok_or(PacketError::Truncated)?;
    if header.frame_len() != frame.len() {
        return Err(PacketError::Truncated);
    }
    check_body(frame[0], &frame[header.header_len..])?;
    match mqttrs::decode_slice(frame) {
        Ok(Some(packet)) => Ok(packet),
        Ok(None) => Err(PacketError::Truncated),
        Err(error) => Err(PacketError::Codec(error)),
    }
}

/// Checks that the body holds what `mqttrs` reads without bounds checks.
fn check_body(first: u8, body: &[u8]) -> Result<(), PacketError> {
    let needed = match first >> 4 {
        // CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK: two bytes come first.
        2 | 4..=7 | 9 | 11 => 2,
        3 => publish_fields_len(first, body)?,
        // PINGREQ, PINGRESP, DISCONNECT: no body.
        12..=14 => 0,
        // CONNECT, SUBSCRIBE, UNSUBSCRIBE and the reserved types.
        kind => return Err(PacketError::Unexpected(kind)),
    };
    if body.len() < needed {
        return Err(PacketError::Truncated);
    }
    Ok(())
}

/// The length of a PUBLISH's topic and packet id, which must fit in its body.
fn publish_fields_len(first: u8, body: &[u8]) -> Result<usize, PacketError> {
    let [high, low, ..] = *body else {
        return Err(PacketError::Truncated);
    };
    let topic_len = usize::from(u16::from_be_bytes([high, low]));
    let has_pid = first & 0b0110 != 0;
    Ok(2 + topic_len + if has_pid { 2 } else { 0 })
}

/// Encodes one packet for the broker, refusing what is over `limit` bytes.
pub fn encode(packet: &Packet<'_>, limit: usize) -> Result<Vec<u8>, PacketError> {
    let mut frame = vec![0; size_bound(packet)];
    let size = mqttrs::encode_slice(packet, &mut frame).map_err(PacketError::Codec)?;
    if size > limit {
        return Err(PacketError::TooLarge { size, limit });
    }
    frame.truncate(size);
    Ok(frame)
}

/// An upper bound of a packet's encoded size, so the encoder never runs out of room.
fn size_bound(packet: &Packet<'_>) -> usize {
    // The fixed header: a type byte and at most four length bytes.
    const FIXED: usize = 5;
    let body = match packet {
        Packet::Connect(connect) => {
            let will = connect
                .last_will
                .as_ref()
                .map_or(0, |w| 4 + w.topic.len() + w.message.len());
            let username = connect.username.map_or(0, |u| 2 + u.len());
            let password = connect.password.map_or(0, |p| 2 + p.len());
            // Protocol name and level, flags, keep-alive, client id.
            10 + 2 + connect.client_id.len() + will + username + password
        }
        Packet::Publish(publish) => 2 + publish.topic_name.len() + 2 + publish.payload.len(),
        Packet::Subscribe(subscribe) => {
            2 + subscribe
                .topics
                .iter()
                .map(|t| 3 + t.topic_path.len())
                .sum::<usize>()
        }
        Packet::Unsubscribe(unsubscribe) => {
            2 + unsubscribe
                .topics
                .iter()
                .map(|t| 2 + t.len())
                .sum::<usize>()
        }
        Packet::Suback(suback) => 2 + suback.return_codes.len(),
        _ => 2,
    };
    FIXED + body
}

#[cfg(test)]
mod tests {
    use mqttrs::{
        Connack, Connect, ConnectReturnCode, LastWill, Pid, Protocol, Publish, QoS, QosPid,
    };

    use super::*;

    const LIMIT: usize = 128 * 1024;

    fn publish(topic: &str, payload: &[u8]) -> Vec<u8> {
        let packet = Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtMostOnce,
            retain: false,
            topic_name: topic,
            payload,
        });
        encode(&packet, LIMIT).expect("encodes")
    }

    fn connack() -> Vec<u8> {
        let packet = Packet::Connack(Connack {
            session_present: false,
            code: ConnectReturnCode::Accepted,
        });
        encode(&packet, LIMIT).expect("encodes")
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_packet_split_across_messages_is_reassembled() {
        let frame = publish("bob/incoming", &[b'x'; 300]);
        let mut buffer = FrameBuffer::new(LIMIT);
        for piece in frame.chunks(7) {
            assert_eq!(buffer.next_frame(), Ok(None));
            buffer.push(piece);
        }
        assert_eq!(buffer.next_frame(), Ok(Some(frame)));
        assert_eq!(buffer.next_frame(), Ok(None));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn several_packets_in_one_message_come_out_one_by_one() {
        let first = connack();
        let second = publish("a", b"1");
        let third = publish("b", &[b'2'; 200]);
        let mut message = [first.clone(), second.clone(), third.clone()].concat();
        let tail = message.split_off(message.len() - 10);
        let mut buffer = FrameBuffer::new(LIMIT);
        buffer.push(&message);
        assert_eq!(buffer.next_frame(), Ok(Some(first)));
        assert_eq!(buffer.next_frame(), Ok(Some(second)));
        assert_eq!(buffer.next_frame(), Ok(None));
        buffer.push(&tail);
        assert_eq!(buffer.next_frame(), Ok(Some(third)));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn an_oversized_packet_is_refused_from_its_header_alone() {
        let frame = publish("t", &[0; 2000]);
        let mut buffer = FrameBuffer::new(1000);
        buffer.push(&frame[..4]);
        assert!(matches!(
            buffer.next_frame(),
            Err(PacketError::TooLarge { limit: 1000, .. })
        ));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_remaining_length_of_five_bytes_is_malformed() {
        let mut buffer = FrameBuffer::new(LIMIT);
        buffer.push(&[0x30, 0xff, 0xff, 0xff]);
        assert_eq!(buffer.next_frame(), Ok(None));
        buffer.push(&[0xff]);
        assert_eq!(buffer.next_frame(), Err(PacketError::BadLength));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_publish_decodes_to_its_topic_and_payload() {
        let frame = publish("alice/incoming", b"{\"type\":\"x\"}");
        match decode(&frame) {
            Ok(Packet::Publish(p)) => {
                assert_eq!(p.topic_name, "alice/incoming");
                assert_eq!(p.payload, b"{\"type\":\"x\"}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn malformed_packets_are_errors_not_panics() {
        let bad: [&[u8]; 7] = [
            // PUBLISH whose topic is longer than the packet.
            &[0x30, 0x03, 0x00, 0x09, b'a'],
            // PUBLISH QoS 1 without room for its packet id.
            &[0x32, 0x03, 0x00, 0x01, b'a'],
            // PUBACK, SUBACK and CONNACK with empty bodies.
            &[0x40, 0x00],
            &[0x90, 0x00],
            &[0x20, 0x00],
            // A SUBSCRIBE (client only) and a frame whose length disagrees with its size.
            &[0x82, 0x00],
            &[0xd0, 0x00, 0x00],
        ];
        for frame in bad {
            assert!(decode(frame).is_err(), "{frame:?}");
        }
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn connect_carries_the_retained_will_and_keep_alive() {
        let packet = Packet::Connect(Connect {
            protocol: Protocol::MQTT311,
            keep_alive: 15,
            client_id: "peerchat-0123456789abcdef",
            clean_session: true,
            last_will: Some(LastWill {
                topic: "peerchat/presence/alice",
                message: b"{\"online\":false}",
                qos: QoS::AtLeastOnce,
                retain: true,
            }),
            username: None,
            password: None,
        });
        let frame = encode(&packet, LIMIT).expect("encodes");
        // A broker would decode it like this; `decode` refuses CONNECT as a client.
        assert_eq!(mqttrs::decode_slice(&frame), Ok(Some(packet)));
    }

    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    fn a_retained_qos1_publish_round_trips_and_big_ones_are_refused() {
        let pid = Pid::new() + 41;
        let packet = Packet::Publish(Publish {
            dup: false,
            qospid: QosPid::AtLeastOnce(pid),
            retain: true,
            topic_name: "peerchat/presence/alice",
            payload: b"{}",
        });
        let frame = encode(&packet, LIMIT).expect("encodes");
        assert_eq!(frame[0], 0x33);
        assert_eq!(decode(&frame), Ok(packet));
        let big = publish("t", &[0; 100]);
        let packet = decode(&big).expect("decodes");
        assert!(matches!(
            encode(&packet, 50),
            Err(PacketError::TooLarge { limit: 50, .. })
        ));
    }
}
