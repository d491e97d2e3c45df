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

use std::path::Path;

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
    match crate::container::sweep_state_dir(&dir) {
        Ok(()) => Vec::new(),
        Err(e) => vec![format!("remove {}: {e}", dir.display())],
    }
}
// ANCHOR_END: sweep

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        assert!(sweep(&s).is_empty());
        assert!(dir.exists());
        s.remove = true;
        assert!(sweep(&s).is_empty());
        assert!(!dir.exists());
        assert!(sweep(&s).is_empty());
    }
}
