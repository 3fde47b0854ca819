//! Deciding register histories whose written values are unique, without search.
//!
//! When no value is written twice (by a write or a compare-and-set), every read names the
//! one operation it reads from, and the search's hard question (which write does this read
//! see?) disappears. What is left can be decided in `O(n log n)`, except for the
//! compare-and-sets that reported failure, which only say that the register did *not* hold a
//! value: those are placed greedily into a linearization of the rest, and when that fails
//! the procedure declines and the search decides.
//! Reference: Gibbons & Korach, "Testing shared memories" (1997), for reads whose write is
//! known; the compare-and-set chains and the treatment of operations without a return are
//! this checker's.
//!
//! # The class
//!
//! Every value is produced (written, or swapped in by a compare-and-set) by at most one
//! operation, no compare-and-set has `from == to`, and every operation without a return has
//! an unknown output. Otherwise [`decide`] returns `None`.
//!
//! # The relaxed history
//!
//! A value is *needed* if a read returned it, or if it is the `from` of a compare-and-set
//! that reported success, or of a compare-and-set whose `to` is needed and whose outcome is
//! unknown. A needed value's producer takes effect in every linearization, as a producer: it
//! is the only operation that can leave that value (if it is a compare-and-set that reported
//! failure, nothing can, and the history is `Illegal`; so is a needed value nothing writes). The *kept* operations are the reads with
//! a known output, the writes with a return, the compare-and-sets that reported success, and
//! the producers of needed values. The others are *loose* (compare-and-sets that reported
//! failure, and those with an unknown outcome whose `to` is not needed, if they returned;
//! reads with an unknown output) or *dropped* (the rest of the operations without a return).
//!
//! **The kept operations alone are a relaxation.** Take a linearization `L` of the history
//! and keep only the kept operations. Each kept operation `x` that needs a value `u` saw `u`
//! in `L`, so the last operation before `x` in `L` that changed the state is `u`'s producer,
//! which is kept (`u` is needed); the operations removed between them changed nothing, so in
//! the shorter sequence `x` still sees `u`. A read of nil saw no producer before it in `L`
//! and sees none in a subsequence. Writes need nothing, and a subsequence keeps real-time
//! order. So if the kept operations have no linearization, neither has the history: every
//! `Illegal` below is exact.
//!
//! # Blocks
//!
//! In a linearization of the kept operations, the register holds a value `v` from its
//! producer until the next producer, and every operation that needs `v` lies in between.
//! If that next producer is a compare-and-set, it needs `v`, so it is *the* compare-and-set
//! from `v` (two of them would both need `v`, which comes back never: `Illegal`). Following
//! these links from each write (and from the initial nil) gives *blocks*: a write, the reads
//! of its value, the compare-and-set from it, the reads of that one's value, and so on. Each
//! block is contiguous in every linearization, its producers in chain order, each read after
//! its value's producer and before the next. Kept operations that no block reaches form a
//! cycle of compare-and-sets, each needing the value the previous one leaves; the first to
//! take effect cannot: `Illegal`.
//!
//! So a linearization is an order of blocks, each laid out by its ranks (producer of the
//! `i`-th value, then its reads, then the next producer), and conversely any such
//! concatenation is accepted by the register. It respects real time exactly when (1) within
//! each block no operation of a higher rank returned before one of a lower rank was called,
//! and (2) block `A` comes before block `B` whenever some operation of `A` returned before
//! some operation of `B` was called, that is `min return(A) < max call(B)`. (Reads of one
//! value are placed in return order, which respects real time among them.) A linearization
//! therefore exists iff (1) holds for every block and relation (2) has no cycle; the
//! initial nil block gets a return before every call, so it comes first. A topological
//! order is found greedily: a block is a source when its latest call is no later than the
//! earliest return of every other remaining block, which only the two earliest returns
//! decide.
//!
//! # Loose operations
//!
//! With nothing loose, the layout above is a linearization of the whole history: the
//! dropped operations need not take effect, and the procedure is complete. A loose
//! operation changes nothing where it is legal, so it only needs a gap of that layout
//! inside its interval where the register does not hold its `from` (for a compare-and-set
//! with an unknown outcome, placing it there makes it fail, which is allowed). Taken in
//! return order, each goes into the earliest such gap no earlier than the gaps of the loose
//! operations that returned before its call. When one finds no gap because the register
//! holds its `from` there, and that value is the last of its block, the block is moved one
//! place earlier or later (the pair forced, on top of relation (2)) and the layout is built
//! again, up to 64 times; then the procedure returns `None` (another order of blocks, or a
//! dropped write hiding the value, might have helped). Every linearization is checked
//! against the register and real time before it is returned, so a mistake in this part
//! could only cost a verdict, never make one wrong.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use crate::history::Operation;
use crate::model::{Decision, Model};
use crate::models::{RegisterInput, RegisterModel, RegisterOutput};

type RegOp = Operation<RegisterInput, RegisterOutput>;

/// Reorderings of blocks tried when a loose operation finds no gap, before declining.
const REPAIRS_MAX: usize = 64;

/// A time on one axis with the two infinities: the initial nil's return comes before every
/// call, and an operation without a return returns after everything.
type Time = i128;
const BEFORE_ALL: Time = -1;
const AFTER_ALL: Time = Time::MAX;

fn call_of(op: &RegOp) -> Time {
    Time::from(op.call.0)
}

fn return_of(op: &RegOp) -> Time {
    op.return_time.map_or(AFTER_ALL, |t| Time::from(t.0))
}

/// What an operation does in the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Not placed: it never returned and nothing needs it.
    Dropped,
    /// Placed as a producer (a write, or a compare-and-set that swaps).
    Producer,
    /// Placed as a read of this value.
    Reader(Option<i64>),
    /// Placed into a gap where the register does not hold this value (if any).
    Loose(Option<i64>),
}

/// Decides a register history whose written values are unique (see the module docs), or
/// returns `None` if it is outside that class or its loose operations could not be placed.
pub fn decide(ops: &[&RegOp]) -> Option<Decision> {
    let producer = producers(ops)?;
    let roles = match roles(ops, &producer) {
        Ok(roles) => roles,
        Err(culprit) => return Some(Decision::Illegal(culprit)),
    };
    let blocks = match blocks(ops, &roles) {
        Ok(blocks) => blocks,
        Err(culprit) => return Some(Decision::Illegal(culprit)),
    };
    let mut order = match block_order(ops, &blocks, &[]) {
        Ok(order) => order,
        Err(culprit) => return Some(Decision::Illegal(culprit)),
    };
    let mut block_of = vec![usize::MAX; ops.len()];
    for (b, block) in blocks.iter().enumerate() {
        for &(op, _) in block {
            block_of[op] = b;
        }
    }
    let mut forced: Vec<(usize, usize)> = Vec::new();
    loop {
        let base: Vec<usize> = order
            .iter()
            .flat_map(|&b| blocks[b].iter().map(|&(op, _)| op))
            .collect();
        let loose = match place_loose(ops, &roles, &base) {
            Ok(full) => return verified(ops, &full).then_some(Decision::Linearizable(full)),
            Err(loose) => loose,
        };
        if forced.len() == REPAIRS_MAX {
            return None;
        }
        let mut reordered = None;
        for pair in repair(ops, &producer, &blocks, &block_of, &order, loose)
            .into_iter()
            .flatten()
        {
            if forced.contains(&pair) {
                continue;
            }
            forced.push(pair);
            // With forced pairs, finding no order proves nothing: try the next pair.
            match block_order(ops, &blocks, &forced) {
                Ok(next) => {
                    reordered = Some(next);
                    break;
                }
                Err(_) => {
                    forced.pop();
                }
            }
        }
        order = reordered?;
    }
}

/// Pairs (block, block to place it before) to force, in the order to try them, when the
/// loose operation `loose` found no gap: the register holds its `from` wherever it may go.
/// If that value is the last of its block, the block is moved before the one preceding it
/// (so that the next block starts earlier), or, unless the operation must come after the
/// value's producer, behind the one following it (so that the producer comes later).
fn repair(
    ops: &[&RegOp],
    producer: &BTreeMap<i64, usize>,
    blocks: &[Vec<(usize, u32)>],
    block_of: &[usize],
    order: &[usize],
    loose: usize,
) -> [Option<(usize, usize)>; 2] {
    let RegisterInput::Cas { from, .. } = ops[loose].input else {
        return [None; 2];
    };
    let Some(&p) = producer.get(&from) else {
        return [None; 2];
    };
    let block = block_of[p];
    // Producers have even ranks; a later one would be a compare-and-set from the value, in
    // the block's own order, which no reordering of blocks moves.
    let last_producer = blocks
        .get(block)
        .and_then(|b| b.iter().rev().find(|&&(_, rank)| rank % 2 == 0));
    let at = order.iter().position(|&b| b == block);
    let (Some(&(last_producer, _)), Some(at)) = (last_producer, at) else {
        return [None; 2];
    };
    if last_producer != p {
        return [None; 2];
    }
    // The initial nil's block comes first in every order: it is never moved.
    let earlier = at.checked_sub(1).map(|k| (block, order[k]));
    let earlier = earlier.filter(|&(_, w)| w != 0);
    let later = order.get(at + 1).map(|&z| (z, block));
    if return_of(ops[p]) < call_of(ops[loose]) {
        [earlier, None]
    } else {
        [later, earlier]
    }
}

/// The producer of each value, or `None` if the history is outside the class.
fn producers(ops: &[&RegOp]) -> Option<BTreeMap<i64, usize>> {
    let mut producer = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if op.return_time.is_none() && op.output().is_some() {
            return None;
        }
        let matching = matches!(
            (&op.input, op.output()),
            (_, None)
                | (RegisterInput::Read, Some(RegisterOutput::Read(_)))
                | (RegisterInput::Write(_), Some(RegisterOutput::Write))
                | (RegisterInput::Cas { .. }, Some(RegisterOutput::Cas(_)))
        );
        if !matching {
            // Never legal; the search reports it.
            return None;
        }
        let written = match op.input {
            RegisterInput::Read => continue,
            RegisterInput::Write(v) => v,
            RegisterInput::Cas { from, to } if from == to => return None,
            RegisterInput::Cas { to, .. } => to,
        };
        if producer.insert(written, i).is_some() {
            return None;
        }
    }
    Some(producer)
}

/// Each operation's role, from the needed values; `Err` names an operation that needs a
/// value nothing produces.
fn roles(ops: &[&RegOp], producer: &BTreeMap<i64, usize>) -> Result<Vec<Role>, usize> {
    let mut roles = vec![Role::Dropped; ops.len()];
    // (value needed, by which operation)
    let mut needs: Vec<(i64, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        roles[i] = match (&op.input, op.output()) {
            (RegisterInput::Read, Some(RegisterOutput::Read(v))) => {
                if let Some(v) = v {
                    needs.push((*v, i));
                }
                Role::Reader(*v)
            }
            (RegisterInput::Read, _) if op.return_time.is_some() => Role::Loose(None),
            (RegisterInput::Write(_), _) if op.return_time.is_some() => Role::Producer,
            (RegisterInput::Cas { from, .. }, Some(RegisterOutput::Cas(true))) => {
                needs.push((*from, i));
                Role::Producer
            }
            (RegisterInput::Cas { from, .. }, _) if op.return_time.is_some() => {
                Role::Loose(Some(*from))
            }
            _ => Role::Dropped,
        };
    }
    while let Some((value, by)) = needs.pop() {
        let &p = producer.get(&value).ok_or(by)?;
        if ops[p].output() == Some(&RegisterOutput::Cas(false)) {
            // Its only producer reported that it did not swap.
            return Err(by);
        }
        if roles[p] == Role::Producer {
            continue;
        }
        roles[p] = Role::Producer;
        if let RegisterInput::Cas { from, .. } = ops[p].input {
            needs.push((from, p));
        }
    }
    Ok(roles)
}

/// The blocks (see the module docs), each as (operation, rank) in layout order, the initial
/// nil's first; `Err` names an operation that cannot be placed.
fn blocks(ops: &[&RegOp], roles: &[Role]) -> Result<Vec<Vec<(usize, u32)>>, usize> {
    let mut readers: BTreeMap<Option<i64>, Vec<usize>> = BTreeMap::new();
    let mut next: BTreeMap<i64, usize> = BTreeMap::new();
    for (i, role) in roles.iter().enumerate() {
        if let Role::Reader(v) = role {
            readers.entry(*v).or_default().push(i);
        }
        let (Role::Producer, RegisterInput::Cas { from, .. }) = (role, ops[i].input) else {
            continue;
        };
        if next.insert(from, i).is_some() {
            // A second swap from a value that comes back never.
            return Err(i);
        }
    }
    for list in readers.values_mut() {
        list.sort_by_key(|&i| (return_of(ops[i]), call_of(ops[i]), i));
    }
    let heads = std::iter::once(None).chain(
        (0..ops.len())
            .filter(|&i| roles[i] == Role::Producer)
            .filter_map(|i| match ops[i].input {
                RegisterInput::Write(v) => Some(Some((v, i))),
                _ => None,
            }),
    );
    let mut blocks = Vec::new();
    let mut placed = 0;
    for head in heads {
        let mut block = Vec::new();
        let mut rank = 0;
        let mut value = head.map(|(v, p)| {
            block.push((p, 0));
            v
        });
        loop {
            let key = value;
            block.extend(
                readers
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .map(|&r| (r, rank + 1)),
            );
            let Some(swap) = key.and_then(|v| next.get(&v)) else {
                break;
            };
            rank += 2;
            block.push((*swap, rank));
            value = match ops[*swap].input {
                RegisterInput::Cas { to, .. } => Some(to),
                _ => unreachable!("links are compare-and-sets"),
            };
        }
        check_ranks(ops, &block)?;
        placed += block.len();
        blocks.push(block);
    }
    let kept = roles
        .iter()
        .filter(|r| matches!(r, Role::Producer | Role::Reader(_)))
        .count();
    if placed != kept {
        // A cycle of compare-and-sets: name one.
        let mut in_block = vec![false; ops.len()];
        for &(op, _) in blocks.iter().flatten() {
            in_block[op] = true;
        }
        let missing = (0..ops.len())
            .find(|&i| !in_block[i] && matches!(roles[i], Role::Producer | Role::Reader(_)));
        return Err(missing.expect("a kept operation outside every block"));
    }
    Ok(blocks)
}

/// Condition (1) of the module docs: no operation of a higher rank returned before one of a
/// lower rank was called. `Err` names the lower one.
fn check_ranks(ops: &[&RegOp], block: &[(usize, u32)]) -> Result<(), usize> {
    let mut earliest_return_above = AFTER_ALL;
    let mut end = block.len();
    while end > 0 {
        let rank = block[end - 1].1;
        let mut start = end;
        while start > 0 && block[start - 1].1 == rank {
            start -= 1;
        }
        for &(op, _) in &block[start..end] {
            if earliest_return_above < call_of(ops[op]) {
                return Err(op);
            }
        }
        for &(op, _) in &block[start..end] {
            earliest_return_above = earliest_return_above.min(return_of(ops[op]));
        }
        end = start;
    }
    Ok(())
}

/// A topological order of relation (2) of the module docs in which each pair of `forced`
/// has its first block before its second; `Err` names an operation of a block on a cycle.
/// Among the blocks that may come next, the one whose producer was called first is taken.
fn block_order(
    ops: &[&RegOp],
    blocks: &[Vec<(usize, u32)>],
    forced: &[(usize, usize)],
) -> Result<Vec<usize>, usize> {
    // Block 0 is the initial nil's: its producer returns before every call.
    let earliest_return: Vec<Time> = (0..blocks.len())
        .map(|b| {
            let own = blocks[b].iter().map(|&(op, _)| return_of(ops[op])).min();
            if b == 0 {
                BEFORE_ALL
            } else {
                own.unwrap_or(AFTER_ALL)
            }
        })
        .collect();
    let latest_call: Vec<Time> = blocks
        .iter()
        .map(|block| {
            let calls = block.iter().map(|&(op, _)| call_of(ops[op]));
            calls.max().unwrap_or(BEFORE_ALL)
        })
        .collect();
    let key: Vec<Time> = (0..blocks.len())
        .map(|b| match blocks[b].first() {
            Some(&(op, _)) if b != 0 => call_of(ops[op]),
            _ => BEFORE_ALL,
        })
        .collect();
    let mut waiting_for = vec![0usize; blocks.len()];
    let mut before: Vec<Vec<usize>> = vec![Vec::new(); blocks.len()];
    for &(first, second) in forced {
        waiting_for[second] += 1;
        before[first].push(second);
    }
    let mut by_return: BTreeSet<(Time, usize)> =
        (0..blocks.len()).map(|b| (earliest_return[b], b)).collect();
    let mut by_call: Vec<usize> = (0..blocks.len()).collect();
    by_call.sort_by_key(|&b| (latest_call[b], b));
    let mut next_call = 0;
    let mut called = vec![false; blocks.len()];
    // Sources (but perhaps the block with the earliest return), by key. A block is one when
    // its latest call is no later than every other remaining block's earliest return.
    let mut ready: BTreeSet<(Time, usize)> = BTreeSet::new();
    let mut order = Vec::with_capacity(blocks.len());
    while let Some(&(first_return, first)) = by_return.first() {
        let second_return = by_return.iter().nth(1).map_or(AFTER_ALL, |&(t, _)| t);
        while next_call < by_call.len() && latest_call[by_call[next_call]] <= first_return {
            let b = by_call[next_call];
            called[b] = true;
            if waiting_for[b] == 0 && by_return.contains(&(earliest_return[b], b)) {
                ready.insert((key[b], b));
            }
            next_call += 1;
        }
        let first_is_source = latest_call[first] <= second_return && waiting_for[first] == 0;
        let pick = match ready.first() {
            Some(&(k, b)) if !first_is_source || (k, b) < (key[first], first) => b,
            _ if first_is_source => first,
            _ => {
                // No source: every remaining block must follow another. Only the initial
                // nil's block may be empty, and it is a source until it is taken (no pair
                // forces a block before it).
                let &(op, _) = blocks[first]
                    .iter()
                    .max_by_key(|&&(op, _)| (call_of(ops[op]), op))
                    .expect("a block on a cycle has an operation");
                return Err(op);
            }
        };
        by_return.remove(&(earliest_return[pick], pick));
        ready.remove(&(key[pick], pick));
        order.push(pick);
        for &b in &before[pick] {
            waiting_for[b] -= 1;
            if waiting_for[b] == 0 && called[b] {
                ready.insert((key[b], b));
            }
        }
    }
    Ok(order)
}

/// Inserts the loose operations into the layout `base` (see the module docs), or names
/// one that finds no gap.
fn place_loose(ops: &[&RegOp], roles: &[Role], base: &[usize]) -> Result<Vec<usize>, usize> {
    let n = base.len();
    let mut position = vec![usize::MAX; ops.len()];
    for (at, &op) in base.iter().enumerate() {
        position[op] = at;
    }
    // Per produced value: the gaps holding it, `first..=last` (gap `g` is before `base[g]`).
    let mut holding: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    let mut current: Option<(i64, usize)> = None;
    for (at, &op) in base.iter().enumerate() {
        if roles[op] != Role::Producer {
            continue;
        }
        if let Some((v, from)) = current {
            holding.insert(v, (from, at));
        }
        let written = match ops[op].input {
            RegisterInput::Write(v) | RegisterInput::Cas { to: v, .. } => v,
            RegisterInput::Read => unreachable!("reads are not producers"),
        };
        current = Some((written, at + 1));
    }
    if let Some((v, from)) = current {
        holding.insert(v, (from, n));
    }
    // Gap bounds from real time: after every base operation that returned before the call,
    // before every one called after the return.
    let mut by_return: Vec<(Time, usize)> = base
        .iter()
        .map(|&op| (return_of(ops[op]), position[op]))
        .collect();
    by_return.sort_unstable();
    let mut after_max = Vec::with_capacity(n + 1);
    after_max.push(0);
    for &(_, at) in &by_return {
        after_max.push(after_max[after_max.len() - 1].max(at + 1));
    }
    let mut by_call: Vec<(Time, usize)> = base
        .iter()
        .map(|&op| (call_of(ops[op]), position[op]))
        .collect();
    by_call.sort_unstable();
    let mut before_min = vec![n; n + 1];
    for k in (0..n).rev() {
        before_min[k] = before_min[k + 1].min(by_call[k].1);
    }
    let mut loose: Vec<usize> = (0..ops.len())
        .filter(|&i| matches!(roles[i], Role::Loose(_)))
        .collect();
    loose.sort_by_key(|&i| (return_of(ops[i]), call_of(ops[i]), i));
    // Per loose operation placed so far (in return order): the latest gap among them.
    let mut gap_max: Vec<usize> = Vec::with_capacity(loose.len());
    let mut gaps: Vec<(usize, usize)> = Vec::with_capacity(loose.len());
    for (k, &i) in loose.iter().enumerate() {
        let (call, ret) = (call_of(ops[i]), return_of(ops[i]));
        let lo = after_max[by_return.partition_point(|&(t, _)| t < call)];
        let hi = before_min[by_call.partition_point(|&(t, _)| t <= ret)];
        let earlier = loose[..k].partition_point(|&e| return_of(ops[e]) < call);
        let mut gap = lo.max(if earlier == 0 {
            0
        } else {
            gap_max[earlier - 1]
        });
        if let Role::Loose(Some(v)) = roles[i] {
            if let Some(&(first, last)) = holding.get(&v) {
                if (first..=last).contains(&gap) {
                    gap = last + 1;
                }
            }
        }
        if gap > hi || gap > n {
            return Err(i);
        }
        gap_max.push(gap_max.last().map_or(gap, |&m: &usize| m.max(gap)));
        gaps.push((gap, k));
    }
    gaps.sort_unstable();
    let mut full = Vec::with_capacity(n + loose.len());
    let mut next = gaps.iter().peekable();
    for (g, &op) in base.iter().enumerate() {
        while let Some((_, k)) = next.next_if(|&&(gap, _)| gap == g) {
            full.push(loose[*k]);
        }
        full.push(op);
    }
    full.extend(next.map(|&(_, k)| loose[k]));
    Ok(full)
}

/// True if `order` holds every operation with a return, respects real time and is accepted
/// by the register.
fn verified(ops: &[&RegOp], order: &[usize]) -> bool {
    let mut seen = vec![false; ops.len()];
    let mut latest_call = BEFORE_ALL;
    let mut state = RegisterModel.init();
    for &i in order {
        if seen[i] || return_of(ops[i]) < latest_call {
            return false;
        }
        seen[i] = true;
        latest_call = latest_call.max(call_of(ops[i]));
        match RegisterModel.step(&state, &ops[i].input, ops[i].output()) {
            Some(next) => state = next,
            None => return false,
        }
    }
    (0..ops.len()).all(|i| seen[i] || ops[i].return_time.is_none())
}
