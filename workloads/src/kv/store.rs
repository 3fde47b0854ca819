//! The pure key-value store: a `BTreeMap` and a deterministic `apply`.

use super::command::{KvCommand, KvReply};
use crate::codec::{self, Kind};
use crate::rsm::App;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest value the store accepts, in bytes. Bounding values keeps every reply well below
/// [`COMMAND_BYTES_MAX`](crate::codec::COMMAND_BYTES_MAX), so a reply can always be encoded.
pub const VALUE_BYTES_MAX: usize = 4 * 1024 * 1024;

const _: () = assert!(VALUE_BYTES_MAX * 2 < crate::codec::COMMAND_BYTES_MAX);

/// The key-value state. Every replica holds one and applies the same commands in the same
/// order; `apply` depends only on the state and the command, so all replicas stay equal.
///
/// A `BTreeMap` (not a `HashMap`) keeps iteration, and therefore the snapshot bytes,
/// identical on every replica and in every run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    data: BTreeMap<String, String>,
}

impl KvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one command and returns its reply. A refused write (a value over
    /// [`VALUE_BYTES_MAX`]) leaves the store unchanged.
    pub fn apply(&mut self, command: &KvCommand) -> KvReply {
        match command {
            KvCommand::Put { key, value } => self.write(key, value.clone()),
            KvCommand::Append { key, value } => {
                let current = self.data.get(key).map_or("", String::as_str);
                let len = current.len().saturating_add(value.len());
                if len > VALUE_BYTES_MAX {
                    return KvReply::ValueTooLarge { len };
                }
                let stored = self.data.entry(key.clone()).or_default();
                stored.push_str(value);
                assert_eq!(stored.len(), len, "append stored an unexpected length");
                KvReply::Done
            }
            KvCommand::Get { .. } | KvCommand::Exists { .. } => {
                self.query(command).expect("Get and Exists are read-only")
            }
            KvCommand::Delete { key } => KvReply::Deleted {
                existed: self.data.remove(key).is_some(),
            },
            KvCommand::CompareAndSet { key, expected, new } => {
                self.compare_and_set(key, expected.as_deref(), new)
            }
        }
    }

    /// Answers a read-only command ([`KvCommand::is_read_only`]) without changing the store,
    /// or `None` for a write. A read served from local state after a ReadIndex barrier goes
    /// through here, so it answers exactly as the same read applied through the log would.
    pub fn query(&self, command: &KvCommand) -> Option<KvReply> {
        match command {
            KvCommand::Get { key } => Some(KvReply::Value(self.data.get(key).cloned())),
            KvCommand::Exists { key } => Some(KvReply::Exists(self.data.contains_key(key))),
            _ => {
                debug_assert!(!command.is_read_only());
                None
            }
        }
    }

    fn write(&mut self, key: &str, value: String) -> KvReply {
        if value.len() > VALUE_BYTES_MAX {
            return KvReply::ValueTooLarge { len: value.len() };
        }
        self.data.insert(key.to_string(), value);
        KvReply::Done
    }

    fn compare_and_set(&mut self, key: &str, expected: Option<&str>, new: &str) -> KvReply {
        let previous = self.data.get(key).cloned();
        if previous.as_deref() != expected {
            return KvReply::CompareAndSet {
                swapped: false,
                previous,
            };
        }
        if new.len() > VALUE_BYTES_MAX {
            return KvReply::ValueTooLarge { len: new.len() };
        }
        self.data.insert(key.to_string(), new.to_string());
        KvReply::CompareAndSet {
            swapped: true,
            previous,
        }
    }

    /// The value of `key`, for reads served from local state (after a ReadIndex barrier).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Every (key, value), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.data
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }
}

impl App for KvStore {
    type Command = KvCommand;
    type Reply = KvReply;

    fn apply(&mut self, command: KvCommand) -> KvReply {
        KvStore::apply(self, &command)
    }

    /// # Panics
    /// If the store has grown past [`SNAPSHOT_BYTES_MAX`](crate::codec::SNAPSHOT_BYTES_MAX):
    /// a capacity limit of the deployment, not something a single request can cause.
    fn snapshot(&self) -> Vec<u8> {
        codec::encode(self, Kind::Snapshot).expect("kv store exceeds the snapshot size limit")
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let restored: KvStore = codec::decode(data, Kind::Snapshot).map_err(|e| e.to_string())?;
        *self = restored;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> KvCommand {
        KvCommand::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    fn append(key: &str, value: &str) -> KvCommand {
        KvCommand::Append {
            key: key.into(),
            value: value.into(),
        }
    }

    fn get(key: &str) -> KvCommand {
        KvCommand::Get { key: key.into() }
    }

    fn cas(key: &str, expected: Option<&str>, new: &str) -> KvCommand {
        KvCommand::CompareAndSet {
            key: key.into(),
            expected: expected.map(str::to_string),
            new: new.into(),
        }
    }

    /// Each case: the command, then the reply it must produce, applied in order.
    #[test]
    fn table_of_operations() {
        let cases: Vec<(KvCommand, KvReply)> = vec![
            (get("a"), KvReply::Value(None)),
            (
                KvCommand::Exists { key: "a".into() },
                KvReply::Exists(false),
            ),
            (append("a", "x"), KvReply::Done),
            (get("a"), KvReply::Value(Some("x".into()))),
            (append("a", "y"), KvReply::Done),
            (get("a"), KvReply::Value(Some("xy".into()))),
            (put("a", "p"), KvReply::Done),
            (get("a"), KvReply::Value(Some("p".into()))),
            (KvCommand::Exists { key: "a".into() }, KvReply::Exists(true)),
            (
                cas("a", Some("nope"), "q"),
                KvReply::CompareAndSet {
                    swapped: false,
                    previous: Some("p".into()),
                },
            ),
            (
                cas("a", Some("p"), "q"),
                KvReply::CompareAndSet {
                    swapped: true,
                    previous: Some("p".into()),
                },
            ),
            (
                cas("b", None, "b1"),
                KvReply::CompareAndSet {
                    swapped: true,
                    previous: None,
                },
            ),
            (
                cas("b", None, "b2"),
                KvReply::CompareAndSet {
                    swapped: false,
                    previous: Some("b1".into()),
                },
            ),
            (
                KvCommand::Delete { key: "a".into() },
                KvReply::Deleted { existed: true },
            ),
            (
                KvCommand::Delete { key: "a".into() },
                KvReply::Deleted { existed: false },
            ),
            (get("a"), KvReply::Value(None)),
            (put("", ""), KvReply::Done),
            (KvCommand::Exists { key: "".into() }, KvReply::Exists(true)),
        ];
        let mut store = KvStore::new();
        for (i, (command, expected)) in cases.iter().enumerate() {
            assert_eq!(&store.apply(command), expected, "case {i}: {command:?}");
        }
        assert_eq!(
            store.iter().collect::<Vec<_>>(),
            vec![("", ""), ("b", "b1")]
        );
    }

    #[test]
    fn oversized_writes_are_refused_and_change_nothing() {
        let mut store = KvStore::new();
        store.apply(&put("k", "v"));
        let before = store.clone();
        let big = "x".repeat(VALUE_BYTES_MAX);
        let reply = store.apply(&append("k", &big));
        assert_eq!(
            reply,
            KvReply::ValueTooLarge {
                len: VALUE_BYTES_MAX + 1
            }
        );
        assert_eq!(store, before);
        let bigger = "x".repeat(VALUE_BYTES_MAX + 1);
        assert!(matches!(
            store.apply(&put("k", &bigger)),
            KvReply::ValueTooLarge { .. }
        ));
        assert!(matches!(
            store.apply(&cas("k", Some("v"), &bigger)),
            KvReply::ValueTooLarge { .. }
        ));
        assert_eq!(store, before);
        assert_eq!(store.apply(&put("k", &big)), KvReply::Done);
    }

    #[test]
    fn snapshot_restores_the_same_store_and_garbage_is_an_error() {
        let mut store = KvStore::new();
        store.apply(&put("a", "1"));
        store.apply(&append("b", "2"));
        let bytes = App::snapshot(&store);
        let mut restored = KvStore::new();
        restored.restore(&bytes).unwrap();
        assert_eq!(restored, store);
        let before = restored.clone();
        assert!(restored.restore(&[0xFF, 0xFF, 0xFF]).is_err());
        assert!(restored.restore(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(
            restored, before,
            "a failed restore leaves the state unchanged"
        );
    }
}
