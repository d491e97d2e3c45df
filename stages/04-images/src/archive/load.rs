//! `load FILE`: every image of a docker-archive or OCI layout goes into the store.
//!
//! Each image is checked on the way in: a blob named by a digest must hash to it, and each layer
//! must unpack to the diff_id its config lists (the config's digest is the image id, so this
//! ties every layer's content to the id). Layers the store already has are not unpacked again.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::source::Source;
use super::{ArchiveFormat, CONTAINERD_NAME, DockerManifestEntry, REF_NAME, detect};
use crate::bounded::Exact;
use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::image::{diff_ids, new_manifest, parse_config, register};
use crate::import::blob_compression;
use crate::reference::ImageRef;
use crate::store::Store;

/// What `load` put in the store.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The images, in the archive's order.
    pub images: Vec<LoadedImage>,
    /// Things skipped or left unnamed, with the reason.
    pub warnings: Vec<String>,
}

/// One loaded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Its id.
    pub id: Digest,
    /// Its tags, familiar form (`busybox:latest`).
    pub tags: Vec<String>,
}

impl Loaded {
    /// What Docker prints after a load: `Loaded image: NAME` per tag, `Loaded image ID: ID` for
    /// an untagged image.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for image in &self.images {
            if image.tags.is_empty() {
                out.push(format!("Loaded image ID: {}", image.id));
            }
            for tag in &image.tags {
                out.push(format!("Loaded image: {tag}"));
            }
        }
        out
    }
}

/// An image found in an archive, before it is stored.
struct Incoming {
    config: Vec<u8>,
    /// The archive's own manifest, kept byte for byte (OCI layouts), so its digest survives.
    manifest: Option<Vec<u8>>,
    layers: Vec<IncomingLayer>,
    tags: Vec<ImageRef>,
}

struct IncomingLayer {
    /// Its path in the archive.
    member: String,
    /// The blob digest, when the archive names it (OCI layouts).
    digest: Option<Digest>,
    /// The blob's size, when a descriptor declares it (OCI layouts).
    size: Option<u64>,
    media_type: Option<MediaType>,
}

/// Loads every image in the archive at `path` (a tar file, plain or gzip, or an OCI layout
/// directory).
pub fn load(store: &Store, path: &Path) -> Result<Loaded> {
    let _lock = store.lock_shared()?;
    let source = Source::open(store, path)?;
    let mut loaded = Loaded::default();
    let incoming = match detect(&source)? {
        ArchiveFormat::DockerArchive => docker_images(&source)?,
        ArchiveFormat::DockerArchiveOci => {
            let mut images = oci_images(&source, &mut loaded.warnings)?;
            add_docker_tags(&source, &mut images)?;
            images
        }
        ArchiveFormat::OciLayout => oci_images(&source, &mut loaded.warnings)?,
    };
    if incoming.is_empty() {
        return Err(ImageError::archive(path, "it holds no image"));
    }
    for image in incoming {
        let id = store_image(store, &source, &image, &mut loaded.warnings)?;
        loaded.images.push(LoadedImage {
            id,
            tags: image.tags.iter().map(ImageRef::familiar).collect(),
        });
    }
    Ok(loaded)
}

/// The images of a docker-archive, from its `manifest.json`.
fn docker_images(source: &Source) -> Result<Vec<Incoming>> {
    let mut images = Vec::new();
    for entry in docker_manifest(source)? {
        images.push(Incoming {
            config: source.read(&entry.config)?,
            manifest: None,
            layers: entry
                .layers
                .iter()
                .map(|member| IncomingLayer {
                    member: member.clone(),
                    digest: None,
                    size: None,
                    media_type: None,
                })
                .collect(),
            tags: parse_tags(source, entry.repo_tags.unwrap_or_default())?,
        });
    }
    Ok(images)
}

fn docker_manifest(source: &Source) -> Result<Vec<DockerManifestEntry>> {
    let bytes = source.read("manifest.json")?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::json(format!("manifest.json in {}", source.path().display()), e))
}

fn parse_tags(source: &Source, tags: Vec<String>) -> Result<Vec<ImageRef>> {
    tags.iter()
        .map(|t| {
            ImageRef::parse_tag(t).map_err(|e| {
                ImageError::archive(source.path(), format!("its RepoTags entry {t:?}: {e}"))
            })
        })
        .collect()
}

/// Docker 25 archives name images in both tables of contents: take `RepoTags` too.
fn add_docker_tags(source: &Source, images: &mut [Incoming]) -> Result<()> {
    for entry in docker_manifest(source)? {
        let config = Digest::of_bytes(&source.read(&entry.config)?);
        let tags = parse_tags(source, entry.repo_tags.unwrap_or_default())?;
        if let Some(image) = images
            .iter_mut()
            .find(|i| Digest::of_bytes(&i.config) == config)
        {
            for tag in tags {
                if !image.tags.contains(&tag) {
                    image.tags.push(tag);
                }
            }
        }
    }
    Ok(())
}

/// The images of an OCI layout, from its `index.json`. One manifest listed several times (once
/// per tag) is one image.
fn oci_images(source: &Source, warnings: &mut Vec<String>) -> Result<Vec<Incoming>> {
    let bytes = source.read("index.json")?;
    let index: ImageIndex = serde_json::from_slice(&bytes)
        .map_err(|e| ImageError::json(format!("index.json in {}", source.path().display()), e))?;
    let mut images: Vec<Incoming> = Vec::new();
    let mut by_manifest: HashMap<Digest, usize> = HashMap::new();
    for descriptor in index.manifests() {
        let tags = names(descriptor, warnings);
        let (digest, manifest_bytes) = pick_manifest(source, descriptor, 0)?;
        if let Some(&i) = by_manifest.get(&digest) {
            for tag in tags {
                if !images[i].tags.contains(&tag) {
                    images[i].tags.push(tag);
                }
            }
            continue;
        }
        let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
            ImageError::json(
                format!("manifest {digest} in {}", source.path().display()),
                e,
            )
        })?;
        let config_digest = Digest::from_oci(manifest.config().digest())?;
        let layers = manifest
            .layers()
            .iter()
            .map(|layer| {
                let digest = Digest::from_oci(layer.digest())?;
                Ok(IncomingLayer {
                    member: blob_member(&digest),
                    digest: Some(digest),
                    size: Some(layer.size()),
                    media_type: Some(layer.media_type().clone()),
                })
            })
            .collect::<Result<_>>()?;
        by_manifest.insert(digest, images.len());
        images.push(Incoming {
            config: read_blob(source, &config_digest)?,
            manifest: Some(manifest_bytes),
            layers,
            tags,
        });
    }
    Ok(images)
}

/// The manifest a descriptor of `index.json` points to. A nested index (a multi-platform image)
/// is resolved to the manifest for this machine's platform.
fn pick_manifest(source: &Source, descriptor: &Descriptor, depth: u8) -> Result<(Digest, Vec<u8>)> {
    let digest = Digest::from_oci(descriptor.digest())?;
    let bytes = read_blob(source, &digest)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        ImageError::json(format!("blob {digest} in {}", source.path().display()), e)
    })?;
    if value.get("manifests").is_none() {
        return Ok((digest, bytes));
    }
    if depth > 2 {
        return Err(ImageError::archive(
            source.path(),
            "image indexes nested too deeply",
        ));
    }
    let index: ImageIndex = serde_json::from_value(value)
        .map_err(|e| ImageError::json(format!("image index {digest}"), e))?;
    let arch = crate::image::host_arch();
    let present: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| Digest::from_oci(d.digest()).is_ok_and(|d| source.exists(&blob_member(&d))))
        .collect();
    let chosen = present
        .iter()
        .find(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| *p.architecture() == arch && p.os().to_string() == "linux")
        })
        .or(present.first())
        .ok_or_else(|| {
            ImageError::archive(
                source.path(),
                format!("index {digest} has no manifest whose blobs are in the archive"),
            )
        })?;
    pick_manifest(source, chosen, depth + 1)
}

/// The names an index entry gives its manifest.
fn names(descriptor: &Descriptor, warnings: &mut Vec<String>) -> Vec<ImageRef> {
    let Some(annotations) = descriptor.annotations() else {
        return Vec::new();
    };
    if let Some(name) = annotations.get(CONTAINERD_NAME)
        && let Ok(reference) = ImageRef::parse_tag(name)
    {
        return vec![reference];
    }
    let Some(name) = annotations.get(REF_NAME) else {
        return Vec::new();
    };
    // The spec's convention is a tag (`latest`); skopeo and podman write a whole reference
    // (`busybox:latest`). Only the latter names a repository.
    if (name.contains(':') || name.contains('/'))
        && let Ok(reference) = ImageRef::parse_tag(name)
    {
        return vec![reference];
    }
    warnings.push(format!(
        "manifest {} is named only {name:?}, a tag with no repository: loaded untagged; name it with `tag`",
        descriptor.digest()
    ));
    Vec::new()
}

fn blob_member(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Reads a small blob of the archive and checks its digest.
fn read_blob(source: &Source, digest: &Digest) -> Result<Vec<u8>> {
    let bytes = source.read(&blob_member(digest))?;
    let actual = Digest::of_bytes(&bytes);
    if actual != *digest {
        return Err(ImageError::DigestMismatch {
            what: format!(
                "blob {} in {}",
                blob_member(digest),
                source.path().display()
            ),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

// ANCHOR: declared_size
/// A reader of `layer`'s blob that yields its declared size and not a byte more (see
/// [`crate::bounded`]): a blob larger than its descriptor says is refused before it is read, and
/// one that grows while it is read (a directory's file) is cut off at the size.
fn declared_size<'s>(
    source: &'s Source,
    layer: &IncomingLayer,
    what: &str,
) -> Result<Box<dyn std::io::Read + 's>> {
    let (reader, actual) = source.reader(&layer.member)?;
    let Some(declared) = layer.size else {
        // A docker-archive declares no sizes: its tar header's is the one there is.
        return Ok(reader);
    };
    if actual > declared && crate::bounded::enabled() {
        return Err(ImageError::archive(
            source.path(),
            format!(
                "{what}: its blob is {actual} bytes, more than the {declared} bytes its manifest declares"
            ),
        ));
    }
    Ok(Box::new(Exact::new(reader, declared)))
}
// ANCHOR_END: declared_size

// ANCHOR: store_image
/// Puts one image into the store: its config, each layer blob (verified), each layer unpacked
/// (checked against its diff_id), then its manifest and record.
fn store_image(
    store: &Store,
    source: &Source,
    image: &Incoming,
    warnings: &mut Vec<String>,
) -> Result<Digest> {
    let config_digest = store.put_blob_bytes(&image.config, "image config")?;
    let config = parse_config(&image.config, &config_digest)?;
    let diff_ids = diff_ids(&config)?;
    if diff_ids.len() != image.layers.len() {
        return Err(ImageError::archive(
            source.path(),
            format!(
                "image {config_digest} lists {} layers in its config but {} in its manifest",
                diff_ids.len(),
                image.layers.len()
            ),
        ));
    }
    let mut descriptors = Vec::new();
    for (i, (layer, diff_id)) in image.layers.iter().zip(&diff_ids).enumerate() {
        let what = format!(
            "layer {} ({}) of {}",
            i + 1,
            layer.member,
            source.path().display()
        );
        let blob = match &layer.digest {
            Some(digest) if store.has_blob(digest) => digest.clone(),
            // A docker-archive layer is a plain tar whose digest is its diff_id: stored already?
            None if store.has_blob(diff_id) && store.layer(diff_id)?.is_some() => diff_id.clone(),
            expected => {
                let reader = declared_size(source, layer, &what)?;
                store.put_blob(reader, expected.as_ref(), &what)?.0
            }
        };
        let (_, skipped) = store.unpack_layer(&blob, Some(diff_id), &what)?;
        warnings.extend(skipped);
        let media_type = match &layer.media_type {
            Some(media_type) => media_type.clone(),
            None => blob_compression(store, &blob)?.media_type(),
        };
        let size = std::fs::metadata(store.blob_path(&blob))
            .map_err(|e| ImageError::io(format!("stat blob {blob}"), e))?
            .len();
        descriptors.push(Descriptor::new(media_type, size, blob.to_oci()));
    }
    let manifest = match &image.manifest {
        Some(bytes) => bytes.clone(),
        None => new_manifest(&config_digest, image.config.len(), descriptors)?,
    };
    register(store, &manifest, &image.tags)
}
// ANCHOR_END: store_image
