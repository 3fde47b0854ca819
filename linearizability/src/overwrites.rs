//! Interchangeable overwrites that never returned.
//!
//! A register history with crashed clients holds many writes that never returned, each of
//! its own value. Each stays a candidate at every later configuration, so at every dead end
//! the search tries every one of them (a write can hide the current value from a
//! compare-and-set that reported failure, so they cannot simply be left out; see
//! [`crate::Model::dispensable`]), and the subsets tried grow exponentially with the number
//! of crashed clients. But once every operation that could tell such a write's value apart
//! has been linearized, what is left cannot tell these writes apart at all: any of them does
//! what any other does. So at each configuration the search tries only one of them.
//!
//! # Why this loses no linearization
//!
//! The model names the *overwrites* ([`crate::Model::overwrites`]): operations legal in
//! every state that always leave the same state, and such that the state `t_p` that `p`
//! leaves differs from the state `t_q` that another overwrite `q` leaves only to their
//! *observers* ([`crate::Model::observes`]): for any operation `c` that observes neither,
//! `c` is illegal in both, or legal in both with the same next state, or leaves both as
//! they are. Call an overwrite that never returned *free* at a configuration when every one
//! of its observers is linearized.
//!
//! Let `p` and `q` be free at a configuration, and take a legal completion that places `q`
//! first and `p` later at some point (or never). Exchange them: `p` first, `q` where `p`
//! was (or never). Both were called already and neither has a return, so real-time order
//! holds. Every operation after the first step is unlinearized, hence observes neither, so
//! by induction the exchanged run is legal and after each step its state is either the
//! original's or `t_p` where the original has `t_q` (or the reverse, after the second
//! overwrite). So only the first free overwrite in candidate order needs to be tried. And
//! none needs to be tried when the current state was left by a free overwrite: what remains
//! cannot tell the state a free overwrite would leave from the current one, so the
//! completion without it is legal too, and shorter.
//!
//! The exchange keeps the completion's length and where its operations without a return
//! stand, so it combines with the search's other restrictions on those operations (see
//! [`crate::search`]): among the completions they allow there is one that places the
//! representative first, if it places a free overwrite first at all.

use crate::model::Model;
use crate::search::SearchOp;

/// Not an overwrite without a return.
const NONE: u32 = u32::MAX;

/// Tracks, for each overwrite that never returned, how many of its observers are still to
/// be linearized.
pub struct Overwrites {
    /// Per operation: for an overwrite without a return, its observers not yet linearized;
    /// otherwise `NONE`.
    observers_left: Vec<u32>,
    /// Per operation: the overwrites it observes.
    observes: Vec<Vec<u32>>,
    /// Bytes held (fixed once built).
    bytes: usize,
}

impl Overwrites {
    /// The overwrites without a return and their observers, or `None` if there are fewer
    /// than two such overwrites (then there is nothing to choose between).
    pub fn new<M: Model>(model: &M, ops: &[SearchOp<'_, M>]) -> Option<Self> {
        let overwrites: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].return_time.is_none() && model.overwrites(ops[i].input))
            .collect();
        if overwrites.len() < 2 {
            return None;
        }
        let mut observers_left = vec![NONE; ops.len()];
        let mut observes = vec![Vec::new(); ops.len()];
        for &p in &overwrites {
            observers_left[p] = 0;
            for (c, op) in ops.iter().enumerate() {
                if c != p && model.observes(op.input, op.output, ops[p].input) {
                    observers_left[p] += 1;
                    observes[c].push(p as u32);
                }
            }
        }
        let bytes = observers_left.capacity() * 4
            + observes
                .iter()
                .map(|o| std::mem::size_of::<Vec<u32>>() + o.capacity() * 4)
                .sum::<usize>();
        Some(Self {
            observers_left,
            observes,
            bytes,
        })
    }

    /// True if `op` is an overwrite without a return whose observers are all linearized
    /// (whether `op` itself is linearized or not).
    pub fn free(&self, op: u32) -> bool {
        self.observers_left[op as usize] == 0
    }

    /// Records that `op` was linearized.
    pub fn linearize(&mut self, op: u32) {
        for &p in &self.observes[op as usize] {
            self.observers_left[p as usize] -= 1;
        }
    }

    /// Records that the linearization of `op` was undone.
    pub fn unlinearize(&mut self, op: u32) {
        for &p in &self.observes[op as usize] {
            self.observers_left[p as usize] += 1;
        }
    }

    /// Approximate bytes held.
    pub fn size_bytes(&self) -> usize {
        self.bytes
    }
}
