//! The bundle's root and `mounts`, in the order config.json lists them (runtime-spec config.md,
//! "Mounts"; mount(8) for the options).
//!
//! Stage 02 decides the mounts itself (Docker's `/proc`, `/sys`, `/dev`); an OCI runtime is told
//! them. The same building blocks do the work: every target is resolved *inside* the root by
//! stage 02's [`MountInRoot`] (a `destination` is a path of the image's, whose symlinks must
//! not lead out), and the root is entered with stage 02's [`pivot_into`].
//!
//! 1. every mount made private; the root bound onto itself;
//! 2. each of `mounts`, with its options split into `MS_*` flags and filesystem data; bind
//!    mounts are remounted for `ro`, `nosuid`, `nodev`, `noexec` (a bind takes no flags);
//! 3. the default devices the spec requires when `/dev` is a fresh tmpfs, then `linux.devices`;
//! 4. `linux.maskedPaths` (`/dev/null` over a file, a read-only tmpfs over a directory) and
//!    `linux.readonlyPaths`;
//! 5. pivot_root, then `root.readonly`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chroot::plan::cstr;
use chroot::{Feature, FeatureError, Plan, Slot, Step};
use namespaces::filesystem::{DEVICES, current_flags, pivot_into};
use namespaces::in_root::{Create, MountInRoot, MountSource, NodeInRoot, Root, SymlinkInRoot};
use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

use crate::config::ConfigError;

/// One entry of `mounts`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciMount {
    /// Where, inside the container.
    pub destination: String,
    /// The filesystem type; `None` for a bind mount.
    pub fstype: Option<String>,
    /// What to mount: a host path for a bind mount, a name otherwise.
    pub source: Option<PathBuf>,
    /// The `MS_*` flags of the mount call.
    pub flags: MsFlags,
    /// For a bind mount: the flags of the remount that makes it read-only, nosuid...
    pub remount: MsFlags,
    /// The options that are the filesystem's own (`mode=755,size=65536k`).
    pub data: Option<String>,
}

// ANCHOR: options
/// Splits mount(8) options into flags and filesystem data. A bind mount's flags go to the
/// remount that follows it. Propagation options are refused: every mount here stays private.
pub fn parse_options(
    fstype: Option<&str>,
    options: &[String],
) -> Result<(MsFlags, MsFlags, Option<String>), String> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut bind = fstype == Some("bind");
    for option in options {
        let (set, clear) = match option.as_str() {
            "bind" => {
                bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "defaults" | "private" | "rprivate" => (MsFlags::empty(), MsFlags::empty()),
            "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                return Err(format!(
                    "mount propagation {option:?} is not supported: mounts stay private"
                ));
            }
            other => {
                data.push(other.to_string());
                (MsFlags::empty(), MsFlags::empty())
            }
        };
        flags = (flags | set) & !clear;
    }
    if bind {
        if !data.is_empty() {
            return Err(format!(
                "a bind mount takes no filesystem options ({})",
                data.join(",")
            ));
        }
        let remount = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
        return Ok((
            flags & (MsFlags::MS_BIND | MsFlags::MS_REC) | MsFlags::MS_BIND,
            remount,
            None,
        ));
    }
    let data = (!data.is_empty()).then(|| data.join(","));
    Ok((flags, MsFlags::empty(), data))
}
// ANCHOR_END: options

/// The root filesystem feature of an OCI bundle.
pub struct OciFilesystem {
    rootfs: PathBuf,
    readonly: bool,
    mounts: Vec<OciMount>,
    masked: Vec<String>,
    readonly_paths: Vec<String>,
    cgroup_view: bool,
    devices: Vec<OciDevice>,
}

/// One entry of `linux.devices`: a node the container's `/dev` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciDevice {
    /// Its path inside the container.
    pub path: String,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO` and the permission bits.
    pub mode: libc::mode_t,
    /// makedev(major, minor).
    pub dev: libc::dev_t,
    /// Owner and group, as the container's ids.
    pub owner: (libc::uid_t, libc::gid_t),
}

// ANCHOR: devices
/// `linux.devices`, checked: a type runc knows (`c`, `u`, `b`, `p`), an absolute path under
/// `/dev`, numbers for a device.
fn oci_devices(list: &[oci_spec::runtime::LinuxDevice]) -> Result<Vec<OciDevice>, ConfigError> {
    use oci_spec::runtime::LinuxDeviceType;
    list.iter()
        .enumerate()
        .map(|(index, d)| {
            let field = format!("linux.devices[{index}]");
            let invalid = |reason: String| ConfigError::Invalid {
                field: field.clone(),
                reason,
            };
            let path = d.path().display().to_string();
            if !path.starts_with("/dev/") {
                return Err(invalid(format!("{path:?} is not a path under /dev")));
            }
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
                LinuxDeviceType::B => libc::S_IFBLK,
                LinuxDeviceType::P => libc::S_IFIFO,
                other => return Err(invalid(format!("type {other:?} is not a device"))),
            };
            let numbers = u32::try_from(d.major())
                .ok()
                .zip(u32::try_from(d.minor()).ok());
            let dev = match (kind, numbers) {
                (libc::S_IFIFO, _) => 0,
                (_, Some((major, minor))) => libc::makedev(major, minor),
                (_, None) => return Err(invalid("a device needs its major and minor".into())),
            };
            Ok(OciDevice {
                path,
                mode: kind | d.file_mode().unwrap_or(0o666) & 0o7777,
                dev,
                owner: (d.uid().unwrap_or(0), d.gid().unwrap_or(0)),
            })
        })
        .collect()
}
// ANCHOR_END: devices

impl OciFilesystem {
    /// Reads and checks the root, `mounts` and the masked and read-only paths of `spec`.
    pub fn new(spec: &Spec, rootfs: &Path, bundle: &Path) -> Result<Self, ConfigError> {
        let invalid = |field: String, reason: String| ConfigError::Invalid { field, reason };
        let mut mounts = Vec::new();
        let mut cgroup_view = false;
        for (index, mount) in spec.mounts().iter().flatten().enumerate() {
            let field = format!("mounts[{index}]");
            let destination = mount.destination().display().to_string();
            if !destination.starts_with('/') {
                return Err(invalid(
                    field,
                    format!("destination {destination:?} must be absolute"),
                ));
            }
            let fstype = mount.typ().as_deref().filter(|t| !t.is_empty());
            if fstype == Some("cgroup") {
                // Stage 03 gives the container a read-only view of its own cgroup there.
                if destination != "/sys/fs/cgroup" {
                    return Err(ConfigError::Unsupported {
                        field: format!("{field}: a cgroup mount on {destination}"),
                    });
                }
                cgroup_view = true;
                continue;
            }
            let options = mount.options().clone().unwrap_or_default();
            let (flags, remount, data) =
                parse_options(fstype, &options).map_err(|reason| invalid(field.clone(), reason))?;
            let bind = flags.contains(MsFlags::MS_BIND);
            let source = mount.source().clone().map(|s| {
                if bind && s.is_relative() {
                    bundle.join(s)
                } else {
                    s
                }
            });
            if bind && source.is_none() {
                return Err(invalid(field, "a bind mount needs a source".to_string()));
            }
            mounts.push(OciMount {
                destination,
                fstype: (!bind).then(|| fstype.unwrap_or("none").to_string()),
                source,
                flags,
                remount,
                data,
            });
        }
        let linux = spec.linux().as_ref();
        let root = spec.root().as_ref();
        Ok(OciFilesystem {
            rootfs: rootfs.to_path_buf(),
            readonly: root.and_then(|r| r.readonly()).unwrap_or(false),
            mounts,
            masked: linux
                .and_then(|l| l.masked_paths().clone())
                .unwrap_or_default(),
            readonly_paths: linux
                .and_then(|l| l.readonly_paths().clone())
                .unwrap_or_default(),
            cgroup_view,
            devices: oci_devices(
                linux
                    .and_then(|l| l.devices().as_deref())
                    .unwrap_or_default(),
            )?,
        })
    }

    /// Whether `mounts` asks for a cgroup filesystem at `/sys/fs/cgroup`.
    pub fn wants_cgroup_view(&self) -> bool {
        self.cgroup_view
    }
}

fn err(e: impl std::fmt::Display) -> FeatureError {
    FeatureError::msg(e.to_string())
}

fn custom(step: impl chroot::ChildStep + 'static) -> Step {
    Step::Custom(Arc::new(step))
}

impl Feature for OciFilesystem {
    fn name(&self) -> &'static str {
        "bundle filesystem"
    }

    fn slot(&self) -> Slot {
        Slot::Root
    }

    // ANCHOR: prepare
    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let rootfs = &self.rootfs;
        chroot::root::check_rootfs(rootfs).map_err(err)?;
        plan.rootfs = rootfs.clone();
        let steps = plan.root_setup();
        // 1. Nothing propagates to the host; the root becomes a mount point.
        steps.push(Step::Mount {
            source: None,
            target: cstr("/").map_err(err)?,
            fstype: None,
            flags: MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            data: None,
        });
        steps.push(Step::Mount {
            source: Some(cstr(rootfs).map_err(err)?),
            target: cstr(rootfs).map_err(err)?,
            fstype: None,
            flags: MsFlags::MS_BIND | MsFlags::MS_REC,
            data: None,
        });
        let root = &Root::open(rootfs)
            .map_err(|e| FeatureError::with(format!("open rootfs {}", rootfs.display()), e))?;
        // 2. The mounts, in order, each target resolved inside the root.
        for m in &self.mounts {
            let bind = m.fstype.is_none();
            let (source, create) = if bind {
                let source = m.source.as_deref().unwrap_or(Path::new("/"));
                let create = if source.is_dir() {
                    Create::Dirs(0o755)
                } else {
                    Create::File
                };
                (MountSource::Host(cstr(source).map_err(err)?), create)
            } else {
                let name = m.source.as_deref().map_or_else(
                    || m.fstype.clone().unwrap_or_default(),
                    |s| s.display().to_string(),
                );
                (
                    MountSource::Host(cstr(name).map_err(err)?),
                    Create::Dirs(0o755),
                )
            };
            let mut step = MountInRoot::new(
                root,
                &m.destination,
                create,
                source,
                m.fstype.as_deref(),
                m.flags,
                m.data.as_deref(),
            )
            .map_err(|e| {
                FeatureError::with(format!("resolve {} inside the root", m.destination), e)
            })?;
            if bind && !m.remount.is_empty() {
                step = step.remounted(
                    m.remount | current_flags(m.source.as_deref().unwrap_or(Path::new("/"))),
                );
            }
            steps.push(custom(step));
            // 3. A fresh /dev gets the devices every container has (config.md, "Default
            // Devices"), bound from the host's, and the /dev/fd links.
            if m.destination == "/dev" {
                default_devices(root, steps)?;
            }
        }
        // 3b. linux.devices: each node made with mknod(2) where the runtime may (the host's
        // user namespace), else the host's node of that path bound there, as runc does.
        for device in &self.devices {
            steps.push(custom(device_step(root, device)?));
        }
        // 4. Masked and read-only paths.
        for path in &self.masked {
            let resolve =
                |e| FeatureError::with(format!("resolve masked path {path} inside the root"), e);
            let file = MountInRoot::new(
                root,
                path,
                Create::Nothing,
                host("/dev/null")?,
                None,
                MsFlags::MS_BIND,
                None,
            )
            .map_err(resolve)?;
            let dir = MountInRoot::new(
                root,
                path,
                Create::Nothing,
                host("tmpfs")?,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )
            .map_err(resolve)?;
            steps.push(Step::IfExists(Box::new(custom(MaskPath { file, dir }))));
        }
        let (nosuid, nodev, noexec) = (MsFlags::MS_NOSUID, MsFlags::MS_NODEV, MsFlags::MS_NOEXEC);
        for path in &self.readonly_paths {
            let step = MountInRoot::new(
                root,
                path,
                Create::Nothing,
                MountSource::Itself,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(|e| {
                FeatureError::with(format!("resolve read-only path {path} inside the root"), e)
            })?
            .read_only(nosuid | nodev | noexec);
            steps.push(Step::IfExists(Box::new(custom(step))));
        }
        // 5. Into the root; then, if asked, the root itself read-only.
        plan.change_root.extend(pivot_into(rootfs)?);
        if self.readonly {
            plan.change_root.push(Step::Mount {
                source: None,
                target: cstr("/").map_err(err)?,
                fstype: None,
                flags: MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | current_flags(rootfs),
                data: None,
            });
        }
        Ok(())
    }
    // ANCHOR_END: prepare
}

fn host(path: &str) -> Result<MountSource, FeatureError> {
    cstr(path).map(MountSource::Host).map_err(err)
}

/// The step that gives the container `device`.
fn device_step(root: &Root, device: &OciDevice) -> Result<DeviceNode, FeatureError> {
    let resolve = |e| FeatureError::with(format!("resolve {} inside the root", device.path), e);
    let node = NodeInRoot::new(root, &device.path, device.mode, device.dev, device.owner)
        .map_err(resolve)?;
    let bind = MountInRoot::new(
        root,
        &device.path,
        Create::File,
        host(&device.path)?,
        None,
        MsFlags::MS_BIND,
        None,
    )
    .map_err(resolve)?;
    Ok(DeviceNode { node, bind })
}

/// A `linux.devices` node: made, or in a user namespace (where mknod(2) is `EPERM`) bound from
/// the host.
#[derive(Debug)]
struct DeviceNode {
    node: NodeInRoot,
    bind: MountInRoot,
}

impl chroot::ChildStep for DeviceNode {
    fn run(&self) -> Result<(), Errno> {
        match self.node.run() {
            Err(Errno::EPERM) => self.bind.run(),
            other => other,
        }
    }

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        self.node.hint(errno)
    }
}

impl std::fmt::Display for DeviceNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.node.fmt(f)
    }
}

/// The spec's default devices and links, into a fresh `/dev`.
fn default_devices(root: &Root, steps: &mut Vec<Step>) -> Result<(), FeatureError> {
    for device in DEVICES {
        let target = format!("/dev/{device}");
        let step = MountInRoot::new(
            root,
            &target,
            Create::File,
            host(&target)?,
            None,
            MsFlags::MS_BIND,
            None,
        )
        .map_err(|e| FeatureError::with(format!("resolve {target} inside the root"), e))?;
        steps.push(custom(step));
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/ptmx", "pts/ptmx"),
    ] {
        let step = SymlinkInRoot::new(root, link, target)
            .map_err(|e| FeatureError::with(format!("resolve {link} inside the root"), e))?;
        steps.push(custom(step));
    }
    Ok(())
}

/// A masked path: `/dev/null` bound over a file, or, when the path is a directory (the bind
/// fails with `ENOTDIR`), an empty read-only tmpfs over it. runc decides the same way.
#[derive(Debug)]
struct MaskPath {
    file: MountInRoot,
    dir: MountInRoot,
}

impl chroot::ChildStep for MaskPath {
    fn run(&self) -> Result<(), Errno> {
        match self.file.run() {
            Err(Errno::ENOTDIR) => self.dir.run(),
            other => other,
        }
    }
}

impl std::fmt::Display for MaskPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mask {}", self.file.target.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let (flags, remount, data) = parse_options(
            Some("tmpfs"),
            &opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
        )
        .unwrap();
        assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert!(remount.is_empty());
        assert_eq!(data.as_deref(), Some("mode=755,size=65536k"));
    }

    #[test]
    fn a_bind_mount_is_remounted_for_its_flags() {
        let (flags, remount, data) =
            parse_options(None, &opts(&["rbind", "ro", "nosuid"])).unwrap();
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(remount, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(data, None);
        assert!(parse_options(None, &opts(&["bind", "rshared"])).is_err());
    }
}
