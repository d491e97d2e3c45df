//! RUN: a container of this engine, whose changes become the step's layer.
//!
//! A RUN step is `images run --commit` with fixed flags: a container of the image so far
//! ([`ContainerRequest`]), the step's command as the whole argument vector (`--entrypoint ""`),
//! the step's environment (the image's `Env` and the build arguments in scope), the image's
//! user and working directory, a network namespace with loopback only, and a commit of the
//! overlay's upper directory when the command succeeds. The launch sequence removes the
//! container, its mounts and its state directory, whatever happens.
//!
//! As in `docker build`, the command reads nothing (its stdin is `/dev/null`) and its output
//! goes to the terminal; with `-q` it goes to a log that is shown only if the step fails.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use chroot::signals::{FORWARDED, Forwarder};
use chroot::{Exit, LaunchError, launch};
use namespaces::{ContainerId, NetworkMode};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};

use super::{BuildError, Progress};
use crate::container::{CommitOutcome, ContainerRequest};
use crate::digest::Digest;
use crate::dockerfile::Step;
use crate::reference::ImageRef;
use crate::store::{Store, TempPath};

// ANCHOR: run_step
/// Runs the RUN `step` in a container of `image` and returns the image of its changes.
pub(super) fn run_step(
    store: &Store,
    image: &Digest,
    step: &Step,
    quiet: bool,
    forward_signals: bool,
    progress: &mut Progress<'_>,
) -> Result<Digest, BuildError> {
    let argv = step.run_argv().unwrap_or_default();
    let command = argv.join(" ");
    let failed = |message: String| BuildError::Container {
        at: step.at.clone(),
        message,
    };
    let id = ContainerId::random().map_err(|e| failed(format!("make a container id: {e}")))?;
    let short = id.short().to_string();

    let outcome: CommitOutcome = Arc::new(Mutex::new(None));
    let image = store
        .image(image)
        .map_err(|e| failed(format!("{:#}", anyhow::Error::from(e))))?;
    let mut request = ContainerRequest::new(store, image, argv);
    request.entrypoint = Some(String::new());
    request.process.env = step.env.clone();
    // The tag is never applied (`untagged_commit`): build steps make `<none>` images.
    let unused_tag = ImageRef::parse("skiff-build-step")?;
    request.commit = Some((unused_tag, outcome.clone()));
    request.untagged_commit = true;
    request.commit_on_failure = false;
    request.created_by = Some(step.created_by(None));
    let mut container = request
        .build(id, &NetworkMode::None)
        .map_err(|e| failed(format!("{e:#}")))?;

    progress.line(format_args!(" ---> Running in {short}"));
    let log = TempPath(store.temp_path("build-run-log"));
    let exit = launch_quietly(&mut container.prepared, quiet, log.path(), forward_signals);
    progress.line(format_args!("Removing intermediate container {short}"));
    let exit = match exit {
        Ok((_, true)) => {
            return Err(BuildError::Interrupted {
                at: step.at.clone(),
            });
        }
        Ok((exit, false)) => exit,
        // The command itself could not run: Docker reports 126 or 127 as the RUN's exit code.
        Err(e @ (LaunchError::NotFound { .. } | LaunchError::CannotExecute { .. })) => {
            show_log(quiet, log.path());
            return Err(BuildError::RunFailed {
                at: step.at.clone(),
                command,
                code: e.exit_code(),
                reason: Some(e.to_string()),
            });
        }
        Err(e) => return Err(failed(e.to_string())),
    };
    for warning in &exit.warnings {
        progress.warn(format_args!("{warning}"));
    }
    if exit.code() != 0 {
        show_log(quiet, log.path());
        return Err(BuildError::RunFailed {
            at: step.at.clone(),
            command,
            code: exit.code(),
            reason: None,
        });
    }
    let committed = outcome.lock().ok().and_then(|mut slot| slot.take());
    match committed {
        Some(Ok(id)) => Ok(id),
        Some(Err(e)) => Err(failed(format!("commit the container's changes: {e}"))),
        None => Err(failed("the container's changes were not committed".into())),
    }
}
// ANCHOR_END: run_step

/// Launches the container with stdin from `/dev/null` (and, when `quiet`, stdout and stderr
/// into `log`) and waits for it; with `forward_signals`, signals reach it while it runs, and an
/// interrupt stops it. Returns how it ended, and whether it was interrupted.
fn launch_quietly(
    prepared: &mut chroot::Prepared,
    quiet: bool,
    log: &std::path::Path,
    forward_signals: bool,
) -> Result<(Exit, bool), LaunchError> {
    let io_failed = |call: &'static str| {
        move |e: io::Error| LaunchError::Sys {
            call,
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    };
    let null = File::open("/dev/null").map_err(io_failed("open /dev/null"))?;
    let log = match quiet {
        true => Some(File::create(log).map_err(io_failed("create the RUN log"))?),
        false => None,
    };
    // Signals are caught from before the clone, so none is lost while the child starts.
    let forwarder = match forward_signals {
        true => Some(Forwarder::install().map_err(|errno| LaunchError::Sys {
            call: "catch signals to forward",
            errno,
        })?),
        false => None,
    };
    let running = {
        // The child inherits the engine's descriptors 0, 1 and 2 at the clone; the engine gets
        // its own back as soon as the child exists.
        let _redirected = Redirected::new(&null, log.as_ref()).map_err(io_failed("dup2"))?;
        prepared.spawn()
    };
    let ended = match (running, &forwarder) {
        (Ok(running), Some(forwarder)) => wait_interruptible(running, forwarder),
        (Ok(running), None) => running.wait().map(|exit| (exit, false)),
        (Err(e), _) => Err(e),
    };
    if forwarder.is_some() {
        drop(forwarder);
        let mut set = SigSet::empty();
        FORWARDED.iter().for_each(|s| set.add(*s));
        set.add(Signal::SIGCHLD);
        let _ = set.thread_unblock();
    }
    ended
}

/// Waits for the command, passing signals on. An interrupt (Ctrl-C, `kill`) ends it with
/// SIGKILL, as `docker build` cancels a step: a RUN's command runs as PID 1 of its namespace,
/// which ignores SIGINT and SIGTERM unless it handles them.
fn wait_interruptible(
    running: launch::Running<'_>,
    forwarder: &Forwarder,
) -> Result<(Exit, bool), LaunchError> {
    let pid = running.pid();
    let mut interrupted = false;
    loop {
        // WNOWAIT looks without reaping: `wait` below reaps it and runs the features' hooks.
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            _ => break,
        }
        match forwarder.next() {
            Some(Signal::SIGINT | Signal::SIGTERM | Signal::SIGHUP | Signal::SIGQUIT) => {
                interrupted = true;
                let _ = kill(pid, Signal::SIGKILL);
            }
            // The command may already be gone; the next waitid tells.
            Some(signal) => {
                let _ = kill(pid, signal);
            }
            None => {}
        }
    }
    running.wait().map(|exit| (exit, interrupted))
}

/// With `-q`, a failed step's output is shown after all, as `docker build -q` does.
fn show_log(quiet: bool, log: &std::path::Path) {
    if quiet && let Ok(bytes) = std::fs::read(log) {
        let _ = io::stderr().write_all(&bytes);
    }
}

/// The engine's stdin (and stdout and stderr) pointed elsewhere; put back when dropped.
struct Redirected {
    saved: Vec<(i32, OwnedFd)>,
}

impl Redirected {
    fn new(stdin: &File, output: Option<&File>) -> io::Result<Self> {
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        let mut redirected = Redirected { saved: Vec::new() };
        // try_clone_to_owned duplicates with F_DUPFD_CLOEXEC: the copies never reach the child.
        if let Ok(saved) = io::stdin().as_fd().try_clone_to_owned() {
            redirected.saved.push((0, saved));
        }
        nix::unistd::dup2_stdin(stdin)?;
        if let Some(output) = output {
            redirected
                .saved
                .push((1, io::stdout().as_fd().try_clone_to_owned()?));
            redirected
                .saved
                .push((2, io::stderr().as_fd().try_clone_to_owned()?));
            nix::unistd::dup2_stdout(output)?;
            nix::unistd::dup2_stderr(output)?;
        }
        Ok(redirected)
    }
}

impl Drop for Redirected {
    fn drop(&mut self) {
        for (fd, saved) in self.saved.drain(..) {
            let _ = match fd {
                0 => nix::unistd::dup2_stdin(&saved),
                1 => nix::unistd::dup2_stdout(&saved),
                _ => nix::unistd::dup2_stderr(&saved),
            };
        }
    }
}
