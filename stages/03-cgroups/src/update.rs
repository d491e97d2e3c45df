//! Changing a running container's limits: what `update` does.
//!
//! A limit is a number in a file, so changing it live is writing the file again: the kernel
//! applies the new memory limit at once (reclaiming, or failing with `EBUSY` when the container
//! uses more than the new limit and nothing can be reclaimed), the new CPU quota from the next
//! period, the new process limit to the next fork. Two things need care on cgroup v1. A
//! container joins only the hierarchies its limits need at its start (see [`crate::v1::narrow`]),
//! so `--cpus` for a container started without one first brings it into the `cpu` hierarchy,
//! every process of it. And memory plus swap may never be below memory, in any order of writes:
//! raising memory above the old memory+swap limit would fail, so that one is lifted first.
//! See the kernel's `cgroup-v1/memory.rst`, `cgroup-v2.rst` and docker-update(1).

use crate::cgroup::{CgroupPath, open};
use crate::detect::{Host, Setup};
use crate::error::CgroupError;
use crate::files;
use crate::limits::Limits;

// ANCHOR: update
/// Sets `limits` on the running container's cgroup `path` (`<parent>/<id>`).
pub fn update_at(path: &str, limits: &Limits) -> Result<(), CgroupError> {
    let (parent, id) = path.rsplit_once('/').unwrap_or(("", path));
    let path = CgroupPath::new(parent, id)?;
    let host = Host::detect()?;
    if host.setup != Setup::Unified {
        for controller in limits.controllers("blkio") {
            crate::v1::join_hierarchy(host, &path, controller)?;
        }
        if limits.memory.is_some()
            && let Some(memory) = host.v1.iter().find(|h| h.has("memory"))
        {
            let memsw = memory
                .mount_point
                .join(path.relative())
                .join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                files::write(&memsw, "-1")?;
            }
        }
    }
    open(host, path).apply(limits)
}
// ANCHOR_END: update
