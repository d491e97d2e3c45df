//! Running an image: its layers stacked with overlayfs into the container's root.
//!
//! overlayfs shows several directories as one: read-only *lower* directories, stacked (an
//! image's layers, topmost first), and one writable *upper* directory. Reading a file finds it in
//! the topmost layer that has it; writing copies it up into the upper dir first (copy-on-write);
//! deleting leaves a *whiteout* in the upper dir that hides the lower file. So a container's
//! writes never touch the image, a second container of the same image sees it pristine, and the
//! upper dir holds exactly the container's changes, which `--commit` turns into a new layer.
//!
//! The mount is made on the host, under the container's state directory, so its path carries
//! `skiff`: `<root>/containers/<id>/skiff-rootfs`. See the kernel's
//! filesystems/overlayfs documentation and mount(8).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chroot::{Exit, Feature, FeatureError, Plan};
use namespaces::in_root::Root;
use nix::mount::{MntFlags, MsFlags};

use crate::digest::Digest;
use crate::reference::ImageRef;
use crate::store::Store;

/// The page the kernel copies mount options into: the `lowerdir=` list must fit.
const MAX_OPTIONS: usize = 4095;

/// Where the container's merged root is mounted, inside its state directory.
pub fn rootfs_of(container_dir: &Path) -> PathBuf {
    container_dir.join("skiff-rootfs")
}

/// What `--commit NAME[:TAG]` asked for, and what came of it.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// The tag for the new image, if any.
    pub tag: Option<ImageRef>,
    /// The history line ("skiff run --commit: sh -c ...").
    pub created_by: String,
    /// The history comment ("skiff run --commit"; none for a build step).
    pub comment: Option<String>,
    /// Commit even when the command failed, as `docker commit` does for any stopped container;
    /// a build step that fails makes no image.
    pub on_failure: bool,
    /// The image's runtime config, kept as the new image's.
    pub config: oci_spec::image::Config,
    /// Filled in when the container has exited: the new image id, or why there is none.
    pub outcome: Arc<Mutex<Option<Result<Digest, String>>>>,
}

/// The overlay feature: mount in `prepare`, commit in `exited`, unmount in `cleanup`.
pub struct Overlay {
    store: Store,
    image: Digest,
    lowers: Vec<PathBuf>,
    dir: PathBuf,
    make_dirs: Vec<String>,
    commit: Option<CommitRequest>,
    mounted: bool,
    keep: bool,
}

impl Overlay {
    /// Stacks `lowers`, the layer directories of `image` lowest first, for the container whose
    /// state directory is `dir`. `make_dirs` are directories to create in the container's root
    /// if the image lacks them (its WorkingDir, as Docker does).
    pub fn new(
        store: &Store,
        image: &Digest,
        lowers: Vec<PathBuf>,
        dir: &Path,
        make_dirs: Vec<String>,
    ) -> Self {
        Overlay {
            store: store.clone(),
            image: image.clone(),
            lowers,
            dir: dir.to_path_buf(),
            make_dirs,
            commit: None,
            mounted: false,
            keep: false,
        }
    }

    /// Turns the container's changes into a new image when it exits.
    pub fn commit_to(mut self, request: CommitRequest) -> Self {
        self.commit = Some(request);
        self
    }

    fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// The `mount -t overlay` options for `lowers` (lowest first) under `upper`: lower dirs
    /// topmost first.
    fn options(
        &self,
        lowers: &[PathBuf],
        upper: &Path,
        empty_lower: &Path,
    ) -> Result<String, FeatureError> {
        let lowers: Vec<String> = if lowers.is_empty() {
            vec![empty_lower.display().to_string()]
        } else {
            lowers
                .iter()
                .rev()
                .map(|p| p.display().to_string())
                .collect()
        };
        // Commas and colons separate options and layers: a path holding one would be misread.
        for path in lowers.iter().chain([&upper.display().to_string()]) {
            if path.contains([',', ':']) {
                return Err(FeatureError::msg(format!(
                    "overlay: the path {path} holds ',' or ':', which mount options cannot carry: use a --root without them"
                )));
            }
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={},redirect_dir=off,metacopy=off",
            lowers.join(":"),
            upper.display(),
            self.work().display()
        );
        if options.len() > MAX_OPTIONS {
            return Err(FeatureError::msg(format!(
                "overlay: {} layers make mount options of {} bytes, over the kernel's limit of {MAX_OPTIONS}: use a shorter --root or an image with fewer layers",
                self.lowers.len(),
                options.len()
            )));
        }
        Ok(options)
    }

    fn unmount(&mut self) -> Result<(), FeatureError> {
        if !self.mounted {
            return Ok(());
        }
        let merged = rootfs_of(&self.dir);
        nix::mount::umount2(&merged, MntFlags::empty())
            .or_else(|_| nix::mount::umount2(&merged, MntFlags::MNT_DETACH))
            .map_err(|e| FeatureError::with(format!("unmount {}", merged.display()), e))?;
        self.mounted = false;
        Ok(())
    }

    fn commit_changes(&mut self, request: &CommitRequest) -> Result<Digest, String> {
        self.unmount().map_err(|e| e.to_string())?;
        commit(&self.store, &self.dir, &self.image, request).map_err(|e| e.to_string())
    }
}

// ANCHOR: commit
/// Turns the changes of the container whose state directory is `dir` into a new image on top of
/// `image`: its writable layer (the overlay unmounted) becomes one more layer. What `--commit`
/// does when the container ends, in-process (stage 04) or from the record (stage 07).
pub fn commit(
    store: &Store,
    dir: &Path,
    image: &Digest,
    request: &CommitRequest,
) -> Result<Digest, crate::ImageError> {
    let upper = dir.join("upper");
    prune_mount_points(&upper);
    let history = crate::image::history_entry(&request.created_by, request.comment.as_deref());
    crate::image::create_image(
        store,
        Some(image),
        Some(&upper),
        request.config.clone(),
        history,
        request.tag.as_slice(),
    )
    .map(|created| created.id)
}
// ANCHOR_END: commit

impl Feature for Overlay {
    fn name(&self) -> &'static str {
        "overlay"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Image
    }

    // ANCHOR: mount
    fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
        let merged = rootfs_of(&self.dir);
        let empty = self.dir.join("empty");
        // The container's writes go to an upper dir of its own: the image's layers are only
        // ever read (copy-on-write).
        let (lowers, upper) = match self.lowers.split_last() {
            // The labs prove this defence: a debug build can be told to make the image's topmost
            // layer itself the upper dir, so that a container's writes change the image.
            Some((top, below)) if chroot::defence::disabled("overlay-cow") => (below, top.clone()),
            _ => (&self.lowers[..], self.upper()),
        };
        let mut dirs = vec![upper.clone(), self.work(), merged.clone()];
        // overlayfs needs at least one lower dir: an image without layers gets an empty one.
        if lowers.is_empty() {
            dirs.push(empty.clone());
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir)
                .map_err(|e| FeatureError::with(format!("create {}", dir.display()), e))?;
        }
        // The image a container uses, so `rmi` can refuse to delete it.
        let marker = self.dir.join("image");
        std::fs::write(&marker, self.image.to_string())
            .map_err(|e| FeatureError::with(format!("write {}", marker.display()), e))?;
        let options = self.options(lowers, &upper, &empty)?;
        let mount = |options: &str| {
            nix::mount::mount(
                Some("overlay"),
                &merged,
                Some("overlay"),
                MsFlags::empty(),
                Some(options),
            )
        };
        // `volatile` (Linux 5.10+) skips syncing the upper dir to disk at unmount, which saves
        // tens of milliseconds per container: right when the changes are thrown away or
        // committed at once, never needed after a crash. A container that outlives its command
        // (stage 07) keeps them for its next start, so it gets a durable overlay. Older kernels
        // refuse the option: mount without.
        let volatile = if self.keep { "" } else { ",volatile" };
        mount(&format!("{options}{volatile}"))
            .or_else(|_| mount(&options))
            .map_err(|e| FeatureError::with(format!("mount overlay on {}", merged.display()), e))?;
        self.mounted = true;
        // The WorkingDir is the image's word: `/../../../tmp/x` or a path through a symlink to
        // the host's /tmp must be made inside the root, never joined to it as a string.
        if !self.make_dirs.is_empty() {
            let root = Root::open(&merged)
                .map_err(|e| FeatureError::with(format!("open {}", merged.display()), e))?;
            for dir in &self.make_dirs {
                root.make_dirs(dir).map_err(|e| {
                    FeatureError::with(format!("create working directory {dir} in the image"), e)
                })?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: mount

    fn exited(&mut self, exit: &mut Exit) {
        let Some(request) = self.commit.clone() else {
            return;
        };
        if exit.code() != 0 && !request.on_failure {
            return;
        }
        let outcome = self.commit_changes(&request);
        match &outcome {
            Ok(id) => exit.notes.push(match &request.tag {
                Some(tag) => format!("committed {} as {}", id.short(), tag.familiar()),
                None => format!("committed {}", id.short()),
            }),
            Err(e) => exit.warnings.push(format!("commit: {e}")),
        }
        if let Ok(mut slot) = request.outcome.lock() {
            *slot = Some(outcome);
        }
    }

    fn keep(&mut self) {
        self.keep = true;
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        self.unmount()?;
        sweep(&self.dir, !self.keep)
    }
}

// ANCHOR: sweep
/// The overlay of the container whose state directory is `dir`, swept away: unmounted if it
/// is mounted, and with `remove` its writable layer deleted too (without, it stays for the
/// container's next start). Idempotent. The feature's cleanup ends with it, and stage 07's
/// `rm` calls it from the record alone, for a container whose engine died.
pub fn sweep(dir: &Path, remove: bool) -> Result<(), FeatureError> {
    unmount_of(dir)?;
    let merged = rootfs_of(dir);
    // What overlayfs itself put in the work dir, removed by name, which is cheaper than a
    // walk: work/work, and with `volatile` work/work/incompat/volatile/dirty.
    let work = dir.join("work");
    let volatile = work.join("work/incompat/volatile");
    let _ = std::fs::remove_file(volatile.join("dirty"));
    for dir in [
        volatile.clone(),
        work.join("work/incompat"),
        work.join("work"),
        work.join("index"),
    ] {
        let _ = std::fs::remove_dir(dir);
    }
    if !remove {
        // The changes stay for the next start; so does the image marker, which keeps the
        // image from being removed while a container of it exists.
        return Ok(());
    }
    // A walk only for what a container left in its upper dir.
    for dir in [dir.join("upper"), work, merged, dir.join("empty")] {
        remove_dir(&dir)?;
    }
    let _ = std::fs::remove_file(dir.join("image"));
    Ok(())
}
// ANCHOR_END: sweep

/// The overlay of the container whose state directory is `dir`, unmounted if it is mounted
/// (and its directories left where they are: a sweep that moves the state directory to the
/// trash deletes them later, with it).
pub fn unmount_of(dir: &Path) -> Result<(), FeatureError> {
    let merged = rootfs_of(dir);
    match nix::mount::umount2(&merged, MntFlags::empty()) {
        // Not mounted, or not there at all: nothing to undo.
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
        Err(_) => nix::mount::umount2(&merged, MntFlags::MNT_DETACH)
            .map_err(|e| FeatureError::with(format!("unmount {}", merged.display()), e)),
    }
}

/// Removes `dir`: at once when it is empty (the usual case), with everything in it otherwise.
fn remove_dir(dir: &Path) -> Result<(), FeatureError> {
    let removed = match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => std::fs::remove_dir_all(dir),
        other => other,
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(FeatureError::with(format!("remove {}", dir.display()), e))
        }
        _ => Ok(()),
    }
}

/// Removes from a container's changes what the engine itself created as mount points (empty
/// `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` files; empty `/proc`, `/sys`, `/dev`
/// directories), which are the engine's business, not the image's. Docker keeps these in a
/// separate "init" layer for the same reason.
pub fn prune_mount_points(upper: &Path) {
    use nix::fcntl::{AtFlags, OFlag};
    // The container may have made its /etc a symlink to a host directory: `etc` is opened
    // without following it, so the files removed are the upper dir's, never the host's.
    let etc = nix::fcntl::open(
        upper,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .and_then(|upper| {
        nix::fcntl::openat(
            &upper,
            "etc",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
    });
    if let Ok(etc) = etc {
        for file in ["hostname", "hosts", "resolv.conf"] {
            let empty = nix::sys::stat::fstatat(&etc, file, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_size == 0);
            if empty {
                let _ = nix::unistd::unlinkat(&etc, file, nix::unistd::UnlinkatFlags::NoRemoveDir);
            }
        }
    }
    // remove_dir only removes empty directories, which is exactly the condition.
    for dir in ["proc", "sys", "dev", "etc"] {
        let _ = std::fs::remove_dir(upper.join(dir));
    }
}

/// Reads a file of an image by its path inside, through the layers: the topmost layer that has
/// it wins, and a whiteout in a higher layer hides it (for `--user NAME` before the overlay
/// exists).
pub fn read_through(layers: &[PathBuf], path: &str) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    for layer in layers.iter().rev() {
        // Each layer is opened as a root: a symlinked `/etc` leads within the layer, never to
        // the host's.
        let Ok(root) = Root::open(layer) else {
            continue;
        };
        match root.metadata(path) {
            Ok(meta) if meta.file_type().is_char_device() => return None, // a whiteout
            Ok(meta) if meta.is_file() => return root.read_to_string(path).ok(),
            _ => continue,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topmost_layer_wins_and_whiteouts_hide() {
        let dir = tempfile::tempdir().unwrap();
        let (low, high) = (dir.path().join("low"), dir.path().join("high"));
        for layer in [&low, &high] {
            std::fs::create_dir_all(layer.join("etc")).unwrap();
        }
        std::fs::write(low.join("etc/passwd"), "low").unwrap();
        std::fs::write(low.join("etc/group"), "low group").unwrap();
        std::fs::write(high.join("etc/passwd"), "high").unwrap();
        let layers = vec![low, high];
        assert_eq!(read_through(&layers, "etc/passwd").as_deref(), Some("high"));
        assert_eq!(
            read_through(&layers, "etc/group").as_deref(),
            Some("low group")
        );
        assert_eq!(read_through(&layers, "etc/shadow"), None);
    }

    #[test]
    fn a_symlinked_etc_is_read_inside_its_layer() {
        // A layer whose /etc is a symlink to a host directory holding a passwd.
        let dir = tempfile::tempdir().unwrap();
        let (host, layer) = (dir.path().join("host"), dir.path().join("layer"));
        std::fs::create_dir_all(&host).unwrap();
        std::fs::create_dir_all(&layer).unwrap();
        std::fs::write(host.join("passwd"), "intruder:x:0:0::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(&host, layer.join("etc")).unwrap();
        assert_eq!(read_through(&[layer], "etc/passwd"), None);
    }

    #[test]
    fn pruning_never_follows_a_symlinked_etc() {
        // A container replaced its /etc with a link to a host directory holding an empty hosts.
        let dir = tempfile::tempdir().unwrap();
        let (host, upper) = (dir.path().join("host"), dir.path().join("upper"));
        std::fs::create_dir_all(&host).unwrap();
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::write(host.join("hosts"), "").unwrap();
        std::os::unix::fs::symlink(&host, upper.join("etc")).unwrap();
        prune_mount_points(&upper);
        assert!(host.join("hosts").exists());
    }

    #[test]
    fn mount_points_are_pruned_only_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let upper = dir.path();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::create_dir_all(upper.join("proc")).unwrap();
        std::fs::create_dir_all(upper.join("dev/keep")).unwrap();
        std::fs::write(upper.join("etc/hostname"), "").unwrap();
        std::fs::write(upper.join("etc/hosts"), "127.0.0.1 mine\n").unwrap();
        prune_mount_points(upper);
        assert!(!upper.join("etc/hostname").exists());
        assert!(upper.join("etc/hosts").exists());
        assert!(!upper.join("proc").exists());
        assert!(upper.join("dev/keep").exists());
    }
}
