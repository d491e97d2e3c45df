//! The lifecycle of a container, command by command: start (a monitor), stop, kill, restart,
//! remove, wait; and the rule every command follows when it reads a record: a container whose
//! monitor is gone is not running, whatever its record says.
//!
//! ```text
//!            create          start            (command ends)
//!   ──────► Created ───────► Running ─────────► Exited ◄──┐
//!                              │ ▲    restart policy │     │ stop, kill, a dead monitor
//!                              │ └──── Restarting ◄──┘     │
//!                              └───────────────────────────┘
//!   rm: Created or Exited ──► gone (rm -f: Running too, killed first)
//! ```
//!
//! Signals reach the container's first process through a pidfd (pidfd_open(2)), opened and
//! then checked against the start time in the record, so a pid the kernel has handed to
//! another process since is never signalled.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use namespaces::Sweep;
use namespaces::record::{ProcessRef, Status};
use namespaces::records::Records;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

use crate::container::{Record, records};
use crate::monitor::Report;

// ANCHOR: find
/// Finds a container by id, name or id prefix, and brings its record up to date first.
pub fn find(root: &Path, key: &str) -> anyhow::Result<Record> {
    let record = records(root).find::<crate::spec::RunArgs>(key)?;
    Ok(reconcile(root, record))
}

/// Every container of the store, oldest first, each brought up to date.
pub fn list(root: &Path) -> anyhow::Result<Vec<Record>> {
    let all = records(root).list::<crate::spec::RunArgs>()?;
    Ok(all.into_iter().map(|r| reconcile(root, r)).collect())
}
// ANCHOR_END: find

// ANCHOR: boot
/// `system boot`: what Docker's daemon does for restart policies when it starts, for a host
/// that just booted (or any time): every container that is not running and whose policy says
/// so is started again ([`RestartPolicy::at_boot`]: `always` even after a `stop`,
/// `unless-stopped` only if the user did not stop it). Listing the containers first brings
/// each record up to date: one that says running from before the boot is swept and marked
/// exited, not stopped by the user. Prints each id started; exits 1 if one could not be.
pub fn boot(root: &Path) -> anyhow::Result<i32> {
    use crate::restart::RestartPolicy;
    let mut code = 0;
    for record in list(root)? {
        let state = &record.state;
        let policy = record.spec.restart_policy().unwrap_or(RestartPolicy::No);
        if matches!(
            state.status,
            Status::Running | Status::Paused | Status::Restarting
        ) || !policy.at_boot(
            state.started_at.is_some(),
            state.stopped_by_user,
            state.exit_code,
        ) {
            continue;
        }
        match start(root, &record, None, None, None) {
            Ok(Report::Failed(_, message)) => {
                eprintln!("Error response from daemon: {message}");
                code = 1;
            }
            Ok(_) => println!("{}", record.id),
            Err(e) => {
                eprintln!("Error response from daemon: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}
// ANCHOR_END: boot

// ANCHOR: reconcile
/// A record that says running while its monitor is gone (killed, or the host rebooted) is out
/// of date: the container died with its monitor. Its host state is swept away from the record
/// (mounts, cgroup, network endpoint; its writable layer stays) and the record says exited.
pub fn reconcile(root: &Path, record: Record) -> Record {
    let live = matches!(
        record.state.status,
        Status::Running | Status::Paused | Status::Restarting
    );
    if !live || record.state.monitor.is_some_and(|m| m.is_alive()) {
        return record;
    }
    let records = records(root);
    let Ok(locked) = records.lock() else {
        return record;
    };
    // Another command may have done it meanwhile.
    let Ok(Some(current)) = records.load::<crate::spec::RunArgs>(&record.id) else {
        return record;
    };
    if !matches!(
        current.state.status,
        Status::Running | Status::Paused | Status::Restarting
    ) || current.state.monitor.is_some_and(|m| m.is_alive())
    {
        return current;
    }
    let left = sweep_runtime(root, &current);
    let monitor = current.state.monitor.map_or(0, |m| m.pid);
    let updated = locked
        .update::<crate::spec::RunArgs>(&record.id, |r| {
            r.state.status = Status::Exited;
            r.state.exit_code = 137;
            r.state.error = if left.is_empty() {
                format!("its monitor (pid {monitor}) died, and the container with it")
            } else {
                format!(
                    "its monitor (pid {monitor}) died; sweeping it left: {}",
                    left.join("; ")
                )
            };
            r.state.pid = None;
            r.state.monitor = None;
            r.state.finished_at = Some(images::human::now_rfc3339());
        })
        .ok()
        .flatten();
    updated.unwrap_or(current)
}
// ANCHOR_END: reconcile

/// Sweeps what a run of the container holds on the host (its processes, mounts, cgroup,
/// network endpoint), keeping the container itself. Returns what could not be undone.
pub fn sweep_runtime(root: &Path, record: &Record) -> Vec<String> {
    // Its processes first: a container whose monitor died may still have some (with
    // `--pid host` only the first process dies with the monitor); the cgroup sweep kills them.
    volumes::feature::sweep(&Sweep::of(root, record, false))
}

/// Sweeps the whole container away (the state directory, and so the record, last); with
/// `anonymous_volumes` its anonymous volumes too. Returns what could not be undone.
pub fn sweep_removed(root: &Path, record: &Record, anonymous_volumes: bool) -> Vec<String> {
    let mut sweep = Sweep::of(root, record, true);
    sweep.anonymous_volumes = anonymous_volumes;
    volumes::feature::sweep(&sweep)
}

/// [`sweep_removed`] for `--rm`'s monitor, which has a client waiting for the exit code: the
/// state directory goes into the trash in one rename (the record and the name are gone as
/// soon as it returns), and the caller deletes it with
/// [`namespaces::sweep::empty_trash`] once the client has been told.
pub fn sweep_removed_to_trash(root: &Path, record: &Record) -> Vec<String> {
    let mut sweep = Sweep::of(root, record, true);
    sweep.anonymous_volumes = true;
    sweep.to_trash = true;
    volumes::feature::sweep(&sweep)
}

/// Removes a record that was just written, for a create that failed after it.
pub fn remove_record(root: &Path, record: &Record) {
    let _ = sweep_removed(root, record, true);
}

// ANCHOR: spawn_monitor
/// Starts container `record` under a new monitor, and returns the monitor's report: started,
/// or why not. `prepared` is the container as `create` prepared it, when this command just did.
/// With `listener`, the monitor takes over the attach socket, where a client of the caller's
/// (`client`, which the monitor must not keep) is already waiting.
///
/// The monitor is a fork of this process: it has the container prepared in its memory already,
/// and launches it without starting skiff again. A fork of a multi-threaded process may only
/// make system calls until it execs (stage 01's rule), so a caller with threads gets a monitor
/// that starts as a program of its own and prepares the container from its record.
pub fn start(
    root: &Path,
    record: &Record,
    mut prepared: Option<images::cli::PreparedRun>,
    listener: Option<&UnixListener>,
    client: Option<std::os::fd::RawFd>,
) -> anyhow::Result<Report> {
    if !single_threaded() {
        return start_exec(root, record, listener);
    }
    chroot::timeline::mark("cli: fork the monitor");
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // What the first child needs is made here, where the code is warm: a fork maps none of
    // the code its parent ran, and each page it touches costs it a fault.
    let ahead = network_ahead(record)
        .then(UnixStream::pair)
        .and_then(Result::ok);
    // The features' work the first child may do too (see `chroot::Feature::ahead`): only
    // where it sends a namespace, whose socket's end of file the monitor's launch waits for
    // before its features act on the child.
    let jobs = match (&ahead, prepared.as_mut()) {
        (Some(_), Some(run)) => run.container.prepared.ahead(),
        _ => Vec::new(),
    };
    let cores = chroot::launch::Cores::ours();
    // `CLONE_VFORK`: this process sleeps from the fork until the first child exits, as it
    // would soon on the report anyway, so that the child runs at once, on this core, not
    // behind this process's last steps or on a core that must first be woken.
    let vfork = libc::CLONE_VFORK.unsigned_abs() as u64;
    match chroot::launch::clone3(vfork).context("fork the container's monitor")? {
        None => {
            // The first child: a session of its own, away from the caller's terminal, then a
            // second fork, so the monitor is nobody's child but init's (or the nearest
            // subreaper's) and never a zombie of a long-lived caller.
            chroot::pgo::forked();
            let _ = nix::unistd::setsid();
            // This process has nothing else to do: it makes the container's network namespace
            // while the monitor prepares the rest, in memory of its own (stage 01's `ahead`).
            match chroot::launch::clone3(0) {
                Ok(None) => {
                    chroot::pgo::forked();
                    drop(read);
                    // The first child's end is its alone: its closing says it is done.
                    if let Some((maker_end, monitor_end)) = ahead {
                        drop(maker_end);
                        chroot::ahead::expect_from(monitor_end.into());
                    }
                    chroot::timeline::mark("monitor: start");
                    let code = monitor_in_fork(root, record, prepared, write, listener, client);
                    std::process::exit(code)
                }
                Ok(Some(monitor)) => {
                    // The caller reads the report to its end: only the monitor holds it.
                    drop((read, write));
                    // ANCHOR: keep_off
                    // The monitor is queued on this core, and would wait there while this
                    // process makes the namespace: it goes to another one at once, and gets
                    // every core back before it can hear of the namespace. Then the features'
                    // jobs: the monitor's launch waits for this process to end before its
                    // features act on the child (`chroot::ahead::settle`).
                    if let Some((maker_end, monitor_end)) = ahead {
                        drop(monitor_end);
                        cores.move_off_ours(monitor);
                        // Open until this process exits: its end of file says "done".
                        let maker_end: OwnedFd = maker_end.into();
                        chroot::ahead::make_and_send(&maker_end, || cores.give_back(monitor));
                        jobs.into_iter().for_each(|job| job());
                    }
                    // ANCHOR_END: keep_off
                    chroot::pgo::dump();
                    // SAFETY: _exit ends this intermediate process without running the
                    // caller's exit handlers or destructors.
                    unsafe { libc::_exit(0) }
                }
                // SAFETY: as above.
                Err(_) => unsafe { libc::_exit(0) },
            }
        }
        Some(child) => {
            // The socket's ends are the first child's and the monitor's: a namespace it could
            // not make must reach the monitor as the socket's end.
            drop((write, ahead));
            let r = crate::monitor::read_report(File::from(read));
            chroot::timeline::mark("cli: monitor reported");
            let _ = nix::sys::wait::waitpid(child, None);
            Ok(r)
        }
    }
}

/// Whether the container is born in a network namespace of its own that may be made before its
/// clone: one stage 02 would create for it (not with the host's or another container's network,
/// nor with `--ns` leaving it out), and not in a user namespace (whose namespaces exist only
/// after the clone). A guess that is wrong costs a namespace made for nothing, or a thread: the
/// monitor's launch decides.
fn network_ahead(record: &Record) -> bool {
    let namespaces = &record.spec.image_args().namespaces;
    let own = namespaces
        .namespace_set(&namespaces.network_mode())
        .is_ok_and(|set| set.contains(&namespaces::namespaces::Namespace::Net));
    own && namespaces
        .userns
        .as_deref()
        .is_none_or(|mode| mode == "host")
}

/// The monitor, in the forked process: its stdio is `/dev/null`, the caller's client is not
/// its to keep, the caller's blocked signals are unblocked; then part 1.
fn monitor_in_fork(
    root: &Path,
    record: &Record,
    prepared: Option<images::cli::PreparedRun>,
    report: OwnedFd,
    listener: Option<&UnixListener>,
    client: Option<std::os::fd::RawFd>,
) -> i32 {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for target in 0..3 {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
    if let Some(fd) = client {
        // SAFETY: the caller's end of its attach connection, which this process must not hold.
        unsafe { libc::close(fd) };
    }
    close_inherited();
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
    let listener = listener.and_then(|l| l.try_clone().ok());
    let expect_client = listener.is_some() && client.is_some();
    crate::monitor::run(
        root,
        record,
        prepared,
        Some(File::from(report)),
        listener,
        expect_client,
    )
}

/// Closes the descriptors this process inherited from whoever started the command (those
/// without close-on-exec: skiff opens every one of its own with it). The caller's shell or test
/// harness may wait for such a pipe to close; a monitor that lives on must not hold it open.
fn close_inherited() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl F_GETFD only reads a descriptor's flags; close(2) of one that has no
        // close-on-exec flag closes a descriptor no value of this program owns.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::close(fd);
            }
        }
    }
}

/// Whether this process has one thread (`Threads:` of /proc/self/status).
fn single_threaded() -> bool {
    use std::io::Read;
    // A proc file says its size is 0: a buffer big enough for all of it (about 1.5 KiB) takes it
    // in one read(2), where reading to a string that grows from nothing takes seven.
    let mut status = String::with_capacity(8192);
    File::open("/proc/self/status")
        .and_then(|mut file| file.read_to_string(&mut status))
        .is_ok_and(|_| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .is_some_and(|n| n.trim() == "1")
        })
}

/// [`start`] for a multi-threaded caller: the monitor is skiff again, started as a program.
fn start_exec(
    root: &Path,
    record: &Record,
    listener: Option<&UnixListener>,
) -> anyhow::Result<Report> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // This program, normally; a program that uses skiff as a library (a test) names skiff.
    let exe = match std::env::var_os("SKIFF_ENGINE") {
        Some(path) => path.into(),
        None => chroot::launch::own_binary(),
    };
    let mut command = std::process::Command::new(exe);
    command
        .arg("container-monitor")
        .arg("--root")
        .arg(root)
        .args(["--report-fd", "3"]);
    if listener.is_some() {
        command.args(["--listen-fd", "4", "--expect-client"]);
    }
    command
        .arg(&record.id)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let report = write.as_raw_fd();
    let listen = listener.map(AsRawFd::as_raw_fd);
    // SAFETY: between fork and exec the closure makes system calls only, on descriptors this
    // process holds: no allocation, no lock.
    unsafe {
        command.pre_exec(move || detach_into(report, listen));
    }
    let mut intermediate = command.spawn().context("start the container's monitor")?;
    // The process spawn made has forked the monitor and exited.
    let _ = intermediate.wait();
    drop(write);
    Ok(crate::monitor::read_report(File::from(read)))
}

/// In the child of `start_exec`'s spawn, before exec: the report pipe becomes descriptor 3 and the attach
/// socket 4; then a session of its own, away from the caller's terminal, and a second fork, so
/// the monitor is nobody's child but init's (or the nearest subreaper's) and never a zombie of
/// a long-lived caller.
fn detach_into(report: i32, listen: Option<i32>) -> std::io::Result<()> {
    let last = |rc: libc::c_int| {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    };
    // SAFETY: fcntl, dup2, close, setsid and _exit are system calls on integers.
    unsafe {
        // Out of the way first, so the two dup2 below cannot overwrite each other.
        let report = last(libc::fcntl(report, libc::F_DUPFD_CLOEXEC, 100))?;
        let listen = match listen {
            Some(fd) => Some(last(libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100))?),
            None => None,
        };
        last(libc::dup2(report, 3))?;
        libc::close(report);
        if let Some(fd) = listen {
            last(libc::dup2(fd, 4))?;
            libc::close(fd);
        }
        last(libc::setsid())?;
        match chroot::launch::clone3(0) {
            Ok(None) => Ok(()),
            Ok(Some(_)) => libc::_exit(0),
            Err(errno) => Err(errno.into()),
        }
    }
}
// ANCHOR_END: spawn_monitor

/// A pidfd for the process `process`, if it is still that process.
pub fn open_process(process: ProcessRef) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, process.pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the kernel just returned this descriptor, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Checked after opening: if the start time matches now, the pidfd holds that process.
    process.is_alive().then_some(fd)
}

/// Sends `signal` through a pidfd. See pidfd_send_signal(2).
fn send(pidfd: &OwnedFd, signal: Signal) -> std::io::Result<()> {
    // SAFETY: pidfd_send_signal with a null siginfo and no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Waits up to `timeout` for the process behind `pidfd` to end; `true` when it did.
fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(n) if n > 0 => return true,
            Ok(_) if Instant::now() >= until => return false,
            _ => {}
        }
    }
}

/// Waits until the container's monitor is gone (it recorded the end and cleaned up), at most
/// `timeout`; a monitor stuck longer is killed, and the record brought up to date.
///
/// A monitor that recorded the end and let the record go (no monitor in it, or the record
/// removed with `--rm`) is done with the container: it may still wait a while to take down the
/// default bridge (`networking::feature::bridge_linger`), which `stop` and `rm` do not wait
/// for, as Docker's `stop` does not wait for anything of `docker0`'s.
fn wait_monitor(root: &Path, record: &Record, timeout: Duration) -> Record {
    if let Some(monitor) = record.state.monitor
        && let Some(pidfd) = open_process(monitor)
    {
        let deadline = Instant::now() + timeout;
        let released = || match records(root).load::<crate::spec::RunArgs>(&record.id) {
            Ok(Some(current)) => current.state.monitor != Some(monitor),
            _ => true,
        };
        while !wait_exit(&pidfd, Duration::from_millis(20)) && !released() {
            if Instant::now() >= deadline {
                let _ = send(&pidfd, Signal::SIGKILL);
                wait_exit(&pidfd, Duration::from_secs(5));
                break;
            }
        }
    }
    match records(root).load::<crate::spec::RunArgs>(&record.id) {
        Ok(Some(record)) => reconcile(root, record),
        _ => record.clone(),
    }
}

fn mark_stopped(root: &Path, id: &str) -> anyhow::Result<()> {
    records(root)
        .lock()?
        .update::<crate::spec::RunArgs>(id, |r| r.state.stopped_by_user = true)?;
    Ok(())
}

// ANCHOR: stop
/// `stop`: the stop signal, then SIGKILL after `timeout` seconds, and waits for the end to be
/// recorded. A container that is not running is stopped already.
pub fn stop(
    root: &Path,
    record: &Record,
    signal: Option<Signal>,
    timeout: Option<u32>,
) -> anyhow::Result<Record> {
    if !matches!(
        record.state.status,
        Status::Running | Status::Paused | Status::Restarting
    ) {
        return Ok(record.clone());
    }
    mark_stopped(root, &record.id)?;
    let signal = match signal {
        Some(signal) => signal,
        None => crate::signal::parse(&record.config.stop_signal).unwrap_or(Signal::SIGTERM),
    };
    let timeout = timeout.or(record.config.stop_timeout).unwrap_or(10);
    if let Some(pidfd) = record.state.pid.and_then(open_process) {
        let _ = send(&pidfd, signal);
        crate::events::emit(
            root,
            "kill",
            record,
            &[("signal", (signal as i32).to_string())],
        );
        // A frozen process takes its signal only when it runs again.
        thaw_paused(record);
        if !wait_exit(&pidfd, Duration::from_secs(timeout.into())) {
            let _ = send(&pidfd, Signal::SIGKILL);
            wait_exit(&pidfd, Duration::from_secs(10));
        }
    }
    let stopped = wait_monitor(root, record, Duration::from_secs(30));
    crate::events::emit(root, "stop", record, &[]);
    Ok(stopped)
}
// ANCHOR_END: stop

/// `kill`: a signal to the container's first process (SIGKILL by default). Docker's error for
/// a container that is not running.
pub fn kill(root: &Path, record: &Record, signal: Signal) -> anyhow::Result<()> {
    let Some(pidfd) = record
        .state
        .pid
        .filter(|_| matches!(record.state.status, Status::Running | Status::Paused))
        .and_then(open_process)
    else {
        bail!(
            "Cannot kill container: {0}: Container {0} is not running",
            record.name
        );
    };
    send(&pidfd, signal).with_context(|| format!("send {signal} to container {}", record.name))?;
    crate::events::emit(
        root,
        "kill",
        record,
        &[("signal", (signal as i32).to_string())],
    );
    // Other signals wait for `unpause`, as Docker's do; SIGKILL ends a paused container now.
    if signal == Signal::SIGKILL {
        thaw_paused(record);
    }
    Ok(())
}

/// Thaws a paused container so that a signal just sent can act.
fn thaw_paused(record: &Record) {
    if record.state.status == Status::Paused {
        let _ = crate::pause::thaw(record);
    }
}

// ANCHOR: remove
/// `rm`: refuses a running container unless `force` (then kills it first), and sweeps the
/// container away: its writable layer, its hold on volumes (its anonymous ones too with
/// `volumes`), its state directory and record.
pub fn remove(root: &Path, record: &Record, force: bool, volumes: bool) -> anyhow::Result<()> {
    let mut record = record.clone();
    if matches!(
        record.state.status,
        Status::Running | Status::Paused | Status::Restarting
    ) {
        if !force {
            bail!(
                "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                record.id
            );
        }
        mark_stopped(root, &record.id)?;
        if let Some(pidfd) = record.state.pid.and_then(open_process) {
            let _ = send(&pidfd, Signal::SIGKILL);
            thaw_paused(&record);
            wait_exit(&pidfd, Duration::from_secs(10));
        }
        record = wait_monitor(root, &record, Duration::from_secs(30));
    }
    let left = sweep_removed(root, &record, volumes);
    if left.is_empty() {
        crate::events::emit(root, "destroy", &record, &[]);
        return Ok(());
    }
    // Half removed: Docker's Dead state, which only another rm can help.
    if let Ok(locked) = records(root).lock() {
        let _ = locked.update::<crate::spec::RunArgs>(&record.id, |r| {
            r.state.status = Status::Dead;
            r.state.error = left.join("; ");
        });
    }
    bail!(
        "removal of container {} is not complete: {}",
        record.name,
        left.join("; ")
    )
}
// ANCHOR_END: remove

/// `wait`: blocks until the container is not running, and returns its exit code.
pub fn wait(root: &Path, key: &str) -> anyhow::Result<i32> {
    loop {
        let record = find(root, key)?;
        match record.state.status {
            Status::Running | Status::Paused | Status::Restarting => {}
            _ => return Ok(record.state.exit_code),
        }
        match record.state.pid.and_then(open_process) {
            // Wakes up as soon as the process ends; then the monitor records it.
            Some(pidfd) => {
                wait_exit(&pidfd, Duration::from_secs(1));
                std::thread::sleep(Duration::from_millis(5));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The records of a store, for callers that only need to change one.
pub fn store(root: &Path) -> Records {
    records(root)
}
