//! The values a key's reads returned, used to merge key-value states no read can tell apart.
//!
//! If a value is not a prefix of anything a read returned, then neither is anything appended
//! to it, so no read can succeed until a put replaces it. All such values behave the same in
//! every future, so the key-value model folds them into one state. The remaining values are
//! prefixes of returned values and are stored as (returned value, length): 8 bytes, no string.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Sorted, deduplicated values returned by reads of one key.
#[derive(Clone, Debug, Default)]
pub struct ObservedValues {
    values: Vec<String>,
    /// Per value and length: whether that prefix is live (see [`ObservedValues::with_appends`]).
    /// Empty: every prefix counts as live.
    live: Vec<Vec<bool>>,
    /// The appended values that extend a reachable prefix into a live one; `None` if not
    /// computed.
    extending: Option<hashbrown::HashSet<String>>,
    /// The values' numbers, by hash (whole values are looked up often, and long values with
    /// long common prefixes make a binary search slow).
    by_value: HashTable<u32>,
    build: DefaultHashBuilder,
}

/// Bound on the work of [`ObservedValues::with_appends`] (bytes of observed values times
/// distinct appended lengths); beyond it every prefix counts as live.
const LIVENESS_WORK_MAX: usize = 1 << 23;

/// Compares `v` with the concatenation `s ++ a` without building it.
fn cmp_concat(v: &[u8], s: &[u8], a: &[u8]) -> Ordering {
    let n = v.len().min(s.len());
    match v[..n].cmp(&s[..n]) {
        Ordering::Equal if v.len() < s.len() => Ordering::Less,
        Ordering::Equal => v[s.len()..].cmp(a),
        other => other,
    }
}

impl ObservedValues {
    /// Collects the values.
    pub fn new(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values.into_iter().collect();
        values.sort_unstable();
        values.dedup();
        assert!(values.len() < u32::MAX as usize, "too many distinct values");
        let build = DefaultHashBuilder::default();
        let mut by_value = HashTable::with_capacity(values.len());
        for (index, value) in values.iter().enumerate() {
            by_value.insert_unique(build.hash_one(value.as_str()), index as u32, |&i| {
                build.hash_one(values[i as usize].as_str())
            });
        }
        Self {
            values,
            live: Vec::new(),
            extending: None,
            by_value,
            build,
        }
    }

    /// Records which prefixes are *live*: reachable, and some returned value can be reached
    /// from them by appending values among `appended` (the partition's appends). A prefix is
    /// *reachable* if it is empty (an absent key), one of `written` (the values puts and
    /// swaps write), or a reachable prefix followed by an appended value: only those can be
    /// the key's value. A prefix that is not live behaves like a value no read returned:
    /// appends only lead to other such values, so no read can match until a put replaces it;
    /// the key-value model merges them all into one state. (The prefix `"p3"` of a returned
    /// `"p30 1"` is not live if no append starts with `"0"`.)
    ///
    /// Also records which appended values extend some reachable prefix into a live one
    /// ([`ObservedValues::extends`]): the others leave a value that is not live whatever the
    /// key held.
    pub fn with_appends<'a>(
        mut self,
        appended: impl IntoIterator<Item = &'a str>,
        written: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let appended: hashbrown::HashSet<&[u8]> = appended
            .into_iter()
            .filter(|v| !v.is_empty())
            .map(str::as_bytes)
            .collect();
        let written: hashbrown::HashSet<&[u8]> = written.into_iter().map(str::as_bytes).collect();
        let lengths = |set: &hashbrown::HashSet<&[u8]>| {
            let mut lengths: Vec<usize> = set.iter().map(|v| v.len()).collect();
            lengths.sort_unstable();
            lengths.dedup();
            lengths
        };
        let (appended_lengths, written_lengths) = (lengths(&appended), lengths(&written));
        // The bytes an appended value may start with: most places are skipped on one look.
        let mut starts = [false; 256];
        for v in &appended {
            starts[v[0] as usize] = true;
        }
        let starts_append =
            |value: &[u8], at: usize| value.get(at).is_some_and(|&b| starts[b as usize]);
        let bytes: usize = self.values.iter().map(String::len).sum();
        let work = bytes.saturating_mul(appended_lengths.len() + written_lengths.len() + 1);
        if work > LIVENESS_WORK_MAX {
            return self;
        }
        let mut live: Vec<Vec<bool>> = Vec::with_capacity(self.values.len());
        let mut reachable = Vec::new();
        for value in &self.values {
            let value = value.as_bytes();
            reachable.clear();
            reachable.resize(value.len() + 1, false);
            reachable[0] = true;
            for &len in &written_lengths {
                if let Some(prefix) = value.get(..len) {
                    reachable[len] |= written.contains(prefix);
                }
            }
            let mut any = false;
            for at in 0..value.len() {
                if !reachable[at] || !starts_append(value, at) {
                    continue;
                }
                for &len in &appended_lengths {
                    let Some(next) = value.get(at..at + len) else {
                        break;
                    };
                    if appended.contains(next) {
                        reachable[at + len] = true;
                        any = true;
                    }
                }
            }
            let mut own = vec![false; value.len() + 1];
            own[value.len()] = true;
            if any {
                for at in (0..value.len()).rev() {
                    own[at] = reachable[at]
                        && starts_append(value, at)
                        && appended_lengths.iter().any(|&len| {
                            value
                                .get(at..at + len)
                                .is_some_and(|next| own[at + len] && appended.contains(next))
                        });
                }
            }
            own[value.len()] = true;
            live.push(own);
        }
        // A prefix is live if it is live in any value starting with it: those follow the
        // canonical one in sorted order, each sharing the prefix with the next.
        for index in (0..self.values.len().saturating_sub(1)).rev() {
            let (a, b) = (
                self.values[index].as_bytes(),
                self.values[index + 1].as_bytes(),
            );
            let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            let (head, tail) = live.split_at_mut(index + 1);
            for (at, flag) in head[index].iter_mut().enumerate().take(common + 1) {
                *flag |= tail[0][at];
            }
        }
        let mut extending = hashbrown::HashSet::new();
        for (value, own) in self.values.iter().zip(&live) {
            let value = value.as_bytes();
            for at in 0..value.len() {
                // A live prefix short of the whole value is reachable; so is the empty one.
                if !(at == 0 || own[at]) || !starts_append(value, at) {
                    continue;
                }
                for &len in &appended_lengths {
                    let Some(next) = value.get(at..at + len) else {
                        break;
                    };
                    if own[at + len] && appended.contains(next) {
                        extending.insert(String::from_utf8_lossy(next).into_owned());
                    }
                }
            }
        }
        self.live = live;
        self.extending = Some(extending);
        self
    }

    /// The number of `value` among the values, if it is one: canonical for it, since a value
    /// sorts before every other value starting with it.
    pub fn index_of(&self, value: &str) -> Option<u32> {
        let hash = self.build.hash_one(value);
        self.by_value
            .find(hash, |&index| self.values[index as usize] == value)
            .copied()
    }

    /// Whether appending `suffix` to some reachable prefix can give a live one (see
    /// [`ObservedValues::with_appends`]; `None` if that was not computed).
    pub fn extends(&self, suffix: &str) -> Option<bool> {
        self.extending.as_ref().map(|e| e.contains(suffix))
    }

    /// Whether the first `len` bytes of value number `index` are live (see
    /// [`ObservedValues::with_appends`]); `index` must be canonical for that prefix (as
    /// [`ObservedValues::locate`] returns it).
    pub fn is_live(&self, index: u32, len: u32) -> bool {
        self.live
            .get(index as usize)
            .is_none_or(|live| live[len as usize])
    }

    /// The values, sorted.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// The length of value number `index`.
    pub fn len_of(&self, index: u32) -> u32 {
        self.values[index as usize].len() as u32
    }

    /// The first `len` bytes of value number `index`.
    pub fn prefix(&self, index: u32, len: u32) -> &str {
        &self.values[index as usize][..len as usize]
    }

    /// The canonical position of `s`: the smallest returned value that starts with `s`, or
    /// `None` if no returned value does. (Values starting with `s` sort right after `s`.)
    pub fn locate(&self, s: &str) -> Option<(u32, u32)> {
        self.locate_concat_from(0, "", s)
    }

    /// [`ObservedValues::locate`] of `prefix(index, len) ++ suffix`.
    pub fn locate_concat(&self, index: u32, len: u32, suffix: &str) -> Option<(u32, u32)> {
        let base = self.prefix(index, len);
        // Values starting with `base` sort at or after the canonical `index`.
        self.locate_concat_from(index as usize, base, suffix)
    }

    fn locate_concat_from(&self, start: usize, s: &str, a: &str) -> Option<(u32, u32)> {
        let (s, a) = (s.as_bytes(), a.as_bytes());
        let rest = &self.values[start..];
        let at = start + rest.partition_point(|v| cmp_concat(v.as_bytes(), s, a) == Ordering::Less);
        let v = self.values.get(at)?.as_bytes();
        let len = s.len() + a.len();
        let matches = v.len() >= len && &v[..s.len()] == s && &v[s.len()..len] == a;
        matches.then_some((at as u32, len as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_prefixes_canonically() {
        let observed =
            ObservedValues::new(["ab".to_string(), "abc".into(), "b".into(), "ab".into()]);
        assert_eq!(observed.locate(""), Some((0, 0)));
        assert_eq!(observed.locate("a"), Some((0, 1)));
        assert_eq!(observed.locate("abc"), Some((1, 3)));
        assert_eq!(observed.locate("ac"), None);
        assert_eq!(observed.locate("abcd"), None);
        assert_eq!(observed.locate_concat(0, 1, "b"), Some((0, 2)));
        assert_eq!(observed.locate_concat(0, 2, "c"), Some((1, 3)));
        assert_eq!(observed.locate_concat(0, 0, "b"), Some((2, 1)));
        assert_eq!(observed.locate_concat(0, 2, "x"), None);
        assert_eq!(observed.prefix(1, 2), "ab");
    }

    #[test]
    fn empty_set_locates_nothing() {
        let observed = ObservedValues::new(Vec::new());
        assert_eq!(observed.locate(""), None);
    }
}
