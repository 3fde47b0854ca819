//! Replica configuration and the planted bugs used to test the test harness.

use crate::types::NodeId;

/// Configuration of one replica. Every field is public; call [`Config::validate`] (which
/// [`Node::open`](crate::Node::open) does) before use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This replica.
    pub id: NodeId,
    /// The voters of a new cluster, including `id`. This is only the initial configuration:
    /// once the log or a snapshot holds a configuration (see
    /// [`Node::change_membership`](crate::Node::change_membership)), that one is used.
    pub peers: Vec<NodeId>,
    /// This replica joins an existing cluster: it starts with no configuration (`peers` is not
    /// used, and may be empty), never campaigns, and learns the configuration from the
    /// leader's log or snapshot once the leader has added it as a learner. Default false.
    pub join_existing: bool,
    /// Ticks between leader heartbeats. Default 1.
    pub heartbeat_ticks: u32,
    /// Lower bound (inclusive) of the randomized election timeout, in ticks. Default 10.
    pub election_ticks_min: u32,
    /// Upper bound (exclusive) of the randomized election timeout, in ticks. Default 20.
    pub election_ticks_max: u32,
    /// Length of one tick in microseconds of the replica's clock. Default 10 000 (10 ms).
    pub tick_micros: u64,
    /// Appends a leader may have in flight to one follower. Default 256.
    pub max_inflight_appends: usize,
    /// Entries per AppendEntries. Default 4096.
    pub max_entries_per_append: usize,
    /// Payload bytes per AppendEntries (at least one entry is always sent). Default 1 MiB.
    pub max_bytes_per_append: u64,
    /// Size each follower's AppendEntries batches dynamically, like TCP congestion control:
    /// start at one entry, double per acknowledged append up to a threshold, then grow by one;
    /// on a rejection or a stalled pipeline halve the threshold and restart at one entry.
    /// `max_entries_per_append` and `max_bytes_per_append` remain hard caps. Default false
    /// (every batch is as large as the caps allow).
    pub dynamic_append_batch: bool,
    /// Log bytes on disk above which the replica snapshots and compacts. Default 64 MiB.
    pub snapshot_threshold_bytes: u64,
    /// Bytes per InstallSnapshot chunk. Default 256 KiB.
    pub snapshot_chunk_bytes: u64,
    /// Run a PreVote round before each election (Raft thesis §9.6). Default true.
    pub pre_vote: bool,
    /// Leaders step down without a quorum heartbeat response in an election timeout, and
    /// followers ignore vote requests while they hear from a leader (thesis §6.2). Default true.
    pub check_quorum: bool,
    /// Serve linearizable reads on the leader from a lease instead of a heartbeat round per
    /// read (Raft thesis §6.4.1). Default false. Assumes every replica's clock rate stays
    /// within [`Clock::drift_bound_ppm`](crate::Clock::drift_bound_ppm) of real time and never
    /// jumps; a clock that violates this can make a lease read return stale data. Requires
    /// `check_quorum` (followers must refuse votes while they hear from the leader).
    pub lease_reads: bool,
    /// Deliberate bugs, all off by default.
    pub bugs: Bugs,
}

impl Config {
    /// The smallest `snapshot_threshold_bytes` [`Config::validate`] accepts: below it a
    /// replica would snapshot after almost every entry.
    pub const MIN_SNAPSHOT_THRESHOLD_BYTES: u64 = 1024;

    /// A configuration with the defaults listed on each field.
    pub fn new(id: NodeId, peers: Vec<NodeId>) -> Config {
        Config {
            id,
            peers,
            join_existing: false,
            heartbeat_ticks: 1,
            election_ticks_min: 10,
            election_ticks_max: 20,
            tick_micros: 10_000,
            max_inflight_appends: 256,
            max_entries_per_append: 4096,
            max_bytes_per_append: 1024 * 1024,
            dynamic_append_batch: false,
            snapshot_threshold_bytes: 64 * 1024 * 1024,
            snapshot_chunk_bytes: 256 * 1024,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            bugs: Bugs::default(),
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// A [`ConfigError`] describing the first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError(msg.to_string()));
        if self.peers.is_empty() && !self.join_existing {
            return invalid("peers must not be empty");
        }
        if !self.peers.contains(&self.id) && !self.join_existing {
            return invalid("peers must include the replica's own id");
        }
        let mut sorted = self.peers.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.peers.len() {
            return invalid("peers must not contain duplicates");
        }
        if self.heartbeat_ticks == 0 {
            return invalid("heartbeat_ticks must be at least 1");
        }
        if self.election_ticks_min < 2 * self.heartbeat_ticks {
            return invalid("election timeout must be at least twice the heartbeat");
        }
        if self.election_ticks_max <= self.election_ticks_min {
            return invalid("election_ticks_max must be greater than election_ticks_min");
        }
        if self.tick_micros == 0 {
            return invalid("tick_micros must be at least 1");
        }
        if self.max_inflight_appends == 0 {
            return invalid("max_inflight_appends must be at least 1");
        }
        if self.max_entries_per_append == 0 {
            return invalid("max_entries_per_append must be at least 1");
        }
        if self.max_bytes_per_append == 0 || self.max_bytes_per_append > 32 * 1024 * 1024 {
            return invalid("max_bytes_per_append must be between 1 byte and 32 MiB");
        }
        if self.snapshot_chunk_bytes == 0 || self.snapshot_chunk_bytes > 16 * 1024 * 1024 {
            return invalid("snapshot_chunk_bytes must be between 1 byte and 16 MiB");
        }
        if self.lease_reads && !self.check_quorum {
            return invalid("lease_reads requires check_quorum");
        }
        if self.snapshot_threshold_bytes < Config::MIN_SNAPSHOT_THRESHOLD_BYTES {
            return invalid(&format!(
                "snapshot_threshold_bytes must be at least {}",
                Config::MIN_SNAPSHOT_THRESHOLD_BYTES
            ));
        }
        Ok(())
    }

    /// Number of votes (or acknowledgements) that form a majority of the initial `peers`.
    /// Once the configuration changes, quorums follow [`Membership`](crate::Membership).
    pub fn quorum(&self) -> usize {
        self.peers.len() / 2 + 1
    }
}

/// An invalid configuration, with a message that says which rule failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

crate::planted_bugs! {
    /// Deliberately planted bugs ("canaries"), compiled in and all off by default.
    ///
    /// Each one turns on a small, clearly marked branch in the real code path, so a test
    /// harness can prove it would catch that class of bug. Never enable one outside such a
    /// test. Declared with [`planted_bugs!`](crate::planted_bugs), which gives the names and
    /// one-line descriptions the canary table prints.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct Bugs {
        /// Commit an entry from an earlier term by counting replicas (violates Raft §5.4.2,
        /// Figure 8).
        figure8_commit => "commits an entry of an earlier term by counting replicas",
        /// Send a vote before the vote is persisted, so a crash can let a replica vote twice.
        vote_before_persist => "answers a vote before the vote is persisted",
        /// On a stale or duplicated AppendEntries whose entries all match, truncate the log after
        /// them anyway, losing acknowledged entries.
        truncate_on_stale_append =>
            "a follower truncates its log on a stale AppendEntries whose entries match",
        /// The leader serves reads at its commit index without confirming it is still leader.
        read_without_read_index => "a leader serves reads without confirming leadership",
        /// Acknowledge appended entries before they are synced, so a crash between the write and
        /// its fsync can lose acknowledged entries.
        ack_before_fsync => "acknowledges appends before fsync",
        /// WAL recovery treats a checksum failure in the middle of the log as a torn tail and
        /// truncates everything after it.
        mid_log_corruption_as_torn_tail => "WAL recovery treats mid-log corruption as a torn tail",
        /// With `lease_reads`, the leader's lease ignores the clock-drift margin, so a leader
        /// whose clock runs slow serves reads after a newer leader may have been elected.
        lease_read_no_drift_margin => "lease reads ignore the clock-drift bound",
        /// The leader accepts a membership change while another is still in flight (uncommitted,
        /// or joint), so consecutive changes can leave the old voters without a say.
        two_config_changes_in_flight =>
            "allows a second membership change before the first commits",
        /// A new leader appends a configuration entry before an entry of its own term is
        /// committed, so it may change a configuration it does not know is current.
        config_before_own_term_commit => "changes membership before the leader's own-term commit",
        /// The leader counts its own log toward a commit up to its last entry instead of up to
        /// what is durable on its own disk, so a leader crash can lose a "committed" entry.
        leader_counts_unsynced_entry =>
            "the leader counts its own log toward a commit past what its disk has synced",
        /// A follower installing a leader's snapshot writes the log reset and deletes its old log
        /// without syncing the snapshot file first, so a crash can leave it with neither.
        snapshot_install_before_sync =>
            "an installed snapshot's log reset is made durable before the snapshot file is synced",
        /// A new WAL segment's directory entry is never synced, so a crash can make the whole
        /// segment vanish, acknowledged entries, term and vote with it, although its content was.
        new_segment_without_dir_sync =>
            "a new WAL segment's name is never made durable by a directory sync",
        /// With `pre_vote` configured, elections skip the PreVote round anyway, so a node cut off
        /// from a majority raises its term on every timeout and deposes the leader on its return.
        pre_vote_skipped => "elections skip the configured PreVote round",
        /// A follower ignores the commit index heartbeats carry, so once the clients go quiet it
        /// never learns that the last entries committed (it applies them only when more come).
        heartbeat_ignores_commit => "a follower ignores the commit index heartbeats carry",
        /// The leader broadcasts a heartbeat on every tick instead of every `heartbeat_ticks`,
        /// several times the messages a quiet cluster needs.
        heartbeat_every_tick => "the leader sends heartbeats on every tick",
        /// A leadership transfer's clock never advances, so a transfer whose target never
        /// catches up (or whose `TimeoutNow` is lost) is never abandoned and the leader refuses
        /// proposals for the rest of its term.
        transfer_never_abandoned => "a leadership transfer that cannot complete is never abandoned",
        /// A voter grants a vote to a candidate of a higher term even while it hears from a
        /// current leader (CheckQuorum's lease, thesis §4.2.3), so a removed or rejoining node
        /// without PreVote deposes a healthy leader.
        vote_ignores_leader_lease =>
            "a voter that hears from a current leader still grants votes of a higher term",
        /// A follower's commit index is capped by the end of its own log instead of by what is
        /// verified to match the leader's: on AppendEntries by its log's last index instead of
        /// the append's last entry, and on heartbeats, which verify nothing, by its log's end
        /// instead of the match index the leader knows (the leader sends its whole commit index).
        /// A follower still holding a divergent suffix of an earlier term then commits and
        /// applies it.
        commit_beyond_verified =>
            "a follower commits up to its log's end, past what the AppendEntries verified",
        /// A new leader answers ReadIndex at its commit index before it has committed an entry
        /// of its own term (thesis §6.4), so the read can miss a write the previous leader
        /// committed and acknowledged.
        read_index_before_own_term_commit =>
            "a new leader serves ReadIndex before committing an entry of its term",
        /// A follower installs a snapshot no newer than its own commit index (a delayed or
        /// duplicated InstallSnapshot), so its commit and applied state go backward.
        stale_snapshot_installed =>
            "a follower installs a snapshot older than its commit index, going backward",
        /// A replica grants a vote without the §5.4.1 check that the candidate's log is at least
        /// as up to date as its own, so a leader can be elected without a committed entry.
        vote_ignores_log_check => "a vote is granted without the up-to-date log check",
        /// A new term is synced only if the vote changed too, although the replica reports it
        /// durable. A vote for the same candidate in a later term (or a term adopted from a
        /// higher-term message with no vote) stays in the page cache, so a crash brings the
        /// replica back in the older term, free to vote again in the term it already voted in.
        term_not_persisted_on_higher_term =>
            "a term adopted without a vote change is reported durable but never synced",
        /// A read is answered from the state machine as it stands once the read index is known,
        /// without waiting for the state machine to apply up to it, so a replica that lags (a
        /// follower serving a forwarded read) returns a state older than the read index.
        read_before_apply => "a read is answered before the state machine reaches its index",
        /// WAL recovery skips a torn tail in memory but leaves its bytes in the file, so the next
        /// records are appended after the torn prefix and a later recovery finds damage in the
        /// middle of the log (and refuses to open, or loses what followed).
        torn_tail_not_truncated => "WAL recovery skips a torn tail without cutting it off the file",
        /// A new leader looks for a joint configuration to end only among the configuration
        /// entries still in its log, so one it holds only in its snapshot (compacted before the
        /// final configuration reached it) is never ended, and every later change is refused.
        joint_from_snapshot_never_left =>
            "a leader never ends a joint configuration it holds only in its snapshot",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)])
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn election_timeout_must_exceed_twice_the_heartbeat() {
        let mut c = config();
        c.heartbeat_ticks = 6;
        let err = c.validate().unwrap_err();
        assert_eq!(
            err.0,
            "election timeout must be at least twice the heartbeat"
        );
    }

    #[test]
    fn self_must_be_a_peer() {
        let mut c = config();
        c.id = NodeId(9);
        assert!(c.validate().unwrap_err().0.contains("own id"));
    }

    #[test]
    fn every_bug_name_round_trips() {
        for name in Bugs::NAMES {
            let bugs = Bugs::from_name(name).expect("known name");
            assert!(bugs.any());
        }
        assert_eq!(Bugs::from_name("nope"), None);
    }
}
