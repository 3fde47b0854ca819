//! Times the checker on every history of the Porcupine corpus (one warm-up run, then the
//! median of 3 runs each, like the Porcupine baseline).
//!
//! Usage: `lincheck-bench [--threads N] DIR`, where DIR holds the corpus's `manifest.json`
//! (CI passes `../shared/porcupine-histories`). Build with `--release`. Every verdict is
//! compared with the manifest; the exit status is 1 if any differs. Then checks kv/c50-bad
//! once more with a verdict for every key and prints the process's peak memory (VmHWM).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use linearizability::jsonl::{read_file, JsonCodec};
use linearizability::models::{KvModel, RegisterModel};
use linearizability::{check_with, CheckOptions, Verdict};

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

/// Times the checker on every history of the corpus.
#[derive(clap::Parser)]
struct Args {
    /// Worker threads for partitions (default: all cores; 1 gives the steadiest figures on a
    /// busy machine).
    #[arg(long)]
    threads: Option<usize>,
    /// Corpus directory holding manifest.json.
    dir: PathBuf,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
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
