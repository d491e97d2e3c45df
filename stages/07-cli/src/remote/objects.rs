//! Images, networks, volumes and the system as requests: `images` is `GET /images/json` turned
//! into `images`' rows, `pull` reads the daemon's streamed progress, `inspect` prints the
//! daemon's JSON indented as the docker CLI indents it, `events` follows `GET /events`. See the
//! Engine API v1.41 ("Images", "Networks", "Volumes", "System").

use std::io::BufReader;
use std::time::SystemTime;

use anyhow::Context;
use networking::cli::NetworkCommand;
use serde_json::{Map, Value, json};
use volumes::cli::VolumeCommand;

use super::http::Client;
use super::{each, filters, query, segment};
use crate::cli::{Command, ContainerCommand, ContainerGroupCommand};
use crate::connect::NetworkGroup;
use crate::listings::ImageGroup;

// ANCHOR: remote
/// Whether `command` has requests: the rest are refused by name (local-only), never run on
/// the local store instead.
pub fn remote(command: &Command) -> bool {
    use ContainerCommand as C;
    match command {
        Command::Container(c)
        | Command::ContainerGroup {
            command: ContainerGroupCommand::Common(c),
        } => matches!(
            c,
            C::Run(_)
                | C::Create(_)
                | C::Start(_)
                | C::Stop(_)
                | C::Restart(_)
                | C::Kill(_)
                | C::Rm(_)
                | C::Wait(_)
                | C::Ps(_)
                | C::Logs(_)
                | C::Inspect(_)
                | C::Exec(_)
                | C::Events(_)
                | C::Pause(_)
                | C::Unpause(_)
                | C::Top(_)
                | C::Rename(_)
                | C::Attach(_)
                | C::Port(_)
                | C::Diff(_)
                | C::Update(_)
                | C::Stats(_)
                | C::Cp(_)
                | C::Export(_)
                | C::Commit(_)
        ),
        Command::Image { command } => matches!(
            command,
            ImageGroup::Ls(_)
                | ImageGroup::Pull(_)
                | ImageGroup::Rm(_)
                | ImageGroup::Tag(_)
                | ImageGroup::Inspect(_)
                | ImageGroup::Load(_)
                | ImageGroup::Save(_)
                | ImageGroup::Prune(_)
                | ImageGroup::History(_)
                | ImageGroup::Import(_)
                | ImageGroup::Build(_)
        ),
        Command::Images(_)
        | Command::Pull(_)
        | Command::Rmi(_)
        | Command::Tag(_)
        | Command::Load(_)
        | Command::Save(_)
        | Command::History(_)
        | Command::Import(_)
        | Command::Build(_) => true,
        Command::Network { command } => matches!(
            command,
            NetworkGroup::Connect(_)
                | NetworkGroup::Disconnect(_)
                | NetworkGroup::Networks(
                    NetworkCommand::Create { .. }
                        | NetworkCommand::List { .. }
                        | NetworkCommand::Inspect { .. }
                        | NetworkCommand::Rm { .. }
                        | NetworkCommand::Prune { .. }
                )
        ),
        Command::Volume { command } => matches!(
            command,
            VolumeCommand::Create { .. }
                | VolumeCommand::List { .. }
                | VolumeCommand::Inspect { .. }
                | VolumeCommand::Rm { .. }
                | VolumeCommand::Prune { .. }
        ),
        Command::Version(_) | Command::Info(_) => true,
        Command::ContainerGroup {
            command: ContainerGroupCommand::Prune(_),
        } => true,
        Command::System { command } => matches!(
            command,
            crate::prune::SystemCommand::Info(_)
                | crate::prune::SystemCommand::Df(_)
                | crate::prune::SystemCommand::Prune(_)
        ),
        _ => false,
    }
}
// ANCHOR_END: remote

/// Runs an image, network, volume or system command against the daemon.
pub fn execute(client: &Client, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Images(args)
        | Command::Image {
            command: ImageGroup::Ls(args),
        } => super::image::images(client, &args),
        Command::Pull(args)
        | Command::Image {
            command: ImageGroup::Pull(args),
        } => {
            super::image::pull(client, &args.image, args.quiet)?;
            Ok(0)
        }
        Command::Rmi(args)
        | Command::Image {
            command: ImageGroup::Rm(args),
        } => super::image::rmi(client, &args),
        Command::Tag(args)
        | Command::Image {
            command: ImageGroup::Tag(args),
        } => {
            let (repo, tag) = super::image::split_tag(&args.target);
            let path = format!(
                "/images/{}/tag{}",
                args.source,
                query([("repo", repo.to_string()), ("tag", tag.to_string())])
            );
            client.call("POST", &path, None)?;
            Ok(0)
        }
        Command::Image {
            command: ImageGroup::Inspect(args),
        } => {
            let path = |name: &str| format!("/images/{name}/json");
            super::inspect::inspect_each(client, &args.images, path, None)
        }
        Command::Load(args)
        | Command::Image {
            command: ImageGroup::Load(args),
        } => super::image::load(client, &args),
        Command::Save(args)
        | Command::Image {
            command: ImageGroup::Save(args),
        } => super::image::save(client, &args),
        Command::ContainerGroup {
            command: ContainerGroupCommand::Prune(args),
        } => {
            if !args.force && !crate::prune::confirm(crate::prune::CONTAINER_PRUNE_WARNING)? {
                return Ok(0);
            }
            let path = format!(
                "/containers/prune{}",
                query(filters(&args.filter)?.map(|f| ("filters", f)))
            );
            let answer = client.json("POST", &path, None)?;
            let ids = strings(&answer["ContainersDeleted"]);
            pruned("Deleted Containers", &ids, &answer);
            Ok(0)
        }
        Command::Image {
            command: ImageGroup::Prune(args),
        } => {
            if !args.force && !crate::prune::confirm(crate::prune::image_prune_warning(args.all))? {
                return Ok(0);
            }
            // `-a` is every unused image: Docker's client says so as `dangling=false`.
            let filters = args
                .all
                .then(|| r#"{"dangling":{"false":true}}"#.to_string());
            let path = format!("/images/prune{}", query(filters.map(|f| ("filters", f))));
            let answer = client.json("POST", &path, None)?;
            pruned(
                "Deleted Images",
                &super::image::pruned_lines(&answer),
                &answer,
            );
            Ok(0)
        }
        Command::History(args)
        | Command::Image {
            command: ImageGroup::History(args),
        } => {
            let answer = client.json("GET", &format!("/images/{}/history", args.image), None)?;
            let rows: Vec<images::ops::HistoryRow> = answer
                .as_array()
                .into_iter()
                .flatten()
                .map(super::image::history_row)
                .collect();
            let now = SystemTime::now();
            print!("{}", images::ops::history_table(&rows, args.no_trunc, now));
            Ok(0)
        }
        Command::System {
            command: crate::prune::SystemCommand::Df(args),
        } => {
            if args.verbose {
                anyhow::bail!(
                    "`skiff system df -v` works on the local store only, it cannot go to a daemon yet: run it without -v, or without -H"
                );
            }
            let answer = client.json("GET", "/system/df", None)?;
            print!("{}", crate::prune::df_summary(&df_lines(&answer)));
            Ok(0)
        }
        Command::Build(args)
        | Command::Image {
            command: ImageGroup::Build(args),
        } => super::image::build(client, &args),
        Command::System {
            command: crate::prune::SystemCommand::Prune(args),
        } => system_prune(client, &args),
        Command::Import(args)
        | Command::Image {
            command: ImageGroup::Import(args),
        } => super::image::import(client, &args),
        Command::Network { command } => network(client, command),
        Command::Volume { command } => volume(client, command),
        Command::Version(args) => {
            let server = client.json("GET", "/version", None)?;
            let mut version = crate::system::Version::here();
            version.platform = server["Platform"]["Name"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or("Docker Engine")
                .to_string();
            let side = &mut version.server;
            let text = |key: &str| server[key].as_str().unwrap_or_default().to_string();
            side.version = text("Version");
            side.api_version = text("ApiVersion");
            side.rust_version = text("GoVersion");
            side.os = text("Os");
            side.arch = text("Arch");
            side.kernel_version = Some(text("KernelVersion"));
            version.client.api_version = client.version.clone();
            crate::cli::about(&args, &version, crate::system::Version::text)
        }
        Command::Info(args)
        | Command::System {
            command: crate::prune::SystemCommand::Info(args),
        } => {
            let answer = client.json("GET", "/info", None)?;
            let mut info: crate::system::Info =
                serde_json::from_value(answer).context("read the daemon's info")?;
            info.client_version = env!("CARGO_PKG_VERSION").into();
            crate::cli::about(&args, &info, crate::system::Info::text)
        }
        _ => Err(super::local_only()),
    }
}

/// `GET /system/df` as `system df`'s lines: in use is an image some container uses, a running
/// container, a volume something mounts; a prune would give back the rest.
fn df_lines(answer: &Value) -> Vec<crate::prune::Usage> {
    let list = |key: &str| answer[key].as_array().cloned().unwrap_or_default();
    let number = |v: &Value| v.as_u64().unwrap_or(0);
    let (images, containers, volumes) = (list("Images"), list("Containers"), list("Volumes"));
    let used = |i: &&Value| i["Containers"].as_i64().unwrap_or(0) > 0;
    let running = |c: &&Value| c["State"] == "running";
    let mounted = |v: &&Value| v["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0;
    // A volume whose size is not known says -1.
    let volume_size = |v: &Value| v["UsageData"]["Size"].as_u64().unwrap_or(0);
    vec![
        crate::prune::Usage {
            kind: "Images",
            total: images.len(),
            active: images.iter().filter(used).count(),
            size: number(&answer["LayersSize"]),
            reclaimable: images
                .iter()
                .filter(|i| !used(i))
                .map(|i| number(&i["Size"]))
                .sum(),
        },
        crate::prune::Usage {
            kind: "Containers",
            total: containers.len(),
            active: containers.iter().filter(running).count(),
            size: containers.iter().map(|c| number(&c["SizeRw"])).sum(),
            reclaimable: containers
                .iter()
                .filter(|c| !running(c))
                .map(|c| number(&c["SizeRw"]))
                .sum(),
        },
        crate::prune::Usage {
            kind: "Local Volumes",
            total: volumes.len(),
            active: volumes.iter().filter(mounted).count(),
            size: volumes.iter().map(volume_size).sum(),
            reclaimable: volumes
                .iter()
                .filter(|v| !mounted(v))
                .map(volume_size)
                .sum(),
        },
        crate::prune::Usage {
            kind: "Build Cache",
            total: answer["BuildCache"].as_array().map_or(0, Vec::len),
            active: 0,
            size: 0,
            reclaimable: 0,
        },
    ]
}

// ANCHOR: system_prune
/// `system prune`: the containers', networks' and images' prunes, in Docker's order (what the
/// containers held becomes unused), reported as the local prune reports.
fn system_prune(client: &Client, args: &crate::prune::SystemPruneArgs) -> anyhow::Result<i32> {
    if args.volumes {
        // As for `volume prune`: API 1.41 would take the named volumes the local prune keeps.
        anyhow::bail!(
            "--volumes: a daemon of API {} prunes named volumes too, where the local prune keeps them: prune them with `volume prune -a`",
            client.version
        );
    }
    if !args.force && !crate::prune::confirm(&crate::prune::system_prune_warning(args))? {
        return Ok(0);
    }
    let filters = filters(&args.filter)?;
    let with_filters =
        |path: &str| format!("{path}{}", query(filters.clone().map(|f| ("filters", f))));
    let containers = client.json("POST", &with_filters("/containers/prune"), None)?;
    crate::prune::print_section(
        "Deleted Containers",
        &strings(&containers["ContainersDeleted"]),
    );
    let networks = client.json("POST", &with_filters("/networks/prune"), None)?;
    crate::prune::print_section("Deleted Networks", &strings(&networks["NetworksDeleted"]));
    // Images take the filters too; the local prune leaves them when age or labels are asked.
    let mut freed = containers["SpaceReclaimed"].as_u64().unwrap_or(0);
    if args.filter.is_empty() {
        let dangling = args
            .all
            .then(|| r#"{"dangling":{"false":true}}"#.to_string());
        let path = format!("/images/prune{}", query(dangling.map(|f| ("filters", f))));
        let images = client.json("POST", &path, None)?;
        crate::prune::print_section("Deleted Images", &super::image::pruned_lines(&images));
        freed += images["SpaceReclaimed"].as_u64().unwrap_or(0);
    }
    println!(
        "Total reclaimed space: {}",
        images::human::human_size(freed)
    );
    Ok(0)
}
// ANCHOR_END: system_prune

/// A JSON array of strings (empty for anything else).
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// A prune's report, as the local one prints it: what went, then the space given back.
fn pruned(title: &str, lines: &[String], answer: &Value) {
    crate::prune::print_section(title, lines);
    let freed = answer["SpaceReclaimed"].as_u64().unwrap_or(0);
    println!(
        "Total reclaimed space: {}",
        images::human::human_size(freed)
    );
}

// --- networks and volumes -----------------------------------------------------------------------

fn network(client: &Client, command: NetworkGroup) -> anyhow::Result<i32> {
    match command {
        NetworkGroup::Networks(NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            ip_range,
            opt,
            internal,
            label,
            ipv6,
            name,
            ..
        }) => {
            let config: Vec<Value> = subnet
                .iter()
                .map(|s| {
                    // Only what was given: an empty Gateway is not "none" to a daemon.
                    let mut pool = json!({ "Subnet": s });
                    if let Some(gateway) = &gateway {
                        pool["Gateway"] = json!(gateway);
                    }
                    if let Some(range) = &ip_range {
                        pool["IPRange"] = json!(range);
                    }
                    pool
                })
                .collect();
            let body = json!({
                "Name": name,
                "Driver": driver,
                "CheckDuplicate": true,
                "Internal": internal,
                "EnableIPv6": ipv6,
                "IPAM": { "Driver": "default", "Config": config },
                "Options": pairs_map(&opt),
                "Labels": pairs_map(&label),
            });
            let answer = client.json("POST", "/networks/create", Some(&body))?;
            println!("{}", answer["Id"].as_str().unwrap_or_default());
            Ok(0)
        }
        NetworkGroup::Networks(NetworkCommand::List {
            quiet,
            filter,
            format,
            ..
        }) => {
            let path = format!(
                "/networks{}",
                query(filters(&filter)?.map(|f| ("filters", f)))
            );
            let list = client.json("GET", &path, None)?;
            let rows: Vec<Map<String, Value>> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(network_row)
                .collect();
            if quiet {
                for row in &rows {
                    println!("{}", row["ID"].as_str().unwrap_or_default());
                }
                return Ok(0);
            }
            let columns = crate::listings::NETWORK_COLUMNS;
            print!(
                "{}",
                crate::format::list(format.as_deref(), &columns, &rows)?
            );
            Ok(0)
        }
        NetworkGroup::Networks(NetworkCommand::Inspect { networks, .. }) => {
            super::inspect::inspect_each(
                client,
                &networks,
                |n| format!("/networks/{}", segment(n)),
                None,
            )
        }
        NetworkGroup::Networks(NetworkCommand::Rm { networks, .. }) => Ok(each(&networks, |key| {
            client
                .call("DELETE", &format!("/networks/{}", segment(key)), None)
                .map(drop)
        })),
        NetworkGroup::Networks(NetworkCommand::Prune { .. }) => {
            // The local prune never asks (stage 05), nor does this one.
            let answer = client.json("POST", "/networks/prune", None)?;
            let names = strings(&answer["NetworksDeleted"]);
            if !names.is_empty() {
                println!("Deleted Networks:");
                names.iter().for_each(|n| println!("{n}"));
            }
            Ok(0)
        }
        NetworkGroup::Connect(args) => {
            let mut endpoint = json!({ "Aliases": args.alias });
            if let Some(ip) = &args.ip {
                endpoint["IPAMConfig"] = json!({ "IPv4Address": ip });
            }
            let body = json!({ "Container": args.container, "EndpointConfig": endpoint });
            let path = format!("/networks/{}/connect", segment(&args.network));
            client.call("POST", &path, Some(&body))?;
            Ok(0)
        }
        NetworkGroup::Disconnect(args) => {
            let body = json!({ "Container": args.container, "Force": args.force });
            let path = format!("/networks/{}/disconnect", segment(&args.network));
            client.call("POST", &path, Some(&body))?;
            Ok(0)
        }
        _ => Err(super::local_only()),
    }
}

/// One network of `GET /networks` as `network ls`'s row: `CreatedAt` as Go's time string,
/// where the API gives RFC 3339.
fn network_row(n: &Value) -> Map<String, Value> {
    let text = |k: &str| n[k].as_str().unwrap_or_default().to_string();
    let labels: Vec<String> = n["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let created = text("Created");
    crate::listings::object(json!({
        "CreatedAt": images::human::go_time_string(&created).unwrap_or(created),
        "Driver": text("Driver"),
        "ID": crate::ps::id_text(&text("Id"), true),
        "IPv4": n["EnableIPv4"].as_bool().unwrap_or(false).to_string(),
        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
        "Labels": labels.join(","),
        "Name": text("Name"),
        "Scope": text("Scope"),
    }))
}

/// One volume of `GET /volumes` as `volume ls`'s row: stage 06's, from the daemon's fields.
fn volume_row(v: &Value) -> Map<String, Value> {
    let text = |k: &str| v[k].as_str().unwrap_or_default();
    let labels = v["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, x)| (k.as_str(), x.as_str().unwrap_or_default()));
    crate::listings::object(volumes::store::ls_row(
        text("Driver"),
        text("Name"),
        text("Mountpoint"),
        text("Scope"),
        labels,
    ))
}

fn pairs_map(pairs: &[String]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), Value::String(v.to_string()))
        })
        .collect()
}

fn volume(client: &Client, command: VolumeCommand) -> anyhow::Result<i32> {
    match command {
        VolumeCommand::Create {
            driver,
            opt,
            label,
            name,
            name_flag,
            ..
        } => {
            let body = json!({
                "Name": name.or(name_flag).unwrap_or_default(),
                "Driver": driver,
                "DriverOpts": pairs_map(&opt),
                "Labels": pairs_map(&label),
            });
            let answer = client.json("POST", "/volumes/create", Some(&body))?;
            println!("{}", answer["Name"].as_str().unwrap_or_default());
            Ok(0)
        }
        VolumeCommand::List {
            quiet,
            filter,
            format,
            ..
        } => {
            let path = format!(
                "/volumes{}",
                query(filters(&filter)?.map(|f| ("filters", f)))
            );
            let answer = client.json("GET", &path, None)?;
            let rows: Vec<Map<String, Value>> = answer["Volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(volume_row)
                .collect();
            if quiet {
                for row in &rows {
                    println!("{}", row["Name"].as_str().unwrap_or_default());
                }
                return Ok(0);
            }
            let columns = crate::listings::VOLUME_COLUMNS;
            print!(
                "{}",
                crate::format::list(format.as_deref(), &columns, &rows)?
            );
            Ok(0)
        }
        VolumeCommand::Inspect { volumes, .. } => super::inspect::inspect_each(
            client,
            &volumes,
            |v| format!("/volumes/{}", segment(v)),
            None,
        ),
        VolumeCommand::Prune { all, .. } => {
            // API 1.41 prunes every unused volume, named ones too; the local prune keeps named
            // ones unless -a. Never remove more than the user asked for: -a says they mean it.
            if !all {
                anyhow::bail!(
                    "a daemon of API {} prunes named volumes too, where the local prune keeps them: give -a to remove every unused volume",
                    client.version
                );
            }
            let answer = client.json("POST", "/volumes/prune", None)?;
            pruned(
                "Deleted Volumes",
                &strings(&answer["VolumesDeleted"]),
                &answer,
            );
            Ok(0)
        }
        VolumeCommand::Rm { volumes, force, .. } => Ok(each(&volumes, |key| {
            let path = format!(
                "/volumes/{}{}",
                segment(key),
                query([("force", force.to_string())])
            );
            client.call("DELETE", &path, None).map(drop)
        })),
    }
}

// --- events -------------------------------------------------------------------------------------

/// `events`: `GET /events`, a JSON object per event as they happen, printed as the local
/// `events` prints them.
pub fn events(client: &Client, args: &crate::events::EventsArgs) -> anyhow::Result<i32> {
    let mut pairs = Vec::new();
    for (key, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(value) = value {
            pairs.push((key, super::containers::api_time(key, value)?));
        }
    }
    if let Some(filters) = filters(&args.filter)? {
        pairs.push(("filters", filters));
    }
    let template = match args.format.as_deref().map(crate::format::unescape) {
        Some(f) if !crate::format::is_json(&f) => Some(crate::format::Template::parse(&f)?),
        _ => None,
    };
    let json = args.format.as_deref().is_some_and(crate::format::is_json);
    let answer = client.call("GET", &format!("/events{}", query(pairs)), None)?;
    let mut reader = BufReader::new(answer);
    let mut buffer = Vec::new();
    // The daemon writes one object after another (dockerd without newlines between them).
    loop {
        let mut chunk = [0u8; 4096];
        let n = std::io::Read::read(&mut reader, &mut chunk).context("read the daemon's events")?;
        if n == 0 {
            return Ok(0);
        }
        buffer.extend_from_slice(&chunk[..n]);
        let mut stream = serde_json::Deserializer::from_slice(&buffer).into_iter::<Value>();
        let mut used = 0;
        while let Some(Ok(value)) = stream.next() {
            used = stream.byte_offset();
            let Ok(event) = serde_json::from_value::<crate::events::Event>(value) else {
                continue;
            };
            let text = if json {
                serde_json::to_string(&event)?
            } else if let Some(template) = &template {
                template.execute(&crate::events::go_fields(&event))?
            } else {
                crate::events::line(&event)
            };
            println!("{text}");
        }
        buffer.drain(..used);
    }
}
