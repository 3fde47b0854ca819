//! State machine safety (Raft §5.4.3): no two nodes apply different commands at one index, and
//! commit and applied indexes never go backwards within one process lifetime.
//!
//! Applied entries are compared by fingerprint of the command and of the state machine's
//! result, so a node that restored a wrong snapshot and then applies the right commands is
//! caught too (its results differ).

use super::{fingerprint, AppliedEntry, Checked, NodeObservation, Violation};
use raft_core::{LogIndex, NodeId, Term};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AppliedRecord {
    term: Term,
    data: u64,
    result: u64,
    node: NodeId,
}

#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    incarnation: u64,
    commit: LogIndex,
    applied: LogIndex,
    last_applied_event: LogIndex,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ApplyChecker {
    applied: BTreeMap<LogIndex, AppliedRecord>,
    progress: BTreeMap<NodeId, Progress>,
}

fn violation(checker: &'static str, at: Duration, detail: String) -> Violation {
    Violation {
        checker,
        at,
        detail,
    }
}

impl ApplyChecker {
    /// The last index at or below `index` at which some node applied a command (noops and
    /// configuration entries apply with no command bytes).
    pub fn last_command_through(&self, index: LogIndex) -> Option<LogIndex> {
        let empty = fingerprint(&[]);
        self.applied
            .range(..=index)
            .rev()
            .find(|(_, record)| record.data != empty)
            .map(|(index, _)| *index)
    }

    /// Number of distinct indexes applied anywhere.
    pub fn applied_count(&self) -> usize {
        self.applied.len()
    }

    /// Checks that commit and applied indexes did not go backwards since the last observation
    /// of the same incarnation, and that applied never passes commit.
    pub fn observe(&mut self, obs: &NodeObservation<'_>) -> Checked {
        let s = &obs.status;
        if s.applied > s.commit {
            let detail = format!("n{} applied {} beyond commit {}", s.id, s.applied, s.commit);
            return Err(violation("applied within commit", obs.at, detail));
        }
        let p = self.progress.entry(s.id).or_default();
        if p.incarnation == obs.incarnation {
            if s.commit < p.commit {
                let detail = format!("n{} commit went from {} to {}", s.id, p.commit, s.commit);
                return Err(violation("commit never goes backwards", obs.at, detail));
            }
            if s.applied < p.applied {
                let detail = format!("n{} applied went from {} to {}", s.id, p.applied, s.applied);
                return Err(violation("applied never goes backwards", obs.at, detail));
            }
        } else {
            *p = Progress {
                incarnation: obs.incarnation,
                ..Progress::default()
            };
        }
        p.commit = s.commit;
        p.applied = s.applied;
        Ok(())
    }

    /// Checks one applied entry against what other nodes applied at the same index.
    pub fn applied(&mut self, at: Duration, node: NodeId, entry: AppliedEntry<'_>) -> Checked {
        let p = self.progress.entry(node).or_default();
        if p.incarnation != entry.incarnation {
            *p = Progress {
                incarnation: entry.incarnation,
                ..Progress::default()
            };
        }
        if entry.index <= p.last_applied_event {
            let detail = format!(
                "n{node} applied index {} after index {}",
                entry.index, p.last_applied_event
            );
            return Err(violation("applied never goes backwards", at, detail));
        }
        p.last_applied_event = entry.index;
        let record = AppliedRecord {
            term: entry.term,
            data: fingerprint(entry.data),
            result: fingerprint(entry.result),
            node,
        };
        let known = *self.applied.entry(entry.index).or_insert(record);
        if (known.term, known.data) != (record.term, record.data) {
            let detail = format!(
                "index {}: n{} applied term {} command {:016x}, n{node} applied term {} command \
                 {:016x}",
                entry.index, known.node, known.term, known.data, record.term, record.data
            );
            return Err(violation("state machine safety", at, detail));
        }
        if known.result != record.result {
            let detail = format!(
                "index {}: n{} and n{node} applied the same command with different results \
                 (diverged state machines)",
                entry.index, known.node
            );
            return Err(violation("state machine safety", at, detail));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{log, obs, status};
    use super::*;
    use raft_core::Role;

    fn entry<'a>(index: u64, term: u64, data: &'a [u8], result: &'a [u8]) -> AppliedEntry<'a> {
        AppliedEntry {
            incarnation: 0,
            index: LogIndex(index),
            term: Term(term),
            data,
            result,
        }
    }

    #[test]
    fn same_commands_pass() {
        let mut c = ApplyChecker::default();
        c.applied(Duration::ZERO, NodeId(1), entry(1, 1, b"a", b"r1"))
            .unwrap();
        c.applied(Duration::ZERO, NodeId(2), entry(1, 1, b"a", b"r1"))
            .unwrap();
        c.applied(Duration::ZERO, NodeId(2), entry(2, 1, b"b", b"r2"))
            .unwrap();
        assert_eq!(c.applied_count(), 2);
    }

    #[test]
    fn different_commands_at_one_index_are_caught() {
        let mut c = ApplyChecker::default();
        c.applied(Duration::ZERO, NodeId(1), entry(1, 1, b"a", b""))
            .unwrap();
        let err = c
            .applied(Duration::ZERO, NodeId(2), entry(1, 2, b"b", b""))
            .unwrap_err();
        assert_eq!(err.checker, "state machine safety");
    }

    #[test]
    fn diverged_results_are_caught() {
        let mut c = ApplyChecker::default();
        c.applied(Duration::ZERO, NodeId(1), entry(1, 1, b"a", b"x"))
            .unwrap();
        let err = c
            .applied(Duration::ZERO, NodeId(2), entry(1, 1, b"a", b"y"))
            .unwrap_err();
        assert!(err.detail.contains("different results"), "{err}");
    }

    #[test]
    fn reapplying_within_one_lifetime_is_caught_but_not_after_restart() {
        let mut c = ApplyChecker::default();
        c.applied(Duration::ZERO, NodeId(1), entry(2, 1, b"a", b""))
            .unwrap();
        assert!(c
            .applied(Duration::ZERO, NodeId(1), entry(2, 1, b"a", b""))
            .is_err());
        let mut again = entry(2, 1, b"a", b"");
        again.incarnation = 1;
        c.applied(Duration::ZERO, NodeId(1), again).unwrap();
    }

    #[test]
    fn commit_going_backwards_is_caught() {
        let mut c = ApplyChecker::default();
        let l = log(&[1, 1, 1]);
        c.observe(&obs(status(1, Role::Follower, 1, 3, 3), &l))
            .unwrap();
        let err = c
            .observe(&obs(status(1, Role::Follower, 1, 2, 3), &l))
            .unwrap_err();
        assert_eq!(err.checker, "commit never goes backwards");
        let mut restarted = obs(status(1, Role::Follower, 1, 1, 3), &l);
        restarted.incarnation = 1;
        c.observe(&restarted).unwrap();
    }

    #[test]
    fn applied_beyond_commit_is_caught() {
        let mut c = ApplyChecker::default();
        let l = log(&[1]);
        let mut s = status(1, Role::Follower, 1, 0, 1);
        s.applied = LogIndex(1);
        assert!(c.observe(&obs(s, &l)).is_err());
    }
}
