//! Every planted bug is caught within a small seed budget, and only because of the bug.

use raft_core::Bugs;
use sim::runner::Outcome;
use sim::sweep::{describe, sweep, SweepOptions};
use sim::{run_seed_isolated, RunOptions};

/// Seeds tried per bug before giving up.
const BUDGET: u64 = 300;

fn first_failure(name: &str) -> Option<(u64, Outcome)> {
    let options = SweepOptions {
        seeds: 1..BUDGET + 1,
        jobs: 2,
        bugs: Bugs::from_name(name).expect("known bug"),
        bug_name: Some(name.to_string()),
        standard: false,
        stop_at_first_failure: true,
        progress: false,
    };
    let mut found: Option<(u64, Outcome)> = None;
    sweep(&options, |report| {
        if !report.passed() && found.as_ref().is_none_or(|(s, _)| report.seed < *s) {
            found = Some((report.seed, report.outcome.clone()));
        }
    });
    found
}

fn assert_caught(name: &str) {
    let Some((seed, outcome)) = first_failure(name) else {
        panic!("{name}: no failure in seeds 1..={BUDGET}");
    };
    assert!(
        !matches!(outcome, Outcome::Panicked(_)),
        "{name}: seed {seed} panicked instead of failing a check: {}",
        describe(&outcome)
    );
    let clean = run_seed_isolated(&RunOptions::new(seed));
    assert!(
        clean.passed(),
        "{name}: seed {seed} fails without the bug too: {}",
        describe(&clean.outcome)
    );
}

#[test]
fn figure8_commit_is_caught() {
    assert_caught("figure8_commit");
}

#[test]
fn vote_before_persist_is_caught() {
    assert_caught("vote_before_persist");
}

#[test]
fn truncate_on_stale_append_is_caught() {
    assert_caught("truncate_on_stale_append");
}

#[test]
fn read_without_read_index_is_caught() {
    assert_caught("read_without_read_index");
}

#[test]
fn ack_before_fsync_is_caught() {
    assert_caught("ack_before_fsync");
}

#[test]
fn mid_log_corruption_as_torn_tail_is_caught() {
    assert_caught("mid_log_corruption_as_torn_tail");
}
