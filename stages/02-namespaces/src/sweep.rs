//! Sweeping a container away, from its record alone.
//!
//! While its command runs, a container's host state (its cgroup, its overlay mount, its veth
//! and firewall rules, its hold on volumes) is known to the features in the memory of the
//! process that launched it, and their `cleanup` removes it when the command ends. But that
//! process may be killed, and from stage 07 on the container outlives it anyway: `rm` runs in
//! another process, days later. So every stage can also remove what it made for a container
//! knowing only what the record says: its id, its cgroup path, the store. Each stage's `sweep`
//! undoes its own part, then calls the sweep of the stage below, and is idempotent: what is
//! already gone is fine. A feature's `cleanup` and its stage's sweep share one code path.

use std::path::{Path, PathBuf};

use crate::record::Record;

// ANCHOR: sweep
/// What to sweep away, and of which container.
#[derive(Debug, Clone, Copy)]
pub struct Sweep<'a> {
    /// The store's root.
    pub root: &'a Path,
    /// The container's full id.
    pub id: &'a str,
    /// Its cgroup below each hierarchy's root (`skiff/<id>`), if it has one.
    pub cgroup: Option<&'a str>,
    /// Remove the container itself (its state directory, its writable layer, its hold on
    /// volumes), not only what a run of it holds (mounts, cgroup, network endpoint).
    pub remove: bool,
    /// With `remove`: its anonymous volumes go too (`rm -v`, `--rm`).
    pub anonymous_volumes: bool,
    /// With `remove`: the state directory (the record, the writable layer, the logs) is moved
    /// into the store's trash in one rename instead of being deleted file by file, and the
    /// caller empties the trash later with [`empty_trash`] (see there for why).
    pub to_trash: bool,
}

impl<'a> Sweep<'a> {
    /// A sweep of `record`'s container in the store at `root`: with `remove`, all of it.
    pub fn of<S>(root: &'a Path, record: &'a Record<S>, remove: bool) -> Self {
        Sweep {
            root,
            id: &record.id,
            cgroup: record.cgroup.as_deref(),
            remove,
            anonymous_volumes: false,
            to_trash: false,
        }
    }
}

/// Stage 02's part: with `remove`, the state directory. Returns what could not be undone.
pub fn sweep(sweep: &Sweep<'_>) -> Vec<String> {
    chroot::timeline::mark("sweep: state directory");
    if !sweep.remove {
        return Vec::new();
    }
    let dir = crate::record::container_dir(sweep.root, sweep.id);
    if sweep.to_trash && move_to_trash(sweep.root, sweep.id).is_ok() {
        return Vec::new();
    }
    match crate::container::sweep_state_dir(&dir) {
        Ok(()) => Vec::new(),
        Err(e) => vec![format!("remove {}: {e}", dir.display())],
    }
}
// ANCHOR_END: sweep

// ANCHOR: trash
/// Where removed containers' state directories wait to be deleted: `<root>/trash/<id>`.
fn trash_dir(root: &Path) -> PathBuf {
    root.join("trash")
}

/// Moves container `id`'s state directory into the trash: one rename(2), so the record (which
/// lives in that directory) is gone at once, as a deletion would leave it, and so is the name.
///
/// Why not delete it there and then: deleting a directory frees its block, and on a filesystem
/// mounted with `discard` (many virtual machines' disks) every freed block is discarded before
/// the call returns: about 1.5 ms per directory, and a container's overlay leaves seven of
/// them (upper, work, work/work, work/work/incompat/volatile, the mount point...). That was most
/// of what `run --rm` cost beyond the floor. A rename frees nothing, so `run --rm`'s monitor
/// moves the directory aside, tells its client the exit code, and only then empties the trash.
pub fn move_to_trash(root: &Path, id: &str) -> std::io::Result<()> {
    let trash = crate::private::store_dir(root, "trash")?;
    std::fs::rename(crate::record::container_dir(root, id), trash.join(id))
}

/// Deletes what the trash holds: container `id`'s directory, or with `None` everything (what
/// a monitor killed between the rename and the deletion left; `system prune` calls this).
/// Whatever is gone already is fine.
pub fn empty_trash(root: &Path, id: Option<&str>) {
    let trash = trash_dir(root);
    let entries: Vec<PathBuf> = match id {
        Some(id) => vec![trash.join(id)],
        None => match std::fs::read_dir(&trash) {
            Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
            Err(_) => return,
        },
    };
    for entry in entries {
        let _ = crate::container::sweep_state_dir(&entry);
    }
}
// ANCHOR_END: trash

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_to_the_trash_moves_the_directory_and_emptying_deletes_it() {
        let root = tempfile::tempdir().unwrap();
        let id = "e".repeat(64);
        let dir = crate::record::container_dir(root.path(), &id);
        std::fs::create_dir_all(dir.join("upper/x")).unwrap();
        let s = Sweep {
            root: root.path(),
            id: &id,
            cgroup: None,
            remove: true,
            anonymous_volumes: false,
            to_trash: true,
        };
        assert!(sweep(&s).is_empty());
        assert!(!dir.exists());
        assert!(root.path().join("trash").join(&id).join("upper/x").is_dir());
        empty_trash(root.path(), Some(&id));
        assert!(!root.path().join("trash").join(&id).exists());
        // Twice, and with nothing in the trash at all, is fine.
        assert!(sweep(&s).is_empty());
        empty_trash(root.path(), None);
    }

    #[test]
    fn only_a_removing_sweep_removes_the_state_directory_and_twice_is_fine() {
        let root = tempfile::tempdir().unwrap();
        let id = "f".repeat(64);
        let dir = crate::record::container_dir(root.path(), &id);
        std::fs::create_dir_all(dir.join("upper/x")).unwrap();
        let mut s = Sweep {
            root: root.path(),
            id: &id,
            cgroup: None,
            remove: false,
            anonymous_volumes: false,
            to_trash: false,
        };
        assert!(sweep(&s).is_empty());
        assert!(dir.exists());
        s.remove = true;
        assert!(sweep(&s).is_empty());
        assert!(!dir.exists());
        assert!(sweep(&s).is_empty());
    }
}
