//! The sharded kv run: one `World` per Raft group, and everything that spans groups.
//!
//! The run has the controller's world (index 0) and each replica group's (index = gid); the
//! driver (the run's service) has the clerks and the administrator, and carries the messages
//! between groups: requests and answers
//! travel with 1 to 5 ms of latency, are lost at the workload's rate while faults are on, and
//! are cut when either end is down or partitioned away from its group's majority (checked
//! when sent and again on arrival, like the group networks' own links).

use super::admin::AdminState;
use super::clerks::ClerkSlot;
use super::config::{group_config, ShardWorkload};
use super::member::{GroupLayout, ShardMember};
use super::observe::Observer;
use super::scenario::Step;
use crate::cluster::{GroupSpec, Phase, World};
use crate::config::{stream_rng, Stream, SwarmConfig};
use crate::kv::KvStats;
use crate::runner::{Run, RunOptions};
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

/// Everything of one sharded kv run that spans groups: the service of the run's worlds.
pub struct ShardDriver {
    /// The workload shape.
    pub workload: ShardWorkload,
    /// Planted bugs.
    pub bugs: ShardBugs,
    pub(crate) state: RefCell<DriverState>,
    pub(crate) observer: RefCell<Observer>,
    /// Whether some server has compacted its log into a snapshot.
    pub(crate) compacted: Cell<bool>,
    /// The scripted churn to play instead of the random one (taken when the run starts).
    pub(crate) script: RefCell<Option<Vec<(Duration, Step)>>>,
}

/// A sharded kv run.
pub type ShardRun = Run<ShardDriver>;

impl ShardDriver {
    /// The run: the controller's world (index 0) and one per replica group (index = gid);
    /// `script` replaces the random churn if given.
    pub fn build(
        base: &SwarmConfig,
        options: &RunOptions,
        workload: ShardWorkload,
        script: Option<Vec<(Duration, Step)>>,
    ) -> Rc<ShardRun> {
        let bugs = options.service_bugs.shard;
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
        let groups = workload.groups;
        let small_snapshots = workload.small_snapshots;
        let driver = Rc::new(ShardDriver {
            workload,
            bugs,
            state: RefCell::new(state),
            observer: RefCell::new(Observer::default()),
            compacted: Cell::new(false),
            script: RefCell::new(script),
        });
        Run::new(driver, |weak, driver| {
            (0..=groups)
                .map(|index| {
                    let role = match index {
                        0 => GroupRole::Ctrler,
                        gid => GroupRole::Replica(Gid(gid as u32)),
                    };
                    let span = match role {
                        GroupRole::Ctrler => tracing::info_span!("ctrler"),
                        GroupRole::Replica(gid) => tracing::info_span!("group", gid = gid.0),
                    };
                    let spec = GroupSpec {
                        config: group_config(base, index, &options.overrides),
                        bugs: options.bugs,
                        keep_events: options.keep_events,
                        id_base: role.id_base(),
                        group: ShardMember {
                            role,
                            bugs,
                            small_snapshots,
                            run: weak.clone(),
                        },
                    };
                    // Each replica's span is a child of its group's, so traces name both.
                    span.in_scope(|| World::new(driver.clone(), spec))
                })
                .collect()
        })
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

impl Run<ShardDriver> {
    /// Whether `node` of world `index` runs and can reach a majority of its group (a node
    /// partitioned away from its group is cut from the outside too).
    pub(crate) fn reachable(&self, index: usize, node: NodeId) -> bool {
        let world = &self.worlds()[index];
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
        let run = self.clone();
        madsim::task::spawn_local(async move {
            madsim::time::sleep(delay + latency).await;
            if !run.finished() && run.reachable(index, to) {
                run.worlds()[index].send_client(to, request);
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
        let run = self.clone();
        madsim::task::spawn_local(async move {
            madsim::time::sleep(latency).await;
            if run.finished() {
                return;
            }
            match to {
                ReplyTo::Clerk { clerk, attempt } => {
                    super::clerks::on_kv_answer(&run, clerk, attempt, answer)
                }
                ReplyTo::ClerkQuery { clerk, query } => {
                    super::clerks::on_query_answer(&run, clerk, query, answer)
                }
                ReplyTo::Admin { attempt } => super::admin::on_answer(&run, attempt, answer),
                ReplyTo::Server { .. } => unreachable!("handled above"),
            }
        });
    }
}
