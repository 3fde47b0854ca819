//! The protocol core: a pure state machine with no I/O.
//!
//! Inputs are [`Raft::step`] (a peer message), [`Raft::tick`] (logical time),
//! [`Raft::propose`], [`Raft::read_index`], [`Raft::advance`] (persistence done) and
//! [`Raft::snapshot_taken`]. Outputs are collected in a [`Ready`].
//!
//! The code is split by concern: `election` (votes, PreVote, CheckQuorum, role changes),
//! `replication` (AppendEntries, commit, heartbeats), `snapshot` (chunked InstallSnapshot) and
//! `read` (ReadIndex).

mod election;
mod read;
mod replication;
mod snapshot;

use crate::config::Config;
use crate::error::Error;
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::ready::{LeaderChange, PersistReceipt, Ready};
use crate::types::{Entry, EntryKind, HardState, LogIndex, NodeId, Role, Snapshot, Term};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use read::ReadQueue;
use snapshot::IncomingSnapshot;
use std::collections::BTreeMap;

/// The Raft protocol state of one replica.
#[derive(Debug)]
pub struct Raft {
    cfg: Config,
    term: Term,
    vote: Option<NodeId>,
    commit: LogIndex,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    /// Replication progress of every other peer (leader only).
    progress: BTreeMap<NodeId, Progress>,
    /// Votes received in the current (pre-)election.
    votes: BTreeMap<NodeId, bool>,
    election_elapsed: u32,
    heartbeat_elapsed: u32,
    randomized_election_ticks: u32,
    rng: SmallRng,
    msgs: Vec<Message>,
    msgs_after_persist: Vec<Message>,
    reads: ReadQueue,
    /// The latest local snapshot, served to lagging followers.
    snapshot: Option<Snapshot>,
    incoming: Option<IncomingSnapshot>,
    snapshot_to_install: Option<Snapshot>,
    /// Committed entries have been handed out up to here.
    applied: LogIndex,
    /// Hard state last handed out for persistence.
    handed_hard_state: HardState,
    reported_leader: (Option<NodeId>, Term),
    append_pending: bool,
    heartbeat_pending: bool,
    /// Every peer except this replica, in id order.
    others: Vec<NodeId>,
    /// Scratch space for the commit computation, kept to avoid an allocation per ack.
    match_scratch: Vec<LogIndex>,
}

impl Raft {
    /// Builds the protocol state from what storage recovered.
    ///
    /// `entries` must directly follow `snapshot` (or index 0). The state machine is assumed to
    /// be restored to the snapshot, so entries after it up to the commit index will be handed
    /// out again as committed entries.
    ///
    /// # Errors
    /// An invalid configuration.
    pub fn new(
        cfg: Config,
        hard_state: HardState,
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        rng_seed: u64,
    ) -> Result<Raft, Error> {
        cfg.validate()?;
        let meta = snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
        let log = RaftLog::recovered(meta, entries);
        let commit = hard_state.commit.max(meta.index).min(log.last_index());
        let mut raft = Raft {
            term: hard_state.term.max(meta.term),
            vote: hard_state.vote,
            commit,
            role: Role::Follower,
            leader: None,
            log,
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_ticks: cfg.election_ticks_min,
            rng: SmallRng::seed_from_u64(rng_seed),
            msgs: Vec::new(),
            msgs_after_persist: Vec::new(),
            reads: ReadQueue::default(),
            snapshot,
            incoming: None,
            snapshot_to_install: None,
            applied: meta.index,
            handed_hard_state: hard_state,
            reported_leader: (None, Term(0)),
            append_pending: false,
            heartbeat_pending: false,
            others: cfg.peers.iter().copied().filter(|p| *p != cfg.id).collect(),
            match_scratch: Vec::with_capacity(cfg.peers.len()),
            cfg,
        };
        if raft.term != hard_state.term {
            raft.vote = None;
        }
        raft.reset_election_timer();
        Ok(raft)
    }

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The leader this replica believes in.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Commit index.
    pub fn commit(&self) -> LogIndex {
        self.commit
    }

    /// Index up to which committed entries have been handed out for applying.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// First index still in the log.
    pub fn first_index(&self) -> LogIndex {
        self.log.first_index()
    }

    /// Last index in the log.
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }

    /// Term of the entry at `index`, if still known.
    pub fn entry_term(&self, index: LogIndex) -> Option<Term> {
        self.log.term(index)
    }

    /// The current hard state.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.commit,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Proposes a command; only the leader accepts it. Proposals made between two
    /// [`Raft::ready`] calls are batched into one append per follower.
    ///
    /// # Errors
    /// `Error::NotLeader` on a non-leader.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(LogIndex, Term), Error> {
        if self.role != Role::Leader {
            return Err(Error::NotLeader { hint: self.leader });
        }
        let index = self.log.last_index().next();
        self.log.push(Entry {
            term: self.term,
            index,
            kind: EntryKind::Normal(data.into()),
        });
        self.append_pending = true;
        if self.cfg.peers.len() == 1 {
            // A single voter commits once its own write is durable (see `advance`).
            debug_assert!(self.progress.is_empty());
        }
        Ok((index, self.term))
    }

    /// Handles a message from a peer. Messages not addressed to this replica, or from unknown
    /// peers, are ignored.
    pub fn step(&mut self, msg: Message) {
        if msg.to != self.cfg.id || msg.from == self.cfg.id || !self.cfg.peers.contains(&msg.from) {
            tracing::debug!(from = %msg.from, to = %msg.to, "ignoring misaddressed message");
            return;
        }
        if !self.step_term(&msg) {
            return;
        }
        match self.role {
            Role::Leader => self.step_leader(msg),
            Role::Candidate | Role::PreCandidate => self.step_candidate(msg),
            Role::Follower => self.step_follower(msg),
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
            MessageBody::RequestVote {
                pre_vote,
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(
                &msg_header(from, msg.term),
                pre_vote,
                last_log_index,
                last_log_term,
            ),
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
            MessageBody::RequestVote {
                pre_vote,
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(
                &msg_header(msg.from, msg.term),
                pre_vote,
                last_log_index,
                last_log_term,
            ),
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
            } => self.handle_snapshot_chunk(from, meta, offset, data, total_len, checksum),
            MessageBody::RequestVote {
                pre_vote,
                last_log_index,
                last_log_term,
            } => self.handle_request_vote(
                &msg_header(from, msg.term),
                pre_vote,
                last_log_index,
                last_log_term,
            ),
            MessageBody::ReadIndex { request } => self.reject_read_index(from, request),
            MessageBody::ReadIndexResponse { request, index } => {
                self.handle_read_index_response(request, index)
            }
            _ => {}
        }
    }

    /// Queues a message. Messages that promise durable state (votes, append acknowledgements,
    /// snapshot completion, vote requests that carry our own vote) wait for persistence.
    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_at(to, self.term, body)
    }

    fn send_at(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let after_persist = match &body {
            MessageBody::RequestVote { pre_vote, .. } => !pre_vote,
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

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.tick_election();
        }
        self.tick_reads();
    }

    /// True if [`Raft::ready`] would return something to do.
    pub fn has_ready(&self) -> bool {
        (self.role == Role::Leader && (self.append_pending || self.heartbeat_pending))
            || !self.msgs.is_empty()
            || !self.msgs_after_persist.is_empty()
            || self.log.has_unpersisted()
            || self.hard_state() != self.handed_hard_state
            || self.snapshot_to_install.is_some()
            || self.commit.min(self.log.last_index()) > self.applied
            || self.reads.has_ready()
            || (self.leader, self.term) != self.reported_leader && self.leader_change_due()
    }

    fn leader_change_due(&self) -> bool {
        self.leader != self.reported_leader.0 || self.leader.is_some()
    }

    /// Collects everything to do; see the [`ready`](crate::ready) module for the order.
    pub fn ready(&mut self) -> Ready {
        if self.role == Role::Leader {
            if self.append_pending {
                self.append_pending = false;
                self.broadcast_append();
            }
            if self.heartbeat_pending {
                self.heartbeat_pending = false;
                self.broadcast_heartbeat();
            }
        }
        let mut rd = Ready::default();
        let hs = self.hard_state();
        if hs != self.handed_hard_state {
            rd.must_sync =
                hs.term != self.handed_hard_state.term || hs.vote != self.handed_hard_state.vote;
            rd.hard_state = Some(hs);
        }
        rd.snapshot = self.snapshot_to_install.take();
        rd.entries = self.log.take_unpersisted();
        rd.must_sync |= !rd.entries.is_empty() || rd.snapshot.is_some();
        rd.messages = std::mem::take(&mut self.msgs);
        rd.set_messages_after_persist(std::mem::take(&mut self.msgs_after_persist));
        let upto = self.commit.min(self.log.last_index());
        if upto > self.applied {
            rd.committed_entries = self
                .log
                .slice(self.applied.next(), upto, usize::MAX, u64::MAX);
            self.applied = upto;
        }
        rd.read_states = self.reads.take_ready();
        if (self.leader, self.term) != self.reported_leader && self.leader_change_due() {
            self.reported_leader = (self.leader, self.term);
            rd.leader_change = Some(LeaderChange {
                leader: self.leader,
                term: self.term,
            });
        }
        self.handed_hard_state = hs;
        rd
    }

    /// Records that a `Ready` was persisted.
    pub fn advance(&mut self, receipt: PersistReceipt) {
        if let Some((index, term)) = receipt.last {
            self.log.mark_stable(index, term);
        }
        if self.role == Role::Leader && self.maybe_commit() {
            self.on_commit_advanced();
        }
    }

    /// Records that the state machine was snapshotted at `snapshot.meta.index` and the snapshot
    /// is durable, so the log up to there can be dropped.
    ///
    /// # Panics
    /// If the snapshot is beyond the applied index or disagrees with the log.
    pub fn snapshot_taken(&mut self, snapshot: Snapshot) {
        assert!(
            snapshot.meta.index <= self.applied,
            "snapshot beyond applied index"
        );
        if snapshot.meta.index <= self.log.snapshot_meta().index {
            return;
        }
        self.log.compact(snapshot.meta);
        self.snapshot = Some(snapshot);
    }

    fn reset_election_timer(&mut self) {
        use rand::Rng;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let (min, max) = (self.cfg.election_ticks_min, self.cfg.election_ticks_max);
        self.randomized_election_ticks = self.rng.gen_range(min..max);
        assert!(self.randomized_election_ticks >= min);
        assert!(self.randomized_election_ticks < max);
    }

    fn quorum(&self) -> usize {
        self.cfg.quorum()
    }

    /// The `i`-th peer other than this replica (iterate by position so that `self` stays
    /// free for mutable use in the loop).
    fn other(&self, i: usize) -> NodeId {
        self.others[i]
    }
}

/// Who sent a message, at which term; the part of a message vote handling needs.
struct MsgHeader {
    from: NodeId,
    term: Term,
}

fn msg_header(from: NodeId, term: Term) -> MsgHeader {
    MsgHeader { from, term }
}
