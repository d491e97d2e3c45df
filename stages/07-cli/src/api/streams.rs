//! The container endpoints that stream: `attach` (the connection hijacked into the
//! container's streams), `wait` (an answer that comes when the container ends) and `logs`.
//!
//! `docker run` without `-d` is four requests, in this order: create, attach, wait, start. The
//! attach comes before the container runs, so that not a byte of output is missed: the service
//! makes the container's attach socket then, connects to it, and keeps the listening socket
//! until the start hands it to the new monitor (as `skiff run` hands its own over, see
//! [`crate::cli::run`]). From then on the service only copies: the monitor's frames to the
//! client, the client's bytes to the monitor as stdin.
//!
//! Without a tty the client gets Docker's multiplexed stream, whose frames have the header that
//! skiff's own attach protocol ([`crate::attach`]) borrowed:
//!
//! ```text
//!  byte 0: stream (1 stdout, 2 stderr)   1-3: zero   4-7: length, big-endian   payload...
//! ```
//!
//! With a tty there is one stream and no header: the terminal's bytes as they come.
//! Reference: Engine API v1.41, ContainerAttach ("Stream format"), ContainerWait, ContainerLogs.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv};
use serde_json::json;

use super::containers::{find, is_live};
use super::http::{self, Conn, Reader, Request};
use super::{ApiError, Next, Reply, Service};
use crate::attach::{self, Streams, kind};

// ANCHOR: attach
/// `POST /containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1`: hijacks the connection,
/// then copies between it and the container's monitor until the container ends.
pub fn attach(
    service: &Service,
    conn: &mut Conn,
    request: &Request,
    reader: &mut Reader,
    key: &str,
) -> Reply {
    let record = find(service, key)?;
    let streams = Streams {
        stdin: request.flag("stdin") && record.config.open_stdin,
        stdout: request.flag("stdout"),
        stderr: request.flag("stderr"),
    };
    let dir = crate::container::records(&service.root).dir(&record.id);
    let monitor = if record.state.is_running() {
        crate::client::connect(&dir, streams)
    } else {
        // Not running yet: the socket is made now, and the start gives it to the monitor.
        let mut pending = service
            .pending
            .lock()
            .map_err(|_| ApiError::new(500, "the service's attach table is poisoned"))?;
        if !pending.contains_key(&record.id) {
            pending.insert(record.id.clone(), attach::listen(&dir)?);
        }
        crate::client::connect(&dir, streams)
    }
    .map_err(|e| ApiError::new(500, format!("attach to container {}: {e}", record.name)))?;
    let tty = record.config.tty;
    http::hijack(conn, !tty)?;
    if request.flag("logs") {
        replay(service, conn, &record, streams, tty)?;
    }
    // The client's side: stdin, or the end of the connection.
    let early = reader.take_buffered();
    let mut input = conn.try_clone()?;
    let mut to_monitor = monitor.try_clone()?;
    let stdin = streams.stdin;
    std::thread::spawn(move || {
        let mut send = |data: &[u8]| attach::write_frame(&mut to_monitor, kind::STDIN, data);
        if stdin && !early.is_empty() && send(&early).is_err() {
            return;
        }
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            match input.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) if stdin => {
                    if send(&buffer[..n]).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
            }
        }
        // The client closed its writing side (the docker CLI does at once when it sends no
        // stdin): the container's stdin ends, and its output still goes to the client.
        if stdin {
            let _ = attach::write_frame(&mut to_monitor, kind::STDIN_EOF, &[]);
        }
    });
    // The container's side: its output, until it ends, or until the client is gone.
    let mut from_monitor = monitor;
    while !client_gone(conn, &from_monitor) {
        let Ok(Some((frame, payload))) = attach::read_frame(&mut from_monitor) else {
            break;
        };
        let written = match frame {
            kind::STDOUT | kind::STDERR if tty => conn.write_all(&payload),
            kind::STDOUT | kind::STDERR => attach::write_frame(conn, frame, &payload),
            kind::EXIT => break,
            _ => Ok(()),
        };
        if written.is_err() {
            break;
        }
    }
    let _ = from_monitor.shutdown(std::net::Shutdown::Both);
    let _ = conn.shutdown(std::net::Shutdown::Both);
    Ok(Next::Close)
}
// ANCHOR_END: attach

// ANCHOR: replay
/// `attach?logs=1`: what the container wrote before, from its log, ahead of what it writes
/// from now on. The monitor's stream is already connected, so nothing falls between the two;
/// a line written in the instant between connecting and reading the log may come twice.
fn replay(
    service: &Service,
    conn: &mut Conn,
    record: &crate::container::Record,
    streams: Streams,
    tty: bool,
) -> io::Result<()> {
    let dir = crate::container::records(&service.root).dir(&record.id);
    let path = crate::logs::log_path(&dir, &record.id);
    if !path.exists() {
        return Ok(());
    }
    let options = crate::logs::ReadOptions {
        follow: false,
        tail: None,
        since: None,
        until: None,
        timestamps: false,
        details: false,
    };
    let shared = RefCell::new(conn);
    let sink = |kind, wanted| StreamSink {
        conn: &shared,
        kind,
        tty,
        wanted,
        chunked: false,
    };
    let (mut out, mut err) = (
        sink(kind::STDOUT, streams.stdout),
        sink(kind::STDERR, streams.stderr),
    );
    crate::logs::read(&path, &options, &mut out, &mut err, &mut || false)
}
// ANCHOR_END: replay

/// `POST /containers/{id}/resize?h=ROWS&w=COLS`: the size of the container's terminal, sent to
/// its monitor as a RESIZE frame on a connection of its own (`docker run -t` sends it at the
/// start and on every SIGWINCH).
pub fn resize(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    let (rows, cols) = request.terminal_size()?;
    if !record.state.is_running() {
        return Err(ApiError::new(
            409,
            format!("Container {} is not running", record.id),
        ));
    }
    let dir = crate::container::records(&service.root).dir(&record.id);
    let none = Streams {
        stdin: false,
        stdout: false,
        stderr: false,
    };
    let mut monitor = crate::client::connect(&dir, none)?;
    let [r1, r2] = rows.to_be_bytes();
    let [c1, c2] = cols.to_be_bytes();
    attach::write_frame(&mut monitor, kind::RESIZE, &[r1, r2, c1, c2])?;
    super::empty(conn, request, 200)
}

// ANCHOR: events
/// `GET /events?since=T&until=T&filters={...}`: the store's journal of events, from `since`
/// (else from now), one JSON object per line as each is written, until `until` or until the
/// client leaves. (The journal before its last turnover is not read yet.)
pub fn events(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let now = std::time::SystemTime::now();
    let time = |key: &str| {
        request
            .param(key)
            .filter(|t| !t.is_empty())
            .map(|t| crate::events::parse_time(t, now))
            .transpose()
            .map_err(|e| ApiError::from_anyhow(&e, 400))
    };
    let (since, until) = (time("since")?, time("until")?);
    let flags = super::containers::filter_flags(request.param("filters"))?;
    let filters =
        crate::events::Filters::parse(&flags).map_err(|e| ApiError::from_anyhow(&e, 400))?;
    let nanos = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    };
    let (since_ns, until_ns) = (since.map(nanos), until.map(nanos));
    let path = crate::events::journal(&service.root);
    let mut journal = crate::events::Follower::open(&path, since.is_some())?;
    http::start_chunked(conn, 200, "application/json")?;
    loop {
        for event in journal.read_new() {
            if until_ns.is_some_and(|u| event.time_nano > u) {
                break;
            }
            if since_ns.is_some_and(|s| event.time_nano < s) || !filters.matches(&event) {
                continue;
            }
            let mut line =
                serde_json::to_vec(&event).map_err(|e| ApiError::new(500, e.to_string()))?;
            line.push(b'\n');
            if http::chunk(conn, &line).is_err() {
                return Ok(Next::Close);
            }
        }
        if until.is_some_and(|u| std::time::SystemTime::now() >= u) {
            break;
        }
        if client_left(conn) {
            return Ok(Next::Close);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    http::end_chunked(conn)?;
    Ok(Next::KeepAlive)
}
// ANCHOR_END: events

/// Waits until the monitor has something to say; `true` if the client closed the connection
/// meanwhile (both ways: a client that only stopped writing still reads). A client that leaves
/// a container that never starts, or never writes, must not keep its thread forever.
fn client_gone(conn: &Conn, monitor: &std::os::unix::net::UnixStream) -> bool {
    loop {
        let mut fds = [
            PollFd::new(monitor.as_fd(), PollFlags::POLLIN),
            PollFd::new(conn.as_fd(), PollFlags::empty()),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
        let hung_up = PollFlags::POLLHUP | PollFlags::POLLERR;
        if fds[1].revents().is_some_and(|r| r.intersects(hung_up)) {
            return true;
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return false;
        }
    }
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    /// The container is not running (now, or once it stops).
    NotRunning,
    /// The container's next exit, after this request.
    NextExit,
    /// The container is removed (`docker run --rm` waits for this).
    Removed,
}

// ANCHOR: wait
/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`: the status line and
/// headers go at once (the docker CLI sends its start only after them), the body
/// `{"StatusCode": N}` when the condition holds. The end is read from the store's journal of
/// events (`die` with its exit code, `destroy`), which the container's monitor writes, so a
/// container that ends and is removed between two looks is still seen to.
pub fn wait(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let condition = match request.param("condition").unwrap_or("not-running") {
        "" | "not-running" => Condition::NotRunning,
        "next-exit" => Condition::NextExit,
        "removed" => Condition::Removed,
        other => {
            return Err(ApiError::new(
                400,
                format!("invalid condition: {other:?}: use not-running, next-exit or removed"),
            ));
        }
    };
    // The journal is opened before the record is read: nothing that happens after can be missed.
    let mut journal = crate::events::Follower::open(&crate::events::journal(&service.root), false)?;
    let record = find(service, key)?;
    http::start_chunked(conn, 200, "application/json")?;
    let mut code = record.state.exit_code;
    let mut looked = Instant::now();
    let done = loop {
        if condition == Condition::NotRunning && !is_live(&record) {
            break true;
        }
        for event in journal.read_new() {
            if event.kind != "container" || event.actor.id != record.id {
                continue;
            }
            match event.action.as_str() {
                "die" => {
                    code = event
                        .actor
                        .attributes
                        .get("exitCode")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(code);
                    if condition != Condition::Removed {
                        return finish(conn, code);
                    }
                }
                "destroy" if condition == Condition::Removed => return finish(conn, code),
                _ => {}
            }
        }
        // What the journal cannot say (a monitor that died without a word): the record.
        if looked.elapsed() > Duration::from_millis(500) {
            looked = Instant::now();
            match crate::lifecycle::find(&service.root, &record.id) {
                Ok(now) if condition == Condition::NotRunning && !is_live(&now) => {
                    code = now.state.exit_code;
                    break true;
                }
                Ok(_) => {}
                Err(_) => break true,
            }
        }
        if client_left(conn) {
            break false;
        }
    };
    if done {
        return finish(conn, code);
    }
    Ok(Next::Close)
}
// ANCHOR_END: wait

/// The end of a wait's answer.
fn finish(conn: &mut Conn, code: i32) -> Reply {
    let body = json!({ "StatusCode": code, "Error": null }).to_string();
    http::chunk(conn, body.as_bytes())?;
    http::end_chunked(conn)?;
    Ok(Next::KeepAlive)
}

/// Waits a little for the client; `true` if it closed the connection (as `docker run -d` does
/// with the wait it never reads).
pub fn client_left(conn: &Conn) -> bool {
    let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::from(50u16)).unwrap_or(0) == 0 {
        return false;
    }
    let mut byte = [0u8; 1];
    matches!(
        recv(
            conn.as_fd().as_raw_fd(),
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT
        ),
        Ok(0) | Err(_)
    )
}

/// One of the container's streams, written into a chunked answer: as frames of Docker's
/// multiplexed stream, or raw with a tty.
struct StreamSink<'a, 'c> {
    conn: &'a RefCell<&'c mut Conn>,
    kind: u8,
    tty: bool,
    wanted: bool,
    /// In an HTTP chunk each (`logs`), or straight on a hijacked connection (`attach`).
    chunked: bool,
}

impl Write for StreamSink<'_, '_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.wanted || data.is_empty() {
            return Ok(data.len());
        }
        let mut frame = Vec::with_capacity(data.len() + 8);
        if self.tty {
            frame.extend_from_slice(data);
        } else {
            attach::write_frame(&mut frame, self.kind, data)?;
        }
        let mut conn = self.conn.borrow_mut();
        if self.chunked {
            http::chunk(&mut conn, &frame)?;
        } else {
            conn.write_all(&frame)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ANCHOR: logs
/// `GET /containers/{id}/logs?stdout=1&stderr=1&follow=1&tail=N&since=T&until=T&timestamps=1`:
/// the json-file log, read as `skiff logs` reads it, in the attach stream's format.
pub fn logs(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    let (stdout, stderr) = (request.flag("stdout"), request.flag("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::new(
            400,
            "you must choose at least one stream: stdout=1 or stderr=1",
        ));
    }
    let now = std::time::SystemTime::now();
    let time = |key: &str| {
        request
            .param(key)
            .filter(|t| !t.is_empty() && *t != "0")
            .map(|t| crate::logs::parse_time(t, now))
            .transpose()
            .map_err(|e| ApiError::from_anyhow(&e, 400))
    };
    let options = crate::logs::ReadOptions {
        follow: request.flag("follow") && record.state.is_running(),
        tail: request.param("tail").and_then(crate::logs_command::tail),
        since: time("since")?,
        until: time("until")?,
        timestamps: request.flag("timestamps"),
        details: false,
    };
    let dir = crate::container::records(&service.root).dir(&record.id);
    let path = crate::logs::log_path(&dir, &record.id);
    let tty = record.config.tty;
    http::start_chunked(conn, 200, "application/vnd.docker.raw-stream")?;
    let shared = RefCell::new(conn);
    let mut out = StreamSink {
        conn: &shared,
        kind: kind::STDOUT,
        tty,
        wanted: stdout,
        chunked: true,
    };
    let mut err = StreamSink {
        conn: &shared,
        kind: kind::STDERR,
        tty,
        wanted: stderr,
        chunked: true,
    };
    let mut running = crate::logs_command::Running::new(&service.root, &record.id);
    let read = crate::logs::read(&path, &options, &mut out, &mut err, &mut || running.check());
    let conn = shared.into_inner();
    if read.is_err() {
        // The client left, or the log could not be read half-way: the answer cannot be
        // finished, so the connection is.
        return Ok(Next::Close);
    }
    http::end_chunked(conn)?;
    Ok(Next::KeepAlive)
}
// ANCHOR_END: logs
