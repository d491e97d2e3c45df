//! The config file `login` writes: credentials per registry, and registries that may use HTTP.
//!
//! It is `config.json` in skiff's config directory: `$SKIFF_CONFIG` when set (as `DOCKER_CONFIG`
//! is for Docker), else `$XDG_CONFIG_HOME/skiff`, else `$HOME/.config/skiff`. Its shape is
//! Docker's `~/.docker/config.json`, plus Docker's daemon setting `insecure-registries`:
//!
//! ```json
//! {
//!   "auths": {
//!     "localhost:5000": { "auth": "dXNlcjpwYXNzd29yZA==" },
//!     "https://index.docker.io/v1/": { "auth": "…" }
//!   },
//!   "insecure-registries": ["registry.lan:5000"]
//! }
//! ```
//!
//! `auth` is `base64(user:password)`: an encoding, not encryption, which is why the file is mode
//! 0600 and `login` says the password is stored unencrypted. Docker Hub's entry keeps Docker's
//! historical key, `https://index.docker.io/v1/`. Keys skiff does not know are kept as they are.
//! The file is replaced atomically (a temp file renamed over it), so a crash never leaves half
//! of it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::auth::Credentials;
use super::{Client, Options, RegistryError, Result};
use crate::reference::DEFAULT_REGISTRY;

/// The key Docker files Docker Hub's credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// The file's name in the config directory.
pub const CONFIG_FILE: &str = "config.json";

/// skiff's config directory (see the module doc).
pub fn config_dir() -> Result<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("SKIFF_CONFIG") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CONFIG_HOME").map(PathBuf::from)
        && dir.is_absolute()
    {
        return Ok(dir.join("skiff"));
    }
    match var("HOME") {
        Some(home) => Ok(PathBuf::from(home).join(".config/skiff")),
        None => Err(RegistryError::Config {
            path: PathBuf::from("$HOME/.config/skiff"),
            reason: "HOME is not set: set SKIFF_CONFIG to a directory for skiff's config".into(),
        }),
    }
}

/// The config file, read.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    /// Where it is (it need not exist yet).
    pub path: PathBuf,
    /// Server → credentials.
    pub auths: BTreeMap<String, AuthEntry>,
    /// Registries (`host` or `host:port`) that may use plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Everything else in the file, kept.
    rest: serde_json::Map<String, serde_json::Value>,
}

/// One `auths` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthEntry {
    /// `base64(user:password)`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth: String,
    /// Other fields (Docker's `identitytoken`…), kept.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize, Default)]
struct Shape {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(
        rename = "insecure-registries",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    insecure_registries: Vec<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl ConfigFile {
    /// Reads `dir/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<ConfigFile> {
        let path = dir.join(CONFIG_FILE);
        let shape: Shape = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RegistryError::Config {
                path: path.clone(),
                reason: format!("invalid JSON: {e}: fix it or remove it"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Shape::default(),
            Err(e) => {
                return Err(RegistryError::Config {
                    path,
                    reason: format!("cannot read it: {e}"),
                });
            }
        };
        Ok(ConfigFile {
            path,
            auths: shape.auths,
            insecure_registries: shape.insecure_registries,
            rest: shape.rest,
        })
    }

    /// Writes the file, mode 0600, atomically.
    pub fn save(&self) -> Result<()> {
        let error = |e: std::io::Error| RegistryError::Config {
            path: self.path.clone(),
            reason: format!("cannot write it: {e}"),
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(error)?;
        let shape = Shape {
            auths: self.auths.clone(),
            insecure_registries: self.insecure_registries.clone(),
            rest: self.rest.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&shape).map_err(|e| RegistryError::Config {
            path: self.path.clone(),
            reason: format!("cannot encode it: {e}"),
        })?;
        json.push(b'\n');
        let temp = dir.join(format!(".{CONFIG_FILE}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            // The mode above only applies to a new file: make sure of it.
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.write_all(&json)?;
            file.sync_all()?;
            fs::rename(&temp, &self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written.map_err(error)
    }

    /// The stored credentials for `registry` (as named in references: `localhost:5000`,
    /// `docker.io`), if any.
    pub fn credentials(&self, registry: &str) -> Option<Credentials> {
        self.auths
            .iter()
            .find(|(key, _)| server_key(key).is_ok_and(|(_, r)| r == registry))
            .and_then(|(_, entry)| Credentials::decode(&entry.auth).ok())
    }
}

/// The key a server's credentials are filed under, and the registry it names:
/// `localhost:5000`, `http://localhost:5000/` → `localhost:5000`; `docker.io`,
/// `index.docker.io`, `registry-1.docker.io` → Docker's `https://index.docker.io/v1/` and
/// `docker.io`.
pub fn server_key(server: &str) -> Result<(String, String)> {
    let host = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !valid {
        return Err(RegistryError::Invalid(format!(
            "invalid registry server {server:?}: give a host[:port], e.g. localhost:5000"
        )));
    }
    if matches!(
        host.as_str(),
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        return Ok((DOCKER_HUB_KEY.to_string(), DEFAULT_REGISTRY.to_string()));
    }
    Ok((host.clone(), host))
}

// ANCHOR: login
/// `login [SERVER]`: checks `credentials` against the registry (the ping, then the challenge's
/// flow with them) and stores them. Returns the key they are filed under.
pub fn login(server: Option<&str>, credentials: Credentials, options: &Options) -> Result<String> {
    let (key, registry) = server_key(server.unwrap_or(DEFAULT_REGISTRY))?;
    Client::connect_with(&registry, Vec::new(), Some(credentials.clone()), options)?;
    let mut config = options.config.clone();
    config
        .auths
        .retain(|k, _| server_key(k).map_or(true, |(_, r)| r != registry));
    config.auths.insert(
        key.clone(),
        AuthEntry {
            auth: credentials.encode(),
            rest: serde_json::Map::new(),
        },
    );
    config.save()?;
    Ok(key)
}
// ANCHOR_END: login

/// What `logout` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logout {
    /// Credentials for this key were removed.
    Removed(String),
    /// There were none for this key.
    NotLoggedIn(String),
}

/// `logout [SERVER]`: removes the stored credentials for the server.
pub fn logout(server: Option<&str>, options: &Options) -> Result<Logout> {
    let (key, registry) = server_key(server.unwrap_or(DEFAULT_REGISTRY))?;
    let mut config = options.config.clone();
    let before = config.auths.len();
    config
        .auths
        .retain(|k, _| server_key(k).map_or(true, |(_, r)| r != registry));
    if config.auths.len() == before {
        return Ok(Logout::NotLoggedIn(key));
    }
    config.save()?;
    Ok(Logout::Removed(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_are_filed_as_docker_files_them() {
        let key = |s| server_key(s).unwrap();
        assert_eq!(
            key("localhost:5000"),
            ("localhost:5000".into(), "localhost:5000".into())
        );
        assert_eq!(
            key("http://LocalHost:5000/v2/"),
            ("localhost:5000".into(), "localhost:5000".into())
        );
        for hub in [
            "docker.io",
            "index.docker.io",
            "https://index.docker.io/v1/",
            "registry-1.docker.io",
        ] {
            assert_eq!(
                key(hub),
                (DOCKER_HUB_KEY.into(), "docker.io".into()),
                "{hub}"
            );
        }
        assert!(server_key("").is_err());
        assert!(server_key("a b").is_err());
    }

    #[test]
    fn the_file_round_trips_is_private_and_keeps_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(CONFIG_FILE),
            r#"{"auths":{"http://localhost:5000":{"auth":"dXNlcjpwYXNz"}},"credsStore":"pass","insecure-registries":["lan:5000"]}"#,
        )
        .unwrap();
        let config = ConfigFile::load(dir.path()).unwrap();
        let c = config.credentials("localhost:5000").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("user", "pass"));
        assert_eq!(config.credentials("docker.io"), None);
        assert_eq!(config.insecure_registries, vec!["lan:5000"]);
        config.save().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"credsStore\": \"pass\""), "{text}");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file is left"
        );
    }

    #[test]
    fn a_missing_file_is_empty_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let config = ConfigFile::load(dir.path()).unwrap();
        assert!(config.auths.is_empty());
        fs::write(dir.path().join(CONFIG_FILE), "{not json").unwrap();
        let err = ConfigFile::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("invalid JSON"),
            "{err}"
        );
    }

    #[test]
    fn logout_removes_only_that_servers_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = Options {
            config: ConfigFile::load(dir.path()).unwrap(),
            ..Options::default()
        };
        for key in ["localhost:5000", DOCKER_HUB_KEY] {
            options.config.auths.insert(
                key.into(),
                AuthEntry {
                    auth: "dTpw".into(),
                    rest: Default::default(),
                },
            );
        }
        assert_eq!(
            logout(Some("localhost:5000"), &options).unwrap(),
            Logout::Removed("localhost:5000".into())
        );
        let options = Options {
            config: ConfigFile::load(dir.path()).unwrap(),
            ..Options::default()
        };
        assert_eq!(options.config.auths.len(), 1);
        assert!(options.config.credentials("docker.io").is_some());
        assert_eq!(
            logout(Some("localhost:5000"), &options).unwrap(),
            Logout::NotLoggedIn("localhost:5000".into())
        );
    }
}
