//! `inspect`: everything the engine knows about containers, images, networks and volumes, as
//! Docker's JSON (docker-inspect(1)).
//!
//! A container's JSON is assembled from several places, because each stage keeps what it owns:
//! the record (stage 02's file, with `run`'s flags as stage 07 parsed them: limits, ports,
//! mounts, restart policy), the network store (stage 05: the address and MAC of each endpoint,
//! which exist only while the container runs), the volume store (stage 06: which anonymous
//! volume a `-v /path` got), the image store (stage 04: the layers under the container's
//! overlay, the image's exposed ports) and the firewall (the host port the kernel picked for a
//! `-p 80`). [`Stores`] reads the last four once per command; [`container_json`] puts it all in
//! Docker's shape ([`crate::docker_json`]).
//!
//! `skiff inspect NAME` tries NAME as a container, then an image, a network and a volume, as
//! `docker inspect` does, and prints one JSON array of everything it found, indented by four
//! spaces; with `-f` it prints a Go template ([`crate::format`]) once per object instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::Args;
use namespaces::RootArgs;
use namespaces::record::{State, Status, container_dir};
use namespaces::records::RecordError;
use networking::cli::{Choice, NetworkArgs};
use networking::firewall::{PortMapping, Publication};
use networking::store::{DEFAULT_NETWORK, Endpoint, Network};
use serde::Serialize;
use volumes::spec::{MountSpec, Source};
use volumes::store::Volume;

use crate::container::Record;
use crate::docker_json::{
    ConfigJson, ContainerJson, Empty, EndpointAddress, EndpointSettings, GraphData, GraphDriver,
    HostConfig, HostMount, IpamConfig, LogConfig, MountPoint, NetworkSettings, PortBinding,
    PortMap, Resources, RestartPolicyJson, StateJson, ZERO_TIME,
};
use crate::restart::RestartPolicy;

/// Bytes of the `/dev/shm` every container gets (stage 02 mounts it with `size=65536k`).
const SHM_SIZE: u64 = 64 * 1024 * 1024;

/// `inspect`'s flags.
#[derive(Args)]
pub struct InspectArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Format the output with a Go template
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Only this kind of object: container, image, network or volume
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// Add a container's sizes: SizeRw (its writable layer) and SizeRootFs (with its image)
    #[arg(short, long)]
    pub size: bool,
    /// The objects
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

// --- the command --------------------------------------------------------------------------------

/// The kinds of object `inspect` knows, in the order it tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A container of stage 07.
    Container,
    /// An image of stage 04.
    Image,
    /// A network of stage 05.
    Network,
    /// A volume of stage 06.
    Volume,
}

impl Kind {
    /// Every kind, in the order Docker tries them when `--type` is not given.
    pub const ALL: [Kind; 4] = [Kind::Container, Kind::Image, Kind::Network, Kind::Volume];

    /// `--type`'s value.
    pub fn parse(text: &str) -> anyhow::Result<Kind> {
        Ok(match text {
            "container" => Kind::Container,
            "image" => Kind::Image,
            "network" => Kind::Network,
            "volume" => Kind::Volume,
            _ => bail!("{text:?} is not a valid value for --type"),
        })
    }

    /// Docker's error for a name that is no such object.
    fn missing(kind: Option<Kind>, name: &str) -> String {
        let what = match kind {
            None => "object",
            Some(Kind::Container) => "container",
            Some(Kind::Image) => "image",
            Some(Kind::Network) => "network",
            Some(Kind::Volume) => "volume",
        };
        format!("No such {what}: {name}")
    }
}

/// One object found: its JSON for the array, and its value for a template.
struct Found {
    /// The object pretty-printed as an element of the array (indented by four spaces).
    text: String,
    /// The same, as a value.
    value: serde_json::Value,
}

impl Found {
    /// An object that serializes in Docker's shape.
    fn of(item: &impl Serialize) -> anyhow::Result<Found> {
        Ok(Found {
            text: array_element(&pretty(&[item])?),
            value: serde_json::to_value(item)?,
        })
    }

    /// An object another stage already printed as a one-element array in Docker's shape (its
    /// key order is kept by taking the text as it is).
    fn printed(array: &str) -> anyhow::Result<Found> {
        let mut values: Vec<serde_json::Value> = serde_json::from_str(array)?;
        let value = values.pop().unwrap_or_default();
        Ok(Found {
            text: array_element(array),
            value,
        })
    }
}

/// `inspect`.
pub fn command(args: InspectArgs) -> anyhow::Result<i32> {
    let kind = args.kind.as_deref().map(Kind::parse).transpose()?;
    let root = &args.root.root;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match lookup(root, name, kind, args.size) {
            Ok(Some(object)) => found.push(object),
            Ok(None) => errors.push(Kind::missing(kind, name)),
            Err(e) => errors.push(chroot::cli::one_line(&e)),
        }
    }
    match &args.format {
        Some(template) => {
            for object in &found {
                println!("{}", crate::format::render(template, &object.value)?);
            }
        }
        None => println!("{}", json_array(&found)),
    }
    // Docker prints what it found, then what it did not, and fails if anything was missing.
    for error in &errors {
        eprintln!("Error: {error}");
    }
    Ok(i32::from(!errors.is_empty()))
}

/// The object `name` of `kind`, or of the first kind that has one; `None` when none has.
fn lookup(
    root: &Path,
    name: &str,
    kind: Option<Kind>,
    size: bool,
) -> anyhow::Result<Option<Found>> {
    let kinds = match kind {
        Some(kind) => vec![kind],
        None => Kind::ALL.to_vec(),
    };
    for kind in kinds {
        if let Some(found) = lookup_kind(root, name, kind, size)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The object `name` of `kind`, `None` when there is no such one.
fn lookup_kind(root: &Path, name: &str, kind: Kind, size: bool) -> anyhow::Result<Option<Found>> {
    match kind {
        Kind::Container => match crate::lifecycle::find(root, name) {
            Ok(record) => {
                let stores = Stores::load(root, std::slice::from_ref(&record))?;
                Found::of(&container_json(&record, &stores, size)).map(Some)
            }
            Err(e) if is_no_such_container(&e) => Ok(None),
            Err(e) => Err(e),
        },
        // Every failure to find an image, network or volume by this name means "not one".
        Kind::Image => {
            // No image store, no image (and opening one would make it).
            if !root.join("images").is_dir() {
                return Ok(None);
            }
            let store = images::Store::open(root)?;
            match images::ops::inspect(&store, name) {
                Ok(image) => Found::of(&image).map(Some),
                Err(_) => Ok(None),
            }
        }
        Kind::Network => match networking::store::inspect(root, name) {
            Ok(network) => Found::printed(&networking::store::inspect_json(&[network])).map(Some),
            Err(_) => Ok(None),
        },
        Kind::Volume => match volumes::store::inspect(root, name) {
            Ok(volume) => {
                let mut values: Vec<serde_json::Value> =
                    serde_json::from_str(&volumes::store::inspect_json(&[volume]))?;
                Found::of(&values.pop().unwrap_or_default()).map(Some)
            }
            Err(_) => Ok(None),
        },
    }
}

fn is_no_such_container(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<RecordError>(),
        Some(RecordError::NoSuchContainer(_))
    )
}

/// Pretty JSON, indented by four spaces as Docker's CLI indents it.
pub fn pretty(value: &impl Serialize) -> anyhow::Result<String> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer)?;
    Ok(String::from_utf8(out)?)
}

/// The element of a pretty-printed one-element array, as it sits inside the array.
fn array_element(array: &str) -> String {
    array
        .strip_prefix("[\n")
        .and_then(|a| a.strip_suffix("\n]"))
        .unwrap_or(array)
        .to_string()
}

/// The objects as one pretty array (`[]` for none).
fn json_array(found: &[Found]) -> String {
    if found.is_empty() {
        return "[]".into();
    }
    let elements: Vec<&str> = found.iter().map(|f| f.text.as_str()).collect();
    format!("[\n{}\n]", elements.join(",\n"))
}

// --- what the other stores say ------------------------------------------------------------------

/// What stage 04's image store says about one image, as a container's JSON needs it.
#[derive(Debug, Clone, Default)]
pub struct ImageFacts {
    /// Bytes of its layers.
    pub size: u64,
    /// Its layers' digests, lowest first.
    pub diff_ids: Vec<String>,
    /// Its layers' directories, lowest first.
    pub layer_dirs: Vec<PathBuf>,
    /// Its `EXPOSE`d ports (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// Its `VOLUME`s.
    pub volumes: Vec<String>,
}

impl ImageFacts {
    /// Reads image `id` from `store`; `None` if it is not there.
    pub fn read(store: &images::Store, id: &str) -> Option<ImageFacts> {
        let image = store.image(&images::Digest::parse(id).ok()?).ok()?;
        let config = image.config.config().clone().unwrap_or_default();
        let diff_ids: Vec<images::Digest> =
            image.layers.iter().map(|l| l.diff_id.clone()).collect();
        Some(ImageFacts {
            size: image.size(),
            layer_dirs: diff_ids.iter().map(|d| store.layer_dir(d)).collect(),
            diff_ids: diff_ids.iter().map(ToString::to_string).collect(),
            exposed_ports: config.exposed_ports().clone().unwrap_or_default(),
            volumes: config.volumes().clone().unwrap_or_default(),
        })
    }
}

/// What the stores of stages 04 to 06 say about a set of containers, read once: listing fifty
/// containers reads each store once, not fifty times. Tests make one in memory.
#[derive(Debug, Clone, Default)]
pub struct Stores {
    /// The store's root.
    pub root: PathBuf,
    /// Every network, with its endpoints.
    pub networks: Vec<Network>,
    /// Every volume, with the containers using it.
    pub volumes: Vec<Volume>,
    /// The containers' images, by id.
    pub images: BTreeMap<String, ImageFacts>,
    /// Published ports as the firewall has them: read only when a running container has a
    /// `-p` whose host port the kernel picked, which only the firewall's rules remember.
    pub published: Vec<Publication>,
}

impl Stores {
    /// Nothing known yet about the store at `root`.
    pub fn empty(root: &Path) -> Stores {
        Stores {
            root: root.to_path_buf(),
            ..Stores::default()
        }
    }

    /// Reads what `records` need from the store at `root`.
    pub fn load(root: &Path, records: &[Record]) -> anyhow::Result<Stores> {
        let mut stores = Stores::empty(root);
        if records.is_empty() {
            return Ok(stores);
        }
        stores.networks = networking::store::list(root)?;
        stores.volumes = volumes::store::list(root)?;
        let store = images::Store::open(root)?;
        for record in records {
            if !record.image_id.is_empty()
                && !stores.images.contains_key(&record.image_id)
                && let Some(facts) = ImageFacts::read(&store, &record.image_id)
            {
                stores.images.insert(record.image_id.clone(), facts);
            }
        }
        if records.iter().any(picks_a_port) {
            // Without iptables there is nothing published to read: the ports show unpublished.
            stores.published = networking::firewall::published().unwrap_or_default();
        }
        Ok(stores)
    }
}

/// A running container with a `-p` whose host port the kernel picked (`-p 80`).
fn picks_a_port(record: &Record) -> bool {
    is_up(&record.state) && spec_ports(record).iter().any(|p| p.host_port == 0)
}

// --- the parts Docker's JSON and `ps` share ------------------------------------------------------

/// Running as Docker counts it: its processes exist (paused ones too), or it is between two
/// runs of its restart policy. `ps` lists these without `-a`.
pub fn is_up(state: &State) -> bool {
    matches!(
        state.status,
        Status::Running | Status::Paused | Status::Restarting
    )
}

/// Its processes exist: only then does it have a network endpoint and published ports.
fn has_processes(state: &State) -> bool {
    matches!(state.status, Status::Running | Status::Paused)
}

/// What the container runs: the entrypoint, then the command.
pub fn command_line(record: &Record) -> Vec<String> {
    record
        .config
        .entrypoint
        .iter()
        .chain(&record.config.cmd)
        .cloned()
        .collect()
}

/// Its `-p` flags, parsed (they were checked at create).
fn spec_ports(record: &Record) -> Vec<PortMapping> {
    record
        .spec
        .volumes
        .network
        .network
        .ports()
        .unwrap_or_default()
}

/// Its `-p` flags without the ones `-P` added: what `HostConfig.PortBindings` shows.
fn asked_ports(record: &Record) -> Vec<PortMapping> {
    let mut network = record.spec.volumes.network.network.clone();
    let added = &record.spec.wiring.published_all;
    network.publish.retain(|flag| !added.contains(flag));
    network.ports().unwrap_or_default()
}

/// Its `--expose` ports (`80/tcp`), each of a range.
fn spec_exposed(record: &Record) -> Vec<String> {
    record
        .spec
        .wiring
        .expose
        .iter()
        .flat_map(|range| crate::wiring::expose_range(range).unwrap_or_default())
        .collect()
}

/// Where `--network` put it.
fn network_choice(record: &Record) -> Choice {
    NetworkArgs::choice(record.spec.image_args().namespaces.network.as_deref())
}

/// Its published ports as they are now: a host port of 0 replaced by the one the kernel picked
/// (left at 0 when the firewall does not say).
pub fn published_ports(record: &Record, stores: &Stores) -> Vec<PortMapping> {
    let comment = networking::firewall::container_comment(&record.id);
    spec_ports(record)
        .into_iter()
        .map(|mut port| {
            if port.host_port == 0 {
                let picked = stores.published.iter().find(|p| {
                    p.comment == comment
                        && p.mapping.container_port == port.container_port
                        && p.mapping.protocol == port.protocol
                        && p.mapping.host_addr() == port.host_addr()
                });
                port.host_port = picked.map_or(0, |p| p.mapping.host_port);
            }
            port
        })
        .collect()
}

/// `80/tcp`: a container port as Docker's maps key it.
fn port_key(port: u16, protocol: &str) -> String {
    format!("{port}/{protocol}")
}

/// `NetworkSettings.Ports`: while it runs on a network of skiff's, each published port with its
/// host address and port, and the image's exposed ports with `null`; `{}` otherwise, as Docker
/// shows a stopped container or one on the host's network.
pub fn network_ports(record: &Record, stores: &Stores) -> PortMap {
    let mut ports = PortMap::new();
    if !has_processes(&record.state) || !matches!(network_choice(record), Choice::Attach(_)) {
        return ports;
    }
    if let Some(image) = stores.images.get(&record.image_id) {
        for exposed in &image.exposed_ports {
            ports.insert(normal_port(exposed), None);
        }
    }
    for exposed in spec_exposed(record) {
        ports.insert(exposed, None);
    }
    for port in published_ports(record, stores) {
        let bindings = ports
            .entry(port_key(port.container_port, port.protocol.as_str()))
            .or_insert(None);
        if port.host_port != 0 {
            bindings.get_or_insert_with(Vec::new).push(PortBinding {
                host_ip: port.host_addr().to_string(),
                host_port: port.host_port.to_string(),
            });
        }
    }
    ports
}

/// An image's `EXPOSE` entry with its protocol (`80` is `80/tcp`).
fn normal_port(exposed: &str) -> String {
    if exposed.contains('/') {
        exposed.to_string()
    } else {
        format!("{exposed}/tcp")
    }
}

/// One network a container is on: its name, the network (when it still exists), and the
/// container's endpoint on it (only while it runs).
pub struct Attachment<'a> {
    /// The network's name.
    pub name: String,
    /// The network.
    pub network: Option<&'a Network>,
    /// The container's endpoint on it.
    pub endpoint: Option<&'a Endpoint>,
}

/// The networks a container is on: the one `--network` named (kept while it is stopped, as
/// Docker keeps it), and any it has an endpoint on; sorted by name.
pub fn attachments<'a>(record: &Record, stores: &'a Stores) -> Vec<Attachment<'a>> {
    let named = match network_choice(record) {
        Choice::Host => vec!["host".to_string()],
        Choice::None => vec!["none".to_string()],
        Choice::Container(_) => Vec::new(),
        // With what `network connect` and `disconnect` changed.
        Choice::Attach(_) => record.spec.network_names(),
    };
    let find = |key: &str| {
        stores
            .networks
            .iter()
            .find(|n| n.name == key)
            .or_else(|| stores.networks.iter().find(|n| n.id.starts_with(key)))
    };
    let mut names: Vec<String> = Vec::new();
    for key in named {
        let name = find(&key).map_or(key.clone(), |n| n.name.clone());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for network in &stores.networks {
        if network.endpoint(&record.id).is_some() && !names.contains(&network.name) {
            names.push(network.name.clone());
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let network = find(&name);
            Attachment {
                endpoint: network.and_then(|n| n.endpoint(&record.id)),
                network,
                name,
            }
        })
        .collect()
}

/// The container's mounts as Docker lists them: its volumes (named and anonymous), bind mounts
/// and `--mount type=tmpfs` (a `--tmpfs` is in `HostConfig.Tmpfs` only), by destination.
pub fn mount_points(record: &Record, stores: &Stores) -> Vec<MountPoint> {
    let flags = &record.spec.volumes.volumes;
    let specs = volumes::spec::all(&flags.volume, &flags.mount, &[]).unwrap_or_default();
    let mut points: Vec<MountPoint> = specs
        .iter()
        .map(|spec| mount_point(spec, record, stores))
        .collect();
    // The anonymous volumes of the image's VOLUMEs, which no flag names.
    for volume in anonymous_volumes(record, stores) {
        let target = volume.target.clone().unwrap_or_default();
        if !points.iter().any(|p| p.destination == target) {
            points.push(volume_point(volume, &target, false));
        }
    }
    points.sort_by(|a, b| a.destination.cmp(&b.destination));
    points
}

/// The anonymous volumes `record`'s container has.
fn anonymous_volumes<'a>(record: &Record, stores: &'a Stores) -> impl Iterator<Item = &'a Volume> {
    let id = record.id.clone();
    stores
        .volumes
        .iter()
        .filter(move |v| v.anonymous && v.users.contains(&id))
}

fn mount_point(spec: &MountSpec, record: &Record, stores: &Stores) -> MountPoint {
    match &spec.source {
        Source::Volume(name) => {
            let volume = match name {
                Some(name) => stores.volumes.iter().find(|v| &v.name == name),
                None => anonymous_volumes(record, stores)
                    .find(|v| v.target.as_deref() == Some(spec.target.as_str())),
            };
            match (volume, name) {
                (Some(volume), _) => volume_point(volume, &spec.target, spec.readonly),
                // A named volume is made at the first start: where it will be.
                (None, Some(name)) => MountPoint {
                    name: name.clone(),
                    source: path_text(&volumes::store::mountpoint(&stores.root, name)),
                    ..volume_point_parts(&spec.target, spec.readonly)
                },
                // An anonymous volume gets its name at the first start.
                (None, None) => volume_point_parts(&spec.target, spec.readonly),
            }
        }
        Source::Bind(path) => MountPoint {
            kind: "bind",
            name: String::new(),
            source: path_text(path),
            destination: spec.target.clone(),
            driver: String::new(),
            mode: if spec.readonly { "ro" } else { "" }.into(),
            rw: !spec.readonly,
            propagation: "rprivate",
        },
        Source::Tmpfs(_) => MountPoint {
            kind: "tmpfs",
            name: String::new(),
            source: String::new(),
            destination: spec.target.clone(),
            driver: String::new(),
            mode: String::new(),
            rw: !spec.readonly,
            propagation: "",
        },
    }
}

fn volume_point(volume: &Volume, target: &str, readonly: bool) -> MountPoint {
    MountPoint {
        name: volume.name.clone(),
        source: path_text(&volume.mountpoint),
        ..volume_point_parts(target, readonly)
    }
}

/// A volume mount without its name and source. Docker's mode for a volume is `z` (relabel for
/// SELinux), or `ro`.
fn volume_point_parts(target: &str, readonly: bool) -> MountPoint {
    MountPoint {
        kind: "volume",
        name: String::new(),
        source: String::new(),
        destination: target.to_string(),
        driver: "local".into(),
        mode: if readonly { "ro" } else { "z" }.into(),
        rw: !readonly,
        propagation: "",
    }
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// Bytes of the container's writable layer: what it changed in its image.
pub fn size_rw(root: &Path, id: &str) -> u64 {
    volumes::store::disk_usage(&container_dir(root, id).join("upper"))
}

// --- the container's JSON -----------------------------------------------------------------------

// ANCHOR: container_json
/// Docker's JSON of the container of `record`; with `size`, its sizes too (a walk of its
/// writable layer).
pub fn container_json(record: &Record, stores: &Stores, size: bool) -> ContainerJson {
    let dir = container_dir(&stores.root, &record.id);
    let command = command_line(record);
    let size_rw = size.then(|| size_rw(&stores.root, &record.id));
    let image_size = stores.images.get(&record.image_id).map_or(0, |i| i.size);
    ContainerJson {
        id: record.id.clone(),
        created: record.created.clone(),
        path: command.first().cloned().unwrap_or_default(),
        args: command.iter().skip(1).cloned().collect(),
        state: state_json(&record.state),
        image: record.image_id.clone(),
        resolv_conf_path: path_text(&dir.join("resolv.conf")),
        hostname_path: path_text(&dir.join("hostname")),
        hosts_path: path_text(&dir.join("hosts")),
        log_path: path_text(&crate::logs::log_path(&dir, &record.id)),
        name: format!("/{}", record.name),
        restart_count: record.state.restart_count,
        driver: "overlay",
        platform: "linux",
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: None,
        host_config: host_config(record),
        graph_driver: graph_driver(record, stores, &dir),
        size_rw,
        size_root_fs: size_rw.map(|rw| rw + image_size),
        mounts: mount_points(record, stores),
        config: config_json(record, stores),
        network_settings: network_settings(record, stores),
    }
}
// ANCHOR_END: container_json

fn state_json(state: &State) -> StateJson {
    let time = |t: &Option<String>| t.clone().unwrap_or_else(|| ZERO_TIME.into());
    StateJson {
        status: state.status.as_str(),
        running: is_up(state),
        paused: state.status == Status::Paused,
        restarting: state.status == Status::Restarting,
        oom_killed: state.oom_killed,
        dead: state.status == Status::Dead,
        pid: state
            .pid
            .filter(|_| has_processes(state))
            .map_or(0, |p| p.pid),
        exit_code: state.exit_code,
        error: state.error.clone(),
        started_at: time(&state.started_at),
        finished_at: time(&state.finished_at),
    }
}

/// A Go slice that is nil when empty.
fn non_empty<T: Clone>(items: &[T]) -> Option<Vec<T>> {
    (!items.is_empty()).then(|| items.to_vec())
}

fn host_config(record: &Record) -> HostConfig {
    let spec = &record.spec;
    let ns = &spec.image_args().namespaces;
    let flags = &spec.volumes.volumes;
    let policy = spec.restart_policy().unwrap_or(RestartPolicy::No);
    // Docker writes "" for a private pid or uts namespace and "private" for ipc and cgroup.
    let host_or_empty = |mode: &Option<String>| match mode.as_deref() {
        Some("host") => "host".to_string(),
        _ => String::new(),
    };
    let or_private = |mode: &Option<String>| mode.clone().unwrap_or_else(|| "private".into());
    HostConfig {
        binds: non_empty(&flags.volume),
        container_id_file: spec
            .lifecycle
            .container_id_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        log_config: LogConfig {
            kind: "json-file",
            config: key_values(&spec.lifecycle.log_opt),
        },
        network_mode: ns.network.clone().unwrap_or_else(|| "default".into()),
        port_bindings: port_bindings(&asked_ports(record)),
        restart_policy: RestartPolicyJson {
            name: policy.name(),
            maximum_retry_count: policy.max_retries(),
        },
        auto_remove: spec.auto_remove(),
        volume_driver: String::new(),
        volumes_from: non_empty(&spec.wiring.volumes_from),
        cap_add: non_empty(&ns.cap_add),
        cap_drop: non_empty(&ns.cap_drop),
        cgroupns_mode: or_private(&ns.cgroupns),
        dns: Vec::new(),
        dns_options: Vec::new(),
        dns_search: Vec::new(),
        extra_hosts: None,
        group_add: None,
        ipc_mode: or_private(&ns.ipc),
        cgroup: String::new(),
        links: None,
        oom_score_adj: 0,
        pid_mode: host_or_empty(&ns.pid),
        privileged: ns.privileged,
        publish_all_ports: spec.wiring.publish_all,
        readonly_rootfs: flags.read_only,
        security_opt: non_empty(&ns.security_opt),
        tmpfs: tmpfs_options(&flags.tmpfs),
        uts_mode: host_or_empty(&ns.uts),
        userns_mode: ns.userns.clone().unwrap_or_default(),
        shm_size: SHM_SIZE,
        runtime: "skiff",
        console_size: [0, 0],
        isolation: String::new(),
        resources: Resources {
            devices: ns
                .device
                .iter()
                .filter_map(|spec| namespaces::devices::DeviceSpec::parse(spec).ok())
                .map(|d| crate::docker_json::DeviceJson {
                    path_on_host: d.host.display().to_string(),
                    path_in_container: d.container,
                    cgroup_permissions: d.permissions,
                })
                .collect(),
            ..resources(&spec.image_args().cgroup)
        },
        mounts: host_mounts(&flags.mount),
        // --privileged masks nothing and leaves nothing read-only.
        masked_paths: namespaces::filesystem::MASKED_PATHS
            .iter()
            .filter(|_| !ns.privileged)
            .map(|(path, _)| (*path).to_string())
            .collect(),
        readonly_paths: namespaces::filesystem::READONLY_PATHS
            .iter()
            .filter(|_| !ns.privileged)
            .map(|path| (*path).to_string())
            .collect(),
        init: ns.init.then_some(true),
    }
}

/// `KEY=VALUE` flags as a map (`--log-opt max-size=10m`).
fn key_values(flags: &[String]) -> BTreeMap<String, String> {
    flags
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (f.clone(), String::new()),
        })
        .collect()
}

/// `HostConfig.PortBindings`: `-p` as given: no address is `""`, no host port is `""`.
fn port_bindings(ports: &[PortMapping]) -> PortMap {
    let mut map = PortMap::new();
    for port in ports {
        let binding = PortBinding {
            host_ip: port.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            host_port: match port.host_port {
                0 => String::new(),
                n => n.to_string(),
            },
        };
        map.entry(port_key(port.container_port, port.protocol.as_str()))
            .or_insert(None)
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    map
}

/// `HostConfig.Tmpfs`: each `--tmpfs` target with its options as given.
fn tmpfs_options(flags: &[String]) -> BTreeMap<String, String> {
    flags
        .iter()
        .filter_map(|flag| {
            let target = volumes::spec::parse_tmpfs(flag).ok()?.target;
            let options = flag.split_once(':').map_or("", |(_, o)| o);
            Some((target, options.to_string()))
        })
        .collect()
}

/// `HostConfig.Mounts`: the `--mount` flags, parsed; omitted when there are none.
fn host_mounts(flags: &[String]) -> Option<Vec<HostMount>> {
    let mounts: Vec<HostMount> = flags
        .iter()
        .filter_map(|flag| volumes::spec::parse_mount(flag).ok())
        .map(|spec| HostMount {
            kind: spec.kind(),
            source: match &spec.source {
                Source::Volume(name) => name.clone().unwrap_or_default(),
                Source::Bind(path) => path_text(path),
                Source::Tmpfs(_) => String::new(),
            },
            target: spec.target.clone(),
            read_only: spec.readonly,
        })
        .collect();
    (!mounts.is_empty()).then_some(mounts)
}

// ANCHOR: resources
/// Stage 03's limits in Docker's units. The flags were checked against the host's CPUs at
/// create; here they are read with stage 03's own parser against any CPU number, so that a
/// container made on a bigger host still shows what it asked for.
fn resources(flags: &cgroups::CgroupArgs) -> Resources {
    let limits = cgroups::CpuList::parse("0-4095")
        .and_then(|every_cpu| flags.limits_for(&every_cpu).ok())
        .unwrap_or_default();
    let nano_cpus = limits.cpu_quota.map_or(0, |q| {
        let nanos = u128::from(q.quota_us) * 1_000_000_000 / u128::from(q.period_us.max(1));
        u64::try_from(nanos).unwrap_or(u64::MAX)
    });
    let signed = |bytes: u64| i64::try_from(bytes).unwrap_or(i64::MAX);
    // Docker's total of memory and swap: with a memory limit and no swap flag, skiff gives no
    // swap, so the total is the memory itself.
    let memory_swap = match (limits.memory, limits.memory_swap) {
        (None, _) => 0,
        (Some(_), Some(cgroups::Swap::Unlimited)) => -1,
        (Some(_), Some(cgroups::Swap::Total(total))) => signed(total),
        (Some(memory), None) => signed(memory),
    };
    Resources {
        cpu_shares: limits.cpu_shares.unwrap_or(0),
        memory: limits.memory.unwrap_or(0),
        nano_cpus,
        cgroup_parent: flags.cgroup_parent.clone().unwrap_or_default(),
        blkio_weight: limits.blkio_weight.unwrap_or(0),
        cpuset_cpus: flags.cpuset_cpus.clone().unwrap_or_default(),
        memory_swap,
        // Docker keeps no limit for "unlimited" (0 or -1): null.
        pids_limit: match limits.pids {
            Some(cgroups::PidsLimit::Max(n)) => Some(n),
            _ => None,
        },
        device_cgroup_rules: non_empty(&flags.device_cgroup_rule),
        ..Resources::default()
    }
}
// ANCHOR_END: resources

fn graph_driver(record: &Record, stores: &Stores, dir: &Path) -> GraphDriver {
    let data = stores.images.get(&record.image_id).map(|image| {
        let lowers: Vec<String> = image
            .layer_dirs
            .iter()
            .rev()
            .map(|d| path_text(d))
            .collect();
        GraphData {
            lower_dir: lowers.join(":"),
            merged_dir: path_text(&images::overlay::rootfs_of(dir)),
            upper_dir: path_text(&dir.join("upper")),
            work_dir: path_text(&dir.join("work")),
        }
    });
    GraphDriver {
        data,
        name: "overlay",
    }
}

fn config_json(record: &Record, stores: &Stores) -> ConfigJson {
    let config = &record.config;
    let spec = &record.spec;
    let image = stores.images.get(&record.image_id);
    // A foreground run attaches its streams (stdout and stderr, stdin with -i); -d none.
    let streams = (!spec.lifecycle.detach)
        .then(|| spec.attached().ok())
        .flatten();
    let attached = |pick: fn(&crate::attach::Streams) -> bool| streams.as_ref().is_some_and(pick);
    let mut exposed: Vec<String> = image.map(|i| i.exposed_ports.clone()).unwrap_or_default();
    exposed.extend(spec_exposed(record));
    exposed.extend(
        spec_ports(record)
            .iter()
            .map(|p| port_key(p.container_port, p.protocol.as_str())),
    );
    let mut volumes: Vec<String> = image.map(|i| i.volumes.clone()).unwrap_or_default();
    volumes.extend(anonymous_targets(record));
    ConfigJson {
        hostname: config.hostname.clone(),
        domainname: String::new(),
        user: config.user.clone(),
        attach_stdin: attached(|s| s.stdin),
        attach_stdout: attached(|s| s.stdout),
        attach_stderr: attached(|s| s.stderr),
        exposed_ports: set(exposed.iter().map(|p| normal_port(p))),
        tty: config.tty,
        open_stdin: config.open_stdin,
        stdin_once: config.open_stdin && attached(|s| s.stdin),
        env: config.env.clone(),
        cmd: non_empty(&config.cmd),
        image: config.image.clone(),
        volumes: set(volumes.into_iter()),
        working_dir: config.working_dir.clone(),
        entrypoint: non_empty(&config.entrypoint),
        on_build: None,
        labels: config.labels.clone(),
        // Shown when asked for: SIGTERM is everyone's default.
        stop_signal: spec
            .lifecycle
            .stop_signal
            .is_some()
            .then(|| config.stop_signal.clone()),
        stop_timeout: config.stop_timeout,
    }
}

/// The targets of `-v /path` (volumes without a name).
fn anonymous_targets(record: &Record) -> Vec<String> {
    let flags = &record.spec.volumes.volumes;
    volumes::spec::all(&flags.volume, &flags.mount, &[])
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.source == Source::Volume(None))
        .map(|s| s.target)
        .collect()
}

/// A Go `map[string]struct{}` used as a set; nil when empty.
fn set(items: impl Iterator<Item = String>) -> Option<BTreeMap<String, Empty>> {
    let map: BTreeMap<String, Empty> = items.map(|i| (i, Empty {})).collect();
    (!map.is_empty()).then_some(map)
}

// ANCHOR: network_settings
fn network_settings(record: &Record, stores: &Stores) -> NetworkSettings {
    let mut networks = BTreeMap::new();
    let mut default = EndpointAddress::default();
    for attachment in attachments(record, stores) {
        let settings = endpoint_settings(record, &attachment);
        if attachment.name == DEFAULT_NETWORK {
            default = EndpointAddress {
                endpoint_id: settings.endpoint_id.clone(),
                gateway: settings.gateway.clone(),
                ip_address: settings.ip_address.clone(),
                ip_prefix_len: settings.ip_prefix_len,
                mac_address: settings.mac_address.clone(),
                ..EndpointAddress::default()
            };
        }
        networks.insert(attachment.name, settings);
    }
    // Its network namespace, while it has one: the first process's.
    let sandbox_key = match record.state.pid {
        Some(pid) if has_processes(&record.state) => format!("/proc/{}/ns/net", pid.pid),
        _ => String::new(),
    };
    NetworkSettings {
        bridge: String::new(),
        sandbox_id: String::new(),
        hairpin_mode: false,
        link_local_ipv6_address: String::new(),
        link_local_ipv6_prefix_len: 0,
        ports: network_ports(record, stores),
        sandbox_key,
        secondary_ip_addresses: None,
        secondary_ipv6_addresses: None,
        default,
        networks,
    }
}
// ANCHOR_END: network_settings

/// One network's entry: what the flags asked for (kept while stopped), and the address, MAC
/// and gateway of the endpoint (empty while stopped, as Docker shows them).
fn endpoint_settings(record: &Record, attachment: &Attachment<'_>) -> EndpointSettings {
    let flags = &record.spec.volumes.network.network;
    // `--ip` is for the network `--network` named.
    let asked_here = match network_choice(record) {
        Choice::Attach(name) => attachment
            .network
            .is_some_and(|n| n.name == name || n.id.starts_with(&name)),
        _ => false,
    };
    let user_defined = attachment.network.is_some_and(|n| !n.is_predefined());
    let endpoint = attachment.endpoint;
    let network = attachment.network;
    EndpointSettings {
        ipam_config: flags
            .ip
            .clone()
            .filter(|_| asked_here)
            .map(|ip| IpamConfig { ipv4_address: ip }),
        links: None,
        // Docker gives a container on a network of the user's its short id as another name,
        // after the ones `network connect --alias` gave it.
        aliases: user_defined.then(|| {
            let mut aliases = match endpoint {
                Some(endpoint) => endpoint.aliases.clone(),
                // Stopped: what `network connect` asked for.
                None => connection_aliases(record, &attachment.name),
            };
            aliases.push(record.id.chars().take(12).collect());
            aliases
        }),
        network_id: network.map(|n| n.id.clone()).unwrap_or_default(),
        endpoint_id: String::new(),
        gateway: endpoint
            .and(network.and_then(|n| n.gateway))
            .map(|g| g.to_string())
            .unwrap_or_default(),
        ip_address: endpoint.map(|e| e.ip.to_string()).unwrap_or_default(),
        ip_prefix_len: endpoint
            .and(network.and_then(|n| n.subnet))
            .map_or(0, |s| s.prefix_len()),
        ipv6_gateway: String::new(),
        global_ipv6_address: String::new(),
        global_ipv6_prefix_len: 0,
        mac_address: endpoint.map(|e| e.mac.to_string()).unwrap_or_default(),
        driver_opts: None,
    }
}

/// The `--alias`es `network connect` gave the container on network `name`.
fn connection_aliases(record: &Record, name: &str) -> Vec<String> {
    record
        .spec
        .wiring
        .networks
        .connected
        .iter()
        .filter(|c| c.network == name)
        .flat_map(|c| c.aliases.clone())
        .collect()
}

// --- tests --------------------------------------------------------------------------------------

/// Records and stores made in memory, for the tests of `inspect` and `ps`.
#[cfg(test)]
pub(crate) mod testing {
    use clap::Parser;
    use namespaces::record::{Config, RECORD_VERSION, State};

    use crate::container::Record;
    use crate::spec::RunArgs;

    /// `create`'s command line.
    #[derive(Parser)]
    struct CreateLine {
        #[command(flatten)]
        run: RunArgs,
    }

    /// The record `skiff create ARGS...` would write, without an image store: the image's id is
    /// made from its name, the container's id from its `--name` (or `web`), the hostname is the
    /// short id. It is Created, at `2026-12-04T12:00:00Z`.
    pub fn record(args: &[&str]) -> Record {
        let line = CreateLine::try_parse_from(
            ["create", "--root", "/var/lib/skiff-test"]
                .iter()
                .chain(args),
        )
        .unwrap_or_else(|e| panic!("create {args:?}: {e}"));
        let spec = line.run;
        let name = spec.name().unwrap_or("web").to_string();
        let id = images::Digest::of_bytes(name.as_bytes()).hex().to_string();
        let (image, command) = spec.image_args().args.split_first().expect("an image");
        let image_id = images::Digest::of_bytes(image.as_bytes()).to_string();
        let entrypoint = spec.image_args().entrypoint.iter().cloned().collect();
        let config = Config {
            hostname: id[..12].to_string(),
            user: spec
                .image_args()
                .namespaces
                .user
                .clone()
                .unwrap_or_default(),
            env: spec.image_args().process.env.clone(),
            cmd: command.to_vec(),
            entrypoint,
            working_dir: "/".into(),
            labels: spec.labels().expect("labels"),
            stop_signal: format!("{:?}", spec.stop_signal().expect("a stop signal")),
            stop_timeout: spec.lifecycle.stop_timeout,
            tty: spec.lifecycle.tty,
            open_stdin: spec.lifecycle.interactive,
            image: image.clone(),
        };
        Record {
            version: RECORD_VERSION,
            id,
            name,
            created: "2026-12-04T12:00:00Z".into(),
            image: image.clone(),
            image_id,
            config,
            cgroup: None,
            state: State::default(),
            spec,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use namespaces::record::ProcessRef;
    use networking::ipam::{Mac, Subnet};
    use networking::store::Driver;
    use serde_json::json;

    use super::testing::record;
    use super::*;

    const ROOT: &str = "/var/lib/skiff-test";

    /// The JSON of `record` as `inspect` prints it, as a value.
    fn inspect_value(record: &Record, stores: &Stores) -> serde_json::Value {
        serde_json::to_value(container_json(record, stores, false)).unwrap()
    }

    fn running(mut record: Record) -> Record {
        record.state.status = Status::Running;
        record.state.pid = Some(ProcessRef {
            pid: 4242,
            start: 1,
        });
        record.state.started_at = Some("2026-12-04T12:01:00Z".into());
        record
    }

    /// The default bridge, with `record`'s container on it at 10.88.0.2.
    fn bridge_with(record: &Record) -> Network {
        let ip = Ipv4Addr::new(10, 88, 0, 2);
        Network {
            name: "bridge".into(),
            id: "b".repeat(64),
            driver: Driver::Bridge,
            subnet: Some(Subnet::parse("10.88.0.0/16").unwrap()),
            gateway: Some(Ipv4Addr::new(10, 88, 0, 1)),
            bridge: Some("skiff0".into()),
            parent: None,
            internal: false,
            created: "2026-12-04T12:00:00Z".into(),
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            ipam: Default::default(),
            endpoints: vec![Endpoint {
                container_id: record.id.clone(),
                name: record.name.clone(),
                hostname: record.config.hostname.clone(),
                ip,
                mac: Mac::for_ip(ip),
                host_link: "sk-12345678-bbb".into(),
                hosts_file: PathBuf::new(),
                aliases: Vec::new(),
                interface: "eth0".into(),
                dns: Vec::new(),
                ip6: None,
                publishes: None,
            }],
            ipv6: None,
        }
    }

    /// The keys of the outermost object of pretty JSON, in the order printed.
    fn top_level_keys(text: &str) -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("    \""))
            .filter_map(|l| l.split_once('"').map(|(k, _)| k.to_string()))
            .collect()
    }

    #[test]
    fn the_top_level_keys_are_dockers_in_dockers_order() {
        let web = record(&["--name", "web", "skiff-lab", "sleep", "60"]);
        let text = pretty(&container_json(
            &web,
            &Stores::empty(Path::new(ROOT)),
            false,
        ))
        .unwrap();
        assert_eq!(
            top_level_keys(&text),
            [
                "Id",
                "Created",
                "Path",
                "Args",
                "State",
                "Image",
                "ResolvConfPath",
                "HostnamePath",
                "HostsPath",
                "LogPath",
                "Name",
                "RestartCount",
                "Driver",
                "Platform",
                "MountLabel",
                "ProcessLabel",
                "AppArmorProfile",
                "ExecIDs",
                "HostConfig",
                "GraphDriver",
                "Mounts",
                "Config",
                "NetworkSettings"
            ]
        );
        let sized = pretty(&container_json(&web, &Stores::empty(Path::new(ROOT)), true)).unwrap();
        let keys = top_level_keys(&sized);
        let at = keys.iter().position(|k| k == "GraphDriver").unwrap();
        assert_eq!(keys[at + 1..at + 3], ["SizeRw", "SizeRootFs"]);
    }

    #[test]
    fn a_created_container_reads_as_docker_shows_one() {
        let web = record(&["--name", "web", "skiff-lab", "/bin/probe", "sleep", "60"]);
        let value = inspect_value(&web, &Stores::empty(Path::new(ROOT)));
        let dir = format!("{ROOT}/containers/{}", web.id);
        assert_eq!(value["Id"], json!(web.id));
        assert_eq!(value["Path"], json!("/bin/probe"));
        assert_eq!(value["Args"], json!(["sleep", "60"]));
        assert_eq!(value["Name"], json!("/web"));
        assert_eq!(value["Image"], json!(web.image_id));
        assert_eq!(value["HostsPath"], json!(format!("{dir}/hosts")));
        assert_eq!(
            value["LogPath"],
            json!(format!("{dir}/{}-json.log", web.id))
        );
        assert_eq!(value["ExecIDs"], json!(null));
        assert_eq!(
            value["State"],
            json!({
                "Status": "created", "Running": false, "Paused": false, "Restarting": false,
                "OOMKilled": false, "Dead": false, "Pid": 0, "ExitCode": 0, "Error": "",
                "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"
            })
        );
        // Not running: no ports, but the network it is on, without an address.
        let settings = &value["NetworkSettings"];
        assert_eq!(settings["Ports"], json!({}));
        assert_eq!(settings["IPAddress"], json!(""));
        assert_eq!(settings["Networks"]["bridge"]["IPAddress"], json!(""));
        assert_eq!(settings["SandboxKey"], json!(""));
    }

    #[test]
    fn a_running_container_has_its_address_and_published_ports() {
        let web = running(record(&[
            "--name",
            "web",
            "-p",
            "127.0.0.1:8080:80",
            "-p",
            "9090:90/udp",
            "skiff-lab",
        ]));
        let mut stores = Stores::empty(Path::new(ROOT));
        stores.networks = vec![bridge_with(&web)];
        stores.images.insert(
            web.image_id.clone(),
            ImageFacts {
                exposed_ports: vec!["443/tcp".into()],
                ..ImageFacts::default()
            },
        );
        let value = inspect_value(&web, &stores);
        assert_eq!(value["State"]["Pid"], json!(4242));
        assert_eq!(value["State"]["Running"], json!(true));
        assert_eq!(
            value["NetworkSettings"],
            json!({
                "Bridge": "",
                "SandboxID": "",
                "HairpinMode": false,
                "LinkLocalIPv6Address": "",
                "LinkLocalIPv6PrefixLen": 0,
                // Published ports with their bindings; one the image exposes only, null.
                "Ports": {
                    "443/tcp": null,
                    "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                    "90/udp": [{"HostIp": "0.0.0.0", "HostPort": "9090"}]
                },
                "SandboxKey": "/proc/4242/ns/net",
                "SecondaryIPAddresses": null,
                "SecondaryIPv6Addresses": null,
                "EndpointID": "",
                "Gateway": "10.88.0.1",
                "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0,
                "IPAddress": "10.88.0.2",
                "IPPrefixLen": 16,
                "IPv6Gateway": "",
                "MacAddress": "02:42:0a:58:00:02",
                "Networks": {
                    "bridge": {
                        "IPAMConfig": null,
                        "Links": null,
                        "Aliases": null,
                        "NetworkID": "b".repeat(64),
                        "EndpointID": "",
                        "Gateway": "10.88.0.1",
                        "IPAddress": "10.88.0.2",
                        "IPPrefixLen": 16,
                        "IPv6Gateway": "",
                        "GlobalIPv6Address": "",
                        "GlobalIPv6PrefixLen": 0,
                        "MacAddress": "02:42:0a:58:00:02",
                        "DriverOpts": null
                    }
                }
            })
        );
        // As given: no address is "", and the container's ports are exposed.
        assert_eq!(
            value["HostConfig"]["PortBindings"],
            json!({
                "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                "90/udp": [{"HostIp": "", "HostPort": "9090"}]
            })
        );
        assert_eq!(
            value["Config"]["ExposedPorts"],
            json!({"443/tcp": {}, "80/tcp": {}, "90/udp": {}})
        );
    }

    #[test]
    fn port_bindings_show_only_the_ports_asked_for_with_p() {
        // -p 127.0.0.1:8080:80 -P, where -P added the image's 443/tcp.
        let mut web = running(record(&[
            "--name",
            "web",
            "-p",
            "127.0.0.1:8080:80",
            "-P",
            "skiff-lab",
        ]));
        web.spec
            .volumes
            .network
            .network
            .publish
            .push("443/tcp".into());
        web.spec.wiring.published_all.push("443/tcp".into());
        let mut stores = Stores::empty(Path::new(ROOT));
        stores.networks = vec![bridge_with(&web)];
        let value = inspect_value(&web, &stores);
        assert_eq!(
            value["HostConfig"]["PortBindings"],
            json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]})
        );
        let ports = &value["NetworkSettings"]["Ports"];
        assert!(ports.get("443/tcp").is_some(), "{ports}");
    }

    #[test]
    fn a_stopped_container_keeps_its_network_without_an_address() {
        let mut web = record(&["--name", "web", "-p", "8080:80", "skiff-lab"]);
        web.state.status = Status::Exited;
        web.state.exit_code = 137;
        web.state.started_at = Some("2026-12-04T12:01:00Z".into());
        web.state.finished_at = Some("2026-12-04T12:02:00Z".into());
        let mut bridge = bridge_with(&web);
        bridge.endpoints.clear();
        let mut stores = Stores::empty(Path::new(ROOT));
        stores.networks = vec![bridge];
        let value = inspect_value(&web, &stores);
        let settings = &value["NetworkSettings"];
        assert_eq!(settings["Ports"], json!({}));
        assert_eq!(
            settings["Networks"]["bridge"]["NetworkID"],
            json!("b".repeat(64))
        );
        assert_eq!(settings["Networks"]["bridge"]["IPAddress"], json!(""));
        assert_eq!(settings["Networks"]["bridge"]["IPPrefixLen"], json!(0));
        assert_eq!(value["State"]["ExitCode"], json!(137));
        assert_eq!(value["State"]["FinishedAt"], json!("2026-12-04T12:02:00Z"));
    }

    #[test]
    fn host_and_none_networks_are_named_too() {
        let stores = Stores::empty(Path::new(ROOT));
        for mode in ["host", "none"] {
            let c = record(&["--network", mode, "skiff-lab"]);
            let value = inspect_value(&c, &stores);
            assert_eq!(value["HostConfig"]["NetworkMode"], json!(mode));
            let networks = value["NetworkSettings"]["Networks"].as_object().unwrap();
            assert_eq!(networks.keys().collect::<Vec<_>>(), [mode]);
        }
        let c = record(&["skiff-lab"]);
        assert_eq!(
            inspect_value(&c, &stores)["HostConfig"]["NetworkMode"],
            json!("default")
        );
    }

    #[test]
    fn host_config_has_the_flags_in_dockers_units() {
        let db = record(&[
            "--name",
            "db",
            "--memory",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "100",
            "--cpu-shares",
            "512",
            "--restart",
            "on-failure:3",
            "--cap-add",
            "NET_ADMIN",
            "--read-only",
            "--tmpfs",
            "/run:size=1m",
            "--log-opt",
            "max-size=10m",
            "--init",
            "skiff-lab",
        ]);
        let host = &inspect_value(&db, &Stores::empty(Path::new(ROOT)))["HostConfig"];
        assert_eq!(host["Memory"], json!(64 * 1024 * 1024));
        assert_eq!(host["MemorySwap"], json!(64 * 1024 * 1024));
        assert_eq!(host["NanoCpus"], json!(500_000_000));
        assert_eq!(host["CpuShares"], json!(512));
        assert_eq!(host["PidsLimit"], json!(100));
        assert_eq!(
            host["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(host["CapAdd"], json!(["NET_ADMIN"]));
        assert_eq!(host["CapDrop"], json!(null));
        assert_eq!(host["ReadonlyRootfs"], json!(true));
        assert_eq!(host["Tmpfs"], json!({"/run": "size=1m"}));
        assert_eq!(
            host["LogConfig"],
            json!({"Type": "json-file", "Config": {"max-size": "10m"}})
        );
        assert_eq!(host["Init"], json!(true));
        assert_eq!(host["Runtime"], json!("skiff"));
        assert_eq!(host["ShmSize"], json!(67_108_864));

        let plain = record(&["skiff-lab"]);
        let host = &inspect_value(&plain, &Stores::empty(Path::new(ROOT)))["HostConfig"];
        assert_eq!(host["PidsLimit"], json!(null));
        assert_eq!(host["Memory"], json!(0));
        assert_eq!(host["MemorySwap"], json!(0));
        assert_eq!(host["Binds"], json!(null));
        assert_eq!(host["PortBindings"], json!({}));
        assert_eq!(
            host["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        assert_eq!(host["IpcMode"], json!("private"));
        assert_eq!(host["PidMode"], json!(""));
        // omitempty: absent, not null.
        for key in ["Tmpfs", "Mounts", "Init"] {
            assert!(host.get(key).is_none(), "{key}");
        }
    }

    #[test]
    fn mounts_name_volumes_binds_and_mount_tmpfs() {
        let mut web = record(&[
            "--name",
            "web",
            "-v",
            "data:/srv",
            "-v",
            "/host/conf:/etc/app:ro",
            "-v",
            "/cache",
            "--mount",
            "type=tmpfs,dst=/scratch",
            "--tmpfs",
            "/run",
            "skiff-lab",
        ]);
        web.state.status = Status::Exited;
        let volume = |name: &str, anonymous: bool, target: Option<&str>| Volume {
            name: name.into(),
            created: String::new(),
            labels: BTreeMap::new(),
            anonymous,
            users: vec![web.id.clone()],
            target: target.map(str::to_string),
            mountpoint: volumes::store::mountpoint(Path::new(ROOT), name),
        };
        let mut stores = Stores::empty(Path::new(ROOT));
        stores.volumes = vec![
            volume("data", false, None),
            volume(&"c".repeat(64), true, Some("/cache")),
            // The image's VOLUME /var/log, which no flag names.
            volume(&"d".repeat(64), true, Some("/var/log")),
        ];
        let value = inspect_value(&web, &stores);
        let source = |name: &str| format!("{ROOT}/volumes/{name}/_data");
        assert_eq!(
            value["Mounts"],
            json!([
                {"Type": "volume", "Name": "c".repeat(64), "Source": source(&"c".repeat(64)),
                 "Destination": "/cache", "Driver": "local", "Mode": "z", "RW": true,
                 "Propagation": ""},
                {"Type": "bind", "Source": "/host/conf", "Destination": "/etc/app",
                 "Mode": "ro", "RW": false, "Propagation": "rprivate"},
                {"Type": "tmpfs", "Source": "", "Destination": "/scratch", "Mode": "",
                 "RW": true, "Propagation": ""},
                {"Type": "volume", "Name": "data", "Source": source("data"),
                 "Destination": "/srv", "Driver": "local", "Mode": "z", "RW": true,
                 "Propagation": ""},
                {"Type": "volume", "Name": "d".repeat(64), "Source": source(&"d".repeat(64)),
                 "Destination": "/var/log", "Driver": "local", "Mode": "z", "RW": true,
                 "Propagation": ""}
            ])
        );
        assert_eq!(
            value["HostConfig"]["Binds"],
            json!(["data:/srv", "/host/conf:/etc/app:ro", "/cache"])
        );
        assert_eq!(
            value["HostConfig"]["Mounts"],
            json!([{"Type": "tmpfs", "Target": "/scratch"}])
        );
        assert_eq!(value["Config"]["Volumes"], json!({"/cache": {}}));
    }

    #[test]
    fn config_is_what_runs() {
        let job = record(&[
            "--name",
            "job",
            "-d",
            "-e",
            "A=1",
            "--label",
            "tier=db",
            "--stop-timeout",
            "3",
            "skiff-lab",
            "/bin/probe",
            "exit",
            "3",
        ]);
        let config = &inspect_value(&job, &Stores::empty(Path::new(ROOT)))["Config"];
        assert_eq!(config["Cmd"], json!(["/bin/probe", "exit", "3"]));
        assert_eq!(config["Entrypoint"], json!(null));
        assert_eq!(config["Image"], json!("skiff-lab"));
        assert_eq!(config["Env"], json!(["A=1"]));
        assert_eq!(config["Labels"], json!({"tier": "db"}));
        assert_eq!(config["StopTimeout"], json!(3));
        assert!(config.get("StopSignal").is_none());
        assert!(config.get("ExposedPorts").is_none());
        assert_eq!(config["Volumes"], json!(null));
        // -d: nothing attached.
        assert_eq!(config["AttachStdout"], json!(false));
        let attached = record(&["-i", "skiff-lab"]);
        let config = &inspect_value(&attached, &Stores::empty(Path::new(ROOT)))["Config"];
        assert_eq!(
            [
                &config["AttachStdin"],
                &config["AttachStdout"],
                &config["StdinOnce"]
            ],
            [&json!(true), &json!(true), &json!(true)]
        );
    }

    #[test]
    fn the_graph_driver_stacks_the_image_under_the_container() {
        let web = record(&["--name", "web", "skiff-lab"]);
        let mut stores = Stores::empty(Path::new(ROOT));
        stores.images.insert(
            web.image_id.clone(),
            ImageFacts {
                size: 1000,
                layer_dirs: vec!["/l/1/diff".into(), "/l/2/diff".into()],
                ..ImageFacts::default()
            },
        );
        let dir = format!("{ROOT}/containers/{}", web.id);
        assert_eq!(
            inspect_value(&web, &stores)["GraphDriver"],
            json!({
                "Data": {
                    "LowerDir": "/l/2/diff:/l/1/diff",
                    "MergedDir": format!("{dir}/skiff-rootfs"),
                    "UpperDir": format!("{dir}/upper"),
                    "WorkDir": format!("{dir}/work")
                },
                "Name": "overlay"
            })
        );
        assert_eq!(
            inspect_value(&web, &Stores::empty(Path::new(ROOT)))["GraphDriver"]["Data"],
            json!(null)
        );
    }

    #[test]
    fn sizes_count_the_writable_layer_and_the_image() {
        let root = tempfile::tempdir().unwrap();
        let web = record(&["--name", "web", "skiff-lab"]);
        let upper = container_dir(root.path(), &web.id).join("upper");
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/motd"), "hello world\n").unwrap();
        let mut stores = Stores::empty(root.path());
        stores.images.insert(
            web.image_id.clone(),
            ImageFacts {
                size: 5_300_000,
                ..ImageFacts::default()
            },
        );
        let json = container_json(&web, &stores, true);
        assert_eq!(
            (json.size_rw, json.size_root_fs),
            (Some(12), Some(5_300_012))
        );
    }

    #[test]
    fn found_objects_make_one_array_indented_as_docker_indents() {
        let a = Found::of(&json!({"Name": "a"})).unwrap();
        let b = Found::printed("[\n    {\n        \"Name\": \"b\"\n    }\n]").unwrap();
        assert_eq!(b.value, json!({"Name": "b"}));
        assert_eq!(
            json_array(&[a, b]),
            "[\n    {\n        \"Name\": \"a\"\n    },\n    {\n        \"Name\": \"b\"\n    }\n]"
        );
        assert_eq!(json_array(&[]), "[]");
    }

    #[test]
    fn types_and_missing_objects_are_worded_as_docker_words_them() {
        assert_eq!(Kind::parse("network").unwrap(), Kind::Network);
        assert_eq!(
            Kind::parse("pod").unwrap_err().to_string(),
            "\"pod\" is not a valid value for --type"
        );
        assert_eq!(Kind::missing(None, "x"), "No such object: x");
        assert_eq!(
            Kind::missing(Some(Kind::Container), "x"),
            "No such container: x"
        );
    }

    #[test]
    fn a_store_without_the_name_finds_nothing_and_makes_nothing() {
        let root = tempfile::tempdir().unwrap();
        for kind in [Kind::Container, Kind::Image, Kind::Volume] {
            assert!(
                lookup_kind(root.path(), "nothing", kind, false)
                    .unwrap()
                    .is_none()
            );
        }
        assert!(!root.path().join("images").exists());
    }
}
