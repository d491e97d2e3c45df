//! The volume endpoints: `volumes` (list, with filters), `volumes/create`, `volumes/{name}`
//! (inspect), `DELETE volumes/{name}` and `volumes/prune` — what `docker volume …` and
//! docker-compose's named volumes ask for. The work is stage 06's ([`volumes::store`],
//! [`volumes::cli::matches`]); this module gives it the Engine API's shapes (v1.41: Volume,
//! VolumeListResponse, VolumePruneResponse) and Docker's statuses: 404 for a volume that is not
//! there, 409 for one a container uses.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use volumes::store::{self, StoreError, Volume};

use super::http::{Conn, Request};
use super::{ApiError, Reply, Service};

/// The Engine API's Volume object.
pub fn volume_json(volume: &Volume) -> Value {
    json!({
        "CreatedAt": volume.created,
        "Driver": "local",
        "Labels": volume.labels,
        "Mountpoint": volume.mountpoint,
        "Name": volume.name,
        "Options": {},
        "Scope": "local",
    })
}

/// A volume store's failure with Docker's status: 404 no such volume, 409 in use, 400 bad name.
fn api_error(error: StoreError) -> ApiError {
    let status = match &error {
        StoreError::NoSuchVolume(_) => 404,
        StoreError::InUse { .. } => 409,
        StoreError::Name(_) => 400,
        StoreError::Io { .. } | StoreError::Corrupt { .. } => 500,
    };
    ApiError::new(status, error.to_string())
}

/// `GET /volumes?filters={...}`: `volume ls`'s selection (`name`, `label`, `dangling`,
/// `driver`).
pub fn list(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let flags = super::containers::filter_flags(request.param("filters"))?;
    let volumes = volumes::cli::filtered(&service.root, &flags)
        .map_err(|e| ApiError::from_anyhow(&e, 400))?;
    let items: Vec<Value> = volumes.iter().map(volume_json).collect();
    super::json(
        conn,
        request,
        200,
        &json!({ "Volumes": items, "Warnings": [] }),
    )
}

/// `POST /volumes/create`'s body (VolumeCreateOptions).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    name: Option<String>,
    driver: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
}

// ANCHOR: create
/// `POST /volumes/create`: a new volume, or the existing one of that name, 201 either way (as
/// Docker's daemon does).
pub fn create(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let body: CreateBody = if request.body.is_empty() {
        CreateBody::default()
    } else {
        serde_json::from_slice(&request.body)
            .map_err(|e| ApiError::new(400, format!("bad volume create body: {e}")))?
    };
    if let Some(driver) = body
        .driver
        .as_deref()
        .filter(|d| !d.is_empty() && *d != "local")
    {
        return Err(ApiError::new(
            400,
            format!("volume driver {driver:?} is not supported: skiff has only \"local\""),
        ));
    }
    if body.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(ApiError::new(
            400,
            "volume driver options are not supported: create the volume without them",
        ));
    }
    let name = body.name.as_deref().filter(|n| !n.is_empty());
    let volume =
        store::create(&service.root, name, body.labels.unwrap_or_default()).map_err(api_error)?;
    super::json(conn, request, 201, &volume_json(&volume))
}
// ANCHOR_END: create

/// `GET /volumes/{name}`.
pub fn inspect(service: &Service, conn: &mut Conn, request: &Request, name: &str) -> Reply {
    let volume = store::inspect(&service.root, name).map_err(api_error)?;
    super::json(conn, request, 200, &volume_json(&volume))
}

/// `DELETE /volumes/{name}?force=1`: 204; 409 while a container uses it, unless forced.
pub fn remove(service: &Service, conn: &mut Conn, request: &Request, name: &str) -> Reply {
    store::remove(&service.root, name, request.flag("force")).map_err(api_error)?;
    super::empty(conn, request, 204)
}

/// `POST /volumes/prune`: removes every volume no container uses. That is API 1.41's rule
/// (named volumes too); Docker 23.0 (API 1.42) keeps named ones unless the `all` filter is set.
pub fn prune(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let (removed, freed) = store::prune(&service.root, true).map_err(api_error)?;
    super::json(
        conn,
        request,
        200,
        &json!({ "VolumesDeleted": removed, "SpaceReclaimed": freed }),
    )
}
