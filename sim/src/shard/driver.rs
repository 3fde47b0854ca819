//! The sharded kv run: one `World` per Raft group, and everything that spans groups.
//!
//! The driver owns the controller's world (index 0) and each replica group's (index = gid),
//! the clerks and the administrator, and the messages between groups: requests and answers
//! travel with 1 to 5 ms of latency, are lost at the workload's rate while faults are on, and
//! are cut when either end is down or partitioned away from its group's majority (checked
//! when sent and again on arrival, like the group networks' own links).

use super::admin::AdminState;
use super::clerks::ClerkSlot;
use super::config::{group_config, ShardWorkload};
use super::member::{GroupLayout, ShardMember};
use super::observe::Observer;
use crate::checkers::Violation;
use crate::cluster::{Failure, Phase, World};
use crate::config::{stream_rng, Stream, SwarmConfig};
use crate::kv::KvStats;
use crate::runner::RunOptions;
use crate::workload::Request;
use linearizability::models::{KvInput, KvOutput};
use linearizability::Recorder;
use raft_core::NodeId;
use rand::rngs::SmallRng;
use rand::Rng;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;
use workloads::shardctrler::Gid;
use workloads::shardkv::ShardBugs;
use workloads::shardkv::{Answer, GroupRole, ReplyTo, ShardRequest};

/// One-way latency of a message between groups or between a clerk and a group (ms).
const LATENCY_MS: std::ops::Range<u64> = 1..6;

/// The mutable state of the clerks and the administrator.
pub(crate) struct DriverState {
    pub(crate) rng: SmallRng,
    pub(crate) clerks: Vec<ClerkSlot>,
    pub(crate) recorder: Recorder<KvInput, KvOutput>,
    /// Bytes appended to each key since its last Put.
    pub(crate) appended: BTreeMap<String, usize>,
    pub(crate) next_value: u64,
    pub(crate) started: u64,
    pub(crate) stats: KvStats,
    pub(crate) admin: AdminState,
    /// Keys still to be read once after the heal.
    pub(crate) final_keys: VecDeque<String>,
}

/// Everything of one sharded kv run that spans groups.
pub struct ShardDriver {
    /// The workload shape.
    pub workload: ShardWorkload,
    /// Planted bugs.
    pub bugs: ShardBugs,
    /// The controller's world, then one per replica group (index = gid).
    pub(crate) worlds: Vec<Rc<World>>,
    pub(crate) state: RefCell<DriverState>,
    pub(crate) observer: RefCell<Observer>,
    failure: RefCell<Option<Failure>>,
    phase: Cell<Phase>,
    /// Whether some server has compacted its log into a snapshot.
    pub(crate) compacted: Cell<bool>,
}

impl ShardDriver {
    /// Builds every group's world (nothing runs yet).
    pub(crate) fn new(
        base: &SwarmConfig,
        options: &RunOptions,
        workload: ShardWorkload,
    ) -> Rc<Self> {
        let bugs = options.kv_bugs.shard;
        Rc::new_cyclic(|weak| {
            let worlds = (0..=workload.groups)
                .map(|index| {
                    let role = match index {
                        0 => GroupRole::Ctrler,
                        gid => GroupRole::Replica(Gid(gid as u32)),
                    };
                    let config = group_config(base, index, &options.overrides);
                    let span = match role {
                        GroupRole::Ctrler => tracing::info_span!("ctrler"),
                        GroupRole::Replica(gid) => tracing::info_span!("group", gid = gid.0),
                    };
                    // Each replica's span is a child of its group's, so traces name both.
                    let world = span.in_scope(|| {
                        let keep = options.keep_events;
                        World::with_id_base(config, options.bugs, keep, role.id_base())
                    });
                    let member = ShardMember::new(
                        role,
                        bugs,
                        workload.small_snapshots,
                        weak.clone(),
                        world.slots().iter().map(|s| s.id).collect(),
                    );
                    if world.shard.set(member).is_err() {
                        unreachable!("a new world has no shard member");
                    }
                    world
                })
                .collect();
            let state = DriverState {
                rng: stream_rng(base.seed ^ 0x6472_6976_6572, Stream::Kv),
                clerks: (0..workload.clients).map(ClerkSlot::new).collect(),
                recorder: Recorder::new(),
                appended: BTreeMap::new(),
                next_value: 1,
                started: 0,
                stats: KvStats::default(),
                admin: AdminState::new(),
                final_keys: VecDeque::new(),
            };
            ShardDriver {
                workload,
                bugs,
                worlds,
                state: RefCell::new(state),
                observer: RefCell::new(Observer::default()),
                failure: RefCell::new(None),
                phase: Cell::new(Phase::Faults),
                compacted: Cell::new(false),
            }
        })
    }

    /// The worlds: the controller's first, then gid 1, 2, ...
    pub fn worlds(&self) -> &[Rc<World>] {
        &self.worlds
    }

    /// Simulated time since the run started.
    pub fn now(&self) -> Duration {
        self.worlds[0].now()
    }

    /// The run's phase.
    pub fn phase(&self) -> Phase {
        self.phase.get()
    }

    /// Whether the run is over.
    pub fn finished(&self) -> bool {
        self.phase.get() == Phase::Finished
    }

    /// Moves every world to `phase`.
    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.set(phase);
        for world in &self.worlds {
            if !world.finished() {
                world.set_phase(phase);
            }
        }
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<Failure> {
        self.failure.borrow().clone()
    }

    /// Records a failure (the first one wins) and ends the run.
    pub(crate) fn fail(&self, failure: Failure) {
        tracing::error!(%failure, "seed failed");
        self.failure.borrow_mut().get_or_insert(failure);
        self.set_phase(Phase::Finished);
    }

    /// A safety violation seen by the driver's own checks.
    pub(crate) fn violation(&self, checker: &'static str, detail: String) {
        let at = self.now();
        self.fail(Failure::Safety(Violation {
            checker,
            at,
            detail,
        }));
    }

    /// Takes up a failure one group's world recorded (its checkers), naming the group.
    pub(crate) fn collect_failures(&self) {
        if self.failure.borrow().is_some() {
            return;
        }
        let found = self
            .worlds
            .iter()
            .enumerate()
            .find_map(|(index, world)| world.failure().map(|f| (index, f)));
        if let Some((index, failure)) = found {
            self.fail(name_group(index, failure));
        }
    }

    /// Whether `node` of world `index` runs and can reach a majority of its group (a node
    /// partitioned away from its group is cut from the outside too).
    pub(crate) fn reachable(&self, index: usize, node: NodeId) -> bool {
        let world = &self.worlds[index];
        let Some(slot) = world.slots().iter().find(|s| s.id == node) else {
            return false;
        };
        // A node in the middle of a step (its process borrowed) is running.
        if !slot.node.try_borrow().map_or(true, |node| node.is_some()) {
            return false;
        }
        let net = world.net.borrow();
        let peers = world
            .slots()
            .iter()
            .filter(|s| net.link_up(node, s.id) && net.link_up(s.id, node))
            .count();
        peers * 2 > world.slots().len()
    }

    /// Whether a message is lost (only while faults are on).
    fn lost(&self) -> bool {
        let mut state = self.state.borrow_mut();
        let lost = self.phase() == Phase::Faults
            && self.workload.loss > 0.0
            && state.rng.gen_bool(self.workload.loss);
        state.stats.replies_lost += u64::from(lost);
        lost
    }

    /// A random latency.
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_millis(self.state.borrow_mut().rng.gen_range(LATENCY_MS))
    }

    /// Sends `request` from `from` (a group's server, or `None` for a clerk or the
    /// administrator) to server `to` of world `index`, after `delay` plus the latency.
    pub(crate) fn send(
        self: &Rc<Self>,
        from: Option<(usize, NodeId)>,
        index: usize,
        to: NodeId,
        request: ShardRequest,
        delay: Duration,
    ) {
        if self.finished() || from.is_some_and(|(w, n)| !self.reachable(w, n)) || self.lost() {
            return;
        }
        let latency = self.latency();
        let driver = self.clone();
        madsim::task::spawn_local(async move {
            madsim::time::sleep(delay + latency).await;
            if !driver.finished() && driver.reachable(index, to) {
                driver.worlds[index].send_client(to, Request::Shard(request));
            }
        });
    }

    /// Sends `answer` from server `from` of world `index` to `to`.
    pub(crate) fn answer(self: &Rc<Self>, from: (usize, NodeId), to: ReplyTo, answer: Answer) {
        if let ReplyTo::Server { gid, node } = to {
            let request = ShardRequest::Answer(answer);
            return self.send(Some(from), gid.0 as usize, node, request, Duration::ZERO);
        }
        if self.finished() || !self.reachable(from.0, from.1) || self.lost() {
            return;
        }
        let latency = self.latency();
        let driver = self.clone();
        madsim::task::spawn_local(async move {
            madsim::time::sleep(latency).await;
            if driver.finished() {
                return;
            }
            match to {
                ReplyTo::Clerk { clerk, attempt } => {
                    super::clerks::on_kv_answer(&driver, clerk, attempt, answer)
                }
                ReplyTo::ClerkQuery { clerk, query } => {
                    super::clerks::on_query_answer(&driver, clerk, query, answer)
                }
                ReplyTo::Admin { attempt } => super::admin::on_answer(&driver, attempt, answer),
                ReplyTo::Server { .. } => unreachable!("handled above"),
            }
        });
    }

    /// Counters.
    pub fn stats(&self) -> KvStats {
        self.state.borrow().stats
    }

    /// The recorded history (requests in flight stay open).
    pub fn history(&self) -> crate::kv::KvHistory {
        self.state.borrow().recorder.clone().finish()
    }
}

/// Names the group in a failure one group's world found.
fn name_group(index: usize, failure: Failure) -> Failure {
    let group = if index == 0 {
        "controller group".to_string()
    } else {
        format!("group {index}")
    };
    match failure {
        Failure::Safety(mut v) => {
            v.detail = format!("{group}: {}", v.detail);
            Failure::Safety(v)
        }
        Failure::Liveness(s) => Failure::Liveness(format!("{group}: {s}")),
        Failure::Node(s) => Failure::Node(format!("{group}: {s}")),
        Failure::Linearizability(s) => Failure::Linearizability(s),
    }
}
