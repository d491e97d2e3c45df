//! `cgroups`: skiff as it stands after stage 03. Stage 02's container, plus a cgroup of its own
//! that limits what it may use and counts what it used.
//!
//! ```text
//! cgroups run --rootfs DIR [--memory 64m] [--cpus 0.5] [--pids-limit 100] [--cpuset-cpus 0] [--stats] ... [--] COMMAND [ARG...]
//! ```

use std::path::PathBuf;

use cgroups::CgroupArgs;
use chroot::Process;
use chroot::cli::{self, ProcessArgs};
use clap::{Parser, Subcommand};
use namespaces::NamespaceArgs;

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

    #[command(flatten)]
    cgroup: CgroupArgs,

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
    cli::finish("cgroups", result);
}

// ANCHOR: main_run
fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut process = Process::new(args.command);
    args.process.apply(&mut process)?;
    // Every flag is checked before anything exists on the host.
    let id = namespaces::ContainerId::random()?;
    let cgroup = args.cgroup.feature(id.full())?;
    let network = args.namespaces.checked_network()?;
    let read = namespaces::user::read_in(&args.rootfs);
    let mut container =
        args.namespaces
            .build_with(id, &args.rootfs, &read, &mut process, &network)?;
    container.features.push(Box::new(cgroup));
    args.namespaces.write_cidfile(&container.id)?;

    cli::launch_and_wait("cgroups", &process, &mut container.features)
}
// ANCHOR_END: main_run
