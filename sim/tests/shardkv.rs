//! Directed tests of the sharded kv under simulation, after the 6.824 ShardKV scenarios.
//!
//! Each test scripts a run through `sim::shard::run_scenario`: Joins, Leaves and Moves at
//! fixed simulated times, whole groups or single servers going down and coming back, on
//! top of the clerks' random Gets, Puts and Appends. Every run also applies the checks every
//! shardkv seed gets: the Raft checkers in each group, one group per shard, no shard lost in
//! a hand-over, per-key linearizability of the clerks' history (with a final read of every
//! key after the heal), recovery within the liveness bound, and bounded storage after GC.
//! The tests add what their scenario is about (which keys kept working while a group was
//! down, that snapshots happened, ...). Groups are named by world index: 0 is the
//! controller, `g` is gid `g`.

use linearizability::models::{KvInput, KvOutput};
use linearizability::Operation;
use raft_core::NodeId;
use sim::shard::{run_scenario, Scenario, ScenarioReport, Step};
use sim::Outcome;
use std::collections::BTreeMap;
use std::time::Duration;
use workloads::shardctrler::{key_to_shard, CtrlerCommand, Gid, ShardConfig, ShardCtrler};
use workloads::shardkv::ShardBugs;

fn s(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The configurations the controller creates for `steps` (the same deterministic
/// rebalance), so a test knows which group owned which key when.
fn configs(steps: &[Step]) -> Vec<ShardConfig> {
    let mut ctrler = ShardCtrler::new();
    for step in steps {
        let command = match step {
            Step::Join(gids) => CtrlerCommand::Join {
                groups: gids
                    .iter()
                    .map(|&g| (Gid(g), vec![NodeId(1), NodeId(2), NodeId(3)]))
                    .collect::<BTreeMap<_, _>>(),
            },
            Step::Leave(gids) => CtrlerCommand::Leave {
                gids: gids.iter().map(|&g| Gid(g)).collect(),
            },
            _ => continue,
        };
        ctrler.execute(command).expect("a valid script");
    }
    ctrler.configs().to_vec()
}

fn history(run: &ScenarioReport) -> &[Operation<KvInput, KvOutput>] {
    run.report.history.as_deref().expect("shardkv runs record")
}

/// Requests on keys `pick` accepts that returned within `[from, to)`.
fn completed(
    run: &ScenarioReport,
    from: Duration,
    to: Duration,
    pick: impl Fn(&str) -> bool,
) -> usize {
    let (from, to) = (from.as_micros() as u64, to.as_micros() as u64);
    history(run)
        .iter()
        .filter(|op| pick(&op.input.key) && op.output().is_some())
        .filter(|op| op.return_time.is_some_and(|t| t.0 >= from && t.0 < to))
        .count()
}

fn owned_by(config: &ShardConfig, gid: u32) -> impl Fn(&str) -> bool + '_ {
    move |key: &str| config.owner(key_to_shard(key)) == Gid(gid)
}

fn assert_passed(run: &ScenarioReport, what: &str) {
    assert_eq!(
        run.report.outcome,
        Outcome::Passed,
        "{what}: seed {}",
        run.report.seed
    );
}

/// Asserts that the run failed, caught by one of `checkers`.
fn assert_fails_with(run: &ScenarioReport, checkers: &[&str]) {
    match &run.report.outcome {
        Outcome::Failed(failure) => assert!(
            checkers.iter().any(|c| failure.to_string().contains(c)),
            "expected one of {checkers:?}, got {failure}"
        ),
        other => panic!("expected one of {checkers:?} to fail, got {other:?}"),
    }
}

fn scripted(seed: u64, groups: usize, script: Vec<(u64, Step)>) -> Scenario {
    Scenario {
        keys: 16,
        clients: 16,
        own_keys: true,
        script: script.into_iter().map(|(at, step)| (s(at), step)).collect(),
        ..Scenario::new(seed, groups)
    }
}

/// Goal: data really is sharded: with one of two groups down, exactly the keys of the other
/// group keep working, and everything is right once it is back (6.824 StaticShards).
/// Method: groups 1 and 2 join at once; each clerk uses its own key; group 2 is down from
/// 2 s to 4 s; count requests completed in that window per owner. Fails if a group answered
/// for keys it does not own (for instance if every group served every shard), if the live
/// group stopped serving, or if data was lost across the restart (final reads).
#[test]
fn static_shards_serve_only_their_own_keys() {
    let steps = [Step::Join(vec![1, 2])];
    let config = &configs(&steps)[1];
    for seed in 1..=3 {
        let mut scenario = scripted(
            seed,
            2,
            vec![
                (0, steps[0].clone()),
                (2_000, Step::Down(2)),
                (4_000, Step::Up(2)),
            ],
        );
        scenario.get_fraction = 0.5;
        let run = run_scenario(&scenario);
        assert_passed(&run, "static shards");
        let live = completed(&run, s(2_300), s(4_000), owned_by(config, 1));
        let dead = completed(&run, s(2_300), s(4_000), owned_by(config, 2));
        assert!(
            live > 10,
            "seed {seed}: group 1's keys stalled ({live} done)"
        );
        assert_eq!(
            dead, 0,
            "seed {seed}: group 2's keys answered while it was down"
        );
    }
}

/// Goal: shards and their data follow Joins and Leaves, and a group that left is not needed
/// any more (6.824 JoinLeave). Method: join 1, join 2, leave 1, then group 1 goes down for
/// good; every key must keep working with group 1 down. The same script with
/// `serve_before_arrival` planted must fail (one server per shard, or linearizability when
/// early writes are overwritten by the arriving data), which shows the checks bite on this
/// script.
#[test]
fn join_and_leave_move_data_and_the_leaver_is_not_needed() {
    let script = || {
        vec![
            (0, Step::Join(vec![1])),
            (1_000, Step::Join(vec![2])),
            (2_500, Step::Leave(vec![1])),
            (4_000, Step::Down(1)),
        ]
    };
    for seed in 1..=3 {
        let run = run_scenario(&scripted(seed, 2, script()));
        assert_passed(&run, "join and leave");
        assert!(run.changes >= 3, "{}", run.changes);
        let after = completed(&run, s(4_300), s(6_000), |_| true);
        assert!(
            after > 10,
            "seed {seed}: only {after} requests with group 1 gone"
        );
    }
    let caught = (1..=3).any(|seed| {
        let mut scenario = scripted(seed, 2, script());
        scenario.bugs = ShardBugs::from_name("serve_before_arrival").expect("a bug");
        let run = run_scenario(&scenario);
        if run.passed() {
            return false;
        }
        // Two groups serve the shard, or the early writes are overwritten when the data
        // arrives: whichever shows first.
        assert_fails_with(&run, &["one server per shard", "linearizability"]);
        true
    });
    assert!(
        caught,
        "serve_before_arrival went unnoticed on the join/leave script"
    );
}

/// Goal: migration state survives snapshots and full restarts (6.824 Snapshot). Method:
/// snapshots every 2 KiB of log; join 1, join 2 and 3, leave 1, leave 2, join 1; then every
/// replica group goes down at once and comes back. Fails if a snapshot loses shard state
/// (checked by the history and the final reads) or if no snapshot was taken at all.
#[test]
fn snapshots_and_full_restarts_keep_migration_state() {
    for seed in 1..=2 {
        let mut scenario = scripted(
            seed,
            3,
            vec![
                (0, Step::Join(vec![1])),
                (800, Step::Join(vec![2, 3])),
                (1_800, Step::Leave(vec![1])),
                (2_800, Step::Leave(vec![2])),
                (3_500, Step::Join(vec![1])),
                (4_500, Step::Down(1)),
                (4_500, Step::Down(2)),
                (4_500, Step::Down(3)),
                (5_000, Step::Up(1)),
                (5_000, Step::Up(2)),
                (5_000, Step::Up(3)),
            ],
        );
        scenario.small_snapshots = true;
        scenario.clients = 5;
        let run = run_scenario(&scenario);
        assert_passed(&run, "snapshots");
        assert!(run.compacted, "seed {seed}: no server took a snapshot");
    }
}

/// Goal: a server that misses several configuration changes catches up and applies them in
/// order, one at a time (6.824 MissChange). Method: server 0 of every group is down across
/// four changes, then server 1 of every group across two more. Fails on any check, or if the
/// changes did not all happen.
#[test]
fn servers_that_missed_configuration_changes_catch_up() {
    let mut script = vec![(0, Step::Join(vec![1, 2, 3]))];
    script.extend((1..=3).map(|g| (300, Step::DownServer(g, 0))));
    script.extend([
        (600, Step::Leave(vec![2])),
        (1_200, Step::Leave(vec![1])),
        (1_800, Step::Join(vec![1])),
        (2_400, Step::Join(vec![2])),
    ]);
    script.extend((1..=3).map(|g| (3_000, Step::UpServer(g, 0))));
    script.extend((1..=3).map(|g| (3_500, Step::DownServer(g, 1))));
    script.extend([(4_000, Step::Leave(vec![3])), (4_600, Step::Join(vec![3]))]);
    script.extend((1..=3).map(|g| (5_200, Step::UpServer(g, 1))));
    for seed in 1..=2 {
        let run = run_scenario(&scripted(seed, 3, script.clone()));
        assert_passed(&run, "missed changes");
        assert_eq!(run.changes, 7, "seed {seed}");
    }
}

/// Goal: exactly-once Appends from many concurrent clients through migrations and whole-group
/// restarts (6.824 Concurrent1-3). Method: 8 clerks with 5 ms think time append and read
/// while groups join, leave and restart. Duplicated or lost appends make the history
/// non-linearizable.
#[test]
fn concurrent_clients_through_migrations_and_restarts() {
    for seed in 1..=2 {
        let mut scenario = scripted(
            seed,
            3,
            vec![
                (0, Step::Join(vec![1])),
                (500, Step::Join(vec![2])),
                (1_000, Step::Join(vec![3])),
                (1_500, Step::Down(1)),
                (1_700, Step::Up(1)),
                (2_000, Step::Leave(vec![2])),
                (2_600, Step::Down(3)),
                (2_800, Step::Up(3)),
                (3_200, Step::Join(vec![2])),
                (3_800, Step::Leave(vec![1])),
            ],
        );
        scenario.clients = 8;
        scenario.think = s(5);
        scenario.get_fraction = 0.2;
        let run = run_scenario(&scenario);
        assert_passed(&run, "concurrent");
        assert!(history(&run).len() > 200, "{}", history(&run).len());
    }
}

/// Goal: correct values under an unreliable network and the seed's swarm faults (6.824
/// Unreliable1-3). Method: every group's faults on (partitions, crashes, pauses, disk and
/// clock faults as drawn), 15% of inter-group and clerk messages lost, churn throughout.
/// The history must be linearizable per key.
#[test]
fn unreliable_network_and_faults_keep_histories_linearizable() {
    let mut lost = 0;
    for seed in 1..=4 {
        let mut scenario = scripted(
            seed,
            3,
            vec![
                (0, Step::Join(vec![1, 2])),
                (1_000, Step::Join(vec![3])),
                (2_000, Step::Leave(vec![1])),
                (3_000, Step::Join(vec![1])),
                (4_000, Step::Leave(vec![2])),
            ],
        );
        scenario.faults = true;
        scenario.loss = 0.15;
        let run = run_scenario(&scenario);
        assert_passed(&run, "unreliable");
        lost += run.report.kv.map_or(0, |kv| kv.replies_lost);
    }
    assert!(lost > 0, "no message was lost");
}

/// Goal: a group deletes the shards it handed over, and only after the receiver confirmed
/// (6.824 Challenge1Delete). Method: churn moves every shard several times; the run's
/// storage check demands that each group finally holds only shards it owns. The same script
/// with `delete_before_confirm` planted and lossy messages must fail: the previous owner
/// deletes a shard whose transfer is then lost (caught as a lost shard).
#[test]
fn moved_shards_are_deleted_only_after_confirmation() {
    let script = || {
        vec![
            (0, Step::Join(vec![1])),
            (600, Step::Join(vec![2, 3])),
            (1_200, Step::Leave(vec![1])),
            (1_800, Step::Join(vec![1])),
            (2_400, Step::Leave(vec![2])),
            (3_000, Step::Leave(vec![3])),
            (3_600, Step::Join(vec![2, 3])),
        ]
    };
    for seed in 1..=2 {
        let mut scenario = scripted(seed, 3, script());
        scenario.loss = 0.2;
        assert_passed(&run_scenario(&scenario), "deletion");
    }
    let caught = (1..=6).any(|seed| {
        let mut scenario = scripted(seed, 3, script());
        scenario.loss = 0.3;
        scenario.bugs = ShardBugs::from_name("delete_before_confirm").expect("a bug");
        let run = run_scenario(&scenario);
        if run.passed() {
            return false;
        }
        assert_fails_with(&run, &["no shard lost"]);
        true
    });
    assert!(caught, "delete_before_confirm went unnoticed");
}

/// Goal: shards a configuration change does not touch keep serving while other shards
/// cannot move (6.824 Challenge2Unaffected). Method: join 1, join 2 (half the shards move to
/// 2); group 1 goes down and leaves, so its shards can never reach 2 while it is down. Keys
/// group 2 already owned must keep working; group 1's must not answer. Fails if a group
/// blocked all its shards during a reconfiguration.
#[test]
fn unaffected_shards_keep_serving_during_a_stuck_migration() {
    let steps = [Step::Join(vec![1]), Step::Join(vec![2])];
    let config = &configs(&steps)[2];
    for seed in 1..=3 {
        let run = run_scenario(&scripted(
            seed,
            2,
            vec![
                (0, steps[0].clone()),
                (1_000, steps[1].clone()),
                (2_500, Step::Down(1)),
                (2_600, Step::Leave(vec![1])),
            ],
        ));
        assert_passed(&run, "unaffected");
        let kept = completed(&run, s(3_000), s(6_000), owned_by(config, 2));
        let stuck = completed(&run, s(3_000), s(6_000), owned_by(config, 1));
        assert!(
            kept > 10,
            "seed {seed}: group 2's own keys stalled ({kept} done)"
        );
        assert_eq!(
            stuck, 0,
            "seed {seed}: group 1's keys answered while it was down"
        );
    }
}

/// Goal: a shard is served as soon as it arrives, even while other shards of the same
/// configuration are still missing (6.824 Challenge2Partial). Method: join 1, 2 and 3;
/// group 1 goes down; 1 and 3 leave together, so group 2 receives group 3's shards but not
/// group 1's. Keys of group 3's former shards must work through group 2 in the meantime.
#[test]
fn arrived_shards_are_served_during_a_partial_migration() {
    let steps = [Step::Join(vec![1, 2, 3])];
    let config = &configs(&steps)[1];
    for seed in 1..=3 {
        let run = run_scenario(&scripted(
            seed,
            3,
            vec![
                (0, steps[0].clone()),
                (1_500, Step::Down(1)),
                (1_600, Step::Leave(vec![1, 3])),
            ],
        ));
        assert_passed(&run, "partial");
        let moved = completed(&run, s(2_500), s(6_000), owned_by(config, 3));
        let stuck = completed(&run, s(2_500), s(6_000), owned_by(config, 1));
        assert!(
            moved > 10,
            "seed {seed}: group 3's former keys stalled ({moved} done)"
        );
        assert_eq!(
            stuck, 0,
            "seed {seed}: group 1's keys answered while it was down"
        );
    }
}

fn sweep_shardkv(seeds: std::ops::Range<u64>, bug: Option<&str>) -> sim::sweep::Summary {
    let mut options = sim::sweep::SweepOptions::new(seeds, 2, sim::workload::Workload::ShardKv);
    if let Some(name) = bug {
        options.service_bugs = sim::bugs::ServiceBugs::from_name(name).expect("a bug");
        options.bug_name = Some(name.to_string());
    }
    sim::sweep::sweep(&options, |_| {})
}

/// Goal: the seed-driven shardkv workload (random groups, churn and every group's swarm
/// faults) passes on plain seeds and catches both planted canaries. Method: sweep a few
/// dozen seeds without bugs (all must pass), then each `ShardBugs` canary over a few seeds
/// (at least one must fail, by the check the canary targets).
#[test]
fn swarm_seeds_pass_and_both_canaries_are_caught() {
    let plain = sweep_shardkv(1..41, None);
    assert!(plain.all_passed(), "{:?}", plain.failed);
    let early = sweep_shardkv(1..11, Some("serve_before_arrival"));
    assert!(early.failed.len() >= 5, "{:?}", early.failed);
    let deleted = sweep_shardkv(1..11, Some("delete_before_confirm"));
    assert!(
        deleted
            .failed
            .iter()
            .any(|f| f.failure.contains("no shard lost")),
        "{:?}",
        deleted.failed
    );
}

/// Goal: a failing sharded seed is reported under the seed it was run with, so its reproduce
/// command replays it (the groups run on seeds derived from it, which reproduce nothing).
/// Method: seed 1 with `serve_before_arrival` fails; its report must name seed 1.
#[test]
fn a_failing_sharded_seed_is_reported_under_its_own_seed() {
    let (bugs, service_bugs) = sim::bugs::plant(Some("serve_before_arrival"));
    let opts = sim::RunOptions {
        bugs,
        service_bugs,
        workload: sim::workload::Workload::ShardKv,
        ..sim::RunOptions::new(1)
    };
    let report = sim::run_seed_isolated(&opts);
    assert!(!report.passed(), "seed 1 no longer fails with the bug");
    assert_eq!(report.seed, 1);
}
