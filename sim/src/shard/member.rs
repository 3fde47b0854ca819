//! What a `World` running one of the sharded kv's Raft groups knows about its part.

use super::config::GROUP_NODES;
use super::driver::ShardRun;
use raft_core::NodeId;
use std::rc::Weak;
use workloads::shardkv::{GroupRole, ShardBugs};

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
    /// The run, for what a server sends to other groups and for the cross-group checks.
    pub(crate) run: Weak<ShardRun>,
}
