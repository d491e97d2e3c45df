//! Volumes as managed objects: what `volume create/ls/inspect/rm/prune` work on.
//!
//! A volume is a directory that belongs to the engine, not to any container: containers come
//! and go, the data stays. skiff lays them out as Docker's local driver does:
//!
//! ```text
//! <root>/volumes/         0700, root's alone, as the rest of the store (namespaces::private)
//!   lock                  flock(2), held exclusive around every read-modify-write
//!   <name>/volume.json    {"name", "created", "labels", "anonymous", "users": [container ids]}
//!   <name>/_data/         the content: what containers see at the mount's target
//! ```
//!
//! `users` lists the containers that have the volume mounted, so `volume rm` can refuse a volume
//! in use, as Docker does. A container that is gone (its state directory removed, or never
//! finished starting) does not count: a crashed engine cannot pin a volume forever.
//! See docker-volume-create(1), docker-volume-ls(1), docker-volume-prune(1).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

/// What can go wrong with the volume store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or directory of the store could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, on which path.
        what: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// A volume's record does not parse.
    #[error("volume file {path} is corrupt ({source}): remove the volume's directory")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// No volume has this name.
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    /// `volume rm` of a volume a container uses.
    #[error("remove {name}: volume is in use - [{}]", users.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// The containers using it.
        users: Vec<String>,
    },
    /// A bad name.
    #[error(transparent)]
    Name(#[from] crate::spec::SpecError),
}

type Result<T> = std::result::Result<T, StoreError>;

fn io_error(what: String, source: io::Error) -> StoreError {
    StoreError::Io { what, source }
}

// ANCHOR: volume
/// One volume's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Its name: the user's, or 64 random hex digits for an anonymous volume.
    pub name: String,
    /// When it was created, RFC 3339.
    pub created: String,
    /// `--label`s.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Made for a container's `-v /path` or an image's `VOLUME`, not by name.
    #[serde(default)]
    pub anonymous: bool,
    /// The containers that have it mounted now.
    #[serde(default)]
    pub users: Vec<String>,
    /// For an anonymous volume: the path it was made for, so a container started again gets
    /// the same one back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Where its content is on the host (not stored: it follows from the root).
    #[serde(skip)]
    pub mountpoint: PathBuf,
}
// ANCHOR_END: volume

/// `<root>/volumes` with its lock held.
struct Locked {
    root: PathBuf,
    dir: PathBuf,
    _lock: Flock<File>,
}

/// Opens `<root>/volumes` (creating it) and takes its lock, waiting for any other holder.
fn lock(root: &Path) -> Result<Locked> {
    let dir = root.join("volumes");
    namespaces::private::store_dir(root, "volumes")
        .map_err(|e| io_error(format!("create {}", dir.display()), e))?;
    let path = dir.join("lock");
    let lock = images::store::lock_file(&path, FlockArg::LockExclusive)
        .map_err(|e| io_error(format!("lock {}", path.display()), e))?;
    Ok(Locked {
        root: root.to_path_buf(),
        dir,
        _lock: lock,
    })
}

impl Locked {
    fn record(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("volume.json")
    }

    fn read(&self, name: &str) -> Result<Volume> {
        crate::spec::check_volume_name(name).map_err(|_| StoreError::NoSuchVolume(name.into()))?;
        let path = self.record(name);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NoSuchVolume(name.to_string()));
            }
            Err(e) => return Err(io_error(format!("read {}", path.display()), e)),
        };
        let mut volume: Volume = serde_json::from_slice(&bytes)
            .map_err(|source| StoreError::Corrupt { path, source })?;
        volume.mountpoint = mountpoint(&self.root, &volume.name);
        // A container counts while its state directory exists: one whose engine was killed
        // before it could clean up leaves the directory, and `rm` of the container (stage 07)
        // or of the directory frees the volume.
        let containers = self.root.join("containers");
        volume.users.retain(|id| containers.join(id).exists());
        Ok(volume)
    }

    fn read_all(&self) -> Result<Vec<Volume>> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| io_error(format!("read {}", self.dir.display()), e))?;
        let mut volumes = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(format!("read {}", self.dir.display()), e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !entry.path().join("volume.json").exists() {
                continue;
            }
            volumes.push(self.read(&name)?);
        }
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(volumes)
    }

    /// Writes the record atomically: a temp file, then rename(2) over the old one.
    fn write(&self, volume: &Volume) -> Result<()> {
        let path = self.record(&volume.name);
        serde_json::to_vec_pretty(volume)
            .map_err(io::Error::other)
            .and_then(|bytes| images::store::write_file_atomic(&path, &bytes))
            .map_err(|e| io_error(format!("write {}", path.display()), e))
    }

    /// Makes a new volume's directory and record. The record is written last, so a volume
    /// without one was never finished and is not listed.
    fn make(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume> {
        let data = mountpoint(&self.root, name);
        fs::create_dir_all(&data).map_err(|e| io_error(format!("create {}", data.display()), e))?;
        let volume = Volume {
            name: name.to_string(),
            created: images::human::now_rfc3339(),
            labels,
            anonymous,
            users: Vec::new(),
            target: None,
            mountpoint: data,
        };
        self.write(&volume)?;
        Ok(volume)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let dir = self.dir.join(name);
        // The record first: a half-deleted volume is no longer a volume.
        match fs::remove_file(self.record(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_error(format!("remove {}", dir.display()), e));
            }
            _ => {}
        }
        fs::remove_dir_all(&dir).map_err(|e| io_error(format!("remove {}", dir.display()), e))
    }
}

/// Where a volume's content lives: `<root>/volumes/<name>/_data`.
pub fn mountpoint(root: &Path, name: &str) -> PathBuf {
    root.join("volumes").join(name).join("_data")
}

/// 64 random hex digits: an anonymous volume's name.
fn random_name() -> Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| io_error("read /dev/urandom for a volume name".into(), e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `volume create [NAME]`: a new volume, or the existing one of that name (as in Docker, creating
/// twice is not an error). Without a name, one with a random name; it is not anonymous, as in
/// Docker: only a container's `-v /path` makes those, and only they go with `prune` alone.
pub fn create(root: &Path, name: Option<&str>, labels: BTreeMap<String, String>) -> Result<Volume> {
    let store = lock(root)?;
    match name {
        Some(name) => {
            crate::spec::check_volume_name(name)?;
            match store.read(name) {
                Ok(existing) => Ok(existing),
                Err(StoreError::NoSuchVolume(_)) => store.make(name, labels, false),
                Err(e) => Err(e),
            }
        }
        None => store.make(&random_name()?, labels, false),
    }
}

/// `volume inspect NAME`.
pub fn inspect(root: &Path, name: &str) -> Result<Volume> {
    lock(root)?.read(name)
}

/// `volume ls`: every volume, by name.
pub fn list(root: &Path) -> Result<Vec<Volume>> {
    if !root.join("volumes").exists() {
        return Ok(Vec::new());
    }
    lock(root)?.read_all()
}

// ANCHOR: use
/// A container starts using a volume: the named one (created when missing, as `docker run -v
/// data:/srv` does), or for `name` `None` an anonymous one for `target`: the one this container
/// had there before (a container started again), else a new one. Returns the volume and whether
/// it was just made (only a new, empty volume gets the image's files copied in).
pub fn attach(
    root: &Path,
    name: Option<&str>,
    container_id: &str,
    target: &str,
) -> Result<(Volume, bool)> {
    let store = lock(root)?;
    let (mut volume, new) = match name {
        Some(name) => match store.read(name) {
            Ok(volume) => (volume, false),
            Err(StoreError::NoSuchVolume(_)) => (store.make(name, BTreeMap::new(), false)?, true),
            Err(e) => return Err(e),
        },
        None => {
            let had = store.read_all()?.into_iter().find(|v| {
                v.anonymous
                    && v.target.as_deref() == Some(target)
                    && v.users.iter().any(|u| u == container_id)
            });
            match had {
                Some(volume) => (volume, false),
                None => {
                    let mut volume = store.make(&random_name()?, BTreeMap::new(), true)?;
                    volume.target = Some(target.to_string());
                    (volume, true)
                }
            }
        }
    };
    if !volume.users.iter().any(|u| u == container_id) {
        volume.users.push(container_id.to_string());
    }
    store.write(&volume)?;
    Ok((volume, new))
}

/// A container stops using a volume. With `remove` (an anonymous volume of a `--rm` container),
/// the volume goes too, unless another container still uses it.
pub fn detach(root: &Path, name: &str, container_id: &str, remove: bool) -> Result<()> {
    let store = lock(root)?;
    let mut volume = match store.read(name) {
        Ok(volume) => volume,
        // Removed by force meanwhile: nothing to do.
        Err(StoreError::NoSuchVolume(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    volume.users.retain(|u| u != container_id);
    if remove && volume.users.is_empty() {
        store.delete(name)
    } else {
        store.write(&volume)
    }
}

/// A container stops using every volume it has: what its removal does (`rm`, the end of a run
/// of stages 06 and earlier). With `remove_anonymous` (`--rm`, `rm -v`) its anonymous volumes
/// go too, unless another container still uses one. Returns the volumes it had.
pub fn detach_all(root: &Path, container_id: &str, remove_anonymous: bool) -> Result<Vec<String>> {
    if !root.join("volumes").exists() {
        return Ok(Vec::new());
    }
    let store = lock(root)?;
    let mut had = Vec::new();
    for mut volume in store.read_all()? {
        if !volume.users.iter().any(|u| u == container_id) {
            continue;
        }
        volume.users.retain(|u| u != container_id);
        if remove_anonymous && volume.anonymous && volume.users.is_empty() {
            store.delete(&volume.name)?;
        } else {
            store.write(&volume)?;
        }
        had.push(volume.name);
    }
    Ok(had)
}
// ANCHOR_END: use

/// `volume rm [-f] NAME`: refused while a container uses the volume, unless forced.
pub fn remove(root: &Path, name: &str, force: bool) -> Result<()> {
    let store = lock(root)?;
    let volume = store.read(name)?;
    if !volume.users.is_empty() && !force && !chroot::defence::disabled("volume-in-use") {
        return Err(StoreError::InUse {
            name: name.to_string(),
            users: volume
                .users
                .iter()
                .map(|u| u[..12.min(u.len())].to_string())
                .collect(),
        });
    }
    store.delete(name)
}

/// `volume prune [-a]`: removes the volumes no container uses — only the anonymous ones unless
/// `all` (Docker's rule since 23.0). Returns what went and how many bytes that freed.
pub fn prune(root: &Path, all: bool) -> Result<(Vec<String>, u64)> {
    if !root.join("volumes").exists() {
        return Ok((Vec::new(), 0));
    }
    let store = lock(root)?;
    let mut removed = Vec::new();
    let mut freed = 0;
    for volume in store.read_all()? {
        if volume.users.is_empty() && (all || volume.anonymous) {
            freed += disk_usage(&volume.mountpoint);
            store.delete(&volume.name)?;
            removed.push(volume.name);
        }
    }
    Ok((removed, freed))
}

/// The bytes the files under `dir` take (their sizes; directories count nothing).
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// `volume ls`'s table: `DRIVER` and `VOLUME NAME`, as Docker prints it.
pub fn ls_table(volumes: &[Volume]) -> String {
    let rows: Vec<Vec<String>> = volumes
        .iter()
        .map(|v| vec!["local".to_string(), v.name.clone()])
        .collect();
    images::human::table(&["DRIVER", "VOLUME NAME"], &rows)
}

/// One volume as `volume ls --format json` and its templates see it: Docker's fields.
pub fn ls_json(volume: &Volume) -> serde_json::Value {
    let labels = volume.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    ls_row(
        "local",
        &volume.name,
        &volume.mountpoint.to_string_lossy(),
        "local",
        labels,
    )
}

/// A `volume ls` row as docker/cli's `formatter/volume.go` fills it, for a volume kept here or
/// one a daemon lists. `Links` and `Size` come from usage data, which only `system df -v` asks
/// for: the list has none, so they are `N/A`. `Availability`, `Group` and `Status` describe a
/// Swarm cluster volume, which a local one is not: `N/A` too.
pub fn ls_row<'a>(
    driver: &str,
    name: &str,
    mountpoint: &str,
    scope: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> serde_json::Value {
    let labels: Vec<String> = labels
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    serde_json::json!({
        "Availability": "N/A",
        "Driver": driver,
        "Group": "N/A",
        "Labels": labels.join(","),
        "Links": "N/A",
        "Mountpoint": mountpoint,
        "Name": name,
        "Scope": scope,
        "Size": "N/A",
        "Status": "N/A",
    })
}

/// `volume inspect`'s JSON: Docker's fields.
pub fn inspect_json(volumes: &[Volume]) -> String {
    let items: Vec<serde_json::Value> = volumes
        .iter()
        .map(|v| {
            serde_json::json!({
                "CreatedAt": v.created,
                "Driver": "local",
                "Labels": v.labels,
                "Mountpoint": v.mountpoint,
                "Name": v.name,
                "Options": {},
                "Scope": "local",
                "Anonymous": v.anonymous,
                "UsedBy": v.users,
            })
        })
        .collect();
    serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn create_is_idempotent_and_lays_out_like_docker() {
        let r = root();
        let a = create(r.path(), Some("data"), BTreeMap::new()).unwrap();
        assert_eq!(a.mountpoint, r.path().join("volumes/data/_data"));
        assert!(a.mountpoint.is_dir());
        fs::write(a.mountpoint.join("kept"), "x").unwrap();
        let b = create(r.path(), Some("data"), BTreeMap::new()).unwrap();
        assert_eq!(a.created, b.created);
        assert!(b.mountpoint.join("kept").exists());
        assert!(create(r.path(), Some("da ta"), BTreeMap::new()).is_err());
    }

    #[test]
    fn a_volume_in_use_is_not_removed() {
        let r = root();
        let id = "c".repeat(64);
        fs::create_dir_all(r.path().join("containers").join(&id)).unwrap();
        let (volume, new) = attach(r.path(), Some("data"), &id, "/srv").unwrap();
        assert!(new);
        let err = remove(r.path(), "data", false).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("remove data: volume is in use - [{}]", &id[..12])
        );
        assert!(prune(r.path(), true).unwrap().0.is_empty());
        detach(r.path(), "data", &id, false).unwrap();
        remove(r.path(), "data", false).unwrap();
        assert!(!volume.mountpoint.exists());
        assert!(matches!(
            inspect(r.path(), "data"),
            Err(StoreError::NoSuchVolume(_))
        ));
    }

    #[test]
    fn users_whose_container_is_gone_do_not_count() {
        let r = root();
        attach(r.path(), Some("data"), &"d".repeat(64), "/srv").unwrap();
        assert!(inspect(r.path(), "data").unwrap().users.is_empty());
        remove(r.path(), "data", false).unwrap();
    }

    #[test]
    fn anonymous_volumes_go_with_rm_and_prune() {
        let r = root();
        let id = "e".repeat(64);
        fs::create_dir_all(r.path().join("containers").join(&id)).unwrap();
        let (anon, _) = attach(r.path(), None, &id, "/data").unwrap();
        assert!(anon.anonymous && anon.name.len() == 64);
        // Started again, the container gets the same one back; another path, another one.
        let (again, new) = attach(r.path(), None, &id, "/data").unwrap();
        assert_eq!((again.name.as_str(), new), (anon.name.as_str(), false));
        let (other, _) = attach(r.path(), None, &id, "/logs").unwrap();
        assert_ne!(other.name, anon.name);
        detach(r.path(), &other.name, &id, true).unwrap();
        detach(r.path(), &anon.name, &id, true).unwrap();
        assert!(list(r.path()).unwrap().is_empty());

        let (kept, _) = attach(r.path(), None, &id, "/data").unwrap();
        create(r.path(), Some("named"), BTreeMap::new()).unwrap();
        detach(r.path(), &kept.name, &id, false).unwrap();
        fs::write(kept.mountpoint.join("f"), "12345").unwrap();
        let (removed, freed) = prune(r.path(), false).unwrap();
        assert_eq!((removed, freed), (vec![kept.name.clone()], 5));
        let (removed, _) = prune(r.path(), true).unwrap();
        assert_eq!(removed, vec!["named".to_string()]);
    }

    #[test]
    fn tables_and_json() {
        let r = root();
        create(
            r.path(),
            Some("data"),
            BTreeMap::from([("a".into(), "b".into())]),
        )
        .unwrap();
        let volumes = list(r.path()).unwrap();
        let table = ls_table(&volumes);
        assert!(table.starts_with("DRIVER"), "{table}");
        assert!(table.contains("VOLUME NAME") && table.contains("local") && table.contains("data"));
        let json: serde_json::Value = serde_json::from_str(&inspect_json(&volumes)).unwrap();
        assert_eq!(json[0]["Name"], "data");
        assert_eq!(json[0]["Labels"]["a"], "b");
        assert_eq!(json[0]["Driver"], "local");
    }

    /// issue 10: `volume ls --format '{{json .}}'` printed `"Links":"0"` and lacked Docker's
    /// cluster fields. The expected line is Docker 20.10's daemon with the 28.2 CLI, its root
    /// swapped for this one.
    #[test]
    fn ls_json_is_dockers_row() {
        let r = root();
        let labels = BTreeMap::from([("a".into(), "b".into()), ("c".into(), "d".into())]);
        let volume = create(r.path(), Some("v2"), labels).unwrap();
        let docker = r#"{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"a=b,c=d","Links":"N/A","Mountpoint":"ROOT/volumes/v2/_data","Name":"v2","Scope":"local","Size":"N/A","Status":"N/A"}"#;
        let expected: serde_json::Value =
            serde_json::from_str(&docker.replace("ROOT", &r.path().to_string_lossy())).unwrap();
        assert_eq!(ls_json(&volume), expected);
    }

    #[test]
    fn unknown_and_odd_names_are_no_such_volume() {
        let r = root();
        for name in ["nope", "../etc", "a/b"] {
            assert!(matches!(
                inspect(r.path(), name),
                Err(StoreError::NoSuchVolume(_))
            ));
        }
    }
}
