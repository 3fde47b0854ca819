//! Shard migration across three groups, driven by a pure in-memory loop.
//!
//! Goal: while configurations change under client load, (1) at most one group serves a shard
//! at any moment, (2) no acknowledged or retried write is lost or applied twice, and (3) once
//! migration has settled every group holds only the shards it owns (storage bounded after
//! GC); and each planted canary is caught by one of these checks.
//!
//! Method: each group is one `ShardKv` (a Raft group's members all apply the same log, so one
//! state machine stands for the group). A seeded loop picks steps at random: the controller
//! applies the next scripted Join or Leave; a group installs its next configuration, pulls a
//! shard, or asks for a deletion; a client sends (or resends) its append; a group restarts from
//! its snapshot. Answers between groups and replies to clients are lost at random, so requests
//! are retried. Afterwards a fault-free phase lets everything settle, and the checks run.

use proptest::prelude::*;
use raft_core::NodeId;
use std::collections::BTreeMap;
use workloads::rsm::App;
use workloads::shardctrler::{key_to_shard, CtrlerCommand, Gid, ShardCtrler, ShardId};
use workloads::shardkv::{
    ShardBugs, ShardClerk, ShardClerkStep, ShardKv, ShardKvCommand, ShardKvReply, ShardOutgoing,
    TransferError,
};
use workloads::{ApplyOutcome, ClientId, KvCommand};

const GIDS: [Gid; 3] = [Gid(1), Gid(2), Gid(3)];
const CLIENTS: u64 = 8;
const RANDOM_STEPS: usize = 300;
const SETTLE_ROUNDS_MAX: usize = 200;

/// What a run found wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Violation {
    TwoServers(String),
    LostOrDuplicatedWrite(String),
    ShardLost(String),
    NoProgress(String),
    StorageNotCollected(String),
    StaleReply(String),
}

/// splitmix64: a tiny seeded generator, so every run is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound
    }
}

struct Client {
    clerk: ShardClerk,
    key: String,
    /// What the clerk asked for last and is not done yet (a send or a configuration).
    pending: Option<ShardClerkStep>,
    issued: Vec<String>,
}

struct World {
    ctrler: ShardCtrler,
    script: Vec<CtrlerCommand>,
    groups: BTreeMap<Gid, ShardKv>,
    clients: Vec<Client>,
    rng: Rng,
    bugs: ShardBugs,
    lossy: bool,
    violations: Vec<Violation>,
    stats: Stats,
}

/// What a run exercised, so a test can show its checks were not vacuous.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    inserted: u64,
    answers_lost: u64,
    duplicates: u64,
    restarts: u64,
}

impl World {
    fn new(seed: u64, bugs: ShardBugs, script: Vec<CtrlerCommand>) -> Self {
        let clients = (0..CLIENTS)
            .map(|i| Client {
                clerk: ShardClerk::new(ClientId(i + 1)),
                key: format!("key-{i}"),
                pending: None,
                issued: Vec::new(),
            })
            .collect();
        World {
            ctrler: ShardCtrler::new(),
            script: script.into_iter().rev().collect(),
            groups: GIDS
                .iter()
                .map(|&gid| (gid, ShardKv::new(gid, bugs)))
                .collect(),
            clients,
            rng: Rng(seed),
            bugs,
            lossy: true,
            violations: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn lost(&mut self) -> bool {
        let lost = self.lossy && self.rng.below(4) == 0;
        self.stats.answers_lost += u64::from(lost);
        lost
    }

    fn step(&mut self) {
        let gid = GIDS[self.rng.below(GIDS.len() as u64) as usize];
        match self.rng.below(10) {
            0 => self.reconfigure(),
            1 | 2 => self.install(gid),
            3 | 4 => self.pull(gid),
            5 => self.collect(gid),
            6..=8 => {
                let client = self.rng.below(CLIENTS) as usize;
                self.client_step(client, true);
            }
            _ => self.restart(gid),
        }
        self.check_single_server();
    }

    fn reconfigure(&mut self) {
        if let Some(command) = self.script.pop() {
            self.ctrler
                .execute(command)
                .expect("scripts hold valid commands");
        }
    }

    fn install(&mut self, gid: Gid) {
        let group = &self.groups[&gid];
        let next = group.config().num.next();
        if group.is_settled() && self.ctrler.latest().num >= next {
            let config = self.ctrler.query(Some(next)).clone();
            let reply = self
                .group(gid)
                .execute(ShardKvCommand::InstallConfig(config));
            assert!(matches!(reply, ShardKvReply::Installed(_)), "{reply:?}");
        }
    }

    fn group(&mut self, gid: Gid) -> &mut ShardKv {
        self.groups.get_mut(&gid).expect("known group")
    }

    fn pull(&mut self, gid: Gid) {
        let Some(request) = self.groups[&gid].pulls().into_iter().next() else {
            return;
        };
        let peer = self.groups.get_mut(&request.peer).expect("peer group");
        let answer = peer.transfer(request.num, request.shard);
        if answer.is_ok() {
            if let Some(command) = peer.after_transfer(request.num, request.shard) {
                peer.execute(command);
            }
        }
        match answer {
            Ok(_) if self.lost() => {}
            Ok(transfer) => {
                let reply = self
                    .group(gid)
                    .execute(ShardKvCommand::InsertShard(transfer));
                assert!(matches!(reply, ShardKvReply::Inserted { .. }), "{reply:?}");
                self.stats.inserted += 1;
            }
            Err(TransferError::NotReady { .. }) => {}
            Err(error) => self.violations.push(Violation::ShardLost(format!(
                "group {} pulling {} from group {} at {}: {error}",
                gid.0, request.shard, request.peer.0, request.num
            ))),
        }
    }

    fn collect(&mut self, gid: Gid) {
        let Some(request) = self.groups[&gid].gc_requests().into_iter().next() else {
            return;
        };
        let (num, shard) = (request.num, request.shard);
        let reply = self
            .group(request.peer)
            .execute(ShardKvCommand::DeleteShard { num, shard });
        if reply == (ShardKvReply::Deleted { num, shard }) && !self.lost() {
            let confirmed = self
                .group(gid)
                .execute(ShardKvCommand::ConfirmGc { num, shard });
            assert!(
                matches!(confirmed, ShardKvReply::Confirmed { .. }),
                "{confirmed:?}"
            );
        }
    }

    fn restart(&mut self, gid: Gid) {
        let snapshot = self.groups[&gid].snapshot();
        let mut fresh = ShardKv::new(gid, self.bugs);
        fresh.restore(&snapshot).expect("own snapshot restores");
        assert_eq!(&fresh, &self.groups[&gid]);
        self.groups.insert(gid, fresh);
        self.stats.restarts += 1;
    }

    /// Starts a new append (if `start` and idle) or carries on with the one in flight,
    /// through the client's `ShardClerk`.
    fn client_step(&mut self, index: usize, start: bool) {
        let step = match self.clients[index].pending.take() {
            Some(step) => step,
            None if start => {
                let client = &mut self.clients[index];
                let token = format!("{}.{};", index + 1, client.clerk.next_seq().0);
                client.issued.push(token.clone());
                let command = KvCommand::Append {
                    key: client.key.clone(),
                    value: token,
                };
                client.clerk.start(command).expect("the clerk is idle")
            }
            None => return,
        };
        let next = match step {
            ShardClerkStep::NeedConfig { .. } => {
                let latest = self.ctrler.latest().clone();
                self.clients[index].clerk.on_config(latest)
            }
            ShardClerkStep::Send(outgoing) => self.deliver(index, outgoing),
            other => panic!("unexpected pending step {other:?}"),
        };
        match next {
            ShardClerkStep::Done { .. } | ShardClerkStep::Ignored => {}
            ShardClerkStep::Failed { error, .. } => self
                .violations
                .push(Violation::StaleReply(error.to_string())),
            pending => self.clients[index].pending = Some(pending),
        }
    }

    /// Applies a client's request at its group and hands the reply (or its loss) back.
    fn deliver(&mut self, index: usize, outgoing: ShardOutgoing) -> ShardClerkStep {
        let ShardOutgoing { attempt, envelope } = outgoing;
        let reply = self
            .group(attempt.gid)
            .execute(ShardKvCommand::Client(envelope));
        if matches!(reply, ShardKvReply::Kv(ApplyOutcome::Duplicate(_))) {
            self.stats.duplicates += 1;
        }
        let lost = self.lost();
        let clerk = &mut self.clients[index].clerk;
        if lost {
            return clerk.on_timeout(attempt);
        }
        clerk.on_reply(attempt, reply.into_client_response())
    }

    fn check_single_server(&mut self) {
        for shard in ShardId::all() {
            let serving: Vec<u32> = self
                .groups
                .values()
                .filter(|g| g.serves(shard))
                .map(|g| g.gid().0)
                .collect();
            if serving.len() > 1 {
                self.violations
                    .push(Violation::TwoServers(format!("{shard} by {serving:?}")));
            }
        }
    }

    /// The fault-free phase: everything left to do is done, in rounds.
    fn settle(&mut self) {
        self.lossy = false;
        while !self.script.is_empty() {
            self.reconfigure();
        }
        for _ in 0..SETTLE_ROUNDS_MAX {
            for gid in GIDS {
                self.install(gid);
                for _ in 0..self.groups[&gid].pulls().len() {
                    self.pull(gid);
                }
                for _ in 0..self.groups[&gid].gc_requests().len() {
                    self.collect(gid);
                }
            }
            for client in 0..self.clients.len() {
                self.client_step(client, false);
            }
            self.check_single_server();
            if self.settled() {
                return;
            }
        }
        self.violations.push(Violation::NoProgress(format!(
            "not settled after {SETTLE_ROUNDS_MAX} rounds: {:?}",
            self.groups
                .values()
                .map(|g| (g.gid().0, g.config().num.0))
                .collect::<Vec<_>>()
        )));
    }

    fn settled(&self) -> bool {
        let latest = self.ctrler.latest().num;
        self.groups
            .values()
            .all(|g| g.config().num == latest && g.is_settled())
            && self.clients.iter().all(|c| c.pending.is_none())
    }

    /// Every write exactly once, in order; nothing held by a group that does not own it.
    fn check_final_state(&mut self) {
        let latest = self.ctrler.latest().clone();
        for client in &self.clients {
            let shard = key_to_shard(&client.key);
            let owner = latest.owner(shard);
            let value = self
                .groups
                .get(&owner)
                .and_then(|g| g.store(shard)?.get(&client.key));
            let expected = client.issued.concat();
            if value.unwrap_or("") != expected {
                self.violations
                    .push(Violation::LostOrDuplicatedWrite(format!(
                        "{}: want {expected:?}, got {value:?}",
                        client.key
                    )));
            }
        }
        for group in self.groups.values() {
            for shard in ShardId::all() {
                let held = !group.store(shard).unwrap().is_empty()
                    || !group.sessions(shard).unwrap().is_empty();
                if held && latest.owner(shard) != group.gid() {
                    self.violations.push(Violation::StorageNotCollected(format!(
                        "group {} still holds {shard}",
                        group.gid().0
                    )));
                }
            }
        }
    }
}

/// Runs one seeded scenario and returns what it found wrong, sorted.
fn run(seed: u64, bugs: ShardBugs, script: Vec<CtrlerCommand>) -> Vec<Violation> {
    run_with_stats(seed, bugs, script).0
}

fn run_with_stats(
    seed: u64,
    bugs: ShardBugs,
    script: Vec<CtrlerCommand>,
) -> (Vec<Violation>, Stats) {
    let mut world = World::new(seed, bugs, script);
    world.reconfigure(); // The first group joins before the clients start.
    for _ in 0..RANDOM_STEPS {
        world.step();
    }
    world.settle();
    world.check_final_state();
    world.violations.sort();
    world.violations.dedup();
    (world.violations, world.stats)
}

fn join(gid: Gid) -> CtrlerCommand {
    CtrlerCommand::Join {
        groups: BTreeMap::from([(gid, vec![NodeId(u64::from(gid.0))])]),
    }
}

fn leave(gid: Gid) -> CtrlerCommand {
    CtrlerCommand::Leave { gids: vec![gid] }
}

/// Turns toggles of group membership into a valid script that never leaves zero groups
/// (which would drop the data by design). It always starts with a join.
fn script_from(toggles: &[u8]) -> Vec<CtrlerCommand> {
    let mut members = vec![GIDS[0]];
    let mut script = vec![join(GIDS[0])];
    for &toggle in toggles {
        let gid = GIDS[usize::from(toggle) % GIDS.len()];
        if let Some(position) = members.iter().position(|&m| m == gid) {
            if members.len() > 1 {
                members.remove(position);
                script.push(leave(gid));
            }
        } else {
            members.push(gid);
            script.push(join(gid));
        }
    }
    script
}

fn churn() -> Vec<CtrlerCommand> {
    script_from(&[1, 2, 0, 1, 0, 2, 1, 0])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn migration_keeps_one_server_every_write_once_and_bounded_storage(
        seed in any::<u64>(),
        toggles in prop::collection::vec(0u8..3, 1..10),
    ) {
        let violations = run(seed, ShardBugs::default(), script_from(&toggles));
        prop_assert!(violations.is_empty(), "seed {}: {:?}", seed, violations);
    }
}

#[test]
fn fixed_seeds_of_heavy_churn_are_clean() {
    let mut total = Stats::default();
    for seed in 0..40 {
        let (violations, stats) = run_with_stats(seed, ShardBugs::default(), churn());
        assert!(violations.is_empty(), "seed {seed}: {violations:?}");
        total.inserted += stats.inserted;
        total.answers_lost += stats.answers_lost;
        total.duplicates += stats.duplicates;
        total.restarts += stats.restarts;
    }
    eprintln!("40 seeds exercised {total:?}");
    // The runs really moved shards, lost answers, retried writes and restarted groups.
    assert!(total.inserted >= 40 * 5, "{total:?}");
    assert!(
        total.answers_lost > 40 && total.duplicates > 40 && total.restarts > 40,
        "{total:?}"
    );
}

/// Runs the churn script on seeds 0..40 with `bugs` and returns every violation found.
fn canary_sweep(bugs: ShardBugs) -> Vec<Violation> {
    let runs: Vec<Vec<Violation>> = (0..40).map(|seed| run(seed, bugs, churn())).collect();
    let caught = runs.iter().filter(|found| !found.is_empty()).count();
    eprintln!("{bugs:?}: caught on {caught} of {} seeds", runs.len());
    runs.into_iter().flatten().collect()
}

#[test]
fn canary_serve_before_arrival_is_caught_by_the_single_server_check() {
    let found = canary_sweep(ShardBugs {
        serve_before_arrival: true,
        ..Default::default()
    });
    assert!(
        found.iter().any(|v| matches!(v, Violation::TwoServers(_))),
        "serve_before_arrival went unnoticed: {found:?}"
    );
}

#[test]
fn canary_delete_before_confirm_is_caught_by_the_lost_write_check() {
    let found = canary_sweep(ShardBugs {
        delete_before_confirm: true,
        ..Default::default()
    });
    assert!(
        found
            .iter()
            .any(|v| matches!(v, Violation::LostOrDuplicatedWrite(_))),
        "delete_before_confirm went unnoticed: {found:?}"
    );
    assert!(
        found.iter().any(|v| matches!(v, Violation::ShardLost(_))),
        "{found:?}"
    );
}

/// A run depends only on its seed and script: the same inputs find the same violations and
/// exercise the same steps (what the simulator's replay of a failing seed relies on).
#[test]
fn runs_are_deterministic() {
    let bugs = ShardBugs {
        serve_before_arrival: true,
        ..Default::default()
    };
    for seed in [3, 17] {
        let (first, a) = run_with_stats(seed, bugs, churn());
        let (second, b) = run_with_stats(seed, bugs, churn());
        assert_eq!(first, second);
        assert_eq!(
            (a.inserted, a.answers_lost, a.duplicates),
            (b.inserted, b.answers_lost, b.duplicates)
        );
    }
}
