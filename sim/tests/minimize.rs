//! The minimizer shrinks a failing seed into a smaller case that fails the same way.

use sim::kv::SimKvBugs;
use sim::minimize::{minimize, signature};
use sim::{run_seed_isolated, RunOptions};

#[test]
fn a_canary_failure_shrinks_and_the_minimal_case_replays() {
    let options = RunOptions {
        kv_bugs: SimKvBugs::from_name("sessions_not_in_snapshot").unwrap(),
        ..RunOptions::kv(4)
    };
    let original = run_seed_isolated(&options);
    let min = minimize(&options, 40).expect("seed 4 fails with the bug");
    assert!(min.options.overrides.any(), "nothing was shrunk");
    assert_eq!(
        signature(&original.outcome).as_deref(),
        Some(min.signature.as_str())
    );
    assert!(min.options.config().fault_phase <= options.config().fault_phase);
    let replay = run_seed_isolated(&min.options);
    assert_eq!(
        replay.outcome, min.report.outcome,
        "the minimal case must replay exactly"
    );
}

#[test]
fn a_passing_seed_has_nothing_to_minimize() {
    assert!(minimize(&RunOptions::kv(1), 10).is_none());
}
