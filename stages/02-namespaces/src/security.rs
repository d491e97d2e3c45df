//! Privileges: why root in a container is not root on the host.
//!
//! Root's power is split into capabilities (capabilities(7)): `CAP_SYS_ADMIN` to mount,
//! `CAP_NET_ADMIN` to reconfigure networks, `CAP_SYS_MODULE` to load kernel modules... A container
//! keeps the short list Docker's default profile keeps, and loses the rest for good: they are
//! dropped from the *bounding set*, so no later exec can bring them back. Then the process takes
//! its user and groups, and last its capability sets.
//!
//! Two more walls go up here. A seccomp filter (see [`crate::seccomp`]) refuses the system
//! calls Docker's profile refuses. And with `--security-opt no-new-privileges`, no_new_privs
//! (prctl(2), `PR_SET_NO_NEW_PRIVS`) stops setuid binaries and file capabilities from raising
//! privileges; it is off by default, as in Docker, so that `su`, `ping` or `sudo` in an image work.
//!
//! The order of the filter and the capabilities matters. The kernel installs a filter only for
//! a process that has `CAP_SYS_ADMIN` or has set no_new_privs (otherwise a filter could trick a
//! setuid program into misbehaving). So without no_new_privs the filter goes in *first*, while
//! the child is still root with every capability, and the capabilities are dropped under it, as
//! runc does; the calls that follow (prctl, setgroups, setresuid, capset, execve) are all ones
//! the profile allows. With no_new_privs the filter goes in *last*, just before exec, so that it
//! has to allow as little of skiff's own work as possible.

use std::collections::BTreeSet;

use chroot::{Feature, FeatureError, Plan, Step};

use crate::seccomp::Confinement;
use crate::user::Identity;

/// Capability names, by number (`include/uapi/linux/capability.h`).
pub const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

// ANCHOR: default_caps
/// The capabilities Docker's default profile keeps. Everything else, including `SYS_ADMIN`
/// (mount), `NET_ADMIN` and `SYS_MODULE`, is gone.
pub const DOCKER_DEFAULT: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];
// ANCHOR_END: default_caps

/// A capability name that does not exist.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown capability {0:?}: use a name from capabilities(7), such as NET_ADMIN or CAP_NET_ADMIN, or ALL"
)]
pub struct UnknownCapability(pub String);

/// The number of a capability name, with or without `CAP_`, in any case.
pub fn capability_number(name: &str) -> Result<u32, UnknownCapability> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITIES
        .iter()
        .position(|c| *c == bare)
        .and_then(|i| u32::try_from(i).ok())
        .ok_or_else(|| UnknownCapability(name.to_string()))
}

/// The name of capability `number` without `CAP_` (`SYS_RESOURCE`), or the number itself for
/// one newer than this list.
pub fn capability_name(number: u32) -> String {
    usize::try_from(number)
        .ok()
        .and_then(|i| CAPABILITIES.get(i))
        .map_or_else(|| number.to_string(), |name| (*name).to_string())
}

/// The highest capability this kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Docker's default set, then `--cap-add` and `--cap-drop` applied (`ALL` allowed in both), as a
/// set of capability numbers.
pub fn capability_set(add: &[String], drop: &[String]) -> Result<BTreeSet<u32>, UnknownCapability> {
    let last = last_capability();
    let all = || (0..=last).collect::<BTreeSet<u32>>();
    let mut set: BTreeSet<u32> = DOCKER_DEFAULT
        .iter()
        .map(|n| capability_number(n))
        .collect::<Result<_, _>>()?;
    if drop.iter().any(|d| d.eq_ignore_ascii_case("ALL")) {
        set.clear();
    }
    for name in add {
        if name.eq_ignore_ascii_case("ALL") {
            set = all();
        } else {
            set.insert(capability_number(name)?);
        }
    }
    for name in drop.iter().filter(|d| !d.eq_ignore_ascii_case("ALL")) {
        set.remove(&capability_number(name)?);
    }
    set.retain(|cap| *cap <= last);
    Ok(set)
}

/// The capabilities this process may still hand on: its bounding set (`CapBnd` in
/// `/proc/self/status`), asked of the kernel one capability at a time with prctl(2)
/// `PR_CAPBSET_READ`, which answers `EINVAL` past the last one it knows. A sandbox may run the
/// engine without some; `--privileged` and `--cap-add ALL` give all the others.
pub fn bounding_set() -> BTreeSet<u32> {
    (0..64u32)
        .map_while(|cap| {
            // SAFETY: PR_CAPBSET_READ only reads the calling thread's bounding set.
            let held =
                unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
            (held >= 0).then_some((cap, held == 1))
        })
        .filter_map(|(cap, held)| held.then_some(cap))
        .collect()
}

/// A set of capability numbers as the 64-bit mask `/proc/PID/status` shows.
pub fn mask(set: &BTreeSet<u32>) -> u64 {
    set.iter().fold(0, |m, cap| m | (1u64 << cap))
}

/// The privileges feature: seccomp, no_new_privs, bounding set, user and groups, capability
/// sets.
pub struct Privileges {
    caps: BTreeSet<u32>,
    identity: Identity,
    confinement: Confinement,
}

impl Privileges {
    /// Run as `identity` keeping the capabilities in `caps`, with no seccomp filter and without
    /// no_new_privs until [`Privileges::confined`] says otherwise.
    pub fn new(caps: BTreeSet<u32>, identity: Identity) -> Self {
        Privileges {
            caps,
            identity,
            confinement: Confinement::default(),
        }
    }

    /// The same, with a seccomp filter and no_new_privs as `confinement` has them.
    pub fn confined(mut self, confinement: Confinement) -> Self {
        self.confinement = confinement;
        self
    }
}

impl Feature for Privileges {
    fn name(&self) -> &'static str {
        "privileges"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Privileges
    }

    // ANCHOR: privileges
    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let prctl = |option, arg: u32, what| Step::Prctl {
            option,
            args: [libc::c_ulong::from(arg), 0, 0, 0],
            what,
        };
        let steps = &mut plan.after_root;
        let mut seccomp = self
            .confinement
            .filter
            .clone()
            .filter(|_| !chroot::defence::disabled("seccomp"))
            .map(|filter| Step::Custom(filter));
        if self.confinement.no_new_privs {
            // No exec may ever gain privileges again (setuid bits, file capabilities).
            steps.push(prctl(libc::PR_SET_NO_NEW_PRIVS, 1, "set no_new_privs"));
        } else if let Some(filter) = seccomp.take() {
            // Without no_new_privs, only CAP_SYS_ADMIN may install a filter: do it now.
            steps.push(filter);
        }
        // A defence the labs prove: a debug build can be told to keep every capability the
        // engine has, as if no capability were ever dropped.
        let kept = if chroot::defence::disabled("capabilities") {
            bounding_set()
        } else {
            self.caps.clone()
        };
        // The bounding set limits what any later exec can have: drop everything not kept.
        for cap in (0..=last_capability()).filter(|c| !kept.contains(c)) {
            steps.push(prctl(
                libc::PR_CAPBSET_DROP,
                cap,
                "drop a capability from the bounding set",
            ));
        }
        steps.push(Step::Prctl {
            option: libc::PR_CAP_AMBIENT,
            args: [libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0],
            what: "clear the ambient capabilities",
        });
        // Groups first, user last: each call needs privileges the next one takes away. A
        // non-root user loses every permitted and effective capability at setuid.
        let id = &self.identity;
        steps.push(Step::Setgroups(id.groups.clone()));
        steps.push(Step::Setgid(id.gid));
        steps.push(Step::Setuid(id.uid));
        if id.uid == 0 {
            let kept = mask(&kept);
            steps.push(Step::Capset {
                effective: kept,
                permitted: kept,
                inheritable: 0,
            });
        }
        // With no_new_privs, the filter goes in last: it need not allow skiff's own steps.
        steps.extend(seccomp);
        Ok(())
    }
    // ANCHOR_END: privileges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_default_set_is_the_well_known_mask() {
        let set = capability_set(&[], &[]).unwrap();
        assert_eq!(mask(&set), 0xa80425fb);
    }

    #[test]
    fn add_drop_and_all() {
        let set = capability_set(&["net_admin".into()], &["CAP_CHOWN".into()]).unwrap();
        assert!(set.contains(&12));
        assert!(!set.contains(&0));
        assert!(capability_set(&[], &["ALL".into()]).unwrap().is_empty());
        let only = capability_set(&["KILL".into()], &["all".into()]).unwrap();
        assert_eq!(only.into_iter().collect::<Vec<_>>(), [5]);
        assert!(capability_set(&["ALL".into()], &[]).unwrap().len() > 38);
    }

    #[test]
    fn the_bounding_set_is_what_proc_shows() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let shown = status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
            .unwrap();
        assert_eq!(mask(&bounding_set()), shown);
    }

    #[test]
    fn unknown_names_are_refused() {
        let err = capability_set(&["NET_ADMINN".into()], &[]).unwrap_err();
        assert!(err.to_string().contains("NET_ADMINN"), "{err}");
    }

    fn step_names(confinement: Confinement) -> Vec<String> {
        let mut plan = Plan::default();
        Privileges::new(capability_set(&[], &[]).unwrap(), Identity::root())
            .confined(confinement)
            .prepare(&mut plan)
            .unwrap();
        plan.after_root.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn steps_drop_privileges_in_order() {
        let names = step_names(Confinement::default());
        assert!(!names.iter().any(|n| n == "set no_new_privs"), "{names:?}");
        let setuid = names.iter().position(|n| n == "set user id 0").unwrap();
        let capset = names.iter().position(|n| n == "set capabilities").unwrap();
        assert!(setuid < capset);
    }

    #[test]
    fn the_filter_goes_in_while_it_may() {
        let filter = crate::seccomp::SecurityOpts::default()
            .confinement(&capability_set(&[], &[]).unwrap())
            .unwrap()
            .filter;
        // Without no_new_privs: first, while CAP_SYS_ADMIN is still there.
        let names = step_names(Confinement {
            no_new_privs: false,
            filter: filter.clone(),
        });
        assert_eq!(names[0], "install the seccomp filter");
        // With it: no_new_privs first, the filter last.
        let names = step_names(Confinement {
            no_new_privs: true,
            filter,
        });
        assert_eq!(names[0], "set no_new_privs");
        assert_eq!(names.last().unwrap(), "install the seccomp filter");
    }
}
