//! Who holds each room message, as far as this member knows: members say what they hold
//! by their high-water marks (when they meet, and after taking messages in), so a message
//! is held by every member whose mark for its author reaches its number.

use std::collections::BTreeMap;

use super::{HighWaterMarks, RoomMessage};

/// The latest marks each member reported.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    marks: BTreeMap<String, HighWaterMarks>,
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

    /// How many of `members` are known to hold `message`.
    pub fn holders<'a>(
        &self,
        message: &RoomMessage,
        members: impl IntoIterator<Item = &'a str>,
    ) -> usize {
        members
            .into_iter()
            .filter(|member| self.holds(member, message))
            .count()
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

    #[test]
    fn a_message_is_held_by_members_whose_marks_reach_it() {
        let mut delivery = Delivery::default();
        delivery.record("bob", &marks(2));
        delivery.record("carol", &marks(1));
        let members = ["alice", "bob", "carol"];
        assert_eq!(delivery.holders(&message(1), members), 2);
        assert_eq!(delivery.holders(&message(2), members), 1);
        assert_eq!(delivery.holders(&message(3), members), 0);
        assert!(!delivery.holds("dave", &message(1)));
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
