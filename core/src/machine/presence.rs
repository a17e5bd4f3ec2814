//! Other users' presence as this client last heard it, bounded: presence records are
//! retained by the broker and anyone may publish one, so a flood of names must not grow
//! the client without end.

use std::collections::BTreeMap;

use super::ClientMachine;

/// Most users whose presence is remembered. Beyond it, users this client neither chats with
/// nor has messages waiting for make room (offline ones first); when none can, a new
/// stranger's presence goes unrecorded (a chat with it still works: an offer finds out).
pub(super) const MAX_PRESENCE: usize = 4096;

/// Strangers turned away before the book is swept for room again: a sweep walks every
/// entry, so a flood of new names pays for one only now and then.
const TURNED_AWAY_PER_SWEEP: u32 = 64;

/// Who is online, by name.
#[derive(Debug, Default)]
pub(super) struct PresenceBook {
    online: BTreeMap<String, bool>,
    turned_away: u32,
}

impl PresenceBook {
    /// `Some(true)` online, `Some(false)` offline, `None` unknown.
    pub fn get<Q: Ord + ?Sized>(&self, user: &Q) -> Option<&bool>
    where
        String: std::borrow::Borrow<Q>,
    {
        self.online.get(user)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.online.len()
    }
}

impl ClientMachine {
    /// Records `user`'s presence. Returns what was known before (`Some(None)`: nothing), or
    /// `None` when the record was not kept.
    pub(super) fn note_presence(&mut self, user: &str, online: bool) -> Option<Option<bool>> {
        let book = &self.presence;
        if book.online.len() >= MAX_PRESENCE && !book.online.contains_key(user) {
            self.make_room_for(user);
            if self.presence.online.len() >= MAX_PRESENCE {
                tracing::debug!(%user, "presence not recorded: too many users known");
                return None;
            }
        }
        Some(self.presence.online.insert(user.to_owned(), online))
    }

    /// Frees entries of users this client has nothing with: every offline one (once in a
    /// while), and one online one for a user it does have something with.
    fn make_room_for(&mut self, user: &str) {
        let (peers, outbox) = (&self.peers, &self.durable.outbox);
        let matters = |name: &str| peers.contains_key(name) || outbox.contains_key(name);
        let book = &mut self.presence;
        if matters(user) {
            let stranger = (book.online.keys()).find(|name| !matters(name)).cloned();
            if let Some(stranger) = stranger {
                book.online.remove(&stranger);
            }
            return;
        }
        let sweep = book.turned_away.is_multiple_of(TURNED_AWAY_PER_SWEEP);
        book.turned_away = book.turned_away.wrapping_add(1);
        if sweep {
            book.online.retain(|name, online| *online || matters(name));
        }
    }
}
