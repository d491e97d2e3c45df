//! `my-skiff-03`: your engine at stage 03. Stage 02's container, in a cgroup of its own that
//! limits what it may use.
//!
//! ```text
//! my-skiff-03 run --rootfs DIR [--memory 64m] [--pids-limit N] [--cpus 0.5] [FLAGS] [--] COMMAND [ARG...]
//! ```
//!
//! Stages 01 and 02 come from skiff's `chroot` and `namespaces` libraries; the pieces of stage
//! 03 are yours, in `cgroup.rs`; `wiring.rs` plugs them into the launch (book: chapter 3).

mod cgroup;
mod hooks;
mod starter;
mod wiring;

use chroot::cli;
use clap::{Args, Parser, Subcommand};

/// Your engine, stage 03: run a command in its own namespaces and cgroup.
#[derive(Parser)]
#[command(name = "my-skiff-03", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in new namespaces and a cgroup of its own, with DIR as its root
    Run(RunArgs),
}

/// `run`'s flags at stage 03: stage 02's (and stage 01's within them), and the limits.
#[derive(Args)]
struct RunArgs {
    /// Stage 02's flags.
    #[command(flatten)]
    base: namespaces::RunArgs,

    /// Stage 03's flags.
    #[command(flatten)]
    limits: wiring::LimitFlags,
}

fn main() {
    starter::install();
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
    };
    cli::finish("my-skiff-03", result);
}

/// Stage 02's container, in your cgroup when a limit is asked for, launched.
fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut container = args.base.prepare()?;
    wiring::add(&mut container, &args.limits)?;
    args.base.namespaces.write_cidfile(&container.id)?;
    cli::launch_and_wait("my-skiff-03", &mut container.prepared)
}
