//! The browser client's MQTT reading: WebSocket messages of any size and content are cut
//! into frames and decoded. It must never panic or loop, whatever the broker (or a
//! man in the middle) sends.
//!
//! The input is split into WebSocket messages at 0xFF bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerchat_core::mqtt_frames::{FrameBuffer, decode};
use peerchat_core::protocol::MAX_MQTT_PACKET_BYTES;

fuzz_target!(|data: &[u8]| {
    let mut frames = FrameBuffer::new(MAX_MQTT_PACKET_BYTES);
    for message in data.split(|b| *b == 0xFF) {
        frames.push(message);
        loop {
            match frames.next_frame() {
                Ok(Some(frame)) => {
                    let _ = decode(&frame);
                }
                Ok(None) => break,
                // The stream cannot be resynchronised: the client drops the connection.
                Err(_) => return,
            }
        }
    }
});
