//! Who holds which username: the server's record of registrations, one per live connection.
//! Pure bookkeeping (no I/O), so every decision the gateway takes is a plain unit test.

use std::collections::HashMap;

/// Identifies one client connection through the gateway, unique for the server's lifetime.
pub type ConnectionId = u64;

/// The answer to a `register` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The name is now held by the requesting connection (or already was).
    Registered,
    /// The name was held by `previous`, an older connection of the same client run (same
    /// session), which must now be closed: the client reconnected before the old connection died.
    TookOver { previous: ConnectionId },
    /// Another live connection holds the name; the request is refused.
    Taken,
}

#[derive(Debug, Clone)]
struct Holder {
    connection: ConnectionId,
    session: Option<String>,
}

/// Usernames and the connections that registered them.
///
/// A connection holds at most one name; a name is held by at most one connection.
#[derive(Debug, Default)]
pub struct Registry {
    by_name: HashMap<String, Holder>,
    by_connection: HashMap<ConnectionId, String>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for `name` on behalf of `connection`.
    ///
    /// A name held by another connection is handed over only when both requests carry the same
    /// session: that is one client run reconnecting, not a second user. Registering a different
    /// name from the same connection gives up the first one.
    pub fn register(
        &mut self,
        connection: ConnectionId,
        name: &str,
        session: Option<&str>,
    ) -> Registration {
        let outcome = match self.by_name.get(name) {
            None => Registration::Registered,
            Some(holder) if holder.connection == connection => Registration::Registered,
            Some(holder) if session.is_some() && holder.session.as_deref() == session => {
                Registration::TookOver {
                    previous: holder.connection,
                }
            }
            Some(_) => return Registration::Taken,
        };
        if let Registration::TookOver { previous } = outcome {
            self.by_connection.remove(&previous);
        }
        if let Some(old_name) = self.by_connection.remove(&connection)
            && old_name != name
        {
            self.by_name.remove(&old_name);
        }
        self.by_name.insert(
            name.to_owned(),
            Holder {
                connection,
                session: session.map(str::to_owned),
            },
        );
        self.by_connection.insert(connection, name.to_owned());
        outcome
    }

    /// Frees the name `connection` holds, if any (it may have been taken over meanwhile).
    pub fn release(&mut self, connection: ConnectionId) -> Option<String> {
        let name = self.by_connection.remove(&connection)?;
        self.by_name.remove(&name);
        Some(name)
    }

    /// The name `connection` registered.
    pub fn name_of(&self, connection: ConnectionId) -> Option<&str> {
        self.by_connection.get(&connection).map(String::as_str)
    }

    /// Whether some live connection holds `name`.
    pub fn is_online(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Who must hear that a message from `sender` to `target` reached nobody: the sender's
    /// registered name when `target` is offline, `None` when `target` is online or the sender
    /// never registered (then there is no topic to tell it on).
    pub fn undeliverable(&self, sender: ConnectionId, target: &str) -> Option<&str> {
        if self.is_online(target) {
            return None;
        }
        self.name_of(sender)
    }

    /// How many names are held.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_name_is_registered() {
        let mut registry = Registry::new();
        assert_eq!(
            registry.register(1, "alice", None),
            Registration::Registered
        );
        assert!(registry.is_online("alice"));
        assert_eq!(registry.name_of(1), Some("alice"));
    }

    #[test]
    fn registering_twice_from_one_connection_is_harmless() {
        let mut registry = Registry::new();
        registry.register(1, "alice", Some("s1"));
        assert_eq!(
            registry.register(1, "alice", Some("s1")),
            Registration::Registered
        );
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn a_name_held_by_another_connection_is_taken() {
        let mut registry = Registry::new();
        registry.register(1, "alice", Some("s1"));
        assert_eq!(
            registry.register(2, "alice", Some("s2")),
            Registration::Taken
        );
        assert_eq!(registry.register(3, "alice", None), Registration::Taken);
        assert_eq!(registry.name_of(1), Some("alice"));
        assert_eq!(registry.name_of(2), None);
    }

    #[test]
    fn two_clients_without_sessions_never_share_a_name() {
        let mut registry = Registry::new();
        registry.register(1, "alice", None);
        assert_eq!(registry.register(2, "alice", None), Registration::Taken);
    }

    #[test]
    fn the_same_session_takes_its_name_over_from_a_stale_connection() {
        let mut registry = Registry::new();
        registry.register(1, "alice", Some("s1"));
        assert_eq!(
            registry.register(2, "alice", Some("s1")),
            Registration::TookOver { previous: 1 }
        );
        assert_eq!(registry.name_of(2), Some("alice"));
        assert_eq!(registry.name_of(1), None);
        // The stale connection closing later does not free the name it lost.
        assert_eq!(registry.release(1), None);
        assert!(registry.is_online("alice"));
    }

    #[test]
    fn a_disconnect_frees_the_name() {
        let mut registry = Registry::new();
        registry.register(1, "alice", None);
        assert_eq!(registry.release(1), Some("alice".to_owned()));
        assert!(!registry.is_online("alice"));
        assert!(registry.is_empty());
        assert_eq!(
            registry.register(2, "alice", None),
            Registration::Registered
        );
    }

    #[test]
    fn registering_a_new_name_gives_up_the_old_one() {
        let mut registry = Registry::new();
        registry.register(1, "alice", None);
        registry.register(1, "alicia", None);
        assert!(!registry.is_online("alice"));
        assert_eq!(registry.name_of(1), Some("alicia"));
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn a_refused_request_keeps_the_name_already_held() {
        let mut registry = Registry::new();
        registry.register(1, "alice", None);
        registry.register(2, "bob", None);
        assert_eq!(registry.register(2, "alice", None), Registration::Taken);
        assert_eq!(registry.name_of(2), Some("bob"));
    }

    #[test]
    fn delivery_fails_only_for_offline_targets_and_registered_senders() {
        let mut registry = Registry::new();
        registry.register(1, "alice", None);
        registry.register(2, "bob", None);
        assert_eq!(registry.undeliverable(1, "bob"), None);
        assert_eq!(registry.undeliverable(1, "carol"), Some("alice"));
        // A sender that never registered has no incoming topic to be told on.
        assert_eq!(registry.undeliverable(3, "carol"), None);
        registry.release(2);
        assert_eq!(registry.undeliverable(1, "bob"), Some("alice"));
    }
}
