//! `diff`: what a container changed in its file system. See docker-container-diff(1).
//!
//! Everything a container writes lands in its overlay's upper directory (stage 04), so the
//! changes are that directory read in overlayfs's own spelling: a file there that the image's
//! layers also have was changed (`C`), one they lack was added (`A`), and a character device
//! 0:0 is a whiteout, a file deleted (`D`). A directory with `trusted.overlay.opaque=y`
//! replaced the image's directory of that name: everything the image had in it is gone, and
//! what the upper dir holds in it is new. Lines are sorted by path, as Docker prints them.
//!
//! The upper directory is walked by descriptor ([`crate::archive::children`]): a running
//! container cannot make the walk follow a link out of it.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use namespaces::RootArgs;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::SFlag;

use crate::archive::{children, kind};
use crate::beneath::open_at;

/// `diff`'s arguments.
#[derive(Args)]
pub struct DiffArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// One change: Docker's letter and the path inside the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Changed: the image has the path too.
    Changed,
    /// Added.
    Added,
    /// Deleted.
    Deleted,
}

impl Kind {
    /// `C`, `A` or `D`.
    pub fn letter(self) -> char {
        match self {
            Kind::Changed => 'C',
            Kind::Added => 'A',
            Kind::Deleted => 'D',
        }
    }
}

/// `diff`.
pub fn command(args: &DiffArgs) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let record = crate::lifecycle::find(root, &args.container)?;
    if record.image_id.is_empty() {
        bail!(
            "container {} runs on a root directory, not on an image's layers: it has no changes to show",
            record.name
        );
    }
    for (path, kind) in of(root, &record)? {
        println!("{} {path}", kind.letter());
    }
    Ok(0)
}

/// The changes of the container `record` over its image's layers (the API's `changes` too).
pub fn of(
    root: &Path,
    record: &crate::container::Record,
) -> anyhow::Result<BTreeMap<String, Kind>> {
    let store = images::Store::open(root)?;
    let image: images::Digest = record.image_id.parse()?;
    let layers = store.layer_dirs(&image)?;
    let upper = crate::container::records(root)
        .dir(&record.id)
        .join("upper");
    changes(&upper, &layers)
}

// ANCHOR: changes
/// The changes in `upper` over `layers` (lowest first), sorted by path.
pub fn changes(upper: &Path, layers: &[PathBuf]) -> anyhow::Result<BTreeMap<String, Kind>> {
    let mut found = BTreeMap::new();
    let dir = match nix::fcntl::open(
        upper,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(dir) => dir,
        // Never started: nothing changed.
        Err(nix::errno::Errno::ENOENT) => return Ok(found),
        Err(e) => return Err(e).with_context(|| format!("open {}", upper.display())),
    };
    let below = Below { layers };
    walk(&dir, "", &below, &mut found).with_context(|| format!("read {}", upper.display()))?;
    Ok(found)
}

/// Reads the directory `dir` (`path` in the container) of the upper dir into `found`;
/// returns whether it holds any change.
fn walk(
    dir: &OwnedFd,
    path: &str,
    below: &Below<'_>,
    found: &mut BTreeMap<String, Kind>,
) -> std::io::Result<bool> {
    let mut any = false;
    for name in children(dir)? {
        let child = format!("{path}/{}", name.to_string_lossy());
        let stat =
            nix::sys::stat::fstatat(dir.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let file_type = kind(&stat);
        if file_type == SFlag::S_IFCHR && stat.st_rdev == 0 {
            found.insert(child, Kind::Deleted);
            any = true;
            continue;
        }
        if engine_made(&child, file_type, stat.st_size) {
            continue;
        }
        let existed = below.has(&child);
        if file_type != SFlag::S_IFDIR {
            found.insert(child, if existed { Kind::Changed } else { Kind::Added });
            any = true;
            continue;
        }
        let sub = open_at(dir.as_fd(), &name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let opaque = is_opaque(&sub);
        let inner = walk(&sub, &child, below, found)?;
        if opaque {
            // Whatever the image had in it is hidden: each such name is a deletion.
            let kept: BTreeSet<String> = children(&sub)?
                .iter()
                .map(|n| format!("{child}/{}", n.to_string_lossy()))
                .collect();
            for gone in below.names_in(&child) {
                if !kept.contains(&gone) {
                    found.insert(gone, Kind::Deleted);
                }
            }
        }
        // A directory the image has shows as changed when something in it changed (that is
        // why overlayfs copied it up); a new one is always an addition.
        if !existed || inner || opaque {
            found.insert(child, if existed { Kind::Changed } else { Kind::Added });
            any = true;
        }
    }
    Ok(any)
}
// ANCHOR_END: changes

/// What the engine itself made in the container's root to mount over: empty `/etc/hostname`,
/// `/etc/hosts`, `/etc/resolv.conf`; empty `/proc`, `/sys`, `/dev`. Docker keeps these in a
/// layer of its own, out of `diff`.
fn engine_made(path: &str, kind: SFlag, size: i64) -> bool {
    match path {
        "/etc/hostname" | "/etc/hosts" | "/etc/resolv.conf" => kind == SFlag::S_IFREG && size == 0,
        "/proc" | "/sys" | "/dev" => kind == SFlag::S_IFDIR,
        _ => false,
    }
}

fn is_opaque(dir: &OwnedFd) -> bool {
    let mut value = [0u8; 4];
    let name = c"trusted.overlay.opaque";
    // SAFETY: fgetxattr reads into a buffer of the length given; the name is a C string.
    let n = unsafe {
        libc::fgetxattr(
            std::os::fd::AsRawFd::as_raw_fd(dir),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

/// The image's layers, to ask whether a path was there before the container.
struct Below<'a> {
    /// Lowest first.
    layers: &'a [PathBuf],
}

impl Below<'_> {
    // ANCHOR: below
    /// The image has `path`: the topmost layer that says anything about it has it, and no
    /// layer above hid it (a whiteout, an opaque directory, a file where a directory was).
    /// Each prefix is looked at without following links, so a link in a layer leads nowhere.
    fn has(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for layer in self.layers.iter().rev() {
            let mut at = layer.clone();
            for (i, part) in parts.iter().enumerate() {
                at.push(part);
                let Ok(meta) = std::fs::symlink_metadata(&at) else {
                    break; // not in this layer: ask the one below
                };
                let last = i + 1 == parts.len();
                if meta.file_type().is_char_device() && meta.rdev() == 0 {
                    return false; // whited out
                }
                if last {
                    return true;
                }
                if !meta.is_dir() {
                    return false; // a file hides what lower layers had beneath that name
                }
                if xattr_opaque(&at) {
                    // Nothing below this layer shows through; the walk goes on in it.
                    return self.has_in(layer, &parts[i + 1..], &at);
                }
            }
        }
        false
    }
    // ANCHOR_END: below

    /// The rest of `parts` under `at` in this one layer.
    fn has_in(&self, _layer: &Path, parts: &[&str], at: &Path) -> bool {
        let mut at = at.to_path_buf();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let Ok(meta) = std::fs::symlink_metadata(&at) else {
                return false;
            };
            if meta.file_type().is_char_device() && meta.rdev() == 0 {
                return false;
            }
            if i + 1 == parts.len() {
                return true;
            }
            if !meta.is_dir() {
                return false;
            }
        }
        false
    }

    /// The paths the image has directly in the directory `path`.
    fn names_in(&self, path: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for layer in self.layers {
            let dir = layer.join(path.trim_start_matches('/'));
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    let child = format!("{path}/{}", entry.file_name().to_string_lossy());
                    if self.has(&child) {
                        names.insert(child);
                    }
                }
            }
        }
        names
    }
}

fn xattr_opaque(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut value = [0u8; 4];
    let name = c"trusted.overlay.opaque";
    // SAFETY: lgetxattr reads into a buffer of the length given; path and name are C strings.
    let n = unsafe {
        libc::lgetxattr(
            c_path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_changed_and_deleted_sorted_as_docker() {
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("lower");
        let upper = dir.path().join("upper");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/motd"), "hi").unwrap();
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "root\nlab").unwrap();
        std::fs::write(upper.join("etc/new"), "n").unwrap();
        std::fs::write(upper.join("etc/hostname"), "").unwrap();
        std::fs::create_dir_all(upper.join("tmp/deep")).unwrap();
        if nix::unistd::geteuid().is_root() {
            nix::sys::stat::mknod(
                &upper.join("etc/motd"),
                SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )
            .unwrap();
        }
        let found = changes(&upper, &[lower]).unwrap();
        let lines: Vec<String> = found
            .iter()
            .map(|(p, k)| format!("{} {p}", k.letter()))
            .collect();
        let mut expected = vec![
            "C /etc",
            "A /etc/new",
            "C /etc/passwd",
            "A /tmp",
            "A /tmp/deep",
        ];
        if nix::unistd::geteuid().is_root() {
            expected.insert(1, "D /etc/motd");
        }
        assert_eq!(lines, expected);
    }
}
