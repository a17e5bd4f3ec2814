//! Presence per contact: the client watches the presence records of the peers it has
//! something with (a chat, an outbox, a place in the app's contact list) and no others, by
//! exact topic. So a login costs one record per contact, whatever the number of users, and
//! nothing needs a wildcard subscription or more retained messages than a client has
//! contacts. Records of anyone else are ignored, which also keeps what a hostile broker can
//! make the client remember bounded.

use super::recovery::Trigger;
use super::registration::RECORD_LIFETIME_MS;
use super::{Action, ClientMachine, Delivery, MAX_WATCHED};
use crate::event::{ChatEnd, ClientError, ClientEvent, PeerStatus};
use crate::small_map::SmallSet;

/// How long a call waits for an answer once a plain broker's presence record said the peer
/// is away. An original client holding the name answers within it; an empty name is
/// reported offline after it, not after the full setup timeout.
pub(super) const AWAY_GRACE_MS: u64 = 3_000;
use crate::protocol::{self, Presence, SignalMessage, presence_topic};

impl ClientMachine {
    /// Watches `peer`'s presence (a contact the app lists), until
    /// [`ClientMachine::unwatch_presence`].
    pub fn watch_presence(&mut self, peer: &str) -> Result<(), ClientError> {
        protocol::validate_username(peer).map_err(ClientError::InvalidUsername)?;
        if peer != self.me {
            self.watched.insert(peer.to_owned());
            self.sync_presence();
        }
        Ok(())
    }

    /// Stops watching `peer`'s presence, unless a chat or an outbox still needs it.
    pub fn unwatch_presence(&mut self, peer: &str) {
        self.watched.remove(peer);
        self.sync_presence();
    }

    /// Whom the client watches, at most [`MAX_WATCHED`], the most needed first: peers with a
    /// chat (recovering a lost one waits on their presence), then peers with an outbox (when
    /// to call), then the app's contacts, then room members (the mesh calls those online,
    /// `room_mesh`). Past the bound the least needed go, so a long contact list or many rooms
    /// never end the watch on a chat's peer.
    fn contacts(&self) -> SmallSet<String> {
        let mut contacts = SmallSet::new();
        add_while_room(&mut contacts, self.peers.keys());
        add_while_room(&mut contacts, self.durable.outbox.keys());
        add_while_room(&mut contacts, &self.watched);
        if contacts.len() < MAX_WATCHED {
            add_while_room(&mut contacts, &self.room_members());
        }
        contacts
    }

    /// Subscribes to the presence of new contacts and unsubscribes from former ones, while
    /// the broker connection is up (after a reconnect, everything is subscribed again).
    pub(super) fn sync_presence(&mut self) {
        if !self.registration.is_connected() {
            return;
        }
        let contacts = self.contacts();
        let gone: Vec<String> = (self.presence_subscribed.difference(&contacts))
            .cloned()
            .collect();
        for peer in gone {
            self.presence_subscribed.remove(&peer);
            self.presence.remove(&peer);
            self.actions.push_back(Action::Unsubscribe {
                topic: presence_topic(&peer),
            });
        }
        for peer in contacts {
            if self.presence_subscribed.insert(peer.clone()) {
                self.actions.push_back(Action::Subscribe {
                    topic: presence_topic(&peer),
                    delivery: Delivery::AtLeastOnce,
                });
            }
        }
    }

    /// A plain broker keeps a user's offline record until someone deletes it: a record of
    /// someone away longer than [`RECORD_LIFETIME_MS`] is deleted by the first client that
    /// reads it (peerchat-server keeps no records; there, presence is its registry's).
    fn clear_if_gone_for_good(&mut self, user: &str, record: Option<&Presence>) {
        let Some(since) = record.filter(|p| !p.online).and_then(|p| p.since) else {
            return;
        };
        let gone =
            (self.last_wall()).is_some_and(|now| now.saturating_sub(since) > RECORD_LIFETIME_MS);
        if gone && !self.registration.on_peerchat_server() {
            tracing::debug!(user, "clearing the record of a user gone for good");
            self.actions.push_back(Action::Publish {
                topic: presence_topic(user),
                payload: Vec::new(),
                retain: true,
                delivery: Delivery::AtLeastOnce,
            });
        }
    }

    pub(super) fn on_presence_record(&mut self, user: &str, payload: &[u8], now: u64) {
        if user != self.me && !self.presence_subscribed.contains(user) {
            tracing::debug!(user, "presence of someone not watched ignored");
            return;
        }
        // An empty retained payload deletes the record: the user is gone.
        let presence = if payload.is_empty() {
            None
        } else {
            match protocol::decode(payload) {
                Ok(SignalMessage::Presence(p)) if p.from == user => Some(p),
                Ok(_) => {
                    self.unexpected(user.to_owned(), "presence", "record does not match topic");
                    return;
                }
                Err(error) => {
                    self.events
                        .push_back(ClientEvent::Error(ClientError::BadSignal {
                            from: user.to_owned(),
                            error,
                        }));
                    return;
                }
            }
        };
        if user == self.me {
            self.registration.on_own_presence(presence.as_ref());
            return;
        }
        self.clear_if_gone_for_good(user, presence.as_ref());
        let online = presence.is_some_and(|p| p.online);
        tracing::debug!(%user, online, "presence");
        let previous = self.presence.insert(user.to_owned(), online);
        if previous != Some(online) {
            self.events.push_back(ClientEvent::Presence {
                user: user.to_owned(),
                online,
            });
        }
        let back = online && previous == Some(false);
        if back {
            // A new run of the peer: a chat ended on purpose before does not bind it.
            self.mesh_may_call(user);
        }
        if online && previous != Some(true) && self.durable.outbox.contains_key(user) {
            self.deliver_outbox(now);
        }
        let calling = self.peers.get(user).is_some_and(|s| {
            !s.channel_open && s.role == super::Role::Offerer && s.recovery.is_none()
        });
        if !online && calling {
            // A call to a peer the broker says is away: a plain broker's way of saying what
            // peerchat-server's delivery-failed says. The record may be stale, though (an
            // original client, which publishes none, may hold the name now): the call waits
            // a moment for an answer before the peer is reported offline.
            let session = self.peers.get_mut(user).expect("calling it");
            session.reported_away = true;
            let by = now + AWAY_GRACE_MS;
            session.setup_deadline = Some(session.setup_deadline.map_or(by, |d| d.min(by)));
        } else if back && self.recovering(user) {
            // Whatever was offered while the peer was away never reached it.
            self.begin_recovery(user, now, Trigger::Reachable);
        } else if !online
            && self.peer_status(user) == Some(PeerStatus::Disconnected)
            && !self.recoverable(user)
        {
            // The path is lost and a peer that cannot recover chats has left the broker: it
            // is gone. (A peerchat peer's chat stays: see `recoverable`.)
            self.end_session(user, PeerStatus::Closed, ChatEnd::PeerOffline);
        }
    }
}

/// Adds `names` to `contacts` in their order until it holds [`MAX_WATCHED`].
fn add_while_room<'a>(
    contacts: &mut SmallSet<String>,
    names: impl IntoIterator<Item = &'a String>,
) {
    let room = MAX_WATCHED.saturating_sub(contacts.len());
    let new: Vec<String> = (names.into_iter())
        .filter(|name| !contacts.contains(*name))
        .take(room)
        .cloned()
        .collect();
    contacts.extend(new);
}
