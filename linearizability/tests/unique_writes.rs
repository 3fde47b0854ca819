//! The decision without search for register histories whose written values are unique
//! (`linearizability::models::unique_writes`) agrees with brute force on thousands of small
//! random histories, of both verdicts, with compare-and-sets that failed, operations that
//! never returned and outputs that were lost; every linearization it returns is legal; and
//! the checker uses it on large histories the search cannot decide.

mod common;

use common::{brute_force, cas, op, open, read_out, write, RegOp, Rng};
use linearizability::explain::replay;
use linearizability::generate::{self, Shape, Violation};
use linearizability::models::{unique_writes, RegisterInput, RegisterModel, RegisterOutput};
use linearizability::{
    check_with, CheckOptions, ClientId, Decision, Operation, Outcome, StopReason, Timestamp,
    Verdict,
};

/// A random history in which every write and compare-and-set has its own value (its index
/// plus one): outputs from a real execution at random points inside the intervals, then
/// perhaps corrupted; about one operation in `open_one_in` never returns and as many
/// return with an unknown output.
fn unique_history(rng: &mut Rng, open_one_in: u64) -> Vec<RegOp> {
    let n = 1 + rng.below(12) as usize;
    let mut ops: Vec<RegOp> = Vec::new();
    let mut points = Vec::new();
    let mut kinds = Vec::new();
    for i in 0..n {
        let call = rng.below(20);
        let ret = call + rng.below(10);
        points.push((call * 2 + rng.below((ret - call) * 2 + 1), i));
        kinds.push(rng.below(10));
        ops.push(Operation {
            client: ClientId(i as u64),
            call: Timestamp(call),
            return_time: Some(Timestamp(ret)),
            input: RegisterInput::Read,
            outcome: Outcome::Unknown,
        });
    }
    points.sort();
    let mut state: Option<i64> = None;
    let mut written: Vec<i64> = Vec::new();
    let mut outputs = vec![RegisterOutput::Write; n];
    for &(_, i) in &points {
        let fresh = i as i64 + 1;
        outputs[i] = match kinds[i] {
            0..=3 => RegisterOutput::Read(state),
            4..=6 => {
                ops[i].input = RegisterInput::Write(fresh);
                state = Some(fresh);
                written.push(fresh);
                RegisterOutput::Write
            }
            _ => {
                let from = match (state, rng.below(3)) {
                    (Some(v), 0) => v,
                    _ if !written.is_empty() && rng.below(3) > 0 => {
                        written[rng.below(written.len() as u64) as usize]
                    }
                    // Never written.
                    _ => 100 + fresh,
                };
                ops[i].input = RegisterInput::Cas { from, to: fresh };
                let swapped = state == Some(from);
                if swapped {
                    state = Some(fresh);
                    written.push(fresh);
                }
                RegisterOutput::Cas(swapped)
            }
        };
    }
    for (i, op) in ops.iter_mut().enumerate() {
        let mut output = outputs[i];
        if rng.below(5) == 0 {
            output = match output {
                RegisterOutput::Read(_) if rng.below(3) == 0 => RegisterOutput::Read(None),
                RegisterOutput::Read(_) => {
                    RegisterOutput::Read(Some(1 + rng.below(n as u64) as i64))
                }
                RegisterOutput::Cas(swapped) => RegisterOutput::Cas(!swapped),
                RegisterOutput::Write => RegisterOutput::Write,
            };
        }
        op.outcome = Outcome::Ok(output);
        match rng.below(open_one_in) {
            0 => op.outcome = Outcome::Unknown,
            1 => {
                op.outcome = Outcome::Unknown;
                op.return_time = None;
            }
            _ => {}
        }
    }
    ops
}

/// Panics unless `order` holds every operation with a return exactly once, respects real
/// time and replays legally.
fn assert_linearization(history: &[RegOp], order: &[usize]) {
    let mut seen = vec![0; history.len()];
    for &i in order {
        seen[i] += 1;
    }
    for (i, op) in history.iter().enumerate() {
        let expected = usize::from(op.return_time.is_some());
        assert!(
            seen[i] == expected || (expected == 0 && seen[i] <= 1),
            "#{i} placed {} times",
            seen[i]
        );
    }
    assert_eq!(
        replay(&RegisterModel, history, order).len(),
        order.len(),
        "replays legally"
    );
    for (k, &a) in order.iter().enumerate() {
        for &b in &order[..k] {
            assert!(
                history[a].return_time.is_none_or(|r| r >= history[b].call),
                "#{a} returned before #{b} was called"
            );
        }
    }
}

/// Decides `rounds` random histories and compares with brute force; returns how many it
/// found linearizable, illegal, and declined.
fn rounds(seed: u64, rounds: usize, open_one_in: u64) -> [usize; 3] {
    let mut rng = Rng(seed);
    let mut counts = [0; 3];
    for round in 0..rounds {
        let history = unique_history(&mut rng, open_one_in);
        let refs: Vec<&RegOp> = history.iter().collect();
        let expected = brute_force(&RegisterModel, &history);
        match unique_writes::decide(&refs) {
            Some(Decision::Linearizable(order)) => {
                assert!(
                    expected,
                    "round {round}: linearizable, but not: {history:#?}"
                );
                assert_linearization(&history, &order);
                counts[0] += 1;
            }
            Some(Decision::Illegal(culprit)) => {
                assert!(
                    !expected,
                    "round {round}: illegal (#{culprit}), but not: {history:#?}"
                );
                assert!(culprit < history.len());
                counts[1] += 1;
            }
            None => counts[2] += 1,
        }
    }
    counts
}

#[test]
fn decisions_match_brute_force() {
    let [yes, no, declined] = rounds(3, 4000, 6);
    assert!(
        yes > 2000 && no > 1000 && declined < 200,
        "{yes} linearizable, {no} illegal, {declined} declined"
    );
}

#[test]
fn decisions_match_brute_force_with_many_crashes() {
    let [yes, no, declined] = rounds(5, 3000, 3);
    assert!(
        yes > 2000 && no > 400 && declined < 200,
        "{yes} linearizable, {no} illegal, {declined} declined"
    );
}

/// A longer run: `cargo test -p linearizability --release -- --ignored`.
#[test]
#[ignore]
fn decisions_match_brute_force_long() {
    rounds(1003, 200_000, 6);
    rounds(1005, 200_000, 3);
}

fn decide(history: &[RegOp]) -> Option<Decision> {
    let refs: Vec<&RegOp> = history.iter().collect();
    unique_writes::decide(&refs)
}

#[test]
fn a_value_written_twice_is_left_to_the_search() {
    let history = vec![
        op(0, 0, 1, write(1), RegisterOutput::Write),
        op(1, 2, 3, write(1), RegisterOutput::Write),
    ];
    assert_eq!(decide(&history), None);
    let history = vec![op(0, 0, 1, cas(1, 1), RegisterOutput::Cas(false))];
    assert_eq!(decide(&history), None);
}

#[test]
fn two_swaps_from_one_value_are_illegal() {
    let history = vec![
        op(0, 0, 1, write(1), RegisterOutput::Write),
        op(1, 2, 5, cas(1, 2), RegisterOutput::Cas(true)),
        op(2, 2, 5, cas(1, 3), RegisterOutput::Cas(true)),
    ];
    assert!(matches!(decide(&history), Some(Decision::Illegal(_))));
    assert!(!brute_force(&RegisterModel, &history));
}

#[test]
fn a_cycle_of_swaps_is_illegal() {
    let history = vec![
        op(0, 0, 5, cas(1, 2), RegisterOutput::Cas(true)),
        op(1, 0, 5, cas(2, 1), RegisterOutput::Cas(true)),
    ];
    assert!(matches!(decide(&history), Some(Decision::Illegal(_))));
    assert!(!brute_force(&RegisterModel, &history));
}

#[test]
fn a_value_only_a_failed_swap_leaves_cannot_be_read() {
    let history = vec![
        op(0, 0, 1, write(1), RegisterOutput::Write),
        op(1, 2, 3, cas(1, 2), RegisterOutput::Cas(false)),
        op(2, 4, 5, RegisterInput::Read, read_out(Some(2))),
    ];
    assert!(matches!(decide(&history), Some(Decision::Illegal(_))));
    assert!(!brute_force(&RegisterModel, &history));
}

/// A compare-and-set that failed needs a write that never returned, and that nothing reads,
/// to have hidden the value: the decision does not look for such writes and declines; the
/// search decides.
#[test]
fn a_failed_swap_that_needs_a_hidden_value_is_left_to_the_search() {
    let history = vec![
        op(0, 0, 1, write(1), RegisterOutput::Write),
        open(1, 2, write(2)),
        op(2, 3, 4, cas(1, 3), RegisterOutput::Cas(false)),
    ];
    assert_eq!(decide(&history), None);
    assert!(brute_force(&RegisterModel, &history));
    let options = CheckOptions {
        threads: 1,
        ..CheckOptions::default()
    };
    assert_eq!(
        check_with(&RegisterModel, &history, &options).partitions[0].verdict,
        Verdict::Ok
    );
}

/// Many clients and crashes: the quick search does not decide these, the decision does,
/// within a budget the search alone does not meet, with a legal linearization.
#[test]
fn the_checker_decides_crowded_histories_without_search() {
    for (pending, seed) in [(0.05, 1), (0.1, 2)] {
        let shape = Shape {
            ops: 3000,
            keys: 1,
            clients: 50,
            pending,
            violation: false,
            kind: Violation::StaleRead,
            seed,
        };
        let history = generate::register(&shape).expect("shape").history;
        let options = CheckOptions {
            threads: 1,
            configurations_max: Some(100_000),
            ..CheckOptions::default()
        };
        let report = check_with(&RegisterModel, &history, &options);
        let partition = &report.partitions[0];
        assert_eq!(partition.verdict, Verdict::Ok, "{shape:?}");
        assert_linearization(&history, &partition.linearization);
        let mut thorough_only = options.clone();
        thorough_only.quick_first = false;
        let report = check_with(&RegisterModel, &history, &thorough_only);
        assert_eq!(
            report.partitions[0].verdict,
            Verdict::Unknown(StopReason::ConfigurationLimit),
            "{shape:?}"
        );
    }
}

/// Without its second write of 0 the exploding history has unique values: decided illegal
/// although the search runs out, and the account names an operation.
#[test]
fn an_illegal_decision_stands_when_the_search_runs_out() {
    let n = 30;
    let history: Vec<RegOp> = common::exploding_register_history(n)
        .into_iter()
        .filter(|op| op.client != ClientId(3 * n + 2))
        .collect();
    assert!(matches!(decide(&history), Some(Decision::Illegal(_))));
    let options = CheckOptions {
        threads: 1,
        configurations_max: Some(20_000),
        ..CheckOptions::default()
    };
    let report = check_with(&RegisterModel, &history, &options);
    assert_eq!(report.partitions[0].verdict, Verdict::Illegal);
    assert!(report.partitions[0].blocked.is_some());
    let thorough_only = CheckOptions {
        quick_first: false,
        ..options
    };
    let report = check_with(&RegisterModel, &history, &thorough_only);
    assert_eq!(
        report.partitions[0].verdict,
        Verdict::Unknown(StopReason::ConfigurationLimit)
    );
}
