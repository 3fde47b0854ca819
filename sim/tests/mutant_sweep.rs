//! The test command of mutation testing (`scripts/mutants.sh`): the regression corpus, then a
//! short seed sweep of every workload that stops at the first failing seed.
//!
//! cargo-mutants builds each mutant of raft-core or workloads and runs this test (and the
//! scripted shardkv scenarios of `tests/shardkv.rs`); a mutant is killed when some seed or
//! scenario fails. The corpus comes first: it is a few seconds, and its seeds were filed
//! because they reach what few swarm seeds reach. It is `#[ignore]`d because a sweep is too
//! long for the plain `cargo test` run; `cargo test --release -p sim --test mutant_sweep --
//! --ignored` runs it.
//!
//! `SIM_MUTANT_SEEDS` (default `1..201`) is the seed range per workload and
//! `SIM_MUTANT_WORKLOADS` (default `raft,kv,shardkv`) the workloads, cheapest first, so a mutant
//! that breaks Raft itself is killed by the quick raw workload.

use sim::corpus::replay_dir;
use sim::sweep::{sweep, SweepOptions};
use sim::workload::Workload;
use std::ops::Range;
use std::path::Path;

fn seed_range() -> Range<u64> {
    let text = std::env::var("SIM_MUTANT_SEEDS").unwrap_or_else(|_| "1..201".to_string());
    let (start, end) = text
        .split_once("..")
        .unwrap_or_else(|| panic!("SIM_MUTANT_SEEDS must be START..END, got {text:?}"));
    let start: u64 = start.parse().expect("SIM_MUTANT_SEEDS start");
    let end: u64 = end.parse().expect("SIM_MUTANT_SEEDS end");
    assert!(start < end, "SIM_MUTANT_SEEDS is empty: {text:?}");
    start..end
}

fn workloads() -> Vec<Workload> {
    let text =
        std::env::var("SIM_MUTANT_WORKLOADS").unwrap_or_else(|_| "raft,kv,shardkv".to_string());
    text.split(',')
        .map(|name| {
            Workload::from_name(name.trim())
                .unwrap_or_else(|| panic!("SIM_MUTANT_WORKLOADS: unknown workload {name:?}"))
        })
        .collect()
}

#[test]
#[ignore = "a seed sweep per workload; the test command of scripts/mutants.sh"]
fn no_seed_fails() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let wrong = replay_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        wrong.is_empty(),
        "the corpus does not hold:\n{}",
        wrong.join("\n")
    );
    let seeds = seed_range();
    for workload in workloads() {
        let mut options = SweepOptions::new(seeds.clone(), 2, workload);
        options.stop_at_first_failure = true;
        let summary = sweep(&options, |_| {});
        eprintln!(
            "mutant sweep: {} seeds {}..{}: {} run, {} failed",
            workload.name(),
            seeds.start,
            seeds.end,
            summary.seeds,
            summary.failed.len()
        );
        if let Some(failed) = summary.failed.first() {
            panic!(
                "seed {} failed: {}\n  reproduce: {}",
                failed.seed, failed.failure, failed.reproduce
            );
        }
    }
}
