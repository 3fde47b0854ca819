//! The swarm configuration: everything a run does is derived from its seed.
//!
//! Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012) turns whole fault classes on or off
//! per seed instead of running every fault at a low rate on every seed: a seed with only
//! partitions explores partition interleavings deeply, one with only crashes stresses recovery.
//! The seed alone reproduces the run, because the configuration is a pure function of it.

use crate::clock::{ClockParams, Wander};
use crate::disk::{CrashLoss, DiskFaults};
use crate::nemesis::NemesisConfig;
use crate::net::{NetFaults, PartitionShape};
use raft_core::NodeId;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::time::Duration;

/// Independent random streams derived from one seed, so that adding a draw to one concern
/// (say, the network) does not shift the draws of another (say, the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Drawing the [`SwarmConfig`].
    Config = 1,
    /// Per-message network decisions.
    Net = 2,
    /// The fault schedule (partitions, crashes, pauses).
    Faults = 3,
    /// Disk faults and crash loss.
    Disk = 4,
    /// The client workload.
    Client = 5,
    /// Seeds handed to `raft_core::Node::open`.
    Node = 6,
    /// The kv workload's shape and its clerks.
    Kv = 7,
    /// Membership and leadership nemeses, and lease reads.
    Nemesis = 8,
    /// Replication flow control (appends in flight, dynamic batches).
    FlowControl = 9,
}

/// A seeded generator for one concern of one seed (splitmix64 of `seed` and the stream tag).
pub fn stream_rng(seed: u64, stream: Stream) -> SmallRng {
    let mut z = seed ^ (stream as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    SmallRng::seed_from_u64(z ^ (z >> 31))
}

/// Timing parameters handed to raft-core.
#[derive(Clone, Debug, PartialEq)]
pub struct RaftTiming {
    /// Length of one logical tick, in microseconds of the node's own clock.
    pub tick_micros: u64,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: u64,
    /// Lower bound of the randomized election timeout, in ticks.
    pub election_ticks_min: u64,
    /// Upper bound (exclusive) of the randomized election timeout, in ticks.
    pub election_ticks_max: u64,
    /// Raft thesis §9.6 pre-vote.
    pub pre_vote: bool,
    /// Leaders step down when they have not heard from a quorum for an election timeout.
    pub check_quorum: bool,
    /// Log size after which a snapshot is taken.
    pub snapshot_threshold_bytes: u64,
    /// Entries per AppendEntries; small values replicate old entries one by one, which the
    /// Figure 8 scenario needs.
    pub max_entries_per_append: usize,
    /// Lease reads (Raft thesis §6.4.1) with this clock-drift bound in parts per million, which
    /// every node's clock honours on such seeds (no jumps, drift within it); `None`: off.
    pub lease_drift_bound_ppm: Option<u64>,
    /// Appends a leader keeps in flight to one follower (raft-core's default is 256).
    pub max_inflight_appends: usize,
    /// Batches sized like a congestion window instead of as large as the caps allow.
    pub dynamic_append_batch: bool,
}

/// Node-level faults: crashes and pauses.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeFaults {
    /// Mean time between crashes anywhere in the cluster; `None` disables crashes.
    pub crash_every: Option<Duration>,
    /// Mean time between pauses (frozen processes); `None` disables pauses.
    pub pause_every: Option<Duration>,
    /// Longest a crashed node stays down or a paused node stays frozen.
    pub down_max: Duration,
    /// What a crash does to writes that were not synced yet.
    pub crash_loss: CrashLoss,
    /// Probability of a targeted crash right after a node grants a vote (a twentieth of it
    /// after a leader sends new entries); zero when crashes are off.
    pub targeted_crash: f64,
    /// Probability that a disk operation inside a snapshot install or a log reset (writing
    /// the snapshot file, syncing it, starting the reset segment, deleting the old log) is a
    /// crash point: the process dies right before it. Zero when crashes are off.
    pub crash_points: f64,
}

/// The client workload.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// Mean time between new client operations.
    pub op_every: Duration,
    /// Fraction of operations that are linearizable reads (read barriers).
    pub read_fraction: f64,
    /// Operations in flight at once; new operations wait when this many are pending.
    pub outstanding_max: usize,
    /// A request without an answer after this long is retried, possibly on another node.
    pub retry_after: Duration,
    /// Probability that a request goes to the node believed to lead rather than to a random
    /// one (which forwards reads to the leader it knows, possibly a deposed one).
    pub leader_affinity: f64,
    /// Whether the client learns of leader changes from every node's events (an oracle), or
    /// only from the answers of the nodes it talks to, as a real client does: then it keeps
    /// talking to a deposed leader until that leader refuses or stops answering.
    pub leader_oracle: bool,
}

/// Everything that shapes one seed's run.
#[derive(Clone, Debug, PartialEq)]
pub struct SwarmConfig {
    /// The seed this configuration was derived from.
    pub seed: u64,
    /// Cluster size: 3, 5 or 7 voters.
    pub nodes: usize,
    /// Spare nodes, ids after the initial voters: running replicas that start as non-members
    /// and that the membership nemesis adds, promotes and removes. Zero without nemeses.
    pub spares: usize,
    /// Membership changes and leadership transfers during the fault phase; `None`: off.
    pub nemesis: Option<NemesisConfig>,
    /// Faults run for this long.
    pub fault_phase: Duration,
    /// After the fault phase, the cluster must elect a leader and finish every pending client
    /// operation within this bound, or the seed fails as a liveness failure.
    pub liveness_bound: Duration,
    /// Raft timing.
    pub raft: RaftTiming,
    /// Network faults.
    pub net: NetFaults,
    /// Crash and pause faults.
    pub node_faults: NodeFaults,
    /// Disk faults, with the budget applied.
    pub disk: DiskFaults,
    /// Per-node clock parameters, indexed like the nodes.
    pub clocks: Vec<ClockParams>,
    /// The client workload.
    pub client: ClientConfig,
}

impl SwarmConfig {
    /// Derives a swarm configuration from `seed`.
    pub fn from_seed(seed: u64) -> SwarmConfig {
        let mut rng = stream_rng(seed, Stream::Config);
        let nodes = [3, 5, 7][rng.gen_range(0..3)];
        let fault_phase = Duration::from_millis(rng.gen_range(5_000..20_000));
        Self::derive(seed, nodes, fault_phase, &mut rng, false)
    }

    /// The standard seed used by the benchmark: 5 nodes, 20 simulated seconds of faults, with
    /// every fault class on, so its cost is comparable from seed to seed.
    pub fn standard(seed: u64) -> SwarmConfig {
        let mut rng = stream_rng(seed, Stream::Config);
        Self::derive(seed, 5, Duration::from_secs(20), &mut rng, true)
    }

    fn derive(
        seed: u64,
        nodes: usize,
        fault_phase: Duration,
        rng: &mut SmallRng,
        all_faults: bool,
    ) -> SwarmConfig {
        assert!(
            matches!(nodes, 3 | 5 | 7),
            "cluster size {nodes} is not 3, 5 or 7"
        );
        let mut on = |p: f64| all_faults || rng.gen_bool(p);
        let (net_on, part_on, crash_on, pause_on, disk_on, clock_on) =
            (on(0.7), on(0.6), on(0.6), on(0.3), on(0.4), on(0.5));
        let raft = RaftTiming::draw(rng);
        let net = NetFaults::draw(rng, net_on, part_on);
        let node_faults = NodeFaults::draw(rng, crash_on, pause_on);
        let ids: Vec<NodeId> = (1..=nodes as u64).map(NodeId).collect();
        let disk = DiskFaults::draw(rng, disk_on, &ids);
        let clocks = ids
            .iter()
            .map(|_| ClockParams::draw(rng, clock_on, fault_phase))
            .collect();
        let client = ClientConfig {
            op_every: Duration::from_millis(rng.gen_range(5..50)),
            read_fraction: rng.gen_range(0.0..0.4),
            outstanding_max: rng.gen_range(1..8),
            retry_after: Duration::from_millis(rng.gen_range(300..1_000)),
            leader_affinity: 0.9,
            leader_oracle: true,
        };
        let mut config = SwarmConfig {
            seed,
            nodes,
            spares: 0,
            nemesis: None,
            fault_phase,
            liveness_bound: Duration::from_secs(15),
            raft,
            net,
            node_faults,
            disk,
            clocks,
            client,
        };
        if !all_faults {
            // Its own stream, so the draws above stay what they were before nemeses existed.
            let mut rng = stream_rng(seed, Stream::Nemesis);
            config.nemesis = NemesisConfig::draw(&mut rng);
            config.spares = config.nemesis.as_ref().map_or(0, |n| n.spares);
            for _ in 0..config.spares {
                let clock = ClockParams::draw(&mut rng, clock_on, fault_phase);
                config.clocks.push(clock);
            }
            draw_lease_reads(&mut rng, &mut config);
            draw_eager_snapshots(&mut rng, &mut config);
        }
        draw_flow_control(&mut stream_rng(seed, Stream::FlowControl), &mut config.raft);
        config
    }

    /// The initial voters, `NodeId(1)..=NodeId(nodes)`.
    pub fn node_ids(&self) -> Vec<NodeId> {
        (1..=self.nodes as u64).map(NodeId).collect()
    }

    /// Every node: the initial voters, then the spares.
    pub fn all_ids(&self) -> Vec<NodeId> {
        (1..=(self.nodes + self.spares) as u64)
            .map(NodeId)
            .collect()
    }

    /// How many nodes the cluster may lose and still make progress: `(n - 1) / 2`.
    pub fn fault_tolerance(&self) -> usize {
        (self.nodes - 1) / 2
    }

    /// Partition shapes this seed may use.
    pub fn partition_shapes(&self) -> &[PartitionShape] {
        &self.net.partition_shapes
    }
}

impl RaftTiming {
    /// raft-core's default number of appends in flight per follower.
    fn default_inflight_appends() -> usize {
        raft_core::Config::new(NodeId(1), Vec::new()).max_inflight_appends
    }

    fn draw(rng: &mut SmallRng) -> RaftTiming {
        let election_ticks_min = rng.gen_range(10..20);
        RaftTiming {
            tick_micros: 10_000,
            heartbeat_ticks: rng.gen_range(3..6),
            election_ticks_min,
            election_ticks_max: election_ticks_min * 2,
            pre_vote: rng.gen_bool(0.8),
            check_quorum: rng.gen_bool(0.8),
            snapshot_threshold_bytes: [4 << 10, 16 << 10, 64 << 10][rng.gen_range(0..3)],
            max_entries_per_append: [1, 2, 4, 64][rng.gen_range(0..4)],
            lease_drift_bound_ppm: None,
            max_inflight_appends: RaftTiming::default_inflight_appends(),
            dynamic_append_batch: false,
        }
    }
}

/// On half of the seeds, a leader keeps only 1, 2 or 4 appends in flight per follower, and on
/// half of those it sizes batches dynamically. The defaults (256 in flight, batches as large as
/// the caps) never fill the window nor shrink a batch in a short run, so the code that frees
/// in-flight slots on an acknowledgement and that grows and halves a batch would otherwise run
/// only in its trivial branch: a bug there would stall or flood replication unseen. Its own
/// stream, so every earlier draw stays what it was.
fn draw_flow_control(rng: &mut SmallRng, raft: &mut RaftTiming) {
    if !rng.gen_bool(0.5) {
        return;
    }
    raft.max_inflight_appends = [1, 2, 4][rng.gen_range(0..3)];
    raft.dynamic_append_batch = rng.gen_bool(0.5);
}

/// On three quarters of the seeds with membership changes, replicas snapshot at the smallest threshold,
/// about every kilobyte of log. Then a configuration is often compacted into a snapshot while
/// it is still in effect: a joint configuration that a later leader holds only in its
/// snapshot, with no entry of it left in its log, must still be ended (a shape the larger
/// thresholds reached in none of 5,000 raft, kv and shardkv seeds). It also puts snapshot
/// installs in the middle of membership changes.
fn draw_eager_snapshots(rng: &mut SmallRng, config: &mut SwarmConfig) {
    if config.nemesis.is_none() || !rng.gen_bool(0.75) {
        return;
    }
    config.raft.snapshot_threshold_bytes = raft_core::Config::MIN_SNAPSHOT_THRESHOLD_BYTES;
}

/// Turns lease reads on for some seeds (those with CheckQuorum, which leases need). The clocks
/// of such a seed honour the drift bound the nodes are told about (`SimClock::drift_bound_ppm`):
/// no jumps, every rate within the bound. They are deliberately rate-skewed, some fast and some
/// slow near the bound, because a lease that ignores the drift margin is stale exactly when the
/// leader's clock is slow and the followers' are fast. Heartbeats are made frequent relative to
/// the election timeout so that even the slowest leader's heartbeats reach the fastest follower
/// well before it times out.
fn draw_lease_reads(rng: &mut SmallRng, config: &mut SwarmConfig) {
    if !config.raft.check_quorum || !rng.gen_bool(0.9) {
        return;
    }
    let bound: i64 = [250_000, 300_000, 400_000][rng.gen_range(0..3)];
    config.raft.lease_drift_bound_ppm = Some(bound as u64);
    config.raft.heartbeat_ticks = 3;
    config.raft.election_ticks_min = config.raft.election_ticks_min.max(12);
    // A narrower spread of election timeouts: a deposed leader's successor comes soon after
    // the followers stop waiting, which is when a lease without the drift margin is stale.
    config.raft.election_ticks_max = config.raft.election_ticks_min * 3 / 2;
    for clock in &mut config.clocks {
        let sign = if rng.gen_bool(0.5) { 1 } else { -1 };
        clock.drift_ppm = sign * rng.gen_range(bound * 4 / 5..=bound);
        clock.jumps.clear();
    }
    // One node at a time runs slow, in turn, and the others fast: whenever the slow one leads
    // and is cut off, every majority that can elect its successor is fast.
    let period = Duration::from_millis(rng.gen_range(600..4_000));
    let offset = rng.gen_range(0..period.as_micros() as u64);
    let n = config.clocks.len() as u32;
    for (i, clock) in config.clocks.iter_mut().enumerate() {
        let turn = period / n * i as u32;
        clock.wander = Some(Wander {
            period,
            phase: Duration::from_micros(offset) + turn,
            slow: period / n,
        });
    }
    // A stale lease serves the reads that reach a deposed leader: the client learns of new
    // leaders only from answers, reads more, and partitions that depose leaders are common.
    config.client.leader_affinity = rng.gen_range(0.6..0.95);
    config.client.leader_oracle = false;
    config.client.read_fraction = rng.gen_range(0.3..0.6);
    // Writes stuck on a deposed leader must not block the reads behind them.
    config.client.op_every = Duration::from_millis(rng.gen_range(3..15));
    config.client.outstanding_max = rng.gen_range(16..48);
    if rng.gen_bool(0.9) {
        let net = &mut config.net;
        net.partition_every = Some(Duration::from_millis(rng.gen_range(200..800)));
        net.partition_max = net.partition_max.min(Duration::from_millis(800));
        net.partition_shapes = vec![PartitionShape::LeaderMinority, PartitionShape::IsolatedNode];
    }
}

/// `off` for a disabled rate, the duration otherwise.
struct Every(Option<Duration>);

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(every) => write!(f, "every {every:?}"),
            None => write!(f, "off"),
        }
    }
}

impl NodeFaults {
    fn draw(rng: &mut SmallRng, crash_on: bool, pause_on: bool) -> NodeFaults {
        let crash_loss = match rng.gen_range(0..4) {
            0 => CrashLoss::KeepAll,
            1 => CrashLoss::LoseAll,
            _ => CrashLoss::TornPrefix,
        };
        NodeFaults {
            crash_every: crash_on.then(|| Duration::from_millis(rng.gen_range(500..3_000))),
            pause_every: pause_on.then(|| Duration::from_millis(rng.gen_range(500..4_000))),
            down_max: Duration::from_millis(rng.gen_range(200..3_000)),
            crash_loss,
            targeted_crash: if crash_on {
                rng.gen_range(0.0..0.3)
            } else {
                0.0
            },
            crash_points: if crash_on && rng.gen_bool(0.5) {
                rng.gen_range(0.0..0.2)
            } else {
                0.0
            },
        }
    }
}

impl fmt::Display for SwarmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: {} nodes, fault phase {:?}, liveness bound {:?}",
            self.seed, self.nodes, self.fault_phase, self.liveness_bound
        )?;
        let r = &self.raft;
        writeln!(
            f,
            "  raft: tick {}us, heartbeat {} ticks, election {}..{} ticks, pre_vote {}, \
            check_quorum {}, snapshot at {} bytes, {} entries per append",
            r.tick_micros,
            r.heartbeat_ticks,
            r.election_ticks_min,
            r.election_ticks_max,
            r.pre_vote,
            r.check_quorum,
            r.snapshot_threshold_bytes,
            r.max_entries_per_append
        )?;
        writeln!(f, "  net: {}", self.net)?;
        let n = &self.node_faults;
        writeln!(
            f,
            "  nodes: crashes {}, pauses {}, down up to {:?}, crash loss {:?}, \
            targeted crashes {:.3}, crash points {:.3}",
            Every(n.crash_every),
            Every(n.pause_every),
            n.down_max,
            n.crash_loss,
            n.targeted_crash,
            n.crash_points
        )?;
        match &self.nemesis {
            Some(nemesis) => writeln!(f, "  nemesis: {nemesis}, {} spare node(s)", self.spares)?,
            None => writeln!(f, "  nemesis: off")?,
        }
        match r.lease_drift_bound_ppm {
            Some(ppm) => writeln!(f, "  lease reads: on, clock drift bound {ppm}ppm")?,
            None => writeln!(f, "  lease reads: off")?,
        }
        // Only when drawn, so that the text (and the corpus fingerprint) of a seed with
        // raft-core's flow control is what it was before flow control was drawn.
        if r.dynamic_append_batch
            || r.max_inflight_appends != RaftTiming::default_inflight_appends()
        {
            writeln!(
                f,
                "  flow control: {} appends in flight, {} batches",
                r.max_inflight_appends,
                if r.dynamic_append_batch {
                    "dynamic"
                } else {
                    "full"
                }
            )?;
        }
        writeln!(f, "  disk: {}", self.disk)?;
        for (id, clock) in self.all_ids().iter().zip(&self.clocks) {
            writeln!(f, "  clock n{id}: {clock}")?;
        }
        let c = &self.client;
        write!(
            f,
            "  client: op every {:?}, reads {:.0}%, {} outstanding, retry after {:?}, to the \
             leader {:.0}%, leader changes {}",
            c.op_every,
            c.read_fraction * 100.0,
            c.outstanding_max,
            c.retry_after,
            c.leader_affinity * 100.0,
            if c.leader_oracle {
                "from every node"
            } else {
                "from answers"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_a_function_of_the_seed() {
        for seed in 0..50 {
            assert_eq!(SwarmConfig::from_seed(seed), SwarmConfig::from_seed(seed));
        }
    }

    #[test]
    fn seeds_cover_every_cluster_size() {
        let sizes: std::collections::BTreeSet<usize> =
            (0..100).map(|s| SwarmConfig::from_seed(s).nodes).collect();
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![3, 5, 7]);
    }

    #[test]
    fn disk_fault_budget_never_exceeds_tolerance() {
        for seed in 0..500 {
            let config = SwarmConfig::from_seed(seed);
            assert!(config.disk.faulty_nodes.len() <= config.fault_tolerance());
        }
    }
}
