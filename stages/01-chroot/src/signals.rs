//! Passing signals on: a `kill` aimed at the engine reaches the command.
//!
//! The engine blocks the signals it forwards and reads them from a signalfd(2), together with
//! SIGCHLD, which says the command ended. Blocking before the clone means no signal can arrive
//! while the child is half made; the child unblocks them again before exec. See signal(7),
//! sigprocmask(2).

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals the engine passes on to the command, as `docker run` does.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Catches the forwarded signals and SIGCHLD. Create it before launching, in a single-threaded
/// program: signal masks belong to threads.
pub struct Forwarder {
    fd: SignalFd,
}

impl Forwarder {
    /// Blocks the forwarded signals and SIGCHLD in this thread and opens a signalfd for them.
    pub fn install() -> nix::Result<Self> {
        let mut set = SigSet::empty();
        for signal in FORWARDED {
            set.add(signal);
        }
        set.add(Signal::SIGCHLD);
        set.thread_block()?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?;
        Ok(Forwarder { fd })
    }

    /// The signalfd, to wait on with poll(2) beside other descriptors.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Waits for the next signal. Returns one to forward, or `None` for SIGCHLD (a child ended:
    /// time to call waitpid) and for interruptions.
    pub fn next(&self) -> Option<Signal> {
        let info = self.fd.read_signal().ok()??;
        let signal = Signal::try_from(i32::try_from(info.ssi_signo).ok()?).ok()?;
        (signal != Signal::SIGCHLD).then_some(signal)
    }
}
