//! `bench-launcher`: starts one contestant of the bench, times it from fork to exit, and reports
//! the peak memory of what it started.
//!
//! ```text
//! bench-launcher TIMEOUT_MS STDOUT_FILE STDERR_FILE PROGRAM [ARG...]
//! wall_ns=2811042 maxrss_kib=2468 status=exit:0
//! ```
//!
//! `labs/build.rs` compiles this file on its own, as a small static program (like the probe): it
//! is not a module of the `labs` crate. It exists because of how Linux counts peak memory. A
//! forked child starts as a copy of its parent, and its peak resident set ("high-water mark")
//! starts at the parent's size; execve(2) keeps that peak in the process's `ru_maxrss`. A
//! contestant forked by the harness itself would report at least the harness's own memory. A
//! contestant forked by this launcher inherits only the launcher's own megabyte or so.
//!
//! The clock starts just before the fork and stops when the pidfd of the child (pidfd_open(2))
//! becomes readable, which happens the moment it exits; poll(2) waits for that with the timeout,
//! so there is no polling loop to blur the figure. wait4(2) then reaps the child and returns its
//! resource usage: `ru_maxrss` (KiB) is the largest peak RSS of the child and of every
//! descendant it waited for (getrusage(2)): the biggest single process of the tree, not a sum.
//! On timeout the child's whole process group is killed.
//!
//! Only the standard library is available here, so the four C functions are declared by hand
//! (64-bit Linux layouts).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// `struct pollfd` from `<poll.h>`.
#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

/// `struct rusage` from `<sys/resource.h>` on 64-bit Linux: two timevals, then 14 longs, the
/// first of which is `ru_maxrss`. Only that one is read; the kernel fills the others.
#[repr(C)]
#[allow(dead_code)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    maxrss: i64,
    rest: [i64; 13],
}

unsafe extern "C" {
    fn syscall(number: i64, ...) -> i64;
    fn poll(fds: *mut PollFd, count: u64, timeout_ms: i32) -> i32;
    fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut Rusage) -> i32;
    fn kill(pid: i32, signal: i32) -> i32;
}

/// pidfd_open's number: the same on every architecture (it is newer than the split tables).
const SYS_PIDFD_OPEN: i64 = 434;
const POLLIN: i16 = 1;
const SIGKILL: i32 = 9;

fn main() -> ExitCode {
    match launch(std::env::args().skip(1).collect()) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("bench-launcher: {message}");
            ExitCode::from(2)
        }
    }
}

fn launch(args: Vec<String>) -> Result<String, String> {
    let [timeout, stdout, stderr, program, rest @ ..] = args.as_slice() else {
        return Err(
            "usage: bench-launcher TIMEOUT_MS STDOUT_FILE STDERR_FILE PROGRAM [ARG...]".into(),
        );
    };
    let timeout: u64 = timeout
        .parse()
        .map_err(|_| format!("bad timeout {timeout:?}"))?;
    let stdout = File::create(stdout).map_err(|e| format!("create {stdout}: {e}"))?;
    let stderr = File::create(stderr).map_err(|e| format!("create {stderr}: {e}"))?;
    let mut command = Command::new(program);
    command
        .args(rest)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);

    // ANCHOR: clock
    let start = Instant::now();
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let pid = i32::try_from(child.id()).map_err(|_| "pid out of range".to_string())?;
    let exited = wait_for_exit(pid, Duration::from_millis(timeout));
    let wall = start.elapsed();
    if !matches!(exited, Ok(true)) {
        // SAFETY: kill(2) with a negative pid signals the child's process group; the child is
        // not reaped yet, so its pid cannot have been reused.
        unsafe { kill(-pid, SIGKILL) };
    }
    let (status, maxrss) = reap(pid)?;
    // ANCHOR_END: clock
    let status = match exited {
        Ok(true) => status,
        Ok(false) => "timeout".to_string(),
        Err(message) => return Err(message),
    };
    Ok(format!(
        "wall_ns={} maxrss_kib={maxrss} status={status}",
        wall.as_nanos()
    ))
}

/// Waits until `pid` exits (`true`) or `timeout` passes (`false`).
fn wait_for_exit(pid: i32, timeout: Duration) -> Result<bool, String> {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor or -1.
    let fd = unsafe { syscall(SYS_PIDFD_OPEN, i64::from(pid), 0i64) };
    let fd = i32::try_from(fd)
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| format!("pidfd_open: {}", std::io::Error::last_os_error()))?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut pollfd = PollFd {
            fd,
            events: POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack, and its count.
        match unsafe { poll(&mut pollfd, 1, millis) } {
            0 => return Ok(false),
            n if n > 0 => return Ok(true),
            _ => {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(format!("poll: {error}"));
                }
            }
        }
    }
}

/// Reaps `pid`: its status (`exit:N` or `signal:N`) and `ru_maxrss` in KiB.
fn reap(pid: i32) -> Result<(String, i64), String> {
    let mut status = 0i32;
    let mut usage = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        maxrss: 0,
        rest: [0; 13],
    };
    loop {
        // SAFETY: pid is our unreaped child; both pointers are to live stack values.
        let rc = unsafe { wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4: {error}"));
        }
    }
    let signal = status & 0x7f;
    let status = if signal == 0 {
        format!("exit:{}", (status >> 8) & 0xff)
    } else {
        format!("signal:{signal}")
    };
    Ok((status, usage.maxrss))
}
