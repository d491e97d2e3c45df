//! `run`, `create`, `start`, `attach` and `update` as requests: `run` is `create`, `attach`,
//! `wait` and `start` (four requests, as `docker run` makes them), and `run`'s flags become the
//! create request's body, the container's config with its `HostConfig`. See docker-run(1) and
//! the Engine API v1.41 ("ContainerCreate", "ContainerAttach", "ContainerWait").

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use super::containers::post;
use super::http::{Client, DaemonError};
use super::streams::{self, Hijacked, Resize};
use super::{each, query, segment};
use crate::spec::RunArgs;

// ANCHOR: create_body
/// `POST /containers/create`'s body from `run`'s flags: the container's config, with the
/// host's part (`HostConfig`: ports, volumes, network, `--rm`) inside it.
pub fn create_body(args: &RunArgs) -> anyhow::Result<Value> {
    let run = args.image_args();
    let Some((image, command)) = run.args.split_first() else {
        bail!("\"run\" requires at least 1 argument: IMAGE [COMMAND] [ARG...]");
    };
    let process = &run.process;
    let namespaces = &run.namespaces;
    let network = &args.volumes.network.network;
    let lifecycle = &args.lifecycle;
    let attach = !lifecycle.detach;
    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for port in &args.wiring.expose {
        let key = if port.contains('/') {
            port.clone()
        } else {
            format!("{port}/tcp")
        };
        exposed.insert(key, json!({}));
    }
    for port in network.ports()? {
        let key = format!("{}/{}", port.container_port, port.protocol.as_str());
        exposed.insert(key.clone(), json!({}));
        let host_port = if port.host_port == 0 {
            String::new()
        } else {
            port.host_port.to_string()
        };
        let binding = json!({
            "HostIp": port.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            "HostPort": host_port,
        });
        if let Some(list) = bindings
            .entry(key)
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            list.push(binding);
        }
    }
    let cgroup = &run.cgroup;
    let limits = resources([
        &cgroup.memory,
        &cgroup.memory_swap,
        &cgroup.cpus,
        &cgroup.cpu_shares,
        &cgroup.cpuset_cpus,
        &cgroup.pids_limit,
        &cgroup.blkio_weight,
    ])?;
    refuse_unmapped(args)?;
    let mut env = Vec::new();
    // --env-file is read here, as docker's client reads it; -e after it wins.
    for file in &lifecycle.env_file {
        env.extend(crate::spec::read_env_file(file)?);
    }
    env.extend(environment(&process.env));
    let mut tmpfs = Map::new();
    for entry in &args.volumes.volumes.tmpfs {
        let (path, options) = entry.split_once(':').unwrap_or((entry, ""));
        tmpfs.insert(path.to_string(), Value::String(options.to_string()));
    }
    let mut body = json!({
        "Image": image,
        "Cmd": if command.is_empty() { Value::Null } else { json!(command) },
        "Entrypoint": run.entrypoint.as_ref().map(|e| json!([e])),
        "Env": env,
        "WorkingDir": process.workdir.clone().unwrap_or_default(),
        "User": namespaces.user.clone().unwrap_or_default(),
        "Hostname": namespaces.hostname.clone().unwrap_or_default(),
        "Labels": args.labels()?,
        "Tty": lifecycle.tty,
        "OpenStdin": lifecycle.interactive,
        "StdinOnce": lifecycle.interactive && attach,
        "AttachStdin": lifecycle.interactive && attach,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "StopSignal": lifecycle.stop_signal,
        "StopTimeout": lifecycle.stop_timeout,
        "ExposedPorts": exposed,
    });
    // The host's part, in two objects: one json! of them all is past the macro's recursion.
    let mut host = json!({
        "AutoRemove": run.rm,
        "Binds": args.volumes.volumes.volume,
        "Tmpfs": tmpfs,
        "ReadonlyRootfs": args.volumes.volumes.read_only,
        "PortBindings": bindings,
        "PublishAllPorts": args.wiring.publish_all,
        "NetworkMode": namespaces.network.clone().unwrap_or_else(|| "default".into()),
        "Mounts": mounts(&args.volumes.volumes.mount)?,
        "VolumesFrom": args.wiring.volumes_from,
        "RestartPolicy": restart_policy(&lifecycle.restart),
        "Init": namespaces.init,
    });
    let isolation = json!({
        "Privileged": namespaces.privileged,
        "CapAdd": namespaces.cap_add,
        "CapDrop": namespaces.cap_drop,
        "SecurityOpt": namespaces.security_opt,
        "Devices": devices(&namespaces.device),
        "ExtraHosts": namespaces.add_host,
        "Dns": namespaces.dns,
        "DnsSearch": namespaces.dns_search,
        "DnsOptions": namespaces.dns_option,
        "PidMode": namespaces.pid.clone().unwrap_or_default(),
        "IpcMode": namespaces.ipc.clone().unwrap_or_default(),
        "UTSMode": namespaces.uts.clone().unwrap_or_default(),
        "CgroupnsMode": namespaces.cgroupns.clone().unwrap_or_default(),
        "UsernsMode": namespaces.userns.clone().unwrap_or_default(),
    });
    if let (Some(host), Value::Object(isolation)) = (host.as_object_mut(), isolation) {
        host.extend(isolation);
        host.extend(limits);
    }
    body["HostConfig"] = host;
    Ok(body)
}
// ANCHOR_END: create_body

/// The limits flags (`--memory`, `--cpus`, `--pids-limit`...) as `HostConfig`'s resource
/// fields, for `create` and `update`; a flag not given is left out (the daemon's default).
pub fn resources(limits: [&Option<String>; 7]) -> anyhow::Result<Map<String, Value>> {
    let [
        memory,
        memory_swap,
        cpus,
        cpu_shares,
        cpuset_cpus,
        pids_limit,
        blkio_weight,
    ] = limits;
    let mut out = Map::new();
    let size = |flag: &str, text: &str| -> anyhow::Result<Value> {
        if text.trim() == "-1" {
            return Ok(json!(-1));
        }
        cgroups::limits::parse_bytes(text)
            .map(|b| json!(b))
            .with_context(|| {
                format!("invalid value {text:?} for --{flag}: expected a size (64m, 1g)")
            })
    };
    let number = |flag: &str, text: &str| -> anyhow::Result<Value> {
        text.trim()
            .parse::<i64>()
            .map(|n| json!(n))
            .with_context(|| format!("invalid value {text:?} for --{flag}: expected a number"))
    };
    if let Some(text) = memory {
        out.insert("Memory".into(), size("memory", text)?);
    }
    if let Some(text) = memory_swap {
        out.insert("MemorySwap".into(), size("memory-swap", text)?);
    }
    if let Some(text) = cpus {
        let cpus: f64 = text
            .trim()
            .parse()
            .ok()
            .filter(|c: &f64| *c >= 0.0)
            .with_context(|| {
                format!("invalid value {text:?} for --cpus: expected a number of CPUs")
            })?;
        // NanoCpus: billionths of a CPU, as Docker's client turns `--cpus` into.
        let nanos = format!("{:.0}", cpus * 1e9);
        out.insert("NanoCpus".into(), number("cpus", &nanos)?);
    }
    if let Some(text) = cpu_shares {
        out.insert("CpuShares".into(), number("cpu-shares", text)?);
    }
    if let Some(text) = cpuset_cpus {
        out.insert("CpusetCpus".into(), json!(text));
    }
    if let Some(text) = pids_limit {
        out.insert("PidsLimit".into(), number("pids-limit", text)?);
    }
    if let Some(text) = blkio_weight {
        out.insert("BlkioWeight".into(), number("blkio-weight", text)?);
    }
    Ok(out)
}

/// `update`: `POST /containers/{id}/update` with the limits and restart policy given, for each.
pub(super) fn update(client: &Client, args: &crate::update::UpdateArgs) -> anyhow::Result<i32> {
    let mut body = resources([
        &args.memory,
        &args.memory_swap,
        &args.cpus,
        &args.cpu_shares,
        &args.cpuset_cpus,
        &args.pids_limit,
        &args.blkio_weight,
    ])?;
    if let Some(policy) = &args.restart {
        body.insert("RestartPolicy".into(), restart_policy(policy));
    }
    let body = Value::Object(body);
    Ok(each(&args.containers, |key| {
        let path = format!("/containers/{}/update", segment(key));
        let answer = client.json("POST", &path, Some(&body))?;
        for warning in answer["Warnings"].as_array().into_iter().flatten() {
            eprintln!("WARNING: {}", warning.as_str().unwrap_or_default());
        }
        Ok(())
    }))
}

/// `--restart POLICY[:N]` as `RestartPolicy`.
fn restart_policy(text: &str) -> Value {
    let (name, retries) = match text.split_once(':') {
        Some((name, count)) => (name, count.parse::<u32>().unwrap_or(0)),
        None => (text, 0),
    };
    json!({ "Name": name, "MaximumRetryCount": retries })
}

/// `run`'s flags that have no place in a create request yet: refused by name rather than
/// dropped, so a container is never made other than asked.
fn refuse_unmapped(args: &RunArgs) -> anyhow::Result<()> {
    let run = args.image_args();
    let network = &args.volumes.network.network;
    let given = [
        ("--rootfs", run.rootfs.is_some()),
        ("--commit", run.commit.is_some()),
        ("--ip", network.ip.is_some()),
        ("--network-alias", !network.network_alias.is_empty()),
        ("--ns", run.namespaces.ns.is_some()),
        ("--log-opt", !args.lifecycle.log_opt.is_empty()),
        ("--cidfile", run.namespaces.cidfile.is_some()),
        ("--cgroup-parent", run.cgroup.cgroup_parent.is_some()),
        (
            "--device-cgroup-rule",
            !run.cgroup.device_cgroup_rule.is_empty(),
        ),
    ];
    match given.iter().find(|(_, set)| *set) {
        Some((flag, _)) => bail!(
            "{flag} cannot go to a daemon yet: run without it, or without -H, SKIFF_HOST and DOCKER_HOST"
        ),
        None => Ok(()),
    }
}

/// `--mount type=...,source=...,target=...[,readonly]` as `HostConfig.Mounts`.
fn mounts(flags: &[String]) -> anyhow::Result<Vec<Value>> {
    flags
        .iter()
        .map(|flag| {
            let mut mount = Map::new();
            mount.insert("Type".into(), json!("volume"));
            for part in flag.split(',') {
                let (key, value) = part.split_once('=').unwrap_or((part, "true"));
                let (key, value) = match key {
                    "type" => ("Type", json!(value)),
                    "source" | "src" => ("Source", json!(value)),
                    "target" | "destination" | "dst" => ("Target", json!(value)),
                    "readonly" | "ro" => ("ReadOnly", json!(value != "false" && value != "0")),
                    other => bail!("--mount {flag}: {other} cannot go to a daemon yet"),
                };
                mount.insert(key.into(), value);
            }
            Ok(Value::Object(mount))
        })
        .collect()
}

/// `--device HOST[:CONTAINER[:PERMISSIONS]]` as `HostConfig.Devices`.
fn devices(flags: &[String]) -> Vec<Value> {
    flags
        .iter()
        .map(|flag| {
            let mut parts = flag.splitn(3, ':');
            let host = parts.next().unwrap_or_default();
            let inside = parts.next().unwrap_or(host);
            let permissions = parts.next().unwrap_or("rwm");
            json!({
                "PathOnHost": host,
                "PathInContainer": inside,
                "CgroupPermissions": permissions,
            })
        })
        .collect()
}

/// `-e KEY=VALUE` as given; `-e KEY` takes this process's value, or is left out.
pub(super) fn environment(flags: &[String]) -> Vec<String> {
    flags
        .iter()
        .filter_map(|flag| {
            if flag.contains('=') {
                Some(flag.clone())
            } else {
                std::env::var(flag).ok().map(|v| format!("{flag}={v}"))
            }
        })
        .collect()
}

/// `POST /containers/create?name=`; an image the daemon does not have is pulled first, as the
/// docker CLI does (`Unable to find image ... locally`). Returns the new container's id.
pub(super) fn create(client: &Client, args: &RunArgs) -> anyhow::Result<String> {
    let body = create_body(args)?;
    let path = format!(
        "/containers/create{}",
        query(args.name().map(|n| ("name", n.to_string())))
    );
    let answer = match client.json("POST", &path, Some(&body)) {
        Err(e) if is_missing_image(&e) => {
            let image = body["Image"].as_str().unwrap_or_default();
            eprintln!("Unable to find image '{image}' locally");
            super::image::pull(client, image, false)?;
            client.json("POST", &path, Some(&body))?
        }
        other => other?,
    };
    for warning in answer["Warnings"].as_array().into_iter().flatten() {
        if let Some(text) = warning.as_str() {
            eprintln!("WARNING: {text}");
        }
    }
    answer["Id"]
        .as_str()
        .map(str::to_string)
        .context("the daemon's create answer has no Id")
}

fn is_missing_image(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<DaemonError>()
        .is_some_and(|e| e.status == 404 && e.message.contains("image"))
}

// ANCHOR: run
/// `run`, as the docker CLI makes it: create; then, unless `-d`, attach (a hijacked
/// connection, before anything can be written) and wait (`condition=next-exit`, or `removed`
/// with `--rm`, whose headers come at once and whose body comes when it holds); then start;
/// then relay the streams until the container closes them, and exit with the wait's
/// `StatusCode`.
pub fn run(client: &Client, args: &RunArgs) -> anyhow::Result<i32> {
    let lifecycle = &args.lifecycle;
    // Signals are caught before any thread starts: every later thread inherits the mask.
    let forwarder = forwarder(!lifecycle.detach && lifecycle.sig_proxy && !lifecycle.tty)?;
    let id = create(client, args)?;
    let key = segment(&id);
    if lifecycle.detach {
        post(client, &format!("/containers/{key}/start"))?;
        println!("{id}");
        return Ok(0);
    }
    let condition = if args.auto_remove() {
        "removed"
    } else {
        "next-exit"
    };
    let attachment = Attachment {
        key,
        stdin: lifecycle.interactive,
        tty: lifecycle.tty,
        detach_keys: lifecycle.detach_keys.as_deref(),
        forwarder,
    };
    start_attached(client, attachment, condition)
}

/// Attach (hijacked), wait for `condition`, start, relay: the order `docker run` and
/// `docker start -a` keep, so the attach is there before the first byte and the wait before the
/// end. The exit code is the wait's `StatusCode`.
fn start_attached(
    client: &Client,
    attachment: Attachment<'_>,
    condition: &str,
) -> anyhow::Result<i32> {
    let key = &attachment.key;
    let stream = client.hijack(&attachment.path(), None, attachment.tty)?;
    let waiting = client.call(
        "POST",
        &format!("/containers/{key}/wait?condition={condition}"),
        None,
    )?;
    post(client, &format!("/containers/{key}/start"))?;
    attachment.relay(client, stream)?;
    exit_code(waiting.json()?)
}
// ANCHOR_END: run

/// A container's streams as `run`, `start -a` and `attach` join them.
struct Attachment<'a> {
    /// The container, as a path segment.
    key: String,
    /// Send this process's stdin.
    stdin: bool,
    /// The container has a terminal.
    tty: bool,
    /// `--detach-keys`, for the daemon to watch for.
    detach_keys: Option<&'a str>,
    /// Signals to pass on (without a terminal).
    forwarder: Option<chroot::signals::Forwarder>,
}

impl Attachment<'_> {
    /// `POST /containers/{id}/attach`'s path: every stream, stdin when asked; the detach keys,
    /// when given, are the daemon's to watch for.
    fn path(&self) -> String {
        let mut pairs = vec![
            ("stream", "1".to_string()),
            ("stdin", u8::from(self.stdin).to_string()),
            ("stdout", "1".into()),
            ("stderr", "1".into()),
        ];
        if let Some(keys) = self.detach_keys {
            pairs.push(("detachKeys", keys.to_string()));
        }
        format!("/containers/{}/attach{}", self.key, query(pairs))
    }

    /// Relays the attached streams until the container closes them: signals passed on
    /// without a terminal, the terminal's size followed with one.
    fn relay(self, client: &Client, stream: Hijacked) -> anyhow::Result<()> {
        let key = self.key;
        if let Some(forwarder) = self.forwarder.filter(|_| !self.tty) {
            streams::proxy_signals(forwarder, client, &key);
        }
        let resize = self.tty.then(|| Resize {
            client,
            path: format!("/containers/{key}/resize"),
        });
        streams::relay(stream, self.stdin, resize).context("relay the container's streams")
    }
}

/// A signal forwarder, when signals are to be passed on.
fn forwarder(wanted: bool) -> anyhow::Result<Option<chroot::signals::Forwarder>> {
    wanted
        .then(chroot::signals::Forwarder::install)
        .transpose()
        .context("catch signals to pass on")
}

/// The `StatusCode` of a wait's answer (its `Error`, when the daemon had one, printed).
fn exit_code(answer: Value) -> anyhow::Result<i32> {
    if let Some(message) = answer["Error"]["Message"].as_str()
        && !message.is_empty()
    {
        eprintln!("Error: {message}");
    }
    let code = answer["StatusCode"]
        .as_i64()
        .context("the daemon's wait answer has no StatusCode")?;
    Ok(i32::try_from(code).unwrap_or(125))
}

/// `POST /containers/{key}/wait?condition=`: the exit code, when the condition holds.
pub(super) fn wait(client: &Client, key: &str, condition: &str) -> anyhow::Result<i32> {
    let path = format!("/containers/{}/wait?condition={condition}", segment(key));
    exit_code(client.json("POST", &path, None)?)
}

/// `start`: each container; with `-a`, attached as `run` is (one container).
pub(super) fn start(client: &Client, args: &crate::cli::StartArgs) -> anyhow::Result<i32> {
    let keys = &args.containers.containers;
    if !(args.attach || args.interactive) {
        let code = each(keys, |key| {
            post(client, &format!("/containers/{}/start", segment(key)))
        });
        return Ok(if code == 0 {
            0
        } else {
            chroot::cli::EXIT_ENGINE
        });
    }
    let [key] = keys.as_slice() else {
        bail!("you cannot start and attach multiple containers at once");
    };
    let forwarder = forwarder(true)?;
    let config = client.json("GET", &format!("/containers/{}/json", segment(key)), None)?;
    let id = config["Id"].as_str().unwrap_or(key).to_string();
    let attachment = Attachment {
        key: segment(&id),
        stdin: args.interactive && config["Config"]["OpenStdin"].as_bool().unwrap_or(false),
        tty: config["Config"]["Tty"].as_bool().unwrap_or(false),
        detach_keys: args.detach_keys.as_deref(),
        forwarder,
    };
    start_attached(client, attachment, "next-exit")
}

/// `attach`: a hijacked `attach` to a running container, relayed until its streams end; the
/// exit code is then the container's, as `docker attach`'s.
pub(super) fn attach(client: &Client, args: &crate::cli::AttachArgs) -> anyhow::Result<i32> {
    let forwarder = forwarder(args.sig_proxy)?;
    let config = client.json(
        "GET",
        &format!("/containers/{}/json", segment(&args.container)),
        None,
    )?;
    if config["State"]["Running"].as_bool() != Some(true) {
        bail!("You cannot attach to a stopped container, start it first");
    }
    let id = config["Id"].as_str().unwrap_or(&args.container).to_string();
    let key = segment(&id);
    let attachment = Attachment {
        key: key.clone(),
        stdin: !args.no_stdin && config["Config"]["OpenStdin"].as_bool().unwrap_or(false),
        tty: config["Config"]["Tty"].as_bool().unwrap_or(false),
        detach_keys: args.detach_keys.as_deref(),
        forwarder,
    };
    let stream = client.hijack(&attachment.path(), None, attachment.tty)?;
    attachment.relay(client, stream)?;
    let state = client.json("GET", &format!("/containers/{key}/json"), None)?;
    Ok(state["State"]["ExitCode"]
        .as_i64()
        .and_then(|c| i32::try_from(c).ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_flags_become_the_create_body() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            run: RunArgs,
        }
        let wrap = Wrap::try_parse_from([
            "run",
            "--rm",
            "-e",
            "A=1",
            "-p",
            "127.0.0.1:8080:80",
            "-v",
            "data:/srv",
            "--name",
            "web",
            "--network",
            "none",
            "busybox",
            "echo",
            "hi",
        ])
        .unwrap();
        let body = create_body(&wrap.run).unwrap();
        assert_eq!(body["Image"], "busybox");
        assert_eq!(body["Cmd"], json!(["echo", "hi"]));
        assert_eq!(body["Env"], json!(["A=1"]));
        assert_eq!(body["AttachStdout"], true);
        assert_eq!(body["HostConfig"]["AutoRemove"], true);
        assert_eq!(body["HostConfig"]["NetworkMode"], "none");
        assert_eq!(body["HostConfig"]["Binds"], json!(["data:/srv"]));
        assert_eq!(
            body["HostConfig"]["PortBindings"]["80/tcp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}])
        );
        assert_eq!(body["ExposedPorts"], json!({"80/tcp": {}}));
        let limited = Wrap::try_parse_from([
            "run",
            "--memory",
            "64m",
            "--cpus",
            "0.5",
            "--pids-limit",
            "20",
            "busybox",
        ])
        .unwrap();
        let body = create_body(&limited.run).unwrap();
        assert_eq!(body["HostConfig"]["Memory"], 64 * 1024 * 1024);
        assert_eq!(body["HostConfig"]["NanoCpus"], 500_000_000);
        assert_eq!(body["HostConfig"]["PidsLimit"], 20);
        assert!(body["HostConfig"].get("CpuShares").is_none());
        let mounted = Wrap::try_parse_from([
            "run",
            "--mount",
            "type=bind,source=/srv,target=/data,readonly",
            "busybox",
        ])
        .unwrap();
        let body = create_body(&mounted.run).unwrap();
        assert_eq!(
            body["HostConfig"]["Mounts"],
            json!([{"Type": "bind", "Source": "/srv", "Target": "/data", "ReadOnly": true}])
        );
        let unmapped = Wrap::try_parse_from(["run", "--ip", "10.0.0.5", "busybox"]).unwrap();
        let error = create_body(&unmapped.run).unwrap_err().to_string();
        assert!(
            error.starts_with("--ip cannot go to a daemon yet"),
            "{error}"
        );
    }
}
