//! `chroot`: skiff as it stands after stage 01. Runs a command with another directory as its
//! root, passing stdio, the environment you give it and its exit status through.
//!
//! ```text
//! chroot run --rootfs DIR [-w DIR] [-e KEY=VALUE]... [--] COMMAND [ARG...]
//! ```

use std::path::PathBuf;

use chroot::cli::{self, ProcessArgs};
use chroot::{ChangeRoot, Feature, Process};
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

// ANCHOR: run_args
#[derive(clap::Args)]
struct RunArgs {
    /// The directory that becomes the command's root
    #[arg(long, value_name = "DIR")]
    rootfs: PathBuf,

    #[command(flatten)]
    process: ProcessArgs,

    /// The command to run and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}
// ANCHOR_END: run_args

fn main() {
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
    };
    cli::finish("chroot", result);
}

// ANCHOR: main_run
fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut process = Process::new(args.command);
    args.process.apply(&mut process)?;
    let mut features: Vec<Box<dyn Feature>> = vec![Box::new(ChangeRoot::new(args.rootfs))];

    cli::launch_and_wait("chroot", &process, &mut features)
}
// ANCHOR_END: main_run
