//! `skiff system service` driven by Docker's own clients: the real `docker` CLI (Debian's
//! docker.io, 20.10, with no dockerd anywhere) and, where it is installed, the Python SDK,
//! against a service on a socket of a private store. What `docker run` does there must be what
//! it does against dockerd: the output, the exit code, `--rm` leaving nothing, and a container
//! started through the API visible to the skiff CLI on the same store.
//!
//! The containers have no network (`--network none`): the tests create no bridge on the host.
//! Root only (containers need it), skipped with the reason printed otherwise, as when the
//! docker CLI is not installed.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SKIFF: &str = env!("CARGO_BIN_EXE_skiff");

/// A service started by a test, stopped (SIGTERM, then SIGKILL) when the test ends, however it
/// ends; its store and socket are removed with the temporary directory.
struct Service {
    child: Child,
    socket: PathBuf,
    root: PathBuf,
    dir: tempfile::TempDir,
}

impl Service {
    /// A service on `{tmp}/api.sock`, over a store where the lab image is loaded.
    fn start(time: u32) -> Service {
        Service::start_from(Path::new(SKIFF), time)
    }

    /// [`Service::start`] with the service run from `binary`.
    fn start_from(binary: &Path, time: u32) -> Service {
        let dir = tempfile::Builder::new()
            .prefix("skiff-api-")
            .tempdir()
            .expect("a temporary directory");
        let root = dir.path().join("store");
        let fixtures = labs::fixtures().expect("the lab fixtures");
        let tar = &fixtures.extra["image_tar"];
        let load = skiff(&root, &["load", "-q", "-i", tar]);
        assert!(load.status.success(), "load the lab image: {load:?}");
        let socket = dir.path().join("api.sock");
        let child = Command::new(binary)
            .args(["system", "service", "--root"])
            .arg(&root)
            .args(["--time", &time.to_string()])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .spawn()
            .expect("start skiff system service");
        let service = Service {
            child,
            socket,
            root,
            dir,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&service.socket).is_err() {
            assert!(Instant::now() < until, "the service never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        service
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever a failed test left running: removed with the store.
        let left = skiff(&self.root, &["ps", "-aq", "--no-trunc"]);
        for id in String::from_utf8_lossy(&left.stdout).split_whitespace() {
            let _ = skiff(&self.root, &["rm", "-f", id]);
        }
        // And the networks it made: their bridges and NAT rules are the host's, not the store's.
        let networks = skiff(
            &self.root,
            &["network", "ls", "-q", "--filter", "type=custom"],
        );
        for id in String::from_utf8_lossy(&networks.stdout).split_whitespace() {
            let _ = skiff(&self.root, &["network", "rm", id]);
        }
    }
}

fn skiff(root: &Path, args: &[&str]) -> Output {
    Command::new(SKIFF)
        .args(args)
        .env("SKIFF_ROOT", root)
        .output()
        .expect("run skiff")
}

/// Runs `command` with `input` on its stdin, killing it after `limit`: a client that hangs
/// fails the test, not the run.
fn output_within(mut command: Command, input: &[u8], limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).expect("write the client's stdin");
    }
    let until = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("the client's output");
        }
        if Instant::now() > until {
            let _ = child.kill();
            let output = child.wait_with_output().expect("the client's output");
            panic!("{command:?} did not end within {limit:?}: {output:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Docker's CLI: Debian's 20.10 first (what the API version is chosen for), else any.
fn docker_cli() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.exists() {
        return Some(debian);
    }
    on_path("docker")
}

/// The first `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
}

fn docker(service: &Service, cli: &Path, args: &[&str]) -> Output {
    docker_with_input(service, cli, args, b"")
}

fn docker_with_input(service: &Service, cli: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut command = Command::new(cli);
    command
        .args(args)
        .env("DOCKER_HOST", service.host())
        // Nothing of the user's configuration, and none written.
        .env("DOCKER_CONFIG", service.dir.path().join("docker-config"));
    output_within(command, input, Duration::from_secs(60))
}

/// `docker run FLAGS --network none skiff-lab COMMAND`: the tests' containers have no network.
fn run_args<'a>(flags: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend(["--network", "none", "skiff-lab"]);
    args.extend_from_slice(command);
    args
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The docker CLI, when a test can drive it here; `None` (the reason printed) when not.
fn docker_or_skip() -> Option<PathBuf> {
    if let Some(reason) = cannot_run() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let cli = docker_cli();
    if cli.is_none() {
        eprintln!("skipped: no docker CLI (Debian's docker.io provides it)");
    }
    cli
}

/// Why a test cannot run here, if it cannot.
fn cannot_run() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        return Some("containers need root");
    }
    None
}

/// What the host holds of a container: mount lines naming the store or the id, and cgroup
/// directories named after the id.
fn host_traces(root: &Path, ids: &[String]) -> Vec<String> {
    let mut traces: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|line| {
            line.contains(&*root.to_string_lossy()) || ids.iter().any(|id| line.contains(id))
        })
        .map(str::to_string)
        .collect();
    let hierarchies = std::fs::read_dir("/sys/fs/cgroup")
        .map(|dir| dir.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    for hierarchy in hierarchies.iter().chain([&PathBuf::from("/sys/fs/cgroup")]) {
        for id in ids {
            let path = hierarchy.join("skiff").join(id);
            if path.exists() {
                traces.push(path.display().to_string());
            }
        }
    }
    traces
}

#[test]
fn the_docker_cli_runs_containers_through_the_service() {
    if let Some(reason) = cannot_run() {
        eprintln!("skipped: {reason}");
        return;
    }
    let Some(cli) = docker_cli() else {
        eprintln!("skipped: no docker CLI installed (Debian's docker.io provides it)");
        return;
    };
    let service = Service::start(0);
    let before = host_traces(&service.root, &[]);
    assert!(before.is_empty(), "a fresh store has traces: {before:?}");

    // The first request of every command: _ping, then the version the two agree on.
    let version = docker(&service, &cli, &["version"]);
    assert!(version.status.success(), "docker version: {version:?}");
    let out = text(&version.stdout);
    assert!(out.contains("skiff Engine"), "{out}");
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
    assert!(out.contains("API version:      1.41"), "{out}");

    let images = docker(&service, &cli, &["images"]);
    assert!(text(&images.stdout).contains("skiff-lab"), "{images:?}");

    // create, attach, wait (condition=removed), start: the output, the code, nothing left.
    let run = docker(&service, &cli, &run_args(&["--rm"], &["/bin/echo", "hi"]));
    assert_eq!(text(&run.stdout), "hi\n", "{run:?}");
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let all = docker(&service, &cli, &["ps", "-aq"]);
    assert_eq!(text(&all.stdout), "", "run --rm left a container");

    // -i: the client's stdin reaches the container through the hijacked connection, and its
    // end (the client's half-close) ends the container's stdin.
    let args = run_args(&["--rm", "-i"], &["/bin/cat"]);
    let cat = docker_with_input(&service, &cli, &args, b"piped in\n");
    assert_eq!(text(&cat.stdout), "piped in\n", "{cat:?}");
    assert_eq!(cat.status.code(), Some(0), "{cat:?}");

    // A newer docker CLI (on PATH beside Debian's) agrees on 1.41 and runs the same way.
    if let Some(newer) =
        on_path("docker").filter(|newer| newer.canonicalize().ok() != cli.canonicalize().ok())
    {
        let run = docker(&service, &newer, &run_args(&["--rm"], &["/bin/echo", "hi"]));
        assert_eq!(text(&run.stdout), "hi\n", "{} {run:?}", newer.display());
    }

    // The exit code comes back through wait; stderr through its own frames.
    let command = ["/bin/sh", "-c", "echo to-err >&2; exit 3"];
    let code = docker(
        &service,
        &cli,
        &run_args(&["--name", "api-three"], &command),
    );
    assert_eq!(code.status.code(), Some(3), "{code:?}");
    assert_eq!(text(&code.stderr), "to-err\n");
    assert_eq!(text(&code.stdout), "");
    // The journal the monitors write, streamed as Docker's events. The CLI sends whole
    // seconds: an `--until` a second ahead takes in what happened this second.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() + 1).to_string())
        .expect("a clock after 1970");
    let args = [
        "events",
        "--since",
        "5m",
        "--until",
        &until,
        "--filter",
        "container=api-three",
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}",
    ];
    let events = docker(&service, &cli, &args);
    assert!(text(&events.stdout).contains("die 3\n"), "{events:?}");

    // In the background: the skiff CLI on the same store sees it, and its output is logged.
    let command = ["/bin/sh", "-c", "echo up; sleep 100"];
    let detached = docker(
        &service,
        &cli,
        &run_args(&["-d", "--name", "api-sleeper"], &command),
    );
    assert!(detached.status.success(), "{detached:?}");
    let id = text(&detached.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the id: {detached:?}");
    let ps = skiff(&service.root, &["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        text(&ps.stdout).starts_with("api-sleeper Up"),
        "skiff ps: {ps:?}"
    );
    let listed = docker(&service, &cli, &["ps", "--format", "{{.Names}}"]);
    assert_eq!(text(&listed.stdout), "api-sleeper\n");
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = docker(&service, &cli, &["logs", "api-sleeper"]);
        if text(&logs.stdout) == "up\n" {
            break;
        }
        assert!(Instant::now() < until, "docker logs: {logs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let state = docker(
        &service,
        &cli,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.Name}}",
            "api-sleeper",
        ],
    );
    assert_eq!(text(&state.stdout), "running /api-sleeper\n");
    assert!(!host_traces(&service.root, std::slice::from_ref(&id)).is_empty());
    let top = docker(&service, &cli, &["top", "api-sleeper"]);
    assert!(text(&top.stdout).contains("sleep 100"), "{top:?}");
    let paused = docker(&service, &cli, &["pause", "api-sleeper"]);
    assert!(paused.status.success(), "{paused:?}");
    let status = docker(&service, &cli, &["ps", "--format", "{{.Status}}"]);
    assert!(text(&status.stdout).ends_with("(Paused)\n"), "{status:?}");
    let thawed = docker(&service, &cli, &["unpause", "api-sleeper"]);
    assert!(thawed.status.success(), "{thawed:?}");
    // exec: a helper process's streams in frames, its exit code through exec inspect.
    let args = [
        "exec",
        "api-sleeper",
        "/bin/sh",
        "-c",
        "echo in; echo err >&2; exit 7",
    ];
    let exec = docker(&service, &cli, &args);
    assert_eq!(exec.status.code(), Some(7), "{exec:?}");
    assert_eq!(
        (text(&exec.stdout), text(&exec.stderr)),
        ("in\n".into(), "err\n".into())
    );
    let exec = docker_with_input(
        &service,
        &cli,
        &["exec", "-i", "api-sleeper", "cat"],
        b"x\n",
    );
    assert_eq!(text(&exec.stdout), "x\n", "{exec:?}");
    // exec -t: a terminal (the service's, then the container's), raw bytes, no frames.
    let args = ["exec", "-t", "api-sleeper", "/bin/sh", "-c", "tty; exit 4"];
    let exec = docker(&service, &cli, &args);
    assert_eq!(exec.status.code(), Some(4), "{exec:?}");
    assert!(text(&exec.stdout).starts_with("/dev/pts/"), "{exec:?}");

    // A running container is not removed without -f (409), and is with it, wholly.
    let refused = docker(&service, &cli, &["rm", "api-sleeper"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("You cannot remove a running container"));
    let removed = docker(&service, &cli, &["rm", "-f", "api-sleeper", "api-three"]);
    assert!(removed.status.success(), "{removed:?}");
    let all = skiff(&service.root, &["ps", "-aq"]);
    assert_eq!(text(&all.stdout), "", "rm -f left a container");
    let traces = host_traces(&service.root, &[id]);
    assert!(traces.is_empty(), "rm -f left on the host: {traces:?}");

    let missing = docker(
        &service,
        &cli,
        &["inspect", "--type", "container", "nosuch"],
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("No such container: nosuch"));
}

/// One request on a fresh connection; the status and the body.
fn request(socket: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = UnixStream::connect(socket).expect("connect to the service");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: skiff\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send the request");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // Up to the end of the first answer: the server keeps the connection open.
    loop {
        let n = stream.read(&mut buffer).unwrap_or(0);
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|l| l.trim().parse::<usize>().ok());
            if length.is_some_and(|l| rest.len() >= l) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn bad_requests_get_dockers_statuses_and_messages() {
    if let Some(reason) = cannot_run() {
        eprintln!("skipped: {reason}");
        return;
    }
    let service = Service::start(0);
    let socket = &service.socket;
    let (status, body) = request(socket, "GET", "/v1.41/containers/nosuch/json", "");
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"message":"No such container: nosuch"}"#)
    );
    let (status, body) = request(socket, "POST", "/containers/create", "{not json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid JSON"), "{body}");
    let (status, body) = request(
        socket,
        "POST",
        "/containers/create",
        r#"{"Image":"absent"}"#,
    );
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"message":"No such image: absent"}"#)
    );
    let config = r#"{"Image":"skiff-lab","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}}"#;
    let (status, body) = request(socket, "POST", "/containers/create?name=api-twice", config);
    assert_eq!(status, 201, "{body}");
    let (status, body) = request(socket, "POST", "/containers/create?name=api-twice", config);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("is already in use"), "{body}");
    let (status, body) = request(socket, "POST", "/containers/api-twice/kill", "");
    assert_eq!(status, 409, "{body}");
    let (status, _) = request(socket, "DELETE", "/v1.41/containers/api-twice", "");
    assert_eq!(status, 204);
    let (status, body) = request(socket, "GET", "/v1.41/_ping", "");
    assert_eq!((status, body.as_str()), (200, "OK"));
}

#[test]
fn an_idle_service_leaves_after_its_time_and_removes_its_socket() {
    if let Some(reason) = cannot_run() {
        eprintln!("skipped: {reason}");
        return;
    }
    let mut service = Service::start(1);
    // Root's, and the group's (`skiff` where there is one): the socket is root on this host.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&service.socket)
            .expect("the socket")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o660, "the socket's mode is {mode:o}");
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Ok(Some(status)) = service.child.try_wait() {
            break status;
        }
        assert!(Instant::now() < until, "--time 1 never ended the service");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert!(!service.socket.exists(), "the socket was left behind");
}

#[test]
fn the_python_sdk_runs_a_container_and_reads_its_output() {
    if let Some(reason) = cannot_run() {
        eprintln!("skipped: {reason}");
        return;
    }
    let has_sdk = Command::new("python3")
        .args(["-c", "import docker"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        eprintln!("skipped: the Python docker SDK is not installed (Debian's python3-docker)");
        return;
    }
    let service = Service::start(0);
    let script = format!(
        "import docker\n\
         client = docker.DockerClient(base_url={:?})\n\
         out = client.containers.run('skiff-lab', ['/bin/sh', '-c', 'echo from-sdk'], remove=True, network_mode='none')\n\
         print(out.decode(), end='')\n\
         print(len(client.containers.list(all=True)))\n",
        service.host()
    );
    let mut command = Command::new("python3");
    command.args(["-c", &script]);
    let output = output_within(command, b"", Duration::from_secs(60));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(text(&output.stdout), "from-sdk\n0\n");
}

#[test]
fn a_client_that_attaches_and_leaves_costs_no_thread_and_no_output() {
    if let Some(reason) = cannot_run() {
        eprintln!("skipped: {reason}");
        return;
    }
    let service = Service::start(0);
    let socket = &service.socket;
    let config = r#"{"Image":"skiff-lab","Cmd":["/bin/sh","-c","echo hi; exit 5"],"HostConfig":{"NetworkMode":"none"}}"#;
    let (status, body) = request(socket, "POST", "/containers/create?name=api-gone", config);
    assert_eq!(status, 201, "{body}");
    // Attached before the start, as docker run does, then gone before it.
    let mut attach = UnixStream::connect(socket).expect("connect to the service");
    attach
        .write_all(b"POST /containers/api-gone/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: skiff\r\nContent-Length: 0\r\n\r\n")
        .expect("send the attach");
    let mut head = [0u8; 12];
    attach.read_exact(&mut head).expect("the answer");
    assert_eq!(&head, b"HTTP/1.1 101");
    drop(attach);
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = request(socket, "POST", "/containers/api-gone/start", "");
    assert_eq!(status, 204, "{body}");
    let mut stream = UnixStream::connect(socket).expect("connect to the service");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    stream
        .write_all(
            b"POST /containers/api-gone/wait HTTP/1.1\r\nHost: skiff\r\nContent-Length: 0\r\n\r\n",
        )
        .expect("send the wait");
    let mut answer = String::new();
    let mut buffer = [0u8; 1024];
    while !answer.contains("\r\n0\r\n\r\n") {
        let n = stream.read(&mut buffer).expect("the wait's answer");
        assert!(n > 0, "the wait ended early: {answer}");
        answer.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
    assert!(answer.contains(r#""StatusCode":5"#), "{answer}");
    drop(stream);
    // Every connection is closed: only the accepting thread is left.
    let tasks = Path::new("/proc")
        .join(service.child.id().to_string())
        .join("task");
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let threads = std::fs::read_dir(&tasks).map_or(0, Iterator::count);
        if threads == 1 {
            break;
        }
        assert!(
            Instant::now() < until,
            "{threads} threads left in the service"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_docker_cli_manages_volumes_through_the_service() {
    let Some(cli) = docker_or_skip() else {
        return;
    };
    let service = Service::start(0);
    let create = docker(
        &service,
        &cli,
        &["volume", "create", "--label", "lab=api", "api-data"],
    );
    assert!(create.status.success(), "{create:?}");
    assert_eq!(text(&create.stdout).trim(), "api-data");
    let other = docker(&service, &cli, &["volume", "create", "api-other"]);
    assert!(other.status.success(), "{other:?}");

    // The filter is the service's: only the labelled one passes.
    let listed = docker(
        &service,
        &cli,
        &["volume", "ls", "-q", "--filter", "label=lab=api"],
    );
    assert!(listed.status.success(), "{listed:?}");
    assert_eq!(text(&listed.stdout), "api-data\n");
    // The skiff CLI on the same store sees both.
    let local = skiff(&service.root, &["volume", "ls", "-q"]);
    assert_eq!(text(&local.stdout), "api-data\napi-other\n", "{local:?}");

    let inspect = docker(
        &service,
        &cli,
        &[
            "volume",
            "inspect",
            "--format",
            "{{.Mountpoint}} {{.Labels.lab}}",
            "api-data",
        ],
    );
    let expected = format!(
        "{} api\n",
        service.root.join("volumes/api-data/_data").display()
    );
    assert_eq!(text(&inspect.stdout), expected, "{inspect:?}");

    // In use by a running container: 409, Docker's "volume is in use".
    let command = ["/bin/sh", "-c", "echo kept > /data/f; sleep 100"];
    let user = docker(
        &service,
        &cli,
        &run_args(
            &["-d", "--name", "api-volume-user", "-v", "api-data:/data"],
            &command,
        ),
    );
    assert!(user.status.success(), "{user:?}");
    let until = Instant::now() + Duration::from_secs(10);
    let file = service.root.join("volumes/api-data/_data/f");
    while !file.exists() {
        assert!(
            Instant::now() < until,
            "the container never wrote to its volume"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = request(&service.socket, "DELETE", "/v1.41/volumes/api-data", "");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("volume is in use"), "{body}");
    let gone = docker(&service, &cli, &["rm", "-f", "api-volume-user"]);
    assert!(gone.status.success(), "{gone:?}");

    // Unused now: prune (API 1.41's rule) takes both, named ones too.
    let pruned = docker(&service, &cli, &["volume", "prune", "-f"]);
    assert!(pruned.status.success(), "{pruned:?}");
    let said = text(&pruned.stdout);
    assert!(
        said.contains("api-data") && said.contains("api-other"),
        "{said}"
    );
    assert!(!service.root.join("volumes/api-data").exists());
    let (status, body) = request(&service.socket, "GET", "/v1.41/volumes/api-data", "");
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"message":"no such volume: api-data"}"#)
    );
    let missing = docker(&service, &cli, &["volume", "rm", "api-data"]);
    assert!(!missing.status.success(), "{missing:?}");
    // The CLI words a 404 itself.
    assert!(
        text(&missing.stderr).contains("No such volume: api-data"),
        "{missing:?}"
    );
    let (status, body) = request(
        &service.socket,
        "POST",
        "/v1.41/volumes/create",
        r#"{"Name":"api-x","Driver":"nfs"}"#,
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn the_docker_cli_manages_networks_through_the_service() {
    let Some(cli) = docker_or_skip() else {
        return;
    };
    let service = Service::start(0);
    let listed = docker(
        &service,
        &cli,
        &["network", "ls", "--format", "{{.Name}} {{.Driver}}"],
    );
    assert!(listed.status.success(), "{listed:?}");
    let mut names: Vec<String> = text(&listed.stdout).lines().map(str::to_string).collect();
    names.sort();
    assert_eq!(
        names,
        ["bridge bridge", "host host", "none null"],
        "{listed:?}"
    );
    let filtered = docker(
        &service,
        &cli,
        &[
            "network",
            "ls",
            "--filter",
            "name=host",
            "--format",
            "{{.Name}}",
        ],
    );
    assert_eq!(text(&filtered.stdout), "host\n", "{filtered:?}");
    // The same record the skiff CLI reads.
    let local = skiff(&service.root, &["network", "inspect", "bridge"]);
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).expect("skiff's JSON");
    let inspect = docker(
        &service,
        &cli,
        &[
            "network",
            "inspect",
            "--format",
            "{{.Id}} {{.Scope}}",
            "bridge",
        ],
    );
    assert_eq!(
        text(&inspect.stdout),
        format!("{} local\n", local[0]["Id"].as_str().unwrap_or("?")),
        "{inspect:?}"
    );

    // A network of our own, in 10.218.0.0/16, named with this process's id.
    let name = format!("api-net-{}", std::process::id());
    // Even third octets here, odd ones for the compose test: the two run side by side.
    let subnet = format!("10.218.{}.0/24", std::process::id() % 120 * 2 + 2);
    let args = [
        "network", "create", "--subnet", &subnet, "--label", "lab=api", &name,
    ];
    let created = docker(&service, &cli, &args);
    assert!(created.status.success(), "{created:?}");
    let id = text(&created.stdout).trim().to_string();
    let local = skiff(&service.root, &["network", "inspect", &name]);
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).expect("skiff's JSON");
    assert_eq!(local[0]["Id"].as_str(), Some(id.as_str()), "{local}");
    assert_eq!(
        local[0]["IPAM"]["Config"][0]["Subnet"].as_str(),
        Some(subnet.as_str())
    );
    assert_eq!(local[0]["Labels"]["lab"].as_str(), Some("api"));
    let again = docker(&service, &cli, &args);
    assert!(!again.status.success(), "{again:?}");
    assert!(text(&again.stderr).contains("already exists"), "{again:?}");

    // A container on it under an alias (the create's NetworkingConfig), reached by that name
    // through the network's DNS by another container.
    let web = docker(
        &service,
        &cli,
        &[
            "run",
            "-d",
            "--name",
            "api-web",
            "--network",
            &name,
            "--network-alias",
            "api-alias",
            "skiff-lab",
            "/bin/probe",
            "serve",
            "80",
        ],
    );
    assert!(web.status.success(), "{web:?}");
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = docker(&service, &cli, &["logs", "api-web"]);
        if text(&logs.stdout).contains("listening") || text(&logs.stderr).contains("listening") {
            break;
        }
        assert!(
            Instant::now() < until,
            "the server never listened: {logs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let client = docker(
        &service,
        &cli,
        &[
            "run",
            "--rm",
            "--network",
            &name,
            "skiff-lab",
            "/bin/probe",
            "connect",
            "api-alias:80",
            "hi-alias",
        ],
    );
    assert!(client.status.success(), "{client:?}");
    assert!(text(&client.stdout).contains("hi-alias"), "{client:?}");
    let in_use = docker(&service, &cli, &["network", "rm", &name]);
    assert!(!in_use.status.success(), "removed while in use: {in_use:?}");
    let stopped = docker(&service, &cli, &["rm", "-f", "api-web"]);
    assert!(stopped.status.success(), "{stopped:?}");

    let (status, body) = request(&service.socket, "DELETE", "/v1.41/networks/bridge", "");
    assert_eq!(status, 403, "{body}");
    let removed = docker(&service, &cli, &["network", "rm", &name]);
    assert!(removed.status.success(), "{removed:?}");
    let gone = skiff(&service.root, &["network", "inspect", &name]);
    assert!(
        !gone.status.success(),
        "the network is still there: {gone:?}"
    );

    let (status, body) = request(&service.socket, "GET", "/v1.41/networks/api-nosuch", "");
    assert_eq!(
        (status, body.as_str()),
        (404, r#"{"message":"network api-nosuch not found"}"#)
    );
}

#[test]
fn docker_compose_brings_up_a_two_service_project_and_takes_it_down() {
    if let Some(reason) = cannot_run() {
        eprintln!("skipped: {reason}");
        return;
    }
    let Some(compose) = on_path("docker-compose") else {
        eprintln!("skipped: no docker-compose (Debian's docker-compose 1.29 provides it)");
        return;
    };
    let service = Service::start(0);
    let project = format!("apic{}", std::process::id());
    let dir = service.dir.path().join("project");
    std::fs::create_dir(&dir).expect("the project's directory");
    // The client reaches the server by its service's name, on the project's network.
    let file = format!(
        r#"version: "3.7"
services:
  web:
    image: skiff-lab
    command: ["/bin/probe", "serve", "80"]
    volumes: ["data:/data"]
  client:
    image: skiff-lab
    command: ["/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do /bin/probe connect web:80 hi-compose && break; sleep 0.5; done; sleep 100"]
volumes:
  data: {{}}
networks:
  default:
    ipam:
      config: [{{subnet: 10.218.{}.0/24}}]
"#,
        std::process::id() % 120 * 2 + 3
    );
    std::fs::write(dir.join("docker-compose.yml"), file).expect("write the compose file");
    let run = |args: &[&str]| {
        let mut command = Command::new(&compose);
        command
            .args(["-p", &project])
            .args(args)
            .current_dir(&dir)
            .env("DOCKER_HOST", service.host())
            .env("DOCKER_CONFIG", service.dir.path().join("docker-config"));
        output_within(command, b"", Duration::from_secs(90))
    };
    // `down -v` whatever happens: the guard runs it before the service stops.
    struct Down<'a, F: Fn(&[&str]) -> Output>(&'a F);
    impl<F: Fn(&[&str]) -> Output> Drop for Down<'_, F> {
        fn drop(&mut self) {
            let _ = (self.0)(&["down", "-v", "--timeout", "1"]);
        }
    }
    let down_guard = Down(&run);

    let up = run(&["up", "-d"]);
    assert!(up.status.success(), "{up:?}");
    let ps = run(&["ps"]);
    let listed = text(&ps.stdout);
    assert!(
        listed.contains(&format!("{project}_web_1"))
            && listed.contains(&format!("{project}_client_1")),
        "{ps:?}"
    );
    assert_eq!(listed.matches(" Up ").count(), 2, "{ps:?}");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = run(&["logs", "--no-color", "client"]);
        if text(&logs.stdout).contains("hi-compose") {
            break;
        }
        assert!(
            Instant::now() < until,
            "the client never reached web: {logs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let network = skiff(
        &service.root,
        &["network", "inspect", &format!("{project}_default")],
    );
    assert!(network.status.success(), "{network:?}");
    let volume = skiff(
        &service.root,
        &["volume", "inspect", &format!("{project}_data")],
    );
    assert!(volume.status.success(), "{volume:?}");
    let ids: Vec<String> = text(&skiff(&service.root, &["ps", "-aq", "--no-trunc"]).stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");

    let down = run(&["down", "-v", "--timeout", "1"]);
    assert!(down.status.success(), "{down:?}");
    drop(down_guard);
    // Nothing left: containers, the project's network and volume, mounts, cgroups.
    let left = skiff(&service.root, &["ps", "-aq"]);
    assert_eq!(text(&left.stdout), "", "{left:?}");
    let networks = skiff(
        &service.root,
        &[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name={project}"),
        ],
    );
    assert_eq!(text(&networks.stdout), "", "{networks:?}");
    let volumes = skiff(&service.root, &["volume", "ls", "-q"]);
    assert_eq!(text(&volumes.stdout), "", "{volumes:?}");
    assert_eq!(host_traces(&service.root, &ids), Vec::<String>::new());
}

#[test]
fn the_docker_cli_tags_removes_and_prunes_images_through_the_service() {
    let Some(cli) = docker_or_skip() else {
        return;
    };
    let service = Service::start(0);
    let tagged = docker(&service, &cli, &["tag", "skiff-lab", "api-tagged:v1"]);
    assert!(tagged.status.success(), "{tagged:?}");
    // The skiff CLI on the same store sees the new name.
    let local = skiff(
        &service.root,
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    );
    assert!(text(&local.stdout).contains("api-tagged:v1\n"), "{local:?}");

    let untagged = docker(&service, &cli, &["rmi", "api-tagged:v1"]);
    assert!(untagged.status.success(), "{untagged:?}");
    assert_eq!(text(&untagged.stdout), "Untagged: api-tagged:v1\n");
    let missing = docker(&service, &cli, &["rmi", "api-nosuch"]);
    assert!(!missing.status.success(), "{missing:?}");
    assert!(
        text(&missing.stderr).contains("No such image: api-nosuch"),
        "{missing:?}"
    );

    // An image a container uses is not removed: 409.
    let user = docker(
        &service,
        &cli,
        &["create", "--name", "api-image-user", "skiff-lab", "true"],
    );
    assert!(user.status.success(), "{user:?}");
    let (status, body) = request(&service.socket, "DELETE", "/v1.41/images/skiff-lab", "");
    assert_eq!(status, 409, "{body}");
    let pruned = docker(&service, &cli, &["image", "prune", "-af"]);
    assert!(pruned.status.success(), "{pruned:?}");
    let still = skiff(&service.root, &["images", "-q"]);
    assert!(
        !text(&still.stdout).trim().is_empty(),
        "prune took an image in use: {still:?}"
    );
    let gone = docker(&service, &cli, &["rm", "api-image-user"]);
    assert!(gone.status.success(), "{gone:?}");
    let pruned = docker(&service, &cli, &["image", "prune", "-af"]);
    assert!(pruned.status.success(), "{pruned:?}");
    assert!(
        text(&pruned.stdout).contains("deleted: sha256:"),
        "{pruned:?}"
    );
    let none = skiff(&service.root, &["images", "-q"]);
    assert_eq!(text(&none.stdout), "", "{none:?}");
}

/// `docker cp` both ways, `diff`, `export`, `stats --no-stream`, `update --memory`, `exec -d`
/// (with and without `-t`), `container prune` and `system df`: each answered by the CLI
/// command's own function behind the service, and seen by the skiff CLI on the same store.
#[test]
fn the_docker_cli_copies_inspects_and_limits_containers_through_the_service() {
    let Some(cli) = docker_or_skip() else {
        return;
    };
    let service = Service::start(0);
    let name = format!("skiff-files-{}", std::process::id());
    let run = docker(
        &service,
        &cli,
        &run_args(
            &["-d", "--name", &name],
            &[
                "sh",
                "-c",
                "echo in-container > /made; rm /bin/true; sleep 60",
            ],
        ),
    );
    assert!(run.status.success(), "docker run -d: {run:?}");

    // docker cp in: a file and a directory, read back by the container itself.
    let host = service.dir.path().join("host");
    std::fs::create_dir_all(host.join("tree/deep")).unwrap();
    std::fs::write(host.join("note.txt"), "from the host\n").unwrap();
    std::fs::write(host.join("tree/deep/leaf"), "leaf\n").unwrap();
    let target = format!("{name}:/tmp/");
    for source in ["note.txt", "tree"] {
        let cp = docker(
            &service,
            &cli,
            &["cp", &host.join(source).to_string_lossy(), &target],
        );
        assert!(cp.status.success(), "docker cp {source} in: {cp:?}");
    }
    // A file larger than any request body the service keeps in memory (16 MiB): streamed.
    let big = host.join("big");
    std::fs::write(&big, vec![7u8; 17 << 20]).unwrap();
    let cp = docker(&service, &cli, &["cp", &big.to_string_lossy(), &target]);
    assert!(cp.status.success(), "docker cp of 17 MiB in: {cp:?}");
    let size = skiff(&service.root, &["exec", &name, "wc", "-c", "/tmp/big"]);
    assert!(
        text(&size.stdout).starts_with(&format!("{} ", 17 << 20)),
        "{size:?}"
    );
    let cat = skiff(
        &service.root,
        &["exec", &name, "cat", "/tmp/note.txt", "/tmp/tree/deep/leaf"],
    );
    assert_eq!(text(&cat.stdout), "from the host\nleaf\n", "{cat:?}");

    // docker cp out: a file the container wrote, and a directory, by the stat header's rules.
    let out = service.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let cp = docker(
        &service,
        &cli,
        &["cp", &format!("{name}:/made"), &out.to_string_lossy()],
    );
    assert!(cp.status.success(), "docker cp out: {cp:?}");
    assert_eq!(
        std::fs::read_to_string(out.join("made")).unwrap(),
        "in-container\n"
    );
    let copied = out.join("copied-tree");
    let cp = docker(
        &service,
        &cli,
        &[
            "cp",
            &format!("{name}:/tmp/tree"),
            &copied.to_string_lossy(),
        ],
    );
    assert!(cp.status.success(), "docker cp a directory out: {cp:?}");
    assert_eq!(
        std::fs::read_to_string(copied.join("deep/leaf")).unwrap(),
        "leaf\n"
    );
    let missing = docker(
        &service,
        &cli,
        &["cp", &format!("{name}:/no/such"), &out.to_string_lossy()],
    );
    assert!(!missing.status.success());
    // A 404 on the archive, which the docker CLI words as its own.
    assert!(
        text(&missing.stderr).contains("No such container:path"),
        "{missing:?}"
    );

    // docker diff: what the container added and deleted.
    let diff = docker(&service, &cli, &["diff", &name]);
    let lines = text(&diff.stdout);
    assert!(diff.status.success(), "docker diff: {diff:?}");
    for line in ["A /made", "D /bin/true", "A /tmp/note.txt"] {
        assert!(
            lines.lines().any(|l| l == line),
            "no {line:?} in docker diff:\n{lines}"
        );
    }

    // docker export | tar t: the file system with the container's changes in it.
    // (To a file: the helper reads a client's output only once it has ended.)
    let exported = service.dir.path().join("export.tar");
    let export = docker(
        &service,
        &cli,
        &["export", "-o", &exported.to_string_lossy(), &name],
    );
    assert!(export.status.success(), "docker export: {export:?}");
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&exported).unwrap());
    for entry in archive.entries().expect("export is a tar") {
        names.push(
            entry
                .unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
    }
    assert!(names.iter().any(|n| n == "made"), "export lacks /made");
    assert!(names.iter().any(|n| n == "bin/sh"), "export lacks bin/sh");
    assert!(
        !names.iter().any(|n| n == "bin/true"),
        "export has the deleted bin/true"
    );

    // docker update --memory, then docker stats --no-stream reading the new limit.
    let update = docker(&service, &cli, &["update", "--memory", "48m", &name]);
    assert!(update.status.success(), "docker update: {update:?}");
    let stats = docker(
        &service,
        &cli,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.MemUsage}}|{{.PIDs}}",
            &name,
        ],
    );
    let line = text(&stats.stdout);
    assert!(stats.status.success(), "docker stats: {stats:?}");
    let (memory, pids) = line.trim().split_once('|').expect("MemUsage|PIDs");
    assert!(
        memory.ends_with("/ 48MiB"),
        "the new limit is not read: {line}"
    );
    assert!(!memory.starts_with("0B"), "no memory in use: {line}");
    assert!(pids.parse::<u32>().unwrap_or(0) >= 1, "no process: {line}");

    // docker exec -d, with and without a terminal: it runs on after the client returns.
    for flags in [&["-d"][..], &["-d", "-t"][..]] {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        let file = format!("/tmp/detached{}", flags.len());
        let command = format!("sleep 1; echo done > {file}");
        args.extend([name.as_str(), "sh", "-c", command.as_str()]);
        let started = Instant::now();
        let exec = docker(&service, &cli, &args);
        assert!(exec.status.success(), "docker exec {flags:?}: {exec:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1) || cfg!(debug_assertions),
            "exec -d waited"
        );
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let cat = skiff(&service.root, &["exec", &name, "cat", &file]);
            if text(&cat.stdout) == "done\n" {
                break;
            }
            assert!(
                Instant::now() < until,
                "docker exec {flags:?} never ran: {cat:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // docker container prune: the stopped ones go (those its filter admits), the running one
    // stays.
    let stopped = format!("{name}-stopped");
    let done = docker(&service, &cli, &run_args(&["--name", &stopped], &["true"]));
    assert!(done.status.success(), "{done:?}");
    let kept = format!("{name}-kept");
    let done = docker(
        &service,
        &cli,
        &run_args(&["--name", &kept, "--label", "keep=1"], &["true"]),
    );
    assert!(done.status.success(), "{done:?}");
    let prune = docker(
        &service,
        &cli,
        &["container", "prune", "-f", "--filter", "label!=keep"],
    );
    assert!(
        prune.status.success(),
        "docker container prune --filter: {prune:?}"
    );
    let listed = text(&skiff(&service.root, &["ps", "-a", "--format", "{{.Names}}"]).stdout);
    assert!(
        !listed.contains(&stopped) && listed.contains(&kept),
        "after prune --filter: {listed}"
    );
    let prune = docker(&service, &cli, &["container", "prune", "-f"]);
    assert!(prune.status.success(), "docker container prune: {prune:?}");
    let listed = text(&skiff(&service.root, &["ps", "-a", "--format", "{{.Names}}"]).stdout);
    assert_eq!(listed.trim(), name, "after prune: {listed}");

    // docker system df: one image, one container, active.
    let df = docker(
        &service,
        &cli,
        &[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}}",
        ],
    );
    let table = text(&df.stdout);
    assert!(df.status.success(), "docker system df: {df:?}");
    assert!(table.contains("Images 1 1"), "{table}");
    assert!(table.contains("Containers 1 1"), "{table}");
    // Docker's statuses and words for what the new endpoints refuse.
    let socket = &service.socket;
    let refusals = [
        (
            "GET",
            "/containers/nosuch/archive?path=/etc".to_string(),
            "",
            404,
            "No such container: nosuch",
        ),
        (
            "GET",
            format!("/containers/{name}/archive"),
            "",
            400,
            "path cannot be empty",
        ),
        (
            "PUT",
            format!("/containers/{name}/archive?path=/made"),
            "",
            400,
            "not a directory",
        ),
        (
            "GET",
            "/containers/nosuch/stats?stream=0".to_string(),
            "",
            404,
            "No such container: nosuch",
        ),
        (
            "POST",
            format!("/containers/{name}/update"),
            "{",
            400,
            "invalid JSON",
        ),
        (
            "POST",
            "/networks/nosuch/connect".to_string(),
            &format!("{{\"Container\":\"{name}\"}}"),
            404,
            "nosuch",
        ),
    ];
    for (method, path, body, status, words) in refusals {
        let (got, answer) = request(socket, method, &path, body);
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert!(answer.contains(words), "{method} {path}: {answer}");
    }
    let rm = docker(&service, &cli, &["rm", "-f", &name]);
    assert!(rm.status.success(), "{rm:?}");
}

/// `docker network connect --alias` puts a running container on a second network, where a
/// peer reaches it by that alias; `disconnect` takes it off again; `network prune` removes
/// the networks once nothing is on them. Two bridges of the host, in 10.218.242-253.x.
#[test]
fn the_docker_cli_connects_and_disconnects_containers_through_the_service() {
    let Some(cli) = docker_or_skip() else {
        return;
    };
    let service = Service::start(0);
    let tag = std::process::id();
    let third = 242 + tag % 6 * 2;
    let (net_a, net_b) = (format!("api-conn-a-{tag}"), format!("api-conn-b-{tag}"));
    let subnet = format!("10.218.{third}.0/24");
    let create = docker(
        &service,
        &cli,
        &["network", "create", "--subnet", &subnet, &net_a],
    );
    assert!(
        create.status.success(),
        "docker network create {net_a}: {create:?}"
    );
    // The second internal, with an IP range: the rest of NetworkCreateRequest.
    let (subnet, range) = (
        format!("10.218.{}.0/24", third + 1),
        format!("10.218.{}.128/25", third + 1),
    );
    let create = docker(
        &service,
        &cli,
        &[
            "network",
            "create",
            "--internal",
            "--label",
            "prune=first",
            "--subnet",
            &subnet,
            "--ip-range",
            &range,
            &net_b,
        ],
    );
    assert!(
        create.status.success(),
        "docker network create {net_b}: {create:?}"
    );
    let inspect = docker(
        &service,
        &cli,
        &[
            "network",
            "inspect",
            "-f",
            "{{.Internal}} {{range .IPAM.Config}}{{.IPRange}}{{end}}",
            &net_b,
        ],
    );
    assert_eq!(
        text(&inspect.stdout).trim(),
        format!("true {range}"),
        "{inspect:?}"
    );
    let bad = docker(
        &service,
        &cli,
        &["network", "create", "-d", "nosuchdriver", "api-bad"],
    );
    assert!(
        text(&bad.stderr).contains("unknown network driver"),
        "{bad:?}"
    );
    let (server, client) = (format!("api-srv-{tag}"), format!("api-cli-{tag}"));
    let up = docker(
        &service,
        &cli,
        &[
            "run",
            "-d",
            "--name",
            &server,
            "--network",
            &net_b,
            "skiff-lab",
            "/bin/probe",
            "serve",
            "80",
        ],
    );
    assert!(up.status.success(), "the server: {up:?}");
    let up = docker(
        &service,
        &cli,
        &[
            "run",
            "-d",
            "--name",
            &client,
            "--network",
            &net_a,
            "skiff-lab",
            "sleep",
            "60",
        ],
    );
    assert!(up.status.success(), "the client: {up:?}");
    let reach = || {
        docker(
            &service,
            &cli,
            &[
                "exec",
                &client,
                "/bin/probe",
                "connect",
                "pal:80",
                "hi-alias",
            ],
        )
    };
    let before = reach();
    assert!(
        !before.status.success(),
        "reached pal before any connect: {before:?}"
    );

    let connect = docker(
        &service,
        &cli,
        &["network", "connect", "--alias", "pal", &net_a, &server],
    );
    assert!(
        connect.status.success(),
        "docker network connect: {connect:?}"
    );
    let reached = reach();
    assert!(
        reached.status.success() && text(&reached.stdout).contains("hi-alias"),
        "the peer is not reachable by its alias: {reached:?}"
    );
    let again = docker(&service, &cli, &["network", "connect", &net_a, &server]);
    assert!(!again.status.success(), "connected twice: {again:?}");
    assert!(text(&again.stderr).contains("already exists"), "{again:?}");

    let disconnect = docker(&service, &cli, &["network", "disconnect", &net_a, &server]);
    assert!(
        disconnect.status.success(),
        "docker network disconnect: {disconnect:?}"
    );
    let after = reach();
    assert!(
        !after.status.success(),
        "reached pal after disconnect: {after:?}"
    );
    let missing = docker(
        &service,
        &cli,
        &["network", "disconnect", &net_a, "no-such-ctr"],
    );
    assert!(
        text(&missing.stderr).contains("No such container: no-such-ctr"),
        "{missing:?}"
    );

    let rm = docker(&service, &cli, &["rm", "-f", &server, &client]);
    assert!(rm.status.success(), "{rm:?}");
    // With a label filter, only the network that has the label.
    let first = docker(
        &service,
        &cli,
        &["network", "prune", "-f", "--filter", "label=prune=first"],
    );
    assert!(
        first.status.success(),
        "docker network prune --filter: {first:?}"
    );
    let deleted = text(&first.stdout);
    assert!(
        deleted.contains(&net_b) && !deleted.contains(&net_a),
        "{deleted}"
    );
    let prune = docker(&service, &cli, &["network", "prune", "-f"]);
    assert!(prune.status.success(), "docker network prune: {prune:?}");
    let deleted = text(&prune.stdout);
    assert!(
        deleted.contains(&net_a) && !deleted.contains(&net_b),
        "{deleted}"
    );
    let left = docker(&service, &cli, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(!text(&left.stdout).contains("api-conn-"), "{left:?}");
}

/// The regression of "a rebuilt binary breaks a running service's starts": `cargo build`
/// replaces target/debug/skiff while a service runs from it; the service's /proc/self/exe then
/// reads "skiff (deleted)", and each monitor it started from that path failed. Here the
/// service runs from a hard link of skiff that is removed once it listens.
#[test]
fn a_service_whose_binary_was_replaced_still_starts_containers() {
    let Some(cli) = docker_or_skip() else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("skiff-rebuilt-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a directory next to the binary");
    let binary = dir.path().join("skiff");
    if let Err(e) = std::fs::hard_link(SKIFF, &binary) {
        eprintln!(
            "skipped: cannot link skiff into {}: {e}",
            dir.path().display()
        );
        return;
    }
    let service = Service::start_from(&binary, 0);
    std::fs::remove_file(&binary).expect("remove the service's binary");
    let run = docker(
        &service,
        &cli,
        &run_args(&["--rm"], &["echo", "started by a replaced binary"]),
    );
    assert!(
        run.status.success(),
        "docker run after the binary went: {run:?}"
    );
    assert_eq!(text(&run.stdout), "started by a replaced binary\n");
}

/// The two streams that follow a running container: `attach?logs=1` (docker-compose's `up`
/// asks for it) gives what the container wrote before the client came, from its log, then what
/// it writes after, in the multiplexed frames; `stats?stream=1` a reading a second.
#[test]
fn attach_with_logs_and_the_stats_stream_follow_a_running_container() {
    let Some(cli) = docker_or_skip() else {
        return;
    };
    let service = Service::start(0);
    let name = format!("api-replay-{}", std::process::id());
    let script = "echo early; while [ ! -e /go ]; do sleep 0.1; done; echo late; sleep 30";
    let run = docker(
        &service,
        &cli,
        &run_args(&["-d", "--name", &name], &["sh", "-c", script]),
    );
    assert!(run.status.success(), "{run:?}");
    let until = Instant::now() + Duration::from_secs(10);
    while !text(&docker(&service, &cli, &["logs", &name]).stdout).contains("early") {
        assert!(Instant::now() < until, "the container never wrote");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stream = UnixStream::connect(&service.socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /v1.41/containers/{name}/attach?logs=1&stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut read_until = |seen: &mut Vec<u8>, word: &str| {
        while !text(seen).contains(word) {
            let n = stream.read(&mut buffer).unwrap_or(0);
            assert!(n > 0, "the attach ended without {word:?}: {:?}", text(seen));
            seen.extend_from_slice(&buffer[..n]);
        }
    };
    read_until(&mut seen, "early");
    assert!(text(&seen).starts_with("HTTP/1.1 101"), "{:?}", text(&seen));
    // The log's line comes in a stdout frame: stream 1, then its length.
    let body = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        &seen[body..body + 8],
        &[1, 0, 0, 0, 0, 0, 0, 6],
        "not a stdout frame of \"early\\n\""
    );
    let exec = skiff(&service.root, &["exec", &name, "touch", "/go"]);
    assert!(exec.status.success(), "{exec:?}");
    read_until(&mut seen, "late");
    assert_eq!(text(&seen).matches("early").count(), 1, "{:?}", text(&seen));

    // The stats stream: a reading a second, each with the one before as its precpu_stats.
    let mut stream = UnixStream::connect(&service.socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /v1.41/containers/{name}/stats?stream=1 HTTP/1.1\r\nHost: d\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let readings = loop {
        let n = stream.read(&mut buffer).unwrap_or(0);
        assert!(n > 0, "the stats stream ended: {:?}", text(&got));
        got.extend_from_slice(&buffer[..n]);
        // Each reading is one JSON line in a chunk of its own.
        let lines: Vec<serde_json::Value> = text(&got)
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if lines.len() >= 2 {
            break lines;
        }
    };
    let (first, second) = (&readings[0], &readings[1]);
    assert_eq!(
        second["precpu_stats"]["system_cpu_usage"], first["cpu_stats"]["system_cpu_usage"],
        "the second reading's precpu is not the first's cpu"
    );
    assert!(
        second["cpu_stats"]["system_cpu_usage"].as_u64()
            > first["cpu_stats"]["system_cpu_usage"].as_u64()
    );
    assert!(
        second["pids_stats"]["current"].as_u64() >= Some(1),
        "{second}"
    );
    assert!(
        second["memory_stats"]["usage"].as_u64() > Some(0),
        "{second}"
    );
}
