//! The hub of one server process: every connection, name and watcher in memory, behind one
//! short lock (each call is a few map operations; nothing waits while holding it).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::Notify;
use tracing::{error, info, warn};

use super::registry::{Binding, Claim, Outcome, Registry};
use super::{Hub, Outbox, names_file, presence_record};
use crate::connection::{ConnectionId, Registered};

/// How often changed name bindings are written to the data directory.
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// The in-memory hub.
#[derive(Debug)]
pub struct LocalHub {
    state: Mutex<State>,
    /// Where name bindings are kept, if anywhere.
    names_file: Option<PathBuf>,
    /// Bindings unused this long are forgotten.
    binding_lifetime: Duration,
}

#[derive(Debug, Default)]
struct State {
    registry: Registry,
    connections: HashMap<ConnectionId, Attached>,
    /// Who watches each name's presence.
    watchers: HashMap<String, HashSet<ConnectionId>>,
}

#[derive(Debug)]
struct Attached {
    outbox: Outbox,
    closer: Arc<Notify>,
    watching: HashSet<String>,
}

impl LocalHub {
    /// A hub keeping name bindings in `data_dir` (loaded now), or in memory only.
    pub fn new(
        data_dir: Option<PathBuf>,
        binding_lifetime: Duration,
    ) -> std::io::Result<Arc<Self>> {
        let names_file = data_dir.map(|dir| names_file::path_in(&dir));
        let bindings = match &names_file {
            Some(path) => names_file::load(path)?,
            None => HashMap::new(),
        };
        if !bindings.is_empty() {
            info!(names = bindings.len(), "name bindings loaded");
        }
        let mut registry = Registry::with_bindings(bindings);
        registry.expire_bindings(unix_seconds().saturating_sub(binding_lifetime.as_secs()));
        let hub = Arc::new(Self {
            state: Mutex::new(State {
                registry,
                ..State::default()
            }),
            names_file,
            binding_lifetime,
        });
        if hub.names_file.is_some() {
            tokio::spawn(keep_bindings(Arc::downgrade(&hub)));
        }
        Ok(hub)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a few map operations that cannot panic halfway in a way that
        // matters; carry on with the state as it is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many names are held.
    pub fn online(&self) -> usize {
        self.state().registry.online()
    }
}

impl State {
    /// Tells `user`'s watchers (or only `only`, a new watcher) its current presence.
    fn announce(&self, user: &str, only: Option<ConnectionId>) {
        let session = (self.registry.holder(user))
            .map(|holder| holder.session.as_deref().unwrap_or_default());
        let Some(bytes) = presence_record(user, session, only.is_some()) else {
            return;
        };
        let send = |id: &ConnectionId| {
            if let Some(attached) = self.connections.get(id)
                && !attached.outbox.push(bytes.clone())
            {
                warn!(
                    connection = id,
                    "a presence record was dropped: the client is not reading"
                );
            }
        };
        match only {
            Some(id) => send(&id),
            None => self.watchers.get(user).into_iter().flatten().for_each(send),
        }
    }
}

impl Hub for LocalHub {
    fn attach(&self, id: ConnectionId, outbox: Outbox, closer: Arc<Notify>) {
        let attached = Attached {
            outbox,
            closer,
            watching: HashSet::new(),
        };
        self.state().connections.insert(id, attached);
    }

    async fn register(&self, id: ConnectionId, claim: Claim) -> Registered {
        let mut state = self.state();
        let cutoff = unix_seconds().saturating_sub(self.binding_lifetime.as_secs());
        state.registry.expire_binding(&claim.name, cutoff);
        let outcome = state.registry.claim(id, &claim, unix_seconds());
        if let Outcome::TookOver { previous } = outcome
            && let Some(stale) = state.connections.get(&previous)
        {
            stale.closer.notify_one();
        }
        if let Outcome::Refused(why) = outcome {
            return Registered::Refused(why);
        }
        state.announce(&claim.name, None);
        Registered::Granted
    }

    async fn listen(&self, id: ConnectionId, listening: bool) {
        self.state().registry.set_listening(id, listening);
    }

    async fn deliver(&self, target: &str, packet: Bytes) -> bool {
        let state = self.state();
        let Some(holder) = state.registry.holder(target) else {
            return false;
        };
        if holder.listening
            && let Some(attached) = state.connections.get(&holder.connection)
            && !attached.outbox.push(packet)
        {
            warn!(user = %target, "a message was dropped: the recipient is not reading");
        }
        true
    }

    async fn watch(&self, id: ConnectionId, user: &str) {
        let mut state = self.state();
        let Some(attached) = state.connections.get_mut(&id) else {
            return;
        };
        attached.watching.insert(user.to_owned());
        state
            .watchers
            .entry(user.to_owned())
            .or_default()
            .insert(id);
        state.announce(user, Some(id));
    }

    async fn unwatch(&self, id: ConnectionId, user: &str) {
        let mut state = self.state();
        if let Some(attached) = state.connections.get_mut(&id) {
            attached.watching.remove(user);
        }
        state.stop_watching(id, user);
    }

    async fn detach(&self, id: ConnectionId) {
        let mut state = self.state();
        let Some(attached) = state.connections.remove(&id) else {
            return;
        };
        for user in &attached.watching {
            state.stop_watching(id, user);
        }
        if let Some(name) = state.registry.release(id, unix_seconds()) {
            info!(user = %name, "name freed");
            state.announce(&name, None);
        }
    }
}

impl State {
    fn stop_watching(&mut self, id: ConnectionId, user: &str) {
        if let Some(watchers) = self.watchers.get_mut(user) {
            watchers.remove(&id);
            if watchers.is_empty() {
                self.watchers.remove(user);
            }
        }
    }
}

/// Writes changed bindings every [`SAVE_EVERY`], and forgets unused ones daily, while the
/// hub lives.
async fn keep_bindings(hub: std::sync::Weak<LocalHub>) {
    let mut ticks = 0u64;
    loop {
        tokio::time::sleep(SAVE_EVERY).await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        ticks += 1;
        let changed = {
            let mut state = hub.state();
            if ticks.is_multiple_of(24 * 3600 / SAVE_EVERY.as_secs()) {
                let cutoff = unix_seconds().saturating_sub(hub.binding_lifetime.as_secs());
                state.registry.expire_bindings(cutoff);
            }
            state.registry.take_changed_bindings()
        };
        if let (Some(bindings), Some(path)) = (changed, hub.names_file.clone()) {
            save(path, bindings).await;
        }
    }
}

async fn save(path: PathBuf, bindings: HashMap<String, Binding>) {
    let written = tokio::task::spawn_blocking(move || names_file::save(&path, &bindings)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!("could not keep name bindings: {e}"),
        Err(e) => error!("the task keeping name bindings failed: {e}"),
    }
}

pub(super) fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
