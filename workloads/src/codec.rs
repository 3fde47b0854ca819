//! The one place where service values become bytes and back.
//!
//! Commands, replies and snapshots travel through the Raft log and the network as bincode 2
//! (standard configuration: little endian, variable-length integers). Decoding always runs
//! with a hard allocation limit, so a corrupted or hostile length prefix produces a
//! [`CodecError`] instead of an out-of-memory abort, and trailing bytes are rejected so that a
//! truncated-then-padded buffer cannot decode as something valid.

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest encoded command or reply, in bytes. Raft entries are bounded by raft-core's own
/// message limit (64 MiB); a single service command is kept well below it.
pub const COMMAND_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Largest encoded snapshot of a service state machine, in bytes.
pub const SNAPSHOT_BYTES_MAX: usize = 256 * 1024 * 1024;

const _: () = assert!(COMMAND_BYTES_MAX < SNAPSHOT_BYTES_MAX);

/// Why bytes could not be turned into a value (or a value into bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input is longer than the limit for its kind.
    #[error("{len} bytes exceed the limit of {limit} bytes")]
    TooLarge {
        /// Bytes given (or produced).
        len: usize,
        /// The limit that applies.
        limit: usize,
    },
    /// bincode rejected the input.
    #[error("malformed input: {0}")]
    Malformed(String),
    /// Bytes were left over after a complete value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// The value could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Which limit applies to a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Commands, replies and request envelopes: [`COMMAND_BYTES_MAX`].
    Command,
    /// Snapshots: [`SNAPSHOT_BYTES_MAX`].
    Snapshot,
}

impl Kind {
    fn limit(self) -> usize {
        match self {
            Kind::Command => COMMAND_BYTES_MAX,
            Kind::Snapshot => SNAPSHOT_BYTES_MAX,
        }
    }
}

fn command_config() -> Configuration<LittleEndian, Varint, Limit<COMMAND_BYTES_MAX>> {
    bincode::config::standard().with_limit::<COMMAND_BYTES_MAX>()
}

fn snapshot_config() -> Configuration<LittleEndian, Varint, Limit<SNAPSHOT_BYTES_MAX>> {
    bincode::config::standard().with_limit::<SNAPSHOT_BYTES_MAX>()
}

/// Encodes `value`.
///
/// # Errors
/// [`CodecError::TooLarge`] if the encoding exceeds the limit for `kind`, or
/// [`CodecError::Encode`] if serde refuses the value.
pub(crate) fn encode<T: Serialize>(value: &T, kind: Kind) -> Result<Vec<u8>, CodecError> {
    let encoded = match kind {
        Kind::Command => bincode::serde::encode_to_vec(value, command_config()),
        Kind::Snapshot => bincode::serde::encode_to_vec(value, snapshot_config()),
    }
    .map_err(|e| CodecError::Encode(e.to_string()))?;
    if encoded.len() > kind.limit() {
        return Err(CodecError::TooLarge {
            len: encoded.len(),
            limit: kind.limit(),
        });
    }
    Ok(encoded)
}

/// Decodes one complete value of type `T` from `bytes`.
///
/// # Errors
/// [`CodecError::TooLarge`], [`CodecError::Malformed`] or [`CodecError::TrailingBytes`];
/// never panics and never allocates more than the limit for `kind`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], kind: Kind) -> Result<T, CodecError> {
    if bytes.len() > kind.limit() {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit: kind.limit(),
        });
    }
    let (value, used) = match kind {
        Kind::Command => bincode::serde::decode_from_slice::<T, _>(bytes, command_config()),
        Kind::Snapshot => bincode::serde::decode_from_slice::<T, _>(bytes, snapshot_config()),
    }
    .map_err(|e| CodecError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes(bytes.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_trailing_bytes() {
        let value = (7u64, String::from("value"));
        let mut bytes = encode(&value, Kind::Command).unwrap();
        assert_eq!(
            decode::<(u64, String)>(&bytes, Kind::Command).unwrap(),
            value
        );
        bytes.push(0);
        assert_eq!(
            decode::<(u64, String)>(&bytes, Kind::Command),
            Err(CodecError::TrailingBytes(1))
        );
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // A varint length prefix claiming ~2^63 bytes of string data.
        let bytes = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, b'a'];
        assert!(matches!(
            decode::<String>(&bytes, Kind::Command),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            decode::<Vec<u8>>(&bytes, Kind::Snapshot),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_input_is_rejected_before_decoding() {
        let bytes = vec![0u8; COMMAND_BYTES_MAX + 1];
        assert_eq!(
            decode::<Vec<u8>>(&bytes, Kind::Command),
            Err(CodecError::TooLarge {
                len: COMMAND_BYTES_MAX + 1,
                limit: COMMAND_BYTES_MAX
            })
        );
    }
}
