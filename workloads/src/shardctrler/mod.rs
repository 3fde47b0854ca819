//! The shard controller: which replica group serves each shard, over numbered
//! configurations.
//!
//! The key space is split into [`NSHARDS`] shards ([`key_to_shard`]). A [`ShardConfig`] says
//! which group ([`Gid`]) serves each shard and which servers form each group. The controller
//! ([`ShardCtrler`]) keeps every configuration ever made; `Join`, `Leave` and `Move` each
//! create the next one, and `Query` reads one. Joins and leaves go through the pure
//! [`rebalance`], which is deterministic, keeps counts within one of each other and moves the
//! fewest shards possible.
//!
//! Replicated, the controller is [`ShardCtrlerStateMachine`]: the exactly-once
//! [`Deduplicated`](crate::rsm::Deduplicated) wrapper around [`ShardCtrler`], so a retried
//! `Join` does not create two configurations.
//!
//! ```
//! use std::collections::BTreeMap;
//! use raft_core::NodeId;
//! use workloads::shardctrler::{CtrlerCommand, CtrlerReply, Gid, ShardCtrler, ConfigNum};
//!
//! let mut ctrler = ShardCtrler::new();
//! let groups = BTreeMap::from([(Gid(1), vec![NodeId(1)]), (Gid(2), vec![NodeId(2)])]);
//! let reply = ctrler.execute(CtrlerCommand::Join { groups });
//! assert_eq!(reply, Ok(CtrlerReply::Created(ConfigNum(1))));
//! assert_eq!(ctrler.latest().shards_of(Gid(1)).len(), 5);
//! assert_eq!(ctrler.latest().shards_of(Gid(2)).len(), 5);
//! ```

mod config;
mod ctrler;
mod rebalance;

pub use config::{
    key_to_shard, ConfigNum, Gid, ShardConfig, ShardId, GROUPS_MAX, GROUP_SERVERS_MAX, NSHARDS,
};
pub use ctrler::{CtrlerCommand, CtrlerError, CtrlerReply, ShardCtrler};
pub use rebalance::{is_balanced, moved_shards, rebalance};

/// The state machine a controller replica hands to `raft_core::Node`.
pub type ShardCtrlerStateMachine = crate::rsm::Deduplicated<ShardCtrler>;
