//! `ps` (`container ls`): the containers, one line each, in Docker's columns (docker-ps(1)).
//!
//! Which containers: Docker's daemon walks them newest first and puts each through a row of
//! checks (moby `daemon/list.go`): `--filter before=` and `since=` bound the walk; a container
//! that is not running is left out unless `-a`, `-n`/`-l` or a `status` filter asks for every
//! state; then the filters (values of one key are alternatives, different keys must all hold);
//! then `-n`'s count. How they look: each becomes a row of Docker's fields (`.ID`, `.Image`,
//! `.Command`, `.RunningFor`, `.Status`, `.Ports`, `.Names`...), which the CLI prints as a
//! table, through a Go template (`--format`, [`crate::format`]), as JSON lines (`--format
//! json`), or as bare ids (`-q`). The fields are views of what `inspect` shows
//! ([`crate::inspect`]): the same record, in Docker's words.

use std::path::Path;
use std::time::SystemTime;

use clap::Args;
use namespaces::RootArgs;
use namespaces::record::{State, Status};
use serde_json::{Map, Value};

use crate::container::Record;
use crate::docker_json::PortMap;
use crate::inspect::{self, ImageFacts, Stores};

/// `ps`'s flags.
#[derive(Args)]
pub struct PsArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Show all containers (default: the running ones)
    #[arg(short, long)]
    pub all: bool,
    /// Filter: status=, name=, id=, label=KEY[=VALUE], ancestor=, exited=, before=, since=,
    /// network=, volume=, publish=, expose=, health=, is-task=, isolation=
    #[arg(short, long = "filter", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Format the output: table, table TEMPLATE, json, or a Go template
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Show the N last created containers, in every state
    #[arg(
        short = 'n',
        long,
        value_name = "N",
        default_value_t = -1,
        allow_negative_numbers = true
    )]
    pub last: i64,
    /// Show the latest created container, in every state
    #[arg(short, long)]
    pub latest: bool,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the sizes: the writable layer's, and with the image (virtual)
    #[arg(short, long)]
    pub size: bool,
}

// ANCHOR: command
/// `ps`.
pub fn command(args: PsArgs) -> anyhow::Result<i32> {
    let filters = Filters::parse(&args.filter)?;
    let root = &args.root.root;
    let records = crate::lifecycle::list(root)?;
    let stores = Stores::load(root, &records)?;
    let ancestors = ancestors(root, &filters.ancestor);
    let query = Query {
        all: args.all,
        // -l is -n 1.
        limit: if args.latest && args.last == -1 {
            1
        } else {
            args.last
        },
        filters,
    };
    let picked = select(&records, &query, &stores, &ancestors)?;
    if args.quiet && args.format.is_some() {
        eprintln!("WARNING: Ignoring custom format, because both --format and --quiet are set.");
    }
    let view = View::of(&args);
    print!("{}", view.print(&picked, &stores, SystemTime::now())?);
    Ok(0)
}
// ANCHOR_END: command

// --- filters ------------------------------------------------------------------------------------

/// A `--filter` Docker would refuse, in Docker's words.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// Not `KEY=VALUE`.
    #[error("bad format of filter (expected name=value)")]
    Format(String),
    /// A key `ps` does not know.
    #[error("invalid filter '{0}'")]
    Key(String),
    /// A status that is not one of Docker's.
    #[error("Unrecognised filter value for status: {0}")]
    Status(String),
    /// An exit code that is not a number (Go's strconv error, as Docker passes it on).
    #[error("strconv.Atoi: parsing {0:?}: invalid syntax")]
    Exited(String),
    /// A `publish` or `expose` value that is not `PORT[-PORT][/PROTOCOL]`.
    #[error("error while looking up for {key} {value}: invalid port: use PORT[-PORT][/tcp|udp]")]
    Port {
        /// publish or expose.
        key: String,
        /// The value.
        value: String,
    },
    /// `before` or `since` names no container.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// A health that is not one of Docker's.
    #[error("Unrecognised filter value for health: {0}")]
    Health(String),
    /// `is-task` that is not true or false.
    #[error("Invalid filter 'is-task={0}'")]
    IsTask(String),
}

/// Docker's health states, as `health=` takes them.
const HEALTH: [&str; 4] = ["starting", "healthy", "unhealthy", "none"];

/// Docker's container states, as `status=` takes them.
const STATES: [&str; 7] = [
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// A range of ports with a protocol, as `publish=` and `expose=` take them (`8080`,
/// `8000-8080/udp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRange {
    /// The first port.
    pub first: u16,
    /// The last port.
    pub last: u16,
    /// tcp or udp.
    pub protocol: String,
}

impl PortRange {
    fn parse(key: &str, value: &str) -> Result<PortRange, FilterError> {
        let bad = || FilterError::Port {
            key: key.to_string(),
            value: value.to_string(),
        };
        let (ports, protocol) = value.split_once('/').unwrap_or((value, "tcp"));
        let (first, last) = ports.split_once('-').unwrap_or((ports, ports));
        let first: u16 = first.parse().map_err(|_| bad())?;
        let last: u16 = last.parse().map_err(|_| bad())?;
        if first > last || !matches!(protocol, "tcp" | "udp") {
            return Err(bad());
        }
        Ok(PortRange {
            first,
            last,
            protocol: protocol.to_string(),
        })
    }

    fn contains(&self, port: u16, protocol: &str) -> bool {
        (self.first..=self.last).contains(&port) && self.protocol == protocol
    }
}

// ANCHOR: filters
/// The `--filter`s, checked, by key.
#[derive(Debug, Default)]
pub struct Filters {
    /// `status=`: its state is one of these (Docker's words: `running`).
    pub status: Vec<String>,
    /// `name=`: its name holds one of these (`^` and `$` anchor, as in Docker's regexps).
    pub name: Vec<String>,
    /// `id=`: its id starts with one of these.
    pub id: Vec<String>,
    /// `label=KEY` or `label=KEY=VALUE`: it has every one of these.
    pub label: Vec<String>,
    /// `ancestor=`: its image is one of these, or was built on one.
    pub ancestor: Vec<String>,
    /// `exited=`: it ran and ended with one of these codes.
    pub exited: Vec<i32>,
    /// `before=`: made before this container.
    pub before: Option<String>,
    /// `since=`: made after this container.
    pub since: Option<String>,
    /// `network=`: on one of these networks (name, or id prefix).
    pub network: Vec<String>,
    /// `volume=`: one of these volumes (name or host path) or mount destinations.
    pub volume: Vec<String>,
    /// `publish=`: publishes one of these host ports.
    pub publish: Vec<PortRange>,
    /// `expose=`: exposes one of these container ports.
    pub expose: Vec<PortRange>,
    /// `health=`: its health is one of these. skiff runs no health checks, so every container's
    /// health is Docker's `none`.
    pub health: Vec<String>,
    /// `is-task=`: whether a swarm service made it (never, here).
    pub is_task: Option<bool>,
}
// ANCHOR_END: filters

impl Filters {
    /// Parses `--filter KEY=VALUE` flags, refusing what Docker refuses.
    pub fn parse(flags: &[String]) -> Result<Filters, FilterError> {
        let mut filters = Filters::default();
        for flag in flags {
            let (key, value) = flag
                .split_once('=')
                .ok_or_else(|| FilterError::Format(flag.clone()))?;
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            filters.add(&key, value)?;
        }
        Ok(filters)
    }

    fn add(&mut self, key: &str, value: String) -> Result<(), FilterError> {
        match key {
            "status" if STATES.contains(&value.as_str()) => self.status.push(value),
            "status" => return Err(FilterError::Status(value)),
            "name" => self.name.push(value),
            "id" => self.id.push(value),
            "label" => self.label.push(value),
            "ancestor" => self.ancestor.push(value),
            "exited" => {
                let code = value.parse().map_err(|_| FilterError::Exited(value))?;
                self.exited.push(code);
            }
            // As Docker: the last one given counts.
            "before" => self.before = Some(value),
            "since" => self.since = Some(value),
            "network" => self.network.push(value),
            "volume" => self.volume.push(value),
            "health" if HEALTH.contains(&value.as_str()) => self.health.push(value),
            "health" => return Err(FilterError::Health(value)),
            "is-task" => {
                self.is_task = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(FilterError::IsTask(value)),
                })
            }
            // Windows' isolation technology: on Linux, Docker keeps every container.
            "isolation" => {}
            "publish" | "expose" => {
                if value.contains(':') {
                    return Err(FilterError::Port {
                        key: key.to_string(),
                        value,
                    });
                }
                let range = PortRange::parse(key, &value)?;
                if key == "publish" {
                    self.publish.push(range);
                } else {
                    self.expose.push(range);
                }
            }
            _ => return Err(FilterError::Key(key.to_string())),
        }
        Ok(())
    }
}

// --- which containers ---------------------------------------------------------------------------

/// What decides which containers `ps` shows.
#[derive(Debug, Default)]
pub struct Query {
    /// Every state, not only running containers (`-a`).
    pub all: bool,
    /// At most this many, every state (`-n`); 0 or less for no limit.
    pub limit: i64,
    /// The filters.
    pub filters: Filters,
}

/// An image `ancestor=` named: its id and its layers.
#[derive(Debug, Clone)]
pub struct Ancestor {
    /// The image's id.
    pub id: String,
    /// What the store knows of it.
    pub facts: ImageFacts,
}

/// The images `ancestor=` values name. A name the store does not know names nothing (Docker
/// warns in its log and lists no container); it is never pulled.
pub(crate) fn ancestors(root: &Path, names: &[String]) -> Vec<Ancestor> {
    if names.is_empty() || !root.join("images").is_dir() {
        return Vec::new();
    }
    let Ok(store) = images::Store::open(root) else {
        return Vec::new();
    };
    names
        .iter()
        .filter_map(|name| {
            let id = store.resolve(name).ok()?.to_string();
            let facts = ImageFacts::read(&store, &id)?;
            Some(Ancestor { id, facts })
        })
        .collect()
}

// ANCHOR: select
/// The containers `query` picks from `records` (oldest first, as the store lists them), newest
/// first, walked as Docker's daemon walks them.
pub fn select<'a>(
    records: &'a [Record],
    query: &Query,
    stores: &Stores,
    ancestors: &[Ancestor],
) -> Result<Vec<&'a Record>, FilterError> {
    let filters = &query.filters;
    let bound = |key: &Option<String>| key.as_deref().map(|k| find(records, k)).transpose();
    // `before`: nothing until that container has gone by; `since`: nothing from it on.
    let mut before = bound(&filters.before)?.map(|r| r.id.as_str());
    let since = bound(&filters.since)?.map(|r| r.id.as_str());
    let limit = usize::try_from(query.limit).unwrap_or(0);
    let mut picked = Vec::new();
    for record in records.iter().rev() {
        if let Some(id) = before {
            if record.id == id {
                before = None;
            }
            continue;
        }
        if since == Some(record.id.as_str()) || (limit > 0 && picked.len() == limit) {
            break;
        }
        // A status filter asks for every state, as -a and -n do.
        let every_state = query.all || limit > 0 || !filters.status.is_empty();
        if (every_state || inspect::is_up(&record.state))
            && matches(record, filters, stores, ancestors)
        {
            picked.push(record);
        }
    }
    Ok(picked)
}
// ANCHOR_END: select

/// The container `key` names among `records`: its id, its name, or a unique prefix of its id.
fn find<'a>(records: &'a [Record], key: &str) -> Result<&'a Record, FilterError> {
    let name = key.strip_prefix('/').unwrap_or(key);
    if let Some(record) = records.iter().find(|r| r.id == key || r.name == name) {
        return Ok(record);
    }
    let mut prefixed = records.iter().filter(|r| r.id.starts_with(key));
    match (prefixed.next(), prefixed.next()) {
        (Some(record), None) if !key.is_empty() => Ok(record),
        _ => Err(FilterError::NoSuchContainer(key.to_string())),
    }
}

/// Whether a container passes every filter.
fn matches(record: &Record, filters: &Filters, stores: &Stores, ancestors: &[Ancestor]) -> bool {
    let state = &record.state;
    let any = |values: &[String], test: &dyn Fn(&str) -> bool| {
        values.is_empty() || values.iter().any(|v| test(v))
    };
    any(&filters.name, &|pattern| {
        name_matches(pattern, &record.name) || name_matches(pattern, &format!("/{}", record.name))
    }) && any(&filters.id, &|prefix| record.id.starts_with(prefix))
        && filters.label.iter().all(|l| has_label(record, l))
        && any(&filters.status, &|s| s == state.status.as_str())
        && (filters.exited.is_empty() || exited_with(state, &filters.exited))
        && (filters.ancestor.is_empty() || descends(record, stores, ancestors))
        && any(&filters.network, &|n| on_network(record, stores, n))
        && any(&filters.volume, &|v| has_volume(record, stores, v))
        && ports_match(record, stores, &filters.publish, &filters.expose)
        && any(&filters.health, &|h| h == "none")
        && filters.is_task != Some(true)
}

/// Docker matches names with a regular expression; skiff takes the two anchors people use with
/// it (`^web$`) and reads the rest as text.
fn name_matches(pattern: &str, name: &str) -> bool {
    let (start, rest) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (end, text) = match rest.strip_suffix('$') {
        Some(text) => (true, text),
        None => (false, rest),
    };
    match (start, end) {
        (true, true) => name == text,
        (true, false) => name.starts_with(text),
        (false, true) => name.ends_with(text),
        (false, false) => name.contains(text),
    }
}

/// `label=KEY` (it has the label) or `label=KEY=VALUE` (with that value).
fn has_label(record: &Record, filter: &str) -> bool {
    let labels = &record.config.labels;
    match filter.split_once('=') {
        Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
        None => labels.contains_key(filter),
    }
}

/// It ran, is not running, and ended with one of `codes`.
fn exited_with(state: &State, codes: &[i32]) -> bool {
    !inspect::is_up(state) && state.started_at.is_some() && codes.contains(&state.exit_code)
}

/// Its image is one of `ancestors`, or was built on one: Docker follows the images' parents;
/// skiff's images keep no parent, so an image whose layers start with all of an ancestor's
/// layers counts as built on it (`FROM` does exactly that).
fn descends(record: &Record, stores: &Stores, ancestors: &[Ancestor]) -> bool {
    let layers = stores.images.get(&record.image_id).map(|i| &i.diff_ids);
    ancestors.iter().any(|a| {
        a.id == record.image_id
            || (!a.facts.diff_ids.is_empty()
                && layers.is_some_and(|l| l.starts_with(&a.facts.diff_ids)))
    })
}

/// It is on network `key` (a name, or a prefix of the network's id).
fn on_network(record: &Record, stores: &Stores, key: &str) -> bool {
    inspect::attachments(record, stores).iter().any(|a| {
        a.name == key
            || a.network
                .is_some_and(|n| !key.is_empty() && n.id.starts_with(key))
    })
}

/// It mounts volume `key` (a volume's name, a host path) or something at destination `key`.
fn has_volume(record: &Record, stores: &Stores, key: &str) -> bool {
    inspect::mount_points(record, stores)
        .iter()
        .any(|m| m.destination == key || m.name == key || (m.name.is_empty() && m.source == key))
}

/// `publish=` (a host port) and `expose=` (a container port): with either, one of its ports
/// must match one of either.
fn ports_match(
    record: &Record,
    stores: &Stores,
    publish: &[PortRange],
    expose: &[PortRange],
) -> bool {
    if publish.is_empty() && expose.is_empty() {
        return true;
    }
    ports(&inspect::network_ports(record, stores))
        .iter()
        .any(|port| {
            publish
                .iter()
                .any(|r| port.public.is_some_and(|p| r.contains(p, &port.protocol)))
                || expose
                    .iter()
                    .any(|r| r.contains(port.private, &port.protocol))
        })
}

// --- the rows -----------------------------------------------------------------------------------

/// One of Docker's `types.Port`: a container port, and where it is published if it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    /// The container's port.
    pub private: u16,
    /// The host address, `""` for a port exposed only.
    pub ip: String,
    /// The host port.
    pub public: Option<u16>,
    /// tcp or udp.
    pub protocol: String,
}

/// The ports of `NetworkSettings.Ports`, one per binding, in Docker's order.
pub fn ports(map: &PortMap) -> Vec<Port> {
    let mut ports = Vec::new();
    for (key, bindings) in map {
        let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
        let Ok(private) = port.parse() else {
            continue;
        };
        let port = |ip: String, public: Option<u16>| Port {
            private,
            ip,
            public,
            protocol: protocol.to_string(),
        };
        match bindings {
            None => ports.push(port(String::new(), None)),
            Some(bindings) => ports.extend(
                bindings
                    .iter()
                    .map(|b| port(b.host_ip.clone(), b.host_port.parse().ok())),
            ),
        }
    }
    // Docker's order: container port, address, host port, protocol.
    ports.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.protocol).cmp(&(b.private, &b.ip, b.public, &b.protocol))
    });
    ports
}

// ANCHOR: displayable_ports
/// The PORTS column, as docker/cli's `DisplayablePorts` writes it: a port published on the same
/// host port as its own joins its neighbours in a range (`0.0.0.0:8000-8001->8000-8001/tcp`),
/// a port published elsewhere is listed alone after them (`0.0.0.0:8080->80/tcp`), an exposed
/// port is just `80/tcp`.
pub fn displayable_ports(ports: &[Port]) -> String {
    // Ranges by address and protocol, in the order their first ports come.
    let mut groups: Vec<(String, String, u16, u16)> = Vec::new();
    let mut done = Vec::new();
    let mut others = Vec::new();
    for port in ports {
        if !port.ip.is_empty() && port.public != Some(port.private) {
            let public = port.public.unwrap_or(0);
            others.push(format!(
                "{}:{public}->{}/{}",
                port.ip, port.private, port.protocol
            ));
            continue;
        }
        let at = groups
            .iter()
            .position(|(ip, protocol, _, _)| *ip == port.ip && *protocol == port.protocol);
        match at {
            Some(i) if groups[i].3.checked_add(1) == Some(port.private) => {
                groups[i].3 = port.private
            }
            Some(i) => {
                done.push(range_text(&groups[i]));
                groups[i].2 = port.private;
                groups[i].3 = port.private;
            }
            None => groups.push((
                port.ip.clone(),
                port.protocol.clone(),
                port.private,
                port.private,
            )),
        }
    }
    done.extend(groups.iter().map(range_text));
    done.extend(others);
    done.join(", ")
}

fn range_text((ip, protocol, first, last): &(String, String, u16, u16)) -> String {
    let ports = if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    };
    if ip.is_empty() {
        format!("{ports}/{protocol}")
    } else {
        format!("{ip}:{ports}->{ports}/{protocol}")
    }
}
// ANCHOR_END: displayable_ports

// ANCHOR: status
/// The STATUS column, as Docker's daemon words a state (moby `container/state.go`).
pub fn status_text(state: &State, now: SystemTime) -> String {
    let since = |time: &Option<String>| {
        let then = time.as_deref().and_then(images::human::parse_time);
        let elapsed = then
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or_default();
        images::human::human_duration(elapsed)
    };
    match state.status {
        Status::Running => format!("Up {}", since(&state.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&state.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            state.exit_code,
            since(&state.finished_at)
        ),
        Status::Dead => "Dead".into(),
        // Never started: Created, whatever the record says.
        _ if state.started_at.is_none() => "Created".into(),
        _ if state.finished_at.is_none() => String::new(),
        _ => format!(
            "Exited ({}) {} ago",
            state.exit_code,
            since(&state.finished_at)
        ),
    }
}
// ANCHOR_END: status

/// The IMAGE column: as the user named it, familiar (`busybox`, `busybox:1.36`, without a
/// registry digest); an image given by id as its first 12 digits. `--no-trunc` shows the name
/// exactly as given.
pub fn image_text(record: &Record, trunc: bool) -> String {
    let given = &record.image;
    if !trunc || given.is_empty() {
        return given.clone();
    }
    let short = |id: &str| -> String {
        id.strip_prefix("sha256:")
            .unwrap_or(id)
            .chars()
            .take(12)
            .collect()
    };
    if !record.image_id.is_empty() && short(&record.image_id) == short(given) {
        return short(given);
    }
    match images::ImageRef::parse(given) {
        // Docker shows the tag only if the user gave one.
        Ok(reference) if gave_tag(given) => match reference.tag() {
            Some(tag) => format!("{}:{tag}", reference.familiar_name()),
            None => reference.familiar_name(),
        },
        Ok(reference) => reference.familiar_name(),
        Err(_) => given.clone(),
    }
}

/// `busybox:1.36` and `localhost:5000/app:v1` name a tag; `localhost:5000/app` does not.
fn gave_tag(reference: &str) -> bool {
    let name = reference.split('@').next().unwrap_or(reference);
    name.rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
}

/// The COMMAND column: the command line, cut to 20 characters unless `--no-trunc`, quoted as
/// Go's `strconv.Quote` quotes.
pub fn command_text(record: &Record, trunc: bool) -> String {
    command_line_text(&inspect::command_line(record).join(" "), trunc)
}

/// The COMMAND column of a command line already joined (a daemon's `Command`).
pub fn command_line_text(line: &str, trunc: bool) -> String {
    let line = if trunc {
        images::human::ellipsis(line, 20)
    } else {
        line.to_string()
    };
    go_quote(&line)
}

/// Go's `strconv.Quote`: double quotes, with `"`, `\` and control characters escaped.
fn go_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// CREATED AT: Go's `time.Time.String()` of the creation, in UTC
/// (`2026-12-04 12:00:00 +0000 UTC`).
pub fn created_at(record: &Record) -> String {
    images::human::parse_time(&record.created).map_or_else(String::new, created_at_text)
}

/// CREATED AT of a moment.
pub fn created_at_text(time: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!(
        "{} +0000 UTC",
        text.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

/// What a row shows that depends on the flags and the moment.
#[derive(Debug, Clone, Copy)]
pub struct RowOptions {
    /// Cut ids, commands and mount names (no `--no-trunc`).
    pub trunc: bool,
    /// Measure the sizes (`-s`, or a template that shows `.Size`).
    pub size: bool,
    /// Now, for CREATED and STATUS.
    pub now: SystemTime,
}

// ANCHOR: row
/// The row of one container: Docker's fields for `ps` templates, by name (`json` prints them
/// sorted by name, as Docker's Go map is).
pub fn row(record: &Record, stores: &Stores, options: RowOptions) -> Map<String, Value> {
    let trunc = options.trunc;
    let mounts = inspect::mount_points(record, stores);
    let ports = if inspect::is_up(&record.state) {
        displayable_ports(&ports(&inspect::network_ports(record, stores)))
    } else {
        String::new()
    };
    let labels: Vec<String> = record
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mount_names: Vec<String> = mounts
        .iter()
        .map(|m| {
            if m.name.is_empty() {
                &m.source
            } else {
                &m.name
            }
        })
        .map(|name| {
            if trunc {
                images::human::ellipsis(name, 15)
            } else {
                name.clone()
            }
        })
        .collect();
    let networks: Vec<String> = inspect::attachments(record, stores)
        .into_iter()
        .map(|a| a.name)
        .collect();
    let local_volumes = mounts.iter().filter(|m| m.driver == "local").count();
    let fields = [
        ("Command", command_text(record, trunc)),
        ("CreatedAt", created_at(record)),
        ("ID", id_text(&record.id, trunc)),
        ("Image", image_text(record, trunc)),
        ("Labels", labels.join(",")),
        ("LocalVolumes", local_volumes.to_string()),
        ("Mounts", mount_names.join(",")),
        ("Names", record.name.clone()),
        ("Networks", networks.join(",")),
        ("Ports", ports),
        (
            "RunningFor",
            images::human::ago(Some(&record.created), options.now),
        ),
        ("Size", size_text(record, stores, options.size)),
        ("State", record.state.status.as_str().to_string()),
        ("Status", status_text(&record.state, options.now)),
    ];
    fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect()
}
// ANCHOR_END: row

/// 12 hex digits, or all 64.
pub fn id_text(id: &str, trunc: bool) -> String {
    if trunc {
        id.chars().take(12).collect()
    } else {
        id.to_string()
    }
}

/// SIZE: the writable layer, and with the image (`12B (virtual 5.3MB)`); `0B` unmeasured.
fn size_text(record: &Record, stores: &Stores, measure: bool) -> String {
    if !measure {
        return images::human::human_size(0);
    }
    let rw = inspect::size_rw(&stores.root, &record.id);
    let image = stores.images.get(&record.image_id).map_or(0, |i| i.size);
    let human = images::human::human_size;
    if rw + image > 0 {
        format!("{} (virtual {})", human(rw), human(rw + image))
    } else {
        human(rw)
    }
}

// --- the output ---------------------------------------------------------------------------------

/// Docker's column headers, by field.
const HEADERS: [(&str, &str); 14] = [
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// The columns of the default table (docker/cli's `defaultContainerTableFormat`).
const DEFAULT_COLUMNS: [&str; 7] = [
    "ID",
    "Image",
    "Command",
    "RunningFor",
    "Status",
    "Ports",
    "Names",
];

/// How the rows are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Ids only (`-q`).
    Quiet,
    /// Docker's columns, with SIZE at the end when asked.
    Table,
    /// `table TEMPLATE`: a header row from the template, then a row per container, aligned.
    TableOf(String),
    /// `json`: a JSON object per line.
    Json,
    /// A template per container.
    Template(String),
}

/// How `ps` prints: the layout and the row options.
#[derive(Debug, Clone)]
pub struct View {
    /// The layout.
    pub layout: Layout,
    /// Cut ids, commands and mount names.
    pub trunc: bool,
    /// Measure and show the sizes.
    pub size: bool,
}

impl View {
    /// The view the flags ask for.
    pub fn of(args: &PsArgs) -> View {
        let format = args.format.as_deref().unwrap_or("").trim();
        let layout = if args.quiet {
            Layout::Quiet
        } else if format.is_empty() {
            Layout::Table
        } else if crate::format::is_json(format) {
            Layout::Json
        } else {
            match crate::format::table_body(format) {
                Some("") => Layout::Table,
                Some(body) => Layout::TableOf(unescape(body)),
                None => Layout::Template(unescape(format)),
            }
        };
        View {
            // Docker measures when a template shows the size, -s or not.
            size: args.size || format.contains(".Size"),
            trunc: !args.no_trunc,
            layout,
        }
    }

    /// The output for `records`, in the order given.
    pub fn print(
        &self,
        records: &[&Record],
        stores: &Stores,
        now: SystemTime,
    ) -> Result<String, crate::format::FormatError> {
        let options = RowOptions {
            trunc: self.trunc,
            size: self.size,
            now,
        };
        let rows: Vec<_> = records.iter().map(|r| row(r, stores, options)).collect();
        self.print_rows(rows)
    }

    // ANCHOR: print_rows
    /// The output for rows gathered anywhere: from the store ([`row`]), or from a daemon's
    /// `GET /containers/json` (`skiff -H`), so both print alike.
    pub fn print_rows(
        &self,
        rows: Vec<Map<String, Value>>,
    ) -> Result<String, crate::format::FormatError> {
        let line = |text: String| format!("{text}\n");
        Ok(match &self.layout {
            // The row's ID is cut already unless --no-trunc.
            Layout::Quiet => rows.iter().map(|r| line(text_of(r, "ID"))).collect(),
            Layout::Table => self.default_table(rows.into_iter()),
            Layout::TableOf(body) => table_of(body, rows.into_iter())?,
            Layout::Json => rows
                .into_iter()
                .map(|r| line(crate::format::row_json(&r)))
                .collect(),
            Layout::Template(template) => {
                let template = crate::format::Template::parse(template)?;
                rows.into_iter()
                    .map(|r| template.execute_row(&Value::Object(r)).map(line))
                    .collect::<Result<String, _>>()?
            }
        })
    }
    // ANCHOR_END: print_rows

    fn default_table(&self, rows: impl Iterator<Item = Map<String, Value>>) -> String {
        let mut columns = DEFAULT_COLUMNS.to_vec();
        if self.size {
            columns.push("Size");
        }
        let header: Vec<&str> = columns.iter().map(|c| header_of(c)).collect();
        let cells: Vec<Vec<String>> = rows
            .map(|row| columns.iter().map(|c| text_of(&row, c)).collect())
            .collect();
        images::human::table(&header, &cells)
    }
}

fn table_of(
    body: &str,
    rows: impl Iterator<Item = Map<String, Value>>,
) -> Result<String, crate::format::FormatError> {
    let rows: Vec<_> = rows.collect();
    crate::format::table_of(body, &HEADERS, &rows)
}

fn header_of(field: &str) -> &'static str {
    HEADERS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or("", |(_, header)| header)
}

fn text_of(row: &Map<String, Value>, field: &str) -> String {
    row.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn unescape(format: &str) -> String {
    crate::format::unescape(format)
}

#[cfg(test)]
mod tests {
    use namespaces::record::ProcessRef;

    use super::*;
    use crate::docker_json::PortBinding;
    use crate::inspect::testing::record;

    const ROOT: &str = "/var/lib/skiff-test";
    const NOW: &str = "2026-12-04T12:10:00Z";

    fn now() -> SystemTime {
        images::human::parse_time(NOW).unwrap()
    }

    fn at(created: &str, mut record: Record) -> Record {
        record.created = created.into();
        record
    }

    fn up(started: &str, mut record: Record) -> Record {
        record.state.status = Status::Running;
        record.state.pid = Some(ProcessRef { pid: 42, start: 1 });
        record.state.started_at = Some(started.into());
        record
    }

    fn ended(code: i32, finished: &str, mut record: Record) -> Record {
        record.state.status = Status::Exited;
        record.state.exit_code = code;
        record.state.started_at = Some("2026-12-04T12:00:30Z".into());
        record.state.finished_at = Some(finished.into());
        record
    }

    /// Three containers, oldest first: `web` running with a published port, `db` ended by
    /// SIGKILL, `job` created and never started.
    fn three() -> Vec<Record> {
        vec![
            at(
                "2026-12-04T12:00:00Z",
                up(
                    "2026-12-04T12:07:00Z",
                    record(&[
                        "--name",
                        "web",
                        "-p",
                        "8080:80",
                        "--label",
                        "tier=front",
                        "skiff-lab",
                        "/bin/probe",
                        "listen",
                        "80",
                    ]),
                ),
            ),
            at(
                "2026-12-04T12:01:00Z",
                ended(
                    137,
                    "2026-12-04T12:09:55Z",
                    record(&[
                        "--name",
                        "db",
                        "--label",
                        "tier=back",
                        "busybox:1.36",
                        "/bin/sh",
                        "-c",
                        "echo hello; sleep 1000",
                    ]),
                ),
            ),
            at(
                "2026-12-04T12:08:00Z",
                record(&["--name", "job", "--label", "batch", "skiff-lab"]),
            ),
        ]
    }

    fn stores() -> Stores {
        Stores::empty(Path::new(ROOT))
    }

    fn names(records: &[&Record]) -> Vec<String> {
        records.iter().map(|r| r.name.clone()).collect()
    }

    /// The names `ps` picks with these flags.
    fn pick(all: bool, limit: i64, filters: &[&str]) -> Result<Vec<String>, FilterError> {
        let records = three();
        let filters: Vec<String> = filters.iter().map(ToString::to_string).collect();
        let query = Query {
            all,
            limit,
            filters: Filters::parse(&filters)?,
        };
        Ok(names(&select(&records, &query, &stores(), &[])?))
    }

    fn view(layout: Layout) -> View {
        View {
            layout,
            trunc: true,
            size: false,
        }
    }

    fn print(view: &View, records: &[Record]) -> String {
        let refs: Vec<&Record> = records.iter().rev().collect();
        view.print(&refs, &stores(), now()).unwrap()
    }

    #[test]
    fn the_default_table_is_dockers() {
        let records = three();
        let id = |i: usize| records[i].id[..12].to_string();
        assert_eq!(
            print(&view(Layout::Table), &records),
            format!(
                "\
CONTAINER ID   IMAGE          COMMAND                  CREATED          STATUS                       PORTS                  NAMES
{}   skiff-lab      \"\"                       2 minutes ago    Created                                             job
{}   busybox:1.36   \"/bin/sh -c echo hel…\"   9 minutes ago    Exited (137) 5 seconds ago                          db
{}   skiff-lab      \"/bin/probe listen 80\"   10 minutes ago   Up 3 minutes                 0.0.0.0:8080->80/tcp   web
",
                id(2),
                id(1),
                id(0)
            )
        );
    }

    #[test]
    fn every_status_is_worded_as_docker_words_it() {
        let base = record(&["skiff-lab"]);
        let state = |status, started: Option<&str>, finished: Option<&str>, code| State {
            status,
            exit_code: code,
            started_at: started.map(str::to_string),
            finished_at: finished.map(str::to_string),
            ..base.state.clone()
        };
        let cases = [
            (state(Status::Created, None, None, 0), "Created"),
            (
                state(Status::Running, Some("2026-12-04T12:07:00Z"), None, 0),
                "Up 3 minutes",
            ),
            (
                state(Status::Running, Some("2026-12-04T12:09:59.7Z"), None, 0),
                "Up Less than a second",
            ),
            (
                state(Status::Paused, Some("2026-12-04T10:10:00Z"), None, 0),
                "Up 2 hours (Paused)",
            ),
            (
                state(
                    Status::Restarting,
                    Some("2026-12-04T12:00:00Z"),
                    Some("2026-12-04T12:09:58Z"),
                    1,
                ),
                "Restarting (1) 2 seconds ago",
            ),
            (
                state(
                    Status::Exited,
                    Some("2026-12-04T12:00:00Z"),
                    Some("2026-12-04T12:09:55Z"),
                    137,
                ),
                "Exited (137) 5 seconds ago",
            ),
            (
                state(Status::Exited, None, Some("2026-12-04T12:09:55Z"), 1),
                "Created",
            ),
            (state(Status::Dead, None, None, 0), "Dead"),
        ];
        for (state, expected) in cases {
            assert_eq!(status_text(&state, now()), expected, "{state:?}");
        }
    }

    #[test]
    fn health_is_task_and_isolation_filter_as_docker_on_linux() {
        let all = pick(true, 0, &[]).unwrap();
        // No container has a health check: each one's health is `none`.
        assert_eq!(pick(true, 0, &["health=none"]).unwrap(), all);
        assert!(pick(true, 0, &["health=healthy"]).unwrap().is_empty());
        assert_eq!(pick(true, 0, &["is-task=false"]).unwrap(), all);
        assert!(pick(true, 0, &["is-task=true"]).unwrap().is_empty());
        assert_eq!(pick(true, 0, &["isolation=default"]).unwrap(), all);
        assert_eq!(
            pick(true, 0, &["health=sick"]).unwrap_err().to_string(),
            "Unrecognised filter value for health: sick"
        );
        assert_eq!(
            pick(true, 0, &["is-task=maybe"]).unwrap_err().to_string(),
            "Invalid filter 'is-task=maybe'"
        );
    }

    #[test]
    fn commands_are_cut_at_20_characters_and_quoted_as_go_quotes() {
        let sh = record(&["busybox", "/bin/sh", "-c", "echo \"hi\"; sleep 1"]);
        assert_eq!(command_text(&sh, true), "\"/bin/sh -c echo \\\"hi…\"");
        assert_eq!(
            command_text(&sh, false),
            "\"/bin/sh -c echo \\\"hi\\\"; sleep 1\""
        );
        let entry = record(&["--entrypoint", "/bin/probe", "busybox", "echo", "a\tb"]);
        assert_eq!(command_text(&entry, true), "\"/bin/probe echo a\\tb\"");
    }

    #[test]
    fn images_show_as_the_user_named_them() {
        let image = |name: &str| {
            let c = record(&[name]);
            (image_text(&c, true), image_text(&c, false))
        };
        assert_eq!(image("busybox"), ("busybox".into(), "busybox".into()));
        assert_eq!(
            image("busybox:1.36"),
            ("busybox:1.36".into(), "busybox:1.36".into())
        );
        assert_eq!(
            image("docker.io/library/busybox:latest").0,
            "busybox:latest"
        );
        assert_eq!(image("localhost:5000/app").0, "localhost:5000/app");
        let digest = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(image(&digest), ("busybox".into(), digest.clone()));
        // Given by id: its 12 first digits.
        let mut by_id = record(&["skiff-lab"]);
        by_id.image = by_id.image_id.clone();
        let hex = by_id.image_id.trim_start_matches("sha256:").to_string();
        assert_eq!(image_text(&by_id, true), hex[..12]);
        by_id.image = hex[..20].to_string();
        assert_eq!(image_text(&by_id, true), hex[..12]);
    }

    #[test]
    fn ports_read_as_docker_prints_them() {
        let published = |ip: &str, public: u16, private: u16, protocol: &str| Port {
            private,
            ip: ip.into(),
            public: Some(public),
            protocol: protocol.into(),
        };
        let exposed = |private: u16| Port {
            private,
            ip: String::new(),
            public: None,
            protocol: "tcp".into(),
        };
        let show = |mut list: Vec<Port>| {
            list.sort();
            displayable_ports(&list)
        };
        assert_eq!(
            show(vec![published("0.0.0.0", 8080, 80, "tcp")]),
            "0.0.0.0:8080->80/tcp"
        );
        assert_eq!(
            show(vec![published("127.0.0.1", 8080, 80, "udp")]),
            "127.0.0.1:8080->80/udp"
        );
        assert_eq!(
            show(vec![
                published("0.0.0.0", 8080, 80, "tcp"),
                published("0.0.0.0", 9443, 443, "tcp")
            ]),
            "0.0.0.0:8080->80/tcp, 0.0.0.0:9443->443/tcp"
        );
        // The same port on both sides: neighbours make a range, as Docker's -p 8000-8002:8000-8002.
        assert_eq!(
            show(vec![
                published("0.0.0.0", 8000, 8000, "tcp"),
                published("0.0.0.0", 8001, 8001, "tcp"),
                published("0.0.0.0", 8002, 8002, "tcp"),
                published("0.0.0.0", 8005, 8005, "tcp"),
                published("0.0.0.0", 8080, 80, "tcp"),
            ]),
            "0.0.0.0:8000-8002->8000-8002/tcp, 0.0.0.0:8005->8005/tcp, 0.0.0.0:8080->80/tcp"
        );
        assert_eq!(
            show(vec![exposed(443), exposed(80), exposed(81)]),
            "80-81/tcp, 443/tcp"
        );
        assert_eq!(show(Vec::new()), "");
    }

    #[test]
    fn the_ports_of_network_settings_become_docker_ports() {
        let mut map = PortMap::new();
        map.insert("443/tcp".into(), None);
        map.insert(
            "80/tcp".into(),
            Some(vec![PortBinding {
                host_ip: "0.0.0.0".into(),
                host_port: "8080".into(),
            }]),
        );
        assert_eq!(
            displayable_ports(&ports(&map)),
            "443/tcp, 0.0.0.0:8080->80/tcp"
        );
    }

    #[test]
    fn ports_show_only_while_the_container_runs() {
        let records = three();
        let web = &records[0];
        let options = RowOptions {
            trunc: true,
            size: false,
            now: now(),
        };
        assert_eq!(
            row(web, &stores(), options)["Ports"],
            "0.0.0.0:8080->80/tcp"
        );
        let mut stopped = web.clone();
        stopped.state.status = Status::Exited;
        assert_eq!(row(&stopped, &stores(), options)["Ports"], "");
        // On the host's network nothing is published.
        let host = up(
            "2026-12-04T12:07:00Z",
            record(&["--network", "host", "-p", "80", "x"]),
        );
        assert_eq!(row(&host, &stores(), options)["Ports"], "");
    }

    #[test]
    fn without_a_flag_only_running_containers_show_newest_first() {
        assert_eq!(pick(false, -1, &[]).unwrap(), ["web"]);
        assert_eq!(pick(true, -1, &[]).unwrap(), ["job", "db", "web"]);
        // -n and -l count every state.
        assert_eq!(pick(false, 2, &[]).unwrap(), ["job", "db"]);
        assert_eq!(pick(false, 1, &[]).unwrap(), ["job"]);
        assert_eq!(pick(false, 0, &[]).unwrap(), ["web"]);
    }

    #[test]
    fn filters_pick_as_dockers_do() {
        let all = |f: &[&str]| pick(true, -1, f).unwrap();
        // A status filter means every state.
        assert_eq!(pick(false, -1, &["status=exited"]).unwrap(), ["db"]);
        assert_eq!(all(&["status=created", "status=running"]), ["job", "web"]);
        assert_eq!(all(&["status=removing"]), Vec::<String>::new());
        assert_eq!(all(&["name=e"]), ["web"]);
        assert_eq!(all(&["name=b"]), ["job", "db", "web"]);
        assert_eq!(all(&["name=^d"]), ["db"]);
        assert_eq!(all(&["name=^/db$"]), ["db"]);
        let web_id = three()[0].id.clone();
        assert_eq!(all(&[&format!("id={}", &web_id[..5])]), ["web"]);
        assert_eq!(all(&["label=tier"]), ["db", "web"]);
        assert_eq!(all(&["label=tier=back"]), ["db"]);
        assert_eq!(all(&["label=tier", "label=batch"]), Vec::<String>::new());
        assert_eq!(all(&["exited=137"]), ["db"]);
        // A created container never exited, with whatever code its record holds.
        assert_eq!(all(&["exited=0"]), Vec::<String>::new());
        assert_eq!(all(&["before=job"]), ["db", "web"]);
        assert_eq!(all(&["since=web"]), ["job", "db"]);
        assert_eq!(all(&["since=web", "before=job"]), ["db"]);
        assert_eq!(all(&["publish=8080"]), ["web"]);
        assert_eq!(all(&["expose=80/tcp"]), ["web"]);
        assert_eq!(all(&["expose=80/udp"]), Vec::<String>::new());
        assert_eq!(all(&["network=bridge"]), ["job", "db", "web"]);
        assert_eq!(pick(false, 1, &["name=db"]).unwrap(), ["db"]);
    }

    #[test]
    fn ancestors_are_the_image_and_images_built_on_it() {
        let records = three();
        let mut stores = stores();
        let layers = |ids: &[&str]| ImageFacts {
            diff_ids: ids.iter().map(ToString::to_string).collect(),
            ..ImageFacts::default()
        };
        stores
            .images
            .insert(records[0].image_id.clone(), layers(&["l1", "l2"]));
        stores
            .images
            .insert(records[1].image_id.clone(), layers(&["l1"]));
        let base = Ancestor {
            id: records[1].image_id.clone(),
            facts: layers(&["l1"]),
        };
        let query = Query {
            all: true,
            limit: -1,
            filters: Filters::parse(&["ancestor=busybox:1.36".into()]).unwrap(),
        };
        // busybox's layer is under skiff-lab's: every container descends from busybox.
        let picked = select(&records, &query, &stores, &[base]).unwrap();
        assert_eq!(names(&picked), ["job", "db", "web"]);
        let lab = Ancestor {
            id: records[0].image_id.clone(),
            facts: layers(&["l1", "l2"]),
        };
        let picked = select(&records, &query, &stores, &[lab]).unwrap();
        assert_eq!(names(&picked), ["job", "web"]);
        // An image the store does not know: no container.
        assert!(select(&records, &query, &stores, &[]).unwrap().is_empty());
    }

    #[test]
    fn bad_filters_are_refused_in_dockers_words() {
        let error = |f: &str| pick(true, -1, &[f]).unwrap_err().to_string();
        assert_eq!(error("x=1"), "invalid filter 'x'");
        assert_eq!(
            error("status=sleeping"),
            "Unrecognised filter value for status: sleeping"
        );
        assert_eq!(error("name"), "bad format of filter (expected name=value)");
        assert_eq!(
            error("exited=x"),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(error("before=nobody"), "No such container: nobody");
        assert!(error("publish=1:2").contains("publish"));
    }

    #[test]
    fn quiet_prints_ids() {
        assert_eq!(
            print(&view(Layout::Quiet), &three()[..1]),
            format!("{}\n", &three()[0].id[..12])
        );
        let full = View {
            trunc: false,
            ..view(Layout::Quiet)
        };
        assert_eq!(print(&full, &three()[..1]), format!("{}\n", three()[0].id));
    }

    #[test]
    fn a_table_template_gets_dockers_headers() {
        assert_eq!(
            print(&view(Layout::TableOf("{{.Names}}".into())), &three()),
            "NAMES\njob\ndb\nweb\n"
        );
        assert_eq!(
            print(
                &view(Layout::TableOf("{{.RunningFor}}".into())),
                &three()[2..]
            ),
            "CREATED\n2 minutes ago\n"
        );
    }

    #[test]
    fn a_template_runs_once_per_container() {
        assert_eq!(
            print(&view(Layout::Template("{{.Status}}".into())), &three()),
            "Created\nExited (137) 5 seconds ago\nUp 3 minutes\n"
        );
    }

    #[test]
    fn json_prints_a_line_per_container_with_dockers_fields() {
        let out = print(&view(Layout::Json), &three()[..1]);
        let web = &three()[0];
        let expected = serde_json::json!({
            "Command": "\"/bin/probe listen 80\"",
            "CreatedAt": "2026-12-04 12:00:00 +0000 UTC",
            "ID": &web.id[..12],
            "Image": "skiff-lab",
            "Labels": "tier=front",
            "LocalVolumes": "0",
            "Mounts": "",
            "Names": "web",
            "Networks": "bridge",
            "Ports": "0.0.0.0:8080->80/tcp",
            "RunningFor": "10 minutes ago",
            "Size": "0B",
            "State": "running",
            "Status": "Up 3 minutes"
        });
        // Go's json.Marshal writes `>` as `\u003e`, as `docker ps --format json` prints it.
        let expected = expected.to_string().replace('>', "\\u003e");
        assert_eq!(out, format!("{expected}\n"));
    }

    #[test]
    fn json_keys_come_in_dockers_order() {
        // Docker's formatter marshals a Go map of the row's fields, and Go writes a map's keys
        // sorted: the line's keys must come in that order (the test above compares values only,
        // whatever order serde_json keeps).
        let out = print(&view(Layout::Json), &three()[..1]);
        let keys: Vec<&str> = [
            "Command",
            "CreatedAt",
            "ID",
            "Image",
            "Labels",
            "LocalVolumes",
            "Mounts",
            "Names",
            "Networks",
            "Ports",
            "RunningFor",
            "Size",
            "State",
            "Status",
        ]
        .into_iter()
        .filter(|key| out.contains(&format!("\"{key}\":")))
        .collect();
        assert_eq!(keys.len(), 14, "{out}");
        let at = |key: &str| out.find(&format!("\"{key}\":")).unwrap();
        assert!(keys.windows(2).all(|w| at(w[0]) < at(w[1])), "{out}");
    }

    #[test]
    fn formats_choose_the_layout() {
        let args = |format: Option<&str>, quiet: bool, size: bool| PsArgs {
            root: RootArgs { root: ROOT.into() },
            all: false,
            filter: Vec::new(),
            format: format.map(str::to_string),
            last: -1,
            latest: false,
            no_trunc: false,
            quiet,
            size,
        };
        let layout = |format, quiet| View::of(&args(format, quiet, false)).layout;
        assert_eq!(layout(None, false), Layout::Table);
        assert_eq!(layout(Some("table"), false), Layout::Table);
        assert_eq!(layout(Some("json"), false), Layout::Json);
        assert_eq!(
            layout(Some("table {{.ID}}\\t{{.Names}}"), false),
            Layout::TableOf("{{.ID}}\t{{.Names}}".into())
        );
        assert_eq!(
            layout(Some("{{.ID}}: {{.Names}}"), false),
            Layout::Template("{{.ID}}: {{.Names}}".into())
        );
        assert_eq!(layout(Some("json"), true), Layout::Quiet);
        assert!(View::of(&args(Some("{{.Size}}"), false, false)).size);
        assert!(!View::of(&args(None, false, false)).size);
    }

    #[test]
    fn sizes_show_the_writable_layer_and_the_virtual_total() {
        let root = tempfile::tempdir().unwrap();
        let web = record(&["--name", "web", "skiff-lab"]);
        let upper = namespaces::record::container_dir(root.path(), &web.id).join("upper");
        std::fs::create_dir_all(&upper).unwrap();
        std::fs::write(upper.join("file"), "twelve bytes").unwrap();
        let mut stores = Stores::empty(root.path());
        stores.images.insert(
            web.image_id.clone(),
            ImageFacts {
                size: 5_300_000,
                ..ImageFacts::default()
            },
        );
        assert_eq!(size_text(&web, &stores, true), "12B (virtual 5.3MB)");
        assert_eq!(size_text(&web, &stores, false), "0B");
        let sized = View {
            size: true,
            ..view(Layout::Table)
        };
        let refs = [&web];
        let table = sized.print(&refs, &stores, now()).unwrap();
        assert!(
            table.lines().next().unwrap().ends_with("NAMES     SIZE"),
            "{table}"
        );
        assert!(
            table.ends_with("web       12B (virtual 5.3MB)\n"),
            "{table}"
        );
    }

    #[test]
    fn rows_list_labels_mounts_and_networks() {
        let c = record(&[
            "--name",
            "c",
            "--label",
            "b=2",
            "--label",
            "a=1",
            "-v",
            "/a/very/long/host/path:/x",
            "--network",
            "none",
            "skiff-lab",
        ]);
        let options = RowOptions {
            trunc: true,
            size: false,
            now: now(),
        };
        let row = row(&c, &stores(), options);
        assert_eq!(row["Labels"], "a=1,b=2");
        assert_eq!(row["Mounts"], "/a/very/long/h…");
        assert_eq!(row["Networks"], "none");
        assert_eq!(row["State"], "created");
    }

    #[test]
    fn created_at_is_gos_time_string() {
        assert_eq!(created_at(&three()[0]), "2026-12-04 12:00:00 +0000 UTC");
    }
}
