//! The driver that runs one replica over [`Net`], [`Disk`] and [`Clock`].
//!
//! Every public call runs the protocol core until it is quiet: it sends messages, writes to
//! the WAL, applies committed entries and resolves reads, in the order the [`Ready`] contract
//! demands. The node owns no threads and never blocks; the caller decides when to deliver
//! messages and when to call [`Node::on_timer`].
//!
//! With [`Persistence::Synchronous`] (the default) each `Ready` is synced as soon as it is
//! written, inside the same call. With [`Persistence::Asynchronous`] a write only reaches the
//! page cache; the caller decides when each fsync completes and reports it with
//! [`Node::complete_sync`], and only then do the votes and acknowledgements that wait for it
//! leave. Meanwhile the node goes on: a leader keeps replicating, and several `Ready`s may be
//! waiting for their fsync at once.

use crate::config::Config;
use crate::error::Error;
pub use crate::events::{Event, ProposalId, ReadId, Status};
use crate::io::{Clock, Disk, Instant, Net, Storage};
use crate::membership::{Membership, MembershipChange};
use crate::message::Message;
use crate::raft::Raft;
use crate::ready::{PersistReceipt, ReadState, Ready, Ticket};
use crate::state_machine::StateMachine;
use crate::types::{Entry, EntryKind, HardState, LogIndex, NodeId, Snapshot, SnapshotMeta, Term};
use crate::wal::Wal;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// How a [`Node`] makes its writes durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Persistence {
    /// Every `Ready` is written and synced within the call that produced it.
    #[default]
    Synchronous,
    /// Every `Ready` is written at once and synced when the caller says the fsync completed
    /// ([`Node::complete_sync`], once per [`Node::syncs_pending`], oldest first).
    Asynchronous,
}

/// What the node last reported in [`Event::Persisted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Promise {
    log: (LogIndex, Term),
    term: Term,
    vote: Option<NodeId>,
}

/// Most ticks replayed by one [`Node::on_timer`] call; a larger clock jump is not replayed
/// tick by tick, since it could only trigger the same election again.
const TICKS_PER_TIMER_MAX: u32 = 64;

/// One replica: the protocol core plus its WAL, state machine, network and clock.
pub struct Node<N: Net, D: Disk, C: Clock, S: StateMachine> {
    raft: Raft,
    wal: Wal<D>,
    net: N,
    clock: C,
    sm: S,
    events: Vec<Event>,
    next_tick: Instant,
    tick_micros: u64,
    snapshot_threshold_bytes: u64,
    next_proposal: u64,
    next_read: u64,
    /// Proposals not yet resolved, by log index, with the term they were proposed in.
    proposals: BTreeMap<LogIndex, (ProposalId, Term)>,
    /// Confirmed reads waiting for the state machine to reach their index.
    reads_waiting_apply: Vec<(ReadId, LogIndex)>,
    applied: LogIndex,
    /// Whether to report [`Event::Applied`].
    emit_applied: bool,
    /// Log bytes right after the last snapshot, so a snapshot that could not free much is
    /// not retried on every step.
    log_bytes_after_snapshot: u64,
    /// Last log index right after the last snapshot: the entries up to here that it left in
    /// the log were not applied then, and once they are a new snapshot frees them.
    last_index_after_snapshot: LogIndex,
    stopped: Option<String>,
    persistence: Persistence,
    /// Written `Ready`s waiting for their fsync, oldest first. The front one always needs a
    /// sync; tickets that need none are completed as soon as nothing is ahead of them.
    tickets: VecDeque<Ticket>,
    /// The hard state last made durable.
    durable_hard_state: HardState,
    promised: Option<Promise>,
}

impl<N: Net, D: Disk, C: Clock, S: StateMachine> Node<N, D, C, S> {
    /// Opens a replica, recovering hard state, snapshot and log tail from `disk`, restoring
    /// the state machine from the snapshot and re-applying committed entries. `rng_seed` must
    /// differ from every earlier opening's of this replica (see [`Raft::new`]).
    ///
    /// # Errors
    /// An invalid configuration, a disk failure, a snapshot the state machine rejects, or WAL
    /// corruption ([`WalError::Corrupt`](crate::WalError) names the file and offset).
    pub fn open(
        config: Config,
        net: N,
        disk: D,
        clock: C,
        sm: S,
        rng_seed: u64,
    ) -> Result<Self, Error> {
        Self::open_with(
            config,
            net,
            disk,
            clock,
            sm,
            rng_seed,
            Persistence::Synchronous,
        )
    }

    /// As [`Node::open`], with the given persistence mode.
    ///
    /// # Errors
    /// As for [`Node::open`].
    pub fn open_with(
        config: Config,
        net: N,
        disk: D,
        clock: C,
        mut sm: S,
        rng_seed: u64,
        persistence: Persistence,
    ) -> Result<Self, Error> {
        config.validate()?;
        // Several segments per threshold, so compaction can delete whole segments early.
        let segment_bytes = (config.snapshot_threshold_bytes / 8).clamp(4 * 1024, 4 * 1024 * 1024);
        let (wal, recovered) = Wal::open(disk, segment_bytes, config.bugs)?;
        let mut applied = LogIndex(0);
        if let Some(snapshot) = &recovered.snapshot {
            sm.restore(&snapshot.data).map_err(Error::Restore)?;
            applied = snapshot.meta.index;
        }
        let tick_micros = config.tick_micros;
        let snapshot_threshold_bytes = config.snapshot_threshold_bytes;
        let durable_hard_state = recovered.hard_state;
        let raft = Raft::new(
            config,
            recovered.hard_state,
            recovered.snapshot,
            recovered.entries,
            rng_seed,
        )?;
        let mut raft = raft;
        raft.set_clock_drift_bound_ppm(clock.drift_bound_ppm());
        let next_tick = clock.now().plus_micros(tick_micros);
        let mut node = Node {
            raft,
            wal,
            net,
            clock,
            sm,
            events: Vec::new(),
            next_tick,
            tick_micros,
            snapshot_threshold_bytes,
            next_proposal: 1,
            next_read: 1,
            proposals: BTreeMap::new(),
            reads_waiting_apply: Vec::new(),
            applied,
            log_bytes_after_snapshot: 0,
            last_index_after_snapshot: LogIndex(0),
            emit_applied: true,
            stopped: None,
            persistence,
            tickets: VecDeque::new(),
            durable_hard_state,
            promised: None,
        };
        node.report_promise();
        node.process()?;
        Ok(node)
    }

    /// A span naming this replica, entered by every public entry point so that log lines say
    /// which node wrote them.
    fn span(&self) -> tracing::span::EnteredSpan {
        tracing::debug_span!("raft", node = self.raft.id().0).entered()
    }

    fn check_running(&self) -> Result<(), Error> {
        match &self.stopped {
            Some(reason) => Err(Error::Stopped(reason.clone())),
            None => Ok(()),
        }
    }

    /// Handles a message from a peer, then persists, sends and applies as needed.
    ///
    /// # Errors
    /// A disk failure; the node then stops and every later call returns `Error::Stopped`.
    pub fn receive(&mut self, msg: Message) -> Result<(), Error> {
        let _span = self.span();
        self.check_running()?;
        self.ticks_before_reads();
        self.raft.step(msg);
        self.process()
    }

    /// Advances logical time by the ticks that elapsed on the clock; call it at or after
    /// [`Node::next_deadline`].
    ///
    /// # Errors
    /// As for [`Node::receive`].
    pub fn on_timer(&mut self) -> Result<(), Error> {
        let _span = self.span();
        self.check_running()?;
        self.catch_up_ticks();
        self.process()
    }

    /// Runs the ticks that elapsed on the clock, at most [`TICKS_PER_TIMER_MAX`] of them.
    fn catch_up_ticks(&mut self) {
        let now = self.clock.now();
        let mut ticks = 0;
        while self.next_tick <= now && ticks < TICKS_PER_TIMER_MAX {
            self.raft.tick();
            self.next_tick = self.next_tick.plus_micros(self.tick_micros);
            ticks += 1;
        }
        if self.next_tick <= now {
            self.raft.ticks_skipped();
            self.next_tick = now.plus_micros(self.tick_micros);
        }
    }

    /// With lease reads, the lease is counted in ticks, so the ticks must be current before
    /// anything can be served from it: a caller that was late to call [`Node::on_timer`] (a
    /// paused process, a long fsync) would otherwise serve reads from a lease that has
    /// expired on the clock. Without lease reads, ticks are left to the timer.
    fn ticks_before_reads(&mut self) {
        if self.raft.config().lease_reads {
            self.catch_up_ticks();
        }
    }

    /// Starts an election now instead of waiting for the election timeout (with a PreVote
    /// round first if configured). Does nothing on a leader.
    ///
    /// # Errors
    /// As for [`Node::receive`].
    pub fn campaign(&mut self) -> Result<(), Error> {
        let _span = self.span();
        self.check_running()?;
        self.raft.campaign();
        self.process()
    }

    /// Hands leadership to `to` (Raft thesis §3.10). Until the transfer completes or aborts
    /// after an election timeout, [`Node::propose`] fails with `Error::TransferInProgress`;
    /// reads keep working. Completion shows as [`Event::LeaderChanged`] naming `to`. See
    /// [`Raft::transfer_leadership`] for repeated and self-directed requests.
    ///
    /// # Errors
    /// `Error::NotLeader`, `Error::UnknownPeer`, or as for [`Node::receive`].
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), Error> {
        let _span = self.span();
        self.check_running()?;
        self.raft.transfer_leadership(to)?;
        self.process()
    }

    /// Proposes a membership change (joint consensus for voter changes; see
    /// [`Raft::propose_membership`]). It resolves like a proposal; a voter change is complete
    /// once [`Node::membership`] is no longer joint on the leader.
    ///
    /// # Errors
    /// `Error::NotLeader`, `Error::TransferInProgress`, `Error::MembershipChange` (another
    /// change in flight, no own-term commit yet, learner not caught up, invalid change), or
    /// as for [`Node::receive`].
    pub fn change_membership(&mut self, change: MembershipChange) -> Result<ProposalId, Error> {
        let _span = self.span();
        self.check_running()?;
        let (index, term) = self.raft.propose_membership(change)?;
        let id = self.track_proposal(index, term);
        self.process()?;
        Ok(id)
    }

    /// The configuration in effect on this replica (the latest in its log).
    pub fn membership(&self) -> &Membership {
        self.raft.membership()
    }

    /// When [`Node::on_timer`] should next be called.
    pub fn next_deadline(&self) -> Instant {
        self.next_tick
    }

    /// Proposes a command. It resolves later as [`Event::Committed`] or
    /// [`Event::ProposalFailed`].
    ///
    /// # Errors
    /// `Error::NotLeader { hint }` if this replica is not the leader; `Error::Stopped`.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<ProposalId, Error> {
        let _span = self.span();
        self.check_running()?;
        let id = self.propose_one(data)?;
        self.process()?;
        Ok(id)
    }

    /// Proposes several commands at once; they share one append per follower and one WAL
    /// write.
    ///
    /// # Errors
    /// As for [`Node::propose`]; on `NotLeader` nothing was proposed.
    pub fn propose_many(&mut self, batch: Vec<Vec<u8>>) -> Result<Vec<ProposalId>, Error> {
        let _span = self.span();
        self.check_running()?;
        let mut ids = Vec::with_capacity(batch.len());
        for data in batch {
            ids.push(self.propose_one(data)?);
        }
        self.process()?;
        Ok(ids)
    }

    fn propose_one(&mut self, data: Vec<u8>) -> Result<ProposalId, Error> {
        let (index, term) = self.raft.propose(data)?;
        Ok(self.track_proposal(index, term))
    }

    fn track_proposal(&mut self, index: LogIndex, term: Term) -> ProposalId {
        let id = ProposalId(self.next_proposal);
        self.next_proposal += 1;
        // A stale proposal at the same index was overwritten by this one's leader term.
        if let Some((old, _)) = self.proposals.insert(index, (id, term)) {
            let error = Error::ProposalDropped { index };
            self.events.push(Event::ProposalFailed { id: old, error });
        }
        id
    }

    /// Starts a linearizable read barrier; once [`Event::ReadReady`] arrives, reading
    /// [`Node::state_machine`] is linearizable.
    ///
    /// # Errors
    /// `Error::NotLeader` if no leader is known; `Error::Stopped`.
    pub fn read_barrier(&mut self) -> Result<ReadId, Error> {
        let _span = self.span();
        self.check_running()?;
        self.ticks_before_reads();
        let id = ReadId(self.next_read);
        let asked = self.raft.read_index(id.0);
        if asked.is_ok() {
            self.next_read += 1;
        }
        // Even when refused: the ticks just run may have ended this replica's leader (or its
        // leadership), and what that produced (a campaign's messages, the leader change) is
        // due now, not at the next call.
        self.process()?;
        asked.map(|()| id)
    }

    /// Takes the events produced so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Observable state.
    pub fn status(&self) -> Status {
        Status {
            id: self.raft.id(),
            role: self.raft.role(),
            term: self.raft.term(),
            leader: self.raft.leader(),
            commit: self.raft.commit(),
            applied: self.applied,
            first_index: self.raft.first_index(),
            last_index: self.raft.last_index(),
        }
    }

    /// Term of the entry at `index`, if it is still in the log (or is the snapshot's last).
    pub fn entry_term(&self, index: LogIndex) -> Option<Term> {
        self.raft.entry_term(index)
    }

    /// The state machine, for reads after [`Event::ReadReady`].
    pub fn state_machine(&self) -> &S {
        &self.sm
    }

    /// Turns [`Event::Applied`] reporting on (the default) or off. Applications that only need
    /// their own proposals' outcomes can turn it off to save a copy of every command.
    pub fn set_applied_events(&mut self, enabled: bool) {
        self.emit_applied = enabled;
    }

    /// The protocol core, for inspection.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The disk, for inspection (a test can copy it to see what a crash would leave).
    pub fn disk(&self) -> &D {
        self.wal.disk()
    }

    /// Bytes of log segments on disk.
    pub fn log_bytes(&self) -> u64 {
        self.wal.log_bytes()
    }

    /// Stops the node as a process crash would: pending fsyncs never complete and nothing
    /// more is written, so the disk comes back exactly as the node left it, for the caller to
    /// apply its crash model to (with [`Persistence::Synchronous`] nothing is pending and this
    /// equals [`Node::shutdown`]).
    pub fn crash(self) -> (N, D, C, S) {
        (self.net, self.wal.into_disk(), self.clock, self.sm)
    }

    /// Finishes in-flight persistence (completing every pending fsync) and returns the
    /// environment.
    pub fn shutdown(mut self) -> (N, D, C, S) {
        if self.stopped.is_none() {
            let mut result = self.process();
            while result.is_ok() && self.syncs_pending() > 0 {
                result = self.complete_sync();
            }
            if let Err(error) = result {
                tracing::warn!(%error, "error while shutting down");
            }
        }
        (self.net, self.wal.into_disk(), self.clock, self.sm)
    }

    /// The persistence mode.
    pub fn persistence(&self) -> Persistence {
        self.persistence
    }

    /// Fsyncs the caller still has to report with [`Node::complete_sync`]
    /// ([`Persistence::Asynchronous`] only; always 0 in synchronous mode).
    pub fn syncs_pending(&self) -> usize {
        self.tickets.iter().filter(|t| t.needs_sync()).count()
    }

    /// Reports that the oldest pending fsync completed: syncs the WAL, hands the receipt to the
    /// protocol core, sends the votes and acknowledgements that waited for it, and processes
    /// whatever follows (a leader may commit).
    ///
    /// # Errors
    /// The sync failed (the node stops, as for [`Node::receive`]); `Error::Stopped`.
    ///
    /// # Panics
    /// If no fsync is pending.
    pub fn complete_sync(&mut self) -> Result<(), Error> {
        let _span = self.span();
        self.check_running()?;
        let ticket = self
            .tickets
            .pop_front()
            .expect("complete_sync called with no fsync pending");
        let result = self
            .wal
            .sync(ticket)
            .map(|receipt| self.persisted(receipt))
            .and_then(|()| self.complete_ready_tickets());
        if let Err(error) = result {
            return Err(self.stop(error));
        }
        self.process()
    }

    /// Completes the tickets at the front that need no fsync (nothing durable is waiting
    /// ahead of them).
    fn complete_ready_tickets(&mut self) -> Result<(), Error> {
        while self.tickets.front().is_some_and(|t| !t.needs_sync()) {
            let ticket = self.tickets.pop_front().expect("front exists");
            let receipt = self.wal.sync(ticket)?;
            self.persisted(receipt);
        }
        Ok(())
    }

    /// Hands a receipt to the protocol core and sends what it releases.
    fn persisted(&mut self, receipt: PersistReceipt) {
        if let Some(hs) = receipt.hard_state() {
            self.durable_hard_state = hs;
        }
        let number = receipt.number();
        let released = self.raft.on_persisted(receipt);
        tracing::trace!(%number, released = released.len(), durable = ?self.raft.durable_log(), "persisted");
        for msg in released {
            self.net.send(msg);
        }
        self.report_promise();
    }

    /// Reports [`Event::Persisted`] if what this replica promises to recover changed.
    fn report_promise(&mut self) {
        let promise = Promise {
            log: self.raft.durable_log(),
            term: self.durable_hard_state.term,
            vote: self.durable_hard_state.vote,
        };
        if self.promised != Some(promise) {
            self.promised = Some(promise);
            self.events.push(Event::Persisted {
                index: promise.log.0,
                log_term: promise.log.1,
                term: promise.term,
                vote: promise.vote,
            });
        }
    }

    fn stop(&mut self, error: Error) -> Error {
        tracing::error!(%error, "stopping after a fatal error");
        self.stopped = Some(error.to_string());
        error
    }

    /// Runs the protocol core until it has nothing left to do.
    fn process(&mut self) -> Result<(), Error> {
        while self.raft.has_ready() {
            let rd = self.raft.ready();
            if let Err(error) = self.handle_ready(rd) {
                return Err(self.stop(error));
            }
        }
        Ok(())
    }

    fn handle_ready(&mut self, mut rd: Ready) -> Result<(), Error> {
        for msg in rd.take_messages() {
            self.net.send(msg);
        }
        // A newer leader's entries may have replaced durable ones in memory: the promise
        // shrinks before the replacement reaches the disk.
        self.report_promise();
        if let Some(snapshot) = rd.snapshot() {
            let snapshot = snapshot.clone();
            self.restore_snapshot(&snapshot)?;
        }
        tracing::trace!(number = %rd.number(), first = ?rd.entries().first().map(|e| (e.index, e.term)), last = ?rd.entries().last().map(|e| (e.index, e.term)), acks = ?rd.messages().len(), "writing");
        let ticket = self.wal.write(&rd)?;
        if let Some(change) = rd.take_leader_change() {
            self.events.push(Event::LeaderChanged {
                leader: change.leader,
                term: change.term,
            });
        }
        for entry in rd.take_committed_entries() {
            self.apply(entry);
        }
        for read in rd.take_read_states() {
            self.resolve_read(read);
        }
        self.release_reads();
        match self.persistence {
            Persistence::Synchronous => {
                let receipt = self.wal.sync(ticket)?;
                self.persisted(receipt);
            }
            Persistence::Asynchronous => {
                self.tickets.push_back(ticket);
                self.complete_ready_tickets()?;
            }
        }
        self.maybe_snapshot()
    }

    fn restore_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        self.sm.restore(&snapshot.data).map_err(Error::Restore)?;
        self.applied = snapshot.meta.index;
        let index = snapshot.meta.index;
        let covered: Vec<LogIndex> = self.proposals.range(..=index).map(|(i, _)| *i).collect();
        for index in covered {
            let (id, _) = self.proposals.remove(&index).expect("listed");
            self.events.push(Event::ProposalFailed {
                id,
                error: Error::Indeterminate { index },
            });
        }
        Ok(())
    }

    fn apply(&mut self, entry: Entry) {
        let (index, term) = (entry.index, entry.term);
        assert_eq!(
            index,
            self.applied.next(),
            "entries are applied in order, without gaps"
        );
        let (data, result) = match entry.kind {
            EntryKind::Noop | EntryKind::Config(_) => (None, Vec::new()),
            EntryKind::Normal(data) => {
                let result = self.sm.apply(index, &data);
                (Some(data), result)
            }
        };
        self.applied = index;
        if let Some((id, proposed_term)) = self.proposals.remove(&index) {
            if proposed_term == term {
                self.events.push(Event::Committed { id, index, term });
            } else {
                let error = Error::ProposalDropped { index };
                self.events.push(Event::ProposalFailed { id, error });
            }
        }
        if self.emit_applied {
            let data = data.map_or_else(Vec::new, |d| d.to_vec());
            self.events.push(Event::Applied {
                index,
                term,
                data,
                result,
            });
        }
    }

    fn resolve_read(&mut self, read: ReadState) {
        let id = ReadId(read.request);
        match read.result {
            Ok(index) => self.reads_waiting_apply.push((id, index)),
            Err(error) => self.events.push(Event::ReadFailed { id, error }),
        }
    }

    fn release_reads(&mut self) {
        let applied = self.applied;
        // BUG (planted, `read_before_apply`): a read is answered from the state machine as
        // it stands, without waiting for it to reach the read index.
        let early = self.raft.config().bugs.read_before_apply;
        let events = &mut self.events;
        self.reads_waiting_apply.retain(|(id, index)| {
            if *index <= applied || early {
                events.push(Event::ReadReady {
                    id: *id,
                    index: (*index).min(applied),
                });
                false
            } else {
                true
            }
        });
    }

    /// Snapshots the state machine and compacts the log once the log outgrows its threshold.
    fn maybe_snapshot(&mut self) -> Result<(), Error> {
        let log_bytes = self.wal.log_bytes();
        let grown = log_bytes.saturating_sub(self.log_bytes_after_snapshot);
        // A snapshot taken while a long tail was not yet applied (a leader's proposals waiting
        // for a quorum, say) leaves the log long; without this the tail, once applied, would
        // stay until the log grew again, which a quiet cluster never does.
        let tail = self.last_index_after_snapshot;
        let tail_applied = tail > self.raft.snapshot_index() && self.applied >= tail;
        if log_bytes <= self.snapshot_threshold_bytes
            || (grown < self.snapshot_threshold_bytes / 2 && !tail_applied)
        {
            return Ok(());
        }
        self.snapshot_now().map(|_| ())
    }

    /// Snapshots the state machine at the applied index and compacts the log now, whatever the
    /// threshold says: an operator's manual compaction (before a planned restart, after a large
    /// import), or a fault injector's way of putting a snapshot where the policy rarely does.
    /// Returns whether a snapshot was taken (there is none to take when nothing was applied
    /// since the last one).
    ///
    /// # Errors
    /// The disk's, when the snapshot cannot be saved.
    pub fn snapshot_now(&mut self) -> Result<bool, Error> {
        if self.applied <= self.raft.snapshot_index() {
            return Ok(false);
        }
        let index = self.applied;
        let term = self
            .raft
            .entry_term(index)
            .expect("applied entry is in the log");
        let snapshot = Snapshot {
            meta: SnapshotMeta { index, term },
            data: Arc::new(self.sm.snapshot()),
            membership: self.raft.membership_at(index),
        };
        tracing::info!(%index, log_bytes = self.wal.log_bytes(), "taking snapshot");
        self.wal.save_snapshot(&snapshot)?;
        self.raft.snapshot_taken(snapshot);
        self.log_bytes_after_snapshot = self.wal.log_bytes();
        self.last_index_after_snapshot = self.raft.last_index();
        Ok(true)
    }
}
