//! What can go wrong: bad limits on the command line ([`LimitError`], found before anything is
//! created), and the host refusing or lacking something ([`CgroupError`]).
//!
//! Every message names the flag or the cgroup file it is about, and says what to do. cgroup
//! files are kernel interfaces: a refused write usually means a value out of range (`EINVAL`),
//! a controller that is not enabled (`ENOENT`), or a cgroup that still holds processes (`EBUSY`).
//! See cgroups(7).

use std::path::PathBuf;

/// A limit flag that cannot be turned into a limit. The binary reports it and exits 125 before
/// anything exists on the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {value:?}: {reason}")]
pub struct LimitError {
    /// The flag, as the user typed it in its long form ("--memory").
    pub flag: &'static str,
    /// The value given.
    pub value: String,
    /// What is wrong with it and what would be right.
    pub reason: String,
}

impl LimitError {
    /// An error about `value` given to `flag`.
    pub fn new(flag: &'static str, value: &str, reason: impl Into<String>) -> Self {
        LimitError {
            flag,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// A failure to find, create, configure, read or remove a cgroup on the host.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// statfs(2) on the cgroup mount point failed.
    #[error("cannot tell the host's cgroup setup: statfs {path}: {source}")]
    Statfs {
        /// The path looked at.
        path: PathBuf,
        /// Why statfs failed.
        source: nix::errno::Errno,
    },
    /// Neither cgroup2 nor a tmpfs of v1 hierarchies is mounted where cgroups live.
    #[error(
        "no cgroup filesystem at {path} (filesystem type {magic:#x}): mount one \
         (mount -t cgroup2 none {path}) or run on a host with cgroups"
    )]
    NoCgroupFs {
        /// The path looked at.
        path: PathBuf,
        /// The filesystem's magic number, as statfs(2) reports it.
        magic: i64,
    },
    /// A v1 or hybrid host whose mount table lists no v1 hierarchy.
    #[error(
        "{path} holds cgroup v1 mounts but /proc/self/mountinfo lists no v1 hierarchy: \
         mount the controllers (mount -t cgroup -o memory cgroup {path}/memory) or run on a \
         cgroup v2 host"
    )]
    NoV1Hierarchy {
        /// The cgroup root.
        path: PathBuf,
    },
    /// A limit needs a v1 controller the host has not mounted.
    #[error(
        "cgroup v1 {controller} controller not mounted at {expected}: mount it or run on a \
         cgroup v2 host"
    )]
    ControllerMissing {
        /// The controller ("memory").
        controller: &'static str,
        /// Where it would be mounted.
        expected: PathBuf,
    },
    /// A limit needs a v2 controller the hierarchy does not offer.
    #[error(
        "cgroup v2 {controller} controller not available in {path}: it is missing from \
         cgroup.controllers there (it may be bound to a v1 hierarchy): free it or drop the flag \
         that needs it"
    )]
    V2ControllerMissing {
        /// The controller ("memory").
        controller: &'static str,
        /// The cgroup whose `cgroup.controllers` lacks it.
        path: PathBuf,
    },
    /// The container id or the parent path would escape the cgroup tree.
    #[error("invalid {what} {value:?}: {reason}")]
    BadName {
        /// "container id" or "cgroup parent".
        what: &'static str,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// mkdir(2) of a cgroup failed.
    #[error("create cgroup {path}: {source}{}", create_hint(source))]
    Create {
        /// The cgroup directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A write to a cgroup file failed.
    #[error("write {value:?} to {path}: {source}{}", write_hint(source))]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// Why.
        source: std::io::Error,
    },
    /// A freeze that did not complete in time.
    #[error(
        "the container's processes did not all stop within {seconds} s (one may be in an \
         uninterruptible kernel call): unpause it and try again"
    )]
    FreezeTimeout {
        /// How long skiff waited.
        seconds: u64,
    },
    /// A read of a cgroup file failed.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A cgroup file held something this code does not understand.
    #[error("read {path}: unexpected content {content:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held.
        content: String,
    },
    /// `--blkio-weight` on a host whose I/O controller offers no weight file.
    #[error(
        "--blkio-weight: {path} has no {files}: no block device uses a scheduler with weights \
         (bfq); switch one (echo bfq > /sys/block/DEV/queue/scheduler) or drop --blkio-weight"
    )]
    NoWeightFile {
        /// The container's I/O cgroup.
        path: PathBuf,
        /// The files looked for.
        files: &'static str,
    },
    /// `--memory-swap` on a host without swap accounting.
    #[error(
        "--memory-swap: {path} does not exist: this kernel does not account swap (boot it with \
         swapaccount=1) or drop --memory-swap"
    )]
    NoSwapAccounting {
        /// The swap limit file looked for.
        path: PathBuf,
    },
    /// Processes kept appearing in a cgroup being removed.
    #[error(
        "remove cgroup {path}: {count} processes still in it after killing them for {seconds} s: \
         kill them (cat {path}/cgroup.procs) and rmdir it"
    )]
    StillPopulated {
        /// The cgroup directory.
        path: PathBuf,
        /// How many were left at the last look.
        count: usize,
        /// How long it tried.
        seconds: u64,
    },
    /// The kernel refused the devices program (cgroup v2).
    #[error(
        "load the devices cgroup's eBPF program (BPF_PROG_LOAD): {errno}{}: the verifier said: {log}",
        bpf_hint(*errno)
    )]
    BpfLoad {
        /// Why.
        errno: nix::errno::Errno,
        /// The verifier's log, when it wrote one.
        log: String,
    },
    /// The devices program could not be attached to the container's cgroup (cgroup v2).
    #[error("attach the devices program to {path} (BPF_PROG_ATTACH): {errno}{}", bpf_hint(*errno))]
    BpfAttach {
        /// The cgroup directory.
        path: PathBuf,
        /// Why.
        errno: nix::errno::Errno,
    },
    /// rmdir(2) of a cgroup failed.
    #[error("remove cgroup {path}: {source}: remove it by hand (rmdir {path})")]
    Remove {
        /// The cgroup directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl CgroupError {
    /// The error came from a file or directory that does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        let io = match self {
            CgroupError::Create { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Read { source, .. }
            | CgroupError::Remove { source, .. } => source,
            _ => return false,
        };
        io.kind() == std::io::ErrorKind::NotFound
    }
}

fn create_hint(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EEXIST) => ": a cgroup with this container id exists already",
        Some(libc::EACCES | libc::EPERM) => ": creating cgroups needs root",
        Some(libc::EROFS) => ": the cgroup filesystem is mounted read-only here",
        _ => "",
    }
}

fn bpf_hint(errno: nix::errno::Errno) -> &'static str {
    match errno {
        nix::errno::Errno::EPERM => {
            ": loading eBPF programs needs root (CAP_BPF and CAP_SYS_ADMIN)"
        }
        _ => "",
    }
}

fn write_hint(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EINVAL) => ": the kernel refused the value",
        Some(libc::ENOENT) => ": the file is missing, so its controller is not enabled here",
        Some(libc::EBUSY) => ": the cgroup is busy (processes or children hold it)",
        Some(libc::ENOSPC) => {
            ": the cgroup cannot take processes yet (v1 cpuset without cpus or mems, or a v2 \
             parent with processes of its own)"
        }
        Some(libc::EACCES | libc::EPERM) => ": writing cgroup files needs root",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_message_reads_as_written() {
        let err = CgroupError::ControllerMissing {
            controller: "memory",
            expected: "/sys/fs/cgroup/memory".into(),
        };
        assert_eq!(
            err.to_string(),
            "cgroup v1 memory controller not mounted at /sys/fs/cgroup/memory: mount it or run \
             on a cgroup v2 host"
        );
    }

    #[test]
    fn a_refused_write_names_file_value_and_cause() {
        let err = CgroupError::Write {
            path: "/sys/fs/cgroup/memory/skiff/ab/memory.limit_in_bytes".into(),
            value: "12".into(),
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        };
        let text = err.to_string();
        assert!(text.contains("memory.limit_in_bytes"), "{text}");
        assert!(text.contains("\"12\""), "{text}");
        assert!(text.ends_with("the kernel refused the value"), "{text}");
    }

    #[test]
    fn a_limit_error_names_flag_and_value() {
        let err = LimitError::new("--memory", "abc", "expected a size");
        assert_eq!(err.to_string(), "--memory \"abc\": expected a size");
    }
}
