//! Image archives: `load` and `save` in the two formats images travel in as files.
//!
//! - **docker-archive**, what `docker save` writes. Its table of contents is `manifest.json`, a list
//!   of `{"Config": path, "RepoTags": ["busybox:latest"], "Layers": [path, ...]}`. Before Docker
//!   25 the paths were `<id>.json` and `<layer id>/layer.tar` (with a `repositories` file beside
//!   them); since Docker 25 the archive is also an OCI image layout and the paths point into its
//!   `blobs/sha256/`.
//! - **OCI image layout** (OCI image spec, `image-layout.md`): an `oci-layout` file, an
//!   `index.json` listing manifests, and every blob under `blobs/sha256/<hex>`; names travel as
//!   the annotations `org.opencontainers.image.ref.name` (a tag, or for some tools a whole
//!   reference) and `io.containerd.image.name` (a whole reference, written by Docker). As a tar
//!   (`oci-archive`) or as a directory.
//!
//! `load` tells them apart by which table of contents is there (see `detect`). `save` writes a
//! docker-archive the way Docker 25 does (both tables of contents, uncompressed layers, so its
//! layer digests are the diff_ids), or an OCI layout with the blobs exactly as stored, so the
//! manifest and layer digests survive a round trip. The image id (config digest) and diff_ids
//! always do.

mod load;
mod save;
mod source;

pub use load::{Loaded, LoadedImage, load};
pub use save::{SaveFormat, save};

use serde::{Deserialize, Serialize};

use crate::error::{ImageError, Result};
use source::Source;

/// The layouts `load` recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `manifest.json` only: `docker save` before Docker 25, skopeo's `docker-archive`.
    DockerArchive,
    /// `manifest.json` and an OCI layout: `docker save` from Docker 25 on.
    DockerArchiveOci,
    /// An OCI layout only: `oci-layout` and `index.json`.
    OciLayout,
}

// ANCHOR: detect
/// Tells which layout an archive has from the files at its top.
fn detect(source: &Source) -> Result<ArchiveFormat> {
    let docker = source.exists("manifest.json");
    let oci = source.exists("oci-layout") && source.exists("index.json");
    match (docker, oci) {
        (true, true) => Ok(ArchiveFormat::DockerArchiveOci),
        (true, false) => Ok(ArchiveFormat::DockerArchive),
        (false, true) => Ok(ArchiveFormat::OciLayout),
        (false, false) => Err(ImageError::archive(
            source.path(),
            "neither a docker-archive (no manifest.json) nor an OCI image layout (no oci-layout \
             and index.json): give a file made by `docker save`, `skiff save` or skopeo",
        )),
    }
}
// ANCHOR_END: detect

/// One entry of a docker-archive's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DockerManifestEntry {
    /// Path of the config in the archive.
    #[serde(rename = "Config")]
    config: String,
    /// Tags in the familiar form; `null` for an untagged image.
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    /// Paths of the layer tarballs, lowest first.
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The annotation Docker and containerd put the whole image name in.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation for a manifest's name in an index.
const REF_NAME: &str = oci_spec::image::ANNOTATION_REF_NAME;
/// The content of `oci-layout`.
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::digest::Digest;
    use crate::image::create_image;
    use crate::import::import;
    use crate::ops::tests::{rootfs, store_with_image};
    use crate::reference::ImageRef;
    use crate::store::Store;
    use crate::testutil::{LayerTar, gzip, tree};

    fn fresh_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        (dir, store)
    }

    /// A two-layer image tagged `app:2`, on top of `demo:1`.
    fn two_layers() -> (tempfile::TempDir, Store, Digest) {
        let (dir, store, base) = store_with_image("demo:1");
        let changes = dir.path().join("changes");
        std::fs::create_dir_all(changes.join("srv")).unwrap();
        std::fs::write(changes.join("srv/index.html"), b"<h1>hi</h1>").unwrap();
        let config = oci_spec::image::ConfigBuilder::default()
            .cmd(vec!["/bin/hello".to_string()])
            .build()
            .unwrap();
        let history = crate::image::history_entry("skiff commit", None);
        let tag = ImageRef::parse("app:2").unwrap();
        let id = create_image(&store, Some(&base), Some(&changes), config, history, &[tag])
            .unwrap()
            .id;
        (dir, store, id)
    }

    fn round_trip(format: SaveFormat, name: &str) {
        let (dir, store, id) = two_layers();
        let original = store.image(&id).unwrap();
        let out = dir.path().join(name);
        save(&store, &["app:2", "demo:1"], format, &out).unwrap();

        let (_dir2, other) = fresh_store();
        let loaded = load(&other, &out).unwrap();
        assert_eq!(loaded.images.len(), 2);
        assert_eq!(
            loaded.images[0].id, id,
            "the image id (config digest) survives"
        );
        assert_eq!(loaded.images[0].tags, vec!["app:2"]);
        assert_eq!(loaded.messages()[0], "Loaded image: app:2");
        let copy = other.image(&id).unwrap();
        assert_eq!(
            copy.config.rootfs().diff_ids(),
            original.config.rootfs().diff_ids()
        );
        if format != SaveFormat::DockerArchive {
            assert_eq!(
                copy.manifest_digest, original.manifest_digest,
                "OCI keeps the manifest"
            );
            assert_eq!(copy.manifest.layers(), original.manifest.layers());
        }
        let top = other.layer_dirs(&id).unwrap().pop().unwrap();
        assert_eq!(
            std::fs::read(top.join("srv/index.html")).unwrap(),
            b"<h1>hi</h1>"
        );
        assert_eq!(other.resolve("demo:1").unwrap(), loaded.images[1].id);
        // Loading again changes nothing.
        let again = load(&other, &out).unwrap();
        assert_eq!(again.images[0].id, id);
    }

    #[test]
    fn docker_archive_round_trip() {
        round_trip(SaveFormat::DockerArchive, "images.tar");
    }

    #[test]
    fn oci_archive_round_trip() {
        round_trip(SaveFormat::OciArchive, "images-oci.tar");
    }

    #[test]
    fn oci_directory_round_trip() {
        round_trip(SaveFormat::OciDir, "layout");
    }

    #[test]
    fn a_docker_archive_is_also_an_oci_layout_with_plain_layers() {
        let (dir, store, id) = two_layers();
        let out = dir.path().join("x.tar");
        save(&store, &["app:2"], SaveFormat::DockerArchive, &out).unwrap();
        let source = Source::open(&store, &out).unwrap();
        assert_eq!(detect(&source).unwrap(), ArchiveFormat::DockerArchiveOci);
        let manifest: Vec<DockerManifestEntry> =
            serde_json::from_slice(&source.read("manifest.json").unwrap()).unwrap();
        assert_eq!(manifest[0].config, format!("blobs/sha256/{}", id.hex()));
        assert_eq!(manifest[0].repo_tags, Some(vec!["app:2".to_string()]));
        let image = store.image(&id).unwrap();
        let expected: Vec<String> = image
            .layers
            .iter()
            .map(|l| format!("blobs/sha256/{}", l.diff_id.hex()))
            .collect();
        assert_eq!(
            manifest[0].layers, expected,
            "layer blobs are the plain tars"
        );
        let index: serde_json::Value =
            serde_json::from_slice(&source.read("index.json").unwrap()).unwrap();
        let annotations = &index["manifests"][0]["annotations"];
        assert_eq!(annotations[CONTAINERD_NAME], "docker.io/library/app:2");
        assert_eq!(annotations[REF_NAME], "2");
    }

    #[test]
    fn gzip_layers_are_decompressed_for_a_docker_archive() {
        let (dir, store) = fresh_store();
        let tag = ImageRef::parse("zipped:1").unwrap();
        let id = import(&store, &gzip(&rootfs())[..], "rootfs.tar.gz", Some(&tag))
            .unwrap()
            .id;
        let image = store.image(&id).unwrap();
        assert_eq!(
            image.manifest.layers()[0].media_type(),
            &oci_spec::image::MediaType::ImageLayerGzip
        );
        let out = dir.path().join("z.tar");
        save(&store, &["zipped:1"], SaveFormat::DockerArchive, &out).unwrap();
        let (_d, other) = fresh_store();
        let loaded = load(&other, &out).unwrap();
        assert_eq!(loaded.images[0].id, id);
        let copy = other.image(&id).unwrap();
        assert_eq!(
            Digest::from_oci(copy.manifest.layers()[0].digest()).unwrap(),
            Digest::of_bytes(&rootfs())
        );
        assert_eq!(tree(&store.root().join("tmp")), Vec::<String>::new());
    }

    #[test]
    fn a_gzipped_archive_loads() {
        let (dir, store, id) = store_with_image("demo:1");
        let out = dir.path().join("d.tar");
        save(&store, &["demo:1"], SaveFormat::DockerArchive, &out).unwrap();
        let zipped = dir.path().join("d.tar.gz");
        std::fs::write(&zipped, gzip(&std::fs::read(&out).unwrap())).unwrap();
        let (_d, other) = fresh_store();
        assert_eq!(load(&other, &zipped).unwrap().images[0].id, id);
        assert_eq!(tree(&other.root().join("tmp")), Vec::<String>::new());
    }

    /// A docker-archive as `docker save` wrote it before Docker 25.
    fn legacy_archive(path: &Path, layer: &[u8], config: &[u8]) {
        let config_name = format!("{}.json", Digest::of_bytes(config).hex());
        let manifest = format!(
            r#"[{{"Config":"{config_name}","RepoTags":["old/school:v1"],"Layers":["0123abcd/layer.tar"]}}]"#
        );
        let archive = LayerTar::new()
            .file(&config_name, config)
            .dir("0123abcd/")
            .file("0123abcd/VERSION", b"1.0")
            .file("0123abcd/json", b"{}")
            .file("0123abcd/layer.tar", layer)
            .file("repositories", br#"{"old/school":{"v1":"0123abcd"}}"#)
            .file("manifest.json", manifest.as_bytes())
            .bytes();
        std::fs::write(path, archive).unwrap();
    }

    fn config_for(layer: &[u8]) -> Vec<u8> {
        format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"container_config":{{}},"docker_version":"20.10.7","created":"2021-06-01T00:00:00Z","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            Digest::of_bytes(layer)
        )
        .into_bytes()
    }

    #[test]
    fn a_legacy_docker_archive_loads_with_its_id() {
        let (dir, store) = fresh_store();
        let layer = rootfs();
        let config = config_for(&layer);
        let path = dir.path().join("legacy.tar");
        legacy_archive(&path, &layer, &config);
        let loaded = load(&store, &path).unwrap();
        let id = Digest::of_bytes(&config);
        assert_eq!(
            loaded.images[0].id, id,
            "the id is the digest of the config bytes as loaded"
        );
        assert_eq!(loaded.images[0].tags, vec!["old/school:v1"]);
        assert_eq!(
            store.read_blob(&id).unwrap(),
            config,
            "unknown config fields are kept"
        );
        assert_eq!(store.resolve("old/school:v1").unwrap(), id);
    }

    #[test]
    fn a_layer_that_does_not_match_the_config_is_refused() {
        let (dir, store) = fresh_store();
        let layer = rootfs();
        let config = config_for(&LayerTar::new().file("something", b"else").bytes());
        let path = dir.path().join("tampered.tar");
        legacy_archive(&path, &layer, &config);
        let err = load(&store, &path).unwrap_err().to_string();
        assert!(
            err.contains("layer 1 (0123abcd/layer.tar)") && err.contains("diff_id"),
            "{err}"
        );
        assert!(store.image_ids().unwrap().is_empty());
        assert!(store.layers().unwrap().is_empty());
        assert!(store.tags().unwrap().repositories.is_empty());
    }

    #[test]
    fn an_oci_blob_that_does_not_match_its_digest_is_refused() {
        let (dir, store, _) = store_with_image("demo:1");
        let layout = dir.path().join("layout");
        save(&store, &["demo:1"], SaveFormat::OciDir, &layout).unwrap();
        let layer = store
            .image(&store.resolve("demo:1").unwrap())
            .unwrap()
            .manifest
            .layers()[0]
            .digest()
            .clone();
        let blob = layout
            .join("blobs/sha256")
            .join(Digest::from_oci(&layer).unwrap().hex());
        let mut bytes = std::fs::read(&blob).unwrap();
        bytes[600] ^= 1;
        std::fs::write(&blob, bytes).unwrap();
        let (_d, other) = fresh_store();
        let err = load(&other, &layout).unwrap_err().to_string();
        assert!(err.contains("should have digest"), "{err}");
        assert!(other.image_ids().unwrap().is_empty());
    }

    /// An OCI layout directory of `demo:1`, and the path of its (only) layer blob.
    fn layout_with_layer() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let (dir, store, _) = store_with_image("demo:1");
        let layout = dir.path().join("layout");
        save(&store, &["demo:1"], SaveFormat::OciDir, &layout).unwrap();
        let layer = store
            .image(&store.resolve("demo:1").unwrap())
            .unwrap()
            .manifest
            .layers()[0]
            .digest()
            .clone();
        let blob = layout
            .join("blobs/sha256")
            .join(Digest::from_oci(&layer).unwrap().hex());
        (dir, layout, blob)
    }

    #[test]
    fn a_layout_blob_that_links_out_of_the_directory_is_not_read() {
        let (dir, layout, blob) = layout_with_layer();
        // The very same bytes, but outside the layout, reached through a symlink.
        let outside = dir.path().join("outside-blob");
        std::fs::rename(&blob, &outside).unwrap();
        std::os::unix::fs::symlink(&outside, &blob).unwrap();
        let (_d, other) = fresh_store();
        let err = load(&other, &layout).unwrap_err().to_string();
        assert!(err.contains("leads outside the directory"), "{err}");
        assert!(other.image_ids().unwrap().is_empty());
        // A relative link that stays inside the layout is followed.
        std::fs::remove_file(&blob).unwrap();
        std::fs::rename(&outside, layout.join("blobs/the-layer")).unwrap();
        std::os::unix::fs::symlink("../the-layer", &blob).unwrap();
        assert_eq!(load(&other, &layout).unwrap().images.len(), 1);
    }

    #[test]
    fn a_layout_blob_larger_than_its_descriptor_is_refused_unread() {
        let (_dir, layout, blob) = layout_with_layer();
        let declared = std::fs::metadata(&blob).unwrap().len();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&blob)
            .unwrap();
        std::io::Write::write_all(&mut file, &[0u8; 4096]).unwrap();
        let (_d, other) = fresh_store();
        let err = load(&other, &layout).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "{} bytes, more than the {declared} bytes",
                declared + 4096
            )),
            "{err}"
        );
        assert!(other.image_ids().unwrap().is_empty());
        assert!(
            other.blobs().unwrap().len() <= 1,
            "only the config may have been stored"
        );
    }

    #[test]
    fn a_gzipped_archive_that_expands_too_far_is_refused() {
        let (dir, store) = fresh_store();
        let path = dir.path().join("bomb.tar.gz");
        // 300 gzip members of a mebibyte of zeros each, a few hundred KiB in all: past the
        // 256 MiB floor.
        let member = gzip(&vec![0u8; 1 << 20]);
        std::fs::write(&path, member.repeat(300)).unwrap();
        let err = load(&store, &path).unwrap_err().to_string();
        assert!(err.contains("decompression bomb"), "{err}");
        assert_eq!(tree(&store.root().join("tmp")), Vec::<String>::new());
    }

    #[test]
    fn a_bare_tag_in_ref_name_loads_untagged_with_a_warning() {
        let (dir, store, id) = store_with_image("demo:1");
        let layout = dir.path().join("layout");
        save(&store, &[id.as_str()], SaveFormat::OciDir, &layout).unwrap();
        let index_path = layout.join("index.json");
        let mut index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"][0]["annotations"] = serde_json::json!({ REF_NAME: "v1" });
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        let (_d, other) = fresh_store();
        let loaded = load(&other, &layout).unwrap();
        assert!(loaded.images[0].tags.is_empty());
        assert_eq!(loaded.messages(), vec![format!("Loaded image ID: {id}")]);
        assert!(
            loaded.warnings[0].contains("\"v1\""),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn a_file_that_is_no_archive_is_a_clear_error() {
        let (dir, store) = fresh_store();
        let path = dir.path().join("notes.tar");
        std::fs::write(&path, LayerTar::new().file("notes.txt", b"hi").bytes()).unwrap();
        let err = load(&store, &path).unwrap_err().to_string();
        assert!(
            err.contains("notes.tar") && err.contains("neither a docker-archive"),
            "{err}"
        );
        let err = save(
            &store,
            &["nope"],
            SaveFormat::OciArchive,
            &dir.path().join("o.tar"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "No such image: nope");
        assert!(!dir.path().join("o.tar").exists());
    }

    #[test]
    fn concurrent_loads_and_removals_never_leave_a_broken_image() {
        let (dir, store, id) = two_layers();
        let out = dir.path().join("images.tar");
        save(&store, &["app:2"], SaveFormat::DockerArchive, &out).unwrap();
        let (_d, other) = fresh_store();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| load(&other, &out).unwrap());
            }
        });
        assert_eq!(other.image_ids().unwrap(), vec![id.clone()]);
        assert_eq!(other.layers().unwrap().len(), 2);
        assert_eq!(tree(&other.root().join("tmp")), Vec::<String>::new());

        for _ in 0..3 {
            std::thread::scope(|s| {
                s.spawn(|| load(&other, &out).unwrap());
                s.spawn(|| match crate::ops::remove(&other, "app:2", false) {
                    Ok(_) | Err(crate::error::ImageError::NoSuchImage(_)) => {}
                    Err(e) => panic!("{e}"),
                });
            });
            // Whatever the interleaving: either the image is whole, or it is gone with its layers.
            if other.record(&id).unwrap().is_some() {
                for dir in other.layer_dirs(&id).unwrap() {
                    assert!(dir.is_dir(), "{}", dir.display());
                }
            } else {
                assert!(other.layers().unwrap().is_empty());
                assert!(other.blobs().unwrap().is_empty());
            }
        }
    }
}
