//! Images from registries: `pull`, `push`, `login`, `logout`, `search`.
//!
//! A registry speaks the OCI distribution spec (`spec.md`; Docker calls it the Registry HTTP API
//! v2): under `/v2/<name>/` it serves *manifests*, by tag or by digest, and *blobs* (configs and
//! layers), by digest only. Pulling is walking a tree of digests from the top: the reference (or
//! the manifest a tag names) pins the manifest, the manifest pins the config and the layer blobs,
//! the config pins each layer's content (its diff_id). Every piece is checked against the digest
//! that named it before the store keeps it, so neither the registry nor anything between it and
//! skiff can change an image without the pull failing. Pushing walks the same tree from the
//! bottom: blobs first, the manifest last, so a tag never names an incomplete image.
//!
//! - [`client`]: one registry over HTTP(S): the ping, requests with credentials, and redirects
//!   that never carry credentials to another host;
//! - [`auth`]: the `WWW-Authenticate` challenge: Basic, or a Bearer token from the realm;
//! - [`credentials`]: the config file `login` writes, and `login`/`logout` themselves;
//! - [`pull`](mod@pull) and [`push`](mod@push), layers moving in parallel; [`search`](mod@search);
//!   [`progress`] for the console.
//!
//! The commands follow Docker's: `docker pull`, `docker push`, `docker login`, `docker logout`,
//! `docker search`, with their messages wherever Docker has one.

pub mod auth;
pub mod client;
pub mod credentials;
pub mod progress;
pub mod pull;
pub mod push;
pub mod search;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::ImageError;
use crate::reference::DEFAULT_REGISTRY;

pub use client::Client;
pub use credentials::{ConfigFile, Logout, login, logout};
pub use progress::{ConsoleProgress, Progress, Quiet};
pub use pull::{Pulled, pull};
pub use push::{Pushed, push};
pub use search::{SearchResult, search};

/// The host that serves Docker Hub's registry API: `docker.io` is only a name.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// How many layers move at once (Docker's default for downloads is 3).
pub const PARALLEL_LAYERS: usize = 3;

/// What can go wrong talking to a registry. Each message says what failed, against which
/// registry or image, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Nothing answered: refused, no such host, timed out.
    #[error("registry {registry} is unreachable: {reason}: {hint}")]
    Unreachable {
        /// The registry as named (`localhost:5000`).
        registry: String,
        /// What the network said ("connection refused").
        reason: String,
        /// What to check.
        hint: &'static str,
    },
    /// The TLS handshake failed: a certificate that does not verify, or no TLS at all.
    #[error(
        "TLS connection to registry {registry} failed: {reason}: if it serves plain HTTP or a self-signed certificate, pass --insecure or list it under \"insecure-registries\" in {config}"
    )]
    Tls {
        /// The registry.
        registry: String,
        /// The TLS library's words.
        reason: String,
        /// The config file that can list it as insecure.
        config: String,
    },
    /// No manifest under this tag or digest (or no such repository).
    #[error("manifest for {reference} not found: {message}")]
    ManifestUnknown {
        /// The reference, as the user gave it.
        reference: String,
        /// The registry's words ("manifest unknown").
        message: String,
    },
    /// Credentials were refused.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// The reason ("incorrect username or password").
        message: String,
    },
    /// The registry refused an operation on a repository.
    #[error(
        "{action} access denied for {name}, repository does not exist or may require 'images login {registry}': {message}"
    )]
    Denied {
        /// `pull` or `push`.
        action: &'static str,
        /// The repository (`localhost:5000/app`).
        name: String,
        /// The registry, for the `login` hint.
        registry: String,
        /// The registry's words.
        message: String,
    },
    /// An image index lists no manifest for the platform wanted.
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingManifest {
        /// `os/arch[/variant]`.
        platform: String,
    },
    /// A single-platform image for another platform than the one `--platform` asked for.
    #[error(
        "image with reference {reference} was found but does not match the specified platform: wanted {wanted}, actual: {actual}"
    )]
    PlatformMismatch {
        /// The reference.
        reference: String,
        /// What `--platform` said.
        wanted: String,
        /// What the image's config says.
        actual: String,
    },
    /// Content whose digest is not the one that named it: refused, nothing stored.
    #[error(
        "{what} from {registry} should have digest {expected} but its content hashes to {actual}: the registry's copy is corrupt or was tampered with; nothing of it was stored"
    )]
    DigestMismatch {
        /// Which piece ("manifest for x:1", "layer sha256:… of x:1").
        what: String,
        /// The registry.
        registry: String,
        /// The digest that named it.
        expected: String,
        /// The digest of what came.
        actual: String,
    },
    /// An answer that is not what the distribution spec says it should be.
    #[error("{what} at registry {registry}: {reason}")]
    Protocol {
        /// The registry.
        registry: String,
        /// What was being done ("upload blob sha256:…").
        what: String,
        /// What came back.
        reason: String,
    },
    /// Bad input: a reference, a platform, a server name, a flag.
    #[error("{0}")]
    Invalid(String),
    /// The config file could not be read or written.
    #[error("config file {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store refused something (a digest mismatch while storing is reported as
    /// [`RegistryError::DigestMismatch`]).
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// The result type of this module.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// What a pull, push, login or search needs besides the image: the config file (credentials,
/// insecure registries), `--insecure`, and `--platform`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The config file `login` writes.
    pub config: ConfigFile,
    /// Allow plain HTTP and unverified TLS for the registry this command talks to.
    pub insecure: bool,
    /// The platform to choose from an image index; this machine's when `None`.
    pub platform: Option<Platform>,
}

impl Options {
    /// Options with the config file in `dir`, or in the default place (see
    /// [`credentials::config_dir`]) when `None`.
    pub fn load(dir: Option<PathBuf>) -> Result<Options> {
        let dir = match dir {
            Some(dir) => dir,
            None => credentials::config_dir()?,
        };
        Ok(Options {
            config: ConfigFile::load(&dir)?,
            insecure: false,
            platform: None,
        })
    }
}

/// The host that serves a registry's API: Docker Hub's is not `docker.io` itself.
pub fn api_host(registry: &str) -> &str {
    if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_API
    } else {
        registry
    }
}

// ANCHOR: insecure
/// Whether skiff may talk to `registry` over plain HTTP (and accept a certificate it cannot
/// verify): Docker's rule. Loopback registries (`localhost`, `127.0.0.0/8`, `::1`) may, and so
/// may those the user names: `--insecure`, or the config file's `insecure-registries`.
/// Everything else is HTTPS with a verified certificate, or nothing.
pub fn allows_http(registry: &str, options: &Options) -> bool {
    options.insecure
        || options
            .config
            .insecure_registries
            .iter()
            .any(|r| r == registry || r == host_of(registry))
        || is_loopback(host_of(registry))
}
// ANCHOR_END: insecure

/// The host of `host[:port]` (`[::1]:5000` gives `::1`).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// When `run` pulls its image (`--pull`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull only when the store does not have the image (the default).
    #[default]
    Missing,
    /// Pull every time: the tag may have moved.
    Always,
    /// Never pull: an absent image is an error.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(RegistryError::Invalid(format!(
                "invalid pull policy {other:?}: use missing, always or never"
            ))),
        }
    }
}

/// A platform, `os/arch[/variant]`, in the image spec's (Go's) words: `linux/amd64`,
/// `linux/arm64/v8`, `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`…
    pub architecture: String,
    /// `v7`, `v8`…, when the architecture has variants.
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform.
    pub fn host() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: crate::image::host_arch().to_string(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(text: &str) -> Result<Platform> {
        let parts: Vec<&str> = text.split('/').collect();
        let ok =
            |s: &&str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(variant.to_string()),
            }),
            _ => Err(RegistryError::Invalid(format!(
                "invalid platform {text:?}: use os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
            ))),
        }
    }

    /// Whether an index entry's platform is this one. A variant left out matches any, and
    /// `arm64` with no variant is `arm64/v8`, as containerd's matcher has it.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let normal = |arch: &str, variant: Option<&str>| match (arch, variant) {
            ("arm64", None | Some("v8")) => None,
            (_, variant) => variant.map(str::to_string),
        };
        self.os == os
            && self.architecture == architecture
            && (self.variant.is_none()
                || normal(&self.architecture, self.variant.as_deref())
                    == normal(architecture, variant))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

// ANCHOR: in_parallel
/// Runs `work` on each item, at most `threads` at a time, and returns the results in the items'
/// order. After the first failure no new item is started; the first failure (in the items'
/// order) is returned.
pub(crate) fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R>>>> =
        Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= items.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let result = work(&items[i]);
                    if result.is_err() {
                        failed.store(true, Ordering::SeqCst);
                    }
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(result);
                    }
                }
            });
        }
    });
    let slots = results
        .into_inner()
        .map_err(|_| RegistryError::Invalid("a worker thread panicked".into()))?;
    let mut out = Vec::with_capacity(items.len());
    let mut first_error = None;
    for slot in slots {
        match slot {
            Some(Ok(r)) => out.push(r),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None if out.len() == items.len() => Ok(out),
        None => Err(RegistryError::Invalid("a worker thread panicked".into())),
    }
}
// ANCHOR_END: in_parallel

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_and_named_ones_may_use_http() {
        let mut options = Options::default();
        for registry in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.8.9.1",
            "[::1]:5000",
        ] {
            assert!(allows_http(registry, &options), "{registry}");
        }
        for registry in [
            "docker.io",
            "quay.io",
            "10.0.0.1:5000",
            "registry.local:5000",
            "localhost.evil.com",
        ] {
            assert!(!allows_http(registry, &options), "{registry}");
        }
        options.config.insecure_registries = vec!["registry.local:5000".into(), "10.0.0.1".into()];
        assert!(allows_http("registry.local:5000", &options));
        assert!(allows_http("10.0.0.1:5000", &options));
        assert!(!allows_http("quay.io", &options));
        options.insecure = true;
        assert!(allows_http("quay.io", &options));
    }

    #[test]
    fn docker_io_is_served_by_registry_1() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn platforms_parse_print_and_match() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert_eq!(p.to_string(), "linux/arm64");
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(p.matches("linux", "arm64", None));
        assert!(!p.matches("linux", "amd64", None));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(v7.matches("linux", "arm", Some("v7")));
        assert!(!v7.matches("linux", "arm", Some("v6")));
        let v8 = Platform::parse("linux/arm64/v8").unwrap();
        assert!(v8.matches("linux", "arm64", None));
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/amd 64"] {
            let err = Platform::parse(bad).unwrap_err().to_string();
            assert!(err.contains("os/arch[/variant]"), "{bad}: {err}");
        }
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn pull_policies_parse() {
        assert_eq!("never".parse::<PullPolicy>().unwrap(), PullPolicy::Never);
        let err = "sometimes".parse::<PullPolicy>().unwrap_err().to_string();
        assert!(err.contains("missing, always or never"), "{err}");
    }

    #[test]
    fn parallel_work_keeps_order_and_stops_after_a_failure() {
        let items: Vec<u32> = (0..20).collect();
        let out = in_parallel(&items, 3, |i| Ok(i * 2)).unwrap();
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let started = AtomicUsize::new(0);
        let err = in_parallel(&items, 1, |i| {
            started.fetch_add(1, Ordering::SeqCst);
            if *i == 2 {
                Err(RegistryError::Invalid(format!("item {i}")))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "item 2");
        assert_eq!(
            started.load(Ordering::SeqCst),
            3,
            "nothing started after the failure"
        );
        assert!(
            in_parallel(&Vec::<u32>::new(), 3, |_| Ok(()))
                .unwrap()
                .is_empty()
        );
    }
}
