//! One peer's negotiation state: who offered, what was applied, which candidates wait.
//!
//! Kept apart from the client machine so the ordering rules of SDP and ICE (remote
//! description before candidates, own description before own candidates) live in one place.

use super::chat::IncomingFile;
use crate::event::PeerStatus;
use crate::protocol::{Capabilities, IceCandidate, MessageId};
use crate::small_map::SmallMap;

use super::ConnId;

/// Candidates kept for one peer before they can be applied or sent.
pub(super) const MAX_PENDING_CANDIDATES: usize = 64;

/// Which side of the offer/answer exchange this client is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Offerer,
    Answerer,
}

/// The state of one chat with one peer, over one peer connection at a time.
#[derive(Debug)]
pub(super) struct PeerSession {
    pub conn: ConnId,
    /// The connection whose chat channel opened last. While the chat has left it and no
    /// other has opened, a `bye` from it still ends the chat: a peer that leaves says
    /// `bye` and then closes, and the close can be reported first (two tasks report them).
    pub last_open: Option<ConnId>,
    pub role: Role,
    pub status: PeerStatus,
    /// The backend has been told the remote description; candidates may be applied.
    pub remote_applied: bool,
    /// The remote ICE ufrag, to drop candidates meant for an older connection.
    pub remote_ufrag: Option<String>,
    /// The remote DTLS fingerprint: an offer with the same one comes from the same remote
    /// connection (an ICE restart), another from a new connection.
    pub remote_fingerprint: Option<String>,
    /// Remote candidates that arrived before the remote description.
    pub early_remote: Vec<IceCandidate>,
    /// Our own description has been published; candidates may follow it.
    pub local_sent: bool,
    /// Our own candidates gathered before our description was published.
    pub early_local: Vec<IceCandidate>,
    /// Our description as published, and the candidates published since: an offer may
    /// have to go again (a peer renewing its broker connection may have missed it).
    pub local_description: Option<String>,
    pub published_candidates: Vec<IceCandidate>,
    pub channel_open: bool,
    /// The far end of the open channel is known to be open too: the channel is ours and the
    /// peer acknowledged it, or the peer has sent on it. Until then a peerchat peer's
    /// messages wait (see `chat::heard_from`).
    pub heard: bool,
    /// When an open channel the peer has not been heard on counts as heard anyway (a peer
    /// that says nothing when its channel opens).
    pub hear_by: Option<u64>,
    /// The peer announced peerchat's additions (absent for the original client).
    pub remote_caps: Option<Capabilities>,
    /// The id of the last numbered message shown from the peer, to show each once.
    pub last_received: Option<MessageId>,
    /// Received but not yet acknowledged: the highest id, and when a separate ack is due
    /// if no message of mine carries it first.
    pub ack_pending: Option<MessageId>,
    pub ack_due: Option<u64>,
    /// My numbered messages the peer has not acknowledged yet, oldest first, as sent: a
    /// recovered connection sends them again (the peer drops what it already has).
    pub unacked: std::collections::VecDeque<(MessageId, String)>,
    /// Files arriving from the peer, by the peer's id.
    pub incoming_files: SmallMap<MessageId, IncomingFile>,
    /// My files not yet acknowledged, by id, with their sizes (for progress).
    pub outgoing_files: SmallMap<MessageId, u64>,
    /// My files whose chunks are not all handed to the channel yet, oldest first.
    pub sending: std::collections::VecDeque<OutgoingFile>,
    /// Bytes of file chunks handed to the transport, in all.
    pub chunk_bytes_handed: u64,
    /// At most this many bytes wait in the channel's send buffer (see `chat::SEND_BUFFER_HIGH`).
    pub send_buffered: u64,
    /// The peer's files refused lately, whose chunks are dropped without a word.
    pub refused_files: std::collections::VecDeque<MessageId>,
    /// When an unfinished setup is given up.
    pub setup_deadline: Option<u64>,
    /// A plain broker's presence record said the peer is away while we called it: an
    /// unanswered call is then reported as the peer being offline (see
    /// `presence::AWAY_GRACE_MS`).
    pub reported_away: bool,
    /// Since when ICE has reported the path lost (`disconnected`).
    pub lost_since: Option<u64>,
    /// The chat is being moved to a new connection (see `recovery`).
    pub recovery: Option<super::recovery::Recovery>,
}

/// A file of mine on its way: its bytes, and how many have been handed to the channel.
#[derive(Debug)]
pub(super) struct OutgoingFile {
    pub id: MessageId,
    pub data: Vec<u8>,
    pub handed: usize,
}

impl PeerSession {
    pub fn new(conn: ConnId, role: Role, setup_deadline: u64) -> Self {
        Self {
            conn,
            last_open: None,
            role,
            status: PeerStatus::New,
            remote_applied: false,
            remote_ufrag: None,
            remote_fingerprint: None,
            early_remote: Vec::new(),
            local_sent: false,
            early_local: Vec::new(),
            local_description: None,
            published_candidates: Vec::new(),
            channel_open: false,
            heard: false,
            hear_by: None,
            remote_caps: None,
            last_received: None,
            ack_pending: None,
            ack_due: None,
            unacked: std::collections::VecDeque::new(),
            incoming_files: SmallMap::new(),
            outgoing_files: SmallMap::new(),
            sending: std::collections::VecDeque::new(),
            chunk_bytes_handed: 0,
            send_buffered: 0,
            refused_files: std::collections::VecDeque::new(),
            setup_deadline: Some(setup_deadline),
            reported_away: false,
            lost_since: None,
            recovery: None,
        }
    }

    /// Moves the chat to a new connection: everything about the old connection is
    /// forgotten, the conversation (ids, acknowledgements, what awaits one) is kept. Files
    /// in flight are lost with the old channel.
    pub fn renew(&mut self, conn: ConnId, role: Role, setup_deadline: Option<u64>) {
        self.conn = conn;
        self.role = role;
        self.remote_applied = false;
        self.remote_ufrag = None;
        self.remote_fingerprint = None;
        self.early_remote.clear();
        self.forget_local_description();
        self.channel_open = false;
        self.heard = false;
        self.hear_by = None;
        self.setup_deadline = setup_deadline;
        self.reported_away = false;
        self.lost_since = None;
        self.incoming_files.clear();
        self.outgoing_files.clear();
        self.sending.clear();
        self.chunk_bytes_handed = 0;
        self.send_buffered = 0;
    }

    /// Renegotiates the same connection (an ICE restart): a new exchange of descriptions
    /// and candidates, while the channel and everything in flight on it stay.
    pub fn restart_in_place(&mut self, role: Role, setup_deadline: Option<u64>) {
        self.role = role;
        self.remote_applied = false;
        self.early_remote.clear();
        self.forget_local_description();
        self.setup_deadline = setup_deadline;
        self.lost_since = None;
    }

    /// A new exchange of descriptions starts: nothing of ours is published for it yet.
    fn forget_local_description(&mut self) {
        self.local_sent = false;
        self.early_local.clear();
        self.local_description = None;
        self.published_candidates.clear();
    }

    /// Takes what the peer announced in its offer or answer. A different run (the peer's app
    /// started again) numbers its messages anew, so nothing of it counts as seen.
    pub fn adopt_caps(&mut self, caps: Option<Capabilities>) {
        let run = |caps: &Option<Capabilities>| caps.as_ref().and_then(|c| c.run.clone());
        if run(&self.remote_caps).is_none() || run(&self.remote_caps) != run(&caps) {
            self.last_received = None;
            // An ack for the old run's numbering would confirm the new run's messages.
            self.ack_pending = None;
            self.ack_due = None;
            super::durable::without_acks(&mut self.unacked);
        }
        self.remote_caps = caps;
    }

    /// Remembers a refused file (the latest `keep` of them).
    pub fn refuse_file(&mut self, id: MessageId, keep: usize) {
        if self.refused_files.len() >= keep {
            self.refused_files.pop_front();
        }
        self.refused_files.push_back(id);
    }

    /// Whether the peer announced `feature` (we announce every feature we know).
    pub fn speaks(&self, feature: &str) -> bool {
        self.remote_caps
            .as_ref()
            .is_some_and(|caps| caps.features.iter().any(|f| f == feature))
    }

    /// Whether a remote candidate belongs to this connection's ICE session.
    ///
    /// Candidates carry the ufrag of the description they were gathered for; one from a
    /// replaced connection (after glare or a restart) would only waste connectivity checks.
    pub fn is_current_candidate(&self, candidate: &IceCandidate) -> bool {
        match (&candidate.username_fragment, &self.remote_ufrag) {
            (Some(theirs), Some(ours)) if !theirs.is_empty() => theirs == ours,
            _ => true,
        }
    }
}

/// Keeps at most [`MAX_PENDING_CANDIDATES`]; the oldest are dropped first, since a
/// flood of candidates is either hostile or from a connection that was replaced.
pub(super) fn push_bounded(queue: &mut Vec<IceCandidate>, candidate: IceCandidate) {
    if queue.len() >= MAX_PENDING_CANDIDATES {
        queue.remove(0);
    }
    queue.push(candidate);
}

/// Reads the first `a=fingerprint:` of an SDP (the certificate of the DTLS session).
pub(super) fn dtls_fingerprint(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=fingerprint:"))
        .map(str::to_owned)
}

/// Reads the session-level `a=ice-ufrag:` of an SDP.
pub(super) fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=ice-ufrag:"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(ufrag: Option<&str>) -> IceCandidate {
        IceCandidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: ufrag.map(str::to_owned),
        }
    }

    #[test]
    fn ufrag_is_read_from_sdp() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=ice-ufrag:AbCd\r\na=ice-pwd:x\r\n";
        assert_eq!(ice_ufrag(sdp).as_deref(), Some("AbCd"));
        assert_eq!(ice_ufrag("v=0\r\n"), None);
    }

    #[test]
    fn candidates_of_another_ice_session_are_not_current() {
        let mut session = PeerSession::new(1, Role::Offerer, 0);
        assert!(session.is_current_candidate(&candidate(Some("old"))));
        session.remote_ufrag = Some("new".into());
        assert!(!session.is_current_candidate(&candidate(Some("old"))));
        assert!(session.is_current_candidate(&candidate(Some("new"))));
        assert!(session.is_current_candidate(&candidate(None)));
    }

    #[test]
    fn pending_candidates_are_bounded() {
        let mut queue = Vec::new();
        for _ in 0..MAX_PENDING_CANDIDATES + 10 {
            push_bounded(&mut queue, candidate(None));
        }
        assert_eq!(queue.len(), MAX_PENDING_CANDIDATES);
    }
}
