//! The model hooks behind the pruning of pending operations and dead states say what they
//! claim, and the verdicts they lead to match the plain search. (Exactness on thousands of
//! random histories is checked against brute force in `crosscheck.rs`.)

mod common;

use common::*;
use linearizability::models::{KvModel, KvOutput, RegisterInput, RegisterModel, RegisterOutput};
use linearizability::{check_with, CheckOptions, Model, Produces, Verdict};

const W: RegisterOutput = RegisterOutput::Write;
const R: RegisterInput = RegisterInput::Read;

#[test]
fn register_drops_only_unobservable_pending_writes() {
    let history = [
        op(0, 0, 1, write(1), W),
        open(1, 2, write(2)), // nobody reads 2: droppable
        open(2, 3, write(3)), // read below: kept
        op(3, 4, 9, R, read_out(Some(3))),
        open(4, 5, cas(3, 4)), // 4 never observed, no failed CAS after
    ];
    let refs: Vec<_> = history.iter().collect();
    assert_eq!(
        RegisterModel.dispensable(&refs),
        vec![false, true, false, false, true]
    );
    // A failed CAS returning after a pending write's call may need it to move the state.
    let mut with_failed = history.to_vec();
    with_failed.push(op(5, 6, 8, cas(1, 9), RegisterOutput::Cas(false)));
    let refs: Vec<_> = with_failed.iter().collect();
    assert_eq!(
        RegisterModel.dispensable(&refs),
        vec![false, false, false, false, false, false]
    );
    // ... and it really can: without the pending write of 2 this is not linearizable.
    let needed = [
        op(0, 0, 1, write(1), W),
        open(1, 2, write(2)),
        op(2, 3, 4, cas(1, 9), RegisterOutput::Cas(false)),
    ];
    let report = check_with(&RegisterModel, &needed, &CheckOptions::default());
    assert_eq!(report.partitions[0].verdict, Verdict::Ok);
    let without = [needed[0].clone(), needed[2].clone()];
    let report = check_with(&RegisterModel, &without, &CheckOptions::default());
    assert_eq!(report.partitions[0].verdict, Verdict::Illegal);
}

#[test]
fn kv_drops_only_unobservable_pending_writes() {
    let history = [
        op(0, 0, 1, put("k", "a"), KvOutput::Done),
        open(1, 2, append("k", "b")), // "ab" is read: kept
        open(2, 3, append("k", "z")), // nobody read a "z": droppable
        open(3, 4, put("k", "q")),    // nobody read "q...": droppable
        op(4, 5, 9, get("k"), value("ab")),
    ];
    let refs: Vec<_> = history.iter().collect();
    assert_eq!(
        KvModel::new().dispensable(&refs),
        vec![false, false, true, true, false]
    );
    // Exists observes presence, so nothing is dropped next to it.
    let mut with_exists = history.to_vec();
    with_exists.push(op(5, 6, 7, exists("k"), KvOutput::Exists(true)));
    let refs: Vec<_> = with_exists.iter().collect();
    assert!(KvModel::new().dispensable(&refs).iter().all(|d| !d));
}

#[test]
fn requirements_and_products() {
    let m = RegisterModel;
    assert_eq!(m.requirement(&R, Some(&read_out(Some(3)))), Some(Some(3)));
    assert_eq!(m.requirement(&R, Some(&read_out(None))), Some(None));
    assert_eq!(m.requirement(&write(3), Some(&W)), None);
    assert_eq!(
        m.requirement(&cas(1, 2), Some(&RegisterOutput::Cas(true))),
        Some(Some(1))
    );
    assert_eq!(m.produces(&write(3), Some(&W)), Produces::One(Some(3)));
    assert_eq!(m.produces(&cas(1, 2), None), Produces::One(Some(2)));
    assert_eq!(
        m.produces(&cas(1, 2), Some(&RegisterOutput::Cas(false))),
        Produces::Nothing
    );
    assert_eq!(m.produces(&R, None), Produces::Nothing);
    assert!(m.may_produce(&cas(1, 2), None, &Some(2)));
    assert!(!m.may_produce(&write(3), None, &Some(2)));
}

/// A stale read far from the start: the one-pass check decides it, and the search only runs
/// briefly (a few configurations per operation) for a prefix to report.
#[test]
fn stale_read_is_found_without_search() {
    let mut history = Vec::new();
    for i in 0..200u64 {
        history.push(op(0, 10 * i, 10 * i + 5, write(i as i64), W));
        history.push(op(1, 10 * i + 6, 10 * i + 8, R, read_out(Some(i as i64))));
    }
    history.push(op(2, 3000, 3001, R, read_out(Some(7))));
    let report = check_with(&RegisterModel, &history, &CheckOptions::default());
    let p = &report.partitions[0];
    assert_eq!(p.verdict, Verdict::Illegal);
    assert!(p.configurations <= 4 * 401 + 1024, "{}", p.configurations);
    assert_eq!(p.blocked, Some(400));
    history.pop();
    let report = check_with(&RegisterModel, &history, &CheckOptions::default());
    assert_eq!(report.partitions[0].verdict, Verdict::Ok);
}
