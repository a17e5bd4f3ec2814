//! A raw WebSocket client: the handshake and frames by hand, so a test sees exactly how the
//! server cuts what it sends into messages.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::Packet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::PATIENCE;

pub struct RawWebSocket {
    stream: TcpStream,
}

impl RawWebSocket {
    /// Opens `ws://127.0.0.1:<port><path>` with subprotocol `mqtt`; panics unless upgraded.
    pub async fn open(port: u16, path: &str) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            timeout(PATIENCE, stream.read_exact(&mut byte))
                .await
                .unwrap()
                .unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Self { stream }
    }

    /// Sends one MQTT packet as one masked binary message.
    pub async fn send_packet(&mut self, packet: &Packet) {
        let mut payload = BytesMut::new();
        packet.write(&mut payload, usize::MAX).unwrap();
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut frame = vec![0x82];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.unwrap();
    }

    /// The payload of the next data message (control frames skipped).
    pub async fn next_message(&mut self) -> Vec<u8> {
        timeout(PATIENCE, async {
            loop {
                let mut head = [0u8; 2];
                self.stream.read_exact(&mut head).await.unwrap();
                let length = match head[1] & 0x7f {
                    126 => {
                        let mut n = [0u8; 2];
                        self.stream.read_exact(&mut n).await.unwrap();
                        u16::from_be_bytes(n) as usize
                    }
                    127 => {
                        let mut n = [0u8; 8];
                        self.stream.read_exact(&mut n).await.unwrap();
                        u64::from_be_bytes(n) as usize
                    }
                    n => n as usize,
                };
                let mut payload = vec![0u8; length];
                self.stream.read_exact(&mut payload).await.unwrap();
                assert_eq!(head[0] & 0x80, 0x80, "messages come in single frames");
                if head[0] & 0x0f == 0x2 {
                    return payload;
                }
            }
        })
        .await
        .expect("a message in time")
    }
}
