//! Netlink: how a program asks the kernel for network devices, addresses and routes.
//!
//! `ip link`, `ip addr` and `ip route` do not edit files or call one system call per change:
//! they open a socket of the family `AF_NETLINK`, protocol `NETLINK_ROUTE` ("rtnetlink"), and
//! exchange messages with the kernel over it. Each message is a `struct nlmsghdr` (length, type,
//! flags, sequence number, port), a small fixed header for its kind, then attributes, each a
//! type-length-value record (`struct rtattr`) that may nest further attributes:
//!
//! | command                           | message                      | fixed header       |
//! |-----------------------------------|------------------------------|--------------------|
//! | `ip link add/set`, `ip link show` | `RTM_NEWLINK`, `RTM_GETLINK` | `struct ifinfomsg` |
//! | `ip link del`                     | `RTM_DELLINK`                | `struct ifinfomsg` |
//! | `ip addr add`, `ip addr show`     | `RTM_NEWADDR`, `RTM_GETADDR` | `struct ifaddrmsg` |
//! | `ip route add`                    | `RTM_NEWROUTE`               | `struct rtmsg`     |
//!
//! A request carries `NLM_F_REQUEST`, and `NLM_F_ACK` to get an answer either way: the kernel
//! replies with an `NLMSG_ERROR` message whose error is 0 (done) or a negative errno (refused).
//! `NLM_F_CREATE | NLM_F_EXCL` means "make a new one, fail with `EEXIST` if it is there", as
//! `ip link add` does. A dump (`NLM_F_DUMP`, `ip addr show`) comes back as many messages, ended by
//! `NLMSG_DONE`. The sequence number pairs answers with requests.
//!
//! A netlink socket speaks to the network namespace its creator was in when it was made. To
//! configure a container's namespace, [`Netlink::in_netns_of`] opens a socket on a thread that
//! has first entered that namespace with setns(2). A veth pair needs no such trip: its second end
//! can be born directly in the container's namespace (`IFLA_NET_NS_PID` on the peer).
//!
//! skiff builds the messages with the `netlink-packet-route` crate and sends them on the blocking
//! socket of `netlink-sys`; no async runtime. IPv4, and IPv6 addresses and default routes
//! (`AF_INET6`) for networks created with `--ipv6`. See netlink(7), rtnetlink(7), ip-link(8),
//! veth(4).

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVeth, InfoVlan, IpVlanMode, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};
use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};

/// A failed netlink request. Each message names what was being done and to which link:
/// `create veth sk-3f2a9c/eth0: File exists`.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused: the errno of its `NLMSG_ERROR` reply, or of a failed system call.
    #[error("{op}: {}", errno.desc())]
    Kernel {
        /// What was being done, and to which link.
        op: String,
        /// The kernel's answer.
        errno: Errno,
    },
    /// The netlink socket itself, or a namespace file, failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The error.
        source: io::Error,
    },
    /// The kernel's reply could not be decoded.
    #[error("{op}: cannot decode the kernel's reply: {reason}")]
    Decode {
        /// What was being done.
        op: String,
        /// What was wrong with the reply.
        reason: String,
    },
    /// A link the request refers to is not in this network namespace.
    #[error("{op}: no link named {link:?} in this network namespace")]
    NoSuchLink {
        /// What was being done.
        op: String,
        /// The missing link.
        link: String,
    },
    /// A name the kernel does not accept for a network device.
    #[error("invalid link name {0:?}: use 1 to 15 bytes, without '/', ':' or whitespace")]
    BadName(String),
}

impl NetlinkError {
    /// The errno the kernel answered with, if it answered.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// Whether the kernel said the thing to create is already there (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(Errno::EEXIST)
    }
}

/// The longest name of a network device: `IFNAMSIZ` (16) less the terminating NUL.
pub const MAX_NAME_LEN: usize = 15;

/// Refuses names the kernel would refuse (`dev_valid_name()` in net/core/dev.c), so the error says
/// why instead of a bare `EINVAL`.
pub fn check_name(name: &str) -> Result<(), NetlinkError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && !name.contains(['/', ':'])
        && !name.contains(char::is_whitespace);
    if valid {
        Ok(())
    } else {
        Err(NetlinkError::BadName(name.to_string()))
    }
}

/// Large enough for any datagram the kernel sends on a route socket (dumps fill up to 32 KiB).
const RECEIVE_BUFFER: usize = 64 * 1024;

/// The flags of a request that creates something new, as `ip link add` sends them.
pub(crate) const CREATE_NEW: u16 = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

/// How the containers of a macvlan network share the parent link (`-o macvlan_mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    /// They reach each other directly, and the wire (Docker's default).
    Bridge,
    /// They reach the wire only, never each other.
    Private,
    /// Every frame goes out to the switch, which may send it back (802.1Qbg).
    Vepa,
    /// One container takes the parent over.
    Passthru,
}

/// How the containers of an ipvlan network are reached (`-o ipvlan_mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    /// Switched, by MAC: the containers are on the parent's LAN (Docker's default).
    L2,
    /// Routed, by IP: no broadcast, the host routes for them.
    L3,
}

/// The kind of device a container gets on a host link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubLinkMode {
    /// A macvlan, in this mode.
    Macvlan(MacvlanMode),
    /// An ipvlan, in this mode.
    Ipvlan(IpvlanMode),
}

impl SubLinkMode {
    fn kind(&self) -> &'static str {
        match self {
            SubLinkMode::Macvlan(_) => "macvlan",
            SubLinkMode::Ipvlan(_) => "ipvlan",
        }
    }
}

/// A route netlink socket, and the sequence number of its last request.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    // ANCHOR: open
    /// A socket in this thread's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let failed = |source| NetlinkError::Io {
            op: "open a NETLINK_ROUTE socket".to_string(),
            source,
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(failed)?;
        // The kernel picks our port number; port 0 at the other end is the kernel itself.
        socket.bind_auto().map_err(failed)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(failed)?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }
    // ANCHOR_END: open

    // ANCHOR: in_netns
    /// Runs `f` with a socket inside the network namespace of process `pid` (`/proc/PID/ns/net`),
    /// and returns what `f` returns. The work happens on a fresh thread that enters the namespace
    /// with setns(2) and ends with `f`: setns changes the namespace of the calling thread only, so
    /// the caller's thread never leaves its own.
    pub fn in_netns_of<T: Send>(
        pid: i32,
        f: impl FnOnce(&mut Netlink) -> Result<T, NetlinkError> + Send,
    ) -> Result<T, NetlinkError> {
        let op = format!("enter the network namespace /proc/{pid}/ns/net");
        let io_failed = |source| NetlinkError::Io {
            op: op.clone(),
            source,
        };
        let namespace = File::open(format!("/proc/{pid}/ns/net")).map_err(io_failed)?;
        std::thread::scope(|scope| {
            let worker = std::thread::Builder::new()
                .name("netns".to_string())
                .spawn_scoped(scope, || {
                    setns(namespace, CloneFlags::CLONE_NEWNET).map_err(|errno| {
                        NetlinkError::Kernel {
                            op: op.clone(),
                            errno,
                        }
                    })?;
                    f(&mut Netlink::open()?)
                })
                .map_err(io_failed)?;
            // The thread ends here, and its changed namespace with it. A panic in `f` goes on
            // in the caller.
            worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
    // ANCHOR_END: in_netns

    /// The index of the link `name`, or `None` when there is no such link (`ip link show NAME`).
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        if check_name(name).is_err() {
            return Ok(None); // no link can have it
        }
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        let op = format!("look up link {name}");
        match self.request(&op, NLM_F_ACK, RouteNetlinkMessage::GetLink(message)) {
            Ok(replies) => Ok(replies.into_iter().find_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
                _ => None,
            })),
            Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a bridge: a virtual switch that the host side of each container's veth plugs into
    /// (`ip link add NAME type bridge`). One that is already there is an error that
    /// [`NetlinkError::is_exists`] recognises.
    pub fn create_bridge(&mut self, name: &str) -> Result<(), NetlinkError> {
        check_name(name)?;
        let mut bridge = LinkMessage::default();
        bridge.attributes = vec![
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ];
        let op = format!("create bridge {name}");
        self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewLink(bridge))
            .map(drop)
    }

    // ANCHOR: veth
    /// Creates a veth pair, a virtual cable: what goes in one end comes out of the other. The end
    /// `host_name` stays in this namespace; the other is born inside the network namespace of
    /// process `peer_pid`, named `peer_name` (`ip link add HOST type veth peer name PEER netns
    /// PID`). It never appears here, so every container's end can be called `eth0`.
    pub fn create_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_pid: i32,
    ) -> Result<(), NetlinkError> {
        check_name(host_name)?;
        check_name(peer_name)?;
        let op = format!("create veth {host_name}/{peer_name}");
        let mut peer = LinkMessage::default();
        peer.attributes = vec![
            LinkAttribute::IfName(peer_name.to_string()),
            LinkAttribute::NetNsPid(pid_number(&op, peer_pid)?),
        ];
        let mut veth = LinkMessage::default();
        veth.attributes = vec![
            LinkAttribute::IfName(host_name.to_string()),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
            ]),
        ];
        self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewLink(veth))
            .map(drop)
    }
    // ANCHOR_END: veth

    // ANCHOR: macvlan
    /// Creates a macvlan or ipvlan named `name` on the link `parent`, directly inside the network
    /// namespace of process `pid` (`ip link add link PARENT name NAME netns PID type macvlan mode
    /// bridge`, or `type ipvlan mode l2`). A macvlan is a second device on the parent's wire with
    /// a MAC address of its own; an ipvlan shares the parent's MAC and is told apart by its IP
    /// address (for networks where the switch allows one MAC per port). In macvlan bridge mode
    /// and ipvlan l2 the devices of one parent also reach each other. (The host itself cannot
    /// reach them through the parent: their traffic leaves by the wire.)
    pub fn create_sublink(
        &mut self,
        name: &str,
        parent: &str,
        pid: i32,
        mode: SubLinkMode,
    ) -> Result<(), NetlinkError> {
        check_name(name)?;
        let op = format!("create {} {name} on {parent}", mode.kind());
        let parent_index = self.index_of(&op, parent)?;
        let data = match mode {
            SubLinkMode::Macvlan(mode) => {
                LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(match mode {
                    MacvlanMode::Bridge => MacVlanMode::Bridge,
                    MacvlanMode::Private => MacVlanMode::Private,
                    MacvlanMode::Vepa => MacVlanMode::Vepa,
                    MacvlanMode::Passthru => MacVlanMode::Passthrough,
                })]))
            }
            SubLinkMode::Ipvlan(mode) => {
                LinkInfo::Data(InfoData::IpVlan(vec![InfoIpVlan::Mode(match mode {
                    IpvlanMode::L2 => IpVlanMode::L2,
                    IpvlanMode::L3 => IpVlanMode::L3,
                })]))
            }
        };
        let kind = match mode {
            SubLinkMode::Macvlan(_) => InfoKind::MacVlan,
            SubLinkMode::Ipvlan(_) => InfoKind::IpVlan,
        };
        let mut link = LinkMessage::default();
        link.attributes = vec![
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::Link(parent_index),
            LinkAttribute::NetNsPid(pid_number(&op, pid)?),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(kind), data]),
        ];
        self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewLink(link))
            .map(drop)
    }

    /// A macvlan in bridge mode: [`Netlink::create_sublink`] as Docker's default.
    pub fn create_macvlan(
        &mut self,
        name: &str,
        parent: &str,
        pid: i32,
    ) -> Result<(), NetlinkError> {
        self.create_sublink(name, parent, pid, SubLinkMode::Macvlan(MacvlanMode::Bridge))
    }

    /// Creates the 802.1q VLAN link `name` on `parent` with VLAN id `id`, on the host (`ip link
    /// add link eth0 name eth0.50 type vlan id 50`): frames sent through it carry the tag, frames
    /// with the tag arriving on the parent come out of it.
    pub fn create_vlan(&mut self, name: &str, parent: &str, id: u16) -> Result<(), NetlinkError> {
        check_name(name)?;
        let op = format!("create vlan {name} on {parent}");
        let parent_index = self.index_of(&op, parent)?;
        let mut link = LinkMessage::default();
        link.attributes = vec![
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::Link(parent_index),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vlan),
                LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(id)])),
            ]),
        ];
        self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewLink(link))
            .map(drop)
    }
    // ANCHOR_END: macvlan

    /// Plugs `link` into `bridge` (`ip link set LINK master BRIDGE`).
    pub fn set_master(&mut self, link: &str, bridge: &str) -> Result<(), NetlinkError> {
        let op = format!("attach {link} to bridge {bridge}");
        let bridge_index = self.index_of(&op, bridge)?;
        self.change_link(&op, link, |message| {
            message
                .attributes
                .push(LinkAttribute::Controller(bridge_index));
        })
    }

    // ANCHOR: set_up
    /// Brings `link` up (`ip link set LINK up`): sets `IFF_UP`, and only it, in the link's flags.
    pub fn set_up(&mut self, link: &str) -> Result<(), NetlinkError> {
        self.change_link(&format!("bring up {link}"), link, |message| {
            message.header.flags = LinkFlags::Up;
            message.header.change_mask = LinkFlags::Up;
        })
    }
    // ANCHOR_END: set_up

    /// Gives `link` the MAC address `mac` (`ip link set LINK address MAC`).
    pub fn set_mac(&mut self, link: &str, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let op = format!("set the MAC address of {link} to {}", format_mac(mac));
        self.change_link(&op, link, |message| {
            message
                .attributes
                .push(LinkAttribute::Address(mac.to_vec()));
        })
    }

    // ANCHOR: address
    /// Gives `link` the address `addr/prefix` (`ip addr add ADDR/PREFIX dev LINK`); the kernel
    /// adds the route to the subnet by itself. An address the link already has is not an error.
    pub fn add_address(
        &mut self,
        link: &str,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let op = format!("add address {addr}/{prefix} to {link}");
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix;
        message.header.index = self.index_of(&op, link)?;
        message.attributes = vec![
            AddressAttribute::Local(IpAddr::V4(addr)),
            AddressAttribute::Address(IpAddr::V4(addr)),
        ];
        match self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewAddress(message)) {
            Err(e) if e.is_exists() => Ok(()),
            result => result.map(drop),
        }
    }
    // ANCHOR_END: address

    // ANCHOR: route
    /// Sends everything with no more specific route to `gateway` (`ip route add default via
    /// GATEWAY`). The gateway must be on a subnet of one of this namespace's addresses: that is
    /// how the kernel picks the link. A default route that is already there is an error that
    /// [`NetlinkError::is_exists`] recognises.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> Result<(), NetlinkError> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.destination_prefix_length = 0; // 0.0.0.0/0: everything
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Boot; // RTPROT_BOOT, as `ip route add` sets
        message.header.scope = RouteScope::Universe;
        message.header.kind = RouteType::Unicast;
        message.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway))];
        let op = format!("add default route via {gateway}");
        self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewRoute(message))
            .map(drop)
    }
    // ANCHOR_END: route

    // ANCHOR: address6
    /// Gives `link` the IPv6 address `addr/prefix` (`ip -6 addr add ADDR/PREFIX dev LINK
    /// nodad`). `IFA_F_NODAD`, as Docker sets: no duplicate address detection, so the address is
    /// usable at once instead of "tentative" for a second or more (the network's addresses are
    /// the engine's to hand out, no other host can have them). The flag goes twice: the old
    /// 8-bit field of `struct ifaddrmsg` and the 32-bit `IFA_FLAGS` attribute.
    pub fn add_address6(
        &mut self,
        link: &str,
        addr: Ipv6Addr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let op = format!("add address {addr}/{prefix} to {link}");
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet6;
        message.header.prefix_len = prefix;
        message.header.flags = AddressHeaderFlags::Nodad;
        message.header.index = self.index_of(&op, link)?;
        message.attributes = vec![
            AddressAttribute::Address(IpAddr::V6(addr)),
            AddressAttribute::Flags(AddressFlags::Nodad),
        ];
        match self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewAddress(message)) {
            Err(e) if e.is_exists() => Ok(()),
            result => result.map(drop),
        }
    }

    /// Sends every IPv6 packet with no more specific route to `gateway` (`ip -6 route add
    /// default via GATEWAY dev LINK`). Unlike IPv4, the link is named: IPv6 allows gateways
    /// that are link-local, on no subnet of the namespace, so the kernel wants to be told.
    pub fn add_default_route6(
        &mut self,
        gateway: Ipv6Addr,
        link: &str,
    ) -> Result<(), NetlinkError> {
        let op = format!("add IPv6 default route via {gateway} dev {link}");
        let index = self.index_of(&op, link)?;
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet6;
        message.header.destination_prefix_length = 0; // ::/0
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Boot;
        message.header.scope = RouteScope::Universe;
        message.header.kind = RouteType::Unicast;
        message.attributes = vec![
            RouteAttribute::Gateway(RouteAddress::Inet6(gateway)),
            RouteAttribute::Oif(index),
        ];
        self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewRoute(message))
            .map(drop)
    }
    // ANCHOR_END: address6

    /// Deletes the link `name` (`ip link del NAME`). Deleting either end of a veth pair deletes
    /// both. A link that is not there is not an error, so cleanup can run twice.
    pub fn delete_link(&mut self, name: &str) -> Result<(), NetlinkError> {
        if check_name(name).is_err() {
            return Ok(()); // no link can have it
        }
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        let op = format!("delete link {name}");
        match self.request(&op, NLM_F_ACK, RouteNetlinkMessage::DelLink(message)) {
            Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(()),
            result => result.map(drop),
        }
    }

    /// The IPv4 addresses of `link`, with their prefix lengths (`ip -4 addr show dev LINK`).
    pub fn addresses(&mut self, link: &str) -> Result<Vec<(Ipv4Addr, u8)>, NetlinkError> {
        let op = format!("list the addresses of {link}");
        let index = self.index_of(&op, link)?;
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        // A dump answers for every link of the namespace; keep this one's.
        let replies = self.request(&op, NLM_F_DUMP, RouteNetlinkMessage::GetAddress(message))?;
        let addresses = replies.into_iter().filter_map(|reply| match reply {
            RouteNetlinkMessage::NewAddress(address) if address.header.index == index => {
                let prefix = address.header.prefix_len;
                address
                    .attributes
                    .into_iter()
                    .find_map(|attribute| match attribute {
                        AddressAttribute::Local(IpAddr::V4(addr)) => Some((addr, prefix)),
                        _ => None,
                    })
            }
            _ => None,
        });
        Ok(addresses.collect())
    }

    /// The names of every link of this network namespace (`ip link show`), asked of the kernel:
    /// `/sys/class/net` lists the namespace of whoever mounted `/sys`, which a process that
    /// joined another network namespace (`nsenter --net`) does not see change.
    pub fn link_names(&mut self) -> Result<Vec<String>, NetlinkError> {
        let op = "list the links".to_string();
        let replies = self.request(
            &op,
            NLM_F_DUMP,
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(link) => {
                    link.attributes.into_iter().find_map(|a| match a {
                        LinkAttribute::IfName(name) => Some(name),
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// The index of `link`, which `op` needs.
    pub(crate) fn index_of(&mut self, op: &str, link: &str) -> Result<u32, NetlinkError> {
        self.link_index(link)?
            .ok_or_else(|| NetlinkError::NoSuchLink {
                op: op.to_string(),
                link: link.to_string(),
            })
    }

    /// Changes an existing link, found by name: `RTM_NEWLINK` without `NLM_F_CREATE`.
    /// Sets the MTU of `link` (`ip link set LINK mtu N`): the largest packet it sends whole.
    pub fn set_mtu(&mut self, link: &str, mtu: u32) -> Result<(), NetlinkError> {
        self.change_link(
            &format!("set the MTU of {link} to {mtu}"),
            link,
            |message| {
                message.attributes.push(LinkAttribute::Mtu(mtu));
            },
        )
    }

    fn change_link(
        &mut self,
        op: &str,
        link: &str,
        change: impl FnOnce(&mut LinkMessage),
    ) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(link.to_string()));
        change(&mut message);
        self.request(op, NLM_F_ACK, RouteNetlinkMessage::NewLink(message))
            .map(drop)
    }

    // ANCHOR: request
    /// Sends one request and collects the messages that answer it, until the kernel's
    /// acknowledgement (or the end of a dump).
    pub(crate) fn request(
        &mut self,
        op: &str,
        flags: u16,
        message: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize(); // fills in the length and the message type
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);

        let io_failed = |source| NetlinkError::Io {
            op: op.to_string(),
            source,
        };
        self.socket.send(&bytes, 0).map_err(io_failed)?;
        let mut replies = Vec::new();
        let mut datagram = vec![0; RECEIVE_BUFFER];
        loop {
            // MSG_TRUNC: learn the datagram's real length, to notice one larger than the buffer.
            let len = match self.socket.recv(&mut &mut datagram[..], libc::MSG_TRUNC) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue, // a signal: again
                result => result.map_err(io_failed)?,
            };
            let received = datagram.get(..len).ok_or_else(|| NetlinkError::Decode {
                op: op.to_string(),
                reason: format!("a datagram of {len} bytes is larger than {RECEIVE_BUFFER}"),
            })?;
            if read_replies(op, received, self.sequence, &mut replies)? {
                return Ok(replies);
            }
        }
    }
    // ANCHOR_END: request
}

// ANCHOR: read_replies
/// Reads the messages of one datagram that answer request `sequence` into `replies`. Returns
/// true once the answer is complete: an acknowledgement, or the `NLMSG_DONE` that ends a dump.
fn read_replies(
    op: &str,
    mut datagram: &[u8],
    sequence: u32,
    replies: &mut Vec<RouteNetlinkMessage>,
) -> Result<bool, NetlinkError> {
    let decode_failed = |reason: String| NetlinkError::Decode {
        op: op.to_string(),
        reason,
    };
    while !datagram.is_empty() {
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(datagram)
            .map_err(|e| decode_failed(e.to_string()))?;
        // Messages follow each other at 4-byte boundaries (NLMSG_ALIGN).
        let length = usize::try_from(message.header.length).unwrap_or(datagram.len());
        datagram = datagram
            .get(length.next_multiple_of(4)..)
            .unwrap_or_default();
        if message.header.sequence_number != sequence {
            continue; // a late answer to an earlier request
        }
        match message.payload {
            NetlinkPayload::InnerMessage(reply) => replies.push(reply),
            NetlinkPayload::Done(_) => return Ok(true),
            // The error 0 is the acknowledgement; anything else is -errno.
            NetlinkPayload::Error(error) => {
                return match error.code {
                    None => Ok(true),
                    Some(code) => Err(NetlinkError::Kernel {
                        op: op.to_string(),
                        errno: Errno::from_raw(code.get().saturating_abs()),
                    }),
                };
            }
            NetlinkPayload::Overrun(_) => {
                return Err(decode_failed("NLMSG_OVERRUN: data was lost".to_string()));
            }
            _ => {} // NLMSG_NOOP
        }
    }
    Ok(false)
}
// ANCHOR_END: read_replies

/// A process id as netlink's `IFLA_NET_NS_PID` holds it. No process has a pid below 1, and the
/// kernel's answer for a pid that names no process is `ESRCH`.
fn pid_number(op: &str, pid: i32) -> Result<u32, NetlinkError> {
    u32::try_from(pid)
        .ok()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| NetlinkError::Kernel {
            op: op.to_string(),
            errno: Errno::ESRCH,
        })
}

/// `02:42:0a:fa:03:02`.
fn format_mac(mac: [u8; 6]) -> String {
    mac.map(|byte| format!("{byte:02x}")).join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{DoneMessage, ErrorMessage};
    use std::io::Read;
    use std::net::{SocketAddr as InetAddr, TcpListener, TcpStream};
    use std::num::NonZeroI32;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    // ---- pure: names, errors, replies ----

    #[test]
    fn names_the_kernel_refuses_are_refused_before_asking() {
        for good in ["eth0", "sk-3f2a9c", "a", "fifteen-bytes-x", "br.100"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "sixteen-bytes-xx",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "tab\t",
        ] {
            let err = check_name(bad).unwrap_err();
            assert!(
                matches!(err, NetlinkError::BadName(ref n) if n == bad),
                "{bad}"
            );
        }
        assert!(
            check_name("a/b")
                .unwrap_err()
                .to_string()
                .contains("1 to 15 bytes")
        );
    }

    #[test]
    fn errors_name_the_operation_and_the_link() {
        let err = NetlinkError::Kernel {
            op: "create veth sk-3f2a9c/eth0".to_string(),
            errno: Errno::EEXIST,
        };
        assert_eq!(err.to_string(), "create veth sk-3f2a9c/eth0: File exists");
        assert!(err.is_exists());
        let err = NetlinkError::NoSuchLink {
            op: "attach sk-1 to bridge sk-br".to_string(),
            link: "sk-br".to_string(),
        };
        assert_eq!(
            err.to_string(),
            "attach sk-1 to bridge sk-br: no link named \"sk-br\" in this network namespace"
        );
        assert!(!err.is_exists());
        assert_eq!(err.errno(), None);
    }

    #[test]
    fn pids_below_one_name_no_process() {
        assert_eq!(pid_number("x", 42).unwrap(), 42);
        for pid in [0, -1, i32::MIN] {
            assert_eq!(
                pid_number("x", pid).unwrap_err().errno(),
                Some(Errno::ESRCH)
            );
        }
    }

    #[test]
    fn macs_print_as_ip_prints_them() {
        assert_eq!(
            format_mac([0x02, 0x42, 0x0a, 0xfa, 0x03, 0x02]),
            "02:42:0a:fa:03:02"
        );
    }

    /// One datagram holding `messages`, each with its sequence number, as the kernel packs them.
    fn datagram(messages: Vec<(u32, NetlinkPayload<RouteNetlinkMessage>)>) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (sequence, payload) in messages {
            let mut header = NetlinkHeader::default();
            header.sequence_number = sequence;
            let mut message = NetlinkMessage::new(header, payload);
            message.finalize();
            let mut one = vec![0; message.buffer_len().next_multiple_of(4)];
            message.serialize(&mut one[..message.buffer_len()]);
            bytes.extend(one);
        }
        bytes
    }

    fn error_reply(code: i32) -> NetlinkPayload<RouteNetlinkMessage> {
        let mut error = ErrorMessage::default();
        error.code = NonZeroI32::new(code);
        NetlinkPayload::Error(error)
    }

    fn link_reply(index: u32, name: &str) -> NetlinkPayload<RouteNetlinkMessage> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.attributes
            .push(LinkAttribute::IfName(name.to_string()));
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link))
    }

    #[test]
    fn an_acknowledgement_ends_the_answer() {
        let bytes = datagram(vec![(7, link_reply(3, "a")), (7, error_reply(0))]);
        let mut replies = Vec::new();
        assert!(read_replies("op", &bytes, 7, &mut replies).unwrap());
        assert!(matches!(&replies[..], [RouteNetlinkMessage::NewLink(l)] if l.header.index == 3));
    }

    #[test]
    fn a_dump_goes_on_until_done() {
        // An odd-length name makes the first message's length not a multiple of 4.
        let first = datagram(vec![(9, link_reply(1, "lo")), (9, link_reply(2, "eth0x"))]);
        let mut replies = Vec::new();
        assert!(!read_replies("op", &first, 9, &mut replies).unwrap());
        let last = datagram(vec![
            (9, link_reply(5, "sk")),
            (9, NetlinkPayload::Done(DoneMessage::default())),
        ]);
        assert!(read_replies("op", &last, 9, &mut replies).unwrap());
        let indexes: Vec<u32> = replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })
            .collect();
        assert_eq!(indexes, [1, 2, 5]);
    }

    #[test]
    fn the_kernels_errno_becomes_the_error() {
        let bytes = datagram(vec![(4, error_reply(-libc::EEXIST))]);
        let err = read_replies("create bridge sk-x", &bytes, 4, &mut Vec::new()).unwrap_err();
        assert!(err.is_exists());
        assert_eq!(err.to_string(), "create bridge sk-x: File exists");
    }

    #[test]
    fn answers_to_other_requests_are_skipped() {
        let bytes = datagram(vec![(3, error_reply(-libc::EPERM)), (4, error_reply(0))]);
        let mut replies = Vec::new();
        assert!(read_replies("op", &bytes, 4, &mut replies).unwrap());
        assert!(replies.is_empty());
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let err = read_replies("op", &[1, 2, 3], 1, &mut Vec::new()).unwrap_err();
        assert!(matches!(err, NetlinkError::Decode { .. }), "{err}");
    }

    // ---- real links, as root, in a network namespace each test makes ----

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// `n` random bytes, for names and subnets no parallel test shares.
    fn random<const N: usize>() -> [u8; N] {
        let mut bytes = [0; N];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .expect("read /dev/urandom");
        bytes
    }

    /// `sk-t` and 6 random hex digits: a link name that is this test's alone.
    fn test_name() -> String {
        let [a, b, c] = random::<3>();
        format!("sk-t{a:02x}{b:02x}{c:02x}")
    }

    /// 10.250.X.0/24 with a random X in 1..=254.
    fn test_subnet() -> u8 {
        random::<1>()[0] % 254 + 1
    }

    fn netns_of(path: &str) -> Option<PathBuf> {
        std::fs::read_link(path).ok()
    }

    /// A process alone in a new network namespace (`unshare --net sleep 30`), killed on drop.
    struct Netns(Child);

    impl Netns {
        fn new() -> Netns {
            let child = Command::new("unshare")
                .args(["--net", "sleep", "30"])
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn unshare --net sleep 30");
            let netns = Netns(child);
            // Until unshare has run, the child is still in our namespace: wait, or the test
            // would configure the host's.
            let ours = netns_of("/proc/thread-self/ns/net");
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let theirs = netns_of(&format!("/proc/{}/ns/net", netns.pid()));
                if theirs.is_some() && theirs != ours {
                    return netns;
                }
                assert!(Instant::now() < deadline, "unshare --net did not happen");
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        fn pid(&self) -> i32 {
            i32::try_from(self.0.id()).expect("pid fits in i32")
        }

        /// Runs `command` inside the namespace with nsenter, and returns its output.
        fn run(&self, command: &[&str]) -> String {
            let out = Command::new("nsenter")
                .args(["-t", &self.pid().to_string(), "-n"])
                .args(command)
                .output()
                .expect("run nsenter");
            assert!(
                out.status.success(),
                "{command:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Deletes a link of the host's namespace on drop, whether the test passed or not.
    struct HostLink(String);

    impl Drop for HostLink {
        fn drop(&mut self) {
            if let Err(e) = Netlink::open().and_then(|mut nl| nl.delete_link(&self.0)) {
                eprintln!("cleanup: {e}");
            }
        }
    }

    /// `ip -o ...` on the host.
    fn host_ip(args: &[&str]) -> String {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn a_container_on_a_bridge() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let netns = Netns::new();
        let pid = netns.pid();
        let bridge = test_name();
        let veth = test_name();
        let x = test_subnet();
        let (gateway, address) = (Ipv4Addr::new(10, 250, x, 1), Ipv4Addr::new(10, 250, x, 2));
        let mac = [0x02, 0x42, 10, 250, x, 2];

        let mut nl = Netlink::open().unwrap();
        let _bridge = HostLink(bridge.clone());
        nl.create_bridge(&bridge).unwrap();
        assert!(nl.create_bridge(&bridge).unwrap_err().is_exists());
        let _veth = HostLink(veth.clone());
        nl.create_veth(&veth, "eth0", pid).unwrap();
        nl.set_master(&veth, &bridge).unwrap();
        nl.set_up(&veth).unwrap();
        nl.set_up(&bridge).unwrap();
        nl.add_address(&bridge, gateway, 24).unwrap();
        nl.add_address(&bridge, gateway, 24).unwrap(); // already there: fine
        assert_eq!(nl.addresses(&bridge).unwrap(), [(gateway, 24)]);

        let host_side = host_ip(&["-o", "link", "show", "dev", &veth]);
        assert!(
            host_side.contains(&format!("master {bridge}")),
            "{host_side}"
        );
        assert!(
            host_side.contains("link-netns"),
            "peer not in another netns: {host_side}"
        );

        // ANCHOR: configure_inside
        let inside = Netlink::in_netns_of(pid, |nl| {
            nl.set_mac("eth0", mac)?;
            nl.set_up("eth0")?;
            nl.add_address("eth0", address, 24)?;
            nl.add_default_route(gateway)?;
            nl.addresses("eth0")
        })
        .unwrap();
        // ANCHOR_END: configure_inside
        let again = Netlink::in_netns_of(pid, |nl| nl.add_default_route(gateway)).unwrap_err();
        assert!(again.is_exists(), "{again}");
        assert_eq!(inside, [(address, 24)]);

        let link = netns.run(&["ip", "-o", "link", "show", "dev", "eth0"]);
        assert!(link.contains("02:42:0a:fa"), "{link}");
        assert!(link.contains(",UP"), "{link}");
        let addr = netns.run(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
        assert!(addr.contains(&format!("inet {address}/24")), "{addr}");
        let route = netns.run(&["ip", "-4", "route", "show", "default"]);
        assert!(
            route.contains(&format!("default via {gateway} dev eth0")),
            "{route}"
        );

        // The cable works: a TCP connection from inside reaches a listener on the bridge.
        let listener = TcpListener::bind((gateway, 0)).unwrap();
        let target = listener.local_addr().unwrap();
        let connected = Netlink::in_netns_of(pid, |_| {
            TcpStream::connect_timeout(&target, Duration::from_secs(5))
                .and_then(|stream| stream.local_addr())
                .map_err(|source| NetlinkError::Io {
                    op: format!("connect to {target}"),
                    source,
                })
        })
        .unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V4(address));
        assert_eq!(connected, InetAddr::new(IpAddr::V4(address), peer.port()));

        nl.delete_link(&veth).unwrap();
        assert_eq!(nl.link_index(&veth).unwrap(), None);
        let gone = Netlink::in_netns_of(pid, |nl| nl.link_index("eth0")).unwrap();
        assert_eq!(gone, None, "deleting one end of a veth deletes both");
    }

    #[test]
    fn a_macvlan_born_in_the_container() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let netns = Netns::new();
        let pid = netns.pid();
        let parent = test_name();
        let x = test_subnet();
        let address = Ipv4Addr::new(10, 250, x, 2);

        // The parent stands for the host's Ethernet card. A `dummy` link would do, but not every
        // kernel has that driver; every kernel skiff runs on has bridges.
        let _parent = HostLink(parent.clone());
        let mut nl = Netlink::open().unwrap();
        nl.create_bridge(&parent).unwrap();
        nl.set_up(&parent).unwrap();
        nl.create_macvlan("eth0", &parent, pid).unwrap();

        let inside = Netlink::in_netns_of(pid, |nl| {
            nl.set_up("eth0")?;
            nl.add_address("eth0", address, 24)?;
            nl.addresses("eth0")
        })
        .unwrap();
        assert_eq!(inside, [(address, 24)]);
        let link = netns.run(&["ip", "-d", "-o", "link", "show", "dev", "eth0"]);
        assert!(link.contains("macvlan mode bridge"), "{link}");
        let parent_index = nl.link_index(&parent).unwrap().unwrap();
        assert!(link.contains(&format!("eth0@if{parent_index}:")), "{link}");

        let err = nl.create_macvlan("eth1", "sk-tnothere", pid).unwrap_err();
        assert!(matches!(err, NetlinkError::NoSuchLink { ref link, .. } if link == "sk-tnothere"));
    }

    #[test]
    fn ipvlan_and_vlan_links_are_made_as_asked() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let netns = Netns::new();
        let pid = netns.pid();
        let parent = test_name();
        let vlan = format!("{}.7", &parent[..parent.len().min(10)]);
        let _parent = HostLink(parent.clone());
        let _vlan = HostLink(vlan.clone());
        let mut nl = Netlink::open().unwrap();
        nl.create_bridge(&parent).unwrap();
        nl.set_up(&parent).unwrap();
        match nl.create_vlan(&vlan, &parent, 7) {
            // Some kernels are built without 802.1q (this test machine's among them).
            Err(NetlinkError::Kernel {
                errno: Errno::EOPNOTSUPP,
                ..
            }) => eprintln!("vlan part skipped: this kernel has no 802.1q VLAN support"),
            other => {
                other.unwrap();
                let shown = std::process::Command::new("ip")
                    .args(["-d", "-o", "link", "show", "dev", &vlan])
                    .output()
                    .unwrap();
                let shown = String::from_utf8_lossy(&shown.stdout);
                assert!(shown.contains("vlan protocol 802.1Q id 7"), "{shown}");
            }
        }
        match nl.create_sublink("eth0", &parent, pid, SubLinkMode::Ipvlan(IpvlanMode::L3)) {
            Err(NetlinkError::Kernel {
                errno: Errno::EOPNOTSUPP,
                ..
            }) => eprintln!("ipvlan part skipped: this kernel has no ipvlan driver"),
            other => {
                other.unwrap();
                let link = netns.run(&["ip", "-d", "-o", "link", "show", "dev", "eth0"]);
                assert!(
                    link.contains("ipvlan") && link.contains("mode l3"),
                    "{link}"
                );
            }
        }
        nl.create_sublink(
            "eth1",
            &parent,
            pid,
            SubLinkMode::Macvlan(MacvlanMode::Private),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let link = netns.run(&["ip", "-d", "-o", "link", "show", "dev", "eth1"]);
        assert!(link.contains("macvlan mode private"), "{link}");
    }

    #[test]
    fn failures_name_what_failed_and_leave_nothing_behind() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let name = test_name();
        let mut nl = Netlink::open().unwrap();
        assert_eq!(nl.link_index(&name).unwrap(), None);
        assert_eq!(nl.link_index("a-name-too-long-for-linux").unwrap(), None);
        nl.delete_link(&name).unwrap(); // not there: fine
        nl.delete_link("a/b").unwrap();

        let err = nl.set_up(&name).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::ENODEV));
        assert_eq!(err.to_string(), format!("bring up {name}: No such device"));
        let err = nl.set_master(&name, "sk-tnothere").unwrap_err();
        assert!(matches!(err, NetlinkError::NoSuchLink { .. }), "{err}");
        let err = nl
            .add_address(&name, Ipv4Addr::new(10, 250, 0, 1), 24)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("add address 10.250.0.1/24 to {name}: "))
        );

        // No process has this pid (pid_max is at most 2^22): the kernel makes no veth.
        let _veth = HostLink(name.clone());
        let err = nl.create_veth(&name, "eth0", i32::MAX).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::ESRCH), "{err}");
        assert_eq!(nl.link_index(&name).unwrap(), None);
        let err = nl
            .create_veth(&name, "a-name-too-long-for-linux", 1)
            .unwrap_err();
        assert!(matches!(err, NetlinkError::BadName(_)), "{err}");
        assert_eq!(nl.link_index(&name).unwrap(), None);

        let err = Netlink::in_netns_of(i32::MAX, |nl| nl.link_index("lo")).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("/proc/{}/ns/net", i32::MAX)),
            "{err}"
        );
    }

    #[test]
    fn in_netns_of_leaves_the_callers_thread_where_it_was() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let netns = Netns::new();
        let before = netns_of("/proc/thread-self/ns/net");
        let (seen, lo) = Netlink::in_netns_of(netns.pid(), |nl| {
            Ok((netns_of("/proc/thread-self/ns/net"), nl.link_index("lo")?))
        })
        .unwrap();
        assert_eq!(seen, netns_of(&format!("/proc/{}/ns/net", netns.pid())));
        assert_ne!(seen, before);
        assert_eq!(lo, Some(1), "a new namespace holds lo, index 1");
        assert_eq!(netns_of("/proc/thread-self/ns/net"), before);
    }
}
