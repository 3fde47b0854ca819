//! A per-node simulated disk that survives crashes and injects storage faults.
//!
//! madsim's own file system keeps unsynced writes across a kill and has no faults, so the
//! simulator brings its own. Each file keeps its *durable* content (as of the last successful
//! `sync`) and the list of operations applied since. A crash replays a [`CrashLoss`]-chosen part
//! of that list onto the durable content:
//!
//! - [`CrashLoss::LoseAll`]: every unsynced operation is lost (a strict page cache);
//! - [`CrashLoss::KeepAll`]: every unsynced operation survives (the OS flushed in time);
//! - [`CrashLoss::TornPrefix`]: a random prefix of the operations survives and, if the next one
//!   is an append, a random prefix of its bytes too (a torn write).
//!
//! `write_atomic` is all-or-nothing, like write-temp-then-rename.
//!
//! **Names are durable only after a directory sync**, as on a POSIX file system and as the
//! `raft_core::Disk` contract says. Creating a file (the first append to a missing name), the
//! replacement a `write_atomic` makes (at the `sync` that makes its content durable: the
//! weakest implementation renames only then) and a removal are directory changes; until
//! `sync_dir` each is remembered with the state its name had before. A crash undoes them
//! ([`CrashLoss::LoseAll`]), keeps them ([`CrashLoss::KeepAll`]) or undoes each one with
//! probability 1/2 ([`CrashLoss::TornPrefix`]: the directory promises no order), before the
//! unsynced content is dealt with: a created file vanishes although its bytes were synced, a
//! replaced file comes back with its old content, a removed file comes back. Every
//! `sync_dir` is a crash point (the process dies just before it), like every removal.
//!
//! Optional faults, drawn per operation on the nodes named in [`DiskFaults::faulty_nodes`]:
//!
//! - latent corruption: a bit that rots in a file's synced content (applied at a crash), or a
//!   bit flipped in the bytes a read returns. Corruption never touches the last append of a
//!   file, nor files written with `write_atomic`: a damaged final record is indistinguishable
//!   from a torn write, which a WAL rightly discards, and discarding an acknowledged record is
//!   data loss no protocol without repair can survive. Corruption is therefore always *mid-log*
//!   where a correct WAL can tell it from a torn tail and must refuse to start;
//! - read and write errors (`DiskError::Io`), leaving the file unchanged;
//! - fsync failure: `sync` returns an error and nothing new becomes durable (the unsynced
//!   operations stay pending and may still be lost by a crash);
//! - a slow disk: each fsync takes much longer (up to [`DiskFaults::sync_latency_max`] more).
//!
//! **Fsync takes time.** A write lands in the page cache at once; an fsync the node asks for
//! completes only after a latency drawn by [`DiskState::draw_sync_latency`] (every disk has one,
//! a slow disk a much longer one). The node host delivers the completion to the node as an event,
//! and only then does the node call `sync` and release what waited for it, so a crash can land
//! between a write and its fsync's completion and lose exactly what was not synced.
//!
//! **Fault budget.** Raft with a checksummed log tolerates storage faults on at most
//! `f = (n - 1) / 2` nodes: a node whose disk lies either notices (checksum or I/O error) and
//! stops, which is a crash-stop failure, or - with a planted bug - goes on with less data than it
//! acknowledged. A committed entry may live on exactly `f + 1` nodes, so faults on more than `f`
//! disks could destroy it with no protocol at fault, and such a failure would be a false alarm.
//! [`DiskFaults::draw`] therefore never puts faults on more than `f` nodes.

use crate::config::{stream_rng, Stream};
use raft_core::{DiskError, NodeId};
use rand::rngs::SmallRng;
use rand::Rng;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// What a crash does to writes that were not synced yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashLoss {
    /// Unsynced writes all survive.
    KeepAll,
    /// Unsynced writes are all lost.
    LoseAll,
    /// A prefix of the unsynced writes survives, the last one possibly torn.
    TornPrefix,
}

/// Fault rates for the disks of the faulty nodes.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DiskFaults {
    /// Nodes whose disks misbehave; never more than `(n - 1) / 2` of them.
    pub faulty_nodes: Vec<NodeId>,
    /// Probability, per crash and file, that one bit of the file's synced content rots.
    pub rot: f64,
    /// Probability that a read returns one flipped bit.
    pub read_flip: f64,
    /// Probability that a read or write fails with an I/O error.
    pub io_error: f64,
    /// Probability that a `sync` fails.
    pub sync_error: f64,
    /// Largest simulated latency of one `sync`; zero for a fast disk.
    pub sync_latency_max: Duration,
}

impl DiskFaults {
    /// Draws the disk faults for a cluster; with `enabled == false` every disk is perfect.
    pub fn draw(rng: &mut SmallRng, enabled: bool, ids: &[NodeId]) -> DiskFaults {
        if !enabled {
            return DiskFaults::default();
        }
        let budget = (ids.len() - 1) / 2;
        let count = rng.gen_range(1..=budget);
        let mut pool = ids.to_vec();
        let mut faulty_nodes: Vec<NodeId> = (0..count)
            .map(|_| pool.remove(rng.gen_range(0..pool.len())))
            .collect();
        faulty_nodes.sort();
        let mut rate = |max: f64| {
            if rng.gen_bool(0.5) {
                rng.gen_range(0.0..max)
            } else {
                0.0
            }
        };
        let faults = DiskFaults {
            rot: rate(0.6),
            read_flip: rate(0.002),
            io_error: rate(0.01),
            sync_error: rate(0.02),
            sync_latency_max: Duration::from_millis(rng.gen_range(0..20)),
            faulty_nodes,
        };
        assert!(
            faults.faulty_nodes.len() <= budget,
            "disk fault budget exceeded"
        );
        faults
    }

    /// The fault rates for one node, or `None` if its disk is perfect.
    pub fn for_node(&self, id: NodeId) -> Option<DiskFaults> {
        self.faulty_nodes.contains(&id).then(|| self.clone())
    }
}

impl fmt::Display for DiskFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.faulty_nodes.is_empty() {
            return write!(f, "no faults");
        }
        let nodes: Vec<String> = self
            .faulty_nodes
            .iter()
            .map(|id| format!("n{id}"))
            .collect();
        write!(
            f,
            "faults on [{}]: rot {:.4}, read flip {:.4}, io error {:.4}, sync error \
             {:.4}, sync latency up to {:?}",
            nodes.join(", "),
            self.rot,
            self.read_flip,
            self.io_error,
            self.sync_error,
            self.sync_latency_max
        )
    }
}

/// An operation applied to a file but not yet synced.
#[derive(Clone, Debug)]
enum Pending {
    Append(Vec<u8>),
    Truncate(u64),
    Replace(Vec<u8>),
}

/// A file's bytes plus where its last append starts: bytes before that mark may be corrupted,
/// bytes after it never are (see the module documentation).
#[derive(Clone, Debug, Default)]
struct Content {
    data: Option<Vec<u8>>,
    mark: Option<u64>,
}

/// One file: durable content plus the unsynced operations on top of it.
#[derive(Clone, Debug, Default)]
struct FileState {
    durable: Content,
    live: Content,
    pending: Vec<Pending>,
}

fn apply(content: &mut Content, op: &Pending) {
    match op {
        Pending::Append(bytes) => {
            let data = content.data.get_or_insert_with(Vec::new);
            content.mark = Some(data.len() as u64);
            data.extend_from_slice(bytes);
        }
        Pending::Truncate(len) => {
            if let Some(data) = &mut content.data {
                data.truncate(*len as usize);
            }
            if content.mark.is_some_and(|m| m >= *len) {
                content.mark = None;
            }
        }
        Pending::Replace(bytes) => {
            *content = Content {
                data: Some(bytes.clone()),
                mark: None,
            }
        }
    }
}

/// Flips one random bit among `bytes[..limit]`.
fn flip(rng: &mut SmallRng, bytes: &mut [u8], limit: usize) {
    let limit = limit.min(bytes.len());
    if limit > 0 {
        let bit = rng.gen_range(0..limit * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
    }
}

/// The state of one node's disk; it outlives the node's process.
#[derive(Debug)]
pub struct DiskState {
    files: BTreeMap<String, FileState>,
    /// Names changed since the last `sync_dir`, each with the file it named before the first
    /// such change (`None`: the name did not exist then); a crash may restore it.
    dir_undo: BTreeMap<String, Option<FileState>>,
    faults: Option<DiskFaults>,
    rng: SmallRng,
    /// Longest fsync latency of this (healthy) disk; slow disks add their own on top.
    sync_latency_base: Duration,
    /// Probability that an operation of a snapshot install or log reset is a crash point.
    crash_points: f64,
    /// Operations left in the current snapshot install or log reset sequence.
    in_sequence: u32,
    /// Set when a crash point was hit: the process must die now (see `take_crash_point`).
    crash_point_hit: bool,
    /// Faults injected so far (errors and flips), for the run summary and crash attribution.
    injected: u64,
}

impl DiskState {
    /// An empty disk for node `id` with the given faults.
    pub fn new(seed: u64, id: NodeId, faults: Option<DiskFaults>) -> DiskState {
        let mut rng = stream_rng(
            seed ^ id.0.wrapping_mul(0xA24B_AED4_963E_E407),
            Stream::Disk,
        );
        let _ = rng.gen::<u64>();
        // Between a fast NVMe device and a slow SATA disk.
        let sync_latency_base = Duration::from_micros(rng.gen_range(200..=3_000));
        DiskState {
            files: BTreeMap::new(),
            dir_undo: BTreeMap::new(),
            faults,
            rng,
            sync_latency_base,
            crash_points: 0.0,
            in_sequence: 0,
            crash_point_hit: false,
            injected: 0,
        }
    }

    /// Makes every disk operation inside a snapshot install or a log reset a point where the
    /// process crashes with probability `p`.
    pub fn set_crash_points(&mut self, p: f64) {
        self.crash_points = p;
    }

    /// True (once) if the last failed operation was a crash point rather than a fault: the
    /// host then crashes the process, which no check may blame on the disk.
    pub fn take_crash_point(&mut self) -> bool {
        std::mem::take(&mut self.crash_point_hit)
    }

    /// Counts an operation against the snapshot/reset sequence and rolls for a crash point.
    ///
    /// A snapshot install or log reset starts with the atomic write of the snapshot file and
    /// goes on with a few syncs and appends (the file's sync and the directory's, sealing the
    /// old segment, the new segment's first records and its directory sync) and the deletion
    /// of old segments; every one of these, and every deletion and directory sync anywhere, is
    /// a crash point. The process dies *before* the operation.
    fn crash_point(
        &mut self,
        op: &str,
        file: &str,
        starts_sequence: bool,
    ) -> Result<(), DiskError> {
        if starts_sequence {
            self.in_sequence = 10;
        }
        let inside = self.in_sequence > 0 || op == "remove" || op == "sync_dir";
        self.in_sequence = self.in_sequence.saturating_sub(1);
        if !inside || self.crash_points <= 0.0 || self.crash_point_hit {
            return Ok(());
        }
        if self.rng.gen_bool(self.crash_points) {
            self.crash_point_hit = true;
            return Err(DiskError::Io(format!("crash point before {op} of {file}")));
        }
        Ok(())
    }

    /// How long the fsync the node just asked for takes: a quarter to all of this disk's base
    /// latency, plus up to the slow-disk latency on a slow disk.
    pub fn draw_sync_latency(&mut self) -> Duration {
        let base = self.sync_latency_base.as_micros() as u64;
        let mut micros = self.rng.gen_range(base / 4..=base);
        let slow = self
            .faults
            .as_ref()
            .map_or(Duration::ZERO, |f| f.sync_latency_max);
        if !slow.is_zero() {
            micros += self.rng.gen_range(0..=slow.as_micros() as u64);
        }
        Duration::from_micros(micros)
    }

    /// Loses unsynced writes according to `loss`, as a power failure would: first directory
    /// changes since the last `sync_dir`, then unsynced content.
    pub fn crash(&mut self, loss: CrashLoss) {
        for (name, before) in std::mem::take(&mut self.dir_undo) {
            let kept = match loss {
                CrashLoss::KeepAll => true,
                CrashLoss::LoseAll => false,
                CrashLoss::TornPrefix => self.rng.gen_bool(0.5),
            };
            if !kept {
                match before {
                    Some(file) => self.files.insert(name, file),
                    None => self.files.remove(&name),
                };
            }
        }
        for file in self.files.values_mut() {
            let pending = std::mem::take(&mut file.pending);
            let keep = match loss {
                CrashLoss::KeepAll => pending.len(),
                CrashLoss::LoseAll => 0,
                CrashLoss::TornPrefix => self.rng.gen_range(0..=pending.len()),
            };
            let mut content = std::mem::take(&mut file.durable);
            for op in &pending[..keep] {
                apply(&mut content, op);
            }
            if loss == CrashLoss::TornPrefix {
                if let Some(Pending::Append(bytes)) = pending.get(keep) {
                    let torn = self.rng.gen_range(0..bytes.len().max(1));
                    let mark = content.mark;
                    apply(&mut content, &Pending::Append(bytes[..torn].to_vec()));
                    // A torn record is not a complete last record: keep the old mark.
                    content.mark = mark;
                }
            }
            let rot = self.faults.as_ref().map_or(0.0, |f| f.rot);
            if let (Some(data), Some(mark)) = (&mut content.data, content.mark) {
                if rot > 0.0 && mark > 0 && self.rng.gen_bool(rot) {
                    flip(&mut self.rng, data, mark as usize);
                    self.injected += 1;
                }
            }
            file.durable = content.clone();
            file.live = content;
        }
        self.files.retain(|_, file| file.live.data.is_some());
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected
    }

    /// Total live bytes, for reporting.
    pub fn live_bytes(&self) -> u64 {
        self.files
            .values()
            .filter_map(|f| f.live.data.as_ref())
            .map(|d| d.len() as u64)
            .sum()
    }

    /// Turns every fault off (the heal phase), crash points included; crash loss still
    /// applies.
    pub fn disable_faults(&mut self) {
        self.faults = None;
        self.crash_points = 0.0;
    }

    fn roll(&mut self, pick: impl Fn(&DiskFaults) -> f64) -> bool {
        let Some(faults) = &self.faults else {
            return false;
        };
        let p = pick(faults);
        let hit = p > 0.0 && self.rng.gen_bool(p);
        self.injected += u64::from(hit);
        hit
    }

    fn io_error(&mut self, what: &str, file: &str) -> Result<(), DiskError> {
        if self.roll(|f| f.io_error) {
            return Err(DiskError::Io(format!("injected {what} error on {file}")));
        }
        Ok(())
    }

    /// True if `file` exists in the live view.
    fn exists(&self, file: &str) -> bool {
        self.files.get(file).is_some_and(|f| f.live.data.is_some())
    }

    /// Remembers what `file` named before its first directory change since the last
    /// `sync_dir`.
    fn note_dir_change(&mut self, file: &str, before: Option<FileState>) {
        self.dir_undo.entry(file.to_string()).or_insert(before);
    }

    fn push(&mut self, file: &str, op: Pending) {
        if matches!(op, Pending::Append(_)) && !self.exists(file) {
            // A missing name is created by this append; the name is a directory change.
            let before = self.files.remove(file);
            self.note_dir_change(file, before.filter(|f| f.durable.data.is_some()));
        }
        let state = self.files.entry(file.to_string()).or_default();
        apply(&mut state.live, &op);
        state.pending.push(op);
    }
}

/// The `raft_core::Disk` handed to a node: a handle on the node's [`DiskState`].
#[derive(Clone, Debug)]
pub struct SimDisk {
    state: Rc<RefCell<DiskState>>,
}

impl SimDisk {
    /// A handle on `state`.
    pub fn new(state: Rc<RefCell<DiskState>>) -> SimDisk {
        SimDisk { state }
    }
}

impl raft_core::Disk for SimDisk {
    fn len(&mut self, file: &str) -> Result<u64, DiskError> {
        let state = self.state.borrow();
        let live = state.files.get(file).and_then(|f| f.live.data.as_ref());
        Ok(live.map_or(0, |data| data.len() as u64))
    }

    fn read(&mut self, file: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let mut state = self.state.borrow_mut();
        state.io_error("read", file)?;
        let Some(live) = state.files.get(file).map(|f| &f.live) else {
            return Err(DiskError::NotFound(file.to_string()));
        };
        let (Some(data), mark) = (&live.data, live.mark) else {
            return Err(DiskError::NotFound(file.to_string()));
        };
        let start = (offset as usize).min(data.len());
        let end = start.saturating_add(len).min(data.len());
        let mut bytes = data[start..end].to_vec();
        // Only bytes before the last append may come back flipped (see the module docs).
        let limit = mark.map_or(0, |m| (m as usize).saturating_sub(start));
        if limit > 0 && state.roll(|f| f.read_flip) {
            flip(&mut state.rng, &mut bytes, limit);
        }
        Ok(bytes)
    }

    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let mut state = self.state.borrow_mut();
        state.crash_point("append", file, false)?;
        state.io_error("write", file)?;
        state.push(file, Pending::Append(bytes.to_vec()));
        Ok(())
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError> {
        let mut state = self.state.borrow_mut();
        state.crash_point("truncate", file, false)?;
        state.io_error("truncate", file)?;
        state.push(file, Pending::Truncate(len));
        Ok(())
    }

    fn write_atomic(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let mut state = self.state.borrow_mut();
        state.crash_point("write", file, true)?;
        state.io_error("write", file)?;
        state.push(file, Pending::Replace(bytes.to_vec()));
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        let mut state = self.state.borrow_mut();
        state.crash_point("sync", file, false)?;
        if state.roll(|f| f.sync_error) {
            return Err(DiskError::Io(format!("injected fsync failure on {file}")));
        }
        let mut replaced_before = None;
        if let Some(f) = state.files.get_mut(file) {
            if let Some(at) = f
                .pending
                .iter()
                .position(|op| matches!(op, Pending::Replace(_)))
            {
                // The replacement takes the name now: remember the file it replaces (its
                // durable content plus the changes made before the replacement).
                let pending = f.pending[..at].to_vec();
                let mut live = f.durable.clone();
                for op in &pending {
                    apply(&mut live, op);
                }
                let before = FileState {
                    durable: std::mem::take(&mut f.durable),
                    live,
                    pending,
                };
                replaced_before = Some(before.live.data.is_some().then_some(before));
            }
            f.durable = f.live.clone();
            f.pending.clear();
        }
        if let Some(before) = replaced_before {
            state.note_dir_change(file, before);
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        let mut state = self.state.borrow_mut();
        state.crash_point("sync_dir", "the directory", false)?;
        if state.roll(|f| f.sync_error) {
            return Err(DiskError::Io(
                "injected fsync failure on the directory".to_string(),
            ));
        }
        state.dir_undo.clear();
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        let mut state = self.state.borrow_mut();
        state.crash_point("remove", file, false)?;
        state.io_error("remove", file)?;
        // The removal is a directory change: a crash before the next `sync_dir` may undo it.
        if let Some(removed) = state.files.remove(file) {
            if removed.live.data.is_some() {
                state.note_dir_change(file, Some(removed));
            }
        }
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<String>, DiskError> {
        let state = self.state.borrow();
        let names = state
            .files
            .iter()
            .filter(|(_, f)| f.live.data.is_some())
            .map(|(n, _)| n.clone());
        Ok(names.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::Disk;

    fn disk() -> (SimDisk, Rc<RefCell<DiskState>>) {
        let state = Rc::new(RefCell::new(DiskState::new(1, NodeId(1), None)));
        (SimDisk::new(state.clone()), state)
    }

    fn content(d: &mut SimDisk, file: &str) -> Vec<u8> {
        let len = d.len(file).unwrap();
        if len == 0 {
            return vec![];
        }
        d.read(file, 0, len as usize).unwrap()
    }

    #[test]
    fn synced_data_survives_every_crash_mode() {
        for loss in [
            CrashLoss::KeepAll,
            CrashLoss::LoseAll,
            CrashLoss::TornPrefix,
        ] {
            let (mut d, state) = disk();
            d.append("wal", b"hello").unwrap();
            d.sync("wal").unwrap();
            d.sync_dir().unwrap();
            d.append("wal", b" world").unwrap();
            state.borrow_mut().crash(loss);
            let got = content(&mut d, "wal");
            assert!(got.starts_with(b"hello"), "{loss:?} lost synced data");
            match loss {
                CrashLoss::KeepAll => assert_eq!(got, b"hello world"),
                CrashLoss::LoseAll => assert_eq!(got, b"hello"),
                CrashLoss::TornPrefix => assert!(b"hello world".starts_with(&got)),
            }
        }
    }

    #[test]
    fn torn_prefix_produces_torn_writes() {
        let mut torn = 0;
        for seed in 0..100 {
            let state = Rc::new(RefCell::new(DiskState::new(seed, NodeId(1), None)));
            let mut d = SimDisk::new(state.clone());
            d.append("wal", b"0123456789").unwrap();
            d.sync_dir().unwrap();
            state.borrow_mut().crash(CrashLoss::TornPrefix);
            let len = d.len("wal").unwrap();
            torn += u32::from(len > 0 && len < 10);
        }
        assert!(torn > 10, "only {torn} torn writes in 100 crashes");
    }

    #[test]
    fn unsynced_file_disappears_when_all_is_lost() {
        let (mut d, state) = disk();
        d.write_atomic("hard_state", b"v1").unwrap();
        assert_eq!(d.list().unwrap(), vec!["hard_state".to_string()]);
        state.borrow_mut().crash(CrashLoss::LoseAll);
        assert!(d.list().unwrap().is_empty());
        assert_eq!(d.len("hard_state").unwrap(), 0);
    }

    #[test]
    fn write_atomic_is_never_torn() {
        for seed in 0..50 {
            let state = Rc::new(RefCell::new(DiskState::new(seed, NodeId(2), None)));
            let mut d = SimDisk::new(state.clone());
            d.write_atomic("hs", b"old").unwrap();
            d.sync("hs").unwrap();
            d.sync_dir().unwrap();
            d.write_atomic("hs", b"new-value").unwrap();
            state.borrow_mut().crash(CrashLoss::TornPrefix);
            let got = content(&mut d, "hs");
            assert!(
                got == b"old" || got == b"new-value",
                "torn atomic write {got:?}"
            );
        }
    }

    #[test]
    fn a_created_file_vanishes_without_a_directory_sync_and_survives_with_one() {
        let (mut d, state) = disk();
        d.append("wal", b"synced").unwrap();
        d.sync("wal").unwrap();
        state.borrow_mut().crash(CrashLoss::LoseAll);
        assert!(d.list().unwrap().is_empty(), "a name never synced survived");
        d.append("wal", b"synced").unwrap();
        d.sync("wal").unwrap();
        d.sync_dir().unwrap();
        state.borrow_mut().crash(CrashLoss::LoseAll);
        assert_eq!(content(&mut d, "wal"), b"synced");
        // Directory sync first, content sync second: durable as well.
        d.append("seg", b"two").unwrap();
        d.sync_dir().unwrap();
        d.sync("seg").unwrap();
        state.borrow_mut().crash(CrashLoss::LoseAll);
        assert_eq!(content(&mut d, "seg"), b"two");
    }

    #[test]
    fn a_replacement_reverts_and_a_removal_is_undone_without_a_directory_sync() {
        let (mut d, state) = disk();
        d.write_atomic("snapshot", b"old").unwrap();
        d.sync("snapshot").unwrap();
        d.append("wal", b"log").unwrap();
        d.sync("wal").unwrap();
        d.sync_dir().unwrap();
        d.write_atomic("snapshot", b"new").unwrap();
        d.sync("snapshot").unwrap();
        d.remove("wal").unwrap();
        assert_eq!(d.list().unwrap(), vec!["snapshot".to_string()]);
        state.borrow_mut().crash(CrashLoss::LoseAll);
        assert_eq!(content(&mut d, "snapshot"), b"old", "the rename survived");
        assert_eq!(content(&mut d, "wal"), b"log", "the removal survived");
        // A directory sync before the replacement's own sync does not make it durable.
        d.write_atomic("snapshot", b"new").unwrap();
        d.sync_dir().unwrap();
        d.sync("snapshot").unwrap();
        d.remove("wal").unwrap();
        state.borrow_mut().crash(CrashLoss::LoseAll);
        assert_eq!(content(&mut d, "snapshot"), b"old");
        d.write_atomic("snapshot", b"new").unwrap();
        d.sync("snapshot").unwrap();
        d.remove("wal").unwrap();
        d.sync_dir().unwrap();
        state.borrow_mut().crash(CrashLoss::LoseAll);
        assert_eq!(content(&mut d, "snapshot"), b"new");
        assert_eq!(d.list().unwrap(), vec!["snapshot".to_string()]);
        // Every change survives a crash that keeps everything.
        d.append("wal", b"x").unwrap();
        d.remove("snapshot").unwrap();
        state.borrow_mut().crash(CrashLoss::KeepAll);
        assert_eq!(d.list().unwrap(), vec!["wal".to_string()]);
    }

    #[test]
    fn a_torn_crash_undoes_each_directory_change_on_its_own() {
        let mut outcomes = std::collections::BTreeSet::new();
        for seed in 0..60 {
            let state = Rc::new(RefCell::new(DiskState::new(seed, NodeId(1), None)));
            let mut d = SimDisk::new(state.clone());
            for name in ["a", "b"] {
                d.append(name, b"x").unwrap();
                d.sync(name).unwrap();
            }
            state.borrow_mut().crash(CrashLoss::TornPrefix);
            outcomes.insert(d.list().unwrap());
        }
        // Neither, either one alone, or both: no order is promised.
        assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    }

    #[test]
    fn a_directory_sync_is_a_crash_point() {
        let (mut d, state) = disk();
        state.borrow_mut().set_crash_points(1.0);
        d.append("wal", b"x").unwrap();
        d.sync("wal").unwrap();
        assert!(d.sync_dir().is_err());
        assert!(state.borrow_mut().take_crash_point());
        state.borrow_mut().crash(CrashLoss::LoseAll);
        assert!(
            d.list().unwrap().is_empty(),
            "the crash came before the sync"
        );
    }

    #[test]
    fn faults_inject_errors_and_flips() {
        let faults = DiskFaults {
            faulty_nodes: vec![NodeId(1)],
            rot: 1.0,
            sync_error: 1.0,
            sync_latency_max: Duration::from_millis(5),
            ..DiskFaults::default()
        };
        let state = Rc::new(RefCell::new(DiskState::new(
            3,
            NodeId(1),
            Some(faults.clone()),
        )));
        let mut d = SimDisk::new(state.clone());
        d.append("wal", &[0u8; 8]).unwrap();
        assert!(d.sync("wal").is_err(), "sync failure not injected");
        state.borrow_mut().crash(CrashLoss::LoseAll);
        assert_eq!(d.len("wal").unwrap(), 0, "failed sync made data durable");
        // Rot hits synced bytes before the last append, never the last append itself.
        let state = Rc::new(RefCell::new(DiskState::new(3, NodeId(1), None)));
        let mut d = SimDisk::new(state.clone());
        d.append("wal", &[0u8; 8]).unwrap();
        d.append("wal", &[0u8; 4]).unwrap();
        d.sync("wal").unwrap();
        state.borrow_mut().faults = Some(faults);
        state.borrow_mut().crash(CrashLoss::KeepAll);
        let got = content(&mut d, "wal");
        assert_ne!(&got[..8], &[0u8; 8], "rot not applied");
        assert_eq!(&got[8..], &[0u8; 4], "rot touched the last append");
        assert_eq!(state.borrow().injected(), 1);
    }

    #[test]
    fn read_errors_leave_data_intact() {
        let faults = DiskFaults {
            io_error: 1.0,
            ..DiskFaults::default()
        };
        let state = Rc::new(RefCell::new(DiskState::new(3, NodeId(1), Some(faults))));
        let mut d = SimDisk::new(state.clone());
        assert!(d.append("wal", b"x").is_err());
        assert_eq!(d.len("wal").unwrap(), 0);
    }
}
