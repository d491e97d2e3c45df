//! How your pieces plug into the command line: `run -d` and the container commands call your
//! [`container`] pieces. Read it; you should not need to change it until every piece is written.
//!
//! `run -d`, `ps`, `logs`, `stop` and `rm` ask for stage 07, and a piece still `todo!()` stops
//! them with the piece's name (see `starter.rs`). A `run` without `-d` is stage 06's, untouched
//! (the container ends with its command and leaves no record); once [`container::run_detached`]
//! and [`container::list`] are written, make it keep a record too, so that `ps -a` shows it.

use anyhow::Context;
use clap::{Args, Subcommand};
use namespaces::RootArgs;

use crate::container;
use crate::starter::written;

/// `run`'s flags: stage 06's (and before it), and `-d`.
#[derive(Args)]
pub struct RunArgs {
    /// Flags of stage 06 (and before it).
    #[command(flatten)]
    pub volumes: volumes::cli::RunArgs,

    /// Run in the background and print the container's id
    #[arg(short = 'd', long)]
    pub detach: bool,
}

/// The container commands.
#[derive(Subcommand)]
pub enum ContainerCommand {
    /// List containers
    Ps {
        /// Where the store is.
        #[command(flatten)]
        root: RootArgs,
        /// The stopped ones too
        #[arg(short, long)]
        all: bool,
        /// Only the ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print a container's log
    Logs {
        /// Where the store is.
        #[command(flatten)]
        root: RootArgs,
        /// The container
        container: String,
    },
    /// Stop running containers
    Stop {
        /// Where the store is.
        #[command(flatten)]
        root: RootArgs,
        /// Seconds to wait before killing it
        #[arg(short, long, default_value_t = 10)]
        time: u64,
        /// The containers
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers
    Rm {
        /// Where the store is.
        #[command(flatten)]
        root: RootArgs,
        /// Kill a running one first
        #[arg(short, long)]
        force: bool,
        /// The containers
        #[arg(required = true)]
        containers: Vec<String>,
    },
}

impl ContainerCommand {
    /// Runs the command.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            ContainerCommand::Ps { root, all, quiet } => {
                let listed = written(|| container::list(&root.root, all))??;
                if !quiet {
                    println!(
                        "{:<14}{:<20}{:<24}{:<28}NAMES",
                        "CONTAINER ID", "IMAGE", "COMMAND", "STATUS"
                    );
                }
                for c in listed {
                    let short = c.id.get(..12).unwrap_or(&c.id);
                    if quiet {
                        println!("{short}");
                    } else {
                        let command = format!("{:?}", c.command);
                        println!(
                            "{short:<14}{:<20}{command:<24}{:<28}{}",
                            c.image, c.status, c.name
                        );
                    }
                }
            }
            ContainerCommand::Logs { root, container } => {
                written(|| container::logs(&root.root, &container))??;
            }
            ContainerCommand::Stop {
                root,
                time,
                containers,
            } => {
                for name in containers {
                    written(|| container::stop(&root.root, &name, time))??;
                    println!("{name}");
                }
            }
            ContainerCommand::Rm {
                root,
                force,
                containers,
            } => {
                for name in containers {
                    written(|| container::remove(&root.root, &name, force))??;
                    println!("{name}");
                }
            }
        }
        Ok(0)
    }
}

/// `run`: stage 06's, or with `-d` your detached container.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    if !args.detach {
        return volumes::cli::run(args.volumes);
    }
    chroot::launch::require_root()?;
    let store = args.volumes.network.run.namespaces.root.clone();
    let json = serde_json::to_string(&args.volumes).context("describe the container")?;
    let id = written(|| container::run_detached(&store, &json))??;
    println!("{id}");
    Ok(0)
}
