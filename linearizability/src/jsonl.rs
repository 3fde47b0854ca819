//! The JSON Lines history format: one operation per line.
//!
//! ```json
//! {"id":0,"client":0,"call":1,"return":7,"op":"read","key":null,"value":null,
//!  "output":3,"status":"ok"}
//! ```
//! (shown on two lines here; in a file each operation is one line).
//!
//! `return: null` means the completion was never observed (status must then be `"unknown"`).
//! `status: "unknown"` means the output is not known and is ignored. The fields `op`, `key`,
//! `value` and `output` are interpreted by the model through [`JsonCodec`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::{ClientId, History, Operation, Outcome, Timestamp};
use crate::model::Model;

/// Errors while reading a history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// One line is malformed.
    #[error("{file}:{line}: {message}")]
    Line {
        /// The file (or `<input>` for in-memory text).
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The model-independent fields of one line, plus the model-specific ones as raw JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Operation number, 0-based, equal to the line's position among operations.
    pub id: u64,
    /// Issuing client.
    pub client: u64,
    /// Invocation time.
    pub call: u64,
    /// Completion time, or null if never observed.
    #[serde(rename = "return")]
    pub return_time: Option<u64>,
    /// Operation name, for example `"cas"`.
    pub op: String,
    /// The key, or null for a single-object history.
    pub key: Option<String>,
    /// The argument.
    pub value: Value,
    /// The observed output (null when not applicable or unknown).
    pub output: Value,
    /// `"ok"` or `"unknown"`.
    pub status: Status,
}

/// Whether the output was observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The output was observed.
    Ok,
    /// The output was not observed.
    Unknown,
}

/// The model-specific part of a line.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedOp {
    /// Operation name.
    pub op: String,
    /// Key, if the model has keys.
    pub key: Option<String>,
    /// Argument.
    pub value: Value,
    /// Output (null if unknown or not applicable).
    pub output: Value,
}

/// Converts a model's inputs and outputs to and from the JSONL fields.
pub trait JsonCodec: Model {
    /// Decode one operation. `output` is `None` when the status is unknown.
    ///
    /// # Errors
    /// A message describing the malformed field; the caller adds file and line.
    fn decode(
        &self,
        op: &str,
        key: Option<&str>,
        value: &Value,
        output: Option<&Value>,
    ) -> Result<(Self::Input, Option<Self::Output>), String>;

    /// Encode one operation; `output` is `None` when unknown.
    fn encode(&self, input: &Self::Input, output: Option<&Self::Output>) -> EncodedOp;
}

/// Parse a history file.
///
/// # Errors
/// [`HistoryError::Io`] if the file cannot be read, [`HistoryError::Line`] naming the file and
/// line of the first malformed line.
pub fn read_file<M: JsonCodec>(
    model: &M,
    path: &Path,
) -> Result<History<M::Input, M::Output>, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    parse(model, &text, path)
}

/// Parse history text; `file` is only used in error messages. Blank lines are skipped.
///
/// # Errors
/// [`HistoryError::Line`] naming the first malformed line.
pub fn parse<M: JsonCodec>(
    model: &M,
    text: &str,
    file: &Path,
) -> Result<History<M::Input, M::Output>, HistoryError> {
    let mut ops = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        ops.push(parse_line(model, line, file, index + 1, ops.len())?);
    }
    Ok(ops)
}

/// Parse one non-blank line, the operation numbered `id`; `file` and `line` (1-based) are
/// only used in error messages.
///
/// # Errors
/// [`HistoryError::Line`] if the line is malformed or not numbered `id`.
pub fn parse_line<M: JsonCodec>(
    model: &M,
    text: &str,
    file: &Path,
    line: usize,
    id: usize,
) -> Result<Operation<M::Input, M::Output>, HistoryError> {
    let error = |message: String| HistoryError::Line {
        file: file.to_path_buf(),
        line,
        message,
    };
    let record: Record = serde_json::from_str(text).map_err(|e| error(e.to_string()))?;
    decode_record(model, &record, id).map_err(error)
}

fn decode_record<M: JsonCodec>(
    model: &M,
    record: &Record,
    expected_id: usize,
) -> Result<Operation<M::Input, M::Output>, String> {
    if record.id != expected_id as u64 {
        return Err(format!(
            "id {} out of sequence (expected {expected_id})",
            record.id
        ));
    }
    if let Some(ret) = record.return_time {
        if ret < record.call {
            return Err(format!("return {ret} is before call {}", record.call));
        }
    } else if record.status == Status::Ok {
        return Err("return is null but status is \"ok\"; use \"unknown\"".to_string());
    }
    let output = match record.status {
        Status::Ok => Some(&record.output),
        Status::Unknown => None,
    };
    let (input, output) = model.decode(&record.op, record.key.as_deref(), &record.value, output)?;
    let outcome = match (record.status, output) {
        (Status::Ok, Some(output)) => Outcome::Ok(output),
        (Status::Ok, None) => return Err("status ok but no output decoded".to_string()),
        (Status::Unknown, _) => Outcome::Unknown,
    };
    Ok(Operation {
        client: ClientId(record.client),
        call: Timestamp(record.call),
        return_time: record.return_time.map(Timestamp),
        input,
        outcome,
    })
}

/// Encode a history as JSON Lines (one line per operation, each ending in `\n`).
pub fn to_jsonl<M: JsonCodec>(model: &M, history: &[Operation<M::Input, M::Output>]) -> String {
    let mut out = String::new();
    for (id, op) in history.iter().enumerate() {
        let encoded = model.encode(&op.input, op.output());
        let record = Record {
            id: id as u64,
            client: op.client.0,
            call: op.call.0,
            return_time: op.return_time.map(|t| t.0),
            op: encoded.op,
            key: encoded.key,
            value: encoded.value,
            output: if op.outcome.is_unknown() {
                Value::Null
            } else {
                encoded.output
            },
            status: if op.outcome.is_unknown() {
                Status::Unknown
            } else {
                Status::Ok
            },
        };
        out.push_str(&serde_json::to_string(&record).expect("a record always serializes"));
        out.push('\n');
    }
    out
}
