//! The store is private: what skiff keeps under `--root` is root's alone.
//!
//! A running container's root filesystem is an ordinary directory on the host
//! (`<root>/containers/<id>/skiff-rootfs`, its writes in `.../upper`), and so is a named volume
//! (`<root>/volumes/<name>/_data`). Root inside the container can `chmod u+s` a copy of a shell
//! there; if a host user can walk down to that file, they can run it, and it runs as root on the
//! host. That is CVE-2021-41091 (Docker's `/var/lib/docker/overlay2` was `0701`, its container
//! directories traversable). Image blobs are files too: a private image's layers must not be
//! readable by every user of the machine.
//!
//! So skiff makes its store private, as Docker has done since 20.10.9:
//!
//! ```text
//! <root>/                 0710  only root lists it; the group bit is a door for a chosen group
//!                               (Docker's userns-remap root), closed while the group is root's
//!   containers/ volumes/  0700  each store of a later stage: root only
//!   networks/ layers/
//!   blobs/ images/ tmp/
//!   build-cache/
//!   blobs/sha256/<hex>    0600  blob files: root reads them, nobody else
//! ```
//!
//! Docker's own modes differ a little (`/var/lib/docker` 0710, `overlay2` 0710, `volumes` 0701,
//! `containers` 0710): its extra execute bits let the remapped root of `--userns-remap` walk down
//! to a layer or a volume's `_data`. skiff's containers never walk the store: overlayfs opens its
//! lower dirs with the credentials of whoever mounted it (root), and a volume reaches a container
//! as a bind mount made by root. So every directory below the root is simply `0700`.
//!
//! **Older stores** (made 0755 by an earlier skiff) are fixed on first use: each store, when
//! opened, looks at its own directory's mode (one stat(2), no walk) and takes away any bit
//! beyond the private mode. The store of blobs, when it finds its directory loose, makes its
//! files 0600 once, before it tightens the directory (so a crash in between is finished by the
//! next open). A mode is only ever tightened, never loosened.
//!
//! **A child in a user namespace** (`--userns remap`) is the namespace's root, uid 100000 on the
//! host, say: from `/` it cannot walk into the store any more, to its own state directory or to
//! a volume it must bind. So the parent holds each such directory open ([`HeldDir`]); the
//! child opens it again first of all, while it is still the host's root (its ids change only
//! after the go-ahead), puts it at the same descriptor number, and names it
//! `/proc/self/fd/N`: a link the kernel follows without checking the directories above.
//!
//! The defence is called `store-private` ([`DEFENCE`]); a debug build run with
//! `SKIFF_UNSAFE_DISABLE=store-private` creates the store with the default modes (0755), as
//! skiff did before, so the labs can show that their checks fail without it.

use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chroot::{ChildStep, Plan, Step};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// The name of this defence, for `SKIFF_UNSAFE_DISABLE`.
pub const DEFENCE: &str = "store-private";

/// The mode of the store's root directory.
pub const ROOT_MODE: u32 = 0o710;
/// The mode of every directory directly under the root.
pub const DIR_MODE: u32 = 0o700;
/// The mode of files that hold image content (blobs).
pub const FILE_MODE: u32 = 0o600;

/// Whether the store is made private (always, unless a debug build's test switched it off).
pub fn enabled() -> bool {
    !chroot::defence::disabled(DEFENCE)
}

// ANCHOR: store_dir
/// Makes sure the store root `root` exists and is private (0710), and its directory `name`
/// (0700); returns the path of the latter. Existing directories are tightened when they are
/// looser (a store made by an older skiff).
pub fn store_dir(root: &Path, name: &str) -> io::Result<PathBuf> {
    store_root(root)?;
    let dir = root.join(name);
    private_dir(&dir, DIR_MODE)?;
    Ok(dir)
}

/// Makes sure the store root exists and is private (0710). Its parents, when missing, are made
/// with the default modes: they are not skiff's.
pub fn store_root(root: &Path) -> io::Result<()> {
    match private_dir(root, ROOT_MODE) {
        // Only a root that is missing can have missing parents: they are looked at only then.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)?;
            }
            private_dir(root, ROOT_MODE).map(drop)
        }
        other => other.map(drop),
    }
}

/// Makes sure directory `dir` exists with no permission bit beyond `mode`: created with it, or
/// tightened to it. Returns whether an existing directory was looser (and has been tightened).
/// With the defence switched off, the directory is made with the default modes and left alone.
pub fn private_dir(dir: &Path, mode: u32) -> io::Result<bool> {
    if !enabled() {
        fs::create_dir_all(dir)?;
        return Ok(false);
    }
    // Looked at before it is made: it exists at every use but the first, and then one stat(2)
    // is all this costs, where a mkdir(2) that fails and a stat(2) were two.
    match fs::metadata(dir) {
        Ok(meta) => return tighten_from(dir, &meta, mode),
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => Ok(false),
        // Another process made it in between.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => tighten(dir, mode),
        Err(e) => Err(e),
    }
}
// ANCHOR_END: store_dir

/// Takes away every permission bit of `path` beyond `mode`; returns whether there were any.
pub fn tighten(path: &Path, mode: u32) -> io::Result<bool> {
    tighten_from(path, &fs::metadata(path)?, mode)
}

/// [`tighten`], with `path`'s metadata already read.
fn tighten_from(path: &Path, meta: &fs::Metadata, mode: u32) -> io::Result<bool> {
    let current = meta.permissions().mode() & 0o7777;
    if current & !mode == 0 {
        return Ok(false);
    }
    fs::set_permissions(path, fs::Permissions::from_mode(current & mode))?;
    Ok(true)
}

/// Whether `path` exists and has a permission bit beyond `mode` (one stat(2)).
pub fn is_loose(path: &Path, mode: u32) -> bool {
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 & !mode != 0)
}

/// The mode to create a blob file with: 0600, or the default 0644 with the defence off.
pub fn file_mode() -> u32 {
    if enabled() { FILE_MODE } else { 0o644 }
}

// ANCHOR: held_dir
/// A directory of the store held open by the parent, for a child in a user namespace that can
/// no longer walk down to it: the child reaches it as [`HeldDir::via`]. Keep it until the
/// child has started: its descriptor number is the one the child uses.
#[derive(Debug)]
pub struct HeldDir {
    fd: OwnedFd,
    via: PathBuf,
}

impl HeldDir {
    /// Opens `dir` and adds to `plan.early` the child's step that opens it again, in the
    /// child's own mount namespace (whose mounts are the ones it may bind), at the same number.
    pub fn hold(plan: &mut Plan, dir: &Path) -> io::Result<HeldDir> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(dir, flags, Mode::empty())?;
        let path = CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        plan.early.push(Step::Custom(Arc::new(ReopenAt {
            path,
            fd: fd.as_raw_fd(),
        })));
        let via = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        Ok(HeldDir { fd, via })
    }

    /// The directory as the child names it: `/proc/self/fd/N`.
    pub fn via(&self) -> &Path {
        &self.via
    }

    /// The descriptor number.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The child's first step in a user namespace: open the directory `path` (as the host's root,
/// which it still is) and put it at descriptor `fd`, close-on-exec.
#[derive(Debug)]
struct ReopenAt {
    path: CString,
    fd: RawFd,
}

impl ChildStep for ReopenAt {
    fn run(&self) -> Result<(), Errno> {
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: open(2) of a NUL-terminated path prepared before the clone.
        let opened = Errno::result(unsafe { libc::open(self.path.as_ptr(), flags) })?;
        // SAFETY: dup3(2) of the descriptor just opened onto a number this process owns (the
        // parent's copy of the same directory, inherited); `opened` is closed once, below.
        let moved = Errno::result(unsafe { libc::dup3(opened, self.fd, libc::O_CLOEXEC) });
        // SAFETY: closes the descriptor opened above, once.
        unsafe { libc::close(opened) };
        moved.map(drop)
    }
}
// ANCHOR_END: held_dir

impl fmt::Display for ReopenAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "open {} as descriptor {}",
            self.path.to_string_lossy(),
            self.fd
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_store_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("parent/root");
        let containers = store_dir(&root, "containers").unwrap();
        assert_eq!(mode(&root), ROOT_MODE);
        assert_eq!(mode(&containers), DIR_MODE);
        // The parent is not the store's: default modes.
        assert_eq!(mode(&tmp.path().join("parent")) & 0o005, 0o005);
    }

    #[test]
    fn an_old_store_is_tightened_once_and_never_loosened() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("volumes")).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(root.join("volumes"), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(private_dir(&root.join("volumes"), DIR_MODE).unwrap());
        assert!(
            !private_dir(&root.join("volumes"), DIR_MODE).unwrap(),
            "once"
        );
        store_root(&root).unwrap();
        assert_eq!(mode(&root), ROOT_MODE);
        // Stricter than ours: left as it is.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        store_dir(&root, "volumes").unwrap();
        assert_eq!(mode(&root), 0o700);
    }
}
