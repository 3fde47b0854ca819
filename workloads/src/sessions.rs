//! Client sessions: the table that turns at-least-once delivery into exactly-once execution.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Identifies one client (one sequential stream of requests) for its whole life.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ClientId(pub u64);

/// A client's request number. A client numbers its requests 1, 2, 3, ... and reuses the same
/// number for every retry of one request; `Seq(0)` means "no request yet".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Seq(pub u64);

impl Seq {
    /// The number of the request after this one.
    ///
    /// # Panics
    /// On overflow, which would take longer than the age of the universe to reach.
    pub fn next(self) -> Seq {
        Seq(self
            .0
            .checked_add(1)
            .expect("request sequence number overflowed"))
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client-{}", self.0)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What the session table says about a request before it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCheck<'a, R> {
    /// Never seen: apply it, then [`SessionTable::record`] the reply.
    New,
    /// The latest request of this client, already applied: answer with the cached reply and do
    /// not apply it again.
    Duplicate(&'a R),
    /// Older than the latest request of this client. The client has already moved on (it only
    /// sends request `n + 1` once request `n` is answered or given up), so this is a delayed
    /// copy. Its reply is gone; it must not be applied.
    Stale {
        /// The latest request applied for this client.
        last: Seq,
    },
}

/// The last request applied for one client, with the reply it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Session<R> {
    last_seq: Seq,
    reply: R,
}

/// The exactly-once session table: client id → (last applied seq, its reply).
///
/// A client that times out cannot tell whether its request was lost or only its reply, so it
/// retries, possibly at another server, and the network may also deliver a request twice.
/// Both copies can be committed to the log. Execution is made exactly-once by remembering,
/// for each client, the highest request number already applied and the reply it produced, and
/// by consulting that record when an entry is *applied*, not when it is proposed: only the
/// applied order is the same on every replica. The table is therefore part of the replicated
/// state. Every replica builds the same table from the same log. It must also travel inside
/// every snapshot: a replica that restores a snapshot (after a restart, or through
/// InstallSnapshot) without it would forget which requests ran, and would apply a retried
/// request a second time. A duplicate of the latest request gets the cached reply; an older
/// request gets [`SessionCheck::Stale`]. Clients must be sequential (one request in flight
/// per client id); concurrent streams use separate client ids.
///
/// The table keeps one entry per client ever seen, so its size grows with the number of
/// clients; [`SessionTable::remove`] drops a client that has finished for good. Removal must
/// itself be a replicated command so that all replicas forget the client at the same point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTable<R> {
    sessions: BTreeMap<ClientId, Session<R>>,
}

impl<R> Default for SessionTable<R> {
    fn default() -> Self {
        SessionTable {
            sessions: BTreeMap::new(),
        }
    }
}

impl<R> SessionTable<R> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Classifies request `seq` of `client` against what has been applied.
    pub fn check(&self, client: ClientId, seq: Seq) -> SessionCheck<'_, R> {
        match self.sessions.get(&client) {
            None => SessionCheck::New,
            Some(session) if seq > session.last_seq => SessionCheck::New,
            Some(session) if seq == session.last_seq => SessionCheck::Duplicate(&session.reply),
            Some(session) => SessionCheck::Stale {
                last: session.last_seq,
            },
        }
    }

    /// Records that request `seq` of `client` was applied and produced `reply`.
    ///
    /// # Panics
    /// If `seq` is not newer than the client's last recorded request, or is `Seq(0)`: the
    /// caller must apply only requests that [`SessionTable::check`] classified as new, so
    /// this is a broken invariant, not bad input.
    pub fn record(&mut self, client: ClientId, seq: Seq, reply: R) {
        assert!(seq > Seq(0), "request numbers start at 1");
        if let Some(previous) = self.sessions.get(&client) {
            assert!(
                seq > previous.last_seq,
                "{client}: recording seq {seq} after seq {}",
                previous.last_seq
            );
        }
        self.sessions.insert(
            client,
            Session {
                last_seq: seq,
                reply,
            },
        );
        debug_assert_eq!(self.last_seq(client), Some(seq));
    }

    /// The latest request applied for `client`, if any.
    pub fn last_seq(&self, client: ClientId) -> Option<Seq> {
        self.sessions.get(&client).map(|session| session.last_seq)
    }

    /// Forgets `client`; returns whether it was known. A later request from it counts as new.
    pub fn remove(&mut self, client: ClientId) -> bool {
        self.sessions.remove(&client).is_some()
    }

    /// Adds the sessions of `other`, keeping for each client the one with the newer seq.
    ///
    /// When data moves between replica groups (shard migration), the sessions must move with
    /// it: otherwise a client whose request ran at the old group could retry at the new one
    /// and have it run again.
    pub fn merge(&mut self, other: SessionTable<R>) {
        for (client, session) in other.sessions {
            match self.sessions.get(&client) {
                Some(mine) if mine.last_seq >= session.last_seq => {}
                _ => {
                    self.sessions.insert(client, session);
                }
            }
        }
    }

    /// Number of clients with a session.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no client has a session.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Every session as (client, last seq, cached reply), in client order.
    pub fn iter(&self) -> impl Iterator<Item = (ClientId, Seq, &R)> + '_ {
        self.sessions
            .iter()
            .map(|(client, session)| (*client, session.last_seq, &session.reply))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ClientId = ClientId(1);
    const B: ClientId = ClientId(2);

    #[test]
    fn unknown_client_is_new() {
        let table: SessionTable<&str> = SessionTable::new();
        assert_eq!(table.check(A, Seq(1)), SessionCheck::New);
        assert_eq!(table.check(A, Seq(9)), SessionCheck::New);
        assert!(table.is_empty());
        assert_eq!(table.last_seq(A), None);
    }

    #[test]
    fn latest_request_is_a_duplicate_with_its_reply() {
        let mut table = SessionTable::new();
        table.record(A, Seq(1), "one");
        assert_eq!(table.check(A, Seq(1)), SessionCheck::Duplicate(&"one"));
        table.record(A, Seq(2), "two");
        assert_eq!(table.check(A, Seq(2)), SessionCheck::Duplicate(&"two"));
        assert_eq!(table.check(A, Seq(1)), SessionCheck::Stale { last: Seq(2) });
        assert_eq!(table.check(A, Seq(3)), SessionCheck::New);
    }

    #[test]
    fn gaps_are_allowed_because_a_client_may_give_up_on_a_request() {
        let mut table = SessionTable::new();
        table.record(A, Seq(1), 10);
        assert_eq!(table.check(A, Seq(5)), SessionCheck::New);
        table.record(A, Seq(5), 50);
        assert_eq!(table.check(A, Seq(3)), SessionCheck::Stale { last: Seq(5) });
    }

    #[test]
    fn clients_are_independent() {
        let mut table = SessionTable::new();
        table.record(A, Seq(3), 'a');
        assert_eq!(table.check(B, Seq(1)), SessionCheck::New);
        table.record(B, Seq(1), 'b');
        assert_eq!(table.check(A, Seq(3)), SessionCheck::Duplicate(&'a'));
        assert_eq!(table.check(B, Seq(1)), SessionCheck::Duplicate(&'b'));
        let all: Vec<_> = table.iter().collect();
        assert_eq!(all, vec![(A, Seq(3), &'a'), (B, Seq(1), &'b')]);
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn remove_forgets_a_client() {
        let mut table = SessionTable::new();
        table.record(A, Seq(4), ());
        assert!(table.remove(A));
        assert!(!table.remove(A));
        assert_eq!(table.check(A, Seq(1)), SessionCheck::New);
    }

    #[test]
    fn merge_keeps_the_newer_session_of_each_client() {
        let mut mine = SessionTable::new();
        mine.record(A, Seq(5), "mine-a");
        mine.record(B, Seq(1), "mine-b");
        let mut theirs = SessionTable::new();
        theirs.record(A, Seq(3), "theirs-a");
        theirs.record(B, Seq(2), "theirs-b");
        theirs.record(ClientId(3), Seq(1), "theirs-c");
        mine.merge(theirs);
        assert_eq!(mine.check(A, Seq(5)), SessionCheck::Duplicate(&"mine-a"));
        assert_eq!(mine.check(B, Seq(2)), SessionCheck::Duplicate(&"theirs-b"));
        assert_eq!(
            mine.check(ClientId(3), Seq(1)),
            SessionCheck::Duplicate(&"theirs-c")
        );
        assert_eq!(mine.len(), 3);
    }

    #[test]
    #[should_panic(expected = "recording seq 2 after seq 2")]
    fn recording_the_same_seq_twice_is_a_broken_invariant() {
        let mut table = SessionTable::new();
        table.record(A, Seq(2), ());
        table.record(A, Seq(2), ());
    }

    #[test]
    #[should_panic(expected = "request numbers start at 1")]
    fn seq_zero_is_never_recorded() {
        let mut table = SessionTable::new();
        table.record(A, Seq(0), ());
    }
}
