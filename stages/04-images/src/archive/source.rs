//! Reading the files of an image archive by name, whether it is a tar file or a directory.
//!
//! Both formats name their parts by path (`manifest.json`, `blobs/sha256/<hex>`) and may hold
//! them in any order, so a tar archive is indexed once (name → offset and size) and its members
//! are then read in place, never extracted. Nothing in the archive is ever written to disk under
//! the name the archive gives it, so a hostile archive has no path to abuse. Symlinks between
//! members (skopeo writes `<id>/layer.tar -> ../<hex>.tar`) are resolved inside the archive.
//! A gzip-compressed archive (`docker save | gzip`) is decompressed to a temp file first.
//!
//! A directory is held open and read through openat2(2) ([`crate::beneath`]): a symlink that
//! stays inside it is followed, one that leads out (`blobs/sha256/<hex> -> /etc/shadow`) is
//! refused, as is anything but a regular file (a fifo would hang the load, a device never end).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::beneath::{Beneath, Links};
use crate::bounded::{Budget, Capped};
use crate::compression::{Compression, detect_reader};
use crate::error::{ImageError, Result};
use crate::store::{Store, TempPath};

/// An archive to read members from.
pub(crate) enum Source {
    /// A tar file, indexed.
    Tar(TarSource),
    /// A directory (an OCI layout on disk), held open.
    Dir(Beneath),
}

pub(crate) struct TarSource {
    path: PathBuf,
    file: File,
    members: BTreeMap<String, Member>,
    /// A decompressed copy, removed when the source is dropped.
    _temp: Option<TempPath>,
}

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Link(String),
    Other,
}

impl Source {
    /// Opens `path`: a directory as it is, a tar file (plain or gzip) indexed.
    pub fn open(store: &Store, path: &Path) -> Result<Source> {
        let meta = std::fs::metadata(path)
            .map_err(|e| ImageError::io(format!("open archive {}", path.display()), e))?;
        if meta.is_dir() {
            let dir = Beneath::open(path)
                .map_err(|e| ImageError::io(format!("open archive {}", path.display()), e))?;
            return Ok(Source::Dir(dir));
        }
        let io_err = |e| ImageError::io(format!("read archive {}", path.display()), e);
        let mut file = File::open(path).map_err(io_err)?;
        let compression = detect_reader(&mut io::BufReader::new(&file)).map_err(io_err)?;
        file.seek(io::SeekFrom::Start(0)).map_err(io_err)?;
        let mut temp = None;
        match compression {
            Compression::None => {}
            Compression::Gzip => {
                let temp_path = store.temp_path("archive");
                let guard = TempPath(temp_path.clone());
                let mut out = File::create(&temp_path).map_err(io_err)?;
                // Decompressed within a budget, as a layer is (see crate::bounded).
                let budget = Budget::for_compressed(meta.len());
                let gz = flate2::read::MultiGzDecoder::new(File::open(path).map_err(io_err)?);
                let mut capped = Capped::new(gz, budget.limit);
                if let Err(e) = io::copy(&mut capped, &mut out) {
                    if capped.exceeded() {
                        return Err(ImageError::archive(
                            path,
                            format!(
                                "it decompresses to more than {} bytes ({}): refused as a decompression bomb",
                                budget.limit,
                                budget.rule()
                            ),
                        ));
                    }
                    return Err(io_err(e));
                }
                file = File::open(&temp_path).map_err(io_err)?;
                temp = Some(guard);
            }
            other => {
                return Err(ImageError::archive(
                    path,
                    format!(
                        "it is compressed with {other:?}, which skiff does not decode: use a plain or gzip tar"
                    ),
                ));
            }
        }
        let members = index(&file)
            .map_err(|e| ImageError::archive(path, format!("not a readable tar archive: {e}")))?;
        Ok(Source::Tar(TarSource {
            path: path.to_path_buf(),
            file,
            members,
            _temp: temp,
        }))
    }

    /// The archive's path, for messages.
    pub fn path(&self) -> &Path {
        match self {
            Source::Tar(tar) => &tar.path,
            Source::Dir(dir) => dir.path(),
        }
    }

    /// Whether the archive has a file `name`.
    pub fn exists(&self, name: &str) -> bool {
        match self {
            Source::Tar(tar) => tar.resolve(name).is_ok(),
            Source::Dir(dir) => {
                normalise(name).is_some_and(|n| dir.open_file(&n, Links::Inside).is_ok())
            }
        }
    }

    /// A reader over the file `name`, and its size.
    pub fn reader(&self, name: &str) -> Result<(Box<dyn Read + '_>, u64)> {
        let missing =
            |reason: &str| ImageError::archive(self.path(), format!("{name:?}: {reason}"));
        match self {
            Source::Tar(tar) => {
                let (offset, size) = tar.resolve(name).map_err(|r| missing(&r))?;
                Ok((
                    Box::new(Section {
                        file: &tar.file,
                        pos: offset,
                        end: offset + size,
                    }),
                    size,
                ))
            }
            Source::Dir(dir) => {
                let relative =
                    normalise(name).ok_or_else(|| missing("not a path inside the layout"))?;
                let file = dir
                    .open_file(&relative, Links::Inside)
                    .map_err(|e| missing(&e.to_string()))?;
                let size = file.metadata().map_err(|e| missing(&e.to_string()))?.len();
                Ok((Box::new(file), size))
            }
        }
    }

    /// The whole file `name`. Archive metadata files are small; this refuses above 64 MiB.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        const LIMIT: u64 = 64 << 20;
        let (reader, size) = self.reader(name)?;
        if size > LIMIT {
            return Err(ImageError::archive(
                self.path(),
                format!("{name:?} is {size} bytes, too large for a manifest or config"),
            ));
        }
        let mut bytes = Vec::new();
        reader
            .take(LIMIT)
            .read_to_end(&mut bytes)
            .map_err(|e| ImageError::io(format!("read {name} in {}", self.path().display()), e))?;
        Ok(bytes)
    }
}

impl TarSource {
    /// The offset and size of member `name`, following symlinks and hardlinks inside the archive.
    fn resolve(&self, name: &str) -> std::result::Result<(u64, u64), String> {
        let mut current = normalise(name).ok_or("not a path inside the archive")?;
        for _ in 0..16 {
            match self.members.get(&current) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Link(target)) => current = target.clone(),
                Some(Member::Other) => return Err("not a regular file".into()),
                None => return Err("no such file in the archive".into()),
            }
        }
        Err("too many levels of links".into())
    }
}

/// Lists the members of a tar: regular files with their position, links with their resolved
/// target name.
fn index(file: &File) -> io::Result<BTreeMap<String, Member>> {
    let mut members = BTreeMap::new();
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries_with_seek()? {
        let entry = entry?;
        let raw = entry.path_bytes();
        let Some(name) = normalise(&String::from_utf8_lossy(&raw)) else {
            continue;
        };
        let member = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Member::File {
                offset: entry.raw_file_position(),
                size: entry.size(),
            },
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default();
                let target = String::from_utf8_lossy(&target).into_owned();
                // Relative to the link's directory; an absolute target is taken from the root.
                let base = match (target.starts_with('/'), name.rsplit_once('/')) {
                    (false, Some((dir, _))) => format!("{dir}/{target}"),
                    _ => target,
                };
                match normalise(&base) {
                    Some(resolved) => Member::Link(resolved),
                    None => Member::Other,
                }
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default();
                match normalise(&String::from_utf8_lossy(&target)) {
                    Some(resolved) => Member::Link(resolved),
                    None => Member::Other,
                }
            }
            _ => Member::Other,
        };
        members.insert(name, member);
    }
    Ok(members)
}

/// `./a//b/../c` → `a/c`; `None` for a path that climbs above the root or names the root.
pub(crate) fn normalise(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

/// A window of a file, read with pread(2) so several can be open at once.
struct Section<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends in the middle of a file",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn names_are_normalised_and_never_climb_out() {
        assert_eq!(
            normalise("./manifest.json").as_deref(),
            Some("manifest.json")
        );
        assert_eq!(normalise("a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(normalise("abc/../def.tar").as_deref(), Some("def.tar"));
        assert_eq!(normalise("../etc/passwd"), None);
        assert_eq!(normalise("./"), None);
    }
}
