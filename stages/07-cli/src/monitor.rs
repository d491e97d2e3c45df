//! The monitor: one small process per running container, which starts it, stays its parent,
//! owns its streams and its log, records how it ended, and starts it again when its restart
//! policy says so.
//!
//! A container's first process must have a parent that waits for it, or nobody learns its exit
//! code, nobody keeps its output, and nobody removes its cgroup, overlay mount and veth when it
//! ends. Docker's daemon hands that job to `containerd-shim`; Podman, which has no daemon, to
//! `conmon`. skiff has no daemon either, and does what Podman does: `skiff run` and `start`
//! start a monitor (skiff's own binary again, `skiff container-monitor ID`), away from the
//! terminal and the command that typed it (a new session, after a double fork), and the monitor
//! starts the container. Its life has three parts, each a program of its own over one process:
//!
//! ```text
//!  skiff run/start     spawns the monitor ─────────► reads one line: started, or the error
//!  1. monitor          prepares the container from its record (stages 01-06), launches it:
//!                      stdout/stderr into pipes, or a terminal (-t); record: running, pid
//!                      and start time ──► "started"; exec ──┐
//!  2. pump (pump.rs)   output ──► json-file log, clients;   │ while it runs: a small loop
//!                      clients' input ──► the container     │
//!                      it ended: reap it; exec ──┐          │
//!  3. monitor --finish the OOM counter; sweep what the run held (mounts, cgroup, network; the
//!                      writable layer stays; --rm: all of it); record: exited, exit code;
//!                      tell the clients; restart policy? wait, back to 1 : leave
//! ```
//!
//! The container's first process dies with its monitor (`PR_SET_PDEATHSIG`), so a killed
//! monitor cannot leave a container that nobody watches: the next command that looks at the
//! record finds the monitor gone (its pid and start time no longer match) and sweeps the
//! container's host state away from the record alone — the same sweep as part 3.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use chroot::LaunchError;
use namespaces::ContainerId;
use namespaces::record::{ProcessRef, Status};
use namespaces::records::Records;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::attach::{self, kind};
use crate::container::Record;
use crate::logs::LogOptions;
use crate::pump::{self, Client, Ends, Handover};
use crate::restart::{Backoff, RestartPolicy};
use crate::stdio::Stdio;

/// What the monitor tells the command that started it, in one line of JSON on the report pipe.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum Report {
    /// The container runs: its first process.
    Started(i32),
    /// The start failed: Docker's exit code for it, and why.
    Failed(i32, String),
}

/// A start that failed before the command ran.
struct Failed {
    code: i32,
    message: String,
}

fn failed(error: anyhow::Error) -> Failed {
    let code = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<LaunchError>())
        .map_or(chroot::cli::EXIT_ENGINE, LaunchError::exit_code);
    Failed {
        code,
        message: chroot::cli::one_line(&error),
    }
}

// ANCHOR: monitor
/// Part 1: starts container `record` of the store at `root`, from `prepared` when the command
/// that forked this monitor prepared it already, else from the record. `report` is the pipe to
/// that command; `listener` the attach socket it made, where `expect_client` says one client
/// is waiting.
pub fn run(
    root: &Path,
    record: &Record,
    prepared: Option<images::cli::PreparedRun>,
    mut report: Option<File>,
    listener: Option<UnixListener>,
    expect_client: bool,
) -> i32 {
    let dir = Records::new(root).dir(&record.id);
    // What `exec` starts, through this monitor, stays this monitor's when its helper ends.
    pump::adopt_orphans();
    let listener = match listener.map_or_else(|| attach::listen(&dir), Ok) {
        Ok(listener) => listener,
        Err(e) => {
            let path = dir.join(attach::socket_name());
            let message = format!("listen on {}: {e}", path.display());
            return send_report(&mut report, &Report::Failed(125, message));
        }
    };
    let mut clients = Vec::new();
    if expect_client && let Some(client) = accept_waiting(&listener) {
        clients.push(client);
    }
    start(root, record, prepared, listener, clients, report, 0)
}

/// Part 1 as its own program (`skiff container-monitor ID`), for a caller that cannot fork
/// (a multi-threaded one): the container is prepared from its record.
pub fn run_exec(
    root: &Path,
    id: &str,
    mut report: Option<File>,
    listener: Option<UnixListener>,
    expect_client: bool,
) -> i32 {
    match Records::new(root).load::<crate::spec::RunArgs>(id) {
        Ok(Some(record)) => run(root, &record, None, report, listener, expect_client),
        Ok(None) => {
            let message = format!("No such container: {id}");
            send_report(&mut report, &Report::Failed(1, message))
        }
        Err(e) => send_report(&mut report, &Report::Failed(1, e.to_string())),
    }
}
// ANCHOR_END: monitor

/// Waits up to two seconds for the client that the starting command connected already.
fn accept_waiting(listener: &UnixListener) -> Option<Client> {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(2000u16)).ok()?;
    pump::accept(listener)
}

/// Changes the record under the store's lock; `None` when the container is gone.
fn update(records: &Records, id: &str, change: impl FnOnce(&mut Record)) -> Option<Record> {
    let locked = records.lock().ok()?;
    locked.update(id, change).ok().flatten()
}

/// Sends the report once; returns the code the monitor exits with.
fn send_report(report: &mut Option<File>, message: &Report) -> i32 {
    if let Some(mut pipe) = report.take() {
        let line = serde_json::to_string(message).unwrap_or_default();
        let _ = writeln!(pipe, "{line}");
    }
    match message {
        Report::Started(_) => 0,
        Report::Failed(..) => 1,
    }
}

/// Sends every client a frame, and lets them go.
fn tell(clients: Vec<Client>, notes: &[String], code: i32) {
    for mut client in clients {
        for note in notes {
            let _ = attach::write_frame(&mut client.stream, kind::NOTE, note.as_bytes());
        }
        let _ = attach::write_frame(&mut client.stream, kind::EXIT, &code.to_be_bytes());
    }
}

// ANCHOR: start
/// How long the monitor pumps a new container's streams itself before it hands them to the
/// small pump program: a container that ends sooner never pays for the two execs.
const PUMP_AFTER: Duration = Duration::from_secs(1);

/// Launches the container and pumps its streams: here for its first second, then in the pump
/// program. Returns the code the monitor exits with.
fn start(
    root: &Path,
    record: &Record,
    prepared: Option<images::cli::PreparedRun>,
    listener: UnixListener,
    mut clients: Vec<Client>,
    mut report: Option<File>,
    backoff_ms: u64,
) -> i32 {
    let records = Records::new(root);
    let (pid, ends, held) = match launch(record, prepared) {
        Ok(launched) => launched,
        Err(failure) => {
            // What the launch's features did not get to undo, or another process made for
            // them ahead (`chroot::Feature::ahead`; the launch waited for it to end), goes
            // before the client hears of the failure.
            if !record.spec.auto_remove() {
                crate::lifecycle::sweep_runtime(root, record);
            }
            let never_ran = record.state.started_at.is_none();
            update(&records, &record.id, |r| {
                r.state.status = if never_ran {
                    Status::Created
                } else {
                    Status::Exited
                };
                r.state.exit_code = failure.code;
                r.state.error = failure.message.clone();
                r.state.pid = None;
                r.state.monitor = None;
            });
            send_report(&mut report, &Report::Failed(failure.code, failure.message));
            tell(clients, &[], failure.code);
            if record.spec.auto_remove() {
                crate::lifecycle::sweep_removed(root, record, true);
            }
            return 1;
        }
    };
    let now = images::human::now_rfc3339();
    let me = ProcessRef::of(std::process::id().cast_signed());
    let child = ProcessRef::of(pid);
    update(&records, &record.id, |r| {
        r.state.status = Status::Running;
        r.state.pid = child;
        r.state.monitor = me;
        r.state.started_at = Some(now.clone());
        r.state.exit_code = 0;
        r.state.error.clear();
        r.state.oom_killed = false;
        r.state.stopped_by_user = false;
    });
    chroot::timeline::mark("monitor: recorded running");
    crate::events::emit(root, "start", record, &[]);
    send_report(&mut report, &Report::Started(pid));
    // What the start replaced on disk (the record, the network's endpoints) is freed now that
    // the client has its answer (see `replace_file`).
    namespaces::records::release_replaced();
    let log_options = LogOptions::parse(&record.spec.lifecycle.log_opt).unwrap_or_default();
    let dir = records.dir(&record.id);
    let mut log =
        crate::logs::LogWriter::open(&crate::logs::log_path(&dir, &record.id), log_options).ok();
    let mut pump = match pump::Pump::new(pid, ends) {
        Ok(pump) => pump,
        Err(_) => {
            return finish(
                root,
                &record.id,
                listener,
                clients,
                pump::reap(pid),
                backoff_ms,
                held,
            );
        }
    };
    let engine = chroot::launch::own_binary();
    let execs = pump::ExecHelper {
        engine: engine.clone(),
        root: root.to_path_buf(),
        id: record.id.clone(),
    };
    pump.serve_execs(execs.clone());
    let deadline = Instant::now() + PUMP_AFTER;
    if pump.run(Some(&listener), &mut clients, &mut log, Some(deadline)) {
        drop(log);
        return finish(
            root,
            &record.id,
            listener,
            clients,
            pump::reap(pid),
            backoff_ms,
            held,
        );
    }
    // The pump (an exec) gives them up: the container outlived the launch.
    drop(held);
    if let Some(log) = &mut log {
        let _ = log.flush();
    }
    drop(log);
    let handover = Handover {
        engine: engine.clone(),
        root: root.to_path_buf(),
        id: record.id.clone(),
        pid,
        listener,
        ends: pump.into_ends(),
        clients,
        log: log_options,
        backoff_ms,
        agents: overlay_networks(root, &record.id),
    };
    // The pump's own small program when it is there (it is beside skiff once built or
    // installed), else skiff in pump mode.
    let program = engine.with_file_name("skiff-pump");
    let mut command = if program.is_file() {
        std::process::Command::new(program)
    } else {
        let mut command = std::process::Command::new(&engine);
        command.arg("container-pump");
        command
    };
    // Named `skiff-pump` in ps(1) either way.
    let error = command.arg0("skiff-pump").args(handover.to_args()).exec();
    // The exec failed: pump here, then finish here.
    eprintln!("skiff monitor: exec the pump: {error}");
    let Handover {
        listener,
        ends,
        mut clients,
        ..
    } = handover;
    let mut log =
        crate::logs::LogWriter::open(&crate::logs::log_path(&dir, &record.id), log_options).ok();
    if let Ok(mut pump) = pump::Pump::new(pid, ends) {
        pump.serve_execs(execs);
        pump.run(Some(&listener), &mut clients, &mut log, None);
    }
    drop(log);
    finish(
        root,
        &record.id,
        listener,
        clients,
        pump::reap(pid),
        backoff_ms,
        Held::nothing(),
    )
}
// ANCHOR_END: start

// ANCHOR: launch
/// Prepares the container from its record, unless the caller prepared it already (every
/// stage's features, kept: the container outlives this run unless `--rm`), adds its streams,
/// and launches it. Returns its first
/// process and the monitor's ends of its streams.
fn launch(
    record: &Record,
    prepared: Option<images::cli::PreparedRun>,
) -> Result<(i32, Ends, Held), Failed> {
    chroot::timeline::mark("monitor: launch");
    let spec = &record.spec;
    let id = ContainerId::from_hex(&record.id)
        .ok_or_else(|| failed(anyhow::anyhow!("bad container id {}", record.id)))?;
    let mut prepared = match prepared {
        Some(prepared) => prepared,
        None => crate::wiring::prepare(spec, id).map_err(failed)?,
    };
    let container = &mut prepared.container.prepared;
    if !spec.auto_remove() {
        container.keep();
    }
    let io_failed =
        |e: std::io::Error| failed(anyhow::Error::from(e).context("make the container's stdio"));
    let console = if spec.lifecycle.tty {
        if container.process.get_env("TERM").is_none() {
            // What Docker sets for -t: programs need to know what the terminal understands.
            container.process.set_env("TERM", "xterm");
        }
        let (stdio, socket) = Stdio::terminal().map_err(io_failed)?;
        container.add(stdio);
        Err(socket)
    } else {
        let (stdio, ends) = Stdio::pipes(spec.lifecycle.interactive).map_err(io_failed)?;
        container.add(stdio);
        Ok(ends)
    };
    // The features' own cleanup never runs here: this process becomes the pump, and part 3
    // sweeps from the record, the same path.
    let pid = container
        .spawn()
        .map_err(|e| failed(e.into()))?
        .pid()
        .as_raw();
    chroot::timeline::mark("monitor: container runs");
    let held = Held::of(pid, spec.auto_remove());
    let ends = match console {
        Ok(ends) => ends,
        // The terminal's master arrives from the container once it made it.
        Err(socket) => Ends::Terminal(receive(&socket).map_err(io_failed)?),
    };
    Ok((pid, ends, held))
}
// ANCHOR_END: launch

// ANCHOR: held
/// The `--rm` container's mount and network namespaces, held open by its monitor from the
/// launch until the client has the exit code.
///
/// A namespace goes when the last reference to it goes, and the kernel tears it down in
/// whichever process drops that reference (namespaces(7)). Left alone, that is the container's
/// first process, on its way out (`exit_task_namespaces` in `do_exit`), before its parent can
/// reap it: every mount of the container unmounted, with an RCU grace period to wait out, and
/// the network namespace's cleanup queued to a kernel worker that then competes with the
/// monitor's sweep for the machine's cores. A descriptor of `/proc/PID/ns/mnt` and
/// `/proc/PID/ns/net` (proc(5)) is such a reference: with the monitor holding them, the
/// container's end reaches it sooner, and the teardown happens when it closes them, once the
/// client has its answer. Nothing is visible meanwhile: no process is in those namespaces and
/// no path on the host leads to them. Only for `--rm`: a kept container may be started again
/// at once, on the same writable layer, which its old mount must have let go of by then.
pub struct Held {
    /// Open only to be closed: the references themselves.
    _namespaces: Vec<OwnedFd>,
}

impl Held {
    fn of(pid: i32, auto_remove: bool) -> Held {
        if !auto_remove {
            return Held::nothing();
        }
        // Opened with close-on-exec (the standard library's default): a container that
        // outlives the monitor's first second gives them up when the monitor execs its pump.
        let open = |ns: &str| File::open(format!("/proc/{pid}/ns/{ns}")).ok();
        let namespaces = ["mnt", "net"].into_iter().filter_map(open);
        Held {
            _namespaces: namespaces.map(OwnedFd::from).collect(),
        }
    }

    /// Holds nothing: the container's namespaces went with it.
    pub fn nothing() -> Held {
        Held {
            _namespaces: Vec::new(),
        }
    }
}
// ANCHOR_END: held

fn receive(socket: &OwnedFd) -> std::io::Result<OwnedFd> {
    crate::stdio::receive_master(socket)
}

/// From the pump: execs part 3 with what it needs. Returns only when the exec failed.
pub fn exec_finish(
    engine: &Path,
    root: &Path,
    id: &str,
    listener: &UnixListener,
    clients: &[Client],
    backoff_ms: u64,
    status: pump::Status,
) {
    let mut command = std::process::Command::new(engine);
    command
        .arg0("skiff")
        .arg("container-monitor")
        .arg("--root")
        .arg(root)
        .args(["--listen-fd", &pump::keep(listener)])
        .args(["--backoff", &backoff_ms.to_string()]);
    match (status.code, status.signal) {
        (Some(code), _) => command.args(["--exited", &code.to_string()]),
        (None, Some(signal)) => command.args(["--killed-by", &signal.to_string()]),
        (None, None) => command.args(["--exited", "125"]),
    };
    for client in clients {
        let arg = format!("{}:{}", pump::keep(&client.stream), client.wants.bits());
        command.args(["--client", &arg]);
    }
    let error = command.arg(id).exec();
    eprintln!("skiff pump: exec the monitor: {error}");
}

/// What a monitor calls itself (`/proc/PID/comm`, what ps(1) shows) while it only waits out its
/// linger, with no work left but the last look at the bridge and the parent cgroup: idle, so
/// that whoever watches (the bench's harness) can tell it from one still cleaning up.
pub const LINGERING: &std::ffi::CStr = c"skiff-linger";

fn now_lingering() {
    let _ = nix::sys::prctl::set_name(LINGERING);
}

// ANCHOR: finish
/// Part 3: the container's first process ended with `status`. Reads the OOM counter, sweeps
/// what the run held (all of the container with `--rm`), records the end, tells the clients,
/// lets go of the container's namespaces (`held`, see [`Held`]), and starts the container again
/// when its restart policy says so.
pub fn finish(
    root: &Path,
    id: &str,
    listener: UnixListener,
    clients: Vec<Client>,
    status: pump::Status,
    backoff_ms: u64,
    held: Held,
) -> i32 {
    chroot::timeline::mark("monitor: container ended");
    let records = Records::new(root);
    let code = status.exit_code();
    let Ok(Some(record)) = records.load::<crate::spec::RunArgs>(id) else {
        // Removed meanwhile (rm -f): nothing left to record.
        tell(clients, &[], code);
        return 0;
    };
    let mut notes = oom_notes(&record, status);
    let oom = !notes.is_empty();
    // --stats (stage 03): what the run used, read before its cgroup goes.
    if record.spec.image_args().cgroup.stats
        && let Some(path) = record.cgroup.as_deref()
    {
        notes.push(match cgroups::usage_at(path) {
            Ok(usage) => format!("usage: {}", usage.summary()),
            Err(e) => format!("usage: unavailable: {e}"),
        });
    }
    // What the run held goes (the overlay unmounted, the writable layer kept); then a
    // --commit of the changes, and with --rm the rest of the container. (Without a commit,
    // --rm is one sweep of everything.)
    let commit = record.spec.image_args().commit.is_some();
    // The default bridge, if this was its last container, goes after the clients are told.
    networking::feature::defer_bridge_removal();
    // So does skiff's parent cgroup (`cgroups::defer_parent_removal`).
    cgroups::defer_parent_removal();
    let mut left = Vec::new();
    if commit || !record.spec.auto_remove() {
        left = crate::lifecycle::sweep_runtime(root, &record);
    }
    if commit {
        notes.extend(commit_on_exit(root, &record));
    }
    if oom {
        crate::events::emit(root, "oom", &record, &[]);
    }
    crate::events::emit(root, "die", &record, &[("exitCode", code.to_string())]);
    if record.spec.auto_remove() {
        left.extend(crate::lifecycle::sweep_removed_to_trash(root, &record));
        crate::events::emit(root, "destroy", &record, &[]);
    }
    notes.extend(left.iter().map(|l| format!("warning: cleanup: {l}")));
    // The end and the restart policy's answer are recorded together: between two runs the
    // container is restarting, never exited, so `wait` returns only after its last run.
    let policy = record.spec.restart_policy().unwrap_or(RestartPolicy::No);
    let now = images::human::now_rfc3339();
    let mut restart = false;
    // With --rm the record went with the container, unless its sweep left something (no
    // restart policy goes with --rm).
    let removed = record.spec.auto_remove() && left.is_empty();
    let after = if removed {
        None
    } else {
        update(&records, id, |r| {
            restart = policy.restarts(code, r.state.restart_count, r.state.stopped_by_user);
            r.state.status = if restart {
                Status::Restarting
            } else {
                Status::Exited
            };
            if restart {
                r.state.restart_count += 1;
            } else {
                r.state.monitor = None;
            }
            r.state.exit_code = code;
            r.state.oom_killed = oom;
            r.state.finished_at = Some(now.clone());
            r.state.pid = None;
        })
    };
    chroot::timeline::mark("monitor: swept");
    tell(clients, &notes, code);
    // Now the kernel tears the container's namespaces down (see `Held`).
    drop(held);
    chroot::timeline::mark("monitor: namespaces let go");
    namespaces::records::release_replaced();
    // With --rm, the container's directory waits in the trash: deleted now that the client
    // has its exit code (see `namespaces::sweep::move_to_trash`).
    if record.spec.auto_remove() {
        namespaces::sweep::empty_trash(root, Some(id));
    }
    // A container about to start again needs its bridge now; otherwise the bridge lingers for
    // the next container (see `bridge_linger`).
    let linger = if restart {
        std::time::Duration::ZERO
    } else {
        networking::feature::bridge_linger()
    };
    let lingering = Instant::now();
    for left in networking::feature::remove_deferred_bridges(linger, &now_lingering) {
        eprintln!("skiff monitor: cleanup: {left}");
    }
    // The parent cgroup, if one waits, lingers as long (the bridge's linger may be over).
    let rest = linger.saturating_sub(lingering.elapsed());
    if cgroups::parents_deferred() && !rest.is_zero() {
        now_lingering();
        std::thread::sleep(rest);
    }
    cgroups::remove_deferred_parents();
    let Some(after) = after else {
        return 0;
    };
    if !restart {
        return 0;
    }
    let ran = after
        .state
        .started_at
        .as_deref()
        .and_then(images::human::parse_time)
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    let mut backoff = Backoff::from_millis(backoff_ms);
    let wait = backoff.after(ran);
    if !sleep_unless_stopped(&records, id, wait) {
        update(&records, id, |r| {
            r.state.status = Status::Exited;
            r.state.monitor = None;
        });
        return 0;
    }
    match records.load::<crate::spec::RunArgs>(id) {
        Ok(Some(fresh)) => start(
            root,
            &fresh,
            None,
            listener,
            Vec::new(),
            None,
            backoff.millis(),
        ),
        _ => 0,
    }
}
// ANCHOR_END: finish

/// `run --commit NAME`: the container's changes as a new image, once it ended (stage 04's
/// commit, from the record). Returns what to tell.
fn commit_on_exit(root: &Path, record: &Record) -> Option<String> {
    let tag = record.spec.image_args().commit.as_deref()?;
    let outcome = (|| -> anyhow::Result<String> {
        let tag = images::ImageRef::parse_tag(tag)?;
        let store = images::Store::open(root)?;
        let image: images::Digest = record.image_id.parse()?;
        let config = store
            .image(&image)?
            .config
            .config()
            .clone()
            .unwrap_or_default();
        let command: Vec<&str> = record
            .config
            .entrypoint
            .iter()
            .chain(&record.config.cmd)
            .map(String::as_str)
            .collect();
        let request = images::overlay::CommitRequest {
            tag: Some(tag.clone()),
            created_by: format!("skiff run --commit: {}", command.join(" ")),
            comment: Some("skiff run --commit".into()),
            on_failure: true,
            config,
            outcome: std::sync::Arc::default(),
        };
        let dir = Records::new(root).dir(&record.id);
        let id = images::overlay::commit(&store, &dir, &image, &request)?;
        Ok(format!("committed {} as {}", id.short(), tag.familiar()))
    })();
    Some(outcome.unwrap_or_else(|e| format!("commit: {}", chroot::cli::one_line(&e))))
}

/// What to tell about an OOM kill, from the cgroup's own counter (read before the sweep
/// removes the cgroup); nothing when there was none.
fn oom_notes(record: &Record, status: pump::Status) -> Vec<String> {
    let Some(path) = record.cgroup.as_deref() else {
        return Vec::new();
    };
    let Ok(Some(kills)) = cgroups::oom_kills_at(path) else {
        return Vec::new();
    };
    let limits = record.spec.image_args().cgroup.limits().unwrap_or_default();
    let exit = chroot::Exit {
        status: status.code,
        signal: status.signal,
        notes: Vec::new(),
        oom_killed: false,
        warnings: Vec::new(),
    };
    cgroups::feature::oom_note(kills, &exit, &limits)
        .into_iter()
        .collect()
}

/// Sleeps before a restart; `false` when `stop`, `kill` or `rm` ended the container meanwhile.
fn sleep_unless_stopped(records: &Records, id: &str, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    loop {
        match records.load::<serde_json::Value>(id) {
            Ok(Some(record)) if !record.state.stopped_by_user => {}
            _ => return false,
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(50)));
    }
}

/// The overlay networks container `id` is on, by id: the pump keeps their agents running.
fn overlay_networks(root: &Path, id: &str) -> Vec<String> {
    networking::store::list(root)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| {
            n.driver == networking::store::Driver::Overlay
                && n.endpoints.iter().any(|e| e.container_id == id)
        })
        .map(|n| n.id)
        .collect()
}

/// The report a starting command reads: the first line the monitor writes, or end of file
/// when it died first.
pub fn read_report(pipe: File) -> Report {
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(pipe);
    match std::io::BufRead::read_line(&mut reader, &mut line) {
        Ok(n) if n > 0 => serde_json::from_str(&line).unwrap_or_else(|e| {
            Report::Failed(
                125,
                format!("the monitor's report {line:?} does not parse: {e}"),
            )
        }),
        _ => Report::Failed(
            125,
            "the container's monitor ended before it could start the container".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn inode(path: &str) -> u64 {
        std::fs::metadata(path).unwrap().ino()
    }

    #[test]
    fn an_rm_containers_namespaces_are_held_and_no_others() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: making namespaces needs root");
            return;
        }
        // A process in a mount and a network namespace of its own, as a container's first.
        let mut child = std::process::Command::new("unshare")
            .args(["--mount", "--net", "sleep", "10"])
            .spawn()
            .unwrap();
        let pid = child.id().cast_signed();
        let net = format!("/proc/{pid}/ns/net");
        let deadline = Instant::now() + Duration::from_secs(5);
        while inode(&net) == inode("/proc/self/ns/net") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let held = Held::of(pid, true);
        let held: Vec<u64> = held
            ._namespaces
            .iter()
            .map(|fd| {
                std::fs::File::from(fd.try_clone().unwrap())
                    .metadata()
                    .unwrap()
                    .ino()
            })
            .collect();
        let theirs = vec![inode(&format!("/proc/{pid}/ns/mnt")), inode(&net)];
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            held, theirs,
            "the container's own namespaces, not the monitor's"
        );
        assert_ne!(theirs[1], inode("/proc/self/ns/net"));
        // A container that is kept may start again at once: its namespaces go with it.
        assert!(
            Held::of(std::process::id().cast_signed(), false)
                ._namespaces
                .is_empty()
        );
    }
}
