//! Stage 06's idea, yours to write: data that outlives a container. A named volume is a
//! directory in the store, a bind mount is a host directory, a tmpfs is memory; each is mounted
//! into the container's root before its root changes. Fill the pieces in this order, running
//! the check named in each after it (book: chapter 6, "Build it yourself"):
//!
//! 1. [`parse`]          — `labs check 06 --bin ./target/debug/my-skiff-06 relative-target`
//! 2. [`create`], [`list`], [`remove`] — `volume create`, `ls`, `rm` by hand (lab 06's
//!    `volume-ls-and-inspect` wants `volume inspect` too, yours to add)
//! 3. [`source`], [`mount`] — `... named-volume-outlives`, `... bind-mount-shares`,
//!    `... read-only-volume`
//! 4. [`mount_tmpfs`]     — `... tmpfs-is-memory`
//!
//! Lab 06 checks more (`--mount`, `--read-only`, an image's VOLUME, paths resolved inside the
//! root, `nodev`, `volume prune`): the chapter takes them one at a time. mount(2), mount(8).
// Until a piece is written its arguments go unused.
#![allow(unused_variables, dead_code)]

use std::path::{Path, PathBuf};

use chroot::Plan;

/// One `-v`: what goes where.
#[derive(Debug, Clone)]
pub struct Volume {
    /// A volume's name, or a host directory (an absolute path).
    pub source: String,
    /// Where it appears inside the container (an absolute path).
    pub target: String,
    /// `:ro`: the container cannot write to it.
    pub read_only: bool,
}

/// `-v NAME:/PATH[:ro]` or `-v /HOST:/PATH[:ro]`. A spec without a target, with a relative
/// target or an unknown option is an error that names it, before anything exists.
///
/// Book: chapter 6, "Three kinds of mount" and "Reading the flags".
pub fn parse(spec: &str) -> anyhow::Result<Volume> {
    todo!(
        "parse() in src/volume.rs: -v NAME:/PATH[:ro] and -v /HOST:/PATH[:ro] (book: chapter 6, \"Reading the flags\")"
    )
}

/// `volume create NAME`: the volume's data directory, `<store>/volumes/NAME/_data` (Docker's
/// layout, which the labs look at: see the book's contract page), empty when new; an existing
/// name is fine, as Docker's is.
///
/// Book: chapter 6, "The store".
pub fn create(store: &Path, name: &str) -> anyhow::Result<PathBuf> {
    todo!(
        "create() in src/volume.rs: a named volume's directory in the store (book: chapter 6, \"The store\")"
    )
}

/// `volume ls`: the volumes' names.
///
/// Book: chapter 6, "The volume commands".
pub fn list(store: &Path) -> anyhow::Result<Vec<String>> {
    todo!(
        "list() in src/volume.rs: the volumes in the store (book: chapter 6, \"The volume commands\")"
    )
}

/// `volume rm NAME`: the volume and its data.
///
/// Book: chapter 6, "The volume commands".
pub fn remove(store: &Path, name: &str) -> anyhow::Result<()> {
    todo!(
        "remove() in src/volume.rs: a volume and its data (book: chapter 6, \"The volume commands\")"
    )
}

/// Where `volume`'s data is on the host: a host directory as it is (it must exist), a named
/// volume's directory, made on first use with [`create`].
///
/// Book: chapter 6, "Three kinds of mount" and "The store".
pub fn source(store: &Path, volume: &Volume) -> anyhow::Result<PathBuf> {
    todo!(
        "source() in src/volume.rs: where a volume's data is on the host (book: chapter 6, \"The store\")"
    )
}

/// Writes down in `plan` the bind mount of `source` at `volume.target` inside the root (made if
/// missing), read-only with `:ro`, in `plan.root_setup()`: the child mounts it before its root
/// changes.
///
/// Book: chapter 6, "Mounting inside the root, safely" and "The feature".
pub fn mount(plan: &mut Plan, source: &Path, volume: &Volume) -> anyhow::Result<()> {
    todo!(
        "mount() in src/volume.rs: a bind mount of the volume into the root (book: chapter 6, \"Mounting inside the root, safely\")"
    )
}

/// `--tmpfs /PATH[:OPTIONS]` (`spec` as given): a tmpfs at the path inside the root, with
/// Docker's safe defaults (`nosuid`, `nodev`, `noexec`) and the options (`size=1m`).
///
/// Book: chapter 6, "Three kinds of mount".
pub fn mount_tmpfs(plan: &mut Plan, spec: &str) -> anyhow::Result<()> {
    todo!(
        "mount_tmpfs() in src/volume.rs: --tmpfs, memory mounted into the root (book: chapter 6, \"Three kinds of mount\")"
    )
}
