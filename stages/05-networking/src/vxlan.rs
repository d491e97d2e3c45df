//! The overlay data path on one host: a bridge, a VXLAN device, and an entry per remote endpoint.
//!
//! VXLAN (RFC 7348) carries a whole Ethernet frame inside a UDP datagram (port 4789) between two
//! hosts' addresses, with a 24-bit network identifier (the VNI) in an 8-byte header: the frame a
//! container sends on one host comes out of the VXLAN device of the other host as if both were
//! plugged into one switch. The outer headers cost 50 bytes (IPv4 20, UDP 8, VXLAN 8, inner
//! Ethernet 14), so the inner MTU is 1450 where the underlay's is 1500.
//!
//! On each host, for each overlay network with a local container: a bridge `skov-VNI` (the
//! containers' veths plug into it, as on a bridge network) and a VXLAN device `skvx-VNI` plugged
//! into the same bridge. The device does not learn (`nolearning`) and floods nothing: where each
//! remote container is comes from the cluster store, as two entries per remote endpoint:
//!
//! - an **FDB entry** on the VXLAN device, `MAC → host` (`bridge fdb add MAC dev skvx-VNI dst
//!   HOST self permanent`): a frame for that MAC goes in a datagram to that host;
//! - a **neighbour entry**, `IP → MAC` (`ip neigh add IP lladdr MAC dev skvx-VNI`): with
//!   `proxy` on, the VXLAN device answers a container's ARP request for that IP itself, so no
//!   broadcast ever crosses the underlay.
//!
//! Both live in the host's namespace, next to the bridge, as the devices of a bridge network do
//! (Docker puts them in a namespace of its own per network; one more namespace is one more thing
//! to explain and to clean up, for no gain on a host with one engine). See ip-link(8) (`type
//! vxlan`), bridge(8) (`fdb`) and ip-neighbour(8).

use std::net::Ipv4Addr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP};
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::link::{InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::ipam::Mac;
use crate::netlink::{CREATE_NEW, Netlink, NetlinkError};
use crate::overlay::{Endpoint, OverlayNetwork};

/// VXLAN's IANA port.
pub const VXLAN_PORT: u16 = 4789;
/// What the outer IPv4, UDP and VXLAN headers and the inner Ethernet header take from the MTU.
pub const OVERHEAD: u32 = 50;
/// The underlay MTU the overlay is sized for.
const UNDERLAY_MTU: u32 = 1500;

/// The bridge of overlay network `vni` on this host.
pub fn bridge_name(vni: u32) -> String {
    format!("skov-{vni}")
}

/// The VXLAN device of overlay network `vni` on this host.
pub fn vxlan_name(vni: u32) -> String {
    format!("skvx-{vni}")
}

/// The MTU of every link inside an overlay network.
pub fn mtu() -> u32 {
    UNDERLAY_MTU - OVERHEAD
}

impl Netlink {
    // ANCHOR: create_vxlan
    /// Creates a VXLAN device (`ip link add NAME type vxlan id VNI local LOCAL dstport 4789
    /// nolearning proxy`): frames sent to it leave as UDP datagrams from `local`, to the host its
    /// FDB names for their destination MAC.
    pub fn create_vxlan(
        &mut self,
        name: &str,
        vni: u32,
        local: Ipv4Addr,
    ) -> Result<(), NetlinkError> {
        crate::netlink::check_name(name)?;
        let mut link = LinkMessage::default();
        link.attributes = vec![
            LinkAttribute::IfName(name.to_string()),
            LinkAttribute::Mtu(mtu()),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vxlan),
                LinkInfo::Data(InfoData::Vxlan(vec![
                    InfoVxlan::Id(vni),
                    InfoVxlan::Local(local),
                    InfoVxlan::Port(VXLAN_PORT),
                    InfoVxlan::Learning(false),
                    InfoVxlan::Proxy(true),
                ])),
            ]),
        ];
        let op = format!("create VXLAN device {name} (VNI {vni}, local {local})");
        self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewLink(link))
            .map(drop)
    }
    // ANCHOR_END: create_vxlan

    // ANCHOR: fdb
    /// A static FDB entry on VXLAN device `link`: frames for `mac` go to `host` (`bridge fdb add
    /// MAC dev LINK dst HOST self permanent`). `NTF_SELF` puts it in the device's own table, not
    /// the bridge's.
    pub fn add_fdb(&mut self, link: &str, mac: Mac, host: Ipv4Addr) -> Result<(), NetlinkError> {
        let op = format!("add FDB entry {mac} dst {host} on {link}");
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        message.header.ifindex = self.index_of(&op, link)?;
        message.header.state = NeighbourState::Permanent;
        message.header.flags = NeighbourFlags::Own;
        message.attributes = vec![
            NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()),
            NeighbourAttribute::Destination(NeighbourAddress::Inet(host)),
        ];
        self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewNeighbour(message))
            .map(drop)
    }

    /// A permanent neighbour entry on `link`: `ip` is at `mac` (`ip neigh add IP lladdr MAC dev
    /// LINK nud permanent`).
    pub fn add_neighbour(
        &mut self,
        link: &str,
        ip: Ipv4Addr,
        mac: Mac,
    ) -> Result<(), NetlinkError> {
        let op = format!("add neighbour entry {ip} lladdr {mac} on {link}");
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.ifindex = self.index_of(&op, link)?;
        message.header.state = NeighbourState::Permanent;
        message.attributes = vec![
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)),
            NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()),
        ];
        self.request(&op, CREATE_NEW, RouteNetlinkMessage::NewNeighbour(message))
            .map(drop)
    }
    // ANCHOR_END: fdb

    /// The remote entries of VXLAN device `link`: the MAC and host of each FDB entry with a
    /// destination (`bridge fdb show dev LINK`, the `dst` ones).
    pub fn fdb_entries(&mut self, link: &str) -> Result<Vec<(Mac, Ipv4Addr)>, NetlinkError> {
        let op = format!("list the FDB entries of {link}");
        let index = self.index_of(&op, link)?;
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        // A dump answers for every bridge port of the namespace; keep this device's.
        let replies = self.request(&op, NLM_F_DUMP, RouteNetlinkMessage::GetNeighbour(message))?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewNeighbour(entry) if entry.header.ifindex == index => {
                    let mut mac = None;
                    let mut host = None;
                    for attribute in entry.attributes {
                        match attribute {
                            NeighbourAttribute::LinkLayerAddress(bytes) => {
                                mac = <[u8; 6]>::try_from(bytes.as_slice()).ok().map(Mac);
                            }
                            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => {
                                host = Some(ip);
                            }
                            // The crate reads an AF_BRIDGE entry's destination as raw bytes.
                            NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
                                host = <[u8; 4]>::try_from(bytes.as_slice())
                                    .ok()
                                    .map(Ipv4Addr::from);
                            }
                            _ => {}
                        }
                    }
                    mac.zip(host)
                }
                _ => None,
            })
            .collect())
    }

    /// Deletes the FDB entry `mac → host` and the neighbour entry of `ip` from `link` (`bridge
    /// fdb del`, `ip neigh del`). Entries already gone are not an error.
    pub fn delete_remote(
        &mut self,
        link: &str,
        mac: Mac,
        host: Ipv4Addr,
        ip: Ipv4Addr,
    ) -> Result<(), NetlinkError> {
        let op = format!("delete the entries of {ip} ({mac} at {host}) on {link}");
        let index = self.index_of(&op, link)?;
        let mut fdb = NeighbourMessage::default();
        fdb.header.family = AddressFamily::Bridge;
        fdb.header.ifindex = index;
        fdb.header.flags = NeighbourFlags::Own;
        fdb.attributes = vec![
            NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()),
            NeighbourAttribute::Destination(NeighbourAddress::Inet(host)),
        ];
        let mut neighbour = NeighbourMessage::default();
        neighbour.header.family = AddressFamily::Inet;
        neighbour.header.ifindex = index;
        neighbour.attributes = vec![NeighbourAttribute::Destination(NeighbourAddress::Inet(ip))];
        for message in [fdb, neighbour] {
            match self.request(&op, NLM_F_ACK, RouteNetlinkMessage::DelNeighbour(message)) {
                Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => {}
                other => other.map(drop)?,
            }
        }
        Ok(())
    }
}

// ANCHOR: data_path
/// Makes the data path of `network` on this host if it is not there (the first local container
/// joins), and programs every endpoint of `endpoints` that runs on another host than `local`.
pub fn set_up(
    netlink: &mut Netlink,
    network: &OverlayNetwork,
    local: Ipv4Addr,
    endpoints: &[Endpoint],
) -> Result<(), NetlinkError> {
    let bridge = bridge_name(network.vni);
    let vxlan = vxlan_name(network.vni);
    if netlink.link_index(&vxlan)?.is_none() {
        match netlink.create_bridge(&bridge) {
            Err(e) if e.is_exists() => {}
            result => result?,
        }
        netlink.set_mtu(&bridge, mtu())?;
        // The gateway address on every host's bridge: the containers' DNS server listens there.
        // Each host answers for it on its own bridge; the VXLAN device answers ARP only for
        // remote endpoints, so the address never crosses the underlay.
        match netlink.add_address(&bridge, network.gateway, network.subnet.prefix_len()) {
            Err(e) if e.is_exists() => {}
            result => result?,
        }
        netlink.create_vxlan(&vxlan, network.vni, local)?;
        netlink.set_master(&vxlan, &bridge)?;
        netlink.set_up(&vxlan)?;
        netlink.set_up(&bridge)?;
    }
    // A defence the labs prove: a debug build can be told to leave the entries out, and then
    // no frame finds its way to the other host.
    if chroot::defence::disabled("overlay-entries") {
        return Ok(());
    }
    for endpoint in endpoints.iter().filter(|e| e.host != local) {
        add_remote(netlink, &vxlan, endpoint)?;
    }
    Ok(())
}

/// The two entries for one remote endpoint; ones already there are kept.
pub fn add_remote(
    netlink: &mut Netlink,
    vxlan: &str,
    endpoint: &Endpoint,
) -> Result<(), NetlinkError> {
    let mac = Mac::parse(&endpoint.mac).unwrap_or_else(|| Mac::for_ip(endpoint.ip));
    for result in [
        netlink.add_fdb(vxlan, mac, endpoint.host),
        netlink.add_neighbour(vxlan, endpoint.ip, mac),
    ] {
        match result {
            Err(e) if e.is_exists() => {}
            other => other?,
        }
    }
    Ok(())
}

// ANCHOR: sync
/// Brings the entries of `network`'s VXLAN device in line with `endpoints`, the store's: adds
/// the new remote ones, deletes those whose container has gone. What a watch on the endpoint
/// records calls on every change (a poll, for now: the caller decides when).
pub fn sync(
    netlink: &mut Netlink,
    network: &OverlayNetwork,
    local: Ipv4Addr,
    endpoints: &[Endpoint],
) -> Result<(), NetlinkError> {
    set_up(netlink, network, local, endpoints)?;
    let vxlan = vxlan_name(network.vni);
    let wanted: Vec<String> = endpoints
        .iter()
        .filter(|e| e.host != local)
        .map(|e| e.mac.clone())
        .collect();
    for (mac, host) in netlink.fdb_entries(&vxlan)? {
        if !wanted.contains(&mac.to_string()) {
            // Docker's MACs carry the address: 02:42 and its four bytes.
            let [_, _, a, b, c, d] = mac.octets();
            netlink.delete_remote(&vxlan, mac, host, Ipv4Addr::new(a, b, c, d))?;
        }
    }
    Ok(())
}
// ANCHOR_END: sync

/// Removes the data path of `network` on this host (the last local container left): the VXLAN
/// device, and with it every FDB and neighbour entry on it, then the bridge. Idempotent.
pub fn tear_down(netlink: &mut Netlink, network: &OverlayNetwork) -> Result<(), NetlinkError> {
    for link in [vxlan_name(network.vni), bridge_name(network.vni)] {
        if netlink.link_index(&link)?.is_some() {
            netlink.delete_link(&link)?;
        }
    }
    Ok(())
}
// ANCHOR_END: data_path

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_a_link_name() {
        let max_vni = (1 << 24) - 1;
        assert_eq!(vxlan_name(max_vni), "skvx-16777215");
        assert!(bridge_name(max_vni).len() <= 15);
        assert_eq!(mtu(), 1450);
    }
}
