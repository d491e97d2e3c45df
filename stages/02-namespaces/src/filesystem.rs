//! The container's filesystem: a root of its own, entered with pivot_root(2), with `/proc`,
//! `/sys` and a minimal `/dev` mounted inside, and the host's sensitive paths masked.
//!
//! Everything here happens inside the container's new mount namespace, so none of these mounts
//! is ever visible on the host, and all of them vanish when the container's last process exits.
//! The order matters and is the order of the steps below:
//!
//! 1. make every mount private, so nothing we mount propagates back to the host;
//! 2. bind-mount the rootfs onto itself: pivot_root needs the new root to be a mount point;
//! 3. mount `/proc`, `/sys`, `/dev`... into it, and mask what a container must not read;
//! 4. pivot_root into it and detach the old root, which leaves nothing to climb back to.
//!
//! See mount_namespaces(7), pivot_root(2), proc(5), sysfs(5), devpts (filesystems/devpts).

use std::path::{Path, PathBuf};

use chroot::plan::cstr;
use chroot::{Feature, FeatureError, Plan, Step};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;

use crate::private::HeldDir;

/// Paths Docker hides from containers: reading them would leak host information (kcore is the
/// host's memory; keys, timer_list and sched_debug describe other processes). The directories
/// get an empty read-only tmpfs, the files `/dev/null`.
pub const MASKED_PATHS: &[(&str, bool)] = &[
    ("/proc/asound", true),
    ("/proc/acpi", true),
    ("/proc/interrupts", false),
    ("/proc/kcore", false),
    ("/proc/keys", false),
    ("/proc/latency_stats", false),
    ("/proc/timer_list", false),
    ("/proc/timer_stats", false),
    ("/proc/sched_debug", false),
    ("/proc/scsi", true),
    ("/sys/firmware", true),
    ("/sys/devices/virtual/powercap", true),
];

/// Paths Docker makes read-only: writing them would change the host's kernel.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The device nodes a container gets, bind-mounted from the host's `/dev`.
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// The `/etc` files the engine writes for the container.
pub const ETC_FILES: &[&str] = &["hostname", "hosts", "resolv.conf"];

/// How the container's filesystem is set up.
#[derive(Debug, Clone)]
pub struct FilesystemConfig {
    /// The root directory, on the host.
    pub rootfs: PathBuf,
    /// A host directory holding this container's `hostname`, `hosts` and `resolv.conf`.
    pub etc_dir: PathBuf,
    /// The container has its own network namespace (sysfs can be mounted fresh).
    pub own_network: bool,
    /// The container has its own IPC namespace (`/dev/mqueue` can be mounted).
    pub own_ipc: bool,
}

/// The root filesystem feature: mounts inside, then pivot_root.
pub struct Filesystem {
    config: FilesystemConfig,
    /// The state directory, opened by the parent for a child in a user namespace.
    state_dir: Option<HeldDir>,
}

impl Filesystem {
    /// The feature for `config`.
    pub fn new(config: FilesystemConfig) -> Self {
        Filesystem {
            config,
            state_dir: None,
        }
    }

    // ANCHOR: paths_for_child
    /// The rootfs and the state directory as the child names them.
    ///
    /// In a user namespace the child becomes the namespace's root (uid 100000 on the host, say)
    /// before it mounts anything, and the store is private (0710, see [`crate::private`]): from
    /// `/` it could no longer walk down to its own state directory, nor to an image's overlay
    /// inside it. So it reaches that directory through a descriptor ([`HeldDir`]).
    fn paths_for_child(&mut self, plan: &mut Plan) -> Result<(PathBuf, PathBuf), FeatureError> {
        let c = &self.config;
        if !plan.user_namespace || !crate::private::enabled() {
            return Ok((c.rootfs.clone(), c.etc_dir.clone()));
        }
        let held = HeldDir::hold(plan, &c.etc_dir)
            .map_err(|e| FeatureError::with(format!("open {}", c.etc_dir.display()), e))?;
        let via = held.via().to_path_buf();
        let rootfs = match c.rootfs.strip_prefix(&c.etc_dir) {
            Ok(inside) => via.join(inside),
            Err(_) => c.rootfs.clone(),
        };
        self.state_dir = Some(held);
        Ok((rootfs, via))
    }
    // ANCHOR_END: paths_for_child
}

fn err(e: chroot::LaunchError) -> FeatureError {
    FeatureError::msg(e.to_string())
}

fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<Step, FeatureError> {
    Ok(Step::Mount {
        source: source.map(cstr).transpose().map_err(err)?,
        target: cstr(target).map_err(err)?,
        fstype: fstype.map(cstr).transpose().map_err(err)?,
        flags,
        data: data.map(cstr).transpose().map_err(err)?,
    })
}

fn bind(source: &Path, target: &Path, extra: MsFlags) -> Result<Step, FeatureError> {
    Ok(Step::Mount {
        source: Some(cstr(source).map_err(err)?),
        target: cstr(target).map_err(err)?,
        fstype: None,
        flags: MsFlags::MS_BIND | extra,
        data: None,
    })
}

/// Changes the flags of an existing bind mount.
fn remount(target: &Path, flags: MsFlags) -> Result<Step, FeatureError> {
    mount(
        None,
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
        None,
    )
}

/// The mount flags of the filesystem holding `path` (nosuid, noexec, nodev, ro), which a
/// remount in a user namespace must keep.
pub fn current_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::FsFlags;
    let Ok(stat) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    let flags = stat.flags();
    [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(fs, _)| flags.contains(*fs))
    .fold(MsFlags::empty(), |all, (_, ms)| all | ms)
}

/// Remounts an existing bind mount read-only, keeping the flags the kernel would otherwise
/// refuse to drop.
fn remount_readonly(target: &Path, keep: MsFlags) -> Result<Step, FeatureError> {
    mount(
        None,
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
        None,
    )
}

impl Feature for Filesystem {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Root
    }

    // ANCHOR: prepare
    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let user_namespace = plan.user_namespace;
        let (rootfs, etc_dir) = self.paths_for_child(plan)?;
        let c = &self.config;
        chroot::root::check_rootfs(&c.rootfs).map_err(err)?;
        // What later features mount into the root (cgroup view, volumes) goes the same way.
        plan.rootfs = rootfs.clone();
        let root = |p: &str| rootfs.join(p.trim_start_matches('/'));
        // The mounts need nothing from the parent, so they run while it is still busy (joining a
        // cgroup can take milliseconds) — unless there is a user namespace, whose id maps the
        // parent writes first.
        let steps = plan.root_setup();
        let (nosuid, noexec) = (MsFlags::MS_NOSUID, MsFlags::MS_NOEXEC);
        // `nodev` is a defence the labs prove: a debug build can be told to go without it.
        let nodev = if chroot::defence::disabled("nodev") {
            MsFlags::empty()
        } else {
            MsFlags::MS_NODEV
        };

        // 1. Nothing we mount may propagate back to the host.
        steps.push(mount(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None,
        )?);
        // 2. pivot_root wants a mount point: the rootfs, bound onto itself. Remounted `nodev`:
        // root in the container keeps CAP_MKNOD (Docker's default set), and a disk device node
        // made in its root must not open. The flags the rootfs already has are kept, or a user
        // namespace would refuse the remount.
        steps.push(bind(&rootfs, &rootfs, MsFlags::MS_REC)?);
        steps.push(remount(&rootfs, current_flags(&c.rootfs) | nodev)?);

        // 3. The kernel's views: the container's own /proc, and /sys read-only.
        steps.push(Step::Mkdir(
            cstr(root("/proc")).map_err(err)?,
            Mode::from_bits_truncate(0o555),
        ));
        steps.push(mount(
            Some("proc"),
            &root("/proc"),
            Some("proc"),
            nosuid | nodev | noexec,
            None,
        )?);
        steps.push(Step::Mkdir(
            cstr(root("/sys")).map_err(err)?,
            Mode::from_bits_truncate(0o555),
        ));
        if c.own_network || !user_namespace {
            let flags = MsFlags::MS_RDONLY | nosuid | nodev | noexec;
            steps.push(mount(
                Some("sysfs"),
                &root("/sys"),
                Some("sysfs"),
                flags,
                None,
            )?);
        } else {
            // In a user namespace that shares the host's network, sysfs may not be mounted
            // afresh: bind the host's and make it read-only.
            steps.push(bind(Path::new("/sys"), &root("/sys"), MsFlags::MS_REC)?);
            steps.push(remount_readonly(&root("/sys"), nosuid | nodev | noexec)?);
        }

        // A minimal /dev: a tmpfs with a few devices, a private devpts, and shared memory.
        let dev = root("/dev");
        steps.push(Step::Mkdir(
            cstr(&dev).map_err(err)?,
            Mode::from_bits_truncate(0o755),
        ));
        steps.push(mount(
            Some("tmpfs"),
            &dev,
            Some("tmpfs"),
            // nodev here too: the devices below are bind mounts of the host's, each a mount of
            // its own, so they still work; a node made with mknod in /dev does not.
            nosuid | nodev | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        )?);
        for device in DEVICES {
            let target = dev.join(device);
            steps.push(Step::Touch(cstr(&target).map_err(err)?));
            steps.push(bind(
                &Path::new("/dev").join(device),
                &target,
                MsFlags::empty(),
            )?);
        }
        let pts = dev.join("pts");
        steps.push(Step::Mkdir(
            cstr(&pts).map_err(err)?,
            Mode::from_bits_truncate(0o755),
        ));
        // gid 5 is the tty group; in a user namespace it may not be mapped.
        let pts_options = if user_namespace {
            "newinstance,ptmxmode=0666,mode=0620"
        } else {
            "newinstance,ptmxmode=0666,mode=0620,gid=5"
        };
        steps.push(mount(
            Some("devpts"),
            &pts,
            Some("devpts"),
            nosuid | noexec,
            Some(pts_options),
        )?);
        steps.push(symlink("pts/ptmx", &dev.join("ptmx"))?);
        let shm = dev.join("shm");
        steps.push(Step::Mkdir(
            cstr(&shm).map_err(err)?,
            Mode::from_bits_truncate(0o1777),
        ));
        steps.push(mount(
            Some("shm"),
            &shm,
            Some("tmpfs"),
            nosuid | nodev | noexec,
            Some("mode=1777,size=65536k"),
        )?);
        if c.own_ipc {
            let mqueue = dev.join("mqueue");
            steps.push(Step::Mkdir(
                cstr(&mqueue).map_err(err)?,
                Mode::from_bits_truncate(0o755),
            ));
            steps.push(mount(
                Some("mqueue"),
                &mqueue,
                Some("mqueue"),
                nosuid | nodev | noexec,
                None,
            )?);
        }
        for (link, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            steps.push(symlink(target, &dev.join(link))?);
        }

        // The engine's /etc/hostname, /etc/hosts and /etc/resolv.conf, bound over the image's.
        steps.push(Step::Mkdir(
            cstr(root("/etc")).map_err(err)?,
            Mode::from_bits_truncate(0o755),
        ));
        for file in ETC_FILES {
            let target = root("/etc").join(file);
            steps.push(Step::Touch(cstr(&target).map_err(err)?));
            steps.push(bind(&etc_dir.join(file), &target, MsFlags::empty())?);
        }

        // Masked paths: /dev/null over files, an empty read-only tmpfs over directories.
        for (path, is_dir) in MASKED_PATHS {
            let target = root(path);
            let step = if *is_dir {
                mount(
                    Some("tmpfs"),
                    &target,
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    None,
                )?
            } else {
                bind(Path::new("/dev/null"), &target, MsFlags::empty())?
            };
            steps.push(Step::IfExists(Box::new(step)));
        }
        // Read-only paths: bound onto themselves, then remounted read-only.
        for path in READONLY_PATHS {
            let target = root(path);
            steps.push(Step::IfExists(Box::new(bind(
                &target,
                &target,
                MsFlags::MS_REC,
            )?)));
            steps.push(Step::IfExists(Box::new(remount_readonly(
                &target,
                nosuid | nodev | noexec,
            )?)));
        }

        // 4. Into the new root. pivot_root(".", ".") stacks the old root on top of the new one,
        // where umount2(MNT_DETACH) cuts it loose: no directory to create, nothing left to reach.
        let here = cstr(".").map_err(err)?;
        plan.change_root.extend([
            Step::Chdir(cstr(&rootfs).map_err(err)?),
            Step::PivotRoot {
                new_root: here.clone(),
                put_old: here.clone(),
            },
            Step::Umount(here, MntFlags::MNT_DETACH),
            Step::Chdir(cstr("/").map_err(err)?),
        ]);
        Ok(())
    }
    // ANCHOR_END: prepare
}

fn symlink(target: &str, link: &Path) -> Result<Step, FeatureError> {
    Ok(Step::Symlink {
        target: cstr(target).map_err(err)?,
        link: cstr(link).map_err(err)?,
    })
}

/// Writes the container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` into `dir`.
pub fn write_etc_files(dir: &Path, hostname: &str, host_network: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    let hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string()
    };
    std::fs::write(dir.join("hosts"), hosts)?;
    std::fs::write(dir.join("resolv.conf"), resolv_conf(host_network))?;
    Ok(())
}

/// The host's resolv.conf; without the host's network, minus nameservers on the host's
/// loopback, which the container's own loopback cannot reach.
fn resolv_conf(host_network: bool) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if host_network {
        return host;
    }
    host.lines()
        .filter(|line| {
            let server = line.strip_prefix("nameserver").map(str::trim);
            !server.is_some_and(|s| s.starts_with("127.") || s == "::1")
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rootfs: &Path) -> FilesystemConfig {
        FilesystemConfig {
            rootfs: rootfs.to_path_buf(),
            etc_dir: PathBuf::from("/run/skiff-test/etc"),
            own_network: true,
            own_ipc: true,
        }
    }

    #[test]
    fn the_plan_makes_mounts_private_first_and_pivots_last() {
        let dir = std::env::temp_dir();
        let mut plan = Plan::default();
        Filesystem::new(config(&dir)).prepare(&mut plan).unwrap();
        // Without a user namespace the mounts need nothing from the parent: they run early.
        assert!(plan.before_root.is_empty());
        let first = plan.early[0].to_string();
        assert_eq!(first, "change mount /");
        assert!(
            plan.early
                .iter()
                .any(|s| s.to_string() == format!("mount proc on {}", dir.join("proc").display()))
        );
        assert!(matches!(plan.change_root[1], Step::PivotRoot { .. }));
        assert!(matches!(
            plan.change_root[2],
            Step::Umount(_, MntFlags::MNT_DETACH)
        ));
        assert_eq!(plan.rootfs, dir);
    }

    #[test]
    fn every_masked_path_is_masked_and_optional() {
        let mut plan = Plan::default();
        Filesystem::new(config(&std::env::temp_dir()))
            .prepare(&mut plan)
            .unwrap();
        let masked = plan
            .early
            .iter()
            .filter(|s| matches!(s, Step::IfExists(_)))
            .count();
        assert_eq!(masked, MASKED_PATHS.len() + 2 * READONLY_PATHS.len());
    }

    #[test]
    fn with_a_user_namespace_the_mounts_wait_for_the_id_maps() {
        let mut plan = Plan {
            user_namespace: true,
            ..Plan::default()
        };
        // A state directory, as stage 02 makes it, holding the rootfs (as an image's is).
        let state = tempfile::tempdir().unwrap();
        let rootfs = state.path().join("skiff-rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let mut config = config(&rootfs);
        config.etc_dir = state.path().to_path_buf();
        let mut fs = Filesystem::new(config);
        fs.prepare(&mut plan).unwrap();
        // Only the reopening of the state directory runs before the go-ahead...
        assert_eq!(plan.early.len(), 1);
        let reopen = plan.early[0].to_string();
        assert!(
            reopen.starts_with(&format!("open {}", state.path().display())),
            "{reopen}"
        );
        assert_eq!(plan.before_root[0].to_string(), "change mount /");
        // ...and from then on the child names what is in it through the descriptor.
        let fd = fs.state_dir.as_ref().unwrap().fd();
        assert!(reopen.ends_with(&format!("as descriptor {fd}")), "{reopen}");
        assert_eq!(
            plan.rootfs,
            Path::new(&format!("/proc/self/fd/{fd}/skiff-rootfs"))
        );
    }

    #[test]
    fn a_missing_rootfs_fails_in_prepare() {
        let mut plan = Plan::default();
        let err = Filesystem::new(config(Path::new("/no/such/skiff-rootfs")))
            .prepare(&mut plan)
            .unwrap_err();
        assert!(err.to_string().contains("/no/such/skiff-rootfs"), "{err}");
    }

    #[test]
    fn resolv_conf_drops_loopback_servers_without_host_network() {
        let text = resolv_conf(false);
        assert!(!text.contains("nameserver 127."), "{text}");
    }
}
