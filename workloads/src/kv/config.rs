//! Configuration of a kv replica, and the bugs that can be planted in it.

use raft_core::{Config, ConfigError};
use serde::{Deserialize, Serialize};

raft_core::planted_bugs! {
    /// Planted bugs ("canaries") of the kv service, compiled in and all off by default.
    ///
    /// The simulator turns one on and must then find a violation; a canary it cannot find
    /// shows a blind spot in the fault model or the checkers.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct KvBugs {
        /// Snapshots leave out the session table. After a replica restores such a snapshot
        /// (restart or InstallSnapshot) it no longer knows which requests ran, so a retried
        /// request is applied a second time (for example an `Append` shows up twice).
        sessions_not_in_snapshot => "the exactly-once session table is left out of snapshots",
        /// A server that believes it leads answers reads from its local state without a read
        /// barrier ([`KvServer::with_local_reads_bug`](crate::kv::KvServer::with_local_reads_bug)),
        /// so a deposed leader serves stale values.
        local_reads => "a leader answers Get from local state without a read barrier",
        /// The session check takes a request whose number equals the client's last applied
        /// one (`>=` where `>` is meant) for a new request, so a retry of a request that
        /// already ran (its reply was lost, or the clerk timed out) runs a second time.
        session_dedup_off_by_one =>
            "the session check takes a retry of the last request for a new one (`>=` for `>`)",
    }
}

/// Settings of a kv replica on top of its Raft configuration.
///
/// Automatic snapshots are raft-core's job: once the log on disk passes
/// `snapshot_threshold_bytes`, the node asks the state machine (here
/// [`KvStateMachine`](crate::kv::KvStateMachine), which includes the session table) for a
/// snapshot and compacts its log. The service only chooses the threshold, which
/// [`KvServerConfig::raft_config`] copies into the Raft configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvServerConfig {
    /// Log bytes on disk above which the replica snapshots and compacts. A small value makes
    /// snapshots and InstallSnapshot frequent, which is what a test wants. Default 64 MiB;
    /// raft-core requires at least 1024.
    pub snapshot_threshold_bytes: u64,
    /// Send reads (`Get`, `Exists`) through the log like writes instead of answering them
    /// from local state after a ReadIndex barrier. Slower, but independent of the barrier.
    /// Default false.
    pub reads_through_log: bool,
    /// Planted bugs. Default: none.
    pub bugs: KvBugs,
}

impl Default for KvServerConfig {
    fn default() -> Self {
        KvServerConfig {
            snapshot_threshold_bytes: 64 * 1024 * 1024,
            reads_through_log: false,
            bugs: KvBugs::default(),
        }
    }
}

impl KvServerConfig {
    /// `base` with this service's snapshot threshold, validated.
    ///
    /// # Errors
    /// Whatever [`Config::validate`] rejects, e.g. a threshold below raft-core's minimum.
    pub fn raft_config(&self, base: Config) -> Result<Config, ConfigError> {
        let mut config = base;
        config.snapshot_threshold_bytes = self.snapshot_threshold_bytes;
        config.validate()?;
        Ok(config)
    }

    /// Whether a server with these settings answers `command` from local state after a
    /// ReadIndex barrier (`Node::read_barrier`, then [`KvStore::query`]) rather than
    /// proposing it through the log.
    ///
    /// [`KvStore::query`]: crate::kv::KvStore::query
    pub fn serves_from_read_index(&self, command: &crate::kv::KvCommand) -> bool {
        command.is_read_only() && !self.reads_through_log
    }

    /// A fresh state machine for a replica with these settings.
    pub fn state_machine(&self) -> crate::kv::KvStateMachine {
        crate::rsm::Deduplicated::with_bugs(crate::kv::KvStore::new(), self.bugs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::NodeId;

    #[test]
    fn every_name_enables_exactly_one_bug() {
        assert!(!KvBugs::default().any());
        for name in KvBugs::NAMES {
            assert!(KvBugs::from_name(name).expect("known name").any());
        }
        assert_eq!(KvBugs::from_name("nope"), None);
    }

    #[test]
    fn only_reads_take_the_read_index_path_and_only_when_enabled() {
        use crate::kv::KvCommand;
        let get = KvCommand::Get { key: "k".into() };
        let exists = KvCommand::Exists { key: "k".into() };
        let put = KvCommand::Put {
            key: "k".into(),
            value: "v".into(),
        };
        let default = KvServerConfig::default();
        assert!(default.serves_from_read_index(&get));
        assert!(default.serves_from_read_index(&exists));
        assert!(!default.serves_from_read_index(&put));
        let through_log = KvServerConfig {
            reads_through_log: true,
            ..Default::default()
        };
        assert!(!through_log.serves_from_read_index(&get));
        assert!(!through_log.serves_from_read_index(&put));
    }

    #[test]
    fn threshold_is_copied_into_the_raft_config_and_validated() {
        let base = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
        let config = KvServerConfig {
            snapshot_threshold_bytes: 4096,
            ..Default::default()
        };
        assert_eq!(
            config
                .raft_config(base.clone())
                .unwrap()
                .snapshot_threshold_bytes,
            4096
        );
        let too_small = KvServerConfig {
            snapshot_threshold_bytes: 1,
            ..Default::default()
        };
        assert!(too_small.raft_config(base).is_err());
    }
}
