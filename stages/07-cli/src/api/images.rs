//! The image endpoints that change the store: `images/{name}/tag`, `DELETE images/{name}` and
//! `images/prune` — what `docker tag`, `docker rmi` and `docker image prune` send. The work is
//! stage 04's ([`images::ops::tag`], [`images::ops::remove`], [`images::ops::prune`]); this
//! module gives it the Engine API's shapes (v1.41: ImageDeleteResponseItem,
//! ImagePruneResponse) and Docker's statuses: 404 no such image, 409 a conflict (an image a
//! container uses, or one named by several repositories without `force`), 400 a bad name.

use images::ops::Removed;
use images::{ImageError, Store};
use serde_json::{Value, json};

use super::http::{Conn, Request};
use super::{ApiError, Reply, Service};

/// Stage 04's failure with Docker's status.
fn api_error(error: ImageError) -> ApiError {
    let status = match &error {
        ImageError::NoSuchImage(_) => 404,
        ImageError::Conflict(_) => 409,
        ImageError::Reference { .. } | ImageError::Ambiguous(_) => 400,
        _ => 500,
    };
    ApiError::new(status, error.to_string())
}

/// The image store, or 404 for `name` when there is none yet.
fn store(service: &Service, name: &str) -> Result<Store, ApiError> {
    if !service.root.join("images").is_dir() {
        return Err(ApiError::new(404, format!("No such image: {name}")));
    }
    Store::open(&service.root).map_err(api_error)
}

/// What was untagged and deleted, as the API lists it.
fn removed_json(removed: &[Removed]) -> Vec<Value> {
    removed
        .iter()
        .map(|r| match r {
            Removed::Untagged(tag) => json!({ "Untagged": tag }),
            Removed::Deleted(id) => json!({ "Deleted": id.as_str() }),
        })
        .collect()
}

/// `POST /images/{name}/tag?repo=REPO&tag=TAG`: 201; the tag is `latest` when not given.
pub fn tag(service: &Service, conn: &mut Conn, request: &Request, name: &str) -> Reply {
    let repo = request
        .param("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::new(400, "repo is empty: name the repository to tag into"))?;
    let tag = request
        .param("tag")
        .filter(|t| !t.is_empty())
        .unwrap_or("latest");
    let store = store(service, name)?;
    images::ops::tag(&store, name, &format!("{repo}:{tag}")).map_err(api_error)?;
    super::empty(conn, request, 201)
}

/// `DELETE /images/{name}?force=1`: what went, untags first.
pub fn remove(service: &Service, conn: &mut Conn, request: &Request, name: &str) -> Reply {
    let store = store(service, name)?;
    let removed = images::ops::remove(&store, name, request.flag("force")).map_err(api_error)?;
    super::json(conn, request, 200, &removed_json(&removed))
}

/// `POST /images/prune?filters={"dangling":["false"]}`: the dangling images, or with
/// `dangling=false` every image no container uses (`image prune -a`).
pub fn prune(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let flags = super::containers::filter_flags(request.param("filters"))?;
    let mut all = false;
    for flag in &flags {
        match flag.split_once('=') {
            Some(("dangling", "false" | "0")) => all = true,
            Some(("dangling", "true" | "1")) => all = false,
            _ => {
                return Err(ApiError::new(
                    400,
                    format!("invalid filter '{flag}': skiff prunes by dangling only"),
                ));
            }
        }
    }
    let removed = if service.root.join("images").is_dir() {
        let store = Store::open(&service.root).map_err(api_error)?;
        images::ops::prune(&store, all).map_err(api_error)?
    } else {
        Vec::new()
    };
    super::json(
        conn,
        request,
        200,
        &json!({ "ImagesDeleted": removed_json(&removed), "SpaceReclaimed": 0 }),
    )
}
