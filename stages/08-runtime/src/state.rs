//! What the runtime knows of a container between its commands, and the state the spec defines.
//!
//! Each command (`create`, `start`, `state`, `kill`, `delete`) is a new process, often run by a
//! different caller, so nothing lives in memory: `--root/ID/state.json` holds the container's
//! pid (with its start time, so a recycled pid is never mistaken for it), its bundle and its
//! cgroup, written atomically (a temporary file renamed over the old one). The *status* is not
//! stored: it is read from the kernel each time (runtime.md, "State"):
//!
//! - `created`: the process exists and still waits on the exec fifo;
//! - `running`: the process exists and the fifo is gone (it was started);
//! - `paused`: running, and frozen by `pause` (runc's fifth status);
//! - `stopped`: the process is gone (or a zombie nobody reaped yet).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use namespaces::record::ProcessRef;
use serde::{Deserialize, Serialize};

use crate::fifo::FIFO_NAME;

/// The file in a state directory that says the container is paused.
pub const PAUSED_MARK: &str = "paused";

/// The OCI runtime spec version skiff-runtime implements.
pub const OCI_VERSION: &str = "1.0.2";

/// Where state lives when `--root` is not given (runc's is `/run/runc`).
pub const DEFAULT_ROOT: &str = "/run/skiff-runtime";

/// The record kept in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// The container's id.
    pub id: String,
    /// Its first process, as the host sees it, with its start time (stage 02's record of a
    /// process: a recycled pid is never mistaken for it).
    pub process: ProcessRef,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// When it was created, RFC 3339.
    pub created: String,
    /// The cgroup below each hierarchy's root.
    pub cgroup_path: String,
    /// The bundle's annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A container's status (runtime.md). `creating` is never seen: `create` makes the state
/// directory only once the process is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting on the exec fifo.
    Created,
    /// Started.
    Running,
    /// Frozen by `pause` (runc's status, beyond the spec's four).
    Paused,
    /// Its process is gone.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

// ANCHOR: state
/// The state JSON of the spec (and runc's extra fields, which containerd's shim reads).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    /// The spec's version.
    pub oci_version: &'static str,
    /// The container's id.
    pub id: &'a str,
    /// created, running or stopped.
    pub status: Status,
    /// The first process; 0 once stopped.
    pub pid: i32,
    /// The bundle directory.
    pub bundle: &'a Path,
    /// The root filesystem (runc's).
    pub rootfs: &'a Path,
    /// When it was created (runc's).
    pub created: &'a str,
    /// Who owns it (runc's; empty for root).
    pub owner: &'static str,
    /// The bundle's annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}
// ANCHOR_END: state

impl Record {
    /// The status now, from the kernel and the fifo in `dir`.
    pub fn status(&self, dir: &Path) -> Status {
        if !self.alive() {
            Status::Stopped
        } else if dir.join(FIFO_NAME).exists() {
            Status::Created
        } else if dir.join(PAUSED_MARK).exists() {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// Whether the container's first process still runs (not a zombie, not a recycled pid).
    pub fn alive(&self) -> bool {
        self.process.is_alive()
    }

    /// The state a hook reads: `status` as the lifecycle point says it (a short-lived program
    /// may be gone by the time a poststart hook runs), and the pid.
    pub fn hook_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status,
            pid: self.process.pid,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: "",
            annotations: &self.annotations,
        }
    }

    /// The spec's state of this container, whose state directory is `dir`.
    pub fn oci_state(&self, dir: &Path) -> OciState<'_> {
        let status = self.status(dir);
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.process.pid
            },
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: "",
            annotations: &self.annotations,
        }
    }
}

/// What went wrong with the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// An id that is not one safe name.
    #[error(
        "invalid container id {0:?}: use letters, digits, '_', '-' and '.', not starting with '.'"
    )]
    BadId(String),
    /// No such container.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// The id is taken.
    #[error("container {0} already exists: delete it first or choose another id")]
    Exists(String),
    /// A file operation failed.
    #[error("{what} {path}")]
    Io {
        /// What was done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `state.json` is not what this runtime writes.
    #[error("read {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The state directories under `--root`.
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store at `root`.
    pub fn new(root: &Path) -> Self {
        Store {
            root: root.to_path_buf(),
        }
    }

    /// The state directory of container `id`, after checking the id is one path component.
    pub fn dir(&self, id: &str) -> Result<PathBuf, StateError> {
        let ok = !id.is_empty()
            && !id.starts_with('.')
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(StateError::BadId(id.to_string()));
        }
        Ok(self.root.join(id))
    }

    // ANCHOR: claim
    /// Makes the state directory of a new container; it must not exist (two callers creating
    /// the same id at once: one wins, the other is told).
    pub fn claim(&self, id: &str) -> Result<PathBuf, StateError> {
        let dir = self.dir(id)?;
        let io = |what, source| StateError::Io {
            what,
            path: dir.clone(),
            source,
        };
        // Private, as runc's: state and fifos are root's business only.
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| io("create the runtime root for", e))?;
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StateError::Exists(id.to_string()))
            }
            Err(e) => Err(io("create", e)),
        }
    }
    // ANCHOR_END: claim

    /// Writes `record` atomically: a reader sees the old file or the new one, never half.
    pub fn save(&self, record: &Record) -> Result<(), StateError> {
        let dir = self.dir(&record.id)?;
        let path = dir.join("state.json");
        let tmp = dir.join("state.json.tmp");
        let io = |what, source| StateError::Io {
            what,
            path: path.clone(),
            source,
        };
        let json = serde_json::to_vec_pretty(record).map_err(|e| io("serialize", e.into()))?;
        std::fs::write(&tmp, json).map_err(|e| io("write", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io("write", e))
    }

    /// The record of container `id`.
    pub fn load(&self, id: &str) -> Result<(Record, PathBuf), StateError> {
        let dir = self.dir(id)?;
        let path = dir.join("state.json");
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.to_string()));
            }
            Err(source) => {
                return Err(StateError::Io {
                    what: "read",
                    path,
                    source,
                });
            }
        };
        let record = serde_json::from_slice(&text).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok((record, dir))
    }

    /// Every container id in the store, sorted.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::Io {
                    what: "list",
                    path: self.root.clone(),
                    source,
                });
            }
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("state.json").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Removes the state directory of `id`; gone already is fine.
    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        let dir = self.dir(id)?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StateError::Io {
                what: "remove",
                path: dir,
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_alive_while_its_process_is() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let process = ProcessRef::of(pid).unwrap();
        let record = Record {
            id: "x".into(),
            process,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: "2026-01-01T00:00:00Z".into(),
            cgroup_path: "skiff/x".into(),
            annotations: BTreeMap::new(),
        };
        assert!(record.alive());
        let recycled = Record {
            process: ProcessRef {
                start: process.start + 1,
                ..process
            },
            ..record
        };
        assert!(!recycled.alive());
    }

    #[test]
    fn ids_are_one_path_component() {
        let store = Store::new(Path::new("/run/x"));
        assert!(store.dir("web-1.a_b").is_ok());
        for bad in ["", "..", ".x", "a/b", "a b"] {
            assert!(store.dir(bad).is_err(), "{bad:?}");
        }
    }
}
