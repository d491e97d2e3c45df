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
//! `createContainer` and `startContainer` run *inside* the container's namespaces; they are not
//! supported yet (refused by [`crate::config`]). Like runc, skiff-runtime runs `prestart` and
//! `createRuntime` in the runtime's own namespaces; unlike runc, after the container's root was
//! entered rather than just before (the hooks that exist, network setup, do not mind).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Spec};

/// The points of the lifecycle where hooks run.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// `prestart` then `createRuntime`.
    Create,
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
