//! An image's files, read through its layers without mounting anything.
//!
//! COPY needs to know a little about the image it copies into: whether `/app` is a directory
//! (a file copied there goes inside it), whether `/bin` is a symlink (on merged-`/usr` systems
//! it points to `usr/bin`, and a file copied to `/bin/x` must land in `/usr/bin/x`, or the new
//! layer's `bin/` directory would hide the link), and what `/etc/passwd` says (`--chown=app`).
//! A build step could mount the image with overlayfs to look; [`ImageTree`] instead answers the
//! way overlayfs would, from the layer directories: the topmost layer holding a path wins, a
//! whiteout (a 0:0 character device) hides it, and an opaque directory
//! (`trusted.overlay.opaque=y`) hides everything below it in lower layers. See the kernel's
//! `Documentation/filesystems/overlayfs.rst`, "whiteouts and opaque directories".

use std::collections::VecDeque;
use std::fs::{self, Metadata};
use std::io;
use std::path::PathBuf;

use crate::unpack::{OVERLAY_OPAQUE_XATTR, is_whiteout};

/// How many symlinks a path may go through before it is refused (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// The merged view of an image's layer directories.
#[derive(Debug, Clone, Default)]
pub struct ImageTree {
    /// The unpacked layers, lowest first (as [`crate::store::Store::layer_dirs`] gives them).
    layers: Vec<PathBuf>,
}

/// The components of an absolute image path (`/a/./b/` is `a`, `b`).
fn components(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect()
}

fn is_opaque(dir: &std::path::Path) -> bool {
    matches!(xattr::get(dir, OVERLAY_OPAQUE_XATTR), Ok(Some(value)) if value == b"y")
}

impl ImageTree {
    /// The image whose layers are `layers`, lowest first; none for an empty (`scratch`) image.
    pub fn new(layers: Vec<PathBuf>) -> Self {
        ImageTree { layers }
    }

    // ANCHOR: lookup
    /// What the image holds at the absolute path `path`, symlinks not followed: the file in the
    /// topmost layer that has it, and its metadata; `None` when nothing is there.
    pub fn lookup(&self, path: &str) -> Option<(PathBuf, Metadata)> {
        let parts = components(path);
        'layers: for layer in self.layers.iter().rev() {
            let mut host = layer.clone();
            let mut opaque_above = false;
            for (i, part) in parts.iter().enumerate() {
                host.push(part);
                let Ok(meta) = fs::symlink_metadata(&host) else {
                    // Not in this layer: look lower, unless a directory here hides what is below.
                    if opaque_above {
                        return None;
                    }
                    continue 'layers;
                };
                if is_whiteout(&meta) {
                    return None; // deleted in this layer
                }
                if i + 1 == parts.len() {
                    return Some((host, meta));
                }
                if !meta.is_dir() {
                    return None; // a file or a link here hides directories of lower layers
                }
                opaque_above |= is_opaque(&host);
            }
            // The root directory itself.
            return fs::symlink_metadata(layer).ok().map(|m| (layer.clone(), m));
        }
        None
    }
    // ANCHOR_END: lookup

    /// `path` with the symlinks on the way followed inside the image, as a process in a
    /// container would follow them: an absolute target starts again at the image's root and
    /// `..` stops there, so the answer never leaves the image. The last component is followed
    /// too when `follow_last`. A path that does not exist resolves to where it would be.
    pub fn resolve(&self, path: &str, follow_last: bool) -> io::Result<String> {
        let mut resolved: Vec<String> = Vec::new();
        let mut pending: VecDeque<String> =
            components(path).into_iter().map(String::from).collect();
        let mut links = 0;
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            let is_last = pending.is_empty();
            let candidate = format!("/{}", [resolved.join("/"), part.clone()].join("/"));
            let link = match self.lookup(&candidate) {
                Some((host, meta))
                    if meta.file_type().is_symlink() && (follow_last || !is_last) =>
                {
                    Some(fs::read_link(host)?)
                }
                _ => None,
            };
            let Some(target) = link else {
                resolved.push(part);
                continue;
            };
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                resolved.clear();
            }
            for part in components(&target).into_iter().rev() {
                pending.push_front(part.to_string());
            }
        }
        Ok(format!("/{}", resolved.join("/")))
    }

    /// Whether `path`, symlinks followed, is a directory of the image.
    pub fn is_dir(&self, path: &str) -> bool {
        self.resolve(path, true)
            .ok()
            .and_then(|real| self.lookup(&real))
            .is_some_and(|(_, meta)| meta.is_dir())
    }

    /// The contents of the file at `path`, symlinks followed; `None` if there is none.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let real = self.resolve(path, true).ok()?;
        let (host, meta) = self.lookup(&real)?;
        if !meta.is_file() {
            return None;
        }
        fs::read(host).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn layer(dir: &std::path::Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = dir.join(name);
        fs::create_dir_all(&root).unwrap();
        for (path, body) in files {
            let p = root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            if let Some(target) = body.strip_prefix("->") {
                symlink(target, &p).unwrap();
            } else if path.ends_with('/') {
                fs::create_dir_all(&p).unwrap();
            } else {
                fs::write(&p, body).unwrap();
            }
        }
        root
    }

    #[test]
    fn the_topmost_layer_wins() {
        let dir = tempfile::tempdir().unwrap();
        let low = layer(
            dir.path(),
            "low",
            &[("etc/passwd", "low"), ("usr/bin/sh", "sh"), ("app/", "")],
        );
        let high = layer(
            dir.path(),
            "high",
            &[("etc/passwd", "high"), ("app", "file")],
        );
        let tree = ImageTree::new(vec![low, high]);
        assert_eq!(tree.read("/etc/passwd").unwrap(), b"high");
        assert_eq!(tree.read("/usr/bin/sh").unwrap(), b"sh");
        assert!(tree.is_dir("/usr/bin"));
        assert!(tree.is_dir("/"));
        // A file in a higher layer replaces a directory of a lower one.
        assert!(!tree.is_dir("/app"));
        assert!(tree.lookup("/nothing").is_none());
        assert!(!ImageTree::default().is_dir("/"));
    }

    #[test]
    fn symlinks_are_followed_inside_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let base = layer(
            dir.path(),
            "base",
            &[
                ("usr/bin/", ""),
                ("bin", "->usr/bin"),
                ("etc/passwd", "root:x:0:0::/root:/bin/sh"),
                ("up", "->../../../../etc"),
                ("abs", "->/usr/bin"),
                ("loop", "->loop"),
            ],
        );
        let tree = ImageTree::new(vec![base]);
        assert_eq!(
            tree.resolve("/bin/busybox", false).unwrap(),
            "/usr/bin/busybox"
        );
        assert_eq!(tree.resolve("/bin", false).unwrap(), "/bin");
        assert_eq!(tree.resolve("/bin", true).unwrap(), "/usr/bin");
        assert_eq!(tree.resolve("/abs/x", false).unwrap(), "/usr/bin/x");
        assert!(tree.is_dir("/bin"));
        // `..` stops at the image's root: the host's /etc is never reached.
        assert_eq!(tree.resolve("/up/passwd", true).unwrap(), "/etc/passwd");
        assert_eq!(
            tree.read("/up/passwd").unwrap(),
            b"root:x:0:0::/root:/bin/sh"
        );
        assert!(tree.resolve("/loop/x", true).is_err());
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_layers() {
        if !crate::testutil::is_root() {
            eprintln!("skipped: whiteouts and trusted.* attributes need root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let low = layer(
            dir.path(),
            "low",
            &[("etc/motd", "hi"), ("srv/a/old", "old"), ("srv/keep", "k")],
        );
        let high = layer(dir.path(), "high", &[("srv/a/new", "new"), ("etc/", "")]);
        nix::sys::stat::mknod(
            &high.join("etc/motd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        xattr::set(high.join("srv/a"), OVERLAY_OPAQUE_XATTR, b"y").unwrap();
        let tree = ImageTree::new(vec![low, high]);
        assert!(tree.lookup("/etc/motd").is_none(), "whited out");
        assert!(
            tree.lookup("/srv/a/old").is_none(),
            "under an opaque directory"
        );
        assert_eq!(tree.read("/srv/a/new").unwrap(), b"new");
        assert_eq!(tree.read("/srv/keep").unwrap(), b"k");
    }
}
