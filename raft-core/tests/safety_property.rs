//! Property test: random fault schedules (message loss, duplication, reordering, partitions,
//! crashes with lost or torn unsynced writes, restarts) never break the four safety properties:
//! election safety, log matching, leader completeness and state machine safety. The harness
//! checks them after every step; log matching is also checked every few operations. Schedules
//! also change the membership (add, promote, remove and replace members; up to 7 replicas),
//! transfer leadership, and every completed read is checked against the writes applied
//! anywhere before it started (a read must not miss them), with ReadIndex or lease reads under
//! skewed clocks.

mod common;

use common::Cluster;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use raft_core::{CrashMode, Event, LogIndex, MembershipChange, NodeId, Persistence, ReadId};

#[derive(Clone, Debug)]
enum Op {
    Ticks(u8),
    Deliver(u8),
    Propose(u8),
    Read(u8),
    Crash(u8, u8),
    Restart(u8),
    Partition(u8),
    Heal,
    Lossy(u8),
    DeliverAll,
    Transfer(u8),
    Member(u8, u8, u8),
    /// Completes the pending fsyncs of one node (asynchronous persistence only).
    Sync(u8),
}

/// A read in flight: the node, its id, the highest index applied anywhere when it started
/// (it must see at least that), and how many events the node had reported by then.
struct PendingRead {
    node: NodeId,
    id: ReadId,
    floor: LogIndex,
    events_seen: usize,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1u8..5).prop_map(Op::Ticks),
        8 => (1u8..60).prop_map(Op::Deliver),
        6 => any::<u8>().prop_map(Op::Propose),
        1 => any::<u8>().prop_map(Op::Read),
        2 => (0u8..5, 0u8..3).prop_map(|(n, m)| Op::Crash(n, m)),
        3 => (0u8..5).prop_map(Op::Restart),
        1 => any::<u8>().prop_map(Op::Partition),
        1 => Just(Op::Heal),
        1 => (0u8..4).prop_map(Op::Lossy),
        3 => Just(Op::DeliverAll),
        1 => any::<u8>().prop_map(Op::Transfer),
        2 => (0u8..4, any::<u8>(), any::<u8>()).prop_map(|(k, a, b)| Op::Member(k, a, b)),
        6 => (0u8..7).prop_map(Op::Sync),
    ]
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// `flags` bit 0 turns PreVote off, bit 1 turns CheckQuorum off, bit 2 sends one entry per
/// AppendEntries (which exposes commit-rule bugs that batched appends hide), bit 3 turns on
/// dynamic batch sizes, bit 4 turns on lease reads (when CheckQuorum is on) with clock rates
/// skewed within the declared 10 % drift bound, bit 5 makes persistence asynchronous: a write
/// stays unsynced, and a crash can lose it, until a `Sync` operation completes the node's
/// fsyncs (otherwise each step syncs before it returns).
fn run(seed: u64, nodes: u64, flags: u8, ops: &[Op]) {
    let lease = flags & 16 != 0 && flags & 2 == 0;
    let rates: &[i64] = if lease {
        &[-90_000, 90_000, 0, 60_000, -60_000]
    } else {
        &[]
    };
    let persistence = if flags & 32 != 0 {
        Persistence::Asynchronous
    } else {
        Persistence::Synchronous
    };
    let mut c = Cluster::with_persistence(nodes, seed, 100_000, rates, persistence, |config| {
        config.snapshot_threshold_bytes = 2048;
        config.snapshot_chunk_bytes = 256;
        config.max_entries_per_append = if flags & 4 == 0 { 8 } else { 1 };
        config.max_inflight_appends = 4;
        // Short timeouts so that schedules see many elections.
        config.election_ticks_min = 3;
        config.election_ticks_max = 7;
        config.pre_vote = flags & 1 == 0;
        config.check_quorum = flags & 2 == 0;
        config.dynamic_append_batch = flags & 8 != 0;
        config.lease_reads = lease;
        // `RAFT_PLANTED_BUG=<name>` turns on one planted bug, to check this test finds it.
        if let Ok(name) = std::env::var("RAFT_PLANTED_BUG") {
            config.bugs = raft_core::Bugs::from_name(&name).expect("known bug name");
        }
    });
    c.reorder = true;
    c.duplicate_rate = 0.05;
    let mut reads = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        apply(&mut c, step, op, &mut reads);
        check_reads(&c, &mut reads);
        if step % 16 == 0 {
            c.check_log_matching();
        }
    }
    // Liveness sanity: once healed and restarted, the cluster elects a leader and commits.
    c.heal();
    c.drop_rate = 0.0;
    for id in c.ids.clone() {
        if c.down.contains_key(&id) {
            c.start(id).expect("recovers");
        }
    }
    // Liveness: a leader is elected and every member of its configuration applies a final
    // write. A transfer in progress or a leader stepping down after its own removal may
    // refuse or drop the write, so it is proposed again every 20 ticks until it lands.
    let mut done = None;
    for tick in 0..400 {
        c.sync_all();
        c.run_ticks(1);
        c.sync_all();
        c.deliver_all();
        let Some(leader) = c.leader() else {
            continue;
        };
        let members = c.node(leader).membership().members();
        let applied = |id: &NodeId| c.node(*id).state_machine().contains(b"final");
        if members.iter().all(applied) {
            done = Some(leader);
            break;
        }
        if tick % 20 == 0 {
            c.propose(b"final");
        }
    }
    let Some(leader) = done else {
        panic!(
            "the final write did not reach every member:\n{}",
            describe(&c)
        );
    };
    if std::env::var("RAFT_PROPERTY_STATS").is_ok() {
        eprintln!(
            "ops {} applied {} leaders {} membership {:?}",
            ops.len(),
            c.applied.len(),
            c.leaders.len(),
            c.node(leader).membership()
        );
    }
    c.check_log_matching();
}

/// Fails on a completed read whose index misses a write applied before the read started;
/// forgets reads that failed.
fn check_reads(c: &Cluster, reads: &mut Vec<PendingRead>) {
    reads.retain(|read| {
        let events = c
            .events
            .get(&read.node)
            .map_or(&[][..], |e| &e[read.events_seen..]);
        for event in events {
            match event {
                Event::ReadReady { id, index } if *id == read.id => {
                    assert!(
                        *index >= read.floor,
                        "stale read on {}: index {index} misses applied index {}",
                        read.node,
                        read.floor
                    );
                    return false;
                }
                Event::ReadFailed { id, .. } if *id == read.id => return false,
                _ => {}
            }
        }
        true
    });
}

/// Every live node's status and configuration, for failure messages.
fn describe(c: &Cluster) -> String {
    let states: Vec<String> = c
        .nodes
        .iter()
        .map(|(id, n)| format!("{id}: {:?} {:?}", n.status(), n.membership()))
        .collect();
    states.join("\n")
}

/// Asks the leader for a random membership change (most are refused when one is in flight).
fn change_membership(c: &mut Cluster, kind: u8, a: u8, b: u8) {
    let Some(leader) = c.leader() else {
        return;
    };
    let m = c.node(leader).membership().clone();
    let pick = |set: &[NodeId], n: u8| (!set.is_empty()).then(|| set[n as usize % set.len()]);
    let change = match kind {
        0 if c.ids.len() < 7 => {
            let id = NodeId(c.ids.len() as u64 + 1);
            c.add_node(id);
            Some(MembershipChange::AddLearner(id))
        }
        1 => pick(&m.learners, a).map(MembershipChange::PromoteLearner),
        2 => pick(&m.members(), a).map(MembershipChange::RemoveNode),
        3 => pick(&m.voters, a)
            .zip(pick(&m.learners, b))
            .map(|(old, new)| MembershipChange::ReplaceVoter { old, new }),
        _ => None,
    };
    if let Some(change) = change {
        let _ = c.with_node(leader, |node| node.change_membership(change));
    }
}

/// Carries out one scheduled operation.
fn apply(c: &mut Cluster, step: usize, op: &Op, reads: &mut Vec<PendingRead>) {
    let pick = |c: &Cluster, n: u8| c.ids[n as usize % c.ids.len()];
    match *op {
        Op::Ticks(n) => {
            for _ in 0..n {
                c.tick();
            }
        }
        Op::Deliver(n) => {
            for _ in 0..n {
                c.deliver_one();
            }
        }
        Op::Propose(v) => {
            let data = [v, step as u8, (step >> 8) as u8];
            c.propose(&data);
        }
        Op::Read(n) => {
            let id = pick(c, n);
            if c.nodes.contains_key(&id) {
                let floor = c.applied.keys().next_back().copied().unwrap_or(LogIndex(0));
                let events_seen = c.events.get(&id).map_or(0, Vec::len);
                if let Ok(read) = c.with_node(id, |node| node.read_barrier()) {
                    reads.push(PendingRead {
                        node: id,
                        id: read,
                        floor,
                        events_seen,
                    });
                }
            }
        }
        Op::Crash(n, mode) => {
            let mode = match mode {
                0 => CrashMode::DropUnsynced,
                1 => CrashMode::KeepUnsynced,
                _ => CrashMode::TornPrefix { seed: step as u64 },
            };
            let id = pick(c, n);
            // A restarted node numbers its reads from 1 again.
            reads.retain(|read| read.node != id);
            c.crash(id, mode);
        }
        Op::Restart(n) => {
            let id = pick(c, n);
            if c.down.contains_key(&id) {
                c.start(id).expect("a crashed node always recovers");
            }
        }
        Op::Partition(mask) => {
            let group: Vec<NodeId> = c
                .ids
                .iter()
                .copied()
                .filter(|id| mask & (1 << (id.0 % 8)) != 0)
                .collect();
            c.partition(&group);
        }
        Op::Heal => c.heal(),
        Op::Sync(n) => {
            let id = pick(c, n);
            c.sync(id);
        }
        Op::DeliverAll => c.deliver_all(),
        Op::Lossy(level) => c.drop_rate = f64::from(level) * 0.05,
        Op::Member(kind, a, b) => change_membership(c, kind, a, b),
        Op::Transfer(n) => {
            if let Some(leader) = c.leader() {
                let to = pick(c, n);
                let _ = c.with_node(leader, |node| node.transfer_leadership(to));
            }
        }
    }
}

proptest! {
    // A fixed seed keeps `cargo test` deterministic; failures are not persisted to files. The
    // default 256 cases find `RAFT_PLANTED_BUG=ack_before_fsync` (asynchronous persistence and a
    // crash before the fsync); `vote_before_persist` and `leader_counts_unsynced_entry` survive
    // 1,000 cases and are left to the simulator's checkers.
    // Longer runs: RAFT_PROPERTY_CASES=5000 RAFT_PROPERTY_SEED=<n> cargo test --release ...
    #![proptest_config(ProptestConfig {
        cases: env_u64("RAFT_PROPERTY_CASES").unwrap_or(256) as u32,
        max_shrink_iters: 200,
        rng_seed: RngSeed::Fixed(env_u64("RAFT_PROPERTY_SEED").unwrap_or(0x5eed_0001)),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_fault_schedules_preserve_safety(
        seed in any::<u64>(),
        nodes in prop_oneof![Just(3u64), Just(5u64)],
        flags in 0u8..64,
        ops in prop::collection::vec(op(), 50..400),
    ) {
        run(seed, nodes, flags, &ops);
    }
}
