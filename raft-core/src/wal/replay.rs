//! Recovery: load the snapshot, then replay the segments in order.

use super::frame::{self, Frame};
use super::{segment_name, snapshot_file, Record, Segment, Wal, WalError};
use crate::error::Error;
use crate::io::Disk;
use crate::message::bincode_config;
use crate::types::{Entry, HardState, LogIndex, Snapshot, SnapshotMeta, Term};

/// What a replica finds on disk when it starts.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The last durable hard state.
    pub hard_state: HardState,
    /// The snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// Entries following the snapshot, contiguous.
    pub entries: Vec<Entry>,
    /// Bytes cut off as a torn tail (0 if none).
    pub torn_bytes: u64,
}

/// Replay state.
struct Replay {
    base: SnapshotMeta,
    entries: Vec<Entry>,
    hard_state: HardState,
    /// Term of the entry at `base.index` seen in the log, to check it agrees with the snapshot.
    term_at_base: Option<Term>,
}

impl Replay {
    fn last_index(&self) -> LogIndex {
        LogIndex(self.base.index.0 + self.entries.len() as u64)
    }

    /// Applies one record; `Err` describes an inconsistency.
    fn apply(&mut self, record: Record) -> Result<(), &'static str> {
        if let Some(meta) = record.reset {
            // The log restarted after an installed snapshot; the snapshot file is written
            // first, so it can never be older than a reset record.
            if meta.index > self.base.index {
                return Err("log reset beyond the snapshot file");
            }
            self.entries.clear();
            self.term_at_base = (meta.index == self.base.index).then_some(meta.term);
        }
        if let Some(hs) = record.hard_state {
            self.hard_state = hs;
        }
        for entry in record.entries {
            self.push(entry)?;
        }
        Ok(())
    }

    /// Replays one entry: it replaces whatever the log held from its index on.
    fn push(&mut self, entry: Entry) -> Result<(), &'static str> {
        if entry.index <= self.base.index {
            self.entries.clear();
            self.term_at_base = (entry.index == self.base.index).then_some(entry.term);
            return Ok(());
        }
        if entry.index > self.last_index().next() {
            return Err("gap in the entry indexes");
        }
        let keep = (entry.index.0 - self.base.index.0 - 1) as usize;
        self.entries.truncate(keep);
        let previous_term = self.entries.last().map(|e| e.term).or(self.term_at_base);
        if previous_term.is_some_and(|term| term > entry.term) {
            return Err("entry terms decrease");
        }
        self.entries.push(entry);
        Ok(())
    }
}

impl<D: Disk> Wal<D> {
    pub(super) fn recover(&mut self) -> Result<Recovered, Error> {
        let snapshot = snapshot_file::read(&mut self.disk)?;
        let base = snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
        let mut replay = Replay {
            base,
            entries: Vec::new(),
            hard_state: HardState::default(),
            term_at_base: None,
        };
        let seqs = self.segment_seqs()?;
        let mut torn_bytes = 0;
        for (position, seq) in seqs.iter().enumerate() {
            let is_last = position + 1 == seqs.len();
            let (segment, torn, stop) = self.replay_segment(*seq, is_last, &mut replay)?;
            torn_bytes += torn;
            self.segments.push(segment);
            if stop {
                // Planted bug path: later segments were dropped with the "torn" tail.
                for later in &seqs[position + 1..] {
                    self.disk.remove(&segment_name(*later))?;
                    self.disk.sync_dir()?;
                }
                break;
            }
        }
        let mut entries = replay.entries;
        if replay.term_at_base.is_some_and(|t| t != base.term) {
            // The log's entry at the snapshot point disagrees with the snapshot, so the entries
            // after it do not extend the snapshot's log (Log Matching): drop them.
            tracing::warn!(index = %base.index, "log diverges from the snapshot; dropping tail");
            entries.clear();
            // Finish the interrupted install: without a durable reset the next recovery
            // would replay the old tail again, and drop whatever was appended after it now.
            self.reset_after_open = Some(base);
        }
        let mut hard_state = replay.hard_state;
        hard_state.term = hard_state.term.max(base.term);
        Ok(Recovered {
            hard_state,
            snapshot,
            entries,
            torn_bytes,
        })
    }

    fn segment_seqs(&mut self) -> Result<Vec<u64>, Error> {
        let mut seqs = Vec::new();
        for name in self.disk.list()? {
            let Some(number) = name
                .strip_prefix("wal-")
                .and_then(|n| n.strip_suffix(".log"))
            else {
                continue;
            };
            match number.parse::<u64>() {
                Ok(seq) if segment_name(seq) == name => seqs.push(seq),
                _ => continue,
            }
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Replays one segment. Returns the segment, the torn bytes cut off, and whether recovery
    /// must stop after it.
    fn replay_segment(
        &mut self,
        seq: u64,
        is_last: bool,
        replay: &mut Replay,
    ) -> Result<(Segment, u64, bool), Error> {
        let name = segment_name(seq);
        let len = self.disk.len(&name)?;
        let bytes = self
            .disk
            .read(&name, 0, usize::try_from(len).unwrap_or(usize::MAX))?;
        let mut segment = Segment::new(seq);
        let mut offset = 0usize;
        while offset < bytes.len() {
            let corrupt = |reason: &str| -> Error {
                WalError::Corrupt {
                    file: name.clone(),
                    offset: offset as u64,
                    reason: reason.to_string(),
                }
                .into()
            };
            let (payload, end) = match frame::decode_frame(&bytes, offset) {
                Frame::Record { payload, end } => (payload, end),
                Frame::Incomplete if is_last => {
                    tracing::warn!(file = %name, offset, "truncating torn tail");
                    return self.cut(segment, offset, len, false);
                }
                Frame::Incomplete => return Err(corrupt("incomplete record in a sealed segment")),
                Frame::Corrupt(reason) => {
                    if self.bugs.mid_log_corruption_as_torn_tail {
                        // BUG (planted, `mid_log_corruption_as_torn_tail`): corruption is
                        // treated as a torn tail and everything after it is discarded.
                        return self.cut(segment, offset, len, true);
                    }
                    return Err(corrupt(reason));
                }
            };
            let (record, used) =
                bincode::serde::decode_from_slice::<Record, _>(payload, bincode_config())
                    .map_err(|e| corrupt(&format!("undecodable record: {e}")))?;
            if used != payload.len() {
                return Err(corrupt("trailing bytes in record"));
            }
            // As when writing: the segment's first record with entries replaces what the
            // earlier segments held from its first index on.
            segment.note_entries(&mut self.segments, &record.entries);
            // As when writing: a reset counts as reaching its snapshot's index.
            if let Some(meta) = record.reset {
                segment.max_index = segment.max_index.max(meta.index);
            }
            replay.apply(record).map_err(corrupt)?;
            offset = end;
        }
        segment.bytes = bytes.len() as u64;
        Ok((segment, 0, false))
    }

    fn cut(
        &mut self,
        mut segment: Segment,
        offset: usize,
        len: u64,
        stop: bool,
    ) -> Result<(Segment, u64, bool), Error> {
        let name = segment_name(segment.seq);
        // BUG (planted, `torn_tail_not_truncated`): the torn bytes stay in the file.
        if !self.bugs.torn_tail_not_truncated || stop {
            self.disk.truncate(&name, offset as u64)?;
            self.disk.sync(&name)?;
        }
        segment.bytes = offset as u64;
        Ok((segment, len - offset as u64, stop))
    }
}
