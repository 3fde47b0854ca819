//! The Wing–Gong–Lowe search over one partition.
//!
//! Calls and returns are kept in a linked list ordered by time ([`crate::list`]). At each
//! configuration (set of linearized operations, state), the *candidates* are the operations
//! whose call comes before the first return still in the list: exactly those that may take
//! effect next. The search tries them in turn; when the model allows the step and the new
//! configuration was not explored before (Lowe's memo cache), it removes the operation's
//! entries, pushes it on a stack and continues from there. When no candidate works, the
//! configuration fails: the search pops the last choice and tries the candidate after it.
//!
//! The history is linearizable when every operation that must take effect has been placed,
//! and not linearizable when the search must backtrack with an empty stack.
//! Reference: Wing & Gong 1993; Lowe, "Testing for linearizability" (2017), for the memo.
//!
//! Beyond Porcupine, and all exact (they never change a verdict, which the tests check against
//! a brute-force search):
//! - candidates are tried most urgent first (earliest return, operations that never returned
//!   last), which tends to find a linearization without detours;
//! - a legal read-only candidate is taken greedily: it can always be moved earlier in any
//!   linearization, so the other choices at that configuration need not be tried;
//! - an operation that never returned has no return entry, so nothing forces it to take
//!   effect ("at some point after its call, or never"); placing it where it changes nothing
//!   is never useful, and of several identical ones only the earliest pending one is tried;
//! - configurations are encoded compactly for the memo cache ([`crate::encoding`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crate::dead::Dead;
use crate::encoding::Encoding;
use crate::history::Timestamp;
use crate::list::EntryList;
use crate::memo::Memo;
use crate::model::Model;
use crate::order::{find_twins, urgency};
use crate::overwrites::Overwrites;
use crate::states::States;

/// Loop iterations between budget checks (time, memory, cancellation). A power of two.
const CHECK_EVERY: u64 = 1 << 8;
const _: () = assert!(CHECK_EVERY.is_power_of_two());

/// One operation as the search sees it.
pub struct SearchOp<'h, M: Model> {
    /// The argument.
    pub input: &'h M::Input,
    /// The output, `None` if unknown.
    pub output: Option<&'h M::Output>,
    /// Invocation time.
    pub call: Timestamp,
    /// Completion time; `None` if never observed.
    pub return_time: Option<Timestamp>,
    /// The model says it never changes the state ([`Model::is_read_only`]).
    pub read_only: bool,
}

/// Why a search stopped without a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The deadline passed.
    Timeout,
    /// The memory limit was reached.
    MemoryLimit,
    /// The configuration budget was used up.
    ConfigurationLimit,
    /// Another partition was illegal and the caller asked to stop early.
    Cancelled,
}

/// Limits shared by the searches of one check.
#[derive(Clone, Copy)]
pub struct Budget<'a> {
    /// Stop at this instant.
    pub deadline: Option<Instant>,
    /// Stop after exploring this many configurations (per partition).
    pub configurations_max: Option<u64>,
    /// Bytes held by all running searches.
    pub memory_used: &'a AtomicUsize,
    /// Stop when `memory_used` exceeds this.
    pub memory_limit_bytes: usize,
    /// Set by another partition to stop this one.
    pub cancel: &'a AtomicBool,
}

/// The verdict of one search. Operation numbers are positions in the search's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchVerdict {
    /// A linearization: every operation that must take effect, in order.
    Linearizable,
    /// No linearization exists.
    Illegal,
    /// Stopped early.
    Unknown(StopReason),
}

/// What the search found.
#[derive(Clone, Debug)]
pub struct SearchResult {
    /// The verdict.
    pub verdict: SearchVerdict,
    /// For `Linearizable`, the linearization. Otherwise the longest legal sequence the search
    /// built (a linearization of a prefix of the history).
    pub order: Vec<usize>,
    /// For `Illegal` or `Unknown`: the operation whose return the longest sequence could not
    /// get past (it could not be linearized next).
    pub blocked: Option<usize>,
    /// Configurations explored.
    pub configurations: u64,
    /// Distinct model states met.
    pub states: usize,
}

/// Runs the search. `ops` must be the partition's operations; the model must be pure.
/// With `thorough` false the search skips the set-up that only hard histories repay:
/// dead-value pruning ([`crate::dead`]), blind overwrites ([`Model::blind`]) and
/// interchangeable overwrites ([`crate::overwrites`]).
pub fn search<M: Model>(
    model: &M,
    ops: &[SearchOp<'_, M>],
    budget: &Budget<'_>,
    thorough: bool,
) -> SearchResult {
    Search::new(model, ops, thorough).run(budget)
}

struct Search<'a, 'h, 'm, M: Model> {
    ops: &'a [SearchOp<'h, M>],
    list: EntryList,
    linearized: Encoding,
    /// Scratch space for memo keys.
    key: Vec<u64>,
    memo: Memo,
    states: States<'m, M>,
    /// (operation, state before it, taken greedily).
    stack: Vec<Frame>,
    state: u32,
    /// Operations with a return time not yet linearized.
    required: usize,
    best: Vec<u32>,
    blocked: Option<u32>,
    memory_reported: usize,
    /// For an open operation: an identical open operation called no later, if any. Two such
    /// operations are interchangeable once both are called, so the later one is only tried
    /// after its twin is linearized (this removes symmetric duplicates from the search).
    twins: Vec<Option<u32>>,
    /// Per operation: its rank by (return time, open last; call time; index). Candidates are
    /// tried in this order: the operation that must take effect soonest first.
    urgency: Vec<u32>,
    /// Scratch space for the candidates of a configuration.
    candidates: Vec<u32>,
    /// Scratch space for the lookahead's view of the candidates.
    others: Vec<(&'h M::Input, Option<&'h M::Output>)>,
    /// Scratch space for the operations that may precede a read.
    before: Vec<u32>,
    /// Dead-value pruning, if the model names required states.
    dead: Option<Dead>,
    /// Per operation: a blind overwrite with a return ([`Model::blind`]).
    blind: Vec<bool>,
    /// Per operation: it resets the object ([`Model::resets`]). Empty if no operation is
    /// blind (then nothing is ever absorbed).
    resets: Vec<bool>,
    /// While blind overwrites are placed just before a reset: the state before them, which
    /// is the state the reset leaves behind.
    absorbing_from: Option<u32>,
    /// Overwrites without a return that no remaining operation can tell apart
    /// ([`crate::overwrites`]), if there are several.
    overwrites: Option<Overwrites>,
}

/// How the search continues at the current configuration.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// Just arrived: try every candidate.
    Fresh,
    /// This configuration fails: backtrack.
    Failed,
}

/// One linearized operation on the search stack.
#[derive(Clone, Copy)]
struct Frame {
    op: u32,
    state_before: u32,
    /// Taken because it was a legal read-only step: the configuration below it has no other
    /// choice worth trying, so backtracking past it also fails that configuration.
    greedy: bool,
    /// A blind overwrite placed just before the reset in the frame above: it is undone with
    /// that reset, as one choice.
    absorbed: bool,
}

impl<'a, 'h, 'm, M: Model> Search<'a, 'h, 'm, M> {
    fn new(model: &'m M, ops: &'a [SearchOp<'h, M>], thorough: bool) -> Self {
        assert!(
            ops.len() < (u32::MAX as usize - 2) / 2,
            "too many operations"
        );
        let calls: Vec<(Timestamp, Option<Timestamp>)> =
            ops.iter().map(|op| (op.call, op.return_time)).collect();
        let mut states = States::new(model, ops.len());
        let dead = if thorough {
            Dead::new(ops, &mut states)
        } else {
            None
        };
        let blind: Vec<bool> = ops
            .iter()
            .map(|op| thorough && op.return_time.is_some() && model.blind(op.input, op.output))
            .collect();
        let overwrites = if thorough {
            Overwrites::new(model, ops)
        } else {
            None
        };
        let resets = if blind.contains(&true) {
            ops.iter()
                .map(|op| model.resets(op.input, op.output))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            ops,
            list: EntryList::new(&calls),
            linearized: Encoding::new(&calls),
            key: Vec::new(),
            memo: Memo::with_capacity(4 * ops.len()),
            states,
            stack: Vec::with_capacity(ops.len()),
            state: 0,
            required: ops.iter().filter(|op| op.return_time.is_some()).count(),
            best: Vec::new(),
            blocked: None,
            memory_reported: 0,
            twins: find_twins(ops),
            urgency: urgency(ops),
            candidates: Vec::new(),
            others: Vec::new(),
            before: Vec::new(),
            dead,
            blind,
            resets,
            absorbing_from: None,
            overwrites,
        }
    }

    fn run(mut self, budget: &Budget<'_>) -> SearchResult {
        // With a stale read the verdict is known; the search only runs briefly for a longest
        // legal prefix to report.
        let stale = self.dead.as_ref().and_then(Dead::stale_reader);
        let iterations_max = stale.map(|_| 4 * self.ops.len() as u64 + 1024);
        let hopeless = self.dead.as_ref().is_some_and(|d| d.dead_at_start(0));
        let mut resume = if !hopeless && self.arrive() {
            Resume::Fresh
        } else {
            Resume::Failed
        };
        let mut iterations: u64 = 0;
        let verdict = loop {
            if self.required == 0 {
                assert!(stale.is_none(), "a linearization includes a stale read");
                break SearchVerdict::Linearizable;
            }
            iterations += 1;
            if iterations_max.is_some_and(|max| iterations > max) {
                self.blocked = stale;
                break SearchVerdict::Illegal;
            }
            if iterations & (CHECK_EVERY - 1) == 0 {
                if let Some(reason) = self.over_budget(budget) {
                    break SearchVerdict::Unknown(reason);
                }
            }
            let after = match resume {
                Resume::Fresh => None,
                Resume::Failed => match self.backtrack() {
                    Some(op) => Some(op),
                    None => break SearchVerdict::Illegal,
                },
            };
            resume = self.step_from(after);
        };
        // The stale read is the definite culprit: report it as the blocking operation.
        let verdict = match (verdict, stale) {
            (_, Some(stale)) => {
                self.blocked = Some(stale);
                SearchVerdict::Illegal
            }
            (verdict, None) => verdict,
        };
        self.finish(verdict, budget)
    }

    /// At the current configuration, tries the candidates in order, starting after `after`
    /// (a candidate whose subtree was just exhausted). Returns how to continue.
    fn step_from(&mut self, after: Option<u32>) -> Resume {
        let mut candidates = std::mem::take(&mut self.candidates);
        let first_return = self.collect_candidates(&mut candidates);
        let start = after.map_or(0, |op| {
            let at = candidates.iter().position(|&c| c == op);
            at.expect("a backtracked operation is a candidate again") + 1
        });
        let mut resume = Resume::Failed;
        let stuck = after.is_none() && first_return.is_some_and(|r| self.stuck(r, &candidates));
        let tried = if stuck {
            &candidates[..0]
        } else {
            &candidates[start..]
        };
        // Of the free overwrites without a return, only the first is tried, and none if a
        // free overwrite left the current state.
        let representative = self.overwrites.as_ref().and_then(|o| {
            if self.producer().is_some_and(|op| o.free(op)) {
                return None;
            }
            candidates
                .iter()
                .copied()
                .find(|&c| o.free(c) && !self.linearized.contains(c as usize))
        });
        for &op in tried {
            // A blind overwrite waits until it must take effect, or a reset erases it.
            if self.blind[op as usize] && Some(op) != first_return {
                continue;
            }
            if Some(op) != representative && self.overwrites.as_ref().is_some_and(|o| o.free(op)) {
                continue;
            }
            let absorbed = if self.resets.get(op as usize) == Some(&true) {
                self.absorb(op, &candidates)
            } else {
                0
            };
            if self.try_linearize(op, false) {
                resume = if self.arrive() {
                    Resume::Fresh
                } else {
                    Resume::Failed
                };
                break;
            }
            for _ in 0..absorbed {
                self.pop();
            }
        }
        if resume == Resume::Failed {
            if let Some(op) = first_return {
                self.record_deepest(op);
            }
        }
        self.candidates = candidates;
        resume
    }

    /// True if the current configuration cannot succeed because some operation that must
    /// take effect soon is illegal here and cannot become legal. Two such operations are
    /// examined: the one whose return comes first, and the first read-only one to return.
    fn stuck(&mut self, first_return: u32, candidates: &[u32]) -> bool {
        if self.cannot_become_legal(first_return, candidates) {
            return true;
        }
        let mut before = std::mem::take(&mut self.before);
        let ops = self.ops;
        let read = self
            .list
            .calls_before_return(|op| ops[op as usize].read_only, &mut before);
        let stuck = read
            .is_some_and(|read| read != first_return && self.cannot_become_legal(read, &before));
        self.before = before;
        stuck
    }

    /// True if `urgent` is illegal in the current state and cannot become legal through the
    /// operations in `before` (which must include every operation that may take effect before
    /// it: those called before it returned). If each of them either is illegal here or leaves
    /// the state as it is, any sequence of them leaves it as it is, so `urgent` stays illegal;
    /// otherwise the model's [`Model::may_become_legal`] lookahead decides.
    fn cannot_become_legal(&mut self, urgent: u32, before: &[u32]) -> bool {
        let state = self.state;
        let op = &self.ops[urgent as usize];
        if self
            .states
            .step(state, urgent, op.input, op.output)
            .is_some()
        {
            return false;
        }
        let unchanged = before.iter().all(|&c| {
            let op = &self.ops[c as usize];
            self.states
                .step(state, c, op.input, op.output)
                .is_none_or(|next| next == state)
        });
        if unchanged {
            return true;
        }
        let ops = self.ops;
        let mut others = std::mem::take(&mut self.others);
        others.clear();
        others.extend(
            before
                .iter()
                .filter(|&&c| c != urgent)
                .map(|&c| (ops[c as usize].input, ops[c as usize].output)),
        );
        let model = self.states.model();
        let possible = model.may_become_legal(self.states.get(state), op.input, op.output, &others);
        self.others = others;
        !possible
    }

    /// The linearized operation that left the current state (the last one that changed the
    /// state), if any.
    fn producer(&self) -> Option<u32> {
        self.stack
            .iter()
            .rev()
            .find(|frame| frame.state_before != self.state)
            .map(|frame| frame.op)
    }

    /// The operations that may be linearized next (calls before the first return in the
    /// list), most urgent first: by return time, open operations last. Returns the operation
    /// of the first return, which must be linearized before anything called after it.
    fn collect_candidates(&self, out: &mut Vec<u32>) -> Option<u32> {
        let first_return = self.list.candidates(out);
        out.sort_unstable_by_key(|&op| self.urgency[op as usize]);
        first_return
    }

    /// Called on reaching a new configuration: takes every legal read-only candidate
    /// greedily. Returns false if this configuration is known to fail (a greedy step led to an
    /// explored configuration).
    fn arrive(&mut self) -> bool {
        let mut candidates = std::mem::take(&mut self.candidates);
        let mut known_to_fail = false;
        'restart: loop {
            self.list.candidates(&mut candidates);
            for &op in &candidates {
                let search_op = &self.ops[op as usize];
                if !search_op.read_only {
                    continue;
                }
                let legal = self
                    .states
                    .step(self.state, op, search_op.input, search_op.output);
                if let Some(next) = legal {
                    assert_eq!(next, self.state, "a read-only operation changed the state");
                    if !self.try_linearize(op, true) {
                        known_to_fail = true;
                        break 'restart;
                    }
                    continue 'restart;
                }
            }
            break;
        }
        self.candidates = candidates;
        !known_to_fail
    }

    /// Tries to linearize `op` now; true if it was (and the list changed).
    fn try_linearize(&mut self, op: u32, greedy: bool) -> bool {
        // The state the operation leaves behind, for the dead-value check: with blind
        // overwrites just absorbed, the state before them.
        let left = self.absorbing_from.take().unwrap_or(self.state);
        let search_op = &self.ops[op as usize];
        let Some(next) = self
            .states
            .step(self.state, op, search_op.input, search_op.output)
        else {
            return false;
        };
        if search_op.return_time.is_none() {
            if next == self.state || self.states.model().pending_needless(self.states.get(next)) {
                return false;
            }
            if self.twins[op as usize].is_some_and(|twin| !self.linearized.contains(twin as usize))
            {
                return false;
            }
        }
        if self
            .dead
            .as_ref()
            .is_some_and(|d| d.dead_after(op, left, next))
        {
            return false;
        }
        self.linearized.insert(op as usize);
        self.linearized.key(next, &mut self.key);
        if !self.memo.insert(self.linearized.hash(next), &self.key) {
            self.linearized.remove(op as usize);
            return false;
        }
        self.stack.push(Frame {
            op,
            state_before: self.state,
            greedy,
            absorbed: false,
        });
        self.state = next;
        self.list.lift(op);
        if let Some(dead) = &mut self.dead {
            dead.linearize(op);
        }
        if let Some(overwrites) = &mut self.overwrites {
            overwrites.linearize(op);
        }
        if search_op.return_time.is_some() {
            self.required -= 1;
        }
        true
    }

    /// Places every blind overwrite among `candidates` (other than `reset`, which is about
    /// to be tried) just before `reset`, which erases them; returns how many. They are not
    /// entered in the memo cache: only the configuration after the reset is.
    ///
    /// Why this loses nothing: take any linearization from the configuration after the reset
    /// alone, and remove a blind overwrite from it. What followed it, up to the next reset,
    /// was legal in its blank state, hence legal in every state, and the next reset leaves
    /// the same state either way, so the shorter order is legal; the overwrite, a candidate
    /// now, may be placed here. And a blind overwrite is otherwise placed only when it must
    /// take effect next: in any linearization it can be moved later past what follows it
    /// (which is legal in every state and leaves its blank state as it is) until it meets a
    /// reset, or an operation called after it returned, in which case its return is the
    /// first one still ahead.
    fn absorb(&mut self, reset: u32, candidates: &[u32]) -> usize {
        let before = self.state;
        let mut absorbed = 0;
        for &x in candidates {
            if x == reset || !self.blind[x as usize] || self.linearized.contains(x as usize) {
                continue;
            }
            let op = &self.ops[x as usize];
            let next = self
                .states
                .step(self.state, x, op.input, op.output)
                .expect("a blind overwrite is legal in every state");
            self.stack.push(Frame {
                op: x,
                state_before: self.state,
                greedy: false,
                absorbed: true,
            });
            self.state = next;
            self.linearized.insert(x as usize);
            self.list.lift(x);
            if let Some(dead) = &mut self.dead {
                dead.linearize(x);
            }
            if let Some(overwrites) = &mut self.overwrites {
                overwrites.linearize(x);
            }
            self.required -= 1;
            absorbed += 1;
        }
        if absorbed > 0 {
            self.absorbing_from = Some(before);
        }
        absorbed
    }

    /// Undoes the last linearization; returns its frame.
    fn pop(&mut self) -> Option<Frame> {
        let frame = self.stack.pop()?;
        self.state = frame.state_before;
        self.linearized.remove(frame.op as usize);
        self.list.unlift(frame.op);
        if let Some(dead) = &mut self.dead {
            dead.unlinearize(frame.op);
        }
        if let Some(overwrites) = &mut self.overwrites {
            overwrites.unlinearize(frame.op);
        }
        if self.ops[frame.op as usize].return_time.is_some() {
            self.required += 1;
        }
        Some(frame)
    }

    /// Undoes linearizations until one whose alternatives are still worth trying; returns
    /// that operation, or `None` with an empty stack if nothing is left.
    fn backtrack(&mut self) -> Option<u32> {
        while let Some(frame) = self.pop() {
            assert!(
                !frame.absorbed,
                "an absorbed overwrite is undone with its reset"
            );
            if !frame.greedy {
                while self.stack.last().is_some_and(|f| f.absorbed) {
                    self.pop();
                }
                return Some(frame.op);
            }
        }
        None
    }

    fn record_deepest(&mut self, blocked: u32) {
        if self.blocked.is_none() || self.stack.len() > self.best.len() {
            self.best.clear();
            self.best.extend(self.stack.iter().map(|frame| frame.op));
            self.blocked = Some(blocked);
        }
    }

    fn memory_bytes(&self) -> usize {
        self.memo.size_bytes()
            + self.states.size_bytes()
            + self.list.size_bytes()
            + self.dead.as_ref().map_or(0, Dead::size_bytes)
            + self.overwrites.as_ref().map_or(0, Overwrites::size_bytes)
    }

    fn over_budget(&mut self, budget: &Budget<'_>) -> Option<StopReason> {
        if budget.cancel.load(Ordering::Relaxed) {
            return Some(StopReason::Cancelled);
        }
        if budget
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return Some(StopReason::Timeout);
        }
        if budget
            .configurations_max
            .is_some_and(|max| self.memo.len() as u64 >= max)
        {
            return Some(StopReason::ConfigurationLimit);
        }
        let now = self.memory_bytes();
        if now >= self.memory_reported {
            budget
                .memory_used
                .fetch_add(now - self.memory_reported, Ordering::Relaxed);
        } else {
            budget
                .memory_used
                .fetch_sub(self.memory_reported - now, Ordering::Relaxed);
        }
        self.memory_reported = now;
        if budget.memory_used.load(Ordering::Relaxed) > budget.memory_limit_bytes {
            return Some(StopReason::MemoryLimit);
        }
        None
    }

    fn finish(self, verdict: SearchVerdict, budget: &Budget<'_>) -> SearchResult {
        budget
            .memory_used
            .fetch_sub(self.memory_reported, Ordering::Relaxed);
        let (order, blocked) = match verdict {
            SearchVerdict::Linearizable => {
                (self.stack.iter().map(|frame| frame.op).collect(), None)
            }
            _ => (self.best.clone(), self.blocked),
        };
        SearchResult {
            verdict,
            order: order.into_iter().map(|op: u32| op as usize).collect(),
            blocked: blocked.map(|op| op as usize),
            configurations: self.memo.len() as u64,
            states: self.states.len(),
        }
    }
}
