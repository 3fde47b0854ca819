//! The registry of planted bugs ("canaries"): every name `--bug` accepts, which workloads can
//! plant it, and what it breaks.
//!
//! The CLI, the seed corpus and `sim canaries` all go through this one table, so a bug that a
//! workload cannot plant is refused the same way everywhere instead of silently running the
//! correct code (a corpus entry that claims to plant a kv bug on the raft workload would
//! otherwise pass and prove nothing).

use crate::kv::SimKvBugs;
use crate::workload::Workload;
use raft_core::Bugs;
use workloads::shardkv::ShardBugs;

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

/// What each bug does; every name of the three bug sets must have a line here (a test checks).
fn what(name: &str) -> &'static str {
    match name {
        "figure8_commit" => "commits an entry of an earlier term by counting replicas",
        "vote_before_persist" => "answers a vote before the vote is persisted",
        "truncate_on_stale_append" => {
            "a follower truncates its log on a stale AppendEntries whose entries match"
        }
        "read_without_read_index" => "a leader serves reads without confirming leadership",
        "ack_before_fsync" => "acknowledges appends before fsync",
        "mid_log_corruption_as_torn_tail" => {
            "WAL recovery treats mid-log corruption as a torn tail"
        }
        "lease_read_no_drift_margin" => "lease reads ignore the clock-drift bound",
        "two_config_changes_in_flight" => {
            "allows a second membership change before the first commits"
        }
        "config_before_own_term_commit" => "changes membership before the leader's own-term commit",
        "leader_counts_unsynced_entry" => {
            "the leader counts its own log toward a commit past what its disk has synced"
        }
        "snapshot_install_before_sync" => {
            "an installed snapshot's log reset is made durable before the snapshot file is synced"
        }
        "new_segment_without_dir_sync" => {
            "a new WAL segment's name is never made durable by a directory sync"
        }
        "pre_vote_skipped" => "elections skip the configured PreVote round",
        "heartbeat_ignores_commit" => "a follower ignores the commit index heartbeats carry",
        "heartbeat_every_tick" => "the leader sends heartbeats on every tick",
        "transfer_never_abandoned" => {
            "a leadership transfer that cannot complete is never abandoned"
        }
        "vote_ignores_leader_lease" => {
            "a voter that hears from a current leader still grants votes of a higher term"
        }
        "sessions_not_in_snapshot" => "the exactly-once session table is left out of snapshots",
        "session_dedup_off_by_one" => {
            "the session check takes a retry of the last request for a new one (`>=` for `>`)"
        }
        "commit_beyond_verified" => {
            "a follower commits up to its log's end, past what the AppendEntries verified"
        }
        "read_index_before_own_term_commit" => {
            "a new leader serves ReadIndex before committing an entry of its term"
        }
        "stale_snapshot_installed" => {
            "a follower installs a snapshot older than its commit index, going backward"
        }
        "vote_ignores_log_check" => "a vote is granted without the up-to-date log check",
        "read_before_apply" => "a read is answered before the state machine reaches its index",
        "torn_tail_not_truncated" => {
            "WAL recovery skips a torn tail without cutting it off the file"
        }
        "term_not_persisted_on_higher_term" => {
            "a term adopted without a vote change is reported durable but never synced"
        }
        "joint_from_snapshot_never_left" => {
            "a leader never ends a joint configuration it holds only in its snapshot"
        }
        "local_reads" => "a leader answers Get from local state without a read barrier",
        "serve_before_arrival" => {
            "a group serves a shard's keys while it is still pulling the shard"
        }
        "delete_before_confirm" => {
            "a group deletes a shard it gave away before the receiver confirms"
        }
        _ => "",
    }
}

/// Every planted bug: the Raft bugs (plantable under every workload, measured on `raft`), the
/// kv service's (kv only) and the sharded kv's (shardkv only), in that order.
pub fn registry() -> Vec<PlantedBug> {
    let raft = Bugs::NAMES.iter().map(|&name| PlantedBug {
        name,
        home: Workload::Raft,
        workloads: ALL,
        what: what(name),
    });
    let kv = SimKvBugs::NAMES.iter().map(|&name| PlantedBug {
        name,
        home: Workload::Kv,
        workloads: &[Workload::Kv],
        what: what(name),
    });
    let shard = ShardBugs::NAMES.iter().map(|&name| PlantedBug {
        name,
        home: Workload::ShardKv,
        workloads: &[Workload::ShardKv],
        what: what(name),
    });
    raft.chain(kv).chain(shard).collect()
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
pub fn plant(name: Option<&str>) -> (Bugs, SimKvBugs) {
    let bugs = name.and_then(Bugs::from_name).unwrap_or_default();
    let kv = name.and_then(SimKvBugs::from_name).unwrap_or_default();
    (bugs, kv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_is_described_and_plants_something() {
        let all = registry();
        assert_eq!(
            all.len(),
            Bugs::NAMES.len() + SimKvBugs::NAMES.len() + ShardBugs::NAMES.len()
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
