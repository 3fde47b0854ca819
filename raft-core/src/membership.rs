//! Cluster membership and joint consensus (Raft §6, thesis §4.3).
//!
//! A configuration is a set of voters plus learners (members that receive the log but do not
//! vote). Changing the voters goes through a joint configuration, in which every decision
//! (election, commit, CheckQuorum, read confirmation) needs a majority of the old voters *and*
//! a majority of the new ones; once the joint configuration is committed the leader appends
//! the final one. Any two majorities used during the change therefore overlap, so two leaders
//! can never be elected, nor two different entries committed, at once. Adding or removing a
//! learner does not change any majority and takes one step.

use crate::types::{LogIndex, NodeId};
use serde::{Deserialize, Serialize};

/// A cluster configuration, as stored in configuration entries and snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// Voters of the configuration (the incoming one while joint), sorted.
    pub voters: Vec<NodeId>,
    /// While joint: the voters of the outgoing configuration, sorted; empty otherwise.
    pub outgoing: Vec<NodeId>,
    /// Members that receive the log but do not vote, sorted; never voters too.
    pub learners: Vec<NodeId>,
}

/// A requested change of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MembershipChange {
    /// Add a new member as a learner (one step; it starts receiving the log).
    AddLearner(NodeId),
    /// Make a caught-up learner a voter (through a joint configuration).
    PromoteLearner(NodeId),
    /// Remove a learner (one step) or a voter (through a joint configuration).
    RemoveNode(NodeId),
    /// Replace voter `old` with the caught-up learner `new` (through a joint configuration).
    ReplaceVoter {
        /// The voter to remove.
        old: NodeId,
        /// The learner that takes its place.
        new: NodeId,
    },
}

fn sorted(mut ids: Vec<NodeId>) -> Vec<NodeId> {
    ids.sort();
    ids.dedup();
    ids
}

fn majority(set: &[NodeId], yes: &impl Fn(NodeId) -> bool) -> bool {
    set.iter().filter(|id| yes(**id)).count() > set.len() / 2
}

/// The highest index that a majority of `set` holds (`scratch` avoids an allocation per
/// call on the acknowledgement path).
fn majority_index(
    set: &[NodeId],
    of: &impl Fn(NodeId) -> LogIndex,
    scratch: &mut Vec<LogIndex>,
) -> LogIndex {
    scratch.clear();
    scratch.extend(set.iter().map(|id| of(*id)));
    scratch.sort_unstable_by(|a, b| b.cmp(a));
    scratch[set.len() / 2]
}

impl Membership {
    /// A plain configuration of `voters` and no learners.
    pub fn new(voters: Vec<NodeId>) -> Membership {
        Membership {
            voters: sorted(voters),
            outgoing: Vec::new(),
            learners: Vec::new(),
        }
    }

    /// True during a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// True if `id` votes (in the incoming or the outgoing configuration).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// True if `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// True if `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member, sorted.
    pub fn members(&self) -> Vec<NodeId> {
        let all = self
            .voters
            .iter()
            .chain(&self.outgoing)
            .chain(&self.learners);
        sorted(all.copied().collect())
    }

    /// True if the members for which `yes` holds form a quorum: a majority of the voters and,
    /// while joint, also a majority of the outgoing voters. No quorum exists without voters.
    pub(crate) fn has_quorum(&self, yes: impl Fn(NodeId) -> bool) -> bool {
        !self.voters.is_empty()
            && majority(&self.voters, &yes)
            && (self.outgoing.is_empty() || majority(&self.outgoing, &yes))
    }

    /// True once the members for which `no` holds make a quorum impossible.
    pub(crate) fn quorum_lost(&self, no: impl Fn(NodeId) -> bool) -> bool {
        !self.has_quorum(|id| !no(id))
    }

    /// The highest index a quorum holds, given each voter's index.
    pub(crate) fn quorum_index(
        &self,
        of: impl Fn(NodeId) -> LogIndex,
        scratch: &mut Vec<LogIndex>,
    ) -> LogIndex {
        if self.voters.is_empty() {
            return LogIndex(0);
        }
        let incoming = majority_index(&self.voters, &of, scratch);
        if self.outgoing.is_empty() {
            return incoming;
        }
        incoming.min(majority_index(&self.outgoing, &of, scratch))
    }

    /// The configuration that carries out `change`: a joint one if the voters change.
    /// The outgoing voters of a joint configuration are always this configuration's `voters`;
    /// callers must not start a change from a joint configuration.
    ///
    /// # Errors
    /// A message saying why the change does not apply to this configuration.
    pub(crate) fn apply(&self, change: MembershipChange) -> Result<Membership, String> {
        let mut next = Membership {
            voters: self.voters.clone(),
            outgoing: Vec::new(),
            learners: self.learners.clone(),
        };
        let joint = |mut next: Membership| {
            next.outgoing = self.voters.clone();
            next.voters = sorted(next.voters);
            next.learners = sorted(next.learners);
            next
        };
        match change {
            MembershipChange::AddLearner(id) if self.contains(id) => {
                Err(format!("{id} is already a member"))
            }
            MembershipChange::AddLearner(id) => {
                next.learners = sorted([next.learners, vec![id]].concat());
                Ok(next)
            }
            MembershipChange::PromoteLearner(id)
            | MembershipChange::ReplaceVoter { new: id, .. }
                if !self.is_learner(id) =>
            {
                Err(format!("{id} is not a learner"))
            }
            MembershipChange::PromoteLearner(id) => {
                next.learners.retain(|l| *l != id);
                next.voters.push(id);
                Ok(joint(next))
            }
            MembershipChange::ReplaceVoter { old, .. } if !self.voters.contains(&old) => {
                Err(format!("{old} is not a voter"))
            }
            MembershipChange::ReplaceVoter { old, new } => {
                next.learners.retain(|l| *l != new);
                next.voters.retain(|v| *v != old);
                next.voters.push(new);
                Ok(joint(next))
            }
            MembershipChange::RemoveNode(id) if self.is_learner(id) => {
                next.learners.retain(|l| *l != id);
                Ok(next)
            }
            MembershipChange::RemoveNode(id) if !self.voters.contains(&id) => {
                Err(format!("{id} is not a member"))
            }
            MembershipChange::RemoveNode(_) if self.voters.len() == 1 => {
                Err("cannot remove the last voter".to_string())
            }
            MembershipChange::RemoveNode(id) => {
                next.voters.retain(|v| *v != id);
                Ok(joint(next))
            }
        }
    }

    /// The final configuration that ends a joint one.
    pub(crate) fn leave_joint(&self) -> Membership {
        Membership {
            voters: self.voters.clone(),
            outgoing: Vec::new(),
            learners: self.learners.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[u64]) -> Vec<NodeId> {
        raw.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn joint_quorum_needs_both_majorities() {
        let m = Membership::new(ids(&[1, 2, 3]))
            .apply(MembershipChange::AddLearner(NodeId(4)))
            .unwrap()
            .apply(MembershipChange::PromoteLearner(NodeId(4)))
            .unwrap();
        assert_eq!(m.voters, ids(&[1, 2, 3, 4]));
        assert_eq!(m.outgoing, ids(&[1, 2, 3]));
        // 1 and 4 are half of the new voters and a minority of the old ones.
        assert!(!m.has_quorum(|id| id == NodeId(1) || id == NodeId(4)));
        assert!(m.has_quorum(|id| id.0 <= 3));
        let index = m.quorum_index(|id| LogIndex(10 * id.0), &mut Vec::new());
        // New voters: majority index is the 3rd highest of 10,20,30,40 = 20; old: 2nd of
        // 10,20,30 = 20.
        assert_eq!(index, LogIndex(20));
        assert!(!m.leave_joint().is_joint());
    }

    #[test]
    fn invalid_changes_are_refused() {
        let m = Membership::new(ids(&[1]));
        assert!(m.apply(MembershipChange::RemoveNode(NodeId(1))).is_err());
        assert!(m
            .apply(MembershipChange::PromoteLearner(NodeId(2)))
            .is_err());
        assert!(m.apply(MembershipChange::AddLearner(NodeId(1))).is_err());
        assert!(m.apply(MembershipChange::RemoveNode(NodeId(7))).is_err());
        let change = MembershipChange::ReplaceVoter {
            old: NodeId(2),
            new: NodeId(3),
        };
        assert!(m.apply(change).is_err());
    }

    #[test]
    fn no_quorum_without_voters() {
        let m = Membership::default();
        assert!(!m.has_quorum(|_| true));
        assert!(m.quorum_lost(|_| false));
    }
}
