//! `images`, `network ls` and `volume ls` with Docker's `--filter` and `--format`.
//!
//! The stages below list what they keep as a fixed table. Here each row becomes the object
//! Docker's templates see (`{{.Repository}}:{{.Tag}}`, `{{.Name}}`), and [`crate::format::list`]
//! prints it as `ps` prints containers: the default table, `table TEMPLATE`, `json`, or a
//! template per row. The filters are Docker's (docker-images(1), docker-network-ls(1),
//! docker-volume-ls(1)): values of one key are alternatives, different keys must all hold.

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::bail;
use clap::{Args, Subcommand};
use images::cli::{ImageCommand, ListArgs};
use images::image::Image;
use images::ops::ImageRow;
use images::store::Store;
use networking::cli::NetworkCommand;
use serde_json::{Map, Value, json};
use volumes::cli::VolumeCommand;

use crate::format::{self, Columns};

/// `images` and `image ls`.
#[derive(Args)]
pub struct ImagesArgs {
    /// Stage 04's flags.
    #[command(flatten)]
    pub list: ListArgs,
    /// Filter: dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE,
    /// label=KEY[=VALUE]
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format the output: a Go template, `table TEMPLATE`, or `json`
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Show whole image ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
}

/// `image`'s commands, as Docker groups them.
#[derive(Subcommand)]
pub enum ImageGroup {
    /// Build an image from a Dockerfile
    Build(images::cli::BuildArgs),
    /// Show how an image was made, layer by layer
    History(images::cli::HistoryArgs),
    /// Create an image from a root filesystem tarball
    Import(images::cli::ImportArgs),
    /// Show images' details as JSON
    Inspect(images::cli::InspectArgs),
    /// Load images from a docker-archive or OCI archive (a file, or stdin)
    Load(images::cli::LoadArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove dangling images (every unused one with -a)
    Prune(crate::prune::ImagePruneArgs),
    /// Download an image from a registry
    Pull(images::cli::PullArgs),
    /// Upload an image to a registry
    Push(images::cli::PushArgs),
    /// Remove images
    #[command(visible_alias = "rmi")]
    Rm(images::cli::RmiArgs),
    /// Save images to a docker-archive (default) or OCI archive
    Save(images::cli::SaveArgs),
    /// Give an image another name
    Tag(images::cli::TagArgs),
}

impl ImageGroup {
    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            ImageGroup::Build(args) => ImageCommand::Build(args).execute(),
            ImageGroup::History(args) => ImageCommand::History(args).execute(),
            ImageGroup::Import(args) => ImageCommand::Import(args).execute(),
            ImageGroup::Inspect(args) => ImageCommand::Inspect(args).execute(),
            ImageGroup::Load(args) => ImageCommand::Load(args).execute(),
            ImageGroup::Ls(args) => images(&args),
            ImageGroup::Prune(args) => crate::prune::image_prune(&args),
            ImageGroup::Pull(args) => ImageCommand::Pull(args).execute(),
            ImageGroup::Push(args) => ImageCommand::Push(args).execute(),
            ImageGroup::Rm(args) => ImageCommand::Rmi(args).execute(),
            ImageGroup::Save(args) => ImageCommand::Save(args).execute(),
            ImageGroup::Tag(args) => ImageCommand::Tag(args).execute(),
        }
    }
}

// --- images -------------------------------------------------------------------------------------

const IMAGE_HEADERS: [(&str, &str); 11] = [
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("VirtualSize", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

/// The image filters, checked, by key.
#[derive(Debug, Default)]
struct ImageFilters {
    dangling: Option<bool>,
    reference: Vec<String>,
    before: Option<String>,
    since: Option<String>,
    label: Vec<String>,
}

impl ImageFilters {
    fn parse(flags: &[String]) -> anyhow::Result<ImageFilters> {
        let mut filters = ImageFilters::default();
        for (key, value) in networking::cli::key_values(flags, "--filter")? {
            match key.as_str() {
                "dangling" => {
                    filters.dangling = Some(match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => bail!("Invalid filter 'dangling={value}'"),
                    });
                }
                "reference" => filters.reference.push(value),
                "before" => filters.before = Some(value),
                "since" => filters.since = Some(value),
                "label" => filters.label.push(value),
                other => bail!("invalid filter '{other}'"),
            }
        }
        Ok(filters)
    }
}

/// Docker's reference filter: a glob over `name:tag` or the name alone (`busy*`, `*:1.36`);
/// `*` does not cross a `/`, as Go's path.Match.
fn reference_matches(pattern: &str, row: &ImageRow) -> bool {
    let name = &row.repository;
    let full = format!("{name}:{}", row.tag);
    [name.as_str(), full.as_str()]
        .iter()
        .any(|candidate| glob(pattern.as_bytes(), candidate.as_bytes()))
}

/// path.Match's `*` and `?` (no character classes).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            glob(rest, text)
                || text
                    .split_first()
                    .is_some_and(|(c, more)| *c != b'/' && glob(pattern, more))
        }
        (Some((b'?', rest)), Some((c, more))) => *c != b'/' && glob(rest, more),
        (Some((p, rest)), Some((c, more))) => p == c && glob(rest, more),
        _ => false,
    }
}

fn created_time(row: &ImageRow) -> Option<SystemTime> {
    row.created.as_deref().and_then(images::human::parse_time)
}

/// An image's `CreatedAt` as Docker's CLI prints it: the API gives whole seconds, shown as Go's
/// `time.Time.String()` (`2024-05-01 10:11:12 +0000 UTC`); empty when the image has no time.
pub fn created_at(created: Option<SystemTime>) -> String {
    created.map_or_else(String::new, crate::ps::created_at_text)
}

/// The image's labels, from its config.
fn labels(image: &Image) -> BTreeMap<String, String> {
    image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .map(|l| l.into_iter().collect())
        .unwrap_or_default()
}

fn image_row(
    row: &ImageRow,
    store: &Store,
    args: &ImagesArgs,
    now: SystemTime,
) -> Map<String, Value> {
    let id = if args.no_trunc {
        row.id.to_string()
    } else {
        row.id.short().to_string()
    };
    let digest = store
        .image(&row.id)
        .ok()
        .and_then(|i| i.repo_digests.first().cloned())
        .and_then(|d| d.split_once('@').map(|(_, d)| d.to_string()))
        .unwrap_or_else(|| "<none>".to_string());
    let size = images::human::human_size(row.size);
    let value = json!({
        "Containers": "N/A",
        "CreatedAt": created_at(created_time(row)),
        "CreatedSince": images::human::ago(row.created.as_deref(), now),
        "Digest": digest,
        "ID": id,
        "Repository": row.repository,
        "SharedSize": "N/A",
        "Size": size,
        "Tag": row.tag,
        "UniqueSize": "N/A",
        "VirtualSize": size,
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

// ANCHOR: images
/// `images`: stage 04's rows, filtered, as the format asks.
pub fn images(args: &ImagesArgs) -> anyhow::Result<i32> {
    let filters = ImageFilters::parse(&args.filter)?;
    let store = Store::open(&args.list.store.root)?;
    // A dangling filter looks at every image, intermediate ones too, as Docker's does.
    let all = args.list.all || filters.dangling.is_some();
    let rows = images::ops::list(&store, all)?;
    let bound = |name: &Option<String>| -> anyhow::Result<Option<SystemTime>> {
        let Some(name) = name else { return Ok(None) };
        let id = store.resolve(name)?;
        Ok(store
            .image(&id)?
            .created()
            .and_then(images::human::parse_time))
    };
    let (before, since) = (bound(&filters.before)?, bound(&filters.since)?);
    let mut kept = Vec::new();
    for row in rows {
        let created = created_time(&row);
        let dangling = row.repository == "<none>";
        let keep = filters.dangling.is_none_or(|d| d == dangling)
            && (filters.reference.is_empty()
                || filters.reference.iter().any(|p| reference_matches(p, &row)))
            && before.is_none_or(|b| created.is_some_and(|c| c < b))
            && since.is_none_or(|s| created.is_some_and(|c| c > s))
            && (filters.label.is_empty() || {
                let labels = store.image(&row.id).map(|i| labels(&i)).unwrap_or_default();
                filters.label.iter().all(|l| match l.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
                    None => labels.contains_key(l),
                })
            });
        if keep {
            kept.push(row);
        }
    }
    let now = SystemTime::now();
    let maps: Vec<Map<String, Value>> = kept
        .iter()
        .map(|r| image_row(r, &store, args, now))
        .collect();
    print!("{}", print_images(args, &maps)?);
    Ok(0)
}
// ANCHOR_END: images

/// `images`' output for rows gathered anywhere: from the store, or from a daemon's
/// `GET /images/json` (`skiff -H`). `-q` prints each id once.
pub fn print_images(
    args: &ImagesArgs,
    maps: &[Map<String, Value>],
) -> Result<String, format::FormatError> {
    if args.list.quiet {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = String::new();
        for row in maps {
            let id = row.get("ID").and_then(Value::as_str).unwrap_or_default();
            if seen.insert(id.to_string()) {
                out.push_str(&format!("{id}\n"));
            }
        }
        return Ok(out);
    }
    let default: &[&str] = if args.digests {
        &["Repository", "Tag", "Digest", "ID", "CreatedSince", "Size"]
    } else {
        &["Repository", "Tag", "ID", "CreatedSince", "Size"]
    };
    let columns = Columns {
        headers: &IMAGE_HEADERS,
        default,
    };
    format::list(args.format.as_deref(), &columns, maps)
}

// --- network ls and volume ls -------------------------------------------------------------------

const NETWORK_HEADERS: [(&str, &str); 9] = [
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

const VOLUME_HEADERS: [(&str, &str); 10] = [
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
    ("Group", "GROUP"),
    ("Availability", "AVAILABILITY"),
    ("Status", "STATUS"),
];

/// A JSON object's map (empty for anything else).
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `network ls` with a template: stage 05 filters, stage 07 formats. Other forms of the
/// command go to stage 05 as they are.
pub fn network(command: NetworkCommand) -> anyhow::Result<i32> {
    let NetworkCommand::List {
        root,
        quiet: false,
        filter,
        format: Some(format),
        ..
    } = command
    else {
        return command.execute();
    };
    let rows: Vec<_> = networking::cli::filtered(&root.root, &filter)?
        .iter()
        .map(|n| object(networking::store::ls_json(n)))
        .collect();
    print!("{}", format::list(Some(&format), &NETWORK_COLUMNS, &rows)?);
    Ok(0)
}

/// `network ls`'s columns: the default table is stage 05's.
pub const NETWORK_COLUMNS: Columns<'static> = Columns {
    headers: &NETWORK_HEADERS,
    default: &["ID", "Name", "Driver", "Scope"],
};

/// `volume ls`'s columns: the default table is stage 06's.
pub const VOLUME_COLUMNS: Columns<'static> = Columns {
    headers: &VOLUME_HEADERS,
    default: &["Driver", "Name"],
};

/// `volume ls` with a template: stage 06 filters, stage 07 formats.
pub fn volume(command: VolumeCommand) -> anyhow::Result<i32> {
    let VolumeCommand::List {
        root,
        quiet: false,
        filter,
        format: Some(format),
    } = command
    else {
        return command.execute();
    };
    let rows: Vec<_> = volumes::cli::filtered(&root.root, &filter)?
        .iter()
        .map(|v| object(volumes::store::ls_json(v)))
        .collect();
    print!("{}", format::list(Some(&format), &VOLUME_COLUMNS, &rows)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each list's tables have a header for every field of its rows, as Docker's do.
    #[test]
    fn every_field_has_its_header() {
        let fields = |headers: &[(&str, &str)]| {
            let mut fields: Vec<&str> = headers.iter().map(|(field, _)| *field).collect();
            fields.sort_unstable();
            fields.join(" ")
        };
        // The keys of `docker images`, `network ls` and `volume ls --format '{{json .}}'`
        // (the 28.2 CLI).
        assert_eq!(
            fields(&IMAGE_HEADERS),
            "Containers CreatedAt CreatedSince Digest ID Repository SharedSize Size Tag \
             UniqueSize VirtualSize"
        );
        assert_eq!(
            fields(&NETWORK_HEADERS),
            "CreatedAt Driver ID IPv4 IPv6 Internal Labels Name Scope"
        );
        assert_eq!(
            fields(&VOLUME_HEADERS),
            "Availability Driver Group Labels Links Mountpoint Name Scope Size Status"
        );
    }

    /// issue 10: the tables as Docker 20.10's daemon and the 28.2 CLI printed them for the
    /// same network, volume and image (`docker network create --label x=y n1`,
    /// `docker volume create v1`, and an image `skiff save`d and `docker load`ed).
    #[test]
    fn tables_print_dockers_shapes() {
        let network: networking::store::Network = serde_json::from_value(json!({
            "name": "n1", "id": "84e4b34b6aee".repeat(5) + "abcd", "driver": "bridge",
            "subnet": null, "gateway": null, "bridge": null, "parent": null, "internal": false,
            "created": "2026-12-05T07:43:46.854182351Z", "labels": {"x": "y"},
        }))
        .unwrap();
        let rows = [object(networking::store::ls_json(&network))];
        let template = "table {{.ID}}\t{{.CreatedAt}}\t{{.IPv6}}\t{{.Internal}}\t{{.Labels}}";
        assert_eq!(
            format::list(Some(template), &NETWORK_COLUMNS, &rows).unwrap(),
            "NETWORK ID     CREATED AT                                IPV6      INTERNAL   LABELS\n\
             84e4b34b6aee   2026-12-05 07:43:46.854182351 +0000 UTC   false     false      x=y\n"
        );

        let volume = volumes::store::Volume {
            name: "v1".into(),
            created: "2026-12-05T07:43:19Z".into(),
            labels: BTreeMap::new(),
            anonymous: false,
            users: vec!["c".repeat(64)],
            target: None,
            mountpoint: "/var/lib/skiff/volumes/v1/_data".into(),
        };
        let rows = [object(volumes::store::ls_json(&volume))];
        let template =
            "table {{.Name}}\t{{.Links}}\t{{.Size}}\t{{.Status}}\t{{.Group}}\t{{.Availability}}";
        assert_eq!(
            format::list(Some(template), &VOLUME_COLUMNS, &rows).unwrap(),
            "VOLUME NAME   LINKS     SIZE      STATUS    GROUP     AVAILABILITY\n\
             v1            N/A       N/A       N/A       N/A       N/A\n"
        );

        let created = images::human::parse_time("2026-12-05T07:44:42.450376857Z");
        let rows = [object(json!({
            "Containers": "N/A",
            "CreatedAt": created_at(created),
            "SharedSize": "N/A",
            "UniqueSize": "N/A",
        }))];
        let columns = Columns {
            headers: &IMAGE_HEADERS,
            default: &[],
        };
        let template = "table {{.CreatedAt}}\t{{.Containers}}\t{{.SharedSize}}\t{{.UniqueSize}}";
        assert_eq!(
            format::list(Some(template), &columns, &rows).unwrap(),
            "CREATED AT                      CONTAINERS   SHARED SIZE   UNIQUE SIZE\n\
             2026-12-05 07:44:42 +0000 UTC   N/A          N/A           N/A\n"
        );
    }

    #[test]
    fn reference_globs_as_path_match() {
        assert!(glob(b"busy*", b"busybox"));
        assert!(glob(b"*:1.36", b"busybox:1.36"));
        assert!(!glob(b"*", b"library/busybox"));
        assert!(glob(b"*/busybox", b"library/busybox"));
        assert!(glob(b"b?sybox", b"busybox"));
        assert!(!glob(b"busy", b"busybox"));
    }
}
