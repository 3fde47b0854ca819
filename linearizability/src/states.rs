//! Interned model states and a cache of model steps.
//!
//! The search compares and hashes states constantly. Interning gives each distinct state a
//! 4-byte id, so the memo cache stores ids instead of (possibly large) states, and the step
//! cache remembers `(state id, op) -> next state id`, so a model step (for a key-value model,
//! a string copy) runs once per distinct pair rather than once per search path.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use crate::model::Model;

/// Marks an illegal step in the step cache.
const ILLEGAL: u32 = u32::MAX;
/// Marks a step not computed yet in the dense step cache.
const UNKNOWN: u32 = u32::MAX - 1;
/// States whose steps are cached in a dense table (row per state, column per operation)
/// rather than a hash map: the common case of few distinct states gets array lookups.
const DENSE_STATES_MAX: usize = 256;
/// Bound on the dense table's entries (4 bytes each).
const DENSE_ENTRIES_MAX: usize = 1 << 20;

/// The interned states of one partition's search.
pub struct States<'m, M: Model> {
    model: &'m M,
    states: Vec<M::State>,
    hashes: Vec<u64>,
    table: HashTable<u32>,
    build: DefaultHashBuilder,
    /// Number of operations (columns of the dense step cache).
    ops: usize,
    /// Dense step cache for the first states: `dense[state * ops + op]`.
    dense: Vec<u32>,
    /// Step cache for the other states.
    steps: HashMap<u64, u32>,
    state_bytes: usize,
}

impl<'m, M: Model> States<'m, M> {
    /// Interns the model's initial state as id 0. Steps are cached for operations `0..ops`.
    pub fn new(model: &'m M, ops: usize) -> Self {
        let mut states = Self {
            model,
            states: Vec::new(),
            hashes: Vec::new(),
            table: HashTable::with_capacity(64),
            build: DefaultHashBuilder::default(),
            ops,
            dense: Vec::new(),
            steps: HashMap::new(),
            state_bytes: 0,
        };
        let init = states.intern(model.init());
        assert_eq!(init, 0, "the initial state is interned first");
        states
    }

    /// The id of `state`, interning it if new.
    pub fn intern(&mut self, state: M::State) -> u32 {
        let hash = self.build.hash_one(&state);
        let states = &self.states;
        if let Some(&id) = self.table.find(hash, |&id| states[id as usize] == state) {
            return id;
        }
        let id = self.states.len();
        assert!(id < UNKNOWN as usize, "state id overflow");
        if id < DENSE_STATES_MAX && (id + 1) * self.ops <= DENSE_ENTRIES_MAX {
            self.dense.resize((id + 1) * self.ops, UNKNOWN);
        }
        self.state_bytes += self.model.state_size_bytes(&state);
        self.states.push(state);
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.table
            .insert_unique(hash, id as u32, |&id| hashes[id as usize]);
        id as u32
    }

    /// The model.
    pub fn model(&self) -> &'m M {
        self.model
    }

    /// The state with id `id`.
    pub fn get(&self, id: u32) -> &M::State {
        &self.states[id as usize]
    }

    /// The state after op number `op` (with the given input and output) runs in state `id`,
    /// or `None` if illegal. Cached by `(id, op)`.
    pub fn step(
        &mut self,
        id: u32,
        op: u32,
        input: &M::Input,
        output: Option<&M::Output>,
    ) -> Option<u32> {
        assert!((op as usize) < self.ops, "operation {op} out of range");
        let slot = id as usize * self.ops + op as usize;
        let key = (u64::from(id) << 32) | u64::from(op);
        let cached = match self.dense.get(slot) {
            Some(&next) => next,
            None => self.steps.get(&key).copied().unwrap_or(UNKNOWN),
        };
        if cached != UNKNOWN {
            return (cached != ILLEGAL).then_some(cached);
        }
        let next = match self.model.step(&self.states[id as usize], input, output) {
            Some(state) => self.intern(state),
            None => ILLEGAL,
        };
        match self.dense.get_mut(slot) {
            Some(entry) => *entry = next,
            None => {
                self.steps.insert(key, next);
            }
        }
        (next != ILLEGAL).then_some(next)
    }

    /// Number of distinct states seen.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// True if no state is interned (never: the initial state always is).
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Approximate bytes held.
    pub fn size_bytes(&self) -> usize {
        self.state_bytes
            + self.hashes.capacity() * 8
            + self.table.capacity() * 5
            + self.steps.capacity() * 13
            + self.dense.capacity() * 4
    }
}
