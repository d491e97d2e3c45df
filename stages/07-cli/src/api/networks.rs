//! The network endpoints: `GET /networks` (list, with filters), `GET /networks/{id}`
//! (inspect), `POST /networks/create` and `DELETE /networks/{id}` — what `docker network
//! ls/inspect/create/rm` ask for. The networks are stage 05's ([`networking::store`], [`networking::cli::filtered`]),
//! in the Engine API's Network shape, which is the one `network inspect` prints (v1.41:
//! Name, Id, Created, Scope, Driver, EnableIPv6, IPAM, Internal, Containers, Options, Labels;
//! and 1.47's EnableIPv4, which older clients pass over).
//! `connect` and `disconnect` are `skiff network connect/disconnect` ([`crate::connect`]), with
//! the body's `EndpointConfig` (`Aliases`, `IPAMConfig.IPv4Address`) as their flags; `prune`
//! is `network prune`.

use networking::cli::NetworkCommand;
use networking::store::{self, StoreError};
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

// ANCHOR: create
/// `POST /networks/create` (NetworkCreateRequest: `Name`, `Driver`, `Internal`, `EnableIPv6`,
/// `IPAM.Config[]` with `Subnet`, `Gateway`, `IPRange`, `AuxiliaryAddresses`, `Options`,
/// `Labels`): `skiff network create` with those as its flags, so every driver skiff has
/// (bridge, macvlan, ipvlan, and overlay with a cluster store) and its checks; 201 with the
/// id, 409 when the name is taken, 400 for what the command refuses.
pub fn create(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::new(400, format!("bad network create body: {e}")))?;
    let name = body["Name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::new(400, "give the network a name: {\"Name\": ...}"))?;
    let pairs = |value: &Value| -> Vec<String> {
        value.as_object().map_or_else(Vec::new, |map| {
            map.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
    };
    let configs = body["IPAM"]["Config"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let text = |config: &Value, key: &str| {
        config[key]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let command = NetworkCommand::Create {
        root: namespaces::RootArgs {
            root: service.root.clone(),
        },
        cluster: networking::overlay_cli::ClusterArgs::default(),
        driver: body["Driver"]
            .as_str()
            .filter(|d| !d.is_empty())
            .unwrap_or("bridge")
            .to_string(),
        subnet: configs.iter().filter_map(|c| text(c, "Subnet")).collect(),
        ipv6: body["EnableIPv6"].as_bool().unwrap_or(false),
        gateway: configs
            .iter()
            .filter_map(|c| text(c, "Gateway"))
            .find(|g| !g.contains(':')),
        ip_range: configs.iter().find_map(|c| text(c, "IPRange")),
        aux_address: configs
            .iter()
            .flat_map(|c| pairs(&c["AuxiliaryAddresses"]))
            .collect(),
        opt: pairs(&body["Options"]),
        internal: body["Internal"].as_bool().unwrap_or(false),
        label: pairs(&body["Labels"]),
        name: name.to_string(),
    };
    let id = command.create_network().map_err(|e| {
        let typed = e
            .chain()
            .any(|cause| cause.downcast_ref::<StoreError>().is_some());
        if typed {
            api_error(&e)
        } else {
            ApiError::new(400, chroot::cli::one_line(&e))
        }
    })?;
    super::json(conn, request, 201, &json!({ "Id": id, "Warning": "" }))
}
// ANCHOR_END: create

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
        // The service's own cluster store, as the CLI reads it from its environment.
        cluster: networking::overlay_cli::ClusterArgs {
            cluster_store: std::env::var("SKIFF_CLUSTER_STORE").ok(),
            advertise_addr: std::env::var("SKIFF_ADVERTISE_ADDR").ok(),
        },
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
/// with them). With `label` filters, only the unused networks `network ls` would list with
/// them, each removed as `network rm` removes it; `until` and `label!` are not served: 400
/// rather than a prune wider than asked.
pub fn prune(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let flags = super::containers::filter_flags(request.param("filters"))?;
    if let Some(flag) = flags.iter().find(|f| !f.starts_with("label=")) {
        return Err(ApiError::new(
            400,
            format!("network prune's filter {flag:?} is not served: use label=KEY[=VALUE]"),
        ));
    }
    if !flags.is_empty() {
        let candidates = networking::cli::filtered(&service.root, &flags)
            .map_err(|e| ApiError::from_anyhow(&e, 400))?;
        let mut names = Vec::new();
        for network in candidates {
            if network.is_predefined() || !network.endpoints.is_empty() {
                continue;
            }
            // A container may have joined meanwhile: then it stays, as in Docker.
            if networking::cli::remove(&service.root, &network.id).is_ok() {
                names.push(network.name);
            }
        }
        return super::json(conn, request, 200, &json!({ "NetworksDeleted": names }));
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
