//! Message dispatch: term rules first, then a handler per role (Raft §5.1), and the rule for
//! which outgoing messages must wait for persistence.

use super::{msg_header, Raft};
use crate::message::{Message, MessageBody};
use crate::types::{NodeId, Role, Term};

impl Raft {
    /// Handles a message from a peer. Messages not addressed to this replica are ignored, and
    /// so is everything from a replica outside the configuration except leader messages and,
    /// while no leader is heard from, vote requests (a member this replica does not know of
    /// yet may need its vote).
    pub fn step(&mut self, msg: Message) {
        if msg.to != self.cfg.id || msg.from == self.cfg.id {
            tracing::debug!(from = %msg.from, to = %msg.to, "ignoring misaddressed message");
            return;
        }
        if !self.membership().contains(msg.from) && !self.accepts_from_non_member(&msg) {
            tracing::debug!(from = %msg.from, "ignoring message from a non-member");
            return;
        }
        if !self.step_term(&msg) {
            return;
        }
        // Every role answers vote requests by the same rule (it looks at our vote, leader and
        // log, never at the role), so they are handled once, before the per-role handlers.
        let header = msg_header(msg.from, msg.term);
        match msg.body {
            MessageBody::RequestVote {
                pre_vote,
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(&header, pre_vote, last_log_index, last_log_term),
            MessageBody::RequestVoteForTransfer {
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(&header, false, last_log_index, last_log_term),
            _ => match self.role {
                Role::Leader => self.step_leader(msg),
                Role::Candidate | Role::PreCandidate => self.step_candidate(msg),
                Role::Follower => self.step_follower(msg),
            },
        }
    }

    /// A replica outside our configuration may be a leader we have not yet heard of (our log
    /// lags behind the change that added it), so its leader messages are accepted, and a
    /// candidate we cannot know yet gets an answer once no leader is heard from. A removed
    /// replica therefore cannot disturb a cluster with a live leader (thesis §4.2.3), even
    /// without CheckQuorum. Nothing else from non-members is accepted.
    fn accepts_from_non_member(&self, msg: &Message) -> bool {
        match msg.body {
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => true,
            MessageBody::RequestVote { .. } | MessageBody::RequestVoteForTransfer { .. } => {
                self.leader.is_none() || self.election_elapsed >= self.cfg.election_ticks_min
            }
            _ => false,
        }
    }

    fn step_leader(&mut self, msg: Message) {
        let from = msg.from;
        match msg.body {
            MessageBody::AppendEntriesResponse(result) => self.handle_append_response(from, result),
            MessageBody::HeartbeatResponse { read_round } => {
                self.handle_heartbeat_response(from, read_round)
            }
            MessageBody::InstallSnapshotResponse {
                meta,
                next_offset,
                done,
            } => self.handle_snapshot_response(from, meta, next_offset, done),
            MessageBody::ReadIndex { request } => self.handle_read_index_request(from, request),
            _ => tracing::debug!(%from, "leader ignoring message"),
        }
    }

    fn step_candidate(&mut self, msg: Message) {
        match msg.body {
            MessageBody::RequestVoteResponse { pre_vote, granted } => {
                self.handle_vote_response(msg.from, msg.term, pre_vote, granted)
            }
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                // A leader exists in our term: stop campaigning (Raft §5.2).
                self.become_follower(msg.term, Some(msg.from));
                self.step_follower(msg);
            }
            MessageBody::ReadIndex { request } => self.reject_read_index(msg.from, request),
            _ => {}
        }
    }

    fn step_follower(&mut self, msg: Message) {
        let from = msg.from;
        match msg.body {
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => self.handle_append(from, prev_log_index, prev_log_term, entries, leader_commit),
            MessageBody::Heartbeat { commit, read_round } => {
                self.handle_heartbeat(from, commit, read_round)
            }
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                total_len,
                checksum,
                membership,
            } => self.handle_snapshot_chunk(
                from,
                meta,
                offset,
                data,
                total_len,
                checksum,
                *membership,
            ),
            MessageBody::ReadIndex { request } => self.reject_read_index(from, request),
            MessageBody::ReadIndexResponse { request, index } => {
                self.handle_read_index_response(from, request, index)
            }
            MessageBody::TimeoutNow => self.handle_timeout_now(from),
            _ => {}
        }
    }

    /// Queues a message. Messages that promise durable state (votes, append acknowledgements,
    /// snapshot completion, vote requests that carry our own vote) wait for persistence.
    pub(super) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_at(to, self.term, body)
    }

    pub(super) fn send_at(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let after_persist = match &body {
            MessageBody::RequestVote { pre_vote, .. } => !pre_vote,
            MessageBody::RequestVoteForTransfer { .. } => true,
            MessageBody::RequestVoteResponse { pre_vote, .. } => {
                // BUG (planted, `vote_before_persist`): the vote leaves before it is durable.
                !pre_vote && !self.cfg.bugs.vote_before_persist
            }
            // BUG (planted, `ack_before_fsync`): appends are acknowledged before the sync.
            MessageBody::AppendEntriesResponse(_) => !self.cfg.bugs.ack_before_fsync,
            MessageBody::InstallSnapshotResponse { done, .. } => *done,
            _ => false,
        };
        let msg = Message {
            from: self.cfg.id,
            to,
            term,
            body,
        };
        if after_persist {
            self.msgs_after_persist.push(msg);
        } else {
            self.msgs.push(msg);
        }
    }
}
