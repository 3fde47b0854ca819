//! [`FileDisk`]: raft-core's [`Disk`] on a directory of a real file system.
//!
//! # The POSIX durability rules, and how they are honoured
//!
//! POSIX promises much less than "a write is on disk when `write` returns". The rules this
//! file relies on, and what each operation does about them:
//!
//! 1. Data written to a file is durable only after `fsync`/`fdatasync` of that file returns.
//!    [`Disk::sync`] calls `fdatasync` (`File::sync_data`), which also flushes the file size,
//!    so appended and truncated bytes are covered.
//! 2. A *directory entry* (a newly created file, a rename, an unlink) is durable only after the
//!    directory itself is fsynced; a crash before that can make a new file vanish, or a renamed
//!    file come back under its old name, even if the file's own data was synced. The `Disk`
//!    trait says so too, and its callers (raft-core's WAL) call [`Disk::sync_dir`] where they
//!    rely on a name; `sync_dir` fsyncs the directory (and skips the fsync when no entry
//!    changed since the last one). Nothing here fsyncs the directory behind the caller's
//!    back, so the simulator, whose disk undoes unsynced directory changes at a crash, tests
//!    the WAL against what this file system can do.
//! 3. `rename` within one file system is atomic: after a crash the name refers to the old
//!    content or the new, never a mix. [`Disk::write_atomic`] writes a temporary file, fsyncs
//!    it and renames it over the target; the rename is durable after `sync_dir`. (The trait
//!    asks for `sync` and then `sync_dir`; the `sync` finds nothing left to flush.)
//! 4. [`Disk::remove`] unlinks; the removal is durable after `sync_dir`.
//! 5. After a process crash (as opposed to a power loss) the page cache still holds what was
//!    never synced, and a restarted replica would read it, act on it, and lose it to a later
//!    power failure. [`FileDisk::open`] therefore fsyncs every file and then the directory
//!    before anything is read, so what recovery sees is durable (PostgreSQL does the same
//!    after a crash).
//!
//! Temporary files (`*.tmp`) left by a crash inside `write_atomic` are deleted on
//! [`FileDisk::open`] and never listed. One process at a time may use a directory: `open` takes
//! an exclusive `flock` on a `LOCK` file and fails if another process holds it.

use raft_core::{Disk, DiskError};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Suffix of the temporary files of [`Disk::write_atomic`].
const TEMP_SUFFIX: &str = ".tmp";
/// The lock file that keeps a second process out of the directory.
const LOCK_FILE: &str = "LOCK";
/// Longest file name accepted.
const NAME_BYTES_MAX: usize = 128;

/// A [`Disk`] on a directory. See the module documentation for the durability rules.
pub struct FileDisk {
    dir: PathBuf,
    /// The directory itself, fsynced to make names durable.
    dir_handle: File,
    /// Holds the `flock` for as long as the disk is open.
    _lock: File,
    /// Open handles, by file name, so appends and reads do not reopen files.
    files: BTreeMap<String, File>,
    /// A directory entry was created, renamed or removed since the last directory fsync.
    dir_dirty: bool,
    /// fsyncs issued (files and directory), for tests and logs.
    syncs: u64,
}

impl std::fmt::Debug for FileDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileDisk")
            .field("dir", &self.dir)
            .field("open_files", &self.files.len())
            .field("dir_dirty", &self.dir_dirty)
            .finish()
    }
}

fn io_error(what: &str, path: &Path, error: std::io::Error) -> DiskError {
    DiskError::Io(format!("{what} {}: {error}", path.display()))
}

impl FileDisk {
    /// Opens (creating if needed) the directory `dir`, takes its lock, removes temporary
    /// files a crash left behind and makes everything else durable (rule 5 of the module
    /// documentation).
    ///
    /// # Errors
    /// The directory cannot be created or read, or another process holds its lock.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileDisk, DiskError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io_error("create directory", &dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error("open", &lock_path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let locked = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            return Err(DiskError::Io(format!(
                "{} is in use by another process (lock {}): {}",
                dir.display(),
                lock_path.display(),
                std::io::Error::last_os_error()
            )));
        }
        let dir_handle = File::open(&dir).map_err(|e| io_error("open directory", &dir, e))?;
        let mut disk = FileDisk {
            dir,
            dir_handle,
            _lock: lock,
            files: BTreeMap::new(),
            dir_dirty: false,
            syncs: 0,
        };
        for name in disk.names()? {
            let path = disk.dir.join(&name);
            if name.ends_with(TEMP_SUFFIX) {
                tracing::info!(file = %path.display(), "removing a temporary file left by a crash");
                std::fs::remove_file(&path).map_err(|e| io_error("remove", &path, e))?;
            } else if path.is_file() {
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| io_error("fsync", &path, e))?;
                disk.syncs += 1;
            }
        }
        disk.dir_dirty = true;
        disk.sync_dir()?;
        Ok(disk)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// fsyncs issued so far (files and the directory).
    pub fn sync_count(&self) -> u64 {
        self.syncs
    }

    /// Every entry name of the directory except the lock file, unsorted.
    fn names(&self) -> Result<Vec<String>, DiskError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_error("list", &self.dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("list", &self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != LOCK_FILE {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Rejects names that could leave the directory or collide with this file's own files.
    fn path(&self, file: &str) -> Result<PathBuf, DiskError> {
        let valid = !file.is_empty()
            && file.len() <= NAME_BYTES_MAX
            && file
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !file.starts_with('.')
            && !file.ends_with(TEMP_SUFFIX)
            && file != LOCK_FILE;
        if !valid {
            return Err(DiskError::Io(format!("invalid file name {file:?}")));
        }
        Ok(self.dir.join(file))
    }

    /// The open handle of `file`; with `create`, creates the file (marking the directory
    /// dirty) if it does not exist.
    fn handle(&mut self, file: &str, create: bool) -> Result<Option<&mut File>, DiskError> {
        if !self.files.contains_key(file) {
            let path = self.path(file)?;
            let existed = path.exists();
            if !existed && !create {
                return Ok(None);
            }
            let handle = OpenOptions::new()
                .read(true)
                .append(true)
                .create(create)
                .open(&path);
            let handle = match handle {
                Ok(handle) => handle,
                Err(e) if e.kind() == ErrorKind::NotFound && !create => return Ok(None),
                Err(e) => return Err(io_error("open", &path, e)),
            };
            if !existed {
                self.dir_dirty = true;
            }
            self.files.insert(file.to_string(), handle);
        }
        Ok(self.files.get_mut(file))
    }
}

impl Disk for FileDisk {
    fn len(&mut self, file: &str) -> Result<u64, DiskError> {
        let path = self.path(file)?;
        match self.handle(file, false)? {
            Some(handle) => Ok(handle
                .metadata()
                .map_err(|e| io_error("stat", &path, e))?
                .len()),
            None => Ok(0),
        }
    }

    fn read(&mut self, file: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        let path = self.path(file)?;
        let Some(handle) = self.handle(file, false)? else {
            return Err(DiskError::NotFound(file.to_string()));
        };
        let file_len = handle
            .metadata()
            .map_err(|e| io_error("stat", &path, e))?
            .len();
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > file_len)
        {
            return Err(DiskError::OutOfRange {
                file: file.to_string(),
                offset,
                len,
                file_len,
            });
        }
        let mut buf = vec![0; len];
        handle
            .read_exact_at(&mut buf, offset)
            .map_err(|e| io_error(&format!("read {len} bytes at {offset} of"), &path, e))?;
        Ok(buf)
    }

    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let path = self.path(file)?;
        let handle = self.handle(file, true)?.expect("created");
        handle
            .write_all(bytes)
            .map_err(|e| io_error("append to", &path, e))
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError> {
        let path = self.path(file)?;
        let Some(handle) = self.handle(file, false)? else {
            return Err(DiskError::NotFound(file.to_string()));
        };
        handle
            .set_len(len)
            .map_err(|e| io_error(&format!("truncate to {len} bytes"), &path, e))
    }

    fn write_atomic(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError> {
        let path = self.path(file)?;
        let temp = self.dir.join(format!("{file}{TEMP_SUFFIX}"));
        let mut handle = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|e| io_error("create", &temp, e))?;
        handle
            .write_all(bytes)
            .map_err(|e| io_error("write", &temp, e))?;
        handle.sync_all().map_err(|e| io_error("fsync", &temp, e))?;
        self.syncs += 1;
        // The old handle refers to the file the rename replaces.
        self.files.remove(file);
        std::fs::rename(&temp, &path).map_err(|e| io_error("rename over", &path, e))?;
        self.dir_dirty = true;
        Ok(())
    }

    fn sync(&mut self, file: &str) -> Result<(), DiskError> {
        let path = self.path(file)?;
        if let Some(handle) = self.handle(file, false)? {
            handle
                .sync_data()
                .map_err(|e| io_error("fsync", &path, e))?;
            self.syncs += 1;
        }
        Ok(())
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        if !self.dir_dirty {
            return Ok(());
        }
        self.dir_handle
            .sync_all()
            .map_err(|e| io_error("fsync directory", &self.dir, e))?;
        self.syncs += 1;
        self.dir_dirty = false;
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), DiskError> {
        let path = self.path(file)?;
        self.files.remove(file);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                self.dir_dirty = true;
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &path, e)),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, DiskError> {
        let mut names: Vec<String> = self
            .names()?
            .into_iter()
            .filter(|name| !name.ends_with(TEMP_SUFFIX))
            .collect();
        names.sort();
        Ok(names)
    }
}
