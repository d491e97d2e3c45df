//! The container endpoints that answer at once: list (`GET /containers/json`, Docker's
//! ContainerSummary), inspect, start, stop, restart, kill and remove. Each is the CLI's command
//! of the same name ([`crate::lifecycle`], [`crate::ps`], [`crate::inspect`]) with Docker's
//! statuses: 204 done, 304 nothing to do (start a running container, stop a stopped one), 404
//! no such container, 409 a conflict (kill a stopped one, remove a running one). Reference:
//! Engine API v1.41, ContainerList, ContainerInspect, ContainerStart, ContainerStop,
//! ContainerRestart, ContainerKill, ContainerDelete.

use std::time::SystemTime;

use namespaces::record::Status;
use serde_json::{Value, json};

use super::http::{Conn, Request};
use super::{ApiError, Next, Reply, Service};
use crate::container::Record;
use crate::inspect::{self, Stores};
use crate::lifecycle;
use crate::monitor::Report;

/// The container `key` names (id, name or id prefix), brought up to date; 404 when none.
pub fn find(service: &Service, key: &str) -> Result<Record, ApiError> {
    lifecycle::find(&service.root, key).map_err(|e| ApiError::from_anyhow(&e, 500))
}

/// Whether the container runs (or is paused, or restarting): what stop and remove act on.
pub fn is_live(record: &Record) -> bool {
    matches!(
        record.state.status,
        Status::Running | Status::Paused | Status::Restarting
    )
}

// ANCHOR: list
/// `GET /containers/json?all=1&limit=N&filters={...}`: `skiff ps`'s selection, as Docker's
/// ContainerSummary.
pub fn list(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let filters = filter_flags(request.param("filters"))?;
    let filters =
        crate::ps::Filters::parse(&filters).map_err(|e| ApiError::new(400, e.to_string()))?;
    let records = lifecycle::list(&service.root)?;
    let stores = Stores::load(&service.root, &records)?;
    let ancestors = crate::ps::ancestors(&service.root, &filters.ancestor);
    let query = crate::ps::Query {
        all: request.flag("all"),
        limit: request
            .param("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(-1),
        filters,
    };
    let picked = crate::ps::select(&records, &query, &stores, &ancestors)
        .map_err(|e| ApiError::new(400, e.to_string()))?;
    let size = request.flag("size");
    let summaries: Vec<Value> = picked
        .into_iter()
        .map(|record| summary(service, record, &stores, size))
        .collect();
    super::json(conn, request, 200, &summaries)
}
// ANCHOR_END: list

/// The API's `filters` (`{"name":{"web":true}}`, or `{"name":["web"]}`) as `ps --filter`'s
/// `name=web` flags.
pub fn filter_flags(filters: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(text) = filters.filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::new(400, format!("invalid filters {text:?}: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::new(400, format!("invalid filters {text:?}")));
    };
    let mut flags = Vec::new();
    for (key, values) in map {
        let values: Vec<String> = match values {
            Value::Object(set) => set.keys().cloned().collect(),
            Value::Array(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => return Err(ApiError::new(400, format!("invalid filter {key:?}"))),
        };
        flags.extend(values.into_iter().map(|v| format!("{key}={v}")));
    }
    Ok(flags)
}

/// One container as Docker's ContainerSummary: what `docker ps` reads.
pub fn summary(service: &Service, record: &Record, stores: &Stores, size: bool) -> Value {
    let full =
        serde_json::to_value(inspect::container_json(record, stores, false)).unwrap_or(Value::Null);
    let ports: Vec<Value> = if inspect::is_up(&record.state) {
        crate::ps::ports(&inspect::network_ports(record, stores))
            .into_iter()
            .map(|port| {
                let mut value = json!({ "PrivatePort": port.private, "Type": port.protocol });
                if let Some(public) = port.public {
                    value["PublicPort"] = json!(public);
                    value["IP"] = json!(port.ip);
                }
                value
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut value = json!({
        "Id": record.id,
        "Names": [format!("/{}", record.name)],
        "Image": record.image,
        "ImageID": record.image_id,
        "Command": inspect::command_line(record).join(" "),
        "Created": super::engine::unix_seconds(Some(&record.created)),
        "Ports": ports,
        "Labels": record.config.labels,
        "State": full["State"]["Status"],
        "Status": crate::ps::status_text(&record.state, SystemTime::now()),
        "HostConfig": { "NetworkMode": full["HostConfig"]["NetworkMode"] },
        "NetworkSettings": { "Networks": full["NetworkSettings"]["Networks"] },
        "Mounts": full["Mounts"],
    });
    if size {
        value["SizeRw"] = json!(inspect::size_rw(&service.root, &record.id));
    }
    value
}

/// `GET /containers/{id}/json?size=1`: `skiff inspect`'s JSON.
pub fn inspect(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    let stores = Stores::load(&service.root, std::slice::from_ref(&record))?;
    let json = inspect::container_json(&record, &stores, request.flag("size"));
    super::json(conn, request, 200, &json)
}

// ANCHOR: start
/// `POST /containers/{id}/start`: a monitor for the container, as `skiff start` gives it. When a
/// client attached before the start (`docker run` does: create, attach, wait, start), the
/// attach socket it is waiting on goes to the monitor, which accepts it before the container
/// runs, so not a byte of output is lost.
pub fn start(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    if record.state.is_running() {
        return super::empty(conn, request, 304);
    }
    let listener = service
        .pending
        .lock()
        .ok()
        .and_then(|mut pending| pending.remove(&record.id));
    // The service has threads: this starts `skiff container-monitor ID`, a program of its own.
    match lifecycle::start(&service.root, &record, None, listener.as_ref(), None)? {
        Report::Started(_) => super::empty(conn, request, 204),
        Report::Failed(_, message) => Err(ApiError::new(500, message)),
    }
}
// ANCHOR_END: start

/// The `t` parameter (seconds before SIGKILL), if given.
fn timeout(request: &Request) -> Result<Option<u32>, ApiError> {
    request
        .param("t")
        .map(|t| {
            t.parse()
                .map_err(|_| ApiError::new(400, format!("invalid value for t: {t:?}")))
        })
        .transpose()
}

/// `POST /containers/{id}/stop?t=N`.
pub fn stop(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    let time = timeout(request)?;
    if !is_live(&record) {
        return super::empty(conn, request, 304);
    }
    lifecycle::stop(&service.root, &record, None, time)?;
    super::empty(conn, request, 204)
}

/// `POST /containers/{id}/restart?t=N`: stop, then start.
pub fn restart(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    let time = timeout(request)?;
    let stopped = lifecycle::stop(&service.root, &record, None, time)?;
    if let Report::Failed(_, message) = lifecycle::start(&service.root, &stopped, None, None, None)?
    {
        return Err(ApiError::new(500, message));
    }
    crate::events::emit(&service.root, "restart", &stopped, &[]);
    super::empty(conn, request, 204)
}

/// `POST /containers/{id}/kill?signal=SIG`.
pub fn kill(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    let signal = crate::signal::parse(request.param("signal").unwrap_or("KILL"))
        .map_err(|e| ApiError::from_anyhow(&e, 400))?;
    if !record.state.is_running() {
        return Err(ApiError::new(
            409,
            format!(
                "Cannot kill container: {0}: Container {0} is not running",
                record.name
            ),
        ));
    }
    lifecycle::kill(&service.root, &record, signal)?;
    super::empty(conn, request, 204)
}

// ANCHOR: remove
/// `DELETE /containers/{id}?force=1&v=1`: `skiff rm [-f] [-v]`; 409 for a running container
/// without `force`.
pub fn remove(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    let force = request.flag("force");
    if is_live(&record) && !force {
        return Err(ApiError::new(
            409,
            format!(
                "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                record.id
            ),
        ));
    }
    if let Ok(mut pending) = service.pending.lock() {
        pending.remove(&record.id);
    }
    lifecycle::remove(&service.root, &record, force, request.flag("v"))?;
    Ok(match super::empty(conn, request, 204) {
        Ok(next) => next,
        Err(_) => Next::Close,
    })
}
// ANCHOR_END: remove

/// `POST /containers/{id}/pause` and `unpause`: `skiff pause` and `unpause`; 409 when the
/// container is not in the state to.
pub fn pause(
    service: &Service,
    conn: &mut Conn,
    request: &Request,
    key: &str,
    freeze: bool,
) -> Reply {
    let record = find(service, key)?;
    let done = if freeze {
        crate::pause::pause(&service.root, &record)
    } else {
        crate::pause::unpause(&service.root, &record)
    };
    done.map_err(|e| ApiError::from_anyhow(&e, 409))?;
    super::empty(conn, request, 204)
}

/// `POST /containers/{id}/rename?name=NEW`: `skiff rename`; 409 for a name in use.
pub fn rename(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    let name = request
        .param("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::new(400, "give the new name: rename?name=NEW"))?;
    crate::rename::rename(&service.root, &record, name.trim_start_matches('/'))
        .map_err(|e| ApiError::from_anyhow(&e, 400))?;
    super::empty(conn, request, 204)
}

// ANCHOR: top
/// `GET /containers/{id}/top?ps_args=-ef`: `skiff top`'s ps(1) table as Docker's
/// `{"Titles": [...], "Processes": [[...]]}`.
pub fn top(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let record = find(service, key)?;
    if !record.state.is_running() {
        return Err(ApiError::new(
            409,
            format!("Container {} is not running", record.id),
        ));
    }
    let ps_args: Vec<String> = request
        .param("ps_args")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let table = crate::top::top(&record, &ps_args).map_err(|e| ApiError::from_anyhow(&e, 500))?;
    let mut lines = table.lines();
    let titles: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let processes: Vec<Vec<String>> = lines.map(|line| columns(line, titles.len())).collect();
    super::json(
        conn,
        request,
        200,
        &json!({ "Titles": titles, "Processes": processes }),
    )
}
// ANCHOR_END: top

/// A line of ps(1) in `n` columns: the last (the command) keeps its spaces.
fn columns(line: &str, n: usize) -> Vec<String> {
    let mut fields = Vec::new();
    let mut rest = line.trim_start();
    while fields.len() + 1 < n {
        let Some(end) = rest.find(char::is_whitespace) else {
            break;
        };
        fields.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    fields.push(rest.trim_end().to_string());
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ps_line_keeps_its_command_whole() {
        assert_eq!(
            columns("root  42  1  0 10:00 ?  00:00:00 sleep 100", 8),
            [
                "root",
                "42",
                "1",
                "0",
                "10:00",
                "?",
                "00:00:00",
                "sleep 100"
            ]
        );
    }

    #[test]
    fn api_filters_become_ps_flags() {
        let flags = filter_flags(Some(r#"{"name":{"web":true},"status":["exited"]}"#)).unwrap();
        assert_eq!(flags, ["name=web", "status=exited"]);
        assert!(filter_flags(Some("[1]")).is_err());
        assert!(filter_flags(None).unwrap().is_empty());
    }
}
