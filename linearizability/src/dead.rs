//! Dead-value pruning: a configuration fails as soon as some operation that must still take
//! effect needs a state that nothing left can bring back.
//!
//! Many operations are legal in exactly one state (a read that returned 3 needs the register
//! to hold 3; see [`Model::requirement`]). Call that state a *target*. For every target the
//! search keeps two counts over the operations not yet linearized: its *readers* (operations
//! with a return that require it) and its *writers* (operations that may leave the object in
//! it, [`Model::may_produce`], an over-approximation). If the current state is not a target
//! that still has readers, and no writer of it is left, no continuation can satisfy those
//! readers: the configuration fails. With unique values this catches at once a write placed
//! before a read of the value it overwrote, which the plain search only notices when that
//! read becomes the most urgent operation, after exploring everything in between.
//!
//! The counts change only for the targets an operation reads or may write, and the condition
//! can only become true for the state being left or for a target losing its last writer, so
//! each step is checked in time proportional to the targets it touches.

use hashbrown::HashMap;

use crate::history::Timestamp;
use crate::model::{Model, Produces};
use crate::search::SearchOp;
use crate::states::States;

/// The counts and, per operation, the targets it reads and may write.
pub struct Dead {
    /// State id -> target number.
    target_of: HashMap<u32, u32>,
    /// Per operation with a return: the target it requires.
    requires: Vec<Option<u32>>,
    /// Per operation, the targets it may write: `writes[starts[op]..starts[op + 1]]`.
    starts: Vec<u32>,
    writes: Vec<u32>,
    readers: Vec<u32>,
    writers: Vec<u32>,
    /// An operation shown unsatisfiable before the search (see [`Dead::stale_reader`]).
    stale: Option<u32>,
}

/// Bound on the (operation, target) pairs [`Dead::new`] asks [`Model::may_produce`] about;
/// beyond it the pruning is skipped for the partition, to keep its set-up cost bounded.
const PAIRS_MAX: usize = 10_000_000;

/// How many operations [`Dead::new`] examines per reader when looking for an overwrite
/// between its value's writers and itself.
const OVERWRITE_SCAN_MAX: usize = 64;

impl Dead {
    /// Counts over all of `ops` (none linearized). `None` if no operation requires a single
    /// state, so there is nothing to prune.
    pub fn new<M: Model>(ops: &[SearchOp<'_, M>], states: &mut States<'_, M>) -> Option<Self> {
        let model = states.model();
        let mut target_of: HashMap<u32, u32> = HashMap::new();
        let mut targets: Vec<M::State> = Vec::new();
        let mut requires = Vec::with_capacity(ops.len());
        for op in ops {
            let required = op
                .return_time
                .and(model.requirement(op.input, op.output))
                .map(|state| {
                    let id = states.intern(state.clone());
                    let next = target_of.len() as u32;
                    let target = *target_of.entry(id).or_insert(next);
                    if target == next {
                        targets.push(state);
                    }
                    target
                });
            requires.push(required);
        }
        if targets.is_empty() {
            return None;
        }
        let mut readers = vec![0u32; targets.len()];
        for t in requires.iter().flatten() {
            readers[*t as usize] += 1;
        }
        let mut writers = vec![0u32; targets.len()];
        let mut starts = Vec::with_capacity(ops.len() + 1);
        let mut writes = Vec::new();
        let mut pairs = 0usize;
        for op in ops {
            starts.push(writes.len() as u32);
            if op.read_only {
                continue;
            }
            match model.produces(op.input, op.output) {
                Produces::Nothing => continue,
                Produces::One(state) => {
                    let id = states.intern(state);
                    if let Some(&t) = target_of.get(&id) {
                        writes.push(t);
                        writers[t as usize] += 1;
                    }
                    continue;
                }
                Produces::Among(list) => {
                    for state in list {
                        let id = states.intern(state);
                        if let Some(&t) = target_of.get(&id) {
                            if !writes[starts[starts.len() - 1] as usize..].contains(&t) {
                                writes.push(t);
                                writers[t as usize] += 1;
                            }
                        }
                    }
                    continue;
                }
                Produces::Any => {}
            }
            pairs += targets.len();
            if pairs > PAIRS_MAX {
                return None;
            }
            for (t, target) in targets.iter().enumerate() {
                if model.may_produce(op.input, op.output, target) {
                    writes.push(t as u32);
                    writers[t] += 1;
                }
            }
        }
        starts.push(writes.len() as u32);
        let mut dead = Self {
            target_of,
            requires,
            starts,
            writes,
            readers,
            writers,
            stale: None,
        };
        dead.stale = dead.find_stale(ops, states);
        Some(dead)
    }

    /// An operation that requires a state which is certainly overwritten before it is called:
    /// every operation that may produce the state returned before some operation `w` was
    /// called, `w` returned before the reader was called, and `w` leaves the object in another
    /// state whatever it runs on. In every order that respects real time, the producers come
    /// before `w`, `w` before the reader, and nothing after `w` brings the state back. (The
    /// classic stale read; found in one pass, where the search would have to exhaust every
    /// order of the operations before it.)
    pub fn stale_reader(&self) -> Option<u32> {
        self.stale
    }

    fn find_stale<M: Model>(
        &self,
        ops: &[SearchOp<'_, M>],
        states: &mut States<'_, M>,
    ) -> Option<u32> {
        let targets = self.readers.len();
        // Per target: the latest return of an operation that may produce it; `None` if one
        // of them never returned (it may take effect at any later time).
        let mut produced_by: Vec<Option<Timestamp>> = vec![Some(Timestamp(0)); targets];
        for (op, o) in ops.iter().enumerate() {
            for &t in self.writes_of(op as u32) {
                let latest = &mut produced_by[t as usize];
                *latest = match (*latest, o.return_time) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
        }
        let mut by_call: Vec<u32> = (0..ops.len() as u32).collect();
        by_call.sort_by_key(|&op| (ops[op as usize].call, op));
        let mut target_state = vec![0u32; targets];
        for (&state, &t) in &self.target_of {
            target_state[t as usize] = state;
        }
        for (r, reader) in ops.iter().enumerate() {
            let Some(t) = self.requires[r] else { continue };
            let Some(produced) = produced_by[t as usize] else {
                continue;
            };
            let start = by_call.partition_point(|&op| ops[op as usize].call <= produced);
            let overwrite = by_call[start..]
                .iter()
                .take(OVERWRITE_SCAN_MAX)
                .take_while(|&&w| ops[w as usize].call < reader.call)
                .any(|&w| {
                    let op = &ops[w as usize];
                    op.return_time.is_some_and(|ret| ret < reader.call)
                        && op.output.is_some()
                        && !op.read_only
                        && !self.writes_of(w).contains(&t)
                        && {
                            let state = target_state[t as usize];
                            states.step(state, w, op.input, op.output) != Some(state)
                        }
                });
            if overwrite {
                return Some(r as u32);
            }
        }
        None
    }

    fn writes_of(&self, op: u32) -> &[u32] {
        &self.writes[self.starts[op as usize] as usize..self.starts[op as usize + 1] as usize]
    }

    /// True if the configuration is hopeless from the start (the initial state is `state`).
    pub fn dead_at_start(&self, state: u32) -> bool {
        let current = self.target_of.get(&state).copied();
        (0..self.readers.len())
            .any(|t| Some(t as u32) != current && self.readers[t] > 0 && self.writers[t] == 0)
    }

    /// True if linearizing `op`, which takes the state from `from` to `to`, leads to a hopeless
    /// configuration.
    pub fn dead_after(&self, op: u32, from: u32, to: u32) -> bool {
        let required = self.requires[op as usize];
        let writes = self.writes_of(op);
        let after = |t: u32| {
            let readers = self.readers[t as usize] - u32::from(required == Some(t));
            let writers = self.writers[t as usize] - u32::from(writes.contains(&t));
            readers > 0 && writers == 0
        };
        let target_to = self.target_of.get(&to).copied();
        if from != to {
            if let Some(t) = self.target_of.get(&from).copied() {
                if Some(t) != target_to && after(t) {
                    return true;
                }
            }
        }
        writes.iter().any(|&t| Some(t) != target_to && after(t))
    }

    /// Records that `op` was linearized.
    pub fn linearize(&mut self, op: u32) {
        if let Some(t) = self.requires[op as usize] {
            self.readers[t as usize] -= 1;
        }
        let (start, end) = (self.starts[op as usize], self.starts[op as usize + 1]);
        for &t in &self.writes[start as usize..end as usize] {
            self.writers[t as usize] -= 1;
        }
    }

    /// Undoes [`Dead::linearize`].
    pub fn unlinearize(&mut self, op: u32) {
        if let Some(t) = self.requires[op as usize] {
            self.readers[t as usize] += 1;
        }
        let (start, end) = (self.starts[op as usize], self.starts[op as usize + 1]);
        for &t in &self.writes[start as usize..end as usize] {
            self.writers[t as usize] += 1;
        }
    }

    /// Approximate heap size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.target_of.capacity() * 8
            + (self.requires.len() * 2 + self.starts.len() + self.writes.len()) * 4
            + (self.readers.len() + self.writers.len()) * 4
    }
}
