//! `sim bench`: the cost of a standard seed against a bare madsim baseline.
//!
//! The baseline is the reference workload of the madsim research notes: 5 madsim nodes, each
//! with an `Endpoint`, every node pinging every other node every 50 ms and each ping answered,
//! for 10 simulated seconds, one fresh runtime (and thread) per seed. Both are measured in the
//! same process, one seed at a time on one thread, so the ratio does not depend on the machine.

use crate::runner::{run_seed_isolated, RunOptions};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Figures of one measurement.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Figures {
    /// Seeds run.
    pub seeds: u64,
    /// Wall-clock seconds.
    pub wall_secs: f64,
    /// Seeds per wall-clock second.
    pub seeds_per_sec: f64,
    /// Simulated seconds per wall-clock second.
    pub sim_per_wall: f64,
    /// Messages delivered per seed (baseline) or sent per seed (standard).
    pub messages_per_seed: f64,
}

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

/// Measures the bare madsim baseline over `seeds` seeds, one fresh thread per seed.
pub fn baseline(seeds: u64) -> Figures {
    let start = Instant::now();
    let mut messages = 0;
    for seed in 0..seeds {
        messages += std::thread::spawn(move || baseline_seed(seed))
            .join()
            .expect("baseline");
    }
    figures(
        seeds,
        start.elapsed(),
        BASELINE_SIM * seeds as u32,
        messages,
    )
}

/// Measures the standard seed (5 nodes, client, 20 simulated seconds of faults) over `seeds`
/// seeds on one thread. Failing seeds are counted and reported by the caller.
pub fn standard(seeds: u64) -> (Figures, Vec<u64>) {
    standard_with(seeds, crate::workload::Workload::Raft)
}

/// The standard seed running the kv service (clerks drawn from the seed, history checked at
/// the end of each seed), measured like [`standard`].
pub fn standard_kv(seeds: u64) -> (Figures, Vec<u64>) {
    standard_with(seeds, crate::workload::Workload::Kv)
}

fn standard_with(seeds: u64, workload: crate::workload::Workload) -> (Figures, Vec<u64>) {
    let start = Instant::now();
    let (mut sim, mut messages, mut failed) = (Duration::ZERO, 0, Vec::new());
    for seed in 1..=seeds {
        let options = RunOptions {
            standard: true,
            workload,
            ..RunOptions::new(seed)
        };
        let report = run_seed_isolated(&options);
        sim += report.sim_time;
        messages += report.stats.sent;
        if !report.passed() {
            failed.push(seed);
        }
    }
    (figures(seeds, start.elapsed(), sim, messages), failed)
}

fn figures(seeds: u64, wall: Duration, sim: Duration, messages: u64) -> Figures {
    let wall_secs = wall.as_secs_f64().max(1e-9);
    Figures {
        seeds,
        wall_secs,
        seeds_per_sec: seeds as f64 / wall_secs,
        sim_per_wall: sim.as_secs_f64() / wall_secs,
        messages_per_seed: messages as f64 / seeds.max(1) as f64,
    }
}
