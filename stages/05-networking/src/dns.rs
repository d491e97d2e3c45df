//! Names by DNS: a small server for each user network, as Docker's embedded DNS and Podman's
//! aardvark-dns.
//!
//! `/etc/hosts` (see the hosts module) gives names to programs that read it, but many ask DNS
//! directly: `nslookup`, `dig`, resolvers that skip nsswitch. So each user-defined bridge network
//! gets a DNS server of its own, listening on the network's gateway address (the bridge's, on the
//! host), port 53, UDP and TCP, and the containers' `/etc/resolv.conf` names that address (the
//! gateway of a container's first network, the one with its default route):
//!
//! ```text
//!  container 10.89.3.2 ──query "db"──▶ 10.89.3.1:53 (skiff's server, on the bridge)
//!                                        │ a container's name, hostname or --network-alias?
//!                                        │   yes: A records, every address that has it
//!                                        │ an address of the network (x.3.89.10.in-addr.arpa)?
//!                                        │   yes: PTR, the container's name
//!                                        └─ anything else: forwarded, bytes as they came, to
//!                                           the asker's --dns servers if it has some, else
//!                                           the host's resolvers; their answer goes back
//! ```
//!
//! **One server per network, answering per asker.** Docker runs one resolver per container,
//! inside its network namespace, that knows all the container's networks. skiff has one per
//! network, on the host; it answers the same by looking at who asks. A question's source
//! address is the asker's address on this network, so the server finds its endpoint in the
//! network's record, hence its container; when that container is on more user networks
//! (`network connect`), the server reads their records too (the store keeps them beside its
//! own) and answers from their names after its own, in the order of the container's
//! interfaces: the first network that knows a name answers it, as in Docker. A network the
//! asker is not on adds nothing, so names still stay on their networks. A container that
//! sends a question with another container's address as its source gets nothing out of it: the
//! answer goes to that address. The same lookup finds the asker's own `--dns` servers, which
//! the container noted on its endpoint: as in Docker, they sit behind the network's server
//! (resolv.conf still names the gateway) and get the questions it cannot answer, in place of
//! the host's resolvers. A loopback `--dns` is a resolver inside the container, which the
//! server on the host cannot reach: that container keeps its servers in its resolv.conf.
//!
//! skiff has no daemon, so the server is a process of its own, started by the first container
//! that joins the network and stopped when the last one leaves. It holds an exclusive lock
//! (flock(2)) on `<root>/networks/<id>.dns.lock` for as long as it runs: a lock is how a starter
//! knows one is already there, and, as the kernel drops it when the process dies, a crash never
//! leaves a stale claim. It learns joins and leaves without a restart by reading a network's
//! record again whenever the file changed (the store replaces it atomically, so it is never half
//! written). The messages are parsed and built with hickory-proto, not by hand.
//!
//! The default network `bridge` has no server, as in Docker: its containers get the host's
//! resolvers (or their `--dns`) and no names. See RFC 1035 (the message format), RFC 1034
//! §5.3.3 (forwarding), resolv.conf(5), and flock(2).

use std::collections::{BTreeMap, BTreeSet};
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
use crate::store::{self, Driver, Endpoint, Network};

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
/// What the server knows of its network: each container's names and address; for a container
/// that is on more networks, theirs too (see [`zone_for`]).
#[derive(Debug, Clone, Default)]
pub struct Zone {
    /// The networks' addresses: PTR questions about them are answered here.
    subnets: Vec<Subnet>,
    /// How many networks the zone holds.
    networks: usize,
    /// Names (lower case, no trailing dot), the address each has, and which of the zone's
    /// networks it is on (0 the first), in the networks' order, then joining order.
    entries: Vec<(String, Ipv4Addr, usize)>,
    /// The IPv6 addresses of the same names, on networks with IPv6: AAAA answers.
    entries6: Vec<(String, Ipv6Addr, usize)>,
}

/// The addresses of `entries` (name, address, network) that have `name`, on the first network
/// that knows it.
fn first_network_has<A: Copy>(entries: &[(String, A, usize)], name: &str) -> Vec<A> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let Some(first) = entries.iter().find(|(n, _, _)| *n == name) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|(n, _, network)| *n == name && *network == first.2)
        .map(|(_, ip, _)| *ip)
        .collect()
}

impl Zone {
    /// The zone of `network`: every endpoint's name, hostname and aliases.
    pub fn of(network: &Network) -> Zone {
        Zone::default().and(network)
    }

    /// This zone with `network`'s names after its own. A name both have keeps this zone's
    /// addresses: the first network that knows a name answers it.
    #[must_use]
    pub fn and(mut self, network: &Network) -> Zone {
        let index = self.networks;
        self.networks += 1;
        self.subnets.extend(network.subnet);
        for endpoint in &network.endpoints {
            let names = [&endpoint.name, &endpoint.hostname]
                .into_iter()
                .chain(&endpoint.aliases);
            for name in names.filter(|n| !n.is_empty()) {
                let name = name.to_ascii_lowercase();
                if let Some(ip6) = endpoint.ip6
                    && !self.entries6.contains(&(name.clone(), ip6, index))
                {
                    self.entries6.push((name.clone(), ip6, index));
                }
                let entry = (name, endpoint.ip, index);
                if !self.entries.contains(&entry) {
                    self.entries.push(entry);
                }
            }
        }
        self
    }

    /// The addresses that have `name` (several for a shared alias), on the first of the zone's
    /// networks that knows it.
    pub fn lookup(&self, name: &str) -> Vec<Ipv4Addr> {
        first_network_has(&self.entries, name)
    }

    /// The IPv6 addresses that have `name` (AAAA answers), by the same rule.
    pub fn lookup6(&self, name: &str) -> Vec<Ipv6Addr> {
        first_network_has(&self.entries6, name)
    }

    /// The name of `ip` (its container's first name), if a container of the zone has it.
    pub fn reverse(&self, ip: Ipv4Addr) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, a, _)| *a == ip)
            .map(|(n, _, _)| n.as_str())
    }

    /// Whether `ip` is one of the zone's networks' addresses.
    fn covers(&self, ip: Ipv4Addr) -> bool {
        self.subnets.iter().any(|s| s.contains(ip))
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

// --- the asker ----------------------------------------------------------------------------------

/// The container of `network` whose address there is `asker`, the source of a question.
fn container_at(network: &Network, asker: IpAddr) -> Option<&Endpoint> {
    let IpAddr::V4(ip) = asker else {
        return None;
    };
    network.endpoints.iter().find(|e| e.ip == ip)
}

/// The number of an interface's name (`eth1` is 1); records older than `network connect`
/// leave it empty, and that was always `eth0`.
fn interface_number(interface: &str) -> u32 {
    interface
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(0)
}

// ANCHOR: zone_for
/// The zone network `own`'s server answers `asker` (a question's source address) from, given
/// the store's networks (`own` may be among them): `own`'s names; and when the asker is a
/// container of `own` that `network connect` put on more user networks, their names after,
/// in the order of its interfaces (`eth1`, `eth2`...), as Docker's resolver tries a
/// container's networks in turn. A network the asker is not on adds nothing: its names stay
/// unknown to it.
pub fn zone_for<'a>(
    own: &Network,
    networks: impl IntoIterator<Item = &'a Network>,
    asker: IpAddr,
) -> Zone {
    let zone = Zone::of(own);
    let Some(container) = container_at(own, asker).map(|e| e.container_id.as_str()) else {
        return zone;
    };
    let mut others: Vec<(u32, &Network)> = networks
        .into_iter()
        .filter(|n| n.id != own.id && !n.is_predefined())
        .filter_map(|n| Some((interface_number(&n.endpoint(container)?.interface), n)))
        .collect();
    others.sort_by_key(|(number, _)| *number);
    others
        .into_iter()
        .fold(zone, |zone, (_, network)| zone.and(network))
}
// ANCHOR_END: zone_for

// ANCHOR: upstreams_for
/// Where the questions of `asker` that are not names go: its container's own servers
/// (`--dns`, port 53) if it named some, else `host`, the host's resolvers.
pub fn upstreams_for(own: &Network, asker: IpAddr, host: &[SocketAddr]) -> Vec<SocketAddr> {
    match container_at(own, asker) {
        Some(endpoint) if !endpoint.dns.is_empty() => endpoint
            .dns
            .iter()
            .map(|ip| SocketAddr::new(*ip, PORT))
            .collect(),
        _ => host.to_vec(),
    }
}

/// Whether the network's server can ask a container's own `--dns` servers for it: not when
/// one of them is a loopback address. That is a resolver inside the container (Docker's
/// reading), on a loopback the server, on the host, cannot reach; such a container keeps its
/// servers in its resolv.conf and asks them itself, without the network's names.
pub fn can_forward_to(servers: &[IpAddr]) -> bool {
    !servers.iter().any(IpAddr::is_loopback)
}
// ANCHOR_END: upstreams_for

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

/// A file's identity: inode and modification time. The store replaces a record by renaming
/// a new file over it, so a new inode means a new record.
type Stamp = (u64, i64, i64);

/// The store's network records as last read, each with its file's identity then: the server's
/// own network, and the others that a container of it may also be on.
struct Records {
    /// `<root>/networks`.
    dir: PathBuf,
    /// The server's network's id.
    own: String,
    /// Every record, by network id.
    files: BTreeMap<String, (Stamp, Network)>,
}

/// What the server answers one asker from.
struct View {
    zone: Zone,
    upstreams: Vec<SocketAddr>,
}

impl Records {
    /// Reads again the records that changed since the last look (a directory listing and a
    /// stat(2) of each: cheap next to a question's round trip), and forgets the removed ones.
    fn refresh(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            self.files.clear();
            return;
        };
        let mut seen = BTreeSet::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(store::record_id) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let stamp = (meta.ino(), meta.mtime(), meta.mtime_nsec());
            seen.insert(id.to_string());
            if self.files.get(id).is_some_and(|(known, _)| *known == stamp) {
                continue;
            }
            let network: Option<Network> = std::fs::read(entry.path())
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            match network {
                Some(network) => self.files.insert(id.to_string(), (stamp, network)),
                None => self.files.remove(id),
            };
        }
        self.files.retain(|id, _| seen.contains(id));
    }

    /// How to answer `asker`; `None` once the server's network is gone or has no container
    /// left, when the server stops.
    fn view(&self, asker: Option<IpAddr>, host: &[SocketAddr]) -> Option<View> {
        let (_, own) = self.files.get(&self.own)?;
        if own.endpoints.is_empty() {
            return None;
        }
        let asker = asker.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Some(View {
            zone: zone_for(own, self.files.values().map(|(_, n)| n), asker),
            upstreams: upstreams_for(own, asker, host),
        })
    }
}

// ANCHOR: serve
/// Serves network `id` of store `root` until it is removed or has no container left: what the
/// hidden command `network dns-serve` runs. `ready`, if given, gets one byte once the sockets
/// are bound, so the starter knows the containers can ask. Each question is answered for its
/// asker: from the names of every network its container is on, and forwarded to its own
/// `--dns` servers if it has some.
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
    let records = Arc::new(Mutex::new(Records {
        dir: root.join("networks"),
        own: network.id.clone(),
        files: BTreeMap::new(),
    }));
    let host = Arc::new(upstreams());
    let turn = Arc::new(AtomicUsize::new(0));
    // An overlay network's server is also its agent on this host: the watch, the lease, and
    // the names of the containers on other hosts.
    let remote =
        (network.driver == Driver::Overlay).then(|| crate::overlay_agent::start(root, &network));
    // The names of the containers on other hosts, for the TCP side as for UDP.
    let with_remote = {
        let (network, remote) = (network.clone(), remote.clone());
        move |view: &mut View| {
            if let Some(remote) = &remote {
                view.zone = std::mem::take(&mut view.zone)
                    .and(&crate::overlay_agent::remote_names(&network, remote));
            }
        }
    };
    {
        let (records, host, turn) = (records.clone(), host.clone(), turn.clone());
        let with_remote = with_remote.clone();
        std::thread::spawn(move || serve_tcp(&tcp, &records, &host, &turn, &with_remote));
    }
    let mut buf = vec![0; 4096];
    loop {
        let received = udp.recv_from(&mut buf);
        let asker = received.as_ref().ok().map(|(_, from)| from.ip());
        let view = {
            let mut r = records.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            r.refresh();
            r.view(asker, &host)
        };
        let Some(mut view) = view else {
            return Ok(());
        };
        let Ok((n, from)) = received else { continue };
        with_remote(&mut view);
        let query = buf[..n].to_vec();
        match answer(&view.zone, &query, turn.fetch_add(1, Ordering::Relaxed)) {
            Reply::Answer(bytes) => {
                let _ = udp.send_to(&bytes, from);
            }
            Reply::Forward => {
                // The upstream may take its time: the next question must not wait for it.
                let udp = udp.try_clone()?;
                std::thread::spawn(move || {
                    if let Some(bytes) =
                        forward(&query, &view.upstreams).or_else(|| server_failure(&query))
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
    records: &Mutex<Records>,
    host: &[SocketAddr],
    turn: &AtomicUsize,
    with_remote: &dyn Fn(&mut View),
) {
    for stream in listener.incoming().flatten() {
        let asker = stream.peer_addr().ok().map(|a| a.ip());
        let view = match records.lock() {
            Ok(mut r) => {
                r.refresh();
                r.view(asker, host)
            }
            Err(_) => return,
        };
        if let Some(mut view) = view {
            with_remote(&mut view);
            let _ = answer_tcp(stream, &view, turn);
        }
    }
}

fn answer_tcp(mut stream: TcpStream, view: &View, turn: &AtomicUsize) -> std::io::Result<()> {
    stream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut query = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut query)?;
    let bytes = match answer(&view.zone, &query, turn.fetch_add(1, Ordering::Relaxed)) {
        Reply::Answer(bytes) => bytes,
        Reply::Forward => {
            match forward(&query, &view.upstreams).or_else(|| server_failure(&query)) {
                Some(bytes) => bytes,
                None => return Ok(()),
            }
        }
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
    matches!(network.driver, Driver::Bridge | Driver::Overlay) && !network.is_default()
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
    let exe = chroot::launch::own_binary();
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
                let _ = std::fs::remove_file(crate::overlay_agent::lease_path(root, id));
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
        let ip = |last| Ipv4Addr::new(10, 89, 3, last);
        Zone {
            subnets: vec!["10.89.3.0/24".parse().unwrap()],
            networks: 1,
            entries: vec![
                ("web".into(), ip(2), 0),
                ("db".into(), ip(3), 0),
                ("api".into(), ip(4), 0),
                ("api".into(), ip(5), 0),
            ],
            entries6: vec![("web".into(), "fd00:50::2".parse().unwrap(), 0)],
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

    // --- a container on several networks, and its own servers --------------------------------

    /// A store with networks `na`, `nb` and `nc`: container `x` on `na` (eth0) and `nb` (eth1)
    /// with its own server 192.0.2.53, `y` on `nb`, `z` on `nc`, and `both`, a name on `na`
    /// and on `nb`.
    fn store_of_three() -> (tempfile::TempDir, Vec<Network>) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (name, subnet) in [
            ("na", "10.89.61.0/24"),
            ("nb", "10.89.62.0/24"),
            ("nc", "10.89.63.0/24"),
        ] {
            store::create(
                root,
                store::CreateOptions {
                    subnet: Some(subnet.parse().unwrap()),
                    ..store::CreateOptions::new(name)
                },
            )
            .unwrap();
        }
        let join = |network: &str, id: &str, interface: &str| {
            store::join(root, network, id, id, id, Path::new(""), None).unwrap();
            store::annotate(root, network, id, (interface, &[]), false).unwrap();
        };
        join("na", "x", "eth0");
        join("nb", "x", "eth1");
        join("nb", "y", "eth0");
        join("nc", "z", "eth0");
        join("na", "both", "eth0");
        join("nb", "both", "eth1");
        let dns = ["192.0.2.53".parse().unwrap()];
        store::note_dns(root, "na", "x", &dns).unwrap();
        let networks = store::list(root).unwrap();
        (dir, networks)
    }

    fn named<'a>(networks: &'a [Network], name: &str) -> &'a Network {
        networks.iter().find(|n| n.name == name).unwrap()
    }

    fn address(network: &Network, id: &str) -> IpAddr {
        IpAddr::V4(network.endpoint(id).unwrap().ip)
    }

    #[test]
    fn a_container_on_two_networks_resolves_the_names_of_both() {
        let (_dir, networks) = store_of_three();
        let (na, nb) = (named(&networks, "na"), named(&networks, "nb"));
        let x = address(na, "x");
        let zone = zone_for(na, &networks, x);
        assert_eq!(zone.lookup("x"), vec![na.endpoint("x").unwrap().ip]);
        assert_eq!(zone.lookup("y."), vec![nb.endpoint("y").unwrap().ip]);
        // A name on both: the first network's address, as Docker's resolver answers.
        assert_eq!(zone.lookup("both"), vec![na.endpoint("both").unwrap().ip]);
        // The other network's addresses resolve back too.
        let y = nb.endpoint("y").unwrap().ip;
        let reply = answered(answer(&zone, &ask(&arpa(y), RecordType::PTR), 0));
        assert_eq!(
            reply.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("y.").unwrap()))
        );
    }

    fn arpa(ip: Ipv4Addr) -> String {
        let [a, b, c, d] = ip.octets();
        format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
    }

    #[test]
    fn names_of_networks_the_asker_is_not_on_stay_unknown() {
        let (_dir, networks) = store_of_three();
        let na = named(&networks, "na");
        // x is not on nc: z is not a name for it.
        let zone = zone_for(na, &networks, address(na, "x"));
        assert!(zone.lookup("z").is_empty());
        assert!(matches!(
            answer(&zone, &ask("z.", RecordType::A), 0),
            Reply::Forward
        ));
        // An asker that is no container of na (the host, say) gets na's names only.
        let host = zone_for(na, &networks, "10.89.61.1".parse().unwrap());
        assert!(!host.lookup("x").is_empty());
        assert!(host.lookup("y").is_empty());
        // y, on nb only, gets nb's names: x (on nb too), not z.
        let nb = named(&networks, "nb");
        let y = zone_for(nb, &networks, address(nb, "y"));
        assert!(y.lookup("x").len() == 1 && y.lookup("z").is_empty());
    }

    #[test]
    fn a_container_with_own_servers_is_forwarded_to_them() {
        let (_dir, networks) = store_of_three();
        let na = named(&networks, "na");
        let host: Vec<SocketAddr> = vec!["127.0.0.1:9".parse().unwrap()];
        assert_eq!(
            upstreams_for(na, address(na, "x"), &host),
            vec!["192.0.2.53:53".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(upstreams_for(na, address(na, "both"), &host), host);
        assert_eq!(
            upstreams_for(na, "10.89.61.1".parse().unwrap(), &host),
            host
        );
        assert!(can_forward_to(&["192.0.2.53".parse().unwrap()]));
        assert!(!can_forward_to(&[
            "192.0.2.53".parse().unwrap(),
            "127.0.0.1".parse().unwrap()
        ]));
    }

    #[test]
    fn the_server_sees_joins_and_leaves_on_every_network() {
        let (dir, networks) = store_of_three();
        let root = dir.path();
        let (na, nb) = (named(&networks, "na"), named(&networks, "nb"));
        let mut records = Records {
            dir: root.join("networks"),
            own: na.id.clone(),
            files: BTreeMap::new(),
        };
        let x = Some(address(na, "x"));
        records.refresh();
        let view = records.view(x, &[]).unwrap();
        assert_eq!(view.zone.lookup("y").len(), 1);
        assert_eq!(view.upstreams.len(), 1);
        // y leaves nb, w joins it: seen at the next question.
        store::leave(root, "nb", "y").unwrap();
        store::join(root, "nb", "w", "w", "w", Path::new(""), None).unwrap();
        records.refresh();
        let view = records.view(x, &[]).unwrap();
        assert!(view.zone.lookup("y").is_empty());
        assert_eq!(view.zone.lookup("w").len(), 1);
        // nb removed: its names are gone; na emptied: the server stops.
        for id in ["x", "both", "w"] {
            store::leave(root, "nb", id).unwrap();
        }
        store::remove(root, &nb.id).unwrap();
        records.refresh();
        assert!(records.view(x, &[]).unwrap().zone.lookup("both").len() == 1);
        for id in ["x", "both"] {
            store::leave(root, "na", id).unwrap();
        }
        records.refresh();
        assert!(records.view(x, &[]).is_none());
    }
}
