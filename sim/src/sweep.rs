//! Many seeds on a pool of worker threads, with a progress bar and a summary.

use crate::runner::{run_seed_isolated, Outcome, RunOptions, SeedReport};
use raft_core::Bugs;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What to sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Seeds to run (half-open).
    pub seeds: Range<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// Planted bugs.
    pub bugs: Bugs,
    /// The bug's name, for reproduce commands.
    pub bug_name: Option<String>,
    /// Use the standard (benchmark) configuration.
    pub standard: bool,
    /// Stop handing out seeds after the first failure.
    pub stop_at_first_failure: bool,
    /// Show a progress bar.
    pub progress: bool,
}

/// A failing seed, reduced to what the summary needs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FailedSeed {
    /// The seed.
    pub seed: u64,
    /// What failed.
    pub failure: String,
    /// The command that reproduces it.
    pub reproduce: String,
}

/// The result of a sweep.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that passed.
    pub passed: u64,
    /// Seeds that failed, sorted by seed.
    pub failed: Vec<FailedSeed>,
    /// Wall-clock seconds.
    pub wall_secs: f64,
    /// Simulated seconds, summed over seeds.
    pub sim_secs: f64,
    /// Seeds per wall-clock second.
    pub seeds_per_sec: f64,
    /// Simulated seconds per wall-clock second (all workers together).
    pub sim_per_wall: f64,
    /// Messages sent, summed over seeds.
    pub messages: u64,
}

impl Summary {
    /// Whether every seed passed.
    pub fn all_passed(&self) -> bool {
        self.failed.is_empty()
    }
}

/// The exact command that reproduces `seed`.
pub fn reproduce_command(seed: u64, bug: Option<&str>, standard: bool) -> String {
    let mut cmd = format!("cargo run --release --bin sim -- --seed {seed}");
    if let Some(bug) = bug {
        cmd.push_str(&format!(" --bug {bug}"));
    }
    if standard {
        cmd.push_str(" --standard");
    }
    cmd
}

/// One line describing how a seed failed.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Passed => "passed".to_string(),
        Outcome::Failed(failure) => failure.to_string(),
        Outcome::Panicked(message) => format!("panic: {message}"),
    }
}

/// Runs every seed of `options`; `on_report` sees each report as it arrives (in completion
/// order, which depends on thread timing; the summary is sorted by seed).
pub fn sweep(options: &SweepOptions, mut on_report: impl FnMut(&SeedReport)) -> Summary {
    assert!(options.jobs >= 1, "at least one job");
    let start = Instant::now();
    let next = AtomicU64::new(options.seeds.start);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<SeedReport>();
    let total = options.seeds.end.saturating_sub(options.seeds.start);
    let bar = options.progress.then(|| progress_bar(total));
    let mut reports: Vec<SeedReport> = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..options.jobs {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= options.seeds.end {
                    return;
                }
                let run = RunOptions {
                    seed,
                    bugs: options.bugs,
                    standard: options.standard,
                    keep_events: false,
                };
                let report = run_seed_isolated(&run);
                if !report.passed() && options.stop_at_first_failure {
                    stop.store(true, Ordering::Relaxed);
                }
                if tx.send(report).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        for report in rx {
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            on_report(&report);
            reports.push(report);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    summarize(options, reports, start.elapsed())
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let style =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta}")
            .expect("valid progress template");
    bar.set_style(style);
    bar
}

fn summarize(options: &SweepOptions, mut reports: Vec<SeedReport>, wall: Duration) -> Summary {
    reports.sort_by_key(|r| r.seed);
    let sim: Duration = reports.iter().map(|r| r.sim_time).sum();
    let wall_secs = wall.as_secs_f64().max(1e-9);
    let failed = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| FailedSeed {
            seed: r.seed,
            failure: describe(&r.outcome),
            reproduce: reproduce_command(r.seed, options.bug_name.as_deref(), options.standard),
        })
        .collect::<Vec<_>>();
    Summary {
        seeds: reports.len() as u64,
        passed: reports.iter().filter(|r| r.passed()).count() as u64,
        failed,
        wall_secs,
        sim_secs: sim.as_secs_f64(),
        seeds_per_sec: reports.len() as f64 / wall_secs,
        sim_per_wall: sim.as_secs_f64() / wall_secs,
        messages: reports.iter().map(|r| r.stats.sent).sum(),
    }
}
