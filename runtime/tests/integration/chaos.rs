//! The short chaos run: 10 s of kills, pauses and link cuts on a 3-node TLS cluster of real
//! processes; the history must be linearizable and every node must stop cleanly.
//! The long run (10 minutes) is `cargo run --release --bin chaos -- --duration 10m`.

use crate::common;

use common::Scratch;
use runtime::chaos::{run, ChaosOptions, FaultKind, DEFAULT_FAULT_CYCLE};
use std::time::Duration;

fn options(scratch: &Scratch, bug: Option<&str>) -> ChaosOptions {
    ChaosOptions {
        kvnode: common::kvnode(),
        dir: scratch.0.join("run"),
        nodes: 3,
        clients: 6,
        keys: 8,
        duration: Duration::from_secs(10),
        fault_interval_max: Duration::from_millis(1500),
        seed: 11,
        tls: true,
        check_timeout: Duration::from_secs(60),
        bug: bug.map(str::to_string),
        fault_cycle: DEFAULT_FAULT_CYCLE.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_seconds_of_chaos_stay_linearizable() {
    let _turn = common::processes_turn().await;
    let scratch = Scratch::new("chaos");
    let report = run(options(&scratch, None)).await.expect("the cluster ran");
    println!("{report}");
    assert!(report.passed, "{report}");
    assert!(
        report.faults.iter().sum::<u64>() >= 3,
        "too few faults: {report}"
    );
    assert!(
        report.counts.ok >= 100,
        "too few operations completed: {report}"
    );
}

/// The canary: a server that acknowledges writes before they commit loses acknowledged writes
/// when its leadership ends, and the same 10 s run must say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chaos_run_catches_writes_acknowledged_before_commit() {
    let _turn = common::processes_turn().await;
    let scratch = Scratch::new("chaos-canary");
    let bug = runtime::server::BUG_ACK_BEFORE_COMMIT;
    // Isolations of the leader are what expose it (a killed leader has usually replicated
    // what it acknowledged), so this run isolates the leader every second or two.
    let mut options = options(&scratch, Some(bug));
    options.fault_cycle = vec![FaultKind::Isolate];
    options.fault_interval_max = Duration::from_millis(1000);
    let report = run(options).await.expect("the cluster ran");
    println!("{report}");
    assert!(!report.passed, "the planted bug went unnoticed: {report}");
    assert!(report.verdict.starts_with("NOT linearizable"), "{report}");
    assert!(report.faults[2] >= 3, "too few isolations: {report}");
}
