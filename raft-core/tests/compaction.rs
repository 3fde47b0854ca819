//! Log compaction: once a replica has applied its log, a quiet cluster does not leave that
//! log on disk (kv seed 96835).

mod common;

use common::Cluster;

/// Goal: entries that a snapshot left in the log because they were not yet applied are
/// compacted once they are, even if no new entry arrives. Method: an isolated leader takes
/// twelve 700-byte proposals; after healing, appends of one entry each commit them one by
/// one, so the leader snapshots while most of them are still waiting; the cluster then goes
/// quiet.
#[test]
fn a_tail_applied_after_a_snapshot_is_compacted_without_new_writes() {
    let mut c = Cluster::with_config(3, 90, |config| {
        config.snapshot_threshold_bytes = 1024;
        config.max_entries_per_append = 1;
    });
    let leader = c.elect();
    c.isolate(leader);
    for i in 0..12u8 {
        c.with_node(leader, |n| n.propose(vec![i; 700])).unwrap();
    }
    assert!(c.node(leader).log_bytes() > 8 * 1024, "the tail is on disk");
    c.heal();
    c.run_ticks(10);
    let node = c.node(leader);
    let status = node.status();
    assert_eq!(status.applied, status.last_index, "everything is applied");
    assert!(
        node.raft().snapshot_index() > raft_core::LogIndex(1),
        "a snapshot was taken"
    );
    assert_eq!(
        node.raft().snapshot_index(),
        status.applied,
        "the snapshot covers every applied entry; {} log bytes left",
        node.log_bytes()
    );
    assert!(
        node.log_bytes() <= 1024,
        "{} log bytes left",
        node.log_bytes()
    );
}

/// Goal: `Node::snapshot_now` compacts at the applied index whatever the threshold, and the
/// compacted node still serves a follower that needs the snapshot. Method: with a threshold
/// no log here reaches, commit a few entries, snapshot the leader by hand, then let a
/// follower that missed them catch up.
#[test]
fn snapshot_now_compacts_at_the_applied_index_below_the_threshold() {
    let mut c = Cluster::with_config(3, 91, |config| {
        config.snapshot_threshold_bytes = 64 << 20;
    });
    let leader = c.elect();
    let behind = raft_core::NodeId(leader.0 % 3 + 1);
    c.isolate(behind);
    for i in 0..5u8 {
        c.with_node(leader, |n| n.propose(vec![i; 100])).unwrap();
    }
    c.run_ticks(5);
    let applied = c.node(leader).status().applied;
    assert!(applied > raft_core::LogIndex(5), "the proposals committed");
    assert!(
        c.with_node(leader, |n| n.snapshot_now()).unwrap(),
        "a snapshot was taken"
    );
    assert_eq!(c.node(leader).raft().snapshot_index(), applied);
    assert!(
        !c.with_node(leader, |n| n.snapshot_now()).unwrap(),
        "nothing applied since: no second snapshot"
    );
    c.heal();
    c.run_ticks(20);
    assert_eq!(
        c.node(behind).status().applied,
        applied,
        "the follower caught up"
    );
}
