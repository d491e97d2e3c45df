//! `skiff system service`: skiff as a daemon, serving Docker's Engine API (v1.41, what docker
//! 20.10 speaks) on a unix socket, so that the `docker` CLI, docker-compose and the Docker SDKs
//! drive skiff unchanged, as Podman's `system service` lets them drive Podman.
//!
//! skiff needs no daemon to run a container: each running container has its monitor. The
//! service is only another client of the same store: a request becomes the same calls the CLI
//! makes (`create`, `lifecycle::start`...), on the same records, so a container that
//! `docker run` started shows in `skiff ps`, and the service can stop and start again without
//! touching a running container.
//!
//! The HTTP server is written here, small, over std's `UnixListener` and `TcpListener` with a
//! thread per connection (so a slow client never stalls another), with `httparse` to parse
//! requests. A server crate would do HTTP for us, but the API's central requests are not HTTP
//! for long: `attach` (and `exec start`) *hijack* the connection and turn it into the
//! container's raw streams both ways; hyper can do that only on tokio, a second runtime model
//! for a course whose every other part is plain threads and system calls, and tiny_http cannot
//! hand over the connection at all. What the API needs of HTTP/1.1 (one request after another
//! on a connection, a body by length or chunked, a chunked answer that streams) is a page of
//! code ([`http`]).
//!
//! Reference: the Docker Engine API v1.41 (docs.docker.com/engine/api/v1.41), podman-system-
//! service(1), unix(7).

pub mod archive;
pub mod containers;
pub mod create;
pub mod engine;
pub mod exec;
pub mod http;
pub mod images;
pub mod networks;
pub mod streams;
pub mod system;
pub mod volumes;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use namespaces::RootArgs;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use http::{Conn, ReadError, Reader, Request};

/// Where the service listens unless told otherwise.
pub const DEFAULT_URI: &str = "unix:///run/skiff/skiff.sock";

/// `system service`'s arguments.
#[derive(Args)]
pub struct ServiceArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Seconds without a request before the service exits (0: never)
    #[arg(
        short = 't',
        long = "time",
        default_value_t = 5,
        value_name = "SECONDS"
    )]
    pub time: u64,
    /// Where to listen: unix:///PATH, or tcp://127.0.0.1:PORT (loopback only)
    #[arg(value_name = "URI", default_value = DEFAULT_URI)]
    pub uri: String,
}

/// What every connection's thread shares: the store, and the attach sockets made for
/// containers that a client attached to before they started.
pub struct Service {
    /// The store's root.
    pub root: PathBuf,
    /// Attach sockets waiting for their container's start, by container id: the start hands
    /// the socket to the monitor, with the client already connected (see [`streams`]).
    pub pending: Mutex<HashMap<String, UnixListener>>,
    /// The exec instances made through the API, by id: created, then started, then inspected.
    pub execs: Arc<Mutex<HashMap<String, exec::Exec>>>,
    /// Connections open now.
    active: AtomicUsize,
    /// When the last request arrived or the last connection closed.
    last: Mutex<Instant>,
}

impl Service {
    fn touch(&self) {
        if let Ok(mut last) = self.last.lock() {
            *last = Instant::now();
        }
    }

    fn idle_for(&self) -> Duration {
        self.last
            .lock()
            .map_or(Duration::ZERO, |last| last.elapsed())
    }
}

/// A listening socket.
enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

/// Set by SIGTERM and SIGINT: the service stops accepting and leaves.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

// ANCHOR: serve
/// Runs the service until `--time` idle seconds pass, or SIGTERM or SIGINT.
pub fn command(args: &ServiceArgs) -> anyhow::Result<i32> {
    chroot::launch::require_root()?;
    let listener = bind(&args.uri)?;
    catch_stop()?;
    let service = Arc::new(Service {
        root: args.root.root.clone(),
        pending: Mutex::new(HashMap::new()),
        execs: Arc::new(Mutex::new(HashMap::new())),
        active: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    let idle = Duration::from_secs(args.time);
    while !STOP.load(Ordering::SeqCst) {
        let ready = {
            let fd = match &listener {
                Listener::Unix(l, _) => l.as_fd(),
                Listener::Tcp(l) => l.as_fd(),
            };
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(500u16)).unwrap_or(0) > 0
        };
        if ready && let Some(conn) = accept(&listener) {
            service.active.fetch_add(1, Ordering::SeqCst);
            service.touch();
            let service = service.clone();
            std::thread::spawn(move || {
                connection(&service, conn);
                service.active.fetch_sub(1, Ordering::SeqCst);
                service.touch();
            });
        } else if args.time > 0
            && service.active.load(Ordering::SeqCst) == 0
            && service.idle_for() >= idle
        {
            break;
        }
    }
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
    Ok(0)
}

/// One connection: requests one after another until the client closes it or hijacks it.
fn connection(service: &Service, mut conn: Conn) {
    let mut reader = Reader::new();
    loop {
        let request = match reader.next(&mut conn) {
            Ok(request) => request,
            Err(ReadError::Bad(message)) => {
                let _ = error(&mut conn, &Request::default(), 400, &message);
                return;
            }
            Err(ReadError::Closed | ReadError::Io(_)) => return,
        };
        service.touch();
        let next = match route(service, &request, &mut conn, &mut reader) {
            Ok(next) => next,
            Err(e) => match error(&mut conn, &request, e.status, &e.message) {
                Ok(()) => Next::KeepAlive,
                Err(_) => Next::Close,
            },
        };
        if matches!(next, Next::Close) {
            return;
        }
    }
}
// ANCHOR_END: serve

/// What a connection does after a request.
pub enum Next {
    /// Reads the next request.
    KeepAlive,
    /// Closes: the connection was hijacked, or the client left.
    Close,
}

/// A request that failed, as Docker says it: a status and `{"message": ...}`.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// The HTTP status: 404 no such object, 409 conflict, 400 bad parameter, 500 the rest.
    pub status: u16,
    /// What failed, on which object.
    pub message: String,
}

impl ApiError {
    /// An error with this status.
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A failure of skiff's own functions, with the status Docker gives it: the typed errors
    /// of the records say which; otherwise `default`.
    pub fn from_anyhow(error: &anyhow::Error, default: u16) -> ApiError {
        use namespaces::records::RecordError;
        let status = error
            .chain()
            .find_map(|cause| match cause.downcast_ref::<RecordError>() {
                Some(RecordError::NoSuchContainer(_)) => Some(404),
                Some(RecordError::NameInUse { .. }) => Some(409),
                Some(RecordError::Ambiguous(_)) => Some(400),
                _ => None,
            })
            .unwrap_or(default);
        ApiError::new(status, chroot::cli::one_line(error))
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> ApiError {
        ApiError::from_anyhow(&error, 500)
    }
}

impl From<std::io::Error> for ApiError {
    fn from(error: std::io::Error) -> ApiError {
        ApiError::new(500, error.to_string())
    }
}

/// What a handler returns.
pub type Reply = Result<Next, ApiError>;

/// Docker's error body.
fn error(conn: &mut Conn, request: &Request, status: u16, message: &str) -> std::io::Result<()> {
    let body = serde_json::json!({ "message": message }).to_string();
    http::respond(conn, request, status, "application/json", body.as_bytes())
}

/// A JSON answer.
pub fn json(
    conn: &mut Conn,
    request: &Request,
    status: u16,
    value: &impl serde::Serialize,
) -> Reply {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::new(500, e.to_string()))?;
    http::respond(conn, request, status, "application/json", &body)?;
    Ok(Next::KeepAlive)
}

/// An answer without a body.
pub fn empty(conn: &mut Conn, request: &Request, status: u16) -> Reply {
    http::respond(conn, request, status, "", &[])?;
    Ok(Next::KeepAlive)
}

// ANCHOR: route
/// The endpoints, by method and path (the version prefix already gone).
fn route(service: &Service, request: &Request, conn: &mut Conn, reader: &mut Reader) -> Reply {
    let parts: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let method = request.method.as_str();
    match (method, parts.as_slice()) {
        ("GET" | "HEAD", ["_ping"]) => engine::ping(conn, request),
        ("GET", ["version"]) => engine::version(conn, request),
        ("GET", ["info"]) => engine::info(service, conn, request),
        ("GET", ["images", "json"]) => engine::images(service, conn, request),
        ("GET", ["images", name @ .., "json"]) if !name.is_empty() => {
            engine::image(service, conn, request, &name.join("/"))
        }
        ("POST", ["images", "prune"]) => images::prune(service, conn, request),
        ("POST", ["images", name @ .., "tag"]) if !name.is_empty() => {
            images::tag(service, conn, request, &name.join("/"))
        }
        ("DELETE", ["images", name @ ..]) if !name.is_empty() => {
            images::remove(service, conn, request, &name.join("/"))
        }
        ("GET", ["containers", "json"]) => containers::list(service, conn, request),
        ("POST", ["containers", "prune"]) => system::prune(service, conn, request),
        ("POST", ["containers", "create"]) => create::create(service, conn, request),
        ("GET", ["containers", id, "json"]) => containers::inspect(service, conn, request, id),
        ("POST", ["containers", id, "start"]) => containers::start(service, conn, request, id),
        ("POST", ["containers", id, "stop"]) => containers::stop(service, conn, request, id),
        ("POST", ["containers", id, "restart"]) => containers::restart(service, conn, request, id),
        ("POST", ["containers", id, "kill"]) => containers::kill(service, conn, request, id),
        ("POST", ["containers", id, "wait"]) => streams::wait(service, conn, request, id),
        ("POST", ["containers", id, "attach"]) => {
            streams::attach(service, conn, request, reader, id)
        }
        ("GET", ["containers", id, "logs"]) => streams::logs(service, conn, request, id),
        ("DELETE", ["containers", id]) => containers::remove(service, conn, request, id),
        ("POST", ["containers", id, "resize"]) => streams::resize(service, conn, request, id),
        ("GET", ["events"]) => streams::events(service, conn, request),
        ("POST", ["containers", id, "pause"]) => {
            containers::pause(service, conn, request, id, true)
        }
        ("POST", ["containers", id, "unpause"]) => {
            containers::pause(service, conn, request, id, false)
        }
        ("POST", ["containers", id, "rename"]) => containers::rename(service, conn, request, id),
        ("GET", ["containers", id, "top"]) => containers::top(service, conn, request, id),
        ("GET" | "HEAD", ["containers", id, "archive"]) => archive::get(service, conn, request, id),
        ("PUT", ["containers", id, "archive"]) => archive::put(service, conn, request, reader, id),
        ("GET", ["containers", id, "export"]) => archive::export(service, conn, id),
        ("GET", ["containers", id, "changes"]) => archive::changes(service, conn, request, id),
        ("GET", ["containers", id, "stats"]) => system::stats(service, conn, request, id),
        ("POST", ["containers", id, "update"]) => system::update(service, conn, request, id),
        ("GET", ["system", "df"]) => system::df(service, conn, request),
        ("POST", ["containers", id, "exec"]) => exec::create(service, conn, request, id),
        ("POST", ["exec", id, "start"]) => exec::start(service, conn, request, reader, id),
        ("GET", ["exec", id, "json"]) => exec::inspect(service, conn, request, id),
        ("POST", ["exec", id, "resize"]) => exec::resize(service, conn, request, id),
        ("GET", ["networks"]) => networks::list(service, conn, request),
        ("POST", ["networks", "create"]) => networks::create(service, conn, request),
        ("POST", ["networks", "prune"]) => networks::prune(service, conn, request),
        ("POST", ["networks", key, "connect"]) => networks::connect(service, conn, request, key),
        ("POST", ["networks", key, "disconnect"]) => {
            networks::disconnect(service, conn, request, key)
        }
        ("DELETE", ["networks", key]) => networks::remove(service, conn, request, key),
        ("GET", ["networks", key]) => networks::inspect(service, conn, request, key),
        ("GET", ["volumes"]) => volumes::list(service, conn, request),
        ("POST", ["volumes", "create"]) => volumes::create(service, conn, request),
        ("POST", ["volumes", "prune"]) => volumes::prune(service, conn, request),
        ("GET", ["volumes", name]) => volumes::inspect(service, conn, request, name),
        ("DELETE", ["volumes", name]) => volumes::remove(service, conn, request, name),
        _ => Err(ApiError::new(
            404,
            format!(
                "page not found: skiff's service does not serve {method} {} yet",
                request.path
            ),
        )),
    }
}
// ANCHOR_END: route

// ANCHOR: bind
/// Listens where `uri` says: `unix://PATH` (0660, group `skiff` when there is one), or
/// `tcp://HOST:PORT` on a loopback address only: the API gives root on this host to whoever
/// can reach it, and skiff has no TLS.
fn bind(uri: &str) -> anyhow::Result<Listener> {
    if let Some(path) = uri.strip_prefix("unix://") {
        return bind_unix(Path::new(path));
    }
    if let Some(address) = uri.strip_prefix("tcp://") {
        let addresses: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(address)
            .with_context(|| format!("bad address in {uri}: use tcp://127.0.0.1:PORT"))?
            .collect();
        if addresses.is_empty() || addresses.iter().any(|a| !a.ip().is_loopback()) {
            bail!(
                "{uri} is not a loopback address: the Engine API gives root on this host to whoever reaches it, and skiff serves TCP without TLS on loopback only (tcp://127.0.0.1:PORT)"
            );
        }
        let listener =
            TcpListener::bind(&addresses[..]).with_context(|| format!("listen on {uri}"))?;
        return Ok(Listener::Tcp(listener));
    }
    bail!("unsupported URI {uri:?}: use unix:///PATH or tcp://127.0.0.1:PORT")
}

fn bind_unix(path: &Path) -> anyhow::Result<Listener> {
    if path.as_os_str().is_empty() || path.is_relative() {
        bail!(
            "unix socket path {} must be absolute: use unix:///PATH",
            path.display()
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            bail!(
                "another service listens on {} already: stop it, or give another URI",
                path.display()
            );
        }
        // Left by a service that did not end cleanly.
        std::fs::remove_file(path).with_context(|| format!("remove stale {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("make {} 0660", path.display()))?;
    // The seed's "permission denied on /var/run/docker.sock": members of this group may use
    // the socket without being root.
    if let Ok(Some(group)) = nix::unistd::Group::from_name("skiff") {
        nix::unistd::chown(path, Some(nix::unistd::Uid::from_raw(0)), Some(group.gid))
            .with_context(|| format!("give {} to group skiff", path.display()))?;
    }
    Ok(Listener::Unix(listener, path.to_path_buf()))
}
// ANCHOR_END: bind

fn accept(listener: &Listener) -> Option<Conn> {
    match listener {
        Listener::Unix(l, _) => l.accept().ok().map(|(s, _)| Conn::Unix(s)),
        Listener::Tcp(l) => l.accept().ok().map(|(s, _)| Conn::Tcp(s)),
    }
}

/// SIGTERM and SIGINT end the service cleanly (its socket removed). The handler only sets a
/// flag, which the accept loop looks at twice a second.
fn catch_stop() -> anyhow::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let action = SigAction::new(
        SigHandler::Handler(on_stop),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.with_context(|| format!("catch {signal}"))?;
    }
    Ok(())
}
