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
//!
//! The rule itself is [`NameRecord::claim`], over one name's binding and holder. Both hubs
//! call it: [`Registry`] keeps every record of one process in memory, the cluster hub keeps
//! each record in a replicated key-value entry and writes the outcome back with
//! compare-and-set. A holder is generic over how a hub names a connection (`C`): a
//! [`ConnectionId`] in one process, a gateway and connection in a cluster.

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
pub enum Outcome<C = ConnectionId> {
    Granted,
    /// Granted; `previous`, an older connection of the same run, lost the name and must go.
    TookOver {
        previous: C,
    },
    Refused(Refusal),
}

/// The live holder of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder<C = ConnectionId> {
    pub connection: C,
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

/// Everything known about one name: the key it is bound to and who holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRecord<C = ConnectionId> {
    pub binding: Option<Binding>,
    pub holder: Option<Holder<C>>,
}

impl<C> Default for NameRecord<C> {
    fn default() -> Self {
        Self {
            binding: None,
            holder: None,
        }
    }
}

impl<C: Clone + PartialEq> NameRecord<C> {
    /// Decides `claim` by `claimant` at `now` (Unix seconds): the rule of names. On success
    /// the record holds the claimant (and the claim's key, if it proved one).
    pub fn claim(&mut self, claimant: C, claim: &Claim, now: u64) -> Outcome<C> {
        if let Some(binding) = &self.binding
            && claim.key != Some(binding.key)
        {
            return Outcome::Refused(Refusal::OtherKey);
        }
        let outcome = match &self.holder {
            None => Outcome::Granted,
            Some(holder) if holder.connection == claimant => Outcome::Granted,
            Some(holder)
                if claim.key.is_some()
                    && holder.key == claim.key
                    && claim.session.is_some()
                    && holder.session == claim.session =>
            {
                Outcome::TookOver {
                    previous: holder.connection.clone(),
                }
            }
            Some(_) => return Outcome::Refused(Refusal::InUse),
        };
        if let Some(key) = claim.key {
            self.binding = Some(Binding {
                key,
                last_used: now,
            });
        }
        self.holder = Some(Holder {
            connection: claimant,
            session: claim.session.clone(),
            key: claim.key,
            listening: claim.listening,
        });
        outcome
    }

    /// `connection` leaves: if it still holds the name, the name is free and its key counts
    /// as used now. Whether it held the name.
    pub fn release(&mut self, connection: &C, now: u64) -> bool {
        if self.holder.as_ref().map(|h| &h.connection) != Some(connection) {
            return false;
        }
        let holder = self.holder.take();
        if holder.is_some_and(|h| h.key.is_some())
            && let Some(binding) = &mut self.binding
        {
            binding.last_used = now;
        }
        true
    }

    /// Forgets the binding if it was unused since `cutoff` (Unix seconds) and nobody holds
    /// the name. Whether it did.
    pub fn expire(&mut self, cutoff: u64) -> bool {
        let stale = self.holder.is_none() && self.binding.is_some_and(|b| b.last_used < cutoff);
        if stale {
            self.binding = None;
        }
        stale
    }

    /// Neither bound nor held: nothing worth keeping.
    pub fn is_empty(&self) -> bool {
        self.binding.is_none() && self.holder.is_none()
    }
}

/// Names, their holders and their keys, for the connections of one process.
#[derive(Debug, Default)]
pub struct Registry {
    records: HashMap<String, NameRecord>,
    names: HashMap<ConnectionId, String>,
    /// Bindings changed since [`Registry::take_changed_bindings`] last said so.
    bindings_changed: bool,
}

impl Registry {
    /// A registry that knows the bindings kept from earlier runs.
    pub fn with_bindings(bindings: HashMap<String, Binding>) -> Self {
        let records = (bindings.into_iter())
            .map(|(name, binding)| {
                let record = NameRecord {
                    binding: Some(binding),
                    holder: None,
                };
                (name, record)
            })
            .collect();
        Self {
            records,
            ..Self::default()
        }
    }

    /// Decides `claim` for `connection` at `now` (Unix seconds), by [`NameRecord::claim`].
    pub fn claim(&mut self, connection: ConnectionId, claim: &Claim, now: u64) -> Outcome {
        let record = self.records.entry(claim.name.clone()).or_default();
        let outcome = record.claim(connection, claim, now);
        match outcome {
            Outcome::Refused(_) => {
                if record.is_empty() {
                    self.records.remove(&claim.name);
                }
                return outcome;
            }
            Outcome::TookOver { previous } => {
                self.names.remove(&previous);
            }
            Outcome::Granted => {}
        }
        self.bindings_changed |= claim.key.is_some();
        self.names.insert(connection, claim.name.clone());
        outcome
    }

    /// Whether the name `connection` holds reaches it (its inbox is subscribed).
    pub fn set_listening(&mut self, connection: ConnectionId, listening: bool) {
        if let Some(name) = self.names.get(&connection)
            && let Some(holder) = (self.records.get_mut(name)).and_then(|r| r.holder.as_mut())
        {
            holder.listening = listening;
        }
    }

    /// Frees the name `connection` holds, if it still does; returns it.
    pub fn release(&mut self, connection: ConnectionId, now: u64) -> Option<String> {
        let name = self.names.remove(&connection)?;
        if let Some(record) = self.records.get_mut(&name) {
            record.release(&connection, now);
            self.bindings_changed |= record.binding.is_some();
            if record.is_empty() {
                self.records.remove(&name);
            }
        }
        Some(name)
    }

    pub fn holder(&self, name: &str) -> Option<&Holder> {
        self.records.get(name)?.holder.as_ref()
    }

    /// How many names are held.
    pub fn online(&self) -> usize {
        self.names.len()
    }

    /// Forgets `name`'s binding if it was unused since `cutoff` and nobody holds it, so a
    /// binding past its lifetime binds nothing even before the daily sweep.
    pub fn expire_binding(&mut self, name: &str, cutoff: u64) {
        if let Some(record) = self.records.get_mut(name)
            && record.expire(cutoff)
        {
            self.bindings_changed = true;
            if record.is_empty() {
                self.records.remove(name);
            }
        }
    }

    /// Forgets bindings unused since `cutoff` (Unix seconds) whose names nobody holds.
    pub fn expire_bindings(&mut self, cutoff: u64) {
        let mut expired = false;
        self.records.retain(|_, record| {
            expired |= record.expire(cutoff);
            !record.is_empty()
        });
        self.bindings_changed |= expired;
    }

    /// Every binding, if any changed since the last call.
    pub fn take_changed_bindings(&mut self) -> Option<HashMap<String, Binding>> {
        std::mem::take(&mut self.bindings_changed).then(|| {
            (self.records.iter())
                .filter_map(|(name, record)| Some((name.clone(), record.binding?)))
                .collect()
        })
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

    #[test]
    fn one_rule_decides_for_any_kind_of_connection() {
        // A cluster names a connection by gateway and number: the rule is the same.
        let mut record = NameRecord::<(&str, u64)>::default();
        let run = claim("erin", Some("s1"), Some(key(5)));
        assert_eq!(record.claim(("g1", 1), &run, 0), Outcome::Granted);
        assert_eq!(
            record.claim(("g2", 1), &claim("erin", Some("s2"), Some(key(5))), 0),
            Outcome::Refused(Refusal::InUse)
        );
        assert_eq!(
            record.claim(("g2", 7), &run, 0),
            Outcome::TookOver {
                previous: ("g1", 1)
            }
        );
        assert!(
            !record.release(&("g1", 1), 3),
            "the stale seat frees nothing"
        );
        assert!(record.release(&("g2", 7), 4));
        assert_eq!(record.binding.unwrap().last_used, 4);
        assert!(record.holder.is_none());
    }

    #[test]
    fn a_binding_past_its_lifetime_binds_nothing_even_before_the_daily_sweep() {
        let mut registry = Registry::default();
        registry.claim(1, &claim("old", Some("s"), Some(key(1))), 10);
        registry.release(1, 10);
        registry.expire_binding("old", 5);
        assert_eq!(
            registry.claim(2, &claim("old", None, None), 20),
            Outcome::Refused(Refusal::OtherKey),
            "still within its lifetime"
        );
        registry.expire_binding("old", 11);
        assert_eq!(
            registry.claim(2, &claim("old", None, None), 20),
            Outcome::Granted
        );
    }
}
