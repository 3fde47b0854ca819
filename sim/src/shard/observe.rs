//! The cross-group checks: every replica group's latest state, watched from outside.
//!
//! All replicas of a group apply the same log (state machine safety is checked per group),
//! so the replica with the highest applied index shows the group's latest committed state.
//! After every step of every node the observer keeps, per group, the state at the highest
//! applied index seen so far. A lagging replica never counts: it serves nobody, because
//! whatever it would serve goes through the log after the entries it has not applied yet.
//!
//! - **One server per shard**: no two groups' latest states serve the same shard. A shard
//!   reaches its new owner only from a replica of the previous owner that has installed the
//!   configuration taking it away (and that state was observed first), so in a correct run
//!   the two never overlap.
//! - **No shard lost**: a previous owner answers a pull with "deleted" while the puller's
//!   latest state still waits for that shard. Deletion is allowed only after the puller has
//!   logged the data and asked for it, which its latest state would show.
//! - **Bounded storage**: once migrations have settled, a group holds data or sessions only
//!   for shards it owns in the latest configuration.

use raft_core::LogIndex;
use std::collections::BTreeMap;
use workloads::shardctrler::NSHARDS;
use workloads::shardctrler::{ConfigNum, Gid, ShardConfig, ShardCtrlerStateMachine, ShardId};
use workloads::shardkv::{ShardKvStateMachine, ShardState};

/// A group's latest observed state, reduced to what the checks need.
#[derive(Clone, Debug)]
pub(crate) struct GroupView {
    pub(crate) applied: LogIndex,
    pub(crate) num: ConfigNum,
    pub(crate) states: [ShardState; NSHARDS],
    pub(crate) serving: [bool; NSHARDS],
    /// Whether the group holds keys or sessions of each shard.
    pub(crate) holds: [bool; NSHARDS],
    pub(crate) settled: bool,
}

/// The cross-group observer.
#[derive(Debug, Default)]
pub(crate) struct Observer {
    groups: BTreeMap<Gid, GroupView>,
    ctrler_applied: LogIndex,
    latest: Option<ShardConfig>,
}

impl Observer {
    /// Shows the observer one replica of `gid`; checks that no two groups serve a shard.
    ///
    /// # Errors
    /// The overlap, described.
    pub(crate) fn observe_group(
        &mut self,
        gid: Gid,
        sm: &ShardKvStateMachine,
    ) -> Result<(), String> {
        let applied = sm.applied();
        if self.groups.get(&gid).is_some_and(|v| v.applied >= applied) {
            return Ok(());
        }
        let kv = sm.kv();
        let view = GroupView {
            applied,
            num: kv.config().num,
            states: std::array::from_fn(|i| kv.state(ShardId(i as u8)).unwrap_or_default()),
            serving: std::array::from_fn(|i| kv.serves(ShardId(i as u8))),
            holds: std::array::from_fn(|i| {
                let shard = ShardId(i as u8);
                kv.store(shard).is_some_and(|s| !s.is_empty())
                    || kv.sessions(shard).is_some_and(|s| !s.is_empty())
            }),
            settled: kv.is_settled(),
        };
        for (other, seen) in self.groups.iter().filter(|(g, _)| **g != gid) {
            if let Some(i) = (0..NSHARDS).find(|&i| view.serving[i] && seen.serving[i]) {
                return Err(format!(
                    "shard-{i} is served by group {} ({:?} in configuration {}, applied index \
                     {}) and by group {} ({:?} in configuration {}, applied index {})",
                    gid.0,
                    view.states[i],
                    view.num,
                    view.applied,
                    other.0,
                    seen.states[i],
                    seen.num,
                    seen.applied
                ));
            }
        }
        self.groups.insert(gid, view);
        Ok(())
    }

    /// Shows the observer one controller replica.
    pub(crate) fn observe_ctrler(&mut self, sm: &ShardCtrlerStateMachine) {
        if sm.applied() <= self.ctrler_applied {
            return;
        }
        self.ctrler_applied = sm.applied();
        let latest = sm.app().latest();
        if self.latest.as_ref().map(|c| c.num) != Some(latest.num) {
            self.latest = Some(latest.clone());
        }
    }

    /// If `gid`'s latest state still waits for `shard` of configuration `num`, the previous
    /// owner's "deleted" answer means the shard is lost: the description.
    pub(crate) fn lost_shard(&self, gid: Gid, num: ConfigNum, shard: ShardId) -> Option<String> {
        let view = self.groups.get(&gid)?;
        let index = shard.index()?;
        (view.num == num && view.states[index] == ShardState::Pulling).then(|| {
            format!(
                "group {} is pulling {shard} for configuration {num}, and its previous owner \
                 answered that it deleted its copy: the shard's data is gone",
                gid.0
            )
        })
    }

    /// Why migrations have not settled at `gids` yet (`None`: every group is at the latest
    /// configuration with every shard settled).
    pub(crate) fn unsettled(&self, gids: &[Gid]) -> Option<String> {
        let latest = self.latest.as_ref()?.num;
        let behind: Vec<String> = gids
            .iter()
            .filter_map(|gid| match self.groups.get(gid) {
                Some(v) if v.num == latest && v.settled => None,
                Some(v) => Some(format!(
                    "group {} at configuration {} ({})",
                    gid.0,
                    v.num,
                    if v.settled { "settled" } else { "migrating" }
                )),
                None => Some(format!("group {} not observed", gid.0)),
            })
            .collect();
        (!behind.is_empty()).then(|| {
            format!(
                "latest configuration {latest}; not there yet: {}",
                behind.join(", ")
            )
        })
    }

    /// Bounded storage after GC: every group holds only shards it owns in the latest
    /// configuration.
    ///
    /// # Errors
    /// The first group holding a shard it does not own.
    pub(crate) fn check_storage(&self) -> Result<(), String> {
        let Some(latest) = &self.latest else {
            return Ok(());
        };
        for (gid, view) in &self.groups {
            for shard in ShardId::all() {
                let index = shard.index().expect("in range");
                if view.holds[index] && latest.owner(shard) != *gid {
                    return Err(format!(
                        "group {} still holds data or sessions of {shard}, which configuration \
                         {} gives to group {}",
                        gid.0,
                        latest.num,
                        latest.owner(shard).0
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{NodeId, StateMachine};
    use workloads::shardctrler::{CtrlerCommand, ShardCtrler};
    use workloads::shardkv::{ShardBugs, ShardKvCommand};

    fn configs() -> Vec<ShardConfig> {
        let mut ctrler = ShardCtrler::new();
        for gid in [1, 2] {
            let groups = BTreeMap::from([(Gid(gid), vec![NodeId(1)])]);
            ctrler.execute(CtrlerCommand::Join { groups }).unwrap();
        }
        ctrler.configs().to_vec()
    }

    fn group(gid: u32, bugs: ShardBugs, installs: &[ShardConfig]) -> ShardKvStateMachine {
        let mut sm = ShardKvStateMachine::new(Gid(gid), bugs);
        for (i, config) in installs.iter().enumerate() {
            let bytes = ShardKvCommand::InstallConfig(config.clone())
                .encode()
                .unwrap();
            sm.apply(LogIndex(i as u64 + 1), &bytes);
        }
        sm
    }

    #[test]
    fn two_groups_serving_one_shard_is_caught_and_a_lagging_group_is_not() {
        let configs = configs();
        // Group 1 still serves everything in configuration 1; group 2 installs 2, where it
        // pulls half the shards: correct, no overlap.
        let mut observer = Observer::default();
        observer
            .observe_group(Gid(1), &group(1, ShardBugs::default(), &configs[1..2]))
            .unwrap();
        observer
            .observe_group(Gid(2), &group(2, ShardBugs::default(), &configs[1..3]))
            .unwrap();
        // With serve_before_arrival, group 2 serves what group 1 still serves.
        let bug = ShardBugs::from_name("serve_before_arrival").unwrap();
        let mut observer = Observer::default();
        observer
            .observe_group(Gid(1), &group(1, bug, &configs[1..2]))
            .unwrap();
        let overlap = observer.observe_group(Gid(2), &group(2, bug, &configs[1..3]));
        assert!(overlap.unwrap_err().contains("served by group 2"));
    }

    #[test]
    fn a_deleted_shard_still_awaited_is_lost_and_storage_is_checked() {
        let configs = configs();
        let mut observer = Observer::default();
        let pulling = group(2, ShardBugs::default(), &configs[1..3]);
        observer.observe_group(Gid(2), &pulling).unwrap();
        let shard = ShardId::all()
            .find(|&s| pulling.kv().state(s) == Some(ShardState::Pulling))
            .unwrap();
        assert!(observer.lost_shard(Gid(2), ConfigNum(2), shard).is_some());
        assert!(observer.lost_shard(Gid(2), ConfigNum(1), shard).is_none());
        assert_eq!(observer.check_storage(), Ok(()));
        observer.groups.get_mut(&Gid(2)).unwrap().holds = [true; NSHARDS];
        observer.latest = Some(configs[2].clone());
        assert!(observer
            .check_storage()
            .unwrap_err()
            .contains("still holds"));
        assert!(observer.unsettled(&[Gid(2)]).is_some());
    }
}
