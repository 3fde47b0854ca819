//! Many seeds on a pool of worker threads, with a progress bar and a summary.

use crate::kv::{SimKvBugs, Workload};
use crate::overrides::Overrides;
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
    /// Which service the cluster runs.
    pub workload: Workload,
    /// Planted kv bugs.
    pub kv_bugs: SimKvBugs,
    /// Run only the seeds `s` with `s % n == i`, for `Some((i, n))`.
    pub shard: Option<(u64, u64)>,
    /// Changes to every seed's derived configuration.
    pub overrides: Overrides,
}

impl SweepOptions {
    /// Plain options: no bug, no shard, no progress bar, stop at nothing.
    pub fn new(seeds: Range<u64>, jobs: usize, workload: Workload) -> SweepOptions {
        SweepOptions {
            seeds,
            jobs,
            bugs: Bugs::default(),
            bug_name: None,
            standard: false,
            stop_at_first_failure: false,
            progress: false,
            workload,
            kv_bugs: SimKvBugs::default(),
            shard: None,
            overrides: Overrides::default(),
        }
    }

    /// The seeds this sweep runs, in order.
    pub fn seed_list(&self) -> Vec<u64> {
        self.seeds
            .clone()
            .filter(|s| self.shard.is_none_or(|(i, n)| s % n == i))
            .collect()
    }
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
pub fn reproduce_command(
    seed: u64,
    bug: Option<&str>,
    standard: bool,
    workload: Workload,
) -> String {
    let mut cmd = format!(
        "cargo run --release --bin sim -- --seed {seed} --workload {}",
        workload.name()
    );
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

/// Drops what a summary does not need from a passing report (its event records and kv
/// history), so a long sweep's memory does not grow with every seed it has run.
fn slim(mut report: SeedReport) -> SeedReport {
    if report.passed() {
        report.records = Vec::new();
        report.history = None;
    }
    report
}

/// Runs every seed of `options`; `on_report` sees each report as it arrives (in completion
/// order, which depends on thread timing; the summary is sorted by seed).
pub fn sweep(options: &SweepOptions, mut on_report: impl FnMut(&SeedReport)) -> Summary {
    assert!(options.jobs >= 1, "at least one job");
    let start = Instant::now();
    let seeds = options.seed_list();
    let next = AtomicU64::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<SeedReport>();
    let total = seeds.len() as u64;
    let bar = options.progress.then(|| progress_bar(total));
    let mut reports: Vec<SeedReport> = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..options.jobs {
            let tx = tx.clone();
            let (next, stop, seeds) = (&next, &stop, &seeds);
            scope.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let position = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(position as usize) else {
                    return;
                };
                let run = RunOptions {
                    seed,
                    bugs: options.bugs,
                    standard: options.standard,
                    keep_events: false,
                    workload: options.workload,
                    kv_bugs: options.kv_bugs,
                    overrides: options.overrides.clone(),
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
            reports.push(slim(report));
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
            reproduce: [
                reproduce_command(
                    r.seed,
                    options.bug_name.as_deref(),
                    options.standard,
                    options.workload,
                ),
                options.overrides.to_flags(),
            ]
            .join(" ")
            .trim_end()
            .to_string(),
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
