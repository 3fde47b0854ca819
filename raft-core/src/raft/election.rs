//! Elections: term handling, votes, PreVote, CheckQuorum and role transitions (Raft §5.2,
//! thesis §9.6 and §6.2).

use super::{MsgHeader, Raft};
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::types::{Entry, EntryKind, LogIndex, NodeId, Role, Term};

impl Raft {
    /// Applies the term rules every message goes through. Returns false if the message is
    /// fully handled (ignored or answered) here.
    pub(super) fn step_term(&mut self, msg: &Message) -> bool {
        if msg.term > self.term {
            return self.step_higher_term(msg);
        }
        if msg.term < self.term {
            self.step_lower_term(msg);
            return false;
        }
        true
    }

    fn step_higher_term(&mut self, msg: &Message) -> bool {
        match msg.body {
            MessageBody::RequestVote { pre_vote, .. } => {
                if self.in_leader_lease() && !self.cfg.bugs.vote_ignores_leader_lease {
                    // CheckQuorum: while a leader is heard from, a vote request is most likely
                    // from a partitioned node; ignoring it keeps the leader in place.
                    let (from, term) = (msg.from, msg.term);
                    tracing::debug!(%from, %term, "vote request ignored in lease");
                    return false;
                }
                if pre_vote {
                    // A pre-vote changes no term; answer it at the proposed term.
                    return true;
                }
                self.become_follower(msg.term, None);
            }
            MessageBody::RequestVoteResponse {
                pre_vote: true,
                granted: true,
            } => {
                // The proposed term of our own pre-vote round; not a newer term.
            }
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                self.become_follower(msg.term, Some(msg.from));
            }
            _ => self.become_follower(msg.term, None),
        }
        true
    }

    fn step_lower_term(&mut self, msg: &Message) {
        match msg.body {
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                // Tell the stale leader about the newer term so it steps down (Raft §5.1).
                self.send(msg.from, MessageBody::HeartbeatResponse { read_round: 0 });
            }
            MessageBody::RequestVote { pre_vote, .. } => {
                self.send(
                    msg.from,
                    MessageBody::RequestVoteResponse {
                        pre_vote,
                        granted: false,
                    },
                );
            }
            _ => tracing::trace!(from = %msg.from, term = %msg.term, "ignoring stale message"),
        }
    }

    /// True while this replica has heard from a leader within the minimum election timeout.
    fn in_leader_lease(&self) -> bool {
        self.cfg.check_quorum
            && (self.leader.is_some() || self.vote_embargo)
            && self.election_elapsed < self.cfg.election_ticks_min
    }

    pub(super) fn handle_request_vote(
        &mut self,
        header: &MsgHeader,
        pre_vote: bool,
        last_log_index: LogIndex,
        last_log_term: Term,
    ) {
        let can_vote = self.vote == Some(header.from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre_vote && header.term > self.term);
        // BUG (planted, `vote_ignores_log_check`): grants without the §5.4.1 log check.
        let granted = can_vote
            && (self.cfg.bugs.vote_ignores_log_check
                || self.log.is_up_to_date(last_log_index, last_log_term));
        let (from, term) = (header.from, header.term);
        tracing::debug!(%from, %term, pre_vote, granted, "vote request");
        if granted && !pre_vote {
            assert_eq!(
                header.term, self.term,
                "real votes are cast in the current term"
            );
            self.vote = Some(header.from);
            self.election_elapsed = 0;
        }
        let term = if granted && pre_vote {
            header.term
        } else {
            self.term
        };
        self.send_at(
            header.from,
            term,
            MessageBody::RequestVoteResponse { pre_vote, granted },
        );
    }

    pub(super) fn handle_vote_response(
        &mut self,
        from: NodeId,
        term: Term,
        pre_vote: bool,
        granted: bool,
    ) {
        let expected = match self.role {
            Role::PreCandidate => pre_vote && term == Term(self.term.0 + 1),
            Role::Candidate => !pre_vote && term == self.term,
            _ => false,
        };
        if !expected {
            return;
        }
        self.votes.entry(from).or_insert(granted);
        let votes = &self.votes;
        let won = self
            .membership()
            .has_quorum(|id| votes.get(&id) == Some(&true));
        let lost = self
            .membership()
            .quorum_lost(|id| votes.get(&id) == Some(&false));
        if won {
            if self.role == Role::PreCandidate {
                self.become_candidate();
            } else {
                self.become_leader();
            }
        } else if lost {
            self.become_follower(self.term, None);
        }
    }

    pub(super) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        self.leader_silent_ticks = self.leader_silent_ticks.saturating_add(1);
        if self.election_elapsed >= self.cfg.election_ticks_min {
            self.vote_embargo = false;
        }
        if self.election_elapsed >= self.randomized_election_ticks {
            self.campaign();
        }
    }

    /// Starts an election (with a PreVote round first if configured).
    pub fn campaign(&mut self) {
        if self.role == Role::Leader || !self.may_campaign() {
            return;
        }
        self.leader_silent_ticks = 0;
        if self.cfg.pre_vote && !self.cfg.bugs.pre_vote_skipped {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
    }

    pub(super) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_ticks_min {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_recently_active() {
                tracing::info!(term = %self.term, "stepping down: no quorum heard from");
                self.become_follower(self.term, None);
                return;
            }
            for pr in self.progress.values_mut() {
                pr.recent_active = false;
            }
        }
        self.tick_replication();
        self.tick_transfer();
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks || self.cfg.bugs.heartbeat_every_tick
        {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    fn quorum_recently_active(&self) -> bool {
        let (me, progress) = (self.cfg.id, &self.progress);
        self.membership()
            .has_quorum(|id| id == me || progress.get(&id).is_some_and(|p| p.recent_active))
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(term >= self.term, "terms never decrease");
        let from_role = self.role;
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        let leader_changed = self.leader != leader;
        if from_role == Role::Leader {
            self.reads
                .fail_leader_reads(&mut self.msgs, self.cfg.id, self.term);
        }
        if leader_changed {
            self.reads.fail_forwarded("the leader changed");
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.transfer = None;
        self.lease.reset();
        self.progress.clear();
        self.votes.clear();
        self.append_pending = false;
        self.heartbeat_pending = false;
        self.reset_election_timer();
        if from_role != Role::Follower {
            tracing::info!(term = %self.term, ?from_role, "became follower");
        }
    }

    fn become_pre_candidate(&mut self) {
        assert_ne!(
            self.role,
            Role::Leader,
            "invalid transition [leader -> pre-candidate]"
        );
        self.role = Role::PreCandidate;
        self.leader_lost();
        tracing::info!(term = %self.term, "became pre-candidate");
        self.request_votes(true, false);
    }

    fn become_candidate(&mut self) {
        self.start_candidacy(false);
    }

    /// Campaigns at once, without PreVote, because the leader handed over leadership.
    pub(super) fn campaign_for_transfer(&mut self) {
        if self.role == Role::Follower && self.may_campaign() {
            self.start_candidacy(true);
        }
    }

    fn start_candidacy(&mut self, transfer: bool) {
        assert_ne!(
            self.role,
            Role::Leader,
            "invalid transition [leader -> candidate]"
        );
        self.term = Term(self.term.0 + 1);
        self.vote = Some(self.cfg.id);
        self.role = Role::Candidate;
        self.leader_lost();
        tracing::info!(term = %self.term, transfer, "became candidate");
        self.request_votes(false, transfer);
    }

    fn leader_lost(&mut self) {
        if self.leader.is_some() {
            self.reads.fail_forwarded("the leader changed");
        }
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id, true);
        self.reset_election_timer();
    }

    fn request_votes(&mut self, pre_vote: bool, transfer: bool) {
        let votes = &self.votes;
        if self
            .membership()
            .has_quorum(|id| votes.get(&id) == Some(&true))
        {
            // A single-voter cluster elects itself.
            if pre_vote {
                self.become_candidate();
            } else {
                self.become_leader();
            }
            return;
        }
        let term = if pre_vote {
            Term(self.term.0 + 1)
        } else {
            self.term
        };
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for i in 0..self.others.len() {
            let peer = self.other(i);
            if !self.is_voter(peer) {
                continue;
            }
            let body = if transfer {
                MessageBody::RequestVoteForTransfer {
                    last_log_index,
                    last_log_term,
                }
            } else {
                MessageBody::RequestVote {
                    pre_vote,
                    last_log_index,
                    last_log_term,
                }
            };
            self.send_at(peer, term, body);
        }
    }

    fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.transfer = None;
        self.lease.reset();
        let next = self.log.last_index().next();
        self.progress.clear();
        for i in 0..self.others.len() {
            let peer = self.other(i);
            let mut pr = Progress::new(next, self.cfg.max_entries_per_append);
            // Voters just answered us, so they count as active for the first CheckQuorum round.
            pr.recent_active = self.votes.get(&peer).copied().unwrap_or(false);
            self.progress.insert(peer, pr);
        }
        self.votes.clear();
        self.reset_election_timer();
        // Raft §8: a no-op of the new term lets the leader learn what is committed and makes
        // earlier-term entries committable (Figure 8).
        let noop = Entry {
            term: self.term,
            index: next,
            kind: EntryKind::Noop,
        };
        self.log.push(noop);
        self.append_pending = true;
        tracing::info!(term = %self.term, last_index = %next, "became leader");
    }
}
