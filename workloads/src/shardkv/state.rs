//! The lifecycle of one shard inside one replica group, with its transition table.

use serde::{Deserialize, Serialize};

/// Where one shard stands in one group. Every change goes through
/// [`ShardState::can_transition_to`], asserted at the single place that changes it.
///
/// ```text
///   Absent --(config gains it; previous owner is a group)--> Pulling
///   Absent --(config gains it; no previous owner: fresh)---> Serving
///   Pulling --(InsertShard: data and sessions arrived)-----> GcPending
///   GcPending --(ConfirmGc: previous owner deleted its copy)--> Serving
///   Serving --(config gives it to another group)-----------> Offering
///   Serving --(config gives it to no group: data dropped)--> Absent
///   Offering --(DeleteShard: the receiver has it)----------> Absent
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShardState {
    /// Not ours in the current configuration, and no data held.
    #[default]
    Absent,
    /// Ours and present: requests are served.
    Serving,
    /// Ours in the current configuration, but the data is still at the previous owner.
    /// Requests get `WrongGroup` until it arrives.
    Pulling,
    /// Ours no longer: the data is kept, unserved, until the new owner has it and confirms.
    Offering,
    /// Ours and arrived (so served), but the previous owner has not yet confirmed that it
    /// deleted its copy. The group waits for that before moving to the next configuration.
    GcPending,
}

impl ShardState {
    /// Whether moving from `self` to `next` is a legal step of the lifecycle.
    ///
    /// Staying in the same state is not a transition and is refused, so that a missed state
    /// change shows up as a failed assertion instead of passing silently.
    pub fn can_transition_to(self, next: ShardState) -> bool {
        use ShardState::*;
        match (self, next) {
            (Absent, Pulling) | (Absent, Serving) => true,
            (Pulling, GcPending) => true,
            (GcPending, Serving) => true,
            (Serving, Offering) | (Serving, Absent) => true,
            (Offering, Absent) => true,
            (Absent, _) | (Pulling, _) | (GcPending, _) | (Serving, _) | (Offering, _) => false,
        }
    }

    /// Whether the group serves client requests for the shard in this state (the data is
    /// here and the shard is ours).
    pub fn serves(self) -> bool {
        matches!(self, ShardState::Serving | ShardState::GcPending)
    }

    /// Whether the shard needs no more migration work: a group only installs the next
    /// configuration when every shard is settled.
    pub fn is_settled(self) -> bool {
        matches!(self, ShardState::Serving | ShardState::Absent)
    }

    /// Every state, for exhaustive tests.
    pub const ALL: [ShardState; 5] = [
        ShardState::Absent,
        ShardState::Serving,
        ShardState::Pulling,
        ShardState::Offering,
        ShardState::GcPending,
    ];
}

#[cfg(test)]
mod tests {
    use super::ShardState::{self, *};

    #[test]
    fn transition_table_is_exactly_the_lifecycle() {
        let legal = [
            (Absent, Pulling),
            (Absent, Serving),
            (Pulling, GcPending),
            (GcPending, Serving),
            (Serving, Offering),
            (Serving, Absent),
            (Offering, Absent),
        ];
        for from in ShardState::ALL {
            for to in ShardState::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn only_present_owned_shards_serve_and_only_stable_ones_are_settled() {
        let serving: Vec<_> = ShardState::ALL.into_iter().filter(|s| s.serves()).collect();
        assert_eq!(serving, vec![Serving, GcPending]);
        let settled: Vec<_> = ShardState::ALL
            .into_iter()
            .filter(|s| s.is_settled())
            .collect();
        assert_eq!(settled, vec![Absent, Serving]);
    }
}
