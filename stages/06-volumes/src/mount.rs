//! Mounting inside the container's root, safely: the step the child runs for each volume.
//!
//! The obvious way, `mount(source, "<rootfs>/srv")`, is a hole. The kernel resolves that path
//! as the host sees it, and the image decides what `/srv` is: a symlink to `/etc` would put the
//! volume on the host's `/etc` (in the container's mount namespace, but still), and creating a
//! missing `/srv/www` through that symlink would make directories on the host. runc had exactly
//! this bug (CVE-2021-30465: a symlink swapped in between check and mount).
//!
//! So the child asks the kernel to resolve the path *as if the rootfs were `/`*:
//! openat2(2) with `RESOLVE_IN_ROOT` follows symlinks, but an absolute one starts again at the
//! rootfs and `..` stops there. It walks the target one component at a time, creating what is
//! missing with mkdirat(2) in the directory it just opened, and mounts onto the file descriptor
//! it ends with, through its `/proc/self/fd/N` name. Between the open and the mount, nothing can
//! move the target elsewhere: the descriptor pins it.
//!
//! The step is stage 02's [`MountInRoot`] (`namespaces::in_root`), the same one that mounts
//! `/proc`, `/dev` and the `/etc` files: an image chooses those paths too. It runs in the child,
//! after the mounts of the stage before (and after the volumes above this one: `/srv` before
//! `/srv/www`), so every path is resolved in the view the container will have. See openat2(2),
//! path_resolution(7), mount(2), proc(5) (`/proc/self/fd`).

pub use namespaces::in_root::MountInRoot;

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use namespaces::in_root::Root;

    fn step(root: &Root, target: &str) -> super::MountInRoot {
        crate::feature::mount_step(root, &crate::spec::parse_tmpfs(target).unwrap(), None).unwrap()
    }

    #[test]
    fn walking_stays_inside_the_root_and_creates_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // The same path inside the root: where an absolute symlink must lead.
        let inside = root.join(outside.strip_prefix("/").unwrap());
        // An image whose /srv points at a host path, and whose /up climbs out.
        std::os::unix::fs::symlink(&outside, root.join("srv")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        let opened = Root::open(&root).unwrap();
        let root_fd = nix::fcntl::open(
            &root,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        for target in ["/srv/www", "/up/etc/x"] {
            let step = step(&opened, target);
            step.target.open(root_fd.as_fd(), step.create).unwrap();
        }
        // The absolute symlink was followed inside the root, the climb stopped at it.
        assert!(inside.join("www").is_dir());
        assert!(root.join("etc/x").is_dir());
        assert!(!outside.join("www").exists());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
