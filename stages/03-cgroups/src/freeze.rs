//! Freezing a cgroup: what `pause` and `unpause` do.
//!
//! The freezer stops every process of a cgroup at once and keeps them stopped: they are not
//! scheduled, do not see a signal until they are thawed, and cannot tell (unlike SIGSTOP, which
//! a parent can notice and which stops one process at a time, racing with forks). On cgroup v1
//! it is a controller of its own, `freezer`, whose `freezer.state` is written `FROZEN` or
//! `THAWED`; skiff's containers join that hierarchy only when they are first paused, so
//! freezing moves their processes there first. On v2 every cgroup has `cgroup.freeze` (0 or 1),
//! and `cgroup.events` says `frozen 1` once all of them have stopped. See the kernel's
//! `cgroup-v1/freezer-subsystem.rst` and `cgroup-v2.rst` ("Freezer").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cgroup::CgroupPath;
use crate::detect::{Host, Setup};
use crate::error::CgroupError;
use crate::files;

/// How long a freeze may take before skiff gives up (a process in uninterruptible sleep, in a
/// kernel call, stops only when it returns).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

fn split(path: &str) -> Result<CgroupPath, CgroupError> {
    let (parent, id) = path.rsplit_once('/').unwrap_or(("", path));
    CgroupPath::new(parent, id)
}

// ANCHOR: freeze
/// Freezes every process of the cgroup `path` (`<parent>/<id>`, as a record keeps it), and
/// returns once all of them have stopped.
pub fn freeze(path: &str) -> Result<(), CgroupError> {
    let path = split(path)?;
    let host = Host::detect()?;
    match host.setup {
        Setup::Unified => {
            let dir = v2_dir(host, &path)?;
            files::write(&dir.join("cgroup.freeze"), "1")?;
            wait_until(|| Ok(files::read_keyed(&dir.join("cgroup.events"), "frozen")? == Some(1)))
        }
        Setup::Legacy | Setup::Hybrid => {
            let dir = v1_freezer_dir(host, &path)?;
            join_all(host, &path, &dir)?;
            files::write(&dir.join("freezer.state"), "FROZEN")?;
            wait_until(|| Ok(files::read(&dir.join("freezer.state"))?.trim() == "FROZEN"))
        }
    }
}
// ANCHOR_END: freeze

/// Thaws the cgroup `path`: its processes run again.
pub fn thaw(path: &str) -> Result<(), CgroupError> {
    let path = split(path)?;
    let host = Host::detect()?;
    match host.setup {
        Setup::Unified => files::write(&v2_dir(host, &path)?.join("cgroup.freeze"), "0"),
        Setup::Legacy | Setup::Hybrid => {
            let dir = v1_freezer_dir(host, &path)?;
            // Never frozen: nothing to thaw.
            if !dir.exists() {
                return Ok(());
            }
            files::write(&dir.join("freezer.state"), "THAWED")
        }
    }
}

fn v2_dir(host: &Host, path: &CgroupPath) -> Result<PathBuf, CgroupError> {
    let root = host.unified.clone().unwrap_or_else(|| host.root.clone());
    Ok(root.join(path.relative()))
}

/// The container's cgroup in the v1 freezer hierarchy, made (with skiff's parent) if missing.
fn v1_freezer_dir(host: &Host, path: &CgroupPath) -> Result<PathBuf, CgroupError> {
    let hierarchy = host
        .hierarchy("freezer")
        .ok_or_else(|| CgroupError::ControllerMissing {
            controller: "freezer",
            expected: host.root.join("freezer"),
        })?;
    let dir = hierarchy.mount_point.join(path.relative());
    std::fs::create_dir_all(&dir).map_err(|source| CgroupError::Create {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

/// Moves every process of the container into its freezer cgroup: the ones the `pids`
/// hierarchy (which every container joins) holds. A process forked meanwhile by one not yet
/// moved would stay behind, so it goes round until nothing is left to move.
fn join_all(host: &Host, path: &CgroupPath, freezer: &Path) -> Result<(), CgroupError> {
    let Some(pids) = host.hierarchy("pids") else {
        return Ok(());
    };
    let source = pids.mount_point.join(path.relative());
    for _ in 0..10 {
        let wanted = files::pids(&source)?;
        let there = files::pids(freezer)?;
        let missing: Vec<i32> = wanted.into_iter().filter(|p| !there.contains(p)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        for pid in missing {
            // A process that exited meanwhile cannot be moved, and need not be.
            match files::write(&freezer.join("cgroup.procs"), pid.to_string()) {
                Err(CgroupError::Write { source, .. })
                    if source.raw_os_error() == Some(libc::ESRCH) => {}
                other => other?,
            }
        }
    }
    Ok(())
}

fn wait_until(done: impl Fn() -> Result<bool, CgroupError>) -> Result<(), CgroupError> {
    let until = Instant::now() + FREEZE_TIMEOUT;
    loop {
        if done()? {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(CgroupError::FreezeTimeout {
                seconds: FREEZE_TIMEOUT.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
