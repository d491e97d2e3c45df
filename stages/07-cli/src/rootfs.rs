//! A container's file system, reached from the host, whether the container runs or not.
//!
//! A running container's files are where its first process sees them: `/proc/PID/root`
//! (proc(5)) is that process's root directory, seen through its own mount namespace, volumes
//! and all. `cp` goes there, as Docker's does. `export` wants the image's files and the
//! container's changes only, without volumes: the overlay that stage 04 mounted on the host,
//! at `<root>/containers/<id>/skiff-rootfs`.
//!
//! A stopped container has no process and no mounted overlay, but its writable layer (the
//! overlay's upper dir) is kept, next to the image's layers in the store. To read or change
//! it, skiff mounts the same overlay again with stage 04's [`images::overlay::Overlay`], in a
//! mount namespace of this process alone (unshare(2), `CLONE_NEWNS`): nobody else sees the
//! mount, and it cannot outlive the command, whatever happens to it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chroot::Feature;
use nix::mount::MsFlags;

use crate::beneath::Root;
use crate::container::Record;

/// Which view of the container's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// What its processes see, volumes included (`cp`).
    Process,
    /// The image's layers and the container's changes (`export`).
    Layers,
}

/// A container's root, open, and what was mounted to reach it.
pub struct ContainerFs {
    /// The root: every path in the container is resolved through it.
    pub root: Root,
    /// The overlay of a stopped container, mounted for this command; unmounted on drop.
    overlay: Option<images::overlay::Overlay>,
}

impl Drop for ContainerFs {
    fn drop(&mut self) {
        if let Some(overlay) = self.overlay.as_mut()
            && let Err(e) = overlay.cleanup()
        {
            eprintln!("warning: {e}");
        }
    }
}

// ANCHOR: open
/// Opens the file system of container `record` of the store at `root`.
pub fn open(root: &Path, record: &Record, view: View) -> anyhow::Result<ContainerFs> {
    let dir = crate::container::records(root).dir(&record.id);
    if record.state.is_running()
        && let Some(process) = record.state.pid
    {
        let path = match view {
            View::Process => PathBuf::from(format!("/proc/{}/root", process.pid)),
            View::Layers => images::overlay::rootfs_of(&dir),
        };
        let opened = Root::at(&path);
        // Checked after opening: if it is still the container's process, the root is its.
        if let Ok(opened) = opened
            && process.is_alive()
            && (view == View::Process || is_mount_point(&path))
        {
            return Ok(ContainerFs {
                root: opened,
                overlay: None,
            });
        }
    }
    if record.image_id.is_empty() {
        // `--rootfs DIR`: the directory itself is the container's root.
        let rootfs = &record.config.image;
        let opened = Root::at(Path::new(rootfs))
            .with_context(|| format!("open the container's root directory {rootfs}"))?;
        return Ok(ContainerFs {
            root: opened,
            overlay: None,
        });
    }
    let store = images::Store::open(root)?;
    let image: images::Digest = record.image_id.parse()?;
    let layers = store
        .layer_dirs(&image)
        .with_context(|| format!("find the layers of the container's image {image}"))?;
    private_mounts()?;
    let mut overlay = images::overlay::Overlay::new(&store, &image, layers, &dir, Vec::new());
    // Durable: the changes stay the container's.
    overlay.keep();
    overlay
        .prepare(&mut chroot::Plan::default())
        .context("mount the stopped container's file system")?;
    let merged = images::overlay::rootfs_of(&dir);
    let fs = ContainerFs {
        root: Root::at(&merged).with_context(|| format!("open {}", merged.display()))?,
        overlay: Some(overlay),
    };
    Ok(fs)
}
// ANCHOR_END: open

/// Moves this process into a mount namespace of its own, whose mounts propagate nowhere.
fn private_mounts() -> anyhow::Result<()> {
    // SAFETY: unshare takes flags only; it changes this (single-threaded) process's namespace.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    if rc != 0 {
        bail!(
            "make a mount namespace to mount the container's layers in: {}",
            std::io::Error::last_os_error()
        );
    }
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make this process's mounts private")?;
    Ok(())
}

/// `path` is where something is mounted: its device differs from its parent's.
fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = path.parent().unwrap_or(Path::new("/"));
    match (std::fs::metadata(path), std::fs::metadata(parent)) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    }
}

/// The container's user namespace mapping, for owners.
pub fn ids(record: &Record) -> crate::archive::Ids {
    let userns = record.spec.image_args().namespaces.userns.as_deref();
    crate::archive::Ids(
        namespaces::namespaces::IdMapping::parse(userns.unwrap_or("host"))
            .ok()
            .flatten(),
    )
}
