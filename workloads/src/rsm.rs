//! A generic replicated-state-machine wrapper: exactly-once execution for any application.
//!
//! An application implements the small [`App`] trait (typed commands and replies, snapshot and
//! restore). [`Deduplicated`] turns it into a [`raft_core::StateMachine`]: every log entry is
//! an [`Envelope`] (client id, request seq, command); the wrapper consults the
//! [`SessionTable`] before applying, so a retried or duplicated request runs once and later
//! copies get the cached reply; and its snapshots carry the session table together with the
//! application state.
//!
//! The other two pieces of the wrapper live elsewhere because they are not part of the
//! replicated state: waiting for a proposal to be applied is
//! [`PendingRequests`](crate::pending::PendingRequests), and automatic snapshots are taken by
//! raft-core once the log passes `snapshot_threshold_bytes`
//! ([`KvServerConfig`](crate::kv::KvServerConfig)).

use crate::codec::{self, CodecError, Kind};
use crate::kv::{KvBugs, KvError};
use crate::sessions::{ClientId, Seq, SessionCheck, SessionTable};
use raft_core::{LogIndex, StateMachine};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A deterministic application, before exactly-once is added.
///
/// `apply` must depend only on the state and the command (no clocks, randomness or I/O), so
/// that every replica computes the same state and the same replies.
pub trait App {
    /// What clients ask for.
    type Command: Serialize + DeserializeOwned;
    /// What a command returns. Cloned into the session table.
    type Reply: Clone + Serialize + DeserializeOwned;

    /// Applies one command.
    fn apply(&mut self, command: Self::Command) -> Self::Reply;

    /// The whole application state as bytes.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with bytes from [`App::snapshot`].
    ///
    /// # Errors
    /// Why the bytes are not a valid snapshot; the state must then be unchanged.
    fn restore(&mut self, data: &[u8]) -> Result<(), String>;
}

/// What a client puts in the log: who is asking, which of its requests this is, and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<C> {
    /// The client.
    pub client: ClientId,
    /// The client's request number, the same for every retry of one request.
    pub seq: Seq,
    /// The command.
    pub command: C,
}

impl<C: Serialize> Envelope<C> {
    /// The bytes to propose.
    ///
    /// # Errors
    /// [`CodecError::TooLarge`] beyond [`COMMAND_BYTES_MAX`](crate::codec::COMMAND_BYTES_MAX).
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self, Kind::Command)
    }
}

impl<C: DeserializeOwned> Envelope<C> {
    /// Decodes bytes made by [`Envelope::encode`].
    ///
    /// # Errors
    /// Malformed, oversized or trailing bytes, and `Seq(0)`, which no client sends.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let envelope: Envelope<C> = codec::decode(bytes, Kind::Command)?;
        if envelope.seq == Seq(0) {
            return Err(CodecError::Malformed(
                "request seq 0 is reserved".to_string(),
            ));
        }
        Ok(envelope)
    }
}

/// What applying one log entry produced; its encoding is the entry's result bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyOutcome<R> {
    /// The command ran now.
    Applied(R),
    /// The command had already run; this is the reply it produced then.
    Duplicate(R),
    /// The request is older than the client's latest; nothing ran.
    Stale {
        /// The client's latest applied request.
        last: Seq,
    },
    /// The entry could not be decoded; nothing ran.
    Malformed(String),
}

impl<R> ApplyOutcome<R> {
    /// What to answer the client.
    ///
    /// # Errors
    /// [`KvError::Stale`] or [`KvError::Malformed`] when no reply exists.
    pub fn into_response(self) -> Result<R, KvError> {
        match self {
            ApplyOutcome::Applied(reply) | ApplyOutcome::Duplicate(reply) => Ok(reply),
            ApplyOutcome::Stale { last } => Err(KvError::Stale { last }),
            ApplyOutcome::Malformed(reason) => Err(KvError::Malformed(reason)),
        }
    }
}

impl<R: Serialize> ApplyOutcome<R> {
    /// The result bytes of the entry.
    ///
    /// # Errors
    /// [`CodecError::TooLarge`] if the reply exceeds
    /// [`COMMAND_BYTES_MAX`](crate::codec::COMMAND_BYTES_MAX).
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self, Kind::Command)
    }
}

impl<R: DeserializeOwned> ApplyOutcome<R> {
    /// Decodes the result bytes of an applied entry (`Event::Applied::result`).
    ///
    /// # Errors
    /// Malformed, oversized or trailing bytes (for example the empty result of a no-op).
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode(bytes, Kind::Command)
    }
}

/// The snapshot layout, written from borrowed state.
#[derive(Serialize)]
struct ImageRef<'a, R> {
    applied: LogIndex,
    sessions: &'a SessionTable<R>,
    app: Vec<u8>,
}

/// The snapshot layout, read back.
#[derive(Deserialize)]
#[serde(bound = "R: DeserializeOwned")]
struct Image<R> {
    applied: LogIndex,
    sessions: SessionTable<R>,
    app: Vec<u8>,
}

/// An [`App`] behind an exactly-once session table; implements
/// [`raft_core::StateMachine`].
///
/// De-duplication happens at apply time, not at proposal time: the same request may sit in
/// the log several times (a retry after a timeout, a duplicated message, a new leader
/// re-proposing), and only the apply order is the same on every replica. The first copy
/// runs; later copies of the client's latest request return its cached reply; copies of older
/// requests return [`ApplyOutcome::Stale`].
#[derive(Debug, Clone)]
pub struct Deduplicated<A: App> {
    app: A,
    sessions: SessionTable<A::Reply>,
    applied: LogIndex,
    bugs: KvBugs,
}

impl<A: App> Deduplicated<A> {
    /// Wraps `app`, with no session yet.
    pub fn new(app: A) -> Self {
        Self::with_bugs(app, KvBugs::default())
    }

    /// Wraps `app` with planted bugs enabled (see [`KvBugs`]).
    pub fn with_bugs(app: A, bugs: KvBugs) -> Self {
        if bugs.any() {
            tracing::warn!(?bugs, "state machine runs with planted bugs");
        }
        Deduplicated {
            app,
            sessions: SessionTable::new(),
            applied: LogIndex(0),
            bugs,
        }
    }

    /// The application, for reads served from local state.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The session table.
    pub fn sessions(&self) -> &SessionTable<A::Reply> {
        &self.sessions
    }

    /// The index of the last applied entry (restored from snapshots too).
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// Applies one envelope and returns its outcome; the typed core of
    /// [`StateMachine::apply`].
    pub fn apply_envelope(&mut self, envelope: Envelope<A::Command>) -> ApplyOutcome<A::Reply> {
        let Envelope {
            client,
            seq,
            command,
        } = envelope;
        match self.sessions.check(client, seq) {
            // BUG (planted, `session_dedup_off_by_one`): `seq >= last_seq` counts as new, so
            // the retry of the last request runs again (its session already names `seq`).
            SessionCheck::Duplicate(_) if self.bugs.session_dedup_off_by_one => {
                ApplyOutcome::Applied(self.app.apply(command))
            }
            SessionCheck::Duplicate(reply) => {
                tracing::debug!(%client, %seq, "duplicate request; cached reply");
                ApplyOutcome::Duplicate(reply.clone())
            }
            SessionCheck::Stale { last } => {
                tracing::debug!(%client, %seq, %last, "stale request ignored");
                ApplyOutcome::Stale { last }
            }
            SessionCheck::New => {
                let reply = self.app.apply(command);
                self.sessions.record(client, seq, reply.clone());
                ApplyOutcome::Applied(reply)
            }
        }
    }
}

impl<A: App> StateMachine for Deduplicated<A> {
    /// # Panics
    /// If `index` does not increase (entries applied twice or out of order: a bug in the
    /// caller), or if a reply exceeds the command size limit (an [`App`] bug).
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Vec<u8> {
        assert!(
            index > self.applied,
            "apply at {index} after {}",
            self.applied
        );
        self.applied = index;
        let outcome = match Envelope::<A::Command>::decode(data) {
            Ok(envelope) => self.apply_envelope(envelope),
            Err(error) => {
                tracing::debug!(%index, %error, "malformed entry ignored");
                ApplyOutcome::Malformed(error.to_string())
            }
        };
        outcome
            .encode()
            .expect("a reply exceeds the command size limit")
    }

    /// # Panics
    /// If the state exceeds [`SNAPSHOT_BYTES_MAX`](crate::codec::SNAPSHOT_BYTES_MAX).
    fn snapshot(&self) -> Vec<u8> {
        let empty = SessionTable::new();
        // BUG (planted, `sessions_not_in_snapshot`): a replica restored from this snapshot
        // forgets which requests ran, so a retry committed after the snapshot runs again.
        let sessions = if self.bugs.sessions_not_in_snapshot {
            &empty
        } else {
            &self.sessions
        };
        let image = ImageRef {
            applied: self.applied,
            sessions,
            app: self.app.snapshot(),
        };
        codec::encode(&image, Kind::Snapshot).expect("state exceeds the snapshot size limit")
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let image: Image<A::Reply> =
            codec::decode(data, Kind::Snapshot).map_err(|e| format!("snapshot: {e}"))?;
        // Restore the application first: if it refuses, nothing has changed.
        self.app
            .restore(&image.app)
            .map_err(|e| format!("application snapshot: {e}"))?;
        self.sessions = image.sessions;
        self.applied = image.applied;
        Ok(())
    }
}
