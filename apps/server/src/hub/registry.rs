//! Who holds which name, and which identity key each name belongs to. Pure bookkeeping (no
//! I/O), so every decision about names is a plain unit test.
//!
//! A name is held by at most one live connection. A name registered with an identity proof
//! is bound to that key from then on (the binding outlives the connection, and the server
//! keeps it across restarts when given a data directory): only a proof by the same key gets
//! it again. Names no key has claimed work as on the original server: the first live
//! connection to register one holds it until it leaves.
//!
//! A live holder gives its name up only to a newer connection of the same client run (same
//! session) proving the same key: a client that reconnected before the server noticed its
//! old connection died. A session id alone is public (presence records, offers) and proves
//! nothing.

use std::collections::HashMap;

use peerchat_core::identity::PublicKey;

use crate::connection::{ConnectionId, Refusal};

/// A connection's request for a name, its identity proof already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub name: String,
    /// The client's run (peerchat clients send one).
    pub session: Option<String>,
    /// The identity key whose proof the register carried.
    pub key: Option<PublicKey>,
    /// Whether the connection already subscribed to the name's inbox.
    pub listening: bool,
}

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Granted,
    /// Granted; `previous`, an older connection of the same run, lost the name and must go.
    TookOver {
        previous: ConnectionId,
    },
    Refused(Refusal),
}

/// The live holder of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub connection: ConnectionId,
    pub session: Option<String>,
    pub key: Option<PublicKey>,
    /// Messages to the name reach the holder only once it subscribed to its inbox.
    pub listening: bool,
}

/// A name's identity key and when it was last used (seconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub key: PublicKey,
    pub last_used: u64,
}

/// Names, their holders and their keys.
#[derive(Debug, Default)]
pub struct Registry {
    holders: HashMap<String, Holder>,
    names: HashMap<ConnectionId, String>,
    bindings: HashMap<String, Binding>,
    /// Bindings changed since [`Registry::take_changed_bindings`] last said so.
    bindings_changed: bool,
}

impl Registry {
    /// A registry that knows the bindings kept from earlier runs.
    pub fn with_bindings(bindings: HashMap<String, Binding>) -> Self {
        Self {
            bindings,
            ..Self::default()
        }
    }

    /// Decides `claim` for `connection` at `now` (Unix seconds).
    pub fn claim(&mut self, connection: ConnectionId, claim: &Claim, now: u64) -> Outcome {
        if let Some(binding) = self.bindings.get(&claim.name)
            && claim.key != Some(binding.key)
        {
            return Outcome::Refused(Refusal::OtherKey);
        }
        let outcome = match self.holders.get(&claim.name) {
            None => Outcome::Granted,
            Some(holder) if holder.connection == connection => Outcome::Granted,
            Some(holder)
                if claim.key.is_some()
                    && holder.key == claim.key
                    && claim.session.is_some()
                    && holder.session == claim.session =>
            {
                Outcome::TookOver {
                    previous: holder.connection,
                }
            }
            Some(_) => return Outcome::Refused(Refusal::InUse),
        };
        if let Outcome::TookOver { previous } = outcome {
            self.names.remove(&previous);
        }
        if let Some(key) = claim.key {
            self.bindings.insert(
                claim.name.clone(),
                Binding {
                    key,
                    last_used: now,
                },
            );
            self.bindings_changed = true;
        }
        self.holders.insert(
            claim.name.clone(),
            Holder {
                connection,
                session: claim.session.clone(),
                key: claim.key,
                listening: claim.listening,
            },
        );
        self.names.insert(connection, claim.name.clone());
        outcome
    }

    /// Whether the name `connection` holds reaches it (its inbox is subscribed).
    pub fn set_listening(&mut self, connection: ConnectionId, listening: bool) {
        if let Some(name) = self.names.get(&connection)
            && let Some(holder) = self.holders.get_mut(name)
        {
            holder.listening = listening;
        }
    }

    /// Frees the name `connection` holds, if it still does; returns it.
    pub fn release(&mut self, connection: ConnectionId, now: u64) -> Option<String> {
        let name = self.names.remove(&connection)?;
        if let Some(holder) = self.holders.remove(&name)
            && holder.key.is_some()
            && let Some(binding) = self.bindings.get_mut(&name)
        {
            binding.last_used = now;
            self.bindings_changed = true;
        }
        Some(name)
    }

    pub fn holder(&self, name: &str) -> Option<&Holder> {
        self.holders.get(name)
    }

    /// How many names are held.
    pub fn online(&self) -> usize {
        self.holders.len()
    }

    /// Forgets bindings unused since `cutoff` (Unix seconds) whose names nobody holds.
    pub fn expire_bindings(&mut self, cutoff: u64) {
        let before = self.bindings.len();
        let holders = &self.holders;
        self.bindings
            .retain(|name, binding| binding.last_used >= cutoff || holders.contains_key(name));
        self.bindings_changed |= self.bindings.len() != before;
    }

    /// Every binding, if any changed since the last call.
    pub fn take_changed_bindings(&mut self) -> Option<HashMap<String, Binding>> {
        std::mem::take(&mut self.bindings_changed).then(|| self.bindings.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerchat_core::identity::Identity;

    fn key(seed: u8) -> PublicKey {
        Identity::from_seed([seed; 32]).public()
    }

    fn claim(name: &str, session: Option<&str>, key: Option<PublicKey>) -> Claim {
        Claim {
            name: name.to_owned(),
            session: session.map(str::to_owned),
            key,
            listening: true,
        }
    }

    #[test]
    fn a_free_name_is_granted_and_freed_when_its_holder_leaves() {
        let mut registry = Registry::default();
        assert_eq!(
            registry.claim(1, &claim("alice", None, None), 0),
            Outcome::Granted
        );
        assert_eq!(registry.holder("alice").unwrap().connection, 1);
        assert_eq!(registry.release(1, 0), Some("alice".to_owned()));
        assert!(registry.holder("alice").is_none());
        assert_eq!(
            registry.claim(2, &claim("alice", None, None), 0),
            Outcome::Granted
        );
    }

    #[test]
    fn a_live_name_is_refused_to_everyone_else() {
        let mut registry = Registry::default();
        registry.claim(1, &claim("alice", Some("s1"), None), 0);
        for other in [
            claim("alice", Some("s1"), None),
            claim("alice", Some("s2"), None),
            claim("alice", None, None),
        ] {
            assert_eq!(
                registry.claim(2, &other, 0),
                Outcome::Refused(Refusal::InUse),
                "{other:?}"
            );
        }
        assert_eq!(registry.holder("alice").unwrap().connection, 1);
    }

    #[test]
    fn a_public_session_id_takes_no_name_over() {
        let mut registry = Registry::default();
        registry.claim(1, &claim("dave", Some("s1"), Some(key(1))), 0);
        // The attacker read `s1` from dave's presence record, and brings a key of its own.
        assert_eq!(
            registry.claim(2, &claim("dave", Some("s1"), Some(key(2))), 0),
            Outcome::Refused(Refusal::OtherKey)
        );
        assert_eq!(
            registry.claim(2, &claim("dave", Some("s1"), None), 0),
            Outcome::Refused(Refusal::OtherKey)
        );
        assert_eq!(registry.holder("dave").unwrap().connection, 1);
    }

    #[test]
    fn the_same_run_with_the_same_key_takes_its_name_over() {
        let mut registry = Registry::default();
        registry.claim(1, &claim("alice", Some("s1"), Some(key(1))), 0);
        assert_eq!(
            registry.claim(2, &claim("alice", Some("s1"), Some(key(1))), 0),
            Outcome::TookOver { previous: 1 }
        );
        // The stale connection closing later does not free the name it lost.
        assert_eq!(registry.release(1, 0), None);
        assert_eq!(registry.holder("alice").unwrap().connection, 2);
        // Another run of the same key is a second window: refused while the first is live.
        assert_eq!(
            registry.claim(3, &claim("alice", Some("s2"), Some(key(1))), 0),
            Outcome::Refused(Refusal::InUse)
        );
    }

    #[test]
    fn a_name_stays_with_its_key_after_its_holder_leaves() {
        let mut registry = Registry::default();
        registry.claim(1, &claim("alice", Some("s1"), Some(key(1))), 0);
        registry.release(1, 5);
        assert_eq!(
            registry.claim(2, &claim("alice", None, None), 6),
            Outcome::Refused(Refusal::OtherKey)
        );
        assert_eq!(
            registry.claim(2, &claim("alice", Some("s9"), Some(key(2))), 6),
            Outcome::Refused(Refusal::OtherKey)
        );
        assert_eq!(
            registry.claim(3, &claim("alice", Some("s2"), Some(key(1))), 7),
            Outcome::Granted
        );
    }

    #[test]
    fn an_unbound_name_held_without_a_key_is_not_taken_by_a_key() {
        let mut registry = Registry::default();
        registry.claim(1, &claim("bob", None, None), 0);
        assert_eq!(
            registry.claim(2, &claim("bob", Some("s"), Some(key(1))), 0),
            Outcome::Refused(Refusal::InUse)
        );
        // Once the original client left, the first key to prove itself binds the name.
        registry.release(1, 0);
        assert_eq!(
            registry.claim(2, &claim("bob", Some("s"), Some(key(1))), 0),
            Outcome::Granted
        );
        assert!(
            registry
                .take_changed_bindings()
                .unwrap()
                .contains_key("bob")
        );
        assert_eq!(registry.take_changed_bindings(), None);
    }

    #[test]
    fn bindings_unused_for_long_expire_unless_held() {
        let mut registry = Registry::default();
        registry.claim(1, &claim("old", Some("s"), Some(key(1))), 10);
        registry.release(1, 10);
        registry.claim(2, &claim("held", Some("s"), Some(key(2))), 10);
        registry.take_changed_bindings();
        registry.expire_bindings(100);
        let left = registry.take_changed_bindings().unwrap();
        assert!(!left.contains_key("old") && left.contains_key("held"));
        assert_eq!(
            registry.claim(3, &claim("old", None, None), 200),
            Outcome::Granted
        );
    }
}
