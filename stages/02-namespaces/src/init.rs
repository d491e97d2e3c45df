//! `--init`: a real init as PID 1, as `docker run --init` runs tini.
//!
//! In a PID namespace the first process has two duties no ordinary program expects: it must
//! reap the orphans re-parented to it (or they stay zombies), and it gets only the signals it
//! has a handler for (so a program that relies on SIGTERM's default action ignores `docker
//! stop`). `--init` puts a small program there that does both: `skiff-init`
//! (`src/bin/skiff-init.rs`), which starts the command as its child.
//!
//! That program is a binary of its own, never a copy of the engine: whatever is PID 1 can be
//! looked at by every process of the container (`/proc/1/environ`, `/proc/1/exe`,
//! `/proc/1/fd`), and a copy of the engine would show the engine's environment, the path of its
//! binary on the host, and its pipes (runc's CVE-2019-5736 started with such a look). So:
//!
//! 1. `build.rs` compiles `skiff-init` static, and the engine embeds it (`include_bytes!`):
//!    one file to install, nothing to find at run time;
//! 2. before the first container with `--init`, the engine writes it into its store, once per
//!    version: `<root>/init/<sha256 of the binary>`, read-only;
//! 3. the engine, still root on the host, takes a copy of that file's mount with
//!    `open_tree(OPEN_TREE_CLONE)`: a mount that is attached nowhere, held by a descriptor, made
//!    read-only, nosuid and nodev with `mount_setattr`;
//! 4. the child moves that mount with `move_mount` onto `/dev/init` (Podman's place: `/dev` is
//!    the container's own tmpfs, so nothing is written into the image's root, as Docker's
//!    `/sbin/docker-init` would need) and execs it instead of the command, with the command as
//!    its arguments, the container's environment and descriptors 0-2 only.
//!
//! Why a descriptor and not the path: the store is private (0710), and under `--userns remap`
//! the child is uid 100000 on the host by the time it mounts, which cannot walk through the
//! store to bind its file. A descriptor opened before is no path: the kernel checks nothing on
//! the way. It must be a detached mount (open_tree's clone), not an open file: mount(2) refuses
//! to bind `/proc/self/fd/N` when N names a file of another mount namespace (`EINVAL`), and the
//! child has a mount namespace of its own; a detached mount belongs to none, and move_mount(2)
//! takes it into the child's. See open_tree(2), move_mount(2), mount_setattr(2).
//!
//! With the defence `real-init` switched off (debug builds, for the labs' self-test), the
//! engine does what it did before: the container's first process, a copy of the engine, stays
//! and plays init itself ([`run_under_init`]). The labs' checks `init-environ-is-the-containers`,
//! `init-exe-is-not-the-engine` and `init-holds-only-stdio` catch it.
//!
//! See pid_namespaces(7), wait(2), sigwaitinfo(2), and tini's README.

use std::ffi::CString;
use std::fmt;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chroot::launch::{ExecData, clone3, exec_command};
use chroot::{FeatureError, Plan, Step};
use nix::errno::Errno;

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

// ANCHOR: engine_init
/// What `--init` did before `skiff-init`, kept for the labs' self-test only (the defence
/// `real-init` switched off): the container's first process, a copy of the engine, forks the
/// command and plays init itself, between clone and exec, with system calls only. It works,
/// but whatever the container reads of its PID 1 is the engine's. Never returns: exits with the
/// command's status, or 128 + N when signal N killed it.
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
// ANCHOR_END: engine_init

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

// ANCHOR: embedded
/// Where the init appears inside the container.
pub const INIT_PATH: &str = "/dev/init";

/// The static `skiff-init`, compiled by `build.rs` and embedded into the engine.
pub static INIT_BINARY: &[u8] = include_bytes!(env!("SKIFF_INIT_BIN"));

/// The SHA-256 of [`INIT_BINARY`], which names its file in the store.
pub const INIT_DIGEST: &str = env!("SKIFF_INIT_DIGEST");

/// Writes the embedded init into the store, once: `<root>/init/<digest>`, mode 0555, in a
/// directory others may pass through but not list (0711). (It holds nothing secret: it is the
/// program every container with `--init` can read at `/dev/init`.) A file that is there already with the same bytes is kept;
/// one that is not (a crash, a hand) is replaced. The file appears whole or not at all (written
/// aside, then renamed), so engines that start at once never exec half a binary.
pub fn install(root: &Path) -> std::io::Result<PathBuf> {
    let dir = root.join("init");
    let path = dir.join(INIT_DIGEST);
    if std::fs::read(&path).is_ok_and(|bytes| bytes == INIT_BINARY) {
        return Ok(path);
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&dir)?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o711))?;
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let aside = dir.join(format!(
        ".{INIT_DIGEST}.{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o555)
        .open(&aside)
        .and_then(|mut file| file.write_all(INIT_BINARY))
        .and_then(|()| std::fs::rename(&aside, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&aside);
    }
    written.map(|()| path)
}
// ANCHOR_END: embedded

// ANCHOR: detached
/// A mount of the init that is attached nowhere yet: `open_tree(OPEN_TREE_CLONE)` of the
/// store's file, read-only, nosuid and nodev (and not noexec, whatever the store's filesystem
/// says). The engine makes it while it is root on the host; the child attaches it.
pub fn detached_mount(path: &Path) -> std::io::Result<OwnedFd> {
    let path = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    // SAFETY: open_tree reads the NUL-terminated path; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    let fd = i32::try_from(Errno::result(fd)?).map_err(|_| Errno::EBADF)?;
    // SAFETY: a successful open_tree returns a descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd) };
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
        attr_clr: libc::MOUNT_ATTR_NOEXEC,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `attr`, of the size given, and the empty path; the flags
    // apply to the detached mount `tree` names.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(rc)?;
    Ok(tree)
}

/// The child's step: moves the detached mount onto `target`, a file in the new root.
/// move_mount(2) on a descriptor made before the clone: one system call, no path to walk.
pub struct AttachInit {
    tree: OwnedFd,
    target: CString,
}

impl chroot::ChildStep for AttachInit {
    fn run(&self) -> Result<(), Errno> {
        // SAFETY: move_mount reads the empty path and `target`, both NUL-terminated and alive
        // for the call; `tree` is the detached mount open_tree made.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                self.tree.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                self.target.as_ptr(),
                libc::MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        Errno::result(rc).map(drop)
    }

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        (errno == Errno::ENOSYS).then_some("--init needs move_mount(2): Linux 5.2 or newer")
    }
}
// ANCHOR_END: detached

impl fmt::Debug for AttachInit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AttachInit({:?})", self.target)
    }
}

impl fmt::Display for AttachInit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attach skiff's init at {}",
            self.target.to_string_lossy()
        )
    }
}

/// The `--init` feature: the store's `skiff-init`, mounted at [`INIT_PATH`] and exec'd as the
/// container's first process.
pub struct Init {
    root: PathBuf,
}

impl Init {
    /// The feature for the store at `root`.
    pub fn new(root: &Path) -> Self {
        Init {
            root: root.to_path_buf(),
        }
    }
}

fn err(e: chroot::LaunchError) -> FeatureError {
    FeatureError::msg(e.to_string())
}

impl chroot::Feature for Init {
    fn name(&self) -> &'static str {
        "init"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Init
    }

    // ANCHOR: prepare
    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        // `real-init` is a defence the labs prove: a debug build can be told to go without it.
        if chroot::defence::disabled("real-init") {
            plan.exec_with = Some(run_under_init);
            return Ok(());
        }
        let path = install(&self.root).map_err(|e| {
            FeatureError::with(
                format!(
                    "write skiff's init to {}: check that the store is writable",
                    self.root.join("init").display()
                ),
                e,
            )
        })?;
        let tree = detached_mount(&path).map_err(|e| {
            FeatureError::with(
                format!(
                    "take a mount of skiff's init {} (open_tree, mount_setattr): --init needs Linux 5.12 or newer",
                    path.display()
                ),
                e,
            )
        })?;
        // /dev is the container's own tmpfs, mounted by the filesystem feature (an earlier
        // slot): a file to mount onto, then the mount, attached.
        let target = plan.in_root(INIT_PATH).map_err(err)?;
        let steps = plan.root_setup();
        steps.push(Step::Touch(target.clone()));
        steps.push(Step::Custom(Arc::new(AttachInit { tree, target })));
        plan.exec_init = vec![INIT_PATH.to_string(), "--".to_string()];
        Ok(())
    }
    // ANCHOR_END: prepare
}

#[cfg(test)]
mod tests {
    use super::*;
    use chroot::Feature;

    #[test]
    fn the_init_is_written_once_and_mounted_read_only() {
        let store = tempfile::tempdir().unwrap();
        let path = install(store.path()).unwrap();
        assert_eq!(path, store.path().join("init").join(INIT_DIGEST));
        assert_eq!(std::fs::read(&path).unwrap(), INIT_BINARY);
        // A damaged copy is replaced.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not an init").unwrap();
        assert_eq!(
            std::fs::read(install(store.path()).unwrap()).unwrap(),
            INIT_BINARY
        );

        let mut plan = Plan {
            rootfs: PathBuf::from("/rootfs"),
            ..Plan::default()
        };
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped the plan's part: open_tree(OPEN_TREE_CLONE) needs root");
            return;
        }
        let mut init = Init::new(store.path());
        init.prepare(&mut plan).unwrap();
        assert_eq!(plan.exec_init, ["/dev/init", "--"]);
        let steps: Vec<String> = plan.early.iter().map(ToString::to_string).collect();
        assert_eq!(
            steps,
            [
                "create file /rootfs/dev/init",
                "attach skiff's init at /rootfs/dev/init"
            ]
        );
    }

    #[test]
    fn the_detached_mount_is_read_only_and_its_own() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: open_tree(OPEN_TREE_CLONE) needs root");
            return;
        }
        let store = tempfile::tempdir().unwrap();
        let path = install(store.path()).unwrap();
        let tree = detached_mount(&path).unwrap();
        // The descriptor reads the init's bytes, on a mount that is read-only.
        let via = format!("/proc/self/fd/{}", tree.as_raw_fd());
        assert_eq!(std::fs::read(&via).unwrap(), INIT_BINARY);
        let flags = nix::sys::statvfs::statvfs(via.as_str()).unwrap().flags();
        assert!(
            flags.contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
            "{flags:?}"
        );
        assert!(
            flags.contains(nix::sys::statvfs::FsFlags::ST_NOSUID),
            "{flags:?}"
        );
    }

    #[test]
    fn the_embedded_init_is_a_static_program() {
        // An ELF file whose program headers name no interpreter (PT_INTERP = 3).
        assert_eq!(&INIT_BINARY[..4], b"\x7fELF");
        let at = |offset: usize, len: usize| -> u64 {
            let mut bytes = [0u8; 8];
            bytes[..len].copy_from_slice(&INIT_BINARY[offset..offset + len]);
            u64::from_le_bytes(bytes)
        };
        let (phoff, phentsize, phnum) = (at(0x20, 8), at(0x36, 2), at(0x38, 2));
        for index in 0..phnum {
            let header = usize::try_from(phoff + index * phentsize).unwrap();
            assert_ne!(at(header, 4), 3, "skiff-init asks for a dynamic loader");
        }
    }
}
