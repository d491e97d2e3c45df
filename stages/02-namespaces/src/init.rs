//! `--init`: a tiny PID 1 of skiff's own, as `docker run --init` runs tini.
//!
//! In a PID namespace the first process has two duties no ordinary program expects:
//!
//! - **reaping**: orphans are re-parented to PID 1, and their exit status stays in the process
//!   table (a zombie) until PID 1 calls wait(2) for them;
//! - **signals**: the kernel delivers to PID 1 only the signals it has a handler for, so a
//!   program that relies on the default action of SIGTERM (exit) ignores `docker stop`.
//!
//! The init here is the container's first process itself: after all the setup steps, instead
//! of exec'ing the command, it forks a child that execs it, then loops: wait for a signal, pass
//! it on to the command, reap every child that exited, and exit with the command's status once
//! the command is gone. It runs between clone and exec of a possibly multi-threaded engine, so
//! it makes system calls only. See pid_namespaces(7), wait(2), sigwaitinfo(2).

use chroot::launch::{ExecData, clone3, exec_command};

/// Signals the kernel raises for a fault of the process itself: never blocked, so they still
/// kill the init if it faults.
const SYNCHRONOUS: [libc::c_int; 6] = [
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGTRAP,
    libc::SIGSYS,
];

// ANCHOR: init
/// Runs the command under a minimal init. Never returns: exits with the command's status, or
/// 128 + N when signal N killed it.
pub fn run_under_init(exec: &ExecData, report_fd: libc::c_int) -> ! {
    // SAFETY: sigset_t is plain data; sigfillset/sigdelset/sigprocmask are async-signal-safe.
    let (all, empty) = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        for signal in SYNCHRONOUS {
            libc::sigdelset(&mut all, signal);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        // Blocked signals are queued for sigwaitinfo, even for PID 1.
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        (all, empty)
    };
    let command = match clone3(0).or_else(plain_fork) {
        Ok(None) => {
            // SAFETY: restores the empty mask the command expects; async-signal-safe.
            unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) };
            exec_command(exec, report_fd)
        }
        Ok(Some(pid)) => pid.as_raw(),
        // SAFETY: _exit ends the process without touching the parent's state.
        Err(_) => unsafe { libc::_exit(125) },
    };
    // Only the command reports to the engine now: the engine sees end-of-file once it execs.
    // SAFETY: closes our copy of the report pipe, once.
    unsafe { libc::close(report_fd) };
    loop {
        // SAFETY: siginfo_t is plain data, filled by the kernel.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits for one of the blocked signals; the kernel writes into `info`.
        let signal = unsafe { libc::sigwaitinfo(&all, &mut info) };
        if signal < 0 {
            continue; // EINTR
        }
        if signal != libc::SIGCHLD {
            // SAFETY: passes the signal on to the command.
            unsafe { libc::kill(command, signal) };
            continue;
        }
        // SIGCHLD: reap every child that has exited, the command or an orphan.
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into a local integer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == command {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                // SAFETY: ends PID 1; the kernel then kills whatever is left in the namespace.
                unsafe { libc::_exit(code) };
            }
        }
    }
}
// ANCHOR_END: init

/// clone(2) with no flag but the exit signal, a plain fork, where clone3 is answered `ENOSYS`:
/// Docker's seccomp profile does that, so that programs fall back to clone, whose flags a
/// filter can see (clone3's are in memory, out of its reach).
fn plain_fork(errno: nix::errno::Errno) -> Result<Option<nix::unistd::Pid>, nix::errno::Errno> {
    if errno != nix::errno::Errno::ENOSYS {
        return Err(errno);
    }
    // SAFETY: clone with no stack and no flags behaves like fork(2), as clone3 above does; the
    // child keeps to system calls on prepared data.
    let rc = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
    match nix::errno::Errno::result(rc)? {
        0 => Ok(None),
        pid => Ok(Some(nix::unistd::Pid::from_raw(
            libc::pid_t::try_from(pid).map_err(|_| nix::errno::Errno::EOVERFLOW)?,
        ))),
    }
}

/// The `--init` feature: the container's first process becomes the init above.
pub struct Init;

impl chroot::Feature for Init {
    fn name(&self) -> &'static str {
        "init"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Init
    }

    fn prepare(&mut self, plan: &mut chroot::Plan) -> Result<(), chroot::FeatureError> {
        plan.exec_with = Some(run_under_init);
        Ok(())
    }
}
