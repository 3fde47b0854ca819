//! Throughput benchmark: a 3-node cluster in one process over an in-memory transport and
//! `MemDisk`, closed loop with a fixed number of outstanding 128-byte proposals.
//!
//! ```text
//! cargo run --release -p raft-core --bin raft-bench -- [--proposals N] [--outstanding W,...]
//! cargo run --release -p raft-core --bin raft-bench -- --batching [--loss P,...]
//! ```
//!
//! Commits are counted when the leader applies them. Messages are handed over as values (no
//! serialization), and the WAL really frames, checksums and writes every record to `MemDisk`.
//!
//! `--batching` compares fixed batches with `Config::dynamic_append_batch` on a lossless and
//! on lossy transports. The lossy transport drops each AppendEntries request or response with
//! probability P (heartbeats are kept, so leadership stays put); when the wire is empty the
//! benchmark advances the clock one 10 ms tick, so stalls are recovered by the leader's timers.
//! It reports how many entries were sent per committed entry (retransmission overhead) and the
//! simulated time the run took.

use raft_core::{
    Clock, Config, Event, Instant, LogIndex, MemDisk, Message, MessageBody, Net, Node, NodeId,
    Role, StateMachine,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant as WallClock;
#[derive(Clone, Default)]
struct Wire(Rc<RefCell<VecDeque<Message>>>, Rc<RefCell<u64>>);

impl Net for Wire {
    fn send(&mut self, msg: Message) {
        if let MessageBody::AppendEntries { entries, .. } = &msg.body {
            *self.1.borrow_mut() += entries.len() as u64;
        }
        self.0.borrow_mut().push_back(msg);
    }
}

/// How one run went.
struct Outcome {
    /// Commits per wall-clock second.
    rate: f64,
    /// Commits per second of CPU time, if known.
    cpu_rate: Option<f64>,
    /// Entries sent in AppendEntries per committed entry.
    sent_per_commit: f64,
    /// Simulated milliseconds the run took (ticks advanced after the wire went quiet).
    sim_millis: u64,
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
    /// Probability of dropping an AppendEntries request or response.
    loss: f64,
    rng: SmallRng,
}

/// One tick of the benchmark's clock, in microseconds.
const TICK_MICROS: u64 = 10_000;

impl Bench {
    fn new(dynamic_append_batch: bool, loss: f64) -> Bench {
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
                config.dynamic_append_batch = dynamic_append_batch;
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
        Bench {
            nodes,
            wire,
            clock,
            loss,
            rng: SmallRng::seed_from_u64(7),
        }
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
            *self.clock.0.borrow_mut() += TICK_MICROS;
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

    /// Takes the next message to deliver, dropping data-path messages on a lossy wire and
    /// advancing the clock when the wire is quiet.
    fn next_message(&mut self, leader: usize, ticks: &mut u64) -> Message {
        loop {
            let next = self.wire.0.borrow_mut().pop_front();
            let Some(msg) = next else {
                assert!(*ticks < 1_000_000, "no progress after a million ticks");
                *ticks += 1;
                *self.clock.0.borrow_mut() += TICK_MICROS;
                for node in &mut self.nodes {
                    node.on_timer().expect("timer");
                }
                assert_eq!(
                    self.nodes[leader].status().role,
                    Role::Leader,
                    "leader lost"
                );
                continue;
            };
            let data_path = matches!(
                msg.body,
                MessageBody::AppendEntries { .. } | MessageBody::AppendEntriesResponse(_)
            );
            if data_path && self.loss > 0.0 && self.rng.gen_bool(self.loss) {
                continue;
            }
            return msg;
        }
    }

    fn run(&mut self, proposals: u64, outstanding: u64) -> Outcome {
        let leader = self.elect();
        let payload = vec![7u8; 128];
        let mut proposed = 0u64;
        let mut committed = 0u64;
        let mut ticks = 0u64;
        *self.wire.1.borrow_mut() = 0;
        let start = WallClock::now();
        let cpu_start = cpu_time_ns();
        let first = outstanding.min(proposals);
        self.nodes[leader]
            .propose_many(vec![payload.clone(); first as usize])
            .expect("propose");
        proposed += first;
        while committed < proposals {
            let msg = self.next_message(leader, &mut ticks);
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
        Outcome {
            rate: proposals as f64 / elapsed,
            cpu_rate: cpu.map(|c| proposals as f64 / c),
            sent_per_commit: *self.wire.1.borrow() as f64 / proposals as f64,
            sim_millis: ticks * TICK_MICROS / 1000,
        }
    }
}

/// CPU time this thread has run, from Linux's `/proc/thread-self/schedstat`; on a shared
/// machine it tells how fast the code is when it gets a core.
fn cpu_time_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Command-line options.
struct Args {
    proposals: u64,
    outstanding: Vec<u64>,
    /// Compare fixed and dynamic batch sizes.
    batching: bool,
    /// Loss rates for `--batching`.
    loss: Vec<f64>,
}

fn parse_list<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Vec<T> {
    let Some(list) = value else { usage(flag) };
    list.split(',')
        .map(|w| w.parse().unwrap_or_else(|_| usage(flag)))
        .collect()
}

fn usage(flag: &str) -> ! {
    eprintln!("bad or missing value for {flag}");
    eprintln!(
        "usage: raft-bench [--proposals N] [--outstanding W,W,...] [--batching] [--loss P,P,...]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = Args {
        proposals: 1_000_000,
        outstanding: vec![1, 64, 4096],
        batching: false,
        loss: vec![0.0, 0.01, 0.05],
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--proposals" => {
                args.proposals = argv
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage("--proposals"))
            }
            "--outstanding" => args.outstanding = parse_list("--outstanding", argv.next()),
            "--loss" => args.loss = parse_list("--loss", argv.next()),
            "--batching" => args.batching = true,
            other => usage(other),
        }
    }
    if args.loss.iter().any(|p| !(0.0..1.0).contains(p)) {
        usage("--loss");
    }
    args
}

fn print_outcome(label: &str, outcome: &Outcome) {
    let cpu = outcome
        .cpu_rate
        .map_or("n/a".to_string(), |r| format!("{r:.0}"));
    println!(
        "{label}: {:>10.0} commits/s wall, {cpu:>10} commits/s CPU, {:>6.2} entries sent \
         per commit, {:>7} ms simulated",
        outcome.rate, outcome.sent_per_commit, outcome.sim_millis
    );
}

fn main() {
    let args = parse_args();
    let proposals = args.proposals;
    println!("3 nodes, in-memory transport, MemDisk WAL, {proposals} proposals of 128 bytes");
    if !args.batching {
        for w in args.outstanding {
            let outcome = Bench::new(false, 0.0).run(proposals, w);
            print_outcome(&format!("outstanding {w:>5}"), &outcome);
        }
        return;
    }
    for loss in &args.loss {
        for w in &args.outstanding {
            for dynamic in [false, true] {
                let outcome = Bench::new(dynamic, *loss).run(proposals, *w);
                let mode = if dynamic { "dynamic" } else { "fixed  " };
                let label = format!("loss {:>4.1}% outstanding {w:>5} {mode}", loss * 100.0);
                print_outcome(&label, &outcome);
            }
        }
    }
}
