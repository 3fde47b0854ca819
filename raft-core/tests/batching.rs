//! Dynamic AppendEntries batch sizes (`Config::dynamic_append_batch`): the per-follower batch
//! grows while replication succeeds, restarts small after a failure, and never exceeds the
//! configured caps.

mod common;

use common::Cluster;
use raft_core::{Config, MessageBody, NodeId};
use std::cell::RefCell;
use std::rc::Rc;

/// One append in flight per follower makes the sequence of batch sizes deterministic.
fn one_inflight(dynamic: bool) -> impl Fn(&mut Config) {
    move |config: &mut Config| {
        config.dynamic_append_batch = dynamic;
        config.max_inflight_appends = 1;
        config.max_entries_per_append = 16;
    }
}

/// Records the entry count of every non-empty AppendEntries sent to `to`; drops the ones whose
/// position (0-based, among non-empty appends to `to`) is in `drop`.
fn record_batches(c: &mut Cluster, to: NodeId, drop: &[usize]) -> Rc<RefCell<Vec<usize>>> {
    let sizes = Rc::new(RefCell::new(Vec::new()));
    let seen = sizes.clone();
    let drop = drop.to_vec();
    c.filters.push(Box::new(move |msg| {
        let MessageBody::AppendEntries { entries, .. } = &msg.body else {
            return false;
        };
        if msg.to != to || entries.is_empty() {
            return false;
        }
        let mut seen = seen.borrow_mut();
        seen.push(entries.len());
        drop.contains(&(seen.len() - 1))
    }));
    sizes
}

fn propose_batch(c: &mut Cluster, count: u8) {
    let leader = c.leader().expect("a leader");
    let batch = (0..count).map(|i| vec![i]).collect();
    c.with_node(leader, |n| n.propose_many(batch))
        .expect("leader accepts");
}

fn other_than(c: &Cluster, id: NodeId) -> NodeId {
    c.ids.iter().copied().find(|p| *p != id).unwrap()
}

/// Goal: with the option on, batches start small and double per acknowledged append up to
/// `max_entries_per_append`. Method: one append in flight, 100 entries proposed at once;
/// record the size of every append to one follower.
#[test]
fn batch_doubles_while_replication_succeeds_up_to_the_cap() {
    let mut c = Cluster::with_config(3, 41, one_inflight(true));
    let leader = c.elect();
    let follower = other_than(&c, leader);
    let sizes = record_batches(&mut c, follower, &[]);
    propose_batch(&mut c, 100);
    c.deliver_all();
    c.run_ticks(2);
    let sizes = sizes.borrow().clone();
    assert_eq!(&sizes[..5], &[2, 4, 8, 16, 16], "sizes: {sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 16));
    assert_eq!(sizes.iter().sum::<usize>(), 100);
    assert_eq!(c.applied_count(&[99]), 3);
}

/// Goal: the option is off by default and then every batch is as large as the cap allows.
/// Method: the same run as above with the default setting.
#[test]
fn default_sends_full_batches() {
    assert!(!Config::new(NodeId(1), vec![NodeId(1)]).dynamic_append_batch);
    let mut c = Cluster::with_config(3, 41, one_inflight(false));
    let leader = c.elect();
    let follower = other_than(&c, leader);
    let sizes = record_batches(&mut c, follower, &[]);
    propose_batch(&mut c, 100);
    c.deliver_all();
    assert_eq!(*sizes.borrow(), vec![16, 16, 16, 16, 16, 16, 4]);
}

/// Goal: a lost append (detected when the pipeline stalls) halves the threshold and restarts
/// the batch at one entry; growth is then exponential up to the new threshold and additive
/// after it. Method: drop the fourth append (16 entries) to one follower, tick until the
/// leader notices, record the sizes that follow.
#[test]
fn lost_append_halves_the_threshold_and_restarts_the_batch() {
    let mut c = Cluster::with_config(3, 42, one_inflight(true));
    let leader = c.elect();
    let follower = other_than(&c, leader);
    let sizes = record_batches(&mut c, follower, &[3]);
    propose_batch(&mut c, 120);
    c.deliver_all();
    c.run_ticks(30);
    let sizes = sizes.borrow().clone();
    assert_eq!(&sizes[..4], &[2, 4, 8, 16], "sizes: {sizes:?}");
    // After the loss: threshold 16 / 2 = 8; restart at 1, double to 8, then one more per ack.
    assert_eq!(&sizes[4..10], &[1, 2, 4, 8, 9, 10], "sizes: {sizes:?}");
    assert_eq!(c.applied_count(&[119]), 3);
    c.check_log_matching();
}

/// Goal: a rejected append (a gap in the follower's log) also counts as a failure, once the
/// appends in flight had two ticks to fill the gap. Method: with the window grown to 16, send
/// two appends of five entries without waiting, drop the first; the second is rejected for
/// the gap (and kept by the follower). Nothing changes until the gap has waited two ticks (far
/// less than the stall timer), then the batch restarts; once the restarted batches reach the
/// kept append, the follower takes it, so its entries are not sent again.
#[test]
fn rejected_append_restarts_the_batch() {
    let mut c = Cluster::with_config(3, 43, |config| {
        one_inflight(true)(config);
        config.max_inflight_appends = 4;
    });
    let leader = c.elect();
    let follower = other_than(&c, leader);
    // Grow the window first.
    propose_batch(&mut c, 60);
    c.deliver_all();
    let sizes = record_batches(&mut c, follower, &[0]);
    propose_batch(&mut c, 5);
    propose_batch(&mut c, 5);
    c.deliver_all();
    assert_eq!(
        *sizes.borrow(),
        vec![5, 5],
        "the gap waits for appends in flight"
    );
    c.run_ticks(2);
    let sizes = sizes.borrow().clone();
    // Threshold 16 / 2 = 8: restart at 1, then 2 and 4, which reach the kept second append.
    assert_eq!(sizes, vec![5, 5, 1, 2, 4], "sizes: {sizes:?}");
    c.run_ticks(2);
    assert_eq!(c.applied_count(&[4]), 3);
}

/// Goal: with dynamic batches a lost append is noticed from heartbeat answers (no progress
/// for over two heartbeat intervals while the follower answers heartbeats) rather than only by
/// the stall timer of `election_ticks_min` ticks. Method: drop the fourth append, then count
/// ticks until the leader restarts with a one-entry batch.
#[test]
fn lost_append_is_noticed_within_a_few_heartbeats() {
    let mut c = Cluster::with_config(3, 44, one_inflight(true));
    let leader = c.elect();
    let follower = other_than(&c, leader);
    let sizes = record_batches(&mut c, follower, &[3]);
    propose_batch(&mut c, 120);
    c.deliver_all();
    assert_eq!(sizes.borrow().len(), 4, "stuck after the lost append");
    let mut ticks = 0;
    while sizes.borrow().len() == 4 {
        c.run_ticks(1);
        ticks += 1;
        assert!(ticks < 10, "not noticed before the stall timer");
    }
    assert_eq!(sizes.borrow()[4], 1);
    assert!(ticks <= 4, "noticed after {ticks} ticks");
}
