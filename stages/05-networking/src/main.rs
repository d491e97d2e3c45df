//! `networking`: skiff as it stands after stage 05. Stage 04's containers, each on a network:
//! the default bridge (NAT to the outside), a user-defined bridge (where containers reach each
//! other by name), a macvlan (an address on a host link), the host's network, or none; ports
//! published on the host with `-p`.
//!
//! ```text
//! networking run [--network bridge|NAME|host|none] [-p [IP:]HOST:CONT[/udp]]... [--name N] [--ip IP] [FLAGS] IMAGE [COMMAND...]
//! networking network create [-d bridge|macvlan] [--subnet CIDR] [-o parent=LINK] NAME
//! networking network ls | inspect NAME... | rm NAME... | prune
//! networking load|save|build|images|rmi|pull|push|...      (stage 04's image commands)
//! ```

use chroot::cli;
use clap::{Parser, Subcommand};
use images::cli::ImageCommand;
use networking::cli::{NetworkCommand, RunArgs};

/// skiff, stage 05: containers with networks.
#[derive(Parser)]
#[command(name = "networking", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container, on a network
    Run(Box<RunArgs>),
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
        Command::Run(args) => networking::cli::run(*args),
        Command::Network { command } => command.execute(),
        Command::Image(command) => command.execute(),
    };
    cli::finish("networking", result);
}
