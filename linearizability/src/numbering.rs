//! How reports number operations.
//!
//! Reports name operations by number (`#12`). A history checked whole numbers them by their
//! index in it. A partition loaded on its own (see [`crate::spill`]) holds only its own
//! operations, at indices 0, 1, ..., and names them by their index in the whole history, so
//! that both ways of checking give the same account.

/// The number a report gives the operation at each index of the operations it was given.
#[derive(Clone, Copy, Debug)]
pub enum Numbering<'a> {
    /// An operation's number is its index.
    Index,
    /// The operation at index `i` is number `numbers[i]`; the numbers increase.
    Numbers(&'a [usize]),
}

impl Numbering<'_> {
    /// The number of the operation at index `i`.
    pub fn of(self, i: usize) -> usize {
        match self {
            Numbering::Index => i,
            Numbering::Numbers(numbers) => numbers[i],
        }
    }

    /// The index of the operation numbered `number`, if there is one.
    pub fn index(self, number: usize) -> Option<usize> {
        match self {
            Numbering::Index => Some(number),
            Numbering::Numbers(numbers) => numbers.binary_search(&number).ok(),
        }
    }
}
