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
use std::sync::Arc;

use chroot::plan::cstr;
use chroot::{Feature, FeatureError, Plan, Step};
use nix::mount::{MntFlags, MsFlags};

use crate::in_root::{Create, MountInRoot, MountSource, Root, SymlinkInRoot};

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
    /// Host devices to show in the container's `/dev` (`--device`).
    pub devices: Vec<crate::devices::DeviceMapping>,
    /// `--privileged`: every host device in `/dev`, `/sys` and `/proc/sys` writable, nothing
    /// masked.
    pub privileged: bool,
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
        // ST_RELATIME (statvfs(3)), which nix names for glibc only.
        (FsFlags::from_bits_retain(0x1000), MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(fs, _)| flags.contains(*fs))
    .fold(MsFlags::empty(), |all, (_, ms)| all | ms)
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

        // 1. Nothing we mount may propagate back to the host: every mount made private.
        let propagation = if chroot::defence::disabled("private-mounts") {
            // The labs prove this defence: a debug build can be told to make private only `/`,
            // which (with the new root bound from it) is all pivot_root insists on. The mounts
            // below keep the host's propagation, and what the container mounts on a shared one
            // appears on the host.
            MsFlags::MS_PRIVATE
        } else {
            MsFlags::MS_REC | MsFlags::MS_PRIVATE
        };
        steps.push(mount(None, Path::new("/"), None, propagation, None)?);
        // 2. pivot_root wants a mount point: the rootfs, bound onto itself. Remounted `nodev`:
        // root in the container keeps CAP_MKNOD (Docker's default set), and a disk device node
        // made in its root must not open. The flags the rootfs already has are kept, or a user
        // namespace would refuse the remount.
        steps.push(bind(&rootfs, &rootfs, MsFlags::MS_REC)?);
        steps.push(remount(&rootfs, current_flags(&c.rootfs) | nodev)?);

        // 3. The kernel's views: the container's own /proc, and /sys read-only. Every target
        // is a path of the image's (its /proc may be a symlink to anywhere): each is opened
        // inside the root and mounted on through its descriptor (see `in_root`).
        let root_dir = &Root::open(&rootfs)
            .map_err(|e| FeatureError::with(format!("open rootfs {}", c.rootfs.display()), e))?;
        let on = |target: &str, create: Create, source: MountSource| Target {
            rootfs: root_dir,
            target: target.to_string(),
            create,
            source,
        };
        steps.push(custom(
            on("/proc", Create::Dirs(0o555), host("proc")?).mount(
                Some("proc"),
                nosuid | nodev | noexec,
                None,
            )?,
        ));
        if c.own_network || !user_namespace {
            // Writable only for --privileged, as in Docker.
            let read_only = if c.privileged {
                MsFlags::empty()
            } else {
                MsFlags::MS_RDONLY
            };
            let flags = read_only | nosuid | nodev | noexec;
            steps.push(custom(
                on("/sys", Create::Dirs(0o555), host("sysfs")?).mount(
                    Some("sysfs"),
                    flags,
                    None,
                )?,
            ));
        } else {
            // In a user namespace that shares the host's network, sysfs may not be mounted
            // afresh: bind the host's and make it read-only.
            steps.push(custom(
                on("/sys", Create::Dirs(0o555), host("/sys")?)
                    .mount(None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?
                    .read_only(nosuid | nodev | noexec),
            ));
        }

        // A minimal /dev: a tmpfs with a few devices, a private devpts, and shared memory.
        steps.push(custom(
            on("/dev", Create::Dirs(0o755), host("tmpfs")?).mount(
                Some("tmpfs"),
                // nodev here too: the devices below are bind mounts of the host's, each a mount of
                // its own, so they still work; a node made with mknod in /dev does not.
                nosuid | nodev | MsFlags::MS_STRICTATIME,
                Some("mode=755,size=65536k"),
            )?,
        ));
        for device in DEVICES {
            let source = host(&format!("/dev/{device}"))?;
            steps.push(custom(
                on(&format!("/dev/{device}"), Create::File, source).mount(
                    None,
                    MsFlags::MS_BIND,
                    None,
                )?,
            ));
        }
        // ANCHOR: extra_devices
        // --device and --privileged: more of the host's nodes, bound the same way. Stage 03's
        // devices cgroup decides whether they open.
        let mut extra: Vec<(PathBuf, String)> = c
            .devices
            .iter()
            .map(|d| (d.host.clone(), d.container.clone()))
            .collect();
        if c.privileged {
            extra.extend(
                crate::devices::host_devices()
                    .into_iter()
                    .map(|d| (Path::new("/dev").join(&d), format!("/dev/{d}"))),
            );
        }
        for (host_node, inside) in &extra {
            let source = MountSource::Host(cstr(host_node).map_err(err)?);
            steps.push(custom(on(inside, Create::File, source).mount(
                None,
                MsFlags::MS_BIND,
                None,
            )?));
        }
        // ANCHOR_END: extra_devices
        // gid 5 is the tty group; in a user namespace it may not be mapped.
        let pts_options = if user_namespace {
            "newinstance,ptmxmode=0666,mode=0620"
        } else {
            "newinstance,ptmxmode=0666,mode=0620,gid=5"
        };
        steps.push(custom(
            on("/dev/pts", Create::Dirs(0o755), host("devpts")?).mount(
                Some("devpts"),
                nosuid | noexec,
                Some(pts_options),
            )?,
        ));
        steps.push(symlink(root_dir, "pts/ptmx", "/dev/ptmx")?);
        steps.push(custom(
            on("/dev/shm", Create::Dirs(0o1777), host("shm")?).mount(
                Some("tmpfs"),
                nosuid | nodev | noexec,
                Some("mode=1777,size=65536k"),
            )?,
        ));
        if c.own_ipc {
            steps.push(custom(
                on("/dev/mqueue", Create::Dirs(0o755), host("mqueue")?).mount(
                    Some("mqueue"),
                    nosuid | nodev | noexec,
                    None,
                )?,
            ));
        }
        for (link, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            steps.push(symlink(root_dir, target, &format!("/dev/{link}"))?);
        }

        // ANCHOR: etc_files
        // The engine's /etc/hostname, /etc/hosts and /etc/resolv.conf, bound over the image's.
        // The image's /etc may be a symlink to a host directory: the files are made, and
        // mounted on, where that link leads *inside* the root.
        for file in ETC_FILES {
            let source = MountSource::Host(cstr(etc_dir.join(file)).map_err(err)?);
            steps.push(custom(
                on(&format!("/etc/{file}"), Create::File, source).mount(
                    None,
                    MsFlags::MS_BIND,
                    None,
                )?,
            ));
        }
        // ANCHOR_END: etc_files

        // Masked paths: /dev/null over files, an empty read-only tmpfs over directories.
        // --privileged masks nothing and leaves /proc/sys writable, as in Docker.
        let (masked, read_only) = if c.privileged {
            (&[][..], &[][..])
        } else {
            (MASKED_PATHS, READONLY_PATHS)
        };
        for (path, is_dir) in masked {
            let step = if *is_dir {
                on(path, Create::Nothing, host("tmpfs")?).mount(
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    None,
                )?
            } else {
                on(path, Create::Nothing, host("/dev/null")?).mount(None, MsFlags::MS_BIND, None)?
            };
            steps.push(Step::IfExists(Box::new(custom(step))));
        }
        // Read-only paths: bound onto themselves, then remounted read-only.
        for path in read_only {
            let step = on(path, Create::Nothing, MountSource::Itself)
                .mount(None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?
                .read_only(nosuid | nodev | noexec);
            steps.push(Step::IfExists(Box::new(custom(step))));
        }

        // 4. Into the new root.
        plan.change_root.extend(pivot_into(&rootfs)?);
        Ok(())
    }
    // ANCHOR_END: prepare
}

// ANCHOR: pivot_into
/// The steps that enter `rootfs` (a mount point) for good. pivot_root(".", ".") stacks the old
/// root on top of the new one, where umount2(MNT_DETACH) cuts it loose: no directory to create,
/// nothing left to reach. Also what `skiff-runtime` does with a bundle's root.
pub fn pivot_into(rootfs: &Path) -> Result<Vec<Step>, FeatureError> {
    let here = cstr(".").map_err(err)?;
    if chroot::defence::disabled("pivot-root") {
        // The labs prove this defence: a debug build can be told to enter the root the old
        // way, stage 01's chroot(2), which leaves the host's root a chroot escape away.
        return Ok(vec![
            Step::Chdir(cstr(rootfs).map_err(err)?),
            Step::Chroot(here),
            Step::Chdir(cstr("/").map_err(err)?),
        ]);
    }
    Ok(vec![
        Step::Chdir(cstr(rootfs).map_err(err)?),
        Step::PivotRoot {
            new_root: here.clone(),
            put_old: here.clone(),
        },
        Step::Umount(here, MntFlags::MNT_DETACH),
        Step::Chdir(cstr("/").map_err(err)?),
    ])
}
// ANCHOR_END: pivot_into

/// A mount point inside the root, and what to mount there.
struct Target<'a> {
    rootfs: &'a Root,
    target: String,
    create: Create,
    source: MountSource,
}

impl Target<'_> {
    fn mount(
        self,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<MountInRoot, FeatureError> {
        let Target {
            rootfs,
            target,
            create,
            source,
        } = self;
        MountInRoot::new(rootfs, &target, create, source, fstype, flags, data)
            .map_err(|e| FeatureError::with(format!("resolve {target} inside the root"), e))
    }
}

/// A name or host path skiff chose, as a mount's source.
fn host(path: &str) -> Result<MountSource, FeatureError> {
    cstr(path).map(MountSource::Host).map_err(err)
}

fn custom(step: impl chroot::ChildStep + 'static) -> Step {
    Step::Custom(Arc::new(step))
}

fn symlink(rootfs: &Root, target: &str, link: &str) -> Result<Step, FeatureError> {
    SymlinkInRoot::new(rootfs, link, target)
        .map(custom)
        .map_err(|e| FeatureError::with(format!("resolve {link} inside the root"), e))
}

// ANCHOR: etc_options
/// What `--add-host`, `--dns`, `--dns-search` and `--dns-option` ask of the `/etc` files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcOptions {
    /// `--add-host NAME:IP`: more lines of `/etc/hosts`.
    pub extra_hosts: Vec<(String, std::net::IpAddr)>,
    /// `--dns`: the nameservers, in place of the host's.
    pub dns: Vec<std::net::IpAddr>,
    /// `--dns-search`: the search domains, in place of the host's.
    pub dns_search: Vec<String>,
    /// `--dns-option`: resolver options (`ndots:2`), in place of the host's.
    pub dns_options: Vec<String>,
}
// ANCHOR_END: etc_options

/// The file beside a container's `hosts` that keeps its `--add-host` lines, so that stage 05,
/// which rewrites `hosts` as containers come and go, writes them again each time.
pub const EXTRA_HOSTS_FILE: &str = "hosts.extra";

/// Writes the container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` into `dir`.
pub fn write_etc_files(
    dir: &Path,
    hostname: &str,
    host_network: bool,
    options: &EtcOptions,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    let mut hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n".to_string()
    };
    let extra: String = options
        .extra_hosts
        .iter()
        .map(|(name, ip)| format!("{ip}\t{name}\n"))
        .collect();
    hosts.push_str(&extra);
    std::fs::write(dir.join("hosts"), hosts)?;
    if !extra.is_empty() {
        std::fs::write(dir.join(EXTRA_HOSTS_FILE), extra)?;
    }
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolved = std::fs::read_to_string(SYSTEMD_RESOLVED_CONF).unwrap_or_default();
    std::fs::write(
        dir.join("resolv.conf"),
        resolv_conf(&host, &resolved, host_network, options),
    )?;
    Ok(())
}

/// systemd-resolved's list of the real nameservers, behind the `127.0.0.53` stub it puts in
/// `/etc/resolv.conf`.
pub const SYSTEMD_RESOLVED_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// Docker's last resort when the host names no nameserver a container can reach.
const FALLBACK_SERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

// ANCHOR: resolv_conf
/// The container's resolv.conf (resolv.conf(5)): the host's, or with `--dns`, `--dns-search`
/// and `--dns-option`, those in place of the host's lines. Without the host's network, the
/// host's nameservers on its loopback are left out: the container's own loopback cannot reach
/// them. If that leaves none (a host with only systemd-resolved's stub), the servers behind the
/// stub (`resolved`, systemd-resolved's own file) are used, and without those Docker's
/// defaults: a container is never left with no nameserver at all.
fn resolv_conf(host: &str, resolved: &str, host_network: bool, options: &EtcOptions) -> String {
    let keep = |line: &&str, key: &str, replaced: bool| line.starts_with(key) && !replaced;
    let mut text = String::new();
    for line in host.lines() {
        let server = line.strip_prefix("nameserver").map(str::trim);
        let loopback = server.is_some_and(|s| s.starts_with("127.") || s == "::1");
        let is_server = server.is_some();
        let ours = keep(&line, "search", !options.dns_search.is_empty())
            || keep(&line, "options", !options.dns_options.is_empty())
            || (is_server && options.dns.is_empty() && (host_network || !loopback))
            || !(is_server || line.starts_with("search") || line.starts_with("options"));
        if ours {
            text.push_str(line);
            text.push('\n');
        }
    }
    for server in &options.dns {
        text.push_str(&format!("nameserver {server}\n"));
    }
    if !text.lines().any(|l| l.starts_with("nameserver")) {
        let behind_stub: Vec<&str> = resolved
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver").map(str::trim))
            .filter(|s| !(s.starts_with("127.") || *s == "::1"))
            .collect();
        let servers = if behind_stub.is_empty() {
            FALLBACK_SERVERS.to_vec()
        } else {
            behind_stub
        };
        for server in servers {
            text.push_str(&format!("nameserver {server}\n"));
        }
    }
    if !options.dns_search.is_empty() {
        text.push_str(&format!("search {}\n", options.dns_search.join(" ")));
    }
    if !options.dns_options.is_empty() {
        text.push_str(&format!("options {}\n", options.dns_options.join(" ")));
    }
    text
}
// ANCHOR_END: resolv_conf

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rootfs: &Path) -> FilesystemConfig {
        FilesystemConfig {
            rootfs: rootfs.to_path_buf(),
            etc_dir: PathBuf::from("/run/skiff-test/etc"),
            own_network: true,
            own_ipc: true,
            devices: Vec::new(),
            privileged: false,
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
                .any(|s| s.to_string() == "mount proc on /proc")
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
        assert_eq!(masked, MASKED_PATHS.len() + READONLY_PATHS.len());
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
    fn a_device_is_bound_below_dev_and_privileged_drops_the_masks() {
        let dir = std::env::temp_dir();
        let mut with_device = config(&dir);
        with_device.devices = vec![crate::devices::parse_device("/dev/null:/dev/a/b").unwrap()];
        let mut plan = Plan::default();
        Filesystem::new(with_device).prepare(&mut plan).unwrap();
        let names: Vec<String> = plan.early.iter().map(ToString::to_string).collect();
        // One step, resolved inside the root, that makes /dev/a as it goes (see `in_root`).
        assert!(
            names.iter().any(|n| n == "mount /dev/null on /dev/a/b"),
            "{names:#?}"
        );

        let mut privileged = config(&dir);
        privileged.privileged = true;
        let mut plan = Plan::default();
        Filesystem::new(privileged).prepare(&mut plan).unwrap();
        // Nothing masked, nothing made read-only: no step that depends on a path existing.
        assert!(!plan.early.iter().any(|s| matches!(s, Step::IfExists(_))));
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
        let host = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch lan\n";
        let text = resolv_conf(host, "", false, &EtcOptions::default());
        assert_eq!(text, "nameserver 10.0.0.2\nsearch lan\n");
        assert!(resolv_conf(host, "", true, &EtcOptions::default()).contains("127.0.0.53"));
        // Only the stub: the servers behind it, or Docker's defaults.
        let stub = "nameserver 127.0.0.53\nsearch lan\n";
        let resolved = "nameserver 127.0.0.1\nnameserver 192.0.2.53\n";
        assert_eq!(
            resolv_conf(stub, resolved, false, &EtcOptions::default()),
            "search lan\nnameserver 192.0.2.53\n"
        );
        assert!(
            resolv_conf(stub, "", false, &EtcOptions::default()).contains("nameserver 8.8.8.8\n")
        );
    }

    #[test]
    fn dns_flags_replace_the_hosts_lines() {
        let host = "# host\nnameserver 10.0.0.2\nsearch lan\noptions edns0\n";
        let options = EtcOptions {
            dns: vec!["192.0.2.53".parse().unwrap()],
            dns_search: vec!["example.test".into()],
            dns_options: Vec::new(),
            extra_hosts: Vec::new(),
        };
        assert_eq!(
            resolv_conf(host, "", false, &options),
            "# host\noptions edns0\nnameserver 192.0.2.53\nsearch example.test\n"
        );
    }
}
