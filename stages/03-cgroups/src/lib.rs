//! # Stage 03: cgroups
//!
//! Namespaces decide what a container can *see*; control groups decide how much it can *use*.
//! cgroups limit and control CPU, memory and I/O: the kernel counts every page, every
//! microsecond of CPU and every process against the group a process belongs to, and enforces
//! the group's limits (the OOM killer for memory, throttling for CPU, a refused `fork` for pids).
//! A cgroup is a directory in a special filesystem; limits are numbers written to its files.
//!
//! This crate gives each container a cgroup, on any of the three setups a Linux host can have
//! (cgroups(7)):
//!
//! - [`detect`]: which setup the host has: unified (v2), legacy (v1) or hybrid;
//! - [`Cgroup`], with [`V1Cgroup`] and [`V2Cgroup`] behind it: create, limit, join, measure and
//!   remove a container's cgroup, whichever the setup;
//! - [`CgroupArgs`] and [`Limits`]: Docker's flags (`--memory 64m`, `--cpus 1.5`,
//!   `--pids-limit 100`...), checked before anything is created;
//! - [`CgroupFeature`]: the hooks into stage 01's launch sequence;
//! - [`usage()`]: what a running container has used (`skiff stats`).
//!
//! ```no_run
//! use cgroups::{CgroupArgs, CgroupFeature};
//! use chroot::{ChangeRoot, Feature, Process, launch};
//!
//! let args = CgroupArgs {
//!     memory: Some("64m".into()),
//!     pids_limit: Some("100".into()),
//!     ..CgroupArgs::default()
//! };
//! let limits = args.limits()?; // bad input fails here, before anything exists
//! let mut features: Vec<Box<dyn Feature>> = vec![
//!     Box::new(ChangeRoot::new("/srv/rootfs")),
//!     Box::new(CgroupFeature::new("3f2a9c", limits)),
//! ];
//! let exit = launch::run(&Process::new(vec!["/bin/sh".into()]), &mut features)?;
//! for note in &exit.notes {
//!     eprintln!("{note}"); // "killed by the OOM killer: ..."
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod cgroup;
pub mod cli;
pub mod detect;
pub mod devices;
pub mod error;
pub mod feature;
pub mod files;
pub mod freeze;
pub mod join;
pub mod limits;
pub mod update;
pub mod usage;
pub mod v1;
pub mod v2;
pub mod view;

pub use cgroup::{
    Cgroup, CgroupPath, DEFAULT_PARENT, defer_parent_removal, open, parents_deferred,
    remove_deferred_parents,
};
pub use detect::{Host, Setup, V1Hierarchy};
pub use devices::{DeviceKind, DeviceRule};
pub use error::{CgroupError, LimitError};
pub use feature::CgroupFeature;
pub use join::JoinCgroup;
pub use limits::{CgroupArgs, CpuList, CpuQuota, Limits, PidsLimit, Swap};
pub use update::update_at;
pub use usage::Usage;
pub use v1::V1Cgroup;
pub use v2::V2Cgroup;

/// The usage of the running container `id`, whose cgroup is under the default parent
/// (`skiff`): memory now and at its peak, CPU time, processes. What `skiff stats` shows.
pub fn usage(id: &str) -> Result<Usage, CgroupError> {
    usage_under(DEFAULT_PARENT, id)
}

// ANCHOR: sweep
/// Stage 03's part of sweeping a container away (see [`namespaces::sweep`]): its cgroup, then
/// stage 02's part. Returns what could not be undone.
pub fn sweep(sweep: &namespaces::Sweep<'_>) -> Vec<String> {
    chroot::timeline::mark("sweep: cgroup");
    let mut left = Vec::new();
    if let Some(path) = sweep.cgroup
        && let Err(e) = remove_cgroup(path)
    {
        left.push(format!("remove cgroup {path}: {e}"));
    }
    left.extend(namespaces::sweep::sweep(sweep));
    left
}

/// Removes the cgroup `path` (`<parent>/<id>`, as a container's record keeps it) in every
/// hierarchy, killing what is left inside first; skiff's own empty parent goes too. Nothing
/// there is fine. What the feature's cleanup does, from the record alone.
pub fn remove_cgroup(path: &str) -> Result<(), CgroupError> {
    let (parent, id) = path.rsplit_once('/').unwrap_or(("", path));
    let host = Host::detect()?;
    open(host, CgroupPath::new(parent, id)?).remove()
}
// ANCHOR_END: sweep

/// How many processes of the cgroup `path` (`<parent>/<id>`) the OOM killer has killed;
/// `None` without a memory controller to ask. Read before a sweep removes the cgroup.
pub fn oom_kills_at(path: &str) -> Result<Option<u64>, CgroupError> {
    let (parent, id) = path.rsplit_once('/').unwrap_or(("", path));
    let host = Host::detect()?;
    open(host, CgroupPath::new(parent, id)?).oom_kills()
}

/// The usage of the cgroup `path` (`<parent>/<id>`, as a record keeps it).
pub fn usage_at(path: &str) -> Result<Usage, CgroupError> {
    let (parent, id) = path.rsplit_once('/').unwrap_or(("", path));
    usage_under(parent, id)
}

/// The processes of the cgroup `path` (`<parent>/<id>`): those of its `pids` hierarchy on v1
/// (which every container joins), of its directory on v2.
pub fn processes_at(path: &str) -> Result<Vec<i32>, CgroupError> {
    let (parent, id) = path.rsplit_once('/').unwrap_or(("", path));
    let relative = CgroupPath::new(parent, id)?.relative();
    let host = Host::detect()?;
    let dir = match host.setup {
        Setup::Unified => host.root.join(&relative),
        Setup::Legacy | Setup::Hybrid => match host.hierarchy("pids") {
            Some(h) => h.mount_point.join(&relative),
            None => return Ok(Vec::new()),
        },
    };
    files::pids(&dir)
}

/// Like [`usage()`], for a container started with `--cgroup-parent PARENT`.
pub fn usage_under(parent: &str, id: &str) -> Result<Usage, CgroupError> {
    let host = Host::detect()?;
    open(host, CgroupPath::new(parent, id)?).usage()
}

#[cfg(test)]
mod tests {
    #[test]
    fn lab_03_parses() {
        let path = labs::labs_dir().join("03-cgroups.toml");
        let lab = labs::Lab::load(&path, labs::STAGE_PLACEHOLDERS).unwrap();
        assert_eq!(lab.stage, 3);
        assert_eq!(lab.requires, ["01-chroot", "02-namespaces"]);
        assert!(lab.checks.iter().any(|c| c.isolation));
        assert!(lab.checks.iter().any(|c| c.last));
    }
}
