//! Paths inside a container, resolved inside its root: openat2(2) with `RESOLVE_IN_ROOT`.
//!
//! A path that `cp` reads or writes in a container names a file *of the container*, so every
//! symlink on the way must be followed as the container would follow it: `/x -> /etc` means the
//! container's `/etc`, never the host's. Joining strings (`<rootfs>` + `/x/passwd`) and letting
//! the host's kernel resolve the result gets that wrong: an absolute link starts again at the
//! host's `/`, and `..` climbs out. That was docker cp's CVE-2018-15664, where a container
//! swapped a directory for such a link while `docker cp` was running.
//!
//! openat2(2) resolves a path relative to a directory descriptor with `RESOLVE_IN_ROOT`: the
//! kernel treats that directory as `/` for the whole walk (absolute links and `..` stay under
//! it), atomically, so a link swapped in mid-walk cannot escape either. `RESOLVE_NO_MAGICLINKS`
//! refuses `/proc/PID/root`-style links, which point anywhere. Everything after the first
//! lookup works on descriptors: a name in a directory we hold open, opened with `O_NOFOLLOW`.
//! See openat2(2), path_resolution(7), symlink(7).

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// The name of the defence (for `SKIFF_UNSAFE_DISABLE`, test builds only).
pub const DEFENCE: &str = "cp-in-root";

/// A container's root directory, held open: the `/` of every path resolved through it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens `dir` (a host path the engine chose: `/proc/PID/root`, an overlay's merged dir)
    /// as the root of later lookups.
    pub fn at(dir: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    /// The root's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    // ANCHOR: open_in_root
    /// Opens `path` (a path inside the container, absolute or not) with `flags`, every
    /// component resolved inside the root: symlinks are followed as the container sees them,
    /// `..` stops at its `/`, and magic links are refused.
    pub fn open(&self, path: &str, flags: OFlag) -> io::Result<OwnedFd> {
        let relative = relative(path);
        if chroot::defence::disabled(DEFENCE) {
            // The hole, for the labs' self-test: the host resolves a joined string, so an
            // absolute symlink in the container starts again at the host's `/`.
            let joined = format!("/proc/self/fd/{}/{relative}", self.fd.as_raw_fd());
            return Ok(nix::fcntl::open(
                joined.as_str(),
                flags | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?);
        }
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        Ok(nix::fcntl::openat2(&self.fd, relative, how)?)
    }
    // ANCHOR_END: open_in_root

    /// The directory that holds `path`, resolved inside the root, and the last component's
    /// name, which the caller uses with `*at` calls that do not follow it (`O_NOFOLLOW`,
    /// `AT_SYMLINK_NOFOLLOW`). `None` for the root itself (`/`, `/.`, `/..`).
    pub fn parent(&self, path: &str) -> io::Result<(OwnedFd, Option<String>)> {
        let clean = clean(path);
        match clean.rsplit_once('/') {
            None if clean.is_empty() => Ok((self.open(".", dir_flags())?, None)),
            None => Ok((self.open(".", dir_flags())?, Some(clean))),
            Some((dir, name)) => Ok((self.open(dir, dir_flags())?, Some(name.to_string()))),
        }
    }
}

/// Flags for a directory held only to look names up in it.
pub fn dir_flags() -> OFlag {
    OFlag::O_PATH | OFlag::O_DIRECTORY
}

/// `path` without its leading slashes (openat2 wants a relative path; `RESOLVE_IN_ROOT` would
/// read an absolute one the same way).
fn relative(path: &str) -> &str {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() { "." } else { trimmed }
}

/// A path inside the container, lexically cleaned: no empty or `.` components, `..` applied
/// (it cannot climb above `/`), no leading or trailing slash. `"/a/./b/../c/"` is `"a/c"`.
/// Lexical `..` is what Docker does with a cp path before it resolves it in the container.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    parts.join("/")
}

/// Opens `name` in `dir` with `flags | O_NOFOLLOW`: one component, never a symlink.
pub fn open_at(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::openat(
        dir,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_lexically() {
        assert_eq!(clean("/a/./b/../c/"), "a/c");
        assert_eq!(clean("/../../etc"), "etc");
        assert_eq!(clean("/"), "");
        assert_eq!(clean("."), "");
        assert_eq!(relative("/"), ".");
        assert_eq!(relative("//etc/x"), "etc/x");
    }

    #[test]
    fn an_absolute_symlink_stays_in_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/marker"), "inside").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("x")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("up")).unwrap();
        let root = Root::at(&root).unwrap();
        for path in ["/x/marker", "up/marker", "/../x/marker"] {
            let fd = root.open(path, OFlag::O_RDONLY).unwrap();
            let text = std::fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            assert_eq!(text.unwrap(), "inside", "{path}");
        }
        let (parent, name) = root.parent("/x/marker").unwrap();
        assert_eq!(name.as_deref(), Some("marker"));
        assert!(open_at(parent.as_fd(), OsStr::new("marker"), OFlag::O_RDONLY).is_ok());
        let (_, name) = root.parent("/").unwrap();
        assert_eq!(name, None);
    }
}
