//! Names by DNS: a small server for each user network, as Docker's embedded DNS and Podman's
//! aardvark-dns.
//!
//! `/etc/hosts` (see the hosts module) gives names to programs that read it, but many ask DNS
//! directly: `nslookup`, `dig`, resolvers that skip nsswitch. So each user-defined bridge network
//! gets a DNS server of its own, listening on the network's gateway address (the bridge's, on the
//! host), port 53, UDP and TCP, and the containers' `/etc/resolv.conf` names that address:
//!
//! ```text
//!  container 10.89.3.2 ──query "db"──▶ 10.89.3.1:53 (skiff's server, on the bridge)
//!                                        │ a container's name, hostname or --network-alias?
//!                                        │   yes: A records, every address that has it
//!                                        │ an address of the network (x.3.89.10.in-addr.arpa)?
//!                                        │   yes: PTR, the container's name
//!                                        └─ anything else: forwarded, bytes as they came, to
//!                                           the host's resolvers; their answer goes back
//! ```
//!
//! skiff has no daemon, so the server is a process of its own, started by the first container
//! that joins the network and stopped when the last one leaves. It holds an exclusive lock
//! (flock(2)) on `<root>/networks/<id>.dns.lock` for as long as it runs: a lock is how a starter
//! knows one is already there, and, as the kernel drops it when the process dies, a crash never
//! leaves a stale claim. It learns joins and leaves without a restart by reading the network's
//! record again whenever the file changed (the store replaces it atomically, so it is never half
//! written). The messages are parsed and built with hickory-proto, not by hand.
//!
//! The default network `bridge` has no server, as in Docker: its containers get the host's
//! resolvers and no names. See RFC 1035 (the message format), RFC 1034 §5.3.3 (forwarding),
//! resolv.conf(5), and flock(2).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use nix::fcntl::{Flock, FlockArg};

use crate::ipam::Subnet;
use crate::store::{self, Driver, Network};

/// The port DNS listens on.
pub const PORT: u16 = 53;
/// How long an answer may be cached by the asker: names come and go with containers.
const TTL: u32 = 600;
/// How long a forwarded question waits for the upstream resolver.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Where the upstream resolvers can be set instead of the host's resolv.conf (for tests, which
/// never send a query off the machine): `IP[:PORT],...`.
pub const UPSTREAM_ENV: &str = "SKIFF_DNS_UPSTREAM";

// --- the zone -----------------------------------------------------------------------------------

// ANCHOR: zone
/// What the server knows of its network: each container's names and address.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    /// The network's addresses: PTR questions about them are answered here.
    subnet: Option<Subnet>,
    /// Names (lower case, no trailing dot) and the address each has, in joining order.
    entries: Vec<(String, Ipv4Addr)>,
    /// The IPv6 addresses of the same names, on a network with IPv6: AAAA answers.
    entries6: Vec<(String, Ipv6Addr)>,
}

impl Zone {
    /// The zone of `network`: every endpoint's name, hostname and aliases.
    pub fn of(network: &Network) -> Zone {
        let mut entries = Vec::new();
        let mut entries6 = Vec::new();
        for endpoint in &network.endpoints {
            let names = [&endpoint.name, &endpoint.hostname]
                .into_iter()
                .chain(&endpoint.aliases);
            for name in names.filter(|n| !n.is_empty()) {
                let name = name.to_ascii_lowercase();
                if let Some(ip6) = endpoint.ip6
                    && !entries6.contains(&(name.clone(), ip6))
                {
                    entries6.push((name.clone(), ip6));
                }
                if !entries.contains(&(name.clone(), endpoint.ip)) {
                    entries.push((name, endpoint.ip));
                }
            }
        }
        Zone {
            subnet: network.subnet,
            entries,
            entries6,
        }
    }

    /// The addresses that have `name` (several for a shared alias).
    pub fn lookup(&self, name: &str) -> Vec<Ipv4Addr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, ip)| *ip)
            .collect()
    }

    /// The IPv6 addresses that have `name`: AAAA answers.
    pub fn lookup6(&self, name: &str) -> Vec<Ipv6Addr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.entries6
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, ip)| *ip)
            .collect()
    }

    /// The name of `ip` (its container's first name), if a container of the network has it.
    pub fn reverse(&self, ip: Ipv4Addr) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, a)| *a == ip)
            .map(|(n, _)| n.as_str())
    }

    /// Whether `ip` is one of the network's addresses.
    fn covers(&self, ip: Ipv4Addr) -> bool {
        self.subnet.is_some_and(|s| s.contains(ip))
    }
}
// ANCHOR_END: zone

// --- answering ----------------------------------------------------------------------------------

/// What to do with a question.
#[derive(Debug)]
pub enum Reply {
    /// Send these bytes back.
    Answer(Vec<u8>),
    /// Not ours: ask the upstream resolvers.
    Forward,
    /// Not a DNS message: say nothing.
    Drop,
}

/// An `in-addr.arpa` name as the address it asks about (`4.3.89.10.in-addr.arpa.` is
/// 10.89.3.4).
fn arpa_address(name: &str) -> Option<Ipv4Addr> {
    let rest = name
        .to_ascii_lowercase()
        .trim_end_matches('.')
        .strip_suffix(".in-addr.arpa")?
        .to_string();
    let octets: Vec<u8> = rest
        .split('.')
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    match octets.as_slice() {
        [d, c, b, a] => Some(Ipv4Addr::new(*a, *b, *c, *d)),
        _ => None,
    }
}

// ANCHOR: answer
/// Answers `query` (the bytes of a DNS message) from `zone`; `turn` rotates the order of
/// several addresses, so that askers spread over them (round robin).
pub fn answer(zone: &Zone, query: &[u8], turn: usize) -> Reply {
    let Ok(request) = Message::from_vec(query) else {
        return Reply::Drop;
    };
    if request.metadata.message_type != MessageType::Query {
        return Reply::Drop;
    }
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata = Metadata::response_from_request(&request.metadata);
    let Some(question) = request.queries.first().cloned() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return encode(&response);
    };
    response.add_query(question.clone());
    if request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return encode(&response);
    }
    let name = question.name().to_ascii();
    let kind = question.query_type();
    let mut addresses = zone.lookup(&name);
    if !addresses.is_empty() {
        // Ours. A and ANY get the addresses, AAAA (and ANY) the IPv6 ones on a network with
        // IPv6; the rest an empty answer (the name exists, with no record of that type): the
        // asker must not go looking elsewhere.
        response.metadata.authoritative = true;
        response.metadata.recursion_available = true;
        if matches!(kind, RecordType::A | RecordType::ANY) {
            let len = addresses.len();
            addresses.rotate_left(turn % len);
            for ip in addresses {
                response.add_answer(Record::from_rdata(
                    question.name().clone(),
                    TTL,
                    RData::A(A(ip)),
                ));
            }
        }
        // ANCHOR: aaaa
        if matches!(kind, RecordType::AAAA | RecordType::ANY) {
            let mut addresses = zone.lookup6(&name);
            if !addresses.is_empty() {
                let len = addresses.len();
                addresses.rotate_left(turn % len);
            }
            for ip in addresses {
                response.add_answer(Record::from_rdata(
                    question.name().clone(),
                    TTL,
                    RData::AAAA(AAAA(ip)),
                ));
            }
        }
        // ANCHOR_END: aaaa
        return encode(&response);
    }
    if let Some(ip) = arpa_address(&name).filter(|ip| zone.covers(*ip)) {
        response.metadata.authoritative = true;
        response.metadata.recursion_available = true;
        match (kind, zone.reverse(ip)) {
            (RecordType::PTR | RecordType::ANY, Some(target)) => {
                if let Ok(target) = Name::from_ascii(format!("{target}.")) {
                    response.add_answer(Record::from_rdata(
                        question.name().clone(),
                        TTL,
                        RData::PTR(PTR(target)),
                    ));
                }
            }
            (_, Some(_)) => {}
            (_, None) => response.metadata.response_code = ResponseCode::NXDomain,
        }
        return encode(&response);
    }
    Reply::Forward
}
// ANCHOR_END: answer

fn encode(message: &Message) -> Reply {
    message.to_vec().map_or(Reply::Drop, Reply::Answer)
}

/// A SERVFAIL for `query`: what the asker gets when no upstream answered.
fn server_failure(query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.metadata.response_code = ResponseCode::ServFail;
    response.add_queries(request.queries.iter().cloned());
    response.to_vec().ok()
}

// --- upstream -----------------------------------------------------------------------------------

/// The `nameserver` lines of a resolv.conf, as socket addresses (port 53).
fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, PORT))
        .collect()
}

// ANCHOR: upstream
/// The resolvers to forward to: `SKIFF_DNS_UPSTREAM` if set; else the host's resolv.conf, its
/// loopback servers left out (the server answers from the host's namespace, but a loopback stub
/// such as systemd-resolved's 127.0.0.53 is often the only line); and when nothing is left,
/// systemd-resolved's own list of the real servers, `/run/systemd/resolve/resolv.conf`.
pub fn upstreams() -> Vec<SocketAddr> {
    if let Ok(list) = std::env::var(UPSTREAM_ENV) {
        return list
            .split(',')
            .filter_map(|item| {
                let item = item.trim();
                item.parse::<SocketAddr>().ok().or_else(|| {
                    item.parse::<IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, PORT))
                })
            })
            .collect();
    }
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let host = nameservers(&read("/etc/resolv.conf"));
    let outside: Vec<_> = host
        .iter()
        .copied()
        .filter(|a| !a.ip().is_loopback())
        .collect();
    if !outside.is_empty() {
        return outside;
    }
    let resolved = nameservers(&read(namespaces::filesystem::SYSTEMD_RESOLVED_CONF));
    if resolved.is_empty() { host } else { resolved }
}
// ANCHOR_END: upstream

/// Asks the upstream resolvers in turn over UDP; the first answer wins.
fn forward(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for upstream in upstreams {
        let bind: SocketAddr = if upstream.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let Ok(socket) = UdpSocket::bind(bind) else {
            continue;
        };
        if socket.set_read_timeout(Some(UPSTREAM_TIMEOUT)).is_err()
            || socket.connect(upstream).is_err()
            || socket.send(query).is_err()
        {
            continue;
        }
        let mut buf = vec![0; 4096];
        if let Ok(n) = socket.recv(&mut buf) {
            buf.truncate(n);
            return Some(buf);
        }
    }
    None
}

// --- the server ---------------------------------------------------------------------------------

/// The network's record as last read, and the file's identity then.
struct Watched {
    path: PathBuf,
    stamp: Option<(u64, i64, i64)>,
    zone: Zone,
    /// The network is gone, or has no container left.
    empty: bool,
}

impl Watched {
    /// Reads the record again if the file changed since the last look.
    fn refresh(&mut self) {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.ino(), m.mtime(), m.mtime_nsec()));
        if stamp.is_some() && stamp == self.stamp {
            return;
        }
        self.stamp = stamp;
        let network: Option<Network> = std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        match network {
            Some(network) => {
                self.empty = network.endpoints.is_empty();
                self.zone = Zone::of(&network);
            }
            None => self.empty = true,
        }
    }
}

// ANCHOR: serve
/// Serves network `id` of store `root` until it is removed or has no container left: what the
/// hidden command `network dns-serve` runs. `ready`, if given, gets one byte once the sockets
/// are bound, so the starter knows the containers can ask.
pub fn serve(root: &Path, id: &str, ready: Option<OwnedFd>) -> anyhow::Result<()> {
    use anyhow::Context;
    let network = store::inspect(root, id)?;
    let gateway = network
        .gateway
        .with_context(|| format!("network {} has no gateway to listen on", network.name))?;
    let address = SocketAddr::new(IpAddr::V4(gateway), PORT);
    let udp = UdpSocket::bind(address).with_context(|| format!("listen on {address}/udp"))?;
    let tcp = TcpListener::bind(address).with_context(|| format!("listen on {address}/tcp"))?;
    udp.set_read_timeout(Some(Duration::from_secs(1)))?;
    if let Some(ready) = ready {
        let _ = File::from(ready).write_all(b"1");
    }
    let watched = Arc::new(Mutex::new(Watched {
        path: store::record_path(root, &network.id),
        stamp: None,
        zone: Zone::default(),
        empty: false,
    }));
    let upstreams = Arc::new(upstreams());
    let turn = Arc::new(AtomicUsize::new(0));
    {
        let (watched, upstreams, turn) = (watched.clone(), upstreams.clone(), turn.clone());
        std::thread::spawn(move || serve_tcp(&tcp, &watched, &upstreams, &turn));
    }
    let mut buf = vec![0; 4096];
    loop {
        let received = udp.recv_from(&mut buf);
        let zone = {
            let mut w = watched.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            w.refresh();
            if w.empty {
                return Ok(());
            }
            w.zone.clone()
        };
        let Ok((n, from)) = received else { continue };
        let query = buf[..n].to_vec();
        match answer(&zone, &query, turn.fetch_add(1, Ordering::Relaxed)) {
            Reply::Answer(bytes) => {
                let _ = udp.send_to(&bytes, from);
            }
            Reply::Forward => {
                // The upstream may take its time: the next question must not wait for it.
                let (udp, upstreams) = (udp.try_clone()?, upstreams.clone());
                std::thread::spawn(move || {
                    if let Some(bytes) =
                        forward(&query, &upstreams).or_else(|| server_failure(&query))
                    {
                        let _ = udp.send_to(&bytes, from);
                    }
                });
            }
            Reply::Drop => {}
        }
    }
}
// ANCHOR_END: serve

/// DNS over TCP (RFC 1035 §4.2.2): each message after its length in two bytes.
fn serve_tcp(
    listener: &TcpListener,
    watched: &Mutex<Watched>,
    upstreams: &[SocketAddr],
    turn: &AtomicUsize,
) {
    for stream in listener.incoming().flatten() {
        let zone = match watched.lock() {
            Ok(mut w) => {
                w.refresh();
                w.zone.clone()
            }
            Err(_) => return,
        };
        let _ = answer_tcp(stream, &zone, upstreams, turn);
    }
}

fn answer_tcp(
    mut stream: TcpStream,
    zone: &Zone,
    upstreams: &[SocketAddr],
    turn: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut query = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut query)?;
    let bytes = match answer(zone, &query, turn.fetch_add(1, Ordering::Relaxed)) {
        Reply::Answer(bytes) => bytes,
        Reply::Forward => match forward(&query, upstreams).or_else(|| server_failure(&query)) {
            Some(bytes) => bytes,
            None => return Ok(()),
        },
        Reply::Drop => return Ok(()),
    };
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(&bytes)
}

// --- starting and stopping ----------------------------------------------------------------------

fn lock_path(root: &Path, id: &str) -> PathBuf {
    root.join("networks").join(format!("{id}.dns.lock"))
}

fn open_lock(root: &Path, id: &str) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(lock_path(root, id))
}

/// Whether network `network` gets a DNS server: a user-defined bridge network.
pub fn wanted(network: &Network) -> bool {
    network.driver == Driver::Bridge && !network.is_default()
}

// ANCHOR: ensure
/// Starts the DNS server of `network` unless one runs: called by each container that joins.
/// The starter takes the lock and hands the locked file to the server it starts (a flock
/// belongs to the open file, which the child shares), so no second server can start between
/// the two.
pub fn ensure_running(root: &Path, network: &Network) -> Result<(), String> {
    let file = open_lock(root, &network.id)
        .map_err(|e| format!("open {}: {e}", lock_path(root, &network.id).display()))?;
    // A plain flock(2), not nix's Flock: that one unlocks when dropped, and an unlock through
    // any descriptor of the open file frees it for the server too.
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            // Held: a server runs.
            return Ok(());
        }
        return Err(format!("lock the DNS server's file: {error}"));
    }
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| format!("find skiff: {e}"))?;
    let (ready_read, ready_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("make a pipe: {e}"))?;
    let lock_fd = file.as_raw_fd();
    let ready_fd = ready_write.as_raw_fd();
    let mut command = std::process::Command::new(exe);
    command
        .args(["network", "dns-serve", "--root"])
        .arg(root)
        .arg(&network.id)
        .args(["--lock-fd", "3", "--ready-fd", "4"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls: setsid, fcntl and dup2 on
    // descriptors that exist in the child; the copies on 3 and 4 have no close-on-exec flag.
    // Both are first copied above 10: the lock may already be on 4, or the pipe on 3.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            let lock = libc::fcntl(lock_fd, libc::F_DUPFD_CLOEXEC, 10);
            let ready = libc::fcntl(ready_fd, libc::F_DUPFD_CLOEXEC, 10);
            if lock < 0 || ready < 0 || libc::dup2(lock, 3) < 0 || libc::dup2(ready, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| format!("start the DNS server of {}: {e}", network.name))?;
    drop(ready_write);
    // Closed, not unlocked: the lock belongs to the open file, which the server holds now.
    drop(file);
    // Once it listens it says so; if it dies first, the pipe closes empty.
    let mut ready = File::from(ready_read);
    let mut byte = [0u8; 1];
    let answered = loop {
        match ready.read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            result => break result.unwrap_or(0) == 1,
        }
    };
    // Reaped by init once this process is gone: the server is in a session of its own.
    drop(child);
    if answered {
        Ok(())
    } else {
        Err(format!(
            "the DNS server of network {} did not start (is something else on {}:53?)",
            network.name,
            network.gateway.map(|g| g.to_string()).unwrap_or_default()
        ))
    }
}
// ANCHOR_END: ensure

/// Stops the DNS server of network `id`, if one runs, and waits until it is gone: what the
/// last container's leaving and `network rm` do.
pub fn stop(root: &Path, id: &str) -> Result<(), String> {
    let Ok(file) = open_lock(root, id) else {
        return Ok(());
    };
    let pid_path = root.join("networks").join(format!("{id}.dns.pid"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_gone) => {
                let _ = std::fs::remove_file(lock_path(root, id));
                let _ = std::fs::remove_file(&pid_path);
                return Ok(());
            }
            Err((back, _)) => file = back,
        }
        if Instant::now() > deadline {
            return Err(format!("the DNS server of network {id} did not stop"));
        }
        // The lock is held, so the pid the server wrote is its own.
        if let Some(pid) = std::fs::read_to_string(&pid_path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The server's side of the hand-over: keeps the lock it was given open for its whole life and
/// writes its pid beside it, then serves.
pub fn serve_with_lock(root: &Path, id: &str, lock_fd: i32, ready_fd: i32) -> anyhow::Result<()> {
    // SAFETY: descriptors 3 and 4 were put there by the starter for this process alone.
    let (_lock, ready) = unsafe {
        (
            OwnedFd::from_raw_fd(lock_fd),
            OwnedFd::from_raw_fd(ready_fd),
        )
    };
    for fd in [lock_fd, ready_fd] {
        // SAFETY: fcntl on descriptors this process owns; nothing it execs may inherit them.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let pid_path = root.join("networks").join(format!("{id}.dns.pid"));
    std::fs::write(&pid_path, format!("{}\n", std::process::id()))?;
    serve(root, id, Some(ready))
}

// --- resolv.conf --------------------------------------------------------------------------------

// ANCHOR: resolv
/// A container's resolv.conf on a user network: the network's server, then the host's
/// `search` and `options` lines, as Docker writes it (resolv.conf(5)).
pub fn resolv_conf(gateway: Ipv4Addr, host: &str) -> String {
    let mut text = format!("nameserver {gateway}\n");
    for line in host.lines() {
        let line = line.trim();
        if line.starts_with("search ") || line.starts_with("options ") {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}
// ANCHOR_END: resolv

/// Rewrites the resolv.conf beside `hosts_file` (the container's directory) in place: the file
/// is bind-mounted into the container, and a new inode would not be seen there. Its `search`
/// and `options` lines stay (the host's, or `--dns-search` and `--dns-option`).
pub fn write_resolv_conf(hosts_file: &Path, gateway: Ipv4Addr) -> std::io::Result<()> {
    let path = hosts_file.with_file_name("resolv.conf");
    let host = std::fs::read_to_string(&path).unwrap_or_default();
    let mut file = OpenOptions::new().write(true).truncate(true).open(path)?;
    file.write_all(resolv_conf(gateway, &host).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn zone() -> Zone {
        Zone {
            subnet: Some("10.89.3.0/24".parse().unwrap()),
            entries: vec![
                ("web".into(), Ipv4Addr::new(10, 89, 3, 2)),
                ("db".into(), Ipv4Addr::new(10, 89, 3, 3)),
                ("api".into(), Ipv4Addr::new(10, 89, 3, 4)),
                ("api".into(), Ipv4Addr::new(10, 89, 3, 5)),
            ],
            entries6: vec![("web".into(), "fd00:50::2".parse().unwrap())],
        }
    }

    #[test]
    fn aaaa_of_a_name_with_ipv6_is_its_address() {
        let reply = answered(answer(&zone(), &ask("web.", RecordType::AAAA), 0));
        let ips: Vec<RData> = reply.answers.iter().map(|r| r.data.clone()).collect();
        assert_eq!(ips, vec![RData::AAAA(AAAA("fd00:50::2".parse().unwrap()))]);
    }

    fn ask(name: &str, kind: RecordType) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = 77;
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        message.to_vec().unwrap()
    }

    fn answered(reply: Reply) -> Message {
        match reply {
            Reply::Answer(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("no answer: {other:?}"),
        }
    }

    #[test]
    fn names_get_their_addresses() {
        let reply = answered(answer(&zone(), &ask("WEB.", RecordType::A), 0));
        assert_eq!(reply.metadata.id, 77);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        let ips: Vec<_> = reply.answers.iter().map(|r| r.data.clone()).collect();
        assert_eq!(ips, vec![RData::A(A(Ipv4Addr::new(10, 89, 3, 2)))]);
    }

    #[test]
    fn a_shared_alias_answers_every_address_in_turn() {
        let first = answered(answer(&zone(), &ask("api.", RecordType::A), 0));
        let second = answered(answer(&zone(), &ask("api.", RecordType::A), 1));
        assert_eq!(first.answers.len(), 2);
        assert_ne!(first.answers[0].data, second.answers[0].data);
    }

    #[test]
    fn aaaa_of_a_known_name_is_empty_not_forwarded() {
        let reply = answered(answer(&zone(), &ask("db.", RecordType::AAAA), 0));
        assert!(reply.answers.is_empty());
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    }

    #[test]
    fn addresses_of_the_network_resolve_back() {
        let reply = answered(answer(
            &zone(),
            &ask("3.3.89.10.in-addr.arpa.", RecordType::PTR),
            0,
        ));
        assert_eq!(
            reply.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("db.").unwrap()))
        );
        let unknown = answered(answer(
            &zone(),
            &ask("9.3.89.10.in-addr.arpa.", RecordType::PTR),
            0,
        ));
        assert_eq!(unknown.metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn other_names_are_forwarded_and_garbage_dropped() {
        assert!(matches!(
            answer(&zone(), &ask("example.org.", RecordType::A), 0),
            Reply::Forward
        ));
        assert!(matches!(
            answer(
                &zone(),
                &ask("1.1.168.192.in-addr.arpa.", RecordType::PTR),
                0
            ),
            Reply::Forward
        ));
        assert!(matches!(answer(&zone(), b"\x01\x02", 0), Reply::Drop));
    }

    #[test]
    fn loopback_stubs_are_not_upstreams() {
        let servers =
            nameservers("# resolved\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch lan\n");
        assert_eq!(servers.len(), 2);
        assert!(servers[0].ip().is_loopback());
        assert_eq!(
            resolv_conf(
                Ipv4Addr::new(10, 89, 3, 1),
                "nameserver 127.0.0.53\nsearch lan\noptions edns0\n"
            ),
            "nameserver 10.89.3.1\nsearch lan\noptions edns0\n"
        );
    }
}
