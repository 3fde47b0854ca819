//! Planted bugs of the sharded kv service.

use serde::{Deserialize, Serialize};

raft_core::planted_bugs! {
    /// Planted bugs ("canaries") of the sharded kv service, compiled in and all off by
    /// default.
    ///
    /// The simulator (or a test) turns one on and must then report a violation; a canary that
    /// goes unnoticed shows a blind spot in the fault model or the checkers.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ShardBugs {
        /// A group serves a shard as soon as a configuration gives it the shard, before the
        /// data has arrived from the previous owner. While the previous owner has not yet
        /// installed that configuration, two groups serve the shard; writes accepted early
        /// are then overwritten when the real data arrives, and reads see an empty shard.
        serve_before_arrival => "a group serves a shard's keys while it is still pulling the shard",
        /// The previous owner deletes a shard as soon as it has answered a pull, instead of
        /// waiting until the receiver confirms it has logged the data. If that answer is lost
        /// (or the receiver crashes before logging it), the shard is gone for good.
        delete_before_confirm =>
            "a group deletes a shard it gave away before the receiver confirms",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_enables_exactly_one_bug() {
        assert!(!ShardBugs::default().any());
        for name in ShardBugs::NAMES {
            assert!(ShardBugs::from_name(name).expect("known name").any());
        }
        assert_eq!(ShardBugs::from_name("nope"), None);
    }
}
