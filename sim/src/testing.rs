//! Seeds of a service inside `cargo test`, the way madsim and turmoil users write tests.
//!
//! ```ignore
//! #[test]
//! fn my_service_survives_the_fault_model() {
//!     sim::testing::assert_seeds_pass(sim::workload::Workload::Custom(MY_SERVICE), 1..21);
//! }
//! ```
//!
//! A failing seed panics the test with how it failed and the exact command that replays it
//! (with `--trace` for the full log, `--minimize` for a smaller case).

use crate::runner::{run_seed_isolated, RunOptions, SeedReport};
use crate::sweep::{describe, reproduce_command};
use crate::workload::Workload;
use std::ops::Range;

/// A seed that failed.
#[derive(Clone, Debug)]
pub struct SeedFailure {
    /// The seed.
    pub seed: u64,
    /// How it failed, in one line.
    pub what: String,
    /// The command that replays it.
    pub reproduce: String,
    /// Everything the run produced.
    pub report: SeedReport,
}

impl std::fmt::Display for SeedFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed: {}\n  reproduce: {}",
            self.seed, self.what, self.reproduce
        )
    }
}

/// Runs `seeds` of `workload` in order (each on a fresh thread and madsim runtime) and
/// returns the first that fails, if any. A custom workload's planted bug (`Custom::bug`)
/// stays planted.
pub fn first_failure(workload: Workload, seeds: Range<u64>) -> Option<SeedFailure> {
    let bug = match workload {
        Workload::Custom(custom) => custom.bug,
        _ => None,
    };
    seeds.into_iter().find_map(|seed| {
        let options = RunOptions {
            workload,
            ..RunOptions::new(seed)
        };
        let report = run_seed_isolated(&options);
        (!report.passed()).then(|| SeedFailure {
            seed,
            what: describe(&report.outcome),
            reproduce: reproduce_command(seed, bug, false, workload),
            report,
        })
    })
}

/// Runs `seeds` of `workload`; panics at the first failing one with how it failed and its
/// reproduce command.
///
/// # Panics
/// If a seed fails.
pub fn assert_seeds_pass(workload: Workload, seeds: Range<u64>) {
    if let Some(failure) = first_failure(workload, seeds) {
        panic!("{failure}");
    }
}
