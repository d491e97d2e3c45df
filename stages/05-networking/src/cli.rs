//! The command line of stage 05: `run` with `--network`, `-p`, `--name`, `--ip`, and the
//! `network` commands (`create`, `ls`, `inspect`, `rm`, `prune`), on top of stage 04's.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use namespaces::{ContainerId, NetworkMode};

use crate::feature::{Attachment, NetworkFeature};
use crate::firewall::PortMapping;
use crate::store::{self, CreateOptions, Driver};

// ANCHOR: args
/// The flags stage 05 adds to `run`.
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
pub struct NetworkArgs {
    /// Publish a container's port on the host: [IP:]HOST_PORT:CONTAINER_PORT[/udp]
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub publish: Vec<String>,

    /// The container's name: the other containers of its network reach it by this name
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The container's IPv4 address on its network (default: the next free one)
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Option<String>,
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
}

impl NetworkArgs {
    /// The network `--network` names: the default bridge when none is given (Docker's default).
    pub fn choice(network: Option<&str>) -> Choice {
        match network {
            Some("host") => Choice::Host,
            Some("none") => Choice::None,
            Some(name) => Choice::Attach(name.to_string()),
            None => Choice::Attach("bridge".to_string()),
        }
    }

    /// The published ports, checked.
    pub fn ports(&self) -> anyhow::Result<Vec<PortMapping>> {
        self.publish
            .iter()
            .map(|p| PortMapping::parse(p).map_err(anyhow::Error::from))
            .collect()
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
        Choice::Attach(name) => {
            // A network that does not exist is bad input: refused now, before anything exists
            // (the default bridge is made on first use).
            store::inspect(&args.run.namespaces.root, name)?;
            NetworkMode::Other(name.clone())
        }
    };
    if let Some(name) = &args.network.name {
        store::check_container_name(name)?;
    }
    let mut prepared = images::cli::prepare_run(&args.run, id, &mode)?;
    if let Choice::Attach(network) = choice {
        let container = &prepared.container;
        let feature = NetworkFeature::new(Attachment {
            root: args.run.namespaces.root.clone(),
            network,
            container_id: container.id.full().to_string(),
            name: args.network.name.clone().unwrap_or_default(),
            hostname: container.hostname.clone(),
            hosts_file: container.dir.join("hosts"),
            ip,
            ports,
        });
        prepared.container.prepared.add(feature);
    }
    Ok(prepared)
}
// ANCHOR_END: run

/// `networking run`: stage 04's container, attached to a network.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
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
        /// bridge (a switch on this host, the default) or macvlan (an address on a host link)
        #[arg(short, long, default_value = "bridge", value_name = "DRIVER")]
        driver: String,
        /// The network's IPv4 subnet (default: a free /24 of 10.89.0.0/16)
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        /// The gateway (default: the subnet's first address)
        #[arg(long, value_name = "ADDRESS")]
        gateway: Option<String>,
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
        /// Only show network ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show networks' details as JSON
    Inspect {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
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
        /// The networks
        #[arg(required = true, value_name = "NETWORK")]
        networks: Vec<String>,
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

fn key_values(items: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
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
    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            NetworkCommand::Create {
                root,
                driver,
                subnet,
                gateway,
                opt,
                internal,
                label,
                name,
            } => {
                let driver = match driver.as_str() {
                    "bridge" => Driver::Bridge,
                    "macvlan" => Driver::Macvlan,
                    other => bail!("unknown network driver {other:?}: use bridge or macvlan"),
                };
                let mut parent = None;
                let mut options = std::collections::BTreeMap::new();
                for (key, value) in key_values(&opt, "--opt")? {
                    match key.as_str() {
                        "parent" => parent = Some(value),
                        store::ENABLE_ICC if driver == Driver::Bridge => {
                            options.insert(key, bool_option(store::ENABLE_ICC, &value)?);
                        }
                        _ => bail!(
                            "unknown --opt {key:?}: skiff knows parent=LINK (for macvlan) and {}=true|false (for bridge)",
                            store::ENABLE_ICC
                        ),
                    }
                }
                let _host = store::host_lock()?;
                let network = store::create(
                    &root.root,
                    CreateOptions {
                        name,
                        driver,
                        subnet: subnet
                            .as_deref()
                            .map(crate::ipam::Subnet::parse)
                            .transpose()?,
                        gateway: gateway.as_deref().map(crate::ipam::parse_ip).transpose()?,
                        parent,
                        internal,
                        labels: key_values(&label, "--label")?.into_iter().collect(),
                        options,
                    },
                )?;
                println!("{}", network.id);
                Ok(0)
            }
            NetworkCommand::List { root, quiet } => {
                let networks = store::list(&root.root)?;
                if quiet {
                    networks
                        .iter()
                        .for_each(|n| println!("{}", &n.id[..12.min(n.id.len())]));
                } else {
                    print!("{}", store::ls_table(&networks));
                }
                Ok(0)
            }
            NetworkCommand::Inspect { root, networks } => {
                let mut found = Vec::new();
                let mut failed = false;
                for name in &networks {
                    match store::inspect(&root.root, name) {
                        Ok(network) => found.push(network),
                        Err(e) => {
                            eprintln!("networking: {e}");
                            failed = true;
                        }
                    }
                }
                println!("{}", store::inspect_json(&found));
                Ok(if failed { chroot::cli::EXIT_ENGINE } else { 0 })
            }
            NetworkCommand::Rm { root, networks } => {
                let mut failed = false;
                for name in &networks {
                    match remove(&root.root, name) {
                        Ok(removed) => println!("{removed}"),
                        Err(e) => {
                            eprintln!("networking: {e:#}");
                            failed = true;
                        }
                    }
                }
                Ok(if failed { chroot::cli::EXIT_ENGINE } else { 0 })
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
fn remove(root: &std::path::Path, name: &str) -> anyhow::Result<String> {
    let _host = store::host_lock()?;
    let network = store::remove(root, name)?;
    if network.driver == Driver::Bridge {
        crate::feature::remove_bridge(&network).map_err(anyhow::Error::msg)?;
    }
    Ok(name.to_string())
}
