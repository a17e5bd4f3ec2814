//! One member's copy of a room: its membership, the messages it keeps and what it knows of
//! who holds them. Everything a member does with a room goes through here, whether it
//! writes, takes in a message or change, or meets another member.

use crate::identity::{Identity, PublicKey};

use super::{
    Action, Added, Delivery, HighWaterMarks, Holders, MemberChange, Membership, Picture, Pictures,
    PieceTaken, RoomError, RoomId, RoomLog, RoomMessage,
};

/// One member's copy of a room.
#[derive(Debug, Clone)]
pub struct Room {
    me: String,
    membership: Membership,
    log: RoomLog,
    delivery: Delivery,
    /// The bytes of the pictures its messages carry, whole or arriving.
    pictures: Pictures,
}

/// What applying a membership change did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeApplied {
    /// It was new to this member (not one applied before).
    pub new: bool,
    /// Messages it unmade: those a departed member wrote after its departure, which this
    /// member had taken in before it learned of that.
    pub dropped: Vec<RoomMessage>,
}

/// What one member sends another when they meet: membership changes first (the messages
/// may need them to verify), then messages in the room's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUp {
    pub changes: Vec<MemberChange>,
    pub messages: Vec<RoomMessage>,
    /// More messages are lacking than one meeting carries: meet again for the rest.
    pub more: bool,
}

impl Room {
    /// A new room `name`, with `me` (holding `identity`) as its creator and only member.
    pub fn create(
        id: RoomId,
        name: &str,
        me: &str,
        identity: &Identity,
    ) -> Result<Self, RoomError> {
        Self::restore(
            me,
            Membership::create(id, name, me, identity)?
                .changes()
                .to_vec(),
            [],
        )
    }

    /// `me`'s copy of a room it was invited to, from the room's membership chain.
    pub fn join(me: &str, changes: Vec<MemberChange>) -> Result<Self, RoomError> {
        Self::restore(me, changes, [])
    }

    /// `me`'s copy of a room as it was kept: its chain and messages, each checked again.
    /// Messages that no longer pass (their author's departure, learned since they were
    /// kept, unmade them) are left out.
    pub fn restore(
        me: &str,
        changes: Vec<MemberChange>,
        messages: impl IntoIterator<Item = RoomMessage>,
    ) -> Result<Self, RoomError> {
        let membership = Membership::from_changes(changes)?;
        if !membership.ever_member(me) {
            return Err(RoomError::NotAMember {
                name: me.to_owned(),
                version: membership.version(),
            });
        }
        let mut room = Self {
            me: me.to_owned(),
            membership,
            log: RoomLog::default(),
            delivery: Delivery::default(),
            pictures: Pictures::default(),
        };
        let mut messages: Vec<_> = messages.into_iter().collect();
        messages.sort_by(|a, b| a.order().cmp(&b.order()));
        for message in messages {
            if let Err(error) = room.receive(message) {
                tracing::warn!("a kept room message no longer passes: {error}");
            }
        }
        Ok(room)
    }

    pub fn id(&self) -> &RoomId {
        self.membership.room()
    }

    pub fn name(&self) -> &str {
        self.membership.name()
    }

    /// The member whose copy this is.
    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Whether this member is still in the room (it did not leave and was not removed).
    pub fn joined(&self) -> bool {
        self.membership.is_member(&self.me)
    }

    /// The current members' names.
    pub fn members(&self) -> Vec<String> {
        self.membership
            .members()
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// The messages this member keeps, in the room's one order.
    pub fn messages(&self) -> impl Iterator<Item = &RoomMessage> {
        self.log.messages()
    }

    /// `author`'s message `seq`, if this member holds it.
    pub fn message(&self, author: &str, seq: u64) -> Option<&RoomMessage> {
        self.log.get(author, seq)
    }

    /// Up to which message of `author` `peer` has reported holding everything.
    pub fn reported_mark(&self, peer: &str, author: &str) -> u64 {
        self.delivery.mark(peer, author)
    }

    /// Per author, up to which message this member holds everything.
    pub fn marks(&self) -> &HighWaterMarks {
        self.log.marks()
    }

    /// Invites `member`, whose identity key is `key`; a peer that has none (an original
    /// client, or a peerchat too old for rooms) cannot be a member, and the error says so.
    pub fn invite(
        &mut self,
        identity: &Identity,
        member: &str,
        key: Option<PublicKey>,
    ) -> Result<MemberChange, RoomError> {
        let key = key.ok_or_else(|| RoomError::NoIdentityKey {
            name: member.to_owned(),
        })?;
        let action = Action::Invite {
            member: member.to_owned(),
            key,
        };
        self.membership.make(&self.me, identity, action)
    }

    /// Lets `member` invite, promote and remove.
    pub fn promote(
        &mut self,
        identity: &Identity,
        member: &str,
    ) -> Result<MemberChange, RoomError> {
        let action = Action::Promote {
            member: member.to_owned(),
        };
        self.membership.make(&self.me, identity, action)
    }

    /// Removes `member` after the last of its messages this member holds: whatever it
    /// writes from now on is refused by everyone.
    pub fn remove(&mut self, identity: &Identity, member: &str) -> Result<MemberChange, RoomError> {
        let action = Action::Remove {
            member: member.to_owned(),
            last_seq: self.log.marks().of(member),
        };
        let change = self.membership.make(&self.me, identity, action)?;
        self.delivery.forget(member);
        Ok(change)
    }

    /// This member leaves after its last message.
    pub fn leave(&mut self, identity: &Identity) -> Result<MemberChange, RoomError> {
        let action = Action::Leave {
            last_seq: self.log.marks().of(&self.me),
        };
        self.membership.make(&self.me, identity, action)
    }

    /// Applies a membership change from another member (see [`Membership::apply`]); one
    /// that takes a member out unmakes what it wrote after that, if this member holds any.
    pub fn apply_change(&mut self, change: MemberChange) -> Result<ChangeApplied, RoomError> {
        let departed = match &change.action {
            Action::Remove { member, last_seq } => Some((member.clone(), *last_seq)),
            Action::Leave { last_seq } => Some((change.by.clone(), *last_seq)),
            _ => None,
        };
        if !self.membership.apply(change)? {
            return Ok(ChangeApplied::default());
        }
        let mut dropped = Vec::new();
        if let Some((member, last_seq)) = departed {
            dropped = self.log.drop_after(&member, last_seq);
            self.delivery.forget(&member);
        }
        Ok(ChangeApplied { new: true, dropped })
    }

    /// Writes `text` as this member: its next number, a Lamport time later than every
    /// message it holds, the current membership version, signed.
    pub fn write(&mut self, identity: &Identity, text: &str) -> Result<RoomMessage, RoomError> {
        let numbers = (
            self.log.marks().of(&self.me).saturating_add(1),
            self.log.clock().saturating_add(1),
            self.membership.version(),
        );
        let message = RoomMessage::signed(self.id().clone(), &self.me, numbers, text, identity);
        self.receive(message.clone())?;
        Ok(message)
    }

    /// Writes `text` with picture `name` of type `mime` (its `bytes`) as this member, as
    /// [`Room::write`] does; the bytes are kept, to be sent with the message.
    pub fn write_picture(
        &mut self,
        identity: &Identity,
        text: &str,
        (name, mime, bytes): (&str, &str, &[u8]),
    ) -> Result<RoomMessage, RoomError> {
        let picture = Picture::of(name, mime, bytes)?;
        let numbers = (
            self.log.marks().of(&self.me).saturating_add(1),
            self.log.clock().saturating_add(1),
            self.membership.version(),
        );
        let content = (text, Some(picture.clone()));
        let message =
            RoomMessage::signed_with(self.id().clone(), &self.me, numbers, content, identity);
        message.verify(&self.membership)?;
        self.pictures.keep(&picture, bytes)?;
        self.log.add(message.clone())?;
        Ok(message)
    }

    /// The pictures with this SHA-256 that held messages carry: one, unless a member signed
    /// a false size for another's hash.
    fn pictures_named(&self, sha256: &str) -> Vec<Picture> {
        let mut named: Vec<Picture> = Vec::new();
        for picture in self.log.messages().filter_map(|m| m.picture.as_ref()) {
            if picture.sha256 == sha256 && !named.iter().any(|p| p.size == picture.size) {
                named.push(picture.clone());
            }
        }
        named
    }

    /// Takes a piece of a picture from any member: `None` when no held message carries
    /// that picture (the piece is dropped; it comes again with its message). Where messages
    /// claim the hash with different sizes, the piece goes to each claim, and what it did
    /// for the real one counts (only bytes that hash right become whole).
    pub fn take_piece(
        &mut self,
        sha256: &str,
        offset: u64,
        data: &[u8],
    ) -> Option<Result<PieceTaken, RoomError>> {
        let named = self.pictures_named(sha256);
        let mut outcomes =
            (named.iter()).map(|picture| self.pictures.take_piece(picture, offset, data));
        let first = outcomes.next()?;
        let rank = |outcome: &Result<PieceTaken, RoomError>| match outcome {
            Ok(PieceTaken::Complete) => 3,
            Ok(PieceTaken::Partial) => 2,
            Ok(PieceTaken::Duplicate) => 1,
            Err(_) => 0,
        };
        Some(outcomes.fold(first, |best, next| {
            if rank(&next) > rank(&best) {
                next
            } else {
                best
            }
        }))
    }

    /// The picture bytes this copy holds, whole or arriving: for bounds over all rooms.
    pub fn pictures(&self) -> &Pictures {
        &self.pictures
    }

    /// Lets a whole picture go (see [`Pictures::let_go`]); returns the bytes freed.
    pub fn let_go_picture(&mut self, sha256: &str) -> u64 {
        self.pictures.let_go(sha256)
    }

    /// The whole bytes of the picture with this SHA-256, if held.
    pub fn picture_bytes(&self, sha256: &str) -> Option<&[u8]> {
        self.pictures.bytes(sha256)
    }

    /// The pieces of a whole picture (offset, bytes), to pass it on.
    pub fn picture_pieces(&self, sha256: &str) -> Vec<(u64, &[u8])> {
        self.pictures.pieces(sha256)
    }

    /// Up to `limit` pictures (SHA-256) that held messages carry and whose bytes were never
    /// whole here, to be asked for: the `round`-th `limit` of them in the room's order,
    /// going round, so pictures nobody can send (their author gone, or a false claim) do not
    /// keep the others from ever being asked for.
    pub fn lacking_pictures(&self, limit: usize, round: usize) -> Vec<String> {
        let mut lacking: Vec<&str> = Vec::new();
        for picture in self.log.messages().filter_map(|m| m.picture.as_ref()) {
            if !self.pictures.had(&picture.sha256) && !lacking.contains(&picture.sha256.as_str()) {
                lacking.push(&picture.sha256);
            }
        }
        if lacking.len() <= limit {
            return lacking.into_iter().map(str::to_owned).collect();
        }
        let start = round.wrapping_mul(limit) % lacking.len();
        (lacking.iter().cycle().skip(start).take(limit))
            .map(|sha256| (*sha256).to_owned())
            .collect()
    }

    /// The held messages that carry the picture with this SHA-256.
    pub fn messages_with_picture<'a>(
        &'a self,
        sha256: &'a str,
    ) -> impl Iterator<Item = &'a RoomMessage> + 'a {
        (self.log.messages())
            .filter(move |m| m.picture.as_ref().is_some_and(|p| p.sha256 == sha256))
    }

    /// Takes in a message from any member (its author or one passing it on): verified
    /// against the membership, then kept in order if it is new and its author's next.
    pub fn receive(&mut self, message: RoomMessage) -> Result<Added, RoomError> {
        message.verify(&self.membership)?;
        self.log.add(message)
    }

    /// What `peer`, at membership version `version` (`None`: it has no copy of the room)
    /// holding `marks`, lacks of what this member holds: every change a current or former
    /// member lacks (a former one learns why it hears no more), and for a current member up
    /// to `limit` messages. A removed member is sent no message.
    pub fn catch_up_for(
        &self,
        peer: &str,
        version: Option<u64>,
        marks: &HighWaterMarks,
        limit: usize,
    ) -> CatchUp {
        if !self.membership.ever_member(peer) || peer == self.me {
            return CatchUp::default();
        }
        let changes = self.membership.changes_after(version).to_vec();
        if !self.membership.is_member(peer) || !self.joined() {
            return CatchUp {
                changes,
                ..CatchUp::default()
            };
        }
        let (messages, more) = self.log.missing_for(marks, limit);
        CatchUp {
            changes,
            messages,
            more,
        }
    }

    /// `peer` reported holding what `marks` cover: the delivery counts follow.
    pub fn note_marks(&mut self, peer: &str, marks: &HighWaterMarks) {
        if self.membership.is_member(peer) {
            self.delivery.record(peer, marks);
        }
    }

    /// Which current members are known to hold `message` and which are not (this member
    /// among them by what it holds itself).
    pub fn holders(&self, message: &RoomMessage) -> Holders {
        Holders::split(
            self.membership.members().map(|(member, _)| member),
            |member| {
                if member == self.me {
                    self.log.marks().covers(&message.author, message.seq)
                } else {
                    self.delivery.holds(member, message)
                }
            },
        )
    }

    /// Whether every current member holds `message`.
    pub fn delivered(&self, message: &RoomMessage) -> bool {
        self.holders(message).delivered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::testing::identity;
    use crate::room::{MAX_MESSAGES_PER_MEETING, MAX_ROOM_PICTURE_BYTES, ROOM_PIECE_BYTES};

    fn club(members: &[&str]) -> Room {
        let alice = identity("alice");
        let mut room = Room::create(RoomId::from_random([6; 16]), "club", "alice", &alice).unwrap();
        for member in members {
            room.invite(&alice, member, Some(identity(member).public()))
                .unwrap();
        }
        room
    }

    fn copy_for(room: &Room, me: &str) -> Room {
        Room::join(me, room.membership().changes().to_vec()).unwrap()
    }

    /// `from` tells `to` what it lacks; `to` takes it all in.
    fn meet(from: &Room, to: &mut Room) {
        let version = Some(to.membership().version());
        let catch_up = from.catch_up_for(to.me(), version, to.marks(), MAX_MESSAGES_PER_MEETING);
        for change in catch_up.changes {
            to.apply_change(change).unwrap();
        }
        for message in catch_up.messages {
            to.receive(message).unwrap();
        }
    }

    fn texts(room: &Room) -> Vec<String> {
        room.messages().map(|m| m.text.clone()).collect()
    }

    #[test]
    fn members_who_meet_end_with_the_same_messages_in_the_same_order() {
        let mut alice = club(&["bob", "carol"]);
        let mut bob = copy_for(&alice, "bob");
        let mut carol = copy_for(&alice, "carol");
        alice.write(&identity("alice"), "a1").unwrap();
        bob.write(&identity("bob"), "b1").unwrap();
        carol.write(&identity("carol"), "c1").unwrap();
        meet(&alice, &mut bob);
        bob.write(&identity("bob"), "b2 after a1").unwrap();
        meet(&bob, &mut carol);
        meet(&carol, &mut alice);
        meet(&alice, &mut bob);
        assert_eq!(texts(&alice), texts(&bob));
        assert_eq!(texts(&bob), texts(&carol));
        assert_eq!(texts(&alice).len(), 4);
        let order = texts(&alice);
        let at = |t: &str| order.iter().position(|x| x == t).unwrap();
        assert!(at("a1") < at("b2 after a1"), "{order:?}");
    }

    #[test]
    fn a_member_passes_on_another_members_message_unchanged() {
        let mut alice = club(&["bob", "carol"]);
        let mut bob = copy_for(&alice, "bob");
        let mut carol = copy_for(&alice, "carol");
        let written = alice.write(&identity("alice"), "for everyone").unwrap();
        meet(&alice, &mut bob);
        meet(&bob, &mut carol);
        assert_eq!(carol.messages().next(), Some(&written));
    }

    #[test]
    fn a_forged_message_passed_on_by_a_member_is_refused() {
        let alice = club(&["bob"]);
        let mut bob = copy_for(&alice, "bob");
        let forged = RoomMessage::signed(
            alice.id().clone(),
            "alice",
            (1, 1, 1),
            "bob is right",
            &identity("bob"),
        );
        assert!(matches!(
            bob.receive(forged),
            Err(RoomError::Impersonation { .. })
        ));
        assert_eq!(bob.messages().count(), 0);
    }

    #[test]
    fn an_uninvited_peer_gets_nothing_and_cannot_write() {
        let mut alice = club(&["bob"]);
        alice.write(&identity("alice"), "secret").unwrap();
        let catch_up = alice.catch_up_for("mallory", None, &HighWaterMarks::default(), 10);
        assert_eq!(catch_up, CatchUp::default());
        let from_mallory = RoomMessage::signed(
            alice.id().clone(),
            "mallory",
            (1, 5, 1),
            "hello",
            &identity("mallory"),
        );
        assert!(matches!(
            alice.receive(from_mallory),
            Err(RoomError::NotAMember { .. })
        ));
        assert!(matches!(
            Room::join("mallory", alice.membership().changes().to_vec()),
            Err(RoomError::NotAMember { .. })
        ));
    }

    #[test]
    fn a_removed_member_is_sent_only_its_removal() {
        let mut alice = club(&["bob", "carol"]);
        let mut bob = copy_for(&alice, "bob");
        bob.write(&identity("bob"), "b1").unwrap();
        meet(&bob, &mut alice);
        alice.remove(&identity("alice"), "bob").unwrap();
        alice.write(&identity("alice"), "after bob left").unwrap();
        let catch_up = alice.catch_up_for("bob", Some(2), bob.marks(), 10);
        assert_eq!(catch_up.changes.len(), 1);
        assert!(catch_up.messages.is_empty());
        meet(&alice, &mut bob);
        assert!(!bob.joined());
        assert!(matches!(
            bob.write(&identity("bob"), "b2"),
            Err(RoomError::AfterRemoval { .. })
        ));
        assert_eq!(texts(&bob), ["b1"]);
    }

    #[test]
    fn what_a_removed_member_wrote_after_its_removal_is_unmade_everywhere() {
        let mut alice = club(&["bob", "carol"]);
        let mut bob = copy_for(&alice, "bob");
        let mut carol = copy_for(&alice, "carol");
        alice.remove(&identity("alice"), "bob").unwrap();
        // bob has not heard yet, writes, and carol (who has not either) takes it in.
        bob.write(&identity("bob"), "b1").unwrap();
        meet(&bob, &mut carol);
        assert_eq!(texts(&carol), ["b1"]);
        let removal = alice.membership().changes()[3].clone();
        let applied = carol.apply_change(removal).unwrap();
        assert!(applied.new);
        assert_eq!(applied.dropped.len(), 1);
        assert!(texts(&carol).is_empty());
        assert_eq!(carol.marks().of("bob"), 0);
    }

    #[test]
    fn inviting_a_peer_without_an_identity_key_says_so() {
        let mut alice = club(&[]);
        assert_eq!(
            alice.invite(&identity("alice"), "oldtimer", None),
            Err(RoomError::NoIdentityKey {
                name: "oldtimer".into()
            })
        );
    }

    #[test]
    fn a_message_is_delivered_once_every_current_member_reported_it() {
        let mut alice = club(&["bob", "carol"]);
        let message = alice.write(&identity("alice"), "hi").unwrap();
        assert_eq!(alice.holders(&message).have, ["alice"]);
        assert_eq!(alice.holders(&message).lack, ["bob", "carol"]);
        let mut bob = copy_for(&alice, "bob");
        meet(&alice, &mut bob);
        alice.note_marks("bob", bob.marks());
        assert_eq!(alice.holders(&message).have, ["alice", "bob"]);
        assert_eq!(alice.holders(&message).lack, ["carol"]);
        assert!(!alice.delivered(&message));
        alice.remove(&identity("alice"), "carol").unwrap();
        assert!(alice.delivered(&message), "carol is no longer waited for");
        alice.note_marks("mallory", bob.marks());
        assert_eq!(alice.holders(&message).have, ["alice", "bob"]);
    }

    #[test]
    fn a_member_who_joins_lacks_earlier_messages_until_it_reports_them() {
        let mut alice = club(&["bob"]);
        let message = alice.write(&identity("alice"), "hi").unwrap();
        let mut bob = copy_for(&alice, "bob");
        meet(&alice, &mut bob);
        alice.note_marks("bob", bob.marks());
        assert!(alice.delivered(&message));
        alice
            .invite(&identity("alice"), "dave", Some(identity("dave").public()))
            .unwrap();
        assert_eq!(alice.holders(&message).lack, ["dave"]);
        let mut dave = copy_for(&alice, "dave");
        meet(&alice, &mut dave);
        alice.note_marks("dave", dave.marks());
        assert_eq!(alice.holders(&message).have, ["alice", "bob", "dave"]);
        assert!(alice.delivered(&message));
    }

    #[test]
    fn a_restored_copy_has_what_was_kept_and_numbers_on() {
        let mut alice = club(&["bob"]);
        alice.write(&identity("alice"), "one").unwrap();
        alice.write(&identity("alice"), "two").unwrap();
        let mut kept: Vec<_> = alice.messages().cloned().collect();
        kept.reverse();
        let mut again =
            Room::restore("alice", alice.membership().changes().to_vec(), kept).unwrap();
        assert_eq!(texts(&again), ["one", "two"]);
        let three = again.write(&identity("alice"), "three").unwrap();
        assert_eq!((three.seq, three.lamport), (3, 3));
    }

    #[test]
    fn a_picture_passed_on_arrives_whole_and_unknown_pieces_are_dropped() {
        let mut alice = club(&["bob", "carol"]);
        let mut bob = copy_for(&alice, "bob");
        let mut carol = copy_for(&alice, "carol");
        let data: Vec<u8> = (0..100_000).map(|n| (n % 253) as u8).collect();
        let content = ("look", "cat.png", "image/png", &data[..]);
        let written = alice
            .write_picture(
                &identity("alice"),
                content.0,
                (content.1, content.2, content.3),
            )
            .unwrap();
        let sha256 = written.picture.clone().unwrap().sha256;
        let pieces: Vec<(u64, Vec<u8>)> = (alice.picture_pieces(&sha256).into_iter())
            .map(|(offset, piece)| (offset, piece.to_vec()))
            .collect();
        assert_eq!(pieces.len(), 3);
        // Before bob holds the message, its pieces are of nothing he knows.
        assert_eq!(bob.take_piece(&sha256, 0, &pieces[0].1), None);
        meet(&alice, &mut bob);
        let taken: Vec<_> = (pieces.iter())
            .map(|(offset, piece)| bob.take_piece(&sha256, *offset, piece).unwrap())
            .collect();
        assert_eq!(taken.last(), Some(&Ok(PieceTaken::Complete)));
        meet(&bob, &mut carol);
        for (offset, piece) in bob.picture_pieces(&sha256) {
            carol.take_piece(&sha256, offset, piece).unwrap().unwrap();
        }
        assert_eq!(carol.picture_bytes(&sha256), Some(&data[..]));
        assert_eq!(carol.messages_with_picture(&sha256).next(), Some(&written));
    }

    #[test]
    fn a_member_claiming_anothers_picture_with_a_false_size_neither_crashes_nor_blocks_it() {
        let mut alice = club(&["bob", "adam"]);
        let mut bob = copy_for(&alice, "bob");
        let data: Vec<u8> = (0..100_000).map(|n| (n % 251) as u8).collect();
        let written = alice
            .write_picture(&identity("alice"), "", ("cat.png", "image/png", &data))
            .unwrap();
        let real = written.picture.clone().unwrap();
        let pieces: Vec<(u64, Vec<u8>)> = (alice.picture_pieces(&real.sha256).into_iter())
            .map(|(offset, piece)| (offset, piece.to_vec()))
            .collect();
        meet(&alice, &mut bob);
        bob.take_piece(&real.sha256, 0, &pieces[0].1)
            .unwrap()
            .unwrap();
        // Adam signs a message of his that claims the same hash, 2 MiB long, placed first
        // in the room's order (his name sorts before alice's), and sends a piece far past
        // the real picture's end.
        let false_claim = Picture {
            size: MAX_ROOM_PICTURE_BYTES,
            ..real.clone()
        };
        let members = bob.membership().version();
        let claim = RoomMessage::signed_with(
            bob.id().clone(),
            "adam",
            (1, 1, members),
            ("", Some(false_claim)),
            &identity("adam"),
        );
        assert_eq!(bob.receive(claim), Ok(Added::New));
        let far = 10 * ROOM_PIECE_BYTES as u64;
        let outcome = bob.take_piece(&real.sha256, far, &pieces[0].1).unwrap();
        assert_eq!(
            outcome,
            Ok(PieceTaken::Partial),
            "taken for the false claim only"
        );
        // alice's pieces still make her picture whole at bob's.
        for (offset, piece) in &pieces[1..] {
            bob.take_piece(&real.sha256, *offset, piece)
                .unwrap()
                .unwrap();
        }
        assert_eq!(bob.picture_bytes(&real.sha256), Some(&data[..]));
    }

    #[test]
    fn lacking_pictures_are_named_in_turn() {
        let mut alice = club(&["bob"]);
        let mut bob = copy_for(&alice, "bob");
        for n in 0..5u8 {
            let data = vec![n; 10];
            alice
                .write_picture(&identity("alice"), "", ("p.png", "image/png", &data))
                .unwrap();
        }
        meet(&alice, &mut bob);
        let all = bob.lacking_pictures(5, 0);
        assert_eq!(all.len(), 5);
        assert_eq!(bob.lacking_pictures(2, 0), all[..2]);
        assert_eq!(bob.lacking_pictures(2, 1), all[2..4]);
        assert_eq!(bob.lacking_pictures(2, 2), [all[4].clone(), all[0].clone()]);
    }

    #[test]
    fn a_meeting_carries_a_bounded_batch_and_says_more_remain() {
        let mut alice = club(&["bob"]);
        for n in 0..5 {
            alice.write(&identity("alice"), &n.to_string()).unwrap();
        }
        let mut bob = copy_for(&alice, "bob");
        let first = alice.catch_up_for("bob", Some(1), bob.marks(), 3);
        assert!(first.more);
        for message in first.messages {
            bob.receive(message).unwrap();
        }
        let rest = alice.catch_up_for("bob", Some(1), bob.marks(), 3);
        assert_eq!(rest.messages.len(), 2);
        assert!(!rest.more);
    }
}
