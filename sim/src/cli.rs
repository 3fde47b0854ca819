//! The `sim` command line, as a library function so that a user's service gets the same
//! flags ([`main_with`]).
//!
//! One concept per file: the flags (`cli_flags.rs`, `cli_parse.rs`), which combinations are
//! refused (`cli_rules.rs`), the generated help (`cli_help.rs`), one seed (`single.rs`), many
//! seeds (`many.rs`), the subcommands (`commands.rs`) and the JSON output (`json_out.rs`).

use crate::cli_flags::OverrideFlags;
use crate::cli_parse::{parse_bug, parse_range, parse_shard, parse_workload};
use crate::workload::{Custom, Workload};
use crate::{cli_help, cli_rules, commands, many, single};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ops::Range;
use std::path::PathBuf;
use std::process::ExitCode;

/// Deterministic simulation testing of raft-core.
#[derive(Parser, Debug)]
#[command(name = "sim", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Run one seed and print its configuration.
    #[arg(long, conflicts_with = "seeds")]
    pub(crate) seed: Option<u64>,
    /// Run a half-open range of seeds, e.g. `1..1000` (any size: seeds are walked lazily).
    #[arg(long, value_parser = parse_range)]
    pub(crate) seeds: Option<Range<u64>>,
    /// Worker threads for `--seeds` [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub(crate) jobs: Option<u64>,
    /// Plant a bug (listed below; the workload must be able to plant it).
    #[arg(long, value_parser = parse_bug)]
    pub(crate) bug: Option<String>,
    /// The service under test: kv, raft or shardkv (see below).
    #[arg(long, default_value = "kv", value_parser = parse_workload)]
    pub(crate) workload: Workload,
    /// Where a failing seed's report goes: `DIR/seed-N/` (history and HTML page).
    #[arg(long, default_value = "sim-failures")]
    pub(crate) out: PathBuf,
    /// With `--seeds`: run only seeds s with s % n == i, given as `i/n`.
    #[arg(long, value_parser = parse_shard)]
    pub(crate) shard: Option<(u64, u64)>,
    /// Shrink the failing `--seed` (fewer faults, a shorter fault phase, fewer clerks and
    /// requests) while the same checker still fails; print the minimal case as a command.
    #[arg(long)]
    pub(crate) minimize: bool,
    /// Replays the minimizer may use [default: 80].
    #[arg(long)]
    pub(crate) minimize_runs: Option<u64>,
    #[command(flatten)]
    pub(crate) overrides: OverrideFlags,
    /// Use the benchmark's standard configuration (5 nodes, 20 s of faults) for every seed.
    #[arg(long)]
    pub(crate) standard: bool,
    /// Print the full tracing log of `--seed` to stderr (one span per node, simulated
    /// timestamps); identical on every run of the same seed and binary.
    #[arg(long)]
    pub(crate) trace: bool,
    /// Run `--seed` twice and report the first point where the runs differ.
    #[arg(long)]
    pub(crate) check_determinism: bool,
    /// Write a JSON summary to this path (checked before any seed runs).
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
        /// A rare shape the seed reaches (see `sim --seeds A..B`'s "rare shapes reached"
        /// line); its replay fails once the seed no longer reaches it.
        #[arg(long)]
        reaches: Option<String>,
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
        /// Rewrite each file's `config` fingerprint to the configuration its seed derives now,
        /// but only for files whose recorded outcome still holds.
        #[arg(long)]
        refresh: bool,
    },
    /// Merges the `--json` summaries of sharded sweeps (`--shard i/n`) into one report: seeds
    /// run, every failure with its reproduce command, missing shards, per-shard figures.
    Merge {
        /// Summary files, e.g. `out/summary-*.json`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write the merged report as JSON to this path.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Cost of a seed per core, per workload, cluster size and fault phase, against a bare
    /// madsim baseline in the same run.
    Bench {
        /// Seeds per row.
        #[arg(long, default_value_t = 40)]
        seeds: u64,
        /// Baseline seeds to run.
        #[arg(long, default_value_t = 200)]
        baseline_seeds: u64,
        /// Rounds the rows are interleaved in, so a load that changes during the run weighs
        /// on every row alike.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
        rounds: u64,
        /// Write the figures as JSON to this path (checked before any seed runs).
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

/// The parser with the generated help sections; for a custom service, `--workload` takes
/// only its name (the default) and `--bug` only its planted bugs.
fn command_for(custom: Option<Custom>) -> clap::Command {
    let cmd = Cli::command();
    let Some(custom) = custom else {
        return cmd
            .after_help(
                "`sim --help` lists the workloads, every planted bug, what a seed may turn on \
                 and the exit codes.",
            )
            .after_long_help(cli_help::after_help());
    };
    let names: Vec<&str> = custom.bugs.iter().map(|(name, _)| *name).collect();
    let names = names.join(", ");
    cmd.name(custom.name)
        .mut_arg("workload", move |arg| {
            arg.default_value(custom.name)
                .value_parser(move |name: &str| match name == custom.name {
                    true => Ok(Workload::Custom(custom)),
                    false => Err(format!("this program runs only `{}`", custom.name)),
                })
        })
        .mut_arg("bug", move |arg| {
            arg.value_parser(move |name: &str| match custom.with_bug(name) {
                Some(_) => Ok(name.to_string()),
                None => Err(format!(
                    "unknown bug `{name}`; {} has: {names}",
                    custom.name
                )),
            })
        })
}

/// Parses `args` and applies the rules clap's attributes do not express.
#[cfg(test)]
pub(crate) fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    parse_for(None, args)
}

/// [`parse`] for `custom` (see [`command_for`]).
fn parse_for<I, T>(custom: Option<Custom>, args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = command_for(custom);
    let matches = cmd.try_get_matches_from_mut(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let (Workload::Custom(custom), Some(bug)) = (cli.workload, &cli.bug) {
        cli.workload = Workload::Custom(custom.with_bug(bug).expect("the parser checked it"));
    }
    cli_rules::check(&cli, &matches)
        .map_err(|message| cmd.error(clap::error::ErrorKind::ArgumentConflict, message))?;
    Ok(cli)
}

/// The `sim` command line: runs the simulator's own services, or `custom` with the same
/// flags (`--seed`, `--seeds`, `--jobs`, `--trace`, `--minimize`, `--check-determinism`, ...):
/// a cargo example's `main` is `sim::cli::main_with(Some(MY_SERVICE))`.
pub fn main_with(custom: Option<Custom>) -> ExitCode {
    let cli = match parse_for(custom, std::env::args_os()) {
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
            reaches,
            dir,
            force,
        }) => commands::add_seed(
            *seed,
            found,
            *workload,
            bug.as_deref(),
            reaches.as_deref(),
            dir,
            *force,
        ),
        Some(Command::Replay { files, refresh }) => commands::replay(files, *refresh),
        Some(Command::Merge { files, json }) => commands::merge(files, json.as_deref()),
        Some(Command::Bench {
            seeds,
            baseline_seeds,
            rounds,
            json,
        }) => commands::bench(*seeds, *baseline_seeds, *rounds, json.as_deref()),
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
