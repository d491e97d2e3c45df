//! `my-skiff-07`: your engine at stage 07. Containers that outlive the command that started
//! them: a record of each, a monitor that stays with it, and the commands that manage it.
//!
//! ```text
//! my-skiff-07 run -d [FLAGS] IMAGE [COMMAND...]      (without -d: stage 06's run)
//! my-skiff-07 ps [-a] [-q] | logs CONTAINER | stop CONTAINER... | rm [-f] CONTAINER...
//! my-skiff-07 volume ... | network ... | load|save|build|images|...   (stages 04 to 06)
//! ```
//!
//! Stages 01 to 06 come from skiff's libraries; the pieces of stage 07 are yours, in
//! `container.rs`; `wiring.rs` plugs them into the command line (book: chapter 7). The other
//! container commands (`start`, `restart`, `exec`, `inspect`, `wait`, `kill`...) are yours to
//! add the same way.

mod container;
mod starter;
mod wiring;

use chroot::cli;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use images::cli::ImageCommand;
use networking::cli::NetworkCommand;
use volumes::cli::VolumeCommand;

/// Your engine, stage 07: containers as managed objects.
#[derive(Parser)]
#[command(name = "my-skiff-07", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container
    Run(Box<wiring::RunArgs>),
    #[command(flatten)]
    Container(wiring::ContainerCommand),
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
    starter::install();
    let cli = parse();
    let result = match cli.command {
        Command::Run(args) => wiring::run(*args),
        Command::Container(command) => command.execute(),
        Command::Volume { command } => command.execute(),
        Command::Network { command } => command.execute(),
        Command::Image(command) => command.execute(),
    };
    cli::finish("my-skiff-07", result);
}

/// Parses the command line, as `chroot::cli::parse` does (a usage error exits 125), with one
/// change: stage 04's `rmi` also answered to `rm`; from this stage on `rm` removes containers.
fn parse() -> Cli {
    let command = Cli::command().mut_subcommand("rmi", |rmi| rmi.alias(None));
    match command
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() {
                cli::EXIT_ENGINE
            } else {
                0
            };
            let _ = err.print();
            std::process::exit(code);
        }
    }
}
