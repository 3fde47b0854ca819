//! Durability: a node answers only from durable state, and recovers what it said was durable.
//!
//! Raft Figure 2 asks for `currentTerm`, `votedFor` and the log to be "updated on stable storage
//! before responding to RPCs". Each node reports what it promises to recover after a crash in
//! an `Event::Persisted` (the last durable log entry still in its log, and the durable term and
//! vote), emitted when an fsync completed and when a newer leader's entries replaced durable
//! ones in memory. The checker holds every node to it from both sides:
//!
//! - **Answers wait for durability.** A granted vote in term T must leave only once the node's
//!   promise covers term T and that vote; an append acknowledgement up to index M only once the
//!   promised log reaches M. (A vote or an ack sent from a page cache would be forgotten by a
//!   crash before its fsync completed.)
//! - **Commits rest on durable copies.** When a leader's commit index reaches C, a majority
//!   of every voter set of its configuration must have promised a log reaching C; the leader
//!   counts for itself only what its own promise covers.
//! - **Promises survive restarts.** A restarted node must come back in the promised term or
//!   later, and in a term no lower than any vote it was seen granting, and its log must still
//!   hold the promised entry with the promised term (unless a snapshot now covers it).
//!
//! Since the simulated disk completes an fsync only after a latency and a crash loses whatever
//! was not synced, a promise made too early is caught by the second rule, and an answer sent too
//! early by the first. No role is exempt: a leader's promise is its own durable log, not the
//! entries it has sent.

use super::{Checked, NodeObservation, Violation};
use raft_core::{LogIndex, Message, MessageBody, NodeId, Term};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a node promised, in one process lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Promise {
    /// The process lifetime that made it.
    pub incarnation: u64,
    /// Last durable log entry still in the log.
    pub index: LogIndex,
    /// Its term.
    pub log_term: Term,
    /// Durable current term.
    pub term: Term,
    /// Durable vote in that term.
    pub vote: Option<NodeId>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct DurabilityChecker {
    /// The latest promise of each node.
    promises: BTreeMap<NodeId, Promise>,
    /// The last promise of a node's previous lifetime, until its restart has been checked.
    unchecked: BTreeMap<NodeId, Promise>,
    /// Highest term each node was seen granting a vote in.
    voted: BTreeMap<NodeId, Term>,
    /// The commit index last checked for each leader, with its term.
    leader_commit: BTreeMap<NodeId, (Term, LogIndex)>,
    /// Restarts checked.
    pub restarts_checked: u64,
    /// Votes and acknowledgements checked against the sender's promise.
    pub answers_checked: u64,
}

impl DurabilityChecker {
    /// Records a node's new promise (from `Event::Persisted`).
    pub fn persisted(&mut self, node: NodeId, promise: Promise) {
        if let Some(old) = self.promises.insert(node, promise) {
            if old.incarnation != promise.incarnation {
                // The first promise of a new lifetime is what the node recovered; the old
                // lifetime's last promise is checked against it when the node is observed.
                self.unchecked.insert(node, old);
            }
        }
    }

    /// Checks a message a node sent against its current promise.
    pub fn sent(&mut self, at: Duration, msg: &Message) -> Checked {
        let from = msg.from;
        let fail = |detail: String| {
            Err(Violation {
                checker: "answers wait for durability",
                at,
                detail,
            })
        };
        let promise = self.promises.get(&from).copied();
        match msg.body {
            MessageBody::RequestVoteResponse {
                pre_vote: false,
                granted: true,
            } => {
                self.answers_checked += 1;
                let voted = self.voted.entry(from).or_default();
                *voted = (*voted).max(msg.term);
                let durable = promise.is_some_and(|p| {
                    p.term > msg.term || (p.term == msg.term && p.vote == Some(msg.to))
                });
                if !durable {
                    return fail(format!(
                        "n{from} granted its vote in term {} to n{} while its durable term and \
                         vote were {:?}",
                        msg.term,
                        msg.to,
                        promise.map(|p| (p.term, p.vote))
                    ));
                }
            }
            MessageBody::AppendEntriesResponse(raft_core::AppendResult::Success {
                match_index,
            }) => {
                self.answers_checked += 1;
                let durable = promise.map_or(LogIndex(0), |p| p.index);
                if match_index > durable {
                    return fail(format!(
                        "n{from} acknowledged entries up to {match_index} to n{} in term {} \
                         while its log was durable only up to {durable}",
                        msg.to, msg.term
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks a restarted node against what it promised in its previous lifetime, and a
    /// leader's new commit index against the promises of its voters.
    pub fn observe(&mut self, obs: &NodeObservation<'_>) -> Checked {
        self.check_commit(obs)?;
        let id = obs.status.id;
        let Some(old) = self.unchecked.get(&id).copied() else {
            return Ok(());
        };
        if old.incarnation == obs.incarnation {
            return Ok(());
        }
        self.unchecked.remove(&id);
        self.restarts_checked += 1;
        let voted = self.voted.get(&id).copied().unwrap_or_default();
        check_restart(obs, old, voted)
    }
}

impl DurabilityChecker {
    fn check_commit(&mut self, obs: &NodeObservation<'_>) -> Checked {
        let s = &obs.status;
        if s.role != raft_core::Role::Leader {
            return Ok(());
        }
        let seen = self.leader_commit.insert(s.id, (s.term, s.commit));
        // Only what this leader advanced itself: a new leader inherits its commit index from
        // earlier leaders, whose quorums were counted in their own configurations.
        if seen.is_none_or(|(term, commit)| term != s.term || commit >= s.commit) {
            return Ok(());
        }
        for voters in obs.log.commit_quorums() {
            let holding: Vec<NodeId> = voters
                .iter()
                .copied()
                .filter(|v| self.promises.get(v).is_some_and(|p| p.index >= s.commit))
                .collect();
            if 2 * holding.len() <= voters.len() {
                return Err(Violation {
                    checker: "commits rest on durable copies",
                    at: obs.at,
                    detail: format!(
                        "n{}, leader of term {}, advanced its commit index to {} while only {:?}                          of the voters {:?} had made the log up to there durable",
                        s.id, s.term, s.commit, holding, voters
                    ),
                });
            }
        }
        Ok(())
    }
}

fn check_restart(obs: &NodeObservation<'_>, old: Promise, voted: Term) -> Checked {
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
    if s.term < old.term {
        return fail(format!(
            "n{} restarted in term {} after term {} was durable",
            s.id, s.term, old.term
        ));
    }
    let covered_by_snapshot = old.index < s.first_index;
    if !covered_by_snapshot {
        let has = obs.log.entry_term(old.index);
        if has != Some(old.log_term) {
            return fail(format!(
                "n{} restarted without an entry it had made durable: index {} had term {}, now \
                 {has:?} (log ends at {})",
                s.id, old.index, old.log_term, s.last_index
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{log, obs, status};
    use super::*;
    use raft_core::{AppendResult, Role};

    fn promise(incarnation: u64, index: u64, log_term: u64, term: u64) -> Promise {
        Promise {
            incarnation,
            index: LogIndex(index),
            log_term: Term(log_term),
            term: Term(term),
            vote: None,
        }
    }

    fn restart(
        c: &mut DurabilityChecker,
        before: Promise,
        after: Promise,
        l: &VecLogRef,
    ) -> Checked {
        c.persisted(NodeId(1), before);
        c.persisted(NodeId(1), after);
        let s = status(1, Role::Follower, after.term.0, 0, l.1);
        let mut o = obs(s, &l.0);
        o.incarnation = after.incarnation;
        c.observe(&o)
    }

    struct VecLogRef(super::super::VecLog, u64);

    fn logged(terms: &[u64]) -> VecLogRef {
        VecLogRef(log(terms), terms.len() as u64)
    }

    #[test]
    fn restart_with_everything_passes() {
        let mut c = DurabilityChecker::default();
        let l = logged(&[1, 2]);
        restart(&mut c, promise(0, 2, 2, 2), promise(1, 2, 2, 2), &l).unwrap();
        assert_eq!(c.restarts_checked, 1);
    }

    #[test]
    fn a_lost_durable_entry_is_caught_for_leaders_too() {
        let mut c = DurabilityChecker::default();
        let l = logged(&[1]);
        let err = restart(&mut c, promise(0, 3, 2, 2), promise(1, 1, 1, 2), &l).unwrap_err();
        assert!(err.detail.contains("made durable"), "{err}");
    }

    #[test]
    fn a_lost_term_is_caught() {
        let mut c = DurabilityChecker::default();
        let l = logged(&[1]);
        let err = restart(&mut c, promise(0, 1, 1, 5), promise(1, 1, 1, 4), &l).unwrap_err();
        assert!(err.detail.contains("term 5 was durable"), "{err}");
    }

    fn vote(from: u64, to: u64, term: u64) -> Message {
        Message {
            from: NodeId(from),
            to: NodeId(to),
            term: Term(term),
            body: MessageBody::RequestVoteResponse {
                pre_vote: false,
                granted: true,
            },
        }
    }

    #[test]
    fn a_vote_before_it_is_durable_is_caught() {
        let mut c = DurabilityChecker::default();
        let at = Duration::ZERO;
        c.persisted(NodeId(1), promise(0, 0, 0, 3));
        let err = c.sent(at, &vote(1, 2, 4)).unwrap_err();
        assert!(err.detail.contains("granted its vote in term 4"), "{err}");
        let mut p = promise(0, 0, 0, 4);
        p.vote = Some(NodeId(2));
        c.persisted(NodeId(1), p);
        c.sent(at, &vote(1, 2, 4)).unwrap();
        assert!(
            c.sent(at, &vote(1, 3, 4)).is_err(),
            "a durable vote for another"
        );
    }

    #[test]
    fn an_ack_beyond_the_durable_log_is_caught() {
        let mut c = DurabilityChecker::default();
        let ack = |index| Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(1),
            body: MessageBody::AppendEntriesResponse(AppendResult::Success {
                match_index: LogIndex(index),
            }),
        };
        c.persisted(NodeId(1), promise(0, 5, 1, 1));
        c.sent(Duration::ZERO, &ack(5)).unwrap();
        let err = c.sent(Duration::ZERO, &ack(6)).unwrap_err();
        assert!(err.detail.contains("durable only up to 5"), "{err}");
    }

    #[test]
    fn a_restart_below_a_granted_vote_is_caught() {
        let mut c = DurabilityChecker::default();
        let mut p = promise(0, 0, 0, 5);
        p.vote = Some(NodeId(2));
        c.persisted(NodeId(1), p);
        c.sent(Duration::ZERO, &vote(1, 2, 5)).unwrap();
        let l = logged(&[]);
        let err = restart(&mut c, p, promise(1, 0, 0, 4), &l).unwrap_err();
        assert!(err.detail.contains("vote in term 5"), "{err}");
    }
}
