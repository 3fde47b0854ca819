//! Building a history while a test runs.
//!
//! A test harness calls [`Recorder::call`] just before sending a request and
//! [`Recorder::ok`] (or [`Recorder::unknown`]) when the reply arrives or the request is given up.
//! Operations still open when [`Recorder::finish`] is called get no return time: they may have
//! taken effect at any point, or never.

use std::collections::BTreeMap;

use crate::history::{ClientId, Operation, Outcome, Timestamp};
use crate::jsonl::JsonCodec;

/// Identifies a recorded operation (its index in the history).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

/// Misuse of the recorder.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Timestamps must not go backwards: the checker orders operations by them.
    #[error("time went backwards: {at} is before {last}")]
    TimeWentBackwards {
        /// The offending time.
        at: Timestamp,
        /// The latest time recorded before.
        last: Timestamp,
    },
    /// A client issued a second operation while its previous one was still open.
    #[error("{client} already has open operation {open:?}")]
    ClientBusy {
        /// The client.
        client: ClientId,
        /// Its open operation.
        open: OpId,
    },
    /// The operation does not exist or has already completed.
    #[error("operation {0:?} is not open")]
    NotOpen(OpId),
}

/// Records operations as they are invoked and complete, with the caller's (simulated)
/// timestamps. Deterministic: it keeps no clock of its own.
#[derive(Clone, Debug)]
pub struct Recorder<I, O> {
    ops: Vec<Operation<I, O>>,
    open: BTreeMap<ClientId, OpId>,
    last: Timestamp,
}

impl<I, O> Default for Recorder<I, O> {
    fn default() -> Self {
        Self {
            ops: Vec::new(),
            open: BTreeMap::new(),
            last: Timestamp(0),
        }
    }
}

impl<I, O> Recorder<I, O> {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record that `client` invoked `input` at time `at`.
    ///
    /// # Errors
    /// If `at` is earlier than a time recorded before, or the client has an open operation.
    pub fn call(&mut self, client: ClientId, at: Timestamp, input: I) -> Result<OpId, RecordError> {
        // Validate everything before changing anything: a failed call leaves no trace.
        if let Some(&open) = self.open.get(&client) {
            return Err(RecordError::ClientBusy { client, open });
        }
        self.advance(at)?;
        let id = OpId(self.ops.len());
        self.ops.push(Operation {
            client,
            call: at,
            return_time: None,
            input,
            outcome: Outcome::Unknown,
        });
        self.open.insert(client, id);
        Ok(id)
    }

    /// Record that operation `id` completed at `at` with `output`.
    ///
    /// # Errors
    /// If `at` goes backwards or the operation is not open.
    pub fn ok(&mut self, id: OpId, at: Timestamp, output: O) -> Result<(), RecordError> {
        self.close(id, at, Outcome::Ok(output))
    }

    /// Record that operation `id` completed at `at` without its result being learned (for
    /// example the reply said "timed out" after the request was cancelled). The operation took
    /// effect before `at`, or not at all. If the request may still take effect later, use
    /// [`Recorder::abandon`] instead.
    ///
    /// # Errors
    /// If `at` goes backwards or the operation is not open.
    pub fn unknown(&mut self, id: OpId, at: Timestamp) -> Result<(), RecordError> {
        self.close(id, at, Outcome::Unknown)
    }

    /// Record that the client gave up on `id` while the request may still take effect later:
    /// the operation stays open forever (no return time, unknown outcome), and the client may
    /// issue new operations.
    ///
    /// # Errors
    /// If the operation is not open.
    pub fn abandon(&mut self, id: OpId) -> Result<(), RecordError> {
        let op = self.ops.get(id.0).ok_or(RecordError::NotOpen(id))?;
        if self.open.get(&op.client) != Some(&id) {
            return Err(RecordError::NotOpen(id));
        }
        self.open.remove(&op.client);
        Ok(())
    }

    fn close(&mut self, id: OpId, at: Timestamp, outcome: Outcome<O>) -> Result<(), RecordError> {
        let client = self.ops.get(id.0).ok_or(RecordError::NotOpen(id))?.client;
        if self.open.get(&client) != Some(&id) {
            return Err(RecordError::NotOpen(id));
        }
        self.advance(at)?;
        self.open.remove(&client);
        let op = &mut self.ops[id.0];
        assert!(
            op.return_time.is_none(),
            "an open operation has no return time"
        );
        assert!(
            op.call <= at,
            "time is monotonic, so the return follows the call"
        );
        op.return_time = Some(at);
        op.outcome = outcome;
        Ok(())
    }

    fn advance(&mut self, at: Timestamp) -> Result<(), RecordError> {
        if at < self.last {
            return Err(RecordError::TimeWentBackwards {
                at,
                last: self.last,
            });
        }
        self.last = at;
        Ok(())
    }

    /// The operations recorded so far (open ones have no return time).
    pub fn operations(&self) -> &[Operation<I, O>] {
        &self.ops
    }

    /// Number of operations recorded.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The operations recorded so far as JSON Lines (open ones with `"return": null`).
    pub fn to_jsonl<M>(&self, model: &M) -> String
    where
        M: JsonCodec<Input = I, Output = O>,
    {
        crate::jsonl::to_jsonl(model, &self.ops)
    }

    /// The finished history. Operations still open keep no return time and an unknown
    /// outcome.
    pub fn finish(self) -> Vec<Operation<I, O>> {
        self.ops
    }
}
