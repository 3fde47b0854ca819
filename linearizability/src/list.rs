//! The search's doubly linked list of call and return entries (dancing links).
//!
//! Entries are ordered by time, calls before returns at equal times, so intervals are closed:
//! `[10, 20]` and `[20, 30]` overlap. Linearizing an operation removes its entries; removed
//! entries keep their neighbours, so putting them back in reverse order of removal restores
//! the list exactly (Knuth's dancing links), which is what backtracking needs.

use crate::history::Timestamp;

const HEAD: u32 = 0;
const NIL: u32 = u32::MAX;

fn call_node(op: u32) -> u32 {
    1 + 2 * op
}

fn return_node(op: u32) -> u32 {
    2 + 2 * op
}

/// The list of not-yet-linearized operations' entries.
pub struct EntryList {
    next: Vec<u32>,
    prev: Vec<u32>,
    has_return: Vec<bool>,
}

impl EntryList {
    /// The list for operations with these (call, return) times; operations without a return
    /// only have a call entry.
    pub fn new(calls: &[(Timestamp, Option<Timestamp>)]) -> Self {
        assert!(
            calls.len() < (u32::MAX as usize - 2) / 2,
            "too many operations"
        );
        let nodes = 1 + 2 * calls.len();
        let mut events: Vec<(Timestamp, u8, u32)> = Vec::with_capacity(nodes);
        for (i, &(call, ret)) in calls.iter().enumerate() {
            events.push((call, 0, i as u32));
            if let Some(ret) = ret {
                assert!(call <= ret, "an operation returns after its call");
                events.push((ret, 1, i as u32));
            }
        }
        events.sort_unstable();
        let (mut next, mut prev) = (vec![NIL; nodes], vec![NIL; nodes]);
        let mut last = HEAD;
        for &(_, kind, op) in &events {
            let node = if kind == 0 {
                call_node(op)
            } else {
                return_node(op)
            };
            next[last as usize] = node;
            prev[node as usize] = last;
            last = node;
        }
        Self {
            next,
            prev,
            has_return: calls.iter().map(|c| c.1.is_some()).collect(),
        }
    }

    /// Collects the operations whose call comes before the first return (the ones that may
    /// be linearized next), in list order. Returns the operation of that first return, if
    /// any: it must be linearized before anything called after it returned.
    pub fn candidates(&self, out: &mut Vec<u32>) -> Option<u32> {
        out.clear();
        let mut node = self.next[HEAD as usize];
        while node != NIL && node % 2 == 1 {
            out.push((node - 1) / 2);
            node = self.next[node as usize];
        }
        (node != NIL).then(|| (node - 2) / 2)
    }

    /// Collects, in list order, the operations whose call comes before the first return of
    /// an operation satisfying `wanted`, and returns that operation (`None` if there is no
    /// such return). Those are the only operations that may take effect before it.
    pub fn calls_before_return(
        &self,
        wanted: impl Fn(u32) -> bool,
        out: &mut Vec<u32>,
    ) -> Option<u32> {
        out.clear();
        let mut node = self.next[HEAD as usize];
        while node != NIL {
            if node % 2 == 1 {
                out.push((node - 1) / 2);
            } else if wanted((node - 2) / 2) {
                return Some((node - 2) / 2);
            }
            node = self.next[node as usize];
        }
        None
    }

    fn unlink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        if n != NIL {
            self.prev[n as usize] = node;
        }
    }

    /// Removes an operation's entries.
    pub fn lift(&mut self, op: u32) {
        self.unlink(call_node(op));
        if self.has_return[op as usize] {
            self.unlink(return_node(op));
        }
    }

    /// Restores the entries of the operation lifted last.
    pub fn unlift(&mut self, op: u32) {
        if self.has_return[op as usize] {
            self.relink(return_node(op));
        }
        self.relink(call_node(op));
    }

    /// Approximate bytes held.
    pub fn size_bytes(&self) -> usize {
        self.next.len() * 8 + self.has_return.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_stop_at_the_first_return_and_lifting_is_undone() {
        let t = |c: u64, r: Option<u64>| (Timestamp(c), r.map(Timestamp));
        // 0 [0, 5], 1 [1, 2], 2 open from 3, 3 [2, 9]: calls 0, 1, 3 come before return 1
        // (a call at time 2 precedes a return at time 2).
        let mut list = EntryList::new(&[t(0, Some(5)), t(1, Some(2)), t(3, None), t(2, Some(9))]);
        let mut out = Vec::new();
        assert_eq!(list.candidates(&mut out), Some(1));
        assert_eq!(out, vec![0, 1, 3]);
        list.lift(1);
        assert_eq!(list.candidates(&mut out), Some(0));
        assert_eq!(out, vec![0, 3, 2]);
        list.lift(0);
        list.lift(3);
        assert_eq!(list.candidates(&mut out), None);
        assert_eq!(out, vec![2]);
        assert_eq!(list.calls_before_return(|_| true, &mut out), None);
        assert_eq!(out, vec![2]);
        list.unlift(3);
        list.unlift(0);
        list.unlift(1);
        // Skipping the return of 1, the calls before the return of 0 (time 5) include 2.
        assert_eq!(list.calls_before_return(|op| op == 0, &mut out), Some(0));
        assert_eq!(out, vec![0, 1, 3, 2]);
        assert_eq!(list.candidates(&mut out), Some(1));
        assert_eq!(out, vec![0, 1, 3]);
    }
}
