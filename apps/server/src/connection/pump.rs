//! The async shell around one [`Connection`]: reads the client's packets, carries out what
//! the connection asks (packets to write, hub requests, the close), writes what the hub
//! delivers, and keeps the connection's timers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use peerchat_core::protocol::{MAX_MQTT_PACKET_BYTES, SignalMessage, decode};
use rumqttc::mqttbytes::v4::Packet;
use tokio::sync::Notify;
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{Instrument, debug, info, info_span, warn};

use super::{
    ClientInput, ClientOutput, CloseReason, Connection, ConnectionId, FrameBuffer, Output, Request,
    parse, serialize,
};
use crate::hub::{Deliveries, Hub, Outbox};
use crate::limits::Limits;
use crate::packets::unix_millis;

/// How long a client refused a name keeps its connection, so the refusal reaches it before
/// the close does.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);

/// How long deliveries to an original client pause after an offer or answer reaches it. It
/// drops the ICE candidates that arrive while it applies the description (a few ms in a
/// browser); with none left a setup fails. The original server's own pace gave it that
/// time; this server delivers faster, so it leaves it room, even on a busy machine.
pub const SETTLE_TIME: Duration = Duration::from_millis(100);

/// What every connection's pump shares: the hub, the limits and the connection numbering.
pub struct ConnectionContext<H> {
    pub hub: Arc<H>,
    pub limits: Limits,
    next_id: AtomicU64,
    epoch: Instant,
}

impl<H: Hub> ConnectionContext<H> {
    pub fn new(hub: Arc<H>, limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            hub,
            limits,
            next_id: AtomicU64::new(1),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn instant(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms)
    }
}

/// Serves one client connection until it ends; never fails, logs why it ended.
pub async fn serve<H: Hub, I: ClientInput, O: ClientOutput>(
    cx: &ConnectionContext<H>,
    input: I,
    output: O,
    peer: SocketAddr,
    transport: &'static str,
) {
    let id = cx.next_id.fetch_add(1, Ordering::Relaxed);
    let span = info_span!("client", connection = id, %peer, transport);
    async move {
        debug!("connection opened");
        let (outbox, deliveries) = Outbox::new(cx.limits.outbox_bytes);
        let closer = Arc::new(Notify::new());
        cx.hub.attach(id, outbox, closer.clone());
        let connection = Connection::new(cx.limits, fresh_nonce(), cx.now_ms());
        let pump = Pump {
            cx,
            id,
            connection,
            input,
            output,
            deliveries,
            settling: None,
        };
        let reason = pump.run(&closer).await;
        cx.hub.detach(id).await;
        match reason {
            CloseReason::ClientLeft | CloseReason::ClientGone | CloseReason::TakenOver => {
                info!("connection closed: {reason}")
            }
            reason => warn!("connection cut: {reason}"),
        }
    }
    .instrument(span)
    .await
}

struct Pump<'a, H, I, O> {
    cx: &'a ConnectionContext<H>,
    id: ConnectionId,
    connection: Connection,
    input: I,
    output: O,
    deliveries: Deliveries,
    /// Deliveries wait until then (see [`SETTLE_TIME`]).
    settling: Option<Instant>,
}

impl<H: Hub, I: ClientInput, O: ClientOutput> Pump<'_, H, I, O> {
    async fn run(mut self, closer: &Notify) -> CloseReason {
        let mut frames = FrameBuffer::new(MAX_MQTT_PACKET_BYTES);
        loop {
            if let Some(reason) = self.carry_out().await {
                return reason;
            }
            let deadline = self.connection.poll_timeout().map(|ms| self.cx.instant(ms));
            tokio::select! {
                biased;
                () = closer.notified() => self.connection.taken_over(),
                delivery = self.deliveries.next(), if self.settling.is_none() => match delivery {
                    Some(packet) => self.deliver(packet).await,
                    None => self.connection.handle_closed(),
                },
                () = sleep_until(self.settling.unwrap_or_else(far_future)), if self.settling.is_some() => {
                    self.settling = None;
                }
                read = self.input.read_into(frames.read_buffer()) => match read {
                    Ok(0) | Err(_) => self.connection.handle_closed(),
                    Ok(_) => {
                        if let Some(reason) = self.take_frames(&mut frames).await {
                            return reason;
                        }
                    }
                },
                () = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                    self.connection.handle_timeout(self.cx.now_ms());
                }
            }
        }
    }

    /// Writes a packet the hub delivered; after an offer or answer to a client that needs
    /// time to apply it, the next deliveries wait.
    async fn deliver(&mut self, packet: Bytes) {
        if self.connection.needs_time_to_settle() && describes_a_session(&packet) {
            self.settling = Some(Instant::now() + SETTLE_TIME);
        }
        if self.output.send(packet).await.is_err() {
            self.connection.handle_closed();
        }
    }

    /// Hands every whole packet received to the connection, one at a time, carrying out
    /// what each asks before the next is read: a publish right behind a `register` in the
    /// same read must find the name registered. The close reason if the connection ended.
    async fn take_frames(&mut self, frames: &mut FrameBuffer) -> Option<CloseReason> {
        loop {
            match frames
                .next_frame()
                .and_then(|frame| frame.map(parse).transpose())
            {
                Ok(Some(packet)) => self.connection.handle_packet(packet, self.cx.now_ms()),
                Ok(None) => break,
                Err(error) => self.connection.handle_malformed(error.to_string()),
            }
            if let Some(reason) = self.carry_out().await {
                return Some(reason);
            }
        }
        frames.release_if_empty();
        None
    }

    /// Carries out the connection's outputs; the close reason once it ends.
    async fn carry_out(&mut self) -> Option<CloseReason> {
        while let Some(output) = self.connection.poll_output() {
            match output {
                Output::Send(packet) => self.send(&packet).await,
                Output::Hub(request) => self.ask_hub(request).await,
                Output::Close { reason, linger } => {
                    if linger {
                        sleep(REFUSAL_GRACE).await;
                    }
                    self.output.close().await.ok();
                    return Some(reason);
                }
            }
        }
        None
    }

    async fn send(&mut self, packet: &Packet) {
        let sent = match serialize(packet) {
            Ok(bytes) => self.output.send(bytes).await.is_ok(),
            Err(error) => {
                warn!(%error, "could not write a packet");
                false
            }
        };
        if !sent {
            self.connection.handle_closed();
        }
    }

    async fn ask_hub(&mut self, request: Request) {
        let hub = &self.cx.hub;
        match request {
            Request::Register(claim) => {
                let name = claim.name.clone();
                let outcome = hub.register(self.id, claim).await;
                self.connection.registered(&name, outcome);
            }
            Request::Listen(listening) => hub.listen(self.id, listening).await,
            Request::Deliver { target, publish } => {
                let Ok(packet) = serialize(&Packet::Publish(publish)) else {
                    return;
                };
                if !hub.deliver(&target, packet).await {
                    self.connection.undeliverable(&target, unix_millis());
                }
            }
            Request::Watch(user) => hub.watch(self.id, &user).await,
            Request::Unwatch(user) => hub.unwatch(self.id, &user).await,
        }
    }
}

/// Whether `packet` (a PUBLISH the hub delivers) carries an offer or an answer.
fn describes_a_session(packet: &Bytes) -> bool {
    let Ok(Packet::Publish(publish)) = parse(BytesMut::from(&packet[..])) else {
        return false;
    };
    matches!(
        decode(&publish.payload),
        Ok(SignalMessage::SignalOffer { .. } | SignalMessage::SignalAnswer { .. })
    )
}

/// A register challenge: 16 random bytes, base64url.
fn fresh_nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system supplies randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}
