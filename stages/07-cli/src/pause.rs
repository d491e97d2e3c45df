//! `pause` and `unpause`: a container's processes stopped all at once, and started again.
//!
//! The freezer (stage 03's [`cgroups::freeze`]) stops every process of the container's cgroup
//! where it stands: nothing runs, nothing sees a signal, and the processes cannot tell. The
//! record says `paused`; `ps` shows `Up 3 minutes (Paused)`. A paused container is thawed before
//! `stop`, `kill` or `rm -f` signal it: a frozen process does not die until it runs again.
//! See docker-pause(1).

use std::path::Path;

use anyhow::{Context, bail};
use namespaces::record::Status;

use crate::container::Record;
use crate::lifecycle;

// ANCHOR: pause
/// `pause`: freezes a running container.
pub fn pause(root: &Path, record: &Record) -> anyhow::Result<()> {
    match record.state.status {
        Status::Running => {}
        Status::Paused => bail!("Container {} is already paused", record.id),
        _ => bail!("Container {} is not running", record.id),
    }
    let path = record
        .cgroup
        .as_deref()
        .context("the container has no cgroup to freeze")?;
    cgroups::freeze::freeze(path).with_context(|| format!("pause container {}", record.name))?;
    set(root, &record.id, Status::Paused)?;
    crate::events::emit(root, "pause", record, &[]);
    Ok(())
}
// ANCHOR_END: pause

/// `unpause`: thaws a paused container.
pub fn unpause(root: &Path, record: &Record) -> anyhow::Result<()> {
    if record.state.status != Status::Paused {
        bail!("Container {} is not paused", record.id);
    }
    thaw(record)?;
    set(root, &record.id, Status::Running)?;
    crate::events::emit(root, "unpause", record, &[]);
    Ok(())
}

/// Thaws the container's processes, if they are frozen.
pub fn thaw(record: &Record) -> anyhow::Result<()> {
    if let Some(path) = record.cgroup.as_deref() {
        cgroups::freeze::thaw(path)
            .with_context(|| format!("unpause container {}", record.name))?;
    }
    Ok(())
}

fn set(root: &Path, id: &str, status: Status) -> anyhow::Result<()> {
    lifecycle::store(root)
        .lock()?
        .update::<crate::spec::RunArgs>(id, |r| {
            // The monitor may have recorded the end meanwhile: that wins.
            if matches!(r.state.status, Status::Running | Status::Paused) {
                r.state.status = status;
            }
        })?;
    Ok(())
}
