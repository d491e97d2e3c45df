//! `--format`: Go templates over Docker's JSON shapes. (Interface first.)

/// A template that failed to parse or to run.
#[derive(Debug, thiserror::Error)]
#[error("template: {0}")]
pub struct FormatError(pub String);

/// Renders `template` with `value` as its dot.
pub fn render(template: &str, value: &serde_json::Value) -> Result<String, FormatError> {
    let field = template
        .trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .ok_or_else(|| FormatError(format!("unsupported template {template:?}")))?
        .trim();
    let mut current = value;
    for part in field
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        current = &current[part];
    }
    Ok(match current {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}
