//! The wire format: round trips, and malformed input gives errors rather than panics.

use raft_core::message::MESSAGE_BYTES_MAX;
use raft_core::{
    decode, encode, AppendResult, DecodeError, Entry, EntryKind, ForwardedReadId, LogIndex,
    Membership, Message, MessageBody, NodeId, SnapshotMeta, Term,
};

fn samples() -> Vec<Message> {
    let entry = Entry {
        term: Term(3),
        index: LogIndex(8),
        kind: EntryKind::Normal(vec![1, 2, 3].into()),
    };
    let noop = Entry {
        term: Term(3),
        index: LogIndex(9),
        kind: EntryKind::Noop,
    };
    let bodies = vec![
        MessageBody::RequestVote {
            pre_vote: true,
            last_log_index: LogIndex(7),
            last_log_term: Term(2),
        },
        MessageBody::RequestVoteResponse {
            pre_vote: false,
            granted: true,
        },
        MessageBody::AppendEntries {
            prev_log_index: LogIndex(7),
            prev_log_term: Term(2),
            entries: vec![entry, noop],
            leader_commit: LogIndex(6),
        },
        MessageBody::AppendEntriesResponse(AppendResult::Reject {
            rejected_index: LogIndex(7),
            conflict_index: LogIndex(4),
            conflict_term: Some(Term(1)),
        }),
        MessageBody::Heartbeat {
            commit: LogIndex(5),
            read_round: 9,
        },
        MessageBody::InstallSnapshot {
            meta: SnapshotMeta {
                index: LogIndex(100),
                term: Term(4),
            },
            offset: 0,
            data: vec![9; 100],
            total_len: 300,
            checksum: 77,
            membership: Box::new(Membership::new(vec![NodeId(1), NodeId(2)])),
        },
        MessageBody::ReadIndexResponse {
            request: ForwardedReadId {
                incarnation: 0xdead_beef,
                seq: 3,
            },
            index: Some(LogIndex(12)),
        },
        MessageBody::TimeoutNow,
        MessageBody::RequestVoteForTransfer {
            last_log_index: LogIndex(7),
            last_log_term: Term(2),
        },
    ];
    bodies
        .into_iter()
        .map(|body| Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body,
        })
        .collect()
}

#[test]
fn every_message_kind_round_trips() {
    for msg in samples() {
        assert_eq!(decode(&encode(&msg)).unwrap(), msg);
    }
}

/// Goal: every truncation and many corruptions of valid messages are clean errors.
#[test]
fn truncated_and_corrupted_messages_are_errors() {
    for msg in samples() {
        let bytes = encode(&msg);
        for cut in 0..bytes.len() {
            assert!(
                decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] = damaged[i].wrapping_add(0x55);
            let _ = decode(&damaged); // must not panic or allocate without bound
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(DecodeError::TrailingBytes(1)));
    }
}

/// Goal: a length prefix claiming a gigantic vector is refused, not allocated.
#[test]
fn huge_length_prefix_is_refused() {
    // AppendEntries with a varint length of u64::MAX for the entries vector.
    let mut bytes = vec![1, 2, 3, 2, 7, 2];
    bytes.push(0xFF);
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(decode(&bytes).is_err());
    let too_big = vec![0u8; MESSAGE_BYTES_MAX + 1];
    assert!(matches!(
        decode(&too_big),
        Err(DecodeError::TooLarge { .. })
    ));
}
