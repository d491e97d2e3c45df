//! `run`'s and `create`'s flags: every stage's, and the ones stage 07 adds (`-d`, `-i`, `-t`,
//! `--restart`...). They are parsed once, checked once, and kept in the container's record as
//! the container's specification: each start prepares the same container again from them.
//!
//! Before they are kept, what depends on the moment and the shell they were typed in is
//! resolved (Docker's CLI does the same before it sends a create to the daemon): the image
//! name becomes the image's id, so retagging the name never changes an existing container;
//! `-e NAME` takes `NAME`'s value from this shell; `--env-file` is read; `--cidfile` is done.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::restart::RestartPolicy;

// ANCHOR: args
/// The flags stage 07 adds to `run`.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
pub struct LifecycleArgs {
    /// Run in the background and print the container's id
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Keep stdin open: what you type (or pipe in) reaches the container
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Give the container a terminal of its own
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Attach to STDIN, STDOUT or STDERR (default: stdout and stderr, and stdin with -i)
    #[arg(short = 'a', long = "attach", value_name = "STREAM")]
    pub attach: Vec<String>,

    /// Start it again when it ends: no, on-failure[:N], always, unless-stopped
    #[arg(long, default_value = "no", value_name = "POLICY")]
    pub restart: String,

    /// The signal `stop` sends first (default: SIGTERM)
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,

    /// Seconds `stop` waits before SIGKILL (default: 10)
    #[arg(long = "stop-timeout", value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,

    /// Set metadata: KEY=VALUE
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Read environment variables from a file of KEY=VALUE lines
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,

    /// Log options of the json-file driver: max-size=10m, max-file=3
    #[arg(long = "log-opt", value_name = "OPT")]
    pub log_opt: Vec<String>,

    /// Pass the signals the foreground `run` gets on to the container (without -t)
    #[arg(long = "sig-proxy", default_value = "true", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,

    /// The keys that detach from a container's terminal, leaving it running
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// `--cidfile` as given, which `create` has written: kept for `inspect`
    /// (`HostConfig.ContainerIDFile`), never written again.
    #[arg(skip)]
    #[serde(default)]
    pub container_id_file: Option<std::path::PathBuf>,
}
// ANCHOR_END: args

// ANCHOR: run_args
/// `run`'s and `create`'s flags: stage 06's (and so every earlier stage's), and stage 07's.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[group(id = "skiff_run")]
pub struct RunArgs {
    /// Flags of stage 06 and before it.
    #[command(flatten)]
    pub volumes: volumes::cli::RunArgs,

    /// Flags of stage 07.
    #[command(flatten)]
    pub lifecycle: LifecycleArgs,

    /// Flags of stage 07 that wire it to other containers, and the networks it is on.
    #[command(flatten)]
    #[serde(default)]
    pub wiring: crate::wiring::WiringArgs,
}
// ANCHOR_END: run_args

impl RunArgs {
    /// Stage 04's flags, where the image, the command and `--rm` are.
    pub fn image_args(&self) -> &images::cli::RunArgs {
        &self.volumes.network.run
    }

    fn image_args_mut(&mut self) -> &mut images::cli::RunArgs {
        &mut self.volumes.network.run
    }

    /// The store's root.
    pub fn root(&self) -> &std::path::Path {
        &self.image_args().namespaces.root
    }

    /// `--name`.
    pub fn name(&self) -> Option<&str> {
        self.volumes.network.network.name.as_deref()
    }

    /// `--rm`.
    pub fn auto_remove(&self) -> bool {
        self.image_args().rm
    }

    /// `--restart`, parsed.
    pub fn restart_policy(&self) -> anyhow::Result<RestartPolicy> {
        RestartPolicy::parse(&self.lifecycle.restart)
    }

    /// `--stop-signal`, checked; SIGTERM by default.
    pub fn stop_signal(&self) -> anyhow::Result<nix::sys::signal::Signal> {
        match &self.lifecycle.stop_signal {
            Some(text) => crate::signal::parse(text),
            None => Ok(nix::sys::signal::Signal::SIGTERM),
        }
    }

    /// `--label`s.
    pub fn labels(&self) -> anyhow::Result<BTreeMap<String, String>> {
        self.lifecycle
            .label
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                None if !l.is_empty() => Ok((l.clone(), String::new())),
                _ => bail!("invalid label {l:?}: use KEY=VALUE"),
            })
            .collect()
    }

    /// Which streams a foreground `run` attaches: `-a` as given, else stdout and stderr, and
    /// stdin with `-i`.
    pub fn attached(&self) -> anyhow::Result<crate::attach::Streams> {
        crate::attach::Streams::parse(&self.lifecycle.attach, self.lifecycle.interactive)
    }

    // ANCHOR: resolve
    /// Checks the flags stage 07 adds, and resolves what depends on this moment and this shell,
    /// so that every later start of the container means the same thing. `image_id` is the id
    /// the image name resolved to.
    pub fn resolve(&mut self, image_id: Option<&images::Digest>) -> anyhow::Result<()> {
        let policy = self.restart_policy()?;
        if self.auto_remove() && policy != RestartPolicy::No {
            bail!("Conflicting options: --restart and --rm");
        }
        self.stop_signal()?;
        self.labels()?;
        self.attached()?;
        crate::logs::LogOptions::parse(&self.lifecycle.log_opt)?;
        if let Some(keys) = &self.lifecycle.detach_keys {
            crate::attach::DetachKeys::parse(keys)?;
        }
        // --env-file first, -e after it: a flag wins over a file, as in Docker.
        let mut env = Vec::new();
        for file in &self.lifecycle.env_file {
            env.extend(read_env_file(file)?);
        }
        for entry in &self.image_args().process.env {
            if entry.contains('=') {
                env.push(entry.clone());
            } else if let Ok(value) = std::env::var(entry) {
                // `-e NAME` takes NAME's value from this shell, now; unset, it is left out.
                env.push(format!("{entry}={value}"));
            }
        }
        self.lifecycle.env_file.clear();
        self.lifecycle.container_id_file = self.image_args_mut().namespaces.cidfile.take();
        let run = self.image_args_mut();
        run.process.env = env;
        if let Some(id) = image_id
            && let Some(first) = run.args.first_mut()
        {
            *first = id.to_string();
        }
        // The image is in the store now: a later start never pulls.
        run.pull = "never".to_string();
        // The container keeps its seccomp profile, not the path to it, as in Docker.
        run.namespaces.embed_seccomp_profile()?;
        Ok(())
    }
    // ANCHOR_END: resolve
}

/// Reads an `--env-file`: `KEY=VALUE` lines, `KEY` alone to take the value from this shell,
/// `#` comments and blank lines skipped (docker-run(1)).
pub fn read_env_file(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("open {}: give a file of KEY=VALUE lines", path.display()))?;
    let mut env = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, _)) if key.is_empty() || key.contains(char::is_whitespace) => bail!(
                "{}:{}: variable '{key}' contains whitespaces",
                path.display(),
                number + 1
            ),
            Some(_) => env.push(line.to_string()),
            None => {
                if let Ok(value) = std::env::var(line.trim_end()) {
                    env.push(format!("{}={value}", line.trim_end()));
                }
            }
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_read_as_docker_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        std::fs::write(
            &path,
            "# comment\n\nA=1\nB=two words\nSKIFF_SPEC_TEST_UNSET\n",
        )
        .unwrap();
        assert_eq!(read_env_file(&path).unwrap(), ["A=1", "B=two words"]);
        std::fs::write(&path, "BAD KEY=1\n").unwrap();
        let err = read_env_file(&path).unwrap_err().to_string();
        assert!(
            err.ends_with(":1: variable 'BAD KEY' contains whitespaces"),
            "{err}"
        );
    }
}
