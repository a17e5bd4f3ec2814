//! The client → broker pump: reads every packet the client sends, answers registrations,
//! reports messages to offline users, and forwards the rest to the broker unchanged.

use std::collections::HashSet;
use std::time::Instant;

use bytes::BytesMut;
use peerchat_core::protocol::{REGISTER_TOPIC, SignalMessage, decode, user_of_incoming_topic};
use rumqttc::mqttbytes::{
    QoS,
    v4::{Packet, PubAck, PubComp, PubRec, Publish, SubAck, SubscribeReasonCode},
};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Notify, mpsc};
use tracing::{debug, info, warn};

use super::downlink::ToClient;
use super::{
    ClientInput, FrameBuffer, Gateway, SessionEnd, SessionError, inject, parse, serialize,
};
use crate::acl::Acl;
use crate::registry::{ConnectionId, Registration};

/// What becomes of one packet from the client.
enum Verdict {
    Forward,
    Drop,
    /// The client asked for a name in use: stop talking to the broker.
    Refuse,
    /// Forward, then end the connection.
    Disconnect,
}

/// The client → broker pump and what it knows about the client.
pub(super) struct Uplink<'a> {
    gateway: &'a Gateway,
    id: ConnectionId,
    to_client: &'a mpsc::Sender<ToClient>,
    /// Set once the client's register was refused: from then on its packets go nowhere.
    refused: bool,
    /// Packet ids of QoS 2 publishes the gateway answered, whose PUBREL it answers too.
    answered_qos2: HashSet<u16>,
    /// What this client may read and write (see `acl`).
    acl: Acl,
    /// The client's last will, `(topic, payload)`: the broker publishes it if the client
    /// vanishes, so it must speak only for the client's own presence.
    will: Option<(String, Vec<u8>)>,
}

impl<'a> Uplink<'a> {
    pub(super) fn new(
        gateway: &'a Gateway,
        id: ConnectionId,
        to_client: &'a mpsc::Sender<ToClient>,
        will: Option<(String, Vec<u8>)>,
    ) -> Self {
        Self {
            gateway,
            id,
            to_client,
            refused: false,
            answered_qos2: HashSet::new(),
            acl: if gateway.rules {
                Acl::new(Instant::now())
            } else {
                Acl::open()
            },
            will,
        }
    }

    pub(super) async fn run<I: ClientInput>(
        mut self,
        mut input: I,
        mut frames: FrameBuffer,
        mut broker: OwnedWriteHalf,
        closer: &Notify,
    ) -> Result<SessionEnd, SessionError> {
        let mut forward = BytesMut::new();
        loop {
            while let Some(frame) = frames.next_frame().map_err(SessionError::ClientFrame)? {
                let packet = parse(&frame).map_err(SessionError::ClientFrame)?;
                match self.on_packet(packet).await? {
                    Verdict::Forward => forward.extend_from_slice(&frame),
                    Verdict::Drop => {}
                    Verdict::Refuse => {
                        send_to_broker(&mut broker, &mut forward).await?;
                        // A DISCONNECT discards the client's last will: the refused client's
                        // "offline" will would otherwise speak for the name's owner.
                        end_broker_session(&mut broker).await;
                    }
                    Verdict::Disconnect => {
                        forward.extend_from_slice(&frame);
                        send_to_broker(&mut broker, &mut forward).await?;
                        broker.shutdown().await.ok();
                        return Ok(SessionEnd::ClientDisconnected);
                    }
                }
            }
            if !self.refused {
                send_to_broker(&mut broker, &mut forward).await?;
            }
            forward.clear();

            tokio::select! {
                biased;
                () = closer.notified() => {
                    // The same client is back on a newer connection; this one's will would
                    // announce it offline.
                    end_broker_session(&mut broker).await;
                    self.to_client.send(ToClient::Close).await.ok();
                    return Ok(SessionEnd::TakenOver);
                }
                read = input.read_into(frames.read_buffer()) => {
                    let gone = match read {
                        Ok(0) => Ok(SessionEnd::ClientClosed),
                        Ok(_) => continue,
                        Err(error) => Err(SessionError::Client(error)),
                    };
                    if !self.will_is_its_own() {
                        // A will in someone else's name is dropped with the client.
                        warn!("discarding a last will that speaks for another name");
                        end_broker_session(&mut broker).await;
                    }
                    return gone;
                }
            }
        }
    }

    async fn on_packet(&mut self, packet: Packet) -> Result<Verdict, SessionError> {
        if self.refused {
            return Ok(Verdict::Drop);
        }
        match packet {
            Packet::Connect(_) => Err(SessionError::SecondConnect),
            Packet::Subscribe(subscribe) => {
                let refusals: Vec<_> = (subscribe.filters.iter())
                    .filter_map(|f| self.acl.subscribe(&f.path).err().map(|why| (&f.path, why)))
                    .collect();
                if refusals.is_empty() {
                    return Ok(Verdict::Forward);
                }
                warn!(?refusals, "subscription refused");
                let failures = vec![SubscribeReasonCode::Failure; subscribe.filters.len()];
                self.inject(Packet::SubAck(SubAck::new(subscribe.pkid, failures)))
                    .await;
                Ok(Verdict::Drop)
            }
            Packet::Publish(publish) if publish.topic == REGISTER_TOPIC => {
                self.acknowledge(&publish).await;
                if let Err(why) = self.acl.publish(&publish.topic, &[], Instant::now()) {
                    warn!(why, "register dropped");
                    return Ok(Verdict::Drop);
                }
                Ok(self.on_register(&publish).await)
            }
            Packet::Publish(publish) => {
                if let Err(why) = self
                    .acl
                    .publish(&publish.topic, &publish.payload, Instant::now())
                {
                    warn!(topic = %publish.topic, why, "publish refused");
                    // Acknowledged as the broker would, so the client does not send it again.
                    self.acknowledge(&publish).await;
                    return Ok(Verdict::Drop);
                }
                // An empty payload only clears a retained message: nothing to deliver.
                if let Some(target) = user_of_incoming_topic(&publish.topic)
                    && !publish.payload.is_empty()
                {
                    self.report_if_offline(target).await;
                }
                Ok(Verdict::Forward)
            }
            Packet::PubRel(release) if self.answered_qos2.remove(&release.pkid) => {
                self.inject(Packet::PubComp(PubComp::new(release.pkid)))
                    .await;
                Ok(Verdict::Drop)
            }
            Packet::Disconnect => Ok(Verdict::Disconnect),
            _ => Ok(Verdict::Forward),
        }
    }

    /// Registers never reach the broker, so the gateway acknowledges them as the broker would.
    async fn acknowledge(&mut self, publish: &Publish) {
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.inject(Packet::PubAck(PubAck::new(publish.pkid))).await,
            QoS::ExactlyOnce => {
                self.answered_qos2.insert(publish.pkid);
                self.inject(Packet::PubRec(PubRec::new(publish.pkid))).await
            }
        }
    }

    async fn on_register(&mut self, publish: &Publish) -> Verdict {
        let (username, session) = match decode(&publish.payload) {
            Ok(SignalMessage::Register {
                username, session, ..
            }) => (username, session),
            Ok(other) => {
                warn!(message = ?other, "ignored a non-register message on {REGISTER_TOPIC}");
                return Verdict::Drop;
            }
            Err(error) => {
                warn!("ignored a malformed register: {error}");
                return Verdict::Drop;
            }
        };
        let registration = match self.acl.register(&username) {
            Ok(()) => self
                .gateway
                .register(self.id, &username, session.as_deref()),
            Err(why) => {
                warn!(user = %username, why, "register refused");
                Registration::Taken
            }
        };
        match registration {
            Registration::Registered => {
                info!(user = %username, "registered");
                self.inject(Packet::Publish(inject::register_ack(&username, true)))
                    .await;
                Verdict::Drop
            }
            Registration::TookOver { previous } => {
                info!(user = %username, previous, "registered, replacing an older connection of the same session");
                self.inject(Packet::Publish(inject::register_ack(&username, true)))
                    .await;
                Verdict::Drop
            }
            Registration::Taken => {
                info!(user = %username, "refused: the name is in use");
                self.refused = true;
                let refusal = inject::register_ack(&username, false);
                self.to_client
                    .send(ToClient::FinalPacket(Packet::Publish(refusal)))
                    .await
                    .ok();
                Verdict::Refuse
            }
        }
    }

    /// Whether the client's last will, if any, is its own presence record going offline.
    fn will_is_its_own(&self) -> bool {
        self.will
            .as_ref()
            .is_none_or(|(topic, payload)| self.acl.may_leave_will(topic, payload))
    }

    async fn report_if_offline(&mut self, target: &str) {
        if let Some(sender) = self.gateway.undeliverable(self.id, target) {
            debug!(user = %sender, target, "message to an offline user");
            let failure = inject::delivery_failed(&sender, target, inject::unix_millis());
            self.inject(Packet::Publish(failure)).await;
        }
    }

    /// Queues a packet for the client. The downlink only hangs up when the session is ending
    /// anyway, so a failed send needs no handling.
    async fn inject(&self, packet: Packet) {
        self.to_client.send(ToClient::Packet(packet)).await.ok();
    }
}

async fn send_to_broker(
    broker: &mut OwnedWriteHalf,
    bytes: &mut BytesMut,
) -> Result<(), SessionError> {
    if !bytes.is_empty() {
        broker
            .write_all(bytes)
            .await
            .map_err(SessionError::Broker)?;
        bytes.clear();
    }
    Ok(())
}

/// Ends the client's broker session as a clean DISCONNECT would, discarding its last will.
async fn end_broker_session(broker: &mut OwnedWriteHalf) {
    if let Ok(disconnect) = serialize(&Packet::Disconnect) {
        broker.write_all(&disconnect).await.ok();
    }
    broker.shutdown().await.ok();
}
