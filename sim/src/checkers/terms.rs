//! Terms rise only for a reason: with PreVote on, no node inflates its term on its own.
//!
//! PreVote (Raft thesis §9.6) exists so that a node cut off from a majority does not raise its
//! term on every election timeout and depose a healthy leader when it rejoins. It breaks no
//! safety rule when it does not work, so nothing else notices. This checker watches each
//! node's term from outside: a node's term may rise only to a term it heard from a peer (a
//! message it handled carried it), or by one, as a candidate, after a peer granted it a
//! pre-vote for that term, after its leader sent it `TimeoutNow` (a transfer skips PreVote),
//! or when it is its configuration's only voter. A restart starts a new lifetime, whose first
//! term is whatever the node recovered (the durability checker watches that).
//!
//! Without PreVote any campaign raises the term, so that rule then watches nothing.
//!
//! With CheckQuorum on, a second rule holds with or without PreVote (thesis §4.2.3): a
//! follower that heard from its leader fewer than `election_ticks_min` of its own ticks ago
//! ignores a vote request of a higher term (one not sent for a transfer), so a removed or
//! rejoining node cannot depose a healthy leader through it.

use super::{Checked, NodeObservation, Violation};
use raft_core::{Message, MessageBody, NodeId, Role, Term};
use std::collections::BTreeMap;

/// What one lifetime of one node has been seen to have and to have heard.
#[derive(Clone, Copy, Debug, Default)]
struct Lifetime {
    incarnation: u64,
    term: Term,
    /// Highest term of a message it handled that a receiver adopts (all but pre-vote requests
    /// and grants).
    heard: Term,
    /// Highest term it may campaign in: a granted pre-vote's, or one past a `TimeoutNow`'s.
    may_campaign: Term,
    /// Its role at the last observation.
    role: Option<Role>,
    /// The tick at which it last handled a message of its leader in its term then.
    leader_heard: Option<(Term, u64)>,
    /// A vote request of a higher term it handled in its last step, with the tick then.
    vote_request: Option<(NodeId, Term, u64)>,
}

/// What the checker needs of a message a node handled, taken before the node consumes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heard {
    from: NodeId,
    to: NodeId,
    term: Term,
    kind: HeardKind,
}

/// The kinds of message the checker tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeardKind {
    /// AppendEntries, Heartbeat or InstallSnapshot: only a leader sends them.
    FromLeader,
    /// A real (not pre-) vote request.
    VoteRequest,
    /// A pre-vote request, whose term the receiver does not adopt.
    PreVoteRequest,
    /// A granted pre-vote, carrying the term asked for.
    PreVoteGrant,
    /// A leader's request to campaign at once.
    TimeoutNow,
    /// Everything else.
    Other,
}

impl Heard {
    /// The summary of `msg`.
    pub fn of(msg: &Message) -> Heard {
        let kind = match msg.body {
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => HeardKind::FromLeader,
            MessageBody::RequestVote { pre_vote: true, .. } => HeardKind::PreVoteRequest,
            MessageBody::RequestVote {
                pre_vote: false, ..
            } => HeardKind::VoteRequest,
            MessageBody::RequestVoteResponse {
                pre_vote: true,
                granted: true,
            } => HeardKind::PreVoteGrant,
            MessageBody::TimeoutNow => HeardKind::TimeoutNow,
            _ => HeardKind::Other,
        };
        Heard {
            from: msg.from,
            to: msg.to,
            term: msg.term,
            kind,
        }
    }
}

/// The term-inflation checker (see the module documentation).
#[derive(Debug, Default)]
pub struct TermChecker {
    /// Whether the seed runs with PreVote; without it the first rule accepts every term.
    pub pre_vote: bool,
    /// CheckQuorum's lease in ticks (`election_ticks_min`), if the seed runs with it.
    pub lease_ticks: Option<u64>,
    nodes: BTreeMap<NodeId, Lifetime>,
}

impl TermChecker {
    /// A checker for a seed with PreVote on or off, and CheckQuorum's lease of `lease_ticks`
    /// ticks or none.
    pub fn new(pre_vote: bool, lease_ticks: Option<u64>) -> TermChecker {
        TermChecker {
            pre_vote,
            lease_ticks,
            nodes: BTreeMap::new(),
        }
    }

    /// Node `to` of `heard` (in lifetime `incarnation`) has just handled the message it
    /// summarizes and has run `ticks` ticks by the end of it: a node late to tick runs the
    /// ticks it missed before it handles a message.
    pub fn delivered(&mut self, incarnation: u64, ticks: u64, heard: &Heard) {
        let life = self.lifetime(heard.to, incarnation);
        life.vote_request = None;
        if heard.kind == HeardKind::FromLeader && heard.term >= life.term {
            life.leader_heard = Some((heard.term, ticks));
        }
        if heard.kind == HeardKind::VoteRequest && heard.term > life.term {
            life.vote_request = Some((heard.from, heard.term, ticks));
        }
        match heard.kind {
            HeardKind::PreVoteRequest => {}
            // A granted pre-vote carries the term asked for, which no one adopts; a refusal
            // carries the refuser's own term, which a behind pre-candidate adopts.
            HeardKind::PreVoteGrant => life.may_campaign = life.may_campaign.max(heard.term),
            HeardKind::TimeoutNow => {
                life.heard = life.heard.max(heard.term);
                life.may_campaign = life.may_campaign.max(Term(heard.term.0 + 1));
            }
            HeardKind::FromLeader | HeardKind::VoteRequest | HeardKind::Other => {
                life.heard = life.heard.max(heard.term)
            }
        }
    }

    /// Checks the node's term against what it heard and was granted.
    pub fn observe(&mut self, obs: &NodeObservation<'_>) -> Checked {
        let status = obs.status;
        let fresh = !self.nodes.contains_key(&status.id)
            || self.nodes[&status.id].incarnation != obs.incarnation;
        let (pre_vote, lease_ticks) = (self.pre_vote, self.lease_ticks);
        let life = self.lifetime(status.id, obs.incarnation);
        if fresh {
            life.term = status.term;
        }
        let before = life.term;
        let was = life.role;
        life.term = status.term;
        life.role = Some(status.role);
        let vote_request = life.vote_request.take();
        if let (Some(lease), Some((from, term, tick)), Some((led, heard))) =
            (lease_ticks, vote_request, life.leader_heard)
        {
            let in_lease = was == Some(Role::Follower) && led == before && tick - heard < lease;
            if in_lease && status.term == term && term > before {
                return Err(Violation {
                    checker: "leader lease",
                    at: obs.at,
                    detail: format!(
                        "with CheckQuorum on, follower n{} of term {before} adopted term {term} \
                         from n{from}'s vote request {} ticks after it last heard from its \
                         leader (it must ignore such requests for {lease} ticks)",
                        status.id,
                        tick - heard
                    ),
                });
            }
        }
        if !pre_vote || status.term <= before || status.term <= life.heard {
            return Ok(());
        }
        let campaigned = matches!(status.role, Role::Candidate | Role::Leader)
            && status.term == Term(before.0 + 1);
        let sole_voter = {
            let quorums = obs.log.commit_quorums();
            !quorums.is_empty() && quorums.iter().all(|q| q.as_slice() == [status.id])
        };
        if campaigned && (status.term <= life.may_campaign || sole_voter) {
            return Ok(());
        }
        Err(Violation {
            checker: "term inflation",
            at: obs.at,
            detail: format!(
                "with PreVote on, n{} moved from term {before} to {} as {} without hearing that \
                 term from a peer or being granted a pre-vote for it (highest term heard {}, \
                 pre-vote granted up to {})",
                status.id, status.term, status.role, life.heard, life.may_campaign
            ),
        })
    }

    fn lifetime(&mut self, id: NodeId, incarnation: u64) -> &mut Lifetime {
        let life = self.nodes.entry(id).or_default();
        if life.incarnation != incarnation {
            *life = Lifetime {
                incarnation,
                ..Lifetime::default()
            };
        }
        life
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::status;
    use super::super::LogView;
    use super::*;
    use std::time::Duration;

    /// A log whose configuration has the voters `voters`.
    struct Voters(Vec<NodeId>);

    impl LogView for Voters {
        fn entry_term(&self, _: raft_core::LogIndex) -> Option<Term> {
            None
        }
        fn commit_quorums(&self) -> Vec<Vec<NodeId>> {
            vec![self.0.clone()]
        }
    }

    fn three() -> Voters {
        Voters(vec![NodeId(1), NodeId(2), NodeId(3)])
    }

    fn see(
        c: &mut TermChecker,
        role: Role,
        term: u64,
        incarnation: u64,
        log: &dyn LogView,
    ) -> Checked {
        let obs = NodeObservation {
            at: Duration::from_millis(1),
            incarnation,
            status: status(1, role, term, 0, 0),
            log,
        };
        c.observe(&obs)
    }

    fn msg(term: u64, body: MessageBody) -> Message {
        Message {
            from: NodeId(2),
            to: NodeId(1),
            term: Term(term),
            body,
        }
    }

    fn checker() -> TermChecker {
        TermChecker::new(true, None)
    }

    #[test]
    fn a_campaign_needs_a_granted_pre_vote() {
        let (mut c, log) = (checker(), three());
        see(&mut c, Role::Follower, 3, 0, &log).unwrap();
        // Skipping PreVote: a candidate in term 4 that no one pre-voted for.
        let err = see(&mut c, Role::Candidate, 4, 0, &log).unwrap_err();
        assert_eq!(err.checker, "term inflation");
        assert!(err.detail.contains("from term 3 to 4"), "{err}");

        let mut c = checker();
        see(&mut c, Role::PreCandidate, 3, 0, &log).unwrap();
        let grant = MessageBody::RequestVoteResponse {
            pre_vote: true,
            granted: true,
        };
        c.delivered(0, 0, &Heard::of(&msg(4, grant)));
        see(&mut c, Role::Candidate, 4, 0, &log).unwrap();
        see(&mut c, Role::Leader, 4, 0, &log).unwrap();
        // A pre-vote for 5 was never granted.
        assert!(see(&mut c, Role::Candidate, 5, 0, &log).is_err());
    }

    #[test]
    fn a_pre_candidate_that_raises_its_term_is_caught() {
        let (mut c, log) = (checker(), three());
        see(&mut c, Role::Follower, 3, 0, &log).unwrap();
        assert!(see(&mut c, Role::PreCandidate, 4, 0, &log).is_err());
    }

    #[test]
    fn heard_terms_transfers_restarts_and_single_voters_are_reasons() {
        let (mut c, log) = (checker(), three());
        see(&mut c, Role::Follower, 3, 0, &log).unwrap();
        let heartbeat = MessageBody::Heartbeat {
            commit: raft_core::LogIndex(0),
            read_round: 0,
        };
        c.delivered(0, 0, &Heard::of(&msg(7, heartbeat)));
        see(&mut c, Role::Follower, 7, 0, &log).unwrap();
        // A pre-vote request's term is not adopted, so it is no reason.
        let ask = MessageBody::RequestVote {
            pre_vote: true,
            last_log_index: raft_core::LogIndex(0),
            last_log_term: Term(0),
        };
        c.delivered(0, 0, &Heard::of(&msg(9, ask)));
        assert!(see(&mut c, Role::Follower, 9, 0, &log).is_err());

        let mut c = checker();
        see(&mut c, Role::Follower, 3, 0, &log).unwrap();
        c.delivered(0, 0, &Heard::of(&msg(3, MessageBody::TimeoutNow)));
        see(&mut c, Role::Candidate, 4, 0, &log).unwrap();
        // A restart recovers whatever term its disk had.
        see(&mut c, Role::Follower, 9, 1, &log).unwrap();

        let mut c = checker();
        let alone = Voters(vec![NodeId(1)]);
        see(&mut c, Role::Follower, 3, 0, &alone).unwrap();
        see(&mut c, Role::Leader, 4, 0, &alone).unwrap();
        // Without PreVote, campaigns raise the term.
        let mut c = TermChecker::new(false, None);
        see(&mut c, Role::Follower, 3, 0, &log).unwrap();
        see(&mut c, Role::Candidate, 4, 0, &log).unwrap();
    }

    #[test]
    fn a_follower_in_its_leaders_lease_ignores_vote_requests() {
        let log = three();
        let heartbeat = MessageBody::Heartbeat {
            commit: raft_core::LogIndex(0),
            read_round: 0,
        };
        let vote = MessageBody::RequestVote {
            pre_vote: false,
            last_log_index: raft_core::LogIndex(0),
            last_log_term: Term(0),
        };
        let mut c = TermChecker::new(false, Some(10));
        see(&mut c, Role::Follower, 3, 0, &log).unwrap();
        c.delivered(0, 100, &Heard::of(&msg(3, heartbeat.clone())));
        see(&mut c, Role::Follower, 3, 0, &log).unwrap();
        c.delivered(0, 104, &Heard::of(&msg(5, vote.clone())));
        let err = see(&mut c, Role::Follower, 5, 0, &log).unwrap_err();
        assert_eq!(err.checker, "leader lease");
        assert!(err.detail.contains("4 ticks after"), "{err}");
        // Once the lease has run out, the request is heeded.
        let mut c = TermChecker::new(false, Some(10));
        see(&mut c, Role::Follower, 3, 0, &log).unwrap();
        c.delivered(0, 100, &Heard::of(&msg(3, heartbeat)));
        see(&mut c, Role::Follower, 3, 0, &log).unwrap();
        c.delivered(0, 110, &Heard::of(&msg(5, vote)));
        see(&mut c, Role::Follower, 5, 0, &log).unwrap();
    }
}
