//! The kv state machine under real `raft_core::Node`s, in-process and deterministic.
//!
//! Goal: the pure pieces fit the Raft driver: envelopes go through the log, `Applied` results
//! decode as `ApplyOutcome`s, `ProposalWaiters` resolves clients from node events, the session
//! table survives the node's own snapshots, restarts and InstallSnapshot, and clerks that
//! lose replies and retry still get every append applied exactly once on every replica.
//! Method: three nodes over `MemDisk` with a tiny snapshot threshold; a toy transport delivers
//! messages in order; each clerk request is served by the node it names; a seeded generator
//! drops replies and restarts nodes (leaders included) between requests.

use raft_core::{
    Clock, Config, CrashMode, Event, Instant, LogIndex, MemDisk, Message, Net, Node, NodeId, Role,
};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use workloads::{
    ApplyOutcome, Clerk, ClerkStep, ClientId, KvBugs, KvCommand, KvError, KvReply, KvServerConfig,
    KvStateMachine, Outgoing, ProposalWaiters, Resolution,
};

#[derive(Clone, Default)]
struct Outbox(Rc<RefCell<Vec<Message>>>);

impl Net for Outbox {
    fn send(&mut self, msg: Message) {
        self.0.borrow_mut().push(msg);
    }
}

#[derive(Clone, Default)]
struct TestClock(Rc<Cell<u64>>);

impl Clock for TestClock {
    fn now(&self) -> Instant {
        Instant(self.0.get())
    }
}

type KvNode = Node<Outbox, MemDisk, TestClock, KvStateMachine>;

/// A deterministic generator (SplitMix64), so the run is the same every time.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

struct Cluster {
    ids: Vec<NodeId>,
    service: KvServerConfig,
    nodes: BTreeMap<NodeId, KvNode>,
    outboxes: BTreeMap<NodeId, Outbox>,
    waiters: BTreeMap<NodeId, ProposalWaiters<u64>>,
    resolved: Vec<Resolution<u64>>,
    clock: TestClock,
    restarts: u64,
    duplicates_seen: u64,
}

impl Cluster {
    fn new(service: KvServerConfig) -> Cluster {
        let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let mut cluster = Cluster {
            ids: ids.clone(),
            service,
            nodes: BTreeMap::new(),
            outboxes: BTreeMap::new(),
            waiters: BTreeMap::new(),
            resolved: Vec::new(),
            clock: TestClock::default(),
            restarts: 0,
            duplicates_seen: 0,
        };
        for id in ids {
            cluster.open(id, MemDisk::new());
        }
        cluster
    }

    fn open(&mut self, id: NodeId, disk: MemDisk) {
        let config = self
            .service
            .raft_config(Config::new(id, self.ids.clone()))
            .unwrap();
        let outbox = Outbox::default();
        self.restarts += 1;
        let sm = self.service.state_machine();
        let node = Node::open(
            config,
            outbox.clone(),
            disk,
            self.clock.clone(),
            sm,
            self.restarts,
        )
        .expect("node opens from its disk");
        self.nodes.insert(id, node);
        self.outboxes.insert(id, outbox);
        self.waiters.insert(id, ProposalWaiters::new(64));
    }

    fn restart(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).expect("node is up");
        let (_, mut disk, _, _) = node.shutdown();
        disk.crash(CrashMode::DropUnsynced);
        // Clients waiting on this node will never hear from it.
        self.resolved
            .extend(self.waiters.get_mut(&id).expect("node is up").drain());
        self.open(id, disk);
    }

    fn collect(&mut self, id: NodeId) {
        let events = self.nodes.get_mut(&id).expect("node is up").take_events();
        for event in &events {
            if let Event::Applied { result, data, .. } = event {
                if !data.is_empty() {
                    let outcome = ApplyOutcome::<KvReply>::decode(result).expect("result decodes");
                    if matches!(outcome, ApplyOutcome::Duplicate(_)) {
                        self.duplicates_seen += 1;
                    }
                }
            }
        }
        let resolved = self
            .waiters
            .get_mut(&id)
            .expect("node is up")
            .on_events(&events);
        self.resolved.extend(resolved);
    }

    fn deliver_all(&mut self) {
        for _ in 0..100_000 {
            let mut queue = Vec::new();
            for outbox in self.outboxes.values() {
                queue.append(&mut outbox.0.borrow_mut());
            }
            if queue.is_empty() {
                return;
            }
            for msg in queue {
                let to = msg.to;
                if let Some(node) = self.nodes.get_mut(&to) {
                    node.receive(msg).expect("memdisk never fails");
                    self.collect(to);
                }
            }
        }
        panic!("network never became quiet");
    }

    fn tick(&mut self) {
        let micros = Config::new(self.ids[0], self.ids.clone()).tick_micros;
        self.clock.0.set(self.clock.0.get() + micros);
        for id in self.ids.clone() {
            self.nodes
                .get_mut(&id)
                .expect("node is up")
                .on_timer()
                .expect("memdisk never fails");
            self.collect(id);
        }
        self.deliver_all();
    }

    fn take_resolution(&mut self, token: u64) -> Option<Resolution<u64>> {
        let position = self.resolved.iter().position(|r| *r.waiter() == token)?;
        Some(self.resolved.remove(position))
    }

    /// Serves one clerk send at the node it names; `None` means "no answer" (timeout).
    fn serve(&mut self, out: &Outgoing<KvCommand>, token: u64) -> Option<Result<KvReply, KvError>> {
        let to = out.attempt.to;
        let node = self.nodes.get_mut(&to).expect("node is up");
        let status = node.status();
        if status.role != Role::Leader {
            return Some(Err(KvError::WrongLeader {
                hint: status.leader,
            }));
        }
        let id = match node.propose(out.envelope.encode().unwrap()) {
            Ok(id) => id,
            Err(raft_core::Error::NotLeader { hint }) => {
                return Some(Err(KvError::WrongLeader { hint }))
            }
            Err(error) => panic!("propose failed: {error}"),
        };
        self.waiters.get_mut(&to).unwrap().register(id, token);
        self.collect(to);
        for _ in 0..50 {
            self.deliver_all();
            if let Some(resolution) = self.take_resolution(token) {
                return Some(match resolution {
                    Resolution::Applied { result, .. } => ApplyOutcome::decode(&result)
                        .expect("decodes")
                        .into_response(),
                    Resolution::Superseded { .. } | Resolution::Unknown { .. } => {
                        Err(KvError::Timeout)
                    }
                });
            }
            self.tick();
        }
        None
    }
}

fn run(service: KvServerConfig, seed: u64) -> (Cluster, BTreeMap<String, String>) {
    let mut cluster = Cluster::new(service);
    let mut rng = Rng(seed);
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let mut clerks: Vec<Clerk<KvCommand>> = (0..3)
        .map(|c| Clerk::new(ClientId(c), cluster.ids.clone()).unwrap())
        .collect();
    let mut token = 0;
    for op in 0..90u64 {
        let client = rng.below(3) as usize;
        let key = format!("key-{client}");
        let value = format!("<{op}>");
        let command = KvCommand::Append {
            key: key.clone(),
            value: value.clone(),
        };
        let mut step = ClerkStep::Send(clerks[client].start(command).unwrap());
        for _ in 0..200 {
            let out = match step {
                ClerkStep::Send(out) => out,
                ClerkStep::Done { reply, .. } => {
                    assert_eq!(reply, KvReply::Done);
                    break;
                }
                other => panic!("request failed: {other:?}"),
            };
            token += 1;
            step = match cluster.serve(&out, token) {
                // A lost reply: the append may well have been applied; the clerk retries.
                Some(Ok(_)) if rng.below(4) == 0 => clerks[client].on_timeout(out.attempt),
                Some(reply) => clerks[client].on_reply(out.attempt, reply),
                None => clerks[client].on_timeout(out.attempt),
            };
            if matches!(step, ClerkStep::Send(_)) {
                cluster.tick();
            }
        }
        assert_eq!(clerks[client].in_flight(), None, "op {op} never completed");
        expected.entry(key).or_default().push_str(&value);
        if rng.below(12) == 0 {
            let victim = cluster.ids[rng.below(3) as usize];
            cluster.restart(victim);
        }
    }
    for _ in 0..100 {
        cluster.tick();
    }
    (cluster, expected)
}

/// Replicas whose store differs from the exactly-once history.
fn diverged(cluster: &Cluster, expected: &BTreeMap<String, String>) -> Vec<NodeId> {
    let differs = |node: &KvNode| {
        let app = node.state_machine().app();
        let state: BTreeMap<String, String> = app
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        state != *expected
    };
    cluster
        .nodes
        .iter()
        .filter(|(_, node)| differs(node))
        .map(|(id, _)| *id)
        .collect()
}

#[test]
fn appends_apply_exactly_once_on_every_replica_across_retries_snapshots_and_restarts() {
    let service = KvServerConfig {
        snapshot_threshold_bytes: 1024,
        ..Default::default()
    };
    for seed in 0..8 {
        let (cluster, expected) = run(service, seed);
        assert!(
            cluster.duplicates_seen > 0,
            "seed {seed}: no retry was committed twice"
        );
        assert!(cluster.restarts > 3, "seed {seed}: no node restarted");
        let compacted = cluster
            .nodes
            .values()
            .filter(|n| n.status().first_index > LogIndex(1));
        assert!(
            compacted.count() > 0,
            "seed {seed}: no node took a snapshot"
        );
        assert_eq!(
            diverged(&cluster, &expected),
            vec![],
            "seed {seed}: replicas diverged"
        );
    }
}

/// Goal: with the session table left out of snapshots, the same runs apply some retried
/// append twice on some replica. Method: the same seeds; at least one must diverge.
#[test]
fn canary_sessions_not_in_snapshot_is_caught_under_real_nodes() {
    let bugs = KvBugs {
        sessions_not_in_snapshot: true,
        ..KvBugs::default()
    };
    let service = KvServerConfig {
        snapshot_threshold_bytes: 1024,
        bugs,
        ..Default::default()
    };
    let caught = (0..8).filter(|&seed| {
        let (cluster, expected) = run(service, seed);
        !diverged(&cluster, &expected).is_empty()
    });
    assert!(caught.count() > 0, "the canary was never caught");
}
