//! [`ShardKv`] as a [`raft_core::StateMachine`]: bytes in, bytes out, snapshots included.

use super::bugs::ShardBugs;
use super::command::{ShardKvCommand, ShardKvReply};
use super::machine::ShardKv;
use crate::codec::{self, Kind};
use crate::rsm::App;
use crate::shardctrler::Gid;
use raft_core::{LogIndex, StateMachine};
use serde::{Deserialize, Serialize};

/// The state machine a replica of a sharded kv group hands to `raft_core::Node`.
///
/// It does not use [`Deduplicated`](crate::rsm::Deduplicated): exactly-once is per shard
/// inside [`ShardKv`] (so sessions can move with shards), and the reconfiguration commands
/// are idempotent by their configuration number instead of a client seq.
#[derive(Debug, Clone)]
pub struct ShardKvStateMachine {
    kv: ShardKv,
    applied: LogIndex,
}

#[derive(Serialize, Deserialize)]
struct Image {
    applied: LogIndex,
    kv: Vec<u8>,
}

impl ShardKvStateMachine {
    /// A fresh replica of group `gid`.
    ///
    /// # Panics
    /// If `gid` is [`Gid::NONE`].
    pub fn new(gid: Gid, bugs: ShardBugs) -> Self {
        ShardKvStateMachine {
            kv: ShardKv::new(gid, bugs),
            applied: LogIndex(0),
        }
    }

    /// The group state, for reads and for the migration requests.
    pub fn kv(&self) -> &ShardKv {
        &self.kv
    }

    /// The index of the last applied entry.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }
}

impl StateMachine for ShardKvStateMachine {
    /// # Panics
    /// If `index` does not increase (a caller bug), or a reply exceeds the command limit.
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Vec<u8> {
        assert!(
            index > self.applied,
            "apply at {index} after {}",
            self.applied
        );
        self.applied = index;
        let reply = match ShardKvCommand::decode(data) {
            Ok(command) => self.kv.execute(command),
            Err(error) => {
                tracing::debug!(%index, %error, "malformed entry ignored");
                ShardKvReply::Malformed(error.to_string())
            }
        };
        reply
            .encode()
            .expect("a reply exceeds the command size limit")
    }

    /// # Panics
    /// If the state exceeds [`SNAPSHOT_BYTES_MAX`](crate::codec::SNAPSHOT_BYTES_MAX).
    fn snapshot(&self) -> Vec<u8> {
        let image = Image {
            applied: self.applied,
            kv: self.kv.snapshot(),
        };
        codec::encode(&image, Kind::Snapshot).expect("state exceeds the snapshot size limit")
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let image: Image =
            codec::decode(data, Kind::Snapshot).map_err(|e| format!("snapshot: {e}"))?;
        self.kv.restore(&image.kv)?;
        self.applied = image.applied;
        Ok(())
    }
}
