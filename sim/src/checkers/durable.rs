//! Durability across restarts: a node recovers the term and the log it had acted on.
//!
//! Raft Figure 2 asks for `currentTerm`, `votedFor` and the log to be "updated on stable storage
//! before responding to RPCs". Crashes happen between steps of the (synchronous) node driver,
//! so the checker can compare what a node promised before a crash with what it recovers:
//!
//! - A node that granted a vote in term T must restart in term T or later; otherwise it can
//!   vote a second time in T and elect two leaders. (Forgetting a term it merely *saw* is
//!   harmless and not flagged.)
//! - A follower must restart with the last log entry it last reported (unless a snapshot now
//!   covers it): it acknowledges entries only after they are durable. A leader is exempt: it
//!   may send new entries while its own write is in flight and counts itself toward a commit
//!   only once the write is durable (Raft thesis §10.2.1), so its newest entries may be lost.

use super::{Checked, NodeObservation, Violation};
use raft_core::{LogIndex, NodeId, Role, Term};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
struct Last {
    incarnation: u64,
    last_index: LogIndex,
    last_term: Option<Term>,
    leading: bool,
    /// The process stopped in the middle of a step (a disk error), after this observation:
    /// that step may have replaced uncommitted entries with a newer leader's, written in
    /// part, so the last entry reported before it is no longer a promise.
    step_failed: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct DurabilityChecker {
    last: BTreeMap<NodeId, Last>,
    voted: BTreeMap<NodeId, Term>,
    /// Restarts checked.
    pub restarts_checked: u64,
}

impl DurabilityChecker {
    /// Records that `node` granted a (real, not pre-) vote in `term`.
    pub fn vote_granted(&mut self, node: NodeId, term: Term) {
        let voted = self.voted.entry(node).or_default();
        *voted = (*voted).max(term);
    }

    /// Records that `node` stopped on an error in the middle of a step (see `Last`).
    pub fn step_failed(&mut self, node: NodeId) {
        if let Some(last) = self.last.get_mut(&node) {
            last.step_failed = true;
        }
    }

    /// Checks a restarted node against what it reported before, then remembers `obs`.
    pub fn observe(&mut self, obs: &NodeObservation<'_>) -> Checked {
        let s = &obs.status;
        if let Some(old) = self.last.get(&s.id).copied() {
            if old.incarnation != obs.incarnation {
                self.restarts_checked += 1;
                let voted = self.voted.get(&s.id).copied().unwrap_or_default();
                check_restart(obs, old, voted)?;
            }
        }
        let last_term = obs.log.entry_term(s.last_index);
        let last = Last {
            incarnation: obs.incarnation,
            last_index: s.last_index,
            last_term,
            leading: s.role == Role::Leader,
            step_failed: false,
        };
        self.last.insert(s.id, last);
        Ok(())
    }
}

fn check_restart(obs: &NodeObservation<'_>, old: Last, voted: Term) -> Checked {
    let s = &obs.status;
    let fail = |detail: String| {
        Err(Violation {
            checker: "durable state survives restart",
            at: obs.at,
            detail,
        })
    };
    if s.term < voted {
        return fail(format!(
            "n{} restarted in term {} after granting a vote in term {voted}",
            s.id, s.term
        ));
    }
    let covered_by_snapshot = old.last_index < s.first_index;
    if old.last_index.0 > 0 && !covered_by_snapshot && !old.leading && !old.step_failed {
        let has = obs.log.entry_term(old.last_index);
        // A higher term there is a newer leader's entry that replaced an uncommitted one in a
        // step the checker never saw the end of (the step failed on a disk error and the
        // process stopped with its writes on disk): not a loss.
        let overwritten = has.is_some() && has > old.last_term;
        if old.last_term.is_some() && has != old.last_term && !overwritten {
            return fail(format!(
                "n{} restarted without its last entry: index {} had term {:?}, now {has:?} (log \
                 ends at {})",
                s.id, old.last_index, old.last_term, s.last_index
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{log, obs, status};
    use super::*;

    #[test]
    fn restart_with_everything_passes() {
        let mut c = DurabilityChecker::default();
        let l = log(&[1, 2]);
        c.observe(&obs(status(1, Role::Follower, 2, 1, 2), &l))
            .unwrap();
        let mut again = obs(status(1, Role::Follower, 2, 0, 2), &l);
        again.incarnation = 1;
        c.observe(&again).unwrap();
        assert_eq!(c.restarts_checked, 1);
    }

    #[test]
    fn forgotten_vote_is_caught() {
        let mut c = DurabilityChecker::default();
        let l = log(&[1]);
        c.observe(&obs(status(1, Role::Follower, 5, 1, 1), &l))
            .unwrap();
        let mut again = obs(status(1, Role::Follower, 4, 1, 1), &l);
        again.incarnation = 1;
        c.observe(&again).unwrap();
        c.vote_granted(NodeId(1), Term(5));
        again.incarnation = 2;
        let err = c.observe(&again).unwrap_err();
        assert!(err.detail.contains("vote in term 5"), "{err}");
    }

    #[test]
    fn lost_entries_are_caught() {
        let mut c = DurabilityChecker::default();
        let (full, short) = (log(&[1, 1, 2]), log(&[1]));
        c.observe(&obs(status(1, Role::Follower, 2, 1, 3), &full))
            .unwrap();
        let mut again = obs(status(1, Role::Follower, 2, 1, 1), &short);
        again.incarnation = 1;
        let err = c.observe(&again).unwrap_err();
        assert!(err.detail.contains("without its last entry"), "{err}");
    }

    #[test]
    fn a_step_that_failed_on_the_disk_voids_the_last_entry_but_not_the_vote() {
        let mut c = DurabilityChecker::default();
        let (full, short) = (log(&[1, 1, 2]), log(&[1]));
        c.observe(&obs(status(1, Role::Follower, 2, 1, 3), &full))
            .unwrap();
        c.vote_granted(NodeId(1), Term(2));
        c.step_failed(NodeId(1));
        let mut again = obs(status(1, Role::Follower, 2, 1, 1), &short);
        again.incarnation = 1;
        c.observe(&again).unwrap();
        c.step_failed(NodeId(1));
        let mut forgot = obs(status(1, Role::Follower, 1, 1, 1), &short);
        forgot.incarnation = 2;
        assert!(c.observe(&forgot).is_err(), "the vote still counts");
    }

    #[test]
    fn an_entry_replaced_by_a_newer_leader_is_not_a_loss() {
        let mut c = DurabilityChecker::default();
        let (old, newer, older) = (log(&[1, 1, 2]), log(&[1, 1, 3, 3]), log(&[1, 1, 1]));
        c.observe(&obs(status(1, Role::Follower, 2, 1, 3), &old))
            .unwrap();
        let mut again = obs(status(1, Role::Follower, 3, 1, 4), &newer);
        again.incarnation = 1;
        c.observe(&again).unwrap();
        c.observe(&obs(status(2, Role::Follower, 2, 1, 3), &old))
            .unwrap();
        let mut again = obs(status(2, Role::Follower, 2, 1, 3), &older);
        again.incarnation = 1;
        assert!(c.observe(&again).is_err(), "a lower term is a loss");
    }
}
