//! The network endpoints, read side: `GET /networks` (list, with filters) and
//! `GET /networks/{id}` (inspect) — what `docker network ls` and `docker network inspect` ask
//! for. The networks are stage 05's ([`networking::store`], [`networking::cli::filtered`]),
//! in the Engine API's Network shape, which is the one `network inspect` prints (v1.41:
//! Name, Id, Created, Scope, Driver, EnableIPv6, IPAM, Internal, Containers, Options, Labels).
//! Creating, removing and connecting through the API are still to come.

use networking::store::{self, StoreError};
use serde_json::Value;

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
