//! The application state machine that committed entries are applied to.

use crate::types::LogIndex;

/// A deterministic application state machine.
///
/// Every replica applies the same committed commands in the same order, so `apply` must depend
/// only on the state and the command bytes: no clocks, no randomness, no I/O.
pub trait StateMachine {
    /// Applies the command committed at `index` and returns the result bytes handed back to
    /// the proposer.
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Vec<u8>;
    /// Serializes the whole state as of the last applied index.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with a snapshot produced by [`StateMachine::snapshot`].
    ///
    /// # Errors
    /// A description of why the bytes are not a valid snapshot.
    fn restore(&mut self, data: &[u8]) -> Result<(), String>;
}
