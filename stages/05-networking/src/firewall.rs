//! The firewall: NAT that lets containers out, and published ports that let the world in.
//!
//! Containers on a bridge have private addresses (10.88.0.2) that nothing outside the host can
//! route back to. Two netfilter tricks, set up with iptables(8), fix that, as Docker does:
//!
//! - **Masquerading** (source NAT, `nat POSTROUTING -j MASQUERADE`): a packet from the subnet
//!   that leaves through another interface gets the outgoing interface's address as its source;
//!   conntrack remembers the connection and rewrites the replies back.
//! - **Publishing** a port (destination NAT, `nat PREROUTING`/`OUTPUT -j DNAT`): a connection to
//!   one of the host's own addresses (`-m addrtype --dst-type LOCAL`) on the published port gets
//!   the container's address and port as its destination. PREROUTING catches connections
//!   arriving from other machines and from containers, OUTPUT those made on the host itself.
//!
//! The kernel only routes between interfaces with `net.ipv4.ip_forward=1` (Docker switches it on
//! and leaves it on; so does skiff, when it brings up a bridge), and FORWARD rules accept the
//! traffic in and out of the bridge, in case the chain's policy is DROP. `curl 127.0.0.1:8080`
//! needs two more things, because the kernel refuses to route packets from 127.0.0.0/8 out of an
//! interface: `net.ipv4.conf.<bridge>.route_localnet=1`, and a MASQUERADE rule that gives those
//! packets the bridge's address as their source. That is how Docker without its userland proxy
//! does it; an INPUT rule then drops what containers send to the host's 127.0.0.0/8 themselves,
//! which route_localnet would otherwise let in.
//!
//! **Isolation.** Every bridge may forward to the outside, so without more the kernel would also
//! route from one skiff bridge to another: a container on one network could reach any container
//! on another by address. As Docker does, two chains of skiff's own come first in FORWARD:
//! `SKIFF-ISOLATION-STAGE-1` sends what leaves a bridge for another interface on to
//! `SKIFF-ISOLATION-STAGE-2`, which drops it if that interface is another skiff bridge (and lets
//! it go on, to the outside, otherwise). Stage 1 also holds what a network refuses for itself:
//! an `--internal` network drops everything in or out that is not within the bridge, and a
//! network with `com.docker.network.bridge.enable_icc=false` drops its containers' traffic to
//! each other (seen by iptables because `br_netfilter` hands bridged packets to it). The jump into
//! stage 1 is put back on top of FORWARD by every change skiff makes there, so rules added later
//! (a network created after, a published port) never come before it. The chains exist while a
//! network has rules in them: the change that removes the last one removes the chains too.
//!
//! **Finding skiff's rules.** Apart from the isolation chains, skiff adds its rules to the
//! built-in chains rather than to chains of its own, and `iptables-save` shows every rule where
//! it acts. Each rule carries a comment (`-m comment --comment skiff-net-<12 hex of
//! the network id>` or `skiff-ctr-<12 of the container id>`), so `iptables-save | grep skiff`
//! finds every one, and removal is by comment: list the rules, delete each match by its spec.
//! The jump into the isolation chains, shared by every network, is commented `skiff-isolation`.
//! Each operation goes to the kernel as one `iptables-restore --noflush` batch: atomic, and one
//! process instead of one per rule. The published ports are the rules themselves: a port is
//! taken when a skiff DNAT rule says so, whichever store the container belongs to.
//!
//! **Two backends, chosen once.** Everything above is how the rules look through iptables. On a
//! host where nftables is the kernel's firewall (every current distribution: `iptables` there is
//! iptables-nft), skiff writes the same rules straight into a table of its own, `ip skiff`,
//! through netlink (see the nft module): no process is started, and a container on the bridge
//! costs a veth pair, an address and a route, nothing more. The network's rules are there from
//! its first container to its last, and a published port adds its DNAT rules in one batch.
//! skiff uses iptables instead where nftables cannot do the job: where legacy iptables is in
//! use (its tables are listed in `/proc/net/ip_tables_names`), and where iptables' FORWARD chain
//! drops by default (a Docker host), because an accept in skiff's own table cannot overrule a
//! drop in another. `SKIFF_FIREWALL=iptables` or `=nftables` chooses by hand.
//!
//! **IPv6.** A network with IPv6 gets the same rules once more for IPv6: in a second table,
//! `ip6 skiff`, or through ip6tables. `-p` publishes on both families, or on one when its host
//! address is `0.0.0.0` or `[::]` (Docker's reading); never on `[::1]`, which NAT cannot reach
//! (see [`PortMapping::parse`]). The host forwards IPv6 only while such a network exists.
//!
//! See iptables(8), ip6tables(8), iptables-restore(8), iptables-extensions(8) (DNAT,
//! MASQUERADE, addrtype, comment, conntrack), ip-sysctl in the kernel's documentation
//! (ip_forward, route_localnet, conf/all/forwarding, accept_ra, bridge-nf-call-iptables) and
//! Docker's "Packet filtering and firewalls" page.

use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::nft::{self, ChainSpec, Expr, Family, Hook, NewRule, Nft};
use crate::store::{self, Driver, IFNAME_MAX, Network};

/// What can go wrong with the firewall.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// No iptables command on this host.
    #[error("iptables not found: install the iptables package")]
    NotInstalled,
    /// An iptables command failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// What it said.
        stderr: String,
    },
    /// An iptables command could not be started or talked to.
    #[error("run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// nftables refused or could not be reached.
    #[error(transparent)]
    Nftables(#[from] nft::NftError),
    /// A `-p` value that does not parse.
    #[error("invalid port mapping {value:?}: {reason}")]
    InvalidPort {
        /// What the user wrote.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another skiff container already publishes this port (Docker's wording).
    #[error("Bind for {host_ip}:{port} failed: port is already allocated")]
    PortAllocated {
        /// The host address (0.0.0.0 or :: for all).
        host_ip: IpAddr,
        /// The port.
        port: u16,
    },
    /// A process on the host listens on this port.
    #[error(
        "cannot publish {protocol} port {address}: {source}: a process on the host uses it, pick another host port"
    )]
    PortInUse {
        /// The protocol.
        protocol: Protocol,
        /// Address and port.
        address: SocketAddr,
        /// The bind(2) error.
        #[source]
        source: io::Error,
    },
    /// The host port cannot be bound for another reason (an address not on this host).
    #[error(
        "cannot publish {protocol} port {address}: {source}: is {} one of this host's addresses?",
        address.ip()
    )]
    Bind {
        /// The protocol.
        protocol: Protocol,
        /// Address and port.
        address: SocketAddr,
        /// The bind(2) error.
        #[source]
        source: io::Error,
    },
    /// An IPv6 host address for a container without an IPv6 address.
    #[error(
        "cannot publish {0} on an IPv6 host address: the container has no IPv6 address; create its network with --ipv6 and an IPv6 --subnet"
    )]
    NoIpv6(String),
    /// No free port for `-p CONTAINER_PORT`.
    #[error("no free host port for {0}: every port of the ephemeral range is taken")]
    NoFreePort(String),
    /// A name that cannot go into an iptables rule.
    #[error(
        "invalid {what} {name:?} for a firewall rule: expected letters, digits, '_', '.' or '-'"
    )]
    InvalidName {
        /// What it names (bridge, container id).
        what: &'static str,
        /// The name.
        name: String,
    },
    /// `enable_icc=false` needs bridged packets to go through iptables.
    #[error(
        "{path} is missing: com.docker.network.bridge.enable_icc=false needs the br_netfilter module (modprobe br_netfilter)"
    )]
    BridgeNetfilter {
        /// The sysctl that would switch it on.
        path: PathBuf,
    },
    /// A sysctl could not be set.
    #[error("set {path} to {value}: {source}: skiff needs root to configure the network")]
    Sysctl {
        /// The file under /proc/sys (or where skiff notes a value it changed).
        path: PathBuf,
        /// The value.
        value: String,
        /// The system's error.
        #[source]
        source: io::Error,
    },
}

type Result<T> = std::result::Result<T, FirewallError>;

// --- port mappings -----------------------------------------------------------------------------

/// A transport protocol a port can be published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as iptables and Docker write it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ANCHOR: port_mapping
/// A published port: `-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`.
///
/// The host address says which families it is published on, as in Docker: none (`-p 8080:80`)
/// is every address of the host, IPv4 and, for a container with an IPv6 address, IPv6 too;
/// `0.0.0.0` is every IPv4 address only, `[::]` every IPv6 address only, and any other address
/// that one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address it is published on; `None` for all of them, of both families.
    pub host_ip: Option<IpAddr>,
    /// The host port; 0 until [`publish`] picks a free one (`-p 80`).
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}
// ANCHOR_END: port_mapping

/// Why `-p [::1]:...` is refused: see [`PortMapping::parse`].
const NO_V6_LOOPBACK: &str = "the kernel never delivers a packet for ::1 that came from another interface (IPv6 has no route_localnet), so a port published by NAT cannot answer there, and skiff has no userland proxy: publish on [::] and connect to one of the host's other IPv6 addresses, or publish on 127.0.0.1";

impl PortMapping {
    /// Parses Docker's `-p` syntax: `8080:80`, `127.0.0.1:8080:80`, `[::]:8080:80`,
    /// `8080:80/udp`, `80` (any free host port), `127.0.0.1::80`. `[::1]` is refused: a port
    /// published by NAT cannot be reached there (the kernel delivers nothing for ::1 that came
    /// in on another interface, and IPv6 has no route_localnet).
    pub fn parse(value: &str) -> Result<PortMapping> {
        let invalid = |reason: String| FirewallError::InvalidPort {
            value: value.to_string(),
            reason,
        };
        let (ports, protocol) = match value.rsplit_once('/') {
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some((_, other)) => {
                return Err(invalid(format!(
                    "protocol {other:?} is not supported: use tcp or udp"
                )));
            }
            None => (value, Protocol::Tcp),
        };
        // An IPv6 address is written in brackets, its colons being the separator's.
        let (host_ip, ports) = match ports.strip_prefix('[') {
            Some(rest) => {
                let Some((ip, ports)) = rest.split_once("]:") else {
                    return Err(invalid(
                        "expected [IPV6_ADDRESS]:[HOST_PORT]:CONTAINER_PORT".into(),
                    ));
                };
                let ip = Ipv6Addr::from_str(ip)
                    .map_err(|_| invalid(format!("host address {ip:?} is not an IPv6 address")))?;
                if ip.is_loopback() {
                    return Err(invalid(format!(
                        "cannot publish on [::1]: {NO_V6_LOOPBACK}"
                    )));
                }
                if !ports.contains(':') {
                    return Err(invalid(
                        "expected [IPV6_ADDRESS]:[HOST_PORT]:CONTAINER_PORT".into(),
                    ));
                }
                (Some(IpAddr::V6(ip)), ports)
            }
            None => (None, ports),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (host_ip, host_port, container_port) = match (host_ip, parts.as_slice()) {
            (None, [container]) => (None, "", *container),
            (None, [host, container]) => (None, *host, *container),
            (None, [ip, host, container]) => {
                let ip = match *ip {
                    "" => None,
                    ip => Some(IpAddr::V4(Ipv4Addr::from_str(ip).map_err(|_| {
                        invalid(format!(
                            "host address {ip:?} is not an IPv4 address (write an IPv6 one in brackets: [::])"
                        ))
                    })?)),
                };
                (ip, *host, *container)
            }
            (Some(ip), [host, container]) => (Some(ip), *host, *container),
            _ => {
                return Err(invalid(
                    "expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]".into(),
                ));
            }
        };
        let host_port = match host_port {
            // Docker reads a missing or zero host port as "any free one".
            "" | "0" => 0,
            port => parse_port(port, "host port").map_err(invalid)?,
        };
        let container_port = parse_port(container_port, "container port").map_err(invalid)?;
        Ok(PortMapping {
            host_ip,
            host_port,
            container_port,
            protocol,
        })
    }

    /// The host address, 0.0.0.0 when published on all of them.
    pub fn host_addr(&self) -> IpAddr {
        self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    // ANCHOR: bindings
    /// The host addresses the mapping takes its port on, one per family (an unspecified one
    /// for all of that family's): for a container with an IPv6 address (`ipv6`), `-p 8080:80`
    /// takes 0.0.0.0 and ::, without one only 0.0.0.0.
    pub fn bindings(&self, ipv6: bool) -> Vec<IpAddr> {
        match self.host_ip {
            Some(ip) => vec![ip],
            None if ipv6 => vec![
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ],
            None => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        }
    }
    // ANCHOR_END: bindings

    /// The same port on one host address: the mapping as published in one family's table.
    fn on(&self, host: IpAddr) -> PortMapping {
        PortMapping {
            host_ip: Some(host),
            ..*self
        }
    }

    /// Whether the two mappings want the same host port: same protocol and port, and in one
    /// family the same address or either on all of its addresses. (`None` counts as 0.0.0.0:
    /// compare single-family bindings, see [`PortMapping::bindings`].)
    pub fn clashes_with(&self, other: &PortMapping) -> bool {
        let (a, b) = (self.host_addr(), other.host_addr());
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && a.is_ipv4() == b.is_ipv4()
            && (a == b || a.is_unspecified() || b.is_unspecified())
    }
}

fn parse_port(text: &str, what: &str) -> std::result::Result<u16, String> {
    if text.contains('-') {
        return Err(format!("{what} {text:?}: port ranges are not supported"));
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(format!("{what} {text:?} is not a number from 1 to 65535")),
    }
}

impl FromStr for PortMapping {
    type Err = FirewallError;
    fn from_str(value: &str) -> Result<PortMapping> {
        PortMapping::parse(value)
    }
}

/// As `docker ps` shows it: `0.0.0.0:8080->80/tcp`, `:::8080->80/tcp`.
impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_addr(),
            self.host_port,
            self.container_port,
            self.protocol
        )
    }
}

/// A port some skiff container publishes, as read back from the DNAT rules of one family: an
/// IPv4 one on all addresses has no host address, as `-p 8080:80` has none; an IPv6 one has
/// its address (`::` for all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The rule's comment: `skiff-ctr-` and the first 12 characters of the container id.
    pub comment: String,
    /// The mapping.
    pub mapping: PortMapping,
    /// The container's address.
    pub container_ip: IpAddr,
}

// --- running iptables --------------------------------------------------------------------------

/// The directories searched for iptables after `$PATH`: `sudo` and cron often leave the sbin
/// directories out.
const SBIN: [&str; 2] = ["/usr/sbin", "/sbin"];

fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `iptables --version`, checked once per process: says clearly when iptables is missing.
pub fn iptables_version() -> Result<&'static str> {
    static VERSION: OnceLock<Option<String>> = OnceLock::new();
    if let Some(version) = VERSION.get() {
        return version.as_deref().ok_or(FirewallError::NotInstalled);
    }
    let found = match run("iptables", &["--version"], None) {
        Ok(out) => Some(out.trim().to_string()),
        Err(FirewallError::NotInstalled) => None,
        Err(e) => return Err(e),
    };
    VERSION
        .get_or_init(|| found)
        .as_deref()
        .ok_or(FirewallError::NotInstalled)
}

fn run(name: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let command = format!("{name} {}", args.join(" "));
    let spawn_error = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            FirewallError::NotInstalled
        } else {
            FirewallError::Spawn {
                command: command.clone(),
                source,
            }
        }
    };
    let mut child = Command::new(tool(name))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|source| FirewallError::Spawn {
                command: command.clone(),
                source,
            })?;
    }
    let output = child
        .wait_with_output()
        .map_err(|source| FirewallError::Spawn {
            command: command.clone(),
            source,
        })?;
    if !output.status.success() {
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if let Some(input) = stdin {
            stderr.push_str(&format!("\nthe rules were:\n{input}"));
        }
        return Err(FirewallError::Command {
            command,
            status: output.status.to_string(),
            stderr,
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A rule as `iptables-save` prints it: a table, and `CHAIN SPEC` (what follows `-A`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Saved {
    table: String,
    rule: String,
}

impl Saved {
    /// The value of the rule's `--comment`, unquoted.
    fn comment(&self) -> Option<&str> {
        let mut tokens = self.rule.split_whitespace();
        tokens.find(|t| *t == "--comment")?;
        tokens.next().map(|c| c.trim_matches('"'))
    }

    fn chain(&self) -> &str {
        self.rule.split_whitespace().next().unwrap_or_default()
    }
}

/// Parses `iptables-save` output into its rules.
fn parse_save(text: &str) -> Vec<Saved> {
    let mut table = String::new();
    let mut rules = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim().to_string();
        } else if let Some(rule) = line.strip_prefix("-A ") {
            rules.push(Saved {
                table: table.clone(),
                rule: rule.trim().to_string(),
            });
        }
    }
    rules
}

/// The chains of the filter table that `iptables-save` declares (`:NAME POLICY [0:0]`).
fn filter_chains(text: &str) -> Vec<String> {
    let mut table = "";
    let mut chains = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim();
        } else if let Some(chain) = line.strip_prefix(':')
            && table == "filter"
            && let Some(name) = chain.split_whitespace().next()
        {
            chains.push(name.to_string());
        }
    }
    chains
}

/// The programs of a family: `iptables-save` and `iptables-restore`, or their IPv6 twins
/// `ip6tables-save` and `ip6tables-restore`, which take the same rules with IPv6 addresses.
fn programs(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::Ip => ("iptables-save", "iptables-restore"),
        Family::Ip6 => ("ip6tables-save", "ip6tables-restore"),
    }
}

/// What `iptables-save` (or `ip6tables-save`) prints: every rule of every table, one process
/// instead of an `iptables -S` per table.
fn save_text(family: Family) -> Result<String> {
    iptables_version()?;
    run(programs(family).0, &[], None)
}

/// Every rule of every table of `family`.
#[cfg(test)]
fn saved_rules(family: Family) -> Result<Vec<Saved>> {
    Ok(parse_save(&save_text(family)?))
}

/// A rule skiff adds: where, and how (`-I` puts it first in the chain, `-A` last).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    table: &'static str,
    insert: bool,
    /// `CHAIN SPEC`, written in the order `iptables-save` prints it back, so that a rule that is
    /// already there can be recognised.
    rule: String,
}

impl Rule {
    fn append(table: &'static str, rule: String) -> Rule {
        Rule {
            table,
            insert: false,
            rule,
        }
    }

    fn insert(table: &'static str, rule: String) -> Rule {
        Rule {
            table,
            insert: true,
            rule,
        }
    }
}

/// The `iptables-restore --noflush` input that deletes `remove` and adds `add`, table by table,
/// with the filter table's `isolation` lines around them.
fn restore_input(remove: &[Saved], add: &[Rule], isolation: &Isolation) -> String {
    let mut text = String::new();
    for table in ["nat", "filter"] {
        let mut lines: Vec<String> = Vec::new();
        if table == "filter" {
            lines.extend(isolation.before.iter().cloned());
        }
        lines.extend(
            remove
                .iter()
                .filter(|r| r.table == table)
                .map(|r| format!("-D {}", r.rule)),
        );
        lines.extend(add.iter().filter(|r| r.table == table).map(|r| {
            let verb = if r.insert { "-I" } else { "-A" };
            format!("{verb} {}", r.rule)
        }));
        if table == "filter" {
            lines.extend(isolation.after.iter().cloned());
        }
        if !lines.is_empty() {
            text.push_str(&format!("*{table}\n{}\nCOMMIT\n", lines.join("\n")));
        }
    }
    text
}

fn restore(family: Family, remove: &[Saved], add: &[Rule], isolation: &Isolation) -> Result<()> {
    let input = restore_input(remove, add, isolation);
    if input.is_empty() {
        return Ok(());
    }
    run(programs(family).1, &["--noflush", "-w"], Some(&input)).map(drop)
}

/// Makes the rules of `family` commented `comment` exactly `rules`: nothing to do when they
/// already are, otherwise one batch that deletes the old ones and adds the new (and keeps the
/// isolation chains, see [`isolation`]). Another process changing the same rules between the
/// listing and the batch makes the batch fail; it is then tried again. `listed` is what
/// `iptables-save` printed just before, when the caller has it already.
fn replace(family: Family, listed: Option<String>, comment: &str, rules: &[Rule]) -> Result<()> {
    let mut attempt = 0;
    let mut listed = listed;
    loop {
        let text = match listed.take() {
            Some(text) => text,
            None => save_text(family)?,
        };
        let saved = parse_save(&text);
        let existing: Vec<Saved> = saved
            .iter()
            .filter(|r| ["nat", "filter"].contains(&r.table.as_str()))
            .filter(|r| r.comment() == Some(comment))
            .cloned()
            .collect();
        let mut have: Vec<(&str, &str)> = existing
            .iter()
            .map(|r| (r.table.as_str(), r.rule.as_str()))
            .collect();
        let mut want: Vec<(&str, &str)> =
            rules.iter().map(|r| (r.table, r.rule.as_str())).collect();
        have.sort_unstable();
        want.sort_unstable();
        let changing = have != want;
        let chains = filter_chains(&text);
        let isolation = isolation(&saved, &chains, comment, rules, changing);
        if !changing && isolation.is_empty() {
            return Ok(());
        }
        // Rules that are right already stay; only the isolation chains may need a hand.
        let (remove, add): (&[Saved], &[Rule]) = if changing {
            (&existing, rules)
        } else {
            (&[], &[])
        };
        match restore(family, remove, add, &isolation) {
            Err(FirewallError::Command { .. }) if attempt < 2 => attempt += 1,
            result => return result,
        }
    }
}

// ANCHOR: isolation_chains
/// Docker's DOCKER-ISOLATION-STAGE-1: what leaves a skiff bridge is looked at here first.
pub const ISOLATION_STAGE_1: &str = "SKIFF-ISOLATION-STAGE-1";
/// Docker's DOCKER-ISOLATION-STAGE-2: what left one bridge is dropped if it enters another.
pub const ISOLATION_STAGE_2: &str = "SKIFF-ISOLATION-STAGE-2";
/// The comment on FORWARD's jump into stage 1, which every network shares.
pub const ISOLATION_COMMENT: &str = "skiff-isolation";

/// FORWARD's jump into the isolation chains, as `iptables-save` prints it.
fn isolation_jump() -> String {
    format!("FORWARD -m comment --comment {ISOLATION_COMMENT} -j {ISOLATION_STAGE_1}")
}

/// The filter-table lines one batch adds around its rules to keep the isolation chains right:
/// the chains declared before the first rule goes into them, the jump moved back on top of
/// FORWARD after anything was inserted above it, and the chains removed with their last rule.
#[derive(Debug, Default, PartialEq, Eq)]
struct Isolation {
    before: Vec<String>,
    after: Vec<String>,
}

impl Isolation {
    fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }
}

/// What a batch that makes the rules commented `comment` exactly `rules` must also do to the
/// isolation chains, given the rules and filter chains there are now; `changing` says whether
/// the batch writes those rules (they differ from what is there), or only sees to the chains.
fn isolation(
    saved: &[Saved],
    chains: &[String],
    comment: &str,
    rules: &[Rule],
    changing: bool,
) -> Isolation {
    let in_chains = |chain: &str| chain == ISOLATION_STAGE_1 || chain == ISOLATION_STAGE_2;
    let filter = || saved.iter().filter(|r| r.table == "filter");
    // After the batch, does any network still have rules in the chains?
    let others = filter().any(|r| in_chains(r.chain()) && r.comment() != Some(comment));
    let ours = rules
        .iter()
        .any(|r| r.table == "filter" && in_chains(r.rule.split(' ').next().unwrap_or_default()));
    let jumps: Vec<&Saved> = filter()
        .filter(|r| r.chain() == "FORWARD" && r.comment() == Some(ISOLATION_COMMENT))
        .collect();
    let exist = [ISOLATION_STAGE_1, ISOLATION_STAGE_2].map(|c| chains.iter().any(|h| h == c));
    let mut isolation = Isolation::default();
    let delete_jumps = jumps.iter().map(|jump| format!("-D {}", jump.rule));
    if others || ours {
        // Declaring a chain that exists would flush it: only the missing ones.
        for (chain, exists) in [ISOLATION_STAGE_1, ISOLATION_STAGE_2].iter().zip(exist) {
            if !exists {
                isolation.before.push(format!(":{chain} - [0:0]"));
            }
        }
        let first = filter().find(|r| r.chain() == "FORWARD");
        let on_top = first.is_some_and(|r| r.comment() == Some(ISOLATION_COMMENT));
        let inserts = changing
            && rules
                .iter()
                .any(|r| r.table == "filter" && r.insert && r.rule.starts_with("FORWARD "));
        if !on_top || inserts || jumps.len() != 1 {
            isolation.after.extend(delete_jumps);
            isolation.after.push(format!("-I {}", isolation_jump()));
        }
    } else if exist.contains(&true) || !jumps.is_empty() {
        // The last network's rules go: the chains go with them.
        isolation.after.extend(delete_jumps);
        for (chain, exists) in [ISOLATION_STAGE_1, ISOLATION_STAGE_2].iter().zip(exist) {
            if exists {
                isolation.after.push(format!("-X {chain}"));
            }
        }
    }
    isolation
}
// ANCHOR_END: isolation_chains

fn check_name(what: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok && (what != "bridge" || name.len() <= IFNAME_MAX) {
        Ok(())
    } else {
        Err(FirewallError::InvalidName {
            what,
            name: name.to_string(),
        })
    }
}

/// The comment on a network's rules: `skiff-net-` and 12 hex digits of its id. The default
/// network `bridge` has the same id in every store, but a bridge of its own in each (`skiff0`,
/// `sk-br` + 8 hex digits): its comment names the bridge, so that one store's default network
/// never takes away another's rules.
pub fn network_comment(network: &Network) -> String {
    match (&network.bridge, network.is_default()) {
        (Some(bridge), true) => format!("skiff-net-{bridge}"),
        _ => format!("skiff-net-{}", network.short_id()),
    }
}

/// The comment on a container's rules: `skiff-ctr-` and the first 12 characters of its id.
pub fn container_comment(container_id: &str) -> String {
    let short: String = container_id.chars().take(12).collect();
    format!("skiff-ctr-{short}")
}

// --- sysctls -----------------------------------------------------------------------------------

fn sysctl_on(path: &Path) -> Result<bool> {
    let sysctl_error = |source| FirewallError::Sysctl {
        path: path.to_path_buf(),
        value: "1".to_string(),
        source,
    };
    let now = std::fs::read_to_string(path).map_err(sysctl_error)?;
    if now.trim() == "1" {
        return Ok(false);
    }
    std::fs::write(path, "1").map_err(sysctl_error)?;
    Ok(true)
}

/// Makes sure `net.ipv4.ip_forward` is 1, so the kernel routes between the bridge and the other
/// interfaces; returns whether it changed. Docker does the same at start and never turns it
/// back off (other software may rely on it by then); neither does skiff.
pub fn ensure_ip_forward() -> Result<bool> {
    sysctl_on(Path::new("/proc/sys/net/ipv4/ip_forward"))
}

// ANCHOR: ipv6_forwarding
/// The switch that makes the kernel route IPv6 between interfaces, for all of them.
const IPV6_FORWARDING: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// Where skiff notes the value [`IPV6_FORWARDING`] had before skiff switched it on, to give it
/// back ([`ipv6_forwarding_restore`]); no note, nothing to give back.
fn ipv6_forwarding_note() -> PathBuf {
    store::host_file("skiff-ipv6-forwarding")
}

/// Switches IPv6 forwarding on while a network with IPv6 exists, as Docker does when it makes
/// one (without it, a container's IPv6 packets go no further than the host). It is one switch
/// for the whole host: with it on, the kernel also stops taking router advertisements on links
/// whose `accept_ra` is 1, so skiff notes the value it found first, and the last IPv6 network
/// to go puts it back. Called under the host's network lock.
fn ipv6_forwarding_on() -> Result<()> {
    let path = Path::new(IPV6_FORWARDING);
    let failed = |path: &Path, value: &str| {
        let (path, value) = (path.to_path_buf(), value.to_string());
        move |source| FirewallError::Sysctl {
            path,
            value,
            source,
        }
    };
    let now = std::fs::read_to_string(path).map_err(failed(path, "1"))?;
    if now.trim() != "0" {
        // On already: the host's choice, or skiff's with the note written before.
        return Ok(());
    }
    let note = ipv6_forwarding_note();
    std::fs::write(&note, "0\n").map_err(failed(&note, "0"))?;
    std::fs::write(path, "1").map_err(failed(path, "1"))
}

/// Gives `net.ipv6.conf.all.forwarding` back the value skiff found, if skiff switched it on:
/// the last network with IPv6 is gone.
fn ipv6_forwarding_restore() -> Result<()> {
    let note = ipv6_forwarding_note();
    let Ok(before) = std::fs::read_to_string(&note) else {
        return Ok(());
    };
    let before = before.trim();
    std::fs::write(IPV6_FORWARDING, before).map_err(|source| FirewallError::Sysctl {
        path: PathBuf::from(IPV6_FORWARDING),
        value: before.to_string(),
        source,
    })?;
    // Gone already is fine: another engine gave it back at the same moment.
    match std::fs::remove_file(&note) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(FirewallError::Sysctl {
            path: note,
            value: "nothing (remove it)".to_string(),
            source: e,
        }),
        _ => Ok(()),
    }
}
// ANCHOR_END: ipv6_forwarding

/// The sysctl that lets packets addressed to 127.0.0.0/8 be routed out of `bridge`.
pub fn route_localnet_path(bridge: &str) -> PathBuf {
    Path::new("/proc/sys/net/ipv4/conf")
        .join(bridge)
        .join("route_localnet")
}

// --- the backend --------------------------------------------------------------------------------

/// Which of the kernel's firewall interfaces skiff writes its rules through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// skiff's own nftables table, through netlink: no process per change.
    Nftables,
    /// The iptables programs: one `iptables-restore` per change.
    Iptables,
}

/// Chooses the backend by hand: `nftables` or `iptables`.
pub const BACKEND_ENV: &str = "SKIFF_FIREWALL";

// ANCHOR: backend
/// The backend, detected once per process: nftables unless legacy iptables is in use or
/// iptables' FORWARD chain drops by default (then only iptables rules can let containers out).
pub fn backend() -> Backend {
    #[cfg(test)]
    if let Some(forced) = tests::FORCED.with(std::cell::Cell::get) {
        return forced;
    }
    static CHOSEN: OnceLock<Backend> = OnceLock::new();
    *CHOSEN.get_or_init(|| match std::env::var(BACKEND_ENV).as_deref() {
        // The lab's defence trial: the iptables rules skiff had before its isolation chains.
        _ if chroot::defence::disabled("net-isolation") => Backend::Iptables,
        Ok("iptables") => Backend::Iptables,
        Ok("nftables") => Backend::Nftables,
        _ => {
            let legacy = std::fs::read_to_string("/proc/net/ip_tables_names")
                .is_ok_and(|names| !names.trim().is_empty());
            let forward_drops = || {
                Nft::open()
                    .and_then(|mut nft| nft.chain_policy_accepts("filter", "FORWARD"))
                    .map(|accepts| accepts == Some(false))
            };
            match (legacy, forward_drops()) {
                (false, Ok(false)) => Backend::Nftables,
                _ => Backend::Iptables,
            }
        }
    })
}
// ANCHOR_END: backend

/// skiff's nftables table.
pub const NFT_TABLE: &str = "skiff";

/// The chains of skiff's table: NAT at the usual priorities (dstnat -100, srcnat 100), filters
/// at 0, and the isolation chain that the forward chain jumps to.
const NFT_CHAINS: [ChainSpec; 6] = [
    ChainSpec {
        name: "prerouting",
        base: Some(("nat", Hook::Prerouting, -100)),
    },
    ChainSpec {
        name: "output",
        base: Some(("nat", Hook::Output, -100)),
    },
    ChainSpec {
        name: "postrouting",
        base: Some(("nat", Hook::Postrouting, 100)),
    },
    ChainSpec {
        name: "forward",
        base: Some(("filter", Hook::Forward, 0)),
    },
    ChainSpec {
        name: "input",
        base: Some(("filter", Hook::Input, 0)),
    },
    ChainSpec {
        name: "isolation",
        base: None,
    },
];

// ANCHOR: nft_network_rules
/// A bridge network's rules in skiff's table, the same as [`network_rules`] and
/// [`isolation_rules`] give iptables: masquerading out, the loopback guard that route_localnet
/// needs, and isolation. There is no ACCEPT: skiff's chains accept what they do not drop.
fn nft_network_rules(
    comment: &str,
    bridge: &str,
    subnet: Ipv4Net,
    internal: bool,
    icc: bool,
) -> Vec<NewRule> {
    let rule = |chain, parts: Vec<Vec<Expr>>| NewRule {
        chain,
        exprs: parts.concat(),
        comment: comment.to_string(),
    };
    let mut rules = Vec::new();
    if !internal {
        let from = nft::ifname(false, true, bridge).to_vec();
        let out = nft::ifname(true, false, bridge).to_vec();
        // ip saddr SUBNET oifname != BRIDGE masquerade
        rules.push(rule(
            "postrouting",
            vec![
                nft::addr_in(true, subnet.0, subnet.1),
                out,
                vec![Expr::Masquerade],
            ],
        ));
        // iifname BRIDGE ip daddr 127.0.0.0/8 ct state != established,related ct status != dnat
        // drop: route_localnet lets in only replies and published ports.
        let unset = |key, bits: u32| {
            vec![
                Expr::Ct(key),
                Expr::Bitwise(bits.to_ne_bytes().to_vec()),
                Expr::Cmp(true, 0u32.to_ne_bytes().to_vec()),
            ]
        };
        rules.push(rule(
            "input",
            vec![
                from,
                nft::addr_in(false, Ipv4Addr::new(127, 0, 0, 0), 8),
                unset(0, 0b110),  // ct state: ESTABLISHED (1 << 1), RELATED (1 << 2)
                unset(2, 1 << 5), // ct status: IPS_DST_NAT
                vec![Expr::Drop],
            ],
        ));
    }
    rules.extend(nft_walls(comment, bridge, internal, icc));
    rules
}
// ANCHOR_END: nft_network_rules

// ANCHOR: nft_walls
/// The walls of a bridge network, the same in the IPv4 and the IPv6 table: an internal network
/// lets nothing in or out but within the bridge; what leaves the bridge for another interface
/// jumps to the isolation chain, which drops it if that is another skiff bridge; without
/// inter-container communication, nothing goes from the bridge back into it.
fn nft_walls(comment: &str, bridge: &str, internal: bool, icc: bool) -> Vec<NewRule> {
    let rule = |chain, parts: Vec<Vec<Expr>>| NewRule {
        chain,
        exprs: parts.concat(),
        comment: comment.to_string(),
    };
    let from = |equal| nft::ifname(false, equal, bridge).to_vec();
    let to = |equal| nft::ifname(true, equal, bridge).to_vec();
    let mut rules = Vec::new();
    if internal {
        rules.push(rule(
            "forward",
            vec![from(true), to(false), vec![Expr::Drop]],
        ));
        rules.push(rule(
            "forward",
            vec![from(false), to(true), vec![Expr::Drop]],
        ));
    }
    if !chroot::defence::disabled("net-isolation") {
        if !internal {
            rules.push(rule(
                "forward",
                vec![from(true), to(false), vec![Expr::Jump("isolation")]],
            ));
        }
        if !icc {
            rules.push(rule(
                "forward",
                vec![from(true), to(true), vec![Expr::Drop]],
            ));
        }
        rules.push(rule("isolation", vec![to(true), vec![Expr::Drop]]));
    }
    rules
}
// ANCHOR_END: nft_walls

// ANCHOR: nft_network_rules6
/// A network's IPv6 rules, in the `ip6 skiff` table (same chains): masquerading of its IPv6
/// subnet out (Docker does it too when ip6tables is on), and the same walls as IPv4.
fn nft_network_rules6(
    comment: &str,
    bridge: &str,
    subnet: (Ipv6Addr, u8),
    internal: bool,
    icc: bool,
) -> Vec<NewRule> {
    let mut rules = Vec::new();
    if !internal {
        // ip6 saddr SUBNET oifname != BRIDGE masquerade
        rules.push(NewRule {
            chain: "postrouting",
            exprs: [
                nft::addr6_in(true, subnet.0, subnet.1),
                nft::ifname(true, false, bridge).to_vec(),
                vec![Expr::Masquerade],
            ]
            .concat(),
            comment: comment.to_string(),
        });
    }
    rules.extend(nft_walls(comment, bridge, internal, icc));
    rules
}
// ANCHOR_END: nft_network_rules6

/// An IPv4 network as address and prefix length.
type Ipv4Net = (Ipv4Addr, u8);

// ANCHOR: nft_publish_rules
/// The rules that publish `ports` of the container at `ip` behind `bridge`, in skiff's table
/// of `ip`'s family; each mapping is one binding of that family (see [`PortMapping::bindings`]).
/// The DNAT rules' comments also say what they publish (`skiff-ctr-ID tcp 0.0.0.0:8080
/// 10.88.0.2:80`, `skiff-ctr-ID tcp [::]:8080 [fd00:50::2]:80`), which is how [`published`]
/// reads the ports back.
fn nft_publish_rules(
    comment: &str,
    bridge: &str,
    ip: IpAddr,
    ports: &[PortMapping],
) -> Vec<NewRule> {
    let mut rules = Vec::new();
    for port in ports {
        let host = port.host_addr();
        let mut exprs = Vec::new();
        match host {
            IpAddr::V4(host) if !host.is_unspecified() => {
                exprs.extend(nft::addr_in(false, host, 32));
            }
            IpAddr::V6(host) if !host.is_unspecified() => {
                exprs.extend(nft::addr6_in(false, host, 128));
            }
            _ => {}
        }
        exprs.extend(to_local_port(port));
        exprs.push(match ip {
            IpAddr::V4(ip) => Expr::Dnat(ip, port.container_port),
            IpAddr::V6(ip) => Expr::Dnat6(ip, port.container_port),
        });
        let says = format!(
            "{comment} {} {} {}",
            port.protocol,
            SocketAddr::new(host, port.host_port),
            SocketAddr::new(ip, port.container_port),
        );
        for chain in ["prerouting", "output"] {
            let mut exprs = exprs.clone();
            if chain == "output" && ip.is_ipv6() {
                // ip6 daddr != ::1: see NO_V6_LOOPBACK. Refused at once, rather than rewritten
                // into a connection whose replies the kernel drops.
                let mut not_loopback = vec![
                    Expr::Payload(1, 24, 16),
                    Expr::Cmp(false, Ipv6Addr::LOCALHOST.octets().to_vec()),
                ];
                not_loopback.append(&mut exprs);
                exprs = not_loopback;
            }
            rules.push(NewRule {
                chain,
                exprs,
                comment: says.clone(),
            });
        }
    }
    if !rules.is_empty() && ip.is_ipv4() {
        // A connection to 127.0.0.1 gets the bridge's address as its source, as with iptables.
        let mut exprs = nft::addr_in(true, Ipv4Addr::new(127, 0, 0, 0), 8);
        exprs.extend(nft::ifname(true, true, bridge));
        exprs.push(Expr::Masquerade);
        rules.push(NewRule {
            chain: "postrouting",
            exprs,
            comment: comment.to_string(),
        });
    }
    rules
}
// ANCHOR_END: nft_publish_rules

/// `fib daddr type local` (one of this host's own addresses: iptables' addrtype LOCAL) and the
/// published port's protocol and host port: what a DNAT rule of either table matches.
fn to_local_port(port: &PortMapping) -> Vec<Expr> {
    let protocol = match port.protocol {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    };
    let mut exprs = vec![
        Expr::FibDaddrType,
        Expr::Cmp(true, 2u32.to_ne_bytes().to_vec()),
    ];
    exprs.extend(nft::dport(protocol, port.host_port));
    exprs
}

// ANCHOR: nft_replace
/// The changes that make the rules of one table whose comment starts with `tag` exactly
/// `rules`, given the table's rules as listed: the old ones deleted by handle, the new ones
/// added (with the table and its chains, which adding again leaves as they are). The rules of
/// one owner are told apart by chain and comment: when those already match, nothing is to be
/// done. The last rules out take the table with them, so nothing of skiff's stays in the
/// kernel while no network needs it — and so a table without rules is no table: nothing to
/// delete there.
fn nft_changes(listed: Option<&[nft::Listed]>, tag: &str, rules: &[NewRule]) -> Vec<nft::Change> {
    let Some(listed) = listed.filter(|listed| !listed.is_empty()) else {
        // No table: nothing to delete, and a table to make only for rules to add.
        if rules.is_empty() {
            return Vec::new();
        }
        let mut changes = vec![nft::Change::AddTable];
        changes.extend(NFT_CHAINS.iter().map(|c| nft::Change::AddChain(*c)));
        changes.extend(rules.iter().cloned().map(nft::Change::AddRule));
        return changes;
    };
    let owned = |comment: &Option<String>| {
        comment.as_deref().and_then(|c| c.split(' ').next()) == Some(tag)
    };
    let existing: Vec<&nft::Listed> = listed.iter().filter(|r| owned(&r.comment)).collect();
    let mut have: Vec<(&str, &str)> = existing
        .iter()
        .map(|r| (r.chain.as_str(), r.comment.as_deref().unwrap_or_default()))
        .collect();
    let mut want: Vec<(&str, &str)> = rules
        .iter()
        .map(|r| (r.chain, r.comment.as_str()))
        .collect();
    have.sort_unstable();
    want.sort_unstable();
    if have == want {
        return Vec::new();
    }
    let others = listed.len() - existing.len();
    let mut changes = Vec::new();
    if rules.is_empty() && others == 0 {
        changes.push(nft::Change::DeleteTable);
    } else {
        changes.extend(
            existing
                .iter()
                .map(|r| nft::Change::DeleteRule(r.chain.clone(), r.handle)),
        );
        if !rules.is_empty() {
            changes.push(nft::Change::AddTable);
            changes.extend(NFT_CHAINS.iter().map(|c| nft::Change::AddChain(*c)));
            changes.extend(rules.iter().cloned().map(nft::Change::AddRule));
        }
    }
    changes
}

/// Makes the rules of `tag` exactly `ip` in skiff's `ip` table and `ip6` in its `ip6` table
/// (`None`: leave that table alone): one dump per table, and one batch for both, which the
/// kernel applies as one transaction; nothing is sent when the rules are right already. The
/// caller holds the host's network lock, so no other skiff changes the tables in between.
/// Returns the tables as they were listed.
fn nft_replace(tag: &str, ip: &[NewRule], ip6: Option<&[NewRule]>) -> Result<Listings> {
    let mut nft = Nft::open()?;
    let listings = Listings {
        ip: nft.listing(Family::Ip, NFT_TABLE)?,
        ip6: match ip6 {
            Some(_) => nft.listing(Family::Ip6, NFT_TABLE)?,
            None => None,
        },
    };
    let changes4 = nft_changes(listings.ip.as_deref(), tag, ip);
    let changes6 = match ip6 {
        Some(rules) => nft_changes(listings.ip6.as_deref(), tag, rules),
        None => Vec::new(),
    };
    nft.apply_batch(
        NFT_TABLE,
        &[(Family::Ip, &changes4), (Family::Ip6, &changes6)],
    )?;
    Ok(listings)
}
// ANCHOR_END: nft_replace

/// skiff's two tables as one dump each listed them (`None`: no such table).
struct Listings {
    ip: Option<Vec<nft::Listed>>,
    ip6: Option<Vec<nft::Listed>>,
}

/// The ports published in a table's listing, read from its DNAT rules' comments, in chain
/// order.
fn nft_publications(listed: Option<&[nft::Listed]>) -> Vec<Publication> {
    listed
        .unwrap_or_default()
        .iter()
        .filter(|r| r.chain == "prerouting")
        .filter_map(|r| parse_publication(r.comment.as_deref()?))
        .collect()
}

/// `skiff-ctr-ID tcp 0.0.0.0:8080 10.88.0.2:80` back into a publication.
fn parse_publication(comment: &str) -> Option<Publication> {
    let mut words = comment.split(' ');
    let owner = words.next()?.to_string();
    if !owner.starts_with("skiff-ctr-") {
        return None;
    }
    let protocol = match words.next()? {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    let host: SocketAddr = words.next()?.parse().ok()?;
    let container: SocketAddr = words.next()?.parse().ok()?;
    Some(Publication {
        comment: owner,
        mapping: PortMapping {
            host_ip: published_host(host.ip()),
            host_port: host.port(),
            container_port: container.port(),
            protocol,
        },
        container_ip: container.ip(),
    })
}

/// A publication's host address as `-p` would have it: an IPv4 port on every address has
/// none (`-p 8080:80`); an IPv6 one keeps `::`, the family being what tells them apart.
fn published_host(host: IpAddr) -> Option<IpAddr> {
    Some(host).filter(|ip| !(ip.is_ipv4() && ip.is_unspecified()))
}

// --- networks ----------------------------------------------------------------------------------

// ANCHOR: nat_rules
/// The rules of a bridge network: masquerading out, forwarding in and out of the bridge, and
/// the guard that route_localnet needs (IPv4 only: IPv6 has no route_localnet). An internal
/// network gets neither NAT nor a way out: traffic stays between its containers. `subnet` is
/// of `family`: the same rules go to `iptables-restore` and, for IPv6, `ip6tables-restore`.
fn network_rules(
    family: Family,
    comment: &str,
    bridge: &str,
    subnet: &str,
    internal: bool,
) -> Vec<Rule> {
    let tag = format!("-m comment --comment {comment}");
    if internal {
        let mut rules = vec![Rule::insert(
            "filter",
            format!("FORWARD -i {bridge} -o {bridge} {tag} -j ACCEPT"),
        )];
        if chroot::defence::disabled("net-isolation") {
            // Before the isolation chains: DROPs in FORWARD, which any rule inserted later
            // (another network's ACCEPT, a published port) comes before.
            rules.extend([
                Rule::insert(
                    "filter",
                    format!("FORWARD -i {bridge} ! -o {bridge} {tag} -j DROP"),
                ),
                Rule::insert(
                    "filter",
                    format!("FORWARD ! -i {bridge} -o {bridge} {tag} -j DROP"),
                ),
            ]);
        }
        return rules;
    }
    let mut rules = vec![
        // Out: the source becomes the host's address on the way out; not between containers.
        Rule::append(
            "nat",
            format!("POSTROUTING -s {subnet} ! -o {bridge} {tag} -j MASQUERADE"),
        ),
        // Forwarding: anything from the containers, and the replies to it.
        Rule::insert("filter", format!("FORWARD -i {bridge} {tag} -j ACCEPT")),
        Rule::insert(
            "filter",
            format!(
                "FORWARD -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED {tag} -j ACCEPT"
            ),
        ),
    ];
    if family == Family::Ip {
        // route_localnet lets packets for 127.0.0.0/8 in from the bridge: accept only replies
        // and published-port traffic, never a container talking to the host's loopback.
        rules.push(Rule::insert(
            "filter",
            format!(
                "INPUT -d 127.0.0.0/8 -i {bridge} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT {tag} -j DROP"
            ),
        ));
    }
    rules
}
// ANCHOR_END: nat_rules

// ANCHOR: isolation_rules
/// A network's rules in the isolation chains, which FORWARD looks at before anything else.
/// Every bridge: what leaves it for another interface goes to stage 2, where it is dropped if
/// that interface is another skiff bridge. An internal network: nothing in or out but within
/// the bridge. Without inter-container communication (`enable_icc=false`): nothing from the
/// bridge back into it, so its containers reach the gateway and the outside but not each other.
fn isolation_rules(comment: &str, bridge: &str, internal: bool, icc: bool) -> Vec<Rule> {
    if chroot::defence::disabled("net-isolation") {
        return Vec::new();
    }
    let tag = format!("-m comment --comment {comment}");
    let (one, two) = (ISOLATION_STAGE_1, ISOLATION_STAGE_2);
    let mut rules = Vec::new();
    if internal {
        rules.push(format!("{one} -i {bridge} ! -o {bridge} {tag} -j DROP"));
        rules.push(format!("{one} ! -i {bridge} -o {bridge} {tag} -j DROP"));
    } else {
        rules.push(format!("{one} -i {bridge} ! -o {bridge} {tag} -j {two}"));
    }
    if !icc {
        rules.push(format!("{one} -i {bridge} -o {bridge} {tag} -j DROP"));
    }
    rules.push(format!("{two} -o {bridge} {tag} -j DROP"));
    rules
        .into_iter()
        .map(|rule| Rule::append("filter", rule))
        .collect()
}
// ANCHOR_END: isolation_rules

/// The sysctl that hands bridged packets to iptables (`br_netfilter`).
const BRIDGE_NF_CALL_IPTABLES: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/// Makes sure packets between two ports of one bridge go through iptables, as Docker does for
/// `enable_icc=false`: loads `br_netfilter` when its sysctl is missing, and switches it on.
fn ensure_bridge_netfilter() -> Result<()> {
    let path = Path::new(BRIDGE_NF_CALL_IPTABLES);
    if !path.exists() {
        // Best effort: the check below says what is missing when it did not work.
        let _ = run("modprobe", &["br_netfilter"], None);
    }
    if !path.exists() {
        return Err(FirewallError::BridgeNetfilter {
            path: path.to_path_buf(),
        });
    }
    sysctl_on(path).map(drop)
}

/// Adds a network's rules (idempotent: rules already there stay, missing ones are added).
/// Call it once the bridge exists: it then also switches on `ip_forward` and the bridge's
/// `route_localnet`, and for a network with IPv6 `net.ipv6.conf.all.forwarding`.
/// Networks without a bridge (macvlan, host, none) have no rules.
pub fn network_up(network: &Network) -> Result<()> {
    let (Driver::Bridge, Some(bridge), Some(subnet)) =
        (network.driver, &network.bridge, network.subnet)
    else {
        return Ok(());
    };
    check_name("bridge", bridge)?;
    let comment = network_comment(network);
    let (internal, icc) = (network.internal, network.icc());
    if !icc && !chroot::defence::disabled("net-isolation") {
        ensure_bridge_netfilter()?;
    }
    if backend() == Backend::Nftables {
        let net = (subnet.network(), subnet.prefix_len());
        let rules = nft_network_rules(&comment, bridge, net, internal, icc);
        // ANCHOR: network_up6
        let rules6 = network.ipv6.map(|v6| {
            let net6 = (v6.subnet.network(), v6.subnet.prefix_len());
            nft_network_rules6(&comment, bridge, net6, internal, icc)
        });
        nft_replace(&comment, &rules, rules6.as_deref())?;
        // ANCHOR_END: network_up6
        return forwarding_on(network, bridge);
    }
    // ANCHOR: network_up_iptables
    let mut rules = network_rules(Family::Ip, &comment, bridge, &subnet.to_string(), internal);
    rules.extend(isolation_rules(&comment, bridge, internal, icc));
    replace(Family::Ip, None, &comment, &rules)?;
    if let Some(v6) = network.ipv6 {
        // The same rules for ip6tables: its own nat and filter tables, its own isolation chains.
        let subnet6 = v6.subnet.to_string();
        let mut rules = network_rules(Family::Ip6, &comment, bridge, &subnet6, internal);
        rules.extend(isolation_rules(&comment, bridge, internal, icc));
        replace(Family::Ip6, None, &comment, &rules)?;
    }
    // ANCHOR_END: network_up_iptables
    forwarding_on(network, bridge)
}

/// Switches on what a bridge network needs routed: `ip_forward`, `route_localnet` on the
/// bridge for published ports on 127.0.0.1, and IPv6 forwarding for a network with IPv6.
fn forwarding_on(network: &Network, bridge: &str) -> Result<()> {
    if network.internal {
        return Ok(());
    }
    if Path::new("/proc/sys/net/ipv4/conf").join(bridge).exists() {
        sysctl_on(&route_localnet_path(bridge))?;
        ensure_ip_forward()?;
    }
    if network.ipv6.is_some() {
        ipv6_forwarding_on()?;
    }
    Ok(())
}

/// Removes a network's rules (idempotent). The last network with IPv6 to go gives
/// `net.ipv6.conf.all.forwarding` back the value it had before skiff switched it on.
pub fn network_down(network: &Network) -> Result<()> {
    let comment = network_comment(network);
    let v6 = network.ipv6.is_some();
    let other_network =
        |c: &str| c.starts_with("skiff-net-") && c.split(' ').next() != Some(&comment);
    let v6_left = match backend() {
        Backend::Nftables => {
            let listed = nft_replace(&comment, &[], v6.then_some(&[]))?;
            listed
                .ip6
                .unwrap_or_default()
                .iter()
                .any(|r| r.comment.as_deref().is_some_and(other_network))
        }
        Backend::Iptables => {
            replace(Family::Ip, None, &comment, &[])?;
            if v6 {
                let text = save_text(Family::Ip6)?;
                let left = parse_save(&text)
                    .iter()
                    .any(|r| r.comment().is_some_and(other_network));
                replace(Family::Ip6, Some(text), &comment, &[])?;
                left
            } else {
                true
            }
        }
    };
    if v6 && !v6_left {
        ipv6_forwarding_restore()?;
    }
    Ok(())
}

// --- published ports ---------------------------------------------------------------------------

// ANCHOR: publish_rules
/// The rules that publish `ports` of the container at `ip` behind `bridge`, each mapping one
/// binding of `ip`'s family (see [`PortMapping::bindings`]): for `iptables-restore`, or with
/// IPv6 addresses for `ip6tables-restore`.
fn publish_rules(comment: &str, bridge: &str, ip: IpAddr, ports: &[PortMapping]) -> Vec<Rule> {
    let tag = format!("-m comment --comment {comment}");
    let bits = if ip.is_ipv4() { 32 } else { 128 };
    let mut rules = Vec::new();
    for port in ports {
        let host = port.host_addr();
        let dest = if host.is_unspecified() {
            String::new()
        } else {
            format!("-d {host}/{bits} ")
        };
        let (p, host_port, to) = (port.protocol, port.host_port, port.container_port);
        let matches = format!("-p {p} -m {p} --dport {host_port} -m addrtype --dst-type LOCAL");
        let dnat = format!("-j DNAT --to-destination {}", SocketAddr::new(ip, to));
        // From other machines and from containers...
        rules.push(Rule::append(
            "nat",
            format!("PREROUTING {dest}{matches} {tag} {dnat}"),
        ));
        // ...and from the host itself: loopback included for IPv4; not ::1, where no reply
        // could come back (see NO_V6_LOOPBACK), so a connection there is refused at once.
        let dest_out = if ip.is_ipv6() && dest.is_empty() {
            "! -d ::1/128 ".to_string()
        } else {
            dest
        };
        rules.push(Rule::append(
            "nat",
            format!("OUTPUT {dest_out}{matches} {tag} {dnat}"),
        ));
        // Let the rewritten connection through to the container.
        rules.push(Rule::insert(
            "filter",
            format!(
                "FORWARD -d {ip}/{bits} -o {bridge} -p {p} -m {p} --dport {to} {tag} -j ACCEPT"
            ),
        ));
    }
    if !rules.is_empty() && ip.is_ipv4() {
        // A connection to 127.0.0.1 keeps its loopback source after DNAT, and no container
        // could answer it: give it the bridge's address instead.
        rules.push(Rule::append(
            "nat",
            format!("POSTROUTING -s 127.0.0.0/8 -o {bridge} {tag} -j MASQUERADE"),
        ));
    }
    rules
}
// ANCHOR_END: publish_rules

/// Reads the publications back from the DNAT rules in `nat PREROUTING` of one family, in
/// chain order.
fn publications(rules: &[Saved]) -> Vec<Publication> {
    rules
        .iter()
        .filter(|r| r.table == "nat" && r.chain() == "PREROUTING")
        .filter_map(|r| {
            let comment = r.comment()?.strip_prefix("skiff-ctr-")?;
            let tokens: Vec<&str> = r.rule.split_whitespace().collect();
            let value = |flag: &str| {
                let at = tokens.iter().position(|t| *t == flag)?;
                tokens.get(at + 1).copied()
            };
            let protocol = match value("-p")? {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                _ => return None,
            };
            let to: SocketAddr = value("--to-destination")?.parse().ok()?;
            let host: IpAddr = match value("-d") {
                Some(d) => d.split('/').next()?.parse().ok()?,
                None if to.is_ipv4() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            Some(Publication {
                comment: format!("skiff-ctr-{comment}"),
                mapping: PortMapping {
                    host_ip: published_host(host),
                    host_port: value("--dport")?.parse().ok()?,
                    container_port: to.port(),
                    protocol,
                },
                container_ip: to.ip(),
            })
        })
        .collect()
}

/// Every port published by a skiff container on this host, IPv4 first.
pub fn published() -> Result<Vec<Publication>> {
    Ok(Ruleset::read(true)?.publications())
}

/// skiff's rules in both families as one listing each read them: where [`publish`] learns
/// which ports are taken, and from which it changes its own rules without listing again.
enum Ruleset {
    /// skiff's nftables tables.
    Nft(Listings),
    /// `iptables-save`'s output, and `ip6tables-save`'s when asked.
    Iptables(String, Option<String>),
}

impl Ruleset {
    /// One listing of the IPv4 rules and, with `ipv6`, one of the IPv6 rules.
    fn read(ipv6: bool) -> Result<Ruleset> {
        Ok(match backend() {
            Backend::Nftables => {
                let mut nft = Nft::open()?;
                Ruleset::Nft(Listings {
                    ip: nft.listing(Family::Ip, NFT_TABLE)?,
                    ip6: match ipv6 {
                        true => nft.listing(Family::Ip6, NFT_TABLE)?,
                        false => None,
                    },
                })
            }
            Backend::Iptables => {
                let ip6 = match ipv6 {
                    true => match save_text(Family::Ip6) {
                        Ok(text) => Some(text),
                        // No ip6tables: nothing published on IPv6 through it either.
                        Err(FirewallError::NotInstalled) => None,
                        Err(e) => return Err(e),
                    },
                    false => None,
                };
                Ruleset::Iptables(save_text(Family::Ip)?, ip6)
            }
        })
    }

    fn publications(&self) -> Vec<Publication> {
        match self {
            Ruleset::Nft(listings) => {
                let mut all = nft_publications(listings.ip.as_deref());
                all.extend(nft_publications(listings.ip6.as_deref()));
                all
            }
            Ruleset::Iptables(ip, ip6) => {
                let mut all = publications(&parse_save(ip));
                all.extend(ip6.iter().flat_map(|text| publications(&parse_save(text))));
                all
            }
        }
    }
}

/// Checks that no process on the host holds the port on its address (one binding): it would
/// never see its connections again. An IPv6 socket is bound IPv6-only, as the binding is.
fn check_bindable(port: &PortMapping) -> Result<()> {
    use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrStorage};
    let address = SocketAddr::new(port.host_addr(), port.host_port);
    let family = match address {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let kind = match port.protocol {
        Protocol::Tcp => SockType::Stream,
        Protocol::Udp => SockType::Datagram,
    };
    let result = socket::socket(family, kind, SockFlag::SOCK_CLOEXEC, None).and_then(|fd| {
        if address.is_ipv6() {
            socket::setsockopt(&fd, socket::sockopt::Ipv6V6Only, &true)?;
        }
        socket::bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrStorage::from(address),
        )
    });
    result.map_err(|errno| {
        let source = io::Error::from(errno);
        if source.kind() == io::ErrorKind::AddrInUse {
            FirewallError::PortInUse {
                protocol: port.protocol,
                address,
                source,
            }
        } else {
            FirewallError::Bind {
                protocol: port.protocol,
                address,
                source,
            }
        }
    })
}

/// Whether `port` can take its host port on every binding: no skiff container has it
/// (`taken`, single bindings) and no process on the host holds it. The first binding that
/// cannot, as the error.
fn check_free(port: &PortMapping, ipv6: bool, taken: &[PortMapping]) -> Result<()> {
    for host in port.bindings(ipv6) {
        if taken.iter().any(|t| t.clashes_with(&port.on(host))) {
            return Err(FirewallError::PortAllocated {
                host_ip: host,
                port: port.host_port,
            });
        }
    }
    port.bindings(ipv6)
        .into_iter()
        .try_for_each(|host| check_bindable(&port.on(host)))
}

/// A free host port for `port`, from the kernel's ephemeral range, starting at a random place.
fn pick_port(port: &PortMapping, ipv6: bool, taken: &[PortMapping]) -> Result<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut numbers = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((numbers.next()??, numbers.next()??))
        })
        .filter(|(low, high)| low <= high)
        .unwrap_or((32768, 60999));
    let span = u32::from(range.1 - range.0) + 1;
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ std::process::id())
        .unwrap_or(0)
        % span;
    for i in 0..span {
        let Ok(candidate) = u16::try_from(u32::from(range.0) + (start + i) % span) else {
            continue;
        };
        let mapping = PortMapping {
            host_port: candidate,
            ..*port
        };
        if check_free(&mapping, ipv6, taken).is_ok() {
            return Ok(candidate);
        }
    }
    Err(FirewallError::NoFreePort(port.to_string()))
}

// ANCHOR: publish
/// Publishes `ports` of container `container_id`, whose address is `container_ip` (and
/// `container_ip6` on a network with IPv6) on `bridge`: on IPv4, and on IPv6 where the
/// container has it, as each mapping's host address says (see [`PortMapping::bindings`]).
/// Returns the mappings as published (a host port of 0 replaced by the one picked). Refuses a
/// port another skiff container publishes, or a process on the host listens on.
///
/// One listing of each table says which ports are taken, and the rules are replaced from the
/// same listing, in one batch. That is sound because the caller holds the host's network lock
/// ([`store::host_lock`]), as for every change to FORWARD: no other engine publishes between
/// the listing and the batch.
pub fn publish(
    container_id: &str,
    bridge: &str,
    (container_ip, container_ip6): (Ipv4Addr, Option<Ipv6Addr>),
    ports: &[PortMapping],
) -> Result<Vec<PortMapping>> {
    store::validate_container_id(container_id).map_err(|_| FirewallError::InvalidName {
        what: "container id",
        name: container_id.to_string(),
    })?;
    check_name("bridge", bridge)?;
    let comment = container_comment(container_id);
    let ipv6 = container_ip6.is_some();
    let listed = Ruleset::read(ipv6)?;
    let mut taken: Vec<PortMapping> = listed
        .publications()
        .into_iter()
        .filter(|p| p.comment != comment)
        .map(|p| p.mapping)
        .collect();
    let mut chosen: Vec<PortMapping> = Vec::new();
    for port in ports {
        let mut port = *port;
        if port.host_ip.is_some_and(|ip| ip.is_ipv6()) && !ipv6 {
            return Err(FirewallError::NoIpv6(port.to_string()));
        }
        if port.host_port == 0 {
            port.host_port = pick_port(&port, ipv6, &taken)?;
        } else {
            check_free(&port, ipv6, &taken)?;
        }
        taken.extend(port.bindings(ipv6).into_iter().map(|host| port.on(host)));
        chosen.push(port);
    }
    // Each mapping split into its bindings, one family each.
    let bindings = |v4: bool| -> Vec<PortMapping> {
        chosen
            .iter()
            .flat_map(|port| port.bindings(ipv6).into_iter().map(|host| port.on(host)))
            .filter(|binding| binding.host_addr().is_ipv4() == v4)
            .collect()
    };
    let ip = IpAddr::V4(container_ip);
    let ip6 = container_ip6.map(IpAddr::V6);
    match listed {
        Ruleset::Nft(listings) => {
            let rules = nft_publish_rules(&comment, bridge, ip, &bindings(true));
            let changes4 = nft_changes(listings.ip.as_deref(), &comment, &rules);
            let changes6 = match ip6 {
                Some(ip6) => {
                    let rules = nft_publish_rules(&comment, bridge, ip6, &bindings(false));
                    nft_changes(listings.ip6.as_deref(), &comment, &rules)
                }
                None => Vec::new(),
            };
            Nft::open()?.apply_batch(
                NFT_TABLE,
                &[(Family::Ip, &changes4), (Family::Ip6, &changes6)],
            )?;
        }
        Ruleset::Iptables(text, text6) => {
            let rules = publish_rules(&comment, bridge, ip, &bindings(true));
            replace(Family::Ip, Some(text), &comment, &rules)?;
            if let Some(ip6) = ip6 {
                let rules = publish_rules(&comment, bridge, ip6, &bindings(false));
                replace(Family::Ip6, text6, &comment, &rules)?;
            }
        }
    }
    Ok(chosen)
}
// ANCHOR_END: publish

/// Removes every rule of container `container_id`, in both families (idempotent).
pub fn unpublish(container_id: &str) -> Result<()> {
    unpublish_from(container_id, true)
}

/// Removes container `container_id`'s rules from the IPv4 tables and, with `ipv6` (it has an
/// IPv6 address, so it may have published there), from the IPv6 ones (idempotent).
pub fn unpublish_from(container_id: &str, ipv6: bool) -> Result<()> {
    let comment = container_comment(container_id);
    match backend() {
        Backend::Nftables => nft_replace(&comment, &[], ipv6.then_some(&[])).map(drop),
        Backend::Iptables => {
            replace(Family::Ip, None, &comment, &[])?;
            if ipv6 {
                replace(Family::Ip6, None, &comment, &[])?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    thread_local! {
        /// The backend a test thread uses, whatever the host would choose.
        pub(super) static FORCED: std::cell::Cell<Option<Backend>> =
            const { std::cell::Cell::new(None) };
    }

    fn parse(value: &str) -> PortMapping {
        PortMapping::parse(value).unwrap()
    }

    fn mapping(ip: Option<&str>, host: u16, container: u16, protocol: Protocol) -> PortMapping {
        PortMapping {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: host,
            container_port: container,
            protocol,
        }
    }

    #[test]
    fn firewall_parses_every_port_form() {
        use Protocol::{Tcp, Udp};
        assert_eq!(parse("8080:80"), mapping(None, 8080, 80, Tcp));
        assert_eq!(
            parse("127.0.0.1:8080:80"),
            mapping(Some("127.0.0.1"), 8080, 80, Tcp)
        );
        assert_eq!(parse("8080:80/udp"), mapping(None, 8080, 80, Udp));
        assert_eq!(parse("8080:80/tcp"), mapping(None, 8080, 80, Tcp));
        assert_eq!(parse("80"), mapping(None, 0, 80, Tcp));
        assert_eq!(parse("53/udp"), mapping(None, 0, 53, Udp));
        assert_eq!(
            parse("127.0.0.1::80"),
            mapping(Some("127.0.0.1"), 0, 80, Tcp)
        );
        // 0.0.0.0 is IPv4 only, [::] IPv6 only; no address is both (Docker's meanings).
        assert_eq!(
            parse("0.0.0.0:8080:80"),
            mapping(Some("0.0.0.0"), 8080, 80, Tcp)
        );
        assert_eq!(parse("[::]:8080:80"), mapping(Some("::"), 8080, 80, Tcp));
        assert_eq!(
            parse("[fd00::2]::53/udp"),
            mapping(Some("fd00::2"), 0, 53, Udp)
        );
        assert_eq!(parse("::80"), mapping(None, 0, 80, Tcp));
        assert_eq!(parse("0:80"), mapping(None, 0, 80, Tcp));
        assert_eq!(parse("65535:1"), mapping(None, 65535, 1, Tcp));
        assert_eq!(
            "8080:80".parse::<PortMapping>().ok(),
            Some(parse("8080:80"))
        );
    }

    #[test]
    fn firewall_names_the_bad_port_value() {
        let cases = [
            (
                "99999:80",
                "host port \"99999\" is not a number from 1 to 65535",
            ),
            (
                "abc",
                "container port \"abc\" is not a number from 1 to 65535",
            ),
            (
                "8080:0",
                "container port \"0\" is not a number from 1 to 65535",
            ),
            (
                "8080:",
                "container port \"\" is not a number from 1 to 65535",
            ),
            ("", "container port \"\" is not a number from 1 to 65535"),
            (
                "+80:80",
                "host port \"+80\" is not a number from 1 to 65535",
            ),
            (
                "8080:80/sctp",
                "protocol \"sctp\" is not supported: use tcp or udp",
            ),
            ("8080:80/", "protocol \"\" is not supported: use tcp or udp"),
            (
                "1.2.3:8080:80",
                "host address \"1.2.3\" is not an IPv4 address (write an IPv6 one in brackets: [::])",
            ),
            (
                "localhost:8080:80",
                "host address \"localhost\" is not an IPv4 address (write an IPv6 one in brackets: [::])",
            ),
            (
                "[10.0.0.1]:8080:80",
                "host address \"10.0.0.1\" is not an IPv6 address",
            ),
            (
                "[::]:80",
                "expected [IPV6_ADDRESS]:[HOST_PORT]:CONTAINER_PORT",
            ),
            (
                "[::8080:80",
                "expected [IPV6_ADDRESS]:[HOST_PORT]:CONTAINER_PORT",
            ),
            (
                "8000-8001:80-81",
                "host port \"8000-8001\": port ranges are not supported",
            ),
            (
                "[::1]:8080:80",
                &format!("cannot publish on [::1]: {NO_V6_LOOPBACK}"),
            ),
            (
                "a:b:c:d",
                "expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]",
            ),
        ];
        for (value, reason) in cases {
            assert_eq!(
                PortMapping::parse(value).unwrap_err().to_string(),
                format!("invalid port mapping {value:?}: {reason}"),
            );
        }
    }

    #[test]
    fn firewall_shows_mappings_as_docker_ps() {
        assert_eq!(parse("8080:80").to_string(), "0.0.0.0:8080->80/tcp");
        assert_eq!(parse("[::]:8080:80").to_string(), ":::8080->80/tcp");
        assert_eq!(
            parse("127.0.0.1:53:53/udp").to_string(),
            "127.0.0.1:53->53/udp"
        );
    }

    #[test]
    fn firewall_knows_which_ports_clash() {
        let all = parse("8080:80");
        assert!(all.clashes_with(&parse("127.0.0.1:8080:81")));
        assert!(parse("127.0.0.1:8080:81").clashes_with(&all));
        assert!(!parse("127.0.0.1:8080:80").clashes_with(&parse("127.0.0.2:8080:80")));
        assert!(!all.clashes_with(&parse("8080:80/udp")));
        assert!(!all.clashes_with(&parse("8081:80")));
        // Bindings of one family only: [::] and 0.0.0.0 do not clash, [::] and an IPv6
        // address do; `-p 8080:80` takes both families where the container has IPv6.
        let v6 = parse("[::]:8080:80");
        assert!(!v6.clashes_with(&all));
        assert!(!v6.clashes_with(&parse("0.0.0.0:8080:80")));
        assert!(v6.clashes_with(&parse("[fd00::2]:8080:81")));
        assert_eq!(all.bindings(false), [IpAddr::V4(Ipv4Addr::UNSPECIFIED)]);
        assert_eq!(
            all.bindings(true),
            [
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            ]
        );
        assert_eq!(v6.bindings(true), [IpAddr::V6(Ipv6Addr::UNSPECIFIED)]);
        assert_eq!(
            FirewallError::PortAllocated {
                host_ip: all.host_addr(),
                port: 8080
            }
            .to_string(),
            "Bind for 0.0.0.0:8080 failed: port is already allocated"
        );
        assert_eq!(
            FirewallError::PortAllocated {
                host_ip: v6.host_addr(),
                port: 8080
            }
            .to_string(),
            "Bind for :::8080 failed: port is already allocated"
        );
    }

    #[test]
    fn firewall_builds_restore_input_and_reads_save_output() {
        let rules = publish_rules(
            "skiff-ctr-abc",
            "sk-x",
            "10.88.0.2".parse().unwrap(),
            &[parse("127.0.0.1:8080:80")],
        );
        let input = restore_input(&[], &rules, &Isolation::default());
        assert_eq!(
            input,
            "*nat\n\
             -A PREROUTING -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -m addrtype --dst-type LOCAL -m comment --comment skiff-ctr-abc -j DNAT --to-destination 10.88.0.2:80\n\
             -A OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -m addrtype --dst-type LOCAL -m comment --comment skiff-ctr-abc -j DNAT --to-destination 10.88.0.2:80\n\
             -A POSTROUTING -s 127.0.0.0/8 -o sk-x -m comment --comment skiff-ctr-abc -j MASQUERADE\n\
             COMMIT\n\
             *filter\n\
             -I FORWARD -d 10.88.0.2/32 -o sk-x -p tcp -m tcp --dport 80 -m comment --comment skiff-ctr-abc -j ACCEPT\n\
             COMMIT\n"
        );
        // What iptables-save prints back is what publications() reads.
        let save = format!(
            "# Generated by iptables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n{}\nCOMMIT\n",
            input.lines().nth(1).unwrap()
        );
        let saved = parse_save(&save);
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].comment(), Some("skiff-ctr-abc"));
        let publications = publications(&saved);
        assert_eq!(
            publications,
            vec![Publication {
                comment: "skiff-ctr-abc".into(),
                mapping: parse("127.0.0.1:8080:80"),
                container_ip: "10.88.0.2".parse().unwrap(),
            }]
        );
        let quoted = parse_save("*filter\n-A INPUT -m comment --comment \"skiff-net-x\" -j DROP\n");
        assert_eq!(quoted[0].comment(), Some("skiff-net-x"));
        let removal = restore_input(&saved, &[], &Isolation::default());
        assert!(
            removal.starts_with("*nat\n-D PREROUTING -d 127.0.0.1/32"),
            "{removal}"
        );
        assert_eq!(restore_input(&[], &[], &Isolation::default()), "");
    }

    #[test]
    fn firewall_network_rules_depend_on_internal() {
        let open = network_rules(Family::Ip, "skiff-net-x", "sk-x", "10.89.0.0/24", false);
        assert!(
            open.iter()
                .any(|r| r.table == "nat" && r.rule.contains("MASQUERADE"))
        );
        assert!(
            open.iter()
                .all(|r| r.rule.contains("--comment skiff-net-x"))
        );
        let internal = network_rules(Family::Ip, "skiff-net-x", "sk-x", "10.89.0.0/24", true);
        assert!(internal.iter().all(|r| r.table == "filter"));
        assert!(!internal.iter().any(|r| r.rule.contains("MASQUERADE")));
        // Its DROPs are in the isolation chains, which FORWARD looks at first.
        assert!(!internal.iter().any(|r| r.rule.ends_with("-j DROP")));
    }

    #[test]
    fn firewall_ip6tables_rules_are_ipv4_s_with_v6_addresses() {
        let ip6: IpAddr = "fd00:50::2".parse().unwrap();
        let all = parse("[::]:8080:80");
        let rules = publish_rules("skiff-ctr-abc", "sk-x", ip6, &[all]);
        let lines: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
        let matches = "-p tcp -m tcp --dport 8080 -m addrtype --dst-type LOCAL -m comment --comment skiff-ctr-abc -j DNAT --to-destination [fd00:50::2]:80";
        assert_eq!(
            lines,
            [
                format!("PREROUTING {matches}"),
                format!("OUTPUT ! -d ::1/128 {matches}"),
                "FORWARD -d fd00:50::2/128 -o sk-x -p tcp -m tcp --dport 80 -m comment --comment skiff-ctr-abc -j ACCEPT".to_string(),
            ],
            "no loopback MASQUERADE: IPv6 has no route_localnet"
        );
        let save = format!("*nat\n-A {}\nCOMMIT\n", lines[0]);
        assert_eq!(
            publications(&parse_save(&save)),
            [Publication {
                comment: "skiff-ctr-abc".into(),
                mapping: all,
                container_ip: ip6,
            }]
        );
        // No route_localnet guard in IPv6's INPUT; the rest as IPv4.
        let v6 = network_rules(Family::Ip6, "skiff-net-x", "sk-x", "fd00:50::/64", false);
        assert_eq!(v6.len(), 3);
        assert!(
            v6[0]
                .rule
                .starts_with("POSTROUTING -s fd00:50::/64 ! -o sk-x")
        );
        assert!(!v6.iter().any(|r| r.rule.starts_with("INPUT")));
        // The nftables comments say the same, and read back the same.
        let nft = nft_publish_rules("skiff-ctr-abc", "sk-x", ip6, &[all]);
        assert_eq!(nft.len(), 2, "prerouting and output, no masquerade");
        assert_eq!(
            nft[0].comment,
            "skiff-ctr-abc tcp [::]:8080 [fd00:50::2]:80"
        );
        assert_eq!(
            parse_publication(&nft[0].comment).map(|p| (p.mapping, p.container_ip)),
            Some((all, ip6))
        );
        let v4 = parse_publication("skiff-ctr-abc udp 0.0.0.0:53 10.88.0.2:53").unwrap();
        assert_eq!(
            v4.mapping,
            parse("53:53/udp"),
            "0.0.0.0 in IPv4's table is every address"
        );
    }

    fn isolation_of(rules: &[Rule]) -> Vec<&str> {
        rules.iter().map(|r| r.rule.as_str()).collect()
    }

    #[test]
    fn firewall_isolation_rules_follow_docker() {
        let tag = "-m comment --comment skiff-net-x";
        assert_eq!(
            isolation_of(&isolation_rules("skiff-net-x", "sk-x", false, true)),
            [
                format!(
                    "SKIFF-ISOLATION-STAGE-1 -i sk-x ! -o sk-x {tag} -j SKIFF-ISOLATION-STAGE-2"
                ),
                format!("SKIFF-ISOLATION-STAGE-2 -o sk-x {tag} -j DROP"),
            ]
        );
        assert_eq!(
            isolation_of(&isolation_rules("skiff-net-x", "sk-x", true, false)),
            [
                format!("SKIFF-ISOLATION-STAGE-1 -i sk-x ! -o sk-x {tag} -j DROP"),
                format!("SKIFF-ISOLATION-STAGE-1 ! -i sk-x -o sk-x {tag} -j DROP"),
                format!("SKIFF-ISOLATION-STAGE-1 -i sk-x -o sk-x {tag} -j DROP"),
                format!("SKIFF-ISOLATION-STAGE-2 -o sk-x {tag} -j DROP"),
            ]
        );
    }

    #[test]
    fn firewall_keeps_the_isolation_jump_first_and_removes_empty_chains() {
        let save = |text: &str| (parse_save(text), filter_chains(text));
        let ours = isolation_rules("skiff-net-a", "sk-a", false, true);
        let mut rules = network_rules(Family::Ip, "skiff-net-a", "sk-a", "10.89.1.0/24", false);
        rules.extend(ours.clone());
        // Nothing yet: the chains are declared, and the jump goes on top after the inserts.
        let (saved, chains) = save("*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j DROP\nCOMMIT\n");
        let first = isolation(&saved, &chains, "skiff-net-a", &rules, true);
        assert_eq!(
            first.before,
            [
                ":SKIFF-ISOLATION-STAGE-1 - [0:0]",
                ":SKIFF-ISOLATION-STAGE-2 - [0:0]"
            ]
        );
        assert_eq!(
            first.after,
            ["-I FORWARD -m comment --comment skiff-isolation -j SKIFF-ISOLATION-STAGE-1"]
        );
        let input = restore_input(&[], &rules, &first);
        let filter = input.split("*filter\n").nth(1).unwrap();
        assert!(
            filter.starts_with(":SKIFF-ISOLATION-STAGE-1 - [0:0]\n"),
            "{input}"
        );
        assert!(
            filter.ends_with("-I FORWARD -m comment --comment skiff-isolation -j SKIFF-ISOLATION-STAGE-1\nCOMMIT\n"),
            "{input}"
        );

        // Another network's ACCEPT went on top of the jump: the next change puts it back.
        let b = "-m comment --comment skiff-net-b";
        let text = format!(
            "*filter\n:FORWARD ACCEPT [0:0]\n:SKIFF-ISOLATION-STAGE-1 - [0:0]\n:SKIFF-ISOLATION-STAGE-2 - [0:0]\n\
             -A FORWARD -i sk-b {b} -j ACCEPT\n\
             -A FORWARD -m comment --comment skiff-isolation -j SKIFF-ISOLATION-STAGE-1\n\
             -A SKIFF-ISOLATION-STAGE-1 -i sk-b ! -o sk-b {b} -j SKIFF-ISOLATION-STAGE-2\n\
             -A SKIFF-ISOLATION-STAGE-2 -o sk-b {b} -j DROP\nCOMMIT\n"
        );
        let (saved, chains) = save(&text);
        let unpublish = isolation(&saved, &chains, "skiff-ctr-c", &[], false);
        assert_eq!(
            unpublish.after,
            [
                "-D FORWARD -m comment --comment skiff-isolation -j SKIFF-ISOLATION-STAGE-1",
                "-I FORWARD -m comment --comment skiff-isolation -j SKIFF-ISOLATION-STAGE-1",
            ]
        );
        assert!(
            unpublish.before.is_empty(),
            "existing chains are never declared (that flushes them)"
        );

        // The last network goes: its rules, the jump and the chains, in one batch.
        let last = isolation(&saved, &chains, "skiff-net-b", &[], true);
        assert_eq!(
            last.after,
            [
                "-D FORWARD -m comment --comment skiff-isolation -j SKIFF-ISOLATION-STAGE-1",
                "-X SKIFF-ISOLATION-STAGE-1",
                "-X SKIFF-ISOLATION-STAGE-2",
            ]
        );
        // The same network up again, its rules as they are, the jump on top: nothing to do.
        let on_top = text.replace(
            &format!("-A FORWARD -i sk-b {b} -j ACCEPT\n-A FORWARD -m comment --comment skiff-isolation -j SKIFF-ISOLATION-STAGE-1\n"),
            &format!("-A FORWARD -m comment --comment skiff-isolation -j SKIFF-ISOLATION-STAGE-1\n-A FORWARD -i sk-b {b} -j ACCEPT\n"),
        );
        assert_ne!(on_top, text);
        let (saved, chains) = save(&on_top);
        let rules_b = isolation_rules("skiff-net-b", "sk-b", false, true);
        assert!(isolation(&saved, &chains, "skiff-net-b", &rules_b, false).is_empty());
        // Nothing of skiff's: nothing to do.
        let (saved, chains) = save("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n");
        assert!(isolation(&saved, &chains, "skiff-ctr-c", &[], false).is_empty());
    }

    #[test]
    fn firewall_refuses_names_that_could_inject_rules() {
        assert!(check_name("bridge", "sk-0123456789ab").is_ok());
        assert!(
            check_name("bridge", "sk-0123456789abc").is_err(),
            "16 bytes"
        );
        assert!(check_name("bridge", "br0 -j ACCEPT").is_err());
        assert!(check_name("bridge", "").is_err());
        let err = publish("x\n-A", "sk-x", (Ipv4Addr::LOCALHOST, None), &[]).unwrap_err();
        assert!(matches!(err, FirewallError::InvalidName { .. }), "{err}");
        assert_eq!(
            container_comment("0123456789abcdef"),
            "skiff-ctr-0123456789ab"
        );
        assert_eq!(
            route_localnet_path("skiff0"),
            Path::new("/proc/sys/net/ipv4/conf/skiff0/route_localnet")
        );
    }

    /// Real rules, as root: made-up names, a test subnet, a bridge that does not exist.
    mod root {
        use super::super::tests::FORCED;
        use super::*;
        use crate::ipam::Subnet;
        use std::collections::{BTreeMap, BTreeSet};

        fn random_hex(n: usize) -> String {
            let mut bytes = vec![0u8; n];
            let read = std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
            assert!(read.is_ok());
            bytes.iter().map(|b| format!("{:x}", b & 0xf)).collect()
        }

        /// The host's network lock, which every engine holds while it changes FORWARD: a
        /// test's rules never interleave with another's or with an engine's.
        fn host_lock() -> nix::fcntl::Flock<std::fs::File> {
            crate::store::host_lock().unwrap()
        }

        fn can_run() -> bool {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("skipped: needs root");
                return false;
            }
            if let Err(e) = iptables_version() {
                eprintln!("skipped: {e}");
                return false;
            }
            true
        }

        fn skiff_lines(pattern: &str) -> Vec<String> {
            let save = saved_rules(Family::Ip).unwrap();
            save.iter()
                .filter(|r| r.rule.contains(pattern))
                .map(|r| format!("{} {}", r.table, r.rule))
                .collect()
        }

        fn test_network(internal: bool) -> Network {
            let id = format!("{}{}", random_hex(12), "0".repeat(52));
            let third: u8 = u8::from_str_radix(&random_hex(2), 16).unwrap();
            Network {
                name: "skiff-test".into(),
                bridge: Some(format!("sk-t{}", random_hex(8))),
                id,
                driver: Driver::Bridge,
                subnet: Subnet::new(Ipv4Addr::new(10, 251, third, 0), 24).ok(),
                gateway: Some(Ipv4Addr::new(10, 251, third, 1)),
                parent: None,
                internal,
                created: String::new(),
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                ipam: Default::default(),
                endpoints: Vec::new(),
                ipv6: None,
            }
        }

        /// Removes what a test added, even when it fails half way.
        struct Cleanup {
            networks: Vec<Network>,
            containers: Vec<String>,
        }

        impl Drop for Cleanup {
            fn drop(&mut self) {
                for id in &self.containers {
                    let _ = unpublish(id);
                }
                for network in &self.networks {
                    let _ = network_down(network);
                }
            }
        }

        fn free_port() -> u16 {
            // A high port from outside the ephemeral range, picked at random.
            20000 + u16::from_str_radix(&random_hex(3), 16).unwrap() % 8000
        }

        #[test]
        fn firewall_root_network_rules_come_and_go() {
            if !can_run() {
                return;
            }
            FORCED.with(|f| f.set(Some(Backend::Iptables)));
            let _host = host_lock();
            for internal in [false, true] {
                let network = test_network(internal);
                let _cleanup = Cleanup {
                    networks: vec![network.clone()],
                    containers: vec![],
                };
                let comment = network_comment(&network);
                network_up(&network).unwrap();
                let lines = skiff_lines(&comment);
                let bridge = network.bridge.as_deref().unwrap();
                let subnet = network.subnet.unwrap().to_string();
                if internal {
                    assert_eq!(lines.len(), 4, "{lines:#?}");
                    assert!(lines.iter().all(|l| l.starts_with("filter ")));
                } else {
                    let masquerade = format!(
                        "nat POSTROUTING -s {subnet} ! -o {bridge} -m comment --comment {comment} -j MASQUERADE"
                    );
                    assert!(lines.contains(&masquerade), "{lines:#?}");
                    assert_eq!(lines.len(), 6, "{lines:#?}");
                }
                // The isolation chains come first in FORWARD.
                let first = saved_rules(Family::Ip)
                    .unwrap()
                    .into_iter()
                    .find(|r| r.table == "filter" && r.chain() == "FORWARD")
                    .map(|r| r.rule);
                assert_eq!(first, Some(isolation_jump()));
                // Again: nothing changes, nothing doubles.
                network_up(&network).unwrap();
                assert_eq!(skiff_lines(&comment), lines);
                // The rules read back exactly as written, so network_up recognises them.
                let mut rules = network_rules(Family::Ip, &comment, bridge, &subnet, internal);
                rules.extend(isolation_rules(&comment, bridge, internal, true));
                let written: BTreeSet<String> = rules
                    .iter()
                    .map(|r| format!("{} {}", r.table, r.rule))
                    .collect();
                assert_eq!(written, lines.iter().cloned().collect());
                network_down(&network).unwrap();
                assert!(skiff_lines(&comment).is_empty());
                network_down(&network).unwrap();
            }
        }

        #[test]
        fn firewall_root_published_ports_come_and_go() {
            if !can_run() {
                return;
            }
            FORCED.with(|f| f.set(Some(Backend::Iptables)));
            let _host = host_lock();
            let network = test_network(false);
            let bridge = network.bridge.clone().unwrap();
            let first = format!("skifftest{}", random_hex(12));
            let second = format!("skifftest{}", random_hex(12));
            let _cleanup = Cleanup {
                networks: vec![],
                containers: vec![first.clone(), second.clone()],
            };
            let gateway = network.gateway.unwrap();
            let ip_a = Ipv4Addr::from(u32::from(gateway) + 1);
            let ip_b = Ipv4Addr::from(u32::from(gateway) + 2);
            let port = free_port();
            let loopback_port = port + 1;
            let ports = [
                PortMapping::parse(&format!("{port}:80")).unwrap(),
                PortMapping::parse(&format!("127.0.0.1:{loopback_port}:81/udp")).unwrap(),
                PortMapping::parse("82").unwrap(),
            ];
            let published_ports = publish(&first, &bridge, (ip_a, None), &ports).unwrap();
            assert_eq!(published_ports[..2], ports[..2]);
            assert_ne!(published_ports[2].host_port, 0, "a host port was picked");

            let comment = container_comment(&first);
            let lines = skiff_lines(&comment);
            // PREROUTING + OUTPUT + FORWARD per port, and one loopback MASQUERADE.
            assert_eq!(lines.len(), 10, "{lines:#?}");
            let dnat = format!(
                "nat PREROUTING -p tcp -m tcp --dport {port} -m addrtype --dst-type LOCAL -m comment --comment {comment} -j DNAT --to-destination {ip_a}:80"
            );
            assert!(lines.contains(&dnat), "{lines:#?}");
            let loopback = format!(
                "nat OUTPUT -d 127.0.0.1/32 -p udp -m udp --dport {loopback_port} -m addrtype --dst-type LOCAL -m comment --comment {comment} -j DNAT --to-destination {ip_a}:81"
            );
            assert!(lines.contains(&loopback), "{lines:#?}");
            let ours: Vec<PortMapping> = published()
                .unwrap()
                .into_iter()
                .filter(|p| p.comment == comment)
                .map(|p| p.mapping)
                .collect();
            assert_eq!(ours, published_ports);

            // The same port from another container is refused with Docker's words, on all
            // addresses or on one; the other protocol is free.
            let err = publish(&second, &bridge, (ip_b, None), &[ports[0]]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("Bind for 0.0.0.0:{port} failed: port is already allocated")
            );
            let one_address = PortMapping::parse(&format!("127.0.0.1:{port}:80")).unwrap();
            assert!(matches!(
                publish(&second, &bridge, (ip_b, None), &[one_address]),
                Err(FirewallError::PortAllocated { .. })
            ));
            assert!(
                skiff_lines(&container_comment(&second)).is_empty(),
                "nothing half-made"
            );
            let udp = PortMapping::parse(&format!("{port}:80/udp")).unwrap();
            assert_eq!(
                publish(&second, &bridge, (ip_b, None), &[udp]).unwrap(),
                vec![udp]
            );

            // Publishing again replaces, never doubles.
            publish(&first, &bridge, (ip_a, None), &published_ports).unwrap();
            assert_eq!(skiff_lines(&comment), lines);

            unpublish(&first).unwrap();
            unpublish(&second).unwrap();
            assert!(skiff_lines(&comment).is_empty());
            assert!(skiff_lines(&container_comment(&second)).is_empty());
            unpublish(&first).unwrap();
        }

        /// skiff's nftables rules whose comment starts with `tag`, as `chain comment` lines.
        fn nft_lines(tag: &str) -> Vec<String> {
            nft_lines_in(Nft::open().unwrap(), tag)
        }

        /// The same in the table of `nft`'s family.
        fn nft_lines_in(mut nft: Nft, tag: &str) -> Vec<String> {
            nft.rules(NFT_TABLE)
                .unwrap()
                .into_iter()
                .filter(|r| r.comment.as_deref().is_some_and(|c| c.starts_with(tag)))
                .map(|r| format!("{} {}", r.chain, r.comment.unwrap_or_default()))
                .collect()
        }

        #[test]
        fn firewall_root_nftables_rules_come_and_go() {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("skipped: needs root");
                return;
            }
            if let Err(e) = Nft::open().and_then(|mut n| n.rules(NFT_TABLE)) {
                eprintln!("skipped: no nftables here: {e}");
                return;
            }
            FORCED.with(|f| f.set(Some(Backend::Nftables)));
            let _host = host_lock();
            for internal in [false, true] {
                let network = test_network(internal);
                let _cleanup = Cleanup {
                    networks: vec![network.clone()],
                    containers: vec![],
                };
                let comment = network_comment(&network);
                network_up(&network).unwrap();
                let lines = nft_lines(&comment);
                // Internal: two drops, the isolation jump's drop; else masquerade, the
                // loopback guard, the jump and the isolation drop.
                let expected = if internal { 3 } else { 4 };
                assert_eq!(lines.len(), expected, "{lines:#?}");
                assert_eq!(
                    lines.iter().any(|l| l.starts_with("postrouting ")),
                    !internal,
                    "{lines:#?}"
                );
                network_up(&network).unwrap();
                assert_eq!(nft_lines(&comment), lines, "nothing doubles");
                network_down(&network).unwrap();
                assert!(nft_lines(&comment).is_empty());
                network_down(&network).unwrap();
            }
            // Publishing: the ports read back from the rules' comments, and go again.
            let network = test_network(false);
            let id = format!("skifftest{}", random_hex(12));
            let _cleanup = Cleanup {
                networks: vec![network.clone()],
                containers: vec![id.clone()],
            };
            network_up(&network).unwrap();
            let bridge = network.bridge.clone().unwrap();
            let ip = Ipv4Addr::from(u32::from(network.gateway.unwrap()) + 1);
            let port = free_port();
            let ports = [
                PortMapping::parse(&format!("{port}:80")).unwrap(),
                PortMapping::parse(&format!("127.0.0.1:{}:81/udp", port + 1)).unwrap(),
            ];
            assert_eq!(publish(&id, &bridge, (ip, None), &ports).unwrap(), ports);
            let comment = container_comment(&id);
            let ours: Vec<PortMapping> = published()
                .unwrap()
                .into_iter()
                .filter(|p| p.comment == comment && p.container_ip == ip)
                .map(|p| p.mapping)
                .collect();
            assert_eq!(ours, ports);
            // PREROUTING and OUTPUT per port, one loopback masquerade.
            assert_eq!(nft_lines(&comment).len(), 5, "{:#?}", nft_lines(&comment));
            unpublish(&id).unwrap();
            assert!(nft_lines(&comment).is_empty());
            network_down(&network).unwrap();
            // Nothing of this test's is left (other tests' may be, running meanwhile).
            let rest = Nft::open().unwrap().rules(NFT_TABLE).unwrap();
            let net = network_comment(&network);
            assert!(
                rest.iter().all(|r| {
                    let c = r.comment.as_deref().unwrap_or_default();
                    !c.starts_with(&comment) && !c.starts_with(&net)
                }),
                "{rest:?}"
            );
        }

        /// `tag`'s rules in the IPv6 tables of `backend`: `chain comment` lines from nftables,
        /// `table rule` lines from ip6tables-save.
        fn v6_lines(backend: Backend, tag: &str) -> Vec<String> {
            match backend {
                Backend::Nftables => nft_lines_in(Nft::open6().unwrap(), tag),
                Backend::Iptables => saved_rules(Family::Ip6)
                    .unwrap()
                    .into_iter()
                    .filter(|r| r.comment() == Some(tag))
                    .map(|r| format!("{} {}", r.table, r.rule))
                    .collect(),
            }
        }

        fn ipv6_forwarding() -> String {
            std::fs::read_to_string(IPV6_FORWARDING)
                .unwrap()
                .trim()
                .to_string()
        }

        #[test]
        fn firewall_root_ipv6_rules_come_and_go_with_both_backends() {
            if !can_run() || !Path::new(IPV6_FORWARDING).exists() {
                eprintln!("skipped: needs root, iptables and IPv6");
                return;
            }
            for backend in [Backend::Nftables, Backend::Iptables] {
                FORCED.with(|f| f.set(Some(backend)));
                let _host = host_lock();
                let before = ipv6_forwarding();
                let mut network = test_network(false);
                let v6: Ipv6Addr = format!("fd00:213:{}::", random_hex(4)).parse().unwrap();
                network.ipv6 = Some(store::Ipv6Config {
                    subnet: crate::ipam::Subnet6::parse(&format!("{v6}/64")).unwrap(),
                    gateway: Ipv6Addr::from(u128::from(v6) + 1),
                });
                let (first, second) = (
                    format!("skifftest{}", random_hex(12)),
                    format!("skifftest{}", random_hex(12)),
                );
                let _cleanup = Cleanup {
                    networks: vec![network.clone()],
                    containers: vec![first.clone(), second.clone()],
                };
                let net = network_comment(&network);
                network_up(&network).unwrap();
                // Masquerade and walls in the IPv6 tables too; forwarding on while it exists.
                let lines = v6_lines(backend, &net);
                let masquerade = match backend {
                    Backend::Nftables => format!("postrouting {net}"),
                    Backend::Iptables => format!(
                        "nat POSTROUTING -s {v6}/64 ! -o {} -m comment --comment {net} -j MASQUERADE",
                        network.bridge.as_deref().unwrap()
                    ),
                };
                assert!(lines.contains(&masquerade), "{backend:?}: {lines:#?}");
                assert_eq!(ipv6_forwarding(), "1");
                network_up(&network).unwrap();
                assert_eq!(v6_lines(backend, &net), lines, "nothing doubles");

                // -p P:80 takes both families, [::] only IPv6, 0.0.0.0 only IPv4.
                let bridge = network.bridge.clone().unwrap();
                let ip = Ipv4Addr::from(u32::from(network.gateway.unwrap()) + 1);
                let ip6 = Ipv6Addr::from(u128::from(v6) + 2);
                let port = free_port();
                let ports = [
                    PortMapping::parse(&format!("{port}:80")).unwrap(),
                    PortMapping::parse(&format!("[::]:{}:81", port + 1)).unwrap(),
                    PortMapping::parse(&format!("0.0.0.0:{}:82", port + 2)).unwrap(),
                ];
                assert_eq!(
                    publish(&first, &bridge, (ip, Some(ip6)), &ports).unwrap(),
                    ports
                );
                let comment = container_comment(&first);
                let mut ours: Vec<(u16, bool)> = published()
                    .unwrap()
                    .into_iter()
                    .filter(|p| p.comment == comment)
                    .map(|p| (p.mapping.host_port, p.container_ip.is_ipv6()))
                    .collect();
                ours.sort_unstable();
                let want = [
                    (port, false),
                    (port, true),
                    (port + 1, true),
                    (port + 2, false),
                ];
                assert_eq!(ours, want, "{backend:?}");
                // Two DNAT rules (and with iptables a FORWARD one) per IPv6 binding.
                let per_port = if backend == Backend::Nftables { 2 } else { 3 };
                assert_eq!(v6_lines(backend, &comment).len(), 2 * per_port);
                // An IPv6 port is taken on IPv6 only, in Docker's words.
                let err = publish(&second, &bridge, (ip, Some(ip6)), &[ports[1]]).unwrap_err();
                assert_eq!(
                    err.to_string(),
                    format!("Bind for :::{} failed: port is already allocated", port + 1)
                );
                let v4_only = PortMapping::parse(&format!("0.0.0.0:{}:80", port + 1)).unwrap();
                assert!(publish(&second, &bridge, (ip, Some(ip6)), &[v4_only]).is_ok());
                // Without IPv6 the container cannot take an IPv6 host address.
                let unplugged = publish(&second, &bridge, (ip, None), &[ports[1]]);
                assert!(
                    matches!(unplugged, Err(FirewallError::NoIpv6(_))),
                    "{unplugged:?}"
                );

                unpublish(&first).unwrap();
                unpublish(&second).unwrap();
                assert!(v6_lines(backend, &comment).is_empty());
                network_down(&network).unwrap();
                assert!(v6_lines(backend, &net).is_empty());
                // The last IPv6 network gone (unless another test's or engine's is there).
                let others = Nft::open6().unwrap().rules(NFT_TABLE).unwrap();
                if others.is_empty() && saved_rules(Family::Ip6).unwrap().is_empty() {
                    assert_eq!(ipv6_forwarding(), before, "{backend:?}");
                }
            }
        }

        #[test]
        fn firewall_root_one_of_racing_publishers_wins() {
            if !can_run() {
                return;
            }
            let ids: Vec<String> = (0..4)
                .map(|_| format!("skifftest{}", random_hex(12)))
                .collect();
            // Taken once the publishers are done, and let go last: the cleanup runs under it.
            let _host;
            let _cleanup = Cleanup {
                networks: vec![],
                containers: ids.clone(),
            };
            let port = PortMapping::parse(&format!("{}:80", free_port())).unwrap();
            let threads: Vec<_> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let id = id.clone();
                    let ip = Ipv4Addr::new(10, 251, 0, 2 + u8::try_from(i).unwrap());
                    std::thread::spawn(move || {
                        // As the feature does: every publisher holds the host's network lock,
                        // which is what makes one listing per publish enough.
                        let _host = host_lock();
                        publish(&id, "sk-trace", (ip, None), &[port])
                    })
                })
                .collect();
            let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            _host = host_lock();
            let winners = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(winners, 1, "{results:?}");
            // A loser may also meet the winner's bind check holding the port for a moment.
            let lost = |r: &Result<_>| {
                matches!(
                    r,
                    Err(FirewallError::PortAllocated { .. } | FirewallError::PortInUse { .. })
                )
            };
            assert!(results.iter().all(|r| r.is_ok() || lost(r)), "{results:?}");
            let owners: BTreeSet<String> = published()
                .unwrap()
                .into_iter()
                .filter(|p| p.mapping == port)
                .map(|p| p.comment)
                .collect();
            assert_eq!(owners.len(), 1, "{owners:?}");
        }

        #[test]
        fn firewall_root_refuses_a_port_a_host_process_holds() {
            if !can_run() {
                return;
            }
            let _host = host_lock();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let id = format!("skifftest{}", random_hex(12));
            let _cleanup = Cleanup {
                networks: vec![],
                containers: vec![id.clone()],
            };
            let mapping = PortMapping::parse(&format!("127.0.0.1:{port}:80")).unwrap();
            let err = publish(
                &id,
                "sk-tnone",
                (Ipv4Addr::new(10, 251, 0, 2), None),
                &[mapping],
            );
            assert!(
                matches!(err, Err(FirewallError::PortInUse { .. })),
                "{err:?}"
            );
            // An address that is not this host's (TEST-NET-1) cannot be published on.
            let elsewhere = PortMapping::parse("192.0.2.1:8080:80").unwrap();
            let err = publish(
                &id,
                "sk-tnone",
                (Ipv4Addr::new(10, 251, 0, 2), None),
                &[elsewhere],
            );
            let message = err.map_err(|e| e.to_string()).unwrap_err();
            assert!(
                message.contains("is 192.0.2.1 one of this host's addresses?"),
                "{message}"
            );
            assert!(skiff_lines(&container_comment(&id)).is_empty());
        }
    }
}
