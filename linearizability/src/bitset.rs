//! A fixed-size set of operations with an incrementally maintained hash.
//!
//! The search flips one bit per step and looks the set up in the memo cache after every flip.
//! Rehashing the whole set each time would cost O(n/64) per step; instead the hash is the XOR
//! of a random 64-bit key per member (Zobrist hashing), updated in O(1) by each flip.

/// A set of operation indices `0..len` with a Zobrist hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
    hash: u64,
}

/// A well-mixed 64-bit key for member `index` (the SplitMix64 finalizer). Fixed, not random,
/// so that runs are reproducible.
pub fn zobrist_key(index: usize) -> u64 {
    let mut z = (index as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Bitset {
    /// An empty set able to hold `0..len`.
    pub fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
            hash: 0,
        }
    }

    /// Capacity: members are `0..len`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the capacity is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `index` is a member.
    pub fn contains(&self, index: usize) -> bool {
        assert!(index < self.len, "bit {index} out of range {}", self.len);
        self.words[index / 64] & (1 << (index % 64)) != 0
    }

    /// Add `index`, which must not be a member.
    pub fn insert(&mut self, index: usize) {
        assert!(!self.contains(index), "bit {index} already set");
        self.words[index / 64] |= 1 << (index % 64);
        self.hash ^= zobrist_key(index);
    }

    /// Remove `index`, which must be a member.
    pub fn remove(&mut self, index: usize) {
        assert!(self.contains(index), "bit {index} not set");
        self.words[index / 64] &= !(1 << (index % 64));
        self.hash ^= zobrist_key(index);
    }

    /// Number of members.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The hash of the member set; equal sets have equal hashes.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The raw words, for storing the set compactly.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Appends the members in `start..end`, shifted down by `start`, to `out` as
    /// `ceil((end - start) / 64)` words.
    pub fn extract_into(&self, start: usize, end: usize, out: &mut Vec<u64>) {
        assert!(
            start <= end && end <= self.len,
            "range {start}..{end} out of 0..{}",
            self.len
        );
        let mut at = start;
        while at < end {
            let (index, shift) = (at / 64, at % 64);
            let mut word = self.words[index] >> shift;
            if shift != 0 && index + 1 < self.words.len() {
                word |= self.words[index + 1] << (64 - shift);
            }
            let bits = (end - at).min(64);
            if bits < 64 {
                word &= (1u64 << bits) - 1;
            }
            out.push(word);
            at += 64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_only_on_members() {
        let mut a = Bitset::new(130);
        let mut b = Bitset::new(130);
        a.insert(3);
        a.insert(129);
        b.insert(129);
        b.insert(7);
        b.insert(3);
        b.remove(7);
        assert_eq!(a, b);
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.count(), 2);
        a.remove(3);
        assert_ne!(a.hash(), b.hash());
        assert!(!a.contains(3) && a.contains(129));
    }

    #[test]
    fn extracts_shifted_ranges() {
        let mut a = Bitset::new(200);
        for i in [3, 64, 65, 130, 199] {
            a.insert(i);
        }
        let mut out = Vec::new();
        a.extract_into(3, 200, &mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(out[0], 1 | (1 << 61) | (1 << 62));
        assert_eq!(out[1], 1 << 63);
        assert_eq!(out[2], 0);
        assert_eq!(out[3], 1 << 4);
        out.clear();
        a.extract_into(64, 66, &mut out);
        assert_eq!(out, vec![0b11]);
        out.clear();
        a.extract_into(10, 10, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    #[should_panic(expected = "already set")]
    fn double_insert_is_a_bug() {
        let mut a = Bitset::new(4);
        a.insert(1);
        a.insert(1);
    }
}
