//! The child's plan: the system calls it makes between `clone` and `exec`, written down in
//! advance.
//!
//! After clone(2) in a multi-threaded program the child may only make async-signal-safe calls
//! (signal-safety(7)): no allocation, no locks. So the parent turns every path into a `CString`
//! and every decision into a [`Step`] first; the child walks the list and makes one system call
//! per step. When a step fails, the child sends the step's index and the errno to the parent,
//! which still has the same list and can say in words what failed.

use std::ffi::CString;
use std::fmt;
use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};

// ANCHOR: step
/// One system call the child makes before `exec`.
#[derive(Debug, Clone)]
pub enum Step {
    /// chroot(2): make `path` the root of this process.
    Chroot(CString),
    /// chdir(2).
    Chdir(CString),
    /// mount(2).
    Mount {
        /// What to mount (a device, a directory for a bind mount, or a name like `proc`).
        source: Option<CString>,
        /// Where.
        target: CString,
        /// The filesystem type (`proc`, `tmpfs`, `overlay`...); none for bind mounts.
        fstype: Option<CString>,
        /// `MS_*` flags.
        flags: MsFlags,
        /// Filesystem options, such as `mode=755`.
        data: Option<CString>,
    },
    /// umount2(2).
    Umount(CString, MntFlags),
    /// pivot_root(2): `new_root` becomes `/`, the old root moves to `put_old`.
    PivotRoot {
        /// The new root, a mount point.
        new_root: CString,
        /// Where the old root goes, inside the new one.
        put_old: CString,
    },
    /// mkdir(2); an existing directory is fine.
    Mkdir(CString, Mode),
    /// rmdir(2).
    Rmdir(CString),
    /// Creates an empty file (to bind-mount a file onto); an existing one is fine.
    Touch(CString),
    /// symlink(2): a link at `link` pointing to `target`; an existing entry is left alone.
    Symlink {
        /// What the link points to.
        target: CString,
        /// The link itself.
        link: CString,
    },
    /// mknod(2).
    Mknod {
        /// The node's path.
        path: CString,
        /// Character or block device.
        kind: SFlag,
        /// Permission bits.
        mode: Mode,
        /// The device number, from makedev(3).
        dev: u64,
    },
    /// sethostname(2).
    Hostname(CString),
    /// unshare(2) with these `CLONE_*` flags.
    Unshare(libc::c_int),
    /// Waits until this file descriptor reads one byte: the parent saying "go on".
    WaitForParent(RawFd),
    /// The child forks the process that goes on with the steps, as a child of the *engine*
    /// (clone3's `CLONE_PARENT`), tells the engine its pid, and exits. After an
    /// `Unshare(CLONE_NEWPID)` that process is PID 1 of the new pid namespace, which unshare(2)
    /// gives only to the caller's children: how a child that must first join a user namespace
    /// gets a pid namespace of that user namespace (runc's `nsexec` forks the same way). Only
    /// before the go-ahead (in `enter` or `early`), since the engine waits for the pid.
    Reborn,
    /// prctl(2) with up to four arguments.
    Prctl {
        /// The operation, `PR_*`.
        option: libc::c_int,
        /// Its arguments.
        args: [libc::c_ulong; 4],
        /// Words for errors ("drop capability 21 from the bounding set").
        what: &'static str,
    },
    /// capset(2): the effective, permitted and inheritable sets (64-bit masks).
    Capset {
        /// Effective set.
        effective: u64,
        /// Permitted set.
        permitted: u64,
        /// Inheritable set.
        inheritable: u64,
    },
    /// setgroups(2).
    Setgroups(Vec<libc::gid_t>),
    /// setresgid(2) with all three ids equal.
    Setgid(libc::gid_t),
    /// setresuid(2) with all three ids equal.
    Setuid(libc::uid_t),
    /// A function of a later stage, for work that is more than one call (bringing up the
    /// loopback interface). It must be async-signal-safe: system calls only.
    Call {
        /// The function.
        run: fn() -> Result<(), Errno>,
        /// Words for errors ("bring up the loopback interface").
        what: &'static str,
    },
    /// The inner step, where a missing path (`ENOENT`) is not an error: masking a `/proc` file
    /// that this kernel does not have.
    IfExists(Box<Step>),
    /// Writes `data` to an existing file in one write(2): a kernel control file, such as a
    /// cgroup's `tasks`.
    WriteFile {
        /// The file.
        path: CString,
        /// What to write.
        data: Vec<u8>,
    },
    /// A step a later stage defines, with data of its own: a few system calls that belong
    /// together (stage 06 opens a mount point safely inside the root, then mounts on it).
    Custom(std::sync::Arc<dyn ChildStep>),
}
// ANCHOR_END: step

// ANCHOR: child_step
/// A step of a later stage. `run` executes in the child between clone and exec, so the same
/// rules hold as for every other step: system calls only, on data prepared before the clone; no
/// allocation, no locks, no printing.
pub trait ChildStep: fmt::Debug + fmt::Display + Send + Sync {
    /// Makes the step's system calls.
    fn run(&self) -> Result<(), Errno>;

    /// What a user can do when the step fails with `errno`, if there is something to say.
    fn hint(&self, _errno: Errno) -> Option<&'static str> {
        None
    }
}
// ANCHOR_END: child_step

impl Step {
    // ANCHOR: run
    /// Makes this step's system call. Runs in the child: no allocation, no locks.
    pub fn run(&self) -> Result<(), Errno> {
        match self {
            Step::Chroot(path) => nix::unistd::chroot(path.as_c_str()),
            Step::Chdir(path) => nix::unistd::chdir(path.as_c_str()),
            Step::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => nix::mount::mount(
                source.as_deref(),
                target.as_c_str(),
                fstype.as_deref(),
                *flags,
                data.as_deref(),
            ),
            Step::Umount(target, flags) => nix::mount::umount2(target.as_c_str(), *flags),
            Step::PivotRoot { new_root, put_old } => {
                nix::unistd::pivot_root(new_root.as_c_str(), put_old.as_c_str())
            }
            Step::Mkdir(path, mode) => match nix::unistd::mkdir(path.as_c_str(), *mode) {
                Err(Errno::EEXIST) => Ok(()),
                other => other,
            },
            Step::Rmdir(path) => {
                // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
                Errno::result(unsafe { libc::rmdir(path.as_ptr()) }).map(drop)
            }
            Step::Touch(path) => touch(path),
            Step::Symlink { target, link } => {
                match nix::unistd::symlinkat(
                    target.as_c_str(),
                    nix::fcntl::AT_FDCWD,
                    link.as_c_str(),
                ) {
                    Err(Errno::EEXIST) => Ok(()),
                    other => other,
                }
            }
            Step::Mknod {
                path,
                kind,
                mode,
                dev,
            } => match nix::sys::stat::mknod(path.as_c_str(), *kind, *mode, *dev) {
                Err(Errno::EEXIST) => Ok(()),
                other => other,
            },
            Step::Hostname(name) => nix::unistd::sethostname(name.to_str().unwrap_or_default()),
            Step::Unshare(flags) => {
                // SAFETY: unshare(2) takes flags only; it touches no memory of ours.
                Errno::result(unsafe { libc::unshare(*flags) }).map(drop)
            }
            Step::WaitForParent(fd) => wait_for_parent(*fd),
            // Done by the launch itself, which alone holds the report pipe.
            Step::Reborn => Err(Errno::EINVAL),
            Step::Prctl { option, args, .. } => {
                // SAFETY: every prctl option used by skiff takes integer arguments only.
                let rc = unsafe { libc::prctl(*option, args[0], args[1], args[2], args[3]) };
                Errno::result(rc).map(drop)
            }
            Step::Capset {
                effective,
                permitted,
                inheritable,
            } => capset(*effective, *permitted, *inheritable),
            Step::Setgroups(groups) => {
                // SAFETY: the pointer and length describe `groups`, alive for the call.
                let rc = unsafe { libc::setgroups(groups.len(), groups.as_ptr()) };
                Errno::result(rc).map(drop)
            }
            Step::Setgid(gid) => {
                // SAFETY: setresgid(2) takes integers only.
                Errno::result(unsafe { libc::setresgid(*gid, *gid, *gid) }).map(drop)
            }
            Step::Setuid(uid) => {
                // SAFETY: setresuid(2) takes integers only.
                Errno::result(unsafe { libc::setresuid(*uid, *uid, *uid) }).map(drop)
            }
            Step::Call { run, .. } => run(),
            Step::IfExists(inner) => match inner.run() {
                Err(Errno::ENOENT) => Ok(()),
                other => other,
            },
            Step::WriteFile { path, data } => write_file(path, data),
            Step::Custom(step) => step.run(),
        }
    }
    // ANCHOR_END: run

    /// What a user can do when this step fails with `errno`, if there is something to say.
    pub fn hint(&self, errno: Errno) -> Option<&'static str> {
        match (self, errno) {
            (Step::IfExists(inner), errno) => inner.hint(errno),
            (Step::Custom(step), errno) => step.hint(errno),
            (Step::Chdir(_), Errno::ENOENT | Errno::ENOTDIR) => {
                Some("the working directory must exist inside the container's root")
            }
            (Step::Chdir(_), Errno::EACCES) => {
                Some("the container's user may not enter the working directory")
            }
            (Step::Hostname(_), Errno::EINVAL) => Some("a hostname has at most 64 characters"),
            (Step::Mount { .. } | Step::Umount(..) | Step::PivotRoot { .. }, Errno::EPERM) => {
                Some("mounting needs CAP_SYS_ADMIN: run skiff as root")
            }
            _ => None,
        }
    }
}

/// Shows a C string lossily, for messages.
struct Show<'a>(&'a CString);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_string_lossy())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Chroot(p) => write!(f, "chroot to {}", Show(p)),
            Step::Chdir(p) => write!(f, "change directory to {}", Show(p)),
            Step::Mount {
                source,
                target,
                fstype,
                ..
            } => match (source, fstype) {
                (_, Some(t)) => write!(f, "mount {} on {}", Show(t), Show(target)),
                (Some(s), None) => write!(f, "bind-mount {} on {}", Show(s), Show(target)),
                (None, None) => write!(f, "change mount {}", Show(target)),
            },
            Step::Umount(p, _) => write!(f, "unmount {}", Show(p)),
            Step::PivotRoot { new_root, .. } => write!(f, "pivot_root into {}", Show(new_root)),
            Step::Mkdir(p, _) => write!(f, "create directory {}", Show(p)),
            Step::Rmdir(p) => write!(f, "remove directory {}", Show(p)),
            Step::Touch(p) => write!(f, "create file {}", Show(p)),
            Step::Symlink { link, target } => {
                write!(f, "create symlink {} -> {}", Show(link), Show(target))
            }
            Step::Mknod { path, .. } => write!(f, "create device node {}", Show(path)),
            Step::Hostname(h) => write!(f, "set hostname {:?}", h),
            Step::Unshare(flags) => write!(f, "unshare namespaces {flags:#x}"),
            Step::WaitForParent(_) => write!(f, "wait for the engine"),
            Step::Reborn => write!(f, "fork the container's process"),
            Step::Prctl { what, .. } => f.write_str(what),
            Step::Capset { .. } => write!(f, "set capabilities"),
            Step::Setgroups(g) => write!(f, "set supplementary groups {g:?}"),
            Step::Setgid(g) => write!(f, "set group id {g}"),
            Step::Setuid(u) => write!(f, "set user id {u}"),
            Step::Call { what, .. } => f.write_str(what),
            Step::IfExists(inner) => write!(f, "{inner}"),
            Step::Custom(step) => write!(f, "{step}"),
            Step::WriteFile { path, data } => {
                write!(
                    f,
                    "write {:?} to {}",
                    String::from_utf8_lossy(data),
                    Show(path)
                )
            }
        }
    }
}

fn touch(path: &CString) -> Result<(), Errno> {
    // Read-only: an existing file needs only read permission (in a user namespace the rootfs
    // may belong to an unmapped owner). SAFETY: `path` is NUL-terminated; the fd is closed below.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o644,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: `fd` was just opened by us and is closed once.
    unsafe { libc::close(fd) };
    Ok(())
}

fn write_file(path: &CString, data: &[u8]) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated; the fd is ours and closed below.
    let fd = Errno::result(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    })?;
    // SAFETY: writes `data.len()` bytes from a live slice.
    let written = Errno::result(unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) });
    // SAFETY: closes the descriptor opened above, once.
    unsafe { libc::close(fd) };
    match written {
        Ok(n) if n.unsigned_abs() == data.len() => Ok(()),
        Ok(_) => Err(Errno::EIO),
        Err(errno) => Err(errno),
    }
}

fn wait_for_parent(fd: RawFd) -> Result<(), Errno> {
    let mut byte = [0u8; 1];
    loop {
        // SAFETY: reads at most one byte into a buffer of one byte.
        let n = unsafe { libc::read(fd, byte.as_mut_ptr().cast(), 1) };
        match Errno::result(n) {
            Ok(1) => return Ok(()),
            // The engine closed the pipe without a go-ahead: it gave up on this container.
            Ok(_) => return Err(Errno::ECANCELED),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// capset(2) with the 64-bit (version 3) layout: two 32-bit halves per set.
fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |mask: u64, high: bool| -> u32 {
        let shifted = if high { mask >> 32 } else { mask };
        (shifted & 0xffff_ffff) as u32
    };
    let data = [
        Data {
            effective: half(effective, false),
            permitted: half(permitted, false),
            inheritable: half(inheritable, false),
        },
        Data {
            effective: half(effective, true),
            permitted: half(permitted, true),
            inheritable: half(inheritable, true),
        },
    ];
    // SAFETY: header and data have the kernel's layout for version 3 (two data structs), and
    // both live across the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    Errno::result(rc).map(drop)
}

// ANCHOR: plan
/// Everything the child will do, decided before it exists.
#[derive(Debug, Default)]
pub struct Plan {
    /// `CLONE_NEW*` flags for clone(2): the namespaces the child is born in.
    pub clone_flags: u64,
    /// The container's root directory on the host, set by the feature that changes root (which
    /// comes first). Steps before the root change reach into it with [`Plan::in_root`].
    pub rootfs: std::path::PathBuf,
    /// Whether the child is born in a user namespace of its own. Its work in the new root then
    /// waits for the go-ahead: until the parent has written its id maps it is nobody there.
    pub user_namespace: bool,
    /// Whether the child joins an existing user namespace in its first steps (an OCI config's
    /// `linux.namespaces` path, stage 08): what it must do as the host's root, such as moving
    /// itself into its cgroup, comes before that.
    pub joins_user_namespace: bool,
    /// The cgroup the child is born in: a descriptor of its directory in a cgroup v2 tree, for
    /// clone3's `CLONE_INTO_CGROUP` (stage 07's `exec`). `None`: the engine's own cgroup.
    pub cgroup_fd: Option<std::os::fd::RawFd>,
    /// Steps the child runs first of all, at once: joining its cgroup (stage 03), so that
    /// everything it does from then on counts there.
    pub enter: Vec<Step>,
    /// Steps the child runs at once, while the parent is still busy with the `started` hooks
    /// (a cgroup attach can take milliseconds): work that needs nothing from the parent, such as
    /// mounts into the new root. Everything else waits for the go-ahead.
    pub early: Vec<Step>,
    /// The child runs *all* its steps at once and waits for the go-ahead only to exec: its
    /// root change, credentials and filters overlap the parent's `started` hooks (a veth and its
    /// addresses: a millisecond or two) instead of following them. An engine opts in (stage
    /// 07); it holds unless the child is in a user namespace or a feature sets
    /// `needs_started`.
    pub go_at_exec: bool,
    /// Set by a feature whose steps after the go-ahead need what its `started` hook does first
    /// (stage 03, when the parent puts the child in its cgroup: the cgroup namespace comes
    /// after): the go-ahead stays before them.
    pub needs_started: bool,
    /// Steps in the child, after the go-ahead, before its root changes.
    pub before_root: Vec<Step>,
    /// The root change itself: `chroot` at stage 01, `pivot_root` from stage 02.
    pub change_root: Vec<Step>,
    /// Steps after the root changed: hostname, user, capabilities.
    pub after_root: Vec<Step>,
    /// A program the child execs instead of the command, with the command as its last
    /// arguments: the program's path inside the container, then its own arguments. Stage 02's
    /// `--init` puts `["/dev/init", "--"]` here. Empty: the command is exec'd itself.
    pub exec_init: Vec<String>,
    /// What the child does instead of exec'ing: a function of the engine that keeps running
    /// there. Only stage 02's `--init` with its defence switched off uses it, to show what the
    /// labs catch: a copy of the engine as the container's PID 1. `None` execs.
    pub exec_with: Option<fn(&crate::launch::ExecData, libc::c_int) -> !>,
    /// A network namespace being made on a thread while the features prepare (stage 02, see
    /// [`crate::ahead`]): the child is born in it instead of one made by the clone. Used only
    /// when `clone_flags` still ask for a new network namespace and no user namespace.
    pub network_ahead: Option<crate::ahead::NetworkAhead>,
    /// How many descriptors after stdio the command inherits: 3 up to `3 + pass_fds - 1`, as
    /// the engine's caller passed them (runc's `--preserve-fds`; systemd's socket activation
    /// counts them in `LISTEN_FDS`). Every other descriptor closes at the exec.
    pub pass_fds: u32,
}
// ANCHOR_END: plan

impl Plan {
    /// A path inside the container, as the host sees it before the root changes:
    /// `in_root("/proc")` is `<rootfs>/proc`.
    pub fn in_root(&self, path: &str) -> Result<CString, crate::LaunchError> {
        cstr(self.rootfs.join(path.trim_start_matches('/')))
    }

    // ANCHOR: root_setup
    /// Where the steps that set up the new root go: mounts into it, loopback up. They need
    /// nothing from the parent, so they run early, while the parent works; with a user
    /// namespace they wait for the go-ahead, once the id maps exist.
    pub fn root_setup(&mut self) -> &mut Vec<Step> {
        if self.user_namespace {
            &mut self.before_root
        } else {
            &mut self.early
        }
    }
    // ANCHOR_END: root_setup

    /// The steps before the go-ahead, in the order the child runs them.
    pub fn steps_before_go(&self) -> impl Iterator<Item = &Step> {
        self.enter.iter().chain(&self.early)
    }

    /// Whether the child waits for the go-ahead only to exec (see `go_at_exec`).
    pub fn waits_only_to_exec(&self) -> bool {
        self.go_at_exec && !self.needs_started && !self.user_namespace
    }

    /// The steps after the go-ahead, in the order the child runs them.
    pub fn steps_after_go(&self) -> impl Iterator<Item = &Step> {
        self.before_root
            .iter()
            .chain(&self.change_root)
            .chain(&self.after_root)
    }
}

/// Turns a path or name into a C string, for building steps.
pub fn cstr(s: impl AsRef<std::ffi::OsStr>) -> Result<CString, crate::LaunchError> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = s.as_ref().as_bytes();
    CString::new(bytes)
        .map_err(|_| crate::LaunchError::NulByte(String::from_utf8_lossy(bytes).into_owned()))
}
