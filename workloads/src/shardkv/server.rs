//! A node as a server of the sharded kv, the controller's or a replica group's, sans-IO.
//!
//! Everything here runs inside one step of the node: the caller hands it one request (or one
//! batch of node events) and gets back what to send ([`ShardOutput`]). A [`ShardServer`] is
//! per-process state: a crash forgets what it waited for (make a new one).
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

use super::messages::{Answer, GroupRole, ReplyTo, ShardRequest};
use super::{ShardBugs, ShardKvCommand, ShardKvReply, ShardKvStateMachine, ShardState};
use super::{ShardTransfer, TransferError};
use crate::kv::server::refusal as refused;
use crate::kv::KvError;
use crate::pending::Resolution;
use crate::proposals::ProposalWaiters;
use crate::raft_node::RaftNode;
use crate::rsm::ApplyOutcome;
use crate::shardctrler::{ConfigNum, CtrlerError, CtrlerReply, Gid, ShardId};
use crate::shardctrler::{ShardCtrler, ShardCtrlerStateMachine};
use raft_core::{Event, LogIndex, NodeId, ReadId, Role, StateMachine};
use std::collections::BTreeMap;

/// The state machine a node of a sharded kv group runs: the controller's or a replica
/// group's, fixed by the group's role.
#[derive(Debug, Clone)]
pub enum GroupMachine {
    /// The shard controller behind the exactly-once session table.
    Ctrler(Box<ShardCtrlerStateMachine>),
    /// A replica group.
    Replica(Box<ShardKvStateMachine>),
}

impl GroupMachine {
    /// A fresh state machine for a server of a group with `role`.
    pub fn new(role: GroupRole, bugs: ShardBugs) -> GroupMachine {
        match role {
            GroupRole::Ctrler => {
                GroupMachine::Ctrler(Box::new(ShardCtrlerStateMachine::new(ShardCtrler::new())))
            }
            GroupRole::Replica(gid) => {
                GroupMachine::Replica(Box::new(ShardKvStateMachine::new(gid, bugs)))
            }
        }
    }

    /// The controller's state machine, if this is a controller replica.
    pub fn ctrler(&self) -> Option<&ShardCtrlerStateMachine> {
        match self {
            GroupMachine::Ctrler(ctrler) => Some(ctrler),
            GroupMachine::Replica(_) => None,
        }
    }

    /// The replica group's state machine, if this is a replica group's node.
    pub fn replica(&self) -> Option<&ShardKvStateMachine> {
        match self {
            GroupMachine::Replica(group) => Some(group),
            GroupMachine::Ctrler(_) => None,
        }
    }
}

impl StateMachine for GroupMachine {
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Vec<u8> {
        match self {
            GroupMachine::Ctrler(sm) => sm.apply(index, data),
            GroupMachine::Replica(sm) => sm.apply(index, data),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        match self {
            GroupMachine::Ctrler(sm) => sm.snapshot(),
            GroupMachine::Replica(sm) => sm.snapshot(),
        }
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        match self {
            GroupMachine::Ctrler(sm) => sm.restore(data),
            GroupMachine::Replica(sm) => sm.restore(data),
        }
    }
}

/// What a server's step asks the outside to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardOutput {
    /// Send `answer` to `to`.
    Answer(ReplyTo, Answer),
    /// Send `request` to server `to` of group `group`.
    Send(GroupRole, NodeId, ShardRequest),
    /// The previous owner of `shard` answered this group's pull for configuration `num` with
    /// "deleted". Correct only if this group no longer waits for the shard, which the server
    /// cannot tell from its own (possibly lagging) state: whoever watches every group checks.
    Gone {
        /// This group.
        gid: Gid,
        /// The configuration of the hand-over.
        num: ConfigNum,
        /// The shard.
        shard: ShardId,
    },
}

/// Who waits for a proposal of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiter {
    /// Someone to answer.
    Reply(ReplyTo),
    /// The server's own reconfiguration proposal: nobody to answer.
    Own,
}

/// The per-process state of one server: what it waits for, and whom it believes leads the
/// groups it talks to.
#[derive(Debug, Clone)]
pub struct ShardServer {
    role: GroupRole,
    id: NodeId,
    ctrler_servers: Vec<NodeId>,
    waiters: ProposalWaiters<Waiter>,
    reads: BTreeMap<ReadId, (ReplyTo, Option<ConfigNum>)>,
    /// Index of the controller server this server asks next.
    ctrler_target: usize,
    /// Whether the last configuration query got an answer (if not, ask the next server).
    query_answered: bool,
    /// Per peer group, the index of the server this server asks next.
    peer_targets: BTreeMap<Gid, usize>,
}

/// The outputs of one server step.
pub type ShardOutputs = Vec<ShardOutput>;

impl ShardServer {
    /// Server `id` of a group with `role`, talking to the controller at `ctrler_servers`, that
    /// keeps at most `waiters_max` proposals waiting (beyond that it refuses new requests).
    ///
    /// # Panics
    /// If `ctrler_servers` is empty or `waiters_max` is zero.
    pub fn new(
        role: GroupRole,
        id: NodeId,
        ctrler_servers: Vec<NodeId>,
        waiters_max: usize,
    ) -> ShardServer {
        assert!(!ctrler_servers.is_empty(), "the controller has servers");
        ShardServer {
            role,
            id,
            ctrler_servers,
            waiters: ProposalWaiters::new(waiters_max),
            reads: BTreeMap::new(),
            ctrler_target: 0,
            query_answered: true,
            peer_targets: BTreeMap::new(),
        }
    }

    /// Handles one request on `node`.
    pub fn request<N: RaftNode<Machine = GroupMachine>>(
        &mut self,
        node: &mut N,
        request: ShardRequest,
        out: &mut ShardOutputs,
    ) {
        let status = node.status();
        let refusal = KvError::WrongLeader {
            hint: status.leader,
        };
        let leads = status.role == Role::Leader;
        match request {
            ShardRequest::Tick if leads => self.reconfigure(node, out),
            ShardRequest::Tick => {}
            ShardRequest::Client { reply, envelope } if leads => {
                let command = ShardKvCommand::Client(envelope);
                self.propose(node, command.encode(), Waiter::Reply(reply), out);
            }
            ShardRequest::Client { reply, .. } => {
                out.push(ShardOutput::Answer(reply, Answer::Kv(Err(refusal.into()))));
            }
            ShardRequest::Admin { reply, envelope } if leads => {
                self.propose(node, envelope.encode(), Waiter::Reply(reply), out);
            }
            ShardRequest::Admin { reply, .. } => {
                out.push(ShardOutput::Answer(reply, Answer::Admin(Err(refusal))));
            }
            ShardRequest::Query { reply, num } => match node.read_barrier() {
                Ok(id) => {
                    self.reads.insert(id, (reply, num));
                }
                Err(error) => {
                    let answer = Answer::Config(Err(refused(error)));
                    out.push(ShardOutput::Answer(reply, answer));
                }
            },
            ShardRequest::Pull { reply, num, shard } => {
                let Some(sm) = node.state_machine().replica() else {
                    return;
                };
                let result = sm.kv().transfer(num, shard);
                let delete = result
                    .as_ref()
                    .ok()
                    .and_then(|_| sm.kv().after_transfer(num, shard));
                if let (Some(command), true) = (delete, leads) {
                    self.propose(node, command.encode(), Waiter::Own, out);
                }
                let answer = Answer::Transfer { num, shard, result };
                out.push(ShardOutput::Answer(reply, answer));
            }
            ShardRequest::Gc { reply, num, shard } if leads => {
                let command = ShardKvCommand::DeleteShard { num, shard };
                self.propose(node, command.encode(), Waiter::Reply(reply), out);
            }
            ShardRequest::Gc { reply, .. } => {
                out.push(ShardOutput::Answer(reply, Answer::Refused(refusal)));
            }
            ShardRequest::Answer(answer) if leads => self.on_answer(node, answer, out),
            ShardRequest::Answer(_) => {}
        }
    }

    /// Answers the waiters that `events` (one batch from `Node::take_events`) resolve;
    /// configuration reads are served from `machine`, the node's state machine after the step.
    pub fn on_events(&mut self, machine: &GroupMachine, events: &[Event], out: &mut ShardOutputs) {
        for resolution in self.waiters.on_events(events) {
            self.resolve(resolution, out);
        }
        for event in events {
            match event {
                Event::ReadReady { id, .. } => {
                    let read = self.reads.remove(id);
                    let (Some((to, num)), Some(sm)) = (read, machine.ctrler()) else {
                        continue;
                    };
                    let config = sm.app().query(num).clone();
                    out.push(ShardOutput::Answer(to, Answer::Config(Ok(config))));
                }
                Event::ReadFailed { id, error } => {
                    if let Some((to, _)) = self.reads.remove(id) {
                        let answer = Answer::Config(Err(refused(error.clone())));
                        out.push(ShardOutput::Answer(to, answer));
                    }
                }
                _ => {}
            }
        }
    }

    /// Proposes `bytes` for `waiter`, or answers why not.
    fn propose<N: RaftNode>(
        &mut self,
        node: &mut N,
        bytes: Result<Vec<u8>, crate::CodecError>,
        waiter: Waiter,
        out: &mut ShardOutputs,
    ) {
        let refuse = |error: KvError, out: &mut ShardOutputs| {
            if let Waiter::Reply(to) = waiter {
                out.push(ShardOutput::Answer(to, refusal_for(to, error)));
            }
        };
        let bytes = match bytes {
            Ok(bytes) => bytes,
            Err(error) => return refuse(KvError::Malformed(error.to_string()), out),
        };
        if self.waiters.is_full() {
            return refuse(KvError::Timeout, out);
        }
        match node.propose(bytes) {
            Ok(id) => self.waiters.register(id, waiter),
            Err(error) => refuse(refused(error), out),
        }
    }

    /// Answers the waiter of a resolved proposal.
    fn resolve(&self, resolution: Resolution<Waiter>, out: &mut ShardOutputs) {
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
            } => {
                let answer = refusal_for(to, KvError::Timeout);
                return out.push(ShardOutput::Answer(to, answer));
            }
            _ => return,
        };
        let answer = match self.role {
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
        out.push(ShardOutput::Answer(to, answer));
    }

    /// A replica group leader's reconfiguration work: fetch the next configuration, pull, GC.
    fn reconfigure<N: RaftNode<Machine = GroupMachine>>(
        &mut self,
        node: &N,
        out: &mut ShardOutputs,
    ) {
        let GroupRole::Replica(gid) = self.role else {
            return;
        };
        let Some(sm) = node.state_machine().replica() else {
            return;
        };
        let kv = sm.kv();
        let me = ReplyTo::Server { gid, node: self.id };
        if let Some(next) = kv.wants_config() {
            let servers = &self.ctrler_servers;
            if !std::mem::replace(&mut self.query_answered, false) {
                self.ctrler_target = (self.ctrler_target + 1) % servers.len();
            }
            let to = servers[self.ctrler_target % servers.len()];
            let query = ShardRequest::Query {
                reply: me,
                num: Some(next),
            };
            out.push(ShardOutput::Send(GroupRole::Ctrler, to, query));
        }
        for pull in kv.pulls() {
            // Any replica that reached the configuration answers: try them in turn.
            let turn = self.peer_targets.entry(pull.peer).or_insert(0);
            *turn += 1;
            let to = pull.servers[*turn % pull.servers.len()];
            let (num, shard) = (pull.num, pull.shard);
            let request = ShardRequest::Pull {
                reply: me,
                num,
                shard,
            };
            out.push(ShardOutput::Send(
                GroupRole::Replica(pull.peer),
                to,
                request,
            ));
        }
        for gc in kv.gc_requests() {
            // Only the previous owner's leader can log the deletion: ask every server.
            for &to in &gc.servers {
                let (num, shard) = (gc.num, gc.shard);
                let request = ShardRequest::Gc {
                    reply: me,
                    num,
                    shard,
                };
                out.push(ShardOutput::Send(GroupRole::Replica(gc.peer), to, request));
            }
        }
    }

    /// A replica group leader acts on an answer to its own requests.
    fn on_answer<N: RaftNode<Machine = GroupMachine>>(
        &mut self,
        node: &mut N,
        answer: Answer,
        out: &mut ShardOutputs,
    ) {
        let GroupRole::Replica(gid) = self.role else {
            return;
        };
        let Some(kv) = node.state_machine().replica().map(|sm| sm.kv()) else {
            return;
        };
        let command = match answer {
            Answer::Config(Ok(config)) => {
                self.query_answered = true;
                (kv.wants_config() == Some(config.num))
                    .then_some(ShardKvCommand::InstallConfig(config))
            }
            Answer::Config(Err(KvError::WrongLeader { hint: Some(leader) })) => {
                self.query_answered = true;
                if let Some(position) = self.ctrler_servers.iter().position(|&s| s == leader) {
                    self.ctrler_target = position;
                }
                None
            }
            Answer::Transfer {
                num,
                shard,
                result: Ok(transfer),
            } => insert(kv, num, shard, transfer),
            Answer::Transfer {
                num,
                shard,
                result: Err(TransferError::Gone),
            } => {
                out.push(ShardOutput::Gone { gid, num, shard });
                None
            }
            Answer::Deleted { num, shard } => (kv.config().num == num
                && kv.state(shard) == Some(ShardState::GcPending))
            .then_some(ShardKvCommand::ConfirmGc { num, shard }),
            _ => None,
        };
        if let Some(command) = command {
            self.propose(node, command.encode(), Waiter::Own, out);
        }
    }
}

/// The command that inserts a pulled shard, if the group still waits for it.
fn insert(
    kv: &super::ShardKv,
    num: ConfigNum,
    shard: ShardId,
    transfer: ShardTransfer,
) -> Option<ShardKvCommand> {
    (kv.config().num == num && kv.state(shard) == Some(ShardState::Pulling))
        .then_some(ShardKvCommand::InsertShard(transfer))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shardctrler::CtrlerCommand;
    use raft_core::{ProposalId, Status, Term};

    /// A scripted node: a role and a state machine the test applies to.
    struct FakeNode {
        role: Role,
        machine: GroupMachine,
        proposed: Vec<Vec<u8>>,
    }

    impl RaftNode for FakeNode {
        type Machine = GroupMachine;

        fn status(&self) -> Status {
            Status {
                id: NodeId(101),
                role: self.role,
                term: Term(1),
                leader: Some(NodeId(102)),
                commit: LogIndex(0),
                applied: LogIndex(0),
                first_index: LogIndex(1),
                last_index: LogIndex(0),
            }
        }

        fn propose(&mut self, data: Vec<u8>) -> Result<ProposalId, raft_core::Error> {
            self.proposed.push(data);
            Ok(ProposalId(self.proposed.len() as u64))
        }

        fn read_barrier(&mut self) -> Result<ReadId, raft_core::Error> {
            Ok(ReadId(7))
        }

        fn state_machine(&self) -> &GroupMachine {
            &self.machine
        }
    }

    const CTRLER: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

    fn replica(role: Role) -> (FakeNode, ShardServer) {
        let group = GroupRole::Replica(Gid(1));
        let node = FakeNode {
            role,
            machine: GroupMachine::new(group, ShardBugs::default()),
            proposed: Vec::new(),
        };
        let server = ShardServer::new(group, NodeId(101), CTRLER.to_vec(), 4);
        (node, server)
    }

    #[test]
    fn a_leader_asks_the_controller_for_the_next_configuration_and_moves_on_when_unanswered() {
        let (mut node, mut server) = replica(Role::Leader);
        let mut out = Vec::new();
        server.request(&mut node, ShardRequest::Tick, &mut out);
        let me = ReplyTo::Server {
            gid: Gid(1),
            node: NodeId(101),
        };
        let query = |num| ShardRequest::Query {
            reply: me,
            num: Some(ConfigNum(num)),
        };
        assert_eq!(
            out,
            vec![ShardOutput::Send(GroupRole::Ctrler, NodeId(1), query(1))]
        );
        // No answer came: the next tick asks the next controller server.
        out.clear();
        server.request(&mut node, ShardRequest::Tick, &mut out);
        assert_eq!(
            out,
            vec![ShardOutput::Send(GroupRole::Ctrler, NodeId(2), query(1))]
        );
        // An answer with the configuration it wants is logged.
        let mut ctrler = ShardCtrler::new();
        let groups = BTreeMap::from([(Gid(1), vec![NodeId(101)])]);
        ctrler.execute(CtrlerCommand::Join { groups }).unwrap();
        let answer = Answer::Config(Ok(ctrler.latest().clone()));
        out.clear();
        server.request(&mut node, ShardRequest::Answer(answer), &mut out);
        assert!(out.is_empty());
        let logged = ShardKvCommand::decode(&node.proposed[0]).unwrap();
        assert!(matches!(logged, ShardKvCommand::InstallConfig(c) if c.num == ConfigNum(1)));
    }

    #[test]
    fn a_follower_refuses_clients_and_ignores_ticks_and_a_gone_answer_is_reported() {
        let (mut node, mut server) = replica(Role::Follower);
        let mut out = Vec::new();
        server.request(&mut node, ShardRequest::Tick, &mut out);
        assert!(out.is_empty());
        let to = ReplyTo::Admin {
            attempt: crate::clerk::Attempt {
                seq: crate::sessions::Seq(1),
                to: NodeId(101),
                number: 1,
            },
        };
        let gc = ShardRequest::Gc {
            reply: to,
            num: ConfigNum(2),
            shard: ShardId(0),
        };
        server.request(&mut node, gc, &mut out);
        let refusal = KvError::WrongLeader {
            hint: Some(NodeId(102)),
        };
        assert_eq!(out, vec![ShardOutput::Answer(to, Answer::Refused(refusal))]);
        let (mut node, mut server) = replica(Role::Leader);
        out.clear();
        let gone = Answer::Transfer {
            num: ConfigNum(2),
            shard: ShardId(3),
            result: Err(TransferError::Gone),
        };
        server.request(&mut node, ShardRequest::Answer(gone), &mut out);
        let reported = ShardOutput::Gone {
            gid: Gid(1),
            num: ConfigNum(2),
            shard: ShardId(3),
        };
        assert_eq!(out, vec![reported]);
        assert!(node.proposed.is_empty());
    }
}
