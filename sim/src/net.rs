//! Message delivery: per-message drop, duplicate and delay, per-link latency, partitions.
//!
//! madsim's network has one global loss rate and latency, no duplication and no per-link
//! control, so the simulator decides every message's fate itself with a seeded generator and
//! then delivers it with a madsim timer (see `cluster.rs`). For each message sent on a link:
//!
//! 1. If the link is cut, the message is dropped.
//! 2. With probability `drop` it is dropped.
//! 3. It is delivered once, or twice with probability `duplicate`; each copy independently gets
//!    the link's base latency plus a uniform jitter, and with probability `delay` an extra delay
//!    of up to `delay_max`, so copies and later messages overtake each other (reordering).
//!
//! **Messages in flight when a partition starts.** A link is checked both when a message is sent
//! and when it arrives: a message is delivered only if its link is up at both moments. Starting
//! a partition therefore drops everything in flight across the new cut, as a switch that starts
//! discarding packets would; messages sent while a link was cut are never delivered, even if the
//! partition heals before their arrival time. Messages on links that stay up are unaffected.

use raft_core::NodeId;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

/// A named partition shape (the Jepsen nemesis catalogue plus one-way cuts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PartitionShape {
    /// The nodes split into two random halves.
    RandomHalves,
    /// A majority and a minority, with the current leader in the minority.
    LeaderMinority,
    /// One node (the leader, half of the time) cut from everyone.
    IsolatedNode,
    /// Two halves that cannot talk, joined by one bridge node that sees both.
    Bridge,
    /// Nodes on a ring each see only their neighbours: every node sees a majority, but no two
    /// nodes see the same one.
    MajoritiesRing,
    /// One node can receive but not send, or send but not receive.
    OneWay,
}

impl PartitionShape {
    /// Every shape.
    pub const ALL: [PartitionShape; 6] = [
        PartitionShape::RandomHalves,
        PartitionShape::LeaderMinority,
        PartitionShape::IsolatedNode,
        PartitionShape::Bridge,
        PartitionShape::MajoritiesRing,
        PartitionShape::OneWay,
    ];

    /// The directed links this shape cuts, for `nodes` (sorted) and the current `leader`.
    pub fn cut(
        self,
        rng: &mut SmallRng,
        nodes: &[NodeId],
        leader: Option<NodeId>,
    ) -> BTreeSet<(NodeId, NodeId)> {
        assert!(nodes.len() >= 3, "partitions need at least three nodes");
        let mut order = nodes.to_vec();
        order.shuffle(rng);
        let leader = leader.filter(|l| nodes.contains(l));
        let f = (nodes.len() - 1) / 2;
        match self {
            PartitionShape::RandomHalves => {
                let (a, b) = order.split_at(nodes.len() / 2);
                between(a, b)
            }
            PartitionShape::LeaderMinority => {
                if let Some(l) = leader {
                    order.retain(|n| *n != l);
                    order.insert(0, l);
                }
                let (minority, majority) = order.split_at(rng.gen_range(1..=f));
                between(minority, majority)
            }
            PartitionShape::IsolatedNode => {
                let lonely = match leader {
                    Some(l) if rng.gen_bool(0.5) => l,
                    _ => order[0],
                };
                let rest: Vec<NodeId> = nodes.iter().copied().filter(|n| *n != lonely).collect();
                between(&[lonely], &rest)
            }
            PartitionShape::Bridge => {
                // order[0] is the bridge: it stays connected to both halves.
                let rest = &order[1..];
                let (a, b) = rest.split_at(rest.len() / 2);
                between(a, b)
            }
            PartitionShape::MajoritiesRing => ring_cut(&order, f, rng),
            PartitionShape::OneWay => {
                let node = order[0];
                let inbound = rng.gen_bool(0.5);
                let others = nodes.iter().copied().filter(|n| *n != node);
                others
                    .map(|o| if inbound { (o, node) } else { (node, o) })
                    .collect()
            }
        }
    }
}

/// Both directions of every link between `a` and `b`.
fn between(a: &[NodeId], b: &[NodeId]) -> BTreeSet<(NodeId, NodeId)> {
    let mut cut = BTreeSet::new();
    for &x in a {
        for &y in b {
            cut.insert((x, y));
            cut.insert((y, x));
        }
    }
    cut
}

/// A ring (in `order`) where each node sees neighbours up to `reach` hops away.
fn ring_cut(order: &[NodeId], f: usize, rng: &mut SmallRng) -> BTreeSet<(NodeId, NodeId)> {
    let n = order.len();
    let reach = f.div_ceil(2).max(1);
    let mut cut = BTreeSet::new();
    for i in 0..n {
        for j in 0..n {
            let d = (i + n - j) % n;
            if i != j && d.min(n - d) > reach {
                cut.insert((order[i], order[j]));
            }
        }
    }
    if cut.is_empty() {
        // Three nodes see each other at one hop; cut one link so the shape still bites.
        let i = rng.gen_range(0..n);
        let j = (i + 1) % n;
        cut.extend([(order[i], order[j]), (order[j], order[i])]);
    }
    cut
}

/// Network fault rates of one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct NetFaults {
    /// Base latency of a link is drawn from `latency_min..=latency_max`.
    pub latency_min: Duration,
    /// See `latency_min`.
    pub latency_max: Duration,
    /// Each message adds a uniform jitter up to this.
    pub jitter_max: Duration,
    /// Probability that a message is dropped.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message gets an extra delay up to `delay_max`.
    pub delay: f64,
    /// Longest extra delay.
    pub delay_max: Duration,
    /// Mean time between partitions; `None` disables them.
    pub partition_every: Option<Duration>,
    /// Longest a partition lasts.
    pub partition_max: Duration,
    /// Shapes this seed may draw.
    pub partition_shapes: Vec<PartitionShape>,
}

impl NetFaults {
    /// Draws network faults; with both flags off the network is reliable (latency only).
    pub fn draw(rng: &mut SmallRng, faults: bool, partitions: bool) -> NetFaults {
        let latency_min = Duration::from_micros(rng.gen_range(100..2_000));
        let mut rate = |max: f64| if faults { rng.gen_range(0.0..max) } else { 0.0 };
        let (drop, duplicate, delay) = (rate(0.1), rate(0.05), rate(0.1));
        let mut shapes: Vec<PartitionShape> = PartitionShape::ALL
            .iter()
            .copied()
            .filter(|_| rng.gen_bool(0.6))
            .collect();
        if shapes.is_empty() {
            shapes.push(*PartitionShape::ALL.choose(rng).expect("ALL is not empty"));
        }
        NetFaults {
            latency_min,
            latency_max: latency_min + Duration::from_micros(rng.gen_range(0..8_000)),
            jitter_max: Duration::from_micros(rng.gen_range(0..2_000)),
            drop,
            duplicate,
            delay,
            delay_max: Duration::from_millis(rng.gen_range(10..500)),
            partition_every: partitions.then(|| Duration::from_millis(rng.gen_range(300..3_000))),
            partition_max: Duration::from_millis(rng.gen_range(200..4_000)),
            partition_shapes: shapes,
        }
    }

    /// A reliable network: no drops, duplicates, extra delays or partitions.
    pub fn reliable(&self) -> NetFaults {
        NetFaults {
            drop: 0.0,
            duplicate: 0.0,
            delay: 0.0,
            partition_every: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for NetFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "latency {:?}..{:?} + jitter {:?}, drop {:.3}, duplicate {:.3}, delay {:.3} up to \
             {:?}, ",
            self.latency_min,
            self.latency_max,
            self.jitter_max,
            self.drop,
            self.duplicate,
            self.delay,
            self.delay_max,
        )?;
        match self.partition_every {
            Some(every) => write!(
                f,
                "partitions every {every:?} for up to {:?} {:?}",
                self.partition_max, self.partition_shapes
            ),
            None => write!(f, "partitions off"),
        }
    }
}

/// The state of the simulated network: link latencies and the current cut.
#[derive(Debug)]
pub struct Network {
    faults: NetFaults,
    latency: BTreeMap<(NodeId, NodeId), Duration>,
    cut: BTreeSet<(NodeId, NodeId)>,
    rng: SmallRng,
    /// Messages handed to `route` so far, and how many copies were scheduled for delivery.
    pub sent: u64,
    /// Copies scheduled for delivery.
    pub scheduled: u64,
}

impl Network {
    /// A network for `nodes` with per-link latencies drawn from `faults`.
    pub fn new(faults: NetFaults, nodes: &[NodeId], mut rng: SmallRng) -> Network {
        let mut latency = BTreeMap::new();
        for &a in nodes {
            for &b in nodes {
                let micros = rng.gen_range(
                    faults.latency_min.as_micros() as u64..=faults.latency_max.as_micros() as u64,
                );
                latency.insert((a, b), Duration::from_micros(micros));
            }
        }
        Network {
            faults,
            latency,
            cut: BTreeSet::new(),
            rng,
            sent: 0,
            scheduled: 0,
        }
    }

    /// Replaces the fault rates (the heal phase switches to a reliable network).
    pub fn set_faults(&mut self, faults: NetFaults) {
        self.faults = faults;
    }

    /// Whether `from` can currently reach `to`.
    pub fn link_up(&self, from: NodeId, to: NodeId) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Installs a partition (replacing any current one).
    pub fn partition(&mut self, cut: BTreeSet<(NodeId, NodeId)>) {
        self.cut = cut;
    }

    /// Heals every cut.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// The current cut, for tracing.
    pub fn cut(&self) -> &BTreeSet<(NodeId, NodeId)> {
        &self.cut
    }

    /// Decides the fate of one message: the delivery delay of each copy (empty = dropped).
    pub fn route(&mut self, from: NodeId, to: NodeId) -> Vec<Duration> {
        self.sent += 1;
        if !self.link_up(from, to) || self.roll(self.faults.drop) {
            return Vec::new();
        }
        let copies = if self.roll(self.faults.duplicate) {
            2
        } else {
            1
        };
        let base = self
            .latency
            .get(&(from, to))
            .copied()
            .unwrap_or(self.faults.latency_min);
        let delays: Vec<Duration> = (0..copies)
            .map(|_| {
                let jitter = self.uniform(self.faults.jitter_max);
                let extra = if self.roll(self.faults.delay) {
                    self.uniform(self.faults.delay_max)
                } else {
                    Duration::ZERO
                };
                base + jitter + extra
            })
            .collect();
        self.scheduled += delays.len() as u64;
        delays
    }

    fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen_bool(p)
    }

    fn uniform(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.rng.gen_range(0..=max.as_micros() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ids(n: u64) -> Vec<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    /// Nodes `node` can reach in both directions, including itself.
    fn sees(cut: &BTreeSet<(NodeId, NodeId)>, nodes: &[NodeId], node: NodeId) -> usize {
        nodes
            .iter()
            .filter(|&&o| o == node || (!cut.contains(&(node, o)) && !cut.contains(&(o, node))))
            .count()
    }

    #[test]
    fn leader_minority_puts_the_leader_in_a_minority() {
        for seed in 0..100 {
            let mut rng = SmallRng::seed_from_u64(seed);
            for n in [3, 5, 7] {
                let nodes = ids(n);
                let leader = NodeId(1 + seed % n);
                let cut = PartitionShape::LeaderMinority.cut(&mut rng, &nodes, Some(leader));
                assert!(sees(&cut, &nodes, leader) <= (n as usize - 1) / 2);
            }
        }
    }

    #[test]
    fn ring_gives_every_node_a_majority_but_not_everyone() {
        for n in [5, 7] {
            let nodes = ids(n);
            let mut rng = SmallRng::seed_from_u64(n);
            let cut = PartitionShape::MajoritiesRing.cut(&mut rng, &nodes, None);
            for &node in &nodes {
                let seen = sees(&cut, &nodes, node);
                assert!(
                    seen > n as usize / 2 && seen < n as usize,
                    "n{node} sees {seen}"
                );
            }
        }
    }

    #[test]
    fn bridge_node_sees_everyone_and_halves_do_not_meet() {
        let nodes = ids(5);
        let mut rng = SmallRng::seed_from_u64(9);
        let cut = PartitionShape::Bridge.cut(&mut rng, &nodes, None);
        let full: Vec<NodeId> = nodes
            .iter()
            .copied()
            .filter(|&n| sees(&cut, &nodes, n) == 5)
            .collect();
        assert_eq!(full.len(), 1, "exactly one bridge node");
        assert_eq!(cut.len(), 2 * 2 * 2);
    }

    #[test]
    fn one_way_cut_is_asymmetric() {
        let nodes = ids(5);
        let mut rng = SmallRng::seed_from_u64(4);
        let cut = PartitionShape::OneWay.cut(&mut rng, &nodes, None);
        assert_eq!(cut.len(), 4);
        assert!(cut.iter().all(|&(a, b)| !cut.contains(&(b, a))));
    }

    #[test]
    fn routing_drops_on_cut_links_and_duplicates() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut faults = NetFaults::draw(&mut rng, true, true);
        faults.duplicate = 1.0;
        faults.drop = 0.0;
        let mut net = Network::new(faults, &ids(3), SmallRng::seed_from_u64(2));
        assert_eq!(net.route(NodeId(1), NodeId(2)).len(), 2);
        net.partition(between(&[NodeId(1)], &[NodeId(2)]));
        assert!(net.route(NodeId(1), NodeId(2)).is_empty());
        assert!(!net.link_up(NodeId(2), NodeId(1)));
        net.heal();
        assert!(net.link_up(NodeId(2), NodeId(1)));
    }
}
