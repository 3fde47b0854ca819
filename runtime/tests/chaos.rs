//! The short chaos run: 10 s of kills, pauses and link cuts on a 3-node TLS cluster of real
//! processes; the history must be linearizable and every node must stop cleanly.
//! The long run (10 minutes) is `cargo run --release --bin chaos -- --duration 10m`.

mod common;

use common::Scratch;
use runtime::chaos::{run, ChaosOptions};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_seconds_of_chaos_stay_linearizable() {
    let scratch = Scratch::new("chaos");
    let options = ChaosOptions {
        kvnode: common::kvnode(),
        dir: scratch.0.join("run"),
        nodes: 3,
        clients: 4,
        keys: 6,
        duration: Duration::from_secs(10),
        fault_interval_max: Duration::from_millis(1500),
        seed: 11,
        tls: true,
        check_timeout: Duration::from_secs(60),
    };
    let report = run(options).await.expect("the cluster ran");
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
