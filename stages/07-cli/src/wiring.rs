//! Wiring a container to others: the `run` flags that take something from another container or
//! from the image (`--network container:NAME`, `--volumes-from`, `-P` with `--expose`), and the
//! networks that `network connect` and `network disconnect` change in the record.
//!
//! Docker resolves the first three when the container is created, and so does skiff: the
//! other container's volumes become `-v` flags of this one (its volumes and bind mounts, at the
//! same targets), the image's `EXPOSE`d ports and `--expose` become `-p PORT` flags (a host
//! port the kernel picks, as `-p 80` has it), and `container:NAME` becomes `container:ID`, so a
//! rename of the other never changes what this container joins. The record keeps the result:
//! every start prepares the same container again.
//!
//! The networks are different: they change while the container exists. Its record lists the
//! networks `network connect` added (with `--ip` and `--alias`) and whether `network
//! disconnect` took the one `--network` named; each start attaches it to exactly those, as
//! `eth0`, `eth1`... in that order, with the default route through the first. See
//! docker-run(1) (`--network`, `--volumes-from`, `-P`, `--expose`) and
//! docker-network-connect(1).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;
use namespaces::ContainerId;
use networking::cli::{Choice, NetworkArgs};
use networking::feature::{Attachment, NetworkFeature};
use serde::{Deserialize, Serialize};

use crate::spec::RunArgs;

// ANCHOR: args
/// The flags that wire a new container to others, and the networks `network connect` gave it.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
pub struct WiringArgs {
    /// Publish every exposed port (the image's EXPOSE, and --expose) to a random host port
    #[arg(short = 'P', long = "publish-all")]
    #[serde(default)]
    pub publish_all: bool,

    /// Expose a port or a range of ports: PORT[-PORT][/PROTOCOL]
    #[arg(long = "expose", value_name = "PORT")]
    #[serde(default)]
    pub expose: Vec<String>,

    /// Mount every volume and bind mount of another container: CONTAINER[:ro|:rw]
    #[arg(long = "volumes-from", value_name = "CONTAINER")]
    #[serde(default)]
    pub volumes_from: Vec<String>,

    /// The networks the container is on besides (or instead of) the one `--network` named:
    /// what `network connect` and `network disconnect` changed.
    #[arg(skip)]
    #[serde(default)]
    pub networks: Networks,

    /// The `-p` flags that `-P` added (`80/tcp`): published like the others, but not asked
    /// for one by one, so `HostConfig.PortBindings` leaves them out, as Docker's does.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published_all: Vec<String>,
}
// ANCHOR_END: args

// ANCHOR: networks
/// A container's networks beyond `--network`, kept in its record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Networks {
    /// `network disconnect` took the network `--network` named.
    #[serde(default)]
    pub first_disconnected: bool,
    /// The networks `network connect` added, in order.
    #[serde(default)]
    pub connected: Vec<Connection>,
}

/// One network `network connect` added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The network's name.
    pub network: String,
    /// `--ip`.
    #[serde(default)]
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--alias`es.
    #[serde(default)]
    pub aliases: Vec<String>,
}
// ANCHOR_END: networks

impl RunArgs {
    /// Where `--network` puts it.
    pub fn network_choice(&self) -> Choice {
        NetworkArgs::choice(self.image_args().namespaces.network.as_deref())
    }

    /// The names of the networks it is on at its next start: the one `--network` named (unless
    /// disconnected), then the connected ones.
    pub fn network_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Choice::Attach(first) = self.network_choice()
            && !self.wiring.networks.first_disconnected
        {
            names.push(first);
        }
        names.extend(
            self.wiring
                .networks
                .connected
                .iter()
                .map(|c| c.network.clone()),
        );
        names
    }
}

// ANCHOR: prepare
/// Stage 06's container (every stage's before it), on the networks its record lists now: the
/// one `--network` named unless `network disconnect` took it, and one more `eth` for each
/// network `network connect` added; the published ports on the first of them.
pub fn prepare(spec: &RunArgs, id: ContainerId) -> anyhow::Result<images::cli::PreparedRun> {
    let networks = &spec.wiring.networks;
    let first_stays = !networks.first_disconnected;
    let mut flags = spec.volumes.clone();
    if !first_stays {
        let network = &mut flags.network;
        network.run.namespaces.network = Some("none".to_string());
        network.network.publish.clear();
        network.network.ip = None;
        network.network.ip6 = None;
    }
    let mut prepared = volumes::cli::prepare(&flags, id)?;
    let first = usize::from(first_stays && matches!(spec.network_choice(), Choice::Attach(_)));
    // Whichever network comes first, its DNS server forwards to the container's --dns servers.
    let dns = spec.image_args().namespaces.etc_options()?.dns;
    // The published ports lead to the network with the default route: the one `--network`
    // named, or, when `network disconnect` took that one, the first that `network connect`
    // added. Docker publishes them again there at every start.
    let ports = spec.volumes.network.network.ports()?;
    let container = &mut prepared.container;
    for (n, connection) in networks.connected.iter().enumerate() {
        let interface = n + first;
        let feature = NetworkFeature::new(Attachment {
            ip: connection.ip,
            interface: format!("eth{interface}"),
            default_route: interface == 0,
            ports: if interface == 0 {
                ports.clone()
            } else {
                Vec::new()
            },
            aliases: connection.aliases.clone(),
            dns: dns.clone(),
            cluster: spec.volumes.network.network.cluster.cluster()?,
            ..Attachment::first(
                spec.root().to_path_buf(),
                connection.network.clone(),
                container.id.full().to_string(),
                spec.name().unwrap_or_default().to_string(),
                container.hostname.clone(),
                container.dir.join("hosts"),
            )
        });
        container.prepared.add(feature);
    }
    Ok(prepared)
}
// ANCHOR_END: prepare

// ANCHOR: resolve
/// What `--network container:`, `--volumes-from` and `--expose` take from elsewhere, checked
/// and written into `spec` as plain flags, before the container is prepared: Docker's
/// conflicts refused, the other container named by its id, its mounts added as `-v`.
pub fn resolve(spec: &mut RunArgs) -> anyhow::Result<()> {
    let root = spec.root().to_path_buf();
    for port in &spec.wiring.expose {
        expose_range(port)?;
    }
    if let Choice::Container(key) = spec.network_choice() {
        if key.is_empty() {
            bail!("Invalid network mode: invalid container format container:<name|id>");
        }
        if !spec.volumes.network.network.publish.is_empty() || spec.wiring.publish_all {
            bail!("conflicting options: port publishing and the container type network mode");
        }
        if !spec.wiring.expose.is_empty() {
            bail!("conflicting options: port exposing and the container type network mode");
        }
        if spec.image_args().namespaces.hostname.is_some() {
            bail!("conflicting options: hostname and the network mode");
        }
        if spec.volumes.network.network.ip.is_some() {
            bail!("user specified IP address is supported on user defined networks only");
        }
        let other = namespaces::join::SharedNetwork::find(&root, &key)?;
        spec.volumes.network.run.namespaces.network = Some(format!("container:{}", other.id));
    }
    let mut added = Vec::new();
    for from in &spec.wiring.volumes_from {
        added.extend(volumes_from(&root, from)?);
    }
    let flags = &spec.volumes.volumes;
    let mut taken: BTreeSet<String> =
        volumes::spec::all(&flags.volume, &flags.mount, &flags.tmpfs)?
            .into_iter()
            .map(|m| m.target)
            .collect();
    // This container's own -v for a target wins over the other's mount there (Docker's rule),
    // and of two containers that mount something at one target, the first named wins.
    for (target, flag) in added {
        if taken.insert(target) {
            spec.volumes.volumes.volume.push(flag);
        }
    }
    Ok(())
}
// ANCHOR_END: resolve

// ANCHOR: volumes_from
/// `--volumes-from CONTAINER[:ro|:rw]`: every volume (named or anonymous) and bind mount of
/// that container, as `-v` flags for the same targets: `NAME:/target` or `/host:/target`,
/// read-only as the other has it, or all of them as the suffix says. A tmpfs is the other's
/// own memory and is not shared. Returns each target with its flag.
fn volumes_from(root: &Path, from: &str) -> anyhow::Result<Vec<(String, String)>> {
    let (key, mode) = match from.rsplit_once(':') {
        Some((key, mode @ ("ro" | "rw"))) => (key, Some(mode)),
        Some((_, other)) => bail!("invalid mode for volumes-from: {other}"),
        None => (from, None),
    };
    let record = crate::lifecycle::find(root, key)?;
    let stores = crate::inspect::Stores::load(root, std::slice::from_ref(&record))?;
    let mut flags = Vec::new();
    for point in crate::inspect::mount_points(&record, &stores) {
        let source = match point.kind {
            "volume" if !point.name.is_empty() => point.name.clone(),
            "bind" => point.source.clone(),
            // A volume not made yet (an anonymous one of a container never started), a tmpfs.
            _ => continue,
        };
        let readonly = match mode {
            Some(mode) => mode == "ro",
            None => !point.rw,
        };
        let suffix = if readonly { ":ro" } else { "" };
        let flag = format!("{source}:{}{suffix}", point.destination);
        flags.push((point.destination.clone(), flag));
    }
    Ok(flags)
}
// ANCHOR_END: volumes_from

// ANCHOR: publish_all
/// `-P`: every port the image `EXPOSE`s and every `--expose`, not already published with `-p`,
/// becomes a `-p PORT/PROTOCOL` of its own, which publishes it on a host port the kernel
/// picks. Returns whether it added any, so the caller prepares the container again with them.
/// `prepared` is the container as prepared without them: its image's config says what it
/// exposes.
pub fn publish_all(
    spec: &mut RunArgs,
    prepared: &images::cli::PreparedRun,
) -> anyhow::Result<bool> {
    if !spec.wiring.publish_all {
        return Ok(false);
    }
    let mut exposed: Vec<String> = Vec::new();
    if let Some(config) = &prepared.config {
        exposed.extend(config.exposed_ports().clone().unwrap_or_default());
    }
    for range in &spec.wiring.expose {
        exposed.extend(expose_range(range)?);
    }
    let published: BTreeSet<(u16, String)> = spec
        .volumes
        .network
        .network
        .ports()?
        .iter()
        .map(|p| (p.container_port, p.protocol.as_str().to_string()))
        .collect();
    let mut added = false;
    for port in exposed {
        let (number, protocol) = port.split_once('/').unwrap_or((&port, "tcp"));
        let number: u16 = number
            .parse()
            .with_context(|| format!("invalid exposed port {port:?}"))?;
        let flag = format!("{number}/{protocol}");
        if !published.contains(&(number, protocol.to_string()))
            && !spec.volumes.network.network.publish.contains(&flag)
        {
            spec.volumes.network.network.publish.push(flag.clone());
            spec.wiring.published_all.push(flag);
            added = true;
        }
    }
    Ok(added)
}
// ANCHOR_END: publish_all

/// An `--expose` value, `PORT[-PORT][/PROTOCOL]`, as the ports it names (`80/tcp`); at most
/// 1024 of them, since each published one is a firewall rule.
pub(crate) fn expose_range(value: &str) -> anyhow::Result<Vec<String>> {
    let invalid = || anyhow::anyhow!("invalid range format for --expose: {value}");
    let (ports, protocol) = value.split_once('/').unwrap_or((value, "tcp"));
    if !matches!(protocol, "tcp" | "udp") {
        bail!("invalid proto: {protocol}");
    }
    let (first, last) = ports.split_once('-').unwrap_or((ports, ports));
    let first: u16 = first.parse().map_err(|_| invalid())?;
    let last: u16 = last.parse().map_err(|_| invalid())?;
    if first == 0 || last < first || last - first >= 1024 {
        return Err(invalid());
    }
    Ok((first..=last).map(|p| format!("{p}/{protocol}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(network: &str) -> Connection {
        Connection {
            network: network.into(),
            ip: None,
            aliases: vec!["db".into()],
        }
    }

    #[test]
    fn a_stopped_containers_networks_are_its_records() {
        let mut record = crate::inspect::testing::record(&["--network", "front", "skiff-lab"]);
        assert_eq!(record.spec.network_names(), ["front"]);
        let networks = &mut record.spec.wiring.networks;
        networks.connected.push(connection("back"));
        assert_eq!(record.spec.network_names(), ["front", "back"]);
        record.spec.wiring.networks.first_disconnected = true;
        assert_eq!(record.spec.network_names(), ["back"]);
        // What inspect shows for it, stopped: the networks by name, the alias asked for.
        let stores = crate::inspect::Stores::empty(Path::new("/var/lib/skiff-test"));
        let names: Vec<String> = crate::inspect::attachments(&record, &stores)
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["back"]);
        // Another container's network namespace has no networks of its own to list.
        let joined = crate::inspect::testing::record(&["--network", "container:web", "skiff-lab"]);
        assert!(joined.spec.network_names().is_empty());
        assert!(crate::inspect::attachments(&joined, &stores).is_empty());
    }

    #[test]
    fn a_record_without_wiring_reads_as_none() {
        let record = crate::inspect::testing::record(&["skiff-lab"]);
        let mut json = serde_json::to_value(&record.spec).unwrap();
        json.as_object_mut().unwrap().remove("wiring");
        let spec: RunArgs = serde_json::from_value(json).unwrap();
        assert_eq!(spec.wiring.networks, Networks::default());
        assert!(!spec.wiring.publish_all);
    }

    #[test]
    fn expose_takes_ports_and_ranges() {
        assert_eq!(expose_range("80").unwrap(), ["80/tcp"]);
        assert_eq!(expose_range("53-54/udp").unwrap(), ["53/udp", "54/udp"]);
        for bad in ["", "0", "x", "90-80", "80/sctp", "1-2000"] {
            assert!(expose_range(bad).is_err(), "{bad}");
        }
    }
}
