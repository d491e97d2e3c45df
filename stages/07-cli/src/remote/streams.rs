//! A container's streams as a client of the Engine API sees them: in 8-byte-header frames when
//! the container has no terminal (one byte says stdout or stderr, four say how long the frame
//! is), raw bytes when it has one; read from a `logs` answer or a hijacked `attach` or `exec`
//! connection, where stdin goes the other way. Reference: the Engine API v1.41, "Stream
//! format" (ContainerAttach).

use std::io::{self, Read, Write};
use std::net::Shutdown;

use crate::api::http::Conn;

use super::http::Client;

// ANCHOR: demux
/// Copies a multiplexed stream to `out` and `err`, frame by frame, as frames arrive: header
/// `[STREAM, 0, 0, 0, SIZE (4 bytes, big-endian)]`, then SIZE bytes; STREAM 1 is stdout, 2
/// stderr. Ends at the end of the stream.
pub fn demux(mut from: impl Read, out: &mut impl Write, err: &mut impl Write) -> io::Result<()> {
    let mut header = [0u8; 8];
    let mut frame = Vec::new();
    loop {
        if !read_all_or_nothing(&mut from, &mut header)? {
            return Ok(());
        }
        let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        frame.resize(size as usize, 0);
        from.read_exact(&mut frame)?;
        let to: &mut dyn Write = if header[0] == 2 { err } else { out };
        to.write_all(&frame)?;
        to.flush()?;
    }
}
// ANCHOR_END: demux

/// Fills `buf`, or reads nothing at the end of the stream (`false`).
fn read_all_or_nothing(from: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match from.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Copies a raw stream (a terminal's) to `out` as it arrives.
pub fn copy_raw(mut from: impl Read, out: &mut impl Write) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
}

/// A stream's output, framed or raw, to this process's stdout and stderr. A reader that has
/// gone (`| head`) ends it quietly.
pub fn to_stdio(from: impl Read, multiplexed: bool) -> io::Result<()> {
    let (mut out, mut err) = (io::stdout().lock(), io::stderr());
    let result = if multiplexed {
        demux(from, &mut out, &mut err)
    } else {
        copy_raw(from, &mut out)
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// A hijacked connection: the stream's first bytes (read with the answer's head), then the
/// connection's.
pub struct Hijacked {
    /// The connection.
    pub conn: Conn,
    /// Bytes of the stream that came with the `101`.
    pub first: Vec<u8>,
    /// Frames (no tty) or raw (a tty).
    pub multiplexed: bool,
}

impl Read for Hijacked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.first.is_empty() {
            let n = buf.len().min(self.first.len());
            buf[..n].copy_from_slice(&self.first[..n]);
            self.first.drain(..n);
            return Ok(n);
        }
        self.conn.read(buf)
    }
}

/// Where a terminal's size goes: `/containers/{id}/resize` or `/exec/{id}/resize`.
pub struct Resize<'a> {
    /// The daemon.
    pub client: &'a Client,
    /// The path, without the query.
    pub path: String,
}

// ANCHOR: relay
/// Relays a hijacked connection: stdin to the daemon (when `stdin`; its end closes our half of
/// the connection, as `docker attach` does, so the container reads end-of-file), the
/// container's output to stdout and stderr, until the daemon closes the stream. With a
/// terminal (`resize` given), this terminal is in raw mode meanwhile, and its size is sent
/// at once and whenever it changes.
pub fn relay(mut stream: Hijacked, stdin: bool, resize: Option<Resize<'_>>) -> io::Result<()> {
    let raw = resize
        .as_ref()
        .and_then(|_| stdin.then(crate::client::RawMode::enter).flatten());
    if stdin {
        let mut to_daemon = stream.conn.try_clone()?;
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut to_daemon);
            let _ = to_daemon.shutdown(Shutdown::Write);
        });
    }
    if let Some(resize) = resize {
        let client = resize.client.clone();
        let path = resize.path;
        std::thread::spawn(move || follow_size(&client, &path));
    }
    let multiplexed = stream.multiplexed;
    let result = to_stdio(&mut stream, multiplexed);
    drop(raw);
    result
}
// ANCHOR_END: relay

// ANCHOR: sig_proxy
/// `--sig-proxy` (the default without a terminal): the signals this process gets (SIGINT,
/// SIGTERM...) are caught by `forwarder`, installed before any thread started, and passed on as
/// `POST /containers/{id}/kill?signal=N`, as the docker CLI passes them.
pub fn proxy_signals(forwarder: chroot::signals::Forwarder, client: &Client, container: &str) {
    let client = client.clone();
    let path = format!("/containers/{container}/kill");
    std::thread::spawn(move || {
        loop {
            match forwarder.next() {
                Some(signal) => {
                    let _ = client.send("POST", &format!("{path}?signal={}", signal as i32), None);
                }
                // SIGCHLD, an interruption, or a signalfd that fails: never a busy loop.
                None => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    });
}
// ANCHOR_END: sig_proxy

/// Sends this terminal's size whenever it changes (looked at four times a second: a thread
/// that polls needs no signal handler, and SIGWINCH is what a person notices only by eye).
fn follow_size(client: &Client, path: &str) {
    let mut last = None;
    loop {
        let size = crate::client::window_size();
        if size != last
            && let Some([r1, r2, c1, c2]) = size
        {
            let (rows, cols) = (u16::from_be_bytes([r1, r2]), u16::from_be_bytes([c1, c2]));
            let _ = client.send("POST", &format!("{path}?h={rows}&w={cols}"), None);
            last = size;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_go_to_their_streams_in_order() {
        let mut input = Vec::new();
        for (stream, text) in [(1u8, "out1\n"), (2, "err\n"), (1, "out2\n")] {
            input.extend_from_slice(&[stream, 0, 0, 0]);
            input.extend_from_slice(&u32::try_from(text.len()).unwrap().to_be_bytes());
            input.extend_from_slice(text.as_bytes());
        }
        let (mut out, mut err) = (Vec::new(), Vec::new());
        demux(&input[..], &mut out, &mut err).unwrap();
        assert_eq!(out, b"out1\nout2\n");
        assert_eq!(err, b"err\n");
    }

    #[test]
    fn a_cut_frame_is_an_error_not_an_end() {
        let input = [1u8, 0, 0, 0, 0, 0, 0, 9, b'a'];
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let error = demux(&input[..], &mut out, &mut err).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
