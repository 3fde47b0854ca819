//! Generated histories of known verdict (see `linearizability::generate`) get that verdict,
//! and the linearizations the checker reports are legal. The generator itself is checked
//! against brute force on small histories in `crosscheck.rs`.

use linearizability::generate::{self, Shape};
use linearizability::models::{KvModel, RegisterModel};
use linearizability::{check_with, CheckOptions, CheckReport, Verdict};

fn shape(ops: usize, keys: usize, clients: usize, pending: f64, violation: bool) -> Shape {
    Shape {
        ops,
        keys,
        clients,
        pending,
        violation,
        kind: generate::Violation::StaleRead,
        seed: 42 + ops as u64 + clients as u64,
    }
}

/// The report's verdict per partition, after checking that a planted violation is found in
/// the partition holding it and nowhere else.
fn expect_verdicts(what: &str, report: &CheckReport, planted: Option<usize>) {
    for p in &report.partitions {
        let holds_violation = planted.is_some_and(|v| p.ops.binary_search(&v).is_ok());
        let expected = if holds_violation {
            Verdict::Illegal
        } else {
            Verdict::Ok
        };
        assert_eq!(p.verdict, expected, "{what}: {}", p.name);
        if holds_violation {
            assert!(
                p.blocked.is_some(),
                "{what}: an illegal partition names the blocking op"
            );
        }
    }
}

#[test]
fn every_generated_history_gets_its_verdict() {
    let options = CheckOptions {
        configurations_max: Some(2_000_000),
        ..CheckOptions::default()
    };
    for clients in [1, 4, 10] {
        for pending in [0.0, 0.1] {
            for violation in [false, true] {
                let what = format!("c{clients} p{pending} v{violation}");
                let s = shape(600, 1, clients, pending, violation);
                let g = generate::register(&s).expect("shape");
                assert_eq!(g.violation.is_some(), violation);
                let report = check_with(&RegisterModel, &g.history, &options);
                expect_verdicts(&format!("register {what}"), &report, g.violation);
                let s = Shape { keys: 3, ..s };
                let g = generate::kv(&s).expect("shape");
                let report = check_with(&KvModel::new(), &g.history, &options);
                assert_eq!(report.partitions.len(), 3);
                expect_verdicts(&format!("kv {what}"), &report, g.violation);
            }
        }
    }
}

#[test]
fn every_key_gets_a_verdict() {
    let g = generate::kv(&shape(3000, 10, 20, 0.02, true)).expect("shape");
    let report = check_with(&KvModel::new(), &g.history, &CheckOptions::default());
    assert_eq!(report.partitions.len(), 10);
    expect_verdicts("kv 10 keys", &report, g.violation);
    let illegal = report
        .partitions
        .iter()
        .filter(|p| p.verdict == Verdict::Illegal)
        .count();
    assert_eq!(illegal, 1);
}

#[test]
fn linearization_is_legal_and_complete() {
    let model = KvModel::new();
    let history = generate::kv(&shape(3000, 10, 20, 0.0, false))
        .expect("shape")
        .history;
    let report = check_with(&model, &history, &CheckOptions::default());
    for p in &report.partitions {
        assert_eq!(p.verdict, Verdict::Ok, "{}", p.name);
        let mut sorted = p.linearization.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted, p.ops,
            "{}: every op is linearized exactly once",
            p.name
        );
        let states = linearizability::explain::replay(&model, &history, &p.linearization);
        assert_eq!(
            states.len(),
            p.linearization.len(),
            "{}: the order replays legally",
            p.name
        );
        // Real-time order: an op that returned before another was called comes first.
        for (k, &a) in p.linearization.iter().enumerate() {
            for &b in &p.linearization[..k] {
                let a_ret = history[a].return_time.expect("closed");
                assert!(
                    a_ret >= history[b].call,
                    "{}: #{a} returned before #{b} was called",
                    p.name
                );
            }
        }
    }
}

/// The key-value model without its per-partition specialization: plain string states.
struct PlainKv(KvModel);

impl linearizability::Model for PlainKv {
    type State = <KvModel as linearizability::Model>::State;
    type Input = <KvModel as linearizability::Model>::Input;
    type Output = <KvModel as linearizability::Model>::Output;

    fn init(&self) -> Self::State {
        self.0.init()
    }

    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        self.0.step(state, input, output)
    }

    fn partition(
        &self,
        history: &[linearizability::Operation<Self::Input, Self::Output>],
    ) -> Vec<linearizability::Partition> {
        self.0.partition(history)
    }

    fn is_read_only(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        self.0.is_read_only(input, output)
    }
}

#[test]
fn kv_specialization_agrees_with_plain_strings_where_both_finish() {
    use linearizability::Model;
    let mut decided = 0;
    for (clients, violation) in [(1, false), (1, true), (10, false), (10, true), (30, false)] {
        let name = format!("c{clients} v{violation}");
        let g = generate::kv(&shape(1000, 10, clients, 0.05, violation)).expect("shape");
        let history = g.history;
        let options = CheckOptions {
            configurations_max: Some(30_000),
            ..CheckOptions::default()
        };
        let plain = check_with(&PlainKv(KvModel::new()), &history, &options);
        let fast = check_with(&KvModel::new(), &history, &CheckOptions::default());
        assert_eq!(plain.partitions.len(), fast.partitions.len());
        for (p, f) in plain.partitions.iter().zip(&fast.partitions) {
            assert!(
                !matches!(f.verdict, Verdict::Unknown(_)),
                "{name} {}",
                f.name
            );
            if !matches!(p.verdict, Verdict::Unknown(_)) {
                assert_eq!(p.verdict, f.verdict, "{name} {}", p.name);
                decided += 1;
            }
        }
        assert!(KvModel::new().partition(&history).len() >= 8);
    }
    assert!(
        decided >= 40,
        "the plain model decided only {decided} partitions"
    );
}

/// A model reduced to its sequential specification: no specialization, no dead-value or
/// blind-overwrite hooks, so neither the one-pass stale-read check nor any pruning beyond the
/// plain search applies. A violation it reports was found by the search itself.
struct Plain<M>(M);

impl<M: linearizability::Model> linearizability::Model for Plain<M> {
    type State = M::State;
    type Input = M::Input;
    type Output = M::Output;

    fn init(&self) -> Self::State {
        self.0.init()
    }

    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        self.0.step(state, input, output)
    }

    fn partition(
        &self,
        history: &[linearizability::Operation<Self::Input, Self::Output>],
    ) -> Vec<linearizability::Partition> {
        self.0.partition(history)
    }
}

/// Every kind of planted violation is found, in the partition holding it, by the checker,
/// and without pending operations by the plain search alone (see [`Plain`]).
#[test]
fn every_kind_of_violation_is_caught_by_the_search() {
    use linearizability::generate::{ShapeError, Violation};
    let options = CheckOptions {
        configurations_max: Some(2_000_000),
        ..CheckOptions::default()
    };
    let quick = CheckOptions {
        configurations_max: Some(200_000),
        ..CheckOptions::default()
    };
    let kinds = [
        Violation::StaleRead,
        Violation::NeverWritten,
        Violation::FutureRead,
        Violation::OutOfOrder,
        Violation::DoubleCas,
        Violation::LostAppend,
    ];
    let mut planted = 0;
    for kind in kinds {
        for clients in [3, 8] {
            // After pending calls, the out-of-order pair at the end leaves the search every
            // subset of them to rule out (a known hard case), so it is planted without.
            let pending_fractions: &[f64] = if kind == Violation::OutOfOrder {
                &[0.0]
            } else {
                &[0.0, 0.1]
            };
            for &pending in pending_fractions {
                let what = format!("{kind:?} c{clients} p{pending}");
                // The plain search is exponential in the pending operations; with none it
                // decides these histories in well under a second.
                let plain = pending == 0.0;
                let s = Shape {
                    kind,
                    ..shape(300, 1, clients, pending, true)
                };
                match generate::register(&s) {
                    Ok(g) => {
                        let report = check_with(&RegisterModel, &g.history, &options);
                        expect_verdicts(&format!("register {what}"), &report, g.violation);
                        if plain {
                            let report = check_with(&Plain(RegisterModel), &g.history, &quick);
                            expect_verdicts(
                                &format!("plain register {what}"),
                                &report,
                                g.violation,
                            );
                        }
                        planted += 1;
                    }
                    Err(ShapeError::Unavailable(_)) => assert_eq!(kind, Violation::LostAppend),
                    Err(e) => panic!("register {what}: {e}"),
                }
                let s = Shape { keys: 2, ..s };
                match generate::kv(&s) {
                    Ok(g) => {
                        let report = check_with(&KvModel::new(), &g.history, &options);
                        expect_verdicts(&format!("kv {what}"), &report, g.violation);
                        if plain {
                            let report = check_with(&Plain(KvModel::new()), &g.history, &quick);
                            expect_verdicts(&format!("plain kv {what}"), &report, g.violation);
                        }
                        planted += 1;
                    }
                    Err(ShapeError::Unavailable(_)) => assert_eq!(kind, Violation::DoubleCas),
                    Err(e) => panic!("kv {what}: {e}"),
                }
            }
        }
    }
    assert_eq!(planted, 36);
}
