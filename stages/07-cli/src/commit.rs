//! `commit`: a new image from a container's changes. See docker-container-commit(1).
//!
//! A container's changes are its overlay's upper directory; stage 04 already knows how to turn
//! such a directory into a layer (whiteouts become OCI `.wh.` files, [`images::diff`]) and a
//! layer plus a config into an image ([`images::create_image`]). `commit` adds what Docker's
//! does around that: the new image runs as the container ran (its command, environment,
//! working directory, user and labels become the image's config), `-c` applies Dockerfile
//! instructions to that config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME,
//! WORKDIR, read by stage 04's Dockerfile parser), `-m` and `-a` go into the history entry,
//! and a running container is paused while its upper directory is read (`--pause`, on by
//! default), so the layer is one moment of it rather than a file half written.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;
use images::builder::config::{from_oci, to_oci};
use images::dockerfile::{ImageConfig, Instruction, Location};
use namespaces::RootArgs;
use namespaces::record::Status;

use crate::container::Record;

/// `commit`'s flags.
#[derive(Args)]
pub struct CommitArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long, value_name = "AUTHOR")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change", value_name = "CHANGE")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long, value_name = "MESSAGE")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(
        short,
        long,
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
    )]
    pub pause: bool,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The new image's name
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// The instructions `-c` takes (Docker's list).
const CHANGES: [&str; 9] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
];

// ANCHOR: commit
/// `commit`: prints the new image's id.
pub fn command(args: &CommitArgs) -> anyhow::Result<i32> {
    let id = commit(args)?;
    println!("{id}");
    Ok(0)
}

/// Makes the image (what `command` and the Engine API's `POST /commit` share): its id.
pub fn commit(args: &CommitArgs) -> anyhow::Result<images::Digest> {
    let root = &args.root.root;
    let record = crate::lifecycle::find(root, &args.container)?;
    if record.image_id.is_empty() {
        bail!(
            "container {} runs on a root directory, not on an image: there is no image to commit on",
            record.name
        );
    }
    let tags = match &args.reference {
        Some(reference) => vec![images::ImageRef::parse_tag(reference)?],
        None => Vec::new(),
    };
    let store = images::Store::open(root)?;
    let image: images::Digest = record.image_id.parse()?;
    let base = store
        .image(&image)?
        .config
        .config()
        .clone()
        .unwrap_or_default();
    let ran = container_config(&record, from_oci(&base));
    let config = to_oci(&apply_changes(ran, &args.change)?, &base);
    let mut history =
        images::image::history_entry(&record.config.cmd.join(" "), args.message.as_deref());
    history.set_author(args.author.clone());

    let dir = crate::container::records(root).dir(&record.id);
    let upper = dir.join("upper");
    let paused = Paused::maybe(root, &record, args.pause)?;
    if !record.state.is_running() {
        // Nothing is mounted: what the engine made to mount over goes, as `run --commit`
        // does. (While the overlay is mounted its upper dir is left alone.)
        images::overlay::prune_mount_points(&upper);
    }
    let created = images::create_image(&store, Some(&image), Some(&upper), config, history, &tags);
    drop(paused);
    let created = created.with_context(|| format!("commit container {}", record.name))?;
    for warning in &created.warnings {
        eprintln!("warning: {warning}");
    }
    crate::events::emit(root, "commit", &record, &[]);
    Ok(created.id)
}
// ANCHOR_END: commit

/// A running container frozen for as long as this lives.
struct Paused<'a> {
    root: &'a Path,
    record: Option<&'a Record>,
}

impl<'a> Paused<'a> {
    fn maybe(root: &'a Path, record: &'a Record, pause: bool) -> anyhow::Result<Self> {
        let frozen = pause && record.state.status == Status::Running;
        if frozen {
            crate::pause::pause(root, record).context("pause the container while committing")?;
        }
        Ok(Paused {
            root,
            record: frozen.then_some(record),
        })
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        if let Some(record) = self.record
            && let Ok(current) = crate::lifecycle::find(self.root, &record.id)
            && let Err(e) = crate::pause::unpause(self.root, &current)
        {
            eprintln!("warning: unpause container {}: {e}", record.name);
        }
    }
}

// ANCHOR: container_config
/// The image's config as the container ran it: its command, entrypoint, environment (without
/// the `HOSTNAME` and `HOME` the engine gives every process), working directory, user and
/// labels.
fn container_config(record: &Record, mut config: ImageConfig) -> ImageConfig {
    let ran = &record.config;
    let asked: BTreeSet<&str> = record
        .spec
        .image_args()
        .process
        .env
        .iter()
        .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k))
        .collect();
    for entry in &ran.env {
        let key = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        let engines = matches!(key, "HOSTNAME" | "HOME");
        if engines && config.get_env(key).is_none() && !asked.contains(key) {
            continue;
        }
        if let Some((key, value)) = entry.split_once('=') {
            config.set_env(key, value);
        }
    }
    config.cmd = (!ran.cmd.is_empty()).then(|| ran.cmd.clone());
    config.entrypoint = (!ran.entrypoint.is_empty()).then(|| ran.entrypoint.clone());
    // `/` is where a process starts when the image names no directory: not worth saying.
    if !(ran.working_dir == "/" && config.working_dir.is_empty()) {
        config.working_dir = ran.working_dir.clone();
    }
    config.user = ran.user.clone();
    config.labels.extend(ran.labels.clone());
    config
}
// ANCHOR_END: container_config

// ANCHOR: changes
/// Applies each `-c` instruction, read by stage 04's Dockerfile parser, in order.
fn apply_changes(mut config: ImageConfig, changes: &[String]) -> anyhow::Result<ImageConfig> {
    let mut cmd_set = false;
    for (i, change) in changes.iter().enumerate() {
        let at = Location::new("--change", i + 1);
        let instruction = images::dockerfile::parse::parse_instruction(&at, change, '\\')?;
        if !CHANGES.contains(&instruction.name()) {
            bail!("{} is not a valid change command", instruction.name());
        }
        cmd_set |= matches!(instruction, Instruction::Cmd(_));
        config = config.apply(&instruction, cmd_set);
    }
    Ok(config)
}
// ANCHOR_END: changes

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_edit_the_config_as_a_dockerfile_would() {
        let base = ImageConfig {
            cmd: Some(vec!["sh".into()]),
            ..ImageConfig::default()
        };
        let changes = [
            "CMD [\"/bin/probe\", \"echo\", \"hi\"]",
            "ENV A=1 B=2",
            "EXPOSE 80",
            "LABEL tier=web",
            "WORKDIR /srv",
            "USER lab",
            "VOLUME /data",
        ]
        .map(String::from);
        let config = apply_changes(base, &changes).unwrap();
        assert_eq!(config.cmd.unwrap(), ["/bin/probe", "echo", "hi"]);
        assert_eq!(config.env, ["A=1", "B=2"]);
        assert!(config.exposed_ports.contains("80/tcp"));
        assert_eq!(config.labels["tier"], "web");
        assert_eq!(config.working_dir, "/srv");
        assert_eq!(config.user, "lab");
        assert!(config.volumes.contains("/data"));
    }

    #[test]
    fn run_and_copy_are_not_changes() {
        let err = apply_changes(ImageConfig::default(), &["RUN true".into()]).unwrap_err();
        assert_eq!(err.to_string(), "RUN is not a valid change command");
    }
}
