//! Log properties: log matching (Raft §5.3), leader completeness (§5.4) and "a committed entry
//! is never lost".
//!
//! The checker keeps its own record of every committed position: the entry's term and the term
//! in which the commit was first seen. A node's commit index says "everything up to here is
//! committed", so whenever it advances, the checker reads the newly committed terms from that
//! node's log and compares them with the record. Two nodes reporting different terms at one
//! committed index means a committed entry was overwritten.

use super::{Checked, LogView, NodeObservation, Violation};
use raft_core::{LogIndex, NodeId, Role, Status, Term};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What the checker knows about one committed log position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Committed {
    /// Term of the entry.
    term: Term,
    /// Term of the first node that reported the position committed: an upper bound on the term
    /// in which the commit happened, so leaders of later terms must hold the entry.
    seen_in: Term,
    /// The node that reported it first.
    reporter: NodeId,
}

/// A node as given to the whole-cluster checks.
pub struct LogSnapshot<'a> {
    /// The node's status.
    pub status: Status,
    /// Its log.
    pub log: &'a dyn LogView,
}

/// Checks the log properties; see the module documentation.
#[derive(Debug, Default)]
pub struct LogChecker {
    committed: BTreeMap<LogIndex, Committed>,
    /// Per node: the incarnation and commit index up to which its log has been compared.
    checked_upto: BTreeMap<NodeId, (u64, LogIndex)>,
    /// `(leader, term)` pairs whose log was checked for completeness.
    leaders_checked: BTreeSet<(NodeId, Term)>,
    /// Per node: incarnation and commit index at the last observation.
    last_commit: BTreeMap<NodeId, (u64, LogIndex)>,
}

fn violation(checker: &'static str, at: Duration, detail: String) -> Violation {
    Violation {
        checker,
        at,
        detail,
    }
}

impl LogChecker {
    /// Highest committed index seen anywhere.
    pub fn max_committed(&self) -> LogIndex {
        self.committed
            .keys()
            .next_back()
            .copied()
            .unwrap_or(LogIndex(0))
    }

    /// Records newly committed positions and checks leader completeness for new leaders.
    pub fn observe(&mut self, obs: &NodeObservation<'_>) -> Checked {
        let status = &obs.status;
        if status.commit > status.last_index {
            return Err(violation(
                "committed entry never lost",
                obs.at,
                format!(
                    "n{} has commit index {} but its log ends at {}",
                    status.id, status.commit, status.last_index
                ),
            ));
        }
        self.check_commit_rule(obs)?;
        self.record_commits(obs)?;
        if status.role == Role::Leader && self.leaders_checked.insert((status.id, status.term)) {
            self.check_leader(obs)?;
        }
        Ok(())
    }

    /// Raft §5.4.2 (Figure 8): a leader advances its commit index only to an entry of its own
    /// term; older entries become committed indirectly. Counting replicas of an older entry can
    /// commit something a later leader overwrites.
    fn check_commit_rule(&mut self, obs: &NodeObservation<'_>) -> Checked {
        let s = &obs.status;
        let previous = self.last_commit.insert(s.id, (obs.incarnation, s.commit));
        let advanced = match previous {
            Some((incarnation, commit)) => incarnation == obs.incarnation && s.commit > commit,
            None => false,
        };
        if s.role != Role::Leader || !advanced {
            return Ok(());
        }
        let term_at_commit = obs.log.entry_term(s.commit);
        if term_at_commit != Some(s.term) {
            return Err(violation(
                "leader commits only entries of its term",
                obs.at,
                format!(
                    "n{}, leader of term {}, advanced its commit index to {} whose entry has \
                     term {term_at_commit:?} (Raft §5.4.2, Figure 8)",
                    s.id, s.term, s.commit
                ),
            ));
        }
        Ok(())
    }

    fn record_commits(&mut self, obs: &NodeObservation<'_>) -> Checked {
        let status = &obs.status;
        let start = match self.checked_upto.get(&status.id) {
            Some(&(inc, upto)) if inc == obs.incarnation => upto.next(),
            _ => status.first_index,
        };
        let mut index = start.max(LogIndex(1));
        while index <= status.commit {
            if let Some(term) = obs.log.entry_term(index) {
                let new = Committed {
                    term,
                    seen_in: status.term,
                    reporter: status.id,
                };
                let known = *self.committed.entry(index).or_insert(new);
                if known.term != term {
                    return Err(violation(
                        "committed entry never lost",
                        obs.at,
                        format!(
                            "index {index} committed with term {} (seen by n{}) but n{} has \
                             term {term} there and commit index {}",
                            known.term, known.reporter, status.id, status.commit
                        ),
                    ));
                }
            }
            index = index.next();
        }
        let upto = status.commit.max(start.prev());
        self.checked_upto.insert(status.id, (obs.incarnation, upto));
        Ok(())
    }

    /// Leader completeness: a leader of term T holds every entry committed before T.
    fn check_leader(&self, obs: &NodeObservation<'_>) -> Checked {
        let status = &obs.status;
        for (&index, known) in self.committed.range(status.first_index..) {
            if known.seen_in >= status.term {
                continue;
            }
            let has = obs.log.entry_term(index);
            if has != Some(known.term) {
                return Err(violation(
                    "leader completeness",
                    obs.at,
                    format!(
                        "n{} became leader of term {} without the entry at index {index} \
                         (term {}, committed by term {}); its log has {has:?} there",
                        status.id, status.term, known.term, known.seen_in
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Log matching: if two logs hold an entry with the same index and term, they are identical
    /// up to that index. Also checks every node still holds its committed entries.
    pub fn check_matching(&self, at: Duration, nodes: &[LogSnapshot<'_>]) -> Checked {
        for (i, a) in nodes.iter().enumerate() {
            self.check_holds_committed(at, a)?;
            for b in &nodes[i + 1..] {
                check_pair(at, a, b)?;
            }
        }
        Ok(())
    }

    fn check_holds_committed(&self, at: Duration, node: &LogSnapshot<'_>) -> Checked {
        let s = &node.status;
        if s.commit < s.first_index {
            return Ok(());
        }
        for (&index, known) in self.committed.range(s.first_index..=s.commit) {
            let has = node.log.entry_term(index);
            if has.is_some() && has != Some(known.term) {
                return Err(violation(
                    "committed entry never lost",
                    at,
                    format!(
                        "n{} (commit {}) has {has:?} at committed index {index}, expected term {}",
                        s.id, s.commit, known.term
                    ),
                ));
            }
        }
        Ok(())
    }

    /// At the end of a run: every committed entry is held by a majority of the cluster.
    /// `down` nodes cannot be inspected and are counted as holding everything.
    pub fn check_durable(
        &self,
        at: Duration,
        nodes: &[LogSnapshot<'_>],
        down: usize,
        cluster: usize,
    ) -> Checked {
        let majority = cluster / 2 + 1;
        for (&index, known) in &self.committed {
            let holders = nodes
                .iter()
                .filter(|n| {
                    n.status.first_index > index || n.log.entry_term(index) == Some(known.term)
                })
                .count();
            if holders + down < majority {
                return Err(violation(
                    "committed entry never lost",
                    at,
                    format!(
                        "entry {index} (term {}) is held by {holders} live node(s) and {down} \
                         down node(s), fewer than a majority of {majority}",
                        known.term
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn check_pair(at: Duration, a: &LogSnapshot<'_>, b: &LogSnapshot<'_>) -> Checked {
    let low = a
        .status
        .first_index
        .max(b.status.first_index)
        .max(LogIndex(1));
    let high = a.status.last_index.min(b.status.last_index);
    let mut index = high;
    // Find the highest index where both logs agree, then everything below must agree too.
    while index >= low && a.log.entry_term(index) != b.log.entry_term(index) {
        index = index.prev();
    }
    let agree_at = index;
    while index >= low && index.0 > 0 {
        let (ta, tb) = (a.log.entry_term(index), b.log.entry_term(index));
        if ta != tb {
            return Err(violation(
                "log matching",
                at,
                format!(
                    "n{} and n{} agree at index {agree_at} but differ at index {index} \
                     ({ta:?} vs {tb:?})",
                    a.status.id, b.status.id
                ),
            ));
        }
        index = index.prev();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{log, obs, status};
    use super::*;

    #[test]
    fn consistent_commits_pass() {
        let mut c = LogChecker::default();
        let l = log(&[1, 1, 2]);
        c.observe(&obs(status(1, Role::Leader, 2, 3, 3), &l))
            .unwrap();
        c.observe(&obs(status(2, Role::Follower, 2, 2, 3), &l))
            .unwrap();
        assert_eq!(c.max_committed(), LogIndex(3));
    }

    #[test]
    fn overwritten_commit_is_caught() {
        let mut c = LogChecker::default();
        let (a, b) = (log(&[1, 1]), log(&[1, 2]));
        c.observe(&obs(status(1, Role::Leader, 1, 2, 2), &a))
            .unwrap();
        let err = c
            .observe(&obs(status(2, Role::Leader, 2, 1, 2), &b))
            .unwrap_err();
        assert_eq!(err.checker, "leader completeness", "{err}");
        let mut c = LogChecker::default();
        c.observe(&obs(status(1, Role::Leader, 1, 2, 2), &a))
            .unwrap();
        let err = c
            .observe(&obs(status(2, Role::Follower, 2, 2, 2), &b))
            .unwrap_err();
        assert_eq!(err.checker, "committed entry never lost", "{err}");
    }

    #[test]
    fn leader_missing_committed_entry_is_caught() {
        let mut c = LogChecker::default();
        let (full, short) = (log(&[1, 1, 1]), log(&[1]));
        c.observe(&obs(status(1, Role::Leader, 1, 3, 3), &full))
            .unwrap();
        let err = c
            .observe(&obs(status(2, Role::Leader, 2, 1, 1), &short))
            .unwrap_err();
        assert_eq!(err.checker, "leader completeness");
        assert!(err.detail.contains("index 2"), "{err}");
    }

    #[test]
    fn leader_committing_an_older_term_entry_is_caught() {
        let mut c = LogChecker::default();
        let l = log(&[1, 1, 2]);
        c.observe(&obs(status(1, Role::Leader, 2, 1, 3), &l))
            .unwrap();
        let err = c
            .observe(&obs(status(1, Role::Leader, 2, 2, 3), &l))
            .unwrap_err();
        assert_eq!(err.checker, "leader commits only entries of its term");
        let mut c = LogChecker::default();
        c.observe(&obs(status(1, Role::Leader, 2, 1, 3), &l))
            .unwrap();
        c.observe(&obs(status(1, Role::Leader, 2, 3, 3), &l))
            .unwrap();
    }

    #[test]
    fn commit_beyond_log_is_caught() {
        let mut c = LogChecker::default();
        let l = log(&[1]);
        let err = c
            .observe(&obs(status(1, Role::Follower, 1, 2, 1), &l))
            .unwrap_err();
        assert_eq!(err.checker, "committed entry never lost");
    }

    #[test]
    fn log_matching_catches_divergent_prefix() {
        let c = LogChecker::default();
        let (a, b) = (log(&[1, 1, 3]), log(&[1, 2, 3]));
        let nodes = [
            LogSnapshot {
                status: status(1, Role::Follower, 3, 0, 3),
                log: &a,
            },
            LogSnapshot {
                status: status(2, Role::Follower, 3, 0, 3),
                log: &b,
            },
        ];
        let err = c.check_matching(Duration::ZERO, &nodes).unwrap_err();
        assert_eq!(err.checker, "log matching");
        let (a, b) = (log(&[1, 1, 3]), log(&[1, 1, 2, 2]));
        let nodes = [
            LogSnapshot {
                status: status(1, Role::Follower, 3, 0, 3),
                log: &a,
            },
            LogSnapshot {
                status: status(2, Role::Follower, 3, 0, 4),
                log: &b,
            },
        ];
        c.check_matching(Duration::ZERO, &nodes).unwrap();
    }

    #[test]
    fn lost_durable_entry_is_caught() {
        let mut c = LogChecker::default();
        let (full, empty) = (log(&[1, 1]), log(&[]));
        c.observe(&obs(status(1, Role::Leader, 1, 2, 2), &full))
            .unwrap();
        let nodes = [
            LogSnapshot {
                status: status(1, Role::Follower, 1, 0, 2),
                log: &full,
            },
            LogSnapshot {
                status: status(2, Role::Follower, 1, 0, 0),
                log: &empty,
            },
            LogSnapshot {
                status: status(3, Role::Follower, 1, 0, 0),
                log: &empty,
            },
        ];
        let err = c.check_durable(Duration::ZERO, &nodes, 0, 3).unwrap_err();
        assert!(err.detail.contains("fewer than a majority"), "{err}");
        c.check_durable(Duration::ZERO, &nodes, 1, 3).unwrap();
    }
}
