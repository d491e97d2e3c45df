//! `my-skiff-05`: your engine at stage 05. Stage 04's containers, each on a network of yours:
//! a bridge with addresses, NAT, published ports.
//!
//! ```text
//! my-skiff-05 run [--network NAME] [-p HOST:CONT]... [FLAGS] IMAGE [COMMAND...]
//! my-skiff-05 network create [--subnet CIDR] NAME | ls | rm NAME...
//! my-skiff-05 load|save|build|images|rmi|pull|...      (stage 04's image commands)
//! ```
//!
//! Stages 01 to 04 come from skiff's libraries; the pieces of stage 05 are yours, in
//! `network.rs`; `wiring.rs` plugs them into the command line and the launch (book: chapter 5).

mod hooks;
mod network;
mod starter;
mod wiring;

use chroot::cli;
use clap::{Parser, Subcommand};
use images::cli::ImageCommand;

/// Your engine, stage 05: containers with networks.
#[derive(Parser)]
#[command(name = "my-skiff-05", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container, on a network
    Run(Box<wiring::RunArgs>),
    /// Manage networks
    Network {
        #[command(subcommand)]
        command: wiring::NetworkCommand,
    },
    #[command(flatten)]
    Image(ImageCommand),
}

fn main() {
    starter::install();
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => wiring::run(*args),
        Command::Network { command } => command.execute(),
        Command::Image(command) => command.execute(),
    };
    cli::finish("my-skiff-05", result);
}
