//! The simulated cluster: nodes, their disks and clocks, the network, the client, the checkers.
//!
//! Everything of one run lives in one [`World`] on one thread, shared by the madsim tasks of
//! that run through `Rc` (tasks are spawned with `spawn_local`, nothing is `Send`). No `RefCell`
//! borrow is ever held across an `.await`.

use crate::checkers::{Checkers, TermChecker, TransferChecker, Violation};
use crate::clock::{ClockParams, SimClock};
use crate::config::{stream_rng, Stream, SwarmConfig};
use crate::disk::{CrashLoss, DiskState, SimDisk};
use crate::event_log::EventLog;
use crate::nemesis::NemesisState;
use crate::net::Network;
use crate::node_host::host;
use crate::service::Service;
use raft_core::{Bugs, Clock, Message, Node, NodeId, Persistence};
use rand::rngs::SmallRng;
use rand::Rng;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

/// The node type the simulator runs for service `S`.
pub type SimNode<S> = Node<SimNet, SimDisk, SimClock, <S as Service>::Machine>;

/// Messages a node queued while it was paused beyond this many are dropped (a full socket
/// buffer), so a long pause cannot grow memory without bound.
pub const MAILBOX_MAX: usize = 4096;

/// The `raft_core::Net` of one node: collects outgoing messages; the cluster routes them after
/// each step.
#[derive(Debug)]
pub struct SimNet {
    outbox: Rc<RefCell<Vec<Message>>>,
}

impl raft_core::Net for SimNet {
    fn send(&mut self, msg: Message) {
        self.outbox.borrow_mut().push(msg);
    }
}

/// Something for a node to handle.
#[derive(Debug)]
pub enum Input<S: Service> {
    /// An encoded message from a peer.
    Message(Rc<[u8]>),
    /// A request of the service.
    Client(S::Request),
}

/// Why a seed failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A checker caught a broken invariant.
    Safety(Violation),
    /// The cluster did not recover in time after the faults stopped.
    Liveness(String),
    /// A node misbehaved in a way no checker models (an error on a healthy disk, a message
    /// that does not decode, a node that cannot open its own healthy disk).
    Node(String),
    /// The service's history is not linearizable, or the check could not decide.
    Linearizability(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Safety(v) => write!(f, "safety: {v}"),
            Failure::Liveness(s) => write!(f, "liveness: {s}"),
            Failure::Node(s) => write!(f, "node failure: {s}"),
            Failure::Linearizability(s) => write!(f, "linearizability: {s}"),
        }
    }
}

/// Counters for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Messages nodes sent.
    pub sent: u64,
    /// Log entries carried by the AppendEntries messages nodes sent to running nodes (a
    /// resent entry counts again).
    pub entries_sent: u64,
    /// InstallSnapshot messages nodes sent to running nodes.
    pub snapshots_sent: u64,
    /// Message copies delivered to a running node.
    pub delivered: u64,
    /// Inputs handled and timers fired.
    pub steps: u64,
    /// Crashes (injected, or a node stopping on a disk error).
    pub crashes: u64,
    /// Pauses.
    pub pauses: u64,
    /// Partitions started.
    pub partitions: u64,
    /// Nodes that refused to open a corrupted disk.
    pub refused_to_open: u64,
    /// Rare shapes the run reached.
    pub shapes: crate::coverage::Shapes,
}

/// One node's machine: the process (if running) and what survives it.
pub struct Slot<S: Service> {
    /// The node's id.
    pub id: NodeId,
    pub(crate) node: RefCell<Option<SimNode<S>>>,
    /// The service's per-process state (reset on a crash).
    pub(crate) process: RefCell<S::Process>,
    pub(crate) incarnation: Cell<u64>,
    pub(crate) mailbox: RefCell<VecDeque<Input<S>>>,
    pub(crate) waker: RefCell<Option<Waker>>,
    pub(crate) paused: Cell<bool>,
    pub(crate) disk: Rc<RefCell<DiskState>>,
    pub(crate) outbox: Rc<RefCell<Vec<Message>>>,
    pub(crate) clock: ClockParams,
    pub(crate) disk_faulty: bool,
    /// Completion times of the fsyncs the node waits for, oldest first (one per
    /// `Node::syncs_pending`).
    pub(crate) syncs_due: RefCell<VecDeque<madsim::time::Instant>>,
    /// The node's `earlier_incarnation_read_replies` after its last step (`coverage.rs`).
    pub(crate) read_replies_seen: Cell<u64>,
    pub(crate) span: tracing::Span,
}

impl<S: Service> Slot<S> {
    /// Bumped on every crash; a host task runs only while its incarnation is current.
    pub fn incarnation(&self) -> u64 {
        self.incarnation.get()
    }

    /// Whether the process is frozen.
    pub fn paused(&self) -> bool {
        self.paused.get()
    }

    /// Whether the process is running (possibly paused).
    pub fn is_up(&self) -> bool {
        self.node.borrow().is_some()
    }

    pub(crate) fn set_waker(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    pub(crate) fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    pub(crate) fn pop_input(&self) -> Option<Input<S>> {
        self.mailbox.borrow_mut().pop_front()
    }

    /// Draws completion times for the fsyncs the node asked for since the last call. The
    /// disk completes fsyncs in the order they were asked for, one after another.
    pub(crate) fn schedule_syncs(&self, pending: usize) {
        let mut due = self.syncs_due.borrow_mut();
        assert!(due.len() <= pending, "more fsyncs scheduled than pending");
        let now = madsim::time::Instant::now();
        while due.len() < pending {
            let latency = self.disk.borrow_mut().draw_sync_latency();
            let at = (now + latency).max(due.back().copied().unwrap_or(now));
            due.push_back(at);
        }
    }

    /// When the oldest pending fsync completes.
    pub(crate) fn next_sync_due(&self) -> Option<madsim::time::Instant> {
        self.syncs_due.borrow().front().copied()
    }
}

/// The phase of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Faults on.
    Faults,
    /// Faults off, waiting for recovery.
    Liveness,
    /// The run is over (passed or failed); tasks wind down.
    Finished,
}

/// Everything of one Raft group of a run.
pub struct World<S: Service> {
    /// The seed's configuration.
    pub config: SwarmConfig,
    pub(crate) bugs: Bugs,
    pub(crate) origin: madsim::time::Instant,
    pub(crate) slots: Vec<Slot<S>>,
    /// The network.
    pub net: RefCell<Network>,
    /// The checkers.
    pub checkers: RefCell<Checkers>,
    /// The service.
    pub service: Rc<S>,
    /// This group's part in the service.
    pub group: S::Group,
    pub(crate) failure: RefCell<Option<Failure>>,
    /// The event log.
    pub log: RefCell<EventLog>,
    /// Counters.
    pub stats: RefCell<Stats>,
    /// Seeds for node processes and restart decisions.
    pub(crate) node_rng: RefCell<SmallRng>,
    pub(crate) phase: Cell<Phase>,
    /// Membership and leadership nemeses.
    pub(crate) nemesis: RefCell<NemesisState>,
    /// Added to the configuration's node ids (see [`World::with_id_base`]).
    pub(crate) id_base: u64,
}

/// How to build one group's [`World`].
pub struct GroupSpec<S: Service> {
    /// The group's configuration.
    pub config: SwarmConfig,
    /// Planted Raft bugs.
    pub bugs: Bugs,
    /// Keep every event record.
    pub keep_events: bool,
    /// Added to the configuration's node ids, so that the groups of one run have distinct
    /// ids.
    pub id_base: u64,
    /// The group's part in the service.
    pub group: S::Group,
}

impl<S: Service> World<S> {
    /// Builds one group of `service` (nothing runs until [`World::start_node`]).
    pub fn new(service: Rc<S>, spec: GroupSpec<S>) -> Rc<World<S>> {
        let GroupSpec {
            config,
            bugs,
            keep_events,
            id_base,
            group,
        } = spec;
        let ids: Vec<NodeId> = config
            .all_ids()
            .into_iter()
            .map(|id| NodeId(id.0 + id_base))
            .collect();
        assert_eq!(ids.len(), config.clocks.len(), "one clock per node");
        let slots = ids
            .iter()
            .zip(&config.clocks)
            .map(|(&id, clock)| {
                let faults = config.disk.for_node(NodeId(id.0 - id_base));
                let mut disk = DiskState::new(config.seed, id, faults.clone());
                disk.set_crash_points(config.node_faults.crash_points);
                Slot {
                    id,
                    node: RefCell::new(None),
                    process: RefCell::new(service.process(&group, id)),
                    incarnation: Cell::new(0),
                    mailbox: RefCell::new(VecDeque::new()),
                    waker: RefCell::new(None),
                    paused: Cell::new(false),
                    disk_faulty: faults.is_some(),
                    disk: Rc::new(RefCell::new(disk)),
                    outbox: Rc::new(RefCell::new(Vec::new())),
                    clock: clock.clone(),
                    syncs_due: RefCell::new(VecDeque::new()),
                    read_replies_seen: Cell::new(0),
                    span: tracing::info_span!("replica", id = id.0),
                }
            })
            .collect();
        let net = Network::new(
            config.net.clone(),
            &ids,
            stream_rng(config.seed, Stream::Net),
        );
        Rc::new(World {
            bugs,
            origin: madsim::time::Instant::now(),
            slots,
            net: RefCell::new(net),
            checkers: RefCell::new(Checkers {
                terms: TermChecker::new(
                    config.raft.pre_vote,
                    config
                        .raft
                        .check_quorum
                        .then_some(config.raft.election_ticks_min),
                ),
                transfer: TransferChecker::new(config.raft.election_ticks_max),
                ..Checkers::default()
            }),
            service,
            group,
            failure: RefCell::new(None),
            log: RefCell::new(EventLog::new(keep_events)),
            stats: RefCell::new(Stats::default()),
            node_rng: RefCell::new(stream_rng(config.seed, Stream::Node)),
            phase: Cell::new(Phase::Faults),
            nemesis: RefCell::new(NemesisState::new(config.seed)),
            id_base,
            config,
        })
    }

    /// Simulated time since the run started.
    pub fn now(&self) -> Duration {
        madsim::time::Instant::now().duration_since(self.origin)
    }

    /// Node `index`'s slot.
    pub fn slot(&self, index: usize) -> &Slot<S> {
        &self.slots[index]
    }

    /// All slots.
    pub fn slots(&self) -> &[Slot<S>] {
        &self.slots
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase.get()
    }

    /// Moves to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.set(phase);
        if phase == Phase::Finished {
            self.slots.iter().for_each(Slot::wake);
        }
    }

    /// Whether the run is over.
    pub fn finished(&self) -> bool {
        self.phase.get() == Phase::Finished
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<Failure> {
        self.failure.borrow().clone()
    }

    /// Records a failure (the first one wins) and ends the run.
    pub fn fail(&self, failure: Failure) {
        tracing::error!(%failure, "seed failed");
        self.failure.borrow_mut().get_or_insert(failure);
        self.set_phase(Phase::Finished);
    }

    pub(crate) fn record(&self, node: NodeId, kind: &'static str, detail: u64) {
        self.log
            .borrow_mut()
            .record(self.now(), node.0, kind, detail);
    }

    pub(crate) fn raft_config(&self, id: NodeId) -> raft_core::Config {
        let t = &self.config.raft;
        let voters = self.config.node_ids().into_iter();
        let voters = voters.map(|v| NodeId(v.0 + self.id_base)).collect();
        let mut c = raft_core::Config::new(id, voters);
        // Spares start outside every configuration and learn theirs from a leader.
        c.join_existing = id.0 - self.id_base > self.config.nodes as u64;
        if c.join_existing {
            c.peers = Vec::new();
        }
        c.lease_reads = t.lease_drift_bound_ppm.is_some();
        c.tick_micros = t.tick_micros;
        c.heartbeat_ticks = t.heartbeat_ticks as u32;
        c.election_ticks_min = t.election_ticks_min as u32;
        c.election_ticks_max = t.election_ticks_max as u32;
        c.pre_vote = t.pre_vote;
        c.check_quorum = t.check_quorum;
        c.snapshot_threshold_bytes = t.snapshot_threshold_bytes;
        c.snapshot_chunk_bytes = 4096;
        c.max_entries_per_append = t.max_entries_per_append;
        c.max_inflight_appends = t.max_inflight_appends;
        c.dynamic_append_batch = t.dynamic_append_batch;
        c.bugs = self.bugs;
        self.service.tune(&self.group, &mut c);
        c
    }

    /// Starts (or restarts) node `index` from its disk. Returns false if the node refused to
    /// open its disk (detected corruption), which is allowed only on a faulty disk.
    pub fn start_node(self: &Rc<Self>, index: usize) -> bool {
        let slot = &self.slots[index];
        assert!(!slot.is_up(), "n{} started twice", slot.id);
        let net = SimNet {
            outbox: slot.outbox.clone(),
        };
        let disk = SimDisk::new(slot.disk.clone());
        let mut clock = SimClock::new(slot.clock.clone(), self.origin);
        if let Some(ppm) = self.config.raft.lease_drift_bound_ppm {
            clock = clock.with_drift_bound(ppm);
        }
        let seed = self.node_rng.borrow_mut().gen();
        let opened = slot.span.in_scope(|| {
            Node::open_with(
                self.raft_config(slot.id),
                net,
                disk,
                clock,
                self.service.machine(&self.group),
                seed,
                Persistence::Asynchronous,
            )
        });
        let node = match opened {
            Ok(node) => node,
            Err(error) if slot.disk.borrow_mut().take_crash_point() => {
                // Died during recovery: power fails again, and the node comes back later.
                tracing::info!(node = slot.id.0, %error, "crashed at a crash point while opening");
                slot.disk
                    .borrow_mut()
                    .crash(self.config.node_faults.crash_loss);
                self.stats.borrow_mut().crashes += 1;
                let delay = Duration::from_millis(self.node_rng.borrow_mut().gen_range(10..500));
                self.restart_after(index, delay);
                return false;
            }
            Err(error) if slot.disk_faulty => {
                tracing::info!(node = slot.id.0, %error, "node refused to open its faulty disk");
                self.stats.borrow_mut().refused_to_open += 1;
                self.record(slot.id, "refused", 0);
                return false;
            }
            Err(error) => {
                let what = format!("n{} cannot open its own healthy disk: {error}", slot.id);
                self.fail(Failure::Node(what));
                return false;
            }
        };
        *slot.node.borrow_mut() = Some(node);
        slot.paused.set(false);
        self.record(slot.id, "start", slot.incarnation() + 1);
        self.after_step(index);
        madsim::task::spawn_local(host(self.clone(), index, slot.incarnation()));
        true
    }

    /// Crashes node `index`: the process dies and unsynced writes are lost per `loss`.
    pub fn crash(&self, index: usize, loss: CrashLoss) {
        let slot = &self.slots[index];
        let Some(node) = slot.node.borrow_mut().take() else {
            return;
        };
        drop(node);
        slot.incarnation.set(slot.incarnation() + 1);
        slot.mailbox.borrow_mut().clear();
        slot.outbox.borrow_mut().clear();
        *slot.process.borrow_mut() = self.service.process(&self.group, slot.id);
        slot.syncs_due.borrow_mut().clear();
        // The next incarnation's counters start from zero.
        slot.read_replies_seen.set(0);
        slot.paused.set(false);
        slot.disk.borrow_mut().crash(loss);
        slot.wake();
        self.stats.borrow_mut().crashes += 1;
        self.record(slot.id, "crash", loss as u64);
        tracing::info!(node = slot.id.0, ?loss, "crashed");
    }

    /// Freezes or thaws node `index`.
    pub fn set_paused(&self, index: usize, paused: bool) {
        let slot = &self.slots[index];
        if slot.is_up() && slot.paused() != paused {
            slot.paused.set(paused);
            self.record(slot.id, if paused { "pause" } else { "resume" }, 0);
            self.stats.borrow_mut().pauses += u64::from(paused);
            slot.wake();
        }
    }

    /// Simulated time until node `index`'s next deadline, its timer or its oldest fsync's
    /// completion (zero if due), or `None` if the node is not running.
    pub fn time_to_deadline(&self, index: usize) -> Option<Duration> {
        let slot = &self.slots[index];
        let node = slot.node.borrow();
        let node = node.as_ref()?;
        let deadline = node.next_deadline();
        let now = SimClock::new(slot.clock.clone(), self.origin).now();
        let local = Duration::from_micros(deadline.0.saturating_sub(now.0));
        let timer = slot.clock.sim_duration_for(self.now(), local);
        let sync = slot
            .next_sync_due()
            .map(|at| at.saturating_duration_since(madsim::time::Instant::now()));
        Some(sync.map_or(timer, |sync| sync.min(timer)))
    }

    /// A node returned an error: a faulty disk makes the process exit (and restart later); on
    /// a healthy disk there is no excuse, and the seed fails.
    pub(crate) fn node_error(self: &Rc<Self>, index: usize, error: raft_core::Error) {
        let slot = &self.slots[index];
        let crash_point = slot.disk.borrow_mut().take_crash_point();
        if crash_point {
            tracing::info!(node = slot.id.0, %error, "crashed at a crash point");
        } else if !slot.disk_faulty {
            let what = format!(
                "n{} stopped with an error on a healthy disk: {error}",
                slot.id
            );
            return self.fail(Failure::Node(what));
        } else {
            tracing::info!(node = slot.id.0, %error, "node stopped on a disk error");
        }
        self.crash(index, self.config.node_faults.crash_loss);
        let delay = Duration::from_millis(self.node_rng.borrow_mut().gen_range(10..500));
        self.restart_after(index, delay);
    }

    /// Restarts node `index` after `delay`, unless it came back (or went down again) meanwhile.
    pub(crate) fn restart_after(self: &Rc<Self>, index: usize, delay: Duration) {
        let incarnation = self.slots[index].incarnation();
        let world = self.clone();
        madsim::task::spawn_local(async move {
            madsim::time::sleep(delay).await;
            world.restart_if_down(index, incarnation);
        });
    }

    /// Restarts node `index` if it is still down in the given incarnation.
    pub fn restart_if_down(self: &Rc<Self>, index: usize, incarnation: u64) {
        let slot = &self.slots[index];
        if !self.finished() && !slot.is_up() && slot.incarnation() == incarnation {
            self.start_node(index);
        }
    }

    /// Disables disk faults everywhere (heal phase).
    pub fn disable_disk_faults(&self) {
        for slot in &self.slots {
            slot.disk.borrow_mut().disable_faults();
        }
    }
}
