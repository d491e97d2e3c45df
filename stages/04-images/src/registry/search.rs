//! `search [REGISTRY/]TERM`: find repositories by name.
//!
//! The distribution spec has no search, only a list of every repository, the *catalog*
//! (`GET /v2/_catalog?n=100`, pages linked with `Link: <…>; rel="next"`). So:
//!
//! - `search localhost:5000/app` asks that registry's catalog and keeps the names that contain
//!   `app` (`search localhost:5000/` lists them all). A TERM whose first component looks like a
//!   registry (it has a `.` or a `:`, or is `localhost`), the same rule references follow, names
//!   the registry.
//! - `search app` asks Docker Hub's own search API (`https://index.docker.io/v1/search?q=app`),
//!   which also knows descriptions, stars and which images are official.
//!
//! Either way the answer is Docker's table: NAME, DESCRIPTION, STARS, OFFICIAL.

use std::time::Duration;

use ureq::http::Method;

use super::client::{Payload, error_message, header, resolve, transport_error};
use super::{Client, Options, RegistryError, Result};
use crate::human::{ellipsis, table};

/// Docker Hub's search API.
pub const DOCKER_HUB_SEARCH: &str = "https://index.docker.io/v1/search";
/// At most this many catalog pages are read.
const MAX_PAGES: usize = 100;

/// One repository found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SearchResult {
    /// `nginx`, `user/app`, `localhost:5000/app`.
    pub name: String,
    /// Docker Hub's description; empty for a registry's catalog.
    #[serde(default)]
    pub description: String,
    /// Docker Hub's stars; 0 for a registry's catalog.
    #[serde(default, rename = "star_count")]
    pub stars: u64,
    /// Whether it is a Docker Official Image.
    #[serde(default, rename = "is_official")]
    pub official: bool,
}

/// Where a search goes, from its term: `(Some(registry), term)` or `(None, term)` for Docker Hub.
pub fn split_term(term: &str) -> (Option<&str>, &str) {
    match term.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), rest)
        }
        _ => (None, term),
    }
}

/// Searches for `term`, at most `limit` results.
pub fn search(term: &str, limit: usize, options: &Options) -> Result<Vec<SearchResult>> {
    match split_term(term) {
        (Some(registry), term) => search_catalog(registry, term, limit, options),
        (None, term) => search_hub(term, limit),
    }
}

/// Docker Hub's search API.
fn search_hub(term: &str, limit: usize) -> Result<Vec<SearchResult>> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        results: Vec<SearchResult>,
    }
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let registry = "index.docker.io";
    let mut response = agent
        .get(DOCKER_HUB_SEARCH)
        .query("q", term)
        .query("n", limit.to_string())
        .call()
        .map_err(|e| transport_error(registry, true, "", e))?;
    if response.status().as_u16() != 200 {
        return Err(RegistryError::Protocol {
            registry: registry.into(),
            what: format!("search {term:?}"),
            reason: format!(
                "it answered {}: {}",
                response.status().as_u16(),
                error_message(&mut response)
            ),
        });
    }
    let answer: Answer = response
        .body_mut()
        .with_config()
        .limit(8 << 20)
        .read_to_vec()
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| RegistryError::Protocol {
            registry: registry.into(),
            what: format!("search {term:?}"),
            reason: "the answer is not the JSON of search results".into(),
        })?;
    Ok(answer.results.into_iter().take(limit).collect())
}

// ANCHOR: catalog
/// A registry's catalog, every page, filtered by `term`.
fn search_catalog(
    registry: &str,
    term: &str,
    limit: usize,
    options: &Options,
) -> Result<Vec<SearchResult>> {
    #[derive(serde::Deserialize)]
    struct Catalog {
        #[serde(default)]
        repositories: Vec<String>,
    }
    let client = Client::connect(registry, vec!["registry:catalog:*".into()], options)?;
    let mut url = client.url("/v2/_catalog?n=100");
    let mut names = Vec::new();
    for _ in 0..MAX_PAGES {
        let mut response = client.request(Method::GET, &url, &[], Payload::Empty)?;
        if response.status().as_u16() != 200 {
            return Err(client.error_for(response, "list the catalog (GET /v2/_catalog)", None));
        }
        let next = header(&response, "link")
            .and_then(next_link)
            .map(str::to_string);
        let catalog: Catalog = response
            .body_mut()
            .with_config()
            .limit(32 << 20)
            .read_to_vec()
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| RegistryError::Protocol {
                registry: registry.into(),
                what: "GET /v2/_catalog".into(),
                reason: "the answer is not a catalog".into(),
            })?;
        names.extend(catalog.repositories);
        match next {
            Some(link) => {
                url = resolve(&url, &link).map_err(|reason| RegistryError::Protocol {
                    registry: registry.into(),
                    what: "GET /v2/_catalog".into(),
                    reason,
                })?;
            }
            None => break,
        }
    }
    Ok(filter(registry, names, term, limit))
}
// ANCHOR_END: catalog

/// The names that contain `term`, as `registry/name` results.
fn filter(registry: &str, names: Vec<String>, term: &str, limit: usize) -> Vec<SearchResult> {
    names
        .into_iter()
        .filter(|name| name.contains(term))
        .take(limit)
        .map(|name| SearchResult {
            name: format!("{registry}/{name}"),
            description: String::new(),
            stars: 0,
            official: false,
        })
        .collect()
}

/// The target of `Link: </v2/_catalog?last=b&n=100>; rel="next"`.
fn next_link(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .contains("rel=\"next\"")
            .then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

/// Docker's table (descriptions cut to 45 characters unless `no_trunc`).
pub fn results_table(results: &[SearchResult], no_trunc: bool) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let description = r.description.replace(['\n', '\t'], " ");
            vec![
                r.name.clone(),
                if no_trunc {
                    description
                } else {
                    ellipsis(&description, 45)
                },
                r.stars.to_string(),
                if r.official { "[OK]" } else { "" }.to_string(),
            ]
        })
        .collect();
    table(&["NAME", "DESCRIPTION", "STARS", "OFFICIAL"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_term_names_a_registry_as_a_reference_would() {
        assert_eq!(
            split_term("localhost:5000/app"),
            (Some("localhost:5000"), "app")
        );
        assert_eq!(split_term("localhost/"), (Some("localhost"), ""));
        assert_eq!(split_term("quay.io/x"), (Some("quay.io"), "x"));
        assert_eq!(split_term("nginx"), (None, "nginx"));
        assert_eq!(split_term("user/app"), (None, "user/app"));
    }

    #[test]
    fn catalog_names_are_filtered_and_prefixed() {
        let names = vec!["app".into(), "web/app2".into(), "db".into()];
        let found = filter("localhost:5000", names, "app", 25);
        let shown: Vec<&str> = found.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(shown, ["localhost:5000/app", "localhost:5000/web/app2"]);
        assert_eq!(filter("r", vec!["a".into(), "b".into()], "", 1).len(), 1);
    }

    #[test]
    fn next_links_are_followed() {
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=100>; rel="next""#),
            Some("/v2/_catalog?last=b&n=100")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }

    #[test]
    fn docker_hub_answers_parse_into_dockers_table() {
        let answer = r#"{"results":[{"name":"nginx","description":"Official build of Nginx, the web server that is also a reverse proxy.","star_count":20000,"is_official":true},{"name":"user/app"}]}"#;
        #[derive(serde::Deserialize)]
        struct Answer {
            results: Vec<SearchResult>,
        }
        let results = serde_json::from_str::<Answer>(answer).unwrap().results;
        let text = results_table(&results, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("NAME") && lines[0].ends_with("OFFICIAL"),
            "{text}"
        );
        assert!(
            lines[1].contains("20000") && lines[1].ends_with("[OK]"),
            "{text}"
        );
        assert!(lines[1].contains('…'), "cut at 45: {text}");
        assert!(
            lines[2].starts_with("user/app") && lines[2].contains(" 0"),
            "{text}"
        );
    }
}
