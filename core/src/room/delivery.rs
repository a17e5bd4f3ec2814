//! Who holds each room message, as far as this member knows: members say what they hold
//! by their high-water marks (when they meet, and after taking messages in), so a message
//! is held by every member whose mark for its author reaches its number. [`Holders`]
//! names, per message, the current members who hold it and those who do not yet.

use super::{HighWaterMarks, RoomMessage};
use crate::small_map::SmallMap;

/// Which current members hold one message and which do not yet: what the author sees as
/// the message's delivery (✓✓ once nobody lacks it). Both lists keep the order of the
/// members they were split from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holders {
    pub have: Vec<String>,
    pub lack: Vec<String>,
}

impl Holders {
    /// Splits `members` by whether each `holds` the message.
    pub fn split<'a>(
        members: impl IntoIterator<Item = &'a str>,
        holds: impl Fn(&str) -> bool,
    ) -> Self {
        let (have, lack) = members
            .into_iter()
            .map(str::to_owned)
            .partition(|member| holds(member));
        Self { have, lack }
    }

    /// How many current members there are.
    pub fn members(&self) -> usize {
        self.have.len() + self.lack.len()
    }

    /// Every current member holds the message.
    pub fn delivered(&self) -> bool {
        self.lack.is_empty()
    }
}

/// The latest marks each member reported.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    marks: SmallMap<String, HighWaterMarks>,
}

impl Delivery {
    /// `member` holds everything `marks` cover. Marks only rise: a report that arrives late
    /// (a lower mark) changes nothing.
    pub fn record(&mut self, member: &str, marks: &HighWaterMarks) {
        self.marks
            .entry(member.to_owned())
            .or_default()
            .raise_to(marks);
    }

    /// Up to which message of `author` `member` reported holding everything.
    pub fn mark(&self, member: &str, author: &str) -> u64 {
        self.marks.get(member).map_or(0, |marks| marks.of(author))
    }

    /// Whether `member` is known to hold `message`.
    pub fn holds(&self, member: &str, message: &RoomMessage) -> bool {
        self.marks
            .get(member)
            .is_some_and(|marks| marks.covers(&message.author, message.seq))
    }

    /// Forgets a member's reports (it left the room).
    pub fn forget(&mut self, member: &str) {
        self.marks.remove(member);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::RoomId;
    use crate::room::testing::identity;

    fn message(seq: u64) -> RoomMessage {
        let room = RoomId::from_random([5; 16]);
        RoomMessage::signed(room, "alice", (seq, seq, 0), "hi", &identity("alice"))
    }

    fn marks(seq: u64) -> HighWaterMarks {
        [("alice".to_owned(), seq)].into_iter().collect()
    }

    fn holders(delivery: &Delivery, seq: u64, members: &[&str]) -> Holders {
        Holders::split(members.iter().copied(), |member| {
            delivery.holds(member, &message(seq))
        })
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn a_message_is_held_by_members_whose_marks_reach_it() {
        let mut delivery = Delivery::default();
        delivery.record("bob", &marks(2));
        delivery.record("carol", &marks(1));
        let members = ["bob", "carol", "dave"];
        let first = holders(&delivery, 1, &members);
        assert_eq!(first.have, names(&["bob", "carol"]));
        assert_eq!(first.lack, names(&["dave"]));
        let second = holders(&delivery, 2, &members);
        assert_eq!(
            (second.have, second.lack),
            (names(&["bob"]), names(&["carol", "dave"]))
        );
        let third = holders(&delivery, 3, &members);
        assert!(third.have.is_empty());
        assert_eq!(third.members(), 3);
        assert!(!delivery.holds("dave", &message(1)));
    }

    #[test]
    fn a_message_is_delivered_once_nobody_lacks_it() {
        let mut delivery = Delivery::default();
        delivery.record("bob", &marks(1));
        assert!(!holders(&delivery, 1, &["bob", "carol"]).delivered());
        delivery.record("carol", &marks(1));
        assert!(holders(&delivery, 1, &["bob", "carol"]).delivered());
    }

    #[test]
    fn a_late_lower_report_does_not_take_delivery_back() {
        let mut delivery = Delivery::default();
        delivery.record("bob", &marks(3));
        delivery.record("bob", &marks(1));
        assert!(delivery.holds("bob", &message(3)));
        delivery.forget("bob");
        assert!(!delivery.holds("bob", &message(1)));
    }
}
