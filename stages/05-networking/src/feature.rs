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
//! Stage 07's `network connect` and `network disconnect` do the same to a container that is
//! already running ([`connect_running`], [`disconnect_running`]): one more interface (`eth1`...)
//! plugged in from outside, or one taken away, while its other networks stay.
//!
//! See veth(4), bridge(8), macvlan in ip-link(8), and the firewall and store modules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chroot::{Feature, FeatureError, Plan, Started};

use crate::firewall::{self, PortMapping};
use crate::netlink::{Netlink, SubLinkMode};
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
    /// `--ip6`: a specific IPv6 address, on a network with IPv6.
    pub ip6: Option<Ipv6Addr>,
    /// `-p`: ports published on the host.
    pub ports: Vec<PortMapping>,
    /// Its interface inside the container: `eth0` for the first network, `eth1`... for the
    /// ones `network connect` adds.
    pub interface: String,
    /// Whether the container's default route goes out through this network: only its first
    /// network's, as in Docker.
    pub default_route: bool,
    /// More names the others of the network resolve it by (`network connect --alias`).
    pub aliases: Vec<String>,
    /// `--dns`: the container's own nameservers. On a user network they sit behind the
    /// network's DNS server, which forwards the container's other questions to them.
    pub dns: Vec<IpAddr>,
    /// The cluster store, where a network this host does not have may be an overlay network.
    pub cluster: Option<crate::overlay_attach::Cluster>,
}

impl Attachment {
    /// The usual attachment: the container's first network, as `eth0` with the default route,
    /// no aliases.
    pub fn first(
        root: PathBuf,
        network: String,
        container_id: String,
        name: String,
        hostname: String,
        hosts_file: PathBuf,
    ) -> Attachment {
        Attachment {
            root,
            network,
            container_id,
            name,
            hostname,
            hosts_file,
            ip: None,
            ip6: None,
            ports: Vec::new(),
            interface: "eth0".to_string(),
            default_route: true,
            aliases: Vec::new(),
            dns: Vec::new(),
            cluster: None,
        }
    }
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
    if let Some(mtu) = network.mtu() {
        netlink
            .set_mtu(bridge, mtu)
            .map_err(|e| fail(format!("configure bridge {bridge}"))(e.into()))?;
    }
    netlink
        .add_address(bridge, gateway, subnet.prefix_len())
        .and_then(|()| netlink.set_up(bridge))
        .map_err(|e| fail(format!("configure bridge {bridge}"))(e.into()))?;
    // ANCHOR: bridge6
    if let Some(v6) = network.ipv6 {
        enable_ipv6(bridge)?;
        netlink
            .add_address6(bridge, v6.gateway, v6.subnet.prefix_len())
            .map_err(|e| fail(format!("configure bridge {bridge}"))(e.into()))?;
    }
    // ANCHOR_END: bridge6
    firewall::network_up(network)
        .map_err(|e| fail(format!("NAT rules for network {}", network.name))(e.into()))
}
// ANCHOR_END: bridge

// ANCHOR: enable_ipv6
/// Makes sure IPv6 is on for `link` (`net.ipv6.conf.LINK.disable_ipv6=0`) in the network
/// namespace of the calling thread: `/proc/sys/net` shows the caller's namespace. A host that
/// turned IPv6 off for new links (`default.disable_ipv6=1`) gets it back on this link only.
fn enable_ipv6(link: &str) -> Result<(), FeatureError> {
    let path = format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6");
    match std::fs::read_to_string(&path) {
        Ok(value) if value.trim() == "0" => Ok(()),
        Ok(_) => std::fs::write(&path, "0")
            .map_err(|e| fail(format!("turn IPv6 on for {link} ({path})"))(e.into())),
        Err(e) => Err(fail(format!(
            "IPv6 is not available for {link} ({path}): is the kernel's IPv6 support off (ipv6.disable=1)?"
        ))(e.into())),
    }
}
// ANCHOR_END: enable_ipv6

// ANCHOR: overlay_address
/// When `want` names an overlay network (the local mirror, or, with a cluster store, one of
/// the store's, mirrored now): the container's endpoint in the store, and the data path on this
/// host. `None` for every other network.
fn overlay_address(want: &Attachment) -> Result<Option<(Network, Ipv4Addr)>, FeatureError> {
    let attaching = || fail(format!("join overlay network {}", want.network));
    // The predefined networks are never overlays: no need to read the store to know.
    if store::PREDEFINED.contains(&want.network.as_str()) {
        return Ok(None);
    }
    let local = match (store::inspect(&want.root, &want.network), &want.cluster) {
        (Ok(local), _) if local.driver == Driver::Overlay => local,
        (Err(store::StoreError::NotFound { .. }), Some(cluster)) => {
            match crate::overlay_attach::adopt(&want.root, &want.network, cluster) {
                Ok(Some(local)) => local,
                Ok(None) => return Ok(None),
                Err(e) => return Err(attaching()(e.into())),
            }
        }
        _ => return Ok(None),
    };
    match crate::overlay_attach::join(
        &want.root,
        &local,
        &want.container_id,
        (&want.name, &want.aliases),
    ) {
        Ok(endpoint) => Ok(Some((local, endpoint.ip))),
        Err(e) => {
            // The mirror goes again if no local container is on it.
            let _ = store::leave(&want.root, &local.id, &want.container_id);
            Err(attaching()(e.into()))
        }
    }
}
// ANCHOR_END: overlay_address

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
        // ANCHOR: overlay
        // An overlay network: its address comes from the cluster store, then the local record
        // takes it as `--ip` would.
        let overlay = overlay_address(want)?;
        let joined = store::join_with(
            &want.root,
            &want.network,
            &want.container_id,
            // Everything the endpoint says, in the one write of the join.
            &store::Who {
                name: &want.name,
                hostname: &want.hostname,
                interface: &want.interface,
                aliases: &want.aliases,
                publishes: Some(!want.ports.is_empty()),
            },
            &want.hosts_file,
            overlay.as_ref().map_or(want.ip, |(_, ip)| Some(*ip)),
            want.ip6,
        );
        // ANCHOR_END: overlay
        let (network, endpoint) = match (joined, overlay) {
            (Ok(joined), _) => joined,
            (Err(e), Some((local, ip))) => {
                let now = store::leave(&want.root, &local.id, &want.container_id).unwrap_or(local);
                let _ = crate::overlay_attach::leave(&now, &want.container_id, ip);
                return Err(fail(format!("join network {}", want.network))(e.into()));
            }
            (Err(e), None) => {
                return Err(fail(format!("join network {}", want.network))(e.into()));
            }
        };
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
        let want = &self.want;
        plug(
            network,
            endpoint,
            child.pid.as_raw(),
            &want.interface,
            want.default_route,
        )?;
        if !want.ports.is_empty() {
            // Marked published first: a failure halfway still gets its rules removed. Under the
            // host's lock, as every change to FORWARD: the isolation chains' jump stays on top.
            self.published = true;
            let bridge = network.bridge.clone().unwrap_or_default();
            let _host = store::host_lock().map_err(|e| fail("take the network lock")(e.into()))?;
            firewall::publish(
                &want.container_id,
                &bridge,
                (endpoint.ip, endpoint.ip6),
                &want.ports,
            )
            .map_err(|e| fail("publish ports")(e.into()))?;
        }
        crate::hosts::rewrite(&want.root, network)
            .map_err(|e| fail("write the network's names into /etc/hosts")(e.into()))?;
        // ANCHOR: dns
        // A user network's names by DNS too: its server, started by its first container. The
        // container asks the server of its first network (the one with its default route),
        // which also knows the names of its other networks. Its own --dns servers sit behind
        // that server: noted on its endpoint, they get the questions the server cannot answer.
        // (A loopback --dns, a resolver inside the container, stays in its resolv.conf.)
        if crate::dns::wanted(network) && !want.hosts_file.as_os_str().is_empty() {
            let behind = crate::dns::can_forward_to(&want.dns);
            if behind && !want.dns.is_empty() {
                store::note_dns(&want.root, &network.id, &want.container_id, &want.dns)
                    .map_err(|e| fail("note the container's --dns servers")(e.into()))?;
            }
            crate::dns::ensure_running(&want.root, network).map_err(FeatureError::msg)?;
            if let (true, true, Some(gateway)) = (want.default_route, behind, network.gateway) {
                crate::dns::write_resolv_conf(&want.hosts_file, gateway)
                    .map_err(|e| fail("point resolv.conf at the network's DNS server")(e.into()))?;
            }
        }
        // ANCHOR_END: dns
        Ok(())
    }
    // ANCHOR_END: started

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        if self.joined.take().is_none() && !self.published {
            return Ok(());
        }
        let want = &self.want;
        // The first network's feature (the one with the default route, added first and so
        // cleaned up last) releases everything, ports and `network connect`s included; one more
        // network of the container leaves only its own, or the first one's ports would stay.
        let left = if want.default_route {
            release(&want.root, &want.container_id, self.published)
        } else {
            disconnect_running(&want.root, &want.container_id, &want.network, None)
        };
        if left.is_empty() {
            Ok(())
        } else {
            Err(FeatureError::msg(left.join("; ")))
        }
    }
}

// ANCHOR: plug
/// Plugs the container whose first process is `pid` into `network`: a veth pair with one end on
/// the bridge and the other born inside the container's network namespace as `interface` (or a
/// macvlan on the parent link, born there too); then, from a thread that joined that
/// namespace, the endpoint's MAC and address, the link up, and with `default_route` the route
/// out through the network's gateway.
fn plug(
    network: &Network,
    endpoint: &Endpoint,
    pid: i32,
    interface: &str,
    default_route: bool,
) -> Result<(), FeatureError> {
    let mut netlink = Netlink::open().map_err(|e| fail("open a netlink socket")(e.into()))?;
    let bridge = network.bridge.clone().unwrap_or_default();
    match network.driver {
        Driver::Macvlan | Driver::Ipvlan => {
            let parent = network.parent.clone().unwrap_or_default();
            let option = |key: &str| network.options.get(key).map(String::as_str);
            let mode = if network.driver == Driver::Ipvlan {
                store::ipvlan_mode(option(store::IPVLAN_MODE)).map(SubLinkMode::Ipvlan)
            } else {
                store::macvlan_mode(option(store::MACVLAN_MODE)).map(SubLinkMode::Macvlan)
            }
            .map_err(|e| fail("read the network's mode")(e.into()))?;
            netlink
                .create_sublink(interface, &parent, pid, mode)
                .map_err(|e| {
                    let kind = network.driver.as_str();
                    fail(format!("create an {kind} link on {parent}"))(e.into())
                })?;
        }
        _ => {
            // One end stays on the host, on the bridge; the other is born inside the
            // container's network namespace, already named (eth0 for the first network).
            netlink
                .create_veth(&endpoint.host_link, interface, pid)
                .and_then(|()| match network.mtu() {
                    Some(mtu) => netlink.set_mtu(&endpoint.host_link, mtu),
                    None => Ok(()),
                })
                .and_then(|()| netlink.set_master(&endpoint.host_link, &bridge))
                .and_then(|()| netlink.set_up(&endpoint.host_link))
                .map_err(|e| fail(format!("connect the container to bridge {bridge}"))(e.into()))?;
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
    // An overlay network has no way out of it: no default route through it.
    let default_route = default_route && network.driver != Driver::Overlay;
    let mtu = network.mtu();
    // An ipvlan link has its parent's MAC address, and no other: the kernel refuses to set one.
    let own_mac = network.driver != Driver::Ipvlan;
    let v6 = network.ipv6.zip(endpoint.ip6);
    Netlink::in_netns_of(pid, move |inside| {
        if v6.is_some() {
            // This thread is in the container's namespace: its /proc/sys/net is the container's.
            enable_ipv6(interface).map_err(|e| crate::netlink::NetlinkError::Io {
                op: format!("turn IPv6 on for {interface}"),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        if own_mac {
            inside.set_mac(interface, mac.octets())?;
        }
        if let Some(mtu) = mtu {
            inside.set_mtu(interface, mtu)?;
        }
        inside.add_address(interface, ip, prefix)?;
        inside.set_up(interface)?;
        if default_route {
            inside.add_default_route(gateway)?;
        }
        // ANCHOR: plug6
        if let Some((config, ip6)) = v6 {
            inside.add_address6(interface, ip6, config.subnet.prefix_len())?;
            if default_route {
                inside.add_default_route6(config.gateway, interface)?;
            }
        }
        // ANCHOR_END: plug6
        Ok(())
    })
    .map_err(|e| {
        fail(format!(
            "configure {interface} ({ip}/{prefix}) in the container"
        ))(e.into())
    })
}
// ANCHOR_END: plug

// ANCHOR: connect_running
/// `network connect` on a running container: what [`NetworkFeature`] does at a start, done
/// now, from outside, to the container whose first process is `pid`. Its new interface is the
/// first `ethN` its network namespace does not have yet; it gets the default route only when
/// this is its first network (Docker keeps the first network's). Every `/etc/hosts` of the
/// network learns its name, and its own learns theirs. On a failure nothing stays: the
/// endpoint is released again. Returns the container's endpoint.
pub fn connect_running(mut want: Attachment, pid: i32) -> Result<Endpoint, FeatureError> {
    want.default_route = store::networks_of(&want.root, &want.container_id)
        .map_err(|e| fail("read the networks")(e.into()))?
        .is_empty();
    want.interface = Netlink::in_netns_of(pid, |inside| {
        for n in 0..1000 {
            let name = format!("eth{n}");
            if inside.link_index(&name)?.is_none() {
                return Ok(name);
            }
        }
        Ok("eth1000".to_string())
    })
    .map_err(|e| fail("list the container's interfaces")(e.into()))?;
    want.ports.clear();
    let (root, container_id, network) = (
        want.root.clone(),
        want.container_id.clone(),
        want.network.clone(),
    );
    let mut feature = NetworkFeature::new(want);
    let started = Started {
        pid: nix::unistd::Pid::from_raw(pid),
    };
    let result = feature
        .prepare(&mut Plan::default())
        .and_then(|()| feature.started(&started));
    match (result, feature.joined.take()) {
        (Ok(()), Some((_, endpoint))) => Ok(endpoint),
        (result, joined) => {
            if joined.is_some() {
                // Only this network: the container keeps the others.
                let _ = disconnect_running(&root, &container_id, &network, Some(pid));
            }
            result.and(Err(FeatureError::msg(format!(
                "network {network} was not joined"
            ))))
        }
    }
}
// ANCHOR_END: connect_running

// ANCHOR: disconnect_running
/// `network disconnect`: container `container_id` leaves `network` (name or id) and keeps its
/// other networks. Its link goes (deleting the host end of a veth deletes the pair; a macvlan
/// lives only inside, so it is deleted there, through `pid`), its address is free again, the
/// others' `/etc/hosts` forget it and its own forgets them. Leaving a network it is not on is
/// not an error. Returns what could not be undone.
pub fn disconnect_running(
    root: &std::path::Path,
    container_id: &str,
    network: &str,
    pid: Option<i32>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let _host = match store::host_lock() {
        Ok(lock) => lock,
        Err(e) => return vec![format!("take the network lock: {e}")],
    };
    let endpoint = match store::inspect(root, network) {
        Ok(net) => net.endpoint(container_id).cloned(),
        Err(e) => return vec![e.to_string()],
    };
    let Some(endpoint) = endpoint else {
        return errors;
    };
    let net = match store::leave(root, network, container_id) {
        Ok(net) => net,
        Err(e) => return vec![format!("leave network {network}: {e}")],
    };
    let link = match (net.driver, pid) {
        (Driver::Macvlan | Driver::Ipvlan, Some(pid)) => {
            let interface = endpoint.interface.clone();
            Netlink::in_netns_of(pid, move |inside| inside.delete_link(&interface))
                .map_err(|e| format!("delete {}: {e}", endpoint.interface))
        }
        (Driver::Macvlan | Driver::Ipvlan, None) => Ok(()),
        _ => Netlink::open()
            .and_then(|mut n| n.delete_link(&endpoint.host_link))
            .map_err(|e| format!("delete {}: {e}", endpoint.host_link)),
    };
    errors.extend(link.err());
    if net.driver == Driver::Overlay {
        errors.extend(crate::overlay_attach::leave(
            &net,
            container_id,
            endpoint.ip,
        ));
    }
    if let Err(e) = crate::hosts::rewrite(root, &net) {
        errors.push(format!("rewrite /etc/hosts of network {}: {e}", net.name));
    }
    if !endpoint.hosts_file.as_os_str().is_empty()
        && let Err(e) = crate::hosts::rewrite_container(root, container_id, &endpoint.hosts_file)
    {
        errors.push(format!("rewrite the container's /etc/hosts: {e}"));
    }
    if crate::dns::wanted(&net)
        && net.endpoints.is_empty()
        && let Err(e) = crate::dns::stop(root, &net.id)
    {
        errors.push(e);
    }
    if net.is_default()
        && net.endpoints.is_empty()
        && let Err(e) = remove_bridge(&net)
    {
        errors.push(e);
    }
    errors
}
// ANCHOR_END: disconnect_running

/// Removes a network's bridge device and its NAT rules, and the VLAN link skiff made as its
/// parent (see [`create_vlan_parent`]).
pub fn remove_bridge(network: &Network) -> Result<(), String> {
    if network.options.contains_key(store::PARENT_CREATED)
        && let Some(parent) = &network.parent
    {
        Netlink::open()
            .and_then(|mut n| n.delete_link(parent))
            .map_err(|e| format!("delete VLAN link {parent}: {e}"))?;
    }
    // Only a bridge network has a bridge and rules.
    if network.driver != Driver::Bridge {
        return Ok(());
    }
    firewall::network_down(network)
        .map_err(|e| format!("remove NAT rules of {}: {e}", network.name))?;
    let Some(bridge) = &network.bridge else {
        return Ok(());
    };
    Netlink::open()
        .and_then(|mut n| n.delete_link(bridge))
        .map_err(|e| format!("delete bridge {bridge}: {e}"))
}

// ANCHOR: vlan
/// `-o parent=eth0.50` on a macvlan or ipvlan network, when no such link exists yet: an 802.1q
/// VLAN link on `eth0` with id 50, made and brought up here; its frames leave `eth0` tagged 50,
/// so the network's containers sit on that VLAN of the wire. Returns whether one was made.
pub fn create_vlan_parent(parent: &str) -> Result<bool, String> {
    if std::path::Path::new("/sys/class/net").join(parent).exists() {
        return Ok(false);
    }
    let Some((base, id)) = store::vlan_parent(parent) else {
        return Ok(false);
    };
    let mut netlink = Netlink::open().map_err(|e| e.to_string())?;
    netlink
        .create_vlan(parent, base, id)
        .and_then(|()| netlink.set_up(parent))
        .map_err(|e| format!("create VLAN link {parent} (id {id} on {base}): {e}"))?;
    Ok(true)
}
// ANCHOR_END: vlan

// ANCHOR: release
/// Everything container `container_id` holds on its networks, released: its published ports'
/// rules (with `unpublish`), its veths, its addresses, its names in the others' `/etc/hosts`;
/// the default bridge goes with its last container. What the feature's cleanup does, and what a
/// sweep does from the record alone. Idempotent; returns what could not be undone.
pub fn release(root: &std::path::Path, container_id: &str, unpublish: bool) -> Vec<String> {
    // A container on no network of skiff's (none, host, or released already) holds nothing:
    // ports are only ever published for a container with an endpoint. Its endpoints also say
    // whether it published ports (records from before that note say nothing, and are asked)
    // and whether it has IPv6. Reading the store is cheap; asking the firewall is not.
    let (mut unpublish, mut ipv6) = (unpublish, true);
    if let Ok(networks) = store::networks_of(root, container_id) {
        if networks.is_empty() {
            return Vec::new();
        }
        let endpoints = || networks.iter().filter_map(|n| n.endpoint(container_id));
        unpublish &= endpoints().any(|e| e.publishes != Some(false));
        ipv6 = endpoints().any(|e| e.ip6.is_some());
    }
    // Leaving and taking down the default bridge are one step for the containers around: a
    // container joining at the same time finds the bridge either up or gone, never half. The
    // published ports' rules go under the same lock, as every change to FORWARD. (A removal
    // put off by [`defer_bridge_removal`] holds the lock already: it is taken over.)
    let held = deferred().take();
    let (host, mut pending, mut links) = match held {
        Some(deferred) => (deferred.host, deferred.networks, deferred.links),
        None => match store::host_lock() {
            Ok(lock) => (lock, Vec::new(), Vec::new()),
            Err(e) => return vec![format!("take the network lock: {e}")],
        },
    };
    let defer = DEFER.load(Ordering::Relaxed);
    let mut errors = Vec::new();
    if unpublish && let Err(e) = firewall::unpublish_from(container_id, ipv6) {
        errors.push(format!("remove published ports: {e}"));
    }
    let left = match store::leave_all(root, container_id, defer) {
        Ok(left) => left,
        Err(e) => return vec![format!("leave networks: {e}")],
    };
    for (network, endpoint) in left {
        // Deleting the host end deletes the pair; when the namespace died first, the kernel
        // has already deleted both, and deleting is a no-op. It waits for every CPU to let go
        // of the device, as deleting the bridge does: on a bridge network, put off with it when
        // asked (an overlay network's goes now, before its data path may go below).
        if defer && network.driver == Driver::Bridge {
            links.push(endpoint.host_link.clone());
        } else if matches!(network.driver, Driver::Bridge | Driver::Overlay)
            && let Err(e) = Netlink::open().and_then(|mut n| n.delete_link(&endpoint.host_link))
        {
            errors.push(format!("delete {}: {e}", endpoint.host_link));
        }
        // An overlay network's endpoint leaves the store too, and the last one here takes the
        // data path with it.
        if network.driver == Driver::Overlay {
            errors.extend(crate::overlay_attach::leave(
                &network,
                &endpoint.container_id,
                endpoint.ip,
            ));
        }
        if let Err(e) = crate::hosts::rewrite(root, &network) {
            errors.push(format!(
                "rewrite /etc/hosts of network {}: {e}",
                network.name
            ));
        }
        // The last container out stops the network's DNS server.
        if crate::dns::wanted(&network)
            && network.endpoints.is_empty()
            && let Err(e) = crate::dns::stop(root, &network.id)
        {
            errors.push(e);
        }
        // The default bridge goes with its last container: nothing of skiff's stays on the
        // host while no container runs.
        if network.is_default() && network.endpoints.is_empty() {
            if defer {
                pending.push(network);
            } else if let Err(e) = remove_bridge(&network) {
                errors.push(e);
            }
        }
    }
    if !pending.is_empty() || !links.is_empty() {
        *deferred() = Some(Deferred {
            host,
            root: root.to_path_buf(),
            networks: pending,
            links,
        });
    }
    errors
}
// ANCHOR_END: release

// ANCHOR: deferred
/// Whether [`release`] puts off taking down the default bridge (see [`defer_bridge_removal`]).
static DEFER: AtomicBool = AtomicBool::new(false);

/// A bridge removal put off, with the host's network lock, held until it is done, and the
/// host ends of veth pairs whose deletion was put off with it.
struct Deferred {
    host: nix::fcntl::Flock<std::fs::File>,
    root: PathBuf,
    networks: Vec<Network>,
    links: Vec<String>,
}

fn deferred() -> std::sync::MutexGuard<'static, Option<Deferred>> {
    static PENDING: Mutex<Option<Deferred>> = Mutex::new(None);
    PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// From now on, [`release`] leaves the default bridge of its last container, and the veths of
/// bridge networks, for [`remove_deferred_bridges`], keeping the host's network lock until then. Deleting a bridge
/// is the slowest thing a container on it costs (the kernel waits for every CPU to let go of
/// the device, about 50 ms here), so stage 07's monitor first tells the `run` client how its
/// container ended and only then deletes the bridge. Nobody can join the half-gone network in
/// between: the lock is held throughout, and a container starting meanwhile waits for it.
pub fn defer_bridge_removal() {
    DEFER.store(true, Ordering::Relaxed);
}

/// How long the default bridge outlives its last container when stage 07's monitor takes it
/// down: `SKIFF_BRIDGE_LINGER` seconds (fractions allowed; `0` takes it down at once), one
/// second unless set.
pub fn bridge_linger() -> Duration {
    if chroot::defence::disabled("bridge-linger") {
        return Duration::ZERO;
    }
    std::env::var("SKIFF_BRIDGE_LINGER")
        .ok()
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0 && *seconds <= 3600.0)
        .map_or(DEFAULT_LINGER, Duration::from_secs_f64)
}

/// The default for [`bridge_linger`]: longer than the gap between two runs of a shell loop, a
/// compose project's services or the bench's runs, short enough that nothing of skiff's stays
/// on an idle host for long.
const DEFAULT_LINGER: Duration = Duration::from_secs(1);

/// Deletes the veths [`release`] left, takes down the bridges it left, then lets the host's
/// network lock go. Returns what could not be undone. `on_linger` is called when the caller
/// starts waiting out `linger`, with nothing left to do until then.
///
/// With a `linger`, the lock is let go first and the bridge kept that long: a container that
/// starts meanwhile finds the bridge, its address and its NAT rules in place and pays only for
/// its veth pair. Docker never deletes `docker0` at all; skiff keeps its bridge for a burst of
/// runs and still leaves nothing once nothing runs. After the linger, under the lock again,
/// the bridge goes only if the default network is still without containers; if one joined, the
/// last of those takes the bridge down in its turn.
pub fn remove_deferred_bridges(linger: Duration, on_linger: &dyn Fn()) -> Vec<String> {
    DEFER.store(false, Ordering::Relaxed);
    let Some(Deferred {
        mut host,
        root,
        networks,
        links,
    }) = deferred().take()
    else {
        return Vec::new();
    };
    let mut errors: Vec<String> = links
        .iter()
        .filter_map(|link| {
            let deleted = Netlink::open().and_then(|mut n| n.delete_link(link));
            deleted.err().map(|e| format!("delete {link}: {e}"))
        })
        .collect();
    if networks.is_empty() {
        return errors;
    }
    if !linger.is_zero() {
        drop(host);
        on_linger();
        std::thread::sleep(linger);
        host = match store::host_lock() {
            Ok(lock) => lock,
            Err(e) => return vec![format!("take the network lock: {e}")],
        };
    }
    // The record stayed through the linger, so a container that joined meanwhile got the same
    // subnet; it goes now if none is left, and the bridge with it.
    // A tenth of the linger is the clock's slack: the file's time is the kernel's coarse one.
    match store::forget_default_if_unused(&root, linger - linger / 10) {
        Ok(true) => {}
        Ok(false) => return errors,
        Err(e) => {
            errors.push(format!("forget the default network: {e}"));
            return errors;
        }
    }
    errors.extend(
        networks
            .iter()
            .filter_map(|network| remove_bridge(network).err()),
    );
    drop(host);
    errors
}
// ANCHOR_END: deferred

// ANCHOR: sweep
/// Stage 05's part of sweeping a container away (see [`namespaces::sweep`]): everything it
/// holds on its networks, then stage 04's part. Returns what could not be undone.
pub fn sweep(sweep: &namespaces::Sweep<'_>) -> Vec<String> {
    chroot::timeline::mark("sweep: networks");
    let mut left = release(sweep.root, sweep.id, true);
    left.extend(images::sweep(sweep));
    left
}
// ANCHOR_END: sweep
