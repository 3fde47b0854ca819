//! An in-process test network driving N replicas over MemDisk, with fault injection (drop,
//! cut, isolate, duplicate, reorder, crash/restart) and the Raft safety checkers.
#![allow(dead_code)]

pub mod sm;

use raft_core::{
    Clock, Config, CrashMode, Event, Instant, LogIndex, MemDisk, Message, Net, Node, NodeId,
    Persistence, Role, Term,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sm::TestSm;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// Outbox shared between a node and the network.
#[derive(Clone, Default)]
pub struct Outbox(pub Rc<RefCell<Vec<Message>>>);

impl Net for Outbox {
    fn send(&mut self, msg: Message) {
        self.0.borrow_mut().push(msg);
    }
}

/// A clock the test moves by hand. Field 0 is real time, shared by every node; field 1 is
/// this node's rate error in parts per million (negative runs slow); field 2 is the drift
/// bound the clock declares.
#[derive(Clone)]
pub struct TestClock(pub Rc<Cell<u64>>, pub Rc<Cell<i64>>, pub u64);

impl Default for TestClock {
    fn default() -> TestClock {
        TestClock(Rc::default(), Rc::default(), 1_000)
    }
}

impl Clock for TestClock {
    fn now(&self) -> Instant {
        let real = i128::from(self.0.get());
        let skewed = real * (1_000_000 + i128::from(self.1.get())) / 1_000_000;
        Instant(skewed as u64)
    }

    fn drift_bound_ppm(&self) -> u64 {
        self.2
    }
}

pub type TestNode = Node<Outbox, MemDisk, TestClock, TestSm>;

/// Decides whether a message is dropped; may also rewrite it (e.g. strip entries).
pub type Filter = Box<dyn FnMut(&mut Message) -> bool>;

pub struct Cluster {
    pub ids: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, TestNode>,
    /// Disks of crashed nodes.
    pub down: BTreeMap<NodeId, MemDisk>,
    pub configs: BTreeMap<NodeId, Config>,
    outboxes: BTreeMap<NodeId, Outbox>,
    pub clock: TestClock,
    pub queue: Vec<Message>,
    pub rng: SmallRng,
    pub drop_rate: f64,
    pub duplicate_rate: f64,
    pub reorder: bool,
    /// Directed links that drop everything.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub filters: Vec<Filter>,
    /// Every entry any node applied: index -> (term, data), checked for agreement.
    pub applied: BTreeMap<LogIndex, (Term, Vec<u8>)>,
    /// Lowest term any node was in when it applied each index: an upper bound on the term the
    /// entry was committed in, so leaders of later terms must hold it (Leader Completeness).
    pub applied_in_term: BTreeMap<LogIndex, Term>,
    /// Leader seen in each term.
    pub leaders: BTreeMap<Term, NodeId>,
    pub events: BTreeMap<NodeId, Vec<Event>>,
    /// When false, safety violations are recorded in `violations` instead of panicking.
    pub strict: bool,
    pub violations: Vec<String>,
    restarts: u64,
    /// Per-node clock rate errors in ppm (see [`TestClock`]); absent means exact.
    pub clock_rates: BTreeMap<NodeId, Rc<Cell<i64>>>,
    /// Drift bound every node's clock declares.
    pub drift_bound_ppm: u64,
    /// How nodes persist: with `Asynchronous`, a write stays unsynced (and a crash may lose
    /// it) until the test completes the node's fsyncs with [`Cluster::sync`].
    pub persistence: Persistence,
}

pub fn ids(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}

impl Cluster {
    pub fn new(n: u64, seed: u64) -> Cluster {
        Cluster::with_config(n, seed, |_| {})
    }

    pub fn with_config(n: u64, seed: u64, tweak: impl Fn(&mut Config)) -> Cluster {
        Cluster::with_clocks(n, seed, 1_000, &[], tweak)
    }

    /// A cluster whose clocks declare `drift_bound_ppm` and run at the given rate errors
    /// (ppm, by position; missing ones are exact). Rates are fixed from time zero, so every
    /// clock stays monotonic.
    pub fn with_clocks(
        n: u64,
        seed: u64,
        drift_bound_ppm: u64,
        rates: &[i64],
        tweak: impl Fn(&mut Config),
    ) -> Cluster {
        Cluster::with_persistence(
            n,
            seed,
            drift_bound_ppm,
            rates,
            Persistence::Synchronous,
            tweak,
        )
    }

    /// As [`Cluster::with_clocks`], with every node in the given persistence mode.
    pub fn with_persistence(
        n: u64,
        seed: u64,
        drift_bound_ppm: u64,
        rates: &[i64],
        persistence: Persistence,
        tweak: impl Fn(&mut Config),
    ) -> Cluster {
        let ids = ids(n);
        let mut cluster = Cluster {
            ids: ids.clone(),
            nodes: BTreeMap::new(),
            down: BTreeMap::new(),
            configs: BTreeMap::new(),
            outboxes: BTreeMap::new(),
            clock: TestClock::default(),
            queue: Vec::new(),
            rng: SmallRng::seed_from_u64(seed),
            drop_rate: 0.0,
            duplicate_rate: 0.0,
            reorder: false,
            cut: BTreeSet::new(),
            filters: Vec::new(),
            applied: BTreeMap::new(),
            applied_in_term: BTreeMap::new(),
            leaders: BTreeMap::new(),
            events: BTreeMap::new(),
            strict: true,
            violations: Vec::new(),
            restarts: 0,
            clock_rates: BTreeMap::new(),
            drift_bound_ppm,
            persistence,
        };
        for id in &ids {
            let mut config = Config::new(*id, ids.clone());
            tweak(&mut config);
            cluster.configs.insert(*id, config);
            cluster.down.insert(*id, MemDisk::new());
            let rate = rates.get(cluster.clock_rates.len()).copied().unwrap_or(0);
            cluster.clock_rates.insert(*id, Rc::new(Cell::new(rate)));
        }
        for id in ids {
            cluster.start(id).expect("fresh node opens");
        }
        cluster
    }

    /// Starts (or restarts) a crashed node from its disk.
    pub fn start(&mut self, id: NodeId) -> Result<(), raft_core::Error> {
        let disk = self.down.remove(&id).expect("node is down");
        let outbox = Outbox::default();
        let config = self.configs[&id].clone();
        self.restarts += 1;
        let seed = id.0 * 1000 + self.restarts;
        let rate = self.clock_rates.entry(id).or_default().clone();
        let clock = TestClock(self.clock.0.clone(), rate, self.drift_bound_ppm);
        match Node::open_with(
            config,
            outbox.clone(),
            disk.clone(),
            clock,
            TestSm::default(),
            seed,
            self.persistence,
        ) {
            Ok(node) => {
                self.outboxes.insert(id, outbox);
                self.nodes.insert(id, node);
                self.collect(id);
                Ok(())
            }
            Err(e) => {
                self.down.insert(id, disk);
                Err(e)
            }
        }
    }

    /// Starts a new, empty replica that joins the cluster (it has no configuration until the
    /// leader adds it as a learner).
    pub fn add_node(&mut self, id: NodeId) {
        let template = self.configs[&self.ids[0]].clone();
        let config = Config {
            id,
            peers: Vec::new(),
            join_existing: true,
            ..template
        };
        self.configs.insert(id, config);
        self.down.insert(id, MemDisk::new());
        self.clock_rates.insert(id, Rc::new(Cell::new(0)));
        self.ids.push(id);
        self.start(id).expect("fresh node opens");
    }

    /// Crashes a node: its unsynced disk writes are lost per `mode`.
    pub fn crash(&mut self, id: NodeId, mode: CrashMode) {
        let Some(node) = self.nodes.remove(&id) else {
            return;
        };
        self.outboxes.remove(&id);
        // Pending fsyncs (asynchronous persistence) never complete: the crash model decides
        // what of the unsynced writes survives.
        let (_, mut disk, _, _) = node.crash();
        disk.crash(mode);
        self.down.insert(id, disk);
    }

    pub fn node(&self, id: NodeId) -> &TestNode {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut TestNode {
        self.nodes.get_mut(&id).expect("node is up")
    }

    /// Runs `f` on a node, then collects its messages and events.
    pub fn with_node<R>(&mut self, id: NodeId, f: impl FnOnce(&mut TestNode) -> R) -> R {
        let result = f(self.nodes.get_mut(&id).expect("node is up"));
        self.collect(id);
        result
    }

    /// Makes a node campaign (repeatedly, to get past terms others already voted in) until it
    /// leads; returns whether it does.
    pub fn campaign_until_leader(&mut self, id: NodeId) -> bool {
        for _ in 0..5 {
            self.campaign(id);
            self.deliver_all();
            if self.node(id).status().role == Role::Leader {
                return true;
            }
        }
        false
    }

    /// Makes a node start an election now.
    pub fn campaign(&mut self, id: NodeId) {
        self.with_node(id, |n| n.campaign())
            .expect("memdisk never fails");
    }

    /// Moves messages from outboxes to the network queue and records events.
    fn collect(&mut self, id: NodeId) {
        if let Some(outbox) = self.outboxes.get(&id) {
            self.queue.append(&mut outbox.0.borrow_mut());
        }
        if let Some(node) = self.nodes.get_mut(&id) {
            let events = node.take_events();
            let node_term = node.status().term;
            for event in &events {
                if let Event::Applied {
                    index, term, data, ..
                } = event
                {
                    match self.applied.get(index) {
                        Some(existing) if existing != &(*term, data.clone()) => {
                            let v = format!(
                                "state machine safety: node {id} applied a different entry at {index}"
                            );
                            self.violation(v);
                        }
                        Some(_) => {}
                        None => {
                            self.applied.insert(*index, (*term, data.clone()));
                        }
                    }
                    let seen = self.applied_in_term.entry(*index).or_insert(node_term);
                    *seen = (*seen).min(node_term);
                }
            }
            self.events.entry(id).or_default().extend(events);
        }
        self.check_election_safety();
    }

    fn violation(&mut self, what: String) {
        assert!(!self.strict, "{what}");
        if !self.violations.contains(&what) {
            self.violations.push(what);
        }
    }

    pub fn check_election_safety(&mut self) {
        let mut found = Vec::new();
        for (id, node) in &self.nodes {
            let status = node.status();
            if status.role != Role::Leader {
                continue;
            }
            let leader = *self.leaders.entry(status.term).or_insert(*id);
            if leader != *id {
                found.push(format!(
                    "election safety: two leaders in term {}",
                    status.term
                ));
            }
            // Leader completeness: entries committed in earlier terms are in this leader's log.
            for (index, (term, _)) in self.applied.range(status.first_index..) {
                if self.applied_in_term[index] >= status.term {
                    continue;
                }
                if node.entry_term(*index) != Some(*term) {
                    found.push(format!(
                        "leader completeness: leader {id} lacks committed entry {index}"
                    ));
                }
            }
        }
        for v in found {
            self.violation(v);
        }
    }

    /// Log matching: if two logs hold the same term at an index, they agree on every earlier
    /// index both still hold.
    pub fn check_log_matching(&self) {
        let nodes: Vec<_> = self.nodes.iter().collect();
        for (i, (a_id, a)) in nodes.iter().enumerate() {
            for (b_id, b) in &nodes[i + 1..] {
                let (sa, sb) = (a.status(), b.status());
                let low = sa.first_index.max(sb.first_index);
                let high = sa.last_index.min(sb.last_index);
                let mut matched = false;
                let mut index = high;
                while index >= low && index.0 > 0 {
                    let (ta, tb) = (a.entry_term(index), b.entry_term(index));
                    if matched {
                        assert_eq!(ta, tb, "log matching: {a_id} and {b_id} differ at {index}");
                    } else if ta.is_some() && ta == tb {
                        matched = true;
                    }
                    index = LogIndex(index.0 - 1);
                }
            }
        }
    }

    fn link_dropped(&mut self, msg: &mut Message) -> bool {
        if self.cut.contains(&(msg.from, msg.to)) {
            return true;
        }
        if self.filters.iter_mut().any(|f| f(msg)) {
            return true;
        }
        self.drop_rate > 0.0 && self.rng.gen_bool(self.drop_rate)
    }

    /// Delivers one queued message; returns false if the queue is empty.
    pub fn deliver_one(&mut self) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        let position = if self.reorder {
            self.rng.gen_range(0..self.queue.len())
        } else {
            0
        };
        let mut msg = self.queue.remove(position);
        if self.link_dropped(&mut msg) {
            return true;
        }
        if self.duplicate_rate > 0.0 && self.rng.gen_bool(self.duplicate_rate) {
            self.queue.push(msg.clone());
        }
        // Every message goes through the wire encoding, as it would in a real deployment.
        let msg = raft_core::decode(&raft_core::encode(&msg)).expect("round trip");
        let to = msg.to;
        if let Some(node) = self.nodes.get_mut(&to) {
            node.receive(msg).expect("memdisk never fails");
            self.collect(to);
        }
        true
    }

    /// Delivers messages until the network is quiet (bounded).
    pub fn deliver_all(&mut self) {
        for _ in 0..1_000_000 {
            if !self.deliver_one() {
                return;
            }
        }
        panic!("network never became quiet");
    }

    /// Completes every pending fsync of node `id` (asynchronous persistence), releasing the
    /// messages that waited for them.
    pub fn sync(&mut self, id: NodeId) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        while node.syncs_pending() > 0 {
            node.complete_sync().expect("memdisk never fails");
        }
        self.collect(id);
    }

    /// [`Cluster::sync`] on every live node.
    pub fn sync_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.sync(id);
        }
    }

    /// Advances time by one tick on every live node.
    pub fn tick(&mut self) {
        let micros = self.configs[&self.ids[0]].tick_micros;
        self.clock.0.set(self.clock.0.get() + micros);
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.node_mut(id).on_timer().expect("memdisk never fails");
            self.collect(id);
        }
    }

    /// Ticks and delivers for `ticks` ticks.
    pub fn run_ticks(&mut self, ticks: u32) {
        for _ in 0..ticks {
            self.tick();
            self.deliver_all();
        }
    }

    /// Runs until some node is leader and all live nodes agree on it; returns the leader.
    pub fn elect(&mut self) -> NodeId {
        for _ in 0..500 {
            self.run_ticks(1);
            if let Some(leader) = self.stable_leader() {
                return leader;
            }
        }
        panic!("no leader elected");
    }

    pub fn stable_leader(&self) -> Option<NodeId> {
        let leader = self
            .nodes
            .values()
            .find(|n| n.status().role == Role::Leader)?
            .status();
        let agree = self
            .nodes
            .values()
            .filter(|n| n.status().leader == Some(leader.id))
            .count();
        (agree == self.nodes.len()).then_some(leader.id)
    }

    pub fn leader(&self) -> Option<NodeId> {
        let mut leaders: Vec<_> = self
            .nodes
            .values()
            .map(|n| n.status())
            .filter(|s| s.role == Role::Leader)
            .collect();
        leaders.sort_by_key(|s| s.term);
        leaders.last().map(|s| s.id)
    }

    /// Isolates a node from everyone (both directions).
    pub fn isolate(&mut self, id: NodeId) {
        for other in self.ids.clone() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    /// Splits the cluster into the given group and the rest.
    pub fn partition(&mut self, group: &[NodeId]) {
        for a in self.ids.clone() {
            for b in self.ids.clone() {
                if group.contains(&a) != group.contains(&b) {
                    self.cut.insert((a, b));
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
        self.filters.clear();
    }

    /// Proposes on the current leader; returns the proposal's node.
    pub fn propose(&mut self, data: &[u8]) -> Option<NodeId> {
        let leader = self.leader()?;
        let result = self.node_mut(leader).propose(data.to_vec());
        self.collect(leader);
        result.ok().map(|_| leader)
    }

    /// Number of live nodes that applied `data`.
    pub fn applied_count(&self, data: &[u8]) -> usize {
        self.nodes
            .values()
            .filter(|n| n.state_machine().contains(data))
            .count()
    }
}
