//! Election safety: at most one leader can be elected in a given term (Raft §5.2).

use super::{Checked, NodeObservation, Violation};
use raft_core::{NodeId, Role, Term};
use std::collections::BTreeMap;

/// Remembers the leader of every term it has seen.
#[derive(Debug, Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<Term, NodeId>,
}

impl ElectionSafety {
    /// Records `obs` if the node is a leader, and fails if its term already had another one.
    pub fn observe(&mut self, obs: &NodeObservation<'_>) -> Checked {
        let status = &obs.status;
        if status.role != Role::Leader {
            return Ok(());
        }
        let leader = *self.leaders.entry(status.term).or_insert(status.id);
        if leader != status.id {
            return Err(Violation {
                checker: "election safety",
                at: obs.at,
                detail: format!(
                    "two leaders in term {}: n{} and n{}",
                    status.term, leader, status.id
                ),
            });
        }
        Ok(())
    }

    /// Number of terms that had a leader.
    pub fn terms_with_leader(&self) -> usize {
        self.leaders.len()
    }

    /// The leader of the highest term seen.
    pub fn latest_leader(&self) -> Option<(Term, NodeId)> {
        self.leaders.iter().next_back().map(|(t, n)| (*t, *n))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{log, obs, status};
    use super::*;

    #[test]
    fn one_leader_per_term_passes() {
        let mut c = ElectionSafety::default();
        let l = log(&[]);
        c.observe(&obs(status(1, Role::Leader, 1, 0, 0), &l))
            .unwrap();
        c.observe(&obs(status(1, Role::Leader, 1, 0, 0), &l))
            .unwrap();
        c.observe(&obs(status(2, Role::Leader, 2, 0, 0), &l))
            .unwrap();
        c.observe(&obs(status(3, Role::Candidate, 2, 0, 0), &l))
            .unwrap();
        assert_eq!(c.terms_with_leader(), 2);
        assert_eq!(c.latest_leader(), Some((Term(2), NodeId(2))));
    }

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut c = ElectionSafety::default();
        let l = log(&[]);
        c.observe(&obs(status(1, Role::Leader, 3, 0, 0), &l))
            .unwrap();
        let err = c
            .observe(&obs(status(2, Role::Leader, 3, 0, 0), &l))
            .unwrap_err();
        assert_eq!(err.checker, "election safety");
        assert!(err.detail.contains("term 3"), "{err}");
    }
}
