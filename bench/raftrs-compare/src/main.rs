//! raft-rs 0.7 in the raft-rs comparison workload, side by side with raft-core's `raftrs-bench`.
//!
//! ```text
//! raftrs-compare [--proposals N] [--slow-proposals N] [--runs R] [--outstanding K,...]
//!     [--fsync-us F,...] [--raft-core PATH --pairs N]
//! ```
//!
//! Alone, it runs raft-rs (`RawNode` on `MemStorage`, the plain synchronous `Ready` path) in the
//! workload `raftrs-bench` drives raft-core in, and prints one line per row:
//! `RESULT raft-rs K F P median min max on_cpu readies fsyncs`.
//!
//! With `--raft-core PATH` (the `raftrs-bench` binary) it alternates processes, raft-rs then
//! raft-core, `--pairs` times per row, each process with its own warm-up and `--runs` runs, and
//! prints the ratio per pair and a table of their medians. raft-core runs both storages: `mem`
//! (entries in a vector, the same work as `MemStorage`) and `wal` (its real WAL on an in-memory
//! disk: framing and CRC on top); and with a fsync both the plain path and asynchronous
//! persistence.

use raft::prelude::*;
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};
use std::collections::VecDeque;
use std::process::Command;
use std::time::{Duration, Instant};

const COMMAND_BYTES: usize = 128;

fn command(seq: u64) -> Vec<u8> {
    let mut bytes = vec![(seq as u8) ^ 0x5a; COMMAND_BYTES];
    bytes[..8].copy_from_slice(&seq.to_le_bytes());
    bytes
}

#[derive(Default)]
struct Applier {
    last: u64,
    next_seq: u64,
    digest: u64,
}

impl Applier {
    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            assert_eq!(
                entry.index,
                self.last + 1,
                "committed entries are contiguous"
            );
            self.last = entry.index;
            assert_eq!(
                entry.get_entry_type(),
                EntryType::EntryNormal,
                "normal entries only"
            );
            let data = entry.get_data();
            if data.is_empty() {
                continue;
            }
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
    }
}

struct Replica {
    node: RawNode<MemStorage>,
    applier: Applier,
}

#[derive(Default, Clone, Copy)]
struct Counters {
    readies: u64,
    fsyncs: u64,
}

struct Cluster {
    nodes: Vec<Replica>,
    queue: VecDeque<Message>,
    fsync: Duration,
    counters: Counters,
}

fn spin_until(at: Instant) {
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

impl Cluster {
    fn new(fsync: Duration) -> Cluster {
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let nodes = (1..=3u64)
            .map(|id| {
                let cfg = Config {
                    id,
                    election_tick: 10,
                    heartbeat_tick: 3,
                    max_size_per_msg: 1024 * 1024,
                    max_inflight_msgs: 256,
                    batch_append: true,
                    check_quorum: true,
                    pre_vote: true,
                    ..Default::default()
                };
                let storage =
                    MemStorage::new_with_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
                let node = RawNode::new(&cfg, storage, &logger).expect("raw node");
                Replica {
                    node,
                    applier: Applier::default(),
                }
            })
            .collect();
        Cluster {
            nodes,
            queue: VecDeque::new(),
            fsync,
            counters: Counters::default(),
        }
    }

    fn handle_ready(&mut self, i: usize) -> bool {
        let r = &mut self.nodes[i];
        if !r.node.has_ready() {
            return false;
        }
        let mut rd = r.node.ready();
        self.counters.readies += 1;
        self.queue.extend(rd.take_messages());
        assert!(rd.snapshot().is_empty(), "no snapshots in this workload");
        r.applier.apply(rd.take_committed_entries());
        let has_entries = !rd.entries().is_empty();
        if has_entries {
            r.node.store().wl().append(rd.entries()).expect("append");
        }
        if let Some(hs) = rd.hs() {
            r.node.store().wl().set_hardstate(hs.clone());
        }
        if has_entries {
            self.counters.fsyncs += 1;
            if !self.fsync.is_zero() {
                spin_until(Instant::now() + self.fsync);
            }
        }
        self.queue.extend(rd.take_persisted_messages());
        let mut light = r.node.advance(rd);
        if let Some(commit) = light.commit_index() {
            r.node.store().wl().mut_hard_state().set_commit(commit);
        }
        self.queue.extend(light.take_messages());
        r.applier.apply(light.take_committed_entries());
        r.node.advance_apply();
        true
    }

    fn drain(&mut self) {
        while let Some(msg) = self.queue.pop_front() {
            let to = (msg.to - 1) as usize;
            self.nodes[to].node.step(msg).expect("step");
        }
    }

    fn round(&mut self) -> bool {
        let mut any = false;
        for i in 0..self.nodes.len() {
            any |= self.handle_ready(i);
        }
        any |= !self.queue.is_empty();
        self.drain();
        any
    }

    fn settle(&mut self) {
        while self.round() {}
    }

    fn elect(&mut self) {
        self.nodes[0].node.campaign().expect("campaign");
        self.settle();
        assert_eq!(
            self.nodes[0].node.raft.state,
            StateRole::Leader,
            "node 1 is elected"
        );
        for (i, r) in self.nodes.iter().enumerate() {
            assert_eq!(r.applier.last, 1, "n{} applied the empty entry", i + 1);
        }
    }

    fn run(&mut self, proposals: u64, outstanding: u64) -> Duration {
        let term = self.nodes[0].node.raft.term;
        let start = Instant::now();
        let mut proposed = 0;
        while self.nodes[0].applier.next_seq < proposals {
            let committed = self.nodes[0].applier.next_seq;
            while proposed < proposals && proposed - committed < outstanding {
                self.nodes[0]
                    .node
                    .propose(vec![], command(proposed))
                    .expect("node 1 leads");
                proposed += 1;
            }
            self.round();
        }
        let elapsed = start.elapsed();
        self.settle();
        let digest = self.nodes[0].applier.digest;
        for (i, r) in self.nodes.iter().enumerate() {
            assert_eq!(
                r.applier.next_seq,
                proposals,
                "n{} applied everything",
                i + 1
            );
            assert_eq!(r.applier.digest, digest, "n{} agrees", i + 1);
        }
        assert_eq!(
            self.nodes[0].node.raft.state,
            StateRole::Leader,
            "node 1 kept leading"
        );
        assert_eq!(self.nodes[0].node.raft.term, term, "in the same term");
        elapsed
    }
}

fn on_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

struct Figures {
    rate: f64,
    on_cpu: f64,
    counters: Counters,
}

fn one_run(fsync: Duration, proposals: u64, k: u64) -> Figures {
    let mut cluster = Cluster::new(fsync);
    cluster.elect();
    cluster.counters = Counters::default();
    let cpu_before = on_cpu_nanos();
    let elapsed = cluster.run(proposals, k);
    let on_cpu = match (cpu_before, on_cpu_nanos()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9 / elapsed.as_secs_f64(),
        _ => f64::NAN,
    };
    Figures {
        rate: proposals as f64 / elapsed.as_secs_f64(),
        on_cpu,
        counters: cluster.counters,
    }
}

fn parse_list(value: &str) -> Result<Vec<u64>, String> {
    value
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|e| format!("bad number {v:?}: {e}"))
        })
        .collect()
}

struct Args {
    proposals: u64,
    slow_proposals: u64,
    runs: usize,
    outstanding: Vec<u64>,
    fsync_us: Vec<u64>,
    /// With `--raft-core PATH`: interleaved pairs of processes, this many per row.
    pairs: usize,
    raft_core: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        proposals: 1_000_000,
        slow_proposals: 20_000,
        runs: 5,
        outstanding: vec![1, 64, 4096],
        fsync_us: vec![0, 50],
        pairs: 5,
        raft_core: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--proposals" => args.proposals = number(&value)?,
            "--slow-proposals" => args.slow_proposals = number(&value)?,
            "--runs" => args.runs = number(&value)? as usize,
            "--outstanding" => args.outstanding = parse_list(&value)?,
            "--fsync-us" => args.fsync_us = parse_list(&value)?,
            "--pairs" => args.pairs = number(&value)? as usize,
            "--raft-core" => args.raft_core = Some(value),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.runs == 0 || args.pairs == 0 || args.proposals == 0 || args.outstanding.contains(&0) {
        return Err("--runs, --pairs, --proposals and every K must be at least 1".into());
    }
    Ok(args)
}

/// raft-rs alone, in this process: one `RESULT` line per row.
fn run_raft_rs(args: &Args) {
    for &f in &args.fsync_us {
        for &k in &args.outstanding {
            let fsync = Duration::from_micros(f);
            let p = if k == 1 && f > 0 {
                args.slow_proposals.min(args.proposals)
            } else {
                args.proposals
            };
            let _ = one_run(fsync, (p / 10).max(1), k);
            let mut all: Vec<Figures> = (0..args.runs).map(|_| one_run(fsync, p, k)).collect();
            all.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            let m = &all[all.len() / 2];
            println!(
                "RESULT raft-rs {k} {f} {p} {:.0} {:.0} {:.0} {:.2} {} {}",
                m.rate,
                all[0].rate,
                all[all.len() - 1].rate,
                m.on_cpu,
                m.counters.readies,
                m.counters.fsyncs
            );
        }
    }
}

/// A row of the comparison: K, fsync µs, raft-core's storage and persistence mode.
type RowKey = (u64, u64, String, String);

fn output_of(program: &str, args: &[String]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `300.7k`, `1.78M` or `950` as printed by raftrs-bench.
fn parse_human(s: &str) -> f64 {
    let (number, scale) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1e3),
        Some('M') => (&s[..s.len() - 1], 1e6),
        _ => (s, 1.0),
    };
    number
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("bad rate {s:?}"))
        * scale
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Interleaved pairs: for every row, `pairs` times, a raft-rs process (this binary) and then a
/// raft-core process (raftrs-bench), each with its own warm-up and `runs` runs; the ratio is
/// taken per pair, so load that comes and goes weighs on both sides of a pair alike.
fn run_pairs(args: &Args, raft_core: &str) {
    let me = std::env::current_exe().expect("own path");
    let me = me.to_str().expect("utf-8 path");
    let common = |k: u64, f: u64| {
        vec![
            "--runs".to_string(),
            args.runs.to_string(),
            "--proposals".to_string(),
            args.proposals.to_string(),
            "--slow-proposals".to_string(),
            args.slow_proposals.to_string(),
            "--outstanding".to_string(),
            k.to_string(),
            "--fsync-us".to_string(),
            f.to_string(),
        ]
    };
    let mut table: Vec<(RowKey, Vec<(f64, f64)>)> = Vec::new();
    for &f in &args.fsync_us {
        for &k in &args.outstanding {
            for pair in 1..=args.pairs {
                let rr = output_of(me, &common(k, f));
                let rr: Vec<&str> = rr
                    .lines()
                    .find(|l| l.starts_with("RESULT"))
                    .expect("a RESULT line")
                    .split_whitespace()
                    .collect();
                let rr_rate: f64 = rr[5].parse().expect("rate");
                let modes: &[&str] = if f == 0 {
                    &["sync"]
                } else {
                    &["sync", "async"]
                };
                for mode in modes {
                    let mut rc_args = common(k, f);
                    rc_args.extend(["--mode", mode, "--storage", "both"].map(String::from));
                    let out = output_of(raft_core, &rc_args);
                    for line in out
                        .lines()
                        .filter(|l| l.starts_with("| Wal") || l.starts_with("| Mem"))
                    {
                        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
                        let storage = cols[1].to_lowercase();
                        let rc_rate = parse_human(cols[6].split_whitespace().next().expect("rate"));
                        println!(
                            "pair {pair} K={k} fsync={f}us {storage} {mode}: raft-rs {rr_rate:.0} (on CPU {}) raft-core {rc_rate:.0} (on CPU {}) ratio {:.2}",
                            rr[8], cols[9], rc_rate / rr_rate
                        );
                        let key = (k, f, storage, mode.to_string());
                        match table.iter_mut().find(|(k2, _)| *k2 == key) {
                            Some((_, v)) => v.push((rr_rate, rc_rate)),
                            None => table.push((key, vec![(rr_rate, rc_rate)])),
                        }
                    }
                }
            }
        }
    }
    println!();
    println!("| raft-core storage | mode | K | fsync | raft-rs (median) | raft-core (median) | ratio per pair: median (min..max) |");
    println!("|---|---|---|---|---|---|---|");
    for ((k, f, storage, mode), v) in &table {
        let mut ratios: Vec<f64> = v.iter().map(|(a, b)| b / a).collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "| {storage} | {mode} | {k} | {f} us | {} | {} | {:.2} ({:.2}..{:.2}) |",
            human(median(v.iter().map(|p| p.0).collect())),
            human(median(v.iter().map(|p| p.1).collect())),
            median(ratios.clone()),
            ratios[0],
            ratios[ratios.len() - 1]
        );
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

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("raftrs-compare: {e}");
            std::process::exit(2);
        }
    };
    match &args.raft_core {
        Some(path) => run_pairs(&args, path),
        None => run_raft_rs(&args),
    }
}
