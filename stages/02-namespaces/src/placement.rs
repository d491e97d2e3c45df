//! Where on the disk a new container's directory goes.
//!
//! ext4 divides its disk into block groups (128 MiB each), grouped by sixteen into flex groups,
//! each with its own table of inodes. A new directory goes into its parent's flex group when
//! there is room (the "Orlov" allocator), and a new file into its directory's. So everything a
//! container's directory holds (its record, its `/etc` files, its overlay's upper and work
//! directories, and the entries overlayfs itself makes in the work directory at every mount)
//! is allocated in one flex group: the one `containers/` is in.
//!
//! On an ext4 without a journal, which is common in virtual machines, that matters: there an
//! inode freed less than a minute ago (six, while its block of the inode table is not yet
//! written) is not given out again, and the allocator reads each such inode to find that out
//! before it takes a free one. A `run --rm` makes and frees about twenty inodes, so in a loop of
//! runs every new inode in that flex group costs more than the last: on the machine the
//! benchmarks ran on, a `mkdir` went from 10 to 90 microseconds, and the disk took up to a
//! millisecond of each run.
//!
//! ext4 has a flag for the top of a tree of directories (`chattr +T`, `FS_TOPDIR_FL`): a new
//! directory in one is spread to a flex group of its own. The store makes a few such
//! directories once, under `cache/placement` (flagged), each landing in another flex group,
//! and makes a container's directory in one of them (chosen by its id) before it renames it
//! into `containers/`. A rename keeps the inode where it is, and everything made inside later
//! follows it. The churn is shared among the flex groups, and each stays warm in the cache
//! (spreading every container to a flex group of its own reads cold bitmaps from the disk and
//! was no faster). Elsewhere (a filesystem without the flag, a journalled ext4) nothing is
//! lost: the directory is made where it would have been, and renamed.
//!
//! See ext4(5), chattr(1) (`T`), ioctl_iflags(2), rename(2) (`RENAME_NOREPLACE`), and the
//! kernel's `fs/ext4/ialloc.c` (`find_group_orlov`, `recently_deleted`).

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// How many directories the churn is shared among.
const SPREAD: u64 = 8;

/// `FS_TOPDIR_FL` of ioctl_iflags(2): spread new subdirectories.
const TOPDIR: libc::c_int = 0x0002_0000;

// ANCHOR: make_dir
/// Makes the directory `target` (in `<root>/containers/`) for the container `id` of the store
/// at `root`: in one of the store's placement directories first, then renamed into place. The
/// rename fails when `target` exists, as `mkdir` would. Falls back to a plain `mkdir` when
/// the placement directory cannot be made or the rename crosses filesystems.
pub fn make_dir(root: &Path, target: &Path, id: &str) -> io::Result<()> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    let shard = shard(root, id);
    let temp = shard.join(id);
    // The placement directories exist after the store's first container: made only then.
    let made = match fs::create_dir(&temp) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            make_shard(root, &shard).and_then(|()| fs::create_dir(&temp))
        }
        made => made,
    };
    let placed = made.and_then(|()| {
        rename_noreplace(&temp, target).inspect_err(|_| {
            let _ = fs::remove_dir(&temp);
        })
    });
    match placed {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => fs::create_dir(target),
    }
}
// ANCHOR_END: make_dir

/// The placement directory for `id`.
fn shard(root: &Path, id: &str) -> PathBuf {
    // Ids are random hex: their last digits choose evenly.
    let tail = id.get(id.len().saturating_sub(4)..).unwrap_or_default();
    let index = u64::from_str_radix(tail, 16).unwrap_or(0) % SPREAD;
    placement(root).join(index.to_string())
}

fn placement(root: &Path) -> PathBuf {
    root.join(crate::seccomp::CACHE).join("placement")
}

/// Makes placement directory `shard`, and first its flagged parent when that is missing.
fn make_shard(root: &Path, shard: &Path) -> io::Result<()> {
    let placement = placement(root);
    if !placement.is_dir() {
        crate::private::store_dir(root, crate::seccomp::CACHE)?;
        fs::create_dir_all(&placement)?;
        // Not ext4 (or not allowed): no flag, and no harm.
        let _ = set_topdir(&placement);
    }
    match fs::create_dir(shard) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// rename(2) that fails with `EEXIST` rather than replace an existing (empty) directory.
/// Through syscall(2): the C libraries do not all wrap renameat2.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let from = std::ffi::CString::new(from.as_os_str().as_encoded_bytes())?;
    let to = std::ffi::CString::new(to.as_os_str().as_encoded_bytes())?;
    // SAFETY: renameat2 with two NUL-terminated paths that live through the call.
    let done = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if done < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `FS_TOPDIR_FL` on directory `dir`, as `chattr +T` does.
fn set_topdir(dir: &Path) -> io::Result<()> {
    let file = fs::File::open(dir)?;
    let mut flags: libc::c_int = 0;
    // The request numbers are a c_ulong with glibc and a c_int with musl (`libc::Ioctl`).
    #[allow(clippy::cast_possible_truncation)]
    let (get, set) = (
        libc::FS_IOC_GETFLAGS as libc::Ioctl,
        libc::FS_IOC_SETFLAGS as libc::Ioctl,
    );
    // SAFETY: FS_IOC_GETFLAGS and FS_IOC_SETFLAGS read and write one int we own, on a
    // descriptor we hold.
    unsafe {
        if libc::ioctl(file.as_raw_fd(), get, &mut flags) < 0 {
            return Err(io::Error::last_os_error());
        }
        flags |= TOPDIR;
        if libc::ioctl(file.as_raw_fd(), set, &flags) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_made_in_place_and_an_existing_one_refused() {
        let root = tempfile::tempdir().unwrap();
        let id = "0123456789abcdef";
        let target = root.path().join("containers").join(id);
        make_dir(root.path(), &target, id).unwrap();
        assert!(target.is_dir());
        let shard = root
            .path()
            .join("cache/placement")
            .join((0xcdef % SPREAD).to_string());
        assert!(shard.is_dir(), "made through its placement directory");
        assert_eq!(
            fs::read_dir(&shard).unwrap().count(),
            0,
            "and nothing left there"
        );
        let again = make_dir(root.path(), &target, id).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_dir(&shard).unwrap().count(), 0);
    }
}
