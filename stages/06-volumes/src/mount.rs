//! Mounting inside the container's root, safely: the step the child runs for each volume.
//!
//! The obvious way, `mount(source, "<rootfs>/srv")`, is a hole. The kernel resolves that path
//! as the host sees it, and the image decides what `/srv` is: a symlink to `/etc` would put the
//! volume on the host's `/etc` (in the container's mount namespace, but still), and creating a
//! missing `/srv/www` through that symlink would make directories on the host. runc had exactly
//! this bug (CVE-2021-30465: a symlink swapped in between check and mount).
//!
//! So the child asks the kernel to resolve the path *as if the rootfs were `/`*:
//! openat2(2) with `RESOLVE_IN_ROOT` follows symlinks, but an absolute one starts again at the
//! rootfs and `..` stops there. It walks the target one component at a time, creating what is
//! missing with mkdirat(2) in the directory it just opened, and mounts onto the file descriptor
//! it ends with, through its `/proc/self/fd/N` name. Between the open and the mount, nothing can
//! move the target elsewhere: the descriptor pins it.
//!
//! All of this happens in the child, after the mounts of the stage before (and after the
//! volumes above this one: `/srv` before `/srv/www`), so every path is resolved in the view the
//! container will have. Each call is a plain system call on data prepared before clone(2).
//! See openat2(2), path_resolution(7), mount(2), proc(5) (`/proc/self/fd`).

use std::ffi::{CStr, CString};
use std::fmt;

use nix::errno::Errno;
use nix::mount::MsFlags;

/// One mount of a volume, a bind or a tmpfs onto a path inside the container's root.
#[derive(Debug)]
pub struct MountInRoot {
    /// The container's root, on the host (a path skiff made: no symlinks of the image's).
    pub root: CString,
    /// The target's leading paths inside the root, relative: `srv`, `srv/www`.
    pub prefixes: Vec<CString>,
    /// The last component of each prefix: `srv`, `www`.
    pub names: Vec<CString>,
    /// The target is a file (a bind mount of a file), not a directory.
    pub file: bool,
    /// What to mount: a host directory or file, or `tmpfs`.
    pub source: Option<CString>,
    /// The filesystem type (`tmpfs`); none for a bind mount.
    pub fstype: Option<CString>,
    /// `MS_*` flags of the mount.
    pub flags: MsFlags,
    /// Filesystem options (`size=...,mode=...`).
    pub data: Option<CString>,
    /// For a bind mount: the flags of the second mount call that makes it `nodev` (and
    /// read-only, with `MS_RDONLY`), besides `MS_BIND | MS_REMOUNT` (a bind mount takes no
    /// flags of its own; it must be remounted).
    pub remount: Option<MsFlags>,
    /// The target as the user wrote it, for messages.
    pub target: String,
}

/// Formats `/proc/self/fd/<fd>` into `buf` without allocating: the child may not allocate.
fn proc_fd_path(fd: libc::c_int, buf: &mut [u8; 32]) -> &CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut n = fd.unsigned_abs();
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

/// A file descriptor closed when dropped; the child's way of not leaking them on errors.
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours, opened by this step, and closed once.
        unsafe { libc::close(self.0) };
    }
}

// ANCHOR: open_in_root
/// openat2(2): opens `path` under `root`, resolving it as if `root` were `/`.
fn open_in_root(root: &Fd, path: &CStr, directory: bool) -> Result<Fd, Errno> {
    let mut how: libc::open_how = {
        // SAFETY: open_how is plain integers; all zero is its documented initial value.
        unsafe { std::mem::zeroed() }
    };
    let directory = if directory { libc::O_DIRECTORY } else { 0 };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC | directory) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: `path` is NUL-terminated and `how` lives across the call, its size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.0,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        match Errno::result(fd) {
            // A rename elsewhere on the system raced the lookup: the kernel asks to retry.
            Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e),
            Ok(fd) => return libc::c_int::try_from(fd).map(Fd).map_err(|_| Errno::EBADF),
        }
    }
}
// ANCHOR_END: open_in_root

impl MountInRoot {
    // ANCHOR: walk
    /// Opens the target inside the root, creating each missing component: a directory, or for
    /// a file bind mount, an empty file as the last one.
    fn open_target(&self, root: &Fd) -> Result<Fd, Errno> {
        let mut parent: Option<Fd> = None;
        for (i, (prefix, name)) in self.prefixes.iter().zip(&self.names).enumerate() {
            let directory = !(self.file && i + 1 == self.prefixes.len());
            let opened = match open_in_root(root, prefix, directory) {
                Err(Errno::ENOENT) => {
                    // Missing: create it in the directory opened last, which is inside the root
                    // whatever symlinks led there, then open it the same careful way.
                    let dir = parent.as_ref().unwrap_or(root).0;
                    let made = if directory {
                        // SAFETY: `name` is one NUL-terminated path component.
                        Errno::result(unsafe { libc::mkdirat(dir, name.as_ptr(), 0o755) }).map(drop)
                    } else {
                        // SAFETY: as above; the new descriptor is closed at once.
                        Errno::result(unsafe {
                            libc::openat(
                                dir,
                                name.as_ptr(),
                                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                                0o644,
                            )
                        })
                        .map(|fd| drop(Fd(fd)))
                    };
                    match made {
                        Ok(()) | Err(Errno::EEXIST) => open_in_root(root, prefix, directory)?,
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
}

impl chroot::ChildStep for MountInRoot {
    // ANCHOR: run
    fn run(&self) -> Result<(), Errno> {
        // SAFETY: `root` is NUL-terminated; the descriptor is owned by the guard.
        let root = Fd(Errno::result(unsafe {
            libc::open(
                self.root.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?);
        let target = self.open_target(&root)?;
        let mut buf = [0u8; 32];
        nix::mount::mount(
            self.source.as_deref(),
            proc_fd_path(target.0, &mut buf),
            self.fstype.as_deref(),
            self.flags,
            self.data.as_deref(),
        )?;
        if let Some(flags) = self.remount {
            // The descriptor still names the directory *under* the new mount; opened again,
            // the path leads into the mount, which is what must become nodev (or read-only).
            let last = self.prefixes.last().ok_or(Errno::EINVAL)?;
            let mounted = open_in_root(&root, last, !self.file)?;
            nix::mount::mount(
                None::<&CStr>,
                proc_fd_path(mounted.0, &mut buf),
                None::<&CStr>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
                None::<&CStr>,
            )?;
        }
        Ok(())
    }
    // ANCHOR_END: run

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        match errno {
            Errno::ENOTDIR => Some(
                "a directory cannot be mounted on a file, nor a file on a directory: check both sides",
            ),
            Errno::ENOENT => Some("the target leads through a symlink to nothing inside the image"),
            Errno::EROFS => {
                Some("the container's root is read-only: the mount point must exist in the image")
            }
            _ => None,
        }
    }
}

impl fmt::Display for MountInRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.fstype, &self.source) {
            (Some(fstype), _) => write!(f, "mount {} on {}", fstype.to_string_lossy(), self.target),
            (None, Some(source)) => {
                write!(f, "mount {} on {}", source.to_string_lossy(), self.target)
            }
            (None, None) => write!(f, "mount on {}", self.target),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fd_paths_are_formatted_without_allocating() {
        let mut buf = [0u8; 32];
        assert_eq!(proc_fd_path(7, &mut buf), c"/proc/self/fd/7");
        assert_eq!(proc_fd_path(1234, &mut buf), c"/proc/self/fd/1234");
        assert_eq!(proc_fd_path(0, &mut buf), c"/proc/self/fd/0");
        assert_eq!(
            proc_fd_path(i32::MAX, &mut buf),
            c"/proc/self/fd/2147483647"
        );
    }

    fn step(root: &std::path::Path, target: &str) -> MountInRoot {
        crate::feature::mount_step(root, &crate::spec::parse_tmpfs(target).unwrap(), None).unwrap()
    }

    #[test]
    fn walking_stays_inside_the_root_and_creates_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // The same path inside the root: where an absolute symlink must lead.
        let inside = root.join(outside.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        // An image whose /srv points at a host path, and whose /up climbs out.
        std::os::unix::fs::symlink(&outside, root.join("srv")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        let root_fd = Fd(nix::fcntl::open(
            &root,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(std::os::fd::IntoRawFd::into_raw_fd)
        .unwrap());
        step(&root, "/srv/www").open_target(&root_fd).unwrap();
        step(&root, "/up/etc/x").open_target(&root_fd).unwrap();
        // The absolute symlink was followed inside the root, the climb stopped at it.
        assert!(inside.join("www").is_dir());
        assert!(root.join("etc/x").is_dir());
        assert!(!outside.join("www").exists());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
