//! The image commands as requests: `images` is `GET /images/json` turned into `images`' rows,
//! `history` the daemon's steps turned into the local table's, `pull`, `load`, `import` and
//! `build` read the daemon's streamed JSON messages, `save` streams an archive back. See the
//! Engine API v1.41 ("Images").

use std::io::{BufRead, BufReader};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Map, Value, json};

use super::http::{Client, DaemonError, Response};
use super::{filters, query};

// ANCHOR: images
/// `images`: `GET /images/json`, a row per name (or one `<none>` row), printed by the local
/// `images`' printer.
pub(super) fn images(client: &Client, args: &crate::listings::ImagesArgs) -> anyhow::Result<i32> {
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
    let created_at = crate::listings::created_at(Some(created));
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
                "CreatedAt": created_at,
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
    read_messages(answer, "the daemon's pull progress", |message| {
        let status = message["status"].as_str().unwrap_or_default();
        // Progress bars are for a terminal; the lines that say what happened are kept.
        if quiet
            || message
                .get("progressDetail")
                .is_some_and(|p| p["total"].is_number())
        {
            return Ok(());
        }
        let text = match message["id"].as_str() {
            Some(id) => format!("{id}: {status}"),
            None => status.to_string(),
        };
        if text != last {
            println!("{text}");
            last = text;
        }
        Ok(())
    })?;
    if quiet {
        println!("{image}");
    }
    Ok(())
}
// ANCHOR_END: pull

/// Reads the JSON messages a daemon streams while it works (`pull`, `load`, `import`, `build`):
/// an object a line, `{"status": ..., "id": ..., "progressDetail": ...}` or `{"stream": ...}`,
/// each handed to `each`. An `error` in the stream is the work's failure, as the daemon's
/// error; a line that is not JSON is passed over. `what` names the stream in a read error.
fn read_messages(
    answer: Response,
    what: &str,
    mut each: impl FnMut(&Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for line in BufReader::new(answer).lines() {
        let line = line.with_context(|| format!("read {what}"))?;
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
        each(&message)?;
    }
    Ok(())
}

// ANCHOR: load
/// `load`: the archive as the body of `POST /images/load`, sent as it is read; the daemon
/// answers with JSON messages (`{"stream": "Loaded image: ..."}`), printed unless `-q`.
pub(super) fn load(client: &Client, args: &images::cli::LoadArgs) -> anyhow::Result<i32> {
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
    read_messages(answer, "the daemon's answer", |message| {
        if let Some(text) = message["stream"].as_str()
            && !args.quiet
        {
            print!("{text}");
        }
        Ok(())
    })?;
    Ok(0)
}
// ANCHOR_END: load

/// `save`: `GET /images/get?names=...`, a docker-archive, to the file or stdout.
pub(super) fn save(client: &Client, args: &images::cli::SaveArgs) -> anyhow::Result<i32> {
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
pub(super) fn build(client: &Client, args: &images::cli::BuildArgs) -> anyhow::Result<i32> {
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
    let built = read_messages(answer, "the daemon's build output", |message| {
        if let Some(text) = message["stream"].as_str() {
            std::io::Write::write_all(&mut out, text.as_bytes())?;
            std::io::Write::flush(&mut out)?;
        }
        Ok(())
    });
    // A failed step is the build's output, not the client's error: its words, and exit 1.
    if let Err(e) = &built
        && let Some(failed) = e.downcast_ref::<DaemonError>()
    {
        eprintln!("{}", failed.message);
        return Ok(1);
    }
    built.map(|()| 0)
}
// ANCHOR_END: build

/// `import`: the root filesystem tarball as the body of `POST /images/create?fromSrc=-`; the
/// daemon's last status is the new image's id, which is printed, as the local `import` does.
pub(super) fn import(client: &Client, args: &images::cli::ImportArgs) -> anyhow::Result<i32> {
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
    read_messages(answer, "the daemon's answer", |message| {
        if let Some(status) = message["status"].as_str() {
            id = status.to_string();
        }
        Ok(())
    })?;
    println!("{id}");
    Ok(0)
}

/// `rmi`: `DELETE /images/{name}`, whose answer lists what was untagged and deleted.
pub(super) fn rmi(client: &Client, args: &images::cli::RmiArgs) -> anyhow::Result<i32> {
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

/// One step of `GET /images/{name}/history` as the local `history`'s row.
pub(super) fn history_row(step: &Value) -> images::ops::HistoryRow {
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

/// `NAME[:TAG]` as the API's `repo` and `tag` (`latest` when none; a registry's port is not a
/// tag).
pub fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

/// An image prune's answer as the local prune words it: `untagged: NAME`, `deleted: ID`.
pub fn pruned_lines(answer: &Value) -> Vec<String> {
    answer["ImagesDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|item| {
            [("Untagged", "untagged"), ("Deleted", "deleted")]
                .into_iter()
                .filter_map(|(key, word)| item[key].as_str().map(|what| format!("{word}: {what}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
