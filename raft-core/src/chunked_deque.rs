//! A double-ended queue stored in fixed-size chunks, for the in-memory log.
//!
//! A `VecDeque` of a long log is one huge allocation, regrown by doubling: each regrowth copies
//! the whole log, and beyond the allocator's mmap threshold (at most 32 MiB with glibc) every
//! buffer is fresh memory from the kernel, paid for with a page fault per page, and given
//! back when it is freed, so a process that builds such logs again and again pays for every
//! page each time. Chunks of a fixed, small size never move once filled and come from (and go
//! back to) the allocator's heap, which recycles them.
//!
//! Only the operations the log needs: append at the back, drop from the front (compaction) or
//! the back (truncation), and positional access.

use std::fmt;

/// Elements per chunk: 1024 log entries are 40 KiB, well below any mmap threshold.
const DEFAULT_CHUNK: usize = 1024;

/// The queue. Every chunk holds at least one element and at most `CHUNK`; every chunk but the
/// first and the last holds exactly `CHUNK` (the first may have lost a prefix to
/// [`ChunkedDeque::drop_front`], the last is being filled), so positions map to chunks by
/// arithmetic. The chunks are a `Vec`: dropping whole chunks from the front shifts the others,
/// but that happens only when a snapshot compacts the log, and the list is short.
#[derive(Clone)]
pub(crate) struct ChunkedDeque<T, const CHUNK: usize = DEFAULT_CHUNK> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T, const CHUNK: usize> Default for ChunkedDeque<T, CHUNK> {
    fn default() -> Self {
        ChunkedDeque {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: fmt::Debug, const CHUNK: usize> fmt::Debug for ChunkedDeque<T, CHUNK> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T, const CHUNK: usize> FromIterator<T> for ChunkedDeque<T, CHUNK> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut out = ChunkedDeque::default();
        for item in iter {
            out.push_back(item);
        }
        out
    }
}

impl<T, const CHUNK: usize> ChunkedDeque<T, CHUNK> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Chunk and offset of position `at`, which must be below `len`.
    #[inline]
    fn locate(&self, at: usize) -> (usize, usize) {
        assert!(at < self.len, "position {at} beyond {}", self.len);
        let first = self.chunks[0].len();
        if at < first {
            (0, at)
        } else {
            let rest = at - first;
            (1 + rest / CHUNK, rest % CHUNK)
        }
    }

    #[inline]
    pub(crate) fn get(&self, at: usize) -> Option<&T> {
        let first = self.chunks.first()?;
        match at.checked_sub(first.len()) {
            None => first.get(at),
            // Inner chunks are full, and the last one ends where the queue does.
            Some(rest) => self.chunks.get(1 + rest / CHUNK)?.get(rest % CHUNK),
        }
    }

    #[inline]
    pub(crate) fn back(&self) -> Option<&T> {
        self.chunks.last().and_then(|chunk| chunk.last())
    }

    pub(crate) fn push_back(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(item),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(item);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    /// Keeps the first `len` elements.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        if len == 0 {
            self.clear();
            return;
        }
        let (chunk, offset) = self.locate(len);
        if offset == 0 {
            self.chunks.truncate(chunk);
        } else {
            self.chunks.truncate(chunk + 1);
            self.chunks[chunk].truncate(offset);
        }
        self.len = len;
    }

    /// Drops the first `count` elements.
    pub(crate) fn drop_front(&mut self, count: usize) {
        assert!(count <= self.len, "dropping {count} of {}", self.len);
        let mut left = count;
        let whole = self
            .chunks
            .iter()
            .take_while(|chunk| {
                let all = left >= chunk.len();
                if all {
                    left -= chunk.len();
                }
                all
            })
            .count();
        self.chunks.drain(..whole);
        if left > 0 {
            self.chunks[0].drain(..left);
        }
        self.len -= count;
    }

    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// The elements in `start..end`, as runs of contiguous slices.
    #[inline]
    pub(crate) fn slices(&self, start: usize, end: usize) -> impl Iterator<Item = &[T]> {
        assert!(
            start <= end && end <= self.len,
            "range {start}..{end} of {}",
            self.len
        );
        let (first_chunk, mut offset) = if start < end {
            self.locate(start)
        } else {
            (self.chunks.len(), 0)
        };
        let mut left = end - start;
        self.chunks[first_chunk..].iter().map_while(move |chunk| {
            if left == 0 {
                return None;
            }
            let take = (chunk.len() - offset).min(left);
            let run = &chunk[offset..offset + take];
            offset = 0;
            left -= take;
            Some(run)
        })
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slices(0, self.len).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[derive(Debug, Clone)]
    enum Op {
        Push(u32),
        Truncate(usize),
        DropFront(usize),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => any::<u32>().prop_map(Op::Push),
            1 => (0usize..40).prop_map(Op::Truncate),
            1 => (0usize..40).prop_map(Op::DropFront),
            1 => Just(Op::Clear),
        ]
    }

    fn check(deque: &ChunkedDeque<u32, 4>, model: &VecDeque<u32>) {
        assert_eq!(deque.len(), model.len());
        assert_eq!(deque.back(), model.back());
        assert_eq!(format!("{deque:?}"), format!("{model:?}"));
        for at in 0..=model.len() {
            assert_eq!(deque.get(at), model.get(at));
        }
        for start in 0..=model.len() {
            for end in start..=model.len() {
                let got: Vec<u32> = deque.slices(start, end).flatten().copied().collect();
                let want: Vec<u32> = model.range(start..end).copied().collect();
                assert_eq!(got, want, "range {start}..{end}");
            }
        }
        for (i, chunk) in deque.chunks.iter().enumerate() {
            assert!(
                !chunk.is_empty() && chunk.len() <= 4,
                "chunk {i} of {}",
                chunk.len()
            );
            let inner = i > 0 && i + 1 < deque.chunks.len();
            assert!(!inner || chunk.len() == 4, "inner chunk {i} not full");
        }
    }

    proptest! {
        #[test]
        fn behaves_like_a_vec_deque(ops in prop::collection::vec(op(), 0..120)) {
            let mut deque = ChunkedDeque::<u32, 4>::default();
            let mut model = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(v) => {
                        deque.push_back(v);
                        model.push_back(v);
                    }
                    Op::Truncate(len) => {
                        deque.truncate(len);
                        model.truncate(len);
                    }
                    Op::DropFront(count) => {
                        let count = count.min(model.len());
                        deque.drop_front(count);
                        model.drain(..count);
                    }
                    Op::Clear => {
                        deque.clear();
                        model.clear();
                    }
                }
                check(&deque, &model);
            }
        }
    }

    #[test]
    fn collects_in_order() {
        let deque: ChunkedDeque<u32, 4> = (0..10).collect();
        assert_eq!(
            deque.iter().copied().collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(deque.chunks.len(), 3);
    }
}
