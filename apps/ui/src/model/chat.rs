//! The chat screen's state: the peers, their conversations and statuses, and the banner.

use peerchat_core::protocol::MessageId;

use super::Attachment;
use super::room::{RoomView, new_message};
use peerchat_core::room::RoomId;
use peerchat_core::{
    ChatEnd, ClientError, ClientEvent, PathKind, PeerPath, PeerStatus, SignalingState,
    StoredMessage,
};

/// A wall-clock time of day, for message stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageTime {
    pub hour: u8,
    pub minute: u8,
}

impl std::fmt::Display for MessageTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Mine,
    Theirs,
    /// A note from peerchat itself inside a conversation ("bob is offline").
    Note,
}

/// How far one of my messages got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Handed to the peer connection (✓).
    Sent,
    /// The peer acknowledged it (✓✓): peerchat peers only, original clients send no acks.
    Delivered,
    /// The client refused it: the peer was not connected.
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub id: u64,
    pub direction: Direction,
    pub text: String,
    pub at: MessageTime,
    /// Only for my messages.
    pub delivery: Option<Delivery>,
    /// The client's id for my message, which its acknowledgement names.
    pub sent_id: Option<MessageId>,
    /// The peer's id for a file it is sending me.
    pub received_id: Option<MessageId>,
    /// An image or other file carried by the message.
    pub attachment: Option<Attachment>,
    /// Bytes transferred so far and in all, while a file is on its way.
    pub progress: Option<(u64, u64)>,
}

/// A peer's identity key as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// To compare with the peer out of band; equal numbers mean no one sits in between.
    pub safety_number: Option<String>,
    /// The user compared safety numbers and said so.
    pub verified: bool,
}

/// One peer in the sidebar, with its conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerEntry {
    pub name: String,
    pub status: PeerStatus,
    /// Presence as the broker reports it; `None` when unknown (peers that do not announce it).
    pub online: Option<bool>,
    pub unread: usize,
    pub messages: Vec<ChatMessage>,
    /// How the connection runs, while it is connected.
    pub path: Option<PeerPath>,
    /// The peer's identity, once its key is known (peerchat peers seal their signaling;
    /// original clients do not and stay `None`).
    pub identity: Option<PeerIdentity>,
    /// The chat has opened and not ended: while its status is not `connected`, it is
    /// being reconnected (a network switch, say) and what I write waits for it.
    pub chat_open: bool,
    /// Why the last chat ended, once it did.
    pub ended: Option<ChatEnd>,
    /// Orders the sidebar: most recent activity first.
    last_activity: u64,
    /// Earlier runs' messages were asked for (see [`ChatState::restore_history`]).
    history_restored: bool,
}

impl PeerEntry {
    /// The newest message, shortened for the sidebar.
    pub fn preview(&self) -> Option<String> {
        const PREVIEW_CHARS: usize = 40;
        let last = self
            .messages
            .iter()
            .rev()
            .find(|m| m.direction != Direction::Note)?;
        let body = match &last.attachment {
            Some(file) if file.mime.starts_with("image/") => "Image",
            Some(file) => file.name.as_str(),
            None if last.progress.is_some() => "Receiving a file…",
            None => last.text.as_str(),
        };
        let mut text: String = body.chars().take(PREVIEW_CHARS).collect();
        if body.chars().nth(PREVIEW_CHARS).is_some() {
            text.push('…');
        }
        Some(match last.direction {
            Direction::Mine => format!("You: {text}"),
            _ => text,
        })
    }

    pub fn tone(&self) -> Tone {
        if self.reconnecting() {
            Tone::Pending
        } else {
            Tone::of(self.status)
        }
    }

    /// The chat is being moved to a new connection: it has not ended, and messages wait.
    pub fn reconnecting(&self) -> bool {
        self.chat_open && self.status != PeerStatus::Connected
    }

    /// The status in a word, for the header and the list.
    pub fn status_label(&self) -> &'static str {
        if self.reconnecting() {
            "reconnecting"
        } else {
            self.status.as_str()
        }
    }

    /// How the connection runs, in words, for the peer info panel.
    pub fn route(&self) -> &'static str {
        match self.path.map(|p| p.kind) {
            Some(PathKind::Direct) => "Direct, on the same network",
            Some(PathKind::ThroughNat) => "Direct, through NAT",
            Some(PathKind::Relayed) => "Relayed by a TURN server (still end-to-end encrypted)",
            None if self.status == PeerStatus::Connected => "Connected; measuring…",
            None => "Not connected",
        }
    }

    /// The latest round-trip time, for the peer info panel.
    pub fn round_trip(&self) -> String {
        match self.path.and_then(|p| p.rtt_ms) {
            Some(ms) if ms < 10.0 => format!("{ms:.1} ms"),
            Some(ms) => format!("{ms:.0} ms"),
            None => "—".to_owned(),
        }
    }

    /// Presence in words.
    /// Who is at the other end, as far as keys can tell.
    pub fn identity_label(&self) -> &'static str {
        match &self.identity {
            Some(identity) if identity.verified => "Verified: safety numbers compared",
            Some(_) => "Not verified yet: compare the safety number with them",
            None => "Unsigned: no identity key (the original app, or not connected yet)",
        }
    }

    pub fn presence(&self) -> &'static str {
        match self.online {
            Some(true) => "Online",
            Some(false) => "Offline",
            None => "Unknown (not announced)",
        }
    }
}

/// The colour of a status dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Connected.
    Good,
    /// Connecting.
    Pending,
    /// Failed, disconnected or closed.
    Bad,
}

impl Tone {
    pub fn of(status: PeerStatus) -> Self {
        match status {
            PeerStatus::Connected => Self::Good,
            PeerStatus::New | PeerStatus::Connecting => Self::Pending,
            PeerStatus::Disconnected | PeerStatus::Failed | PeerStatus::Closed => Self::Bad,
        }
    }

    /// The CSS class of the dot.
    pub fn class(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Pending => "pending",
            Self::Bad => "bad",
        }
    }
}

/// Whether the message input can send, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Composer {
    Ready,
    Disabled(String),
}

/// Why a peer could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddPeerError {
    Empty,
    Yourself,
}

impl std::fmt::Display for AddPeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "Type the name of the person to chat with.",
            Self::Yourself => "That is you: type someone else's name.",
        })
    }
}

/// Something to tell the user that belongs to no conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: u64,
    pub text: String,
}

/// A message for a chat that is not in view: the platform raises a notification for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Who wrote, and in a room where: the notification's title.
    pub title: String,
    /// The conversation it belongs to (see `Chat::key`): a newer alert for the same one
    /// replaces the notification shown.
    pub chat: String,
    pub body: String,
}

/// One conversation: a 1:1 chat or a room. Both count unread messages and raise alerts
/// the same way.
#[derive(Debug, Clone, Copy)]
enum Chat<'a> {
    Peer(&'a str),
    Room(&'a RoomId),
}

impl Chat<'_> {
    /// Names the conversation among all of them: a peer's name, or `#` and a room's id (a
    /// username never holds `#`, so the two never meet).
    fn key(self) -> String {
        match self {
            Chat::Peer(peer) => peer.to_owned(),
            Chat::Room(room) => format!("#{room}"),
        }
    }
}

/// Alerts not yet taken by the platform; beyond it the oldest go (a burst raises a few).
const MAX_ALERTS: usize = 8;

/// How much of a message an alert shows.
const ALERT_BODY_CHARS: usize = 140;

/// Everything the chat screen shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatState {
    pub me: String,
    pub signaling: SignalingState,
    pub selected: Option<String>,
    /// The room whose conversation is open; at most one of it and `selected` is set.
    pub selected_room: Option<RoomId>,
    pub notices: Vec<Notice>,
    /// The page or window is out of view (a hidden tab, a minimised window): no chat is.
    pub hidden: bool,
    alerts: Vec<Alert>,
    peers: Vec<PeerEntry>,
    rooms: Vec<RoomView>,
    /// Presence of every user heard of, listed or not: someone added later shows it at once.
    presence: peerchat_core::small_map::SmallMap<String, bool>,
    counter: u64,
}

/// How many notices stay on screen; older ones go first.
const MAX_NOTICES: usize = 3;

/// How much of a conversation is kept on screen; the oldest messages go first, so a
/// chatty or hostile peer cannot grow the app's memory without bound.
pub const MAX_MESSAGES_PER_PEER: usize = 1000;

impl ChatState {
    pub fn new(me: &str) -> Self {
        Self {
            me: me.to_owned(),
            signaling: SignalingState::Online,
            selected: None,
            selected_room: None,
            notices: Vec::new(),
            hidden: false,
            alerts: Vec::new(),
            peers: Vec::new(),
            rooms: Vec::new(),
            presence: peerchat_core::small_map::SmallMap::new(),
            counter: 0,
        }
    }

    /// The peers, most recent activity first.
    pub fn peers(&self) -> Vec<&PeerEntry> {
        let mut peers: Vec<&PeerEntry> = self.peers.iter().collect();
        peers.sort_by_key(|p| std::cmp::Reverse(p.last_activity));
        peers
    }

    pub fn peer(&self, name: &str) -> Option<&PeerEntry> {
        self.peers.iter().find(|p| p.name == name)
    }

    pub fn selected_peer(&self) -> Option<&PeerEntry> {
        self.peer(self.selected.as_deref()?)
    }

    /// Adds `name` to the sidebar (if new) and opens its conversation. Returns the trimmed
    /// name to call.
    pub fn add_peer(&mut self, name: &str) -> Result<String, AddPeerError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(AddPeerError::Empty);
        }
        if name == self.me {
            return Err(AddPeerError::Yourself);
        }
        self.entry(name);
        self.select(name);
        Ok(name.to_owned())
    }

    /// Opens `name`'s conversation and marks it read.
    pub fn select(&mut self, name: &str) {
        if let Some(peer) = self.listed_mut(name) {
            peer.unread = 0;
            self.selected = Some(name.to_owned());
            self.selected_room = None;
        }
    }

    /// Back to the peer list (the phone layout shows one screen at a time).
    pub fn deselect(&mut self) {
        self.selected = None;
        self.selected_room = None;
    }

    /// The rooms, most recent activity first.
    pub fn rooms(&self) -> Vec<&RoomView> {
        let mut rooms: Vec<&RoomView> = self.rooms.iter().collect();
        rooms.sort_by_key(|r| std::cmp::Reverse(r.last_activity));
        rooms
    }

    pub fn room(&self, id: &RoomId) -> Option<&RoomView> {
        self.rooms.iter().find(|r| &r.id == id)
    }

    pub fn selected_room(&self) -> Option<&RoomView> {
        self.room(self.selected_room.as_ref()?)
    }

    /// Opens a room's conversation and marks it read. A room just created opens too: the
    /// client lists it a moment later (its first `RoomMembers`), and it shows then.
    pub fn select_room(&mut self, id: &RoomId) {
        if let Some(room) = self.room_mut(id) {
            room.unread = 0;
        }
        self.selected_room = Some(id.clone());
        self.selected = None;
    }

    /// Records a message I wrote into `room`, with what the client answered: its number
    /// there (the message shows at once, last), or why it refused (a notice).
    pub fn record_room_sent(
        &mut self,
        room: &RoomId,
        text: &str,
        sent: Result<u64, ClientError>,
        at: MessageTime,
    ) {
        self.record_mine_in_room(room, (text, None), sent, at);
    }

    /// Records a picture I sent into `room` (shown at once), with what the client answered.
    pub fn record_room_picture_sent(
        &mut self,
        room: &RoomId,
        attachment: Attachment,
        sent: Result<u64, ClientError>,
        at: MessageTime,
    ) {
        self.record_mine_in_room(room, ("", Some(attachment)), sent, at);
    }

    fn record_mine_in_room(
        &mut self,
        room: &RoomId,
        (text, attachment): (&str, Option<Attachment>),
        sent: Result<u64, ClientError>,
        at: MessageTime,
    ) {
        match sent {
            Ok(seq) => {
                let id = self.tick();
                let me = self.me.clone();
                if let Some(view) = self.room_mut(room) {
                    let mut message = new_message(id, me, seq, text.to_owned(), at, true);
                    message.attachment = attachment;
                    view.add_mine(message);
                    view.last_activity = id;
                }
            }
            Err(error) => self.report(error, at),
        }
    }

    /// Whether I can write into `room` now, or why not.
    pub fn room_composer(&self, room: &RoomId) -> Composer {
        match self.room(room) {
            Some(view) if view.joined => Composer::Ready,
            Some(_) => Composer::Disabled("You are no longer in this room.".to_owned()),
            None => Composer::Disabled("No such room.".to_owned()),
        }
    }

    /// Each member of `room` with how my chat with them runs: the dot's tone and a word.
    pub fn room_members(&self, room: &RoomId) -> Vec<(String, Tone, &'static str)> {
        let Some(view) = self.room(room) else {
            return Vec::new();
        };
        (view.members.iter())
            .map(|member| match self.peer(member) {
                _ if *member == self.me => (member.clone(), Tone::Good, "you"),
                Some(peer) => (member.clone(), peer.tone(), peer.status_label()),
                None => (member.clone(), Tone::Pending, "not chatting yet"),
            })
            .collect()
    }

    fn room_mut(&mut self, id: &RoomId) -> Option<&mut RoomView> {
        self.rooms.iter_mut().find(|r| &r.id == id)
    }

    /// Takes a room event into the state.
    fn apply_room(&mut self, event: ClientEvent, at: MessageTime) {
        match event {
            ClientEvent::RoomMembers {
                room,
                name,
                members,
                joined,
            } => {
                let tick = self.tick();
                if self.room(&room).is_none() {
                    self.rooms
                        .push(RoomView::new(room.clone(), name.clone(), tick));
                }
                if let Some(view) = self.room_mut(&room) {
                    view.set_members(name, members, joined);
                    view.last_activity = tick;
                }
            }
            ClientEvent::RoomMessage {
                room,
                author,
                seq,
                lamport,
                text,
                picture,
            } => {
                let id = self.tick();
                let Some(view) = self.room_mut(&room) else {
                    return;
                };
                let title = format!("{author} in {}", view.name);
                let body = match &picture {
                    Some(_) if text.is_empty() => "a picture".to_owned(),
                    _ => text.clone(),
                };
                let mut message = new_message(id, author, seq, text, at, false);
                message.arriving = picture.map(|p| p.size);
                if view.add(message, lamport) {
                    view.last_activity = id;
                    self.attend(Chat::Room(&room), title, &body);
                }
            }
            ClientEvent::RoomDelivery { room, seq, holders } => {
                if let Some(view) = self.room_mut(&room) {
                    view.delivered(seq, holders);
                }
            }
            ClientEvent::RoomPicture {
                room,
                author,
                seq,
                picture,
                data,
            } => {
                if let Some(view) = self.room_mut(&room) {
                    let attachment = Attachment::new(picture.name, picture.mime, &data);
                    view.picture_arrived(&author, seq, attachment);
                }
            }
            ClientEvent::RoomWithdrawn { room, author, seq } => {
                if let Some(view) = self.room_mut(&room) {
                    view.withdraw(&author, seq);
                }
            }
            ClientEvent::RoomRefused { error, .. } => self.report(ClientError::Room(error), at),
            _ => {}
        }
    }

    /// Records a message I sent to `peer`, with what the client answered: its id, or why
    /// it refused (which goes into the conversation as a note).
    pub fn record_sent(
        &mut self,
        peer: &str,
        text: &str,
        sent: Result<MessageId, ClientError>,
        at: MessageTime,
    ) {
        self.record_mine(peer, text, sent, at, |_| {});
    }

    /// Adds one of my messages with what the client answered: its id (✓ until the ack), or
    /// a refusal (marked, and explained in a note after it). `complete` adds the rest of
    /// the message (an attachment) before the note.
    pub(super) fn record_mine(
        &mut self,
        peer: &str,
        text: &str,
        sent: Result<MessageId, ClientError>,
        at: MessageTime,
        complete: impl FnOnce(&mut ChatMessage),
    ) {
        let (delivery, sent_id) = match &sent {
            Ok(id) => (Delivery::Sent, Some(*id)),
            Err(_) => (Delivery::Failed, None),
        };
        self.push(peer, Direction::Mine, text, at, Some(delivery));
        if let Some(message) = self.entry(peer).messages.last_mut() {
            message.sent_id = sent_id;
            complete(message);
        }
        if let Err(error) = sent {
            self.push(peer, Direction::Note, &error.to_string(), at, None);
        }
    }

    /// Whether `peer`'s kept history should be asked for: listed, and not asked for yet.
    pub fn wants_history(&self, peer: &str) -> bool {
        self.peer(peer).is_some_and(|p| !p.history_restored)
    }

    /// Puts what the client kept of the conversation with `peer` (oldest first) in front
    /// of it, once, and only into a conversation with nothing in it yet: what this run
    /// showed is in the store too, and must not appear twice. My messages still waiting
    /// for their acknowledgement show ✓ and turn ✓✓ when it comes.
    pub fn restore_history(
        &mut self,
        peer: &str,
        kept: Vec<StoredMessage>,
        time_of: impl Fn(u64) -> MessageTime,
    ) {
        let Some(entry) = self.listed_mut(peer) else {
            return;
        };
        let fresh = !entry.history_restored && entry.messages.is_empty();
        entry.history_restored = true;
        if !fresh {
            return;
        }
        let keep = kept.len().min(MAX_MESSAGES_PER_PEER);
        let skip = kept.len() - keep;
        for message in kept.into_iter().skip(skip) {
            let id = self.tick();
            let (direction, delivery, sent_id) = if message.outgoing {
                let delivery = if message.delivered {
                    Delivery::Delivered
                } else {
                    Delivery::Sent
                };
                (Direction::Mine, Some(delivery), message.id)
            } else {
                (Direction::Theirs, None, None)
            };
            self.entry(peer).messages.push(ChatMessage {
                id,
                direction,
                text: message.text,
                at: time_of(message.at_ms),
                delivery,
                sent_id,
                received_id: None,
                attachment: None,
                progress: None,
            });
        }
    }

    /// Whether I can send to `peer` now, or why not.
    pub fn composer(&self, peer: &str) -> Composer {
        let Some(entry) = self.peer(peer) else {
            return Composer::Disabled(format!("Add {peer} first."));
        };
        if entry.reconnecting() {
            // The client keeps what I write and sends it once the chat is back.
            return Composer::Ready;
        }
        match (entry.status, entry.ended) {
            (PeerStatus::Connected, _) => Composer::Ready,
            (PeerStatus::New | PeerStatus::Connecting, _) => {
                Composer::Disabled(format!("Connecting to {peer}…"))
            }
            (_, Some(reason)) => Composer::Disabled(format!(
                "{} Press Connect to chat again.",
                reason.describe(peer)
            )),
            _ => Composer::Disabled(format!("{peer} is not connected. Press Connect to retry.")),
        }
    }

    /// Whether calling `peer` makes sense now: not yet called, or the chat ended or broke,
    /// and the signaling server is there to carry the call.
    pub fn can_call(&self, peer: &str) -> bool {
        self.signaling == SignalingState::Online
            && self.peer(peer).is_some_and(|p| {
                !p.reconnecting()
                    && matches!(
                        p.status,
                        PeerStatus::New
                            | PeerStatus::Disconnected
                            | PeerStatus::Failed
                            | PeerStatus::Closed
                    )
            })
    }

    /// Something arrived in `chat`: unread, with an alert titled `title`, unless that
    /// conversation is in view (open, and the page or window shown).
    fn attend(&mut self, chat: Chat, title: String, body: &str) {
        let open = match chat {
            Chat::Peer(peer) => self.selected.as_deref() == Some(peer),
            Chat::Room(room) => self.selected_room.as_ref() == Some(room),
        };
        if !self.hidden && open {
            return;
        }
        match chat {
            Chat::Peer(peer) => self.entry(peer).unread += 1,
            Chat::Room(room) => {
                if let Some(view) = self.room_mut(room) {
                    view.unread += 1;
                }
            }
        }
        if self.alerts.len() == MAX_ALERTS {
            self.alerts.remove(0);
        }
        self.alerts.push(Alert {
            title,
            chat: chat.key(),
            body: body.chars().take(ALERT_BODY_CHARS).collect(),
        });
    }

    /// The alerts raised since the last call, oldest first.
    pub fn take_alerts(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.alerts)
    }

    /// The page or window went out of view, or came back: the open chat is read then.
    pub fn set_hidden(&mut self, hidden: bool) {
        self.hidden = hidden;
        if let (false, Some(open)) = (hidden, self.selected.clone()) {
            self.entry(&open).unread = 0;
        }
        if let (false, Some(open)) = (hidden, self.selected_room.clone())
            && let Some(room) = self.room_mut(&open)
        {
            room.unread = 0;
        }
    }

    /// The window's title: the unread count, if any, then the app's name.
    pub fn window_title(&self) -> String {
        let peers = self.peers.iter().map(|p| p.unread).sum::<usize>();
        match peers + self.rooms.iter().map(|r| r.unread).sum::<usize>() {
            0 => "peerchat".to_owned(),
            unread => format!("({unread}) peerchat"),
        }
    }

    /// Takes a client event into the state.
    pub fn apply(&mut self, event: ClientEvent, at: MessageTime) {
        match event {
            ClientEvent::Message { from, text } => {
                self.push(&from, Direction::Theirs, &text, at, None);
                self.attend(Chat::Peer(&from), from.clone(), &text);
            }
            ClientEvent::Delivered { peer, id } => {
                let message = self.message_mut(&peer, |m| m.sent_id == Some(id));
                if let Some(message) = message {
                    message.delivery = Some(Delivery::Delivered);
                    message.progress = None;
                }
            }
            ClientEvent::Transfer {
                peer,
                id,
                incoming,
                done,
                total,
            } => self.on_transfer(&peer, id, incoming, (done, total), at),
            ClientEvent::File {
                from,
                id,
                name,
                mime,
                data,
            } => {
                self.attend(Chat::Peer(&from), from.clone(), &format!("📎 {name}"));
                self.on_file(&from, id, Attachment::new(name, mime, &data), at);
            }
            ClientEvent::PeerConnected(peer) => self.set_status(&peer, PeerStatus::Connected),
            ClientEvent::PeerDisconnected { peer, reason } => {
                if let Some(entry) = self.listed_mut(&peer) {
                    if !entry.status.is_finished() {
                        entry.status = PeerStatus::Closed;
                        entry.path = None;
                    }
                    entry.chat_open = false;
                    entry.ended = Some(reason);
                    // Why, in the conversation, where the user looks; then what it cut short.
                    self.push(&peer, Direction::Note, &reason.describe(&peer), at, None);
                }
                self.interrupt_transfers(&peer);
            }
            ClientEvent::Status { peer, status } => self.set_status(&peer, status),
            ClientEvent::PeerIdentity {
                peer,
                safety_number,
                verified,
                ..
            } => {
                self.entry(&peer).identity = Some(PeerIdentity {
                    safety_number,
                    verified,
                });
            }
            ClientEvent::Path { peer, path } => {
                if let Some(entry) = self.listed_mut(&peer) {
                    entry.path = Some(path);
                }
            }
            ClientEvent::Presence { user, online } => {
                if let Some(entry) = self.listed_mut(&user) {
                    entry.online = Some(online);
                }
                self.presence.insert(user, online);
            }
            ClientEvent::Signaling(state) => self.signaling = state,
            ClientEvent::Error(error) => self.report(error, at),
            room @ (ClientEvent::RoomRefused { .. }
            | ClientEvent::RoomMessage { .. }
            | ClientEvent::RoomPicture { .. }
            | ClientEvent::RoomMembers { .. }
            | ClientEvent::RoomDelivery { .. }
            | ClientEvent::RoomWithdrawn { .. }) => self.apply_room(room, at),
            // A client started offline registered once a server answered, or was refused.
            ClientEvent::Registered => self.signaling = SignalingState::Online,
            ClientEvent::RegistrationRefused(error) => self.report(error, at),
        }
    }

    /// Dismisses a notice.
    pub fn dismiss(&mut self, id: u64) {
        self.notices.retain(|n| n.id != id);
    }

    /// An error about one peer goes into its conversation; others become notices.
    fn report(&mut self, error: ClientError, at: MessageTime) {
        match peer_of(&error) {
            Some(peer) if self.peer(peer).is_some() => {
                let peer = peer.to_owned();
                self.push(&peer, Direction::Note, &error.to_string(), at, None);
            }
            _ => {
                let id = self.tick();
                self.notices.push(Notice {
                    id,
                    text: error.to_string(),
                });
                let excess = self.notices.len().saturating_sub(MAX_NOTICES);
                self.notices.drain(..excess);
            }
        }
    }

    fn set_status(&mut self, peer: &str, status: PeerStatus) {
        let tick = self.tick();
        let entry = self.entry(peer);
        entry.status = status;
        match status {
            PeerStatus::Connected => {
                entry.chat_open = true;
                entry.ended = None;
            }
            // A new chat starts; a finished one is over.
            PeerStatus::New | PeerStatus::Failed | PeerStatus::Closed => entry.chat_open = false,
            PeerStatus::Connecting | PeerStatus::Disconnected => {}
        }
        if status != PeerStatus::Connected {
            entry.path = None;
        }
        if status.is_finished() {
            self.interrupt_transfers(peer);
        }
        let entry = self.entry(peer);
        entry.last_activity = entry.last_activity.max(tick);
    }

    pub(super) fn push(
        &mut self,
        peer: &str,
        direction: Direction,
        text: &str,
        at: MessageTime,
        delivery: Option<Delivery>,
    ) {
        let id = self.tick();
        let entry = self.entry(peer);
        entry.last_activity = id;
        if entry.messages.len() >= MAX_MESSAGES_PER_PEER {
            entry.messages.remove(0);
        }
        entry.messages.push(ChatMessage {
            id,
            direction,
            text: text.to_owned(),
            at,
            delivery,
            sent_id: None,
            received_id: None,
            attachment: None,
            progress: None,
        });
    }

    /// The peer's entry, if it is listed (events about strangers list no one).
    pub(super) fn listed_mut(&mut self, name: &str) -> Option<&mut PeerEntry> {
        self.peers.iter_mut().find(|p| p.name == name)
    }

    /// The peer's entry, created on first mention (someone who calls me appears by
    /// themselves).
    pub(super) fn entry(&mut self, name: &str) -> &mut PeerEntry {
        let index = match self.peers.iter().position(|p| p.name == name) {
            Some(index) => index,
            None => {
                let last_activity = self.tick();
                self.peers.push(PeerEntry {
                    name: name.to_owned(),
                    status: PeerStatus::New,
                    online: self.presence.get(name).copied(),
                    unread: 0,
                    messages: Vec::new(),
                    path: None,
                    identity: None,
                    chat_open: false,
                    ended: None,
                    last_activity,
                    history_restored: false,
                });
                self.peers.len() - 1
            }
        };
        &mut self.peers[index]
    }

    fn tick(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }
}

/// The peer an error is about, if any.
fn peer_of(error: &ClientError) -> Option<&str> {
    match error {
        ClientError::AlreadyConnected(peer)
        | ClientError::PeerOffline(peer)
        | ClientError::PeerTimeout(peer)
        | ClientError::PeerNotConnected(peer)
        | ClientError::Transport { peer, .. }
        | ClientError::KeyChanged(peer)
        | ClientError::NoKeyFor(peer) => Some(peer),
        ClientError::Untrusted { from, .. } => Some(from),
        ClientError::BadSignal { from, .. } | ClientError::UnexpectedSignal { from, .. } => {
            Some(from)
        }
        _ => None,
    }
}
