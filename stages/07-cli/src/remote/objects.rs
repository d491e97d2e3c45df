//! Images, networks, volumes and the system as requests: `images` is `GET /images/json` turned
//! into `images`' rows, `pull` reads the daemon's streamed progress, `inspect` prints the
//! daemon's JSON indented as the docker CLI indents it, `events` follows `GET /events`. See the
//! Engine API v1.41 ("Images", "Networks", "Volumes", "System").

use std::io::{BufRead, BufReader};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use networking::cli::NetworkCommand;
use serde_json::{Map, Value, json};
use volumes::cli::VolumeCommand;

use super::http::{Client, DaemonError};
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
            crate::prune::SystemCommand::Info(_) | crate::prune::SystemCommand::Df(_)
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
        } => images(client, &args),
        Command::Pull(args)
        | Command::Image {
            command: ImageGroup::Pull(args),
        } => {
            pull(client, &args.image, args.quiet)?;
            Ok(0)
        }
        Command::Rmi(args)
        | Command::Image {
            command: ImageGroup::Rm(args),
        } => rmi(client, &args),
        Command::Tag(args)
        | Command::Image {
            command: ImageGroup::Tag(args),
        } => {
            let (repo, tag) = split_tag(&args.target);
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
            inspect_each(client, &args.images, path, None)
        }
        Command::Load(args)
        | Command::Image {
            command: ImageGroup::Load(args),
        } => load(client, &args),
        Command::Save(args)
        | Command::Image {
            command: ImageGroup::Save(args),
        } => save(client, &args),
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
            let lines: Vec<String> = answer["ImagesDeleted"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|item| {
                    [("Untagged", "untagged"), ("Deleted", "deleted")]
                        .into_iter()
                        .filter_map(|(key, word)| {
                            item[key].as_str().map(|what| format!("{word}: {what}"))
                        })
                })
                .collect();
            pruned("Deleted Images", &lines, &answer);
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
                .map(history_row)
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
        } => build(client, &args),
        Command::Import(args)
        | Command::Image {
            command: ImageGroup::Import(args),
        } => import(client, &args),
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

/// One step of `GET /images/{name}/history` as the local `history`'s row.
fn history_row(step: &Value) -> images::ops::HistoryRow {
    let created = step["Created"].as_u64().filter(|t| *t > 0).map(|t| {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string()
    });
    images::ops::HistoryRow {
        // `<missing>` for a step whose image is not in the daemon's store.
        image: step["Id"].as_str().and_then(|id| id.parse().ok()),
        created,
        created_by: step["CreatedBy"].as_str().unwrap_or_default().to_string(),
        size: step["Size"].as_u64().unwrap_or(0),
        comment: step["Comment"].as_str().unwrap_or_default().to_string(),
    }
}

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

/// `NAME[:TAG]` as the API's `repo` and `tag` (`latest` when none; a registry's port is not a
/// tag).
pub fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

// --- images -------------------------------------------------------------------------------------

// ANCHOR: images
/// `images`: `GET /images/json`, a row per name (or one `<none>` row), printed by the local
/// `images`' printer.
fn images(client: &Client, args: &crate::listings::ImagesArgs) -> anyhow::Result<i32> {
    let mut pairs = vec![("all", args.list.all.to_string())];
    if let Some(filters) = filters(&args.filter)? {
        pairs.push(("filters", filters));
    }
    let list = client.json("GET", &format!("/images/json{}", query(pairs)), None)?;
    let now = SystemTime::now();
    let rows: Vec<Map<String, Value>> = list
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|image| image_rows(image, args.no_trunc, now))
        .collect();
    print!("{}", crate::listings::print_images(args, &rows)?);
    Ok(0)
}
// ANCHOR_END: images

/// The rows of one image of `GET /images/json`: one per `REPOSITORY:TAG`.
pub fn image_rows(image: &Value, no_trunc: bool, now: SystemTime) -> Vec<Map<String, Value>> {
    let id = image["Id"].as_str().unwrap_or_default();
    let id = if no_trunc {
        id.to_string()
    } else {
        crate::ps::id_text(id.trim_start_matches("sha256:"), true)
    };
    let created = UNIX_EPOCH + Duration::from_secs(image["Created"].as_u64().unwrap_or(0));
    let created = humantime::format_rfc3339_seconds(created).to_string();
    let size = images::human::human_size(image["Size"].as_u64().unwrap_or(0));
    let digest = image["RepoDigests"]
        .as_array()
        .and_then(|d| d.first())
        .and_then(Value::as_str)
        .and_then(|d| d.split_once('@'))
        .map_or("<none>".to_string(), |(_, d)| d.to_string());
    let tags: Vec<(String, String)> = image["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|t| *t != "<none>:<none>")
        .map(|t| {
            let (repo, tag) = split_tag(t);
            (repo.to_string(), tag.to_string())
        })
        .collect();
    let tags = if tags.is_empty() {
        vec![("<none>".to_string(), "<none>".to_string())]
    } else {
        tags
    };
    tags.into_iter()
        .map(|(repository, tag)| {
            crate::listings::object(json!({
                "Containers": "N/A",
                "CreatedAt": created,
                "CreatedSince": images::human::ago(Some(&created), now),
                "Digest": digest,
                "ID": id,
                "Repository": repository,
                "SharedSize": "N/A",
                "Size": size,
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": size,
            }))
        })
        .collect()
}

// ANCHOR: pull
/// `POST /images/create?fromImage=&tag=`: the daemon pulls, and says how it goes as a stream
/// of JSON objects (`{"status": ..., "id": ...}`), printed a line each as they come; an
/// `error` in the stream is the pull's failure.
pub fn pull(client: &Client, image: &str, quiet: bool) -> anyhow::Result<()> {
    let (name, tag) = match image.split_once('@') {
        Some((name, digest)) => (name, digest),
        None => split_tag(image),
    };
    let path = format!(
        "/images/create{}",
        query([("fromImage", name.to_string()), ("tag", tag.to_string())])
    );
    let answer = client.call("POST", &path, None)?;
    let mut last = String::new();
    for line in BufReader::new(answer).lines() {
        let line = line.context("read the daemon's pull progress")?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(error) = message["error"].as_str() {
            return Err(DaemonError {
                status: 500,
                message: error.to_string(),
            }
            .into());
        }
        let status = message["status"].as_str().unwrap_or_default();
        // Progress bars are for a terminal; the lines that say what happened are kept.
        if quiet
            || message
                .get("progressDetail")
                .is_some_and(|p| p["total"].is_number())
        {
            continue;
        }
        let text = match message["id"].as_str() {
            Some(id) => format!("{id}: {status}"),
            None => status.to_string(),
        };
        if text != last {
            println!("{text}");
            last = text;
        }
    }
    if quiet {
        println!("{image}");
    }
    Ok(())
}
// ANCHOR_END: pull

// ANCHOR: load
/// `load`: the archive as the body of `POST /images/load`, sent as it is read; the daemon
/// answers with JSON messages (`{"stream": "Loaded image: ..."}`), printed unless `-q`.
fn load(client: &Client, args: &images::cli::LoadArgs) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    let mut input: Box<dyn std::io::Read> = match &args.input {
        Some(path) => {
            Box::new(std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?)
        }
        None if std::io::stdin().is_terminal() => anyhow::bail!(
            "requested load from stdin, but stdin is a terminal: use -i FILE or redirect an archive in"
        ),
        None => Box::new(std::io::stdin().lock()),
    };
    let path = format!("/images/load?quiet={}", u8::from(args.quiet));
    let answer = client.call_with_stream("POST", &path, "application/x-tar", &mut input)?;
    for line in BufReader::new(answer).lines() {
        let line = line.context("read the daemon's answer")?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(error) = message["error"].as_str() {
            return Err(DaemonError {
                status: 500,
                message: error.to_string(),
            }
            .into());
        }
        if let Some(text) = message["stream"].as_str()
            && !args.quiet
        {
            print!("{text}");
        }
    }
    Ok(0)
}
// ANCHOR_END: load

/// `save`: `GET /images/get?names=...`, a docker-archive, to the file or stdout.
fn save(client: &Client, args: &images::cli::SaveArgs) -> anyhow::Result<i32> {
    use std::io::IsTerminal;
    if args.format != "docker-archive" {
        anyhow::bail!(
            "--format {}: a daemon saves docker-archive only (the Engine API's format)",
            args.format
        );
    }
    if args.output.is_none() && std::io::stdout().is_terminal() {
        anyhow::bail!("cowardly refusing to save to a terminal: use -o FILE or redirect stdout");
    }
    let names = args.images.iter().map(|name| ("names", name.clone()));
    let answer = client.call("GET", &format!("/images/get{}", query(names)), None)?;
    write_archive(answer, args.output.as_deref())?;
    Ok(0)
}

/// An archive the daemon streams, to `output` or stdout. A file is written beside and then
/// renamed: a failed transfer leaves no half archive.
pub fn write_archive(
    mut answer: super::http::Response,
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let Some(path) = output else {
        std::io::copy(&mut answer, &mut std::io::stdout().lock()).context("write the archive")?;
        return Ok(());
    };
    let temp = path.with_extension("skiff-partial");
    let mut file =
        std::fs::File::create(&temp).with_context(|| format!("create {}", temp.display()))?;
    let copied = std::io::copy(&mut answer, &mut file)
        .context("write the archive")
        .and_then(|_| std::fs::rename(&temp, path).context("move the archive in place"));
    if copied.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    copied
}

// ANCHOR: build
/// `build`: the context directory as a tar stream, the body of `POST /build`; the daemon
/// builds and says how it goes as JSON messages (`{"stream": "Step 1/3 : FROM ..."}`), printed
/// as they come. A step that fails is an `error` in the stream: printed, exit 1, as docker's.
fn build(client: &Client, args: &images::cli::BuildArgs) -> anyhow::Result<i32> {
    let context = args.context.clone();
    if !context.is_dir() {
        anyhow::bail!(
            "unable to prepare context: path {:?} not found",
            context.display().to_string()
        );
    }
    // The Dockerfile, as a path inside the context: one outside it goes in under its name.
    let (dockerfile, outside) = match &args.file {
        None => ("Dockerfile".to_string(), None),
        Some(file) => match file.strip_prefix(&context) {
            Ok(inside) => (inside.to_string_lossy().into_owned(), None),
            Err(_) => {
                let name = format!(".skiff-dockerfile-{}", std::process::id());
                (name.clone(), Some((file.clone(), name)))
            }
        },
    };
    let mut build_args = Map::new();
    for arg in &args.build_args {
        match arg.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), Value::String(v.to_string())),
            None => match std::env::var(arg) {
                Ok(v) => build_args.insert(arg.clone(), Value::String(v)),
                Err(_) => continue,
            },
        };
    }
    let mut pairs = vec![
        ("dockerfile", dockerfile),
        ("buildargs", Value::Object(build_args).to_string()),
        ("nocache", args.no_cache.to_string()),
        ("q", args.quiet.to_string()),
        ("rm", "true".to_string()),
    ];
    pairs.extend(args.tags.iter().map(|t| ("t", t.clone())));
    let (mut reader, writer) = std::io::pipe().context("make a pipe")?;
    let packer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut builder = tar::Builder::new(writer);
        builder.follow_symlinks(false);
        builder.append_dir_all(".", &context)?;
        if let Some((file, name)) = outside {
            builder.append_path_with_name(file, name)?;
        }
        std::io::Write::flush(&mut builder.into_inner()?)
    });
    let path = format!("/build{}", query(pairs));
    let answer = client.call_with_stream("POST", &path, "application/x-tar", &mut reader);
    drop(reader);
    let packed = packer
        .join()
        .map_err(|_| anyhow::anyhow!("the context's packer panicked"))?;
    let answer = answer?;
    packed.context("send the build context")?;
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(answer).lines() {
        let line = line.context("read the daemon's build output")?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(error) = message["error"].as_str() {
            eprintln!("{error}");
            return Ok(1);
        }
        if let Some(text) = message["stream"].as_str() {
            std::io::Write::write_all(&mut out, text.as_bytes())?;
            std::io::Write::flush(&mut out)?;
        }
    }
    Ok(0)
}
// ANCHOR_END: build

/// `import`: the root filesystem tarball as the body of `POST /images/create?fromSrc=-`; the
/// daemon's last status is the new image's id, which is printed, as the local `import` does.
fn import(client: &Client, args: &images::cli::ImportArgs) -> anyhow::Result<i32> {
    let mut input: Box<dyn std::io::Read> = if args.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.file)
                .with_context(|| format!("open {}: give a rootfs tarball", args.file))?,
        )
    };
    let mut pairs = vec![("fromSrc", "-".to_string())];
    if let Some(name) = &args.name {
        let (repo, tag) = split_tag(name);
        pairs.extend([("repo", repo.to_string()), ("tag", tag.to_string())]);
    }
    let path = format!("/images/create{}", query(pairs));
    let answer = client.call_with_stream("POST", &path, "application/x-tar", &mut input)?;
    let mut id = String::new();
    for line in BufReader::new(answer).lines() {
        let line = line.context("read the daemon's answer")?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(error) = message["error"].as_str() {
            return Err(DaemonError {
                status: 500,
                message: error.to_string(),
            }
            .into());
        }
        if let Some(status) = message["status"].as_str() {
            id = status.to_string();
        }
    }
    println!("{id}");
    Ok(0)
}

/// `rmi`: `DELETE /images/{name}`, whose answer lists what was untagged and deleted.
fn rmi(client: &Client, args: &images::cli::RmiArgs) -> anyhow::Result<i32> {
    let mut failed = false;
    for image in &args.images {
        let path = format!(
            "/images/{image}{}",
            query([("force", args.force.to_string())])
        );
        match client.json("DELETE", &path, None) {
            Ok(answer) => {
                for item in answer.as_array().into_iter().flatten() {
                    for (key, word) in [("Untagged", "Untagged"), ("Deleted", "Deleted")] {
                        if let Some(what) = item[key].as_str() {
                            println!("{word}: {what}");
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("{}", super::message(&e));
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
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
        NetworkGroup::Networks(NetworkCommand::Inspect { networks, .. }) => inspect_each(
            client,
            &networks,
            |n| format!("/networks/{}", segment(n)),
            None,
        ),
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

/// One network of `GET /networks` as `network ls`'s row.
fn network_row(n: &Value) -> Map<String, Value> {
    let text = |k: &str| n[k].as_str().unwrap_or_default().to_string();
    let labels: Vec<String> = n["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    crate::listings::object(json!({
        "CreatedAt": text("Created"),
        "Driver": text("Driver"),
        "ID": crate::ps::id_text(&text("Id"), true),
        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
        "Labels": labels.join(","),
        "Name": text("Name"),
        "Scope": text("Scope"),
    }))
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
                .map(|v| {
                    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                    let labels: Vec<String> = v["Labels"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default()))
                        .collect();
                    crate::listings::object(json!({
                        "Driver": text("Driver"),
                        "Labels": labels.join(","),
                        "Links": "N/A",
                        "Mountpoint": text("Mountpoint"),
                        "Name": text("Name"),
                        "Scope": text("Scope"),
                        "Size": "N/A",
                    }))
                })
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
        VolumeCommand::Inspect { volumes, .. } => inspect_each(
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

// --- inspect and events -------------------------------------------------------------------------

/// `inspect`: each name as a container, an image, a network or a volume (or the `--type`
/// given), the first the daemon knows.
pub fn inspect(client: &Client, args: &crate::inspect::InspectArgs) -> anyhow::Result<i32> {
    let kinds: &[&str] = match args.kind.as_deref() {
        None => &["container", "image", "network", "volume"],
        Some("container") => &["container"],
        Some("image") => &["image"],
        Some("network") => &["network"],
        Some("volume") => &["volume"],
        Some(other) => anyhow::bail!("\"{other}\" is not a valid value for --type"),
    };
    let path = |kind: &str, name: &str| match kind {
        "container" => format!("/containers/{}/json?size={}", segment(name), args.size),
        "image" => format!("/images/{name}/json"),
        "network" => format!("/networks/{}", segment(name)),
        _ => format!("/volumes/{}", segment(name)),
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        let mut got = None;
        for kind in kinds {
            match client.send("GET", &path(kind, name), None)?.ok() {
                Ok(answer) => {
                    got = Some(body_text(answer)?);
                    break;
                }
                Err(e)
                    if e.downcast_ref::<DaemonError>()
                        .is_some_and(|d| d.status == 404) => {}
                Err(e) => return Err(e),
            }
        }
        match got {
            Some(raw) => found.push(raw),
            None if kinds.len() == 1 => errors.push(format!("No such {}: {name}", kinds[0])),
            None => errors.push(format!("No such object: {name}")),
        }
    }
    print_inspected(&found, args.format.as_deref())?;
    for error in &errors {
        eprintln!("Error: {error}");
    }
    Ok(i32::from(!errors.is_empty()))
}

/// `network inspect` and `volume inspect`: each by its path.
fn inspect_each(
    client: &Client,
    names: &[String],
    path: impl Fn(&str) -> String,
    format: Option<&str>,
) -> anyhow::Result<i32> {
    let mut found = Vec::new();
    let mut failed = false;
    for name in names {
        match client.call("GET", &path(name), None).and_then(body_text) {
            Ok(raw) => found.push(raw),
            Err(e) => {
                eprintln!("{}", super::message(&e));
                failed = true;
            }
        }
    }
    print_inspected(&found, format)?;
    Ok(i32::from(failed))
}

fn body_text(mut answer: super::http::Response) -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut answer, &mut text).context("read the daemon's answer")?;
    Ok(text)
}

/// The daemon's objects as one JSON array, indented as the docker CLI indents (its keys in
/// the daemon's order), or a template per object.
fn print_inspected(found: &[String], format: Option<&str>) -> anyhow::Result<()> {
    if let Some(template) = format {
        for raw in found {
            let value: Value = serde_json::from_str(raw).context("the daemon's JSON")?;
            println!("{}", crate::format::render(template, &value)?);
        }
        return Ok(());
    }
    let array = format!(
        "[{}]",
        found.iter().map(|r| r.trim()).collect::<Vec<_>>().join(",")
    );
    println!("{}", indent(&array));
    Ok(())
}

// ANCHOR: indent
/// Go's `json.Indent` with four spaces: the daemon's compact JSON laid out without parsing it
/// into a map, so its keys keep their order.
pub fn indent(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"    ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(s) = chars.next() {
                    out.push(s);
                    if s == '\\' {
                        if let Some(escaped) = chars.next() {
                            out.push(escaped);
                        }
                    } else if s == '"' {
                        break;
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| *n == '}' || *n == ']') {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}
// ANCHOR_END: indent

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_lays_out_as_go_does() {
        let raw = r#"[{"Id":"a","Args":[],"Config":{"Env":["A=1","B={x}"],"Labels":{}},"N":1}]"#;
        let expected = "[\n    {\n        \"Id\": \"a\",\n        \"Args\": [],\n        \"Config\": {\n            \"Env\": [\n                \"A=1\",\n                \"B={x}\"\n            ],\n            \"Labels\": {}\n        },\n        \"N\": 1\n    }\n]";
        assert_eq!(indent(raw), expected);
    }

    #[test]
    fn images_rows_are_one_per_name() {
        let image = json!({
            "Id": "sha256:0123456789abcdef",
            "RepoTags": ["busybox:latest", "localhost:5000/b:1"],
            "Created": 0,
            "Size": 1_200_000,
        });
        let rows = image_rows(&image, false, UNIX_EPOCH);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[1]["Repository"], "localhost:5000/b");
        assert_eq!(rows[1]["Tag"], "1");
        assert_eq!(rows[0]["ID"], "0123456789ab");
        let none = image_rows(
            &json!({"Id": "sha256:ff", "RepoTags": null}),
            false,
            UNIX_EPOCH,
        );
        assert_eq!(none[0]["Repository"], "<none>");
        assert_eq!(
            split_tag("localhost:5000/app"),
            ("localhost:5000/app", "latest")
        );
    }
}
