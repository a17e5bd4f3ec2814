//! A room's kept messages in the one order every member shows them in (Lamport time, then
//! author), with each author's high-water mark: the highest number up to which this member
//! holds all of that author's messages. Two members compare marks to learn what each lacks.

use std::collections::BTreeMap;

use crate::small_map::SmallMap;

use super::{RoomError, RoomMessage};

/// Per author, the highest message number up to which every message is held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HighWaterMarks(SmallMap<String, u64>);

impl HighWaterMarks {
    /// `author`'s mark (0: none of its messages).
    pub fn of(&self, author: &str) -> u64 {
        self.0.get(author).copied().unwrap_or(0)
    }

    pub fn set(&mut self, author: &str, seq: u64) {
        self.0.insert(author.to_owned(), seq);
    }

    /// Raises each mark to `other`'s where that is higher.
    pub fn raise_to(&mut self, other: &Self) {
        for (author, seq) in &other.0 {
            if *seq > self.of(author) {
                self.set(author, *seq);
            }
        }
    }

    /// Whether message `seq` of `author` is covered.
    pub fn covers(&self, author: &str, seq: u64) -> bool {
        seq <= self.of(author)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(author, seq)| (author.as_str(), *seq))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, u64)> for HighWaterMarks {
    fn from_iter<I: IntoIterator<Item = (String, u64)>>(marks: I) -> Self {
        Self(marks.into_iter().filter(|(_, seq)| *seq > 0).collect())
    }
}

/// What [`RoomLog::add`] did with a (verified) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Kept: new to this member, to be shown.
    New,
    /// Already held: shown before, not again.
    Duplicate,
    /// Not kept: earlier messages of its author are missing (from `expected` on). They
    /// come at the next meeting, and this one with them.
    Early { expected: u64 },
}

/// The messages of one room this member holds.
#[derive(Debug, Clone, Default)]
pub struct RoomLog {
    ordered: BTreeMap<(u64, String), RoomMessage>,
    /// Each held message's Lamport time, by author and number.
    by_author: BTreeMap<(String, u64), u64>,
    marks: HighWaterMarks,
}

impl RoomLog {
    /// Keeps `message` if it is its author's next one. It must have been verified against
    /// the membership ([`RoomMessage::verify`]); here its numbers are checked against what
    /// its author wrote before: a second, different message under a number already held is
    /// refused, and so is one not later than its author's previous one.
    pub fn add(&mut self, message: RoomMessage) -> Result<Added, RoomError> {
        let author = message.author.clone();
        let mark = self.marks.of(&author);
        if message.seq <= mark {
            let held = (self.by_author.get(&(author.clone(), message.seq)))
                .and_then(|lamport| self.ordered.get(&(*lamport, author.clone())));
            return if held == Some(&message) {
                Ok(Added::Duplicate)
            } else {
                Err(RoomError::Equivocation {
                    author,
                    seq: message.seq,
                })
            };
        }
        if message.seq > mark + 1 {
            return Ok(Added::Early { expected: mark + 1 });
        }
        let previous = self.by_author.get(&(author.clone(), mark)).copied();
        if previous.is_some_and(|previous| message.lamport <= previous) {
            return Err(RoomError::OutOfOrder {
                author,
                seq: message.seq,
            });
        }
        self.by_author
            .insert((author.clone(), message.seq), message.lamport);
        self.marks.set(&author, message.seq);
        self.ordered.insert((message.lamport, author), message);
        Ok(Added::New)
    }

    /// `author`'s message `seq`, if held.
    pub fn get(&self, author: &str, seq: u64) -> Option<&RoomMessage> {
        let lamport = self.by_author.get(&(author.to_owned(), seq))?;
        self.ordered.get(&(*lamport, author.to_owned()))
    }

    /// Every held message, in the room's one order.
    pub fn messages(&self) -> impl Iterator<Item = &RoomMessage> {
        self.ordered.values()
    }

    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }

    pub fn marks(&self) -> &HighWaterMarks {
        &self.marks
    }

    /// The latest Lamport time held: a new message is stamped later than it.
    pub fn clock(&self) -> u64 {
        self.ordered
            .last_key_value()
            .map_or(0, |((lamport, _), _)| *lamport)
    }

    /// What a member with `marks` lacks, in the room's order, at most `limit` of them, and
    /// whether more remain. Taking a prefix of the order gives each author's messages from
    /// its mark on without a gap (an author's times grow with its numbers), so the receiver
    /// keeps all of them.
    pub fn missing_for(&self, marks: &HighWaterMarks, limit: usize) -> (Vec<RoomMessage>, bool) {
        let mut lacking = self
            .ordered
            .values()
            .filter(|message| !marks.covers(&message.author, message.seq));
        let messages: Vec<_> = lacking.by_ref().take(limit).cloned().collect();
        let more = lacking.next().is_some();
        (messages, more)
    }

    /// Drops `author`'s messages numbered above `last_seq` (it was removed after that one
    /// by a change this member learned late) and returns them.
    pub fn drop_after(&mut self, author: &str, last_seq: u64) -> Vec<RoomMessage> {
        let mark = self.marks.of(author);
        let mut dropped = Vec::new();
        for seq in last_seq.saturating_add(1)..=mark {
            if let Some(lamport) = self.by_author.remove(&(author.to_owned(), seq))
                && let Some(message) = self.ordered.remove(&(lamport, author.to_owned()))
            {
                dropped.push(message);
            }
        }
        if mark > last_seq {
            self.marks.set(author, last_seq);
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::RoomId;
    use crate::room::testing::identity;

    fn message(author: &str, seq: u64, lamport: u64, text: &str) -> RoomMessage {
        RoomMessage::signed(
            RoomId::from_random([4; 16]),
            author,
            (seq, lamport, 0),
            text,
            &identity(author),
        )
    }

    fn texts(log: &RoomLog) -> Vec<&str> {
        log.messages().map(|m| m.text.as_str()).collect()
    }

    #[test]
    fn messages_are_ordered_by_lamport_time_then_author() {
        let mut log = RoomLog::default();
        for m in [
            message("bob", 1, 2, "bob at 2"),
            message("carol", 1, 1, "carol at 1"),
            message("alice", 1, 2, "alice at 2"),
            message("carol", 2, 3, "carol at 3"),
        ] {
            assert_eq!(log.add(m), Ok(Added::New));
        }
        assert_eq!(
            texts(&log),
            ["carol at 1", "alice at 2", "bob at 2", "carol at 3"]
        );
        assert_eq!(log.clock(), 3);
        assert_eq!(log.marks().of("carol"), 2);
        assert_eq!(log.marks().of("dave"), 0);
    }

    #[test]
    fn a_message_arriving_twice_is_kept_once() {
        let mut log = RoomLog::default();
        assert_eq!(log.add(message("bob", 1, 1, "hi")), Ok(Added::New));
        assert_eq!(log.add(message("bob", 1, 1, "hi")), Ok(Added::Duplicate));
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn a_message_numbered_zero_is_not_a_duplicate_of_anything() {
        let mut log = RoomLog::default();
        assert!(log.add(message("bob", 0, 1, "zero")).is_err());
        assert!(log.is_empty());
    }

    #[test]
    fn two_different_messages_under_one_number_are_refused() {
        let mut log = RoomLog::default();
        log.add(message("bob", 1, 1, "hi")).unwrap();
        assert_eq!(
            log.add(message("bob", 1, 1, "bye")),
            Err(RoomError::Equivocation {
                author: "bob".into(),
                seq: 1
            })
        );
        assert_eq!(texts(&log), ["hi"]);
    }

    #[test]
    fn an_authors_messages_keep_their_written_order() {
        let mut log = RoomLog::default();
        log.add(message("bob", 1, 5, "first")).unwrap();
        assert!(matches!(
            log.add(message("bob", 2, 5, "second at the same time")),
            Err(RoomError::OutOfOrder { .. })
        ));
        assert!(matches!(
            log.add(message("bob", 2, 4, "second before the first")),
            Err(RoomError::OutOfOrder { .. })
        ));
        assert_eq!(
            log.add(message("bob", 3, 7, "a gap")),
            Ok(Added::Early { expected: 2 })
        );
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn what_a_peer_lacks_follows_its_marks_and_the_limit() {
        let mut log = RoomLog::default();
        for seq in 1..=5 {
            log.add(message("alice", seq, seq * 2, "a")).unwrap();
            log.add(message("bob", seq, seq * 2 + 1, "b")).unwrap();
        }
        let marks: HighWaterMarks = [("alice".to_owned(), 3)].into_iter().collect();
        let (all, more) = log.missing_for(&marks, 100);
        assert!(!more);
        assert_eq!(all.len(), 2 + 5);
        assert!(all.iter().all(|m| m.author == "bob" || m.seq > 3));
        let (some, more) = log.missing_for(&marks, 4);
        assert!(more);
        assert_eq!(some, all[..4]);
        let mut peer = RoomLog::default();
        for m in log.messages().filter(|m| marks.covers(&m.author, m.seq)) {
            peer.add(m.clone()).unwrap();
        }
        for m in some {
            assert_eq!(peer.add(m), Ok(Added::New), "a bounded batch has no gaps");
        }
        let (none, more) = log.missing_for(log.marks(), 100);
        assert!(none.is_empty() && !more);
    }

    #[test]
    fn dropping_a_removed_authors_late_messages_lowers_its_mark() {
        let mut log = RoomLog::default();
        for seq in 1..=4 {
            log.add(message("bob", seq, seq, "b")).unwrap();
        }
        let dropped = log.drop_after("bob", 2);
        assert_eq!(dropped.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(log.marks().of("bob"), 2);
        assert_eq!(log.len(), 2);
        assert!(log.drop_after("bob", 9).is_empty());
    }
}
