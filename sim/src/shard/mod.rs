//! The sharded kv under simulation (`--workload shardkv`).
//!
//! One seed runs a shard controller group and 2 to 4 replica groups, three Raft nodes each,
//! in one madsim runtime. Each group is its own [`World`](crate::cluster::World), with its
//! own network, disks, clocks, fault tasks and Raft checkers, all derived from the seed
//! ([`config`]). The controller's nodes run `workloads::ShardCtrlerStateMachine`, the
//! replica groups' nodes `workloads::shardkv::ShardKvStateMachine`, and each node runs a
//! `workloads::shardkv::ShardServer` ([`service`]: the sharded kv as a
//! [`Service`](crate::service::Service) of several groups). [`driver::ShardDriver`] owns
//! what spans groups: the messages between them (`workloads::shardkv::messages`), the administrator's Joins, Leaves and Moves ([`admin`]), the clerks and
//! their recorded history ([`clerks`]), and the cross-group checks (`observe.rs`): one group
//! per shard, no shard lost in a hand-over, storage bounded after garbage collection. The
//! history is checked for linearizability per key when the seed ends. The one runner
//! (`crate::runner::simulate`) drives the groups through the phases together.

pub mod admin;
pub mod clerks;
pub mod config;
pub mod driver;
pub mod member;
pub(crate) mod observe;
pub mod scenario;
pub mod service;

pub use config::ShardWorkload;
pub use driver::{ShardDriver, ShardRun};
pub use member::{GroupLayout, ShardMember};
pub use scenario::{run_scenario, Scenario, ScenarioReport, Step};
pub use workloads::shardkv::{Answer, GroupRole, ReplyTo, ShardRequest};
