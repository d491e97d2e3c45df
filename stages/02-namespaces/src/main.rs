//! `namespaces`: skiff as it stands after stage 02. Like stage 01's `chroot`, but the command
//! runs in new namespaces, behind pivot_root, with its own /proc, /sys and /dev and Docker's
//! default capabilities.
//!
//! ```text
//! namespaces run --rootfs DIR [--hostname NAME] [--pid host] [--userns remap] [--init] ... [--] COMMAND [ARG...]
//! ```

use std::path::PathBuf;

use chroot::Process;
use chroot::cli::{self, ProcessArgs};
use clap::{Parser, Subcommand};
use namespaces::NamespaceArgs;

/// skiff, stage 02: run a command in its own namespaces.
#[derive(Parser)]
#[command(name = "namespaces", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in new namespaces with DIR as its root
    Run(RunArgs),
}

// ANCHOR: run_args
#[derive(clap::Args)]
struct RunArgs {
    /// The directory that becomes the container's root
    #[arg(long, value_name = "DIR")]
    rootfs: PathBuf,

    #[command(flatten)]
    process: ProcessArgs,

    #[command(flatten)]
    namespaces: NamespaceArgs,

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
    cli::finish("namespaces", result);
}

// ANCHOR: main_run
fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut process = Process::new(args.command);
    args.process.apply(&mut process)?;
    let mut container = args.namespaces.build(&args.rootfs, &mut process)?;
    args.namespaces.write_cidfile(&container.id)?;

    cli::launch_and_wait("namespaces", &process, &mut container.features)
}
// ANCHOR_END: main_run
