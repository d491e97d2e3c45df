//! HTTP/1.1 as the Engine API needs it, over one connection: requests read one after another
//! (clients keep the connection open), answers with a length or chunked, and the *hijack*: an
//! answer `101 UPGRADED` after which the connection is no longer HTTP but the container's raw
//! streams, both ways. The request line and headers are parsed by `httparse`; the rest is the
//! little that RFC 9112 asks of a server that answers one request at a time. Reference: RFC 9112
//! (HTTP/1.1), and the Engine API v1.41's "Hijacking" section (ContainerAttach).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

/// The largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request body accepted (a create's JSON is a few kilobytes).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A client's connection: a unix socket, or TCP on loopback.
pub enum Conn {
    /// `unix://PATH`.
    Unix(UnixStream),
    /// `tcp://127.0.0.1:PORT`.
    Tcp(TcpStream),
}

impl Conn {
    /// A second handle on the same connection, for the other direction of a hijacked stream.
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
        })
    }

    /// Closes one direction (`Write`: the client reads end-of-file).
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.shutdown(how),
            Conn::Tcp(s) => s.shutdown(how),
        }
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Conn::Unix(s) => s.as_fd(),
            Conn::Tcp(s) => s.as_fd(),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET`, `POST`, `HEAD`, `DELETE`...
    pub method: String,
    /// The path, without the query and without the `/v1.41` prefix.
    pub path: String,
    /// The query's pairs, decoded.
    pub query: Vec<(String, String)>,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `?h=ROWS&w=COLS` of a `resize` request, as (rows, columns).
    pub fn terminal_size(&self) -> Result<(u16, u16), super::ApiError> {
        let size = |key: &str| {
            self.param(key)
                .and_then(|v| v.parse::<u16>().ok())
                .ok_or_else(|| {
                    super::ApiError::new(400, format!("bad value for {key}: give h and w"))
                })
        };
        Ok((size("h")?, size("w")?))
    }

    /// Query parameter `key` as Docker's boolean: `1`, `true`, `True` (anything but `0`,
    /// `false` or empty).
    pub fn flag(&self, key: &str) -> bool {
        self.param(key)
            .is_some_and(|v| !matches!(v, "" | "0" | "false" | "False" | "FALSE"))
    }

    /// Header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client closed the connection between requests.
    #[error("the client closed the connection")]
    Closed,
    /// The connection failed.
    #[error("read a request: {0}")]
    Io(#[from] io::Error),
    /// Not HTTP, or more than skiff takes.
    #[error("bad request: {0}")]
    Bad(String),
}

/// Reads requests from a connection, keeping what the client sent past the current one.
pub struct Reader {
    buffer: Vec<u8>,
}

impl Reader {
    /// A reader with nothing buffered.
    pub fn new() -> Reader {
        Reader { buffer: Vec::new() }
    }

    /// What was received past the last request (the first bytes of a hijacked stream).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }

    // ANCHOR: read_request
    /// The next request on `conn`: its head parsed by `httparse`, then its body, by
    /// `Content-Length` or chunked.
    pub fn next(&mut self, conn: &mut Conn) -> Result<Request, ReadError> {
        let (mut request, head_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Request::new(&mut headers);
            match parsed.parse(&self.buffer) {
                Ok(httparse::Status::Complete(len)) => break (head_of(&parsed)?, len),
                Ok(httparse::Status::Partial) if self.buffer.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) => {
                    return Err(ReadError::Bad("request head too large".into()));
                }
                Err(e) => return Err(ReadError::Bad(e.to_string())),
            }
            if self.fill(conn)? == 0 {
                return Err(if self.buffer.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Bad("connection closed inside a request head".into())
                });
            }
        };
        self.buffer.drain(..head_len);
        let chunked = request
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        request.body = if chunked {
            self.chunked_body(conn)?
        } else {
            let length = request
                .header("content-length")
                .map(|v| v.trim().parse::<usize>())
                .transpose()
                .map_err(|_| ReadError::Bad("bad Content-Length".into()))?
                .unwrap_or(0);
            self.exactly(conn, length)?
        };
        Ok(request)
    }
    // ANCHOR_END: read_request

    fn fill(&mut self, conn: &mut Conn) -> Result<usize, ReadError> {
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match conn.read(&mut chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        };
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn exactly(&mut self, conn: &mut Conn, length: usize) -> Result<Vec<u8>, ReadError> {
        if length > MAX_BODY {
            return Err(ReadError::Bad(format!(
                "request body of {length} bytes: more than {MAX_BODY}"
            )));
        }
        while self.buffer.len() < length {
            if self.fill(conn)? == 0 {
                return Err(ReadError::Bad("connection closed inside a body".into()));
            }
        }
        Ok(self.buffer.drain(..length).collect())
    }

    fn line(&mut self, conn: &mut Conn) -> Result<String, ReadError> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buffer.drain(..end + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            if self.buffer.len() > MAX_HEAD || self.fill(conn)? == 0 {
                return Err(ReadError::Bad("bad chunked body".into()));
            }
        }
    }

    fn chunked_body(&mut self, conn: &mut Conn) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.line(conn)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| ReadError::Bad(format!("bad chunk size {size:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.line(conn)?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(ReadError::Bad("request body too large".into()));
            }
            body.extend(self.exactly(conn, size)?);
            self.line(conn)?;
        }
    }
}

impl Default for Reader {
    fn default() -> Self {
        Reader::new()
    }
}

/// The method, path, query and headers of a parsed head.
fn head_of(parsed: &httparse::Request<'_, '_>) -> Result<Request, ReadError> {
    let target = parsed.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    Ok(Request {
        method: parsed.method.unwrap_or("GET").to_string(),
        path: strip_version(&path).to_string(),
        query: form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        headers: parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
    })
}

// ANCHOR: strip_version
/// `/v1.41/containers/json` and `/containers/json` are the same endpoint: a client names the
/// API version it speaks in the path, or none for the server's.
pub fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v")
        && let Some(slash) = rest.find('/')
        && rest[..slash]
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
    {
        return &rest[slash..];
    }
    path
}
// ANCHOR_END: strip_version

/// The reason phrase of a status code.
fn reason(status: u16) -> &'static str {
    match status {
        101 => "UPGRADED",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "",
    }
}

// ANCHOR: headers
/// The headers every answer carries: what the docker CLI reads from `_ping` to agree on a
/// version (`Api-Version`), and what it shows or checks (`Ostype`, `Server`).
fn common_headers(status: u16) -> String {
    format!(
        "HTTP/1.1 {status} {}\r\nApi-Version: {}\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: skiff/{} (linux)\r\n",
        reason(status),
        crate::system::API_VERSION,
        env!("CARGO_PKG_VERSION"),
    )
}
// ANCHOR_END: headers

/// An answer with a whole body. A `HEAD` request gets the headers only.
pub fn respond(
    conn: &mut Conn,
    request: &Request,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    respond_with(conn, request, status, content_type, "", body)
}

/// [`respond`] with more headers (`extra`: whole `Name: value\r\n` lines).
pub fn respond_with(
    conn: &mut Conn,
    request: &Request,
    status: u16,
    content_type: &str,
    extra: &str,
    body: &[u8],
) -> io::Result<()> {
    let mut head = common_headers(status);
    head.push_str(extra);
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    if request.method != "HEAD" && status != 204 && status != 304 {
        out.extend_from_slice(body);
    }
    conn.write_all(&out)
}

/// An answer whose body follows in pieces, as they come ([`Chunked`]).
pub fn start_chunked(conn: &mut Conn, status: u16, content_type: &str) -> io::Result<()> {
    start_chunked_with(conn, status, content_type, "")
}

/// [`start_chunked`] with more headers (`extra`: whole `Name: value\r\n` lines).
pub fn start_chunked_with(
    conn: &mut Conn,
    status: u16,
    content_type: &str,
    extra: &str,
) -> io::Result<()> {
    let head = format!(
        "{}{extra}Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n",
        common_headers(status)
    );
    conn.write_all(head.as_bytes())
}

/// One piece of a chunked body (an empty one ends it: use [`end_chunked`]).
pub fn chunk(conn: &mut Conn, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    conn.write_all(&out)
}

/// Ends a chunked body.
pub fn end_chunked(conn: &mut Conn) -> io::Result<()> {
    conn.write_all(b"0\r\n\r\n")
}

// ANCHOR: hijack
/// Hijacks the connection: `101 UPGRADED`, and from here on the bytes are the container's
/// streams, not HTTP. `multiplexed` says whether they come in 8-byte-header frames (no tty)
/// or raw (a tty).
pub fn hijack(conn: &mut Conn, multiplexed: bool) -> io::Result<()> {
    let kind = if multiplexed {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    };
    let head = format!(
        "{}Content-Type: {kind}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
        common_headers(101)
    );
    conn.write_all(head.as_bytes())
}
// ANCHOR_END: hijack

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_stripped_and_other_paths_kept() {
        assert_eq!(strip_version("/v1.41/containers/json"), "/containers/json");
        assert_eq!(strip_version("/v1.24/_ping"), "/_ping");
        assert_eq!(strip_version("/containers/json"), "/containers/json");
        assert_eq!(strip_version("/volumes/x"), "/volumes/x");
        assert_eq!(strip_version("/version"), "/version");
    }

    #[test]
    fn requests_are_read_one_after_another_with_bodies() {
        let (mut client, server) = UnixStream::pair().unwrap();
        client
            .write_all(
                b"POST /v1.41/containers/create?name=web&x=a%20b HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n{}\
                  POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n",
            )
            .unwrap();
        drop(client);
        let mut conn = Conn::Unix(server);
        let mut reader = Reader::new();
        let first = reader.next(&mut conn).unwrap();
        assert_eq!(first.method, "POST");
        assert_eq!(first.path, "/containers/create");
        assert_eq!(first.param("name"), Some("web"));
        assert_eq!(first.param("x"), Some("a b"));
        assert_eq!(first.header("host"), Some("d"));
        assert_eq!(first.body, b"{}");
        let second = reader.next(&mut conn).unwrap();
        assert_eq!(second.body, b"abcd");
        assert!(matches!(reader.next(&mut conn), Err(ReadError::Closed)));
    }

    #[test]
    fn flags_read_as_docker_reads_them() {
        let request = Request {
            query: vec![
                ("a".into(), "1".into()),
                ("b".into(), "true".into()),
                ("c".into(), "0".into()),
                ("d".into(), "false".into()),
            ],
            ..Request::default()
        };
        assert!(request.flag("a") && request.flag("b"));
        assert!(!request.flag("c") && !request.flag("d") && !request.flag("e"));
    }
}
