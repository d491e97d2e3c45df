//! What the user asked for: `-v`, `--mount` and `--tmpfs`, parsed into [`MountSpec`]s.
//!
//! Three kinds of mount, as in Docker (docker-run(1), "Volumes"; docker-volume-create(1)):
//!
//! ```text
//!  -v data:/srv[:ro]                    a named volume: a directory skiff owns, that outlives
//!  --mount type=volume,src=data,dst=/srv  containers (created on first use)
//!  -v /srv                              an anonymous volume: the same, with a random name
//!  -v /host/dir:/srv[:ro]               a bind mount: a host directory or file, seen inside
//!  --mount type=bind,src=/host/dir,dst=/srv
//!  --tmpfs /run[:size=64m,mode=1777]    a tmpfs: memory, empty at start, gone at exit
//!  --mount type=tmpfs,dst=/run,tmpfs-size=64m
//! ```
//!
//! Everything is checked here, before anything exists on the host: a target that is not an
//! absolute path, `/` itself, two mounts on one target, a volume name with a `@` in it, an option
//! nobody knows. The messages follow Docker's, so a search for them finds answers.

use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;

/// A flag or value that cannot be used, with Docker's words for it.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `-v` that is not `[SOURCE:]TARGET[:OPTIONS]`.
    #[error("invalid volume specification: '{0}'")]
    Invalid(String),
    /// A `-v` option that does not exist.
    #[error("invalid mode: {mode} in '{spec}': use ro, rw, nocopy, z or Z, or a propagation mode")]
    Mode {
        /// The option.
        mode: String,
        /// The whole `-v` value.
        spec: String,
    },
    /// The target is not absolute.
    #[error(
        "invalid mount config for type \"{kind}\": invalid mount path: '{path}' mount path must be absolute"
    )]
    Relative {
        /// volume, bind or tmpfs.
        kind: &'static str,
        /// The target as given.
        path: String,
    },
    /// The target is `/`.
    #[error("invalid specification: destination can't be '/' in '{0}'")]
    Root(String),
    /// A volume name outside Docker's alphabet.
    #[error(
        "create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    Name(String),
    /// Two mounts on one target.
    #[error("Duplicate mount point: {0}")]
    Duplicate(String),
    /// A `--mount` field that is missing, misspelt or has a bad value.
    #[error("invalid argument \"{spec}\" for \"--mount\" flag: {why}")]
    MountFlag {
        /// The whole `--mount` value.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// A `--mount` that is well-formed but does not make sense for its type.
    #[error("invalid mount config for type \"{kind}\": {why}")]
    Config {
        /// volume, bind or tmpfs.
        kind: &'static str,
        /// What is wrong.
        why: String,
    },
    /// A `--tmpfs` option that does not exist or has a bad value.
    #[error("invalid tmpfs option {option:?} in '{spec}': {why}")]
    Tmpfs {
        /// The option.
        option: String,
        /// The whole `--tmpfs` value.
        spec: String,
        /// What is wrong.
        why: &'static str,
    },
}

type Result<T> = std::result::Result<T, SpecError>;

// ANCHOR: spec
/// Where a mount's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A volume: a directory in the store, `<root>/volumes/<name>/_data`. `None` is an anonymous
    /// volume, whose name is made up when the container starts.
    Volume(Option<String>),
    /// A host path, as given (absolute).
    Bind(PathBuf),
    /// A fresh tmpfs, with its mount options (`size=...,mode=...`).
    Tmpfs(String),
}

/// One mount a container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// What is mounted.
    pub source: Source,
    /// Where, inside the container: absolute and clean (no `.`, `..` or `//`).
    pub target: String,
    /// Read-only (`:ro`, `readonly`).
    pub readonly: bool,
    /// Do not copy the image's files at the target into a new, empty volume (`nocopy`).
    pub nocopy: bool,
    /// `-v /host:/x` creates a missing host directory (Docker's old rule); `--mount type=bind`
    /// refuses it.
    pub create_source: bool,
    /// `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC` and the like for the mount.
    pub flags: MsFlags,
}
// ANCHOR_END: spec

impl MountSpec {
    /// The kind, in Docker's words: volume, bind or tmpfs.
    pub fn kind(&self) -> &'static str {
        match self.source {
            Source::Volume(_) => "volume",
            Source::Bind(_) => "bind",
            Source::Tmpfs(_) => "tmpfs",
        }
    }
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_volume_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if first_ok && rest_ok && name.len() >= 2 {
        Ok(())
    } else {
        Err(SpecError::Name(name.to_string()))
    }
}

/// An absolute, clean target path: `.` and `//` dropped, `..` applied (never above `/`).
pub fn clean_target(kind: &'static str, path: &str, spec: &str) -> Result<String> {
    if !path.starts_with('/') {
        return Err(SpecError::Relative {
            kind,
            path: path.to_string(),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if parts.is_empty() {
        return Err(SpecError::Root(spec.to_string()));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A bind source: absolute as given, or relative to the working directory when it starts with
/// `.` (as the Docker CLI does since 23.0).
fn bind_source(source: &str) -> Option<PathBuf> {
    if source.starts_with('/') {
        Some(PathBuf::from(source))
    } else if source.starts_with('.') {
        std::env::current_dir().ok().map(|cwd| {
            let joined = cwd.join(source);
            // Lexically clean, like the CLI: `./a/../b` is `<cwd>/b`.
            let mut clean = PathBuf::from("/");
            for component in joined.components() {
                match component {
                    Component::Normal(part) => clean.push(part),
                    Component::ParentDir => {
                        clean.pop();
                    }
                    _ => {}
                }
            }
            clean
        })
    } else {
        None
    }
}

/// The propagation modes Docker accepts; skiff's mounts are always private (the container's
/// mount namespace is), so these are accepted and have no effect beyond `private`.
const PROPAGATION: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

// ANCHOR: parse_volume
/// Parses one `-v`/`--volume`: `TARGET`, `SOURCE:TARGET` or `SOURCE:TARGET:OPTIONS`, where a
/// source that starts with `/` or `.` is a host path and anything else names a volume.
pub fn parse_volume(spec: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [target] => (None, *target, ""),
        [source, target] => (Some(*source), *target, ""),
        [source, target, options] => (Some(*source), *target, *options),
        _ => return Err(SpecError::Invalid(spec.to_string())),
    };
    if target.is_empty() || source.is_some_and(str::is_empty) {
        return Err(SpecError::Invalid(spec.to_string()));
    }
    let source = match source {
        None => Source::Volume(None),
        Some(source) => match bind_source(source) {
            Some(path) => Source::Bind(path),
            None => {
                check_volume_name(source)?;
                Source::Volume(Some(source.to_string()))
            }
        },
    };
    let mut mount = MountSpec {
        target: String::new(),
        readonly: false,
        nocopy: false,
        create_source: true,
        flags: MsFlags::empty(),
        source,
    };
    mount.target = clean_target(mount.kind(), target, spec)?;
    let mut access = None;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let bad = || SpecError::Mode {
            mode: option.to_string(),
            spec: spec.to_string(),
        };
        match option {
            "ro" | "rw" if access.is_some() => return Err(bad()),
            "ro" | "rw" => access = Some(option == "ro"),
            "nocopy" if matches!(mount.source, Source::Volume(_)) => mount.nocopy = true,
            // SELinux relabelling: nothing to do on a host without SELinux.
            "z" | "Z" => {}
            // Docker Desktop's consistency hints, meaningless on Linux.
            "consistent" | "cached" | "delegated" => {}
            _ if PROPAGATION.contains(&option) => {}
            _ => return Err(bad()),
        }
    }
    mount.readonly = access.unwrap_or(false);
    Ok(mount)
}
// ANCHOR_END: parse_volume

/// A `--mount` boolean: no value, `true`/`1` or `false`/`0`.
fn boolean(spec: &str, key: &str, value: Option<&str>) -> Result<bool> {
    match value {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(SpecError::MountFlag {
            spec: spec.to_string(),
            why: format!("invalid value for {key}: {other} (use true or false)"),
        }),
    }
}

/// Parses one `--mount`: comma-separated `key=value` fields, Docker's names.
pub fn parse_mount(spec: &str) -> Result<MountSpec> {
    let flag_error = |why: String| SpecError::MountFlag {
        spec: spec.to_string(),
        why,
    };
    let mut kind = "volume";
    let mut source = None;
    let mut target = None;
    let mut readonly = false;
    let mut nocopy = false;
    let mut tmpfs_size = None;
    let mut tmpfs_mode = None;
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |value: Option<&str>| {
            value
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .ok_or_else(|| {
                    flag_error(format!("invalid field '{field}' must be a key=value pair"))
                })
        };
        match key.as_str() {
            "type" => {
                kind = match need(value)?.as_str() {
                    "volume" => "volume",
                    "bind" => "bind",
                    "tmpfs" => "tmpfs",
                    other => {
                        return Err(flag_error(format!(
                            "invalid mount type {other:?}: use volume, bind or tmpfs"
                        )));
                    }
                }
            }
            "source" | "src" => source = Some(need(value)?),
            "target" | "destination" | "dst" => target = Some(need(value)?),
            "readonly" | "ro" => readonly = boolean(spec, &key, value)?,
            "volume-nocopy" => nocopy = boolean(spec, &key, value)?,
            "tmpfs-size" => tmpfs_size = Some(need(value)?),
            "tmpfs-mode" => tmpfs_mode = Some(need(value)?),
            "bind-propagation" => {
                let mode = need(value)?;
                if !PROPAGATION.contains(&mode.as_str()) {
                    return Err(flag_error(format!("invalid propagation mode {mode:?}")));
                }
            }
            "consistency" => {}
            "volume-driver" => {
                let driver = need(value)?;
                if driver != "local" {
                    return Err(flag_error(format!(
                        "volume driver {driver:?} is not available: skiff has the local driver only"
                    )));
                }
            }
            _ => {
                return Err(flag_error(format!("unexpected key '{key}' in '{field}'")));
            }
        }
    }
    let Some(target) = target else {
        return Err(SpecError::Config {
            kind,
            why: "field Target must not be empty".into(),
        });
    };
    let target = clean_target(kind, &target, spec)?;
    let only_for = |field: &str, wanted: &str| SpecError::Config {
        kind,
        why: format!("field {field} can only be used with type {wanted}"),
    };
    if kind != "volume" && nocopy {
        return Err(only_for("volume-nocopy", "volume"));
    }
    if kind != "tmpfs" && (tmpfs_size.is_some() || tmpfs_mode.is_some()) {
        return Err(only_for("tmpfs-size/tmpfs-mode", "tmpfs"));
    }
    let source = match kind {
        "volume" => {
            if let Some(name) = &source {
                check_volume_name(name)?;
            }
            Source::Volume(source)
        }
        "bind" => {
            let Some(source) = source else {
                return Err(SpecError::Config {
                    kind,
                    why: "field Source must not be empty".into(),
                });
            };
            let Some(path) = bind_source(&source) else {
                return Err(SpecError::Config {
                    kind,
                    why: format!("invalid mount path: '{source}' mount path must be absolute"),
                });
            };
            if std::fs::symlink_metadata(&path).is_err() {
                return Err(SpecError::Config {
                    kind,
                    why: format!("bind source path does not exist: {}", path.display()),
                });
            }
            Source::Bind(path)
        }
        _ => {
            if source.is_some() {
                return Err(SpecError::Config {
                    kind,
                    why: "field Source must not be specified".into(),
                });
            }
            let mut options = Vec::new();
            if let Some(size) = tmpfs_size {
                let bytes = parse_size(&size).ok_or_else(|| {
                    flag_error(format!(
                        "invalid tmpfs-size {size:?}: use bytes or 64k, 64m, 1g"
                    ))
                })?;
                options.push(format!("size={bytes}"));
            }
            if let Some(mode) = tmpfs_mode {
                let mode = u32::from_str_radix(&mode, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| {
                        flag_error(format!("invalid tmpfs-mode {mode:?}: use octal, like 1777"))
                    })?;
                options.push(format!("mode={mode:o}"));
            }
            Source::Tmpfs(options.join(","))
        }
    };
    let flags = match source {
        Source::Tmpfs(_) => MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        _ => MsFlags::empty(),
    };
    Ok(MountSpec {
        source,
        target,
        readonly,
        nocopy,
        create_source: false,
        flags,
    })
}

/// `64m`, `1g`, `512k`, `4096`: a size in bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, shift) = match lower.char_indices().last() {
        Some((i, 'k')) => (&lower[..i], 10),
        Some((i, 'm')) => (&lower[..i], 20),
        Some((i, 'g')) => (&lower[..i], 30),
        _ => (lower, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
}

// ANCHOR: parse_tmpfs
/// Parses one `--tmpfs`: `TARGET[:OPTIONS]`, where the options are tmpfs(5)'s and mount(8)'s:
/// `size=64m,mode=1777,uid=0,gid=0,nr_inodes=...` and `ro`, `exec`, `suid`, `dev`... Docker's
/// defaults are `nosuid,nodev,noexec`; `exec` (and the others) turn one back on.
pub fn parse_tmpfs(spec: &str) -> Result<MountSpec> {
    let (target, options) = spec.split_once(':').unwrap_or((spec, ""));
    let target = clean_target("tmpfs", target, spec)?;
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mut readonly = false;
    let mut data = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let bad = |why| SpecError::Tmpfs {
            option: option.to_string(),
            spec: spec.to_string(),
            why,
        };
        match option {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "exec" => flags.remove(MsFlags::MS_NOEXEC),
            "noexec" => flags.insert(MsFlags::MS_NOEXEC),
            "suid" => flags.remove(MsFlags::MS_NOSUID),
            "nosuid" => flags.insert(MsFlags::MS_NOSUID),
            "dev" => flags.remove(MsFlags::MS_NODEV),
            "nodev" => flags.insert(MsFlags::MS_NODEV),
            "noatime" => flags.insert(MsFlags::MS_NOATIME),
            "relatime" | "atime" | "strictatime" | "async" | "sync" => {}
            _ => match option.split_once('=') {
                Some(("size", value)) => {
                    let valid = value.ends_with('%')
                        && value[..value.len() - 1].parse::<u8>().is_ok()
                        || parse_size(value).is_some();
                    if !valid {
                        return Err(bad(
                            "a size is bytes, 64k, 64m, 1g or a percentage of memory",
                        ));
                    }
                    data.push(option.to_string());
                }
                Some(("mode", value)) => {
                    if u32::from_str_radix(value, 8).map_or(true, |m| m > 0o7777) {
                        return Err(bad("a mode is octal, like 1777"));
                    }
                    data.push(option.to_string());
                }
                Some(("uid" | "gid" | "nr_inodes" | "nr_blocks", value)) => {
                    if value.parse::<u64>().is_err() {
                        return Err(bad("expected a number"));
                    }
                    data.push(option.to_string());
                }
                _ => {
                    return Err(bad(
                        "tmpfs knows size, mode, uid, gid, nr_inodes, and ro, exec, suid, dev",
                    ));
                }
            },
        }
    }
    Ok(MountSpec {
        source: Source::Tmpfs(data.join(",")),
        target,
        readonly,
        nocopy: false,
        create_source: false,
        flags,
    })
}
// ANCHOR_END: parse_tmpfs

/// Every mount of a container, checked together: no two on one target. Sorted by depth, so a
/// mount inside another (`/srv` and `/srv/www`) is made after the one it lands in.
pub fn all(volumes: &[String], mounts: &[String], tmpfs: &[String]) -> Result<Vec<MountSpec>> {
    let mut specs = Vec::new();
    for v in volumes {
        specs.push(parse_volume(v)?);
    }
    for m in mounts {
        specs.push(parse_mount(m)?);
    }
    for t in tmpfs {
        specs.push(parse_tmpfs(t)?);
    }
    let mut seen = std::collections::BTreeSet::new();
    for spec in &specs {
        if !seen.insert(spec.target.clone()) {
            return Err(SpecError::Duplicate(spec.target.clone()));
        }
    }
    specs.sort_by_key(|s| s.target.matches('/').count());
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_forms() {
        let named = parse_volume("data:/srv").unwrap();
        assert_eq!(named.source, Source::Volume(Some("data".into())));
        assert_eq!(named.target, "/srv");
        assert!(!named.readonly);
        let anonymous = parse_volume("/srv/www/").unwrap();
        assert_eq!(anonymous.source, Source::Volume(None));
        assert_eq!(anonymous.target, "/srv/www");
        let bind = parse_volume("/etc:/host-etc:ro").unwrap();
        assert_eq!(bind.source, Source::Bind("/etc".into()));
        assert!(bind.readonly && bind.create_source);
        assert!(parse_volume("data:/srv:ro,nocopy").unwrap().nocopy);
        assert!(parse_volume("data:/srv:rw,z,rprivate").is_ok());
    }

    #[test]
    fn relative_bind_sources_are_from_the_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        let bind = parse_volume("./x/../y:/y").unwrap();
        assert_eq!(bind.source, Source::Bind(cwd.join("y")));
    }

    #[test]
    fn bad_volumes_say_what_is_wrong() {
        let err = |s| parse_volume(s).unwrap_err().to_string();
        assert!(err("a:b:c:d").contains("invalid volume specification: 'a:b:c:d'"));
        assert!(err("data:srv").contains("'srv' mount path must be absolute"));
        assert!(err("data:/").contains("destination can't be '/'"));
        assert!(err("data:/a/..").contains("destination can't be '/'"));
        assert!(err("da@ta:/srv").contains("invalid characters for a local volume name"));
        assert!(err("data:/srv:ro,rw").contains("invalid mode: rw"));
        assert!(err("data:/srv:bogus").contains("invalid mode: bogus"));
        assert!(err("/h:/srv:nocopy").contains("invalid mode: nocopy"));
        assert!(err(":/srv").contains("invalid volume specification"));
    }

    #[test]
    fn targets_are_cleaned() {
        assert_eq!(
            clean_target("volume", "/a/./b//c/../d", "x").unwrap(),
            "/a/b/d"
        );
        assert_eq!(clean_target("volume", "/../../etc", "x").unwrap(), "/etc");
    }

    #[test]
    fn mount_forms() {
        let v = parse_mount("type=volume,source=data,target=/srv,readonly").unwrap();
        assert_eq!(v.source, Source::Volume(Some("data".into())));
        assert!(v.readonly && !v.create_source);
        let anon = parse_mount("dst=/srv,volume-nocopy=true").unwrap();
        assert_eq!(anon.source, Source::Volume(None));
        assert!(anon.nocopy);
        let bind = parse_mount("type=bind,src=/etc,dst=/x,ro=false").unwrap();
        assert_eq!(bind.source, Source::Bind("/etc".into()));
        assert!(!bind.readonly);
        let t = parse_mount("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770").unwrap();
        assert_eq!(t.source, Source::Tmpfs("size=67108864,mode=1770".into()));
        assert!(t.flags.contains(MsFlags::MS_NOEXEC));
    }

    #[test]
    fn bad_mounts_say_what_is_wrong() {
        let err = |s| parse_mount(s).unwrap_err().to_string();
        assert!(err("type=bind,dst=/x").contains("field Source must not be empty"));
        assert!(err("type=volume,src=data").contains("field Target must not be empty"));
        assert!(
            err("type=bind,src=/no/such/skiff-path,dst=/x")
                .contains("bind source path does not exist: /no/such/skiff-path")
        );
        assert!(err("type=tmpfs,src=x,dst=/x").contains("field Source must not be specified"));
        assert!(err("type=nfs,dst=/x").contains("invalid mount type \"nfs\""));
        assert!(err("dst=/x,colour=blue").contains("unexpected key 'colour'"));
        assert!(err("dst=/x,readonly=maybe").contains("invalid value for readonly"));
        assert!(err("type=bind,src=/etc,dst=/x,volume-nocopy").contains("volume-nocopy"));
        assert!(err("type=tmpfs,dst=/x,tmpfs-size=lots").contains("invalid tmpfs-size"));
    }

    #[test]
    fn tmpfs_options() {
        let t = parse_tmpfs("/run:size=64m,mode=1777,exec").unwrap();
        assert_eq!(t.source, Source::Tmpfs("size=64m,mode=1777".into()));
        assert!(!t.flags.contains(MsFlags::MS_NOEXEC));
        assert!(t.flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV));
        let plain = parse_tmpfs("/tmp").unwrap();
        assert_eq!(plain.source, Source::Tmpfs(String::new()));
        assert!(parse_tmpfs("/tmp:ro").unwrap().readonly);
        let err = |s| parse_tmpfs(s).unwrap_err().to_string();
        assert!(err("/t:size=huge").contains("\"size=huge\""));
        assert!(err("/t:mode=999").contains("octal"));
        assert!(err("/t:colour=blue").contains("\"colour=blue\""));
        assert!(err("tmp").contains("must be absolute"));
    }

    #[test]
    fn duplicates_are_refused_and_parents_come_first() {
        let err = all(&["aa:/srv".into()], &[], &["/srv/".into()]).unwrap_err();
        assert_eq!(err.to_string(), "Duplicate mount point: /srv");
        let specs = all(&["aa:/srv/www".into(), "bb:/srv".into()], &[], &[]).unwrap();
        assert_eq!(specs[0].target, "/srv");
        assert_eq!(specs[1].target, "/srv/www");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("2mb"), Some(2 << 20));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn volume_names() {
        assert!(check_volume_name("data").is_ok());
        assert!(check_volume_name("my_vol-1.2").is_ok());
        assert!(check_volume_name("d").is_err());
        assert!(check_volume_name("-data").is_err());
        assert!(check_volume_name("da/ta").is_err());
    }
}
