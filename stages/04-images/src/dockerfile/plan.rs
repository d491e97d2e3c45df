//! From a parsed Dockerfile to the steps of a build: stages, build arguments, substitution, and
//! the image config after every step.
//!
//! Dockerfile reference, "FROM", "ARG" and "Understand how ARG and FROM interact":
//!
//! - each FROM starts a *stage*; skiff builds one stage ([`super::Dockerfile::single_stage`]
//!   refuses a second FROM with a clear message);
//! - ARGs before the first FROM are the only variables FROM can use; inside the stage, they are
//!   visible again only where an `ARG NAME` without a value redeclares them;
//! - an ARG's value is its `--build-arg`, else its default, else (redeclared) the value it had
//!   before FROM; an ARG with none of these is unset;
//! - ENV beats ARG: when both set a name, substitution and RUN see the ENV value;
//! - a RUN sees the ARGs in its environment, but they are not stored in the image; the
//!   predefined proxy arguments (`HTTP_PROXY`...) need no ARG and stay out of the history and of
//!   the cache key unless an ARG names them.
//!
//! Every step is worked out here, before anything runs: the executor gets a list of [`Step`]s, each
//! with its substituted instruction, its environment and the config it leaves behind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::config::{DEFAULT_PATH, ImageConfig, created_by};
use super::error::{DockerfileError, Location};
use super::instruction::{FromArgs, Instruction};
use super::parse::{parse_instruction, validate};
use super::{Dockerfile, Line};

/// `--build-arg NAME=VALUE` values, by name.
pub type BuildArgs = BTreeMap<String, String>;

/// The build arguments every Dockerfile has without declaring them (Dockerfile reference,
/// "Predefined ARGs").
pub const PREDEFINED_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// One stage of a Dockerfile: a FROM and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The Dockerfile, for error messages.
    pub path: PathBuf,
    /// The escape character of the Dockerfile.
    pub escape: char,
    /// The line of the FROM.
    pub line: usize,
    /// The FROM, substituted with the ARGs before it: `image` is what to pull or look up.
    pub from: FromArgs,
    /// The ARGs declared before the first FROM, with their values (`None`: unset).
    pub meta_args: BTreeMap<String, Option<String>>,
    /// The instructions after the FROM, up to the next FROM.
    pub body: Vec<Line>,
}

/// One instruction of a stage, ready to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The Dockerfile and line it comes from.
    pub at: Location,
    /// The instruction, substituted (RUN, CMD and ENTRYPOINT are left as written).
    pub instruction: Instruction,
    /// The image config after this step.
    pub config: ImageConfig,
    /// The environment of a RUN at this step: the config's `Env` (with a default `PATH`), then
    /// the build arguments in scope that ENV does not override, then predefined proxy
    /// arguments given with `--build-arg`.
    pub env: Vec<String>,
    /// The build arguments in scope, as `NAME=value`, sorted, that ENV does not override: what
    /// the cache key and the history of a RUN include.
    pub build_args: Vec<String>,
}

impl Step {
    /// For a RUN: the argument vector to execute (shell form: after the SHELL in force).
    pub fn run_argv(&self) -> Option<Vec<String>> {
        match &self.instruction {
            Instruction::Run(command) => Some(command.argv(&self.config.shell())),
            _ => None,
        }
    }

    /// Whether the step changes files, and so makes a layer: RUN, COPY, ADD, and WORKDIR (which
    /// creates its directory when missing, owned by the config's user, as BuildKit does). Every
    /// other step only changes the config: an "empty layer" in the history.
    pub fn changes_files(&self) -> bool {
        matches!(
            self.instruction,
            Instruction::Run(_)
                | Instruction::Copy(_)
                | Instruction::Add(_)
                | Instruction::Workdir(_)
        )
    }

    /// The history line of this step; `copied` is the digest of what a COPY or ADD copied.
    pub fn created_by(&self, copied: Option<&str>) -> String {
        created_by(&self.instruction, &self.config, &self.build_args, copied)
    }
}

/// The steps of a stage, and what the build arguments did not reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One step per instruction after FROM (the base image's ONBUILD triggers first).
    pub steps: Vec<Step>,
    /// `--build-arg` names that no ARG declares: Docker warns "One or more build-args were not
    /// consumed".
    pub unused_build_args: Vec<String>,
}

impl Dockerfile {
    /// Splits the Dockerfile into stages, resolving each FROM with the ARGs before the first FROM.
    pub fn stages(&self, build_args: &BuildArgs) -> Result<Vec<Stage>, DockerfileError> {
        let mut meta: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut stages: Vec<Stage> = Vec::new();
        for line in &self.lines {
            let at = Location::new(&self.path, line.number);
            let lookup = |name: &str| meta.get(name).cloned().flatten();
            let substituted = || substitute(&at, &line.instruction, self.escape, &lookup);
            match (&line.instruction, stages.last_mut()) {
                (Instruction::Arg(_), None) => {
                    let Instruction::Arg(decls) = substituted()? else {
                        continue;
                    };
                    for d in decls {
                        let value = build_args.get(&d.name).cloned().or(d.default);
                        meta.insert(d.name, value);
                    }
                }
                (Instruction::From(_), _) => {
                    let Instruction::From(from) = substituted()? else {
                        continue;
                    };
                    stages.push(Stage {
                        path: self.path.clone(),
                        escape: self.escape,
                        line: line.number,
                        from,
                        meta_args: meta.clone(),
                        body: Vec::new(),
                    });
                }
                (_, Some(stage)) => stage.body.push(line.clone()),
                (other, None) => {
                    return Err(DockerfileError::BeforeFrom {
                        at,
                        instruction: other.name().into(),
                    });
                }
            }
        }
        if stages.is_empty() {
            return Err(DockerfileError::NoFrom {
                at: Location::new(&self.path, 0),
            });
        }
        Ok(stages)
    }

    /// The one stage of a single-stage Dockerfile; a second FROM (a multi-stage build) is
    /// refused, naming its line.
    pub fn single_stage(&self, build_args: &BuildArgs) -> Result<Stage, DockerfileError> {
        let mut stages = self.stages(build_args)?.into_iter();
        let first = stages.next().ok_or_else(|| DockerfileError::NoFrom {
            at: Location::new(&self.path, 0),
        })?;
        if let Some(second) = stages.next() {
            return Err(DockerfileError::Unsupported {
                at: Location::new(&self.path, second.line),
                what: "a multi-stage build (a second FROM)".into(),
                hint: format!(
                    "skiff builds one stage: keep the stage that starts at line {} and build the others as images of their own",
                    first.line
                ),
            });
        }
        Ok(first)
    }
}

/// Substitutes an instruction, turning a substitution error into one that names the line.
fn substitute(
    at: &Location,
    instruction: &Instruction,
    escape: char,
    lookup: super::substitute::Lookup,
) -> Result<Instruction, DockerfileError> {
    let substituted =
        instruction
            .substitute(escape, lookup)
            .map_err(|message| DockerfileError::Syntax {
                at: at.clone(),
                instruction: instruction.name(),
                message,
            })?;
    validate(at, &substituted)?;
    Ok(substituted)
}

impl Stage {
    // ANCHOR: plan
    /// Works out every step of the stage on top of `base`, the config of the FROM image
    /// ([`ImageConfig::scratch`] for `scratch`): substitution, build arguments, and the
    /// config after each step. Nothing runs; every error is found here.
    pub fn plan(
        &self,
        base: &ImageConfig,
        build_args: &BuildArgs,
    ) -> Result<Plan, DockerfileError> {
        let from = Location::new(&self.path, self.line);
        // The base image's ONBUILD triggers run first, and are not inherited.
        let triggers = base
            .on_build
            .iter()
            .map(|text| {
                Ok(Line {
                    number: self.line,
                    text: text.clone(),
                    instruction: parse_instruction(&from, text, self.escape)?,
                })
            })
            .collect::<Result<Vec<_>, DockerfileError>>()?;
        let mut config = ImageConfig {
            on_build: Vec::new(),
            ..base.clone()
        };
        let mut args: Vec<(String, Option<String>)> = Vec::new(); // ARGs of this stage, in order
        let mut declared: BTreeSet<String> = self.meta_args.keys().cloned().collect();
        let mut cmd_set = false;
        let mut steps = Vec::new();

        for line in triggers.iter().chain(&self.body) {
            let at = Location::new(&self.path, line.number);
            // ENV beats ARG: look in the config's environment first.
            let lookup = |name: &str| {
                config.get_env(name).map(str::to_string).or_else(|| {
                    let (_, value) = args.iter().find(|(n, _)| n == name)?;
                    value.clone()
                })
            };
            let instruction = substitute(&at, &line.instruction, self.escape, &lookup)?;
            if let Instruction::Copy(c) | Instruction::Add(c) = &instruction {
                super::context::refuse_urls(&at, &instruction, c)?;
            }
            if let Instruction::Arg(decls) = &instruction {
                for d in decls {
                    let value = build_args
                        .get(&d.name)
                        .cloned()
                        .or_else(|| d.default.clone())
                        .or_else(|| self.meta_args.get(&d.name).cloned().flatten());
                    args.retain(|(n, _)| *n != d.name);
                    args.push((d.name.clone(), value));
                    declared.insert(d.name.clone());
                }
            }
            let next = config.apply(&instruction, cmd_set);
            cmd_set |= matches!(instruction, Instruction::Cmd(_));
            let (env, scoped) = build_env(&next, &args, build_args, &declared);
            steps.push(Step {
                at,
                instruction,
                config: next.clone(),
                env,
                build_args: scoped,
            });
            config = next;
        }

        let unused_build_args = build_args
            .keys()
            .filter(|k| !declared.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
            .cloned()
            .collect();
        Ok(Plan {
            steps,
            unused_build_args,
        })
    }
    // ANCHOR_END: plan
}

/// The environment of a RUN, and the build arguments that its cache key and history include.
fn build_env(
    config: &ImageConfig,
    args: &[(String, Option<String>)],
    build_args: &BuildArgs,
    declared: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    let mut env = config.env.clone();
    if config.get_env("PATH").is_none() {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    let mut scoped = Vec::new();
    for (name, value) in args {
        if let Some(value) = value
            && config.get_env(name).is_none()
        {
            env.push(format!("{name}={value}"));
            scoped.push(format!("{name}={value}"));
        }
    }
    for name in PREDEFINED_ARGS {
        if let Some(value) = build_args.get(name)
            && !declared.contains(name)
        {
            env.push(format!("{name}={value}"));
        }
    }
    scoped.sort();
    (env, scoped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::instruction::Command;

    fn args(pairs: &[(&str, &str)]) -> BuildArgs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn plan_with(
        text: &str,
        base: &ImageConfig,
        build_args: &BuildArgs,
    ) -> Result<Plan, DockerfileError> {
        let df = Dockerfile::parse("Dockerfile", text)?;
        df.single_stage(build_args)?.plan(base, build_args)
    }

    fn plan(text: &str, build_args: &[(&str, &str)]) -> Plan {
        plan_with(text, &ImageConfig::scratch(), &args(build_args)).unwrap()
    }

    #[test]
    fn from_uses_the_args_before_it() {
        let text = "ARG TAG=1.36\nARG IMAGE=busybox:${TAG}\nFROM $IMAGE AS base\nRUN true\n";
        let df = Dockerfile::parse("Dockerfile", text).unwrap();
        let stage = df.single_stage(&args(&[])).unwrap();
        assert_eq!(stage.from.image, "busybox:1.36");
        assert_eq!(stage.from.name.as_deref(), Some("base"));
        assert_eq!(stage.line, 3);
        let stage = df.single_stage(&args(&[("TAG", "latest")])).unwrap();
        assert_eq!(stage.from.image, "busybox:latest");
    }

    #[test]
    fn args_before_from_are_visible_only_when_redeclared() {
        let text = "ARG V=meta\nFROM scratch\nENV A=${V:-unset}\nARG V\nENV B=$V\n";
        let p = plan(text, &[]);
        assert_eq!(p.steps[0].config.get_env("A"), Some("unset"));
        assert_eq!(p.steps[2].config.get_env("B"), Some("meta"));
        let p = plan(text, &[("V", "cli")]);
        assert_eq!(p.steps[2].config.get_env("B"), Some("cli"));
    }

    #[test]
    fn arg_values_and_the_run_environment() {
        let text = "FROM scratch\nARG A=default B\nRUN env\n";
        let p = plan(text, &[]);
        let run = &p.steps[1];
        assert!(run.env.contains(&"A=default".to_string()));
        assert!(
            !run.env.iter().any(|e| e.starts_with("B=")),
            "B has no value: unset"
        );
        assert_eq!(run.build_args, ["A=default"]);
        assert_eq!(run.created_by(None), "|1 A=default /bin/sh -c env");
        assert_eq!(run.run_argv().unwrap(), ["/bin/sh", "-c", "env"]);
        let p = plan(text, &[("A", "x"), ("B", "y")]);
        assert_eq!(p.steps[1].build_args, ["A=x", "B=y"]);
    }

    #[test]
    fn env_beats_arg() {
        let text = "FROM scratch\nENV V=env\nARG V=arg\nRUN echo $V\nWORKDIR /$V\n";
        let p = plan(text, &[("V", "cli")]);
        let run = &p.steps[2];
        assert!(run.env.contains(&"V=env".to_string()));
        assert!(!run.env.contains(&"V=cli".to_string()));
        assert!(run.build_args.is_empty());
        assert_eq!(p.steps[3].config.working_dir, "/env");
    }

    #[test]
    fn env_substitution_uses_the_values_before_the_instruction() {
        // The Dockerfile reference's example.
        let text = "FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n";
        let p = plan(text, &[]);
        let c = &p.steps[2].config;
        assert_eq!(c.get_env("def"), Some("hello"));
        assert_eq!(c.get_env("ghi"), Some("bye"));
    }

    #[test]
    fn substitution_in_every_instruction_that_supports_it() {
        let text = r#"FROM scratch
ENV DIR=/srv NAME="my app" PORTS="80 443/udp" SIG=SIGQUIT U=app
WORKDIR $DIR
USER ${U}:staff
EXPOSE $PORTS 8080
LABEL name="$NAME" escaped=\$NAME
VOLUME ["$DIR/data"]
STOPSIGNAL $SIG
COPY --chown=$U:staff ${NAME} $DIR/
RUN echo $NAME
CMD echo $NAME
"#;
        let p = plan(text, &[]);
        let c = &p.steps.last().unwrap().config;
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.user, "app:staff");
        assert!(c.exposed_ports.contains("443/udp") && c.exposed_ports.contains("8080/tcp"));
        assert_eq!(c.labels["name"], "my app");
        assert_eq!(c.labels["escaped"], "$NAME");
        assert!(c.volumes.contains("/srv/data"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        let Instruction::Copy(copy) = &p.steps[7].instruction else {
            panic!("not COPY");
        };
        assert_eq!(copy.sources, ["my app"]);
        assert_eq!(copy.dest, "/srv/");
        assert_eq!(copy.chown.as_deref(), Some("app:staff"));
        assert_eq!(
            p.steps[8].instruction,
            Instruction::Run(Command::Shell("echo $NAME".into()))
        );
        assert_eq!(
            c.cmd,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo $NAME".into()])
        );
    }

    #[test]
    fn substitution_errors_name_the_line() {
        let e = plan_with(
            "FROM scratch\nENV A=1\nWORKDIR ${NOPE:?set NOPE}\n",
            &ImageConfig::scratch(),
            &args(&[]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Dockerfile:3: WORKDIR: NOPE: set NOPE in \"${NOPE:?set NOPE}\""
        );
        let e = plan_with(
            "FROM scratch\nARG P=http\nEXPOSE $P\n",
            &ImageConfig::scratch(),
            &args(&[]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Dockerfile:3: EXPOSE: invalid port \"http\""),
            "{e}"
        );
        let e = plan_with(
            "FROM scratch\nARG X\nADD https://$X/f /f\n",
            &ImageConfig::scratch(),
            &args(&[("X", "example.com")]),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "Dockerfile:3: ADD from a URL (https://example.com/f) is not supported by skiff"
            ),
            "{e}"
        );
    }

    #[test]
    fn base_config_is_inherited_and_onbuild_triggers_run_first() {
        let base = ImageConfig {
            env: vec!["PATH=/bin".into(), "HOME=/root".into()],
            cmd: Some(vec!["sh".into()]),
            on_build: vec!["ENV FROM_TRIGGER=1".into()],
            ..ImageConfig::default()
        };
        let p = plan_with(
            "FROM base\nWORKDIR $HOME\nONBUILD RUN make\n",
            &base,
            &args(&[]),
        )
        .unwrap();
        assert_eq!(p.steps.len(), 3);
        assert_eq!(p.steps[0].at.line, 1, "the trigger runs at the FROM line");
        let c = &p.steps[2].config;
        assert_eq!(c.get_env("FROM_TRIGGER"), Some("1"));
        assert_eq!(c.working_dir, "/root");
        assert_eq!(c.cmd, Some(vec!["sh".into()]));
        assert_eq!(
            c.on_build,
            ["RUN make"],
            "triggers are not inherited, new ones are kept"
        );
    }

    #[test]
    fn entrypoint_after_cmd_in_the_same_file_keeps_it() {
        let base = ImageConfig {
            cmd: Some(vec!["sh".into()]),
            ..ImageConfig::default()
        };
        let p = plan_with("FROM base\nENTRYPOINT [\"/app\"]\n", &base, &args(&[])).unwrap();
        assert_eq!(p.steps[0].config.cmd, None);
        let p = plan_with(
            "FROM base\nCMD [\"-v\"]\nENTRYPOINT [\"/app\"]\n",
            &base,
            &args(&[]),
        )
        .unwrap();
        assert_eq!(p.steps[1].config.cmd, Some(vec!["-v".into()]));
    }

    #[test]
    fn predefined_and_unused_build_args() {
        let p = plan(
            "FROM scratch\nARG USED\nRUN make\n",
            &[
                ("USED", "1"),
                ("HTTP_PROXY", "http://p:3128"),
                ("TYPO", "x"),
            ],
        );
        let run = &p.steps[1];
        assert!(run.env.contains(&"HTTP_PROXY=http://p:3128".to_string()));
        assert_eq!(
            run.build_args,
            ["USED=1"],
            "proxies stay out of the key and history"
        );
        assert_eq!(p.unused_build_args, ["TYPO"]);
    }

    #[test]
    fn shell_changes_run_and_history() {
        let p = plan(
            "FROM scratch\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN a | b\nENV X=1\n",
            &[],
        );
        assert_eq!(
            p.steps[1].run_argv().unwrap(),
            ["/bin/bash", "-eo", "pipefail", "-c", "a | b"]
        );
        assert_eq!(
            p.steps[1].created_by(None),
            "/bin/bash -eo pipefail -c a | b"
        );
        assert_eq!(
            p.steps[2].created_by(None),
            "/bin/bash -eo pipefail -c #(nop)  ENV X=1"
        );
        assert!(p.steps[1].changes_files() && !p.steps[2].changes_files());
    }

    #[test]
    fn multi_stage_is_refused_at_the_second_from() {
        let text =
            "FROM golang AS build\nRUN go build\n\nFROM scratch\nCOPY --from=build /app /app\n";
        let df = Dockerfile::parse("Dockerfile", text).unwrap();
        assert_eq!(df.stages(&args(&[])).unwrap().len(), 2);
        let err = df.single_stage(&args(&[])).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "Dockerfile:4: a multi-stage build (a second FROM) is not supported by skiff"
            ),
            "{err}"
        );
    }
}
