//! HTTP/1.1 from the client's side, as the Engine API needs it: a request on a fresh
//! connection (unix or TCP), an answer whose body comes by length, chunked or until the
//! connection closes, read as it arrives (`logs -f`, `events` and a pull's progress never
//! end on their own), and the *hijack*: `Upgrade: tcp`, `101`, and from then on the
//! connection is the container's raw streams both ways. The status line and headers are
//! parsed by `httparse`, as the service parses requests ([`crate::api::http`]).
//! Reference: RFC 9112 (HTTP/1.1), the Engine API v1.41 ("Hijacking", "Versioning").

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::api::http::Conn;

use super::streams::Hijacked;

/// The newest API version this client speaks: what docker 20.10 speaks.
pub const CLIENT_VERSION: &str = crate::system::API_VERSION;

/// The largest response head read.
const MAX_HEAD: usize = 64 * 1024;

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `unix:///PATH`.
    Unix(PathBuf),
    /// `tcp://HOST:PORT`.
    Tcp(String),
}

impl Uri {
    /// `unix:///PATH`, `tcp://HOST:PORT`, or a bare absolute path (a socket), as `-H` takes.
    pub fn parse(text: &str) -> anyhow::Result<Uri> {
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                bail!("unix socket path in {text:?} must be absolute: use unix:///PATH");
            }
            return Ok(Uri::Unix(PathBuf::from(path)));
        }
        if let Some(address) = text.strip_prefix("tcp://") {
            let address = address.trim_end_matches('/');
            if !address.contains(':') {
                bail!("no port in {text:?}: use tcp://HOST:PORT");
            }
            return Ok(Uri::Tcp(address.to_string()));
        }
        if text.starts_with('/') {
            return Ok(Uri::Unix(PathBuf::from(text)));
        }
        bail!("unsupported host {text:?}: use unix:///PATH or tcp://HOST:PORT")
    }

    fn connect(&self) -> io::Result<Conn> {
        Ok(match self {
            Uri::Unix(path) => Conn::Unix(UnixStream::connect(path)?),
            Uri::Tcp(address) => Conn::Tcp(TcpStream::connect(address)?),
        })
    }
}

impl std::fmt::Display for Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Uri::Unix(path) => write!(f, "unix://{}", path.display()),
            Uri::Tcp(address) => write!(f, "tcp://{address}"),
        }
    }
}

/// An answer the daemon gave with status 400 or more, in Docker's words: the docker CLI prints
/// `Error response from daemon: ` and the body's `message`.
#[derive(Debug, thiserror::Error)]
#[error("Error response from daemon: {message}")]
pub struct DaemonError {
    /// The HTTP status: 404 no such object, 409 conflict, 400 bad parameter, 500 the rest.
    pub status: u16,
    /// The body's `message`, or the body itself when it is not Docker's JSON.
    pub message: String,
}

/// One daemon, and the API version agreed with it.
#[derive(Debug, Clone)]
pub struct Client {
    /// Where it listens.
    pub uri: Uri,
    /// The version in every path: the lower of the daemon's and ours.
    pub version: String,
}

// ANCHOR: negotiate
impl Client {
    /// Connects to `uri` and agrees on a version, as the docker CLI does: `GET /_ping`
    /// (unversioned), whose `Api-Version` header is the newest the daemon speaks; the lower of
    /// that and ours goes in every later path (`/v1.41/containers/json`).
    pub fn connect(uri: Uri) -> anyhow::Result<Client> {
        let mut client = Client {
            uri,
            version: String::new(),
        };
        let ping = client.send("GET", "/_ping", None).with_context(|| {
            format!(
                "Cannot connect to the Docker daemon at {}. Is the docker daemon running?",
                client.uri
            )
        })?;
        let theirs = ping.header("api-version").unwrap_or(CLIENT_VERSION);
        client.version = lower_version(theirs, CLIENT_VERSION).to_string();
        Ok(client)
    }
    // ANCHOR_END: negotiate

    /// The path with the agreed version in front (none before the ping).
    fn versioned(&self, path: &str) -> String {
        if self.version.is_empty() {
            path.to_string()
        } else {
            format!("/v{}{path}", self.version)
        }
    }

    /// Sends a request on a new connection; the answer's head is read, its body waits in the
    /// [`Response`]. Any status.
    pub fn send(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Response> {
        let mut conn = self.uri.connect()?;
        write_request(&mut conn, method, &self.versioned(path), body, &[])?;
        Response::read(conn, method == "HEAD")
    }

    /// A request whose body is a stream (`load`'s tarball), sent chunked as it is read; the
    /// answer as [`call`](Self::call)'s.
    pub fn call_with_stream(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &mut dyn Read,
    ) -> anyhow::Result<Response> {
        let mut conn = self.uri.connect()?;
        let head = format!(
            "{method} {} HTTP/1.1\r\nHost: docker\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n",
            self.versioned(path)
        );
        conn.write_all(head.as_bytes())?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = body.read(&mut buf).context("read the request's body")?;
            let mut chunk = format!("{n:x}\r\n").into_bytes();
            chunk.extend_from_slice(&buf[..n]);
            chunk.extend_from_slice(b"\r\n");
            conn.write_all(&chunk).context("send the request's body")?;
            if n == 0 {
                break;
            }
        }
        Response::read(conn, false)?.ok()
    }

    /// [`send`](Self::send), with a status of 400 or more turned into a [`DaemonError`].
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Response> {
        self.send(method, path, body)?.ok()
    }

    /// A call whose answer is JSON.
    pub fn json(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        self.call(method, path, body)?.json()
    }

    // ANCHOR: hijack
    /// Hijacks a connection: the request says `Upgrade: tcp`, the daemon answers `101
    /// UPGRADED` (or a bare `200`, as daemons before API 1.24 did), and from then on the
    /// connection carries the container's streams, not HTTP: in frames unless the container
    /// has a terminal (`tty`). The client must know which from the container's config: the
    /// answer's `Content-Type` says so only from API 1.42 on.
    pub fn hijack(&self, path: &str, body: Option<&Value>, tty: bool) -> anyhow::Result<Hijacked> {
        let mut conn = self.uri.connect()?;
        let upgrade = [("Connection", "Upgrade"), ("Upgrade", "tcp")];
        write_request(&mut conn, "POST", &self.versioned(path), body, &upgrade)?;
        let response = Response::read(conn, false)?.ok()?;
        if response.status != 101 && response.status != 200 {
            bail!(
                "the daemon did not hijack the connection: {}",
                response.status
            );
        }
        let (conn, first) = response.into_parts();
        Ok(Hijacked {
            conn,
            first,
            multiplexed: !tty,
        })
    }
    // ANCHOR_END: hijack
}

/// The lower of two API versions (`1.41`, `1.24`), compared as numbers.
pub fn lower_version<'a>(a: &'a str, b: &'a str) -> &'a str {
    let key = |v: &str| -> (u32, u32) {
        let (major, minor) = v.split_once('.').unwrap_or((v, "0"));
        (major.parse().unwrap_or(0), minor.parse().unwrap_or(0))
    };
    if key(a) <= key(b) { a } else { b }
}

fn write_request(
    conn: &mut Conn,
    method: &str,
    path: &str,
    body: Option<&Value>,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: skiff/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    conn.write_all(&out)
}

/// How the body of an answer ends.
#[derive(Debug)]
enum Framing {
    /// After this many more bytes.
    Length(u64),
    /// Chunks; `left` bytes remain in the current one, `done` after the last.
    Chunked { left: u64, done: bool },
    /// When the daemon closes the connection.
    Close,
}

/// An answer: its status and headers, and its body as a reader that decodes the framing.
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    headers: Vec<(String, String)>,
    reader: BufReader<Prefixed>,
    framing: Framing,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// Reads the answer's head; the answer to a `HEAD` request (`head`) has no body, whatever
    /// its `Content-Length` says.
    fn read(mut conn: Conn, head: bool) -> anyhow::Result<Response> {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        let (status, headers, used) = loop {
            let n = conn.read(&mut chunk).context("read the daemon's answer")?;
            if n == 0 {
                bail!("the daemon closed the connection without answering");
            }
            buffer.extend_from_slice(&chunk[..n]);
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(&buffer) {
                Ok(httparse::Status::Complete(used)) => {
                    let headers = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect::<Vec<_>>();
                    break (parsed.code.unwrap_or(0), headers, used);
                }
                Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => bail!("the daemon's answer head is too long"),
                Err(e) => bail!("the daemon's answer is not HTTP: {e}"),
            }
        };
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let framing = if head || status == 101 || status == 204 || status == 304 {
            Framing::Length(0)
        } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            Framing::Chunked {
                left: 0,
                done: false,
            }
        } else if let Some(length) = find("content-length").and_then(|v| v.trim().parse().ok()) {
            Framing::Length(length)
        } else {
            Framing::Close
        };
        // What came past the head: the body's first bytes (or a hijacked stream's).
        let rest = buffer.split_off(used);
        let reader = BufReader::with_capacity(64 * 1024, Prefixed { rest, conn });
        Ok(Response {
            status,
            headers,
            reader,
            framing,
        })
    }

    /// Header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The answer, or a [`DaemonError`] for a status of 400 or more, with the body's message.
    pub fn ok(mut self) -> anyhow::Result<Response> {
        if self.status < 400 {
            return Ok(self);
        }
        let mut body = String::new();
        let _ = self.read_to_string(&mut body);
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.trim().to_string());
        Err(DaemonError {
            status: self.status,
            message,
        }
        .into())
    }

    /// The whole body, as JSON.
    pub fn json(mut self) -> anyhow::Result<Value> {
        let mut body = Vec::new();
        self.read_to_end(&mut body)
            .context("read the daemon's answer")?;
        serde_json::from_slice(&body).context("the daemon's answer is not JSON")
    }

    /// The connection, and what was read past the head: a hijacked stream's first bytes.
    fn into_parts(self) -> (Conn, Vec<u8>) {
        // What the buffer holds comes before what it has not taken from `rest` yet.
        let mut first = self.reader.buffer().to_vec();
        let Prefixed { rest, conn } = self.reader.into_inner();
        first.extend_from_slice(&rest);
        (conn, first)
    }
}

/// A reader whose first bytes are `rest`, then the connection's.
struct Prefixed {
    rest: Vec<u8>,
    conn: Conn,
}

impl Read for Prefixed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.rest.is_empty() {
            let n = buf.len().min(self.rest.len());
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest.drain(..n);
            return Ok(n);
        }
        self.conn.read(buf)
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.framing {
            Framing::Length(0) => Ok(0),
            Framing::Length(left) => {
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.reader.read(&mut buf[..want])?;
                *left -= n as u64;
                Ok(n)
            }
            Framing::Close => self.reader.read(buf),
            Framing::Chunked { done: true, .. } => Ok(0),
            Framing::Chunked { left, done } => {
                if *left == 0 {
                    let mut line = String::new();
                    self.reader.read_line(&mut line)?;
                    // The CRLF that ends the previous chunk comes first after a chunk.
                    if line.trim().is_empty() {
                        line.clear();
                        self.reader.read_line(&mut line)?;
                    }
                    let size = line.trim().split(';').next().unwrap_or("");
                    let size = u64::from_str_radix(size, 16).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    if size == 0 {
                        *done = true;
                        return Ok(0);
                    }
                    *left = size;
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.reader.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                *left -= n as u64;
                Ok(n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A daemon that answers each connection with the next canned answer, whatever it was
    /// asked, in one write: so a head and the first bytes after it arrive together.
    fn fake_daemon(answers: Vec<&'static [u8]>) -> (tempfile::TempDir, Client) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                // The request's head, read before answering, as a daemon does.
                let mut head = [0u8; 4096];
                let _ = conn.read(&mut head);
                let _ = conn.write_all(answer);
            }
        });
        let client = Client {
            uri: Uri::Unix(path),
            version: CLIENT_VERSION.into(),
        };
        (dir, client)
    }

    #[test]
    fn a_chunked_body_is_read_whole_across_chunks() {
        let (_dir, client) = fake_daemon(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
        ]);
        let mut body = String::new();
        let mut answer = client.call("GET", "/x", None).unwrap();
        answer.read_to_string(&mut body).unwrap();
        assert_eq!(body, "hello world");
    }

    #[test]
    fn dockers_error_body_becomes_dockers_words() {
        let (_dir, client) = fake_daemon(vec![
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 36\r\n\r\n{\"message\":\"No such container: web\"}",
        ]);
        let error = client
            .call("POST", "/containers/web/stop", None)
            .unwrap_err();
        let daemon = error.downcast_ref::<DaemonError>().unwrap();
        assert_eq!(daemon.status, 404);
        assert_eq!(
            error.to_string(),
            "Error response from daemon: No such container: web"
        );
    }

    #[test]
    fn the_version_is_the_lower_of_the_daemons_and_ours() {
        let (_dir, older) = fake_daemon(vec![
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.40\r\nContent-Length: 2\r\n\r\nOK",
        ]);
        assert_eq!(Client::connect(older.uri).unwrap().version, "1.40");
        let (_dir, newer) = fake_daemon(vec![
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.45\r\nContent-Length: 2\r\n\r\nOK",
        ]);
        assert_eq!(Client::connect(newer.uri).unwrap().version, "1.41");
    }

    #[test]
    fn a_hijacked_stream_keeps_the_bytes_that_came_with_the_head() {
        let (_dir, client) = fake_daemon(vec![
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n\x01\x00\x00\x00\x00\x00\x00\x03hi\n\x02\x00\x00\x00\x00\x00\x00\x04err\n",
        ]);
        let stream = client.hijack("/containers/x/attach", None, false).unwrap();
        assert!(stream.multiplexed);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        super::super::streams::demux(stream, &mut out, &mut err).unwrap();
        assert_eq!(
            (out.as_slice(), err.as_slice()),
            (&b"hi\n"[..], &b"err\n"[..])
        );
    }

    #[test]
    fn an_error_inside_a_pull_stream_fails_the_pull() {
        let (_dir, client) = fake_daemon(vec![
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2a\r\n{\"status\":\"Pulling from library/busybox\"}\n\r\n2a\r\n{\"error\":\"manifest for busybox:9 unknown\"}\r\n0\r\n\r\n",
        ]);
        let error = super::super::image::pull(&client, "busybox:9", true).unwrap_err();
        assert_eq!(
            error.to_string(),
            "Error response from daemon: manifest for busybox:9 unknown"
        );
    }
}
