//! The registry of planted bugs ("canaries"): every name `--bug` accepts, which workloads can
//! plant it, and what it breaks.
//!
//! The CLI, the seed corpus and `sim canaries` all go through this one table, so a bug that a
//! workload cannot plant is refused the same way everywhere instead of silently running the
//! correct code (a corpus entry that claims to plant a kv bug on the raft workload would
//! otherwise pass and prove nothing).

use crate::workload::Workload;
use raft_core::Bugs;
use workloads::shardkv::ShardBugs;
use workloads::KvBugs;

/// One planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlantedBug {
    /// The name `--bug` takes.
    pub name: &'static str,
    /// The workload `sim canaries` measures it on.
    pub home: Workload,
    /// The workloads that can plant it.
    pub workloads: &'static [Workload],
    /// What the bug does, in one line.
    pub what: &'static str,
}

const ALL: &[Workload] = &[Workload::Raft, Workload::Kv, Workload::ShardKv];

/// The bugs planted in the services the simulator ships: the kv service's (state machine and
/// server) and the sharded kv's. Raft's own are [`Bugs`], plantable under every workload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceBugs {
    /// Bugs of the kv service (kv workload only).
    pub kv: KvBugs,
    /// Bugs of the sharded kv service (shardkv workload only).
    pub shard: ShardBugs,
}

impl ServiceBugs {
    /// The service bug called `name`, or `None` if no service plants it.
    pub fn from_name(name: &str) -> Option<ServiceBugs> {
        if let Some(kv) = KvBugs::from_name(name) {
            return Some(ServiceBugs {
                kv,
                ..ServiceBugs::default()
            });
        }
        ShardBugs::from_name(name).map(|shard| ServiceBugs {
            shard,
            ..ServiceBugs::default()
        })
    }

    /// Whether any bug is planted.
    pub fn any(&self) -> bool {
        self.kv.any() || self.shard.any()
    }

    /// Whether a bug of the sharded kv service is planted (it needs `--workload shardkv`).
    pub fn is_shard(&self) -> bool {
        self.shard.any()
    }
}

/// One bug set's names and descriptions, its home workload and the workloads that plant it.
type BugSet = (
    &'static [(&'static str, &'static str)],
    Workload,
    &'static [Workload],
);

/// Every planted bug: the Raft bugs (plantable under every workload, measured on `raft`), the
/// kv service's (kv only) and the sharded kv's (shardkv only), in that order. Names and
/// descriptions come from each bug set's own declaration (`planted_bugs!`).
pub fn registry() -> Vec<PlantedBug> {
    let sets: [BugSet; 3] = [
        (Bugs::DESCRIPTIONS, Workload::Raft, ALL),
        (KvBugs::DESCRIPTIONS, Workload::Kv, &[Workload::Kv]),
        (
            ShardBugs::DESCRIPTIONS,
            Workload::ShardKv,
            &[Workload::ShardKv],
        ),
    ];
    sets.into_iter()
        .flat_map(|(bugs, home, workloads)| {
            bugs.iter().map(move |&(name, what)| PlantedBug {
                name,
                home,
                workloads,
                what,
            })
        })
        .collect()
}

/// The bug called `name`.
pub fn find(name: &str) -> Option<PlantedBug> {
    registry().into_iter().find(|bug| bug.name == name)
}

/// Every bug name, comma separated (for error messages).
pub fn names() -> String {
    registry()
        .iter()
        .map(|bug| bug.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks that `name` is a bug `workload` can plant.
///
/// # Errors
/// An unknown name, or a bug of another workload's service, explained in one line.
pub fn check_plantable(name: &str, workload: Workload) -> Result<PlantedBug, String> {
    if let Workload::Custom(custom) = workload {
        let (name, what) = custom
            .bugs
            .iter()
            .find(|(bug, _)| *bug == name)
            .ok_or_else(|| {
                format!(
                    "unknown bug `{name}`; the {} service has no such bug",
                    custom.name
                )
            })?;
        return Ok(PlantedBug {
            name,
            home: workload,
            workloads: &[],
            what,
        });
    }
    let bug = find(name).ok_or_else(|| format!("unknown bug `{name}`; known bugs: {}", names()))?;
    if !bug.workloads.contains(&workload) {
        return Err(format!(
            "bug `{name}` is planted in the {} service; workload `{}` cannot plant it (use \
             workload `{}`)",
            bug.home.name(),
            workload.name(),
            bug.home.name()
        ));
    }
    Ok(bug)
}

/// The Raft and service bug sets that plant `name` (nothing for `None`).
pub fn plant(name: Option<&str>) -> (Bugs, ServiceBugs) {
    let bugs = name.and_then(Bugs::from_name).unwrap_or_default();
    let service = name.and_then(ServiceBugs::from_name).unwrap_or_default();
    (bugs, service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_is_described_and_plants_something() {
        let all = registry();
        assert_eq!(
            all.len(),
            Bugs::NAMES.len() + KvBugs::NAMES.len() + ShardBugs::NAMES.len()
        );
        for bug in &all {
            assert!(!bug.what.is_empty(), "{} has no description", bug.name);
            let (raft, kv) = plant(Some(bug.name));
            assert!(raft.any() || kv.any(), "{} plants nothing", bug.name);
            assert!(bug.workloads.contains(&bug.home));
        }
    }

    #[test]
    fn bugs_are_refused_on_workloads_that_cannot_plant_them() {
        assert!(check_plantable("figure8_commit", Workload::Kv).is_ok());
        assert!(check_plantable("figure8_commit", Workload::ShardKv).is_ok());
        assert!(check_plantable("local_reads", Workload::Kv).is_ok());
        let err = check_plantable("local_reads", Workload::Raft).unwrap_err();
        assert!(err.contains("cannot plant"), "{err}");
        assert!(check_plantable("delete_before_confirm", Workload::Kv).is_err());
        assert!(check_plantable("delete_before_confirm", Workload::ShardKv).is_ok());
        let err = check_plantable("nope", Workload::Kv).unwrap_err();
        assert!(err.contains("known bugs") && err.contains("serve_before_arrival"));
    }
}
