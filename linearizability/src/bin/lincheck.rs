//! `lincheck`: check histories in JSON Lines form for linearizability.
//!
//! ```text
//! lincheck check --model kv|register [--timeout SECS] [--html out.html] [--in-memory] FILE...
//! lincheck generate --model kv|register --ops N --keys K --clients C --pending F [--violation[=KIND]]
//! ```
//!
//! Prints a verdict per file and per partition. Exit status: 0 every file is linearizable,
//! 1 some file is not, 2 some file could not be decided in time (and none is illegal),
//! 3 some file could not be read or parsed.
//!
//! A kv history is read line by line and split by key into a temporary directory, then
//! checked one key at a time (see `linearizability::spill`), so a file larger than memory can
//! be checked; `--in-memory` reads it whole instead. The HTML report is written as it is made.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use linearizability::explain::{explain_numbered, explain_within};
use linearizability::generate::{self, Shape, Violation};
use linearizability::jsonl::{read_file, to_jsonl, JsonCodec};
use linearizability::models::{KvModel, RegisterModel};
use linearizability::numbering::Numbering;
use linearizability::spill::{self, Loaded, Spill};
use linearizability::{check_with, visualize, CheckOptions, CheckResult, HistoryError, Verdict};

/// Added to a file's check time to give its default explanation budget: enough for a few
/// trial checks of a small history, and small next to starting the process.
const EXPLAIN_SLACK: Duration = Duration::from_millis(50);

/// The HTML report's title.
const PAGE_TITLE: &str = "Linearizability check";

/// Prints a line to stdout, ignoring write errors (a closed pipe must not turn a verdict
/// into a panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "lincheck",
    version,
    about = "Linearizability checker for JSONL histories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check one or more history files.
    Check(CheckArgs),
    /// Write a random history of known verdict (linearizable unless --violation) to stdout.
    Generate(GenerateArgs),
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// The object: a key-value store or a compare-and-set register.
    #[arg(long, value_enum)]
    model: ModelName,
    /// Number of operations.
    #[arg(long, default_value_t = 1000)]
    ops: usize,
    /// Number of keys (kv only).
    #[arg(long, default_value_t = 1)]
    keys: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Fraction of operations whose client crashed before the reply (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pending: f64,
    /// Plant a violation, making the history not linearizable (default kind: a stale read).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "stale-read")]
    violation: Option<ViolationName>,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The kinds of planted violation (see `linearizability::generate::Violation`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ViolationName {
    /// A read returns a value overwritten before it was called.
    StaleRead,
    /// A read returns a value no operation wrote.
    NeverWritten,
    /// A read returns the value of a write called after the read returned.
    FutureRead,
    /// Two clients see two concurrent writes in opposite orders.
    OutOfOrder,
    /// Two compare-and-sets from the same value both succeed (register only).
    DoubleCas,
    /// A get misses an append that returned before it was called (kv only).
    LostAppend,
}

impl ViolationName {
    fn kind(self) -> Violation {
        match self {
            Self::StaleRead => Violation::StaleRead,
            Self::NeverWritten => Violation::NeverWritten,
            Self::FutureRead => Violation::FutureRead,
            Self::OutOfOrder => Violation::OutOfOrder,
            Self::DoubleCas => Violation::DoubleCas,
            Self::LostAppend => Violation::LostAppend,
        }
    }
}

fn generate(args: &GenerateArgs) -> Status {
    let shape = Shape {
        ops: args.ops,
        keys: args.keys,
        clients: args.clients,
        pending: args.pending,
        violation: args.violation.is_some(),
        kind: args
            .violation
            .map_or(Violation::StaleRead, ViolationName::kind),
        seed: args.seed,
    };
    let text = match args.model {
        ModelName::Kv => generate::kv(&shape).map(|g| to_jsonl(&KvModel::new(), &g.history)),
        ModelName::Register => {
            generate::register(&shape).map(|g| to_jsonl(&RegisterModel, &g.history))
        }
    };
    match text {
        Ok(text) => {
            use std::io::Write as _;
            match std::io::stdout().write_all(text.as_bytes()) {
                Ok(()) => Status::Linearizable,
                Err(error) => {
                    eprintln!("error: {error}");
                    Status::BadInput
                }
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            Status::BadInput
        }
    }
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The sequential specification.
    #[arg(long, value_enum)]
    model: ModelName,
    /// Give up on a file after this many seconds (verdict unknown).
    #[arg(long)]
    timeout: Option<f64>,
    /// Write a self-contained HTML report of every file to this path.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Worker threads for partitions (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Do not shrink illegal partitions to a small conflicting set.
    #[arg(long)]
    no_explain: bool,
    /// Time for explaining a file's illegal partitions, in seconds (default: as long as the
    /// check took plus 0.05 s, and never more than --timeout). When it runs out, the account
    /// is shorter: the smallest conflicting set found so far, or where the search got stuck.
    #[arg(long)]
    explain_timeout: Option<f64>,
    /// Read each file whole into memory. By default, a history of a model partitioned by
    /// operation (kv, by key) is read line by line and each partition's operations are
    /// written to a temporary directory (under TMPDIR, removed afterwards), then checked one
    /// partition at a time (one per thread), so memory is bounded by the largest partitions,
    /// not the file. Both give the same output.
    #[arg(long)]
    in_memory: bool,
    /// History files (JSON Lines).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModelName {
    /// Key-value store: get, put, append, delete, exists, cas; partitioned by key (also the
    /// sharded store).
    Kv,
    /// Compare-and-set register: read, write, cas.
    Register,
}

/// A file's outcome; its value is the exit status.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Linearizable = 0,
    Unknown = 2,
    Illegal = 1,
    BadInput = 3,
}

impl Status {
    /// Precedence when files disagree: bad input, then illegal, then unknown.
    fn rank(self) -> u8 {
        match self {
            Status::Linearizable => 0,
            Status::Unknown => 1,
            Status::Illegal => 2,
            Status::BadInput => 3,
        }
    }
}

/// A file read for checking: whole, or spilled partition by partition.
enum Input<M: JsonCodec> {
    Whole(Vec<linearizability::Operation<M::Input, M::Output>>),
    Spilled(Spill),
}

fn check_file<M>(model: &M, path: &Path, args: &CheckArgs, html: &mut Option<HtmlOut>) -> Status
where
    M: JsonCodec + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    let input = if args.in_memory {
        read_file(model, path).map(Input::<M>::Whole)
    } else {
        spill::read(model, path).map(|loaded| match loaded {
            Loaded::Whole(history) => Input::Whole(history),
            Loaded::Spilled(spill) => Input::Spilled(spill),
        })
    };
    let input = match input {
        Ok(input) => input,
        Err(error) => return bad_input(path, &error),
    };
    let mut options = CheckOptions {
        timeout: args.timeout.map(Duration::from_secs_f64),
        measure_time: true,
        ..CheckOptions::default()
    };
    if let Some(threads) = args.threads {
        options.threads = threads.max(1);
    }
    let started = Instant::now();
    let (report, operations) = match &input {
        Input::Whole(history) => (check_with(model, history, &options), history.len()),
        Input::Spilled(spill) => match spill.check(model, &options) {
            Ok(report) => (report, spill.operations()),
            Err(error) => return bad_input(path, &error),
        },
    };
    let explain_budget = args.explain_timeout.map_or_else(
        || {
            let own = started.elapsed() + EXPLAIN_SLACK;
            options.timeout.map_or(own, |t| own.min(t))
        },
        Duration::from_secs_f64,
    );
    let explain_deadline = Instant::now() + explain_budget;
    let mut illegal_left = report
        .partitions
        .iter()
        .filter(|p| p.verdict == Verdict::Illegal)
        .count();
    let (status, word) = match report.result() {
        CheckResult::Ok => (Status::Linearizable, "linearizable"),
        CheckResult::Illegal(_) => (Status::Illegal, "NOT linearizable"),
        CheckResult::Unknown => (Status::Unknown, "unknown (timed out or out of memory)"),
    };
    say!(
        "{}: {word} ({operations} operations, {} partitions)",
        path.display(),
        report.partitions.len()
    );
    for (k, p) in report.partitions.iter().enumerate() {
        let verdict = match p.verdict {
            Verdict::Ok => "linearizable".to_string(),
            Verdict::Illegal => "NOT linearizable".to_string(),
            Verdict::Unknown(reason) => format!(
                "unknown ({reason:?}; longest linearizable prefix found: {} operations)",
                p.linearization.len()
            ),
        };
        let ms = p.elapsed.unwrap_or_default().as_secs_f64() * 1e3;
        say!(
            "  {}: {verdict} ({} operations, {} configurations, {ms:.2} ms)",
            p.name,
            p.ops.len(),
            p.configurations
        );
        if p.verdict == Verdict::Illegal && !args.no_explain {
            // Illegal partitions share the file's budget evenly.
            let left = explain_deadline.saturating_duration_since(Instant::now());
            let share = left / illegal_left.max(1) as u32;
            illegal_left -= 1;
            let explanation = match &input {
                Input::Whole(history) => explain_within(model, history, p, share),
                Input::Spilled(spill) => match spill.load(model, k) {
                    Ok(ops) => explain_numbered(
                        model,
                        &ops,
                        &spill::localize(p),
                        share,
                        Numbering::Numbers(&p.ops),
                    ),
                    Err(error) => return bad_input(path, &error),
                },
            };
            if let Some(explanation) = explanation {
                for line in explanation.text.lines() {
                    say!("    {line}");
                }
            }
        }
    }
    if let Some(html) = html {
        let title = path.display().to_string();
        match &input {
            Input::Whole(history) => {
                html.write(&visualize::section(&title, model, history, &report));
            }
            Input::Spilled(spill) => {
                let load = |k| spill.load(model, k);
                let emit = |part: &str| {
                    html.write(part);
                    Ok(())
                };
                let written =
                    visualize::section_loaded(&title, model, operations, &report, load, emit);
                if let Err(error) = written {
                    return bad_input(path, &error);
                }
            }
        }
    }
    status
}

/// Reports a file that could not be read.
fn bad_input(path: &Path, error: &HistoryError) -> Status {
    eprintln!("error: {error}");
    say!("{}: bad input", path.display());
    Status::BadInput
}

/// The HTML report, written as it is made: the page of a large history need not fit in
/// memory. The first write error is kept and reported at the end.
struct HtmlOut {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    error: Option<std::io::Error>,
}

impl HtmlOut {
    fn create(path: &Path) -> Self {
        let (file, error) = match File::create(path) {
            Ok(file) => (Some(BufWriter::new(file)), None),
            Err(error) => (None, Some(error)),
        };
        let mut out = Self {
            path: path.to_path_buf(),
            file,
            error,
        };
        out.write(&visualize::page_start(PAGE_TITLE));
        out
    }

    fn write(&mut self, text: &str) {
        if let Some(file) = &mut self.file {
            if let Err(error) = file.write_all(text.as_bytes()) {
                self.error = Some(error);
                self.file = None;
            }
        }
    }

    fn finish(mut self) -> Result<(), std::io::Error> {
        self.write(visualize::PAGE_END);
        match (self.error, self.file) {
            (Some(error), _) => Err(error),
            (None, Some(mut file)) => file.flush(),
            (None, None) => Ok(()),
        }
    }
}

fn run(args: &CheckArgs) -> Status {
    let mut worst = Status::Linearizable;
    let mut html = args.html.as_deref().map(HtmlOut::create);
    for path in &args.files {
        let status = match args.model {
            ModelName::Kv => check_file(&KvModel::new(), path, args, &mut html),
            ModelName::Register => check_file(&RegisterModel, path, args, &mut html),
        };
        if status.rank() > worst.rank() {
            worst = status;
        }
    }
    if let Some(html) = html {
        let path = html.path.clone();
        if let Err(error) = html.finish() {
            eprintln!("error: {}: {error}", path.display());
            return Status::BadInput;
        }
        say!("wrote {}", path.display());
    }
    worst
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Usage errors are bad input (3); clap's own default (2) would read as "unknown".
            let code = if error.use_stderr() {
                Status::BadInput as u8
            } else {
                0
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let status = match &cli.command {
        Command::Check(args) => {
            if args.timeout.is_some_and(|t| !(t.is_finite() && t > 0.0)) {
                eprintln!("error: --timeout must be a positive number of seconds");
                return ExitCode::from(Status::BadInput as u8);
            }
            if args
                .explain_timeout
                .is_some_and(|t| !(t.is_finite() && t >= 0.0))
            {
                eprintln!("error: --explain-timeout must be a number of seconds, 0 or more");
                return ExitCode::from(Status::BadInput as u8);
            }
            run(args)
        }
        Command::Generate(args) => generate(args),
    };
    ExitCode::from(status as u8)
}
