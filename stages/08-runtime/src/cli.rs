//! runc's command line (runc(8), and how containerd's runc shim calls it): global `--root`,
//! `--log`, `--log-format`; `create`, `start`, `state`, `kill`, `delete`, `run`, `list`, `spec`,
//! `features`. Errors go to stderr and, with `--log`, to the log file in the format the caller
//! asked for: containerd's shim reads the last JSON line of that file to say why a call failed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::lifecycle::{self, Then};
use crate::state::{DEFAULT_ROOT, Status, Store};

/// skiff as an OCI runtime: runs OCI bundles with runc's command line
#[derive(Debug, Parser)]
#[command(name = "skiff-runtime", version)]
pub struct Cli {
    /// Where container state is kept
    #[arg(long, global = true, default_value = DEFAULT_ROOT, value_name = "DIR")]
    pub root: PathBuf,

    /// Also write errors to this file
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// The log's format: text or json
    #[arg(
        long = "log-format",
        global = true,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub log_format: String,

    /// Accepted for runc's callers; skiff-runtime says nothing more with it
    #[arg(long, global = true)]
    pub debug: bool,

    /// Use systemd's cgroup driver (not supported: refused)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,

    /// The command
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container from a bundle; its program waits for `start`
    Create(CreateArgs),
    /// Run the program of a created container
    Start(IdArg),
    /// Print a container's state as JSON
    State(IdArg),
    /// Send a signal to a container's first process (or, with --all, to all of them)
    Kill(KillArgs),
    /// Remove a container's state and cgroup
    Delete(DeleteArgs),
    /// Create and start a container, and wait for it (unless --detach)
    Run(RunArgs),
    /// List the containers
    List(ListArgs),
    /// Write a default config.json
    Spec(SpecArgs),
    /// Run one more process in a running container
    Exec(ExecArgs),
    /// List a container's processes
    Ps(PsArgs),
    /// Freeze every process of a container
    Pause(IdArg),
    /// Thaw a paused container
    Resume(IdArg),
    /// Change a running container's limits
    Update(UpdateArgs),
    /// Print a container's resource usage as JSON events (runc's format)
    Events(EventsArgs),
    /// Print what this runtime supports, as JSON
    Features,
    /// Checkpoint a running container (not supported: needs CRIU; refused)
    Checkpoint(RefusedArgs),
    /// Restore a checkpointed container (not supported: needs CRIU; refused)
    Restore(RefusedArgs),
}

/// The flags of a refused command: any, so that the refusal says why rather than clap.
#[derive(Debug, Args)]
pub struct RefusedArgs {
    /// Whatever the caller passed
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// A container id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The container's id
    pub id: String,
}

/// `create`'s flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle directory (default: the current directory)
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Write the container's pid to this file
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to (with process.terminal)
    #[arg(long = "console-socket", value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Accepted: skiff always uses pivot_root, the stronger of the two
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted: skiff-runtime does not make a session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass the caller's descriptors 3 to 3+N-1 on to the container's process
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// The container's id
    pub id: String,
}

/// `run`'s flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// `create`'s flags.
    #[command(flatten)]
    pub create: CreateArgs,
    /// Start it and return, without waiting
    #[arg(short, long)]
    pub detach: bool,
}

/// `kill`'s flags.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container's cgroup
    #[arg(short, long)]
    pub all: bool,
    /// The container's id
    pub id: String,
    /// The signal, by name (TERM, SIGKILL) or number (default: SIGTERM)
    pub signal: Option<String>,
}

/// `delete`'s flags.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container first; a missing one is not an error
    #[arg(short, long)]
    pub force: bool,
    /// The container's id
    pub id: String,
}

/// `list`'s flags.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// table or json
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Print the ids only
    #[arg(short, long)]
    pub quiet: bool,
}

/// `exec`'s flags.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A process.json (an OCI process) to run; otherwise the container's process with COMMAND
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Start it and return, without waiting
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid to this file
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to (with --tty)
    #[arg(long = "console-socket", value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Give the process a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// The working directory, inside the container
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Set an environment variable: KEY=VALUE
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run as this user: UID, or UID:GID
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Pass the caller's descriptors 3 to 3+N-1 on to the process
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    pub preserve_fds: u32,
    /// The container's id
    pub id: String,
    /// The command and its arguments (without --process)
    #[arg(trailing_var_arg = true)]
    pub command: Vec<String>,
}

/// `ps`'s flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// table or json (a list of pids)
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// The container's id
    pub id: String,
    /// ps(1)'s options, after `--` (default: -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `update`'s flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The new linux.resources, as JSON (`-` for stdin)
    #[arg(short, long, value_name = "FILE")]
    pub resources: PathBuf,
    /// The container's id
    pub id: String,
}

/// `events`' flags.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print the usage once and return
    #[arg(long)]
    pub stats: bool,
    /// The time between two stats events, without --stats (runc's form: 5s, 500ms; a bare
    /// number is seconds)
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_interval)]
    pub interval: Duration,
    /// The container's id
    pub id: String,
}

/// `spec`'s flags.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Where to write config.json (default: the current directory)
    #[arg(short, long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
}

/// `--interval`: a duration as runc takes it (`5s`), or a number of seconds.
fn parse_interval(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_duration(text).map_err(|e| e.to_string()),
    }
}

/// Runs the command line; returns the process's exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // A caller that reads only the log (containerd's shim) learns of a bad call too.
            if err.use_stderr() {
                let (log, format) = log_flags(std::env::args());
                if let Some(log) = log {
                    write_log(&log, &format, err.to_string().trim());
                }
            }
            err.exit()
        }
    };
    // A command that joins a container runs from a read-only mount of this binary first
    // (CVE-2019-5736: see `sealed`).
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) && !crate::sealed::is_sealed()
    {
        let err = crate::sealed::reexec_read_only();
        let message = format!(
            "warning: running from the binary itself, not a read-only mount of it (CVE-2019-5736): {err}"
        );
        match &cli.log {
            Some(log) => write_log(log, &cli.log_format, &message),
            None => eprintln!("skiff-runtime: {message}"),
        }
    }
    match dispatch(&cli) {
        Ok(code) => code,
        Err(err) => {
            let message = format!("{err:#}");
            eprintln!("skiff-runtime: {message}");
            if let Some(log) = &cli.log {
                write_log(log, &cli.log_format, &message);
            }
            1
        }
    }
}

/// `--log` and `--log-format` from raw arguments, for a command line clap refused.
fn log_flags(args: impl Iterator<Item = String>) -> (Option<PathBuf>, String) {
    let (mut log, mut format) = (None, "text".to_string());
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.split_once('=') {
            Some(("--log", value)) => log = Some(PathBuf::from(value)),
            Some(("--log-format", value)) => format = value.to_string(),
            _ if arg == "--log" => log = args.next().map(PathBuf::from),
            _ if arg == "--log-format" => format = args.next().unwrap_or(format),
            _ => {}
        }
    }
    (log, format)
}

/// Appends an error line to `--log`: `{"level":"error","msg":...,"time":...}` in JSON (what
/// containerd's shim parses), a plain line otherwise.
fn write_log(path: &Path, format: &str, message: &str) {
    let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let line = if format == "json" {
        serde_json::json!({"level": "error", "msg": message, "time": time}).to_string()
    } else {
        format!("{time} error: {message}")
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    if cli.systemd_cgroup {
        bail!(
            "--systemd-cgroup is not supported: skiff-runtime manages cgroupfs directly; configure the caller with SystemdCgroup = false"
        );
    }
    if !matches!(cli.log_format.as_str(), "text" | "json") {
        bail!(
            "invalid --log-format {:?}: use text or json",
            cli.log_format
        );
    }
    let store = Store::new(&cli.root);
    match &cli.command {
        Command::Create(args) => lifecycle::create(&store, args, Then::Return),
        Command::Start(IdArg { id }) => lifecycle::start(&store, id).map(|()| 0),
        Command::State(IdArg { id }) => {
            let (record, dir) = store.load(id)?;
            println!("{}", serde_json::to_string_pretty(&record.oci_state(&dir))?);
            Ok(0)
        }
        Command::Kill(args) => lifecycle::kill(&store, args).map(|()| 0),
        Command::Delete(args) => lifecycle::delete(&store, &args.id, args.force).map(|()| 0),
        Command::Run(args) if args.detach => lifecycle::create(&store, &args.create, Then::Start),
        Command::Run(args) => lifecycle::create(&store, &args.create, Then::StartAndWait),
        Command::List(args) => list(&store, args).map(|()| 0),
        Command::Spec(args) => spec(args.bundle.as_deref()).map(|()| 0),
        Command::Exec(args) => crate::exec::exec(&store, args),
        Command::Ps(args) => ps(&store, args).map(|()| 0),
        Command::Pause(IdArg { id }) => pause(&store, id, true).map(|()| 0),
        Command::Resume(IdArg { id }) => pause(&store, id, false).map(|()| 0),
        Command::Update(args) => update(&store, args).map(|()| 0),
        Command::Events(args) => events(&store, args).map(|()| 0),
        Command::Features => {
            println!("{}", serde_json::to_string_pretty(&features())?);
            Ok(0)
        }
        // runc hands these to CRIU; skiff-runtime has no CRIU backend, so it says so and fails.
        Command::Checkpoint(_) => bail!(
            "checkpoint is not supported: skiff-runtime has no CRIU (checkpoint/restore in userspace) support"
        ),
        Command::Restore(_) => bail!(
            "restore is not supported: skiff-runtime has no CRIU (checkpoint/restore in userspace) support"
        ),
    }
}

// ANCHOR: ps
/// `ps`: the pids of the container's cgroup, as JSON, or, as runc does, ps(1)'s own table
/// (`ps -ef`, or the options after `--`) filtered to the lines whose PID column is one of them.
fn ps(store: &Store, args: &PsArgs) -> anyhow::Result<()> {
    let (record, _) = store.load(&args.id)?;
    let pids = cgroups::processes_at(&record.cgroup_path)
        .with_context(|| format!("list the processes of cgroup {}", record.cgroup_path))?;
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let ps_args = if args.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                args.ps_args.clone()
            };
            let out = std::process::Command::new("ps")
                .args(&ps_args)
                .output()
                .context("run ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    ps_args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let column = header
                .split_whitespace()
                .position(|field| field == "PID")
                .context("couldn't find PID field in ps output")?;
            println!("{header}");
            for line in lines {
                let pid = line.split_whitespace().nth(column);
                if pid
                    .and_then(|p| p.parse::<i32>().ok())
                    .is_some_and(|p| pids.contains(&p))
                {
                    println!("{line}");
                }
            }
        }
        other => bail!("invalid --format {other:?}: use table or json"),
    }
    Ok(())
}
// ANCHOR_END: ps

// ANCHOR: pause
/// `pause` and `resume`: stage 03's freezer on the container's cgroup, and a mark in the state
/// directory, so `state` says `paused`.
fn pause(store: &Store, id: &str, freeze: bool) -> anyhow::Result<()> {
    let (record, dir) = store.load(id)?;
    let status = record.status(&dir);
    let mark = dir.join(crate::state::PAUSED_MARK);
    if freeze {
        if status != Status::Running {
            bail!("cannot pause container {id}: it is {status}, not running");
        }
        cgroups::freeze::freeze(&record.cgroup_path)
            .with_context(|| format!("pause container {id}"))?;
        std::fs::write(&mark, b"").with_context(|| format!("write {}", mark.display()))?;
    } else {
        if status != Status::Paused {
            bail!("cannot resume container {id}: it is {status}, not paused");
        }
        cgroups::freeze::thaw(&record.cgroup_path)
            .with_context(|| format!("resume container {id}"))?;
        std::fs::remove_file(&mark).with_context(|| format!("remove {}", mark.display()))?;
    }
    Ok(())
}
// ANCHOR_END: pause

/// `update --resources FILE`: the new limits, checked as `create` checks them, written live.
fn update(store: &Store, args: &UpdateArgs) -> anyhow::Result<()> {
    let (record, dir) = store.load(&args.id)?;
    if record.status(&dir) == Status::Stopped {
        bail!("cannot update container {}: it is stopped", args.id);
    }
    let text = if args.resources == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("read the resources from stdin")?
    } else {
        std::fs::read_to_string(&args.resources)
            .with_context(|| format!("read {}", args.resources.display()))?
    };
    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_str(&text).context("read the resources: not a linux.resources object")?;
    let limits = crate::resources::cgroup_args(&resources)?.limits()?;
    cgroups::update_at(&record.cgroup_path, &limits)
        .with_context(|| format!("update container {}", args.id))?;
    Ok(())
}

// ANCHOR: events
/// `events`: runc's `stats` event every `--interval` (once with `--stats`), and between two, an
/// `{"type":"oom"}` event each time the kernel's OOM killer killed in the container's cgroup
/// (stage 03's `oom_kill` count, read every 100 ms, where runc waits on an eventfd).
fn events(store: &Store, args: &EventsArgs) -> anyhow::Result<()> {
    let (record, _) = store.load(&args.id)?;
    let mut ooms = cgroups::oom_kills_at(&record.cgroup_path).ok().flatten();
    loop {
        let (record, dir) = store.load(&args.id)?;
        if record.status(&dir) == Status::Stopped {
            if args.stats {
                bail!("container {} is not running", args.id);
            }
            return Ok(());
        }
        let usage = cgroups::usage_at(&record.cgroup_path)
            .with_context(|| format!("read the usage of cgroup {}", record.cgroup_path))?;
        let data = serde_json::json!({
            "cpu": {"usage": {"total": usage.cpu.map(|d| d.as_nanos())}},
            "memory": {"usage": {
                "usage": usage.memory_current,
                "max": usage.memory_peak,
                "limit": usage.memory_limit,
            }},
            "pids": {"current": usage.pids_current},
            "blkio": {"read": usage.block_read, "write": usage.block_write},
        });
        let event = serde_json::json!({"type": "stats", "id": args.id, "data": data});
        println!("{event}");
        if args.stats {
            return Ok(());
        }
        let next = std::time::Instant::now() + args.interval.max(Duration::from_millis(100));
        while std::time::Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
            let now = cgroups::oom_kills_at(&record.cgroup_path).ok().flatten();
            if let (Some(before), Some(after)) = (ooms, now) {
                for _ in before..after {
                    println!("{}", serde_json::json!({"type": "oom", "id": args.id}));
                }
            }
            if now.is_some() {
                ooms = now;
            }
            if record.status(&dir) == Status::Stopped {
                break;
            }
        }
        std::io::stdout().flush()?;
    }
}
// ANCHOR_END: events
// ANCHOR_END: events

fn list(store: &Store, args: &ListArgs) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for id in store.ids()? {
        if let Ok(found) = store.load(&id) {
            rows.push(found);
        }
    }
    if args.quiet {
        for (record, _) in &rows {
            println!("{}", record.id);
        }
        return Ok(());
    }
    match args.format.as_str() {
        "json" => {
            let states: Vec<_> = rows.iter().map(|(r, d)| r.oci_state(d)).collect();
            println!("{}", serde_json::to_string(&states)?);
        }
        "table" => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for (record, dir) in &rows {
                let state = record.oci_state(dir);
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} root",
                    state.id,
                    state.pid,
                    state.status,
                    state.bundle.display(),
                    state.created
                );
            }
        }
        other => bail!("invalid --format {other:?}: use table or json"),
    }
    Ok(())
}

// ANCHOR: spec
/// `spec`: oci-spec's default config.json, trimmed to what skiff-runtime runs: no terminal,
/// no inheritable capabilities.
fn spec(bundle: Option<&Path>) -> anyhow::Result<()> {
    let path = bundle.unwrap_or(Path::new(".")).join("config.json");
    if path.exists() {
        bail!("{} exists: remove it first", path.display());
    }
    let mut spec = oci_spec::runtime::Spec::default();
    spec.set_hostname(Some("skiff".to_string()));
    if let Some(mut process) = spec.process().clone() {
        process.set_terminal(Some(false));
        if let Some(mut caps) = process.capabilities().clone() {
            caps.set_inheritable(None);
            process.set_capabilities(Some(caps));
        }
        spec.set_process(Some(process));
    }
    spec.save(&path)
        .with_context(|| format!("write {}", path.display()))
}
// ANCHOR_END: spec

/// What `features` reports (runc's `features` format, runtime-spec features.md).
fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::state::OCI_VERSION,
        "hooks": [
            "prestart", "createRuntime", "createContainer", "startContainer", "poststart",
            "poststop"
        ],
        "mountOptions": [
            "bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
            "noatime", "nodiratime", "relatime", "strictatime", "sync", "dirsync", "defaults",
            "private", "rprivate"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": namespaces::security::CAPABILITIES
                .iter()
                .map(|c| format!("CAP_{c}"))
                .collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {"enabled": true},
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"org.skiff.runtime": "stages 01-03 of skiff"}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_flags_are_found_in_a_refused_command_line() {
        let args = [
            "skiff-runtime",
            "--log",
            "/x/log.json",
            "--log-format=json",
            "frobnicate",
        ];
        let (log, format) = log_flags(args.iter().map(|s| s.to_string()));
        assert_eq!(log.as_deref(), Some(Path::new("/x/log.json")));
        assert_eq!(format, "json");
    }
}
