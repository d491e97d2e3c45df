//! The monitor's steady state: a small loop that moves bytes while the container runs.
//!
//! Starting a container takes the whole engine (images, networks, volumes, cgroups: every
//! stage's code), and so does cleaning up after it. Between the two, for hours or weeks, the
//! monitor only moves bytes: the container's output to its log and its attached clients, the
//! clients' input to it. So once the container runs, the monitor exec(2)s `skiff-pump`, a small
//! program of its own built from this module alone (or, when it is missing, skiff again in
//! this mode, which parses its arguments by hand), which keeps the descriptors it was given:
//! the container's streams, the attach socket, the clients. The container stays its child across the exec (exec keeps the
//! process; only the program changes). When the container's first process ends, the pump reaps
//! it and execs the full monitor once more to record the end, clean up and apply the restart
//! policy. That is how a monitor stays at about a megabyte of memory. The one other thing it
//! does is for `exec`: it starts the engine's helper for each process asked for
//! ([`ExecHelper`]) and reaps what ends of those, and of the processes it adopted. See
//! execve(2), poll(2), signalfd(2).
//!
//! ```text
//!  skiff container-monitor ID      prepare, launch, record "running"       (the whole engine)
//!     └─ exec skiff container-pump ...    output ──► log, clients          (this loop)
//!           └─ exec skiff container-monitor --finish ...   record, clean up, restart?
//! ```

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::attach::{self, FrameBuffer, Streams, kind};
use crate::logs::{LogOptions, LogWriter, Stream};

/// A client attached over the socket.
pub struct Client {
    /// Its connection.
    pub stream: UnixStream,
    /// The streams it wants.
    pub wants: Streams,
    buffer: FrameBuffer,
}

impl Client {
    /// A client that said it wants `wants`.
    pub fn new(stream: UnixStream, wants: Streams) -> Self {
        Client {
            stream,
            wants,
            buffer: FrameBuffer::default(),
        }
    }
}

// ANCHOR: accept
/// Who connected to the attach socket.
pub enum Accepted {
    /// A client of the container's streams.
    Client(Client),
    /// `exec`: a new process in the container, asked for with this request.
    Exec(UnixStream, Vec<u8>),
}

/// Accepts a connection and reads its first frame: HELLO from a client, which it sends first
/// thing (until then the monitor would not know which streams to send it, and a container's
/// first output could be lost), or EXEC from `exec`.
pub fn accept_any(listener: &UnixListener) -> Option<Accepted> {
    let (mut stream, _) = listener.accept().ok()?;
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let frame = attach::read_frame(&mut stream).ok()??;
    stream.set_read_timeout(None).ok()?;
    match frame {
        (kind::HELLO, payload) => {
            let wants = Streams::from_bits(payload.first().copied()?);
            Some(Accepted::Client(Client::new(stream, wants)))
        }
        (kind::EXEC, request) => Some(Accepted::Exec(stream, request)),
        _ => None,
    }
}

/// Accepts a client of the container's streams (an `exec` is turned away).
pub fn accept(listener: &UnixListener) -> Option<Client> {
    match accept_any(listener)? {
        Accepted::Client(client) => Some(client),
        Accepted::Exec(..) => None,
    }
}
// ANCHOR_END: accept

// ANCHOR: exec_helper
/// What the monitor needs to start a process that `exec` asked for: skiff's binary, the
/// store, the container.
///
/// The monitor starts `skiff container-exec` (the whole engine: namespaces, cgroup, user,
/// capabilities, seccomp), with the request on its stdin and the client's connection, and that
/// helper starts the process and pumps its streams. Both are the monitor's descendants, and
/// the monitor is a *child subreaper* (prctl(2) `PR_SET_CHILD_SUBREAPER`): when the helper
/// ends first (`exec -d`), its process is re-parented to the monitor, not to the host's init,
/// as Docker's are to their containerd-shim. So the monitor reaps them, `top` and the
/// container's cgroup hold them, and they end with the container.
#[derive(Debug, Clone)]
pub struct ExecHelper {
    /// skiff's own binary.
    pub engine: PathBuf,
    /// The store's root.
    pub root: PathBuf,
    /// The container's id.
    pub id: String,
}

impl ExecHelper {
    /// Starts the helper for `client`, which asked for `request`. The helper is reaped by
    /// [`reap_adopted`]; a helper that cannot start is reported to the client.
    fn start(&self, mut client: UnixStream, request: &[u8]) {
        use std::io::Write;
        let fd = keep(&client);
        let child = std::process::Command::new(&self.engine)
            .arg0("skiff")
            .arg("container-exec")
            .arg(&self.root)
            .arg(&self.id)
            .arg(&fd)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(mut child) => {
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = stdin.write_all(request);
                }
            }
            Err(e) => {
                let note = format!("start skiff container-exec: {e}");
                let _ = attach::write_frame(&mut client, kind::NOTE, note.as_bytes());
                let _ = attach::write_frame(&mut client, kind::EXIT, &126i32.to_be_bytes());
            }
        }
    }
}

/// Makes this process the reaper of its orphaned descendants (prctl(2)
/// `PR_SET_CHILD_SUBREAPER`); the setting lasts across execve(2).
pub fn adopt_orphans() {
    // SAFETY: prctl with an integer argument; it changes a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Reaps every child that ended but `first`, the container's first process, whose status
/// [`reap`] reads. Each is looked at without reaping first (`WNOWAIT`), so `first` is never
/// reaped here by mistake.
pub fn reap_adopted(first: i32) {
    use nix::sys::wait::{Id, WaitPidFlag, waitid, waitpid};
    loop {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        let Ok(status) = waitid(Id::All, flags) else {
            return;
        };
        match status.pid() {
            Some(pid) if pid.as_raw() != first => {
                let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
            }
            _ => return,
        }
    }
}
// ANCHOR_END: exec_helper

/// The container's streams, as the monitor holds them.
pub enum Ends {
    /// Pipes: where it writes the container's stdin (with `-i`), and reads stdout and stderr.
    Pipes {
        /// The container's stdin.
        stdin: Option<OwnedFd>,
        /// Its stdout.
        stdout: OwnedFd,
        /// Its stderr.
        stderr: OwnedFd,
    },
    /// A terminal's master side, read and written.
    Terminal(OwnedFd),
}

/// Everything the pump is handed over an exec: numbers in its arguments.
pub struct Handover {
    /// skiff's own binary, for the monitor's last part.
    pub engine: PathBuf,
    /// The store's root.
    pub root: PathBuf,
    /// The container's id.
    pub id: String,
    /// The container's first process, this process's child.
    pub pid: i32,
    /// The attach socket.
    pub listener: UnixListener,
    /// The container's streams.
    pub ends: Ends,
    /// The attached clients.
    pub clients: Vec<Client>,
    /// How the log rotates.
    pub log: LogOptions,
    /// The wait before a restart, for the monitor that comes after.
    pub backoff_ms: u64,
    /// The overlay networks the container is on (their ids), whose agents the pump keeps
    /// running: see [`keep_agents`].
    pub agents: Vec<String>,
}

/// A descriptor to pass on: no longer closed at exec.
pub fn keep(fd: &impl std::os::fd::AsRawFd) -> String {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor this process holds.
    unsafe { libc::fcntl(raw, libc::F_SETFD, 0) };
    raw.to_string()
}

impl Handover {
    /// The arguments after `container-pump`, with every descriptor kept open across the exec.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            self.engine.display().to_string(),
            self.root.display().to_string(),
            self.id.clone(),
            self.pid.to_string(),
            keep(&self.listener),
            self.log.max_size.unwrap_or(0).to_string(),
            self.log.max_file.to_string(),
            self.backoff_ms.to_string(),
            match self.agents.is_empty() {
                true => "-".to_string(),
                false => self.agents.join(","),
            },
        ];
        match &self.ends {
            Ends::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                args.push("pipes".into());
                args.push(keep(stdout));
                args.push(keep(stderr));
                args.push(stdin.as_ref().map_or("-".into(), keep));
            }
            Ends::Terminal(master) => {
                args.push("terminal".into());
                args.push(keep(master));
            }
        }
        for client in &self.clients {
            args.push(format!("{}:{}", keep(&client.stream), client.wants.bits()));
        }
        args
    }

    /// Reads the arguments back; `None` when they are not the pump's.
    fn parse(args: &[String]) -> Option<Handover> {
        fn fd(text: &str) -> Option<OwnedFd> {
            let raw: RawFd = text.parse().ok()?;
            // SAFETY: the monitor before the exec put this descriptor there for us alone.
            let fd = (raw > 2).then(|| unsafe { OwnedFd::from_raw_fd(raw) })?;
            // Ours alone again: no helper the pump starts inherits the container's streams
            // (a copy of the stdin pipe would keep the container's stdin from ever ending).
            close_on_exec(fd.as_fd());
            Some(fd)
        }
        let mut it = args.iter().map(String::as_str);
        let engine = PathBuf::from(it.next()?);
        let root = PathBuf::from(it.next()?);
        let id = it.next()?.to_string();
        let pid = it.next()?.parse().ok()?;
        let listener = UnixListener::from(fd(it.next()?)?);
        let max_size: u64 = it.next()?.parse().ok()?;
        let max_file = it.next()?.parse().ok()?;
        let backoff_ms = it.next()?.parse().ok()?;
        let agents = match it.next()? {
            "-" => Vec::new(),
            list => list.split(',').map(str::to_string).collect(),
        };
        let ends = match it.next()? {
            "pipes" => {
                let stdout = fd(it.next()?)?;
                let stderr = fd(it.next()?)?;
                let stdin = it.next()?;
                let stdin = if stdin == "-" { None } else { Some(fd(stdin)?) };
                Ends::Pipes {
                    stdin,
                    stdout,
                    stderr,
                }
            }
            "terminal" => Ends::Terminal(fd(it.next()?)?),
            _ => return None,
        };
        let clients = it
            .map(|client| {
                let (raw, bits) = client.split_once(':')?;
                Some(Client::new(
                    UnixStream::from(fd(raw)?),
                    Streams::from_bits(bits.parse().ok()?),
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Handover {
            engine,
            root,
            id,
            pid,
            listener,
            ends,
            clients,
            log: LogOptions {
                max_size: (max_size > 0).then_some(max_size),
                max_file,
            },
            backoff_ms,
            agents,
        })
    }
}

/// How the container's first process ended: its exit status, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The exit status, when it exited.
    pub code: Option<i32>,
    /// The signal, when one killed it.
    pub signal: Option<i32>,
}

impl Status {
    /// Docker's exit code: the status, or 128 + N.
    pub fn exit_code(self) -> i32 {
        match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 125,
        }
    }
}

// ANCHOR: main
/// `container-pump ARGS...`: pumps until the container's first process ends, reaps it, and
/// hands over to the monitor's last part. Returns only when it cannot exec.
pub fn main(args: &[String]) -> i32 {
    let Some(handover) = Handover::parse(args) else {
        eprintln!("skiff container-pump: bad arguments (this mode is for skiff's monitor only)");
        return 2;
    };
    let Handover {
        engine,
        root,
        id,
        pid,
        listener,
        ends,
        mut clients,
        log,
        backoff_ms,
        agents,
    } = handover;
    let dir = namespaces::record::container_dir(&root, &id);
    let mut writer = LogWriter::open(&crate::logs::log_path(&dir, &id), log).ok();
    if let Ok(mut pump) = Pump::new(pid, ends) {
        pump.serve_execs(ExecHelper {
            engine: engine.clone(),
            root: root.clone(),
            id: id.clone(),
        });
        // On an overlay network, a look at its agent every AGENT_CHECK; else only events.
        loop {
            let until = (!agents.is_empty()).then(|| Instant::now() + AGENT_CHECK);
            if pump.run(Some(&listener), &mut clients, &mut writer, until) {
                break;
            }
            keep_agents(&engine, &root, &agents);
        }
    }
    drop(writer);
    let status = reap(pid);
    crate::monitor::exec_finish(&engine, &root, &id, &listener, &clients, backoff_ms, status);
    2
}
// ANCHOR_END: main

// ANCHOR: keep_agents
/// How often the pump of a container on an overlay network looks at the network's agent: well
/// within the lease of this host's records in etcd (10 s).
const AGENT_CHECK: Duration = Duration::from_secs(3);

/// An overlay network's agent (its DNS server, which also keeps this host's records alive in
/// etcd) that is gone is started again: killed, it would let the records of this host's
/// containers expire while they run. It holds a lock on its file while it runs (flock(2)); a
/// lock the pump can take means nobody holds it, and then `skiff network dns-ensure` starts one
/// (the pump itself stays small: it only tries the lock).
fn keep_agents(engine: &std::path::Path, root: &std::path::Path, agents: &[String]) {
    for id in agents {
        let path = root.join("networks").join(format!("{id}.dns.lock"));
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        else {
            continue;
        };
        // SAFETY: flock on a descriptor this function owns; closing it drops the lock.
        let free = unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        } == 0;
        drop(file);
        if free {
            // Reaped with the other children that end (reap_adopted).
            let _ = std::process::Command::new(engine)
                .args(["network", "dns-ensure", "--root"])
                .arg(root)
                .arg(id)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
        }
    }
}
// ANCHOR_END: keep_agents

/// Waits for the container's first process and reaps it.
pub fn reap(pid: i32) -> Status {
    use nix::sys::wait::{WaitStatus, waitpid};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => {
                return Status {
                    code: Some(code),
                    signal: None,
                };
            }
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                return Status {
                    code: None,
                    signal: Some(signal as i32),
                };
            }
            Err(nix::errno::Errno::EINTR) | Ok(_) => {}
            Err(_) => {
                return Status {
                    code: None,
                    signal: None,
                };
            }
        }
    }
}

/// Opens a pidfd for `pid`: readable once the process has ended. See pidfd_open(2).
fn pidfd(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = RawFd::try_from(fd).map_err(io::Error::other)?;
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn close_on_exec(fd: BorrowedFd<'_>) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
}

fn set_nonblocking(fd: BorrowedFd<'_>) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}

/// A stream the container writes, and where it goes.
struct Output {
    fd: OwnedFd,
    stream: Stream,
    open: bool,
}

// ANCHOR: pump
/// The bytes of one running container: its streams, and a pidfd that says when its first
/// process has ended.
pub struct Pump {
    pid: i32,
    exited: OwnedFd,
    /// SIGCHLD, read from a signalfd: a helper or an adopted process ended.
    children: Option<SignalFd>,
    /// How to start what `exec` asks for; `None` where nobody asks (in `exec`'s own helper).
    execs: Option<ExecHelper>,
    outputs: Vec<Output>,
    stdin: Option<OwnedFd>,
    terminal: bool,
    buf: Vec<u8>,
}

impl Pump {
    /// A pump for the container whose first process is `pid` (this process's child).
    pub fn new(pid: i32, ends: Ends) -> io::Result<Pump> {
        let (outputs, stdin, terminal) = match ends {
            Ends::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                let output = |fd, stream| Output {
                    fd,
                    stream,
                    open: true,
                };
                let outputs = vec![
                    output(stdout, Stream::Stdout),
                    output(stderr, Stream::Stderr),
                ];
                (outputs, stdin, false)
            }
            Ends::Terminal(master) => {
                let input = master.try_clone().ok();
                let output = Output {
                    fd: master,
                    stream: Stream::Stdout,
                    open: true,
                };
                (vec![output], input, true)
            }
        };
        for output in &outputs {
            set_nonblocking(output.fd.as_fd());
        }
        // SIGCHLD is blocked for the signalfd to read it (this program has one thread).
        let mut sigchld = SigSet::empty();
        sigchld.add(Signal::SIGCHLD);
        let children = sigchld
            .thread_block()
            .and_then(|()| {
                SignalFd::with_flags(&sigchld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            })
            .ok();
        Ok(Pump {
            pid,
            exited: pidfd(pid)?,
            children,
            execs: None,
            outputs,
            stdin,
            terminal,
            buf: vec![0u8; 32 * 1024],
        })
    }

    /// Starts what `exec` asks for with `helper`.
    pub fn serve_execs(&mut self, helper: ExecHelper) {
        self.execs = Some(helper);
    }

    /// Moves bytes, the container's output to the log and the clients, the clients' input to
    /// it, until its first process has ended (`true`) or `until` has passed (`false`). Meanwhile
    /// starts what `exec` asks for, and reaps the children that end.
    pub fn run(
        &mut self,
        listener: Option<&UnixListener>,
        clients: &mut Vec<Client>,
        log: &mut Option<LogWriter>,
        until: Option<Instant>,
    ) -> bool {
        if let Some(listener) = listener {
            let _ = listener.set_nonblocking(true);
        }
        // The pidfd and the signalfd first, then the listener when there is one, the outputs,
        // the clients.
        let first_output = 2 + usize::from(listener.is_some());
        reap_adopted(self.pid);
        loop {
            let timeout = match until {
                None => PollTimeout::NONE,
                Some(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    PollTimeout::from(u16::try_from(left.as_millis()).unwrap_or(u16::MAX))
                }
            };
            let open: Vec<usize> = (0..self.outputs.len())
                .filter(|&i| self.outputs[i].open)
                .collect();
            let mut fds = vec![PollFd::new(self.exited.as_fd(), PollFlags::POLLIN)];
            // Without a signalfd, the pidfd stands in (and is looked at twice).
            let children = self
                .children
                .as_ref()
                .map_or(self.exited.as_fd(), AsFd::as_fd);
            fds.push(PollFd::new(children, PollFlags::POLLIN));
            fds.extend(listener.map(|l| PollFd::new(l.as_fd(), PollFlags::POLLIN)));
            fds.extend(
                open.iter()
                    .map(|&i| PollFd::new(self.outputs[i].fd.as_fd(), PollFlags::POLLIN)),
            );
            fds.extend(
                clients
                    .iter()
                    .map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return true,
            }
            let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
            let ended = ready(0);
            let child_ended = ready(1);
            let new_client = listener.is_some() && ready(2);
            let readable: Vec<usize> = (0..open.len())
                .filter(|&k| ready(first_output + k))
                .map(|k| open[k])
                .collect();
            let talking: Vec<usize> = (0..clients.len())
                .filter(|&k| ready(first_output + open.len() + k))
                .collect();
            drop(fds);
            // The clients first, while `talking` still indexes them: a drain below drops the
            // clients it cannot write to, and a gone client is both talking (hung up) and
            // unwritable.
            for k in talking.into_iter().rev() {
                if !self.serve(&mut clients[k]) {
                    clients.remove(k);
                }
            }
            for i in readable {
                drain(&mut self.outputs[i], &mut self.buf, log, clients);
            }
            if child_ended && let Some(children) = &self.children {
                while let Ok(Some(_)) = children.read_signal() {}
                reap_adopted(self.pid);
            }
            if new_client && let Some(listener) = listener {
                match accept_any(listener) {
                    Some(Accepted::Client(client)) => clients.push(client),
                    Some(Accepted::Exec(stream, request)) => match &self.execs {
                        Some(helper) => helper.start(stream, &request),
                        None => drop(stream),
                    },
                    None => {}
                }
            }
            if ended {
                // The process ended: what it wrote last is still in the pipes.
                for output in &mut self.outputs {
                    if output.open {
                        drain(output, &mut self.buf, log, clients);
                    }
                }
                if let Some(log) = log {
                    let _ = log.flush();
                }
                return true;
            }
        }
    }

    /// The container's streams again, for the pump program that takes over.
    pub fn into_ends(self) -> Ends {
        let mut outputs = self.outputs.into_iter().map(|o| o.fd);
        match (self.terminal, outputs.next(), outputs.next()) {
            (false, Some(stdout), Some(stderr)) => Ends::Pipes {
                stdin: self.stdin,
                stdout,
                stderr,
            },
            (_, Some(master), _) => Ends::Terminal(master),
            // A pump always has at least one output: a terminal, or stdout and stderr.
            (_, None, _) => Ends::Terminal(self.exited),
        }
    }

    /// Reads and obeys what a client sent; `false` when it is gone.
    fn serve(&mut self, client: &mut Client) -> bool {
        let n = match client.stream.read(&mut self.buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        client.buffer.extend(&self.buf[..n]);
        loop {
            let (frame, payload) = match client.buffer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return true,
                Err(_) => return false,
            };
            match frame {
                kind::STDIN if client.wants.stdin => {
                    if let Some(fd) = self.stdin.as_ref()
                        && write_all(fd.as_fd(), &payload).is_err()
                    {
                        self.stdin = None;
                    }
                }
                // The container's stdin closes with its client's (Docker's StdinOnce); a
                // terminal has no end of input to pass on.
                kind::STDIN_EOF if client.wants.stdin && !self.terminal => self.stdin = None,
                kind::RESIZE if payload.len() == 4 && self.terminal => {
                    if let Some(master) = self.outputs.first() {
                        let rows = u16::from_be_bytes([payload[0], payload[1]]);
                        let cols = u16::from_be_bytes([payload[2], payload[3]]);
                        crate::stdio::resize(&master.fd, rows, cols);
                    }
                }
                kind::SIGNAL if payload.len() == 4 => {
                    let number =
                        i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    if let Ok(signal) = nix::sys::signal::Signal::try_from(number) {
                        let pid = nix::unistd::Pid::from_raw(self.pid);
                        let _ = nix::sys::signal::kill(pid, signal);
                    }
                }
                _ => {}
            }
        }
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
