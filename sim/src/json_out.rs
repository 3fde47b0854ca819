//! `--json PATH`: the file is opened before any seed runs, so an unwritable path is an error
//! at once rather than after a long sweep.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A JSON output file, already open for writing.
pub struct JsonOut {
    path: PathBuf,
    file: std::fs::File,
}

impl JsonOut {
    /// Opens (creates or truncates) `path` now.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn open(path: &Path) -> Result<JsonOut, String> {
        let file = std::fs::File::create(path)
            .map_err(|e| format!("--json {}: cannot write: {e}", path.display()))?;
        Ok(JsonOut {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Opens `path` if given.
    ///
    /// # Errors
    /// See [`JsonOut::open`].
    pub fn open_if(path: Option<&Path>) -> Result<Option<JsonOut>, String> {
        path.map(JsonOut::open).transpose()
    }

    /// Writes `value` as pretty JSON.
    ///
    /// # Errors
    /// Encoding or writing failed.
    pub fn write(mut self, value: &impl serde::Serialize) -> Result<(), String> {
        let text =
            serde_json::to_string_pretty(value).map_err(|e| format!("encoding JSON: {e}"))?;
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.write_all(b"\n"))
            .map_err(|e| format!("writing {}: {e}", self.path.display()))
    }
}
