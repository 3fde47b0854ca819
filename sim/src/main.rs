//! `sim` command-line entry point: run seeds, replay corpus files, canaries and the benchmark.
//!
//! One concept per file: the flags ([`cli_flags`], [`cli_parse`]), which combinations are
//! refused ([`cli_rules`]), the generated help ([`cli_help`]), one seed ([`single`]), many
//! seeds ([`many`]), the subcommands ([`commands`]) and the JSON output ([`json_out`]).

mod cli_flags;
mod cli_help;
mod cli_parse;
mod cli_rules;
mod commands;
mod json_out;
mod many;
mod single;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use cli_flags::OverrideFlags;
use cli_parse::{parse_bug, parse_range, parse_shard, parse_workload};
use sim::workload::Workload;
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;

/// Deterministic simulation testing of raft-core.
#[derive(Parser, Debug)]
#[command(name = "sim", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Run one seed and print its configuration.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run a half-open range of seeds, e.g. `1..1000` (any size: seeds are walked lazily).
    #[arg(long, value_parser = parse_range)]
    seeds: Option<Range<u64>>,
    /// Worker threads for `--seeds` [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    jobs: Option<u64>,
    /// Plant a bug (listed below; the workload must be able to plant it).
    #[arg(long, value_parser = parse_bug)]
    bug: Option<String>,
    /// The service under test: kv, raft or shardkv (see below).
    #[arg(long, default_value = "kv", value_parser = parse_workload)]
    workload: Workload,
    /// Where a failing seed's report goes: `DIR/seed-N/` (history and HTML page).
    #[arg(long, default_value = "sim-failures")]
    out: PathBuf,
    /// With `--seeds`: run only seeds s with s % n == i, given as `i/n`.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Shrink the failing `--seed` (fewer faults, a shorter fault phase, fewer clerks and
    /// requests) while the same checker still fails; print the minimal case as a command.
    #[arg(long)]
    minimize: bool,
    /// Replays the minimizer may use [default: 80].
    #[arg(long)]
    minimize_runs: Option<u64>,
    #[command(flatten)]
    overrides: OverrideFlags,
    /// Use the benchmark's standard configuration (5 nodes, 20 s of faults) for every seed.
    #[arg(long)]
    standard: bool,
    /// Print the full tracing log of `--seed` to stderr (one span per node, simulated
    /// timestamps); identical on every run of the same seed and binary.
    #[arg(long)]
    trace: bool,
    /// Run `--seed` twice and report the first point where the runs differ.
    #[arg(long)]
    check_determinism: bool,
    /// Write a JSON summary to this path (checked before any seed runs).
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
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
        jobs: u64,
        /// Write the table as JSON to this path (checked before any seed runs).
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
        /// Replace a seed file that already exists.
        #[arg(long)]
        force: bool,
    },
    /// Replays seed files of the corpus exactly as `cargo test` does: the recorded outcome
    /// must come out, and a seed credited to a bug must pass without it.
    Replay {
        /// Seed files, e.g. `seeds/kv-1.seed`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
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

/// The parser with the generated help sections.
fn command() -> clap::Command {
    Cli::command()
        .after_help(
            "`sim --help` lists the workloads, every planted bug, what a seed may turn on and \
             the exit codes.",
        )
        .after_long_help(cli_help::after_help())
}

/// Parses `args` and applies the rules clap's attributes do not express.
fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    cli_rules::check(&cli, &matches)
        .map_err(|message| cmd.error(clap::error::ErrorKind::ArgumentConflict, message))?;
    Ok(cli)
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let result = match &cli.command {
        Some(Command::Canaries { seeds, jobs, json }) => {
            commands::canaries(seeds.clone(), *jobs, json.as_deref())
        }
        Some(Command::AddSeed {
            seed,
            found,
            workload,
            bug,
            dir,
            force,
        }) => commands::add_seed(*seed, found, *workload, bug.as_deref(), dir, *force),
        Some(Command::Replay { files }) => commands::replay(files),
        Some(Command::Bench {
            seeds,
            baseline_seeds,
        }) => commands::bench(*seeds, *baseline_seeds),
        None => match (cli.seed, cli.seeds.clone()) {
            (Some(seed), _) if cli.check_determinism => single::check_determinism(&cli, seed),
            (Some(seed), _) if cli.minimize => single::minimize(&cli, seed),
            (Some(seed), _) => single::one_seed(&cli, seed),
            (None, Some(seeds)) => many::many_seeds(&cli, seeds),
            (None, None) => unreachable!("cli_rules demands --seed or --seeds"),
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
