//! The shard controller as an [`App`]: Join, Leave, Move and Query over numbered
//! configurations. Behind [`Deduplicated`](crate::rsm::Deduplicated) it is the replicated
//! state machine of the controller's Raft group.

use super::config::{validate_servers, ConfigNum, Gid, ShardConfig, ShardId, GROUPS_MAX};
use super::rebalance::rebalance;
use crate::codec::{self, Kind};
use crate::rsm::App;
use raft_core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One request to the shard controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtrlerCommand {
    /// Adds groups (gid → servers) and rebalances, as one new configuration.
    Join {
        /// The new groups.
        groups: BTreeMap<Gid, Vec<NodeId>>,
    },
    /// Removes groups and rebalances their shards onto the others, as one new configuration.
    Leave {
        /// The departing groups.
        gids: Vec<Gid>,
    },
    /// Assigns one shard to one group, without rebalancing (for tests and manual tuning).
    Move {
        /// The shard.
        shard: ShardId,
        /// Its new group, which must be in the configuration.
        gid: Gid,
    },
    /// Reads configuration `num`, or the latest one if `num` is `None` or not created yet.
    Query {
        /// The configuration wanted.
        num: Option<ConfigNum>,
    },
}

/// The result of a successful [`CtrlerCommand`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtrlerReply {
    /// A Join, Leave or Move created this configuration.
    Created(ConfigNum),
    /// The configuration a Query asked for.
    Config(ShardConfig),
}

/// Why the controller refused a command; the configurations are then unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CtrlerError {
    /// A Join or Leave named no group.
    #[error("no group given")]
    Empty,
    /// A Join named a group that is already in the configuration, or named it twice.
    #[error("group {} has already joined", .0 .0)]
    AlreadyJoined(Gid),
    /// A Leave or Move named a group that is not in the configuration.
    #[error("group {} is not in the configuration", .0 .0)]
    UnknownGroup(Gid),
    /// A Move named a shard out of range.
    #[error("shard {} does not exist", .0 .0)]
    UnknownShard(ShardId),
    /// A Join's server list, gid or group count is invalid.
    #[error("invalid group: {0}")]
    InvalidGroup(String),
}

/// What a controller replica stores and answers: the list of every configuration so far.
///
/// Old configurations are kept because a replica group moves from one configuration to the
/// next one at a time and must be able to read each of them, however far behind it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCtrler {
    configs: Vec<ShardConfig>,
}

impl Default for ShardCtrler {
    fn default() -> Self {
        Self::new()
    }
}

impl ShardCtrler {
    /// A controller holding only configuration 0.
    pub fn new() -> Self {
        ShardCtrler {
            configs: vec![ShardConfig::initial()],
        }
    }

    /// The latest configuration.
    pub fn latest(&self) -> &ShardConfig {
        self.configs.last().expect("configuration 0 always exists")
    }

    /// Configuration `num`, or the latest one if `num` is `None` or not created yet.
    pub fn query(&self, num: Option<ConfigNum>) -> &ShardConfig {
        num.and_then(|num| usize::try_from(num.0).ok())
            .and_then(|index| self.configs.get(index))
            .unwrap_or_else(|| self.latest())
    }

    /// Runs one command; a refused command changes nothing.
    ///
    /// # Errors
    /// [`CtrlerError`] for a command that does not fit the latest configuration.
    pub fn execute(&mut self, command: CtrlerCommand) -> Result<CtrlerReply, CtrlerError> {
        let latest = self.latest();
        let next = match command {
            CtrlerCommand::Query { num } => {
                return Ok(CtrlerReply::Config(self.query(num).clone()))
            }
            CtrlerCommand::Join { groups } => join(latest, groups)?,
            CtrlerCommand::Leave { gids } => leave(latest, &gids)?,
            CtrlerCommand::Move { shard, gid } => move_shard(latest, shard, gid)?,
        };
        assert_eq!(
            next.num,
            latest.num.next(),
            "configurations are numbered in order"
        );
        assert_eq!(
            next.validate(),
            Ok(()),
            "a command produced an invalid configuration"
        );
        tracing::info!(
            num = next.num.0,
            groups = next.groups.len(),
            "configuration created"
        );
        let num = next.num;
        self.configs.push(next);
        Ok(CtrlerReply::Created(num))
    }

    /// Every configuration, oldest first (for checkers).
    pub fn configs(&self) -> &[ShardConfig] {
        &self.configs
    }
}

fn join(
    latest: &ShardConfig,
    groups: BTreeMap<Gid, Vec<NodeId>>,
) -> Result<ShardConfig, CtrlerError> {
    if groups.is_empty() {
        return Err(CtrlerError::Empty);
    }
    if latest.groups.len() + groups.len() > GROUPS_MAX {
        return Err(CtrlerError::InvalidGroup(format!(
            "more than {GROUPS_MAX} groups"
        )));
    }
    for (gid, servers) in &groups {
        if *gid == Gid::NONE {
            return Err(CtrlerError::InvalidGroup("gid 0 is reserved".to_string()));
        }
        if latest.groups.contains_key(gid) {
            return Err(CtrlerError::AlreadyJoined(*gid));
        }
        validate_servers(*gid, servers).map_err(CtrlerError::InvalidGroup)?;
    }
    let mut next = latest.clone();
    next.num = latest.num.next();
    next.groups.extend(groups);
    let gids: BTreeSet<Gid> = next.groups.keys().copied().collect();
    next.shards = rebalance(&latest.shards, &gids);
    Ok(next)
}

fn leave(latest: &ShardConfig, gids: &[Gid]) -> Result<ShardConfig, CtrlerError> {
    if gids.is_empty() {
        return Err(CtrlerError::Empty);
    }
    let mut next = latest.clone();
    next.num = latest.num.next();
    for gid in gids {
        // A gid named twice is unknown the second time, which is the right answer.
        if next.groups.remove(gid).is_none() {
            return Err(CtrlerError::UnknownGroup(*gid));
        }
    }
    let remaining: BTreeSet<Gid> = next.groups.keys().copied().collect();
    next.shards = rebalance(&latest.shards, &remaining);
    Ok(next)
}

fn move_shard(latest: &ShardConfig, shard: ShardId, gid: Gid) -> Result<ShardConfig, CtrlerError> {
    let index = shard.index().ok_or(CtrlerError::UnknownShard(shard))?;
    if !latest.groups.contains_key(&gid) {
        return Err(CtrlerError::UnknownGroup(gid));
    }
    let mut next = latest.clone();
    next.num = latest.num.next();
    next.shards[index] = gid;
    Ok(next)
}

impl App for ShardCtrler {
    type Command = CtrlerCommand;
    type Reply = Result<CtrlerReply, CtrlerError>;

    fn apply(&mut self, command: CtrlerCommand) -> Self::Reply {
        self.execute(command)
    }

    /// # Panics
    /// If the history exceeds [`SNAPSHOT_BYTES_MAX`](crate::codec::SNAPSHOT_BYTES_MAX).
    fn snapshot(&self) -> Vec<u8> {
        codec::encode(self, Kind::Snapshot).expect("controller history exceeds the snapshot limit")
    }

    /// Checks the history as strictly as `execute` builds it: numbered 0, 1, 2, ... from the
    /// initial configuration, each one valid.
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let restored: ShardCtrler =
            codec::decode(data, Kind::Snapshot).map_err(|e| e.to_string())?;
        if restored.configs.first() != Some(&ShardConfig::initial()) {
            return Err("history does not start with configuration 0".to_string());
        }
        for (index, config) in restored.configs.iter().enumerate() {
            if config.num.0 != index as u64 {
                return Err(format!(
                    "configuration {} stored at position {index}",
                    config.num
                ));
            }
            config
                .validate()
                .map_err(|e| format!("configuration {}: {e}", config.num))?;
        }
        *self = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(ctrler: &mut ShardCtrler, gid: u32) -> Result<CtrlerReply, CtrlerError> {
        let groups = BTreeMap::from([(Gid(gid), vec![NodeId(u64::from(gid) * 10)])]);
        ctrler.execute(CtrlerCommand::Join { groups })
    }

    #[test]
    fn refused_commands_change_nothing() {
        let mut ctrler = ShardCtrler::new();
        join(&mut ctrler, 1).unwrap();
        let before = ctrler.clone();
        assert_eq!(
            join(&mut ctrler, 1),
            Err(CtrlerError::AlreadyJoined(Gid(1)))
        );
        let leave = CtrlerCommand::Leave {
            gids: vec![Gid(1), Gid(1)],
        };
        assert_eq!(
            ctrler.execute(leave),
            Err(CtrlerError::UnknownGroup(Gid(1)))
        );
        let bad_move = CtrlerCommand::Move {
            shard: ShardId(10),
            gid: Gid(1),
        };
        assert_eq!(
            ctrler.execute(bad_move),
            Err(CtrlerError::UnknownShard(ShardId(10)))
        );
        assert_eq!(ctrler, before);
    }

    #[test]
    fn snapshots_round_trip_and_tampered_history_is_refused() {
        let mut ctrler = ShardCtrler::new();
        join(&mut ctrler, 1).unwrap();
        join(&mut ctrler, 2).unwrap();
        let mut restored = ShardCtrler::new();
        restored.restore(&ctrler.snapshot()).unwrap();
        assert_eq!(restored, ctrler);
        let mut tampered = ctrler.clone();
        tampered.configs.remove(1);
        let mut target = ShardCtrler::new();
        assert!(target
            .restore(&tampered.snapshot())
            .unwrap_err()
            .contains("position 1"));
        assert_eq!(
            target,
            ShardCtrler::new(),
            "a refused snapshot changes nothing"
        );
        assert!(target.restore(&[1, 2, 3]).is_err());
    }
}
