//! Stage 07's idea, yours to write: a container is an object that outlives the command that
//! started it. What the engine knows of it is a record on disk; a small monitor process, away
//! from the CLI, is its first process's parent, keeps its output and its exit status. Fill the
//! pieces in this order, running the check named in each after it (book: chapter 7, "Build it
//! yourself"):
//!
//! 1. [`run_detached`]  — `labs check 07 --bin ./target/debug/my-skiff-07 run-d-returns`
//! 2. [`list`]          — `... ps-a-shows-stopped`
//! 3. [`logs`]          — `... logs-keep-what`
//! 4. [`stop`]          — `... stop-sends-sigterm-first`, `... stop-kills-what-ignores`
//! 5. [`remove`]        — `... rm-deletes-a-stopped`, `... rm-refuses-a-running`
//!
//! Lab 07 checks much more (`start`, `exec`, `-it`, restart policies, `inspect`, `stats`, `cp`,
//! a crashed monitor...): the chapter takes them one at a time.
// Until a piece is written its arguments go unused.
#![allow(unused_variables, dead_code)]

use std::path::Path;

/// One line of `ps`: what the record says, and whether its monitor still runs.
#[derive(Debug)]
pub struct Listed {
    /// The container's full id (`ps` shows the first 12 digits).
    pub id: String,
    /// The image it runs.
    pub image: String,
    /// The command, as one string.
    pub command: String,
    /// `Up 3 seconds`, `Exited (0) 2 minutes ago`.
    pub status: String,
    /// Whether it runs now.
    pub running: bool,
    /// Its name.
    pub name: String,
}

/// `run -d`: starts the container `args` describe (stage 06's flags, as JSON: what a monitor
/// process needs to prepare it again) under a monitor that outlives this command, writes its
/// record under `store`, and returns its id once it runs. The command's output goes to the
/// container's log.
///
/// Book: chapter 7, "The record", "The monitor" and "A container's streams".
pub fn run_detached(store: &Path, args: &str) -> anyhow::Result<String> {
    todo!(
        "run_detached() in src/container.rs: a monitor that outlives the CLI, and the container's record (book: chapter 7, \"The monitor\")"
    )
}

/// `ps`: the containers of `store` (with `all`, the stopped ones too), each checked against its
/// monitor: one that died leaves its container exited, whatever the record said.
///
/// Book: chapter 7, "ps and inspect" and "Crashes, and cleaning up from the record alone".
pub fn list(store: &Path, all: bool) -> anyhow::Result<Vec<Listed>> {
    todo!(
        "list() in src/container.rs: the containers' records, checked against their monitors (book: chapter 7, \"ps and inspect\")"
    )
}

/// `logs CONTAINER`: what it wrote, stdout to stdout and stderr to stderr. An unknown name or
/// id is Docker's `No such container: NAME`.
///
/// Book: chapter 7, "The log".
pub fn logs(store: &Path, container: &str) -> anyhow::Result<()> {
    todo!(
        "logs() in src/container.rs: a container's log, each stream to its own (book: chapter 7, \"The log\")"
    )
}

/// `stop CONTAINER`: SIGTERM, then SIGKILL after `timeout` seconds; the record then says exited.
///
/// Book: chapter 7, "stop, kill, rm, wait".
pub fn stop(store: &Path, container: &str, timeout: u64) -> anyhow::Result<()> {
    todo!(
        "stop() in src/container.rs: SIGTERM, then SIGKILL after the timeout (book: chapter 7, \"stop, kill, rm, wait\")"
    )
}

/// `rm CONTAINER`: a stopped container's record and everything of it on the host, from the
/// record alone (each feature's sweep). A running one only with `force`, which kills it first.
///
/// Book: chapter 7, "stop, kill, rm, wait" and "Crashes, and cleaning up from the record alone".
pub fn remove(store: &Path, container: &str, force: bool) -> anyhow::Result<()> {
    todo!(
        "remove() in src/container.rs: a container's record and what it has on the host (book: chapter 7, \"stop, kill, rm, wait\")"
    )
}
