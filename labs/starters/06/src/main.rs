//! `my-skiff-06`: your engine at stage 06. Stage 05's containers, with data that outlives them:
//! named volumes, bind mounts of host directories, tmpfs mounts.
//!
//! ```text
//! my-skiff-06 run [-v NAME:/PATH[:ro]] [-v /HOST:/PATH[:ro]] [--tmpfs /PATH] [FLAGS] IMAGE [COMMAND...]
//! my-skiff-06 volume create [NAME] | ls | rm NAME...
//! my-skiff-06 network ...                                   (stage 05's network commands)
//! my-skiff-06 load|save|build|images|rmi|pull|...           (stage 04's image commands)
//! ```
//!
//! Stages 01 to 05 come from skiff's libraries; the pieces of stage 06 are yours, in
//! `volume.rs`; `wiring.rs` plugs them into the command line and the launch (book: chapter 6).

mod hooks;
mod starter;
mod volume;
mod wiring;

use chroot::cli;
use clap::{Parser, Subcommand};
use images::cli::ImageCommand;
use networking::cli::NetworkCommand;

/// Your engine, stage 06: containers with volumes.
#[derive(Parser)]
#[command(name = "my-skiff-06", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container, with volumes
    Run(Box<wiring::RunArgs>),
    /// Manage volumes
    Volume {
        #[command(subcommand)]
        command: wiring::VolumeCommand,
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
    starter::install();
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => wiring::run(*args),
        Command::Volume { command } => command.execute(),
        Command::Network { command } => command.execute(),
        Command::Image(command) => command.execute(),
    };
    cli::finish("my-skiff-06", result);
}
