//! Every planted bug is caught within a small seed budget, and only because of the bug.

use raft_core::Bugs;
use sim::bugs::ServiceBugs;
use sim::cluster::Failure;
use sim::runner::Outcome;
use sim::sweep::{describe, sweep, SweepOptions};
use sim::workload::Workload;
use sim::{run_seed_isolated, RunOptions};

/// Seeds tried per bug before giving up.
const BUDGET: u64 = 300;

fn first_failure(name: &str, workload: Workload) -> Option<(u64, Outcome)> {
    let options = SweepOptions {
        bugs: Bugs::from_name(name).unwrap_or_default(),
        service_bugs: ServiceBugs::from_name(name).unwrap_or_default(),
        bug_name: Some(name.to_string()),
        stop_at_first_failure: true,
        ..SweepOptions::new(1..BUDGET + 1, 2, workload)
    };
    let mut found: Option<(u64, Outcome)> = None;
    sweep(&options, |report| {
        if !report.passed() && found.as_ref().is_none_or(|(s, _)| report.seed < *s) {
            found = Some((report.seed, report.outcome.clone()));
        }
    });
    found
}

fn assert_caught(name: &str) -> Outcome {
    assert_caught_in(name, Workload::Raft)
}

fn assert_caught_in(name: &str, workload: Workload) -> Outcome {
    let Some((seed, outcome)) = first_failure(name, workload) else {
        panic!("{name}: no failure in seeds 1..={BUDGET}");
    };
    assert!(
        !matches!(outcome, Outcome::Panicked(_)),
        "{name}: seed {seed} panicked instead of failing a check: {}",
        describe(&outcome)
    );
    let clean = run_seed_isolated(&RunOptions {
        workload,
        ..RunOptions::new(seed)
    });
    assert!(
        clean.passed(),
        "{name}: seed {seed} fails without the bug too: {}",
        describe(&clean.outcome)
    );
    outcome
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
fn leader_counts_unsynced_entry_is_caught() {
    assert_caught("leader_counts_unsynced_entry");
}

#[test]
fn snapshot_install_before_sync_is_caught() {
    assert_caught("snapshot_install_before_sync");
}

#[test]
fn new_segment_without_dir_sync_is_caught_by_the_restart_durability_check() {
    let outcome = assert_caught("new_segment_without_dir_sync");
    assert!(
        matches!(&outcome, Outcome::Failed(Failure::Safety(v)) if v.checker == "durable state survives restart"),
        "caught by another check: {}",
        describe(&outcome)
    );
}

#[test]
fn mid_log_corruption_as_torn_tail_is_caught() {
    assert_caught("mid_log_corruption_as_torn_tail");
}

#[test]
fn sessions_not_in_snapshot_is_caught() {
    assert_caught_in("sessions_not_in_snapshot", Workload::Kv);
}

#[test]
fn local_reads_on_a_deposed_leader_are_caught_by_the_linearizability_check() {
    let outcome = assert_caught_in("local_reads", Workload::Kv);
    assert!(
        matches!(outcome, Outcome::Failed(Failure::Linearizability(_))),
        "caught by another check: {}",
        describe(&outcome)
    );
}

/// Runs `name` on a seed known to catch it and checks which checker fired; the seed must pass
/// without the bug. (These bugs need the nemeses or lease reads, which only some seeds draw,
/// so a search from seed 1 would make this test slow.)
fn assert_caught_at(name: &str, seed: u64, checker: &str) {
    let bugs = Bugs::from_name(name).expect("a raft-core bug");
    let report = run_seed_isolated(&RunOptions {
        bugs,
        ..RunOptions::new(seed)
    });
    match &report.outcome {
        Outcome::Failed(Failure::Safety(v)) => assert_eq!(v.checker, checker, "{name}: {v}"),
        other => panic!("{name}: seed {seed} was not caught: {}", describe(other)),
    }
    let clean = run_seed_isolated(&RunOptions::new(seed));
    assert!(
        clean.passed(),
        "{name}: seed {seed} fails without the bug too: {}",
        describe(&clean.outcome)
    );
}

#[test]
fn two_config_changes_in_flight_is_caught_by_the_membership_checker() {
    assert_caught_at(
        "two_config_changes_in_flight",
        1,
        "one membership change at a time",
    );
}

#[test]
fn config_before_own_term_commit_is_caught_by_the_membership_checker() {
    assert_caught_at(
        "config_before_own_term_commit",
        5,
        "own-term commit before a membership change",
    );
}

#[test]
fn lease_read_no_drift_margin_is_caught_by_the_read_check() {
    assert_caught_at("lease_read_no_drift_margin", 192, "linearizable reads");
}

#[test]
fn commit_beyond_verified_is_caught_by_state_machine_safety() {
    assert_caught_at("commit_beyond_verified", 1, "state machine safety");
}

#[test]
fn read_index_before_own_term_commit_is_caught_by_the_read_check() {
    assert_caught_at("read_index_before_own_term_commit", 1, "linearizable reads");
}

#[test]
fn stale_snapshot_installed_is_caught_by_the_apply_check() {
    assert_caught_at("stale_snapshot_installed", 46, "applied within commit");
}

#[test]
fn vote_ignores_log_check_is_caught_by_leader_completeness() {
    assert_caught_at("vote_ignores_log_check", 1, "leader completeness");
}

#[test]
fn term_not_persisted_on_higher_term_is_caught_by_the_restart_check() {
    assert_caught_at(
        "term_not_persisted_on_higher_term",
        8,
        "durable state survives restart",
    );
}

#[test]
fn read_before_apply_is_caught_by_the_read_check() {
    assert_caught_at("read_before_apply", 2, "linearizable reads");
}

#[test]
fn torn_tail_not_truncated_is_caught_when_the_node_cannot_reopen_its_disk() {
    let report = run_seed_isolated(&RunOptions {
        bugs: Bugs::from_name("torn_tail_not_truncated").expect("a raft-core bug"),
        ..RunOptions::new(3)
    });
    match &report.outcome {
        Outcome::Failed(Failure::Node(what)) => {
            assert!(what.contains("cannot open its own healthy disk"), "{what}")
        }
        other => panic!("seed 3 was not caught: {}", describe(other)),
    }
    assert!(run_seed_isolated(&RunOptions::new(3)).passed());
}

#[test]
fn session_dedup_off_by_one_is_caught() {
    assert_caught_in("session_dedup_off_by_one", Workload::Kv);
}

/// Runs `name` on `seed`: it must fail the liveness phase or the settle phase with a message
/// containing `what`, and the seed must pass without the bug.
fn assert_liveness_caught_at(name: &str, seed: u64, what: &str) {
    let bugs = Bugs::from_name(name).expect("a raft-core bug");
    let report = run_seed_isolated(&RunOptions {
        bugs,
        ..RunOptions::new(seed)
    });
    match &report.outcome {
        Outcome::Failed(Failure::Liveness(s)) => assert!(s.contains(what), "{name}: {s}"),
        other => panic!("{name}: seed {seed} was not caught: {}", describe(other)),
    }
    assert!(run_seed_isolated(&RunOptions::new(seed)).passed());
}

#[test]
fn pre_vote_skipped_is_caught_by_the_term_inflation_check() {
    assert_caught_at("pre_vote_skipped", 1, "term inflation");
}

#[test]
fn vote_ignores_leader_lease_is_caught_by_the_leader_lease_check() {
    assert_caught_at("vote_ignores_leader_lease", 2, "leader lease");
}

#[test]
fn transfer_never_abandoned_is_caught_by_the_transfer_bound() {
    assert_caught_at("transfer_never_abandoned", 1, "transfer bound");
}

#[test]
fn heartbeat_ignores_commit_leaves_followers_behind_after_the_heal() {
    assert_liveness_caught_at("heartbeat_ignores_commit", 1, "did not catch up");
}

#[test]
fn heartbeat_every_tick_is_over_the_quiet_budget() {
    assert_liveness_caught_at("heartbeat_every_tick", 1, "did not quiet down");
}

#[test]
fn joint_from_snapshot_never_left_is_caught_by_the_settle_phase_configuration_rule() {
    // Seed 115 elects a leader that holds the joint configuration only in its snapshot: the
    // old leader died in the step that snapshotted it and appended the final configuration.
    assert_liveness_caught_at(
        "joint_from_snapshot_never_left",
        115,
        "configuration did not settle",
    );
}
