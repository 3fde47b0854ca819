//! The state machine a simulated node runs: the raw hash chain, the kv service, or one of the
//! sharded kv's two services (the shard controller and a replica group).

use crate::kv::KvDriver;
use crate::workload::ChainStateMachine;
use raft_core::{LogIndex, StateMachine};
use workloads::shardctrler::ShardCtrlerStateMachine;
use workloads::shardkv::ShardKvStateMachine;
use workloads::{KvBugs, KvServerConfig, KvStateMachine};

/// One node's state machine; which variant is fixed per seed by the workload.
#[derive(Debug, Clone)]
pub enum SimStateMachine {
    /// The raw Raft workload: a hash chain over every command.
    Chain(ChainStateMachine),
    /// The kv service: `KvStore` behind the session table.
    Kv(Box<KvStateMachine>),
    /// The shard controller behind the exactly-once session table (shardkv workload).
    Ctrler(Box<ShardCtrlerStateMachine>),
    /// One replica group of the sharded kv (shardkv workload).
    ShardKv(Box<ShardKvStateMachine>),
}

impl SimStateMachine {
    /// A fresh state machine for a node of a run: the kv service's when `kv` is given.
    pub fn for_run(kv: Option<&KvDriver>) -> SimStateMachine {
        let Some(driver) = kv else {
            return SimStateMachine::Chain(ChainStateMachine::default());
        };
        let bugs = if driver.bugs.sessions_not_in_snapshot {
            KvBugs::from_name("sessions_not_in_snapshot").expect("a KvBugs name")
        } else {
            KvBugs::default()
        };
        let server = KvServerConfig {
            reads_through_log: driver.config.reads_through_log,
            bugs,
            ..KvServerConfig::default()
        };
        SimStateMachine::Kv(Box::new(server.state_machine()))
    }

    /// The kv state machine, if this is the kv workload.
    pub fn kv(&self) -> Option<&KvStateMachine> {
        match self {
            SimStateMachine::Kv(kv) => Some(kv),
            _ => None,
        }
    }

    /// The shard controller's state machine, if this node is a controller replica.
    pub fn ctrler(&self) -> Option<&ShardCtrlerStateMachine> {
        match self {
            SimStateMachine::Ctrler(ctrler) => Some(ctrler),
            _ => None,
        }
    }

    /// The replica group's state machine, if this node serves the sharded kv.
    pub fn shard_kv(&self) -> Option<&ShardKvStateMachine> {
        match self {
            SimStateMachine::ShardKv(group) => Some(group),
            _ => None,
        }
    }
}

impl StateMachine for SimStateMachine {
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Vec<u8> {
        match self {
            SimStateMachine::Chain(sm) => sm.apply(index, data),
            SimStateMachine::Kv(sm) => sm.apply(index, data),
            SimStateMachine::Ctrler(sm) => sm.apply(index, data),
            SimStateMachine::ShardKv(sm) => sm.apply(index, data),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        match self {
            SimStateMachine::Chain(sm) => sm.snapshot(),
            SimStateMachine::Kv(sm) => sm.snapshot(),
            SimStateMachine::Ctrler(sm) => sm.snapshot(),
            SimStateMachine::ShardKv(sm) => sm.snapshot(),
        }
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        match self {
            SimStateMachine::Chain(sm) => sm.restore(data),
            SimStateMachine::Kv(sm) => sm.restore(data),
            SimStateMachine::Ctrler(sm) => sm.restore(data),
            SimStateMachine::ShardKv(sm) => sm.restore(data),
        }
    }
}
