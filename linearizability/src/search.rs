//! The Wing–Gong–Lowe search over one partition.
//!
//! Calls and returns are placed in one doubly linked list ordered by time (calls before returns
//! at equal times, so intervals are closed). The search walks the list from the head:
//! - at a call, it tries to linearize that operation now: if the model allows the step and the
//!   configuration (linearized set, state) is new, it removes the call and its return from the
//!   list, pushes the operation, and restarts from the head;
//! - at a return, the operation it belongs to was not linearized before it returned, so the
//!   last choice was wrong: it pops that choice, puts the entries back, and tries the next call.
//!
//! The history is linearizable when every operation that must take effect has been placed;
//! it is not when the search must backtrack with an empty stack.
//! Reference: Wing & Gong 1993; Lowe, "Testing for linearizability" (2017), for the memo.
//!
//! Operations whose completion was never observed have no return entry: nothing forces them
//! to be linearized, matching "took effect at some point after the call, or never". Placing
//! such an operation where it changes nothing is pointless (leaving it out is always at least
//! as good), so the search skips those steps.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use crate::encoding::Encoding;
use crate::history::Timestamp;
use crate::memo::Memo;
use crate::model::Model;
use crate::states::States;

const HEAD: u32 = 0;
const NIL: u32 = u32::MAX;
/// Loop iterations between budget checks (time, memory, cancellation). A power of two.
const CHECK_EVERY: u64 = 1 << 12;
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
pub fn search<M: Model>(model: &M, ops: &[SearchOp<'_, M>], budget: &Budget<'_>) -> SearchResult {
    Search::new(model, ops).run(budget)
}

struct Search<'a, 'h, 'm, M: Model> {
    ops: &'a [SearchOp<'h, M>],
    next: Vec<u32>,
    prev: Vec<u32>,
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
}

fn call_node(op: u32) -> u32 {
    1 + 2 * op
}

fn return_node(op: u32) -> u32 {
    2 + 2 * op
}

/// See `Search::urgency`.
fn urgency<M: Model>(ops: &[SearchOp<'_, M>]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| {
        (
            ops[i].return_time.is_none(),
            ops[i].return_time,
            ops[i].call,
            i,
        )
    });
    let mut urgency = vec![0; ops.len()];
    for (rank, &i) in order.iter().enumerate() {
        urgency[i] = rank as u32;
    }
    urgency
}

/// See `Search::twins`.
fn find_twins<M: Model>(ops: &[SearchOp<'_, M>]) -> Vec<Option<u32>> {
    let mut open: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].return_time.is_none())
        .collect();
    open.sort_by_key(|&i| (ops[i].call, i));
    let mut twins = vec![None; ops.len()];
    for (position, &i) in open.iter().enumerate() {
        let earlier = open[..position]
            .iter()
            .rev()
            .find(|&&j| ops[j].input == ops[i].input);
        twins[i] = earlier.map(|&j| j as u32);
    }
    twins
}

impl<'a, 'h, 'm, M: Model> Search<'a, 'h, 'm, M> {
    fn new(model: &'m M, ops: &'a [SearchOp<'h, M>]) -> Self {
        assert!(
            ops.len() < (u32::MAX as usize - 2) / 2,
            "too many operations"
        );
        let nodes = 1 + 2 * ops.len();
        let mut events: Vec<(Timestamp, u8, u32)> = Vec::with_capacity(nodes);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, 0, i as u32));
            if let Some(ret) = op.return_time {
                assert!(op.call <= ret, "an operation returns after its call");
                events.push((ret, 1, i as u32));
            }
        }
        events.sort_unstable();
        let calls: Vec<(Timestamp, Option<Timestamp>)> =
            ops.iter().map(|op| (op.call, op.return_time)).collect();
        let (mut next, mut prev) = (vec![NIL; nodes], vec![NIL; nodes]);
        let mut last = HEAD;
        for &(_, kind, op) in &events {
            let node = if kind == 0 {
                call_node(op)
            } else {
                return_node(op)
            };
            next[last as usize] = node;
            prev[node as usize] = last;
            last = node;
        }
        Self {
            ops,
            next,
            prev,
            linearized: Encoding::new(&calls),
            key: Vec::new(),
            memo: Memo::new(),
            states: States::new(model),
            stack: Vec::with_capacity(ops.len()),
            state: 0,
            required: ops.iter().filter(|op| op.return_time.is_some()).count(),
            best: Vec::new(),
            blocked: None,
            memory_reported: 0,
            twins: find_twins(ops),
            urgency: urgency(ops),
            candidates: Vec::new(),
        }
    }

    fn run(mut self, budget: &Budget<'_>) -> SearchResult {
        let mut resume = if self.arrive() {
            Resume::Fresh
        } else {
            Resume::Failed
        };
        let mut iterations: u64 = 0;
        let verdict = loop {
            if self.required == 0 {
                break SearchVerdict::Linearizable;
            }
            iterations += 1;
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
        for &op in &candidates[start..] {
            if self.try_linearize(op, false) {
                resume = if self.arrive() {
                    Resume::Fresh
                } else {
                    Resume::Failed
                };
                break;
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

    /// The operations that may be linearized next (calls before the first return in the
    /// list), most urgent first: by return time, open operations last. Returns the operation
    /// of the first return, which must be linearized before anything called after it.
    fn collect_candidates(&self, out: &mut Vec<u32>) -> Option<u32> {
        out.clear();
        let mut node = self.next[HEAD as usize];
        while node != NIL && node % 2 == 1 {
            out.push((node - 1) / 2);
            node = self.next[node as usize];
        }
        out.sort_unstable_by_key(|&op| self.urgency[op as usize]);
        (node != NIL).then(|| (node - 2) / 2)
    }

    /// Called on reaching a new configuration: takes every legal read-only candidate
    /// greedily. Returns false if this configuration is known to fail (a greedy step led to an
    /// explored configuration).
    fn arrive(&mut self) -> bool {
        let mut node = self.next[HEAD as usize];
        while node != NIL && node % 2 == 1 {
            let op = (node - 1) / 2;
            let search_op = &self.ops[op as usize];
            if search_op.read_only {
                let legal = self
                    .states
                    .step(self.state, op, search_op.input, search_op.output);
                if let Some(next) = legal {
                    assert_eq!(next, self.state, "a read-only operation changed the state");
                    if !self.try_linearize(op, true) {
                        return false;
                    }
                    node = self.next[HEAD as usize];
                    continue;
                }
            }
            node = self.next[node as usize];
        }
        true
    }

    /// Tries to linearize `op` now; true if it was (and the list changed).
    fn try_linearize(&mut self, op: u32, greedy: bool) -> bool {
        let search_op = &self.ops[op as usize];
        let Some(next) = self
            .states
            .step(self.state, op, search_op.input, search_op.output)
        else {
            return false;
        };
        if search_op.return_time.is_none() {
            if next == self.state {
                return false;
            }
            if self.twins[op as usize].is_some_and(|twin| !self.linearized.contains(twin as usize))
            {
                return false;
            }
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
        });
        self.state = next;
        self.lift(op);
        if search_op.return_time.is_some() {
            self.required -= 1;
        }
        true
    }

    /// Undoes linearizations until one whose alternatives are still worth trying; returns
    /// that operation, or `None` with an empty stack if nothing is left.
    fn backtrack(&mut self) -> Option<u32> {
        while let Some(frame) = self.stack.pop() {
            self.state = frame.state_before;
            self.linearized.remove(frame.op as usize);
            self.unlift(frame.op);
            if self.ops[frame.op as usize].return_time.is_some() {
                self.required += 1;
            }
            if !frame.greedy {
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

    fn unlink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        if n != NIL {
            self.prev[n as usize] = node;
        }
    }

    /// Removes an operation's entries from the list (dancing links: the removed nodes keep
    /// their neighbours, so `unlift` in reverse order restores them).
    fn lift(&mut self, op: u32) {
        self.unlink(call_node(op));
        if self.ops[op as usize].return_time.is_some() {
            self.unlink(return_node(op));
        }
    }

    fn unlift(&mut self, op: u32) {
        if self.ops[op as usize].return_time.is_some() {
            self.relink(return_node(op));
        }
        self.relink(call_node(op));
    }

    fn memory_bytes(&self) -> usize {
        self.memo.size_bytes() + self.states.size_bytes() + self.next.len() * 8
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
