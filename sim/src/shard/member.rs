//! What a `World` running one of the sharded kv's Raft groups knows about its part.

use super::config::GROUP_NODES;
use super::driver::ShardDriver;
use crate::kv::SimStateMachine;
use raft_core::NodeId;
use std::cell::RefCell;
use std::rc::Weak;
use workloads::shardkv::{GroupMachine, GroupRole, ShardBugs, ShardServer};

/// Proposals one server keeps waiting at once; beyond this it refuses new requests.
pub const WAITERS_MAX: usize = 256;

/// Where the simulator puts each group's servers.
pub trait GroupLayout {
    /// What the group's node ids start after: the controller's servers are 1, 2, 3 and gid
    /// `g`'s are `100 g + 1`, `100 g + 2`, `100 g + 3`, so ids are distinct across groups.
    fn id_base(self) -> u64;

    /// The group's servers.
    fn servers(self) -> Vec<NodeId>;
}

impl GroupLayout for GroupRole {
    fn id_base(self) -> u64 {
        match self {
            GroupRole::Ctrler => 0,
            GroupRole::Replica(gid) => 100 * u64::from(gid.0),
        }
    }

    fn servers(self) -> Vec<NodeId> {
        let base = self.id_base();
        (1..=GROUP_NODES as u64).map(|i| NodeId(base + i)).collect()
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
    /// Per node, the server process and the incarnation it belongs to.
    servers: Vec<RefCell<(u64, ShardServer)>>,
    ids: Vec<NodeId>,
}

impl ShardMember {
    /// The member of a group whose servers are `ids`.
    pub(crate) fn new(
        role: GroupRole,
        bugs: ShardBugs,
        small_snapshots: bool,
        driver: Weak<ShardDriver>,
        ids: Vec<NodeId>,
    ) -> ShardMember {
        let servers = ids
            .iter()
            .map(|&id| RefCell::new((0, Self::process(role, id))))
            .collect();
        ShardMember {
            role,
            bugs,
            small_snapshots,
            driver,
            servers,
            ids,
        }
    }

    fn process(role: GroupRole, id: NodeId) -> ShardServer {
        ShardServer::new(role, id, GroupRole::Ctrler.servers(), WAITERS_MAX)
    }

    /// A fresh state machine for a server of this group.
    pub fn state_machine(&self) -> SimStateMachine {
        SimStateMachine::Shard(GroupMachine::new(self.role, self.bugs))
    }

    /// The process state of server `index` in its `incarnation`; a new incarnation (the
    /// process crashed and restarted) starts from nothing.
    pub(crate) fn server(
        &self,
        index: usize,
        incarnation: u64,
    ) -> std::cell::RefMut<'_, ShardServer> {
        let mut state = self.servers[index].borrow_mut();
        if state.0 != incarnation {
            *state = (incarnation, Self::process(self.role, self.ids[index]));
        }
        std::cell::RefMut::map(state, |(_, server)| server)
    }
}
