//! `volumes`: skiff as it stands after stage 06. Stage 05's containers, with data that outlives
//! them: named and anonymous volumes, bind mounts of host paths, tmpfs mounts, a read-only root.
//!
//! ```text
//! volumes run [-v NAME:/PATH[:ro]] [-v /HOST:/PATH[:ro]] [--mount type=...,src=...,dst=...]
//!             [--tmpfs /PATH[:OPTS]] [--read-only] [FLAGS] IMAGE [COMMAND...]
//! volumes volume create [NAME] | ls | inspect NAME... | rm NAME... | prune [-a]
//! volumes network ...                                      (stage 05's network commands)
//! volumes load|save|build|images|rmi|pull|push|...         (stage 04's image commands)
//! ```

use chroot::cli;
use clap::{Parser, Subcommand};
use images::cli::ImageCommand;
use networking::cli::NetworkCommand;
use volumes::cli::{RunArgs, VolumeCommand};

/// skiff, stage 06: containers with volumes.
#[derive(Parser)]
#[command(name = "volumes", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container, with volumes
    Run(Box<RunArgs>),
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        command: VolumeCommand,
    },
    /// Manage networks
    Network {
        #[command(subcommand)]
        command: NetworkCommand,
    },
    #[command(flatten)]
    Image(ImageCommand),
}

fn main() {
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => volumes::cli::run(*args),
        Command::Volume { command } => command.execute(),
        Command::Network { command } => command.execute(),
        Command::Image(command) => command.execute(),
    };
    cli::finish("volumes", result);
}
