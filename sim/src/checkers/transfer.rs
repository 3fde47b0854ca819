//! A leadership transfer ends: it completes or is abandoned within its bound (thesis §3.10).
//!
//! While a transfer is under way the leader refuses proposals, so a transfer that never ends
//! stops the cluster for the rest of the leader's term without breaking any safety rule. The
//! protocol abandons a transfer after an election timeout of the leader's own ticks; this
//! checker counts the same ticks from outside ([`raft_core::Raft::ticks`]) and fails a
//! leader that has been transferring to the same target, in the same term and lifetime, for
//! twice the longest election timeout.

use super::{Checked, Violation};
use raft_core::{NodeId, Role, Status, Term};
use std::collections::BTreeMap;
use std::time::Duration;

/// One transfer under way, as first seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Under {
    incarnation: u64,
    term: Term,
    target: NodeId,
    since_tick: u64,
}

/// The transfer-bound checker (see the module documentation).
#[derive(Debug, Default)]
pub struct TransferChecker {
    /// Ticks a transfer may last: twice the longest election timeout.
    pub bound_ticks: u64,
    under: BTreeMap<NodeId, Under>,
}

impl TransferChecker {
    /// A checker for a seed whose longest election timeout is `election_ticks_max` ticks.
    pub fn new(election_ticks_max: u64) -> TransferChecker {
        TransferChecker {
            bound_ticks: 2 * election_ticks_max,
            under: BTreeMap::new(),
        }
    }

    /// A node (in lifetime `incarnation`, having run `ticks` ticks) has `status` and is
    /// transferring leadership to `target`, if any.
    pub fn observe(
        &mut self,
        at: Duration,
        incarnation: u64,
        status: &Status,
        target: Option<NodeId>,
        ticks: u64,
    ) -> Checked {
        let Some(target) = target.filter(|_| status.role == Role::Leader) else {
            self.under.remove(&status.id);
            return Ok(());
        };
        let now = Under {
            incarnation,
            term: status.term,
            target,
            since_tick: ticks,
        };
        let under = self.under.entry(status.id).or_insert(now);
        let same =
            (under.incarnation, under.term, under.target) == (incarnation, status.term, target);
        if !same {
            *under = now;
            return Ok(());
        }
        let lasted = ticks - under.since_tick;
        if lasted <= self.bound_ticks {
            return Ok(());
        }
        Err(Violation {
            checker: "transfer bound",
            at,
            detail: format!(
                "n{} has been transferring leadership to n{target} in term {} for {lasted} ticks, \
                 more than {} (twice the longest election timeout): a transfer must complete or \
                 be abandoned",
                status.id, status.term, self.bound_ticks
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::status;
    use super::*;

    #[test]
    fn a_transfer_past_its_bound_is_a_violation() {
        let mut c = TransferChecker::new(20);
        let leader = status(1, Role::Leader, 3, 0, 0);
        let at = Duration::ZERO;
        c.observe(at, 0, &leader, Some(NodeId(2)), 100).unwrap();
        c.observe(at, 0, &leader, Some(NodeId(2)), 140).unwrap();
        let err = c.observe(at, 0, &leader, Some(NodeId(2)), 141).unwrap_err();
        assert_eq!(err.checker, "transfer bound");
        assert!(err.detail.contains("for 41 ticks"), "{err}");
    }

    #[test]
    fn a_new_target_term_or_lifetime_restarts_the_count() {
        let mut c = TransferChecker::new(20);
        let at = Duration::ZERO;
        let leader = status(1, Role::Leader, 3, 0, 0);
        c.observe(at, 0, &leader, Some(NodeId(2)), 0).unwrap();
        c.observe(at, 0, &leader, Some(NodeId(3)), 30).unwrap();
        c.observe(at, 0, &leader, Some(NodeId(3)), 70).unwrap();
        // Abandoned, then asked again.
        c.observe(at, 0, &leader, None, 71).unwrap();
        c.observe(at, 0, &leader, Some(NodeId(3)), 72).unwrap();
        c.observe(at, 0, &leader, Some(NodeId(3)), 112).unwrap();
        let next_term = status(1, Role::Leader, 4, 0, 0);
        c.observe(at, 0, &next_term, Some(NodeId(3)), 150).unwrap();
        c.observe(at, 1, &next_term, Some(NodeId(3)), 0).unwrap();
        c.observe(at, 1, &next_term, Some(NodeId(3)), 40).unwrap();
    }
}
