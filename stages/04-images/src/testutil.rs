//! Helpers for the unit tests: crafted layer tarballs, including hostile ones the `tar` crate's
//! safe API would refuse to write, and a store in a temp dir.

use std::path::Path;

use tar::{EntryType, Header};

/// Builds a layer tarball entry by entry.
pub struct LayerTar {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for LayerTar {
    fn default() -> Self {
        LayerTar::new()
    }
}

impl LayerTar {
    pub fn new() -> Self {
        LayerTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    /// An entry with its name and link name written as raw bytes, unchecked.
    pub fn raw(
        mut self,
        path: &str,
        kind: EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
    ) -> Self {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        {
            let gnu = header.as_gnu_mut().expect("a GNU header");
            gnu.name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(link) = link {
                gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
            }
        }
        header.set_cksum();
        self.builder.append(&header, data).expect("append to a Vec");
        self
    }

    pub fn file(self, path: &str, data: &[u8]) -> Self {
        self.raw(path, EntryType::Regular, 0o644, None, data)
    }

    pub fn file_with(self, path: &str, data: &[u8], mode: u32, uid: u64, mtime: u64) -> Self {
        let mut this = self;
        let mut header = Header::new_gnu();
        header.set_entry_type(EntryType::Regular);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(mtime);
        header.set_uid(uid);
        header.set_gid(uid);
        this.builder
            .append_data(&mut header, path, data)
            .expect("append to a Vec");
        this
    }

    pub fn dir(self, path: &str) -> Self {
        self.raw(path, EntryType::Directory, 0o755, None, b"")
    }

    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.raw(path, EntryType::Symlink, 0o777, Some(target), b"")
    }

    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.raw(path, EntryType::Link, 0o644, Some(target), b"")
    }

    pub fn device(mut self, path: &str, kind: EntryType, major: u32, minor: u32) -> Self {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(0o660);
        header.set_size(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header
            .set_device_major(major)
            .expect("a GNU header has device fields");
        header
            .set_device_minor(minor)
            .expect("a GNU header has device fields");
        self.builder
            .append_data(&mut header, path, std::io::empty())
            .expect("append to a Vec");
        self
    }

    /// PAX records for the next entry.
    pub fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        self.builder
            .append_pax_extensions(records.iter().copied())
            .expect("append to a Vec");
        self
    }

    pub fn bytes(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish a Vec")
    }
}

/// A gzip copy of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("write to a Vec");
    gz.finish().expect("finish a Vec")
}

/// Names in `dir`, sorted, recursively, as `a`, `a/b`: to compare trees.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        out.push(
            path.strip_prefix(root)
                .expect("below root")
                .display()
                .to_string(),
        );
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, out);
        }
    }
}

/// Whether the tests run as root (mknod, chown and trusted.* attributes need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
