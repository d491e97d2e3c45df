//! How your pieces plug into the command line and the launch: `-v`, `--tmpfs`, the `volume`
//! commands, and one [`Feature`] in the volumes' slot whose `prepare` writes your mounts into
//! the plan. Read it; you should not need to change it until every piece is written.
//!
//! A run with `-v` or `--tmpfs` asks for stage 06, and a piece still `todo!()` stops it before
//! the container starts, with the piece's name (see `starter.rs`); so do the `volume` commands.
//! Any other run is stage 05's container, untouched.

use std::path::PathBuf;

use anyhow::Context;
use chroot::{Feature, FeatureError, Plan, Slot};
use clap::{Args, Subcommand};
use namespaces::{ContainerId, RootArgs};

use crate::hooks::in_hook;
use crate::starter::written;
use crate::volume::{self, Volume};

/// `run`'s flags: stage 05's (and before it), and the mounts.
#[derive(Args)]
pub struct RunArgs {
    /// Flags of stage 05 (and before it).
    #[command(flatten)]
    pub network: networking::cli::RunArgs,

    /// Mount a volume or a host directory: NAME:/PATH[:ro] or /HOST:/PATH[:ro]
    #[arg(short = 'v', long = "volume", value_name = "SPEC")]
    pub volume: Vec<String>,

    /// Mount a tmpfs: /PATH[:OPTIONS]
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    pub tmpfs: Vec<String>,
}

/// The `volume` commands.
#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create {
        /// Where the store is.
        #[command(flatten)]
        root: RootArgs,
        /// The volume's name
        name: String,
    },
    /// List the volumes
    #[command(visible_alias = "list")]
    Ls {
        /// Where the store is.
        #[command(flatten)]
        root: RootArgs,
    },
    /// Remove volumes
    #[command(visible_alias = "remove")]
    Rm {
        /// Where the store is.
        #[command(flatten)]
        root: RootArgs,
        /// The volumes
        #[arg(required = true)]
        names: Vec<String>,
    },
}

impl VolumeCommand {
    /// Runs the command.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            VolumeCommand::Create { root, name } => {
                written(|| volume::create(&root.root, &name))??;
                println!("{name}");
            }
            VolumeCommand::Ls { root } => {
                let names = written(|| volume::list(&root.root))??;
                println!("{:<16}VOLUME NAME", "DRIVER");
                for name in names {
                    println!("{:<16}{name}", "local");
                }
            }
            VolumeCommand::Rm { root, names } => {
                for name in names {
                    written(|| volume::remove(&root.root, &name))??;
                    println!("{name}");
                }
            }
        }
        Ok(0)
    }
}

/// `run`: stage 05's container, with your mounts when any are asked for.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    // Root, before anything else: a network or a volume store is no place to find out.
    chroot::launch::require_root()?;
    let id = ContainerId::random().context("make a container id")?;
    let store = args.network.run.namespaces.root.clone();
    // Every flag is checked before anything exists on the host.
    let mut volumes = Vec::new();
    for spec in &args.volume {
        let volume = written(|| volume::parse(spec))??;
        let source = written(|| volume::source(&store, &volume))??;
        volumes.push((source, volume));
    }
    let mut prepared = networking::cli::prepare(&args.network, id)?;
    if !volumes.is_empty() || !args.tmpfs.is_empty() {
        prepared.container.prepared.add(Mounts {
            volumes,
            tmpfs: args.tmpfs.clone(),
        });
    }
    args.network
        .run
        .namespaces
        .write_cidfile(&prepared.container.id)?;
    images::cli::launch_prepared("my-skiff-06", prepared)
}

/// Your mounts, at their fixed point of the launch sequence: after the root exists (an image's
/// overlay, stage 02's mounts), before it is sealed read-only and changed into.
struct Mounts {
    volumes: Vec<(PathBuf, Volume)>,
    tmpfs: Vec<String>,
}

impl Feature for Mounts {
    fn name(&self) -> &'static str {
        "volumes"
    }

    fn slot(&self) -> Slot {
        Slot::Volumes
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        for (source, volume) in &self.volumes {
            in_hook(|| volume::mount(plan, source, volume))?;
        }
        for spec in &self.tmpfs {
            in_hook(|| volume::mount_tmpfs(plan, spec))?;
        }
        Ok(())
    }
}
