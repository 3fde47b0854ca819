//! A node as a server of the sharded kv: the controller's or a replica group's.
//!
//! Everything here runs inside one step of the node (`World::step` hands it the request),
//! so a paused node does nothing and a crashed one forgets what it waited for.
//!
//! - Clerks' requests and the administrator's commands are proposed; the answer is the
//!   state machine's result once the leader applies the entry.
//! - Configuration queries to the controller pass a ReadIndex barrier, then read locally.
//! - A replica group's leader, on every `Tick`, asks the controller for the next
//!   configuration (while every shard is settled), pulls the shards it is waiting for and
//!   asks previous owners to delete what it has received; the answers come back as
//!   requests, and the leader logs `InstallConfig`, `InsertShard` or `ConfirmGc`.
//! - A pull is answered by any replica from its applied state: a shard a configuration has
//!   taken away is frozen, so every replica that reached that configuration holds the same
//!   copy. A deletion request is logged by the previous owner's leader.

use super::driver::ShardDriver;
use super::member::{GroupRole, ShardMember, Waiter};
use super::messages::{Answer, ReplyTo, ShardRequest};
use crate::cluster::{SimNode, World};
use raft_core::{Event, NodeId, Role};
use std::rc::Rc;
use std::time::Duration;
use workloads::shardctrler::{CtrlerError, CtrlerReply};
use workloads::shardkv::{ShardKvCommand, ShardKvReply, ShardState, TransferError};
use workloads::{ApplyOutcome, KvError, Resolution};

/// The context of one server's step.
struct Ctx<'a> {
    driver: Rc<ShardDriver>,
    member: &'a ShardMember,
    index: usize,
    id: NodeId,
    incarnation: u64,
}

impl Ctx<'_> {
    /// This server as a message source.
    fn from(&self) -> (usize, NodeId) {
        let world = match self.member.role {
            GroupRole::Ctrler => 0,
            GroupRole::Replica(gid) => gid.0 as usize,
        };
        (world, self.id)
    }

    fn answer(&self, to: ReplyTo, answer: Answer) {
        self.driver.answer(self.from(), to, answer);
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
        let status = node.status();
        let refusal = KvError::WrongLeader {
            hint: status.leader,
        };
        let leads = status.role == Role::Leader;
        match request {
            ShardRequest::Tick if leads => reconfigure(&ctx, node),
            ShardRequest::Tick => {}
            ShardRequest::Client { reply, envelope } if leads => {
                let command = ShardKvCommand::Client(envelope);
                propose(&ctx, node, command.encode(), Waiter::Reply(reply));
            }
            ShardRequest::Client { reply, .. } => {
                ctx.answer(reply, Answer::Kv(Err(refusal.into())));
            }
            ShardRequest::Admin { reply, envelope } if leads => {
                propose(&ctx, node, envelope.encode(), Waiter::Reply(reply));
            }
            ShardRequest::Admin { reply, .. } => ctx.answer(reply, Answer::Admin(Err(refusal))),
            ShardRequest::Query { reply, num } => match node.read_barrier() {
                Ok(id) => {
                    let mut server = ctx.member.server(ctx.index, ctx.incarnation);
                    server.reads.insert(id, (reply, num));
                }
                Err(error) => ctx.answer(reply, Answer::Config(Err(refused(error)))),
            },
            ShardRequest::Pull { reply, num, shard } => {
                let Some(sm) = node.state_machine().shard_kv() else {
                    return;
                };
                let result = sm.kv().transfer(num, shard);
                let delete = result
                    .as_ref()
                    .ok()
                    .and_then(|_| sm.kv().after_transfer(num, shard));
                if let (Some(command), true) = (delete, leads) {
                    propose(&ctx, node, command.encode(), Waiter::Own);
                }
                let answer = Answer::Transfer { num, shard, result };
                ctx.answer(reply, answer);
            }
            ShardRequest::Gc { reply, num, shard } if leads => {
                let command = ShardKvCommand::DeleteShard { num, shard };
                propose(&ctx, node, command.encode(), Waiter::Reply(reply));
            }
            ShardRequest::Gc { reply, .. } => ctx.answer(reply, Answer::Refused(refusal)),
            ShardRequest::Answer(answer) if leads => on_answer(&ctx, node, answer),
            ShardRequest::Answer(_) => {}
        }
    }

    /// Answers the waiters these events resolve, then shows the driver the node's state.
    pub(crate) fn shard_events(&self, index: usize, events: &[Event]) {
        let Some(ctx) = self.shard_ctx(index) else {
            return;
        };
        let resolved = {
            let mut server = ctx.member.server(index, ctx.incarnation);
            server.waiters.on_events(events)
        };
        for resolution in resolved {
            resolve(&ctx, resolution);
        }
        let guard = self.slots[index].node.borrow();
        let Some(node) = guard.as_ref() else {
            return;
        };
        for event in events {
            match event {
                Event::ReadReady { id, .. } => {
                    let read = ctx.member.server(index, ctx.incarnation).reads.remove(id);
                    let (Some((to, num)), Some(sm)) = (read, node.state_machine().ctrler()) else {
                        continue;
                    };
                    ctx.answer(to, Answer::Config(Ok(sm.app().query(num).clone())));
                }
                Event::ReadFailed { id, error } => {
                    let read = ctx.member.server(index, ctx.incarnation).reads.remove(id);
                    if let Some((to, _)) = read {
                        ctx.answer(to, Answer::Config(Err(refused(error.clone()))));
                    }
                }
                _ => {}
            }
        }
        if node.status().first_index > raft_core::LogIndex(1) {
            ctx.driver.compacted.set(true);
        }
        let sm = node.state_machine();
        match (ctx.member.role, sm.shard_kv(), sm.ctrler()) {
            (GroupRole::Replica(gid), Some(group), _) => {
                let seen = ctx.driver.observer.borrow_mut().observe_group(gid, group);
                if let Err(detail) = seen {
                    drop(guard);
                    ctx.driver.violation("one server per shard", detail);
                }
            }
            (GroupRole::Ctrler, _, Some(ctrler)) => {
                ctx.driver.observer.borrow_mut().observe_ctrler(ctrler);
            }
            _ => {}
        }
    }
}

/// Proposes `bytes` for `waiter`, or answers why not.
fn propose(
    ctx: &Ctx<'_>,
    node: &mut SimNode,
    bytes: Result<Vec<u8>, workloads::CodecError>,
    waiter: Waiter,
) {
    let refuse = |error: KvError| {
        if let Waiter::Reply(to) = waiter {
            ctx.answer(to, refusal_for(to, error));
        }
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(error) => return refuse(KvError::Malformed(error.to_string())),
    };
    let mut server = ctx.member.server(ctx.index, ctx.incarnation);
    if server.waiters.is_full() {
        drop(server);
        return refuse(KvError::Timeout);
    }
    match node.propose(bytes) {
        Ok(id) => server.waiters.register(id, waiter),
        Err(error) => {
            drop(server);
            refuse(refused(error));
        }
    }
}

/// The refusal a requester of kind `to` understands.
fn refusal_for(to: ReplyTo, error: KvError) -> Answer {
    match to {
        ReplyTo::Clerk { .. } => Answer::Kv(Err(error.into())),
        ReplyTo::ClerkQuery { .. } => Answer::Config(Err(error)),
        ReplyTo::Admin { .. } => Answer::Admin(Err(error)),
        ReplyTo::Server { .. } => Answer::Refused(error),
    }
}

/// The kv error for a node's refusal.
fn refused(error: raft_core::Error) -> KvError {
    match error {
        raft_core::Error::NotLeader { hint } => KvError::WrongLeader { hint },
        _ => KvError::Timeout,
    }
}

/// Answers the waiter of a resolved proposal.
fn resolve(ctx: &Ctx<'_>, resolution: Resolution<Waiter>) {
    let (to, result) = match resolution {
        Resolution::Applied {
            waiter: Waiter::Reply(to),
            result,
            ..
        } => (to, result),
        Resolution::Superseded {
            waiter: Waiter::Reply(to),
            ..
        }
        | Resolution::Unknown {
            waiter: Waiter::Reply(to),
            ..
        } => return ctx.answer(to, refusal_for(to, KvError::Timeout)),
        _ => return,
    };
    let answer = match ctx.member.role {
        GroupRole::Ctrler => {
            type Outcome = ApplyOutcome<Result<CtrlerReply, CtrlerError>>;
            match Outcome::decode(&result) {
                Ok(outcome) => Answer::Admin(outcome.into_response()),
                Err(error) => Answer::Admin(Err(KvError::Malformed(error.to_string()))),
            }
        }
        GroupRole::Replica(_) => match (ShardKvReply::decode(&result), to) {
            (Ok(ShardKvReply::Deleted { num, shard }), ReplyTo::Server { .. }) => {
                Answer::Deleted { num, shard }
            }
            (Ok(_), ReplyTo::Server { .. }) => Answer::Refused(KvError::Timeout),
            (Ok(reply), _) => Answer::Kv(reply.into_client_response()),
            (Err(error), _) => refusal_for(to, KvError::Malformed(error.to_string())),
        },
    };
    ctx.answer(to, answer);
}

/// A replica group leader's reconfiguration work: fetch the next configuration, pull, GC.
fn reconfigure(ctx: &Ctx<'_>, node: &SimNode) {
    let GroupRole::Replica(gid) = ctx.member.role else {
        return;
    };
    let Some(sm) = node.state_machine().shard_kv() else {
        return;
    };
    let kv = sm.kv();
    let me = ReplyTo::Server { gid, node: ctx.id };
    let mut server = ctx.member.server(ctx.index, ctx.incarnation);
    let mut sends = Vec::new();
    if let Some(next) = kv.wants_config() {
        let servers = GroupRole::Ctrler.servers();
        if !std::mem::replace(&mut server.query_answered, false) {
            server.ctrler_target = (server.ctrler_target + 1) % servers.len();
        }
        let to = servers[server.ctrler_target % servers.len()];
        let query = ShardRequest::Query {
            reply: me,
            num: Some(next),
        };
        sends.push((0, to, query));
    }
    for pull in kv.pulls() {
        // Any replica that reached the configuration answers: try them in turn.
        let turn = server.peer_targets.entry(pull.peer).or_insert(0);
        *turn += 1;
        let to = pull.servers[*turn % pull.servers.len()];
        let (num, shard) = (pull.num, pull.shard);
        sends.push((
            pull.peer.0 as usize,
            to,
            ShardRequest::Pull {
                reply: me,
                num,
                shard,
            },
        ));
    }
    for gc in kv.gc_requests() {
        // Only the previous owner's leader can log the deletion: ask every server.
        for &to in &gc.servers {
            let (num, shard) = (gc.num, gc.shard);
            sends.push((
                gc.peer.0 as usize,
                to,
                ShardRequest::Gc {
                    reply: me,
                    num,
                    shard,
                },
            ));
        }
    }
    drop(server);
    for (world, to, request) in sends {
        ctx.driver
            .send(Some(ctx.from()), world, to, request, Duration::ZERO);
    }
}

/// A replica group leader acts on an answer to its own requests.
fn on_answer(ctx: &Ctx<'_>, node: &mut SimNode, answer: Answer) {
    let GroupRole::Replica(gid) = ctx.member.role else {
        return;
    };
    let Some(kv) = node.state_machine().shard_kv().map(|sm| sm.kv()) else {
        return;
    };
    let command = match answer {
        Answer::Config(Ok(config)) => {
            ctx.member.server(ctx.index, ctx.incarnation).query_answered = true;
            (kv.wants_config() == Some(config.num)).then_some(ShardKvCommand::InstallConfig(config))
        }
        Answer::Config(Err(KvError::WrongLeader { hint: Some(leader) })) => {
            let mut server = ctx.member.server(ctx.index, ctx.incarnation);
            server.query_answered = true;
            let servers = GroupRole::Ctrler.servers();
            if let Some(position) = servers.iter().position(|&s| s == leader) {
                server.ctrler_target = position;
            }
            None
        }
        Answer::Transfer {
            num,
            shard,
            result: Ok(transfer),
        } => (kv.config().num == num && kv.state(shard) == Some(ShardState::Pulling))
            .then_some(ShardKvCommand::InsertShard(transfer)),
        Answer::Transfer {
            num,
            shard,
            result: Err(TransferError::Gone),
        } => {
            let lost = ctx.driver.observer.borrow().lost_shard(gid, num, shard);
            if let Some(detail) = lost {
                ctx.driver.violation("no shard lost in a hand-over", detail);
            }
            None
        }
        Answer::Deleted { num, shard } => (kv.config().num == num
            && kv.state(shard) == Some(ShardState::GcPending))
        .then_some(ShardKvCommand::ConfirmGc { num, shard }),
        _ => None,
    };
    if let Some(command) = command {
        propose(ctx, node, command.encode(), Waiter::Own);
    }
}
