//! `export`: a container's file system as one tar. See docker-container-export(1).
//!
//! The archive holds what the container's processes see of its image: the image's layers
//! with the container's changes on top (the overlay, [`crate::rootfs::View::Layers`]), and
//! nothing of its volumes, `/proc` or `/sys`. Entries are named without a leading `/`
//! (`bin/sh`), as Docker names them, so `skiff import` (or `docker import`) makes an image of
//! it again. Like Docker, `export` will not write binary data to a terminal.

use std::io::{IsTerminal, Write};

use anyhow::{Context, bail};
use clap::Args;
use namespaces::RootArgs;
use nix::fcntl::OFlag;

use crate::archive::Packer;
use crate::rootfs::View;

/// `export`'s flags.
#[derive(Args)]
pub struct ExportArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

// ANCHOR: export
/// `export`.
pub fn command(args: &ExportArgs) -> anyhow::Result<i32> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let root = &args.root.root;
    let record = crate::lifecycle::find(root, &args.container)?;
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("create {}", path.display()))?;
            write(root, &record, file)?;
        }
        None => write(root, &record, std::io::stdout().lock())?,
    }
    Ok(0)
}

/// The container's file system as a tar, written to `out` (the API's `export` too).
pub fn write(
    root: &std::path::Path,
    record: &crate::container::Record,
    out: impl Write,
) -> anyhow::Result<()> {
    let fs = crate::rootfs::open(root, record, View::Layers)?;
    let top = fs.root.open("/", OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    let mut packer = Packer::new(
        std::io::BufWriter::new(out),
        true,
        crate::rootfs::ids(record),
    );
    packer.contents(&top, None)?;
    packer.finish()?.flush()?;
    Ok(())
}
// ANCHOR_END: export
