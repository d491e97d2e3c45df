//! The command line of stage 06: `run` with `-v`, `--mount`, `--tmpfs` and `--read-only`, and
//! the `volume` commands (`create`, `ls`, `inspect`, `rm`, `prune`), on top of stage 05's.

use anyhow::{Context, bail};
use chroot::plan::cstr;
use chroot::{Feature, FeatureError, Plan, Step};
use clap::{Args, Subcommand};
use namespaces::ContainerId;
use nix::mount::MsFlags;

use crate::feature::VolumesFeature;
use crate::spec::{self, MountSpec, Source};
use crate::store;

// ANCHOR: args
/// The flags stage 06 adds to `run`.
#[derive(Debug, Clone, Default, Args, serde::Serialize, serde::Deserialize)]
pub struct VolumeArgs {
    /// Mount a volume or a host path: [NAME:|/HOST/PATH:]/CONTAINER/PATH[:ro|rw|nocopy]
    #[arg(short = 'v', long = "volume", value_name = "VOLUME")]
    pub volume: Vec<String>,

    /// Mount as key=value fields: type=volume|bind|tmpfs,source=...,target=...[,readonly]
    #[arg(long = "mount", value_name = "MOUNT")]
    pub mount: Vec<String>,

    /// Mount a fresh tmpfs: /CONTAINER/PATH[:size=64m,mode=1777,...]
    #[arg(long = "tmpfs", value_name = "TMPFS")]
    pub tmpfs: Vec<String>,

    /// Mount the container's root filesystem read-only (volumes and tmpfs stay writable)
    #[arg(long = "read-only")]
    pub read_only: bool,
}
// ANCHOR_END: args

/// `run`'s flags: stage 05's (and before) and stage 06's.
#[derive(Debug, Clone, Args, serde::Serialize, serde::Deserialize)]
#[group(id = "volumes_run")]
pub struct RunArgs {
    /// Flags of stage 05 (and before it).
    #[command(flatten)]
    pub network: networking::cli::RunArgs,

    /// Flags of stage 06.
    #[command(flatten)]
    pub volumes: VolumeArgs,
}

/// `--read-only`: the root, already a bind mount of its own (stage 02 made it one for
/// pivot_root), remounted read-only once every mount point inside it exists. With a user
/// namespace, after the go-ahead, where the other mounts are.
struct ReadOnlyRoot;

impl Feature for ReadOnlyRoot {
    fn name(&self) -> &'static str {
        "read-only root"
    }

    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Seal
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        let keep = namespaces::filesystem::current_flags(&plan.rootfs);
        let step = Step::Mount {
            source: None,
            target: cstr(&plan.rootfs).map_err(|e| FeatureError::msg(e.to_string()))?,
            fstype: None,
            flags: MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NODEV
                | keep,
            data: None,
        };
        // Last of the mounts (its slot comes after every feature that mounts into the root), in
        // the list they are in: the change of root comes right after.
        plan.root_setup().push(step);
        Ok(())
    }
}

/// The image's `VOLUME`s that no flag mounts something on: each gets an anonymous volume, as
/// in Docker, so what the image keeps there outlives a container's writes.
fn image_volumes(specs: &mut Vec<MountSpec>, paths: &[String]) -> anyhow::Result<()> {
    for path in paths {
        let target = spec::clean_target("volume", path, path)
            .with_context(|| format!("the image's VOLUME {path}"))?;
        if specs.iter().all(|s| s.target != target) {
            specs.push(MountSpec {
                source: Source::Volume(None),
                target,
                readonly: false,
                nocopy: false,
                create_source: false,
                flags: MsFlags::empty(),
            });
        }
    }
    specs.sort_by_key(|s| s.target.matches('/').count());
    Ok(())
}

// ANCHOR: run
/// Stage 05's container, with volumes, bind mounts and tmpfs mounted inside: checks the flags,
/// then describes the container; nothing exists on the host until its features run.
pub fn prepare(args: &RunArgs, id: ContainerId) -> anyhow::Result<images::cli::PreparedRun> {
    // Every -v, --mount and --tmpfs is checked before anything exists on the host.
    let v = &args.volumes;
    let mut specs = spec::all(&v.volume, &v.mount, &v.tmpfs)?;
    let mut prepared = networking::cli::prepare(&args.network, id)?;
    image_volumes(&mut specs, &prepared.volumes())?;
    let run = &args.network.run;
    let container = &mut prepared.container;
    if !specs.is_empty() {
        let feature = VolumesFeature::new(&run.namespaces.root, container.id.full(), specs, run.rm);
        container.prepared.add(feature);
    }
    if v.read_only {
        container.prepared.add(ReadOnlyRoot);
    }
    Ok(prepared)
}
// ANCHOR_END: run

/// `volumes run`: stage 05's container, with volumes, bind mounts and tmpfs mounted inside.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    chroot::launch::require_root()?;
    let id = ContainerId::random().context("make a container id")?;
    let prepared = prepare(&args, id)?;
    args.network
        .run
        .namespaces
        .write_cidfile(&prepared.container.id)?;
    images::cli::launch_prepared("volumes", prepared)
}

pub use namespaces::RootArgs;

/// The `volume` commands.
#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// The driver: local (the only one)
        #[arg(short, long, default_value = "local", value_name = "DRIVER")]
        driver: String,
        /// Driver options (the local driver of skiff takes none)
        #[arg(short, long = "opt", value_name = "KEY=VALUE")]
        opt: Vec<String>,
        /// Metadata
        #[arg(long, value_name = "KEY=VALUE")]
        label: Vec<String>,
        /// The volume's name (default: a random one)
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// The volume's name, the old way
        #[arg(long = "name", value_name = "NAME", conflicts_with = "name")]
        name_flag: Option<String>,
    },
    /// List volumes
    #[command(visible_alias = "ls")]
    List {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// Only show volume names
        #[arg(short, long)]
        quiet: bool,
        /// Filter: dangling=true|false, name=TEXT, label=KEY[=VALUE]
        #[arg(short, long, value_name = "FILTER")]
        filter: Vec<String>,
        /// `json` for a JSON object per volume (skiff, stage 07, takes Go templates too)
        #[arg(long, value_name = "FORMAT")]
        format: Option<String>,
    },
    /// Show volumes' details as JSON
    Inspect {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// The volumes
        #[arg(required = true, value_name = "VOLUME")]
        volumes: Vec<String>,
    },
    /// Remove volumes
    #[command(visible_alias = "remove")]
    Rm {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// Remove even volumes in use (their containers keep the mount until they exit)
        #[arg(short, long)]
        force: bool,
        /// The volumes
        #[arg(required = true, value_name = "VOLUME")]
        volumes: Vec<String>,
    },
    /// Remove the anonymous volumes no container uses (all unused ones with --all)
    Prune {
        /// Where skiff keeps its state.
        #[command(flatten)]
        root: RootArgs,
        /// Named volumes too
        #[arg(short, long)]
        all: bool,
        /// Do not ask (skiff never asks: accepted for Docker's sake)
        #[arg(short, long)]
        force: bool,
    },
}

/// `KEY=VALUE` flags as pairs.
pub fn key_values(items: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            None if !item.is_empty() => Ok((item.clone(), String::new())),
            _ => bail!("invalid {what} {item:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// `volume ls --filter`: which volumes to show.
/// The volumes of the store at `root` that pass every `--filter KEY=VALUE` of `filter`: what
/// `volume ls` lists, in this stage and in stage 07.
pub fn filtered(root: &std::path::Path, filter: &[String]) -> anyhow::Result<Vec<store::Volume>> {
    let filters = key_values(filter, "--filter")?;
    let mut volumes = Vec::new();
    for volume in store::list(root)? {
        if matches(&volume, &filters)? {
            volumes.push(volume);
        }
    }
    Ok(volumes)
}

/// Whether `volume` passes every `--filter`.
pub fn matches(volume: &store::Volume, filters: &[(String, String)]) -> anyhow::Result<bool> {
    for (key, value) in filters {
        let keep = match key.as_str() {
            "dangling" => match value.as_str() {
                "true" | "1" => volume.users.is_empty(),
                "false" | "0" => !volume.users.is_empty(),
                _ => bail!("invalid filter 'dangling={value}': use true or false"),
            },
            "name" => volume.name.contains(value.as_str()),
            "label" => match value.split_once('=') {
                Some((k, v)) => volume.labels.get(k).is_some_and(|l| l == v),
                None => volume.labels.contains_key(value.as_str()),
            },
            "driver" => value == "local",
            other => bail!("invalid filter '{other}': use dangling, name, label or driver"),
        };
        if !keep {
            return Ok(false);
        }
    }
    Ok(true)
}

impl VolumeCommand {
    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            VolumeCommand::Create {
                root,
                driver,
                opt,
                label,
                name,
                name_flag,
            } => {
                if driver != "local" {
                    bail!(
                        "volume driver {driver:?} is not available: skiff has the local driver only"
                    );
                }
                if let Some(option) = opt.first() {
                    bail!(
                        "volume option {option:?} is not supported: skiff's local driver keeps a directory; to use another filesystem, mount it on the host and bind-mount it with -v /path:/target"
                    );
                }
                let labels = key_values(&label, "--label")?.into_iter().collect();
                let name = name.or(name_flag);
                let volume = store::create(&root.root, name.as_deref(), labels)?;
                println!("{}", volume.name);
                Ok(0)
            }
            VolumeCommand::List {
                root,
                quiet,
                filter,
                format,
            } => {
                let volumes = filtered(&root.root, &filter)?;
                match format.as_deref().map(str::trim) {
                    None | Some("" | "table") => {}
                    Some("json") => {
                        volumes
                            .iter()
                            .for_each(|v| println!("{}", store::ls_json(v)));
                        return Ok(0);
                    }
                    Some(other) => bail!(
                        "--format {other:?}: this stage prints `table` or `json`; Go templates are skiff's (stage 07)"
                    ),
                }
                if quiet {
                    volumes.iter().for_each(|v| println!("{}", v.name));
                } else {
                    print!("{}", store::ls_table(&volumes));
                }
                Ok(0)
            }
            VolumeCommand::Inspect { root, volumes } => {
                let mut found = Vec::new();
                let mut failed = false;
                for name in &volumes {
                    match store::inspect(&root.root, name) {
                        Ok(volume) => found.push(volume),
                        Err(e) => {
                            eprintln!("volumes: {e}");
                            failed = true;
                        }
                    }
                }
                println!("{}", store::inspect_json(&found));
                Ok(if failed { chroot::cli::EXIT_ENGINE } else { 0 })
            }
            VolumeCommand::Rm {
                root,
                force,
                volumes,
            } => {
                let mut failed = false;
                for name in &volumes {
                    match store::remove(&root.root, name, force) {
                        Ok(()) => println!("{name}"),
                        // `rm -f` of a volume that does not exist is not an error (Docker).
                        Err(store::StoreError::NoSuchVolume(_)) if force => {}
                        Err(e) => {
                            eprintln!("volumes: {e}");
                            failed = true;
                        }
                    }
                }
                Ok(if failed { chroot::cli::EXIT_ENGINE } else { 0 })
            }
            VolumeCommand::Prune {
                root,
                all,
                force: _,
            } => {
                let (removed, freed) = store::prune(&root.root, all)?;
                if !removed.is_empty() {
                    println!("Deleted Volumes:");
                    removed.iter().for_each(|name| println!("{name}"));
                    println!();
                }
                println!(
                    "Total reclaimed space: {}",
                    images::human::human_size(freed)
                );
                Ok(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_volumes_fill_in_what_flags_leave() {
        let mut specs = spec::all(&["data:/srv".into()], &[], &[]).unwrap();
        image_volumes(
            &mut specs,
            &["/srv".into(), "/var/lib/db/".into(), "/a".into()],
        )
        .unwrap();
        let targets: Vec<&str> = specs.iter().map(|s| s.target.as_str()).collect();
        assert_eq!(targets, ["/srv", "/a", "/var/lib/db"]);
        assert_eq!(specs[0].source, Source::Volume(Some("data".into())));
        assert_eq!(specs[2].source, Source::Volume(None));
    }

    #[test]
    fn filters() {
        let volume = store::Volume {
            name: "data".into(),
            created: String::new(),
            labels: [("tier".to_string(), "db".to_string())].into(),
            anonymous: false,
            users: vec![],
            target: None,
            mountpoint: std::path::PathBuf::new(),
        };
        let f = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(matches(&volume, &f("dangling", "true")).unwrap());
        assert!(!matches(&volume, &f("dangling", "false")).unwrap());
        assert!(matches(&volume, &f("name", "at")).unwrap());
        assert!(matches(&volume, &f("label", "tier=db")).unwrap());
        assert!(!matches(&volume, &f("label", "tier=web")).unwrap());
        assert!(matches(&volume, &f("colour", "x")).is_err());
    }
}
