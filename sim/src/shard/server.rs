//! How a simulated node runs a sharded kv server (`workloads::shardkv::ShardServer`): the
//! glue between a step and the server, and the cross-group observations after it.
//!
//! Everything here runs inside one step of the node (`World::step` hands it the request),
//! so a paused node does nothing and a crashed one forgets what it waited for.

use super::driver::ShardDriver;
use super::member::ShardMember;
use crate::cluster::{SimNode, World};
use crate::kv::SimStateMachine;
use raft_core::{Event, NodeId, ProposalId, ReadId, Status};
use std::rc::Rc;
use std::time::Duration;
use workloads::shardkv::{GroupMachine, GroupRole, ShardOutput, ShardRequest};
use workloads::RaftNode;

/// A simulated node seen as a shard server's node.
struct GroupNode<'a>(&'a mut SimNode);

impl RaftNode for GroupNode<'_> {
    type Machine = GroupMachine;

    fn status(&self) -> Status {
        self.0.status()
    }

    fn propose(&mut self, data: Vec<u8>) -> Result<ProposalId, raft_core::Error> {
        self.0.propose(data)
    }

    fn read_barrier(&mut self) -> Result<ReadId, raft_core::Error> {
        self.0.read_barrier()
    }

    fn state_machine(&self) -> &GroupMachine {
        group_machine(self.0.state_machine())
    }
}

fn group_machine(sm: &SimStateMachine) -> &GroupMachine {
    sm.shard()
        .expect("a sharded kv group's nodes run a group machine")
}

/// The world index of a group: the controller's is 0, a replica group's its gid.
pub(crate) fn world_index(role: GroupRole) -> usize {
    match role {
        GroupRole::Ctrler => 0,
        GroupRole::Replica(gid) => gid.0 as usize,
    }
}

/// The context of one server's step.
struct Ctx<'a> {
    driver: Rc<ShardDriver>,
    member: &'a ShardMember,
    index: usize,
    id: NodeId,
    incarnation: u64,
}

impl Ctx<'_> {
    /// Hands what the server produced to the driver, in order.
    fn deliver(&self, outputs: Vec<ShardOutput>) {
        let from = (world_index(self.member.role), self.id);
        for output in outputs {
            match output {
                ShardOutput::Answer(to, answer) => self.driver.answer(from, to, answer),
                ShardOutput::Send(group, to, request) => {
                    let world = world_index(group);
                    self.driver
                        .send(Some(from), world, to, request, Duration::ZERO);
                }
                ShardOutput::Gone { gid, num, shard } => {
                    let lost = self.driver.observer.borrow().lost_shard(gid, num, shard);
                    if let Some(detail) = lost {
                        self.driver
                            .violation("no shard lost in a hand-over", detail);
                    }
                }
            }
        }
    }
}

impl World {
    fn shard_ctx(&self, index: usize) -> Option<Ctx<'_>> {
        let member = self.shard.get()?;
        let driver = member.driver.upgrade()?;
        let slot = &self.slots[index];
        Some(Ctx {
            driver,
            member,
            index,
            id: slot.id,
            incarnation: slot.incarnation(),
        })
    }

    /// Node `index` handles a request of the sharded kv.
    pub(crate) fn shard_request(&self, index: usize, node: &mut SimNode, request: ShardRequest) {
        let Some(ctx) = self.shard_ctx(index) else {
            return;
        };
        let mut outputs = Vec::new();
        ctx.member.server(ctx.index, ctx.incarnation).request(
            &mut GroupNode(node),
            request,
            &mut outputs,
        );
        ctx.deliver(outputs);
    }

    /// Answers the waiters these events resolve, then shows the driver the node's state.
    pub(crate) fn shard_events(&self, index: usize, events: &[Event]) {
        let Some(ctx) = self.shard_ctx(index) else {
            return;
        };
        let guard = self.slots[index].node.borrow();
        let Some(node) = guard.as_ref() else {
            return;
        };
        let machine = group_machine(node.state_machine());
        let mut outputs = Vec::new();
        ctx.member
            .server(index, ctx.incarnation)
            .on_events(machine, events, &mut outputs);
        ctx.deliver(outputs);
        if node.status().first_index > raft_core::LogIndex(1) {
            ctx.driver.compacted.set(true);
        }
        match (ctx.member.role, machine) {
            (GroupRole::Replica(gid), GroupMachine::Replica(group)) => {
                let seen = ctx.driver.observer.borrow_mut().observe_group(gid, group);
                if let Err(detail) = seen {
                    drop(guard);
                    ctx.driver.violation("one server per shard", detail);
                }
            }
            (GroupRole::Ctrler, GroupMachine::Ctrler(ctrler)) => {
                ctx.driver.observer.borrow_mut().observe_ctrler(ctrler);
            }
            _ => {}
        }
    }
}
