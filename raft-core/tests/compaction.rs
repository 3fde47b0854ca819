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
