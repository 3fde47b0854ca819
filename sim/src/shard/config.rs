//! The sharded kv workload's shape, and each Raft group's configuration, drawn from the seed.

use crate::config::{stream_rng, Stream, SwarmConfig};
use crate::overrides::Overrides;
use rand::Rng;
use std::fmt;
use std::time::Duration;

/// Nodes per Raft group (the controller's and every replica group's).
pub const GROUP_NODES: usize = 3;

/// The sharded kv workload of one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardWorkload {
    /// Replica groups (gids 1..=groups).
    pub groups: usize,
    /// Groups joined before the clerks start (the rest join later, if churn picks them).
    pub initial: usize,
    /// Concurrent clerks.
    pub clients: usize,
    /// Distinct keys (`k0`, `k1`, ...), spread over the shards by hash.
    pub keys: usize,
    /// Largest value a Put or Append carries, in bytes.
    pub value_max: usize,
    /// Fraction of requests that are Gets.
    pub get_fraction: f64,
    /// Fraction of writes that are Appends (the rest are Puts).
    pub append_fraction: f64,
    /// Mean pause between a clerk's requests.
    pub think: Duration,
    /// A clerk resends after this long without an answer.
    pub timeout: Duration,
    /// Probability that a clerk's or a server's message between groups is lost while faults
    /// are on (messages inside a group go through the group's own simulated network).
    pub loss: f64,
    /// Mean pause between the administrator's Joins, Leaves and Moves during the fault phase.
    pub churn_every: Duration,
    /// Whether the administrator also moves single shards.
    pub moves: bool,
    /// Snapshots every 2 KiB of log instead of the swarm threshold, so shard state often
    /// travels in snapshots and InstallSnapshot.
    pub small_snapshots: bool,
    /// Appends to one key since its last Put stop at about this many bytes.
    pub append_budget: usize,
    /// How often each replica group's leader does its reconfiguration work.
    pub poll_every: Duration,
    /// Requests started in the fault phase, over all clerks (`None`: no limit).
    pub ops_max: Option<u64>,
    /// Each clerk uses only its own keys (key `i` belongs to clerk `i % clients`), so clerks
    /// whose keys live on a stuck group do not hold up the others. Scripted runs use it.
    pub own_keys: bool,
}

impl ShardWorkload {
    /// Derives the workload from `seed` (its own stream).
    pub fn from_seed(seed: u64) -> ShardWorkload {
        let mut rng = stream_rng(seed ^ 0x7368_6172_646b_7600, Stream::Kv);
        let groups = rng.gen_range(2..=4);
        let large = rng.gen_bool(0.2);
        ShardWorkload {
            groups,
            initial: rng.gen_range(1..=groups),
            clients: rng.gen_range(1..=5),
            keys: rng.gen_range(4..=20),
            value_max: if large { rng.gen_range(64..=512) } else { 8 },
            get_fraction: rng.gen_range(0.1..0.5),
            append_fraction: if rng.gen_bool(0.5) { 0.9 } else { 0.4 },
            think: Duration::from_millis(rng.gen_range(5..60)),
            timeout: Duration::from_millis(rng.gen_range(150..600)),
            loss: if rng.gen_bool(0.6) {
                rng.gen_range(0.0..0.15)
            } else {
                0.0
            },
            churn_every: Duration::from_millis(rng.gen_range(400..3_000)),
            moves: rng.gen_bool(0.3),
            small_snapshots: rng.gen_bool(0.4),
            append_budget: if large { 4 << 10 } else { 256 },
            poll_every: Duration::from_millis(100),
            ops_max: None,
            own_keys: false,
        }
    }

    /// Applies the minimizer's workload overrides (`--no-reply-loss` turns off the loss of
    /// messages between groups and clerks).
    pub fn apply(&mut self, overrides: &Overrides) {
        if let Some(clients) = overrides.clients {
            self.clients = clients.max(1);
        }
        self.ops_max = overrides.ops_max;
        if overrides.no_reply_loss {
            self.loss = 0.0;
        }
    }
}

/// The configuration of Raft group `index` (0 is the controller, `g` is gid `g`): the first
/// 3-node swarm configuration among the seeds derived from `seed` and `index`, with the
/// common fault phase and the run's overrides. Each group thus has its own fault classes,
/// rates, disks and clocks, all a function of the seed.
pub fn group_config(base: &SwarmConfig, index: usize, overrides: &Overrides) -> SwarmConfig {
    let mut attempt = 0u64;
    loop {
        let sub = base
            .seed
            .wrapping_mul(0x100_0000_01B3)
            .wrapping_add((index as u64 + 1) << 40 | attempt);
        let mut config = SwarmConfig::from_seed(sub);
        attempt += 1;
        if config.nodes != GROUP_NODES {
            continue;
        }
        config.fault_phase = base.fault_phase;
        config.liveness_bound = LIVENESS_BOUND;
        // Group membership is what the controller lists; it does not change under the run.
        config.nemesis = None;
        config.spares = 0;
        config.clocks.truncate(GROUP_NODES);
        config
            .disk
            .faulty_nodes
            .retain(|id| id.0 <= GROUP_NODES as u64);
        overrides.apply(&mut config);
        return config;
    }
}

/// After the faults stop, every group must lead, finish migrating and answer every pending
/// request within this bound.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(30);

impl fmt::Display for ShardWorkload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  workload shardkv: {} groups ({} joined at start), {} clerks, {} keys, values up \
             to {} bytes, gets {:.0}%, appends {:.0}% of writes, think {:?}, clerk timeout \
             {:?}, message loss {:.1}%, churn every {:?}{}, snapshots {}",
            self.groups,
            self.initial,
            self.clients,
            self.keys,
            self.value_max,
            self.get_fraction * 100.0,
            self.append_fraction * 100.0,
            self.think,
            self.timeout,
            self.loss * 100.0,
            self.churn_every,
            if self.moves { " with moves" } else { "" },
            if self.small_snapshots {
                "every 2 KiB"
            } else {
                "at the swarm threshold"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_and_group_configs_are_functions_of_the_seed() {
        assert_eq!(ShardWorkload::from_seed(5), ShardWorkload::from_seed(5));
        let base = SwarmConfig::from_seed(5);
        let a = group_config(&base, 1, &Overrides::default());
        assert_eq!(a, group_config(&base, 1, &Overrides::default()));
        assert_eq!(a.nodes, GROUP_NODES);
        assert_eq!(a.all_ids().len(), a.clocks.len());
        assert_eq!(a.fault_phase, base.fault_phase);
        assert_ne!(a.seed, group_config(&base, 2, &Overrides::default()).seed);
        let groups: std::collections::BTreeSet<usize> = (0..60)
            .map(|s| ShardWorkload::from_seed(s).groups)
            .collect();
        assert_eq!(groups.into_iter().collect::<Vec<_>>(), vec![2, 3, 4]);
    }

    #[test]
    fn shard_bug_names_parse_and_name_the_workload() {
        use crate::bugs::ServiceBugs;
        use crate::workload::Workload;
        for name in workloads::shardkv::ShardBugs::NAMES {
            let bugs = ServiceBugs::from_name(name).unwrap();
            assert!(bugs.is_shard() && bugs.any());
        }
        assert!(!ServiceBugs::from_name("local_reads").unwrap().is_shard());
        assert_eq!(Workload::from_name("shardkv"), Some(Workload::ShardKv));
        assert_eq!(Workload::ShardKv.name(), "shardkv");
    }
}
