//! The store of container records: `<root>/containers/<id>/config.json`, one per container,
//! and the lock that makes names unique.
//!
//! ```text
//! <root>/containers.lock         flock(2): held around every change of a record, so two
//!                                commands never both take one name or both write one record
//! <root>/containers/<id>/        the state directory (its /etc files; later stages add more)
//!   config.json                  the record, replaced atomically: written to a temporary
//!                                file, then rename(2)d over the old one
//! ```
//!
//! A reader needs no lock: a rename is atomic, so it sees the old record or the new one, never
//! half of one. A container is found as Docker finds it: by its full id, its name, or a unique
//! prefix of its id (docker-inspect(1)).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::record::{RECORD_VERSION, Record, container_dir};

/// What can go wrong with container records.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A file of the store could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, on which path.
        what: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// A record does not parse.
    #[error("container record {path} is corrupt ({source}): remove its directory")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A record written by a newer engine.
    #[error(
        "container record {path} has format version {version}, newer than this skiff's {RECORD_VERSION}: use a newer skiff"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        version: u32,
    },
    /// Nothing matches.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// An id prefix that matches several containers.
    #[error("multiple containers match {0:?}: give more of the id, or the name")]
    Ambiguous(String),
    /// A name that is taken.
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse {
        /// The name.
        name: String,
        /// The container that has it.
        id: String,
    },
    /// A name Docker would refuse.
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
}

type Result<T> = std::result::Result<T, RecordError>;

fn io_error(what: String, source: io::Error) -> RecordError {
    RecordError::Io { what, source }
}

/// Checks a container name against Docker's rule, `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if name.len() >= 2 && first && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        Ok(())
    } else {
        Err(RecordError::InvalidName(name.to_string()))
    }
}

/// Opens `path` (creating it) and takes an flock(2) on it in `mode`, waiting for any other
/// holder; the lock lasts as long as the returned value. flock locks belong to the open file
/// description, so two threads of one process that each call this exclude each other as two
/// processes do. Every store of skiff's locks with it: containers here, images (stage 04),
/// networks (05), volumes (06).
pub fn lock_file(path: &Path, mode: FlockArg) -> io::Result<Flock<File>> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    Flock::lock(file, mode).map_err(|(_, errno)| errno.into())
}

// ANCHOR: replace_file
/// Replaces `path` with `bytes` so that a reader sees the old file or the whole new one: a
/// temporary file beside it, then rename(2). No fsync: a record describes processes, and after
/// a crash of the host none of them is left whatever the record says (their pids are gone).
///
/// The old file is kept open across the rename. The rename then only drops its name, and its
/// inode is freed when the last descriptor goes, in [`release_replaced`]: freeing the block of
/// a small file costs 0.15 to 0.3 ms on this VM's ext4 (mounted `discard`), against a few
/// microseconds for the rest of the replacement, and a `run` replaces the record and the
/// network's file five times while its client waits.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = path.with_file_name(format!(
        ".{name}.tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let old = File::open(path).ok();
    let written = File::create(&temp)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    if let Some(old) = old {
        let mut replaced = REPLACED.lock().unwrap_or_else(|e| e.into_inner());
        if replaced.len() >= REPLACED_KEPT {
            // A long-lived process that never releases keeps a few, not all.
            replaced.clear();
        }
        replaced.push(old);
    }
    written
}

/// The files [`replace_file`] replaced, still open (see there).
static REPLACED: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// How many replaced files a process keeps open at most before it frees them at once.
const REPLACED_KEPT: usize = 16;

/// Closes the files [`replace_file`] replaced: each close is its inode's last reference, and
/// frees it. For a moment no one waits on: stage 07's monitor calls this once it has told its
/// client what it waits for; whatever is left goes when the process exits.
pub fn release_replaced() {
    REPLACED.lock().unwrap_or_else(|e| e.into_inner()).clear();
}
// ANCHOR_END: replace_file

// ANCHOR: records
/// The container records of the store at `root`.
#[derive(Debug, Clone)]
pub struct Records {
    root: PathBuf,
}

/// The records with the store's lock held: the only way to change one.
pub struct Locked<'a> {
    records: &'a Records,
    _lock: Flock<File>,
}

impl Records {
    /// The records of the store at `root` (nothing is read or made yet).
    pub fn new(root: &Path) -> Self {
        Records {
            root: root.to_path_buf(),
        }
    }

    /// The store's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/containers/<id>`.
    pub fn dir(&self, id: &str) -> PathBuf {
        container_dir(&self.root, id)
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir(id).join("config.json")
    }

    /// Takes the store's lock, waiting for any other holder.
    pub fn lock(&self) -> Result<Locked<'_>> {
        let dir = self.root.join("containers");
        crate::private::store_dir(&self.root, "containers")
            .map_err(|e| io_error(format!("create {}", dir.display()), e))?;
        let path = self.root.join("containers.lock");
        let lock = lock_file(&path, FlockArg::LockExclusive)
            .map_err(|e| io_error(format!("lock {}", path.display()), e))?;
        Ok(Locked {
            records: self,
            _lock: lock,
        })
    }

    /// The record of container `id` (its full id), if it has one.
    pub fn load<S: DeserializeOwned>(&self, id: &str) -> Result<Option<Record<S>>> {
        let path = self.path(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(format!("read {}", path.display()), e)),
        };
        let version: Versioned =
            serde_json::from_slice(&bytes).map_err(|source| RecordError::Corrupt {
                path: path.clone(),
                source,
            })?;
        if version.version > RECORD_VERSION {
            return Err(RecordError::TooNew {
                path,
                version: version.version,
            });
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| RecordError::Corrupt { path, source })
    }

    /// Every record, oldest first. A directory without a record (a container being created
    /// or removed right now) is skipped.
    pub fn list<S: DeserializeOwned>(&self) -> Result<Vec<Record<S>>> {
        let dir = self.root.join("containers");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(format!("read {}", dir.display()), e)),
        };
        let mut records = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(format!("read {}", dir.display()), e))?;
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if crate::ContainerId::from_hex(&id).is_none() {
                continue;
            }
            if let Some(record) = self.load(&id)? {
                records.push(record);
            }
        }
        records.sort_by(|a: &Record<S>, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(records)
    }

    /// Finds a container as Docker does: its full id, its name (with or without the leading
    /// `/`), or a unique prefix of its id.
    pub fn find<S: DeserializeOwned>(&self, key: &str) -> Result<Record<S>> {
        if crate::ContainerId::from_hex(key).is_some()
            && let Some(record) = self.load(key)?
        {
            return Ok(record);
        }
        let all = self.list::<S>()?;
        let name = key.strip_prefix('/').unwrap_or(key);
        let mut found = None;
        let mut prefixed = Vec::new();
        for record in all {
            if record.name == name {
                found = Some(record);
            } else if !key.is_empty()
                && key.bytes().all(|b| b.is_ascii_hexdigit())
                && record.id.starts_with(key)
            {
                prefixed.push(record);
            }
        }
        if let Some(record) = found {
            return Ok(record);
        }
        match prefixed.len() {
            0 => Err(RecordError::NoSuchContainer(key.to_string())),
            1 => Ok(prefixed.remove(0)),
            _ => Err(RecordError::Ambiguous(key.to_string())),
        }
    }
}

/// Just the version of a record, read before the rest.
#[derive(serde::Deserialize)]
struct Versioned {
    version: u32,
}

impl Locked<'_> {
    /// Writes a new container's record: checks that its name is free and makes its state
    /// directory, all under the lock, so two creates never get one name.
    pub fn create<S: Serialize + DeserializeOwned>(&self, record: &Record<S>) -> Result<()> {
        check_name(&record.name)?;
        self.check_name_free(&record.name, &record.id)?;
        let dir = self.records.dir(&record.id);
        match crate::placement::make_dir(&self.records.root, &dir, &record.id) {
            Err(e) if !(e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir()) => {
                return Err(io_error(format!("create {}", dir.display()), e));
            }
            _ => {}
        }
        self.write(record)
    }

    /// Fails when another container than `id` has `name`.
    pub fn check_name_free(&self, name: &str, id: &str) -> Result<()> {
        match self
            .records
            .list::<serde::de::IgnoredAny>()?
            .into_iter()
            .find(|r| r.name == name && r.id != id)
        {
            Some(other) => Err(RecordError::NameInUse {
                name: name.to_string(),
                id: other.id,
            }),
            None => Ok(()),
        }
    }

    /// Replaces a record.
    pub fn write<S: Serialize>(&self, record: &Record<S>) -> Result<()> {
        let path = self.records.path(&record.id);
        serde_json::to_vec_pretty(record)
            .map_err(io::Error::other)
            .and_then(|bytes| replace_file(&path, &bytes))
            .map_err(|e| io_error(format!("write {}", path.display()), e))
    }

    /// Changes a record with `change`, which sees the current one; returns the new record, or
    /// `None` when the container is gone.
    pub fn update<S: Serialize + DeserializeOwned>(
        &self,
        id: &str,
        change: impl FnOnce(&mut Record<S>),
    ) -> Result<Option<Record<S>>> {
        let Some(mut record) = self.records.load::<S>(id)? else {
            return Ok(None);
        };
        change(&mut record);
        self.write(&record)?;
        Ok(Some(record))
    }

    /// Removes a record, so the container no longer exists for any command; its directory is
    /// the sweep's to remove.
    pub fn delete(&self, id: &str) -> Result<()> {
        let path = self.records.path(id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_error(format!("remove {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }
}
// ANCHOR_END: records

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Config, State};

    fn record(id: char, name: &str) -> Record {
        Record {
            version: RECORD_VERSION,
            id: id.to_string().repeat(64),
            name: name.into(),
            created: format!("2026-01-01T00:00:0{id}Z"),
            image: "busybox".into(),
            image_id: String::new(),
            config: Config::default(),
            cgroup: None,
            state: State::default(),
            spec: serde_json::Value::Null,
        }
    }

    #[test]
    fn names_are_unique_and_containers_are_found_as_docker_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(dir.path());
        let locked = records.lock().unwrap();
        locked.create(&record('a', "web")).unwrap();
        locked.create(&record('b', "db")).unwrap();
        let err = locked.create(&record('c', "web")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "Conflict. The container name \"/web\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                "a".repeat(64)
            )
        );
        assert!(matches!(
            locked.create(&record('c', "x")),
            Err(RecordError::InvalidName(_))
        ));
        drop(locked);
        assert_eq!(
            records.find::<serde_json::Value>("web").unwrap().id,
            "a".repeat(64)
        );
        assert_eq!(records.find::<serde_json::Value>("/db").unwrap().name, "db");
        assert_eq!(records.find::<serde_json::Value>("bbb").unwrap().name, "db");
        assert!(matches!(
            records.find::<serde_json::Value>("nope"),
            Err(RecordError::NoSuchContainer(_))
        ));
        let names: Vec<_> = records
            .list::<serde_json::Value>()
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["web", "db"]);
        let locked = records.lock().unwrap();
        let changed = locked
            .update::<serde_json::Value>(&"b".repeat(64), |r| r.name = "db2".into())
            .unwrap()
            .unwrap();
        assert_eq!(changed.name, "db2");
        locked.delete(&"b".repeat(64)).unwrap();
        assert!(
            records
                .load::<serde_json::Value>(&"b".repeat(64))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_record_from_a_newer_engine_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::new(dir.path());
        let mut newer = record('d', "new");
        newer.version = RECORD_VERSION + 1;
        records.lock().unwrap().create(&newer).unwrap();
        let err = records
            .load::<serde_json::Value>(&"d".repeat(64))
            .unwrap_err();
        assert!(matches!(err, RecordError::TooNew { .. }), "{err}");
    }
}
