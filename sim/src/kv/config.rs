//! The kv workload's shape, drawn from the seed (swarm testing applied to the workload).

use crate::config::{stream_rng, Stream};
use rand::Rng;
use std::fmt;
use std::time::Duration;

/// How the clerks use the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyShape {
    /// A few hot keys: heavy contention, long per-key histories.
    Hot,
    /// Many keys: little contention, many short per-key histories.
    Many,
}

/// The kv workload of one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct KvWorkload {
    /// Concurrent clerks.
    pub clients: usize,
    /// Hot or many keys.
    pub shape: KeyShape,
    /// Number of distinct keys.
    pub keys: usize,
    /// Largest value a Put or Append carries, in bytes.
    pub value_max: usize,
    /// Fraction of operations that are Gets.
    pub get_fraction: f64,
    /// Fraction of writes that are Appends (the rest are Puts).
    pub append_fraction: f64,
    /// Mean pause between a clerk's operations.
    pub think: Duration,
    /// A clerk resends to the next server after this long without an answer.
    pub timeout: Duration,
    /// Probability that a server's reply is lost while faults are on.
    pub reply_loss: f64,
    /// Gets go through the log instead of ReadIndex.
    pub reads_through_log: bool,
    /// A small snapshot threshold (4 KiB) replaces the swarm's, so snapshots and
    /// InstallSnapshot happen often.
    pub small_snapshots: bool,
    /// Appends to one key since its last Put stop at about this many bytes (then a Put
    /// resets it), which keeps values and snapshots bounded.
    pub append_budget: usize,
    /// Requests started in the fault phase, over all clerks (`None`: no limit). Only the
    /// minimizer sets it.
    pub ops_max: Option<u64>,
    /// How reads split into Get and Exists, and writes into Put, Append, Delete and
    /// CompareAndSet.
    pub mix: OpMix,
    /// The last this many clerks only read (Gets and Exists). A reader keeps going to the
    /// server that last answered it, so when a deposed leader keeps answering, readers stay
    /// with it while the writers move on to the new leader.
    pub readers: usize,
}

/// The seed's mix of the operations beyond Get, Put and Append.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpMix {
    /// A name for the summary line.
    pub name: &'static str,
    /// Fraction of reads that are Exists (the rest are Gets).
    pub exists_fraction: f64,
    /// Fraction of writes that are CompareAndSets.
    pub cas_fraction: f64,
    /// Fraction of writes that are Deletes.
    pub delete_fraction: f64,
}

impl OpMix {
    /// Get, Put and Append only.
    pub const CLASSIC: OpMix = OpMix {
        name: "classic",
        exists_fraction: 0.0,
        cas_fraction: 0.0,
        delete_fraction: 0.0,
    };

    /// The mixes a seed draws from.
    pub const ALL: [OpMix; 4] = [
        OpMix::CLASSIC,
        OpMix {
            name: "mixed",
            exists_fraction: 0.2,
            cas_fraction: 0.15,
            delete_fraction: 0.05,
        },
        OpMix {
            name: "cas-heavy",
            exists_fraction: 0.1,
            cas_fraction: 0.6,
            delete_fraction: 0.05,
        },
        OpMix {
            name: "delete-heavy",
            exists_fraction: 0.4,
            cas_fraction: 0.2,
            delete_fraction: 0.25,
        },
    ];
}

impl KvWorkload {
    /// Derives the workload from `seed` (its own stream: the rest of the seed is unchanged).
    pub fn from_seed(seed: u64) -> KvWorkload {
        let mut rng = stream_rng(seed, Stream::Kv);
        let shape = if rng.gen_bool(0.5) {
            KeyShape::Hot
        } else {
            KeyShape::Many
        };
        let keys = match shape {
            KeyShape::Hot => rng.gen_range(1..=3),
            KeyShape::Many => rng.gen_range(10..=60),
        };
        let large = rng.gen_bool(0.2);
        let mostly_appends = rng.gen_bool(0.4);
        let mut workload = KvWorkload {
            clients: rng.gen_range(1..=6),
            shape,
            keys,
            value_max: if large { rng.gen_range(256..=2048) } else { 8 },
            get_fraction: rng.gen_range(0.1..0.5),
            append_fraction: if mostly_appends { 0.9 } else { 0.4 },
            think: Duration::from_millis(rng.gen_range(5..60)),
            timeout: Duration::from_millis(rng.gen_range(150..800)),
            reply_loss: if rng.gen_bool(0.5) {
                rng.gen_range(0.0..0.1)
            } else {
                0.0
            },
            reads_through_log: rng.gen_bool(0.2),
            small_snapshots: rng.gen_bool(0.4),
            append_budget: if large { 16 << 10 } else { 512 },
            ops_max: None,
            mix: OpMix::CLASSIC,
            readers: 0,
        };
        // Drawn last, so every field above is what it was before these existed.
        workload.mix = OpMix::ALL[rng.gen_range(0..OpMix::ALL.len())];
        if rng.gen_bool(0.5) {
            // Dedicated readers, writers that give up on a silent server quickly, and at
            // least one clerk of each kind.
            workload.clients = workload.clients.max(2);
            workload.readers = rng.gen_range(1..=workload.clients / 2);
            workload.timeout = Duration::from_millis(rng.gen_range(60..250));
        }
        workload
    }
}

impl fmt::Display for KvWorkload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  workload kv: {} clerks, {:?} keys ({}), values up to {} bytes, gets {:.0}%, \
             appends {:.0}% of writes, think {:?}, clerk timeout {:?}, reply loss {:.1}%, \
             reads {}, snapshots {}, mix {} (exists {:.0}% of reads, cas {:.0}% and delete \
             {:.0}% of writes), {} reader clerks",
            self.clients,
            self.shape,
            self.keys,
            self.value_max,
            self.get_fraction * 100.0,
            self.append_fraction * 100.0,
            self.think,
            self.timeout,
            self.reply_loss * 100.0,
            if self.reads_through_log {
                "through the log"
            } else {
                "via ReadIndex"
            },
            if self.small_snapshots {
                "every 4 KiB"
            } else {
                "at the swarm threshold"
            },
            self.mix.name,
            self.mix.exists_fraction * 100.0,
            self.mix.cas_fraction * 100.0,
            self.mix.delete_fraction * 100.0,
            self.readers,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_is_a_function_of_the_seed_and_varies() {
        assert_eq!(KvWorkload::from_seed(9), KvWorkload::from_seed(9));
        let shapes: std::collections::BTreeSet<_> = (0..50)
            .map(|s| format!("{:?}", KvWorkload::from_seed(s).shape))
            .collect();
        assert_eq!(shapes.len(), 2);
        assert!((0..50).any(|s| KvWorkload::from_seed(s).small_snapshots));
        assert!((0..50).any(|s| KvWorkload::from_seed(s).value_max > 8));
        let mixes: std::collections::BTreeSet<_> =
            (0..50).map(|s| KvWorkload::from_seed(s).mix.name).collect();
        assert_eq!(mixes.len(), OpMix::ALL.len());
        assert!((0..50).all(|s| {
            let kv = KvWorkload::from_seed(s);
            kv.readers < kv.clients
        }));
        assert!((0..50).any(|s| KvWorkload::from_seed(s).readers > 0));
    }
}
