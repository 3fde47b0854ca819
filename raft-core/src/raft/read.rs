//! Linearizable reads with ReadIndex (Raft thesis §6.4).
//!
//! A read on the leader is served at its commit index, but only after (1) an entry of the
//! leader's own term is committed, so the commit index is at least as high as any earlier
//! leader's, and (2) a quorum answered a heartbeat sent after the read arrived, proving nobody
//! else was elected meanwhile. A follower forwards the read to its leader and serves it locally
//! at the returned index. Rounds are numbered; a heartbeat answer for round `r` confirms every
//! read registered in round `r` or earlier.
//!
//! Forwarded requests carry a [`ForwardedReadId`]: a sequence number of the core's own plus
//! an incarnation nonce derived from the seed the replica was opened with, so a reply that
//! reaches a restarted follower can never resolve a read of the new incarnation.

use super::Raft;
use crate::error::Error;
use crate::message::{ForwardedReadId, Message, MessageBody};
use crate::ready::ReadState;
use crate::types::{LogIndex, NodeId, Role, Term};
use std::collections::{BTreeMap, VecDeque};

/// Who asked for a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Requester {
    Local(u64),
    Remote(NodeId, ForwardedReadId),
}

/// A read this follower forwarded to its leader.
#[derive(Debug)]
struct Forwarded {
    /// The caller's identifier, reported in the [`ReadState`].
    request: u64,
    /// The leader it was sent to; only that leader's answer counts.
    leader: NodeId,
    /// Ticks waited so far.
    ticks: u32,
}

#[derive(Debug)]
struct PendingRead {
    requester: Requester,
    index: LogIndex,
    round: u64,
    /// Leader tick after which the read fails instead of waiting longer for a quorum.
    deadline: u64,
}

/// Read requests in their various stages.
#[derive(Debug)]
pub(crate) struct ReadQueue {
    round: u64,
    /// Ticks counted while leader, for read deadlines.
    ticks: u64,
    /// Leader: reads that arrived before an entry of the current term committed, with their
    /// deadlines.
    waiting_for_commit: Vec<(Requester, u64)>,
    /// Leader: reads waiting for a heartbeat quorum, in round order.
    pending: VecDeque<PendingRead>,
    /// Follower: forwarded requests by sequence number.
    forwarded: BTreeMap<u64, Forwarded>,
    /// Names this incarnation in forwarded requests (see [`ForwardedReadId`]).
    incarnation: u64,
    /// Sequence number of the last forwarded request.
    forward_seq: u64,
    /// Replies dropped because they were meant for an earlier incarnation although their
    /// number matched a pending read of this one.
    earlier_incarnation_replies: u64,
    ready: Vec<ReadState>,
}

impl ReadQueue {
    /// An empty queue for an incarnation named by `incarnation`, which must differ from every
    /// earlier incarnation's of this replica.
    pub(crate) fn new(incarnation: u64) -> ReadQueue {
        ReadQueue {
            round: 0,
            ticks: 0,
            waiting_for_commit: Vec::new(),
            pending: VecDeque::new(),
            forwarded: BTreeMap::new(),
            incarnation,
            forward_seq: 0,
            earlier_incarnation_replies: 0,
            ready: Vec::new(),
        }
    }

    pub(crate) fn round(&self) -> u64 {
        self.round
    }

    /// Starts a new confirmation round and returns its number.
    pub(crate) fn next_round(&mut self) -> u64 {
        self.round += 1;
        self.round
    }

    /// Ticks counted while leader.
    pub(crate) fn ticks(&self) -> u64 {
        self.ticks
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub(crate) fn take_ready(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.ready)
    }

    fn complete(
        &mut self,
        requester: Requester,
        result: Result<LogIndex, Error>,
        out: &mut Vec<Message>,
        me: NodeId,
        term: Term,
    ) {
        match requester {
            Requester::Local(request) => self.ready.push(ReadState { request, result }),
            Requester::Remote(to, request) => {
                let body = MessageBody::ReadIndexResponse {
                    request,
                    index: result.ok(),
                };
                out.push(Message {
                    from: me,
                    to,
                    term,
                    body,
                });
            }
        }
    }

    /// Fails every read the leader holds (it lost leadership).
    pub(crate) fn fail_leader_reads(&mut self, out: &mut Vec<Message>, me: NodeId, term: Term) {
        let waiting = std::mem::take(&mut self.waiting_for_commit);
        let pending = std::mem::take(&mut self.pending);
        let waiting = waiting.into_iter().map(|(requester, _)| requester);
        let all = waiting.chain(pending.into_iter().map(|p| p.requester));
        for requester in all {
            let error = Error::ReadAborted("leadership lost".to_string());
            self.complete(requester, Err(error), out, me, term);
        }
    }

    /// Fails every forwarded read (the leader changed or is unknown).
    pub(crate) fn fail_forwarded(&mut self, reason: &str) {
        for (_, Forwarded { request, .. }) in std::mem::take(&mut self.forwarded) {
            let result = Err(Error::ReadAborted(reason.to_string()));
            self.ready.push(ReadState { request, result });
        }
    }
}

impl Raft {
    /// Requests a linearizable read identified by `request`; the answer arrives as a
    /// [`ReadState`] in a later [`Ready`](crate::Ready).
    ///
    /// # Errors
    /// `Error::NotLeader` if this replica is not the leader and knows no leader to ask.
    pub fn read_index(&mut self, request: u64) -> Result<(), Error> {
        match (self.role, self.leader) {
            (Role::Leader, _) => {
                self.leader_read(Requester::Local(request));
                Ok(())
            }
            (Role::Follower, Some(leader)) => {
                self.reads.forward_seq += 1;
                let id = ForwardedReadId {
                    incarnation: self.reads.incarnation,
                    seq: self.reads.forward_seq,
                };
                let forwarded = Forwarded {
                    request,
                    leader,
                    ticks: 0,
                };
                self.reads.forwarded.insert(id.seq, forwarded);
                self.send(leader, MessageBody::ReadIndex { request: id });
                Ok(())
            }
            _ => Err(Error::NotLeader { hint: self.leader }),
        }
    }

    pub(super) fn handle_read_index_request(&mut self, from: NodeId, request: ForwardedReadId) {
        self.leader_read(Requester::Remote(from, request));
    }

    pub(super) fn reject_read_index(&mut self, from: NodeId, request: ForwardedReadId) {
        self.send(
            from,
            MessageBody::ReadIndexResponse {
                request,
                index: None,
            },
        );
    }

    /// Replies to forwarded reads that this incarnation dropped because they were meant for
    /// an earlier one, although their number matched one of its pending reads (each would
    /// have resolved that read at a stale index). Simulators count it to know their seeds
    /// reach the case.
    pub fn earlier_incarnation_read_replies(&self) -> u64 {
        self.reads.earlier_incarnation_replies
    }

    pub(super) fn handle_read_index_response(
        &mut self,
        from: NodeId,
        id: ForwardedReadId,
        index: Option<LogIndex>,
    ) {
        // A reply to a read of an earlier incarnation would resolve this incarnation's read
        // of the same number at an index that may predate writes acknowledged since.
        let ours = id.incarnation == self.reads.incarnation;
        let sent = self.reads.forwarded.get(&id.seq);
        if !ours && sent.is_some() {
            self.reads.earlier_incarnation_replies += 1;
        }
        if !ours || sent.is_none_or(|f| f.leader != from) {
            // Timed out or failed already, or meant for an earlier incarnation.
            tracing::debug!(%from, ?id, "dropping a read reply that matches no pending read");
            return;
        }
        let request = self
            .reads
            .forwarded
            .remove(&id.seq)
            .expect("checked above")
            .request;
        let result = index.ok_or_else(|| Error::ReadAborted("the leader refused".to_string()));
        self.reads.ready.push(ReadState { request, result });
    }

    fn leader_read(&mut self, requester: Requester) {
        assert_eq!(self.role, Role::Leader);
        if self.cfg.bugs.read_without_read_index {
            // BUG (planted, `read_without_read_index`): serve at the local commit index
            // without checking that this replica is still the leader.
            let (me, term, commit) = (self.cfg.id, self.term, self.commit);
            return self
                .reads
                .complete(requester, Ok(commit), &mut self.msgs, me, term);
        }
        if self.lease_valid() {
            tracing::debug!(commit = %self.commit, "read served from the lease");
            let (me, term, commit) = (self.cfg.id, self.term, self.commit);
            return self
                .reads
                .complete(requester, Ok(commit), &mut self.msgs, me, term);
        }
        let deadline = self.reads.ticks + 2 * u64::from(self.cfg.election_ticks_max);
        // BUG (planted, `read_index_before_own_term_commit`): reads at a commit index that
        // may still lag what an earlier leader committed.
        if self.log.term(self.commit) != Some(self.term)
            && !self.cfg.bugs.read_index_before_own_term_commit
        {
            self.reads.waiting_for_commit.push((requester, deadline));
            return;
        }
        self.register_read(requester, deadline);
    }

    fn register_read(&mut self, requester: Requester, deadline: u64) {
        let index = self.commit;
        let me = self.cfg.id;
        if self.membership().has_quorum(|id| id == me) {
            let (me, term) = (self.cfg.id, self.term);
            return self
                .reads
                .complete(requester, Ok(index), &mut self.msgs, me, term);
        }
        self.reads.round += 1;
        let round = self.reads.round;
        self.reads.pending.push_back(PendingRead {
            requester,
            index,
            round,
            deadline,
        });
        self.heartbeat_pending = true;
    }

    pub(super) fn release_reads_waiting_for_commit(&mut self) {
        for (requester, deadline) in std::mem::take(&mut self.reads.waiting_for_commit) {
            self.register_read(requester, deadline);
        }
    }

    /// Completes every read whose round a quorum has answered.
    pub(super) fn confirm_reads(&mut self) {
        while let Some(front) = self.reads.pending.front() {
            let (me, round, progress) = (self.cfg.id, front.round, &self.progress);
            let confirmed = self.membership().has_quorum(|id| {
                id == me || progress.get(&id).is_some_and(|p| p.read_round >= round)
            });
            if !confirmed {
                break;
            }
            let read = self.reads.pending.pop_front().expect("front exists");
            let (me, term) = (self.cfg.id, self.term);
            self.reads
                .complete(read.requester, Ok(read.index), &mut self.msgs, me, term);
        }
    }

    pub(super) fn tick_reads(&mut self) {
        if self.role == Role::Leader {
            self.expire_leader_reads();
        }
        let limit = self.cfg.election_ticks_max;
        let mut expired = Vec::new();
        for (seq, forwarded) in self.reads.forwarded.iter_mut() {
            forwarded.ticks += 1;
            if forwarded.ticks > limit {
                expired.push(*seq);
            }
        }
        for seq in expired {
            let request = self
                .reads
                .forwarded
                .remove(&seq)
                .expect("just seen")
                .request;
            let result = Err(Error::ReadAborted(
                "timed out waiting for the leader".to_string(),
            ));
            self.reads.ready.push(ReadState { request, result });
        }
    }

    /// Fails leader reads that a quorum has not confirmed in time (without CheckQuorum, a
    /// partitioned leader would otherwise hold them forever).
    fn expire_leader_reads(&mut self) {
        self.reads.ticks += 1;
        let now = self.reads.ticks;
        let (me, term) = (self.cfg.id, self.term);
        let mut expired: Vec<Requester> = Vec::new();
        self.reads
            .waiting_for_commit
            .retain(|(requester, deadline)| {
                let keep = *deadline > now;
                if !keep {
                    expired.push(*requester);
                }
                keep
            });
        while self
            .reads
            .pending
            .front()
            .is_some_and(|p| p.deadline <= now)
        {
            expired.push(
                self.reads
                    .pending
                    .pop_front()
                    .expect("front exists")
                    .requester,
            );
        }
        for requester in expired {
            let error = Error::ReadAborted("leadership not confirmed in time".to_string());
            self.reads
                .complete(requester, Err(error), &mut self.msgs, me, term);
        }
    }
}
