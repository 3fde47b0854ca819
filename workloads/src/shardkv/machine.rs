//! The sharded kv state of one replica group, as a pure [`App`].

use super::bugs::ShardBugs;
use super::command::{ShardKvCommand, ShardKvError, ShardKvReply, ShardTransfer};
use super::state::ShardState;
use crate::codec::{self, Kind};
use crate::kv::{KvCommand, KvError, KvReply, KvStore};
use crate::rsm::{App, ApplyOutcome, Envelope};
use crate::sessions::{Seq, SessionCheck, SessionTable};
use crate::shardctrler::{key_to_shard, ConfigNum, Gid, ShardConfig, ShardId, NSHARDS};
use serde::{Deserialize, Serialize};

/// One shard at one group: its lifecycle state, its data and its own session table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Shard {
    pub(super) state: ShardState,
    pub(super) store: KvStore,
    pub(super) sessions: SessionTable<KvReply>,
}

/// The replicated state of one replica group of the sharded kv service.
///
/// Sessions are kept per shard, not per group, because a shard's sessions must move with its
/// data: a request runs on exactly one shard (its key's), so the shard's table alone decides
/// whether a retry already ran, wherever the shard lives now.
///
/// A group moves through configurations one at a time and in order, and only once every
/// shard is settled (see [`ShardState`]); shards that a change does not touch keep serving
/// throughout, and a shard is served as soon as its data has arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardKv {
    gid: Gid,
    config: ShardConfig,
    previous: ShardConfig,
    shards: Vec<Shard>,
    #[serde(skip)]
    pub(super) bugs: ShardBugs,
}

impl ShardKv {
    /// The state of group `gid` before any configuration.
    ///
    /// # Panics
    /// If `gid` is [`Gid::NONE`], which names no group.
    pub fn new(gid: Gid, bugs: ShardBugs) -> Self {
        assert_ne!(gid, Gid::NONE, "gid 0 names no group");
        if bugs.any() {
            tracing::warn!(?bugs, gid = gid.0, "sharded kv runs with planted bugs");
        }
        ShardKv {
            gid,
            config: ShardConfig::initial(),
            previous: ShardConfig::initial(),
            shards: vec![Shard::default(); NSHARDS],
            bugs,
        }
    }

    /// This group.
    pub fn gid(&self) -> Gid {
        self.gid
    }

    /// The configuration the group is in.
    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// The configuration before it: where shards being pulled come from.
    pub fn previous_config(&self) -> &ShardConfig {
        &self.previous
    }

    /// The state of `shard`, or `None` if it is out of range.
    pub fn state(&self, shard: ShardId) -> Option<ShardState> {
        shard.index().map(|index| self.shards[index].state)
    }

    /// Whether client requests for `shard` are served now.
    pub fn serves(&self, shard: ShardId) -> bool {
        match self.state(shard) {
            // BUG (planted, `serve_before_arrival`): the data is still at the previous owner.
            Some(ShardState::Pulling) => self.bugs.serve_before_arrival,
            Some(state) => state.serves(),
            None => false,
        }
    }

    /// Whether every shard is settled, so the next configuration may be installed.
    pub fn is_settled(&self) -> bool {
        self.shards.iter().all(|shard| shard.state.is_settled())
    }

    /// The configuration to fetch and install next, or `None` while a migration is in
    /// progress (the group moves on only when every shard is settled).
    pub fn wants_config(&self) -> Option<ConfigNum> {
        self.is_settled().then(|| self.config.num.next())
    }

    /// The data held for `shard` (served or not), or `None` if it is out of range.
    pub fn store(&self, shard: ShardId) -> Option<&KvStore> {
        shard.index().map(|index| &self.shards[index].store)
    }

    /// The session table of `shard`, or `None` if it is out of range.
    pub fn sessions(&self, shard: ShardId) -> Option<&SessionTable<KvReply>> {
        shard.index().map(|index| &self.shards[index].sessions)
    }

    /// Keys plus sessions held over all shards: what garbage collection must bound.
    pub fn stored_items(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.store.len() + shard.sessions.len())
            .sum()
    }

    /// Answers a read-only command from local state (after a ReadIndex barrier).
    ///
    /// # Errors
    /// [`ShardKvError::WrongGroup`] if the key's shard is not served here, or
    /// [`KvError::Malformed`] for a command that writes.
    pub fn query(&self, command: &KvCommand) -> Result<KvReply, ShardKvError> {
        let shard = key_to_shard(command.key());
        if !self.serves(shard) {
            return Err(self.wrong_group(shard));
        }
        let index = shard.index().expect("key_to_shard is in range");
        self.shards[index]
            .store
            .query(command)
            .ok_or_else(|| KvError::Malformed("not a read-only command".to_string()).into())
    }

    fn wrong_group(&self, shard: ShardId) -> ShardKvError {
        ShardKvError::WrongGroup {
            shard,
            num: self.config.num,
        }
    }

    /// Applies one logged command; the typed core of [`App::apply`].
    pub fn execute(&mut self, command: ShardKvCommand) -> ShardKvReply {
        let reply = match command {
            ShardKvCommand::Client(envelope) => return self.apply_client(envelope),
            ShardKvCommand::InstallConfig(config) => self.install_config(config),
            ShardKvCommand::InsertShard(transfer) => self.insert_shard(transfer),
            ShardKvCommand::DeleteShard { num, shard } => self.delete_shard(num, shard),
            ShardKvCommand::ConfirmGc { num, shard } => self.confirm_gc(num, shard),
        };
        if let Err(error) = self.check_invariants() {
            panic!("group {}: {error} after {reply:?}", self.gid.0);
        }
        reply
    }

    fn apply_client(&mut self, envelope: Envelope<KvCommand>) -> ShardKvReply {
        let Envelope {
            client,
            seq,
            command,
        } = envelope;
        let shard = key_to_shard(command.key());
        if !self.serves(shard) {
            tracing::debug!(%client, %seq, %shard, "wrong group");
            return ShardKvReply::WrongGroup {
                shard,
                num: self.config.num,
            };
        }
        if seq == Seq(0) {
            return ShardKvReply::Kv(ApplyOutcome::Malformed("request seq 0 is reserved".into()));
        }
        let slot = &mut self.shards[shard.index().expect("key_to_shard is in range")];
        let outcome = match slot.sessions.check(client, seq) {
            SessionCheck::Duplicate(reply) => ApplyOutcome::Duplicate(reply.clone()),
            SessionCheck::Stale { last } => ApplyOutcome::Stale { last },
            SessionCheck::New => {
                let reply = slot.store.apply(&command);
                slot.sessions.record(client, seq, reply.clone());
                ApplyOutcome::Applied(reply)
            }
        };
        ShardKvReply::Kv(outcome)
    }

    /// The one place a shard's state changes.
    fn set_state(&mut self, shard: ShardId, next: ShardState) {
        let index = shard.index().expect("shard checked by the caller");
        let current = self.shards[index].state;
        assert!(
            current.can_transition_to(next),
            "group {}: {shard} cannot go from {current:?} to {next:?}",
            self.gid.0
        );
        tracing::info!(gid = self.gid.0, num = self.config.num.0, %shard, from = ?current,
            to = ?next, "shard state changed");
        self.shards[index].state = next;
    }

    fn install_config(&mut self, config: ShardConfig) -> ShardKvReply {
        if config.num != self.config.num.next() {
            return ignored(format!(
                "configuration {} is not next after {}",
                config.num, self.config.num
            ));
        }
        if !self.is_settled() {
            return ignored(format!(
                "configuration {} is still migrating",
                self.config.num
            ));
        }
        if let Err(error) = config.validate() {
            return ignored(format!("invalid configuration {}: {error}", config.num));
        }
        let num = config.num;
        self.previous = std::mem::replace(&mut self.config, config);
        for shard in ShardId::all() {
            self.reconfigure_shard(shard);
        }
        ShardKvReply::Installed(num)
    }

    fn reconfigure_shard(&mut self, shard: ShardId) {
        let before = self.previous.owner(shard);
        let after = self.config.owner(shard);
        let index = shard.index().expect("ShardId::all is in range");
        match (before == self.gid, after == self.gid) {
            (false, true) if before == Gid::NONE => {
                assert!(
                    self.shards[index].store.is_empty(),
                    "a fresh shard holds data"
                );
                self.set_state(shard, ShardState::Serving);
            }
            (false, true) => self.set_state(shard, ShardState::Pulling),
            (true, false) if after == Gid::NONE => {
                tracing::warn!(gid = self.gid.0, %shard, "no group left: shard data dropped");
                self.set_state(shard, ShardState::Absent);
                self.shards[index] = Shard::default();
            }
            (true, false) => self.set_state(shard, ShardState::Offering),
            (true, true) | (false, false) => {}
        }
    }

    fn insert_shard(&mut self, transfer: ShardTransfer) -> ShardKvReply {
        let ShardTransfer {
            num,
            shard,
            data,
            sessions,
        } = transfer;
        let Some(index) = shard.index() else {
            return ignored(format!("{shard} does not exist"));
        };
        if num != self.config.num || self.shards[index].state != ShardState::Pulling {
            return ignored(format!("{shard} of configuration {num} is not awaited"));
        }
        let slot = &mut self.shards[index];
        slot.store = data;
        slot.sessions.merge(sessions);
        self.set_state(shard, ShardState::GcPending);
        ShardKvReply::Inserted { num, shard }
    }

    fn delete_shard(&mut self, num: ConfigNum, shard: ShardId) -> ShardKvReply {
        let Some(index) = shard.index() else {
            return ignored(format!("{shard} does not exist"));
        };
        if num > self.config.num {
            return ignored(format!("configuration {num} not reached"));
        }
        // Past hand-overs are all finished: the group only moved on once they were.
        if num < self.config.num {
            return ShardKvReply::Deleted { num, shard };
        }
        match self.shards[index].state {
            ShardState::Offering => {
                self.shards[index].store = KvStore::new();
                self.shards[index].sessions = SessionTable::new();
                self.set_state(shard, ShardState::Absent);
                ShardKvReply::Deleted { num, shard }
            }
            ShardState::Absent => ShardKvReply::Deleted { num, shard },
            state => ignored(format!("{shard} is {state:?}, not offered")),
        }
    }

    fn confirm_gc(&mut self, num: ConfigNum, shard: ShardId) -> ShardKvReply {
        match self.state(shard) {
            Some(ShardState::GcPending) if num == self.config.num => {
                self.set_state(shard, ShardState::Serving);
                ShardKvReply::Confirmed { num, shard }
            }
            _ => ignored(format!(
                "no deletion of {shard} awaited for configuration {num}"
            )),
        }
    }

    /// Checks that every shard's state agrees with the configurations.
    ///
    /// # Errors
    /// A description of the first disagreement.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.shards.len() != NSHARDS {
            return Err(format!("{} shards instead of {NSHARDS}", self.shards.len()));
        }
        let consecutive = self.config.num == self.previous.num.next()
            || (self.config.num == ConfigNum(0) && self.previous == ShardConfig::initial());
        if !consecutive {
            return Err(format!(
                "configuration {} follows {}",
                self.config.num, self.previous.num
            ));
        }
        for shard in ShardId::all() {
            let slot = &self.shards[shard.index().expect("in range")];
            let ours = self.config.owner(shard) == self.gid;
            let was_ours = self.previous.owner(shard) == self.gid;
            let fits = match slot.state {
                ShardState::Serving | ShardState::GcPending => ours,
                ShardState::Pulling => ours && !was_ours,
                ShardState::Offering => !ours && was_ours,
                ShardState::Absent => !ours && slot.store.is_empty() && slot.sessions.is_empty(),
            };
            if !fits {
                return Err(format!(
                    "{shard} is {:?} but owned by {} (was {})",
                    slot.state,
                    self.config.owner(shard).0,
                    self.previous.owner(shard).0
                ));
            }
        }
        Ok(())
    }
}

fn ignored(reason: String) -> ShardKvReply {
    tracing::debug!(%reason, "reconfiguration command ignored");
    ShardKvReply::Ignored(reason)
}

impl App for ShardKv {
    type Command = ShardKvCommand;
    type Reply = ShardKvReply;

    fn apply(&mut self, command: ShardKvCommand) -> ShardKvReply {
        self.execute(command)
    }

    /// # Panics
    /// If the state exceeds [`SNAPSHOT_BYTES_MAX`](crate::codec::SNAPSHOT_BYTES_MAX).
    fn snapshot(&self) -> Vec<u8> {
        debug_assert_eq!(self.check_invariants(), Ok(()));
        codec::encode(self, Kind::Snapshot).expect("group state exceeds the snapshot limit")
    }

    /// Refuses a snapshot of another group or one whose shard states contradict its
    /// configurations; the planted bugs of this replica are kept.
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let mut restored: ShardKv =
            codec::decode(data, Kind::Snapshot).map_err(|e| e.to_string())?;
        if restored.gid != self.gid {
            return Err(format!(
                "snapshot of group {} given to group {}",
                restored.gid.0, self.gid.0
            ));
        }
        restored.check_invariants()?;
        restored.bugs = self.bugs;
        *self = restored;
        Ok(())
    }
}
