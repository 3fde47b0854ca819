//! The Kubernetes Indexed Job of `deploy/k8s/` without a cluster: each pod's script
//! (`run-shard.sh`) runs as Kubernetes would run it, with `JOB_COMPLETION_INDEX` set, and
//! `collect.sh` gathers the summaries from the "pod logs" through a stand-in `kubectl` that
//! serves the captured output, then merges them with `sim merge`.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-k8s-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `PATH` with `sim` (and `extra`) first.
fn path_with(extra: &Path) -> String {
    let sim_dir = Path::new(env!("CARGO_BIN_EXE_sim"))
        .parent()
        .expect("bin dir");
    format!(
        "{}:{}:{}",
        extra.display(),
        sim_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

const FAKE_KUBECTL: &str = r#"#!/bin/sh
# Serves pod logs captured in $LOGS/<index>.log, as `kubectl` would for the Job's pods.
case "$1" in
  get)
    if [ "$2" = pods ]; then for f in "$LOGS"/*.log; do echo "pod/sim-seeds-$(basename "$f" .log)"; done
    else echo "${2#pod/sim-seeds-}"; fi ;;
  logs) cat "$LOGS/${2#pod/sim-seeds-}.log" ;;
  *) echo "unexpected kubectl $*" >&2; exit 2 ;;
esac
"#;

#[test]
fn the_indexed_job_shards_a_range_and_collect_merges_the_pods_summaries() {
    let dir = scratch("job");
    let (bin, logs, out) = (dir.join("bin"), dir.join("logs"), dir.join("out"));
    for d in [&bin, &logs] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let kubectl = bin.join("kubectl");
    std::fs::write(&kubectl, FAKE_KUBECTL).expect("fake kubectl");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let manifest =
        std::fs::read_to_string(root().join("deploy/k8s/sim-seeds.yaml")).expect("the manifest");
    for needed in [
        "completionMode: Indexed",
        "SHARDS",
        "SEEDS",
        "WORKLOAD",
        "JOBS",
    ] {
        assert!(manifest.contains(needed), "the manifest lacks {needed}");
    }
    let shards = 3;
    for index in 0..shards {
        let output = Command::new("sh")
            .arg(root().join("deploy/k8s/run-shard.sh"))
            .env("PATH", path_with(&bin))
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("SHARDS", shards.to_string())
            .env("SEEDS", "10..19")
            .env("WORKLOAD", "raft")
            .env("EXTRA", "--fault-phase-ms 2000")
            .output()
            .expect("run-shard.sh");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // `kubectl logs` shows both streams.
        let mut log = output.stderr.clone();
        log.extend_from_slice(&output.stdout);
        std::fs::write(logs.join(format!("{index}.log")), log).expect("log");
    }
    let sim = env!("CARGO_BIN_EXE_sim");
    let collect = |logs: &Path| {
        Command::new("sh")
            .arg(root().join("deploy/k8s/collect.sh"))
            .args([Path::new("sim-seeds"), &out, Path::new(sim)])
            .env("PATH", path_with(&bin))
            .env("LOGS", logs)
            .output()
            .expect("collect.sh")
    };
    let output = collect(&logs);
    let text = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{text}{errors}");
    assert!(text.contains("9 seeds: 9 passed, 0 failed"), "{text}");
    assert!(out.join("merged.json").exists());
    for index in 0..shards {
        assert!(text.contains(&format!("| {index}/3 | 3 | 0 |")), "{text}");
    }
    // A pod that never reported: the merged report fails.
    std::fs::remove_file(logs.join("1.log")).expect("remove");
    let _ = std::fs::remove_dir_all(&out);
    let output = collect(&logs);
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("MISSING shards (their seeds did not run): [1]"),
        "{text}"
    );
}
