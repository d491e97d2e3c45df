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
//! The process is the container's, not this command's: as Docker's exec goes through the
//! container's shim, `exec` asks the container's monitor (an EXEC frame on its attach socket),
//! and the monitor starts a helper, `skiff container-exec`, which launches the process and
//! pumps its streams to this command (the monitor's pump, talking to `attach`'s client code).
//! With `-d` the helper ends once the process runs, with its streams on `/dev/null`, and the
//! monitor, a child subreaper, adopts and reaps it; after a detach from `-it` the helper goes on
//! holding its terminal. See docker-exec(1), setns(2), prctl(2) `PR_SET_CHILD_SUBREAPER`.

use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

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

/// What `exec` asks of the container's monitor: the process, as this command resolved it
/// (the environment with this shell's values for `-e KEY`, `--env-file` read here).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The whole environment.
    pub env: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-t`.
    pub tty: bool,
    /// `-d`.
    pub detach: bool,
}

// ANCHOR: command
/// Runs `exec`; returns the command's exit code.
pub fn command(args: ExecArgs) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let record = lifecycle::find(root, &args.container)?;
    // The daemon's refusals in Docker: its words, exit 1. A process that joined a frozen
    // cgroup would freeze before its first instruction.
    let refusal = match record.state.status {
        Status::Running => None,
        Status::Paused => Some("is paused, unpause the container before exec"),
        _ => Some("is not running"),
    };
    if let Some(refusal) = refusal {
        eprintln!(
            "Error response from daemon: Container {} {refusal}",
            record.id
        );
        return Ok(1);
    }
    if let Some(dir) = args.workdir.as_deref()
        && !dir.starts_with('/')
    {
        bail!("the working directory '{dir}' is invalid, it needs to be an absolute path");
    }
    let request = Request {
        command: args.command.clone(),
        env: environment(&args, &record.config.env)?,
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        privileged: args.privileged,
        interactive: args.interactive,
        tty: args.tty,
        detach: args.detach,
    };
    let detach_keys = match &args.detach_keys {
        Some(keys) => crate::attach::DetachKeys::parse(keys)?,
        None => crate::attach::DetachKeys::default(),
    };
    // Signals are caught before any thread starts.
    let forwarder = (!args.detach)
        .then(chroot::signals::Forwarder::install)
        .transpose()
        .context("catch signals to pass on")?;
    // The monitor starts the process: it is the monitor's, as Docker's are the shim's.
    let dir = crate::container::records(root).dir(&record.id);
    let mut stream = crate::attach::connect(&dir)
        .with_context(|| format!("reach the monitor of container {}", record.name))?;
    let payload = serde_json::to_vec(&request).context("write the exec request")?;
    crate::attach::write_frame(&mut stream, kind::EXEC, &payload)
        .with_context(|| format!("ask the monitor of container {}", record.name))?;
    let Some(forwarder) = forwarder else {
        return started(stream, &record.name);
    };
    let options = client::Options {
        streams: Streams {
            stdin: args.interactive,
            stdout: true,
            stderr: true,
        },
        tty: args.tty,
        sig_proxy: true,
        detach_keys,
    };
    Ok(match client::relay(stream, &options, &forwarder)? {
        Ended::Exited(code) => code,
        Ended::Detached => 0,
        Ended::Lost => 1,
    })
}

/// `exec -d`: waits for the word that the process started (exit code 0), or why not.
fn started(mut stream: UnixStream, name: &str) -> anyhow::Result<i32> {
    loop {
        match crate::attach::read_frame(&mut stream)? {
            Some((kind::NOTE, text)) => eprintln!("skiff: {}", String::from_utf8_lossy(&text)),
            Some((kind::EXIT, code)) if code.len() == 4 => {
                return Ok(i32::from_be_bytes([code[0], code[1], code[2], code[3]]));
            }
            Some(_) => {}
            None => bail!("the monitor of container {name} ended before the command started"),
        }
    }
}
// ANCHOR_END: command

// ANCHOR: helper
/// `skiff container-exec ROOT ID FD`: the monitor's helper for one `exec`, with the request
/// on stdin and the client's connection at descriptor FD. Starts the process in container ID
/// and, unless detached, pumps its streams until it ends; returns the code to exit with.
pub fn helper_main(args: &[String]) -> i32 {
    let [root, id, fd] = args else {
        eprintln!("skiff container-exec: bad arguments (this mode is for skiff's monitor only)");
        return 2;
    };
    let Some(fd) = fd.parse::<RawFd>().ok().filter(|fd| *fd > 2) else {
        eprintln!("skiff container-exec: bad descriptor {fd:?}");
        return 2;
    };
    // SAFETY: the monitor put this descriptor there for this process alone.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    // Never passed on to the process.
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut request = Vec::new();
    let parsed = std::io::Read::read_to_end(&mut std::io::stdin(), &mut request)
        .map_err(anyhow::Error::from)
        .and_then(|_| Ok(serde_json::from_slice::<Request>(&request)?));
    let root = PathBuf::from(root);
    let outcome = parsed.and_then(|request| serve(&root, id, &request, stream.try_clone()?));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // Not started: the client hears why, with Docker's code for it.
            let code = error
                .chain()
                .find_map(|cause| cause.downcast_ref::<chroot::LaunchError>())
                .map_or(1, chroot::LaunchError::exit_code);
            let mut stream = stream;
            let note = chroot::cli::one_line(&error);
            let _ = crate::attach::write_frame(&mut stream, kind::NOTE, note.as_bytes());
            let _ = crate::attach::write_frame(&mut stream, kind::EXIT, &code.to_be_bytes());
            code
        }
    }
}

/// Starts the process; then, unless detached, moves its bytes between it and the client until
/// it ends, and tells the client its exit code. After a detach (ctrl-p ctrl-q) the client is
/// gone and the process keeps its terminal: its output is read, and dropped, until it ends.
fn serve(root: &Path, id: &str, request: &Request, mut stream: UnixStream) -> anyhow::Result<i32> {
    let record = crate::container::records(root)
        .load::<crate::spec::RunArgs>(id)?
        .with_context(|| format!("No such container: {id}"))?;
    let mut prepared = prepare(request, &record)?;
    // The streams: none with -d, a terminal with -t, pipes otherwise.
    let mut console = None;
    let mut ends = None;
    if request.detach {
        prepared.add(Stdio::detached().context("open /dev/null")?);
    } else if request.tty {
        let (stdio, socket) = Stdio::terminal().context("make a console socket")?;
        prepared.add(stdio);
        console = Some(socket);
    } else {
        let (stdio, pipes) = Stdio::pipes(request.interactive).context("make pipes")?;
        prepared.add(stdio);
        ends = Some(pipes);
    }
    let what = request.command.join(" ");
    crate::events::emit(root, &format!("exec_create: {what}"), &record, &[]);
    let pid = prepared
        .spawn()
        .with_context(|| format!("exec in container {}", record.name))?
        .pid()
        .as_raw();
    crate::events::emit(root, &format!("exec_start: {what}"), &record, &[]);
    if request.detach {
        // Started. This helper ends now, and the process is the monitor's.
        let _ = crate::attach::write_frame(&mut stream, kind::EXIT, &0i32.to_be_bytes());
        return Ok(0);
    }
    let ends = match (ends, console) {
        (Some(ends), _) => ends,
        (None, Some(socket)) => Ends::Terminal(
            crate::stdio::receive_master(&socket).context("receive the command's terminal")?,
        ),
        (None, None) => bail!("the command has no streams"),
    };
    let streams = Streams {
        stdin: request.interactive,
        stdout: true,
        stderr: true,
    };
    let mut clients = vec![Client::new(stream, streams)];
    if let Ok(mut pump) = Pump::new(pid, ends) {
        pump.run(None, &mut clients, &mut None, None);
    }
    let code = crate::pump::reap(pid).exit_code();
    if let Some(client) = clients.first_mut() {
        let _ = crate::attach::write_frame(&mut client.stream, kind::EXIT, &code.to_be_bytes());
    }
    crate::events::emit(root, "exec_die", &record, &[("exitCode", code.to_string())]);
    Ok(code)
}
// ANCHOR_END: helper

// ANCHOR: prepare
/// The process, and the features that put it inside the container.
fn prepare(args: &Request, record: &Record) -> anyhow::Result<chroot::Prepared> {
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
    process.env = args.env.clone();
    if process.get_env("HOME").is_none() {
        process.set_env("HOME", &identity.home);
    }
    process.cwd = match args.workdir.as_deref() {
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
