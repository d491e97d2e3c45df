//! `container prune`, `image prune`, `system prune` and `system df`: what the store holds, and
//! taking back what nothing uses.
//!
//! A store grows: every `run` without `--rm` leaves a stopped container and its writable layer,
//! every `build` leaves untagged images when a tag moves on, every `-v /path` an anonymous
//! volume. `system df` says where the bytes are (TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE) and the
//! prune commands remove what nothing uses, each with its stage's own rule: a container that is
//! not running, a network no container is on (stage 05), an anonymous volume no container holds
//! (stage 06), a *dangling* image — untagged, not the parent of another image, used by no
//! container — or with `-a` every image no container uses (stage 04). Running containers and
//! what they use are never touched. See docker-system-prune(1), docker-system-df(1).

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::SystemTime;

use anyhow::bail;
use clap::{Args, Subcommand};
use images::human::human_size;
use images::store::Store;
use namespaces::RootArgs;

use crate::container::Record;
use crate::lifecycle;

/// `container prune`'s arguments.
#[derive(Args)]
pub struct ContainerPruneArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Only containers created before until=TIME, or with (label=KEY[=VALUE]) or without
    /// (label!=KEY[=VALUE]) a label
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// `image prune`'s arguments.
#[derive(Args)]
pub struct ImagePruneArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Remove every image no container uses, not just the dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `system`'s commands.
#[derive(Subcommand)]
pub enum SystemCommand {
    /// Show how much disk images, containers and volumes use
    Df(DfArgs),
    /// Remove stopped containers, unused networks, dangling images (and unused volumes)
    Prune(SystemPruneArgs),
    /// Show what skiff manages on this host
    Info(crate::cli::AboutArgs),
    /// Serve Docker's Engine API on a socket, for docker's own clients
    Service(crate::api::ServiceArgs),
    /// Start the containers their restart policy starts when the host boots (run it at boot)
    Boot(BootArgs),
}

/// `system boot`'s arguments.
#[derive(Args)]
pub struct BootArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
}

/// `system df`'s arguments.
#[derive(Args)]
pub struct DfArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Show every image, container and volume
    #[arg(short, long)]
    pub verbose: bool,
}

/// `system prune`'s arguments.
#[derive(Args)]
pub struct SystemPruneArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Remove every image no container uses, not just the dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Remove anonymous volumes no container uses too
    #[arg(long)]
    pub volumes: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Only containers and images created before until=TIME, or with or without a label
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

impl SystemCommand {
    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            SystemCommand::Df(args) => df(&args),
            SystemCommand::Prune(args) => system_prune(&args),
            SystemCommand::Info(args) => {
                let info = crate::system::Info::gather(&args.root.root)?;
                crate::cli::about(&args, &info, crate::system::Info::text)
            }
            SystemCommand::Service(args) => crate::api::command(&args),
            SystemCommand::Boot(args) => crate::lifecycle::boot(&args.root.root),
        }
    }
}

// --- filters ------------------------------------------------------------------------------------

/// The filters prune knows (moby `daemon/prune.go`): `until` and `label`/`label!`.
#[derive(Debug, Default)]
struct Filters {
    until: Option<SystemTime>,
    label: Vec<String>,
    not_label: Vec<String>,
}

impl Filters {
    fn parse(flags: &[String]) -> anyhow::Result<Filters> {
        let mut filters = Filters::default();
        for flag in flags {
            let Some((key, value)) = flag.split_once('=') else {
                bail!("bad format of filter (expected name=value)");
            };
            match key {
                "until" => {
                    filters.until = Some(crate::events::parse_time(value, SystemTime::now())?);
                }
                "label" => filters.label.push(value.to_string()),
                "label!" => filters.not_label.push(value.to_string()),
                other => bail!("invalid filter '{other}'"),
            }
        }
        Ok(filters)
    }

    /// Whether something created at `created` (RFC 3339) with `labels` passes.
    fn admits(&self, created: Option<&str>, labels: &BTreeMap<String, String>) -> bool {
        let has = |filter: &String| match filter.split_once('=') {
            Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
            None => labels.contains_key(filter.as_str()),
        };
        let old_enough = match (self.until, created) {
            (None, _) => true,
            (Some(until), Some(created)) => {
                images::human::parse_time(created).is_some_and(|t| t < until)
            }
            (Some(_), None) => false,
        };
        old_enough && self.label.iter().all(has) && !self.not_label.iter().any(has)
    }
}

/// Docker's question before a prune; true to go on. Without a terminal the answer is read all
/// the same, and end of input is "no", so a script must say `-f`.
pub(crate) fn confirm(warning: &str) -> anyhow::Result<bool> {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !std::io::stdin().is_terminal() && answer.is_empty() {
        eprintln!();
    }
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

// ANCHOR: containers
/// Removes every container that is not running (created, exited, dead) and passes `filters`;
/// returns their ids and the bytes their writable layers held.
fn prune_containers(root: &Path, filters: &Filters) -> anyhow::Result<(Vec<String>, u64)> {
    let mut removed = Vec::new();
    let mut freed = 0;
    // What a monitor killed between moving a --rm container to the trash and deleting it left.
    namespaces::sweep::empty_trash(root, None);
    for record in lifecycle::list(root)? {
        if record.state.is_running()
            || !filters.admits(Some(&record.created), &record.config.labels)
        {
            continue;
        }
        let size = crate::inspect::size_rw(root, &record.id);
        match lifecycle::remove(root, &record, false, false) {
            Ok(()) => {
                removed.push(record.id.clone());
                freed += size;
            }
            // Started meanwhile, or half removed: not ours to force.
            Err(e) => eprintln!("skiff: {e:#}"),
        }
    }
    Ok((removed, freed))
}
// ANCHOR_END: containers

/// `container prune` without its question and its printing, for the API: the filters as
/// `--filter` flags (`until=TIME`, `label=K[=V]`, `label!=K[=V]`).
pub fn prune_stopped(root: &Path, flags: &[String]) -> anyhow::Result<(Vec<String>, u64)> {
    prune_containers(root, &Filters::parse(flags)?)
}

/// Removes dangling images (every unused one with `all`); returns what was untagged and
/// deleted, in prune's words, and the bytes the image store gave back.
fn prune_images(root: &Path, all: bool) -> anyhow::Result<(Vec<String>, u64)> {
    let store = Store::open(root)?;
    let before = images_bytes(root);
    let removed = images::ops::prune(&store, all)?;
    let lines = removed
        .iter()
        .map(|r| match r {
            images::ops::Removed::Untagged(name) => format!("untagged: {name}"),
            images::ops::Removed::Deleted(id) => format!("deleted: {id}"),
        })
        .collect();
    Ok((lines, before.saturating_sub(images_bytes(root))))
}

/// Bytes of the image store: blobs and unpacked layers.
fn images_bytes(root: &Path) -> u64 {
    ["blobs", "layers"]
        .iter()
        .map(|d| volumes::store::disk_usage(&root.join(d)))
        .sum()
}

pub(crate) fn print_section(title: &str, lines: &[String]) {
    if !lines.is_empty() {
        println!("{title}:");
        lines.iter().for_each(|l| println!("{l}"));
        println!();
    }
}

/// What `container prune` asks before it goes on.
pub(crate) const CONTAINER_PRUNE_WARNING: &str =
    "WARNING! This will remove all stopped containers.";

/// `container prune`.
pub fn container_prune(args: &ContainerPruneArgs) -> anyhow::Result<i32> {
    let filters = Filters::parse(&args.filter)?;
    if !args.force && !confirm(CONTAINER_PRUNE_WARNING)? {
        return Ok(0);
    }
    let (removed, freed) = prune_containers(&args.root.root, &filters)?;
    print_section("Deleted Containers", &removed);
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(0)
}

/// What `image prune` asks before it goes on.
pub(crate) fn image_prune_warning(all: bool) -> &'static str {
    if all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    }
}

/// `image prune`.
pub fn image_prune(args: &ImagePruneArgs) -> anyhow::Result<i32> {
    if !args.force && !confirm(image_prune_warning(args.all))? {
        return Ok(0);
    }
    let (lines, freed) = prune_images(&args.root.root, args.all)?;
    print_section("Deleted Images", &lines);
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(0)
}

/// What `system prune` asks before it goes on.
pub(crate) fn system_prune_warning(args: &SystemPruneArgs) -> String {
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if args.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if args.all {
        "  - all images without at least one container associated to them\n"
    } else {
        "  - all dangling images\n"
    });
    warning.trim_end().to_string()
}

// ANCHOR: system
/// `system prune`: containers first (what they held becomes unused), then networks, volumes
/// and images, as Docker orders it.
fn system_prune(args: &SystemPruneArgs) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let filters = Filters::parse(&args.filter)?;
    if !args.force && !confirm(&system_prune_warning(args))? {
        return Ok(0);
    }
    let (containers, mut freed) = prune_containers(root, &filters)?;
    print_section("Deleted Containers", &containers);
    let networks = {
        let _host = networking::store::host_lock()?;
        let pruned = networking::store::prune(root)?;
        for network in &pruned {
            if let Err(e) = networking::feature::remove_bridge(network) {
                eprintln!("skiff: warning: {e}");
            }
        }
        pruned.into_iter().map(|n| n.name).collect::<Vec<_>>()
    };
    print_section("Deleted Networks", &networks);
    if args.volumes {
        let (volumes, bytes) = volumes::store::prune(root, false)?;
        freed += bytes;
        print_section("Deleted Volumes", &volumes);
    }
    // Images take the filters too; containers were the ones asked for by label and age.
    let (images, bytes) = if filters.until.is_none() && filters.label.is_empty() {
        prune_images(root, args.all)?
    } else {
        (Vec::new(), 0)
    };
    freed += bytes;
    print_section("Deleted Images", &images);
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(0)
}
// ANCHOR_END: system

// --- df -----------------------------------------------------------------------------------------

/// One line of `system df`.
pub(crate) struct Usage {
    /// `Images`, `Containers`, `Local Volumes` or `Build Cache`.
    pub(crate) kind: &'static str,
    /// How many there are.
    pub(crate) total: usize,
    /// How many are in use.
    pub(crate) active: usize,
    /// Their bytes.
    pub(crate) size: u64,
    /// The bytes a prune would give back.
    pub(crate) reclaimable: u64,
}

/// `system df`'s summary table, for lines gathered from the store or from a daemon.
pub(crate) fn df_summary(lines: &[Usage]) -> String {
    let cells: Vec<Vec<String>> = lines
        .iter()
        .map(|u| {
            vec![
                u.kind.to_string(),
                u.total.to_string(),
                u.active.to_string(),
                human_size(u.size),
                u.reclaimable_text(),
            ]
        })
        .collect();
    images::human::table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &cells)
}

impl Usage {
    fn reclaimable_text(&self) -> String {
        if self.size == 0 {
            return human_size(self.reclaimable);
        }
        let percent = self.reclaimable.saturating_mul(100) / self.size;
        format!("{} ({percent}%)", human_size(self.reclaimable))
    }
}

/// `system df`: images, containers, volumes and the build cache, with what is in use (ACTIVE)
/// and what a prune would give back (RECLAIMABLE).
fn df(args: &DfArgs) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let records: Vec<Record> = lifecycle::list(root)?;
    let store = Store::open(root)?;
    let image_rows = images::ops::list(&store, true)?;
    // One row per image, not per tag.
    let mut by_id: BTreeMap<String, &images::ops::ImageRow> = BTreeMap::new();
    for row in &image_rows {
        by_id.entry(row.id.to_string()).or_insert(row);
    }
    let mut image_users: BTreeMap<String, usize> = BTreeMap::new();
    for id in by_id.keys() {
        let users = images::ops::containers_using(&store, &images::digest::Digest::parse(id)?)?;
        image_users.insert(id.clone(), users.len());
    }
    let images_size: u64 = by_id.values().map(|r| r.size).sum();
    let images_active = image_users.values().filter(|n| **n > 0).count();
    let images_reclaimable: u64 = by_id
        .iter()
        .filter(|(id, _)| image_users.get(*id).copied().unwrap_or(0) == 0)
        .map(|(_, r)| r.size)
        .sum();
    let container_sizes: Vec<(&Record, u64)> = records
        .iter()
        .map(|r| (r, crate::inspect::size_rw(root, &r.id)))
        .collect();
    let running = |r: &Record| r.state.is_running();
    let volumes = volumes::store::list(root)?;
    let volume_sizes: Vec<(&volumes::store::Volume, u64)> = volumes
        .iter()
        .map(|v| (v, volumes::store::disk_usage(&v.mountpoint)))
        .collect();
    let lines = [
        Usage {
            kind: "Images",
            total: by_id.len(),
            active: images_active,
            size: images_size,
            reclaimable: images_reclaimable,
        },
        Usage {
            kind: "Containers",
            total: records.len(),
            active: records.iter().filter(|r| running(r)).count(),
            size: container_sizes.iter().map(|(_, s)| s).sum(),
            reclaimable: container_sizes
                .iter()
                .filter(|(r, _)| !running(r))
                .map(|(_, s)| s)
                .sum(),
        },
        Usage {
            kind: "Local Volumes",
            total: volumes.len(),
            active: volumes.iter().filter(|v| !v.users.is_empty()).count(),
            size: volume_sizes.iter().map(|(_, s)| s).sum(),
            reclaimable: volume_sizes
                .iter()
                .filter(|(v, _)| v.users.is_empty())
                .map(|(_, s)| s)
                .sum(),
        },
        // skiff's build cache is its intermediate images, counted with the images, as Docker's
        // classic builder counted them.
        Usage {
            kind: "Build Cache",
            total: 0,
            active: 0,
            size: 0,
            reclaimable: 0,
        },
    ];
    if !args.verbose {
        print!("{}", df_summary(&lines));
        return Ok(0);
    }
    println!("Images space usage:\n");
    let now = SystemTime::now();
    let cells: Vec<Vec<String>> = image_rows
        .iter()
        .map(|r| {
            vec![
                r.repository.clone(),
                r.tag.clone(),
                r.id.short().to_string(),
                images::human::ago(r.created.as_deref(), now),
                human_size(r.size),
                image_users
                    .get(&r.id.to_string())
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        images::human::table(
            &[
                "REPOSITORY",
                "TAG",
                "IMAGE ID",
                "CREATED",
                "SIZE",
                "CONTAINERS"
            ],
            &cells
        )
    );
    println!("\nContainers space usage:\n");
    let cells: Vec<Vec<String>> = container_sizes
        .iter()
        .map(|(r, size)| {
            vec![
                r.id.get(..12).unwrap_or(&r.id).to_string(),
                r.image.clone(),
                crate::inspect::command_line(r).join(" "),
                "0".to_string(),
                human_size(*size),
                images::human::ago(Some(&r.created), now),
                r.state.status.as_str().to_string(),
                r.name.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        images::human::table(
            &[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "LOCAL VOLUMES",
                "SIZE",
                "CREATED",
                "STATUS",
                "NAMES"
            ],
            &cells
        )
    );
    println!("\nLocal Volumes space usage:\n");
    let cells: Vec<Vec<String>> = volume_sizes
        .iter()
        .map(|(v, size)| vec![v.name.clone(), v.users.len().to_string(), human_size(*size)])
        .collect();
    print!(
        "{}",
        images::human::table(&["VOLUME NAME", "LINKS", "SIZE"], &cells)
    );
    println!("\nBuild cache usage: 0B");
    Ok(0)
}
