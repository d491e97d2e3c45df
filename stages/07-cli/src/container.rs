//! Containers as objects: `create` makes one, a record on disk, and nothing runs yet.
//!
//! `create` checks every flag by preparing the whole container once, exactly as a start will
//! (stages 01 to 06: the image found or pulled, every `-v`, `-p` and limit checked), writes the
//! record with a unique name, and stops. The container exists from then on, in `ps -a` as
//! Created, whatever process comes next; `start` (or the rest of `run`) gives it a monitor.

use std::path::Path;

use anyhow::Context;
use namespaces::ContainerId;
use namespaces::record::{Config, RECORD_VERSION, State};
use namespaces::records::{RecordError, Records};

use crate::spec::RunArgs;

/// A container's record, with the flags it was created with.
pub type Record = namespaces::record::Record<RunArgs>;

/// The records of the store at `root`.
pub fn records(root: &Path) -> Records {
    Records::new(root)
}

/// `create`: checks every flag, resolves the image, and writes the record of a new container.
pub fn create(args: &RunArgs) -> anyhow::Result<Record> {
    create_prepared(args).map(|(record, _)| record)
}

// ANCHOR: create
/// `create`, returning the container prepared as well: `run` launches it from there, without
/// preparing it a second time.
pub fn create_prepared(args: &RunArgs) -> anyhow::Result<(Record, images::cli::PreparedRun)> {
    create_named(args, NamePick::Guess)
}

/// How a container that was not given a name gets one.
#[derive(Clone, Copy)]
enum NamePick {
    /// Made up without looking: among 2,500 names, one that a container of the store has is
    /// rare, and the check under the records' lock catches it. Listing every record first would
    /// cost more, on every create, than preparing again in the rare clash.
    Guess,
    /// After a clash: one no container of the store has now, found by listing them.
    Free,
}

fn create_named(
    args: &RunArgs,
    pick: NamePick,
) -> anyhow::Result<(Record, images::cli::PreparedRun)> {
    chroot::launch::require_root()?;
    let mut spec = args.clone();
    let root = spec.root().to_path_buf();
    let records = records(&root);
    let id = ContainerId::random().context("make a container id")?;
    if let Some(name) = spec.name() {
        namespaces::records::check_name(name)?;
    }
    // The name goes into the spec too: it is the container's name on its networks.
    // The id is random already: its last 16 digits pick the made-up name.
    let seed = u64::from_str_radix(&id.full()[48..], 16).unwrap_or_default();
    let name = match (spec.name(), pick) {
        (Some(name), _) => name.to_string(),
        (None, NamePick::Guess) => crate::names::make(seed, 0),
        (None, NamePick::Free) => free_name(&records, seed)?,
    };
    spec.volumes.network.network.name = Some(name.clone());
    // What comes from other containers, as flags of this one.
    crate::wiring::resolve(&mut spec)?;
    // The whole container described once, as every start will: bad flags fail here.
    let mut prepared = crate::wiring::prepare(&spec, id.clone())?;
    if crate::wiring::publish_all(&mut spec, &prepared)? {
        // -P: the image's exposed ports, known now, published too.
        prepared = crate::wiring::prepare(&spec, id.clone())?;
    }
    chroot::timeline::mark("create: prepared");
    let config = config_of(&spec, &prepared)?;
    spec.resolve(prepared.image.as_ref())?;
    let record = Record {
        version: RECORD_VERSION,
        id: id.full().to_string(),
        name,
        created: images::human::now_rfc3339(),
        image: config.image.clone(),
        image_id: prepared
            .image
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        config,
        cgroup: Some(spec.image_args().cgroup.feature(id.full())?.path()),
        state: State::default(),
        spec,
    };
    let locked = records.lock()?;
    match locked.create(&record) {
        Ok(()) => {}
        // A made-up name that another container has: the user never asked for it.
        Err(RecordError::NameInUse { .. }) if args.name().is_none() => {
            drop(locked);
            return create_named(args, NamePick::Free);
        }
        Err(e) => return Err(e.into()),
    }
    drop(locked);
    if let Err(e) = args.image_args().namespaces.write_cidfile(&id) {
        crate::lifecycle::remove_record(&root, &record);
        return Err(e);
    }
    chroot::timeline::mark("create: recorded");
    crate::events::emit(&root, "create", &record, &[]);
    Ok((record, prepared))
}
// ANCHOR_END: create

/// A made-up name (`adjective_noun`, picked by `seed`) that no container of the store has now.
fn free_name(records: &Records, seed: u64) -> anyhow::Result<String> {
    let taken: std::collections::BTreeSet<String> = records
        .list::<serde::de::IgnoredAny>()?
        .into_iter()
        .map(|r| r.name)
        .collect();
    for attempt in 0..1000u32 {
        let name = crate::names::make(seed.rotate_left(attempt * 7), attempt / 10);
        if !taken.contains(&name) {
            return Ok(name);
        }
    }
    anyhow::bail!("could not make up a free container name: give one with --name")
}

/// Docker's `Config` of the container: what the image said, as the flags changed it.
fn config_of(spec: &RunArgs, prepared: &images::cli::PreparedRun) -> anyhow::Result<Config> {
    let run = spec.image_args();
    let process = &prepared.container.prepared.process;
    let (image, command) = match &run.rootfs {
        Some(rootfs) => (rootfs.display().to_string(), run.args.clone()),
        None => {
            let (image, command) = run.args.split_first().context("no image given")?;
            (image.clone(), command.to_vec())
        }
    };
    // Docker keeps the entrypoint and the command apart: --entrypoint replaces the image's and
    // drops its Cmd; a command after the image name replaces the Cmd.
    let (mut entrypoint, mut cmd) = (Vec::new(), command.clone());
    if prepared.image.is_some() {
        let image = prepared.config.clone().unwrap_or_default();
        entrypoint = match run.entrypoint.as_deref() {
            Some("") => Vec::new(),
            Some(flag) => vec![flag.to_string()],
            None => image.entrypoint().clone().unwrap_or_default(),
        };
        if command.is_empty() && run.entrypoint.is_none() {
            cmd = image.cmd().clone().unwrap_or_default();
        }
    }
    let lifecycle = &spec.lifecycle;
    Ok(Config {
        hostname: prepared.container.hostname.clone(),
        user: run.namespaces.user.clone().unwrap_or_default(),
        env: process.env.clone(),
        cmd,
        entrypoint,
        working_dir: process.cwd.clone(),
        labels: spec.labels()?,
        stop_signal: format!("{:?}", spec.stop_signal()?),
        stop_timeout: lifecycle.stop_timeout,
        tty: lifecycle.tty,
        open_stdin: lifecycle.interactive,
        image,
    })
}
