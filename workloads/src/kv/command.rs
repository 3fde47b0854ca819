//! The operations of the kv service and their results.

use serde::{Deserialize, Serialize};

/// One operation on the store. Keys are independent: every operation touches one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvCommand {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Appends `value` to the value of `key`; a missing key acts as the empty string.
    Append {
        /// The key.
        key: String,
        /// The suffix.
        value: String,
    },
    /// Reads `key`.
    Get {
        /// The key.
        key: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Tells whether `key` is present.
    Exists {
        /// The key.
        key: String,
    },
    /// Sets `key` to `new` if its current value is `expected` (`None`: the key is absent).
    CompareAndSet {
        /// The key.
        key: String,
        /// The value the key must have for the swap to happen; `None` means absent.
        expected: Option<String>,
        /// The value written on success.
        new: String,
    },
}

impl KvCommand {
    /// The key the command touches.
    pub fn key(&self) -> &str {
        match self {
            KvCommand::Put { key, .. }
            | KvCommand::Append { key, .. }
            | KvCommand::Get { key }
            | KvCommand::Delete { key }
            | KvCommand::Exists { key }
            | KvCommand::CompareAndSet { key, .. } => key,
        }
    }

    /// Whether the command never changes the store. Such commands may be served from local
    /// state after a ReadIndex barrier instead of going through the log.
    pub fn is_read_only(&self) -> bool {
        matches!(self, KvCommand::Get { .. } | KvCommand::Exists { .. })
    }
}

/// The result of one [`KvCommand`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvReply {
    /// A `Put` or `Append` took effect.
    Done,
    /// The value a `Get` read (`None`: absent).
    Value(Option<String>),
    /// A `Delete` ran; `existed` tells whether the key was present.
    Deleted {
        /// Whether the key was present before.
        existed: bool,
    },
    /// Whether the key of an `Exists` is present.
    Exists(bool),
    /// A `CompareAndSet` ran.
    CompareAndSet {
        /// Whether the new value was written.
        swapped: bool,
        /// The value found before the operation (`None`: absent).
        previous: Option<String>,
    },
    /// The write was refused because the resulting value would exceed
    /// [`VALUE_BYTES_MAX`](crate::kv::VALUE_BYTES_MAX); the store is unchanged.
    ValueTooLarge {
        /// Length the value would have had, in bytes.
        len: usize,
    },
}
