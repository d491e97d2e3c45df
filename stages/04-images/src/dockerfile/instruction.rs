//! The instructions of a Dockerfile, as data.
//!
//! Dockerfile reference, "Overview": each instruction is a word (any case) and its arguments.
//! [`Instruction`] holds them split out but, as parsed, not yet substituted: words still have
//! their quotes and `$NAME` references. [`Instruction::substitute`] returns the same instruction
//! with variables replaced and quotes removed, in the instructions where Docker does that;
//! its [`Display`](std::fmt::Display) form is the normalised text used for the build cache.

use std::fmt;
use std::time::Duration;

use super::substitute::{Lookup, substitute, substitute_words};

// ANCHOR: instruction
/// One Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM [--platform=P] IMAGE [AS NAME]`: start from an image (`scratch`: from nothing).
    From(FromArgs),
    /// `RUN COMMAND`: run a command in a container of the image so far; what it changes on
    /// disk becomes a new layer.
    Run(Command),
    /// `CMD`: the command a container runs by default, or the default arguments of the
    /// ENTRYPOINT.
    Cmd(Command),
    /// `ENTRYPOINT`: the program a container runs; CMD and `run` arguments are passed to it.
    Entrypoint(Command),
    /// `SHELL ["executable", "parameters"]`: the shell that runs shell forms after it.
    Shell(Vec<String>),
    /// `COPY [--from=] [--chown=] [--chmod=] SRC... DEST`: files from the build context.
    Copy(CopyArgs),
    /// `ADD [--chown=] [--chmod=] SRC... DEST`: like COPY, but a local tar archive is unpacked.
    Add(CopyArgs),
    /// `ENV KEY=VALUE...` (or the old `ENV KEY VALUE`): environment variables, for the rest of
    /// the build and for containers of the image.
    Env(Vec<(String, String)>),
    /// `ARG NAME[=DEFAULT]...`: build arguments, set with `--build-arg`; visible to the rest of
    /// the build only, never stored in the image.
    Arg(Vec<ArgDecl>),
    /// `WORKDIR PATH`: the working directory of RUN, CMD, ENTRYPOINT, COPY after it.
    Workdir(String),
    /// `USER USER[:GROUP]`: the user RUN, CMD and ENTRYPOINT run as.
    User(String),
    /// `EXPOSE PORT[/PROTO]...`: ports the image's program listens on (documentation for
    /// `run -P`; it publishes nothing).
    Expose(Vec<String>),
    /// `LABEL KEY=VALUE...`: metadata stored in the image.
    Label(Vec<(String, String)>),
    /// `VOLUME PATH...`: directories that hold data, each mounted as a volume by `run`.
    Volume(Vec<String>),
    /// `STOPSIGNAL SIGNAL`: the signal `stop` sends first.
    StopSignal(String),
    /// `HEALTHCHECK [OPTIONS] CMD COMMAND` or `HEALTHCHECK NONE`.
    Healthcheck(Healthcheck),
    /// `MAINTAINER NAME` (deprecated): the image's author.
    Maintainer(String),
    /// `ONBUILD INSTRUCTION`: an instruction stored in the image, run by builds that start
    /// FROM it.
    Onbuild(String),
}
// ANCHOR_END: instruction

/// The arguments of FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromArgs {
    /// The image reference, or `scratch`.
    pub image: String,
    /// The stage name after `AS`, lowercased.
    pub name: Option<String>,
    /// `--platform=os/arch`, as given.
    pub platform: Option<String>,
}

impl FromArgs {
    /// Whether the stage starts from nothing.
    pub fn is_scratch(&self) -> bool {
        self.image.eq_ignore_ascii_case("scratch")
    }
}

/// The two forms of RUN, CMD and ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `RUN echo hi`: a string that the shell (SHELL, `/bin/sh -c` by default) runs.
    Shell(String),
    /// `RUN ["echo", "hi"]`: the argument vector itself, no shell involved.
    Exec(Vec<String>),
}

impl Command {
    /// The argument vector this command runs as: the shell form goes after `shell`.
    pub fn argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            Command::Shell(text) => shell.iter().cloned().chain([text.clone()]).collect(),
            Command::Exec(args) => args.clone(),
        }
    }
}

/// The arguments of COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyArgs {
    /// What to copy: paths (or patterns) relative to the build context.
    pub sources: Vec<String>,
    /// Where to, in the image; relative to WORKDIR when not absolute; a directory when it
    /// ends with `/`.
    pub dest: String,
    /// `--from=STAGE|IMAGE` (COPY only): copy from there instead of the build context.
    pub from: Option<String>,
    /// `--chown=USER[:GROUP]`: owner of the copied files (root otherwise).
    pub chown: Option<String>,
    /// `--chmod=MODE`: octal permissions of the copied files.
    pub chmod: Option<String>,
    /// `--link`: accepted; skiff's layers are independent of this.
    pub link: bool,
}

/// One `NAME[=DEFAULT]` of ARG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The argument's name.
    pub name: String,
    /// Its default value, used when no `--build-arg` sets it.
    pub default: Option<String>,
}

/// HEALTHCHECK, in the form an image config stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", arg...]` (exec form) or `["CMD-SHELL", command]` (shell form).
    pub test: Vec<String>,
    /// `--interval`: time between checks; `None`: the default (30s).
    pub interval: Option<Duration>,
    /// `--timeout`: how long one check may take; `None`: the default (30s).
    pub timeout: Option<Duration>,
    /// `--start-period`: failures in this first period do not count.
    pub start_period: Option<Duration>,
    /// `--start-interval`: time between checks during the start period.
    pub start_interval: Option<Duration>,
    /// `--retries`: consecutive failures before the container is unhealthy; `None`: 3.
    pub retries: Option<u32>,
}

impl Instruction {
    /// The instruction's name, as the Dockerfile reference writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Shell(_) => "SHELL",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Label(_) => "LABEL",
            Instruction::Volume(_) => "VOLUME",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Onbuild(_) => "ONBUILD",
        }
    }

    /// The same instruction with `$` variables substituted and quotes removed, in the
    /// instructions whose words Docker substitutes; RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK,
    /// MAINTAINER and ONBUILD come back unchanged.
    pub fn substitute(&self, escape: char, lookup: Lookup) -> Result<Instruction, String> {
        let word = |w: &str| substitute(w, escape, lookup);
        let opt = |w: &Option<String>| w.as_deref().map(word).transpose();
        let pairs = |kv: &[(String, String)]| -> Result<Vec<(String, String)>, String> {
            kv.iter().map(|(k, v)| Ok((word(k)?, word(v)?))).collect()
        };
        Ok(match self {
            Instruction::From(f) => Instruction::From(FromArgs {
                image: word(&f.image)?,
                name: f.name.clone(),
                platform: opt(&f.platform)?,
            }),
            Instruction::Copy(c) => Instruction::Copy(c.substitute(&word)?),
            Instruction::Add(c) => Instruction::Add(c.substitute(&word)?),
            Instruction::Env(kv) => Instruction::Env(pairs(kv)?),
            Instruction::Label(kv) => Instruction::Label(pairs(kv)?),
            Instruction::Arg(decls) => Instruction::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: word(&d.name)?,
                            default: opt(&d.default)?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            ),
            Instruction::Workdir(p) => Instruction::Workdir(word(p)?),
            Instruction::User(u) => Instruction::User(word(u)?),
            Instruction::StopSignal(s) => Instruction::StopSignal(word(s)?),
            Instruction::Volume(v) => {
                Instruction::Volume(v.iter().map(|p| word(p)).collect::<Result<_, _>>()?)
            }
            // EXPOSE alone splits substituted values into words: `EXPOSE $PORTS`.
            Instruction::Expose(ports) => Instruction::Expose(
                ports
                    .iter()
                    .map(|p| substitute_words(p, escape, lookup))
                    .collect::<Result<Vec<_>, _>>()?
                    .concat(),
            ),
            other => other.clone(),
        })
    }
}

impl CopyArgs {
    fn substitute(
        &self,
        word: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<CopyArgs, String> {
        let opt = |w: &Option<String>| w.as_deref().map(word).transpose();
        Ok(CopyArgs {
            sources: self
                .sources
                .iter()
                .map(|s| word(s))
                .collect::<Result<_, _>>()?,
            dest: word(&self.dest)?,
            from: opt(&self.from)?,
            chown: opt(&self.chown)?,
            chmod: opt(&self.chmod)?,
            link: self.link,
        })
    }
}

/// A JSON string: the unambiguous way to write a word in normalised text.
pub(crate) fn json(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A JSON array of strings.
pub(crate) fn json_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| json(s)).collect();
    format!("[{}]", quoted.join(","))
}

/// A duration as Go prints it, which HEALTHCHECK flags are written in (`1m30s`, `500ms`).
pub(crate) fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return format!("{}ns", d.as_nanos());
    }
    if d.as_secs() == 0 {
        return format!("{ms}ms");
    }
    let (h, m, s) = (d.as_secs() / 3600, d.as_secs() / 60 % 60, d.as_secs() % 60);
    let frac = d.subsec_millis();
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac > 0 {
        out.push_str(&format!(
            "{s}.{}s",
            format!("{frac:03}").trim_end_matches('0')
        ));
    } else {
        out.push_str(&format!("{s}s"));
    }
    out
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Shell(text) => f.write_str(text),
            Command::Exec(args) => f.write_str(&json_list(args)),
        }
    }
}

impl fmt::Display for Healthcheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.test.first().map(String::as_str) == Some("NONE") {
            return f.write_str("NONE");
        }
        let flags = [
            ("interval", self.interval),
            ("timeout", self.timeout),
            ("start-period", self.start_period),
            ("start-interval", self.start_interval),
        ];
        for (name, value) in flags {
            if let Some(d) = value {
                write!(f, "--{name}={} ", go_duration(d))?;
            }
        }
        if let Some(r) = self.retries {
            write!(f, "--retries={r} ")?;
        }
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => write!(f, "CMD {}", rest.join(" ")),
            Some((_, rest)) => write!(f, "CMD {}", json_list(rest)),
            None => f.write_str("CMD []"),
        }
    }
}

/// What separates an instruction's flags from arguments that start with `--` themselves
/// (`WORKDIR -- --x`): without it the printed text would read as a flag.
fn end_of_flags(args: &str) -> &'static str {
    if args.starts_with("--") { "-- " } else { "" }
}

/// A flag's value as the flag parser reads it back: as it is when it is one plain word, else
/// in double quotes, so that `--from="x --link"` never prints as `--from=x --link`.
fn flag_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'));
    if plain {
        return value.to_string();
    }
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The normalised text: flags in a fixed order, lists as JSON arrays, values quoted. It reads
/// back as the same instruction, which is what makes it a key for the build cache.
impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = |kv: &[(String, String)]| {
            kv.iter()
                .map(|(k, v)| format!("{k}={}", json(v)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let name = self.name();
        let args = match self {
            Instruction::From(from) => {
                f.write_str("FROM ")?;
                if let Some(p) = &from.platform {
                    write!(f, "--platform={} ", flag_value(p))?;
                }
                write!(f, "{}{}", end_of_flags(&from.image), from.image)?;
                if let Some(n) = &from.name {
                    write!(f, " AS {n}")?;
                }
                return Ok(());
            }
            Instruction::Copy(c) | Instruction::Add(c) => {
                f.write_str(name)?;
                let flags = [("from", &c.from), ("chown", &c.chown), ("chmod", &c.chmod)];
                for (flag, value) in flags {
                    if let Some(v) = value {
                        write!(f, " --{flag}={}", flag_value(v))?;
                    }
                }
                if c.link {
                    f.write_str(" --link")?;
                }
                let mut all = c.sources.clone();
                all.push(c.dest.clone());
                return write!(f, " {}", json_list(&all));
            }
            Instruction::Run(c) | Instruction::Cmd(c) | Instruction::Entrypoint(c) => c.to_string(),
            Instruction::Shell(v) | Instruction::Volume(v) => json_list(v),
            Instruction::Env(kv) | Instruction::Label(kv) => pairs(kv),
            Instruction::Arg(decls) => decls
                .iter()
                .map(|d| match &d.default {
                    Some(v) => format!("{}={}", d.name, json(v)),
                    None => d.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Instruction::Expose(ports) => ports.join(" "),
            Instruction::Healthcheck(h) => h.to_string(),
            Instruction::Workdir(s)
            | Instruction::User(s)
            | Instruction::StopSignal(s)
            | Instruction::Maintainer(s)
            | Instruction::Onbuild(s) => s.clone(),
        };
        write!(f, "{name} {}{args}", end_of_flags(&args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_form_goes_after_the_shell() {
        let sh = ["/bin/sh".to_string(), "-c".to_string()];
        assert_eq!(
            Command::Shell("echo $A".into()).argv(&sh),
            ["/bin/sh", "-c", "echo $A"]
        );
        assert_eq!(
            Command::Exec(vec!["echo".into(), "$A".into()]).argv(&sh),
            ["echo", "$A"]
        );
    }

    #[test]
    fn normalised_text() {
        let copy = Instruction::Copy(CopyArgs {
            sources: vec!["a b".into(), "c".into()],
            dest: "/d/".into(),
            chown: Some("1:2".into()),
            ..CopyArgs::default()
        });
        assert_eq!(copy.to_string(), r#"COPY --chown=1:2 ["a b","c","/d/"]"#);
        let env = Instruction::Env(vec![("A".into(), "x \"y\"".into())]);
        assert_eq!(env.to_string(), r#"ENV A="x \"y\"""#);
        let arg = Instruction::Arg(vec![
            ArgDecl {
                name: "V".into(),
                default: None,
            },
            ArgDecl {
                name: "W".into(),
                default: Some("1".into()),
            },
        ]);
        assert_eq!(arg.to_string(), r#"ARG V W="1""#);
    }

    /// Found by the property tests (`tests/props.rs`): `COPY --from="$A" a b` with A set to
    /// `x --link` printed as `COPY --from=x --link ["a","b"]`, the text of another step.
    #[test]
    fn flag_values_with_blanks_are_quoted() {
        let copy = |from: &str, link: bool| {
            Instruction::Copy(CopyArgs {
                sources: vec!["a".into()],
                dest: "b".into(),
                from: Some(from.into()),
                link,
                ..CopyArgs::default()
            })
            .to_string()
        };
        assert_eq!(
            copy("x --link", false),
            r#"COPY --from="x --link" ["a","b"]"#
        );
        assert_eq!(copy("x", true), r#"COPY --from=x --link ["a","b"]"#);
        assert_eq!(copy(r#"q"\"#, false), r#"COPY --from="q\"\\" ["a","b"]"#);
        assert_eq!(copy("", false), r#"COPY --from="" ["a","b"]"#);
    }

    /// Found by the property tests (`tests/props.rs`): `WORKDIR -- --` printed as
    /// `WORKDIR --`, which reads as a line with no argument.
    #[test]
    fn arguments_that_look_like_flags_keep_their_separator() {
        assert_eq!(
            Instruction::Workdir("--".into()).to_string(),
            "WORKDIR -- --"
        );
        assert_eq!(
            Instruction::Run(Command::Shell("--x".into())).to_string(),
            "RUN -- --x"
        );
        let from = Instruction::From(FromArgs {
            image: "--i".into(),
            name: None,
            platform: Some("p".into()),
        });
        assert_eq!(from.to_string(), "FROM --platform=p -- --i");
        assert_eq!(
            Instruction::Workdir("/--".into()).to_string(),
            "WORKDIR /--"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn substitution_leaves_run_alone() {
        let lookup = |n: &str| (n == "A").then(|| "x".to_string());
        let run = Instruction::Run(Command::Shell("echo $A".into()));
        assert_eq!(run.substitute('\\', &lookup).unwrap(), run);
        let workdir = Instruction::Workdir("/srv/$A".into());
        assert_eq!(
            workdir.substitute('\\', &lookup).unwrap(),
            Instruction::Workdir("/srv/x".into())
        );
    }
}
