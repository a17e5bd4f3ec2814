//! The hub of one gateway among several over a NATS cluster: NATS routes the messages and a
//! JetStream key-value bucket, replicated on the cluster's nodes, holds the names. The
//! gateway keeps only its own connections, so any number of them serve one community and
//! any one may die.
//!
//! - **Names**: one record per name in the names bucket (identity-key binding and
//!   live holder), decided by the registry's own rule ([`NameRecord::claim`]) and written
//!   back with compare-and-set on the record's revision (`names::rewrite`).
//! - **Deliveries**: the holder's gateway subscribes to the name's inbox subject
//!   (`Namespace::inbox`) and answers each message; a message nobody answers at once ("no
//!   responders") reached nobody, which is a `delivery-failed`.
//! - **Presence**: the gateway that changes a holder publishes a `PresenceNote` on the
//!   name's presence subject; gateways whose clients watch the name subscribe to it, one
//!   subscription per watched name.
//! - **Liveness**: heartbeats (`liveness`). The holders of a dead gateway count as free at
//!   once; watchers are told they left, and their records are cleared.
//!
//! [`NameRecord::claim`]: crate::hub::NameRecord::claim

mod liveness;
mod names;
mod record;
mod subjects;
mod tasks;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use async_nats::{Client, RequestErrorKind};
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tracing::{debug, error, info, warn};

use super::local::unix_seconds;
use super::{Claim, Hub, Outbox, Outcome, presence_record};
use crate::connection::{ConnectionId, Registered};
use liveness::Liveness;
use record::{ClusterRecord, PresenceNote, Seat};
use subjects::Namespace;

/// How long a delivery waits for the holder's gateway to answer. Only a gateway that is
/// alive but stuck makes it wait; the message then counts as delivered (we cannot tell).
const DELIVERY_PATIENCE: Duration = Duration::from_secs(3);

/// How to join the cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// NATS servers (`nats://host:port`); the client learns the cluster's other nodes from
    /// them and moves to one when its node dies.
    pub servers: Vec<String>,
    /// How many nodes keep a copy of the names bucket (3 for a three-node cluster; a
    /// majority of them must be up for names to be decided).
    pub replicas: usize,
    /// Name bindings unused this long bind nothing any more.
    pub binding_lifetime: Duration,
    /// Prefix of every subject and bucket (`peerchat`): gateways of one community share it;
    /// another community may use the same cluster under another.
    pub namespace: String,
}

/// Why the gateway could not join the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("`{0}` is not a namespace: use letters, digits, `-` and `_`")]
    Namespace(String),
    #[error("could not reach NATS at {servers}: {reason} (is nats-server running there?)")]
    Connect { servers: String, reason: String },
    #[error(
        "could not open the names bucket in JetStream: {0} (does every node run with \
         JetStream on, in one cluster, with enough nodes up for the bucket's replicas?)"
    )]
    Bucket(String),
}

/// The hub of one gateway.
pub struct ClusterHub {
    /// The hub itself, for the subscription tasks it starts (which must not keep it alive).
    me: Weak<ClusterHub>,
    /// This gateway's id in the cluster: random per process.
    gateway: String,
    subjects: Namespace,
    client: Client,
    names: kv::Store,
    binding_lifetime: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    connections: HashMap<ConnectionId, Attached>,
    /// Names held through this gateway.
    held: HashMap<String, HeldName>,
    /// Names this gateway's clients watch.
    watched: HashMap<String, WatchedName>,
    liveness: Liveness,
    /// Cut off from the cluster: every client was closed, and no name is granted.
    fenced: bool,
    /// Names whose holders left while the bucket was out of reach: released later.
    unreleased: Vec<(String, ConnectionId)>,
    /// Dead gateways whose records are still to be cleared (see `tasks`).
    unswept: Vec<String>,
}

#[derive(Debug)]
struct Attached {
    outbox: Outbox,
    closer: Arc<Notify>,
    watching: HashSet<String>,
    name: Option<String>,
}

#[derive(Debug)]
struct HeldName {
    connection: ConnectionId,
    listening: bool,
    /// The inbox subscription, held for as long as the name is: dropping it unsubscribes.
    _inbox: Subscription,
}

#[derive(Debug, Default)]
struct WatchedName {
    watchers: HashSet<ConnectionId>,
    /// The newest note known, from the bucket or the presence subject.
    known: Option<PresenceNote>,
    /// The last record told to watchers: online under a session, or offline.
    shown: Option<Option<String>>,
    subscription: Option<Subscription>,
    /// Watches still reading the bucket.
    pending: usize,
}

/// A subscription's task, aborted (so unsubscribed) when dropped.
#[derive(Debug)]
struct Subscription(AbortHandle);

impl Drop for Subscription {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ClusterHub {
    /// Connects to the cluster, opens the names bucket (creating it if need be) and starts
    /// this gateway's heartbeats.
    pub async fn join(options: ClusterOptions) -> Result<Arc<Self>, ClusterError> {
        let subjects = Namespace::new(&options.namespace)
            .ok_or_else(|| ClusterError::Namespace(options.namespace.clone()))?;
        let gateway = fresh_gateway_id();
        let servers = options.servers.join(",");
        let client = async_nats::ConnectOptions::new()
            .name(format!("peerchat-server gateway {gateway}"))
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => info!("connected to NATS"),
                    async_nats::Event::Disconnected => warn!("lost NATS: reconnecting"),
                    other => debug!("NATS: {other}"),
                }
            })
            .connect(options.servers.as_slice())
            .await
            .map_err(|e| ClusterError::Connect {
                servers: servers.clone(),
                reason: e.to_string(),
            })?;
        let names = names::open(&client, &subjects.names_bucket(), options.replicas)
            .await
            .map_err(ClusterError::Bucket)?;
        info!(%gateway, %servers, "joined the cluster as a gateway");
        let hub = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            gateway: gateway.clone(),
            subjects,
            client,
            names,
            binding_lifetime: options.binding_lifetime,
            state: Mutex::new(State {
                connections: HashMap::new(),
                held: HashMap::new(),
                watched: HashMap::new(),
                liveness: Liveness::new(gateway, Instant::now()),
                fenced: false,
                unreleased: Vec::new(),
                unswept: Vec::new(),
            }),
        });
        tasks::start(&hub)
            .await
            .map_err(|e| ClusterError::Connect {
                servers,
                reason: e.to_string(),
            })?;
        Ok(hub)
    }

    /// This gateway's id in the cluster.
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// How many names are held through this gateway.
    pub fn online(&self) -> usize {
        self.state().held.len()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a few map operations; carry on with the state as it is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn seat(&self, connection: ConnectionId) -> Seat {
        Seat {
            gateway: self.gateway.clone(),
            connection,
        }
    }

    /// Claims `claim.name` for `id` in the bucket; the outcome, and the record written.
    async fn claim(
        &self,
        id: ConnectionId,
        claim: &Claim,
    ) -> Result<(Outcome<Seat>, Option<(ClusterRecord, u64)>), names::Trouble> {
        let seat = self.seat(id);
        let now = unix_seconds();
        let cutoff = now.saturating_sub(self.binding_lifetime.as_secs());
        names::rewrite(&self.names, &claim.name, |record| {
            self.forget_dead_holder(record);
            record.expire(cutoff);
            let outcome = record.claim(seat.clone(), claim, now);
            let granted = !matches!(outcome, Outcome::Refused(_));
            (outcome, granted)
        })
        .await
    }

    /// A holder on a gateway that stopped beating holds nothing.
    fn forget_dead_holder(&self, record: &mut ClusterRecord) {
        let state = self.state();
        let now = Instant::now();
        if let Some(holder) = &record.holder
            && !state.liveness.is_live(&holder.connection.gateway, now)
        {
            debug!(gateway = %holder.connection.gateway, "holder on a dead gateway counts as gone");
            record.holder = None;
        }
    }

    /// Frees `name` in the bucket if `id` still holds it there, and tells its watchers.
    async fn release(&self, name: &str, id: ConnectionId) {
        let seat = self.seat(id);
        let now = unix_seconds();
        match names::rewrite(&self.names, name, |record| {
            let released = record.release(&seat, now);
            (released, released)
        })
        .await
        {
            Ok((_, Some((record, revision)))) => {
                info!(user = %name, "name freed");
                self.tell_presence(name, &record, revision).await;
            }
            Ok((_, None)) => debug!(user = %name, "name was no longer ours to free"),
            Err(trouble) => {
                warn!(user = %name, %trouble, "could not free a name: trying again later");
                self.state().unreleased.push((name.to_owned(), id));
            }
        }
    }

    /// Publishes `name`'s new holder for the gateways that watch it, and tells this
    /// gateway's own watchers at once.
    async fn tell_presence(&self, name: &str, record: &ClusterRecord, revision: u64) {
        let note = PresenceNote::of(record, revision);
        self.learn(name, note.clone());
        let payload = serde_json::to_vec(&note).expect("a note serializes");
        if let Err(e) = (self.client)
            .publish(self.subjects.presence(name), payload.into())
            .await
        {
            warn!(user = %name, "could not publish a presence change: {e}");
        }
    }

    /// A presence note about `name` (read, heard or written here): kept if it is newer
    /// than what is known, and told to the watchers if what they see changed.
    fn learn(&self, name: &str, note: PresenceNote) {
        let mut state = self.state();
        let state = &mut *state;
        let Some(watched) = state.watched.get_mut(name) else {
            return;
        };
        if (watched.known.as_ref()).is_some_and(|known| known.revision >= note.revision) {
            return;
        }
        if let Some(holder) = &note.holder {
            state.liveness.mentioned(&holder.gateway);
        }
        watched.known = Some(note);
        announce(name, watched, &state.connections, &state.liveness);
    }

    /// Hands a message that came on `name`'s inbox subject to the connection holding the
    /// name here; whether this gateway holds it (and so answers the sender).
    fn hand_over(&self, name: &str, packet: Bytes) -> bool {
        let state = self.state();
        if state.fenced || state.liveness.cut_off(Instant::now()) {
            // Its names may be someone else's by now: nothing reaches its clients.
            return false;
        }
        let Some(held) = state.held.get(name) else {
            return false;
        };
        if held.listening
            && let Some(attached) = state.connections.get(&held.connection)
            && !attached.outbox.push(packet)
        {
            warn!(user = %name, "a message was dropped: the recipient is not reading");
        }
        true
    }

    /// Records here that `id` holds `name` (granted by `outcome`), and closes the connection
    /// of this gateway that held it before, if any. `false` if `id` is gone, or there is no
    /// inbox subscription to receive on.
    fn hold(
        &self,
        id: ConnectionId,
        name: &str,
        listening: bool,
        inbox: Option<Subscription>,
        outcome: &Outcome<Seat>,
    ) -> bool {
        let mut state = self.state();
        let state = &mut *state;
        let Some(attached) = state.connections.get_mut(&id) else {
            return false;
        };
        match (state.held.get_mut(name), inbox) {
            (Some(held), _) => {
                held.connection = id;
                held.listening = listening;
            }
            (None, Some(inbox)) => {
                let held = HeldName {
                    connection: id,
                    listening,
                    _inbox: inbox,
                };
                state.held.insert(name.to_owned(), held);
            }
            (None, None) => return false,
        }
        attached.name = Some(name.to_owned());
        if let Outcome::TookOver { previous } = outcome
            && previous.gateway == self.gateway
            && let Some(stale) = state.connections.get(&previous.connection)
        {
            stale.closer.notify_one();
        }
        true
    }

    /// Subscribes to `name`'s inbox, unless this gateway already does; the subscription is
    /// in place across the cluster before the name is granted, so the first message to the
    /// new holder finds it.
    async fn subscribe_inbox(&self, name: &str) -> Option<Subscription> {
        if self.state().held.contains_key(name) {
            return None;
        }
        match tasks::inbox(self, name).await {
            Ok(subscription) => Some(subscription),
            Err(e) => {
                warn!(user = %name, "could not subscribe to an inbox: {e}");
                None
            }
        }
    }
}

/// Tells `name`'s watchers its record, if it changed from what they were told.
fn announce(
    name: &str,
    watched: &mut WatchedName,
    connections: &HashMap<ConnectionId, Attached>,
    liveness: &Liveness,
) {
    let shown = shown(watched.known.as_ref(), liveness);
    if watched.shown.as_ref() == Some(&shown) {
        return;
    }
    watched.shown = Some(shown.clone());
    let Some(bytes) = presence_record(name, shown.as_deref(), false) else {
        return;
    };
    for id in &watched.watchers {
        push(connections, *id, bytes.clone());
    }
}

/// What a watcher sees of `note`: the holder's session while its gateway lives.
fn shown(note: Option<&PresenceNote>, liveness: &Liveness) -> Option<String> {
    let holder = note?.holder.as_ref()?;
    liveness
        .is_live(&holder.gateway, Instant::now())
        .then(|| holder.session.clone().unwrap_or_default())
}

fn push(connections: &HashMap<ConnectionId, Attached>, id: ConnectionId, packet: Bytes) {
    if let Some(attached) = connections.get(&id)
        && !attached.outbox.push(packet)
    {
        warn!(
            connection = id,
            "a presence record was dropped: the client is not reading"
        );
    }
}

impl Hub for ClusterHub {
    fn attach(&self, id: ConnectionId, outbox: Outbox, closer: Arc<Notify>) {
        let attached = Attached {
            outbox,
            closer,
            watching: HashSet::new(),
            name: None,
        };
        self.state().connections.insert(id, attached);
    }

    async fn register(&self, id: ConnectionId, claim: Claim) -> Registered {
        let cut_off = {
            let state = self.state();
            state.fenced || state.liveness.cut_off(Instant::now())
        };
        if cut_off {
            return Registered::Unavailable;
        }
        let name = claim.name.clone();
        let inbox = self.subscribe_inbox(&name).await;
        let (outcome, written) = match self.claim(id, &claim).await {
            Ok(decided) => decided,
            Err(trouble) => {
                error!(user = %name, %trouble, "could not decide a register");
                return Registered::Unavailable;
            }
        };
        if let Outcome::Refused(why) = outcome {
            return Registered::Refused(why);
        }
        if !self.hold(id, &name, claim.listening, inbox, &outcome) {
            // Gone while the bucket was written, or no inbox to receive on: not held.
            self.release(&name, id).await;
            return Registered::Unavailable;
        }
        if let Outcome::TookOver { previous } = &outcome
            && previous.gateway != self.gateway
        {
            tasks::order_close(self, previous).await;
        }
        if let Some((record, revision)) = written {
            self.tell_presence(&name, &record, revision).await;
        }
        Registered::Granted
    }

    async fn listen(&self, id: ConnectionId, listening: bool) {
        let name = {
            let mut state = self.state();
            let state = &mut *state;
            let Some(name) = state.connections.get(&id).and_then(|a| a.name.clone()) else {
                return;
            };
            match state.held.get_mut(&name) {
                Some(held) if held.connection == id => held.listening = listening,
                _ => return,
            }
            name
        };
        // The bucket says so too, for anyone reading it; deliveries follow this gateway's
        // own table, so a failure here changes nothing for the client.
        let seat = self.seat(id);
        let written = names::rewrite(&self.names, &name, |record| match &mut record.holder {
            Some(holder) if holder.connection == seat && holder.listening != listening => {
                holder.listening = listening;
                ((), true)
            }
            _ => ((), false),
        })
        .await;
        if let Err(trouble) = written {
            debug!(user = %name, %trouble, "inbox subscription not recorded in the bucket");
        }
    }

    async fn deliver(&self, target: &str, packet: Bytes) -> bool {
        let request = async_nats::Request::new()
            .payload(packet)
            .timeout(Some(DELIVERY_PATIENCE));
        match (self.client)
            .send_request(self.subjects.inbox(target), request)
            .await
        {
            Ok(_) => true,
            Err(e) if e.kind() == RequestErrorKind::NoResponders => false,
            Err(e) => {
                warn!(user = %target, "a delivery is unconfirmed: {e}");
                true
            }
        }
    }

    async fn watch(&self, id: ConnectionId, user: &str) {
        let subscribe = {
            let mut state = self.state();
            let state = &mut *state;
            let Some(attached) = state.connections.get_mut(&id) else {
                return;
            };
            attached.watching.insert(user.to_owned());
            let watched = state.watched.entry(user.to_owned()).or_default();
            if watched.subscription.is_some() && watched.known.is_some() {
                watched.watchers.insert(id);
                let shown = shown(watched.known.as_ref(), &state.liveness);
                if let Some(bytes) = presence_record(user, shown.as_deref(), true) {
                    push(&state.connections, id, bytes);
                }
                return;
            }
            watched.pending += 1;
            watched.subscription.is_none()
        };
        let subscription = if subscribe {
            match tasks::presence(self, user).await {
                Ok(subscription) => Some(subscription),
                Err(e) => {
                    warn!(%user, "could not subscribe to presence changes: {e}");
                    None
                }
            }
        } else {
            None
        };
        let read = names::read_patiently(&self.names, user).await;
        let mut state = self.state();
        let state = &mut *state;
        let Some(watched) = state.watched.get_mut(user) else {
            return;
        };
        watched.pending -= 1;
        if watched.subscription.is_none() {
            watched.subscription = subscription;
        }
        match read {
            Ok((record, revision)) => {
                let note = PresenceNote::of(&record, revision);
                if let Some(holder) = &note.holder {
                    state.liveness.mentioned(&holder.gateway);
                }
                if watched.known.as_ref().is_none_or(|k| k.revision < revision) {
                    watched.known = Some(note);
                }
            }
            Err(trouble) => warn!(%user, %trouble, "presence read failed: shown offline"),
        }
        let still_watching =
            (state.connections.get(&id)).is_some_and(|a| a.watching.contains(user));
        if still_watching {
            watched.watchers.insert(id);
            let shown = shown(watched.known.as_ref(), &state.liveness);
            if watched.shown.is_none() {
                watched.shown = Some(shown.clone());
            }
            if let Some(bytes) = presence_record(user, shown.as_deref(), true) {
                push(&state.connections, id, bytes);
            }
        } else if watched.watchers.is_empty() && watched.pending == 0 {
            state.watched.remove(user);
        }
    }

    async fn unwatch(&self, id: ConnectionId, user: &str) {
        let mut state = self.state();
        if let Some(attached) = state.connections.get_mut(&id) {
            attached.watching.remove(user);
        }
        state.stop_watching(id, user);
    }

    async fn detach(&self, id: ConnectionId) {
        let name = {
            let mut state = self.state();
            let Some(attached) = state.connections.remove(&id) else {
                return;
            };
            for user in &attached.watching {
                state.stop_watching(id, user);
            }
            let name = attached
                .name
                .filter(|name| (state.held.get(name)).is_some_and(|held| held.connection == id));
            if let Some(name) = &name {
                // Unsubscribes: from now on messages to the name find nobody here.
                state.held.remove(name);
            }
            debug!(
                connections = state.connections.len(),
                held = state.held.len(),
                watched = state.watched.len(),
                "connection detached"
            );
            name
        };
        if let Some(name) = name {
            self.release(&name, id).await;
        }
    }
}

impl State {
    fn stop_watching(&mut self, id: ConnectionId, user: &str) {
        if let Some(watched) = self.watched.get_mut(user) {
            watched.watchers.remove(&id);
            if watched.watchers.is_empty() && watched.pending == 0 {
                self.watched.remove(user);
            }
        }
    }
}

/// A gateway id: `g` and 12 random hex digits, new for every process.
fn fresh_gateway_id() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).expect("the operating system supplies randomness");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("g{hex}")
}
