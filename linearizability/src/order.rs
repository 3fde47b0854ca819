//! The order in which the search tries candidates, and which ones it may skip.

use crate::model::Model;
use crate::search::SearchOp;

/// Per operation: its rank by (return time, operations without a return last; call time;
/// index). Candidates are tried in this order: the one that must take effect soonest first,
/// which tends to find a linearization without detours.
pub fn urgency<M: Model>(ops: &[SearchOp<'_, M>]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| {
        (
            ops[i].return_time.is_none(),
            ops[i].return_time,
            ops[i].call,
            i,
        )
    });
    let mut urgency = vec![0; ops.len()];
    for (rank, &i) in order.iter().enumerate() {
        urgency[i] = rank as u32;
    }
    urgency
}

/// Per operation without a return: an identical one (equal input) without a return, called
/// no later, if any. Such operations are interchangeable once both are called, so the search
/// only tries the later one after its twin is linearized.
pub fn find_twins<M: Model>(ops: &[SearchOp<'_, M>]) -> Vec<Option<u32>> {
    let mut open: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].return_time.is_none())
        .collect();
    open.sort_by_key(|&i| (ops[i].call, i));
    let mut twins = vec![None; ops.len()];
    for (position, &i) in open.iter().enumerate() {
        let earlier = open[..position]
            .iter()
            .rev()
            .find(|&&j| ops[j].input == ops[i].input);
        twins[i] = earlier.map(|&j| j as u32);
    }
    twins
}
