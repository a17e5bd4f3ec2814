//! Group rooms as the app shows them: who is in each, its messages in the one order every
//! member sees, what is unread, and how far my own messages got.

use peerchat_core::room::{Holders, RoomId};

use super::{Attachment, ChatMessage, Delivery, Direction, MAX_MESSAGES_PER_PEER, MessageTime};

/// One message in a room.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomMessage {
    pub author: String,
    /// The author's number for it: with the author, names the message in the room.
    pub seq: u64,
    pub text: String,
    /// Its picture, once whole (shown as a 1:1 chat shows one).
    pub attachment: Option<Attachment>,
    /// The size of a picture it carries whose bytes are still on their way.
    pub arriving: Option<u64>,
    pub at: MessageTime,
    /// Written by me.
    pub mine: bool,
    /// For my messages: which of the room's members hold it (me included) and which not
    /// yet; the client reports it as copies spread and members come and go.
    pub holders: Option<Holders>,
    /// Where the room's order puts it, with the author. The client does not report the
    /// time of my own messages, so theirs is its guess (see [`RoomView::add_mine`]).
    lamport: u64,
    /// Keys the bubble on screen.
    pub id: u64,
}

impl RoomMessage {
    /// ✓ once written, ✓✓ once every member holds it; `None` for other members' messages.
    pub fn delivery(&self) -> Option<Delivery> {
        if !self.mine {
            return None;
        }
        Some(match &self.holders {
            Some(holders) if holders.delivered() => Delivery::Delivered,
            _ => Delivery::Sent,
        })
    }

    /// The message as a conversation bubble, so rooms draw theirs as 1:1 chats do.
    pub fn bubble(&self) -> ChatMessage {
        ChatMessage {
            id: self.id,
            direction: if self.mine {
                Direction::Mine
            } else {
                Direction::Theirs
            },
            text: self.text.clone(),
            at: self.at,
            delivery: self.delivery(),
            sent_id: None,
            received_id: None,
            attachment: self.attachment.clone(),
            progress: self.arriving.map(|size| (0, size)),
        }
    }
}

/// One room in the sidebar, with its conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomView {
    pub id: RoomId,
    pub name: String,
    pub members: Vec<String>,
    /// False once I left or was removed: the room stays listed, read-only.
    pub joined: bool,
    pub unread: usize,
    /// The latest change of members, in words ("carol left"), until the next.
    pub change: Option<String>,
    messages: Vec<RoomMessage>,
    /// Orders the sidebar: most recent activity first.
    pub(super) last_activity: u64,
}

impl RoomView {
    pub(super) fn new(id: RoomId, name: String, last_activity: u64) -> Self {
        Self {
            id,
            name,
            members: Vec::new(),
            joined: true,
            unread: 0,
            change: None,
            messages: Vec::new(),
            last_activity,
        }
    }

    /// The messages in the room's order: by Lamport time, then by author.
    pub fn messages(&self) -> &[RoomMessage] {
        &self.messages
    }

    /// Takes in who is in the room now, saying in words who came and went.
    pub(super) fn set_members(&mut self, name: String, members: Vec<String>, joined: bool) {
        let came: Vec<&String> = (members.iter())
            .filter(|m| !self.members.contains(m))
            .collect();
        let went: Vec<&String> = (self.members.iter())
            .filter(|m| !members.contains(m))
            .collect();
        let mut change = Vec::new();
        // The first report lists everyone: nobody "joined" then, the room appeared.
        if !self.members.is_empty() && !came.is_empty() {
            change.push(format!("{} joined.", join(&came)));
        }
        if !went.is_empty() && joined {
            let verb = if went.len() == 1 { "was" } else { "were" };
            change.push(format!("{} left or {verb} removed.", join(&went)));
        }
        if self.joined && !joined {
            change.push("You are no longer in this room.".to_owned());
        }
        if !change.is_empty() {
            self.change = Some(change.join(" "));
        }
        self.name = name;
        self.members = members;
        self.joined = joined;
    }

    /// Adds another member's message where the room's order puts it; one already shown
    /// (same author and number) is not shown twice. Returns whether it was new.
    pub(super) fn add(&mut self, mut message: RoomMessage, lamport: u64) -> bool {
        if self.holds(&message.author, message.seq) {
            return false;
        }
        message.lamport = lamport;
        let key = (lamport, message.author.as_str());
        let at = (self.messages).partition_point(|m| (m.lamport, m.author.as_str()) <= key);
        self.messages.insert(at, message);
        self.bound();
        true
    }

    /// Adds my message, which the client has just written: last, as the client gives a
    /// new message a time past every one it holds. The client never reports that time,
    /// so the view reckons it the same way, to place messages that arrive later.
    pub(super) fn add_mine(&mut self, message: RoomMessage) {
        let lamport = self.messages.iter().map(|m| m.lamport).max().unwrap_or(0) + 1;
        self.add(message, lamport);
    }

    /// Removes a message the room no longer holds (withdrawn after a late removal).
    pub(super) fn withdraw(&mut self, author: &str, seq: u64) {
        self.messages
            .retain(|m| !(m.author == author && m.seq == seq));
    }

    /// The picture of `author`'s message `seq` arrived whole.
    pub(super) fn picture_arrived(&mut self, author: &str, seq: u64, attachment: Attachment) {
        if let Some(message) =
            (self.messages.iter_mut()).find(|m| m.author == author && m.seq == seq)
        {
            message.attachment = Some(attachment);
            message.arriving = None;
        }
    }

    /// Records which members hold my message `seq`.
    pub(super) fn delivered(&mut self, seq: u64, holders: Holders) {
        if let Some(message) = (self.messages.iter_mut()).find(|m| m.mine && m.seq == seq) {
            message.holders = Some(holders);
        }
    }

    /// For my message, who else in the room holds it and who not yet, in words: "Has it:
    /// bob and carol · Not yet: dan". Until the client reports on it, no other member is
    /// known to hold it. `None` for other members' messages, whose delivery I do not learn.
    pub fn holders_in_words(&self, message: &RoomMessage, me: &str) -> Option<String> {
        if !message.mine {
            return None;
        }
        let (have, lack) = match &message.holders {
            Some(holders) => (others(&holders.have, me), others(&holders.lack, me)),
            None => (Vec::new(), others(&self.members, me)),
        };
        let mut words = Vec::new();
        if !have.is_empty() {
            words.push(format!("Has it: {}", join(&have)));
        }
        if !lack.is_empty() {
            words.push(format!("Not yet: {}", join(&lack)));
        }
        if words.is_empty() {
            words.push("Nobody else is in the room.".to_owned());
        }
        Some(words.join(" · "))
    }

    fn holds(&self, author: &str, seq: u64) -> bool {
        (self.messages.iter()).any(|m| m.author == author && m.seq == seq)
    }

    /// Keeps the newest messages only, as a 1:1 conversation does, so a busy room cannot
    /// grow the app's memory without bound.
    fn bound(&mut self) {
        let excess = self.messages.len().saturating_sub(MAX_MESSAGES_PER_PEER);
        self.messages.drain(..excess);
    }

    /// The newest message, shortened for the sidebar.
    pub fn preview(&self) -> Option<String> {
        const PREVIEW_CHARS: usize = 40;
        let last = self.messages.last()?;
        let shown = match (&last.attachment, last.arriving) {
            (Some(picture), _) if last.text.is_empty() => &picture.name,
            (None, Some(_)) if last.text.is_empty() => "a picture",
            _ => &last.text,
        };
        let mut text: String = shown.chars().take(PREVIEW_CHARS).collect();
        if shown.chars().nth(PREVIEW_CHARS).is_some() {
            text.push('…');
        }
        let who = if last.mine { "You" } else { &last.author };
        Some(format!("{who}: {text}"))
    }
}

/// `names` without `me`.
fn others<'a>(names: &'a [String], me: &str) -> Vec<&'a String> {
    names.iter().filter(|name| *name != me).collect()
}

/// "bob", "bob and carol", "bob, carol and dan".
fn join(names: &[&String]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).clone(),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(|n| n.as_str()).collect();
            format!("{} and {last}", rest.join(", "))
        }
    }
}

/// A message as the state takes it in, before the room places it.
pub(super) fn new_message(
    id: u64,
    author: String,
    seq: u64,
    text: String,
    at: MessageTime,
    mine: bool,
) -> RoomMessage {
    RoomMessage {
        author,
        seq,
        text,
        attachment: None,
        arriving: None,
        at,
        mine,
        holders: None,
        lamport: 0,
        id,
    }
}
