//! Operations as observed by clients: what was asked, when, and what came back.

use std::fmt;

/// The client (Jepsen "process") that issued an operation. Only used in reports: the checker
/// derives ordering from timestamps alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}", self.0)
    }
}

/// A point in time on the clock shared by all clients of one history (simulated microseconds,
/// or any other monotonic unit; only the order matters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the client learned about an operation's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<O> {
    /// The operation completed and returned this output.
    Ok(O),
    /// The result was not observed (timeout, crash, lost reply). The operation may or may not
    /// have taken effect.
    Unknown,
}

impl<O> Outcome<O> {
    /// The observed output, if any.
    pub fn output(&self) -> Option<&O> {
        match self {
            Outcome::Ok(output) => Some(output),
            Outcome::Unknown => None,
        }
    }

    /// True for [`Outcome::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, Outcome::Unknown)
    }
}

/// One operation of a history.
///
/// The interval `[call, return_time]` is closed: two operations whose intervals share an
/// endpoint are concurrent. With a monotonic clock read before sending the request and after
/// receiving the reply, the true effect lies inside the closed interval, and treating a shared
/// endpoint as "before" could reject a correct system.
///
/// `return_time == None` means the completion was never observed: the operation may take
/// effect at any time after `call`, or never. Its outcome is then [`Outcome::Unknown`].
/// An operation with a return time and an unknown outcome must have taken effect, if at all,
/// before it returned; only its output is unconstrained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// Who issued it.
    pub client: ClientId,
    /// When it was invoked.
    pub call: Timestamp,
    /// When its completion was observed, if it was.
    pub return_time: Option<Timestamp>,
    /// The argument.
    pub input: I,
    /// The observed result.
    pub outcome: Outcome<O>,
}

impl<I, O> Operation<I, O> {
    /// True if the completion was observed (the interval is finite).
    pub fn is_closed(&self) -> bool {
        self.return_time.is_some()
    }

    /// The observed output, if any.
    pub fn output(&self) -> Option<&O> {
        self.outcome.output()
    }
}

/// A whole history: operations in any order (conventionally by call time).
pub type History<I, O> = Vec<Operation<I, O>>;
