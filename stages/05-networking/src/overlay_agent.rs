//! The overlay network's agent on one host: the watch, the lease, the names of other hosts.
//!
//! Who keeps a host's data path current when a container starts or stops on another host?
//! skiff has no daemon; it has, per network and per host, one process that lives exactly as long
//! as the network has a local container: the network's DNS server ([`crate::dns`]), started
//! by the first local container and stopped by the last. On an overlay network that server runs
//! this agent beside it, as two threads:
//!
//! - **the watch**: a `/v3/watch` on the network's endpoint records. Every change (a container
//!   joining or leaving anywhere) lists the records again and calls [`crate::vxlan::sync`],
//!   which adds the entries of new remote endpoints and deletes those of gone ones. Programming
//!   is idempotent, so a missed or doubled event costs nothing: the next one puts everything
//!   right, and so does the start of the agent (a restarted host rebuilds its data path from
//!   the store). The same list is the names the DNS server answers for the other hosts.
//! - **the lease**: a lease of [`LEASE_TTL`] seconds, kept alive every [`KEEPALIVE`]; this
//!   host's endpoint records and addresses are written again attached to it. A host that dies
//!   stops keeping it alive, and etcd deletes its records by itself a few seconds later: the
//!   other hosts' watches see them go. If the lease expired while etcd was unreachable, a new
//!   one is granted and the records written again.
//!
//! One watcher per host and network rather than one per container (the monitors): the data
//! path is per host too, and N watchers on one host would program the same entries N times.
//! See etcd's "Watch API" and "Lease API" (`/v3/watch`, `/v3/lease/grant`, `keepalive`).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::etcd::Etcd;
use crate::netlink::Netlink;
use crate::overlay::{self, Endpoint, OverlayNetwork};
use crate::store::{self, Network};

/// How long a host's records outlive it.
pub const LEASE_TTL: u64 = 10;
/// How often the lease is kept alive.
const KEEPALIVE: Duration = Duration::from_secs(3);

/// Every endpoint of the network in the store, as the watch last read them.
pub type Endpoints = Arc<Mutex<Vec<Endpoint>>>;

// ANCHOR: start
/// Starts the agent of overlay network `network` (its local mirror) of store `root`; returns
/// the endpoints it keeps current. Its threads end with the process (the DNS server's).
pub fn start(root: &Path, network: &Network) -> Endpoints {
    let endpoints: Endpoints = Arc::default();
    let Ok((etcd, overlay, local)) = crate::overlay_attach::parts(network) else {
        return endpoints;
    };
    {
        let (root, etcd, overlay) = (root.to_path_buf(), etcd.clone(), overlay.clone());
        let endpoints = endpoints.clone();
        std::thread::spawn(move || watch(&root, &etcd, &overlay, local, &endpoints));
    }
    let root = root.to_path_buf();
    std::thread::spawn(move || keep_lease(&root, &etcd, &overlay, local));
    endpoints
}
// ANCHOR_END: start

// ANCHOR: watch
/// The watch: on every change of the network's endpoint records, the data path is brought in
/// line with them. When etcd goes away the data path stays as it is (local containers keep
/// talking, remote ones as far as they still run) and the watch is set up again a second later.
fn watch(root: &Path, etcd: &Etcd, overlay: &OverlayNetwork, local: Ipv4Addr, all: &Endpoints) {
    let prefix = overlay::endpoints_prefix(overlay);
    loop {
        let _ = etcd.watch(&prefix, || {
            match overlay::endpoints(etcd, overlay) {
                Ok(now) => {
                    sync(root, (etcd, overlay), local, &now);
                    if let Ok(mut all) = all.lock() {
                        *all = now;
                    }
                }
                Err(e) => eprintln!("overlay agent: list the endpoints: {e}"),
            }
            true
        });
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// [`crate::vxlan::sync`] under the host's network lock, while a local container is on the
/// network: the last one leaving takes the data path down under that lock, and the agent must
/// not make it again.
fn sync(
    root: &Path,
    (etcd, overlay): (&Etcd, &OverlayNetwork),
    local: Ipv4Addr,
    endpoints: &[Endpoint],
) {
    let Ok(_host) = store::host_lock() else {
        return;
    };
    match store::inspect(root, &overlay.id) {
        Ok(mirror) if !mirror.endpoints.is_empty() => {}
        _ => return,
    }
    // On an encrypted network, IPsec with every host that has an endpoint, before the first
    // frame to it; and none with a host that has none left.
    let vxlan = crate::vxlan::vxlan_name(overlay.vni);
    let before: Vec<Ipv4Addr> = Netlink::open()
        .and_then(|mut n| n.fdb_entries(&vxlan))
        .map(|entries| entries.into_iter().map(|(_, host)| host).collect())
        .unwrap_or_default();
    if let Err(e) = crate::overlay_attach::secure(etcd, overlay, local, endpoints) {
        eprintln!("overlay agent: IPsec: {e}");
    }
    let synced = Netlink::open()
        .and_then(|mut netlink| crate::vxlan::sync(&mut netlink, overlay, local, endpoints));
    if let Err(e) = synced {
        eprintln!("overlay agent: sync the data path: {e}");
    }
    if overlay.encrypted {
        // Kept while any network here still sends to that host: removing the policy would let
        // that network's traffic out in clear.
        let in_use = crate::overlay_attach::hosts_in_use(etcd, None);
        for host in before {
            if !in_use.contains(&host)
                && let Err(e) = crate::xfrm::unsecure(local, host)
            {
                eprintln!("overlay agent: IPsec: {e}");
            }
        }
    }
}
// ANCHOR_END: watch

// ANCHOR: keep_lease
/// The lease: granted, this host's records written again with it, then kept alive; granted
/// anew when it was lost.
fn keep_lease(root: &Path, etcd: &Etcd, overlay: &OverlayNetwork, local: Ipv4Addr) {
    loop {
        let lease = etcd.grant(LEASE_TTL).map_err(|e| e.to_string());
        // The records written again and the lease noted under the host's network lock, which
        // a container joins under: a container that joined before is in the mirror and
        // written again here; one that joins after finds this lease noted and attaches its
        // records to it (see `join`). Without the lock, a container joining in between could
        // read the note of a killed agent, whose lease was still alive, and its records would
        // expire with that lease a few seconds later.
        let lease = lease.and_then(|lease| {
            let _host = store::host_lock().map_err(|e| e.to_string())?;
            renew_all(root, etcd, overlay, local, lease)?;
            std::fs::write(lease_path(root, &overlay.id), lease.to_string())
                .map_err(|e| e.to_string())?;
            Ok(lease)
        });
        let Ok(lease) = lease else {
            std::thread::sleep(Duration::from_secs(1));
            continue;
        };
        loop {
            std::thread::sleep(KEEPALIVE);
            match etcd.keep_alive(lease) {
                Ok(true) => {}
                // Expired: its records are gone; write them again with a new one.
                Ok(false) => break,
                // etcd unreachable: try again; if it comes back in time, nothing was lost.
                Err(_) => {}
            }
        }
    }
}

/// Where the agent of network `id` notes its lease for the containers that join later.
pub fn lease_path(root: &Path, id: &str) -> PathBuf {
    root.join("networks").join(format!("{id}.lease"))
}

// ANCHOR: reclaim
/// Takes a lease and writes the record and address of every local container of the network
/// again with it, as an agent does when it starts: what a container joining does when this
/// host's agent was killed. Its lease expired with this host's records, so their addresses are
/// free in the store until written back, and the container's own address could be one of them.
/// The agent the container starts takes its own lease and writes them once more.
pub fn reclaim(
    root: &Path,
    etcd: &Etcd,
    overlay: &OverlayNetwork,
    local: Ipv4Addr,
) -> Result<i64, String> {
    let lease = etcd.grant(LEASE_TTL).map_err(|e| e.to_string())?;
    renew_all(root, etcd, overlay, local, lease)?;
    Ok(lease)
}
// ANCHOR_END: reclaim

/// Drops the note of lease `stale`, which etcd no longer has (its agent was killed and it
/// expired), unless a new agent has noted its own meanwhile.
pub fn forget_lease(root: &Path, id: &str, stale: i64) {
    if lease(root, id) == Some(stale) {
        let _ = std::fs::remove_file(lease_path(root, id));
    }
}

/// The lease of the agent of network `id`, if one runs.
pub fn lease(root: &Path, id: &str) -> Option<i64> {
    std::fs::read_to_string(lease_path(root, id))
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

/// Writes the record and address of every local container of the network again, with `lease`.
fn renew_all(
    root: &Path,
    etcd: &Etcd,
    overlay: &OverlayNetwork,
    local: Ipv4Addr,
    lease: i64,
) -> Result<(), String> {
    let mirror = store::inspect(root, &overlay.id).map_err(|e| e.to_string())?;
    for endpoint in &mirror.endpoints {
        let record = Endpoint {
            id: endpoint.container_id.clone(),
            ip: endpoint.ip,
            mac: endpoint.mac.to_string(),
            host: local,
            name: endpoint.name.clone(),
            aliases: endpoint.aliases.clone(),
        };
        overlay::renew(etcd, overlay, &record, lease).map_err(|e| e.to_string())?;
    }
    Ok(())
}
// ANCHOR_END: keep_lease

/// The endpoints of other hosts as a network of the DNS server's zone: their names, aliases
/// and addresses, after the local ones.
pub fn remote_names(mirror: &Network, endpoints: &Endpoints) -> Network {
    let local: Vec<&str> = mirror
        .endpoints
        .iter()
        .map(|e| e.container_id.as_str())
        .collect();
    let mut remote = mirror.clone();
    remote.endpoints = endpoints
        .lock()
        .map(|all| {
            all.iter()
                .filter(|e| !local.contains(&e.id.as_str()))
                .map(|e| store::Endpoint {
                    container_id: e.id.clone(),
                    name: e.name.clone(),
                    hostname: String::new(),
                    ip: e.ip,
                    mac: crate::ipam::Mac::for_ip(e.ip),
                    host_link: String::new(),
                    hosts_file: PathBuf::new(),
                    aliases: e.aliases.clone(),
                    interface: String::new(),
                    dns: Vec::new(),
                    ip6: None,
                    publishes: None,
                })
                .collect()
        })
        .unwrap_or_default();
    remote
}
