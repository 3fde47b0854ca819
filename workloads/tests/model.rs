//! Model-based tests: the kv state machine against a plain `BTreeMap` reference.
//!
//! Goal: every reply of [`KvStore`] and of [`KvStateMachine`] matches an independent reference
//! written directly over a `BTreeMap`, and exactly-once holds across retries, stale copies,
//! garbage entries and snapshot/restore in the middle of a run. Method: proptest generates
//! random step sequences; the harness replays them against both and reports the first
//! divergence. The same harness must *fail* when the session table is left out of snapshots.

use proptest::prelude::*;
use raft_core::{LogIndex, StateMachine};
use std::collections::BTreeMap;
use workloads::{
    ApplyOutcome, ClientId, Deduplicated, Envelope, KvBugs, KvCommand, KvReply, KvStateMachine,
    KvStore, Seq,
};

/// The reference: the meaning of each command, written straight over a map.
fn reference_apply(map: &mut BTreeMap<String, String>, command: &KvCommand) -> KvReply {
    match command {
        KvCommand::Put { key, value } => {
            map.insert(key.clone(), value.clone());
            KvReply::Done
        }
        KvCommand::Append { key, value } => {
            let old = map.get(key).cloned().unwrap_or_default();
            map.insert(key.clone(), old + value);
            KvReply::Done
        }
        KvCommand::Get { key } => KvReply::Value(map.get(key).cloned()),
        KvCommand::Delete { key } => KvReply::Deleted {
            existed: map.remove(key).is_some(),
        },
        KvCommand::Exists { key } => KvReply::Exists(map.contains_key(key)),
        KvCommand::CompareAndSet { key, expected, new } => {
            let previous = map.get(key).cloned();
            let swapped = previous == *expected;
            if swapped {
                map.insert(key.clone(), new.clone());
            }
            KvReply::CompareAndSet { swapped, previous }
        }
    }
}

/// One step of a run.
#[derive(Debug, Clone)]
enum Step {
    /// Client `client` sends its next request.
    Request { client: u64, command: KvCommand },
    /// The latest request of `client` is committed again (a retry after a timeout).
    Retry { client: u64 },
    /// A delayed copy of an older request of `client` is committed.
    OldCopy { client: u64, back: usize },
    /// Bytes that are not an envelope are committed.
    Garbage(Vec<u8>),
    /// The replica restarts from a snapshot of its current state.
    SnapshotRestore,
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[abc]"]
}

fn value() -> impl Strategy<Value = String> {
    "[xy]{0,2}"
}

fn command() -> impl Strategy<Value = KvCommand> {
    prop_oneof![
        (key(), value()).prop_map(|(key, value)| KvCommand::Put { key, value }),
        (key(), value()).prop_map(|(key, value)| KvCommand::Append { key, value }),
        key().prop_map(|key| KvCommand::Get { key }),
        key().prop_map(|key| KvCommand::Delete { key }),
        key().prop_map(|key| KvCommand::Exists { key }),
        (key(), proptest::option::of(value()), value())
            .prop_map(|(key, expected, new)| KvCommand::CompareAndSet { key, expected, new }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..3u64, command()).prop_map(|(client, command)| Step::Request { client, command }),
        3 => (0..3u64).prop_map(|client| Step::Retry { client }),
        1 => (0..3u64, 1..4usize).prop_map(|(client, back)| Step::OldCopy { client, back }),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Step::Garbage),
        1 => Just(Step::SnapshotRestore),
    ]
}

/// Replays `steps` against a replica with `bugs` and the reference; `Err` names the first
/// divergence.
fn check_run(steps: &[Step], bugs: KvBugs) -> Result<(), String> {
    let mut replica = Deduplicated::with_bugs(KvStore::new(), bugs);
    let mut model = BTreeMap::new();
    // Per client: every request sent so far, with the reply it got.
    let mut sent: BTreeMap<u64, Vec<(Envelope<KvCommand>, KvReply)>> = BTreeMap::new();
    let mut index = LogIndex(0);
    for (i, step) in steps.iter().enumerate() {
        let mut commit = |replica: &mut KvStateMachine, bytes: &[u8]| {
            index = index.next();
            ApplyOutcome::<KvReply>::decode(&replica.apply(index, bytes)).expect("result decodes")
        };
        let (got, want) = match step {
            Step::Request { client, command } => {
                let history = sent.entry(*client).or_default();
                let seq = Seq(history.len() as u64 + 1);
                let envelope = Envelope {
                    client: ClientId(*client),
                    seq,
                    command: command.clone(),
                };
                let reply = reference_apply(&mut model, command);
                let got = commit(&mut replica, &envelope.encode().unwrap());
                history.push((envelope, reply.clone()));
                (got, ApplyOutcome::Applied(reply))
            }
            Step::Retry { client } => match sent.get(client).and_then(|h| h.last()) {
                None => continue,
                Some((envelope, reply)) => (
                    commit(&mut replica, &envelope.encode().unwrap()),
                    ApplyOutcome::Duplicate(reply.clone()),
                ),
            },
            Step::OldCopy { client, back } => {
                let history = sent.get(client).map_or(&[][..], Vec::as_slice);
                if *back >= history.len() {
                    continue;
                }
                let (envelope, _) = &history[history.len() - 1 - back];
                let last = Seq(history.len() as u64);
                (
                    commit(&mut replica, &envelope.encode().unwrap()),
                    ApplyOutcome::Stale { last },
                )
            }
            Step::Garbage(bytes) => {
                if Envelope::<KvCommand>::decode(bytes).is_ok() {
                    continue;
                }
                let got = commit(&mut replica, bytes);
                let want = match &got {
                    ApplyOutcome::Malformed(reason) => ApplyOutcome::Malformed(reason.clone()),
                    _ => ApplyOutcome::Malformed("any reason".into()),
                };
                (got, want)
            }
            Step::SnapshotRestore => {
                let snapshot = replica.snapshot();
                let mut restarted = Deduplicated::with_bugs(KvStore::new(), bugs);
                restarted
                    .restore(&snapshot)
                    .map_err(|e| format!("step {i}: restore: {e}"))?;
                if restarted.applied() != replica.applied() {
                    return Err(format!("step {i}: applied index not restored"));
                }
                replica = restarted;
                continue;
            }
        };
        if got != want {
            return Err(format!("step {i} {step:?}: got {got:?}, want {want:?}"));
        }
        let state: BTreeMap<String, String> = replica
            .app()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if state != model {
            return Err(format!(
                "step {i} {step:?}: store {state:?}, reference {model:?}"
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn kv_store_matches_the_reference(commands in proptest::collection::vec(command(), 0..60)) {
        let mut store = KvStore::new();
        let mut model = BTreeMap::new();
        for command in &commands {
            let query = store.query(command);
            let reply = store.apply(command);
            prop_assert_eq!(&reply, &reference_apply(&mut model, command));
            // A read served from local state answers as the read through the log does.
            prop_assert_eq!(query, command.is_read_only().then_some(reply));
        }
        let state: BTreeMap<String, String> =
            store.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        prop_assert_eq!(state, model);
    }

    #[test]
    fn deduplicated_store_is_exactly_once(steps in proptest::collection::vec(step(), 0..80)) {
        if let Err(divergence) = check_run(&steps, KvBugs::default()) {
            return Err(TestCaseError::fail(divergence));
        }
    }
}

/// Goal: the planted canary is detectable by this harness. Method: one retry after a
/// snapshot/restore; without the bug the run passes, with it the append is applied twice.
#[test]
fn canary_sessions_not_in_snapshot_breaks_exactly_once() {
    let steps = vec![
        Step::Request {
            client: 1,
            command: KvCommand::Append {
                key: "k".into(),
                value: "x".into(),
            },
        },
        Step::SnapshotRestore,
        Step::Retry { client: 1 },
    ];
    check_run(&steps, KvBugs::default()).expect("correct replica passes");
    let bugs = KvBugs {
        sessions_not_in_snapshot: true,
        ..KvBugs::default()
    };
    let divergence = check_run(&steps, bugs).expect_err("the canary must be caught");
    assert!(divergence.contains("Applied(Done)"), "{divergence}");
}

/// Goal: the canary is also found by random runs, so a simulator sweep can find it. Method:
/// proptest over random runs with the bug on must report a failure.
#[test]
fn canary_is_found_by_random_runs() {
    let bugs = KvBugs {
        sessions_not_in_snapshot: true,
        ..KvBugs::default()
    };
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let result = runner.run(&proptest::collection::vec(step(), 0..80), |steps| {
        check_run(&steps, bugs).map_err(TestCaseError::fail)
    });
    assert!(result.is_err(), "random runs never exposed the canary");
}
