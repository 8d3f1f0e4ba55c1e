//! [`TouchedMap`]: an ordered map that remembers which entries were changed since its
//! invariants were last checked.
//!
//! An actor's `invariants()` runs after every handler (TigerBeetle's `defer
//! self.invariants()`). Checking every partition a broker hosts after each handler makes every
//! message cost as much as the cluster is large: with 300 partitions that check was a quarter of
//! the simulation's time. A handler changes a handful of partitions, and a state can only break
//! a per-entry rule where it was changed, so the invariants check the entries handed out
//! mutably (or inserted) since the last check, and all of them after a handler that iterated
//! the map mutably. Whole-map rules (that do not hold entry by entry) must still be checked
//! over the whole map.

use std::cell::RefCell;
use std::collections::btree_map;
use std::collections::BTreeMap;

/// Which entries changed since the last [`TouchedMap::check_touched`]: the keys in the order
/// they were touched, possibly repeated (a push is cheaper than a set insert on the fetch path,
/// where every partition of a request is touched; the check sorts and deduplicates them).
#[derive(Debug, Clone)]
enum Touched<K> {
    Keys(Vec<K>),
    All,
}

impl<K> Default for Touched<K> {
    fn default() -> Self {
        Touched::Keys(Vec::new())
    }
}

/// A `BTreeMap` (same order, same API for what the actors use) that records the keys of the
/// entries inserted or borrowed mutably since the last [`TouchedMap::check_touched`]. Reads
/// through `&self` record nothing.
#[derive(Debug, Clone)]
pub struct TouchedMap<K: Ord + Clone, V> {
    map: BTreeMap<K, V>,
    /// Interior mutability so that `invariants(&self)` can forget what it checked.
    touched: RefCell<Touched<K>>,
}

impl<K: Ord + Clone, V> Default for TouchedMap<K, V> {
    fn default() -> Self {
        TouchedMap {
            map: BTreeMap::new(),
            touched: RefCell::new(Touched::default()),
        }
    }
}

impl<K: Ord + Clone, V> From<BTreeMap<K, V>> for TouchedMap<K, V> {
    /// Every entry of `map` counts as touched.
    fn from(map: BTreeMap<K, V>) -> Self {
        TouchedMap {
            map,
            touched: RefCell::new(Touched::All),
        }
    }
}

impl<K: Ord + Clone, V> TouchedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn touch(&mut self, key: &K) {
        Self::touch_key(self.touched.get_mut(), self.map.len(), key);
    }

    /// Records `key` as touched; past as many records as the map has entries (repeats
    /// included), the next check takes every entry instead.
    fn touch_key(touched: &mut Touched<K>, len: usize, key: &K) {
        if let Touched::Keys(keys) = touched {
            if keys.len() > len {
                *touched = Touched::All;
            } else if keys.last() != Some(key) {
                keys.push(key.clone());
            }
        }
    }

    fn touch_all(&mut self) {
        *self.touched.get_mut() = Touched::All;
    }

    /// The entry for `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// The entry for `key`, mutably; marks it touched.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        // One search of the map (this is on every partition of every fetch).
        let len = self.map.len();
        let value = self.map.get_mut(key)?;
        Self::touch_key(self.touched.get_mut(), len, key);
        Some(value)
    }

    /// Inserts (or replaces) the entry for `key`; marks it touched.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.touch(&key);
        self.map.insert(key, value)
    }

    /// The entry for `key`, to insert or change; marks it touched (an entry left vacant is
    /// skipped by the check).
    pub fn entry(&mut self, key: K) -> btree_map::Entry<'_, K, V> {
        self.touch(&key);
        self.map.entry(key)
    }

    /// Removes the entry for `key` (nothing is left to check for it).
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key)
    }

    /// Whether the map has an entry for `key`.
    pub fn contains_key(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> btree_map::Iter<'_, K, V> {
        self.map.iter()
    }

    /// Keys in order.
    pub fn keys(&self) -> btree_map::Keys<'_, K, V> {
        self.map.keys()
    }

    /// Values in key order.
    pub fn values(&self) -> btree_map::Values<'_, K, V> {
        self.map.values()
    }

    /// Entries in key order, mutably; marks every entry touched.
    pub fn iter_mut(&mut self) -> btree_map::IterMut<'_, K, V> {
        self.touch_all();
        self.map.iter_mut()
    }

    /// Values in key order, mutably; marks every entry touched.
    pub fn values_mut(&mut self) -> btree_map::ValuesMut<'_, K, V> {
        self.touch_all();
        self.map.values_mut()
    }

    /// Calls `check(key, value)` for every entry touched since the previous call (every entry
    /// after a mutable iteration), in key order, then forgets them. Entries touched and then
    /// removed are skipped.
    pub fn check_touched(&self, mut check: impl FnMut(&K, &V)) {
        match std::mem::take(&mut *self.touched.borrow_mut()) {
            Touched::All => self.map.iter().for_each(|(k, v)| check(k, v)),
            Touched::Keys(mut keys) => {
                keys.sort_unstable();
                keys.dedup();
                for k in &keys {
                    if let Some(v) = self.map.get(k) {
                        check(k, v);
                    }
                }
            }
        }
    }
}

impl<K: Ord + Clone, V> std::ops::Index<&K> for TouchedMap<K, V> {
    type Output = V;

    /// The entry for `key`; panics when there is none (as `BTreeMap`'s index does).
    fn index(&self, key: &K) -> &V {
        &self.map[key]
    }
}

impl<'a, K: Ord + Clone, V> IntoIterator for &'a TouchedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = btree_map::Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(m: &TouchedMap<u32, u32>) -> Vec<u32> {
        let mut seen = Vec::new();
        m.check_touched(|k, _| seen.push(*k));
        seen
    }

    #[test]
    fn only_entries_changed_since_the_last_check_are_checked() {
        let mut m: TouchedMap<u32, u32> = TouchedMap::new();
        for k in 0..10 {
            m.insert(k, k);
        }
        assert_eq!(checked(&m), (0..10).collect::<Vec<_>>());
        assert_eq!(checked(&m), Vec::<u32>::new(), "forgotten once checked");
        let _ = m.get(&3);
        *m.get_mut(&7).unwrap() += 1;
        let _ = m.get_mut(&42); // absent: nothing to check
        m.insert(5, 0);
        assert_eq!(checked(&m), vec![5, 7]);
        *m.entry(2).or_insert(0) += 1;
        m.entry(12).or_insert(0);
        assert_eq!(checked(&m), vec![2, 12], "entry() touches its key");
        m.remove(&12);
        m.insert(11, 0);
        m.remove(&11);
        assert_eq!(
            checked(&m),
            Vec::<u32>::new(),
            "removed entries are skipped"
        );
        m.values_mut().for_each(|v| *v = 0);
        assert_eq!(
            checked(&m).len(),
            10,
            "a mutable iteration touches everything"
        );
    }
}
