//! `process.terminal` and `--console-socket`: the container gets a terminal of its own, and its
//! caller gets the terminal's master end (runc(8), "--console-socket"; pty(7), unix(7)).
//!
//! A pseudo-terminal is a pair: the *slave* (`/dev/pts/N`) is what a shell sees as its
//! terminal, the *master* is what a terminal emulator, or containerd's shim, reads and writes.
//! The pair must come from the container's own `devpts` (mounted by the bundle's mounts), so the
//! child makes it after pivot_root, with system calls only:
//!
//! 1. open `/dev/ptmx` (the master), unlock it, set the window size;
//! 2. open the slave through the master (`TIOCGPTPEER`: no path to build);
//! 3. `setsid`, and make the slave its controlling terminal (`TIOCSCTTY`);
//! 4. make the slave its stdin, stdout and stderr;
//! 5. send the master over the console socket, which the parent connected to before the clone,
//!    as `SCM_RIGHTS` ancillary data: the kernel copies the descriptor into the receiver.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chroot::{Feature, FeatureError, Plan, Slot, Step};
use nix::errno::Errno;

/// The terminal feature.
pub struct Console {
    socket_path: PathBuf,
    socket: Option<OwnedFd>,
    size: Option<libc::winsize>,
}

impl Console {
    /// A terminal whose master goes to the unix socket at `socket_path`, of `size` (rows,
    /// columns) when given.
    pub fn new(socket_path: &Path, size: Option<(u16, u16)>) -> Self {
        Console {
            socket_path: socket_path.to_path_buf(),
            socket: None,
            size: size.map(|(rows, cols)| libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            }),
        }
    }
}

impl Feature for Console {
    fn name(&self) -> &'static str {
        "console"
    }

    fn slot(&self) -> Slot {
        Slot::Stdio
    }

    // ANCHOR: prepare
    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let stream = UnixStream::connect(&self.socket_path).map_err(|e| {
            FeatureError::with(
                format!("connect to console socket {}", self.socket_path.display()),
                e,
            )
        })?;
        let socket = OwnedFd::from(stream);
        let step = MakeTerminal {
            socket: socket.as_raw_fd(),
            size: self.size,
        };
        self.socket = Some(socket);
        // First thing in the new root, while the process may still do anything: before the
        // hostname, the user change and a seccomp filter.
        plan.after_root.insert(0, Step::Custom(Arc::new(step)));
        Ok(())
    }
    // ANCHOR_END: prepare
}

/// The child's step: make the pty, take the slave, send the master.
#[derive(Debug)]
struct MakeTerminal {
    socket: libc::c_int,
    size: Option<libc::winsize>,
}

impl std::fmt::Display for MakeTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("make the container's terminal and send it to the console socket")
    }
}

/// One ioctl(2) whose argument is an integer or a pointer, as a `Result`.
fn ioctl(fd: libc::c_int, request: libc::Ioctl, arg: libc::c_ulong) -> Result<libc::c_int, Errno> {
    // SAFETY: every request used here takes an integer, or a pointer to a live local.
    Errno::result(unsafe { libc::ioctl(fd, request, arg) })
}

impl chroot::ChildStep for MakeTerminal {
    // ANCHOR: run
    fn run(&self) -> Result<(), Errno> {
        // SAFETY: a static NUL-terminated path; the descriptor is closed below.
        let master = Errno::result(unsafe {
            libc::open(
                c"/dev/ptmx".as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        })?;
        let unlock: libc::c_int = 0;
        ioctl(
            master,
            libc::TIOCSPTLCK,
            &unlock as *const _ as libc::c_ulong,
        )?;
        if let Some(size) = &self.size {
            ioctl(master, libc::TIOCSWINSZ, size as *const _ as libc::c_ulong)?;
        }
        let flags = (libc::O_RDWR | libc::O_NOCTTY).unsigned_abs();
        let slave = ioctl(master, libc::TIOCGPTPEER, libc::c_ulong::from(flags))?;
        // SAFETY: setsid(2) takes no arguments.
        Errno::result(unsafe { libc::setsid() })?;
        ioctl(slave, libc::TIOCSCTTY, 0)?;
        for stdio in 0..3 {
            // SAFETY: dup2(2) on two descriptors this process holds.
            Errno::result(unsafe { libc::dup2(slave, stdio) })?;
        }
        send_fd(self.socket, master)?;
        // SAFETY: closes descriptors this process opened; nothing uses them afterwards.
        unsafe {
            if slave > 2 {
                libc::close(slave);
            }
            libc::close(master);
            libc::close(self.socket);
        }
        Ok(())
    }
    // ANCHOR_END: run
}

/// Sends `fd` over the unix socket `socket` as `SCM_RIGHTS`, with a short name as the data (the
/// receiver, runc's and containerd's `RecvFd`, expects exactly one descriptor's space of
/// control data). No allocation: everything is on the stack.
fn send_fd(socket: libc::c_int, fd: libc::c_int) -> Result<(), Errno> {
    let mut name = *b"/dev/ptmx";
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr().cast(),
        iov_len: name.len(),
    };
    // Room for one cmsghdr and one int, aligned as cmsghdr needs.
    let mut control = [0u64; 4];
    let int_size =
        libc::c_uint::try_from(std::mem::size_of::<libc::c_int>()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: a zeroed msghdr is a valid empty one; the CMSG_* helpers only compute sizes and
    // pointers into `control`, which is large enough for one header and one int.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(int_size) as _;
        let header = libc::CMSG_FIRSTHDR(&msg);
        if header.is_null() {
            return Err(Errno::EINVAL);
        }
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(int_size) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<libc::c_int>(), fd);
        Errno::result(libc::sendmsg(socket, &msg, 0)).map(drop)
    }
}
