//! Domain integers and the log entry / hard state records.
//!
//! Every integer that means something in the protocol gets its own newtype so that a term can
//! never be passed where an index is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

macro_rules! newtype_u64 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize,
            Deserialize,
        )]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

newtype_u64!(
    /// Identifies one replica of the cluster.
    NodeId
);
newtype_u64!(
    /// A Raft term: a logical clock that increases with every election (Raft §5.1).
    Term
);
newtype_u64!(
    /// A 1-based position in the replicated log; `LogIndex(0)` means "before the first entry".
    LogIndex
);

impl LogIndex {
    /// The index right after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }

    /// The index right before this one, saturating at zero.
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// Appended by every new leader so that it can commit an entry of its own term (Raft §8).
    Noop,
    /// An application command, opaque to Raft. Shared, so that copies of an entry (in the
    /// log, in messages to several followers, in the WAL write and in the apply batch) do not
    /// copy the command.
    Normal(#[serde(with = "crate::types::shared_bytes")] Arc<[u8]>),
    /// A new cluster configuration; it takes effect as soon as it is in a replica's log.
    /// Boxed so that configuration entries, which are rare, do not enlarge every entry.
    Config(Box<crate::membership::Membership>),
}

/// Serde helpers for `Arc<[u8]>`, encoded like [`bytes`].
pub(crate) mod shared_bytes {
    use serde::{Deserializer, Serializer};
    use std::sync::Arc;

    pub(crate) fn serialize<S: Serializer>(
        bytes: &Arc<[u8]>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Arc<[u8]>, D::Error> {
        super::bytes::deserialize(deserializer).map(Arc::from)
    }
}

/// Serde helpers that encode a `Vec<u8>` as one byte string (a length and a memcpy) rather
/// than as a sequence of individually encoded `u8`s.
pub(crate) mod bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            // Never trust a size hint from the input for preallocation beyond a small bound.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(byte) = seq.next_element()? {
                out.push(byte);
            }
            Ok(out)
        }
    }
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: Term,
    /// Position of the entry in the log.
    pub index: LogIndex,
    /// Payload.
    pub kind: EntryKind,
}

impl Entry {
    /// The application bytes of the entry (empty for a no-op).
    pub fn data(&self) -> &[u8] {
        match &self.kind {
            EntryKind::Noop | EntryKind::Config(_) => &[],
            EntryKind::Normal(data) => data,
        }
    }

    /// Approximate in-memory / on-wire size, used for batching limits and log accounting.
    pub fn size_bytes(&self) -> u64 {
        // Term, index and the enum tag, plus the payload.
        24 + self.data().len() as u64
    }
}

/// The part of a replica's state that must survive a crash (Raft Figure 2, "persistent state").
///
/// `commit` is persisted too so that a restarted replica can re-apply committed entries without
/// waiting for a leader; it is only a lower bound, never a promise made to clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this replica has seen.
    pub term: Term,
    /// The candidate this replica voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest index known to be committed.
    pub commit: LogIndex,
}

/// The role a replica currently plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks for pre-votes before disturbing the cluster with a real election (Raft thesis §9.6).
    PreCandidate,
    /// Asks for votes in a new term.
    Candidate,
    /// Accepts proposals and replicates the log.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        };
        f.write_str(name)
    }
}

/// Describes the state a snapshot covers: every entry up to and including `index`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Last log index included in the snapshot.
    pub index: LogIndex,
    /// Term of the entry at `index`.
    pub term: Term,
}

/// A state machine snapshot together with the log position it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Position covered.
    pub meta: SnapshotMeta,
    /// Opaque state machine bytes produced by `StateMachine::snapshot`.
    pub data: std::sync::Arc<Vec<u8>>,
    /// The cluster configuration in effect at `meta.index`.
    pub membership: crate::membership::Membership,
}
