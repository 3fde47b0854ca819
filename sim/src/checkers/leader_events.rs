//! Leader changes are reported: what a replica says of its leader in
//! `Event::LeaderChanged` is what its status says.
//!
//! Services learn who leads from this event alone (the kv server fails the proposals a
//! deposed leader still holds, clerks follow the leader it names), so a replica that stops
//! reporting changes breaks no Raft rule and still leaves its service waiting on a leader that
//! is gone. After every step of a node, the leader of its status must be the one its last
//! event named in this process lifetime (none before the first), and, when it knows a leader,
//! for the term it is in.

use super::{Checked, NodeObservation, Violation};
use raft_core::{NodeId, Term};
use std::collections::BTreeMap;

/// The last leader each node reported, per process lifetime.
#[derive(Debug, Default)]
pub struct LeaderEvents {
    /// Node → (incarnation, leader, term) of its last `LeaderChanged`.
    reported: BTreeMap<NodeId, (u64, Option<NodeId>, Term)>,
}

impl LeaderEvents {
    /// Records a `LeaderChanged` of `node` in process lifetime `incarnation`.
    pub fn reported(&mut self, node: NodeId, incarnation: u64, leader: Option<NodeId>, term: Term) {
        self.reported.insert(node, (incarnation, leader, term));
    }

    /// Fails if the status of `obs` names another leader than the node last reported, or the
    /// same leader for another term.
    pub fn observe(&mut self, obs: &NodeObservation<'_>) -> Checked {
        let status = &obs.status;
        let last = match self.reported.get(&status.id) {
            Some(&(incarnation, leader, term)) if incarnation == obs.incarnation => {
                Some((leader, term))
            }
            _ => None,
        };
        let agrees = match (status.leader, last) {
            (None, None) | (None, Some((None, _))) => true,
            (Some(leader), Some((Some(reported), term))) => {
                leader == reported && term == status.term
            }
            _ => false,
        };
        if agrees {
            return Ok(());
        }
        let said = match last {
            Some((Some(leader), term)) => format!("n{leader} leads term {term}"),
            Some((None, term)) => format!("no leader in term {term}"),
            None => "nothing since it started".to_string(),
        };
        let is = match status.leader {
            Some(leader) => format!("n{leader} leads term {}", status.term),
            None => format!("no leader in term {}", status.term),
        };
        Err(Violation {
            checker: "leader changes reported",
            at: obs.at,
            detail: format!(
                "n{}'s status says {is}, but its last LeaderChanged event said {said}",
                status.id
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{log, obs, status};
    use super::*;
    use raft_core::Role;

    #[test]
    fn a_reported_leader_passes_and_an_unreported_one_fails() {
        let mut c = LeaderEvents::default();
        let l = log(&[]);
        // Nothing known, nothing reported.
        c.observe(&obs(status(1, Role::Follower, 1, 0, 0), &l))
            .unwrap();
        // A leader of its own term that never said so.
        let err = c
            .observe(&obs(status(1, Role::Leader, 2, 0, 0), &l))
            .unwrap_err();
        assert!(err.detail.contains("nothing since it started"), "{err}");
        c.reported(NodeId(1), 0, Some(NodeId(1)), Term(2));
        c.observe(&obs(status(1, Role::Leader, 2, 0, 0), &l))
            .unwrap();
        // Re-elected in a later term without a new event.
        let err = c
            .observe(&obs(status(1, Role::Leader, 3, 0, 0), &l))
            .unwrap_err();
        assert!(err.detail.contains("n1 leads term 2"), "{err}");
        // Lost its leader and said so: fine in any later term.
        c.reported(NodeId(1), 0, None, Term(3));
        c.observe(&obs(status(1, Role::Candidate, 4, 0, 0), &l))
            .unwrap();
    }

    #[test]
    fn a_restart_forgets_what_the_previous_lifetime_reported() {
        let mut c = LeaderEvents::default();
        let l = log(&[]);
        c.reported(NodeId(1), 0, Some(NodeId(1)), Term(2));
        let mut restarted = obs(status(1, Role::Leader, 2, 0, 0), &l);
        restarted.incarnation = 1;
        assert!(c.observe(&restarted).is_err());
    }
}
