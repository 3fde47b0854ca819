//! Shrinking a failing seed: fewer fault classes, a shorter fault phase, fewer clerks and
//! operations, while the same checker still fails.
//!
//! The search is greedy and deterministic (every candidate is one replay of the seed with
//! [`Overrides`]): switch each fault class off in turn, then halve the fault phase, then try
//! fewer clerks, then halve the number of requests. A candidate is kept when it fails with the
//! same [`signature`] (the same checker, or the same kind of failure). The result is a
//! replayable case: the seed plus the overrides as flags.

use crate::cluster::Failure;
use crate::overrides::Overrides;
use crate::runner::{run_seed_isolated, Outcome, RunOptions, SeedReport};

/// Shortest fault phase the minimizer tries, in milliseconds.
const FAULT_PHASE_MIN_MS: u64 = 250;

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

struct Search {
    signature: String,
    best: RunOptions,
    report: SeedReport,
    runs: u64,
    budget: u64,
}

impl Search {
    /// Replays `candidate`; keeps it if it fails the same way. Returns whether it was kept.
    fn try_keep(&mut self, candidate: RunOptions) -> bool {
        if self.runs >= self.budget || candidate == self.best {
            return false;
        }
        self.runs += 1;
        let report = run_seed_isolated(&candidate);
        if signature(&report.outcome).as_deref() == Some(self.signature.as_str()) {
            tracing::info!(flags = %candidate.overrides.to_flags(), "still fails");
            self.best = candidate;
            self.report = report;
            true
        } else {
            false
        }
    }

    fn with(&self, change: impl FnOnce(&mut Overrides)) -> RunOptions {
        let mut candidate = self.best.clone();
        change(&mut candidate.overrides);
        candidate
    }
}

/// Shrinks the failing run `options` within `budget` replays. `None` if it does not fail.
pub fn minimize(options: &RunOptions, budget: u64) -> Option<Minimized> {
    let report = run_seed_isolated(options);
    let signature = signature(&report.outcome)?;
    let mut search = Search {
        signature,
        best: options.clone(),
        report,
        runs: 1,
        budget,
    };
    let classes: [fn(&mut Overrides); 6] = [
        |o| o.no_disk_faults = true,
        |o| o.no_clock_faults = true,
        |o| o.no_pauses = true,
        |o| o.no_message_faults = true,
        |o| o.no_partitions = true,
        |o| o.no_crashes = true,
    ];
    for class in classes {
        let candidate = search.with(class);
        search.try_keep(candidate);
    }
    shrink_fault_phase(&mut search);
    if search.best.kv_workload().is_some() {
        shrink_clients(&mut search);
        shrink_ops(&mut search);
    }
    Some(Minimized {
        options: search.best,
        report: search.report,
        signature: search.signature,
        runs: search.runs,
    })
}

fn shrink_fault_phase(search: &mut Search) {
    // A safety violation names its time: faults after it cannot matter.
    if let Outcome::Failed(Failure::Safety(v)) = &search.report.outcome {
        let current = search.best.config().fault_phase.as_millis() as u64;
        let after = (v.at.as_millis() as u64 + 100).max(FAULT_PHASE_MIN_MS);
        if after < current {
            let candidate = search.with(|o| o.fault_phase_ms = Some(after));
            search.try_keep(candidate);
        }
    }
    loop {
        let current = search.best.config().fault_phase.as_millis() as u64;
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
