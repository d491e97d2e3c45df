//! The cgroup feature: how stage 03 plugs into the launch sequence of stage 01.
//!
//! | hook       | where           | what                                                        |
//! |------------|-----------------|-------------------------------------------------------------|
//! | `prepare`  | parent          | plan the child's join and its `/sys/fs/cgroup`; on v2, or in a user namespace, create `skiff/ID` in every controller, write the limits, deny devices but Docker's list |
//! | `started`  | parent          | on v1: create the cgroup now, while the child mounts, and tell it to join; on v2 without `CLONE_INTO_CGROUP`: write the child's pid to `cgroup.procs` |
//! | `exited`   | parent          | read the OOM counter (and usage with `--stats`): notes       |
//! | `cleanup`  | parent          | kill what is left inside, remove the cgroup (and an empty `skiff/`) |
//!
//! The child is born outside the cgroup. On v2 the clone itself puts it in (`CLONE_INTO_CGROUP`,
//! see `join`); on v1 it moves itself, by writing `0` to each hierarchy's `tasks`, before it
//! makes its cgroup namespace and long before it execs. See cgroups(7).

use std::os::fd::AsRawFd;

use chroot::plan::cstr;
use chroot::{Exit, Feature, FeatureError, Plan, Started, Step};

use crate::cgroup::{self, Cgroup, CgroupPath, DEFAULT_PARENT};
use crate::detect::Host;
use crate::devices::DeviceRule;
use crate::error::LimitError;
use crate::limits::{CgroupArgs, Limits, Swap, human_bytes};
use crate::view;

// ANCHOR: feature
/// A cgroup with limits for one container.
pub struct CgroupFeature {
    id: String,
    limits: Limits,
    /// The parent cgroup below each controller's root: `skiff`, or `--cgroup-parent`.
    pub parent: String,
    /// Give the container a read-only `/sys/fs/cgroup` of its own. Needs a mount namespace (it
    /// is skipped without one) and a `/sys/fs/cgroup` directory in the rootfs: turn it off when
    /// the rootfs has no `/sys` mounted.
    pub mount_cgroupfs: bool,
    /// Note the usage when the command ends (`--stats`).
    pub report_usage: bool,
    /// The devices the container may use (see [`crate::devices`]): Docker's default list
    /// unless `--device` or `--privileged` change it. `None` leaves devices alone.
    pub devices: Option<Vec<DeviceRule>>,
    /// The host's setup; detected in `prepare` unless given (tests give a fake one).
    host: Option<Host>,
    /// The cgroup, once `prepare` started making it.
    cgroup: Option<Box<dyn Cgroup>>,
    /// The child moves itself into the cgroup (v1), so `started` need not move it.
    joins_itself: bool,
    /// The pipe on which `started` tells the child that its cgroup is made (see `prepare`).
    ready: Option<Ready>,
    /// Another process may have made the cgroup already (see `ahead`).
    made_ahead: bool,
}

/// A pipe from the engine to the child: one byte when the cgroup is ready to be joined.
struct Ready {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
}

impl Ready {
    fn new() -> Result<Ready, FeatureError> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|err| FeatureError::with("make a pipe to the child", err))?;
        Ok(Ready { read, write })
    }

    /// Tells the child to go on (it waits in `Step::WaitForParent`), and closes the pipe.
    fn tell(self) -> Result<(), FeatureError> {
        nix::unistd::write(&self.write, b"c")
            .map(drop)
            .map_err(|err| FeatureError::with("tell the child its cgroup is ready", err))
    }
}

impl Feature for CgroupFeature {
    fn name(&self) -> &'static str {
        "cgroup"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Cgroup
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let path = CgroupPath::new(&self.parent, &self.id)
            .map_err(|err| FeatureError::with("name the container's cgroup", err))?;
        let host = host_for(self.host.as_ref(), &self.limits)
            .map_err(|err| FeatureError::with("detect the host's cgroups", err))?;
        let mut cgroup = cgroup::open(&host, path.clone());
        if self.made_ahead {
            cgroup.may_exist();
        }
        self.joins_itself = false;
        self.ready = None;
        // ANCHOR: after_clone
        // The child joins by itself when that is cheaper (v1, see `self_join`). Its cgroup then
        // need not exist before the clone, only before the join: the engine makes it in
        // `started`, while the child mounts its /proc, /sys and /dev, and says so on a pipe of
        // its own; the child waits for that after its mounts and joins first thing after,
        // before its cgroup namespace is made and long before it execs. (In a user namespace,
        // new or joined, the cgroup is made first, and the child joins before anything else:
        // once in that namespace, it may no longer write the host's cgroup files.)
        let join = cgroup.self_join();
        self.cgroup = Some(cgroup);
        match join {
            Some(writes) if !plan.user_namespace && !plan.joins_user_namespace => {
                let ready = Ready::new()?;
                let mut steps = vec![Step::WaitForParent(ready.read.as_raw_fd())];
                steps.extend(join_steps(writes)?);
                plan.before_root.splice(0..0, steps);
                self.ready = Some(ready);
                self.joins_itself = true;
            }
            Some(writes) => {
                self.make()?;
                // First of all, before the steps that enter a joined user namespace.
                plan.early.splice(0..0, join_steps(writes)?);
                self.joins_itself = true;
            }
            None => {
                self.make()?;
                // `started` moves the child in; its cgroup namespace must wait for that.
                plan.needs_started = true;
            }
        }
        // ANCHOR_END: after_clone
        if self.mount_cgroupfs && view::has_mount_namespace(plan) {
            let steps = view::steps(&host, &path, plan)
                .map_err(|err| FeatureError::with("plan the container's /sys/fs/cgroup", err))?;
            plan.before_root.extend(steps);
        }
        Ok(())
    }

    fn started(&mut self, child: &Started) -> Result<(), FeatureError> {
        if let Some(ready) = self.ready.take() {
            self.make()?;
            return ready.tell();
        }
        let Some(cgroup) = &self.cgroup else {
            return Ok(());
        };
        if self.joins_itself {
            return Ok(());
        }
        cgroup.add(child.pid).map_err(|err| {
            FeatureError::with(format!("move process {} into its cgroup", child.pid), err)
        })
    }

    fn exited(&mut self, exit: &mut Exit) {
        let Some(cgroup) = &self.cgroup else {
            return;
        };
        if let Ok(Some(kills)) = cgroup.oom_kills() {
            exit.oom_killed |= kills > 0;
            exit.notes.extend(oom_note(kills, exit, &self.limits));
        }
        if self.report_usage {
            exit.notes.push(match cgroup.usage() {
                Ok(usage) => format!("usage: {}", usage.summary()),
                Err(err) => format!("usage: unavailable: {err}"),
            });
        }
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        let Some(mut cgroup) = self.cgroup.take() else {
            return Ok(());
        };
        cgroup
            .remove()
            .map_err(|err| FeatureError::with("remove the container's cgroup", err))
    }

    // ANCHOR: ahead
    /// Making a v1 cgroup is dear: a directory in every hierarchy, each new control file's
    /// first open (hundreds of microseconds here, where the kernel makes its inode), the limits
    /// and the device rules. Another process makes it all ahead (stage 07's double fork), opens
    /// the `tasks` files the child will write and reads the OOM counter the end reads, so that
    /// `make` finds every directory made and every file opened before, and only writes the same
    /// values again: done, half done or not done, the work comes to the same cgroup. Errors are
    /// left for `make` to meet and report. Not on v2, where the device rules are a program
    /// attached to the directory, which two processes would attach twice.
    fn ahead(&mut self) -> Option<chroot::AheadJob> {
        let path = CgroupPath::new(&self.parent, &self.id).ok()?;
        let (host, limits, devices) =
            (self.host.clone(), self.limits.clone(), self.devices.clone());
        self.made_ahead = true;
        Some(Box::new(move || {
            let Ok(host) = host_for(host.as_ref(), &limits) else {
                return;
            };
            if matches!(host.setup, crate::detect::Setup::Unified) {
                return;
            }
            let mut cgroup = cgroup::open(&host, path);
            cgroup.may_exist();
            if make_with(cgroup.as_mut(), &limits, devices.as_deref(), "").is_err() {
                return;
            }
            for (file, _) in cgroup.self_join().into_iter().flatten() {
                drop(std::fs::File::open(file));
            }
            // And the OOM counter the monitor reads when the container ends.
            let _ = cgroup.oom_kills();
        }))
    }
    // ANCHOR_END: ahead
}
// ANCHOR_END: feature

impl CgroupFeature {
    /// Makes the cgroup `prepare` opened, with the limits, and denies every device but the
    /// allowed ones. What was made stays in `self.cgroup` even on failure: cleanup removes it.
    fn make(&mut self) -> Result<(), FeatureError> {
        let name = self.path();
        let Some(cgroup) = self.cgroup.as_mut() else {
            return Ok(());
        };
        make_with(
            cgroup.as_mut(),
            &self.limits,
            self.devices.as_deref(),
            &name,
        )
    }

    /// A cgroup named `id` under `skiff`, with `limits`.
    pub fn new(id: &str, limits: Limits) -> Self {
        CgroupFeature {
            id: id.to_string(),
            limits,
            parent: DEFAULT_PARENT.to_string(),
            mount_cgroupfs: true,
            report_usage: false,
            devices: Some(crate::devices::docker_default()),
            host: None,
            cgroup: None,
            joins_itself: false,
            ready: None,
            made_ahead: false,
        }
    }

    /// Uses `host` instead of detecting the host's setup.
    pub fn with_host(mut self, host: Host) -> Self {
        self.host = Some(host);
        self
    }

    /// Where the cgroup is below each hierarchy's root, `<parent>/<id>`: what a container's
    /// record keeps, for a sweep and `stats`.
    pub fn path(&self) -> String {
        CgroupPath::new(&self.parent, &self.id)
            .map(|p| p.relative().display().to_string())
            .unwrap_or_else(|_| format!("{}/{}", self.parent, self.id))
    }

    /// The limits it applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The container's cgroup, from `prepare` until `cleanup` (for usage while it runs).
    pub fn cgroup(&self) -> Option<&dyn Cgroup> {
        self.cgroup.as_deref()
    }
}

impl CgroupArgs {
    /// The feature these flags ask for, for container `id`: limits, `--cgroup-parent`, `--stats`.
    pub fn feature(&self, id: &str) -> Result<CgroupFeature, LimitError> {
        let mut feature = CgroupFeature::new(id, self.limits()?);
        if let Some(parent) = &self.cgroup_parent {
            CgroupPath::new(parent, id)
                .map_err(|err| LimitError::new("--cgroup-parent", parent, err.to_string()))?;
            feature.parent = parent.clone();
        }
        feature.report_usage = self.stats;
        Ok(feature)
    }
}

/// The host's cgroups as a container with `limits` sees them: `given` (tests give a fake host)
/// or detected, narrowed to the v1 hierarchies it joins.
fn host_for(given: Option<&Host>, limits: &Limits) -> Result<Host, crate::error::CgroupError> {
    let host = match given {
        Some(host) => host,
        None => Host::detect()?,
    };
    Ok(crate::v1::narrow(host, limits))
}

/// Creates `cgroup` (named `name` in errors) with `limits`, and denies every device but the
/// `devices` allowed: what the feature's `make` does, and its job ahead.
fn make_with(
    cgroup: &mut dyn Cgroup,
    limits: &Limits,
    devices: Option<&[DeviceRule]>,
    name: &str,
) -> Result<(), FeatureError> {
    cgroup
        .create(limits)
        .map_err(|err| FeatureError::with(format!("set up cgroup {name}"), err))?;
    // ANCHOR: restrict_devices
    // Before the child may run: it joins the cgroup before it execs, and its rules with it.
    // `devices-cgroup` is a defence the labs prove: a debug build can be told to skip it.
    if let Some(rules) = devices
        && !chroot::defence::disabled("devices-cgroup")
    {
        cgroup.restrict_devices(rules).map_err(|err| {
            FeatureError::with(format!("restrict the devices of cgroup {name}"), err)
        })?;
    }
    // ANCHOR_END: restrict_devices
    Ok(())
}

/// The child's steps that move it into its cgroup: one write per file.
fn join_steps(writes: Vec<(std::path::PathBuf, &'static [u8])>) -> Result<Vec<Step>, FeatureError> {
    writes
        .into_iter()
        .map(|(path, data)| {
            Ok(Step::WriteFile {
                path: cstr(&path)?,
                data: data.to_vec(),
            })
        })
        .collect::<Result<Vec<_>, chroot::LaunchError>>()
        .map_err(|err| FeatureError::with("plan the cgroup join", err))
}

// ANCHOR: oom
/// What to tell the user when the memory controller counted OOM kills. The counter is the
/// kernel's own (`oom_kill` in v1's `memory.oom_control`, v2's `memory.events`), so this is
/// not a guess from exit code 137, which any `kill -9` also gives.
pub fn oom_note(kills: u64, exit: &Exit, limits: &Limits) -> Option<String> {
    if kills == 0 {
        return None;
    }
    let reached = match (limits.memory, limits.memory_swap) {
        (Some(memory), Some(Swap::Total(total))) if total > memory => format!(
            "the container reached its memory+swap limit of {} (--memory-swap)",
            human_bytes(total)
        ),
        (Some(memory), _) => format!(
            "the container reached its memory limit of {} (--memory)",
            human_bytes(memory)
        ),
        (None, _) => "the host ran out of memory".to_string(),
    };
    // With an init in the container (stage 02), its exit status reports the kill as 137.
    let killed = exit.signal == Some(libc::SIGKILL) || exit.status == Some(128 + libc::SIGKILL);
    Some(if killed {
        format!("killed by the OOM killer: {reached}")
    } else {
        let processes = if kills == 1 { "process" } else { "processes" };
        format!("the OOM killer killed {kills} {processes} of the container: {reached}")
    })
}
// ANCHOR_END: oom

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(status: Option<i32>, signal: Option<i32>) -> Exit {
        Exit {
            status,
            signal,
            notes: Vec::new(),
            oom_killed: false,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn oom_notes_name_the_limit() {
        let limits = Limits {
            memory: Some(32 << 20),
            ..Limits::default()
        };
        let killed = exit(None, Some(9));
        assert_eq!(oom_note(0, &killed, &limits), None);
        assert_eq!(
            oom_note(1, &killed, &limits).unwrap(),
            "killed by the OOM killer: the container reached its memory limit of 32 MiB (--memory)"
        );
        assert_eq!(
            oom_note(1, &exit(Some(137), None), &limits).unwrap(),
            "killed by the OOM killer: the container reached its memory limit of 32 MiB (--memory)"
        );
        assert_eq!(
            oom_note(2, &exit(Some(0), None), &limits).unwrap(),
            "the OOM killer killed 2 processes of the container: the container reached its \
             memory limit of 32 MiB (--memory)"
        );
        let swap = Limits {
            memory_swap: Some(Swap::Total(64 << 20)),
            ..limits
        };
        assert!(
            oom_note(1, &killed, &swap)
                .unwrap()
                .ends_with("memory+swap limit of 64 MiB (--memory-swap)")
        );
        assert_eq!(
            oom_note(1, &killed, &Limits::default()).unwrap(),
            "killed by the OOM killer: the host ran out of memory"
        );
    }

    #[test]
    fn args_make_a_feature_with_parent_and_stats() {
        let args = CgroupArgs {
            memory: Some("64m".into()),
            cgroup_parent: Some("ci/jobs".into()),
            stats: true,
            ..CgroupArgs::default()
        };
        let feature = args.feature("ab").unwrap();
        assert_eq!(feature.parent, "ci/jobs");
        assert!(feature.report_usage);
        assert_eq!(feature.limits().memory, Some(64 << 20));
        let bad = CgroupArgs {
            cgroup_parent: Some("../escape".into()),
            ..CgroupArgs::default()
        };
        let err = bad.feature("ab").err().unwrap();
        assert!(
            err.to_string().starts_with("--cgroup-parent \"../escape\""),
            "{err}"
        );
    }

    #[test]
    fn a_bad_id_fails_in_prepare_before_anything_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let mut feature =
            CgroupFeature::new("../x", Limits::default()).with_host(Host::v2(dir.path()));
        let err = feature.prepare(&mut Plan::default()).unwrap_err();
        assert!(err.to_string().contains("invalid container id"), "{err}");
        assert!(feature.cgroup().is_none());
        feature.cleanup().unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// A v1 host with only a memory hierarchy, in a temporary directory, and the feature for
    /// container `id` on it (no device rules, no `/sys/fs/cgroup` view: plain directories).
    fn fake_v1_memory(id: &str) -> (tempfile::TempDir, CgroupFeature) {
        let dir = tempfile::tempdir().unwrap();
        let memory = dir.path().join("memory");
        std::fs::create_dir(&memory).unwrap();
        let hierarchy = crate::detect::V1Hierarchy::new(memory, &["memory"]);
        let host = Host::v1(dir.path(), vec![hierarchy]);
        let mut feature = CgroupFeature::new(id, Limits::default()).with_host(host);
        feature.devices = None;
        feature.mount_cgroupfs = false;
        (dir, feature)
    }

    #[test]
    fn on_v1_the_cgroup_is_made_after_the_clone_and_the_child_told_to_join() {
        let (dir, mut feature) = fake_v1_memory("ab12");
        let memory = dir.path().join("memory");
        let mut plan = Plan::default();
        feature.prepare(&mut plan).unwrap();
        let made = memory.join("skiff/ab12");
        assert!(!made.exists(), "made before the clone");
        // The child waits for the engine, then writes to the cgroup's tasks: after its mounts.
        assert!(plan.early.is_empty(), "{:?}", plan.early);
        let Some(Step::WaitForParent(fd)) = plan.before_root.first() else {
            panic!("the child does not wait: {:?}", plan.before_root);
        };
        let Some(Step::WriteFile { path, .. }) = plan.before_root.get(1) else {
            panic!("no join after the wait: {:?}", plan.before_root);
        };
        assert_eq!(path.to_str().unwrap(), made.join("tasks").to_str().unwrap());
        assert!(!plan.needs_started, "the go-ahead may stay at exec");
        // SAFETY: `fd` is the pipe's read end, owned by the feature until `started`; the copy
        // is ours and closed when `read` drops.
        let read = unsafe {
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(libc::dup(*fd))
        };
        let started = Started {
            pid: nix::unistd::Pid::this(),
        };
        feature.started(&started).unwrap();
        assert!(made.is_dir(), "not made in started");
        let mut byte = [0u8; 1];
        assert_eq!(
            nix::unistd::read(&read, &mut byte),
            Ok(1),
            "the child was not told"
        );
        feature.cleanup().unwrap();
        assert!(!made.exists());
    }

    #[test]
    fn a_child_that_joins_a_user_namespace_joins_its_cgroup_first() {
        let (dir, mut feature) = fake_v1_memory("ab34");
        let memory = dir.path().join("memory");
        // A setns into another user namespace, as stage 08 plans it.
        let mut plan = Plan {
            joins_user_namespace: true,
            early: vec![Step::Unshare(0)],
            ..Plan::default()
        };
        feature.prepare(&mut plan).unwrap();
        let made = memory.join("skiff/ab34");
        assert!(made.is_dir(), "not made before the clone");
        let Some(Step::WriteFile { path, .. }) = plan.early.first() else {
            panic!("the join is not the first step: {:?}", plan.early);
        };
        assert_eq!(path.to_str().unwrap(), made.join("tasks").to_str().unwrap());
        assert!(
            !plan
                .before_root
                .iter()
                .any(|s| matches!(s, Step::WaitForParent(_)))
        );
        feature.cleanup().unwrap();
        assert!(!made.exists());
    }

    #[test]
    fn a_cgroup_made_ahead_by_another_process_is_taken_over() {
        let (dir, mut feature) = fake_v1_memory("ab56");
        let made = dir.path().join("memory/skiff/ab56");
        let job = feature.ahead().expect("no job for a v1 cgroup");
        assert!(!made.exists(), "made before the job ran");
        job();
        assert!(made.is_dir(), "the job made nothing");
        let mut plan = Plan::default();
        feature.prepare(&mut plan).unwrap();
        let started = Started {
            pid: nix::unistd::Pid::this(),
        };
        feature.started(&started).unwrap();
        feature.cleanup().unwrap();
        assert!(!made.exists());

        // Without the job, a cgroup of the same name is someone else's: refused.
        let (dir, mut other) = fake_v1_memory("ab78");
        let theirs = dir.path().join("memory/skiff/ab78");
        std::fs::create_dir_all(&theirs).unwrap();
        other.prepare(&mut Plan::default()).unwrap();
        let err = other.started(&started).unwrap_err();
        assert!(format!("{err:#}").contains("exists already"), "{err:#}");
    }
}
