//! `pull NAME[:TAG|@DIGEST]`: an image from a registry into the store.
//!
//! The requests, in order (OCI distribution spec, "Pulling manifests" and "Pulling blobs"):
//!
//! ```text
//! GET /v2/                                  the ping: which credentials? (see client.rs)
//! GET /v2/<name>/manifests/<tag|digest>     Accept: the manifest and index media types
//! GET /v2/<name>/manifests/<digest>         if that was an index: this platform's manifest
//! GET /v2/<name>/blobs/<config digest>      the config (the image id is its digest)
//! GET /v2/<name>/blobs/<layer digest>       each layer the store lacks, three at a time
//! ```
//!
//! Nothing is believed before it is checked: the manifest against the digest the reference (or
//! the index) pins and against the registry's own `Docker-Content-Digest`, each blob against the
//! digest the manifest gives while it streams into the store (which refuses a mismatch and
//! keeps nothing of it), each layer's content against the config's diff_id as it is unpacked.
//! Only then is the image registered, through the same path `load` uses: the manifest stored
//! byte for byte (so its digest stays the one the registry knows), the record with its
//! `repo_digests`, the tag. A pull that fails leaves no image; layers it had already verified
//! stay as unreferenced blobs (a retry does not fetch them again) until `rmi` collects them.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use ureq::http::Method;

use super::client::{Exact, Payload, error_message, header, scope};
use super::progress::{Counting, Progress};
use super::{Client, Options, PARALLEL_LAYERS, Platform, RegistryError, Result, in_parallel};
use crate::digest::Digest;
use crate::error::ImageError;
use crate::image::{diff_ids, parse_config, register};
use crate::reference::ImageRef;
use crate::store::Store;

/// The manifest media types skiff reads, in the order of the `Accept` header.
pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The largest manifest or index accepted (containerd's limit).
const MAX_MANIFEST: u64 = 4 << 20;
/// The largest config accepted.
const MAX_CONFIG: u64 = 32 << 20;

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image id (its config's digest).
    pub id: Digest,
    /// The digest of what the reference names: the manifest, or the index it was chosen from.
    pub digest: Digest,
    /// `name@sha256:…`, recorded in the image's `repo_digests`.
    pub repo_digest: String,
    /// How many layer blobs were downloaded (0 when the store had them all).
    pub downloaded: usize,
    /// Whether the reference named this very image before the pull.
    pub up_to_date: bool,
    /// Things worth saying: a platform that is not this machine's, entries skipped unpacking.
    pub warnings: Vec<String>,
}

/// A manifest or index as the registry sent it, with its verified digest.
struct Fetched {
    bytes: Vec<u8>,
    digest: Digest,
}

/// A layer to fetch: its blob descriptor, its diff_id, and what to call it in messages.
struct Layer {
    blob: Digest,
    size: u64,
    diff_id: Digest,
    what: String,
}

// ANCHOR: pull
/// Pulls `reference` into `store`, reporting to `progress`.
pub fn pull(
    store: &Store,
    reference: &ImageRef,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Pulled> {
    let name = reference.repository();
    let client = Client::connect(reference.registry(), vec![scope(name, "pull")], options)?;
    let _lock = store.lock_shared()?;
    let wanted = reference.digest().or(reference.tag()).unwrap_or("latest");

    // 1. The manifest the reference names: by digest it must hash to that digest.
    let pinned = reference.digest().map(Digest::parse).transpose()?;
    let top = fetch_manifest(&client, reference, wanted, pinned.as_ref())?;
    progress.line(&format!(
        "{wanted}: Pulling from {}",
        reference.repository()
    ));

    // 2. An index: the entry for the platform wanted, pinned by the index.
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let manifest = resolve_index(&client, reference, &top, &platform)?;
    let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes).map_err(|e| {
        protocol(
            &client,
            reference,
            format!("its manifest {} is not valid: {e}", manifest.digest),
        )
    })?;

    // 3. The config, pinned by the manifest: its digest is the image id.
    let id = Digest::from_oci(parsed.config().digest())?;
    let config = fetch_config(&client, store, reference, &id, parsed.config().size())?;
    let image_config = parse_config(&config, &id)?;
    let mut warnings = check_platform(reference, options, &image_config)?;
    let layers = layers_of(reference, &parsed, &diff_ids(&image_config)?)?;

    // 4. The layers, pinned by the manifest, checked against the diff_ids of the config.
    let mut todo = Vec::new();
    for layer in &layers {
        if store.has_blob(&layer.blob) && store.layer(&layer.diff_id)?.is_some() {
            progress.layer(&layer.blob, "Already exists", true);
        } else {
            progress.layer(&layer.blob, "Pulling fs layer", false);
            todo.push(layer);
        }
    }
    let downloaded = todo.iter().filter(|l| !store.has_blob(&l.blob)).count();
    let shown = reference.familiar_name();
    let fetched = in_parallel(&todo, PARALLEL_LAYERS, |layer| {
        fetch_layer(&client, store, (name, &shown), layer, progress)
    })?;
    warnings.extend(fetched.iter().flatten().cloned());

    // 5. Register: config, manifest as sent, record, repo digest, tag.
    let before = store
        .tags()?
        .get(&reference.name(), &reference.full())
        .cloned();
    let existed = store.record(&id)?.is_some();
    // Checked already: fetched against `id`, or read (verified) from the store.
    store.put_blob_bytes(&config, "image config")?;
    let tags: Vec<ImageRef> = match reference.digest() {
        Some(_) => Vec::new(),
        None => vec![reference.clone()],
    };
    let registered = register(store, &manifest.bytes, &tags)?;
    let repo_digest = format!("{}@{}", reference.familiar_name(), top.digest);
    add_repo_digest(store, &registered, &repo_digest)?;

    let up_to_date = todo.is_empty()
        && match reference.digest() {
            Some(_) => existed,
            None => before.as_ref() == Some(&registered),
        };
    progress.line(&format!("Digest: {}", top.digest));
    progress.line(&format!(
        "Status: {} for {}",
        if up_to_date {
            "Image is up to date"
        } else {
            "Downloaded newer image"
        },
        reference.familiar()
    ));
    Ok(Pulled {
        id: registered,
        digest: top.digest,
        repo_digest,
        downloaded,
        up_to_date,
        warnings,
    })
}
// ANCHOR_END: pull

// ANCHOR: fetch_manifest
/// `GET /v2/<name>/manifests/<tag|digest>`, checked: against `pinned` when the reference (or an
/// index) gives a digest, and against the registry's `Docker-Content-Digest` header.
fn fetch_manifest(
    client: &Client,
    reference: &ImageRef,
    tag_or_digest: &str,
    pinned: Option<&Digest>,
) -> Result<Fetched> {
    let url = client.url(&format!(
        "/v2/{}/manifests/{tag_or_digest}",
        reference.repository()
    ));
    let accept = MANIFEST_TYPES.join(", ");
    let mut response = client.request(
        Method::GET,
        &url,
        &[("Accept", accept.as_str())],
        Payload::Empty,
    )?;
    match response.status().as_u16() {
        200 => {}
        404 => {
            return Err(RegistryError::ManifestUnknown {
                reference: shown_reference(reference, tag_or_digest),
                message: error_message(&mut response),
            });
        }
        _ => {
            let what = format!("GET manifest {tag_or_digest} of {}", reference.name());
            return Err(client.error_for(
                response,
                &what,
                Some(("pull", &reference.familiar_name())),
            ));
        }
    }
    let claimed = header(&response, "docker-content-digest").and_then(|d| Digest::parse(d).ok());
    let bytes = response
        .body_mut()
        .with_config()
        .limit(MAX_MANIFEST)
        .read_to_vec()
        .map_err(|e| {
            protocol(
                client,
                reference,
                format!("reading its manifest failed: {e}"),
            )
        })?;
    let digest = Digest::of_bytes(&bytes);
    let what = format!("manifest for {}", shown_reference(reference, tag_or_digest));
    for expected in [pinned, claimed.as_ref()].into_iter().flatten() {
        if *expected != digest {
            return Err(RegistryError::DigestMismatch {
                what,
                registry: client.registry().to_string(),
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
    }
    Ok(Fetched { bytes, digest })
}
// ANCHOR_END: fetch_manifest

/// `repo:tag` or `repo@digest`, as the user would write it.
fn shown_reference(reference: &ImageRef, tag_or_digest: &str) -> String {
    let separator = if tag_or_digest.starts_with(Digest::PREFIX) {
        '@'
    } else {
        ':'
    };
    format!("{}{separator}{tag_or_digest}", reference.familiar_name())
}

// ANCHOR: resolve_index
/// The manifest for `platform`: `fetched` itself when it is a manifest; when it is an image
/// index (a multi-platform image), the entry for the platform, fetched by the digest the index
/// gives (so the index pins it).
fn resolve_index(
    client: &Client,
    reference: &ImageRef,
    fetched: &Fetched,
    platform: &Platform,
) -> Result<Fetched> {
    let mut current = Fetched {
        bytes: fetched.bytes.clone(),
        digest: fetched.digest.clone(),
    };
    // An index may (rarely) point at another index: follow a couple of levels, no more.
    for _ in 0..3 {
        let value: serde_json::Value = serde_json::from_slice(&current.bytes).map_err(|e| {
            protocol(
                client,
                reference,
                format!("manifest {} is not JSON: {e}", current.digest),
            )
        })?;
        if value.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
            return Err(RegistryError::Invalid(format!(
                "{} has a schema 1 manifest, which skiff (like Docker since 2024) does not pull: push it again with a current tool",
                reference.familiar()
            )));
        }
        if value.get("manifests").is_none() {
            return Ok(current);
        }
        let index: ImageIndex = serde_json::from_value(value).map_err(|e| {
            protocol(
                client,
                reference,
                format!("index {} is not valid: {e}", current.digest),
            )
        })?;
        let chosen = choose(&index, platform)?;
        let digest = Digest::from_oci(chosen.digest())?;
        current = fetch_manifest(client, reference, digest.as_str(), Some(&digest))?;
    }
    Err(protocol(
        client,
        reference,
        "image indexes nested too deeply".into(),
    ))
}

/// The index entry for `platform`, Docker's error when there is none.
pub fn choose<'i>(index: &'i ImageIndex, platform: &Platform) -> Result<&'i Descriptor> {
    index
        .manifests()
        .iter()
        .find(|d| {
            d.platform().as_ref().is_some_and(|p| {
                platform.matches(
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref(),
                )
            })
        })
        .ok_or_else(|| RegistryError::NoMatchingManifest {
            platform: platform.to_string(),
        })
}
// ANCHOR_END: resolve_index

/// The config blob, from the store when it is there, else from the registry (checked).
fn fetch_config(
    client: &Client,
    store: &Store,
    reference: &ImageRef,
    id: &Digest,
    size: u64,
) -> Result<Vec<u8>> {
    if store.has_blob(id) {
        return Ok(store.read_blob(id)?);
    }
    if size > MAX_CONFIG {
        return Err(protocol(
            client,
            reference,
            format!("its config is {size} bytes, more than skiff accepts"),
        ));
    }
    let path = format!("/v2/{}/blobs/{id}", reference.repository());
    let response = client.follow(Method::GET, &path, &[])?;
    if response.status().as_u16() != 200 {
        let what = format!("GET config {id} of {}", reference.name());
        return Err(client.error_for(response, &what, Some(("pull", &reference.familiar_name()))));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut Exact::new(response.into_body().into_reader(), size),
        &mut bytes,
    )
    .map_err(|e| {
        protocol(
            client,
            reference,
            format!("downloading its config {id} failed: {e}"),
        )
    })?;
    let actual = Digest::of_bytes(&bytes);
    if actual != *id {
        return Err(RegistryError::DigestMismatch {
            what: format!("config of {}", reference.familiar()),
            registry: client.registry().to_string(),
            expected: id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

/// A single-platform image for another platform: an error when `--platform` asked for one,
/// otherwise Docker's warning.
fn check_platform(
    reference: &ImageRef,
    options: &Options,
    config: &oci_spec::image::ImageConfiguration,
) -> Result<Vec<String>> {
    let os = config.os().to_string();
    let arch = config.architecture().to_string();
    let variant = config.variant().as_deref();
    let wanted = options.platform.clone().unwrap_or_else(Platform::host);
    if wanted.matches(&os, &arch, variant) {
        return Ok(Vec::new());
    }
    let actual = Platform {
        os,
        architecture: arch,
        variant: variant.map(str::to_string),
    };
    if options.platform.is_some() {
        return Err(RegistryError::PlatformMismatch {
            reference: reference.familiar(),
            wanted: wanted.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(vec![format!(
        "The requested image's platform ({actual}) does not match the detected host platform ({wanted}) and no specific platform was requested"
    )])
}

/// The manifest's layer blobs paired with the config's diff_ids.
fn layers_of(
    reference: &ImageRef,
    manifest: &ImageManifest,
    diff_ids: &[Digest],
) -> Result<Vec<Layer>> {
    if manifest.layers().len() != diff_ids.len() {
        return Err(RegistryError::Invalid(format!(
            "{}: its manifest lists {} layers but its config {}: the image is malformed",
            reference.familiar(),
            manifest.layers().len(),
            diff_ids.len()
        )));
    }
    manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(descriptor, diff_id)| {
            let blob = Digest::from_oci(descriptor.digest())?;
            Ok(Layer {
                what: format!("layer {blob} of {}", reference.familiar()),
                blob,
                size: descriptor.size(),
                diff_id: diff_id.clone(),
            })
        })
        .collect()
}

// ANCHOR: fetch_layer
/// Downloads one layer blob into the store (unless it is there) and unpacks it (unless it is
/// unpacked). The blob streams through `put_blob`, which hashes it on the way and keeps it only
/// if it hashes to the digest the manifest gives. Returns warnings from unpacking.
fn fetch_layer(
    client: &Client,
    store: &Store,
    (name, shown): (&str, &str),
    layer: &Layer,
    progress: &dyn Progress,
) -> Result<Vec<String>> {
    if !store.has_blob(&layer.blob) {
        let response = client.follow(
            Method::GET,
            &format!("/v2/{name}/blobs/{}", layer.blob),
            &[],
        )?;
        if response.status().as_u16() != 200 {
            let what = format!("GET {}", layer.what);
            return Err(client.error_for(response, &what, Some(("pull", shown))));
        }
        progress.layer(&layer.blob, "Downloading", false);
        let body = Exact::new(response.into_body().into_reader(), layer.size);
        let mut reader = Counting::new(body, progress, &layer.blob, layer.size);
        match store.put_blob(&mut reader, Some(&layer.blob), &layer.what) {
            Ok(_) => {}
            Err(ImageError::DigestMismatch {
                what,
                expected,
                actual,
            }) => {
                return Err(RegistryError::DigestMismatch {
                    what,
                    registry: client.registry().to_string(),
                    expected,
                    actual,
                });
            }
            // The network failed (or sent the wrong length), not the disk: say so.
            Err(_) if reader.failure.is_some() => {
                return Err(RegistryError::Protocol {
                    registry: client.registry().to_string(),
                    what: format!("download {}", layer.what),
                    reason: reader.failure.unwrap_or_default(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        progress.layer(&layer.blob, "Download complete", false);
    }
    progress.layer(&layer.blob, "Extracting", false);
    let (_, warnings) = store.unpack_layer(&layer.blob, Some(&layer.diff_id), &layer.what)?;
    progress.layer(&layer.blob, "Pull complete", true);
    Ok(warnings)
}
// ANCHOR_END: fetch_layer

/// Adds `name@digest` to the image's record, once.
pub(crate) fn add_repo_digest(store: &Store, id: &Digest, repo_digest: &str) -> Result<()> {
    let Some(mut record) = store.record(id)? else {
        return Err(ImageError::NoSuchImage(id.to_string()).into());
    };
    if !record.repo_digests.iter().any(|d| d == repo_digest) {
        record.repo_digests.push(repo_digest.to_string());
        record.repo_digests.sort();
        store.put_record(&record)?;
    }
    Ok(())
}

fn protocol(client: &Client, reference: &ImageRef, reason: String) -> RegistryError {
    RegistryError::Protocol {
        registry: client.registry().to_string(),
        what: format!("pull {}", reference.familiar()),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(&str, &str, Option<&str>)]) -> ImageIndex {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut platform = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    platform["variant"] = serde_json::json!(v);
                }
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "size": 10,
                    "digest": Digest::of_bytes(format!("{i}").as_bytes()).to_string(),
                    "platform": platform,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }))
        .unwrap()
    }

    #[test]
    fn the_platform_entry_is_chosen_not_the_first() {
        let index = index(&[
            ("linux", "arm64", Some("v8")),
            ("linux", "arm", Some("v7")),
            ("linux", "amd64", None),
            ("unknown", "unknown", None),
        ]);
        let amd64 = choose(&index, &Platform::parse("linux/amd64").unwrap()).unwrap();
        assert_eq!(
            amd64.digest().to_string(),
            Digest::of_bytes(b"2").to_string()
        );
        let arm64 = choose(&index, &Platform::parse("linux/arm64").unwrap()).unwrap();
        assert_eq!(
            arm64.digest().to_string(),
            Digest::of_bytes(b"0").to_string()
        );
        let v6 = choose(&index, &Platform::parse("linux/arm/v6").unwrap()).unwrap_err();
        assert_eq!(
            v6.to_string(),
            "no matching manifest for linux/arm/v6 in the manifest list entries"
        );
    }

    #[test]
    fn references_are_shown_with_the_right_separator() {
        let r = ImageRef::parse("localhost:5000/x:nope").unwrap();
        assert_eq!(shown_reference(&r, "nope"), "localhost:5000/x:nope");
        let d = Digest::of_bytes(b"");
        assert_eq!(
            shown_reference(&r, d.as_str()),
            format!("localhost:5000/x@{d}")
        );
    }
}
