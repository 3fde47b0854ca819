//! `sim merge` on the summaries real sharded sweeps write: the merged report counts every
//! shard's seeds once, lists every failure with its reproduce command, and a missing shard
//! makes the report fail rather than pass on fewer seeds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(args)
        .output()
        .expect("running sim")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-merge-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs shard `i/n` of `range` and returns its summary's path.
fn shard(dir: &Path, range: &str, i: u64, n: u64, bug: Option<&str>) -> String {
    let json = dir.join(format!("summary-{i}.json"));
    let (json_s, out) = (json.display().to_string(), dir.join("failures"));
    let shard = format!("{i}/{n}");
    let mut args = vec!["--seeds", range, "--shard", &shard, "--workload", "raft"];
    args.extend(["--fault-phase-ms", "2000", "--json", &json_s]);
    let out = out.display().to_string();
    args.extend(["--out", &out]);
    if let Some(bug) = bug {
        args.extend(["--bug", bug]);
    }
    let output = sim(&args);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    json_s
}

#[test]
fn sharded_summaries_merge_into_one_report() {
    let dir = scratch("clean");
    let files: Vec<String> = (0..3).map(|i| shard(&dir, "1..10", i, 3, None)).collect();
    let merged = dir.join("merged.json").display().to_string();
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--json", &merged]);
    let output = sim(&args);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("9 seeds: 9 passed, 0 failed"), "{text}");
    assert!(text.contains("| 2/3 | 3 | 0 |"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).expect("merged json"))
            .expect("valid json");
    assert_eq!(json["seeds"], 9);
    assert_eq!(
        json["runs"][0]["per_shard"].as_array().map(Vec::len),
        Some(3)
    );

    // One shard left out: the report says so and fails.
    let output = sim(&["merge", &files[0], &files[2]]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("MISSING shards (their seeds did not run): [1]"),
        "{text}"
    );
}

#[test]
fn failures_of_every_shard_are_listed_with_their_reproduce_commands() {
    let dir = scratch("bug");
    // The durability checker catches this bug on every seed.
    let bug = Some("vote_before_persist");
    let files: Vec<String> = (0..2).map(|i| shard(&dir, "1..5", i, 2, bug)).collect();
    let output = sim(&["merge", &files[1], &files[0]]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("4 seeds: 0 passed, 4 failed"), "{text}");
    for seed in 1..5 {
        assert!(
            text.contains(&format!(
                "reproduce: cargo run --release --bin sim -- --seed {seed} --workload raft --bug \
                 vote_before_persist"
            )),
            "seed {seed}: {text}"
        );
    }
    let not_json = dir.join("not.json");
    std::fs::write(&not_json, "[1, 2]").expect("write");
    let output = sim(&["merge", &not_json.display().to_string()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a `sim --json` sweep summary"));
}
