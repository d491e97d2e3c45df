//! cgroup v2: one tree for every controller. A container's cgroup is one directory
//! (`/sys/fs/cgroup/skiff/ID`) and its process is added once.
//!
//! A controller works in a cgroup only when its parent enables it in `cgroup.subtree_control`
//! (`+memory +pids ...`), all the way down from the root; and only a cgroup without processes
//! of its own may enable controllers for its children (the "no internal processes" rule), which
//! `skiff/` respects by holding containers only. `cgroup.kill` (Linux 5.14+) kills everything
//! inside at once. See the kernel's `cgroup-v2.rst`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::Pid;

use crate::cgroup::{self, Cgroup, CgroupPath, Dirs};
use crate::detect::Host;
use crate::error::CgroupError;
use crate::files;
use crate::limits::{Limits, PidsLimit, Swap, blkio_to_io_weight, shares_to_weight};
use crate::usage::Usage;

/// The controllers skiff enables for its cgroups, where the tree offers them.
const WANTED: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

/// A container's cgroup on a v2 host.
pub struct V2Cgroup {
    root: PathBuf,
    path: CgroupPath,
    pub(crate) dirs: Dirs,
}

impl V2Cgroup {
    /// The cgroup `path` in the v2 tree of `host` (its root on a unified host).
    pub fn new(host: &Host, path: CgroupPath) -> Self {
        V2Cgroup {
            root: host.unified.clone().unwrap_or_else(|| host.root.clone()),
            path,
            dirs: Dirs::HOST,
        }
    }

    /// The cgroup's directory.
    pub fn dir(&self) -> PathBuf {
        self.root.join(self.path.relative())
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }
}

/// The controllers `dir` offers its children (`cgroup.controllers`).
fn available(dir: &Path) -> Result<Vec<String>, CgroupError> {
    Ok(files::read(&dir.join("cgroup.controllers"))?
        .split_whitespace()
        .map(String::from)
        .collect())
}

/// Enables the wanted controllers that `above` offers, for its children. One write for all;
/// if the kernel refuses one of them, each on its own, so the others still work (a limit that
/// needs a refused one then fails with the name of its missing file).
fn enable_controllers(above: &Path, _dir: &Path) -> Result<(), CgroupError> {
    let offered = available(above)?;
    let enable: Vec<String> = WANTED
        .iter()
        .filter(|c| offered.iter().any(|o| o == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if enable.is_empty() {
        return Ok(());
    }
    let control = above.join("cgroup.subtree_control");
    match files::write(&control, enable.join(" ")) {
        Err(err) if err.is_not_found() => Err(err),
        Err(_) => {
            for one in &enable {
                let _ = files::write(&control, one);
            }
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

// ANCHOR: v2
impl Cgroup for V2Cgroup {
    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir()]
    }

    fn create(&mut self, limits: &Limits) -> Result<(), CgroupError> {
        let offered = available(&self.root)?;
        for controller in limits.controllers("io") {
            if !offered.iter().any(|c| c == controller) {
                return Err(CgroupError::V2ControllerMissing {
                    controller,
                    path: self.root.clone(),
                });
            }
        }
        cgroup::make_dirs(&self.root, &self.path, self.dirs, &enable_controllers)?;
        self.apply(limits)
    }

    fn may_exist(&mut self) {
        self.dirs.leaf_may_exist = true;
    }

    fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        // A defence the labs prove: a debug build can be told not to write the memory limit.
        let memory = if chroot::defence::disabled("memory-limit") {
            None
        } else {
            limits.memory
        };
        if let Some(memory) = memory {
            files::write(&self.file("memory.max"), memory.to_string())?;
            // v2 limits swap on its own: memory.swap.max is the swap on top of memory.max.
            let swap_max = self.file("memory.swap.max");
            match limits.swap_only() {
                Some(_) if !swap_max.exists() && limits.memory_swap.is_none() => {}
                Some(_) if !swap_max.exists() => {
                    return Err(CgroupError::NoSwapAccounting { path: swap_max });
                }
                Some(Swap::Total(swap)) => files::write(&swap_max, swap.to_string())?,
                Some(Swap::Unlimited) => files::write(&swap_max, "max")?,
                None => {}
            }
        }
        if let Some(quota) = limits.cpu_quota {
            files::write(&self.file("cpu.max"), quota.cpu_max())?;
        }
        if let Some(shares) = limits.cpu_shares {
            files::write(
                &self.file("cpu.weight"),
                shares_to_weight(shares).to_string(),
            )?;
        }
        if let Some(cpus) = &limits.cpuset_cpus {
            files::write(&self.file("cpuset.cpus"), cpus.to_string())?;
        }
        if let Some(pids) = limits.pids {
            let value = match pids {
                PidsLimit::Max(n) => n.to_string(),
                PidsLimit::Unlimited => "max".to_string(),
            };
            files::write(&self.file("pids.max"), value)?;
        }
        if let Some(weight) = limits.blkio_weight {
            // BFQ's weight has blkio's range; io.weight has 1 to 10000 (runc's conversion).
            let dir = self.dir();
            if let Some(bfq) = files::first_existing(&dir, &["io.bfq.weight"]) {
                files::write(&bfq, weight.to_string())?;
            } else if let Some(io) = files::first_existing(&dir, &["io.weight"]) {
                files::write(&io, blkio_to_io_weight(weight).to_string())?;
            } else {
                return Err(CgroupError::NoWeightFile {
                    path: dir,
                    files: "io.weight or io.bfq.weight",
                });
            }
        }
        Ok(())
    }

    fn restrict_devices(&self, rules: &[crate::devices::DeviceRule]) -> Result<(), CgroupError> {
        crate::devices::apply_v2(&self.dir(), rules)
    }

    fn add(&self, pid: Pid) -> Result<(), CgroupError> {
        files::write(&self.file("cgroup.procs"), pid.to_string())
    }

    fn usage(&self) -> Result<Usage, CgroupError> {
        let cpu_stat = self.file("cpu.stat");
        let cpu_usec = match files::read_keyed(&cpu_stat, "usage_usec") {
            Err(err) if err.is_not_found() => None,
            other => other?,
        };
        let block = match files::read(&self.file("io.stat")) {
            Err(err) if err.is_not_found() => None,
            other => Some(crate::usage::v2_block_io(&other?)),
        };
        Ok(Usage {
            memory_current: files::read_u64_if_exists(&self.file("memory.current"))?,
            memory_peak: files::read_u64_if_exists(&self.file("memory.peak"))?,
            cpu: cpu_usec.map(Duration::from_micros),
            pids_current: files::read_u64_if_exists(&self.file("pids.current"))?,
            pids_peak: files::read_u64_if_exists(&self.file("pids.peak"))?,
            memory_limit: match files::read(&self.file("memory.max")) {
                Err(err) if err.is_not_found() => None,
                other => other?.trim().parse().ok(),
            },
            memory_inactive_file: match files::read_keyed(
                &self.file("memory.stat"),
                "inactive_file",
            ) {
                Err(err) if err.is_not_found() => None,
                other => other?,
            },
            block_read: block.map(|(read, _)| read),
            block_write: block.map(|(_, write)| write),
        })
    }

    fn oom_kills(&self) -> Result<Option<u64>, CgroupError> {
        // `oom_kill N` in memory.events, there when the memory controller is enabled.
        match files::read_keyed(&self.file("memory.events"), "oom_kill") {
            Err(err) if err.is_not_found() => Ok(None),
            other => Ok(Some(other?.unwrap_or(0))),
        }
    }

    fn remove(&mut self) -> Result<(), CgroupError> {
        let dir = self.dir();
        let kill = dir.join("cgroup.kill");
        if kill.exists() {
            // Every process inside gets SIGKILL at once, new forks included (Linux 5.14+).
            // Should it fail, remove_dir still kills them one by one.
            let _ = files::write(&kill, "1");
        }
        cgroup::remove_dir(&dir, self.dirs)?;
        if self.path.owns_parent() {
            cgroup::remove_parent(&self.root, &self.path.parent, self.dirs);
        }
        Ok(())
    }
}
// ANCHOR_END: v2

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{CpuList, CpuQuota};

    /// The files of a fresh v2 cgroup, as the kernel makes them.
    const FILES: &[(&str, &str)] = &[
        ("cgroup.controllers", "cpuset cpu io memory pids\n"),
        ("cgroup.subtree_control", "\n"),
        ("cgroup.procs", ""),
        ("cgroup.kill", ""),
        ("memory.max", "max\n"),
        ("memory.swap.max", "max\n"),
        (
            "memory.events",
            "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
        ),
        ("memory.current", "1232896\n"),
        ("memory.peak", "19083264\n"),
        ("cpu.max", "max 100000\n"),
        ("cpu.weight", "100\n"),
        (
            "cpu.stat",
            "usage_usec 512345\nuser_usec 400000\nsystem_usec 112345\n",
        ),
        ("cpuset.cpus", "\n"),
        ("pids.max", "max\n"),
        ("pids.current", "2\n"),
        ("io.weight", "default 100\n"),
    ];

    fn fake_mkdir(dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir(dir)?;
        for (file, content) in FILES {
            std::fs::write(dir.join(file), content)?;
        }
        Ok(())
    }

    const FAKE: Dirs = Dirs {
        mkdir: fake_mkdir,
        rmdir: cgroup::fake_rmdir,
        leaf_may_exist: false,
    };

    /// A fake unified host: the root holds the root cgroup's files (no limits there).
    fn fake_host() -> (tempfile::TempDir, Host) {
        let dir = tempfile::tempdir().unwrap();
        for (file, content) in [
            ("cgroup.controllers", "cpuset cpu io memory hugetlb pids\n"),
            ("cgroup.subtree_control", "\n"),
            ("cgroup.procs", ""),
        ] {
            std::fs::write(dir.path().join(file), content).unwrap();
        }
        let host = Host::v2(dir.path());
        (dir, host)
    }

    fn cgroup(host: &Host, id: &str) -> V2Cgroup {
        let mut cgroup = V2Cgroup::new(host, CgroupPath::skiff(id).unwrap());
        cgroup.dirs = FAKE;
        cgroup
    }

    fn read(host: &Host, relative: &str) -> String {
        std::fs::read_to_string(host.root.join(relative)).unwrap()
    }

    #[test]
    fn create_enables_controllers_down_the_tree_and_writes_every_limit() {
        let (_dir, host) = fake_host();
        let mut cgroup = cgroup(&host, "ab");
        let limits = Limits {
            memory: Some(32 << 20),
            cpu_quota: Some(CpuQuota {
                quota_us: 150_000,
                period_us: 100_000,
            }),
            cpu_shares: Some(1024),
            cpuset_cpus: CpuList::parse("0,1"),
            pids: Some(PidsLimit::Max(10)),
            blkio_weight: Some(500),
            ..Limits::default()
        };
        cgroup.create(&limits).unwrap();
        // The root and skiff/ both hand the controllers down; hugetlb is not wanted.
        assert_eq!(
            read(&host, "cgroup.subtree_control"),
            "+cpu +cpuset +io +memory +pids"
        );
        assert_eq!(
            read(&host, "skiff/cgroup.subtree_control"),
            "+cpu +cpuset +io +memory +pids"
        );
        assert_eq!(read(&host, "skiff/ab/memory.max"), "33554432");
        assert_eq!(read(&host, "skiff/ab/memory.swap.max"), "0");
        assert_eq!(read(&host, "skiff/ab/cpu.max"), "150000 100000");
        assert_eq!(read(&host, "skiff/ab/cpu.weight"), "39");
        assert_eq!(read(&host, "skiff/ab/cpuset.cpus"), "0-1");
        assert_eq!(read(&host, "skiff/ab/pids.max"), "10");
        assert_eq!(read(&host, "skiff/ab/io.weight"), "4950");
        assert_eq!(cgroup.paths(), [host.root.join("skiff/ab")]);
    }

    #[test]
    fn swap_follows_docker_and_bfq_takes_blkio_weights() {
        let (_dir, host) = fake_host();
        let mut cgroup = cgroup(&host, "ab");
        let limits = Limits {
            memory: Some(32 << 20),
            memory_swap: Some(Swap::Total(96 << 20)),
            pids: Some(PidsLimit::Unlimited),
            ..Limits::default()
        };
        cgroup.create(&limits).unwrap();
        assert_eq!(read(&host, "skiff/ab/memory.swap.max"), "67108864");
        assert_eq!(read(&host, "skiff/ab/pids.max"), "max");
        cgroup
            .apply(&Limits {
                memory_swap: Some(Swap::Unlimited),
                ..limits
            })
            .unwrap();
        assert_eq!(read(&host, "skiff/ab/memory.swap.max"), "max");

        std::fs::write(host.root.join("skiff/ab/io.bfq.weight"), "default 100\n").unwrap();
        let weight = Limits {
            blkio_weight: Some(300),
            ..Limits::default()
        };
        cgroup.apply(&weight).unwrap();
        assert_eq!(read(&host, "skiff/ab/io.bfq.weight"), "300");
        std::fs::remove_file(host.root.join("skiff/ab/io.bfq.weight")).unwrap();
        std::fs::remove_file(host.root.join("skiff/ab/io.weight")).unwrap();
        let err = cgroup.apply(&weight).unwrap_err();
        assert!(
            err.to_string().contains("io.weight or io.bfq.weight"),
            "{err}"
        );
    }

    #[test]
    fn a_controller_the_tree_lacks_is_named_before_anything_is_made() {
        let (_dir, host) = fake_host();
        std::fs::write(host.root.join("cgroup.controllers"), "cpu pids\n").unwrap();
        let mut cgroup = cgroup(&host, "ab");
        let err = cgroup
            .create(&Limits {
                memory: Some(32 << 20),
                ..Limits::default()
            })
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cgroup v2 memory controller not available"),
            "{err}"
        );
        assert!(!host.root.join("skiff").exists());
    }

    #[test]
    fn add_usage_and_oom_counters() {
        let (_dir, host) = fake_host();
        let mut cgroup = cgroup(&host, "ab");
        cgroup.create(&Limits::default()).unwrap();
        cgroup.add(Pid::from_raw(4242)).unwrap();
        assert_eq!(read(&host, "skiff/ab/cgroup.procs"), "4242");
        let usage = cgroup.usage().unwrap();
        assert_eq!(usage.memory_current, Some(1_232_896));
        assert_eq!(usage.memory_peak, Some(19_083_264));
        assert_eq!(usage.cpu, Some(Duration::from_micros(512_345)));
        assert_eq!(usage.pids_current, Some(2));
        assert_eq!(usage.pids_peak, None);
        assert_eq!(cgroup.oom_kills().unwrap(), Some(0));
        std::fs::write(
            host.root.join("skiff/ab/memory.events"),
            "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(cgroup.oom_kills().unwrap(), Some(1));
        std::fs::remove_file(host.root.join("skiff/ab/memory.events")).unwrap();
        assert_eq!(cgroup.oom_kills().unwrap(), None);
    }

    #[test]
    fn removal_kills_through_cgroup_kill_and_keeps_a_shared_parent() {
        let (_dir, host) = fake_host();
        let mut first = cgroup(&host, "ab");
        let mut second = cgroup(&host, "cd");
        first.create(&Limits::default()).unwrap();
        second.create(&Limits::default()).unwrap();
        // Watch the kill: a copy of the file survives the fake rmdir.
        let kill = host.root.join("skiff/ab/cgroup.kill");
        first.dirs.rmdir = |dir| {
            if dir.ends_with("skiff/ab") {
                let written = std::fs::read_to_string(dir.join("cgroup.kill"))?;
                assert_eq!(written, "1", "cgroup.kill was not written before rmdir");
            }
            cgroup::fake_rmdir(dir)
        };
        first.remove().unwrap();
        assert!(!kill.exists());
        assert!(host.root.join("skiff/cd").is_dir());
        second.remove().unwrap();
        assert!(!host.root.join("skiff").exists());
        second.remove().unwrap();
    }

    #[test]
    fn a_hybrid_host_uses_its_unified_dir() {
        let host = Host {
            setup: crate::detect::Setup::Hybrid,
            root: "/sys/fs/cgroup".into(),
            unified: Some("/sys/fs/cgroup/unified".into()),
            v1: Vec::new(),
        };
        let cgroup = V2Cgroup::new(&host, CgroupPath::skiff("ab").unwrap());
        assert_eq!(cgroup.dir(), Path::new("/sys/fs/cgroup/unified/skiff/ab"));
    }
}
