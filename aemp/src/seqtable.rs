//! The table of a node's generated ports, keyed by their number.
//!
//! Generated port numbers come from one counter, so the live ones are
//! mostly a recent, dense range. A ring of slots indexed by `number - base`
//! holds that range: making a port appends to the ring (no hashing, and
//! ports made one after another sit side by side in memory), and finding
//! one is an index. Numbers outside the ring go to an ordinary hash map:
//! old ports that outlive the ports made after them (moved there when the
//! ring becomes mostly holes), and numbers far ahead of the counter (which
//! only a peer can make up, by naming a port when it spawns one here).

use std::collections::{HashMap, VecDeque};

/// How far beyond the ring's end a number may be and still go into it;
/// numbers further ahead go to the overflow map (so a made-up number
/// cannot make the ring grow).
const MAX_GAP: u64 = 4096;
/// The ring is compacted once it holds more than this many slots and
/// fewer than a quarter of them are in use.
const MIN_COMPACT: usize = 64;

/// A map from port numbers to `V`, fast for numbers made in sequence.
pub(crate) struct SeqTable<V> {
    /// The number of the ring's first slot.
    base: u64,
    ring: VecDeque<Option<V>>,
    /// How many ring slots hold a value.
    in_ring: usize,
    overflow: HashMap<u64, V>,
}

impl<V> Default for SeqTable<V> {
    fn default() -> Self {
        SeqTable { base: 1, ring: VecDeque::new(), in_ring: 0, overflow: HashMap::new() }
    }
}

impl<V> SeqTable<V> {
    /// The ring index of `n`, if `n` is within the ring.
    fn index(&self, n: u64) -> Option<usize> {
        let i = n.checked_sub(self.base)?;
        usize::try_from(i).ok().filter(|&i| i < self.ring.len())
    }

    pub(crate) fn len(&self) -> usize {
        self.in_ring + self.overflow.len()
    }

    /// Every value, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.ring.iter().flatten().chain(self.overflow.values())
    }

    pub(crate) fn get_mut(&mut self, n: u64) -> Option<&mut V> {
        match self.index(n) {
            Some(i) => self.ring[i].as_mut(),
            None => self.overflow.get_mut(&n),
        }
    }

    pub(crate) fn contains_key(&self, n: u64) -> bool {
        match self.index(n) {
            Some(i) => self.ring[i].is_some(),
            None => self.overflow.contains_key(&n),
        }
    }

    /// Inserts `v` under `n` unless `n` is taken; returns whether it did.
    pub(crate) fn insert(&mut self, n: u64, v: V) -> bool {
        if let Some(i) = self.index(n) {
            if self.ring[i].is_some() {
                return false;
            }
            self.ring[i] = Some(v);
            self.in_ring += 1;
            return true;
        }
        if self.overflow.contains_key(&n) {
            return false;
        }
        if self.ring.is_empty() {
            // Start the ring where the numbers are now.
            self.base = n;
        }
        let end = self.base + self.ring.len() as u64;
        if n < self.base || n - end > MAX_GAP {
            self.overflow.insert(n, v);
            return true;
        }
        // At or shortly after the ring's end (numbers can arrive a little
        // out of order: several threads make ports at once). A number the
        // ring now reaches may be in the overflow map: it moves over.
        loop {
            let m = self.base + self.ring.len() as u64;
            if m == n {
                break;
            }
            let moved = if self.overflow.is_empty() { None } else { self.overflow.remove(&m) };
            self.in_ring += usize::from(moved.is_some());
            self.ring.push_back(moved);
        }
        self.ring.push_back(Some(v));
        self.in_ring += 1;
        true
    }

    pub(crate) fn remove(&mut self, n: u64) -> Option<V> {
        let Some(i) = self.index(n) else { return self.overflow.remove(&n) };
        let v = self.ring[i].take()?;
        self.in_ring -= 1;
        self.trim();
        Some(v)
    }

    /// Drops empty slots at the front; when the ring is mostly holes, moves
    /// its oldest values to the overflow map so the holes can go.
    fn trim(&mut self) {
        loop {
            match self.ring.front() {
                Some(None) => {
                    self.ring.pop_front();
                    self.base += 1;
                }
                Some(Some(_)) if self.ring.len() > MIN_COMPACT && self.in_ring * 4 < self.ring.len() => {
                    if let Some(Some(v)) = self.ring.pop_front() {
                        self.overflow.insert(self.base, v);
                        self.in_ring -= 1;
                    }
                    self.base += 1;
                }
                _ => break,
            }
        }
        if self.ring.is_empty() && self.ring.capacity() > 4096 {
            self.ring = VecDeque::new();
        }
    }

    /// Removes and returns every value.
    #[cfg(test)]
    fn drain(&mut self) -> Vec<V> {
        let mut out: Vec<V> = self.ring.drain(..).flatten().collect();
        out.extend(self.overflow.drain().map(|(_, v)| v));
        self.in_ring = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Make the next port (the counter goes up by 1 + skip).
        Make(u8),
        /// Remove the live entry at this position (modulo).
        Remove(usize),
        /// Insert a number far ahead (a peer's made-up name).
        Far(u32),
        /// Look up a number near the counter.
        Get(i8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => any::<u8>().prop_map(|s| Op::Make(s % 3)),
            5 => any::<usize>().prop_map(Op::Remove),
            1 => any::<u32>().prop_map(Op::Far),
            2 => any::<i8>().prop_map(Op::Get),
        ]
    }

    proptest! {
        /// The table behaves as a hash map, whatever the order of inserts
        /// and removals; and its ring never holds mostly holes for long.
        #[test]
        fn behaves_as_a_map(ops in proptest::collection::vec(op(), 1..400)) {
            let mut t = SeqTable::default();
            let mut model: HashMap<u64, u64> = HashMap::new();
            let mut counter = 1u64;
            for op in ops {
                match op {
                    Op::Make(skip) => {
                        counter += u64::from(skip);
                        prop_assert_eq!(t.insert(counter, counter * 10), model.insert(counter, counter * 10).is_none());
                        counter += 1;
                    }
                    Op::Remove(i) => {
                        let keys: Vec<u64> = model.keys().copied().collect();
                        if !keys.is_empty() {
                            let k = keys[i % keys.len()];
                            prop_assert_eq!(t.remove(k), model.remove(&k));
                        }
                        prop_assert_eq!(t.remove(0), None);
                    }
                    Op::Far(d) => {
                        let n = counter + 10_000 + u64::from(d);
                        prop_assert_eq!(t.insert(n, 7), model.insert(n, 7).is_none());
                        prop_assert_eq!(t.insert(n, 8), false);
                        model.insert(n, 7);
                    }
                    Op::Get(d) => {
                        let n = counter.saturating_add_signed(i64::from(d));
                        prop_assert_eq!(t.get_mut(n).copied(), model.get(&n).copied());
                        prop_assert_eq!(t.contains_key(n), model.contains_key(&n));
                    }
                }
                prop_assert_eq!(t.len(), model.len());
                prop_assert!(t.ring.len() <= MIN_COMPACT.max(4 * t.in_ring + 1) + MAX_GAP as usize);
            }
            let mut all = t.drain();
            all.sort_unstable();
            let mut want: Vec<u64> = model.into_values().collect();
            want.sort_unstable();
            prop_assert_eq!(all, want);
        }
    }

    #[test]
    fn a_port_that_outlives_a_million_others_does_not_keep_their_slots() {
        let mut t = SeqTable::default();
        assert!(t.insert(1, "old"));
        for n in 2..1_000_000u64 {
            assert!(t.insert(n, "short"));
            assert_eq!(t.remove(n), Some("short"));
        }
        assert!(t.ring.len() <= MIN_COMPACT + 1, "{} slots kept", t.ring.len());
        assert_eq!(t.get_mut(1), Some(&mut "old"));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_made_up_number_far_ahead_does_not_grow_the_ring() {
        let mut t = SeqTable::default();
        assert!(t.insert(5, 'a'));
        assert!(t.insert(u64::MAX, 'b'));
        assert!(t.insert(1 << 40, 'c'));
        assert!(t.ring.len() <= 1);
        assert_eq!(t.remove(u64::MAX), Some('b'));
        assert_eq!(t.len(), 2);
    }
}
