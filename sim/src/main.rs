//! `sim` command-line entry point: run seeds, canaries and the benchmark.

mod cli_flags;
mod commands;

use clap::{Parser, Subcommand};
use cli_flags::OverrideFlags;
use commands::{add_seed, bench, canaries, write_json};
use raft_core::Bugs;
use sim::event_log::first_difference;
use sim::kv::{write_artifacts, SimKvBugs, Workload};
use sim::sweep::{describe, reproduce_command, sweep, Summary, SweepOptions};
use sim::{run_seed_isolated, RunOptions, SeedReport};
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;

/// Deterministic simulation testing of raft-core.
#[derive(Parser, Debug)]
#[command(name = "sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Run one seed and print its configuration.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run a half-open range of seeds, e.g. `1..1000`.
    #[arg(long, value_parser = parse_range)]
    seeds: Option<Range<u64>>,
    /// Worker threads for `--seeds`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    jobs: u64,
    /// Plant a bug (see `sim canaries`): a raft_core::Bugs name, or a kv bug
    /// (sessions_not_in_snapshot, local_reads).
    #[arg(long, value_parser = parse_bug)]
    bug: Option<String>,
    /// The service under test: `kv` (clerks, checked histories) or `raft` (raw Raft client).
    #[arg(long, default_value = "kv", value_parser = parse_workload)]
    workload: Workload,
    /// Where a failing kv seed's history (JSONL) and visualization (HTML) go.
    #[arg(long, default_value = "sim-failures")]
    out: PathBuf,
    /// With `--seeds`: run only seeds s with s % n == i, given as `i/n`.
    #[arg(long, value_parser = parse_shard, requires = "seeds")]
    shard: Option<(u64, u64)>,
    /// Shrink the failing `--seed` (fewer faults, a shorter fault phase, fewer clerks and
    /// requests) while the same checker still fails; print the minimal case as a command.
    #[arg(long, requires = "seed")]
    minimize: bool,
    /// Replays the minimizer may use.
    #[arg(long, default_value_t = 80, requires = "minimize")]
    minimize_runs: u64,
    #[command(flatten)]
    overrides: OverrideFlags,
    /// Use the benchmark's standard configuration (5 nodes, 20 s of faults) for every seed.
    #[arg(long)]
    standard: bool,
    /// Print the full tracing log of the seed (one span per node, simulated timestamps).
    #[arg(long, requires = "seed")]
    trace: bool,
    /// Run the seed twice and report the first point where the runs differ.
    #[arg(long, requires = "seed")]
    check_determinism: bool,
    /// Write a JSON summary to this path.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// For each planted bug: the fraction of seeds that fail and the first failing seed.
    Canaries {
        /// Seeds to try per bug.
        #[arg(long, default_value = "1..1001", value_parser = parse_range)]
        seeds: Range<u64>,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        jobs: u64,
        /// Write the table as JSON to this path.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Writes a regression seed file into the seed corpus (`seeds/`).
    AddSeed {
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// What the seed once found (free text).
        #[arg(long)]
        found: String,
        /// The service under test.
        #[arg(long, default_value = "kv", value_parser = parse_workload)]
        workload: Workload,
        /// A planted bug the seed runs with.
        #[arg(long, value_parser = parse_bug)]
        bug: Option<String>,
        /// The corpus directory.
        #[arg(long, default_value = "seeds")]
        dir: PathBuf,
    },
    /// Seeds per second of the standard seed against a bare madsim baseline.
    Bench {
        /// Standard seeds to run.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// Baseline seeds to run.
        #[arg(long, default_value_t = 200)]
        baseline_seeds: u64,
    },
}

fn parse_range(text: &str) -> Result<Range<u64>, String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("`{text}` is not a range like 1..1000"))?;
    let start: u64 = a
        .trim()
        .parse()
        .map_err(|e| format!("bad range start `{a}`: {e}"))?;
    let end: u64 = b
        .trim()
        .parse()
        .map_err(|e| format!("bad range end `{b}`: {e}"))?;
    if end <= start {
        return Err(format!(
            "range {start}..{end} is empty (the end is exclusive)"
        ));
    }
    Ok(start..end)
}

fn parse_bug(name: &str) -> Result<String, String> {
    if Bugs::from_name(name).is_some() || SimKvBugs::from_name(name).is_some() {
        return Ok(name.to_string());
    }
    Err(format!(
        "unknown bug `{name}`; known bugs: {}, {}, {}",
        Bugs::NAMES.join(", "),
        SimKvBugs::NAMES.join(", "),
        workloads::shardkv::ShardBugs::NAMES.join(", ")
    ))
}

fn parse_workload(name: &str) -> Result<Workload, String> {
    Workload::from_name(name)
        .ok_or_else(|| format!("unknown workload `{name}`; use kv, raft or shardkv"))
}

fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not a shard like 0/4"))?;
    let i: u64 = i
        .trim()
        .parse()
        .map_err(|e| format!("bad shard index `{i}`: {e}"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|e| format!("bad shard count `{n}`: {e}"))?;
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= i < n"));
    }
    Ok((i, n))
}

/// Combinations clap's attributes do not express.
fn validate(cli: &Cli) -> Result<(), String> {
    if cli.shard.is_some() && cli.seeds.is_none() {
        return Err("--shard splits --seeds A..B; give --seeds".to_string());
    }
    if cli.minimize && cli.seed.is_none() {
        return Err("--minimize needs --seed N".to_string());
    }
    let kv_bugs = cli.bug.as_deref().and_then(SimKvBugs::from_name);
    if kv_bugs.is_some_and(|b| b.is_shard()) && cli.workload != Workload::ShardKv {
        return Err(format!(
            "--bug {} plants a sharded kv bug; it needs --workload shardkv",
            cli.bug.as_deref().unwrap_or_default()
        ));
    }
    if kv_bugs.is_some_and(|b| !b.is_shard()) && cli.workload != Workload::Kv {
        return Err(format!(
            "--bug {} plants a kv bug; it needs --workload kv",
            cli.bug.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

fn bugs_of(name: Option<&str>) -> Bugs {
    name.and_then(Bugs::from_name).unwrap_or_default()
}

fn kv_bugs_of(name: Option<&str>) -> SimKvBugs {
    name.and_then(SimKvBugs::from_name).unwrap_or_default()
}

/// Writes a failing kv seed's history and visualization and prints their paths.
fn report_artifacts(out: &std::path::Path, report: &SeedReport) {
    let Some(history) = &report.history else {
        return;
    };
    match write_artifacts(out, report.seed, history) {
        Ok((jsonl, html)) => {
            println!("  history: {}", jsonl.display());
            println!("  visualization: {}", html.display());
        }
        Err(error) => eprintln!("  could not write the history: {error}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = validate(&cli) {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let result = match &cli.command {
        Some(Command::Canaries { seeds, jobs, json }) => canaries(seeds.clone(), *jobs, json),
        Some(Command::AddSeed {
            seed,
            found,
            workload,
            bug,
            dir,
        }) => add_seed(*seed, found, *workload, bug.as_deref(), dir),
        Some(Command::Bench {
            seeds,
            baseline_seeds,
        }) => bench(*seeds, *baseline_seeds),
        None => match (cli.seed, cli.seeds.clone()) {
            (Some(seed), _) if cli.check_determinism => check_determinism(&cli, seed),
            (Some(seed), _) if cli.minimize => minimize(&cli, seed),
            (Some(seed), _) => one_seed(&cli, seed),
            (None, Some(seeds)) => many_seeds(&cli, seeds),
            (None, None) => {
                Err("give --seed N or --seeds A..B (or a subcommand); see --help".to_string())
            }
        },
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn options(cli: &Cli, seed: u64) -> RunOptions {
    RunOptions {
        seed,
        bugs: bugs_of(cli.bug.as_deref()),
        standard: cli.standard,
        keep_events: false,
        workload: cli.workload,
        kv_bugs: kv_bugs_of(cli.bug.as_deref()),
        overrides: cli.overrides.to_overrides(),
    }
}

/// A sharded run has one configuration per Raft group, each derived from the seed: print
/// those rather than the seed's single-cluster configuration, which no group uses as is.
fn print_shard_config(opts: &RunOptions) {
    let base = opts.config();
    let mut shard = sim::shard::ShardWorkload::from_seed(opts.seed);
    shard.apply(&opts.overrides);
    for index in 0..=shard.groups {
        let name = match index {
            0 => "controller group (nodes 1..=3)".to_string(),
            gid => format!(
                "replica group {gid} (node ids are these plus {})",
                100 * gid
            ),
        };
        let config = sim::shard::config::group_config(&base, index, &opts.overrides);
        println!("{name}:\n{config}");
    }
    println!("{shard}");
}

fn one_seed(cli: &Cli, seed: u64) -> Result<bool, String> {
    if cli.trace {
        sim::trace::init();
    }
    let opts = options(cli, seed);
    match opts.kv_workload() {
        Some(kv) => println!("{}\n{kv}", opts.config()),
        None if opts.workload == Workload::ShardKv => print_shard_config(&opts),
        None => println!("{}\n  workload raft", opts.config()),
    }
    if let Some(bug) = &cli.bug {
        println!("  planted bug: {bug}");
    }
    let report = run_seed_isolated(&opts);
    let passed = report.passed();
    println!(
        "seed {seed}: {} after {:?} simulated ({:?} wall); {} messages, {} steps, {} crashes, \
         {} partitions, {} pauses; client: {} writes, {} reads; event hash {:016x}",
        if passed { "passed" } else { "FAILED" },
        report.sim_time,
        report.wall_time,
        report.stats.sent,
        report.stats.steps,
        report.stats.crashes,
        report.stats.partitions,
        report.stats.pauses,
        report.client.writes,
        report.client.reads,
        report.event_hash
    );
    if let Some(kv) = &report.kv {
        println!(
            "  kv: {} requests completed, {} resends, {} replies lost, {} ops recorded",
            kv.completed,
            kv.resends,
            kv.replies_lost,
            report.history.as_ref().map_or(0, Vec::len)
        );
    }
    if !passed {
        println!("  {}", describe(&report.outcome));
        println!("  reproduce: {}", reproduce(&opts, cli.bug.as_deref()));
        report_artifacts(&cli.out, &report);
    }
    if let Some(path) = &cli.json {
        let summary = serde_json::json!({
            "seed": seed,
            "passed": passed,
            "outcome": describe(&report.outcome),
            "sim_secs": report.sim_time.as_secs_f64(),
            "wall_secs": report.wall_time.as_secs_f64(),
            "event_hash": format!("{:016x}", report.event_hash),
            "stats": report.stats,
            "client": report.client,
            "workload": cli.workload.name(),
            "kv": report.kv,
        });
        write_json(path, &summary)?;
    }
    Ok(passed)
}

/// The command that replays `opts` exactly, overrides included.
fn reproduce(opts: &RunOptions, bug: Option<&str>) -> String {
    let mut cmd = reproduce_command(opts.seed, bug, opts.standard, opts.workload);
    let flags = opts.overrides.to_flags();
    if !flags.is_empty() {
        cmd.push(' ');
        cmd.push_str(&flags);
    }
    cmd
}

fn minimize(cli: &Cli, seed: u64) -> Result<bool, String> {
    let opts = options(cli, seed);
    std::panic::set_hook(Box::new(|_| {}));
    let found = sim::minimize::minimize(&opts, cli.minimize_runs);
    let _ = std::panic::take_hook();
    let Some(min) = found else {
        println!("seed {seed} passes: nothing to minimize");
        return Ok(true);
    };
    println!(
        "minimized seed {seed} in {} replays; still fails ({}):",
        min.runs, min.signature
    );
    println!("  {}", describe(&min.report.outcome));
    let config = min.options.config();
    println!(
        "  fault phase {:?}, {} ops recorded",
        config.fault_phase,
        min.report.history.as_ref().map_or(0, Vec::len)
    );
    println!(
        "  reproduce: {}",
        reproduce(&min.options, cli.bug.as_deref())
    );
    report_artifacts(&cli.out, &min.report);
    Ok(false)
}

fn check_determinism(cli: &Cli, seed: u64) -> Result<bool, String> {
    let mut opts = options(cli, seed);
    opts.keep_events = true;
    let first = run_seed_isolated(&opts);
    let second = run_seed_isolated(&opts);
    println!(
        "seed {seed}: run 1 {} events hash {:016x}; run 2 {} events hash {:016x}",
        first.events, first.event_hash, second.events, second.event_hash
    );
    match first_difference(&first.records, &second.records) {
        None if first.event_hash == second.event_hash && first.outcome == second.outcome => {
            println!("deterministic: both runs are identical");
            Ok(true)
        }
        None => {
            println!("NOT deterministic: same events but outcomes differ");
            Ok(false)
        }
        Some((i, a, b)) => {
            let show = |r: Option<sim::event_log::EventRecord>| {
                r.map_or("(run ended)".to_string(), |r| r.to_string())
            };
            println!("NOT deterministic: first difference at event #{i}");
            println!("  run 1: {}", show(a));
            println!("  run 2: {}", show(b));
            Ok(false)
        }
    }
}

fn many_seeds(cli: &Cli, seeds: Range<u64>) -> Result<bool, String> {
    let options = SweepOptions {
        seeds,
        jobs: cli.jobs as usize,
        bugs: bugs_of(cli.bug.as_deref()),
        bug_name: cli.bug.clone(),
        standard: cli.standard,
        stop_at_first_failure: false,
        progress: true,
        workload: cli.workload,
        kv_bugs: kv_bugs_of(cli.bug.as_deref()),
        shard: cli.shard,
        overrides: cli.overrides.to_overrides(),
    };
    std::panic::set_hook(Box::new(|_| {}));
    let mut failing = Vec::new();
    let summary = sweep(&options, |report| {
        if !report.passed() && report.history.is_some() {
            failing.push(report.clone());
        }
    });
    failing.sort_by_key(|r| r.seed);
    for report in &failing {
        println!("seed {} history:", report.seed);
        report_artifacts(&cli.out, report);
    }
    let _ = std::panic::take_hook();
    print_summary(&summary);
    if let Some(path) = &cli.json {
        write_json(path, &summary)?;
    }
    Ok(summary.all_passed())
}

fn print_summary(summary: &Summary) {
    for failed in &summary.failed {
        println!("seed {} FAILED: {}", failed.seed, failed.failure);
        println!("  reproduce: {}", failed.reproduce);
    }
    println!(
        "{} seeds: {} passed, {} failed in {:.1} s wall: {:.1} seeds/s, {:.0} simulated s per \
         wall s",
        summary.seeds,
        summary.passed,
        summary.failed.len(),
        summary.wall_secs,
        summary.seeds_per_sec,
        summary.sim_per_wall
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_bad_ranges_are_explained() {
        assert_eq!(parse_range("1..1000"), Ok(1..1000));
        assert!(parse_range("5").unwrap_err().contains("not a range"));
        assert!(parse_range("9..3").unwrap_err().contains("empty"));
        assert!(parse_range("a..3").unwrap_err().contains("bad range start"));
    }

    #[test]
    fn bug_names_are_checked() {
        assert_eq!(
            parse_bug("figure8_commit"),
            Ok("figure8_commit".to_string())
        );
        assert!(parse_bug("nope").unwrap_err().contains("known bugs"));
    }

    #[test]
    fn shards_and_workloads_parse_and_bad_ones_are_explained() {
        assert_eq!(parse_shard("1/4"), Ok((1, 4)));
        assert!(parse_shard("4/4").unwrap_err().contains("0 <= i < n"));
        assert!(parse_shard("1").unwrap_err().contains("not a shard"));
        assert!(parse_shard("a/2").unwrap_err().contains("bad shard index"));
        assert_eq!(parse_workload("raft"), Ok(Workload::Raft));
        assert!(parse_workload("sql")
            .unwrap_err()
            .contains("kv, raft or shardkv"));
        assert_eq!(parse_workload("shardkv"), Ok(Workload::ShardKv));
        assert_eq!(parse_bug("local_reads"), Ok("local_reads".to_string()));
        let cli = Cli::try_parse_from(["sim", "--seed", "3", "--no-crashes", "--ops-max", "9"]);
        let overrides = cli.unwrap().overrides.to_overrides();
        assert!(overrides.no_crashes && overrides.ops_max == Some(9));
        assert!(Cli::try_parse_from(["sim", "--seeds", "1..9", "--shard", "0/2"]).is_ok());
        let parsed = |args: &[&str]| Cli::try_parse_from(args).map(|cli| validate(&cli));
        assert!(!matches!(
            parsed(&["sim", "--seed", "1", "--shard", "0/2"]),
            Ok(Ok(()))
        ));
        assert!(!matches!(
            parsed(&["sim", "--seeds", "1..3", "--minimize"]),
            Ok(Ok(()))
        ));
        assert!(matches!(
            parsed(&["sim", "--seed", "1", "--minimize"]),
            Ok(Ok(()))
        ));
        let raft_with_kv_bug = [
            "sim",
            "--seed",
            "1",
            "--workload",
            "raft",
            "--bug",
            "local_reads",
        ];
        assert!(!matches!(parsed(&raft_with_kv_bug), Ok(Ok(()))));
        let shard_bug = ["sim", "--seed", "1", "--bug", "delete_before_confirm"];
        assert!(!matches!(parsed(&shard_bug), Ok(Ok(()))));
        let shard_run = [&shard_bug[..], &["--workload", "shardkv"]].concat();
        assert!(matches!(parsed(&shard_run), Ok(Ok(()))));
    }

    #[test]
    fn cli_rejects_conflicting_and_incomplete_arguments() {
        assert!(Cli::try_parse_from(["sim", "--seed", "1", "--seeds", "1..3"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--trace"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--seed", "x"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--seeds", "1..3", "--jobs", "0"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--seed", "1", "--check-determinism"]).is_ok());
    }
}
