//! The state machine a simulated node runs: the raw hash chain, the kv service, or one of the
//! sharded kv's two services (the shard controller and a replica group).

use crate::kv::KvDriver;
use crate::workload::ChainStateMachine;
use raft_core::{LogIndex, StateMachine};
use workloads::shardkv::GroupMachine;
use workloads::KvStateMachine;

/// One node's state machine; which variant is fixed per seed by the workload.
#[derive(Debug, Clone)]
pub enum SimStateMachine {
    /// The raw Raft workload: a hash chain over every command.
    Chain(ChainStateMachine),
    /// The kv service: `KvStore` behind the session table.
    Kv(Box<KvStateMachine>),
    /// A node of the sharded kv: the controller's or a replica group's (shardkv workload).
    Shard(GroupMachine),
}

impl SimStateMachine {
    /// A fresh state machine for a node of a run: the kv service's when `kv` is given.
    pub fn for_run(kv: Option<&KvDriver>) -> SimStateMachine {
        let Some(driver) = kv else {
            return SimStateMachine::Chain(ChainStateMachine::default());
        };
        let config = crate::kv::server::server_config(driver);
        SimStateMachine::Kv(Box::new(config.state_machine()))
    }

    /// The kv state machine, if this is the kv workload.
    pub fn kv(&self) -> Option<&KvStateMachine> {
        match self {
            SimStateMachine::Kv(kv) => Some(kv),
            _ => None,
        }
    }

    /// The sharded kv's state machine, if this node serves the sharded kv.
    pub fn shard(&self) -> Option<&GroupMachine> {
        match self {
            SimStateMachine::Shard(group) => Some(group),
            _ => None,
        }
    }
}

impl StateMachine for SimStateMachine {
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Vec<u8> {
        match self {
            SimStateMachine::Chain(sm) => sm.apply(index, data),
            SimStateMachine::Kv(sm) => sm.apply(index, data),
            SimStateMachine::Shard(sm) => sm.apply(index, data),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        match self {
            SimStateMachine::Chain(sm) => sm.snapshot(),
            SimStateMachine::Kv(sm) => sm.snapshot(),
            SimStateMachine::Shard(sm) => sm.snapshot(),
        }
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        match self {
            SimStateMachine::Chain(sm) => sm.restore(data),
            SimStateMachine::Kv(sm) => sm.restore(data),
            SimStateMachine::Shard(sm) => sm.restore(data),
        }
    }
}
