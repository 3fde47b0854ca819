//! The memo cache of configurations already explored: (set of linearized ops, state).
//!
//! Lowe's observation: two search paths that have linearized the same operations and reached
//! the same state have the same future, so the second one can be cut. This set dominates the
//! checker's memory. The search encodes each configuration as a short key of words (see
//! `search::Encoding`); keys are packed one after another (`[hash, length, key...]`) into
//! fixed-size chunks, and the hash table holds only each entry's 8-byte address. Chunks keep
//! the growth smooth: no doubling copy of the whole arena.

use hashbrown::HashTable;

/// Words per arena chunk (8 MiB).
const CHUNK_WORDS: usize = 1 << 20;
/// Words in the first chunk (32 KiB).
const FIRST_CHUNK_WORDS: usize = 1 << 12;
/// Words stored before each key: its hash and its length.
const HEADER_WORDS: usize = 2;

/// The set of explored configurations, as encoded keys with precomputed hashes.
#[derive(Default)]
pub struct Memo {
    chunks: Vec<Vec<u64>>,
    len: usize,
    /// Global word addresses (`chunk * CHUNK_WORDS + offset`) of the entries.
    table: HashTable<u64>,
}

impl Memo {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache with room for `entries` configurations before the table grows.
    pub fn with_capacity(entries: usize) -> Self {
        Self {
            table: HashTable::with_capacity(entries),
            ..Self::default()
        }
    }

    fn entry(chunks: &[Vec<u64>], address: u64) -> &[u64] {
        let address = address as usize;
        let chunk = &chunks[address / CHUNK_WORDS];
        let start = address % CHUNK_WORDS;
        let len = chunk[start + 1] as usize;
        &chunk[start..start + HEADER_WORDS + len]
    }

    /// Insert `key` (whose hash is `hash`); returns false if it was already present.
    /// Equal keys must have equal hashes.
    pub fn insert(&mut self, hash: u64, key: &[u64]) -> bool {
        assert!(key.len() + HEADER_WORDS <= CHUNK_WORDS, "memo key too long");
        let chunks = &self.chunks;
        let found = self.table.find(hash, |&address| {
            let entry = Self::entry(chunks, address);
            entry[0] == hash && &entry[HEADER_WORDS..] == key
        });
        if found.is_some() {
            return false;
        }
        let address = self.push(hash, key);
        let chunks = &self.chunks;
        self.table
            .insert_unique(hash, address, |&address| Self::entry(chunks, address)[0]);
        true
    }

    fn push(&mut self, hash: u64, key: &[u64]) -> u64 {
        let needed = key.len() + HEADER_WORDS;
        let fits = self
            .chunks
            .last()
            .is_some_and(|chunk| chunk.len() + needed <= chunk.capacity());
        if !fits {
            // Small searches stay small: chunks start at 32 KiB and double up to 8 MiB.
            // Reserved, not zeroed: the pages are only touched as entries are written.
            let doubled = FIRST_CHUNK_WORDS << self.chunks.len().min(8);
            self.chunks
                .push(Vec::with_capacity(doubled.clamp(needed, CHUNK_WORDS)));
        }
        let index = self.chunks.len() - 1;
        let chunk = &mut self.chunks[index];
        let address = (index * CHUNK_WORDS + chunk.len()) as u64;
        chunk.push(hash);
        chunk.push(key.len() as u64);
        chunk.extend_from_slice(key);
        assert!(
            chunk.len() <= CHUNK_WORDS,
            "an entry never straddles chunks"
        );
        self.len += 1;
        address
    }

    /// Number of configurations stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated: words written to the arena plus table slots and control bytes.
    /// (Chunks are reserved whole but their pages are only touched when written.)
    pub fn size_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.len() * 8).sum::<usize>()
            + self.table.capacity() * (std::mem::size_of::<u64>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguishes_keys_of_any_length() {
        let mut memo = Memo::new();
        assert!(memo.insert(7, &[]));
        assert!(!memo.insert(7, &[]));
        assert!(memo.insert(7, &[0]));
        assert!(memo.insert(7, &[0, 0]));
        assert!(memo.insert(8, &[1, 2, 3]));
        assert!(!memo.insert(8, &[1, 2, 3]));
        assert!(memo.insert(8, &[1, 2, 4]));
        assert_eq!(memo.len(), 5);
    }

    #[test]
    fn survives_many_inserts_across_chunks() {
        let mut memo = Memo::new();
        let key = vec![9u64; 1000];
        for i in 0..3000u64 {
            let mut k = key.clone();
            k[0] = i;
            assert!(memo.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15), &k));
        }
        assert_eq!(memo.len(), 3000);
        assert!(memo.chunks.len() >= 3);
        let mut k = key.clone();
        k[0] = 1234;
        assert!(!memo.insert(1234u64.wrapping_mul(0x9E37_79B9_7F4A_7C15), &k));
    }
}
