//! The in-memory view of the replicated log: a snapshot boundary plus the entries after it.
//!
//! The log tracks two positions besides its bounds: `stable`, the last index known to be on
//! disk, and `persist_from`, the first index not yet handed out for persistence. Entries in
//! `persist_from..=last` go into the next `Ready`.

use crate::chunked_deque::ChunkedDeque;
use crate::types::{Entry, LogIndex, SnapshotMeta, Term};

/// The log of one replica.
#[derive(Debug, Clone)]
pub(crate) struct RaftLog {
    snapshot: SnapshotMeta,
    /// Chunked rather than one `VecDeque`: see `chunked_deque`.
    entries: ChunkedDeque<Entry>,
    /// Last index known to be durable and still in the log (see `stable_point`).
    stable: LogIndex,
    /// Term of the entry at `stable` (kept, since that entry may be compacted away).
    stable_term: Term,
    /// First index not yet handed out in a `Ready`.
    persist_from: LogIndex,
    /// The log a leader's snapshot replaced, as runs of one term (first index, term) and its
    /// last index: receipts for its entries may still arrive, and still count (see
    /// `mark_stable`).
    replaced: (Vec<(LogIndex, Term)>, LogIndex),
}

impl RaftLog {
    /// A log recovered from storage: everything given is already durable.
    pub(crate) fn recovered(snapshot: SnapshotMeta, entries: Vec<Entry>) -> RaftLog {
        for (offset, entry) in entries.iter().enumerate() {
            assert_eq!(
                entry.index.0,
                snapshot.index.0 + 1 + offset as u64,
                "log has a gap"
            );
        }
        let log = RaftLog {
            snapshot,
            entries: entries.into_iter().collect(),
            stable: LogIndex(0),
            stable_term: Term(0),
            persist_from: LogIndex(0),
            replaced: (Vec::new(), LogIndex(0)),
        };
        let last = log.last_index();
        RaftLog {
            stable: last,
            stable_term: log.last_term(),
            persist_from: last.next(),
            ..log
        }
    }

    /// Bytes of the entries held in memory (as [`Entry::size_bytes`] counts them).
    pub(crate) fn entries_bytes(&self) -> u64 {
        self.entries.iter().map(Entry::size_bytes).sum()
    }

    pub(crate) fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot
    }

    pub(crate) fn first_index(&self) -> LogIndex {
        self.snapshot.index.next()
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        LogIndex(self.snapshot.index.0 + self.entries.len() as u64)
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot.term, |e| e.term)
    }

    pub(crate) fn stable(&self) -> LogIndex {
        self.stable
    }

    /// `stable` with the term of its entry.
    pub(crate) fn stable_point(&self) -> (LogIndex, Term) {
        (self.stable, self.stable_term)
    }

    /// Term of the entry at `index`, if known (the snapshot's last entry counts).
    pub(crate) fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.get(index).map(|e| e.term)
    }

    pub(crate) fn get(&self, index: LogIndex) -> Option<&Entry> {
        if index < self.first_index() {
            return None;
        }
        self.entries.get((index.0 - self.first_index().0) as usize)
    }

    /// Clones the entries in `from..=to`, stopping after `max_count` entries or once
    /// `max_bytes` is reached (at least one entry is returned if the range is not empty).
    pub(crate) fn slice(
        &self,
        from: LogIndex,
        to: LogIndex,
        max_count: usize,
        max_bytes: u64,
    ) -> Vec<Entry> {
        assert!(
            from >= self.first_index(),
            "slice from {from} below first index"
        );
        let to = to.min(self.last_index());
        if from > to {
            return Vec::new();
        }
        let start = (from.0 - self.first_index().0) as usize;
        let count = ((to.0 - from.0 + 1) as usize).min(max_count);
        let mut out = Vec::with_capacity(count);
        let mut bytes = 0u64;
        for entry in self.entries.slices(start, start + count).flatten() {
            bytes += entry.size_bytes();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(entry.clone());
        }
        out
    }

    /// Appends one entry at `last + 1`.
    pub(crate) fn push(&mut self, entry: Entry) {
        assert_eq!(
            entry.index,
            self.last_index().next(),
            "append must be contiguous"
        );
        assert!(
            entry.term >= self.last_term(),
            "terms in the log must not decrease"
        );
        self.entries.push_back(entry);
    }

    /// Removes every entry after `index`.
    pub(crate) fn truncate_after(&mut self, index: LogIndex) {
        assert!(
            index >= self.snapshot.index,
            "cannot truncate into the snapshot"
        );
        let keep = (index.0 - self.snapshot.index.0) as usize;
        self.entries.truncate(keep);
        if self.stable > index {
            // The durable entries after `index` are about to be replaced: no longer promised.
            self.stable = index;
            self.stable_term = self.term(index).expect("truncation point is in the log");
        }
        self.persist_from = self.persist_from.min(index.next());
    }

    /// True if a candidate whose log ends at (`index`, `term`) is at least as up to date as
    /// this log (Raft §5.4.1).
    pub(crate) fn is_up_to_date(&self, index: LogIndex, term: Term) -> bool {
        term > self.last_term() || (term == self.last_term() && index >= self.last_index())
    }

    /// Last index at or below `at` whose entry has term `term`, if any.
    pub(crate) fn last_index_of_term(&self, term: Term, at: LogIndex) -> Option<LogIndex> {
        let mut index = at.min(self.last_index());
        loop {
            let t = self.term(index)?;
            if t == term {
                return Some(index);
            }
            if t < term || index <= self.first_index() {
                return None;
            }
            index = index.prev();
        }
    }

    /// First index of the run of entries that share the term of the entry at `index`.
    pub(crate) fn first_index_of_term_at(&self, index: LogIndex) -> LogIndex {
        let term = self.term(index).expect("index is in the log");
        let mut first = index;
        while first > self.first_index() && self.term(first.prev()) == Some(term) {
            first = first.prev();
        }
        first
    }

    /// Entries to hand out for persistence, advancing `persist_from`.
    pub(crate) fn take_unpersisted(&mut self) -> Vec<Entry> {
        let from = self.persist_from.max(self.first_index());
        let last = self.last_index();
        self.persist_from = last.next();
        if from > last {
            return Vec::new();
        }
        self.slice(from, last, usize::MAX, u64::MAX)
    }

    pub(crate) fn has_unpersisted(&self) -> bool {
        self.persist_from <= self.last_index()
    }

    /// Records that everything up to `index` (with term `term`) is durable.
    pub(crate) fn mark_stable(&mut self, index: LogIndex, term: Term) {
        // At the same index a new term replaces an old one (a snapshot over a divergent log).
        let newer = index > self.stable || (index == self.stable && term != self.stable_term);
        // An entry of the log a leader's snapshot replaced, written before the install: until
        // the install is durable a crash leaves that log, and afterwards the snapshot covers it.
        let replaced = index <= self.snapshot.index && self.replaced_term(index) == Some(term);
        if newer && (self.term(index) == Some(term) || replaced) {
            self.stable = index;
            self.stable_term = term;
        }
    }

    /// Term of the entry at `index` in the log the last restored snapshot replaced.
    fn replaced_term(&self, index: LogIndex) -> Option<Term> {
        let (runs, last) = &self.replaced;
        if index > *last {
            return None;
        }
        let run = runs.partition_point(|&(first, _)| first <= index);
        run.checked_sub(1).map(|i| runs[i].1)
    }

    /// Drops entries up to `meta.index`, which a snapshot now covers.
    pub(crate) fn compact(&mut self, meta: SnapshotMeta) {
        assert!(meta.index <= self.stable, "compacting past the durable log");
        assert_eq!(
            self.term(meta.index),
            Some(meta.term),
            "snapshot term mismatch"
        );
        if meta.index <= self.snapshot.index {
            return;
        }
        let drop = (meta.index.0 - self.snapshot.index.0) as usize;
        self.entries.drop_front(drop);
        self.snapshot = meta;
    }

    /// Replaces the whole log with a snapshot received from the leader.
    ///
    /// The snapshot is not durable until its `Ready` is persisted. Until then a crash leaves
    /// either the old log or the snapshot, so the durable point stays where it was, capped at
    /// the snapshot's index: up to there the old log is on disk or the snapshot covers it,
    /// while old entries beyond it are about to be dropped.
    pub(crate) fn restore(&mut self, meta: SnapshotMeta) {
        let mut runs: Vec<(LogIndex, Term)> = Vec::new();
        for entry in self.entries.iter() {
            if runs.last().is_none_or(|&(_, term)| term != entry.term) {
                runs.push((entry.index, entry.term));
            }
        }
        self.replaced = (runs, self.last_index());
        if self.stable > meta.index {
            self.stable_term = self.term(meta.index).expect("below the durable point");
            self.stable = meta.index;
        }
        self.entries.clear();
        self.snapshot = meta;
        self.persist_from = meta.index.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryKind;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            kind: EntryKind::Normal(vec![index as u8].into()),
        }
    }

    fn log(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, t)| entry(i as u64 + 1, *t))
            .collect();
        RaftLog::recovered(SnapshotMeta::default(), entries)
    }

    #[test]
    fn bounds_and_terms() {
        let l = log(&[1, 1, 2, 3]);
        assert_eq!(l.first_index(), LogIndex(1));
        assert_eq!(l.last_index(), LogIndex(4));
        assert_eq!(l.term(LogIndex(0)), Some(Term(0)));
        assert_eq!(l.term(LogIndex(3)), Some(Term(2)));
        assert_eq!(l.term(LogIndex(5)), None);
    }

    #[test]
    fn backtracking_helpers() {
        let l = log(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(
            l.last_index_of_term(Term(2), LogIndex(6)),
            Some(LogIndex(5))
        );
        assert_eq!(l.last_index_of_term(Term(3), LogIndex(6)), None);
        assert_eq!(l.first_index_of_term_at(LogIndex(5)), LogIndex(3));
        assert_eq!(l.first_index_of_term_at(LogIndex(1)), LogIndex(1));
    }

    #[test]
    fn compaction_keeps_the_tail() {
        let mut l = log(&[1, 1, 2, 2]);
        l.compact(SnapshotMeta {
            index: LogIndex(2),
            term: Term(1),
        });
        assert_eq!(l.first_index(), LogIndex(3));
        assert_eq!(l.term(LogIndex(2)), Some(Term(1)));
        assert_eq!(l.term(LogIndex(1)), None);
        assert_eq!(l.slice(LogIndex(3), LogIndex(4), 10, 1000).len(), 2);
    }

    #[test]
    fn slice_respects_limits_but_returns_one_entry() {
        let l = log(&[1, 1, 1]);
        assert_eq!(l.slice(LogIndex(1), LogIndex(3), 2, 1000).len(), 2);
        assert_eq!(l.slice(LogIndex(1), LogIndex(3), 10, 1).len(), 1);
    }

    #[test]
    fn truncation_rewinds_persistence() {
        let mut l = log(&[1, 1, 1]);
        l.truncate_after(LogIndex(1));
        assert_eq!(l.stable(), LogIndex(1));
        l.push(entry(2, 2));
        assert_eq!(l.take_unpersisted(), vec![entry(2, 2)]);
        assert!(!l.has_unpersisted());
    }
}
