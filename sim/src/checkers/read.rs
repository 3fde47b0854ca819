//! Read freshness: a linearizable read must reflect every write committed before it began.
//!
//! When the client starts a read barrier it records the highest commit index any node has
//! reported so far (any of those entries may already have been acknowledged to a client). The
//! index the barrier returns must be at least that bound; a leader that answers from a stale
//! commit index (a deposed leader in a minority partition, say) fails the check.

use super::{Checked, Violation};
use raft_core::{LogIndex, NodeId};
use std::time::Duration;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ReadChecker {
    max_commit: LogIndex,
    /// Reads checked so far.
    pub reads_checked: u64,
}

impl ReadChecker {
    /// Notes a commit index reported by some node.
    pub fn observe_commit(&mut self, commit: LogIndex) {
        self.max_commit = self.max_commit.max(commit);
    }

    /// The bound a read starting now must reach.
    pub fn read_bound(&self) -> LogIndex {
        self.max_commit
    }

    /// Checks a completed read barrier that started with `bound`.
    pub fn read_ready(
        &mut self,
        at: Duration,
        node: NodeId,
        bound: LogIndex,
        index: LogIndex,
    ) -> Checked {
        self.reads_checked += 1;
        if index < bound {
            return Err(Violation {
                checker: "linearizable reads",
                at,
                detail: format!(
                    "n{node} served a read at index {index}, but index {bound} was already \
                     committed when the read began (stale read)"
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_reads_pass_and_stale_reads_are_caught() {
        let mut c = ReadChecker::default();
        c.observe_commit(LogIndex(5));
        c.observe_commit(LogIndex(3));
        let bound = c.read_bound();
        assert_eq!(bound, LogIndex(5));
        c.read_ready(Duration::ZERO, NodeId(1), bound, LogIndex(5))
            .unwrap();
        c.read_ready(Duration::ZERO, NodeId(1), bound, LogIndex(9))
            .unwrap();
        let err = c
            .read_ready(Duration::ZERO, NodeId(2), bound, LogIndex(4))
            .unwrap_err();
        assert!(err.detail.contains("stale read"), "{err}");
        assert_eq!(c.reads_checked, 3);
    }
}
