//! `sim bench`: the cost of a seed per core, against a bare madsim baseline in the same run.
//!
//! The baseline is the reference workload of the madsim research notes: 5 madsim nodes, each
//! with an `Endpoint`, every node pinging every other node every 50 ms and each ping answered,
//! for 10 simulated seconds, one fresh runtime (and thread) per seed. Every row runs one seed
//! at a time on one thread, so its figures are figures *per core*; they are taken on CPU time
//! (`getrusage`), not wall time, because the machines this runs on are shared: a process that
//! waits for a core does not look slower. The ratios against the baseline are what compare
//! across machines and loads, and to keep them fair under a load that changes during the run
//! the rows are interleaved: each of the `rounds` rounds runs a slice of every row's seeds.
//!
//! Rows: the baseline; the standard seed (5 nodes, every fault class on, 20 simulated s of
//! faults, then heal and liveness) of each workload; and, for raft and kv, how the cost grows
//! with the cluster size (3, 5 and 7 nodes) and with the fault phase (10, 20 and 40 simulated
//! s). The cluster size of a seed is derived from the seed, so the size rows run swarm seeds of
//! that size that have every fault class on like the standard seed, with nemeses off (spare
//! nodes would change the size) and the fault phase set to 20 s.

use crate::config::SwarmConfig;
use crate::runner::{run_seed_isolated, RunOptions};
use crate::sweep::Version;
use crate::workload::Workload;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

const BASELINE_SIM: Duration = Duration::from_secs(10);
const BASELINE_NODES: u8 = 5;
const PING_EVERY: Duration = Duration::from_millis(50);

fn addr(i: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i + 1)), 1)
}

async fn baseline_node(me: u8) {
    let ep = std::sync::Arc::new(madsim::net::Endpoint::bind(addr(me)).await.expect("bind"));
    madsim::time::sleep(Duration::from_millis(50)).await;
    for peer in (0..BASELINE_NODES).filter(|&p| p != me) {
        let ep = ep.clone();
        madsim::task::spawn(async move {
            let mut next = madsim::time::Instant::now();
            loop {
                next += PING_EVERY;
                madsim::time::sleep_until(next).await;
                let _ = ep.send_to(addr(peer), 1, &[0u8; 64]).await;
            }
        });
    }
    let mut buf = [0u8; 64];
    loop {
        let Ok((_, from)) = ep.recv_from(1, &mut buf).await else {
            return;
        };
        if buf[0] == 0 {
            let mut pong = [0u8; 64];
            pong[0] = 1;
            let _ = ep.send_to(from, 1, &pong).await;
        }
    }
}

/// Runs one baseline seed on the current thread; returns the messages sent.
fn baseline_seed(seed: u64) -> u64 {
    let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.block_on(async {
        let handle = madsim::runtime::Handle::current();
        for i in 0..BASELINE_NODES {
            handle
                .create_node()
                .name(format!("node-{i}"))
                .ip(addr(i).ip())
                .init(move || baseline_node(i))
                .build();
        }
        madsim::time::sleep(BASELINE_SIM).await;
        madsim::net::NetSim::current().stat().msg_count
    })
}

/// CPU seconds this process has used (user + system, all threads). Falls back to `None`
/// where `getrusage` is not available.
fn cpu_secs() -> Option<f64> {
    #[cfg(unix)]
    {
        // SAFETY: `getrusage` only writes the `rusage` it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return None;
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        Some(secs(usage.ru_utime) + secs(usage.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), if the system has them.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// What one row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// Bare madsim.
    Baseline,
    /// The standard seed of a workload, with this fault phase.
    Standard {
        /// The workload.
        workload: Workload,
        /// Fault phase, simulated seconds.
        fault_secs: u64,
    },
    /// Swarm seeds of this cluster size with every fault class on, 20 s of faults.
    Nodes {
        /// The workload.
        workload: Workload,
        /// Cluster size.
        nodes: usize,
    },
}

impl RowKind {
    /// A short label.
    pub fn label(&self) -> String {
        match self {
            RowKind::Baseline => "bare madsim".to_string(),
            RowKind::Standard {
                workload,
                fault_secs: 20,
            } => format!("{} standard", workload.name()),
            RowKind::Standard {
                workload,
                fault_secs,
            } => format!("{} standard, {fault_secs} s faults", workload.name()),
            RowKind::Nodes { workload, nodes } => {
                format!("{} {nodes} nodes, 20 s faults", workload.name())
            }
        }
    }

    fn cluster_size(&self) -> usize {
        match self {
            RowKind::Baseline | RowKind::Standard { .. } => 5,
            RowKind::Nodes { nodes, .. } => *nodes,
        }
    }

    fn fault_secs(&self) -> Option<u64> {
        match self {
            RowKind::Baseline => None,
            RowKind::Standard { fault_secs, .. } => Some(*fault_secs),
            RowKind::Nodes { .. } => Some(20),
        }
    }
}

/// Whether a swarm seed's configuration has every fault class on, like the standard seed, and
/// none of what the standard seed leaves out (nemeses are overridden off; lease reads stay
/// out).
fn standard_like(config: &SwarmConfig) -> bool {
    let net = &config.net;
    (net.drop > 0.0 || net.duplicate > 0.0 || net.delay > 0.0)
        && net.partition_every.is_some()
        && config.node_faults.crash_every.is_some()
        && config.node_faults.pause_every.is_some()
        && !config.disk.faulty_nodes.is_empty()
        && config
            .clocks
            .iter()
            .any(|c| c.skew_micros != 0 || c.drift_ppm != 0)
        && config.raft.lease_drift_bound_ppm.is_none()
}

/// The first `count` seeds a row runs.
fn row_seeds(kind: RowKind, count: u64) -> Vec<u64> {
    match kind {
        RowKind::Baseline | RowKind::Standard { .. } => (1..=count).collect(),
        RowKind::Nodes { nodes, .. } => (1..)
            .filter(|&seed| {
                let config = SwarmConfig::from_seed(seed);
                config.nodes == nodes && standard_like(&config)
            })
            .take(count as usize)
            .collect(),
    }
}

fn run_options(kind: RowKind, seed: u64) -> Option<RunOptions> {
    let (workload, standard, fault_secs) = match kind {
        RowKind::Baseline => return None,
        RowKind::Standard {
            workload,
            fault_secs,
        } => (workload, true, fault_secs),
        RowKind::Nodes { workload, .. } => (workload, false, 20),
    };
    let mut options = RunOptions {
        workload,
        standard,
        ..RunOptions::new(seed)
    };
    if fault_secs != 20 || !standard {
        options.overrides.fault_phase_ms = Some(fault_secs * 1000);
    }
    if !standard {
        options.overrides.no_nemeses = true;
    }
    Some(options)
}

/// One row's figures. "Per core" figures divide by CPU seconds, the others by wall seconds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// What ran.
    pub label: String,
    /// The workload (`None` for bare madsim).
    pub workload: Option<&'static str>,
    /// Cluster size.
    pub nodes: usize,
    /// Fault phase in simulated seconds (`None` for bare madsim, which runs 10 s).
    pub fault_secs: Option<u64>,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that failed (a benchmark seed should pass; a failure is reported, not hidden).
    pub failed: Vec<u64>,
    /// Wall-clock seconds.
    pub wall_secs: f64,
    /// CPU seconds (wall seconds where CPU time is not available).
    pub cpu_secs: f64,
    /// Simulated seconds, summed.
    pub sim_secs: f64,
    /// Messages sent, summed.
    pub messages: u64,
    /// Seeds per CPU second.
    pub seeds_per_core_sec: f64,
    /// Simulated seconds per CPU second.
    pub sim_per_core_sec: f64,
    /// Messages per CPU second.
    pub messages_per_core_sec: f64,
    /// CPU milliseconds per seed.
    pub cpu_ms_per_seed: f64,
    /// CPU per seed over the baseline's CPU per seed.
    pub cost_vs_baseline: f64,
    /// CPU per simulated second over the baseline's.
    pub cost_per_sim_sec_vs_baseline: f64,
}

/// The whole benchmark.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchReport {
    /// The binary.
    pub version: Version,
    /// Load averages (1, 5, 15 min) before the run.
    pub load_before: Option<[f64; 3]>,
    /// Load averages after the run.
    pub load_after: Option<[f64; 3]>,
    /// Whether figures are on CPU time (`false`: wall time).
    pub cpu_time: bool,
    /// Rounds the rows were interleaved in.
    pub rounds: u64,
    /// The rows, baseline first.
    pub rows: Vec<Row>,
}

impl BenchReport {
    /// Every row's failing seeds, labelled.
    pub fn failures(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| !r.failed.is_empty())
            .map(|r| format!("{}: seeds {:?}", r.label, r.failed))
            .collect()
    }

    /// The row of `kind`'s label.
    pub fn row(&self, label: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.label == label)
    }

    /// The table.
    pub fn to_table(&self) -> String {
        let mut out = String::from(
            "| row | seeds | CPU ms/seed | seeds/s per core | sim s per s per core | messages/s per \
             core | cost vs bare madsim (per seed) | (per simulated s) |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} | {:.2} |\n",
                r.label,
                r.seeds,
                r.cpu_ms_per_seed,
                r.seeds_per_core_sec,
                r.sim_per_core_sec,
                r.messages_per_core_sec,
                r.cost_vs_baseline,
                r.cost_per_sim_sec_vs_baseline
            ));
        }
        out
    }
}

/// Accumulated measurements of one row.
#[derive(Default)]
struct Tally {
    seeds: u64,
    failed: Vec<u64>,
    wall: f64,
    cpu: f64,
    sim: Duration,
    messages: u64,
}

/// The rows `sim bench` runs, baseline first.
pub fn default_rows() -> Vec<RowKind> {
    let mut rows = vec![RowKind::Baseline];
    for workload in [Workload::Raft, Workload::Kv, Workload::ShardKv] {
        rows.push(RowKind::Standard {
            workload,
            fault_secs: 20,
        });
    }
    for workload in [Workload::Raft, Workload::Kv] {
        for nodes in [3, 5, 7] {
            rows.push(RowKind::Nodes { workload, nodes });
        }
        for fault_secs in [10, 40] {
            rows.push(RowKind::Standard {
                workload,
                fault_secs,
            });
        }
    }
    rows
}

/// Runs `rows` (the first must be [`RowKind::Baseline`]): `seeds` seeds per row,
/// `baseline_seeds` for the baseline, interleaved over `rounds` rounds.
pub fn run(rows: &[RowKind], seeds: u64, baseline_seeds: u64, rounds: u64) -> BenchReport {
    assert_eq!(rows.first(), Some(&RowKind::Baseline), "baseline first");
    assert!(
        seeds >= 1 && baseline_seeds >= 1,
        "at least one seed per row"
    );
    let load_before = load_average();
    let cpu_time = cpu_secs().is_some();
    let rounds = rounds.clamp(1, seeds.min(baseline_seeds));
    let lists: Vec<Vec<u64>> = rows
        .iter()
        .map(|&kind| {
            let count = if kind == RowKind::Baseline {
                baseline_seeds
            } else {
                seeds
            };
            row_seeds(kind, count)
        })
        .collect();
    let mut tallies: Vec<Tally> = rows.iter().map(|_| Tally::default()).collect();
    for round in 0..rounds {
        for ((kind, list), tally) in rows.iter().zip(&lists).zip(&mut tallies) {
            let n = list.len() as u64;
            let slice = &list[(n * round / rounds) as usize..(n * (round + 1) / rounds) as usize];
            let (wall, cpu) = (Instant::now(), cpu_secs());
            for &seed in slice {
                match run_options(*kind, seed) {
                    None => {
                        let messages = std::thread::spawn(move || baseline_seed(seed))
                            .join()
                            .expect("baseline seed");
                        tally.sim += BASELINE_SIM;
                        tally.messages += messages;
                    }
                    Some(options) => {
                        let report = run_seed_isolated(&options);
                        tally.sim += report.sim_time;
                        tally.messages += report.stats.sent;
                        if !report.passed() {
                            tally.failed.push(seed);
                        }
                    }
                }
                tally.seeds += 1;
            }
            let wall = wall.elapsed().as_secs_f64();
            tally.wall += wall;
            tally.cpu += match (cpu, cpu_secs()) {
                (Some(a), Some(b)) => b - a,
                _ => wall,
            };
        }
    }
    let per_seed = |t: &Tally| t.cpu.max(1e-9) / t.seeds.max(1) as f64;
    let per_sim = |t: &Tally| t.cpu.max(1e-9) / t.sim.as_secs_f64().max(1e-9);
    let (base_seed, base_sim) = (per_seed(&tallies[0]), per_sim(&tallies[0]));
    let rows = rows
        .iter()
        .zip(tallies)
        .map(|(kind, t)| {
            let cpu = t.cpu.max(1e-9);
            Row {
                label: kind.label(),
                workload: match kind {
                    RowKind::Baseline => None,
                    RowKind::Standard { workload, .. } | RowKind::Nodes { workload, .. } => {
                        Some(workload.name())
                    }
                },
                nodes: kind.cluster_size(),
                fault_secs: kind.fault_secs(),
                seeds: t.seeds,
                wall_secs: t.wall,
                cpu_secs: t.cpu,
                sim_secs: t.sim.as_secs_f64(),
                messages: t.messages,
                seeds_per_core_sec: t.seeds as f64 / cpu,
                sim_per_core_sec: t.sim.as_secs_f64() / cpu,
                messages_per_core_sec: t.messages as f64 / cpu,
                cpu_ms_per_seed: per_seed(&t) * 1e3,
                cost_vs_baseline: per_seed(&t) / base_seed,
                cost_per_sim_sec_vs_baseline: per_sim(&t) / base_sim,
                failed: t.failed,
            }
        })
        .collect();
    BenchReport {
        version: Version::current(),
        load_before,
        load_after: load_average(),
        cpu_time,
        rounds,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_rows_run_standard_like_seeds_of_that_size() {
        for nodes in [3, 5, 7] {
            let seeds = row_seeds(
                RowKind::Nodes {
                    workload: Workload::Raft,
                    nodes,
                },
                3,
            );
            assert_eq!(seeds.len(), 3);
            for seed in seeds {
                let config = SwarmConfig::from_seed(seed);
                assert_eq!(config.nodes, nodes);
                assert!(standard_like(&config), "seed {seed}");
            }
        }
        // Most swarm seeds leave some fault class off, so the filter is not vacuous.
        let like = (1..200)
            .filter(|&s| standard_like(&SwarmConfig::from_seed(s)))
            .count();
        assert!(
            like < 50,
            "{like} of 199 swarm seeds have every fault class on"
        );
    }

    #[test]
    fn a_tiny_run_measures_every_row_against_the_baseline() {
        let rows = [
            RowKind::Baseline,
            RowKind::Standard {
                workload: Workload::Raft,
                fault_secs: 10,
            },
        ];
        let report = run(&rows, 1, 2, 4);
        assert_eq!(report.rounds, 1);
        let base = &report.rows[0];
        assert_eq!((base.seeds, base.sim_secs), (2, 20.0));
        assert!((base.cost_vs_baseline - 1.0).abs() < 1e-9);
        let raft = &report.rows[1];
        assert_eq!(raft.seeds, 1);
        assert!(raft.sim_secs >= 10.0 && raft.messages > 0);
        assert!(raft.cost_vs_baseline > 0.0);
        assert!(report
            .to_table()
            .contains("| raft standard, 10 s faults | 1 |"));
    }
}
