//! Helpers shared by the integration tests.
#![allow(dead_code)]

use linearizability::models::{KvAction, KvInput, KvOutput, RegisterInput, RegisterOutput};
use std::collections::HashSet;
use std::hash::Hash;

use linearizability::{ClientId, Model, Operation, Outcome, Timestamp};

/// A closed operation with a known output.
pub fn op<I, O>(client: u64, call: u64, ret: u64, input: I, output: O) -> Operation<I, O> {
    Operation {
        client: ClientId(client),
        call: Timestamp(call),
        return_time: Some(Timestamp(ret)),
        input,
        outcome: Outcome::Ok(output),
    }
}

/// A closed operation whose output is unknown.
pub fn closed_unknown<I, O>(client: u64, call: u64, ret: u64, input: I) -> Operation<I, O> {
    Operation {
        client: ClientId(client),
        call: Timestamp(call),
        return_time: Some(Timestamp(ret)),
        input,
        outcome: Outcome::Unknown,
    }
}

/// An operation that never returned.
pub fn open<I, O>(client: u64, call: u64, input: I) -> Operation<I, O> {
    Operation {
        client: ClientId(client),
        call: Timestamp(call),
        return_time: None,
        input,
        outcome: Outcome::Unknown,
    }
}

pub type RegOp = Operation<RegisterInput, RegisterOutput>;
pub type KvOp = Operation<KvInput, KvOutput>;

pub fn write(v: i64) -> RegisterInput {
    RegisterInput::Write(v)
}

pub fn cas(from: i64, to: i64) -> RegisterInput {
    RegisterInput::Cas { from, to }
}

pub fn read_out(v: Option<i64>) -> RegisterOutput {
    RegisterOutput::Read(v)
}

pub fn get(key: &str) -> KvInput {
    KvInput {
        key: key.to_string(),
        action: KvAction::Get,
    }
}

pub fn put(key: &str, v: &str) -> KvInput {
    KvInput {
        key: key.to_string(),
        action: KvAction::Put(v.to_string()),
    }
}

pub fn append(key: &str, v: &str) -> KvInput {
    KvInput {
        key: key.to_string(),
        action: KvAction::Append(v.to_string()),
    }
}

pub fn value(v: &str) -> KvOutput {
    KvOutput::Value(v.to_string())
}

/// `n` writes of distinct values (and 0 once more) and `n` reads, all concurrent, then reads of 0 and of 1:
/// not linearizable, but proving it means exploring about n * 2^n configurations.
pub fn exploding_register_history(n: u64) -> Vec<RegOp> {
    let mut history = Vec::new();
    for i in 0..n {
        history.push(op(i, i, 1000, write(i as i64), RegisterOutput::Write));
    }
    // 0 is written twice, so that the search must decide it: the decision for histories
    // whose written values are unique does not apply.
    history.push(op(3 * n + 2, n, 1000, write(0), RegisterOutput::Write));
    for i in 0..n {
        history.push(op(
            n + i,
            n + i,
            1000,
            RegisterInput::Read,
            read_out(Some(i as i64)),
        ));
    }
    // Both 0 and 1 would have to be written last: no order works, but every state some read
    // needs has a write that can produce it, so proving it means trying the other writes in
    // every order.
    history.push(op(
        3 * n,
        2000,
        2001,
        RegisterInput::Read,
        read_out(Some(0)),
    ));
    history.push(op(
        3 * n + 1,
        2002,
        2003,
        RegisterInput::Read,
        read_out(Some(1)),
    ));
    history
}

pub fn delete(key: &str) -> KvInput {
    KvInput {
        key: key.to_string(),
        action: KvAction::Delete,
    }
}

pub fn exists(key: &str) -> KvInput {
    KvInput {
        key: key.to_string(),
        action: KvAction::Exists,
    }
}

/// A compare-and-set of `key` from `expected` (`None`: absent) to `new`.
pub fn kv_cas(key: &str, expected: Option<&str>, new: &str) -> KvInput {
    KvInput {
        key: key.to_string(),
        action: KvAction::Cas {
            expected: expected.map(str::to_string),
            new: new.to_string(),
        },
    }
}

/// What a compare-and-set reported.
pub fn cas_out(swapped: bool, previous: Option<&str>) -> KvOutput {
    KvOutput::Cas {
        swapped,
        previous: previous.map(str::to_string),
    }
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Brute force: is there an order of all closed ops plus any subset of open ops, respecting
/// real time (a returned before b was called => a first), that the model accepts?
pub fn brute_force<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> bool {
    fn go<M: Model>(
        model: &M,
        ops: &[Operation<M::Input, M::Output>],
        placed: u32,
        state: &M::State,
        failed: &mut HashSet<(u32, M::State)>,
    ) -> bool
    where
        M::State: Hash + Eq,
    {
        let closed_left =
            (0..ops.len()).any(|i| placed & (1 << i) == 0 && ops[i].return_time.is_some());
        if !closed_left {
            return true;
        }
        if failed.contains(&(placed, state.clone())) {
            return false;
        }
        for x in 0..ops.len() {
            if placed & (1 << x) != 0 {
                continue;
            }
            let must_precede = (0..ops.len()).any(|y| {
                placed & (1 << y) == 0
                    && y != x
                    && ops[y].return_time.is_some_and(|r| r < ops[x].call)
            });
            if must_precede {
                continue;
            }
            if let Some(next) = model.step(state, &ops[x].input, ops[x].output()) {
                if go(model, ops, placed | (1 << x), &next, failed) {
                    return true;
                }
            }
        }
        failed.insert((placed, state.clone()));
        false
    }
    go(model, ops, 0, &model.init(), &mut HashSet::new())
}
