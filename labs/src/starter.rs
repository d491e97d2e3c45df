//! `labs start NN DIR`: a starter crate for a learner who writes stage NN along with the book.
//!
//! A starter is the previous stage as a library (a path dependency into this skiff checkout), a
//! binary whose command line is already wired, and the stage's own idea as functions whose bodies
//! are `todo!("…")`, each with a doc comment that names the book's section. Built untouched it
//! passes the earlier labs and fails lab NN with a note naming the missing piece
//! (`skiff starter: not written yet: …`); `book/src/labs.md` explains the choices.
//!
//! The templates are files under `labs/starters/`: `NN/` holds one stage's files, `common/`
//! what every starter shares, and a directory such as `hooks/` a module that the starters whose
//! `main.rs` declares it (`mod hooks;`) share. `Cargo.toml.in` becomes `Cargo.toml` with two kinds of
//! placeholder filled in: `{{skiff}}` (the checkout's directory) and `{{version:NAME}}` (the
//! version the workspace pins for NAME, so a starter builds against what skiff was tested with).
//! The workspace's `Cargo.lock` is copied too, so every other crate resolves to the same version.

use std::path::{Path, PathBuf};

/// Template directories some starters share, each holding `src/NAME.rs`: `hooks`, for the
/// starters whose pieces run in a feature's hooks.
const SHARED: &[&str] = &["hooks"];

/// The stages that have a starter.
pub const STAGES: std::ops::RangeInclusive<u32> = 1..=7;

/// What can go wrong when writing a starter.
#[derive(Debug, thiserror::Error)]
pub enum StarterError {
    /// No template for this stage.
    #[error(
        "no starter for stage {0:02}: starters exist for stages {first:02} to {last:02}",
        first = STAGES.start(),
        last = STAGES.end()
    )]
    NoStage(u32),
    /// The directory holds files already.
    #[error(
        "{0}: the directory is not empty; name a new one, the starter will not overwrite your work"
    )]
    NotEmpty(PathBuf),
    /// The skiff checkout is not where it was looked for.
    #[error("{0}: not a skiff checkout (no stages/01-chroot there); pass --skiff DIR")]
    NotSkiff(PathBuf),
    /// A template names a crate the workspace does not pin.
    #[error("{template}: {{{{version:{name}}}}}: the workspace's Cargo.toml pins no {name:?}")]
    NoVersion {
        /// The template file.
        template: PathBuf,
        /// The crate.
        name: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The workspace's Cargo.toml does not parse.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// toml's message.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StarterError + '_ {
    move |source| StarterError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The skiff checkout this harness was built from: the starter's path dependencies point there.
pub fn default_skiff() -> PathBuf {
    crate::labs_dir()
        .parent()
        .map_or_else(crate::labs_dir, Path::to_path_buf)
}

/// The directory of the starter templates.
pub fn templates_dir() -> PathBuf {
    crate::labs_dir().join("starters")
}

/// The package (and binary) name of stage `stage`'s starter: `my-skiff-02`.
pub fn package_name(stage: u32) -> String {
    format!("my-skiff-{stage:02}")
}

/// Writes the starter of `stage` into `dir` (made if missing, refused if not empty), against the
/// skiff checkout `skiff`. Returns the files written, relative to `dir`.
pub fn start(stage: u32, dir: &Path, skiff: &Path) -> Result<Vec<PathBuf>, StarterError> {
    if !STAGES.contains(&stage) {
        return Err(StarterError::NoStage(stage));
    }
    if !skiff.join("stages/01-chroot").is_dir() {
        return Err(StarterError::NotSkiff(skiff.to_path_buf()));
    }
    let skiff = std::fs::canonicalize(skiff).map_err(io(skiff))?;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
        if entries.next().is_some() {
            return Err(StarterError::NotEmpty(dir.to_path_buf()));
        }
    }
    let versions = pinned_versions(&skiff.join("Cargo.toml"))?;
    let own = templates_dir().join(format!("{stage:02}"));
    let mut sources = vec![templates_dir().join("common")];
    // A shared module goes where the stage's main.rs declares it (`mod hooks;`).
    let main = own.join("src/main.rs");
    let main_text = std::fs::read_to_string(&main).map_err(io(&main))?;
    for shared in SHARED {
        if main_text.contains(&format!("\nmod {shared};")) {
            sources.push(templates_dir().join(shared));
        }
    }
    sources.push(own);
    let mut files = Vec::new();
    for source in sources {
        for relative in walk(&source)? {
            let template = source.join(&relative);
            let text = std::fs::read_to_string(&template).map_err(io(&template))?;
            let text = fill(&text, &template, &skiff, &versions)?;
            let out = match relative.to_str() {
                Some(name) if name.ends_with(".in") => PathBuf::from(name.trim_end_matches(".in")),
                _ => relative.clone(),
            };
            let target = dir.join(&out);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::write(&target, text).map_err(io(&target))?;
            files.push(out);
        }
    }
    // The workspace's lock file: the starter resolves every crate to the version skiff was
    // tested with, offline, and a shared target directory finds them already built.
    let lock = skiff.join("Cargo.lock");
    if lock.is_file() {
        std::fs::copy(&lock, dir.join("Cargo.lock")).map_err(io(&lock))?;
        files.push("Cargo.lock".into());
    }
    files.sort();
    Ok(files)
}

/// The files under `dir`, relative to it, sorted.
fn walk(dir: &Path) -> Result<Vec<PathBuf>, StarterError> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let here = dir.join(&relative);
        for entry in std::fs::read_dir(&here).map_err(io(&here))? {
            let entry = entry.map_err(io(&here))?;
            let path = relative.join(entry.file_name());
            if entry.file_type().map_err(io(&here))?.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Every `[workspace.dependencies]` entry that has a version, as `name → "=x.y.z"`.
fn pinned_versions(
    manifest: &Path,
) -> Result<std::collections::BTreeMap<String, String>, StarterError> {
    let text = std::fs::read_to_string(manifest).map_err(io(manifest))?;
    let value: toml::Table = toml::from_str(&text).map_err(|e| StarterError::Manifest {
        path: manifest.to_path_buf(),
        message: e.to_string(),
    })?;
    let deps = value
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(toml::Value::as_table);
    let mut versions = std::collections::BTreeMap::new();
    for (name, spec) in deps.into_iter().flatten() {
        let version = match spec {
            toml::Value::String(v) => Some(v.as_str()),
            toml::Value::Table(t) => t.get("version").and_then(toml::Value::as_str),
            _ => None,
        };
        if let Some(version) = version {
            versions.insert(name.clone(), version.to_string());
        }
    }
    Ok(versions)
}

/// Fills `{{skiff}}` and `{{version:NAME}}` in a template's text.
fn fill(
    text: &str,
    template: &Path,
    skiff: &Path,
    versions: &std::collections::BTreeMap<String, String>,
) -> Result<String, StarterError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let key = &rest[start + 2..start + len];
        let value = if key == "skiff" {
            skiff.display().to_string()
        } else if let Some(name) = key.strip_prefix("version:") {
            versions
                .get(name)
                .cloned()
                .ok_or_else(|| StarterError::NoVersion {
                    template: template.to_path_buf(),
                    name: name.to_string(),
                })?
        } else {
            // Not a placeholder of ours (a format string in Rust code): left as it is.
            rest[start..start + len + 2].to_string()
        };
        out.push_str(&rest[..start]);
        out.push_str(&value);
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_take_the_workspace_versions() -> Result<(), StarterError> {
        let versions = pinned_versions(&default_skiff().join("Cargo.toml"))?;
        let text = fill(
            "clap = { version = \"{{version:clap}}\" }\nchroot = { path = \"{{skiff}}/x\" }\n{{ not ours }}",
            Path::new("t"),
            Path::new("/src/skiff"),
            &versions,
        )?;
        assert!(text.contains("version = \"=4."), "{text}");
        assert!(text.contains("path = \"/src/skiff/x\""), "{text}");
        assert!(text.ends_with("{{ not ours }}"), "{text}");
        let missing = fill(
            "{{version:nope}}",
            Path::new("t"),
            Path::new("/"),
            &versions,
        );
        assert!(matches!(missing, Err(StarterError::NoVersion { .. })));
        Ok(())
    }

    #[test]
    fn a_starter_never_overwrites() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("mine.rs"), "fn main() {}")?;
        let err = start(2, dir.path(), &default_skiff());
        assert!(matches!(err, Err(StarterError::NotEmpty(_))), "{err:?}");
        let err = start(9, &dir.path().join("new"), &default_skiff());
        assert!(matches!(err, Err(StarterError::NoStage(9))), "{err:?}");
        Ok(())
    }

    #[test]
    fn every_stage_has_a_template_with_its_own_workspace() -> Result<(), StarterError> {
        for stage in STAGES {
            let manifest = templates_dir().join(format!("{stage:02}/Cargo.toml.in"));
            let text = std::fs::read_to_string(&manifest).map_err(io(&manifest))?;
            assert!(text.contains("\n[workspace]"), "{}", manifest.display());
            assert!(
                text.contains(&format!("name = \"{}\"", package_name(stage))),
                "{}",
                manifest.display()
            );
        }
        Ok(())
    }
}
