//! Checking a whole history: split it into partitions, search each, combine the verdicts.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::history::Operation;
use crate::model::{Decision, Model, Partition};
use crate::search::{search, Budget, SearchOp, SearchResult, SearchVerdict};

pub use crate::search::StopReason;

/// Default memory limit for all searches of one check together (1 GiB).
pub const MEMORY_LIMIT_BYTES_DEFAULT: usize = 1 << 30;

/// The quick search's configuration budget: this many per operation, plus a constant.
const QUICK_CONFIGURATIONS_PER_OP: u64 = 1;
const QUICK_CONFIGURATIONS: u64 = 1024;

/// Below this many operations in total, starting threads costs more than it saves.
const PARALLEL_OPS_MIN: usize = 1000;

/// How to run a check.
///
/// With `timeout: None` and `threads: 1` the check is fully deterministic (no clock, no
/// threads), which is what a deterministic simulator needs; bound it with
/// `configurations_max` instead of a timeout.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Give up (verdict Unknown) after this long. Default: none.
    pub timeout: Option<Duration>,
    /// Worker threads for partitions; 1 runs everything on the calling thread. Default: the
    /// machine's available parallelism.
    pub threads: usize,
    /// Give up when the searches together hold about this many bytes. Default 1 GiB.
    pub memory_limit_bytes: usize,
    /// Give up on a partition after exploring this many configurations. Default: none.
    pub configurations_max: Option<u64>,
    /// Stop every other partition as soon as one is illegal (faster when only the overall
    /// verdict matters). Default: false, every partition gets a verdict.
    pub stop_at_first_illegal: bool,
    /// Record each partition's wall-clock time in its report. Default: false, so that a check
    /// run inside a simulator reads no clock unless it has a timeout.
    pub measure_time: bool,
    /// Search each partition briefly without the set-up that only hard partitions repay
    /// before the thorough search (see [`crate::search::search`]). Default: true; false runs
    /// only the thorough search (the tests check both against brute force).
    pub quick_first: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            timeout: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_limit_bytes: MEMORY_LIMIT_BYTES_DEFAULT,
            configurations_max: None,
            stop_at_first_illegal: false,
            measure_time: false,
            quick_first: true,
        }
    }
}

/// The verdict on one partition or a whole history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Linearizable.
    Ok,
    /// Not linearizable.
    Illegal,
    /// No verdict: the search stopped early.
    Unknown(StopReason),
}

/// The outcome for one partition. Operation numbers are indices into the checked history.
#[derive(Clone, Debug)]
pub struct PartitionReport {
    /// The partition's name, for example `key "x"`.
    pub name: String,
    /// Its operations (indices into the history), in increasing order.
    pub ops: Vec<usize>,
    /// The verdict.
    pub verdict: Verdict,
    /// For `Ok`, a linearization of every operation that must take effect; otherwise the
    /// longest legal sequence found (a linearization of a prefix).
    pub linearization: Vec<usize>,
    /// For `Illegal` (and `Unknown`): the operation that could not be linearized after
    /// `linearization`.
    pub blocked: Option<usize>,
    /// Configurations the search explored.
    pub configurations: u64,
    /// Time spent on this partition, if [`CheckOptions::measure_time`] was set.
    pub elapsed: Option<Duration>,
}

/// The outcome for every partition of a history.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// One report per partition, in the model's partition order.
    pub partitions: Vec<PartitionReport>,
}

/// A witness of non-linearizability, taken from the first illegal partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    /// The illegal partition.
    pub partition: String,
    /// The longest legal sequence found (indices into the history).
    pub longest_prefix: Vec<usize>,
    /// The operation that could not be linearized next.
    pub blocked: Option<usize>,
}

/// The overall verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// Every partition is linearizable.
    Ok,
    /// Some partition is not linearizable (this takes precedence over Unknown).
    Illegal(Box<Counterexample>),
    /// No partition is illegal, but some could not be decided.
    Unknown,
}

impl CheckReport {
    /// The overall verdict: Illegal if any partition is, else Unknown if any is, else Ok.
    pub fn result(&self) -> CheckResult {
        if let Some(p) = self
            .partitions
            .iter()
            .find(|p| p.verdict == Verdict::Illegal)
        {
            return CheckResult::Illegal(Box::new(Counterexample {
                partition: p.name.clone(),
                longest_prefix: p.linearization.clone(),
                blocked: p.blocked,
            }));
        }
        if self
            .partitions
            .iter()
            .any(|p| matches!(p.verdict, Verdict::Unknown(_)))
        {
            return CheckResult::Unknown;
        }
        CheckResult::Ok
    }
}

/// Checks `history` against `model`, giving up after `timeout` (if any). Stops at the first
/// illegal partition; use [`check_with`] for a verdict on every partition.
///
/// # Panics
/// See [`check_with`].
pub fn check<M>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    timeout: Option<Duration>,
) -> CheckResult
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    let options = CheckOptions {
        timeout,
        stop_at_first_illegal: true,
        ..CheckOptions::default()
    };
    check_with(model, history, &options).result()
}

/// Checks `history` against `model` and reports on every partition.
///
/// # Panics
/// If an operation returns before its call, or the model's partitions are not increasing
/// indices into the history. Histories from [`crate::jsonl`] and [`crate::Recorder`] never
/// do; both reject such input with an error.
pub fn check_with<M>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    options: &CheckOptions,
) -> CheckReport
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    let partitions = model.partition(history);
    for p in &partitions {
        assert!(
            p.ops.windows(2).all(|w| w[0] < w[1]),
            "partition ops must be increasing"
        );
        assert!(
            p.ops.last().is_none_or(|&last| last < history.len()),
            "partition op out of range"
        );
    }
    let limits = Limits::new(options);
    let sizes: Vec<usize> = partitions.iter().map(|p| p.ops.len()).collect();
    let reports = schedule(&sizes, options.threads, |k| {
        limits.check(model, history, &partitions[k])
    });
    CheckReport {
        partitions: reports,
    }
}

/// The limits the partitions of one check share: the deadline, the memory the searches hold
/// together, and the flag that stops them after an illegal partition. [`check_with`] checks
/// every partition under one; a caller that loads partitions one at a time (see
/// [`crate::spill`]) checks each under the same one, so the verdicts agree.
pub struct Limits {
    options: CheckOptions,
    deadline: Option<Instant>,
    memory_used: AtomicUsize,
    cancel: AtomicBool,
}

impl Limits {
    /// Limits for one check with these options; the timeout starts now.
    pub fn new(options: &CheckOptions) -> Self {
        Self {
            options: options.clone(),
            deadline: options.timeout.map(|t| Instant::now() + t),
            memory_used: AtomicUsize::new(0),
            cancel: AtomicBool::new(false),
        }
    }

    /// Checks one partition of `history` (its operation numbers index `history`).
    ///
    /// # Panics
    /// If an operation returns before its call.
    pub fn check<M: Model>(
        &self,
        model: &M,
        history: &[Operation<M::Input, M::Output>],
        partition: &Partition,
    ) -> PartitionReport {
        let budget = Budget {
            deadline: self.deadline,
            configurations_max: self.options.configurations_max,
            memory_used: &self.memory_used,
            memory_limit_bytes: self.options.memory_limit_bytes,
            cancel: &self.cancel,
        };
        let started = self.options.measure_time.then(Instant::now);
        let mut report =
            check_partition(model, history, partition, &budget, self.options.quick_first);
        report.elapsed = started.map(|s| s.elapsed());
        if self.options.stop_at_first_illegal && report.verdict == Verdict::Illegal {
            self.cancel.store(true, Ordering::Relaxed);
        }
        report
    }
}

/// Runs `run` on every partition (`sizes[k]` is partition `k`'s number of operations) on up
/// to `threads` workers, largest first, and returns the results in partition order. Small
/// checks run on the calling thread: below [`PARALLEL_OPS_MIN`] operations in total, starting
/// threads costs more than it saves.
pub fn schedule<T, F>(sizes: &[usize], threads: usize, run: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    let total_ops: usize = sizes.iter().sum();
    let threads = if total_ops < PARALLEL_OPS_MIN {
        1
    } else {
        threads.clamp(1, sizes.len().max(1))
    };
    if threads == 1 {
        return (0..sizes.len()).map(run).collect();
    }
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(sizes[k]));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..sizes.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let slot = next.fetch_add(1, Ordering::Relaxed);
                let Some(&index) = order.get(slot) else { break };
                let result = run(index);
                results.lock().expect("a worker panicked")[index] = Some(result);
            });
        }
    });
    let results = results.into_inner().expect("a worker panicked");
    results
        .into_iter()
        .map(|r| r.expect("every partition ran"))
        .collect()
}

fn check_partition<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    partition: &Partition,
    budget: &Budget<'_>,
    quick_first: bool,
) -> PartitionReport {
    if budget.cancel.load(Ordering::Relaxed) {
        return PartitionReport {
            name: partition.name.clone(),
            ops: partition.ops.clone(),
            verdict: Verdict::Unknown(StopReason::Cancelled),
            linearization: Vec::new(),
            blocked: None,
            configurations: 0,
            elapsed: None,
        };
    }
    // An operation that never changes the state and whose output is unknown is legal at every
    // point: it constrains nothing and is left out of the search.
    let kept: Vec<usize> = partition
        .ops
        .iter()
        .copied()
        .filter(|&i| {
            !(history[i].outcome.is_unknown() && model.is_read_only(&history[i].input, None))
        })
        .collect();
    let refs: Vec<&Operation<M::Input, M::Output>> = kept.iter().map(|&i| &history[i]).collect();
    let dispensable = model.dispensable(&refs);
    assert_eq!(dispensable.len(), kept.len(), "one flag per operation");
    let kept: Vec<usize> = kept
        .iter()
        .zip(&dispensable)
        .filter(|&(&i, &drop)| !(drop && history[i].return_time.is_none()))
        .map(|(&i, _)| i)
        .collect();
    let ops: Vec<SearchOp<'_, M>> = kept
        .iter()
        .map(|&i| {
            let op = &history[i];
            SearchOp {
                input: &op.input,
                output: op.output(),
                call: op.call,
                return_time: op.return_time,
                read_only: model.is_read_only(&op.input, op.output()),
            }
        })
        .collect();
    let refs: Vec<&Operation<M::Input, M::Output>> = kept.iter().map(|&i| &history[i]).collect();
    let specialized = model.specialize(&refs);
    // A quick search first, without the set-up only hard partitions repay; most partitions
    // are decided there.
    let quick = Budget {
        configurations_max: Some(
            budget
                .configurations_max
                .unwrap_or(u64::MAX)
                .min(QUICK_CONFIGURATIONS_PER_OP * ops.len() as u64 + QUICK_CONFIGURATIONS),
        ),
        ..*budget
    };
    let first =
        quick_first.then(|| search(specialized.as_ref().unwrap_or(model), &ops, &quick, false));
    // Undecided: the model's own decision if it has one, else the thorough search.
    // Illegal: the thorough search too, for its account.
    let quick_limited = budget.configurations_max != quick.configurations_max;
    let result = match first {
        Some(first)
            if !(first.verdict == SearchVerdict::Illegal
                || (quick_limited
                    && first.verdict
                        == SearchVerdict::Unknown(StopReason::ConfigurationLimit))) =>
        {
            first
        }
        Some(first) if first.verdict != SearchVerdict::Illegal => {
            match decided(model, specialized.as_ref(), &refs, &ops, budget, first) {
                Ok(result) => result,
                Err(first) => thorough(
                    model,
                    specialized.as_ref(),
                    &refs,
                    &ops,
                    budget,
                    Some(first),
                ),
            }
        }
        first => thorough(model, specialized.as_ref(), &refs, &ops, budget, first),
    };
    let verdict = match result.verdict {
        SearchVerdict::Linearizable => Verdict::Ok,
        SearchVerdict::Illegal => Verdict::Illegal,
        SearchVerdict::Unknown(reason) => Verdict::Unknown(reason),
    };
    PartitionReport {
        name: partition.name.clone(),
        ops: partition.ops.clone(),
        verdict,
        linearization: result.order.iter().map(|&local| kept[local]).collect(),
        blocked: result.blocked.map(|local| kept[local]),
        configurations: result.configurations,
        elapsed: None,
    }
}

/// The thorough search, after the quick one (`first`) if it ran. Illegal from the quick
/// search: the thorough search too, for its account (dead-value pruning stops the longest
/// prefix where the violation becomes certain, and names a stale read as the culprit); the
/// quick verdict stands if it runs out.
fn thorough<M: Model>(
    model: &M,
    specialized: Option<&M>,
    refs: &[&Operation<M::Input, M::Output>],
    ops: &[SearchOp<'_, M>],
    budget: &Budget<'_>,
    first: Option<SearchResult>,
) -> SearchResult {
    let refined = model.refine(refs);
    let model = refined.as_ref().or(specialized).unwrap_or(model);
    let mut thorough = search(model, ops, budget, true);
    match first {
        Some(first) if first.verdict == SearchVerdict::Illegal => {
            assert_ne!(
                thorough.verdict,
                SearchVerdict::Linearizable,
                "the quick and the thorough search disagree"
            );
            if thorough.verdict == SearchVerdict::Illegal {
                thorough.configurations += first.configurations;
                thorough
            } else {
                first
            }
        }
        Some(first) => {
            thorough.configurations += first.configurations;
            thorough
        }
        None => thorough,
    }
}

/// The model's own decision ([`Model::decide`]) on a partition the quick search (`first`)
/// did not decide, or `Err(first)` if it has none. A linearization is the result; for
/// Illegal, the thorough search still runs for its account, and the decision stands if it
/// runs out.
fn decided<M: Model>(
    model: &M,
    specialized: Option<&M>,
    refs: &[&Operation<M::Input, M::Output>],
    ops: &[SearchOp<'_, M>],
    budget: &Budget<'_>,
    first: SearchResult,
) -> Result<SearchResult, SearchResult> {
    let configurations = first.configurations;
    match model.decide(refs) {
        None => Err(first),
        Some(Decision::Linearizable(order)) => Ok(SearchResult {
            verdict: SearchVerdict::Linearizable,
            order,
            blocked: None,
            configurations,
            states: first.states,
        }),
        Some(Decision::Illegal(culprit)) => {
            let mut result = thorough(model, specialized, refs, ops, budget, Some(first));
            assert_ne!(
                result.verdict,
                SearchVerdict::Linearizable,
                "the model's decision and the search disagree"
            );
            if result.verdict != SearchVerdict::Illegal {
                result.verdict = SearchVerdict::Illegal;
                result.blocked = Some(culprit);
            }
            Ok(result)
        }
    }
}
