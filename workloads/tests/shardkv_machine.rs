//! Directed tests of one replica group's sharded kv state machine.
//!
//! Goal: each rule of the shard lifecycle holds on its own: configurations are installed one
//! at a time and only when settled; untouched shards keep serving; an arrived shard serves
//! while others are still pulling; sessions move with their shard; deletion is idempotent and
//! only of offered copies; snapshots round-trip and refuse foreign or broken state. Method:
//! two groups' state machines are driven by hand through one join.

use raft_core::{LogIndex, NodeId, StateMachine};
use std::collections::BTreeMap;
use workloads::rsm::App;
use workloads::shardctrler::{key_to_shard, ConfigNum, CtrlerCommand, Gid, ShardCtrler, ShardId};
use workloads::shardkv::{
    ShardBugs, ShardKv, ShardKvCommand, ShardKvReply, ShardKvStateMachine, ShardState,
    TransferError,
};
use workloads::{ApplyOutcome, ClientId, Envelope, KvCommand, KvReply, Seq};

const G1: Gid = Gid(1);
const G2: Gid = Gid(2);

fn key_in(shard: ShardId) -> String {
    (0..)
        .map(|i| format!("key-{i}"))
        .find(|k| key_to_shard(k) == shard)
        .unwrap()
}

fn append(client: u64, seq: u64, key: &str, value: &str) -> ShardKvCommand {
    let command = KvCommand::Append {
        key: key.into(),
        value: value.into(),
    };
    ShardKvCommand::Client(Envelope {
        client: ClientId(client),
        seq: Seq(seq),
        command,
    })
}

fn get(client: u64, seq: u64, key: &str) -> ShardKvCommand {
    let command = KvCommand::Get { key: key.into() };
    ShardKvCommand::Client(Envelope {
        client: ClientId(client),
        seq: Seq(seq),
        command,
    })
}

fn join(ctrler: &mut ShardCtrler, gid: Gid) -> ShardKvCommand {
    let groups = BTreeMap::from([(gid, vec![NodeId(u64::from(gid.0))])]);
    ctrler.execute(CtrlerCommand::Join { groups }).unwrap();
    ShardKvCommand::InstallConfig(ctrler.latest().clone())
}

/// Group 1 owns everything (configuration 1) and holds `appended` in a key of every shard;
/// configuration 2 adds group 2. Returns the groups (both still in configuration 1 for
/// group 1, configuration 0 for group 2) and configuration 2's install command.
fn two_groups() -> (ShardKv, ShardKv, ShardKvCommand, ShardKvCommand) {
    let mut ctrler = ShardCtrler::new();
    let first = join(&mut ctrler, G1);
    let second = join(&mut ctrler, G2);
    let mut g1 = ShardKv::new(G1, ShardBugs::default());
    let g2 = ShardKv::new(G2, ShardBugs::default());
    assert_eq!(
        g1.execute(first.clone()),
        ShardKvReply::Installed(ConfigNum(1))
    );
    for shard in ShardId::all() {
        let reply = g1.execute(append(1, u64::from(shard.0) + 1, &key_in(shard), "x"));
        assert_eq!(
            reply,
            ShardKvReply::Kv(ApplyOutcome::Applied(KvReply::Done))
        );
    }
    (g1, g2, first, second)
}

fn moving_shards(ctrler_config: &ShardKvCommand) -> Vec<ShardId> {
    let ShardKvCommand::InstallConfig(config) = ctrler_config else {
        unreachable!()
    };
    config.shards_of(G2)
}

#[test]
fn configurations_install_in_order_and_only_when_settled() {
    let (mut g1, mut g2, first, second) = two_groups();
    assert!(
        matches!(g2.execute(second.clone()), ShardKvReply::Ignored(_)),
        "skips config 1"
    );
    assert_eq!(
        g2.execute(first.clone()),
        ShardKvReply::Installed(ConfigNum(1))
    );
    assert!(
        matches!(g1.execute(first), ShardKvReply::Ignored(_)),
        "duplicate install"
    );
    assert_eq!(
        g1.execute(second.clone()),
        ShardKvReply::Installed(ConfigNum(2))
    );
    assert!(!g1.is_settled(), "group 1 offers 5 shards");
    let mut ctrler_next = g1.config().clone();
    ctrler_next.num = ConfigNum(3);
    let before = g1.clone();
    assert!(matches!(
        g1.execute(ShardKvCommand::InstallConfig(ctrler_next)),
        ShardKvReply::Ignored(_)
    ));
    assert_eq!(g1, before, "an ignored install changes nothing");
}

#[test]
fn untouched_shards_serve_and_an_arrived_shard_serves_while_others_pull() {
    let (mut g1, mut g2, first, second) = two_groups();
    let moving = moving_shards(&second);
    assert_eq!(moving.len(), 5);
    let staying = g1
        .config()
        .shards_of(G1)
        .into_iter()
        .find(|s| !moving.contains(s))
        .unwrap();
    g2.execute(first);
    g2.execute(second.clone());
    g1.execute(second);
    // Group 1 keeps serving what it keeps; it no longer serves what it gave away.
    let reply = g1.execute(append(2, 1, &key_in(staying), "y"));
    assert_eq!(
        reply,
        ShardKvReply::Kv(ApplyOutcome::Applied(KvReply::Done))
    );
    assert!(matches!(
        g1.execute(get(2, 2, &key_in(moving[0]))),
        ShardKvReply::WrongGroup { .. }
    ));
    // Group 2 serves nothing it is pulling.
    for &shard in &moving {
        assert_eq!(g2.state(shard), Some(ShardState::Pulling));
        assert!(matches!(
            g2.execute(get(3, 1, &key_in(shard))),
            ShardKvReply::WrongGroup { .. }
        ));
    }
    // One shard arrives: it serves at once, while the other four still pull.
    let transfer = g1.transfer(ConfigNum(2), moving[0]).unwrap();
    assert!(matches!(
        g2.execute(ShardKvCommand::InsertShard(transfer)),
        ShardKvReply::Inserted { .. }
    ));
    assert_eq!(g2.state(moving[0]), Some(ShardState::GcPending));
    let reply = g2.execute(get(3, 1, &key_in(moving[0])));
    assert_eq!(
        reply,
        ShardKvReply::Kv(ApplyOutcome::Applied(KvReply::Value(Some("x".into()))))
    );
    assert!(matches!(
        g2.execute(get(3, 2, &key_in(moving[1]))),
        ShardKvReply::WrongGroup { .. }
    ));
}

#[test]
fn sessions_move_with_the_shard_so_a_retry_does_not_run_twice() {
    let (mut g1, mut g2, first, second) = two_groups();
    let shard = moving_shards(&second)[0];
    let retried = append(1, u64::from(shard.0) + 1, &key_in(shard), "x");
    g2.execute(first);
    g2.execute(second.clone());
    g1.execute(second);
    let transfer = g1.transfer(ConfigNum(2), shard).unwrap();
    g2.execute(ShardKvCommand::InsertShard(transfer.clone()));
    // The request ran at group 1; its retry at group 2 gets the cached reply.
    assert_eq!(
        g2.execute(retried),
        ShardKvReply::Kv(ApplyOutcome::Duplicate(KvReply::Done))
    );
    assert_eq!(g2.store(shard).unwrap().get(&key_in(shard)), Some("x"));
    // A second InsertShard (a retried pull) is ignored: it must not overwrite newer writes.
    g2.execute(append(9, 1, &key_in(shard), "z"));
    assert!(matches!(
        g2.execute(ShardKvCommand::InsertShard(transfer)),
        ShardKvReply::Ignored(_)
    ));
    assert_eq!(g2.store(shard).unwrap().get(&key_in(shard)), Some("xz"));
}

#[test]
fn a_wrong_group_reply_records_no_session() {
    let (mut g1, mut g2, first, second) = two_groups();
    let shard = moving_shards(&second)[0];
    g2.execute(first);
    g2.execute(second.clone());
    g1.execute(second);
    let early = append(7, 1, &key_in(shard), "w");
    assert!(matches!(
        g2.execute(early.clone()),
        ShardKvReply::WrongGroup { .. }
    ));
    g2.execute(ShardKvCommand::InsertShard(
        g1.transfer(ConfigNum(2), shard).unwrap(),
    ));
    assert_eq!(
        g2.execute(early),
        ShardKvReply::Kv(ApplyOutcome::Applied(KvReply::Done))
    );
    assert_eq!(g2.store(shard).unwrap().get(&key_in(shard)), Some("xw"));
}

#[test]
fn deletion_is_idempotent_only_of_offered_copies_and_bounds_storage() {
    let (mut g1, mut g2, first, second) = two_groups();
    let moving = moving_shards(&second);
    let items_before = g1.stored_items();
    g2.execute(first);
    g2.execute(second.clone());
    g1.execute(second);
    let kept = g1.config().shards_of(G1)[0];
    let num = ConfigNum(2);
    let refused = g1.execute(ShardKvCommand::DeleteShard { num, shard: kept });
    assert!(
        matches!(refused, ShardKvReply::Ignored(_)),
        "a served shard is never deleted"
    );
    let early = g1.execute(ShardKvCommand::DeleteShard {
        num: ConfigNum(3),
        shard: moving[0],
    });
    assert!(matches!(early, ShardKvReply::Ignored(_)));
    for &shard in &moving {
        g2.execute(ShardKvCommand::InsertShard(
            g1.transfer(num, shard).unwrap(),
        ));
        let delete = ShardKvCommand::DeleteShard { num, shard };
        assert_eq!(
            g1.execute(delete.clone()),
            ShardKvReply::Deleted { num, shard }
        );
        assert_eq!(
            g1.execute(delete),
            ShardKvReply::Deleted { num, shard },
            "idempotent"
        );
        assert_eq!(g1.transfer(num, shard), Err(TransferError::Gone));
        let confirm = ShardKvCommand::ConfirmGc { num, shard };
        assert_eq!(
            g2.execute(confirm.clone()),
            ShardKvReply::Confirmed { num, shard }
        );
        assert!(matches!(g2.execute(confirm), ShardKvReply::Ignored(_)));
    }
    assert!(g1.is_settled() && g2.is_settled());
    // Every key and session is held once, by its owner only.
    assert_eq!(g1.stored_items() + g2.stored_items(), items_before);
    for shard in moving {
        assert_eq!(g1.state(shard), Some(ShardState::Absent));
        assert!(g1.store(shard).unwrap().is_empty() && g1.sessions(shard).unwrap().is_empty());
    }
}

#[test]
fn transfer_answers_only_from_the_offering_configuration() {
    let (mut g1, _, _, second) = two_groups();
    let moving = moving_shards(&second);
    let shard = moving[0];
    let kept = ShardId::all().find(|s| !moving.contains(s)).unwrap();
    assert_eq!(
        g1.transfer(ConfigNum(2), shard),
        Err(TransferError::NotReady {
            wanted: ConfigNum(2),
            current: ConfigNum(1)
        })
    );
    g1.execute(second);
    assert!(g1.transfer(ConfigNum(2), shard).is_ok());
    assert_eq!(g1.transfer(ConfigNum(1), shard), Err(TransferError::Gone));
    assert_eq!(
        g1.transfer(ConfigNum(2), ShardId(99)),
        Err(TransferError::UnknownShard)
    );
    assert_eq!(g1.after_transfer(ConfigNum(2), shard), None);
    assert_eq!(g1.config().owner(kept), G1);
    assert_eq!(
        g1.transfer(ConfigNum(2), kept),
        Err(TransferError::NotOffered)
    );
}

#[test]
fn pulls_and_gc_requests_name_the_previous_owner() {
    let (mut g1, mut g2, first, second) = two_groups();
    g2.execute(first);
    g2.execute(second.clone());
    g1.execute(second.clone());
    let pulls = g2.pulls();
    assert_eq!(
        pulls.iter().map(|p| p.shard).collect::<Vec<_>>(),
        moving_shards(&second)
    );
    assert!(pulls
        .iter()
        .all(|p| p.peer == G1 && p.servers == vec![NodeId(1)]));
    assert!(g2.gc_requests().is_empty() && g1.pulls().is_empty());
    let shard = pulls[0].shard;
    g2.execute(ShardKvCommand::InsertShard(
        g1.transfer(ConfigNum(2), shard).unwrap(),
    ));
    assert_eq!(g2.pulls().len(), 4);
    assert_eq!(
        g2.gc_requests().iter().map(|r| r.shard).collect::<Vec<_>>(),
        vec![shard]
    );
}

#[test]
fn snapshots_round_trip_and_refuse_foreign_or_broken_state() {
    let (mut g1, _, _, second) = two_groups();
    g1.execute(second);
    let bytes = g1.snapshot();
    let mut restored = ShardKv::new(G1, ShardBugs::default());
    restored.restore(&bytes).unwrap();
    assert_eq!(restored, g1);
    let mut other = ShardKv::new(G2, ShardBugs::default());
    let fresh = other.clone();
    assert!(other.restore(&bytes).unwrap_err().contains("group 1"));
    assert!(other.restore(&bytes[..bytes.len() - 1]).is_err());
    assert_eq!(other, fresh, "a refused snapshot changes nothing");
}

#[test]
fn the_raft_state_machine_applies_bytes_and_snapshots_its_index() {
    let mut ctrler = ShardCtrler::new();
    let install = join(&mut ctrler, G1);
    let mut sm = ShardKvStateMachine::new(G1, ShardBugs::default());
    let reply = |bytes: Vec<u8>| ShardKvReply::decode(&bytes).unwrap();
    assert_eq!(
        reply(sm.apply(LogIndex(1), &install.encode().unwrap())),
        ShardKvReply::Installed(ConfigNum(1))
    );
    assert!(matches!(
        reply(sm.apply(LogIndex(2), &[0xFF; 5])),
        ShardKvReply::Malformed(_)
    ));
    let put = append(1, 1, "k", "v").encode().unwrap();
    let response = reply(sm.apply(LogIndex(3), &put)).into_client_response();
    assert_eq!(response, Ok(KvReply::Done));
    let seq_zero = append(1, 0, "k", "v");
    assert!(matches!(
        reply(sm.apply(LogIndex(4), &seq_zero.encode().unwrap())),
        ShardKvReply::Kv(ApplyOutcome::Malformed(_))
    ));
    let mut restored = ShardKvStateMachine::new(G1, ShardBugs::default());
    restored.restore(&sm.snapshot()).unwrap();
    assert_eq!(restored.applied(), LogIndex(4));
    assert_eq!(restored.kv(), sm.kv());
    assert_eq!(
        restored.kv().query(&KvCommand::Get { key: "k".into() }),
        Ok(KvReply::Value(Some("v".into())))
    );
}

#[test]
fn when_every_group_leaves_the_data_is_dropped_and_nothing_serves() {
    let (mut g1, _, _, _) = two_groups();
    let mut ctrler = ShardCtrler::new();
    join(&mut ctrler, G1);
    ctrler
        .execute(CtrlerCommand::Leave { gids: vec![G1] })
        .unwrap();
    let config = ctrler.latest().clone();
    assert_eq!(
        g1.execute(ShardKvCommand::InstallConfig(config)),
        ShardKvReply::Installed(ConfigNum(2))
    );
    assert!(ShardId::all().all(|s| g1.state(s) == Some(ShardState::Absent) && !g1.serves(s)));
    assert_eq!(g1.stored_items(), 0);
}
