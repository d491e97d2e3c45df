//! The monitor: one small process per running container, which starts it, stays its parent,
//! owns its streams and its log, records how it ended, and starts it again when its restart
//! policy says so.
//!
//! A container's first process must have a parent that waits for it, or nobody learns its exit
//! code, nobody keeps its output, and nobody removes its cgroup, overlay mount and veth when it
//! ends. Docker's daemon hands that job to `containerd-shim`; Podman, which has no daemon, to
//! `conmon`. skiff has no daemon either, and does what Podman does: `skiff run` and `start`
//! start a monitor (skiff's own binary again, `skiff container-monitor ID`), away from the
//! terminal and the command that typed it (a new session, after a double fork), and the monitor
//! starts the container:
//!
//! ```text
//!  skiff run/start      spawns the monitor ──────► reads one line: started, or the error
//!  monitor              prepares the container from its record (stages 01-06)
//!                       launches it: stdout/stderr into pipes, or a terminal (-t)
//!                       record: running, pid and start time ──► "started"
//!                       loop: output ──► json-file log and attached clients
//!                             clients' input ──► the container's stdin, resizes, signals
//!                       the exit: features clean up (the writable layer stays)
//!                       record: exited, exit code, OOM, finished
//!                       restart policy? wait, start again : leave (--rm: remove it)
//! ```
//!
//! The container's first process dies with its monitor (`PR_SET_PDEATHSIG`), so a killed
//! monitor cannot leave a container that nobody watches: the next command that looks at the
//! record finds the monitor gone (its pid and start time no longer match) and sweeps the
//! container's host state away from the record alone.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use chroot::LaunchError;
use namespaces::ContainerId;
use namespaces::record::{ProcessRef, Status};
use namespaces::records::Records;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::attach::{self, FrameBuffer, Streams, kind};
use crate::container::Record;
use crate::logs::{LogOptions, LogWriter, Stream};
use crate::restart::{Backoff, RestartPolicy};
use crate::stdio::{Ends, Stdio};

/// What the monitor tells the command that started it, in one line of JSON on the report pipe.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Report {
    /// The container runs: its first process.
    Started(i32),
    /// The start failed: Docker's exit code for it, and why.
    Failed(i32, String),
}

/// A client attached over the socket.
struct Client {
    stream: UnixStream,
    wants: Streams,
    buffer: FrameBuffer,
}

/// How one run ended.
struct Ended {
    code: i32,
    oom: bool,
}

/// A start that failed before the command ran.
struct Failed {
    code: i32,
    message: String,
}

fn failed(error: anyhow::Error) -> Failed {
    let code = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<LaunchError>())
        .map_or(chroot::cli::EXIT_ENGINE, LaunchError::exit_code);
    Failed {
        code,
        message: chroot::cli::one_line(&error),
    }
}

// ANCHOR: monitor
/// The monitor's life: starts container `id` of the store at `root`, and starts it again
/// while its restart policy says so. `report` is the pipe to the command that started it;
/// `listener` the attach socket it made, where `expect_client` says one client is waiting.
pub fn run(
    root: &Path,
    id: &str,
    mut report: Option<File>,
    listener: Option<UnixListener>,
    expect_client: bool,
) -> i32 {
    let records = Records::new(root);
    let record = match records.load::<crate::spec::RunArgs>(id) {
        Ok(Some(record)) => record,
        Ok(None) => {
            return send_report(
                &mut report,
                &Report::Failed(1, format!("No such container: {id}")),
            );
        }
        Err(e) => return send_report(&mut report, &Report::Failed(1, e.to_string())),
    };
    let dir = records.dir(id);
    let listener = match listener.map_or_else(|| attach::listen(&dir), Ok) {
        Ok(listener) => listener,
        Err(e) => {
            let message = format!(
                "listen on {}: {e}",
                dir.join(attach::socket_name()).display()
            );
            return send_report(&mut report, &Report::Failed(125, message));
        }
    };
    let mut clients = Vec::new();
    if expect_client && let Some(client) = accept_waiting(&listener) {
        clients.push(client);
    }
    let _ = listener.set_nonblocking(true);
    let policy = record.spec.restart_policy().unwrap_or(RestartPolicy::No);
    let log_options = LogOptions::parse(&record.spec.lifecycle.log_opt).unwrap_or_default();
    let mut log = LogWriter::open(&crate::logs::log_path(&dir, id), log_options).ok();
    let mut backoff = Backoff::default();
    let mut record = record;
    loop {
        let began = Instant::now();
        let ended = run_once(
            &records,
            &record,
            &listener,
            &mut clients,
            &mut log,
            &mut report,
        );
        let ended = match ended {
            Ok(ended) => ended,
            Err(failure) => {
                let never_ran = record.state.started_at.is_none();
                update(&records, id, |r| {
                    r.state.status = if never_ran {
                        Status::Created
                    } else {
                        Status::Exited
                    };
                    r.state.exit_code = failure.code;
                    r.state.error = failure.message.clone();
                    r.state.pid = None;
                    r.state.monitor = None;
                });
                send_report(&mut report, &Report::Failed(failure.code, failure.message));
                for client in &mut clients {
                    let _ = attach::write_frame(
                        &mut client.stream,
                        kind::EXIT,
                        &failure.code.to_be_bytes(),
                    );
                }
                if record.spec.auto_remove() {
                    crate::lifecycle::sweep_removed(root, &record, true);
                }
                return 1;
            }
        };
        // The clients of this run learn how it ended, and go: a restart is a new run.
        for mut client in clients.drain(..) {
            let _ = attach::write_frame(&mut client.stream, kind::EXIT, &ended.code.to_be_bytes());
        }
        let now = images::human::now_rfc3339();
        let Some(after) = update(&records, id, |r| {
            r.state.status = Status::Exited;
            r.state.exit_code = ended.code;
            r.state.oom_killed = ended.oom;
            r.state.finished_at = Some(now.clone());
            r.state.pid = None;
        }) else {
            // Removed meanwhile (--rm, or rm -f): nothing left to record.
            return 0;
        };
        if !policy.restarts(
            ended.code,
            after.state.restart_count,
            after.state.stopped_by_user,
        ) {
            break;
        }
        let wait = backoff.after(began.elapsed());
        update(&records, id, |r| {
            r.state.status = Status::Restarting;
            r.state.restart_count += 1;
        });
        if !sleep_unless_stopped(&records, id, wait) {
            update(&records, id, |r| r.state.status = Status::Exited);
            break;
        }
        match records.load::<crate::spec::RunArgs>(id) {
            Ok(Some(fresh)) => record = fresh,
            _ => return 0,
        }
    }
    update(&records, id, |r| r.state.monitor = None);
    if record.spec.auto_remove() {
        crate::lifecycle::sweep_removed(root, &record, true);
    }
    0
}
// ANCHOR_END: monitor

/// Waits up to two seconds for the client that the starting command connected already.
fn accept_waiting(listener: &UnixListener) -> Option<Client> {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(2000u16)).ok()?;
    accept(listener)
}

// ANCHOR: accept
/// Accepts a client and reads its HELLO, which it sends first thing: until then the monitor
/// would not know which streams to send it, and a container's first output could be lost.
fn accept(listener: &UnixListener) -> Option<Client> {
    let (mut stream, _) = listener.accept().ok()?;
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let wants = match attach::read_frame(&mut stream) {
        Ok(Some((kind::HELLO, payload))) => Streams::from_bits(payload.first().copied()?),
        _ => return None,
    };
    stream.set_read_timeout(None).ok()?;
    Some(Client {
        stream,
        wants,
        buffer: FrameBuffer::default(),
    })
}
// ANCHOR_END: accept

/// Changes the record under the store's lock; `None` when the container is gone.
fn update(records: &Records, id: &str, change: impl FnOnce(&mut Record)) -> Option<Record> {
    let locked = records.lock().ok()?;
    locked.update(id, change).ok().flatten()
}

/// Sends the report once; returns the code the monitor exits with.
fn send_report(report: &mut Option<File>, message: &Report) -> i32 {
    if let Some(mut pipe) = report.take() {
        let line = serde_json::to_string(message).unwrap_or_default();
        let _ = writeln!(pipe, "{line}");
    }
    match message {
        Report::Started(_) => 0,
        Report::Failed(..) => 1,
    }
}

/// Sleeps before a restart; `false` when `stop`, `kill` or `rm` ended the container meanwhile.
fn sleep_unless_stopped(records: &Records, id: &str, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    loop {
        match records.load::<serde_json::Value>(id) {
            Ok(Some(record)) if !record.state.stopped_by_user => {}
            _ => return false,
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

// ANCHOR: run_once
/// One run: prepares the container from its record, launches it, pumps its streams until it
/// ends, and lets its features clean up.
fn run_once(
    records: &Records,
    record: &Record,
    listener: &UnixListener,
    clients: &mut Vec<Client>,
    log: &mut Option<LogWriter>,
    report: &mut Option<File>,
) -> Result<Ended, Failed> {
    let spec = &record.spec;
    let id = ContainerId::from_hex(&record.id)
        .ok_or_else(|| failed(anyhow::anyhow!("bad container id {}", record.id)))?;
    let mut prepared = volumes::cli::prepare(&spec.volumes, id).map_err(failed)?;
    let container = &mut prepared.container.prepared;
    if !spec.auto_remove() {
        container.keep();
    }
    let tty = spec.lifecycle.tty;
    if tty && container.process.get_env("TERM").is_none() {
        // What Docker sets for -t: programs need to know what the terminal understands.
        container.process.set_env("TERM", "xterm");
    }
    let io_failed =
        |e: io::Error| failed(anyhow::Error::from(e).context("make the container's stdio"));
    let pending = if tty {
        let (stdio, socket) = Stdio::terminal().map_err(io_failed)?;
        container.add(stdio);
        Pending::Console(socket)
    } else {
        let (stdio, ends) = Stdio::pipes(spec.lifecycle.interactive).map_err(io_failed)?;
        container.add(stdio);
        Pending::Pipes(ends)
    };
    let running = container.spawn().map_err(|e| failed(e.into()))?;
    let pid = running.pid().as_raw();
    // The terminal's master arrives from the container once it made it.
    let ends = match pending {
        Pending::Pipes(ends) => ends,
        Pending::Console(socket) => {
            Ends::Terminal(crate::stdio::receive_master(&socket).map_err(io_failed)?)
        }
    };
    let now = images::human::now_rfc3339();
    let me = ProcessRef::of(std::process::id().cast_signed());
    let child = ProcessRef::of(pid);
    update(records, &record.id, |r| {
        r.state.status = Status::Running;
        r.state.pid = child;
        r.state.monitor = me;
        r.state.started_at = Some(now.clone());
        r.state.exit_code = 0;
        r.state.error.clear();
        r.state.oom_killed = false;
        r.state.stopped_by_user = false;
    });
    send_report(report, &Report::Started(pid));
    pump(pid, ends, listener, clients, log);
    let exit = running.wait().map_err(|e| failed(e.into()))?;
    Ok(Ended {
        code: exit.code(),
        oom: exit.oom_killed,
    })
}
// ANCHOR_END: run_once

/// The container's streams before it started: pipes are made in advance; a terminal's master
/// arrives over the console socket once the container made it.
enum Pending {
    Pipes(Ends),
    Console(OwnedFd),
}

/// Opens a pidfd for `pid`: readable once the process has ended. See pidfd_open(2).
fn pidfd(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(i32::try_from(fd).map_err(io::Error::other)?) })
}

fn set_nonblocking(fd: BorrowedFd<'_>) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
}

/// A stream the container writes, and where it goes.
struct Output {
    fd: OwnedFd,
    stream: Stream,
    open: bool,
}

// ANCHOR: pump
/// Moves bytes until the container's first process has ended: its output to the log and the
/// clients, the clients' input to it.
fn pump(
    pid: i32,
    ends: Ends,
    listener: &UnixListener,
    clients: &mut Vec<Client>,
    log: &mut Option<LogWriter>,
) {
    let (mut outputs, mut stdin, terminal) = match ends {
        Ends::Pipes {
            stdin,
            stdout,
            stderr,
        } => (
            vec![
                Output {
                    fd: stdout,
                    stream: Stream::Stdout,
                    open: true,
                },
                Output {
                    fd: stderr,
                    stream: Stream::Stderr,
                    open: true,
                },
            ],
            stdin,
            None,
        ),
        Ends::Terminal(master) => {
            let input = master.try_clone().ok();
            (
                vec![Output {
                    fd: master,
                    stream: Stream::Stdout,
                    open: true,
                }],
                input,
                Some(()),
            )
        }
    };
    for output in &outputs {
        set_nonblocking(output.fd.as_fd());
    }
    let Ok(exited) = pidfd(pid) else {
        return;
    };
    let mut buf = vec![0u8; 32 * 1024];
    let mut done = false;
    while !done {
        let mut fds = vec![
            PollFd::new(exited.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ];
        let open: Vec<usize> = (0..outputs.len()).filter(|&i| outputs[i].open).collect();
        fds.extend(
            open.iter()
                .map(|&i| PollFd::new(outputs[i].fd.as_fd(), PollFlags::POLLIN)),
        );
        fds.extend(
            clients
                .iter()
                .map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLIN)),
        );
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        done = ready(0);
        let new_client = ready(1);
        let readable: Vec<usize> = open
            .iter()
            .enumerate()
            .filter(|(k, _)| ready(2 + k))
            .map(|(_, &i)| i)
            .collect();
        let talking: Vec<usize> = (0..clients.len())
            .filter(|&k| ready(2 + open.len() + k))
            .collect();
        drop(fds);
        for i in readable {
            drain(&mut outputs[i], &mut buf, log, clients);
        }
        if new_client && let Some(client) = accept(listener) {
            clients.push(client);
        }
        let mut gone = Vec::new();
        for k in talking {
            if !serve(
                &mut clients[k],
                &mut stdin,
                terminal.is_some(),
                pid,
                &outputs,
                &mut buf,
            ) {
                gone.push(k);
            }
        }
        for k in gone.into_iter().rev() {
            clients.remove(k);
        }
    }
    // The process ended: what it wrote last is still in the pipes.
    for output in &mut outputs {
        if output.open {
            drain(output, &mut buf, log, clients);
        }
    }
    if let Some(log) = log {
        let _ = log.flush();
    }
}
// ANCHOR_END: pump

/// Reads what `output` holds now, into the log and to the clients that want it.
fn drain(
    output: &mut Output,
    buf: &mut [u8],
    log: &mut Option<LogWriter>,
    clients: &mut Vec<Client>,
) {
    loop {
        match nix::unistd::read(output.fd.as_fd(), buf) {
            Ok(0) => {
                output.open = false;
                return;
            }
            Ok(n) => {
                let data = &buf[..n];
                if let Some(log) = log {
                    let _ = log.write(output.stream, data);
                }
                let frame = match output.stream {
                    Stream::Stdout => kind::STDOUT,
                    Stream::Stderr => kind::STDERR,
                };
                clients.retain_mut(|client| {
                    let wanted = match output.stream {
                        Stream::Stdout => client.wants.stdout,
                        Stream::Stderr => client.wants.stderr,
                    };
                    !wanted || attach::write_frame(&mut client.stream, frame, data).is_ok()
                });
            }
            Err(nix::errno::Errno::EINTR) => {}
            // Nothing more for now.
            Err(nix::errno::Errno::EAGAIN) => return,
            // EIO: a terminal whose other side is closed.
            Err(_) => {
                output.open = false;
                return;
            }
        }
    }
}

/// Reads and obeys what a client sent; `false` when it is gone.
fn serve(
    client: &mut Client,
    stdin: &mut Option<OwnedFd>,
    terminal: bool,
    pid: i32,
    outputs: &[Output],
    buf: &mut [u8],
) -> bool {
    let n = match client.stream.read(buf) {
        Ok(0) | Err(_) => return false,
        Ok(n) => n,
    };
    client.buffer.extend(&buf[..n]);
    loop {
        let (frame, payload) = match client.buffer.next_frame() {
            Ok(Some(frame)) => frame,
            Ok(None) => return true,
            Err(_) => return false,
        };
        match frame {
            kind::STDIN if client.wants.stdin => {
                if let Some(fd) = stdin.as_ref()
                    && write_all(fd.as_fd(), &payload).is_err()
                {
                    *stdin = None;
                }
            }
            // The container's stdin closes with its client's (Docker's StdinOnce); a terminal
            // has no end of input to pass on.
            kind::STDIN_EOF if client.wants.stdin && !terminal => *stdin = None,
            kind::RESIZE if payload.len() == 4 => {
                if let Some(master) = outputs.first().filter(|_| terminal) {
                    let rows = u16::from_be_bytes([payload[0], payload[1]]);
                    let cols = u16::from_be_bytes([payload[2], payload[3]]);
                    crate::stdio::resize(&master.fd, rows, cols);
                }
            }
            kind::SIGNAL if payload.len() == 4 => {
                let number = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                if let Ok(signal) = nix::sys::signal::Signal::try_from(number) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
                }
            }
            _ => {}
        }
    }
}

/// Writes all of `data` to `fd`, which may be nonblocking.
fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(1000u16));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The report a starting command reads: the first line the monitor writes, or end of file
/// when it died first.
pub fn read_report(pipe: File) -> Report {
    let mut line = String::new();
    let mut reader = io::BufReader::new(pipe);
    match io::BufRead::read_line(&mut reader, &mut line) {
        Ok(n) if n > 0 => serde_json::from_str(&line).unwrap_or_else(|e| {
            Report::Failed(
                125,
                format!("the monitor's report {line:?} does not parse: {e}"),
            )
        }),
        _ => Report::Failed(
            125,
            "the container's monitor ended before it could start the container".into(),
        ),
    }
}
