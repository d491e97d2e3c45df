//! Image references: the names people type, `busybox`, `alpine:3.20`, `localhost:5000/app@sha256:…`.
//!
//! A reference is `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`. Docker normalises the short forms: a name
//! with no registry lives on `docker.io`, an official image there lives under `library/`, and no tag
//! means `latest`, so `busybox` is `docker.io/library/busybox:latest`. The first component is a
//! registry only if it has a `.` or a `:`, or is `localhost`. Parsing follows the grammar of the
//! distribution project's `reference` package:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] component ( "/" component )*
//! domain     := host [ ":" port ]            host: labels of [A-Za-z0-9-] joined by "."
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := "sha256:" 64 lowercase hex digits
//! ```
//!
//! It is written out by hand rather than with the grammar's big regular expression: compiling
//! that expression costs tens of milliseconds, on every `run`, which is more than the rest of a
//! container's start.

use std::fmt;

use crate::error::{ImageError, Result};

/// The registry a name without one belongs to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The namespace of official images on the default registry.
const OFFICIAL_NAMESPACE: &str = "library/";
/// The longest name the distribution spec allows.
const MAX_NAME: usize = 255;

/// A parsed and normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

fn invalid(text: &str, reason: &str) -> ImageError {
    ImageError::Reference {
        input: text.to_string(),
        reason: reason.to_string(),
    }
}

/// `[a-z0-9]+ ( separator [a-z0-9]+ )*` with separators `.`, `_`, `__` or one or more `-`.
fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &part[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A registry host (DNS labels, or a bracketed IPv6 address) with an optional port.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                (
                    None,
                    after
                        .strip_prefix(':')
                        .map(Some)
                        .unwrap_or(if after.is_empty() { None } else { Some("") }),
                )
            }
            None => return false,
        },
        None => match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        },
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let host_ok = host.is_none_or(|h| h.split('.').all(label_ok));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    tag.len() <= 128
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

impl ImageRef {
    // ANCHOR: parse
    /// Parses and normalises a reference; an invalid one is an error naming it.
    pub fn parse(text: &str) -> Result<ImageRef> {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                let hex = digest
                    .strip_prefix("sha256:")
                    .ok_or_else(|| invalid(text, "the digest is not valid"))?;
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(invalid(text, "the digest is not valid"));
                }
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A tag is after the last ':' that follows the last '/' (a port's ':' comes before it).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                if !is_tag(tag) {
                    return Err(invalid(text, "the tag is not valid"));
                }
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid(text, "the name is empty"));
        }
        // The first component is a registry if it looks like a host: a '.', a ':', `localhost`,
        // or an upper-case letter (which a repository may not have).
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                if !is_domain(first) {
                    return Err(invalid(text, "the registry is not a valid host[:port]"));
                }
                (first.to_string(), path)
            }
            _ => (DEFAULT_REGISTRY.to_string(), name),
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid(text, "the repository name must be lowercase"));
        }
        if !path.split('/').all(is_path_component) {
            return Err(invalid(text, "it does not match NAME[:TAG][@DIGEST]"));
        }
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}{path}")
        } else {
            path.to_string()
        };
        // The limit is on the normalised name, as Docker measures it: a name that fits only in
        // its short form could be stored, but never read back in its full one.
        if registry.len() + 1 + repository.len() > MAX_NAME {
            return Err(invalid(
                text,
                "the name is longer than 255 characters (counting docker.io/library/ where it is implied)",
            ));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (tag, _) => tag,
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }
    // ANCHOR_END: parse

    /// Parses a reference that will name a tag: a digest is refused, as `docker tag` refuses it.
    pub fn parse_tag(text: &str) -> Result<ImageRef> {
        let reference = ImageRef::parse(text)?;
        if reference.digest().is_some() {
            return Err(ImageError::Reference {
                input: text.to_string(),
                reason: "a tag cannot contain a digest".into(),
            });
        }
        Ok(reference)
    }

    /// The registry, `docker.io` when none was given.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// The repository name as Docker shows it: `busybox`, `user/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry() == DEFAULT_REGISTRY {
            let repository = self.repository();
            repository
                .strip_prefix(OFFICIAL_NAMESPACE)
                .unwrap_or(repository)
                .to_string()
        } else {
            self.name()
        }
    }

    /// The reference as Docker shows it: `busybox:latest`.
    pub fn familiar(&self) -> String {
        self.with_name(&self.familiar_name())
    }

    /// The full, normalised reference: `docker.io/library/busybox:latest`.
    pub fn full(&self) -> String {
        self.with_name(&self.name())
    }

    fn with_name(&self, name: &str) -> String {
        let mut out = name.to_string();
        if let Some(tag) = self.tag() {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = self.digest() {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

impl fmt::Display for ImageRef {
    /// The familiar form, the one people type.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Self> {
        ImageRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn full(text: &str) -> String {
        ImageRef::parse(text).unwrap().full()
    }

    #[test]
    fn short_names_are_normalised_as_docker_does() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("docker.io/busybox:v1"), "docker.io/library/busybox:v1");
    }

    #[test]
    fn a_registry_is_kept_when_the_first_component_looks_like_one() {
        assert_eq!(full("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(full("localhost/x:1"), "localhost/x:1");
        assert_eq!(full("quay.io/a/b:c"), "quay.io/a/b:c");
        // `test.com` alone is a repository name with no registry, as Docker reads it.
        assert_eq!(full("test.com:5000"), "docker.io/library/test.com:5000");
    }

    #[test]
    fn digests_are_kept_and_no_latest_is_added() {
        let r = ImageRef::parse(&format!("busybox@{DIGEST}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(DIGEST));
        assert_eq!(r.familiar(), format!("busybox@{DIGEST}"));
        assert!(ImageRef::parse_tag(&format!("busybox@{DIGEST}")).is_err());
    }

    #[test]
    fn familiar_forms_drop_only_the_default_registry() {
        let show = |t: &str| ImageRef::parse(t).unwrap().familiar();
        assert_eq!(show("docker.io/library/busybox:latest"), "busybox:latest");
        assert_eq!(show("docker.io/user/app:2"), "user/app:2");
        assert_eq!(
            show("localhost:5000/library/x:1"),
            "localhost:5000/library/x:1"
        );
        assert_eq!(
            ImageRef::parse("busybox").unwrap().to_string(),
            "busybox:latest"
        );
    }

    #[test]
    fn components_ports_and_separators() {
        assert_eq!(
            full("my_app/a__b.c-d--e"),
            "docker.io/my_app/a__b.c-d--e:latest"
        );
        assert_eq!(
            full("127.0.0.1:5000/x/y:v1.2_3"),
            "127.0.0.1:5000/x/y:v1.2_3"
        );
        assert_eq!(full("[::1]:5000/x"), "[::1]:5000/x:latest");
        assert_eq!(full("Registry.Example/x"), "Registry.Example/x:latest");
        for bad in [
            "a_-b",
            "a..b",
            "-a",
            "a-",
            "x/_y",
            "localhost:abc/x",
            "x:-tag",
            &"a".repeat(256),
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Found by the property tests (`tests/props.rs`): a 240-character name parsed, but its full
    /// form `docker.io/library/<name>:latest`, which the store keeps, did not.
    #[test]
    fn a_long_name_is_measured_in_its_normalised_form() {
        let name = "a".repeat(255 - "docker.io/library/".len());
        let longest = ImageRef::parse(&name).unwrap();
        assert_eq!(ImageRef::parse(&longest.full()).unwrap(), longest);
        let err = ImageRef::parse(&format!("{name}b"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("longer than 255 characters"), "{err}");
        let path = format!("user/{}", "b".repeat(255 - "docker.io/user/".len()));
        assert_eq!(
            ImageRef::parse(&path).unwrap().name().len(),
            255,
            "a name with a namespace has no library/ added"
        );
        assert!(ImageRef::parse(&format!("{path}c")).is_err());
    }

    #[test]
    fn invalid_references_are_errors_that_name_them() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            ":tag",
            "a//b",
            "busybox@sha256:12",
            "x y",
        ] {
            let err = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("invalid reference format"),
                "{bad:?}: {err}"
            );
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
