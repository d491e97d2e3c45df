//! Hooks: programs of the caller's that the runtime runs at fixed points of the lifecycle
//! (runtime-spec config.md, "POSIX-platform Hooks"; runtime.md, "Lifecycle"). Each gets the
//! container's state JSON on its stdin. Docker's networking uses one (`libnetwork-setkey`, a
//! `prestart` hook) to configure the container's network namespace once it exists.
//!
//! | hook            | when, here                                             | if it fails          |
//! |-----------------|--------------------------------------------------------|----------------------|
//! | `prestart`      | `create`, once the process waits on the exec fifo       | `create` fails       |
//! | `createRuntime` | right after `prestart`                                 | `create` fails       |
//! | `poststart`     | `start`, after the program was released                | a warning            |
//! | `poststop`      | `delete`, after the container is gone                  | a warning            |
//!
//! | `createContainer` | `create`, after `createRuntime`, inside the container | `create` fails     |
//! | `startContainer`  | `start`, before the program is released, inside it   | `start` fails, the container is killed |
//!
//! Like runc, skiff-runtime runs `prestart` and `createRuntime` in the runtime's own namespaces;
//! unlike runc, after the container's root was entered rather than just before (the hooks that
//! exist, network setup, do not mind). `createContainer` and `startContainer` run *inside* the
//! container: the runtime launches each as it launches an `exec`, into every namespace of the
//! container's first process (so the hook's path is found at the container's root) and into
//! its cgroup, as root with the runtime's capabilities. runc runs `createContainer` just before
//! the root changes, from its init process; here the root has changed already, so the hook sees
//! the container's filesystem as the program will.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chroot::{ChildStep, Feature, FeatureError, Plan, Slot, Step};
use namespaces::record::ProcessRef;
use oci_spec::runtime::{Hook, Spec};

/// The points of the lifecycle where hooks run.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// `prestart` then `createRuntime`.
    Create,
    /// `createContainer`, inside the container.
    CreateContainer,
    /// `startContainer`, inside the container.
    StartContainer,
    /// `poststart`.
    Start,
    /// `poststop`.
    Stop,
}

/// A hook that failed.
#[derive(Debug, thiserror::Error)]
#[error("{which} hook {path}: {reason}")]
pub struct HookError {
    /// Which list it is in.
    pub which: &'static str,
    /// Its program.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// The hooks of `spec` for `when`, with the names of their lists.
fn hooks(spec: &Spec, when: When) -> Vec<(&'static str, Hook)> {
    let Some(hooks) = spec.hooks() else {
        return Vec::new();
    };
    // `prestart` is deprecated by the spec in favour of the three that replaced it, and still
    // what Docker uses.
    #[allow(deprecated)]
    let lists: Vec<(&'static str, &Option<Vec<Hook>>)> = match when {
        When::Create => vec![
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
        ],
        When::CreateContainer => vec![("createContainer", hooks.create_container())],
        When::StartContainer => vec![("startContainer", hooks.start_container())],
        When::Start => vec![("poststart", hooks.poststart())],
        When::Stop => vec![("poststop", hooks.poststop())],
    };
    lists
        .into_iter()
        .flat_map(|(which, list)| list.iter().flatten().map(move |h| (which, h.clone())))
        .collect()
}

// ANCHOR: run
/// Runs the hooks of `spec` for `when`, in order, each with `state` (the state JSON) on stdin.
/// Stops at the first that fails.
pub fn run(spec: &Spec, when: When, state: &[u8]) -> Result<(), HookError> {
    for (which, hook) in hooks(spec, when) {
        let fail = |reason: String| HookError {
            which,
            path: hook.path().display().to_string(),
            reason,
        };
        let mut command = Command::new(hook.path());
        if let Some(args) = hook.args() {
            if let Some(arg0) = args.first() {
                std::os::unix::process::CommandExt::arg0(&mut command, arg0);
            }
            command.args(args.iter().skip(1));
        }
        command.env_clear();
        for entry in hook.env().iter().flatten() {
            if let Some((key, value)) = entry.split_once('=') {
                command.env(key, value);
            }
        }
        let mut child = command
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot run it: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that does not read its state is fine.
            let _ = stdin.write_all(state);
        }
        let timeout = hook
            .timeout()
            .and_then(|t| u64::try_from(t).ok())
            .map(Duration::from_secs);
        let began = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => return Err(fail(format!("wait: {e}"))),
            }
            if timeout.is_some_and(|t| began.elapsed() > t) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail("timed out".to_string()));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if !status.success() {
            return Err(fail(format!("failed: {status}")));
        }
    }
    Ok(())
}
// ANCHOR_END: run

// ANCHOR: run_inside
/// Runs the hooks of `spec` for `when` (`createContainer` or `startContainer`) inside the
/// container whose first process is `first` and whose cgroup is `cgroup_path`, in order, each
/// with `state` on stdin. Stops at the first that fails.
pub fn run_inside(
    spec: &Spec,
    when: When,
    state: &[u8],
    first: ProcessRef,
    cgroup_path: &str,
) -> Result<(), HookError> {
    for (which, hook) in hooks(spec, when) {
        let fail = |reason: String| HookError {
            which,
            path: hook.path().display().to_string(),
            reason,
        };
        let mut prepared =
            crate::config::map_hook(&hook, first, cgroup_path).map_err(|e| fail(e.to_string()))?;
        // The state, whole, in a pipe the hook reads as stdin: a state is far smaller than a
        // pipe's buffer, so the write never waits for the reader.
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| fail(format!("pipe: {e}")))?;
        std::fs::File::from(write)
            .write_all(state)
            .map_err(|e| fail(format!("write its state: {e}")))?;
        prepared.add(StdinFrom(read));
        let running = prepared
            .spawn()
            .map_err(|e| fail(format!("cannot run it: {e}")))?;
        let timeout = hook
            .timeout()
            .and_then(|t| u64::try_from(t).ok())
            .map(Duration::from_secs);
        let watchdog = timeout.and_then(|t| Watchdog::arm(running.pid().as_raw(), t));
        let exit = running.wait().map_err(|e| fail(format!("wait: {e}")))?;
        if watchdog.is_some_and(|w| w.fired()) {
            return Err(fail("timed out".to_string()));
        }
        if exit.code() != 0 {
            return Err(fail(format!("failed: exit code {}", exit.code())));
        }
    }
    Ok(())
}
// ANCHOR_END: run_inside

/// The hook's stdin: the read end of the pipe that holds the state.
struct StdinFrom(OwnedFd);

/// The child's dup2(2) of that pipe onto descriptor 0.
#[derive(Debug)]
struct Dup2Stdin(libc::c_int);

impl ChildStep for Dup2Stdin {
    fn run(&self) -> Result<(), nix::errno::Errno> {
        // SAFETY: dup2(2) on two descriptors; no memory.
        nix::errno::Errno::result(unsafe { libc::dup2(self.0, 0) }).map(drop)
    }
}

impl std::fmt::Display for Dup2Stdin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("give the hook its state as stdin")
    }
}

impl Feature for StdinFrom {
    fn name(&self) -> &'static str {
        "hook state on stdin"
    }

    fn slot(&self) -> Slot {
        Slot::Stdio
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        plan.after_root
            .push(Step::Custom(Arc::new(Dup2Stdin(self.0.as_raw_fd()))));
        Ok(())
    }
}

/// Kills a hook that outlives its `timeout`, through a pidfd (which cannot name a recycled
/// pid), from a thread that the end of the hook disarms.
struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn arm(pid: i32, timeout: Duration) -> Option<Watchdog> {
        let pidfd = ProcessRef::of(pid)?.pidfd()?;
        let (done, ended) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if ended.recv_timeout(timeout).is_ok() {
                return false;
            }
            // SAFETY: pidfd_send_signal(2) takes a descriptor we own, a signal, no siginfo.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            true
        });
        Some(Watchdog { done, thread })
    }

    /// Whether it killed the hook; disarms it first.
    fn fired(self) -> bool {
        let _ = self.done.send(());
        self.thread.join().unwrap_or(false)
    }
}
