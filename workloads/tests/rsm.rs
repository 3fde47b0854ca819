//! Directed tests of the exactly-once wrapper as a `raft_core::StateMachine`.

use raft_core::{LogIndex, StateMachine};
use workloads::{
    ApplyOutcome, ClientId, Deduplicated, Envelope, KvBugs, KvCommand, KvError, KvReply,
    KvServerConfig, KvStateMachine, KvStore, Seq,
};

fn request(client: u64, seq: u64, command: KvCommand) -> Vec<u8> {
    Envelope {
        client: ClientId(client),
        seq: Seq(seq),
        command,
    }
    .encode()
    .unwrap()
}

fn append(key: &str, value: &str) -> KvCommand {
    KvCommand::Append {
        key: key.into(),
        value: value.into(),
    }
}

fn outcome(bytes: &[u8]) -> ApplyOutcome<KvReply> {
    ApplyOutcome::decode(bytes).unwrap()
}

/// Goal: a request committed twice runs once, and an older copy is stale.
#[test]
fn retries_apply_once_and_older_copies_are_stale() {
    let mut sm = KvStateMachine::new(KvStore::new());
    let first = request(1, 1, append("k", "a"));
    let second = request(1, 2, append("k", "b"));
    assert_eq!(
        outcome(&sm.apply(LogIndex(1), &first)),
        ApplyOutcome::Applied(KvReply::Done)
    );
    assert_eq!(
        outcome(&sm.apply(LogIndex(2), &first)),
        ApplyOutcome::Duplicate(KvReply::Done)
    );
    assert_eq!(
        outcome(&sm.apply(LogIndex(3), &second)),
        ApplyOutcome::Applied(KvReply::Done)
    );
    let stale = outcome(&sm.apply(LogIndex(4), &first));
    assert_eq!(stale, ApplyOutcome::Stale { last: Seq(2) });
    assert_eq!(stale.into_response(), Err(KvError::Stale { last: Seq(2) }));
    assert_eq!(sm.app().get("k"), Some("ab"));
    assert_eq!(sm.applied(), LogIndex(4));
    assert_eq!(sm.sessions().last_seq(ClientId(1)), Some(Seq(2)));
}

/// Goal: a duplicate gets the reply the first copy produced, not a fresh evaluation.
#[test]
fn duplicate_returns_the_cached_reply_even_after_the_state_changed() {
    let mut sm = KvStateMachine::new(KvStore::new());
    let get = request(1, 1, KvCommand::Get { key: "k".into() });
    assert_eq!(
        outcome(&sm.apply(LogIndex(1), &get)),
        ApplyOutcome::Applied(KvReply::Value(None))
    );
    sm.apply(
        LogIndex(2),
        &request(
            2,
            1,
            KvCommand::Put {
                key: "k".into(),
                value: "v".into(),
            },
        ),
    );
    assert_eq!(
        outcome(&sm.apply(LogIndex(3), &get)),
        ApplyOutcome::Duplicate(KvReply::Value(None))
    );
}

/// Goal: malformed entries are an error outcome, never a panic, and change nothing.
#[test]
fn malformed_entries_change_nothing() {
    let mut sm = KvStateMachine::new(KvStore::new());
    sm.apply(LogIndex(1), &request(1, 1, append("k", "a")));
    let before = sm.snapshot();
    let valid = request(1, 2, append("k", "b"));
    let inputs: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xFF; 16],
        valid[..valid.len() - 1].to_vec(),
        [valid.clone(), vec![0]].concat(),
        request(1, 0, append("k", "z")),
    ];
    for (i, input) in inputs.iter().enumerate() {
        let result = outcome(&sm.apply(LogIndex(2 + i as u64), input));
        assert!(
            matches!(result, ApplyOutcome::Malformed(_)),
            "input {i}: {result:?}"
        );
        assert!(matches!(result.into_response(), Err(KvError::Malformed(_))));
    }
    let mut restored = KvStateMachine::new(KvStore::new());
    restored.restore(&before).unwrap();
    assert_eq!(restored.app(), sm.app());
    assert_eq!(restored.sessions(), sm.sessions());
}

/// Goal: the session table travels in snapshots, so a retry after a restart is a duplicate.
#[test]
fn snapshot_carries_sessions_and_applied_index() {
    let mut sm = KvStateMachine::new(KvStore::new());
    let first = request(1, 1, append("k", "a"));
    sm.apply(LogIndex(5), &first);
    let mut restarted = KvStateMachine::new(KvStore::new());
    restarted.restore(&sm.snapshot()).unwrap();
    assert_eq!(restarted.applied(), LogIndex(5));
    assert_eq!(restarted.sessions(), sm.sessions());
    let again = outcome(&restarted.apply(LogIndex(6), &first));
    assert_eq!(again, ApplyOutcome::Duplicate(KvReply::Done));
    assert_eq!(restarted.app().get("k"), Some("a"));
}

/// Goal: a rejected snapshot leaves the replica as it was.
#[test]
fn bad_snapshot_is_an_error_and_changes_nothing() {
    let mut sm = KvStateMachine::new(KvStore::new());
    sm.apply(LogIndex(1), &request(1, 1, append("k", "a")));
    let good = sm.snapshot();
    for bad in [vec![], vec![0xFF; 9], good[..good.len() - 1].to_vec()] {
        assert!(sm.restore(&bad).is_err());
    }
    assert_eq!(sm.snapshot(), good);
    assert_eq!(sm.applied(), LogIndex(1));
}

/// Goal: the planted canary really drops sessions from snapshots, and only then.
#[test]
fn canary_drops_sessions_so_a_retry_applies_twice() {
    let bugs = KvBugs {
        sessions_not_in_snapshot: true,
        ..KvBugs::default()
    };
    let config = KvServerConfig {
        bugs,
        ..Default::default()
    };
    let mut sm = config.state_machine();
    let first = request(1, 1, append("k", "a"));
    sm.apply(LogIndex(1), &first);
    assert_eq!(sm.sessions().len(), 1, "the live table is intact");
    let mut restarted = Deduplicated::with_bugs(KvStore::new(), bugs);
    restarted.restore(&sm.snapshot()).unwrap();
    assert!(restarted.sessions().is_empty());
    assert_eq!(
        outcome(&restarted.apply(LogIndex(2), &first)),
        ApplyOutcome::Applied(KvReply::Done)
    );
    assert_eq!(restarted.app().get("k"), Some("aa"), "the append ran twice");
}

/// Goal: applying an index twice is a caller bug and stops loudly.
#[test]
#[should_panic(expected = "apply at 3 after 3")]
fn applying_an_index_twice_panics() {
    let mut sm = KvStateMachine::new(KvStore::new());
    sm.apply(LogIndex(3), &request(1, 1, append("k", "a")));
    sm.apply(LogIndex(3), &request(1, 2, append("k", "a")));
}
