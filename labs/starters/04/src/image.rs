//! Stage 04's idea, yours to write: images. A store of content-addressed layers, images loaded
//! into it, and a container's root made of an image's layers by overlayfs. Fill the pieces in
//! this order, running the check named in each after it (book: chapter 4, "Build it yourself"):
//!
//! 1. [`load`]           — nothing to see yet: `images` is next
//! 2. [`list`]           — `labs check 04 --bin ./target/debug/my-skiff-04 load-and-list`
//! 3. [`find`]           — nothing runs yet: the overlay is next
//! 4. [`mount_overlay`]  — `... run-an-image`, `... every-layer-is-visible`, `... whiteout`
//! 5. [`unmount`]        — `... writes-never-reach-the-image`, `... nothing-left-on-host`
//!
//! Lab 04 checks more than these five (hostile tarballs, `save`, `build`, `commit`, a registry):
//! the chapter takes them one at a time. overlayfs: mount(8), the kernel's overlayfs.rst.
// Until a piece is written its arguments go unused.
#![allow(unused_variables, dead_code)]

use std::path::{Path, PathBuf};

/// An image, as `run` needs it.
#[derive(Debug, Default)]
pub struct Image {
    /// Its layers, unpacked, lowest first.
    pub layers: Vec<PathBuf>,
    /// Its config's `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// Its config's `Cmd`: the command when `run` names none.
    pub cmd: Vec<String>,
    /// Its config's `Env`, `KEY=VALUE` each.
    pub env: Vec<String>,
    /// Its config's `WorkingDir`, if any.
    pub workdir: Option<String>,
}

/// One line of `images`.
#[derive(Debug)]
pub struct Listed {
    /// `skiff-lab`.
    pub repository: String,
    /// `latest`.
    pub tag: String,
    /// The first 12 hex digits of the config's digest.
    pub id: String,
    /// When it was made, as people say it (`2 days ago`).
    pub created: String,
    /// How big its layers are (`4.2MB`).
    pub size: String,
}

/// Reads a docker-archive (what `docker save` writes: `manifest.json`, a config and one tarball
/// per layer) into the store under `store`: each blob under its sha256 digest, each layer
/// unpacked once, each name pointing at its image. Returns the names loaded (`skiff-lab:latest`).
///
/// Book: chapter 4, "Content addressing", "Layers and whiteouts" and "docker-archive and OCI
/// layout".
pub fn load(store: &Path, archive: &Path) -> anyhow::Result<Vec<String>> {
    todo!(
        "load() in src/image.rs: read a docker-archive into the store (book: chapter 4, \"Content addressing\" and \"docker-archive and OCI layout\")"
    )
}

/// The images in the store, one line for each name.
///
/// Book: chapter 4, "The image commands".
pub fn list(store: &Path) -> anyhow::Result<Vec<Listed>> {
    todo!(
        "list() in src/image.rs: the images in the store (book: chapter 4, \"The image commands\")"
    )
}

/// The image `name` (`skiff-lab`, `skiff-lab:latest`, or an id) names in the store, with its
/// layers and what its config says about the process.
///
/// Book: chapter 4, "Running an image".
pub fn find(store: &Path, name: &str) -> anyhow::Result<Image> {
    todo!(
        "find() in src/image.rs: an image by its name, its layers and config (book: chapter 4, \"Running an image\")"
    )
}

/// Mounts an overlay at `merged`: `layers` read-only below (the lowest last in `lowerdir`),
/// the container's own `upper` (with `work`, which overlayfs needs) on top, so its writes never
/// reach the image.
///
/// Book: chapter 4, "Union filesystems and copy-on-write".
pub fn mount_overlay(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> anyhow::Result<()> {
    todo!(
        "mount_overlay() in src/image.rs: the image's layers and the container's upper dir, stacked at merged (book: chapter 4, \"Union filesystems and copy-on-write\")"
    )
}

/// Unmounts the overlay at `merged` once the container has exited.
///
/// Book: chapter 4, "Union filesystems and copy-on-write".
pub fn unmount(merged: &Path) -> anyhow::Result<()> {
    todo!(
        "unmount() in src/image.rs: take the container's overlay down (book: chapter 4, \"Union filesystems and copy-on-write\")"
    )
}
