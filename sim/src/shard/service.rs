//! The sharded kv as a [`Service`] of several Raft groups: every node runs a
//! `workloads::shardkv::GroupMachine` and a `workloads::shardkv::ShardServer`; what a server
//! sends goes through the driver to other groups and clerks; after every step the cross-group
//! observer looks at the group's state.

use super::clerks;
use super::config::LIVENESS_BOUND;
use super::driver::{ShardDriver, ShardRun};
use super::member::{GroupLayout, ShardMember, WAITERS_MAX};
use super::scenario::play;
use crate::cluster::{Failure, SimNode, World};
use crate::kv::{check_history, LinCheck};
use crate::runner::{Run, SeedReport};
use crate::service::Service;
use raft_core::{Event, NodeId};
use std::rc::Rc;
use std::time::Duration;
use workloads::shardctrler::Gid;
use workloads::shardkv::{GroupMachine, GroupRole, ShardOutput, ShardRequest, ShardServer};

/// The world index of a group: the controller's is 0, a replica group's its gid.
pub(crate) fn world_index(role: GroupRole) -> usize {
    match role {
        GroupRole::Ctrler => 0,
        GroupRole::Replica(gid) => gid.0 as usize,
    }
}

/// Hands what server `id` of `member`'s group produced to the run, in order.
fn deliver(run: &Rc<ShardRun>, member: &ShardMember, id: NodeId, outputs: Vec<ShardOutput>) {
    let from = (world_index(member.role), id);
    for output in outputs {
        match output {
            ShardOutput::Answer(to, answer) => run.answer(from, to, answer),
            ShardOutput::Send(group, to, request) => {
                run.send(Some(from), world_index(group), to, request, Duration::ZERO);
            }
            ShardOutput::Gone { gid, num, shard } => {
                let lost = run.observer.borrow().lost_shard(gid, num, shard);
                if let Some(detail) = lost {
                    run.violation("no shard lost in a hand-over", detail);
                }
            }
        }
    }
}

impl Service for ShardDriver {
    type Machine = GroupMachine;
    type Request = ShardRequest;
    type Process = ShardServer;
    type Group = ShardMember;

    const FAULT_POLL: Duration = Duration::from_millis(20);
    /// Not checked: a group's leader proposes the same reconfiguration entry (with a whole
    /// shard) again on every poll until it applies, so a log can hold tens of kilobytes past
    /// a 2 KiB threshold.
    const CHECK_LOG_BOUND: bool = false;
    /// The groups poll the controller for configurations and each other for shards after
    /// the heal too.
    const QUIET_AFTER_HEAL: bool = false;

    fn machine(&self, group: &ShardMember) -> GroupMachine {
        GroupMachine::new(group.role, group.bugs)
    }

    fn process(&self, group: &ShardMember, id: NodeId) -> ShardServer {
        ShardServer::new(group.role, id, GroupRole::Ctrler.servers(), WAITERS_MAX)
    }

    fn tune(&self, group: &ShardMember, config: &mut raft_core::Config) {
        if group.small_snapshots {
            config.snapshot_threshold_bytes = 2 << 10;
        }
    }

    fn on_request(
        &self,
        world: &Rc<World<Self>>,
        index: usize,
        node: &mut SimNode<Self>,
        server: &mut ShardServer,
        request: ShardRequest,
    ) {
        let Some(run) = world.group.run.upgrade() else {
            return;
        };
        let mut outputs = Vec::new();
        server.request(node, request, &mut outputs);
        deliver(&run, &world.group, world.slot(index).id, outputs);
    }

    fn on_events(
        &self,
        world: &Rc<World<Self>>,
        index: usize,
        node: &SimNode<Self>,
        server: &mut ShardServer,
        events: &[Event],
    ) {
        let Some(run) = world.group.run.upgrade() else {
            return;
        };
        let machine = node.state_machine();
        let mut outputs = Vec::new();
        server.on_events(machine, events, &mut outputs);
        deliver(&run, &world.group, world.slot(index).id, outputs);
        if node.status().first_index > raft_core::LogIndex(1) {
            self.compacted.set(true);
        }
        match (world.group.role, machine) {
            (GroupRole::Replica(gid), GroupMachine::Replica(group)) => {
                let seen = self.observer.borrow_mut().observe_group(gid, group);
                if let Err(detail) = seen {
                    run.violation("one server per shard", detail);
                }
            }
            (GroupRole::Ctrler, GroupMachine::Ctrler(ctrler)) => {
                self.observer.borrow_mut().observe_ctrler(ctrler);
            }
            _ => {}
        }
    }

    fn start(&self, run: &Rc<ShardRun>) {
        for index in 1..run.worlds().len() {
            madsim::task::spawn_local(tick_task(run.clone(), index));
        }
        match self.script.borrow_mut().take() {
            Some(script) => drop(madsim::task::spawn_local(play(run.clone(), script))),
            None => super::admin::start(run),
        }
        clerks::start(run);
    }

    fn heal(&self, run: &Rc<ShardRun>) {
        clerks::final_reads(run);
    }

    fn waiting(&self, run: &ShardRun) -> Option<String> {
        let gids: Vec<Gid> = (1..run.worlds().len() as u32).map(Gid).collect();
        let unsettled = self.observer.borrow().unsettled(&gids);
        let pending = clerks::pending(run);
        let admin = self.state.borrow().admin.busy();
        (unsettled.is_some() || pending > 0 || admin).then(|| {
            format!(
                "migrations: {}; {pending} clerk request(s) pending; administrator {}",
                unsettled.as_deref().unwrap_or("settled"),
                if admin { "busy" } else { "idle" }
            )
        })
    }

    fn liveness_bound(&self, _: &ShardRun) -> Duration {
        LIVENESS_BOUND
    }

    fn recovered(&self, run: &ShardRun) -> Result<(), Failure> {
        self.observer.borrow().check_storage().map_err(|detail| {
            Failure::Safety(crate::checkers::Violation {
                checker: "storage bounded after GC",
                at: run.now(),
                detail,
            })
        })
    }

    fn finish(&self, _: &ShardRun) -> Result<(), Failure> {
        match check_history(&self.history()).0 {
            LinCheck::Ok => Ok(()),
            LinCheck::Illegal(what) | LinCheck::Unknown(what) => {
                Err(Failure::Linearizability(what))
            }
        }
    }

    fn group_name(&self, index: usize) -> Option<String> {
        Some(if index == 0 {
            "controller group".to_string()
        } else {
            format!("group {index}")
        })
    }

    fn report(&self, report: &mut SeedReport) {
        report.kv = Some(self.stats());
        report.history = Some(self.history());
    }
}

/// Hands every running, unfrozen server of group `index` a `Tick` every poll interval; the
/// leader does its reconfiguration work then.
async fn tick_task(run: Rc<Run<ShardDriver>>, index: usize) {
    let every = run.workload.poll_every;
    loop {
        madsim::time::sleep(every).await;
        if run.finished() {
            return;
        }
        let world = &run.worlds()[index];
        for slot in world.slots() {
            if slot.is_up() && !slot.paused() {
                world.send_client(slot.id, ShardRequest::Tick);
            }
        }
    }
}
