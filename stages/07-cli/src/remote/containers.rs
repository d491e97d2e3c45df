//! The container commands as requests (`run` and its kin are in [`super::run`]): `ps` is `GET
//! /containers/json` turned into `ps`'s rows, `stats` the daemon's samples turned into its
//! figures, `logs` and `exec` read framed or raw streams. See docker-container(1) and the Engine
//! API v1.41 ("Containers", "Exec").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::http::Client;
use super::streams::{self, Resize};
use super::{each, filters, query, run, segment};
use crate::cli::ContainerCommand;

/// Runs one container command against the daemon.
pub fn execute(client: &Client, command: ContainerCommand) -> anyhow::Result<i32> {
    match command {
        ContainerCommand::Run(args) => run::run(client, &args),
        ContainerCommand::Create(args) => {
            let id = run::create(client, &args)?;
            println!("{id}");
            Ok(0)
        }
        ContainerCommand::Start(args) => run::start(client, &args),
        ContainerCommand::Stop(args) => Ok(stop(client, &args, "stop")),
        ContainerCommand::Restart(args) => Ok(stop(client, &args, "restart")),
        ContainerCommand::Kill(args) => {
            let query = query([("signal", args.signal.clone())]);
            Ok(each(&args.containers.containers, |key| {
                post(client, &format!("/containers/{}/kill{query}", segment(key)))
            }))
        }
        ContainerCommand::Rm(args) => {
            let query = query([
                ("force", args.force.to_string()),
                ("v", args.volumes.to_string()),
            ]);
            Ok(each(&args.containers.containers, |key| {
                let path = format!("/containers/{}{query}", segment(key));
                client.call("DELETE", &path, None).map(drop)
            }))
        }
        ContainerCommand::Wait(args) => {
            let mut failed = false;
            for key in &args.containers {
                match run::wait(client, key, "not-running") {
                    Ok(code) => println!("{code}"),
                    Err(e) => {
                        eprintln!("{}", super::message(&e));
                        failed = true;
                    }
                }
            }
            Ok(i32::from(failed))
        }
        ContainerCommand::Pause(args) => Ok(each(&args.containers, |key| {
            post(client, &format!("/containers/{}/pause", segment(key)))
        })),
        ContainerCommand::Unpause(args) => Ok(each(&args.containers, |key| {
            post(client, &format!("/containers/{}/unpause", segment(key)))
        })),
        ContainerCommand::Rename(args) => {
            let path = format!(
                "/containers/{}/rename{}",
                segment(&args.container),
                query([("name", args.name.clone())])
            );
            post(client, &path)?;
            Ok(0)
        }
        ContainerCommand::Top(args) => top(client, &args),
        ContainerCommand::Attach(args) => run::attach(client, &args),
        ContainerCommand::Update(args) => run::update(client, &args),
        ContainerCommand::Cp(args) => super::copy::command(client, &args),
        ContainerCommand::Stats(args) => stats(client, &args),
        ContainerCommand::Diff(args) => {
            let path = format!("/containers/{}/changes", segment(&args.container));
            let mut changes: Vec<(String, &str)> = client
                .json("GET", &path, None)?
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let letter = match c["Kind"].as_u64() {
                        Some(1) => "A",
                        Some(2) => "D",
                        _ => "C",
                    };
                    (c["Path"].as_str().unwrap_or_default().to_string(), letter)
                })
                .collect();
            // In path order, as the local diff lists them.
            changes.sort();
            for (path, letter) in changes {
                println!("{letter} {path}");
            }
            Ok(0)
        }
        ContainerCommand::Export(args) => {
            use std::io::IsTerminal;
            if args.output.is_none() && std::io::stdout().is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let path = format!("/containers/{}/export", segment(&args.container));
            let answer = client.call("GET", &path, None)?;
            super::image::write_archive(answer, args.output.as_deref())?;
            Ok(0)
        }
        ContainerCommand::Commit(args) => {
            let mut pairs = vec![
                ("container", args.container.clone()),
                ("pause", args.pause.to_string()),
            ];
            if let Some(reference) = &args.reference {
                let (repo, tag) = super::image::split_tag(reference);
                pairs.extend([("repo", repo.to_string()), ("tag", tag.to_string())]);
            }
            if let Some(message) = &args.message {
                pairs.push(("comment", message.clone()));
            }
            if let Some(author) = &args.author {
                pairs.push(("author", author.clone()));
            }
            pairs.extend(args.change.iter().map(|c| ("changes", c.clone())));
            let answer = client.json("POST", &format!("/commit{}", query(pairs)), None)?;
            println!("{}", answer["Id"].as_str().unwrap_or_default());
            Ok(0)
        }
        ContainerCommand::Port(args) => {
            let path = format!("/containers/{}/json", segment(&args.container));
            let config = client.json("GET", &path, None)?;
            let ports: crate::docker_json::PortMap =
                serde_json::from_value(config["NetworkSettings"]["Ports"].clone())
                    .unwrap_or_default();
            let name = config["Name"].as_str().unwrap_or_default();
            let name = name.trim_start_matches('/');
            for line in crate::port::lines_of(&ports, name, args.private.as_deref())? {
                println!("{line}");
            }
            Ok(0)
        }
        ContainerCommand::Ps(args) => ps(client, &args),
        ContainerCommand::Logs(args) => logs(client, &args),
        ContainerCommand::Exec(args) => exec(client, &args),
        ContainerCommand::Inspect(args) => super::inspect::inspect(client, &args),
        ContainerCommand::Events(args) => super::objects::events(client, &args),
    }
}

/// `stop` and `restart`: `POST /containers/{id}/stop` (or `restart`) `?t=`, for each.
fn stop(client: &Client, args: &crate::cli::StopArgs, verb: &str) -> i32 {
    let mut pairs = Vec::new();
    if let Some(time) = args.time {
        pairs.push(("t", time.to_string()));
    }
    if let Some(signal) = &args.signal {
        pairs.push(("signal", signal.clone()));
    }
    let query = query(pairs);
    each(&args.containers.containers, |key| {
        post(
            client,
            &format!("/containers/{}/{verb}{query}", segment(key)),
        )
    })
}

/// A POST without a body whose answer has nothing to read.
pub(super) fn post(client: &Client, path: &str) -> anyhow::Result<()> {
    client.call("POST", path, None).map(drop)
}

// --- ps, logs, top ------------------------------------------------------------------------------

// ANCHOR: ps
/// `ps`: `GET /containers/json`, each container turned into the row `ps` prints locally.
fn ps(client: &Client, args: &crate::ps::PsArgs) -> anyhow::Result<i32> {
    let view = crate::ps::View::of(args);
    let mut pairs = vec![("all", args.all.to_string())];
    let limit = if args.latest && args.last == -1 {
        1
    } else {
        args.last
    };
    if limit > 0 {
        pairs.push(("limit", limit.to_string()));
    }
    if view.size {
        pairs.push(("size", "true".into()));
    }
    if let Some(filters) = filters(&args.filter)? {
        pairs.push(("filters", filters));
    }
    let list = client.json("GET", &format!("/containers/json{}", query(pairs)), None)?;
    let now = SystemTime::now();
    let rows = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| ps_row(c, view.trunc, view.size, now))
        .collect();
    if args.quiet && args.format.is_some() {
        eprintln!("WARNING: Ignoring custom format, because both --format and --quiet are set.");
    }
    print!("{}", view.print_rows(rows)?);
    Ok(0)
}
// ANCHOR_END: ps

/// One container of `GET /containers/json` as `ps`'s row ([`crate::ps::row`]'s fields).
pub fn ps_row(c: &Value, trunc: bool, size: bool, now: SystemTime) -> Map<String, Value> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let created = UNIX_EPOCH + Duration::from_secs(c["Created"].as_u64().unwrap_or(0));
    let created_rfc = humantime::format_rfc3339_seconds(created).to_string();
    let image = text(&c["Image"]);
    let image = if trunc && image.starts_with("sha256:") {
        crate::ps::id_text(image.trim_start_matches("sha256:"), true)
    } else {
        image
    };
    let ports: Vec<crate::ps::Port> = c["Ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| crate::ps::Port {
            private: port_number(&p["PrivatePort"]),
            ip: text(&p["IP"]),
            public: p["PublicPort"]
                .as_u64()
                .map(|_| port_number(&p["PublicPort"])),
            protocol: text(&p["Type"]),
        })
        .collect();
    let labels: Vec<String> = c["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let mounts: Vec<String> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let name = m["Name"].as_str().filter(|n| !n.is_empty());
            let name = name.unwrap_or_else(|| m["Source"].as_str().unwrap_or_default());
            if trunc {
                images::human::ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["Driver"] == "local")
        .count();
    let networks: Vec<String> = c["NetworkSettings"]["Networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, _)| name.clone())
        .collect();
    let names = c["Names"]
        .as_array()
        .and_then(|n| n.first())
        .map(|n| text(n).trim_start_matches('/').to_string())
        .unwrap_or_default();
    let human = images::human::human_size;
    let size_text = match (c["SizeRw"].as_u64(), c["SizeRootFs"].as_u64()) {
        (Some(rw), Some(all)) if size && all > 0 => {
            format!("{} (virtual {})", human(rw), human(all))
        }
        (Some(rw), _) if size => human(rw),
        _ => human(0),
    };
    let fields = [
        (
            "Command",
            crate::ps::command_line_text(&text(&c["Command"]), trunc),
        ),
        ("CreatedAt", crate::ps::created_at_text(created)),
        ("ID", crate::ps::id_text(&text(&c["Id"]), trunc)),
        ("Image", image),
        ("Labels", labels.join(",")),
        ("LocalVolumes", local_volumes.to_string()),
        ("Mounts", mounts.join(",")),
        ("Names", names),
        ("Networks", networks.join(",")),
        ("Ports", crate::ps::displayable_ports(&ports)),
        ("RunningFor", images::human::ago(Some(&created_rfc), now)),
        ("Size", size_text),
        ("State", text(&c["State"])),
        ("Status", text(&c["Status"])),
    ];
    fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect()
}

fn port_number(value: &Value) -> u16 {
    value
        .as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or(0)
}

// ANCHOR: logs
/// `logs`: the container's config says whether its output comes framed (no tty) or raw;
/// `GET /containers/{id}/logs` then streams it, for as long as `-f` asks.
fn logs(client: &Client, args: &crate::logs_command::LogsArgs) -> anyhow::Result<i32> {
    let key = segment(&args.container);
    let config = client.json("GET", &format!("/containers/{key}/json"), None)?;
    let tty = config["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut pairs = vec![
        ("stdout", "1".to_string()),
        ("stderr", "1".into()),
        ("follow", u8::from(args.follow).to_string()),
        ("timestamps", u8::from(args.timestamps).to_string()),
        ("tail", args.tail.clone()),
    ];
    for (key, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(value) = value {
            pairs.push((key, api_time(key, value)?));
        }
    }
    let answer = client.call(
        "GET",
        &format!("/containers/{key}/logs{}", query(pairs)),
        None,
    )?;
    streams::to_stdio(answer, !tty).context("read the container's log")?;
    Ok(0)
}
// ANCHOR_END: logs

/// A `--since` or `--until` as the API takes it: Unix seconds, with nanoseconds. The client
/// reads durations (`10m`) and RFC 3339 times against its own clock, as docker's does.
pub fn api_time(flag: &str, text: &str) -> anyhow::Result<String> {
    let time = crate::events::parse_time(text, SystemTime::now())
        .with_context(|| format!("invalid value for \"{flag}\""))?;
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    Ok(format!("{}.{:09}", since.as_secs(), since.subsec_nanos()))
}

/// `top`: `GET /containers/{id}/top`'s titles and processes, as a table.
fn top(client: &Client, args: &crate::cli::TopArgs) -> anyhow::Result<i32> {
    let mut pairs = Vec::new();
    if !args.ps_args.is_empty() {
        pairs.push(("ps_args", args.ps_args.join(" ")));
    }
    let path = format!(
        "/containers/{}/top{}",
        segment(&args.container),
        query(pairs)
    );
    let answer = client.json("GET", &path, None)?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let titles = strings(&answer["Titles"]);
    let rows: Vec<Vec<String>> = answer["Processes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(strings)
        .collect();
    let header: Vec<&str> = titles.iter().map(String::as_str).collect();
    print!("{}", images::human::table(&header, &rows));
    Ok(0)
}

// --- stats --------------------------------------------------------------------------------------

// ANCHOR: stats
/// `stats`: `GET /containers/{id}/stats?stream=false` for each container (the daemon takes
/// two readings itself, `cpu_stats` and `precpu_stats`), each turned into the local `stats`'
/// figures; every second until interrupted unless `--no-stream`, on a cleared screen.
fn stats(client: &Client, args: &crate::stats::StatsArgs) -> anyhow::Result<i32> {
    let pick = || -> anyhow::Result<Vec<String>> {
        if !args.containers.is_empty() {
            return Ok(args.containers.clone());
        }
        let list = client.json("GET", &format!("/containers/json?all={}", args.all), None)?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect())
    };
    loop {
        let mut rows = Vec::new();
        for key in pick()? {
            let config =
                client.json("GET", &format!("/containers/{}/json", segment(&key)), None)?;
            let id = config["Id"].as_str().unwrap_or(&key).to_string();
            let name = config["Name"]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/');
            let running = config["State"]["Running"].as_bool().unwrap_or(false);
            let sample = if running {
                let path = format!("/containers/{}/stats?stream=false", segment(&id));
                client.json("GET", &path, None)?
            } else {
                Value::Null
            };
            rows.push(figures(&sample, running).row(&id, name, !args.no_trunc));
        }
        let text = crate::format::list(args.format.as_deref(), &crate::stats::COLUMNS, &rows)
            .context("format the stats")?;
        if args.no_stream {
            print!("{text}");
            return Ok(0);
        }
        print!("\x1b[2J\x1b[H{text}");
        std::io::Write::flush(&mut std::io::stdout())?;
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// One sample of the Engine API's stats as `stats`' figures, with Docker's CPU formula: the
/// container's CPU time over the host's, times the CPUs online, between the two readings.
pub fn figures(sample: &Value, running: bool) -> crate::stats::Figures {
    let number = |v: &Value| v.as_u64().unwrap_or(0);
    let cpu = &sample["cpu_stats"];
    let pre = &sample["precpu_stats"];
    let container = number(&cpu["cpu_usage"]["total_usage"])
        .saturating_sub(number(&pre["cpu_usage"]["total_usage"]));
    let system = number(&cpu["system_cpu_usage"]).saturating_sub(number(&pre["system_cpu_usage"]));
    let online = match number(&cpu["online_cpus"]) {
        0 => cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(1, |p| p.len() as u64),
        n => n,
    };
    // A percentage shown with two decimals.
    #[allow(clippy::cast_precision_loss)]
    let cpu_percent = if system > 0 {
        container as f64 / system as f64 * online as f64 * 100.0
    } else {
        0.0
    };
    let memory_stats = &sample["memory_stats"];
    // cgroup v1 names the inactive page cache `total_inactive_file`, v2 `inactive_file`.
    let inactive = memory_stats["stats"]["total_inactive_file"]
        .as_u64()
        .or_else(|| memory_stats["stats"]["inactive_file"].as_u64())
        .unwrap_or(0);
    let net = sample["networks"].as_object().map(|networks| {
        networks.values().fold((0, 0), |(rx, tx), n| {
            (rx + number(&n["rx_bytes"]), tx + number(&n["tx_bytes"]))
        })
    });
    let block = sample["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .map(|entries| {
            let sum = |op: &str| {
                entries
                    .iter()
                    .filter(|e| e["op"].as_str().is_some_and(|o| o.eq_ignore_ascii_case(op)))
                    .map(|e| number(&e["value"]))
                    .sum::<u64>()
            };
            (Some(sum("read")), Some(sum("write")))
        })
        .unwrap_or((None, None));
    crate::stats::Figures {
        running,
        cpu_percent,
        memory: number(&memory_stats["usage"]).saturating_sub(inactive),
        limit: number(&memory_stats["limit"]),
        // A container without a network has no `networks`: nothing went in or out.
        net: Some(net.unwrap_or((0, 0))),
        block,
        pids: number(&sample["pids_stats"]["current"]),
    }
}
// ANCHOR_END: stats

// --- exec ---------------------------------------------------------------------------------------

// ANCHOR: exec
/// `exec`: `POST /containers/{id}/exec` makes the instance, `POST /exec/{id}/start` runs it,
/// hijacked unless `-d`; its exit code is read afterwards from `GET /exec/{id}/json`.
fn exec(client: &Client, args: &crate::exec::ExecArgs) -> anyhow::Result<i32> {
    let attach = !args.detach;
    let body = json!({
        "AttachStdin": args.interactive && attach,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "Tty": args.tty,
        "Env": run::environment(&args.env),
        "Cmd": args.command,
        "User": args.user.clone().unwrap_or_default(),
        "WorkingDir": args.workdir.clone().unwrap_or_default(),
        "Privileged": args.privileged,
        "DetachKeys": args.detach_keys.clone().unwrap_or_default(),
    });
    let path = format!("/containers/{}/exec", segment(&args.container));
    let made = client.json("POST", &path, Some(&body))?;
    let id = made["Id"]
        .as_str()
        .context("the daemon's exec answer has no Id")?;
    let start = json!({ "Detach": args.detach, "Tty": args.tty });
    let start_path = format!("/exec/{id}/start");
    if args.detach {
        client.call("POST", &start_path, Some(&start))?;
        return Ok(0);
    }
    let stream = client.hijack(&start_path, Some(&start), args.tty)?;
    let resize = args.tty.then(|| Resize {
        client,
        path: format!("/exec/{id}/resize"),
    });
    streams::relay(stream, args.interactive, resize).context("relay the exec's streams")?;
    let state = client.json("GET", &format!("/exec/{id}/json"), None)?;
    Ok(state["ExitCode"]
        .as_i64()
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(126))
}
// ANCHOR_END: exec

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemons_container_becomes_ps_row() {
        let c = json!({
            "Id": "0123456789abcdef0123",
            "Names": ["/web"],
            "Image": "busybox",
            "Command": "httpd -f -p 80 -h /srv/www",
            "Created": 0,
            "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
            "Labels": {"a": "b"},
            "State": "running",
            "Status": "Up 2 seconds",
            "Mounts": [{"Name": "data", "Driver": "local", "Source": "/x"}],
            "NetworkSettings": {"Networks": {"bridge": {}}},
        });
        let row = ps_row(&c, true, false, UNIX_EPOCH + Duration::from_secs(3600));
        let field = |k: &str| row[k].as_str().unwrap().to_string();
        assert_eq!(field("ID"), "0123456789ab");
        assert_eq!(field("Names"), "web");
        assert_eq!(field("Command"), "\"httpd -f -p 80 -h /…\"");
        assert_eq!(field("Ports"), "0.0.0.0:8080->80/tcp");
        assert_eq!(field("Status"), "Up 2 seconds");
        assert_eq!(field("RunningFor"), "About an hour ago");
        assert_eq!(field("Mounts"), "data");
        assert_eq!(field("LocalVolumes"), "1");
        assert_eq!(field("Networks"), "bridge");
        assert_eq!(field("CreatedAt"), "1970-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn a_daemons_stats_become_the_local_figures() {
        let sample = json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 3 * 1024 * 1024, "limit": 64 * 1024 * 1024, "stats": {"total_inactive_file": 1024 * 1024}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"op": "Read", "value": 4096}, {"op": "Write", "value": 0}, {"op": "read", "value": 4096}
            ]},
            "pids_stats": {"current": 3},
        });
        let row = figures(&sample, true).row("0123456789abcdef", "web", true);
        let field = |k: &str| row[k].as_str().unwrap().to_string();
        assert_eq!(field("ID"), "0123456789ab");
        assert_eq!(field("CPUPerc"), "40.00%");
        assert_eq!(field("MemUsage"), "2MiB / 64MiB");
        assert_eq!(field("MemPerc"), "3.12%");
        assert_eq!(field("NetIO"), "0B / 0B");
        assert_eq!(field("BlockIO"), "8.19kB / 0B");
        assert_eq!(field("PIDs"), "3");
    }
}
