//! The client protocol of a kvnode: requests and responses as bincode in frames.
//!
//! A client sends [`ClientRequest`]s on one connection and may have several outstanding; each
//! [`ClientResponse`] carries the request's tag. A server that cannot decode a request closes
//! the connection (and logs why): a peer that sends garbage cannot be answered meaningfully.

use raft_core::NodeId;
use serde::{Deserialize, Serialize};
use workloads::{Envelope, KvCommand, KvError, KvReply};

/// Largest client frame (requests and responses): a command is bounded by
/// [`workloads::COMMAND_BYTES_MAX`], plus room for the envelope.
pub const CLIENT_FRAME_BYTES_MAX: usize = workloads::COMMAND_BYTES_MAX + 4096;

/// Largest peer frame: one Raft message.
pub const PEER_FRAME_BYTES_MAX: usize = raft_core::message::MESSAGE_BYTES_MAX;

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestBody {
    /// A kv command inside its exactly-once envelope.
    Kv(Envelope<KvCommand>),
    /// The node's Raft status.
    Status,
}

/// One request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// Chosen by the client; echoed in the response.
    pub tag: u64,
    /// The request.
    pub body: RequestBody,
}

/// A node's Raft status as the client port reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node.
    pub id: NodeId,
    /// `Leader`, `Follower`, `Candidate`, ...
    pub role: String,
    /// Current term.
    pub term: u64,
    /// The leader it believes in.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// Last log index.
    pub last_index: u64,
}

/// What a server answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseBody {
    /// The outcome of a kv command.
    Kv(Result<KvReply, KvError>),
    /// The node's status.
    Status(NodeStatus),
}

/// One response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientResponse {
    /// The request's tag.
    pub tag: u64,
    /// The answer.
    pub body: ResponseBody,
}

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable {what}: {reason}")]
pub struct WireError {
    /// What was being decoded.
    pub what: &'static str,
    /// Why it failed.
    pub reason: String,
}

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<CLIENT_FRAME_BYTES_MAX>,
> {
    bincode::config::standard().with_limit::<CLIENT_FRAME_BYTES_MAX>()
}

/// Encodes a client message.
///
/// # Errors
/// The value exceeds [`CLIENT_FRAME_BYTES_MAX`].
pub fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| WireError {
        what,
        reason: e.to_string(),
    })
}

/// Decodes a client message, refusing trailing bytes.
///
/// # Errors
/// Malformed, oversized or trailing bytes.
pub fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, WireError> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| WireError {
            what,
            reason: e.to_string(),
        })?;
    if used != bytes.len() {
        return Err(WireError {
            what,
            reason: format!("{} trailing bytes", bytes.len() - used),
        });
    }
    Ok(value)
}
