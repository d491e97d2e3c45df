//! Which cgroup setup does this host have? Asked once, answered from the filesystem types under
//! `/sys/fs/cgroup` and from the mount table, never assumed.
//!
//! - **Unified** (cgroup v2 only): `/sys/fs/cgroup` is itself a `cgroup2` filesystem, one tree
//!   for every controller.
//! - **Legacy** (cgroup v1): `/sys/fs/cgroup` is a tmpfs holding one `cgroup` mount per
//!   hierarchy (`memory`, `cpu`, `pids`...), each a tree of its own.
//! - **Hybrid**: legacy, plus a `cgroup2` mount at `/sys/fs/cgroup/unified` that holds few or no
//!   controllers (systemd uses it to track services). The v1 controllers do the limiting.
//!
//! Which v1 hierarchy is mounted where, and with which controllers, comes from
//! `/proc/self/mountinfo` (proc(5)). See cgroups(7), statfs(2).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::CgroupError;

/// Where the host mounts its cgroups.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// statfs(2) magic of a cgroup v2 filesystem (`CGROUP2_SUPER_MAGIC`).
pub const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// statfs(2) magic of a cgroup v1 hierarchy (`CGROUP_SUPER_MAGIC`).
pub const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
/// statfs(2) magic of a tmpfs (`TMPFS_MAGIC`).
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The three ways a host can set up cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// cgroup v2 only: one tree, every controller in it.
    Unified,
    /// cgroup v1 only: one tree per hierarchy.
    Legacy,
    /// v1 hierarchies beside a v2 tree that holds no controller skiff needs.
    Hybrid,
}

/// What statfs(2) says a directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// A cgroup v2 filesystem.
    Cgroup2,
    /// A cgroup v1 hierarchy.
    Cgroup1,
    /// A tmpfs.
    Tmpfs,
    /// Anything else, by its magic number.
    Other(i64),
}

impl FsKind {
    /// The kind a statfs magic number stands for.
    pub fn from_magic(magic: i64) -> Self {
        match magic {
            CGROUP2_SUPER_MAGIC => FsKind::Cgroup2,
            CGROUP_SUPER_MAGIC => FsKind::Cgroup1,
            TMPFS_MAGIC => FsKind::Tmpfs,
            other => FsKind::Other(other),
        }
    }

    /// The filesystem type of `path`, as statfs(2) reports it.
    pub fn of(path: &Path) -> Result<Self, CgroupError> {
        let stat = nix::sys::statfs::statfs(path).map_err(|source| CgroupError::Statfs {
            path: path.to_path_buf(),
            source,
        })?;
        // The magic's C type (`__fsword_t`) differs between architectures and C libraries
        // (musl's is unsigned); every magic fits in 32 bits.
        #[allow(clippy::unnecessary_cast)]
        let magic = stat.filesystem_type().0 as i64;
        Ok(FsKind::from_magic(magic))
    }
}

// ANCHOR: decide
/// Decides the setup from what is mounted at the cgroup root and, when something is, at
/// `<root>/unified`. `None`: no cgroups there at all.
pub fn decide(root: FsKind, unified: Option<FsKind>) -> Option<Setup> {
    match (root, unified) {
        (FsKind::Cgroup2, _) => Some(Setup::Unified),
        (FsKind::Tmpfs, Some(FsKind::Cgroup2)) => Some(Setup::Hybrid),
        (FsKind::Tmpfs, _) => Some(Setup::Legacy),
        // One v1 hierarchy mounted straight on the root: unusual, but legacy.
        (FsKind::Cgroup1, _) => Some(Setup::Legacy),
        (FsKind::Other(_), _) => None,
    }
}
// ANCHOR_END: decide

/// One mounted cgroup v1 hierarchy: a tree that one or more controllers share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where it is mounted (`/sys/fs/cgroup/memory`, `/sys/fs/cgroup/cpu,cpuacct`).
    pub mount_point: PathBuf,
    /// Its controllers (`memory`; `cpu`, `cpuacct`), and `name=NAME` for a named hierarchy
    /// without controllers (`name=systemd`).
    pub controllers: Vec<String>,
}

impl V1Hierarchy {
    /// A hierarchy of `controllers` mounted at `mount_point`.
    pub fn new(mount_point: impl Into<PathBuf>, controllers: &[&str]) -> Self {
        V1Hierarchy {
            mount_point: mount_point.into(),
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// Whether `controller` belongs to this hierarchy.
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The mount options that name this hierarchy to mount(2): its controllers, and `none` for
    /// a named hierarchy without any.
    pub fn mount_options(&self) -> String {
        let named_only = self.controllers.iter().all(|c| c.starts_with("name="));
        let mut options: Vec<&str> = Vec::new();
        if named_only {
            options.push("none");
        }
        options.extend(self.controllers.iter().map(String::as_str));
        options.join(",")
    }

    /// The directory name it has under the cgroup root (`memory`, `cpu,cpuacct`, `systemd`).
    pub fn dir_name(&self) -> String {
        self.mount_point
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.controllers.join(","))
    }
}

/// The host's cgroup setup: detected once, then handed to whoever creates cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Which of the three setups.
    pub setup: Setup,
    /// The cgroup root (`/sys/fs/cgroup`, or a directory of fake files in tests).
    pub root: PathBuf,
    /// The v2 tree: the root on a unified host, `<root>/unified` on a hybrid one.
    pub unified: Option<PathBuf>,
    /// The v1 hierarchies (empty on a unified host).
    pub v1: Vec<V1Hierarchy>,
}

// ANCHOR: detect
impl Host {
    /// The host's setup, detected on first use and remembered.
    pub fn detect() -> Result<&'static Host, CgroupError> {
        static HOST: OnceLock<Host> = OnceLock::new();
        if let Some(host) = HOST.get() {
            return Ok(host);
        }
        // A proc file says its size is 0, so a string that grows from nothing reads it in
        // eight calls; with room for a usual table, two.
        let mut mountinfo = String::with_capacity(16 * 1024);
        std::fs::File::open("/proc/self/mountinfo")
            .and_then(|mut file| std::io::Read::read_to_string(&mut file, &mut mountinfo))
            .map_err(|source| CgroupError::Read {
                path: "/proc/self/mountinfo".into(),
                source,
            })?;
        let host = Host::detect_at(Path::new(CGROUP_ROOT), &mountinfo)?;
        Ok(HOST.get_or_init(|| host))
    }

    /// Detects the setup of the cgroup root `root`, with the mount table `mountinfo`.
    pub fn detect_at(root: &Path, mountinfo: &str) -> Result<Host, CgroupError> {
        let root_kind = FsKind::of(root)?;
        let unified_dir = root.join("unified");
        let unified_kind = match root_kind {
            FsKind::Tmpfs if unified_dir.is_dir() => Some(FsKind::of(&unified_dir)?),
            _ => None,
        };
        let Some(setup) = decide(root_kind, unified_kind) else {
            let magic = match root_kind {
                FsKind::Other(magic) => magic,
                _ => 0,
            };
            return Err(CgroupError::NoCgroupFs {
                path: root.to_path_buf(),
                magic,
            });
        };
        Host::from_setup(setup, root, mountinfo)
    }

    /// The host for a setup already decided: finds the v1 hierarchies in `mountinfo`.
    pub fn from_setup(setup: Setup, root: &Path, mountinfo: &str) -> Result<Host, CgroupError> {
        match setup {
            Setup::Unified => Ok(Host::v2(root)),
            Setup::Legacy | Setup::Hybrid => {
                let v1 = v1_hierarchies(mountinfo);
                if v1.is_empty() {
                    return Err(CgroupError::NoV1Hierarchy {
                        path: root.to_path_buf(),
                    });
                }
                let unified = (setup == Setup::Hybrid).then(|| root.join("unified"));
                Ok(Host {
                    setup,
                    root: root.to_path_buf(),
                    unified,
                    v1,
                })
            }
        }
    }
}
// ANCHOR_END: detect

impl Host {
    /// A unified (v2) host whose cgroup tree is at `root`: for tests, a directory of fake files.
    pub fn v2(root: impl Into<PathBuf>) -> Host {
        let root = root.into();
        Host {
            setup: Setup::Unified,
            unified: Some(root.clone()),
            root,
            v1: Vec::new(),
        }
    }

    /// A legacy (v1) host with these hierarchies under `root`: for tests, fake directories.
    pub fn v1(root: impl Into<PathBuf>, hierarchies: Vec<V1Hierarchy>) -> Host {
        Host {
            setup: Setup::Legacy,
            root: root.into(),
            unified: None,
            v1: hierarchies,
        }
    }

    /// The v1 hierarchy that holds `controller`.
    pub fn hierarchy(&self, controller: &str) -> Option<&V1Hierarchy> {
        self.v1.iter().find(|h| h.has(controller))
    }
}

/// The cgroup v1 hierarchies in a mount table, first mount of each.
///
/// A mountinfo line reads `36 25 0:31 / /sys/fs/cgroup/memory rw,relatime shared:14 - cgroup
/// cgroup rw,memory`: the mount point is field 5, and after the `-` come the filesystem type,
/// the source and the superblock options, which name the controllers.
pub fn v1_hierarchies(mountinfo: &str) -> Vec<V1Hierarchy> {
    let mut found: Vec<V1Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((mount, fs)) = line.split_once(" - ") else {
            continue;
        };
        let mut fs_fields = fs.split(' ');
        if fs_fields.next() != Some("cgroup") {
            continue;
        }
        let Some(options) = fs_fields.nth(1) else {
            continue;
        };
        let Some(mount_point) = mount.split(' ').nth(4) else {
            continue;
        };
        let controllers: Vec<String> = options
            .split(',')
            .filter(|option| is_controller(option))
            .map(String::from)
            .collect();
        if controllers.is_empty() || found.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        found.push(V1Hierarchy {
            mount_point: PathBuf::from(unescape(mount_point)),
            controllers,
        });
    }
    found
}

/// Whether a superblock option of a v1 cgroup mount names a controller (or a named hierarchy)
/// rather than a flag.
fn is_controller(option: &str) -> bool {
    const FLAGS: [&str; 10] = [
        "rw",
        "ro",
        "none",
        "all",
        "noprefix",
        "clone_children",
        "cpuset_v2_mode",
        "xattr",
        "favordynmods",
        "nofavordynmods",
    ];
    !option.is_empty() && !FLAGS.contains(&option) && !option.starts_with("release_agent=")
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's mount table: cpu and cpuacct apart, a named systemd hierarchy, and an
    /// empty cgroup2 at unified.
    pub(crate) const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A Debian 10 host under systemd: co-mounted controllers, flags among the options.
    const DEBIAN_MOUNTINFO: &str = "\
25 18 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
31 25 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,net_cls,net_prio
32 25 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
33 25 0:31 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpuset,clone_children
90 88 0:30 / /srv/container/sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn statfs_kinds_decide_the_setup() {
        use FsKind::*;
        assert_eq!(decide(Cgroup2, None), Some(Setup::Unified));
        assert_eq!(decide(Tmpfs, Some(Cgroup2)), Some(Setup::Hybrid));
        assert_eq!(decide(Tmpfs, None), Some(Setup::Legacy));
        assert_eq!(decide(Tmpfs, Some(Tmpfs)), Some(Setup::Legacy));
        assert_eq!(decide(Cgroup1, None), Some(Setup::Legacy));
        assert_eq!(decide(Other(0xef53), None), None);
    }

    #[test]
    fn magic_numbers_map_to_kinds() {
        assert_eq!(FsKind::from_magic(0x6367_7270), FsKind::Cgroup2);
        assert_eq!(FsKind::from_magic(0x27e0eb), FsKind::Cgroup1);
        assert_eq!(FsKind::from_magic(0x0102_1994), FsKind::Tmpfs);
        assert_eq!(FsKind::from_magic(0xef53), FsKind::Other(0xef53));
    }

    #[test]
    fn hierarchies_come_from_the_mount_table() {
        let found = v1_hierarchies(HYBRID_MOUNTINFO);
        let names: Vec<String> = found.iter().map(V1Hierarchy::dir_name).collect();
        assert_eq!(
            names,
            [
                "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                "systemd"
            ]
        );
        assert_eq!(found[8].controllers, ["name=systemd"]);
        assert_eq!(found[8].mount_options(), "none,name=systemd");
        assert_eq!(found[3].mount_options(), "memory");
    }

    #[test]
    fn comounted_controllers_share_a_hierarchy_and_flags_are_dropped() {
        let found = v1_hierarchies(DEBIAN_MOUNTINFO);
        assert_eq!(found.len(), 5, "{found:?}");
        let cpu = found.iter().find(|h| h.has("cpuacct")).unwrap();
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.controllers, ["cpu", "cpuacct"]);
        assert_eq!(cpu.mount_options(), "cpu,cpuacct");
        let systemd = found.iter().find(|h| h.has("name=systemd")).unwrap();
        assert_eq!(systemd.controllers, ["name=systemd"]);
        let cpuset = found.iter().find(|h| h.has("cpuset")).unwrap();
        assert_eq!(cpuset.controllers, ["cpuset"]);
        // The second mount of the memory hierarchy (inside a container) is not a new one.
        let memory = found.iter().filter(|h| h.has("memory")).count();
        assert_eq!(memory, 1);
    }

    #[test]
    fn hybrid_and_legacy_hosts_list_their_v1_hierarchies() {
        let root = Path::new("/sys/fs/cgroup");
        let host = Host::from_setup(Setup::Hybrid, root, HYBRID_MOUNTINFO).unwrap();
        assert_eq!(
            host.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            host.hierarchy("memory").unwrap().mount_point,
            root.join("memory")
        );
        let err = Host::from_setup(Setup::Legacy, root, "").unwrap_err();
        assert!(err.to_string().contains("lists no v1 hierarchy"), "{err}");
        let unified = Host::from_setup(Setup::Unified, root, "").unwrap();
        assert_eq!(unified, Host::v2(root));
    }

    #[test]
    fn a_directory_without_cgroups_is_an_error_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        match Host::detect_at(dir.path(), HYBRID_MOUNTINFO) {
            // A tempdir on tmpfs looks like a legacy root; anything else has no cgroups.
            Ok(host) => assert_eq!(host.setup, Setup::Legacy),
            Err(err) => assert!(err.to_string().contains("no cgroup filesystem"), "{err}"),
        }
    }

    #[test]
    fn escaped_mount_points_are_unescaped() {
        assert_eq!(unescape(r"/mnt/my\040cgroups"), "/mnt/my cgroups");
        assert_eq!(unescape(r"/plain\x"), r"/plain\x");
    }

    #[test]
    fn this_host_is_detected() {
        // Whatever the host, detection answers, and the answer matches its statfs.
        let host = Host::detect().unwrap();
        let kind = FsKind::of(Path::new(CGROUP_ROOT)).unwrap();
        match host.setup {
            Setup::Unified => assert_eq!(kind, FsKind::Cgroup2),
            Setup::Legacy | Setup::Hybrid => {
                assert_ne!(kind, FsKind::Cgroup2);
                assert!(!host.v1.is_empty());
            }
        }
    }
}
