//! `save -o FILE [--format F] IMAGE...`: images from the store into an archive file or directory.
//!
//! The output is written under a temp name beside it and renamed into place when complete, so a
//! failed save leaves no half-written archive under the name asked for.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType};

use super::{CONTAINERD_NAME, DockerManifestEntry, OCI_LAYOUT, REF_NAME};
use crate::compression::Compression;
use crate::digest::{Digest, Hashing};
use crate::error::{ImageError, Result};
use crate::image::{Image, canonical_json};
use crate::import::blob_compression;
use crate::reference::ImageRef;
use crate::store::{Store, TempPath, blob_read_error};

/// The format `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// A tar as `docker save` (Docker 25+) writes it: `manifest.json` plus an OCI layout.
    DockerArchive,
    /// An OCI image layout in a tar.
    OciArchive,
    /// An OCI image layout in a directory.
    OciDir,
}

impl std::str::FromStr for SaveFormat {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "docker-archive" | "docker" => Ok(SaveFormat::DockerArchive),
            "oci-archive" | "oci" => Ok(SaveFormat::OciArchive),
            "oci-dir" => Ok(SaveFormat::OciDir),
            other => Err(ImageError::Unsupported(format!(
                "unknown archive format {other:?}: use docker-archive, oci-archive or oci-dir"
            ))),
        }
    }
}

/// Saves the images `names` (references or ids) to `output` in `format`.
pub fn save(store: &Store, names: &[&str], format: SaveFormat, output: &Path) -> Result<()> {
    let _lock = store.lock_shared()?;
    let images = wanted(store, names)?;
    let mut sink = Sink::create(format, output)?;
    let result = write_all(store, &images, format, &mut sink);
    match result {
        Ok(()) => sink.finish(),
        Err(e) => {
            sink.abort();
            Err(e)
        }
    }
}

/// The images asked for, each once, with the tags asked for (an id brings no tag, as in Docker).
fn wanted(store: &Store, names: &[&str]) -> Result<Vec<(Image, Vec<ImageRef>)>> {
    if names.is_empty() {
        return Err(ImageError::Unsupported(
            "save needs at least one image name or id".into(),
        ));
    }
    let mut images: Vec<(Image, Vec<ImageRef>)> = Vec::new();
    for name in names {
        let id = store.resolve(name)?;
        let tag = store.tag_naming(name, &id);
        let i = match images.iter().position(|(image, _)| image.id == id) {
            Some(i) => i,
            None => {
                images.push((store.image(&id)?, Vec::new()));
                images.len() - 1
            }
        };
        if let Some(tag) = tag
            && !images[i].1.contains(&tag)
        {
            images[i].1.push(tag);
        }
    }
    Ok(images)
}

fn write_all(
    store: &Store,
    images: &[(Image, Vec<ImageRef>)],
    format: SaveFormat,
    sink: &mut Sink,
) -> Result<()> {
    let mut written = HashSet::new();
    let mut index = Vec::new();
    let mut docker = Vec::new();
    let mut temps = Vec::new();
    for (image, tags) in images {
        let (manifest_digest, manifest_bytes, layers) = match format {
            SaveFormat::DockerArchive => docker_manifest(store, image, &mut temps)?,
            SaveFormat::OciArchive | SaveFormat::OciDir => {
                let layers = image
                    .manifest
                    .layers()
                    .iter()
                    .map(|l| Ok((Digest::from_oci(l.digest())?, None)))
                    .collect::<Result<Vec<_>>>()?;
                let bytes = store.read_blob(&image.manifest_digest)?;
                (image.manifest_digest.clone(), bytes, layers)
            }
        };
        copy_blob(store, sink, &image.id, &mut written)?;
        for (layer, temp) in &layers {
            match temp {
                Some(path) => add_file(sink, layer, path, &mut written)?,
                None => copy_blob(store, sink, layer, &mut written)?,
            }
        }
        if written.insert(manifest_digest.clone()) {
            sink.add(
                &member(&manifest_digest),
                manifest_bytes.len() as u64,
                &mut &manifest_bytes[..],
            )?;
        }
        let media_type = image
            .manifest
            .media_type()
            .clone()
            .filter(|_| manifest_digest == image.manifest_digest)
            .unwrap_or(MediaType::ImageManifest);
        let descriptor = Descriptor::new(
            media_type,
            manifest_bytes.len() as u64,
            manifest_digest.to_oci(),
        );
        if tags.is_empty() {
            index.push(descriptor.clone());
        }
        for tag in tags {
            let mut named = descriptor.clone();
            named.set_annotations(Some(
                [
                    (CONTAINERD_NAME.to_string(), tag.full()),
                    (
                        REF_NAME.to_string(),
                        tag.tag().unwrap_or("latest").to_string(),
                    ),
                ]
                .into(),
            ));
            index.push(named);
        }
        docker.push(DockerManifestEntry {
            config: member(&image.id),
            repo_tags: (!tags.is_empty()).then(|| tags.iter().map(ImageRef::familiar).collect()),
            layers: layers.iter().map(|(d, _)| member(d)).collect(),
        });
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(index)
        .build()
        .map_err(|e| ImageError::Unsupported(format!("build index.json: {e}")))?;
    let index = canonical_json(&index, "index.json")?;
    sink.add("index.json", index.len() as u64, &mut &index[..])?;
    if format == SaveFormat::DockerArchive {
        let manifest =
            serde_json::to_vec(&docker).map_err(|e| ImageError::json("manifest.json", e))?;
        sink.add("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
    }
    sink.add(
        "oci-layout",
        OCI_LAYOUT.len() as u64,
        &mut OCI_LAYOUT.as_bytes(),
    )?;
    drop(temps);
    Ok(())
}

/// A layer to write: its digest, and a temp file holding it when it is not a stored blob.
type LayerOut = (Digest, Option<PathBuf>);

/// A docker-archive holds plain tar layers (their digests are the diff_ids). The stored manifest
/// is used when its layers are plain already; otherwise the layers are decompressed and a new
/// manifest lists them.
fn docker_manifest(
    store: &Store,
    image: &Image,
    temps: &mut Vec<TempPath>,
) -> Result<(Digest, Vec<u8>, Vec<LayerOut>)> {
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    let mut changed = false;
    for (descriptor, info) in image.manifest.layers().iter().zip(&image.layers) {
        let blob = Digest::from_oci(descriptor.digest())?;
        if blob_compression(store, &blob)? == Compression::None {
            layers.push((blob, None));
            descriptors.push(descriptor.clone());
            continue;
        }
        changed = true;
        let (path, size) = decompressed(store, &blob, &info.diff_id)?;
        temps.push(TempPath(path.clone()));
        descriptors.push(Descriptor::new(
            MediaType::ImageLayer,
            size,
            info.diff_id.to_oci(),
        ));
        layers.push((info.diff_id.clone(), Some(path)));
    }
    if !changed {
        let bytes = store.read_blob(&image.manifest_digest)?;
        return Ok((image.manifest_digest.clone(), bytes, layers));
    }
    let config_size = store.open_blob(&image.id)?.1;
    let bytes = crate::image::new_manifest(
        &image.id,
        usize::try_from(config_size).unwrap_or(usize::MAX),
        descriptors,
    )?;
    Ok((Digest::of_bytes(&bytes), bytes, layers))
}

/// Decompresses a stored layer blob into a temp file, checking it against its diff_id.
fn decompressed(store: &Store, blob: &Digest, diff_id: &Digest) -> Result<(PathBuf, u64)> {
    let path = store.temp_path("plain-layer");
    let io_err = |e| {
        ImageError::io(
            format!("decompress layer {blob} into {}", path.display()),
            e,
        )
    };
    let (reader, _) = store.open_blob(blob)?;
    let mut plain = crate::compression::decompress(reader)
        .map_err(|e| ImageError::layer(format!("layer {blob}"), e))?;
    let mut out = Hashing::new(BufWriter::new(File::create(&path).map_err(io_err)?));
    io::copy(&mut plain, &mut out).map_err(|e| blob_read_error(blob, e))?;
    out.flush().map_err(io_err)?;
    let (digest, size) = out.digest();
    if digest != *diff_id && !chroot::defence::disabled("verify-digests") {
        let _ = std::fs::remove_file(&path);
        return Err(ImageError::DigestMismatch {
            what: format!("uncompressed layer {blob}"),
            expected: diff_id.to_string(),
            actual: digest.to_string(),
        });
    }
    Ok((path, size))
}

fn member(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn copy_blob(
    store: &Store,
    sink: &mut Sink,
    digest: &Digest,
    written: &mut HashSet<Digest>,
) -> Result<()> {
    if !written.insert(digest.clone()) {
        return Ok(());
    }
    let (mut reader, size) = store.open_blob(digest)?;
    sink.add(&member(digest), size, &mut reader)
        .map_err(|e| match e {
            ImageError::Io { source, .. } => blob_read_error(digest, source),
            other => other,
        })
}

fn add_file(
    sink: &mut Sink,
    digest: &Digest,
    path: &Path,
    written: &mut HashSet<Digest>,
) -> Result<()> {
    if !written.insert(digest.clone()) {
        return Ok(());
    }
    let mut file =
        File::open(path).map_err(|e| ImageError::io(format!("open {}", path.display()), e))?;
    let size = file
        .metadata()
        .map_err(|e| ImageError::io(format!("stat {}", path.display()), e))?
        .len();
    sink.add(&member(digest), size, &mut file)
}

/// Where `save` writes: a tar or a directory, under a temp name until finished.
enum Sink {
    Tar {
        builder: tar::Builder<BufWriter<File>>,
        dirs: HashSet<String>,
        temp: PathBuf,
        output: PathBuf,
    },
    Dir {
        temp: PathBuf,
        output: PathBuf,
    },
}

impl Sink {
    fn create(format: SaveFormat, output: &Path) -> Result<Sink> {
        let name = output.file_name().ok_or_else(|| {
            ImageError::Unsupported(format!("{} is not a file name", output.display()))
        })?;
        let temp = output.with_file_name(format!(
            ".{}.skiff-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let io_err = |e| ImageError::io(format!("create {}", temp.display()), e);
        match format {
            SaveFormat::OciDir => {
                if std::fs::read_dir(output).is_ok_and(|mut d| d.next().is_some()) {
                    return Err(ImageError::Unsupported(format!(
                        "output directory {} is not empty: give a new or empty directory",
                        output.display()
                    )));
                }
                std::fs::create_dir(&temp).map_err(io_err)?;
                Ok(Sink::Dir {
                    temp,
                    output: output.to_path_buf(),
                })
            }
            _ => {
                let file = File::create(&temp).map_err(io_err)?;
                Ok(Sink::Tar {
                    builder: tar::Builder::new(BufWriter::new(file)),
                    dirs: HashSet::new(),
                    temp,
                    output: output.to_path_buf(),
                })
            }
        }
    }

    fn add(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        match self {
            Sink::Tar {
                builder,
                dirs,
                temp,
                ..
            } => {
                let io_err = |e| ImageError::io(format!("write {name} to {}", temp.display()), e);
                // Parent directories first, once each, as `docker save` does.
                let mut parent = String::new();
                for part in name
                    .split('/')
                    .collect::<Vec<_>>()
                    .split_last()
                    .map(|(_, p)| p)
                    .unwrap_or(&[])
                {
                    parent.push_str(part);
                    parent.push('/');
                    if dirs.insert(parent.clone()) {
                        let mut header = fixed_header(tar::EntryType::Directory, 0o755, 0);
                        builder
                            .append_data(&mut header, &parent, io::empty())
                            .map_err(io_err)?;
                    }
                }
                let mut header = fixed_header(tar::EntryType::Regular, 0o644, size);
                builder.append_data(&mut header, name, data).map_err(io_err)
            }
            Sink::Dir { temp, .. } => {
                let path = temp.join(name);
                let io_err = |e| ImageError::io(format!("write {}", path.display()), e);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err)?;
                }
                let mut file = File::create(&path).map_err(io_err)?;
                io::copy(data, &mut file).map_err(io_err)?;
                file.sync_all().map_err(io_err)
            }
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Sink::Tar {
                builder,
                temp,
                output,
                ..
            } => {
                let io_err = |e| ImageError::io(format!("write {}", output.display()), e);
                let done = (|| {
                    let file = builder
                        .into_inner()?
                        .into_inner()
                        .map_err(|e| e.into_error())?;
                    file.sync_all()?;
                    std::fs::rename(&temp, &output)
                })();
                if done.is_err() {
                    let _ = std::fs::remove_file(&temp);
                }
                done.map_err(io_err)
            }
            Sink::Dir { temp, output } => {
                // An empty directory at `output` was checked above; it gives way to the new one.
                let _ = std::fs::remove_dir(&output);
                std::fs::rename(&temp, &output).map_err(|e| {
                    let _ = std::fs::remove_dir_all(&temp);
                    ImageError::io(format!("write {}", output.display()), e)
                })
            }
        }
    }

    fn abort(self) {
        match self {
            Sink::Tar { temp, builder, .. } => {
                drop(builder);
                let _ = std::fs::remove_file(temp);
            }
            Sink::Dir { temp, .. } => {
                let _ = std::fs::remove_dir_all(temp);
            }
        }
    }
}

/// A header with fixed owner and time, so saving the same images twice gives the same bytes.
fn fixed_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}
