//! Seeds without planted bugs pass; the same seed always gives the same run.

use sim::sweep::{describe, reproduce_command, sweep, SweepOptions};
use sim::{run_seed_isolated, RunOptions};

/// Seeds run by `cargo test`; `sim --seeds` runs thousands.
const SEEDS: u64 = 200;

#[test]
fn seeds_without_bugs_pass() {
    let options = SweepOptions {
        seeds: 1..SEEDS + 1,
        jobs: 2,
        bugs: raft_core::Bugs::default(),
        bug_name: None,
        standard: false,
        stop_at_first_failure: false,
        progress: false,
    };
    let summary = sweep(&options, |_| {});
    let failures: Vec<String> = summary
        .failed
        .iter()
        .map(|f| format!("{}\n  {}", f.failure, f.reproduce))
        .collect();
    assert!(
        failures.is_empty(),
        "failing seeds:\n{}",
        failures.join("\n")
    );
    assert_eq!(summary.passed, SEEDS);
}

#[test]
fn same_seed_gives_identical_event_log() {
    for seed in [3, 17] {
        let options = RunOptions {
            keep_events: true,
            ..RunOptions::new(seed)
        };
        let a = run_seed_isolated(&options);
        let b = run_seed_isolated(&options);
        assert!(
            a.events > 100,
            "seed {seed} did too little to compare: {}",
            a.events
        );
        assert_eq!(
            a.event_hash, b.event_hash,
            "seed {seed} is not deterministic"
        );
        assert_eq!(a.records, b.records);
        assert_eq!(a.outcome, b.outcome, "{}", describe(&a.outcome));
    }
    let (a, b) = (
        run_seed_isolated(&RunOptions::new(5)),
        run_seed_isolated(&RunOptions::new(6)),
    );
    assert_ne!(
        a.event_hash, b.event_hash,
        "different seeds must give different runs"
    );
}

#[test]
fn standard_seed_runs_twenty_simulated_seconds() {
    let report = run_seed_isolated(&RunOptions {
        standard: true,
        ..RunOptions::new(1)
    });
    assert!(report.passed(), "{}", describe(&report.outcome));
    assert!(
        report.sim_time.as_secs() >= 20,
        "ran only {:?}",
        report.sim_time
    );
    assert!(report.client.writes > 0 && report.stats.sent > 0);
}

#[test]
fn reproduce_command_names_seed_and_bug() {
    assert_eq!(
        reproduce_command(42, Some("figure8_commit"), false),
        "cargo run --release --bin sim -- --seed 42 --bug figure8_commit"
    );
}

#[test]
fn results_do_not_depend_on_the_number_of_jobs() {
    let run = |jobs| {
        let options = SweepOptions {
            seeds: 40..46,
            jobs,
            bugs: raft_core::Bugs::default(),
            bug_name: None,
            standard: false,
            stop_at_first_failure: false,
            progress: false,
        };
        let mut hashes = std::collections::BTreeMap::new();
        sweep(&options, |report| {
            hashes.insert(report.seed, report.event_hash);
        });
        hashes
    };
    assert_eq!(run(1), run(3));
}
