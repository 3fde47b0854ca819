//! The minimizer shrinks a failing seed into a smaller case that fails the same way.

use sim::bugs::ServiceBugs;
use sim::minimize::{failure_times, minimize, signature};
use sim::{run_seed_isolated, RunOptions};
use std::time::Duration;

#[test]
fn a_canary_failure_shrinks_and_the_minimal_case_replays() {
    let options = RunOptions {
        service_bugs: ServiceBugs::from_name("sessions_not_in_snapshot").unwrap(),
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

/// A late failure: the fault phase is cut to just after the failure's time, not only halved.
#[test]
fn a_late_linearizability_failure_is_cut_to_its_time() {
    let bugs = ServiceBugs::from_name("local_reads").unwrap();
    // The first local_reads seed whose failure comes after the first simulated second.
    let (options, original) = (1..300)
        .map(|seed| RunOptions {
            service_bugs: bugs,
            ..RunOptions::kv(seed)
        })
        .map(|options| {
            let report = run_seed_isolated(&options);
            (options, report)
        })
        .find(|(_, report)| {
            signature(&report.outcome).as_deref() == Some("linearizability")
                && failure_times(report)
                    .first()
                    .is_some_and(|at| *at > Duration::from_secs(1))
        })
        .expect("local_reads is caught late on some seed");
    let at = failure_times(&original)[0];
    let min = minimize(&options, 30).expect("the seed fails");
    assert_eq!(min.signature, "linearizability");
    let phase = min.options.config().fault_phase;
    assert!(
        phase < options.config().fault_phase && phase <= at + Duration::from_millis(101),
        "fault phase {phase:?}, failure at {at:?}"
    );
    assert!(min.runs <= 30);
    let replay = run_seed_isolated(&min.options);
    assert_eq!(replay.outcome, min.report.outcome);
}
