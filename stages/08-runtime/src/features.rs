//! The small features a bundle needs that no stage has yet: namespaces joined by path,
//! sysctls, rlimits and the OOM score (runtime-spec config-linux.md; setns(2), sysctl(8),
//! prlimit(2), proc(5)). Each plugs into stage 01's launch like any stage's feature.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use chroot::{Feature, FeatureError, Plan, Slot, Started, Step};
use namespaces::namespaces::Namespace;

use crate::config::{ConfigError, invalid};

/// Namespaces to join: the kind, and the file that names one (`/proc/PID/ns/net`).
pub type JoinList = Vec<(Namespace, PathBuf)>;

// ANCHOR: join_paths
/// Namespaces to join by path (a pod's network, say): opened by the parent, entered by the child
/// with setns(2) before anything else.
///
/// A **pid** namespace is the exception: a process never changes its own, so the parent enters
/// it for exactly one clone, as stage 02's `Join` does for `exec`, and the child is born there
/// (pid_namespaces(7)).
///
/// A **user** namespace changes who owns the namespaces the container gets: each new namespace
/// belongs to the user namespace its creator is in, and only root *there* may mount `/proc` or
/// `sysfs` in it. So they cannot come from the clone, which the parent makes from the host's user
/// namespace: the child joins the user namespace first, then unshare(2)s the others. A new pid
/// namespace is only for the caller's children, so the child then forks the process that goes
/// on, PID 1 there, and exits (stage 01's `Step::Reborn`).
pub struct JoinPaths {
    files: Vec<(Namespace, PathBuf, OwnedFd)>,
    /// The engine's own pid namespace while its next child is to be born in another one.
    own_pid: Option<std::fs::File>,
}

impl JoinPaths {
    /// Opens every path now, so a wrong one fails before anything exists.
    pub fn open(paths: JoinList) -> Result<Self, ConfigError> {
        let files = paths
            .into_iter()
            .map(|(kind, path)| {
                let file = std::fs::File::open(&path).map_err(|e| {
                    invalid(
                        format!("linux.namespaces ({kind})"),
                        format!("open {}: {e}", path.display()),
                    )
                })?;
                Ok((kind, path, OwnedFd::from(file)))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(JoinPaths {
            files,
            own_pid: None,
        })
    }

    /// Where the parent's next child is born: the pid namespace `fd`, until
    /// [`JoinPaths::restore`].
    fn enter_pid_namespace(&mut self, fd: libc::c_int, what: &str) -> Result<(), FeatureError> {
        let own = std::fs::File::open("/proc/self/ns/pid")
            .map_err(|e| FeatureError::with("open the runtime's pid namespace", e))?;
        setns(fd, libc::CLONE_NEWPID)
            .map_err(|e| FeatureError::with(format!("enter the pid namespace {what}"), e))?;
        self.own_pid = Some(own);
        Ok(())
    }

    /// The engine's children are born in its own pid namespace again.
    fn restore(&mut self) -> Result<(), FeatureError> {
        if let Some(own) = self.own_pid.take() {
            setns(own.as_raw_fd(), libc::CLONE_NEWPID)
                .map_err(|e| FeatureError::with("return to the runtime's pid namespace", e))?;
        }
        Ok(())
    }
}

/// setns(2) of the calling process.
fn setns(fd: libc::c_int, kind: libc::c_int) -> Result<(), nix::errno::Errno> {
    // SAFETY: setns(2) takes a descriptor this process holds and a flag; no memory.
    nix::errno::Errno::result(unsafe { libc::setns(fd, kind) }).map(drop)
}

/// The child's setns(2) into one namespace file it inherited.
#[derive(Debug)]
struct SetNs {
    fd: libc::c_int,
    kind: libc::c_int,
    path: String,
}

impl chroot::ChildStep for SetNs {
    fn run(&self) -> Result<(), nix::errno::Errno> {
        setns(self.fd, self.kind)
    }
}

impl std::fmt::Display for SetNs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "join namespace {}", self.path)
    }
}

impl Feature for JoinPaths {
    fn name(&self) -> &'static str {
        "namespace paths"
    }

    fn slot(&self) -> Slot {
        Slot::Namespaces
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        // The user namespace first: the joins and the namespaces made after it are its.
        let mut steps = Vec::new();
        let mut pid = None;
        let mut joins_user = false;
        for (kind, path, fd) in &self.files {
            match kind {
                Namespace::Pid => pid = Some((fd.as_raw_fd(), path.display().to_string())),
                kind => {
                    let step = SetNs {
                        fd: fd.as_raw_fd(),
                        kind: kind.clone_flag(),
                        path: path.display().to_string(),
                    };
                    if *kind == Namespace::User {
                        joins_user = true;
                        // Then become its root, as stage 02 does in a user namespace it made:
                        // files this process creates need an owner that is mapped there.
                        steps.splice(
                            0..0,
                            [
                                Step::Custom(Arc::new(step)),
                                Step::Setgid(0),
                                Step::Setuid(0),
                            ],
                        );
                    } else {
                        steps.push(Step::Custom(Arc::new(step)));
                    }
                }
            }
        }
        if let Some((fd, path)) = pid {
            self.enter_pid_namespace(fd, &path)?;
        }
        plan.joins_user_namespace |= joins_user;
        if joins_user {
            // Nothing from the clone: everything new comes after the join.
            let flags = std::mem::take(&mut plan.clone_flags);
            let flags = libc::c_int::try_from(flags)
                .map_err(|_| FeatureError::msg("namespace flags out of range"))?;
            if flags != 0 {
                steps.push(Step::Unshare(flags));
            }
            if flags & libc::CLONE_NEWPID != 0 {
                steps.push(Step::Reborn);
            }
        }
        // First of all: the mounts and the loopback that follow happen in these namespaces.
        plan.early.splice(0..0, steps);
        Ok(())
    }

    fn started(&mut self, _child: &Started) -> Result<(), FeatureError> {
        self.restore()
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        self.restore()
    }
}

// ANCHOR_END: join_paths

// ANCHOR: pass_fds
/// `--preserve-fds N`: the caller's descriptors 3 to 3+N-1 reach the container's process, open
/// (a socket handed over for socket activation, say). Each must be open when the runtime
/// starts; the launch leaves them out of the close-on-exec sweep.
pub struct PassFds(pub u32);

impl PassFds {
    /// Checks that every descriptor to pass is open; the error names the first that is not.
    pub fn check(count: u32) -> Result<PassFds, String> {
        for fd in 3..3u32.saturating_add(count) {
            let open = libc::c_int::try_from(fd).is_ok_and(|raw| {
                // SAFETY: fcntl(F_GETFD) only reads the flags of a descriptor number.
                unsafe { libc::fcntl(raw, libc::F_GETFD) >= 0 }
            });
            if !open {
                return Err(format!(
                    "--preserve-fds {count}: descriptor {fd} is not open (pass only descriptors \
                     this command inherits, from 3 on)"
                ));
            }
        }
        Ok(PassFds(count))
    }
}

impl Feature for PassFds {
    fn name(&self) -> &'static str {
        "preserved descriptors"
    }

    fn slot(&self) -> Slot {
        Slot::Stdio
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        plan.pass_fds = self.0;
        Ok(())
    }
}
// ANCHOR_END: pass_fds

// ANCHOR: rlimits
/// `process.rlimits`, set on the waiting child from outside with prlimit(2): they survive
/// setuid and execve, and the parent still has the right to raise hard limits.
pub struct Rlimits {
    limits: Vec<(Resource, libc::rlimit)>,
}

/// A resource number as prlimit(2) takes it: an unsigned int in glibc's headers, an int in
/// musl's.
#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

impl Rlimits {
    /// `process.rlimits`, each type checked.
    pub fn new(list: &[oci_spec::runtime::PosixRlimit]) -> Result<Self, ConfigError> {
        let limits = list
            .iter()
            .map(|r| {
                let name = serde_json::to_value(r.typ())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let resource = rlimit_resource(&name)
                    .ok_or_else(|| invalid("process.rlimits", format!("unknown type {name:?}")))?;
                Ok((
                    resource,
                    libc::rlimit {
                        rlim_cur: r.soft(),
                        rlim_max: r.hard(),
                    },
                ))
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Rlimits { limits })
    }
}

impl Feature for Rlimits {
    fn name(&self) -> &'static str {
        "rlimits"
    }

    fn slot(&self) -> Slot {
        Slot::Privileges
    }

    fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
        Ok(())
    }

    fn started(&mut self, child: &Started) -> Result<(), FeatureError> {
        for (resource, limit) in &self.limits {
            // SAFETY: prlimit(2) reads one rlimit struct that lives across the call.
            let rc = unsafe {
                libc::prlimit(child.pid.as_raw(), *resource, limit, std::ptr::null_mut())
            };
            nix::errno::Errno::result(rc).map_err(|e| {
                FeatureError::with(format!("set rlimit {resource} of process {}", child.pid), e)
            })?;
        }
        Ok(())
    }
}
// ANCHOR_END: rlimits

// ANCHOR: sysctls
/// `linux.sysctl`: kernel parameters of the container's own namespaces, written by the child
/// under `/proc/sys` before anything else. The kernel shows a process the `net.*` values of its
/// network namespace and the IPC ones of its IPC namespace, so the host's `/proc` does, before
/// the root changes. A parameter of no namespace the container owns would change the host: it is
/// refused, as runc refuses it.
pub struct Sysctls {
    writes: Vec<(std::ffi::CString, Vec<u8>)>,
}

impl Sysctls {
    /// `linux.sysctl`, each key of a namespace for which `own` says the container has its own.
    pub fn new(
        sysctl: &std::collections::HashMap<String, String>,
        own: impl Fn(Namespace) -> bool,
    ) -> Result<Self, ConfigError> {
        let mut keys: Vec<_> = sysctl.iter().collect();
        keys.sort();
        let mut writes = Vec::new();
        for (key, value) in keys {
            let ns = match key.as_str() {
                k if k.starts_with("net.") => Some(Namespace::Net),
                "kernel.msgmax"
                | "kernel.msgmnb"
                | "kernel.msgmni"
                | "kernel.sem"
                | "kernel.shmall"
                | "kernel.shmmax"
                | "kernel.shmmni"
                | "kernel.shm_rmid_forced" => Some(Namespace::Ipc),
                k if k.starts_with("fs.mqueue.") => Some(Namespace::Ipc),
                "kernel.hostname" | "kernel.domainname" => Some(Namespace::Uts),
                _ => None,
            };
            if !ns.is_some_and(&own) || key.contains("..") || key.contains('/') {
                return Err(invalid(
                    format!("linux.sysctl {key}"),
                    "it is not of a namespace the container owns: setting it would change the host",
                ));
            }
            let path = format!("/proc/sys/{}", key.replace('.', "/"));
            let path = chroot::plan::cstr(&path)
                .map_err(|e| invalid(format!("linux.sysctl {key}"), e.to_string()))?;
            writes.push((path, value.as_bytes().to_vec()));
        }
        Ok(Sysctls { writes })
    }
}

impl Feature for Sysctls {
    fn name(&self) -> &'static str {
        "sysctl"
    }

    fn slot(&self) -> Slot {
        Slot::Namespaces
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        for (path, data) in &self.writes {
            plan.root_setup().push(Step::WriteFile {
                path: path.clone(),
                data: data.clone(),
            });
        }
        Ok(())
    }
}
// ANCHOR_END: sysctls

/// `process.oomScoreAdj`: how readily the OOM killer picks this process (proc(5),
/// `/proc/PID/oom_score_adj`), written by the parent while the child waits; inherited by its
/// children and kept across execve.
pub struct OomScoreAdj(pub i32);

impl Feature for OomScoreAdj {
    fn name(&self) -> &'static str {
        "oom score"
    }

    fn slot(&self) -> Slot {
        Slot::Privileges
    }

    fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
        Ok(())
    }

    fn started(&mut self, child: &Started) -> Result<(), FeatureError> {
        let path = format!("/proc/{}/oom_score_adj", child.pid);
        std::fs::write(&path, self.0.to_string())
            .map_err(|e| FeatureError::with(format!("write {path}"), e))
    }
}

/// The resource number of an `RLIMIT_*` name.
fn rlimit_resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sysctls_of_the_containers_namespaces_are_taken() {
        let set = |key: &str| std::collections::HashMap::from([(key.to_string(), "1".to_string())]);
        let net_only = |ns: Namespace| ns == Namespace::Net;
        assert!(Sysctls::new(&set("net.ipv4.ip_unprivileged_port_start"), net_only).is_ok());
        for host in [
            "kernel.panic",
            "vm.swappiness",
            "kernel.shmmax",
            "net/../kernel/panic",
        ] {
            let err = Sysctls::new(&set(host), net_only).err().unwrap();
            assert!(err.to_string().contains("change the host"), "{host}: {err}");
        }
    }
}
