//! # The Dockerfile front end of `build`
//!
//! A Dockerfile is a recipe for an image: `FROM` picks the image to start from, `RUN` runs a
//! command in a container of the image so far and keeps what it changed as a new layer, `COPY`
//! adds files from the *build context* (the directory given to `build`), and the other
//! instructions edit the image's config. This module turns the text into work an executor can do,
//! and finds every mistake it can before anything runs:
//!
//! 1. [`Dockerfile::parse`]: text to [`Instruction`]s with their line numbers
//!    ([`lines`]: comments, continuations, `# escape=`; [`parse`]: each instruction's arguments);
//! 2. [`Dockerfile::single_stage`]: the FROM, resolved with the ARGs before it;
//! 3. [`Stage::plan`]: for every instruction, a [`Step`]: variables substituted ([`substitute`]),
//!    build arguments resolved, the environment a RUN sees, and the image config after it
//!    ([`config`]);
//! 4. [`BuildContext::resolve`]: what a COPY or ADD copies from the context, filtered by
//!    [`DockerIgnore`], and where it goes;
//! 5. [`cache_key`]: the key under which a step's result is cached.
//!
//! The reference is the Dockerfile reference (docs.docker.com/reference/dockerfile); where it is
//! silent, what `docker build` does (moby/buildkit's parser).
//!
//! ```
//! use images::dockerfile::{BuildArgs, Dockerfile, ImageConfig};
//!
//! let text = "FROM busybox\nENV GREETING=hello\nRUN echo $GREETING > /greeting\nCMD cat /greeting\n";
//! let dockerfile = Dockerfile::parse("Dockerfile", text)?;
//! let args = BuildArgs::new();
//! let stage = dockerfile.single_stage(&args)?;
//! assert_eq!(stage.from.image, "busybox");
//!
//! // The executor looks the base image up; its config is where the steps start.
//! let plan = stage.plan(&ImageConfig::scratch(), &args)?;
//! let run = &plan.steps[1];
//! assert_eq!(run.run_argv().unwrap(), ["/bin/sh", "-c", "echo $GREETING > /greeting"]);
//! assert!(run.env.contains(&"GREETING=hello".to_string()));
//! assert_eq!(plan.steps[2].config.cmd.as_deref().unwrap(), ["/bin/sh", "-c", "cat /greeting"]);
//! # Ok::<(), images::dockerfile::DockerfileError>(())
//! ```

pub mod cache;
pub mod config;
pub mod context;
pub mod error;
pub mod ignore;
pub mod instruction;
pub mod lines;
pub mod owner;
pub mod parse;
pub mod pattern;
pub mod plan;
pub mod substitute;
pub mod suggest;

use std::path::{Path, PathBuf};

pub use cache::cache_key;
pub use config::ImageConfig;
pub use context::{BuildContext, CopyItem, CopyPlan, ItemKind};
pub use error::{DockerfileError, Location};
pub use ignore::DockerIgnore;
pub use instruction::{ArgDecl, Command, CopyArgs, FromArgs, Healthcheck, Instruction};
pub use owner::{Owner, resolve_chown};
pub use plan::{BuildArgs, Plan, Stage, Step};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The file, as named by the user, for messages.
    pub path: PathBuf,
    /// The escape character: `\`, or `` ` `` after `# escape=``.
    pub escape: char,
    /// The instructions, in order.
    pub lines: Vec<Line>,
}

/// One instruction of a Dockerfile and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line it starts on (an instruction may continue over several).
    pub number: usize,
    /// Its text, continuation lines joined.
    pub text: String,
    /// The instruction, as parsed (not yet substituted).
    pub instruction: Instruction,
}

impl Dockerfile {
    /// Reads and parses the Dockerfile at `path`.
    pub fn read(path: &Path) -> Result<Dockerfile, DockerfileError> {
        let bytes = std::fs::read(path).map_err(|source| DockerfileError::Read {
            at: Location::new(path, 0),
            source,
        })?;
        Dockerfile::parse(path, &String::from_utf8_lossy(&bytes))
    }

    // ANCHOR: parse
    /// Parses Dockerfile text; `path` names it in error messages. Checks each instruction's
    /// syntax, the order (only ARG before the first FROM), quoting, and the values that need no
    /// variable; what depends on variables is checked by [`Stage::plan`].
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Result<Dockerfile, DockerfileError> {
        let path = path.into();
        let (escape, logical) = lines::logical_lines(&path, text)?;
        let mut out = Vec::new();
        let mut seen_from = false;
        for line in logical {
            let at = Location::new(&path, line.line);
            let instruction = parse::parse_instruction(&at, &line.text, escape)?;
            match &instruction {
                Instruction::From(_) => seen_from = true,
                Instruction::Arg(_) => {}
                other if !seen_from => {
                    return Err(DockerfileError::BeforeFrom {
                        at,
                        instruction: other.name().into(),
                    });
                }
                _ => {}
            }
            // Unterminated quotes and bad `${...}` are errors whatever the variables hold:
            // substitute with every variable set, and keep only the verdict.
            let trial = instruction
                .substitute(escape, &|_| Some("x".into()))
                .map_err(|message| DockerfileError::Syntax {
                    at: at.clone(),
                    instruction: instruction.name(),
                    message,
                })?;
            if !line.text.contains('$') {
                parse::validate(&at, &trial)?;
            }
            out.push(Line {
                number: line.line,
                text: line.text,
                instruction,
            });
        }
        if out.is_empty() {
            return Err(DockerfileError::Empty {
                at: Location::new(&path, 0),
            });
        }
        if !seen_from {
            return Err(DockerfileError::NoFrom {
                at: Location::new(&path, 0),
            });
        }
        Ok(Dockerfile {
            path,
            escape,
            lines: out,
        })
    }
    // ANCHOR_END: parse
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Dockerfile::parse("Dockerfile", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_instruction_with_its_line() {
        let text = r#"# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS app

# Comments and blank lines are skipped.
RUN echo one \
    && echo two
RUN ["echo", "exec"]
COPY --chown=1:1 a b /dst/
ADD archive.tar /srv
ENV A=1 B="two words"
ENV OLD form value
ARG VERSION=1.0
WORKDIR /app
USER app
EXPOSE 80/tcp 53/udp
LABEL org.opencontainers.image.title="skiff demo"
VOLUME ["/data"]
SHELL ["/bin/sh", "-ec"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s CMD wget -q -O- http://localhost/
CMD ["serve"]
ENTRYPOINT ["/app/run"]
ONBUILD COPY . /src
MAINTAINER someone
"#;
        let df = Dockerfile::parse("Dockerfile", text).unwrap();
        let got: Vec<(usize, &str)> = df
            .lines
            .iter()
            .map(|l| (l.number, l.instruction.name()))
            .collect();
        assert_eq!(
            got,
            [
                (2, "ARG"),
                (3, "FROM"),
                (6, "RUN"),
                (8, "RUN"),
                (9, "COPY"),
                (10, "ADD"),
                (11, "ENV"),
                (12, "ENV"),
                (13, "ARG"),
                (14, "WORKDIR"),
                (15, "USER"),
                (16, "EXPOSE"),
                (17, "LABEL"),
                (18, "VOLUME"),
                (19, "SHELL"),
                (20, "STOPSIGNAL"),
                (21, "HEALTHCHECK"),
                (22, "CMD"),
                (23, "ENTRYPOINT"),
                (24, "ONBUILD"),
                (25, "MAINTAINER"),
            ]
        );
        assert_eq!(df.lines[2].text, "RUN echo one     && echo two");
        assert_eq!(df.escape, '\\');
    }

    #[test]
    fn errors_carry_the_exact_line() {
        assert_eq!(
            err("FROM a\n\n# c\nRUNN make\n"),
            "Dockerfile:4: unknown instruction \"RUNN\" (did you mean RUN?)"
        );
        assert_eq!(
            err("FROM a\nRUN ok\n\nRUN a \\\n  b\nCMD [\"x\",\n"),
            "Dockerfile:6: CMD: invalid JSON array (EOF while parsing a value at line 1 column 5): write the exec form as a JSON array of double-quoted strings, like [\"echo\", \"hi\"]"
        );
        assert_eq!(
            err("FROM a\nCOPY \\\n  --frm=x \\\n  a b\n"),
            "Dockerfile:2: COPY: unknown flag --frm (did you mean --from?)"
        );
        assert_eq!(
            err("FROM a\nENV A=\"unterminated\n"),
            "Dockerfile:2: ENV: unexpected end of statement while looking for matching double-quote in \"\\\"unterminated\""
        );
        assert_eq!(
            err("FROM a\nLABEL a='x\n"),
            "Dockerfile:2: LABEL: unexpected end of statement while looking for matching single-quote in \"'x\""
        );
        assert_eq!(
            err("FROM a\nWORKDIR ${X\n"),
            "Dockerfile:2: WORKDIR: syntax error: missing '}' in \"${X\""
        );
        assert_eq!(
            err("FROM a\nEXPOSE 80/tcpp\n"),
            "Dockerfile:2: EXPOSE: invalid protocol \"tcpp\" in \"80/tcpp\": use tcp, udp or sctp"
        );
        assert_eq!(
            err("FROM a\nCOPY --chown=a:b:c x y\n"),
            "Dockerfile:2: COPY: bad --chown: \"a:b:c\" is not USER, USER:GROUP, UID or UID:GID (for example --chown=1000:1000 or --chown=app:app)"
        );
    }

    #[test]
    fn order_and_emptiness() {
        assert_eq!(
            err("# nothing\n\nRUN make\nFROM a\n"),
            "Dockerfile:3: RUN before FROM: only ARG may come before the first FROM"
        );
        assert_eq!(
            err("# only comments\n\n"),
            "Dockerfile: the Dockerfile has no instructions: start it with FROM IMAGE (or FROM scratch)"
        );
        assert_eq!(
            err(""),
            "Dockerfile: the Dockerfile has no instructions: start it with FROM IMAGE (or FROM scratch)"
        );
        assert_eq!(
            err("ARG A=1\n"),
            "Dockerfile: the Dockerfile has no FROM instruction: add FROM IMAGE (or FROM scratch)"
        );
        assert!(Dockerfile::parse("Dockerfile", "ARG A\nFROM a\n").is_ok());
    }

    #[test]
    fn values_with_variables_are_checked_at_plan_time() {
        // `$P` may hold a good port: parse accepts it, plan checks the value.
        assert!(Dockerfile::parse("Dockerfile", "FROM a\nEXPOSE $P\n").is_ok());
    }

    #[test]
    fn escape_directive_changes_continuations_and_escapes() {
        let text = "# escape=`\nFROM a\nRUN dir C:\\ `\n  && echo done\nENV P=C:\\tools `\n  Q=x\n";
        let df = Dockerfile::parse("Dockerfile", text).unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.lines[1].text, "RUN dir C:\\   && echo done");
        let args = BuildArgs::new();
        let plan = df
            .single_stage(&args)
            .unwrap()
            .plan(&ImageConfig::default(), &args)
            .unwrap();
        assert_eq!(plan.steps[1].config.get_env("P"), Some("C:\\tools"));
        assert_eq!(plan.steps[1].config.get_env("Q"), Some("x"));
    }

    #[test]
    fn read_names_the_file() {
        let err = Dockerfile::read(Path::new("/nonexistent/Dockerfile")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/Dockerfile: cannot read the file:"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Dockerfile");
        std::fs::write(&path, "FROM scratch\nBAD x\n").unwrap();
        let err = Dockerfile::read(&path).unwrap_err();
        assert_eq!(err.location(), &Location::new(&path, 2));
    }
}
