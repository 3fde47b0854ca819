//! The `sim` binary as a user meets it: huge ranges start at once, flags that would do nothing
//! are refused, corpus files replay, failures are reported in every mode, and the output of a
//! seed is the same on every run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn sim() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sim"));
    cmd.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    cmd
}

fn run(args: &[&str]) -> Output {
    sim().args(args).output().expect("running sim")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Goal: `--seeds 0..u64::MAX` with a shard of modulus 1,000,000 runs its first seeds at
/// once (the old code built the whole list first: a 4 GB allocation, or minutes of filtering).
/// Method: seed 1 fails with `figure8_commit`; wait for its failure line, which a sweep prints
/// as it happens, then stop the process.
#[test]
fn a_huge_sharded_range_starts_at_once_and_reports_failures_as_they_happen() {
    let out = scratch("huge");
    let mut child = sim()
        .args([
            "--seeds",
            "0..18446744073709551615",
            "--shard",
            "1/1000000",
            "--workload",
            "raft",
            // Caught on every seed (the durability checker sees the vote leave first), so
            // the shard's first seed, 1, must fail.
            "--bug",
            "vote_before_persist",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning sim");
    let stdout = child.stdout.take().expect("piped stdout");
    // A watchdog, so that a run that never reports a failure fails the test instead of
    // hanging it.
    let pid = child.id();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(120));
        let _ = Command::new("kill").arg(pid.to_string()).status();
    });
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("utf-8 output");
        let done = line.contains(" FAILED");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines[0].contains("18446744073710 seed(s) of 0..18446744073709551615 (shard 1/1000000)"),
        "{lines:?}"
    );
    let failed = lines.last().expect("some output");
    assert!(failed.starts_with("seed 1 FAILED: safety"), "{lines:?}");
}

#[test]
fn flags_that_would_do_nothing_are_refused_with_exit_code_2() {
    for (args, says) in [
        (
            &["--seeds", "1..3", "--trace"][..],
            "--trace traces one run",
        ),
        (
            &["--seeds", "1..3", "--check-determinism"],
            "runs one seed twice",
        ),
        (&["--seed", "1", "--jobs", "2"], "--jobs runs --seeds"),
        (&["canaries", "--jobs", "0"], "0 is not in 1..=256"),
        (
            &["--jobs", "2", "canaries"],
            "does nothing for `sim canaries`",
        ),
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// An unwritable `--json` path is refused before the first seed runs (this sweep would take
/// hours otherwise).
#[test]
fn an_unwritable_json_path_is_refused_up_front() {
    let output = run(&[
        "--seeds",
        "1..1000000",
        "--json",
        "/nonexistent-dir/summary.json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot write"));
    assert!(text(&output.stdout).is_empty(), "a seed ran first");
}

#[test]
fn replaying_a_seed_file_runs_what_the_corpus_test_runs() {
    let output = run(&["replay", "seeds/raft-5-figure8_commit.seed"]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("FAILED: safety"), "{stdout}");
    assert!(stdout.contains("without the bug: passed"), "{stdout}");
    assert!(stdout.contains("as expected"), "{stdout}");

    // A file whose expectation is wrong: exit 1, and it says what came out instead.
    let dir = scratch("replay");
    let wrong = dir.join("raft-5.seed");
    std::fs::write(
        &wrong,
        "seed = 5\nworkload = \"raft\"\nbug = \"figure8_commit\"\nexpect = \"pass\"\nfound = \"x\"\n",
    )
    .unwrap();
    let output = sim().arg("replay").arg(&wrong).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("WRONG: expected pass"));

    // A bug the workload cannot plant is refused, as the corpus test refuses it.
    let unplantable = dir.join("raft-1.seed");
    std::fs::write(
        &unplantable,
        "seed = 1\nworkload = \"raft\"\nbug = \"local_reads\"\nexpect = \"pass\"\nfound = \"x\"\n",
    )
    .unwrap();
    let output = sim().arg("replay").arg(&unplantable).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot plant"));
}

/// Goal: a seed whose derived configuration changed since its file was written is refused
/// with the file, both fingerprints and the fix; `--refresh` rewrites the fingerprint only
/// while the recorded outcome holds.
#[test]
fn a_drifted_seed_file_is_refused_and_refresh_fixes_only_one_that_still_holds() {
    let dir = scratch("drift");
    let body = "seed = 5\nworkload = \"raft\"\nbug = \"figure8_commit\"\nfound = \"x\"\n";
    let stale = dir.join("raft-5-figure8_commit.seed");
    std::fs::write(
        &stale,
        format!("{body}expect = \"fail\"\nconfig = \"0123456789abcdef\"\n"),
    )
    .unwrap();
    let output = sim().arg("replay").arg(&stale).output().unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for part in [
        &format!(
            "WRONG: {}: the seed's configuration changed",
            stale.display()
        ),
        "records config = \"0123456789abcdef\"",
        "now derives config = \"",
        "--seed 5 --workload raft --bug figure8_commit",
        &format!("replay --refresh {}", stale.display()),
    ] {
        assert!(stdout.contains(part), "`{part}` missing from: {stdout}");
    }

    // The outcome still holds: refresh writes the current fingerprint, then a replay holds.
    let output = sim()
        .args(["replay", "--refresh"])
        .arg(&stale)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    let refreshed = std::fs::read_to_string(&stale).unwrap();
    assert!(!refreshed.contains("0123456789abcdef"), "{refreshed}");
    assert!(refreshed.contains("config = \""), "{refreshed}");
    let output = sim().arg("replay").arg(&stale).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    assert!(text(&output.stdout).contains("as expected"));

    // The outcome does not hold: refresh leaves the file alone and exits 1.
    let wrong = dir.join("raft-5.seed");
    let before = format!("{body}expect = \"pass\"\nconfig = \"0123456789abcdef\"\n");
    std::fs::write(&wrong, &before).unwrap();
    let output = sim()
        .args(["replay", "--refresh"])
        .arg(&wrong)
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("not refreshed"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&wrong).unwrap(), before);
}

#[test]
fn add_seed_refuses_to_overwrite_without_force() {
    let dir = scratch("add-seed");
    let add = |extra: &[&str]| {
        sim()
            .args([
                "add-seed",
                "--seed",
                "3",
                "--workload",
                "raft",
                "--found",
                "t",
                "--dir",
            ])
            .arg(&dir)
            .args(extra)
            .output()
            .unwrap()
    };
    assert_eq!(add(&[]).status.code(), Some(0));
    // The file it writes carries the fingerprint, so it replays as written.
    let file = dir.join("raft-3.seed");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("config = \""));
    let replayed = sim().arg("replay").arg(&file).output().unwrap();
    assert_eq!(
        replayed.status.code(),
        Some(0),
        "{}",
        text(&replayed.stdout)
    );
    let again = add(&[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already exists; add --force"));
    assert_eq!(add(&["--force"]).status.code(), Some(0));
}

#[test]
fn check_determinism_fails_on_a_failing_seed_and_says_so() {
    let output = run(&[
        "--seed",
        "5",
        "--workload",
        "raft",
        "--bug",
        "figure8_commit",
        "--check-determinism",
    ]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("deterministic: both runs are identical"));
    assert!(stdout.contains("seed 5 FAILED (the same way in both runs): safety"));
}

/// "Byte for byte": the trace and everything else a seed prints is identical on two runs,
/// except the one wall-clock line, which says it is not part of it.
#[test]
fn trace_output_is_identical_across_runs() {
    let trace = || run(&["--seed", "2", "--workload", "raft", "--trace"]);
    let replayable = |output: &Output| {
        let stderr: Vec<String> = text(&output.stderr)
            .lines()
            .filter(|l| !l.contains("not part of the replayable output"))
            .map(str::to_string)
            .collect();
        (text(&output.stdout), stderr)
    };
    let (a, b) = (trace(), trace());
    assert!(a.status.success());
    let (a, b) = (replayable(&a), replayable(&b));
    assert!(a.1.len() > 100, "the trace is empty");
    assert_eq!(a, b);
}

#[test]
fn a_kv_run_does_not_print_the_raw_clients_counters() {
    let output = run(&["--seed", "1"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("kv: "), "{stdout}");
    assert!(!stdout.contains("client:"), "{stdout}");
    let help = text(&run(&["--help"]).stdout);
    for bug in sim::bugs::registry() {
        assert!(help.contains(bug.name), "--help lacks {}", bug.name);
    }
}
