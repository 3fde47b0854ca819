//! The optimized search agrees with a brute-force reference on thousands of small random
//! histories, including unknown and never-returned operations. The reference knows nothing of
//! the search's shortcuts (greedy reads, twin pruning, state specialization, the linked list):
//! it tries every order that respects real time.

mod common;

use common::{brute_force, Rng};

use linearizability::models::{
    KvAction, KvInput, KvModel, KvOutput, RegisterInput, RegisterModel, RegisterOutput,
};
use linearizability::{
    check_with, CheckOptions, CheckResult, ClientId, Model, Operation, Outcome, Timestamp,
};

/// Random intervals; outputs from a real execution at random points inside them, then maybe
/// corrupted; some operations lose their output or their return.
fn random_history<I: Clone, O: Clone>(
    rng: &mut Rng,
    step: &dyn Fn(&mut Vec<O>, &I, usize) -> O,
    inputs: &dyn Fn(&mut Rng) -> I,
    corrupt: &dyn Fn(&mut Rng) -> O,
) -> Vec<Operation<I, O>> {
    random_history_open(rng, step, inputs, corrupt, 8)
}

/// [`random_history`] where about one operation in `open_one_in` never returns (and as many
/// more return with an unknown output).
fn random_history_open<I: Clone, O: Clone>(
    rng: &mut Rng,
    step: &dyn Fn(&mut Vec<O>, &I, usize) -> O,
    inputs: &dyn Fn(&mut Rng) -> I,
    corrupt: &dyn Fn(&mut Rng) -> O,
    open_one_in: u64,
) -> Vec<Operation<I, O>> {
    let n = 1 + rng.below(12) as usize;
    let mut ops = Vec::new();
    let mut points = Vec::new();
    for i in 0..n {
        let call = rng.below(20);
        let ret = call + rng.below(10);
        let point = call * 2 + rng.below((ret - call) * 2 + 1);
        points.push((point, i));
        ops.push(Operation {
            client: ClientId(i as u64),
            call: Timestamp(call),
            return_time: Some(Timestamp(ret)),
            input: inputs(rng),
            outcome: Outcome::Unknown,
        });
    }
    points.sort();
    let mut outputs: Vec<O> = Vec::new();
    let mut results = vec![None; n];
    for &(_, i) in &points {
        results[i] = Some(step(&mut outputs, &ops[i].input, i));
    }
    for (i, op) in ops.iter_mut().enumerate() {
        let output = if rng.below(5) == 0 {
            corrupt(rng)
        } else {
            results[i].clone().expect("ran")
        };
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

fn verdict<M>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> bool
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    // Both ways: small histories are decided by the quick search, so the thorough one
    // (dead values, blind overwrites, refined states) is also run on its own.
    let verdicts = [true, false].map(|quick_first| {
        let options = CheckOptions {
            threads: 1,
            quick_first,
            ..CheckOptions::default()
        };
        match check_with(model, ops, &options).result() {
            CheckResult::Ok => true,
            CheckResult::Illegal(_) => false,
            CheckResult::Unknown => panic!("small histories are always decided"),
        }
    });
    assert_eq!(
        verdicts[0], verdicts[1],
        "quick first and thorough only differ"
    );
    verdicts[0]
}

#[test]
fn register_search_matches_brute_force() {
    register_rounds(7, 3000);
}

/// A longer run: `cargo test -p linearizability --release -- --ignored`.
#[test]
#[ignore]
fn register_search_matches_brute_force_long() {
    register_rounds(1007, 200_000);
}

/// Many writes that never returned, of values mostly unique, among compare-and-sets that
/// failed: the case where such writes are interchangeable ([`Model::overwrites`]).
#[test]
fn register_crashed_writes_match_brute_force() {
    register_rounds_with(11, 3000, 3, 8);
}

fn register_rounds(seed: u64, rounds: usize) {
    register_rounds_with(seed, rounds, 8, 3);
}

/// Rounds of random register histories: about one operation in `open_one_in` never
/// returns; written values are drawn from `values`.
fn register_rounds_with(seed: u64, rounds: usize, open_one_in: u64, values: u64) {
    let mut rng = Rng(seed);
    let (mut yes, mut no) = (0, 0);
    for round in 0..rounds {
        let step = |state: &mut Vec<RegisterOutput>, input: &RegisterInput, _: usize| {
            // `state` holds at most one element: the current value as a Read output.
            let current = match state.first() {
                Some(RegisterOutput::Read(v)) => *v,
                _ => None,
            };
            let (next, out) = match *input {
                RegisterInput::Read => (current, RegisterOutput::Read(current)),
                RegisterInput::Write(v) => (Some(v), RegisterOutput::Write),
                RegisterInput::Cas { from, to } if current == Some(from) => {
                    (Some(to), RegisterOutput::Cas(true))
                }
                RegisterInput::Cas { .. } => (current, RegisterOutput::Cas(false)),
            };
            *state = vec![RegisterOutput::Read(next)];
            out
        };
        let inputs = |rng: &mut Rng| match rng.below(3) {
            0 => RegisterInput::Read,
            1 => RegisterInput::Write(rng.below(values) as i64),
            _ => RegisterInput::Cas {
                from: rng.below(3) as i64,
                to: rng.below(values) as i64,
            },
        };
        let corrupt = |rng: &mut Rng| match rng.below(3) {
            0 => RegisterOutput::Read(Some(rng.below(3) as i64)),
            1 => RegisterOutput::Read(None),
            _ => RegisterOutput::Cas(rng.below(2) == 0),
        };
        let history = random_history_open(&mut rng, &step, &inputs, &corrupt, open_one_in);
        let expected = brute_force(&RegisterModel, &history);
        assert_eq!(
            verdict(&RegisterModel, &history),
            expected,
            "round {round}: {history:#?}"
        );
        if expected {
            yes += 1
        } else {
            no += 1
        }
    }
    assert!(
        yes > 300 && no > 300,
        "the generator covers both verdicts ({yes} / {no})"
    );
}

/// Small generated histories: the generator's claim (linearizable unless a violation was
/// planted) holds by brute force, and the search agrees, for every kind of violation.
#[test]
fn generated_histories_match_brute_force() {
    use linearizability::generate::{self, Shape, ShapeError, Violation};
    let kinds = [
        Violation::StaleRead,
        Violation::NeverWritten,
        Violation::FutureRead,
        Violation::OutOfOrder,
        Violation::DoubleCas,
        Violation::LostAppend,
    ];
    let mut planted = [0usize; 6];
    let mut clean = 0;
    for seed in 0..1800u64 {
        let violation = seed % 2 == 0;
        let kind = (seed / 2 % 6) as usize;
        // The six operations of an out-of-order gadget come on top.
        let ops = if kinds[kind] == Violation::OutOfOrder && violation {
            1 + (seed % 5) as usize
        } else {
            2 + (seed % 11) as usize
        };
        let shape = Shape {
            ops,
            keys: 1,
            clients: 1 + (seed % 4) as usize,
            pending: [0.0, 0.15, 0.3][(seed % 3) as usize],
            violation,
            kind: kinds[kind],
            seed,
        };
        let expected = !shape.violation;
        let skip =
            |e: &ShapeError| matches!(e, ShapeError::NoViolation(_) | ShapeError::Unavailable(_));
        let mut any = false;
        match generate::register(&shape) {
            Ok(g) => {
                assert_eq!(
                    brute_force(&RegisterModel, &g.history),
                    expected,
                    "{shape:?}"
                );
                assert_eq!(verdict(&RegisterModel, &g.history), expected, "{shape:?}");
                any = true;
            }
            Err(e) if skip(&e) => {}
            Err(e) => panic!("{shape:?}: {e}"),
        }
        match generate::kv(&shape) {
            Ok(g) => {
                assert_eq!(
                    brute_force(&KvModel::new(), &g.history),
                    expected,
                    "{shape:?}"
                );
                assert_eq!(verdict(&KvModel::new(), &g.history), expected, "{shape:?}");
                any = true;
            }
            Err(e) if skip(&e) => {}
            Err(e) => panic!("{shape:?}: {e}"),
        }
        if any && shape.violation {
            planted[kind] += 1;
        } else if any {
            clean += 1;
        }
    }
    assert!(
        planted.iter().all(|&p| p >= 15) && clean > 500,
        "{planted:?} planted, {clean} clean"
    );
}

#[test]
fn kv_search_matches_brute_force() {
    kv_rounds(11, 3000);
}

/// A longer run: `cargo test -p linearizability --release -- --ignored`.
#[test]
#[ignore]
fn kv_search_matches_brute_force_long() {
    kv_rounds(1011, 200_000);
}

/// Gets, puts and appends only: the partitions where puts and appends of values no get can
/// reach are blind overwrites, placed late or absorbed by a put (see `Model::blind`), and
/// where prefixes that no append can extend to a returned value are merged. The values
/// overlap (`"a"` is a prefix of `"ab"`, inside `"ba"`), so both analyses see hard cases.
#[test]
fn kv_gets_puts_appends_match_brute_force() {
    kv_rounds_with(23, 4000, &kv_simple_input);
}

/// A longer run: `cargo test -p linearizability --release -- --ignored`.
#[test]
#[ignore]
fn kv_gets_puts_appends_match_brute_force_long() {
    kv_rounds_with(1023, 200_000, &kv_simple_input);
}

fn kv_simple_input(rng: &mut Rng) -> KvInput {
    let value =
        |rng: &mut Rng| ["a", "b", "ab", "ba", "c", "cb"][rng.below(6) as usize].to_string();
    let action = match rng.below(5) {
        0 | 1 => KvAction::Get,
        2 => KvAction::Put(value(rng)),
        _ => KvAction::Append(value(rng)),
    };
    KvInput {
        key: "k".to_string(),
        action,
    }
}

fn kv_rounds(seed: u64, rounds: usize) {
    kv_rounds_with(seed, rounds, &kv_input);
}

fn kv_rounds_with(seed: u64, rounds: usize, input: &dyn Fn(&mut Rng) -> KvInput) {
    let mut rng = Rng(seed);
    let (mut yes, mut no) = (0, 0);
    for round in 0..rounds {
        let history = random_history(&mut rng, &kv_step, input, &kv_corrupt);
        let expected = brute_force(&KvModel::new(), &history);
        assert_eq!(
            verdict(&KvModel::new(), &history),
            expected,
            "round {round}: {history:#?}"
        );
        if expected {
            yes += 1
        } else {
            no += 1
        }
    }
    assert!(
        yes > 300 && no > 300,
        "the generator covers both verdicts ({yes} / {no})"
    );
}

/// The store's semantics, written independently of the model: `state` holds at most one
/// element, the key's value as a `Value` output (absent when empty).
fn kv_step(state: &mut Vec<KvOutput>, input: &KvInput, _: usize) -> KvOutput {
    let current = match state.first() {
        Some(KvOutput::Value(v)) => Some(v.clone()),
        _ => None,
    };
    let (next, out) = match &input.action {
        KvAction::Get => (
            current.clone(),
            current.clone().map_or(KvOutput::Absent, KvOutput::Value),
        ),
        KvAction::Put(v) => (Some(v.clone()), KvOutput::Done),
        KvAction::Append(v) => (
            Some(current.clone().unwrap_or_default() + v),
            KvOutput::Done,
        ),
        KvAction::Delete => (
            None,
            KvOutput::Deleted {
                existed: current.is_some(),
            },
        ),
        KvAction::Exists => (current.clone(), KvOutput::Exists(current.is_some())),
        KvAction::Cas { expected, new } => {
            let swapped = current == *expected;
            let next = if swapped {
                Some(new.clone())
            } else {
                current.clone()
            };
            (
                next,
                KvOutput::Cas {
                    swapped,
                    previous: current.clone(),
                },
            )
        }
    };
    *state = next.map(KvOutput::Value).into_iter().collect();
    out
}

/// One key, short values that collide often (and the empty value, which differs from an
/// absent key), so prefixes, merges and absence get exercised.
fn kv_input(rng: &mut Rng) -> KvInput {
    let value = |rng: &mut Rng| ["a", "b", "ab", ""][rng.below(4) as usize].to_string();
    let action = match rng.below(8) {
        0 | 1 => KvAction::Get,
        2 => KvAction::Put(value(rng)),
        3 | 4 => KvAction::Append(value(rng)),
        5 => KvAction::Delete,
        6 => KvAction::Exists,
        _ => KvAction::Cas {
            expected: (rng.below(4) != 0).then(|| value(rng)),
            new: value(rng),
        },
    };
    KvInput {
        key: "k".to_string(),
        action,
    }
}

fn kv_corrupt(rng: &mut Rng) -> KvOutput {
    let value = |rng: &mut Rng| ["", "a", "ab", "ba", "aab"][rng.below(5) as usize].to_string();
    match rng.below(6) {
        0 | 1 => KvOutput::Value(value(rng)),
        2 => KvOutput::Absent,
        3 => KvOutput::Deleted {
            existed: rng.below(2) == 0,
        },
        4 => KvOutput::Exists(rng.below(2) == 0),
        _ => KvOutput::Cas {
            swapped: rng.below(2) == 0,
            previous: (rng.below(3) != 0).then(|| value(rng)),
        },
    }
}
