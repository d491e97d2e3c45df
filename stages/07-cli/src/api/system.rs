//! What a container uses and what the store holds, through the API: `GET
//! /containers/{id}/stats` (one reading, or one a second), `POST /containers/{id}/update`,
//! `POST /containers/prune` and `GET /system/df` — `skiff stats`, `update`, `container prune`
//! and `system df` served ([`crate::stats`], [`crate::update`], [`crate::prune`]).
//!
//! `docker stats` computes its columns itself, from two readings the server sends in one
//! object: `cpu_stats` now and `precpu_stats` a moment before, each with the container's CPU
//! time (`cpu_usage.total_usage`) and the whole host's (`system_cpu_usage`, all CPUs' time
//! from the first line of /proc/stat); the CPU % is the container's share of the host's
//! time, times the CPUs online. Memory is the cgroup's usage less its `inactive_file`, as
//! `skiff stats` shows it. Reference: Engine API v1.41, ContainerStats, ContainerUpdate,
//! ContainerPrune, SystemDataUsage; proc(5) (/proc/stat).

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::containers::find;
use super::http::{self, Conn, Request};
use super::{ApiError, Next, Reply, Service};
use crate::container::Record;
use crate::stats::Reading;

/// The host's CPU time so far, all CPUs, in nanoseconds: the first line of /proc/stat, in
/// clock ticks (`user nice system idle iowait irq softirq steal`).
fn system_cpu_usage() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf reads a constant of the system.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|t| *t > 0)
        .unwrap_or(100);
    ticks.saturating_mul(1_000_000_000 / per_second)
}

fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// One reading as Docker's `cpu_stats`, with the host's time read at the same moment.
fn cpu_json(reading: &Reading, system: u64) -> Value {
    let total = reading
        .usage
        .cpu
        .map_or(0, |c| u64::try_from(c.as_nanos()).unwrap_or(u64::MAX));
    json!({
        "cpu_usage": { "total_usage": total, "usage_in_kernelmode": 0, "usage_in_usermode": 0 },
        "system_cpu_usage": system,
        "online_cpus": online_cpus(),
        "throttling_data": { "periods": 0, "throttled_periods": 0, "throttled_time": 0 },
    })
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_nanos(time).to_string()
}

// ANCHOR: stats_json
/// Docker's stats object: `after` now, `before` (with the host's time then) as `pre`.
fn stats_json(
    record: &Record,
    before: Option<&(Reading, u64, SystemTime)>,
    after: &(Reading, u64, SystemTime),
) -> Value {
    let (reading, system, read) = after;
    let usage = &reading.usage;
    let limit = usage
        .memory_limit
        .unwrap_or_else(crate::system::mem_total)
        .min(crate::system::mem_total());
    let blkio = |op: &str, value: Option<u64>| {
        value.map(|v| json!({ "major": 0, "minor": 0, "op": op, "value": v }))
    };
    let io: Vec<Value> = [
        blkio("Read", usage.block_read),
        blkio("Write", usage.block_write),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut value = json!({
        "id": record.id,
        "name": format!("/{}", record.name),
        "read": rfc3339(*read),
        "preread": before.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), |b| rfc3339(b.2)),
        "num_procs": 0,
        "pids_stats": { "current": usage.pids_current.unwrap_or(0) },
        "blkio_stats": { "io_service_bytes_recursive": io },
        "cpu_stats": cpu_json(reading, *system),
        "precpu_stats": before.map_or_else(|| json!({ "cpu_usage": { "total_usage": 0 }, "throttling_data": {} }), |b| cpu_json(&b.0, b.1)),
        "memory_stats": if record.state.is_running() {
            json!({
                "usage": usage.memory_current.unwrap_or(0),
                "max_usage": usage.memory_peak.unwrap_or(0),
                "limit": limit,
                "stats": { "inactive_file": usage.memory_inactive_file.unwrap_or(0) },
            })
        } else {
            json!({})
        },
    });
    // The interfaces' sums (loopback aside), under one name: the docker CLI adds them up.
    if let Some((rx, tx)) = reading.net {
        value["networks"] = json!({ "eth0": { "rx_bytes": rx, "tx_bytes": tx } });
    }
    value
}
// ANCHOR_END: stats_json

fn take(record: &Record) -> (Reading, u64, SystemTime) {
    let reading = crate::stats::read(record);
    (reading, system_cpu_usage(), SystemTime::now())
}

// ANCHOR: stats
/// `GET /containers/{id}/stats?stream=1&one-shot=0`: a reading a second, one JSON object a
/// line, until the client leaves (`stream=0`: one, with a `precpu_stats` half a second older;
/// `one-shot=1` too: one at once, without).
pub fn stats(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    let stream = request
        .param("stream")
        .is_none_or(|_| request.flag("stream"));
    let one_shot = !stream && request.flag("one-shot");
    let mut before = (!one_shot).then(|| take(&record));
    http::start_chunked(conn, 200, "application/json")?;
    loop {
        if before.is_some() {
            let pause = if stream { 1000 } else { 500 };
            let waited = std::time::Instant::now();
            while waited.elapsed() < Duration::from_millis(pause) {
                if super::streams::client_left(conn) {
                    return Ok(Next::Close);
                }
            }
        }
        // The state may have changed meanwhile: the record says.
        let record =
            crate::lifecycle::find(&service.root, &record.id).unwrap_or_else(|_| record.clone());
        let now = take(&record);
        let mut line = stats_json(&record, before.as_ref(), &now).to_string();
        line.push('\n');
        if http::chunk(conn, line.as_bytes()).is_err() {
            return Ok(Next::Close);
        }
        if !stream {
            break;
        }
        before = Some(now);
    }
    http::end_chunked(conn)?;
    Ok(Next::KeepAlive)
}
// ANCHOR_END: stats

/// `POST /containers/{id}/update` (Docker's UpdateConfig: `Memory`, `MemorySwap`,
/// `NanoCpus`, `CpuShares`, `CpusetCpus`, `PidsLimit`, `BlkioWeight`, `RestartPolicy`; a 0 or
/// an absent field changes nothing): `skiff update`'s flags, and its work.
pub fn update(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::new(400, format!("invalid JSON in the update request: {e}")))?;
    let number = |field: &str| {
        body.get(field)
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
            .map(|n| n.to_string())
    };
    let restart = body["RestartPolicy"]["Name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .map(
            |name| match body["RestartPolicy"]["MaximumRetryCount"].as_u64() {
                Some(n) if n > 0 && name == "on-failure" => format!("{name}:{n}"),
                _ => name.to_string(),
            },
        );
    let args = crate::update::UpdateArgs {
        root: namespaces::RootArgs {
            root: service.root.clone(),
        },
        memory: number("Memory"),
        memory_swap: number("MemorySwap"),
        cpus: body
            .get("NanoCpus")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .map(|n| format!("{}.{:09}", n / 1_000_000_000, n % 1_000_000_000)),
        cpu_shares: number("CpuShares"),
        cpuset_cpus: body["CpusetCpus"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        pids_limit: number("PidsLimit"),
        blkio_weight: number("BlkioWeight"),
        restart,
        containers: vec![key.to_string()],
    };
    let record = find(service, key)?;
    crate::update::update(&service.root, &args, &record.id)
        .map_err(|e| ApiError::from_anyhow(&e, 400))?;
    super::json(conn, request, 200, &json!({ "Warnings": [] }))
}

/// `POST /containers/prune?filters={"until":...,"label":...}`: `container prune -f`.
pub fn prune(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let flags = super::containers::filter_flags(request.param("filters"))?;
    let (removed, freed) = crate::prune::prune_stopped(&service.root, &flags)
        .map_err(|e| ApiError::from_anyhow(&e, 400))?;
    super::json(
        conn,
        request,
        200,
        &json!({ "ContainersDeleted": removed, "SpaceReclaimed": freed }),
    )
}

// ANCHOR: df
/// `GET /system/df`: the store's images (with how many containers use each), containers
/// (with their writable layer's size) and volumes (with their size and users), from which
/// `docker system df` makes its table, as `skiff system df` makes its own.
pub fn df(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let root = &service.root;
    let records = crate::lifecycle::list(root)?;
    let stores = crate::inspect::Stores::load(root, &records)?;
    let containers: Vec<Value> = records
        .iter()
        .map(|record| {
            let mut value = super::containers::summary(service, record, &stores, true);
            value["SizeRootFs"] = value["SizeRw"].clone();
            value
        })
        .collect();
    let mut images = Vec::new();
    let mut layers_size = 0;
    if root.join("images").is_dir() {
        let store = images::Store::open(root).map_err(anyhow::Error::from)?;
        for id in store.image_ids().map_err(anyhow::Error::from)? {
            let Ok(image) = store.image(&id) else {
                continue;
            };
            let users = images::ops::containers_using(&store, &id)
                .map_err(anyhow::Error::from)?
                .len();
            layers_size += image.size();
            images.push(json!({
                "Id": id.to_string(),
                "ParentId": "",
                "RepoTags": image.repo_tags,
                "RepoDigests": image.repo_digests,
                "Created": super::engine::unix_seconds(image.created()),
                "Size": image.size(),
                "SharedSize": 0,
                "VirtualSize": image.size(),
                "Labels": {},
                "Containers": users,
            }));
        }
    }
    let volumes: Vec<Value> = volumes::store::list(root)
        .map_err(anyhow::Error::from)?
        .iter()
        .map(|volume| {
            let mut value = super::volumes::volume_json(volume);
            value["UsageData"] = json!({
                "Size": volumes::store::disk_usage(&volume.mountpoint),
                "RefCount": volume.users.len(),
            });
            value
        })
        .collect();
    let body = json!({
        "LayersSize": layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    });
    super::json(conn, request, 200, &body)
}
// ANCHOR_END: df
