//! The encoding of a WAL record, written out by hand.
//!
//! The bytes are exactly bincode 2's standard encoding (little endian, variable-length
//! integers) of [`RecordRef`], which recovery decodes with serde: the `matches_bincode` tests
//! check it byte for byte. Serde's generic encoder spends a few calls and a writer round trip
//! on every field, which made it the largest single cost of writing small entries; here a
//! record is a run of pushes into the buffer. Configuration entries, which are rare, still go
//! through serde.

use super::RecordRef;
use crate::message::bincode_config;
use crate::types::{EntryKind, HardState, SnapshotMeta};

/// bincode's varint markers: values up to `SINGLE_BYTE_MAX` are one byte, larger ones a marker
/// followed by the value as a little-endian u16, u32 or u64.
const SINGLE_BYTE_MAX: u64 = 250;
const U16_MARKER: u8 = 251;
const U32_MARKER: u8 = 252;
const U64_MARKER: u8 = 253;

/// Appends a bincode varint. Always inlined: it runs several times per entry, and a call
/// costs as much as the common one-byte case.
#[inline(always)]
fn put_varint(out: &mut Vec<u8>, value: u64) {
    if value <= SINGLE_BYTE_MAX {
        out.push(value as u8);
    } else if let Ok(v) = u16::try_from(value) {
        out.push(U16_MARKER);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = u32::try_from(value) {
        out.push(U32_MARKER);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        out.push(U64_MARKER);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// Appends an `Option` tag (bincode writes it as one raw byte, not a varint).
fn put_option_tag(out: &mut Vec<u8>, some: bool) {
    out.push(u8::from(some));
}

fn put_snapshot_meta(out: &mut Vec<u8>, meta: SnapshotMeta) {
    put_varint(out, meta.index.0);
    put_varint(out, meta.term.0);
}

fn put_hard_state(out: &mut Vec<u8>, hs: HardState) {
    put_varint(out, hs.term.0);
    put_option_tag(out, hs.vote.is_some());
    if let Some(vote) = hs.vote {
        put_varint(out, vote.0);
    }
    put_varint(out, hs.commit.0);
}

/// Appends the encoding of `record` to `out`.
pub(super) fn encode_record(out: &mut Vec<u8>, record: &RecordRef<'_>) {
    put_option_tag(out, record.reset.is_some());
    if let Some(meta) = record.reset {
        put_snapshot_meta(out, meta);
    }
    put_option_tag(out, record.hard_state.is_some());
    if let Some(hs) = record.hard_state {
        put_hard_state(out, hs);
    }
    put_varint(out, record.entries.len() as u64);
    for entry in record.entries {
        // Term, index, variant and length take at most 9 bytes each.
        out.reserve(4 * 9 + entry.data().len());
        put_varint(out, entry.term.0);
        put_varint(out, entry.index.0);
        // Variant indexes in declaration order, as serde numbers them.
        match &entry.kind {
            EntryKind::Noop => put_varint(out, 0),
            EntryKind::Normal(data) => {
                put_varint(out, 1);
                put_varint(out, data.len() as u64);
                out.extend_from_slice(data);
            }
            EntryKind::Config(_) => {
                bincode::serde::encode_into_std_write(&entry.kind, out, bincode_config())
                    .expect("configuration within the encoding limit");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::Membership;
    use crate::types::{Entry, LogIndex, NodeId, Term};
    use proptest::prelude::*;

    fn serde_bytes(record: &RecordRef<'_>) -> Vec<u8> {
        bincode::serde::encode_to_vec(record, bincode_config()).unwrap()
    }

    fn hand_bytes(record: &RecordRef<'_>) -> Vec<u8> {
        let mut out = vec![0xee];
        encode_record(&mut out, record);
        assert_eq!(out[0], 0xee, "appends, keeps what was there");
        out.split_off(1)
    }

    /// Integers on both sides of every varint boundary.
    fn int() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..300,
            prop::sample::select(vec![
                250,
                251,
                u64::from(u16::MAX),
                u64::from(u16::MAX) + 1,
                u64::from(u32::MAX),
                u64::from(u32::MAX) + 1,
                u64::MAX,
            ]),
            any::<u64>(),
        ]
    }

    fn kind() -> impl Strategy<Value = EntryKind> {
        prop_oneof![
            Just(EntryKind::Noop),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|d| EntryKind::Normal(d.into())),
            prop::collection::vec(1u64..6, 0..4).prop_map(|ids| {
                EntryKind::Config(Box::new(Membership::new(
                    ids.into_iter().map(NodeId).collect(),
                )))
            }),
        ]
    }

    fn entry() -> impl Strategy<Value = Entry> {
        (int(), int(), kind()).prop_map(|(term, index, kind)| Entry {
            term: Term(term),
            index: LogIndex(index),
            kind,
        })
    }

    fn meta() -> impl Strategy<Value = SnapshotMeta> {
        (int(), int()).prop_map(|(index, term)| SnapshotMeta {
            index: LogIndex(index),
            term: Term(term),
        })
    }

    fn hard_state() -> impl Strategy<Value = HardState> {
        (int(), prop::option::of(int()), int()).prop_map(|(term, vote, commit)| HardState {
            term: Term(term),
            vote: vote.map(NodeId),
            commit: LogIndex(commit),
        })
    }

    proptest! {
        #[test]
        fn matches_bincode(
            reset in prop::option::of(meta()),
            hs in prop::option::of(hard_state()),
            entries in prop::collection::vec(entry(), 0..6),
        ) {
            let record = RecordRef { reset, hard_state: hs, entries: &entries };
            prop_assert_eq!(hand_bytes(&record), serde_bytes(&record));
        }
    }

    #[test]
    fn matches_bincode_for_a_payload_with_a_long_length() {
        let entries = vec![Entry {
            term: Term(3),
            index: LogIndex(70_000),
            kind: EntryKind::Normal(vec![7; 70_000].into()),
        }];
        let record = RecordRef {
            reset: None,
            hard_state: None,
            entries: &entries,
        };
        assert_eq!(hand_bytes(&record), serde_bytes(&record));
    }
}
