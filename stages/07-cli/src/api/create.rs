//! `POST /containers/create`: Docker's container configuration (`Config`, with `HostConfig`
//! inside it) turned into the flags of `skiff create`, then parsed and created exactly as the
//! CLI does ([`crate::container::create`]). Going through the flags means one set of rules: a
//! value the CLI refuses, the API refuses in the same words, and the record is the CLI's.
//!
//! What is mapped: Image, Cmd, Entrypoint, Env, WorkingDir, User, Hostname, Labels, Tty,
//! OpenStdin, StopSignal, StopTimeout; HostConfig's Binds, Mounts, NetworkMode, PortBindings,
//! AutoRemove, RestartPolicy, Memory, NanoCpus, CpuShares, CpusetCpus, PidsLimit;
//! NetworkingConfig's aliases on the NetworkMode network (`--network-alias`). The image
//! must be in the store: the service never pulls on create (Docker's daemon does not either; the
//! client pulls after a 404). Reference: Engine API v1.41, ContainerCreate.

use clap::Parser;
use serde_json::Value;

use super::http::{Conn, Request};
use super::{ApiError, Reply, Service};
use crate::spec::RunArgs;

/// The flags of `skiff create`, parsed as the command line parses them.
#[derive(Parser)]
#[command(name = "create", no_binary_name = true)]
struct CreateLine {
    #[command(flatten)]
    run: RunArgs,
}

/// The strings of a JSON array (`null`, absent or not an array: none).
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A non-empty string field.
fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A positive number field.
fn positive(value: &Value, key: &str) -> Option<i64> {
    value.get(key).and_then(Value::as_i64).filter(|n| *n > 0)
}

/// One of HostConfig's `Mounts` (`{"Type": "volume", "Source": "data", "Target": "/srv",
/// "ReadOnly": true}`) as `--mount`'s `type=volume,source=data,target=/srv,readonly`.
fn mount_flag(mount: &Value) -> Result<String, ApiError> {
    let kind = text(mount, "Type").unwrap_or("volume");
    let target = text(mount, "Target")
        .ok_or_else(|| ApiError::new(400, format!("HostConfig.Mounts: {mount} has no Target")))?;
    let mut fields = vec![format!("type={kind}")];
    if let Some(source) = text(mount, "Source") {
        fields.push(format!("source={source}"));
    }
    fields.push(format!("target={target}"));
    if mount.get("ReadOnly").and_then(Value::as_bool) == Some(true) {
        fields.push("readonly".into());
    }
    Ok(fields.join(","))
}

// ANCHOR: flags
/// The `skiff create` flags that say what `config` (the request's body) says, for a container
/// named `name` in the store at `root`.
pub fn flags(root: &str, name: Option<&str>, config: &Value) -> Result<Vec<String>, ApiError> {
    let image = text(config, "Image")
        .ok_or_else(|| ApiError::new(400, "Config.Image is empty: name the image to run"))?;
    let host = config.get("HostConfig").unwrap_or(&Value::Null);
    let mut flags: Vec<String> = vec![
        "--root".into(),
        root.into(),
        "--pull".into(),
        "never".into(),
    ];
    let mut flag = |name: &str, value: &str| {
        flags.push(format!("--{name}"));
        flags.push(value.to_string());
    };
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        flag("name", name.trim_start_matches('/'));
    }
    for (key, name) in [
        ("Hostname", "hostname"),
        ("User", "user"),
        ("WorkingDir", "workdir"),
        ("StopSignal", "stop-signal"),
    ] {
        if let Some(value) = text(config, key) {
            flag(name, value);
        }
    }
    if let Some(seconds) = config.get("StopTimeout").and_then(Value::as_i64) {
        flag("stop-timeout", &seconds.to_string());
    }
    for env in strings(&config["Env"]) {
        flag("env", &env);
    }
    if let Some(labels) = config.get("Labels").and_then(Value::as_object) {
        for (key, value) in labels {
            flag(
                "label",
                &format!("{key}={}", value.as_str().unwrap_or_default()),
            );
        }
    }
    for bind in strings(&host["Binds"]) {
        flag("volume", &bind);
    }
    for mount in host["Mounts"].as_array().into_iter().flatten() {
        flag("mount", &mount_flag(mount)?);
    }
    let network = text(host, "NetworkMode").filter(|m| *m != "default");
    if let Some(mode) = network {
        flag("network", mode);
    }
    // The endpoint of the network the container starts on: its aliases (compose gives each
    // container its service's name there, which is how one service finds another).
    if let Some(endpoints) = config["NetworkingConfig"]["EndpointsConfig"].as_object() {
        let endpoint = network.and_then(|n| endpoints.get(n));
        for alias in endpoint.map(|e| strings(&e["Aliases"])).unwrap_or_default() {
            flag("network-alias", &alias);
        }
    }
    for publish in publish_flags(&host["PortBindings"]) {
        flag("publish", &publish);
    }
    if let Some(policy) = text(&host["RestartPolicy"], "Name").filter(|p| *p != "no") {
        match positive(&host["RestartPolicy"], "MaximumRetryCount") {
            Some(n) => flag("restart", &format!("{policy}:{n}")),
            None => flag("restart", policy),
        }
    }
    if let Some(bytes) = positive(host, "Memory") {
        flag("memory", &format!("{bytes}b"));
    }
    if let Some(nanos) = positive(host, "NanoCpus") {
        flag("cpus", &format!("{}", nanos as f64 / 1e9));
    }
    if let Some(shares) = positive(host, "CpuShares") {
        flag("cpu-shares", &shares.to_string());
    }
    if let Some(cpus) = text(host, "CpusetCpus") {
        flag("cpuset-cpus", cpus);
    }
    if let Some(pids) = positive(host, "PidsLimit") {
        flag("pids-limit", &pids.to_string());
    }
    // Docker's Entrypoint is a list; skiff's --entrypoint one word, the rest goes before Cmd.
    let mut command = Vec::new();
    match config.get("Entrypoint") {
        Some(Value::Array(_)) => {
            let entrypoint = strings(&config["Entrypoint"]);
            let (first, rest) = entrypoint
                .split_first()
                .map_or(("", &[][..]), |(f, r)| (f, r));
            flag("entrypoint", first);
            command.extend_from_slice(rest);
        }
        Some(Value::String(entrypoint)) => flag("entrypoint", entrypoint),
        _ => {}
    }
    let bool_of = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(false);
    if bool_of("Tty") {
        flags.push("--tty".into());
    }
    if bool_of("OpenStdin") {
        flags.push("--interactive".into());
    }
    if host.get("AutoRemove").and_then(Value::as_bool) == Some(true) {
        flags.push("--rm".into());
    }
    flags.push("--".into());
    flags.push(image.into());
    flags.extend(command);
    match &config["Cmd"] {
        Value::String(cmd) => flags.push(cmd.clone()),
        cmd => flags.extend(strings(cmd)),
    }
    Ok(flags)
}
// ANCHOR_END: flags

/// `PortBindings` (`{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`) as `-p` values.
fn publish_flags(bindings: &Value) -> Vec<String> {
    let Some(map) = bindings.as_object() else {
        return Vec::new();
    };
    let mut flags = Vec::new();
    for (port, hosts) in map {
        let hosts = hosts.as_array().cloned().unwrap_or_default();
        if hosts.is_empty() {
            flags.push(port.clone());
        }
        for host in hosts {
            let ip = text(&host, "HostIp");
            let public = text(&host, "HostPort").unwrap_or_default();
            flags.push(match ip {
                Some(ip) => format!("{ip}:{public}:{port}"),
                None if public.is_empty() => port.clone(),
                None => format!("{public}:{port}"),
            });
        }
    }
    flags
}

// ANCHOR: create
/// `POST /containers/create?name=NAME`: 201 and the new id; 404 for an image not in the
/// store, 409 for a name in use, 400 for a configuration `skiff create` refuses.
pub fn create(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let config: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::new(400, format!("invalid JSON in the create request: {e}")))?;
    let root = service.root.to_string_lossy();
    let flags = flags(&root, request.param("name"), &config)?;
    let image = text(&config, "Image").unwrap_or_default();
    let known = service.root.join("images").is_dir()
        && images::Store::open(&service.root).is_ok_and(|store| store.resolve(image).is_ok());
    if !known {
        return Err(ApiError::new(404, format!("No such image: {image}")));
    }
    let line = CreateLine::try_parse_from(&flags).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("invalid configuration");
        ApiError::new(400, first.trim_start_matches("error: ").to_string())
    })?;
    let record = crate::container::create(&line.run).map_err(|e| ApiError::from_anyhow(&e, 400))?;
    super::json(
        conn,
        request,
        201,
        &serde_json::json!({ "Id": record.id, "Warnings": [] }),
    )
}
// ANCHOR_END: create

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_run_becomes_skiff_create() {
        let body = serde_json::json!({
            "Image": "skiff-lab", "Cmd": ["/bin/echo", "hi"], "Env": ["A=1"], "Entrypoint": null,
            "Labels": {"k": "v"}, "Tty": false, "OpenStdin": true, "WorkingDir": "",
            "HostConfig": {
                "AutoRemove": true, "NetworkMode": "default", "Binds": ["/data:/srv:ro"],
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                "Memory": 67108864, "NanoCpus": 500000000, "PidsLimit": null
            }
        });
        let flags = flags("/tmp/store", Some("web"), &body).unwrap();
        assert_eq!(
            flags.join(" "),
            "--root /tmp/store --pull never --name web --env A=1 --label k=v --volume /data:/srv:ro \
             --publish 8080:80/tcp --memory 67108864b --cpus 0.5 --interactive --rm -- skiff-lab /bin/echo hi"
        );
        let parsed = CreateLine::try_parse_from(&flags).unwrap();
        assert!(parsed.run.auto_remove());
        assert_eq!(parsed.run.name(), Some("web"));
    }

    #[test]
    fn an_entrypoint_list_is_one_flag_and_words_before_the_command() {
        let body = serde_json::json!({
            "Image": "i", "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["exit 3"]
        });
        let flags = flags("/r", None, &body).unwrap();
        assert_eq!(flags[4..].join(" "), "--entrypoint /bin/sh -- i -c exit 3");
    }

    #[test]
    fn mounts_and_the_networks_aliases_become_flags() {
        let body = serde_json::json!({
            "Image": "i",
            "HostConfig": {
                "NetworkMode": "proj_default",
                "Mounts": [{"Type": "volume", "Source": "proj_data", "Target": "/srv", "ReadOnly": true}]
            },
            "NetworkingConfig": {"EndpointsConfig": {"proj_default": {"Aliases": ["web", "www"]}}}
        });
        let flags = flags("/r", None, &body).unwrap();
        assert_eq!(
            flags[4..].join(" "),
            "--mount type=volume,source=proj_data,target=/srv,readonly --network proj_default \
             --network-alias web --network-alias www -- i"
        );
        CreateLine::try_parse_from(&flags).unwrap();
    }

    #[test]
    fn a_create_without_an_image_is_a_bad_request() {
        let error = flags("/r", None, &serde_json::json!({"Cmd": ["true"]})).unwrap_err();
        assert_eq!(error.status, 400);
    }
}
