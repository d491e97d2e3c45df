//! `my-skiff-02`: your engine at stage 02. Stage 01's container, in namespaces of its own,
//! behind pivot_root.
//!
//! ```text
//! my-skiff-02 run --rootfs DIR [--hostname NAME] [-w DIR] [-e KEY=VALUE]... [--] COMMAND [ARG...]
//! ```
//!
//! Stage 01 comes from skiff's `chroot` library; the pieces of stage 02 are yours, in
//! `namespaces.rs`; `wiring.rs` plugs them into stage 01's launch (book: chapter 2).

mod namespaces;
mod starter;
mod wiring;

use chroot::cli;
use clap::{Args, Parser, Subcommand};

/// Your engine, stage 02: run a command in its own namespaces.
#[derive(Parser)]
#[command(name = "my-skiff-02", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in new namespaces with DIR as its root
    Run(RunArgs),
}

/// `run`'s flags at stage 02: stage 01's, and the ones you add.
#[derive(Args)]
struct RunArgs {
    /// Stage 01's flags: `--rootfs`, `-w`, `-e`, the command.
    #[command(flatten)]
    base: chroot::cli::RunArgs,

    /// The container's hostname (in its own UTS namespace)
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
}

fn main() {
    starter::install();
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
    };
    cli::finish("my-skiff-02", result);
}

/// Stage 01's container, plus your pieces, launched.
fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut prepared = args.base.prepare()?;
    wiring::add(&mut prepared, &args.base.rootfs, args.hostname.as_deref())?;
    cli::launch_and_wait("my-skiff-02", &mut prepared)
}
