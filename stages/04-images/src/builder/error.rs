//! What can stop a build, and the words a user sees when it does.
//!
//! Two kinds of failure, with Docker's exit codes: everything found before the first step runs
//! (a bad Dockerfile line, a missing COPY source, a missing base image, a bad flag) is bad input
//! and exits 125 with the file and line first; a RUN whose command fails exits 1 with Docker's
//! own sentence, `The command '/bin/sh -c false' returned a non-zero code: 1`.

use std::io;
use std::path::PathBuf;

use crate::dockerfile::{DockerfileError, Location};
use crate::error::ImageError;

/// Everything that can stop `build`.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile, `.dockerignore` or a COPY source is wrong (the message starts with
    /// `Dockerfile:LINE:`).
    #[error(transparent)]
    Dockerfile(#[from] DockerfileError),
    /// The store failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// FROM names an image the store does not have (skiff builds never pull).
    #[error("{at}: FROM {image}: no such image in the store: load, import or build it first")]
    NoBaseImage {
        /// The FROM line.
        at: Location,
        /// The image as written.
        image: String,
    },
    /// A RUN's command ended with a non-zero status (or could not be executed: 126, 127).
    #[error("The command '{command}' returned a non-zero code: {code}{}",
        reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    RunFailed {
        /// The RUN line.
        at: Location,
        /// The command, its words joined by spaces, as Docker prints it.
        command: String,
        /// Its exit code.
        code: i32,
        /// Why, when the engine knows better than the code (the program was not found).
        reason: Option<String>,
    },
    /// The build was interrupted (Ctrl-C) while a RUN ran; its container was stopped.
    #[error("{at}: RUN: interrupted: the step's container was stopped and removed")]
    Interrupted {
        /// The RUN line.
        at: Location,
    },
    /// The container of a RUN could not be made, started or committed.
    #[error("{at}: RUN: {message}")]
    Container {
        /// The RUN line.
        at: Location,
        /// What failed, with its causes.
        message: String,
    },
    /// Laying out the files of a COPY, ADD or WORKDIR failed.
    #[error("{at}: {instruction}: {context} {}: {source}", path.display())]
    Layout {
        /// The line.
        at: Location,
        /// COPY, ADD or WORKDIR.
        instruction: &'static str,
        /// What was being done ("copy to", "unpack").
        context: String,
        /// On which file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A Dockerfile that is well formed but cannot be built here.
    #[error("{at}: {message}")]
    Invalid {
        /// The line.
        at: Location,
        /// What is wrong and what to do.
        message: String,
    },
    /// A bad command-line value (`--build-arg`).
    #[error("{0}")]
    Usage(String),
}

impl BuildError {
    /// The exit code of `build` when it fails this way: 1 for a failed RUN, as `docker build`;
    /// 130 (128 + SIGINT) when interrupted; 125 for everything else (bad input, engine
    /// failure), as every skiff command.
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::RunFailed { .. } => 1,
            BuildError::Interrupted { .. } => 130,
            _ => 125,
        }
    }
}
