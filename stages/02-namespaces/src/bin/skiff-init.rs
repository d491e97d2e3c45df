//! `skiff-init`: the small init that `--init` runs as a container's PID 1, as `docker run
//! --init` runs tini (Docker installs it as `/sbin/docker-init`).
//!
//! ```text
//! skiff-init [--] COMMAND [ARG...]
//! ```
//!
//! In a PID namespace the first process has two duties no ordinary program expects:
//!
//! - **reaping**: orphans are re-parented to PID 1, and their exit status stays in the process
//!   table (a zombie) until PID 1 calls wait(2) for them;
//! - **signals**: the kernel delivers to PID 1 only the signals it has a handler for, so a
//!   program that relies on the default action of SIGTERM (exit) ignores `docker stop`.
//!
//! So this init starts the command as its child, in a process group of its own (made the
//! terminal's foreground group when there is a terminal), then loops: wait for a signal; pass
//! it on to the command's whole process group, as `tini -g` does, so a shell's pipeline stops
//! with it; on SIGCHLD reap every child that exited, the command or an orphan. When the command
//! is gone it exits with the command's status, or 128 + N when signal N killed it.
//!
//! It is a program of its own, not a copy of the engine: the engine bind-mounts it read-only
//! into the container and execs it with the container's environment and descriptors 0-2 only,
//! so nothing of the engine (its binary, its environment, its pipes) is ever PID 1 of a
//! container. The engine embeds it: `build.rs` compiles this file with `+crt-static`, because a
//! container's root need not hold a C library. It therefore uses the standard library only, and
//! declares the few C functions it needs itself. Cargo also builds it as a `[[bin]]` of the
//! package, so the workspace's lints check it, and it can be tried on the host.
//!
//! See pid_namespaces(7), wait(2), sigwaitinfo(2), setpgid(2), tcsetpgrp(3), and tini's README.

use std::ffi::{CString, c_char};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// glibc's `sigset_t`: 1024 bits.
#[repr(C)]
struct SigSet([u64; 16]);

unsafe extern "C" {
    fn sigfillset(set: *mut SigSet) -> i32;
    fn sigdelset(set: *mut SigSet, signal: i32) -> i32;
    fn sigprocmask(how: i32, set: *const SigSet, old: *mut SigSet) -> i32;
    fn sigwaitinfo(set: *const SigSet, info: *mut u8) -> i32;
    fn signal(signal: i32, handler: usize) -> usize;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, signal: i32) -> i32;
    fn getpid() -> i32;
    fn getpgrp() -> i32;
    fn setpgid(pid: i32, pgid: i32) -> i32;
    fn fork() -> i32;
    fn execvp(file: *const c_char, argv: *const *const c_char) -> i32;
    fn _exit(code: i32) -> !;
    fn isatty(fd: i32) -> i32;
    fn tcsetpgrp(fd: i32, pgrp: i32) -> i32;
    fn prctl(option: i32, ...) -> i32;
}

const SIG_BLOCK: i32 = 0;
const SIG_SETMASK: i32 = 2;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
const WNOHANG: i32 = 1;
const PR_SET_CHILD_SUBREAPER: i32 = 36;

const SIGCHLD: i32 = 17;
const SIGPIPE: i32 = 13;
const SIGTTIN: i32 = 21;
const SIGTTOU: i32 = 22;

/// Signals the kernel raises for a fault of the process itself: never blocked, so they still
/// kill the init if it faults.
const SYNCHRONOUS: [i32; 6] = [
    8,  // SIGFPE
    4,  // SIGILL
    11, // SIGSEGV
    7,  // SIGBUS
    5,  // SIGTRAP
    31, // SIGSYS
];

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!(
            "usage: skiff-init [--] COMMAND [ARG...]: runs COMMAND as its child, forwards signals to it and reaps zombies"
        );
        std::process::exit(1);
    }
    let (waited, original) = block_signals();
    // Not PID 1 (`--pid host`): orphans still come to us, not to the host's init.
    // SAFETY: getpid(2) takes nothing; prctl(2) takes integers and touches no memory of ours.
    let subreaper = unsafe { getpid() == 1 || prctl(PR_SET_CHILD_SUBREAPER, 1u64) == 0 };
    if !subreaper {
        eprintln!(
            "skiff-init: cannot become a subreaper: {}",
            std::io::Error::last_os_error()
        );
    }
    let command = match spawn(&args, &original) {
        Ok(pid) => pid,
        Err(err) => {
            eprintln!("skiff-init: start {:?}: {err}", args[0]);
            std::process::exit(126);
        }
    };
    std::process::exit(supervise(command, &waited));
}

// ANCHOR: block
/// Blocks every signal but the synchronous ones, so that each waits, queued, for sigwaitinfo
/// (even for PID 1, which would otherwise never see a signal it has no handler for), and ignores
/// SIGTTIN and SIGTTOU, so the init may hand the terminal to the command. Returns the set to
/// wait for and the mask to give back to the command.
fn block_signals() -> (SigSet, SigSet) {
    let mut all = SigSet([0; 16]);
    let mut original = SigSet([0; 16]);
    // SAFETY: the sets are ours and as large as glibc's sigset_t; the calls only write them
    // and the process's mask and dispositions.
    unsafe {
        sigfillset(&mut all);
        for signal in SYNCHRONOUS.into_iter().chain([SIGTTIN, SIGTTOU]) {
            sigdelset(&mut all, signal);
        }
        sigprocmask(SIG_BLOCK, &all, &mut original);
        signal(SIGTTIN, SIG_IGN);
        signal(SIGTTOU, SIG_IGN);
    }
    (all, original)
}
// ANCHOR_END: block

// ANCHOR: spawn
/// Starts the command as a child in a process group of its own, made the terminal's foreground
/// group when stdin is a terminal, with the signal mask and dispositions a program expects. The
/// child searches `PATH` and execs (execvp(3)); when that fails it says why and exits 127 (no
/// such command) or 126 (it cannot run), codes the init then passes on as any other. (No pipe
/// carries the error back, as std's `Command` would: for a moment after the exec the init would
/// hold a descriptor the command can see in `/proc/1/fd`.)
fn spawn(args: &[String], original: &SigSet) -> std::io::Result<i32> {
    let argv: Vec<CString> = args
        .iter()
        .map(|arg| CString::new(arg.as_bytes()))
        .collect::<Result<_, _>>()?;
    let pointers: Vec<*const c_char> = argv
        .iter()
        .map(|arg| arg.as_ptr())
        .chain([std::ptr::null()])
        .collect();
    // SAFETY: fork(2) in a single-threaded process: the child may do anything the parent could.
    match unsafe { fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => exec_command(&args[0], &pointers, original),
        pid => {
            // Also in the parent, so a signal forwarded at once finds the group.
            // SAFETY: setpgid(2) takes integers only; EACCES after the child's exec is fine.
            unsafe { setpgid(pid, pid) };
            Ok(pid)
        }
    }
}

/// The child: its own process group, the terminal, the signals as the command expects them,
/// then execvp. Only returns by exiting.
fn exec_command(command: &str, argv: &[*const c_char], original: &SigSet) -> ! {
    // SAFETY: system calls on integers and on data prepared before the fork; argv is a
    // NULL-terminated array of NUL-terminated strings that outlive the call.
    unsafe {
        setpgid(0, 0);
        // Not our controlling terminal (ENOTTY) or none at all (ENXIO): nothing to hand over.
        if isatty(0) == 1 {
            tcsetpgrp(0, getpgrp());
        }
        for signal_number in [SIGTTIN, SIGTTOU, SIGPIPE] {
            signal(signal_number, SIG_DFL);
        }
        sigprocmask(SIG_SETMASK, original, std::ptr::null_mut());
        execvp(argv[0], argv.as_ptr());
    }
    // Docker's codes: 127 when there is no such command, 126 when it cannot run.
    let err = std::io::Error::last_os_error();
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        eprintln!(
            "skiff-init: exec {command:?}: executable file not found in the container's root or its $PATH"
        );
        127
    } else {
        eprintln!(
            "skiff-init: exec {command:?}: {err}: check that it is an executable file for this machine"
        );
        126
    };
    // SAFETY: ends the child without running the parent's exit handlers twice.
    unsafe { _exit(code) }
}
// ANCHOR_END: spawn

// ANCHOR: supervise
/// The init's loop: forwards every signal but SIGCHLD to the command's process group, and on
/// SIGCHLD reaps every child that has exited. Returns the command's exit code once it is gone.
fn supervise(command: i32, waited: &SigSet) -> i32 {
    loop {
        // SAFETY: waits for one of the blocked signals; no siginfo is asked for.
        let signal = unsafe { sigwaitinfo(waited, std::ptr::null_mut()) };
        if signal < 0 {
            continue; // EINTR
        }
        if signal != SIGCHLD {
            // The whole group, as `tini -g`; the command alone if it has left its group.
            // SAFETY: kill(2) takes integers only.
            if unsafe { kill(-command, signal) } != 0 {
                // SAFETY: as above.
                unsafe { kill(command, signal) };
            }
            continue;
        }
        if let Some(code) = reap(command) {
            return code;
        }
    }
}

/// Reaps every child that has exited, the command or an orphan; the command's exit code once
/// it is among them. Orphans that exit later are reaped by the kernel when PID 1 exits.
fn reap(command: i32) -> Option<i32> {
    let mut code = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into a local integer.
        let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
        if pid <= 0 {
            return code;
        }
        if pid == command {
            let status = ExitStatus::from_raw(status);
            code = status.code().or(status.signal().map(|signal| 128 + signal));
        }
    }
}
// ANCHOR_END: supervise
