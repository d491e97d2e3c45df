//! From one logical line to an [`Instruction`]: the instruction word, its `--flags`, and the
//! arguments each instruction takes.
//!
//! Dockerfile reference, per instruction. The shapes, as moby/buildkit's parser reads them:
//!
//! - `--flag=value` words at the start of the arguments are flags (any instruction; an
//!   instruction that has none refuses them);
//! - RUN, CMD, ENTRYPOINT, SHELL: an *exec form* (a JSON array of strings) or a *shell form*
//!   (the rest of the line, as written);
//! - COPY, ADD, VOLUME: a JSON array, or words separated by blanks;
//! - ENV, LABEL: `KEY=VALUE` words, with quotes (`A="x y"`), or the old `KEY VALUE` form where
//!   the value is the rest of the line; ARG: `NAME` or `NAME=DEFAULT` words;
//! - FROM, EXPOSE: words separated by blanks; WORKDIR, USER, STOPSIGNAL, MAINTAINER: the rest of
//!   the line, as one string.
//!
//! Docker treats an exec form that is not valid JSON as a shell form (`CMD ["a",` runs the shell
//! command `["a",`, which fails when the container starts). skiff refuses it instead when the text
//! clearly meant to be JSON: a `[` directly followed by a quote, or a quote and a comma.
//! `RUN [ -f /x ]` stays a shell command.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::{DockerfileError, Location};
use super::instruction::{ArgDecl, Command, CopyArgs, FromArgs, Healthcheck, Instruction};
use super::suggest::closest;

/// Every instruction name, as the Dockerfile reference writes them.
pub const INSTRUCTIONS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "SHELL",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "LABEL",
    "VOLUME",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "MAINTAINER",
    "ONBUILD",
];

/// What a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--chown=VALUE`.
    Text,
}

/// The flags of one instruction: the ones skiff reads, and the ones Docker has and skiff
/// refuses with a clear message rather than calling them unknown.
struct FlagSpec {
    known: &'static [(&'static str, FlagKind)],
    docker_only: &'static [&'static str],
}

const NO_FLAGS: FlagSpec = FlagSpec {
    known: &[],
    docker_only: &[],
};

/// Reads the instruction on one logical line.
pub fn parse_instruction(
    at: &Location,
    line: &str,
    escape: char,
) -> Result<Instruction, DockerfileError> {
    let (word, rest) = split_first_word(line.trim());
    // Flags are looked for after the same whitespace that is trimmed off the arguments, so an
    // argument never starts with a `--` that would read as a flag when printed again.
    let (flag_words, rest) = extract_flags(rest.trim_start());
    let rest = rest.trim();
    let name = word.to_ascii_uppercase();
    let p = Parser {
        at,
        escape,
        instruction: INSTRUCTIONS
            .iter()
            .find(|n| **n == name)
            .copied()
            .unwrap_or("?"),
    };
    let flags = |spec: &FlagSpec| p.flags(&flag_words, spec);
    match name.as_str() {
        "FROM" => p.from(
            rest,
            flags(&FlagSpec {
                known: &[("platform", FlagKind::Text)],
                docker_only: &[],
            })?,
        ),
        "RUN" => {
            flags(&FlagSpec {
                known: &[],
                docker_only: &["mount", "network", "security", "device"],
            })?;
            p.refuse_heredoc(rest)?;
            Ok(Instruction::Run(p.command(rest)?))
        }
        "CMD" => {
            flags(&NO_FLAGS)?;
            Ok(Instruction::Cmd(p.command(rest)?))
        }
        "ENTRYPOINT" => {
            flags(&NO_FLAGS)?;
            Ok(Instruction::Entrypoint(p.command(rest)?))
        }
        "SHELL" => {
            flags(&NO_FLAGS)?;
            p.shell(rest)
        }
        "COPY" => {
            let f = flags(&FlagSpec {
                known: &[
                    ("from", FlagKind::Text),
                    ("chown", FlagKind::Text),
                    ("chmod", FlagKind::Text),
                    ("link", FlagKind::Bool),
                ],
                docker_only: &["parents", "exclude"],
            })?;
            Ok(Instruction::Copy(p.copy(rest, f)?))
        }
        "ADD" => {
            let f = flags(&FlagSpec {
                known: &[
                    ("chown", FlagKind::Text),
                    ("chmod", FlagKind::Text),
                    ("link", FlagKind::Bool),
                ],
                docker_only: &["checksum", "keep-git-dir", "exclude", "unpack"],
            })?;
            Ok(Instruction::Add(p.copy(rest, f)?))
        }
        "ENV" => {
            flags(&NO_FLAGS)?;
            Ok(Instruction::Env(p.name_values(rest)?))
        }
        "LABEL" => {
            flags(&NO_FLAGS)?;
            Ok(Instruction::Label(p.name_values(rest)?))
        }
        "ARG" => {
            flags(&NO_FLAGS)?;
            p.arg(rest)
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
            flags(&NO_FLAGS)?;
            if rest.is_empty() {
                return Err(p.args("requires exactly one argument"));
            }
            let s = rest.to_string();
            Ok(match name.as_str() {
                "WORKDIR" => Instruction::Workdir(s),
                "USER" => Instruction::User(s),
                "STOPSIGNAL" => Instruction::StopSignal(s),
                _ => Instruction::Maintainer(s),
            })
        }
        "EXPOSE" => {
            flags(&NO_FLAGS)?;
            let ports = split_blanks(rest);
            if ports.is_empty() {
                return Err(p.args("requires at least one argument"));
            }
            Ok(Instruction::Expose(ports))
        }
        "VOLUME" => {
            flags(&NO_FLAGS)?;
            let paths = p.list(rest)?;
            if paths.is_empty() {
                return Err(p.args("requires at least one argument"));
            }
            Ok(Instruction::Volume(paths))
        }
        "HEALTHCHECK" => {
            let f = flags(&FlagSpec {
                known: &[
                    ("interval", FlagKind::Text),
                    ("timeout", FlagKind::Text),
                    ("start-period", FlagKind::Text),
                    ("start-interval", FlagKind::Text),
                    ("retries", FlagKind::Text),
                ],
                docker_only: &[],
            })?;
            p.healthcheck(rest, f)
        }
        "ONBUILD" => {
            flags(&NO_FLAGS)?;
            p.onbuild(rest)
        }
        _ => Err(DockerfileError::UnknownInstruction {
            at: at.clone(),
            name: word.to_string(),
            suggestion: closest(word, INSTRUCTIONS).map(str::to_string),
        }),
    }
}

/// The instruction being parsed, for building its errors.
struct Parser<'a> {
    at: &'a Location,
    escape: char,
    instruction: &'static str,
}

/// One form of a command or a list.
enum Form<'a> {
    /// A JSON array of strings.
    Json(Vec<String>),
    /// Anything else, as written.
    Text(&'a str),
}

impl Parser<'_> {
    fn args(&self, message: impl Into<String>) -> DockerfileError {
        DockerfileError::Arguments {
            at: self.at.clone(),
            instruction: self.instruction,
            message: message.into(),
        }
    }

    fn invalid(&self, message: impl Into<String>) -> DockerfileError {
        DockerfileError::Invalid {
            at: self.at.clone(),
            instruction: self.instruction,
            message: message.into(),
        }
    }

    fn bad_flag(&self, flag: &str, message: impl Into<String>) -> DockerfileError {
        DockerfileError::BadFlag {
            at: self.at.clone(),
            instruction: self.instruction,
            flag: flag.to_string(),
            message: message.into(),
        }
    }

    /// Checks the `--flags` against the instruction's, returning their values by name.
    fn flags(
        &self,
        words: &[String],
        spec: &FlagSpec,
    ) -> Result<BTreeMap<&'static str, String>, DockerfileError> {
        let mut values = BTreeMap::new();
        for word in words {
            let word = word.strip_prefix("--").unwrap_or(word);
            let (name, value) = match word.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (word, None),
            };
            let Some(&(known, kind)) = spec.known.iter().find(|(n, _)| *n == name) else {
                if spec.docker_only.contains(&name) {
                    return Err(DockerfileError::Unsupported {
                        at: self.at.clone(),
                        what: format!("{} --{name}", self.instruction),
                        hint: "remove the flag, or build this image with docker".into(),
                    });
                }
                let all = spec
                    .known
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(spec.docker_only.iter().copied());
                return Err(DockerfileError::UnknownFlag {
                    at: self.at.clone(),
                    instruction: self.instruction,
                    flag: name.to_string(),
                    suggestion: closest(name, all).map(|s| format!("--{s}")),
                });
            };
            let value = match (kind, value) {
                (FlagKind::Text, Some(v)) => v.to_string(),
                (FlagKind::Text, None) => {
                    return Err(
                        self.bad_flag(name, format!("missing a value: write --{name}=VALUE"))
                    );
                }
                (FlagKind::Bool, None) => "true".into(),
                (FlagKind::Bool, Some(v)) if v.eq_ignore_ascii_case("true") => "true".into(),
                (FlagKind::Bool, Some(v)) if v.eq_ignore_ascii_case("false") => "false".into(),
                (FlagKind::Bool, Some(v)) => {
                    return Err(self.bad_flag(name, format!("expected true or false, not {v:?}")));
                }
            };
            if values.insert(known, value).is_some() {
                return Err(self.bad_flag(name, "given more than once"));
            }
        }
        Ok(values)
    }

    /// A JSON array of strings, or text. See the module doc for when bad JSON is an error.
    fn maybe_json<'t>(&self, rest: &'t str) -> Result<Form<'t>, DockerfileError> {
        if !rest.starts_with('[') {
            return Ok(Form::Text(rest));
        }
        let bad = |reason: String| DockerfileError::InvalidJson {
            at: self.at.clone(),
            instruction: self.instruction,
            reason,
        };
        match serde_json::from_str::<serde_json::Value>(rest) {
            Ok(serde_json::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    serde_json::Value::String(s) => Ok(s),
                    other => Err(bad(format!(
                        "element {} is {other}, not a string; every element must be a string",
                        i + 1
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(Form::Json),
            Ok(_) => Ok(Form::Text(rest)),
            Err(e) if meant_as_json(rest) => {
                let hint = if rest.contains('\'') {
                    "; JSON strings take double quotes, not single quotes"
                } else {
                    ""
                };
                Err(bad(format!("{e}{hint}")))
            }
            Err(_) => Ok(Form::Text(rest)),
        }
    }

    /// RUN, CMD, ENTRYPOINT: exec or shell form.
    fn command(&self, rest: &str) -> Result<Command, DockerfileError> {
        if rest.is_empty() {
            return Err(self.args("requires at least one argument"));
        }
        Ok(match self.maybe_json(rest)? {
            Form::Json(args) => Command::Exec(args),
            Form::Text(text) => Command::Shell(text.to_string()),
        })
    }

    /// BuildKit's heredocs (`RUN <<EOF` and the lines up to `EOF`) are not supported: refused
    /// here, at their first line, rather than failing on a line of the script.
    fn refuse_heredoc(&self, rest: &str) -> Result<(), DockerfileError> {
        let is_heredoc = |word: &str| {
            let Some(marker) = word.strip_prefix("<<") else {
                return false;
            };
            let marker = marker.strip_prefix('-').unwrap_or(marker);
            let marker = marker.trim_matches(['"', '\'']);
            marker.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && marker
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if rest.starts_with('[') || !split_blanks(rest).iter().any(|w| is_heredoc(w)) {
            return Ok(());
        }
        Err(DockerfileError::Unsupported {
            at: self.at.clone(),
            what: format!("a heredoc in {} ({rest})", self.instruction),
            hint: "join the commands with && on continued lines, or put the script in a file of the build context and COPY it".into(),
        })
    }

    /// COPY, ADD, VOLUME: a JSON array or blank-separated words.
    fn list(&self, rest: &str) -> Result<Vec<String>, DockerfileError> {
        Ok(match self.maybe_json(rest)? {
            Form::Json(items) => items,
            Form::Text(text) => split_blanks(text),
        })
    }

    fn from(
        &self,
        rest: &str,
        flags: BTreeMap<&str, String>,
    ) -> Result<Instruction, DockerfileError> {
        let words = split_blanks(rest);
        let name = match words.as_slice() {
            [_] => None,
            [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
                let lower = name.to_ascii_lowercase();
                let valid = lower.starts_with(|c: char| c.is_ascii_lowercase())
                    && lower
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                if !valid {
                    return Err(self.invalid(format!(
                        "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                    )));
                }
                Some(lower)
            }
            _ => {
                return Err(
                    self.args("requires either one or three arguments: FROM IMAGE [AS NAME]")
                );
            }
        };
        Ok(Instruction::From(FromArgs {
            image: words[0].clone(),
            name,
            platform: flags.get("platform").cloned(),
        }))
    }

    fn shell(&self, rest: &str) -> Result<Instruction, DockerfileError> {
        match self.maybe_json(rest)? {
            Form::Json(args) if args.is_empty() => Err(self.args("requires at least one argument")),
            Form::Json(args) => Ok(Instruction::Shell(args)),
            Form::Text(_) => Err(self.args(
                "requires the arguments to be in JSON form, like SHELL [\"/bin/bash\", \"-c\"]",
            )),
        }
    }

    fn copy(&self, rest: &str, flags: BTreeMap<&str, String>) -> Result<CopyArgs, DockerfileError> {
        self.refuse_heredoc(rest)?;
        let mut words = self.list(rest)?;
        let Some(dest) = words.pop().filter(|_| !words.is_empty()) else {
            return Err(self.args(
                "requires at least two arguments, but only one was provided. Destination could not be determined",
            ));
        };
        Ok(CopyArgs {
            sources: words,
            dest,
            from: flags.get("from").cloned(),
            chown: flags.get("chown").cloned(),
            chmod: flags.get("chmod").cloned(),
            link: flags.get("link").is_some_and(|v| v == "true"),
        })
    }

    /// ENV and LABEL: `K=V...` words, or the old `K V` with the value the rest of the line.
    fn name_values(&self, rest: &str) -> Result<Vec<(String, String)>, DockerfileError> {
        let words = split_words(rest, self.escape);
        let Some(first) = words.first() else {
            return Err(self.args("requires at least one argument"));
        };
        if !first.contains('=') {
            let (key, value) = split_first_word(rest);
            if value.trim().is_empty() {
                return Err(self.args(format!(
                    "must have two arguments: {0} KEY=VALUE (or the old form {0} KEY VALUE)",
                    self.instruction
                )));
            }
            return Ok(vec![(key.to_string(), value.trim().to_string())]);
        }
        words
            .iter()
            .map(|word| match word.split_once('=') {
                Some(("", _)) => Err(self.args("names can not be blank")),
                Some((k, v)) => Ok((k.to_string(), v.to_string())),
                None => Err(self.args(format!(
                    "syntax error - can't find = in {word:?}. Must be of the form: name=value"
                ))),
            })
            .collect()
    }

    fn arg(&self, rest: &str) -> Result<Instruction, DockerfileError> {
        let words = split_words(rest, self.escape);
        if words.is_empty() {
            return Err(self.args("requires at least one argument"));
        }
        words
            .iter()
            .map(|word| match word.split_once('=') {
                Some(("", _)) => Err(self.args("names can not be blank")),
                Some((name, default)) => Ok(ArgDecl {
                    name: name.to_string(),
                    default: Some(default.to_string()),
                }),
                None => Ok(ArgDecl {
                    name: word.clone(),
                    default: None,
                }),
            })
            .collect::<Result<_, _>>()
            .map(Instruction::Arg)
    }

    fn healthcheck(
        &self,
        rest: &str,
        flags: BTreeMap<&str, String>,
    ) -> Result<Instruction, DockerfileError> {
        let (kind, command) = split_first_word(rest);
        let command = command.trim();
        match kind.to_ascii_uppercase().as_str() {
            "" => Err(self.args("requires at least one argument")),
            "NONE" if !command.is_empty() => Err(self.args("NONE takes no arguments")),
            "NONE" => Ok(Instruction::Healthcheck(Healthcheck {
                test: vec!["NONE".into()],
                ..Healthcheck::default()
            })),
            "CMD" => {
                let test = match self.maybe_json(command)? {
                    Form::Json(args) if !args.is_empty() => {
                        ["CMD".to_string()].into_iter().chain(args).collect()
                    }
                    Form::Text(text) if !text.is_empty() => vec!["CMD-SHELL".into(), text.into()],
                    _ => return Err(self.args("CMD needs a command: HEALTHCHECK CMD COMMAND")),
                };
                let interval = |name: &str| -> Result<Option<Duration>, DockerfileError> {
                    let Some(value) = flags.get(name) else {
                        return Ok(None);
                    };
                    let d = go_duration(value).map_err(|e| self.bad_flag(name, e))?;
                    if d.is_zero() {
                        return Ok(None); // zero means "the default", as in Docker
                    }
                    if d < Duration::from_millis(1) {
                        return Err(self.bad_flag(name, "cannot be less than 1ms"));
                    }
                    Ok(Some(d))
                };
                let retries = match flags.get("retries") {
                    None => None,
                    Some(v) => Some(v.parse::<u32>().map_err(|_| {
                        self.bad_flag(
                            "retries",
                            format!("{v:?} is not a number of retries (0 or more)"),
                        )
                    })?),
                };
                Ok(Instruction::Healthcheck(Healthcheck {
                    test,
                    interval: interval("interval")?,
                    timeout: interval("timeout")?,
                    start_period: interval("start-period")?,
                    start_interval: interval("start-interval")?,
                    retries,
                }))
            }
            _ => Err(self.invalid(format!(
                "unknown type {kind:?} in HEALTHCHECK (try CMD or NONE)"
            ))),
        }
    }

    fn onbuild(&self, rest: &str) -> Result<Instruction, DockerfileError> {
        let (trigger, _) = split_first_word(rest);
        match trigger.to_ascii_uppercase().as_str() {
            "" => return Err(self.args("requires at least one argument")),
            "ONBUILD" => {
                return Err(self.invalid("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"));
            }
            t @ ("FROM" | "MAINTAINER") => {
                return Err(self.invalid(format!("{t} isn't allowed as an ONBUILD trigger")));
            }
            _ => {}
        }
        // The trigger runs in a later build, but a broken one is reported now.
        let trigger = parse_instruction(self.at, rest, self.escape)?;
        trigger
            .substitute(self.escape, &|_| Some("x".into()))
            .map_err(|message| DockerfileError::Syntax {
                at: self.at.clone(),
                instruction: self.instruction,
                message,
            })?;
        Ok(Instruction::Onbuild(rest.to_string()))
    }
}

/// Whether text that starts with `[` but is not valid JSON was meant as an exec form.
fn meant_as_json(text: &str) -> bool {
    let inner = &text[1..];
    let tight = inner.starts_with(['"', '\'']);
    let quoted = inner.trim_start().starts_with(['"', '\'']);
    tight || (quoted && text.contains(','))
}

/// Go's `[\t\v\f\r ]+`: the blanks that separate words in a Dockerfile line.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

/// The first word of `text`, and the rest after the blanks that follow it.
fn split_first_word(text: &str) -> (&str, &str) {
    match text.find(is_blank) {
        Some(i) => (&text[..i], text[i..].trim_start_matches(is_blank)),
        None => (text, ""),
    }
}

/// Blank-separated words, without any quote handling.
fn split_blanks(text: &str) -> Vec<String> {
    text.split(is_blank)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Takes the `--flag[=value]` words off the front of the arguments; a word `--` ends them. A
/// flag value may be quoted (`--chown="a b"`).
fn extract_flags(text: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = text.trim_start_matches(is_blank);
    while rest.starts_with("--") {
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut end = rest.len();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match (quote, c) {
                (None, c) if is_blank(c) => {
                    end = i;
                    break;
                }
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') if !matches!(quote, Some('\'')) => {
                    if let Some((_, next)) = chars.next() {
                        word.push(next);
                    }
                }
                (_, c) => word.push(c),
            }
        }
        rest = rest[end..].trim_start_matches(is_blank);
        if word == "--" {
            break;
        }
        flags.push(word);
    }
    (flags, rest)
}

/// Splits ENV, LABEL and ARG arguments into words at blanks outside quotes, *keeping* the quotes
/// and escapes: substitution removes them later, as it does for every other word.
fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quote.is_none() && c.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut word));
                in_word = false;
            }
            continue;
        }
        in_word = true;
        match quote {
            None if c == '"' || c == '\'' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ => {}
        }
        word.push(c);
        // The escape character keeps the next one in the word, even a quote or a blank, except
        // inside single quotes, where nothing is special.
        if c == escape && quote != Some('\'') {
            match chars.next() {
                Some(next) => word.push(next),
                None => {
                    word.pop(); // an escape at the very end is dropped
                }
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Parses a duration as Go's `time.ParseDuration` does: `30s`, `1m30s`, `1.5h`, `500ms`, `0`.
pub(crate) fn go_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: write it like 30s, 1m30s or 500ms");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with('-') {
        return Err(format!("invalid duration {text:?}: it cannot be negative"));
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let (whole, fraction) = rest[..number_end]
            .split_once('.')
            .unwrap_or((&rest[..number_end], ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(bad());
        }
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: u128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_end..];
        let digits = |d: &str| -> Result<u128, String> {
            if d.is_empty() {
                Ok(0)
            } else {
                d.parse().map_err(|_| bad())
            }
        };
        // Nanoseconds are the finest unit: more than 18 fraction digits cannot matter.
        let fraction = &fraction[..fraction.len().min(18)];
        let places = 10u128.pow(u32::try_from(fraction.len()).map_err(|_| bad())?);
        nanos = digits(whole)?
            .checked_mul(scale)
            .and_then(|n| n.checked_add(digits(fraction).ok()? * scale / places))
            .and_then(|n| n.checked_add(nanos))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_nanos(
        u64::try_from(nanos).map_err(|_| bad())?,
    ))
}

/// The names `STOPSIGNAL` accepts (with or without `SIG`), besides numbers and `RTMIN+n`.
const SIGNALS: [&str; 34] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// Checks a signal name or number, as `docker stop` will need it.
fn check_signal(signal: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "invalid signal {signal:?}: use a name like SIGTERM or SIGQUIT, or a number from 1 to 64"
        )
    };
    if let Ok(n) = signal.parse::<u32>() {
        return if (1..=64).contains(&n) {
            Ok(())
        } else {
            Err(bad())
        };
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = |base: &str, sign: char| {
        name.strip_prefix(base).is_some_and(|n| {
            n.is_empty()
                || n.strip_prefix(sign)
                    .and_then(|k| k.parse::<u32>().ok())
                    .is_some_and(|k| (1..=15).contains(&k))
        })
    };
    if SIGNALS.contains(&name) || realtime("RTMIN", '+') || realtime("RTMAX", '-') {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Checks one EXPOSE word: `80`, `80/udp`, `8000-8010/tcp`.
pub(crate) fn check_port(spec: &str) -> Result<(), String> {
    if spec.contains(':') {
        return Err(format!(
            "invalid port {spec:?}: EXPOSE takes container ports (80, 80/udp, 8000-8010); publishing to a host port is the job of run -p"
        ));
    }
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    if !["tcp", "udp", "sctp"].contains(&proto.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "invalid protocol {proto:?} in {spec:?}: use tcp, udp or sctp"
        ));
    }
    let (low, high) = ports.split_once('-').unwrap_or((ports, ports));
    let number = |p: &str| {
        p.parse::<u16>().map_err(|_| {
            format!("invalid port {p:?} in {spec:?}: a port is a number from 0 to 65535")
        })
    };
    if number(low)? > number(high)? {
        return Err(format!(
            "invalid port range {ports:?}: the first port must not be above the last"
        ));
    }
    Ok(())
}

/// Checks `--chown=USER[:GROUP]` (names or numeric ids).
pub(crate) fn check_chown(chown: &str) -> Result<(), String> {
    let (user, group) = match chown.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (chown, None),
    };
    let ok = |part: &str| !part.is_empty() && !part.contains([':', ' ', '\t']);
    if ok(user) && group.is_none_or(ok) {
        Ok(())
    } else {
        Err(format!(
            "{chown:?} is not USER, USER:GROUP, UID or UID:GID (for example --chown=1000:1000 or --chown=app:app)"
        ))
    }
}

/// Parses `--chmod=MODE`: octal permission bits, up to 7777.
pub(crate) fn parse_chmod(chmod: &str) -> Result<u32, String> {
    u32::from_str_radix(chmod, 8)
        .ok()
        .filter(|m| *m <= 0o7777 && !chmod.is_empty() && chmod.len() <= 4)
        .ok_or_else(|| format!("{chmod:?} is not an octal mode such as 755 or 0644"))
}

/// Checks the values of an instruction once substituted: what a Dockerfile can get wrong that
/// the syntax does not show (a port, a signal, an empty name).
pub(crate) fn validate(at: &Location, instruction: &Instruction) -> Result<(), DockerfileError> {
    let name = instruction.name();
    let invalid = |message: String| DockerfileError::Invalid {
        at: at.clone(),
        instruction: name,
        message,
    };
    let bad_flag = |flag: &str, message: String| DockerfileError::BadFlag {
        at: at.clone(),
        instruction: name,
        flag: flag.into(),
        message,
    };
    match instruction {
        Instruction::From(f) if f.image.trim().is_empty() => Err(invalid(
            "the base image name is empty after substitution".into(),
        )),
        Instruction::Copy(c) | Instruction::Add(c) => {
            if let Some(chown) = &c.chown {
                check_chown(chown).map_err(|e| bad_flag("chown", e))?;
            }
            if let Some(chmod) = &c.chmod {
                parse_chmod(chmod).map_err(|e| bad_flag("chmod", e))?;
            }
            Ok(())
        }
        Instruction::Env(kv) | Instruction::Label(kv) if kv.iter().any(|(k, _)| k.is_empty()) => {
            Err(invalid("names can not be blank".into()))
        }
        Instruction::Arg(decls) if decls.iter().any(|d| d.name.is_empty()) => {
            Err(invalid("names can not be blank".into()))
        }
        Instruction::Workdir(p) if p.is_empty() => Err(invalid("the path is empty".into())),
        Instruction::User(u) if u.is_empty() => Err(invalid("the user is empty".into())),
        Instruction::Expose(ports) => ports
            .iter()
            .try_for_each(|p| check_port(p).map_err(invalid)),
        Instruction::Volume(v) if v.iter().any(|p| p.trim().is_empty()) => Err(invalid(
            "VOLUME specified can not be an empty string".into(),
        )),
        Instruction::StopSignal(s) => check_signal(s).map_err(invalid),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and checks values, as `Dockerfile::parse` does for a line without `$`.
    fn parse(line: &str) -> Result<Instruction, DockerfileError> {
        let at = Location::new("Dockerfile", 7);
        let instruction = parse_instruction(&at, line, '\\')?;
        validate(&at, &instruction)?;
        Ok(instruction)
    }

    fn ok(line: &str) -> Instruction {
        parse(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn err(line: &str) -> String {
        parse(line).unwrap_err().to_string()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// Found by the property tests (`tests/props.rs`): `MAINTAINER \u{a0}--` was read as the
    /// argument `--`, which prints as `MAINTAINER --`, a line with no argument at all.
    #[test]
    fn flags_end_where_the_arguments_start_after_unicode_blanks() {
        assert_eq!(
            err("MAINTAINER \u{a0}--"),
            "Dockerfile:7: MAINTAINER requires exactly one argument"
        );
        assert!(err("RUN \u{a0}--network=none true").contains("RUN --network"));
        assert_eq!(
            ok("WORKDIR \u{a0}/app"),
            Instruction::Workdir("/app".into())
        );
    }

    #[test]
    fn from_forms() {
        assert_eq!(
            ok("FROM busybox"),
            Instruction::From(FromArgs {
                image: "busybox".into(),
                name: None,
                platform: None
            })
        );
        assert_eq!(
            ok("from --platform=linux/amd64 alpine:3.20 as Build-1"),
            Instruction::From(FromArgs {
                image: "alpine:3.20".into(),
                name: Some("build-1".into()),
                platform: Some("linux/amd64".into())
            })
        );
        assert_eq!(
            err("FROM a b"),
            "Dockerfile:7: FROM requires either one or three arguments: FROM IMAGE [AS NAME]"
        );
        assert!(err("FROM a AS 1st").contains("invalid name for build stage: \"1st\""));
    }

    #[test]
    fn run_cmd_entrypoint_forms() {
        assert_eq!(
            ok("RUN echo hi && ls"),
            Instruction::Run(Command::Shell("echo hi && ls".into()))
        );
        assert_eq!(
            ok(r#"RUN ["echo", "hi there"]"#),
            Instruction::Run(Command::Exec(strings(&["echo", "hi there"])))
        );
        assert_eq!(
            ok(r#"CMD [ "nginx", "-g", "daemon off;" ]"#),
            Instruction::Cmd(Command::Exec(strings(&["nginx", "-g", "daemon off;"])))
        );
        assert_eq!(ok("CMD []"), Instruction::Cmd(Command::Exec(vec![])));
        assert_eq!(
            ok("entrypoint /bin/app --serve"),
            Instruction::Entrypoint(Command::Shell("/bin/app --serve".into()))
        );
        // A shell test command is not JSON, and is not meant to be.
        assert_eq!(
            ok("RUN [ -f /etc/passwd ]"),
            Instruction::Run(Command::Shell("[ -f /etc/passwd ]".into()))
        );
        assert_eq!(
            ok(r#"RUN [ "$A" = x ]"#),
            Instruction::Run(Command::Shell(r#"[ "$A" = x ]"#.into()))
        );
    }

    #[test]
    fn invalid_json_is_refused() {
        assert!(
            err(r#"CMD ["nginx", "-g""#).starts_with("Dockerfile:7: CMD: invalid JSON array (")
        );
        let e = err("CMD ['nginx', '-g']");
        assert!(e.contains("double quotes"), "{e}");
        let e = err(r#"ENTRYPOINT ["app", 1]"#);
        assert!(e.contains("element 2 is 1, not a string"), "{e}");
    }

    #[test]
    fn copy_and_add_forms() {
        assert_eq!(
            ok("COPY --chown=app:app --chmod=755 a b /dest/"),
            Instruction::Copy(CopyArgs {
                sources: strings(&["a", "b"]),
                dest: "/dest/".into(),
                chown: Some("app:app".into()),
                chmod: Some("755".into()),
                ..CopyArgs::default()
            })
        );
        assert_eq!(
            ok(r#"COPY --from=builder ["my file", "/x"]"#),
            Instruction::Copy(CopyArgs {
                sources: strings(&["my file"]),
                dest: "/x".into(),
                from: Some("builder".into()),
                ..CopyArgs::default()
            })
        );
        assert_eq!(
            ok("ADD --link app.tar.gz /srv"),
            Instruction::Add(CopyArgs {
                sources: strings(&["app.tar.gz"]),
                dest: "/srv".into(),
                link: true,
                ..CopyArgs::default()
            })
        );
        assert_eq!(
            ok(r#"COPY --chown="1000:1000" -- --weird /x"#),
            Instruction::Copy(CopyArgs {
                sources: strings(&["--weird"]),
                dest: "/x".into(),
                chown: Some("1000:1000".into()),
                ..CopyArgs::default()
            })
        );
    }

    #[test]
    fn copy_errors() {
        assert_eq!(
            err("COPY onlyone"),
            "Dockerfile:7: COPY requires at least two arguments, but only one was provided. Destination could not be determined"
        );
        assert_eq!(
            err("COPY --frm=x a b"),
            "Dockerfile:7: COPY: unknown flag --frm (did you mean --from?)"
        );
        assert_eq!(
            err("ADD --from=x a b"),
            "Dockerfile:7: ADD: unknown flag --from"
        );
        assert_eq!(
            err("COPY --chown a b"),
            "Dockerfile:7: COPY: bad --chown: missing a value: write --chown=VALUE"
        );
        assert!(
            err("COPY --chown=a:b:c a b")
                .starts_with("Dockerfile:7: COPY: bad --chown: \"a:b:c\" is not USER")
        );
        assert!(err("COPY --chown=:g a b").contains("bad --chown"));
        assert!(err("COPY --chmod=99 a b").contains("bad --chmod: \"99\" is not an octal mode"));
        assert_eq!(
            err("COPY --link=maybe a b"),
            "Dockerfile:7: COPY: bad --link: expected true or false, not \"maybe\""
        );
        assert_eq!(
            err("COPY --chown=1 --chown=2 a b"),
            "Dockerfile:7: COPY: bad --chown: given more than once"
        );
        assert!(err("COPY --parents a b").contains("COPY --parents is not supported by skiff"));
    }

    #[test]
    fn env_and_label_forms() {
        assert_eq!(
            ok(r#"ENV A=1 B="two words" C=three\ words"#),
            Instruction::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into()),
                ("C".into(), "three\\ words".into()),
            ])
        );
        assert_eq!(
            ok("ENV PATH /usr/bin:/bin  extra"),
            Instruction::Env(vec![("PATH".into(), "/usr/bin:/bin  extra".into())])
        );
        assert_eq!(
            ok(r#"LABEL "com.example.name"="my app" version=1.0"#),
            Instruction::Label(vec![
                ("\"com.example.name\"".into(), "\"my app\"".into()),
                ("version".into(), "1.0".into())
            ])
        );
        assert!(err("ENV ONLYKEY").starts_with("Dockerfile:7: ENV must have two arguments"));
        assert_eq!(
            err("ENV A=1 B"),
            "Dockerfile:7: ENV syntax error - can't find = in \"B\". Must be of the form: name=value"
        );
        assert_eq!(err("ENV =1"), "Dockerfile:7: ENV names can not be blank");
        assert_eq!(
            err("LABEL"),
            "Dockerfile:7: LABEL requires at least one argument"
        );
    }

    #[test]
    fn arg_forms() {
        assert_eq!(
            ok("ARG VERSION ARCH=amd64 EMPTY="),
            Instruction::Arg(vec![
                ArgDecl {
                    name: "VERSION".into(),
                    default: None
                },
                ArgDecl {
                    name: "ARCH".into(),
                    default: Some("amd64".into())
                },
                ArgDecl {
                    name: "EMPTY".into(),
                    default: Some(String::new())
                },
            ])
        );
        assert_eq!(
            err("ARG"),
            "Dockerfile:7: ARG requires at least one argument"
        );
    }

    #[test]
    fn single_string_instructions() {
        assert_eq!(
            ok("WORKDIR /my app"),
            Instruction::Workdir("/my app".into())
        );
        assert_eq!(ok("USER app:staff"), Instruction::User("app:staff".into()));
        assert_eq!(
            ok("STOPSIGNAL SIGQUIT"),
            Instruction::StopSignal("SIGQUIT".into())
        );
        assert_eq!(
            ok("MAINTAINER Jo <jo@example.com>"),
            Instruction::Maintainer("Jo <jo@example.com>".into())
        );
        assert_eq!(
            err("WORKDIR"),
            "Dockerfile:7: WORKDIR requires exactly one argument"
        );
        assert_eq!(
            err("USER"),
            "Dockerfile:7: USER requires exactly one argument"
        );
    }

    #[test]
    fn expose_volume_shell() {
        assert_eq!(
            ok("EXPOSE 80 443/tcp 53/udp"),
            Instruction::Expose(strings(&["80", "443/tcp", "53/udp"]))
        );
        assert_eq!(
            ok("VOLUME /data /logs"),
            Instruction::Volume(strings(&["/data", "/logs"]))
        );
        assert_eq!(
            ok(r#"VOLUME ["/var/lib/db"]"#),
            Instruction::Volume(strings(&["/var/lib/db"]))
        );
        assert_eq!(
            ok(r#"SHELL ["/bin/bash", "-o", "pipefail", "-c"]"#),
            Instruction::Shell(strings(&["/bin/bash", "-o", "pipefail", "-c"]))
        );
        assert!(
            err("SHELL /bin/bash -c")
                .starts_with("Dockerfile:7: SHELL requires the arguments to be in JSON form")
        );
        assert_eq!(
            err("SHELL []"),
            "Dockerfile:7: SHELL requires at least one argument"
        );
        assert_eq!(
            err("EXPOSE"),
            "Dockerfile:7: EXPOSE requires at least one argument"
        );
    }

    #[test]
    fn healthcheck_forms() {
        assert_eq!(
            ok(
                "HEALTHCHECK --interval=5m --timeout=3s --retries=2 CMD curl -f http://localhost/ || exit 1"
            ),
            Instruction::Healthcheck(Healthcheck {
                test: strings(&["CMD-SHELL", "curl -f http://localhost/ || exit 1"]),
                interval: Some(Duration::from_secs(300)),
                timeout: Some(Duration::from_secs(3)),
                retries: Some(2),
                ..Healthcheck::default()
            })
        );
        assert_eq!(
            ok(r#"HEALTHCHECK CMD ["/probe", "ok"]"#),
            Instruction::Healthcheck(Healthcheck {
                test: strings(&["CMD", "/probe", "ok"]),
                ..Healthcheck::default()
            })
        );
        assert_eq!(
            ok("healthcheck none"),
            Instruction::Healthcheck(Healthcheck {
                test: strings(&["NONE"]),
                ..Healthcheck::default()
            })
        );
        assert_eq!(
            err("HEALTHCHECK NONE x"),
            "Dockerfile:7: HEALTHCHECK NONE takes no arguments"
        );
        assert!(err("HEALTHCHECK PING x").contains("unknown type \"PING\""));
        assert!(
            err("HEALTHCHECK --interval=soon CMD x")
                .contains("bad --interval: invalid duration \"soon\"")
        );
        assert!(err("HEALTHCHECK --timeout=10us CMD x").contains("cannot be less than 1ms"));
        assert!(err("HEALTHCHECK --retries=-1 CMD x").contains("bad --retries"));
    }

    #[test]
    fn onbuild_and_unknown_instructions() {
        assert_eq!(
            ok("ONBUILD RUN make"),
            Instruction::Onbuild("RUN make".into())
        );
        assert!(err("ONBUILD ONBUILD RUN x").contains("chaining ONBUILD"));
        assert!(err("ONBUILD FROM x").contains("FROM isn't allowed as an ONBUILD trigger"));
        assert!(err("ONBUILD ENV A=\"x").contains("ONBUILD: unexpected end of statement"));
        assert_eq!(
            err("ONBUILD RUNN x"),
            "Dockerfile:7: unknown instruction \"RUNN\" (did you mean RUN?)"
        );
        assert_eq!(
            err("RUNN make"),
            "Dockerfile:7: unknown instruction \"RUNN\" (did you mean RUN?)"
        );
        assert_eq!(
            err("frm busybox"),
            "Dockerfile:7: unknown instruction \"frm\" (did you mean FROM?)"
        );
        assert_eq!(
            err("BANANA x"),
            "Dockerfile:7: unknown instruction \"BANANA\""
        );
        assert!(
            err("RUN --mount=type=cache,target=/x make")
                .contains("RUN --mount is not supported by skiff")
        );
        assert_eq!(
            err("CMD --verbose"),
            "Dockerfile:7: CMD: unknown flag --verbose"
        );
        assert_eq!(
            err("RUN"),
            "Dockerfile:7: RUN requires at least one argument"
        );
    }

    #[test]
    fn value_checks() {
        let at = Location::new("Dockerfile", 2);
        let check = |i: Instruction| validate(&at, &i).map_err(|e| e.to_string());
        assert!(
            check(Instruction::Expose(strings(&[
                "80",
                "8000-8010/udp",
                "9/SCTP"
            ])))
            .is_ok()
        );
        assert!(
            check(Instruction::Expose(strings(&["http"])))
                .unwrap_err()
                .contains("invalid port \"http\"")
        );
        assert!(
            check(Instruction::Expose(strings(&["80/icmp"])))
                .unwrap_err()
                .contains("invalid protocol")
        );
        assert!(
            check(Instruction::Expose(strings(&["8080:80"])))
                .unwrap_err()
                .contains("run -p")
        );
        assert!(
            check(Instruction::Expose(strings(&["90-80"])))
                .unwrap_err()
                .contains("range")
        );
        assert!(check(Instruction::StopSignal("SIGTERM".into())).is_ok());
        assert!(check(Instruction::StopSignal("quit".into())).is_ok());
        assert!(check(Instruction::StopSignal("9".into())).is_ok());
        assert!(check(Instruction::StopSignal("SIGRTMIN+3".into())).is_ok());
        assert_eq!(
            check(Instruction::StopSignal("SIGNOPE".into())).unwrap_err(),
            "Dockerfile:2: STOPSIGNAL: invalid signal \"SIGNOPE\": use a name like SIGTERM or SIGQUIT, or a number from 1 to 64"
        );
        assert!(check(Instruction::Volume(strings(&["/a", " "]))).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(go_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(go_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(go_duration("0").unwrap(), Duration::ZERO);
        assert!(go_duration("5").is_err());
        assert!(go_duration("-5s").is_err());
        assert!(go_duration("5d").is_err());
    }

    #[test]
    fn word_splitting_keeps_quotes_for_substitution() {
        assert_eq!(
            split_words(r#"A="x y" B='$z w' C=a\ b"#, '\\'),
            [r#"A="x y""#, "B='$z w'", r"C=a\ b"]
        );
        assert_eq!(split_words("A=`\" B", '`'), ["A=`\"", "B"]);
        assert_eq!(
            extract_flags("--a=1 --b='x y' rest of it"),
            (strings(&["--a=1", "--b=x y"]), "rest of it")
        );
        assert_eq!(extract_flags("-not a flag"), (vec![], "-not a flag"));
    }
}
