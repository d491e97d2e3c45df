//! Attaching to a container: how a terminal reaches a container that its monitor holds.
//!
//! A container's stdin, stdout and stderr (or its terminal) belong to its monitor, not to the
//! command that started it, so the container keeps running when that command goes. Whoever
//! wants to see its output or type into it connects to the monitor's unix socket,
//! `<root>/containers/<id>/attach.sock`, and the two exchange *frames*, Docker's stream format
//! with a few kinds of its own: eight bytes of header, then the payload.
//!
//! ```text
//!  byte 0: kind   1-3: zero   4-7: payload length, big-endian   payload...
//!
//!  client -> monitor   HELLO (which streams), STDIN data, STDIN_EOF, RESIZE rows cols,
//!                      SIGNAL number; or EXEC (a new process: `exec`), then the same
//!  monitor -> client   STDOUT data, STDERR data, NOTE text, EXIT code (the container ended)
//! ```
//!
//! `run` in the foreground is create, start, attach, wait: it connects before the container
//! starts, so not a byte of output is missed. See unix(7), docker-attach(1).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::bail;

// ANCHOR: kinds
/// The kinds of frame.
pub mod kind {
    /// Client to monitor: what the client reads from stdin.
    pub const STDIN: u8 = 0;
    /// Monitor to client: the container's stdout (or terminal output).
    pub const STDOUT: u8 = 1;
    /// Monitor to client: the container's stderr.
    pub const STDERR: u8 = 2;
    /// Client to monitor: the client's stdin ended; the container's is closed.
    pub const STDIN_EOF: u8 = 3;
    /// Client to monitor: the client's terminal size, rows then columns (two u16, big-endian).
    pub const RESIZE: u8 = 4;
    /// Client to monitor: send this signal (an i32, big-endian) to the container.
    pub const SIGNAL: u8 = 5;
    /// Monitor to client: the container ended with this code (an i32, big-endian).
    pub const EXIT: u8 = 6;
    /// Client to monitor, first: the streams it wants, one bit each (1 stdin, 2 stdout, 4 stderr).
    pub const HELLO: u8 = 7;
    /// Monitor to client: something the engine has to say about the end ("killed by the OOM
    /// killer"), for the client to print as its own message.
    pub const NOTE: u8 = 8;
    /// Client to monitor, first (instead of HELLO): `exec`'s request, in JSON. The rest of the
    /// connection is then the new process's, as it is the container's after HELLO.
    pub const EXEC: u8 = 9;
}
// ANCHOR_END: kinds

/// The largest payload a frame carries.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Writes one frame.
pub fn write_frame(to: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut header = [0u8; 8];
    header[0] = kind;
    header[4..].copy_from_slice(&len.to_be_bytes());
    to.write_all(&header)?;
    to.write_all(payload)
}

/// Reads one frame; `None` at end of stream.
pub fn read_frame(from: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 8];
    match from.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("attach frame of {len} bytes: more than {MAX_PAYLOAD}"),
        ));
    }
    let mut payload = vec![0u8; len];
    from.read_exact(&mut payload)?;
    Ok(Some((header[0], payload)))
}

/// Splits a buffer of received bytes into whole frames, keeping a partial one for later: the
/// monitor reads without blocking.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    bytes: Vec<u8>,
}

impl FrameBuffer {
    /// Adds received bytes.
    pub fn extend(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
    }

    /// The next whole frame, if one is there. A frame too large is an error.
    pub fn next_frame(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        if self.bytes.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.bytes[4], self.bytes[5], self.bytes[6], self.bytes[7]])
            as usize;
        if len > MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "attach frame too large",
            ));
        }
        if self.bytes.len() < 8 + len {
            return Ok(None);
        }
        let kind = self.bytes[0];
        let payload = self.bytes[8..8 + len].to_vec();
        self.bytes.drain(..8 + len);
        Ok(Some((kind, payload)))
    }
}

// ANCHOR: streams
/// The streams an attached client wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    /// It sends stdin.
    pub stdin: bool,
    /// It wants stdout.
    pub stdout: bool,
    /// It wants stderr.
    pub stderr: bool,
}

impl Streams {
    /// `-a STREAM...`, or by default stdout and stderr, and stdin with `-i`.
    pub fn parse(attach: &[String], interactive: bool) -> anyhow::Result<Self> {
        if attach.is_empty() {
            return Ok(Streams {
                stdin: interactive,
                stdout: true,
                stderr: true,
            });
        }
        let mut streams = Streams {
            stdin: false,
            stdout: false,
            stderr: false,
        };
        for name in attach {
            match name.to_ascii_lowercase().as_str() {
                "stdin" => streams.stdin = true,
                "stdout" => streams.stdout = true,
                "stderr" => streams.stderr = true,
                _ => bail!("invalid argument {name:?} for -a: use STDIN, STDOUT or STDERR"),
            }
        }
        Ok(streams)
    }

    /// As the HELLO payload's bits.
    pub fn bits(self) -> u8 {
        u8::from(self.stdin) | (u8::from(self.stdout) << 1) | (u8::from(self.stderr) << 2)
    }

    /// From the HELLO payload's bits.
    pub fn from_bits(bits: u8) -> Self {
        Streams {
            stdin: bits & 1 != 0,
            stdout: bits & 2 != 0,
            stderr: bits & 4 != 0,
        }
    }
}
// ANCHOR_END: streams

// ANCHOR: detach_keys
/// The key sequence that detaches a client from a container's terminal: Docker's ctrl-p
/// ctrl-q by default, or `--detach-keys` (`ctrl-a,x`: keys separated by commas, `ctrl-X` or a
/// single character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(pub Vec<u8>);

impl Default for DetachKeys {
    fn default() -> Self {
        DetachKeys(vec![0x10, 0x11])
    }
}

impl DetachKeys {
    /// Parses `--detach-keys`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        for key in text.split(',') {
            let lower = key.to_ascii_lowercase();
            let byte = match lower.strip_prefix("ctrl-") {
                Some(rest) if rest.len() == 1 => {
                    let c = rest.as_bytes()[0];
                    match c {
                        b'a'..=b'z' => c - b'a' + 1,
                        b'@' => 0,
                        b'[' => 27,
                        b'\\' => 28,
                        b']' => 29,
                        b'^' => 30,
                        b'_' => 31,
                        _ => bail!(
                            "invalid detach key {key:?}: ctrl- takes a letter or one of @[\\]^_"
                        ),
                    }
                }
                None if key.len() == 1 => key.as_bytes()[0],
                _ => bail!(
                    "invalid detach keys {text:?}: use keys such as ctrl-p,ctrl-q or ctrl-a,x"
                ),
            };
            keys.push(byte);
        }
        if keys.is_empty() {
            bail!("invalid detach keys {text:?}: give at least one key");
        }
        Ok(DetachKeys(keys))
    }
}

/// Watches typed bytes for the detach sequence.
#[derive(Debug, Default)]
pub struct DetachWatch {
    keys: DetachKeys,
    matched: usize,
}

impl DetachWatch {
    /// A watch for `keys`.
    pub fn new(keys: DetachKeys) -> Self {
        DetachWatch { keys, matched: 0 }
    }

    /// Looks at typed `input`: returns the bytes to pass on, and whether the sequence is
    /// complete (the client detaches; what came after it is dropped). A partial match is held
    /// back until it completes or fails, as Docker does.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &byte in input {
            if byte == self.keys.0[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.0.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys.0[..self.matched]);
                self.matched = 0;
                if byte == self.keys.0[0] {
                    self.matched = 1;
                } else {
                    out.push(byte);
                }
            }
        }
        (out, false)
    }
}
// ANCHOR_END: detach_keys

/// The attach socket of the container whose state directory is `dir`. The path can be longer
/// than a socket address allows (108 bytes), so it is reached through the directory's open
/// descriptor: `/proc/self/fd/N/attach.sock`.
pub fn socket_name() -> &'static str {
    "attach.sock"
}

/// Runs `f` with a short path to `dir/name`, valid while `f` runs.
fn with_short_path<T>(
    dir: &Path,
    name: &str,
    f: impl FnOnce(&Path) -> io::Result<T>,
) -> io::Result<T> {
    let handle = std::fs::File::open(dir)?;
    let short = std::path::PathBuf::from(format!("/proc/self/fd/{}/{name}", handle.as_raw_fd()));
    f(&short)
}

/// Binds the attach socket of the container in `dir`, replacing a stale one.
pub fn listen(dir: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(dir.join(socket_name()));
    with_short_path(dir, socket_name(), |path| UnixListener::bind(path))
}

/// Connects to the attach socket of the container in `dir`.
pub fn connect(dir: &Path) -> io::Result<UnixStream> {
    with_short_path(dir, socket_name(), |path| UnixStream::connect(path))
}

/// Turns a listener into the descriptor a monitor inherits.
pub fn into_fd(listener: UnixListener) -> OwnedFd {
    listener.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_whole_and_in_pieces() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, kind::STDOUT, b"hello").unwrap();
        write_frame(&mut bytes, kind::EXIT, &7i32.to_be_bytes()).unwrap();
        let mut reader = &bytes[..];
        assert_eq!(
            read_frame(&mut reader).unwrap(),
            Some((kind::STDOUT, b"hello".to_vec()))
        );
        let mut buffer = FrameBuffer::default();
        buffer.extend(&bytes[..10]);
        assert_eq!(buffer.next_frame().unwrap(), None);
        buffer.extend(&bytes[10..]);
        assert_eq!(
            buffer.next_frame().unwrap(),
            Some((kind::STDOUT, b"hello".to_vec()))
        );
        assert_eq!(buffer.next_frame().unwrap().unwrap().0, kind::EXIT);
        assert_eq!(buffer.next_frame().unwrap(), None);
    }

    #[test]
    fn streams_default_as_docker_run_does() {
        let plain = Streams::parse(&[], false).unwrap();
        assert_eq!(
            (plain.stdin, plain.stdout, plain.stderr),
            (false, true, true)
        );
        assert!(Streams::parse(&[], true).unwrap().stdin);
        let only = Streams::parse(&["STDERR".into()], false).unwrap();
        assert_eq!((only.stdin, only.stdout, only.stderr), (false, false, true));
        assert_eq!(Streams::from_bits(only.bits()), only);
        assert!(Streams::parse(&["stdpipe".into()], false).is_err());
    }

    #[test]
    fn detach_keys_parse_and_match() {
        assert_eq!(
            DetachKeys::parse("ctrl-p,ctrl-q").unwrap(),
            DetachKeys::default()
        );
        assert_eq!(DetachKeys::parse("ctrl-a,x").unwrap().0, vec![1, b'x']);
        assert!(DetachKeys::parse("ctrl-").is_err());
        let mut watch = DetachWatch::new(DetachKeys::default());
        assert_eq!(watch.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(watch.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(watch.feed(b"\x10\x11rest"), (Vec::new(), true));
    }
}
