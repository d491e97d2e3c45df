//! A container on an overlay network: what joining and leaving do on this host and in the store.
//!
//! `run --network NAME`, where NAME is an overlay network of the cluster store, goes through the
//! same [`crate::feature::NetworkFeature`] as a bridge network, with three differences:
//!
//! - **a local mirror**: the first local container writes a record of the network into this
//!   host's store (driver `overlay`, with the store's URL and this host's advertise address in
//!   its options), so everything that works from local records — the endpoints, the veths,
//!   `/etc/hosts`, the sweep of a crashed container — works for overlay containers too. The
//!   mirror goes with the last local container ([`crate::store::Network::goes_when_empty`]);
//! - **the address comes from the store**: taken by an etcd transaction
//!   ([`crate::overlay::join_named`]), with the endpoint record (id, name, aliases, MAC, IP,
//!   this host's address), then requested from the local record as `--ip` would;
//! - **the data path**: the first local container makes the bridge and the VXLAN device and
//!   programs every remote endpoint ([`crate::vxlan::set_up`]); the last one removes them.
//!
//! Leaving deletes the endpoint record and frees the address in the store, from the local
//! record alone: a sweep after a crash needs nothing else.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use crate::etcd::{Etcd, EtcdError};
use crate::ipam::Mac;
use crate::netlink::{Netlink, NetlinkError};
use crate::overlay::{self, Endpoint, OverlayError, OverlayNetwork};
use crate::store::{self, Driver, Network, StoreError};
use crate::vxlan;

/// The mirror's option holding the cluster store's URL.
pub const STORE: &str = "skiff.overlay.store";
/// The mirror's option holding this host's advertise address.
pub const ADVERTISE: &str = "skiff.overlay.advertise";
/// The mirror's option saying the network is encrypted (Docker's name for it).
pub const ENCRYPTED: &str = "encrypted";
/// The mirror's option holding the VNI (Docker's name for it).
pub const VNI: &str = "com.docker.network.driver.overlay.vxlanid_list";

/// Where the cluster store is and what this host's underlay address is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// `etcd://HOST:PORT`.
    pub store: String,
    /// `--advertise-addr`, if given.
    pub advertise: Option<Ipv4Addr>,
}

/// What can go wrong attaching a container to an overlay network.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The cluster store failed.
    #[error(transparent)]
    Store(#[from] EtcdError),
    /// An overlay record failed.
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    /// The local record failed.
    #[error(transparent)]
    Local(#[from] StoreError),
    /// The data path failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// IPsec could not be set up.
    #[error(transparent)]
    Xfrm(#[from] crate::xfrm::XfrmError),
    /// An encrypted network without the cluster's key.
    #[error(
        "overlay network {0} is encrypted but the cluster store has no IPsec key at /skiff/overlay/ipsec-key"
    )]
    NoKey(String),
    /// No `--advertise-addr`.
    #[error(
        "overlay network {0} needs this host's address on the underlay: pass --advertise-addr IP or set SKIFF_ADVERTISE_ADDR"
    )]
    NoAdvertise(String),
    /// A mirror record without the options skiff writes.
    #[error(
        "the local record of overlay network {network} has no {option}: remove the file of network id {id} under the store's networks/"
    )]
    Mirror {
        /// The network.
        network: String,
        /// Its id.
        id: String,
        /// The option missing.
        option: &'static str,
    },
}

/// A result of attaching.
pub type Result<T> = std::result::Result<T, AttachError>;

/// The local mirror of overlay network `network`.
fn mirror(network: &OverlayNetwork, store: &str, advertise: Ipv4Addr) -> Network {
    let mut options = BTreeMap::from([
        (STORE.to_string(), store.to_string()),
        (ADVERTISE.to_string(), advertise.to_string()),
        (VNI.to_string(), network.vni.to_string()),
        (store::MTU.to_string(), vxlan::mtu().to_string()),
    ]);
    if network.encrypted {
        options.insert(ENCRYPTED.to_string(), String::new());
    }
    Network {
        name: network.name.clone(),
        id: network.id.clone(),
        driver: Driver::Overlay,
        subnet: Some(network.subnet),
        gateway: Some(network.gateway),
        bridge: Some(vxlan::bridge_name(network.vni)),
        parent: None,
        internal: true,
        created: images::human::now_rfc3339(),
        labels: BTreeMap::new(),
        options,
        ipam: Default::default(),
        endpoints: Vec::new(),
        ipv6: None,
    }
}

// ANCHOR: adopt
/// The local record of overlay network `name`: the one here, or a new mirror of the store's.
/// `None` when the store has no such network either.
pub fn adopt(root: &Path, name: &str, cluster: &Cluster) -> Result<Option<Network>> {
    let etcd = Etcd::new(&cluster.store)?;
    let Some(network) = overlay::network(&etcd, name)? else {
        return Ok(None);
    };
    let advertise = cluster
        .advertise
        .ok_or_else(|| AttachError::NoAdvertise(name.to_string()))?;
    Ok(Some(store::adopt(
        root,
        mirror(&network, &cluster.store, advertise),
    )?))
}
// ANCHOR_END: adopt

/// The store, the store's network and this host's address, from a mirror record alone.
pub fn parts(network: &Network) -> Result<(Etcd, OverlayNetwork, Ipv4Addr)> {
    let option = |key: &'static str| {
        network.options.get(key).ok_or_else(|| AttachError::Mirror {
            network: network.name.clone(),
            id: network.id.clone(),
            option: key,
        })
    };
    let bad = |key: &'static str| AttachError::Mirror {
        network: network.name.clone(),
        id: network.id.clone(),
        option: key,
    };
    let etcd = Etcd::new(option(STORE)?)?;
    let local: Ipv4Addr = option(ADVERTISE)?.parse().map_err(|_| bad(ADVERTISE))?;
    let vni: u32 = option(VNI)?.parse().map_err(|_| bad(VNI))?;
    let (Some(subnet), Some(gateway)) = (network.subnet, network.gateway) else {
        return Err(bad("subnet"));
    };
    let overlay = OverlayNetwork {
        name: network.name.clone(),
        id: network.id.clone(),
        subnet,
        gateway,
        vni,
        encrypted: network.options.contains_key(ENCRYPTED),
    };
    Ok((etcd, overlay, local))
}

// ANCHOR: join
/// Container `container_id` joins the overlay network `network` (its mirror) on this host: an
/// address and the endpoint record in the store, then the data path, made if this is the first
/// local container, with the entries of every remote endpoint. On a failure the store's records
/// go again.
pub fn join(
    root: &Path,
    network: &Network,
    container_id: &str,
    names: (&str, &[String]),
) -> Result<Endpoint> {
    let (etcd, overlay, local) = parts(network)?;
    // With the lease of this host's agent, when one runs (the first container's are attached
    // to it when the agent starts).
    let lease = crate::overlay_agent::lease(root, &network.id);
    let endpoint = match overlay::join_named(&etcd, &overlay, container_id, local, names, lease) {
        // The note of an agent that was killed: its lease expired with this host's records.
        // They are written back first, so the address taken now is none of theirs; the agent
        // this container starts writes them once more, with a lease it keeps alive.
        Err(overlay::OverlayError::Store(e)) if e.is_lease_not_found() => {
            if let Some(stale) = lease {
                crate::overlay_agent::forget_lease(root, &network.id, stale);
            }
            let lease = crate::overlay_agent::reclaim(root, &etcd, &overlay, local).ok();
            overlay::join_named(&etcd, &overlay, container_id, local, names, lease)?
        }
        joined => joined?,
    };
    let programmed = overlay::endpoints(&etcd, &overlay)
        .map_err(AttachError::from)
        .and_then(|all| {
            secure(&etcd, &overlay, local, &all)?;
            let mut netlink = Netlink::open()?;
            vxlan::set_up(&mut netlink, &overlay, local, &all).map_err(AttachError::from)
        });
    if let Err(e) = programmed {
        let _ = overlay::leave(&etcd, &overlay, &endpoint);
        return Err(e);
    }
    Ok(endpoint)
}
// ANCHOR_END: join

// ANCHOR: leave
/// Container `container_id`, which held `ip`, has left the mirror `network` (as it is now):
/// its endpoint record and address go from the store, and with the last local container the
/// data path goes (the VXLAN device takes its FDB and neighbour entries with it). Returns what
/// could not be undone.
pub fn leave(network: &Network, container_id: &str, ip: Ipv4Addr) -> Vec<String> {
    let mut errors = Vec::new();
    let (etcd, overlay, local) = match parts(network) {
        Ok(parts) => parts,
        Err(e) => return vec![e.to_string()],
    };
    let endpoint = Endpoint {
        id: container_id.to_string(),
        ip,
        mac: Mac::for_ip(ip).to_string(),
        host: local,
        name: String::new(),
        aliases: Vec::new(),
    };
    if let Err(e) = overlay::leave(&etcd, &overlay, &endpoint) {
        errors.push(format!(
            "remove the endpoint of {container_id} from overlay network {}: {e}",
            network.name
        ));
    }
    if network.endpoints.is_empty() && overlay.encrypted {
        errors.extend(unsecure_all(&etcd, &overlay, local));
    }
    if network.endpoints.is_empty()
        && let Err(e) = Netlink::open().and_then(|mut n| vxlan::tear_down(&mut n, &overlay))
    {
        errors.push(format!(
            "remove the data path of overlay network {}: {e}",
            network.name
        ));
    }
    errors
}
// ANCHOR_END: leave

// ANCHOR: secure
/// On an encrypted network, IPsec between this host and every host of `endpoints`, with the
/// cluster's key (see [`crate::xfrm`]). Idempotent.
pub fn secure(
    etcd: &Etcd,
    overlay: &OverlayNetwork,
    local: Ipv4Addr,
    endpoints: &[Endpoint],
) -> Result<()> {
    if !overlay.encrypted {
        return Ok(());
    }
    let key = overlay::ipsec_key(etcd)?.ok_or_else(|| AttachError::NoKey(overlay.name.clone()))?;
    let mut hosts: Vec<Ipv4Addr> = endpoints.iter().map(|e| e.host).collect();
    hosts.sort();
    hosts.dedup();
    for host in hosts.into_iter().filter(|h| *h != local) {
        crate::xfrm::secure(local, host, &key)?;
    }
    Ok(())
}

/// The hosts that the VXLAN devices of this host's *encrypted* networks send to, all but
/// `except`'s: a pair of hosts keeps its IPsec while an encrypted network still has an endpoint
/// on the other one. (While it does, the policy, which knows hosts and a UDP port but no VNI,
/// encrypts the other networks' traffic to that host too; once none does, theirs is in clear,
/// as they asked.)
pub fn hosts_in_use(etcd: &Etcd, except: Option<&str>) -> Vec<Ipv4Addr> {
    // Without the store's word every overlay network counts: keeping IPsec a while too long
    // is safe, dropping it under an encrypted network is not.
    let encrypted: Option<Vec<String>> = overlay::list_networks(etcd).ok().map(|list| {
        list.into_iter()
            .filter(|n| n.encrypted)
            .map(|n| vxlan::vxlan_name(n.vni))
            .collect()
    });
    let Ok(mut netlink) = Netlink::open() else {
        return Vec::new();
    };
    // The kernel's list, not /sys/class/net's: that one is the namespace /sys was mounted in.
    let devices: Vec<String> = netlink
        .link_names()
        .unwrap_or_default()
        .into_iter()
        .filter(|name| {
            name.starts_with("skvx-")
                && encrypted.as_ref().is_none_or(|e| e.contains(name))
                && Some(name.as_str()) != except
        })
        .collect();
    devices
        .iter()
        .filter_map(|device| netlink.fdb_entries(device).ok())
        .flatten()
        .map(|(_, host)| host)
        .collect()
}

/// The IPsec of the hosts this host's VXLAN device of `overlay` sends to, removed, but for
/// hosts another network still sends to: what the last local container leaving does.
pub fn unsecure_all(etcd: &Etcd, overlay: &OverlayNetwork, local: Ipv4Addr) -> Vec<String> {
    let device = vxlan::vxlan_name(overlay.vni);
    let in_use = hosts_in_use(etcd, Some(&device));
    let mut hosts = Netlink::open()
        .and_then(|mut n| n.fdb_entries(&device))
        .map(|entries| {
            entries
                .into_iter()
                .map(|(_, host)| host)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    hosts.sort();
    hosts.dedup();
    let mut errors = Vec::new();
    for host in hosts.into_iter().filter(|h| !in_use.contains(h)) {
        if let Err(e) = crate::xfrm::unsecure(local, host) {
            errors.push(e.to_string());
        }
    }
    errors
}
// ANCHOR_END: secure

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirror_holds_what_leaving_needs() {
        let network = OverlayNetwork {
            name: "o".into(),
            id: "ab".repeat(32),
            subnet: crate::ipam::Subnet::parse("10.216.5.0/24").expect("subnet"),
            gateway: Ipv4Addr::new(10, 216, 5, 1),
            vni: 421_601,
            encrypted: true,
        };
        let local = mirror(
            &network,
            "etcd://10.216.0.1:2379",
            Ipv4Addr::new(10, 216, 0, 2),
        );
        let (etcd, back, host) = parts(&local).expect("parts");
        assert_eq!(back, network);
        assert_eq!(host, Ipv4Addr::new(10, 216, 0, 2));
        assert_eq!(etcd.endpoint(), "http://10.216.0.1:2379");
        assert_eq!(local.mtu(), Some(1450));
        let mut broken = local;
        broken.options.remove(STORE);
        assert!(matches!(
            parts(&broken),
            Err(AttachError::Mirror { option: STORE, .. })
        ));
    }
}
