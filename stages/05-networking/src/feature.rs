//! Attaching a container to a network: the feature that plugs stage 05 into the launch sequence.
//!
//! ```text
//!  prepare   join the network in the store: an address, a MAC, a name
//!            make sure the bridge exists (a Linux bridge, the network's switch), with the
//!            gateway address and the NAT rules
//!  started   (the child exists and waits in its own network namespace)
//!            a veth pair: one end on the bridge, the other end born inside the child's
//!            namespace as eth0; there, from a thread that joined it: address, up, default route
//!            published ports: DNAT rules to the container's address
//!            every /etc/hosts of the network rewritten, so the others know the new name
//!  cleanup   rules and the veth removed (deleting one end deletes both), the address freed, the
//!            hosts files rewritten; the default bridge goes with its last container
//! ```
//!
//! See veth(4), bridge(8), macvlan in ip-link(8), and the firewall and store modules.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use chroot::{Feature, FeatureError, Plan, Started};

use crate::firewall::{self, PortMapping};
use crate::netlink::Netlink;
use crate::store::{self, Driver, Endpoint, Network};

/// What a container asks of its network.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The store root (`--root`).
    pub root: PathBuf,
    /// The network's name or id; `bridge` for the default one.
    pub network: String,
    /// The container's id.
    pub container_id: String,
    /// Its name (`--name`), by which the other containers of a user network reach it.
    pub name: String,
    /// Its hostname.
    pub hostname: String,
    /// Its `/etc/hosts` on the host, which the network's names are written into.
    pub hosts_file: PathBuf,
    /// `--ip`: a specific address.
    pub ip: Option<Ipv4Addr>,
    /// `-p`: ports published on the host.
    pub ports: Vec<PortMapping>,
}

/// The network feature.
pub struct NetworkFeature {
    want: Attachment,
    /// The network and this container's endpoint, once joined.
    joined: Option<(Network, Endpoint)>,
    published: bool,
}

impl NetworkFeature {
    /// Attaches a container as `want` says.
    pub fn new(want: Attachment) -> Self {
        NetworkFeature {
            want,
            joined: None,
            published: false,
        }
    }

    /// The address the container got, once prepared.
    pub fn address(&self) -> Option<Ipv4Addr> {
        self.joined.as_ref().map(|(_, endpoint)| endpoint.ip)
    }
}

fn fail(
    what: impl Into<String>,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> FeatureError {
    let what = what.into();
    move |e| FeatureError::with(what, e)
}

// ANCHOR: bridge
/// Makes sure the network's bridge device exists and is up, with the gateway address, and the
/// NAT rules that let its containers out. Idempotent: every container joining calls it.
fn ensure_bridge(network: &Network) -> Result<(), FeatureError> {
    let (Some(bridge), Some(subnet), Some(gateway)) =
        (&network.bridge, network.subnet, network.gateway)
    else {
        return Err(FeatureError::msg(format!(
            "network {} has no bridge to join",
            network.name
        )));
    };
    let mut netlink = Netlink::open().map_err(|e| fail("open a netlink socket")(e.into()))?;
    match netlink.create_bridge(bridge) {
        Ok(()) => {}
        Err(e) if e.is_exists() => {}
        Err(e) => return Err(fail(format!("create bridge {bridge}"))(e.into())),
    }
    netlink
        .add_address(bridge, gateway, subnet.prefix_len())
        .and_then(|()| netlink.set_up(bridge))
        .map_err(|e| fail(format!("configure bridge {bridge}"))(e.into()))?;
    firewall::network_up(network)
        .map_err(|e| fail(format!("NAT rules for network {}", network.name))(e.into()))
}
// ANCHOR_END: bridge

impl Feature for NetworkFeature {
    fn name(&self) -> &'static str {
        "network"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Network
    }

    fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
        let want = &self.want;
        // Joining and making sure the bridge exists are one step for the containers around: the
        // last container of the default network removes its bridge under the same lock.
        let _host = store::host_lock().map_err(|e| fail("take the network lock")(e.into()))?;
        let (network, endpoint) = store::join(
            &want.root,
            &want.network,
            &want.container_id,
            &want.name,
            &want.hostname,
            &want.hosts_file,
            want.ip,
        )
        .map_err(|e| fail(format!("join network {}", want.network))(e.into()))?;
        self.joined = Some((network.clone(), endpoint));
        if network.driver == Driver::Bridge {
            ensure_bridge(&network)?;
        }
        Ok(())
    }

    // ANCHOR: started
    fn started(&mut self, child: &Started) -> Result<(), FeatureError> {
        let Some((network, endpoint)) = &mut self.joined else {
            return Ok(());
        };
        let pid = child.pid.as_raw();
        let mut netlink = Netlink::open().map_err(|e| fail("open a netlink socket")(e.into()))?;
        let bridge = network.bridge.clone().unwrap_or_default();
        match network.driver {
            Driver::Macvlan => {
                let parent = network.parent.clone().unwrap_or_default();
                netlink
                    .create_macvlan("eth0", &parent, pid)
                    .map_err(|e| fail(format!("create a macvlan on {parent}"))(e.into()))?;
            }
            _ => {
                // One end stays on the host, on the bridge; the other is born inside the
                // child's network namespace, already named eth0.
                netlink
                    .create_veth(&endpoint.host_link, "eth0", pid)
                    .and_then(|()| netlink.set_master(&endpoint.host_link, &bridge))
                    .and_then(|()| netlink.set_up(&endpoint.host_link))
                    .map_err(|e| {
                        fail(format!("connect the container to bridge {bridge}"))(e.into())
                    })?;
            }
        }
        let (Some(subnet), Some(gateway)) = (network.subnet, network.gateway) else {
            return Err(FeatureError::msg(format!(
                "network {} has no subnet",
                network.name
            )));
        };
        // Inside the container's namespace, from a thread that joined it.
        let (ip, prefix, mac) = (endpoint.ip, subnet.prefix_len(), endpoint.mac);
        Netlink::in_netns_of(pid, move |inside| {
            inside.set_mac("eth0", mac.octets())?;
            inside.add_address("eth0", ip, prefix)?;
            inside.set_up("eth0")?;
            inside.add_default_route(gateway)
        })
        .map_err(|e| fail(format!("configure eth0 ({ip}/{prefix}) in the container"))(e.into()))?;
        if !self.want.ports.is_empty() {
            // Marked published first: a failure halfway still gets its rules removed. Under the
            // host's lock, as every change to FORWARD: the isolation chains' jump stays on top.
            self.published = true;
            let _host = store::host_lock().map_err(|e| fail("take the network lock")(e.into()))?;
            firewall::publish(&self.want.container_id, &bridge, ip, &self.want.ports)
                .map_err(|e| fail("publish ports")(e.into()))?;
        }
        crate::hosts::rewrite(&self.want.root, network)
            .map_err(|e| fail("write the network's names into /etc/hosts")(e.into()))
    }
    // ANCHOR_END: started

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        if self.joined.take().is_none() && !self.published {
            return Ok(());
        }
        let left = release(&self.want.root, &self.want.container_id, self.published);
        if left.is_empty() {
            Ok(())
        } else {
            Err(FeatureError::msg(left.join("; ")))
        }
    }
}

/// Removes a network's bridge device and its NAT rules.
pub fn remove_bridge(network: &Network) -> Result<(), String> {
    firewall::network_down(network)
        .map_err(|e| format!("remove NAT rules of {}: {e}", network.name))?;
    let Some(bridge) = &network.bridge else {
        return Ok(());
    };
    Netlink::open()
        .and_then(|mut n| n.delete_link(bridge))
        .map_err(|e| format!("delete bridge {bridge}: {e}"))
}

// ANCHOR: release
/// Everything container `container_id` holds on its networks, released: its published ports'
/// rules (with `unpublish`), its veths, its addresses, its names in the others' `/etc/hosts`;
/// the default bridge goes with its last container. What the feature's cleanup does, and what a
/// sweep does from the record alone. Idempotent; returns what could not be undone.
pub fn release(root: &std::path::Path, container_id: &str, unpublish: bool) -> Vec<String> {
    // A container on no network of skiff's (none, host, or released already) holds nothing:
    // ports are only ever published for a container with an endpoint. Reading the store is
    // cheap; asking the firewall is not.
    match store::networks_of(root, container_id) {
        Ok(networks) if networks.is_empty() => return Vec::new(),
        _ => {}
    }
    // Leaving and taking down the default bridge are one step for the containers around: a
    // container joining at the same time finds the bridge either up or gone, never half. The
    // published ports' rules go under the same lock, as every change to FORWARD.
    let _host = match store::host_lock() {
        Ok(lock) => lock,
        Err(e) => return vec![format!("take the network lock: {e}")],
    };
    let mut errors = Vec::new();
    if unpublish && let Err(e) = firewall::unpublish(container_id) {
        errors.push(format!("remove published ports: {e}"));
    }
    let left = match store::leave_all(root, container_id) {
        Ok(left) => left,
        Err(e) => return vec![format!("leave networks: {e}")],
    };
    for (network, endpoint) in left {
        // Deleting the host end deletes the pair; when the namespace died first, the kernel
        // has already deleted both, and deleting is a no-op.
        if network.driver == Driver::Bridge
            && let Err(e) = Netlink::open().and_then(|mut n| n.delete_link(&endpoint.host_link))
        {
            errors.push(format!("delete {}: {e}", endpoint.host_link));
        }
        if let Err(e) = crate::hosts::rewrite(root, &network) {
            errors.push(format!(
                "rewrite /etc/hosts of network {}: {e}",
                network.name
            ));
        }
        // The default bridge goes with its last container: nothing of skiff's stays on the
        // host while no container runs.
        if network.is_default()
            && network.endpoints.is_empty()
            && let Err(e) = remove_bridge(&network)
        {
            errors.push(e);
        }
    }
    errors
}
// ANCHOR_END: release

// ANCHOR: sweep
/// Stage 05's part of sweeping a container away (see [`namespaces::sweep`]): everything it
/// holds on its networks, then stage 04's part. Returns what could not be undone.
pub fn sweep(sweep: &namespaces::Sweep<'_>) -> Vec<String> {
    let mut left = release(sweep.root, sweep.id, true);
    left.extend(images::sweep(sweep));
    left
}
// ANCHOR_END: sweep
