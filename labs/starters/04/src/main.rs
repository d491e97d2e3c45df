//! `my-skiff-04`: your engine at stage 04. Containers run from images: layers in a store of your
//! own, stacked with overlayfs.
//!
//! ```text
//! my-skiff-04 run [FLAGS] IMAGE [COMMAND [ARG...]]      (or run --rootfs DIR COMMAND, as before)
//! my-skiff-04 load [-q] -i FILE
//! my-skiff-04 images
//! ```
//!
//! Stages 01 to 03 come from skiff's libraries; the pieces of stage 04 are yours, in
//! `image.rs`; `wiring.rs` plugs them into the command line and the launch (book: chapter 4).
//! The other image commands (`save`, `rmi`, `tag`, `inspect`, `build`...) are yours to add.

mod hooks;
mod image;
mod starter;
mod wiring;

use chroot::cli;
use clap::{Parser, Subcommand};

/// Your engine, stage 04: run containers from images.
#[derive(Parser)]
#[command(name = "my-skiff-04", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container of an image (or of a --rootfs directory)
    Run(Box<wiring::RunArgs>),
    /// Load images from a docker-archive
    Load(wiring::LoadArgs),
    /// List the images in the store
    Images(wiring::ListArgs),
}

fn main() {
    starter::install();
    let cli: Cli = cli::parse();
    let result = match cli.command {
        Command::Run(args) => wiring::run(*args),
        Command::Load(args) => wiring::load(&args),
        Command::Images(args) => wiring::images(&args),
    };
    cli::finish("my-skiff-04", result);
}
