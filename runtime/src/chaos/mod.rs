//! The real-process chaos test: a local cluster of `kvnode` processes under process and
//! network faults, with clients whose history is checked for linearizability.
//!
//! One run: start the nodes (each with its own data directory, ports on 127.0.0.1 and a proxy
//! on every directed peer link), start the clients, then until the duration is up inject one
//! fault at a time every few seconds (see [`Fault`]): SIGKILL a node and restart it, SIGSTOP
//! and SIGCONT it, isolate it, or cut one direction of one link. Then heal everything, let
//! the clients run on for a short liveness phase, stop the clients, stop the nodes with
//! SIGTERM (each must exit cleanly), and check the history per key with the `linearizability`
//! crate. The report gives the verdict, operations per second and latency percentiles.
//!
//! Every loop is bounded by the run's duration or a count; nothing leaves 127.0.0.1.

pub mod cluster;
pub mod proxy;
pub mod workload;

use cluster::LocalCluster;
use linearizability::models::KvModel;
use linearizability::{check_with, CheckOptions, CheckResult};
use raft_core::NodeId;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::Shared;

/// What to run.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// The kvnode binary.
    pub kvnode: PathBuf,
    /// A directory for the cluster (emptied first).
    pub dir: PathBuf,
    /// Nodes in the cluster.
    pub nodes: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// Keys the clients share.
    pub keys: usize,
    /// Length of the fault phase.
    pub duration: Duration,
    /// Longest pause between two faults (the shortest is a fifth of it).
    pub fault_interval_max: Duration,
    /// Seeds the fault schedule and the clients' operations.
    pub seed: u64,
    /// TLS between peers and on the client ports (otherwise `--insecure`).
    pub tls: bool,
    /// Longest time the history check may take before its verdict is Unknown.
    pub check_timeout: Duration,
    /// A planted bug every node runs with (see `kvnode run --bug`).
    pub bug: Option<String>,
    /// The kinds of fault in one cycle; each cycle is shuffled. See [`DEFAULT_FAULT_CYCLE`].
    pub fault_cycle: Vec<FaultKind>,
}

/// A kind of fault, as listed in [`ChaosOptions::fault_cycle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// [`Fault::Kill`].
    Kill,
    /// [`Fault::Pause`].
    Pause,
    /// [`Fault::Isolate`] (always of the leader, when one answers).
    Isolate,
    /// [`Fault::CutOneWay`].
    CutOneWay,
}

impl FaultKind {
    /// Parses `kill`, `pause`, `isolate` or `cut`.
    ///
    /// # Errors
    /// Any other name.
    pub fn from_name(name: &str) -> Result<FaultKind, String> {
        Ok(match name {
            "kill" => FaultKind::Kill,
            "pause" => FaultKind::Pause,
            "isolate" => FaultKind::Isolate,
            "cut" => FaultKind::CutOneWay,
            _ => {
                return Err(format!(
                    "unknown fault {name:?}: kill, pause, isolate or cut"
                ))
            }
        })
    }
}

/// The default cycle: three kills, a pause, an isolation and a one-way cut.
pub const DEFAULT_FAULT_CYCLE: [FaultKind; 6] = [
    FaultKind::Kill,
    FaultKind::Kill,
    FaultKind::Kill,
    FaultKind::Pause,
    FaultKind::Isolate,
    FaultKind::CutOneWay,
];

/// One fault the nemesis injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL a node, restart it after a while.
    Kill(NodeId),
    /// SIGSTOP a node, SIGCONT it after a while.
    Pause(NodeId),
    /// Cut every link to and from a node.
    Isolate(NodeId),
    /// Cut one direction of one link.
    CutOneWay(NodeId, NodeId),
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct ChaosReport {
    /// `linearizable`, `NOT linearizable: ...` or `unknown: ...`.
    pub verdict: String,
    /// Whether the history is linearizable and every node stopped cleanly.
    pub passed: bool,
    /// Operations in the history.
    pub operations: usize,
    /// Completed, refused and abandoned operations.
    pub counts: workload::Counts,
    /// Completed operations per second of client time.
    pub ops_per_second: f64,
    /// Latency percentiles of completed operations (p50, p90, p99, max), in milliseconds.
    pub latency_ms: [f64; 4],
    /// Faults injected, by kind: kills, pauses, isolations, one-way cuts.
    pub faults: [u64; 4],
    /// Nodes that did not exit cleanly on SIGTERM, or crashed on their own.
    pub unclean: Vec<String>,
    /// How long the check took.
    pub check_time: Duration,
    /// Wall time of the whole run.
    pub wall: Duration,
}

impl std::fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [p50, p90, p99, max] = self.latency_ms;
        let [kills, pauses, isolations, cuts] = self.faults;
        writeln!(f, "verdict: {}", self.verdict)?;
        writeln!(
            f,
            "operations: {} ({} ok, {} refused, {} abandoned with unknown outcome)",
            self.operations, self.counts.ok, self.counts.failed, self.counts.abandoned
        )?;
        writeln!(f, "throughput: {:.1} ops/s", self.ops_per_second)?;
        writeln!(
            f,
            "latency: p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
        )?;
        writeln!(
            f,
            "faults: {kills} kills, {pauses} pauses, {isolations} isolations, {cuts} one-way cuts"
        )?;
        if !self.unclean.is_empty() {
            writeln!(f, "unclean nodes: {}", self.unclean.join("; "))?;
        }
        write!(
            f,
            "check: {:.2} s; wall: {:.1} s",
            self.check_time.as_secs_f64(),
            self.wall.as_secs_f64()
        )
    }
}

/// Percentile `p` (0..=100) of sorted `values`, in milliseconds.
fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Waits (bounded) until some node reports a leader through the client port.
async fn wait_for_leader(cluster: &LocalCluster, timeout: Duration) -> Result<NodeId, String> {
    let mut client = crate::KvClient::new(
        crate::client::fresh_client_id(),
        cluster.client_addrs(),
        cluster.client_security(),
        Duration::from_millis(200),
    )
    .map_err(|e| e.to_string())?;
    let start = Instant::now();
    while start.elapsed() < timeout {
        for id in cluster.ids() {
            if let Some(status) = client.status(id).await {
                if status.role == "Leader" {
                    return Ok(id);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("no leader within {timeout:?}"))
}

/// The node that reports itself leader, if one answers quickly.
async fn current_leader(cluster: &LocalCluster, client: &mut crate::KvClient) -> Option<NodeId> {
    for id in cluster.ids() {
        if cluster.is_up(id) {
            if let Some(status) = client.status(id).await {
                if status.role == "Leader" {
                    return Some(id);
                }
            }
        }
    }
    None
}

/// How long a fault lasts before it is undone.
fn fault_length(rng: &mut SmallRng) -> Duration {
    Duration::from_millis(rng.gen_range(300..2500))
}

/// Injects faults one at a time until `duration` has passed; returns the counts by kind.
async fn nemesis(
    cluster: &mut LocalCluster,
    options: &ChaosOptions,
    rng: &mut SmallRng,
) -> Result<[u64; 4], String> {
    let ids = cluster.ids();
    let mut counts = [0u64; 4];
    let mut status = crate::KvClient::new(
        crate::client::fresh_client_id(),
        cluster.client_addrs(),
        cluster.client_security(),
        Duration::from_millis(100),
    )
    .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut cycle: Vec<FaultKind> = Vec::new();
    if options.fault_cycle.is_empty() {
        return Err("the fault cycle is empty".to_string());
    }
    let interval_max = options.fault_interval_max.as_millis().max(5) as u64;
    while start.elapsed() < options.duration {
        let gap = Duration::from_millis(rng.gen_range(interval_max / 5..=interval_max));
        tokio::time::sleep(gap.min(options.duration.saturating_sub(start.elapsed()))).await;
        if start.elapsed() >= options.duration {
            break;
        }
        // Faults come in cycles of `options.fault_cycle` (by default three kills and one of
        // every other kind), shuffled, so even a short run sees every kind; half the faults
        // (and every isolation) hit the leader, where a fault does the most damage.
        if cycle.is_empty() {
            cycle = options.fault_cycle.clone();
            for i in (1..cycle.len()).rev() {
                cycle.swap(i, rng.gen_range(0..=i));
            }
        }
        let kind = cycle.pop().expect("the cycle is not empty");
        let mut node = ids[rng.gen_range(0..ids.len())];
        if kind == FaultKind::Isolate || rng.gen_bool(0.5) {
            if let Some(leader) = current_leader(cluster, &mut status).await {
                node = leader;
            }
        }
        let fault = match kind {
            FaultKind::Kill => Fault::Kill(node),
            FaultKind::Pause => Fault::Pause(node),
            FaultKind::Isolate => Fault::Isolate(node),
            FaultKind::CutOneWay => {
                let others: Vec<NodeId> = ids.iter().copied().filter(|&o| o != node).collect();
                Fault::CutOneWay(node, others[rng.gen_range(0..others.len())])
            }
        };
        tracing::info!(?fault, at = ?start.elapsed(), "injecting");
        let length = fault_length(rng);
        match fault {
            Fault::Kill(id) => {
                counts[0] += 1;
                cluster.kill(id);
                tokio::time::sleep(length).await;
                cluster.start(id)?;
            }
            Fault::Pause(id) => {
                counts[1] += 1;
                cluster.pause(id);
                tokio::time::sleep(length).await;
                cluster.resume(id);
            }
            Fault::Isolate(id) => {
                counts[2] += 1;
                for (&(from, to), link) in &cluster.links {
                    if from == id || to == id {
                        link.set_cut(true);
                    }
                }
                tokio::time::sleep(length).await;
                cluster.heal();
            }
            Fault::CutOneWay(from, to) => {
                counts[3] += 1;
                cluster.links[&(from, to)].set_cut(true);
                tokio::time::sleep(length).await;
                cluster.heal();
            }
        }
        for id in cluster.ids() {
            if let Some(status) = cluster.exited(id) {
                return Err(format!(
                    "{id} exited on its own with {status}; see {}",
                    cluster.log_file(id).display()
                ));
            }
        }
    }
    Ok(counts)
}

/// Runs the chaos test.
///
/// # Errors
/// The cluster could not be started, no leader was elected, or a node crashed on its own.
/// A non-linearizable history is not an error: it is the report's verdict.
pub async fn run(options: ChaosOptions) -> Result<ChaosReport, String> {
    let wall = Instant::now();
    let _ = std::fs::remove_dir_all(&options.dir);
    let mut cluster =
        LocalCluster::create(&options.kvnode, &options.dir, options.nodes, options.tls)?;
    cluster.bug = options.bug.clone();
    cluster.start_all()?;
    wait_for_leader(&cluster, Duration::from_secs(20)).await?;

    let shared = Shared::new();
    let stop = Arc::new(AtomicBool::new(false));
    let client_start = Instant::now();
    let mut clients = Vec::new();
    for index in 1..=options.clients {
        clients.push(tokio::spawn(workload::client(
            index,
            options.seed,
            cluster.client_addrs(),
            cluster.client_security(),
            options.keys,
            shared.clone(),
            stop.clone(),
        )));
    }
    let mut rng = SmallRng::seed_from_u64(options.seed);
    let nemesis_result = nemesis(&mut cluster, &options, &mut rng).await;
    cluster.heal();
    let restart = cluster.start_all();
    // Liveness phase: every node is up and every link healed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let _ = client.await;
    }
    let client_time = client_start.elapsed();
    let faults = nemesis_result?;
    restart?;
    let unclean: Vec<String> = cluster
        .stop_all(Duration::from_secs(10))
        .into_iter()
        .map(|(id, why)| format!("{id} {why}"))
        .collect();

    let history = shared.finish();
    let history_path = options.dir.join("history.jsonl");
    let _ = std::fs::write(
        &history_path,
        linearizability::jsonl::to_jsonl(&KvModel::new(), &history),
    );
    let check_start = Instant::now();
    let check_options = CheckOptions {
        timeout: Some(options.check_timeout),
        ..CheckOptions::default()
    };
    let report = check_with(&KvModel::new(), &history, &check_options);
    let check_time = check_start.elapsed();
    let (verdict, linearizable) = match report.result() {
        CheckResult::Ok => ("linearizable".to_string(), true),
        CheckResult::Illegal(counterexample) => {
            let path = options.dir.join("history.jsonl");
            let _ = std::fs::write(
                &path,
                linearizability::jsonl::to_jsonl(&KvModel::new(), &history),
            );
            (
                format!(
                    "NOT linearizable: {} (history in {})",
                    counterexample.partition,
                    path.display()
                ),
                false,
            )
        }
        CheckResult::Unknown => (
            format!(
                "unknown: the check gave up after {:?}",
                options.check_timeout
            ),
            false,
        ),
    };
    let mut latencies = shared.latencies_us();
    latencies.sort_unstable();
    let counts = shared.counts();
    Ok(ChaosReport {
        verdict,
        passed: linearizable && unclean.is_empty() && counts.ok > 0,
        operations: history.len(),
        counts,
        ops_per_second: counts.ok as f64 / client_time.as_secs_f64(),
        latency_ms: [
            percentile_ms(&latencies, 50.0),
            percentile_ms(&latencies, 90.0),
            percentile_ms(&latencies, 99.0),
            percentile_ms(&latencies, 100.0),
        ],
        faults,
        unclean,
        check_time,
        wall: wall.elapsed(),
    })
}
