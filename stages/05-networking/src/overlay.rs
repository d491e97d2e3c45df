//! Overlay networks: one network across hosts, its records in the cluster store.
//!
//! A bridge network lives on one host, so its record is a file in that host's store. An overlay
//! network (Docker's `-d overlay`, scope `global`) lives on every host connected to the same
//! etcd, so its records live there ([`crate::etcd`]), under `/skiff/overlay/`:
//!
//! | key | value |
//! |---|---|
//! | `networks/NAME` | the network: id, subnet, gateway, VNI (JSON) |
//! | `vni/VNI` | the network's name: who holds this VXLAN id |
//! | `subnets/CIDR` | the network's name: who holds this subnet |
//! | `addresses/NETWORK-ID/IP` | the endpoint id holding this address |
//! | `endpoints/NETWORK-ID/ENDPOINT-ID` | the endpoint: its IP, MAC and host (JSON) |
//!
//! Every allocation is an [`Etcd::create`] transaction, so two hosts never take the same VNI,
//! subnet or address: the one whose transaction fails tries the next. The endpoint records are
//! what each host turns into FDB and neighbour entries for its VXLAN device (see the data path
//! in [`crate::vxlan`]).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::etcd::{Etcd, EtcdError};
use crate::ipam::{IpamError, Mac, Subnet};

/// Where skiff's overlay records start in etcd.
pub const PREFIX: &str = "/skiff/overlay/";
/// The first VXLAN network identifier handed out (Docker's overlay driver starts at 4096 too,
/// leaving the low ones to hand-made tunnels).
const FIRST_VNI: u32 = 4096;
/// How many VNIs are tried before giving up.
const VNI_TRIES: u32 = 4096;

/// What can go wrong with overlay records.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The store could not be used.
    #[error(transparent)]
    Store(#[from] EtcdError),
    /// A subnet or address problem.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// `network create` with a name already in the store.
    #[error("network with name {0} already exists in the cluster store: choose another name")]
    Exists(String),
    /// No such overlay network.
    #[error("network {0} not found in the cluster store")]
    NotFound(String),
    /// The subnet overlaps another overlay network's.
    #[error("subnet {subnet} overlaps overlay network {other} ({its}): choose another --subnet")]
    Overlaps {
        /// The subnet asked for.
        subnet: Subnet,
        /// The other network.
        other: String,
        /// Its subnet.
        its: Subnet,
    },
    /// Every VNI or default subnet tried was taken.
    #[error("no free {0} left in the cluster store: remove unused overlay networks")]
    Exhausted(&'static str),
    /// `network rm` while containers (on any host) use the network.
    #[error(
        "error while removing network: network {name} id {id} has active endpoints ({count}, on any host): stop and remove them first"
    )]
    InUse {
        /// The network.
        name: String,
        /// Its id.
        id: String,
        /// How many endpoints.
        count: usize,
    },
    /// A record in the store is not the JSON skiff writes.
    #[error("corrupt overlay record {key} in the cluster store: {reason}; delete it with etcdctl")]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// A result of an overlay operation.
pub type Result<T> = std::result::Result<T, OverlayError>;

// ANCHOR: records
/// An overlay network, as stored in etcd at `networks/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayNetwork {
    /// Its name.
    pub name: String,
    /// 64 hex digits, like a local network's id.
    pub id: String,
    /// Its addresses, shared by every host.
    pub subnet: Subnet,
    /// The gateway address (reserved; overlay containers have no default route through it yet).
    pub gateway: Ipv4Addr,
    /// The VXLAN network identifier: the 24-bit number in every encapsulated frame's header.
    pub vni: u32,
    /// `--opt encrypted`: its VXLAN traffic between hosts goes through IPsec ESP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
}

/// One container's place on an overlay network, at `endpoints/NETWORK-ID/ENDPOINT-ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The endpoint's id (the container's id).
    pub id: String,
    /// The container's address on the network.
    pub ip: Ipv4Addr,
    /// Its MAC address (Docker's, from the IP).
    pub mac: String,
    /// The advertise address of the host it runs on: where VXLAN packets for it go.
    pub host: Ipv4Addr,
    /// The container's name, which every host's containers resolve.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Its other names on this network (`--network-alias`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}
// ANCHOR_END: records

fn key(parts: &[&str]) -> String {
    format!("{PREFIX}{}", parts.join("/"))
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| OverlayError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

// ANCHOR: create
/// `network create -d overlay`: takes a VNI, a subnet (the one given, or the next free /24 of
/// 10.0.0.0/8 as Docker's overlay pool does) and the name, each by a transaction; on any
/// failure gives back what it took.
pub fn create_network(
    etcd: &Etcd,
    name: &str,
    subnet: Option<Subnet>,
    id: &str,
) -> Result<OverlayNetwork> {
    create_network_with(etcd, name, subnet, id, false)
}

/// [`create_network`], `encrypted` or not (`--opt encrypted`): the record says so from its
/// first write, so no container can join it unencrypted.
pub fn create_network_with(
    etcd: &Etcd,
    name: &str,
    subnet: Option<Subnet>,
    id: &str,
    encrypted: bool,
) -> Result<OverlayNetwork> {
    if etcd.get(&key(&["networks", name]))?.is_some() {
        return Err(OverlayError::Exists(name.to_owned()));
    }
    let vni = take_vni(etcd, name)?;
    let taken = take_subnet(etcd, name, subnet).and_then(|subnet| {
        let network = OverlayNetwork {
            name: name.to_owned(),
            id: id.to_owned(),
            subnet,
            gateway: subnet.gateway(),
            vni,
            encrypted,
        };
        if etcd.create(&key(&["networks", name]), &encode(&network))? {
            Ok(network)
        } else {
            etcd.delete(&key(&["subnets", &subnet.to_string()]))?;
            Err(OverlayError::Exists(name.to_owned()))
        }
    });
    if taken.is_err() {
        etcd.delete(&key(&["vni", &vni.to_string()]))?;
    }
    taken
}
// ANCHOR_END: create

fn take_vni(etcd: &Etcd, name: &str) -> Result<u32> {
    for vni in FIRST_VNI..FIRST_VNI + VNI_TRIES {
        if etcd.create(&key(&["vni", &vni.to_string()]), name.as_bytes())? {
            return Ok(vni);
        }
    }
    Err(OverlayError::Exhausted("VXLAN id"))
}

fn take_subnet(etcd: &Etcd, name: &str, wanted: Option<Subnet>) -> Result<Subnet> {
    let others = list_networks(etcd)?;
    let free = |candidate: &Subnet| -> Result<()> {
        match others.iter().find(|n| n.subnet.overlaps(candidate)) {
            Some(other) => Err(OverlayError::Overlaps {
                subnet: *candidate,
                other: other.name.clone(),
                its: other.subnet,
            }),
            None => Ok(()),
        }
    };
    if let Some(subnet) = wanted {
        free(&subnet)?;
        if etcd.create(&key(&["subnets", &subnet.to_string()]), name.as_bytes())? {
            return Ok(subnet);
        }
        return Err(OverlayError::Overlaps {
            subnet,
            other: "(being created on another host)".to_owned(),
            its: subnet,
        });
    }
    for second in 0..=255u8 {
        for third in 0..=255u8 {
            let candidate = Subnet::new(Ipv4Addr::new(10, second, third, 0), 24)?;
            if free(&candidate).is_ok()
                && etcd.create(&key(&["subnets", &candidate.to_string()]), name.as_bytes())?
            {
                return Ok(candidate);
            }
        }
    }
    Err(OverlayError::Exhausted("subnet"))
}

/// Where the cluster's IPsec key is: hex, [`crate::xfrm::KEY_LEN`] bytes.
pub const IPSEC_KEY: &str = "/skiff/overlay/ipsec-key";

/// The cluster's IPsec key, if an encrypted network made one.
pub fn ipsec_key(etcd: &Etcd) -> Result<Option<[u8; crate::xfrm::KEY_LEN]>> {
    Ok(etcd
        .get(IPSEC_KEY)?
        .and_then(|hex| hex::decode(hex).ok())
        .and_then(|bytes| bytes.try_into().ok()))
}

/// Every overlay network in the store, by name.
pub fn list_networks(etcd: &Etcd) -> Result<Vec<OverlayNetwork>> {
    etcd.list(&key(&["networks", ""]))?
        .iter()
        .map(|kv| decode(&kv.key, &kv.value))
        .collect()
}

/// The overlay network called `name`.
pub fn network(etcd: &Etcd, name: &str) -> Result<Option<OverlayNetwork>> {
    let k = key(&["networks", name]);
    etcd.get(&k)?.map(|v| decode(&k, &v)).transpose()
}

/// `network rm`: removes the network and gives back its VNI and subnet, unless some host still
/// has an endpoint on it.
pub fn remove_network(etcd: &Etcd, name: &str) -> Result<OverlayNetwork> {
    let network = network(etcd, name)?.ok_or_else(|| OverlayError::NotFound(name.to_owned()))?;
    // One transaction: the record goes only if no endpoint exists at that moment. A container
    // joining at the same time either is seen here, or finds no network (see `join`).
    let endpoints_prefix = key(&["endpoints", &network.id, ""]);
    if !etcd.delete_unless(&key(&["networks", name]), &endpoints_prefix)? {
        return Err(OverlayError::InUse {
            count: endpoints(etcd, &network)?.len(),
            name: network.name,
            id: network.id,
        });
    }
    etcd.delete_prefix(&key(&["addresses", &network.id, ""]))?;
    etcd.delete(&key(&["subnets", &network.subnet.to_string()]))?;
    etcd.delete(&key(&["vni", &network.vni.to_string()]))?;
    Ok(network)
}

// ANCHOR: join
/// A container joins: takes the lowest free address and records the endpoint with this host's
/// advertise address (so other hosts can send to it), both in one transaction that also checks
/// that the network is still in the store.
pub fn join(
    etcd: &Etcd,
    network: &OverlayNetwork,
    endpoint_id: &str,
    host: Ipv4Addr,
) -> Result<Endpoint> {
    join_named(etcd, network, endpoint_id, host, ("", &[]), None)
}

/// [`join`], for a container with a name and aliases that the network's other containers, on
/// every host, resolve; with `lease`, its records are attached to that lease.
pub fn join_named(
    etcd: &Etcd,
    network: &OverlayNetwork,
    endpoint_id: &str,
    host: Ipv4Addr,
    (name, aliases): (&str, &[String]),
    lease: Option<i64>,
) -> Result<Endpoint> {
    let network_key = key(&["networks", &network.name]);
    for ip in network.subnet.hosts().filter(|ip| *ip != network.gateway) {
        let address = key(&["addresses", &network.id, &ip.to_string()]);
        let endpoint = Endpoint {
            id: endpoint_id.to_owned(),
            ip,
            mac: Mac::for_ip(ip).to_string(),
            host,
            name: name.to_owned(),
            aliases: aliases.to_vec(),
        };
        let record = key(&["endpoints", &network.id, endpoint_id]);
        let value = encode(&endpoint);
        if etcd.create_under(
            &address,
            endpoint_id.as_bytes(),
            &[(&record, &value)],
            &network_key,
            lease,
        )? {
            return Ok(endpoint);
        }
        // Taken, or the network went: which one decides whether to try the next address.
        if etcd.get(&network_key)?.is_none() {
            return Err(OverlayError::NotFound(network.name.clone()));
        }
    }
    Err(OverlayError::Exhausted("address"))
}
// ANCHOR_END: join

// ANCHOR: renew
/// Writes `endpoint`'s record and address again, attached to lease `lease`: when the host that
/// keeps the lease alive dies, both expire (see [`crate::overlay_agent`]).
pub fn renew(etcd: &Etcd, network: &OverlayNetwork, endpoint: &Endpoint, lease: i64) -> Result<()> {
    let address = key(&["addresses", &network.id, &endpoint.ip.to_string()]);
    etcd.put_leased(&address, endpoint.id.as_bytes(), lease)?;
    let record = key(&["endpoints", &network.id, &endpoint.id]);
    etcd.put_leased(&record, &encode(endpoint), lease)?;
    Ok(())
}
// ANCHOR_END: renew

/// Where the endpoint records of `network` start: what a watch watches.
pub fn endpoints_prefix(network: &OverlayNetwork) -> String {
    key(&["endpoints", &network.id, ""])
}

/// A container leaves: its endpoint record goes, then its address.
pub fn leave(etcd: &Etcd, network: &OverlayNetwork, endpoint: &Endpoint) -> Result<()> {
    etcd.delete(&key(&["endpoints", &network.id, &endpoint.id]))?;
    etcd.delete(&key(&["addresses", &network.id, &endpoint.ip.to_string()]))?;
    Ok(())
}

/// Every endpoint on `network`, on every host.
pub fn endpoints(etcd: &Etcd, network: &OverlayNetwork) -> Result<Vec<Endpoint>> {
    etcd.list(&key(&["endpoints", &network.id, ""]))?
        .iter()
        .map(|kv| decode(&kv.key, &kv.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sit_under_the_prefix() {
        assert_eq!(key(&["vni", "4096"]), "/skiff/overlay/vni/4096");
        assert_eq!(key(&["networks", ""]), "/skiff/overlay/networks/");
    }

    #[test]
    fn corrupt_records_name_their_key() {
        let err = decode::<Endpoint>("/skiff/overlay/endpoints/x/y", b"{").err();
        assert!(
            err.is_some_and(|e| e.to_string().contains("/skiff/overlay/endpoints/x/y")),
            "corrupt record error names the key"
        );
    }
}
