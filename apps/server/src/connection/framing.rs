//! MQTT frame reassembly: cuts a byte stream (TCP reads, WebSocket messages) into whole
//! packets, refusing an oversized one from its header alone.

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::{self, v4::Packet};
use thiserror::Error;

/// Why a stream of bytes is not acceptable MQTT.
#[derive(Debug, Error)]
pub enum FrameError {
    #[error("MQTT packet of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed MQTT packet: {0}")]
    Malformed(#[source] mqttbytes::Error),
}

impl From<mqttbytes::Error> for FrameError {
    fn from(error: mqttbytes::Error) -> Self {
        Self::Malformed(error)
    }
}

/// Bytes received but not yet cut into frames.
///
/// The size limit counts the packet's remaining length (variable header and payload), as
/// rumqttc and rumqttd do, so a client and the server configured with the same number agree. An
/// oversized packet is refused as soon as its fixed header arrives, before its body is buffered.
#[derive(Debug)]
pub struct FrameBuffer {
    pending: BytesMut,
    limit: usize,
}

impl FrameBuffer {
    pub fn new(limit: usize) -> Self {
        Self {
            pending: BytesMut::new(),
            limit,
        }
    }

    /// The buffer the next bytes from the socket go to (the reader reserves room).
    pub fn read_buffer(&mut self) -> &mut BytesMut {
        &mut self.pending
    }

    /// Lets go of the buffer's memory once every frame in it was taken: an idle connection
    /// then holds no buffer at all.
    pub fn release_if_empty(&mut self) {
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = BytesMut::new();
        }
    }

    /// Appends bytes that arrived as one chunk (a WebSocket message).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// Whether bytes of an unfinished packet are waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Cuts the next whole frame off the front, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Result<Option<BytesMut>, FrameError> {
        match self.frame_length(&self.pending)? {
            Some(length) => Ok(Some(self.pending.split_to(length))),
            None => Ok(None),
        }
    }

    /// The length of the frame at the start of `bytes`, if it is all there.
    fn frame_length(&self, bytes: &[u8]) -> Result<Option<usize>, FrameError> {
        match mqttbytes::check(bytes.iter(), self.limit) {
            Ok(header) => Ok(Some(header.frame_length())),
            Err(mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(mqttbytes::Error::PayloadSizeLimitExceeded(size)) => Err(FrameError::TooLarge {
                size,
                limit: self.limit,
            }),
            Err(other) => Err(other.into()),
        }
    }
}

/// Parses one whole frame cut by [`FrameBuffer`].
pub fn parse(mut frame: BytesMut) -> Result<Packet, FrameError> {
    Ok(Packet::read(&mut frame, usize::MAX)?)
}

/// Serialises a packet the gateway writes itself.
pub fn serialize(packet: &Packet) -> Result<Bytes, FrameError> {
    let mut bytes = BytesMut::with_capacity(packet.size());
    packet.write(&mut bytes, usize::MAX)?;
    Ok(bytes.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::{QoS, v4::Publish};

    const LIMIT: usize = 1024;

    fn publish(topic: &str, payload: &[u8]) -> Packet {
        Packet::Publish(Publish::new(topic, QoS::AtMostOnce, payload.to_vec()))
    }

    fn stream_of(packets: &[Packet]) -> Vec<u8> {
        packets
            .iter()
            .flat_map(|p| serialize(p).unwrap().to_vec())
            .collect()
    }

    fn drain(buffer: &mut FrameBuffer) -> Vec<Packet> {
        let mut packets = Vec::new();
        while let Some(frame) = buffer.next_frame().unwrap() {
            packets.push(parse(frame).unwrap());
        }
        packets
    }

    #[test]
    fn packets_split_at_every_chunk_boundary_are_reassembled() {
        let packets = vec![
            publish("alice/incoming", b"hello"),
            Packet::PingReq,
            publish("bob/incoming", &[7; 300]),
        ];
        let stream = stream_of(&packets);
        for chunk_size in 1..=stream.len() {
            let mut buffer = FrameBuffer::new(LIMIT);
            let mut received = Vec::new();
            for chunk in stream.chunks(chunk_size) {
                buffer.extend(chunk);
                received.extend(drain(&mut buffer));
            }
            assert_eq!(received, packets, "chunks of {chunk_size} bytes");
            assert!(buffer.is_empty());
        }
    }

    #[test]
    fn several_packets_in_one_chunk_come_out_one_by_one() {
        let packets = vec![
            Packet::PingReq,
            publish("a/incoming", b"x"),
            Packet::Disconnect,
        ];
        let mut buffer = FrameBuffer::new(LIMIT);
        buffer.extend(&stream_of(&packets));
        assert_eq!(drain(&mut buffer), packets);
    }

    #[test]
    fn an_oversized_packet_is_refused_from_its_header_alone() {
        let stream = stream_of(&[publish("a/incoming", &[0; LIMIT + 1])]);
        let mut buffer = FrameBuffer::new(LIMIT);
        buffer.extend(&stream[..4]);
        assert!(matches!(
            buffer.next_frame(),
            Err(FrameError::TooLarge { limit: LIMIT, .. })
        ));
    }

    #[test]
    fn a_packet_at_the_limit_passes() {
        // Remaining length = 2 (topic length) + 10 (topic) + payload.
        let packet = publish("a/incoming", &[0; LIMIT - 12]);
        let mut buffer = FrameBuffer::new(LIMIT);
        buffer.extend(&stream_of(std::slice::from_ref(&packet)));
        assert_eq!(drain(&mut buffer), vec![packet]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut buffer = FrameBuffer::new(LIMIT);
        buffer.extend(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(matches!(buffer.next_frame(), Err(FrameError::Malformed(_))));

        // A well-framed packet of an unknown type.
        assert!(parse(BytesMut::from(&[0xf0, 0x00][..])).is_err());
        // A publish whose topic length runs past its end.
        assert!(parse(BytesMut::from(&[0x30, 0x03, 0x00, 0x09, b'a'][..])).is_err());
        // A CONNECT with a truncated body.
        assert!(parse(BytesMut::from(&[0x10, 0x02, 0x00, 0x04][..])).is_err());
    }
}
