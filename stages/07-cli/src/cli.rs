//! The command line of stage 07: Docker's container commands (`run -d`, `create`, `start`,
//! `attach`, `stop`, `kill`, `restart`, `rm`, `wait`, `ps`, `logs`, `inspect`), Docker's
//! management groups (`skiff container ls`, `skiff image rm`), and every earlier stage's
//! commands, under one binary.

use std::path::Path;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use images::cli::ImageCommand;
use namespaces::RootArgs;
use volumes::cli::VolumeCommand;

use crate::client::{self, Ended};
use crate::lifecycle;
use crate::monitor::Report;
use crate::spec::RunArgs;

/// skiff: a container engine, written to be read.
#[derive(Parser)]
#[command(name = "skiff", version)]
pub struct Cli {
    /// Be a client of this daemon's Engine API: unix:///PATH or tcp://HOST:PORT (else
    /// $SKIFF_HOST, else $DOCKER_HOST; with none, work on the local store)
    #[arg(short = 'H', long = "host", value_name = "URI")]
    pub host: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Subcommand)]
pub enum Command {
    /// The container commands.
    #[command(flatten)]
    Container(ContainerCommand),
    /// Manage containers
    #[command(name = "container")]
    ContainerGroup {
        /// The command.
        #[command(subcommand)]
        command: ContainerGroupCommand,
    },
    /// Manage images
    Image {
        /// The command.
        #[command(subcommand)]
        command: crate::listings::ImageGroup,
    },
    /// Manage skiff: disk usage, pruning, information
    System {
        /// The command.
        #[command(subcommand)]
        command: crate::prune::SystemCommand,
    },
    /// Manage volumes
    Volume {
        /// The command.
        #[command(subcommand)]
        command: VolumeCommand,
    },
    /// Manage networks
    Network {
        /// The command.
        #[command(subcommand)]
        command: crate::connect::NetworkGroup,
    },
    /// Load images from a docker-archive or OCI archive (a file, or stdin)
    Load(images::cli::LoadArgs),
    /// Save images to a docker-archive (default) or OCI archive
    Save(images::cli::SaveArgs),
    /// Create an image from a root filesystem tarball
    Import(images::cli::ImportArgs),
    /// List images
    Images(crate::listings::ImagesArgs),
    /// Remove images
    Rmi(images::cli::RmiArgs),
    /// Give an image another name
    Tag(images::cli::TagArgs),
    /// Show how an image was made, layer by layer
    History(images::cli::HistoryArgs),
    /// Build an image from a Dockerfile
    Build(images::cli::BuildArgs),
    /// Download an image from a registry
    Pull(images::cli::PullArgs),
    /// Upload an image to a registry
    Push(images::cli::PushArgs),
    /// Log in to a registry
    Login(images::cli::LoginArgs),
    /// Log out from a registry
    Logout(images::cli::LogoutArgs),
    /// Search Docker Hub, or a registry's catalog, for images
    Search(images::cli::SearchArgs),
    /// Show skiff's version
    Version(AboutArgs),
    /// Print a shell completion script (bash, zsh, fish...)
    Completion(crate::completion::CompletionArgs),
    /// Write skiff's man pages into a directory
    Man(crate::completion::ManArgs),
    /// Show what skiff manages on this host
    Info(AboutArgs),
    /// The process that holds a running container (started by `run` and `start`)
    #[command(hide = true)]
    ContainerMonitor(MonitorArgs),
}

/// `skiff container`'s commands: the container commands, and those only the group has.
#[derive(Subcommand)]
pub enum ContainerGroupCommand {
    /// The container commands.
    #[command(flatten)]
    Common(ContainerCommand),
    /// Remove every stopped container
    Prune(crate::prune::ContainerPruneArgs),
}

/// The container commands, at the top level and under `skiff container`.
#[derive(Subcommand)]
pub enum ContainerCommand {
    /// Create and start a container (in the background with -d)
    Run(Box<RunArgs>),
    /// Create a container, without starting it
    Create(Box<RunArgs>),
    /// Start created or stopped containers
    Start(StartArgs),
    /// Attach to a running container's stdin, stdout and stderr
    Attach(AttachArgs),
    /// Stop running containers: the stop signal, then SIGKILL after a timeout
    Stop(StopArgs),
    /// Stop, then start containers
    Restart(StopArgs),
    /// Send a signal to running containers (SIGKILL by default)
    Kill(KillArgs),
    /// Remove containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Block until containers stop; print their exit codes
    Wait(ContainersArgs),
    /// List containers
    #[command(visible_aliases = ["ls", "list"])]
    Ps(crate::ps::PsArgs),
    /// Show what a container wrote
    Logs(crate::logs_command::LogsArgs),
    /// Show containers', images', networks' or volumes' details as JSON
    Inspect(crate::inspect::InspectArgs),
    /// Run a command in a running container
    Exec(crate::exec::ExecArgs),
    /// Show what running containers use: CPU, memory, network, block I/O, processes
    Stats(crate::stats::StatsArgs),
    /// Change containers' limits and restart policy, live
    Update(crate::update::UpdateArgs),
    /// Show what happens to containers, as it happens
    Events(crate::events::EventsArgs),
    /// Freeze every process of running containers
    Pause(ContainersArgs),
    /// Thaw paused containers
    Unpause(ContainersArgs),
    /// Show a running container's processes
    Top(TopArgs),
    /// Show where a container's ports are published
    Port(PortArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Copy files between a container and the host
    Cp(crate::cp::CpArgs),
    /// Show what a container changed in its file system
    Diff(crate::diff::DiffArgs),
    /// Write a container's file system as a tar archive
    Export(crate::export::ExportArgs),
    /// Create a new image from a container's changes
    Commit(crate::commit::CommitArgs),
}

/// `top`'s arguments.
#[derive(Args)]
pub struct TopArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options for ps(1) (default: -ef)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PS OPTIONS"
    )]
    pub ps_args: Vec<String>,
}

/// `port`'s arguments.
#[derive(Args)]
pub struct PortArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// One port of the container: PORT[/PROTOCOL]
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub private: Option<String>,
}

/// `rename`'s arguments.
#[derive(Args)]
pub struct RenameArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Its new name
    #[arg(value_name = "NEW_NAME")]
    pub name: String,
}

/// `version`'s and `info`'s flags.
#[derive(Args)]
pub struct AboutArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Format the output with a Go template (or `json`)
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// Containers, by id, name or id prefix.
#[derive(Args)]
pub struct ContainersArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// The containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `start`'s flags.
#[derive(Args)]
pub struct StartArgs {
    /// Attach stdout and stderr, and pass signals on
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin
    #[arg(short, long)]
    pub interactive: bool,
    /// The keys that detach from the container's terminal
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// The containers.
    #[command(flatten)]
    pub containers: ContainersArgs,
}

/// `attach`'s flags.
#[derive(Args)]
pub struct AttachArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// Do not attach stdin
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Pass the signals this process gets on to the container
    #[arg(long = "sig-proxy", default_value = "true", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// The keys that detach from the container's terminal
    #[arg(long = "detach-keys", value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `stop`'s and `restart`'s flags.
#[derive(Args)]
pub struct StopArgs {
    /// The signal to send first (default: the container's stop signal, SIGTERM)
    #[arg(short, long, value_name = "SIGNAL")]
    pub signal: Option<String>,
    /// Seconds to wait before SIGKILL (default: the container's, 10)
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        value_name = "SECONDS"
    )]
    pub time: Option<u32>,
    /// The containers.
    #[command(flatten)]
    pub containers: ContainersArgs,
}

/// `kill`'s flags.
#[derive(Args)]
pub struct KillArgs {
    /// The signal to send
    #[arg(short, long, default_value = "KILL", value_name = "SIGNAL")]
    pub signal: String,
    /// The containers.
    #[command(flatten)]
    pub containers: ContainersArgs,
}

/// `rm`'s flags.
#[derive(Args)]
pub struct RmArgs {
    /// Kill a running container first
    #[arg(short, long)]
    pub force: bool,
    /// Remove its anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
    /// The containers.
    #[command(flatten)]
    pub containers: ContainersArgs,
}

/// The monitor's arguments.
#[derive(Args)]
pub struct MonitorArgs {
    /// Where skiff keeps its state.
    #[command(flatten)]
    pub root: RootArgs,
    /// The descriptor of the pipe to report on
    #[arg(long = "report-fd")]
    pub report_fd: Option<i32>,
    /// The descriptor of an attach socket already listening
    #[arg(long = "listen-fd")]
    pub listen_fd: Option<i32>,
    /// A client is connected already: accept it before starting
    #[arg(long = "expect-client")]
    pub expect_client: bool,
    /// The last part: the container exited with this status
    #[arg(long)]
    pub exited: Option<i32>,
    /// The last part: a signal killed the container
    #[arg(long = "killed-by")]
    pub killed_by: Option<i32>,
    /// An attached client to tell: FD:STREAMS
    #[arg(long = "client")]
    pub client: Vec<String>,
    /// The wait before the next restart, in milliseconds
    #[arg(long, default_value_t = 0)]
    pub backoff: u64,
    /// The container's id
    pub id: String,
}

/// How a command failed: the message is printed, then the process exits with the code.
pub struct Failure {
    /// What went wrong.
    pub error: anyhow::Error,
    /// The exit code.
    pub code: i32,
}

/// The exit code of a container command's own failure: 125 for the commands that run
/// containers, 1 for the others (Docker's codes).
pub fn failure_code(command: &Command) -> i32 {
    match command {
        Command::Container(c)
        | Command::ContainerGroup {
            command: ContainerGroupCommand::Common(c),
        } => match c {
            ContainerCommand::Run(_) | ContainerCommand::Create(_) | ContainerCommand::Start(_) => {
                chroot::cli::EXIT_ENGINE
            }
            _ => 1,
        },
        Command::ContainerMonitor(_) => 1,
        // The earlier stages' commands keep their codes.
        _ => chroot::cli::EXIT_ENGINE,
    }
}

// ANCHOR: dispatch
impl Command {
    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            Command::Container(command)
            | Command::ContainerGroup {
                command: ContainerGroupCommand::Common(command),
            } => command.execute(),
            Command::ContainerGroup {
                command: ContainerGroupCommand::Prune(args),
            } => crate::prune::container_prune(&args),
            Command::System { command } => command.execute(),
            Command::Image { command } => command.execute(),
            Command::Volume { command } => crate::listings::volume(command),
            Command::Network { command } => command.execute(),
            Command::Load(args) => ImageCommand::Load(args).execute(),
            Command::Save(args) => ImageCommand::Save(args).execute(),
            Command::Import(args) => ImageCommand::Import(args).execute(),
            Command::Images(args) => crate::listings::images(&args),
            Command::Rmi(args) => ImageCommand::Rmi(args).execute(),
            Command::Tag(args) => ImageCommand::Tag(args).execute(),
            Command::History(args) => ImageCommand::History(args).execute(),
            Command::Build(args) => ImageCommand::Build(args).execute(),
            Command::Pull(args) => ImageCommand::Pull(args).execute(),
            Command::Push(args) => ImageCommand::Push(args).execute(),
            Command::Login(args) => ImageCommand::Login(args).execute(),
            Command::Logout(args) => ImageCommand::Logout(args).execute(),
            Command::Search(args) => ImageCommand::Search(args).execute(),
            Command::Completion(args) => crate::completion::completion(&args),
            Command::Man(args) => crate::completion::man(&args),
            Command::Version(args) => about(&args, &crate::system::Version::here(), |v| v.text()),
            Command::Info(args) => {
                let info = crate::system::Info::gather(&args.root.root)?;
                about(&args, &info, crate::system::Info::text)
            }
            Command::ContainerMonitor(args) => Ok(monitor(args)),
        }
    }
}

impl ContainerCommand {
    /// Runs the command; returns the exit code.
    pub fn execute(self) -> anyhow::Result<i32> {
        match self {
            ContainerCommand::Run(args) => run(*args),
            ContainerCommand::Create(args) => {
                let record = crate::container::create(&args)?;
                println!("{}", record.id);
                Ok(0)
            }
            ContainerCommand::Start(args) => start(args),
            ContainerCommand::Attach(args) => attach_command(args),
            ContainerCommand::Stop(args) => stop(args, false),
            ContainerCommand::Restart(args) => stop(args, true),
            ContainerCommand::Kill(args) => kill(args),
            ContainerCommand::Rm(args) => rm(args),
            ContainerCommand::Wait(args) => wait(args),
            ContainerCommand::Ps(args) => crate::ps::command(args),
            ContainerCommand::Logs(args) => crate::logs_command::command(args),
            ContainerCommand::Inspect(args) => crate::inspect::command(args),
            ContainerCommand::Exec(args) => crate::exec::command(args),
            ContainerCommand::Stats(args) => crate::stats::command(args),
            ContainerCommand::Update(args) => crate::update::command(&args),
            ContainerCommand::Events(args) => crate::events::command(&args),
            ContainerCommand::Pause(args) => each(&args.containers, |key| {
                crate::pause::pause(&args.root.root, &lifecycle::find(&args.root.root, key)?)?;
                println!("{key}");
                Ok(())
            }),
            ContainerCommand::Unpause(args) => each(&args.containers, |key| {
                crate::pause::unpause(&args.root.root, &lifecycle::find(&args.root.root, key)?)?;
                println!("{key}");
                Ok(())
            }),
            ContainerCommand::Top(args) => {
                let record = lifecycle::find(&args.root.root, &args.container)?;
                print!("{}", crate::top::top(&record, &args.ps_args)?);
                Ok(0)
            }
            ContainerCommand::Port(args) => {
                let root = &args.root.root;
                let record = lifecycle::find(root, &args.container)?;
                let stores = crate::inspect::Stores::load(root, std::slice::from_ref(&record))?;
                for line in crate::port::lines(&record, &stores, args.private.as_deref())? {
                    println!("{line}");
                }
                Ok(0)
            }
            ContainerCommand::Rename(args) => {
                let record = lifecycle::find(&args.root.root, &args.container)?;
                crate::rename::rename(&args.root.root, &record, &args.name)?;
                Ok(0)
            }
            ContainerCommand::Cp(args) => crate::cp::command(&args),
            ContainerCommand::Diff(args) => crate::diff::command(&args),
            ContainerCommand::Export(args) => crate::export::command(&args),
            ContainerCommand::Commit(args) => crate::commit::command(&args),
        }
    }
}
// ANCHOR_END: dispatch

/// `version` and `info`: Docker's text, or `--format` (a Go template, or `json`).
/// `version`'s and `info`'s output: Docker's text, JSON, or a template over the facts.
pub fn about<T: serde::Serialize>(
    args: &AboutArgs,
    facts: &T,
    text: impl Fn(&T) -> String,
) -> anyhow::Result<i32> {
    match args.format.as_deref() {
        None => print!("{}", text(facts)),
        Some(format) if crate::format::is_json(format) => {
            println!("{}", serde_json::to_string(facts)?);
        }
        Some(format) => {
            let value = serde_json::to_value(facts)?;
            println!("{}", crate::format::render(format, &value)?);
        }
    }
    Ok(0)
}

/// Each of `keys` in turn: Docker's commands act on every container they can and report the
/// others, then exit 1 if any failed.
fn each(keys: &[String], mut act: impl FnMut(&str) -> anyhow::Result<()>) -> anyhow::Result<i32> {
    let mut failed = false;
    for key in keys {
        if let Err(e) = act(key) {
            eprintln!("Error: {}", chroot::cli::one_line(&e));
            failed = true;
        }
    }
    Ok(i32::from(failed))
}

// ANCHOR: run
/// `run`: create, then start: under a monitor in the background with `-d`, or attached, as
/// `docker run` is: the container's output here, signals passed on, its exit code this
/// command's.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    // Signals are caught before anything else exists, and before any thread starts.
    let forwarder = (!args.lifecycle.detach)
        .then(chroot::signals::Forwarder::install)
        .transpose()
        .context("catch signals to pass on")?;
    let (record, prepared) = crate::container::create_prepared(&args)?;
    let root = args.root();
    let Some(forwarder) = forwarder else {
        return match lifecycle::start(root, &record, Some(prepared), None, None)? {
            Report::Started(_) => {
                println!("{}", record.id);
                Ok(0)
            }
            Report::Failed(code, message) => {
                eprintln!("skiff: {message}");
                Ok(code)
            }
        };
    };
    let options = client::Options {
        streams: args.attached()?,
        tty: args.lifecycle.tty,
        sig_proxy: args.lifecycle.sig_proxy,
        detach_keys: detach_keys(args.lifecycle.detach_keys.as_deref())?,
    };
    attached_start(root, &record, Some(prepared), &options, &forwarder)
}
// ANCHOR_END: run

/// Starts `record` with a client attached from the first byte, and relays until it ends.
fn attached_start(
    root: &Path,
    record: &crate::container::Record,
    prepared: Option<images::cli::PreparedRun>,
    options: &client::Options,
    forwarder: &chroot::signals::Forwarder,
) -> anyhow::Result<i32> {
    let dir = crate::container::records(root).dir(&record.id);
    let listener = crate::attach::listen(&dir).context("make the container's attach socket")?;
    let stream = client::connect(&dir, options.streams).context("attach to the container")?;
    let own = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let report = lifecycle::start(root, record, prepared, Some(&listener), Some(own))?;
    drop(listener);
    if let Report::Failed(code, message) = report {
        eprintln!("skiff: {message}");
        return Ok(code);
    }
    Ok(match client::relay(stream, options, forwarder)? {
        Ended::Exited(code) => code,
        Ended::Detached => 0,
        // The monitor died: the record says how the container ended.
        Ended::Lost => lifecycle::find(root, &record.id).map_or(125, |r| r.state.exit_code),
    })
}

fn detach_keys(keys: Option<&str>) -> anyhow::Result<crate::attach::DetachKeys> {
    keys.map_or(
        Ok(crate::attach::DetachKeys::default()),
        crate::attach::DetachKeys::parse,
    )
}

fn start(args: StartArgs) -> anyhow::Result<i32> {
    let root = &args.containers.root.root;
    if args.attach || args.interactive {
        let [key] = args.containers.containers.as_slice() else {
            anyhow::bail!("you cannot start and attach multiple containers at once");
        };
        let record = lifecycle::find(root, key)?;
        let forwarder = chroot::signals::Forwarder::install().context("catch signals")?;
        let options = client::Options {
            streams: crate::attach::Streams {
                stdin: args.interactive && record.config.open_stdin,
                stdout: true,
                stderr: true,
            },
            tty: record.config.tty,
            sig_proxy: true,
            detach_keys: detach_keys(args.detach_keys.as_deref())?,
        };
        if record.state.is_running() {
            return attach_to(root, &record, &options, &forwarder);
        }
        return attached_start(root, &record, None, &options, &forwarder);
    }
    each(&args.containers.containers, |key| {
        let record = lifecycle::find(root, key)?;
        if !record.state.is_running()
            && let Report::Failed(_, message) = lifecycle::start(root, &record, None, None, None)?
        {
            anyhow::bail!("{message}");
        }
        println!("{key}");
        Ok(())
    })
    .map(|code| {
        if code == 0 {
            0
        } else {
            chroot::cli::EXIT_ENGINE
        }
    })
}

fn attach_command(args: AttachArgs) -> anyhow::Result<i32> {
    let root = &args.root.root;
    let record = lifecycle::find(root, &args.container)?;
    if !record.state.is_running() {
        anyhow::bail!("You cannot attach to a stopped container, start it first");
    }
    let forwarder = chroot::signals::Forwarder::install().context("catch signals")?;
    let options = client::Options {
        streams: crate::attach::Streams {
            stdin: !args.no_stdin && record.config.open_stdin,
            stdout: true,
            stderr: true,
        },
        tty: record.config.tty,
        sig_proxy: args.sig_proxy,
        detach_keys: detach_keys(args.detach_keys.as_deref())?,
    };
    attach_to(root, &record, &options, &forwarder)
}

/// Attaches to a running container.
fn attach_to(
    root: &Path,
    record: &crate::container::Record,
    options: &client::Options,
    forwarder: &chroot::signals::Forwarder,
) -> anyhow::Result<i32> {
    let dir = crate::container::records(root).dir(&record.id);
    let stream = client::connect(&dir, options.streams).context("attach to the container")?;
    Ok(match client::relay(stream, options, forwarder)? {
        Ended::Exited(code) => code,
        Ended::Detached => 0,
        Ended::Lost => lifecycle::find(root, &record.id).map_or(1, |r| r.state.exit_code),
    })
}

fn stop(args: StopArgs, then_start: bool) -> anyhow::Result<i32> {
    let root = &args.containers.root.root;
    let signal = args
        .signal
        .as_deref()
        .map(crate::signal::parse)
        .transpose()?;
    each(&args.containers.containers, |key| {
        let record = lifecycle::find(root, key)?;
        let stopped = lifecycle::stop(root, &record, signal, args.time)?;
        if then_start
            && let Report::Failed(_, message) = lifecycle::start(root, &stopped, None, None, None)?
        {
            anyhow::bail!("{message}");
        }
        if then_start {
            crate::events::emit(root, "restart", &stopped, &[]);
        }
        println!("{key}");
        Ok(())
    })
}

fn kill(args: KillArgs) -> anyhow::Result<i32> {
    let root = &args.containers.root.root;
    let signal = crate::signal::parse(&args.signal)?;
    each(&args.containers.containers, |key| {
        lifecycle::kill(root, &lifecycle::find(root, key)?, signal)?;
        println!("{key}");
        Ok(())
    })
}

fn rm(args: RmArgs) -> anyhow::Result<i32> {
    let root = &args.containers.root.root;
    each(&args.containers.containers, |key| {
        let record = lifecycle::find(root, key)?;
        lifecycle::remove(root, &record, args.force, args.volumes)?;
        println!("{key}");
        Ok(())
    })
}

fn wait(args: ContainersArgs) -> anyhow::Result<i32> {
    each(&args.containers, |key| {
        println!("{}", lifecycle::wait(&args.root.root, key)?);
        Ok(())
    })
}

/// `container-monitor`: the monitor's own process, its first part or, with `--exited` or
/// `--killed-by`, its last.
fn monitor(args: MonitorArgs) -> i32 {
    use std::os::fd::FromRawFd;
    use std::os::unix::net::{UnixListener, UnixStream};
    let owned = |fd: i32| {
        // Never passed on to the container.
        // SAFETY: fcntl on a descriptor the process before us put there for this one alone.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        fd
    };
    // SAFETY: as above: these descriptors are this process's alone.
    let report = args
        .report_fd
        .map(|fd| unsafe { std::fs::File::from_raw_fd(owned(fd)) });
    // SAFETY: as above.
    let listener = args
        .listen_fd
        .map(|fd| unsafe { UnixListener::from_raw_fd(owned(fd)) });
    let root = &args.root.root;
    let status = match (args.exited, args.killed_by) {
        (None, None) => {
            return crate::monitor::run_exec(root, &args.id, report, listener, args.expect_client);
        }
        (code, signal) => crate::pump::Status { code, signal },
    };
    let clients = args
        .client
        .iter()
        .filter_map(|client| {
            let (fd, bits) = client.split_once(':')?;
            let fd: i32 = fd.parse().ok()?;
            // SAFETY: as above.
            let stream = unsafe { UnixStream::from_raw_fd(owned(fd)) };
            let wants = crate::attach::Streams::from_bits(bits.parse().ok()?);
            Some(crate::pump::Client::new(stream, wants))
        })
        .collect();
    let Some(listener) = listener else {
        return 2;
    };
    crate::monitor::finish(
        root,
        &args.id,
        listener,
        clients,
        status,
        args.backoff,
        crate::monitor::Held::nothing(),
    )
}

// ANCHOR: fast_run
/// `skiff run ...`, the command whose start time counts, parsed by its own subcommand alone:
/// building clap's tree of every command and flag costs about 2 ms, more than the clone of a
/// container. Whatever the fast path does not take (`--help`, a mistake, `-H` before the
/// command) goes through the whole tree, which says it as it always did.
fn parse_run_fast() -> Option<Cli> {
    use clap::{Args, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).and_then(|a| a.to_str()) != Some("run") {
        return None;
    }
    let command = hostname_short(RunArgs::augment_args(clap::Command::new("run")));
    let matches = command.try_get_matches_from(&args[1..]).ok()?;
    let run = RunArgs::from_arg_matches(&matches).ok()?;
    Some(Cli {
        host: None,
        command: Command::Container(ContainerCommand::Run(Box::new(run))),
    })
}
// ANCHOR_END: fast_run

/// What the earlier stages' help says of their own stage is said of skiff here.
fn hostname_short(command: clap::Command) -> clap::Command {
    command
        .disable_help_flag(true)
        .arg(
            clap::Arg::new("help")
                .long("help")
                .action(clap::ArgAction::Help)
                .help("Print help"),
        )
        .mut_arg("hostname", |arg| arg.short('h'))
        .mut_arg("rm", |arg| arg.help("Remove the container when it ends"))
        .mut_arg("network", |arg| {
            arg.help(
                "Connect to a network: bridge (the default), a network's name, host, none, or container:NAME (another container's)",
            )
        })
}

// ANCHOR: parse
/// Parses the command line. `run` and `create` take `-h` for `--hostname`, as Docker's do, so
/// their help is `--help` only. A usage error exits 125, as `docker run --bogus` does. Returns
/// the command and the code its own failure exits with.
pub fn parse() -> (Cli, i32) {
    use clap::{CommandFactory, FromArgMatches};
    if let Some(cli) = parse_run_fast() {
        let code = failure_code(&cli.command);
        return (cli, code);
    }
    let command = Cli::command()
        .mut_subcommand("run", hostname_short)
        .mut_subcommand("create", hostname_short)
        .mut_subcommand("container", |group| {
            group
                .mut_subcommand("run", hostname_short)
                .mut_subcommand("create", hostname_short)
        });
    let parsed = command
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    match parsed {
        Ok(cli) => {
            let code = failure_code(&cli.command);
            (cli, code)
        }
        Err(err) => {
            let code = if err.use_stderr() {
                chroot::cli::EXIT_ENGINE
            } else {
                0
            };
            let _ = err.print();
            std::process::exit(code);
        }
    }
}
// ANCHOR_END: parse
