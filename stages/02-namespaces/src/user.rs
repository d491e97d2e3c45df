//! Who the command runs as: `--user UID[:GID]` or `NAME[:GROUP]`, resolved the way Docker does,
//! against the container's own `/etc/passwd` and `/etc/group` (not the host's).
//!
//! See passwd(5), group(5), credentials(7).

use std::path::Path;

/// A bad `--user`.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The spec does not parse.
    #[error("invalid --user {0:?}: use UID, UID:GID, NAME or NAME:GROUP")]
    Invalid(String),
    /// A user name that the container's passwd file does not have.
    #[error("unable to find user {0}: no matching entries in the container's /etc/passwd")]
    NoUser(String),
    /// A group name that the container's group file does not have.
    #[error("unable to find group {0}: no matching entries in the container's /etc/group")]
    NoGroup(String),
}

/// The identity the command runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The home directory from passwd, for `HOME`.
    pub home: String,
}

impl Identity {
    /// root, with root's home.
    pub fn root() -> Self {
        Identity {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            home: "/root".into(),
        }
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// Reads a file of the container's root by its path inside (`etc/passwd`): from a directory for
/// `--rootfs`, through the image's layers for an image.
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Option<String>;

// ANCHOR: read_in
/// A [`ReadFile`] for a plain directory. The files are opened inside it (see
/// [`crate::in_root`]): an image whose `/etc` is a symlink to the host's `/etc` gets its own
/// `/etc/passwd` read, or none, never the host's.
pub fn read_in(rootfs: &Path) -> impl Fn(&str) -> Option<String> + '_ {
    move |path| {
        crate::in_root::Root::open(rootfs)
            .and_then(|root| root.read_to_string(path))
            .ok()
    }
}
// ANCHOR_END: read_in

fn read_passwd(read: ReadFile<'_>) -> Vec<PasswdEntry> {
    let text = read("etc/passwd").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
                home: fields.get(5).unwrap_or(&"/").to_string(),
            })
        })
        .collect()
}

/// (name, gid, members) for each line of the container's `/etc/group`.
fn read_group(read: ReadFile<'_>) -> Vec<(String, u32, Vec<String>)> {
    let text = read("etc/group").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let members = fields
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            Some((
                fields.first()?.to_string(),
                fields.get(2)?.parse().ok()?,
                members,
            ))
        })
        .collect()
}

// ANCHOR: resolve
/// Resolves a `--user` spec against the container's own files. A numeric uid not in passwd is
/// fine (gid 0, home `/`), as in Docker; a name must exist.
pub fn resolve(spec: &str, read: ReadFile<'_>) -> Result<Identity, UserError> {
    let invalid = || UserError::Invalid(spec.to_string());
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) if !g.contains(':') => (u, Some(g)),
        Some(_) => return Err(invalid()),
        None => (spec, None),
    };
    if user.is_empty() || group == Some("") {
        return Err(invalid());
    }
    let passwd = read_passwd(read);
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|e| e.uid == uid),
        Err(_) if user.starts_with('-') => return Err(invalid()),
        Err(_) => Some(
            passwd
                .iter()
                .find(|e| e.name == user)
                .ok_or_else(|| UserError::NoUser(user.to_string()))?,
        ),
    };
    let uid = match (entry, user.parse::<u32>()) {
        (Some(e), _) => e.uid,
        (None, Ok(uid)) => uid,
        (None, Err(_)) => return Err(invalid()),
    };
    let groups_file = read_group(read);
    let gid = match group {
        None => entry.map_or(0, |e| e.gid),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) if g.starts_with('-') => return Err(invalid()),
            Err(_) => groups_file
                .iter()
                .find(|(name, _, _)| name == g)
                .map(|(_, gid, _)| *gid)
                .ok_or_else(|| UserError::NoGroup(g.to_string()))?,
        },
    };
    // Supplementary groups: those that list the user by name, as initgroups(3) finds them.
    let mut groups: Vec<u32> = match entry {
        Some(e) => groups_file
            .iter()
            .filter(|(_, _, members)| members.contains(&e.name))
            .map(|(_, gid, _)| *gid)
            .collect(),
        None => Vec::new(),
    };
    if !groups.contains(&gid) {
        groups.insert(0, gid);
    }
    let home = entry.map_or_else(|| "/".to_string(), |e| e.home.clone());
    Ok(Identity {
        uid,
        gid,
        groups,
        home,
    })
}
// ANCHOR_END: resolve

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile_lite::Dir {
        let dir = tempfile_lite::Dir::new();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nlab:x:1000:1000:lab:/home/lab:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nlab:x:1000:\nwheel:x:10:lab\n",
        )
        .unwrap();
        dir
    }

    /// A throwaway directory, removed on drop (this crate has no tempfile dependency).
    mod tempfile_lite {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let path = std::env::temp_dir().join(format!(
                    "skiff-user-test-{}-{:?}",
                    std::process::id(),
                    std::thread::current().id()
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn names_and_numbers_resolve_in_the_rootfs() {
        let dir = rootfs();
        let lab = resolve("lab", &read_in(dir.path())).unwrap();
        assert_eq!(
            (lab.uid, lab.gid, lab.home.as_str()),
            (1000, 1000, "/home/lab")
        );
        assert_eq!(lab.groups, vec![1000, 10]);
        let numeric = resolve("4242:77", &read_in(dir.path())).unwrap();
        assert_eq!(
            (numeric.uid, numeric.gid, numeric.home.as_str()),
            (4242, 77, "/")
        );
        let by_uid = resolve("1000", &read_in(dir.path())).unwrap();
        assert_eq!(by_uid.gid, 1000);
        assert_eq!(resolve("lab:root", &read_in(dir.path())).unwrap().gid, 0);
    }

    #[test]
    fn bad_specs_are_refused() {
        let dir = rootfs();
        for bad in ["", ":", "1:2:3", "-1", "lab:", "1:-5"] {
            assert!(
                matches!(
                    resolve(bad, &read_in(dir.path())),
                    Err(UserError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            resolve("nobody-here", &read_in(dir.path())),
            Err(UserError::NoUser(_))
        ));
        assert!(matches!(
            resolve("lab:nogroup-here", &read_in(dir.path())),
            Err(UserError::NoGroup(_))
        ));
    }

    #[test]
    fn passwd_is_read_inside_the_rootfs() {
        // An image whose /etc is a symlink to a host directory with a passwd of its own.
        let host = rootfs();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(host.path().join("etc"), dir.path().join("etc")).unwrap();
        assert!(matches!(
            resolve("lab", &read_in(dir.path())),
            Err(UserError::NoUser(_))
        ));
    }
}
