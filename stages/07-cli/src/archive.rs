//! Trees as tar streams, both ways, by descriptor: what `cp` and `export` move.
//!
//! Docker moves files between a container and the host as tar streams (`docker cp` is "make a
//! tar of SRC, extract it at DEST"), and so does skiff: one [`Packer`] writes a tree as a tar,
//! one [`Extractor`] writes a tar into a container. Both work on directory descriptors: a
//! directory is opened once, and each name in it is opened relative to it with `O_NOFOLLOW`,
//! so no symlink on the way is ever followed, even one the container puts there while the
//! copy runs. The first directory comes from [`crate::beneath`] (openat2 inside the root).
//! See tar(5), openat(2), fstatat(2).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use namespaces::namespaces::IdMapping;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use tar::{EntryType, Header};

use crate::beneath::{Root, open_at};

/// Magic numbers of file systems a copy never descends into: their files are the kernel's
/// (statfs(2)).
const KERNEL_FILE_SYSTEMS: [i64; 4] = [
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x1cd1,      // devpts
    0x6367_7270, // cgroup2
];

// ANCHOR: ids
/// How a container's ids are seen from the host: with `--userns remap`, the container's root
/// is uid 100000 of the host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ids(pub Option<IdMapping>);

impl Ids {
    /// The host id of the container's `id`.
    pub fn to_host(self, id: u32) -> u32 {
        match self.0 {
            Some(m) if id < m.count => m.host_start + id,
            Some(m) => m.host_start,
            None => id,
        }
    }

    /// The container's id of the host's `id`.
    pub fn to_container(self, id: u32) -> u32 {
        match self.0 {
            Some(m) if id >= m.host_start && id - m.host_start < m.count => id - m.host_start,
            Some(_) => 65534, // nobody: an id the container has no name for
            None => id,
        }
    }
}
// ANCHOR_END: ids

/// Writes trees as a tar stream.
pub struct Packer<W: Write> {
    builder: tar::Builder<W>,
    /// Stay on the file system of the tree's top (`export`: no volume, no `/proc`).
    one_file_system: bool,
    /// The tree's owners as the container names them.
    ids: Ids,
    hardlinks: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Packer<W> {
    /// A packer writing to `out`.
    pub fn new(out: W, one_file_system: bool, ids: Ids) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        Packer {
            builder,
            one_file_system,
            ids,
            hardlinks: HashMap::new(),
        }
    }

    /// Finishes the archive and returns the writer.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }

    // ANCHOR: pack_entry
    /// Writes the entry `name` of the directory `parent` as `as_name`, and with a directory
    /// everything in it. Never follows a symlink: a link is written as a link.
    pub fn entry(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        as_name: &Path,
    ) -> io::Result<()> {
        let stat = nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        match kind(&stat) {
            SFlag::S_IFDIR => {
                let dir = open_at(parent, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                self.directory(dir, &stat, as_name)
            }
            SFlag::S_IFREG => {
                let file = open_at(parent, name, OFlag::O_RDONLY)?;
                // The file as opened (a swap after the fstatat is seen here).
                let stat = nix::sys::stat::fstat(&file)?;
                if kind(&stat) != SFlag::S_IFREG {
                    return Ok(());
                }
                self.file(file, &stat, as_name)
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(parent, name)?;
                let mut header = self.header(&stat, EntryType::Symlink);
                self.builder.append_link(&mut header, as_name, target)
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                let entry_type = match kind(&stat) {
                    SFlag::S_IFCHR => EntryType::Char,
                    SFlag::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut header = self.header(&stat, entry_type);
                let (major, minor) = (libc::major(stat.st_rdev), libc::minor(stat.st_rdev));
                header.set_device_major(major)?;
                header.set_device_minor(minor)?;
                self.builder.append_data(&mut header, as_name, io::empty())
            }
            // Sockets have no place in an archive.
            _ => Ok(()),
        }
    }
    // ANCHOR_END: pack_entry

    /// Writes what the directory `dir` holds, its entries named under `as_name` (`None`: at
    /// the top of the archive).
    pub fn contents(&mut self, dir: &OwnedFd, as_name: Option<&Path>) -> io::Result<()> {
        let dev = nix::sys::stat::fstat(dir)?.st_dev;
        for child in children(dir)? {
            let name = match as_name {
                Some(base) => base.join(&child),
                None => PathBuf::from(&child),
            };
            self.child(dir.as_fd(), &child, &name, dev)?;
        }
        Ok(())
    }

    fn child(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        as_name: &Path,
        dev: u64,
    ) -> io::Result<()> {
        let stat = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        if kind(&stat) == SFlag::S_IFDIR && self.one_file_system && stat.st_dev != dev {
            // A mount point: the directory, and nothing of what is mounted there.
            let mut header = self.header(&stat, EntryType::Directory);
            return self
                .builder
                .append_data(&mut header, dir_name(as_name), io::empty());
        }
        self.entry(dir, name, as_name)
    }

    fn directory(&mut self, dir: OwnedFd, stat: &FileStat, as_name: &Path) -> io::Result<()> {
        let mut header = self.header(stat, EntryType::Directory);
        self.builder
            .append_data(&mut header, dir_name(as_name), io::empty())?;
        let fs = nix::sys::statfs::fstatfs(&dir)?;
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        let magic = i64::from(fs.filesystem_type().0 as i64);
        if KERNEL_FILE_SYSTEMS.contains(&magic) {
            return Ok(());
        }
        self.contents(&dir, Some(as_name))
    }

    fn file(&mut self, file: OwnedFd, stat: &FileStat, as_name: &Path) -> io::Result<()> {
        if stat.st_nlink > 1 {
            let key = (stat.st_dev, stat.st_ino);
            if let Some(first) = self.hardlinks.get(&key).cloned() {
                let mut header = self.header(stat, EntryType::Link);
                return self.builder.append_link(&mut header, as_name, first);
            }
            self.hardlinks.insert(key, as_name.to_path_buf());
        }
        let mut header = self.header(stat, EntryType::Regular);
        header.set_size(u64::try_from(stat.st_size).unwrap_or(0));
        let file = std::fs::File::from(file);
        // Exactly the size in the header, even if the file grows meanwhile.
        let size = header.size()?;
        self.builder
            .append_data(&mut header, as_name, file.take(size))
    }

    /// A GNU header with the entry's mode, owner (as the container names it) and mtime.
    fn header(&self, stat: &FileStat, entry_type: EntryType) -> Header {
        let mut header = Header::new_gnu();
        header.set_entry_type(entry_type);
        header.set_size(0);
        header.set_mode(stat.st_mode & 0o7777);
        header.set_uid(u64::from(self.ids.to_container(stat.st_uid)));
        header.set_gid(u64::from(self.ids.to_container(stat.st_gid)));
        header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
        header
    }
}

/// `dir/` as Docker names a directory in its archives.
fn dir_name(name: &Path) -> PathBuf {
    let mut text = name.as_os_str().to_os_string();
    if !text.as_bytes().ends_with(b"/") {
        text.push("/");
    }
    PathBuf::from(text)
}

/// The file type bits of a stat.
pub fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

/// The names in the directory `dir`, sorted by their bytes (an archive made twice is the same).
pub fn children(dir: &OwnedFd) -> io::Result<Vec<OsString>> {
    let reading = open_at(
        dir.as_fd(),
        OsStr::new("."),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
    )?;
    let mut listing = nix::dir::Dir::from_fd(reading)?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let name = OsStr::from_bytes(entry?.file_name().to_bytes()).to_os_string();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

// ANCHOR: owner
/// Who owns what `cp` writes into a container.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    /// The container's root (Docker's default).
    Root(Ids),
    /// The owners in the archive, as the container names them (`cp -a`).
    Archive(Ids),
}

impl Owner {
    fn of(self, header: &Header) -> (u32, u32) {
        let id = |value: io::Result<u64>| u32::try_from(value.unwrap_or(0)).unwrap_or(0);
        match self {
            Owner::Root(ids) => (ids.to_host(0), ids.to_host(0)),
            Owner::Archive(ids) => (ids.to_host(id(header.uid())), ids.to_host(id(header.gid()))),
        }
    }
}
// ANCHOR_END: owner

/// Writes a tar stream into a directory of a container.
pub struct Extractor<'a> {
    root: &'a Root,
    /// The directory entries land in, a path inside the container.
    dest: String,
    owner: Owner,
    /// Directories whose times are set once everything in them is written.
    dirs: Vec<(String, i64)>,
}

impl<'a> Extractor<'a> {
    /// Entries will land in `dest` (a path in the container, which must be a directory).
    pub fn new(root: &'a Root, dest: &str, owner: Owner) -> Self {
        Extractor {
            root,
            dest: crate::beneath::clean(dest),
            owner,
            dirs: Vec::new(),
        }
    }

    // ANCHOR: extract
    /// Writes every entry of `archive` under the destination. Each entry's parent is found
    /// inside the container's root (openat2), and the entry is made in it by name, never
    /// through a symlink: a link in the container can point anywhere in the container, and
    /// nowhere else.
    pub fn extract(&mut self, archive: impl Read) -> anyhow::Result<()> {
        let mut archive = tar::Archive::new(archive);
        for entry in archive.entries().context("read the archive")? {
            let mut entry = entry.context("read the archive")?;
            let raw = entry.path_bytes().into_owned();
            let Some(relative) = inside(&raw)? else {
                continue; // `.` itself: the destination, which exists
            };
            let path = format!("{}/{relative}", self.dest);
            self.write(&path, &mut entry)
                .with_context(|| format!("write /{path} in the container"))?;
        }
        // Deepest first, so setting a directory's time is not undone by its children.
        while let Some((path, mtime)) = self.dirs.pop() {
            let (parent, name) = self.root.parent(&path)?;
            if let Some(name) = name {
                set_mtime(parent.as_fd(), OsStr::new(&name), mtime)?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: extract

    fn write<R: Read>(&mut self, path: &str, entry: &mut tar::Entry<'_, R>) -> anyhow::Result<()> {
        let (parent, name) = self.root.parent(path)?;
        let name = OsString::from(name.context("the archive names the container's root")?);
        let parent = parent.as_fd();
        let header = entry.header().clone();
        let mode = Mode::from_bits_truncate(header.mode()? & 0o7777);
        let (uid, gid) = self.owner.of(&header);
        let mtime = i64::try_from(header.mtime().unwrap_or(0)).unwrap_or(0);
        let entry_type = header.entry_type();
        let existing =
            nix::sys::stat::fstatat(parent, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        let existing_dir = existing.as_ref().map(|s| kind(s) == SFlag::S_IFDIR);
        if entry_type.is_dir() {
            match existing_dir {
                Some(true) => {}
                Some(false) => {
                    bail!("cannot overwrite non-directory \"/{path}\" with directory \"/{path}\"")
                }
                None => nix::sys::stat::mkdirat(
                    parent,
                    name.as_os_str(),
                    Mode::from_bits_truncate(0o700),
                )?,
            }
            chown_at(parent, &name, uid, gid)?;
            // By descriptor: a name swapped for a link meanwhile is not followed.
            chmod_dir(parent, &name, mode)?;
            self.dirs.push((path.to_string(), mtime));
            return Ok(());
        }
        match existing_dir {
            Some(true) => {
                bail!("cannot overwrite directory \"/{path}\" with non-directory \"/{path}\"")
            }
            Some(false) => nix::unistd::unlinkat(
                parent,
                name.as_os_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )?,
            None => {}
        }
        match entry_type {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = nix::fcntl::openat(
                    parent,
                    name.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )?;
                let mut file = std::fs::File::from(fd);
                io::copy(entry, &mut file)?;
                std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
                // After chown, which clears set-id bits.
                file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode.bits()))?;
                set_mtime(parent, &name, mtime)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .context("a symlink without a target")?;
                nix::unistd::symlinkat(OsStr::from_bytes(&target), parent, name.as_os_str())?;
                chown_at(parent, &name, uid, gid)?;
                set_mtime(parent, &name, mtime)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .context("a hard link without a target")?;
                let Some(target) = inside(&target)? else {
                    bail!("a hard link to the destination directory");
                };
                let (from, from_name) = self.root.parent(&format!("{}/{target}", self.dest))?;
                let from_name = from_name.context("a hard link to the container's root")?;
                nix::unistd::linkat(
                    from.as_fd(),
                    from_name.as_str(),
                    parent,
                    name.as_os_str(),
                    AtFlags::empty(),
                )?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let flag = match entry_type {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = header.device_major()?.unwrap_or(0);
                let minor = header.device_minor()?.unwrap_or(0);
                let dev = libc::makedev(major, minor);
                nix::sys::stat::mknodat(parent, name.as_os_str(), flag, mode, dev)?;
                chown_at(parent, &name, uid, gid)?;
            }
            // Extension headers are read by the tar crate; anything else is skipped.
            _ => {}
        }
        Ok(())
    }
}

/// A tar entry's name as a path below the destination: leading `/` and `./` dropped; `None`
/// for the destination itself; an error for a name that climbs out with `..`.
pub fn inside(raw: &[u8]) -> anyhow::Result<Option<String>> {
    let text = String::from_utf8_lossy(raw);
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                bail!("invalid archive entry {text:?}: it climbs out of the destination with ..")
            }
            name => parts.push(name),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn chown_at(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> nix::Result<()> {
    nix::unistd::fchownat(
        dir,
        name,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// chmod of a directory by descriptor, opened without following a link.
fn chmod_dir(dir: BorrowedFd<'_>, name: &OsStr, mode: Mode) -> io::Result<()> {
    let fd = open_at(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    Ok(nix::sys::stat::fchmod(&fd, mode)?)
}

fn set_mtime(dir: BorrowedFd<'_>, name: &OsStr, mtime: i64) -> nix::Result<()> {
    let time = nix::sys::time::TimeSpec::new(mtime, 0);
    nix::sys::stat::utimensat(
        dir,
        name,
        &time,
        &time,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
}
