//! Numbered configurations: which replica group serves each shard.

use raft_core::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Number of shards the key space is split into. Fixed for the life of a deployment: a key's
/// shard must never change, or its data would be looked up in the wrong place.
pub const NSHARDS: usize = 10;

/// Most replica groups a configuration may hold. Bounds the controller's state and the cost
/// of a rebalance; far above the number of shards, past which extra groups sit idle.
pub const GROUPS_MAX: usize = 64;

/// Most servers listed for one replica group.
pub const GROUP_SERVERS_MAX: usize = 16;

const _: () = assert!(NSHARDS > 0 && NSHARDS <= u8::MAX as usize);
const _: () = assert!(GROUPS_MAX >= NSHARDS);

/// Identifies a replica group (one Raft cluster) for its whole life. `Gid(0)` is
/// [`Gid::NONE`], the owner of every shard while no group exists.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Gid(pub u32);

impl Gid {
    /// "No group": shards are assigned to it only while the configuration holds no group.
    pub const NONE: Gid = Gid(0);
}

/// One of the [`NSHARDS`] shards. Values at or above `NSHARDS` are invalid; functions that
/// take a `ShardId` from outside check it with [`ShardId::index`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ShardId(pub u8);

impl ShardId {
    /// The position of this shard in a per-shard array, or `None` if it is out of range.
    pub fn index(self) -> Option<usize> {
        let index = usize::from(self.0);
        (index < NSHARDS).then_some(index)
    }

    /// Every shard, in order.
    pub fn all() -> impl Iterator<Item = ShardId> {
        (0..NSHARDS).map(|index| ShardId(index as u8))
    }
}

/// The number of a configuration. Configuration 0 is the initial one, with no group; every
/// change creates the next number.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ConfigNum(pub u64);

impl ConfigNum {
    /// The number after this one.
    ///
    /// # Panics
    /// On overflow, which no deployment reaches.
    pub fn next(self) -> ConfigNum {
        ConfigNum(
            self.0
                .checked_add(1)
                .expect("configuration number overflowed"),
        )
    }
}

impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gid-{}", self.0)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard-{}", self.0)
    }
}

impl fmt::Display for ConfigNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The shard a key belongs to: FNV-1a of its bytes, modulo [`NSHARDS`].
///
/// A hash (rather than, say, the first byte) spreads keys that share a prefix, such as
/// `key-1`, `key-2`, over all shards. It is fixed forever: clients and servers must agree.
pub fn key_to_shard(key: &str) -> ShardId {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = key.bytes().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    });
    let shard = ShardId((hash % NSHARDS as u64) as u8);
    debug_assert!(shard.index().is_some());
    shard
}

/// One configuration: its number, the group that serves each shard, and each group's servers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardConfig {
    /// The configuration number.
    pub num: ConfigNum,
    /// The group serving each shard; [`Gid::NONE`] only while `groups` is empty.
    pub shards: [Gid; NSHARDS],
    /// The servers of every group in this configuration.
    pub groups: BTreeMap<Gid, Vec<NodeId>>,
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self::initial()
    }
}

impl ShardConfig {
    /// Configuration 0: no group, every shard unassigned.
    pub fn initial() -> Self {
        ShardConfig {
            num: ConfigNum(0),
            shards: [Gid::NONE; NSHARDS],
            groups: BTreeMap::new(),
        }
    }

    /// The group serving `shard` ([`Gid::NONE`] if none, or if `shard` is out of range).
    pub fn owner(&self, shard: ShardId) -> Gid {
        shard.index().map_or(Gid::NONE, |index| self.shards[index])
    }

    /// The group serving `key`.
    pub fn owner_of_key(&self, key: &str) -> Gid {
        self.owner(key_to_shard(key))
    }

    /// The shards served by `gid`, in order.
    pub fn shards_of(&self, gid: Gid) -> Vec<ShardId> {
        ShardId::all()
            .filter(|&shard| self.owner(shard) == gid)
            .collect()
    }

    /// Checks the structural invariants of a configuration.
    ///
    /// # Errors
    /// A description of the first violation: a shard assigned to a group that is not listed,
    /// an unassigned shard while groups exist, [`Gid::NONE`] listed as a group, a group with
    /// no server or a duplicated server, or more groups or servers than the bounds allow.
    pub fn validate(&self) -> Result<(), String> {
        if self.groups.len() > GROUPS_MAX {
            return Err(format!("{} groups exceed {GROUPS_MAX}", self.groups.len()));
        }
        if self.groups.contains_key(&Gid::NONE) {
            return Err("gid 0 is reserved for unassigned shards".to_string());
        }
        for (gid, servers) in &self.groups {
            validate_servers(*gid, servers)?;
        }
        for (index, gid) in self.shards.iter().enumerate() {
            let valid = if self.groups.is_empty() {
                *gid == Gid::NONE
            } else {
                self.groups.contains_key(gid)
            };
            if !valid {
                return Err(format!(
                    "shard {index} is assigned to unknown group {}",
                    gid.0
                ));
            }
        }
        Ok(())
    }
}

/// Checks one group's server list: non-empty, bounded, no duplicates.
pub(crate) fn validate_servers(gid: Gid, servers: &[NodeId]) -> Result<(), String> {
    if servers.is_empty() {
        return Err(format!("group {} has no server", gid.0));
    }
    if servers.len() > GROUP_SERVERS_MAX {
        return Err(format!(
            "group {} lists {} servers, more than {GROUP_SERVERS_MAX}",
            gid.0,
            servers.len()
        ));
    }
    let mut sorted = servers.to_vec();
    sorted.sort();
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(format!("group {} lists server {} twice", gid.0, pair[0]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ids_are_checked_and_keys_spread() {
        assert_eq!(ShardId(9).index(), Some(9));
        assert_eq!(ShardId(10).index(), None);
        assert_eq!(ShardId::all().count(), NSHARDS);
        let mut hit = [false; NSHARDS];
        for i in 0..200 {
            hit[key_to_shard(&format!("key-{i}")).index().unwrap()] = true;
        }
        assert!(hit.iter().all(|&h| h), "200 keys should reach every shard");
        assert_eq!(key_to_shard("k"), key_to_shard("k"));
    }

    #[test]
    fn validate_rejects_broken_configurations() {
        let mut config = ShardConfig::initial();
        assert_eq!(config.validate(), Ok(()));
        config.groups.insert(Gid(1), vec![NodeId(1)]);
        assert!(config.validate().unwrap_err().contains("unknown group 0"));
        config.shards = [Gid(1); NSHARDS];
        assert_eq!(config.validate(), Ok(()));
        config.groups.insert(Gid(2), vec![NodeId(2), NodeId(2)]);
        assert!(config.validate().unwrap_err().contains("twice"));
        config.groups.insert(Gid(2), vec![]);
        assert!(config.validate().unwrap_err().contains("no server"));
        config.groups.remove(&Gid(2));
        config.groups.insert(Gid::NONE, vec![NodeId(3)]);
        assert!(config.validate().unwrap_err().contains("reserved"));
        assert_eq!(config.owner(ShardId(200)), Gid::NONE);
    }
}
