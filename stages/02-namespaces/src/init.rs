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
//! 3. the child bind-mounts it, read-only, at `/dev/init` (Podman's place: `/dev` is the
//!    container's own tmpfs, so nothing is written into the image's root, as Docker's
//!    `/sbin/docker-init` would need) and execs it instead of the command, with the command as
//!    its arguments, the container's environment and descriptors 0-2 only.
//!
//! With the defence `real-init` switched off (debug builds, for the labs' self-test), the
//! engine does what it did before: the container's first process, a copy of the engine, stays
//! and plays init itself ([`run_under_init`]). The labs' checks `init-environ-is-the-containers`,
//! `init-exe-is-not-the-engine` and `init-holds-only-stdio` catch it.
//!
//! See pid_namespaces(7), wait(2), sigwaitinfo(2), mount(2) (`MS_BIND`), and tini's README.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chroot::launch::{ExecData, clone3, exec_command};
use chroot::plan::cstr;
use chroot::{FeatureError, Plan, Step};
use nix::mount::MsFlags;

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
/// directory others may pass through but not list (0711): a user namespace's root, an ordinary
/// user of the host, must reach the file to bind-mount it. (It holds nothing secret: it is the
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
        // The store's file itself, by path: a descriptor opened here would name a mount of
        // the engine's mount namespace, which the child, in a new one, may not bind (EINVAL).
        let source = cstr(&path).map_err(err)?;
        // /dev is the container's own tmpfs, mounted by the filesystem feature (an earlier
        // slot): a file to mount onto, then the bind mount, then read-only, nosuid, nodev.
        // Flags the store's filesystem has (noexec aside) are kept, or a user namespace would
        // refuse the remount.
        let target = plan.in_root(INIT_PATH).map_err(err)?;
        let keep = crate::filesystem::current_flags(&self.root) - MsFlags::MS_NOEXEC;
        let steps = plan.root_setup();
        steps.push(Step::Touch(target.clone()));
        steps.push(Step::Mount {
            source: Some(source),
            target: target.clone(),
            fstype: None,
            flags: MsFlags::MS_BIND,
            data: None,
        });
        steps.push(Step::Mount {
            source: None,
            target,
            fstype: None,
            flags: MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | keep,
            data: None,
        });
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
        let mut init = Init::new(store.path());
        init.prepare(&mut plan).unwrap();
        assert_eq!(plan.exec_init, ["/dev/init", "--"]);
        let steps: Vec<String> = plan.early.iter().map(ToString::to_string).collect();
        assert_eq!(steps[0], "create file /rootfs/dev/init");
        assert_eq!(
            steps[1],
            format!("bind-mount {} on /rootfs/dev/init", path.display())
        );
        assert!(matches!(
            &plan.early[2],
            Step::Mount { flags, .. } if flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT)
        ));
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
