//! Host devices inside the container: `--device` and `--privileged`.
//!
//! A container's `/dev` is a fresh tmpfs holding a few harmless devices (see
//! [`crate::filesystem::DEVICES`]). `--device HOST[:CONTAINER][:PERMISSIONS]` (Docker's syntax:
//! `--device /dev/fuse`, `--device /dev/sdb:/dev/xvdc:r`) adds one more: the host's node
//! appears at `CONTAINER` (by default the same path), with the host's major and minor numbers,
//! and stage 03's devices cgroup allows it with `PERMISSIONS` (`rwm` by default). `HOST` may
//! be a directory (`--device /dev/snd`): every device node below it is added, at the same path
//! below `CONTAINER` (as Docker walks it: symbolic links are not followed). skiff binds
//! the host's node rather than making a new one with mknod(2): the same device, and a bind
//! mount keeps working on `/dev`'s `nodev` tmpfs.
//!
//! `--privileged` is Docker's "no walls": every capability, every device of the host's `/dev`
//! visible and allowed, `/sys` and `/proc/sys` writable, nothing masked. It is for containers
//! that manage the host (a Docker-in-Docker, a disk tool); it is never the answer to "it does
//! not work in a container". See docker-run(1) ("Runtime privilege and Linux capabilities").

use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// A `--device` that cannot be given to the container.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The host path cannot be looked at.
    #[error(
        "--device {spec:?}: {path}: {source}: give the path of a device on the host, such as /dev/fuse"
    )]
    Stat {
        /// The flag's value.
        spec: String,
        /// The host path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The host path is not a character or block device.
    #[error(
        "--device {spec:?}: {path} is not a device node: give a character or block device, such as /dev/fuse"
    )]
    NotADevice {
        /// The flag's value.
        spec: String,
        /// The host path.
        path: PathBuf,
    },
    /// The value does not read as `HOST[:CONTAINER][:PERMISSIONS]`.
    #[error("--device {spec:?}: {why}")]
    Bad {
        /// The flag's value.
        spec: String,
        /// What is wrong, and what would be right.
        why: &'static str,
    },
}

// ANCHOR: mapping
/// One `--device`: a host device node and where the container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMapping {
    /// The node on the host (`/dev/fuse`).
    pub host: PathBuf,
    /// Its path in the container, below `/dev` (`/dev/fuse`).
    pub container: String,
    /// What the devices cgroup allows: some of `r`, `w` and `m`.
    pub permissions: String,
    /// A block device (else a character device).
    pub block: bool,
    /// The device's major number.
    pub major: u32,
    /// The device's minor number.
    pub minor: u32,
}

/// One `--device` value, read but not yet looked up on the host: what `inspect` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The host path: a node, or a directory of nodes.
    pub host: PathBuf,
    /// The path in the container, below `/dev`, cleaned.
    pub container: String,
    /// Some of `r`, `w` and `m`.
    pub permissions: String,
}

impl DeviceSpec {
    /// Parses `HOST[:CONTAINER][:PERMISSIONS]`, as Docker does (a second part made only of
    /// `r`, `w` and `m` is the permissions).
    pub fn parse(spec: &str) -> Result<DeviceSpec, DeviceError> {
        let bad = |why| DeviceError::Bad {
            spec: spec.to_string(),
            why,
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, container, permissions) = match parts.as_slice() {
            [host] => (*host, *host, "rwm"),
            [host, second] if is_permissions(second) => (*host, *host, *second),
            [host, container] => (*host, *container, "rwm"),
            [host, container, permissions] => (*host, *container, *permissions),
            _ => {
                return Err(bad(
                    "use HOST[:CONTAINER][:PERMISSIONS], such as /dev/sdb:/dev/xvdc:r",
                ));
            }
        };
        if !is_permissions(permissions) {
            return Err(bad("permissions are some of r, w and m (rwm by default)"));
        }
        if !host.starts_with('/') {
            return Err(bad("the host path must be absolute, such as /dev/fuse"));
        }
        let container = clean_dev_path(container).ok_or_else(|| {
            bad("the path in the container must be below /dev, absolute and without '..', such as /dev/xvdc")
        })?;
        Ok(DeviceSpec {
            host: PathBuf::from(host),
            container,
            permissions: permissions.to_string(),
        })
    }
}

/// Parses `HOST[:CONTAINER][:PERMISSIONS]` and looks at the host node, which must be one.
pub fn parse_device(spec: &str) -> Result<DeviceMapping, DeviceError> {
    let (parsed, meta) = looked_up(spec)?;
    mapping(spec, parsed, &meta)
}

/// The parsed value, and what its host path is: the node itself, through a symlink such as
/// /dev/disk/by-id/... as Docker does.
fn looked_up(spec: &str) -> Result<(DeviceSpec, std::fs::Metadata), DeviceError> {
    let parsed = DeviceSpec::parse(spec)?;
    let meta = std::fs::metadata(&parsed.host).map_err(|source| DeviceError::Stat {
        spec: spec.to_string(),
        path: parsed.host.clone(),
        source,
    })?;
    Ok((parsed, meta))
}
// ANCHOR_END: mapping

// ANCHOR: directory
/// Every mapping one `--device` makes: the node it names, or, for a directory, every character
/// and block node below it, each at the same path below the container path (Docker's
/// `--device /dev/snd`). Links inside the directory are not followed, so the walk stays in it;
/// a directory without nodes adds nothing, as in Docker.
pub fn parse_devices(spec: &str) -> Result<Vec<DeviceMapping>, DeviceError> {
    let (parsed, meta) = looked_up(spec)?;
    if !meta.is_dir() {
        return mapping(spec, parsed, &meta).map(|one| vec![one]);
    }
    let mut nodes = Vec::new();
    walk(&parsed.host, "", &mut nodes);
    nodes.sort();
    nodes
        .into_iter()
        .filter_map(|relative| {
            let node = DeviceSpec {
                host: parsed.host.join(&relative),
                container: format!("{}/{relative}", parsed.container),
                permissions: parsed.permissions.clone(),
            };
            // Looked at again without following: a node replaced by a link since is skipped.
            let meta = std::fs::symlink_metadata(&node.host).ok()?;
            Some(mapping(spec, node, &meta))
        })
        .collect()
}
// ANCHOR_END: directory

/// The mapping of the node `node` names, whose metadata is `meta`; an error if it is no device.
fn mapping(
    spec: &str,
    node: DeviceSpec,
    meta: &std::fs::Metadata,
) -> Result<DeviceMapping, DeviceError> {
    let kind = meta.file_type();
    if !kind.is_char_device() && !kind.is_block_device() {
        return Err(DeviceError::NotADevice {
            spec: spec.to_string(),
            path: node.host,
        });
    }
    let rdev = meta.rdev();
    Ok(DeviceMapping {
        host: node.host,
        container: node.container,
        permissions: node.permissions,
        block: kind.is_block_device(),
        major: nix::sys::stat::major(rdev).try_into().unwrap_or(u32::MAX),
        minor: nix::sys::stat::minor(rdev).try_into().unwrap_or(u32::MAX),
    })
}

fn is_permissions(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// `/dev/x` or `/dev/net/tun`, cleaned; `None` outside `/dev` or with `..`. The container's
/// `/dev` is a tmpfs skiff makes, so no path of the image's is ever followed there.
fn clean_dev_path(path: &str) -> Option<String> {
    let relative = Path::new(path).strip_prefix("/dev").ok()?;
    let parts: Vec<&str> = relative
        .components()
        .map(|c| match c {
            Component::Normal(name) => name.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!parts.is_empty()).then(|| format!("/dev/{}", parts.join("/")))
}

// ANCHOR: host_devices
/// Every character and block device under the host's `/dev`, as paths below it (`vda`,
/// `net/tun`): what a `--privileged` container sees. Not the ones the container has of its own
/// (`pts`, `shm`, `mqueue`) nor those already in its minimal `/dev`.
pub fn host_devices() -> Vec<String> {
    let mut found = Vec::new();
    walk(Path::new("/dev"), "", &mut found);
    found.retain(|relative| {
        !crate::filesystem::DEVICES.contains(&relative.as_str())
            && !matches!(relative.as_str(), "ptmx" | "console")
            && !["pts/", "shm/", "mqueue/", "hugepages/"]
                .iter()
                .any(|own| relative.starts_with(own))
    });
    found.sort();
    found
}

/// The character and block devices below `dir`, as paths relative to it, found without
/// following symbolic links.
fn walk(dir: &Path, prefix: &str, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let relative = format!("{prefix}{name}");
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&entry.path(), &format!("{relative}/"), found);
        } else if kind.is_char_device() || kind.is_block_device() {
            found.push(relative);
        }
    }
}
// ANCHOR_END: host_devices

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_forms_are_understood() {
        let one = parse_device("/dev/null").unwrap();
        assert_eq!(
            (one.container.as_str(), one.permissions.as_str()),
            ("/dev/null", "rwm")
        );
        assert_eq!((one.block, one.major, one.minor), (false, 1, 3));
        let renamed = parse_device("/dev/null:/dev/mynull").unwrap();
        assert_eq!(renamed.container, "/dev/mynull");
        let read = parse_device("/dev/zero:r").unwrap();
        assert_eq!(
            (read.container.as_str(), read.permissions.as_str()),
            ("/dev/zero", "r")
        );
        let all = parse_device("/dev/zero:/dev/z/zero:rw").unwrap();
        assert_eq!(
            (all.container.as_str(), all.permissions.as_str()),
            ("/dev/z/zero", "rw")
        );
    }

    #[test]
    fn bad_devices_are_refused_with_the_reason() {
        for (spec, says) in [
            ("/dev/null:/etc/x", "below /dev"),
            ("/dev/null:/dev/../etc", "below /dev"),
            ("/dev/null:/dev", "below /dev"),
            ("/dev/null:/dev/x:rwx", "permissions"),
            ("dev/null", "absolute"),
            ("/dev/null:/dev/x:r:w", "HOST[:CONTAINER]"),
            ("/etc/hostname:/dev/x", "not a device node"),
            ("/dev/no-such-skiff-device", "No such file"),
        ] {
            let err = parse_device(spec).unwrap_err().to_string();
            assert!(err.contains(says), "{spec}: {err}");
            assert!(err.starts_with("--device"), "{spec}: {err}");
        }
    }

    #[test]
    fn a_directory_adds_every_node_below_it() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: mknod of a character device needs root");
            return;
        }
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        let dir = tempfile::tempdir().unwrap();
        let snd = dir.path().join("snd");
        std::fs::create_dir_all(snd.join("by-path")).unwrap();
        let mode = Mode::from_bits_truncate(0o666);
        mknod(&snd.join("null"), SFlag::S_IFCHR, mode, makedev(1, 3)).unwrap();
        mknod(
            &snd.join("by-path/zero"),
            SFlag::S_IFCHR,
            mode,
            makedev(1, 5),
        )
        .unwrap();
        std::fs::write(snd.join("README"), "not a device").unwrap();
        std::os::unix::fs::symlink("/dev/full", snd.join("full")).unwrap();
        let spec = format!("{}:/dev/s:r", snd.display());
        let all = parse_devices(&spec).unwrap();
        let seen: Vec<(&str, u32, u32, &str)> = all
            .iter()
            .map(|d| {
                (
                    d.container.as_str(),
                    d.major,
                    d.minor,
                    d.permissions.as_str(),
                )
            })
            .collect();
        // The file and the link are left out; nested nodes keep their place.
        assert_eq!(
            seen,
            [
                ("/dev/s/by-path/zero", 1, 5, "r"),
                ("/dev/s/null", 1, 3, "r")
            ]
        );
        assert_eq!(all[1].host, snd.join("null"));
        // One node is one mapping, as with parse_device; an empty directory adds nothing.
        assert_eq!(parse_devices("/dev/null").unwrap().len(), 1);
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let empty = format!("{}:/dev/e", dir.path().join("empty").display());
        assert!(parse_devices(&empty).unwrap().is_empty());
        // A directory is not one device.
        let err = parse_device(&spec).unwrap_err().to_string();
        assert!(err.contains("not a device node"), "{err}");
    }

    #[test]
    fn the_hosts_devices_leave_out_the_containers_own() {
        let all = host_devices();
        assert!(!all.iter().any(|d| d == "null" || d.starts_with("pts/")));
        if Path::new("/dev/loop-control").exists() {
            assert!(all.iter().any(|d| d == "loop-control"), "{all:?}");
        }
    }
}
