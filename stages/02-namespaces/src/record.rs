//! The container record: everything the engine knows about a container, on disk.
//!
//! Until stage 06 a container lived exactly as long as the `run` that held it in memory. From
//! stage 07 on it is an object with a life of its own, as in Docker: created, running, exited,
//! started again, removed, by one command after another. So nothing about it may exist only in
//! a process's memory: its configuration, its state and the host resources it holds are written
//! here, in `<root>/containers/<id>/config.json`, next to the files the stages keep there. A
//! command that finds the record can show the container, stop it, or sweep away what it left.
//!
//! A process is named by its pid *and* its start time (field 22 of proc(5)'s `/proc/PID/stat`):
//! pids are reused, and a record that says "pid 4242" must never make `stop` kill whatever
//! process has that number today.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The record format's version: a reader refuses a record from a newer engine.
pub const RECORD_VERSION: u32 = 1;

// ANCHOR: record
/// One container's record. `S` is the run's flags as the stage that made the container parsed
/// them (stage 07's `RunArgs`), kept to prepare the same container again at each start; code
/// that only needs the rest reads it as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record<S = serde_json::Value> {
    /// [`RECORD_VERSION`] when written.
    pub version: u32,
    /// 64 hex digits.
    pub id: String,
    /// Unique in the store: `--name`, or a made-up `adjective_noun`.
    pub name: String,
    /// When it was created, RFC 3339.
    pub created: String,
    /// The image as the user named it (`busybox`), or the `--rootfs` directory.
    pub image: String,
    /// The image's id (`sha256:…`); empty for a `--rootfs` directory.
    #[serde(default)]
    pub image_id: String,
    /// What it runs and how, resolved from the image and the flags at `create`.
    pub config: Config,
    /// Its cgroup, below each hierarchy's root (`skiff/<id>`): where `stats` reads and a sweep
    /// looks.
    #[serde(default)]
    pub cgroup: Option<String>,
    /// Where it is in its life.
    pub state: State,
    /// The flags it was created with.
    pub spec: S,
}
// ANCHOR_END: record

/// The resolved configuration: Docker's `Config` fields that skiff has, as `inspect` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    /// The hostname inside.
    pub hostname: String,
    /// `--user`, or the image's `User`; empty for root.
    pub user: String,
    /// `KEY=VALUE` entries: the image's, then `-e`.
    pub env: Vec<String>,
    /// The command: the image's `Cmd`, or what followed the image name.
    pub cmd: Vec<String>,
    /// The image's `Entrypoint`, or `--entrypoint`.
    pub entrypoint: Vec<String>,
    /// The working directory inside.
    pub working_dir: String,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
    /// The signal `stop` sends first (`SIGTERM`).
    pub stop_signal: String,
    /// Seconds `stop` waits before SIGKILL, when `--stop-timeout` set it.
    pub stop_timeout: Option<u32>,
    /// `-t`: a terminal of its own.
    pub tty: bool,
    /// `-i`: its stdin stays open.
    pub open_stdin: bool,
    /// The image as the user named it.
    pub image: String,
}

// ANCHOR: status
/// Where a container is in its life (Docker's words).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started.
    #[default]
    Created,
    /// Its command runs.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// Ended, and waiting to be started again by its restart policy.
    Restarting,
    /// Ended.
    Exited,
    /// Its removal failed halfway: only `rm` can help it.
    Dead,
}
// ANCHOR_END: status

impl Status {
    /// The lowercase word (`running`), as in `docker inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

// ANCHOR: state
/// A container's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Where it is in its life.
    pub status: Status,
    /// Its first process while it runs.
    pub pid: Option<ProcessRef>,
    /// Its monitor (stage 07), which waits for it, while there is one.
    pub monitor: Option<ProcessRef>,
    /// How its last run ended: the exit code, 128 + N for a death by signal N.
    pub exit_code: i32,
    /// The kernel's OOM killer ended its last run.
    pub oom_killed: bool,
    /// Why its last start failed, or what happened to its monitor.
    pub error: String,
    /// The last start, RFC 3339.
    pub started_at: Option<String>,
    /// The last end, RFC 3339.
    pub finished_at: Option<String>,
    /// How often its restart policy started it again.
    pub restart_count: u32,
    /// `stop` or `kill` ended it on purpose: the restart policy leaves it stopped.
    pub stopped_by_user: bool,
}
// ANCHOR_END: state

impl State {
    /// It has processes: running or paused (a restarting container has none).
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused)
    }
}

// ANCHOR: process_ref
/// A process, named so that a reused pid is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    /// Its pid, as the host sees it.
    pub pid: i32,
    /// When it started, in clock ticks after boot (`/proc/PID/stat`, field 22).
    pub start: u64,
}

impl ProcessRef {
    /// The process `pid` as it is now, or `None` when there is no such process.
    pub fn of(pid: i32) -> Option<ProcessRef> {
        start_time(pid).map(|start| ProcessRef { pid, start })
    }

    /// This very process still runs: it exists, with the same start time, and is not a
    /// zombie (an ended process its parent has not reaped yet).
    pub fn is_alive(&self) -> bool {
        stat(self.pid)
            .is_some_and(|(state, start)| start == self.start && !matches!(state, 'Z' | 'X'))
    }

    /// A pidfd of this very process (pidfd_open(2)), or `None` when it is gone: checked after
    /// opening, so the descriptor cannot hold a process that reused the pid.
    pub fn pidfd(&self) -> Option<std::os::fd::OwnedFd> {
        // SAFETY: pidfd_open takes a pid and flags; it returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: the kernel just returned this descriptor, owned by nobody else.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        self.is_alive().then_some(fd)
    }
}

/// Field 22 of `/proc/PID/stat`, the start time.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Fields 3 and 22 of `/proc/PID/stat`: the state (`R`, `S`, `Z` for a zombie...) and the
/// start time. The second field, the command name, is in parentheses and may hold spaces and
/// parentheses itself, so the fields are counted after the last `)`.
fn stat(pid: i32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3), field 22 is the 19th.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}
// ANCHOR_END: process_ref

/// `<root>/containers/<id>`: the container's state directory.
pub fn container_dir(root: &std::path::Path, id: &str) -> PathBuf {
    root.join("containers").join(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = ProcessRef::of(std::process::id().cast_signed()).unwrap();
        assert!(me.is_alive());
        let other = ProcessRef {
            start: me.start + 1,
            ..me
        };
        assert!(!other.is_alive());
        assert_eq!(ProcessRef::of(i32::MAX), None);
    }

    #[test]
    fn a_record_reads_back_the_same() {
        let record: Record = Record {
            version: RECORD_VERSION,
            id: "a".repeat(64),
            name: "web".into(),
            created: "2026-01-01T00:00:00Z".into(),
            image: "busybox".into(),
            image_id: String::new(),
            config: Config {
                cmd: vec!["httpd".into()],
                ..Config::default()
            },
            cgroup: Some(format!("skiff/{}", "a".repeat(64))),
            state: State {
                status: Status::Running,
                pid: Some(ProcessRef { pid: 7, start: 9 }),
                ..State::default()
            },
            spec: serde_json::json!({"detach": true}),
        };
        let text = serde_json::to_string(&record).unwrap();
        assert!(text.contains("\"Cmd\":[\"httpd\"]"), "{text}");
        assert!(text.contains("\"status\":\"running\""), "{text}");
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back.state, record.state);
        assert_eq!(back.config, record.config);
    }
}
