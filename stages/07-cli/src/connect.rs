//! `network connect` and `network disconnect`: a container's networks, changed while it exists.
//!
//! On a running container the change happens at once, from outside, through its first
//! process: a new veth whose inside end is born in the container's network namespace (the
//! first `ethN` it does not have), an address from the network's IPAM, the route out only if
//! this is its first network, and every `/etc/hosts` of the network rewritten, its own
//! included, so names resolve both ways ([`networking::feature::connect_running`]). Disconnect
//! undoes exactly that network's part and leaves the others. Either way the record changes too,
//! so the next start attaches the same networks, and `rm` or a sweep finds the endpoint. On a
//! created or stopped container only the record changes, as in Docker: the endpoint is made at
//! the next start. A running container's network namespace is reached through a pidfd of its
//! first process and held for the change ([`crate::netns`]), never through a bare pid. See
//! docker-network-connect(1) and docker-network-disconnect(1).

use std::path::Path;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use namespaces::RootArgs;
use networking::cli::{Choice, NetworkCommand};
use networking::store::{self, Driver, Network};

use crate::container::Record;
use crate::lifecycle;
use crate::netns::NetnsHolder;
use crate::wiring::Connection;

/// `skiff network`: stage 05's commands on networks, and the two that change a container's.
#[derive(Subcommand)]
pub enum NetworkGroup {
    /// Stage 05's commands: create, ls, inspect, rm, prune.
    #[command(flatten)]
    Networks(NetworkCommand),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

/// `network connect`'s flags.
#[derive(Args)]
pub struct ConnectArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// The container's IPv4 address on the network (default: the next free one)
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Option<String>,
    /// Another name the network's containers reach it by
    #[arg(long = "alias", value_name = "NAME")]
    pub alias: Vec<String>,
    /// The network
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `network disconnect`'s flags.
#[derive(Args)]
pub struct DisconnectArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Take it off the network even if the network is gone
    #[arg(short, long)]
    pub force: bool,
    /// The network
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

impl NetworkGroup {
    /// Runs the command; returns the exit code. Errors of connect and disconnect are the
    /// daemon's in Docker, and exit 1.
    pub fn execute(self) -> anyhow::Result<i32> {
        let result = match self {
            NetworkGroup::Networks(command) => return crate::listings::network(command),
            NetworkGroup::Connect(args) => connect(&args),
            NetworkGroup::Disconnect(args) => disconnect(&args),
        };
        match result {
            Ok(()) => Ok(0),
            Err(e) => {
                eprintln!("Error response from daemon: {}", chroot::cli::one_line(&e));
                Ok(1)
            }
        }
    }
}

/// Whether `key` (a name, an id or an id prefix, as the record keeps what the user typed)
/// names `network`.
fn is_named(network: &Network, key: &str) -> bool {
    network.name == key
        || (!key.is_empty()
            && key.bytes().all(|b| b.is_ascii_hexdigit())
            && network.id.starts_with(key))
}

/// The network namespace of the container's first process, held while it runs (see
/// [`crate::netns`]): its holder's pid stands for it, and cannot name anything else meanwhile.
fn hold_netns(record: &Record) -> anyhow::Result<Option<NetnsHolder>> {
    record
        .state
        .pid
        .filter(|pid| record.state.is_running() && pid.is_alive())
        .map(|pid| NetnsHolder::of(pid, &record.name))
        .transpose()
}

// ANCHOR: connect
/// `network connect` (also the API's `POST /networks/{id}/connect`).
pub fn connect(args: &ConnectArgs) -> anyhow::Result<()> {
    let root = &args.root.root;
    let record = lifecycle::find(root, &args.container)?;
    let network = store::inspect(root, &args.network)?;
    match record.spec.network_choice() {
        Choice::Host | Choice::Container(_) => bail!(
            "container sharing network namespace with another container or host cannot be connected to any other network"
        ),
        Choice::None => bail!(
            "container cannot be connected to multiple networks with one of the networks in private (none) mode"
        ),
        Choice::Attach(_) => {}
    }
    match network.driver {
        Driver::Host => {
            bail!("container cannot be disconnected from host network or connected to host network")
        }
        Driver::Null => bail!(
            "container cannot be connected to multiple networks with one of the networks in private (none) mode"
        ),
        Driver::Bridge | Driver::Macvlan | Driver::Ipvlan => {}
    }
    let ip = args
        .ip
        .as_deref()
        .map(networking::ipam::parse_ip)
        .transpose()?;
    if let (Some(ip), Some(subnet)) = (ip, network.subnet)
        && !subnet.contains(ip)
    {
        bail!("no configured subnet or ip-range contain the IP address {ip}");
    }
    for alias in &args.alias {
        store::validate_name(alias).map_err(|_| {
            anyhow!("invalid alias {alias:?}: use letters, digits, '_', '.' and '-'")
        })?;
    }
    let listed = record
        .spec
        .network_names()
        .iter()
        .any(|key| is_named(&network, key));
    let holder = hold_netns(&record)?;
    let pid = holder.as_ref().map(NetnsHolder::pid);
    if listed || network.endpoint(&record.id).is_some() {
        if pid.is_none() {
            // Docker keeps one configuration per network: asking again changes nothing.
            return Ok(());
        }
        bail!(
            "endpoint with name {} already exists in network {}",
            record.name,
            network.name
        );
    }
    let connection = Connection {
        network: network.name.clone(),
        ip,
        aliases: args.alias.clone(),
    };
    if let Some(pid) = pid {
        let want = networking::feature::Attachment {
            ip,
            aliases: args.alias.clone(),
            dns: record.spec.image_args().namespaces.etc_options()?.dns,
            ..networking::feature::Attachment::first(
                root.clone(),
                network.name.clone(),
                record.id.clone(),
                record.name.clone(),
                record.config.hostname.clone(),
                crate::container::records(root)
                    .dir(&record.id)
                    .join("hosts"),
            )
        };
        networking::feature::connect_running(want, pid)?;
    }
    let updated = lifecycle::store(root).lock().and_then(|locked| {
        locked.update::<crate::spec::RunArgs>(&record.id, |r| {
            r.spec.wiring.networks.connected.push(connection);
        })
    });
    if let Err(e) = updated {
        // The record is the truth: without it, the endpoint goes too.
        networking::feature::disconnect_running(root, &record.id, &network.name, pid);
        return Err(e.into());
    }
    if pid.is_some() {
        crate::events::emit_network(root, "connect", &network, &record.id);
    }
    Ok(())
}
// ANCHOR_END: connect

// ANCHOR: disconnect
/// `network disconnect` (also the API's `POST /networks/{id}/disconnect`).
pub fn disconnect(args: &DisconnectArgs) -> anyhow::Result<()> {
    let root = &args.root.root;
    let record = lifecycle::find(root, &args.container)?;
    let network = match store::inspect(root, &args.network) {
        Ok(network) => network,
        // -f: a network that is gone leaves only its name in the record.
        Err(store::StoreError::NotFound { .. }) if args.force => {
            return forget(root, &record, |key| key == args.network);
        }
        Err(e) => return Err(e.into()),
    };
    if network.driver == Driver::Host {
        bail!("container cannot be disconnected from host network or connected to host network");
    }
    let listed = record
        .spec
        .network_names()
        .iter()
        .any(|key| is_named(&network, key));
    let holder = hold_netns(&record)?;
    let pid = holder.as_ref().map(NetnsHolder::pid);
    let attached = network.endpoint(&record.id).is_some();
    if !listed && !attached {
        bail!(
            "container {} is not connected to {}network {}",
            record.id,
            if pid.is_some() { "" } else { "the " },
            network.name
        );
    }
    if attached {
        // Published ports lead to the address on the first network (the one `--network`
        // named, else the first connected), which is going.
        let first_here = record
            .spec
            .network_names()
            .first()
            .is_some_and(|key| is_named(&network, key));
        if first_here
            && !record.spec.volumes.network.network.publish.is_empty()
            && let Err(e) = networking::firewall::unpublish(&record.id)
        {
            bail!("remove the published ports of {}: {e}", record.name);
        }
        let left = networking::feature::disconnect_running(root, &record.id, &network.name, pid);
        if !left.is_empty() {
            bail!(
                "container {} failed to leave network {}: {}",
                record.id,
                network.name,
                left.join("; ")
            );
        }
        crate::events::emit_network(root, "disconnect", &network, &record.id);
    }
    forget(root, &record, |key| is_named(&network, key))
}
// ANCHOR_END: disconnect

/// Takes the networks that `is_it` recognises out of the record: the one `--network` named is
/// marked disconnected, connected ones are dropped.
fn forget(root: &Path, record: &Record, is_it: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    let records = lifecycle::store(root);
    let locked = records.lock()?;
    locked.update::<crate::spec::RunArgs>(&record.id, |r| {
        if let Choice::Attach(first) = r.spec.network_choice()
            && is_it(&first)
        {
            r.spec.wiring.networks.first_disconnected = true;
        }
        r.spec
            .wiring
            .networks
            .connected
            .retain(|c| !is_it(&c.network));
    })?;
    Ok(())
}
