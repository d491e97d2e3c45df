//! Namespaces: each one gives the container its own copy of one kind of global resource.
//!
//! | namespace | what the container gets of its own             | clone flag        |
//! |-----------|------------------------------------------------|-------------------|
//! | pid       | process ids: its command is PID 1             | `CLONE_NEWPID`    |
//! | uts       | hostname and domain name                       | `CLONE_NEWUTS`    |
//! | ipc       | System V IPC objects, POSIX message queues     | `CLONE_NEWIPC`    |
//! | mnt       | the mount table                                | `CLONE_NEWNS`     |
//! | net       | network devices, addresses, routes, ports      | `CLONE_NEWNET`    |
//! | cgroup    | the root of the cgroup tree it sees            | `CLONE_NEWCGROUP` |
//! | user      | user and group ids, and the capabilities over the others | `CLONE_NEWUSER` |
//!
//! The child is born in the new namespaces (clone3's flags), except the cgroup namespace, which
//! it enters with unshare(2) once the engine has put it in its cgroup (stage 03), so that the
//! cgroup it sees as `/` is its own. See namespaces(7), clone(2), user_namespaces(7).

use std::collections::BTreeSet;
use std::fmt;

use chroot::{Feature, FeatureError, Plan, Started, Step};

/// Bad namespace settings.
#[derive(Debug, thiserror::Error)]
pub enum NsError {
    /// A name that is not a namespace.
    #[error("unknown namespace {0:?}: choose from pid, uts, ipc, mnt, net, cgroup, user")]
    Unknown(String),
    /// A mode flag with a value other than host/private.
    #[error("invalid --{flag} {value:?}: use host (share the host's) or private (a new one)")]
    BadMode {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
    },
    /// A `--userns` value that is not a range.
    #[error("invalid --userns {0:?}: use host, remap (uids 100000-165535) or START:COUNT")]
    BadUserns(String),
    /// The mount namespace cannot be left out.
    #[error("the mount namespace cannot be shared with the host: pivot_root needs a private one")]
    MountRequired,
}

// ANCHOR: namespace
/// One kind of namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    /// Process ids.
    Pid,
    /// Hostname.
    Uts,
    /// System V IPC and message queues.
    Ipc,
    /// Mounts.
    Mount,
    /// Network stack.
    Net,
    /// Cgroup root.
    Cgroup,
    /// User and group ids.
    User,
}

impl Namespace {
    /// Every kind, in the order `/proc/PID/ns` lists them.
    pub const ALL: [Namespace; 7] = [
        Namespace::Cgroup,
        Namespace::Ipc,
        Namespace::Mount,
        Namespace::Net,
        Namespace::Pid,
        Namespace::User,
        Namespace::Uts,
    ];

    /// The name used in `/proc/PID/ns/` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Pid => "pid",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Mount => "mnt",
            Namespace::Net => "net",
            Namespace::Cgroup => "cgroup",
            Namespace::User => "user",
        }
    }

    /// The `CLONE_NEW*` flag that creates one.
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
            Namespace::User => libc::CLONE_NEWUSER,
        }
    }
}
// ANCHOR_END: namespace

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Namespace {
    type Err = NsError;

    fn from_str(s: &str) -> Result<Self, NsError> {
        Namespace::ALL
            .into_iter()
            .find(|ns| ns.name() == s || (s == "mount" && *ns == Namespace::Mount))
            .ok_or_else(|| NsError::Unknown(s.to_string()))
    }
}

/// Parses a comma-separated list such as `pid,uts,mnt`.
pub fn parse_list(list: &str) -> Result<BTreeSet<Namespace>, NsError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

/// The namespaces a container gets by default: all but the user namespace, as Docker does.
pub fn default_set() -> BTreeSet<Namespace> {
    Namespace::ALL
        .into_iter()
        .filter(|ns| *ns != Namespace::User)
        .collect()
}

/// Container root mapped to an unprivileged range of host ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    /// The host id that the container's id 0 is.
    pub host_start: u32,
    /// How many ids are mapped.
    pub count: u32,
}

impl IdMapping {
    /// Docker's usual remap range: container 0-65535 is host 100000-165535.
    pub const REMAP: IdMapping = IdMapping {
        host_start: 100_000,
        count: 65_536,
    };

    /// Parses `--userns`: `host` (none), `remap`, or `START:COUNT`.
    pub fn parse(value: &str) -> Result<Option<IdMapping>, NsError> {
        match value {
            "host" | "" => Ok(None),
            "remap" | "private" => Ok(Some(IdMapping::REMAP)),
            range => {
                let bad = || NsError::BadUserns(range.to_string());
                let (start, count) = range.split_once(':').ok_or_else(bad)?;
                let host_start: u32 = start.parse().map_err(|_| bad())?;
                let count: u32 = count.parse().map_err(|_| bad())?;
                if host_start == 0 || count == 0 || host_start.checked_add(count).is_none() {
                    return Err(bad());
                }
                Ok(Some(IdMapping { host_start, count }))
            }
        }
    }

    /// The line for `/proc/PID/uid_map` and `gid_map`.
    pub fn map_line(&self) -> String {
        format!("0 {} {}\n", self.host_start, self.count)
    }
}

// ANCHOR: feature
/// Puts the child in new namespaces.
pub struct Namespaces {
    create: BTreeSet<Namespace>,
    ids: Option<IdMapping>,
}

impl Namespaces {
    /// New namespaces of the kinds in `create` (the user namespace when `ids` is set).
    pub fn new(mut create: BTreeSet<Namespace>, ids: Option<IdMapping>) -> Result<Self, NsError> {
        if !create.contains(&Namespace::Mount) {
            return Err(NsError::MountRequired);
        }
        match ids {
            Some(_) => create.insert(Namespace::User),
            None => create.remove(&Namespace::User),
        };
        Ok(Namespaces { create, ids })
    }

    /// The kinds this container gets.
    pub fn kinds(&self) -> &BTreeSet<Namespace> {
        &self.create
    }

    /// Whether the container gets its own namespace of this kind.
    pub fn has(&self, ns: Namespace) -> bool {
        self.create.contains(&ns)
    }

    /// The user-namespace mapping, if any.
    pub fn ids(&self) -> Option<IdMapping> {
        self.ids
    }
}

impl Feature for Namespaces {
    fn name(&self) -> &'static str {
        "namespaces"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Namespaces
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        plan.user_namespace = self.ids.is_some();
        if self.ids.is_some() {
            // Once the engine has written the id maps, become the namespace's root: until then
            // the child's ids are unmapped there, and files it creates would have no owner.
            plan.before_root.push(Step::Setgid(0));
            plan.before_root.push(Step::Setuid(0));
        }
        for ns in &self.create {
            match ns {
                // Entered later, from inside its cgroup.
                Namespace::Cgroup => plan.before_root.push(Step::Unshare(libc::CLONE_NEWCGROUP)),
                // A defence the labs prove: a debug build can be told to leave the command in
                // the host's PID namespace, where it is not PID 1 and sees every host process.
                Namespace::Pid if chroot::defence::disabled("pid-namespace") => {}
                ns => plan.clone_flags |= ns.clone_flag().unsigned_abs() as u64,
            }
        }
        if self.has(Namespace::Net) && self.ids.is_none() && plan.network_ahead.is_none() {
            // The dearest namespace to make, made on a thread while the rest prepares; the
            // child is born in it (stage 01's `ahead`).
            plan.network_ahead = chroot::ahead::NetworkAhead::start();
        }
        if self.has(Namespace::Net) {
            // A new network namespace holds one device, `lo`, and it is down. Bringing it up needs
            // nothing from the parent (and a user namespace's root has the right to). One made
            // ahead has it up already, and the step finds nothing to do.
            plan.root_setup().push(Step::Call {
                run: chroot::ahead::loopback_up,
                what: "bring up the loopback interface",
            });
        }
        Ok(())
    }

    fn started(&mut self, child: &Started) -> Result<(), FeatureError> {
        // The child waits while its user namespace gets its id maps: until then it is nobody.
        if let Some(ids) = self.ids {
            for file in ["uid_map", "gid_map"] {
                let path = format!("/proc/{}/{file}", child.pid);
                std::fs::write(&path, ids.map_line())
                    .map_err(|e| FeatureError::with(format!("write {path}"), e))?;
            }
        }
        Ok(())
    }
}
// ANCHOR_END: feature

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_unknown_names_are_refused() {
        let set = parse_list("pid, uts,mount").unwrap();
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            [Namespace::Pid, Namespace::Uts, Namespace::Mount]
        );
        let err = parse_list("pid,bogus").unwrap_err();
        assert!(err.to_string().contains("\"bogus\""), "{err}");
    }

    #[test]
    fn userns_values() {
        assert_eq!(IdMapping::parse("host").unwrap(), None);
        assert_eq!(IdMapping::parse("remap").unwrap(), Some(IdMapping::REMAP));
        assert_eq!(
            IdMapping::parse("200000:1000").unwrap(),
            Some(IdMapping {
                host_start: 200_000,
                count: 1000
            })
        );
        for bad in ["0:10", "1:0", "x", "1:y", "4294967295:2"] {
            assert!(IdMapping::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(IdMapping::REMAP.map_line(), "0 100000 65536\n");
    }

    #[test]
    fn cgroup_namespace_is_unshared_in_the_child_not_cloned() {
        let mut ns = Namespaces::new(default_set(), None).unwrap();
        let mut plan = Plan::default();
        ns.prepare(&mut plan).unwrap();
        let flags = plan.clone_flags;
        assert_eq!(flags & libc::CLONE_NEWCGROUP as u64, 0);
        for ns in [
            Namespace::Pid,
            Namespace::Uts,
            Namespace::Ipc,
            Namespace::Mount,
            Namespace::Net,
        ] {
            assert_ne!(flags & ns.clone_flag() as u64, 0, "{ns}");
        }
        assert_eq!(flags & libc::CLONE_NEWUSER as u64, 0);
        assert!(matches!(plan.before_root[0], Step::Unshare(f) if f == libc::CLONE_NEWCGROUP));
        let mut remapped = Namespaces::new(default_set(), Some(IdMapping::REMAP)).unwrap();
        let mut plan = Plan::default();
        remapped.prepare(&mut plan).unwrap();
        assert_ne!(plan.clone_flags & libc::CLONE_NEWUSER as u64, 0);
        assert!(matches!(
            plan.before_root[..2],
            [Step::Setgid(0), Step::Setuid(0)]
        ));
    }

    #[test]
    fn the_mount_namespace_is_required() {
        let set = parse_list("pid,uts").unwrap();
        assert!(matches!(
            Namespaces::new(set, None),
            Err(NsError::MountRequired)
        ));
    }
}
