//! The engine's own endpoints: `_ping` (the CLI's first request, to agree on a version),
//! `version`, `info`, and the images: `images/json` and `images/{name}/json`. The facts are
//! those of `skiff version`, `skiff info` and `skiff images` ([`crate::system`],
//! `images::ops`), in the Engine API's shapes (v1.41: SystemVersion, SystemInfo, ImageSummary).

use std::path::Path;

use serde_json::{Value, json};

use super::http::{Conn, Request};
use super::{ApiError, Reply, Service};

/// `GET /_ping` and `HEAD /_ping`: `OK`, with the headers (`Api-Version`...) the client reads.
pub fn ping(conn: &mut Conn, request: &Request) -> Reply {
    super::http::respond(conn, request, 200, "text/plain; charset=utf-8", b"OK")?;
    Ok(super::Next::KeepAlive)
}

/// `GET /version`.
pub fn version(conn: &mut Conn, request: &Request) -> Reply {
    let here = crate::system::Version::here();
    let server = &here.server;
    let kernel = server.kernel_version.clone().unwrap_or_default();
    let body = json!({
        "Platform": { "Name": "skiff Engine" },
        "Components": [{
            "Name": "Engine",
            "Version": server.version,
            "Details": {
                "ApiVersion": server.api_version,
                "MinAPIVersion": MIN_API_VERSION,
                "KernelVersion": kernel,
                "Os": server.os,
                "Arch": server.arch,
                "GoVersion": server.rust_version,
            }
        }],
        "Version": server.version,
        "ApiVersion": server.api_version,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": server.rust_version,
        "Os": server.os,
        "Arch": server.arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    });
    super::json(conn, request, 200, &body)
}

/// The oldest API version the service answers (Docker's daemon's floor too).
const MIN_API_VERSION: &str = "1.24";

/// `GET /info`: `skiff info`'s facts, and the fields the docker CLI reads to print its own.
pub fn info(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let info = crate::system::Info::gather(&service.root)?;
    let mut body = serde_json::to_value(&info).map_err(|e| ApiError::new(500, e.to_string()))?;
    if let Value::Object(map) = &mut body {
        let more = json!({
            "ID": "",
            "LoggingDriver": "json-file",
            "DefaultRuntime": "skiff",
            "Runtimes": { "skiff": { "path": "skiff-runtime" } },
            "IndexServerAddress": "https://index.docker.io/v1/",
            "Swarm": { "LocalNodeState": "inactive" },
            "Plugins": { "Volume": ["local"], "Network": ["bridge", "host", "macvlan", "none"], "Log": ["json-file"] },
            "SecurityOptions": ["name=seccomp,profile=default"],
            // What stage 03 limits: the docker CLI warns about each that is false.
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": sysctl_on("net/ipv4/ip_forward"),
            "BridgeNfIptables": sysctl_on("net/bridge/bridge-nf-call-iptables"),
            "BridgeNfIp6tables": sysctl_on("net/bridge/bridge-nf-call-ip6tables"),
        });
        if let Value::Object(more) = more {
            map.extend(more);
        }
    }
    super::json(conn, request, 200, &body)
}

/// Whether the kernel setting `/proc/sys/{name}` is 1.
fn sysctl_on(name: &str) -> bool {
    std::fs::read_to_string(Path::new("/proc/sys").join(name)).is_ok_and(|v| v.trim() == "1")
}

/// Seconds since 1970 of an RFC 3339 time, 0 when there is none.
pub fn unix_seconds(time: Option<&str>) -> u64 {
    time.and_then(images::human::parse_time)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// A full reference in its familiar form (`docker.io/library/busybox:latest` as
/// `busybox:latest`), as `docker images` shows it.
fn familiar(reference: &str) -> String {
    images::ImageRef::parse(reference).map_or_else(|_| reference.to_string(), |r| r.familiar())
}

/// Whether an image with the tags `tags` (familiar form) passes the `images` filters
/// (`reference=NAME[:TAG]`, `dangling=true|false`, as `KEY=VALUE` flags).
fn passes(filters: &[String], tags: &[String]) -> Result<bool, ApiError> {
    for filter in filters {
        let (key, value) = filter.split_once('=').unwrap_or((filter, ""));
        let pass = match key {
            "reference" => tags.iter().any(|tag| {
                let repository = tag.rsplit_once(':').map_or(tag.as_str(), |(r, _)| r);
                tag == value || repository == value
            }),
            "dangling" => tags.is_empty() == (value == "true" || value == "1"),
            other => return Err(ApiError::new(400, format!("invalid filter '{other}'"))),
        };
        if !pass {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /images/json?filters={...}`: every image, as Docker's ImageSummary.
pub fn images(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let filters = super::containers::filter_flags(request.param("filters"))?;
    let mut list = Vec::new();
    if service.root.join("images").is_dir() {
        let store = images::Store::open(&service.root).map_err(anyhow::Error::from)?;
        for id in store.image_ids().map_err(anyhow::Error::from)? {
            let Ok(image) = store.image(&id) else {
                continue;
            };
            let tags: Vec<String> = image.repo_tags.iter().map(|r| familiar(r)).collect();
            if !passes(&filters, &tags)? {
                continue;
            }
            let labels = image
                .config
                .config()
                .as_ref()
                .and_then(|c| c.labels().clone());
            list.push(json!({
                "Id": image.id.to_string(),
                "ParentId": "",
                "RepoTags": tags,
                "RepoDigests": image.repo_digests,
                "Created": unix_seconds(image.created()),
                "Size": image.size(),
                "VirtualSize": image.size(),
                "SharedSize": -1,
                "Labels": labels,
                "Containers": -1,
            }));
        }
    }
    list.sort_by_key(|image| std::cmp::Reverse(image["Created"].as_u64().unwrap_or(0)));
    super::json(conn, request, 200, &list)
}

/// `GET /images/{name}/json`: `skiff image inspect`'s JSON.
pub fn image(service: &Service, conn: &mut Conn, request: &Request, name: &str) -> Reply {
    let no_such = || ApiError::new(404, format!("No such image: {name}"));
    if !service.root.join("images").is_dir() {
        return Err(no_such());
    }
    let store = images::Store::open(&service.root).map_err(anyhow::Error::from)?;
    if store.resolve(name).is_err() {
        return Err(no_such());
    }
    let inspect = images::ops::inspect(&store, name).map_err(anyhow::Error::from)?;
    super::json(conn, request, 200, &inspect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_filter_by_reference_and_dangling() {
        let tags = vec!["skiff-lab:latest".to_string()];
        let pass = |filters: &[&str], tags: &[String]| {
            let filters: Vec<String> = filters.iter().map(ToString::to_string).collect();
            passes(&filters, tags).unwrap()
        };
        assert!(pass(&["reference=skiff-lab"], &tags));
        assert!(pass(&["reference=skiff-lab:latest"], &tags));
        assert!(!pass(&["reference=other"], &tags));
        assert!(!pass(&["dangling=true"], &tags));
        assert!(pass(&["dangling=true"], &[]));
        assert!(passes(&["bogus=1".to_string()], &tags).is_err());
    }
}
