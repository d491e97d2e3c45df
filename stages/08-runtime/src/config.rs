//! A bundle's `config.json`, mapped onto the stage features.
//!
//! The OCI runtime spec (config.md) describes a container as data: the process, the root, the
//! namespaces, the mounts, the limits. Each field lands on the stage that teaches it:
//!
//! | config.json                                   | feature                                  |
//! |-----------------------------------------------|------------------------------------------|
//! | `process.args/env/cwd`                        | stage 01's [`chroot::Process`]           |
//! | `linux.namespaces` (new ones), `uid/gidMappings` (one range) | stage 02's [`namespaces::namespaces::Namespaces`] |
//! | `linux.namespaces[].path` (all but mount)     | [`JoinPaths`]: setns(2), pid's by the parent |
//! | `linux.sysctl` (of the container's namespaces) | [`Sysctls`]: written by the child       |
//! | `root`, `mounts`, masked and read-only paths  | [`crate::mounts::OciFilesystem`]         |
//! | `hostname`                                    | stage 02's `SetHostname`                 |
//! | `process.user/capabilities/noNewPrivileges`, `linux.seccomp` | stage 02's `Privileges` |
//! | `process.rlimits`, `oomScoreAdj`              | [`Rlimits`], [`OomScoreAdj`]: from the parent |
//! | `hooks`                                       | [`crate::hooks`], run by the commands    |
//! | `process.terminal`, `consoleSize`             | [`crate::console::Console`]              |
//! | `linux.cgroupsPath`, `linux.resources`        | stage 03's cgroup, by [`crate::resources`] |
//!
//! Anything else that would change what the container may do is refused by name
//! ([`ConfigError::Unsupported`]): a runtime that ignored `linux.uidMappings` would run as the
//! host's root a container its caller meant to confine.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cgroups::JoinCgroup;
use chroot::{Prepared, Process};
use namespaces::join::Join;
use namespaces::namespaces::{IdMapping, Namespace, Namespaces};
use namespaces::record::ProcessRef;
use namespaces::seccomp::{Confinement, InstallFilter};
use namespaces::security::{Privileges, capability_number};
use namespaces::user::Identity;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::console::Console;
use crate::features::{JoinList, JoinPaths, OomScoreAdj, Rlimits, Sysctls};
use crate::mounts::OciFilesystem;
use crate::resources::cgroup;

/// What in a `config.json` cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed.
    #[error("read {path}: {reason}")]
    Read {
        /// The `config.json`.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A field is not mapped onto skiff's features yet.
    #[error(
        "{field} is not supported by skiff-runtime yet: remove it from config.json or use runc"
    )]
    Unsupported {
        /// The field, in config.json's words.
        field: String,
    },
    /// A field has a value skiff cannot use.
    #[error("invalid {field} in config.json: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
}

pub(crate) fn unsupported(field: impl Into<String>) -> ConfigError {
    ConfigError::Unsupported {
        field: field.into(),
    }
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Reads `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, ConfigError> {
    let path = bundle.join("config.json");
    Spec::load(&path).map_err(|e| ConfigError::Read {
        path: path.clone(),
        reason: e.to_string(),
    })
}

/// A container ready to launch, and what the runtime must remember about it.
pub struct Mapped {
    /// The process and its features.
    pub prepared: Prepared,
    /// Its cgroup below each hierarchy's root (`<parent>/<id>`), for `delete` and `kill --all`.
    pub cgroup_path: String,
    /// The root filesystem on the host.
    pub rootfs: PathBuf,
}

// ANCHOR: map
/// Maps `spec` (of the bundle `bundle`) onto the stage features, for container `id`, whose
/// terminal's master goes to `console_socket`. Checks everything first: nothing exists on the
/// host until the features run.
pub fn map(
    spec: &Spec,
    bundle: &Path,
    id: &str,
    console_socket: Option<&Path>,
) -> Result<Mapped, ConfigError> {
    refuse_unmapped(spec)?;
    let process_spec = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "a container needs a process"))?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "skiff-runtime runs Linux containers only"))?;

    // Stage 01: what runs.
    let mut prepared = Prepared::new(stage01_process(process_spec)?);

    // Stage 02: namespaces, new ones and ones to join.
    let (create, join) = namespaces(linux.namespaces().as_deref().unwrap_or_default())?;
    let has_uts = create.contains(&Namespace::Uts);
    // A joined user namespace has its maps already: the config's, if any, describe it.
    let user_joined = join.iter().any(|(kind, _)| *kind == Namespace::User);
    let ids = match user_joined {
        true => None,
        false => id_mapping(linux, create.contains(&Namespace::User))?,
    };
    prepared.add(
        Namespaces::new(create.clone(), ids)
            .map_err(|e| invalid("linux.namespaces", e.to_string()))?,
    );
    let joined: Vec<Namespace> = join.iter().map(|(kind, _)| *kind).collect();
    if !join.is_empty() {
        prepared.add(JoinPaths::open(join)?);
    }
    if let Some(sysctl) = linux.sysctl().as_ref().filter(|s| !s.is_empty()) {
        let own = |ns: Namespace| create.contains(&ns) || joined.contains(&ns);
        prepared.add(Sysctls::new(sysctl, own)?);
    }

    // The root, the mounts, pivot_root.
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "a container needs a root filesystem"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let filesystem = OciFilesystem::new(spec, &rootfs, bundle)?;
    let cgroup_view = filesystem.wants_cgroup_view();
    prepared.add(filesystem);

    if let Some(hostname) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        if !has_uts {
            return Err(invalid(
                "hostname",
                "setting a hostname needs a new uts namespace in linux.namespaces",
            ));
        }
        namespaces::container::check_hostname(hostname)
            .map_err(|e| invalid("hostname", e.to_string()))?;
        prepared.add(namespaces::container::SetHostname(hostname.to_string()));
    }

    // A terminal; user, capabilities, no_new_privs, seccomp; rlimits.
    process_features(&mut prepared, process_spec, linux, console_socket)?;

    // Stage 03: the cgroup.
    let mut cgroup = cgroup(linux, id)?;
    cgroup.mount_cgroupfs = cgroup_view;
    let cgroup_path = cgroup.path();
    prepared.add(cgroup);
    Ok(Mapped {
        prepared,
        cgroup_path,
        rootfs,
    })
}
// ANCHOR_END: map

/// Stage 01's process: `args`, `env`, `cwd`.
fn stage01_process(spec: &oci_spec::runtime::Process) -> Result<Process, ConfigError> {
    let mut process = Process::new(spec.args().clone().unwrap_or_default());
    process.env = spec.env().clone().unwrap_or_default();
    process.cwd = spec.cwd().display().to_string();
    process
        .validate()
        .map_err(|e| invalid("process", e.to_string()))?;
    Ok(process)
}

/// The features of a process, the first one's or an `exec`'s: its terminal, its privileges (with
/// the container's seccomp profile) and its rlimits.
fn process_features(
    prepared: &mut Prepared,
    process_spec: &oci_spec::runtime::Process,
    linux: &oci_spec::runtime::Linux,
    console_socket: Option<&Path>,
) -> Result<(), ConfigError> {
    refuse_process(process_spec)?;
    // A terminal, whose master goes to the caller.
    match (process_spec.terminal().unwrap_or(false), console_socket) {
        (true, Some(socket)) => {
            let size = process_spec
                .console_size()
                .map(|b| (clamp(b.height()), clamp(b.width())));
            prepared.add(Console::new(socket, size));
        }
        (true, None) => {
            return Err(invalid(
                "process.terminal",
                "a terminal needs --console-socket to send it to",
            ));
        }
        (false, Some(_)) => {
            return Err(invalid(
                "process.terminal",
                "--console-socket was given, but process.terminal is false",
            ));
        }
        (false, None) => {}
    }

    prepared.add(privileges(process_spec, linux)?);
    if let Some(rlimits) = process_spec.rlimits() {
        prepared.add(Rlimits::new(rlimits)?);
    }
    if let Some(adjust) = process_spec.oom_score_adj() {
        if !(-1000..=1000).contains(&adjust) {
            return Err(invalid(
                "process.oomScoreAdj",
                format!("{adjust}: give -1000 to 1000"),
            ));
        }
        prepared.add(OomScoreAdj(adjust));
    }

    Ok(())
}

// ANCHOR: map_exec
/// `exec`: `process` (a process.json) run inside the running container whose first process is
/// `first` and whose cgroup is `cgroup_path`: stage 02's `Join` enters its namespaces through a
/// pidfd (the mount namespace puts it at the container's root), stage 03's `JoinCgroup` counts
/// it with the rest. `spec` is the container's config.json, for its seccomp profile.
pub fn map_exec(
    spec: &Spec,
    process: &oci_spec::runtime::Process,
    first: ProcessRef,
    cgroup_path: &str,
    console_socket: Option<&Path>,
) -> Result<Prepared, ConfigError> {
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "skiff-runtime runs Linux containers only"))?;
    let mut prepared = Prepared::new(stage01_process(process)?);
    join_running(&mut prepared, first, cgroup_path)?;
    process_features(&mut prepared, process, linux, console_socket)?;
    Ok(prepared)
}
// ANCHOR_END: map_exec

/// Stage 02's `Join` into every namespace of the container whose first process is `first`
/// (through its pidfd), and stage 03's `JoinCgroup` into its cgroup: what an `exec` and a hook
/// inside the container both need.
fn join_running(
    prepared: &mut Prepared,
    first: ProcessRef,
    cgroup_path: &str,
) -> Result<(), ConfigError> {
    let gone = || {
        invalid(
            "the container",
            format!("process {} is not running", first.pid),
        )
    };
    let pidfd = first.pidfd().ok_or_else(gone)?;
    prepared.add(Join::new(pidfd, first.pid).map_err(|_| gone())?);
    prepared.add(
        JoinCgroup::new(cgroup_path).map_err(|e| invalid("linux.cgroupsPath", e.to_string()))?,
    );
    Ok(())
}

// ANCHOR: map_hook
/// A `createContainer` or `startContainer` hook, run like an `exec` without the process's
/// privileges: in every namespace of the container whose first process is `first` (its path
/// resolved at the container's root) and in its cgroup, as root, with the hook's own
/// arguments and environment (runtime-spec config.md, "POSIX-platform Hooks").
pub fn map_hook(
    hook: &oci_spec::runtime::Hook,
    first: ProcessRef,
    cgroup_path: &str,
) -> Result<Prepared, ConfigError> {
    let path = hook.path().display().to_string();
    // argv[0] is the path, as the exec of stage 01 takes it; the hook's own args[0] is a name.
    let args = std::iter::once(path.clone())
        .chain(hook.args().iter().flatten().skip(1).cloned())
        .collect();
    let mut process = Process::new(args);
    process.env = hook.env().clone().unwrap_or_default();
    process
        .validate()
        .map_err(|e| invalid(format!("hook {path}"), e.to_string()))?;
    let mut prepared = Prepared::new(process);
    join_running(&mut prepared, first, cgroup_path)?;
    Ok(prepared)
}
// ANCHOR_END: map_hook

// ANCHOR: refuse
/// The fields that would change what the container may do and that no feature maps yet.
fn refuse_unmapped(spec: &Spec) -> Result<(), ConfigError> {
    let given = [
        (
            "domainname",
            spec.domainname().as_deref().is_some_and(|d| !d.is_empty()),
        ),
        (
            "mounts[].uidMappings (idmapped mounts)",
            spec.mounts().iter().flatten().any(|m| {
                m.uid_mappings().as_ref().is_some_and(|u| !u.is_empty())
                    || m.gid_mappings().as_ref().is_some_and(|g| !g.is_empty())
            }),
        ),
    ];
    refuse_given(&given)?;
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let given = [
        (
            "linux.rootfsPropagation other than private (every mount stays private)",
            linux
                .rootfs_propagation()
                .as_deref()
                .is_some_and(|p| !matches!(p, "" | "private" | "rprivate")),
        ),
        ("linux.netDevices", linux.net_devices().is_some()),
        ("linux.memoryPolicy", linux.memory_policy().is_some()),
        (
            "linux.seccomp.listenerPath (seccomp notify)",
            linux
                .seccomp()
                .as_ref()
                .is_some_and(|s| s.listener_path().is_some()),
        ),
        (
            "linux.seccomp.flags",
            linux
                .seccomp()
                .as_ref()
                .is_some_and(|s| s.flags().as_ref().is_some_and(|f| !f.is_empty())),
        ),
    ];
    refuse_given(&given)?;
    let given = [
        ("linux.intelRdt", linux.intel_rdt().is_some()),
        ("linux.personality", linux.personality().is_some()),
        ("linux.timeOffsets", linux.time_offsets().is_some()),
        (
            "linux.mountLabel",
            linux
                .mount_label()
                .as_deref()
                .is_some_and(|l| !l.is_empty()),
        ),
    ];
    refuse_given(&given)?;
    Ok(())
}

/// The fields of a process that no feature maps yet.
fn refuse_process(process: &oci_spec::runtime::Process) -> Result<(), ConfigError> {
    if process
        .apparmor_profile()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(unsupported("process.apparmorProfile"));
    }
    if process
        .selinux_label()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(unsupported("process.selinuxLabel"));
    }
    if process.user().umask().is_some() {
        return Err(unsupported("process.user.umask"));
    }
    let given = [
        ("process.ioPriority", process.io_priority().is_some()),
        ("process.scheduler", process.scheduler().is_some()),
        (
            "process.execCPUAffinity",
            process.exec_cpu_affinity().is_some(),
        ),
    ];
    refuse_given(&given)
}

/// The first field of `fields` that the spec sets, refused.
pub(crate) fn refuse_given(fields: &[(&str, bool)]) -> Result<(), ConfigError> {
    match fields.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(unsupported(*field)),
        None => Ok(()),
    }
}
// ANCHOR_END: refuse

/// A terminal dimension as the kernel's `winsize` holds it.
fn clamp(value: u64) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

// ANCHOR: id_mapping
/// `linux.uidMappings` and `gidMappings` as stage 02's user-namespace mapping: the container's
/// ids from 0 on are a range of unprivileged host ids. Stage 02 maps one range, the same for
/// users and groups, so that is what is accepted; other shapes are refused, as is a mapping
/// without a new user namespace (or one without a mapping).
fn id_mapping(
    linux: &oci_spec::runtime::Linux,
    user_namespace: bool,
) -> Result<Option<IdMapping>, ConfigError> {
    let one = |field: &str, list: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| match list
        .as_deref()
    {
        None | Some([]) => Ok(None),
        Some([m]) if m.container_id() == 0 && m.host_id() > 0 && m.size() > 0 => {
            Ok(Some((m.host_id(), m.size())))
        }
        Some(_) => Err(unsupported(format!(
            "{field} other than one range from container id 0 to host ids above 0"
        ))),
    };
    let uids = one("linux.uidMappings", linux.uid_mappings())?;
    let gids = one("linux.gidMappings", linux.gid_mappings())?;
    match (user_namespace, uids, gids) {
        (false, None, None) => Ok(None),
        (true, Some(uids), Some(gids)) if uids == gids => Ok(Some(IdMapping {
            host_start: uids.0,
            count: uids.1,
        })),
        (true, Some(_), Some(_)) => Err(unsupported(
            "linux.uidMappings and gidMappings that differ (stage 02 maps both alike)",
        )),
        (true, _, _) => Err(invalid(
            "linux.uidMappings",
            "a user namespace needs uidMappings and gidMappings",
        )),
        (false, _, _) => Err(invalid(
            "linux.uidMappings",
            "id mappings need a new user namespace in linux.namespaces",
        )),
    }
}
// ANCHOR_END: id_mapping

/// The namespaces to create, and those to join by path.
fn namespaces(
    list: &[oci_spec::runtime::LinuxNamespace],
) -> Result<(BTreeSet<Namespace>, JoinList), ConfigError> {
    let mut create = BTreeSet::new();
    let mut join = Vec::new();
    for ns in list {
        let kind = match ns.typ() {
            LinuxNamespaceType::Pid => Namespace::Pid,
            LinuxNamespaceType::Uts => Namespace::Uts,
            LinuxNamespaceType::Ipc => Namespace::Ipc,
            LinuxNamespaceType::Mount => Namespace::Mount,
            LinuxNamespaceType::Network => Namespace::Net,
            LinuxNamespaceType::Cgroup => Namespace::Cgroup,
            LinuxNamespaceType::User => Namespace::User,
            other => return Err(unsupported(format!("linux.namespaces: {other}"))),
        };
        match ns.path() {
            None => {
                create.insert(kind);
            }
            // Joined with setns(2) by the child before its root changes (the user namespace
            // first), pid by the parent for the clone (a pod that shares its processes).
            Some(path) if kind != Namespace::Mount => {
                join.push((kind, path.clone()));
            }
            // The container's root is built in a mount namespace of its own; joining another
            // would build it in there, on top of whatever is mounted.
            Some(_) => {
                return Err(invalid(
                    "linux.namespaces",
                    "skiff-runtime builds the container's root in a new mount namespace and \
                     cannot join one by path: remove the \"path\" of the mount namespace",
                ));
            }
        }
    }
    if !create.contains(&Namespace::Mount) {
        return Err(invalid(
            "linux.namespaces",
            "skiff-runtime needs a new mount namespace (type \"mount\")",
        ));
    }
    Ok((create, join))
}

/// Stage 02's privileges from `process.user`, `process.capabilities`,
/// `process.noNewPrivileges` and `linux.seccomp`.
fn privileges(
    process: &oci_spec::runtime::Process,
    linux: &oci_spec::runtime::Linux,
) -> Result<Privileges, ConfigError> {
    let user = process.user();
    let identity = Identity {
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        home: "/".to_string(),
    };
    let caps = capabilities(process, user.uid())?;
    let filter = match linux.seccomp() {
        None => None,
        Some(seccomp) => {
            // The spec's seccomp is Docker's profile format, which stage 02 compiles.
            let json = serde_json::to_string(seccomp)
                .map_err(|e| invalid("linux.seccomp", e.to_string()))?;
            let program = namespaces::seccomp::compile(&json, &caps)
                .map_err(|reason| invalid("linux.seccomp", reason))?;
            Some(Arc::new(InstallFilter::new(program)))
        }
    };
    let confinement = Confinement {
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        filter,
    };
    Ok(Privileges::new(caps, identity).confined(confinement))
}

// ANCHOR: capabilities
/// The capability set of `process.capabilities`. Stage 02 keeps one set: the bounding set, and
/// for root the effective and permitted sets too, with nothing inheritable or ambient. A spec
/// asking for different sets is refused rather than run with other privileges than it says.
fn capabilities(
    process: &oci_spec::runtime::Process,
    uid: u32,
) -> Result<BTreeSet<u32>, ConfigError> {
    let Some(caps) = process.capabilities() else {
        return Ok(BTreeSet::new());
    };
    let numbers = |field: &str, set: &Option<oci_spec::runtime::Capabilities>| {
        set.iter()
            .flatten()
            .map(|cap| {
                capability_number(&cap.to_string())
                    .map_err(|e| invalid(format!("process.capabilities.{field}"), e.to_string()))
            })
            .collect::<Result<BTreeSet<u32>, _>>()
    };
    let bounding = numbers("bounding", caps.bounding())?;
    let effective = numbers("effective", caps.effective())?;
    let permitted = numbers("permitted", caps.permitted())?;
    let inheritable = numbers("inheritable", caps.inheritable())?;
    let ambient = numbers("ambient", caps.ambient())?;
    if uid == 0 && (effective != bounding || permitted != bounding) {
        return Err(unsupported(
            "process.capabilities with effective or permitted sets other than the bounding set",
        ));
    }
    if uid != 0 && !(effective.is_empty() && permitted.is_empty() && ambient.is_empty()) {
        return Err(unsupported(
            "process.capabilities for a non-root user (effective, permitted, ambient)",
        ));
    }
    if !inheritable.is_empty() {
        return Err(unsupported("process.capabilities.inheritable"));
    }
    // Root has every ambient capability it has in its permitted set anyway.
    if !ambient.is_subset(&bounding) {
        return Err(unsupported(
            "process.capabilities.ambient beyond the bounding set",
        ));
    }
    Ok(bounding)
}
// ANCHOR_END: capabilities

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_namespace_needs_one_range_of_ids() {
        let mut spec = Spec::default();
        let mut linux = spec.linux().clone().unwrap();
        let mut list = linux.namespaces().clone().unwrap();
        list.push(
            oci_spec::runtime::LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::User)
                .build()
                .unwrap(),
        );
        linux.set_namespaces(Some(list));
        spec.set_linux(Some(linux.clone()));
        let err = map(&spec, Path::new("/nonexistent"), "x", None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("uidMappings"), "{err}");
        let range = |host: u32| {
            oci_spec::runtime::LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host)
                .size(65536u32)
                .build()
                .unwrap()
        };
        linux.set_uid_mappings(Some(vec![range(100000)]));
        linux.set_gid_mappings(Some(vec![range(200000)]));
        assert!(id_mapping(&linux, true).is_err());
        linux.set_gid_mappings(Some(vec![range(100000)]));
        assert_eq!(
            id_mapping(&linux, true).unwrap(),
            Some(IdMapping {
                host_start: 100000,
                count: 65536
            })
        );
    }
}
