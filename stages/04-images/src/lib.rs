//! # Stage 04: layered images
//!
//! A container image is a stack of filesystem layers plus a little JSON: a config (what to run,
//! with which environment) and a manifest (which blobs make the image). This crate is the part of
//! skiff that stores and moves images:
//!
//! - [`digest`]: content addressing, every blob named by its SHA-256;
//! - [`reference`](mod@reference): image names (`busybox` is `docker.io/library/busybox:latest`);
//! - [`store`]: the store on disk: blobs, unpacked layers, image records, tags;
//! - [`unpack`] and [`diff`]: layer tarballs into directories overlayfs can stack, and a
//!   directory of changes back into a layer, with whiteouts translated both ways;
//! - [`config_json`]: configs written byte for byte as Go tools write them (the id is their hash);
//! - [`image`]: images read from the store, resolved by name or id, and made from a parent plus
//!   one layer ([`image::create_image`], for `commit` and `build`);
//! - [`archive`]: `load` and `save` as docker-archive or OCI image layout; [`import`](mod@import)
//!   for a root filesystem tarball;
//! - [`dockerfile`]: the Dockerfile parser `build` reads;
//! - [`beneath`]: files of the build context and of a loaded layout, read through the directory
//!   held open, never outside it; [`bounded`]: no more read or unpacked than an image declares;
//! - [`builder`]: `build` itself: each RUN a container whose changes are committed, each COPY a
//!   layer laid out directly, and a cache that makes an unchanged rebuild reuse every step;
//! - [`ops`]: `images`, `rmi`, `tag`, `inspect`, `history`, with Docker's columns and rules;
//! - [`human`]: sizes and times the way Docker prints them;
//! - [`registry`]: `pull`, `push`, `login`, `logout` and `search` against a registry (the OCI
//!   distribution spec), every blob checked against its digest before it is stored.
//!
//! ```no_run
//! use images::store::Store;
//!
//! let store = Store::open("/var/lib/skiff")?;
//! let rootfs = std::fs::File::open("rootfs.tar")?;
//! let tag = images::reference::ImageRef::parse("demo:1")?;
//! let imported = images::import::import(&store, rootfs, "rootfs.tar", Some(&tag))?;
//! // The overlay's lower dirs, lowest first.
//! let lower = store.layer_dirs(&imported.id)?;
//! images::archive::save(&store, &["demo:1"], images::archive::SaveFormat::OciArchive, "demo.tar".as_ref())?;
//! # let _ = lower;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod archive;
pub mod beneath;
pub mod bounded;
pub mod builder;
pub mod builtin;
pub mod cli;
pub mod compression;
pub mod config_json;
pub mod container;
pub mod diff;
pub mod digest;
pub mod dockerfile;
pub mod error;
pub mod human;
pub mod image;
pub mod import;
pub mod ops;
pub mod overlay;
pub mod reference;
pub mod registry;
pub mod run;
pub mod store;
pub mod unpack;

#[cfg(test)]
mod testutil;

// ANCHOR: sweep
/// Stage 04's part of sweeping a container away (see [`namespaces::sweep`]): its overlay is
/// unmounted, and with `remove` its writable layer deleted; then stage 03's part. Returns
/// what could not be undone.
pub fn sweep(sweep: &namespaces::Sweep<'_>) -> Vec<String> {
    chroot::timeline::mark("sweep: overlay");
    let dir = namespaces::record::container_dir(sweep.root, sweep.id);
    let mut left = Vec::new();
    // Moved to the trash whole, the writable layer's directories need only the unmount here.
    let swept = if sweep.remove && sweep.to_trash {
        overlay::unmount_of(&dir)
    } else {
        overlay::sweep(&dir, sweep.remove)
    };
    if let Err(e) = swept {
        left.push(e.to_string());
    }
    left.extend(cgroups::sweep(sweep));
    left
}
// ANCHOR_END: sweep

pub use digest::Digest;
pub use error::{ImageError, LayerError};
pub use image::{Image, create_image};
pub use reference::ImageRef;
pub use store::Store;
