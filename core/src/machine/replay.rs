//! Replays of sealed signaling, refused whatever else arrives: per sender key, the latest
//! seal moment accepted (a high-water mark). A sender's moments only grow, so a seal at or
//! before its key's mark is one accepted before, or older; a flood of seals under other
//! keys moves no mark but their own, so no number of them makes an old seal fresh again.
//!
//! Peers of the first seal format may seal several messages in one millisecond (an offer
//! and its first candidates): at the mark itself, the signatures already accepted are
//! remembered, and only those are refused.

use crate::identity::PublicKey;
use crate::small_map::{SmallMap, SmallSet};

/// Most signatures remembered at one moment of one key; beyond it, further seals of that
/// moment are refused (an honest sender seals an offer and at most 64 candidates at once).
const MAX_SEALS_AT_ONE_MOMENT: usize = 80;

/// The allowance of marks for keys pinned for nobody (strangers' first messages,
/// candidates before an offer): once more marks are kept than every pin's and this many,
/// strangers' are cut back to half of it, the oldest first; a pinned key's mark is never
/// dropped. Dropping one can only let a stranger's early candidate be applied twice:
/// everything that starts or changes a chat pins its key.
pub(super) const MAX_STRANGER_MARKS: usize = 4096;

/// The marks, by key (generic only so that tests can flood it with cheap keys).
#[derive(Debug)]
pub(super) struct ReplayMarks<K = PublicKey> {
    by_key: SmallMap<K, Mark>,
    /// How many marks trigger the next cut of strangers' marks.
    cut_at: usize,
}

impl<K> Default for ReplayMarks<K> {
    fn default() -> Self {
        Self {
            by_key: SmallMap::new(),
            cut_at: FIRST_CUT_AT,
        }
    }
}

/// Marks kept before strangers' are first cut back: every pin's and the strangers' allowance.
const FIRST_CUT_AT: usize = super::trust::MAX_PINS + MAX_STRANGER_MARKS;

#[derive(Debug)]
struct Mark {
    ts: u64,
    /// Signatures accepted at exactly `ts`.
    at_mark: Vec<String>,
}

impl<K: Ord + Copy> ReplayMarks<K> {
    /// Whether a seal of `key` made at `ts` with signature `sig` must be refused as a replay.
    pub fn is_replay(&self, key: &K, ts: u64, sig: &str) -> bool {
        self.by_key.get(key).is_some_and(|mark| {
            ts < mark.ts
                || (ts == mark.ts
                    && (mark.at_mark.iter().any(|s| s == sig)
                        || mark.at_mark.len() >= MAX_SEALS_AT_ONE_MOMENT))
        })
    }

    /// Records an accepted seal. `pinned` tells which keys are pinned, for when strangers'
    /// marks must be cut back.
    pub fn accept(&mut self, key: K, ts: u64, sig: &str, pinned: impl FnOnce() -> SmallSet<K>) {
        let mark = self.by_key.entry(key).or_insert(Mark {
            ts,
            at_mark: Vec::new(),
        });
        if ts > mark.ts {
            mark.ts = ts;
            mark.at_mark.clear();
        }
        mark.at_mark.push(sig.to_owned());
        if self.by_key.len() > self.cut_at {
            self.cut_strangers(&pinned());
            self.cut_at = FIRST_CUT_AT.max(self.by_key.len() + MAX_STRANGER_MARKS / 2);
        }
    }

    /// Drops the oldest marks of keys pinned for nobody, down to half their allowance, so
    /// the cut (a walk over every mark) happens once per many seals.
    fn cut_strangers(&mut self, pinned: &SmallSet<K>) {
        let mut strangers: Vec<(u64, K)> = (self.by_key.iter())
            .filter(|(key, _)| !pinned.contains(*key))
            .map(|(key, mark)| (mark.ts, *key))
            .collect();
        let excess = strangers.len().saturating_sub(MAX_STRANGER_MARKS / 2);
        if excess == 0 {
            return;
        }
        strangers.select_nth_unstable(excess - 1);
        for (_, key) in &strangers[..excess] {
            self.by_key.remove(key);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys are numbers here: a flood needs tens of thousands.
    fn key(n: u32) -> u32 {
        n
    }

    #[test]
    fn a_seal_at_or_before_the_mark_is_a_replay_unless_new_at_the_mark() {
        let mut marks = ReplayMarks::<u32>::default();
        let alice = key(1);
        assert!(!marks.is_replay(&alice, 100, "a"));
        marks.accept(alice, 100, "a", SmallSet::new);
        assert!(marks.is_replay(&alice, 100, "a"), "the same seal again");
        assert!(marks.is_replay(&alice, 99, "older"), "an older one");
        assert!(!marks.is_replay(&alice, 100, "b"), "another of the same ms");
        assert!(!marks.is_replay(&alice, 101, "c"));
        marks.accept(alice, 101, "c", SmallSet::new);
        assert!(marks.is_replay(&alice, 100, "b"), "behind the mark now");
    }

    #[test]
    fn a_flood_of_other_keys_never_forgets_a_pinned_key() {
        let mut marks = ReplayMarks::<u32>::default();
        let alice = key(0);
        marks.accept(alice, 1_000, "alice's offer", SmallSet::new);
        let pinned = || SmallSet::from([key(0)]);
        for n in 1..=3 * FIRST_CUT_AT as u32 {
            marks.accept(key(n), 2_000 + u64::from(n), "flood", pinned);
        }
        assert!(marks.is_replay(&alice, 1_000, "alice's offer"));
        assert!(marks.len() <= FIRST_CUT_AT + 1, "{} marks", marks.len());
    }
}
