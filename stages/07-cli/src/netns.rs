//! A running container's network namespace, held for `network connect` and `disconnect`.
//!
//! Stage 05 reaches a container's network namespace through a pid: it opens
//! `/proc/PID/ns/net`, and asks the kernel for a veth whose inside end is born in the
//! namespace of process PID (`IFLA_NET_NS_PID`). A pid is only a number. The record names the
//! container's first process by pid *and* start time, and the start time is checked first; but
//! if that process ended between the check and the use, and the number went to a new process,
//! the veth would land in a stranger's namespace. So the namespace is taken once, from the
//! very process the record names, and held:
//!
//! 1. `pidfd_open(pid)`, then the start time checked: the pidfd now holds *that* process,
//!    whatever happens to the number;
//! 2. `ioctl(pidfd, PIDFD_GET_NET_NAMESPACE)` (Linux 6.11) gives its network namespace, with no
//!    pid lookup at all. (On an older kernel the ioctl is unknown: `/proc/PID/ns/net` is
//!    opened, then `pidfd_send_signal(pidfd, 0)` says whether that process still lived after
//!    the open, and so whether the file was its namespace.)
//! 3. A *holder*, a child of this command, enters the namespace with setns(2) and waits. Its
//!    pid stands for the namespace for as long as the change takes: a child that nobody has
//!    reaped keeps its pid, so that number cannot go to anyone else. Once done, the holder is
//!    killed and reaped.
//!
//! See pidfd_open(2), ioctl_pidfd(2) (`PIDFD_GET_NET_NAMESPACE`), pidfd_send_signal(2),
//! setns(2).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{Context, anyhow};
use namespaces::record::ProcessRef;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

// ANCHOR: holder
/// The network namespace of a container's first process, held by a small child process.
pub struct NetnsHolder {
    pid: Pid,
}

impl NetnsHolder {
    /// Holds the network namespace of `process`, the first process of container `name`.
    pub fn of(process: ProcessRef, name: &str) -> anyhow::Result<NetnsHolder> {
        let not_running = || anyhow!("container {name} is not running");
        let pidfd = crate::lifecycle::open_process(process).ok_or_else(not_running)?;
        let netns = network_namespace(&pidfd, process.pid).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => not_running(),
            _ => anyhow!("open the network namespace of container {name}: {e}"),
        })?;
        let (ready, told) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .context("make a pipe for the namespace's holder")?;
        let pid = match chroot::launch::clone3(0)
            .context("start a process to hold the container's network namespace")?
        {
            None => hold(netns.as_raw_fd(), told.as_raw_fd()),
            Some(pid) => pid,
        };
        drop(told);
        let holder = NetnsHolder { pid };
        // One byte once it is inside; end of file when setns failed.
        let mut byte = [0u8; 1];
        match nix::unistd::read(&ready, &mut byte) {
            Ok(1) => Ok(holder),
            _ => Err(anyhow!(
                "enter the network namespace of container {name}: the holder could not"
            )),
        }
    }

    /// A pid that names the namespace until the holder is dropped.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }
}

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}
// ANCHOR_END: holder

// ANCHOR: network_namespace
/// The network namespace of the process `pidfd` holds (pid `pid`).
fn network_namespace(pidfd: &OwnedFd, pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: an ioctl without argument on a pidfd this process holds; it returns a new
    // descriptor or -1.
    let fd = unsafe { libc::ioctl(pidfd.as_raw_fd(), libc::PIDFD_GET_NET_NAMESPACE, 0) };
    if fd >= 0 {
        // SAFETY: the kernel just returned this descriptor, owned by nobody else.
        let netns = unsafe { OwnedFd::from_raw_fd(fd) };
        close_on_exec(&netns);
        return Ok(netns);
    }
    let error = io::Error::last_os_error();
    if !matches!(error.raw_os_error(), Some(libc::ENOTTY | libc::EINVAL)) {
        return Err(error);
    }
    // Before Linux 6.11: the path, then proof that the process outlived the open.
    let netns = OwnedFd::from(std::fs::File::open(format!("/proc/{pid}/ns/net"))?);
    // SAFETY: pidfd_send_signal with signal 0 only checks; null siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(netns)
}
// ANCHOR_END: network_namespace

fn close_on_exec(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
}

/// The holder, between clone and exit: system calls only. Enters the namespace, says so, and
/// waits to be killed (or dies with this command).
fn hold(netns: libc::c_int, told: libc::c_int) -> ! {
    // SAFETY: prctl, setns, write, pause and _exit on descriptors and a byte prepared before
    // the clone; nothing here allocates or takes a lock.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::setns(netns, libc::CLONE_NEWNET) != 0 {
            libc::_exit(1);
        }
        libc::write(told, b"1".as_ptr().cast(), 1);
        loop {
            libc::pause();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn netns_inode(pid: i32) -> u64 {
        std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .ino()
    }

    /// The holder stands for the namespace of the process it was given, also once that process
    /// is gone (when a bare pid could name anyone).
    #[test]
    fn the_holder_keeps_the_namespace_of_a_process_that_ended() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to make a network namespace");
            return;
        }
        let flags = u64::try_from(libc::CLONE_NEWNET).unwrap();
        let child = match chroot::launch::clone3(flags).unwrap() {
            // SAFETY: the child only waits to be killed.
            None => unsafe {
                loop {
                    libc::pause();
                }
            },
            Some(pid) => pid,
        };
        let inode = netns_inode(child.as_raw());
        assert_ne!(inode, netns_inode(std::process::id().cast_signed()));
        let holder = NetnsHolder::of(ProcessRef::of(child.as_raw()).unwrap(), "test").unwrap();
        kill(child, Signal::SIGKILL).unwrap();
        nix::sys::wait::waitpid(child, None).unwrap();
        assert_eq!(netns_inode(holder.pid()), inode);
        drop(holder);
    }

    #[test]
    fn a_process_that_ended_is_not_running() {
        let stale = ProcessRef {
            pid: std::process::id().cast_signed(),
            start: 1,
        };
        let error = NetnsHolder::of(stale, "web").err().unwrap();
        assert_eq!(error.to_string(), "container web is not running");
    }
}
