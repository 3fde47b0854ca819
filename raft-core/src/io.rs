//! The three effects a replica needs from its environment: a network, a clock and a disk.
//!
//! The protocol core never calls these; only the [`Node`](crate::Node) driver does. A simulator
//! implements them with fault injection, a production binary with sockets and files.

use crate::error::Error;
use crate::message::Message;
use crate::ready::{PersistReceipt, Ready, Ticket};
use std::fmt;

/// Outgoing messages. Fire-and-forget: delivery is not guaranteed, and messages may be
/// duplicated or reordered; the protocol tolerates all of that.
pub trait Net {
    /// Hands one message to the transport.
    fn send(&mut self, msg: Message);
}

/// A point in time as seen by one replica, in microseconds since an arbitrary origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

impl Instant {
    /// This instant plus `micros` microseconds (saturating).
    pub fn plus_micros(self, micros: u64) -> Instant {
        Instant(self.0.saturating_add(micros))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}us", self.0)
    }
}

/// Monotonic time as seen by this replica. The simulator may skew it, make it drift or jump it
/// forward; it must never go backwards.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;

    /// The most this clock's rate may differ from real time, in parts per million. Lease
    /// reads ([`Config::lease_reads`](crate::Config::lease_reads)) are only correct if every
    /// replica's clock honours this bound and never jumps; the leader shortens its lease by
    /// the margin it implies. The default, 1 000 ppm (0.1 %), is ten times what ordinary
    /// crystal oscillators guarantee; override it for clocks that can be worse.
    fn drift_bound_ppm(&self) -> u64 {
        1_000
    }
}

/// A failed disk operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// The device reported an error; the text names the file and the cause.
    #[error("i/o error: {0}")]
    Io(String),
    /// The file does not exist.
    #[error("file not found: {0}")]
    NotFound(String),
    /// A read beyond the end of a file.
    #[error("read of {len} bytes at offset {offset} is past the end of {file} ({file_len} bytes)")]
    OutOfRange {
        /// File involved.
        file: String,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: usize,
        /// Actual file length.
        file_len: u64,
    },
}

/// A small flat file store: one directory of named files.
///
/// # Durability contract
///
/// The contract is the one POSIX file systems give, where a file's bytes and its *name* are
/// made durable separately, so that the simulator's disk (which implements exactly this, and
/// no more) tests the code against what a real disk promises:
///
/// 1. **Content.** Nothing written by `append` or `truncate` is durable until `sync(file)`
///    returns `Ok`. After a crash, unsynced changes to a file may be lost entirely, kept, or
///    (for appends) torn, meaning that only a prefix of the appended bytes survives.
/// 2. **Names.** Creating a file (the first `append` to a missing name), the replacement that
///    `write_atomic` makes, and `remove` are *directory changes*. Each is durable only once a
///    `sync_dir` returns `Ok` after it. After a crash, every directory change since the last
///    `sync_dir` may be kept or undone, each on its own and in no particular order: a created
///    file may vanish even though its content was synced, a replaced file may come back with
///    its content from before the replacement, a removed file may come back. Code that needs
///    one change to be durable before the next (deleting log segments in order) must call
///    `sync_dir` between them.
/// 3. **Atomic replace.** `write_atomic` is all-or-nothing: a crash leaves the old content or
///    the new, never a mix. The new content is durable only after `sync(file)` and, after
///    that, `sync_dir()`. (An implementation that writes a temporary file, fsyncs it and
///    renames it inside the call gives more; one that stages the file until `sync` gives
///    exactly this. Callers may rely only on the contract.)
///
/// So a new file is durable after `sync(file)` and `sync_dir()`; an append to a file whose
/// name is already durable needs only `sync(file)`. What a replica reads back after a restart
/// counts as durable: an implementation whose crash can keep unsynced state (a process kill
/// leaves the page cache intact) must make that state durable before reporting it, as
/// `FileDisk::open` in the runtime does by syncing every file and the directory.
pub trait Disk {
    /// Length of `file` in bytes; 0 if it does not exist.
    fn len(&mut self, file: &str) -> Result<u64, DiskError>;
    /// Reads `len` bytes at `offset`.
    fn read(&mut self, file: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError>;
    /// Appends to `file`, creating it if needed (a directory change, see the contract).
    fn append(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError>;
    /// Shortens `file` to `len` bytes.
    fn truncate(&mut self, file: &str, len: u64) -> Result<(), DiskError>;
    /// Replaces the whole content atomically (as write-temp + rename); durable after `sync`
    /// and then `sync_dir`.
    fn write_atomic(&mut self, file: &str, bytes: &[u8]) -> Result<(), DiskError>;
    /// Makes every earlier change to `file`'s content durable (not its name: see `sync_dir`).
    fn sync(&mut self, file: &str) -> Result<(), DiskError>;
    /// Makes every earlier directory change (creation, replacement, removal) durable, as an
    /// fsync of the directory does.
    fn sync_dir(&mut self) -> Result<(), DiskError>;
    /// Deletes `file` (durable after `sync_dir`); removing a missing file is not an error.
    fn remove(&mut self, file: &str) -> Result<(), DiskError>;
    /// Names of all files, sorted.
    fn list(&mut self) -> Result<Vec<String>, DiskError>;
}

/// Durable storage of a replica's hard state, log and snapshots, in two steps so that a write
/// can overlap with replication and several writes can share one fsync.
///
/// `write` puts a [`Ready`]'s state into the page cache and mints its [`Ticket`] (with
/// [`Ready::ticket`]); `sync` makes everything written so far durable and turns the ticket into
/// the [`PersistReceipt`] that [`Raft::on_persisted`](crate::Raft::on_persisted) demands. Tickets
/// are synced in the order they were written. A storage must never mint a receipt for state
/// that is not durable: the receipt releases the votes and acknowledgements that promise it.
pub trait Storage {
    /// Writes a `Ready`'s snapshot, hard state and entries (not necessarily durably).
    ///
    /// # Errors
    /// A disk failure. The caller must then stop: what is durable is unknown.
    fn write(&mut self, rd: &Ready) -> Result<Ticket, Error>;

    /// Makes the ticket's state durable (if [`Ticket::needs_sync`]) and issues its receipt.
    ///
    /// # Errors
    /// As for [`Storage::write`].
    fn sync(&mut self, ticket: Ticket) -> Result<PersistReceipt, Error>;
}

impl<T: Net + ?Sized> Net for &mut T {
    fn send(&mut self, msg: Message) {
        (**self).send(msg)
    }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn drift_bound_ppm(&self) -> u64 {
        (**self).drift_bound_ppm()
    }
}
