//! Throughput benchmark: a 3-node cluster in one process over an in-memory transport and
//! `MemDisk`, closed loop with a fixed number of outstanding 128-byte proposals.
//!
//! ```text
//! cargo run --release -p raft-core --bin raft-bench -- [--proposals N] [--outstanding W,...]
//! ```
//!
//! Commits are counted when the leader applies them. Messages are handed over as values (no
//! serialization), and the WAL really frames, checksums and writes every record to `MemDisk`.

use raft_core::{
    Clock, Config, Event, Instant, LogIndex, MemDisk, Message, Net, Node, NodeId, Role,
    StateMachine,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant as WallClock;

#[derive(Clone, Default)]
struct Wire(Rc<RefCell<VecDeque<Message>>>);

impl Net for Wire {
    fn send(&mut self, msg: Message) {
        self.0.borrow_mut().push_back(msg);
    }
}

#[derive(Clone, Default)]
struct FixedClock(Rc<RefCell<u64>>);

impl Clock for FixedClock {
    fn now(&self) -> Instant {
        Instant(*self.0.borrow())
    }
}

/// Counts applied commands; the snapshot is the counter.
#[derive(Default)]
struct CountingSm {
    count: u64,
}

impl StateMachine for CountingSm {
    fn apply(&mut self, _index: LogIndex, _data: &[u8]) -> Vec<u8> {
        self.count += 1;
        Vec::new()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.count.to_le_bytes().to_vec()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let bytes: [u8; 8] = data.try_into().map_err(|_| "bad snapshot".to_string())?;
        self.count = u64::from_le_bytes(bytes);
        Ok(())
    }
}

type BenchNode = Node<Wire, MemDisk, FixedClock, CountingSm>;

struct Bench {
    nodes: Vec<BenchNode>,
    wire: Wire,
    clock: FixedClock,
}

impl Bench {
    fn new() -> Bench {
        let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let wire = Wire::default();
        let clock = FixedClock::default();
        let nodes = ids
            .iter()
            .map(|id| {
                let mut config = Config::new(*id, ids.clone());
                config.election_ticks_min = 10;
                config.election_ticks_max = 20;
                config.snapshot_threshold_bytes = 8 * 1024 * 1024;
                Node::open(
                    config,
                    wire.clone(),
                    MemDisk::new(),
                    clock.clone(),
                    CountingSm::default(),
                    id.0,
                )
                .expect("open")
            })
            .collect::<Vec<BenchNode>>();
        let mut nodes = nodes;
        for node in &mut nodes {
            node.set_applied_events(false);
        }
        Bench { nodes, wire, clock }
    }

    fn deliver_all(&mut self) {
        loop {
            let Some(msg) = self.wire.0.borrow_mut().pop_front() else {
                return;
            };
            let to = (msg.to.0 - 1) as usize;
            self.nodes[to].receive(msg).expect("receive");
        }
    }

    /// Ticks until a leader exists, then never ticks again (no elections during the run).
    fn elect(&mut self) -> usize {
        for _ in 0..1000 {
            *self.clock.0.borrow_mut() += 10_000;
            for node in &mut self.nodes {
                node.on_timer().expect("timer");
            }
            self.deliver_all();
            if let Some(i) = self
                .nodes
                .iter()
                .position(|n| n.status().role == Role::Leader)
            {
                self.deliver_all();
                return i;
            }
        }
        panic!("no leader");
    }

    /// Returns (commits per wall-clock second, commits per CPU second if known).
    fn run(&mut self, proposals: u64, outstanding: u64) -> (f64, Option<f64>) {
        let leader = self.elect();
        let payload = vec![7u8; 128];
        let mut proposed = 0u64;
        let mut committed = 0u64;
        let start = WallClock::now();
        let cpu_start = cpu_time_ns();
        let first = outstanding.min(proposals);
        self.nodes[leader]
            .propose_many(vec![payload.clone(); first as usize])
            .expect("propose");
        proposed += first;
        while committed < proposals {
            let Some(msg) = self.wire.0.borrow_mut().pop_front() else {
                panic!("stalled at {committed} commits");
            };
            let to = (msg.to.0 - 1) as usize;
            self.nodes[to].receive(msg).expect("receive");
            let mut done = 0;
            for event in self.nodes[to].take_events() {
                if to == leader && matches!(event, Event::Committed { .. }) {
                    done += 1;
                }
            }
            committed += done;
            let more = done.min(proposals - proposed);
            if more > 0 {
                self.nodes[leader]
                    .propose_many(vec![payload.clone(); more as usize])
                    .expect("propose");
                proposed += more;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = cpu_start
            .zip(cpu_time_ns())
            .map(|(a, b)| (b - a) as f64 / 1e9);
        (
            proposals as f64 / elapsed,
            cpu.map(|c| proposals as f64 / c),
        )
    }
}

/// CPU time this thread has run, from Linux's `/proc/thread-self/schedstat`; on a shared
/// machine it tells how fast the code is when it gets a core.
fn cpu_time_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn parse_args() -> (u64, Vec<u64>) {
    let mut proposals = 1_000_000;
    let mut outstanding = vec![1, 64, 4096];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--proposals" => {
                proposals = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--proposals N")
            }
            "--outstanding" => {
                let list = args.next().expect("--outstanding W,W,...");
                outstanding = list
                    .split(',')
                    .map(|w| w.parse().expect("a number"))
                    .collect();
            }
            _ => {
                eprintln!("usage: raft-bench [--proposals N] [--outstanding W,W,...]");
                std::process::exit(2);
            }
        }
    }
    (proposals, outstanding)
}

fn main() {
    let (proposals, outstanding) = parse_args();
    println!("3 nodes, in-memory transport, MemDisk WAL, {proposals} proposals of 128 bytes");
    for w in outstanding {
        let mut bench = Bench::new();
        let (rate, cpu_rate) = bench.run(proposals, w);
        let cpu = cpu_rate.map_or("n/a".to_string(), |r| format!("{r:.0}"));
        println!(
            "outstanding {w:>5}: {rate:>12.0} commits/s wall, {cpu:>12} commits/s of CPU time"
        );
    }
}
