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
    /// The body (empty when it is left to stream: see [`Request::streamed`]).
    pub body: Vec<u8>,
    /// The body not read yet, left for its handler to stream ([`Body`]): a tar that
    /// `docker cp` sends, which may be larger than any body kept in memory.
    pub streamed: Option<Streamed>,
}

/// How a body left to stream is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streamed {
    /// `Content-Length` bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

impl Request {
    /// Whether this request's body is streamed to its handler rather than read first: `PUT
    /// .../archive`, the one whose body is a file tree of any size.
    fn streams_body(&self) -> bool {
        self.method == "PUT" && self.path.ends_with("/archive")
    }
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
        if request.streams_body() {
            request.streamed = Some(if chunked {
                Streamed::Chunked
            } else {
                Streamed::Length(content_length(&request)?)
            });
            return Ok(request);
        }
        request.body = if chunked {
            self.chunked_body(conn)?
        } else {
            let length = content_length(&request)?;
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

/// A request's `Content-Length`, 0 when it has none.
fn content_length(request: &Request) -> Result<usize, ReadError> {
    request
        .header("content-length")
        .map(|v| v.trim().parse::<usize>())
        .transpose()
        .map_err(|_| ReadError::Bad("bad Content-Length".into()))
        .map(|length| length.unwrap_or(0))
}

// ANCHOR: body
/// A streamed request body ([`Request::streamed`]) as a `Read`: what the reader holds of it
/// first, then the connection, chunk by chunk, until its end. Nothing past the end is read,
/// so the connection can carry the next request.
pub struct Body<'a> {
    reader: &'a mut Reader,
    conn: &'a mut Conn,
    chunked: bool,
    /// Bytes left in the body (length) or in the current chunk.
    left: usize,
    done: bool,
}

impl<'a> Body<'a> {
    /// The body of `request`, framed as `streamed` says.
    pub fn new(reader: &'a mut Reader, conn: &'a mut Conn, streamed: Streamed) -> Body<'a> {
        let (chunked, left) = match streamed {
            Streamed::Length(n) => (false, n),
            Streamed::Chunked => (true, 0),
        };
        Body {
            reader,
            conn,
            chunked,
            left,
            done: !chunked && left == 0,
        }
    }

    /// Whether the whole body was read.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

fn io_error(error: ReadError) -> io::Error {
    match error {
        ReadError::Io(e) => e,
        ReadError::Closed => io::ErrorKind::UnexpectedEof.into(),
        ReadError::Bad(message) => io::Error::new(io::ErrorKind::InvalidData, message),
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // The next chunk's size (only chunked bodies get here).
            let line = self.reader.line(self.conn).map_err(io_error)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad chunk size {size:?}"),
                )
            })?;
            if size == 0 {
                while !self.reader.line(self.conn).map_err(io_error)?.is_empty() {}
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        if self.reader.buffer.is_empty() && self.reader.fill(self.conn).map_err(io_error)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let n = buf.len().min(self.left).min(self.reader.buffer.len());
        buf[..n].copy_from_slice(&self.reader.buffer[..n]);
        self.reader.buffer.drain(..n);
        self.left -= n;
        if self.left == 0 {
            if self.chunked {
                self.reader.line(self.conn).map_err(io_error)?;
            } else {
                self.done = true;
            }
        }
        Ok(n)
    }
}
// ANCHOR_END: body

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
        streamed: None,
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
    fn an_archive_body_streams_and_leaves_the_next_request() {
        let (mut client, server) = UnixStream::pair().unwrap();
        client
            .write_all(
                b"PUT /containers/x/archive?path=/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
                  GET /_ping HTTP/1.1\r\n\r\n",
            )
            .unwrap();
        drop(client);
        let mut conn = Conn::Unix(server);
        let mut reader = Reader::new();
        let put = reader.next(&mut conn).unwrap();
        assert!(put.body.is_empty());
        assert_eq!(put.streamed, Some(Streamed::Chunked));
        let mut body = Body::new(&mut reader, &mut conn, Streamed::Chunked);
        let mut read = Vec::new();
        body.read_to_end(&mut read).unwrap();
        assert!(body.is_done());
        assert_eq!(read, b"abcde");
        assert_eq!(reader.next(&mut conn).unwrap().path, "/_ping");
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
