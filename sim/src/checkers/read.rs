//! Read freshness: a linearizable read must reflect every write committed before it began.
//!
//! When the client starts a read barrier it records the highest commit index any node has
//! reported so far (any of those entries may already have been acknowledged to a client). The
//! index the barrier returns must be at least that bound; a leader that answers from a stale
//! commit index (a deposed leader in a minority partition, say) fails the check.
//!
//! A fresh index is not enough: the read is served from the node's state machine, so that
//! must have caught up with the index too. For the raw workload the state machine reports
//! the index of the last command it applied, and a served read must find there every command
//! at or below its read index that any node applied (a `ReadReady` reported before the
//! applied index reaches the read index fails this check).

use super::{Checked, Violation};
use raft_core::{LogIndex, NodeId};
use std::time::Duration;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ReadChecker {
    max_commit: LogIndex,
    /// Reads checked so far.
    pub reads_checked: u64,
    /// Served states checked so far (raw workload only).
    pub states_checked: u64,
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

    /// Checks the state a completed read at `index` is served from: the node's applied index
    /// (`node_applied`) reached `index`, and its state machine, whose last command is
    /// `sm_last_command`, holds `history_last_command`, the last command at or below `index`
    /// that any node applied. (A command at or below `index` that nobody has applied yet
    /// cannot be missed by a node whose applied index reached `index`, as applying is what
    /// reports it.)
    pub fn served_state(
        &mut self,
        at: Duration,
        node: NodeId,
        index: LogIndex,
        node_applied: LogIndex,
        sm_last_command: LogIndex,
        history_last_command: Option<LogIndex>,
    ) -> Checked {
        self.states_checked += 1;
        let stale = |detail: String| {
            Err(Violation {
                checker: "linearizable reads",
                at,
                detail,
            })
        };
        if node_applied < index {
            return stale(format!(
                "n{node} served a read at index {index} having applied only up to \
                 {node_applied} (read served before its index was applied)"
            ));
        }
        if let Some(command) = history_last_command.filter(|c| *c > sm_last_command) {
            return stale(format!(
                "n{node} served a read at index {index} from a state machine whose last \
                 command is at {sm_last_command}, missing the command at {command}"
            ));
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

    /// A read reported ready before its index is applied, or served from a state machine
    /// that lacks a command at or below its index, is caught; noops and configuration
    /// entries after the last command need not be "in" the state machine.
    #[test]
    fn reads_served_from_a_state_behind_their_index_are_caught() {
        let mut c = ReadChecker::default();
        let at = Duration::ZERO;
        let (n, i) = (NodeId(1), LogIndex);
        // Caught up: applied 7, last command 6 (7 is a noop), history agrees.
        c.served_state(at, n, i(7), i(7), i(6), Some(i(6))).unwrap();
        c.served_state(at, n, i(7), i(9), i(9), Some(i(6))).unwrap();
        // No command at all yet.
        c.served_state(at, n, i(2), i(2), i(0), None).unwrap();
        // Ready before apply.
        let err = c
            .served_state(at, n, i(7), i(5), i(5), Some(i(5)))
            .unwrap_err();
        assert!(err.detail.contains("before its index was applied"), "{err}");
        // The node claims index 7 applied, but its state machine misses command 7.
        let err = c
            .served_state(at, n, i(7), i(7), i(6), Some(i(7)))
            .unwrap_err();
        assert!(err.detail.contains("missing the command at 7"), "{err}");
        assert_eq!(c.states_checked, 5);
    }
}
