//! The attached side: a terminal talking to a container through its monitor (`run` in the
//! foreground, `start -a`, `attach`).
//!
//! The client sends what it reads from its stdin, its terminal's size (again on every
//! SIGWINCH), and, without a terminal, the signals it gets (`--sig-proxy`: Ctrl-C in the
//! client's terminal reaches the container as SIGINT); it writes what the container writes to
//! its own stdout and stderr, and ends with the container's exit code. With `-t` its terminal
//! is in raw mode, so every key goes to the container's terminal as typed, Ctrl-C included,
//! and the detach keys (ctrl-p ctrl-q) leave the container running. See termios(3).

use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use chroot::signals::Forwarder;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use crate::attach::{self, DetachKeys, DetachWatch, Streams, kind};

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container ended with this code.
    Exited(i32),
    /// The detach keys were typed: the container runs on.
    Detached,
    /// The monitor went away without a word.
    Lost,
}

/// How to attach.
pub struct Options {
    /// The streams wanted.
    pub streams: Streams,
    /// The container has a terminal (`-t`).
    pub tty: bool,
    /// Pass signals on (without a terminal).
    pub sig_proxy: bool,
    /// The keys that detach.
    pub detach_keys: DetachKeys,
}

// ANCHOR: raw_mode
/// This terminal in raw mode, restored when dropped.
pub(crate) struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    /// Puts stdin, when it is a terminal, in raw mode: no echo, no line editing, no signals
    /// from keys; the container's terminal does all of that.
    pub(crate) fn enter() -> Option<RawMode> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        let saved = tcgetattr(io::stdin()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(io::stdin(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        let _ = tcsetattr(io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}
// ANCHOR_END: raw_mode

/// This terminal's size, rows and columns, as a RESIZE payload.
pub(crate) fn window_size() -> Option<[u8; 4]> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO] {
        // SAFETY: TIOCGWINSZ fills a winsize we own.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0 && size.ws_row > 0 {
            let [r1, r2] = size.ws_row.to_be_bytes();
            let [c1, c2] = size.ws_col.to_be_bytes();
            return Some([r1, r2, c1, c2]);
        }
    }
    None
}

fn send(writer: &Mutex<UnixStream>, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut stream = writer
        .lock()
        .map_err(|_| io::Error::other("attach socket poisoned"))?;
    attach::write_frame(&mut *stream, kind, payload)
}

/// Connects to the attach socket of the container in `dir` and says which streams it wants:
/// the first frame, which the monitor reads as it accepts.
pub fn connect(dir: &std::path::Path, streams: Streams) -> io::Result<UnixStream> {
    let mut stream = attach::connect(dir)?;
    attach::write_frame(&mut stream, kind::HELLO, &[streams.bits()])?;
    Ok(stream)
}

// ANCHOR: relay
/// Relays between this process's stdio and the container until it ends or the client
/// detaches, on a `stream` from [`connect`]. `forwarder` catches the signals (install it
/// before any thread starts).
pub fn relay(stream: UnixStream, options: &Options, forwarder: &Forwarder) -> io::Result<Ended> {
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    let _raw = (options.tty && io::stdin().is_terminal())
        .then(RawMode::enter)
        .flatten();
    if options.tty
        && let Some(size) = window_size()
    {
        send(&writer, kind::RESIZE, &size)?;
    }
    let detached = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if options.streams.stdin {
        let writer = writer.clone();
        let detached = detached.clone();
        let mut watch = options
            .tty
            .then(|| DetachWatch::new(options.detach_keys.clone()));
        let reader = stream.try_clone()?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 32 * 1024];
            let mut stdin = io::stdin().lock();
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = send(&writer, kind::STDIN_EOF, &[]);
                        return;
                    }
                    Ok(n) => n,
                };
                let (data, detach) = match &mut watch {
                    Some(watch) => watch.feed(&buf[..n]),
                    None => (buf[..n].to_vec(), false),
                };
                if !data.is_empty() && send(&writer, kind::STDIN, &data).is_err() {
                    return;
                }
                if detach {
                    detached.store(true, std::sync::atomic::Ordering::SeqCst);
                    // Wakes the main thread, which reads end-of-file now.
                    let _ = reader.shutdown(std::net::Shutdown::Read);
                    return;
                }
            }
        });
    }
    let mut reader = stream;
    loop {
        let mut fds = [
            PollFd::new(reader.as_fd(), PollFlags::POLLIN),
            PollFd::new(forwarder.fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let socket_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let signal_ready = fds[1].revents().is_some_and(|r| !r.is_empty());
        if signal_ready && let Some(signal) = forwarder.next() {
            if signal == Signal::SIGWINCH {
                if options.tty
                    && let Some(size) = window_size()
                {
                    let _ = send(&writer, kind::RESIZE, &size);
                }
            } else if options.sig_proxy && !options.tty {
                let _ = send(&writer, kind::SIGNAL, &(signal as i32).to_be_bytes());
            }
        }
        if !socket_ready {
            continue;
        }
        let frame = attach::read_frame(&mut reader).unwrap_or_default();
        let Some((frame, payload)) = frame else {
            if detached.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(Ended::Detached);
            }
            return Ok(Ended::Lost);
        };
        match frame {
            kind::STDOUT => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(&payload).and_then(|()| out.flush());
            }
            kind::STDERR => {
                let mut err = io::stderr().lock();
                let _ = err.write_all(&payload).and_then(|()| err.flush());
            }
            kind::NOTE => eprintln!("skiff: {}", String::from_utf8_lossy(&payload)),
            kind::EXIT if payload.len() == 4 => {
                let code = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                return Ok(Ended::Exited(code));
            }
            _ => {}
        }
    }
}
// ANCHOR_END: relay
