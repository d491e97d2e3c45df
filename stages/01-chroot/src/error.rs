//! What can go wrong when launching a container, and the exit code each failure maps to.
//!
//! Docker's convention, which skiff follows: 125 when the engine itself failed (bad flag, missing
//! rootfs, a system call refused), 126 when the command exists but cannot be executed, 127 when
//! it does not exist. Any other code is the command's own.

use std::path::PathBuf;

use nix::errno::Errno;

/// A failure of one [`crate::Feature`], carrying what the feature was doing.
#[derive(Debug, thiserror::Error)]
#[error("{context}{}", source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
pub struct FeatureError {
    /// What failed, naming the path or object ("create cgroup /sys/fs/cgroup/memory/skiff/ab12").
    pub context: String,
    /// The underlying error, when there is one.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl FeatureError {
    /// An error with a message and no underlying cause.
    pub fn msg(context: impl Into<String>) -> Self {
        FeatureError {
            context: context.into(),
            source: None,
        }
    }

    /// An error with a message and the error that caused it.
    pub fn with(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        FeatureError {
            context: context.into(),
            source: Some(source.into()),
        }
    }
}

/// Everything that stops a container from starting.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The rootfs is missing or not a directory.
    #[error("rootfs {path}: {reason}: pass --rootfs a directory that holds the container's files")]
    Rootfs {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Only root may change root (and, later, create namespaces and cgroups).
    #[error("must run as root (uid 0), not uid {uid}: run it with sudo")]
    NotRoot {
        /// The effective uid the engine runs as.
        uid: u32,
    },
    /// A `-e` argument that is not `KEY=VALUE`.
    #[error("invalid environment variable {0:?}: expected KEY=VALUE with a non-empty KEY")]
    BadEnv(String),
    /// No command was given.
    #[error("no command given: name the command to run after the options")]
    NoCommand,
    /// A string that cannot become a C string.
    #[error("{0:?} contains a NUL byte, which no command line or path can hold")]
    NulByte(String),
    /// `-w` was not absolute.
    #[error("working directory {0:?} is not absolute: give a path that starts with /")]
    RelativeWorkdir(String),
    /// A feature failed in the parent.
    #[error("{feature}: {source}")]
    Feature {
        /// The feature's name.
        feature: &'static str,
        /// What went wrong (shown in the message, so not also a `source`).
        source: FeatureError,
    },
    /// A system call the engine itself made (pipe, clone, wait) failed.
    #[error("{call}: {errno}")]
    Sys {
        /// The call that failed.
        call: &'static str,
        /// The error it returned.
        errno: Errno,
    },
    /// A step of the child's plan failed before the command could start.
    #[error("{step}: {}{}", errno.desc(), hint.map(|h| format!(": {h}")).unwrap_or_default())]
    Child {
        /// The step, described ("mount proc on /proc").
        step: String,
        /// The error the kernel returned.
        errno: Errno,
        /// What a user can do about it, when the step knows.
        hint: Option<&'static str>,
    },
    /// The command does not exist in the container's root (exit 127).
    #[error("exec {command:?}: executable file not found in the container's root or its $PATH")]
    NotFound {
        /// The command as given.
        command: String,
    },
    /// The command exists but the kernel refused to execute it (exit 126).
    #[error("exec {command:?}: {}: check that it is an executable file for this machine", errno.desc())]
    CannotExecute {
        /// The command as given.
        command: String,
        /// Why execve(2) refused.
        errno: Errno,
    },
}

impl LaunchError {
    /// The exit code Docker uses for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            LaunchError::NotFound { .. } => 127,
            LaunchError::CannotExecute { .. } => 126,
            _ => 125,
        }
    }
}
