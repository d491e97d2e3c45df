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
//! A thread has a price, though: it shares the engine's memory. While it works, every page
//! the main thread copies on write (a fork's child writes to nearly every page it touches)
//! must be flushed from the other core's TLB too, an interrupt to that core each time, which
//! in a virtual machine costs as much as the work. So an engine that already has a second
//! process at hand, as stage 07 does when it double-forks its monitor, lets that process make
//! the namespace ([`make_and_send`]) and send it over a unix socket (`SCM_RIGHTS`): a process
//! of its own, with memory of its own. [`expect_from`] tells the next [`NetworkAhead::start`]
//! to take it from there instead of starting a thread.
//!
//! See unshare(2), setns(2), network_namespaces(7), proc_pid_ns(5) (`/proc/thread-self/ns`),
//! unix(7) (`SCM_RIGHTS`).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::thread::JoinHandle;

use nix::errno::Errno;

/// The file of the calling thread's network namespace.
const THREAD_NET: &CStr = c"/proc/thread-self/ns/net";

// ANCHOR: ahead
/// A network namespace being made on a thread of its own, or by another process.
///
/// The thread is always waited for: by [`NetworkAhead::join`], or when the value is dropped
/// unused. The process must have one thread again before it clones or forks, since a copy of
/// a process has only the thread that made it, and any lock another thread held (the
/// allocator's, say) stays held in the copy forever.
#[derive(Debug)]
pub struct NetworkAhead {
    maker: Option<Maker>,
}

#[derive(Debug)]
enum Maker {
    Thread(JoinHandle<Result<OwnedFd, Errno>>),
    /// The socket the namespace comes over, from another process.
    Process(OwnedFd),
}

/// The socket a network namespace made by another process comes over ([`make_and_send`]),
/// until a [`NetworkAhead::start`] takes it.
static OFFERED: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// The socket once the namespace came over it, until [`settle`]: the other process may still
/// be at work (stage 07's features' jobs), and closes it when it ends.
static AT_WORK: Mutex<Option<OwnedFd>> = Mutex::new(None);

impl NetworkAhead {
    /// Starts making a network namespace: takes the one another process is making, when
    /// [`expect_from`] said so, else starts a thread. `None` when no thread could be started
    /// (the clone then makes it, as it would have).
    pub fn start() -> Option<NetworkAhead> {
        if let Some(socket) = take_offer() {
            return Some(NetworkAhead {
                maker: Some(Maker::Process(socket)),
            });
        }
        std::thread::Builder::new()
            .name("skiff-netns".into())
            .stack_size(64 * 1024)
            .spawn(make)
            .ok()
            .map(|thread| NetworkAhead {
                maker: Some(Maker::Thread(thread)),
            })
    }

    /// Waits for the namespace: a descriptor that holds it.
    pub fn join(mut self) -> Result<OwnedFd, Errno> {
        self.wait()
    }

    fn wait(&mut self) -> Result<OwnedFd, Errno> {
        match self.maker.take() {
            Some(Maker::Thread(thread)) => thread.join().unwrap_or(Err(Errno::ECHILD)),
            Some(Maker::Process(socket)) => {
                let namespace = receive(&socket);
                if let Ok(mut at_work) = AT_WORK.lock() {
                    *at_work = Some(socket);
                }
                namespace
            }
            None => Err(Errno::ECHILD),
        }
    }
}

impl Drop for NetworkAhead {
    /// Not wanted after all (a feature failed, or the plan no longer asks for a new network
    /// namespace): the thread, or the other process's message, is waited for all the same, and
    /// the namespace let go. (The other process's end: [`settle`].)
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

/// On the thread (or in the process that sends it, [`make_and_send`]): a new network namespace
/// for this thread alone, kept as a descriptor. The namespace outlives the thread for as long as
/// the descriptor is open. Its loopback interface is up too: one step fewer for the child.
fn make() -> Result<OwnedFd, Errno> {
    // SAFETY: unshare(2) changes the calling thread's namespaces only.
    Errno::result(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
    // Should it fail, the child's own step says why.
    let _ = loopback_up();
    open_namespace(THREAD_NET)
}
// ANCHOR_END: ahead

/// `IFF_UP` as the `short` that `struct ifreq` holds (libc declares it as an `int`).
const IFF_UP: libc::c_short = 0x1;

// ANCHOR: loopback
/// Sets `IFF_UP` on `lo`, as `ip link set lo up` does: SIOCGIFFLAGS, then SIOCSIFFLAGS when
/// it is not up yet. Runs in the child between clone and exec, so only system calls; and where
/// a namespace is made ahead, there first, off the clock.
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: socket(2) with constant arguments; the descriptor is closed below.
    let fd = Errno::result(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // The request numbers are small; ioctl(2) takes them as a c_ulong with glibc, a c_int with
    // musl (`libc::Ioctl`), and the constants are c_ulong.
    #[allow(clippy::cast_possible_truncation)]
    let (get, set) = (
        libc::SIOCGIFFLAGS as libc::Ioctl,
        libc::SIOCSIFFLAGS as libc::Ioctl,
    );
    // SAFETY: the ioctls read and write the ifreq we own; the flags member of the union is
    // the one SIOCGIFFLAGS fills and SIOCSIFFLAGS reads.
    let result = unsafe {
        Errno::result(libc::ioctl(fd, get, &mut request)).and_then(|_| {
            if request.ifr_ifru.ifru_flags & IFF_UP != 0 {
                return Ok(0);
            }
            request.ifr_ifru.ifru_flags |= IFF_UP;
            Errno::result(libc::ioctl(fd, set, &request))
        })
    };
    // SAFETY: closes the socket opened above, once.
    unsafe { libc::close(fd) };
    result.map(drop)
}
// ANCHOR_END: loopback

// ANCHOR: serve
/// Tells the next [`NetworkAhead::start`] in this process to take the network namespace that
/// comes over unix socket `socket` (from a process running [`make_and_send`]) instead of
/// starting a thread. An offer no launch took is let go by [`settle`].
pub fn expect_from(socket: OwnedFd) {
    if let Ok(mut offered) = OFFERED.lock() {
        *offered = Some(socket);
    }
}

/// Waits until the process that offered a namespace has ended, with whatever it does after
/// sending it (stage 07 runs its features' [`crate::launch::Feature::ahead`] jobs there):
/// the socket's end of file, which comes when that process exits. An offer no launch took is
/// let go with the namespace that came with it. The launch settles before the features act on
/// the child (`started`) and before a failed launch cleans up, so that neither works beside
/// the jobs. Returns at once when no process was offered.
pub fn settle() {
    let offered = take_offer();
    let at_work = AT_WORK.lock().ok().and_then(|mut at_work| at_work.take());
    for socket in offered.into_iter().chain(at_work) {
        // A namespace still unread goes with the bytes read(2) takes: the kernel closes the
        // descriptors of a message read without room for them (unix(7)).
        let mut bytes = [0u8; 16];
        loop {
            match nix::unistd::read(&socket, &mut bytes) {
                Ok(0) => break,
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }
}

fn take_offer() -> Option<OwnedFd> {
    OFFERED.lock().ok().and_then(|mut offered| offered.take())
}

/// In the other process: makes a network namespace and sends it over `socket` at once; the
/// socket keeps it until it is read or closed. On failure nothing is sent, the socket closes
/// with this process, and the engine's clone makes the namespace. The calling process moves
/// into the new namespace and to `SCHED_IDLE`: call it in one that ends next.
///
/// `SCHED_IDLE` (sched(7)) because this work is worth doing only on a core nobody else wants:
/// on a core it shares with the engine (on a machine with one core, say), the engine takes the
/// core back whenever it wakes. (Where there are two, the caller had better have moved the
/// engine to another core: stage 07 does, with [`crate::launch::Cores`].) `before_send` runs
/// once the namespace is made or could not be, before the engine can hear of it: stage 07
/// gives the engine its cores back there. The process's own work after this returns, which the
/// engine waits for with [`settle`], runs at its usual priority again: it is no longer only
/// worth doing on an idle core (stage 07's features' jobs, [`crate::launch::Feature::ahead`]).
pub fn make_and_send(socket: &OwnedFd, before_send: impl FnOnce()) {
    // SAFETY: plain data; all-zero is priority 0, the only one SCHED_IDLE takes.
    let idle: libc::sched_param = unsafe { std::mem::zeroed() };
    // SAFETY: sched_setscheduler(2) of the calling thread, with a parameter we own. As a raw
    // system call: musl's wrapper only says ENOSYS.
    unsafe { libc::syscall(libc::SYS_sched_setscheduler, 0, libc::SCHED_IDLE, &idle) };
    let made = make();
    before_send();
    if let Ok(namespace) = made {
        let _ = crate::fdpass::send_fd(socket.as_raw_fd(), namespace.as_raw_fd());
    }
    let normal: libc::sched_param = idle;
    // SAFETY: as above, back to the default policy.
    unsafe { libc::syscall(libc::SYS_sched_setscheduler, 0, libc::SCHED_OTHER, &normal) };
}
// ANCHOR_END: serve

/// The namespace the other process sent; `ECHILD` when it closed the socket without one (it
/// could not make one).
fn receive(socket: &OwnedFd) -> Result<OwnedFd, Errno> {
    crate::fdpass::receive_fd(socket)?.ok_or(Errno::ECHILD)
}

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
pub(crate) mod tests {
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

    /// The offer is one per process (a static): tests that use it take turns.
    pub(crate) static TURN: Mutex<()> = Mutex::new(());

    /// Another process at work, as a thread: offers its end of a socket pair in this process,
    /// sends a descriptor over it when `sends` (any stands for the namespace: no root needed),
    /// works 50 ms more, then says it is done and closes its end. Returns the flag it sets.
    pub(crate) fn another_at_work(
        sends: bool,
    ) -> (
        std::sync::Arc<std::sync::atomic::AtomicBool>,
        std::thread::JoinHandle<()>,
    ) {
        let (mine, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        expect_from(mine.into());
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&done);
        let other = std::thread::spawn(move || {
            if sends {
                let null = std::fs::File::open("/dev/null").unwrap();
                crate::fdpass::send_fd(theirs.as_raw_fd(), null.as_raw_fd()).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(theirs);
        });
        (done, other)
    }

    fn loopback_is_up() -> bool {
        // SAFETY: a socket for one ioctl, closed below; the ifreq is ours.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            let mut request: libc::ifreq = std::mem::zeroed();
            for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
                *slot = *byte as libc::c_char;
            }
            #[allow(clippy::cast_possible_truncation)]
            let got = libc::ioctl(fd, libc::SIOCGIFFLAGS as libc::Ioctl, &mut request);
            libc::close(fd);
            got == 0 && request.ifr_ifru.ifru_flags & IFF_UP != 0
        }
    }

    #[test]
    fn a_namespace_made_by_another_arrives_new_with_its_loopback_up() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: making a network namespace needs root");
            return;
        }
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let before = own();
        let (mine, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        // A thread stands in for the other process: it moves only itself.
        let server = std::thread::spawn(move || make_and_send(&theirs.into(), || {}));
        expect_from(mine.into());
        let ahead = NetworkAhead::start().unwrap();
        assert!(
            matches!(ahead.maker, Some(Maker::Process(_))),
            "taken, not a thread"
        );
        let namespace = ahead.join().unwrap();
        server.join().unwrap();
        assert_ne!(inode(&namespace), before, "a new namespace");
        assert_eq!(own(), before, "this thread stayed where it was");
        let entered = Entered::enter(&namespace).unwrap();
        let up = loopback_is_up();
        entered.leave().unwrap();
        assert!(up, "its loopback is up already");
    }

    #[test]
    fn an_offer_not_taken_is_let_go_once_the_other_side_is_done() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let (done, other) = another_at_work(false);
        settle();
        assert!(
            done.load(std::sync::atomic::Ordering::SeqCst),
            "settle returned while the other side was still at work"
        );
        assert!(take_offer().is_none());
        other.join().unwrap();
    }

    #[test]
    fn settling_waits_for_the_sender_to_end_after_its_message() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let (done, other) = another_at_work(true);
        let ahead = NetworkAhead::start().expect("the offer was not taken");
        assert!(ahead.join().is_ok(), "the descriptor did not come");
        settle();
        assert!(
            done.load(std::sync::atomic::Ordering::SeqCst),
            "settle returned while the sender was still at work"
        );
        other.join().unwrap();
    }

    #[test]
    fn a_namespace_made_ahead_is_new_and_entering_it_comes_back() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: making a network namespace needs root");
            return;
        }
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
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
