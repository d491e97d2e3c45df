//! Image references: the names people type, `busybox`, `alpine:3.20`, `localhost:5000/app@sha256:…`.
//!
//! A reference is `[REGISTRY/]REPOSITORY[:TAG][@DIGEST]`. Docker normalises the short forms: a name
//! with no registry lives on `docker.io`, an official image there lives under `library/`, and no tag
//! means `latest`, so `busybox` is `docker.io/library/busybox:latest`. The first component is a
//! registry only if it has a `.` or a `:`, or is `localhost`. Parsing follows the grammar of the
//! distribution project's `reference` package, through `oci_spec::distribution::Reference`; this
//! module adds the "familiar" form Docker shows (`busybox:latest`).

use std::fmt;

use oci_spec::distribution::{ParseError, Reference};

use crate::error::{ImageError, Result};

/// The registry a name without one belongs to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The namespace of official images on the default registry.
const OFFICIAL_NAMESPACE: &str = "library/";

/// A parsed and normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parses and normalises a reference; an invalid one is an error naming it.
    pub fn parse(text: &str) -> Result<ImageRef> {
        let reason = match Reference::try_from(text) {
            Ok(inner) => return Ok(ImageRef { inner }),
            Err(ParseError::NameContainsUppercase) => "the repository name must be lowercase",
            Err(ParseError::NameEmpty) => "the name is empty",
            Err(ParseError::NameTooLong) => "the name is longer than 255 characters",
            Err(ParseError::TagInvalidFormat) => "the tag is not valid",
            Err(ParseError::DigestInvalidFormat | ParseError::DigestInvalidLength) => {
                "the digest is not valid"
            }
            Err(ParseError::DigestUnsupported) => "the digest algorithm is not supported",
            Err(ParseError::ReferenceInvalidFormat) => "it does not match NAME[:TAG][@DIGEST]",
        };
        Err(ImageError::Reference {
            input: text.to_string(),
            reason: reason.to_string(),
        })
    }

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
        self.inner.registry()
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if any (`latest` when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
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
