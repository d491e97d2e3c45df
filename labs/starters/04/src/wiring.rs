//! How your pieces plug into the command line and the launch: the flags of `run`, `load` and
//! `images`, and one [`Feature`] in the image's slot whose hooks mount and unmount your overlay.
//! Read it; you should not need to change it until every piece is written.
//!
//! `run --rootfs DIR` is stage 03's container, untouched, so labs 01 to 03 pass whatever you
//! have written. `run IMAGE`, `load` and `images` ask for stage 04, and a piece still `todo!()`
//! stops them before anything exists on the host, with the piece's name (see `starter.rs`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use cgroups::limits::CgroupArgs;
use chroot::cli::ProcessArgs;
use chroot::{Feature, FeatureError, Plan, Slot};
use clap::Args;
use namespaces::{Base, ContainerId, NamespaceArgs, RootArgs};

use crate::hooks::in_hook;
use crate::image;
use crate::starter::written;

/// `run`'s flags: stages 01 to 03's, and the image.
#[derive(Args)]
pub struct RunArgs {
    /// Run in this directory instead of an image (stages 01 to 03)
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// Stage 01's flags: `-w`, `-e`.
    #[command(flatten)]
    pub process: ProcessArgs,

    /// Stage 02's flags.
    #[command(flatten)]
    pub namespaces: NamespaceArgs,

    /// Stage 03's flags.
    #[command(flatten)]
    pub cgroup: CgroupArgs,

    /// The image (unless --rootfs is given), then the command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND]"
    )]
    pub args: Vec<String>,
}

/// `load`'s flags.
#[derive(Args)]
pub struct LoadArgs {
    /// Where the store is.
    #[command(flatten)]
    store: RootArgs,
    /// The archive to read
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: PathBuf,
    /// Print nothing but errors
    #[arg(short, long)]
    quiet: bool,
}

/// `images`'s flags.
#[derive(Args)]
pub struct ListArgs {
    /// Where the store is.
    #[command(flatten)]
    store: RootArgs,
}

/// `load -i FILE`.
pub fn load(args: &LoadArgs) -> anyhow::Result<i32> {
    let names = written(|| image::load(&args.store.root, &args.input))??;
    if !args.quiet {
        for name in names {
            println!("Loaded image: {name}");
        }
    }
    Ok(0)
}

/// `images`, with Docker's columns.
pub fn images(args: &ListArgs) -> anyhow::Result<i32> {
    let rows = written(|| image::list(&args.store.root))??;
    println!(
        "{:<20} {:<10} {:<14} {:<16} SIZE",
        "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
    );
    for row in rows {
        println!(
            "{:<20} {:<10} {:<14} {:<16} {}",
            row.repository, row.tag, row.id, row.created, row.size
        );
    }
    Ok(0)
}

/// `run`: stage 03's container in `--rootfs`, or one of an image on your overlay.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let id = ContainerId::random().context("make a container id")?;
    let network = args.namespaces.checked_network()?;
    let mut container = match &args.rootfs {
        Some(rootfs) => {
            let stage03 = cgroups::cli::RunArgs {
                base: namespaces::RunArgs {
                    base: chroot::cli::RunArgs {
                        rootfs: rootfs.clone(),
                        process: args.process.clone(),
                        command: args.args.clone(),
                    },
                    namespaces: args.namespaces.clone(),
                },
                cgroup: args.cgroup.clone(),
            };
            stage03.prepare_on(id, network)?
        }
        None => {
            let (name, command) = args.args.split_first().context("no image given")?;
            let image = written(|| image::find(&args.namespaces.root, name))??;
            let dir = args.namespaces.root.join("containers").join(id.full());
            let merged = dir.join("merged");
            // ENTRYPOINT, then the command given or the image's CMD.
            let mut argv = image.entrypoint.clone();
            argv.extend(if command.is_empty() {
                image.cmd.clone()
            } else {
                command.to_vec()
            });
            let stage01 = chroot::cli::RunArgs {
                rootfs: merged.clone(),
                process: args.process.clone(),
                command: argv,
            };
            let mut prepared = stage01.prepare()?;
            for pair in &image.env {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if prepared.process.get_env(key).is_none() {
                    prepared.process.set_env(key, value);
                }
            }
            if let (None, Some(workdir)) = (&args.process.workdir, &image.workdir) {
                prepared.process.cwd = workdir.clone();
            }
            let read = namespaces::user::read_in(&merged);
            let base = Base {
                prepared,
                rootfs: merged.clone(),
                read: &read,
                id,
                network,
            };
            let mut container = cgroups::cli::prepare(base, &args.namespaces, &args.cgroup)?;
            container.prepared.add(Overlay {
                layers: image.layers,
                dir,
                mounted: false,
            });
            container
        }
    };
    args.namespaces.write_cidfile(&container.id)?;
    chroot::cli::launch_and_wait("my-skiff-04", &mut container.prepared)
}

/// Your overlay, at its fixed point of the launch sequence: mounted before the root changes
/// into it, unmounted after the container exited (its state directory, with the upper dir,
/// goes after that).
struct Overlay {
    layers: Vec<PathBuf>,
    dir: PathBuf,
    mounted: bool,
}

fn make_dir(dir: &Path) -> Result<(), FeatureError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| FeatureError::msg(format!("create {}: {e}", dir.display())))
}

impl Feature for Overlay {
    fn name(&self) -> &'static str {
        "overlay"
    }

    fn slot(&self) -> Slot {
        Slot::Image
    }

    fn prepare(&mut self, _plan: &mut Plan) -> Result<(), FeatureError> {
        let (upper, work, merged) = (
            self.dir.join("upper"),
            self.dir.join("work"),
            self.dir.join("merged"),
        );
        for dir in [&upper, &work, &merged] {
            make_dir(dir)?;
        }
        in_hook(|| image::mount_overlay(&self.layers, &upper, &work, &merged))?;
        self.mounted = true;
        Ok(())
    }

    fn cleanup(&mut self) -> Result<(), FeatureError> {
        if !self.mounted {
            return Ok(());
        }
        self.mounted = false;
        let merged = self.dir.join("merged");
        in_hook(|| image::unmount(&merged))
    }
}
