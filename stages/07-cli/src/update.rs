//! `update`: a container's limits and restart policy, changed while it runs.
//!
//! A limit is a number in one of the container's cgroup files (stage 03), so a running
//! container gets a new one by writing the file again: stage 03's [`cgroups::update_at`]. The
//! record keeps the new values in the container's specification too, so that the next start
//! prepares the container with them, and the monitor reads the new restart policy when the
//! container next ends. See docker-update(1).

use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;
use namespaces::RootArgs;

use crate::container::Record;
use crate::lifecycle;
use crate::spec::RunArgs;

/// `update`'s flags: those of `run` that can change on a running container.
#[derive(Args, Debug, Clone)]
pub struct UpdateArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Memory limit (64m, 1g)
    #[arg(short = 'm', long, value_name = "BYTES", allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(
        long = "memory-swap",
        value_name = "BYTES",
        allow_negative_numbers = true
    )]
    pub memory_swap: Option<String>,
    /// Number of CPUs (1.5)
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "N")]
    pub cpu_shares: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited)
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,
    /// Block IO weight, 10 to 1000
    #[arg(long = "blkio-weight", value_name = "N")]
    pub blkio_weight: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl UpdateArgs {
    fn changes_limits(&self) -> bool {
        [
            &self.memory,
            &self.memory_swap,
            &self.cpus,
            &self.cpu_shares,
            &self.cpuset_cpus,
            &self.pids_limit,
            &self.blkio_weight,
        ]
        .iter()
        .any(|flag| flag.is_some())
    }

    // ANCHOR: merge
    /// The container's specification with these changes.
    fn merged(&self, spec: &RunArgs) -> anyhow::Result<RunArgs> {
        let mut spec = spec.clone();
        let cgroup = &mut spec.volumes.network.run.cgroup;
        let set = |to: &mut Option<String>, from: &Option<String>| {
            if from.is_some() {
                to.clone_from(from);
            }
        };
        set(&mut cgroup.memory, &self.memory);
        set(&mut cgroup.memory_swap, &self.memory_swap);
        set(&mut cgroup.cpus, &self.cpus);
        set(&mut cgroup.cpu_shares, &self.cpu_shares);
        set(&mut cgroup.cpuset_cpus, &self.cpuset_cpus);
        set(&mut cgroup.pids_limit, &self.pids_limit);
        set(&mut cgroup.blkio_weight, &self.blkio_weight);
        // A new memory limit without a new memory+swap one: no swap, as at `run`.
        if self.memory.is_some() && self.memory_swap.is_none() {
            cgroup.memory_swap = None;
        }
        if let Some(policy) = &self.restart {
            if spec.auto_remove() && policy != "no" {
                bail!(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container"
                );
            }
            spec.lifecycle.restart.clone_from(policy);
            spec.restart_policy()?;
        }
        Ok(spec)
    }
    // ANCHOR_END: merge
}

/// Runs `update`.
pub fn command(args: &UpdateArgs) -> anyhow::Result<i32> {
    if !args.changes_limits() && args.restart.is_none() {
        bail!("you must provide one or more flags when using this command");
    }
    let root = &args.root.root;
    let mut failed = false;
    for key in &args.containers {
        match update(root, args, key) {
            Ok(()) => println!("{key}"),
            Err(e) => {
                eprintln!("Error response from daemon: {}", chroot::cli::one_line(&e));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

// ANCHOR: update
/// Applies `args`' changes to the container `key` (also the API's `update`).
pub fn update(root: &Path, args: &UpdateArgs, key: &str) -> anyhow::Result<()> {
    let record: Record = lifecycle::find(root, key)?;
    let spec = args.merged(&record.spec)?;
    let limits = spec
        .volumes
        .network
        .run
        .cgroup
        .limits()
        .context("check the new limits")?;
    // The live cgroup first: a limit the kernel refuses leaves the record as it was.
    if record.state.is_running()
        && args.changes_limits()
        && let Some(path) = record.cgroup.as_deref()
    {
        cgroups::update_at(path, &limits)
            .with_context(|| format!("Cannot update container {}", record.id))?;
    }
    lifecycle::store(root)
        .lock()?
        .update::<RunArgs>(&record.id, |r| r.spec = spec.clone())?
        .with_context(|| format!("No such container: {key}"))?;
    crate::events::emit(root, "update", &record, &[]);
    Ok(())
}
// ANCHOR_END: update
