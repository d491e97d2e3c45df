//! Variable substitution: `$NAME`, `${NAME}`, `${NAME:-default}` in the instructions that support
//! it, done by the builder before the instruction runs.
//!
//! Dockerfile reference, "Environment replacement": ADD, COPY, ENV, ARG, EXPOSE, FROM (with the
//! ARGs before it), LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR have their words substituted, with
//! the quoting rules of a POSIX shell, simplified:
//!
//! - `'...'` keeps everything literally; `"..."` keeps everything but `$` substitutions, and the
//!   escape character escapes only `"`, `$` and itself inside it;
//! - outside quotes the escape character (`\` by default) makes the next character literal:
//!   `\$HOME` is the text `$HOME`;
//! - `${NAME:-word}` is `word` when NAME is unset or empty, `${NAME-word}` only when unset;
//!   `${NAME:+word}` is `word` when NAME is set and not empty (`${NAME+word}`: set);
//!   `${NAME:?message}` and `${NAME?message}` fail the build when NAME is empty or unset.
//!
//! RUN, CMD and ENTRYPOINT are *not* substituted: their text goes to the shell as written, and the
//! variables reach the command through its environment (see [`super::plan::Step::env`]).
//! Quotes are removed by substitution: `ENV A="x y"` sets A to `x y`.

// ANCHOR: substitution
/// Looks up a variable's value; `None` when it is not set (which differs from set and empty).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Substitutes variables in `word` and removes its quotes, keeping it one word (spaces stay).
pub fn substitute(word: &str, escape: char, lookup: Lookup) -> Result<String, String> {
    let mut lexer = Lexer::new(word, escape, lookup);
    let (text, _) = lexer.until(None).map_err(|e| format!("{e} in {word:?}"))?;
    Ok(text)
}

/// Substitutes variables and splits the result into words at unquoted blanks, as EXPOSE does:
/// with `PORTS="80 443"`, `$PORTS` is two words and `"$PORTS"` one.
pub fn substitute_words(word: &str, escape: char, lookup: Lookup) -> Result<Vec<String>, String> {
    let mut lexer = Lexer::new(word, escape, lookup);
    let (_, words) = lexer.until(None).map_err(|e| format!("{e} in {word:?}"))?;
    Ok(words.finish())
}

// ANCHOR_END: substitution

/// How deep `${A:-${B:-...}}` may nest. Each level is a call on the stack, and ONBUILD triggers
/// come from an image's config, which anyone can write: without a limit, a trigger of 60 KB
/// overflowed the stack and aborted the build.
const MAX_NESTING: usize = 64;

/// Reads a word one character at a time.
struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    lookup: Lookup<'a>,
    /// The `${...}` words being read, one inside the other.
    depth: usize,
}

impl<'a> Lexer<'a> {
    fn new(word: &str, escape: char, lookup: Lookup<'a>) -> Self {
        Lexer {
            chars: word.chars().collect(),
            pos: 0,
            escape,
            lookup,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    /// Processes text up to `stop` (consumed) or the end: quotes, escapes and `$`.
    fn until(&mut self, stop: Option<char>) -> Result<(String, Words), String> {
        let mut text = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((text, words));
            }
            match c {
                '\'' => {
                    let quoted = self.single_quoted()?;
                    words.add_quoted(&quoted);
                    text.push_str(&quoted);
                }
                '"' => {
                    let quoted = self.double_quoted()?;
                    words.add_quoted(&quoted);
                    text.push_str(&quoted);
                }
                '$' => {
                    let value = self.dollar()?;
                    // A substituted value is split at its blanks, like unquoted text.
                    value.chars().for_each(|v| words.add(v));
                    text.push_str(&value);
                }
                _ => {
                    self.pos += 1;
                    if c == self.escape {
                        // The escape character makes the next one literal; at the very end it
                        // is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_literal(escaped);
                        text.push(escaped);
                    } else {
                        words.add(c);
                        text.push(c);
                    }
                }
            }
        }
        match stop {
            Some(stop) => Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            )),
            None => Ok((text, words)),
        }
    }

    /// `'...'`: everything literal, no escapes at all.
    fn single_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => return Ok(text),
                Some(c) => text.push(c),
            }
        }
    }

    /// `"..."`: `$` substitutes; the escape character escapes `"`, `$` and itself only.
    fn double_quoted(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(text);
                }
                Some('$') => text.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                text.push(n);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    text.push(c);
                }
            }
        }
    }

    // ANCHOR: dollar
    /// `$NAME`, `${NAME}` or `${NAME<op>word}`, the `$` being the current character.
    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into()); // a lone `$` is just a dollar sign
            }
            return Ok((self.lookup)(&name).unwrap_or_default());
        }
        self.pos += 1;
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut op) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        if op == '}' {
            return Ok((self.lookup)(&name).unwrap_or_default());
        }
        // With a colon, an empty value counts as unset.
        let colon = op == ':';
        if colon {
            op = self.next().ok_or("syntax error: missing '}'")?;
        }
        if !matches!(op, '-' | '+' | '?') {
            return Err(format!(
                "unsupported modifier ({}{op}) in substitution: skiff supports ${{NAME:-word}}, ${{NAME:+word}} and ${{NAME:?message}}",
                if colon { ":" } else { "" }
            ));
        }
        if self.depth == MAX_NESTING {
            return Err(format!("substitutions nested more than {MAX_NESTING} deep"));
        }
        self.depth += 1;
        let word = self.until(Some('}'));
        self.depth -= 1;
        let word = match word {
            Ok((word, _)) => word,
            Err(_) if self.peek().is_none() => return Err("syntax error: missing '}'".into()),
            Err(e) => return Err(e),
        };
        let value = (self.lookup)(&name);
        let unset = match &value {
            None => true,
            Some(v) => colon && v.is_empty(),
        };
        match op {
            '-' if unset => Ok(word),
            '-' => Ok(value.unwrap_or_default()),
            '+' if unset => Ok(String::new()),
            '+' => Ok(word),
            _ if unset => {
                let message = match (&value, word.is_empty()) {
                    (_, false) => word,
                    (None, true) => "is not allowed to be unset".into(),
                    (Some(_), true) => "is not allowed to be empty".into(),
                };
                Err(format!("{name}: {message}"))
            }
            _ => Ok(value.unwrap_or_default()),
        }
    }

    // ANCHOR_END: dollar

    /// A variable name: letters, digits and `_`; or only digits (`$1`); or one special
    /// parameter character (`$@`, `$*`, `$#`...), which are never set in a Dockerfile.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.pos += 1;
                return c.to_string();
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.pos += 1;
        }
        name
    }
}

/// Splits the processed text into words: unquoted blanks separate words, quoted text and escaped
/// characters never do.
#[derive(Debug, Default)]
struct Words {
    words: Vec<String>,
    current: String,
    in_word: bool,
}

impl Words {
    /// An unquoted character: a blank ends the current word.
    fn add(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.current.is_empty() {
                self.words.push(std::mem::take(&mut self.current));
                self.in_word = false;
            }
        } else {
            self.add_literal(c);
        }
    }

    /// An escaped character: always part of the word.
    fn add_literal(&mut self, c: char) {
        self.current.push(c);
        self.in_word = true;
    }

    /// Quoted text: part of the word, blanks included.
    fn add_quoted(&mut self, s: &str) {
        self.current.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.words.push(self.current);
        }
        self.words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found while writing the property tests (`tests/props.rs`): `${A:-` nested 10,000 times
    /// overflowed
    /// the stack, which aborts the process (no error, no cleanup) instead of failing the line.
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let unset = |_: &str| None;
        let nested = |depth: usize| format!("{}x{}", "${A:-".repeat(depth), "}".repeat(depth));
        assert_eq!(substitute(&nested(MAX_NESTING), '\\', &unset).unwrap(), "x");
        let err = substitute(&nested(100_000), '\\', &unset).unwrap_err();
        assert!(
            err.starts_with("substitutions nested more than 64 deep"),
            "{err}"
        );
        let quoted = format!("\"{}\"", nested(100_000));
        assert!(substitute(&quoted, '\\', &unset).is_err());
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "NAME" => Some("world".into()),
            "EMPTY" => Some(String::new()),
            "PORTS" => Some("80 443/udp".into()),
            "1" => Some("one".into()),
            _ => None,
        }
    }

    fn sub(word: &str) -> Result<String, String> {
        substitute(word, '\\', &env)
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(sub("hello $NAME!").unwrap(), "hello world!");
        assert_eq!(sub("${NAME}s").unwrap(), "worlds");
        assert_eq!(sub("$NAMEs").unwrap(), "", "NAMEs is one (unset) name");
        assert_eq!(sub("a$UNSET-b").unwrap(), "a-b");
        assert_eq!(sub("$1x").unwrap(), "onex");
        assert_eq!(sub("cost: 5$").unwrap(), "cost: 5$");
        assert_eq!(sub("$ and $/").unwrap(), "$ and $/");
        assert_eq!(sub("$@").unwrap(), "");
    }

    #[test]
    fn default_and_alternative_values() {
        assert_eq!(sub("${UNSET:-dflt}").unwrap(), "dflt");
        assert_eq!(sub("${EMPTY:-dflt}").unwrap(), "dflt");
        assert_eq!(sub("${EMPTY-dflt}").unwrap(), "");
        assert_eq!(sub("${UNSET-dflt}").unwrap(), "dflt");
        assert_eq!(sub("${NAME:-dflt}").unwrap(), "world");
        assert_eq!(sub("${NAME:+alt}").unwrap(), "alt");
        assert_eq!(sub("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(sub("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(sub("${UNSET:+alt}").unwrap(), "");
        // The word is itself substituted, quotes and all.
        assert_eq!(sub("${UNSET:-$NAME and \"x}\"}").unwrap(), "world and x}");
        assert_eq!(sub("${UNSET:-}").unwrap(), "");
    }

    #[test]
    fn required_values() {
        assert_eq!(sub("${NAME:?}").unwrap(), "world");
        assert_eq!(
            sub("${UNSET:?}").unwrap_err(),
            "UNSET: is not allowed to be unset in \"${UNSET:?}\""
        );
        assert_eq!(
            sub("${EMPTY:?}").unwrap_err(),
            "EMPTY: is not allowed to be empty in \"${EMPTY:?}\""
        );
        assert_eq!(sub("${EMPTY?}").unwrap(), "");
        assert_eq!(
            sub("${UNSET?set it}").unwrap_err(),
            "UNSET: set it in \"${UNSET?set it}\""
        );
    }

    #[test]
    fn escapes_and_quotes() {
        assert_eq!(sub(r"\$NAME").unwrap(), "$NAME");
        assert_eq!(sub(r"\${NAME}").unwrap(), "${NAME}");
        assert_eq!(sub(r"a\ b").unwrap(), "a b");
        assert_eq!(sub(r"trailing\").unwrap(), "trailing");
        assert_eq!(
            sub("'$NAME is \"literal\"'").unwrap(),
            "$NAME is \"literal\""
        );
        assert_eq!(sub("\"$NAME is 'x'\"").unwrap(), "world is 'x'");
        assert_eq!(
            sub(r#""a \"q\" \$NAME \\ \n""#).unwrap(),
            r#"a "q" $NAME \ \n"#
        );
        assert_eq!(
            sub(r#"it's"#).unwrap_err(),
            "unexpected end of statement while looking for matching single-quote in \"it's\""
        );
    }

    #[test]
    fn backtick_escape() {
        let got = substitute(r"c:\dir\`$NAME", '`', &env).unwrap();
        assert_eq!(got, r"c:\dir\$NAME");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            sub("${NAME").unwrap_err(),
            "syntax error: missing '}' in \"${NAME\""
        );
        assert_eq!(
            sub("${}").unwrap_err(),
            "syntax error: bad substitution in \"${}\""
        );
        assert_eq!(
            sub("${:-x}").unwrap_err(),
            "syntax error: bad substitution in \"${:-x}\""
        );
        assert_eq!(
            sub("${NAME:-x").unwrap_err(),
            "syntax error: missing '}' in \"${NAME:-x\""
        );
        assert!(
            sub("${NAME#x}")
                .unwrap_err()
                .starts_with("unsupported modifier (#)")
        );
        assert!(
            sub("${NAME:=x}")
                .unwrap_err()
                .starts_with("unsupported modifier (:=)")
        );
        assert!(sub("\"open").unwrap_err().contains("matching double-quote"));
    }

    #[test]
    fn word_splitting() {
        let words = |w: &str| substitute_words(w, '\\', &env).unwrap();
        assert_eq!(words("$PORTS 8080"), ["80", "443/udp", "8080"]);
        assert_eq!(words("\"$PORTS\""), ["80 443/udp"]);
        assert_eq!(words(r"a\ b c"), ["a b", "c"]);
        assert_eq!(words("  "), Vec::<String>::new());
    }
}
