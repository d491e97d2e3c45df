//! Paths that come from an image, resolved inside the container's root.
//!
//! An image decides what its paths are. Its `/etc` may be a symlink to `/tmp/victim`, its `/proc`
//! a symlink to anywhere, its WorkingDir `/../../../tmp/x`. Joined to the rootfs as strings
//! (`<rootfs>/etc/hosts`) and handed to the kernel by an engine that runs as root on the host,
//! such a path is resolved *as the host sees it*: an absolute symlink starts again at the host's
//! `/`, and `..` climbs out of the rootfs. The engine then creates, reads or mounts on the host.
//!
//! openat2(2) resolves a path relative to a directory descriptor, and with `RESOLVE_IN_ROOT` it
//! treats that directory as `/` for the whole walk: an absolute symlink starts again there, and
//! `..` stops there, exactly as the container's own processes will see it once their root has
//! changed. `RESOLVE_NO_MAGICLINKS` refuses `/proc/PID/fd/N`-style links on the way, which lead
//! anywhere. Everything here goes through it:
//!
//! - [`Root`]: in the engine, before the container exists: read a file of the image (`/etc/passwd`
//!   for `--user`), make a directory (the WorkingDir);
//! - [`MountInRoot`], [`SymlinkInRoot`]: steps the child runs between clone and exec: open the
//!   mount point inside the root, creating what is missing one component at a time with
//!   mkdirat(2) in the directory opened last, and mount onto the descriptor through its
//!   `/proc/self/fd/N` name. Between the open and the mount nothing can swap a symlink in: the
//!   descriptor pins the target. That is how runc closed CVE-2021-30465.
//!
//! openat2 came with Linux 5.6; skiff requires it (an older kernel gets a clear error) rather than
//! carry a component-by-component fallback. The defence can be switched off for the labs'
//! self-test ([`DEFENCE`], see [`chroot::defence`]): the walk then resolves as the host would,
//! which is the hole the labs must see open.
//!
//! See openat2(2), path_resolution(7), symlink(7), mount(2), proc(5) (`/proc/self/fd`).

use std::ffi::{CStr, CString};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

use chroot::plan::cstr;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

/// The name of this defence for `SKIFF_UNSAFE_DISABLE` (debug builds only).
pub const DEFENCE: &str = "root-paths";

/// Whether paths are resolved inside the root: always, unless a debug build was told otherwise.
fn confined() -> bool {
    !chroot::defence::disabled(DEFENCE)
}

// ANCHOR: open_in_root
/// openat2(2): opens `path` below `root`, resolving it as if `root` were `/`. Unconfined (the
/// defence switched off), it resolves as a host path would: the hole, for the labs to see.
fn open_in_root(
    root: BorrowedFd<'_>,
    path: &CStr,
    flags: OFlag,
    confined: bool,
) -> Result<OwnedFd, Errno> {
    let resolve = if confined {
        ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS
    } else {
        ResolveFlag::empty()
    };
    loop {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(resolve);
        match nix::fcntl::openat2(root, path, how) {
            // A rename elsewhere on the system raced the lookup: the kernel asks to retry.
            Err(Errno::EAGAIN) => continue,
            other => return other,
        }
    }
}
// ANCHOR_END: open_in_root

/// The components of a path, without empty ones and `.`.
fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// What to make of a path that is missing, on the way and at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Nothing: a missing path is `ENOENT` (a masked path this kernel lacks).
    Nothing,
    /// Directories: the missing ones on the way `0755`, the last with this mode.
    Dirs(u32),
    /// Directories on the way, and an empty file at the end (a file to bind-mount onto).
    File,
}

/// A path inside a root, prepared for a walk that allocates nothing: `/srv/www` is walked as
/// `srv`, then `srv/www`, each made with the last component (`srv`, `www`) when missing.
#[derive(Debug, Clone)]
pub struct PathInRoot {
    prefixes: Vec<CString>,
    names: Vec<CString>,
    /// The path as the image or the user wrote it, for messages.
    text: String,
    confined: bool,
}

impl PathInRoot {
    /// `path` (absolute or not, it is inside the root either way), ready for the child. `.` and
    /// empty components are dropped; `..` is left to the kernel, which stops it at the root.
    /// [`Root::child_path`] resolves the symlinks on the way first, so that a link to a
    /// directory the image lacks can be followed by making it.
    pub fn new(path: &str) -> io::Result<Self> {
        let components: Vec<&str> = components(path).collect();
        let prefixes = (1..=components.len())
            .map(|n| cstr(components[..n].join("/")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(io::Error::other)?;
        let names = components
            .iter()
            .map(cstr)
            .collect::<Result<Vec<_>, _>>()
            .map_err(io::Error::other)?;
        Ok(PathInRoot {
            prefixes,
            names,
            text: path.to_string(),
            confined: confined(),
        })
    }

    /// The path as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this is the root itself (`/`, `.`).
    pub fn is_root(&self) -> bool {
        self.prefixes.is_empty()
    }

    // ANCHOR: walk
    /// Opens the path below `root` (`O_PATH`), making what is missing as `create` says. Each
    /// missing component is made in the directory opened just before it, which is inside the
    /// root whatever symlinks led there, then opened the same careful way. Runs in the child:
    /// system calls only.
    pub fn open(&self, root: BorrowedFd<'_>, create: Create) -> Result<OwnedFd, Errno> {
        let Some(full) = self.prefixes.last() else {
            return open_in_root(
                root,
                c".",
                OFlag::O_PATH | OFlag::O_DIRECTORY,
                self.confined,
            );
        };
        let last_flags = match create {
            Create::Dirs(_) => OFlag::O_PATH | OFlag::O_DIRECTORY,
            Create::Nothing | Create::File => OFlag::O_PATH,
        };
        // Most targets exist: one call.
        match open_in_root(root, full, last_flags, self.confined) {
            Err(Errno::ENOENT) if create != Create::Nothing => {}
            other => return other,
        }
        if let Some(made) = self.make_last(root, create, last_flags) {
            return made;
        }
        let mut parent: Option<OwnedFd> = None;
        for (i, (prefix, name)) in self.prefixes.iter().zip(&self.names).enumerate() {
            let last = i + 1 == self.prefixes.len();
            let flags = if last {
                last_flags
            } else {
                OFlag::O_PATH | OFlag::O_DIRECTORY
            };
            let opened = match open_in_root(root, prefix, flags, self.confined) {
                Err(Errno::ENOENT) => {
                    let dir = parent.as_ref().map_or(root, |fd| fd.as_fd());
                    let made = match (last, create) {
                        (true, Create::File) => nix::fcntl::openat(
                            dir,
                            name.as_c_str(),
                            OFlag::O_CREAT | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                            Mode::from_bits_truncate(0o644),
                        )
                        .map(drop),
                        (true, Create::Dirs(mode)) => nix::sys::stat::mkdirat(
                            dir,
                            name.as_c_str(),
                            Mode::from_bits_truncate(mode),
                        ),
                        _ => nix::sys::stat::mkdirat(
                            dir,
                            name.as_c_str(),
                            Mode::from_bits_truncate(0o755),
                        ),
                    };
                    match made {
                        Ok(()) | Err(Errno::EEXIST) => {
                            open_in_root(root, prefix, flags, self.confined)?
                        }
                        Err(e) => return Err(e),
                    }
                }
                other => other?,
            };
            parent = Some(opened);
        }
        parent.ok_or(Errno::EINVAL)
    }
    // ANCHOR_END: walk

    /// The usual miss: only the last name is missing (`null` in a fresh `/dev`). It is made in
    /// the directory above, opened the careful way, and opened there without following links:
    /// three calls where the walk takes seven. `None` when more is missing: the walk's turn.
    fn make_last(
        &self,
        root: BorrowedFd<'_>,
        create: Create,
        flags: OFlag,
    ) -> Option<Result<OwnedFd, Errno>> {
        let name = self.names.last()?.as_c_str();
        let above = match self.prefixes.len() {
            0 | 1 => None,
            n => Some(self.prefixes[n - 2].as_c_str()),
        };
        let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let parent = match above.map(|above| open_in_root(root, above, dir_flags, self.confined)) {
            None => None,
            Some(Ok(parent)) => Some(parent),
            Some(Err(Errno::ENOENT)) => return None,
            Some(Err(e)) => return Some(Err(e)),
        };
        let dir = parent.as_ref().map_or(root, |fd| fd.as_fd());
        let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let made = match create {
            Create::Nothing => return None,
            // The new file's own descriptor is as good a mount point as an O_PATH one.
            Create::File => nix::fcntl::openat(
                dir,
                name,
                OFlag::O_CREAT | OFlag::O_RDONLY | nofollow,
                Mode::from_bits_truncate(0o644),
            ),
            Create::Dirs(mode) => {
                match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(mode)) {
                    Ok(()) => nix::fcntl::openat(dir, name, flags | nofollow, Mode::empty()),
                    Err(Errno::EEXIST) => Err(Errno::EEXIST),
                    Err(e) => return Some(Err(e)),
                }
            }
        };
        Some(match made {
            // Made meanwhile by someone else: opened from the root, links followed inside it.
            Err(Errno::EEXIST) => open_in_root(root, self.prefixes.last()?, flags, self.confined),
            other => other,
        })
    }

    /// The directory above the path and its last name, for making an entry there (a symlink).
    /// Runs in the child: no allocation.
    fn open_parent(&self, root: BorrowedFd<'_>) -> Result<(OwnedFd, &CStr), Errno> {
        let name = self.names.last().ok_or(Errno::EINVAL)?;
        let above = match self.prefixes.len() {
            0 | 1 => c".",
            n => self.prefixes[n - 2].as_c_str(),
        };
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let parent = open_in_root(root, above, flags, self.confined)?;
        Ok((parent, name))
    }
}

/// Formats `/proc/self/fd/<fd>` into `buf` without allocating: the child may not allocate.
pub fn proc_fd_path<'b>(fd: &impl AsRawFd, buf: &'b mut [u8; 32]) -> &'b CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut n = fd.as_raw_fd().unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b"0123456789"[(n % 10) as usize];
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"/proc/self/fd")
}

/// Opens the container's root, a path skiff made (no symlink of the image's on the way).
fn open_root(root: &CStr) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The container's root as the child sees it, opened once for all the steps made from one
/// [`Root`]: some forty mounts, links and nodes would otherwise open the same long path forty
/// times. The first step to run opens it (after the root was bound onto itself, which comes
/// first in every plan), and the descriptor lives until exec closes it (`O_CLOEXEC`). The cell
/// is in memory the child has a copy of: the parent's stays empty, so a second launch from the
/// same plan opens afresh.
#[derive(Debug, Clone)]
pub struct ChildRoot {
    dir: CString,
    opened: Arc<Mutex<Option<OwnedFd>>>,
}

impl ChildRoot {
    fn new(dir: CString) -> Self {
        ChildRoot {
            dir,
            opened: Arc::default(),
        }
    }

    /// Runs `step` with the root's descriptor, opened now if no step did yet. Runs in the
    /// child, which has one thread: the lock is never contended, and nothing allocates.
    fn with<R>(&self, step: impl FnOnce(BorrowedFd<'_>) -> Result<R, Errno>) -> Result<R, Errno> {
        let mut opened = self.opened.lock().unwrap_or_else(|e| e.into_inner());
        let root = match &mut *opened {
            Some(root) => root,
            empty => empty.insert(open_root(&self.dir)?),
        };
        step(root.as_fd())
    }

    /// Closes the descriptor: something was mounted on the root itself, and the old one names
    /// what is under it now. The next step opens the root again.
    fn forget(&self) {
        *self.opened.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// What a [`MountInRoot`] mounts.
#[derive(Debug, Clone)]
pub enum MountSource {
    /// Nothing (a filesystem that takes no source).
    None,
    /// A name or a host path skiff chose: `proc`, `tmpfs`, `/dev/null`, a volume's directory.
    Host(CString),
    /// The target itself, bound onto itself (to remount it read-only).
    Itself,
}

/// A mount onto a path inside the container's root: the child's step for `/proc`, `/dev`, the
/// `/etc` files (stage 02) and every volume, bind and tmpfs (stage 06).
#[derive(Debug, Clone)]
pub struct MountInRoot {
    /// The container's root, on the host (a path skiff made: no symlinks of the image's).
    pub root: ChildRoot,
    /// Where, inside the root.
    pub target: PathInRoot,
    /// What to make when the target is missing.
    pub create: Create,
    /// What to mount.
    pub source: MountSource,
    /// The filesystem type (`proc`, `tmpfs`); none for a bind mount.
    pub fstype: Option<CString>,
    /// `MS_*` flags of the mount.
    pub flags: MsFlags,
    /// Filesystem options (`size=...,mode=...`).
    pub data: Option<CString>,
    /// For a bind mount: the flags of a second mount call, besides `MS_BIND | MS_REMOUNT`, that
    /// makes it read-only, `nodev`... (a bind mount takes no flags of its own; it must be
    /// remounted).
    pub remount: Option<MsFlags>,
}

impl MountInRoot {
    /// A mount of `fstype` (or a bind, when `fstype` is `None`) from `source` onto `target`
    /// inside `root`; the target is made as `create` says.
    pub fn new(
        root: &Root,
        target: &str,
        create: Create,
        source: MountSource,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<Self> {
        let c = |s: &str| cstr(s).map_err(io::Error::other);
        // A target that is never made needs no answer in advance: the child opens it with
        // RESOLVE_IN_ROOT, which follows its links inside the root all the same. Resolving
        // here costs a call per path, for paths (`/proc/kcore`) that live in a filesystem the
        // child mounts later, not in the image.
        let target = match create {
            Create::Nothing => root.path(target)?,
            _ => root.child_path(target)?,
        };
        Ok(MountInRoot {
            root: root.child.clone(),
            target,
            create,
            source,
            fstype: fstype.map(c).transpose()?,
            flags,
            data: data.map(c).transpose()?,
            remount: None,
        })
    }

    /// Remounted read-only after the mount, keeping `flags`.
    pub fn read_only(mut self, flags: MsFlags) -> Self {
        self.remount = Some(flags | MsFlags::MS_RDONLY);
        self
    }

    /// Remounted with `flags` after the mount (a bind mount takes no flags of its own: `nodev`,
    /// `MS_RDONLY` and the rest come with a second call).
    pub fn remounted(mut self, flags: MsFlags) -> Self {
        self.remount = Some(flags);
        self
    }
}

impl chroot::ChildStep for MountInRoot {
    // ANCHOR: run
    fn run(&self) -> Result<(), Errno> {
        self.root.with(|root| {
            let target = self.target.open(root, self.create)?;
            let (mut buf, mut source_buf) = ([0u8; 32], [0u8; 32]);
            let source = match &self.source {
                MountSource::None => None,
                MountSource::Host(source) => Some(source.as_c_str()),
                MountSource::Itself => Some(proc_fd_path(&target, &mut source_buf)),
            };
            nix::mount::mount(
                source,
                proc_fd_path(&target, &mut buf),
                self.fstype.as_deref(),
                self.flags,
                self.data.as_deref(),
            )
        })?;
        if self.target.is_root() {
            // Mounted on the root itself: the open root is under the new mount now.
            self.root.forget();
        }
        let Some(flags) = self.remount else {
            return Ok(());
        };
        // The descriptor still names the directory *under* the new mount; opened again, the
        // path leads into the mount, which is what must be remounted.
        self.root.with(|root| {
            let mounted = self.target.open(root, Create::Nothing)?;
            let mut buf = [0u8; 32];
            nix::mount::mount(
                None::<&CStr>,
                proc_fd_path(&mounted, &mut buf),
                None::<&CStr>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
                None::<&CStr>,
            )
        })?;
        if self.target.is_root() {
            self.root.forget();
        }
        Ok(())
    }
    // ANCHOR_END: run

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        hint(errno)
    }
}

fn hint(errno: Errno) -> Option<&'static str> {
    match errno {
        Errno::ENOSYS => Some(
            "resolving paths inside the container's root needs openat2(2): run on Linux 5.6 or later",
        ),
        Errno::ENOTDIR => Some(
            "a directory cannot be mounted on a file, nor a file on a directory: check both sides",
        ),
        Errno::ENOENT => Some("the target leads through a symlink to nothing inside the image"),
        Errno::ELOOP => {
            Some("the path goes through too many symlinks, or a /proc magic link, in the image")
        }
        Errno::EROFS => {
            Some("the container's root is read-only: the mount point must exist in the image")
        }
        Errno::EPERM => Some("mounting needs CAP_SYS_ADMIN: run skiff as root"),
        _ => None,
    }
}

impl fmt::Display for MountInRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = &self.target.text;
        match (&self.fstype, &self.source) {
            (Some(fstype), _) => write!(f, "mount {} on {target}", fstype.to_string_lossy()),
            (None, MountSource::Host(source)) => {
                write!(f, "mount {} on {target}", source.to_string_lossy())
            }
            (None, _) => write!(f, "mount on {target}"),
        }
    }
}

/// A symlink made inside the container's root (`/dev/ptmx -> pts/ptmx`); an existing entry is
/// left alone.
#[derive(Debug, Clone)]
pub struct SymlinkInRoot {
    /// The container's root, on the host.
    pub root: ChildRoot,
    /// Where the link goes, inside the root.
    pub link: PathInRoot,
    /// What it points to (read inside the container, so never followed here).
    pub target: CString,
}

impl SymlinkInRoot {
    /// A link at `link` inside `root`, pointing to `target`.
    pub fn new(root: &Root, link: &str, target: &str) -> io::Result<Self> {
        // The link itself is made, not followed: only the directory above it is resolved.
        let (parent, name) = link.rsplit_once('/').unwrap_or(("", link));
        let parent = root.resolve(parent)?;
        let mut path = PathInRoot::new(&format!("{}/{name}", parent.trim_end_matches('/')))?;
        path.text = link.to_string();
        path.confined = root.confined;
        Ok(SymlinkInRoot {
            root: root.child.clone(),
            link: path,
            target: cstr(target).map_err(io::Error::other)?,
        })
    }
}

impl chroot::ChildStep for SymlinkInRoot {
    fn run(&self) -> Result<(), Errno> {
        self.root.with(|root| {
            let (parent, name) = self.link.open_parent(root)?;
            match nix::unistd::symlinkat(self.target.as_c_str(), parent.as_fd(), name) {
                Err(Errno::EEXIST) => Ok(()),
                other => other,
            }
        })
    }

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        hint(errno)
    }
}

impl fmt::Display for SymlinkInRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "create symlink {} -> {}",
            self.link.text,
            self.target.to_string_lossy()
        )
    }
}

// ANCHOR: node_in_root
/// A device node made inside the container's root with mknod(2) (an OCI runtime's
/// `linux.devices`), owned by `uid:gid`; the directories above it are made when missing. An
/// existing entry is left alone: `/dev/null` may be there already, bound from the host's.
#[derive(Debug, Clone)]
pub struct NodeInRoot {
    /// The container's root, on the host.
    pub root: ChildRoot,
    /// Where the node goes, inside the root.
    pub node: PathInRoot,
    /// The directory above it.
    pub parent: PathInRoot,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`, with the permission bits.
    pub mode: libc::mode_t,
    /// The device number, from makedev(3).
    pub dev: libc::dev_t,
    /// Its owner, as the container's ids.
    pub uid: libc::uid_t,
    /// Its group.
    pub gid: libc::gid_t,
}

impl NodeInRoot {
    /// A node at `path` inside `root`.
    pub fn new(
        root: &Root,
        path: &str,
        mode: libc::mode_t,
        dev: libc::dev_t,
        owner: (libc::uid_t, libc::gid_t),
    ) -> io::Result<Self> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        let parent = root.resolve(parent)?;
        let mut node = PathInRoot::new(&format!("{}/{name}", parent.trim_end_matches('/')))?;
        node.text = path.to_string();
        node.confined = root.confined;
        let mut parent = PathInRoot::new(&parent)?;
        parent.confined = root.confined;
        Ok(NodeInRoot {
            root: root.child.clone(),
            node,
            parent,
            mode,
            dev,
            uid: owner.0,
            gid: owner.1,
        })
    }
}

impl chroot::ChildStep for NodeInRoot {
    fn run(&self) -> Result<(), Errno> {
        let dir = self
            .root
            .with(|root| self.parent.open(root, Create::Dirs(0o755)))?;
        // O_PATH descriptors do not take mknodat: the directory's /proc/self/fd name does.
        let mut buf = [0u8; 32];
        let via = proc_fd_path(&dir, &mut buf);
        let dir = nix::fcntl::open(via, OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
        let name = self.node.names.last().ok_or(Errno::EINVAL)?;
        // SAFETY: mknodat(2) and fchownat(2) on a directory descriptor we own and a
        // NUL-terminated name prepared before the clone.
        let made = Errno::result(unsafe {
            libc::mknodat(dir.as_raw_fd(), name.as_ptr(), self.mode, self.dev)
        });
        match made {
            Err(Errno::EEXIST) => return Ok(()),
            other => other?,
        };
        // SAFETY: as above.
        Errno::result(unsafe {
            libc::fchownat(
                dir.as_raw_fd(),
                name.as_ptr(),
                self.uid,
                self.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
        .map(drop)
    }

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        match errno {
            Errno::EPERM => {
                Some("making device nodes needs CAP_MKNOD in the host's user namespace")
            }
            errno => hint(errno),
        }
    }
}

impl fmt::Display for NodeInRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "create device node {}", self.node.text)
    }
}
// ANCHOR_END: node_in_root

// ANCHOR: root
/// A container's root (or one image layer), opened, for reading and making the paths an image
/// names, in the engine, before the container runs.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    /// The same directory, for the child's steps to open once (see [`ChildRoot`]).
    child: ChildRoot,
    confined: bool,
}

/// How many symlinks a path may go through before it is refused (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

impl Root {
    /// Opens the directory `dir` (a path skiff made) as a root.
    pub fn open(dir: &Path) -> io::Result<Root> {
        let dir = cstr(dir).map_err(io::Error::other)?;
        Ok(Root {
            fd: open_root(&dir)?,
            child: ChildRoot::new(dir),
            confined: confined(),
        })
    }

    /// `path` with the symlinks on the way followed inside the root, as the container will
    /// follow them: an absolute target starts again at the root, `..` stops there. What does
    /// not exist stays as written, so a link to a directory the image lacks says where to make
    /// it. The child opens the answer with `RESOLVE_IN_ROOT` all the same: if a link changed
    /// since, it still cannot lead out.
    pub fn resolve(&self, path: &str) -> io::Result<String> {
        let relative = path.trim_start_matches('/');
        if !self.confined || relative.is_empty() {
            return Ok(path.to_string());
        }
        // One call when there is no symlink on the way, the usual case.
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS);
        // ENOENT with no `..` in the path says the same: the kernel refuses a symlink on the
        // way (ELOOP) before it can find something missing after it, so every component up to
        // the missing one is a plain directory, and what is missing cannot be a link. Most of
        // a container's targets are like that (`/dev/null` before `/dev` is mounted), and the
        // walk below would cost six calls each.
        let climbs = components(relative).any(|part| part == "..");
        match nix::fcntl::openat2(self.fd.as_fd(), relative, how) {
            Err(Errno::ENOENT) if !climbs => return Ok(path.to_string()),
            Err(Errno::ELOOP | Errno::ENOENT | Errno::EAGAIN) => {}
            _ => return Ok(path.to_string()),
        }
        let mut resolved: Vec<String> = Vec::new();
        let mut pending: std::collections::VecDeque<String> =
            components(relative).map(String::from).collect();
        let mut links = 0;
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            let parent = self.path(&resolved.join("/"))?;
            let target = match parent.open(self.fd.as_fd(), Create::Nothing) {
                Ok(dir) => nix::fcntl::readlinkat(dir.as_fd(), part.as_str()).ok(),
                // The rest does not exist: nothing more to follow.
                Err(_) => None,
            };
            let Some(target) = target else {
                resolved.push(part);
                continue;
            };
            links += 1;
            if links > MAX_LINKS {
                return Err(Errno::ELOOP.into());
            }
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                resolved.clear();
            }
            for part in components(&target).collect::<Vec<_>>().into_iter().rev() {
                pending.push_front(part.to_string());
            }
        }
        Ok(format!("/{}", resolved.join("/")))
    }

    /// `path`, resolved inside the root, ready for a step of the child.
    pub fn child_path(&self, path: &str) -> io::Result<PathInRoot> {
        let mut child = self.path(&self.resolve(path)?)?;
        child.text = path.to_string();
        Ok(child)
    }

    fn path(&self, path: &str) -> io::Result<PathInRoot> {
        let mut path = PathInRoot::new(path)?;
        path.confined = self.confined;
        Ok(path)
    }

    /// What is at `path` inside the root, symlinks followed inside it.
    pub fn metadata(&self, path: &str) -> io::Result<std::fs::Metadata> {
        let fd = self.path(path)?.open(self.fd.as_fd(), Create::Nothing)?;
        File::from(fd).metadata()
    }

    /// Opens the directory `path` inside the root (`O_PATH`), making nothing.
    pub fn open_dir(&self, path: &str) -> io::Result<OwnedFd> {
        let relative = match path.trim_start_matches('/') {
            "" => ".",
            relative => relative,
        };
        let relative = cstr(relative).map_err(io::Error::other)?;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        Ok(open_in_root(
            self.fd.as_fd(),
            &relative,
            flags,
            self.confined,
        )?)
    }

    /// Reads the regular file at `path` inside the root (`/etc/passwd`). It is looked at before
    /// it is opened for reading: a fifo there would block, and opening a device node has effects
    /// of its own (the engine runs on the host, where nothing is `nodev`). The file is then
    /// opened again through the first descriptor's `/proc/self/fd/N`, so it is the very inode
    /// that was looked at, even if the container swapped the path in between.
    pub fn read_to_string(&self, path: &str) -> io::Result<String> {
        let relative = match path.trim_start_matches('/') {
            "" => ".",
            relative => relative,
        };
        let relative = cstr(relative).map_err(io::Error::other)?;
        let looked_at = open_in_root(self.fd.as_fd(), &relative, OFlag::O_PATH, self.confined)?;
        if !File::from(looked_at.try_clone()?).metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{path} in the image is not a regular file"),
            ));
        }
        let mut buf = [0u8; 32];
        let flags = OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let reopened = nix::fcntl::open(proc_fd_path(&looked_at, &mut buf), flags, Mode::empty())?;
        let mut text = String::new();
        File::from(reopened).read_to_string(&mut text)?;
        Ok(text)
    }

    /// Makes the directory `path` inside the root and the missing ones above it (`mkdir -p`,
    /// `0755`), and returns it opened (`O_PATH`).
    pub fn make_dirs(&self, path: &str) -> io::Result<OwnedFd> {
        Ok(self
            .child_path(path)?
            .open(self.fd.as_fd(), Create::Dirs(0o755))?)
    }
}
// ANCHOR_END: root

#[cfg(test)]
mod tests {
    use super::*;
    use chroot::ChildStep;

    #[test]
    fn proc_fd_paths_are_formatted_without_allocating() {
        let mut buf = [0u8; 32];
        let fd = |n: i32| n;
        assert_eq!(proc_fd_path(&fd(7), &mut buf), c"/proc/self/fd/7");
        assert_eq!(proc_fd_path(&fd(1234), &mut buf), c"/proc/self/fd/1234");
        assert_eq!(proc_fd_path(&fd(0), &mut buf), c"/proc/self/fd/0");
        assert_eq!(
            proc_fd_path(&fd(i32::MAX), &mut buf),
            c"/proc/self/fd/2147483647"
        );
    }

    /// A root whose `/srv` points at a host directory, whose `/up` climbs out, and whose `/etc`
    /// is a symlink to a host directory holding a passwd file.
    struct Hostile {
        dir: tempfile::TempDir,
    }

    impl Hostile {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            let outside = dir.path().join("outside");
            std::fs::create_dir_all(&root).unwrap();
            std::fs::create_dir_all(&outside).unwrap();
            std::fs::write(outside.join("passwd"), "intruder:x:0:0::/:/bin/sh\n").unwrap();
            std::os::unix::fs::symlink(&outside, root.join("srv")).unwrap();
            std::os::unix::fs::symlink(&outside, root.join("etc")).unwrap();
            std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
            Hostile { dir }
        }
        fn root(&self) -> std::path::PathBuf {
            self.dir.path().join("root")
        }
        fn outside(&self) -> std::path::PathBuf {
            self.dir.path().join("outside")
        }
        /// Where an absolute symlink to `outside` must lead: the same path inside the root.
        fn inside(&self) -> std::path::PathBuf {
            self.root().join(self.outside().strip_prefix("/").unwrap())
        }
    }

    #[test]
    fn directories_are_made_inside_the_root() {
        let h = Hostile::new();
        let root = Root::open(&h.root()).unwrap();
        root.make_dirs("/srv/www").unwrap();
        root.make_dirs("/up/x").unwrap();
        root.make_dirs("/../../../../climb").unwrap();
        assert!(h.inside().join("www").is_dir());
        assert!(h.root().join("x").is_dir());
        assert!(h.root().join("climb").is_dir());
        assert!(!h.outside().join("www").exists());
        assert!(!h.dir.path().join("climb").exists());
    }

    #[test]
    fn files_are_read_inside_the_root() {
        let h = Hostile::new();
        let root = Root::open(&h.root()).unwrap();
        let err = root.read_to_string("/etc/passwd").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        std::fs::create_dir_all(h.inside()).unwrap();
        std::fs::write(h.inside().join("passwd"), "lab:x:1:1::/:/bin/sh\n").unwrap();
        let text = root.read_to_string("etc/passwd").unwrap();
        assert!(text.starts_with("lab:"), "{text}");
        // A fifo is refused rather than read forever.
        nix::unistd::mkfifo(&h.inside().join("group"), Mode::from_bits_truncate(0o644)).unwrap();
        assert!(root.read_to_string("/etc/group").is_err());
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let h = Hostile::new();
        let root = Root::open(&h.root()).unwrap();
        let inside = format!("{}/www", h.outside().display());
        assert_eq!(root.resolve("/srv/www").unwrap(), inside);
        assert_eq!(root.resolve("/up/../x/./y").unwrap(), "/x/y");
        assert_eq!(root.resolve("/plain/path").unwrap(), "/plain/path");
        std::os::unix::fs::symlink("loop", h.root().join("loop")).unwrap();
        assert!(root.resolve("/loop/x").is_err());
    }

    #[test]
    fn a_symlink_is_made_inside_the_root() {
        let h = Hostile::new();
        std::fs::create_dir_all(h.inside()).unwrap();
        let root = Root::open(&h.root()).unwrap();
        let step = SymlinkInRoot::new(&root, "/srv/ptmx", "pts/ptmx").unwrap();
        step.run().unwrap();
        assert_eq!(
            std::fs::read_link(h.inside().join("ptmx")).unwrap(),
            Path::new("pts/ptmx")
        );
        assert!(!h.outside().join("ptmx").exists());
        assert_eq!(step.to_string(), "create symlink /srv/ptmx -> pts/ptmx");
    }

    #[test]
    fn a_file_target_is_made_inside_the_root() {
        let h = Hostile::new();
        let root = Root::open(&h.root()).unwrap();
        // /etc leads to a directory the root lacks: it is made there, inside.
        root.child_path("/etc/hosts")
            .unwrap()
            .open(root.fd.as_fd(), Create::File)
            .unwrap();
        assert!(h.inside().join("hosts").is_file());
        assert!(!h.outside().join("hosts").exists());
        let missing = PathInRoot::new("/nothing/here").unwrap();
        assert_eq!(
            missing.open(root.fd.as_fd(), Create::Nothing).unwrap_err(),
            Errno::ENOENT
        );
    }
}
