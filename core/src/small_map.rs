//! Ordered maps and sets kept as one sorted vector.
//!
//! Why not `BTreeMap`: a B-tree's code (node splits, merges, steals, cursors) is compiled
//! once per key and value type, and the client keeps maps of some twenty types. In the web
//! app's wasm that came to 108 KB before compression, the largest single part of what a
//! first visit downloads. A sorted vector's code is a binary search and a `memmove` per
//! type, and for the client's maps (a user's peers, contacts, rooms, pins: tens of
//! entries, rarely thousands) it is as fast or faster. Iteration stays in key order, so
//! everything that relied on the B-tree's order keeps it.
//!
//! What can grow large without bound (a room's message log) stays in a `BTreeMap`: an
//! insertion in the middle moves the entries after it.

use std::borrow::Borrow;
use std::fmt;
use std::ops::{Bound, Index, RangeBounds};
use std::{iter, slice, vec};

/// An ordered map: `BTreeMap`'s interface, as far as peerchat uses it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SmallMap<K, V> {
    /// Sorted by key, no key twice.
    entries: Vec<(K, V)>,
}

pub type Iter<'a, K, V> = iter::Map<slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;
pub type IterMut<'a, K, V> =
    iter::Map<slice::IterMut<'a, (K, V)>, fn(&'a mut (K, V)) -> (&'a K, &'a mut V)>;

impl<K, V> SmallMap<K, V> {
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn iter(&self) -> Iter<'_, K, V> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    pub fn into_keys(self) -> impl DoubleEndedIterator<Item = K> + ExactSizeIterator {
        self.entries.into_iter().map(|(k, _)| k)
    }

    pub fn into_values(self) -> impl DoubleEndedIterator<Item = V> + ExactSizeIterator {
        self.entries.into_iter().map(|(_, v)| v)
    }

    /// Keeps the entries for which `keep` says so, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    pub fn last_key_value(&self) -> Option<(&K, &V)> {
        self.entries.last().map(|(k, v)| (k, v))
    }

    pub fn pop_first(&mut self) -> Option<(K, V)> {
        (!self.entries.is_empty()).then(|| self.entries.remove(0))
    }

    pub fn pop_last(&mut self) -> Option<(K, V)> {
        self.entries.pop()
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    /// Where `key` is, or where it would go.
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| &self.entries[at].1)
    }

    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| &mut self.entries[at].1)
    }

    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(key).is_ok()
    }

    /// The value `key` had, if any, and `value` in its place.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|at| self.entries.remove(at).1)
    }

    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let at = self.find(&key);
        Entry {
            entries: &mut self.entries,
            at,
            key,
        }
    }

    /// The entries whose keys are in `range`, in order.
    pub fn range<Q: Ord + ?Sized, R: RangeBounds<Q>>(&self, range: R) -> Iter<'_, K, V>
    where
        K: Borrow<Q>,
    {
        let start = match range.start_bound() {
            Bound::Included(key) => self.find(key).unwrap_or_else(|at| at),
            Bound::Excluded(key) => self.find(key).map_or_else(|at| at, |at| at + 1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(key) => self.find(key).map_or_else(|at| at, |at| at + 1),
            Bound::Excluded(key) => self.find(key).unwrap_or_else(|at| at),
            Bound::Unbounded => self.entries.len(),
        };
        self.entries[start..end.max(start)]
            .iter()
            .map(|(k, v)| (k, v))
    }

    /// Moves the entries from `key` on into a map of their own.
    pub fn split_off<Q: Ord + ?Sized>(&mut self, key: &Q) -> Self
    where
        K: Borrow<Q>,
    {
        let at = self.find(key).unwrap_or_else(|at| at);
        Self {
            entries: self.entries.split_off(at),
        }
    }
}

/// One key's place in a map, taken or free.
pub struct Entry<'a, K, V> {
    entries: &'a mut Vec<(K, V)>,
    at: Result<usize, usize>,
    key: K,
}

impl<'a, K, V> Entry<'a, K, V> {
    pub fn key(&self) -> &K {
        &self.key
    }

    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'a mut V {
        let at = match self.at {
            Ok(at) => at,
            Err(at) => {
                self.entries.insert(at, (self.key, make()));
                at
            }
        };
        &mut self.entries[at].1
    }

    pub fn or_insert(self, value: V) -> &'a mut V {
        self.or_insert_with(|| value)
    }

    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    pub fn and_modify(self, change: impl FnOnce(&mut V)) -> Self {
        if let Ok(at) = self.at {
            change(&mut self.entries[at].1);
        }
        self
    }
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SmallMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> Index<&Q> for SmallMap<K, V> {
    type Output = V;

    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for the key")
    }
}

/// Sorted once at the end, not entry by entry; of equal keys the last stays, as with
/// repeated inserts.
impl<K: Ord, V> FromIterator<(K, V)> for SmallMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(items: I) -> Self {
        let mut map = Self::new();
        map.extend(items);
        map
    }
}

impl<K: Ord, V> Extend<(K, V)> for SmallMap<K, V> {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, items: I) {
        self.entries.extend(items);
        if self.entries.is_sorted_by(|a, b| a.0 < b.0) {
            return;
        }
        // Stable: of equal keys the one added last is last, and it is the one kept.
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(K, V)> = Vec::with_capacity(self.entries.len());
        for entry in self.entries.drain(..) {
            match kept.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => kept.push(entry),
            }
        }
        self.entries = kept;
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for SmallMap<K, V> {
    fn from(items: [(K, V); N]) -> Self {
        items.into_iter().collect()
    }
}

impl<K, V> IntoIterator for SmallMap<K, V> {
    type Item = (K, V);
    type IntoIter = vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a SmallMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, K, V> IntoIterator for &'a mut SmallMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter = IterMut<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

/// An ordered set: `BTreeSet`'s interface, as far as peerchat uses it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SmallSet<K> {
    map: SmallMap<K, ()>,
}

/// By hand: derived, it would ask for `K: Default`.
impl<K> Default for SmallSet<K> {
    fn default() -> Self {
        Self::new()
    }
}

pub type SetIter<'a, K> = iter::Map<slice::Iter<'a, (K, ())>, fn(&'a (K, ())) -> &'a K>;

impl<K> SmallSet<K> {
    pub const fn new() -> Self {
        Self {
            map: SmallMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn iter(&self) -> SetIter<'_, K> {
        self.map.entries.iter().map(|(k, _)| k)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.map.retain(|k, _| keep(k));
    }

    pub fn first(&self) -> Option<&K> {
        self.map.first_key_value().map(|(k, _)| k)
    }

    pub fn last(&self) -> Option<&K> {
        self.map.last_key_value().map(|(k, _)| k)
    }

    pub fn pop_first(&mut self) -> Option<K> {
        self.map.pop_first().map(|(k, _)| k)
    }

    pub fn pop_last(&mut self) -> Option<K> {
        self.map.pop_last().map(|(k, _)| k)
    }
}

impl<K: Ord> SmallSet<K> {
    pub fn contains<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.map.contains_key(key)
    }

    /// Whether `key` is new here.
    pub fn insert(&mut self, key: K) -> bool {
        self.map.insert(key, ()).is_none()
    }

    /// Whether `key` was here.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.map.remove(key).is_some()
    }

    /// What is here and not in `other`, in order.
    pub fn difference<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = &'a K> + 'a {
        self.iter().filter(|k| !other.contains(*k))
    }
}

impl<K: fmt::Debug> fmt::Debug for SmallSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<K: Ord> FromIterator<K> for SmallSet<K> {
    fn from_iter<I: IntoIterator<Item = K>>(keys: I) -> Self {
        Self {
            map: keys.into_iter().map(|k| (k, ())).collect(),
        }
    }
}

impl<K: Ord> Extend<K> for SmallSet<K> {
    fn extend<I: IntoIterator<Item = K>>(&mut self, keys: I) {
        self.map.extend(keys.into_iter().map(|k| (k, ())));
    }
}

impl<'a, K: Ord + Clone + 'a> Extend<&'a K> for SmallSet<K> {
    fn extend<I: IntoIterator<Item = &'a K>>(&mut self, keys: I) {
        self.extend(keys.into_iter().cloned());
    }
}

impl<K: Ord, const N: usize> From<[K; N]> for SmallSet<K> {
    fn from(keys: [K; N]) -> Self {
        keys.into_iter().collect()
    }
}

impl<K> IntoIterator for SmallSet<K> {
    type Item = K;
    type IntoIter = iter::Map<vec::IntoIter<(K, ())>, fn((K, ())) -> K>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.entries.into_iter().map(|(k, _)| k)
    }
}

impl<'a, K> IntoIterator for &'a SmallSet<K> {
    type Item = &'a K;
    type IntoIter = SetIter<'a, K>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

// Property tests run natively (proptest is a native dev-dependency).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, u16),
        Remove(u8),
        Entry(u8, u16),
        Retain(u8),
        Extend(Vec<(u8, u16)>),
        SplitOff(u8),
        PopFirst,
        PopLast,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k, v)),
            any::<u8>().prop_map(Op::Remove),
            (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Entry(k, v)),
            any::<u8>().prop_map(Op::Retain),
            proptest::collection::vec((any::<u8>(), any::<u16>()), 0..20).prop_map(Op::Extend),
            any::<u8>().prop_map(Op::SplitOff),
            Just(Op::PopFirst),
            Just(Op::PopLast),
        ]
    }

    proptest! {
        /// Whatever is done to it, a `SmallMap` holds and answers what a `BTreeMap` does.
        #[test]
        fn behaves_as_a_btree_map(ops in proptest::collection::vec(op(), 0..60), probe: u8) {
            let (mut ours, mut theirs) = (SmallMap::new(), BTreeMap::new());
            for op in ops {
                match op {
                    Op::Insert(k, v) => prop_assert_eq!(ours.insert(k, v), theirs.insert(k, v)),
                    Op::Remove(k) => prop_assert_eq!(ours.remove(&k), theirs.remove(&k)),
                    Op::Entry(k, v) => {
                        *ours.entry(k).or_insert(v) += 1;
                        *theirs.entry(k).or_insert(v) += 1;
                    }
                    Op::Retain(m) => {
                        ours.retain(|k, v| (*k ^ m) % 3 != 0 && *v != 7);
                        theirs.retain(|k, v| (*k ^ m) % 3 != 0 && *v != 7);
                    }
                    Op::Extend(items) => {
                        ours.extend(items.clone());
                        theirs.extend(items);
                    }
                    Op::SplitOff(k) => {
                        let (a, b) = (ours.split_off(&k), theirs.split_off(&k));
                        prop_assert!(a.iter().eq(b.iter()));
                    }
                    Op::PopFirst => prop_assert_eq!(ours.pop_first(), theirs.pop_first()),
                    Op::PopLast => prop_assert_eq!(ours.pop_last(), theirs.pop_last()),
                }
                prop_assert!(ours.iter().eq(theirs.iter()));
            }
            prop_assert_eq!(ours.get(&probe), theirs.get(&probe));
            prop_assert!(ours.range(probe..).eq(theirs.range(probe..)));
            prop_assert!(ours.range(..=probe).eq(theirs.range(..=probe)));
            prop_assert!(ours.range(probe / 2..probe).eq(theirs.range(probe / 2..probe)));
            let collected: SmallMap<u8, u16> = theirs.clone().into_iter().rev().collect();
            prop_assert!(collected.iter().eq(theirs.iter()));
        }
    }

    #[test]
    fn of_repeated_keys_collected_the_last_stays() {
        let map: SmallMap<&str, u8> = [("b", 1), ("a", 2), ("b", 3), ("a", 4)].into();
        assert_eq!(format!("{map:?}"), r#"{"a": 4, "b": 3}"#);
        let set: SmallSet<u8> = [3, 1, 3, 2].into();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), [1, 2, 3]);
    }
}
