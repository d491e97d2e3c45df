//! `events`: what happened to containers, as it happens.
//!
//! Docker's daemon sees every change, and streams them to `docker events` from memory. skiff
//! has no daemon: the change happens in whichever process makes it (`create` in the command,
//! `start` and `die` in the container's monitor, `stop`, `kill`, `destroy`, `pause`... in the
//! commands). So each of them appends a line to one journal of the store, `events.log`, a JSON
//! object per line in the Engine API's event format; `events` reads the journal from `--since`
//! and then follows it as it grows, as `tail -f` does. Appends of one line are single writes
//! to a file opened with `O_APPEND`, so the lines of processes that write at once never mix.
//! The journal keeps about a megabyte: when it is larger it is renamed `events.log.1` (the one
//! before is dropped) and a new one starts. See docker-events(1), open(2) (`O_APPEND`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Args;
use namespaces::RootArgs;
use serde::{Deserialize, Serialize};

use crate::container::Record;

/// The journal's size before it is turned over.
const MAX_JOURNAL: u64 = 1 << 20;

// ANCHOR: event
/// One event, in the Engine API's format (`GET /events`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    /// `container`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// What happened: `create`, `start`, `die`...
    #[serde(rename = "Action")]
    pub action: String,
    /// What it happened to.
    #[serde(rename = "Actor")]
    pub actor: Actor,
    /// `local`.
    pub scope: String,
    /// When, in seconds since 1970.
    pub time: u64,
    /// When, in nanoseconds since 1970.
    #[serde(rename = "timeNano")]
    pub time_nano: u64,
    /// The older API's fields: the action again, the id, the image.
    #[serde(default)]
    pub status: String,
    /// The container's id (older API).
    #[serde(default)]
    pub id: String,
    /// The container's image (older API).
    #[serde(default)]
    pub from: String,
}

/// The object of an event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Actor {
    /// Its id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its name, image, labels, and what the event adds (`exitCode`, `signal`).
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}
// ANCHOR_END: event

/// The store's journal of events.
pub(crate) fn journal(root: &Path) -> PathBuf {
    root.join("events.log")
}

// ANCHOR: emit
/// Notes that `action` happened to the container `record`, with `extra` attributes. An event
/// that cannot be written is lost, and the action goes on: the journal is a record of what
/// happened, not a condition of it.
pub fn emit(root: &Path, action: &str, record: &Record, extra: &[(&str, String)]) {
    let mut attributes: BTreeMap<String, String> = record.config.labels.clone();
    attributes.insert("image".into(), record.config.image.clone());
    attributes.insert("name".into(), record.name.clone());
    for (key, value) in extra {
        attributes.insert((*key).to_string(), value.clone());
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let event = Event {
        kind: "container".into(),
        action: action.into(),
        actor: Actor {
            id: record.id.clone(),
            attributes,
        },
        scope: "local".into(),
        time: nanos.as_secs(),
        time_nano: u64::try_from(nanos.as_nanos()).unwrap_or(u64::MAX),
        status: action.into(),
        id: record.id.clone(),
        from: record.config.image.clone(),
    };
    let _ = append(root, &event);
}

/// Notes that container `container_id` was connected to or disconnected from `network`
/// (`action` is `connect` or `disconnect`): Docker's event of type `network`, whose actor is
/// the network.
pub fn emit_network(
    root: &Path,
    action: &str,
    network: &networking::store::Network,
    container_id: &str,
) {
    let attributes = BTreeMap::from([
        ("container".to_string(), container_id.to_string()),
        ("name".to_string(), network.name.clone()),
        ("type".to_string(), network.driver.as_str().to_string()),
    ]);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let event = Event {
        kind: "network".into(),
        action: action.into(),
        actor: Actor {
            id: network.id.clone(),
            attributes,
        },
        scope: "local".into(),
        time: nanos.as_secs(),
        time_nano: u64::try_from(nanos.as_nanos()).unwrap_or(u64::MAX),
        status: String::new(),
        id: String::new(),
        from: String::new(),
    };
    let _ = append(root, &event);
}

fn append(root: &Path, event: &Event) -> std::io::Result<()> {
    let path = journal(root);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_JOURNAL) {
        // Turned over: a reader following the old file reads it to its end, then this one.
        let _ = std::fs::rename(&path, root.join("events.log.1"));
    }
    let mut line = serde_json::to_vec(event)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)?;
    // One write: lines of processes that append at once never mix.
    file.write_all(&line)
}
// ANCHOR_END: emit

/// `events`'s flags.
#[derive(Args)]
pub struct EventsArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Show events since this time: RFC 3339, Unix seconds, or a duration ago (10m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Stream events until this time (same forms); without it, follow until interrupted
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only events that match: container=, event=, image=, label=, type=
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format the output with a Go template, or `json`
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// A time given to `--since` or `--until`.
pub fn parse_time(text: &str, now: SystemTime) -> anyhow::Result<SystemTime> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds >= 0.0
    {
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(seconds));
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        return Ok(now.checked_sub(ago).unwrap_or(UNIX_EPOCH));
    }
    images::human::parse_time(text).with_context(|| {
        format!("invalid time {text:?}: give RFC 3339 (2026-12-04T10:00:00Z), Unix seconds, or a duration such as 10m")
    })
}

// ANCHOR: filter
/// `--filter`s: the values of one key are alternatives, different keys must all match.
#[derive(Debug, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses `KEY=VALUE` filters.
    pub fn parse(filters: &[String]) -> anyhow::Result<Filters> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for filter in filters {
            let Some((key, value)) = filter.split_once('=') else {
                bail!("bad format of filter (expected name=value): {filter}");
            };
            if !["container", "event", "image", "label", "type"].contains(&key) {
                bail!("invalid filter '{key}'");
            }
            map.entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
        Ok(Filters(map))
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        let attrs = &event.actor.attributes;
        self.0.iter().all(|(key, values)| {
            values.iter().any(|value| match key.as_str() {
                "container" => {
                    attrs.get("name").is_some_and(|n| n == value)
                        || (!value.is_empty() && event.actor.id.starts_with(value.as_str()))
                }
                "event" => event.action == *value || event.action.starts_with(&format!("{value}:")),
                "image" => attrs.get("image").is_some_and(|i| i == value),
                "type" => event.kind == *value,
                "label" => match value.split_once('=') {
                    Some((k, v)) => attrs.get(k).is_some_and(|a| a == v),
                    None => attrs.contains_key(value.as_str()),
                },
                _ => false,
            })
        })
    }
}
// ANCHOR_END: filter

/// The event as Docker's templates see it: the fields of its Go struct (`.Time`,
/// `.TimeNano`, `.Status`, `.ID`, `.From`), where its JSON says `time`, `status`...
pub(crate) fn go_fields(event: &Event) -> serde_json::Value {
    serde_json::json!({
        "Type": event.kind,
        "Action": event.action,
        "Actor": {"ID": event.actor.id, "Attributes": event.actor.attributes},
        "Scope": event.scope,
        "Time": event.time,
        "TimeNano": event.time_nano,
        "Status": event.status,
        "ID": event.id,
        "From": event.from,
    })
}

/// Docker's line: `TIME container ACTION ID (key=value, ...)`.
pub fn line(event: &Event) -> String {
    let seconds = UNIX_EPOCH + Duration::from_nanos(event.time_nano);
    let time = humantime::format_rfc3339_nanos(seconds);
    let attributes: Vec<String> = event
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{time} {} {} {} ({})",
        event.kind,
        event.action,
        event.actor.id,
        attributes.join(", ")
    )
}

/// Runs `events`.
pub fn command(args: &EventsArgs) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let now = SystemTime::now();
    let since = args
        .since
        .as_deref()
        .map(|t| parse_time(t, now))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|t| parse_time(t, now))
        .transpose()?;
    let filters = Filters::parse(&args.filter)?;
    let template = match args.format.as_deref().map(crate::format::unescape) {
        Some(f) if !crate::format::is_json(&f) => Some(crate::format::Template::parse(&f)?),
        _ => None,
    };
    let json = args.format.as_deref().is_some_and(crate::format::is_json);
    let nanos = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    };
    let (since_ns, until_ns) = (since.map(nanos), until.map(nanos));
    let mut out = std::io::stdout().lock();
    let mut show = |event: &Event| -> anyhow::Result<bool> {
        if until_ns.is_some_and(|u| event.time_nano > u) {
            return Ok(false);
        }
        if since_ns.is_some_and(|s| event.time_nano < s) || !filters.matches(event) {
            return Ok(true);
        }
        let text = if json {
            serde_json::to_string(event)?
        } else if let Some(template) = &template {
            template.execute(&go_fields(event))?
        } else {
            line(event)
        };
        writeln!(out, "{text}")?;
        out.flush()?;
        Ok(true)
    };
    let path = journal(root);
    // The past, when asked for: the turned-over journal, then the start of this one.
    let mut follower = Follower::open(&path, since.is_some())?;
    if since.is_some() {
        let old = root.join("events.log.1");
        if let Ok(file) = std::fs::File::open(&old) {
            for event in BufReader::new(file).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Event>(&event)
                    && !show(&event)?
                {
                    return Ok(0);
                }
            }
        }
    }
    loop {
        for event in follower.read_new() {
            if !show(&event)? {
                return Ok(0);
            }
        }
        if until.is_some_and(|u| SystemTime::now() >= u) {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ANCHOR: follow
/// Reads a journal as it grows, across turnovers.
pub(crate) struct Follower {
    path: PathBuf,
    file: Option<std::fs::File>,
    inode: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// The journal at `path`, from its start or (`from_start` false) from its end.
    pub(crate) fn open(path: &Path, from_start: bool) -> std::io::Result<Follower> {
        let mut follower = Follower {
            path: path.to_path_buf(),
            file: None,
            inode: 0,
            partial: Vec::new(),
        };
        if let Ok(mut file) = std::fs::File::open(path) {
            follower.inode = file.metadata()?.ino();
            if !from_start {
                file.seek(SeekFrom::End(0))?;
            }
            follower.file = Some(file);
        }
        Ok(follower)
    }

    /// The events written since the last call.
    pub(crate) fn read_new(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.drain(&mut events);
        // Turned over (or made) meanwhile: the rest of the old file was read; now the new one.
        let current = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if current.is_some()
            && current != Some(self.inode)
            && let Ok(file) = std::fs::File::open(&self.path)
        {
            self.inode = current.unwrap_or_default();
            self.file = Some(file);
            self.partial.clear();
            self.drain(&mut events);
        }
        events
    }

    fn drain(&mut self, events: &mut Vec<Event>) {
        let Some(file) = &mut self.file else {
            return;
        };
        let mut buf = Vec::new();
        if file.read_to_end(&mut buf).is_err() {
            return;
        }
        self.partial.extend(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            if let Ok(event) = serde_json::from_slice::<Event>(&line) {
                events.push(event);
            }
        }
    }
}
// ANCHOR_END: follow

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, name: &str) -> Event {
        Event {
            kind: "container".into(),
            action: action.into(),
            actor: Actor {
                id: "4f3c0b9d5c55aa".into(),
                attributes: [
                    ("name".to_string(), name.to_string()),
                    ("image".to_string(), "busybox".to_string()),
                ]
                .into_iter()
                .collect(),
            },
            scope: "local".into(),
            time: 1_796_400_000,
            time_nano: 1_796_400_000_123_456_789,
            status: action.into(),
            id: "4f3c0b9d5c55aa".into(),
            from: "busybox".into(),
        }
    }

    #[test]
    fn filters_of_one_key_are_alternatives_and_keys_all_hold() {
        let filters = Filters::parse(&[
            "event=start".into(),
            "event=die".into(),
            "container=web".into(),
        ])
        .unwrap();
        assert!(filters.matches(&event("start", "web")));
        assert!(filters.matches(&event("die", "web")));
        assert!(!filters.matches(&event("create", "web")));
        assert!(!filters.matches(&event("start", "db")));
        let by_id = Filters::parse(&["container=4f3c".into()]).unwrap();
        assert!(by_id.matches(&event("start", "db")));
        assert!(Filters::parse(&["colour=red".into()]).is_err());
    }

    #[test]
    fn lines_read_as_dockers() {
        assert_eq!(
            line(&event("start", "web")),
            "2026-12-04T16:00:00.123456789Z container start 4f3c0b9d5c55aa (image=busybox, name=web)"
        );
    }

    #[test]
    fn times_are_rfc3339_seconds_or_a_while_ago() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_time("10", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(10)
        );
        assert_eq!(
            parse_time("10m", now).unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_000_000 - 600)
        );
        assert!(parse_time("yesterday-ish", now).is_err());
    }

    #[test]
    fn a_follower_reads_what_is_appended_and_survives_a_turnover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let write = |e: &Event, p: &Path| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .unwrap();
            writeln!(f, "{}", serde_json::to_string(e).unwrap()).unwrap();
        };
        write(&event("create", "old"), &path);
        let mut follower = Follower::open(&path, false).unwrap();
        assert!(follower.read_new().is_empty());
        write(&event("start", "a"), &path);
        std::fs::rename(&path, dir.path().join("events.log.1")).unwrap();
        write(&event("die", "a"), &path);
        let actions: Vec<String> = follower.read_new().into_iter().map(|e| e.action).collect();
        assert_eq!(actions, ["start", "die"]);
    }
}
