//! `inspect` as requests: each name asked of the containers, images, networks and volumes in
//! turn, and the daemon's JSON printed as the docker CLI prints it, indented in the daemon's
//! own key order. See docker-inspect(1).

use anyhow::Context;
use serde_json::Value;

use super::http::{Client, DaemonError};
use super::segment;

/// `inspect`: each name as a container, an image, a network or a volume (or the `--type`
/// given), the first the daemon knows.
pub fn inspect(client: &Client, args: &crate::inspect::InspectArgs) -> anyhow::Result<i32> {
    let kinds: &[&str] = match args.kind.as_deref() {
        None => &["container", "image", "network", "volume"],
        Some("container") => &["container"],
        Some("image") => &["image"],
        Some("network") => &["network"],
        Some("volume") => &["volume"],
        Some(other) => anyhow::bail!("\"{other}\" is not a valid value for --type"),
    };
    let path = |kind: &str, name: &str| match kind {
        "container" => format!("/containers/{}/json?size={}", segment(name), args.size),
        "image" => format!("/images/{name}/json"),
        "network" => format!("/networks/{}", segment(name)),
        _ => format!("/volumes/{}", segment(name)),
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        let mut got = None;
        for kind in kinds {
            match client.send("GET", &path(kind, name), None)?.ok() {
                Ok(answer) => {
                    got = Some(body_text(answer)?);
                    break;
                }
                Err(e)
                    if e.downcast_ref::<DaemonError>()
                        .is_some_and(|d| d.status == 404) => {}
                Err(e) => return Err(e),
            }
        }
        match got {
            Some(raw) => found.push(raw),
            None if kinds.len() == 1 => errors.push(format!("No such {}: {name}", kinds[0])),
            None => errors.push(format!("No such object: {name}")),
        }
    }
    print_inspected(&found, args.format.as_deref())?;
    for error in &errors {
        eprintln!("Error: {error}");
    }
    Ok(i32::from(!errors.is_empty()))
}

/// `network inspect` and `volume inspect`: each by its path.
pub(super) fn inspect_each(
    client: &Client,
    names: &[String],
    path: impl Fn(&str) -> String,
    format: Option<&str>,
) -> anyhow::Result<i32> {
    let mut found = Vec::new();
    let mut failed = false;
    for name in names {
        match client.call("GET", &path(name), None).and_then(body_text) {
            Ok(raw) => found.push(raw),
            Err(e) => {
                eprintln!("{}", super::message(&e));
                failed = true;
            }
        }
    }
    print_inspected(&found, format)?;
    Ok(i32::from(failed))
}

fn body_text(mut answer: super::http::Response) -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut answer, &mut text).context("read the daemon's answer")?;
    Ok(text)
}

/// The daemon's objects as one JSON array, indented as the docker CLI indents (its keys in
/// the daemon's order), or a template per object.
fn print_inspected(found: &[String], format: Option<&str>) -> anyhow::Result<()> {
    if let Some(template) = format {
        for raw in found {
            let value: Value = serde_json::from_str(raw).context("the daemon's JSON")?;
            println!("{}", crate::format::render(template, &value)?);
        }
        return Ok(());
    }
    let array = format!(
        "[{}]",
        found.iter().map(|r| r.trim()).collect::<Vec<_>>().join(",")
    );
    println!("{}", indent(&array));
    Ok(())
}

// ANCHOR: indent
/// Go's `json.Indent` with four spaces: the daemon's compact JSON laid out without parsing it
/// into a map, so its keys keep their order.
pub fn indent(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"    ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(s) = chars.next() {
                    out.push(s);
                    if s == '\\' {
                        if let Some(escaped) = chars.next() {
                            out.push(escaped);
                        }
                    } else if s == '"' {
                        break;
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| *n == '}' || *n == ']') {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}
// ANCHOR_END: indent

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_lays_out_as_go_does() {
        let raw = r#"[{"Id":"a","Args":[],"Config":{"Env":["A=1","B={x}"],"Labels":{}},"N":1}]"#;
        let expected = "[\n    {\n        \"Id\": \"a\",\n        \"Args\": [],\n        \"Config\": {\n            \"Env\": [\n                \"A=1\",\n                \"B={x}\"\n            ],\n            \"Labels\": {}\n        },\n        \"N\": 1\n    }\n]";
        assert_eq!(indent(raw), expected);
    }
}
