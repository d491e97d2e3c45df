//! What the metadata instructions do to an image's config, and the history line of each step.
//!
//! Most instructions change no file: ENV, WORKDIR, CMD, ENTRYPOINT, USER, EXPOSE, LABEL, VOLUME,
//! STOPSIGNAL, SHELL, HEALTHCHECK, ONBUILD and MAINTAINER only edit the image's config (OCI image
//! spec, `config.md`: `Env`, `Cmd`, `Entrypoint`, `WorkingDir`, ...). [`ImageConfig::apply`] is
//! that edit, as a pure function. Two rules of Docker's are easy to miss:
//!
//! - ENTRYPOINT resets a CMD *inherited from the base image*, which was written for another
//!   entrypoint; a CMD set earlier in the same Dockerfile stays;
//! - a relative WORKDIR is relative to the previous one (`WORKDIR a` then `WORKDIR b` is `/a/b`).
//!
//! The history text ([`created_by`]) follows the classic `docker build`, the one
//! `docker history` shows for most images in the wild:
//!
//! ```text
//! /bin/sh -c #(nop)  ENV A=b                      a metadata step (the shell, then "#(nop) ")
//! /bin/sh -c #(nop)  CMD ["nginx" "-g" "daemon off;"]
//! /bin/sh -c #(nop) COPY dir:4d1c...e9 in /app/   a COPY or ADD, with the digest of what it copied
//! |1 VERSION=1.2 /bin/sh -c make                  a RUN, with the build arguments it could see
//! ```
//!
//! HEALTHCHECK is written as its normalised instruction (`HEALTHCHECK --interval=5s CMD ...`)
//! rather than Docker's dump of a Go struct.

use std::collections::{BTreeMap, BTreeSet};

use super::instruction::{Command, Healthcheck, Instruction};

/// The shell of shell forms when no SHELL instruction changed it.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The `PATH` a RUN gets when the image sets none, as in Docker.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// ANCHOR: config
/// The parts of an image's config that a Dockerfile changes. The build executor turns it into
/// the OCI config (`oci-spec`'s `Config`) of the image it commits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageConfig {
    /// `Env`: `KEY=VALUE` strings, in the order they were first set.
    pub env: Vec<String>,
    /// `Cmd`; `None` when unset.
    pub cmd: Option<Vec<String>>,
    /// `Entrypoint`; `None` when unset.
    pub entrypoint: Option<Vec<String>>,
    /// `WorkingDir`; empty when unset (then `/`).
    pub working_dir: String,
    /// `User`: `user`, `uid`, `user:group`...; empty for root.
    pub user: String,
    /// `ExposedPorts`: `80/tcp`, `53/udp`.
    pub exposed_ports: BTreeSet<String>,
    /// `Labels`.
    pub labels: BTreeMap<String, String>,
    /// `Volumes`: absolute paths.
    pub volumes: BTreeSet<String>,
    /// `StopSignal`, as written (`SIGQUIT`, `9`).
    pub stop_signal: Option<String>,
    /// `Shell` (Docker's config only, not OCI's): the shell of shell forms; `None`: `/bin/sh -c`.
    pub shell: Option<Vec<String>>,
    /// `Healthcheck` (Docker's config only).
    pub healthcheck: Option<Healthcheck>,
    /// `OnBuild` (Docker's config only): triggers for builds that start FROM this image.
    pub on_build: Vec<String>,
    /// `author` of the image (MAINTAINER).
    pub author: Option<String>,
}
// ANCHOR_END: config

impl ImageConfig {
    /// The config of `FROM scratch`: nothing but a default `PATH`, as Docker sets.
    pub fn scratch() -> Self {
        ImageConfig {
            env: vec![format!("PATH={DEFAULT_PATH}")],
            ..ImageConfig::default()
        }
    }

    /// The shell that shell forms run with.
    pub fn shell(&self) -> Vec<String> {
        self.shell
            .clone()
            .unwrap_or_else(|| DEFAULT_SHELL.map(String::from).to_vec())
    }

    /// The value of `key` in `Env`.
    pub fn get_env(&self, key: &str) -> Option<&str> {
        self.env.iter().find_map(|entry| {
            let (k, v) = entry.split_once('=')?;
            (k == key).then_some(v)
        })
    }

    /// Sets `key` in `Env`, in place when it is already there.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        match self
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(existing) => *existing = entry,
            None => self.env.push(entry),
        }
    }

    // ANCHOR: apply
    /// The config after `instruction` (already substituted). `cmd_set` says whether a CMD
    /// came earlier in this Dockerfile (see the module doc on ENTRYPOINT). Instructions that
    /// only change files (RUN, COPY, ADD) or the build (ARG, FROM) return the config unchanged.
    pub fn apply(&self, instruction: &Instruction, cmd_set: bool) -> ImageConfig {
        let mut next = self.clone();
        match instruction {
            Instruction::Env(pairs) => {
                for (k, v) in pairs {
                    next.set_env(k, v);
                }
            }
            Instruction::Workdir(path) => next.working_dir = workdir(&self.working_dir, path),
            Instruction::Cmd(command) => next.cmd = Some(command.argv(&self.shell())),
            Instruction::Entrypoint(command) => {
                next.entrypoint = Some(command.argv(&self.shell()));
                if !cmd_set {
                    next.cmd = None;
                }
            }
            Instruction::User(user) => next.user = user.clone(),
            Instruction::Expose(ports) => next
                .exposed_ports
                .extend(ports.iter().flat_map(|p| port_keys(p))),
            Instruction::Label(pairs) => next.labels.extend(pairs.iter().cloned()),
            Instruction::Volume(paths) => next.volumes.extend(paths.iter().cloned()),
            Instruction::StopSignal(signal) => next.stop_signal = Some(signal.clone()),
            Instruction::Shell(shell) => next.shell = Some(shell.clone()),
            Instruction::Healthcheck(check) => next.healthcheck = Some(check.clone()),
            Instruction::Onbuild(trigger) => next.on_build.push(trigger.clone()),
            Instruction::Maintainer(name) => next.author = Some(name.clone()),
            Instruction::From(_)
            | Instruction::Run(_)
            | Instruction::Copy(_)
            | Instruction::Add(_)
            | Instruction::Arg(_) => {}
        }
        next
    }
    // ANCHOR_END: apply
}

/// WORKDIR: an absolute path replaces the working directory, a relative one is joined to it.
fn workdir(current: &str, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let base = if current.is_empty() { "/" } else { current };
    super::pattern::clean(&format!("{base}/{path}"))
}

/// The `ExposedPorts` keys of one EXPOSE word: `80` is `80/tcp`; a range is every port in it.
fn port_keys(spec: &str) -> Vec<String> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let (low, high) = ports.split_once('-').unwrap_or((ports, ports));
    match (low.parse::<u16>(), high.parse::<u16>()) {
        (Ok(low), Ok(high)) => (low..=high).map(|p| format!("{p}/{proto}")).collect(),
        _ => vec![format!("{ports}/{proto}")], // validated before; kept as written otherwise
    }
}

/// A list as Go's `%q` prints a `[]string`: `["a" "b c"]`.
fn go_quoted(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| super::instruction::json(s)).collect();
    format!("[{}]", quoted.join(" "))
}

// ANCHOR: history
/// The history line (`created_by`) of a step, as the classic `docker build` writes it.
///
/// `config` is the config *after* the step, `build_args` the build arguments a RUN could see
/// (`NAME=value`, sorted), and `copied` the digest of what a COPY or ADD copied
/// ([`super::context::CopyPlan::digest`]).
pub fn created_by(
    instruction: &Instruction,
    config: &ImageConfig,
    build_args: &[String],
    copied: Option<&str>,
) -> String {
    let shell = config.shell().join(" ");
    let nop = |text: String| format!("{shell} #(nop)  {text}");
    match instruction {
        Instruction::Run(command) => {
            let argv = match command {
                Command::Shell(text) => format!("{shell} {text}"),
                Command::Exec(args) => args.join(" "),
            };
            if build_args.is_empty() {
                argv
            } else {
                format!("|{} {} {argv}", build_args.len(), build_args.join(" "))
            }
        }
        Instruction::Copy(c) | Instruction::Add(c) => format!(
            "{shell} #(nop) {} {} in {} ",
            instruction.name(),
            copied.unwrap_or("?"),
            c.dest
        ),
        Instruction::Env(pairs) | Instruction::Label(pairs) => {
            let words: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            nop(format!("{} {}", instruction.name(), words.join(" ")))
        }
        Instruction::Arg(decls) => {
            let words: Vec<String> = decls
                .iter()
                .map(|d| match &d.default {
                    Some(v) => format!("{}={v}", d.name),
                    None => d.name.clone(),
                })
                .collect();
            nop(format!("ARG {}", words.join(" ")))
        }
        Instruction::Workdir(_) => nop(format!("WORKDIR {}", config.working_dir)),
        Instruction::Cmd(_) => nop(format!(
            "CMD {}",
            go_quoted(config.cmd.as_deref().unwrap_or_default())
        )),
        Instruction::Entrypoint(_) => nop(format!(
            "ENTRYPOINT {}",
            go_quoted(config.entrypoint.as_deref().unwrap_or_default())
        )),
        Instruction::Volume(paths) => nop(format!("VOLUME [{}]", paths.join(" "))),
        Instruction::Shell(s) => nop(format!("SHELL [{}]", s.join(" "))),
        Instruction::Expose(ports) => nop(format!("EXPOSE {}", ports.join(" "))),
        other => nop(other.to_string()),
    }
}
// ANCHOR_END: history

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::instruction::{ArgDecl, CopyArgs};

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_replaces_in_place() {
        let base = ImageConfig::scratch();
        let c = base.apply(
            &Instruction::Env(vec![("A".into(), "1".into()), ("PATH".into(), "/x".into())]),
            false,
        );
        assert_eq!(c.env, ["PATH=/x", "A=1"]);
        assert_eq!(c.get_env("A"), Some("1"));
    }

    #[test]
    fn workdir_is_relative_to_the_previous_one() {
        let c = ImageConfig::default()
            .apply(&Instruction::Workdir("a".into()), false)
            .apply(&Instruction::Workdir("b/../c".into()), false);
        assert_eq!(c.working_dir, "/a/c");
        let c = c.apply(&Instruction::Workdir("/srv/".into()), false);
        assert_eq!(c.working_dir, "/srv/");
    }

    #[test]
    fn cmd_and_entrypoint_use_the_shell_for_shell_forms() {
        let c = ImageConfig::default()
            .apply(&Instruction::Cmd(Command::Shell("echo hi".into())), false);
        assert_eq!(
            c.cmd.as_deref(),
            Some(strings(&["/bin/sh", "-c", "echo hi"]).as_slice())
        );
        let c = c
            .apply(&Instruction::Shell(strings(&["/bin/bash", "-c"])), true)
            .apply(&Instruction::Entrypoint(Command::Shell("run".into())), true);
        assert_eq!(c.entrypoint, Some(strings(&["/bin/bash", "-c", "run"])));
    }

    #[test]
    fn entrypoint_resets_an_inherited_cmd_only() {
        let base = ImageConfig {
            cmd: Some(strings(&["bash"])),
            ..ImageConfig::default()
        };
        let ep = Instruction::Entrypoint(Command::Exec(strings(&["/app"])));
        // Inherited CMD: reset.
        assert_eq!(base.apply(&ep, false).cmd, None);
        // CMD set earlier in this Dockerfile: kept.
        let with_cmd = base.apply(
            &Instruction::Cmd(Command::Exec(strings(&["--help"]))),
            false,
        );
        assert_eq!(with_cmd.apply(&ep, true).cmd, Some(strings(&["--help"])));
    }

    #[test]
    fn ports_labels_volumes_and_the_rest() {
        let c = ImageConfig::default()
            .apply(
                &Instruction::Expose(strings(&["80", "53/UDP", "8000-8002"])),
                false,
            )
            .apply(&Instruction::Label(vec![("a".into(), "x y".into())]), false)
            .apply(&Instruction::Volume(strings(&["/data"])), false)
            .apply(&Instruction::StopSignal("SIGQUIT".into()), false)
            .apply(&Instruction::User("app".into()), false)
            .apply(&Instruction::Onbuild("RUN make".into()), false)
            .apply(&Instruction::Maintainer("me".into()), false);
        assert_eq!(
            c.exposed_ports.iter().collect::<Vec<_>>(),
            ["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(c.labels["a"], "x y");
        assert!(c.volumes.contains("/data"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.user, "app");
        assert_eq!(c.on_build, ["RUN make"]);
        assert_eq!(c.author.as_deref(), Some("me"));
        // Files-only instructions leave the config alone.
        let copy = Instruction::Copy(CopyArgs::default());
        assert_eq!(c.apply(&copy, false), c);
    }

    #[test]
    fn history_lines() {
        let c = ImageConfig::default();
        let env = Instruction::Env(vec![("A".into(), "b c".into())]);
        assert_eq!(
            created_by(&env, &c, &[], None),
            "/bin/sh -c #(nop)  ENV A=b c"
        );
        let cmd = Instruction::Cmd(Command::Exec(strings(&["nginx", "-g", "daemon off;"])));
        let after = c.apply(&cmd, false);
        assert_eq!(
            created_by(&cmd, &after, &[], None),
            r#"/bin/sh -c #(nop)  CMD ["nginx" "-g" "daemon off;"]"#
        );
        let run = Instruction::Run(Command::Shell("make".into()));
        assert_eq!(created_by(&run, &c, &[], None), "/bin/sh -c make");
        assert_eq!(
            created_by(&run, &c, &strings(&["A=1", "B=2"]), None),
            "|2 A=1 B=2 /bin/sh -c make"
        );
        let copy = Instruction::Copy(CopyArgs {
            sources: strings(&["."]),
            dest: "/app/".into(),
            ..CopyArgs::default()
        });
        assert_eq!(
            created_by(&copy, &c, &[], Some("dir:abc")),
            "/bin/sh -c #(nop) COPY dir:abc in /app/ "
        );
        let arg = Instruction::Arg(vec![ArgDecl {
            name: "V".into(),
            default: Some("1".into()),
        }]);
        assert_eq!(
            created_by(&arg, &c, &[], None),
            "/bin/sh -c #(nop)  ARG V=1"
        );
        let vol = Instruction::Volume(strings(&["/a", "/b"]));
        assert_eq!(
            created_by(&vol, &c, &[], None),
            "/bin/sh -c #(nop)  VOLUME [/a /b]"
        );
    }
}
