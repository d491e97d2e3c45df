//! How your pieces plug into stage 01's launch: they write a plan of their own, and one
//! [`Feature`] adds it to the container's. Read it; you should not need to change it until
//! every piece is written (then the fallbacks can go).
//!
//! A piece still `todo!()` is skipped where stage 01's behaviour can stand in for it (the
//! earlier lab keeps passing), and refused where the run asked for it (`--hostname`): see
//! `starter.rs`. Two rules keep an unfinished engine from touching the host: pivot_root and
//! the mounts are used only in a mount namespace of the container's own, the hostname only in
//! a UTS namespace of its own.

use std::path::{Path, PathBuf};

use anyhow::bail;
use chroot::{Feature, FeatureError, Plan, Prepared, Slot};

use crate::namespaces;
use crate::starter::{skipped, written};

/// Adds stage 02's pieces that are written to `prepared` (stage 01's container).
pub fn add(prepared: &mut Prepared, rootfs: &Path, hostname: Option<&str>) -> anyhow::Result<()> {
    let mut plan = Plan {
        rootfs: rootfs.to_path_buf(),
        ..Plan::default()
    };
    match written(|| namespaces::namespaces(&mut plan)) {
        Ok(result) => result?,
        Err(missing) if hostname.is_some() => return Err(missing.into()),
        Err(missing) => {
            skipped(&missing, "running without namespaces, as stage 01 did");
            return Ok(());
        }
    }
    let own = |flag: libc::c_int| plan.clone_flags & flag as u64 != 0;
    let (mount_ns, uts_ns) = (own(libc::CLONE_NEWNS), own(libc::CLONE_NEWUTS));
    let pivoted = match written(|| namespaces::pivot_root(&mut plan)) {
        Ok(result) => {
            result?;
            if !mount_ns {
                bail!(
                    "pivot_root() needs a mount namespace of the container's own (CLONE_NEWNS in namespaces()): without one it would move the host's root"
                );
            }
            true
        }
        Err(missing) => {
            skipped(&missing, "changing root with stage 01's chroot");
            false
        }
    };
    if pivoted {
        match written(|| namespaces::mount_kernel_views(&mut plan)) {
            Ok(result) => result?,
            Err(missing) => skipped(&missing, "the root keeps the /proc, /sys and /dev it has"),
        }
    }
    if let Some(name) = hostname {
        if !uts_ns {
            bail!(
                "--hostname {name:?} needs a UTS namespace of the container's own (CLONE_NEWUTS in namespaces()): without one it would rename the host"
            );
        }
        written(|| namespaces::set_hostname(&mut plan, name))??;
    }
    let feature = Stage02 {
        rootfs: rootfs.to_path_buf(),
        pivoted,
        plan,
    };
    if pivoted {
        prepared.replace(feature);
    } else {
        prepared.add(feature);
    }
    Ok(())
}

/// Your plan, added to the container's. With pivot_root written it takes stage 01's slot (the
/// root change); without, it sits before it and stage 01's chroot stays.
struct Stage02 {
    rootfs: PathBuf,
    pivoted: bool,
    plan: Plan,
}

impl Feature for Stage02 {
    fn name(&self) -> &'static str {
        "namespaces"
    }

    fn slot(&self) -> Slot {
        if self.pivoted {
            Slot::Root
        } else {
            Slot::Namespaces
        }
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        if self.pivoted {
            chroot::root::check_rootfs(&self.rootfs)
                .map_err(|e| FeatureError::msg(e.to_string()))?;
            plan.rootfs = self.rootfs.clone();
        }
        let mine = std::mem::take(&mut self.plan);
        plan.clone_flags |= mine.clone_flags;
        plan.root_setup().extend(mine.early);
        plan.before_root.extend(mine.before_root);
        plan.change_root.extend(mine.change_root);
        plan.after_root.extend(mine.after_root);
        Ok(())
    }
}
