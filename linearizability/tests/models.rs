//! One hand-built history per model rule, linearizable and not.

mod common;

use common::*;
use linearizability::models::{KvModel, RegisterInput, RegisterModel, RegisterOutput};
use linearizability::{check, CheckResult, Model, NondeterministicModel, Operation, PowerSet};

fn verdict<M>(model: &M, history: &[Operation<M::Input, M::Output>]) -> &'static str
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    match check(model, history, None) {
        CheckResult::Ok => "ok",
        CheckResult::Illegal(_) => "illegal",
        CheckResult::Unknown => "unknown",
    }
}

const W: RegisterOutput = RegisterOutput::Write;
const R: RegisterInput = RegisterInput::Read;

#[test]
fn register_starts_absent() {
    assert_eq!(
        verdict(&RegisterModel, &[op(0, 0, 1, R, read_out(None))]),
        "ok"
    );
    assert_eq!(
        verdict(&RegisterModel, &[op(0, 0, 1, R, read_out(Some(0)))]),
        "illegal"
    );
}

#[test]
fn register_read_sees_the_last_write() {
    let ok = [op(0, 0, 1, write(1), W), op(1, 2, 3, R, read_out(Some(1)))];
    assert_eq!(verdict(&RegisterModel, &ok), "ok");
    let stale = [
        op(0, 0, 1, write(1), W),
        op(0, 2, 3, write(2), W),
        op(1, 4, 5, R, read_out(Some(1))),
    ];
    assert_eq!(verdict(&RegisterModel, &stale), "illegal");
}

#[test]
fn register_concurrent_ops_may_go_either_way() {
    // The read overlaps the second write, so it may see either value, but not both orders.
    let either = [
        op(0, 0, 1, write(1), W),
        op(0, 2, 5, write(2), W),
        op(1, 3, 4, R, read_out(Some(1))),
    ];
    assert_eq!(verdict(&RegisterModel, &either), "ok");
    // Closed intervals: touching endpoints are concurrent.
    let touching = [op(0, 0, 2, write(1), W), op(1, 2, 3, R, read_out(None))];
    assert_eq!(verdict(&RegisterModel, &touching), "ok");
    // Two reads that see the writes in opposite orders cannot both be right.
    let flip = [
        op(0, 0, 10, write(1), W),
        op(1, 0, 10, write(2), W),
        op(2, 11, 12, R, read_out(Some(1))),
        op(3, 13, 14, R, read_out(Some(2))),
        op(2, 15, 16, R, read_out(Some(1))),
    ];
    assert_eq!(verdict(&RegisterModel, &flip), "illegal");
}

#[test]
fn register_cas_true_swaps_only_on_match() {
    let ok = [
        op(0, 0, 1, write(1), W),
        op(0, 2, 3, cas(1, 2), RegisterOutput::Cas(true)),
        op(1, 4, 5, R, read_out(Some(2))),
    ];
    assert_eq!(verdict(&RegisterModel, &ok), "ok");
    let mismatch = [
        op(0, 0, 1, write(1), W),
        op(0, 2, 3, cas(3, 2), RegisterOutput::Cas(true)),
    ];
    assert_eq!(verdict(&RegisterModel, &mismatch), "illegal");
    let absent = [op(0, 0, 1, cas(0, 2), RegisterOutput::Cas(true))];
    assert_eq!(verdict(&RegisterModel, &absent), "illegal");
}

#[test]
fn register_cas_false_means_the_compare_failed() {
    let ok = [
        op(0, 0, 1, write(1), W),
        op(0, 2, 3, cas(3, 2), RegisterOutput::Cas(false)),
        op(1, 4, 5, R, read_out(Some(1))),
    ];
    assert_eq!(verdict(&RegisterModel, &ok), "ok");
    let matched = [
        op(0, 0, 1, write(1), W),
        op(0, 2, 3, cas(1, 2), RegisterOutput::Cas(false)),
    ];
    assert_eq!(verdict(&RegisterModel, &matched), "illegal");
}

#[test]
fn register_wrong_output_kind_is_illegal() {
    assert_eq!(
        verdict(
            &RegisterModel,
            &[op(0, 0, 1, write(1), RegisterOutput::Cas(true))]
        ),
        "illegal"
    );
}

#[test]
fn register_unknown_write_may_or_may_not_take_effect() {
    // An open write may explain a later read...
    let seen = [open(0, 0, write(1)), op(1, 5, 6, R, read_out(Some(1)))];
    assert_eq!(verdict(&RegisterModel, &seen), "ok");
    // ...or never happen...
    let unseen = [open(0, 0, write(1)), op(1, 5, 6, R, read_out(None))];
    assert_eq!(verdict(&RegisterModel, &unseen), "ok");
    // ...but not before its call.
    let early = [op(1, 0, 1, R, read_out(Some(1))), open(0, 2, write(1))];
    assert_eq!(verdict(&RegisterModel, &early), "illegal");
    // It takes effect at most once: 1 then nil then 1 again is impossible.
    let twice = [
        open(0, 0, write(1)),
        op(1, 1, 2, R, read_out(Some(1))),
        op(1, 3, 4, write(5), W),
        op(1, 5, 6, R, read_out(Some(1))),
    ];
    assert_eq!(verdict(&RegisterModel, &twice), "illegal");
}

#[test]
fn register_closed_unknown_must_take_effect_before_its_return_or_never() {
    // Effect inside its interval explains the read.
    let inside = [
        closed_unknown(0, 0, 3, write(1)),
        op(1, 1, 2, R, read_out(Some(1))),
    ];
    assert_eq!(verdict(&RegisterModel, &inside), "ok");
    // It cannot take effect after it returned: the later write(2) is final.
    let after = [
        closed_unknown(0, 0, 1, write(1)),
        op(1, 2, 3, write(2), W),
        op(1, 4, 5, R, read_out(Some(1))),
    ];
    assert_eq!(verdict(&RegisterModel, &after), "illegal");
    // A timed-out read constrains nothing.
    let read = [closed_unknown(0, 0, 1, R), op(1, 2, 3, R, read_out(None))];
    assert_eq!(verdict(&RegisterModel, &read), "ok");
    // An unknown CAS applies its effect only if the compare matches.
    let cas_effect = [
        op(0, 0, 1, write(1), W),
        closed_unknown(0, 2, 3, cas(1, 7)),
        op(1, 4, 5, R, read_out(Some(7))),
    ];
    assert_eq!(verdict(&RegisterModel, &cas_effect), "ok");
    let cas_no_match = [
        op(0, 0, 1, write(1), W),
        closed_unknown(0, 2, 3, cas(2, 7)),
        op(1, 4, 5, R, read_out(Some(7))),
    ];
    assert_eq!(verdict(&RegisterModel, &cas_no_match), "illegal");
}

#[test]
fn kv_get_put_append() {
    let kv = KvModel::new();
    assert_eq!(verdict(&kv, &[op(0, 0, 1, get("k"), value(""))]), "ok");
    assert_eq!(
        verdict(&kv, &[op(0, 0, 1, get("k"), value("x"))]),
        "illegal"
    );
    let put_get = [
        op(0, 0, 1, put("k", "a"), KvOutput::Done),
        op(1, 2, 3, get("k"), value("a")),
    ];
    assert_eq!(verdict(&kv, &put_get), "ok");
    let appended = [
        op(0, 0, 1, put("k", "a"), KvOutput::Done),
        op(0, 2, 3, append("k", "b"), KvOutput::Done),
        op(1, 4, 5, get("k"), value("ab")),
    ];
    assert_eq!(verdict(&kv, &appended), "ok");
    let lost_append = [
        op(0, 0, 1, append("k", "a"), KvOutput::Done),
        op(0, 2, 3, append("k", "b"), KvOutput::Done),
        op(1, 4, 5, get("k"), value("b")),
    ];
    assert_eq!(verdict(&kv, &lost_append), "illegal");
    let reordered = [
        op(0, 0, 1, append("k", "a"), KvOutput::Done),
        op(0, 2, 3, append("k", "b"), KvOutput::Done),
        op(1, 4, 5, get("k"), value("ba")),
    ];
    assert_eq!(verdict(&kv, &reordered), "illegal");
    let concurrent = [
        op(0, 0, 5, append("k", "a"), KvOutput::Done),
        op(1, 0, 5, append("k", "b"), KvOutput::Done),
        op(2, 6, 7, get("k"), value("ba")),
    ];
    assert_eq!(verdict(&kv, &concurrent), "ok");
    let put_resets = [
        op(0, 0, 1, append("k", "a"), KvOutput::Done),
        op(0, 2, 3, put("k", "z"), KvOutput::Done),
        op(1, 4, 5, get("k"), value("za")),
    ];
    assert_eq!(verdict(&kv, &put_resets), "illegal");
}

#[test]
fn kv_keys_are_independent() {
    let kv = KvModel::new();
    let ok = [
        op(0, 0, 1, put("a", "1"), KvOutput::Done),
        op(1, 2, 3, get("b"), value("")),
        op(1, 4, 5, get("a"), value("1")),
    ];
    assert_eq!(verdict(&kv, &ok), "ok");
    let cross = [
        op(0, 0, 1, put("a", "1"), KvOutput::Done),
        op(1, 2, 3, get("b"), value("1")),
    ];
    assert_eq!(verdict(&kv, &cross), "illegal");
    assert_eq!(kv.partition(&cross).len(), 2);
}

#[test]
fn kv_unobservable_values_still_matter_after_a_put() {
    // Appends that no read observes are merged into one state, but a later put must still
    // restore an observable value that later appends extend.
    let kv = KvModel::new();
    let history = [
        op(0, 0, 1, append("k", "q"), KvOutput::Done),
        op(0, 2, 3, append("k", "r"), KvOutput::Done),
        op(0, 4, 5, put("k", "a"), KvOutput::Done),
        op(0, 6, 7, append("k", "b"), KvOutput::Done),
        op(1, 8, 9, get("k"), value("ab")),
    ];
    assert_eq!(verdict(&kv, &history), "ok");
    let mut bad = history.to_vec();
    bad[4] = op(1, 8, 9, get("k"), value("qrab"));
    assert_eq!(verdict(&kv, &bad), "illegal");
}

/// A register whose writes may be lost (nondeterministic): a write leaves either value.
struct LossyRegister;

impl NondeterministicModel for LossyRegister {
    type State = Option<i64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> Vec<Self::State> {
        vec![None]
    }

    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Vec<Self::State> {
        match (input, output) {
            (RegisterInput::Write(v), _) => vec![*state, Some(*v)],
            (RegisterInput::Read, Some(RegisterOutput::Read(v))) if v == state => vec![*state],
            (RegisterInput::Read, None) => vec![*state],
            _ => vec![],
        }
    }
}

#[test]
fn nondeterministic_models_use_the_power_set() {
    let model = PowerSet(LossyRegister);
    let lost = [op(0, 0, 1, write(1), W), op(1, 2, 3, R, read_out(None))];
    assert_eq!(verdict(&model, &lost), "ok");
    let kept = [op(0, 0, 1, write(1), W), op(1, 2, 3, R, read_out(Some(1)))];
    assert_eq!(verdict(&model, &kept), "ok");
    // Once a read saw nil after the write, the write is lost for good.
    let resurrected = [
        op(0, 0, 1, write(1), W),
        op(1, 2, 3, R, read_out(None)),
        op(1, 4, 5, R, read_out(Some(1))),
    ];
    assert_eq!(verdict(&model, &resurrected), "illegal");
}

use linearizability::models::KvOutput;
