//! Packing a layer: a directory of changes becomes an OCI layer tarball.
//!
//! When a container's filesystem is an overlay, everything its processes changed lands in the
//! *upper* directory: new and modified files as they are, deletions as character devices 0:0,
//! and directories that replaced a lower one with the `trusted.overlay.opaque=y` attribute.
//! `commit` and `build` turn that directory into a layer by writing it as a tar and translating
//! the overlayfs spelling back into the OCI one (`.wh.NAME` files and `.wh..wh..opq`, as the OCI
//! image spec's `layer.md` defines them), the mirror image of [`crate::unpack`].
//!
//! The tar is deterministic: entries in byte order of their names, directories before their
//! contents, GNU headers with no user or group names and no access times. Real modification times,
//! owners and modes are kept (they are part of what the container changed), so packing the same
//! tree twice gives the same bytes and the same `diff_id`.
//!
//! Not packed, with a warning: sockets and device nodes other than whiteouts (a container's
//! devices come from the runtime). Refused: overlayfs `redirect` and `metacopy` attributes, which
//! appear only when the overlay is mounted with those features; skiff mounts without them.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::digest::{Digest, Hashing};
use crate::error::LayerError;
use crate::unpack::{
    OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX, allowed_xattr, is_whiteout,
};

/// What packing a directory produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// The digest of the tar written: the new layer's `diff_id`.
    pub diff_id: Digest,
    /// The length of the tar in bytes.
    pub tar_size: u64,
    /// Entries left out, with the reason.
    pub warnings: Vec<String>,
}

/// Writes the changes in `dir` as a layer tar to `out`.
pub fn pack(dir: &Path, out: impl Write) -> Result<Packed, LayerError> {
    let mut packer = Packer {
        builder: tar::Builder::new(Hashing::new(out)),
        hardlinks: HashMap::new(),
        warnings: Vec::new(),
    };
    packer.directory(dir, Path::new(""))?;
    let mut hashing = packer.builder.into_inner().map_err(write_error)?;
    hashing.flush().map_err(write_error)?;
    let (diff_id, tar_size) = hashing.digest();
    Ok(Packed {
        diff_id,
        tar_size,
        warnings: packer.warnings,
    })
}

struct Packer<W: Write> {
    builder: tar::Builder<Hashing<W>>,
    /// (device, inode) of files with several links, and the name the first one was written as.
    hardlinks: HashMap<(u64, u64), PathBuf>,
    warnings: Vec<String>,
}

impl<W: Write> Packer<W> {
    /// Writes the contents of the directory `host` (known in the tar as `name`), sorted.
    fn directory(&mut self, host: &Path, name: &Path) -> Result<(), LayerError> {
        let mut children: Vec<_> = fs::read_dir(host)
            .map_err(changes(host))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(changes(host))?;
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for child in children {
            self.entry(&host.join(&child), &name.join(&child))?;
        }
        Ok(())
    }

    // ANCHOR: whiteout_out
    /// Writes one entry of the upper directory, translating overlayfs whiteouts to OCI ones.
    fn entry(&mut self, host: &Path, name: &Path) -> Result<(), LayerError> {
        let meta = fs::symlink_metadata(host).map_err(changes(host))?;
        refuse_overlay_features(host)?;
        let file_type = meta.file_type();
        if is_whiteout(&meta) {
            // A 0:0 character device: the file was deleted. In the tar: an empty `.wh.NAME`.
            let whiteout = sibling(name, WHITEOUT_PREFIX)?;
            let mut header = header(&meta, EntryType::Regular, 0);
            header.set_mode(0o600);
            return self.append(&mut header, &whiteout, io::empty());
        }
        if file_type.is_dir() {
            let mut header = header(&meta, EntryType::Directory, 0);
            self.xattrs(host)?;
            self.append(&mut header, name, io::empty())?;
            if xattr::get(host, OVERLAY_OPAQUE_XATTR)
                .map_err(changes(host))?
                .as_deref()
                == Some(b"y")
            {
                // An opaque directory: nothing of the lower layers shows through. In the tar: the
                // directory, then `.wh..wh..opq` inside it before any of its entries.
                let mut marker = header_for_marker(&meta);
                self.append(&mut marker, &name.join(OPAQUE_MARKER), io::empty())?;
            }
            return self.directory(host, name);
        }
        // ANCHOR_END: whiteout_out
        if file_type.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.hardlinks.get(&key).cloned() {
                    // The inode (content, owner, attributes) was written with the first name.
                    let mut header = header(&meta, EntryType::Link, 0);
                    return self
                        .builder
                        .append_link(&mut header, name, first)
                        .map_err(write_error);
                }
                self.hardlinks.insert(key, name.to_path_buf());
            }
            let file = open_nofollow(host)?;
            let mut header = header(&meta, EntryType::Regular, meta.len());
            self.xattrs(host)?;
            return self.append(&mut header, name, file);
        }
        if file_type.is_symlink() {
            let target = fs::read_link(host).map_err(changes(host))?;
            let mut header = header(&meta, EntryType::Symlink, 0);
            return self
                .builder
                .append_link(&mut header, name, target)
                .map_err(write_error);
        }
        if file_type.is_fifo() {
            let mut header = header(&meta, EntryType::Fifo, 0);
            return self.append(&mut header, name, io::empty());
        }
        self.warnings.push(format!(
            "left out {}: sockets and device nodes are not part of an image",
            name.display()
        ));
        Ok(())
    }

    fn append(
        &mut self,
        header: &mut Header,
        name: &Path,
        data: impl io::Read,
    ) -> Result<(), LayerError> {
        self.builder
            .append_data(header, name, data)
            .map_err(write_error)
    }

    /// Writes the extended attributes a layer may carry as PAX records for the next entry.
    fn xattrs(&mut self, host: &Path) -> Result<(), LayerError> {
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        for name in xattr::list(host).map_err(changes(host))? {
            let Some(name) = name.to_str() else { continue };
            if !allowed_xattr(name) {
                continue;
            }
            if let Some(value) = xattr::get(host, name).map_err(changes(host))? {
                records.push((format!("SCHILY.xattr.{name}"), value));
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        records.sort();
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(write_error)
    }
}

/// A header with the entry's owner, mode and modification time, and nothing else.
fn header(meta: &Metadata, kind: EntryType, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(u64::from(meta.uid()));
    header.set_gid(u64::from(meta.gid()));
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    header
}

fn header_for_marker(dir: &Metadata) -> Header {
    let mut header = header(dir, EntryType::Regular, 0);
    header.set_mode(0o600);
    header
}

/// `dir/NAME` → `dir/.wh.NAME`.
fn sibling(name: &Path, prefix: &str) -> Result<PathBuf, LayerError> {
    let file_name = name.file_name().ok_or_else(|| LayerError::Changes {
        path: name.to_path_buf(),
        source: io::Error::other("a whiteout with no name"),
    })?;
    let mut whiteout = std::ffi::OsString::from(prefix);
    whiteout.push(file_name);
    Ok(name.with_file_name(whiteout))
}

/// overlayfs features whose upper-dir encoding skiff does not translate.
fn refuse_overlay_features(host: &Path) -> Result<(), LayerError> {
    for attr in ["trusted.overlay.redirect", "trusted.overlay.metacopy"] {
        if xattr::get(host, attr).map_err(changes(host))?.is_some() {
            return Err(LayerError::Changes {
                path: host.to_path_buf(),
                source: io::Error::other(format!(
                    "it carries {attr}: mount the overlay with redirect_dir=off and metacopy=off"
                )),
            });
        }
    }
    Ok(())
}

fn open_nofollow(path: &Path) -> Result<fs::File, LayerError> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(changes(path))
}

fn changes(path: &Path) -> impl Fn(io::Error) -> LayerError + '_ {
    move |source| LayerError::Changes {
        path: path.to_path_buf(),
        source,
    }
}

fn write_error(source: io::Error) -> LayerError {
    LayerError::Write(source)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, symlink};

    use super::*;
    use crate::testutil::{is_root, tree};
    use crate::unpack::unpack;

    /// An overlayfs upper dir as a container would leave it.
    fn upper_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("etc")).unwrap();
        fs::write(p.join("etc/hostname"), b"web\n").unwrap();
        fs::hard_link(p.join("etc/hostname"), p.join("etc/hostname.bak")).unwrap();
        symlink("hostname", p.join("etc/name")).unwrap();
        fs::create_dir_all(p.join("var/cache")).unwrap();
        fs::write(p.join("var/cache/fresh"), b"f").unwrap();
        xattr::set(p.join("var/cache"), OVERLAY_OPAQUE_XATTR, b"y").unwrap();
        xattr::set(p.join("etc/hostname"), "user.note", b"kept").unwrap();
        nix::sys::stat::mknod(
            &p.join("etc/motd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(p.join("app.sock")).unwrap();
        dir
    }

    fn entries(tar: &[u8]) -> Vec<(String, EntryType)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                (path, e.header().entry_type())
            })
            .collect()
    }

    #[test]
    fn an_upper_dir_becomes_an_oci_layer_with_whiteouts() {
        if !is_root() {
            return;
        }
        let upper = upper_dir();
        let mut tar = Vec::new();
        let packed = pack(upper.path(), &mut tar).unwrap();
        assert_eq!(packed.diff_id, Digest::of_bytes(&tar));
        assert_eq!(packed.tar_size, tar.len() as u64);
        assert!(
            packed.warnings.iter().any(|w| w.contains("app.sock")),
            "{:?}",
            packed.warnings
        );
        let names: Vec<(String, EntryType)> = entries(&tar);
        let expected = [
            ("etc", EntryType::Directory),
            ("etc/hostname", EntryType::Regular),
            ("etc/hostname.bak", EntryType::Link),
            ("etc/.wh.motd", EntryType::Regular),
            ("etc/name", EntryType::Symlink),
            ("var", EntryType::Directory),
            ("var/cache", EntryType::Directory),
            ("var/cache/.wh..wh..opq", EntryType::Regular),
            ("var/cache/fresh", EntryType::Regular),
        ];
        let got: Vec<(&str, EntryType)> = names
            .iter()
            .map(|(n, k)| (n.trim_end_matches('/'), *k))
            .collect();
        assert_eq!(
            got, expected,
            "sorted, whiteouts translated, socket left out"
        );
    }

    #[test]
    fn packing_is_deterministic_and_round_trips_through_unpack() {
        if !is_root() {
            return;
        }
        let upper = upper_dir();
        let mut first = Vec::new();
        let mut second = Vec::new();
        let a = pack(upper.path(), &mut first).unwrap();
        let b = pack(upper.path(), &mut second).unwrap();
        assert_eq!(a.diff_id, b.diff_id);
        assert_eq!(first, second);

        let out = tempfile::tempdir().unwrap();
        let layer = out.path().join("layer");
        let unpacked = unpack(&first[..], &layer).unwrap();
        assert_eq!(unpacked.diff_id, a.diff_id);
        let mut expected = tree(upper.path());
        expected.retain(|n| n != "app.sock");
        assert_eq!(tree(&layer), expected, "the same tree comes back");
        assert!(is_whiteout(
            &fs::symlink_metadata(layer.join("etc/motd")).unwrap()
        ));
        assert_eq!(
            xattr::get(layer.join("var/cache"), OVERLAY_OPAQUE_XATTR).unwrap(),
            Some(b"y".to_vec())
        );
        assert_eq!(
            xattr::get(layer.join("etc/hostname"), "user.note").unwrap(),
            Some(b"kept".to_vec())
        );
        let original = fs::metadata(upper.path().join("etc/hostname")).unwrap();
        let copy = fs::metadata(layer.join("etc/hostname")).unwrap();
        assert_eq!(copy.mtime(), original.mtime(), "real mtimes are kept");
        assert_eq!(
            copy.ino(),
            fs::metadata(layer.join("etc/hostname.bak")).unwrap().ino()
        );
    }

    #[test]
    fn redirect_dirs_are_refused_with_a_hint() {
        if !is_root() {
            return;
        }
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir(upper.path().join("moved")).unwrap();
        xattr::set(
            upper.path().join("moved"),
            "trusted.overlay.redirect",
            b"/old",
        )
        .unwrap();
        let err = pack(upper.path(), io::sink()).unwrap_err().to_string();
        assert!(err.contains("redirect_dir=off"), "{err}");
    }
}
