//! A container's log: what it wrote to stdout and stderr, kept in Docker's json-file format.
//!
//! (Interface first; a fuller implementation follows.)

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Which stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (and a terminal's output).
    Stdout,
    /// Standard error.
    Stderr,
}

/// `--log-opt`: when to rotate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Rotate when the file reaches this many bytes.
    pub max_size: Option<u64>,
    /// Keep at most this many files, the current one included.
    pub max_file: u32,
}

impl LogOptions {
    /// Parses `--log-opt` values.
    pub fn parse(_options: &[String]) -> anyhow::Result<Self> {
        Ok(LogOptions {
            max_size: None,
            max_file: 1,
        })
    }
}

/// `<dir>/<id>-json.log`.
pub fn log_path(container_dir: &Path, id: &str) -> PathBuf {
    container_dir.join(format!("{id}-json.log"))
}

/// Writes a container's output to its log.
pub struct LogWriter {
    file: std::fs::File,
}

impl LogWriter {
    /// Opens (appends to) the log at `path`.
    pub fn open(path: &Path, _options: LogOptions) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(LogWriter { file })
    }

    /// Writes output read from `stream`.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let line = serde_json::json!({
            "log": String::from_utf8_lossy(data),
            "stream": match stream { Stream::Stdout => "stdout", Stream::Stderr => "stderr" },
            "time": images::human::now_rfc3339(),
        });
        writeln!(self.file, "{line}")
    }

    /// Writes what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What `logs` shows.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Keep following the log while the container runs.
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<usize>,
    /// Only lines written from then on.
    pub since: Option<SystemTime>,
    /// Only lines written before then.
    pub until: Option<SystemTime>,
    /// Prefix each line with its time.
    pub timestamps: bool,
}

/// Writes the log at `path` to `out` and `err`, each line to the stream it came from.
pub fn read(
    path: &Path,
    _options: &ReadOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
    _running: &mut dyn FnMut() -> bool,
) -> io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let log = value["log"].as_str().unwrap_or_default();
        match value["stream"].as_str() {
            Some("stderr") => err.write_all(log.as_bytes())?,
            _ => out.write_all(log.as_bytes())?,
        }
    }
    Ok(())
}
