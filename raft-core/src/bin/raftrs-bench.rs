//! The raft-rs comparison workload, driving the pure [`Raft`] core.
//!
//! ```text
//! cargo run --release -p raft-core --bin raftrs-bench -- [--proposals N] [--runs R]
//!     [--slow-proposals N] [--outstanding K,...] [--fsync-us F,...] [--storage wal|mem|both]
//!     [--mode sync|async|both]
//! ```
//!
//! The workload raft-rs 0.7 was measured in: 3 voters started from the same state, one thread,
//! no ticks; one FIFO queue of messages moved by value; node 1 proposes P commands of 128 bytes
//! (a sequence number and a pattern) keeping at most K uncommitted; a round is (1) top up,
//! (2) nodes 1, 2, 3 each handle one `Ready` if they have one, (3) every queued message is
//! stepped into its recipient until the queue is empty. Every node checks every applied entry
//! (contiguous, the next sequence number, intact bytes) and folds it into a digest; a commit is
//! a command applied by node 1; the run fails unless all three digests agree at the end and
//! node 1 kept its leadership. No snapshots: the whole log stays in memory.
//!
//! A *simulated fsync* of F µs is a busy-wait per `Ready` with entries, on any node.
//! Two ways of paying it:
//!
//! * `sync`: the plain path of the workload. The node waits for its fsync inside its `Ready`
//!   before it hands the receipt to `Raft::on_persisted`, so all waits serialize on the thread.
//! * `async`: asynchronous persistence. A `Ready` is written at once and its fsync *completes*
//!   F µs after it started on that node's disk (one fsync at a time per disk, in order); the
//!   thread goes on with the other nodes' work meanwhile and only spins when nothing else is
//!   left to do. The receipt reaches `Raft::on_persisted` when the fsync completed. The number
//!   of fsyncs is the same (one per `Ready` with entries); they overlap with each other and with
//!   the CPU work, as three real disks would.
//!
//! Rows with K = 1 and a fsync commit once per fsync round trip; they run `--slow-proposals`
//! (default 20,000) proposals instead of a million, which would take minutes per run.
//!
//! Storage: `wal` runs the real [`Wal`] on a [`MemDisk`] (framing, CRC, the WAL bytes kept in
//! memory); `mem` keeps the entries in a vector, as raft-rs's `MemStorage` does.

use raft_core::{
    Config, Entry, EntryKind, HardState, LogIndex, MemDisk, Message, NodeId, PersistReceipt, Raft,
    Ready, Role, Storage, Ticket, Wal,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const COMMAND_BYTES: usize = 128;

fn command(seq: u64) -> Vec<u8> {
    let mut bytes = vec![(seq as u8) ^ 0x5a; COMMAND_BYTES];
    bytes[..8].copy_from_slice(&seq.to_le_bytes());
    bytes
}

/// The storage a node writes its `Ready`s to.
enum Store {
    Wal(Box<Wal<MemDisk>>),
    /// Entries and hard state kept in memory, like raft-rs's `MemStorage`.
    Mem {
        entries: Vec<Entry>,
        hard_state: HardState,
    },
}

impl Storage for Store {
    fn write(&mut self, rd: &Ready) -> Result<Ticket, raft_core::Error> {
        match self {
            Store::Wal(wal) => wal.write(rd),
            Store::Mem {
                entries,
                hard_state,
            } => {
                if let Some(first) = rd.entries().first() {
                    let keep = (first.index.0 - 1) as usize;
                    entries.truncate(keep);
                    entries.extend_from_slice(rd.entries());
                }
                if let Some(hs) = rd.hard_state() {
                    *hard_state = *hs;
                }
                Ok(rd.ticket())
            }
        }
    }

    fn sync(&mut self, ticket: Ticket) -> Result<PersistReceipt, raft_core::Error> {
        match self {
            Store::Wal(wal) => wal.sync(ticket),
            Store::Mem { .. } => Ok(ticket.into_receipt()),
        }
    }
}

/// Checks applied entries and folds them into a digest.
#[derive(Default)]
struct Applier {
    last: LogIndex,
    next_seq: u64,
    digest: u64,
}

impl Applier {
    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            assert_eq!(
                entry.index,
                self.last.next(),
                "committed entries are contiguous"
            );
            self.last = entry.index;
            match &entry.kind {
                EntryKind::Noop => {}
                EntryKind::Normal(data) => {
                    assert_eq!(data.len(), COMMAND_BYTES, "command length");
                    let seq = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
                    assert_eq!(seq, self.next_seq, "commands apply in order");
                    assert!(
                        data[8..].iter().all(|&b| b == (seq as u8) ^ 0x5a),
                        "command {seq} intact"
                    );
                    self.next_seq += 1;
                    self.digest = (self.digest ^ seq).wrapping_mul(0x0000_0100_0000_01b3)
                        ^ u64::from(data[COMMAND_BYTES - 1]);
                }
                EntryKind::Config(_) => panic!("no configuration entries in this workload"),
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Sync,
    Async,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StoreKind {
    Wal,
    Mem,
}

struct Replica {
    raft: Raft,
    store: Store,
    applier: Applier,
    /// Written `Ready`s waiting for their fsync, with the instant it completes (`None`: no
    /// fsync needed, completes as soon as the ones ahead did).
    in_flight: VecDeque<(Option<Instant>, Ticket)>,
}

#[derive(Default, Clone, Copy)]
struct Counters {
    rounds: u64,
    readies: u64,
    fsyncs: u64,
    entries_persisted: u64,
    messages: u64,
    spin: Duration,
}

struct Cluster {
    nodes: Vec<Replica>,
    queue: VecDeque<Message>,
    mode: Mode,
    fsync: Duration,
    counters: Counters,
}

fn spin_until(at: Instant) {
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

impl Cluster {
    fn new(store: StoreKind, mode: Mode, fsync: Duration) -> Cluster {
        let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let nodes = ids
            .iter()
            .map(|&id| {
                let mut cfg = Config::new(id, ids.clone());
                cfg.max_bytes_per_append = 1024 * 1024;
                cfg.max_inflight_appends = 256;
                cfg.pre_vote = true;
                cfg.check_quorum = true;
                cfg.election_ticks_min = 10;
                cfg.election_ticks_max = 20;
                cfg.heartbeat_ticks = 3;
                cfg.snapshot_threshold_bytes = u64::MAX / 2;
                let raft = Raft::new(cfg, HardState::default(), None, Vec::new(), id.0)
                    .expect("valid configuration");
                let store = match store {
                    StoreKind::Wal => {
                        let (wal, _) =
                            Wal::open(MemDisk::new(), 64 * 1024 * 1024, Default::default())
                                .expect("open WAL");
                        Store::Wal(Box::new(wal))
                    }
                    StoreKind::Mem => Store::Mem {
                        entries: Vec::new(),
                        hard_state: HardState::default(),
                    },
                };
                Replica {
                    raft,
                    store,
                    applier: Applier::default(),
                    in_flight: VecDeque::new(),
                }
            })
            .collect();
        Cluster {
            nodes,
            queue: VecDeque::new(),
            mode,
            fsync,
            counters: Counters::default(),
        }
    }

    /// Delivers every fsync that completed by now, on every node, oldest first.
    fn complete_fsyncs(&mut self) {
        if self.nodes.iter().all(|n| n.in_flight.is_empty()) {
            // Always so in sync mode: skip reading the clock.
            return;
        }
        let now = Instant::now();
        for node in &mut self.nodes {
            while node
                .in_flight
                .front()
                .is_some_and(|(due, _)| due.is_none_or(|at| at <= now))
            {
                let (_, ticket) = node.in_flight.pop_front().expect("front exists");
                let receipt = node.store.sync(ticket).expect("sync");
                self.queue.extend(node.raft.on_persisted(receipt));
            }
        }
    }

    /// The earliest fsync still running, if any.
    fn next_fsync(&self) -> Option<Instant> {
        self.nodes
            .iter()
            .filter_map(|n| n.in_flight.front().and_then(|(due, _)| *due))
            .min()
    }

    /// Node `i` handles one `Ready`, if it has one. Returns whether it did.
    fn handle_ready(&mut self, i: usize) -> bool {
        let node = &mut self.nodes[i];
        if !node.raft.has_ready() {
            return false;
        }
        let mut rd = node.raft.ready();
        self.counters.readies += 1;
        let messages = rd.take_messages();
        self.counters.messages += messages.len() as u64;
        self.queue.extend(messages);
        node.applier.apply(rd.take_committed_entries());
        let ticket = node.store.write(&rd).expect("write");
        let has_entries = !rd.entries().is_empty();
        self.counters.entries_persisted += rd.entries().len() as u64;
        let pays_fsync = has_entries && !self.fsync.is_zero();
        self.counters.fsyncs += u64::from(has_entries);
        match self.mode {
            Mode::Sync => {
                if pays_fsync {
                    let started = Instant::now();
                    spin_until(started + self.fsync);
                    self.counters.spin += started.elapsed();
                }
                let receipt = node.store.sync(ticket).expect("sync");
                let released = node.raft.on_persisted(receipt);
                self.counters.messages += released.len() as u64;
                self.queue.extend(released);
            }
            Mode::Async => {
                let due = pays_fsync.then(|| {
                    // One fsync at a time per disk: this one starts when the last one ends.
                    let busy_until = node
                        .in_flight
                        .iter()
                        .filter_map(|(due, _)| *due)
                        .max()
                        .unwrap_or_else(Instant::now);
                    busy_until.max(Instant::now()) + self.fsync
                });
                node.in_flight.push_back((due, ticket));
                if !pays_fsync && node.in_flight.len() == 1 {
                    let (_, ticket) = node.in_flight.pop_front().expect("just pushed");
                    let receipt = node.store.sync(ticket).expect("sync");
                    let released = node.raft.on_persisted(receipt);
                    self.counters.messages += released.len() as u64;
                    self.queue.extend(released);
                }
            }
        }
        true
    }

    /// Steps every queued message into its recipient until the queue is empty.
    fn drain(&mut self) {
        while let Some(msg) = self.queue.pop_front() {
            let to = (msg.to.0 - 1) as usize;
            self.nodes[to].raft.step(msg);
        }
    }

    /// One round without top-up; returns whether anything happened.
    fn round(&mut self) -> bool {
        self.counters.rounds += 1;
        self.complete_fsyncs();
        let mut any = false;
        for i in 0..self.nodes.len() {
            any |= self.handle_ready(i);
        }
        any |= !self.queue.is_empty();
        self.drain();
        any
    }

    /// Runs rounds until nothing is left to do, waiting for fsyncs still running.
    fn settle(&mut self) {
        loop {
            if self.round() {
                continue;
            }
            match self.next_fsync() {
                Some(at) => spin_until(at),
                None if self.nodes.iter().any(|n| !n.in_flight.is_empty()) => {}
                None => return,
            }
        }
    }

    fn elect(&mut self) {
        self.nodes[0].raft.campaign();
        self.settle();
        assert_eq!(self.nodes[0].raft.role(), Role::Leader, "node 1 is elected");
        for (i, node) in self.nodes.iter().enumerate() {
            assert_eq!(
                node.applier.last,
                LogIndex(1),
                "n{} applied the empty entry (commit {}, stable {:?})",
                i + 1,
                node.raft.commit(),
                node.raft.durable_log()
            );
        }
    }

    /// The timed phase: P proposals with at most K outstanding.
    fn run(&mut self, proposals: u64, outstanding: u64) -> Duration {
        let term = self.nodes[0].raft.term();
        let start = Instant::now();
        let mut proposed = 0;
        while self.nodes[0].applier.next_seq < proposals {
            let committed = self.nodes[0].applier.next_seq;
            while proposed < proposals && proposed - committed < outstanding {
                self.nodes[0]
                    .raft
                    .propose(command(proposed))
                    .expect("node 1 leads");
                proposed += 1;
            }
            if !self.round() {
                // Nothing to do but wait for the next fsync to complete.
                if let Some(at) = self.next_fsync() {
                    let before = Instant::now();
                    spin_until(at);
                    self.counters.spin += before.elapsed();
                }
            }
        }
        let elapsed = start.elapsed();
        self.settle();
        let digest = self.nodes[0].applier.digest;
        for (i, node) in self.nodes.iter().enumerate() {
            assert_eq!(
                node.applier.next_seq,
                proposals,
                "n{} applied everything",
                i + 1
            );
            assert_eq!(node.applier.digest, digest, "n{} agrees", i + 1);
        }
        assert_eq!(
            self.nodes[0].raft.role(),
            Role::Leader,
            "node 1 kept leading"
        );
        assert_eq!(self.nodes[0].raft.term(), term, "in the same term");
        elapsed
    }
}

struct Figures {
    rate: f64,
    /// Share of the wall time this thread was on a CPU (near 1 on a quiet machine).
    on_cpu: f64,
    /// Minor page faults of the process during the timed phase, if known: fresh memory costs
    /// a fault per page, memory the allocator kept from an earlier run none.
    page_faults: Option<u64>,
    counters: Counters,
}

/// Nanoseconds this thread has run on a CPU, from `/proc/thread-self/schedstat` (Linux), if
/// available: it tells a loaded machine's figures apart from a slow program's.
fn on_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Minor page faults of this process so far, from `/proc/self/stat` (Linux), if available.
fn minor_faults() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the parenthesized command name, which may itself contain spaces;
    // `minflt` is the 10th field of the line, the 8th after the name.
    let after_name = &text[text.rfind(')')? + 1..];
    after_name.split_whitespace().nth(7)?.parse().ok()
}

fn one_run(store: StoreKind, mode: Mode, fsync: Duration, proposals: u64, k: u64) -> Figures {
    let mut cluster = Cluster::new(store, mode, fsync);
    cluster.elect();
    cluster.counters = Counters::default();
    let cpu_before = on_cpu_nanos();
    let faults_before = minor_faults();
    let elapsed = cluster.run(proposals, k);
    let page_faults = match (faults_before, minor_faults()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let on_cpu = match (cpu_before, on_cpu_nanos()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9 / elapsed.as_secs_f64(),
        _ => f64::NAN,
    };
    Figures {
        rate: proposals as f64 / elapsed.as_secs_f64(),
        on_cpu,
        page_faults,
        counters: cluster.counters,
    }
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

/// raft-rs 0.7 in the same workload (median commits/s, see the crate README).
fn raft_rs_reference(k: u64, fsync_us: u64) -> Option<f64> {
    match (k, fsync_us) {
        (1, 0) => Some(321e3),
        (64, 0) => Some(1.19e6),
        (4096, 0) => Some(1.47e6),
        (1, 50) => Some(3.4e3),
        (64, 50) => Some(158e3),
        (4096, 50) => Some(874e3),
        _ => None,
    }
}

fn parse_list(value: &str) -> Result<Vec<u64>, String> {
    value
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map_err(|e| format!("bad number {v:?}: {e}"))
        })
        .collect()
}

struct Args {
    proposals: u64,
    /// Proposals for the rows bound by one fsync round trip per commit (K = 1 with a fsync).
    slow_proposals: u64,
    runs: usize,
    outstanding: Vec<u64>,
    fsync_us: Vec<u64>,
    stores: Vec<StoreKind>,
    modes: Vec<Mode>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        proposals: 1_000_000,
        slow_proposals: 20_000,
        runs: 5,
        outstanding: vec![1, 64, 4096],
        fsync_us: vec![0, 50],
        stores: vec![StoreKind::Wal],
        modes: vec![Mode::Sync, Mode::Async],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--proposals" => {
                args.proposals = value()?.parse().map_err(|e| format!("--proposals: {e}"))?
            }
            "--slow-proposals" => {
                args.slow_proposals = value()?
                    .parse()
                    .map_err(|e| format!("--slow-proposals: {e}"))?
            }
            "--runs" => args.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--outstanding" => args.outstanding = parse_list(&value()?)?,
            "--fsync-us" => args.fsync_us = parse_list(&value()?)?,
            "--storage" => {
                args.stores = match value()?.as_str() {
                    "wal" => vec![StoreKind::Wal],
                    "mem" => vec![StoreKind::Mem],
                    "both" => vec![StoreKind::Wal, StoreKind::Mem],
                    other => return Err(format!("--storage: unknown {other:?} (wal, mem, both)")),
                }
            }
            "--mode" => {
                args.modes = match value()?.as_str() {
                    "sync" => vec![Mode::Sync],
                    "async" => vec![Mode::Async],
                    "both" => vec![Mode::Sync, Mode::Async],
                    other => return Err(format!("--mode: unknown {other:?} (sync, async, both)")),
                }
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.proposals == 0
        || args.slow_proposals == 0
        || args.runs == 0
        || args.outstanding.contains(&0)
    {
        return Err(
            "--proposals, --slow-proposals, --runs and every K must be at least 1".to_string(),
        );
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("raftrs-bench: {error}");
            std::process::exit(2);
        }
    };
    println!(
        "raft-rs comparison workload: 3 voters, one thread, FIFO queue, {} x {COMMAND_BYTES} B \
         proposals, median of {} runs after a warm-up",
        args.proposals, args.runs
    );
    println!(
        "| storage | mode | K | fsync | P | commits/s (min..max) | raft-rs | ratio | on CPU | \
         readies | fsyncs | entries/fsync | spin s | page faults per run (in run order) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &store in &args.stores {
        for &fsync_us in &args.fsync_us {
            for &mode in &args.modes {
                if fsync_us == 0 && mode == Mode::Async && args.modes.len() > 1 {
                    // Without a fsync latency the two modes are the same path.
                    continue;
                }
                for &k in &args.outstanding {
                    let fsync = Duration::from_micros(fsync_us);
                    // One commit per fsync round trip: a million would take minutes per run.
                    let proposals = if k == 1 && fsync_us > 0 {
                        args.slow_proposals.min(args.proposals)
                    } else {
                        args.proposals
                    };
                    let _ = one_run(store, mode, fsync, (proposals / 10).max(1), k);
                    let mut runs: Vec<Figures> = (0..args.runs)
                        .map(|_| one_run(store, mode, fsync, proposals, k))
                        .collect();
                    let faults: Vec<String> = runs
                        .iter()
                        .map(|r| r.page_faults.map_or("?".to_string(), |f| human(f as f64)))
                        .collect();
                    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
                    let median = &runs[runs.len() / 2];
                    let c = median.counters;
                    let reference = raft_rs_reference(k, fsync_us);
                    println!(
                        "| {store:?} | {mode:?} | {k} | {fsync_us} us | {proposals} | {} ({}..{}) | {} | {} | {:.2} | {} | {} | {:.1} | {:.2} | {} |",
                        human(median.rate),
                        human(runs[0].rate),
                        human(runs[runs.len() - 1].rate),
                        reference.map_or("-".to_string(), human),
                        reference.map_or("-".to_string(), |r| format!("{:.2}", median.rate / r)),
                        median.on_cpu,
                        c.readies,
                        c.fsyncs,
                        c.entries_persisted as f64 / c.fsyncs.max(1) as f64,
                        c.spin.as_secs_f64(),
                        faults.join(" ")
                    );
                }
            }
        }
    }
}
