//! Coverage of rare shapes: counters of states a run reached that few seeds reach and that
//! hide bugs no ordinary run meets (FoundationDB's `TEST()` macros, Antithesis's "sometimes"
//! assertions). A sweep reports how many seeds reached each shape and the first of them, so a
//! user can tell whether a swarm knob still draws a shape and replay a seed that shows it; a
//! regression seed can name the shape it was filed for (`reaches` in `seeds/*.seed`), and its
//! replay fails once it no longer gets there.

use crate::cluster::World;
use crate::service::Service;
use raft_core::{NodeId, Term};
use serde::{Deserialize, Serialize};

/// Declares the rare shapes once: the counter struct, its names, lookup by name and adding up
/// all come from this one list, so a new shape is one line here (plus the code that counts it).
macro_rules! shapes {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Times one run reached each rare shape, counted once per leader and term.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct Shapes {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl Shapes {
            /// Every shape, by the name `reaches` and the sweep summary use.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// The count of the shape called `name`, or `None` for an unknown name.
            pub fn get(&self, name: &str) -> Option<u64> {
                match name {
                    $(stringify!($name) => Some(self.$name),)*
                    _ => None,
                }
            }

            /// Adds another run's (or group's) counts.
            pub fn add(&mut self, other: &Shapes) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

shapes! {
    /// A leader was elected while joint, holding the joint configuration only in its snapshot
    /// (no configuration entry left in its log): it must end a configuration it never appended.
    joint_from_snapshot_leader,
    /// A leader was elected while its configuration was joint.
    joint_leader,
    /// A learner won an election (its voters failed to elect for long).
    learner_leader,
    /// A restarted follower got a reply to a forwarded read meant for its previous
    /// incarnation, with the number of one of its own pending reads (dropped; matched by
    /// number alone it would resolve that read at a stale index).
    earlier_incarnation_read_reply,
}

/// How many seeds of a sweep reached one shape, and the first of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeSeeds {
    /// The shape ([`Shapes::NAMES`]).
    pub shape: String,
    /// Seeds that reached it at least once.
    pub seeds: u64,
    /// The smallest of them, to replay.
    pub first: Option<u64>,
}

/// Seeds per shape, in the order of [`Shapes::NAMES`], as a sweep tallies its reports.
pub fn tally(into: &mut Vec<ShapeSeeds>, seed: u64, shapes: &Shapes) {
    if into.is_empty() {
        into.extend(Shapes::NAMES.iter().map(|name| ShapeSeeds {
            shape: name.to_string(),
            seeds: 0,
            first: None,
        }));
    }
    for entry in into.iter_mut() {
        if shapes.get(&entry.shape).is_some_and(|n| n > 0) {
            entry.seeds += 1;
            entry.first = Some(entry.first.map_or(seed, |first| first.min(seed)));
        }
    }
}

/// One line for a sweep's output: `rare shapes: joint_leader 120 seeds (first 3), ...`.
pub fn line(shapes: &[ShapeSeeds]) -> String {
    let parts: Vec<String> = shapes
        .iter()
        .map(|s| match s.first {
            Some(first) => format!("{} {} seeds (first {first})", s.shape, s.seeds),
            None => format!("{} 0 seeds", s.shape),
        })
        .collect();
    format!("rare shapes reached: {}", parts.join(", "))
}

impl<S: Service> World<S> {
    /// Called after every step of node `index`: counts what its counters show happened in
    /// the step (a crash resets what was seen, as the next incarnation counts from zero).
    pub(crate) fn note_step_shapes(&self, index: usize, raft: &raft_core::Raft) {
        let slot = &self.slots[index];
        let now = raft.earlier_incarnation_read_replies();
        let seen = slot.read_replies_seen.replace(now);
        assert!(now >= seen, "an incarnation's counter never goes down");
        let new = now - seen;
        self.stats
            .borrow_mut()
            .shapes
            .earlier_incarnation_read_reply += new;
    }

    /// Called when node `index` reports that it became leader of `term`: counts the shapes
    /// its configuration shows.
    pub(crate) fn note_new_leader(&self, index: usize, id: NodeId, term: Term) {
        let guard = self.slots[index].node.borrow();
        let Some(node) = guard.as_ref() else { return };
        let raft = node.raft();
        if raft.term() != term {
            return;
        }
        let membership = raft.membership();
        let mut stats = self.stats.borrow_mut();
        if membership.is_learner(id) {
            stats.shapes.learner_leader += 1;
        }
        if membership.is_joint() {
            stats.shapes.joint_leader += 1;
            if raft.config_indexes().next().is_none() {
                tracing::info!(node = id.0, term = %term, "shape: a leader holds a joint configuration learned from a snapshot");
                stats.shapes.joint_from_snapshot_leader += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_known_and_tallies_count_seeds_not_occurrences() {
        let shapes = Shapes {
            joint_leader: 3,
            ..Shapes::default()
        };
        for name in Shapes::NAMES {
            assert!(shapes.get(name).is_some(), "{name}");
        }
        assert_eq!(shapes.get("no_such_shape"), None);
        let mut seeds = Vec::new();
        tally(&mut seeds, 9, &shapes);
        tally(&mut seeds, 4, &shapes);
        tally(&mut seeds, 5, &Shapes::default());
        let joint = seeds.iter().find(|s| s.shape == "joint_leader").unwrap();
        assert_eq!((joint.seeds, joint.first), (2, Some(4)));
        let snap = seeds.iter().find(|s| s.shape == "learner_leader").unwrap();
        assert_eq!((snap.seeds, snap.first), (0, None));
        assert!(line(&seeds).contains("joint_leader 2 seeds (first 4)"));
    }
}
