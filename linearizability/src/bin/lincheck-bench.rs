//! Benchmarks of the checker. Build with `--release`.
//!
//! `lincheck-bench corpus [--threads N] DIR` times the checker on every history of the
//! Porcupine corpus (one warm-up run, then the median of 3 runs each, like the Porcupine
//! baseline), where DIR holds the corpus's `manifest.json` (CI passes
//! `../shared/porcupine-histories`). Every verdict is compared with the manifest; the exit
//! status is 1 if any differs. Then checks kv/c50-bad once more with a verdict for every key
//! and prints the process's peak memory (VmHWM).
//!
//! `lincheck-bench shapes [--ops N] [--timeout SECS]` generates histories of known verdict
//! (see `linearizability::generate`) for kv and register, 5 to 50 clients, 0 to 10% pending,
//! with and without a planted violation, and prints a table: verdict, time and peak memory
//! of the checker, and of a baseline run in the same process: the same search without the
//! model hooks for pending operations and required states ([`Model::dispensable`],
//! [`Model::requirement`], [`Model::may_produce`]). A verdict that contradicts the
//! generator's is flagged and makes the exit status 1.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use linearizability::generate::{self, Shape};
use linearizability::jsonl::{read_file, JsonCodec};
use linearizability::models::{KvModel, RegisterModel};
use linearizability::{
    check_with, CheckOptions, CheckResult, Model, Operation, Partition, Verdict,
};

const RUNS: usize = 3;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Checks one file RUNS times; returns (verdict name, median time, configurations explored).
fn time_file<M>(
    model: &M,
    path: &Path,
    options: &CheckOptions,
) -> Result<(String, Duration, u64), String>
where
    M: JsonCodec + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    let history = read_file(model, path).map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    let mut verdict = String::new();
    let mut configurations = 0;
    // One warm-up run, as in the Porcupine baseline's method, then RUNS timed runs.
    let _ = check_with(model, &history, options);
    for _ in 0..RUNS {
        let started = Instant::now();
        let report = check_with(model, &history, options);
        times.push(started.elapsed());
        configurations = report.partitions.iter().map(|p| p.configurations).sum();
        verdict = format!("{:?}", report.result())
            .chars()
            .take_while(|c| c.is_alphabetic())
            .collect();
    }
    Ok((verdict, median(times), configurations))
}

fn peak_memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: unavailable")
        .to_string()
}

fn per_key(path: &Path, threads: usize) -> Result<(), String> {
    let history = read_file(&KvModel::new(), path).map_err(|e| e.to_string())?;
    let options = CheckOptions {
        measure_time: true,
        timeout: Some(Duration::from_secs(60)),
        threads,
        ..CheckOptions::default()
    };
    let started = Instant::now();
    let report = check_with(&KvModel::new(), &history, &options);
    let total = started.elapsed();
    for p in &report.partitions {
        let ms = p.elapsed.unwrap_or_default().as_secs_f64() * 1e3;
        println!(
            "  {:<10} {:>4} ops {:>12?} {:>10.2} ms {:>10} configurations",
            p.name,
            p.ops.len(),
            p.verdict,
            ms,
            p.configurations
        );
    }
    let all_decided = report
        .partitions
        .iter()
        .all(|p| !matches!(p.verdict, Verdict::Unknown(_)));
    println!(
        "  all keys: {:.2} ms, every key decided: {all_decided}, {}",
        total.as_secs_f64() * 1e3,
        peak_memory()
    );
    Ok(())
}

/// Benchmarks of the checker.
#[derive(clap::Parser)]
enum Bench {
    /// Times the checker on every history of the Porcupine corpus.
    Corpus(CorpusArgs),
    /// Times the checker and a baseline on generated histories.
    Shapes(ShapesArgs),
}

#[derive(clap::Args)]
struct CorpusArgs {
    /// Worker threads for partitions (default: all cores; 1 gives the steadiest figures on a
    /// busy machine).
    #[arg(long)]
    threads: Option<usize>,
    /// Corpus directory holding manifest.json.
    dir: PathBuf,
}

#[derive(clap::Args)]
struct ShapesArgs {
    /// Operations per history.
    #[arg(long, default_value_t = 10_000)]
    ops: usize,
    /// Time limit per check, in seconds (for the checker and the baseline alike).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Worker threads for partitions.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Skip the baseline (halves the run time).
    #[arg(long)]
    no_baseline: bool,
}

fn main() {
    match <Bench as clap::Parser>::parse() {
        Bench::Corpus(args) => corpus(args),
        Bench::Shapes(args) => {
            if shapes(&args) > 0 {
                std::process::exit(1);
            }
        }
    }
}

fn corpus(args: CorpusArgs) {
    let dir = args.dir;
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap_or_else(|e| {
        eprintln!("{}: {e}", dir.join("manifest.json").display());
        std::process::exit(3);
    });
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&manifest).expect("manifest is a JSON array");
    let mut options = CheckOptions {
        stop_at_first_illegal: true,
        ..CheckOptions::default()
    };
    if let Some(threads) = args.threads {
        options.threads = threads.max(1);
    }
    println!(
        "threads: {}, median of {RUNS} runs per file",
        options.threads
    );
    let (mut etcd_total, mut all_total, mut mismatches) = (Duration::ZERO, Duration::ZERO, 0);
    for entry in &entries {
        let name = entry["name"].as_str().unwrap_or("?");
        let path = dir.join(entry["jsonl"].as_str().unwrap_or(""));
        // The one history without an expectation (etcd_095) is empty: trivially linearizable.
        let empty = entry["ops"].as_u64() == Some(0);
        let expected =
            entry["expected"]
                .as_str()
                .unwrap_or(if empty { "linearizable" } else { "?" });
        let result = match entry["model"].as_str() {
            Some("kv") => time_file(&KvModel::new(), &path, &options),
            _ => time_file(&RegisterModel, &path, &options),
        };
        match result {
            Ok((verdict, time, configurations)) => {
                let ok = matches!(
                    (expected, verdict.as_str()),
                    ("linearizable", "Ok") | ("not_linearizable", "Illegal")
                );
                mismatches += usize::from(!ok);
                let flag = if ok { "" } else { "  MISMATCH" };
                let ms = time.as_secs_f64() * 1e3;
                let counted = format!("{configurations:>9} configurations");
                println!("{name:<18} {verdict:<8} {ms:>10.3} ms {counted}{flag}");
                all_total += time;
                if name.starts_with("jepsen/") {
                    etcd_total += time;
                }
            }
            Err(e) => {
                mismatches += 1;
                println!("{name:<18} error: {e}");
            }
        }
    }
    println!(
        "etcd total: {:.3} ms; corpus total: {:.3} ms; mismatches: {mismatches}",
        etcd_total.as_secs_f64() * 1e3,
        all_total.as_secs_f64() * 1e3
    );
    println!("kv/c50-bad, every key:");
    if let Err(e) = per_key(&dir.join("jsonl/kv/c50-bad.jsonl"), options.threads) {
        println!("  error: {e}");
    }
    if mismatches > 0 {
        std::process::exit(1);
    }
}

/// A model without the hooks for pending operations and required states: the baseline.
struct Baseline<M>(M);

impl<M: Model> Model for Baseline<M> {
    type State = M::State;
    type Input = M::Input;
    type Output = M::Output;

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

    fn partition(&self, history: &[Operation<Self::Input, Self::Output>]) -> Vec<Partition> {
        self.0.partition(history)
    }

    fn specialize(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Option<Self> {
        self.0.specialize(ops).map(Baseline)
    }

    fn is_read_only(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        self.0.is_read_only(input, output)
    }

    fn may_become_legal(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
        others: &[(&Self::Input, Option<&Self::Output>)],
    ) -> bool {
        self.0.may_become_legal(state, input, output, others)
    }

    fn state_size_bytes(&self, state: &Self::State) -> usize {
        self.0.state_size_bytes(state)
    }
}

/// Resets the process's peak resident set size (Linux), so that VmHWM measures what follows.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size in MiB since the last reset, if known.
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// One timed check: (verdict word, seconds, peak MiB).
fn timed<M>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    options: &CheckOptions,
) -> (&'static str, f64, f64)
where
    M: Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    reset_peak_memory();
    let started = Instant::now();
    let result = check_with(model, history, options).result();
    let seconds = started.elapsed().as_secs_f64();
    let word = match result {
        CheckResult::Ok => "Ok",
        CheckResult::Illegal(_) => "Illegal",
        CheckResult::Unknown => "Unknown",
    };
    (word, seconds, peak_mib().unwrap_or(f64::NAN))
}

/// Runs every shape; returns how many verdicts contradict the generator.
fn shapes(args: &ShapesArgs) -> usize {
    let options = CheckOptions {
        timeout: Some(Duration::from_secs_f64(args.timeout)),
        threads: args.threads.max(1),
        stop_at_first_illegal: true,
        ..CheckOptions::default()
    };
    println!(
        "{} ops per history, timeout {} s, threads {}; time in s, peak memory in MiB",
        args.ops, args.timeout, options.threads
    );
    println!(
        "{:<9} {:>7} {:>7} {:>5} | {:<7} {:>7} {:>7} | {:<7} {:>7} {:>7} | {:>8}",
        "model",
        "clients",
        "pending",
        "viol",
        "verdict",
        "time",
        "MiB",
        "base",
        "time",
        "MiB",
        "speedup"
    );
    let mut wrong = 0;
    let mut seed = 0;
    for model in ["kv", "register"] {
        for clients in [5, 20, 50] {
            for pending in [0.0, 0.05, 0.1] {
                for violation in [false, true] {
                    seed += 1;
                    let shape = Shape {
                        ops: args.ops,
                        keys: 1,
                        clients,
                        pending,
                        violation,
                        kind: generate::Violation::StaleRead,
                        seed,
                    };
                    let run = |baseline: bool| match model {
                        "kv" => {
                            let g = generate::kv(&shape).expect("valid shape");
                            if baseline {
                                timed(&Baseline(KvModel::new()), &g.history, &options)
                            } else {
                                timed(&KvModel::new(), &g.history, &options)
                            }
                        }
                        _ => {
                            let g = generate::register(&shape).expect("valid shape");
                            if baseline {
                                timed(&Baseline(RegisterModel), &g.history, &options)
                            } else {
                                timed(&RegisterModel, &g.history, &options)
                            }
                        }
                    };
                    let (verdict, time, mib) = run(false);
                    let expected = if violation { "Illegal" } else { "Ok" };
                    let flag = if verdict == "Unknown" || verdict == expected {
                        ""
                    } else {
                        wrong += 1;
                        "  WRONG"
                    };
                    let (base, base_time, base_mib, speedup) = if args.no_baseline {
                        ("-", f64::NAN, f64::NAN, String::from("-"))
                    } else {
                        let (b, t, m) = run(true);
                        let speedup = match (verdict, b) {
                            ("Unknown", _) => "-".to_string(),
                            (_, "Unknown") => format!(">{:.0}x", t / time),
                            _ => format!("{:.1}x", t / time),
                        };
                        (b, t, m, speedup)
                    };
                    println!(
                        "{model:<9} {clients:>7} {pending:>7.2} {:>5} | {verdict:<7} {time:>7.3} {mib:>7.1} | {base:<7} {base_time:>7.3} {base_mib:>7.1} | {speedup:>8}{flag}",
                        if violation { "yes" } else { "no" },
                    );
                }
            }
        }
    }
    wrong
}
