//! Shrinking a failing seed: a shorter fault phase, fewer fault classes, shorter partitions,
//! fewer clerks and operations, while the same checker still fails.
//!
//! The search is greedy and deterministic (every candidate is one replay of the seed with
//! [`Overrides`]); a candidate is kept when it fails with the same [`signature`] (the same
//! checker, or the same kind of failure). Two searches share the replay budget (see
//! [`minimize`]); each runs rounds of:
//!
//! 1. cut the fault phase to just after the failure's simulated time (a safety violation's
//!    time, or the operation a non-linearizable history got stuck at). Nothing before that
//!    time depends on the phase's length, so the replay runs the same schedule up to the
//!    failure, and every later replay is cheaper;
//! 2. switch each fault class off in turn (disk, clocks, pauses, message faults, partitions,
//!    crashes, membership and leadership nemeses, lost replies), cutting again after each
//!    one kept;
//! 3. halve the fault phase (or cut it by a quarter) down to 250 ms;
//! 4. halve the longest partition down to 50 ms;
//! 5. fewer clerks, then fewer requests.
//!
//! A candidate is kept only if its failure does not show up much later than the best case's
//! (at most a quarter later), so a step never trades a fault class for a longer run.
//! Rounds repeat while one of them shrinks something (a smaller case often fails earlier,
//! which allows a deeper cut), within the replay budget. The result is a replayable case: the
//! seed plus the overrides as flags.

use crate::cluster::Failure;
use crate::overrides::Overrides;
use crate::runner::{run_seed_isolated, Outcome, RunOptions, SeedReport};
use linearizability::CheckResult;
use std::time::Duration;

/// Shortest fault phase the minimizer tries, in milliseconds.
const FAULT_PHASE_MIN_MS: u64 = 250;

/// Shortest partition length the minimizer tries, in milliseconds.
const PARTITION_MIN_MS: u64 = 50;

/// The fault phase is cut this long after the failure's time, so the faults that led to it
/// (a partition, a crash just before) are kept.
const CUT_MARGIN: Duration = Duration::from_millis(100);

/// Rounds of the whole search at most.
const ROUNDS_MAX: usize = 3;

/// What kind of failure an outcome is, or `None` if it passed. Two failures with the same
/// signature were found by the same checker.
pub fn signature(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Passed => None,
        Outcome::Failed(Failure::Safety(v)) => Some(format!("safety: {}", v.checker)),
        Outcome::Failed(Failure::Liveness(_)) => Some("liveness".to_string()),
        Outcome::Failed(Failure::Node(_)) => Some("node failure".to_string()),
        Outcome::Failed(Failure::Linearizability(_)) => Some("linearizability".to_string()),
        Outcome::Panicked(_) => Some("panic".to_string()),
    }
}

/// Simulated times to cut the fault phase after, shortest first: when a safety checker
/// fired, or for a non-linearizable history, when the operation the check got stuck at ended
/// and then when the last operation of the stuck key's longest linearizable prefix did.
/// Empty when the failure has no time (liveness, a node failure, a panic).
pub fn failure_times(report: &SeedReport) -> Vec<Duration> {
    match &report.outcome {
        Outcome::Failed(Failure::Safety(v)) => vec![v.at],
        Outcome::Failed(Failure::Linearizability(_)) => {
            let Some(history) = &report.history else {
                return Vec::new();
            };
            let (_, check) = crate::kv::check_history(history);
            let CheckResult::Illegal(counterexample) = check.result() else {
                return Vec::new();
            };
            let end = |i: usize| {
                let op = &history[i];
                Duration::from_micros(op.return_time.unwrap_or(op.call).0)
            };
            let blocked = counterexample.blocked.map(end);
            let latest = counterexample
                .longest_prefix
                .iter()
                .copied()
                .chain(counterexample.blocked)
                .map(end)
                .max();
            let mut times: Vec<Duration> = blocked.into_iter().chain(latest).collect();
            times.sort();
            times.dedup();
            times
        }
        _ => Vec::new(),
    }
}

/// How much of the fault phase a failing run needs: up to just after its failure's time, or
/// all of it when the failure has no time.
fn effective_ms(options: &RunOptions, report: &SeedReport) -> u64 {
    let phase = options.config().fault_phase;
    let needed = failure_times(report)
        .first()
        .map_or(phase, |&at| phase.min(at + CUT_MARGIN));
    needed.as_millis() as u64
}

/// The smallest failing case found.
#[derive(Clone, Debug)]
pub struct Minimized {
    /// The run that still fails, overrides included.
    pub options: RunOptions,
    /// Its report.
    pub report: SeedReport,
    /// The failure kind kept throughout.
    pub signature: String,
    /// Replays tried.
    pub runs: u64,
}

#[derive(Clone)]
struct Search {
    signature: String,
    best: RunOptions,
    report: SeedReport,
    runs: u64,
    budget: u64,
    /// Refuse candidates whose failure shows up much later than the best case's.
    keep_early: bool,
    /// Candidates that did not fail the same way: replays are deterministic, so they never
    /// will (shared by both searches, so neither replays them twice).
    passed: Vec<RunOptions>,
}

impl Search {
    /// Replays `candidate`; keeps it if it fails the same way. Returns whether it was kept.
    fn try_keep(&mut self, candidate: RunOptions) -> bool {
        if self.runs >= self.budget || self.same_run(&candidate) || self.passed.contains(&candidate)
        {
            return false;
        }
        self.runs += 1;
        let report = run_seed_isolated(&candidate);
        let same = signature(&report.outcome).as_deref() == Some(self.signature.as_str());
        if !same {
            self.passed.push(candidate.clone());
        }
        // A change that makes the failure show up much later is no simplification: the
        // shorter fault phase is what makes a case quick to replay and read.
        let longest = self.effective_ms() * 5 / 4;
        if same && (!self.keep_early || effective_ms(&candidate, &report) <= longest) {
            tracing::info!(flags = %candidate.overrides.to_flags(), "still fails");
            self.best = candidate;
            self.report = report;
            true
        } else {
            false
        }
    }

    /// Whether `candidate` runs exactly what the best case runs (an override of something
    /// the seed does not have, such as disk faults on a seed without them).
    fn same_run(&self, candidate: &RunOptions) -> bool {
        *candidate == self.best
            || (candidate.config() == self.best.config()
                && candidate.kv_workload() == self.best.kv_workload())
    }

    fn with(&self, change: impl FnOnce(&mut Overrides)) -> RunOptions {
        let mut candidate = self.best.clone();
        change(&mut candidate.overrides);
        candidate
    }

    fn effective_ms(&self) -> u64 {
        effective_ms(&self.best, &self.report)
    }

    fn fault_phase_ms(&self) -> u64 {
        self.best.config().fault_phase.as_millis() as u64
    }

    /// How big the case is, for choosing between two searches: the events it runs, then the
    /// fault phase it needs.
    fn size(&self) -> (u64, u64) {
        (self.report.events, self.effective_ms())
    }

    /// Greedy rounds until one shrinks nothing or the budget is spent.
    fn rounds(&mut self) {
        for _ in 0..ROUNDS_MAX {
            let before = self.best.clone();
            cut_to_failure(self);
            drop_fault_classes(self);
            shrink_fault_phase(self);
            shrink_partitions(self);
            if self.best.kv_workload().is_some() {
                shrink_clients(self);
                shrink_ops(self);
            }
            if self.best == before || self.runs >= self.budget {
                return;
            }
        }
    }
}

/// Shrinks the failing run `options` within `budget` replays. `None` if it does not fail.
///
/// Two greedy searches share the budget and the smaller result wins. The first cuts the
/// fault phase to the failure at once and keeps every later step at least as early. The
/// second first switches fault classes off over the whole fault phase, where the failure may
/// come back anywhere (often earlier, on a schedule with fewer faults), then shrinks the same
/// way. Neither order dominates: which one finds the smaller case depends on the seed.
pub fn minimize(options: &RunOptions, budget: u64) -> Option<Minimized> {
    let report = run_seed_isolated(options);
    let signature = signature(&report.outcome)?;
    let start = Search {
        signature,
        best: options.clone(),
        report,
        runs: 1,
        budget: budget.div_ceil(2).max(1),
        keep_early: true,
        passed: Vec::new(),
    };
    let mut early = start.clone();
    early.rounds();
    let mut wide = Search {
        runs: early.runs,
        budget,
        keep_early: false,
        passed: std::mem::take(&mut early.passed),
        ..start
    };
    drop_fault_classes(&mut wide);
    wide.keep_early = true;
    wide.rounds();
    let runs = wide.runs;
    tracing::info!(
        early = ?early.size(),
        early_flags = %early.best.overrides.to_flags(),
        wide = ?wide.size(),
        wide_flags = %wide.best.overrides.to_flags(),
        "minimizer searches done (events, fault phase ms)"
    );
    let best = if wide.size() < early.size() {
        wide
    } else {
        early
    };
    Some(Minimized {
        options: best.best,
        report: best.report,
        signature: best.signature,
        runs,
    })
}

/// Faults after the failure cannot have caused it: end the fault phase just after it.
fn cut_to_failure(search: &mut Search) {
    for at in failure_times(&search.report) {
        let current = search.fault_phase_ms();
        let after = ((at + CUT_MARGIN).as_millis() as u64).max(FAULT_PHASE_MIN_MS);
        if after >= current {
            return;
        }
        let candidate = search.with(|o| o.fault_phase_ms = Some(after));
        if search.try_keep(candidate) {
            return;
        }
    }
}

fn drop_fault_classes(search: &mut Search) {
    let classes: [fn(&mut Overrides); 8] = [
        |o| o.no_disk_faults = true,
        |o| o.no_clock_faults = true,
        |o| o.no_pauses = true,
        |o| o.no_message_faults = true,
        |o| o.no_partitions = true,
        |o| o.no_crashes = true,
        |o| o.no_nemeses = true,
        |o| o.no_reply_loss = true,
    ];
    for class in classes {
        let candidate = search.with(class);
        if search.try_keep(candidate) {
            cut_to_failure(search);
        }
    }
}

fn shrink_fault_phase(search: &mut Search) {
    loop {
        let current = search.fault_phase_ms();
        let shorter = (current / 2).max(FAULT_PHASE_MIN_MS);
        if shorter >= current {
            return;
        }
        let halved = search.with(|o| o.fault_phase_ms = Some(shorter));
        if !search.try_keep(halved) {
            let three_quarters = current * 3 / 4;
            let candidate = search.with(|o| o.fault_phase_ms = Some(three_quarters));
            if three_quarters < FAULT_PHASE_MIN_MS || !search.try_keep(candidate) {
                return;
            }
        }
    }
}

/// Shorter partitions: the failure needs a partition only as long as its cause takes.
fn shrink_partitions(search: &mut Search) {
    loop {
        let config = search.best.config();
        if config.net.partition_every.is_none() {
            return;
        }
        let current = config.net.partition_max.as_millis() as u64;
        let shorter = current / 2;
        if shorter < PARTITION_MIN_MS {
            return;
        }
        let candidate = search.with(|o| o.partition_max_ms = Some(shorter));
        if !search.try_keep(candidate) {
            return;
        }
    }
}

fn shrink_clients(search: &mut Search) {
    let current = search.best.kv_workload().map_or(1, |kv| kv.clients);
    for clients in 1..current {
        let candidate = search.with(|o| o.clients = Some(clients));
        if search.try_keep(candidate) {
            return;
        }
    }
}

fn shrink_ops(search: &mut Search) {
    loop {
        let started = search.report.history.as_ref().map_or(0, |h| h.len()) as u64;
        let current = search
            .best
            .overrides
            .ops_max
            .unwrap_or(started)
            .min(started);
        if current <= 1 {
            return;
        }
        let halved = search.with(|o| o.ops_max = Some(current / 2));
        if !search.try_keep(halved) {
            let candidate = search.with(|o| o.ops_max = Some(current * 3 / 4));
            if current * 3 / 4 >= current || !search.try_keep(candidate) {
                return;
            }
        }
    }
}
