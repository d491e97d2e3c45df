//! A container's log: what it wrote to stdout and stderr, kept in a file so that it outlives the
//! process and the terminal that started it, and `skiff logs` can show it at any time.
//!
//! The format is Docker's json-file logging driver: one JSON object per line of output,
//! `{"log":"hello\n","stream":"stdout","time":"2026-12-04T12:00:00.123456789Z"}`, written by the
//! container's monitor. With `--log-opt max-size=10m --log-opt max-file=3` the file is rotated:
//! when it would grow past max-size it becomes `<id>-json.log.1` (older ones shift to `.2`, …)
//! and a new one begins, so a chatty container cannot fill the disk.
//!
//! Reference: Docker's "JSON File logging driver" documentation; docker-logs(1) for reading it
//! back (`--follow`, `--tail`, `--since`, `--until`, `--timestamps`).

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail};
use serde::Deserialize;

/// The longest piece of a line held in memory. A longer line is logged in pieces of this size,
/// as Docker's log copier does (its buffer is 16 KiB).
const MAX_PIECE: usize = 16 * 1024;
/// Encoded records are written out once this many bytes wait, so the buffer stays small however
/// big a chunk the monitor hands over.
const WRITE_AT: usize = 32 * 1024;
/// What the record buffer may keep between writes; a record of 16 KiB of escapes (six bytes
/// each) grows it past this, and it is given back once written.
const KEEP: usize = 64 * 1024;
/// How often `--follow` looks for more.
const POLL: Duration = Duration::from_millis(50);

// ANCHOR: options
/// Which stream a piece of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (and a terminal's output).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The name the log records: `stdout` or `stderr`.
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// `--log-opt`: when to rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Rotate when the file would grow past this many bytes.
    pub max_size: Option<u64>,
    /// Keep at most this many files, the current one included.
    pub max_file: u32,
}

impl Default for LogOptions {
    /// No rotation: one file that grows, as Docker's default.
    fn default() -> Self {
        LogOptions {
            max_size: None,
            max_file: 1,
        }
    }
}

/// Options Docker's json-file driver knows, for compression and log attributes, that skiff does
/// not implement: refused rather than silently ignored.
const UNSUPPORTED: [&str; 6] = [
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];

impl LogOptions {
    /// Parses `--log-opt` values (`max-size=10m`, `max-file=3`) with the json-file driver's
    /// rules and words. `max-file` without `max-size` is accepted and has no effect, as in Docker.
    pub fn parse(options: &[String]) -> anyhow::Result<Self> {
        // `key` alone means an empty value, as the docker CLI splits them.
        let pairs: Vec<(&str, &str)> = options
            .iter()
            .map(|o| o.split_once('=').unwrap_or((o.as_str(), "")))
            .collect();
        // Docker checks every name before any value.
        for (key, _) in &pairs {
            match *key {
                "max-size" | "max-file" => {}
                k if UNSUPPORTED.contains(&k) => {
                    bail!("log opt '{k}' of the json-file log driver is not supported by skiff")
                }
                k => bail!("unknown log opt '{k}' for json-file log driver"),
            }
        }
        // The last value given wins, as in Docker's map of options.
        let value = |name: &str| pairs.iter().rev().find(|(k, _)| *k == name).map(|p| p.1);
        let max_size = value("max-size").map(parse_max_size).transpose()?;
        let max_file = value("max-file").map(parse_max_file).transpose()?;
        Ok(LogOptions {
            max_size,
            max_file: max_file.unwrap_or(1),
        })
    }
}

/// `max-size`, read as Docker reads it (go-units' `FromHumanSize`): a number, an optional space,
/// then `k`, `m`, `g`, `t` or `p`, optionally followed by `b` or `ib`. The units are decimal
/// (`10m` is 10 000 000 bytes) whatever the suffix, as in Docker.
fn parse_max_size(text: &str) -> anyhow::Result<u64> {
    let invalid = || anyhow!("invalid size: '{text}'");
    let sep = text
        .rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')
        .ok_or_else(invalid)?;
    let (number, suffix) = if text.as_bytes()[sep] == b' ' {
        (&text[..sep], &text[sep + 1..])
    } else {
        text.split_at(sep + 1)
    };
    let number: f64 = number
        .parse()
        .map_err(|_| anyhow!("strconv.ParseFloat: parsing {number:?}: invalid syntax"))?;
    if number.is_nan() || number < 0.0 {
        return Err(invalid());
    }
    let bytes = number * size_unit(suffix)?;
    // Go truncates the product to an integer the same way.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = bytes as u64;
    if bytes == 0 {
        bail!("max-size must be a positive number");
    }
    Ok(bytes)
}

/// The multiplier a size suffix stands for (`""`, `b`, `k`, `kb`, `kib`, … `p`).
fn size_unit(suffix: &str) -> anyhow::Result<f64> {
    let bad = || anyhow!("invalid suffix: '{suffix}'");
    if suffix.is_empty() {
        return Ok(1.0);
    }
    if suffix.len() > 3 {
        return Err(bad());
    }
    let lower = suffix.to_ascii_lowercase();
    let (prefix, rest) = lower.split_at(1);
    let power = match prefix {
        "b" if rest.is_empty() => return Ok(1.0),
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(anyhow!("invalid suffix: '{lower}'")),
    };
    if !matches!(rest, "" | "b" | "ib") {
        return Err(anyhow!("invalid suffix: '{lower}'"));
    }
    Ok(1000f64.powi(power))
}

/// `max-file`: a whole number, at least 1.
fn parse_max_file(text: &str) -> anyhow::Result<u32> {
    let count: i64 = text.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        anyhow!("strconv.Atoi: parsing {text:?}: {why}")
    })?;
    if count < 1 {
        bail!("max-file cannot be less than 1");
    }
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}
// ANCHOR_END: options

/// `<dir>/<id>-json.log`.
pub fn log_path(container_dir: &Path, id: &str) -> PathBuf {
    container_dir.join(format!("{id}-json.log"))
}

/// The `n`th rotated file of the log at `path`: `<id>-json.log.<n>`, `.1` the most recent.
fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

// ANCHOR: writer
/// Writes a container's output to its log, a record per line.
pub struct LogWriter {
    path: PathBuf,
    options: LogOptions,
    /// The file, once there is something to write: a container that prints nothing gets no
    /// file (readers take a missing log for an empty one), and its start makes one inode fewer.
    file: Option<File>,
    /// Bytes in the current file.
    size: u64,
    /// The unfinished line of each stream, until its newline comes (at most `MAX_PIECE`).
    pending: [Vec<u8>; 2],
    /// Encoded records not yet written.
    out: Vec<u8>,
}

impl LogWriter {
    /// Opens (appends to) the log at `path`; it is made when the first record is written.
    pub fn open(path: &Path, options: LogOptions) -> io::Result<Self> {
        let file = match OpenOptions::new().append(true).open(path) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let size = match &file {
            Some(file) => file.metadata()?.len(),
            None => 0,
        };
        Ok(LogWriter {
            path: path.to_path_buf(),
            options,
            file,
            size,
            pending: [Vec::new(), Vec::new()],
            out: Vec::new(),
        })
    }

    /// Logs output read from `stream`: each line it completes becomes a record, timed now; an
    /// unfinished line waits for the rest.
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> io::Result<()> {
        let now = Stamp::go(SystemTime::now());
        let index = stream as usize;
        let mut pending = std::mem::take(&mut self.pending[index]);
        let result = self.split_lines(stream, &mut pending, data, &now);
        self.pending[index] = pending;
        result?;
        self.write_out()
    }

    /// Logs the unfinished lines as they are (no newline), and writes everything out: the
    /// container's run has ended.
    pub fn flush(&mut self) -> io::Result<()> {
        let now = Stamp::go(SystemTime::now());
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = std::mem::take(&mut self.pending[stream as usize]);
            if !pending.is_empty() {
                self.record(stream, &pending, &now)?;
            }
        }
        self.write_out()
    }

    /// Cuts `data` into lines, joined to what `pending` holds of the last one.
    fn split_lines(
        &mut self,
        stream: Stream,
        pending: &mut Vec<u8>,
        mut data: &[u8],
        now: &Stamp,
    ) -> io::Result<()> {
        while !data.is_empty() {
            // Only as much as the line may still grow by: a longer one goes in pieces.
            let window = &data[..data.len().min(MAX_PIECE - pending.len())];
            if let Some(end) = window.iter().position(|&b| b == b'\n') {
                let (line, rest) = data.split_at(end + 1);
                if pending.is_empty() {
                    self.record(stream, line, now)?;
                } else {
                    pending.extend_from_slice(line);
                    self.record(stream, pending, now)?;
                    pending.clear();
                }
                data = rest;
            } else {
                if pending.capacity() < MAX_PIECE {
                    pending.reserve_exact(MAX_PIECE - pending.len());
                }
                pending.extend_from_slice(window);
                data = &data[window.len()..];
                if pending.len() == MAX_PIECE {
                    self.record(stream, pending, now)?;
                    pending.clear();
                }
            }
        }
        Ok(())
    }

    /// Encodes one record; rotates first when it would take the file past max-size.
    fn record(&mut self, stream: Stream, line: &[u8], now: &Stamp) -> io::Result<()> {
        if self.out.len() >= WRITE_AT {
            self.write_out()?;
        }
        let start = self.out.len();
        encode(&mut self.out, stream, line, now.as_bytes());
        let before = self.size + start as u64;
        let after = before + (self.out.len() - start) as u64;
        if let Some(max) = self.options.max_size
            && before > 0
            && after > max
        {
            self.write_part(start)?;
            self.rotate()?;
        }
        Ok(())
    }

    /// Writes the waiting records, in one write(2) as far as the kernel takes it.
    fn write_out(&mut self) -> io::Result<()> {
        let result = self.write_part(self.out.len());
        if self.out.capacity() > KEEP {
            self.out.shrink_to(KEEP);
        }
        result
    }

    /// Writes the first `len` bytes of the waiting records and lets go of them. Output that
    /// cannot be written is dropped too, rather than kept: the log must not grow the monitor's
    /// memory.
    fn write_part(&mut self, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(file) => file,
            missing @ None => match open_for_append(&self.path) {
                Ok(file) => missing.insert(file),
                Err(e) => {
                    self.out.drain(..len);
                    return Err(e);
                }
            },
        };
        let result = file.write_all(&self.out[..len]);
        self.out.drain(..len);
        match result {
            Ok(()) => self.size += len as u64,
            // Part of it may have been written.
            Err(_) => self.size = file.metadata().map_or(self.size, |m| m.len()),
        }
        result
    }

    /// The current file becomes `.1`, `.1` becomes `.2`, and so on; what is beyond max-file is
    /// overwritten (or, with max-file 1, removed). A new file begins. Renaming rather than
    /// truncating lets a follower finish reading the file it has open.
    fn rotate(&mut self) -> io::Result<()> {
        let kept = self.options.max_file.max(1) - 1;
        if kept == 0 {
            ignore_missing(std::fs::remove_file(&self.path))?;
        } else {
            for n in (2..=kept).rev() {
                let from = rotated_path(&self.path, n - 1);
                ignore_missing(std::fs::rename(from, rotated_path(&self.path, n)))?;
            }
            ignore_missing(std::fs::rename(&self.path, rotated_path(&self.path, 1)))?;
        }
        let file = open_for_append(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }
}

/// Opens a log file for appending, creating it with Docker's mode: 0640, for the owner and its
/// group only.
fn open_for_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// A missing file is fine: there was nothing to move or remove yet.
fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
// ANCHOR_END: writer

// ANCHOR: encode
/// Appends one json-file record, in the field order and escaping of Docker's encoder.
fn encode(out: &mut Vec<u8>, stream: Stream, line: &[u8], time: &[u8]) {
    out.extend_from_slice(br#"{"log":""#);
    escape(out, line);
    out.extend_from_slice(br#"","stream":""#);
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(br#"","time":""#);
    out.extend_from_slice(time);
    out.extend_from_slice(b"\"}\n");
}

/// Escapes as Docker's json-file encoder does (Go's encoding/json rules, except that only `\n`
/// and `\r` get a short form: a tab is `\u0009`). `<`, `>` and `&` are escaped so the log is
/// safe inside HTML; each byte that is not UTF-8 becomes `\ufffd`, as Go decodes it.
fn escape(out: &mut Vec<u8>, text: &[u8]) {
    for chunk in text.utf8_chunks() {
        escape_utf8(out, chunk.valid().as_bytes());
        for _ in chunk.invalid() {
            out.extend_from_slice(br"\ufffd");
        }
    }
}

/// Escapes valid UTF-8, copying the runs that need nothing in one go.
fn escape_utf8(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut copied = 0;
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        // U+2028 and U+2029 end a line in JavaScript: Go escapes them.
        let separator = b == 0xE2 && text.get(i + 1) == Some(&0x80);
        let separator = separator && matches!(text.get(i + 2), Some(0xA8 | 0xA9));
        let plain = b >= 0x80 || (b >= 0x20 && !matches!(b, b'"' | b'\\' | b'<' | b'>' | b'&'));
        if plain && !separator {
            i += 1;
            continue;
        }
        out.extend_from_slice(&text[copied..i]);
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(br"\n"),
            b'\r' => out.extend_from_slice(br"\r"),
            // Only a line or paragraph separator gets here of the bytes above 0x7F.
            0xE2 => {
                out.extend_from_slice(br"\u202");
                out.push(HEX[usize::from(text[i + 2] & 0xF)]);
                i += 2;
            }
            _ => {
                out.extend_from_slice(br"\u00");
                out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]]);
            }
        }
        i += 1;
        copied = i;
    }
    out.extend_from_slice(&text[copied..]);
}
// ANCHOR_END: encode

// ANCHOR: reader
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
    /// Prefix each line with its log attributes (`--details`). skiff's records have none, so
    /// this is the empty list and its separating space, as Docker prints it then.
    pub details: bool,
}

/// Writes the log at `path` to `out` and `err`, each line to the stream it came from: the
/// rotated files oldest first, then the current one. With `follow`, keeps reading what is
/// appended, across rotations, until `running` says the container stopped.
///
/// A line that is not a record is skipped; the first one is reported on `err`.
pub fn read(
    path: &Path,
    options: &ReadOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
    running: &mut dyn FnMut() -> bool,
) -> io::Result<()> {
    // The current file first: a rotation while the others are opened cannot hide lines.
    let mut current = Follower::open(path)?;
    let mut rotated = open_rotated(path, None, current.as_ref().map(|f| f.id))?;
    let mut show = Shower::new(options, out, err);
    if let Some(n) = options.tail {
        let mut lines = 0;
        for follower in rotated.iter().chain(&current) {
            lines += count_lines(follower.reader.get_ref())?;
        }
        show.skip = lines.saturating_sub(n);
    }
    for follower in &mut rotated {
        if show.finish(follower)? == Flow::Stop {
            return show.flush();
        }
    }
    if options.follow {
        let shown = rotated.last().map(|f| f.id);
        drop(rotated);
        follow(path, current, shown, &mut show, running)?;
    } else if let Some(follower) = &mut current {
        show.drain(follower)?;
    }
    show.flush()
}

/// Reads what is appended to the log until the container stops (or `until` has passed).
/// `shown` is the newest rotated file already shown.
fn follow(
    path: &Path,
    mut current: Option<Follower>,
    mut shown: Option<FileId>,
    show: &mut Shower,
    running: &mut dyn FnMut() -> bool,
) -> io::Result<()> {
    loop {
        // Asked before reading: once it says stopped, the monitor has written its last line,
        // and this pass reads it.
        let alive = running() && show.options.until.is_none_or(|u| SystemTime::now() <= u);
        loop {
            if let Some(follower) = current.as_mut()
                && show.drain(follower)? == Flow::Stop
            {
                return Ok(());
            }
            let Some(next) = Follower::reopen(path, current.as_ref())? else {
                break;
            };
            // Rotated: the rest of the old file first, then any rotated since (more than one
            // rotation between two looks), then the new one.
            if let Some(mut old) = current.take() {
                if show.finish(&mut old)? == Flow::Stop {
                    return Ok(());
                }
                shown = Some(old.id);
            }
            for mut between in open_rotated(path, shown, Some(next.id))? {
                if show.finish(&mut between)? == Flow::Stop {
                    return Ok(());
                }
                shown = Some(between.id);
            }
            current = Some(next);
        }
        show.flush()?;
        if !alive {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

/// A file, whatever its name: rotation renames files.
type FileId = (u64, u64);

/// The rotated files of the log at `path`, opened, oldest first: those newer than `after` (all,
/// if it is `None` or was removed) and older than `before` (if it was rotated meanwhile).
fn open_rotated(
    path: &Path,
    after: Option<FileId>,
    before: Option<FileId>,
) -> io::Result<Vec<Follower>> {
    let mut newest_first = Vec::new();
    for n in 1.. {
        let Some(follower) = Follower::open(&rotated_path(path, n))? else {
            break;
        };
        if Some(follower.id) == after {
            break;
        }
        newest_first.push(follower);
    }
    if let Some(at) = newest_first.iter().position(|f| Some(f.id) == before) {
        newest_first.drain(..=at);
    }
    newest_first.reverse();
    Ok(newest_first)
}

/// How many complete lines (records) the file holds; read in place, the file's offset kept.
fn count_lines(file: &File) -> io::Result<usize> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut offset, mut lines) = (0u64, 0);
    loop {
        let n = file.read_at(&mut buf, offset)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
        offset += n as u64;
    }
}

/// A log file being read, and the start of a line whose end is not written yet.
struct Follower {
    path: PathBuf,
    id: FileId,
    reader: BufReader<File>,
    line: Vec<u8>,
}

impl Follower {
    /// Opens a log file to read; `None` if it does not exist (yet, or any more).
    fn open(path: &Path) -> io::Result<Option<Follower>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        Ok(Some(Follower {
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
            reader: BufReader::new(file),
            line: Vec::new(),
        }))
    }

    /// The file now at `path` if it is not the one being read: the log was rotated (or
    /// created). `None` while the path is the same file, or missing between a rename and the
    /// new file.
    fn reopen(path: &Path, current: Option<&Follower>) -> io::Result<Option<Follower>> {
        let now = match std::fs::metadata(path) {
            Ok(meta) => (meta.dev(), meta.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if current.is_some_and(|f| f.id == now) {
            return Ok(None);
        }
        Follower::open(path)
    }
}

/// Whether to go on reading.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    /// A record after `until`: nothing later is wanted.
    Stop,
}

/// A decoded json-file record.
#[derive(Deserialize)]
struct Entry<'a> {
    /// Docker leaves out an empty log.
    #[serde(borrow, default)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// Writes records to `out` and `err` as `logs` shows them.
struct Shower<'a> {
    options: &'a ReadOptions,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// Lines still to pass over for `tail`.
    skip: usize,
    /// Whether a corrupt line was reported already.
    reported: bool,
    /// The line being put together, reused.
    text: Vec<u8>,
}

impl<'a> Shower<'a> {
    fn new(options: &'a ReadOptions, out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Shower {
            options,
            out,
            err,
            skip: 0,
            reported: false,
            text: Vec::new(),
        }
    }

    /// Shows the complete lines the file holds now; the start of an unfinished one waits.
    fn drain(&mut self, follower: &mut Follower) -> io::Result<Flow> {
        loop {
            if follower.reader.read_until(b'\n', &mut follower.line)? == 0 {
                return Ok(Flow::Continue);
            }
            if follower.line.last() != Some(&b'\n') {
                // The writer is mid-record: the rest comes with a later read.
                continue;
            }
            let flow = self.line(&follower.line, &follower.path);
            follower.line.clear();
            if flow? == Flow::Stop {
                return Ok(Flow::Stop);
            }
        }
    }

    /// Shows all of a file no one writes to any more, an unfinished last line included.
    fn finish(&mut self, follower: &mut Follower) -> io::Result<Flow> {
        if self.drain(follower)? == Flow::Stop {
            return Ok(Flow::Stop);
        }
        if follower.line.is_empty() {
            return Ok(Flow::Continue);
        }
        let line = std::mem::take(&mut follower.line);
        self.line(&line, &follower.path)
    }

    /// Shows one line of the log, if `tail`, `since` and `until` want it.
    fn line(&mut self, line: &[u8], path: &Path) -> io::Result<Flow> {
        if self.skip > 0 {
            self.skip -= 1;
            return Ok(Flow::Continue);
        }
        let entry = match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => entry,
            Err(e) => return self.corrupt(path, &e.to_string()),
        };
        let Some(time) = parse_record_time(&entry.time) else {
            return self.corrupt(path, &format!("bad time {:?}", entry.time));
        };
        if self.options.since.is_some_and(|since| time < since) {
            return Ok(Flow::Continue);
        }
        if self.options.until.is_some_and(|until| time > until) {
            return Ok(Flow::Stop);
        }
        self.text.clear();
        if self.options.timestamps {
            self.text.extend_from_slice(Stamp::fixed(time).as_bytes());
            self.text.push(b' ');
        }
        if self.options.details {
            self.text.push(b' ');
        }
        self.text.extend_from_slice(entry.log.as_bytes());
        match entry.stream.as_ref() {
            "stdout" => self.out.write_all(&self.text)?,
            "stderr" => self.err.write_all(&self.text)?,
            // Docker shows only these two.
            _ => {}
        }
        Ok(Flow::Continue)
    }

    /// Reports the first corrupt line on `err`, and goes on.
    fn corrupt(&mut self, path: &Path, why: &str) -> io::Result<Flow> {
        if !self.reported {
            self.reported = true;
            writeln!(
                self.err,
                "Error grabbing logs: skipping corrupt lines in {}: {why}",
                path.display()
            )?;
        }
        Ok(Flow::Continue)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.err.flush()
    }
}
// ANCHOR_END: reader

// ANCHOR: time
/// Reads a `--since` or `--until` value as Docker does: a Go duration before `now` (`10m`,
/// `1h30m`), an RFC 3339 time (`2026-12-04T12:00:00Z`, with or without seconds, fraction and
/// zone; without a zone it is local time), or a Unix time (`1700000000`, `1700000000.123`).
pub fn parse_time(text: &str, now: SystemTime) -> anyhow::Result<SystemTime> {
    if text != "0"
        && let Some((negative, duration)) = parse_go_duration(text)
    {
        let time = if negative {
            now.checked_add(duration)
        } else {
            now.checked_sub(duration)
        };
        return time.ok_or_else(|| anyhow!("time out of range: {text:?}"));
    }
    // Docker reads anything with a dash as a date, and reports why it is not one.
    if text.contains('-') {
        let local = !(text.contains(['z', 'Z', '+']) || text.matches('-').count() == 3);
        let layout = docker_layout(text, local);
        let offset = local.then(|| local_offset(now));
        return parse_layout(text, layout, offset).map_err(|e| anyhow!(e));
    }
    parse_unix(text).ok_or_else(|| anyhow!("failed to parse value as time or duration: {text:?}"))
}

/// The Go layout Docker's `GetTimestamp` picks for a date: by the fraction, the `T` and the
/// number of colons, with or without a zone.
fn docker_layout(text: &str, local: bool) -> &'static str {
    let mut colons = text.matches(':').count();
    if !local && !text.contains(['z', 'Z']) && colons > 0 {
        // The colon of the zone's offset.
        colons -= 1;
    }
    match (text.contains('.'), text.contains('T'), colons, local) {
        (true, _, _, false) => "2006-01-02T15:04:05.999999999Z07:00",
        (true, _, _, true) => "2006-01-02T15:04:05.999999999",
        (false, true, 0, false) => "2006-01-02T15Z07:00",
        (false, true, 0, true) => "2006-01-02T15",
        (false, true, 1, false) => "2006-01-02T15:04Z07:00",
        (false, true, 1, true) => "2006-01-02T15:04",
        (false, true, _, false) => "2006-01-02T15:04:05Z07:00",
        (false, true, _, true) => "2006-01-02T15:04:05",
        (false, false, _, false) => "2006-01-02Z07:00",
        (false, false, _, true) => "2006-01-02",
    }
}

/// A record's time: RFC 3339 as Go writes it.
fn parse_record_time(text: &str) -> Option<SystemTime> {
    parse_layout(text, "2006-01-02T15:04:05.999999999Z07:00", None).ok()
}

/// The local time zone's offset from UTC at `now`, in seconds: Docker reads a time without a
/// zone in the zone the client is in at that moment.
fn local_offset(now: SystemTime) -> i64 {
    // `time_t` is 64 bits on every target skiff builds for (musl's libc crate marks the name
    // itself deprecated until it follows musl 1.2's change to 64 bits everywhere).
    let secs: i64 = unix_parts(now).0;
    // SAFETY: an all-zero `tm` is a valid value (integers and a null zone-name pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; localtime_r only writes into `tm`.
    let done = unsafe { libc::localtime_r(&secs, &mut tm) };
    if done.is_null() { 0 } else { tm.tm_gmtoff }
}

/// A Unix time, seconds with an optional fraction (`1700000000.5`), as Docker's
/// `parseTimestamp` reads it.
fn parse_unix(text: &str) -> Option<SystemTime> {
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let nanos = if fraction.is_empty() {
        0
    } else {
        // Go parses the digits as an integer, then scales them to nanoseconds.
        let _: u64 = fraction.parse().ok()?;
        let digits: String = fraction
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        digits.parse().ok()?
    };
    from_unix_parts(secs, nanos)
}

/// Go's `time.ParseDuration` (`1h30m`, `1.5s`, `-10m`, units ns us µs ms s m h); the sign, and
/// the length. `None` if the text is not one.
fn parse_go_duration(text: &str) -> Option<(bool, Duration)> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some((negative, Duration::ZERO));
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (whole, after) = split_digits(rest);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => split_digits(after),
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        nanos = nanos.checked_add(duration_part(whole, fraction, unit)?)?;
        rest = after;
    }
    // Go's durations are an int64 of nanoseconds.
    if nanos > u128::from(i64::MAX.unsigned_abs()) {
        return None;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    let sub = u32::try_from(nanos % 1_000_000_000).ok()?;
    Some((negative, Duration::new(secs, sub)))
}

/// One `<number><unit>` of a Go duration, in nanoseconds.
fn duration_part(whole: &str, fraction: &str, unit: &str) -> Option<u128> {
    let per: u128 = match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    // Digits past the 18th cannot change a result that fits in an int64.
    let fraction = &fraction[..fraction.len().min(18)];
    let part = if fraction.is_empty() {
        0
    } else {
        let scale = 10u128.pow(u32::try_from(fraction.len()).ok()?);
        fraction.parse::<u128>().ok()? * per / scale
    };
    whole.checked_mul(per)?.checked_add(part)
}

/// The leading ASCII digits of `text`, and the rest.
fn split_digits(text: &str) -> (&str, &str) {
    text.split_at(text.bytes().take_while(u8::is_ascii_digit).count())
}

/// Reads `text` by a Go time layout made of the elements Docker's layouts use, with Go's error
/// words. `offset` is the zone for a layout without one; a layout with `Z07:00` reads it.
fn parse_layout(text: &str, layout: &str, offset: Option<i64>) -> Result<SystemTime, String> {
    let mut rest = text;
    let mut fields = [1i64, 1, 1, 0, 0, 0];
    let mut nanos = 0u32;
    let mut zone = offset.unwrap_or(0);
    let mut elements = layout;
    while !elements.is_empty() {
        let element = next_element(elements);
        elements = &elements[element.len()..];
        let cannot = |rest: &str| {
            format!("parsing time {text:?} as {layout:?}: cannot parse {rest:?} as {element:?}")
        };
        rest = match element {
            "2006" => take_number(rest, 4, 4, &mut fields[0]).ok_or_else(|| cannot(rest))?,
            "01" => take_number(rest, 2, 2, &mut fields[1]).ok_or_else(|| cannot(rest))?,
            "02" => take_number(rest, 2, 2, &mut fields[2]).ok_or_else(|| cannot(rest))?,
            "15" => take_number(rest, 1, 2, &mut fields[3]).ok_or_else(|| cannot(rest))?,
            "04" => take_number(rest, 2, 2, &mut fields[4]).ok_or_else(|| cannot(rest))?,
            "05" => {
                let after = take_number(rest, 2, 2, &mut fields[5]).ok_or_else(|| cannot(rest))?;
                // Go reads a fraction after the seconds whether the layout shows one or not.
                take_fraction(after, &mut nanos)
            }
            ".999999999" => take_fraction(rest, &mut nanos),
            "Z07:00" => take_zone(rest, &mut zone).ok_or_else(|| cannot(rest))?,
            literal => rest.strip_prefix(literal).ok_or_else(|| cannot(rest))?,
        };
    }
    if !rest.is_empty() {
        return Err(format!("parsing time {text:?}: extra text: {rest:?}"));
    }
    let [year, month, day, hour, minute, second] = fields;
    let range = |what: &str| format!("parsing time {text:?}: {what} out of range");
    if !(1..=12).contains(&month) {
        return Err(range("month"));
    }
    if hour > 23 {
        return Err(range("hour"));
    }
    if minute > 59 {
        return Err(range("minute"));
    }
    if second > 59 {
        return Err(range("second"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(range("day"));
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    from_unix_parts(secs - zone, nanos).ok_or_else(|| range("time"))
}

/// The next element of a Go layout: a field (`2006`, `01`, `02`, `15`, `04`, `05`,
/// `.999999999`, `Z07:00`) or the literal text up to the next one.
fn next_element(layout: &str) -> &str {
    const FIELDS: [&str; 8] = ["2006", "01", "02", "15", "04", "05", ".999999999", "Z07:00"];
    if let Some(field) = FIELDS.iter().find(|f| layout.starts_with(**f)) {
        return &layout[..field.len()];
    }
    let end = (1..layout.len())
        .find(|&i| FIELDS.iter().any(|f| layout[i..].starts_with(f)))
        .unwrap_or(layout.len());
    &layout[..end]
}

/// Reads `min` to `max` digits into `field`; the rest of the text.
fn take_number<'t>(text: &'t str, min: usize, max: usize, field: &mut i64) -> Option<&'t str> {
    let len = text
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    if len < min {
        return None;
    }
    *field = text[..len].parse().ok()?;
    Some(&text[len..])
}

/// Reads an optional `.` and digits (nanoseconds, digits past the ninth dropped).
fn take_fraction<'t>(text: &'t str, nanos: &mut u32) -> &'t str {
    let Some(after) = text.strip_prefix(['.', ',']) else {
        return text;
    };
    let (digits, rest) = split_digits(after);
    if digits.is_empty() {
        return text;
    }
    let padded: String = digits
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    *nanos = padded.parse().unwrap_or(0);
    rest
}

/// Reads a zone, `Z` or `±hh:mm`, into `offset` (seconds east of UTC).
fn take_zone<'t>(text: &'t str, offset: &mut i64) -> Option<&'t str> {
    if let Some(rest) = text.strip_prefix('Z') {
        *offset = 0;
        return Some(rest);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (mut hours, mut minutes) = (0, 0);
    let rest = take_number(&text[1..], 2, 2, &mut hours)?;
    let rest = take_number(rest.strip_prefix(':')?, 2, 2, &mut minutes)?;
    *offset = sign * (hours * 3_600 + minutes * 60);
    Some(rest)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01: year, month, day (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds and nanoseconds since the epoch (the seconds negative before it).
fn unix_parts(time: SystemTime) -> (i64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

/// The time `secs` seconds and `nanos` nanoseconds after the epoch; `None` out of range.
fn from_unix_parts(secs: i64, nanos: u32) -> Option<SystemTime> {
    let whole = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    whole?.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// A time written as RFC 3339 in UTC, on the stack: a record's time is formatted once per
/// chunk and no line allocates.
struct Stamp {
    bytes: [u8; 48],
    len: usize,
}

impl Stamp {
    /// Go's `RFC3339Nano`, as the log stores times: no trailing zeros in the fraction.
    fn go(time: SystemTime) -> Stamp {
        let mut stamp = Stamp::fixed(time);
        // `...:05.120000000Z` becomes `...:05.12Z`, and `...:05.000000000Z` `...:05Z`.
        let zone = stamp.len - 1;
        let dot = zone - 10;
        let mut end = zone;
        while end > dot + 1 && stamp.bytes[end - 1] == b'0' {
            end -= 1;
        }
        if end == dot + 1 {
            end = dot;
        }
        stamp.bytes.copy_within(zone..stamp.len, end);
        stamp.len = end + 1;
        stamp
    }

    /// Nanoseconds always nine digits, as `docker logs -t` prints them (`RFC3339NanoFixed`).
    fn fixed(time: SystemTime) -> Stamp {
        let (secs, nanos) = unix_parts(time);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let of_day = secs.rem_euclid(86_400);
        let (hour, minute, second) = (of_day / 3_600, of_day / 60 % 60, of_day % 60);
        let mut bytes = [0u8; 48];
        let mut cursor = &mut bytes[..];
        // 48 bytes hold any year an i64 of seconds reaches, so this cannot fail.
        let _ = write!(
            cursor,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{nanos:09}Z"
        );
        let len = 48 - cursor.len();
        Stamp { bytes, len }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}
// ANCHOR_END: time

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-04T12:00:00Z
    const NOON: u64 = 1_796_385_600;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    fn record(line: &[u8], stream: Stream, time: &str) -> String {
        let mut out = Vec::new();
        encode(&mut out, stream, line, time.as_bytes());
        String::from_utf8(out).unwrap()
    }

    fn strings(options: &[&str]) -> Vec<String> {
        options.iter().map(ToString::to_string).collect()
    }

    /// The log's lines with their times replaced by `T`, to compare.
    fn lines_of(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .map(|line| {
                let at = line.find(r#","time":""#).unwrap();
                format!("{}T", &line[..at + 9])
            })
            .collect()
    }

    fn read_all(path: &Path, options: &ReadOptions) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        read(path, options, &mut out, &mut err, &mut || false).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    /// Writes a log by hand: `(line, stream, seconds after NOON)`.
    fn write_log(path: &Path, entries: &[(&str, Stream, u64)]) {
        let mut out = Vec::new();
        for (line, stream, secs) in entries {
            encode(
                &mut out,
                *stream,
                line.as_bytes(),
                Stamp::go(at(NOON + secs, 0)).as_bytes(),
            );
        }
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn records_are_escaped_as_docker_writes_them() {
        // Each expected line is what Docker's json-file driver writes for the same bytes.
        let time = "2026-12-04T12:00:00.123456789Z";
        let cases: [(&[u8], &str); 7] = [
            (b"hello\n", r#"hello\n"#),
            (b"say \"hi\" \\ there\n", r#"say \"hi\" \\ there\n"#),
            (
                b"<a href='x'>&amp;</a>\n",
                r#"\u003ca href='x'\u003e\u0026amp;\u003c/a\u003e\n"#,
            ),
            (b"a\tb\rc\x1b[0m\x7f\n", "a\\u0009b\\rc\\u001b[0m\u{7f}\\n"),
            (b"caf\xc3\xa9 \xe2\x82\xac\n", "caf\u{e9} \u{20ac}\\n"),
            (
                b"bad \xff \xe2\x82 end\n",
                r#"bad \ufffd \ufffd\ufffd end\n"#,
            ),
            (
                "line\u{2028}sep\u{2029}\n".as_bytes(),
                r#"line\u2028sep\u2029\n"#,
            ),
        ];
        for (line, escaped) in cases {
            assert_eq!(
                record(line, Stream::Stdout, time),
                format!("{{\"log\":\"{escaped}\",\"stream\":\"stdout\",\"time\":\"{time}\"}}\n"),
            );
        }
        assert_eq!(
            record(b"oops\n", Stream::Stderr, time),
            "{\"log\":\"oops\\n\",\"stream\":\"stderr\",\"time\":\"2026-12-04T12:00:00.123456789Z\"}\n"
        );
    }

    #[test]
    fn escaped_records_read_back_as_json() {
        let line = b"q\"b\\<>&\t\x01\xff\xe2\x80\xa8\n";
        let text = record(line, Stream::Stdout, "2026-12-04T12:00:00Z");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["log"], "q\"b\\<>&\t\u{1}\u{fffd}\u{2028}\n");
    }

    #[test]
    fn times_are_go_rfc3339_nano() {
        let cases = [
            (at(NOON, 123_456_789), "2026-12-04T12:00:00.123456789Z"),
            (at(NOON, 120_000_000), "2026-12-04T12:00:00.12Z"),
            (at(NOON, 0), "2026-12-04T12:00:00Z"),
            (at(0, 1), "1970-01-01T00:00:00.000000001Z"),
            (at(951_782_400, 5_000), "2000-02-29T00:00:00.000005Z"),
        ];
        for (time, text) in cases {
            assert_eq!(
                std::str::from_utf8(Stamp::go(time).as_bytes()).unwrap(),
                text
            );
            assert_eq!(parse_record_time(text), Some(time));
        }
        assert_eq!(
            Stamp::fixed(at(NOON, 120_000_000)).as_bytes(),
            b"2026-12-04T12:00:00.120000000Z"
        );
    }

    #[test]
    fn lines_are_joined_across_chunks_and_split_within_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = LogWriter::open(&path, LogOptions::default()).unwrap();
        log.write(Stream::Stdout, b"one\ntw").unwrap();
        log.write(Stream::Stderr, b"err").unwrap();
        log.write(Stream::Stdout, b"o\nthree\nfo").unwrap();
        log.write(Stream::Stderr, b"or\n").unwrap();
        log.write(Stream::Stdout, b"ur").unwrap();
        assert_eq!(lines_of(&path).len(), 4, "a partial line waits");
        log.flush().unwrap();
        assert_eq!(
            lines_of(&path),
            [
                r#"{"log":"one\n","stream":"stdout","time":"T"#,
                r#"{"log":"two\n","stream":"stdout","time":"T"#,
                r#"{"log":"three\n","stream":"stdout","time":"T"#,
                r#"{"log":"error\n","stream":"stderr","time":"T"#,
                r#"{"log":"four","stream":"stdout","time":"T"#,
            ]
        );
        log.flush().unwrap();
        assert_eq!(lines_of(&path).len(), 5, "a second flush adds nothing");
    }

    #[test]
    fn a_long_line_is_logged_in_16k_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = LogWriter::open(&path, LogOptions::default()).unwrap();
        let line = vec![b'x'; MAX_PIECE * 2 + 10];
        for chunk in line.chunks(1000) {
            log.write(Stream::Stdout, chunk).unwrap();
        }
        log.write(Stream::Stdout, b"\n").unwrap();
        let (out, _) = read_all(&path, &ReadOptions::default());
        assert_eq!(out.len(), line.len() + 1);
        let lengths: Vec<usize> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(lengths, [MAX_PIECE, MAX_PIECE, 11]);
    }

    #[test]
    fn rotation_keeps_max_file_files_under_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        // A record of "N\n" is 62 to 72 bytes, as its time has more or fewer digits: three
        // fit in 250 bytes, hardly ever four.
        let options = LogOptions::parse(&strings(&["max-size=250", "max-file=3"])).unwrap();
        let mut log = LogWriter::open(&path, options).unwrap();
        for i in 0..10 {
            log.write(Stream::Stdout, format!("{i}\n").as_bytes())
                .unwrap();
        }
        let mut files = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        files.sort();
        assert_eq!(files, ["c-json.log", "c-json.log.1", "c-json.log.2"]);
        for file in &files {
            assert!(std::fs::metadata(dir.path().join(file)).unwrap().len() <= 250);
        }
        // The files hold the last lines, in order, the current one the newest; the oldest
        // were removed.
        let all = [".2", ".1", ""].map(|n| logs_in(&dir.path().join(format!("c-json.log{n}"))));
        assert!(all[..2].iter().all(|lines| lines.len() >= 3), "{all:?}");
        let all = all.concat();
        let expected: Vec<String> = (10 - all.len()..10).map(|i| format!("{i}\n")).collect();
        assert_eq!(all, expected);
        // Reading the log goes through the rotated files too.
        assert_eq!(
            read_all(&path, &ReadOptions::default()).0,
            expected.concat()
        );
    }

    /// The lines one file of the log holds.
    fn logs_in(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn rotation_with_exact_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let size = record(b"a\n", Stream::Stdout, "2026-12-04T12:00:00.123456789Z").len() as u64;
        // Room for exactly two records per file.
        let options = LogOptions {
            max_size: Some(size * 2),
            max_file: 2,
        };
        let mut log = LogWriter::open(&path, options).unwrap();
        // Records timed with all nine digits of nanoseconds so each has the same size.
        let now = Stamp::fixed(at(NOON, 123_456_789));
        for line in ["1\n", "2\n", "3\n", "4\n", "5\n"] {
            log.record(Stream::Stdout, line.as_bytes(), &now).unwrap();
        }
        log.write_out().unwrap();
        let logs = |p: &Path| read_all(p, &ReadOptions::default()).0;
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        assert_eq!(
            logs(&path),
            "3\n4\n5\n",
            "1 and 2 rotated out of max-file=2"
        );
        assert_eq!(
            std::fs::metadata(rotated_path(&path, 1)).unwrap().len(),
            size * 2
        );
        assert!(!rotated_path(&path, 2).exists());
    }

    #[test]
    fn max_file_one_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let options = LogOptions::parse(&strings(&["max-size=100"])).unwrap();
        let mut log = LogWriter::open(&path, options).unwrap();
        log.write(Stream::Stdout, b"first\nsecond\n").unwrap();
        assert_eq!(read_all(&path, &ReadOptions::default()).0, "second\n");
        assert!(!rotated_path(&path, 1).exists());
    }

    #[test]
    fn the_file_is_made_with_the_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = LogWriter::open(&path, LogOptions::default()).unwrap();
        log.flush().unwrap();
        assert!(!path.exists(), "nothing written, no file");
        assert_eq!(
            read_all(&path, &ReadOptions::default()).0,
            "",
            "read as empty"
        );
        log.write(Stream::Stdout, b"first\n").unwrap();
        assert_eq!(read_all(&path, &ReadOptions::default()).0, "first\n");
    }

    #[test]
    fn reopening_appends_and_counts_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        LogWriter::open(&path, LogOptions::default())
            .unwrap()
            .write(Stream::Stdout, b"run 1\n")
            .unwrap();
        let mut log = LogWriter::open(&path, LogOptions::default()).unwrap();
        assert_eq!(log.size, std::fs::metadata(&path).unwrap().len());
        log.write(Stream::Stdout, b"run 2\n").unwrap();
        assert_eq!(read_all(&path, &ReadOptions::default()).0, "run 1\nrun 2\n");
    }

    #[test]
    fn memory_stays_bounded_over_many_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut log = LogWriter::open(&path, LogOptions::default()).unwrap();
        let mut chunk = Vec::new();
        for i in 0..100_000 {
            chunk.extend_from_slice(format!("line {i}\n").as_bytes());
            // Chunks of odd sizes, as pipes hand them over, cut mid-line.
            if chunk.len() > 3_000 + i % 1_000 {
                let cut = chunk.len() - 3;
                log.write(Stream::Stdout, &chunk[..cut]).unwrap();
                chunk.drain(..cut);
            }
            assert!(log.out.capacity() <= KEEP);
            assert!(log.pending[0].capacity() <= MAX_PIECE);
        }
        log.write(Stream::Stdout, &chunk).unwrap();
        // One huge chunk too.
        let big: Vec<u8> = (0..100_000)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        log.write(Stream::Stdout, &big).unwrap();
        assert!(log.out.capacity() <= KEEP);
        log.flush().unwrap();
        assert_eq!(count_lines(&File::open(&path).unwrap()).unwrap(), 200_000);
    }

    #[test]
    fn options_parse_as_docker_does() {
        let parse = |o: &[&str]| LogOptions::parse(&strings(o));
        assert_eq!(parse(&[]).unwrap(), LogOptions::default());
        let cases: [(&str, u64); 8] = [
            ("10", 10),
            ("10b", 10),
            ("10k", 10_000),
            ("10m", 10_000_000),
            ("1g", 1_000_000_000),
            ("1.5KB", 1_500),
            ("2 MiB", 2_000_000),
            ("3mb", 3_000_000),
        ];
        for (text, bytes) in cases {
            let options = parse(&[&format!("max-size={text}")]).unwrap();
            assert_eq!(options.max_size, Some(bytes), "{text}");
        }
        let options = parse(&["max-size=1m", "max-file=3"]).unwrap();
        assert_eq!((options.max_size, options.max_file), (Some(1_000_000), 3));
        // Without max-size, max-file is accepted and does nothing, as in Docker.
        assert_eq!(parse(&["max-file=3"]).unwrap().max_size, None);
        let errors = [
            (
                vec!["max-sise=1m"],
                "unknown log opt 'max-sise' for json-file log driver",
            ),
            (vec!["max-file=0"], "max-file cannot be less than 1"),
            (
                vec!["max-file=x"],
                r#"strconv.Atoi: parsing "x": invalid syntax"#,
            ),
            (vec!["max-size=10q"], "invalid suffix: 'q'"),
            (vec!["max-size=10mbb"], "invalid suffix: 'mbb'"),
            (vec!["max-size=m"], "invalid size: 'm'"),
            (vec!["max-size=-1m"], "invalid size: '-1m'"),
            (vec!["max-size=0"], "max-size must be a positive number"),
            (vec!["max-size"], "invalid size: ''"),
            (
                vec!["max-file=0", "mode=x"],
                "unknown log opt 'mode' for json-file log driver",
            ),
            (
                vec!["tag=x"],
                "log opt 'tag' of the json-file log driver is not supported by skiff",
            ),
        ];
        for (options, message) in errors {
            assert_eq!(
                parse(&options).unwrap_err().to_string(),
                message,
                "{options:?}"
            );
        }
    }

    #[test]
    fn reads_streams_apart_with_tail_since_until_and_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        write_log(
            &rotated_path(&path, 2),
            &[("a\n", Stream::Stdout, 0), ("b\n", Stream::Stderr, 1)],
        );
        write_log(&rotated_path(&path, 1), &[("c\n", Stream::Stdout, 2)]);
        write_log(
            &path,
            &[("d\n", Stream::Stderr, 3), ("e", Stream::Stdout, 4)],
        );
        let all = ReadOptions::default();
        assert_eq!(read_all(&path, &all), ("a\nc\ne".into(), "b\nd\n".into()));
        let tail = |n| ReadOptions {
            tail: Some(n),
            ..Default::default()
        };
        assert_eq!(read_all(&path, &tail(3)), ("c\ne".into(), "d\n".into()));
        assert_eq!(read_all(&path, &tail(0)), (String::new(), String::new()));
        assert_eq!(read_all(&path, &tail(99)), read_all(&path, &all));
        let window = ReadOptions {
            since: Some(at(NOON + 1, 0)),
            until: Some(at(NOON + 3, 0)),
            ..Default::default()
        };
        assert_eq!(read_all(&path, &window), ("c\n".into(), "b\nd\n".into()));
        // tail picks the last lines first; since then filters them, as Docker does.
        let both = ReadOptions {
            tail: Some(2),
            since: Some(at(NOON + 4, 0)),
            ..Default::default()
        };
        assert_eq!(read_all(&path, &both), ("e".into(), String::new()));
        let stamped = ReadOptions {
            timestamps: true,
            tail: Some(2),
            ..Default::default()
        };
        assert_eq!(
            read_all(&path, &stamped),
            (
                "2026-12-04T12:00:04.000000000Z e".into(),
                "2026-12-04T12:00:03.000000000Z d\n".into()
            )
        );
        let details = ReadOptions {
            details: true,
            tail: Some(1),
            ..Default::default()
        };
        assert_eq!(read_all(&path, &details).0, " e");
    }

    #[test]
    fn a_corrupt_line_is_skipped_and_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        write_log(&path, &[("a\n", Stream::Stdout, 0)]);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"not json\n{\"log\":\"x\"}\n").unwrap();
        file.write_all(record(b"b\n", Stream::Stdout, "2026-12-04T12:00:01Z").as_bytes())
            .unwrap();
        let (out, err) = read_all(&path, &ReadOptions::default());
        assert_eq!(out, "a\nb\n");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("Error grabbing logs: skipping corrupt lines in"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_log_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        assert_eq!(
            read_all(&path, &ReadOptions::default()),
            (String::new(), String::new())
        );
        let follow = ReadOptions {
            follow: true,
            ..Default::default()
        };
        assert_eq!(read_all(&path, &follow), (String::new(), String::new()));
    }

    #[test]
    fn follow_picks_up_appends_and_rotations_until_stopped() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let options = LogOptions::parse(&strings(&["max-size=300", "max-file=5"])).unwrap();
        let mut log = LogWriter::open(&path, options).unwrap();
        log.write(Stream::Stdout, b"before\n").unwrap();
        let stopped = Arc::new(AtomicBool::new(false));
        let writer = {
            let stopped = Arc::clone(&stopped);
            std::thread::spawn(move || {
                for i in 0..20 {
                    std::thread::sleep(Duration::from_millis(15));
                    // Half a line, then the rest: the reader must not show it cut.
                    log.write(Stream::Stdout, format!("line {i:02}").as_bytes())
                        .unwrap();
                    std::thread::sleep(Duration::from_millis(5));
                    log.write(Stream::Stdout, b" done\n").unwrap();
                    if i % 5 == 0 {
                        log.write(Stream::Stderr, format!("err {i}\n").as_bytes())
                            .unwrap();
                    }
                }
                log.write(Stream::Stdout, b"last, no newline").unwrap();
                log.flush().unwrap();
                stopped.store(true, Ordering::SeqCst);
            })
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let follow = ReadOptions {
            follow: true,
            ..Default::default()
        };
        let mut running = || !stopped.load(Ordering::SeqCst);
        read(&path, &follow, &mut out, &mut err, &mut running).unwrap();
        writer.join().unwrap();
        assert!(
            rotated_path(&path, 3).exists(),
            "the log rotated while followed"
        );
        let expected: String = (0..20).map(|i| format!("line {i:02} done\n")).collect();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("before\n{expected}last, no newline")
        );
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "err 0\nerr 5\nerr 10\nerr 15\n"
        );
    }

    #[test]
    fn follow_stops_at_until() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        write_log(
            &path,
            &[("a\n", Stream::Stdout, 0), ("b\n", Stream::Stdout, 10)],
        );
        let options = ReadOptions {
            follow: true,
            until: Some(at(NOON + 5, 0)),
            ..Default::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // Running for ever: it is the record after `until` that ends it.
        read(&path, &options, &mut out, &mut err, &mut || true).unwrap();
        assert_eq!(out, b"a\n");
    }

    #[test]
    fn times_parse_as_docker_reads_them() {
        let now = at(NOON, 500_000_000);
        let ok = |text: &str| parse_time(text, now).unwrap();
        assert_eq!(ok("10m"), at(NOON - 600, 500_000_000));
        assert_eq!(ok("1h30m"), at(NOON - 5_400, 500_000_000));
        assert_eq!(ok("1.5s"), at(NOON - 1, 0));
        assert_eq!(ok("-42s"), at(NOON + 42, 500_000_000));
        assert_eq!(ok("1700000000"), at(1_700_000_000, 0));
        assert_eq!(ok("1700000000.123"), at(1_700_000_000, 123_000_000));
        assert_eq!(ok("0"), UNIX_EPOCH);
        assert_eq!(ok("2026-12-04T12:00:00Z"), at(NOON, 0));
        assert_eq!(ok("2026-12-04T12:00:00.25Z"), at(NOON, 250_000_000));
        assert_eq!(ok("2026-12-04T14:00:00+02:00"), at(NOON, 0));
        assert_eq!(ok("2026-12-04T07:30:00-04:30"), at(NOON, 0));
        assert_eq!(ok("2026-12-04T12Z"), at(NOON, 0));
        assert_eq!(ok("2026-12-04T12:00Z"), at(NOON, 0));
        assert_eq!(ok("2026-12-04Z"), at(NOON - 12 * 3_600, 0));
        // Without a zone, local time at `now`.
        let local = local_offset(now).unsigned_abs();
        let expected = |secs: u64| {
            if local_offset(now) >= 0 {
                at(secs - local, 0)
            } else {
                at(secs + local, 0)
            }
        };
        assert_eq!(ok("2026-12-04T12:00:00"), expected(NOON));
        assert_eq!(ok("2026-12-04"), expected(NOON - 12 * 3_600));
        let errors = [
            (
                "yesterday",
                r#"failed to parse value as time or duration: "yesterday""#,
            ),
            ("10x", r#"failed to parse value as time or duration: "10x""#),
            (
                "2026-13-04",
                r#"parsing time "2026-13-04": month out of range"#,
            ),
            (
                "2026-02-30T00:00:00Z",
                r#"parsing time "2026-02-30T00:00:00Z": day out of range"#,
            ),
            (
                "2026-12-04T12:00:00x",
                r#"parsing time "2026-12-04T12:00:00x": extra text: "x""#,
            ),
            (
                "2026-12-04T12:0",
                r#"parsing time "2026-12-04T12:0" as "2006-01-02T15:04": cannot parse "0" as "04""#,
            ),
            (
                "2026-12-4T12:00:00Z",
                r#"parsing time "2026-12-4T12:00:00Z" as "2006-01-02T15:04:05Z07:00": cannot parse "4T12:00:00Z" as "02""#,
            ),
            (
                "2026-12-04 x",
                r#"parsing time "2026-12-04 x": extra text: " x""#,
            ),
        ];
        for (text, message) in errors {
            assert_eq!(
                parse_time(text, now).unwrap_err().to_string(),
                message,
                "{text}"
            );
        }
    }
}
