//! Property tests: a room's members write, are invited and removed, restart and are cut
//! apart and joined again at random, exchanging messages only when connected (an author
//! sends to the members it reaches; members that meet catch each other up). Once the
//! network heals and members have met pairwise until nothing changes, every current
//! member holds every message it should, exactly once and in one identical order; each
//! knows every message delivered; a removed member holds nothing written after its removal.
//!
//! Only the creator changes the membership here: two admins changing it at once make
//! conflicting chains, which the model refuses rather than merges (see `membership`).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::testing::identity;
use super::*;

/// Messages per meeting in the simulation: small, so that catching up takes several
/// meetings and the bound is exercised.
const MEETING_LIMIT: usize = 5;

/// Rounds of pairwise meetings after healing before the room must have gone quiet.
const MAX_QUIET_ROUNDS: usize = 200;

#[derive(Debug, Clone)]
enum Step {
    Write(usize),
    /// Members with the same number reach each other; the others do not.
    Partition(Vec<u8>),
    Heal,
    Restart(usize),
    Invite(usize),
    Remove(usize),
    Meet(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => any::<usize>().prop_map(Step::Write),
        2 => proptest::collection::vec(0..3u8, 8).prop_map(Step::Partition),
        1 => Just(Step::Heal),
        1 => any::<usize>().prop_map(Step::Restart),
        3 => any::<usize>().prop_map(Step::Invite),
        1 => any::<usize>().prop_map(Step::Remove),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Step::Meet(a, b)),
    ]
}

/// One member's device.
struct Device {
    name: String,
    /// Its copy of the room, once it has one.
    room: Option<Room>,
    /// Messages it showed, by author and number, in the order shown; an unmade message
    /// (its author was removed before writing it) is taken off.
    shown: Vec<(String, u64)>,
}

struct World {
    devices: Vec<Device>,
    /// Each device's side of the partition.
    side: Vec<u8>,
    /// Every message an author wrote, as its author's copy accepted it, with what its
    /// author held then (its marks): the room's order must put it after all of that.
    written: Vec<(RoomMessage, HighWaterMarks)>,
}

impl World {
    fn new(members: usize) -> Self {
        let devices = (0..members)
            .map(|n| Device {
                name: format!("m{n}"),
                room: None,
                shown: Vec::new(),
            })
            .collect::<Vec<_>>();
        let mut world = Self {
            devices,
            side: vec![0; members],
            written: Vec::new(),
        };
        let id = RoomId::from_random([9; 16]);
        let creator = Room::create(id, "sim", "m0", &identity("m0")).expect("valid");
        world.devices[0].room = Some(creator);
        world
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        a != b && self.side[a] == self.side[b]
    }

    fn run(&mut self, step: &Step) {
        let n = self.devices.len();
        match step {
            Step::Write(author) => self.write(author % n),
            Step::Partition(sides) => {
                self.side = sides[..n].to_vec();
                self.meet_connected();
            }
            Step::Heal => {
                self.side = vec![0; n];
                self.meet_connected();
            }
            Step::Restart(member) => self.restart(member % n),
            Step::Invite(member) => self.invite(1 + member % (n - 1)),
            Step::Remove(member) => self.remove(1 + member % (n - 1)),
            Step::Meet(a, b) => {
                let (a, b) = (a % n, b % n);
                if self.connected(a, b) {
                    self.meet(a, b);
                    self.meet(b, a);
                }
            }
        }
    }

    fn write(&mut self, author: usize) {
        let device = &mut self.devices[author];
        let Some(room) = device.room.as_mut().filter(|room| room.joined()) else {
            return;
        };
        let count = room.marks().of(&device.name) + 1;
        let text = format!("{} #{count}", device.name);
        let seen = room.marks().clone();
        let message = room
            .write(&identity(&device.name), &text)
            .expect("own write");
        device.shown.push((message.author.clone(), message.seq));
        self.written.push((message.clone(), seen));
        // The author sends it to every member it reaches.
        let members = self.devices[author].room.as_ref().expect("has").members();
        for to in 0..self.devices.len() {
            if self.connected(author, to) && members.contains(&self.devices[to].name) {
                self.take_message(to, message.clone());
            }
        }
    }

    fn invite(&mut self, member: usize) {
        let name = self.devices[member].name.clone();
        let creator = self.devices[0].room.as_mut().expect("the creator's");
        if creator.membership().is_member(&name) {
            return;
        }
        creator
            .invite(&identity("m0"), &name, Some(identity(&name).public()))
            .expect("the creator invites a newcomer or a former member");
        self.spread_changes();
    }

    fn remove(&mut self, member: usize) {
        let name = self.devices[member].name.clone();
        let creator = self.devices[0].room.as_mut().expect("the creator's");
        if !creator.membership().is_member(&name) {
            return;
        }
        creator
            .remove(&identity("m0"), &name)
            .expect("the creator removes a member");
        self.spread_changes();
    }

    /// The creator sends its changes to everyone it reaches who is or was in the room.
    fn spread_changes(&mut self) {
        for to in 1..self.devices.len() {
            if self.connected(0, to) {
                self.give(0, to, 0);
            }
        }
    }

    /// A device restarts: what it kept (its chain and messages) is all it has.
    fn restart(&mut self, member: usize) {
        let device = &mut self.devices[member];
        if let Some(room) = device.room.take() {
            let changes = room.membership().changes().to_vec();
            let messages: Vec<_> = room.messages().cloned().collect();
            let before: Vec<_> = messages.clone();
            let again = Room::restore(&device.name, changes, messages).expect("kept room");
            assert_eq!(again.messages().cloned().collect::<Vec<_>>(), before);
            device.room = Some(again);
        }
    }

    fn meet_connected(&mut self) {
        for a in 0..self.devices.len() {
            for b in 0..self.devices.len() {
                if self.connected(a, b) {
                    self.meet(a, b);
                }
            }
        }
    }

    /// `from` catches `to` up (one meeting's worth); whether `to` learned anything.
    fn meet(&mut self, from: usize, to: usize) -> bool {
        self.give(from, to, MEETING_LIMIT)
    }

    /// `from` sends `to` what it lacks (changes, and up to `limit` messages), then `to`
    /// reports its marks back; whether `to` learned anything.
    fn give(&mut self, from: usize, to: usize, limit: usize) -> bool {
        let Some(giver) = self.devices[from].room.as_ref() else {
            return false;
        };
        let receiver = &self.devices[to];
        let version = receiver.room.as_ref().map(|r| r.membership().version());
        let marks = receiver
            .room
            .as_ref()
            .map(|r| r.marks().clone())
            .unwrap_or_default();
        let catch_up = giver.catch_up_for(&receiver.name, version, &marks, limit);
        let mut learned = false;
        let device = &mut self.devices[to];
        match device.room.as_mut() {
            None if catch_up.changes.is_empty() => return false,
            None => {
                let room = Room::join(&device.name, catch_up.changes).expect("a whole chain");
                device.room = Some(room);
                learned = true;
            }
            Some(room) => {
                for change in catch_up.changes {
                    match room.apply_change(change) {
                        Ok(applied) => {
                            learned |= applied.new;
                            for gone in applied.dropped {
                                device
                                    .shown
                                    .retain(|shown| *shown != (gone.author.clone(), gone.seq));
                            }
                        }
                        Err(error) => panic!("{} refused a change: {error}", device.name),
                    }
                }
            }
        }
        for message in catch_up.messages {
            learned |= self.take_message(to, message);
        }
        let marks = self.devices[to].room.as_ref().expect("has").marks().clone();
        let name = self.devices[to].name.clone();
        self.devices[from]
            .room
            .as_mut()
            .expect("has")
            .note_marks(&name, &marks);
        learned
    }

    /// `to` takes in a message; whether it was new. Honest members never forge, so the
    /// only refusals are of a removed author's late message and of one that needs a
    /// membership change `to` has not seen yet.
    fn take_message(&mut self, to: usize, message: RoomMessage) -> bool {
        let device = &mut self.devices[to];
        let Some(room) = device.room.as_mut() else {
            return false;
        };
        let key = (message.author.clone(), message.seq);
        match room.receive(message) {
            Ok(Added::New) => {
                assert!(
                    !device.shown.contains(&key),
                    "{} shows {key:?} twice",
                    device.name
                );
                device.shown.push(key);
                true
            }
            Ok(Added::Duplicate | Added::Early { .. }) => false,
            Err(RoomError::AfterRemoval { .. } | RoomError::MembershipBehind { .. }) => false,
            Err(error) => panic!("{} refused an honest message: {error}", device.name),
        }
    }

    /// Every pair meets, again and again, until a whole round teaches nobody anything.
    fn settle(&mut self) -> usize {
        self.side = vec![0; self.devices.len()];
        for round in 0..MAX_QUIET_ROUNDS {
            let mut learned = false;
            for a in 0..self.devices.len() {
                for b in 0..self.devices.len() {
                    if a != b {
                        learned |= self.meet(a, b);
                    }
                }
            }
            if !learned {
                return round;
            }
        }
        panic!("the room is not quiet after {MAX_QUIET_ROUNDS} rounds of meetings");
    }
}

fn identities(room: &Room) -> Vec<(String, u64, String)> {
    room.messages()
        .map(|m| (m.author.clone(), m.seq, m.sig.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn once_healed_every_member_has_every_message_once_in_one_order(
        members in 3..=8usize,
        steps in proptest::collection::vec(step(), 0..120)
    ) {
        let mut world = World::new(members);
        for step in &steps {
            world.run(step);
        }
        world.settle();

        let creator = world.devices[0].room.as_ref().expect("the creator's");
        let membership = creator.membership().clone();
        // What every current member should hold: all that was written, less what an author
        // wrote after its removal took effect (and before it was invited again).
        let stands = |m: &RoomMessage| membership.writer_key(&m.author, m.members, m.seq).is_ok();
        let number = |m: &RoomMessage| (m.author.clone(), m.seq);
        let expected: BTreeSet<(String, u64)> =
            world.written.iter().map(|(m, _)| m).filter(|m| stands(m)).map(number).collect();
        // Numbers of unmade messages: one invited again writes on from its last that stands,
        // so such a number may name a later message.
        let unmade: BTreeSet<(String, u64)> =
            world.written.iter().map(|(m, _)| m).filter(|m| !stands(m)).map(number).collect();
        let reference = identities(creator);
        // Causality: what an author had seen when it wrote comes before what it wrote.
        let place = |author: &str, seq: u64| {
            reference.iter().position(|(a, s, _)| a == author && *s == seq)
        };
        for (message, seen) in world.written.iter().filter(|(m, _)| stands(m)) {
            let Some(at) = place(&message.author, message.seq) else { continue };
            for (author, mark) in seen.iter() {
                for seq in (1..=mark).filter(|seq| !unmade.contains(&(author.to_owned(), *seq))) {
                    prop_assert!(
                        place(author, seq).is_none_or(|before| before < at),
                        "{}'s #{} comes before {}'s #{} it had seen", message.author,
                        message.seq, author, seq
                    );
                }
            }
        }
        for device in &world.devices {
            let name = &device.name;
            if membership.is_member(name) {
                let room = device.room.as_ref().expect("a member has the room");
                prop_assert_eq!(room.membership().version(), membership.version(), "{}", name);
                prop_assert_eq!(&identities(room), &reference, "{} differs from m0", name);
                let held: BTreeSet<_> = room.messages().map(|m| (m.author.clone(), m.seq)).collect();
                prop_assert_eq!(&held, &expected, "{}", name);
                let shown: BTreeSet<_> = device.shown.iter().cloned().collect();
                prop_assert_eq!(shown.len(), device.shown.len(), "{} showed one twice", name);
                prop_assert_eq!(&shown, &expected, "{} showed other than it holds", name);
                let order: Vec<_> = room.messages().map(RoomMessage::order).collect();
                prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "{} out of order", name);
                prop_assert!(room.messages().all(|m| room.delivered(m)), "{} not delivered", name);
            } else if let Some((removed_at, _)) = membership.departure(name) {
                let room = device.room.as_ref().expect("a former member has the room");
                prop_assert!(!room.joined(), "{} does not know it was removed", name);
                prop_assert!(
                    room.messages().all(|m| m.members < removed_at),
                    "{} holds a message written after its removal", name
                );
            } else {
                prop_assert!(device.room.is_none(), "{} was never invited", name);
            }
        }
    }
}
