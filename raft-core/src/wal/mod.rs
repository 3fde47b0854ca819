//! The write-ahead log: hard state, entries and snapshots on a [`Disk`].
//!
//! # Layout
//!
//! * `snapshot`: the latest snapshot, checksummed, replaced atomically (see `snapshot_file`).
//! * `wal-<seq>.log`: segments of framed records (see `frame`), numbered in write order. Each
//!   record holds an optional log reset (after a snapshot from the leader was installed), an
//!   optional hard state and a run of entries. Replaying the records in order rebuilds the
//!   log: an entry at or below the current last index replaces that suffix (a conflicting
//!   suffix was overwritten), and the last hard state wins. A new segment starts with the
//!   current hard state, so whole old segments can be deleted once a snapshot covers them.
//!
//! A log reset always opens a fresh segment (it is the first record after the hard state), and
//! every earlier segment is deleted once the reset is synced. Deleting only the older segments
//! would leave the pre-reset records of the reset's own segment behind, and after a crash they
//! would be replayed against the new snapshot without the entries they follow: a gap in the
//! entry indexes on a healthy disk. Before the reset is durable, the old segments are all still
//! there and are replayed as a whole against the new snapshot file (see the recovery rule).
//!
//! # Durability
//!
//! [`Storage::write`] appends a `Ready`'s record to the page cache; [`Storage::sync`] syncs it
//! and only then issues the receipt, so entries, term and vote are durable before any vote or
//! acknowledgement that depends on them leaves. A record that only moves
//! the commit index is written without a sync (the commit index can always be relearned); a
//! segment is synced when it is sealed, so only the last segment can hold unsynced bytes.
//!
//! Names are durable only after a directory sync ([`Disk::sync_dir`], see the [`Disk`]
//! contract), so the WAL syncs the directory at exactly the points where a later step relies
//! on a name:
//!
//! * after starting a segment (its first record synced), before any record in it is written:
//!   a receipt for a record in a segment whose name can vanish would promise nothing;
//! * after the snapshot file is written and synced, before the log it covers is deleted or a
//!   log reset that depends on it is written;
//! * after every deletion of a segment, before the next one: the directory promises no order
//!   among unsynced changes, and recovery needs the surviving old segments to be contiguous.
//!
//! # Recovery rule
//!
//! Only the *last* segment may end in a torn write: a final record whose header or payload is
//! incomplete (the file ends inside it) is cut off, because a crash during an unsynced append
//! produces exactly that. Everything else is refused with [`WalError::Corrupt`] naming the file
//! and the byte offset: a checksum mismatch or a damaged length field anywhere (even in the
//! last record, since a torn write leaves a prefix, not garbage), an incomplete record in an
//! earlier segment (segments are synced before the next one starts), an undecodable payload,
//! or a gap in the entry indexes. Such damage means acknowledged data may be gone, and
//! truncating it silently could make this replica forget a vote or a committed entry.
//!
//! If the log's entry at the snapshot's index has a different term than the snapshot (a crash
//! between writing an installed snapshot and its log reset record), the log after it does not
//! extend the snapshot and is dropped.
//!
//! Frames are at most 64 MiB, so a damaged length can never make recovery allocate without
//! bound.

mod frame;
mod record_encoding;
mod replay;
mod snapshot_file;

use crate::config::Bugs;
use crate::error::Error;
use crate::io::{Disk, Storage};
use crate::ready::{PersistReceipt, Ready, Ticket};
use crate::types::{Entry, HardState, LogIndex, Snapshot, SnapshotMeta};
use serde::{Deserialize, Serialize};

pub use replay::Recovered;

/// Damage found in the WAL or the snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalError {
    /// Data that cannot be a torn write is damaged.
    #[error("corrupt data in {file} at offset {offset}: {reason}")]
    Corrupt {
        /// File name.
        file: String,
        /// Byte offset of the damaged record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// One WAL record, as written (see `record_encoding`).
#[derive(Serialize)]
struct RecordRef<'a> {
    reset: Option<SnapshotMeta>,
    hard_state: Option<HardState>,
    entries: &'a [Entry],
}

/// One WAL record, as read back.
#[derive(Deserialize)]
pub(crate) struct Record {
    pub(crate) reset: Option<SnapshotMeta>,
    pub(crate) hard_state: Option<HardState>,
    pub(crate) entries: Vec<Entry>,
}

/// Entries per record; keeps every record well below the frame limit.
const RECORD_PAYLOAD_TARGET_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) seq: u64,
    pub(crate) bytes: u64,
    /// Highest index of a live entry written to the segment: entries a later segment's first
    /// record replaced (a deposed leader's suffix, overwritten by the new leader's) no longer
    /// count, so a snapshot past the replacement covers the segment.
    pub(crate) max_index: LogIndex,
    /// The first index of the segment's first record with entries, if it has one.
    pub(crate) first_index: Option<LogIndex>,
}

impl Segment {
    /// A fresh segment with nothing written yet.
    pub(crate) fn new(seq: u64) -> Segment {
        Segment {
            seq,
            bytes: 0,
            max_index: LogIndex(0),
            first_index: None,
        }
    }

    /// Notes a record with entries `first..=last` (or none), as written or as replayed: the
    /// segment's first such record caps the segments before it (see `superseded_from`).
    pub(crate) fn note_entries(&mut self, earlier: &mut [Segment], entries: &[Entry]) {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return;
        };
        if self.first_index.is_none() {
            self.first_index = Some(first.index);
            for segment in earlier {
                segment.superseded_from(first.index);
            }
        }
        self.max_index = self.max_index.max(last.index);
    }

    /// Whether recovery can start with this segment after a snapshot at `index`: its first
    /// record with entries (if any) continues the snapshot's log, not past it. A segment
    /// whose entries a later segment replaced may begin past it, with dead entries.
    fn may_follow_snapshot_at(&self, index: LogIndex) -> bool {
        self.first_index.is_none_or(|first| first <= index.next())
    }

    /// A later segment whose first record with entries starts at `first` replaced every
    /// entry of this one from `first` on. Only a segment's *first* such record may cap the
    /// segments before it (`Wal::write` starts a segment for a write that replaces entries):
    /// recovery replays the remaining segments against the snapshot, so the first one left
    /// after compaction must not begin with a dead record past the snapshot, and one that
    /// begins with the replacing record does not. Sound for deletion because segments are
    /// deleted only by `save_snapshot`, after sealing (syncing) the current segment, so the
    /// replacing record is durable by then.
    pub(crate) fn superseded_from(&mut self, first: LogIndex) {
        assert!(first.0 >= 1, "entries start at index 1");
        self.max_index = self.max_index.min(LogIndex(first.0 - 1));
    }
}

pub(crate) fn segment_name(seq: u64) -> String {
    format!("wal-{seq:020}.log")
}

/// The durable storage of one replica.
pub struct Wal<D: Disk> {
    disk: D,
    segments: Vec<Segment>,
    segment_bytes_target: u64,
    hard_state: HardState,
    bugs: Bugs,
    buf: Vec<u8>,
    /// Name of the last segment, the one appended to.
    current_name: String,
    /// Set by recovery when it dropped a log tail that diverges from the snapshot (an install
    /// whose log reset never became durable): `open` then writes that reset.
    reset_after_open: Option<SnapshotMeta>,
}

impl<D: Disk> Wal<D> {
    /// Opens the WAL on `disk` and recovers its content (see the module doc for the rule).
    ///
    /// # Errors
    /// A disk failure, or [`WalError::Corrupt`] naming the damaged file and offset.
    pub fn open(
        disk: D,
        segment_bytes_target: u64,
        bugs: Bugs,
    ) -> Result<(Wal<D>, Recovered), Error> {
        let mut wal = Wal {
            disk,
            segments: Vec::new(),
            segment_bytes_target: segment_bytes_target.max(4096),
            hard_state: HardState::default(),
            bugs,
            buf: Vec::new(),
            current_name: String::new(),
            reset_after_open: None,
        };
        let recovered = wal.recover()?;
        wal.hard_state = recovered.hard_state;
        match wal.segments.last() {
            Some(last) => wal.current_name = segment_name(last.seq),
            None => wal.start_segment(1)?,
        }
        if let Some(meta) = wal.reset_after_open.take() {
            tracing::info!(index = %meta.index, "writing the log reset of an interrupted install");
            wal.start_segment(wal.current().seq + 1)?;
            wal.write_records(Some(meta), None, &[])?;
            wal.disk.sync(&wal.current_name)?;
            wal.drop_segments_before_current()?;
        }
        Ok((wal, recovered))
    }

    /// Total bytes of all log segments.
    pub fn log_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// The disk.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Gives the disk back.
    pub fn into_disk(self) -> D {
        self.disk
    }

    /// Makes a `Ready`'s snapshot, hard state and entries durable at once: [`Storage::write`]
    /// then [`Storage::sync`].
    ///
    /// # Errors
    /// A disk failure. The caller must then stop: what is durable is unknown.
    pub fn persist(&mut self, rd: &Ready) -> Result<PersistReceipt, Error> {
        let ticket = self.write(rd)?;
        self.sync(ticket)
    }

    /// Installs a leader's snapshot: the snapshot file first, synced, then a log reset that
    /// opens a fresh segment, synced, then the old segments go. Every step is durable before
    /// the next one depends on it, so a crash between any two leaves a state recovery accepts
    /// (see the module doc).
    fn install(&mut self, snapshot: &Snapshot, rd: &Ready) -> Result<(), Error> {
        snapshot_file::write(&mut self.disk, snapshot)?;
        // BUG (planted, `snapshot_install_before_sync`): the reset and the deletions below
        // may become durable while the snapshot file is still only in the page cache.
        if !self.bugs.snapshot_install_before_sync {
            snapshot_file::sync(&mut self.disk)?;
        }
        // A log reset starts a fresh segment so that, once it is durable, every record written
        // before it can be deleted together: a surviving pre-reset record would be replayed
        // against the new snapshot without the older records it follows, leaving a gap.
        self.start_segment(self.current().seq + 1)?;
        self.write_records(Some(snapshot.meta), rd.hard_state().copied(), rd.entries())?;
        if let Some(hs) = rd.hard_state() {
            self.hard_state = *hs;
        }
        self.disk.sync(&self.current_name)?;
        self.drop_segments_before_current()
    }

    fn current(&self) -> &Segment {
        self.segments
            .last()
            .expect("there is always a current segment")
    }

    fn write_records(
        &mut self,
        reset: Option<SnapshotMeta>,
        hard_state: Option<HardState>,
        entries: &[Entry],
    ) -> Result<(), Error> {
        self.buf.clear();
        let mut start = 0;
        let mut first = true;
        while first || start < entries.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < entries.len() && (end == start || bytes < RECORD_PAYLOAD_TARGET_BYTES) {
                bytes += entries[end].size_bytes();
                end += 1;
            }
            let record = RecordRef {
                reset: if first { reset } else { None },
                hard_state: if first { hard_state } else { None },
                entries: &entries[start..end],
            };
            frame::encode_frame_with(&mut self.buf, |buf| {
                record_encoding::encode_record(buf, &record)
            });
            first = false;
            start = end;
        }
        self.disk.append(&self.current_name, &self.buf)?;
        let (segment, earlier) = self.segments.split_last_mut().expect("current segment");
        segment.note_entries(earlier, entries);
        segment.bytes += self.buf.len() as u64;
        if let Some(meta) = reset {
            segment.max_index = segment.max_index.max(meta.index);
        }
        Ok(())
    }

    /// Seals the current segment (syncing it: commit-only hard state records are written
    /// without a sync, and recovery relies on every sealed segment being complete) and starts a
    /// new one whose first record is the current hard state, synced.
    fn start_segment(&mut self, seq: u64) -> Result<(), Error> {
        if !self.segments.is_empty() {
            self.disk.sync(&self.current_name)?;
        }
        self.segments.push(Segment::new(seq));
        self.current_name = segment_name(seq);
        tracing::debug!(seq, "starting segment");
        let hard_state = self.hard_state;
        self.write_records(None, Some(hard_state), &[])?;
        self.disk.sync(&self.current_name)?;
        // BUG (planted, `new_segment_without_dir_sync`): the segment's name is left to the
        // next directory sync, whenever that is, so a crash can lose the whole segment.
        if !self.bugs.new_segment_without_dir_sync {
            self.disk.sync_dir()?;
        }
        Ok(())
    }

    /// Deletes one segment and makes the deletion durable before the caller deletes another.
    fn remove_segment(&mut self, seq: u64) -> Result<(), Error> {
        self.disk.remove(&segment_name(seq))?;
        self.disk.sync_dir()?;
        Ok(())
    }

    /// Deletes the segments a log reset in the current segment supersedes, newest first: a
    /// crash between two deletions must leave a contiguous run of old segments in front of the
    /// reset (which recovery replays and then discards), never a later segment whose
    /// predecessor is gone, which recovery rightly refuses as a gap (raft seed 506).
    fn drop_segments_before_current(&mut self) -> Result<(), Error> {
        let keep_from = self.segments.len() - 1;
        let superseded: Vec<Segment> = self.segments.drain(..keep_from).collect();
        for segment in superseded.into_iter().rev() {
            tracing::debug!(
                seq = segment.seq,
                "deleting segment superseded by a log reset"
            );
            self.remove_segment(segment.seq)?;
        }
        Ok(())
    }

    /// Writes a snapshot taken locally, then deletes the oldest segments it covers.
    ///
    /// # Errors
    /// A disk failure.
    pub fn save_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        snapshot_file::write(&mut self.disk, snapshot)?;
        snapshot_file::sync(&mut self.disk)?;
        self.start_segment(self.current().seq + 1)?;
        let index = snapshot.meta.index;
        let sealed = &self.segments[..self.segments.len() - 1];
        let mut covered = sealed
            .iter()
            .take_while(|s| s.max_index <= index && s.may_follow_snapshot_at(index))
            .count();
        // A crash between deletions leaves any suffix of the run, followed by the rest: the
        // first segment with entries left must continue the snapshot's log too.
        while covered > 0
            && !self.segments[covered..]
                .iter()
                .find(|s| s.first_index.is_some())
                .is_none_or(|s| s.may_follow_snapshot_at(index))
        {
            covered -= 1;
        }
        // Oldest first, each deletion durable before the next: a crash then leaves a suffix of
        // the covered run, never a gap in front of entries the snapshot does not cover.
        let superseded: Vec<Segment> = self.segments.drain(..covered).collect();
        for segment in superseded {
            let max = segment.max_index;
            tracing::debug!(seq = segment.seq, %max, "deleting covered segment");
            self.remove_segment(segment.seq)?;
        }
        Ok(())
    }
}

impl<D: Disk> Storage for Wal<D> {
    /// Appends one framed record (none if there is nothing to write) to the current segment,
    /// without syncing it. A snapshot install is written and synced here in full (see
    /// `install`), so its ticket needs no further sync.
    fn write(&mut self, rd: &Ready) -> Result<Ticket, Error> {
        let mut ticket = rd.ticket();
        if let Some(snapshot) = rd.snapshot() {
            self.install(snapshot, rd)?;
            ticket.mark_synced();
            return Ok(ticket);
        }
        if rd.nothing_to_persist() {
            return Ok(ticket);
        }
        // Entries that replace written ones (a new leader overwriting a deposed one's suffix)
        // open a segment, so that the segments holding the dead entries can be compacted
        // (`Segment::superseded_from`).
        let replaces = rd
            .entries()
            .first()
            .is_some_and(|first| self.segments.iter().any(|s| s.max_index >= first.index));
        if self.current().bytes >= self.segment_bytes_target
            || (replaces && self.current().first_index.is_some())
        {
            self.start_segment(self.current().seq + 1)?;
        }
        self.write_records(None, rd.hard_state().copied(), rd.entries())?;
        if let Some(hs) = rd.hard_state() {
            self.hard_state = *hs;
        }
        Ok(ticket)
    }

    /// Syncs the current segment: earlier segments were synced when they were sealed, so this
    /// makes every record written so far durable, this ticket's included.
    fn sync(&mut self, ticket: Ticket) -> Result<PersistReceipt, Error> {
        if ticket.needs_sync() {
            self.disk.sync(&self.current_name)?;
        }
        Ok(ticket.into_receipt())
    }
}
