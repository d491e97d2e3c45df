//! What can be wrong with a Dockerfile, a `.dockerignore` or a COPY source: found before anything
//! runs, and reported the way `docker build` reports it, with the file and the line first:
//! `Dockerfile:3: unknown instruction "RUNN" (did you mean RUN?)`.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where something is: a file and a 1-based line number. Line 0 means the whole file (it could
/// not be read, or it holds no instruction at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it (`Dockerfile`, `app/.dockerignore`).
    pub path: PathBuf,
    /// The line; for an instruction continued over several lines, the first of them.
    pub line: usize,
}

impl Location {
    /// A line of a file.
    pub fn new(path: impl Into<PathBuf>, line: usize) -> Self {
        Location {
            path: path.into(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.path.display())
        } else {
            write!(f, "{}:{}", self.path.display(), self.line)
        }
    }
}

/// Formats an optional "did you mean" suggestion.
fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

/// Everything the Dockerfile front end can refuse. Each variant carries the [`Location`] (file
/// and line) it is about, and its message starts with it.
#[derive(Debug, thiserror::Error)]
pub enum DockerfileError {
    /// The file could not be read.
    #[error("{at}: cannot read the file: {source}")]
    Read {
        /// The file (line 0).
        at: Location,
        /// What the system said.
        source: io::Error,
    },
    /// Nothing but comments and blank lines.
    #[error("{at}: the Dockerfile has no instructions: start it with FROM IMAGE (or FROM scratch)")]
    Empty {
        /// The file (line 0).
        at: Location,
    },
    /// Only ARG lines, no FROM.
    #[error("{at}: the Dockerfile has no FROM instruction: add FROM IMAGE (or FROM scratch)")]
    NoFrom {
        /// The file (line 0).
        at: Location,
    },
    /// An instruction other than ARG before the first FROM.
    #[error("{at}: {instruction} before FROM: only ARG may come before the first FROM")]
    BeforeFrom {
        /// Where.
        at: Location,
        /// The instruction found there.
        instruction: String,
    },
    /// A bad parser directive (`# escape=...`) at the top of the file.
    #[error("{at}: {message}")]
    Directive {
        /// Where.
        at: Location,
        /// What is wrong with it.
        message: String,
    },
    /// A line that does not start with a known instruction.
    #[error("{at}: unknown instruction {name:?}{}", did_you_mean(suggestion))]
    UnknownInstruction {
        /// Where.
        at: Location,
        /// The word as written.
        name: String,
        /// The closest instruction name, when one is close.
        suggestion: Option<String>,
    },
    /// Too few, too many or malformed arguments.
    #[error("{at}: {instruction} {message}")]
    Arguments {
        /// Where.
        at: Location,
        /// The instruction (`COPY`).
        instruction: &'static str,
        /// What is wrong, phrased to follow the instruction's name ("requires at least one
        /// argument").
        message: String,
    },
    /// An exec form (`["cmd", "arg"]`) that is not a JSON array of strings.
    #[error(
        "{at}: {instruction}: invalid JSON array ({reason}): write the exec form as a JSON array of double-quoted strings, like [\"echo\", \"hi\"]"
    )]
    InvalidJson {
        /// Where.
        at: Location,
        /// The instruction.
        instruction: &'static str,
        /// What the JSON parser said.
        reason: String,
    },
    /// A `--flag` the instruction does not have.
    #[error(
        "{at}: {instruction}: unknown flag --{flag}{}",
        did_you_mean(suggestion)
    )]
    UnknownFlag {
        /// Where.
        at: Location,
        /// The instruction.
        instruction: &'static str,
        /// The flag's name, without `--`.
        flag: String,
        /// The closest flag of the instruction (`--from`), when one is close.
        suggestion: Option<String>,
    },
    /// A known flag with a bad value.
    #[error("{at}: {instruction}: bad --{flag}: {message}")]
    BadFlag {
        /// Where.
        at: Location,
        /// The instruction.
        instruction: &'static str,
        /// The flag's name, without `--`.
        flag: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// Quoting or `$` substitution that cannot be processed (an unterminated quote, `${X`).
    #[error("{at}: {instruction}: {message}")]
    Syntax {
        /// Where.
        at: Location,
        /// The instruction.
        instruction: &'static str,
        /// What is wrong, naming the text.
        message: String,
    },
    /// A value the instruction cannot use (a port, a signal, a stage name, a duration).
    #[error("{at}: {instruction}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// The instruction.
        instruction: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// Something Docker does that skiff does not (multi-stage builds, `RUN --mount`, `ADD URL`).
    #[error("{at}: {what} is not supported by skiff: {hint}")]
    Unsupported {
        /// Where.
        at: Location,
        /// The feature.
        what: String,
        /// What to do instead.
        hint: String,
    },
    /// A COPY or ADD source that is not in the build context.
    #[error("{at}: {instruction} failed: file not found in build context: {source_path}{}",
        if *excluded { " (it is excluded by .dockerignore)" } else { "" })]
    SourceNotFound {
        /// Where.
        at: Location,
        /// COPY or ADD.
        instruction: &'static str,
        /// The source as written (after substitution).
        source_path: String,
        /// True when the file exists but `.dockerignore` excludes it.
        excluded: bool,
    },
    /// A COPY or ADD source outside the build context (`../x`, or a symlink out of it).
    #[error(
        "{at}: {instruction} failed: forbidden path outside the build context: {source_path}: only files inside the context directory can be copied"
    )]
    OutsideContext {
        /// Where.
        at: Location,
        /// COPY or ADD.
        instruction: &'static str,
        /// The source, and where it leads when it is a symlink.
        source_path: String,
    },
    /// Several sources and a destination that is not a directory.
    #[error(
        "{at}: When using {instruction} with more than one source file, the destination must be a directory and end with a /"
    )]
    DestinationNotDirectory {
        /// Where.
        at: Location,
        /// COPY or ADD.
        instruction: &'static str,
    },
    /// Reading the build context failed.
    #[error("{at}: reading the build context at {path}: {source}")]
    Context {
        /// The step that was reading it.
        at: Location,
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A `.dockerignore` pattern that is not a valid pattern.
    #[error("{at}: bad pattern {pattern:?}: {message}")]
    IgnorePattern {
        /// The `.dockerignore` and the pattern's line.
        at: Location,
        /// The pattern as written.
        pattern: String,
        /// What is wrong.
        message: String,
    },
    /// A `--chown` user or group that the image does not know.
    #[error("{at}: {message}")]
    Owner {
        /// Where.
        at: Location,
        /// What could not be found, and where it was looked up.
        message: String,
    },
}

impl DockerfileError {
    /// Where the error is.
    pub fn location(&self) -> &Location {
        match self {
            DockerfileError::Read { at, .. }
            | DockerfileError::Empty { at }
            | DockerfileError::NoFrom { at }
            | DockerfileError::BeforeFrom { at, .. }
            | DockerfileError::Directive { at, .. }
            | DockerfileError::UnknownInstruction { at, .. }
            | DockerfileError::Arguments { at, .. }
            | DockerfileError::InvalidJson { at, .. }
            | DockerfileError::UnknownFlag { at, .. }
            | DockerfileError::BadFlag { at, .. }
            | DockerfileError::Syntax { at, .. }
            | DockerfileError::Invalid { at, .. }
            | DockerfileError::Unsupported { at, .. }
            | DockerfileError::SourceNotFound { at, .. }
            | DockerfileError::OutsideContext { at, .. }
            | DockerfileError::DestinationNotDirectory { at, .. }
            | DockerfileError::Context { at, .. }
            | DockerfileError::IgnorePattern { at, .. }
            | DockerfileError::Owner { at, .. } => at,
        }
    }
}
