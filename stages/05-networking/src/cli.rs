//! The command line of stage 05: `run` with `--network`, `-p`, `--name`, `--ip`, and the
//! `network` commands (`create`, `ls`, `inspect`, `rm`, `prune`), on top of stage 04's.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use namespaces::{ContainerId, NetworkMode};

use crate::feature::{Attachment, NetworkFeature};
use crate::firewall::PortMapping;
use crate::store::{self, CreateOptions, Driver, Network};

// ANCHOR: args
/// The flags stage 05 adds to `run`.
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
pub struct NetworkArgs {
    /// Publish a container's port on the host: [IP:]HOST_PORT:CONTAINER_PORT[/udp], IP being
    /// IPv4 (0.0.0.0: IPv4 only) or IPv6 in brackets ([::]: IPv6 only)
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<String>,

    /// The container's name: the other containers of its network reach it by this name
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The container's IPv4 address on its network (default: the next free one)
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Option<String>,

    /// The container's IPv6 address, on a network created with --ipv6 (default: the next free one)
    #[arg(long, value_name = "ADDRESS")]
    #[serde(default)]
    pub ip6: Option<String>,

    /// Another name the network's DNS server answers with this container's address
    #[arg(long = "network-alias", value_name = "ALIAS")]
    #[serde(default)]
    pub network_alias: Vec<String>,

    /// The cluster store, for overlay networks
    #[command(flatten)]
    #[serde(default)]
    pub cluster: crate::overlay_cli::ClusterArgs,
}
// ANCHOR_END: args

/// `run`'s flags: stage 04's and stage 05's.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
#[group(id = "networking_run")]
pub struct RunArgs {
    /// Flags of stage 04 (and before it).
    #[command(flatten)]
    pub run: images::cli::RunArgs,

    /// Flags of stage 05.
    #[command(flatten)]
    pub network: NetworkArgs,
}

/// Where the container's network comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The host's network (`--network host`).
    Host,
    /// Loopback only (`--network none`).
    None,
    /// A network of skiff's: `bridge` (the default) or a user-defined one.
    Attach(String),
    /// Another container's network namespace (`container:NAME|ID`): joined, with no endpoint
    /// of its own.
    Container(String),
}

impl NetworkArgs {
    /// The network `--network` names: the default bridge when none is given (Docker's default).
    pub fn choice(network: Option<&str>) -> Choice {
        if let Some(key) = network.and_then(|mode| mode.strip_prefix("container:")) {
            return Choice::Container(key.to_string());
        }
        match network {
            Some("host") => Choice::Host,
            Some("none") => Choice::None,
            Some(name) => Choice::Attach(name.to_string()),
            None => Choice::Attach("bridge".to_string()),
        }
    }

    /// The published ports, checked; a range (`8000-8010:80-90`) is one mapping per port.
    pub fn ports(&self) -> anyhow::Result<Vec<PortMapping>> {
        let mut ports = Vec::new();
        for value in &self.publish {
            ports.extend(
                expand_range(value)?
                    .iter()
                    .map(|p| PortMapping::parse(p))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Ok(ports)
    }
}

// ANCHOR: ranges
/// Docker's port ranges, as single `-p` values: `8000-8002:80-82` is `8000:80`, `8001:81` and
/// `8002:82`; `80-82` publishes each container port on a free host port. The two ranges must be
/// as long as each other. A value without a range is itself.
pub fn expand_range(value: &str) -> anyhow::Result<Vec<String>> {
    let (ports, protocol) = match value.rsplit_once('/') {
        Some((ports, protocol)) => (ports, format!("/{protocol}")),
        None => (value, String::new()),
    };
    if !ports.contains('-') {
        return Ok(vec![value.to_string()]);
    }
    let range = |text: &str| -> anyhow::Result<(u16, u16)> {
        let bad = || {
            anyhow::anyhow!(
                "invalid port range {text:?} in -p {value}: give FIRST-LAST, FIRST <= LAST"
            )
        };
        let (first, last) = text.split_once('-').unwrap_or((text, text));
        let (first, last): (u16, u16) = (
            first.parse().map_err(|_| bad())?,
            last.parse().map_err(|_| bad())?,
        );
        if first == 0 || first > last {
            return Err(bad());
        }
        Ok((first, last))
    };
    let (prefix, host, container) = match ports.rsplitn(3, ':').collect::<Vec<_>>().as_slice() {
        [container] => (String::new(), None, *container),
        [container, host] => (String::new(), Some(*host), *container),
        [container, host, ip] => (format!("{ip}:"), Some(*host), *container),
        _ => return Ok(vec![value.to_string()]),
    };
    let (c_first, c_last) = range(container)?;
    let count = c_last - c_first;
    let host = match host.filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => {
            let (h_first, h_last) = range(h)?;
            if h_last - h_first != count {
                bail!(
                    "invalid -p {value}: the host range and the container range must have as many ports"
                );
            }
            Some(h_first)
        }
    };
    Ok((0..=count)
        .map(|i| match host {
            Some(h) => format!("{prefix}{}:{}{protocol}", h + i, c_first + i),
            None if prefix.is_empty() => format!("{}{protocol}", c_first + i),
            None => format!("{prefix}:{}{protocol}", c_first + i),
        })
        .collect())
}
// ANCHOR_END: ranges

#[cfg(test)]
mod range_tests {
    use super::expand_range;

    #[test]
    fn ranges_become_single_ports() {
        assert_eq!(expand_range("8080:80").unwrap(), vec!["8080:80"]);
        assert_eq!(
            expand_range("127.0.0.1:8000-8002:80-82/udp").unwrap(),
            vec![
                "127.0.0.1:8000:80/udp",
                "127.0.0.1:8001:81/udp",
                "127.0.0.1:8002:82/udp"
            ]
        );
        assert_eq!(expand_range("80-81").unwrap(), vec!["80", "81"]);
        assert_eq!(
            expand_range("127.0.0.1::80-81").unwrap(),
            vec!["127.0.0.1::80", "127.0.0.1::81"]
        );
        // An IPv6 host address keeps its colons: only the last two fields are ports.
        assert_eq!(
            expand_range("[::]:8000-8001:80-81").unwrap(),
            vec!["[::]:8000:80", "[::]:8001:81"]
        );
        assert!(expand_range("8000-8005:80-81").is_err());
        assert!(expand_range("90-80").is_err());
    }
}

// ANCHOR: run
/// Stage 04's container, attached to a network: checks the flags, then describes the
/// container; nothing exists on the host until its features run. A later stage adds to it.
pub fn prepare(args: &RunArgs, id: ContainerId) -> anyhow::Result<images::cli::PreparedRun> {
    let ports = args.network.ports()?;
    let ip = args
        .network
        .ip
        .as_deref()
        .map(|ip| crate::ipam::parse_ip(ip).map_err(anyhow::Error::from))
        .transpose()?;
    let ip6 = args
        .network
        .ip6
        .as_deref()
        .map(|ip| crate::ipam::parse_ip6(ip).map_err(anyhow::Error::from))
        .transpose()?;
    let choice = NetworkArgs::choice(args.run.namespaces.network.as_deref());
    let mode = match &choice {
        Choice::Host => {
            if !ports.is_empty() {
                eprintln!(
                    "networking: warning: published ports are discarded when using host network mode"
                );
            }
            NetworkMode::Host
        }
        Choice::None => {
            if !ports.is_empty() {
                bail!(
                    "cannot publish ports of a container with --network none: it has no network to publish from"
                );
            }
            NetworkMode::None
        }
        Choice::Container(key) => {
            if key.is_empty() {
                bail!("Invalid network mode: invalid container format container:<name|id>");
            }
            if !ports.is_empty() {
                bail!("conflicting options: port publishing and the container type network mode");
            }
            NetworkMode::Container(key.clone())
        }
        Choice::Attach(name) => {
            // A network that does not exist is bad input: refused now, before anything exists
            // (the default bridge is made on first use).
            let network = match store::inspect(&args.run.namespaces.root, name) {
                Err(store::StoreError::NotFound { .. })
                    if args.network.cluster.cluster_store.is_some() =>
                {
                    // Maybe an overlay network of the cluster store: asked now, so a missing
                    // one or an unreachable store is a clear error before anything exists.
                    let etcd = args.network.cluster.required()?;
                    let overlay = crate::overlay::network(&etcd, name)?
                        .ok_or_else(|| store::StoreError::NotFound { name: name.clone() })?;
                    if args.network.cluster.advertise_addr.is_none() {
                        bail!(crate::overlay_attach::AttachError::NoAdvertise(
                            overlay.name
                        ));
                    }
                    if ip.is_some() || ip6.is_some() || !ports.is_empty() {
                        bail!(
                            "a container on overlay network {name} takes its address from the cluster store and publishes no ports: leave out --ip, --ip6 and -p"
                        );
                    }
                    return attach(
                        args,
                        id,
                        Choice::Attach(name.clone()),
                        NetworkMode::Other(name.clone()),
                    );
                }
                other => other?,
            };
            // Docker's rule: the default bridge's addresses are the engine's to hand out.
            if (ip.is_some() || ip6.is_some()) && network.is_default() {
                bail!("user specified IP address is supported on user defined networks only");
            }
            if ip6.is_some() && network.ipv6.is_none() {
                return Err(store::StoreError::NoIpv6 {
                    network: network.name,
                }
                .into());
            }
            NetworkMode::Other(name.clone())
        }
    };
    if let Some(name) = &args.network.name {
        store::check_container_name(name)?;
    }
    attach(args, id, choice, mode)
}

/// Stage 04's container in network mode `mode`, with the network feature when `choice`
/// attaches it.
fn attach(
    args: &RunArgs,
    id: ContainerId,
    choice: Choice,
    mode: NetworkMode,
) -> anyhow::Result<images::cli::PreparedRun> {
    let ports = args.network.ports()?;
    let parse_ip = |text: &Option<String>| text.as_deref().map(crate::ipam::parse_ip).transpose();
    let ip = parse_ip(&args.network.ip)?;
    let ip6 = args
        .network
        .ip6
        .as_deref()
        .map(crate::ipam::parse_ip6)
        .transpose()?;
    let mut prepared = images::cli::prepare_run(&args.run, id, &mode)?;
    if let Choice::Attach(network) = choice {
        let container = &prepared.container;
        let feature = NetworkFeature::new(Attachment {
            ip,
            ip6,
            ports,
            aliases: args.network.network_alias.clone(),
            dns: args.run.namespaces.etc_options()?.dns,
            cluster: args.network.cluster.cluster()?,
            ..Attachment::first(
                args.run.namespaces.root.clone(),
                network,
                container.id.full().to_string(),
                args.network.name.clone().unwrap_or_default(),
                container.hostname.clone(),
                container.dir.join("hosts"),
            )
        });
        prepared.container.prepared.add(feature);
    }
    Ok(prepared)
}
// ANCHOR_END: run

/// `networking run`: stage 04's container, attached to a network.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    chroot::launch::require_root()?;
    let id = ContainerId::random().context("make a container id")?;
    let prepared = prepare(&args, id)?;
    args.run.namespaces.write_cidfile(&prepared.container.id)?;
    images::cli::launch_prepared("networking", prepared)
}

pub use namespaces::RootArgs;

/// The `network` commands.
#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// The cluster store, for overlay networks.
        #[command(flatten)]
        cluster: crate::overlay_cli::ClusterArgs,
        /// bridge (a switch on this host, the default), macvlan (an address on a host link) or overlay (across hosts, with --cluster-store)
        #[arg(short, long, default_value = "bridge", value_name = "DRIVER")]
        driver: String,
        /// The network's IPv4 subnet (default: a free /24 of 10.89.0.0/16); given twice, an
        /// IPv4 and an IPv6 one (with --ipv6)
        #[arg(long, value_name = "CIDR")]
        subnet: Vec<String>,
        /// IPv6 too: containers get an address of the network's IPv6 --subnet as well
        #[arg(long)]
        ipv6: bool,
        /// The gateway (default: the subnet's first address)
        #[arg(long, value_name = "ADDRESS")]
        gateway: Option<String>,
        /// Give containers addresses from this part of the subnet only
        #[arg(long, value_name = "CIDR")]
        ip_range: Option<String>,
        /// An address the engine must never give a container: NAME=IP
        #[arg(long = "aux-address", value_name = "NAME=IP")]
        aux_address: Vec<String>,
        /// Driver options: parent=LINK for macvlan, com.docker.network.bridge.enable_icc=false for bridge
        #[arg(short, long = "opt", value_name = "KEY=VALUE")]
        opt: Vec<String>,
        /// No way out: no NAT to the outside
        #[arg(long)]
        internal: bool,
        /// Metadata
        #[arg(long, value_name = "KEY=VALUE")]
        label: Vec<String>,
        /// The network's name
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List networks
    #[command(visible_alias = "ls")]
    List {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// The cluster store, for overlay networks.
        #[command(flatten)]
        cluster: crate::overlay_cli::ClusterArgs,
        /// Only show network ids
        #[arg(short, long)]
        quiet: bool,
        /// Filter: driver=, id=, label=KEY[=VALUE], name=, scope=local, type=custom|builtin
        #[arg(short, long, value_name = "FILTER")]
        filter: Vec<String>,
        /// `json` for a JSON object per network (skiff, stage 07, takes Go templates too)
        #[arg(long, value_name = "FORMAT")]
        format: Option<String>,
    },
    /// Show networks' details as JSON
    Inspect {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// The cluster store, for overlay networks.
        #[command(flatten)]
        cluster: crate::overlay_cli::ClusterArgs,
        /// The networks
        #[arg(required = true, value_name = "NETWORK")]
        networks: Vec<String>,
    },
    /// Remove networks
    #[command(visible_alias = "remove")]
    Rm {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// The cluster store, for overlay networks.
        #[command(flatten)]
        cluster: crate::overlay_cli::ClusterArgs,
        /// The networks
        #[arg(required = true, value_name = "NETWORK")]
        networks: Vec<String>,
    },
    /// The DNS server of a user network (started by its first container; not for people)
    #[command(hide = true)]
    DnsServe {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// The network's id
        id: String,
        /// The lock the starter took, handed over
        #[arg(long)]
        lock_fd: i32,
        /// Where to say that the sockets are bound
        #[arg(long)]
        ready_fd: i32,
    },
    /// Start the DNS server (and agent) of a network unless one runs (a container's pump
    /// asks; not for people)
    #[command(hide = true)]
    DnsEnsure {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// The network's id
        id: String,
    },
    /// Remove every network no container uses
    Prune {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// Do not ask (skiff never asks: accepted for Docker's sake)
        #[arg(short, long)]
        force: bool,
    },
}

/// The networks of the store at `root` that pass every `--filter KEY=VALUE` of `filter`: what
/// `network ls` lists, in this stage and in stage 07.
pub fn filtered(root: &std::path::Path, filter: &[String]) -> anyhow::Result<Vec<Network>> {
    let filters = key_values(filter, "--filter")?;
    let mut networks = Vec::new();
    for network in store::list(root)? {
        if matches(&network, &filters)? {
            networks.push(network);
        }
    }
    Ok(networks)
}

// ANCHOR: filter
/// Whether `network` passes every `--filter` (moby `daemon/network/filter.go`): names and ids
/// match by part (`name=web` matches `webnet`), the rest exactly; values of one key are
/// alternatives, different keys must all hold.
pub fn matches(network: &Network, filters: &[(String, String)]) -> anyhow::Result<bool> {
    let mut by_key: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (key, value) in filters {
        by_key.entry(key.as_str()).or_default().push(value.as_str());
    }
    for (key, values) in by_key {
        let any = |test: &dyn Fn(&str) -> bool| values.iter().any(|v| test(v));
        let keep = match key {
            "driver" => any(&|v| v == network.driver.as_str()),
            "id" => any(&|v| network.id.contains(v)),
            "name" => any(&|v| network.name.contains(v)),
            "scope" => any(&|v| v == "local"),
            "label" => any(&|v| match v.split_once('=') {
                Some((k, value)) => network.labels.get(k).is_some_and(|l| l == value),
                None => network.labels.contains_key(v),
            }),
            "type" => {
                for v in &values {
                    if !matches!(*v, "custom" | "builtin") {
                        bail!("invalid filter: 'type'='{v}'");
                    }
                }
                any(&|v| (v == "builtin") == network.is_predefined())
            }
            other => bail!("invalid filter '{other}'"),
        };
        if !keep {
            return Ok(false);
        }
    }
    Ok(true)
}
// ANCHOR_END: filter

/// `KEY=VALUE` flags as pairs.
pub fn key_values(items: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("invalid {what} {item:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// A boolean driver option, read as Docker reads it (Go's strconv.ParseBool), kept as `true` or
/// `false`.
fn bool_option(key: &str, value: &str) -> anyhow::Result<String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok("true".into()),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok("false".into()),
        _ => bail!("invalid --opt {key}={value:?}: expected true or false"),
    }
}

impl NetworkCommand {
    // ANCHOR: create_network
    /// `network create` without its printing: makes the network `self` (a
    /// [`NetworkCommand::Create`]) describes and returns its id. The Engine API's
    /// `POST /networks/create` (stage 07) is this too.
    pub fn create_network(self) -> anyhow::Result<String> {
        let NetworkCommand::Create {
            root,
            cluster,
            driver,
            subnet,
            ipv6,
            gateway,
            ip_range,
            aux_address,
            opt,
            internal,
            label,
            name,
        } = self
        else {
            bail!("create_network needs a NetworkCommand::Create");
        };
        if driver == "overlay" {
            if subnet.len() > 1 || ipv6 {
                bail!("an overlay network takes one IPv4 --subnet (no IPv6 yet)");
            }
            // `--opt encrypted` (Docker writes it without a value).
            let mut encrypted = false;
            for item in &opt {
                match item.as_str() {
                    "encrypted" | "encrypted=true" => encrypted = true,
                    "encrypted=false" => encrypted = false,
                    other => bail!(
                        "unknown --opt {other:?} for an overlay network: skiff knows encrypted"
                    ),
                }
            }
            let id = crate::overlay_cli::create(
                &cluster,
                &name,
                subnet.first().map(String::as_str),
                encrypted,
            )?;
            return Ok(id);
        }
        let driver = match driver.as_str() {
            "bridge" => Driver::Bridge,
            "macvlan" => Driver::Macvlan,
            "ipvlan" => Driver::Ipvlan,
            other => {
                bail!("unknown network driver {other:?}: use bridge, macvlan, ipvlan or overlay")
            }
        };
        let mut parent = None;
        let mut options = std::collections::BTreeMap::new();
        for (key, value) in key_values(&opt, "--opt")? {
            match key.as_str() {
                "parent" => parent = Some(value),
                store::ENABLE_ICC if driver == Driver::Bridge => {
                    options.insert(key, bool_option(store::ENABLE_ICC, &value)?);
                }
                store::MACVLAN_MODE if driver == Driver::Macvlan => {
                    store::macvlan_mode(Some(&value))?;
                    options.insert(key, value);
                }
                store::IPVLAN_MODE if driver == Driver::Ipvlan => {
                    store::ipvlan_mode(Some(&value))?;
                    options.insert(key, value);
                }
                store::BRIDGE_NAME if driver == Driver::Bridge => {
                    let ok = (1..=store::IFNAME_MAX).contains(&value.len())
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
                    if !ok {
                        bail!(
                            "invalid --opt {key}={value}: a link name is 1 to {} letters, digits, '_', '.' or '-'",
                            store::IFNAME_MAX
                        );
                    }
                    if crate::netlink::Netlink::open()?
                        .link_index(&value)?
                        .is_some()
                    {
                        bail!("bridge name {value} is in use by a link of this host: pick another");
                    }
                    options.insert(key, value);
                }
                store::MTU => {
                    if !value
                        .parse::<u32>()
                        .is_ok_and(|m| (68..=65535).contains(&m))
                    {
                        bail!("invalid --opt {key}={value}: an MTU is a number from 68 to 65535");
                    }
                    options.insert(key, value);
                }
                _ => bail!(
                    "unknown --opt {key:?}: skiff knows parent=LINK and {}=bridge|private|vepa|passthru (for macvlan); {}=true|false and {}=NAME (for bridge); {}=N",
                    store::MACVLAN_MODE,
                    store::ENABLE_ICC,
                    store::BRIDGE_NAME,
                    store::MTU
                ),
            }
        }
        // ANCHOR: subnets
        // Docker's way: --subnet once per family; the one with a ':' is IPv6.
        let (subnet6, subnet4): (Vec<&String>, Vec<&String>) =
            subnet.iter().partition(|s| s.contains(':'));
        if subnet4.len() > 1 || subnet6.len() > 1 {
            bail!(
                "--subnet: give at most one IPv4 and one IPv6 subnet (skiff has one subnet per family)"
            );
        }
        let subnet6 = subnet6
            .first()
            .map(|s| crate::ipam::Subnet6::parse(s))
            .transpose()?;
        let subnet = subnet4.first().map(|s| s.as_str());
        // ANCHOR_END: subnets
        let _host = store::host_lock()?;
        // A VLAN parent that does not exist yet is made now, and unmade if the network
        // cannot be.
        let mut made_parent = None;
        if matches!(driver, Driver::Macvlan | Driver::Ipvlan)
            && let Some(name) = &parent
            && crate::feature::create_vlan_parent(name).map_err(anyhow::Error::msg)?
        {
            options.insert(store::PARENT_CREATED.to_string(), "true".to_string());
            made_parent = Some(name.clone());
        }
        let created = store::create(
            &root.root,
            CreateOptions {
                name,
                driver,
                subnet: subnet.map(crate::ipam::Subnet::parse).transpose()?,
                gateway: gateway.as_deref().map(crate::ipam::parse_ip).transpose()?,
                parent,
                internal,
                labels: key_values(&label, "--label")?.into_iter().collect(),
                options,
                ipam: store::IpamExtras {
                    ip_range: ip_range
                        .as_deref()
                        .map(crate::ipam::Subnet::parse)
                        .transpose()?,
                    aux_addresses: key_values(&aux_address, "--aux-address")?
                        .into_iter()
                        .map(|(name, ip)| Ok((name, crate::ipam::parse_ip(&ip)?)))
                        .collect::<anyhow::Result<_>>()?,
                },
                enable_ipv6: ipv6,
                subnet6,
            },
        );
        let network = match created {
            Ok(network) => network,
            Err(e) => {
                if let Some(name) = made_parent
                    && let Err(undo) =
                        crate::netlink::Netlink::open().and_then(|mut n| n.delete_link(&name))
                {
                    eprintln!("networking: warning: delete VLAN link {name}: {undo}");
                }
                return Err(e.into());
            }
        };
        Ok(network.id)
    }
    // ANCHOR_END: create_network

    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            create @ NetworkCommand::Create { .. } => {
                println!("{}", create.create_network()?);
                Ok(0)
            }
            NetworkCommand::List {
                root,
                cluster,
                quiet,
                filter,
                format,
            } => {
                let mut networks = filtered(&root.root, &filter)?;
                // A local mirror of an overlay network is listed once, as the store's.
                if cluster.cluster_store.is_some() && filter.is_empty() {
                    networks.retain(|n| n.driver != Driver::Overlay);
                }
                // An unreachable cluster store never hides the local networks.
                let overlays = if filter.is_empty() {
                    crate::overlay_cli::ls_rows(&cluster).unwrap_or_else(|e| {
                        eprintln!("networking: warning: overlay networks not listed: {e:#}");
                        Vec::new()
                    })
                } else {
                    Vec::new()
                };
                match format.as_deref().map(str::trim) {
                    None | Some("" | "table") => {}
                    Some("json") => {
                        networks
                            .iter()
                            .for_each(|n| println!("{}", store::ls_json(n)));
                        return Ok(0);
                    }
                    Some(other) => bail!(
                        "--format {other:?}: this stage prints `table` or `json`; Go templates are skiff's (stage 07)"
                    ),
                }
                if quiet {
                    networks
                        .iter()
                        .for_each(|n| println!("{}", &n.id[..12.min(n.id.len())]));
                    overlays.iter().for_each(|row| println!("{}", row[0]));
                } else if overlays.is_empty() {
                    print!("{}", store::ls_table(&networks));
                } else {
                    print!("{}", crate::overlay_cli::ls_table(&networks, overlays));
                }
                Ok(0)
            }
            NetworkCommand::Inspect {
                root,
                cluster,
                networks,
            } => {
                let mut found = Vec::new();
                let mut global = Vec::new();
                let mut failed = false;
                for name in &networks {
                    match store::inspect(&root.root, name) {
                        // A local mirror of an overlay network: the store's view has every host.
                        Ok(network)
                            if network.driver == Driver::Overlay
                                && cluster.cluster_store.is_some() =>
                        {
                            match crate::overlay_cli::inspect(&cluster, &network.name)? {
                                Some(view) => global.push(view),
                                None => found.push(network),
                            }
                        }
                        Ok(network) => found.push(network),
                        Err(e) => {
                            if let Some(view) = crate::overlay_cli::inspect(&cluster, name)? {
                                global.push(view);
                                continue;
                            }
                            eprintln!("networking: {e}");
                            failed = true;
                        }
                    }
                }
                if global.is_empty() {
                    println!("{}", store::inspect_json(&found));
                } else {
                    println!("{}", crate::overlay_cli::inspect_json(&found, global)?);
                }
                Ok(if failed { chroot::cli::EXIT_ENGINE } else { 0 })
            }
            NetworkCommand::Rm {
                root,
                cluster,
                networks,
            } => {
                let mut failed = false;
                for name in &networks {
                    // Local networks first: they never depend on the cluster store.
                    let removed = if store::inspect(&root.root, name).is_ok() {
                        remove(&root.root, name)
                    } else {
                        match crate::overlay_cli::remove(&cluster, name) {
                            Ok(true) => Ok(name.clone()),
                            Ok(false) => remove(&root.root, name),
                            Err(e) => Err(e),
                        }
                    };
                    match removed {
                        Ok(removed) => println!("{removed}"),
                        Err(e) => {
                            eprintln!("networking: {e:#}");
                            failed = true;
                        }
                    }
                }
                Ok(if failed { chroot::cli::EXIT_ENGINE } else { 0 })
            }
            NetworkCommand::DnsServe {
                root,
                id,
                lock_fd,
                ready_fd,
            } => {
                crate::dns::serve_with_lock(&root.root, &id, lock_fd, ready_fd)?;
                Ok(0)
            }
            NetworkCommand::DnsEnsure { root, id } => {
                let network = store::inspect(&root.root, &id)?;
                crate::dns::ensure_running(&root.root, &network).map_err(anyhow::Error::msg)?;
                Ok(0)
            }
            NetworkCommand::Prune { root, force: _ } => {
                let _host = store::host_lock()?;
                let pruned = store::prune(&root.root)?;
                for network in &pruned {
                    if let Err(e) = crate::feature::remove_bridge(network) {
                        eprintln!("networking: warning: {e}");
                    }
                }
                if !pruned.is_empty() {
                    println!("Deleted Networks:");
                    pruned.iter().for_each(|n| println!("{}", n.name));
                }
                Ok(0)
            }
        }
    }
}

/// `network rm NAME`: the record, then its bridge and NAT rules. Returns the name as given.
/// Stage 07's API service removes networks with it too.
pub fn remove(root: &std::path::Path, name: &str) -> anyhow::Result<String> {
    let _host = store::host_lock()?;
    let network = store::remove(root, name)?;
    // Gone with its last container; this is for one that outlived it (a crash).
    if let Err(e) = crate::dns::stop(root, &network.id) {
        eprintln!("networking: warning: {e}");
    }
    if network.driver == Driver::Bridge || network.options.contains_key(store::PARENT_CREATED) {
        crate::feature::remove_bridge(&network).map_err(anyhow::Error::msg)?;
    }
    Ok(name.to_string())
}
