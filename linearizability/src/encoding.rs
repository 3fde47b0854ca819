//! A compact, exact encoding of search configurations for the memo cache.
//!
//! A plain bitset of linearized operations costs n/64 words per configuration, which for a
//! partition of ten thousand operations is over a kilobyte. Most of those bits are implied:
//! - let `w` be the first operation with a return (in call order) that is not linearized. Every
//!   earlier one is linearized, by definition;
//! - every linearized operation was linearized while `w`'s return was still ahead in the
//!   search's list, so it was called before `w` returned. Later ones are not linearized.
//!
//! So the key stores `w`, the bits of the operations with a return called between `w` and
//! `w`'s return (the concurrency window), and the bits of the operations without a return
//! called before `w`'s return. Together with the state, this determines the configuration.

use crate::bitset::{zobrist_key, Bitset};
use crate::history::Timestamp;

/// Mixes a state id into a set hash (a different odd multiplier than the set's keys).
fn mix(set_hash: u64, state: u32) -> u64 {
    let s = (u64::from(state) + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    set_hash ^ (s ^ (s >> 32))
}

/// The set of linearized operations, kept in the form the memo key needs.
pub struct Encoding {
    /// Per operation: its rank among the operations with (or without) a return.
    rank: Vec<u32>,
    /// Per operation: true if it has no return.
    open: Vec<bool>,
    /// Per rank `w` of a closed operation: closed operations called before `w` returned.
    closed_limit: Vec<u32>,
    /// Per rank `w` of a closed operation, plus one entry for "all closed linearized": open
    /// operations called before `w` returned.
    open_limit: Vec<u32>,
    closed: Bitset,
    opened: Bitset,
    /// Rank of the first closed operation not linearized (`closed.len()` if none).
    first_unlinearized: usize,
    hash: u64,
}

/// Ranks operations of one class by (call, index): the order of calls in the search's list.
fn ranks(calls: &[(Timestamp, Option<Timestamp>)], open: bool) -> Vec<usize> {
    let mut ops: Vec<usize> = (0..calls.len())
        .filter(|&i| calls[i].1.is_none() == open)
        .collect();
    ops.sort_by_key(|&i| (calls[i].0, i));
    ops
}

impl Encoding {
    /// An empty set over operations with these (call, return) times.
    pub fn new(calls: &[(Timestamp, Option<Timestamp>)]) -> Self {
        let (closed_ops, open_ops) = (ranks(calls, false), ranks(calls, true));
        let mut rank = vec![0; calls.len()];
        for (r, &op) in closed_ops.iter().chain(&open_ops).enumerate() {
            let class_rank = if r < closed_ops.len() {
                r
            } else {
                r - closed_ops.len()
            };
            rank[op] = class_rank as u32;
        }
        // A call at the same time as a return comes first in the list: closed intervals.
        let called_by = |class: &[usize], ret: Timestamp| {
            class.partition_point(|&op| calls[op].0 <= ret) as u32
        };
        let mut closed_limit = Vec::with_capacity(closed_ops.len());
        let mut open_limit = Vec::with_capacity(closed_ops.len() + 1);
        for &op in &closed_ops {
            let ret = calls[op].1.expect("closed operations have a return");
            closed_limit.push(called_by(&closed_ops, ret));
            open_limit.push(called_by(&open_ops, ret));
        }
        open_limit.push(open_ops.len() as u32);
        Self {
            rank,
            open: calls.iter().map(|c| c.1.is_none()).collect(),
            closed_limit,
            open_limit,
            closed: Bitset::new(closed_ops.len()),
            opened: Bitset::new(open_ops.len()),
            first_unlinearized: 0,
            hash: 0,
        }
    }

    /// Whether operation `op` is linearized.
    pub fn contains(&self, op: usize) -> bool {
        let rank = self.rank[op] as usize;
        if self.open[op] {
            self.opened.contains(rank)
        } else {
            self.closed.contains(rank)
        }
    }

    /// Marks `op` linearized.
    pub fn insert(&mut self, op: usize) {
        let rank = self.rank[op] as usize;
        self.hash ^= zobrist_key(op);
        if self.open[op] {
            self.opened.insert(rank);
            return;
        }
        self.closed.insert(rank);
        while self.first_unlinearized < self.closed.len()
            && self.closed.contains(self.first_unlinearized)
        {
            self.first_unlinearized += 1;
        }
    }

    /// Marks `op` not linearized.
    pub fn remove(&mut self, op: usize) {
        let rank = self.rank[op] as usize;
        self.hash ^= zobrist_key(op);
        if self.open[op] {
            self.opened.remove(rank);
            return;
        }
        self.closed.remove(rank);
        self.first_unlinearized = self.first_unlinearized.min(rank);
    }

    /// The memo hash of (this set, `state`).
    pub fn hash(&self, state: u32) -> u64 {
        mix(self.hash, state)
    }

    /// Writes the memo key of (this set, `state`) into `out` (cleared first).
    pub fn key(&self, state: u32, out: &mut Vec<u64>) {
        out.clear();
        let w = self.first_unlinearized;
        out.push(u64::from(state) | (w as u64) << 32);
        let closed_end = self.closed_limit.get(w).map_or(w, |&limit| limit as usize);
        debug_assert!(
            (closed_end..self.closed.len()).all(|r| !self.closed.contains(r)),
            "a linearized operation was called after the first unlinearized one returned"
        );
        self.closed.extract_into(w, closed_end, out);
        let open_end = self.open_limit[w] as usize;
        debug_assert!((open_end..self.opened.len()).all(|r| !self.opened.contains(r)));
        self.opened.extract_into(0, open_end, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(call: u64, ret: Option<u64>) -> (Timestamp, Option<Timestamp>) {
        (Timestamp(call), ret.map(Timestamp))
    }

    #[test]
    fn key_depends_on_set_and_state_only() {
        // Ops: 0 [0,10], 1 [1,2], 2 open from 3, 3 [11,12].
        let calls = [t(0, Some(10)), t(1, Some(2)), t(3, None), t(11, Some(12))];
        let mut a = Encoding::new(&calls);
        let mut b = Encoding::new(&calls);
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        a.insert(1);
        a.insert(0);
        a.insert(2);
        b.insert(2);
        b.insert(0);
        b.insert(3);
        b.remove(3);
        b.insert(1);
        a.key(5, &mut ka);
        b.key(5, &mut kb);
        assert_eq!(ka, kb);
        assert_eq!(a.hash(5), b.hash(5));
        b.key(6, &mut kb);
        assert_ne!(ka, kb);
        b.remove(2);
        b.key(5, &mut kb);
        assert_ne!(ka, kb);
        assert!(a.contains(2) && !b.contains(2));
    }

    #[test]
    fn window_covers_ops_called_before_the_first_unlinearized_return() {
        let calls = [
            t(0, Some(10)),
            t(1, Some(2)),
            t(10, Some(11)),
            t(12, Some(13)),
        ];
        let mut e = Encoding::new(&calls);
        let mut key = Vec::new();
        e.insert(1);
        e.key(0, &mut key);
        // w = rank 0; ops called at or before time 10: ranks 0, 1, 2.
        assert_eq!(key, vec![0, 0b010]);
        e.insert(0);
        e.key(0, &mut key);
        // w = rank 2 (op 2); called before 11: ranks up to 2; window [2, 3).
        assert_eq!(key, vec![2 << 32, 0]);
    }
}
