//! Unpacking a layer: a tarball becomes a directory that overlayfs can stack as a lower dir.
//!
//! A layer is a tar of the changes one build step made (OCI image spec, `layer.md`). Deleted files
//! travel as *whiteouts*: an empty file `.wh.NAME` says "NAME of the layers below is gone", and
//! `.wh..wh..opq` in a directory says "nothing below shows through here". overlayfs spells the same
//! two facts differently (`Documentation/filesystems/overlayfs.rst`): a character device 0:0 named
//! NAME, and the extended attribute `trusted.overlay.opaque=y` on the directory. Unpacking
//! translates one spelling into the other, so the layer directories can be mounted as they are.
//!
//! A tarball is untrusted input, and extraction runs as root. The rules, each pinned by a test:
//!
//! - **Nothing lands outside the layer.** An absolute path or a `..` component is refused. Each
//!   parent directory is opened one component at a time with `O_NOFOLLOW | O_DIRECTORY`
//!   (openat(2)), so a symlink anywhere in the parent path (`evil -> /etc`, then `evil/passwd`) is
//!   refused instead of followed; the new entry itself is created relative to that directory fd.
//!   Symlinks are fine as data: their target is stored, never resolved.
//! - **Hardlinks** must point at an entry already unpacked in this layer (found the same way);
//!   a target outside it or missing is refused.
//! - **Device nodes are skipped, with a warning.** An image must not bring a raw disk (`/dev/sda`)
//!   into a container, and a container gets its `/dev` from the runtime anyway. Skipping instead of
//!   refusing keeps old images that shipped a `/dev` loadable. A 0:0 device in the tarball is not a
//!   legitimate whiteout either (whiteouts travel as `.wh.` files), so it is skipped like any other.
//! - **setuid/setgid bits are kept**: images legitimately hold `su` and `passwd`; what runs them
//!   is decided by the container's user and capabilities, not by stripping files.
//! - **Extended attributes**: only `user.*` and `security.capability` are applied. `trusted.*` is
//!   never taken from a tarball (it would let a layer fake overlay whiteouts); others are ignored.
//! - **Ownership** is preserved when running as root (as skiff does); mode bits always.
//! - **Sparse files keep their holes.** A GNU sparse entry says "N bytes of zeros here" in a few
//!   bytes of header, so a 2 KiB tarball can describe a terabyte. Its holes are written as holes
//!   (lseek(2), not zeros), and the holes of one layer may add up to [`MAX_SPARSE_HOLES`] at
//!   most: past that the entry is refused rather than read through.
//! - **Size**: the layer may expand only so far ([`crate::bounded::Budget`]): the uncompressed tar
//!   stream is counted as it is read, and a layer past its budget is refused. What a layer writes
//!   to disk is its stream's data (sparse holes stay holes), so the budget bounds the disk too.
//!
//! A refused tarball fails with an error naming the entry, and [`unpack`] removes the
//! half-made directory before returning.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};
use tar::EntryType;
use xattr::FileExt;

use crate::bounded::{Budget, Capped};
use crate::digest::{Digest, Hashing};
use crate::error::LayerError;

/// The prefix that marks a whiteout file in a layer tarball.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The name that marks a directory as opaque in a layer tarball.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The overlayfs attribute that makes a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// The most that the holes of a layer's sparse files may add up to: 8 GiB. Holes take no disk,
/// but reading past them still costs time (a few seconds at this size).
pub const MAX_SPARSE_HOLES: u64 = 8 << 30;

/// What unpacking a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The digest of the uncompressed tar stream: the layer's `diff_id`.
    pub diff_id: Digest,
    /// Bytes of regular file content in the layer (what Docker reports as its size).
    pub size: u64,
    /// Entries skipped, with the reason (device nodes, `trusted.*` attributes).
    pub warnings: Vec<String>,
}

/// Unpacks the layer tarball `reader` (plain or gzip) into `dest`, which must not exist yet,
/// within the budget of a small layer ([`crate::bounded::EXPANSION_FLOOR`]); [`unpack_within`]
/// when the compressed size is known. On any error, `dest` is removed again: a failed unpack
/// leaves nothing behind.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<Unpacked, LayerError> {
    unpack_within(reader, dest, Budget::for_compressed(0))
}

/// Unpacks the layer tarball `reader` into `dest` (which must not exist yet), refusing it once it
/// expands beyond `budget`. On any error, `dest` is removed again.
pub fn unpack_within(
    reader: impl Read,
    dest: &Path,
    budget: Budget,
) -> Result<Unpacked, LayerError> {
    std::fs::create_dir(dest).map_err(|source| LayerError::Entry {
        entry: dest.display().to_string(),
        op: "create layer directory",
        source,
    })?;
    let result = unpack_into(reader, dest, budget);
    if result.is_err() {
        // Best effort: the error being returned is the one worth reporting.
        let _ = std::fs::remove_dir_all(dest);
    }
    result
}

// ANCHOR: unpack_into
fn unpack_into(reader: impl Read, dest: &Path, budget: Budget) -> Result<Unpacked, LayerError> {
    let plain = crate::compression::decompress(reader)?;
    // The tar stream is counted as it comes out of the decompressor...
    let mut capped = Capped::new(plain, budget.limit);
    match extract(&mut capped, dest) {
        // ...and whatever the tar reader made of the cut, the reason is the budget.
        Err(_) if capped.exceeded() => Err(LayerError::TooLarge {
            limit: budget.limit,
            compressed: budget.compressed,
        }),
        result => result,
    }
}
// ANCHOR_END: unpack_into

fn extract(plain: impl Read, dest: &Path) -> Result<Unpacked, LayerError> {
    let mut hashing = Hashing::new(plain);
    let mut extractor = Extractor::open(dest)?;
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(LayerError::Read)? {
            extractor.entry(entry.map_err(LayerError::Read)?)?;
        }
    }
    // The diff_id covers the whole stream, including the end-of-archive blocks and any padding
    // after them, which the tar reader does not consume.
    io::copy(&mut hashing, &mut io::sink()).map_err(LayerError::Read)?;
    extractor.finish()?;
    let (diff_id, _) = hashing.digest();
    Ok(Unpacked {
        diff_id,
        size: extractor.size,
        warnings: extractor.warnings,
    })
}

/// Metadata of one entry, read from its header and PAX records before its data.
struct Meta {
    mode: Mode,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Extractor {
    root: OwnedFd,
    root_path: PathBuf,
    is_root: bool,
    /// Directory times are set last, once nothing more will be created inside them.
    dir_times: Vec<(Vec<OsString>, TimeSpec)>,
    size: u64,
    /// The holes of the sparse files so far, against [`MAX_SPARSE_HOLES`].
    holes: u64,
    warnings: Vec<String>,
}

impl Extractor {
    fn open(dest: &Path) -> Result<Self, LayerError> {
        let root = nix::fcntl::open(dest, dir_flags(), Mode::empty()).map_err(|errno| {
            LayerError::Entry {
                entry: dest.display().to_string(),
                op: "open layer directory",
                source: errno.into(),
            }
        })?;
        Ok(Extractor {
            root,
            root_path: dest.to_path_buf(),
            is_root: nix::unistd::geteuid().is_root(),
            dir_times: Vec::new(),
            size: 0,
            holes: 0,
            warnings: Vec::new(),
        })
    }

    // ANCHOR: extract_entry
    /// Unpacks one entry: checks its path, opens its parent without following symlinks, then
    /// creates it relative to that directory.
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), LayerError> {
        let raw_path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        if chroot::defence::disabled(SAFE_UNPACK) {
            // The labs prove this defence: a debug build can be told to extract the old way.
            return self.naive_entry(&mut entry, &raw_path, &shown);
        }
        let components = components(&raw_path).map_err(|reason| unsafe_entry(&shown, reason))?;
        let meta = read_meta(&mut entry, &shown)?;
        let Some((name, parents)) = components.split_last() else {
            // "./": the layer's root directory itself.
            return self.root_dir(&meta, &shown);
        };
        if let Some(target) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(parents, OsStr::from_bytes(target), &shown);
        }
        let parent = self.open_dir(parents, true, &shown)?;
        match kind {
            EntryType::Directory => self.directory(&parent, &components, &meta, &shown),
            EntryType::Regular | EntryType::Continuous => {
                self.clear_slot(&parent, parents, name, false, &shown)?;
                self.regular(&parent, name, &meta, &mut entry, false, &shown)
            }
            EntryType::GNUSparse => {
                // The tar reader has expanded the sparse map: `size` counts the holes, the
                // header's size only the data the archive carries.
                let holes = entry
                    .size()
                    .saturating_sub(entry.header().entry_size().unwrap_or(0));
                self.holes = self.holes.saturating_add(holes);
                if self.holes > MAX_SPARSE_HOLES {
                    return Err(unsafe_entry(
                        &shown,
                        format!(
                            "it is a sparse file of {} bytes, and the holes of this layer's sparse files add up to more than {MAX_SPARSE_HOLES} bytes",
                            entry.size()
                        ),
                    ));
                }
                self.clear_slot(&parent, parents, name, false, &shown)?;
                self.regular(&parent, name, &meta, &mut entry, true, &shown)
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                self.clear_slot(&parent, parents, name, false, &shown)?;
                self.symlink(&parent, name, &target, &meta, &shown)
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                self.clear_slot(&parent, parents, name, false, &shown)?;
                self.hardlink(&parent, name, &target, &shown)
            }
            EntryType::Fifo => {
                self.clear_slot(&parent, parents, name, false, &shown)?;
                self.fifo(&parent, name, &meta, &shown)
            }
            EntryType::Char | EntryType::Block => {
                self.warnings.push(format!(
                    "skipped device node {shown:?}: images may not carry device nodes; \
                     a container gets its /dev from the runtime"
                ));
                Ok(())
            }
            other => Err(LayerError::Unsupported {
                entry: shown,
                kind: format!("{other:?}"),
            }),
        }
    }

    // ANCHOR_END: extract_entry

    // ANCHOR: safe_extract
    /// Opens the directory `path` below the layer root, one component at a time, refusing to
    /// pass through a symlink. Missing directories are created when `create` is set (tarballs
    /// often omit parent entries).
    fn open_dir(
        &self,
        path: &[OsString],
        create: bool,
        shown: &str,
    ) -> Result<OwnedFd, LayerError> {
        let mut dir = self.reopen_root(shown)?;
        for (depth, component) in path.iter().enumerate() {
            let here = || String::from_utf8_lossy(&join(&path[..=depth])).into_owned();
            let next =
                match nix::fcntl::openat(&dir, component.as_os_str(), dir_flags(), Mode::empty()) {
                    Err(Errno::ENOENT) if create => {
                        nix::sys::stat::mkdirat(
                            &dir,
                            component.as_os_str(),
                            Mode::from_bits_truncate(0o755),
                        )
                        .map_err(sys(shown, "create parent directory"))?;
                        nix::fcntl::openat(&dir, component.as_os_str(), dir_flags(), Mode::empty())
                    }
                    other => other,
                };
            dir = match next {
                Ok(fd) => fd,
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let reason = if is_symlink(&dir, component) {
                        format!(
                            "its parent {} is a symlink, and extraction never follows symlinks",
                            here()
                        )
                    } else {
                        format!("its parent {} is not a directory", here())
                    };
                    return Err(unsafe_entry(shown, reason));
                }
                Err(Errno::ENOENT) => {
                    return Err(unsafe_entry(
                        shown,
                        format!("{} does not exist in this layer", here()),
                    ));
                }
                Err(errno) => return Err(sys(shown, "open parent directory")(errno)),
            };
        }
        Ok(dir)
    }
    // ANCHOR_END: safe_extract

    fn reopen_root(&self, shown: &str) -> Result<OwnedFd, LayerError> {
        nix::fcntl::openat(&self.root, ".", dir_flags(), Mode::empty())
            .map_err(sys(shown, "open layer directory"))
    }

    /// Makes room for a new entry named `name`: a later entry replaces an earlier one of the same
    /// name, as tar does. An existing directory is kept when the new entry is a directory too.
    /// Returns whether a directory was kept.
    fn clear_slot(
        &self,
        parent: &OwnedFd,
        parents: &[OsString],
        name: &OsStr,
        new_is_dir: bool,
        shown: &str,
    ) -> Result<bool, LayerError> {
        let existing = match nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::ENOENT) => return Ok(false),
            Err(errno) => return Err(sys(shown, "inspect existing entry")(errno)),
        };
        let is_dir = SFlag::from_bits_truncate(existing.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        if is_dir && new_is_dir {
            return Ok(true);
        }
        if is_dir {
            // A file replaces a whole directory. Its path was walked without symlinks above, and
            // remove_dir_all itself never follows them.
            let mut path = parents.to_vec();
            path.push(name.to_os_string());
            let path = self.root_path.join(OsStr::from_bytes(&join(&path)));
            std::fs::remove_dir_all(&path).map_err(|source| LayerError::Entry {
                entry: shown.to_string(),
                op: "replace existing directory",
                source,
            })?;
        } else {
            nix::unistd::unlinkat(parent, name, UnlinkatFlags::NoRemoveDir)
                .map_err(sys(shown, "replace existing entry"))?;
        }
        Ok(false)
    }

    fn directory(
        &mut self,
        parent: &OwnedFd,
        components: &[OsString],
        meta: &Meta,
        shown: &str,
    ) -> Result<(), LayerError> {
        let Some((name, parents)) = components.split_last() else {
            return self.root_dir(meta, shown);
        };
        if !self.clear_slot(parent, parents, name, true, shown)? {
            nix::sys::stat::mkdirat(parent, name.as_os_str(), Mode::from_bits_truncate(0o700))
                .map_err(sys(shown, "create directory"))?;
        }
        let dir = nix::fcntl::openat(parent, name.as_os_str(), dir_flags(), Mode::empty())
            .map_err(sys(shown, "open directory"))?;
        self.apply(File::from(dir), meta, shown)?;
        self.dir_times.push((components.to_vec(), meta.mtime));
        Ok(())
    }

    fn root_dir(&mut self, meta: &Meta, shown: &str) -> Result<(), LayerError> {
        let root = File::from(self.reopen_root(shown)?);
        self.apply(root, meta, shown)?;
        self.dir_times.push((Vec::new(), meta.mtime));
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
        data: &mut tar::Entry<'_, R>,
        sparse: bool,
        shown: &str,
    ) -> Result<(), LayerError> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(parent, name, flags, Mode::from_bits_truncate(0o600))
            .map_err(sys(shown, "create file"))?;
        let mut file = File::from(fd);
        let written = if sparse {
            copy_sparse(data, &mut file)
        } else {
            io::copy(data, &mut file)
        };
        self.size += written.map_err(|source| LayerError::Entry {
            entry: shown.to_string(),
            op: "write file",
            source,
        })?;
        self.apply(file, meta, shown)
    }

    /// A symlink is data: its target is stored as it is and never resolved.
    fn symlink(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        target: &[u8],
        meta: &Meta,
        shown: &str,
    ) -> Result<(), LayerError> {
        if target.is_empty() {
            return Err(unsafe_entry(shown, "a symlink with an empty target"));
        }
        nix::unistd::symlinkat(OsStr::from_bytes(target), parent, name)
            .map_err(sys(shown, "create symlink"))?;
        self.owner_at(parent, name, meta, shown)?;
        nix::sys::stat::utimensat(
            parent,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(sys(shown, "set times"))
    }

    fn fifo(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), LayerError> {
        nix::sys::stat::mknodat(parent, name, SFlag::S_IFIFO, meta.mode, 0)
            .map_err(sys(shown, "create fifo"))?;
        self.owner_at(parent, name, meta, shown)?;
        // Just created as a fifo by us, so "following symlinks" cannot leave the layer.
        nix::sys::stat::fchmodat(parent, name, meta.mode, FchmodatFlags::FollowSymlink)
            .map_err(sys(shown, "set mode"))?;
        nix::sys::stat::utimensat(
            parent,
            name,
            &meta.mtime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(sys(shown, "set times"))
    }

    fn hardlink(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        target: &[u8],
        shown: &str,
    ) -> Result<(), LayerError> {
        let target_components = components(target)
            .map_err(|reason| unsafe_entry(shown, format!("its hardlink target {reason}")))?;
        let Some((target_name, target_parents)) = target_components.split_last() else {
            return Err(unsafe_entry(shown, "a hardlink to the layer root"));
        };
        let target_dir = self.open_dir(target_parents, false, shown).map_err(|_| {
            unsafe_entry(
                shown,
                format!(
                    "its hardlink target {:?} is not an entry unpacked earlier in this layer",
                    String::from_utf8_lossy(target)
                ),
            )
        })?;
        // linkat(2) without AT_SYMLINK_FOLLOW links the target entry itself, never what a
        // symlink there points to.
        nix::unistd::linkat(
            &target_dir,
            target_name.as_os_str(),
            parent,
            name,
            AtFlags::empty(),
        )
        .map_err(|errno| match errno {
            Errno::ENOENT => unsafe_entry(
                shown,
                format!(
                    "its hardlink target {:?} is not an entry unpacked earlier in this layer",
                    String::from_utf8_lossy(target)
                ),
            ),
            Errno::EPERM => unsafe_entry(shown, "a hardlink to a directory"),
            other => sys(shown, "create hardlink")(other),
        })
    }

    // ANCHOR: whiteout_in
    /// A whiteout in the tarball becomes its overlayfs form in the layer directory.
    fn whiteout(
        &mut self,
        parents: &[OsString],
        target: &OsStr,
        shown: &str,
    ) -> Result<(), LayerError> {
        let dir = self.open_dir(parents, true, shown)?;
        if target.as_bytes() == &OPAQUE_MARKER.as_bytes()[WHITEOUT_PREFIX.len()..] {
            // `.wh..wh..opq`: the directory hides everything below it.
            File::from(dir)
                .set_xattr(OVERLAY_OPAQUE_XATTR, b"y")
                .map_err(|source| LayerError::Entry {
                    entry: shown.to_string(),
                    op: "mark directory opaque",
                    source,
                })?;
            return Ok(());
        }
        if target.as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            // `.wh..wh.*` other than the opaque marker is aufs bookkeeping (`.wh..wh.plnk`):
            // it describes nothing in the image, so Docker skips it too.
            return Ok(());
        }
        if target.is_empty() || target == "." || target == ".." {
            return Err(unsafe_entry(shown, "a whiteout that names no file"));
        }
        // `.wh.NAME`: NAME of the lower layers is deleted. A NAME present in this same layer wins
        // (a whiteout only hides lower layers), so an existing entry is kept.
        match nix::sys::stat::mknodat(&dir, target, SFlag::S_IFCHR, Mode::empty(), 0) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(errno) => Err(sys(shown, "create whiteout device 0:0")(errno)),
        }
    }
    // ANCHOR_END: whiteout_in

    /// Owner, mode, attributes and (for non-directories) times, through an open descriptor.
    fn apply(&mut self, file: File, meta: &Meta, shown: &str) -> Result<(), LayerError> {
        let fail = |op: &'static str| {
            move |source: io::Error| LayerError::Entry {
                entry: shown.to_string(),
                op,
                source,
            }
        };
        if self.is_root {
            nix::unistd::fchown(
                &file,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| fail("set owner")(e.into()))?;
        }
        // After chown, which clears setuid/setgid bits and file capabilities.
        nix::sys::stat::fchmod(&file, meta.mode).map_err(|e| fail("set mode")(e.into()))?;
        for (name, value) in &meta.xattrs {
            if allowed_xattr(name) {
                file.set_xattr(name, value)
                    .map_err(fail("set extended attribute"))?;
            } else if name.starts_with("trusted.") {
                self.warnings.push(format!(
                    "ignored extended attribute {name} on {shown:?}: trusted.* attributes are never taken from a layer"
                ));
            }
        }
        if !file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            nix::sys::stat::futimens(&file, &meta.mtime, &meta.mtime)
                .map_err(|e| fail("set times")(e.into()))?;
        }
        Ok(())
    }

    /// Owner of an entry that cannot be opened (symlink, fifo).
    fn owner_at(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), LayerError> {
        if !self.is_root {
            return Ok(());
        }
        nix::unistd::fchownat(
            parent,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(sys(shown, "set owner"))
    }

    /// Sets directory times, deepest last-created first, once all entries are in place. A
    /// directory a later entry replaced is skipped.
    fn finish(&mut self) -> Result<(), LayerError> {
        for (path, mtime) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let shown = String::from_utf8_lossy(&join(&path)).into_owned();
            let Ok(dir) = self.open_dir(&path, false, &shown) else {
                continue;
            };
            nix::sys::stat::futimens(&dir, &mtime, &mtime).map_err(sys(&shown, "set times"))?;
        }
        Ok(())
    }
}

// ANCHOR: copy_sparse
/// Copies a sparse file's content, seeking over blocks of zeros instead of writing them, so that
/// its holes stay holes on disk. Returns the file's size.
fn copy_sparse(data: &mut impl Read, file: &mut File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom, Write};
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let block = &buf[..n];
        if block.iter().all(|b| *b == 0) {
            file.seek(SeekFrom::Current(i64::try_from(n).unwrap_or(i64::MAX)))?;
        } else {
            file.write_all(block)?;
        }
        size += n as u64;
    }
    // A hole at the end is made by the length alone.
    file.set_len(size)?;
    Ok(size)
}
// ANCHOR_END: copy_sparse

fn is_symlink(dir: &OwnedFd, name: &OsStr) -> bool {
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
}

// ANCHOR: entry_path
/// The name of the defence above (for `SKIFF_UNSAFE_DISABLE`, debug builds only).
pub const SAFE_UNPACK: &str = "safe-unpack";

/// With `safe-unpack` off, the only host paths outside the layer that extraction may still
/// write: files directly in `/tmp` named so, where the labs' hostile tarballs aim.
const NAIVE_HOST_PREFIX: &str = "skiff-lab-evil-";

impl Extractor {
    /// Extraction the old, unsafe way, for the labs' `safe-unpack` trials: the entry's path is
    /// joined to the layer's as a string (`Path::join`, which an absolute path replaces), and
    /// the kernel follows `..` and symlinks wherever they lead. Mode, owner and times are not
    /// restored. A guard rail stays even so: what would land outside the layer is written only
    /// if it is a file directly in `/tmp` named `skiff-lab-evil-*`, and refused otherwise, so
    /// that a debug switch can never touch the rest of the host.
    fn naive_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw_path: &[u8],
        shown: &str,
    ) -> Result<(), LayerError> {
        let root = self
            .root_path
            .canonicalize()
            .map_err(|e| io_error(shown, "resolve the layer directory", e))?;
        let path = root.join(OsStr::from_bytes(raw_path));
        let Some(name) = path.file_name() else {
            return Ok(());
        };
        let at = where_on_host(path.parent().unwrap_or(&root)).join(name);
        let inside = at.starts_with(&root);
        let refuse = |what: &str, host: &Path| {
            unsafe_entry(
                shown,
                format!(
                    "with safe-unpack switched off it would {what} {}, and even then nothing \
                     outside the layer but /tmp/{NAIVE_HOST_PREFIX}* is written",
                    host.display()
                ),
            )
        };
        if !naive_may_write(&root, &at) {
            return Err(refuse("write", &at));
        }
        if inside && let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_error(shown, "create parent directory", e))?;
        }
        match entry.header().entry_type() {
            EntryType::Directory => {
                std::fs::create_dir_all(&path).map_err(|e| io_error(shown, "create directory", e))
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let _ = std::fs::remove_file(&path);
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(|e| io_error(shown, "create symlink", e))
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let source = where_on_host(&root.join(OsStr::from_bytes(&target)));
                if !naive_may_write(&root, &source) {
                    return Err(refuse("link to", &source));
                }
                std::fs::hard_link(&source, &path)
                    .map_err(|e| io_error(shown, "create hardlink", e))
            }
            _ => {
                // Never through a symlink as the last component: where it leads was not checked.
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| io_error(shown, "create file", e))?;
                self.size += io::copy(entry, &mut file).map_err(LayerError::Read)?;
                Ok(())
            }
        }
    }
}

/// The guard rail of [`Extractor::naive_entry`]: inside the layer `root`, or a file directly in
/// `/tmp` named `skiff-lab-evil-*`.
fn naive_may_write(root: &Path, at: &Path) -> bool {
    at.starts_with(root)
        || (at.parent() == Some(Path::new("/tmp"))
            && at
                .file_name()
                .is_some_and(|n| n.as_bytes().starts_with(NAIVE_HOST_PREFIX.as_bytes())))
}

/// Where `path` leads on the host: each existing prefix resolved by the kernel (symlinks
/// followed), `..` climbing from there, the missing rest taken as written.
fn where_on_host(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut here = PathBuf::from("/");
    for part in path.components() {
        match part {
            Component::RootDir | Component::Prefix(_) => here = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                here.pop();
            }
            Component::Normal(name) => {
                here.push(name);
                if let Ok(real) = here.canonicalize() {
                    here = real;
                }
            }
        }
    }
    here
}

fn io_error(entry: &str, op: &'static str, source: io::Error) -> LayerError {
    LayerError::Entry {
        entry: entry.to_string(),
        op,
        source,
    }
}

/// Splits an entry path into its components, refusing any that could leave the layer.
/// `./a//b/` gives `[a, b]`; the root (`./` or empty) gives `[]`.
fn components(path: &[u8]) -> Result<Vec<OsString>, String> {
    if path.starts_with(b"/") {
        return Err("it is an absolute path; layer entries are relative to the layer root".into());
    }
    let mut out = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                return Err("it has a `..` component, which would climb out of the layer".into());
            }
            name => out.push(OsStr::from_bytes(name).to_os_string()),
        }
    }
    Ok(out)
}
// ANCHOR_END: entry_path

fn join(path: &[OsString]) -> Vec<u8> {
    let parts: Vec<&[u8]> = path.iter().map(|p| p.as_bytes()).collect();
    parts.join(&b'/')
}

/// Reads mode, owner, mtime and extended attributes from the header and its PAX records.
fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, shown: &str) -> Result<Meta, LayerError> {
    let header = entry.header();
    let read = |v: io::Result<u64>, what: &str| {
        v.map_err(|_| unsafe_entry(shown, format!("its {what} field is not a number")))
    };
    let mode = read(header.mode().map(u64::from), "mode")?;
    let mut uid = read(header.uid(), "uid")?;
    let mut gid = read(header.gid(), "gid")?;
    let mut mtime = read(header.mtime(), "mtime")?;
    let mut xattrs = Vec::new();
    if let Some(records) = entry.pax_extensions().map_err(LayerError::Read)? {
        for record in records {
            let record = record.map_err(LayerError::Read)?;
            let Ok(key) = record.key() else { continue };
            let number = || {
                let text = record.value().unwrap_or("");
                text.split('.').next().and_then(|s| s.parse::<u64>().ok())
            };
            match key {
                "uid" => uid = number().unwrap_or(uid),
                "gid" => gid = number().unwrap_or(gid),
                "mtime" => mtime = number().unwrap_or(mtime),
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        xattrs.push((name.to_string(), record.value_bytes().to_vec()));
                    }
                }
            }
        }
    }
    let id = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| unsafe_entry(shown, format!("its {what} {v} is out of range")))
    };
    let mtime = i64::try_from(mtime).unwrap_or(i64::MAX);
    Ok(Meta {
        mode: Mode::from_bits_truncate(libc::mode_t::try_from(mode & 0o7777).unwrap_or_default()),
        uid: id(uid, "uid")?,
        gid: id(gid, "gid")?,
        mtime: TimeSpec::new(mtime, 0),
        xattrs,
    })
}

/// The extended attributes a layer may set: user data and file capabilities (`ping`).
pub fn allowed_xattr(name: &str) -> bool {
    name.starts_with("user.") || name == "security.capability"
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn unsafe_entry(entry: &str, reason: impl Into<String>) -> LayerError {
    LayerError::Unsafe {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

fn sys<'a>(entry: &'a str, op: &'static str) -> impl Fn(Errno) -> LayerError + 'a {
    move |errno| LayerError::Entry {
        entry: entry.to_string(),
        op,
        source: errno.into(),
    }
}

/// Whether `fd` is an overlayfs whiteout: a character device with device number 0:0.
pub fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device() && meta.rdev() == 0
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    use tar::EntryType;

    use super::*;
    use crate::testutil::{LayerTar, gzip, is_root, tree};

    fn unpack_bytes(bytes: &[u8]) -> (tempfile::TempDir, PathBuf, Result<Unpacked, LayerError>) {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("layer");
        let result = unpack(bytes, &dest);
        (tmp, dest, result)
    }

    /// Unpacks a hostile tarball: it must fail naming `entry`, and leave no directory behind.
    fn refused(bytes: &[u8], entry: &str, why: &str) -> String {
        let (tmp, dest, result) = unpack_bytes(bytes);
        let err = result
            .expect_err("a hostile tarball must be refused")
            .to_string();
        assert!(
            err.contains(&format!("{entry:?}")),
            "error names the entry: {err}"
        );
        assert!(err.contains(why), "error says why ({why}): {err}");
        assert!(!dest.exists(), "the half-made layer directory is removed");
        assert_eq!(tree(tmp.path()), Vec::<String>::new());
        err
    }

    #[test]
    fn files_dirs_links_and_metadata_are_unpacked() {
        let bytes = LayerTar::new()
            .dir("./")
            .dir("bin/")
            .file_with("bin/su", b"#!su", 0o4755, 0, 1_600_000_000)
            .file_with("home/user/notes", b"hello", 0o640, 1234, 1_650_000_000)
            .symlink("bin/sh", "/bin/busybox")
            .hardlink("bin/su2", "bin/su")
            .raw("run/fifo", EntryType::Fifo, 0o600, None, b"")
            .bytes();
        let (_tmp, dest, result) = unpack_bytes(&bytes);
        let unpacked = result.unwrap();
        assert_eq!(
            unpacked.diff_id,
            Digest::of_bytes(&bytes),
            "diff_id is the tar's digest"
        );
        assert_eq!(unpacked.size, 4 + 5);
        assert!(unpacked.warnings.is_empty());
        let su = std::fs::metadata(dest.join("bin/su")).unwrap();
        assert_eq!(su.permissions().mode() & 0o7777, 0o4755, "setuid is kept");
        assert_eq!(su.mtime(), 1_600_000_000);
        assert_eq!(
            su.ino(),
            std::fs::metadata(dest.join("bin/su2")).unwrap().ino()
        );
        assert_eq!(
            std::fs::read_link(dest.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox"),
            "a symlink is data: its target is stored, not resolved"
        );
        let notes = std::fs::metadata(dest.join("home/user/notes")).unwrap();
        assert_eq!(notes.permissions().mode() & 0o777, 0o640);
        if is_root() {
            assert_eq!(
                (notes.uid(), notes.gid()),
                (1234, 1234),
                "ownership is kept"
            );
        }
        assert!(
            dest.join("home/user").is_dir(),
            "missing parents are created"
        );
        let fifo = std::fs::symlink_metadata(dest.join("run/fifo")).unwrap();
        assert!(fifo.file_type().is_fifo());
        assert_eq!(
            std::fs::metadata(dest.join("bin")).unwrap().mtime(),
            1_700_000_000,
            "directory times are set after their contents"
        );
    }

    #[test]
    fn gzip_layers_have_the_diff_id_of_their_plain_tar() {
        let bytes = LayerTar::new().file("a", b"content").bytes();
        let (_tmp, dest, result) = unpack_bytes(&gzip(&bytes));
        assert_eq!(result.unwrap().diff_id, Digest::of_bytes(&bytes));
        assert_eq!(std::fs::read(dest.join("a")).unwrap(), b"content");
    }

    #[test]
    fn whiteouts_become_overlayfs_whiteouts() {
        if !is_root() {
            return;
        }
        let bytes = LayerTar::new()
            .file("etc/.wh.passwd", b"")
            .dir("var/cache/")
            .file("var/cache/.wh..wh..opq", b"")
            .file("var/cache/new", b"n")
            .file(".wh..wh.plnk", b"")
            .file("keep", b"mine")
            .file(".wh.keep", b"")
            .bytes();
        let (_tmp, dest, result) = unpack_bytes(&bytes);
        result.unwrap();
        let whiteout = std::fs::symlink_metadata(dest.join("etc/passwd")).unwrap();
        assert!(whiteout.file_type().is_char_device());
        assert_eq!(whiteout.rdev(), 0, "a whiteout is the device 0:0");
        assert!(
            !dest.join("etc/.wh.passwd").exists(),
            "the .wh. file itself is not kept"
        );
        assert_eq!(
            xattr::get(dest.join("var/cache"), OVERLAY_OPAQUE_XATTR).unwrap(),
            Some(b"y".to_vec())
        );
        assert!(
            dest.join("var/cache/new").is_file(),
            "an opaque dir keeps its own entries"
        );
        assert!(
            !dest.join(".wh..wh.plnk").exists(),
            "aufs metadata is skipped"
        );
        assert_eq!(
            std::fs::read(dest.join("keep")).unwrap(),
            b"mine",
            "a whiteout only hides lower layers"
        );
    }

    #[test]
    fn with_safe_unpack_off_the_rail_still_keeps_the_host_out_of_reach() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("ok")).unwrap();
        std::os::unix::fs::symlink("/tmp", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        // Where the kernel would lead each naive join: `..` and symlinks followed.
        let evil = Path::new("/tmp/skiff-lab-evil-x");
        assert_eq!(
            where_on_host(&root.join("ok/../../../../../../tmp/skiff-lab-evil-x")),
            evil
        );
        assert_eq!(where_on_host(&root.join("escape/skiff-lab-evil-x")), evil);
        assert_eq!(
            where_on_host(&root.join("etc/passwd")),
            Path::new("/etc/passwd")
        );
        assert_eq!(where_on_host(&root.join("ok/new/../a")), root.join("ok/a"));
        // Only the layer and /tmp/skiff-lab-evil-* may be written.
        assert!(naive_may_write(&root, &root.join("ok/a")));
        assert!(naive_may_write(&root, evil));
        for host in [
            "/etc/passwd",
            "/tmp/other",
            "/tmp/skiff-lab-evil-x/deeper",
            "/",
        ] {
            assert!(!naive_may_write(&root, Path::new(host)), "{host}");
        }
    }

    #[test]
    fn dot_dot_is_refused() {
        let bytes = LayerTar::new()
            .file("ok", b"1")
            .file("a/../../escape", b"x")
            .bytes();
        refused(&bytes, "a/../../escape", "climb out of the layer");
    }

    #[test]
    fn absolute_paths_are_refused() {
        let bytes = LayerTar::new().file("/etc/cron.d/evil", b"x").bytes();
        refused(&bytes, "/etc/cron.d/evil", "absolute path");
    }

    #[test]
    fn writing_through_a_symlinked_parent_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().display().to_string();
        let bytes = LayerTar::new()
            .symlink("evil", &target)
            .file("evil/passwd", b"root::0:0::/:/bin/sh")
            .bytes();
        refused(&bytes, "evil/passwd", "is a symlink");
        assert_eq!(
            tree(outside.path()),
            Vec::<String>::new(),
            "nothing was written outside"
        );
        // The same through a relative link deeper in the path.
        let bytes = LayerTar::new()
            .dir("a/")
            .symlink("a/b", "../../..")
            .file("a/b/c/x", b"x")
            .bytes();
        refused(&bytes, "a/b/c/x", "its parent a/b is a symlink");
    }

    #[test]
    fn a_file_replacing_a_symlink_does_not_write_through_it() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        let bytes = LayerTar::new()
            .symlink("x", &victim.display().to_string())
            .file("x", b"data")
            .bytes();
        let (_tmp, dest, result) = unpack_bytes(&bytes);
        result.unwrap();
        assert!(!victim.exists(), "the symlink's target was not created");
        assert_eq!(std::fs::read(dest.join("x")).unwrap(), b"data");
    }

    #[test]
    fn hardlinks_out_of_the_layer_or_to_nothing_are_refused() {
        let bytes = LayerTar::new()
            .hardlink("shadow", "../../etc/shadow")
            .bytes();
        refused(&bytes, "shadow", "climb out of the layer");
        let bytes = LayerTar::new().hardlink("shadow", "/etc/shadow").bytes();
        refused(&bytes, "shadow", "absolute path");
        let bytes = LayerTar::new().hardlink("copy", "not/there").bytes();
        refused(&bytes, "copy", "not an entry unpacked earlier");
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let bytes = LayerTar::new()
            .symlink("evil", &outside.path().display().to_string())
            .hardlink("copy", "evil/secret")
            .bytes();
        refused(&bytes, "copy", "not an entry unpacked earlier");
    }

    #[test]
    fn device_nodes_are_skipped_with_a_warning() {
        let bytes = LayerTar::new()
            .device("dev/sda", EntryType::Block, 8, 0)
            .device("dev/null", EntryType::Char, 1, 3)
            .device("etc/fake-whiteout", EntryType::Char, 0, 0)
            .file("etc/ok", b"ok")
            .bytes();
        let (_tmp, dest, result) = unpack_bytes(&bytes);
        let unpacked = result.unwrap();
        assert!(!dest.join("dev/sda").exists());
        assert!(!dest.join("dev/null").exists());
        assert!(
            std::fs::symlink_metadata(dest.join("etc/fake-whiteout")).is_err(),
            "a 0:0 device in the tar is not a whiteout"
        );
        assert_eq!(unpacked.warnings.len(), 3, "{:?}", unpacked.warnings);
        assert!(
            unpacked.warnings[0].contains("dev/sda"),
            "{:?}",
            unpacked.warnings
        );
        assert!(dest.join("etc/ok").is_file());
    }

    #[test]
    fn only_user_and_capability_xattrs_are_applied() {
        if !is_root() {
            return;
        }
        let bytes = LayerTar::new()
            .pax(&[
                ("SCHILY.xattr.user.origin", b"skiff"),
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ])
            .dir("d/")
            .bytes();
        let (_tmp, dest, result) = unpack_bytes(&bytes);
        let unpacked = result.unwrap();
        assert_eq!(
            xattr::get(dest.join("d"), "user.origin").unwrap(),
            Some(b"skiff".to_vec())
        );
        assert_eq!(
            xattr::get(dest.join("d"), OVERLAY_OPAQUE_XATTR).unwrap(),
            None,
            "a tarball cannot fake an opaque directory"
        );
        assert!(
            unpacked
                .warnings
                .iter()
                .any(|w| w.contains("trusted.overlay.opaque"))
        );
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let bytes = LayerTar::new()
            .file("a", b"first")
            .file("a", b"second")
            .dir("b/")
            .file("b/inner", b"i")
            .file("b", b"now a file")
            .file("c", b"file")
            .dir("c/")
            .bytes();
        let (_tmp, dest, result) = unpack_bytes(&bytes);
        result.unwrap();
        assert_eq!(std::fs::read(dest.join("a")).unwrap(), b"second");
        assert_eq!(std::fs::read(dest.join("b")).unwrap(), b"now a file");
        assert!(dest.join("c").is_dir());
    }

    /// Unpacks `bytes` with a budget of `limit` bytes.
    fn unpack_within_limit(
        bytes: &[u8],
        limit: u64,
    ) -> (tempfile::TempDir, PathBuf, Result<Unpacked, LayerError>) {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("layer");
        let budget = Budget {
            limit,
            compressed: bytes.len() as u64,
        };
        let result = unpack_within(bytes, &dest, budget);
        (tmp, dest, result)
    }

    #[test]
    fn a_layer_that_expands_past_its_budget_is_refused_and_leaves_nothing() {
        let tar = LayerTar::new().file("zeros", &vec![0u8; 1 << 20]).bytes();
        let bomb = gzip(&tar);
        assert!(bomb.len() < 8 << 10, "a thousandfold: {}", bomb.len());
        let (_tmp, dest, result) = unpack_within_limit(&bomb, 256 << 10);
        let err = result.unwrap_err();
        assert!(
            matches!(err, LayerError::TooLarge { limit, .. } if limit == 256 << 10),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("more than 262144 bytes")
                && text.contains(&format!("{} compressed bytes", bomb.len()))
                && text.contains("decompression bomb"),
            "{text}"
        );
        assert!(!dest.exists());
        // Within its budget, the same layer unpacks.
        let (_tmp, dest, result) = unpack_within_limit(&bomb, 2 << 20);
        assert_eq!(result.unwrap().size, 1 << 20);
        assert!(dest.join("zeros").is_file());
    }

    #[test]
    fn zeros_after_the_end_of_the_archive_count_too() {
        let mut tar = LayerTar::new().file("a", b"a").bytes();
        tar.extend(std::iter::repeat_n(0u8, 1 << 20));
        let (_tmp, dest, result) = unpack_within_limit(&gzip(&tar), 512 << 10);
        assert!(matches!(result, Err(LayerError::TooLarge { .. })));
        assert!(!dest.exists());
    }

    /// A GNU sparse entry: `hole` bytes of zeros, then `data`, described in its header.
    fn sparse(name: &str, hole: u64, data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(EntryType::GNUSparse);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_size(data.len() as u64);
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.sparse[0].set_offset(hole);
        gnu.sparse[0].set_length(data.len() as u64);
        gnu.set_real_size(hole + data.len() as u64);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, data).unwrap();
        builder.into_inner().unwrap()
    }

    /// Found while writing the property tests (`tests/props.rs`): a 2 KiB tarball whose one
    /// sparse entry has a 512 MiB hole wrote 512 MiB of zeros to disk, and a terabyte hole
    /// would have filled it.
    #[test]
    fn a_sparse_bomb_neither_fills_the_disk_nor_runs_for_ever() {
        let bytes = sparse("lastlog", 64 << 20, b"x");
        assert!(bytes.len() <= 2048);
        let (_tmp, dest, result) = unpack_bytes(&bytes);
        assert_eq!(result.unwrap().size, (64 << 20) + 1);
        let meta = std::fs::metadata(dest.join("lastlog")).unwrap();
        assert_eq!(meta.len(), (64 << 20) + 1, "the file has its size");
        assert!(
            meta.blocks() * 512 <= 1 << 20,
            "the hole is a hole: {} bytes on disk",
            meta.blocks() * 512
        );
        let mut content = std::fs::File::open(dest.join("lastlog")).unwrap();
        std::io::Seek::seek(&mut content, std::io::SeekFrom::Start(64 << 20)).unwrap();
        let mut last = Vec::new();
        content.read_to_end(&mut last).unwrap();
        assert_eq!(last, b"x", "the data is after the hole");

        let bytes = sparse("bomb", 1 << 40, b"x");
        refused(
            &bytes,
            "bomb",
            "holes of this layer's sparse files add up to more than",
        );
    }

    #[test]
    fn sparse_holes_are_not_counted_against_the_budget() {
        // One mebibyte once unpacked, a few hundred bytes of stream: the hole takes no disk, so a
        // 64 KiB budget holds it (the holes have their own cap, `MAX_SPARSE_HOLES`).
        let bytes = sparse("lastlog", 1 << 20, b"x");
        let (_tmp, dest, result) = unpack_within_limit(&bytes, 64 << 10);
        assert_eq!(result.unwrap().size, (1 << 20) + 1);
        assert_eq!(
            std::fs::metadata(dest.join("lastlog")).unwrap().len(),
            (1 << 20) + 1
        );
    }

    #[test]
    fn a_truncated_tarball_fails_and_leaves_nothing() {
        let bytes = LayerTar::new().file("a", &[7u8; 4096]).bytes();
        let (_tmp, dest, result) = unpack_bytes(&bytes[..1000]);
        assert!(result.is_err());
        assert!(!dest.exists());
    }
}
