//! Writes that never returned are interchangeable once nothing left can tell their values
//! apart, so the search tries one of them at a time. These tests check that the verdicts do
//! not change: where one such write is needed, where several are, where too few exist, and
//! on generated histories with many crashed clients and every kind of planted violation.

mod common;

use common::{cas, op, open, write, RegOp};
use linearizability::generate::{self, Shape, ShapeError, Violation};
use linearizability::models::{RegisterInput, RegisterModel, RegisterOutput};
use std::time::Duration;

use linearizability::{check_with, CheckOptions, CheckResult, Model};

/// The verdict with the quick search first and with the thorough search alone; both must
/// agree and decide.
fn linearizable(history: &[RegOp]) -> bool {
    let verdicts = [true, false].map(|quick_first| {
        let options = CheckOptions {
            threads: 1,
            quick_first,
            timeout: Some(Duration::from_secs(20)),
            ..CheckOptions::default()
        };
        match check_with(&RegisterModel, history, &options).result() {
            CheckResult::Ok => true,
            CheckResult::Illegal(_) => false,
            CheckResult::Unknown => panic!("undecided within the time limit"),
        }
    });
    assert_eq!(
        verdicts[0], verdicts[1],
        "quick first and thorough only differ"
    );
    verdicts[0]
}

fn failed_cas(client: u64, call: u64, ret: u64, from: i64) -> RegOp {
    op(
        client,
        call,
        ret,
        cas(from, 100 + from),
        RegisterOutput::Cas(false),
    )
}

/// `write(1)`, then compare-and-sets from 1 and (after `write(5)`) from 5 that failed:
/// each needs some write that never returned to have hidden the value just before it.
fn hiding(crashed_writes: usize) -> Vec<RegOp> {
    let mut history = vec![op(0, 0, 1, write(1), RegisterOutput::Write)];
    history.extend((0..crashed_writes).map(|i| open(10 + i as u64, 2, write(20 + i as i64))));
    history.push(failed_cas(1, 3, 4, 1));
    history.push(op(2, 5, 6, write(5), RegisterOutput::Write));
    history.push(failed_cas(3, 7, 8, 5));
    history.sort_by_key(|op| op.call);
    history
}

#[test]
fn each_hidden_value_takes_its_own_crashed_write() {
    assert!(!linearizable(&hiding(0)));
    assert!(
        !linearizable(&hiding(1)),
        "one write cannot hide both values"
    );
    assert!(linearizable(&hiding(2)));
    assert!(linearizable(&hiding(5)));
}

#[test]
fn a_hidden_value_cannot_be_read_again() {
    for crashed in [1, 3] {
        let mut history = vec![
            op(0, 0, 1, write(1), RegisterOutput::Write),
            failed_cas(1, 3, 4, 1),
            op(2, 5, 6, RegisterInput::Read, RegisterOutput::Read(Some(1))),
        ];
        history.extend((0..crashed).map(|i| open(10 + i, 2, write(20 + i as i64))));
        history.sort_by_key(|op| op.call);
        assert!(!linearizable(&history), "{crashed} crashed writes");
        // Without the read the crashed writes hide 1 from the compare-and-set.
        history.retain(|op| op.input != RegisterInput::Read);
        assert!(linearizable(&history), "{crashed} crashed writes");
    }
}

#[test]
fn a_crashed_write_that_is_read_is_not_interchangeable() {
    // The write of 7 never returned, but a read saw 7: a crashed write of another value
    // cannot stand in for it, however many there are.
    let mut history = vec![
        op(0, 0, 1, write(1), RegisterOutput::Write),
        open(1, 2, write(7)),
        op(2, 3, 4, RegisterInput::Read, RegisterOutput::Read(Some(7))),
        op(3, 5, 6, RegisterInput::Read, RegisterOutput::Read(Some(1))),
    ];
    history.extend((0..3).map(|i| open(10 + i, 2, write(20 + i as i64))));
    history.sort_by_key(|op| op.call);
    assert!(!linearizable(&history));
    history.retain(|op| op.output() != Some(&RegisterOutput::Read(Some(1))));
    assert!(linearizable(&history));
}

#[test]
fn writes_observed_only_by_compare_and_set_are_told_apart() {
    let model = RegisterModel;
    let w = write(3);
    assert!(model.overwrites(&w));
    assert!(model.observes(&cas(3, 4), Some(&RegisterOutput::Cas(false)), &w));
    assert!(model.observes(
        &RegisterInput::Read,
        Some(&RegisterOutput::Read(Some(3))),
        &w
    ));
    assert!(!model.observes(&RegisterInput::Read, Some(&RegisterOutput::Read(None)), &w));
    assert!(!model.observes(&cas(4, 3), Some(&RegisterOutput::Cas(false)), &w));
    assert!(!model.observes(&write(3), Some(&RegisterOutput::Write), &w));
    // A failed compare-and-set from 3 after one from 1 tells 3 from 8: a crashed write of
    // 8 may hide 1 from the first, a crashed write of 3 may not (the second would see 3).
    let history = |hider: i64| {
        vec![
            op(0, 0, 1, write(1), RegisterOutput::Write),
            open(1, 2, write(hider)),
            op(2, 3, 4, cas(1, 9), RegisterOutput::Cas(false)),
            open(4, 2, write(8)),
            op(3, 5, 6, cas(3, 9), RegisterOutput::Cas(false)),
        ]
    };
    assert!(linearizable(&history(4)));
    assert!(linearizable(&history(3)), "8 hides 1");
    let mut without_eight = history(3);
    without_eight.remove(3);
    assert!(
        !linearizable(&without_eight),
        "3 hides 1, then fails the second"
    );
    let mut without_three = history(3);
    without_three.remove(1);
    assert!(linearizable(&without_three));
}

/// Generated histories with many crashed clients: every verdict as the generator says,
/// with and without every kind of planted violation.
#[test]
fn generated_histories_with_crashed_clients_get_their_verdicts() {
    let kinds = [
        Violation::StaleRead,
        Violation::NeverWritten,
        Violation::FutureRead,
        Violation::OutOfOrder,
        Violation::DoubleCas,
    ];
    let mut checked = 0;
    for seed in 0..40u64 {
        for (k, &kind) in kinds.iter().enumerate() {
            let violation = (seed + k as u64).is_multiple_of(2);
            let shape = Shape {
                ops: 150 + 20 * (seed % 6) as usize,
                keys: 1,
                clients: [3, 5, 10][(seed % 3) as usize],
                pending: [0.05, 0.1, 0.2][(seed / 3 % 3) as usize],
                violation,
                kind,
                seed,
            };
            let g = match generate::register(&shape) {
                Ok(g) => g,
                Err(ShapeError::NoViolation(_)) => continue,
                Err(e) => panic!("{shape:?}: {e}"),
            };
            assert_eq!(linearizable(&g.history), !violation, "{shape:?}");
            checked += 1;
        }
    }
    assert!(checked > 150, "only {checked} histories");
}
