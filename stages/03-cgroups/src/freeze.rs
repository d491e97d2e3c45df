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

use std::path::PathBuf;
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
            let dir = crate::v1::join_hierarchy(host, &path, "freezer")?;
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
            let Some(hierarchy) = host.v1.iter().find(|h| h.has("freezer")) else {
                return Ok(());
            };
            let dir = hierarchy.mount_point.join(path.relative());
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
