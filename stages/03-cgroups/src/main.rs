//! `cgroups`: skiff as it stands after stage 03. Stage 02's container, plus a cgroup of its own
//! that limits what it may use and counts what it used.
//!
//! ```text
//! cgroups run --rootfs DIR [--memory 64m] [--cpus 0.5] [--pids-limit 100] [--cpuset-cpus 0] [--stats] ... [--] COMMAND [ARG...]
//! ```

use cgroups::cli::RunArgs;
use chroot::cli;
use clap::{Parser, Subcommand};

/// skiff, stage 03: run a command in its own namespaces and cgroup.
#[derive(Parser)]
#[command(name = "cgroups", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in new namespaces and a cgroup of its own, with DIR as its root
    Run(RunArgs),
}

fn main() {
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
    };
    cli::finish("cgroups", result);
}

// ANCHOR: main_run
fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut container = args.prepare()?;
    args.base.namespaces.write_cidfile(&container.id)?;
    cli::launch_and_wait("cgroups", &mut container.prepared)
}
// ANCHOR_END: main_run
