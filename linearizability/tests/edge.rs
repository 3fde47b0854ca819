//! Edge cases: empty and single-client histories, budgets, the recorder.

mod common;

use std::time::{Duration, Instant};

use common::*;
use linearizability::models::{KvModel, KvOutput, RegisterInput, RegisterModel, RegisterOutput};
use linearizability::{
    check, check_with, CheckOptions, CheckResult, ClientId, RecordError, Recorder, StopReason,
    Timestamp, Verdict,
};

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(check(&RegisterModel, &[], None), CheckResult::Ok);
    let report = check_with(&KvModel::new(), &[], &CheckOptions::default());
    assert!(report.partitions.is_empty());
    assert_eq!(report.result(), CheckResult::Ok);
}

#[test]
fn only_unknown_operations_are_linearizable() {
    let history = vec![
        open(0, 0, write(1)),
        closed_unknown(1, 1, 2, RegisterInput::Read),
        open(2, 3, cas(1, 2)),
    ];
    assert_eq!(check(&RegisterModel, &history, None), CheckResult::Ok);
}

#[test]
fn one_client_is_checked_sequentially() {
    let mut history = Vec::new();
    for i in 0..500u64 {
        let v = i as i64;
        history.push(op(0, 4 * i, 4 * i + 1, write(v), RegisterOutput::Write));
        history.push(op(
            0,
            4 * i + 2,
            4 * i + 3,
            RegisterInput::Read,
            read_out(Some(v)),
        ));
    }
    assert_eq!(check(&RegisterModel, &history, None), CheckResult::Ok);
    history.push(op(0, 5000, 5001, RegisterInput::Read, read_out(Some(3))));
    let CheckResult::Illegal(counterexample) = check(&RegisterModel, &history, None) else {
        panic!("a stale read at the end is illegal");
    };
    assert_eq!(counterexample.blocked, Some(1000));
    // The search stops extending a prefix once value 3, which the last read needs, is
    // overwritten: the longest legal prefix ends with the read of 3.
    let prefix = &counterexample.longest_prefix;
    assert_eq!(prefix.len(), 8, "{prefix:?}");
    let states = linearizability::explain::replay(&RegisterModel, &history, prefix);
    assert_eq!(states.len(), prefix.len(), "the prefix replays legally");
}

#[test]
fn huge_concurrency_ends_unknown_at_the_timeout() {
    let history = exploding_register_history(60);
    let started = Instant::now();
    let options = CheckOptions {
        timeout: Some(Duration::from_millis(500)),
        ..CheckOptions::default()
    };
    let report = check_with(&RegisterModel, &history, &options);
    let elapsed = started.elapsed();
    assert_eq!(
        report.partitions[0].verdict,
        Verdict::Unknown(StopReason::Timeout)
    );
    assert_eq!(report.result(), CheckResult::Unknown);
    assert!(
        elapsed < Duration::from_secs(5),
        "stopped promptly, took {elapsed:?}"
    );
}

#[test]
fn memory_limit_ends_unknown_instead_of_exhausting_memory() {
    let history = exploding_register_history(60);
    let options = CheckOptions {
        memory_limit_bytes: 8 << 20,
        threads: 1,
        ..CheckOptions::default()
    };
    let report = check_with(&RegisterModel, &history, &options);
    assert_eq!(
        report.partitions[0].verdict,
        Verdict::Unknown(StopReason::MemoryLimit)
    );
    // Each configuration takes a few dozen bytes: the search stopped near the limit.
    assert!(report.partitions[0].configurations < 1_000_000);
}

#[test]
fn configuration_limit_is_deterministic() {
    let history = exploding_register_history(30);
    let options = CheckOptions {
        configurations_max: Some(20_000),
        threads: 1,
        ..CheckOptions::default()
    };
    let first = check_with(&RegisterModel, &history, &options);
    let second = check_with(&RegisterModel, &history, &options);
    assert_eq!(
        first.partitions[0].verdict,
        Verdict::Unknown(StopReason::ConfigurationLimit)
    );
    assert_eq!(
        first.partitions[0].configurations,
        second.partitions[0].configurations
    );
    assert_eq!(
        first.partitions[0].linearization,
        second.partitions[0].linearization
    );
}

#[test]
fn small_exploding_history_is_decided() {
    // The same shape, small enough to finish: proves the budget tests above are not trivially
    // Unknown.
    let history = exploding_register_history(10);
    assert!(matches!(
        check(&RegisterModel, &history, None),
        CheckResult::Illegal(_)
    ));
}

#[test]
fn threads_do_not_change_verdicts() {
    let mut history = Vec::new();
    for k in 0..20u64 {
        let key = format!("k{k}");
        for i in 0..60u64 {
            history.push(op(
                i % 5,
                100 * i + k,
                100 * i + k + 150,
                append(&key, &format!("<{i}>")),
                KvOutput::Done,
            ));
        }
        let all: String = (0..60).map(|i| format!("<{i}>")).collect();
        let observed = if k == 7 { format!("{all}!") } else { all };
        history.push(op(9, 10_000, 10_001, get(&key), value(&observed)));
    }
    let single = check_with(
        &KvModel::new(),
        &history,
        &CheckOptions {
            threads: 1,
            ..CheckOptions::default()
        },
    );
    let parallel = check_with(
        &KvModel::new(),
        &history,
        &CheckOptions {
            threads: 4,
            ..CheckOptions::default()
        },
    );
    let verdicts = |r: &linearizability::CheckReport| {
        r.partitions.iter().map(|p| p.verdict).collect::<Vec<_>>()
    };
    assert_eq!(verdicts(&single), verdicts(&parallel));
    assert_eq!(
        single
            .partitions
            .iter()
            .filter(|p| p.verdict == Verdict::Illegal)
            .count(),
        1
    );
    assert_eq!(single.partitions[17].name, "key \"k7\"");
    assert_eq!(single.partitions[17].verdict, Verdict::Illegal);
}

#[test]
fn recorder_builds_histories_and_rejects_misuse() {
    let mut recorder: Recorder<RegisterInput, RegisterOutput> = Recorder::new();
    let a = recorder.call(ClientId(1), Timestamp(10), write(1)).unwrap();
    assert!(matches!(
        recorder.call(ClientId(1), Timestamp(11), RegisterInput::Read),
        Err(RecordError::ClientBusy { .. })
    ));
    assert_eq!(
        recorder.ok(a, Timestamp(5), RegisterOutput::Write),
        Err(RecordError::TimeWentBackwards {
            at: Timestamp(5),
            last: Timestamp(10)
        })
    );
    recorder
        .ok(a, Timestamp(12), RegisterOutput::Write)
        .unwrap();
    assert_eq!(
        recorder.ok(a, Timestamp(13), RegisterOutput::Write),
        Err(RecordError::NotOpen(a))
    );
    let b = recorder
        .call(ClientId(2), Timestamp(14), cas(1, 2))
        .unwrap();
    recorder.abandon(b).unwrap();
    let c = recorder
        .call(ClientId(2), Timestamp(15), RegisterInput::Read)
        .unwrap();
    recorder.unknown(c, Timestamp(16)).unwrap();
    let d = recorder
        .call(ClientId(3), Timestamp(17), RegisterInput::Read)
        .unwrap();
    let history = recorder.finish();
    assert_eq!(history.len(), 4);
    assert_eq!(history[0].return_time, Some(Timestamp(12)));
    assert!(history[1].return_time.is_none() && history[1].outcome.is_unknown());
    assert_eq!(history[2].return_time, Some(Timestamp(16)));
    assert!(history[2].outcome.is_unknown());
    assert!(history[d.0].return_time.is_none());
    assert_eq!(check(&RegisterModel, &history, None), CheckResult::Ok);
}
