//! `sim` command-line entry point: run seeds, canaries and the benchmark.

use clap::{Parser, Subcommand};
use raft_core::Bugs;
use sim::event_log::first_difference;
use sim::sweep::{describe, reproduce_command, sweep, Summary, SweepOptions};
use sim::{run_seed_isolated, RunOptions, SwarmConfig};
use std::collections::BTreeMap;
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
    /// Plant a bug (see `sim canaries`): one of the raft_core::Bugs names.
    #[arg(long, value_parser = parse_bug)]
    bug: Option<String>,
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
    match Bugs::from_name(name) {
        Some(_) => Ok(name.to_string()),
        None => Err(format!(
            "unknown bug `{name}`; known bugs: {}",
            Bugs::NAMES.join(", ")
        )),
    }
}

fn bugs_of(name: Option<&str>) -> Bugs {
    name.and_then(Bugs::from_name).unwrap_or_default()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Canaries { seeds, jobs, json }) => canaries(seeds.clone(), *jobs, json),
        Some(Command::Bench {
            seeds,
            baseline_seeds,
        }) => bench(*seeds, *baseline_seeds),
        None => match (cli.seed, cli.seeds.clone()) {
            (Some(seed), _) if cli.check_determinism => check_determinism(&cli, seed),
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
    }
}

fn one_seed(cli: &Cli, seed: u64) -> Result<bool, String> {
    if cli.trace {
        sim::trace::init();
    }
    let opts = options(cli, seed);
    println!("{}", opts.config());
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
    if !passed {
        println!("  {}", describe(&report.outcome));
        println!(
            "  reproduce: {}",
            reproduce_command(seed, cli.bug.as_deref(), cli.standard)
        );
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
        });
        write_json(path, &summary)?;
    }
    Ok(passed)
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
    };
    std::panic::set_hook(Box::new(|_| {}));
    let summary = sweep(&options, |_| {});
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

fn canaries(seeds: Range<u64>, jobs: u64, json: &Option<PathBuf>) -> Result<bool, String> {
    std::panic::set_hook(Box::new(|_| {}));
    let mut rows = Vec::new();
    // A seed counts for a bug only if it passes without the bug, so failures the unmodified
    // code also has are not credited to the canary.
    let mut clean: BTreeMap<u64, bool> = BTreeMap::new();
    println!("| bug | seeds caught | first caught seed | also failing without the bug |");
    println!("|---|---|---|---|");
    for name in Bugs::NAMES {
        let options = SweepOptions {
            seeds: seeds.clone(),
            jobs: jobs as usize,
            bugs: bugs_of(Some(name)),
            bug_name: Some(name.to_string()),
            standard: false,
            stop_at_first_failure: false,
            progress: true,
        };
        let summary = sweep(&options, |_| {});
        let (caught, baseline): (Vec<_>, Vec<_>) = summary.failed.iter().partition(|f| {
            *clean
                .entry(f.seed)
                .or_insert_with(|| run_seed_isolated(&RunOptions::new(f.seed)).passed())
        });
        let first = caught.first().map(|f| f.seed);
        let fraction = caught.len() as f64 / summary.seeds.max(1) as f64;
        println!(
            "| {name} | {}/{} ({:.1}%) | {} | {} |",
            caught.len(),
            summary.seeds,
            fraction * 100.0,
            first.map_or("none".to_string(), |s| s.to_string()),
            baseline.len()
        );
        rows.push(serde_json::json!({
            "bug": name, "caught": caught.len(), "seeds": summary.seeds,
            "fraction": fraction, "first_caught_seed": first,
            "first_failure": caught.first().map(|f| f.failure.clone()),
            "failing_without_bug": baseline.iter().map(|f| f.seed).collect::<Vec<_>>(),
        }));
    }
    let _ = std::panic::take_hook();
    if let Some(path) = json {
        write_json(path, &serde_json::Value::Array(rows.clone()))?;
    }
    Ok(rows.iter().all(|row| row["caught"].as_u64() > Some(0)))
}

fn bench(seeds: u64, baseline_seeds: u64) -> Result<bool, String> {
    if seeds == 0 || baseline_seeds == 0 {
        return Err("bench needs at least one seed of each kind".to_string());
    }
    println!("standard seed: {}", SwarmConfig::standard(1));
    let base = sim::bench::baseline(baseline_seeds);
    println!(
        "bare madsim baseline (5 nodes, heartbeat every 50 ms, 10 simulated s): {:.1} seeds/s, \
         {:.0} simulated s per wall s, {:.0} messages per seed",
        base.seeds_per_sec, base.sim_per_wall, base.messages_per_seed
    );
    let (std_figures, failed) = sim::bench::standard(seeds);
    println!(
        "standard Raft seed (5 nodes, client, 20 simulated s of faults): {:.1} seeds/s, {:.0} \
         simulated s per wall s, {:.0} messages per seed",
        std_figures.seeds_per_sec, std_figures.sim_per_wall, std_figures.messages_per_seed
    );
    let ratio = base.seeds_per_sec / std_figures.seeds_per_sec;
    println!("cost of one standard seed = {ratio:.2} x one baseline seed (goal: at most 3 x)");
    let ten_k_two_cores = 10_000.0 / (std_figures.seeds_per_sec * 2.0) / 60.0;
    println!("10,000 standard seeds on 2 cores: about {ten_k_two_cores:.1} min (goal: under 10)");
    if !failed.is_empty() {
        println!("failing standard seeds: {failed:?}");
    }
    Ok(failed.is_empty())
}

fn write_json(path: &PathBuf, value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| format!("encoding JSON: {e}"))?;
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
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
    fn cli_rejects_conflicting_and_incomplete_arguments() {
        assert!(Cli::try_parse_from(["sim", "--seed", "1", "--seeds", "1..3"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--trace"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--seed", "x"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--seeds", "1..3", "--jobs", "0"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--seed", "1", "--check-determinism"]).is_ok());
    }
}
