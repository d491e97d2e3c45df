//! How your pieces plug into the command line and the launch: `-p`, the `network` commands, and
//! one [`Feature`] in the network's slot whose hooks call your [`network`] pieces. Read it; you
//! should not need to change it until every piece is written.
//!
//! A run that names a network of yours (`--network NAME`, anything but `none`, `host` and
//! `container:...`) or publishes a port asks for stage 05, and a piece still `todo!()` stops
//! it before anything exists on the host, with the piece's name (see `starter.rs`); so do the
//! `network` commands. A run without `--network` stays stage 04's, loopback only, until you
//! set [`DEFAULT_BRIDGE`]: then it goes on the default `bridge`, as Docker's does.

use anyhow::Context;
use chroot::launch::Started;
use chroot::{Feature, FeatureError, Plan, Slot};
use clap::{Args, Subcommand};
use namespaces::{ContainerId, NetworkMode, RootArgs};

use crate::hooks::in_hook;
use crate::network::{self, Endpoint, Network};
use crate::starter::written;

/// Whether a run without `--network` goes on the default bridge. Set it once [`network::find`],
/// [`network::attach`] and [`network::detach`] are written.
const DEFAULT_BRIDGE: bool = false;

/// `run`'s flags: stage 04's (and before it), and the ports.
#[derive(Args)]
pub struct RunArgs {
    /// Flags of stage 04 (and before it), `--network` among them.
    #[command(flatten)]
    pub run: images::cli::RunArgs,

    /// Publish a container's port on the host: [IP:]HOST:CONTAINER[/udp]
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
}

/// The `network` commands.
#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create {
        /// Where the store is.
        #[command(flatten)]
        root: RootArgs,
        /// The network's IPv4 subnet (default: a free /24)
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        /// The network's name
        name: String,
    },
    /// List the networks
    #[command(visible_alias = "list")]
    Ls {
        /// Where the store is.
        #[command(flatten)]
        root: RootArgs,
    },
    /// Remove networks
    #[command(visible_alias = "remove")]
    Rm {
        /// Where the store is.
        #[command(flatten)]
        root: RootArgs,
        /// The networks
        #[arg(required = true)]
        names: Vec<String>,
    },
}

impl NetworkCommand {
    /// Runs the command; Docker's exit code 1 for its errors.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            NetworkCommand::Create { root, subnet, name } => {
                written(|| network::create(&root.root, &name, subnet.as_deref()))??;
                println!("{name}");
            }
            NetworkCommand::Ls { root } => {
                let networks = written(|| network::list(&root.root))??;
                println!("{:<20} {:<16} SUBNET", "NAME", "DRIVER");
                for n in networks {
                    println!("{:<20} {:<16} {}", n.name, "bridge", n.subnet);
                }
            }
            NetworkCommand::Rm { root, names } => {
                for name in names {
                    written(|| network::remove(&root.root, &name))??;
                    println!("{name}");
                }
            }
        }
        Ok(0)
    }
}

/// `run`: stage 04's container, on your network when one is asked for.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    // Root, before anything else: a network or a volume store is no place to find out.
    chroot::launch::require_root()?;
    let id = ContainerId::random().context("make a container id")?;
    let mode = args.run.namespaces.network_mode();
    let wanted = match &mode {
        NetworkMode::Other(name) => Some(name.clone()),
        NetworkMode::None if args.run.namespaces.network.is_none() => {
            (DEFAULT_BRIDGE || !args.publish.is_empty()).then(|| "bridge".to_string())
        }
        _ => None,
    };
    let Some(name) = wanted else {
        if !args.publish.is_empty() {
            anyhow::bail!(
                "-p needs a network of the container's own, not --network {:?}",
                args.run.namespaces.network.as_deref().unwrap_or_default()
            );
        }
        // Stage 04's container, as it was.
        let prepared = images::cli::prepare_run(&args.run, id, &mode)?;
        args.run.namespaces.write_cidfile(&prepared.container.id)?;
        return images::cli::launch_prepared("my-skiff-05", prepared);
    };
    let network = written(|| network::find(&args.run.namespaces.root, &name))??;
    let mut prepared = images::cli::prepare_run(&args.run, id, &NetworkMode::Other(name))?;
    let id = prepared.container.id.full().to_string();
    prepared.container.prepared.add(Attach {
        network,
        id,
        publish: args.publish.clone(),
        endpoint: None,
    });
    args.run.namespaces.write_cidfile(&prepared.container.id)?;
    images::cli::launch_prepared("my-skiff-05", prepared)
}

/// Your network pieces, at their fixed point of the launch sequence: the container goes on the
/// network once it exists (its network namespace with it) and before it runs.
struct Attach {
    network: Network,
    id: String,
    publish: Vec<String>,
    endpoint: Option<Endpoint>,
}

impl Feature for Attach {
    fn name(&self) -> &'static str {
        "network"
    }

    fn slot(&self) -> Slot {
        Slot::Network
    }

    fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
        Ok(())
    }

    fn started(&mut self, child: &Started) -> Result<(), FeatureError> {
        let (network, id) = (&self.network, &self.id);
        let endpoint = in_hook(|| network::attach(network, id, child.pid.as_raw()))?;
        let endpoint = self.endpoint.insert(endpoint);
        for spec in &self.publish {
            in_hook(|| network::publish(endpoint, spec))?;
        }
        Ok(())
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        match self.endpoint.take() {
            Some(endpoint) => in_hook(|| network::detach(&endpoint)),
            None => Ok(()),
        }
    }
}
