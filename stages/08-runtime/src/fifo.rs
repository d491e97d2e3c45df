//! The exec fifo: how `create` leaves a container ready but not running, and `start` lets it go.
//!
//! The runtime spec splits the lifecycle (runtime.md, "Lifecycle"): `create` builds the
//! container's namespaces, mounts and cgroup and must *not* run the user's program; `start`
//! runs it, from another process, maybe much later. runc does it with a named pipe in the
//! container's state directory, and so does skiff:
//!
//! ```text
//!  create                      container's first process            start
//!  ──────                      ─────────────────────────            ─────
//!  mkfifo exec.fifo
//!  open it O_PATH (fd N)
//!  clone ────────────────────▶ steps: mounts, pivot_root, user, caps
//!                              close the report pipe  ──▶ create sees EOF:
//!  write state.json, exit       "ready", and exits
//!                              open /proc/self/fd/N for writing
//!                                 ... blocks: no reader yet ...
//!                                                                    open exec.fifo for reading
//!                              write "0" ─────────────────────────▶  read "0", remove the fifo
//!                              execve(the user's program)
//! ```
//!
//! Opening a fifo for writing blocks until someone opens it for reading (fifo(7)): the child
//! waits in the kernel, holding nothing but that open. It reaches the fifo through the
//! descriptor it inherited, as `/proc/self/fd/N`, because the host path is outside its root.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chroot::launch::{ExecData, exec_command};
use chroot::{Feature, FeatureError, Plan, Slot};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// The fifo's name in a container's state directory, as runc names it.
pub const FIFO_NAME: &str = "exec.fifo";

/// `/proc/self/fd/N` for the fifo's descriptor, written by the parent before the clone and only
/// read by the child: the child's exec hook is a plain function and takes no data. One runtime
/// process launches one container, so one value is all there is.
static FIFO_VIA_FD: OnceLock<CString> = OnceLock::new();

/// The feature that makes the container's first process wait on the exec fifo before execve.
pub struct ExecFifo {
    path: PathBuf,
    held: Option<OwnedFd>,
    program: FindProgram,
}

impl ExecFifo {
    /// A fifo at `path` (in the container's state directory, which must exist), for a process
    /// that will run `process`.
    pub fn new(path: &Path, process: &chroot::Process) -> Self {
        ExecFifo {
            path: path.to_path_buf(),
            held: None,
            program: FindProgram {
                command: process.args.first().cloned().unwrap_or_default(),
                candidates: process
                    .exec_candidates()
                    .iter()
                    .filter_map(|c| CString::new(c.as_bytes()).ok())
                    .collect(),
            },
        }
    }
}

// ANCHOR: find_program
/// The last step before the wait: the program exists and may be executed, as the process now
/// is (its user, inside its root). Once `create` returns nobody reads the child's errors, so
/// a missing program is found now, while `create` can still say so, as runc's `create` does.
#[derive(Debug, Clone)]
struct FindProgram {
    command: String,
    candidates: Vec<CString>,
}

impl chroot::ChildStep for FindProgram {
    fn run(&self) -> Result<(), Errno> {
        let mut denied = false;
        for candidate in &self.candidates {
            // SAFETY: access(2) on a NUL-terminated path prepared before the clone.
            match Errno::result(unsafe { libc::access(candidate.as_ptr(), libc::X_OK) }) {
                Ok(_) => return Ok(()),
                Err(Errno::EACCES) => denied = true,
                Err(_) => {}
            }
        }
        Err(if denied { Errno::EACCES } else { Errno::ENOENT })
    }

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        match errno {
            Errno::ENOENT => {
                Some("process.args[0] must exist in the root or in process.env's PATH")
            }
            Errno::EACCES => Some("the program is not executable by process.user"),
            _ => None,
        }
    }
}

impl std::fmt::Display for FindProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "find the program {:?} in the container", self.command)
    }
}
// ANCHOR_END: find_program

impl Feature for ExecFifo {
    fn name(&self) -> &'static str {
        "exec fifo"
    }

    fn slot(&self) -> Slot {
        // Last: it replaces the final execve.
        Slot::Stdio
    }

    // ANCHOR: prepare
    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let what = || format!("create the exec fifo {}", self.path.display());
        nix::unistd::mkfifo(&self.path, Mode::from_bits_truncate(0o622))
            .map_err(|e| FeatureError::with(what(), e))?;
        // Writable by anyone: the process may be some user by the time it opens it.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &self.path,
            Mode::from_bits_truncate(0o622),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| FeatureError::with(what(), e))?;
        let held = nix::fcntl::open(&self.path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| FeatureError::with(what(), e))?;
        let via = CString::new(format!("/proc/self/fd/{}", held.as_raw_fd()))
            .map_err(|e| FeatureError::with(what(), e))?;
        if FIFO_VIA_FD.set(via).is_err() {
            return Err(FeatureError::msg(
                "one skiff-runtime process launches one container".to_string(),
            ));
        }
        self.held = Some(held);
        // Until it execs, the process is skiff-runtime's own binary, waiting inside the
        // container: non-dumpable, so no process there may open its /proc/PID/exe (the way
        // CVE-2019-5736 overwrote runc) or its memory without CAP_SYS_PTRACE. execve resets it.
        plan.early.insert(
            0,
            chroot::Step::Prctl {
                option: libc::PR_SET_DUMPABLE,
                args: [0, 0, 0, 0],
                what: "make the waiting process non-dumpable",
            },
        );
        plan.after_root
            .push(chroot::Step::Custom(std::sync::Arc::new(
                self.program.clone(),
            )));
        plan.exec_with = Some(wait_for_start);
        Ok(())
    }
    // ANCHOR_END: prepare

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(FeatureError::with(
                format!("remove {}", self.path.display()),
                e,
            )),
            _ => Ok(()),
        }
    }
}

// ANCHOR: wait_for_start
/// The child's last act before execve, between clone and exec: system calls only.
fn wait_for_start(exec: &ExecData, report_fd: libc::c_int) -> ! {
    // Every step went well: closing the report pipe tells `create` so (it reads end-of-file).
    // SAFETY: closes a descriptor this process owns; nothing uses it afterwards.
    unsafe { libc::close(report_fd) };
    let Some(via) = FIFO_VIA_FD.get() else {
        // SAFETY: _exit ends the process without running any handler.
        unsafe { libc::_exit(125) }
    };
    // Blocks until `start` opens the fifo for reading.
    // SAFETY: `via` is a NUL-terminated string prepared before the clone.
    let fd = unsafe { libc::open(via.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        // SAFETY: as above.
        unsafe { libc::_exit(125) }
    }
    // SAFETY: writes one byte from a static buffer to the descriptor just opened.
    unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
    // No one reads a report any more: a failed execve shows as exit code 126 or 127.
    exec_command(exec, -1)
}
// ANCHOR_END: wait_for_start

/// How `start` failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No fifo: the container was started already, or never created.
    #[error("container is not in the created state (no {0}): it was started already")]
    NotCreated(PathBuf),
    /// The container's process died before it could be started.
    #[error("the container's process {0} is gone: it failed before start; delete it")]
    Gone(i32),
    /// A system call on the fifo failed.
    #[error("{what} {path}")]
    Fifo {
        /// What was done.
        what: &'static str,
        /// The fifo.
        path: PathBuf,
        /// The error.
        #[source]
        source: Errno,
    },
}

// ANCHOR: release
/// `start`: opens the fifo for reading, which unblocks the waiting process, reads its "0", and
/// removes the fifo (so the container is no longer "created"). `alive` says whether the
/// container's process `pid` still exists: a dead one never writes.
pub fn release(path: &Path, pid: i32, alive: impl Fn() -> bool) -> Result<(), StartError> {
    let fifo_err = |what, source| StartError::Fifo {
        what,
        path: path.to_path_buf(),
        source,
    };
    // Non-blocking, so a process that died never makes `start` hang.
    let fd = match nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(StartError::NotCreated(path.to_path_buf())),
        Err(e) => return Err(fifo_err("open", e)),
    };
    let began = Instant::now();
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&fd, &mut byte) {
            Ok(1) => break,
            // No writer yet (0) or nothing written yet: the process is on its way to the open.
            Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(e) => return Err(fifo_err("read", e)),
        }
        if !alive() {
            return Err(StartError::Gone(pid));
        }
        if began.elapsed() > Duration::from_secs(10) {
            return Err(fifo_err("wait for the container on", Errno::ETIMEDOUT));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::remove_file(path).map_err(|e| {
        fifo_err(
            "remove",
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })
}
// ANCHOR_END: release
