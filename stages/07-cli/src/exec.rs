//! `exec`: one more process in a running container.
//!
//! `run` makes a container: new namespaces, a new root, a new cgroup, then the command. `exec`
//! makes none of those. It starts a process *inside what exists*: the namespaces of the
//! container's first process (entered with setns(2) through a pidfd, stage 02's
//! [`namespaces::join`]), its cgroup (stage 03's [`cgroups::join`]), and so its root, which
//! entering its mount namespace brings. Then the same rules as the first process: the same
//! user unless `-u` says otherwise, the same capabilities (all of them with `--privileged`),
//! the same seccomp filter and no_new_privs, and stdio as `run` has it, pipes or, with `-t`, a
//! terminal made inside the container.
//!
//! It is stage 01's launch sequence again, with other features in the same slots: where `run`
//! has "new namespaces" and "a new cgroup", `exec` has "join these" and "join that". Nothing is
//! copied from `run`; the privileges feature is the very one `run` uses.
//!
//! There is no monitor: the process is this command's child, and this command relays its
//! streams (the same pump as a monitor's, in a thread, talking to the same client code as
//! `attach`), then exits with its exit code. With `-d` it is left to run on its own, with its
//! streams on `/dev/null`. See docker-exec(1), setns(2).

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use namespaces::RootArgs;
use namespaces::record::Status;

use crate::attach::{Streams, kind};
use crate::client::{self, Ended};
use crate::container::Record;
use crate::lifecycle;
use crate::pump::{Client, Ends, Pump};
use crate::stdio::Stdio;

/// `exec`'s flags.
#[derive(Args)]
pub struct ExecArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Detached mode: run the command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep stdin open: what you type (or pipe in) reaches the command
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the command a terminal of its own
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set an environment variable: KEY=VALUE, or KEY to take this shell's value
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file of KEY=VALUE lines
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Run as this user: NAME or UID, with :GROUP or :GID
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Give the command every capability
    #[arg(long)]
    pub privileged: bool,
    /// The keys that detach from the command's terminal
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Runs `exec`; returns the command's exit code.
pub fn command(args: ExecArgs) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let record = lifecycle::find(root, &args.container)?;
    match record.state.status {
        Status::Running => {}
        Status::Paused => bail!(
            "Container {} is paused, unpause the container before exec",
            record.id
        ),
        _ => bail!("Container {} is not running", record.id),
    }
    // Signals are caught before any thread starts.
    let forwarder = (!args.detach)
        .then(chroot::signals::Forwarder::install)
        .transpose()
        .context("catch signals to pass on")?;
    let mut prepared = prepare(&args, &record)?;
    let streams = Streams {
        stdin: args.interactive,
        stdout: true,
        stderr: true,
    };
    // The streams: none with -d, a terminal with -t, pipes otherwise.
    let mut console = None;
    let mut ends = None;
    if args.detach {
        prepared.add(Stdio::detached().context("open /dev/null")?);
    } else if args.tty {
        let (stdio, socket) = Stdio::terminal().context("make a console socket")?;
        prepared.add(stdio);
        console = Some(socket);
    } else {
        let (stdio, pipes) = Stdio::pipes(args.interactive).context("make pipes")?;
        prepared.add(stdio);
        ends = Some(pipes);
    }
    let what = args.command.join(" ");
    crate::events::emit(root, &format!("exec_create: {what}"), &record, &[]);
    let pid = prepared
        .spawn()
        .with_context(|| format!("exec in container {}", record.name))?
        .pid()
        .as_raw();
    crate::events::emit(root, &format!("exec_start: {what}"), &record, &[]);
    let Some(forwarder) = forwarder else {
        return Ok(0);
    };
    let ends = match (ends, console) {
        (Some(ends), _) => ends,
        (None, Some(socket)) => Ends::Terminal(
            crate::stdio::receive_master(&socket).context("receive the command's terminal")?,
        ),
        (None, None) => bail!("the command has no streams"),
    };
    let code = relay(pid, ends, streams, &args, &forwarder)?;
    crate::events::emit(root, "exec_die", &record, &[("exitCode", code.to_string())]);
    Ok(code)
}

// ANCHOR: prepare
/// The process, and the features that put it inside the container.
fn prepare(args: &ExecArgs, record: &Record) -> anyhow::Result<chroot::Prepared> {
    let running = record.state.pid.context("the container has no process")?;
    let pidfd = lifecycle::open_process(running)
        .with_context(|| format!("Container {} is not running", record.id))?;
    let spec = record.spec.image_args();
    // Read through the container's root, as its first process sees it.
    let rootfs = PathBuf::from(format!("/proc/{}/root", running.pid));
    let read = namespaces::user::read_in(&rootfs);
    let user = args
        .user
        .as_deref()
        .or(Some(record.config.user.as_str()).filter(|u| !u.is_empty()));
    let identity = match user {
        Some(spec) => namespaces::user::resolve(spec, &read)?,
        None => namespaces::user::Identity::root(),
    };
    // The container's own set (all of them for a --privileged container), or all with
    // `exec --privileged`.
    let container_caps = spec.namespaces.capabilities()?;
    let caps = if args.privileged {
        namespaces::NamespaceArgs {
            privileged: true,
            ..namespaces::NamespaceArgs::default()
        }
        .capabilities()?
    } else {
        container_caps.clone()
    };
    // The first process's seccomp filter (compiled for the container's capabilities, as runc
    // does) and no_new_privs: exec is no way around them.
    let confinement = spec
        .namespaces
        .security_opts()?
        .confinement(&container_caps)?;

    let mut process = chroot::Process::new(args.command.clone());
    process.env = environment(args, &record.config.env)?;
    if process.get_env("HOME").is_none() {
        process.set_env("HOME", &identity.home);
    }
    process.cwd = match args.workdir.as_deref() {
        Some(dir) if !dir.starts_with('/') => {
            bail!("the working directory '{dir}' is invalid, it needs to be an absolute path")
        }
        Some(dir) => dir.to_string(),
        None if record.config.working_dir.is_empty() => "/".to_string(),
        None => record.config.working_dir.clone(),
    };

    let mut prepared = chroot::Prepared::new(process);
    prepared.add(
        namespaces::join::Join::new(pidfd, running.pid)
            .with_context(|| format!("read the namespaces of container {}", record.name))?,
    );
    if let Some(cgroup) = record.cgroup.as_deref() {
        prepared.add(cgroups::JoinCgroup::new(cgroup)?);
    }
    prepared.add(namespaces::security::Privileges::new(caps, identity).confined(confinement));
    Ok(prepared)
}
// ANCHOR_END: prepare

/// The container's environment, then `--env-file`, then `-e`: a flag wins over a file, and
/// both over the container's, as in Docker.
fn environment(args: &ExecArgs, container: &[String]) -> anyhow::Result<Vec<String>> {
    let mut process = chroot::Process::new(Vec::new());
    process.env.clear();
    let mut set = |entry: &str| {
        if let Some((key, value)) = entry.split_once('=') {
            process.set_env(key, value);
        }
    };
    container.iter().for_each(|e| set(e));
    for file in &args.env_file {
        crate::spec::read_env_file(file)?
            .iter()
            .for_each(|e| set(e));
    }
    for entry in &args.env {
        if entry.contains('=') {
            set(entry);
        } else if let Ok(value) = std::env::var(entry) {
            set(&format!("{entry}={value}"));
        }
    }
    if process.get_env("PATH").is_none() {
        process.set_env("PATH", chroot::process::DEFAULT_PATH);
    }
    Ok(process.env)
}

// ANCHOR: relay
/// Moves the command's bytes to this terminal and back until it ends: the monitor's pump in a
/// thread on one end of a socket pair, `attach`'s client on the other.
fn relay(
    pid: i32,
    ends: Ends,
    streams: Streams,
    args: &ExecArgs,
    forwarder: &chroot::signals::Forwarder,
) -> anyhow::Result<i32> {
    let (ours, theirs) = UnixStream::pair().context("make a socket pair")?;
    let mut pump = Pump::new(pid, ends).context("watch the command")?;
    std::thread::spawn(move || {
        let mut clients = vec![Client::new(theirs, streams)];
        pump.run(None, &mut clients, &mut None, None);
        let code = crate::pump::reap(pid).exit_code();
        if let Some(client) = clients.first_mut() {
            let _ = crate::attach::write_frame(&mut client.stream, kind::EXIT, &code.to_be_bytes());
        }
    });
    let options = client::Options {
        streams,
        tty: args.tty,
        sig_proxy: true,
        detach_keys: match &args.detach_keys {
            Some(keys) => crate::attach::DetachKeys::parse(keys)?,
            None => crate::attach::DetachKeys::default(),
        },
    };
    Ok(match client::relay(ours, &options, forwarder)? {
        Ended::Exited(code) => code,
        Ended::Detached => 0,
        Ended::Lost => 1,
    })
}
// ANCHOR_END: relay

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        exec: ExecArgs,
    }

    fn parse(args: &[&str]) -> ExecArgs {
        Cli::try_parse_from(std::iter::once("exec").chain(args.iter().copied()))
            .unwrap()
            .exec
    }

    #[test]
    fn the_command_starts_after_the_container() {
        let args = parse(&["-it", "-u", "1000", "web", "ls", "-l", "/"]);
        assert!(args.interactive && args.tty);
        assert_eq!(args.user.as_deref(), Some("1000"));
        assert_eq!(args.container, "web");
        assert_eq!(args.command, ["ls", "-l", "/"]);
    }

    #[test]
    fn flags_win_over_files_and_files_over_the_container() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env");
        std::fs::write(&file, "B=file\nC=file\n").unwrap();
        let mut args = parse(&["-e", "C=flag", "web", "env"]);
        args.env_file = vec![file];
        let env = environment(&args, &["A=image".into(), "B=image".into()]).unwrap();
        assert_eq!(
            env,
            [
                "A=image",
                "B=file",
                "C=flag",
                &format!("PATH={}", chroot::process::DEFAULT_PATH)
            ]
        );
    }
}
