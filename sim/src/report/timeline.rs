//! The cluster timeline of a run: each node's role, term and up/down/paused state over time,
//! the partitions, and the notable moments (nemesis actions, snapshots, the heal, the
//! failure), built from a replay's captured trace events and event records.

use super::capture::Captured;
use crate::event_log::EventRecord;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a node was doing during a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Running, in this role (`follower`, `pre-candidate`, `candidate`, `leader`).
    Running(&'static str),
    /// Frozen by a pause fault.
    Paused,
    /// Crashed (or stopped on a disk error, or refused to open its disk).
    Down,
}

impl NodeState {
    /// A short name.
    pub fn name(&self) -> &'static str {
        match self {
            NodeState::Running(role) => role,
            NodeState::Paused => "paused",
            NodeState::Down => "down",
        }
    }
}

/// A stretch of time in one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Start (inclusive).
    pub from: Duration,
    /// End.
    pub to: Duration,
    /// The state.
    pub state: NodeState,
    /// The term the node last reported, if it did.
    pub term: Option<String>,
}

/// A partition: which group's network, when, and its shape and cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The shardkv group (`None`: the only cluster).
    pub group: Option<u64>,
    /// Start.
    pub from: Duration,
    /// End (healed, or the heal phase).
    pub to: Duration,
    /// Shape and cut, as logged.
    pub what: String,
}

/// Something worth a line in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moment {
    /// Simulated time.
    pub at: Duration,
    /// The node, if one.
    pub node: Option<u64>,
    /// What happened.
    pub text: String,
}

/// The whole run's timeline.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Per node id: its segments in time order.
    pub nodes: BTreeMap<u64, Vec<Segment>>,
    /// Partitions in time order.
    pub partitions: Vec<Partition>,
    /// Notable moments in time order (role changes, crashes and partitions included).
    pub moments: Vec<Moment>,
    /// The end of the run.
    pub end: Duration,
}

#[derive(Clone, Debug)]
struct NodeNow {
    since: Duration,
    up: bool,
    paused: bool,
    role: &'static str,
    term: Option<String>,
}

impl NodeNow {
    fn state(&self) -> NodeState {
        match (self.up, self.paused) {
            (false, _) => NodeState::Down,
            (true, true) => NodeState::Paused,
            (true, false) => NodeState::Running(self.role),
        }
    }
}

/// Messages that are bookkeeping, not moments (the per-request line of the kv clerks).
pub const REPLY_ACCEPTED: &str = "reply accepted";

fn role_of(message: &str) -> Option<&'static str> {
    match message {
        "became leader" => Some("leader"),
        "became follower" => Some("follower"),
        "became candidate" => Some("candidate"),
        "became pre-candidate" => Some("pre-candidate"),
        _ => None,
    }
}

/// One node change, from either source.
enum Change<'a> {
    Record(&'a EventRecord),
    Event(&'a Captured),
}

impl Timeline {
    /// Builds the timeline of a run ending at `end`.
    pub fn build(records: &[EventRecord], events: &[Captured], end: Duration) -> Timeline {
        let mut changes: Vec<(Duration, usize, Change<'_>)> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if matches!(r.kind, "start" | "crash" | "pause" | "resume" | "refused") {
                changes.push((r.at, i, Change::Record(r)));
            }
        }
        for (i, e) in events.iter().enumerate() {
            changes.push((e.at, records.len() + i, Change::Event(e)));
        }
        // Stable in time; at equal times, records (the simulator's own view) first.
        changes.sort_by_key(|(at, i, _)| (*at, *i));
        let mut timeline = Timeline {
            end,
            ..Timeline::default()
        };
        let mut now: BTreeMap<u64, NodeNow> = BTreeMap::new();
        let mut open: BTreeMap<Option<u64>, (Duration, String)> = BTreeMap::new();
        for (at, _, change) in &changes {
            let at = *at;
            match change {
                Change::Record(r) => {
                    let node = now.entry(r.node).or_insert(NodeNow {
                        since: at,
                        up: false,
                        paused: false,
                        role: "follower",
                        term: None,
                    });
                    let before = node.clone();
                    match r.kind {
                        "start" => {
                            node.up = true;
                            node.paused = false;
                            node.role = "follower";
                        }
                        "crash" | "refused" => node.up = false,
                        "pause" => node.paused = true,
                        "resume" => node.paused = false,
                        _ => {}
                    }
                    close(&mut timeline, r.node, &before, node, at);
                    if r.kind != "start" || r.detail > 1 {
                        let text = match r.kind {
                            "start" => "restarted from its disk",
                            "crash" => "crashed",
                            "refused" => "refused to open its disk",
                            "pause" => "paused",
                            _ => "resumed",
                        };
                        timeline.moments.push(Moment {
                            at,
                            node: Some(r.node),
                            text: text.to_string(),
                        });
                    }
                }
                Change::Event(e) => {
                    // The clerks' bookkeeping, and crashes (already a moment, from the record).
                    if e.message == REPLY_ACCEPTED || e.message == "crashed" {
                        continue;
                    }
                    if let (Some(role), Some(id)) = (role_of(&e.message), e.node) {
                        if let Some(node) = now.get_mut(&id) {
                            let before = node.clone();
                            node.role = role;
                            node.term = e.field("term").map(str::to_string);
                            close(&mut timeline, id, &before, node, at);
                        }
                    }
                    if e.message == "partition" {
                        let what = format!(
                            "{} {}",
                            e.field("shape").unwrap_or("?"),
                            sides(e.field("cut").unwrap_or(""))
                        );
                        if let Some((from, what)) = open.insert(e.group, (at, what)) {
                            timeline.partitions.push(Partition {
                                group: e.group,
                                from,
                                to: at,
                                what,
                            });
                        }
                    }
                    if e.message == "partition healed" || e.message.starts_with("heal:") {
                        let healed: Vec<Option<u64>> = if e.message == "partition healed" {
                            vec![e.group]
                        } else {
                            open.keys().copied().collect()
                        };
                        for group in healed {
                            if let Some((from, what)) = open.remove(&group) {
                                timeline.partitions.push(Partition {
                                    group,
                                    from,
                                    to: at,
                                    what,
                                });
                            }
                        }
                    }
                    timeline.moments.push(Moment {
                        at,
                        node: e.node,
                        text: describe(e),
                    });
                }
            }
        }
        for (group, (from, what)) in open {
            timeline.partitions.push(Partition {
                group,
                from,
                to: end,
                what,
            });
        }
        for (id, node) in now {
            let state = node.state();
            timeline.nodes.entry(id).or_default().push(Segment {
                from: node.since,
                to: end.max(node.since),
                state,
                term: node.term,
            });
        }
        timeline.partitions.sort_by_key(|p| (p.from, p.group));
        timeline
    }

    /// The faults active at some point of `[from, to]`: partitions, and nodes down or paused.
    pub fn faults_during(&self, from: Duration, to: Duration) -> Vec<String> {
        let mut faults = Vec::new();
        for p in &self.partitions {
            if p.from <= to && p.to >= from {
                faults.push(format!("partition {}", p.what));
            }
        }
        for (id, segments) in &self.nodes {
            for s in segments {
                if s.from <= to && s.to >= from && !matches!(s.state, NodeState::Running(_)) {
                    faults.push(format!("n{id} {}", s.state.name()));
                    break;
                }
            }
        }
        faults
    }
}

/// Ends `node`'s current segment at `at` if its state or term changed.
fn close(timeline: &mut Timeline, id: u64, before: &NodeNow, node: &mut NodeNow, at: Duration) {
    if before.state() == node.state() && before.term == node.term {
        return;
    }
    if at > before.since {
        timeline.nodes.entry(id).or_default().push(Segment {
            from: before.since,
            to: at,
            state: before.state(),
            term: before.term.clone(),
        });
    }
    node.since = at;
}

/// A partition's cut (the blocked directed links, as logged: `{(NodeId(1), NodeId(2)), ..}`)
/// as its sides, `n1 n3 | n2`: nodes are on one side when no link between them is cut.
/// A cut blocked in one direction only is marked `(one-way)`.
fn sides(cut: &str) -> String {
    let numbers: Vec<u64> = cut
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let links: std::collections::BTreeSet<(u64, u64)> =
        numbers.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    let mut nodes: Vec<u64> = numbers.clone();
    nodes.sort_unstable();
    nodes.dedup();
    if nodes.is_empty() {
        return cut.to_string();
    }
    let one_way = links.iter().any(|&(a, b)| !links.contains(&(b, a)));
    // Connected components of "no link cut either way".
    let mut side: BTreeMap<u64, usize> = BTreeMap::new();
    let mut count = 0;
    for &start in &nodes {
        if side.contains_key(&start) {
            continue;
        }
        let mut stack = vec![start];
        side.insert(start, count);
        while let Some(a) = stack.pop() {
            for &b in &nodes {
                if !side.contains_key(&b) && !links.contains(&(a, b)) && !links.contains(&(b, a)) {
                    side.insert(b, count);
                    stack.push(b);
                }
            }
        }
        count += 1;
    }
    let text: Vec<String> = (0..count)
        .map(|k| {
            side.iter()
                .filter(|(_, &s)| s == k)
                .map(|(n, _)| format!("n{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    format!(
        "{}{}",
        text.join(" | "),
        if one_way { " (one-way)" } else { "" }
    )
}

fn describe(e: &Captured) -> String {
    let mut text = e.message.clone();
    for (k, v) in &e.fields {
        text.push_str(&format!(" {k}={v}"));
    }
    if let Some(g) = e.group {
        text.push_str(&format!(" [group {g}]"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn record(at: u64, node: u64, kind: &'static str, detail: u64) -> EventRecord {
        EventRecord {
            at: ms(at),
            node,
            kind,
            detail,
        }
    }

    fn event(at: u64, node: Option<u64>, message: &str, fields: &[(&str, &str)]) -> Captured {
        Captured {
            at: ms(at),
            node,
            group: None,
            message: message.to_string(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn roles_crashes_and_partitions_become_segments() {
        let records = [
            record(0, 1, "start", 1),
            record(0, 2, "start", 1),
            record(50, 2, "crash", 0),
            record(80, 2, "start", 2),
        ];
        let events = [
            event(10, Some(1), "became candidate", &[("term", "2")]),
            event(20, Some(1), "became leader", &[("term", "2")]),
            event(
                30,
                None,
                "partition",
                &[
                    ("shape", "IsolatedNode"),
                    ("cut", "{(NodeId(1), NodeId(2)), (NodeId(2), NodeId(1))}"),
                ],
            ),
            event(60, None, "partition healed", &[]),
        ];
        let timeline = Timeline::build(&records, &events, ms(100));
        let n1: Vec<(&str, Option<&str>)> = timeline.nodes[&1]
            .iter()
            .map(|s| (s.state.name(), s.term.as_deref()))
            .collect();
        assert_eq!(
            n1,
            [
                ("follower", None),
                ("candidate", Some("2")),
                ("leader", Some("2"))
            ]
        );
        let n2: Vec<&str> = timeline.nodes[&2].iter().map(|s| s.state.name()).collect();
        assert_eq!(n2, ["follower", "down", "follower"]);
        assert_eq!(timeline.partitions.len(), 1);
        assert_eq!(
            (timeline.partitions[0].from, timeline.partitions[0].to),
            (ms(30), ms(60))
        );
        assert_eq!(
            timeline.faults_during(ms(55), ms(58)),
            ["partition IsolatedNode n1 | n2", "n2 down"]
        );
        assert!(timeline.faults_during(ms(85), ms(90)).is_empty());
        assert!(timeline.moments.iter().any(|m| m.text == "crashed"));
        assert_eq!(
            sides("{(NodeId(1), NodeId(3)), (NodeId(3), NodeId(1)), (NodeId(2), NodeId(3))}"),
            "n1 n2 | n3 (one-way)"
        );
    }
}
