//! Property test: arbitrary (well-typed but nonsensical) messages, mixed into a working
//! cluster's traffic, never make a node panic; a node either ignores them or, at worst, stops
//! with an error (for example a bogus snapshot its state machine rejects).

mod common;

use common::Cluster;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use raft_core::{
    AppendResult, Entry, EntryKind, ForwardedReadId, LogIndex, Membership, Message, MessageBody,
    NodeId, SnapshotMeta, Term,
};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

fn term() -> impl Strategy<Value = Term> {
    (0u64..8).prop_map(Term)
}

fn index() -> impl Strategy<Value = LogIndex> {
    (0u64..40).prop_map(LogIndex)
}

/// Forwarded read ids; a reply with a made-up incarnation must be dropped, not matched.
fn read_id() -> impl Strategy<Value = ForwardedReadId> {
    (0u64..3, 0u64..5).prop_map(|(incarnation, seq)| ForwardedReadId { incarnation, seq })
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec((term(), index(), any::<bool>()), 0..4).prop_map(|v| {
        v.into_iter()
            .map(|(term, index, noop)| Entry {
                term,
                index,
                kind: if noop {
                    EntryKind::Noop
                } else {
                    EntryKind::Normal(vec![1].into())
                },
            })
            .collect()
    })
}

fn body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (any::<bool>(), index(), term()).prop_map(|(pre_vote, last_log_index, last_log_term)| {
            MessageBody::RequestVote {
                pre_vote,
                last_log_index,
                last_log_term,
            }
        }),
        (any::<bool>(), any::<bool>())
            .prop_map(|(pre_vote, granted)| MessageBody::RequestVoteResponse { pre_vote, granted }),
        (index(), term(), entries(), index()).prop_map(|(p, t, entries, c)| {
            MessageBody::AppendEntries {
                prev_log_index: p,
                prev_log_term: t,
                entries,
                leader_commit: c,
            }
        }),
        index().prop_map(
            |m| MessageBody::AppendEntriesResponse(AppendResult::Success { match_index: m })
        ),
        (index(), index(), prop::option::of(term())).prop_map(|(r, c, t)| {
            MessageBody::AppendEntriesResponse(AppendResult::Reject {
                rejected_index: r,
                conflict_index: c,
                conflict_term: t,
            })
        }),
        (index(), 0u64..5)
            .prop_map(|(commit, read_round)| MessageBody::Heartbeat { commit, read_round }),
        (0u64..5).prop_map(|read_round| MessageBody::HeartbeatResponse { read_round }),
        (
            index(),
            term(),
            0u64..20,
            prop::collection::vec(any::<u8>(), 0..10),
            0u64..30,
            prop::collection::vec(1u64..6, 0..4),
        )
            .prop_map(|(index, term, offset, data, total_len, voters)| {
                MessageBody::InstallSnapshot {
                    meta: SnapshotMeta { index, term },
                    offset,
                    checksum: crc32fast::hash(&data),
                    data,
                    total_len,
                    membership: Box::new(Membership::new(voters.into_iter().map(NodeId).collect())),
                }
            }),
        (index(), term(), 0u64..40, any::<bool>()).prop_map(|(index, term, next_offset, done)| {
            MessageBody::InstallSnapshotResponse {
                meta: SnapshotMeta { index, term },
                next_offset,
                done,
            }
        }),
        read_id().prop_map(|request| MessageBody::ReadIndex { request }),
        (read_id(), prop::option::of(index()))
            .prop_map(|(request, index)| MessageBody::ReadIndexResponse { request, index }),
        Just(MessageBody::TimeoutNow),
        (index(), term()).prop_map(|(last_log_index, last_log_term)| {
            MessageBody::RequestVoteForTransfer {
                last_log_index,
                last_log_term,
            }
        }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (1u64..4, 1u64..4, term(), body()).prop_map(|(from, to, term, body)| Message {
        from: NodeId(from),
        to: NodeId(to),
        term,
        body,
    })
}

proptest! {
    // A fixed seed keeps `cargo test` deterministic; failures are not persisted to files.
    #![proptest_config(ProptestConfig {
        cases: env_u64("RAFT_PROPERTY_CASES").unwrap_or(64) as u32,
        max_shrink_iters: 200,
        rng_seed: RngSeed::Fixed(env_u64("RAFT_PROPERTY_SEED").unwrap_or(0x5eed_0002)),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_messages_never_panic(
        seed in any::<u64>(),
        junk in prop::collection::vec(message(), 1..60),
    ) {
        let mut c = Cluster::new(3, seed);
        // Hostile input can break safety by design (it impersonates a leader), so only
        // panics are failures here.
        c.strict = false;
        for (i, msg) in junk.into_iter().enumerate() {
            if i % 5 == 0 {
                c.tick();
                c.propose(&[i as u8]);
            }
            c.deliver_one();
            let to = msg.to;
            if c.nodes.contains_key(&to) {
                let result = c.with_node(to, |n| n.receive(msg));
                if result.is_err() {
                    c.crash(to, raft_core::CrashMode::KeepUnsynced);
                }
            }
        }
    }
}
