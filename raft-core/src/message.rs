//! Messages exchanged between replicas, and their bounded binary encoding.
//!
//! The encoding is bincode 2 (standard configuration) with a hard byte limit, so a corrupted
//! or hostile length prefix can never make the decoder allocate more than
//! [`MESSAGE_BYTES_MAX`].

use crate::types::{Entry, LogIndex, NodeId, SnapshotMeta, Term};
use serde::{Deserialize, Serialize};

/// Largest encoded message accepted by [`decode`], in bytes.
pub const MESSAGE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// A message from one replica to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of message (Raft Figure 2, plus PreVote, ReadIndex and chunked InstallSnapshot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// A (pre-)candidate asks for a vote.
    RequestVote {
        /// True for a PreVote round, which changes no term and no vote.
        pre_vote: bool,
        /// Index of the candidate's last log entry.
        last_log_index: LogIndex,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
    },
    /// Answer to [`MessageBody::RequestVote`].
    RequestVoteResponse {
        /// Echoes the request's `pre_vote`.
        pre_vote: bool,
        /// Whether the vote is granted.
        granted: bool,
    },
    /// The leader replicates entries following `prev_log_index`.
    AppendEntries {
        /// Index of the entry just before `entries`.
        prev_log_index: LogIndex,
        /// Term of the entry at `prev_log_index`.
        prev_log_term: Term,
        /// Entries to append (possibly none).
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: LogIndex,
    },
    /// Answer to [`MessageBody::AppendEntries`].
    AppendEntriesResponse(AppendResult),
    /// Leader liveness and read confirmation; carries no entries and checks no log position.
    Heartbeat {
        /// `min(leader commit, follower match)`, safe for the follower to adopt.
        commit: LogIndex,
        /// Read-confirmation round this heartbeat belongs to.
        read_round: u64,
    },
    /// Answer to [`MessageBody::Heartbeat`].
    HeartbeatResponse {
        /// Echoes the heartbeat's `read_round`.
        read_round: u64,
    },
    /// One chunk of a snapshot sent to a follower whose log is behind the leader's first index.
    InstallSnapshot {
        /// Position the snapshot covers.
        meta: SnapshotMeta,
        /// Offset of `data` within the whole snapshot.
        offset: u64,
        /// The chunk.
        #[serde(with = "crate::types::bytes")]
        data: Vec<u8>,
        /// Total length of the snapshot.
        total_len: u64,
        /// CRC32 of the whole snapshot, checked once every chunk has arrived.
        checksum: u32,
        /// The configuration at `meta.index`. Boxed, like the rare configuration entries, so
        /// that this rare message does not make every message larger to move.
        membership: Box<crate::membership::Membership>,
    },
    /// Answer to [`MessageBody::InstallSnapshot`].
    InstallSnapshotResponse {
        /// Which snapshot this answers.
        meta: SnapshotMeta,
        /// Bytes received so far; the leader continues from here. Equals the total when done.
        next_offset: u64,
        /// True once the snapshot is complete and accepted.
        done: bool,
    },
    /// A follower forwards a linearizable read request to the leader.
    ReadIndex {
        /// Identifier chosen by the follower, unique across its incarnations.
        request: ForwardedReadId,
    },
    /// The leader's answer to [`MessageBody::ReadIndex`].
    ReadIndexResponse {
        /// Echoes the request identifier.
        request: ForwardedReadId,
        /// The read index, or `None` if the leader could not serve it.
        index: Option<LogIndex>,
    },
    /// Leadership transfer: the leader tells a caught-up follower to start an election now,
    /// without a PreVote round (Raft thesis §3.10).
    TimeoutNow,
    /// A vote request from a candidate that received [`MessageBody::TimeoutNow`]. Voters grant
    /// it like a [`MessageBody::RequestVote`] but do not ignore it while they hear from the
    /// old leader (CheckQuorum's lease), since that leader asked for the election.
    RequestVoteForTransfer {
        /// Index of the candidate's last log entry.
        last_log_index: LogIndex,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
    },
}

/// Names one forwarded read request across every incarnation of the follower that sent it.
///
/// A reply can arrive after the follower restarted; were requests numbered per incarnation
/// only, a reply meant for the previous incarnation's read `n` would resolve the new read `n`
/// with an index that may predate writes acknowledged since (a stale read). The incarnation
/// nonce tells the two apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ForwardedReadId {
    /// Chosen once per incarnation from the seed the replica was opened with.
    pub incarnation: u64,
    /// Sequence number within the incarnation.
    pub seq: u64,
}

/// The outcome of an AppendEntries request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log now matches the leader's up to `match_index`.
    Success {
        /// Last index known to match.
        match_index: LogIndex,
    },
    /// The follower's log does not contain the request's `prev_log_index`/`prev_log_term`.
    Reject {
        /// The `prev_log_index` of the rejected request, so stale rejections can be ignored.
        rejected_index: LogIndex,
        /// Fast backtracking hint: where the leader should look next.
        conflict_index: LogIndex,
        /// Term of the follower's entry at `rejected_index`, if it has one.
        conflict_term: Option<Term>,
    },
}

/// A malformed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input exceeds [`MESSAGE_BYTES_MAX`].
    #[error("message of {len} bytes exceeds the {max} byte limit")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// bincode rejected the input.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Bytes were left after a complete message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

/// The bincode configuration shared by messages and WAL records: little endian, variable-length
/// integers, and a hard allocation limit.
pub(crate) fn bincode_config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MESSAGE_BYTES_MAX>,
> {
    bincode::config::standard().with_limit::<MESSAGE_BYTES_MAX>()
}

/// Encodes a message for the wire.
pub fn encode(msg: &Message) -> Vec<u8> {
    // Encoding an in-memory message cannot fail except by exceeding the limit, which the
    // replication batching limits rule out; treat it as a broken invariant.
    bincode::serde::encode_to_vec(msg, bincode_config()).expect("message exceeds encoding limit")
}

/// Decodes a message produced by [`encode`].
///
/// # Errors
/// Any malformed, truncated, oversized or over-long input gives a [`DecodeError`]; decoding
/// never allocates more than [`MESSAGE_BYTES_MAX`] bytes.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MESSAGE_BYTES_MAX,
        });
    }
    let (msg, used) = bincode::serde::decode_from_slice::<Message, _>(bytes, bincode_config())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - used));
    }
    Ok(msg)
}
