//! Joining a running container's cgroup: where `exec`'s process is counted and limited.
//!
//! A process `exec` adds to a container must share its limits: otherwise `exec` would be a way
//! around `--memory` and `--pids-limit`, and `stats`, `top` and `pause` would not see it. So it
//! joins the container's cgroup before it runs anything. On cgroup v2 it is born there: clone3's
//! `CLONE_INTO_CGROUP` takes a descriptor of the cgroup's directory, and the child never runs a
//! moment outside it. On v1 there is no such flag: the child moves itself, first thing, by
//! writing `0` to `tasks` in each hierarchy where the container has a directory (the same
//! cheap self-join as a new container's, see [`crate::feature`]). See clone(2), cgroups(7).

use std::fs::File;
use std::os::fd::AsRawFd;

use chroot::plan::cstr;
use chroot::{Feature, FeatureError, Plan, Slot, Step};

use crate::cgroup::CgroupPath;
use crate::detect::{Host, Setup};

// ANCHOR: join
/// The cgroup of a running container, joined by a new process.
pub struct JoinCgroup {
    path: CgroupPath,
    /// The v2 directory, held open until the clone.
    dir: Option<File>,
}

impl JoinCgroup {
    /// The container's cgroup `path` (`<parent>/<id>`, as its record keeps it).
    pub fn new(path: &str) -> Result<JoinCgroup, crate::CgroupError> {
        let (parent, id) = path.rsplit_once('/').unwrap_or(("", path));
        Ok(JoinCgroup {
            path: CgroupPath::new(parent, id)?,
            dir: None,
        })
    }
}

impl Feature for JoinCgroup {
    fn name(&self) -> &'static str {
        "join the container's cgroup"
    }

    fn slot(&self) -> Slot {
        Slot::Cgroup
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let host =
            Host::detect().map_err(|err| FeatureError::with("detect the host's cgroups", err))?;
        let relative = self.path.relative();
        if host.setup == Setup::Unified {
            let dir = host.root.join(&relative);
            let file = File::open(&dir)
                .map_err(|err| FeatureError::with(format!("open {}", dir.display()), err))?;
            plan.cgroup_fd = Some(file.as_raw_fd());
            self.dir = Some(file);
            return Ok(());
        }
        // Every hierarchy where the container has a directory (the freezer's only once it was
        // paused); before the namespaces are entered, while the host's paths are in reach.
        let mut steps = Vec::new();
        for hierarchy in &host.v1 {
            let dir = hierarchy.mount_point.join(&relative);
            if dir.is_dir() {
                let path = cstr(dir.join("tasks"))
                    .map_err(|err| FeatureError::with("plan the cgroup join", err))?;
                steps.push(Step::WriteFile {
                    path,
                    data: b"0".to_vec(),
                });
            }
        }
        if steps.is_empty() {
            return Err(FeatureError::msg(format!(
                "the container's cgroup {} is gone",
                relative.display()
            )));
        }
        plan.enter.splice(0..0, steps);
        Ok(())
    }

    fn started(&mut self, _child: &chroot::Started) -> Result<(), FeatureError> {
        self.dir = None;
        Ok(())
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        self.dir = None;
        Ok(())
    }
}
// ANCHOR_END: join
