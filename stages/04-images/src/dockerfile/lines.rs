//! From text to logical lines: parser directives, comments, blank lines and continuations.
//!
//! A Dockerfile is read line by line, as Docker's parser does (Dockerfile reference, "Format" and
//! "Parser directives"):
//!
//! - at the very top, lines like `# escape=`` ` are *parser directives*; the first line that is
//!   not one (a comment, a blank line, an instruction) ends them;
//! - a line whose first non-blank character is `#` is a comment, even in the middle of a
//!   continued instruction; a `#` later in a line is an ordinary character;
//! - a line ending in the escape character (`\`, or `` ` `` after `# escape=`` `), possibly
//!   followed by spaces, continues on the next line; the escape character is removed and the
//!   lines are joined as they are, without adding a space.
//!
//! Each logical line keeps the number of its first physical line, for error messages.

use std::collections::BTreeSet;
use std::path::Path;

use super::error::{DockerfileError, Location};

/// One instruction's text, continuation lines joined, with the number of its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// The 1-based number of the first physical line.
    pub line: usize,
    /// The text, leading whitespace removed, continuations joined.
    pub text: String,
}

/// The directives at the top of a Dockerfile.
#[derive(Debug)]
struct Directives {
    /// The escape character: `\` unless `# escape=`` `.
    escape: char,
    /// Directives seen, to refuse a second one of the same name.
    seen: BTreeSet<String>,
    /// Whether directives are over (a line that is not one has been read).
    done: bool,
}

impl Directives {
    /// The directives Docker knows. Only `escape` changes parsing; `syntax` (which frontend
    /// image to use) and `check` (build checks) are accepted and have no effect here.
    const KNOWN: [&'static str; 3] = ["escape", "syntax", "check"];

    /// Looks at one line (leading whitespace removed) while directives may still come.
    fn see(&mut self, line: &str, at: &Location) -> Result<(), DockerfileError> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = directive(line) else {
            self.done = true;
            return Ok(());
        };
        if !Self::KNOWN.contains(&name.as_str()) {
            // An unknown directive is just a comment, and ends the directives.
            self.done = true;
            return Ok(());
        }
        if !self.seen.insert(name.clone()) {
            return Err(DockerfileError::Directive {
                at: at.clone(),
                message: format!("only one {name} parser directive can be used"),
            });
        }
        if name == "escape" {
            self.escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(DockerfileError::Directive {
                        at: at.clone(),
                        message: format!(
                            "invalid escape character {value:?}: the escape directive takes \\ or `"
                        ),
                    });
                }
            };
        }
        Ok(())
    }
}

/// `# name = value` with a name of letters and digits: what a directive looks like.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let name = &rest[..end];
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let value = rest[end..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_ascii_lowercase(), value.to_string()))
}

/// A comment line: `#` as the first non-blank character.
fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

// ANCHOR: continuation
/// Removes a trailing escape character (and the blanks after it): `Some(rest)` when the line
/// continues on the next one, `None` when it ends the instruction.
fn continued(line: &str, escape: char) -> Option<&str> {
    line.trim_end_matches([' ', '\t']).strip_suffix(escape)
}

/// Splits Dockerfile text into logical lines; also returns the escape character in force.
pub fn logical_lines(path: &Path, text: &str) -> Result<(char, Vec<LogicalLine>), DockerfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text); // a UTF-8 byte-order mark
    let mut directives = Directives {
        escape: '\\',
        seen: BTreeSet::new(),
        done: false,
    };
    let mut physical = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut out = Vec::new();

    while let Some((number, raw)) = physical.next() {
        let line = raw.trim_start();
        directives.see(line, &Location::new(path, number))?;
        if is_comment(line) || line.is_empty() {
            continue;
        }
        let escape = directives.escape;
        let mut text = String::new();
        let mut rest = Some(line);
        // Join lines while the last one ended with the escape character.
        while let Some(part) = rest {
            match continued(part, escape) {
                None => {
                    text.push_str(part);
                    rest = None;
                }
                Some(head) => {
                    text.push_str(head);
                    // The next line that is neither a comment nor blank carries on the
                    // instruction; at the end of the file, the instruction simply ends.
                    rest = physical
                        .by_ref()
                        .map(|(_, l)| l)
                        .find(|l| !is_comment(l) && !l.trim().is_empty());
                }
            }
        }
        if !text.trim().is_empty() {
            out.push(LogicalLine { line: number, text });
        }
    }
    Ok((directives.escape, out))
}
// ANCHOR_END: continuation

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, String)> {
        let (_, lines) = logical_lines(Path::new("Dockerfile"), text).unwrap();
        lines.into_iter().map(|l| (l.line, l.text)).collect()
    }

    #[test]
    fn comments_blank_lines_and_leading_whitespace_are_skipped() {
        let got = lines(
            "# a comment\n\n   FROM busybox\n\t# indented comment\n  RUN echo # not a comment\n",
        );
        assert_eq!(
            got,
            [
                (3, "FROM busybox".to_string()),
                (5, "RUN echo # not a comment".to_string())
            ]
        );
    }

    #[test]
    fn continuations_join_lines_and_keep_the_first_line_number() {
        let got = lines("FROM a\nRUN echo one \\\n    two \\  \n  three\nCMD x\n");
        assert_eq!(
            got,
            [
                (1, "FROM a".to_string()),
                (2, "RUN echo one     two   three".to_string()),
                (5, "CMD x".to_string())
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines_inside_a_continuation_are_skipped() {
        let got = lines("RUN a \\\n# comment\n\n   \n  && b\nRUN c\n");
        assert_eq!(
            got,
            [(1, "RUN a   && b".to_string()), (6, "RUN c".to_string())]
        );
    }

    #[test]
    fn continuation_at_end_of_file_ends_the_instruction() {
        assert_eq!(lines("RUN a \\"), [(1, "RUN a ".to_string())]);
    }

    #[test]
    fn crlf_and_byte_order_mark_are_handled() {
        let got = lines("\u{feff}FROM a\r\nRUN b \\\r\n c\r\n");
        assert_eq!(
            got,
            [(1, "FROM a".to_string()), (2, "RUN b  c".to_string())]
        );
    }

    #[test]
    fn escape_directive_switches_to_backtick() {
        let (escape, got) = logical_lines(
            Path::new("Dockerfile"),
            "# escape=`\nFROM a\nRUN dir c:\\ `\n  /w\n",
        )
        .unwrap();
        assert_eq!(escape, '`');
        assert_eq!(got[1].text, "RUN dir c:\\   /w");
        assert_eq!(got[1].line, 3);
    }

    #[test]
    fn directives_end_at_the_first_other_line() {
        // After a comment, `# escape=` is an ordinary comment.
        let (escape, _) =
            logical_lines(Path::new("Dockerfile"), "# hello\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(escape, '\\');
        // After a blank line too.
        let (escape, _) = logical_lines(Path::new("Dockerfile"), "\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(escape, '\\');
        // Spaces around the name and the value are fine; syntax= is accepted first.
        let (escape, _) = logical_lines(
            Path::new("Dockerfile"),
            "# syntax=docker/dockerfile:1\n  #  ESCAPE = `  \nFROM a\n",
        )
        .unwrap();
        assert_eq!(escape, '`');
    }

    #[test]
    fn bad_directives_are_errors_with_their_line() {
        let err = logical_lines(Path::new("Dockerfile"), "# escape=x\nFROM a\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Dockerfile:1: invalid escape character \"x\": the escape directive takes \\ or `"
        );
        let err = logical_lines(Path::new("Dockerfile"), "# escape=`\n# escape=\\\nFROM a\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Dockerfile:2: only one escape parser directive can be used"
        );
    }
}
