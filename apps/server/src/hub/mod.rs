//! The hub: what connects the connections. It holds the name registry, hands each message to
//! the connection that holds its recipient's name, and tells watchers when a name comes and
//! goes (presence is the registry's, not something clients publish).
//!
//! [`Hub`] is what a connection's pump needs; [`LocalHub`] serves every connection of one
//! server process from memory; [`ClusterHub`] makes the process one gateway of many over a
//! NATS cluster, which routes the messages and holds the names. Both decide names by the
//! same rule ([`NameRecord::claim`]) and say presence with the same records
//! ([`presence_record`]).

pub mod cluster;
mod local;
pub mod names_file;
mod registry;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::{Notify, mpsc};

pub use cluster::{ClusterError, ClusterHub, ClusterOptions};
pub use local::LocalHub;
pub use registry::{Binding, Claim, Holder, NameRecord, Outcome, Registry};

use crate::connection::{ConnectionId, Registered, serialize};
use crate::packets;

/// What a connection's pump asks of the hub.
pub trait Hub: Send + Sync + 'static {
    /// A new connection: messages for it go to `outbox`; `closer` ends it (its name was
    /// taken over).
    fn attach(&self, id: ConnectionId, outbox: Outbox, closer: Arc<Notify>);

    /// Decides a register (see [`NameRecord::claim`]); on success the name is `id`'s and
    /// its watchers hear it is online.
    fn register(&self, id: ConnectionId, claim: Claim) -> impl Future<Output = Registered> + Send;

    /// Whether messages to `id`'s name reach it (its inbox is subscribed).
    fn listen(&self, id: ConnectionId, listening: bool) -> impl Future<Output = ()> + Send;

    /// Hands `packet` (a PUBLISH on `target`'s inbox) to `target`'s holder; `false` if
    /// nobody holds `target`.
    fn deliver(&self, target: &str, packet: Bytes) -> impl Future<Output = bool> + Send;

    /// Sends `id` `user`'s presence record now, and again whenever it changes.
    fn watch(&self, id: ConnectionId, user: &str) -> impl Future<Output = ()> + Send;

    fn unwatch(&self, id: ConnectionId, user: &str) -> impl Future<Output = ()> + Send;

    /// The connection ended: its name is free and its watches end.
    fn detach(&self, id: ConnectionId) -> impl Future<Output = ()> + Send;
}

/// `user`'s presence record as a watcher receives it: online under the holder's session
/// (`Some`, empty if the holder sent none) or offline (`None`). `first`: the copy a new
/// watcher gets, marked retained as a broker would.
pub fn presence_record(user: &str, holder_session: Option<&str>, first: bool) -> Option<Bytes> {
    let record = packets::presence(
        user,
        holder_session.unwrap_or_default(),
        holder_session.is_some(),
        first,
    );
    serialize(&rumqttc::mqttbytes::v4::Packet::Publish(record)).ok()
}

/// Where the hub puts messages for one connection: a queue bounded in bytes, so a client
/// that does not read costs the server at most that much. What does not fit is dropped.
#[derive(Debug, Clone)]
pub struct Outbox {
    queue: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// The connection's end of its [`Outbox`].
#[derive(Debug)]
pub struct Deliveries {
    queue: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    /// An outbox holding at most `limit` bytes, and its receiving end.
    pub fn new(limit: usize) -> (Self, Deliveries) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let outbox = Self {
            queue,
            queued: queued.clone(),
            limit,
        };
        (
            outbox,
            Deliveries {
                queue: receiver,
                queued,
            },
        )
    }

    /// Queues `packet`; `false` if it does not fit (or the connection is gone).
    pub fn push(&self, packet: Bytes) -> bool {
        let size = packet.len();
        if self.queued.fetch_add(size, Ordering::Relaxed) + size > self.limit {
            self.queued.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        self.queue.send(packet).is_ok()
    }
}

impl Deliveries {
    /// The next packet for the client; `None` once the hub let go of the outbox.
    pub async fn next(&mut self) -> Option<Bytes> {
        let packet = self.queue.recv().await?;
        self.queued.fetch_sub(packet.len(), Ordering::Relaxed);
        Some(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_outbox_holds_at_most_its_limit() {
        let (outbox, mut deliveries) = Outbox::new(10);
        assert!(outbox.push(Bytes::from_static(b"123456")));
        assert!(!outbox.push(Bytes::from_static(b"123456")));
        assert_eq!(deliveries.next().await.unwrap().as_ref(), b"123456");
        assert!(outbox.push(Bytes::from_static(b"1234567890")));
    }
}
