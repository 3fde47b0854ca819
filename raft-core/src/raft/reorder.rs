//! A follower's buffer of AppendEntries that arrived ahead of a gap in its log.
//!
//! A leader pipelines many appends to a follower. When the network reorders them, an append
//! whose `prev_log_index` lies beyond the follower's log must be rejected, and without this
//! buffer it is also forgotten: every append behind a single late one is refused, and the
//! leader has to send the whole window again once it probes. Under steady reordering with
//! small batches that turns replication into a flood that barely advances (hundreds of
//! messages per committed entry). Keeping the early appends lets the late one, or the
//! leader's probe for the missing index, fill the gap and the follower then takes everything
//! it kept at once.
//!
//! Taking a kept append later is exactly a later delivery of the same message, which the
//! protocol must tolerate anyway, so the buffer changes no safety argument. It only ever
//! holds appends of the current term from the current leader, and it is bounded in count
//! and bytes so a misbehaving sender cannot grow a follower's memory.

use crate::types::{Entry, LogIndex, NodeId, Term};
use std::collections::BTreeMap;

/// One append kept for later, as it arrived.
#[derive(Debug)]
pub(super) struct EarlyAppend {
    pub(super) prev_log_index: LogIndex,
    pub(super) prev_log_term: Term,
    pub(super) entries: Vec<Entry>,
    pub(super) leader_commit: LogIndex,
}

/// Appends from one leader in one term, keyed by `prev_log_index`.
#[derive(Debug, Default)]
pub(super) struct ReorderBuffer {
    /// The leader and term the kept appends came from.
    owner: Option<(NodeId, Term)>,
    appends: BTreeMap<LogIndex, EarlyAppend>,
    bytes: u64,
}

impl ReorderBuffer {
    /// Keeps `append` from `leader` in `term` if it fits within `max_count` appends and
    /// `max_bytes` bytes of entry payload; returns whether it was kept. Appends of another
    /// leader or term replace everything kept so far.
    pub(super) fn keep(
        &mut self,
        leader: NodeId,
        term: Term,
        append: EarlyAppend,
        max_count: usize,
        max_bytes: u64,
    ) -> bool {
        if self.owner != Some((leader, term)) {
            self.clear();
            self.owner = Some((leader, term));
        }
        let bytes = payload_bytes(&append.entries);
        let duplicate = self.appends.contains_key(&append.prev_log_index);
        if duplicate || self.appends.len() >= max_count || self.bytes + bytes > max_bytes {
            return false;
        }
        self.bytes += bytes;
        self.appends.insert(append.prev_log_index, append);
        self.check();
        true
    }

    /// The kept append with the lowest `prev_log_index` if it starts within a log ending at
    /// `last` and is still from `leader` in `term`. Appends that end at or below `commit`
    /// add nothing and are dropped on the way.
    pub(super) fn take_next(
        &mut self,
        leader: NodeId,
        term: Term,
        last: LogIndex,
        commit: LogIndex,
    ) -> Option<EarlyAppend> {
        if self.owner != Some((leader, term)) {
            self.clear();
            return None;
        }
        loop {
            let (&prev, _) = self.appends.first_key_value()?;
            if prev > last {
                return None;
            }
            let append = self
                .appends
                .remove(&prev)
                .expect("the first key is present");
            self.bytes -= payload_bytes(&append.entries);
            self.check();
            let end = LogIndex(prev.0 + append.entries.len() as u64);
            if end > commit {
                return Some(append);
            }
        }
    }

    /// Number of appends kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.appends.len()
    }

    fn clear(&mut self) {
        self.owner = None;
        self.appends.clear();
        self.bytes = 0;
    }

    fn check(&self) {
        debug_assert_eq!(
            self.bytes,
            self.appends
                .values()
                .map(|a| payload_bytes(&a.entries))
                .sum::<u64>(),
            "the byte count follows the kept appends"
        );
    }
}

/// Bytes of payload of `entries`, the measure of the buffer's memory bound.
fn payload_bytes(entries: &[Entry]) -> u64 {
    entries.iter().map(|e| e.data().len() as u64 + 1).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryKind;

    fn append(prev: u64, count: u64) -> EarlyAppend {
        let entries = (prev + 1..=prev + count)
            .map(|i| Entry {
                term: Term(2),
                index: LogIndex(i),
                kind: EntryKind::Normal(vec![0; 9].into()),
            })
            .collect();
        EarlyAppend {
            prev_log_index: LogIndex(prev),
            prev_log_term: Term(2),
            entries,
            leader_commit: LogIndex(0),
        }
    }

    const L: NodeId = NodeId(1);

    #[test]
    fn appends_come_back_in_order_once_the_log_reaches_them() {
        let mut b = ReorderBuffer::default();
        assert!(b.keep(L, Term(2), append(7, 1), 8, 1000));
        assert!(b.keep(L, Term(2), append(5, 1), 8, 1000));
        assert!(
            !b.keep(L, Term(2), append(5, 1), 8, 1000),
            "a duplicate is not kept twice"
        );
        assert!(b.take_next(L, Term(2), LogIndex(4), LogIndex(0)).is_none());
        let first = b.take_next(L, Term(2), LogIndex(5), LogIndex(0)).unwrap();
        assert_eq!(first.prev_log_index, LogIndex(5));
        assert!(b.take_next(L, Term(2), LogIndex(6), LogIndex(0)).is_none());
        let second = b.take_next(L, Term(2), LogIndex(7), LogIndex(0)).unwrap();
        assert_eq!(second.prev_log_index, LogIndex(7));
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn another_leader_or_term_discards_what_was_kept() {
        let mut b = ReorderBuffer::default();
        assert!(b.keep(L, Term(2), append(5, 1), 8, 1000));
        assert!(b.take_next(L, Term(3), LogIndex(9), LogIndex(0)).is_none());
        assert_eq!(b.len(), 0);
        assert!(b.keep(L, Term(2), append(5, 1), 8, 1000));
        assert!(b.keep(NodeId(2), Term(2), append(6, 1), 8, 1000));
        assert_eq!(b.len(), 1, "only the new leader's append is left");
    }

    #[test]
    fn the_buffer_is_bounded_and_drops_committed_appends() {
        let mut b = ReorderBuffer::default();
        assert!(b.keep(L, Term(2), append(5, 2), 2, 30));
        assert!(
            !b.keep(L, Term(2), append(9, 2), 2, 30),
            "over the byte bound"
        );
        assert!(b.keep(L, Term(2), append(9, 1), 2, 30));
        assert!(
            !b.keep(L, Term(2), append(11, 1), 2, 30),
            "over the count bound"
        );
        // Entries 6 and 7 are committed already: that append is dropped, the next returned.
        let next = b.take_next(L, Term(2), LogIndex(9), LogIndex(7)).unwrap();
        assert_eq!(next.prev_log_index, LogIndex(9));
    }
}
