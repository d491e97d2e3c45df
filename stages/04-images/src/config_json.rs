//! Writing an image config byte for byte the way Go tools do.
//!
//! An image id is the digest of the config's *bytes*, not of its meaning: `{"a":1,"b":2}` and
//! `{"b":2,"a":1}` are two different images. Docker, containerd and skopeo are written in Go and
//! encode configs with `encoding/json` from the image spec's `v1.Image` struct: fields in struct
//! order, empty fields left out (`omitempty`), `config` always present, map keys sorted, times in
//! RFC 3339 with trailing zeros of the fraction dropped, and `<`, `>`, `&` escaped as `\u003c`…
//! When skopeo converts a Docker manifest to an OCI one it re-encodes the config that way; writing
//! ours in exactly that form makes the re-encoding a no-op, so the image id survives.

use std::collections::BTreeMap;

use oci_spec::image::{Config, History, ImageConfiguration};
use serde::Serialize;

use crate::error::{ImageError, Result};

/// The config as JSON in Go's encoding (see the module doc).
pub fn to_bytes(config: &ImageConfiguration) -> Result<Vec<u8>> {
    let runtime = config.config().clone().unwrap_or_default();
    let image = GoImage {
        created: config.created().as_deref().filter(|s| !s.is_empty()),
        author: config.author().as_deref().filter(|s| !s.is_empty()),
        architecture: config.architecture().to_string(),
        os: config.os().to_string(),
        os_version: config.os_version().as_deref().filter(|s| !s.is_empty()),
        os_features: config.os_features().as_ref().filter(|v| !v.is_empty()),
        variant: config.variant().as_deref().filter(|s| !s.is_empty()),
        config: GoConfig::from(&runtime),
        rootfs: GoRootFs {
            kind: config.rootfs().typ(),
            diff_ids: config.rootfs().diff_ids(),
        },
        history: config
            .history()
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.iter().map(GoHistory::from).collect()),
    };
    let bytes = serde_json::to_vec(&image).map_err(|e| ImageError::json("image config", e))?;
    Ok(escape_like_go(bytes))
}

/// Go's `encoding/json` escapes `<`, `>` and `&` (and U+2028, U+2029) inside strings. They can
/// only occur inside strings in JSON, so replacing them in the whole text is exact.
fn escape_like_go(bytes: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&bytes);
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
        .into_bytes()
}

/// Go's `time.RFC3339Nano`: the fraction of a second without trailing zeros.
pub fn go_time(rfc3339: &str) -> String {
    let Some((head, tail)) = rfc3339.split_once('.') else {
        return rfc3339.to_string();
    };
    let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
    let zone = &tail[digits.len()..];
    let digits = digits.trim_end_matches('0');
    if digits.is_empty() {
        format!("{head}{zone}")
    } else {
        format!("{head}.{digits}{zone}")
    }
}

#[derive(Serialize)]
struct GoImage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<&'a str>,
    architecture: String,
    os: String,
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    os_version: Option<&'a str>,
    #[serde(rename = "os.features", skip_serializing_if = "Option::is_none")]
    os_features: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: GoConfig,
    rootfs: GoRootFs<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<GoHistory>>,
}

/// Go's `map[string]struct{}` value.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct GoConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    volumes: Option<BTreeMap<String, Empty>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<String>,
}

impl From<&Config> for GoConfig {
    fn from(c: &Config) -> Self {
        let text = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let list = |v: &Option<Vec<String>>| v.clone().filter(|v| !v.is_empty());
        let set = |v: &Option<Vec<String>>| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| v.iter().map(|k| (k.clone(), Empty {})).collect())
        };
        GoConfig {
            user: text(c.user()),
            exposed_ports: set(c.exposed_ports()),
            env: list(c.env()),
            entrypoint: list(c.entrypoint()),
            cmd: list(c.cmd()),
            volumes: set(c.volumes()),
            working_dir: text(c.working_dir()),
            labels: c
                .labels()
                .as_ref()
                .filter(|l| !l.is_empty())
                .map(|l| l.clone().into_iter().collect()),
            stop_signal: text(c.stop_signal()),
        }
    }
}

#[derive(Serialize)]
struct GoRootFs<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: &'a Vec<String>,
}

#[derive(Serialize)]
struct GoHistory {
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty_layer: bool,
}

impl From<&History> for GoHistory {
    fn from(h: &History) -> Self {
        let text = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        GoHistory {
            created: text(h.created()),
            created_by: text(h.created_by()),
            author: text(h.author()),
            comment: text(h.comment()),
            empty_layer: h.empty_layer().unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_drop_trailing_zeros_as_go_does() {
        assert_eq!(
            go_time("2024-05-01T12:00:00.123450000Z"),
            "2024-05-01T12:00:00.12345Z"
        );
        assert_eq!(
            go_time("2024-05-01T12:00:00.000000000Z"),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(go_time("2024-05-01T12:00:00Z"), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn a_config_is_encoded_in_go_field_order_with_sorted_maps() {
        let json = r#"{"architecture":"amd64","os":"linux","created":"2024-05-01T12:00:00Z",
            "config":{"Cmd":["sh"],"Env":["A=1"],"Labels":{"z":"1","a":"2"},"ExposedPorts":{"80/tcp":{},"443/tcp":{}}},
            "rootfs":{"type":"layers","diff_ids":[]},
            "history":[{"created_by":"/bin/sh -c make && make install","empty_layer":true},{"comment":"x","created_by":""}]}"#;
        let config: ImageConfiguration = serde_json::from_str(json).unwrap();
        let bytes = to_bytes(&config).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            concat!(
                r#"{"created":"2024-05-01T12:00:00Z","architecture":"amd64","os":"linux","#,
                r#""config":{"ExposedPorts":{"443/tcp":{},"80/tcp":{}},"Env":["A=1"],"Cmd":["sh"],"Labels":{"a":"2","z":"1"}},"#,
                r#""rootfs":{"type":"layers","diff_ids":[]},"#,
                r#""history":[{"created_by":"/bin/sh -c make \u0026\u0026 make install","empty_layer":true},{"comment":"x"}]}"#
            )
        );
    }

    #[test]
    fn an_empty_runtime_config_is_still_written() {
        let config = ImageConfiguration::default();
        let text = String::from_utf8(to_bytes(&config).unwrap()).unwrap();
        assert!(text.contains(r#""config":{}"#), "{text}");
    }
}
