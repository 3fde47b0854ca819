//! What a `World` running one of the sharded kv's Raft groups knows about its part.

use super::config::GROUP_NODES;
use super::driver::ShardDriver;
use super::messages::ReplyTo;
use crate::kv::SimStateMachine;
use raft_core::{NodeId, ReadId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Weak;
use workloads::shardctrler::{Gid, ShardCtrler, ShardCtrlerStateMachine};
use workloads::shardkv::{ShardBugs, ShardKvStateMachine};
use workloads::ProposalWaiters;

/// Proposals one server keeps waiting at once; beyond this it refuses new requests.
pub const WAITERS_MAX: usize = 256;

/// Which service a group runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupRole {
    /// The shard controller.
    Ctrler,
    /// A replica group of the sharded kv.
    Replica(Gid),
}

/// Who waits for a proposal or a read barrier of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiter {
    /// Someone to answer.
    Reply(ReplyTo),
    /// The server's own reconfiguration proposal: nobody to answer.
    Own,
}

/// The per-process state of one server: what it waits for, and whom it believes leads the
/// groups it talks to. A crash loses it (see [`ShardMember::server`]).
pub(crate) struct ServerState {
    incarnation: u64,
    pub(crate) waiters: ProposalWaiters<Waiter>,
    pub(crate) reads: BTreeMap<ReadId, (ReplyTo, Option<workloads::shardctrler::ConfigNum>)>,
    /// Index of the controller server this server asks next.
    pub(crate) ctrler_target: usize,
    /// Whether the last configuration query got an answer (if not, ask the next server).
    pub(crate) query_answered: bool,
    /// Per peer group, the index of the server this server asks next.
    pub(crate) peer_targets: BTreeMap<Gid, usize>,
}

impl ServerState {
    fn new(incarnation: u64) -> ServerState {
        ServerState {
            incarnation,
            waiters: ProposalWaiters::new(WAITERS_MAX),
            reads: BTreeMap::new(),
            ctrler_target: 0,
            query_answered: true,
            peer_targets: BTreeMap::new(),
        }
    }
}

/// One Raft group's place in a sharded kv run.
pub struct ShardMember {
    /// The service the group runs.
    pub role: GroupRole,
    /// Planted bugs of the replica groups.
    pub bugs: ShardBugs,
    /// Snapshot every 2 KiB of log.
    pub small_snapshots: bool,
    pub(crate) driver: Weak<ShardDriver>,
    servers: Vec<RefCell<ServerState>>,
}

impl ShardMember {
    /// The member of a group of `nodes` servers.
    pub(crate) fn new(
        role: GroupRole,
        bugs: ShardBugs,
        small_snapshots: bool,
        driver: Weak<ShardDriver>,
        nodes: usize,
    ) -> ShardMember {
        ShardMember {
            role,
            bugs,
            small_snapshots,
            driver,
            servers: (0..nodes)
                .map(|_| RefCell::new(ServerState::new(0)))
                .collect(),
        }
    }

    /// A fresh state machine for a server of this group.
    pub fn state_machine(&self) -> SimStateMachine {
        match self.role {
            GroupRole::Ctrler => {
                SimStateMachine::Ctrler(Box::new(ShardCtrlerStateMachine::new(ShardCtrler::new())))
            }
            GroupRole::Replica(gid) => {
                SimStateMachine::ShardKv(Box::new(ShardKvStateMachine::new(gid, self.bugs)))
            }
        }
    }

    /// The process state of server `index` in its `incarnation`; a new incarnation (the
    /// process crashed and restarted) starts from nothing.
    pub(crate) fn server(
        &self,
        index: usize,
        incarnation: u64,
    ) -> std::cell::RefMut<'_, ServerState> {
        let mut state = self.servers[index].borrow_mut();
        if state.incarnation != incarnation {
            *state = ServerState::new(incarnation);
        }
        state
    }
}

impl GroupRole {
    /// What the group's node ids start after: the controller's servers are 1, 2, 3 and gid
    /// `g`'s are `100 g + 1`, `100 g + 2`, `100 g + 3`, so ids are distinct across groups.
    pub fn id_base(self) -> u64 {
        match self {
            GroupRole::Ctrler => 0,
            GroupRole::Replica(gid) => 100 * u64::from(gid.0),
        }
    }

    /// The group's servers.
    pub fn servers(self) -> Vec<NodeId> {
        let base = self.id_base();
        (1..=GROUP_NODES as u64).map(|i| NodeId(base + i)).collect()
    }
}
