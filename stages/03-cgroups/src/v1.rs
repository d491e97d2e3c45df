//! cgroup v1: one tree per hierarchy. A container's cgroup is a directory in each of them
//! (`memory/skiff/ID`, `cpu/skiff/ID`, `pids/skiff/ID`...), and its process is added to each.
//!
//! skiff joins the hierarchies it needs (see [`narrow`]): memory, pids and cpuacct always, for
//! limits, counting and usage, and cpu, cpuset or blkio when a limit asks. Each joined hierarchy
//! costs a directory, an attach and a mount in the container; the others would cost the same for
//! nothing. (Inside the container's cgroup namespace the others still show `/`: the namespace is
//! rooted where the process was when it was made.) Two v1
//! quirks: a new cpuset cgroup has empty `cpuset.cpus` and `cpuset.mems` and refuses tasks
//! until they are filled in; and `memory.memsw.limit_in_bytes` (memory plus swap) may never be
//! below `memory.limit_in_bytes`, so memory is written first. See the kernel's `cgroup-v1/`
//! documents (`cgroups.rst`, `memory.rst`, `cpusets.rst`, `pids.rst`, `blkio-controller.rst`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::Pid;

use crate::cgroup::{self, Cgroup, CgroupPath, Dirs};
use crate::detect::{Host, V1Hierarchy};
use crate::devices::DeviceRule;
use crate::error::CgroupError;
use crate::files;
use crate::limits::{Limits, PidsLimit, Swap};
use crate::usage::Usage;

/// A container's cgroup on a v1 (or hybrid) host.
pub struct V1Cgroup {
    /// The cgroup root, for messages about controllers that are not mounted.
    root: PathBuf,
    hierarchies: Vec<V1Hierarchy>,
    path: CgroupPath,
    pub(crate) dirs: Dirs,
}

impl V1Cgroup {
    /// The cgroup `path` in every v1 hierarchy of `host`.
    pub fn new(host: &Host, path: CgroupPath) -> Self {
        V1Cgroup {
            root: host.root.clone(),
            hierarchies: host.v1.clone(),
            path,
            dirs: Dirs::HOST,
        }
    }

    /// The container's directory in the hierarchy of `controller`, if one is mounted.
    pub fn dir_of(&self, controller: &str) -> Option<PathBuf> {
        self.hierarchies
            .iter()
            .find(|h| h.has(controller))
            .map(|h| h.mount_point.join(self.path.relative()))
    }

    /// Like [`V1Cgroup::dir_of`], an error naming the missing controller when there is none.
    fn need(&self, controller: &'static str) -> Result<PathBuf, CgroupError> {
        self.dir_of(controller)
            .ok_or_else(|| CgroupError::ControllerMissing {
                controller,
                expected: self.root.join(controller),
            })
    }
}

/// The controllers a container always joins: memory (limits, OOM counters, usage), pids
/// (counting, and finding every process to kill), cpuacct (CPU time for `--stats` and
/// `stats`) and devices (which device nodes may be opened, see [`crate::devices`]).
const ALWAYS: [&str; 4] = ["memory", "pids", "cpuacct", "devices"];

// ANCHOR: narrow
/// The host as a container with `limits` sees it: only the v1 hierarchies it joins.
pub fn narrow(host: &Host, limits: &Limits) -> Host {
    let wanted: Vec<&str> = ALWAYS
        .iter()
        .copied()
        .chain(limits.controllers("blkio"))
        .collect();
    let mut narrowed = host.clone();
    narrowed
        .v1
        .retain(|h| wanted.iter().any(|controller| h.has(controller)));
    narrowed
}
// ANCHOR_END: narrow

// ANCHOR: join_hierarchy
/// Brings a running container into one more v1 hierarchy, the one of `controller`: makes its
/// directory there (with skiff's parent), and moves every process of the container in, the
/// ones the `pids` hierarchy (which every container joins) holds. What `pause` needs of the
/// freezer and `update` of a controller the container did not need at its start. A process
/// forked meanwhile by one not yet moved would stay behind, so it goes round until nothing is
/// left to move. Returns the directory.
pub fn join_hierarchy(
    host: &Host,
    path: &CgroupPath,
    controller: &'static str,
) -> Result<PathBuf, CgroupError> {
    let hierarchy = host.v1.iter().find(|h| h.has(controller)).ok_or_else(|| {
        CgroupError::ControllerMissing {
            controller,
            expected: host.root.join(controller),
        }
    })?;
    let prepare: cgroup::Prepare<'_> = if hierarchy.has("cpuset") {
        &fill_cpuset
    } else {
        &|_: &Path, _: &Path| Ok(())
    };
    let mut dir = hierarchy.mount_point.join(path.relative());
    if !dir.is_dir() {
        dir = cgroup::make_dirs(&hierarchy.mount_point, path, Dirs::HOST, prepare)?;
    }
    let Some(pids) = host.v1.iter().find(|h| h.has("pids")) else {
        return Ok(dir);
    };
    let source = pids.mount_point.join(path.relative());
    for _ in 0..10 {
        let wanted = files::pids(&source)?;
        let there = files::pids(&dir)?;
        let missing: Vec<i32> = wanted.into_iter().filter(|p| !there.contains(p)).collect();
        if missing.is_empty() {
            break;
        }
        for pid in missing {
            // A process that exited meanwhile cannot be moved, and need not be.
            match files::write(&dir.join("cgroup.procs"), pid.to_string()) {
                Err(CgroupError::Write { source, .. })
                    if source.raw_os_error() == Some(libc::ESRCH) => {}
                other => other?,
            }
        }
    }
    Ok(dir)
}
// ANCHOR_END: join_hierarchy

// ANCHOR: cpuset
/// A new cpuset cgroup starts with no CPUs and no memory nodes, and takes no process until it
/// has both: copy them from the cgroup above (see `cpusets.rst`).
fn fill_cpuset(above: &Path, dir: &Path) -> Result<(), CgroupError> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        if files::read(&own)?.trim().is_empty() {
            let inherited = files::read(&above.join(file))?;
            files::write(&own, inherited.trim())?;
        }
    }
    Ok(())
}
// ANCHOR_END: cpuset

// ANCHOR: v1
impl Cgroup for V1Cgroup {
    fn paths(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| h.mount_point.join(self.path.relative()))
            .collect()
    }

    fn create(&mut self, limits: &Limits) -> Result<(), CgroupError> {
        for controller in limits.controllers("blkio") {
            self.need(controller)?;
        }
        for hierarchy in &self.hierarchies {
            let prepare: cgroup::Prepare<'_> = if hierarchy.has("cpuset") {
                &fill_cpuset
            } else {
                &|_: &Path, _: &Path| Ok(())
            };
            cgroup::make_dirs(&hierarchy.mount_point, &self.path, self.dirs, prepare)?;
        }
        self.apply(limits)
    }

    fn may_exist(&mut self) {
        self.dirs.leaf_may_exist = true;
    }

    fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        // ANCHOR: v1_memory
        // A defence the labs prove: a debug build can be told not to write the memory limit.
        let memory = if chroot::defence::disabled("memory-limit") {
            None
        } else {
            limits.memory
        };
        if let Some(memory) = memory {
            let dir = self.need("memory")?;
            files::write(&dir.join("memory.limit_in_bytes"), memory.to_string())?;
            // After the memory limit: memory+swap may never be below it.
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            match limits.memory_and_swap() {
                Some(_) if !memsw.exists() && limits.memory_swap.is_none() => {
                    // No swap accounting in this kernel: nothing to limit, and nothing asked.
                }
                Some(_) if !memsw.exists() => {
                    return Err(CgroupError::NoSwapAccounting { path: memsw });
                }
                Some(Swap::Total(total)) => files::write(&memsw, total.to_string())?,
                Some(Swap::Unlimited) => files::write(&memsw, "-1")?,
                None => {}
            }
        }
        // ANCHOR_END: v1_memory
        if let Some(quota) = limits.cpu_quota {
            let dir = self.need("cpu")?;
            files::write(&dir.join("cpu.cfs_period_us"), quota.period_us.to_string())?;
            files::write(&dir.join("cpu.cfs_quota_us"), quota.quota_us.to_string())?;
        }
        if let Some(shares) = limits.cpu_shares {
            files::write(&self.need("cpu")?.join("cpu.shares"), shares.to_string())?;
        }
        if let Some(cpus) = &limits.cpuset_cpus {
            files::write(&self.need("cpuset")?.join("cpuset.cpus"), cpus.to_string())?;
        }
        if let Some(pids) = limits.pids {
            let value = match pids {
                PidsLimit::Max(n) => n.to_string(),
                PidsLimit::Unlimited => "max".to_string(),
            };
            files::write(&self.need("pids")?.join("pids.max"), value)?;
        }
        if let Some(weight) = limits.blkio_weight {
            let dir = self.need("blkio")?;
            let file = files::first_existing(&dir, &["blkio.weight", "blkio.bfq.weight"]).ok_or(
                CgroupError::NoWeightFile {
                    path: dir,
                    files: "blkio.weight or blkio.bfq.weight",
                },
            )?;
            files::write(&file, weight.to_string())?;
        }
        Ok(())
    }

    fn restrict_devices(&self, rules: &[DeviceRule]) -> Result<(), CgroupError> {
        crate::devices::apply_v1(&self.need("devices")?, rules)
    }

    fn add(&self, pid: Pid) -> Result<(), CgroupError> {
        for dir in self.paths() {
            files::write(&dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    // ANCHOR: self_join
    /// Moving another process into a v1 cgroup takes a global lock whose writer waits for an
    /// RCU grace period: milliseconds, on every container start. A thread that moves *itself*
    /// by writing `0` to `tasks` skips that lock (the kernel's `cgroup_procs_write_start`), and
    /// the child is a single thread until it execs. So the child joins by itself.
    fn self_join(&self) -> Option<Vec<(PathBuf, &'static [u8])>> {
        Some(
            self.paths()
                .into_iter()
                .map(|dir| (dir.join("tasks"), &b"0"[..]))
                .collect(),
        )
    }
    // ANCHOR_END: self_join

    fn usage(&self) -> Result<Usage, CgroupError> {
        let read = |controller: &str, file: &str| match self.dir_of(controller) {
            Some(dir) => files::read_u64_if_exists(&dir.join(file)),
            None => Ok(None),
        };
        // Only with a blkio directory: the container joins that hierarchy for a weight only.
        let block = match self.dir_of("blkio").filter(|dir| dir.is_dir()) {
            Some(dir) => match files::read(&dir.join("blkio.throttle.io_service_bytes")) {
                Err(err) if err.is_not_found() => None,
                other => Some(crate::usage::v1_block_io(&other?)),
            },
            None => None,
        };
        Ok(Usage {
            memory_current: read("memory", "memory.usage_in_bytes")?,
            memory_peak: read("memory", "memory.max_usage_in_bytes")?,
            cpu: read("cpuacct", "cpuacct.usage")?.map(Duration::from_nanos),
            pids_current: read("pids", "pids.current")?,
            pids_peak: read("pids", "pids.peak")?,
            // No limit reads as the largest multiple of the page size.
            memory_limit: read("memory", "memory.limit_in_bytes")?.filter(|&l| l < 1 << 62),
            memory_inactive_file: match self.dir_of("memory") {
                Some(dir) => {
                    match files::read_keyed(&dir.join("memory.stat"), "total_inactive_file") {
                        Err(err) if err.is_not_found() => None,
                        other => other?,
                    }
                }
                None => None,
            },
            block_read: block.map(|(read, _)| read),
            block_write: block.map(|(_, write)| write),
        })
    }

    fn oom_kills(&self) -> Result<Option<u64>, CgroupError> {
        let Some(dir) = self.dir_of("memory") else {
            return Ok(None);
        };
        // `oom_kill N` in memory.oom_control (Linux 4.13+).
        let kills = files::read_keyed(&dir.join("memory.oom_control"), "oom_kill")?;
        Ok(Some(kills.unwrap_or(0)))
    }

    fn remove(&mut self) -> Result<(), CgroupError> {
        let mut first_error = None;
        for hierarchy in &self.hierarchies {
            let dir = hierarchy.mount_point.join(self.path.relative());
            if let Err(err) = cgroup::remove_dir(&dir, self.dirs) {
                first_error.get_or_insert(err);
            } else if self.path.owns_parent() {
                cgroup::remove_parent(&hierarchy.mount_point, &self.path.parent, self.dirs);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
// ANCHOR_END: v1

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{CpuList, CpuQuota};

    /// The control files of a fresh cgroup in each fake hierarchy: cpu and cpuacct apart, as on
    /// this machine; a new cpuset cgroup has empty cpus and mems, as the kernel makes it.
    const FILES: &[(&str, &[(&str, &str)])] = &[
        (
            "memory",
            &[
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
                ("memory.usage_in_bytes", "4096\n"),
                ("memory.max_usage_in_bytes", "19083264\n"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
                ),
            ],
        ),
        (
            "cpu",
            &[
                ("cpu.cfs_period_us", "100000\n"),
                ("cpu.cfs_quota_us", "-1\n"),
                ("cpu.shares", "1024\n"),
            ],
        ),
        ("cpuacct", &[("cpuacct.usage", "512345678\n")]),
        ("cpuset", &[("cpuset.cpus", "\n"), ("cpuset.mems", "\n")]),
        (
            "pids",
            &[
                ("pids.max", "max\n"),
                ("pids.current", "0\n"),
                ("pids.peak", "3\n"),
            ],
        ),
        ("blkio", &[("blkio.bfq.weight", "default 100\n")]),
        ("devices", &[("devices.deny", ""), ("devices.allow", "")]),
        ("systemd", &[]),
    ];

    /// mkdir(2) as the kernel does it in a v1 hierarchy: the directory comes with its files.
    fn fake_mkdir(dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir(dir)?;
        std::fs::write(dir.join("cgroup.procs"), "")?;
        let hierarchy = FILES.iter().find(|(name, _)| {
            dir.components()
                .any(|c| c.as_os_str() == std::ffi::OsStr::new(name))
        });
        for (file, content) in hierarchy.map_or(&[][..], |(_, files)| files) {
            std::fs::write(dir.join(file), content)?;
        }
        Ok(())
    }

    const FAKE: Dirs = Dirs {
        mkdir: fake_mkdir,
        rmdir: cgroup::fake_rmdir,
        leaf_may_exist: false,
    };

    /// A fake v1 host in a temporary directory.
    struct Fake {
        _dir: tempfile::TempDir,
        host: Host,
    }

    impl Fake {
        fn new() -> Fake {
            let dir = tempfile::tempdir().unwrap();
            let mut hierarchies = Vec::new();
            for (name, _) in FILES {
                let root = dir.path().join(name);
                std::fs::create_dir(&root).unwrap();
                std::fs::write(root.join("cgroup.procs"), "").unwrap();
                let controller = if *name == "systemd" {
                    "name=systemd"
                } else {
                    name
                };
                hierarchies.push(V1Hierarchy::new(root, &[controller]));
            }
            std::fs::write(dir.path().join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
            std::fs::write(dir.path().join("cpuset/cpuset.mems"), "0\n").unwrap();
            let host = Host::v1(dir.path(), hierarchies);
            Fake { _dir: dir, host }
        }

        fn path(&self, relative: &str) -> PathBuf {
            self.host.root.join(relative)
        }

        fn read(&self, relative: &str) -> String {
            std::fs::read_to_string(self.path(relative)).unwrap()
        }

        fn cgroup(&self, id: &str) -> V1Cgroup {
            let mut cgroup = V1Cgroup::new(&self.host, CgroupPath::skiff(id).unwrap());
            cgroup.dirs = FAKE;
            cgroup
        }
    }

    fn all_limits() -> Limits {
        Limits {
            memory: Some(32 << 20),
            cpu_quota: Some(CpuQuota {
                quota_us: 50_000,
                period_us: 100_000,
            }),
            cpu_shares: Some(512),
            cpuset_cpus: CpuList::parse("1"),
            pids: Some(PidsLimit::Max(10)),
            blkio_weight: Some(300),
            ..Limits::default()
        }
    }

    #[test]
    fn create_makes_a_dir_per_hierarchy_and_writes_every_limit() {
        let fake = Fake::new();
        let mut cgroup = fake.cgroup("ab");
        cgroup.create(&all_limits()).unwrap();
        for (name, _) in FILES {
            assert!(fake.path(name).join("skiff/ab").is_dir(), "{name}");
        }
        assert_eq!(
            fake.read("memory/skiff/ab/memory.limit_in_bytes"),
            "33554432"
        );
        // No swap by default: memory+swap equals memory, so the limit is real.
        assert_eq!(
            fake.read("memory/skiff/ab/memory.memsw.limit_in_bytes"),
            "33554432"
        );
        assert_eq!(fake.read("cpu/skiff/ab/cpu.cfs_period_us"), "100000");
        assert_eq!(fake.read("cpu/skiff/ab/cpu.cfs_quota_us"), "50000");
        assert_eq!(fake.read("cpu/skiff/ab/cpu.shares"), "512");
        assert_eq!(fake.read("cpuset/skiff/ab/cpuset.cpus"), "1");
        assert_eq!(fake.read("pids/skiff/ab/pids.max"), "10");
        assert_eq!(fake.read("blkio/skiff/ab/blkio.bfq.weight"), "300");
        assert_eq!(cgroup.paths().len(), FILES.len());
    }

    #[test]
    fn devices_are_denied_then_allowed_in_the_devices_hierarchy() {
        let fake = Fake::new();
        let mut cgroup = fake.cgroup("ab");
        cgroup.create(&Limits::default()).unwrap();
        cgroup
            .restrict_devices(&[DeviceRule::char(1, Some(3), crate::devices::READ)])
            .unwrap();
        assert_eq!(fake.read("devices/skiff/ab/devices.deny"), "a");
        assert_eq!(fake.read("devices/skiff/ab/devices.allow"), "c 1:3 r");
        // A container always joins the devices hierarchy, whatever its limits.
        let narrowed = narrow(&fake.host, &Limits::default());
        assert!(narrowed.v1.iter().any(|h| h.has("devices")));
        assert!(!narrowed.v1.iter().any(|h| h.has("cpuset")));
    }

    #[test]
    fn cpusets_are_filled_from_the_parent() {
        let fake = Fake::new();
        fake.cgroup("ab").create(&Limits::default()).unwrap();
        for dir in ["cpuset/skiff", "cpuset/skiff/ab"] {
            assert_eq!(fake.read(&format!("{dir}/cpuset.cpus")), "0-1", "{dir}");
            assert_eq!(fake.read(&format!("{dir}/cpuset.mems")), "0", "{dir}");
        }
    }

    #[test]
    fn removal_takes_the_parent_only_when_it_is_empty() {
        let fake = Fake::new();
        let mut first = fake.cgroup("ab");
        let mut second = fake.cgroup("cd");
        first.create(&Limits::default()).unwrap();
        second.create(&Limits::default()).unwrap();
        first.remove().unwrap();
        for (name, _) in FILES {
            assert!(!fake.path(name).join("skiff/ab").exists(), "{name}");
            assert!(fake.path(name).join("skiff/cd").is_dir(), "{name}");
        }
        second.remove().unwrap();
        for (name, _) in FILES {
            assert!(!fake.path(name).join("skiff").exists(), "{name}");
        }
        // Removing again, or a cgroup that was never made, is fine.
        second.remove().unwrap();
    }

    #[test]
    fn a_custom_parent_is_created_and_left_in_place() {
        let fake = Fake::new();
        let path = CgroupPath::new("ci/jobs", "ab").unwrap();
        let mut cgroup = V1Cgroup::new(&fake.host, path);
        cgroup.dirs = FAKE;
        cgroup.create(&Limits::default()).unwrap();
        assert_eq!(fake.read("cpuset/ci/jobs/ab/cpuset.cpus"), "0-1");
        cgroup.remove().unwrap();
        assert!(!fake.path("memory/ci/jobs/ab").exists());
        assert!(fake.path("memory/ci/jobs").is_dir());
    }

    #[test]
    fn swap_can_be_unlimited_and_pids_too() {
        let fake = Fake::new();
        let mut cgroup = fake.cgroup("ab");
        let limits = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(Swap::Unlimited),
            pids: Some(PidsLimit::Unlimited),
            ..Limits::default()
        };
        cgroup.create(&limits).unwrap();
        assert_eq!(
            fake.read("memory/skiff/ab/memory.limit_in_bytes"),
            "67108864"
        );
        assert_eq!(
            fake.read("memory/skiff/ab/memory.memsw.limit_in_bytes"),
            "-1"
        );
        assert_eq!(fake.read("pids/skiff/ab/pids.max"), "max");
        let total = Limits {
            memory_swap: Some(Swap::Total(96 << 20)),
            ..limits
        };
        cgroup.apply(&total).unwrap();
        assert_eq!(
            fake.read("memory/skiff/ab/memory.memsw.limit_in_bytes"),
            "100663296"
        );
    }

    #[test]
    fn a_missing_controller_is_named_before_anything_is_made() {
        let fake = Fake::new();
        let mut host = fake.host.clone();
        host.v1.retain(|h| !h.has("memory"));
        let mut cgroup = V1Cgroup::new(&host, CgroupPath::skiff("ab").unwrap());
        cgroup.dirs = FAKE;
        let err = cgroup.create(&all_limits()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cgroup v1 memory controller not mounted at {}: mount it or run on a cgroup v2 \
                 host",
                fake.path("memory").display()
            )
        );
        assert!(!fake.path("pids/skiff").exists());
    }

    #[test]
    fn missing_weight_and_swap_files_are_explained() {
        let fake = Fake::new();
        let mut cgroup = fake.cgroup("ab");
        cgroup.create(&Limits::default()).unwrap();
        std::fs::remove_file(fake.path("blkio/skiff/ab/blkio.bfq.weight")).unwrap();
        std::fs::remove_file(fake.path("memory/skiff/ab/memory.memsw.limit_in_bytes")).unwrap();
        let err = cgroup
            .apply(&Limits {
                blkio_weight: Some(100),
                ..Limits::default()
            })
            .unwrap_err();
        assert!(
            err.to_string().contains("blkio.weight or blkio.bfq.weight"),
            "{err}"
        );
        // Without swap accounting the default (no swap) is fine; an explicit swap limit is not.
        let memory = Limits {
            memory: Some(32 << 20),
            ..Limits::default()
        };
        cgroup.apply(&memory).unwrap();
        let err = cgroup
            .apply(&Limits {
                memory_swap: Some(Swap::Total(64 << 20)),
                ..memory
            })
            .unwrap_err();
        assert!(err.to_string().contains("swapaccount=1"), "{err}");
    }

    #[test]
    fn a_process_joins_every_hierarchy_and_counters_are_read() {
        let fake = Fake::new();
        let cgroup = fake.cgroup("ab");
        for dir in cgroup.paths() {
            fake_mkdir(dir.parent().unwrap()).ok();
            fake_mkdir(&dir).unwrap();
        }
        cgroup.add(Pid::from_raw(4242)).unwrap();
        for (name, _) in FILES {
            assert_eq!(fake.read(&format!("{name}/skiff/ab/cgroup.procs")), "4242");
        }
        let usage = cgroup.usage().unwrap();
        assert_eq!(usage.memory_current, Some(4096));
        assert_eq!(usage.memory_peak, Some(19_083_264));
        assert_eq!(usage.cpu, Some(Duration::from_nanos(512_345_678)));
        assert_eq!(usage.pids_current, Some(0));
        assert_eq!(usage.pids_peak, Some(3));
        assert_eq!(cgroup.oom_kills().unwrap(), Some(0));
        std::fs::write(
            fake.path("memory/skiff/ab/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(cgroup.oom_kills().unwrap(), Some(2));
    }
}
