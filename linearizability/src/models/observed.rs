//! The values a key's reads returned, used to merge key-value states no read can tell apart.
//!
//! If a value is not a prefix of anything a read returned, then neither is anything appended
//! to it, so no read can succeed until a put replaces it. All such values behave the same in
//! every future, so the key-value model folds them into one state. The remaining values are
//! prefixes of returned values and are stored as (returned value, length): 8 bytes, no string.

use std::cmp::Ordering;

/// Sorted, deduplicated values returned by reads of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedValues {
    values: Vec<String>,
}

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
        Self { values }
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
