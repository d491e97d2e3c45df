//! The image commands as library functions: `images`, `rmi`, `tag`, `inspect`, `history`.
//!
//! Each follows Docker's command of the same name: its columns and wording (`docker images`,
//! `docker image inspect`, `docker history`), and its rules for removal (`docker rmi`): removing
//! a tag that is not the image's last only untags; removing the last one, or the image by id,
//! deletes the image and then every blob and layer no other image uses. An image that a container
//! uses (a `<root>/containers/<id>/image` file holds its id) is not deleted: without `force` that
//! is a conflict; with `force` the tags go and the image stays, dangling, until its containers do.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::Serialize;

use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::human::{ago, ellipsis, human_size, table};
use crate::image::Image;
use crate::reference::ImageRef;
use crate::store::Store;

/// One row of `images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// The familiar repository name, or `<none>` for an untagged image.
    pub repository: String,
    /// The tag, or `<none>`.
    pub tag: String,
    /// The image id.
    pub id: Digest,
    /// When the image was created (RFC 3339), if known.
    pub created: Option<String>,
    /// Bytes of its layers' contents.
    pub size: u64,
}

/// The layers and history that make an image what it is: a parent's are a prefix of its child's.
fn lineage(image: &Image) -> (Vec<String>, Vec<String>) {
    let diff_ids = image.config.rootfs().diff_ids().clone();
    let history = image
        .config
        .history()
        .iter()
        .flatten()
        .map(|h| h.created_by().clone().unwrap_or_default())
        .collect();
    (diff_ids, history)
}

/// Whether `image` is an intermediate image: untagged, and the parent of another image (its
/// layers and history are a strict prefix of another's), as `build` leaves behind for its cache.
fn is_intermediate(image: &Image, all: &[(Vec<String>, Vec<String>)]) -> bool {
    if !image.repo_tags.is_empty() {
        return false;
    }
    let (layers, history) = lineage(image);
    all.iter().any(|(other_layers, other_history)| {
        other_history.len() > history.len()
            && other_history.starts_with(&history)
            && other_layers.starts_with(&layers)
    })
}

/// Every image, one row per tag (one `<none>` row for an untagged image), newest first.
/// Intermediate images (untagged parents of other images, left by `build`) only with `all`,
/// as `docker images -a`.
pub fn list(store: &Store, all: bool) -> Result<Vec<ImageRow>> {
    let mut rows = Vec::new();
    let images: Vec<Image> = store
        .image_ids()?
        .iter()
        .map(|id| store.image(id))
        .collect::<Result<_>>()?;
    let lineages: Vec<_> = images.iter().map(lineage).collect();
    for image in &images {
        if !all && is_intermediate(image, &lineages) {
            continue;
        }
        let id = image.id.clone();
        let tags: Vec<ImageRef> = image
            .repo_tags
            .iter()
            .filter_map(|r| ImageRef::parse(r).ok())
            .collect();
        let row = |repository: String, tag: String| ImageRow {
            repository,
            tag,
            id: id.clone(),
            created: image.created().map(str::to_string),
            size: image.size(),
        };
        if tags.is_empty() {
            rows.push(row("<none>".into(), "<none>".into()));
        }
        for tag in tags {
            let name = tag.tag().unwrap_or("<none>").to_string();
            rows.push(row(tag.familiar_name(), name));
        }
    }
    let time = |r: &ImageRow| r.created.as_deref().and_then(crate::human::parse_time);
    rows.sort_by(|a, b| {
        time(b)
            .cmp(&time(a))
            .then_with(|| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)))
    });
    Ok(rows)
}

/// The `images` table; with `quiet`, only the ids (`images -q`).
pub fn images_table(rows: &[ImageRow], quiet: bool, now: SystemTime) -> String {
    if quiet {
        return rows.iter().map(|r| format!("{}\n", r.id.short())).collect();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.repository.clone(),
                r.tag.clone(),
                r.id.short().to_string(),
                ago(r.created.as_deref(), now),
                human_size(r.size),
            ]
        })
        .collect();
    table(
        &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        &cells,
    )
}

/// One line of what `rmi` did, printed as Docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A tag was removed (`Untagged: busybox:latest`).
    Untagged(String),
    /// The image was deleted (`Deleted: sha256:…`).
    Deleted(Digest),
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removed::Untagged(name) => write!(f, "Untagged: {name}"),
            Removed::Deleted(id) => write!(f, "Deleted: {id}"),
        }
    }
}

/// The containers whose `<root>/containers/<id>/image` file names image `id`, sorted.
pub fn containers_using(store: &Store, id: &Digest) -> Result<Vec<String>> {
    let dir = store.root().join("containers");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ImageError::io(format!("list {}", dir.display()), e)),
    };
    let mut users = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ImageError::io(format!("list {}", dir.display()), e))?;
        // The overlay's marker, while its root is mounted; stage 07's record (`image_id`)
        // for a container that is created or stopped and has no mount.
        let marker = std::fs::read_to_string(entry.path().join("image")).unwrap_or_default();
        let recorded = std::fs::read(entry.path().join("config.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|record| record.get("image_id")?.as_str().map(str::to_string))
            .unwrap_or_default();
        if [marker.trim(), recorded.as_str()]
            .iter()
            .any(|text| *text == id.as_str() || *text == id.hex())
        {
            users.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    users.sort();
    Ok(users)
}

// ANCHOR: remove
/// `rmi NAME`: untags, and deletes the image and its unshared blobs and layers once nothing names
/// or uses it. An unknown name is "No such image: NAME".
pub fn remove(store: &Store, name: &str, force: bool) -> Result<Vec<Removed>> {
    let lock = store.lock_exclusive()?;
    let id = store.resolve(name)?;
    // The labs' control for this refusal (`SKIFF_UNSAFE_DISABLE=image-in-use`) sees no users.
    let users = if chroot::defence::disabled("image-in-use") {
        Vec::new()
    } else {
        containers_using(store, &id)?
    };
    let by_tag = store.tag_naming(name, &id);
    let mut removed = Vec::new();
    let delete = store.update_tags(|index| {
        let references = index.references_to(&id);
        let untag: Vec<String> = match &by_tag {
            // Not the last tag: untag only.
            Some(tag) if references.len() > 1 => vec![tag.full()],
            Some(tag) => {
                if let (Some(user), false) = (users.first(), force) {
                    return Err(ImageError::Conflict(format!(
                        "unable to remove repository reference {:?} (must force) - container {user} is using its referenced image {}",
                        tag.familiar(),
                        id.short()
                    )));
                }
                vec![tag.full()]
            }
            None => {
                let repositories: std::collections::BTreeSet<String> = references
                    .iter()
                    .filter_map(|r| ImageRef::parse(r).ok())
                    .map(|r| r.name())
                    .collect();
                if repositories.len() > 1 && !force {
                    return Err(ImageError::Conflict(format!(
                        "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        id.short()
                    )));
                }
                if let (Some(user), false) = (users.first(), force) {
                    return Err(ImageError::Conflict(format!(
                        "unable to delete {} (must be forced) - image is being used by container {user}",
                        id.short()
                    )));
                }
                references.clone()
            }
        };
        for full in &untag {
            if let Ok(reference) = ImageRef::parse(full) {
                index.remove(&reference.name(), full);
                removed.push(Removed::Untagged(reference.familiar()));
            }
        }
        let last = untag.len() == references.len();
        Ok(last && users.is_empty())
    })?;
    if delete {
        // Read before the record goes (a corrupt image has no readable lineage: no parents).
        let image = store.image(&id).ok();
        store.remove_record(&id)?;
        removed.push(Removed::Deleted(id));
        // Then the untagged parents `build` left for its cache, as Docker deletes them: each
        // one that no other image descends from and no container uses.
        if let Some(image) = image {
            removed.extend(remove_unused_parents(store, &image)?);
        }
        store.collect_garbage(&lock)?;
    }
    Ok(removed)
}
// ANCHOR_END: remove

// ANCHOR: prune
/// `image prune`: deletes the *dangling* images — untagged, not the parent of another image
/// (build's cache keeps those), and used by no container — or with `all` every image no
/// container uses. An image a container uses is never deleted, whatever `all` says. Returns
/// what was untagged and deleted, in `rmi`'s words.
pub fn prune(store: &Store, all: bool) -> Result<Vec<Removed>> {
    let images: Vec<Image> = store
        .image_ids()?
        .iter()
        .map(|id| store.image(id))
        .collect::<Result<_>>()?;
    let lineages: Vec<_> = images.iter().map(lineage).collect();
    let mut removed = Vec::new();
    for image in &images {
        let dangling = image.repo_tags.is_empty() && !is_intermediate(image, &lineages);
        if !(all || dangling) || !containers_using(store, &image.id)?.is_empty() {
            continue;
        }
        // An earlier deletion in this loop may have taken this one with it (a parent).
        if store.resolve(image.id.as_str()).is_err() {
            continue;
        }
        match remove(store, image.id.as_str(), true) {
            Ok(done) => removed.extend(done),
            // Another image still names it (a child taken first keeps a parent): leave it.
            Err(ImageError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}
// ANCHOR_END: prune

/// Deletes the untagged ancestors of `image` that nothing else needs any more, nearest first.
fn remove_unused_parents(store: &Store, image: &Image) -> Result<Vec<Removed>> {
    let mut removed = Vec::new();
    let (mut layers, mut history) = lineage(image);
    loop {
        // Images that cannot be read (corrupt) are nobody's parent here.
        let images: Vec<Image> = store
            .image_ids()?
            .iter()
            .filter_map(|id| store.image(id).ok())
            .collect();
        // The nearest ancestor: the longest history that is a strict prefix of this one.
        let parent = images
            .iter()
            .filter(|candidate| {
                let (l, h) = lineage(candidate);
                h.len() < history.len() && history.starts_with(&h) && layers.starts_with(&l)
            })
            .max_by_key(|candidate| lineage(candidate).1.len());
        let Some(parent) = parent else {
            return Ok(removed);
        };
        let (parent_layers, parent_history) = lineage(parent);
        let has_children = images.iter().any(|other| {
            let (l, h) = lineage(other);
            other.id != parent.id
                && h.len() > parent_history.len()
                && h.starts_with(&parent_history)
                && l.starts_with(&parent_layers)
        });
        if !parent.repo_tags.is_empty()
            || has_children
            || !containers_using(store, &parent.id)?.is_empty()
        {
            return Ok(removed);
        }
        store.remove_record(&parent.id)?;
        removed.push(Removed::Deleted(parent.id.clone()));
        (layers, history) = (parent_layers, parent_history);
    }
}

/// `tag SOURCE TARGET`: `TARGET` (a name and tag, no digest) names the image `SOURCE` names.
pub fn tag(store: &Store, source: &str, target: &str) -> Result<()> {
    let target = ImageRef::parse_tag(target)?;
    let _lock = store.lock_shared()?;
    let id = store.resolve(source)?;
    crate::image::tag_all(store, &id, &[target])
}

/// `docker image inspect`'s view of an image (the fields skiff knows).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    /// The image id.
    pub id: String,
    /// Its tags, familiar form.
    pub repo_tags: Vec<String>,
    /// `name@sha256:…` references.
    pub repo_digests: Vec<String>,
    /// The comment of its last history entry.
    pub comment: String,
    /// When it was created.
    pub created: String,
    /// Who made it.
    pub author: String,
    /// Runtime defaults.
    pub config: InspectConfig,
    /// CPU architecture (`amd64`).
    pub architecture: String,
    /// Architecture variant (`v8`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Operating system (`linux`).
    pub os: String,
    /// Bytes of its layers' contents.
    pub size: u64,
    /// Its layers.
    #[serde(rename = "RootFS")]
    pub root_fs: InspectRootFs,
}

/// The runtime defaults of an image, as `inspect` shows them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectConfig {
    /// `USER`.
    pub user: String,
    /// `EXPOSE`d ports, as Docker's `{"80/tcp": {}}`.
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    /// `ENV`.
    pub env: Option<Vec<String>>,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `VOLUME`s, as `{"/data": {}}`.
    pub volumes: Option<BTreeMap<String, Empty>>,
    /// `WORKDIR`.
    pub working_dir: String,
    /// `LABEL`s.
    pub labels: Option<BTreeMap<String, String>>,
    /// `STOPSIGNAL`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// An empty JSON object, the value of Docker's set-like maps.
#[derive(Debug, Clone, Serialize)]
pub struct Empty {}

/// The layers of an image, as `inspect` shows them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectRootFs {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The diff_ids, lowest first.
    pub layers: Vec<String>,
}

/// `inspect NAME`.
pub fn inspect(store: &Store, name: &str) -> Result<ImageInspect> {
    let image = store.image(&store.resolve(name)?)?;
    Ok(inspect_image(&image))
}

/// The inspect view of an image already read.
pub fn inspect_image(image: &Image) -> ImageInspect {
    let config = image.config.config().clone().unwrap_or_default();
    let set = |items: &Option<Vec<String>>| {
        items
            .as_ref()
            .map(|v| v.iter().map(|k| (k.clone(), Empty {})).collect())
    };
    let comment = image
        .config
        .history()
        .as_ref()
        .and_then(|h| h.last())
        .and_then(|h| h.comment().clone())
        .unwrap_or_default();
    ImageInspect {
        id: image.id.to_string(),
        repo_tags: image.familiar_tags(),
        repo_digests: image.repo_digests.clone(),
        comment,
        created: image.created().unwrap_or_default().to_string(),
        author: image.config.author().clone().unwrap_or_default(),
        config: InspectConfig {
            user: config.user().clone().unwrap_or_default(),
            exposed_ports: set(config.exposed_ports()),
            env: config.env().clone(),
            cmd: config.cmd().clone(),
            entrypoint: config.entrypoint().clone(),
            volumes: set(config.volumes()),
            working_dir: config.working_dir().clone().unwrap_or_default(),
            labels: config
                .labels()
                .as_ref()
                .map(|l| l.clone().into_iter().collect()),
            stop_signal: config.stop_signal().clone(),
        },
        architecture: image.config.architecture().to_string(),
        variant: image.config.variant().clone(),
        os: image.config.os().to_string(),
        size: image.size(),
        root_fs: InspectRootFs {
            kind: image.config.rootfs().typ().clone(),
            layers: image.config.rootfs().diff_ids().clone(),
        },
    }
}

/// One row of `history`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The image id on the top row; `None` (`<missing>`) below, as for any image not built here.
    pub image: Option<Digest>,
    /// When the step ran (RFC 3339).
    pub created: Option<String>,
    /// The command that made it.
    pub created_by: String,
    /// Bytes its layer added (0 for a step that made no layer).
    pub size: u64,
    /// Its comment.
    pub comment: String,
}

/// `history NAME`: the steps that made the image, newest first.
pub fn history(store: &Store, name: &str) -> Result<Vec<HistoryRow>> {
    let image = store.image(&store.resolve(name)?)?;
    let mut layers = image.layers.iter();
    let mut rows: Vec<HistoryRow> = image
        .config
        .history()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let size = if h.empty_layer() == Some(true) {
                0
            } else {
                layers.next().map_or(0, |l| l.size)
            };
            HistoryRow {
                image: None,
                created: h.created().clone(),
                created_by: h.created_by().clone().unwrap_or_default(),
                size,
                comment: h.comment().clone().unwrap_or_default(),
            }
        })
        .collect();
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.image = Some(image.id.clone());
    }
    Ok(rows)
}

/// The `history` table; `no_trunc` shows full ids and commands.
pub fn history_table(rows: &[HistoryRow], no_trunc: bool, now: SystemTime) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let image = match &r.image {
                Some(id) if no_trunc => id.to_string(),
                Some(id) => id.short().to_string(),
                None => "<missing>".into(),
            };
            let created_by = r.created_by.replace(['\t', '\n'], " ");
            let created_by = if no_trunc {
                created_by
            } else {
                ellipsis(&created_by, 45)
            };
            vec![
                image,
                ago(r.created.as_deref(), now),
                created_by,
                human_size(r.size),
                r.comment.clone(),
            ]
        })
        .collect();
    table(
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &cells,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use oci_spec::image::ConfigBuilder;

    use super::*;
    use crate::image::{create_image, history_entry};
    use crate::import::import;
    use crate::testutil::{LayerTar, is_root, tree};

    pub(crate) fn rootfs() -> Vec<u8> {
        LayerTar::new()
            .dir("bin/")
            .file_with(
                "bin/hello",
                b"#!/bin/sh\necho hello\n",
                0o755,
                0,
                1_700_000_000,
            )
            .file("etc/motd", b"welcome\n")
            .file("etc/os-release", b"ID=skiff\n")
            .bytes()
    }

    pub(crate) fn store_with_image(tag: &str) -> (tempfile::TempDir, Store, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let tag = ImageRef::parse(tag).unwrap();
        let id = import(&store, &rootfs()[..], "rootfs.tar", Some(&tag))
            .unwrap()
            .id;
        (dir, store, id)
    }

    fn config(cmd: &[&str]) -> oci_spec::image::Config {
        ConfigBuilder::default()
            .env(vec!["PATH=/bin".to_string()])
            .cmd(cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    }

    #[test]
    fn an_imported_image_can_be_listed_inspected_and_mounted() {
        let (_dir, store, id) = store_with_image("demo:1");
        let rows = list(&store, true).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].repository.as_str(), rows[0].tag.as_str()),
            ("demo", "1")
        );
        assert_eq!(rows[0].id, id);
        let table = images_table(&rows, false, SystemTime::now());
        assert!(
            table.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
            "{table}"
        );
        assert!(
            table.contains(&format!("demo         1         {}", id.short())),
            "{table}"
        );
        assert!(table.contains("ago"), "{table}");
        assert_eq!(
            images_table(&rows, true, SystemTime::now()),
            format!("{}\n", id.short())
        );

        let inspect = inspect(&store, "demo:1").unwrap();
        let diff_id = Digest::of_bytes(&rootfs());
        assert_eq!(inspect.id, id.to_string());
        assert_eq!(inspect.repo_tags, vec!["demo:1"]);
        assert_eq!(inspect.architecture, "amd64");
        assert_eq!(inspect.os, "linux");
        assert_eq!(inspect.root_fs.layers, vec![diff_id.to_string()]);
        assert_eq!(inspect.config.cmd, None);
        assert_eq!(inspect.comment, "Imported from rootfs.tar");
        assert_eq!(inspect.size, 21 + 8 + 9);
        let json = serde_json::to_value(&inspect).unwrap();
        for key in [
            "Id",
            "RepoTags",
            "RepoDigests",
            "Created",
            "Architecture",
            "Os",
            "Config",
            "RootFS",
            "Size",
        ] {
            assert!(json.get(key).is_some(), "inspect has {key}: {json}");
        }
        assert_eq!(json["RootFS"]["Type"], "layers");

        let dirs = store.layer_dirs(&id).unwrap();
        assert_eq!(dirs, vec![store.layer_dir(&diff_id)]);
        assert_eq!(
            std::fs::read(dirs[0].join("etc/motd")).unwrap(),
            b"welcome\n"
        );

        let history = history(&store, "demo:1").unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].image.as_ref(), Some(&id));
        assert_eq!(history[0].comment, "Imported from rootfs.tar");
        assert_eq!(history[0].size, 38);
    }

    #[test]
    fn images_are_found_by_reference_id_or_prefix() {
        let (_dir, store, id) = store_with_image("demo:1");
        let manifest = store.record(&id).unwrap().unwrap().manifest;
        for name in [
            "demo:1".to_string(),
            "docker.io/library/demo:1".to_string(),
            id.to_string(),
            id.hex().to_string(),
            id.short().to_string(),
            format!("sha256:{}", &id.hex()[..8]),
            format!("demo@{manifest}"),
        ] {
            assert_eq!(store.resolve(&name).unwrap(), id, "{name}");
        }
        for missing in [
            "demo".to_string(),
            "demo:2".to_string(),
            "other:1".to_string(),
            "0000000".to_string(),
            format!("other@{manifest}"),
        ] {
            let err = store.resolve(&missing).unwrap_err();
            assert_eq!(err.to_string(), format!("No such image: {missing}"));
        }
        let err = remove(&store, "nope", false).unwrap_err();
        assert_eq!(err.to_string(), "No such image: nope");
    }

    #[test]
    fn rmi_untags_then_deletes_as_docker_does() {
        let (_dir, store, id) = store_with_image("demo:1");
        tag(&store, "demo:1", "demo:2").unwrap();
        tag(&store, id.short(), "localhost:5000/team/demo").unwrap();
        assert!(
            tag(
                &store,
                "demo:1",
                "x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            )
            .is_err()
        );
        let tags = store.image(&id).unwrap().familiar_tags();
        assert_eq!(
            tags,
            vec!["demo:1", "demo:2", "localhost:5000/team/demo:latest"]
        );

        assert_eq!(
            remove(&store, "demo:2", false).unwrap(),
            vec![Removed::Untagged("demo:2".into())]
        );
        let err = remove(&store, id.short(), false).unwrap_err().to_string();
        assert!(err.contains("referenced in multiple repositories"), "{err}");

        let removed = remove(&store, id.short(), true).unwrap();
        let lines: Vec<String> = removed.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "Untagged: demo:1".to_string(),
                "Untagged: localhost:5000/team/demo:latest".to_string(),
                format!("Deleted: {id}"),
            ]
        );
        assert!(store.image_ids().unwrap().is_empty());
        assert!(
            store.blobs().unwrap().is_empty(),
            "every blob went with the image"
        );
        assert!(
            store.layers().unwrap().is_empty(),
            "every layer went with the image"
        );
        assert!(store.tags().unwrap().repositories.is_empty());
    }

    #[test]
    fn an_image_a_container_uses_is_kept() {
        let (_dir, store, id) = store_with_image("demo:1");
        let container = store.root().join("containers/c0ffee");
        std::fs::create_dir_all(&container).unwrap();
        std::fs::write(container.join("image"), format!("{id}\n")).unwrap();
        assert_eq!(containers_using(&store, &id).unwrap(), vec!["c0ffee"]);

        let err = remove(&store, "demo:1", false).unwrap_err().to_string();
        assert!(
            err.contains("must force") && err.contains("c0ffee"),
            "{err}"
        );
        let err = remove(&store, id.short(), false).unwrap_err().to_string();
        assert!(err.contains("being used by container c0ffee"), "{err}");

        let removed = remove(&store, "demo:1", true).unwrap();
        assert_eq!(removed, vec![Removed::Untagged("demo:1".into())]);
        assert!(
            store.image(&id).is_ok(),
            "the image stays while a container uses it"
        );
        let rows = list(&store, true).unwrap();
        assert_eq!(
            (rows[0].repository.as_str(), rows[0].tag.as_str()),
            ("<none>", "<none>")
        );

        std::fs::remove_dir_all(&container).unwrap();
        let removed = remove(&store, id.short(), false).unwrap();
        assert_eq!(removed, vec![Removed::Deleted(id)]);
    }

    #[test]
    fn committed_images_share_their_parents_layers() {
        if !is_root() {
            return;
        }
        let (_dir, store, base) = store_with_image("demo:1");
        let changes = tempfile::tempdir().unwrap();
        std::fs::write(changes.path().join("app"), b"new program").unwrap();
        nix::sys::stat::mknod(
            &changes.path().join("etc"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let child = create_image(
            &store,
            Some(&base),
            Some(changes.path()),
            config(&["/app"]),
            history_entry("skiff commit", Some("my change")),
            &[ImageRef::parse("demo:child").unwrap()],
        )
        .unwrap();
        assert_eq!(child.layer.as_ref().unwrap().size, 11);
        let image = store.image(&child.id).unwrap();
        assert_eq!(image.layers.len(), 2);
        let dirs = store.layer_dirs(&child.id).unwrap();
        assert_eq!(
            dirs[0],
            store.layer_dir(&Digest::of_bytes(&rootfs())),
            "lowest first"
        );
        assert_eq!(tree(&dirs[1]), vec!["app", "etc"]);

        // A step that changes only the config adds no layer.
        let configured = create_image(
            &store,
            Some(&child.id),
            None,
            config(&["/app", "--verbose"]),
            history_entry("/bin/sh -c #(nop)  CMD [\"/app\" \"--verbose\"]", None),
            &[ImageRef::parse("demo:configured").unwrap()],
        )
        .unwrap();
        assert!(configured.layer.is_none());
        let inspect = inspect(&store, "demo:configured").unwrap();
        assert_eq!(
            inspect.config.cmd,
            Some(vec!["/app".into(), "--verbose".into()])
        );
        assert_eq!(inspect.config.env, Some(vec!["PATH=/bin".into()]));
        assert_eq!(inspect.root_fs.layers.len(), 2);
        let rows = history(&store, "demo:configured").unwrap();
        let sizes: Vec<u64> = rows.iter().map(|r| r.size).collect();
        assert_eq!(sizes, vec![0, 11, 38]);
        assert_eq!(rows[1].comment, "my change");
        let table = history_table(&rows, false, SystemTime::now());
        assert!(table.starts_with("IMAGE          CREATED"), "{table}");
        assert!(table.contains("<missing>"), "{table}");
        assert!(
            table.contains("/bin/sh -c #(nop)  CMD [\"/app\" \"--verbose\"]"),
            "{table}"
        );

        // Removing the parent keeps the layer its children use.
        remove(&store, "demo:1", false).unwrap();
        assert!(store.layer(&Digest::of_bytes(&rootfs())).unwrap().is_some());
        assert!(store.layer_dirs(&configured.id).is_ok());
        remove(&store, "demo:child", false).unwrap();
        remove(&store, "demo:configured", false).unwrap();
        assert!(store.blobs().unwrap().is_empty());
        assert!(store.layers().unwrap().is_empty());
    }

    #[test]
    fn leftovers_of_a_crash_are_invisible_and_collected() {
        let (_dir, store, id) = store_with_image("demo:1");
        // What a load killed midway leaves: a temp dir, a blob and a layer no image refers to.
        let temp = store.temp_path("layer");
        std::fs::create_dir_all(temp.join("diff/etc")).unwrap();
        let orphan = LayerTar::new().file("half", b"done").bytes();
        let (blob, _) = store.put_blob(&orphan[..], None, "orphan").unwrap();
        store.unpack_layer(&blob, None, "orphan").unwrap();
        assert_eq!(
            list(&store, true).unwrap().len(),
            1,
            "only complete images are listed"
        );

        let lock = store.lock_exclusive().unwrap();
        let garbage = store.collect_garbage(&lock).unwrap();
        drop(lock);
        assert_eq!(garbage.blobs, vec![blob]);
        assert_eq!(garbage.layers, vec![Digest::of_bytes(&orphan)]);
        assert_eq!(tree(&store.root().join("tmp")), Vec::<String>::new());
        assert!(
            store.layer_dirs(&id).unwrap()[0].join("etc/motd").is_file(),
            "the image is intact"
        );
    }

    #[test]
    fn a_corrupt_image_is_reported_and_can_still_be_removed() {
        let (_dir, store, id) = store_with_image("demo:1");
        std::fs::write(store.blob_path(&id), b"{}").unwrap();
        let err = inspect(&store, "demo:1").unwrap_err().to_string();
        assert!(
            err.contains("corrupt") && err.contains("skiff rmi"),
            "{err}"
        );
        let removed = remove(&store, "demo:1", false).unwrap();
        assert_eq!(removed.last(), Some(&Removed::Deleted(id)));
        assert!(store.blobs().unwrap().is_empty());
        assert!(store.layers().unwrap().is_empty());
    }
}
