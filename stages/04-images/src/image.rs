//! Images: a config, a manifest and a stack of layers, found by name or id.
//!
//! An image (OCI image spec, `config.md` and `manifest.md`) is a *config* (the runtime defaults:
//! Env, Cmd, WorkingDir… and `rootfs.diff_ids`, the digests of its layers' uncompressed tars, lowest
//! first) and a *manifest* (descriptors of the config blob and of the layer blobs as stored, maybe
//! compressed). Its id is the digest of the config, as in Docker: two images with the same config
//! are the same image. This module reads images from the store, resolves what a user types into
//! an id, gives the layer directories an overlay mount stacks, and makes new images from a parent
//! plus one layer (what `commit`, `build` and `import` do).

use std::path::{Path, PathBuf};

use oci_spec::image::{
    Config, Descriptor, History, HistoryBuilder, ImageConfiguration, ImageManifest,
    ImageManifestBuilder, MediaType, Os, RootFs,
};

use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::reference::ImageRef;
use crate::store::{ImageRecord, LayerInfo, Store};

/// An image in the store, read and parsed.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image id: the digest of its config.
    pub id: Digest,
    /// The digest of its manifest.
    pub manifest_digest: Digest,
    /// The manifest: config and layer blobs.
    pub manifest: ImageManifest,
    /// The config: runtime defaults, diff_ids, history.
    pub config: ImageConfiguration,
    /// The unpacked layers, lowest first.
    pub layers: Vec<LayerInfo>,
    /// Full references that name it (`docker.io/library/busybox:latest`), sorted.
    pub repo_tags: Vec<String>,
    /// `name@sha256:…` references a registry knows it by.
    pub repo_digests: Vec<String>,
}

impl Image {
    /// Total bytes of its layers' contents (Docker's SIZE).
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// When it was created, as the config says (RFC 3339).
    pub fn created(&self) -> Option<&str> {
        self.config.created().as_deref()
    }

    /// Its tags in the familiar form (`busybox:latest`).
    pub fn familiar_tags(&self) -> Vec<String> {
        self.repo_tags
            .iter()
            .filter_map(|r| ImageRef::parse(r).ok())
            .map(|r| r.familiar())
            .collect()
    }
}

impl Store {
    /// Reads image `id` from the store: record, manifest, config and layer metadata.
    pub fn image(&self, id: &Digest) -> Result<Image> {
        let record = self
            .record(id)?
            .ok_or_else(|| ImageError::NoSuchImage(id.to_string()))?;
        let manifest = parse_manifest(&self.read_blob(&record.manifest)?, &record.manifest)?;
        let config = parse_config(&self.read_blob(id)?, id)?;
        let mut layers = Vec::new();
        for diff_id in diff_ids(&config)? {
            let layer = self.layer(&diff_id)?.ok_or_else(|| {
                ImageError::Unsupported(format!(
                    "image {id}: layer {diff_id} is missing from the store: remove the image and load it again"
                ))
            })?;
            layers.push(layer);
        }
        let repo_tags = self.tags()?.references_to(id);
        Ok(Image {
            id: id.clone(),
            manifest_digest: record.manifest,
            manifest,
            config,
            layers,
            repo_tags,
            repo_digests: record.repo_digests,
        })
    }

    // ANCHOR: resolve
    /// Finds the image a user means: a full id (`sha256:…`), a reference (`busybox`,
    /// `busybox:1.36`, `name@sha256:<manifest digest>`), or a unique id prefix (`3f57d9`).
    pub fn resolve(&self, name: &str) -> Result<Digest> {
        if let Ok(id) = Digest::parse(name)
            && self.record(&id)?.is_some()
        {
            return Ok(id);
        }
        if let Ok(reference) = ImageRef::parse(name) {
            if let Some(pinned) = reference.digest() {
                // `name@sha256:…` pins a manifest of that repository: the image must carry the
                // digest and be known under the name (a tag or a repo digest of it).
                let tags = self.tags()?;
                let name = reference.name();
                for id in self.image_ids()? {
                    let Some(record) = self.record(&id)? else {
                        continue;
                    };
                    let in_repository = tags
                        .repositories
                        .get(&name)
                        .is_some_and(|t| t.values().any(|v| *v == id))
                        || record
                            .repo_digests
                            .iter()
                            .any(|d| ImageRef::parse(d).is_ok_and(|r| r.name() == name));
                    // A pull by tag of a multi-platform image records the index's digest.
                    let pulled_as = || {
                        record.repo_digests.iter().any(|d| {
                            ImageRef::parse(d)
                                .is_ok_and(|r| r.name() == name && r.digest() == Some(pinned))
                        })
                    };
                    if in_repository
                        && (record.manifest.as_str() == pinned
                            || id.as_str() == pinned
                            || pulled_as())
                    {
                        return Ok(id);
                    }
                }
            } else if let Some(id) = self.tags()?.get(&reference.name(), &reference.full()) {
                return Ok(id.clone());
            }
        }
        let prefix = name.strip_prefix(Digest::PREFIX).unwrap_or(name);
        if !prefix.is_empty() && prefix.len() <= 64 && prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let prefix = prefix.to_ascii_lowercase();
            let matches: Vec<Digest> = self
                .image_ids()?
                .into_iter()
                .filter(|id| id.hex().starts_with(&prefix))
                .collect();
            match matches.as_slice() {
                [one] => return Ok(one.clone()),
                [] => {}
                _ => return Err(ImageError::Ambiguous(name.to_string())),
            }
        }
        Err(ImageError::NoSuchImage(name.to_string()))
    }
    // ANCHOR_END: resolve

    /// The tag `name` is, when it is one and it names image `id` (not an id, a digest or another
    /// image's tag): what `rmi` untags and `save` records.
    pub fn tag_naming(&self, name: &str, id: &Digest) -> Option<ImageRef> {
        let reference = ImageRef::parse(name).ok()?;
        if reference.digest().is_some() {
            return None;
        }
        let tags = self.tags().ok()?;
        (tags.get(&reference.name(), &reference.full()) == Some(id)).then_some(reference)
    }

    // ANCHOR: layer_dirs
    /// The unpacked layer directories of an image, lowest first: the overlay's lower dirs. (The
    /// `lowerdir=` mount option lists them the other way round, topmost first.)
    pub fn layer_dirs(&self, id: &Digest) -> Result<Vec<PathBuf>> {
        Ok(self.layer_dirs_of(&self.image(id)?))
    }

    /// [`Store::layer_dirs`] of an image already read.
    pub fn layer_dirs_of(&self, image: &Image) -> Vec<PathBuf> {
        image
            .layers
            .iter()
            .map(|layer| self.layer_dir(&layer.diff_id))
            .collect()
    }
    // ANCHOR_END: layer_dirs
}

/// Parses a manifest blob.
pub fn parse_manifest(bytes: &[u8], digest: &Digest) -> Result<ImageManifest> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::json(format!("manifest {digest}"), e))
}

/// Parses a config blob.
pub fn parse_config(bytes: &[u8], digest: &Digest) -> Result<ImageConfiguration> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::json(format!("image config {digest}"), e))
}

/// The config's diff_ids, validated.
pub fn diff_ids(config: &ImageConfiguration) -> Result<Vec<Digest>> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d))
        .collect()
}

/// Serialises JSON with sorted keys, so the same document always has the same digest (manifests
/// and indexes; configs are written as Go tools write them, see [`crate::config_json`]).
pub fn canonical_json(value: &impl serde::Serialize, what: &str) -> Result<Vec<u8>> {
    // serde_json's Value keeps object keys sorted (no `preserve_order`), which fixes the order
    // of fields that oci-spec keeps in hash maps (Labels, ExposedPorts, annotations).
    let value = serde_json::to_value(value).map_err(|e| ImageError::json(what, e))?;
    serde_json::to_vec(&value).map_err(|e| ImageError::json(what, e))
}

/// Blobs and layers an image record keeps alive.
#[derive(Debug, Default)]
pub(crate) struct References {
    pub blobs: Vec<Digest>,
    pub layers: Vec<Digest>,
}

/// What `record` refers to. Reads blobs without verifying them, so that a corrupt image can
/// still be removed.
pub(crate) fn references(store: &Store, record: &ImageRecord) -> Result<References> {
    let mut refs = References {
        blobs: vec![record.manifest.clone(), record.id.clone()],
        layers: Vec::new(),
    };
    let read = |d: &Digest| {
        std::fs::read(store.blob_path(d)).map_err(|e| ImageError::io(format!("read blob {d}"), e))
    };
    if let Ok(bytes) = read(&record.manifest)
        && let Ok(manifest) = parse_manifest(&bytes, &record.manifest)
    {
        for layer in manifest.layers() {
            if let Ok(d) = Digest::from_oci(layer.digest()) {
                refs.blobs.push(d);
            }
        }
    }
    if let Ok(bytes) = read(&record.id)
        && let Ok(config) = parse_config(&bytes, &record.id)
    {
        refs.layers.extend(
            config
                .rootfs()
                .diff_ids()
                .iter()
                .filter_map(|d| Digest::parse(d).ok()),
        );
    }
    Ok(refs)
}

/// Records an image whose blobs and layers are all in the store: writes its manifest, its
/// record, then its tags. The caller holds the shared store lock.
pub(crate) fn register(store: &Store, manifest_bytes: &[u8], tags: &[ImageRef]) -> Result<Digest> {
    let manifest_digest = Digest::of_bytes(manifest_bytes);
    let manifest = parse_manifest(manifest_bytes, &manifest_digest)?;
    let id = Digest::from_oci(manifest.config().digest())?;
    let config = parse_config(&store.read_blob(&id)?, &id)?;
    let diff_ids = diff_ids(&config)?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(ImageError::Unsupported(format!(
            "image {id}: its manifest lists {} layers but its config {}: the image is malformed",
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    for (layer, diff_id) in manifest.layers().iter().zip(&diff_ids) {
        let blob = Digest::from_oci(layer.digest())?;
        if !store.has_blob(&blob) || store.layer(diff_id)?.is_none() {
            return Err(ImageError::Unsupported(format!(
                "image {id}: layer {diff_id} (blob {blob}) is not in the store"
            )));
        }
    }
    store.put_blob_bytes(manifest_bytes, "manifest")?;
    let repo_digests = store
        .record(&id)?
        .map(|r| r.repo_digests)
        .unwrap_or_default();
    store.put_record(&ImageRecord {
        id: id.clone(),
        manifest: manifest_digest,
        repo_digests,
    })?;
    tag_all(store, &id, tags)?;
    Ok(id)
}

/// Points each of `tags` at `id`.
pub(crate) fn tag_all(store: &Store, id: &Digest, tags: &[ImageRef]) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    store.update_tags(|index| {
        for tag in tags {
            index.set(&tag.name(), &tag.full(), id);
        }
        Ok(())
    })
}

/// The architecture of this machine, in the image spec's (Go's) words.
pub fn host_arch() -> oci_spec::image::Arch {
    let go_name = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    oci_spec::image::Arch::from(go_name)
}

/// A new image being put together: a parent's config and layers, plus what is added.
#[derive(Debug, Clone)]
pub struct Draft {
    config: ImageConfiguration,
    layers: Vec<Descriptor>,
}

impl Draft {
    /// An image with no layers (`FROM scratch`) for this machine's platform.
    pub fn scratch() -> Draft {
        let mut config = ImageConfiguration::default();
        config.set_architecture(host_arch());
        config.set_os(Os::Linux);
        config.set_rootfs(RootFs::default());
        Draft {
            config,
            layers: Vec::new(),
        }
    }

    /// An image that starts as `parent`.
    pub fn from_image(parent: &Image) -> Draft {
        Draft {
            config: parent.config.clone(),
            layers: parent.manifest.layers().clone(),
        }
    }

    /// The runtime config so far (Env, Cmd…), to read or change.
    pub fn runtime_config(&self) -> Config {
        self.config.config().clone().unwrap_or_default()
    }

    /// Replaces the runtime config.
    pub fn set_runtime_config(&mut self, config: Config) {
        self.config.set_config(Some(config));
    }

    /// Adds a layer (its blob's descriptor and its diff_id) and the history entry that made it.
    pub fn add_layer(&mut self, blob: Descriptor, diff_id: &Digest, history: History) {
        self.layers.push(blob);
        self.config
            .rootfs_mut()
            .diff_ids_mut()
            .push(diff_id.to_string());
        self.push_history(history, false);
    }

    /// Adds a history entry that made no layer (`ENV`, `CMD`…).
    pub fn add_empty_layer(&mut self, history: History) {
        self.push_history(history, true);
    }

    fn push_history(&mut self, mut entry: History, empty: bool) {
        if empty {
            entry.set_empty_layer(Some(true));
        }
        self.config
            .history_mut()
            .get_or_insert_with(Vec::new)
            .push(entry);
    }

    /// Writes the config and manifest blobs and records the image, tagged with `tags`. Its
    /// layers must be in the store. The caller holds the shared store lock.
    pub fn commit(mut self, store: &Store, tags: &[ImageRef]) -> Result<Digest> {
        self.config.set_created(Some(crate::human::now_rfc3339()));
        let config_bytes = crate::config_json::to_bytes(&self.config)?;
        let config_digest = store.put_blob_bytes(&config_bytes, "image config")?;
        let manifest_bytes = new_manifest(&config_digest, config_bytes.len(), self.layers)?;
        register(store, &manifest_bytes, tags)
    }
}

/// An OCI manifest for a config and layer blobs, as canonical JSON.
pub fn new_manifest(
    config: &Digest,
    config_size: usize,
    layers: Vec<Descriptor>,
) -> Result<Vec<u8>> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config_size as u64,
            config.to_oci(),
        ))
        .layers(layers)
        .build()
        .map_err(|e| ImageError::Unsupported(format!("build manifest: {e}")))?;
    canonical_json(&manifest, "manifest")
}

/// A history entry made now.
pub fn history_entry(created_by: &str, comment: Option<&str>) -> History {
    let mut builder = HistoryBuilder::default()
        .created(crate::human::now_rfc3339())
        .created_by(created_by.to_string());
    if let Some(comment) = comment {
        builder = builder.comment(comment.to_string());
    }
    // Every field has a default, so building cannot fail.
    builder.build().unwrap_or_default()
}

/// What [`create_image`] made.
#[derive(Debug, Clone)]
pub struct Created {
    /// The new image's id.
    pub id: Digest,
    /// The new layer, when there were changes.
    pub layer: Option<LayerInfo>,
    /// Entries left out of the layer, with the reason.
    pub warnings: Vec<String>,
}

// ANCHOR: create_image
/// Makes a new image from `parent` (or scratch), one layer of `changes` (a directory such as an
/// overlayfs upper dir; `None` for a step that changes only the config), the runtime `config`
/// and a history entry, and tags it. This is what `commit` and each `build` step do.
pub fn create_image(
    store: &Store,
    parent: Option<&Digest>,
    changes: Option<&Path>,
    config: Config,
    history: History,
    tags: &[ImageRef],
) -> Result<Created> {
    let _lock = store.lock_shared()?;
    let mut draft = match parent {
        Some(id) => Draft::from_image(&store.image(id)?),
        None => Draft::scratch(),
    };
    draft.set_runtime_config(config);
    let mut created = Created {
        id: Digest::of_bytes(b""),
        layer: None,
        warnings: Vec::new(),
    };
    match changes {
        Some(dir) => {
            let (descriptor, layer, warnings) = add_changes(store, dir)?;
            draft.add_layer(descriptor, &layer.diff_id, history);
            created.layer = Some(layer);
            created.warnings = warnings;
        }
        None => draft.add_empty_layer(history),
    }
    created.id = draft.commit(store, tags)?;
    Ok(created)
}
// ANCHOR_END: create_image

/// Packs `dir` into a layer blob (an uncompressed tar, so its digest is its diff_id) and
/// unpacks it into the store.
fn add_changes(store: &Store, dir: &Path) -> Result<(Descriptor, LayerInfo, Vec<String>)> {
    let temp = crate::store::TempPath(store.temp_path("commit"));
    let file = std::fs::File::create(temp.path())
        .map_err(|e| ImageError::io(format!("create {}", temp.path().display()), e))?;
    let packed = crate::diff::pack(dir, std::io::BufWriter::new(file))
        .map_err(|e| ImageError::layer(format!("pack changes in {}", dir.display()), e))?;
    let reader = std::fs::File::open(temp.path())
        .map_err(|e| ImageError::io(format!("open {}", temp.path().display()), e))?;
    let what = format!("layer of changes in {}", dir.display());
    let (blob, size) = store.put_blob(reader, Some(&packed.diff_id), &what)?;
    let (layer, mut warnings) = store.unpack_layer(&blob, Some(&packed.diff_id), &what)?;
    warnings.extend(packed.warnings);
    let descriptor = Descriptor::new(MediaType::ImageLayer, size, blob.to_oci());
    Ok((descriptor, layer, warnings))
}
