//! `push NAME[:TAG]`: an image from the store to a registry.
//!
//! Blobs first, the manifest last (OCI distribution spec, "Push"), so a tag never names an
//! image whose blobs are not all there. For each blob (layers, then the config):
//!
//! ```text
//! HEAD /v2/<name>/blobs/<digest>                       200: the registry has it already
//! POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<other>
//!                                                      201: mounted from another repository
//! POST /v2/<name>/blobs/uploads/                       202, Location: an upload session
//! PUT  <location>?digest=<digest>   (the whole blob)   201: stored, the registry checked the digest
//! PUT  /v2/<name>/manifests/<tag>   (the manifest)     201, Docker-Content-Digest
//! ```
//!
//! The manifest pushed is the one the store holds, byte for byte, with the media type it
//! declares: its descriptors are those of the blobs as stored (a layer stored uncompressed goes
//! up uncompressed), and its digest, the one `pull NAME@digest` will ask for, stays the same
//! wherever the image travels. A mount needs to know another repository of the same registry
//! that has the blob: the image's `repo_digests` say where it came from or went before.

use ureq::http::Method;

use super::client::{Exact, Payload, header, resolve, scope};
use super::progress::{Counting, Progress};
use super::pull::add_repo_digest;
use super::{Client, Options, PARALLEL_LAYERS, RegistryError, Result, in_parallel};
use crate::digest::Digest;
use crate::error::ImageError;
use crate::image::parse_manifest;
use crate::reference::ImageRef;
use crate::store::Store;

/// The media type of a manifest that does not say (the OCI spec allows leaving it out).
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The tag pushed.
    pub tag: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: usize,
    /// `name@sha256:…`, recorded in the image's `repo_digests`.
    pub repo_digest: String,
}

/// A repository: its path in the registry, and its name as users see it (for messages).
struct Repository<'a> {
    name: &'a str,
    shown: String,
}

/// How one blob got there.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Exists,
    Mounted(String),
    Pushed,
}

// ANCHOR: push
/// Pushes the image `reference` names in `store` to its registry, reporting to `progress`.
pub fn push(
    store: &Store,
    reference: &ImageRef,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Pushed> {
    if reference.digest().is_some() {
        return Err(RegistryError::Invalid(format!(
            "cannot push a digest reference ({}): push NAME[:TAG]",
            reference.familiar()
        )));
    }
    let tag = reference.tag().unwrap_or("latest").to_string();
    let _lock = store.lock_shared()?;
    let id = store.resolve(&reference.full()).map_err(|e| match e {
        ImageError::NoSuchImage(_) => RegistryError::Invalid(format!(
            "An image does not exist locally with the tag: {}",
            reference.familiar_name()
        )),
        other => other.into(),
    })?;
    let image = store.image(&id)?;
    let manifest = store.read_blob(&image.manifest_digest)?;
    let media_type = media_type(&manifest, &image.manifest_digest)?;
    let name = reference.repository();
    let sources = mount_sources(reference, &image.repo_digests);
    let mut scopes = vec![scope(name, "pull,push")];
    scopes.extend(sources.iter().map(|from| scope(from, "pull")));
    let client = Client::connect(reference.registry(), scopes, options)?;
    let repository = Repository {
        name,
        shown: reference.familiar_name(),
    };
    progress.line(&format!(
        "The push refers to repository [{}]",
        reference.familiar_name()
    ));

    // Blobs first: layers (topmost shown first, as Docker does), then the config.
    let parsed = parse_manifest(&manifest, &image.manifest_digest)?;
    let mut layers: Vec<(Digest, u64)> = parsed
        .layers()
        .iter()
        .map(|d| Ok((Digest::from_oci(d.digest())?, d.size())))
        .collect::<Result<_>>()?;
    layers.reverse();
    let mut seen = std::collections::HashSet::new();
    layers.retain(|(digest, _)| seen.insert(digest.clone()));
    for (digest, _) in &layers {
        progress.layer(digest, "Preparing", false);
    }
    in_parallel(&layers, PARALLEL_LAYERS, |(digest, size)| {
        let outcome = push_blob(
            &client,
            store,
            &repository,
            digest,
            *size,
            &sources,
            progress,
        )?;
        let status = match outcome {
            Outcome::Exists => "Layer already exists".to_string(),
            Outcome::Mounted(from) => format!("Mounted from {from}"),
            Outcome::Pushed => "Pushed".to_string(),
        };
        progress.layer(digest, &status, true);
        Ok(())
    })?;
    push_blob(
        &client,
        store,
        &repository,
        &id,
        parsed.config().size(),
        &sources,
        &super::Quiet,
    )?;

    // The manifest last: from now on the tag names the image.
    let digest = put_manifest(
        &client,
        reference,
        &tag,
        &manifest,
        &media_type,
        &image.manifest_digest,
    )?;
    let repo_digest = format!("{}@{digest}", reference.familiar_name());
    add_repo_digest(store, &id, &repo_digest)?;
    progress.line(&format!("{tag}: digest: {digest} size: {}", manifest.len()));
    Ok(Pushed {
        tag,
        digest,
        size: manifest.len(),
        repo_digest,
    })
}
// ANCHOR_END: push

/// The manifest's declared media type (OCI's when it declares none).
fn media_type(manifest: &[u8], digest: &Digest) -> Result<String> {
    let value: serde_json::Value = serde_json::from_slice(manifest)
        .map_err(|e| ImageError::json(format!("manifest {digest}"), e))?;
    Ok(value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or(OCI_MANIFEST)
        .to_string())
}

/// Other repositories of the same registry that hold the image (from its `repo_digests`).
fn mount_sources(reference: &ImageRef, repo_digests: &[String]) -> Vec<String> {
    let mut sources: Vec<String> = repo_digests
        .iter()
        .filter_map(|d| ImageRef::parse(d).ok())
        .filter(|r| {
            r.registry() == reference.registry() && r.repository() != reference.repository()
        })
        .map(|r| r.repository().to_string())
        .collect();
    sources.sort();
    sources.dedup();
    sources
}

// ANCHOR: push_blob
/// Makes sure the registry has blob `digest` in repository `name`: already there, mounted
/// from another repository, or uploaded (one `PUT` of the whole blob).
fn push_blob(
    client: &Client,
    store: &Store,
    repository: &Repository<'_>,
    digest: &Digest,
    size: u64,
    sources: &[String],
    progress: &dyn Progress,
) -> Result<Outcome> {
    let (name, access) = (repository.name, Some(("push", repository.shown.as_str())));
    // A registry whose blobs live elsewhere answers with a redirect to them.
    let head = client.follow(Method::HEAD, &format!("/v2/{name}/blobs/{digest}"), &[])?;
    match head.status().as_u16() {
        200 => return Ok(Outcome::Exists),
        404 => {}
        _ => return Err(client.error_for(head, &format!("HEAD blob {digest}"), access)),
    }
    let uploads = client.url(&format!("/v2/{name}/blobs/uploads/"));
    let mut session = None;
    // One try, from the first repository that may have it: a refused mount starts an upload
    // session, which is then used rather than left open.
    if let Some(from) = sources.first() {
        // Digests and repository names need no escaping in a query: [a-z0-9:._/-] only.
        let url = format!("{uploads}?mount={digest}&from={from}");
        let response = client.request(Method::POST, &url, &[], Payload::Empty)?;
        match response.status().as_u16() {
            201 => return Ok(Outcome::Mounted(from.clone())),
            // Not mounted (the source lacks it, or we may not read it): an upload began instead.
            202 => session = header(&response, "location").map(str::to_string),
            _ => {
                return Err(client.error_for(
                    response,
                    &format!("mount blob {digest} from {from}"),
                    access,
                ));
            }
        }
    }
    let location = match session {
        Some(location) => location,
        None => {
            let response = client.request(Method::POST, &uploads, &[], Payload::Empty)?;
            if response.status().as_u16() != 202 {
                return Err(client.error_for(
                    response,
                    &format!("start upload of blob {digest}"),
                    access,
                ));
            }
            header(&response, "location")
                .map(str::to_string)
                .ok_or_else(|| {
                    upload_error(client, digest, "the upload session has no Location".into())
                })?
        }
    };
    let url =
        resolve(&uploads, &location).map_err(|reason| upload_error(client, digest, reason))?;
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{separator}digest={digest}");

    // The blob as stored, checked as it is read: a corrupt copy is never sent whole.
    let (blob, stored_size) = store.open_blob(digest)?;
    if stored_size != size {
        return Err(RegistryError::Invalid(format!(
            "blob {digest} in the store is {stored_size} bytes but the manifest says {size}: the store's copy is corrupt; remove the image (images rmi) and pull or load it again"
        )));
    }
    progress.layer(digest, "Pushing", false);
    let mut body = Counting::new(Exact::new(blob, size), progress, digest, size);
    let result = client.request(Method::PUT, &url, &[], Payload::Stream(&mut body, size));
    if let Some(failure) = body.failure {
        // Our side failed (the stored blob is corrupt, or could not be read): that is the news.
        return Err(RegistryError::Invalid(format!(
            "push blob {digest}: reading it from the store failed: {failure}"
        )));
    }
    let response = result?;
    match response.status().as_u16() {
        201 => Ok(Outcome::Pushed),
        _ => Err(client.error_for(response, &format!("upload blob {digest}"), access)),
    }
}
// ANCHOR_END: push_blob

fn upload_error(client: &Client, digest: &Digest, reason: String) -> RegistryError {
    RegistryError::Protocol {
        registry: client.registry().to_string(),
        what: format!("upload blob {digest}"),
        reason,
    }
}

/// `PUT /v2/<name>/manifests/<tag>`; the registry's `Docker-Content-Digest` must be ours.
fn put_manifest(
    client: &Client,
    reference: &ImageRef,
    tag: &str,
    manifest: &[u8],
    media_type: &str,
    digest: &Digest,
) -> Result<Digest> {
    let name = reference.repository();
    let url = client.url(&format!("/v2/{name}/manifests/{tag}"));
    let response = client.request(Method::PUT, &url, &[], Payload::Bytes(manifest, media_type))?;
    if response.status().as_u16() != 201 {
        return Err(client.error_for(
            response,
            &format!("PUT manifest {tag}"),
            Some(("push", &reference.familiar_name())),
        ));
    }
    if let Some(claimed) = header(&response, "docker-content-digest")
        && claimed != digest.as_str()
    {
        return Err(RegistryError::Protocol {
            registry: client.registry().to_string(),
            what: format!("PUT manifest {tag}"),
            reason: format!("it stored the manifest as {claimed}, but its digest is {digest}"),
        });
    }
    Ok(digest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_come_from_other_repositories_of_the_same_registry() {
        let reference = ImageRef::parse("localhost:5000/b:1").unwrap();
        let d = Digest::of_bytes(b"m");
        let digests = vec![
            format!("localhost:5000/a@{d}"),
            format!("localhost:5000/b@{d}"),
            format!("quay.io/c@{d}"),
            format!("localhost:5000/a@{d}"),
            "not a reference".to_string(),
        ];
        assert_eq!(mount_sources(&reference, &digests), vec!["a"]);
    }

    #[test]
    fn a_manifest_keeps_its_declared_media_type() {
        let d = Digest::of_bytes(b"");
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
        assert_eq!(
            media_type(docker, &d).unwrap(),
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        assert_eq!(
            media_type(br#"{"schemaVersion":2}"#, &d).unwrap(),
            OCI_MANIFEST
        );
        assert!(media_type(b"{", &d).is_err());
    }
}
