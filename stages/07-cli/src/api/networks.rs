//! The network endpoints: `GET /networks` (list, with filters), `GET /networks/{id}`
//! (inspect), `POST /networks/create` and `DELETE /networks/{id}` — what `docker network
//! ls/inspect/create/rm` ask for. The networks are stage 05's ([`networking::store`], [`networking::cli::filtered`]),
//! in the Engine API's Network shape, which is the one `network inspect` prints (v1.41:
//! Name, Id, Created, Scope, Driver, EnableIPv6, IPAM, Internal, Containers, Options, Labels).
//! `connect` and `disconnect` are `skiff network connect/disconnect` ([`crate::connect`]), with
//! the body's `EndpointConfig` (`Aliases`, `IPAMConfig.IPv4Address`) as their flags; `prune`
//! is `network prune`.

use std::collections::BTreeMap;

use networking::store::{self, CreateOptions, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{Conn, Request};
use super::{ApiError, Reply, Service};

/// Networks as the API's Network objects: stage 05's `network inspect` JSON, parsed back.
fn network_json(networks: &[store::Network]) -> Result<Vec<Value>, ApiError> {
    serde_json::from_str(&store::inspect_json(networks))
        .map_err(|e| ApiError::new(500, format!("network inspect JSON of stage 05: {e}")))
}

/// `GET /networks?filters={...}`: `network ls`'s selection (`driver`, `id`, `label`, `name`,
/// `scope`, `type`).
pub fn list(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let flags = super::containers::filter_flags(request.param("filters"))?;
    let networks = networking::cli::filtered(&service.root, &flags)
        .map_err(|e| ApiError::from_anyhow(&e, 400))?;
    super::json(conn, request, 200, &network_json(&networks)?)
}

// ANCHOR: statuses
/// Stage 05's failure with Docker's status: 404 not found, 409 exists or in use, 403 a
/// predefined network, 400 a bad name or ambiguous prefix.
fn api_error(error: &anyhow::Error) -> ApiError {
    let status = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<StoreError>())
        .map_or(500, |e| match e {
            StoreError::NotFound { .. } => 404,
            StoreError::Exists { .. } | StoreError::ActiveEndpoints { .. } => 409,
            StoreError::Predefined { .. } => 403,
            StoreError::InvalidName { .. } | StoreError::Ambiguous { .. } => 400,
            _ => 500,
        });
    ApiError::new(status, chroot::cli::one_line(error))
}
// ANCHOR_END: statuses

/// `POST /networks/create`'s body (NetworkCreateRequest): what skiff acts on of it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    name: String,
    driver: Option<String>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
}

/// The body's `IPAM`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ipam {
    #[serde(default)]
    config: Option<Vec<IpamConfig>>,
}

/// One `IPAM.Config` entry.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IpamConfig {
    subnet: Option<String>,
    gateway: Option<String>,
}

/// `POST /networks/create`: a bridge network (the record; its bridge is made when the first
/// container joins), 201 with its id; 409 when the name is taken.
pub fn create(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let body: CreateBody = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::new(400, format!("bad network create body: {e}")))?;
    if let Some(driver) = body
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "bridge")
    {
        return Err(ApiError::new(
            400,
            format!(
                "network driver {driver:?} is not served by the API: use bridge, or skiff network create"
            ),
        ));
    }
    let mut options = CreateOptions::new(body.name);
    options.internal = body.internal;
    options.labels = body.labels.unwrap_or_default();
    let configs = body.ipam.and_then(|i| i.config).unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::new(
            400,
            "more than one IPAM config: skiff serves one IPv4 subnet",
        ));
    }
    if let Some(config) = configs.first() {
        let bad = |e: networking::ipam::IpamError| ApiError::new(400, e.to_string());
        options.subnet = config
            .subnet
            .as_deref()
            .map(networking::ipam::Subnet::parse)
            .transpose()
            .map_err(bad)?;
        options.gateway = config
            .gateway
            .as_deref()
            .map(networking::ipam::parse_ip)
            .transpose()
            .map_err(bad)?;
    }
    let created = store::host_lock()
        .and_then(|_host| store::create(&service.root, options))
        .map_err(|e| api_error(&e.into()))?;
    super::json(
        conn,
        request,
        201,
        &json!({ "Id": created.id, "Warning": "" }),
    )
}

/// `DELETE /networks/{id}`: 204; 409 while containers are on it, 403 for a predefined one.
pub fn remove(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    networking::cli::remove(&service.root, key).map_err(|e| api_error(&e))?;
    super::empty(conn, request, 204)
}

/// `GET /networks/{id}`: by full id, name, or unique id prefix; 404 when none matches.
pub fn inspect(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let network = store::inspect(&service.root, key).map_err(|e| {
        let status = match &e {
            StoreError::NotFound { .. } => 404,
            StoreError::Ambiguous { .. } => 400,
            _ => 500,
        };
        ApiError::new(status, e.to_string())
    })?;
    let mut items = network_json(&[network])?;
    let one = items.pop().unwrap_or(Value::Null);
    super::json(conn, request, 200, &one)
}

/// A failure of connect or disconnect: the container's or the network's typed error decides
/// the status (404 for either missing), else 500.
fn endpoint_error(error: &anyhow::Error) -> ApiError {
    let on_record = error
        .chain()
        .any(|cause| cause.is::<namespaces::records::RecordError>());
    if on_record {
        ApiError::from_anyhow(error, 500)
    } else {
        api_error(error)
    }
}

fn root_args(service: &Service) -> namespaces::RootArgs {
    namespaces::RootArgs {
        root: service.root.clone(),
    }
}

// ANCHOR: connect
/// `POST /networks/{id}/connect` (`{"Container": ..., "EndpointConfig": {"Aliases": [...],
/// "IPAMConfig": {"IPv4Address": ...}}}`): `skiff network connect --alias ... --ip ...`.
pub fn connect(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::new(400, format!("bad network connect body: {e}")))?;
    let container = body["Container"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::new(400, "give the container: {\"Container\": ...}"))?;
    let endpoint = &body["EndpointConfig"];
    let args = crate::connect::ConnectArgs {
        root: root_args(service),
        ip: endpoint["IPAMConfig"]["IPv4Address"]
            .as_str()
            .filter(|ip| !ip.is_empty())
            .map(str::to_string),
        alias: super::create::strings(&endpoint["Aliases"]),
        network: key.to_string(),
        container: container.to_string(),
    };
    crate::connect::connect(&args).map_err(|e| endpoint_error(&e))?;
    super::empty(conn, request, 200)
}
// ANCHOR_END: connect

/// `POST /networks/{id}/disconnect` (`{"Container": ..., "Force": bool}`).
pub fn disconnect(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::new(400, format!("bad network disconnect body: {e}")))?;
    let container = body["Container"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::new(400, "give the container: {\"Container\": ...}"))?;
    let args = crate::connect::DisconnectArgs {
        root: root_args(service),
        force: body["Force"].as_bool().unwrap_or(false),
        network: key.to_string(),
        container: container.to_string(),
    };
    crate::connect::disconnect(&args).map_err(|e| endpoint_error(&e))?;
    super::empty(conn, request, 200)
}

/// `POST /networks/prune`: `network prune` (every network no container is on, their bridges
/// with them). Its `until` and `label` filters are not served: 400 rather than a prune wider
/// than asked.
pub fn prune(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let flags = super::containers::filter_flags(request.param("filters"))?;
    if let Some(flag) = flags.first() {
        return Err(ApiError::new(
            400,
            format!("network prune's filters are not served yet ({flag}): prune without them"),
        ));
    }
    let pruned = {
        let _host = store::host_lock().map_err(|e| api_error(&e.into()))?;
        store::prune(&service.root).map_err(|e| api_error(&e.into()))?
    };
    for network in &pruned {
        if let Err(e) = networking::feature::remove_bridge(network) {
            eprintln!("skiff: warning: {e}");
        }
    }
    let names: Vec<&str> = pruned.iter().map(|n| n.name.as_str()).collect();
    super::json(conn, request, 200, &json!({ "NetworksDeleted": names }))
}
