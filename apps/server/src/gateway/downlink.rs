//! The broker → client pump: forwards the broker's whole frames and writes the gateway's own
//! packets (acks, refusals, delivery failures) between them, never inside one.

use peerchat_core::protocol::MAX_MQTT_PACKET_BYTES;
use rumqttc::mqttbytes::v4::Packet;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tokio::time::sleep;

use super::{
    BROKER_FRAME_SLACK, ClientOutput, FrameBuffer, REFUSAL_GRACE, SessionEnd, SessionError,
    serialize,
};

/// What the downlink writes to the client besides the broker's frames.
#[derive(Debug)]
pub(super) enum ToClient {
    Packet(Packet),
    /// Send this, wait [`REFUSAL_GRACE`], close.
    FinalPacket(Packet),
    Close,
}

/// The broker → client pump: whole frames from the broker, and the gateway's own packets
/// between them.
pub(super) async fn downlink<O: ClientOutput>(
    mut broker: OwnedReadHalf,
    mut output: O,
    mut commands: mpsc::Receiver<ToClient>,
) -> Result<SessionEnd, SessionError> {
    let mut frames = FrameBuffer::new(MAX_MQTT_PACKET_BYTES + BROKER_FRAME_SLACK);
    loop {
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                Some(ToClient::Packet(packet)) => {
                    let bytes = serialize(&packet).map_err(SessionError::BrokerFrame)?;
                    output.send(bytes).await.map_err(SessionError::Client)?;
                }
                Some(ToClient::FinalPacket(packet)) => {
                    let bytes = serialize(&packet).map_err(SessionError::BrokerFrame)?;
                    output.send(bytes).await.map_err(SessionError::Client)?;
                    sleep(REFUSAL_GRACE).await;
                    output.close().await.ok();
                    return Ok(SessionEnd::Refused);
                }
                Some(ToClient::Close) | None => {
                    output.close().await.ok();
                    return Ok(SessionEnd::TakenOver);
                }
            },
            read = broker.read_buf(frames.read_buffer()) => {
                acknowledge_at_once(&broker);
                if read.map_err(SessionError::Broker)? == 0 {
                    output.close().await.ok();
                    return Ok(SessionEnd::BrokerClosed);
                }
                if let Some(chunk) = frames.whole_frames().map_err(SessionError::BrokerFrame)? {
                    output.send(chunk).await.map_err(SessionError::Client)?;
                }
            }
        }
    }
}

/// Asks the kernel to acknowledge what the broker sent without the usual delay.
///
/// rumqttd does not disable Nagle's algorithm on its sockets, so a second small packet it
/// writes (an answer right after an offer, a candidate after a description) waits until the
/// first is acknowledged; Linux delays that acknowledgement by up to 40 ms. Quick-ack mode is
/// not sticky, hence once per read. Measured on loopback: connection setup through the server
/// went from 27 ms to the Mosquitto figure.
fn acknowledge_at_once(broker: &OwnedReadHalf) {
    let stream: &tokio::net::TcpStream = broker.as_ref();
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_quickack(true) {
        tracing::debug!(%error, "quick-ack not available");
    }
}
