//! A compact log of everything that happened in a run, for determinism checks.
//!
//! Every message delivery, node step, fault and client request adds one record: simulated time,
//! node, kind and a fingerprint of the details. The run's *event hash* chains all records, so
//! two runs of one seed are identical exactly when their hashes are. `--check-determinism`
//! keeps the records too and reports the first one where two runs differ.

use crate::checkers::{fingerprint, mix};
use std::fmt;
use std::time::Duration;

/// One thing that happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// Simulated time.
    pub at: Duration,
    /// The node concerned (0 for the cluster as a whole).
    pub node: u64,
    /// What kind of event.
    pub kind: &'static str,
    /// Fingerprint of the event's details.
    pub detail: u64,
}

impl fmt::Display for EventRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} n{} {} {:016x}",
            self.at, self.node, self.kind, self.detail
        )
    }
}

/// The hash chain, and optionally the records themselves.
#[derive(Debug, Default)]
pub struct EventLog {
    hash: u64,
    count: u64,
    records: Option<Vec<EventRecord>>,
}

impl EventLog {
    /// A log that keeps its records (`keep`) or only the hash.
    pub fn new(keep: bool) -> EventLog {
        EventLog {
            hash: 0,
            count: 0,
            records: keep.then(Vec::new),
        }
    }

    /// Adds one event.
    pub fn record(&mut self, at: Duration, node: u64, kind: &'static str, detail: u64) {
        let kind_word = fingerprint(kind.as_bytes());
        let mut h = mix(self.hash ^ at.as_nanos() as u64);
        h = mix(h ^ node.rotate_left(48) ^ kind_word.rotate_left(32));
        self.hash = mix(h ^ detail);
        self.count += 1;
        if let Some(records) = &mut self.records {
            records.push(EventRecord {
                at,
                node,
                kind,
                detail,
            });
        }
    }

    /// The chained hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Number of events.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The records, if kept.
    pub fn take_records(&mut self) -> Vec<EventRecord> {
        self.records.take().unwrap_or_default()
    }
}

/// The first position where two record sequences differ, with both sides (`None` = ended).
pub fn first_difference(
    a: &[EventRecord],
    b: &[EventRecord],
) -> Option<(usize, Option<EventRecord>, Option<EventRecord>)> {
    let common = a.iter().zip(b).position(|(x, y)| x != y);
    match common {
        Some(i) => Some((i, Some(a[i]), Some(b[i]))),
        None if a.len() == b.len() => None,
        None => {
            let i = a.len().min(b.len());
            Some((i, a.get(i).copied(), b.get(i).copied()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_logs_hash_equal_and_differences_are_located() {
        let mut a = EventLog::new(true);
        let mut b = EventLog::new(true);
        for i in 0..10 {
            a.record(Duration::from_millis(i), 1, "step", i);
            b.record(
                Duration::from_millis(i),
                1,
                "step",
                if i == 7 { 99 } else { i },
            );
        }
        assert_ne!(a.hash(), b.hash());
        let (ra, rb) = (a.take_records(), b.take_records());
        let (at, x, y) = first_difference(&ra, &rb).unwrap();
        assert_eq!(at, 7);
        assert_eq!(x.unwrap().detail, 7);
        assert_eq!(y.unwrap().detail, 99);
        assert_eq!(first_difference(&ra, &ra), None);
        assert_eq!(first_difference(&ra, &ra[..5]).unwrap().0, 5);
    }
}
