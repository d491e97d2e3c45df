//! Image fixtures for lab 04: archives the harness writes itself, so a learner's engine is
//! checked against inputs that do not come from the engine under test.
//!
//! Each image is a docker-archive in the layout `docker save` wrote before Docker 25
//! (`manifest.json`, `<config>.json`, `<layer>/layer.tar`): one more format an engine must read.
//! The hostile tarballs are crafted byte by byte, since a well-behaved tar writer refuses to
//! write them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

/// Bumped when an archive below changes, so old caches are not reused.
const VERSION: u32 = 3;

/// The archives lab 04 uses, as placeholder name → path.
pub fn placeholders(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    [
        ("image_tar", "lab.tar"),
        ("layers_tar", "layers.tar"),
        ("config_tar", "config.tar"),
        ("bad_diffid_tar", "bad-diffid.tar"),
        ("evil_abs", "evil-absolute.tar"),
        ("evil_dotdot", "evil-dotdot.tar"),
        ("evil_symlink", "evil-symlink.tar"),
        ("evil_hardlink", "evil-hardlink.tar"),
    ]
    .into_iter()
    .map(|(name, file)| (name, dir.join(file)))
    .collect()
}

/// The names lab files may use (checked when a lab loads).
pub const PLACEHOLDERS: &[&str] = &[
    "image_tar",
    "layers_tar",
    "config_tar",
    "bad_diffid_tar",
    "evil_abs",
    "evil_dotdot",
    "evil_symlink",
    "evil_hardlink",
    "busybox",
    "repo",
];

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A tar of `rootfs` plus `extra` entries (path, contents; a `None` content makes a directory).
fn layer_tar(rootfs: Option<&Path>, extra: &[(&str, Option<&[u8]>)]) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    if let Some(rootfs) = rootfs {
        builder
            .append_dir_all(".", rootfs)
            .with_context(|| format!("tar {}", rootfs.display()))?;
    }
    for (path, content) in extra {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        match content {
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, path, *bytes)?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, std::io::empty())?;
            }
        }
    }
    Ok(builder.into_inner()?)
}

/// The image config's runtime part.
struct Runtime<'a> {
    cmd: &'a [&'a str],
    entrypoint: &'a [&'a str],
    env: &'a [&'a str],
    workdir: &'a str,
    user: &'a str,
}

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn docker_archive(
    tag: &str,
    layers: &[Vec<u8>],
    runtime: &Runtime<'_>,
    lie_about_diff_ids: bool,
) -> anyhow::Result<Vec<u8>> {
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                "sha256:{}",
                if lie_about_diff_ids {
                    sha256_hex(b"not this layer")
                } else {
                    sha256_hex(l)
                }
            )
        })
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {
            "Cmd": runtime.cmd,
            "Entrypoint": if runtime.entrypoint.is_empty() { serde_json::Value::Null } else { serde_json::json!(runtime.entrypoint) },
            "Env": runtime.env,
            "WorkingDir": runtime.workdir,
            "User": runtime.user,
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": layers.iter().enumerate().map(|(i, _)| serde_json::json!({
            "created": "2026-01-01T00:00:00Z",
            "created_by": format!("skiff lab fixture layer {}", i + 1),
        })).collect::<Vec<_>>(),
    });
    let config_bytes = serde_json::to_vec(&config)?;
    let config_name = format!("{}.json", sha256_hex(&config_bytes));
    let layer_names: Vec<String> = layers
        .iter()
        .map(|l| format!("{}/layer.tar", sha256_hex(l)))
        .collect();
    let manifest =
        serde_json::json!([{ "Config": config_name, "RepoTags": [tag], "Layers": layer_names }]);
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        builder.append_data(&mut header, name, bytes)?;
        Ok(())
    };
    add(&config_name, &config_bytes)?;
    for (name, layer) in layer_names.iter().zip(layers) {
        add(name, layer)?;
    }
    add("manifest.json", &serde_json::to_vec(&manifest)?)?;
    Ok(builder.into_inner()?)
}

/// A tar whose entries are written raw: names the tar crate refuses (`../x`, `/abs`) and links
/// whose targets point out.
fn hostile_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut header = tar::Header::new_old();
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(data.len() as u64);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    Ok(out)
}

/// Writes the image fixtures into `dir` (once: a marker file says they are complete).
pub fn build(dir: &Path, rootfs: &Path) -> anyhow::Result<()> {
    let done = dir.join(format!(".complete-{VERSION}"));
    if done.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let base = layer_tar(Some(rootfs), &[])?;
    let plain = Runtime {
        cmd: &["/bin/sh"],
        entrypoint: &[],
        env: &[PATH_ENV],
        workdir: "",
        user: "",
    };
    let write = |name: &str, bytes: Vec<u8>| -> anyhow::Result<()> {
        let temp = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&temp, bytes)?;
        std::fs::rename(&temp, dir.join(name))?;
        Ok(())
    };
    write(
        "lab.tar",
        docker_archive(
            "skiff-lab:latest",
            std::slice::from_ref(&base),
            &plain,
            false,
        )?,
    )?;

    // Two layers on top of the base: the second deletes a file of the first (a whiteout) and
    // replaces a directory's contents (an opaque directory).
    let first = layer_tar(
        None,
        &[
            ("data", None),
            ("data/from-layer-1", Some(b"one\n")),
            ("data/deleted-later", Some(b"doomed\n")),
            ("opaque", None),
            ("opaque/old-1", Some(b"old\n")),
            ("opaque/old-2", Some(b"old\n")),
        ],
    )?;
    let second = layer_tar(
        None,
        &[
            ("data", None),
            ("data/from-layer-2", Some(b"two\n")),
            ("data/.wh.deleted-later", Some(b"")),
            ("opaque", None),
            ("opaque/.wh..wh..opq", Some(b"")),
            ("opaque/new", Some(b"new\n")),
        ],
    )?;
    write(
        "layers.tar",
        docker_archive(
            "skiff-layers:latest",
            &[base.clone(), first, second],
            &plain,
            false,
        )?,
    )?;

    let configured = Runtime {
        cmd: &["default-cmd"],
        entrypoint: &["/bin/probe", "echo", "ep"],
        env: &[PATH_ENV, "FROM_IMAGE=yes"],
        workdir: "/srv/app",
        user: "lab",
    };
    write(
        "config.tar",
        docker_archive(
            "skiff-config:latest",
            std::slice::from_ref(&base),
            &configured,
            false,
        )?,
    )?;
    write(
        "bad-diffid.tar",
        docker_archive(
            "skiff-bad:latest",
            std::slice::from_ref(&base),
            &plain,
            true,
        )?,
    )?;

    use tar::EntryType::{Directory, Link, Regular, Symlink};
    write(
        "evil-absolute.tar",
        hostile_tar(&[("/tmp/skiff-lab-evil-absolute", Regular, "", b"pwned\n")])?,
    )?;
    write(
        "evil-dotdot.tar",
        hostile_tar(&[
            ("ok", Directory, "", b""),
            (
                // Enough `..` to reach / from a layer directory at any store's depth, so that an
                // extractor that follows them writes exactly the path the check looks at.
                "ok/../../../../../../../../../../../../../../../../../../../../../../../tmp/skiff-lab-evil-dotdot",
                Regular,
                "",
                b"pwned\n",
            ),
        ])?,
    )?;
    write(
        "evil-symlink.tar",
        hostile_tar(&[
            ("escape", Symlink, "/tmp", b""),
            ("escape/skiff-lab-evil-symlink", Regular, "", b"pwned\n"),
        ])?,
    )?;
    write(
        "evil-hardlink.tar",
        hostile_tar(&[("passwd-copy", Link, "../../../../../../etc/passwd", b"")])?,
    )?;
    std::fs::write(&done, b"")?;
    Ok(())
}
