//! Errors a kv server returns to a clerk instead of a result.

use crate::sessions::Seq;
use raft_core::NodeId;
use serde::{Deserialize, Serialize};

/// Why a request produced no result. All but `Stale` and `Malformed` are retryable: the clerk
/// sends the same request (same seq) again, and the session table keeps it exactly-once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum KvError {
    /// The server is not the leader; `hint` is the leader it believes in, if any.
    #[error("wrong leader (hint: {hint:?})")]
    WrongLeader {
        /// The leader the server believes in.
        hint: Option<NodeId>,
    },
    /// The server could not learn the outcome (it lost leadership, its log position was taken
    /// by another leader's entry, or a snapshot replaced the log around it). The request may
    /// or may not have been applied; retrying it with the same seq is safe.
    #[error("outcome unknown at this server; retry")]
    Timeout,
    /// The request is older than the latest one applied for this client. A sequential client
    /// never waits for such a request, so this answers a delayed copy.
    #[error("stale request: seq {last} was already applied for this client")]
    Stale {
        /// The latest request applied for this client.
        last: Seq,
    },
    /// The request bytes could not be decoded.
    #[error("malformed request: {0}")]
    Malformed(String),
}

impl KvError {
    /// Whether sending the same request again can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, KvError::WrongLeader { .. } | KvError::Timeout)
    }
}
