//! The storage bound checked at the end of a run: auto-compaction keeps every node's log small,
//! on disk and in memory.

use crate::checkers::Violation;
use crate::cluster::World;
use crate::service::Service;
use raft_core::NodeId;
use std::time::Duration;

/// How far beyond its snapshot threshold (or one WAL segment, at least 4 KiB, if larger) a
/// quiet node's log may be (see [`World::check_log_bound`]). Compaction deletes only whole
/// segments covered by the snapshot; the MIT 6.824 tests allow the same factor. The raft and
/// kv workloads check it. shardkv does not: its groups' leaders propose the same
/// reconfiguration entry (with a whole shard) again on every poll until it applies, so a
/// group's log can hold tens of kilobytes past a 2 KiB threshold.
pub const LOG_BOUND_FACTOR: u64 = 8;

/// raft-core's smallest WAL segment: a log can keep this much past a snapshot.
const SEGMENT_BYTES_MIN: u64 = 4 << 10;

impl<S: Service> World<S> {
    /// End of run, once the cluster is quiet: every running node's write-ahead log is within
    /// [`LOG_BOUND_FACTOR`] times its snapshot threshold. A node compacts its log into a
    /// snapshot when the log passes the threshold, so a log far beyond it means compaction
    /// (or the removal of compacted segments) stopped working.
    pub fn check_log_bound(&self) -> Result<(), Violation> {
        for slot in &self.slots {
            let guard = slot.node.borrow();
            let Some(node) = guard.as_ref() else {
                continue;
            };
            let threshold = self.raft_config(slot.id).snapshot_threshold_bytes;
            log_bound(slot.id, node.log_bytes(), threshold, self.now())?;
            // The entries in memory too: the disk may be compacted while memory is not.
            let memory = node.raft().log_entries_bytes();
            log_bound(slot.id, memory, threshold, self.now()).map_err(|mut v| {
                v.detail = format!("in memory: {}", v.detail);
                v
            })?;
        }
        Ok(())
    }
}

/// The rule of [`World::check_log_bound`] for one node.
fn log_bound(id: NodeId, bytes: u64, threshold: u64, at: Duration) -> Result<(), Violation> {
    if bytes <= LOG_BOUND_FACTOR * threshold.max(SEGMENT_BYTES_MIN) {
        return Ok(());
    }
    Err(Violation {
        checker: "log bounded by snapshots",
        at,
        detail: format!(
            "n{id} keeps {bytes} bytes of log, more than {LOG_BOUND_FACTOR} times its snapshot \
             threshold of {threshold} bytes (or of one {SEGMENT_BYTES_MIN}-byte WAL segment)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_beyond_the_bound_is_a_violation() {
        let at = Duration::ZERO;
        assert!(log_bound(NodeId(1), 8 * 8192, 8192, at).is_ok());
        let err = log_bound(NodeId(2), 8 * 8192 + 1, 8192, at).unwrap_err();
        assert_eq!(err.checker, "log bounded by snapshots");
        assert!(err.detail.contains("n2 keeps 65537 bytes"), "{err}");
        // A threshold under one segment is measured against the segment.
        assert!(log_bound(NodeId(3), 8 * 4096, 2048, at).is_ok());
        assert!(log_bound(NodeId(3), 8 * 4096 + 1, 2048, at).is_err());
    }
}
