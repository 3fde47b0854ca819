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

use std::fmt::Write as _;

use crate::checker::{check_with, CheckOptions, PartitionReport, Verdict};
use crate::history::{Operation, Outcome};
use crate::model::Model;

/// Configurations each trial check may explore while shrinking.
pub const TRIAL_CONFIGURATIONS_MAX: u64 = 100_000;
/// Trial checks at most (each is bounded by [`TRIAL_CONFIGURATIONS_MAX`]).
pub const TRIALS_MAX: usize = 2_000;

/// A small set of operations that cannot be linearized together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The partition they belong to.
    pub partition: String,
    /// The operations (indices into the history), in increasing order.
    pub ops: Vec<usize>,
    /// Whether every single operation was shown to be necessary (otherwise the trial budget
    /// ran out first and the set may not be minimal).
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

/// The partition `all` with every operation outside `kept` relaxed (see the module docs).
fn relaxed<I: Clone, O: Clone>(
    history: &[Operation<I, O>],
    all: &[usize],
    kept: &[usize],
) -> Vec<Operation<I, O>> {
    all.iter()
        .map(|&i| {
            let mut op = history[i].clone();
            if kept.binary_search(&i).is_err() {
                op.return_time = None;
                op.outcome = Outcome::Unknown;
            }
            op
        })
        .collect()
}

fn is_illegal<M>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    all: &[usize],
    subset: &[usize],
) -> bool
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    let ops = relaxed(history, all, subset);
    let options = CheckOptions {
        threads: 1,
        configurations_max: Some(TRIAL_CONFIGURATIONS_MAX),
        stop_at_first_illegal: true,
        ..CheckOptions::default()
    };
    let report = check_with(model, &ops, &options);
    report
        .partitions
        .iter()
        .any(|p| p.verdict == Verdict::Illegal)
}

/// Shrinks an illegal partition to a small conflicting set and describes it. Returns `None`
/// unless the report's verdict is `Illegal`.
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
    if report.verdict != Verdict::Illegal {
        return None;
    }
    let (set, minimal) = shrink(model, history, &report.ops);
    assert!(!set.is_empty(), "an empty history is linearizable");
    let text = describe(model, history, &report.ops, &report.name, &set, minimal);
    Some(Explanation {
        partition: report.name.clone(),
        ops: set,
        minimal,
        text,
    })
}

/// Delta debugging: remove chunks of halving size while the rest stays illegal, until a pass
/// of single removals changes nothing (1-minimal) or the trial budget runs out.
fn shrink<M>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    all: &[usize],
) -> (Vec<usize>, bool)
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    let mut set = all.to_vec();
    let mut trials = 0;
    let mut chunk = set.len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        let mut removed_any = false;
        while start < set.len() {
            if trials == TRIALS_MAX {
                return (set, false);
            }
            trials += 1;
            let end = (start + chunk).min(set.len());
            let candidate: Vec<usize> = set[..start].iter().chain(&set[end..]).copied().collect();
            if !candidate.is_empty() && is_illegal(model, history, all, &candidate) {
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

fn describe<M>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    all: &[usize],
    partition: &str,
    set: &[usize],
    minimal: bool,
) -> String
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
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
        let _ = writeln!(text, "  {}", describe_op(model, history, i));
    }
    // Re-run the search on the subset for its longest legal order and blocking operation.
    let sub = relaxed(history, all, set);
    let options = CheckOptions {
        threads: 1,
        configurations_max: Some(TRIAL_CONFIGURATIONS_MAX),
        ..CheckOptions::default()
    };
    let report = check_with(model, &sub, &options);
    if let Some(p) = report
        .partitions
        .iter()
        .find(|p| p.verdict == Verdict::Illegal)
    {
        let order: Vec<usize> = p.linearization.iter().map(|&j| all[j]).collect();
        let states = replay(model, &sub, &p.linearization);
        let state = states.last().cloned().unwrap_or_else(|| model.init());
        let names: Vec<String> = order.iter().map(|i| format!("#{i}")).collect();
        let _ = write!(
            text,
            "The longest legal order is [{}], leaving state {}",
            names.join(", "),
            model.describe_state(&state)
        );
        if let Some(b) = p.blocked.map(|j| all[j]) {
            let op = &history[b];
            let _ = write!(
                text,
                "; then #{b} {} must take effect before it returns, but is not allowed there",
                model.describe_operation(&op.input, op.output())
            );
        }
        text.push_str(".\n");
    }
    text
}

/// One line describing operation `i`: number, client, interval and what it did.
pub fn describe_op<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    i: usize,
) -> String {
    let op = &history[i];
    let end = op
        .return_time
        .map_or_else(|| "never returned".to_string(), |t| t.to_string());
    format!(
        "#{i} {} [{}, {end}] {}",
        op.client,
        op.call,
        model.describe_operation(&op.input, op.output())
    )
}
