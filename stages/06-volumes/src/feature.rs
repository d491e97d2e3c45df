//! The volumes feature: how stage 06 plugs into the launch sequence.
//!
//! ```text
//!  prepare   for each mount, shallowest target first:
//!              a volume: attach it in the store (made on first use); a new one gets the image's
//!                        files at the target copied in, unless nocopy
//!              a bind:   check the host path (`-v` creates a missing directory)
//!            then one child step each: open the target inside the root, mount onto it
//!  (child)   the steps run after stage 02's mounts, before pivot_root, in the container's own
//!            mount namespace: the host never sees these mounts, and they vanish with it
//!  cleanup   detach from the volumes (unless the container outlives its command, stage 07);
//!            an anonymous volume of a --rm container is removed
//! ```
//!
//! No mount is made on the host, so nothing can be left behind there: the kernel drops the
//! container's mount namespace, and its mounts with it, when its last process exits.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chroot::plan::cstr;
use chroot::{Feature, FeatureError, Plan, Step};
use nix::mount::MsFlags;

use crate::spec::{MountSpec, Source};
use crate::store;
use namespaces::in_root::{Create, MountInRoot, MountSource, Root};

fn err(e: impl std::fmt::Display) -> FeatureError {
    FeatureError::msg(e.to_string())
}

/// The mounts of one container.
pub struct VolumesFeature {
    /// The store root (`--root`).
    root: PathBuf,
    /// The container's id.
    container_id: String,
    /// What to mount, shallowest target first.
    specs: Vec<MountSpec>,
    /// `--rm`: anonymous volumes go with the container.
    remove_anonymous: bool,
    /// The container outlives its command (stage 07): it keeps its volumes until removed.
    keep: bool,
    /// Some volume was attached.
    attached: bool,
    /// Volume directories held open for a child in a user namespace, which cannot walk the
    /// private store (see [`namespaces::private::HeldDir`]).
    held: Vec<namespaces::private::HeldDir>,
}

impl VolumesFeature {
    /// The feature for container `container_id` of the store at `root`.
    pub fn new(
        root: &Path,
        container_id: &str,
        specs: Vec<MountSpec>,
        remove_anonymous: bool,
    ) -> Self {
        VolumesFeature {
            root: root.to_path_buf(),
            container_id: container_id.to_string(),
            specs,
            remove_anonymous,
            keep: false,
            attached: false,
            held: Vec::new(),
        }
    }
}

// ANCHOR: nodev
/// The remount that follows a bind mount of a volume or a host directory: always `nodev`,
/// read-only with `:ro`, keeping what the source's mount locks. Root in the container keeps
/// `CAP_MKNOD`, and a volume or a bind is a filesystem it can write: without `nodev`, a node
/// made there with a host disk's numbers would open (stage 03's devices cgroup is the other
/// wall). Docker relies on the cgroup alone; skiff keeps both, and no flag lifts this one
/// (a container that needs a device gets it with `--device`).
fn bind_remount(spec: &MountSpec, source: &Path) -> Option<MsFlags> {
    // All of the source's flags, atime ones too: a user namespace locks them all.
    let mut flags = namespaces::filesystem::current_flags(source);
    // `nodev-volumes` is a defence the labs prove: a debug build can be told to go without it.
    if !chroot::defence::disabled("nodev-volumes") {
        flags |= MsFlags::MS_NODEV;
    }
    if spec.readonly {
        flags |= MsFlags::MS_RDONLY;
    }
    (!flags.is_empty()).then_some(flags)
}
// ANCHOR_END: nodev

/// The volume directory `dir` as the child can name it: itself, or, for a child in a user
/// namespace (which cannot walk the private store), `/proc/self/fd/N` of the directory held
/// open (kept in `held` until the child has started).
fn reachable(
    plan: &mut Plan,
    dir: PathBuf,
    held: &mut Vec<namespaces::private::HeldDir>,
) -> Result<PathBuf, FeatureError> {
    if !plan.user_namespace || !namespaces::private::enabled() {
        return Ok(dir);
    }
    let dir_held = namespaces::private::HeldDir::hold(plan, &dir)
        .map_err(|e| err(format!("open volume directory {}: {e}", dir.display())))?;
    let via = dir_held.via().to_path_buf();
    held.push(dir_held);
    Ok(via)
}

// ANCHOR: mount_step
/// The child's step for one mount onto `spec.target` inside `root` (stage 02's
/// [`MountInRoot`]: the target opened inside the root, made if missing, mounted on by
/// descriptor). `volume_dir` is the volume's directory, for a volume.
pub fn mount_step(
    root: &Root,
    spec: &MountSpec,
    volume_dir: Option<&Path>,
) -> Result<MountInRoot, FeatureError> {
    let resolve = |e: std::io::Error| {
        FeatureError::with(format!("resolve {} inside the root", spec.target), e)
    };
    let host = |source: &Path| cstr(source).map(MountSource::Host).map_err(err);
    let bind = |source: &Path, file: bool| -> Result<MountInRoot, FeatureError> {
        let create = if file {
            Create::File
        } else {
            Create::Dirs(0o755)
        };
        // Recursive, as Docker's binds are: mounts under the source come along.
        let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
        let step = MountInRoot::new(root, &spec.target, create, host(source)?, None, flags, None)
            .map_err(resolve)?;
        Ok(match bind_remount(spec, source) {
            Some(flags) => step.remounted(flags),
            None => step,
        })
    };
    match (&spec.source, volume_dir) {
        (Source::Volume(_), Some(dir)) => bind(dir, false),
        (Source::Volume(_), None) => Err(FeatureError::msg(format!(
            "volume for {} has no directory",
            spec.target
        ))),
        (Source::Bind(path), _) => {
            let file = fs::metadata(path).is_ok_and(|m| !m.is_dir());
            bind(path, file)
        }
        (Source::Tmpfs(options), _) => {
            let mut flags = spec.flags;
            if chroot::defence::disabled("nodev-volumes") {
                flags.remove(MsFlags::MS_NODEV);
            }
            if spec.readonly {
                flags |= MsFlags::MS_RDONLY;
            }
            let data = (!options.is_empty()).then_some(options.as_str());
            MountInRoot::new(
                root,
                &spec.target,
                Create::Dirs(0o755),
                host(Path::new("tmpfs"))?,
                Some("tmpfs"),
                flags,
                data,
            )
            .map_err(resolve)
        }
    }
}
// ANCHOR_END: mount_step

impl Feature for VolumesFeature {
    fn name(&self) -> &'static str {
        "volumes"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Volumes
    }

    // ANCHOR: prepare
    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let rootfs = plan.rootfs.clone();
        let root =
            match self.specs.is_empty() {
                true => None,
                false => Some(Root::open(&rootfs).map_err(|e| {
                    FeatureError::with(format!("open rootfs {}", rootfs.display()), e)
                })?),
            };
        let mut steps = Vec::new();
        for spec in &self.specs {
            let volume_dir = match &spec.source {
                Source::Volume(name) => {
                    let (volume, new) = store::attach(
                        &self.root,
                        name.as_deref(),
                        &self.container_id,
                        &spec.target,
                    )
                    .map_err(err)?;
                    self.attached = true;
                    if new && !spec.nocopy {
                        copy_up(&rootfs, &spec.target, &volume.mountpoint).map_err(|e| {
                            err(format!(
                                "copy the image's {} into volume {}: {e}",
                                spec.target, volume.name
                            ))
                        })?;
                    }
                    Some(reachable(plan, volume.mountpoint, &mut self.held)?)
                }
                Source::Bind(path) => {
                    if fs::symlink_metadata(path).is_err() {
                        if !spec.create_source {
                            return Err(err(format!(
                                "bind source path does not exist: {}",
                                path.display()
                            )));
                        }
                        // Docker's -v makes a missing host directory; --mount refuses.
                        fs::create_dir_all(path).map_err(|e| {
                            err(format!("create bind source {}: {e}", path.display()))
                        })?;
                    }
                    None
                }
                Source::Tmpfs(_) => None,
            };
            let root = root
                .as_ref()
                .ok_or_else(|| err("no rootfs to mount into"))?;
            let step = mount_step(root, spec, volume_dir.as_deref())?;
            steps.push(Step::Custom(Arc::new(step)));
        }
        // After stage 02's mounts, in the same list: at once without a user namespace, after
        // the go-ahead (the id maps) with one.
        plan.root_setup().extend(steps);
        Ok(())
    }
    // ANCHOR_END: prepare

    fn keep(&mut self) {
        self.keep = true;
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        // A container that outlives its command keeps its volumes, as a stopped Docker
        // container does: `volume rm` refuses them until the container is removed.
        if self.keep || !self.attached {
            return Ok(());
        }
        store::detach_all(&self.root, &self.container_id, self.remove_anonymous)
            .map(drop)
            .map_err(|e| err(format!("detach volumes: {e}")))
    }
}

// ANCHOR: sweep
/// Stage 06's part of sweeping a container away (see [`namespaces::sweep`]): when it is
/// removed, its hold on volumes (and its anonymous ones with `anonymous_volumes`); then stage
/// 05's part. Returns what could not be undone.
pub fn sweep(sweep: &namespaces::Sweep<'_>) -> Vec<String> {
    chroot::timeline::mark("sweep: volumes");
    let mut left = Vec::new();
    if sweep.remove
        && let Err(e) = store::detach_all(sweep.root, sweep.id, sweep.anonymous_volumes)
    {
        left.push(format!("detach volumes: {e}"));
    }
    left.extend(networking::feature::sweep(sweep));
    left
}
// ANCHOR_END: sweep

// ANCHOR: copy_up
/// A new volume mounted where the image has files starts with a copy of them, as in Docker:
/// `-v data:/etc` shows the image's `/etc`, and the copy is the volume's from then on. The
/// target is opened with openat2(2) inside the root, like the mount itself, so an image's
/// symlink cannot make skiff copy the host's files.
pub fn copy_up(rootfs: &Path, target: &str, volume: &Path) -> std::io::Result<()> {
    if rootfs.as_os_str().is_empty() {
        return Ok(());
    }
    let dir = match Root::open(rootfs)?.open_dir(target) {
        Ok(fd) => fd,
        // Nothing there (or not a directory): nothing to copy.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => return Ok(()),
        Err(e) => return Err(e),
    };
    use std::os::fd::AsRawFd;
    let source = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    // The volume's root takes the owner and mode of the directory it covers.
    let meta = fs::metadata(&source)?;
    std::os::unix::fs::chown(volume, Some(meta.uid()), Some(meta.gid()))?;
    fs::set_permissions(volume, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    copy_tree(&source, volume)
}

/// Copies the content of `from` into `to`: directories, files, symlinks (as links), device
/// nodes and fifos, with owners, modes and modification times. Never follows a symlink.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&source)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&dest)?;
            copy_tree(&source, &dest)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &dest)?;
        } else if kind.is_file() {
            fs::copy(&source, &dest)?;
        } else {
            let mode = nix::sys::stat::Mode::from_bits_truncate(meta.mode() & 0o7777);
            let sflag = nix::sys::stat::SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT);
            nix::sys::stat::mknod(&dest, sflag, mode, meta.rdev())?;
        }
        std::os::unix::fs::lchown(&dest, Some(meta.uid()), Some(meta.gid()))?;
        if !kind.is_symlink() {
            fs::set_permissions(&dest, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        let times = [
            nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec()),
            nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
        ];
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &dest,
            &times[0],
            &times[1],
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )?;
    }
    Ok(())
}
// ANCHOR_END: copy_up

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_volume;

    #[test]
    fn steps_name_the_target_and_bind_recursively() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let spec = parse_volume("/etc:/host/etc:ro").unwrap();
        let step = mount_step(&root, &spec, None).unwrap();
        assert_eq!(step.to_string(), "mount /etc on /host/etc");
        assert_eq!(step.target.text(), "/host/etc");
        assert!(step.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC));
        let remount = step.remount.unwrap();
        assert!(
            remount.contains(MsFlags::MS_RDONLY | MsFlags::MS_NODEV),
            "{remount:?}"
        );
        assert_eq!(step.create, Create::Dirs(0o755));
        // Writable binds and volumes are remounted too: nodev.
        let rw = mount_step(&root, &parse_volume("/etc:/e").unwrap(), None).unwrap();
        let remount = rw.remount.unwrap();
        assert!(remount.contains(MsFlags::MS_NODEV), "{remount:?}");
        assert!(!remount.contains(MsFlags::MS_RDONLY), "{remount:?}");
        let file = mount_step(&root, &parse_volume("/etc/hostname:/h").unwrap(), None);
        assert_eq!(file.unwrap().create, Create::File);
    }

    #[test]
    fn a_child_in_a_user_namespace_reaches_its_volume_through_a_descriptor() {
        let root = tempfile::tempdir().unwrap();
        let mut feature = VolumesFeature::new(
            root.path(),
            "c0ffee",
            vec![parse_volume("data:/srv").unwrap()],
            true,
        );
        let rootfs = tempfile::tempdir().unwrap();
        let mut plan = Plan {
            user_namespace: true,
            rootfs: rootfs.path().to_path_buf(),
            ..Plan::default()
        };
        feature.prepare(&mut plan).unwrap();
        // The private store is out of the remapped root's reach: the parent holds the volume
        // open, the child opens it again first of all, and mounts it by its descriptor.
        let fd = feature.held[0].fd();
        let data = root.path().join("volumes/data/_data");
        assert_eq!(
            plan.early[0].to_string(),
            format!("open {} as descriptor {fd}", data.display())
        );
        assert_eq!(
            plan.before_root[0].to_string(),
            format!("mount /proc/self/fd/{fd} on /srv")
        );
        // Without a user namespace, the path itself.
        let mut plan = Plan {
            rootfs: rootfs.path().to_path_buf(),
            ..Plan::default()
        };
        let mut feature = VolumesFeature::new(
            root.path(),
            "c0ffee",
            vec![parse_volume("data:/srv").unwrap()],
            true,
        );
        feature.prepare(&mut plan).unwrap();
        assert!(feature.held.is_empty());
        assert_eq!(
            plan.early[0].to_string(),
            format!("mount {} on /srv", data.display())
        );
        feature.cleanup().unwrap();
    }

    #[test]
    fn copy_up_copies_the_image_and_never_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let volume = dir.path().join("volume");
        fs::create_dir_all(root.join("srv/sub")).unwrap();
        fs::create_dir_all(&volume).unwrap();
        fs::write(root.join("srv/sub/file"), "hello").unwrap();
        fs::set_permissions(root.join("srv/sub/file"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("srv/link")).unwrap();
        copy_up(&root, "/srv", &volume).unwrap();
        assert_eq!(
            fs::read_to_string(volume.join("sub/file")).unwrap(),
            "hello"
        );
        let mode = fs::metadata(volume.join("sub/file")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            fs::read_link(volume.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );

        // An image whose /data is a symlink to the host's /etc: resolved inside the root, it
        // leads to the image's /etc, which does not exist, so nothing is copied.
        std::os::unix::fs::symlink("/etc", root.join("data")).unwrap();
        let other = dir.path().join("other");
        fs::create_dir_all(&other).unwrap();
        copy_up(&root, "/data", &other).unwrap();
        assert_eq!(fs::read_dir(&other).unwrap().count(), 0);
        copy_up(&root, "/nothing/here", &other).unwrap();
    }
}
