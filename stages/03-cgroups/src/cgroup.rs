//! One interface over cgroup v1 and v2: a container's cgroup, wherever the host keeps it.
//!
//! A container's cgroup is `<parent>/<container id>` (`skiff/3f2a...`) under the root of every
//! tree it needs: one directory per v1 hierarchy (`/sys/fs/cgroup/memory/skiff/3f2a...`,
//! `/sys/fs/cgroup/pids/skiff/3f2a...`), or a single one on v2 (`/sys/fs/cgroup/skiff/3f2a...`).
//! [`Cgroup`] hides which; [`open`] picks the implementation for the detected [`Host`].
//!
//! The directory work is the same for both: create the parent and the cgroup, surviving another
//! container that removes the shared parent meanwhile; and remove it again, killing what is
//! left inside first, because the kernel refuses to remove a cgroup that holds processes
//! (`EBUSY`). See cgroups(7), rmdir(2).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::detect::{Host, Setup};
use crate::error::CgroupError;
use crate::files;
use crate::limits::Limits;
use crate::usage::Usage;
use crate::v1::V1Cgroup;
use crate::v2::V2Cgroup;

/// The parent cgroup of every container, unless `--cgroup-parent` says otherwise.
pub const DEFAULT_PARENT: &str = "skiff";

// ANCHOR: interface
/// A container's cgroup: one or more directories, depending on the host's setup.
pub trait Cgroup: Send {
    /// The cgroup's directories: one per v1 hierarchy, or the one v2 directory.
    fn paths(&self) -> Vec<PathBuf>;

    /// Checks that the host has the controllers `limits` needs, creates the cgroup and sets the
    /// limits. On failure, [`Cgroup::remove`] removes whatever was made.
    fn create(&mut self, limits: &Limits) -> Result<(), CgroupError>;

    /// Lets [`Cgroup::create`] find the container's own directory made already: by another
    /// process, for this same container, working ahead (see `CgroupFeature`'s `ahead`).
    fn may_exist(&mut self);

    /// Sets `limits` on the cgroup, which exists.
    fn apply(&self, limits: &Limits) -> Result<(), CgroupError>;

    /// Denies the cgroup's processes every device but those `rules` allow: the devices
    /// controller's files on v1, an eBPF program attached to the directory on v2. See
    /// [`crate::devices`].
    fn restrict_devices(&self, rules: &[crate::devices::DeviceRule]) -> Result<(), CgroupError>;

    /// Moves process `pid`, all its threads, into the cgroup. Its children are born there.
    fn add(&self, pid: Pid) -> Result<(), CgroupError>;

    /// The writes with which a single-threaded child can move *itself* into the cgroup, when
    /// that is cheaper than [`Cgroup::add`] from outside: `(file, contents)` pairs.
    fn self_join(&self) -> Option<Vec<(PathBuf, &'static [u8])>> {
        None
    }

    /// What the cgroup has used so far. Counters the host does not have are `None`.
    fn usage(&self) -> Result<Usage, CgroupError>;

    /// How many processes of the cgroup the OOM killer has killed; `None` without a memory
    /// controller to ask.
    fn oom_kills(&self) -> Result<Option<u64>, CgroupError>;

    /// Kills whatever still runs in the cgroup, removes it, and removes the default parent
    /// when no other container uses it. Removing what does not exist succeeds.
    fn remove(&mut self) -> Result<(), CgroupError>;
}

/// The container's cgroup on `host`: v1 hierarchies on a legacy or hybrid host (where they
/// hold the controllers), the v2 tree on a unified one.
pub fn open(host: &Host, path: CgroupPath) -> Box<dyn Cgroup> {
    match host.setup {
        Setup::Legacy | Setup::Hybrid => Box::new(V1Cgroup::new(host, path)),
        Setup::Unified => Box::new(V2Cgroup::new(host, path)),
    }
}
// ANCHOR_END: interface

/// Where a container's cgroup lives below each controller's root: `<parent>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPath {
    /// The parent, relative to the root (`skiff`, or a `--cgroup-parent` such as `ci/jobs`).
    pub parent: PathBuf,
    /// The container id, the cgroup's own directory name.
    pub id: String,
}

impl CgroupPath {
    /// `<parent>/<id>`, after checking that neither can leave the cgroup tree. A leading `/`
    /// of `parent` is dropped: the parent is always below each controller's root.
    pub fn new(parent: &str, id: &str) -> Result<Self, CgroupError> {
        let bad = |what, value: &str, reason| CgroupError::BadName {
            what,
            value: value.to_string(),
            reason,
        };
        if !is_name(id) {
            return Err(bad(
                "container id",
                id,
                "use letters, digits, '-', '_' and '.', not starting with '.'",
            ));
        }
        let trimmed = parent.trim_matches('/');
        if trimmed.is_empty() || !trimmed.split('/').all(is_name) {
            return Err(bad(
                "cgroup parent",
                parent,
                "give a path of names (letters, digits, '-', '_', '.') such as skiff or ci/jobs",
            ));
        }
        Ok(CgroupPath {
            parent: PathBuf::from(trimmed),
            id: id.to_string(),
        })
    }

    /// `skiff/<id>`.
    pub fn skiff(id: &str) -> Result<Self, CgroupError> {
        CgroupPath::new(DEFAULT_PARENT, id)
    }

    /// `<parent>/<id>`, relative to a controller's root.
    pub fn relative(&self) -> PathBuf {
        self.parent.join(&self.id)
    }

    /// Whether the parent is skiff's own, which skiff removes when it is empty. A parent given
    /// with `--cgroup-parent` belongs to the user and stays, as with Docker.
    pub fn owns_parent(&self) -> bool {
        self.parent == Path::new(DEFAULT_PARENT)
    }
}

/// A name that is one safe path component.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The two directory system calls, mkdir(2) and rmdir(2). On the host they are the real ones;
/// tests on fake trees swap in versions that also add and remove the control files, as the
/// kernel does (youki puts its system calls behind a trait for the same reason).
#[derive(Clone, Copy)]
pub(crate) struct Dirs {
    /// Creates one directory.
    pub mkdir: fn(&Path) -> std::io::Result<()>,
    /// Removes one directory.
    pub rmdir: fn(&Path) -> std::io::Result<()>,
    /// The container's own directory may exist already: another process made it for this
    /// container, working ahead ([`Cgroup::may_exist`]). Otherwise finding it is an error.
    pub leaf_may_exist: bool,
}

impl Dirs {
    /// The host's mkdir(2) and rmdir(2).
    pub const HOST: Dirs = Dirs {
        mkdir: host_mkdir,
        rmdir: host_rmdir,
        leaf_may_exist: false,
    };
}

fn host_mkdir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir(dir)
}

fn host_rmdir(dir: &Path) -> std::io::Result<()> {
    std::fs::remove_dir(dir)
}

/// What a v1 hierarchy or the v2 tree does to a directory it just made, given the one above.
pub(crate) type Prepare<'a> = &'a dyn Fn(&Path, &Path) -> Result<(), CgroupError>;

/// Tries to create a cgroup this often when its parent keeps disappearing.
const CREATE_ATTEMPTS: u32 = 10;
/// Gives up killing and removing a cgroup after this long.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

// ANCHOR: create
/// Creates `root/<parent>/<id>`, the parent directories as needed, and runs `prepare` on each
/// directory made or found (with the directory above it). Returns the cgroup's directory.
///
/// The parent is shared: another container's cleanup may remove it between our `mkdir`s. The
/// kernel then says `ENOENT`, and we start again.
pub(crate) fn make_dirs(
    root: &Path,
    path: &CgroupPath,
    dirs: Dirs,
    prepare: Prepare<'_>,
) -> Result<PathBuf, CgroupError> {
    let mut attempt = 1;
    let (above, dir) = loop {
        match make_once(root, path, dirs, prepare) {
            Err(err) if err.is_not_found() && attempt < CREATE_ATTEMPTS => attempt += 1,
            other => break other?,
        }
    };
    // The cgroup exists: its parent cannot go away now (rmdir would say EBUSY).
    prepare(&above, &dir)?;
    Ok(dir)
}

fn make_once(
    root: &Path,
    path: &CgroupPath,
    dirs: Dirs,
    prepare: Prepare<'_>,
) -> Result<(PathBuf, PathBuf), CgroupError> {
    let mut above = root.to_path_buf();
    for component in path.parent.components() {
        let dir = above.join(component);
        mkdir(dirs, &dir, true)?;
        prepare(&above, &dir)?;
        above = dir;
    }
    let dir = above.join(&path.id);
    mkdir(dirs, &dir, dirs.leaf_may_exist)?;
    Ok((above, dir))
}

fn mkdir(dirs: Dirs, dir: &Path, exist_ok: bool) -> Result<(), CgroupError> {
    match (dirs.mkdir)(dir) {
        Err(err) if exist_ok && err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map_err(|source| CgroupError::Create {
            path: dir.to_path_buf(),
            source,
        }),
    }
}
// ANCHOR_END: create

// ANCHOR: remove
/// Removes the cgroup `dir` with rmdir(2); while the kernel says `EBUSY`, kills every process
/// listed in its `cgroup.procs` (a process may fork while we kill) and tries again (killed
/// processes take a moment to leave). A cgroup that does not exist is fine.
pub(crate) fn remove_dir(dir: &Path, dirs: Dirs) -> Result<(), CgroupError> {
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    loop {
        // Removed at once when empty, as it usually is (a container's processes die with its
        // first one): the processes are read only when the kernel says some are left.
        let timed_out = Instant::now() > deadline;
        let busy = match (dirs.rmdir)(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::EBUSY) => err,
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        let left = match files::pids(dir) {
            Err(err) if err.is_not_found() => return Ok(()),
            other => other?,
        };
        for &pid in &left {
            kill(pid);
        }
        if timed_out {
            return Err(if left.is_empty() {
                CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source: busy,
                }
            } else {
                CgroupError::StillPopulated {
                    path: dir.to_path_buf(),
                    count: left.len(),
                    seconds: REMOVE_TIMEOUT.as_secs(),
                }
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes `root/<parent>` and the directories above it up to `root`, each only if empty.
/// Another container may still use it: `EBUSY` (or `ENOTEMPTY`) just means "not yet".
/// After [`defer_parent_removal`], only notes it for [`remove_deferred_parents`].
pub(crate) fn remove_parent(root: &Path, parent: &Path, dirs: Dirs) {
    if DEFER.load(Ordering::Relaxed) {
        let mut deferred = DEFERRED.lock().unwrap_or_else(|e| e.into_inner());
        deferred.push((root.to_path_buf(), parent.to_path_buf(), dirs));
        return;
    }
    remove_parent_now(root, parent, dirs);
}

fn remove_parent_now(root: &Path, parent: &Path, dirs: Dirs) {
    let mut dir = root.join(parent);
    while dir != root && dir.starts_with(root) {
        if (dirs.rmdir)(&dir).is_err_and(|err| err.kind() != std::io::ErrorKind::NotFound) {
            return;
        }
        dir.pop();
    }
}
// ANCHOR_END: remove

// ANCHOR: defer
/// Whether [`remove_parent`] waits for [`remove_deferred_parents`].
static DEFER: AtomicBool = AtomicBool::new(false);

/// The parents [`remove_parent`] left for [`remove_deferred_parents`].
static DEFERRED: Mutex<Vec<(PathBuf, PathBuf, Dirs)>> = Mutex::new(Vec::new());

/// From now on, removing a container's cgroup leaves skiff's shared parent (`skiff`, in every
/// hierarchy) for [`remove_deferred_parents`]. Making and removing the parent cost as much
/// again as the container's own cgroup (a memory cgroup is the dearest directory the kernel
/// makes: about 0.2 ms made and removed, for the four of a hybrid host), so stage 07's monitor keeps it for
/// as long as it keeps the default bridge: the next container of a burst finds it made.
pub fn defer_parent_removal() {
    DEFER.store(true, Ordering::Relaxed);
}

/// Whether [`remove_parent`] left a parent for [`remove_deferred_parents`]: whether there is
/// anything to linger for.
pub fn parents_deferred() -> bool {
    !DEFERRED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_empty()
}

/// Removes the parents left since [`defer_parent_removal`], each only if empty (the kernel
/// says `EBUSY` while another container's cgroup is inside: that container's removal takes the
/// parent in its turn), and removes at once from then on.
pub fn remove_deferred_parents() {
    DEFER.store(false, Ordering::Relaxed);
    let deferred = std::mem::take(&mut *DEFERRED.lock().unwrap_or_else(|e| e.into_inner()));
    for (root, parent, dirs) in deferred {
        remove_parent_now(&root, &parent, dirs);
    }
}
// ANCHOR_END: defer

/// SIGKILL to one process of a cgroup. Never to pid 0 or 1, nor to the engine itself: a
/// cgroup file is input, and kill(2) with 0 or -1 would reach far more than one process.
fn kill(pid: i32) {
    if pid <= 1 || u32::try_from(pid).ok() == Some(std::process::id()) {
        return;
    }
    // It may have exited already (ESRCH): the next look at cgroup.procs tells.
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// A fake rmdir(2) for directories of fake cgroup files: removes the regular files first, as
/// the kernel does with a cgroup's control files; a directory with subdirectories is busy.
#[cfg(test)]
pub(crate) fn fake_rmdir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                return Err(std::io::Error::from_raw_os_error(libc::EBUSY));
            }
        }
        for entry in std::fs::read_dir(dir)? {
            std::fs::remove_file(entry?.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_tree() {
        assert!(CgroupPath::skiff("skiff-test-1").is_ok());
        for id in ["", ".", "..", "a/b", ".hidden", "a b", "x\0"] {
            let err = CgroupPath::skiff(id).unwrap_err();
            assert!(
                err.to_string().contains("invalid container id"),
                "{id:?}: {err}"
            );
        }
        let path = CgroupPath::new("/ci/jobs/", "ab").unwrap();
        assert_eq!(path.relative(), Path::new("ci/jobs/ab"));
        assert!(!path.owns_parent());
        assert!(CgroupPath::skiff("ab").unwrap().owns_parent());
        for parent in ["", "/", "a/../b", "a//b", "../up"] {
            let err = CgroupPath::new(parent, "ab").unwrap_err();
            assert!(
                err.to_string().contains("invalid cgroup parent"),
                "{parent:?}: {err}"
            );
        }
    }

    #[test]
    fn dirs_are_made_with_their_parents_and_prepared_top_down() {
        let root = tempfile::tempdir().unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let record = |above: &Path, dir: &Path| {
            let rel = |p: &Path| p.strip_prefix(root.path()).unwrap().display().to_string();
            seen.lock()
                .unwrap()
                .push(format!("{} > {}", rel(above), rel(dir)));
            Ok(())
        };
        let path = CgroupPath::new("ci/jobs", "ab").unwrap();
        let dir = make_dirs(root.path(), &path, Dirs::HOST, &record).unwrap();
        assert_eq!(dir, root.path().join("ci/jobs/ab"));
        assert!(dir.is_dir());
        assert_eq!(
            *seen.lock().unwrap(),
            [" > ci", "ci > ci/jobs", "ci/jobs > ci/jobs/ab"]
        );

        // A second container with the same id is refused, and the error says why.
        let err =
            make_dirs(root.path(), &path, Dirs::HOST, &|_: &Path, _: &Path| Ok(())).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
    }

    #[test]
    fn a_vanishing_parent_is_retried() {
        let root = tempfile::tempdir().unwrap();
        let path = CgroupPath::skiff("ab").unwrap();
        let removed = std::sync::atomic::AtomicBool::new(false);
        // The first time the parent is made, "another container" removes it at once.
        let racer = |_: &Path, dir: &Path| {
            if dir.ends_with("skiff") && !removed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::fs::remove_dir(dir).unwrap();
            }
            Ok(())
        };
        let dir = make_dirs(root.path(), &path, Dirs::HOST, &racer).unwrap();
        assert!(dir.is_dir());
        assert!(removed.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn removal_tolerates_missing_dirs_and_keeps_busy_parents() {
        let root = tempfile::tempdir().unwrap();
        let path = CgroupPath::skiff("ab").unwrap();
        let other = CgroupPath::skiff("cd").unwrap();
        let noop = |_: &Path, _: &Path| Ok(());
        let fake = Dirs {
            mkdir: host_mkdir,
            rmdir: fake_rmdir,
            leaf_may_exist: false,
        };
        let dir = make_dirs(root.path(), &path, fake, &noop).unwrap();
        make_dirs(root.path(), &other, fake, &noop).unwrap();
        std::fs::write(dir.join("cgroup.procs"), "").unwrap();

        remove_dir(&dir, fake).unwrap();
        assert!(!dir.exists());
        remove_dir(&dir, fake).unwrap();
        // "cd" still uses the parent.
        remove_parent(root.path(), &path.parent, fake);
        assert!(root.path().join("skiff").is_dir());
        remove_dir(&root.path().join("skiff/cd"), fake).unwrap();
        remove_parent(root.path(), &path.parent, fake);
        assert!(!root.path().join("skiff").exists());
        assert!(root.path().is_dir());
    }

    #[test]
    fn kill_never_reaches_init_or_ourselves() {
        // These must be no-ops: the test would not survive otherwise.
        kill(0);
        kill(-1);
        kill(1);
        kill(i32::try_from(std::process::id()).unwrap());
    }
}
