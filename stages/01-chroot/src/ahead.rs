//! A network namespace made ahead of the clone.
//!
//! Of the namespaces a container gets, a new network namespace is by far the dearest to make:
//! about a quarter of a millisecond on the machine the benchmarks ran on, against a few
//! microseconds for a UTS or PID namespace, because every protocol of the kernel sets up its
//! tables in it and a loopback device is registered. With `CLONE_NEWNET` in clone3(2)'s flags
//! that work happens inside the clone, while the engine waits, after everything else was
//! prepared. Yet nothing about an empty network namespace depends on the container: it can be
//! made earlier, beside the rest.
//!
//! So the feature that plans the namespaces starts a thread that makes one with unshare(2)
//! (a thread may have namespaces of its own) and keeps it open as a file descriptor
//! (`/proc/thread-self/ns/net`); the features go on preparing on the main thread, on the
//! machine's other core. Just before the clone the engine takes the descriptor, enters the
//! namespace with setns(2), clones without `CLONE_NEWNET` (the child is born where its parent
//! is), and goes back to its own namespace at once. The child is never anywhere else, so
//! nothing that later looks at it (a veth moved in by its pid) can tell the difference.
//!
//! Not with a user namespace: a network namespace belongs to the user namespace it was made
//! in, and the child's does not exist before the clone.
//!
//! See unshare(2), setns(2), network_namespaces(7), proc_pid_ns(5) (`/proc/thread-self/ns`).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread::JoinHandle;

use nix::errno::Errno;

/// The file of the calling thread's network namespace.
const THREAD_NET: &CStr = c"/proc/thread-self/ns/net";

// ANCHOR: ahead
/// A network namespace being made on a thread of its own.
///
/// The thread is always waited for: by [`NetworkAhead::join`], or when the value is dropped
/// unused. The process must have one thread again before it clones or forks, since a copy of
/// a process has only the thread that made it, and any lock another thread held (the
/// allocator's, say) stays held in the copy forever.
#[derive(Debug)]
pub struct NetworkAhead {
    thread: Option<JoinHandle<Result<OwnedFd, Errno>>>,
}

impl NetworkAhead {
    /// Starts making a network namespace; `None` when no thread could be started (the clone
    /// then makes it, as it would have).
    pub fn start() -> Option<NetworkAhead> {
        std::thread::Builder::new()
            .name("skiff-netns".into())
            .stack_size(64 * 1024)
            .spawn(make)
            .ok()
            .map(|thread| NetworkAhead {
                thread: Some(thread),
            })
    }

    /// Waits for the namespace: a descriptor that holds it.
    pub fn join(mut self) -> Result<OwnedFd, Errno> {
        self.wait()
    }

    fn wait(&mut self) -> Result<OwnedFd, Errno> {
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or(Err(Errno::ECHILD)),
            None => Err(Errno::ECHILD),
        }
    }
}

impl Drop for NetworkAhead {
    /// Not wanted after all (a feature failed, or the plan no longer asks for a new network
    /// namespace): the thread is waited for all the same, and the namespace let go.
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// On the thread: a new network namespace for this thread alone, kept as a descriptor. The
/// namespace outlives the thread for as long as the descriptor is open.
fn make() -> Result<OwnedFd, Errno> {
    // SAFETY: unshare(2) changes the calling thread's namespaces only.
    Errno::result(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
    open_namespace(THREAD_NET)
}
// ANCHOR_END: ahead

fn open_namespace(path: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: open(2) of a NUL-terminated path; the descriptor it returns is ours alone.
    let fd = Errno::result(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
    // SAFETY: a descriptor the kernel just returned, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

// ANCHOR: enter
/// The engine inside a network namespace made ahead, for the clone: dropping it (or
/// [`Entered::leave`]) goes back to the namespace it came from.
#[derive(Debug)]
pub struct Entered {
    /// The namespace the engine came from, until it went back.
    home: Option<OwnedFd>,
}

impl Entered {
    /// Enters `namespace`, keeping the way back.
    pub fn enter(namespace: &OwnedFd) -> Result<Entered, Errno> {
        let home = open_namespace(THREAD_NET)?;
        setns(namespace)?;
        Ok(Entered { home: Some(home) })
    }

    /// Goes back to the namespace the engine came from.
    pub fn leave(mut self) -> Result<(), Errno> {
        self.home.take().map_or(Ok(()), |home| setns(&home))
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            let _ = setns(&home);
        }
    }
}
// ANCHOR_END: enter

fn setns(namespace: &OwnedFd) -> Result<(), Errno> {
    // SAFETY: setns(2) with a descriptor we hold; it changes this thread's namespace only.
    Errno::result(unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn inode(fd: &OwnedFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .ino()
    }

    fn own() -> u64 {
        std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
    }

    #[test]
    fn a_namespace_made_ahead_is_new_and_entering_it_comes_back() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: making a network namespace needs root");
            return;
        }
        let before = own();
        let namespace = NetworkAhead::start().unwrap().join().unwrap();
        assert_ne!(inode(&namespace), before, "the thread made a new namespace");
        assert_eq!(own(), before, "the main thread stayed where it was");
        let entered = Entered::enter(&namespace).unwrap();
        assert_eq!(own(), inode(&namespace));
        entered.leave().unwrap();
        assert_eq!(own(), before);
        {
            let _entered = Entered::enter(&namespace).unwrap();
            assert_eq!(own(), inode(&namespace));
        }
        assert_eq!(own(), before, "dropped: back home");
    }
}
