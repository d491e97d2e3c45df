//! The container's own `/sys/fs/cgroup`: read-only, with its own cgroup as the root.
//!
//! Tools inside a container (a JVM sizing its heap, `systemd`, `htop`) read their limits from
//! `/sys/fs/cgroup`. Inside a cgroup namespace (cgroup_namespaces(7)), which stage 02 creates
//! right after the child joined its cgroup, a fresh mount of the cgroup filesystem shows the
//! container's cgroup as its root and nothing above it:
//!
//! - v2: one read-only `cgroup2` mount;
//! - v1 and hybrid: a small tmpfs holding a read-only mount of each v1 hierarchy (mount(2) with
//!   the same controller options finds the host's hierarchy), then the tmpfs made read-only.
//!
//! Without a cgroup namespace, a fresh mount would show the host's whole tree, so the
//! container's own cgroup directories are bind-mounted instead. Without a mount namespace,
//! nothing is mounted at all: the mounts would land on the host.

use std::ffi::CString;

use chroot::plan::cstr;
use chroot::{LaunchError, Plan, Step};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;

use crate::cgroup::CgroupPath;
use crate::detect::{Host, Setup};

/// Where cgroups are, inside the container.
const TARGET: &str = "/sys/fs/cgroup";

/// Whether the child gets a mount namespace of its own (stage 02's `CLONE_NEWNS`).
pub fn has_mount_namespace(plan: &Plan) -> bool {
    plans_namespace(plan, libc::CLONE_NEWNS)
}

/// Whether the child enters a cgroup namespace (stage 02 unshares `CLONE_NEWCGROUP` first
/// thing in `before_root`, once it is in its cgroup).
pub fn has_cgroup_namespace(plan: &Plan) -> bool {
    plans_namespace(plan, libc::CLONE_NEWCGROUP)
}

fn plans_namespace(plan: &Plan, flag: libc::c_int) -> bool {
    let in_clone = plan.clone_flags & u64::from(flag.unsigned_abs()) != 0;
    // Unshared rather than cloned: by stage 02 (a cgroup namespace, in `before_root`) or by a
    // child that joins a user namespace first (skiff-runtime, in `early`).
    in_clone
        || plan
            .early
            .iter()
            .chain(&plan.before_root)
            .any(|step| matches!(step, Step::Unshare(flags) if flags & flag != 0))
}

// ANCHOR: view
/// The steps that mount the container's `/sys/fs/cgroup`, for `plan.before_root`. Paths are
/// inside the new root, which stage 02 has mounted `/sys` in (read-only).
pub fn steps(host: &Host, path: &CgroupPath, plan: &Plan) -> Result<Vec<Step>, LaunchError> {
    let target = plan.in_root(TARGET)?;
    let fresh = has_cgroup_namespace(plan);
    let read_only = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let mut steps = vec![Step::Mkdir(target.clone(), Mode::from_bits_truncate(0o755))];
    match (host.setup, &host.unified) {
        (Setup::Unified, Some(unified)) => {
            if fresh {
                steps.push(mount(
                    Some("cgroup2"),
                    &target,
                    Some("cgroup2"),
                    read_only,
                    None,
                )?);
            } else {
                steps.extend(bind_read_only(
                    &cstr(unified.join(path.relative()))?,
                    &target,
                ));
            }
        }
        _ => {
            let tmpfs = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            steps.push(mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                tmpfs,
                Some("mode=755"),
            )?);
            for hierarchy in &host.v1 {
                let name = hierarchy.dir_name();
                let dir = plan.in_root(&format!("{TARGET}/{name}"))?;
                steps.push(Step::Mkdir(dir.clone(), Mode::from_bits_truncate(0o755)));
                if fresh {
                    let options = hierarchy.mount_options();
                    steps.push(mount(
                        Some("cgroup"),
                        &dir,
                        Some("cgroup"),
                        read_only,
                        Some(&options),
                    )?);
                } else {
                    let own = cstr(hierarchy.mount_point.join(path.relative()))?;
                    steps.extend(bind_read_only(&own, &dir));
                }
                // `cpu` and `cpuacct` point at `cpu,cpuacct` when they share a hierarchy.
                for controller in &hierarchy.controllers {
                    if *controller != name && !controller.starts_with("name=") {
                        steps.push(Step::Symlink {
                            target: cstr(&name)?,
                            link: plan.in_root(&format!("{TARGET}/{controller}"))?,
                        });
                    }
                }
            }
            steps.push(Step::Mount {
                source: None,
                target,
                fstype: None,
                flags: MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs,
                data: None,
            });
        }
    }
    Ok(steps)
}
// ANCHOR_END: view

fn mount(
    source: Option<&str>,
    target: &CString,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<Step, LaunchError> {
    Ok(Step::Mount {
        source: source.map(cstr).transpose()?,
        target: target.clone(),
        fstype: fstype.map(cstr).transpose()?,
        flags,
        data: data.map(cstr).transpose()?,
    })
}

/// A bind mount of `source` on `target`, then made read-only (a bind mount takes the flags of
/// its source until remounted).
fn bind_read_only(source: &CString, target: &CString) -> [Step; 2] {
    [
        Step::Mount {
            source: Some(source.clone()),
            target: target.clone(),
            fstype: None,
            flags: MsFlags::MS_BIND,
            data: None,
        },
        Step::Mount {
            source: None,
            target: target.clone(),
            fstype: None,
            flags: MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV,
            data: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::V1Hierarchy;

    fn plan(cgroupns: bool) -> Plan {
        let mut plan = Plan {
            rootfs: "/srv/rootfs".into(),
            clone_flags: u64::from(libc::CLONE_NEWNS.unsigned_abs()),
            ..Plan::default()
        };
        if cgroupns {
            plan.before_root.push(Step::Unshare(libc::CLONE_NEWCGROUP));
        }
        plan
    }

    fn shown(steps: &[Step]) -> Vec<String> {
        steps.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn namespaces_are_found_in_the_plan() {
        assert!(!has_mount_namespace(&Plan::default()));
        assert!(!has_cgroup_namespace(&Plan::default()));
        assert!(has_mount_namespace(&plan(false)));
        assert!(!has_cgroup_namespace(&plan(false)));
        assert!(has_cgroup_namespace(&plan(true)));
    }

    #[test]
    fn a_v2_container_gets_one_read_only_cgroup2_mount() {
        let host = Host::v2("/sys/fs/cgroup");
        let path = CgroupPath::skiff("ab").unwrap();
        let steps = steps(&host, &path, &plan(true)).unwrap();
        assert_eq!(
            shown(&steps),
            [
                "create directory /srv/rootfs/sys/fs/cgroup",
                "mount cgroup2 on /srv/rootfs/sys/fs/cgroup"
            ]
        );
        assert!(
            matches!(&steps[1], Step::Mount { flags, .. } if flags.contains(MsFlags::MS_RDONLY))
        );

        let bound = super::steps(&host, &path, &plan(false)).unwrap();
        assert_eq!(
            shown(&bound)[1],
            "bind-mount /sys/fs/cgroup/skiff/ab on /srv/rootfs/sys/fs/cgroup"
        );
        assert!(
            matches!(&bound[2], Step::Mount { flags, .. } if flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT))
        );
    }

    #[test]
    fn a_v1_container_gets_a_tmpfs_of_read_only_hierarchies() {
        let host = Host::v1(
            "/sys/fs/cgroup",
            vec![
                V1Hierarchy::new("/sys/fs/cgroup/memory", &["memory"]),
                V1Hierarchy::new("/sys/fs/cgroup/cpu,cpuacct", &["cpu", "cpuacct"]),
                V1Hierarchy::new("/sys/fs/cgroup/systemd", &["name=systemd"]),
            ],
        );
        let path = CgroupPath::skiff("ab").unwrap();
        let steps = steps(&host, &path, &plan(true)).unwrap();
        assert_eq!(
            shown(&steps),
            [
                "create directory /srv/rootfs/sys/fs/cgroup",
                "mount tmpfs on /srv/rootfs/sys/fs/cgroup",
                "create directory /srv/rootfs/sys/fs/cgroup/memory",
                "mount cgroup on /srv/rootfs/sys/fs/cgroup/memory",
                "create directory /srv/rootfs/sys/fs/cgroup/cpu,cpuacct",
                "mount cgroup on /srv/rootfs/sys/fs/cgroup/cpu,cpuacct",
                "create symlink /srv/rootfs/sys/fs/cgroup/cpu -> cpu,cpuacct",
                "create symlink /srv/rootfs/sys/fs/cgroup/cpuacct -> cpu,cpuacct",
                "create directory /srv/rootfs/sys/fs/cgroup/systemd",
                "mount cgroup on /srv/rootfs/sys/fs/cgroup/systemd",
                "change mount /srv/rootfs/sys/fs/cgroup",
            ]
        );
        let data: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Mount {
                    data: Some(d),
                    flags,
                    ..
                } if flags.contains(MsFlags::MS_RDONLY) => Some(d.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(data, ["memory", "cpu,cpuacct", "none,name=systemd"]);
        assert!(
            matches!(steps.last(), Some(Step::Mount { flags, .. }) if flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY))
        );

        let bound = super::steps(&host, &path, &plan(false)).unwrap();
        assert!(
            shown(&bound).contains(
                &"bind-mount /sys/fs/cgroup/memory/skiff/ab on /srv/rootfs/sys/fs/cgroup/memory"
                    .to_string()
            )
        );
    }
}
