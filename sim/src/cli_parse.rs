//! Value parsers of the `sim` command line: seed ranges, shards, bug and workload names.

use sim::workload::Workload;
use std::ops::Range;

/// A half-open range like `1..1000`.
pub fn parse_range(text: &str) -> Result<Range<u64>, String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("`{text}` is not a range like 1..1000"))?;
    let start: u64 = a
        .trim()
        .parse()
        .map_err(|e| format!("bad range start `{a}`: {e}"))?;
    let end: u64 = b
        .trim()
        .parse()
        .map_err(|e| format!("bad range end `{b}`: {e}"))?;
    if end <= start {
        return Err(format!(
            "range {start}..{end} is empty (the end is exclusive)"
        ));
    }
    Ok(start..end)
}

/// A bug name of the registry (whether the workload can plant it is checked later, once the
/// workload is known).
pub fn parse_bug(name: &str) -> Result<String, String> {
    match sim::bugs::find(name) {
        Some(_) => Ok(name.to_string()),
        None => Err(format!(
            "unknown bug `{name}`; known bugs: {}",
            sim::bugs::names()
        )),
    }
}

/// `kv`, `raft` or `shardkv`.
pub fn parse_workload(name: &str) -> Result<Workload, String> {
    Workload::from_name(name)
        .ok_or_else(|| format!("unknown workload `{name}`; use kv, raft or shardkv"))
}

/// A shard `i/n` with `0 <= i < n`.
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not a shard like 0/4"))?;
    let i: u64 = i
        .trim()
        .parse()
        .map_err(|e| format!("bad shard index `{i}`: {e}"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|e| format!("bad shard count `{n}`: {e}"))?;
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= i < n"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_bad_ranges_are_explained() {
        assert_eq!(parse_range("1..1000"), Ok(1..1000));
        assert_eq!(parse_range("0..18446744073709551615"), Ok(0..u64::MAX));
        assert!(parse_range("5").unwrap_err().contains("not a range"));
        assert!(parse_range("9..3").unwrap_err().contains("empty"));
        assert!(parse_range("a..3").unwrap_err().contains("bad range start"));
    }

    #[test]
    fn names_and_shards_parse_and_bad_ones_are_explained() {
        assert_eq!(
            parse_bug("figure8_commit"),
            Ok("figure8_commit".to_string())
        );
        assert_eq!(parse_bug("local_reads"), Ok("local_reads".to_string()));
        assert!(parse_bug("nope").unwrap_err().contains("known bugs"));
        assert_eq!(parse_shard("1/4"), Ok((1, 4)));
        assert!(parse_shard("4/4").unwrap_err().contains("0 <= i < n"));
        assert!(parse_shard("1").unwrap_err().contains("not a shard"));
        assert!(parse_shard("a/2").unwrap_err().contains("bad shard index"));
        assert_eq!(parse_workload("raft"), Ok(Workload::Raft));
        assert_eq!(parse_workload("shardkv"), Ok(Workload::ShardKv));
        assert!(parse_workload("sql")
            .unwrap_err()
            .contains("kv, raft or shardkv"));
    }
}
