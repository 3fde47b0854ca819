//! The snapshot file: one checksummed image of the state machine plus the log position and
//! cluster configuration it covers, replaced atomically.
//!
//! ```text
//! "RAFTSNP2" | index u64 | term u64 | data_len u64 | config_len u64 | crc32 u32 | config | data
//! ```
//!
//! `config` is the bincode encoding of the [`Membership`]. The CRC covers the 40 bytes before
//! it, the configuration and the data.

use super::WalError;
use crate::io::Disk;
use crate::membership::Membership;
use crate::message::bincode_config;
use crate::types::{LogIndex, Snapshot, SnapshotMeta, Term};
use crate::Error;
use std::sync::Arc;

/// Name of the snapshot file.
pub(crate) const SNAPSHOT_FILE: &str = "snapshot";
const MAGIC: &[u8; 8] = b"RAFTSNP2";
const HEADER_BYTES: usize = 44;

fn checksum(header: &[u8], config: &[u8], data: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..40]);
    hasher.update(config);
    hasher.update(data);
    hasher.finalize()
}

/// Writes the snapshot file (atomically, not yet durable: see [`sync`]).
pub(crate) fn write<D: Disk>(disk: &mut D, snapshot: &Snapshot) -> Result<(), Error> {
    // Encoding a small in-memory configuration cannot fail.
    let config = bincode::serde::encode_to_vec(&snapshot.membership, bincode_config())
        .expect("configuration encodes");
    let mut bytes = Vec::with_capacity(HEADER_BYTES + config.len() + snapshot.data.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&snapshot.meta.index.0.to_le_bytes());
    bytes.extend_from_slice(&snapshot.meta.term.0.to_le_bytes());
    bytes.extend_from_slice(&(snapshot.data.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&(config.len() as u64).to_le_bytes());
    let crc = checksum(&bytes, &config, &snapshot.data);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes.extend_from_slice(&config);
    bytes.extend_from_slice(&snapshot.data);
    disk.write_atomic(SNAPSHOT_FILE, &bytes)?;
    Ok(())
}

/// Makes the snapshot file durable: its content, then the replacement of the old file (a
/// directory change). Nothing that depends on the snapshot (a log reset, deleting the log it
/// covers) may be written before this returns.
pub(crate) fn sync<D: Disk>(disk: &mut D) -> Result<(), Error> {
    disk.sync(SNAPSHOT_FILE)?;
    disk.sync_dir()?;
    Ok(())
}

/// Reads the snapshot file, if there is one.
///
/// # Errors
/// `WalError::Corrupt` if the file is damaged in any way: it is written atomically, so
/// damage is never a torn write.
pub(crate) fn read<D: Disk>(disk: &mut D) -> Result<Option<Snapshot>, Error> {
    let len = disk.len(SNAPSHOT_FILE)?;
    if len == 0 && !disk.list()?.iter().any(|f| f == SNAPSHOT_FILE) {
        return Ok(None);
    }
    let corrupt = |offset: u64, reason: &str| -> Error {
        WalError::Corrupt {
            file: SNAPSHOT_FILE.to_string(),
            offset,
            reason: reason.to_string(),
        }
        .into()
    };
    if len < HEADER_BYTES as u64 {
        return Err(corrupt(0, "snapshot file shorter than its header"));
    }
    let header = disk.read(SNAPSHOT_FILE, 0, HEADER_BYTES)?;
    if &header[..8] != MAGIC {
        return Err(corrupt(0, "bad magic"));
    }
    let word = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().expect("8 bytes"));
    let (index, term, data_len, config_len) = (word(8), word(16), word(24), word(32));
    let stored_crc = u32::from_le_bytes(header[40..44].try_into().expect("4 bytes"));
    let body_len = len - HEADER_BYTES as u64;
    if data_len.checked_add(config_len) != Some(body_len) {
        return Err(corrupt(
            24,
            "data and configuration lengths do not match the file length",
        ));
    }
    let config_len = usize::try_from(config_len).map_err(|_| corrupt(32, "bad config length"))?;
    let data_len = usize::try_from(data_len).map_err(|_| corrupt(24, "snapshot too large"))?;
    let config = disk.read(SNAPSHOT_FILE, HEADER_BYTES as u64, config_len)?;
    let data_offset = (HEADER_BYTES + config_len) as u64;
    let data = disk.read(SNAPSHOT_FILE, data_offset, data_len)?;
    if checksum(&header, &config, &data) != stored_crc {
        return Err(corrupt(0, "checksum mismatch"));
    }
    let (membership, used) =
        bincode::serde::decode_from_slice::<Membership, _>(&config, bincode_config())
            .map_err(|e| corrupt(HEADER_BYTES as u64, &format!("bad configuration: {e}")))?;
    if used != config.len() {
        return Err(corrupt(
            HEADER_BYTES as u64,
            "trailing bytes after the configuration",
        ));
    }
    let meta = SnapshotMeta {
        index: LogIndex(index),
        term: Term(term),
    };
    Ok(Some(Snapshot {
        meta,
        data: Arc::new(data),
        membership,
    }))
}
