//! `.dockerignore`: the files of the build context that a build never sees.
//!
//! Dockerfile reference, ".dockerignore file": one pattern a line ([`super::pattern`] syntax),
//! matched against paths relative to the context directory. Lines starting with `#` are comments
//! and blank lines are skipped; each pattern is trimmed and cleaned like Go's `filepath.Clean`,
//! and a leading `/` means nothing (`/tmp` is `tmp`). A line starting with `!` is an *exception*:
//! it puts back what earlier lines excluded.
//!
//! The rules, as moby's `patternmatcher` applies them:
//!
//! - the *last* pattern that matches a path decides: excluded, or (for `!`) kept;
//! - a pattern that matches a directory also matches everything under it: `build` excludes
//!   `build/out/app`, and `!build/out/app` after it puts that one file back;
//! - a walk of the context skips an excluded directory entirely unless some exception starts
//!   with that directory's path (`!build/...`); only then does it look inside.
//!
//! The Dockerfile and `.dockerignore` can be excluded like any file: COPY then cannot see them,
//! but the build still reads them.

use std::io;
use std::path::Path;

use super::error::{DockerfileError, Location};
use super::pattern::{Pattern, clean};

/// One line of a `.dockerignore`.
#[derive(Debug, Clone)]
struct Rule {
    pattern: Pattern,
    /// The cleaned pattern text, without `!`.
    text: String,
    /// `!pattern`: put back what earlier rules excluded.
    exception: bool,
}

/// The patterns of a `.dockerignore`, ready to match.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    /// The name of the file, at the root of the build context.
    pub const FILE_NAME: &'static str = ".dockerignore";

    /// No patterns: nothing is excluded.
    pub fn empty() -> Self {
        DockerIgnore::default()
    }

    /// Reads `.dockerignore` from a context directory; a context without one excludes nothing.
    pub fn read(context_dir: &Path) -> Result<Self, DockerfileError> {
        let path = context_dir.join(Self::FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => Self::parse(&path, &String::from_utf8_lossy(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::empty()),
            Err(source) => Err(DockerfileError::Read {
                at: Location::new(path, 0),
                source,
            }),
        }
    }

    /// Parses the text of a `.dockerignore` (its path is for error messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, DockerfileError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue; // a comment: `#` in the first column only
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, text) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let at = Location::new(path, i + 1);
            let bad = |message: String| DockerfileError::IgnorePattern {
                at: at.clone(),
                pattern: line.to_string(),
                message,
            };
            if text.is_empty() {
                return Err(bad(
                    "a lone ! excludes nothing: write !PATTERN to keep files an earlier line excluded"
                        .into(),
                ));
            }
            let mut text = clean(text);
            if text.len() > 1 && text.starts_with('/') {
                text.remove(0);
            }
            let pattern = Pattern::new(&text).map_err(bad)?;
            rules.push(Rule {
                pattern,
                text,
                exception,
            });
        }
        Ok(DockerIgnore { rules })
    }

    /// The patterns, as cleaned, with `!` in front of exceptions.
    pub fn patterns(&self) -> Vec<String> {
        self.rules
            .iter()
            .map(|r| format!("{}{}", if r.exception { "!" } else { "" }, r.text))
            .collect()
    }

    // ANCHOR: excluded
    /// Whether the context-relative, slash-separated `path` is excluded: the last rule that
    /// matches it, or one of its parent directories, decides.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let parents: Vec<&str> = match path.rfind('/') {
            Some(slash) => path[..slash].split('/').collect(),
            None => Vec::new(),
        };
        let mut excluded = false;
        for rule in &self.rules {
            // Only a rule that could change the answer is worth testing.
            if rule.exception != excluded {
                continue;
            }
            let matches = rule.pattern.matches(&path)
                || (1..=parents.len()).any(|n| rule.pattern.matches(&parents[..n].join("/")));
            if matches {
                excluded = !rule.exception;
            }
        }
        excluded
    }
    // ANCHOR_END: excluded

    /// Whether a walk must look inside the excluded directory `dir`, because an exception might
    /// put back something under it (an exception pattern that starts with `dir/`).
    pub fn may_keep_under(&self, dir: &str) -> bool {
        let prefix = format!("{}/", clean(dir));
        self.rules
            .iter()
            .any(|r| r.exception && format!("{}/", r.text).starts_with(&prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(Path::new(".dockerignore"), text).unwrap()
    }

    #[test]
    fn comments_blank_lines_and_cleaning() {
        let ig = ignore("# comment\n\n  *.log  \n/tmp/\n./build//out/../cache\n !keep.log\n");
        assert_eq!(ig.patterns(), ["*.log", "tmp", "build/cache", "!keep.log"]);
        assert!(ig.is_excluded("a.log"));
        assert!(!ig.is_excluded("keep.log"));
        assert!(ig.is_excluded("tmp"));
        assert!(ig.is_excluded("build/cache/x"));
        assert!(!ig.is_excluded("build/other"));
        assert!(
            !ig.is_excluded("src/a.log"),
            "*.log matches the top level only"
        );
    }

    #[test]
    fn a_hash_after_blanks_is_a_pattern() {
        let ig = ignore("  #odd\n");
        assert!(ig.is_excluded("#odd"));
    }

    #[test]
    fn excluded_directory_excludes_its_contents() {
        let ig = ignore("node_modules\n");
        assert!(ig.is_excluded("node_modules"));
        assert!(ig.is_excluded("node_modules/left-pad/index.js"));
        assert!(!ig.is_excluded("src/node_modules"));
        assert!(!ig.may_keep_under("node_modules"));
    }

    #[test]
    fn exceptions_put_files_back_and_the_last_match_wins() {
        let ig = ignore("docs\n!docs/README.md\n");
        assert!(ig.is_excluded("docs/guide.md"));
        assert!(!ig.is_excluded("docs/README.md"));
        assert!(ig.may_keep_under("docs"));
        assert!(!ig.may_keep_under("src"));

        let ig = ignore("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(ig.is_excluded("CHANGES.md"));
        assert!(!ig.is_excluded("README.md"));
        assert!(ig.is_excluded("README-secret.md"));
    }

    #[test]
    fn exception_for_everything_but() {
        let ig = ignore("*\n!src\n!Dockerfile\n");
        assert!(ig.is_excluded("target"));
        assert!(!ig.is_excluded("src"));
        assert!(!ig.is_excluded("src/main.rs"));
        assert!(!ig.is_excluded("Dockerfile"));
        assert!(ig.is_excluded(".dockerignore"));
    }

    #[test]
    fn double_star_patterns() {
        let ig = ignore("**/*.tmp\n**/.git\n!keep/**/*.tmp\n");
        assert!(ig.is_excluded("a.tmp"));
        assert!(ig.is_excluded("x/y/a.tmp"));
        assert!(ig.is_excluded(".git/config"));
        assert!(ig.is_excluded("vendor/lib/.git/HEAD"));
        assert!(!ig.is_excluded("keep/a.tmp"));
        assert!(!ig.is_excluded("keep/deep/down/a.tmp"));
    }

    #[test]
    fn bad_patterns_name_their_line() {
        let err = DockerIgnore::parse(Path::new("ctx/.dockerignore"), "ok\n\n[abc\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ctx/.dockerignore:3: bad pattern \"[abc\": a character class [ is not closed with ]"
        );
        let err = DockerIgnore::parse(Path::new(".dockerignore"), "!\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with(".dockerignore:1: bad pattern \"!\""),
            "{err}"
        );
    }

    #[test]
    fn missing_file_excludes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ig = DockerIgnore::read(dir.path()).unwrap();
        assert!(!ig.is_excluded("anything"));
        std::fs::write(dir.path().join(".dockerignore"), "secret\n").unwrap();
        assert!(
            DockerIgnore::read(dir.path())
                .unwrap()
                .is_excluded("secret")
        );
    }
}
