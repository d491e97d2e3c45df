//! Authentication as Docker does it: anonymous first, then whatever the registry's challenge asks.
//!
//! A registry that wants credentials answers `401 Unauthorized` with a `WWW-Authenticate` header
//! (RFC 7235), the *challenge*. Two schemes are in use:
//!
//! - `Basic realm="..."`: send `Authorization: Basic base64(user:password)` with every request
//!   (RFC 7617). The registry checks it itself (distribution's `htpasswd`).
//! - `Bearer realm="https://auth…/token",service="registry…",scope="repository:app:pull"`: ask
//!   the *realm*, a separate token server, for a token for that service and scope (with Basic
//!   credentials when there are any; anonymously otherwise), then send
//!   `Authorization: Bearer <token>`. This is Docker's token spec (distribution,
//!   `docs/spec/auth/token.md`): the token is a signed statement of what its holder may do, which
//!   the registry checks without ever seeing a password.
//!
//! A token (or a password) is good only for the registry that asked for it: [`super::client`]
//! sends it to no other host.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{RegistryError, Result};

/// A user name and password, as `login` stores them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password (or access token).
    pub password: String,
}

impl fmt::Debug for Credentials {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `base64(user:password)`: the `auth` field of Docker's config file, and what Basic sends.
    pub fn encode(&self) -> String {
        STANDARD.encode(format!("{}:{}", self.username, self.password))
    }

    /// The inverse of [`Credentials::encode`].
    pub fn decode(text: &str) -> std::result::Result<Credentials, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        let text = String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
        let (username, password) = text
            .split_once(':')
            .ok_or_else(|| "not user:password".to_string())?;
        Ok(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        })
    }

    /// The `Authorization` header value for Basic authentication.
    pub fn basic(&self) -> String {
        format!("Basic {}", self.encode())
    }
}

/// What a `WWW-Authenticate` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send a user name and password with every request.
    Basic {
        /// The protection space's name, for messages.
        realm: Option<String>,
    },
    /// Fetch a token from `realm` and send it with every request.
    Bearer {
        /// The token server's URL.
        realm: String,
        /// The registry's name at the token server.
        service: Option<String>,
        /// What the refused request needed (`repository:app:pull`).
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses one `WWW-Authenticate` value; `None` for a scheme skiff does not speak.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(rest);
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic {
                realm: get("realm"),
            })
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            })
        } else {
            None
        }
    }
}

/// `key=value, key="quoted, value"` pairs (RFC 7235 `auth-param`s).
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return params;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                value.push(c);
            }
        }
        params.push((key.trim().to_string(), value.trim_end().to_string()));
    }
}

/// The token server's answer. Docker's spec names the field `token`; OAuth 2 servers call it
/// `access_token`; either will do.
#[derive(serde::Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

// ANCHOR: fetch_token
/// Asks the token server at `realm` for a token good for `scopes` on `service`, with Basic
/// credentials when there are any (anonymously otherwise).
pub(crate) fn fetch_token(
    agent: &ureq::Agent,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credentials: Option<&Credentials>,
) -> Result<String> {
    if !(realm.starts_with("https://") || realm.starts_with("http://")) {
        return Err(RegistryError::Invalid(format!(
            "the registry's token realm {realm:?} is not an http(s) URL"
        )));
    }
    let mut request = agent.get(realm);
    if let Some(service) = service {
        request = request.query("service", service);
    }
    for scope in scopes {
        request = request.query("scope", scope);
    }
    if let Some(credentials) = credentials {
        request = request
            .query("account", &credentials.username)
            .header("Authorization", credentials.basic());
    }
    let realm_host =
        super::client::Origin::of(realm).map_or_else(|| realm.to_string(), |o| o.host_port());
    let mut response = request.call().map_err(|e| {
        super::client::transport_error(&realm_host, realm.starts_with("https"), "", e)
    })?;
    let status = response.status().as_u16();
    if status == 401 || status == 403 {
        let message = match credentials {
            Some(_) => "incorrect username or password".to_string(),
            None => super::client::error_message(&mut response),
        };
        return Err(RegistryError::Unauthorized { message });
    }
    if status != 200 {
        return Err(RegistryError::Protocol {
            registry: realm_host,
            what: format!("get a token from {realm}"),
            reason: format!(
                "it answered {status}: {}",
                super::client::error_message(&mut response)
            ),
        });
    }
    let answer: TokenResponse = response
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| RegistryError::Protocol {
            registry: realm_host.clone(),
            what: format!("get a token from {realm}"),
            reason: "the answer is not the JSON of a token".into(),
        })?;
    answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RegistryError::Protocol {
            registry: realm_host,
            what: format!("get a token from {realm}"),
            reason: "the answer holds neither token nor access_token".into(),
        })
}
// ANCHOR_END: fetch_token

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse_with_quoted_commas() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#;
        assert_eq!(
            Challenge::parse(header),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:samalba/my-app:pull,push".into()),
            })
        );
        let unquoted = "bearer realm=http://127.0.0.1:1/token, service=test";
        assert_eq!(
            Challenge::parse(unquoted),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: Some("test".into()),
                scope: None,
            })
        );
        let escaped = r#"Bearer realm="http://x/t",error="a \"quoted\" word""#;
        assert!(matches!(
            Challenge::parse(escaped),
            Some(Challenge::Bearer { .. })
        ));
    }

    #[test]
    fn basic_and_unknown_challenges() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic {
                realm: Some("Registry Realm".into())
            })
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(
            Challenge::parse("Bearer service=x"),
            None,
            "a bearer challenge needs a realm"
        );
    }

    #[test]
    fn credentials_round_trip_as_docker_encodes_them() {
        let c = Credentials {
            username: "user".into(),
            password: "pa:ss".into(),
        };
        assert_eq!(c.encode(), "dXNlcjpwYTpzcw==");
        assert_eq!(Credentials::decode("dXNlcjpwYTpzcw==").unwrap(), c);
        assert_eq!(c.basic(), "Basic dXNlcjpwYTpzcw==");
        assert!(Credentials::decode("!!").is_err());
        assert!(Credentials::decode("dXNlcg==").is_err(), "no colon");
        assert!(
            !format!("{c:?}").contains("pa:ss"),
            "Debug hides the password"
        );
    }
}
