//! Exec through the API: `POST /containers/{id}/exec` describes a process, `POST
//! /exec/{id}/start` runs it (hijacking the connection for its streams, as attach does), and
//! `GET /exec/{id}/json` tells how it ended: what `docker exec` sends, in that order.
//!
//! `skiff exec` enters the container's namespaces and cgroup from a fresh process; the service
//! has threads, and a multi-threaded process may only make system calls between fork and exec
//! (stage 01's rule). So the service runs `skiff exec` as a program of its own, as it runs a
//! monitor, and copies between its pipes and the client: stdout and stderr in the 8-byte
//! frames of the multiplexed stream. With a tty (`-t`) the helper gets a terminal of the
//! service's making (openpty(3)), its controlling terminal, and the client the raw bytes of its
//! master side; `exec/{id}/resize` sets the terminal's size, and the kernel tells the helper
//! (SIGWINCH), which tells the container's terminal. Reference: Engine API v1.41,
//! ContainerExec, ExecStart, ExecResize, ExecInspect.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::containers::find;
use super::create::strings;
use super::http::{self, Conn, Reader, Request};
use super::{ApiError, Next, Reply, Service};
use crate::attach::{self, kind};

/// One exec instance: what was asked, and how it went.
#[derive(Debug, Clone)]
pub struct Exec {
    container: String,
    command: Vec<String>,
    env: Vec<String>,
    user: String,
    workdir: String,
    privileged: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    /// The master side of the helper's terminal, while it runs with one.
    master: Option<Arc<OwnedFd>>,
    running: bool,
    exit_code: Option<i32>,
    pid: u32,
}

/// `POST /containers/{id}/exec`: 201 and the new exec's id; 409 if the container is not
/// running.
pub fn create(service: &Service, conn: &mut Conn, request: &Request, key: &str) -> Reply {
    let config: Value = serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::new(400, format!("invalid JSON in the exec request: {e}")))?;
    let record = find(service, key)?;
    if !record.state.is_running() {
        return Err(ApiError::new(
            409,
            format!("Container {} is not running", record.id),
        ));
    }
    let command = strings(&config["Cmd"]);
    if command.is_empty() {
        return Err(ApiError::new(400, "No exec command specified"));
    }
    let flag = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(false);
    let text = |key: &str| config.get(key).and_then(Value::as_str).unwrap_or_default();
    let exec = Exec {
        container: record.id.clone(),
        command,
        env: strings(&config["Env"]),
        user: text("User").to_string(),
        workdir: text("WorkingDir").to_string(),
        privileged: flag("Privileged"),
        stdin: flag("AttachStdin"),
        stdout: flag("AttachStdout"),
        stderr: flag("AttachStderr"),
        tty: flag("Tty"),
        master: None,
        running: false,
        exit_code: None,
        pid: 0,
    };
    let id = namespaces::ContainerId::random()
        .map_err(|e| ApiError::new(500, format!("make an exec id: {e}")))?
        .full()
        .to_string();
    service
        .execs
        .lock()
        .map_err(|_| ApiError::new(500, "the service's exec table is poisoned"))?
        .insert(id.clone(), exec);
    super::json(conn, request, 201, &json!({ "Id": id }))
}

fn lookup(service: &Service, id: &str) -> Result<Exec, ApiError> {
    service
        .execs
        .lock()
        .ok()
        .and_then(|execs| execs.get(id).cloned())
        .ok_or_else(|| ApiError::new(404, format!("No such exec instance: {id}")))
}

fn update(execs: &Mutex<HashMap<String, Exec>>, id: &str, change: impl FnOnce(&mut Exec)) {
    if let Ok(mut execs) = execs.lock()
        && let Some(exec) = execs.get_mut(id)
    {
        change(exec);
    }
}

/// The `skiff exec` command line for `exec`.
fn helper(service: &Service, exec: &Exec) -> Result<Command, ApiError> {
    // Not the path: the binary may have been replaced since the service started.
    let mut command = Command::new(chroot::launch::own_binary());
    command.arg("exec").arg("--root").arg(&service.root);
    if exec.stdin {
        command.arg("--interactive");
    }
    for env in &exec.env {
        command.args(["--env", env]);
    }
    if !exec.user.is_empty() {
        command.args(["--user", &exec.user]);
    }
    if !exec.workdir.is_empty() {
        command.args(["--workdir", &exec.workdir]);
    }
    if exec.privileged {
        command.arg("--privileged");
    }
    if exec.tty {
        command.arg("--tty");
    }
    command
        .arg("--")
        .arg(&exec.container)
        .args(&exec.command)
        .env_clear();
    Ok(command)
}

// ANCHOR: start
/// `POST /exec/{id}/start` (`{"Detach": false}`): hijacks the connection and runs the exec,
/// its stdout and stderr to the client in frames, the client's bytes to its stdin.
pub fn start(
    service: &Service,
    conn: &mut Conn,
    request: &Request,
    reader: &mut Reader,
    id: &str,
) -> Reply {
    let exec = lookup(service, id)?;
    if exec.running || exec.exit_code.is_some() {
        return Err(ApiError::new(
            409,
            format!("exec {id} has already run: create another"),
        ));
    }
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let detach = body.get("Detach").and_then(Value::as_bool).unwrap_or(false);
    let mut command = helper(service, &exec)?;
    if exec.tty && !detach {
        return start_terminal(service, conn, reader, id, command, exec.stdin);
    }
    let pipe = |wanted: bool| {
        if wanted {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    command
        .stdin(pipe(exec.stdin && !detach))
        .stdout(pipe(exec.stdout && !detach))
        .stderr(pipe(exec.stderr && !detach));
    let mut child = command
        .spawn()
        .map_err(|e| ApiError::new(500, format!("start skiff exec: {e}")))?;
    update(&service.execs, id, |e| {
        e.running = true;
        e.pid = child.id();
    });
    if detach {
        // Left to run; a thread of its own waits for it and notes how it ended.
        let execs = service.execs.clone();
        let id = id.to_string();
        std::thread::spawn(move || {
            let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(126);
            update(&execs, &id, |e| {
                e.running = false;
                e.exit_code = Some(code);
            });
        });
        return super::empty(conn, request, 200);
    }
    http::hijack(conn, true)?;
    let out = Arc::new(Mutex::new(conn.try_clone()?));
    let mut copiers = Vec::new();
    for (stream, frame) in [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            kind::STDOUT,
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            kind::STDERR,
        ),
    ] {
        let Some(mut stream) = stream else {
            continue;
        };
        let out = out.clone();
        copiers.push(std::thread::spawn(move || {
            let mut buffer = vec![0u8; 32 * 1024];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let Ok(mut conn) = out.lock() else {
                    break;
                };
                if attach::write_frame(&mut *conn, frame, &buffer[..n]).is_err() {
                    break;
                }
            }
        }));
    }
    if let Some(mut stdin) = child.stdin.take() {
        let early = reader.take_buffered();
        let mut input = conn.try_clone()?;
        std::thread::spawn(move || {
            if stdin.write_all(&early).is_err() {
                return;
            }
            let mut buffer = vec![0u8; 32 * 1024];
            while let Ok(n) = input.read(&mut buffer) {
                if n == 0 || stdin.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            // Dropping stdin closes it: the command reads its end.
        });
    }
    for copier in copiers {
        let _ = copier.join();
    }
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(126);
    update(&service.execs, id, |e| {
        e.running = false;
        e.exit_code = Some(code);
    });
    let _ = conn.shutdown(std::net::Shutdown::Both);
    Ok(Next::Close)
}
// ANCHOR_END: start

// ANCHOR: terminal
/// [`start`] with a terminal: the helper's stdio is the slave side of a new terminal, which is
/// also its controlling terminal; the client gets the master side's bytes, raw.
fn start_terminal(
    service: &Service,
    conn: &mut Conn,
    reader: &mut Reader,
    id: &str,
    mut command: Command,
    stdin: bool,
) -> Reply {
    let pty = nix::pty::openpty(None, None)
        .map_err(|e| ApiError::new(500, format!("make a terminal for exec {id}: {e}")))?;
    let slave = pty.slave;
    command
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: between fork and exec the closure makes two system calls on descriptor 0, the
    // terminal just put there: no allocation, no lock.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| ApiError::new(500, format!("start skiff exec: {e}")))?;
    // Our copies of the slave go with the command: the master reads end-of-file (EIO) once
    // the helper and its children have closed theirs.
    drop(command);
    let master = Arc::new(pty.master);
    update(&service.execs, id, |e| {
        e.running = true;
        e.pid = child.id();
        e.master = Some(master.clone());
    });
    http::hijack(conn, false)?;
    let mut from_terminal = File::from(master.try_clone()?);
    let mut out = conn.try_clone()?;
    let copier = std::thread::spawn(move || {
        let mut buffer = vec![0u8; 32 * 1024];
        while let Ok(n) = from_terminal.read(&mut buffer) {
            if n == 0 || out.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
    });
    if stdin {
        let early = reader.take_buffered();
        let mut to_terminal = File::from(master.try_clone()?);
        let mut input = conn.try_clone()?;
        std::thread::spawn(move || {
            if to_terminal.write_all(&early).is_err() {
                return;
            }
            let mut buffer = vec![0u8; 32 * 1024];
            while let Ok(n) = input.read(&mut buffer) {
                if n == 0 || to_terminal.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        });
    }
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(126);
    let _ = copier.join();
    update(&service.execs, id, |e| {
        e.running = false;
        e.exit_code = Some(code);
        e.master = None;
    });
    let _ = conn.shutdown(std::net::Shutdown::Both);
    Ok(Next::Close)
}
// ANCHOR_END: terminal

/// `POST /exec/{id}/resize?h=ROWS&w=COLS`: the size of the exec's terminal.
pub fn resize(service: &Service, conn: &mut Conn, request: &Request, id: &str) -> Reply {
    let exec = lookup(service, id)?;
    let (rows, cols) = request.terminal_size()?;
    let Some(master) = exec.master else {
        return Err(ApiError::new(
            409,
            format!("exec {id} has no terminal running"),
        ));
    };
    crate::stdio::resize(&master, rows, cols);
    super::empty(conn, request, 200)
}

/// `GET /exec/{id}/json`: whether it runs, and its exit code once it ended.
pub fn inspect(service: &Service, conn: &mut Conn, request: &Request, id: &str) -> Reply {
    let exec = lookup(service, id)?;
    let (entrypoint, arguments) = exec
        .command
        .split_first()
        .map_or((String::new(), Vec::new()), |(first, rest)| {
            (first.clone(), rest.to_vec())
        });
    let body = json!({
        "ID": id,
        "Running": exec.running,
        "ExitCode": exec.exit_code,
        "ProcessConfig": {
            "tty": exec.tty,
            "entrypoint": entrypoint,
            "arguments": arguments,
            "privileged": exec.privileged,
            "user": exec.user,
        },
        "OpenStdin": exec.stdin,
        "OpenStderr": exec.stderr,
        "OpenStdout": exec.stdout,
        "CanRemove": false,
        "ContainerID": exec.container,
        "DetachKeys": "",
        "Pid": exec.pid,
    });
    super::json(conn, request, 200, &body)
}
