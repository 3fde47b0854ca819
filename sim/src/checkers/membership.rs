//! Membership change rules, checked directly on the leaders' logs (Raft thesis §4.1, §4.3).
//!
//! Joint consensus stays safe only if changes follow two rules, which a leader must obey when
//! it appends a configuration entry:
//!
//! - **one change at a time**: no configuration entry is appended while an earlier
//!   configuration entry of the leader's log is uncommitted (the entry that ends a joint
//!   configuration is appended once the joint one commits, so it obeys the rule too);
//! - **own-term commit first**: a new leader appends no configuration entry before it has
//!   committed an entry of its own term, since until then it cannot know which configuration
//!   in its log is committed.
//!
//! Breaking either rule does not always break a safety property visibly (joint
//! configurations keep a majority of the old voters in every quorum), so the checker watches
//! the rules themselves: after every step of a leader, each configuration entry of the
//! leader's term that it has not checked yet is compared with the leader's commit index.
//! A configuration entry of the leader's term in the leader's log was appended by that leader
//! (election safety), and within the step that appended it the commit index can only have
//! grown, so judging against the commit index after the step never blames correct code.

use super::{Checked, NodeObservation, Violation};
use raft_core::{LogIndex, NodeId, Role, Term};
use std::collections::BTreeMap;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct MembershipChecker {
    /// Per leader: the term and the highest configuration index checked in it.
    checked: BTreeMap<NodeId, (Term, LogIndex)>,
    /// Configuration entries checked so far.
    pub configs_checked: u64,
}

impl MembershipChecker {
    /// Checks the configuration entries a leader appended since its last observation.
    pub fn observe(&mut self, obs: &NodeObservation<'_>) -> Checked {
        let s = &obs.status;
        if s.role != Role::Leader {
            return Ok(());
        }
        let configs = obs.log.config_indexes();
        let done = match self.checked.get(&s.id) {
            Some(&(term, index)) if term == s.term => index,
            _ => LogIndex(0),
        };
        let mut previous: Option<LogIndex> = None;
        let mut newest = done;
        for &index in &configs {
            let earlier = previous.replace(index);
            if index <= done || obs.log.entry_term(index) != Some(s.term) {
                continue;
            }
            self.configs_checked += 1;
            newest = newest.max(index);
            let fail = |checker: &'static str, detail: String| {
                Err(Violation {
                    checker,
                    at: obs.at,
                    detail,
                })
            };
            if let Some(earlier) = earlier.filter(|e| *e > s.commit) {
                return fail(
                    "one membership change at a time",
                    format!(
                        "n{}, leader of term {}, appended a configuration entry at index \
                         {index} while the configuration entry at index {earlier} was \
                         uncommitted (commit index {})",
                        s.id, s.term, s.commit
                    ),
                );
            }
            if obs.log.entry_term(s.commit) != Some(s.term) {
                return fail(
                    "own-term commit before a membership change",
                    format!(
                        "n{}, leader of term {}, appended a configuration entry at index \
                         {index} before committing an entry of its term (commit index {}, of \
                         term {:?})",
                        s.id,
                        s.term,
                        s.commit,
                        obs.log.entry_term(s.commit)
                    ),
                );
            }
        }
        self.checked.insert(s.id, (s.term, newest));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{obs, status};
    use super::super::LogView;
    use super::*;

    /// A log of terms from index 1, with configuration entries at `configs`.
    struct ConfigLog {
        terms: Vec<u64>,
        configs: Vec<u64>,
    }

    impl LogView for ConfigLog {
        fn entry_term(&self, index: LogIndex) -> Option<Term> {
            let i = index.0.checked_sub(1)?;
            self.terms.get(i as usize).map(|&t| Term(t))
        }

        fn config_indexes(&self) -> Vec<LogIndex> {
            self.configs.iter().copied().map(LogIndex).collect()
        }
    }

    fn log(terms: &[u64], configs: &[u64]) -> ConfigLog {
        ConfigLog {
            terms: terms.to_vec(),
            configs: configs.to_vec(),
        }
    }

    #[test]
    fn changes_one_at_a_time_after_an_own_term_commit_pass() {
        let mut c = MembershipChecker::default();
        // Term 2 leader: no-op at 3 committed, joint config at 4, then the final one at 5
        // appended in the step that committed 4.
        let l = log(&[1, 1, 2, 2], &[1, 4]);
        c.observe(&obs(status(1, Role::Leader, 2, 3, 4), &l))
            .unwrap();
        let l = log(&[1, 1, 2, 2, 2], &[1, 4, 5]);
        c.observe(&obs(status(1, Role::Leader, 2, 4, 5), &l))
            .unwrap();
        // Followers and entries of other terms are not judged.
        c.observe(&obs(status(2, Role::Follower, 2, 0, 5), &l))
            .unwrap();
        assert_eq!(c.configs_checked, 2);
    }

    #[test]
    fn a_second_change_while_the_first_is_uncommitted_is_caught() {
        let mut c = MembershipChecker::default();
        let l = log(&[2, 2, 2], &[2]);
        c.observe(&obs(status(1, Role::Leader, 2, 1, 2), &l))
            .unwrap();
        let l = log(&[2, 2, 2], &[2, 3]);
        let err = c
            .observe(&obs(status(1, Role::Leader, 2, 1, 3), &l))
            .unwrap_err();
        assert_eq!(err.checker, "one membership change at a time", "{err}");
        assert!(err.detail.contains("index 2 was uncommitted"), "{err}");
    }

    #[test]
    fn a_change_before_an_own_term_commit_is_caught() {
        let mut c = MembershipChecker::default();
        // Elected in term 3 with commit 2 (term 1); no-op at 3, a configuration at 4.
        let l = log(&[1, 1, 3, 3], &[4]);
        let err = c
            .observe(&obs(status(1, Role::Leader, 3, 2, 4), &l))
            .unwrap_err();
        assert_eq!(
            err.checker, "own-term commit before a membership change",
            "{err}"
        );
        // The same entry once the no-op committed, from a fresh checker, passes.
        let mut c = MembershipChecker::default();
        c.observe(&obs(status(1, Role::Leader, 3, 3, 4), &l))
            .unwrap();
    }
}
