//! Reading files beneath a directory, and never outside it: the build context, a layout `load`s.
//!
//! A path string is checked at one moment and used at another. `COPY data /d` checks that
//! `data/secret.txt` is a regular file of the build context, and a moment later copies it; if
//! the file has become a symlink to `/etc/shadow` in between, a copy by path reads the host's
//! file, as root, into the image. Checking harder does not help: whatever the check sees, the
//! path is resolved again when it is used.
//!
//! So skiff holds the directory open ([`Beneath`]) and opens every file *through* it with
//! openat2(2), which resolves the rest of the path under rules the kernel enforces while it
//! walks, atomically with the open:
//!
//! - `RESOLVE_BENEATH`: no component may leave the directory (`..` above it, an absolute path or
//!   an absolute symlink: `EXDEV`);
//! - `RESOLVE_NO_SYMLINKS` ([`Links::Refuse`], the build context): no symlink is followed at
//!   all (`ELOOP`): the context's own links were resolved when the plan was made, so a link
//!   met now is one swapped in since;
//! - `RESOLVE_NO_MAGICLINKS` ([`Links::Inside`], a directory `load` reads): links inside the
//!   layout are followed (skopeo writes `<id>/layer.tar -> ../<hex>.tar`), links out are not.
//!
//! What is opened must be a regular file (checked on the descriptor, with fstat(2); a fifo is
//! opened non-blocking so that it cannot hang the engine), and the descriptor, not the path, is
//! then read. On kernels before 5.6 (no openat2) the walk is done by hand, one component at a
//! time with `O_NOFOLLOW`, and every symlink is refused.
//!
//! The defence is called `context-beneath`; a debug build run with
//! `SKIFF_UNSAFE_DISABLE=context-beneath` opens by path, as skiff did before, so the labs can
//! show that their checks fail without it. See openat2(2), path_resolution(7), symlink(7).

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// The name of this defence, for `SKIFF_UNSAFE_DISABLE`.
pub const DEFENCE: &str = "context-beneath";

/// Which symlinks a path beneath the directory may go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// None at all (the build context, whose links were resolved when the plan was made).
    Refuse,
    /// Those that stay inside the directory (a layout `load` reads).
    Inside,
}

/// A directory held open, and the paths beneath it that may be read. Cloning shares the
/// descriptor.
#[derive(Debug, Clone)]
pub struct Beneath {
    dir: Arc<OwnedFd>,
    path: PathBuf,
}

impl Beneath {
    /// Opens the directory `path` (following symlinks: the user named it).
    pub fn open(path: &Path) -> io::Result<Beneath> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = nix::fcntl::open(path, flags, Mode::empty())?;
        Ok(Beneath {
            dir: Arc::new(dir),
            path: path.to_path_buf(),
        })
    }

    /// The directory, as it was named.
    pub fn path(&self) -> &Path {
        &self.path
    }

    // ANCHOR: open_file
    /// Opens the regular file `rel` (relative to the directory) for reading.
    pub fn open_file(&self, rel: &str, links: Links) -> io::Result<File> {
        let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let file = File::from(self.open_fd(rel, flags, links)?);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(file)
    }
    // ANCHOR_END: open_file

    /// The metadata of `rel` itself (a symlink's own, not its target's), found without
    /// following any symlink on the way.
    pub fn symlink_metadata(&self, rel: &str) -> io::Result<Metadata> {
        if !enabled() {
            return std::fs::symlink_metadata(self.path.join(rel));
        }
        File::from(self.open_fd(rel, OFlag::O_PATH | OFlag::O_NOFOLLOW, Links::Refuse)?).metadata()
    }

    /// The target of the symlink `rel`, found without following any symlink on the way.
    pub fn read_link(&self, rel: &str) -> io::Result<PathBuf> {
        if !enabled() {
            return std::fs::read_link(self.path.join(rel));
        }
        let link = self.open_fd(rel, OFlag::O_PATH | OFlag::O_NOFOLLOW, Links::Refuse)?;
        let target = nix::fcntl::readlinkat(&link, "")?;
        Ok(PathBuf::from(target))
    }

    /// The names in the directory `rel`, unsorted (`.` and `..` left out).
    pub fn read_dir(&self, rel: &str) -> io::Result<Vec<std::ffi::OsString>> {
        if !enabled() {
            return std::fs::read_dir(self.path.join(rel))?
                .map(|entry| entry.map(|e| e.file_name()))
                .collect();
        }
        let fd = self.open_fd(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Links::Refuse)?;
        let mut dir = nix::dir::Dir::from_fd(fd)?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(&name).to_os_string());
            }
        }
        Ok(names)
    }

    // ANCHOR: open_fd
    /// openat2(2) of `rel` beneath the directory, with `flags` (close-on-exec always).
    fn open_fd(&self, rel: &str, flags: OFlag, links: Links) -> io::Result<OwnedFd> {
        let flags = flags | OFlag::O_CLOEXEC;
        let rel = if rel.is_empty() { "." } else { rel };
        if !enabled() {
            // The switched-off defence: a path, resolved again now, symlinks and all.
            return Ok(nix::fcntl::open(
                &self.path.join(rel),
                flags,
                Mode::empty(),
            )?);
        }
        let resolve = match links {
            Links::Refuse => ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS,
            Links::Inside => ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        };
        let how = OpenHow::new().flags(flags).resolve(resolve);
        match nix::fcntl::openat2(self.dir.as_fd(), rel, how) {
            Err(Errno::ENOSYS) => self.walk(rel, flags),
            Err(errno) => Err(explain(errno)),
            Ok(fd) => Ok(fd),
        }
    }
    // ANCHOR_END: open_fd

    /// The same without openat2 (Linux before 5.6): one component at a time, none of them a
    /// symlink, none of them `..`.
    fn walk(&self, rel: &str, flags: OFlag) -> io::Result<OwnedFd> {
        let parts: Vec<&OsStr> = Path::new(rel)
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(Ok(name)),
                Component::CurDir => None,
                _ => Some(Err(explain(Errno::EXDEV))),
            })
            .collect::<io::Result<_>>()?;
        let Some((last, parents)) = parts.split_last() else {
            return Ok(nix::fcntl::openat(
                self.dir.as_fd(),
                ".",
                flags,
                Mode::empty(),
            )?);
        };
        let mut dir: Option<OwnedFd> = None;
        for name in parents {
            let at = dir.as_ref().map_or(self.dir.as_fd(), |d| d.as_fd());
            let step = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            dir = Some(nix::fcntl::openat(at, *name, step, Mode::empty()).map_err(explain)?);
        }
        let at = dir.as_ref().map_or(self.dir.as_fd(), |d| d.as_fd());
        nix::fcntl::openat(at, *last, flags | OFlag::O_NOFOLLOW, Mode::empty()).map_err(explain)
    }
}

/// Whether files are opened beneath the directory (always, unless a debug build's test
/// switched the defence off).
pub fn enabled() -> bool {
    !chroot::defence::disabled(DEFENCE)
}

/// The errors of a refused walk, in words.
fn explain(errno: Errno) -> io::Error {
    let reason = match errno {
        Errno::ELOOP => {
            "it is, or goes through, a symbolic link now: the directory changed after it was checked"
        }
        Errno::EXDEV => "it leads outside the directory",
        _ => return errno.into(),
    };
    io::Error::new(io::ErrorKind::PermissionDenied, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn dir() -> (tempfile::TempDir, Beneath) {
        let tmp = tempfile::tempdir().unwrap();
        let inside = tmp.path().join("dir");
        std::fs::create_dir_all(inside.join("sub")).unwrap();
        std::fs::write(inside.join("sub/file"), "inside").unwrap();
        std::fs::write(tmp.path().join("secret"), "host secret").unwrap();
        symlink("../secret", inside.join("up")).unwrap();
        symlink(tmp.path().join("secret"), inside.join("absolute")).unwrap();
        symlink("sub/file", inside.join("inner")).unwrap();
        symlink(tmp.path(), inside.join("outdir")).unwrap();
        let beneath = Beneath::open(&inside).unwrap();
        (tmp, beneath)
    }

    fn read(file: io::Result<File>) -> io::Result<String> {
        let mut text = String::new();
        file?.read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn files_inside_are_read() {
        let (_tmp, dir) = dir();
        assert_eq!(
            read(dir.open_file("sub/file", Links::Refuse)).unwrap(),
            "inside"
        );
        assert_eq!(
            read(dir.open_file("./sub//file", Links::Inside)).unwrap(),
            "inside"
        );
        assert_eq!(
            read(dir.open_file("inner", Links::Inside)).unwrap(),
            "inside"
        );
    }

    #[test]
    fn no_symlink_leads_out() {
        let (_tmp, dir) = dir();
        for (path, links) in [
            ("up", Links::Inside),
            ("absolute", Links::Inside),
            ("outdir/secret", Links::Inside),
            ("../secret", Links::Inside),
            ("up", Links::Refuse),
            ("outdir/secret", Links::Refuse),
            ("inner", Links::Refuse),
        ] {
            let err = read(dir.open_file(path, links)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{path}: {err}");
        }
        assert!(
            dir.open_file("sub", Links::Refuse)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let (tmp, dir) = dir();
        nix::unistd::mkfifo(
            &tmp.path().join("dir/fifo"),
            Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let err = dir.open_file("fifo", Links::Refuse).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn links_are_seen_as_links() {
        let (tmp, dir) = dir();
        assert!(dir.symlink_metadata("up").unwrap().file_type().is_symlink());
        assert_eq!(dir.read_link("up").unwrap(), Path::new("../secret"));
        assert_eq!(
            dir.read_link("absolute").unwrap(),
            tmp.path().join("secret")
        );
        // A directory reached through a link is not listed.
        assert!(dir.read_dir("outdir").is_err());
        let mut names = dir.read_dir(".").unwrap();
        names.sort();
        assert_eq!(names, ["absolute", "inner", "outdir", "sub", "up"]);
    }

    #[test]
    fn the_walk_without_openat2_refuses_links_too() {
        let (_tmp, dir) = dir();
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        assert!(dir.walk("sub/file", flags).is_ok());
        assert!(dir.walk("outdir/secret", flags).is_err());
        assert!(dir.walk("up", flags).is_err());
        assert!(dir.walk("../secret", flags).is_err());
    }
}
