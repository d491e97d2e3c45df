//! The launch: the one idea of stage 01, and yours to write. Fill the pieces in this order,
//! running the check named in each after it (book: chapter 1, "Build it yourself"):
//!
//! 1. [`check_rootfs`]  — `labs check 01 --bin ./target/debug/my-skiff-01 rootfs-`
//! 2. [`environment`]   — `... bad-env`
//! 3. [`spawn`]         — nothing runs to the end yet: [`wait`] is next
//! 4. [`wait`]          — `... stdout`, `... exit-code`, `... death-by-signal`, then the whole lab
//!
//! chroot(2) is the system call of this stage; fork(2), execve(2) and waitpid(2) carry it.
// Until a piece is written its arguments go unused.
#![allow(unused_variables, dead_code)]

use std::path::Path;

use nix::unistd::Pid;

/// What runs: the command, its environment, and the directory it starts in.
#[derive(Debug)]
pub struct Process {
    /// The program (looked up in `PATH` inside the root when it has no `/`) and its arguments.
    pub command: Vec<String>,
    /// The environment, exactly: nothing of the engine's own leaks in.
    pub env: Vec<(String, String)>,
    /// The working directory, inside the root.
    pub workdir: String,
}

/// The command could not be started: 126 when it cannot be executed, 127 when it is not found
/// (Docker's codes, which `main` exits with).
#[derive(Debug)]
pub struct CannotRun {
    /// 126 or 127.
    pub code: i32,
    /// What failed, on which path.
    pub message: String,
}

impl std::fmt::Display for CannotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CannotRun {}

/// Checks that `rootfs` is a directory, before anything else happens, with an error (exit 125)
/// that names the path.
///
/// Book: chapter 1, "What an engine must get right before it isolates anything".
pub fn check_rootfs(rootfs: &Path) -> anyhow::Result<()> {
    todo!(
        "check_rootfs() in src/launch.rs: refuse a missing --rootfs, naming it (book: chapter 1, \"What an engine must get right before it isolates anything\")"
    )
}

/// The container's environment from the `-e` flags: `KEY=VALUE`, or `KEY` to copy the engine's
/// value; a bad one (`=oops`) is an error that names it. Nothing else of the engine's
/// environment goes in.
///
/// Book: chapter 1, "The process description".
pub fn environment(flags: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    todo!(
        "environment() in src/launch.rs: the container's environment from -e (book: chapter 1, \"The process description\")"
    )
}

/// Starts `process` with `rootfs` as its root: fork, then in the child chroot(2), chdir(2) to the
/// working directory and execve(2) — with nothing but system calls between fork and exec, on
/// data prepared before the fork. A command that cannot be run is a [`CannotRun`].
///
/// Book: chapter 1, "Fork safety: the child follows a plan" and "The launch sequence".
pub fn spawn(rootfs: &Path, process: &Process) -> anyhow::Result<Pid> {
    todo!(
        "spawn() in src/launch.rs: fork, chroot, chdir, exec (book: chapter 1, \"Fork safety: the child follows a plan\" and \"The launch sequence\")"
    )
}

/// Waits for the child, forwarding the signals the engine gets to it, and returns the exit code
/// the engine passes back: the command's own, or 128 + N after death by signal N.
///
/// Book: chapter 1, "What an engine must get right before it isolates anything".
pub fn wait(child: Pid) -> anyhow::Result<i32> {
    todo!(
        "wait() in src/launch.rs: wait and pass the exit status back (book: chapter 1, \"What an engine must get right before it isolates anything\")"
    )
}
