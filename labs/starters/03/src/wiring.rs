//! How your pieces plug into the launch: the limit flags, and one [`Feature`] in the cgroup's
//! slot whose hooks call your [`Cgroup`]. Read it; you should not need to change it until every
//! piece is written.
//!
//! While no limit is asked for, the container is stage 02's and has no cgroup, so lab 02 keeps
//! passing whatever you have written. A run that asks for a limit reaches your pieces, and one
//! still `todo!()` stops it before the container starts, with the piece's name (see
//! `starter.rs`). When all four are written, give every container a cgroup (lab 03 wants one
//! even without limits): make [`LimitFlags::asked`] return true.

use anyhow::Context;
use chroot::launch::Started;
use chroot::{Feature, FeatureError, Plan, Slot};
use clap::Args;
use namespaces::Container;

use crate::cgroup::{self, Cgroup, Limits};
use crate::hooks::in_hook;
use crate::starter::written;

/// Stage 03's flags: the limits.
#[derive(Debug, Args)]
pub struct LimitFlags {
    /// Memory limit, such as 64m or 1g (at least 6m)
    #[arg(short = 'm', long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// How many processes the container may have at most
    #[arg(long, value_name = "N")]
    pub pids_limit: Option<u64>,

    /// How many CPUs' worth of time the container may use, such as 0.5
    #[arg(long, value_name = "N")]
    pub cpus: Option<f64>,
}

impl LimitFlags {
    /// Whether the run asks for anything of stage 03.
    pub fn asked(&self) -> bool {
        self.memory.is_some() || self.pids_limit.is_some() || self.cpus.is_some()
    }

    /// The limits, checked.
    fn limits(&self) -> anyhow::Result<Limits> {
        let memory = match &self.memory {
            Some(text) => Some(written(|| cgroup::parse_memory(text))??),
            None => None,
        };
        Ok(Limits {
            memory,
            pids: self.pids_limit,
            cpus: self.cpus,
        })
    }
}

/// Puts stage 02's `container` in a cgroup of its own, when the flags ask for one.
pub fn add(container: &mut Container, flags: &LimitFlags) -> anyhow::Result<()> {
    if !flags.asked() {
        return Ok(());
    }
    let limits = flags.limits()?;
    container.prepared.add(CgroupFeature {
        id: container.id.full().to_string(),
        limits,
        cgroup: None,
    });
    Ok(())
}

/// Your [`Cgroup`], at its fixed point of the launch sequence.
struct CgroupFeature {
    id: String,
    limits: Limits,
    cgroup: Option<Cgroup>,
}

impl Feature for CgroupFeature {
    fn name(&self) -> &'static str {
        "cgroup"
    }

    fn slot(&self) -> Slot {
        Slot::Cgroup
    }

    fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
        let (id, limits) = (&self.id, &self.limits);
        self.cgroup = Some(in_hook(|| {
            Cgroup::create(id, limits).context("create the cgroup")
        })?);
        Ok(())
    }

    fn started(&mut self, child: &Started) -> Result<(), FeatureError> {
        match &self.cgroup {
            Some(cgroup) => in_hook(|| cgroup.join(child.pid.as_raw())),
            None => Ok(()),
        }
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        match self.cgroup.take() {
            Some(cgroup) => in_hook(|| cgroup.remove()),
            None => Ok(()),
        }
    }
}
