//! Group rooms in the client machine (see [`crate::room`] for the rules): API calls, room
//! frames on the `chat` channel of peers that announced `rooms`, and the meeting two
//! members hold whenever a chat channel between them becomes usable.
//!
//! A meeting: each side sends its marks asking for what it lacks (`ask`); the other answers
//! with membership changes, up to [`MAX_MESSAGES_PER_MEETING`] messages and its own marks,
//! which ask in turn when that side is behind, or say a batch was bounded and more remain.
//! A side that asked and learned nothing asks again only once the other's marks move, so
//! two members that cannot agree (one refuses what the other holds) fall silent instead of
//! asking forever. An author sends each new message to every member it is connected to; a
//! member that took in something new sends its marks a moment later to every member it
//! chats with: a receipt for the sender (from which an author counts delivery), and news
//! for a member the author does not reach, which then asks.
//!
//! Pictures (between peers that announced `room-pictures` too): whoever sends a message
//! with a picture (its author, or a member answering an ask) sends the picture's pieces
//! right after it when it holds them whole; a member that holds a message whose picture
//! is not whole names it (`lacking`) in the marks it asks with at the next meeting, and
//! the other side sends the pieces it holds. See `crate::room::picture`.

use tracing::debug;

use super::{Action, ClientMachine, ConnId};
use crate::event::{ClientError, ClientEvent};
use crate::protocol::{FEATURE_ROOM_PICTURES, FEATURE_ROOMS};
use crate::room::{
    Added, HighWaterMarks, Holders, MAX_CHANGES_PER_FRAME, MAX_MESSAGES_PER_MEETING,
    MAX_ROOM_PICTURE_BYTES, Membership, PieceTaken, Room, RoomError, RoomFrame, RoomId,
    RoomMessage,
};
use crate::small_map::{SmallMap, SmallSet};

/// Most rooms a client holds (those it is in and those it left), so a peer cannot make it
/// keep rooms without bound.
pub const MAX_ROOMS: usize = 64;

/// Most membership chains of rooms we are not in yet that may be arriving at once. They
/// hold no room until they make us a member, so a peer that sends chains without us in
/// them fills only these few places, never the rooms.
const MAX_ARRIVING_ROOMS: usize = 4;

/// Most messages a peer may send while an ask of ours is out: its answer (at most
/// [`MAX_MESSAGES_PER_MEETING`]) and, room to spare, what it writes meanwhile (live
/// messages share the channel). Beyond it the rest is refused, reported once, and asked
/// for again.
const MAX_ANSWER_MESSAGES: usize = 2 * MAX_MESSAGES_PER_MEETING;

/// How long taking in a room message waits before its receipt (the receiver's marks) goes:
/// messages that arrive together are confirmed by one receipt.
const RECEIPT_DELAY_MS: u64 = 20;

/// Most picture bytes one answer to an ask carries (8 of the largest pictures): the
/// channel holds them in memory until sent. Pictures beyond it are asked for again
/// (`lacking`) at the next meeting.
const MAX_PICTURE_BYTES_PER_ANSWER: u64 = 8 * MAX_ROOM_PICTURE_BYTES;

/// Least time between two answers to one member that carry picture bytes: an ask is a
/// small frame and its answer up to [`MAX_PICTURE_BYTES_PER_ANSWER`], so asks in a
/// stream must not make this client send without end. Within it, an answer carries
/// messages only; their pictures are asked for again at a later meeting.
const PICTURE_ANSWER_GAP_MS: u64 = 1_000;

/// Most bytes of whole room pictures this client holds in memory, over all its rooms
/// (each room also has its own bound): past it the oldest, in any room, are let go.
/// (Smaller under test, so a test reaches it with a few pictures.)
const MAX_WHOLE_PICTURE_BYTES_IN_ALL: u64 = if cfg!(test) { 5 } else { 96 } * 1024 * 1024;

/// Most bytes that pictures still arriving may reserve, over all rooms: a new picture
/// starts arriving only below it (its pieces are asked for again later), so members who
/// make many rooms cannot make this client reserve 2 MiB per picture in each.
const MAX_ARRIVING_PICTURE_BYTES_IN_ALL: u64 = 32 * 1024 * 1024;

/// Most messages of one room that show the same picture (by its bytes): each showing
/// hands the app a copy of them.
const MAX_REPORTS_PER_PICTURE: usize = 4;

/// Most pictures one ask names as lacking, so the ask stays one small frame.
const MAX_PICTURES_ASKED: usize = 8;
const _: () = assert!(MAX_PICTURES_ASKED <= crate::room::MAX_LACKING_PER_FRAME);

/// The rooms this client holds, and how each exchange with each member stands.
#[derive(Debug, Default)]
pub(super) struct Rooms {
    held: SmallMap<RoomId, Room>,
    /// Membership chains of rooms a peer is handing over, until they make us a member.
    arriving: SmallMap<RoomId, Vec<crate::room::MemberChange>>,
    /// Rooms whose invitation was refused for want of room, said once each (members
    /// announce a room again at every meeting); at most [`MAX_ROOMS`] remembered.
    refused_for_space: SmallSet<RoomId>,
    links: SmallMap<(RoomId, String), Link>,
    /// Whole pictures in the order they became whole here, in every room: the bound over
    /// all rooms lets the oldest go first.
    whole_pictures: std::collections::VecDeque<(RoomId, String)>,
}

/// One room's exchange with one (current or former) member over the current chat channel.
#[derive(Debug, Default)]
struct Link {
    /// An ask of ours is out: the peer's marks end its answer.
    pending: bool,
    /// The peer's version and marks when it last showed it holds more than we do and we
    /// asked, if it taught us nothing since: we ask again only once they move (it learned
    /// more) or it teaches us something, so what we refuse is not asked for forever.
    vain: Option<(Option<u64>, HighWaterMarks)>,
    /// When our marks are due to this member: a receipt for what it sent us, or news of
    /// what we took in from another.
    receipt_due: Option<u64>,
    /// Messages the peer sent while our ask was out: its answer, bounded.
    answered: usize,
    /// When an answer of ours last carried picture bytes to this member.
    pictures_sent_at: Option<u64>,
    /// How many of our asks to this member named lacking pictures: the next names the
    /// next ones.
    lacking_round: usize,
}

impl ClientMachine {
    // ---- API calls -------------------------------------------------------------------

    /// Creates room `name` with this client as creator and only member; `random` (16
    /// bytes from the platform's random source) makes its id.
    pub fn create_room(&mut self, name: &str, random: [u8; 16]) -> Result<RoomId, ClientError> {
        let identity = self.room_identity()?;
        self.room_space()?;
        let room = Room::create(RoomId::from_random(random), name, &self.me, &identity)?;
        let id = room.id().clone();
        self.rooms.held.insert(id.clone(), room);
        self.keep_latest_change(&id);
        self.report_members(&id);
        Ok(id)
    }

    /// Invites `peer` into `room`: needs the peer's identity key (pinned when a chat with
    /// it opened), and a peer chatting now must have announced `rooms` (an original client
    /// announces nothing and has no key: it cannot join, and the error says so). The peer
    /// learns of it when it next meets a member.
    pub fn invite_to_room(&mut self, room: &RoomId, peer: &str) -> Result<(), ClientError> {
        let identity = self.room_identity()?;
        if let Some(session) = self.peers.get(peer)
            && session.channel_open
            && !session.speaks(FEATURE_ROOMS)
        {
            return Err(ClientError::RoomsUnsupported(peer.to_owned()));
        }
        let key = self.pinned_key(peer).map(|pin| pin.key);
        self.held_room(room)?.invite(&identity, peer, key)?;
        self.keep_latest_change(room);
        self.report_members(room);
        self.tell_members(room);
        Ok(())
    }

    /// Writes `text` into `room` and sends it to every member connected now; the others
    /// get it when they meet any member. Returns its number among my messages there.
    pub fn send_room_message(&mut self, room: &RoomId, text: &str) -> Result<u64, ClientError> {
        let identity = self.room_identity()?;
        let message = self.held_room(room)?.write(&identity, text)?;
        Ok(self.spread(room, message))
    }

    /// Writes picture `name` of type `mime` (its `data`, at most
    /// [`MAX_ROOM_PICTURE_BYTES`]) into `room` and sends it, with its bytes, to every
    /// member connected now that takes pictures; the others get it when they meet any
    /// member. Returns its number among my messages there.
    pub fn send_room_picture(
        &mut self,
        room: &RoomId,
        name: &str,
        mime: &str,
        data: &[u8],
    ) -> Result<u64, ClientError> {
        let identity = self.room_identity()?;
        let held = self.held_room(room)?;
        let kept_before = held.picture_bytes(&crate::room::sha256_hex(data)).is_some();
        let message = held.write_picture(&identity, "", (name, mime, data))?;
        if let Some(picture) = message.picture.as_ref().filter(|_| !kept_before) {
            self.became_whole(room, &picture.sha256);
            self.keep_pieces(room, &picture.sha256);
            // Others' messages with the same picture, still waiting for its pieces, have it.
            let waiting: Vec<RoomMessage> = (self.rooms.held[room])
                .messages_with_picture(&picture.sha256)
                .filter(|other| **other != message)
                .cloned()
                .collect();
            for other in waiting {
                self.report_picture(room, &other);
            }
        }
        Ok(self.spread(room, message))
    }

    /// Keeps my new `message` and sends it to every member connected now.
    fn spread(&mut self, room: &RoomId, message: RoomMessage) -> u64 {
        self.keep_frame(room, &RoomFrame::Message(message.clone()));
        let mut members = self.rooms.held[room].members();
        members.retain(|member| *member != self.me);
        for member in members {
            self.send_room_message_to(&member, &message);
        }
        message.seq
    }

    /// Sends `message` to `peer`, and its picture's pieces after it if held whole;
    /// returns the picture bytes sent.
    fn send_room_message_to(&mut self, peer: &str, message: &RoomMessage) -> u64 {
        self.send_room_frame(peer, &RoomFrame::Message(message.clone()));
        match &message.picture {
            Some(picture) => self.send_pieces(&message.room, peer, &picture.sha256),
            None => 0,
        }
    }

    /// Sends the pieces of the picture with this SHA-256 to `peer`, if held whole and the
    /// peer takes pictures; returns the bytes sent.
    fn send_pieces(&mut self, room: &RoomId, peer: &str, sha256: &str) -> u64 {
        if !self.speaks_pictures(peer) {
            return 0;
        }
        let mut sent = 0;
        for frame in &self.piece_frames(room, sha256) {
            if let RoomFrame::Piece { data, .. } = frame
                && self.send_room_frame(peer, frame)
            {
                sent += data.len() as u64;
            }
        }
        sent
    }

    /// Leaves `room`: members are told, and nothing written there from now on reaches us.
    pub fn leave_room(&mut self, room: &RoomId) -> Result<(), ClientError> {
        let identity = self.room_identity()?;
        self.held_room(room)?.leave(&identity)?;
        self.keep_latest_change(room);
        self.report_members(room);
        self.tell_members(room);
        Ok(())
    }

    /// Removes `peer` from `room` (the creator and admins may): nothing written there from
    /// now on is sent to it, and what it writes from now on is refused by every member.
    pub fn remove_from_room(&mut self, room: &RoomId, peer: &str) -> Result<(), ClientError> {
        let identity = self.room_identity()?;
        self.held_room(room)?.remove(&identity, peer)?;
        self.keep_latest_change(room);
        self.report_members(room);
        self.tell_members(room);
        Ok(())
    }

    /// Lets `peer` invite, remove and name admins in `room` too (the creator and admins
    /// may).
    pub fn make_room_admin(&mut self, room: &RoomId, peer: &str) -> Result<(), ClientError> {
        let identity = self.room_identity()?;
        self.held_room(room)?.promote(&identity, peer)?;
        self.keep_latest_change(room);
        self.report_members(room);
        self.tell_members(room);
        Ok(())
    }

    /// The rooms this client holds (joined or left).
    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.held.values()
    }

    pub fn room(&self, room: &RoomId) -> Option<&Room> {
        self.rooms.held.get(room)
    }

    // ---- Meetings and frames ---------------------------------------------------------

    /// The chat channel with `peer` is usable: for every room it is or was in, a meeting
    /// starts (our marks, asking for what we lack).
    pub(super) fn meet_rooms(&mut self, peer: &str) {
        if self.room_conn(peer).is_none() {
            return;
        }
        let shared: Vec<RoomId> = (self.rooms.held.values())
            .filter(|room| room.membership().ever_member(peer))
            .map(|room| room.id().clone())
            .collect();
        for room in shared {
            self.rooms.links.remove(&(room.clone(), peer.to_owned()));
            self.send_marks(&room, peer, true);
        }
    }

    /// A room frame from `peer` (or one that failed to decode).
    pub(super) fn on_room_frame(&mut self, peer: &str, frame: Result<RoomFrame, String>, now: u64) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(why) => return self.unexpected(peer.to_owned(), "room frame", &why),
        };
        let room = frame.room().clone();
        if !self.rooms.held.contains_key(&room) {
            return self.on_frame_of_unknown_room(peer, frame);
        }
        match frame {
            RoomFrame::Changes { changes, .. } => {
                let mut learned = false;
                for change in changes {
                    match self
                        .held_room(&room)
                        .map(|r| r.apply_change(change.clone()))
                    {
                        Ok(Ok(applied)) => {
                            if applied.new {
                                self.keep_changes(&room, &[change]);
                            }
                            learned |= applied.new;
                            for gone in applied.dropped {
                                self.events.push_back(ClientEvent::RoomWithdrawn {
                                    room: room.clone(),
                                    author: gone.author,
                                    seq: gone.seq,
                                });
                            }
                        }
                        Ok(Err(RoomError::ChangeGap { .. })) => {
                            self.ask_again(&room, peer);
                            break;
                        }
                        Ok(Err(error)) => {
                            self.refuse(&room, peer, error);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if learned {
                    self.report_members(&room);
                    self.learned_from(&room, peer, now);
                }
            }
            RoomFrame::Message(message) => self.take_room_message(&room, peer, message, now),
            RoomFrame::Piece {
                sha256,
                offset,
                data,
                ..
            } => self.take_piece(&room, peer, &sha256, offset, &data),
            // What a room holds is no business of someone never in it.
            RoomFrame::Marks { .. } if !self.rooms.held[&room].membership().ever_member(peer) => {
                debug!(%peer, %room, "marks from a peer never in the room ignored")
            }
            RoomFrame::Marks {
                version,
                marks,
                ask,
                lacking,
                ..
            } => self.on_marks(&room, peer, (version, &marks), (ask, &lacking), now),
        }
    }

    fn take_room_message(&mut self, room: &RoomId, peer: &str, message: RoomMessage, now: u64) {
        let link = self.link(room, peer);
        if link.pending {
            link.answered += 1;
            if link.answered > MAX_ANSWER_MESSAGES {
                // Said once per answer; the rest comes when we ask again.
                if link.answered == MAX_ANSWER_MESSAGES + 1 {
                    let error = RoomError::MeetingTooLarge {
                        limit: MAX_ANSWER_MESSAGES,
                    };
                    self.refuse(room, peer, error);
                }
                return;
            }
        }
        let held = self.rooms.held.get_mut(room).expect("caller checked");
        // Out of the room, and aware of it: nothing more is shown, not even what a member
        // who has not yet heard of the departure still sends. Only a newer membership (an
        // invitation back, perhaps) is worth asking for.
        if !held.joined() {
            if message.members > held.membership().version() {
                self.ask_again(room, peer);
            } else {
                debug!(%peer, %room, "a room message for a member no longer in the room ignored");
            }
            return;
        }
        match held.receive(message.clone()) {
            Ok(Added::New) => {
                self.keep_frame(room, &RoomFrame::Message(message.clone()));
                let whole = (message.picture.as_ref())
                    .is_some_and(|p| self.rooms.held[room].picture_bytes(&p.sha256).is_some());
                self.events.push_back(ClientEvent::RoomMessage {
                    room: room.clone(),
                    author: message.author.clone(),
                    seq: message.seq,
                    lamport: message.lamport,
                    text: message.text.clone(),
                    picture: message.picture.clone(),
                });
                // The same picture came before, in another message: it is whole already.
                if whole {
                    self.report_picture(room, &message);
                }
                self.learned_from(room, peer, now);
            }
            Ok(Added::Duplicate) => {}
            // Earlier ones, or the membership change it was written under, are missing.
            Ok(Added::Early { .. }) | Err(RoomError::MembershipBehind { .. }) => {
                self.ask_again(room, peer)
            }
            Err(error) => self.refuse(room, peer, error),
        }
    }

    /// A piece of a picture from `peer`: kept if a message we hold carries the picture;
    /// once the picture is whole (and matches its signed hash) it is kept for good and
    /// reported with every message that carries it.
    fn take_piece(&mut self, room: &RoomId, peer: &str, sha256: &str, offset: u64, data: &[u8]) {
        if !self.rooms.held[room].membership().ever_member(peer) {
            return debug!(%peer, %room, "a picture piece from a peer never in the room ignored");
        }
        let pictures = self.rooms.held[room].pictures();
        // Only a piece that starts a picture needs the sum over all rooms.
        if !pictures.is_arriving(sha256) && !pictures.had(sha256) {
            let arriving: u64 = (self.rooms.held.values())
                .map(|room| room.pictures().arriving_bytes())
                .sum();
            if arriving >= MAX_ARRIVING_PICTURE_BYTES_IN_ALL {
                return debug!(%peer, %room, sha256, "no room for one more arriving picture now");
            }
        }
        let held = self.rooms.held.get_mut(room).expect("caller checked");
        match held.take_piece(sha256, offset, data) {
            None => debug!(%peer, %room, sha256, "a piece of no picture held here dropped"),
            Some(Ok(PieceTaken::Complete)) => {
                self.became_whole(room, sha256);
                self.keep_pieces(room, sha256);
                let messages: Vec<RoomMessage> = (self.rooms.held[room])
                    .messages_with_picture(sha256)
                    .cloned()
                    .collect();
                for message in messages {
                    self.report_picture(room, &message);
                }
            }
            Some(Ok(PieceTaken::Partial | PieceTaken::Duplicate)) => {}
            Some(Err(error)) => self.refuse(room, peer, error),
        }
    }

    /// Counts a picture of `room` that just became whole here, and lets the oldest whole
    /// pictures of all rooms go while they hold more than the bound (never this one).
    fn became_whole(&mut self, room: &RoomId, sha256: &str) {
        let held_rooms = &self.rooms.held;
        let whole = &mut self.rooms.whole_pictures;
        whole.retain(|(r, s)| !(r == room && s == sha256));
        // What a room's own bound let go, or a room no longer held, is forgotten now and
        // then, so the list stays as long as what is held.
        if whole.len() >= 4 * MAX_ROOMS {
            whole
                .retain(|(r, s)| (held_rooms.get(r)).is_some_and(|c| c.picture_bytes(s).is_some()));
        }
        whole.push_back((room.clone(), sha256.to_owned()));
        let mut held: u64 = (self.rooms.held.values())
            .map(|room| room.pictures().whole_bytes())
            .sum();
        while held > MAX_WHOLE_PICTURE_BYTES_IN_ALL && self.rooms.whole_pictures.len() > 1 {
            let Some((room, sha256)) = self.rooms.whole_pictures.pop_front() else {
                break;
            };
            if let Some(copy) = self.rooms.held.get_mut(&room) {
                held -= copy.let_go_picture(&sha256);
            }
        }
    }

    /// Reports the whole picture `message` carries.
    fn report_picture(&mut self, room: &RoomId, message: &RoomMessage) {
        let Some(picture) = message.picture.clone() else {
            return;
        };
        let held = &self.rooms.held[room];
        let Some(data) = held.picture_bytes(&picture.sha256) else {
            return;
        };
        // A message that signed another size for these bytes' hash never shows them.
        if data.len() as u64 != picture.size {
            return;
        }
        // Each report copies the bytes to the app: many cheap messages naming one picture
        // must not multiply them, so only the first few in the room's order show it.
        let place = (held.messages_with_picture(&picture.sha256))
            .position(|other| other.author == message.author && other.seq == message.seq);
        if place.is_none_or(|place| place >= MAX_REPORTS_PER_PICTURE) {
            return debug!(%room, sha256 = picture.sha256, "a picture named once too often not shown");
        }
        self.events.push_back(ClientEvent::RoomPicture {
            room: room.clone(),
            author: message.author.clone(),
            seq: message.seq,
            data: data.to_vec(),
            picture,
        });
    }

    /// The peer's membership `version` and `marks`; with `ask`, it wants what it lacks,
    /// `lacking` naming pictures it holds messages of but not the bytes.
    fn on_marks(
        &mut self,
        room: &RoomId,
        peer: &str,
        (version, marks): (Option<u64>, &HighWaterMarks),
        (ask, lacking): (bool, &[String]),
        now: u64,
    ) {
        self.note_delivery(room, peer, marks);
        let held = &self.rooms.held[room];
        let ahead = version.is_some_and(|v| v > held.membership().version())
            || marks.iter().any(|(author, seq)| {
                held.membership().ever_member(author) && seq > held.marks().of(author)
            });
        let seen = (version, marks.clone());
        let link = self.link(room, peer);
        link.pending = false;
        link.answered = 0;
        let want = ahead && link.vain.as_ref() != Some(&seen);
        if want {
            link.vain = Some(seen);
        }
        let receipt = link.receipt_due.is_some();
        let pictures_due = link
            .pictures_sent_at
            .is_none_or(|at| now >= at.saturating_add(PICTURE_ANSWER_GAP_MS));
        if ask {
            let catch_up =
                self.rooms.held[room].catch_up_for(peer, version, marks, MAX_MESSAGES_PER_MEETING);
            for changes in catch_up.changes.chunks(MAX_CHANGES_PER_FRAME) {
                let frame = RoomFrame::Changes {
                    room: room.clone(),
                    changes: changes.to_vec(),
                };
                self.send_room_frame(peer, &frame);
            }
            let mut budget = if pictures_due {
                MAX_PICTURE_BYTES_PER_ANSWER
            } else {
                0
            };
            let mut pictures_sent = Vec::new();
            for message in catch_up.messages {
                if budget > 0 {
                    let sent = self.send_room_message_to(peer, &message);
                    budget = budget.saturating_sub(sent);
                    if let Some(picture) = message.picture.filter(|_| sent > 0) {
                        pictures_sent.push(picture.sha256);
                    }
                } else {
                    // Its picture is asked for (`lacking`) at the next meeting.
                    self.send_room_frame(peer, &RoomFrame::Message(message));
                }
            }
            if self.rooms.held[room].joined() && self.rooms.held[room].membership().is_member(peer)
            {
                let asked = lacking.iter().take(MAX_PICTURES_ASKED);
                for sha256 in asked.filter(|sha256| !pictures_sent.contains(sha256)) {
                    if budget == 0 {
                        break;
                    }
                    let sent = self.send_pieces(room, peer, sha256);
                    budget = budget.saturating_sub(sent);
                }
            }
            if pictures_due && budget < MAX_PICTURE_BYTES_PER_ANSWER {
                self.link(room, peer).pictures_sent_at = Some(now);
            }
            // Also says where this batch ended: with `more`, the peer asks again.
            self.send_marks(room, peer, want);
        } else if want || receipt {
            self.send_marks(room, peer, want);
        }
    }

    /// A frame about a room we do not hold: the start (or continuation) of its membership
    /// chain from a member inviting us, or a member's marks telling us it exists.
    fn on_frame_of_unknown_room(&mut self, peer: &str, frame: RoomFrame) {
        match frame {
            RoomFrame::Marks {
                room,
                version: Some(_),
                ..
            } => {
                // Marks end a chain we asked for: one that did not make us a member is of
                // no use (and is not asked for again at once).
                if self.rooms.arriving.remove(&room).is_some() {
                    return;
                }
                // Otherwise they are an invitation: refused, and said, when no room is left.
                if self.room_space().is_err() {
                    let refused = &mut self.rooms.refused_for_space;
                    if refused.len() < MAX_ROOMS && refused.insert(room.clone()) {
                        self.refuse(&room, peer, RoomError::NoRoomLeft { limit: MAX_ROOMS });
                    }
                    return;
                }
                let frame = RoomFrame::Marks {
                    room,
                    version: None,
                    marks: HighWaterMarks::default(),
                    ask: true,
                    lacking: Vec::new(),
                };
                self.send_room_frame(peer, &frame);
            }
            RoomFrame::Changes { room, changes } => {
                let continues = match self.rooms.arriving.get(&room) {
                    Some(chain) => changes.first().map(|c| c.version) == Some(chain.len() as u64),
                    None => changes.first().is_some_and(|c| c.version == 0),
                };
                if !continues || self.room_space().is_err() {
                    self.rooms.arriving.remove(&room);
                    return;
                }
                if !self.rooms.arriving.contains_key(&room)
                    && self.rooms.arriving.len() >= MAX_ARRIVING_ROOMS
                {
                    // Make way: an honest member hands a chain over in one go.
                    self.rooms.arriving.pop_first();
                }
                let chain = self.rooms.arriving.entry(room.clone()).or_default();
                chain.extend(changes);
                let chain = chain.clone();
                match Membership::from_changes(chain.clone()) {
                    Ok(membership) if membership.ever_member(&self.me) => {
                        self.rooms.arriving.remove(&room);
                        match Room::join(&self.me, chain.clone()) {
                            Ok(joined) => {
                                self.rooms.held.insert(room.clone(), joined);
                                self.keep_changes(&room, &chain);
                                self.report_members(&room);
                                // Now meet every member we chat with: the messages follow.
                                for member in self.connected_members(&room) {
                                    self.rooms.links.remove(&(room.clone(), member.clone()));
                                    self.send_marks(&room, &member, true);
                                }
                            }
                            Err(error) => self.refuse(&room, peer, error),
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        self.rooms.arriving.remove(&room);
                        self.refuse(&room, peer, error);
                    }
                }
            }
            other => {
                self.rooms.arriving.remove(other.room());
                debug!(%peer, room = %other.room(), "frame of a room we are not in ignored");
            }
        }
    }

    /// Sends due receipts; the next due moment for [`ClientMachine::poll_timeout`].
    pub(super) fn send_due_receipts(&mut self, now: u64) {
        let due: Vec<(RoomId, String)> = (self.rooms.links.iter())
            .filter(|(_, link)| link.receipt_due.is_some_and(|at| at <= now))
            .map(|(key, _)| key.clone())
            .collect();
        for (room, peer) in due {
            self.send_marks(&room, &peer, false);
        }
    }

    pub(super) fn receipt_deadline(&self) -> Option<u64> {
        self.rooms
            .links
            .values()
            .filter_map(|l| l.receipt_due)
            .min()
    }

    // ---- What outlives the process ---------------------------------------------------

    /// Takes back the rooms a store kept: each room's changes and messages are checked
    /// again as they were when they arrived; a room whose chain no longer holds is dropped.
    pub(super) fn restore_rooms(&mut self, rooms: SmallMap<RoomId, Vec<String>>) {
        for (id, frames) in rooms.into_iter().take(MAX_ROOMS) {
            let (mut changes, mut messages, mut pieces) = (Vec::new(), Vec::new(), Vec::new());
            for frame in &frames {
                match RoomFrame::decode(frame) {
                    Some(Ok(RoomFrame::Changes { changes: more, .. })) => changes.extend(more),
                    Some(Ok(RoomFrame::Message(message))) => messages.push(message),
                    Some(Ok(RoomFrame::Piece {
                        sha256,
                        offset,
                        data,
                        ..
                    })) => pieces.push((sha256, offset, data)),
                    _ => debug!(%id, "a kept room frame that is not one ignored"),
                }
            }
            match Room::restore(&self.me, changes, messages) {
                Ok(mut room) if *room.id() == id => {
                    // Kept pieces are those of whole pictures: they add up again.
                    let mut whole = Vec::new();
                    for (sha256, offset, data) in pieces {
                        match room.take_piece(&sha256, offset, &data) {
                            Some(Ok(PieceTaken::Complete)) => whole.push(sha256),
                            Some(Err(error)) => {
                                debug!(%id, %error, "a kept picture piece no longer fits")
                            }
                            _ => {}
                        }
                    }
                    self.rooms.held.insert(id.clone(), room);
                    for sha256 in whole {
                        self.became_whole(&id, &sha256);
                    }
                }
                Ok(_) => debug!(%id, "a kept room under another id dropped"),
                Err(error) => debug!(%id, %error, "a kept room that no longer holds dropped"),
            }
        }
    }

    /// Keeps membership changes of `room` (new to this client).
    fn keep_changes(&mut self, room: &RoomId, changes: &[crate::room::MemberChange]) {
        for changes in changes.chunks(MAX_CHANGES_PER_FRAME) {
            let frame = RoomFrame::Changes {
                room: room.clone(),
                changes: changes.to_vec(),
            };
            self.keep_frame(room, &frame);
        }
    }

    /// Keeps the pieces of a picture that just became whole here (written, or arrived).
    fn keep_pieces(&mut self, room: &RoomId, sha256: &str) {
        for frame in &self.piece_frames(room, sha256) {
            self.keep_frame(room, frame);
        }
    }

    /// The piece frames of a whole picture of `room` (none if it is not whole here).
    fn piece_frames(&self, room: &RoomId, sha256: &str) -> Vec<RoomFrame> {
        (self.rooms.held[room].picture_pieces(sha256).into_iter())
            .map(|(offset, data)| RoomFrame::Piece {
                room: room.clone(),
                sha256: sha256.to_owned(),
                offset,
                data: data.to_vec(),
            })
            .collect()
    }

    fn keep_frame(&mut self, room: &RoomId, frame: &RoomFrame) {
        if let Some(frame) = frame.encode() {
            self.store(super::StoreOp::Room {
                room: room.clone(),
                frame,
            });
        }
    }

    /// The latest change of `room`, to keep after making it.
    fn keep_latest_change(&mut self, room: &RoomId) {
        let latest = self.rooms.held[room].membership().changes().last().cloned();
        if let Some(change) = latest {
            self.keep_changes(room, &[change]);
        }
    }

    // ---- Helpers ---------------------------------------------------------------------

    /// Our marks for `room` to `peer`; they also serve as the receipt owed to it.
    fn send_marks(&mut self, room: &RoomId, peer: &str, ask: bool) {
        let Some(held) = self.rooms.held.get(room) else {
            return;
        };
        // An ask also names pictures we hold messages of but not the bytes.
        // Out of the room, nothing is sent to us: asking for pictures would be in vain.
        let round = (self.rooms.links.get(&(room.clone(), peer.to_owned())))
            .map_or(0, |link| link.lacking_round);
        let lacking = if ask && held.joined() && self.speaks_pictures(peer) {
            held.lacking_pictures(MAX_PICTURES_ASKED, round)
        } else {
            Vec::new()
        };
        let asked = !lacking.is_empty();
        let frame = RoomFrame::Marks {
            room: room.clone(),
            version: Some(held.membership().version()),
            marks: held.marks().clone(),
            ask,
            lacking,
        };
        if self.send_room_frame(peer, &frame) {
            let link = self.link(room, peer);
            link.receipt_due = None;
            link.pending |= ask;
            link.lacking_round = link.lacking_round.wrapping_add(usize::from(asked));
        }
    }

    /// Tells every member we reach (and any former one, who learns it is out) that our
    /// copy of `room` changed: each asks for what it lacks.
    fn tell_members(&mut self, room: &RoomId) {
        let peers: Vec<String> = self.peers.keys().cloned().collect();
        for peer in peers {
            if self.rooms.held[room].membership().ever_member(&peer) {
                self.send_marks(room, &peer, false);
            }
        }
    }

    /// We were missing what `peer` sent: ask (unless an ask is already out, whose answer
    /// may bring it).
    fn ask_again(&mut self, room: &RoomId, peer: &str) {
        if !self.link(room, peer).pending {
            self.send_marks(room, peer, true);
        }
    }

    /// We took in something new from `peer`: our marks go to it (a receipt) and to every
    /// other member we chat with, a moment later, so that one not connected to the author
    /// learns that we hold something it lacks, and asks.
    fn learned_from(&mut self, room: &RoomId, peer: &str, now: u64) {
        self.link(room, peer).vain = None;
        for member in self.connected_members(room) {
            self.link(room, &member)
                .receipt_due
                .get_or_insert(now + RECEIPT_DELAY_MS);
        }
    }

    /// The members of `room` (current or former) whose chat channel is usable now.
    fn connected_members(&self, room: &RoomId) -> Vec<String> {
        let membership = self.rooms.held[room].membership();
        (self.peers.keys())
            .filter(|peer| membership.ever_member(peer) && self.room_conn(peer).is_some())
            .cloned()
            .collect()
    }

    fn link(&mut self, room: &RoomId, peer: &str) -> &mut Link {
        self.rooms
            .links
            .entry((room.clone(), peer.to_owned()))
            .or_default()
    }

    /// Counts `peer`'s marks towards the delivery of my messages, and reports each of
    /// mine whose holders changed: only those between what the peer reported before and
    /// now, so a receipt costs what it newly covers, not the room's whole history.
    fn note_delivery(&mut self, room: &RoomId, peer: &str, marks: &HighWaterMarks) {
        let held = self.rooms.held.get_mut(room).expect("caller checked");
        let me = held.me().to_owned();
        let (from, to) = (held.reported_mark(peer, &me), marks.of(&me));
        let mine: Vec<RoomMessage> = (from.saturating_add(1)..=to)
            .map_while(|seq| held.message(&me, seq).cloned())
            .collect();
        let before: Vec<Holders> = mine.iter().map(|m| held.holders(m)).collect();
        held.note_marks(peer, marks);
        let changed: Vec<(u64, Holders)> = (mine.iter().zip(before))
            .map(|(message, before)| (message.seq, held.holders(message), before))
            .filter(|(_, holders, before)| holders != before)
            .map(|(seq, holders, _)| (seq, holders))
            .collect();
        self.report_delivery(room, changed);
    }

    /// Who is in `room` now, and the delivery of each of my messages there: a member who
    /// came lacks them, one who went is waited for no more.
    fn report_members(&mut self, room: &RoomId) {
        let held = &self.rooms.held[room];
        self.events.push_back(ClientEvent::RoomMembers {
            room: room.clone(),
            name: held.name().to_owned(),
            members: held.members(),
            joined: held.joined(),
        });
        let mine: Vec<(u64, Holders)> = (held.messages())
            .filter(|message| message.author == held.me())
            .map(|message| (message.seq, held.holders(message)))
            .collect();
        self.report_delivery(room, mine);
    }

    fn report_delivery(&mut self, room: &RoomId, mine: Vec<(u64, Holders)>) {
        for (seq, holders) in mine {
            self.events.push_back(ClientEvent::RoomDelivery {
                room: room.clone(),
                seq,
                holders,
            });
        }
    }

    fn refuse(&mut self, room: &RoomId, peer: &str, error: RoomError) {
        debug!(%peer, %room, %error, "room frame refused");
        self.events.push_back(ClientEvent::RoomRefused {
            room: room.clone(),
            from: peer.to_owned(),
            error,
        });
    }

    /// Sends `frame` to `peer` if its chat channel is usable and it speaks `rooms`; a
    /// picture's message or piece only if it speaks `room-pictures` too (a member without
    /// it could not verify the one nor read the other).
    fn send_room_frame(&mut self, peer: &str, frame: &RoomFrame) -> bool {
        let pictured = match frame {
            RoomFrame::Message(message) => message.picture.is_some(),
            RoomFrame::Piece { .. } => true,
            _ => false,
        };
        if pictured && !self.speaks_pictures(peer) {
            return false;
        }
        let (Some(conn), Some(text)) = (self.room_conn(peer), frame.encode()) else {
            return false;
        };
        self.actions.push_back(Action::SendText { conn, text });
        true
    }

    fn speaks_pictures(&self, peer: &str) -> bool {
        (self.peers.get(peer)).is_some_and(|session| session.speaks(FEATURE_ROOM_PICTURES))
    }

    fn room_conn(&self, peer: &str) -> Option<ConnId> {
        let session = self.peers.get(peer)?;
        (session.channel_open && session.heard && session.speaks(FEATURE_ROOMS))
            .then_some(session.conn)
    }

    fn held_room(&mut self, room: &RoomId) -> Result<&mut Room, ClientError> {
        self.rooms
            .held
            .get_mut(room)
            .ok_or_else(|| ClientError::UnknownRoom(room.to_string()))
    }

    fn room_identity(&self) -> Result<crate::identity::Identity, ClientError> {
        self.trust.identity().cloned().ok_or_else(|| {
            ClientError::Room(RoomError::NoIdentityKey {
                name: self.me.clone(),
            })
        })
    }

    fn room_space(&self) -> Result<(), ClientError> {
        if self.rooms.held.len() >= MAX_ROOMS {
            return Err(ClientError::TooManyRooms(MAX_ROOMS));
        }
        Ok(())
    }
}
