//! What a gateway runs besides its connections: heartbeats out and in, close orders from
//! other gateways, the liveness tick, and the per-name subscriptions (inboxes and presence).
//! Every task holds the hub weakly and ends with it.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_nats::Subscriber;
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::StreamExt;
use tokio::time::{MissedTickBehavior, interval};
use tracing::{debug, info, warn};

use super::liveness::HEARTBEAT_EVERY;
use super::record::{self, PresenceNote, Seat};
use super::subjects;
use super::{ClusterHub, Subscription, announce};
use crate::connection::ConnectionId;

/// How long a read of the whole bucket waits for its next entry before it counts as done.
const SWEEP_SILENCE: Duration = Duration::from_secs(2);

/// Starts heartbeats, close orders and the liveness tick.
pub(super) async fn start(hub: &Arc<ClusterHub>) -> Result<(), async_nats::SubscribeError> {
    let heartbeats = hub.client.subscribe(hub.subjects.heartbeats()).await?;
    let orders = (hub.client)
        .subscribe(hub.subjects.close_orders(&hub.gateway))
        .await?;
    tokio::spawn(hear_heartbeats(Arc::downgrade(hub), heartbeats));
    tokio::spawn(take_close_orders(Arc::downgrade(hub), orders));
    tokio::spawn(beat(Arc::downgrade(hub)));
    tokio::spawn(watch_liveness(Arc::downgrade(hub)));
    Ok(())
}

/// Publishes this gateway's heartbeat every [`HEARTBEAT_EVERY`] (a publish may wait while
/// NATS is out of reach: nothing else waits on it).
async fn beat(hub: Weak<ClusterHub>) {
    let mut ticks = interval(HEARTBEAT_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let beat = Bytes::from(hub.gateway.clone());
        if let Err(e) = hub.client.publish(hub.subjects.heartbeats(), beat).await {
            debug!("heartbeat not sent: {e}");
        }
    }
}

/// Looks at everyone's heartbeats every [`HEARTBEAT_EVERY`], never waiting on NATS itself
/// (so a gateway cut off still notices): what needs the bucket runs on its own, one round
/// at a time.
async fn watch_liveness(hub: Weak<ClusterHub>) {
    let mut ticks = interval(HEARTBEAT_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut cleanup: Option<tokio::task::JoinHandle<()>> = None;
    loop {
        ticks.tick().await;
        let Some(strong) = hub.upgrade() else {
            return;
        };
        let Cleanup {
            orphaned,
            mut sweep,
            unreleased,
        } = look_at_liveness(&strong);
        if cleanup.as_ref().is_some_and(|task| !task.is_finished()) {
            // The last round still works; what it did not get to comes back next time.
            let mut state = strong.state();
            state.unreleased.extend(unreleased);
            state.unswept.append(&mut sweep);
            continue;
        }
        if orphaned.is_empty() && unreleased.is_empty() && sweep.is_empty() {
            continue;
        }
        let hub = hub.clone();
        cleanup = Some(tokio::spawn(async move {
            let Some(hub) = hub.upgrade() else {
                return;
            };
            for name in orphaned {
                clear_dead_holder(&hub, &name).await;
            }
            for (name, connection) in unreleased {
                hub.release(&name, connection).await;
            }
            if !sweep.is_empty() {
                clear_every_dead_holder(&hub, &sweep).await;
            }
        }));
    }
}

async fn hear_heartbeats(hub: Weak<ClusterHub>, mut heartbeats: Subscriber) {
    while let Some(message) = heartbeats.next().await {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        if let Ok(gateway) = std::str::from_utf8(&message.payload) {
            hub.state().liveness.heard(gateway, Instant::now());
        }
    }
}

async fn take_close_orders(hub: Weak<ClusterHub>, mut orders: Subscriber) {
    while let Some(message) = orders.next().await {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let Some(connection) = std::str::from_utf8(&message.payload)
            .ok()
            .and_then(|text| text.parse().ok())
        else {
            continue;
        };
        if let Some(attached) = hub.state().connections.get(&connection) {
            info!(
                connection,
                "closed: its name was taken over through another gateway"
            );
            attached.closer.notify_one();
        }
    }
}

/// Asks `seat`'s gateway to close it: a newer connection of its client took its name.
pub(super) async fn order_close(hub: &ClusterHub, seat: &Seat) {
    let order = Bytes::from(seat.connection.to_string());
    if let Err(e) = (hub.client)
        .publish(hub.subjects.close_orders(&seat.gateway), order)
        .await
    {
        warn!(gateway = %seat.gateway, "could not order a stale connection closed: {e}");
    }
}

/// What the bucket needs after a look at the heartbeats.
struct Cleanup {
    /// Watched names whose holders' gateways died: their records to clear now.
    orphaned: Vec<String>,
    /// Gateways that died, whose every record this gateway clears (it sorts first).
    sweep: Vec<String>,
    /// Releases that failed, to try again.
    unreleased: Vec<(String, ConnectionId)>,
}

/// Acts on what the heartbeats say: watchers of names held on gateways that just died hear
/// they left; a gateway cut off from the cluster closes its clients. Returns what the
/// bucket needs done.
fn look_at_liveness(hub: &ClusterHub) -> Cleanup {
    let now = Instant::now();
    {
        let mut state = hub.state();
        let state = &mut *state;
        let dead = state.liveness.newly_dead(now);
        for gateway in &dead {
            warn!(%gateway, "gateway silent: its names are free");
        }
        let mut orphaned = Vec::new();
        for (name, watched) in &mut state.watched {
            let holder = (watched.known.as_ref()).and_then(|known| known.holder.as_ref());
            if holder.is_some_and(|h| dead.contains(&h.gateway)) {
                announce(name, watched, &state.connections, &state.liveness);
                orphaned.push(name.clone());
            }
        }
        let cut_off = state.liveness.cut_off(now);
        if cut_off {
            if !state.fenced {
                warn!("cut off from the cluster: closing every client (they may reconnect)");
                for attached in state.connections.values() {
                    attached.closer.notify_one();
                }
            }
            // Every client that held a name is closed (now, or when the silence began).
            state.liveness.fenced(now);
        } else if state.fenced {
            info!("back in the cluster: taking clients again");
        }
        state.fenced = cut_off;
        if cut_off {
            return Cleanup {
                orphaned: Vec::new(),
                sweep: Vec::new(),
                unreleased: Vec::new(),
            };
        }
        let mut sweep = std::mem::take(&mut state.unswept);
        if !dead.is_empty() && state.liveness.first_alive(now) {
            sweep.extend(dead);
        }
        Cleanup {
            orphaned,
            sweep,
            unreleased: std::mem::take(&mut state.unreleased),
        }
    }
}

/// Reads the whole bucket once and clears every record held through one of the `dead`
/// gateways: the names nobody watches (watched ones are cleared at once by the watchers'
/// gateways). Until then such a record holds nothing anyway: every decision and every
/// presence record counts a dead gateway's holder as gone.
async fn clear_every_dead_holder(hub: &ClusterHub, dead: &[String]) {
    let mut entries = match hub.names.watch_with_history(">").await {
        Ok(entries) => entries,
        Err(e) => {
            warn!("could not read the names bucket to clear dead gateways' names: {e}");
            hub.state().unswept.extend_from_slice(dead);
            return;
        }
    };
    let mut cleared = 0usize;
    loop {
        // An empty bucket sends nothing at all.
        let entry = match tokio::time::timeout(SWEEP_SILENCE, entries.next()).await {
            Ok(Some(Ok(entry))) => entry,
            Ok(Some(Err(e))) => {
                warn!("reading the names bucket failed midway: {e}");
                break;
            }
            Ok(None) | Err(_) => break,
        };
        tracing::trace!(key = %entry.key, delta = entry.delta, "sweeping");
        let held_by_dead = entry.operation == kv::Operation::Put
            && record::decode(&entry.value).is_ok_and(|record| {
                (record.holder).is_some_and(|h| dead.contains(&h.connection.gateway))
            });
        if held_by_dead && let Some(name) = subjects::name_of_key(&entry.key) {
            clear_dead_holder(hub, &name).await;
            cleared += 1;
        }
        if entry.delta == 0 {
            break;
        }
    }
    info!(cleared, gateways = ?dead, "names of dead gateways cleared");
}

/// Rewrites `name`'s record without its holder if that holder's gateway is dead, and says
/// so on the name's presence subject. Every gateway watching the name tries; one wins.
async fn clear_dead_holder(hub: &ClusterHub, name: &str) {
    let cleared = super::names::rewrite(&hub.names, name, |record| {
        let before = record.holder.is_some();
        hub.forget_dead_holder(record);
        ((), before && record.holder.is_none())
    })
    .await;
    match cleared {
        Ok((_, Some((record, revision)))) => {
            info!(user = %name, "name of a dead gateway freed");
            hub.tell_presence(name, &record, revision).await;
        }
        Ok((_, None)) => {}
        Err(trouble) => warn!(user = %name, %trouble, "name of a dead gateway not cleared"),
    }
}

/// Subscribes to `name`'s inbox subject: each message goes to the connection holding the
/// name here, and is answered, so its sender knows someone holds it. The subscription is
/// flushed, so it is known to the cluster when this returns.
pub(super) async fn inbox(hub: &ClusterHub, name: &str) -> Result<Subscription, async_nats::Error> {
    let mut messages = hub.client.subscribe(hub.subjects.inbox(name)).await?;
    hub.client.flush().await?;
    let (weak, name) = (hub.me.clone(), name.to_owned());
    let task = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            let Some(hub) = weak.upgrade() else {
                return;
            };
            if hub.hand_over(&name, message.payload)
                && let Some(reply) = message.reply
                && let Err(e) = hub.client.publish(reply, Bytes::new()).await
            {
                debug!(user = %name, "delivery not confirmed: {e}");
            }
        }
    });
    Ok(Subscription(task.abort_handle()))
}

/// Subscribes to `name`'s presence subject, for this gateway's watchers of `name`.
pub(super) async fn presence(
    hub: &ClusterHub,
    name: &str,
) -> Result<Subscription, async_nats::Error> {
    // No flush needed: a change made before the subscription reaches the cluster is in
    // the bucket, which the watch reads next.
    let mut notes = hub.client.subscribe(hub.subjects.presence(name)).await?;
    let (weak, name) = (hub.me.clone(), name.to_owned());
    let task = tokio::spawn(async move {
        while let Some(message) = notes.next().await {
            let Some(hub) = weak.upgrade() else {
                return;
            };
            match serde_json::from_slice::<PresenceNote>(&message.payload) {
                Ok(note) => hub.learn(&name, note),
                Err(e) => warn!(user = %name, "unreadable presence note: {e}"),
            }
        }
    });
    Ok(Subscription(task.abort_handle()))
}
