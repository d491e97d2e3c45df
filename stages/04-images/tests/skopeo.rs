//! Interoperability with a real peer: skopeo (containers/image) reads the archives skiff saves,
//! and skiff loads the archives skopeo writes, in both formats, keeping the image id and the
//! diff_ids (and, for OCI layouts, the manifest digest). The image comes from `import` of a small
//! rootfs built here; nothing is pulled.
//!
//! skopeo is a Debian package (`apt-get install skopeo`); without it these tests say so and pass.

use std::path::Path;
use std::process::Command;

use images::archive::{SaveFormat, load, save};
use images::{Digest, ImageRef, Store};

fn skopeo(tmp: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let output = match Command::new("skopeo")
        .arg("--insecure-policy")
        .arg("--tmpdir")
        .arg(tmp)
        .args(args)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skopeo is not installed: skipping (apt-get install skopeo)");
            return None;
        }
        Err(e) => panic!("run skopeo: {e}"),
    };
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(output.stdout)
}

fn rootfs() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data, mode) in [
        (
            "bin/hello",
            &b"#!/bin/sh\necho hello from skiff\n"[..],
            0o755,
        ),
        ("etc/motd", &b"welcome\n"[..], 0o644),
        ("etc/os-release", &b"ID=skiff\n"[..], 0o644),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        builder
            .append_data(&mut header, path, data)
            .expect("append to a Vec");
    }
    builder.into_inner().expect("finish a Vec")
}

/// A store with one imported image tagged `skiff/demo:1`.
fn store_with_image(tmp: &Path) -> (Store, Digest) {
    let store = Store::open(tmp.join("root")).expect("open a store");
    let tag = ImageRef::parse("skiff/demo:1").expect("a valid reference");
    let id = images::import::import(&store, &rootfs()[..], "rootfs.tar", Some(&tag))
        .expect("import the rootfs")
        .id;
    (store, id)
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("skopeo prints JSON")
}

fn diff_ids(store: &Store, id: &Digest) -> Vec<String> {
    store
        .image(id)
        .expect("the image is in the store")
        .config
        .rootfs()
        .diff_ids()
        .clone()
}

#[test]
fn skopeo_reads_a_docker_archive_that_skiff_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, id) = store_with_image(tmp.path());
    let archive = tmp.path().join("docker.tar");
    save(
        &store,
        &["skiff/demo:1"],
        SaveFormat::DockerArchive,
        &archive,
    )
    .unwrap();
    let source = format!("docker-archive:{}", archive.display());

    let Some(manifest) = skopeo(tmp.path(), &["inspect", "--raw", &source]) else {
        return;
    };
    let manifest = json(&manifest);
    assert_eq!(
        manifest["config"]["digest"],
        id.as_str(),
        "skopeo sees skiff's image id"
    );
    let layers: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        layers,
        diff_ids(&store, &id),
        "plain layers: blob digests are the diff_ids"
    );

    let config = skopeo(tmp.path(), &["inspect", "--config", "--raw", &source]).unwrap();
    assert_eq!(
        Digest::of_bytes(&config),
        id,
        "skopeo reads the config byte for byte"
    );

    // A full copy makes skopeo read and verify every blob.
    let copy = tmp.path().join("copy");
    skopeo(
        tmp.path(),
        &["copy", &source, &format!("dir:{}", copy.display())],
    )
    .unwrap();
    assert!(copy.join(id.hex()).is_file());
}

#[test]
fn skopeo_reads_an_oci_layout_that_skiff_saved() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, id) = store_with_image(tmp.path());
    let manifest_digest = store.image(&id).unwrap().manifest_digest;
    let archive = tmp.path().join("oci.tar");
    save(&store, &["skiff/demo:1"], SaveFormat::OciArchive, &archive).unwrap();
    let layout = tmp.path().join("layout");
    save(&store, &["skiff/demo:1"], SaveFormat::OciDir, &layout).unwrap();

    for source in [
        format!("oci-archive:{}", archive.display()),
        format!("oci:{}", layout.display()),
    ] {
        let Some(manifest) = skopeo(tmp.path(), &["inspect", "--raw", &source]) else {
            return;
        };
        assert_eq!(
            Digest::of_bytes(&manifest),
            manifest_digest,
            "{source}: same manifest"
        );
        let config = skopeo(tmp.path(), &["inspect", "--config", "--raw", &source]).unwrap();
        assert_eq!(Digest::of_bytes(&config), id, "{source}: same config");
        let copy = tmp.path().join(format!("copy-{}", source.len()));
        skopeo(
            tmp.path(),
            &["copy", &source, &format!("dir:{}", copy.display())],
        )
        .unwrap();
        assert!(copy.join(id.hex()).is_file());
    }
}

#[test]
fn skiff_loads_a_docker_archive_that_skopeo_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, id) = store_with_image(tmp.path());
    let ours = tmp.path().join("ours.tar");
    save(&store, &["skiff/demo:1"], SaveFormat::OciArchive, &ours).unwrap();
    let theirs = tmp.path().join("theirs.tar");
    let Some(_) = skopeo(
        tmp.path(),
        &[
            "copy",
            &format!("oci-archive:{}", ours.display()),
            &format!("docker-archive:{}:skopeo/made:v2", theirs.display()),
        ],
    ) else {
        return;
    };

    let other = Store::open(tmp.path().join("other")).unwrap();
    let loaded = load(&other, &theirs).unwrap();
    assert_eq!(loaded.images.len(), 1);
    assert_eq!(loaded.images[0].id, id, "the image id survives skopeo");
    assert_eq!(loaded.images[0].tags, vec!["skopeo/made:v2"]);
    assert_eq!(diff_ids(&other, &id), diff_ids(&store, &id));
    let lower = other.layer_dirs(&id).unwrap();
    assert_eq!(
        std::fs::read(lower[0].join("etc/motd")).unwrap(),
        b"welcome\n"
    );
}

#[test]
fn skiff_loads_oci_layouts_that_skopeo_wrote_compressed_or_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, id) = store_with_image(tmp.path());
    let ours = tmp.path().join("ours.tar");
    save(&store, &["skiff/demo:1"], SaveFormat::DockerArchive, &ours).unwrap();
    let source = format!("docker-archive:{}", ours.display());

    // As an OCI archive with gzip layers, and as an OCI directory.
    let archive = tmp.path().join("theirs-oci.tar");
    let Some(_) = skopeo(
        tmp.path(),
        &[
            "copy",
            "--dest-compress",
            "--dest-compress-format",
            "gzip",
            &source,
            &format!("oci-archive:{}:skopeo/oci:v3", archive.display()),
        ],
    ) else {
        return;
    };
    let layout = tmp.path().join("theirs-dir");
    skopeo(
        tmp.path(),
        &[
            "copy",
            &source,
            &format!("oci:{}:skopeo/dir:v4", layout.display()),
        ],
    )
    .unwrap();

    let other = Store::open(tmp.path().join("other")).unwrap();
    let loaded = load(&other, &archive).unwrap();
    assert_eq!(loaded.images[0].id, id);
    assert_eq!(loaded.images[0].tags, vec!["skopeo/oci:v3"]);
    let image = other.image(&id).unwrap();
    assert_eq!(
        image.manifest.layers()[0].media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "skopeo compressed the layer"
    );
    assert_eq!(diff_ids(&other, &id), diff_ids(&store, &id));

    let loaded = load(&other, &layout).unwrap();
    assert_eq!(loaded.images[0].id, id);
    assert_eq!(loaded.images[0].tags, vec!["skopeo/dir:v4"]);

    // And back out as a docker-archive, whose gzip layer skiff decompresses, for skopeo again.
    let again = tmp.path().join("again.tar");
    save(
        &other,
        &["skopeo/oci:v3"],
        SaveFormat::DockerArchive,
        &again,
    )
    .unwrap();
    let config = skopeo(
        tmp.path(),
        &[
            "inspect",
            "--config",
            "--raw",
            &format!("docker-archive:{}", again.display()),
        ],
    )
    .unwrap();
    assert_eq!(Digest::of_bytes(&config), id);
    let copy = tmp.path().join("copy");
    skopeo(
        tmp.path(),
        &[
            "copy",
            &format!("docker-archive:{}", again.display()),
            &format!("dir:{}", copy.display()),
        ],
    )
    .unwrap();
}

#[test]
fn a_committed_image_keeps_its_id_when_skopeo_converts_it_to_oci() {
    // skopeo re-encodes the config when it turns a Docker manifest into an OCI one; skiff writes
    // configs exactly as Go does, so the bytes, and the id, come out unchanged.
    let tmp = tempfile::tempdir().unwrap();
    let (store, base) = store_with_image(tmp.path());
    let changes = tmp.path().join("changes");
    std::fs::create_dir_all(changes.join("srv")).unwrap();
    std::fs::write(changes.join("srv/index.html"), b"<h1>hello</h1>").unwrap();
    let config = oci_spec::image::ConfigBuilder::default()
        .env(vec![
            "PATH=/bin".to_string(),
            "GREETING=a <b> & c".to_string(),
        ])
        .cmd(vec!["/bin/hello".to_string()])
        .exposed_ports(vec!["8080/tcp".to_string(), "443/tcp".to_string()])
        .labels(
            [("z.last", "1"), ("a.first", "2"), ("m.middle", "3")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .working_dir("/srv".to_string())
        .build()
        .unwrap();
    let history = images::image::history_entry("/bin/sh -c make && make install", None);
    let tag = ImageRef::parse("skiff/app:2").unwrap();
    let id = images::create_image(&store, Some(&base), Some(&changes), config, history, &[tag])
        .unwrap()
        .id;
    let ours = tmp.path().join("app.tar");
    save(&store, &["skiff/app:2"], SaveFormat::DockerArchive, &ours).unwrap();
    let theirs = tmp.path().join("app-oci");
    let Some(_) = skopeo(
        tmp.path(),
        &[
            "copy",
            &format!("docker-archive:{}", ours.display()),
            &format!("oci:{}:skiff/app:2", theirs.display()),
        ],
    ) else {
        return;
    };
    let other = Store::open(tmp.path().join("other")).unwrap();
    let loaded = load(&other, &theirs).unwrap();
    assert_eq!(
        loaded.images[0].id, id,
        "skopeo's re-encoding changed nothing"
    );
    assert_eq!(diff_ids(&other, &id), diff_ids(&store, &id));
}
