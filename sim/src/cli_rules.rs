//! Flag combinations the `sim` command line refuses: a flag that would do nothing in the mode
//! asked for is an error that says so, never silently ignored.

use crate::{Cli, Command};
use clap::parser::ValueSource;
use clap::ArgMatches;

/// The top-level flags given on the command line (not defaults), as `--name`.
fn given(matches: &ArgMatches) -> Vec<String> {
    let mut ids: Vec<String> = matches
        .ids()
        .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| format!("--{}", id.as_str().replace('_', "-")))
        .collect();
    ids.sort();
    ids
}

fn subcommand_name(command: &Command) -> &'static str {
    match command {
        Command::Canaries { .. } => "canaries",
        Command::AddSeed { .. } => "add-seed",
        Command::Replay { .. } => "replay",
        Command::Merge { .. } => "merge",
        Command::Bench { .. } => "bench",
    }
}

/// Checks the combinations clap's attributes do not express.
///
/// # Errors
/// The first refused combination, explained.
pub fn check(cli: &Cli, matches: &ArgMatches) -> Result<(), String> {
    let given = given(matches);
    let has = |flag: &str| given.iter().any(|g| g == flag);
    if let Some(command) = &cli.command {
        let name = subcommand_name(command);
        if let Some(flag) = given.first() {
            return Err(format!(
                "{flag} is an option of seed runs (`sim --seed N`, `sim --seeds A..B`) and does \
                 nothing for `sim {name}`; see `sim {name} --help` for its options, given after \
                 its name"
            ));
        }
        if let Command::AddSeed {
            workload,
            bug: Some(bug),
            ..
        } = command
        {
            sim::bugs::check_plantable(bug, *workload)?;
        }
        return Ok(());
    }
    if cli.seed.is_none() && cli.seeds.is_none() {
        return Err("give --seed N or --seeds A..B (or a subcommand); see --help".to_string());
    }
    if let Some(bug) = &cli.bug {
        sim::bugs::check_plantable(bug, cli.workload)?;
    }
    if cli.seeds.is_some() {
        for (flag, why) in [
            ("--trace", "traces one run; give --seed N"),
            ("--check-determinism", "runs one seed twice; give --seed N"),
            ("--minimize", "shrinks one failing seed; give --seed N"),
            (
                "--minimize-runs",
                "is the budget of --minimize, which needs --seed N",
            ),
        ] {
            if has(flag) {
                return Err(format!("{flag} {why} (not --seeds A..B)"));
            }
        }
        return Ok(());
    }
    // One seed.
    for (flag, why) in [
        (
            "--jobs",
            "runs --seeds A..B on several threads; one --seed runs on one",
        ),
        (
            "--shard",
            "splits --seeds A..B; it does nothing for one --seed",
        ),
    ] {
        if has(flag) {
            return Err(format!("{flag} {why}"));
        }
    }
    let modes: Vec<&str> = ["--trace", "--check-determinism", "--minimize"]
        .into_iter()
        .filter(|flag| has(flag))
        .collect();
    if modes.len() > 1 {
        return Err(format!(
            "{} cannot be combined: each runs the seed its own way",
            modes.join(" and ")
        ));
    }
    if has("--minimize-runs") && !cli.minimize {
        return Err("--minimize-runs is the budget of --minimize; add --minimize".to_string());
    }
    for flag in ["--json", "--out"] {
        if cli.check_determinism && has(flag) {
            return Err(format!(
                "{flag} does nothing with --check-determinism, which only compares two runs"
            ));
        }
    }
    if cli.minimize && has("--json") {
        return Err(
            "--json does nothing with --minimize, which prints the minimal case as a command"
                .to_string(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::parse;

    fn refused(args: &[&str]) -> String {
        match parse(args) {
            Ok(cli) => panic!("{args:?} was accepted: {cli:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn flags_that_would_do_nothing_are_refused_with_a_reason() {
        for (args, says) in [
            (
                &["sim", "--seeds", "1..3", "--trace"][..],
                "--trace traces one run",
            ),
            (
                &["sim", "--seeds", "1..3", "--check-determinism"],
                "runs one seed twice",
            ),
            (
                &["sim", "--seeds", "1..3", "--minimize"],
                "shrinks one failing seed",
            ),
            (
                &["sim", "--seed", "1", "--jobs", "2"],
                "--jobs runs --seeds",
            ),
            (&["sim", "--seed", "1", "--shard", "0/2"], "--shard splits"),
            (
                &["sim", "--seed", "1", "--trace", "--minimize"],
                "cannot be combined",
            ),
            (
                &["sim", "--seed", "1", "--minimize-runs", "3"],
                "add --minimize",
            ),
            (
                &["sim", "--seed", "1", "--check-determinism", "--json", "x"],
                "--json does nothing",
            ),
            (
                &["sim", "--seed", "1", "--minimize", "--json", "x"],
                "--json does nothing",
            ),
            (
                &["sim", "--jobs", "2", "canaries"],
                "does nothing for `sim canaries`",
            ),
            (
                &["sim", "--bug", "local_reads", "bench"],
                "does nothing for `sim bench`",
            ),
            (&["sim", "--jobs", "2"], "give --seed N or --seeds"),
            (
                &[
                    "sim",
                    "--seed",
                    "1",
                    "--workload",
                    "raft",
                    "--bug",
                    "local_reads",
                ],
                "cannot plant",
            ),
            (
                &["sim", "--seed", "1", "--bug", "delete_before_confirm"],
                "cannot plant",
            ),
            (
                &[
                    "sim",
                    "add-seed",
                    "--seed",
                    "1",
                    "--found",
                    "x",
                    "--workload",
                    "raft",
                    "--bug",
                    "local_reads",
                ],
                "cannot plant",
            ),
        ] {
            let error = refused(args);
            assert!(error.contains(says), "{args:?}: {error}");
        }
        for args in [
            &["sim", "canaries", "--jobs", "0"][..],
            &["sim", "--seeds", "1..3", "--jobs", "0"],
            &["sim", "--seed", "1", "--seeds", "1..3"],
            &["sim", "--seed", "x"],
            &["sim", "replay"],
        ] {
            refused(args);
        }
    }

    #[test]
    fn meaningful_combinations_are_accepted() {
        for args in [
            &["sim", "--seed", "1", "--check-determinism"][..],
            &[
                "sim",
                "--seed",
                "1",
                "--minimize",
                "--minimize-runs",
                "5",
                "--out",
                "d",
            ],
            &[
                "sim",
                "--seed",
                "1",
                "--trace",
                "--json",
                "x",
                "--no-crashes",
            ],
            &[
                "sim", "--seeds", "1..9", "--shard", "0/2", "--jobs", "2", "--json", "x",
            ],
            &[
                "sim",
                "--seed",
                "1",
                "--workload",
                "shardkv",
                "--bug",
                "delete_before_confirm",
            ],
            &[
                "sim",
                "--seed",
                "1",
                "--workload",
                "kv",
                "--bug",
                "figure8_commit",
            ],
            &["sim", "canaries", "--seeds", "1..3", "--jobs", "2"],
            &["sim", "replay", "seeds/kv-1.seed"],
        ] {
            if let Err(error) = parse(args) {
                panic!("{args:?} refused: {error}");
            }
        }
        let cli = parse(["sim", "--seed", "3", "--no-crashes", "--ops-max", "9"]).unwrap();
        let overrides = cli.overrides.to_overrides();
        assert!(overrides.no_crashes && overrides.ops_max == Some(9));
    }
}
