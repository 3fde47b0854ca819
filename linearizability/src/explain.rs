//! A short account of why a partition is not linearizable.
//!
//! The search's longest legal prefix is a debugging aid but can be long. This module shrinks
//! the partition to a small set of *conflicting* operations and describes it.
//!
//! Simply deleting operations would give useless answers (a lone read of a value is already
//! "illegal" once the write it saw is deleted). Instead, an operation outside the set is
//! *relaxed*: it keeps its call time but loses its return and output, so it may take effect at
//! any time after its call, or never. Relaxing only allows more linearizations, so if the
//! history is still illegal, the operations that kept their constraints conflict on their own,
//! whatever the others did. The set is shrunk until relaxing any one more of its members makes
//! the history linearizable (as far as the trial budget can tell).
//!
//! Every trial check leaves out the operations called after the last kept operation returned:
//! relaxed, they could only take effect after every kept operation, where they change nothing
//! for the kept ones. So a set near the start of a long history is cheap to try. The search
//! for a set starts there: the kept operations are first those that returned by the time the
//! blocking operation did (where the verdict's search got stuck), then the shortest suffix of
//! those (in call order) that still conflicts, then delta debugging.
//!
//! The whole explanation runs within a time budget. When the budget runs out, the smallest
//! set shown to conflict so far is reported as "not fully minimized"; if none small enough was
//! found, the account falls back to the operations around where the search got stuck (the end
//! of its longest legal order, the blocking operation and the operations concurrent with it),
//! without a claim that they conflict on their own.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::checker::{check_with, CheckOptions, PartitionReport, Verdict};
use crate::history::{Operation, Outcome, Timestamp};
use crate::model::Model;
use crate::numbering::Numbering;

/// Configurations each trial check may explore while shrinking.
pub const TRIAL_CONFIGURATIONS_MAX: u64 = 100_000;
/// Trial checks at most (each is bounded by [`TRIAL_CONFIGURATIONS_MAX`] and the budget).
pub const TRIALS_MAX: usize = 2_000;
/// A trial check gets at most this fraction of the remaining budget ...
const TRIAL_SHARE: u32 = 8;
/// ... but at least this long (within the budget).
const TRIAL_MIN: Duration = Duration::from_millis(1);
/// The budget of [`explain`].
pub const BUDGET_DEFAULT: Duration = Duration::from_secs(1);
/// A conflicting set larger than this is not listed; the fallback account is given instead.
pub const LISTED_MAX: usize = 40;
/// How many operations of the longest legal order, and how many operations concurrent with
/// the blocking one, the fallback account lists.
const CONTEXT_OPS: usize = 8;

/// A small set of operations that cannot be linearized together, or, when none was found
/// within the budget, the operations around where the search got stuck.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The partition they belong to.
    pub partition: String,
    /// The operations (indices into the history), in increasing order.
    pub ops: Vec<usize>,
    /// Whether `ops` were shown to conflict on their own (with every other operation relaxed).
    /// False for the fallback account.
    pub conflicting: bool,
    /// Whether every single operation was shown to be necessary (otherwise the budget ran out
    /// first and the set may not be minimal).
    pub minimal: bool,
    /// A human-readable account.
    pub text: String,
}

/// The states after each operation of `order`, replayed through `model` with the observed
/// outputs; stops early (shorter result) at the first illegal step.
pub fn replay<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    order: &[usize],
) -> Vec<M::State> {
    let mut state = model.init();
    let mut states = Vec::with_capacity(order.len());
    for &i in order {
        match model.step(&state, &history[i].input, history[i].output()) {
            Some(next) => state = next,
            None => break,
        }
        states.push(state.clone());
    }
    states
}

/// A partition with some operations relaxed: the operations, and for each its index in the
/// history.
type Relaxed<M> = (
    Vec<Operation<<M as Model>::Input, <M as Model>::Output>>,
    Vec<usize>,
);

/// Trial checks of one partition, sharing a deadline.
struct Trials<'a, M: Model> {
    model: &'a M,
    history: &'a [Operation<M::Input, M::Output>],
    /// The partition's operations.
    all: &'a [usize],
    /// How the account numbers them.
    numbering: Numbering<'a>,
    deadline: Instant,
    count: usize,
    /// How long the last trial took.
    last: Duration,
}

impl<M> Trials<'_, M>
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    /// Out of trials, or of time: a trial costs set-up work the deadline cannot interrupt
    /// (copying and indexing the partition), so none starts with less time left than the
    /// last one took.
    fn out_of_time(&self) -> bool {
        self.count >= TRIALS_MAX || Instant::now() + self.last >= self.deadline
    }

    /// The partition with every operation outside `kept` (sorted) relaxed, leaving out those
    /// called after the last kept operation returned (see the module docs). Returns the
    /// operations and, for each, its index in the history.
    fn relaxed(&self, kept: &[usize]) -> Relaxed<M> {
        let horizon = kept
            .iter()
            .map(|&i| self.history[i].return_time)
            .try_fold(Timestamp(0), |acc, t| t.map(|t| acc.max(t)));
        let mut ops = Vec::new();
        let mut index = Vec::new();
        for &i in self.all {
            let mut op = self.history[i].clone();
            if horizon.is_some_and(|h| op.call > h) {
                continue;
            }
            if kept.binary_search(&i).is_err() {
                op.return_time = None;
                op.outcome = Outcome::Unknown;
            }
            ops.push(op);
            index.push(i);
        }
        (ops, index)
    }

    fn check(&mut self, kept: &[usize]) -> Option<(PartitionReport, Relaxed<M>)> {
        let now = Instant::now();
        if now + self.last >= self.deadline {
            return None;
        }
        self.count += 1;
        let (ops, index) = self.relaxed(kept);
        // One trial may use an eighth of what is left, so that a few hard trials (many
        // relaxed writes) do not use up the budget of the easy ones.
        let slice = ((self.deadline - now) / TRIAL_SHARE).max(TRIAL_MIN);
        let options = CheckOptions {
            threads: 1,
            timeout: Some(slice.min(self.deadline - now)),
            configurations_max: Some(TRIAL_CONFIGURATIONS_MAX),
            stop_at_first_illegal: true,
            ..CheckOptions::default()
        };
        let report = check_with(self.model, &ops, &options);
        self.last = now.elapsed();
        let illegal = report
            .partitions
            .into_iter()
            .find(|p| p.verdict == Verdict::Illegal)?;
        Some((illegal, (ops, index)))
    }

    /// True if keeping only `kept` is shown illegal within the budget.
    fn is_illegal(&mut self, kept: &[usize]) -> bool {
        !kept.is_empty() && self.check(kept).is_some()
    }
}

/// Shrinks an illegal partition to a small conflicting set and describes it, within
/// [`BUDGET_DEFAULT`]. Returns `None` unless the report's verdict is `Illegal`.
pub fn explain<M>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    report: &PartitionReport,
) -> Option<Explanation>
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    explain_within(model, history, report, BUDGET_DEFAULT)
}

/// Like [`explain`], but spends at most about `budget` (each trial check stops at the
/// deadline; describing the result afterwards costs one replay of the longest legal order).
pub fn explain_within<M>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    report: &PartitionReport,
    budget: Duration,
) -> Option<Explanation>
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    explain_numbered(model, history, report, budget, Numbering::Index)
}

/// Like [`explain_within`], for operations that the account names by `numbering` (a partition
/// loaded on its own names its operations by their place in the whole history). The report's
/// operation numbers are indices into `history`; the explanation's are numbers.
pub fn explain_numbered<M>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    report: &PartitionReport,
    budget: Duration,
    numbering: Numbering<'_>,
) -> Option<Explanation>
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    if report.verdict != Verdict::Illegal {
        return None;
    }
    let mut trials = Trials {
        model,
        history,
        all: &report.ops,
        numbering,
        deadline: Instant::now() + budget,
        count: 0,
        last: Duration::ZERO,
    };
    let (set, minimal) = shrink(&mut trials, report);
    assert!(!set.is_empty(), "an empty history is linearizable");
    if set.len() > LISTED_MAX {
        let (ops, text) = around_the_block(model, history, report, budget, numbering);
        return Some(Explanation {
            partition: report.name.clone(),
            ops: ops.into_iter().map(|i| numbering.of(i)).collect(),
            conflicting: false,
            minimal: false,
            text,
        });
    }
    let text = describe(&mut trials, &report.name, &set, minimal);
    Some(Explanation {
        partition: report.name.clone(),
        ops: set.into_iter().map(|i| numbering.of(i)).collect(),
        conflicting: true,
        minimal,
        text,
    })
}

/// A conflicting set: the operations that returned by the time the blocking one did (if they
/// conflict), then the shortest conflicting suffix of those, then delta debugging: remove
/// chunks of halving size while the rest stays illegal, until a pass of single removals
/// changes nothing (1-minimal) or the budget runs out. Returns the set and whether it is
/// 1-minimal.
fn shrink<M>(trials: &mut Trials<'_, M>, report: &PartitionReport) -> (Vec<usize>, bool)
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    let history = trials.history;
    // Keeping every operation is the partition itself, known to be illegal.
    let mut set = report.ops.clone();
    let horizon = report.blocked.and_then(|b| history[b].return_time);
    if let Some(horizon) = horizon {
        // The operations that returned by the blocking one's return, then twice as many
        // returns, and so on, while the budget lasts.
        let mut returns: Vec<Timestamp> =
            set.iter().filter_map(|&i| history[i].return_time).collect();
        returns.sort_unstable();
        let mut count = returns.partition_point(|&t| t <= horizon).max(1);
        while count < returns.len() && !trials.out_of_time() {
            let cut = returns[count - 1];
            let early: Vec<usize> = set
                .iter()
                .copied()
                .filter(|&i| history[i].return_time.is_some_and(|t| t <= cut))
                .collect();
            if trials.is_illegal(&early) {
                set = early;
                break;
            }
            count *= 2;
        }
    }
    // The shortest conflicting suffix in call order, by doubling its length.
    let mut by_call = set.clone();
    by_call.sort_by_key(|&i| (history[i].call, i));
    let mut len = 2;
    while len < by_call.len() && !trials.out_of_time() {
        let mut suffix = by_call[by_call.len() - len..].to_vec();
        suffix.sort_unstable();
        if trials.is_illegal(&suffix) {
            set = suffix;
            break;
        }
        len *= 2;
    }
    let mut chunk = set.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        let mut removed_any = false;
        while start < set.len() {
            if trials.out_of_time() {
                return (set, false);
            }
            let end = (start + chunk).min(set.len());
            let candidate: Vec<usize> = set[..start].iter().chain(&set[end..]).copied().collect();
            if trials.is_illegal(&candidate) {
                set = candidate;
                removed_any = true;
            } else {
                start = end;
            }
        }
        if chunk == 1 && !removed_any {
            return (set, true);
        }
        chunk = (chunk / 2).max(1);
    }
}

fn describe<M>(trials: &mut Trials<'_, M>, partition: &str, set: &[usize], minimal: bool) -> String
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    let (model, history, numbering) = (trials.model, trials.history, trials.numbering);
    let mut text = String::new();
    let qualifier = if minimal {
        ""
    } else {
        " (not fully minimized)"
    };
    let _ = writeln!(
        text,
        "{partition}: these {} operations conflict{qualifier}, even if every other operation took \
         effect at any time after its call, or never:",
        set.len()
    );
    for &i in set {
        let _ = writeln!(
            text,
            "  {}",
            describe_numbered(model, &history[i], numbering.of(i))
        );
    }
    // Re-run the search on the subset for its longest legal order and blocking operation
    // (skipped if the budget is spent).
    if let Some((p, (sub, index))) = trials.check(set) {
        let order: Vec<usize> = p.linearization.iter().map(|&j| index[j]).collect();
        let states = replay(model, &sub, &p.linearization);
        let state = states.last().cloned().unwrap_or_else(|| model.init());
        let names: Vec<String> = order
            .iter()
            .map(|&i| format!("#{}", numbering.of(i)))
            .collect();
        let _ = write!(
            text,
            "The longest legal order is [{}], leaving state {}",
            names.join(", "),
            model.describe_state(&state)
        );
        if let Some(b) = p.blocked.map(|j| index[j]) {
            let op = &history[b];
            let _ = write!(
                text,
                "; then #{} {} must take effect before it returns, but is not allowed there",
                numbering.of(b),
                model.describe_operation(&op.input, op.output())
            );
        }
        text.push_str(".\n");
    }
    text
}

/// The fallback account: where the verdict's search got stuck. Returns the operations named
/// and the text.
fn around_the_block<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    report: &PartitionReport,
    budget: Duration,
    numbering: Numbering<'_>,
) -> (Vec<usize>, String) {
    let describe_op = |model: &M, history: &[Operation<M::Input, M::Output>], i: usize| {
        describe_numbered(model, &history[i], numbering.of(i))
    };
    let partition = &report.name;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{partition}: no small set of conflicting operations was found within the explanation \
         budget ({:.0} ms); this is where the search got stuck.",
        budget.as_secs_f64() * 1e3
    );
    let order = &report.linearization;
    let states = replay(model, history, order);
    let state = states.last().cloned().unwrap_or_else(|| model.init());
    let tail = &order[order.len().saturating_sub(CONTEXT_OPS)..];
    let _ = writeln!(
        text,
        "The longest legal order found has {} operations and leaves state {}; it ends with:",
        order.len(),
        model.describe_state(&state)
    );
    let mut named: Vec<usize> = tail.to_vec();
    for &i in tail {
        let _ = writeln!(text, "  {}", describe_op(model, history, i));
    }
    if let Some(b) = report.blocked {
        let op = &history[b];
        let _ = writeln!(
            text,
            "Then {} must take effect before it returns, but is not allowed there.",
            describe_op(model, history, b)
        );
        named.push(b);
        let in_order: std::collections::BTreeSet<usize> = order.iter().copied().collect();
        // Closest calls first; pending reads constrain nothing and are left out.
        let mut concurrent: Vec<usize> = report
            .ops
            .iter()
            .copied()
            .filter(|&i| i != b && !in_order.contains(&i))
            .filter(|&i| {
                let other = &history[i];
                let pending_read =
                    other.return_time.is_none() && model.is_read_only(&other.input, other.output());
                !pending_read
                    && other.call <= op.return_time.unwrap_or(op.call)
                    && other.return_time.is_none_or(|r| r >= op.call)
            })
            .collect();
        concurrent.sort_by_key(|&i| (history[i].call.0.abs_diff(op.call.0), i));
        concurrent.truncate(CONTEXT_OPS);
        concurrent.sort_unstable();
        if !concurrent.is_empty() {
            let _ = writeln!(
                text,
                "Operations concurrent with it, not in that order (the {} called closest to it):",
                concurrent.len()
            );
            for &i in &concurrent {
                let _ = writeln!(text, "  {}", describe_op(model, history, i));
            }
        }
        named.extend(concurrent);
    }
    named.sort_unstable();
    named.dedup();
    (named, text)
}

/// One line describing operation `i`: number, client, interval and what it did.
pub fn describe_op<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    i: usize,
) -> String {
    describe_numbered(model, &history[i], i)
}

/// One line describing an operation, which the account names `number`.
pub fn describe_numbered<M: Model>(
    model: &M,
    op: &Operation<M::Input, M::Output>,
    number: usize,
) -> String {
    let end = op
        .return_time
        .map_or_else(|| "never returned".to_string(), |t| t.to_string());
    format!(
        "#{number} {} [{}, {end}] {}",
        op.client,
        op.call,
        model.describe_operation(&op.input, op.output())
    )
}
