//! The lifecycle of runtime.md: `create` (and `run`), `start`, `kill`, `delete`. Each is a
//! short process; the container outlives them all, and what they know of it is its record in
//! `--root/ID` (see [`crate::state`]). runc(8) for the flags.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::cli::{CreateArgs, KillArgs};
use crate::config;
use crate::fifo::{self, ExecFifo, FIFO_NAME};
use crate::hooks::{self, When};
use crate::state::{Record, Status, Store};

// ANCHOR: create
/// What `create` goes on to do: nothing more (`create`), start the container (`run -d`), or
/// start it, wait for it and clean up (`run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// `create`: the process waits on the fifo.
    Return,
    /// `run --detach`: started, not waited for.
    Start,
    /// `run`: started, waited for, cleaned up.
    StartAndWait,
}

/// `create` (and `run`): maps the bundle, claims the id, launches the process, which waits on
/// the exec fifo, records it, and returns; the process outlives this command (its parent is
/// then the caller's subreaper, containerd's shim, or init). `run` starts it too and, unless
/// detached, waits for it and cleans up, returning its exit code.
pub fn create(store: &Store, args: &CreateArgs, then: Then) -> anyhow::Result<i32> {
    chroot::launch::require_root()?;
    let bundle = args.bundle.clone().unwrap_or_else(|| PathBuf::from("."));
    let bundle = std::fs::canonicalize(&bundle)
        .with_context(|| format!("open bundle {}", bundle.display()))?;
    let spec = config::load(&bundle)?;
    // Everything is checked before anything exists.
    let mut mapped = config::map(&spec, &bundle, &args.id, args.console_socket.as_deref())?;
    if args.preserve_fds > 0 {
        mapped
            .prepared
            .add(crate::features::PassFds::check(args.preserve_fds).map_err(anyhow::Error::msg)?);
    }
    let dir = store.claim(&args.id)?;
    let fifo = ExecFifo::new(&dir.join(FIFO_NAME), &mapped.prepared.process);
    mapped.prepared.add(fifo);
    let forwarder = if then == Then::StartAndWait {
        Some(chroot::signals::Forwarder::install().context("catch signals to forward")?)
    } else {
        None
    };
    let running = match mapped.prepared.spawn() {
        Ok(running) => running,
        Err(err) => {
            let _ = store.remove(&args.id);
            return Err(err).context(format!("create container {}", args.id));
        }
    };
    let pid = running.pid().as_raw();
    let record = Record {
        id: args.id.clone(),
        process: namespaces::record::ProcessRef::of(pid)
            .unwrap_or(namespaces::record::ProcessRef { pid, start: 0 }),
        bundle: bundle.clone(),
        rootfs: mapped.rootfs.clone(),
        created: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        cgroup_path: mapped.cgroup_path.clone(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    };
    let recorded = store
        .save(&record)
        .map_err(anyhow::Error::from)
        .and_then(|()| match &args.pid_file {
            Some(path) => write_pid_file(path, pid)
                .with_context(|| format!("write the pid file {}", path.display())),
            None => Ok(()),
        })
        // The process waits on the fifo: prestart and createRuntime hooks now, then
        // createContainer inside the container.
        .and_then(|()| {
            let state = state_json(&record, Status::Created);
            hooks::run(&spec, When::Create, &state)?;
            Ok(inside(
                &spec,
                When::CreateContainer,
                &record,
                Status::Created,
            )?)
        });
    // `run` starts it here.
    let started = recorded.and_then(|()| match then {
        Then::Return => Ok(()),
        Then::Start | Then::StartAndWait => {
            inside(&spec, When::StartContainer, &record, Status::Created)?;
            Ok(fifo::release(&dir.join(FIFO_NAME), pid, || record.alive())?)
        }
    });
    if let Err(err) = started {
        // Undo: the process dies, the features clean up, the state goes.
        let _ = nix::sys::signal::kill(running.pid(), Signal::SIGKILL);
        let _ = running.wait();
        let _ = store.remove(&args.id);
        return Err(err);
    }
    if then != Then::Return {
        hook_warning(hooks::run(
            &spec,
            When::Start,
            &state_json(&record, Status::Running),
        ));
    }
    let Some(forwarder) = forwarder else {
        // The container's process goes on: waiting on the fifo (`create`) or running (`run -d`).
        return Ok(0);
    };
    // `run` in the foreground: wait, clean up, pass the exit code back.
    let exit = running.wait_forwarding(&forwarder);
    let stopped = state_json(&record, Status::Stopped);
    store.remove(&args.id)?;
    hook_warning(hooks::run(&spec, When::Stop, &stopped));
    let exit = exit?;
    for warning in &exit.warnings {
        eprintln!("skiff-runtime: warning: {warning}");
    }
    Ok(exit.code())
}
// ANCHOR_END: create

/// Writes the pid the way runc does: a temporary file renamed into place, so a reader (the
/// shim) never sees an empty file.
pub fn write_pid_file(path: &Path, pid: i32) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, pid.to_string())?;
    std::fs::rename(&tmp, path)
}

// ANCHOR: start
/// `start`: releases the created container's process, then the poststart hooks.
pub fn start(store: &Store, id: &str) -> anyhow::Result<()> {
    let (record, dir) = store.load(id)?;
    match record.status(&dir) {
        Status::Created => {}
        status => bail!("cannot start container {id}: it is {status}, not created"),
    }
    let spec = config::load(&record.bundle)?;
    // startContainer inside the container, before its program; if one fails, the container
    // is stopped (runtime.md, "Lifecycle").
    if let Err(err) = inside(&spec, When::StartContainer, &record, Status::Created) {
        let _ = nix::sys::signal::kill(Pid::from_raw(record.process.pid), Signal::SIGKILL);
        return Err(err.into());
    }
    fifo::release(&dir.join(FIFO_NAME), record.process.pid, || record.alive())?;
    hook_warning(hooks::run(
        &spec,
        When::Start,
        &state_json(&record, Status::Running),
    ));
    Ok(())
}
// ANCHOR_END: start

/// Runs the `createContainer` or `startContainer` hooks inside the container of `record`.
fn inside(
    spec: &oci_spec::runtime::Spec,
    when: When,
    record: &Record,
    status: Status,
) -> Result<(), hooks::HookError> {
    let state = state_json(record, status);
    hooks::run_inside(spec, when, &state, record.process, &record.cgroup_path)
}

/// The state JSON a hook reads on stdin, at the point of the lifecycle `status` names.
fn state_json(record: &Record, status: Status) -> Vec<u8> {
    serde_json::to_vec(&record.hook_state(status)).unwrap_or_default()
}

/// A failed poststart or poststop hook is reported, and the command goes on (runtime.md).
fn hook_warning(result: Result<(), hooks::HookError>) {
    if let Err(err) = result {
        eprintln!("skiff-runtime: warning: {err}");
    }
}

/// A signal by name (`KILL`, `SIGKILL`) or number.
pub fn parse_signal(text: &str) -> anyhow::Result<Signal> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).with_context(|| format!("invalid signal {text}"));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| {
        anyhow::anyhow!("invalid signal {text:?}: give a name such as TERM or a number such as 15")
    })
}

// ANCHOR: kill
/// `kill`: a signal to the first process, or with `--all` to every process of the cgroup.
pub fn kill(store: &Store, args: &KillArgs) -> anyhow::Result<()> {
    let signal = parse_signal(args.signal.as_deref().unwrap_or("SIGTERM"))?;
    let (record, dir) = store.load(&args.id)?;
    if record.status(&dir) == Status::Stopped {
        bail!("container {} is not running", args.id);
    }
    if args.all {
        for pid in cgroups::processes_at(&record.cgroup_path)
            .with_context(|| format!("list the processes of cgroup {}", record.cgroup_path))?
        {
            // One may have exited meanwhile.
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
        }
        return Ok(());
    }
    nix::sys::signal::kill(Pid::from_raw(record.process.pid), signal).with_context(|| {
        format!(
            "send {signal} to process {} of container {}",
            record.process.pid, args.id
        )
    })
}
// ANCHOR_END: kill

// ANCHOR: delete
/// `delete`: a stopped container's cgroup and state go; a created one is killed first (it never
/// ran), a running one only with `--force`.
pub fn delete(store: &Store, id: &str, force: bool) -> anyhow::Result<()> {
    let (record, dir) = match store.load(id) {
        Ok(found) => found,
        Err(crate::state::StateError::NotFound(_)) if force => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    match record.status(&dir) {
        Status::Stopped => {}
        status @ (Status::Running | Status::Paused) if !force => {
            bail!("cannot delete container {id}: it is {status}; stop it first or use --force")
        }
        status @ (Status::Created | Status::Running | Status::Paused) => {
            if status == Status::Paused {
                // A frozen process does not even die: thaw it first.
                cgroups::freeze::thaw(&record.cgroup_path)
                    .with_context(|| format!("thaw container {id}"))?;
            }
            let _ = nix::sys::signal::kill(Pid::from_raw(record.process.pid), Signal::SIGKILL);
            let began = Instant::now();
            while record.alive() {
                if began.elapsed() > Duration::from_secs(10) {
                    bail!(
                        "container {id}: process {} did not die after SIGKILL",
                        record.process.pid
                    );
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    // Stage 03's sweep: kills whatever is left in the cgroup, removes it.
    cgroups::remove_cgroup(&record.cgroup_path)
        .with_context(|| format!("remove cgroup {} of container {id}", record.cgroup_path))?;
    let stopped = state_json(&record, Status::Stopped);
    store.remove(id)?;
    // The bundle may be gone by now (the caller removed it first): no poststop hooks then.
    if let Ok(spec) = config::load(&record.bundle) {
        hook_warning(hooks::run(&spec, When::Stop, &stopped));
    }
    Ok(())
}
// ANCHOR_END: delete

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
    }
}
