//! Checking a history too large to hold in memory, one partition at a time.
//!
//! When the model tells an operation's partition from the operation alone
//! ([`Model::partition_key`]: for the key-value model, its key), [`read`] reads the file line
//! by line, checks every line as [`crate::jsonl::read_file`] does, and copies it to a spill
//! file in a fresh temporary directory. What stays in memory is the index: each partition's
//! operation numbers and where its lines lie in the spill file. [`Spill::check`] then loads,
//! checks and drops the partitions one at a time (one per worker thread), so a check needs
//! the memory of its largest partitions and of the index, not of the file. Lines are buffered
//! per partition and written in runs, so a partition's lines lie in a few long runs and
//! loading one reads nothing else. The directory is removed when the [`Spill`] is dropped,
//! or when reading fails.
//!
//! The reports are those [`check_with`](crate::check_with) gives on the whole history: the
//! same partitions in the same order, with the same names and operation numbers. A
//! partition's search depends only on its own operations, and all partitions share one
//! [`Limits`], as they do there. Models whose partitions depend on the whole history are read
//! into memory ([`Loaded::Whole`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::checker::{schedule, CheckOptions, CheckReport, Limits, PartitionReport};
use crate::history::History;
use crate::jsonl::{parse_line, HistoryError, JsonCodec};
use crate::model::Model;

/// Lines held in memory while reading, in bytes, before they are written to the spill file.
/// Large enough that most partitions' lines go out in long runs, small next to the history.
const BUFFER_BYTES: usize = 16 << 20;
/// The spill file's write buffer: many partitions' runs are short when there are many keys.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// The input's read buffer.
const READ_BUFFER_BYTES: usize = 1 << 20;

/// Spill directories made by this process so far; part of the next one's name, so that
/// checks running at once in one process do not share one.
static DIRECTORIES: AtomicUsize = AtomicUsize::new(0);

/// A history as [`read`] left it.
pub enum Loaded<M: Model> {
    /// In memory: the model cannot partition it operation by operation, or it is empty.
    Whole(History<M::Input, M::Output>),
    /// On disk, partition by partition.
    Spilled(Spill),
}

/// A history whose partitions were written to a temporary directory, and the index to load
/// them one at a time.
pub struct Spill {
    /// The spill file.
    path: PathBuf,
    /// The history read, for error messages.
    source: PathBuf,
    operations: usize,
    /// In increasing order of their keys, as [`Model::partition`] gives them.
    partitions: Vec<Runs>,
    /// Last, so that the file's directory is removed after everything else is dropped.
    directory: TempDir,
}

/// Where one partition's lines are.
#[derive(Default)]
struct Runs {
    /// The operation numbers (line positions among operations), increasing.
    numbers: Vec<usize>,
    /// Offset and length of each run of its lines in the spill file, in order.
    runs: Vec<(u64, usize)>,
}

/// A directory removed with everything in it when dropped.
struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory under [`std::env::temp_dir`], named after the process.
    fn new() -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        loop {
            let n = DIRECTORIES.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("lincheck-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self(path)),
                // Left behind by an earlier process with the same id.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads the history at `path` as [`crate::jsonl::read_file`] does, with the same errors, and
/// spills it partition by partition if the model partitions operation by operation.
///
/// # Errors
/// [`HistoryError::Io`] if the file cannot be read, or the spill file cannot be written;
/// [`HistoryError::Line`] naming the file and line of the first malformed line.
///
/// # Panics
/// If [`Model::partition_key`] is `None` for some operations and not for others.
pub fn read<M: JsonCodec>(model: &M, path: &Path) -> Result<Loaded<M>, HistoryError> {
    read_buffered(model, path, BUFFER_BYTES)
}

/// [`read`], holding at most about `buffer_bytes` of lines in memory before writing them out
/// (the default is 16 MiB). Smaller buffers split partitions into more, shorter runs.
///
/// # Errors
/// As [`read`].
///
/// # Panics
/// As [`read`].
pub fn read_buffered<M: JsonCodec>(
    model: &M,
    path: &Path,
    buffer_bytes: usize,
) -> Result<Loaded<M>, HistoryError> {
    let io = |source| HistoryError::Io {
        file: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, File::open(path).map_err(io)?);
    let mut bytes = Vec::new();
    let (mut line, mut operations) = (0, 0);
    let mut whole = Vec::new();
    let mut writer: Option<Writer> = None;
    // As when the whole file is read first: an unreadable file is reported before a
    // malformed line, so reading goes on after one.
    let mut malformed = None;
    loop {
        bytes.clear();
        if reader.read_until(b'\n', &mut bytes).map_err(io)? == 0 {
            break;
        }
        line += 1;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ))
        })?;
        if malformed.is_some() {
            continue;
        }
        // The line ends as `str::lines` ends lines.
        let text = match text.strip_suffix('\n') {
            Some(text) => text.strip_suffix('\r').unwrap_or(text),
            None => text,
        };
        if text.trim().is_empty() {
            continue;
        }
        let op = match parse_line(model, text, path, line, operations) {
            Ok(op) => op,
            Err(error) => {
                malformed = Some(error);
                continue;
            }
        };
        match (model.partition_key(&op.input), &mut writer) {
            (Some(key), Some(writer)) => writer.add(key, text, operations)?,
            (Some(key), None) if operations == 0 => {
                let mut first = Writer::new(path, buffer_bytes)?;
                first.add(key, text, operations)?;
                writer = Some(first);
            }
            (None, None) => whole.push(op),
            _ => panic!("a model's partition_key must be None for every operation or for none"),
        }
        operations += 1;
    }
    if let Some(error) = malformed {
        return Err(error);
    }
    Ok(match writer {
        Some(writer) => Loaded::Spilled(writer.finish(operations)?),
        None => Loaded::Whole(whole),
    })
}

/// The spill file while the history is read.
struct Writer {
    directory: TempDir,
    path: PathBuf,
    source: PathBuf,
    file: BufWriter<File>,
    /// Bytes written so far.
    offset: u64,
    /// Partition slots by key.
    slots: BTreeMap<String, usize>,
    partitions: Vec<Runs>,
    /// Each slot's lines not yet written.
    pending: Vec<Vec<u8>>,
    /// Their total length.
    buffered: usize,
    /// Written out beyond this.
    buffer_bytes: usize,
}

impl Writer {
    fn new(source: &Path, buffer_bytes: usize) -> Result<Self, HistoryError> {
        let directory = TempDir::new().map_err(|source| HistoryError::Io {
            file: std::env::temp_dir(),
            source,
        })?;
        let path = directory.0.join("operations.jsonl");
        let file = File::create(&path).map_err(|source| HistoryError::Io {
            file: path.clone(),
            source,
        })?;
        Ok(Self {
            directory,
            path,
            source: source.to_path_buf(),
            file: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            offset: 0,
            slots: BTreeMap::new(),
            partitions: Vec::new(),
            pending: Vec::new(),
            buffered: 0,
            buffer_bytes,
        })
    }

    fn add(&mut self, key: String, text: &str, number: usize) -> Result<(), HistoryError> {
        let slot = match self.slots.get(&key) {
            Some(&slot) => slot,
            None => {
                let slot = self.partitions.len();
                self.slots.insert(key, slot);
                self.partitions.push(Runs::default());
                self.pending.push(Vec::new());
                slot
            }
        };
        self.partitions[slot].numbers.push(number);
        self.pending[slot].extend_from_slice(text.as_bytes());
        self.pending[slot].push(b'\n');
        self.buffered += text.len() + 1;
        if self.buffered > self.buffer_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes every slot's pending lines as one run each.
    fn flush(&mut self) -> Result<(), HistoryError> {
        for (slot, pending) in self.pending.iter_mut().enumerate() {
            if pending.is_empty() {
                continue;
            }
            self.file
                .write_all(pending)
                .map_err(|source| HistoryError::Io {
                    file: self.path.clone(),
                    source,
                })?;
            self.partitions[slot]
                .runs
                .push((self.offset, pending.len()));
            self.offset += pending.len() as u64;
            // Released, not kept for reuse: with many keys, capacities would add up.
            *pending = Vec::new();
        }
        self.buffered = 0;
        Ok(())
    }

    fn finish(mut self, operations: usize) -> Result<Spill, HistoryError> {
        self.flush()?;
        self.file.flush().map_err(|source| HistoryError::Io {
            file: self.path.clone(),
            source,
        })?;
        let mut partitions: Vec<Option<Runs>> = std::mem::take(&mut self.partitions)
            .into_iter()
            .map(Some)
            .collect();
        let partitions = self
            .slots
            .values()
            .map(|&slot| partitions[slot].take().expect("one slot per key"))
            .collect();
        Ok(Spill {
            path: self.path,
            source: self.source,
            operations,
            partitions,
            directory: self.directory,
        })
    }
}

impl Spill {
    /// Operations in the history.
    pub fn operations(&self) -> usize {
        self.operations
    }

    /// Partitions in the history.
    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }

    /// The temporary directory holding the spill file; removed on drop.
    pub fn directory(&self) -> &Path {
        &self.directory.0
    }

    /// The operation numbers of partition `k`, increasing.
    pub fn numbers(&self, k: usize) -> &[usize] {
        &self.partitions[k].numbers
    }

    /// The operations of partition `k`, in order: operation `i` of the result is number
    /// `self.numbers(k)[i]` of the history.
    ///
    /// # Errors
    /// [`HistoryError::Io`] if the spill file cannot be read or was changed.
    pub fn load<M: JsonCodec>(
        &self,
        model: &M,
        k: usize,
    ) -> Result<History<M::Input, M::Output>, HistoryError> {
        let io = |source| HistoryError::Io {
            file: self.path.clone(),
            source,
        };
        let partition = &self.partitions[k];
        let mut file = File::open(&self.path).map_err(io)?;
        let mut ops = Vec::with_capacity(partition.numbers.len());
        let mut bytes = Vec::new();
        for &(offset, len) in &partition.runs {
            file.seek(SeekFrom::Start(offset)).map_err(io)?;
            bytes.resize(len, 0);
            file.read_exact(&mut bytes).map_err(io)?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            for line in text.lines() {
                let number = *partition.numbers.get(ops.len()).ok_or_else(|| {
                    io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "more lines than the index holds",
                    ))
                })?;
                // Every line parsed when it was read; failing now means the file changed.
                let op = parse_line(model, line, &self.source, 0, number).map_err(|e| {
                    io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        e.to_string(),
                    ))
                })?;
                ops.push(op);
            }
        }
        if ops.len() != partition.numbers.len() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "fewer lines than the index holds",
            )));
        }
        Ok(ops)
    }

    /// Checks every partition, loading at most one per worker thread at a time; the report
    /// is the one [`check_with`](crate::check_with) gives on the whole history.
    ///
    /// # Errors
    /// The first partition (in order) that could not be loaded.
    ///
    /// # Panics
    /// If the model does not put all of a partition's operations in one partition (see
    /// [`Model::partition_key`]).
    pub fn check<M>(&self, model: &M, options: &CheckOptions) -> Result<CheckReport, HistoryError>
    where
        M: JsonCodec + Sync,
        M::State: Send,
        M::Input: Sync,
        M::Output: Sync,
    {
        let limits = Limits::new(options);
        let sizes: Vec<usize> = self.partitions.iter().map(|p| p.numbers.len()).collect();
        let reports = schedule(&sizes, options.threads, |k| {
            let ops = self.load(model, k)?;
            let partitions = model.partition(&ops);
            assert!(
                partitions.len() == 1 && partitions[0].ops.len() == ops.len(),
                "operations with one partition key make one partition"
            );
            let report = limits.check(model, &ops, &partitions[0]);
            Ok(globalize(report, self.numbers(k)))
        });
        let partitions = reports.into_iter().collect::<Result<_, _>>()?;
        Ok(CheckReport { partitions })
    }
}

/// A report on a partition loaded on its own, numbered as in the whole history: operation
/// `i` of the partition is `numbers[i]`.
fn globalize(mut report: PartitionReport, numbers: &[usize]) -> PartitionReport {
    report.ops = numbers.to_vec();
    for i in &mut report.linearization {
        *i = numbers[*i];
    }
    report.blocked = report.blocked.map(|i| numbers[i]);
    report
}

/// A report on a partition of the whole history, renumbered for the partition's operations
/// loaded on their own (see [`Spill::load`]): the inverse of what [`Spill::check`] does.
///
/// # Panics
/// If the report names an operation outside its partition.
pub fn localize(report: &PartitionReport) -> PartitionReport {
    let index = |number: usize| {
        report
            .ops
            .binary_search(&number)
            .expect("a report names operations of its partition")
    };
    PartitionReport {
        name: report.name.clone(),
        ops: (0..report.ops.len()).collect(),
        verdict: report.verdict,
        linearization: report.linearization.iter().map(|&i| index(i)).collect(),
        blocked: report.blocked.map(index),
        configurations: report.configurations,
        elapsed: report.elapsed,
    }
}
