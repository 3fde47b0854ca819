//! Every history of the Porcupine corpus gets the verdict its manifest expects.

mod common;

use std::time::{Duration, Instant};

use linearizability::jsonl::read_file;
use linearizability::models::{KvModel, RegisterModel};
use linearizability::{check, check_with, CheckOptions, CheckResult, Verdict};

/// Generous: the slowest file takes a few milliseconds in release and well under a second in
/// debug builds. A timeout would surface as Unknown and fail the test.
const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn every_history_gets_the_expected_verdict() {
    let dir = common::corpus_dir();
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).expect("readable manifest");
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&manifest).expect("manifest is JSON");
    assert_eq!(entries.len(), 109, "the corpus has 109 histories");
    let mut failures = Vec::new();
    for entry in &entries {
        let name = entry["name"].as_str().expect("name");
        let path = dir.join(entry["jsonl"].as_str().expect("jsonl path"));
        let (result, ops) = match entry["model"].as_str() {
            Some("kv") => {
                let history = read_file(&KvModel::new(), &path).expect("parses");
                (
                    check(&KvModel::new(), &history, Some(TIMEOUT)),
                    history.len(),
                )
            }
            Some("cas-register") => {
                let history = read_file(&RegisterModel, &path).expect("parses");
                (
                    check(&RegisterModel, &history, Some(TIMEOUT)),
                    history.len(),
                )
            }
            other => panic!("{name}: unexpected model {other:?}"),
        };
        assert_eq!(
            ops as u64,
            entry["ops"].as_u64().expect("ops"),
            "{name}: operation count"
        );
        let expected = match entry["expected"].as_str() {
            Some("linearizable") => "Ok",
            Some("not_linearizable") => "Illegal",
            // etcd_095 is empty and has no expectation in Porcupine's tests; an empty history
            // is trivially linearizable (the corpus README says so).
            None if ops == 0 => "Ok",
            other => panic!("{name}: unexpected expectation {other:?}"),
        };
        let got = match result {
            CheckResult::Ok => "Ok",
            CheckResult::Illegal(_) => "Illegal",
            CheckResult::Unknown => "Unknown",
        };
        if got != expected {
            failures.push(format!("{name}: expected {expected}, got {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "verdict mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn c50_bad_gets_a_verdict_for_every_key() {
    let path = common::corpus_dir().join("jsonl/kv/c50-bad.jsonl");
    let history = read_file(&KvModel::new(), &path).expect("parses");
    let started = Instant::now();
    let options = CheckOptions {
        timeout: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    };
    let report = check_with(&KvModel::new(), &history, &options);
    let elapsed = started.elapsed();
    assert_eq!(report.partitions.len(), 10);
    for p in &report.partitions {
        assert_eq!(p.verdict, Verdict::Illegal, "{}", p.name);
        assert!(
            p.blocked.is_some(),
            "{}: an illegal partition names the blocking op",
            p.name
        );
    }
    assert!(
        elapsed < Duration::from_secs(10),
        "all keys took {elapsed:?}"
    );
}

#[test]
fn c50_ok_linearization_is_legal_and_complete() {
    let path = common::corpus_dir().join("jsonl/kv/c50-ok.jsonl");
    let model = KvModel::new();
    let history = read_file(&model, &path).expect("parses");
    let report = check_with(&model, &history, &CheckOptions::default());
    for p in &report.partitions {
        assert_eq!(p.verdict, Verdict::Ok, "{}", p.name);
        let mut sorted = p.linearization.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted, p.ops,
            "{}: every op is linearized exactly once",
            p.name
        );
        let states = linearizability::explain::replay(&model, &history, &p.linearization);
        assert_eq!(
            states.len(),
            p.linearization.len(),
            "{}: the order replays legally",
            p.name
        );
        // Real-time order: an op that returned before another was called comes first.
        for (k, &a) in p.linearization.iter().enumerate() {
            for &b in &p.linearization[..k] {
                let a_ret = history[a].return_time.expect("closed");
                assert!(
                    a_ret >= history[b].call,
                    "{}: #{a} returned before #{b} was called",
                    p.name
                );
            }
        }
    }
}

/// The key-value model without its per-partition specialization: plain string states.
struct PlainKv(KvModel);

impl linearizability::Model for PlainKv {
    type State = <KvModel as linearizability::Model>::State;
    type Input = <KvModel as linearizability::Model>::Input;
    type Output = <KvModel as linearizability::Model>::Output;

    fn init(&self) -> Self::State {
        self.0.init()
    }

    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        self.0.step(state, input, output)
    }

    fn partition(
        &self,
        history: &[linearizability::Operation<Self::Input, Self::Output>],
    ) -> Vec<linearizability::Partition> {
        self.0.partition(history)
    }

    fn is_read_only(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        self.0.is_read_only(input, output)
    }
}

#[test]
fn kv_specialization_agrees_with_plain_strings_where_both_finish() {
    use linearizability::Model;
    let dir = common::corpus_dir();
    let mut decided = 0;
    for name in [
        "c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad",
    ] {
        let path = dir.join(format!("jsonl/kv/{name}.jsonl"));
        let history = read_file(&KvModel::new(), &path).expect("parses");
        let options = CheckOptions {
            configurations_max: Some(30_000),
            ..CheckOptions::default()
        };
        let plain = check_with(&PlainKv(KvModel::new()), &history, &options);
        let fast = check_with(&KvModel::new(), &history, &CheckOptions::default());
        assert_eq!(plain.partitions.len(), fast.partitions.len());
        for (p, f) in plain.partitions.iter().zip(&fast.partitions) {
            assert!(
                !matches!(f.verdict, Verdict::Unknown(_)),
                "{name} {}",
                f.name
            );
            if !matches!(p.verdict, Verdict::Unknown(_)) {
                assert_eq!(p.verdict, f.verdict, "{name} {}", p.name);
                decided += 1;
            }
        }
        assert!(KvModel::new().partition(&history).len() >= 8);
    }
    assert!(
        decided >= 40,
        "the plain model decided only {decided} partitions"
    );
}
