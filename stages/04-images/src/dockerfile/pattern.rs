//! Path patterns, as `.dockerignore` lines and COPY sources write them.
//!
//! The syntax is Go's `filepath.Match` (`*` any run of characters but `/`, `?` one character but
//! `/`, `[a-z]` and `[^a-z]` character classes, `\` to escape) plus `**`, which matches any number
//! of directories, zero included: `**/*.go` matches `a.go` and `x/y/a.go`. A pattern matches a
//! whole path, never a part of it. This follows moby's `patternmatcher`, down to its shortcuts:
//! a pattern without wildcards is compared as a string, `dir/**` is a prefix test and `**/name`
//! a suffix test.

use std::fmt;

/// Cleans a slash-separated path as Go's `path.Clean` does: no `.` components, no `//`, `..`
/// resolved where it can be, no trailing `/`; an empty result is `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Whether `text` holds a wildcard (`*`, `?`, `[`) that is not escaped.
pub fn has_wildcards(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This exact character.
    Char(char),
    /// `?`: any one character but `/`.
    AnyChar,
    /// `*`: any run of characters without `/`, possibly empty.
    Star,
    /// `**/` (or `**` inside a pattern): nothing, or any run of characters that ends with `/`.
    AnyDirs,
    /// `**` at the end: anything at all.
    AnyRest,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// How a pattern is tested: the cheap ways first, as moby does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// `prefix**`: the path must start with the prefix.
    Prefix(String),
    /// `**suffix`: the path must end with the suffix (`**/a` also matches `a`).
    Suffix(String),
    /// Anything else: match the tokens.
    Tokens,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    kind: Kind,
    tokens: Vec<Token>,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Pattern {
    /// Compiles a pattern (already cleaned by the caller when it comes from a file); the error
    /// says what is malformed.
    pub fn new(text: &str) -> Result<Pattern, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut kind = Kind::Exact;
        let mut wild = false; // whether the tokens must be matched one by one
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let first = i == 0;
            i += 1;
            match c {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1; // `**/` is `**`
                    }
                    if i == chars.len() {
                        tokens.push(Token::AnyRest);
                        if !wild && kind == Kind::Exact {
                            kind = Kind::Prefix(text[..text.len() - 2].to_string());
                        } else {
                            wild = true;
                        }
                    } else {
                        tokens.push(Token::AnyDirs);
                        wild = true;
                    }
                    if first {
                        kind = Kind::Suffix(text[2..].to_string());
                        wild = false;
                    }
                }
                '*' => {
                    tokens.push(Token::Star);
                    wild = true;
                }
                '?' => {
                    tokens.push(Token::AnyChar);
                    wild = true;
                }
                '\\' => match chars.get(i) {
                    Some(&next) => {
                        i += 1;
                        tokens.push(Token::Char(next));
                        wild = true;
                    }
                    None => return Err("a pattern cannot end with \\".into()),
                },
                '[' => {
                    let (class, next) = class(&chars, i)?;
                    tokens.push(class);
                    i = next;
                    wild = true;
                }
                _ => tokens.push(Token::Char(c)),
            }
        }
        if wild {
            kind = Kind::Tokens;
        }
        Ok(Pattern {
            text: text.to_string(),
            kind,
            tokens,
        })
    }

    /// Whether the pattern matches the whole of `path` (slash-separated, relative, cleaned).
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Tokens => {
                let path: Vec<char> = path.chars().collect();
                match_tokens(&self.tokens, &path)
            }
        }
    }
}

/// Parses a character class after its `[`; returns the token and the index after the `]`.
fn class(chars: &[char], mut i: usize) -> Result<(Token, usize), String> {
    const UNCLOSED: &str = "a character class [ is not closed with ]";
    let negated = chars.get(i) == Some(&'^');
    i += usize::from(negated);
    let mut ranges = Vec::new();
    // One character of a class: `\x` is x; `-` and `]` must be escaped to be characters.
    let one = |i: &mut usize| -> Result<char, String> {
        match chars.get(*i) {
            None => Err(UNCLOSED.to_string()),
            Some('\\') => {
                let c = chars.get(*i + 1).ok_or(UNCLOSED)?;
                *i += 2;
                Ok(*c)
            }
            Some(c @ ('-' | ']')) => Err(format!(
                "{c:?} must be escaped in a character class, or the class is empty"
            )),
            Some(c) => {
                *i += 1;
                Ok(*c)
            }
        }
    };
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Token::Class { negated, ranges }, i + 1));
        }
        let low = one(&mut i)?;
        let high = if chars.get(i) == Some(&'-') {
            i += 1;
            one(&mut i)?
        } else {
            low
        };
        if high < low {
            return Err(format!("the range {low}-{high} is backwards"));
        }
        ranges.push((low, high));
    }
}

/// Whether `tokens` match all of `path`. `can[t][p]` says whether `tokens[t..]` match
/// `path[p..]`; it is filled from the ends backwards, so each `*` costs one look ahead.
fn match_tokens(tokens: &[Token], path: &[char]) -> bool {
    let (nt, np) = (tokens.len(), path.len());
    let mut can = vec![vec![false; np + 1]; nt + 1];
    can[nt][np] = true;
    for t in (0..nt).rev() {
        // For AnyDirs: whether some `/` at or after p is followed by a match of the rest.
        let mut slash_then_rest = false;
        for p in (0..=np).rev() {
            let here = path.get(p).copied();
            let one = |ok: bool| ok && can[t + 1][p + 1];
            can[t][p] = match &tokens[t] {
                Token::Char(c) => one(here == Some(*c)),
                Token::AnyChar => one(here.is_some_and(|h| h != '/')),
                Token::Class { negated, ranges } => one(here.is_some_and(|h| {
                    ranges.iter().any(|&(lo, hi)| lo <= h && h <= hi) != *negated
                })),
                Token::Star => can[t + 1][p] || (here.is_some_and(|h| h != '/') && can[t][p + 1]),
                Token::AnyRest => can[t + 1][p] || (here.is_some() && can[t][p + 1]),
                Token::AnyDirs => {
                    if here == Some('/') && can[t + 1][p + 1] {
                        slash_then_rest = true;
                    }
                    can[t + 1][p] || slash_then_rest
                }
            };
        }
    }
    can[0][0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Pattern::new(pattern).unwrap().matches(path)
    }

    #[test]
    fn clean_follows_go() {
        assert_eq!(clean(""), ".");
        assert_eq!(clean("."), ".");
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("a/./b/../c"), "a/c");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("/"), "/");
        assert_eq!(clean("//x/"), "/x");
    }

    #[test]
    fn go_filepath_match_syntax() {
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "dir/a.txt"), "* does not cross /");
        assert!(m("*/*.txt", "dir/a.txt"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a/c"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("[\\]]", "]"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a.b", "a.b"));
        assert!(!m("a.b", "axb"), ". is not a regex dot");
        assert!(!m("abc", "abcd"), "whole paths only");
    }

    #[test]
    fn double_star_matches_any_number_of_directories() {
        assert!(m("**/*.go", "a.go"));
        assert!(m("**/*.go", "x/y/a.go"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/xb"));
        assert!(m("a/**", "a/x/y"));
        assert!(!m("a/**", "a"));
        assert!(m("**", "anything/at/all"));
        assert!(m("**/node_modules", "node_modules"));
        assert!(m("**/node_modules", "web/node_modules"));
        assert!(!m("**/node_modules", "web/node_modules2"));
        assert!(m("a/*/**", "a/b/c"));
        assert!(m("**/a*", "x/abc"));
    }

    #[test]
    fn wildcard_detection() {
        assert!(has_wildcards("*.txt"));
        assert!(has_wildcards("a[bc]"));
        assert!(!has_wildcards("plain/name.txt"));
        assert!(!has_wildcards("escaped\\*"));
    }

    #[test]
    fn malformed_patterns_are_errors() {
        assert!(Pattern::new("[abc").is_err());
        assert!(Pattern::new("[]").is_err());
        assert!(Pattern::new("[-a]").is_err());
        assert!(Pattern::new("[z-a]").is_err());
        assert!(Pattern::new("abc\\").is_err());
    }
}
