//! `images`: skiff as it stands after stage 04. Containers run from images: layers in a
//! content-addressed store, stacked with overlayfs; images loaded, saved, imported, tagged,
//! inspected, built from Dockerfiles and committed from a container's changes.
//!
//! ```text
//! images run [FLAGS] IMAGE [COMMAND [ARG...]]      (or run --rootfs DIR COMMAND, as before)
//! images load -i FILE | save -o FILE IMAGE... | import FILE [NAME[:TAG]]
//! images images | rmi IMAGE... | tag SOURCE TARGET | inspect IMAGE... | history IMAGE
//! images build [-t NAME[:TAG]]... [-f FILE] [--build-arg K=V]... [--no-cache] [-q] DIR
//! images pull [--platform OS/ARCH] NAME[:TAG|@DIGEST] | push NAME[:TAG] | search [REGISTRY/]TERM
//! images login [SERVER] -u USER --password-stdin | logout [SERVER]
//! ```

use chroot::cli;
use clap::{Parser, Subcommand};
use images::cli::{ImageCommand, RunArgs};

/// skiff, stage 04: run containers from images.
#[derive(Parser)]
#[command(name = "images", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container of an image (or of a --rootfs directory)
    Run(Box<RunArgs>),
    #[command(flatten)]
    Image(ImageCommand),
}

fn main() {
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => images::cli::run(*args),
        Command::Image(command) => command.execute(),
    };
    cli::finish("images", result);
}
