//! The protocol core: a pure state machine with no I/O.
//!
//! Inputs are [`Raft::step`] (a peer message), [`Raft::tick`] (logical time),
//! [`Raft::propose`], [`Raft::read_index`], [`Raft::on_persisted`] (a `Ready` is durable) and
//! [`Raft::snapshot_taken`]. Outputs are collected in a numbered [`Ready`]; the messages that
//! wait for a `Ready` to be durable stay here, under its number, until its receipt arrives.
//!
//! The code is split by concern: `election` (votes, PreVote, CheckQuorum, role changes),
//! `replication` (AppendEntries, commit, heartbeats), `snapshot` (chunked InstallSnapshot) and
//! `read` (ReadIndex).

mod election;
mod lease;
mod membership;
mod read;
mod reorder;
mod replication;
mod snapshot;
mod step;
mod transfer;

use crate::config::Config;
use crate::error::Error;
use crate::log::RaftLog;
use crate::membership::Membership;
use crate::message::Message;
use crate::progress::Progress;
use crate::ready::{LeaderChange, PersistReceipt, Ready, ReadyNumber};
use crate::types::{Entry, EntryKind, HardState, LogIndex, NodeId, Role, Snapshot, Term};
use lease::Lease;
use membership::Configs;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use read::ReadQueue;
use snapshot::IncomingSnapshot;
use std::collections::{BTreeMap, VecDeque};
use transfer::Transfer;

/// Largest command accepted by [`Raft::propose`]. Together with the per-append byte limit it
/// keeps every message and WAL record far below their decoding limits.
pub const PROPOSAL_BYTES_MAX: usize = 8 * 1024 * 1024;

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
    /// Number of the last `Ready` handed out.
    last_ready: ReadyNumber,
    /// `Ready`s handed out and not yet persisted, oldest first, each with the messages that
    /// wait for it to be durable.
    awaiting_persist: VecDeque<(ReadyNumber, Vec<Message>)>,
    reads: ReadQueue,
    /// The latest local snapshot, served to lagging followers.
    snapshot: Option<Snapshot>,
    incoming: Option<IncomingSnapshot>,
    snapshot_to_install: Option<Box<Snapshot>>,
    /// Committed entries have been handed out up to here.
    applied: LogIndex,
    /// Hard state last handed out for persistence.
    handed_hard_state: HardState,
    reported_leader: (Option<NodeId>, Term),
    append_pending: bool,
    heartbeat_pending: bool,
    /// Every member of the configuration in effect (voters and learners) except this
    /// replica, in id order.
    others: Vec<NodeId>,
    /// Leadership transfer in progress (leader only).
    transfer: Option<Transfer>,
    /// Lease-read bookkeeping (leader only, with `Config::lease_reads`).
    lease: Lease,
    /// Configurations in the snapshot and the log.
    configs: Configs,
    /// Scratch space for the commit computation, kept to avoid an allocation per ack.
    match_scratch: Vec<LogIndex>,
    /// A restarted replica refuses votes until its first election timeout has passed, since
    /// it may have promised a leader (through a heartbeat answer) to wait (lease reads only).
    vote_embargo: bool,
    /// Ticks since a leader was last heard from (or this replica last campaigned). Unlike
    /// the election timer, vote requests do not restart it; it lets a learner campaign once
    /// the voters have failed to elect anyone for long (see `may_campaign`).
    leader_silent_ticks: u32,
    /// Ticks run since this replica was opened: how observers measure the protocol's own
    /// timeouts (a transfer's, say) in the unit the protocol counts them in.
    ticks: u64,
    /// Appends from the current leader that arrived ahead of a gap (follower only).
    early_appends: reorder::ReorderBuffer,
}

impl Raft {
    /// Builds the protocol state from what storage recovered.
    ///
    /// `entries` must directly follow `snapshot` (or index 0). The state machine is assumed to
    /// be restored to the snapshot, so entries after it up to the commit index will be handed
    /// out again as committed entries.
    ///
    /// `rng_seed` seeds the election timer and also names this incarnation in forwarded read
    /// requests, so it must differ from the seed of every earlier incarnation of this replica
    /// (a fresh random value does): a reply to the previous incarnation's read is then told
    /// apart and dropped.
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
        let base = match &snapshot {
            Some(snapshot) => snapshot.membership.clone(),
            None if cfg.join_existing => Membership::default(),
            None => Membership::new(cfg.peers.clone()),
        };
        let configs = Configs::recovered(base, &entries);
        let log = RaftLog::recovered(meta, entries);
        let commit = hard_state.commit.max(meta.index).min(log.last_index());
        let mut raft = Raft {
            // The term is persisted with (or before) any entry of that term; taking the max
            // keeps the invariant "no log entry is newer than the current term" regardless.
            term: hard_state.term.max(meta.term).max(log.last_term()),
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
            last_ready: ReadyNumber(0),
            awaiting_persist: VecDeque::new(),
            reads: ReadQueue::new(incarnation_nonce(rng_seed)),
            snapshot,
            incoming: None,
            snapshot_to_install: None,
            applied: meta.index,
            handed_hard_state: hard_state,
            reported_leader: (None, Term(0)),
            append_pending: false,
            heartbeat_pending: false,
            others: Vec::new(),
            configs,
            match_scratch: Vec::new(),
            transfer: None,
            lease: Lease::default(),
            vote_embargo: cfg.lease_reads,
            leader_silent_ticks: 0,
            ticks: 0,
            early_appends: reorder::ReorderBuffer::default(),
            cfg,
        };
        if raft.term != hard_state.term {
            raft.vote = None;
        }
        raft.membership_changed();
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
    /// `Error::NotLeader` on a non-leader, `Error::TransferInProgress` while leadership is
    /// being handed over (see [`Raft::transfer_leadership`]), `Error::ProposalTooLarge` above
    /// [`PROPOSAL_BYTES_MAX`].
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(LogIndex, Term), Error> {
        if self.role != Role::Leader {
            return Err(Error::NotLeader { hint: self.leader });
        }
        if let Some(transfer) = self.transfer {
            return Err(Error::TransferInProgress {
                target: transfer.target,
            });
        }
        if data.len() > PROPOSAL_BYTES_MAX {
            return Err(Error::ProposalTooLarge {
                len: data.len(),
                max: PROPOSAL_BYTES_MAX,
            });
        }
        let index = self.log.last_index().next();
        self.log.push(Entry {
            term: self.term,
            index,
            kind: EntryKind::Normal(data.into()),
        });
        // The entry goes out with the next `ready()`, batched with any other proposals made
        // until then; the leader counts it toward commit once its own write is durable.
        self.append_pending = true;
        Ok((index, self.term))
    }

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.ticks += 1;
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.tick_election();
        }
        self.tick_reads();
    }

    /// Bytes of the log entries held in memory: what compaction keeps bounded once the state
    /// machine is snapshotted (for observers; O(entries)).
    pub fn log_entries_bytes(&self) -> u64 {
        self.log.entries_bytes()
    }

    /// Ticks run since this replica was opened.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// True if [`Raft::ready`] would return something to do.
    pub fn has_ready(&self) -> bool {
        (self.role == Role::Leader && (self.append_pending || self.heartbeat_pending))
            || !self.msgs.is_empty()
            || !self.msgs_after_persist.is_empty()
            || self.log.has_unpersisted()
            || self.hard_state() != self.handed_hard_state
            || self.snapshot_to_install.is_some()
            || self.commit.min(self.log.stable()) > self.applied
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
        self.last_ready = ReadyNumber(self.last_ready.0 + 1);
        let hs = self.hard_state();
        let mut must_sync = false;
        let hard_state = (hs != self.handed_hard_state).then(|| {
            // BUG (planted, `term_not_persisted_on_higher_term`): a new term alone is not synced.
            let term_changed = hs.term != self.handed_hard_state.term
                && !self.cfg.bugs.term_not_persisted_on_higher_term;
            must_sync = term_changed || hs.vote != self.handed_hard_state.vote;
            hs
        });
        let snapshot = self.snapshot_to_install.take();
        let entries = self.log.take_unpersisted();
        must_sync |= !entries.is_empty() || snapshot.is_some();
        self.awaiting_persist.push_back((
            self.last_ready,
            std::mem::take(&mut self.msgs_after_persist),
        ));
        // Only entries durable here are applied: a local snapshot taken at the applied index
        // then never covers entries this replica could still lose.
        let upto = self.commit.min(self.log.stable());
        let committed = if upto > self.applied {
            let entries = self
                .log
                .slice(self.applied.next(), upto, usize::MAX, u64::MAX);
            self.applied = upto;
            entries
        } else {
            Vec::new()
        };
        let mut leader_change = None;
        if (self.leader, self.term) != self.reported_leader && self.leader_change_due() {
            self.reported_leader = (self.leader, self.term);
            leader_change = Some(LeaderChange {
                leader: self.leader,
                term: self.term,
            });
        }
        self.handed_hard_state = hs;
        Ready {
            number: self.last_ready,
            hard_state,
            entries,
            snapshot,
            messages: std::mem::take(&mut self.msgs),
            committed_entries: committed,
            read_states: self.reads.take_ready(),
            leader_change,
            must_sync,
        }
    }

    /// Records that a `Ready` is durable, and returns the messages that waited for it (votes,
    /// append acknowledgements, snapshot completions), to be sent now.
    ///
    /// # Panics
    /// If `receipt` is not for the oldest `Ready` not yet persisted: receipts must come in
    /// order, one per `Ready`, since a receipt for `Ready` N vouches for every earlier one too.
    pub fn on_persisted(&mut self, receipt: PersistReceipt) -> Vec<Message> {
        let (number, messages) = self
            .awaiting_persist
            .pop_front()
            .unwrap_or_else(|| panic!("receipt {} for no Ready in flight", receipt.number));
        assert_eq!(
            receipt.number, number,
            "receipt {} presented while Ready {number} is the oldest in flight",
            receipt.number
        );
        if let Some((index, term)) = receipt.last {
            self.log.mark_stable(index, term);
        }
        if self.role == Role::Leader && self.maybe_commit() {
            self.on_commit_advanced();
        }
        // An answer from an older term is stale by the time it is durable: its leader has been
        // replaced, and the log it vouched for may have been replaced since (truncated for the
        // newer leader) while the answer waited for its fsync. Dropping it is a lost message.
        let term = self.term;
        let mut messages = messages;
        messages.retain(|m| m.term >= term || !is_answer(&m.body));
        messages
    }

    /// `Ready`s handed out whose receipts have not come back yet.
    pub fn readies_in_flight(&self) -> usize {
        self.awaiting_persist.len()
    }

    /// The last log entry durable on this replica's disk (as far as receipts have shown) that
    /// is still in its log: what the replica may count on after a crash. An entry replaced in
    /// memory by a newer leader's no longer counts, even before the replacement is written.
    pub fn durable_log(&self) -> (LogIndex, Term) {
        self.log.stable_point()
    }

    /// Records that the state machine was snapshotted at `snapshot.meta.index` and the snapshot
    /// is durable, so the log up to there can be dropped.
    ///
    /// # Panics
    /// If the snapshot is beyond the applied index, disagrees with the log, or carries a
    /// configuration other than [`Raft::membership_at`] its index.
    pub fn snapshot_taken(&mut self, snapshot: Snapshot) {
        assert!(
            snapshot.meta.index <= self.applied,
            "snapshot beyond applied index"
        );
        if snapshot.meta.index <= self.log.snapshot_meta().index {
            return;
        }
        assert_eq!(
            snapshot.membership,
            self.membership_at(snapshot.meta.index),
            "snapshot carries the configuration at its index"
        );
        self.log.compact(snapshot.meta);
        self.configs_compacted(snapshot.meta.index);
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

    /// The `i`-th peer other than this replica (iterate by position so that `self` stays
    /// free for mutable use in the loop).
    fn other(&self, i: usize) -> NodeId {
        self.others[i]
    }
}

/// Names an incarnation after the seed it was opened with (splitmix64's finalizer, a
/// bijection, so distinct seeds give distinct nonces) without drawing from the timer RNG.
fn incarnation_nonce(rng_seed: u64) -> u64 {
    let mut z = rng_seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// True for the answers that promise durable state (votes, acknowledgements).
fn is_answer(body: &crate::message::MessageBody) -> bool {
    use crate::message::MessageBody;
    matches!(
        body,
        MessageBody::AppendEntriesResponse(_)
            | MessageBody::RequestVoteResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. }
    )
}

/// Who sent a message, at which term; the part of a message vote handling needs.
struct MsgHeader {
    from: NodeId,
    term: Term,
}

fn msg_header(from: NodeId, term: Term) -> MsgHeader {
    MsgHeader { from, term }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Bugs;
    use crate::message::MessageBody;

    fn follower(bugs: Bugs) -> Raft {
        let mut cfg = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
        cfg.bugs = bugs;
        Raft::new(cfg, HardState::default(), None, Vec::new(), 1).unwrap()
    }

    fn vote_request() -> Message {
        let body = MessageBody::RequestVote {
            pre_vote: false,
            last_log_index: LogIndex(0),
            last_log_term: Term(0),
        };
        Message {
            from: NodeId(2),
            to: NodeId(1),
            term: Term(1),
            body,
        }
    }

    #[test]
    fn a_vote_waits_for_persistence() {
        let mut raft = follower(Bugs::default());
        raft.step(vote_request());
        let rd = raft.ready();
        assert!(
            rd.messages().is_empty(),
            "nothing may leave before the vote is durable"
        );
        assert!(rd.must_sync());
        assert_eq!(rd.hard_state().map(|hs| hs.vote), Some(Some(NodeId(2))));
        let released = raft.on_persisted(rd.ticket().into_receipt());
        assert_eq!(released.len(), 1, "the vote leaves with its receipt");
    }

    #[test]
    fn the_planted_bug_sends_the_vote_early() {
        let mut raft = follower(Bugs::from_name("vote_before_persist").unwrap());
        raft.step(vote_request());
        let rd = raft.ready();
        assert_eq!(rd.messages().len(), 1);
        assert!(raft.on_persisted(rd.ticket().into_receipt()).is_empty());
    }

    #[test]
    fn misaddressed_messages_are_ignored() {
        let mut raft = follower(Bugs::default());
        let mut msg = vote_request();
        msg.to = NodeId(2);
        raft.step(msg);
        assert!(!raft.has_ready());
        // From a non-member, only leader messages and (with no leader heard of) vote
        // requests are accepted.
        let mut msg = vote_request();
        msg.from = NodeId(9);
        msg.body = MessageBody::ReadIndex {
            request: crate::message::ForwardedReadId {
                incarnation: 0,
                seq: 1,
            },
        };
        raft.step(msg);
        assert!(!raft.has_ready());
    }
}
