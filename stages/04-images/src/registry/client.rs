//! One registry over HTTP(S): the ping, authenticated requests, redirects, errors.
//!
//! A conversation with a registry starts as Docker's does, with `GET /v2/` (the *ping*): `200`
//! means no credentials are needed, `401` comes with the challenge that says how to get them
//! ([`super::auth`]). The client gets them once, before any real request, so a request with a
//! body that cannot be sent twice (a layer upload) is never refused for want of a token.
//!
//! HTTPS with a verified certificate is the rule. A registry that may use plain HTTP
//! ([`super::allows_http`]) is tried over HTTPS without verification first, then over HTTP, as
//! Docker does.
//!
//! **Redirects** are followed here, not by the HTTP library: a registry often answers a blob
//! download with `307` to a storage service on another host (S3, a CDN) with a pre-signed URL.
//! The registry's token must not go there: it would let that host act on the registry as us. So
//! the `Authorization` header goes only to the registry's own origin (scheme, host and port).

use std::io::{self, Read};
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{Method, Request, Response, Uri};
use ureq::tls::TlsConfig;
use ureq::{Agent, Body, SendBody};

use super::auth::{Challenge, Credentials, fetch_token};
use super::{Options, RegistryError, Result, allows_http, api_host};
pub(crate) use crate::bounded::Exact;

/// The most redirects one request follows.
const MAX_REDIRECTS: usize = 5;
/// The largest error body read, for its message.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// A connection to one registry, authenticated for a set of scopes.
pub struct Client {
    agent: Agent,
    /// The registry as the user named it (`localhost:5000`, `docker.io`).
    registry: String,
    /// `https://host[:port]`, or `http://…`.
    base: String,
    origin: Origin,
    credentials: Option<Credentials>,
    /// What the token asks for: `repository:app:pull,push`…
    scopes: Vec<String>,
    /// The `Authorization` value for the registry's origin, once known.
    authorization: Mutex<Option<String>>,
    /// The config file, for hints in errors.
    config_path: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("base", &self.base)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// What a request sends.
pub(crate) enum Payload<'a> {
    /// Nothing.
    Empty,
    /// A small body (a manifest), with its content type. It can be sent again after a `401`.
    Bytes(&'a [u8], &'a str),
    /// A stream of a known length (a blob); it can be sent only once.
    Stream(&'a mut dyn Read, u64),
}

// ANCHOR: connect
impl Client {
    /// Connects to `registry` (as named in a reference: `localhost:5000`, `docker.io`): pings it
    /// and, when it asks for credentials, gets them for `scopes` (`repository:app:pull`). Stored
    /// credentials (from `login`) are used when there are some.
    pub fn connect(registry: &str, scopes: Vec<String>, options: &Options) -> Result<Client> {
        let credentials = options.config.credentials(registry);
        Client::connect_with(registry, scopes, credentials, options)
    }

    /// [`Client::connect`] with these credentials (`login` checks them this way).
    pub fn connect_with(
        registry: &str,
        scopes: Vec<String>,
        credentials: Option<Credentials>,
        options: &Options,
    ) -> Result<Client> {
        let host = api_host(registry);
        let plain_allowed = allows_http(registry, options);
        let schemes: &[&str] = if plain_allowed {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut last = None;
        for (i, scheme) in schemes.iter().enumerate() {
            let base = format!("{scheme}://{host}");
            let client = Client {
                agent: agent(!plain_allowed),
                registry: registry.to_string(),
                origin: Origin::of(&base).ok_or_else(|| {
                    RegistryError::Invalid(format!("invalid registry name {registry:?}"))
                })?,
                base,
                credentials: credentials.clone(),
                scopes: scopes.clone(),
                authorization: Mutex::new(None),
                config_path: options.config.path.display().to_string(),
            };
            match client.ping() {
                Ok(()) => return Ok(client),
                // Not HTTPS there? Try the next scheme (plain HTTP), if it is allowed.
                Err(e @ (RegistryError::Tls { .. } | RegistryError::Unreachable { .. }))
                    if i + 1 < schemes.len() =>
                {
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Invalid("no scheme to try".into())))
    }

    /// `GET /v2/`: is it a registry, and which credentials does it want? With credentials in
    /// hand, they are checked here: a wrong password fails now, not in the middle of a push.
    fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let response = self.send_once(&Method::GET, &url, &[], &mut Payload::Empty)?;
        match response.status().as_u16() {
            200 => Ok(()),
            401 => {
                let challenge = challenge_of(&response).ok_or_else(|| RegistryError::Protocol {
                    registry: self.registry.clone(),
                    what: "GET /v2/".into(),
                    reason: "it answered 401 with no WWW-Authenticate challenge skiff understands"
                        .into(),
                })?;
                self.authorize(&challenge)?;
                if self.credentials.is_some() {
                    let again = self.send_once(&Method::GET, &url, &[], &mut Payload::Empty)?;
                    if again.status().as_u16() == 401 {
                        return Err(RegistryError::Unauthorized {
                            message: "incorrect username or password".into(),
                        });
                    }
                }
                Ok(())
            }
            status => Err(RegistryError::Protocol {
                registry: self.registry.clone(),
                what: format!("GET {url}"),
                reason: format!(
                    "it answered {status}: it does not serve the registry API v2 there"
                ),
            }),
        }
    }

    /// Answers a challenge: fetches a token, or takes the Basic credentials. Returns whether the
    /// `Authorization` header changed (so a refused request is worth sending again).
    fn authorize(&self, challenge: &Challenge) -> Result<bool> {
        let value = match challenge {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut scopes = self.scopes.clone();
                if let Some(scope) = scope
                    && !scopes.contains(scope)
                {
                    scopes.push(scope.clone());
                }
                let token = fetch_token(
                    &self.agent,
                    realm,
                    service.as_deref(),
                    &scopes,
                    self.credentials.as_ref(),
                )?;
                format!("Bearer {token}")
            }
            Challenge::Basic { .. } => match &self.credentials {
                Some(credentials) => credentials.basic(),
                None => return Ok(false),
            },
        };
        let mut current = self
            .authorization
            .lock()
            .map_err(|_| RegistryError::Invalid("credentials lock poisoned".into()))?;
        let changed = current.as_deref() != Some(value.as_str());
        *current = Some(value);
        Ok(changed)
    }
}
// ANCHOR_END: connect

impl Client {
    /// The registry as named (`localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `https://host[:port]` or `http://…`: where the API is.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The URL of an API path (`/v2/…`); a whole URL (an upload `Location`) is kept.
    pub(crate) fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    // ANCHOR: request
    /// Sends one request. A `401` with a new challenge (a token that needs another scope, an
    /// expired one) gets one more try, unless the body was a stream that is already spent.
    pub(crate) fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        mut payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        let response = self.send_once(&method, url, headers, &mut payload)?;
        if response.status().as_u16() == 401
            && !matches!(payload, Payload::Stream(..))
            && Origin::of(url).as_ref() == Some(&self.origin)
            && let Some(challenge) = challenge_of(&response)
            && self.authorize(&challenge)?
        {
            return self.send_once(&method, url, headers, &mut payload);
        }
        Ok(response)
    }

    /// `GET` or `HEAD`, following redirects. The registry's `Authorization` goes only to the
    /// registry's own origin: a redirect to storage elsewhere is followed without it.
    pub(crate) fn follow(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response<Body>> {
        let mut url = self.url(path);
        for _ in 0..=MAX_REDIRECTS {
            let response = self.request(method.clone(), &url, headers, Payload::Empty)?;
            if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok(response);
            }
            let location =
                header(&response, "location").ok_or_else(|| RegistryError::Protocol {
                    registry: self.registry.clone(),
                    what: format!("{method} {url}"),
                    reason: "a redirect with no Location".into(),
                })?;
            url = resolve(&url, location).map_err(|reason| RegistryError::Protocol {
                registry: self.registry.clone(),
                what: format!("{method} {url}"),
                reason,
            })?;
        }
        Err(RegistryError::Protocol {
            registry: self.registry.clone(),
            what: format!("{method} {path}"),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
    // ANCHOR_END: request

    fn send_once(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: &mut Payload<'_>,
    ) -> Result<Response<Body>> {
        let mut builder = Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        // ANCHOR: same_origin
        if Origin::of(url).as_ref() == Some(&self.origin)
            && let Ok(guard) = self.authorization.lock()
            && let Some(value) = guard.as_deref()
        {
            builder = builder.header("Authorization", value);
        }
        // ANCHOR_END: same_origin
        let build_error = |e: ureq::http::Error| RegistryError::Protocol {
            registry: self.registry.clone(),
            what: format!("{method} {url}"),
            reason: format!("cannot build the request: {e}"),
        };
        let result = match payload {
            Payload::Empty => {
                if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
                    builder = builder.header("Content-Length", "0");
                }
                self.agent.run(builder.body(()).map_err(build_error)?)
            }
            Payload::Bytes(content, content_type) => {
                let mut bytes: &[u8] = content;
                let request = builder
                    .header("Content-Type", *content_type)
                    .header("Content-Length", bytes.len().to_string())
                    .body(SendBody::from_reader(&mut bytes))
                    .map_err(build_error)?;
                self.agent.run(request)
            }
            Payload::Stream(reader, size) => {
                let request = builder
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", size.to_string())
                    .body(SendBody::from_reader(*reader))
                    .map_err(build_error)?;
                self.agent.run(request)
            }
        };
        result.map_err(|e| {
            transport_error(
                &self.registry,
                url.starts_with("https"),
                &self.config_path,
                e,
            )
        })
    }

    /// The error for an answer that is not the one wanted: `401`/`403` are refusals (of
    /// `action` on repository `name`, when given), anything else is the registry's message.
    pub(crate) fn error_for(
        &self,
        mut response: Response<Body>,
        what: &str,
        access: Option<(&'static str, &str)>,
    ) -> RegistryError {
        let status = response.status().as_u16();
        let message = error_message(&mut response);
        match (status, access) {
            (401 | 403, Some((action, name))) => RegistryError::Denied {
                action,
                name: name.to_string(),
                registry: self.registry.clone(),
                message,
            },
            (401 | 403, None) => RegistryError::Unauthorized { message },
            _ => RegistryError::Protocol {
                registry: self.registry.clone(),
                what: what.to_string(),
                reason: format!("it answered {status}: {message}"),
            },
        }
    }
}

/// The agent: no automatic redirects (see the module doc), statuses as values rather than
/// errors, timeouts so that a silent peer does not hang a pull.
fn agent(verify_tls: bool) -> Agent {
    let tls = TlsConfig::builder()
        .disable_verification(!verify_tls)
        .build();
    Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        // A stream that stalls this long is dead: fail rather than hang.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .tls_config(tls)
        .build()
        .new_agent()
}

/// The scope a token needs to do `actions` on `repository` (`repository:app:pull,push`).
pub fn scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

/// A header's value, if present and text.
pub(crate) fn header<'r>(response: &'r Response<Body>, name: &str) -> Option<&'r str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The challenge of a `401`, Bearer preferred when several are offered.
fn challenge_of(response: &Response<Body>) -> Option<Challenge> {
    let challenges: Vec<Challenge> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(Challenge::parse)
        .collect();
    challenges
        .iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or(challenges.first())
        .cloned()
}

/// The registry's own words for an error: the first `message` of the spec's error body
/// (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`), or the status.
pub(crate) fn error_message(response: &mut Response<Body>) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ERROR_BODY)
        .read_to_vec()
        .unwrap_or_default();
    if let Ok(errors) = serde_json::from_slice::<Errors>(&body)
        && let Some(first) = errors.errors.first()
    {
        if !first.message.is_empty() {
            return first.message.clone();
        }
        return first.code.to_lowercase().replace('_', " ");
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if !text.is_empty() && text.len() < 200 && !text.contains('\n') {
        return text.to_string();
    }
    status
        .canonical_reason()
        .map_or_else(|| status.to_string(), |r| r.to_lowercase())
}

// ANCHOR: transport_error
/// What a failure to talk at all means, in words a user can act on.
pub(crate) fn transport_error(
    registry: &str,
    https: bool,
    config: &str,
    error: ureq::Error,
) -> RegistryError {
    let unreachable = |reason: String, hint| RegistryError::Unreachable {
        registry: registry.to_string(),
        reason,
        hint,
    };
    let tls = |reason: String| RegistryError::Tls {
        registry: registry.to_string(),
        reason,
        config: if config.is_empty() {
            "the config file".to_string()
        } else {
            config.to_string()
        },
    };
    match error {
        ureq::Error::Io(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => {
                unreachable("connection refused".into(), "is it running?")
            }
            io::ErrorKind::TimedOut => {
                unreachable("timed out".into(), "check its address and the network")
            }
            // A peer that does not speak TLS sends bytes rustls cannot parse, or hangs up.
            io::ErrorKind::InvalidData
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
                if https =>
            {
                tls(e.to_string())
            }
            _ => unreachable(e.to_string(), "check its address and the network"),
        },
        ureq::Error::HostNotFound => unreachable(
            "no such host".into(),
            "check the registry's name and this machine's DNS",
        ),
        ureq::Error::Timeout(what) => unreachable(
            format!("timed out ({what})"),
            "check its address and the network",
        ),
        ureq::Error::ConnectionFailed => unreachable(
            "the connection failed".into(),
            "check its address and the network",
        ),
        ureq::Error::Tls(reason) => tls(reason.to_string()),
        ureq::Error::Rustls(e) => tls(e.to_string()),
        ureq::Error::Pem(e) => tls(e.to_string()),
        other => RegistryError::Protocol {
            registry: registry.to_string(),
            what: "HTTP exchange".into(),
            reason: other.to_string(),
        },
    }
}
// ANCHOR_END: transport_error

// ANCHOR: origin
/// Where a URL points: scheme, host, port. Credentials are for one origin only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an absolute `http(s)` URL.
    pub(crate) fn of(url: &str) -> Option<Origin> {
        let uri: Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let authority = uri.authority()?;
        Some(Origin {
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
            scheme,
        })
    }

    /// `host:port`, for messages.
    pub(crate) fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}
// ANCHOR_END: origin

/// Resolves a `Location` header against the URL it answered (RFC 3986 §5, the cases registries
/// use: absolute, scheme-relative, absolute path, relative path).
pub(crate) fn resolve(base: &str, location: &str) -> std::result::Result<String, String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_string());
    }
    let uri: Uri = base
        .parse()
        .map_err(|e| format!("invalid URL {base:?}: {e}"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(format!("{base:?} is not an absolute URL"));
    };
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{location}"));
    }
    let path = uri.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!("{scheme}://{authority}{dir}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let registry = Origin::of("http://127.0.0.1:5000/v2/").unwrap();
        assert_eq!(
            Origin::of("http://127.0.0.1:5000/v2/x/blobs/y"),
            Some(registry.clone())
        );
        assert_ne!(
            Origin::of("http://127.0.0.1:5001/data"),
            Some(registry.clone())
        );
        assert_ne!(
            Origin::of("https://127.0.0.1:5000/v2/"),
            Some(registry.clone())
        );
        assert_ne!(Origin::of("http://127.0.0.2:5000/v2/"), Some(registry));
        assert_eq!(
            Origin::of("https://Registry.Example/v2/"),
            Origin::of("https://registry.example:443/x")
        );
        assert_eq!(Origin::of("ftp://x/"), None);
        assert_eq!(Origin::of("/relative"), None);
    }

    #[test]
    fn locations_resolve_as_browsers_do() {
        let base = "http://127.0.0.1:5000/v2/x/blobs/uploads/";
        assert_eq!(
            resolve(base, "/v2/x/blobs/uploads/abc?_state=s").unwrap(),
            "http://127.0.0.1:5000/v2/x/blobs/uploads/abc?_state=s"
        );
        assert_eq!(
            resolve(base, "https://s3.example/bucket/data?sig=1").unwrap(),
            "https://s3.example/bucket/data?sig=1"
        );
        assert_eq!(
            resolve(base, "//cdn.example/data").unwrap(),
            "http://cdn.example/data"
        );
        assert_eq!(
            resolve("http://h/v2/x/blobs/sha256:1", "other").unwrap(),
            "http://h/v2/x/blobs/other"
        );
        assert!(resolve("not a url", "/x").is_err());
    }

    /// A one-shot server on loopback that answers every connection with `answer`.
    fn serve(answer: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(2) {
                let Ok(mut stream) = stream else { return };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(answer);
            }
        });
        port
    }

    #[test]
    fn a_refused_connection_says_the_registry_is_unreachable() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let registry = format!("127.0.0.1:{port}");
        let err = Client::connect(&registry, vec![], &Options::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("registry {registry} is unreachable: connection refused: is it running?")
        );
    }

    #[test]
    fn a_server_that_does_not_speak_tls_is_a_tls_error_when_https_is_required() {
        let port = serve(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        let registry = format!("127.0.0.1:{port}");
        let client = Client {
            agent: agent(true),
            registry: registry.clone(),
            base: format!("https://{registry}"),
            origin: Origin::of(&format!("https://{registry}")).unwrap(),
            credentials: None,
            scopes: vec![],
            authorization: Mutex::new(None),
            config_path: "/cfg/config.json".into(),
        };
        let err = client.ping().unwrap_err();
        assert!(matches!(err, RegistryError::Tls { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("TLS connection to registry {registry} failed"))
                && text.contains("--insecure")
                && text.contains("/cfg/config.json"),
            "{text}"
        );
    }

    #[test]
    fn something_that_is_not_a_registry_is_named_as_such() {
        let port = serve(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        let registry = format!("127.0.0.1:{port}");
        let err = Client::connect(&registry, vec![], &Options::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("does not serve the registry API v2"),
            "{text}"
        );
    }
}
