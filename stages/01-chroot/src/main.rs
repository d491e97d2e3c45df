//! `chroot`: skiff as it stands after stage 01. Runs a command with another directory as its
//! root, passing stdio, the environment you give it and its exit status through.
//!
//! ```text
//! chroot run --rootfs DIR [-w DIR] [-e KEY=VALUE]... [--] COMMAND [ARG...]
//! ```

use chroot::cli::{self, RunArgs};
use clap::{Parser, Subcommand};

/// skiff, stage 01: run a command in another root directory.
#[derive(Parser)]
#[command(name = "chroot", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command with DIR as its root directory
    Run(RunArgs),
}

fn main() {
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
    };
    cli::finish("chroot", result);
}

// ANCHOR: main_run
fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut prepared = args.prepare()?;
    cli::launch_and_wait("chroot", &mut prepared)
}
// ANCHOR_END: main_run
