//! `namespaces`: skiff as it stands after stage 02. Like stage 01's `chroot`, but the command
//! runs in new namespaces, behind pivot_root, with its own /proc, /sys and /dev and Docker's
//! default capabilities.
//!
//! ```text
//! namespaces run --rootfs DIR [--hostname NAME] [--pid host] [--userns remap] [--init] ... [--] COMMAND [ARG...]
//! ```

use chroot::cli;
use clap::{Parser, Subcommand};
use namespaces::RunArgs;

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

fn main() {
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
    };
    cli::finish("namespaces", result);
}

// ANCHOR: main_run
fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut container = args.prepare()?;
    args.namespaces.write_cidfile(&container.id)?;
    cli::launch_and_wait("namespaces", &mut container.prepared)
}
// ANCHOR_END: main_run
