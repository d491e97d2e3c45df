//! The container's stdin, stdout and stderr: pipes its monitor holds, or a terminal.
//!
//! Until stage 06 the container inherited the engine's own descriptors 0, 1 and 2, so its
//! output went wherever the engine's went, and ended with it. From stage 07 the container
//! outlives the command that started it, so its streams belong to its monitor:
//!
//! - **pipes** (without `-t`): stdout and stderr are pipes the monitor reads and logs; stdin is
//!   a pipe the monitor fills from attached clients (`-i`), or `/dev/null`;
//! - **a terminal** (`-t`): a pseudo-terminal pair, made *inside* the container, from the
//!   container's own `/dev/pts` (a private devpts instance, stage 02), so `tty` there prints
//!   `/dev/pts/0`. The child opens `/dev/ptmx` (the master), gets the matching slave with
//!   `TIOCGPTPEER`, sends the master to the monitor over a unix socket (`SCM_RIGHTS`), starts a
//!   session of its own and makes the slave its controlling terminal and its 0, 1 and 2. runc
//!   does the same with its "console socket".
//!
//! Either way the child only makes system calls on descriptors prepared before the clone (the
//! fork-safety rule of stage 01), and the feature's slot is the last: after the root changed
//! (`/dev/ptmx` is the container's) and after the privileges dropped. See pipe(2), pty(7),
//! ioctl_tty(2), unix(7) (`SCM_RIGHTS`).

use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use chroot::{ChildStep, Feature, FeatureError, Plan, Slot, Started, Step};

use crate::pump::Ends;
use nix::errno::Errno;
use nix::fcntl::OFlag;

/// The feature, and what the monitor keeps of it.
pub struct Stdio {
    mode: Mode,
    /// The process is killed when its parent (the monitor, or `exec`'s client) ends.
    die_with_parent: bool,
}

enum Mode {
    Pipes {
        /// The child's ends: stdin (a pipe's read end or /dev/null), stdout, stderr.
        child: Option<[OwnedFd; 3]>,
    },
    Terminal {
        /// The child's end of the console socket.
        child: Option<OwnedFd>,
        /// `/dev/ptmx`, as the container sees it.
        ptmx: CString,
    },
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC)
}

impl Stdio {
    /// Pipes: returns the feature and the monitor's ends. With `stdin` the container reads
    /// what the monitor writes; without, `/dev/null`.
    pub fn pipes(stdin: bool) -> std::io::Result<(Stdio, Ends)> {
        let (child_in, parent_in) = if stdin {
            let (read, write) = pipe()?;
            (read, Some(write))
        } else {
            (File::open("/dev/null")?.into(), None)
        };
        let (out_read, out_write) = pipe()?;
        let (err_read, err_write) = pipe()?;
        let stdio = Stdio {
            mode: Mode::Pipes {
                child: Some([child_in, out_write, err_write]),
            },
            die_with_parent: true,
        };
        let ends = Ends::Pipes {
            stdin: parent_in,
            stdout: out_read,
            stderr: err_read,
        };
        Ok((stdio, ends))
    }

    /// A terminal: returns the feature and the monitor's end of the console socket, where the
    /// container's terminal master arrives once it started ([`receive_master`]).
    pub fn terminal() -> std::io::Result<(Stdio, OwnedFd)> {
        let (parent, child) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )?;
        let stdio = Stdio {
            mode: Mode::Terminal {
                child: Some(child),
                ptmx: CString::new("/dev/ptmx").map_err(std::io::Error::other)?,
            },
            die_with_parent: true,
        };
        Ok((stdio, parent))
    }

    /// `/dev/null` for all three, and a process that outlives its parent: `exec -d`, whose
    /// output nobody reads (Docker discards it too).
    pub fn detached() -> std::io::Result<Stdio> {
        let null = || -> std::io::Result<OwnedFd> {
            Ok(std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?
                .into())
        };
        Ok(Stdio {
            mode: Mode::Pipes {
                child: Some([null()?, null()?, null()?]),
            },
            die_with_parent: false,
        })
    }
}

impl Feature for Stdio {
    fn name(&self) -> &'static str {
        "stdio"
    }

    fn slot(&self) -> Slot {
        Slot::Stdio
    }

    // ANCHOR: prepare
    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let step: Arc<dyn ChildStep> = match &self.mode {
            Mode::Pipes { child: Some(fds) } => Arc::new(Dup2All {
                fds: [fds[0].as_raw_fd(), fds[1].as_raw_fd(), fds[2].as_raw_fd()],
            }),
            Mode::Terminal {
                child: Some(socket),
                ptmx,
            } => Arc::new(Console {
                socket: socket.as_raw_fd(),
                ptmx: ptmx.clone(),
            }),
            _ => return Err(FeatureError::msg("the container's stdio was used already")),
        };
        plan.after_root.push(Step::Custom(step));
        // A container of skiff's waits for its monitor only to exec (see `Plan::go_at_exec`).
        plan.go_at_exec = true;
        if !self.die_with_parent {
            return Ok(());
        }
        // The container dies with its monitor: a container nobody waits for could never be
        // reported, logged or cleaned up. Last, because a change of user clears it.
        plan.after_root.push(Step::Prctl {
            option: libc::PR_SET_PDEATHSIG,
            args: [libc::SIGKILL as libc::c_ulong, 0, 0, 0],
            what: "ask to be killed with the monitor",
        });
        Ok(())
    }
    // ANCHOR_END: prepare

    fn started(&mut self, _child: &Started) -> Result<(), FeatureError> {
        // The child has its copies; the monitor's would keep the pipes open forever.
        match &mut self.mode {
            Mode::Pipes { child } => drop(child.take()),
            Mode::Terminal { child, .. } => drop(child.take()),
        }
        Ok(())
    }
}

// ANCHOR: dup2
/// In the child: the prepared descriptors become 0, 1 and 2.
#[derive(Debug)]
struct Dup2All {
    fds: [RawFd; 3],
}

impl fmt::Display for Dup2All {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connect the container's stdin, stdout and stderr")
    }
}

impl ChildStep for Dup2All {
    fn run(&self) -> Result<(), Errno> {
        for (target, &fd) in (0..).zip(self.fds.iter()) {
            // SAFETY: dup2(2) on descriptors this process holds; the target is 0, 1 or 2.
            Errno::result(unsafe { libc::dup2(fd, target) })?;
        }
        Ok(())
    }
}
// ANCHOR_END: dup2

// ANCHOR: console
/// In the child: a terminal from the container's own devpts, its master sent to the monitor.
#[derive(Debug)]
struct Console {
    socket: RawFd,
    ptmx: CString,
}

impl fmt::Display for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "give the container a terminal")
    }
}

impl ChildStep for Console {
    fn run(&self) -> Result<(), Errno> {
        // SAFETY: every call below is a system call on descriptors this process holds and on
        // stack buffers; nothing allocates.
        unsafe {
            let master = Errno::result(libc::open(
                self.ptmx.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            ))?;
            let unlock: libc::c_int = 0;
            Errno::result(libc::ioctl(master, libc::TIOCSPTLCK, &unlock))?;
            let slave = Errno::result(libc::ioctl(
                master,
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY,
            ))?;
            chroot::fdpass::send_fd(self.socket, master)?;
            libc::close(master);
            Errno::result(libc::setsid())?;
            Errno::result(libc::ioctl(slave, libc::TIOCSCTTY, 0))?;
            for target in 0..3 {
                Errno::result(libc::dup2(slave, target))?;
            }
            if slave > 2 {
                libc::close(slave);
            }
        }
        Ok(())
    }

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        (errno == Errno::ENOENT).then_some("-t needs the container's /dev/ptmx (a mount namespace)")
    }
}

// ANCHOR_END: console

/// In the monitor, once the container runs: the terminal master its child sent.
pub fn receive_master(socket: &OwnedFd) -> std::io::Result<OwnedFd> {
    chroot::fdpass::receive_fd(socket)?
        .ok_or_else(|| std::io::Error::other("the container sent no terminal: its start failed"))
}

/// Sets the terminal size of the container's terminal (`master`).
pub fn resize(master: &OwnedFd, rows: u16, cols: u16) {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize that lives across the call.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
}
