//! Joining a running container: what `exec` does instead of creating namespaces.
//!
//! A new container is born in new namespaces (`clone3` with `CLONE_NEW*`). A process `exec`
//! adds to a running one must instead *enter* the namespaces its first process already lives
//! in. setns(2) does that, and since Linux 5.8 it takes a **pidfd** of a process and a set of
//! `CLONE_NEW*` flags, and moves the caller into all of those namespaces of that process at
//! once, atomically: no window where it is half inside, and no race with the process ending
//! (the pidfd holds it, where `/proc/PID/ns/*` paths might name a recycled pid).
//!
//! Two namespaces are special:
//!
//! - **pid**: a process never changes its own pid namespace; setns with `CLONE_NEWPID` only
//!   decides where the caller's *next children* are born. So the engine (the parent) sets that
//!   for exactly one clone, and sets it back once the child exists: the child is then PID N of
//!   the container, from birth. (Until it is set back the parent may not start threads: the
//!   kernel refuses `CLONE_THREAD` while a thread's children would be born elsewhere.)
//! - **mnt**: entering a mount namespace also puts the caller at that namespace's root, which
//!   for a container is the root it pivoted into. No chroot is needed, and none of the
//!   engine's directories stays reachable: no host descriptor crosses (CVE-2024-21626, see the
//!   appendix on escapes), since every descriptor but 0, 1 and 2 closes at the exec.
//!
//! While it is inside and not yet exec'd, the child is the engine's own program running in the
//! container's pid namespace, where the container's processes can see it in `/proc`. Through
//! `/proc/PID/exe` they could open the engine's binary on the host and, once the child has
//! exec'd, overwrite it: runc's CVE-2019-5736. So the engine makes itself *non-dumpable* before
//! the clone (the child inherits that): the kernel then lets only a process with
//! `CAP_SYS_PTRACE` in the host's user namespace look at `/proc/PID/exe`, and the exec of the
//! container's command turns it dumpable again, as an ordinary process of the container. See
//! setns(2), pidfd_open(2), pid_namespaces(7), prctl(2) (`PR_SET_DUMPABLE`), proc(5).

use std::fmt;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use chroot::{ChildStep, Feature, FeatureError, Plan, Slot, Step};
use nix::errno::Errno;

use crate::namespaces::Namespace;

// ANCHOR: join
/// The namespaces of a running container, entered by a new process.
pub struct Join {
    /// A pidfd of the container's first process.
    pidfd: Arc<OwnedFd>,
    /// The namespaces in which that process differs from the engine.
    namespaces: Vec<Namespace>,
    /// The engine's own pid namespace, to go back to once the child exists.
    own_pid: Option<File>,
}

impl Join {
    /// The namespaces of the process `pid` (held by `pidfd`) that are not the engine's own.
    pub fn new(pidfd: OwnedFd, pid: i32) -> std::io::Result<Join> {
        let mut namespaces = Vec::new();
        for ns in Namespace::ALL {
            let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{}", ns.name()))?.ino();
            let ours = std::fs::metadata(format!("/proc/self/ns/{}", ns.name()))?.ino();
            if theirs != ours {
                namespaces.push(ns);
            }
        }
        Ok(Join {
            pidfd: Arc::new(pidfd),
            namespaces,
            own_pid: None,
        })
    }

    /// Whether the process has a namespace `ns` of its own.
    pub fn has(&self, ns: Namespace) -> bool {
        self.namespaces.contains(&ns)
    }

    /// The engine's children are born in the engine's own pid namespace again.
    fn restore_pid_namespace(&mut self) -> Result<(), FeatureError> {
        if let Some(own) = self.own_pid.take() {
            setns(own.as_raw_fd(), libc::CLONE_NEWPID)
                .map_err(|e| FeatureError::with("return to the engine's pid namespace", e))?;
        }
        Ok(())
    }
}

impl Feature for Join {
    fn name(&self) -> &'static str {
        "join the container's namespaces"
    }

    fn slot(&self) -> Slot {
        Slot::Namespaces
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        if !self.has(Namespace::Mount) {
            return Err(FeatureError::msg(
                "the container shares the host's mount namespace: there is no root of its own to enter",
            ));
        }
        // CVE-2019-5736: nothing in the container may open this program through
        // /proc/PID/exe while the child runs it in there. The child inherits this; its exec
        // of the command makes it dumpable again.
        if !chroot::defence::disabled("exec-dumpable") {
            // SAFETY: prctl(PR_SET_DUMPABLE) takes an integer and changes a flag of this process.
            let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
            Errno::result(rc).map_err(|e| FeatureError::with("make the engine non-dumpable", e))?;
        }
        if self.has(Namespace::Pid) {
            let own = File::open("/proc/self/ns/pid")
                .map_err(|e| FeatureError::with("open the engine's pid namespace", e))?;
            setns(self.pidfd.as_raw_fd(), libc::CLONE_NEWPID)
                .map_err(|e| FeatureError::with("enter the container's pid namespace", e))?;
            self.own_pid = Some(own);
        }
        let flags = self
            .namespaces
            .iter()
            .filter(|ns| **ns != Namespace::Pid)
            .fold(0, |flags, ns| flags | ns.clone_flag());
        plan.enter.push(Step::Custom(Arc::new(Enter {
            pidfd: self.pidfd.clone(),
            flags,
        })));
        Ok(())
    }

    fn started(&mut self, _child: &chroot::Started) -> Result<(), FeatureError> {
        self.restore_pid_namespace()
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        self.restore_pid_namespace()
    }
}
// ANCHOR_END: join

// ANCHOR: enter
/// The child's step: into every namespace of the container at once (but pid, which it was
/// born in).
struct Enter {
    pidfd: Arc<OwnedFd>,
    flags: libc::c_int,
}

impl ChildStep for Enter {
    fn run(&self) -> Result<(), Errno> {
        setns(self.pidfd.as_raw_fd(), self.flags)
    }

    fn hint(&self, errno: Errno) -> Option<&'static str> {
        (errno == Errno::ESRCH).then_some("the container's first process ended meanwhile")
    }
}
// ANCHOR_END: enter

impl fmt::Debug for Enter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Enter({:#x})", self.flags)
    }
}

impl fmt::Display for Enter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("enter the container's namespaces")
    }
}

// ANCHOR: shared_network
/// Another running container's network namespace, which a new container joins instead of
/// getting one of its own: Docker's `--network container:NAME`. The two then share their
/// interfaces, addresses, ports and routes: `localhost` in one is `localhost` in the other.
/// As in Docker, the new container also takes the other's hostname (in a UTS namespace of its
/// own) and its `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`, the very files, so the
/// names the other learns reach it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedNetwork {
    /// The other container's id.
    pub id: String,
    /// Its first process, whose network namespace is joined.
    pub process: crate::record::ProcessRef,
    /// Its state directory, where its `/etc` files are.
    pub dir: std::path::PathBuf,
    /// Its hostname.
    pub hostname: String,
}

impl SharedNetwork {
    /// The container `key` (name, id or id prefix) of the store at `root`, which must be
    /// running: a stopped container has no network namespace to share.
    pub fn find(root: &std::path::Path, key: &str) -> anyhow::Result<SharedNetwork> {
        let record = crate::records::Records::new(root).find::<serde_json::Value>(key)?;
        let process = record
            .state
            .pid
            .filter(|pid| record.state.is_running() && pid.is_alive());
        let Some(process) = process else {
            anyhow::bail!("cannot join network of a non running container: {key}");
        };
        Ok(SharedNetwork {
            dir: crate::record::container_dir(root, &record.id),
            id: record.id,
            process,
            hostname: record.config.hostname,
        })
    }
}

impl Feature for SharedNetwork {
    fn name(&self) -> &'static str {
        "join another container's network namespace"
    }

    fn slot(&self) -> Slot {
        Slot::Namespaces
    }

    /// A pidfd of the other container's first process, checked against its start time, and
    /// the child's first step: setns(2) into that process's network namespace, before it
    /// mounts a `/sys` (which shows the interfaces of the namespace it is mounted from).
    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let short: String = self.id.chars().take(12).collect();
        // SAFETY: pidfd_open takes a pid and flags; it returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.process.pid, 0) };
        let fd = Errno::result(fd).map_err(|e| {
            FeatureError::with(format!("open container {short}'s first process"), e)
        })?;
        let fd = RawFd::try_from(fd)
            .map_err(|_| FeatureError::msg("pidfd_open returned a descriptor out of range"))?;
        // SAFETY: the kernel just returned this descriptor, owned by nobody else.
        let pidfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // Checked after opening: if the start time matches now, the pidfd holds that process.
        if !self.process.is_alive() {
            return Err(FeatureError::msg(format!(
                "cannot join network of a non running container: {short}"
            )));
        }
        plan.enter.push(Step::Custom(Arc::new(Enter {
            pidfd: Arc::new(pidfd),
            flags: libc::CLONE_NEWNET,
        })));
        Ok(())
    }
}
// ANCHOR_END: shared_network

/// setns(2) on a pidfd or a namespace file.
fn setns(fd: RawFd, flags: libc::c_int) -> Result<(), Errno> {
    // SAFETY: setns takes a descriptor and flags; it changes only this thread's namespaces.
    Errno::result(unsafe { libc::setns(fd, flags) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_of_our_own_has_nothing_to_join() {
        let pid = std::process::id();
        // SAFETY: pidfd_open with our own pid and no flags.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            eprintln!("skipped: pidfd_open is not available here");
            return;
        }
        // SAFETY: the kernel just returned this descriptor.
        let fd =
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd.try_into().unwrap()) };
        let join = Join::new(fd, pid.try_into().unwrap()).unwrap();
        assert!(join.namespaces.is_empty());
        let mut join = join;
        let mut plan = Plan::default();
        let err = join.prepare(&mut plan).unwrap_err();
        assert!(err.to_string().contains("mount namespace"), "{err}");
    }
}
