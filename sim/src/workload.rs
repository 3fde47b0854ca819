//! Which service a seed runs: one of the simulator's own three, or a user's ([`Custom`]).

use crate::config::SwarmConfig;
use crate::runner::{RunOptions, SeedReport};
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// Which service a seed runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// The kv service with clerks and a linearizability check.
    Kv,
    /// Raw Raft: one client proposing opaque writes and read barriers.
    Raft,
    /// The sharded kv: a controller group and replica groups moving shards (`crate::shard`).
    ShardKv,
    /// A service outside the simulator (a cargo example or a user's crate).
    Custom(Custom),
}

/// The future that runs one seed of a custom service inside its madsim runtime.
pub type SeedFuture = Pin<Box<dyn Future<Output = SeedReport>>>;

/// A user's [`Service`](crate::service::Service), as the CLI, the sweeps and the minimizer
/// run it: a name, how to run a seed (usually `|config, options|
/// Box::pin(sim::simulate(MyService::build(config, &options)))`), and its planted bugs.
#[derive(Clone, Copy)]
pub struct Custom {
    /// The service's name (`--workload` shows it).
    pub name: &'static str,
    /// The command that runs it, for reproduce lines (`cargo run --release -p sim --example
    /// counter --`).
    pub command: &'static str,
    /// Its planted bugs: name and what the bug does.
    pub bugs: &'static [(&'static str, &'static str)],
    /// The planted bug of this run, one of `bugs` (set from `--bug`).
    pub bug: Option<&'static str>,
    /// Runs one seed.
    pub run: fn(SwarmConfig, RunOptions) -> SeedFuture,
}

impl Custom {
    /// The same service with the planted bug `name`, if it has one of that name.
    pub fn with_bug(self, name: &str) -> Option<Custom> {
        let (bug, _) = self.bugs.iter().find(|(bug, _)| *bug == name)?;
        Some(Custom {
            bug: Some(bug),
            ..self
        })
    }
}

impl PartialEq for Custom {
    fn eq(&self, other: &Custom) -> bool {
        self.name == other.name && self.bug == other.bug
    }
}

impl Eq for Custom {}

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Custom")
            .field("name", &self.name)
            .field("bug", &self.bug)
            .finish()
    }
}

impl Workload {
    /// Parses `kv`, `raft` or `shardkv`.
    pub fn from_name(name: &str) -> Option<Workload> {
        match name {
            "kv" => Some(Workload::Kv),
            "raft" => Some(Workload::Raft),
            "shardkv" => Some(Workload::ShardKv),
            _ => None,
        }
    }

    /// The name `from_name` accepts (a custom service's own name).
    pub fn name(self) -> &'static str {
        match self {
            Workload::Kv => "kv",
            Workload::Raft => "raft",
            Workload::ShardKv => "shardkv",
            Workload::Custom(custom) => custom.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(Workload::from_name("kv"), Some(Workload::Kv));
        assert_eq!(
            Workload::from_name(Workload::Raft.name()),
            Some(Workload::Raft)
        );
        assert_eq!(Workload::from_name("x"), None);
    }
}
