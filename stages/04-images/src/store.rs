//! The image store: content-addressed blobs, unpacked layers, image records and tags on disk.
//!
//! Everything lives under one root directory (`--root`, default `/var/lib/skiff`):
//!
//! ```text
//! <root>/                         0710, and every directory below it 0700: root's alone
//!   lock                          flock: shared while adding content, exclusive while deleting
//!   blobs/sha256/<hex>            every blob (0600), named by the SHA-256 of its bytes:
//!                                 configs, manifests, layer tarballs (plain or gzip)
//!   layers/<diff-id hex>/
//!     diff/                       the unpacked layer, with overlayfs whiteouts: a lower dir
//!     layer.json                  {"diff_id", "size"}
//!   images/
//!     <config hex>.json           an image record: {"id", "manifest", "repo_digests"}; the id
//!                                 is the digest of the image's config, as in Docker
//!     repositories.json           the tag index: {"Repositories": {name: {name:tag: id}}}
//!     repositories.lock           flock held while the tag index is read-modified-written
//!   tmp/                          temp files and directories, renamed into place when complete
//!   containers/<id>/image         written by `run`: the id of the image a container uses
//! ```
//!
//! **Private.** A blob of a private image is that image's content, and a running container's
//! root is a directory under `containers/`: nobody but root may look (see
//! [`namespaces::private`]; a store an older skiff made world-readable is tightened on open).
//!
//! **Content addressing.** A blob is written to `tmp/`, hashed on the way, fsync'd, and renamed
//! to its digest only if the digest is the one expected; it is hashed again whenever it is read,
//! so a blob corrupted on disk is refused rather than used. A layer is unpacked once, keyed by its
//! `diff_id` (the digest of its uncompressed tar), and shared by every image that has it.
//!
//! **Crashes.** Nothing appears under its final name before it is complete: files are renamed
//! from `tmp/` after fsync, a layer directory is unpacked under `tmp/`, synced, and renamed whole
//! (so `layers/<hex>` existing means the layer is complete), and an image record is written only
//! after all its blobs and layers exist. A crash leaves at worst unreferenced blobs, layers and
//! temp files, which the next `rmi` (or [`Store::collect_garbage`]) removes.
//!
//! **Concurrency.** Operations that add content (load, import, commit, tag) hold `lock` shared
//! and may run together: two writers of the same blob or layer both write a temp copy and the
//! rename makes one of them win. Operations that delete (rmi) hold it exclusive, so they never
//! delete a layer a load is about to reference. The tag index has its own lock for its
//! read-modify-write. Readers (images, inspect, run) take no lock: every file they read is
//! replaced atomically.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use namespaces::private;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::bounded::Budget;
use crate::digest::{Digest, Hashing, Verified};
use crate::error::{ImageError, LayerError, Result};
use crate::unpack::{Unpacked, unpack_within};

/// The store's root when none is given.
pub use namespaces::container::DEFAULT_ROOT;

/// An image store on disk.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// What the store knows about an unpacked layer (`layers/<hex>/layer.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The digest of the layer's uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of file content in the layer.
    pub size: u64,
}

/// An image record (`images/<hex>.json`): which manifest describes the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image id: the digest of its config blob.
    pub id: Digest,
    /// The digest of its manifest blob.
    pub manifest: Digest,
    /// `name@sha256:…` references a registry knows it by (set by pull and push).
    #[serde(default)]
    pub repo_digests: Vec<String>,
}

/// The tag index (`images/repositories.json`), the same shape as Docker's: repository name →
/// full reference → image id. Names are fully normalised (`docker.io/library/busybox`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagIndex {
    /// Repository → reference → image id.
    #[serde(rename = "Repositories", default)]
    pub repositories: BTreeMap<String, BTreeMap<String, Digest>>,
}

impl TagIndex {
    /// The image a full reference (`docker.io/library/busybox:latest`) names, if any.
    pub fn get(&self, name: &str, reference: &str) -> Option<&Digest> {
        self.repositories.get(name)?.get(reference)
    }

    /// All (full reference, image id) pairs, sorted.
    pub fn all(&self) -> impl Iterator<Item = (&String, &Digest)> {
        self.repositories.values().flat_map(|tags| tags.iter())
    }

    /// The full references that name image `id`, sorted.
    pub fn references_to(&self, id: &Digest) -> Vec<String> {
        self.all()
            .filter(|(_, target)| *target == id)
            .map(|(reference, _)| reference.clone())
            .collect()
    }

    /// Points `reference` (in repository `name`) at `id`.
    pub fn set(&mut self, name: &str, reference: &str, id: &Digest) {
        self.repositories
            .entry(name.to_string())
            .or_default()
            .insert(reference.to_string(), id.clone());
    }

    /// Removes `reference`; returns whether it was there.
    pub fn remove(&mut self, name: &str, reference: &str) -> bool {
        let Some(tags) = self.repositories.get_mut(name) else {
            return false;
        };
        let removed = tags.remove(reference).is_some();
        if tags.is_empty() {
            self.repositories.remove(name);
        }
        removed
    }
}

/// A held store lock; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _lock: Flock<File>,
}

impl Store {
    // ANCHOR: open
    /// Opens the store at `root`, creating its directories when missing. They are private
    /// ([`namespaces::private`]): the root 0710, each directory 0700, each blob 0600; a store
    /// made by an older skiff is tightened here, once.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { root: root.into() };
        let io_err = |dir: &Path, e| {
            ImageError::io(
                format!(
                    "create store directory {}: is --root writable (run as root)?",
                    dir.display()
                ),
                e,
            )
        };
        // The root once, then each directory under it: one stat(2) each in a store that exists.
        private::store_root(&store.root).map_err(|e| io_err(&store.root, e))?;
        for name in ["layers", "images", "tmp"] {
            let dir = store.root.join(name);
            private::private_dir(&dir, private::DIR_MODE).map_err(|e| io_err(&dir, e))?;
        }
        let blobs = store.root.join("blobs");
        let sha256 = blobs.join("sha256");
        // A store from before the store was private has world-readable blobs. They are made
        // private first, then their directories, so that a crash in between is finished by the
        // next open.
        if private::enabled() && private::is_loose(&blobs, private::DIR_MODE) {
            store.make_blobs_private().map_err(|e| io_err(&sha256, e))?;
        }
        private::private_dir(&blobs, private::DIR_MODE).map_err(|e| io_err(&blobs, e))?;
        private::private_dir(&sha256, private::DIR_MODE).map_err(|e| io_err(&sha256, e))?;
        Ok(store)
    }
    // ANCHOR_END: open

    /// Makes every blob file 0600 (an older store's were 0644).
    fn make_blobs_private(&self) -> io::Result<()> {
        let dir = self.root.join("blobs/sha256");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            private::tighten(&entry?.path(), private::FILE_MODE)?;
        }
        Ok(())
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    // --- locks -------------------------------------------------------------------------------

    /// Takes the store lock shared: for operations that only add content.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        self.lock(&self.root.join("lock"), FlockArg::LockShared)
    }

    /// Takes the store lock exclusive: for operations that delete content.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        self.lock(&self.root.join("lock"), FlockArg::LockExclusive)
    }

    fn lock(&self, path: &Path, mode: FlockArg) -> Result<StoreLock> {
        let lock = lock_file(path, mode)
            .map_err(|e| ImageError::io(format!("lock {}", path.display()), e))?;
        Ok(StoreLock { _lock: lock })
    }

    // --- temp files and atomic writes ------------------------------------------------------

    /// A fresh, unused path under `tmp/`.
    pub fn temp_path(&self, what: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.root
            .join("tmp")
            .join(format!("{what}-{}-{nanos}-{n}", std::process::id()))
    }

    /// Writes `bytes` to `path` so that readers see either the old file or the whole new one.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        replace_via(&self.temp_path("write"), path, bytes)
            .map_err(|e| ImageError::io(format!("write {}", path.display()), e))
    }

    // --- blobs -------------------------------------------------------------------------------

    /// Where the blob `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the store has the blob `digest`.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    // ANCHOR: put_blob
    /// Stores the bytes `reader` yields as a blob and returns its digest and size. When
    /// `expected` is given, content that hashes to anything else is refused and nothing is
    /// stored. `what` names the content in errors ("layer 2 of busybox.tar").
    pub fn put_blob(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        let temp = self.temp_path("blob");
        let result = self.write_blob(reader, expected, what, &temp);
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    fn write_blob(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
        what: &str,
        temp: &Path,
    ) -> Result<(Digest, u64)> {
        let io_err = |e| ImageError::io(format!("store {what} in {}", temp.display()), e);
        // 1. Copy into a temp file (readable by root alone), hashing every byte on the way.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(private::file_mode())
            .open(temp)
            .map_err(io_err)?;
        let mut out = Hashing::new(file);
        io::copy(&mut reader, &mut out).map_err(io_err)?;
        let (digest, size) = out.digest();
        // 2. The name must be the hash of the content.
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(ImageError::DigestMismatch {
                what: what.to_string(),
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        // 3. Durable first, then visible under its name: a crash never leaves a partial blob.
        out.into_inner().sync_all().map_err(io_err)?;
        let path = self.blob_path(&digest);
        fs::rename(temp, &path).map_err(io_err)?;
        sync_parent(&path).map_err(io_err)?;
        Ok((digest, size))
    }

    /// Opens the blob `digest` for reading; the reader fails at the end if the content does not
    /// hash to `digest`. Returns the reader and the blob's size.
    pub fn open_blob(&self, digest: &Digest) -> Result<(Verified<File>, u64)> {
        let path = self.blob_path(digest);
        let file = File::open(&path)
            .map_err(|e| ImageError::io(format!("open blob {digest} at {}", path.display()), e))?;
        let size = file
            .metadata()
            .map_err(|e| ImageError::io(format!("stat blob {}", path.display()), e))?
            .len();
        let what = format!("blob {}", path.display());
        Ok((Verified::new(file, digest.clone(), what), size))
    }
    // ANCHOR_END: put_blob

    /// Stores `bytes` as a blob (configs and manifests).
    pub fn put_blob_bytes(&self, bytes: &[u8], what: &str) -> Result<Digest> {
        let digest = Digest::of_bytes(bytes);
        if !self.has_blob(&digest) {
            self.put_blob(bytes, Some(&digest), what)?;
        }
        Ok(digest)
    }

    /// Reads the whole blob `digest`, verified.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let (mut reader, size) = self.open_blob(digest)?;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| blob_read_error(digest, e))?;
        Ok(bytes)
    }

    /// Every blob in the store.
    pub fn blobs(&self) -> Result<Vec<Digest>> {
        list_hex(&self.root.join("blobs/sha256"), "")
    }

    // --- layers ------------------------------------------------------------------------------

    /// The unpacked tree of layer `diff_id`: what overlayfs mounts as a lower dir.
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layer_root(diff_id).join("diff")
    }

    fn layer_root(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// The layer `diff_id`, if it is unpacked in the store.
    pub fn layer(&self, diff_id: &Digest) -> Result<Option<LayerInfo>> {
        let path = self.layer_root(diff_id).join("layer.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ImageError::json(path.display().to_string(), e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Every unpacked layer in the store.
    pub fn layers(&self) -> Result<Vec<Digest>> {
        list_hex(&self.root.join("layers"), "")
    }

    /// Unpacks the layer blob `blob` into `layers/`, unless the layer `expected` is there already.
    /// The content must hash to `expected` when given. Returns the layer and any warnings.
    pub fn unpack_layer(
        &self,
        blob: &Digest,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<(LayerInfo, Vec<String>)> {
        if let Some(diff_id) = expected
            && let Some(info) = self.layer(diff_id)?
        {
            return Ok((info, Vec::new()));
        }
        let temp = self.temp_path("layer");
        let result = self.unpack_into_temp(blob, expected, what, &temp);
        if result.is_err() {
            let _ = fs::remove_dir_all(&temp);
        }
        result
    }

    fn unpack_into_temp(
        &self,
        blob: &Digest,
        expected: Option<&Digest>,
        what: &str,
        temp: &Path,
    ) -> Result<(LayerInfo, Vec<String>)> {
        let io_err = |e| ImageError::io(format!("unpack {what} in {}", temp.display()), e);
        fs::create_dir(temp).map_err(io_err)?;
        let (reader, compressed) = self.open_blob(blob)?;
        // A layer may expand only so far for its size (see crate::bounded).
        let budget = Budget::for_compressed(compressed);
        let Unpacked {
            mut diff_id,
            size,
            warnings,
        } = unpack_within(reader, &temp.join("diff"), budget).map_err(|e| match e {
            // The blob itself is corrupt: say so, rather than blame the tar format.
            LayerError::Read(io) if io.get_ref().is_some_and(|i| i.is::<ImageError>()) => {
                blob_read_error(blob, io)
            }
            other => ImageError::layer(what, other),
        })?;
        if let Some(expected) = expected
            && *expected != diff_id
        {
            if chroot::defence::disabled("verify-digests") {
                // The labs' control: an engine that trusts the config's word for the layer.
                diff_id = expected.clone();
            } else {
                return Err(ImageError::layer(
                    what,
                    LayerError::DiffIdMismatch {
                        expected: expected.to_string(),
                        actual: diff_id.to_string(),
                    },
                ));
            }
        }
        let info = LayerInfo { diff_id, size };
        let json = serde_json::to_vec(&info).map_err(|e| ImageError::json("layer.json", e))?;
        fs::write(temp.join("layer.json"), json).map_err(io_err)?;
        // One syncfs makes every file of the tree durable before the rename publishes it.
        let dir = File::open(temp).map_err(io_err)?;
        nix::unistd::syncfs(&dir).map_err(|e| io_err(e.into()))?;
        let target = self.layer_root(&info.diff_id);
        match fs::rename(temp, &target) {
            Ok(()) => sync_parent(&target).map_err(io_err)?,
            // Another writer published the same layer first; theirs is as good as ours.
            Err(_) if target.join("layer.json").is_file() => {
                fs::remove_dir_all(temp).map_err(io_err)?;
            }
            Err(e) => return Err(io_err(e)),
        }
        Ok((info, warnings))
    }

    // --- image records -------------------------------------------------------------------------

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    /// The record of image `id`, if the store has it.
    pub fn record(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        let path = self.record_path(id);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ImageError::json(path.display().to_string(), e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Writes an image record: from now on the image exists.
    pub fn put_record(&self, record: &ImageRecord) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(record).map_err(|e| ImageError::json("image record", e))?;
        self.write_atomic(&self.record_path(&record.id), &json)
    }

    /// Removes the record of image `id`.
    pub fn remove_record(&self, id: &Digest) -> Result<()> {
        let path = self.record_path(id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(ImageError::io(format!("remove {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }

    /// The ids of every image in the store.
    pub fn image_ids(&self) -> Result<Vec<Digest>> {
        list_hex(&self.root.join("images"), ".json")
    }

    // --- tags --------------------------------------------------------------------------------

    fn tags_path(&self) -> PathBuf {
        self.root.join("images/repositories.json")
    }

    /// The tag index as it is now.
    pub fn tags(&self) -> Result<TagIndex> {
        let path = self.tags_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::json(path.display().to_string(), e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(TagIndex::default()),
            Err(e) => Err(ImageError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Changes the tag index under its lock: `change` sees the current index, and what it leaves
    /// is written back atomically.
    pub fn update_tags<T>(&self, change: impl FnOnce(&mut TagIndex) -> Result<T>) -> Result<T> {
        let _lock = self.lock(
            &self.root.join("images/repositories.lock"),
            FlockArg::LockExclusive,
        )?;
        let mut index = self.tags()?;
        let result = change(&mut index)?;
        let json =
            serde_json::to_vec_pretty(&index).map_err(|e| ImageError::json("tag index", e))?;
        self.write_atomic(&self.tags_path(), &json)?;
        Ok(result)
    }

    // --- garbage -----------------------------------------------------------------------------

    /// Removes every blob and layer no image record refers to, and every temp file. Call it
    /// with the exclusive lock held (no writer may be adding content at the same time).
    pub fn collect_garbage(&self, _exclusive: &StoreLock) -> Result<Garbage> {
        let mut keep_blobs = std::collections::HashSet::new();
        let mut keep_layers = std::collections::HashSet::new();
        for id in self.image_ids()? {
            let Some(record) = self.record(&id)? else {
                continue;
            };
            let refs = crate::image::references(self, &record)?;
            keep_blobs.extend(refs.blobs);
            keep_layers.extend(refs.layers);
        }
        let mut garbage = Garbage::default();
        for blob in self.blobs()? {
            if !keep_blobs.contains(&blob) {
                remove(&self.blob_path(&blob))?;
                garbage.blobs.push(blob);
            }
        }
        for layer in self.layers()? {
            if !keep_layers.contains(&layer) {
                // Renamed away first, so the layer disappears at once, never half-deleted.
                let doomed = self.temp_path("deleted-layer");
                fs::rename(self.layer_root(&layer), &doomed)
                    .map_err(|e| ImageError::io(format!("remove layer {layer}"), e))?;
                remove(&doomed)?;
                garbage.layers.push(layer);
            }
        }
        let tmp = self.root.join("tmp");
        for entry in
            fs::read_dir(&tmp).map_err(|e| ImageError::io(format!("list {}", tmp.display()), e))?
        {
            let entry = entry.map_err(|e| ImageError::io(format!("list {}", tmp.display()), e))?;
            remove(&entry.path())?;
        }
        Ok(garbage)
    }
}

/// A temp file or directory that is removed when this guard goes away, on success or error.
#[derive(Debug)]
pub struct TempPath(pub PathBuf);

impl TempPath {
    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = remove(&self.0);
    }
}

/// What [`Store::collect_garbage`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Garbage {
    /// Blobs removed.
    pub blobs: Vec<Digest>,
    /// Layers removed.
    pub layers: Vec<Digest>,
}

/// The error for a blob that could not be read back, corrupt or not.
pub(crate) fn blob_read_error(digest: &Digest, e: io::Error) -> ImageError {
    if e.kind() == io::ErrorKind::InvalidData
        && let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<ImageError>())
        && let ImageError::DigestMismatch {
            what,
            expected,
            actual,
        } = inner
    {
        return ImageError::DigestMismatch {
            what: what.clone(),
            expected: expected.clone(),
            actual: actual.clone(),
        };
    }
    ImageError::io(format!("read blob {digest}"), e)
}

/// Digests named by the files in `dir` (`<hex><suffix>`); other names are ignored.
fn list_hex(dir: &Path, suffix: &str) -> Result<Vec<Digest>> {
    let mut out = Vec::new();
    let entries =
        fs::read_dir(dir).map_err(|e| ImageError::io(format!("list {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ImageError::io(format!("list {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(suffix)) else {
            continue;
        };
        if let Ok(digest) = Digest::from_hex(hex) {
            out.push(digest);
        }
    }
    out.sort();
    Ok(out)
}

fn remove(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| ImageError::io(format!("remove {}", path.display()), e))
}

/// fsync(2) of the directory holding `path`, so a rename into it is durable.
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// The store's locks: one flock(2) file each, as every store of skiff's takes them.
pub use namespaces::records::lock_file;

/// Replaces `path` with `bytes` so that a reader sees the old file or the whole new one, never
/// half of one: a temporary file next to it (`.NAME.tmp-PID`), fsync, rename(2), fsync of the
/// directory.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    replace_via(
        &path.with_file_name(format!(".{name}.tmp-{}", std::process::id())),
        path,
        bytes,
    )
}

/// Writes `bytes` to `temp`, syncs it and renames it over `path` (same filesystem); removes
/// `temp` when anything fails.
fn replace_via(temp: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let result = (|| {
        let mut file = File::create(temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(temp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{LayerTar, tree};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_blob_is_stored_under_its_digest_and_verified_on_write() {
        let (_dir, store) = store();
        let (digest, size) = store.put_blob(&b"hello"[..], None, "greeting").unwrap();
        assert_eq!(digest, Digest::of_bytes(b"hello"));
        assert_eq!(size, 5);
        assert_eq!(store.read_blob(&digest).unwrap(), b"hello");

        let wrong = Digest::of_bytes(b"something else");
        let err = store
            .put_blob(&b"hello"[..], Some(&wrong), "layer 1 of x.tar")
            .unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains("layer 1 of x.tar"), "{err}");
        assert!(!store.has_blob(&wrong));
        assert_eq!(
            tree(&store.root().join("tmp")),
            Vec::<String>::new(),
            "no temp file is left"
        );
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_store_is_private_and_an_old_one_is_made_so() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, store) = store();
        let (digest, _) = store.put_blob(&b"secret layer"[..], None, "layer").unwrap();
        assert_eq!(mode(store.root()), 0o710);
        for dir in ["blobs", "blobs/sha256", "layers", "images", "tmp"] {
            assert_eq!(mode(&store.root().join(dir)), 0o700, "{dir}");
        }
        assert_eq!(mode(&store.blob_path(&digest)), 0o600);
        // As an older skiff left it: everything readable by everyone.
        for path in [
            store.root().to_path_buf(),
            store.root().join("blobs"),
            store.root().join("blobs/sha256"),
            store.root().join("layers"),
            store.blob_path(&digest),
        ] {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let store = Store::open(store.root()).unwrap();
        assert_eq!(mode(store.root()), 0o710);
        assert_eq!(mode(&store.root().join("blobs")), 0o700);
        assert_eq!(mode(&store.root().join("layers")), 0o700);
        assert_eq!(mode(&store.blob_path(&digest)), 0o600);
        assert_eq!(store.read_blob(&digest).unwrap(), b"secret layer");
    }

    #[test]
    fn a_corrupt_blob_is_refused_when_read() {
        let (_dir, store) = store();
        let digest = store.put_blob_bytes(b"{\"config\":1}", "config").unwrap();
        fs::write(store.blob_path(&digest), b"{\"config\":2}").unwrap();
        let err = store.read_blob(&digest).unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(digest.as_str()) && text.contains("corrupt"),
            "{text}"
        );
    }

    #[test]
    fn a_layer_is_unpacked_once_even_by_concurrent_writers() {
        let (_dir, store) = store();
        let tar = LayerTar::new().file("bin/tool", b"x").bytes();
        let (blob, _) = store.put_blob(&tar[..], None, "layer").unwrap();
        let diff_id = Digest::of_bytes(&tar);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let _lock = store.lock_shared().unwrap();
                    store.unpack_layer(&blob, None, "layer").unwrap()
                });
            }
        });
        assert_eq!(store.layers().unwrap(), vec![diff_id.clone()]);
        assert_eq!(store.layer(&diff_id).unwrap().unwrap().size, 1);
        assert!(store.layer_dir(&diff_id).join("bin/tool").is_file());
        assert_eq!(
            tree(&store.root().join("tmp")),
            Vec::<String>::new(),
            "losers cleaned up"
        );
        // Known already: not unpacked again.
        let (info, _) = store.unpack_layer(&blob, Some(&diff_id), "layer").unwrap();
        assert_eq!(info.diff_id, diff_id);
    }

    #[test]
    fn a_hostile_layer_leaves_nothing_in_the_store() {
        let (_dir, store) = store();
        let tar = LayerTar::new()
            .file("ok", b"1")
            .file("../../x", b"2")
            .bytes();
        let (blob, _) = store.put_blob(&tar[..], None, "layer").unwrap();
        let err = store
            .unpack_layer(&blob, None, "layer 1 of evil.tar")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("layer 1 of evil.tar") && err.contains("\"../../x\""),
            "{err}"
        );
        assert!(store.layers().unwrap().is_empty());
        assert_eq!(tree(&store.root().join("tmp")), Vec::<String>::new());
    }

    #[test]
    fn a_layer_that_does_not_match_its_diff_id_is_refused() {
        let (_dir, store) = store();
        let tar = LayerTar::new().file("a", b"1").bytes();
        let (blob, _) = store.put_blob(&tar[..], None, "layer").unwrap();
        let claimed = Digest::of_bytes(b"another layer");
        let err = store
            .unpack_layer(&blob, Some(&claimed), "layer 1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("diff_id") && err.contains(claimed.as_str()),
            "{err}"
        );
        assert!(store.layers().unwrap().is_empty());
    }

    #[test]
    fn concurrent_tag_updates_are_not_lost() {
        let (_dir, store) = store();
        let id = Digest::of_bytes(b"image");
        std::thread::scope(|s| {
            for i in 0..8 {
                let store = &store;
                let id = &id;
                s.spawn(move || {
                    store
                        .update_tags(|index| {
                            index.set(
                                "docker.io/library/x",
                                &format!("docker.io/library/x:{i}"),
                                id,
                            );
                            Ok(())
                        })
                        .unwrap()
                });
            }
        });
        assert_eq!(store.tags().unwrap().references_to(&id).len(), 8);
    }

    #[test]
    fn a_corrupt_layer_blob_is_refused_when_unpacked() {
        let (_dir, store) = store();
        let tar = LayerTar::new().file("a", b"original").bytes();
        let (blob, _) = store.put_blob(&tar[..], None, "layer").unwrap();
        let mut bytes = tar.clone();
        bytes[512] = b'O';
        fs::write(store.blob_path(&blob), bytes).unwrap();
        let err = store.unpack_layer(&blob, None, "layer 1").unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert!(store.layers().unwrap().is_empty());
        assert_eq!(tree(&store.root().join("tmp")), Vec::<String>::new());
    }
}
