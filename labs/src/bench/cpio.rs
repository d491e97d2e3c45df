//! A cpio archive writer, "newc" format: what the Linux kernel unpacks as an initramfs.
//!
//! Each entry is a 110-byte ASCII header (the magic `070701` and thirteen 8-digit hexadecimal
//! fields), the path and a NUL, padding to a multiple of four, the data, and padding again. The
//! archive ends with an entry named `TRAILER!!!`. See the kernel's
//! `Documentation/driver-api/early-userspace/buffer-format.rst` and cpio(5).

use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// File-type bits of `st_mode` (inode(7)).
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// Writes a newc cpio archive to `out`.
pub struct CpioWriter<W: Write> {
    out: W,
    next_inode: u32,
    offset: u64,
}

/// One header: what the kernel needs to recreate an entry.
struct Header<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    size: u32,
    rdev: (u32, u32),
}

impl<W: Write> CpioWriter<W> {
    /// Starts an archive.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            next_inode: 1,
            offset: 0,
        }
    }

    // ANCHOR: newc_header
    fn header(&mut self, header: &Header) -> io::Result<()> {
        let inode = self.next_inode;
        self.next_inode += 1;
        let name_size = u32::try_from(header.name.len() + 1).map_err(|_| too_big(header.name))?;
        let fields = [
            inode,
            header.mode,
            0, // uid: root
            0, // gid: root
            header.nlink,
            0, // mtime: 1970, so the same input gives the same archive
            header.size,
            0, // devmajor, devminor: the device the file came from (unused)
            0,
            header.rdev.0, // rdevmajor, rdevminor: for device nodes
            header.rdev.1,
            name_size,
            0, // check: only for the "070702" CRC format
        ];
        let mut text = String::from("070701");
        for field in fields {
            text.push_str(&format!("{field:08X}"));
        }
        self.write(text.as_bytes())?;
        self.write(header.name.as_bytes())?;
        self.write(&[0])?;
        self.pad()
    }
    // ANCHOR_END: newc_header

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Zero bytes up to the next multiple of four.
    fn pad(&mut self) -> io::Result<()> {
        let over = usize::try_from(self.offset % 4).unwrap_or(0);
        if over != 0 {
            self.write(&[0; 3][..4 - over])?;
        }
        Ok(())
    }

    /// A directory (`name` without a leading `/`, e.g. `bin`).
    pub fn directory(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.header(&Header {
            name,
            mode: S_IFDIR | (perm & 0o7777),
            nlink: 2,
            size: 0,
            rdev: (0, 0),
        })
    }

    /// A regular file with `data` as its content.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.header(&Header {
            name,
            mode: S_IFREG | (perm & 0o7777),
            nlink: 1,
            size: u32::try_from(data.len()).map_err(|_| too_big(name))?,
            rdev: (0, 0),
        })?;
        self.write(data)?;
        self.pad()
    }

    /// A symbolic link to `target`: the target is the entry's data.
    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.header(&Header {
            name,
            mode: S_IFLNK | 0o777,
            nlink: 1,
            size: u32::try_from(target.len()).map_err(|_| too_big(name))?,
            rdev: (0, 0),
        })?;
        self.write(target.as_bytes())?;
        self.pad()
    }

    /// A character device node (`dev/console` is 5, 1).
    pub fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.header(&Header {
            name,
            mode: S_IFCHR | (perm & 0o7777),
            nlink: 1,
            size: 0,
            rdev: (major, minor),
        })
    }

    /// Adds everything under `root` (not `root` itself), parents before children, in name order;
    /// entries are named relative to `root`. Sockets and fifos are skipped.
    pub fn tree(&mut self, root: &Path) -> io::Result<()> {
        self.tree_under(root, root)
    }

    fn tree_under(&mut self, root: &Path, dir: &Path) -> io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = path
                .strip_prefix(root)
                .map_err(io::Error::other)?
                .to_str()
                .ok_or_else(|| io::Error::other(format!("{} is not UTF-8", path.display())))?
                .to_string();
            let meta = std::fs::symlink_metadata(&path)?;
            let kind = meta.file_type();
            if kind.is_dir() {
                self.directory(&name, meta.mode())?;
                self.tree_under(root, &path)?;
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path)?;
                let target = target.to_str().ok_or_else(|| too_big(&name))?;
                self.symlink(&name, target)?;
            } else if kind.is_file() {
                self.file(&name, meta.mode(), &std::fs::read(&path)?)?;
            } else if kind.is_char_device() {
                let rdev = meta.rdev();
                self.char_device(&name, meta.mode(), major(rdev), minor(rdev))?;
            }
        }
        Ok(())
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.header(&Header {
            name: "TRAILER!!!",
            mode: 0,
            nlink: 1,
            size: 0,
            rdev: (0, 0),
        })?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn too_big(name: &str) -> io::Error {
    io::Error::other(format!("{name}: too large for a newc cpio archive"))
}

/// The major number of a device id (makedev(3)).
fn major(rdev: u64) -> u32 {
    u32::try_from(((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff)).unwrap_or(0)
}

/// The minor number of a device id (makedev(3)).
fn minor(rdev: u64) -> u32 {
    u32::try_from(((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry read back: name, mode, rdev, data.
    type Entry = (String, u32, (u32, u32), Vec<u8>);

    /// A reader for the same format, written from the specification, to check the writer.
    fn parse(mut bytes: &[u8]) -> Vec<Entry> {
        let field = |header: &[u8], i: usize| {
            let text = std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i]).unwrap();
            u32::from_str_radix(text, 16).unwrap()
        };
        let padded = |n: usize| n.div_ceil(4) * 4;
        let mut entries = Vec::new();
        let total = bytes.len();
        loop {
            assert_eq!(
                &bytes[..6],
                b"070701",
                "magic at offset {}",
                total - bytes.len()
            );
            let header = &bytes[..110];
            let (mode, size, name_size) = (field(header, 1), field(header, 6), field(header, 11));
            let rdev = (field(header, 9), field(header, 10));
            let name_end = 110 + name_size as usize;
            let name = std::str::from_utf8(&bytes[110..name_end - 1])
                .unwrap()
                .to_string();
            assert_eq!(bytes[name_end - 1], 0, "names end with NUL");
            let data_start = padded(name_end);
            let data = bytes[data_start..data_start + size as usize].to_vec();
            bytes = &bytes[padded(data_start + size as usize)..];
            if name == "TRAILER!!!" {
                break;
            }
            entries.push((name, mode, rdev, data));
        }
        assert!(bytes.is_empty(), "nothing after the trailer");
        entries
    }

    fn sample() -> Vec<u8> {
        let mut cpio = CpioWriter::new(Vec::new());
        cpio.directory("bin", 0o755).unwrap();
        cpio.file("bin/hello", 0o755, b"#!/bin/sh\necho hi\n")
            .unwrap();
        cpio.symlink("bin/sh", "busybox").unwrap();
        cpio.directory("dev", 0o755).unwrap();
        cpio.char_device("dev/console", 0o600, 5, 1).unwrap();
        cpio.file("empty", 0o644, b"").unwrap();
        cpio.finish().unwrap()
    }

    #[test]
    fn entries_read_back_as_written() {
        let bytes = sample();
        assert_eq!(bytes.len() % 4, 0);
        let entries = parse(&bytes);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["bin", "bin/hello", "bin/sh", "dev", "dev/console", "empty"]
        );
        assert_eq!(entries[0].1, 0o040_755);
        assert_eq!(entries[1].1, 0o100_755);
        assert_eq!(entries[1].3, b"#!/bin/sh\necho hi\n");
        assert_eq!(entries[2].1, 0o120_777);
        assert_eq!(entries[2].3, b"busybox");
        assert_eq!((entries[4].1, entries[4].2), (0o020_600, (5, 1)));
        assert!(entries[5].3.is_empty());
    }

    #[test]
    fn the_header_is_ascii_hex() {
        let bytes = sample();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert!(header.starts_with("070701"));
        assert!(header[6..].chars().all(|c| c.is_ascii_hexdigit()));
        // The first entry, "bin": inode 1, a directory 0755, name "bin\0" of 4 bytes.
        assert_eq!(&header[6..14], "00000001");
        assert_eq!(&header[14..22], "000041ED");
        assert_eq!(&header[94..102], "00000004");
    }

    #[test]
    fn a_tree_is_archived_parents_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/file"), "data").unwrap();
        std::fs::write(dir.path().join("a"), "first").unwrap();
        std::os::unix::fs::symlink("b/c/file", dir.path().join("link")).unwrap();
        let mut cpio = CpioWriter::new(Vec::new());
        cpio.tree(dir.path()).unwrap();
        let entries = parse(&cpio.finish().unwrap());
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a", "b", "b/c", "b/c/file", "link"]);
        assert_eq!(entries[3].3, b"data");
        assert_eq!(entries[4].3, b"b/c/file");
    }

    #[test]
    fn busybox_cpio_lists_what_was_written() {
        // An independent reader, where the host has one (Debian's busybox-static, which the
        // fixtures need anyway).
        let busybox = Path::new(crate::fixtures::BUSYBOX);
        if !busybox.exists() {
            eprintln!("skipped: no {} to cross-check with", busybox.display());
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("test.cpio");
        std::fs::write(&archive, sample()).unwrap();
        let output = std::process::Command::new(busybox)
            .args(["cpio", "-t", "-F"])
            .arg(&archive)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let listed = String::from_utf8(output.stdout).unwrap();
        assert_eq!(
            listed.lines().collect::<Vec<_>>(),
            ["bin", "bin/hello", "bin/sh", "dev", "dev/console", "empty"]
        );
    }

    #[test]
    fn device_numbers_split_like_glibc() {
        // makedev(5, 1) and makedev(259, 70000), as glibc encodes them.
        let encode = |major: u64, minor: u64| {
            ((major & 0xfffff000) << 32)
                | ((major & 0xfff) << 8)
                | ((minor & 0xffffff00) << 12)
                | (minor & 0xff)
        };
        assert_eq!((major(encode(5, 1)), minor(encode(5, 1))), (5, 1));
        assert_eq!(
            (major(encode(259, 70000)), minor(encode(259, 70000))),
            (259, 70000)
        );
    }
}
