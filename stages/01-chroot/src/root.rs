//! Changing root: the one feature of stage 01.
//!
//! chroot(2) changes how one process resolves `/`: every absolute path it opens from then on
//! starts in the new directory. It changes nothing else: the process sees the host's other
//! processes, its network, its mounts, and a process with `CAP_SYS_CHROOT` can climb out (try
//! `probe escape`). Stage 02 replaces it with pivot_root(2) in a mount namespace.

use std::path::{Path, PathBuf};

use crate::error::{FeatureError, LaunchError};
use crate::launch::{Feature, Slot};
use crate::plan::{Plan, Step, cstr};

// ANCHOR: change_root
/// Runs the command with `rootfs` as its root directory.
pub struct ChangeRoot {
    rootfs: PathBuf,
}

impl ChangeRoot {
    /// A root change into `rootfs`.
    pub fn new(rootfs: impl Into<PathBuf>) -> Self {
        ChangeRoot {
            rootfs: rootfs.into(),
        }
    }
}

impl Feature for ChangeRoot {
    fn name(&self) -> &'static str {
        "change root"
    }

    fn slot(&self) -> Slot {
        Slot::Root
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        check_rootfs(&self.rootfs).map_err(|e| FeatureError::msg(e.to_string()))?;
        let rootfs = cstr(&self.rootfs).map_err(|e| FeatureError::msg(e.to_string()))?;
        plan.rootfs = self.rootfs.clone();
        plan.change_root.push(Step::Chroot(rootfs));
        Ok(())
    }
}
// ANCHOR_END: change_root

/// Checks that `rootfs` is a directory, with an error that names it.
pub fn check_rootfs(rootfs: &Path) -> Result<(), LaunchError> {
    let reason = match std::fs::metadata(rootfs) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => "not a directory".to_string(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => "no such directory".to_string(),
        Err(err) => err.to_string(),
    };
    Err(LaunchError::Rootfs {
        path: rootfs.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_rootfs_is_named_in_the_error() {
        let err = check_rootfs(Path::new("/no/such/skiff/rootfs")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/no/such/skiff/rootfs"), "{text}");
        assert!(text.contains("no such directory"), "{text}");
        assert_eq!(err.exit_code(), 125);
    }

    #[test]
    fn a_file_is_not_a_rootfs() {
        let file = std::env::current_exe().unwrap();
        let err = check_rootfs(&file).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn prepare_plans_one_chroot() {
        let dir = std::env::temp_dir();
        let mut plan = Plan::default();
        ChangeRoot::new(&dir).prepare(&mut plan).unwrap();
        assert_eq!(plan.change_root.len(), 1);
        assert!(
            matches!(&plan.change_root[0], Step::Chroot(p) if p.to_bytes() == dir.as_os_str().as_encoded_bytes())
        );
        assert_eq!(plan.clone_flags, 0);
    }
}
