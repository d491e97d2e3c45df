//! The image endpoints that change the store: `images/{name}/tag`, `DELETE images/{name}` and
//! `images/prune` — what `docker tag`, `docker rmi` and `docker image prune` send. The work is
//! stage 04's ([`images::ops::tag`], [`images::ops::remove`], [`images::ops::prune`]); this
//! module gives it the Engine API's shapes (v1.41: ImageDeleteResponseItem,
//! ImagePruneResponse) and Docker's statuses: 404 no such image, 409 a conflict (an image a
//! container uses, or one named by several repositories without `force`), 400 a bad name.

use std::sync::Mutex;

use images::archive::SaveFormat;
use images::ops::Removed;
use images::registry::auth::Credentials;
use images::registry::credentials::AuthEntry;
use images::registry::{Options, Platform, Progress, RegistryError};
use images::{Digest, ImageError, ImageRef, Store};
use serde_json::{Value, json};

use super::http::{self, Conn, Request};
use super::{ApiError, Next, Reply, Service};

/// Stage 04's failure with Docker's status.
fn api_error(error: ImageError) -> ApiError {
    let message = error.to_string();
    api_error_ref(&error, message)
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

// ANCHOR: json_stream
/// A streamed JSON answer, as Docker's pull, push, load and build send one: a chunked body of
/// JSON objects, one a line (`{"status":...}`, `{"stream":...}`). Its headers go with the first
/// line, so a request that fails before it has anything to say gets a plain error with its
/// status; one that fails later can only say so in the stream, as
/// `{"errorDetail":{"message":...},"error":...}`, which the clients print and exit 1 on.
pub struct JsonStream<'c> {
    conn: &'c mut Conn,
    started: bool,
    /// The client left: stop writing, keep working (a pull finishes as `docker pull` would).
    gone: bool,
}

impl<'c> JsonStream<'c> {
    /// A stream not yet started.
    pub fn new(conn: &'c mut Conn) -> JsonStream<'c> {
        JsonStream {
            conn,
            started: false,
            gone: false,
        }
    }

    /// Sends one line.
    pub fn send(&mut self, value: &Value) {
        if self.gone {
            return;
        }
        let mut line = value.to_string().into_bytes();
        line.push(b'\n');
        let sent = if self.started {
            http::chunk(self.conn, &line)
        } else {
            self.started = true;
            http::start_chunked(self.conn, 200, "application/json")
                .and_then(|()| http::chunk(self.conn, &line))
        };
        self.gone = sent.is_err();
    }

    /// Ends the answer: `result`'s error as the last line, or as the whole answer when
    /// nothing was sent yet.
    pub fn finish(mut self, result: Result<(), ApiError>) -> Reply {
        match result {
            Err(e) if !self.started => Err(e),
            Err(e) => {
                self.send(&json!({
                    "errorDetail": { "message": e.message },
                    "error": e.message,
                }));
                self.end()
            }
            Ok(()) => {
                if !self.started {
                    self.started = true;
                    http::start_chunked(self.conn, 200, "application/json")?;
                }
                self.end()
            }
        }
    }

    fn end(self) -> Reply {
        if self.gone {
            return Ok(Next::Close);
        }
        http::end_chunked(self.conn)?;
        Ok(Next::KeepAlive)
    }
}
// ANCHOR_END: json_stream

/// Stage 04's [`Progress`] as Docker's JSON progress lines: `{"status":"Pulling fs layer",
/// "progressDetail":{},"id":"4f4fb700ef54"}`, and while bytes move
/// `{"status":"Downloading","progressDetail":{"current":N,"total":M},"id":...}`.
struct JsonProgress<'s, 'c> {
    stream: Mutex<&'s mut JsonStream<'c>>,
    /// What moving bytes are called: `Downloading` (pull) or `Pushing` (push).
    moving: &'static str,
}

impl Progress for JsonProgress<'_, '_> {
    fn line(&self, text: &str) {
        // `latest: Pulling from app` is a status about `latest`, as Docker sends it.
        let value = match text.split_once(": Pulling from ") {
            Some((tag, repo)) => json!({ "status": format!("Pulling from {repo}"), "id": tag }),
            None => json!({ "status": text }),
        };
        if let Ok(mut stream) = self.stream.lock() {
            stream.send(&value);
        }
    }

    fn layer(&self, digest: &Digest, status: &str, _last: bool) {
        let value = json!({ "status": status, "progressDetail": {}, "id": digest.short() });
        if let Ok(mut stream) = self.stream.lock() {
            stream.send(&value);
        }
    }

    fn bytes(&self, digest: &Digest, done: u64, total: u64) {
        let value = json!({
            "status": self.moving,
            "progressDetail": { "current": done, "total": total },
            "id": digest.short(),
        });
        if let Ok(mut stream) = self.stream.lock() {
            stream.send(&value);
        }
    }
}

/// A registry's failure with Docker's status: 404 for what it does not have, 401 for
/// credentials it refused, 400 for bad input, 500 the rest.
fn registry_error(error: RegistryError) -> ApiError {
    let status = match &error {
        RegistryError::ManifestUnknown { .. } | RegistryError::Denied { .. } => 404,
        RegistryError::Unauthorized { .. } => 401,
        RegistryError::Invalid(_) => 400,
        RegistryError::Image(e) => return api_error_ref(e, error.to_string()),
        _ => 500,
    };
    ApiError::new(status, error.to_string())
}

/// The status of stage 04's `error`, with `message` (a wrapping error's words).
fn api_error_ref(error: &ImageError, message: String) -> ApiError {
    let status = match error {
        ImageError::NoSuchImage(_) => 404,
        ImageError::Conflict(_) => 409,
        ImageError::Reference { .. } | ImageError::Ambiguous(_) => 400,
        _ => 500,
    };
    ApiError::new(status, message)
}

/// The registry options of the CLI (its config file: credentials, insecure registries), with
/// the credentials of an `X-Registry-Auth` header when the client sent some.
fn registry_options(request: &Request, registry: &str) -> Result<Options, ApiError> {
    let mut options = Options::load(None).map_err(registry_error)?;
    if let Some(credentials) = request.header("x-registry-auth").and_then(decode_auth) {
        let (key, _) =
            images::registry::credentials::server_key(registry).map_err(registry_error)?;
        options.config.auths.insert(
            key,
            AuthEntry {
                auth: credentials.encode(),
                rest: serde_json::Map::new(),
            },
        );
    }
    Ok(options)
}

/// `X-Registry-Auth`: base64url of `{"username":...,"password":...,"serveraddress":...}`
/// (standard base64 from some clients). Empty or `{}` means none.
fn decode_auth(header: &str) -> Option<Credentials> {
    use base64::Engine;
    let header = header.trim();
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(header)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(header))
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let username = value.get("username")?.as_str()?.to_string();
    let password = value.get("password")?.as_str()?.to_string();
    (!username.is_empty()).then_some(Credentials { username, password })
}

/// The store, made if there is none yet (a pull or load into a new store).
fn store_or_new(service: &Service) -> Result<Store, ApiError> {
    Store::open(&service.root).map_err(api_error)
}

// ANCHOR: pull
/// `POST /images/create?fromImage=NAME&tag=TAG`: `docker pull`, stage 04's pull reporting as
/// JSON progress lines. With `fromSrc=-` instead, `docker import`: the body is a rootfs tar.
pub fn create(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    if let Some(source) = request.param("fromSrc") {
        return import(service, conn, request, source);
    }
    let image = request
        .param("fromImage")
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::new(400, "fromImage is empty: name the image to pull"))?;
    let name = match request.param("tag").filter(|t| !t.is_empty()) {
        Some(tag) if tag.starts_with("sha256:") => format!("{image}@{tag}"),
        Some(tag) => format!("{image}:{tag}"),
        None => image.to_string(),
    };
    let reference = ImageRef::parse(&name).map_err(api_error)?;
    let mut options = registry_options(request, reference.registry())?;
    if let Some(platform) = request.param("platform").filter(|p| !p.is_empty()) {
        options.platform = Some(Platform::parse(platform).map_err(registry_error)?);
    }
    let store = store_or_new(service)?;
    let mut stream = JsonStream::new(conn);
    let result = {
        let progress = JsonProgress {
            stream: Mutex::new(&mut stream),
            moving: "Downloading",
        };
        images::registry::pull(&store, &reference, &options, &progress).map_err(registry_error)
    };
    stream.finish(result.map(|_| ()))
}
// ANCHOR_END: pull

/// `POST /images/create?fromSrc=-&repo=NAME&tag=TAG`: a rootfs tarball in the body becomes an
/// image (stage 04's import); the answer is its id as a status line.
fn import(service: &Service, conn: &mut Conn, request: &Request, source: &str) -> Reply {
    if source != "-" {
        return Err(ApiError::new(
            400,
            format!(
                "fromSrc={source}: skiff imports from the request body only (fromSrc=-); it fetches no URL"
            ),
        ));
    }
    let tag = match request.param("repo").filter(|r| !r.is_empty()) {
        Some(repo) => {
            let tag = request
                .param("tag")
                .filter(|t| !t.is_empty())
                .unwrap_or("latest");
            Some(ImageRef::parse_tag(&format!("{repo}:{tag}")).map_err(api_error)?)
        }
        None => None,
    };
    let store = store_or_new(service)?;
    let imported = images::import::import(&store, request.body.as_slice(), "-", tag.as_ref())
        .map_err(api_error)?;
    let mut stream = JsonStream::new(conn);
    stream.send(&json!({ "status": imported.id.as_str() }));
    stream.finish(Ok(()))
}

/// `POST /images/{name}/push?tag=TAG`: `docker push`, with the client's `X-Registry-Auth`.
pub fn push(service: &Service, conn: &mut Conn, request: &Request, name: &str) -> Reply {
    let name = match request.param("tag").filter(|t| !t.is_empty()) {
        Some(tag) => format!("{name}:{tag}"),
        None => name.to_string(),
    };
    let reference = ImageRef::parse(&name).map_err(api_error)?;
    let options = registry_options(request, reference.registry())?;
    let store = store(service, &name)?;
    store
        .resolve(&reference.full())
        .or_else(|_| store.resolve(&name))
        .map_err(|_| ApiError::new(404, format!("No such image: {name}")))?;
    let mut stream = JsonStream::new(conn);
    let result = {
        let progress = JsonProgress {
            stream: Mutex::new(&mut stream),
            moving: "Pushing",
        };
        images::registry::push(&store, &reference, &options, &progress).map_err(registry_error)
    };
    stream.finish(result.map(|_| ()))
}

/// `POST /auth` with `{"username","password","serveraddress"}`: the credentials are checked
/// against the registry (its ping, then its challenge's flow), as `login` does, but kept by
/// the client, not here (dockerd keeps none either).
pub fn auth(conn: &mut Conn, request: &Request) -> Reply {
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::new(400, format!("bad auth config: {e}")))?;
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (username, password) = (text("username"), text("password"));
    if username.is_empty() || password.is_empty() {
        return Err(ApiError::new(400, "username and password are required"));
    }
    let server = text("serveraddress");
    let server = if server.is_empty() {
        images::reference::DEFAULT_REGISTRY.to_string()
    } else {
        server
    };
    let (_, registry) =
        images::registry::credentials::server_key(&server).map_err(registry_error)?;
    let options = Options::load(None).map_err(registry_error)?;
    let credentials = Credentials { username, password };
    images::registry::Client::connect_with(&registry, Vec::new(), Some(credentials), &options)
        .map_err(registry_error)?;
    super::json(
        conn,
        request,
        200,
        &json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
    )
}

/// `GET /images/{name}/get` and `GET /images/get?names=A&names=B`: `docker save`, a
/// docker-archive tar streamed as it is read from the file stage 04 wrote.
pub fn get(service: &Service, conn: &mut Conn, names: &[&str]) -> Reply {
    let Some(first) = names.first() else {
        return Err(ApiError::new(400, "no image named: give names=IMAGE"));
    };
    let store = store(service, first)?;
    let temp = store.temp_path("api-save");
    let saved = images::archive::save(&store, names, SaveFormat::DockerArchive, &temp);
    let result = saved.map_err(api_error).and_then(|()| {
        let mut file = std::fs::File::open(&temp)?;
        http::start_chunked(conn, 200, "application/x-tar")?;
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let n = std::io::Read::read(&mut file, &mut buffer)?;
            if n == 0 {
                break;
            }
            http::chunk(conn, &buffer[..n])?;
        }
        http::end_chunked(conn)?;
        Ok(Next::KeepAlive)
    });
    let _ = std::fs::remove_file(&temp);
    result
}

/// `POST /images/load?quiet=1`: `docker load`, the body a docker-archive or OCI tar; what
/// was loaded comes back as `{"stream":"Loaded image: NAME\n"}` lines.
pub fn load(
    service: &Service,
    conn: &mut Conn,
    request: &Request,
    reader: &mut http::Reader,
) -> Reply {
    let store = store_or_new(service)?;
    let temp = store.temp_path("api-load");
    // The archive goes to a file as it arrives: an image is as big as it is, memory is not.
    let in_step = match http::body_into_file(request, reader, conn, &temp) {
        Ok(in_step) => in_step,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            let message = format!("read the image archive from the request: {e}");
            return super::error(conn, request, 400, &message)
                .map(|()| Next::Close)
                .map_err(ApiError::from);
        }
    };
    let loaded = images::archive::load(&store, &temp);
    let _ = std::fs::remove_file(&temp);
    let loaded = loaded.map_err(|e| match e {
        ImageError::NoSuchImage(_) | ImageError::Conflict(_) => api_error(e),
        // A tar that is not an image archive is the client's mistake.
        e => ApiError::new(400, e.to_string()),
    })?;
    let mut stream = JsonStream::new(conn);
    for line in loaded.messages() {
        stream.send(&json!({ "stream": format!("{line}\n") }));
    }
    let reply = stream.finish(Ok(()));
    if in_step {
        reply
    } else {
        reply.map(|_| Next::Close)
    }
}

/// `GET /images/{name}/history`: the steps that made it, newest first (v1.41's HistoryResponseItem).
pub fn history(service: &Service, conn: &mut Conn, request: &Request, name: &str) -> Reply {
    let store = store(service, name)?;
    let rows = images::ops::history(&store, name).map_err(api_error)?;
    let id = store.resolve(name).map_err(api_error)?;
    let tags: Vec<String> = images::ops::list(&store, true)
        .map_err(api_error)?
        .into_iter()
        .filter(|row| row.id == id)
        .filter(|row| row.tag != "<none>")
        .map(|row| format!("{}:{}", row.repository, row.tag))
        .collect();
    let items: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(n, row)| {
            let created = row
                .created
                .as_deref()
                .map_or(0, |c| super::engine::unix_seconds(Some(c)));
            json!({
                "Id": row.image.as_ref().map_or("<missing>".to_string(), |d| d.as_str().to_string()),
                "Created": created,
                "CreatedBy": row.created_by,
                "Tags": if n == 0 { Value::from(tags.clone()) } else { Value::Null },
                "Size": row.size,
                "Comment": row.comment,
            })
        })
        .collect();
    super::json(conn, request, 200, &items)
}

/// `GET /images/search?term=T&limit=N`: stage 04's search, which reads a registry's catalog
/// when the term names one (`localhost:5000/app`) and asks Docker Hub's index otherwise —
/// which, with no traffic leaving this machine, fails as Docker's does for an unreachable
/// index (500).
pub fn search(conn: &mut Conn, request: &Request) -> Reply {
    let term = request
        .param("term")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::new(400, "term is empty: give the term to search for"))?;
    let limit = match request.param("limit").filter(|l| !l.is_empty()) {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| {
                ApiError::new(400, format!("limit {l} is outside the range of [1, 100]"))
            })?,
        None => 25,
    };
    let options = Options::load(None).map_err(registry_error)?;
    let results = images::registry::search(term, limit, &options).map_err(registry_error)?;
    let items: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "description": r.description,
                "star_count": r.stars,
                "is_official": r.official,
                "is_automated": false,
            })
        })
        .collect();
    super::json(conn, request, 200, &items)
}

/// `GET /images/get?names=A&names=B`: several images in one archive.
pub fn get_all(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let names: Vec<&str> = request
        .query
        .iter()
        .filter(|(k, v)| k == "names" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    get(service, conn, &names)
}

/// `POST /commit?container=C&repo=R&tag=T&comment=M&author=A&changes=...&pause=1`: what
/// `skiff commit` does ([`crate::commit::commit`]); 201 with the new image's id.
pub fn commit(service: &Service, conn: &mut Conn, request: &Request) -> Reply {
    let container = request
        .param("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::new(400, "container is empty: name the container to commit"))?;
    let tag = request.param("tag").filter(|t| !t.is_empty());
    let reference = request
        .param("repo")
        .filter(|r| !r.is_empty())
        .map(|repo| tag.map_or_else(|| repo.to_string(), |tag| format!("{repo}:{tag}")));
    let args = crate::commit::CommitArgs {
        root: namespaces::RootArgs {
            root: service.root.clone(),
        },
        author: request
            .param("author")
            .filter(|a| !a.is_empty())
            .map(String::from),
        change: request
            .query
            .iter()
            .filter(|(k, v)| k == "changes" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect(),
        message: request
            .param("comment")
            .filter(|c| !c.is_empty())
            .map(String::from),
        pause: request.param("pause").is_none_or(|_| request.flag("pause")),
        container: container.to_string(),
        reference,
    };
    let id = crate::commit::commit(&args).map_err(|e| {
        let api = ApiError::from_anyhow(&e, 500);
        match e.chain().find_map(|c| c.downcast_ref::<ImageError>()) {
            Some(ImageError::Reference { .. }) => ApiError::new(400, api.message),
            _ => api,
        }
    })?;
    super::json(conn, request, 201, &json!({ "Id": id.as_str() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_auth_is_base64url_json_and_empty_means_none() {
        use base64::Engine;
        let json = r#"{"username":"u?>","password":"p~~","serveraddress":"127.0.0.1:5000"}"#;
        for engine in [
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::STANDARD,
        ] {
            let credentials = decode_auth(&engine.encode(json)).expect("credentials");
            assert_eq!(
                (credentials.username.as_str(), credentials.password.as_str()),
                ("u?>", "p~~")
            );
        }
        let empty = base64::engine::general_purpose::URL_SAFE.encode("{}");
        assert!(decode_auth(&empty).is_none());
        assert!(decode_auth("not base64!").is_none());
    }

    #[test]
    fn registry_failures_get_dockers_statuses() {
        let unknown = RegistryError::ManifestUnknown {
            reference: "x:1".into(),
            message: "manifest unknown".into(),
        };
        assert_eq!(registry_error(unknown).status, 404);
        let refused = RegistryError::Unauthorized {
            message: "no".into(),
        };
        assert_eq!(registry_error(refused).status, 401);
        let missing = RegistryError::Image(ImageError::NoSuchImage("x".into()));
        let error = registry_error(missing);
        assert_eq!(
            (error.status, error.message.as_str()),
            (404, "No such image: x")
        );
    }
}
