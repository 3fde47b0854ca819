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

/// The interned states of one partition's search.
pub struct States<'m, M: Model> {
    model: &'m M,
    states: Vec<M::State>,
    hashes: Vec<u64>,
    table: HashTable<u32>,
    build: DefaultHashBuilder,
    steps: HashMap<u64, u32>,
    state_bytes: usize,
}

impl<'m, M: Model> States<'m, M> {
    /// Interns the model's initial state as id 0.
    pub fn new(model: &'m M) -> Self {
        let mut states = Self {
            model,
            states: Vec::new(),
            hashes: Vec::new(),
            table: HashTable::new(),
            build: DefaultHashBuilder::default(),
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
        assert!(id < ILLEGAL as usize, "state id overflow");
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
        let key = (u64::from(id) << 32) | u64::from(op);
        if let Some(&next) = self.steps.get(&key) {
            return (next != ILLEGAL).then_some(next);
        }
        let next = match self.model.step(&self.states[id as usize], input, output) {
            Some(state) => self.intern(state),
            None => ILLEGAL,
        };
        self.steps.insert(key, next);
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
    }
}
