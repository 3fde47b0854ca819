//! An in-memory [`Disk`] that models durability: live bytes versus durable bytes, and live
//! names versus durable names.
//!
//! Each file keeps its live content (what reads see) and remembers what would survive a crash.
//! For the common append-then-sync pattern the durable content is a prefix of the live content,
//! so `sync` is O(1); only a truncate or an atomic replace of synced data forces a copy of the
//! old durable bytes.
//!
//! Directory changes (creating a file, the replacement `write_atomic` makes once synced,
//! removing a file) are remembered until [`Disk::sync_dir`], each with the state its name had
//! before; a crash may undo them (see [`CrashMode`]), as the [`Disk`] contract allows.

use crate::io::{Disk, DiskError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// What happens to unsynced data when [`MemDisk::crash`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Every unsynced change is lost, directory changes since the last `sync_dir` included.
    DropUnsynced,
    /// Every unsynced change survives (as if the OS flushed everything in time).
    KeepUnsynced,
    /// Unsynced appends survive only partially: a prefix of random length (chosen from `seed`)
    /// is kept per file. Unsynced truncations and atomic replacements are lost. Each directory
    /// change since the last `sync_dir` is kept or undone at random.
    TornPrefix {
        /// Seed for choosing the prefix lengths.
        seed: u64,
    },
}

/// Bytes stored in fixed-size chunks, so that appending never copies what is already stored
/// and freed chunks are recycled by the allocator instead of returned to the OS.
#[derive(Clone, Debug, Default)]
struct Chunked {
    chunks: Vec<Vec<u8>>,
    len: usize,
}

const CHUNK_BYTES: usize = 64 * 1024;

impl Chunked {
    fn from_vec(bytes: Vec<u8>) -> Chunked {
        let mut out = Chunked::default();
        out.extend_from_slice(&bytes);
        out
    }

    fn len(&self) -> usize {
        self.len
    }

    fn extend_from_slice(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.chunks.last().is_none_or(|c| c.len() == CHUNK_BYTES) {
                self.chunks.push(Vec::with_capacity(CHUNK_BYTES));
            }
            let chunk = self.chunks.last_mut().expect("just ensured");
            let take = (CHUNK_BYTES - chunk.len()).min(bytes.len());
            chunk.extend_from_slice(&bytes[..take]);
            self.len += take;
            bytes = &bytes[take..];
        }
    }

    fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let keep_chunks = len.div_ceil(CHUNK_BYTES);
        self.chunks.truncate(keep_chunks);
        if let Some(last) = self.chunks.last_mut() {
            last.truncate(len - (keep_chunks - 1) * CHUNK_BYTES);
        }
        self.len = len;
    }

    /// Copies `start..end`; the caller checks the bounds.
    fn copy_range(&self, start: usize, end: usize) -> Vec<u8> {
        assert!(start <= end && end <= self.len);
        let mut out = Vec::with_capacity(end - start);
        let mut at = start;
        while at < end {
            let chunk = &self.chunks[at / CHUNK_BYTES];
            let offset = at % CHUNK_BYTES;
            let take = (chunk.len() - offset).min(end - at);
            out.extend_from_slice(&chunk[offset..offset + take]);
            at += take;
        }
        out
    }

    fn write_at(&mut self, start: usize, bytes: &[u8]) {
        assert!(start + bytes.len() <= self.len);
        for (i, byte) in bytes.iter().enumerate() {
            let at = start + i;
            self.chunks[at / CHUNK_BYTES][at % CHUNK_BYTES] = *byte;
        }
    }
}

#[derive(Clone, Debug, Default)]
struct MemFile {
    live: Chunked,
    /// Length of the live prefix that is durable, valid when `durable_copy` is `None`.
    durable_len: usize,
    /// Set when the durable content is no longer a prefix of the live content. `Some(None)`
    /// means the file does not exist durably.
    durable_copy: Option<Option<Vec<u8>>>,
    /// `write_atomic` replaced the content since the last `sync`: that sync is the moment the
    /// replacement takes the name (a directory change).
    replaced: bool,
}

impl MemFile {
    fn new_unsynced() -> MemFile {
        MemFile {
            live: Chunked::default(),
            durable_len: 0,
            durable_copy: Some(None),
            replaced: false,
        }
    }

    /// A file whose durable and live content are both `bytes`.
    fn synced(bytes: Vec<u8>) -> MemFile {
        let live = Chunked::from_vec(bytes);
        MemFile {
            durable_len: live.len(),
            live,
            durable_copy: None,
            replaced: false,
        }
    }

    /// The durable content, or `None` if the file does not exist durably.
    fn durable_content(&mut self) -> Option<Vec<u8>> {
        match self.durable_copy.take() {
            Some(copy) => copy,
            None => Some(self.live.copy_range(0, self.durable_len)),
        }
    }

    /// Freezes the current durable content before a change that is not a pure append.
    fn freeze_durable(&mut self) {
        if self.durable_copy.is_none() {
            self.durable_copy = Some(Some(self.live.copy_range(0, self.durable_len)));
        }
    }

    fn unsynced(&self) -> bool {
        self.durable_copy.is_some() || self.durable_len != self.live.len()
    }
}

/// An in-memory disk with crash simulation.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    files: BTreeMap<String, MemFile>,
    /// Names changed since the last `sync_dir`, each with the file it named before the first
    /// such change (`None`: the name did not exist). A crash may restore it.
    dir_undo: BTreeMap<String, Option<MemFile>>,
    syncs: u64,
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    /// Simulates a power loss: every file falls back to (roughly) its durable content.
    pub fn crash(&mut self, mode: CrashMode) {
        let mut rng = match mode {
            CrashMode::TornPrefix { seed } => Some(SmallRng::seed_from_u64(seed)),
            _ => None,
        };
        for (name, before) in std::mem::take(&mut self.dir_undo) {
            let kept = match mode {
                CrashMode::KeepUnsynced => true,
                CrashMode::DropUnsynced => false,
                CrashMode::TornPrefix { .. } => rng.as_mut().expect("torn mode").gen_bool(0.5),
            };
            if !kept {
                match before {
                    Some(file) => self.files.insert(name, file),
                    None => self.files.remove(&name),
                };
            }
        }
        let names: Vec<String> = self.files.keys().cloned().collect();
        for name in names {
            let file = self.files.get_mut(&name).expect("listed file exists");
            if mode == CrashMode::KeepUnsynced {
                file.durable_copy = None;
                file.durable_len = file.live.len();
                continue;
            }
            match file.durable_copy.take() {
                Some(None) => {
                    self.files.remove(&name);
                }
                Some(Some(bytes)) => {
                    file.durable_len = bytes.len();
                    file.live = Chunked::from_vec(bytes);
                }
                None => {
                    let mut keep = file.durable_len;
                    if let Some(rng) = rng.as_mut() {
                        keep += rng.gen_range(0..=file.live.len() - file.durable_len);
                    }
                    file.live.truncate(keep);
                    file.durable_len = keep;
                }
            }
        }
    }

    /// True if any file has changes that a crash could lose.
    pub fn has_unsynced(&self) -> bool {
        !self.dir_undo.is_empty() || self.files.values().any(MemFile::unsynced)
    }

    /// Remembers what `file` named before its first directory change since the last
    /// `sync_dir`.
    fn note_dir_change(&mut self, file: &str, before: Option<MemFile>) {
        self.dir_undo.entry(file.to_string()).or_insert(before);
    }

    /// Number of successful `sync` and `sync_dir` calls so far.
    pub fn sync_count(&self) -> u64 {
        self.syncs
    }

    /// Overwrites bytes in place, bypassing durability tracking, as silent media corruption
    /// would. Used to test that checksums catch it.
    ///
    /// # Errors
    /// `NotFound` / `OutOfRange` if the file or range does not exist.
    pub fn corrupt(&mut self, file: &str, offset: u64, bytes: &[u8]) -> Result<(), DiskError> {
        let f = self
            .files
            .get_mut(file)
            .ok_or_else(|| DiskError::NotFound(file.to_string()))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(bytes.len());
        if end > f.live.len() {
            return Err(DiskError::OutOfRange {
                file: file.to_string(),
                offset,
                len: bytes.len(),
                file_len: f.live.len() as u64,
            });
        }
        f.live.write_at(start, bytes);
        if let Some(Some(copy)) = f.durable_copy.as_mut() {
            let copy_end = end.min(copy.len());
            if start < copy_end {
                copy[start..copy_end].copy_from_slice(&bytes[..copy_end - start]);
            }
        }
        Ok(())
    }
}

impl Disk for MemDisk {
    fn len(&mut self, file: &str) -> Result<u64, DiskError> {
        Ok(self.files.get(file).map_or(0, |f| f.live.len() as u64))
    }

    fn read(&mut self, file: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let f = self
            .files
            .get(file)
            .ok_or_else(|| DiskError::NotFound(file.to_string()))?;
        let out_of_range = || DiskError::OutOfRange {
            file: file.to_string(),
            offset,
            len,
            file_len: f.live.len() as u64,
        };
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let end = start.checked_add(len).ok_or_else(out_of_range)?;
        if end > f.live.len() {
            return Err(out_of_range());
        }
        Ok(f.live.copy_range(start, end))
    }

    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        // The file almost always exists: look it up by `&str` so that an append allocates no
        // key.
        if let Some(f) = self.files.get_mut(file) {
            f.live.extend_from_slice(bytes);
            return Ok(());
        }
        self.note_dir_change(file, None);
        let mut f = MemFile::new_unsynced();
        f.live.extend_from_slice(bytes);
        self.files.insert(file.to_string(), f);
        Ok(())
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError> {
        let f = self
            .files
            .get_mut(file)
            .ok_or_else(|| DiskError::NotFound(file.to_string()))?;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len >= f.live.len() {
            return Ok(());
        }
        if len < f.durable_len {
            f.freeze_durable();
        }
        f.live.truncate(len);
        Ok(())
    }

    fn write_atomic(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let f = self
            .files
            .entry(file.to_string())
            .or_insert_with(MemFile::new_unsynced);
        f.freeze_durable();
        f.live = Chunked::from_vec(bytes.to_vec());
        f.replaced = true;
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        if let Some(f) = self.files.get_mut(file) {
            // The replacement's content is durable now, under a name that is not yet.
            let before =
                std::mem::take(&mut f.replaced).then(|| f.durable_content().map(MemFile::synced));
            f.durable_copy = None;
            f.durable_len = f.live.len();
            if let Some(before) = before {
                self.note_dir_change(file, before);
            }
        }
        self.syncs += 1;
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        self.dir_undo.clear();
        self.syncs += 1;
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        if let Some(removed) = self.files.remove(file) {
            self.note_dir_change(file, Some(removed));
        }
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<String>, DiskError> {
        Ok(self.files.keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_appends_are_dropped_on_crash() {
        let mut disk = MemDisk::new();
        disk.append("a", b"hello").unwrap();
        disk.sync("a").unwrap();
        disk.sync_dir().unwrap();
        disk.append("a", b" world").unwrap();
        disk.crash(CrashMode::DropUnsynced);
        assert_eq!(disk.read("a", 0, 5).unwrap(), b"hello");
        assert_eq!(disk.len("a").unwrap(), 5);
    }

    #[test]
    fn never_synced_file_disappears() {
        let mut disk = MemDisk::new();
        disk.append("a", b"x").unwrap();
        disk.crash(CrashMode::DropUnsynced);
        assert!(disk.list().unwrap().is_empty());
    }

    #[test]
    fn truncate_of_synced_data_is_undone_by_crash() {
        let mut disk = MemDisk::new();
        disk.append("a", b"abcdef").unwrap();
        disk.sync("a").unwrap();
        disk.sync_dir().unwrap();
        disk.truncate("a", 2).unwrap();
        disk.append("a", b"XY").unwrap();
        assert_eq!(disk.read("a", 0, 4).unwrap(), b"abXY");
        disk.crash(CrashMode::DropUnsynced);
        assert_eq!(disk.read("a", 0, 6).unwrap(), b"abcdef");
    }

    #[test]
    fn write_atomic_is_all_or_nothing() {
        let mut disk = MemDisk::new();
        disk.write_atomic("m", b"old").unwrap();
        disk.sync("m").unwrap();
        disk.sync_dir().unwrap();
        disk.write_atomic("m", b"new!").unwrap();
        disk.crash(CrashMode::TornPrefix { seed: 3 });
        assert_eq!(disk.read("m", 0, 3).unwrap(), b"old");
        disk.write_atomic("m", b"new!").unwrap();
        disk.crash(CrashMode::KeepUnsynced);
        assert_eq!(disk.read("m", 0, 4).unwrap(), b"new!");
    }

    #[test]
    fn torn_prefix_keeps_synced_bytes_and_part_of_the_rest() {
        for seed in 0..20 {
            let mut disk = MemDisk::new();
            disk.append("a", b"0123").unwrap();
            disk.sync("a").unwrap();
            disk.sync_dir().unwrap();
            disk.append("a", b"456789").unwrap();
            disk.crash(CrashMode::TornPrefix { seed });
            let len = disk.len("a").unwrap();
            assert!((4..=10).contains(&len));
            assert_eq!(
                disk.read("a", 0, len as usize).unwrap(),
                &b"0123456789"[..len as usize]
            );
        }
    }

    #[test]
    fn a_synced_file_vanishes_without_a_directory_sync_and_survives_with_one() {
        let mut disk = MemDisk::new();
        disk.append("new", b"data").unwrap();
        disk.sync("new").unwrap();
        assert!(disk.has_unsynced(), "the name is not durable yet");
        disk.crash(CrashMode::DropUnsynced);
        assert!(disk.list().unwrap().is_empty(), "created file survived");
        disk.append("new", b"data").unwrap();
        disk.sync("new").unwrap();
        disk.sync_dir().unwrap();
        assert!(!disk.has_unsynced());
        disk.crash(CrashMode::DropUnsynced);
        assert_eq!(disk.read("new", 0, 4).unwrap(), b"data");
    }

    #[test]
    fn a_replacement_reverts_and_a_removal_is_undone_without_a_directory_sync() {
        let mut disk = MemDisk::new();
        disk.write_atomic("m", b"old").unwrap();
        disk.append("seg", b"log").unwrap();
        disk.sync("m").unwrap();
        disk.sync("seg").unwrap();
        disk.sync_dir().unwrap();
        disk.write_atomic("m", b"new").unwrap();
        disk.sync("m").unwrap();
        disk.remove("seg").unwrap();
        disk.crash(CrashMode::DropUnsynced);
        assert_eq!(disk.read("m", 0, 3).unwrap(), b"old", "rename survived");
        assert_eq!(disk.read("seg", 0, 3).unwrap(), b"log", "removal survived");
        disk.write_atomic("m", b"new").unwrap();
        disk.sync("m").unwrap();
        disk.remove("seg").unwrap();
        disk.sync_dir().unwrap();
        disk.crash(CrashMode::DropUnsynced);
        assert_eq!(disk.read("m", 0, 3).unwrap(), b"new");
        assert_eq!(disk.list().unwrap(), vec!["m".to_string()]);
        // A directory sync before the replacement's `sync` does not cover it.
        disk.write_atomic("m", b"two").unwrap();
        disk.sync_dir().unwrap();
        disk.sync("m").unwrap();
        disk.crash(CrashMode::DropUnsynced);
        assert_eq!(disk.read("m", 0, 3).unwrap(), b"new");
    }

    #[test]
    fn a_torn_crash_keeps_some_directory_changes_and_undoes_others() {
        let (mut kept, mut undone) = (0, 0);
        for seed in 0..40 {
            let mut disk = MemDisk::new();
            disk.append("a", b"x").unwrap();
            disk.sync("a").unwrap();
            disk.crash(CrashMode::TornPrefix { seed });
            match disk.list().unwrap().len() {
                0 => undone += 1,
                _ => kept += 1,
            }
        }
        assert!(kept > 5 && undone > 5, "kept {kept}, undone {undone}");
    }

    #[test]
    fn chunked_storage_behaves_like_a_vector() {
        let mut reference = Vec::new();
        let mut chunked = Chunked::default();
        let mut seed = 7u64;
        for round in 0..200 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (seed >> 40) as usize % (CHUNK_BYTES / 2);
            let bytes: Vec<u8> = (0..n).map(|i| (i + round) as u8).collect();
            reference.extend_from_slice(&bytes);
            chunked.extend_from_slice(&bytes);
            if round % 7 == 0 {
                let len = reference.len() * 2 / 3;
                reference.truncate(len);
                chunked.truncate(len);
            }
            assert_eq!(chunked.len(), reference.len());
            assert_eq!(chunked.copy_range(0, reference.len()), reference);
        }
        let mid = reference.len() / 2;
        chunked.write_at(mid, b"xyz");
        reference[mid..mid + 3].copy_from_slice(b"xyz");
        assert_eq!(
            chunked.copy_range(mid - 5, mid + 5),
            reference[mid - 5..mid + 5].to_vec()
        );
    }

    #[test]
    fn reads_out_of_range_are_errors() {
        let mut disk = MemDisk::new();
        disk.append("a", b"abc").unwrap();
        assert!(disk.read("a", 2, 5).is_err());
        assert!(disk.read("a", u64::MAX, 1).is_err());
        assert!(disk.read("missing", 0, 0).is_err());
    }
}
