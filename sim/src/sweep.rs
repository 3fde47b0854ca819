//! Many seeds on a pool of worker threads, with progress (a bar on a terminal, a line every
//! few seconds in a log) and a summary.

use crate::bugs::ServiceBugs;
use crate::overrides::Overrides;
use crate::runner::{run_seed_isolated, Outcome, RunOptions, SeedReport};
use crate::workload::Workload;
use raft_core::Bugs;
use std::io::IsTerminal;
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
    pub service_bugs: ServiceBugs,
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
            service_bugs: ServiceBugs::default(),
            shard: None,
            overrides: Overrides::default(),
        }
    }

    /// The seeds this sweep runs, in order, walked lazily.
    pub fn seed_set(&self) -> SeedSet {
        SeedSet::new(self.seeds.clone(), self.shard)
    }

    /// The command that reproduces `seed` of this sweep, overrides included.
    pub fn reproduce(&self, seed: u64) -> String {
        [
            reproduce_command(seed, self.bug_name.as_deref(), self.standard, self.workload),
            self.overrides.to_flags(),
        ]
        .join(" ")
        .trim_end()
        .to_string()
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

/// The result of a sweep. Its JSON form is what CI keeps, so it says what was measured: the
/// workload, the bug, the seeds and the binary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// The service under test.
    pub workload: &'static str,
    /// The planted bug, if any.
    pub bug: Option<String>,
    /// The seed range, `A..B` (half-open).
    pub seed_range: String,
    /// `i/n` when only the seeds `s % n == i` ran.
    pub shard: Option<String>,
    /// The configuration overrides, as flags (empty: none).
    pub overrides: String,
    /// Whether every seed used the standard (benchmark) configuration.
    pub standard: bool,
    /// The `sim` version that ran the sweep, and the commit it was built from when the
    /// build knew it (`GITHUB_SHA` at build time).
    pub version: Version,
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
    /// Seeds that reached each rare shape ([`crate::coverage`]).
    pub shapes: Vec<crate::coverage::ShapeSeeds>,
}

/// Which build produced a result.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct Version {
    /// The crate version.
    pub version: &'static str,
    /// The commit, if the build environment named it.
    pub commit: Option<&'static str>,
}

impl Version {
    /// This binary's version.
    pub fn current() -> Version {
        Version {
            version: env!("CARGO_PKG_VERSION"),
            commit: option_env!("GITHUB_SHA"),
        }
    }
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
    let mut cmd = match workload {
        Workload::Custom(custom) => format!("{} --seed {seed}", custom.command),
        _ => format!(
            "cargo run --release --bin sim -- --seed {seed} --workload {}",
            workload.name()
        ),
    };
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

/// How often a sweep whose stderr is not a terminal prints a progress line.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Where a sweep's caller prints while the sweep runs: above the progress bar on a terminal,
/// plainly otherwise.
pub struct Printer {
    bar: Option<indicatif::ProgressBar>,
}

impl Printer {
    /// Prints one line to stdout without tearing the progress bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }
}

/// The counters a sweep keeps as reports arrive (not the reports: memory stays flat however
/// many seeds run).
#[derive(Default)]
struct Tally {
    seeds: u64,
    passed: u64,
    failed: Vec<FailedSeed>,
    sim: Duration,
    messages: u64,
    shapes: Vec<crate::coverage::ShapeSeeds>,
}

impl Tally {
    fn add(&mut self, options: &SweepOptions, report: &SeedReport) {
        self.seeds += 1;
        self.sim += report.sim_time;
        self.messages += report.stats.sent;
        crate::coverage::tally(&mut self.shapes, report.seed, &report.stats.shapes);
        if report.passed() {
            self.passed += 1;
        } else {
            self.failed.push(FailedSeed {
                seed: report.seed,
                failure: describe(&report.outcome),
                reproduce: options.reproduce(report.seed),
            });
        }
    }
}

/// Runs every seed of `options`; `on_report` sees each report as it arrives (in completion
/// order, which depends on thread timing; the summary is sorted by seed).
pub fn sweep(options: &SweepOptions, mut on_report: impl FnMut(&SeedReport)) -> Summary {
    sweep_with(options, |report, _| on_report(report))
}

/// [`sweep`], with a [`Printer`] for lines printed while the sweep runs.
///
/// The seeds are walked lazily ([`SeedSet`]): a range of any size, or a shard with any
/// modulus, starts at once. With `progress`, a terminal gets a progress bar and anything else
/// (a CI log) a progress line on stderr every [`PROGRESS_EVERY`].
pub fn sweep_with(
    options: &SweepOptions,
    mut on_report: impl FnMut(&SeedReport, &Printer),
) -> Summary {
    assert!(options.jobs >= 1, "at least one job");
    let start = Instant::now();
    let seeds = options.seed_set();
    let next = AtomicU64::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<SeedReport>();
    let total = seeds.len();
    let terminal = std::io::stderr().is_terminal();
    let printer = Printer {
        bar: (options.progress && terminal).then(|| progress_bar(total)),
    };
    let mut tally = Tally::default();
    std::thread::scope(|scope| {
        for _ in 0..options.jobs {
            let tx = tx.clone();
            let (next, stop, seeds) = (&next, &stop, &seeds);
            scope.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let position = next.fetch_add(1, Ordering::Relaxed);
                let Some(seed) = seeds.nth(position) else {
                    return;
                };
                let run = RunOptions {
                    seed,
                    bugs: options.bugs,
                    standard: options.standard,
                    keep_events: false,
                    workload: options.workload,
                    service_bugs: options.service_bugs,
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
        let mut last_line = Instant::now();
        loop {
            let report = match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(report) => Some(report),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            if let Some(report) = report {
                if let Some(bar) = &printer.bar {
                    bar.inc(1);
                }
                tally.add(options, &report);
                on_report(&report, &printer);
            }
            if options.progress && !terminal && last_line.elapsed() >= PROGRESS_EVERY {
                last_line = Instant::now();
                eprintln!("{}", progress_line(&tally, total, start.elapsed()));
            }
        }
    });
    if let Some(bar) = printer.bar {
        bar.finish_and_clear();
    }
    summarize(options, tally, start.elapsed())
}

/// One progress line for a log: seeds done, failures, rate and the time left.
fn progress_line(tally: &Tally, total: u64, elapsed: Duration) -> String {
    let rate = tally.seeds as f64 / elapsed.as_secs_f64().max(1e-9);
    let left = total.saturating_sub(tally.seeds);
    let eta = if rate > 0.0 {
        format!("{:.0} s left", left as f64 / rate)
    } else {
        "time left unknown".to_string()
    };
    format!(
        "progress: {}/{total} seeds, {} failed, {rate:.1} seeds/s, {eta} (wall clock; not part \
         of the replayable output)",
        tally.seeds,
        tally.failed.len()
    )
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    let style =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta}")
            .expect("valid progress template");
    bar.set_style(style);
    bar
}

fn summarize(options: &SweepOptions, mut tally: Tally, wall: Duration) -> Summary {
    tally.failed.sort_by_key(|f| f.seed);
    let wall_secs = wall.as_secs_f64().max(1e-9);
    Summary {
        workload: options.workload.name(),
        bug: options.bug_name.clone(),
        seed_range: format!("{}..{}", options.seeds.start, options.seeds.end),
        shard: options.shard.map(|(i, n)| format!("{i}/{n}")),
        overrides: options.overrides.to_flags(),
        standard: options.standard,
        version: Version::current(),
        seeds: tally.seeds,
        passed: tally.passed,
        failed: tally.failed,
        wall_secs,
        sim_secs: tally.sim.as_secs_f64(),
        seeds_per_sec: tally.seeds as f64 / wall_secs,
        sim_per_wall: tally.sim.as_secs_f64() / wall_secs,
        messages: tally.messages,
        shapes: tally.shapes,
    }
}

/// The seeds of a half-open range, optionally only those `s` with `s % n == i`, walked
/// lazily: the k-th seed is computed, never a list, so `0..u64::MAX` with `--shard 0/1000000`
/// costs nothing up front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedSet {
    /// The first seed, or `None` for an empty set.
    first: Option<u64>,
    /// Distance between consecutive seeds (the shard modulus, 1 without a shard).
    step: u64,
    /// Number of seeds.
    len: u64,
}

impl SeedSet {
    /// The seeds of `range`, restricted to `shard = Some((i, n))` if given (`i < n`).
    pub fn new(range: Range<u64>, shard: Option<(u64, u64)>) -> SeedSet {
        let (i, n) = shard.unwrap_or((0, 1));
        assert!(n >= 1 && i < n, "shard {i}/{n}: need 0 <= i < n");
        // The first s >= start with s % n == i (in u128: start + n may overflow u64).
        let start = u128::from(range.start);
        let (i, n128) = (u128::from(i), u128::from(n));
        let first = start + (i + n128 - start % n128) % n128;
        if first >= u128::from(range.end) {
            return SeedSet {
                first: None,
                step: n,
                len: 0,
            };
        }
        let len = (u128::from(range.end) - 1 - first) / n128 + 1;
        SeedSet {
            first: Some(first as u64),
            step: n,
            len: len as u64,
        }
    }

    /// Number of seeds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether there are no seeds.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `k`-th seed (from 0), if there are that many.
    pub fn nth(&self, k: u64) -> Option<u64> {
        let first = self.first?;
        (k < self.len).then(|| first + k * self.step)
    }

    /// The seeds in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).filter_map(|k| self.nth(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_sets_are_lazy_and_exact() {
        let all = SeedSet::new(0..u64::MAX, None);
        assert_eq!(all.len(), u64::MAX);
        assert_eq!(all.nth(0), Some(0));
        assert_eq!(all.nth(u64::MAX - 1), Some(u64::MAX - 1));
        assert_eq!(all.nth(u64::MAX), None);
        let sharded = SeedSet::new(0..u64::MAX, Some((0, 1_000_000)));
        assert_eq!(
            sharded.iter().take(3).collect::<Vec<_>>(),
            [0, 1_000_000, 2_000_000]
        );
        assert_eq!(sharded.len(), (u64::MAX - 1) / 1_000_000 + 1);
        let last = SeedSet::new(u64::MAX - 5..u64::MAX, Some((3, 4)));
        let expect: Vec<u64> = (u64::MAX - 5..u64::MAX).filter(|s| s % 4 == 3).collect();
        assert_eq!(last.iter().collect::<Vec<_>>(), expect);
        for (range, shard) in [
            (10..20, (1, 3)),
            (7..8, (0, 2)),
            (5..6, (1, 2)),
            (0..100, (99, 100)),
        ] {
            let want: Vec<u64> = range.clone().filter(|s| s % shard.1 == shard.0).collect();
            let set = SeedSet::new(range, Some(shard));
            assert_eq!(set.iter().collect::<Vec<_>>(), want);
            assert_eq!(set.len(), want.len() as u64);
        }
    }
}
