//! `--chown=USER[:GROUP]`: from names to the numeric ids a file is stored with.
//!
//! Dockerfile reference, "COPY --chown": names are looked up in the *image's* `/etc/passwd` and
//! `/etc/group` (not the host's); numbers are taken as they are; a user without a group uses the
//! uid as the gid (`--chown=1000` is 1000:1000). Without `--chown`, copied files belong to root.
//!
//! The image's root directory is the build's, so a symlink in it may point anywhere:
//! `/etc/passwd -> /host/secret`. [`resolve_in_root`] follows links as if the image's root were
//! `/`, the way a process in a container would, so the lookup never leaves the image.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{DockerfileError, Location};

/// A file owner, by numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl Owner {
    /// root:root, the owner of copied files when no `--chown` is given.
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };
}

/// How many symlinks a path may go through before it is refused (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Where `path` (absolute, inside the image) is on the host, following symlinks as if `root`
/// were `/`: an absolute link target starts again at `root`, and `..` stops at `root`. A path
/// that does not exist resolves to where it would be.
pub fn resolve_in_root(root: &Path, path: &str) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new(); // relative to root, free of links
    let mut pending: VecDeque<String> = path.split('/').map(String::from).collect();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&part);
        let on_host = root.join(&candidate);
        match std::fs::symlink_metadata(&on_host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&on_host)?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    resolved = PathBuf::new();
                }
                for c in target.split('/').rev() {
                    pending.push_front(c.to_string());
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

/// Finds `name` in a passwd- or group-format file (`name:x:id:...`): its id.
fn lookup(root: &Path, file: &str, name: &str) -> io::Result<Option<u32>> {
    let path = resolve_in_root(root, file)?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name)
            .then(|| fields.nth(1)?.parse().ok())
            .flatten()
    }))
}

/// Resolves `--chown=USER[:GROUP]` against the image whose root directory is `rootfs`.
pub fn resolve_chown(at: &Location, chown: &str, rootfs: &Path) -> Result<Owner, DockerfileError> {
    let (user, group) = match chown.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (chown, None),
    };
    let id = |name: &str, file: &str, what: &str| -> Result<u32, DockerfileError> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok(n);
        }
        let failed = |detail: String| DockerfileError::Owner {
            at: at.clone(),
            message: format!("--chown={chown}: unable to find {what} {name}: {detail}"),
        };
        match lookup(rootfs, file, name) {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(failed(format!(
                "no matching entries in the image's {file}: create it in an earlier RUN, or give a number"
            ))),
            Err(e) => Err(failed(format!("reading the image's {file}: {e}"))),
        }
    };
    let uid = id(user, "/etc/passwd", "user")?;
    let gid = match group {
        Some(group) => id(group, "/etc/group", "group")?,
        None => uid,
    };
    Ok(Owner { uid, gid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn image() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(root.path().join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
        root
    }

    #[test]
    fn names_and_numbers() {
        let root = image();
        let at = Location::new("Dockerfile", 4);
        let r = |s: &str| resolve_chown(&at, s, root.path());
        assert_eq!(
            r("app").unwrap(),
            Owner {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(r("app:staff").unwrap(), Owner { uid: 1000, gid: 50 });
        assert_eq!(r("55").unwrap(), Owner { uid: 55, gid: 55 });
        assert_eq!(r("55:root").unwrap(), Owner { uid: 55, gid: 0 });
        let err = r("nobody").unwrap_err().to_string();
        assert!(err.starts_with("Dockerfile:4: --chown=nobody: unable to find user nobody: no matching entries in the image's /etc/passwd"), "{err}");
        assert!(
            r("app:wheel")
                .unwrap_err()
                .to_string()
                .contains("unable to find group wheel")
        );
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        let root = image();
        let host_secret = tempfile::tempdir().unwrap();
        fs::write(
            host_secret.path().join("passwd"),
            "evil:x:666:666::/:/bin/sh\n",
        )
        .unwrap();
        fs::remove_file(root.path().join("etc/passwd")).unwrap();
        // An absolute link is followed inside the image, where it leads nowhere.
        symlink(
            host_secret.path().join("passwd"),
            root.path().join("etc/passwd"),
        )
        .unwrap();
        let at = Location::new("Dockerfile", 1);
        assert!(resolve_chown(&at, "evil", root.path()).is_err());
        assert!(
            resolve_in_root(root.path(), "/etc/passwd")
                .unwrap()
                .starts_with(root.path())
        );
        // `..` cannot climb out either.
        symlink("../../../../etc", root.path().join("up")).unwrap();
        assert_eq!(
            resolve_in_root(root.path(), "/up/group").unwrap(),
            root.path().join("etc/group")
        );
    }

    #[test]
    fn symlink_loops_are_refused() {
        let root = tempfile::tempdir().unwrap();
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();
        assert!(resolve_in_root(root.path(), "/a").is_err());
    }
}
