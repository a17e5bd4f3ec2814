//! The room mesh: a member holds a chat with every other current member of its rooms, so
//! each room message goes straight from its author to every member, and a member who comes
//! back online is met (and caught up) by all the others at once.
//!
//! Of two members, the one whose name sorts first calls; the other waits for the call, so
//! the pair does not offer twice (glare handling stays the backstop). A call that does not
//! open is tried again later, each wait twice the last. A chat either side ended on purpose
//! is not called again until the member has been offline and is back (a new run), or a chat
//! with it opens some other way: closing a chat with a member is respected, and room
//! messages still reach both through the others.

use super::{ClientMachine, MAX_PEERS, MAX_WATCHED};
use crate::event::ChatEnd;
use crate::small_map::{SmallMap, SmallSet};

/// The wait before calling a member again after a call of ours that did not open.
const RETRY_FIRST_MS: u64 = 5_000;

/// The longest wait between calls to a member that does not answer.
const RETRY_MAX_MS: u64 = 120_000;

/// How the calls to the members of this client's rooms stand.
#[derive(Debug, Default)]
pub(super) struct Mesh {
    /// Members called and not chatting yet: when the next call may go, and calls so far.
    calls: SmallMap<String, (u64, u32)>,
    /// Members whose chat was ended on purpose, by either side.
    closed: SmallSet<String>,
    /// Tests that carry chats by hand make no calls of their own.
    #[cfg(test)]
    pub(super) off: bool,
}

impl ClientMachine {
    /// Every current member of the rooms this client is in, but this client.
    pub(super) fn room_members(&self) -> SmallSet<String> {
        (self.rooms())
            .filter(|room| room.joined())
            .flat_map(|room| room.members())
            .filter(|member| *member != self.me)
            .collect()
    }

    /// Calls the members this client should chat with and does not.
    pub(super) fn form_mesh(&mut self, now: u64) {
        let members = self.room_members();
        let chatting: Vec<String> = (self.mesh.calls.keys())
            .filter(|member| self.peers.get(*member).is_some_and(|s| s.channel_open))
            .cloned()
            .collect();
        for member in chatting {
            self.mesh.calls.remove(&member);
        }
        self.mesh.calls.retain(|member, _| members.contains(member));
        #[cfg(test)]
        if self.mesh.off {
            return;
        }
        if !self.registration.is_ready() {
            return;
        }
        // Past the presence cap a member whose presence is not watched is not called: unknown
        // is not online, and the call would make it a chat's peer, taking another's watch.
        let watch_full = self.presence_subscribed.len() >= MAX_WATCHED;
        let due: Vec<String> = (members.into_iter())
            .filter(|member| !watch_full || self.presence_subscribed.contains(member))
            .filter(|member| self.me < *member)
            .filter(|member| !self.peers.contains_key(member))
            .filter(|member| self.presence.get(member) != Some(&false))
            .filter(|member| !self.mesh.closed.contains(member))
            .filter(|member| (self.mesh.calls.get(member)).is_none_or(|(next, _)| *next <= now))
            .collect();
        for member in due {
            if self.peers.len() >= MAX_PEERS {
                return;
            }
            let calls = self.mesh.calls.get(&member).map_or(0, |(_, calls)| *calls);
            let wait = (RETRY_FIRST_MS << calls.min(8)).min(RETRY_MAX_MS);
            self.mesh
                .calls
                .insert(member.clone(), (now + wait, calls + 1));
            tracing::debug!(%member, "calling a room member");
            self.call(&member, now);
        }
    }

    /// When the next call to a member that did not answer may go.
    pub(super) fn mesh_deadline(&self) -> Option<u64> {
        (self.mesh.calls.iter())
            .filter(|(member, _)| !self.peers.contains_key(*member))
            .map(|(_, (next, _))| *next)
            .min()
    }

    /// A chat ended: one ended on purpose is not called again by the mesh.
    pub(super) fn mesh_chat_ended(&mut self, peer: &str, reason: ChatEnd) {
        if matches!(reason, ChatEnd::Closed | ChatEnd::PeerLeft) {
            self.mesh.closed.insert(peer.to_owned());
        }
    }

    /// A chat with `peer` opened, or `peer` is back online after being away: the mesh may
    /// call it again.
    pub(super) fn mesh_may_call(&mut self, peer: &str) {
        self.mesh.closed.remove(peer);
        self.mesh.calls.remove(peer);
    }
}
