//! `skiff -H URI`: the skiff CLI as a client of a daemon, first of skiff's own service on a
//! socket in a temporary directory, then of a real `dockerd` started on a private socket (its
//! own data root, exec root and pid file, no bridge, no iptables), where dockerd is installed.
//! The same client commands run against both: `run --rm` with its output and exit code, `run
//! -d`, `ps`, `logs`, `exec`, `stop`, `rm`, `images`, networks and volumes, and an error in
//! Docker's words. Against skiff's service, where the store is also at hand, the remote output
//! must be the local output, byte for byte.
//!
//! Containers have no network (`--network none`). Root only (containers need it); skipped with
//! the reason printed otherwise, as when dockerd cannot start here.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SKIFF: &str = env!("CARGO_BIN_EXE_skiff");
/// In the name of everything these tests make on the host.
const TAG: &str = "s20i14cli";

/// A daemon started by a test (skiff's service or dockerd), stopped with SIGTERM, then
/// SIGKILL, when the test ends, however it ends; its containers, and the `cleanup` commands'
/// objects, removed through it first.
struct Daemon {
    child: Child,
    socket: PathBuf,
    /// What to remove through the daemon before it stops.
    cleanup: Vec<Vec<String>>,
}

impl Daemon {
    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Waits for the socket to answer `/_ping`; false if it never does within `limit`.
    fn ready(&mut self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if UnixStream::connect(&self.socket).is_ok()
                && remote(&self.host(), &["version"]).status.success()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let host = self.host();
        // Every container the daemon has is the test's (its store or data root is the
        // test's own): a failed test leaves none running, named or not.
        let left = remote(&host, &["ps", "-aq", "--no-trunc"]);
        for id in text(&left.stdout).split_whitespace() {
            let _ = remote(&host, &["rm", "-f", id]);
        }
        for args in &self.cleanup {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let _ = remote(&host, &args);
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `skiff -H HOST ARGS`, killed after 60 s: a client that hangs fails the test, not the run.
fn remote(host: &str, args: &[&str]) -> Output {
    let mut command = Command::new(SKIFF);
    command.arg("-H").arg(host).args(args);
    within(command, Duration::from_secs(60))
}

/// `skiff ARGS` on the store `root`.
fn local(root: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(SKIFF);
    command
        .args(args)
        .env("SKIFF_ROOT", root)
        .env_remove("SKIFF_HOST")
        .env_remove("DOCKER_HOST");
    within(command, Duration::from_secs(60))
}

fn within(command: Command, limit: Duration) -> Output {
    within_input(command, b"", limit)
}

/// Runs `command` with `input` on its stdin (then closed), killed after `limit`.
fn within_input(mut command: Command, input: &[u8], limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start skiff");
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, input).expect("write skiff's stdin");
    }
    within_child(child, limit)
}

/// Collects `child`, killed after `limit`.
fn within_child(mut child: Child, limit: Duration) -> Output {
    let until = Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("skiff's output");
        }
        if Instant::now() > until {
            let _ = child.kill();
            let output = child.wait_with_output().expect("skiff's output");
            panic!("skiff did not end within {limit:?}: {output:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `command`, sends it SIGTERM once it printed its first line, and collects it. A
/// client that never prints is killed after 30 s (it is our child, not yet reaped: its pid
/// cannot be another process's).
fn signalled_when_ready(mut command: Command) -> Output {
    use std::io::BufRead;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start skiff");
    let stdout = child.stdout.take().expect("a stdout");
    let (lines, received) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(line);
        }
    });
    let mut seen = Vec::new();
    match received.recv_timeout(Duration::from_secs(30)) {
        Ok(first) => {
            seen.push(first);
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
                .expect("signal the client");
        }
        Err(_) => {
            let _ = child.kill();
        }
    }
    let mut output = within_child(child, Duration::from_secs(30));
    let _ = reader.join();
    seen.extend(received.try_iter());
    output.stdout = seen
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes();
    output
}

/// `skiff -H HOST ARGS` (`run -it ...`, `exec -it ...`) on a pseudo-terminal of 40 rows and
/// 100 columns: `typed` is typed once the shell's prompt shows. Returns the exit code and
/// what the terminal showed.
fn in_terminal(host: &str, args: &[&str], typed: &[u8]) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    use std::sync::{Arc, Mutex};
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("a pseudo-terminal");
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("the terminal"));
    let child = Command::new(SKIFF)
        .arg("-H")
        .arg(host)
        .args(args)
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .expect("start skiff with a terminal");
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let shown = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let shown = shown.clone();
        let mut master = master.try_clone().expect("the terminal's master");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the client and the container have closed the terminal.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown
                    .lock()
                    .expect("the screen")
                    .extend_from_slice(&buf[..n]);
            }
        })
    };
    let until = Instant::now() + Duration::from_secs(20);
    while !text(&shown.lock().expect("the screen")).contains("# ") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    master.write_all(typed).expect("type into the terminal");
    let output = within_child(child, Duration::from_secs(20));
    drop(master);
    let _ = reader.join();
    let screen = text(&shown.lock().expect("the screen"));
    (output.status.code(), screen)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn ok(output: &Output) -> String {
    assert!(output.status.success(), "failed: {output:?}");
    text(&output.stdout)
}

fn lab_image() -> PathBuf {
    let fixtures = labs::fixtures().expect("the lab fixtures");
    PathBuf::from(&fixtures.extra["image_tar"])
}

fn temp_dir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("skiff-{TAG}-{what}-"))
        .tempdir_in("/tmp")
        .expect("a temporary directory")
}

// ANCHOR: drive
/// The client commands every daemon must answer alike. `network_options` are `network
/// create`'s extra flags for this daemon.
fn drive(host: &str, network_options: &[&str]) {
    let name = format!("skiff-{TAG}-web");
    // run --rm: the output on the right streams, the container's exit code as ours.
    let run = remote(
        host,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "skiff-lab",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(run.status.code(), Some(3), "{run:?}");
    assert_eq!(text(&run.stdout), "out\n");
    assert_eq!(text(&run.stderr), "err\n");
    // run -d, then ps, logs, exec, stop, rm.
    let id = ok(&remote(
        host,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "-e",
            "GREETING=hello",
            "skiff-lab",
            "sh",
            "-c",
            "echo $GREETING; exec sleep 60",
        ],
    ));
    assert_eq!(id.trim().len(), 64, "run -d prints the id: {id:?}");
    let ps = ok(&remote(
        host,
        &["ps", "--format", "{{.Names}} {{.State}} {{.Image}}"],
    ));
    assert!(
        ps.lines().any(|l| l == format!("{name} running skiff-lab")),
        "{ps}"
    );
    let table = ok(&remote(host, &["ps"]));
    assert!(table.starts_with("CONTAINER ID   IMAGE"), "{table}");
    assert!(table.contains(&id[..12]), "{table}");
    // The log: what the container wrote, read back through the API (it may take a moment).
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = ok(&remote(host, &["logs", &name]));
        if logs == "hello\n" {
            break;
        }
        assert!(Instant::now() < until, "logs: {logs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let exec = remote(
        host,
        &["exec", &name, "sh", "-c", "echo in-$GREETING; exit 4"],
    );
    assert_eq!(exec.status.code(), Some(4), "{exec:?}");
    assert_eq!(text(&exec.stdout), "in-hello\n");
    // stdin through the hijacked connection; its end reaches `cat` as end-of-file.
    let mut cat = Command::new(SKIFF);
    cat.args(["-H", host, "exec", "-i", &name, "cat"]);
    let cat = within_input(cat, b"through stdin\n", Duration::from_secs(30));
    assert_eq!(text(&cat.stdout), "through stdin\n", "{cat:?}");
    // exec -it: the exec's own terminal, sized as ours, its exit code ours.
    let session = in_terminal(host, &["exec", "-it", &name, "sh"], b"stty size; exit 3\r");
    assert_eq!(session.0, Some(3), "{}", session.1);
    assert!(
        session.1.contains("40 100"),
        "the exec's terminal size: {}",
        session.1
    );
    let inspected = ok(&remote(
        host,
        &["inspect", "-f", "{{.Name}} {{.Config.Tty}}", &name],
    ));
    assert_eq!(inspected, format!("/{name} false\n"));
    assert_eq!(ok(&remote(host, &["pause", &name])), format!("{name}\n"));
    let state = ok(&remote(
        host,
        &[
            "ps",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.State}}",
        ],
    ));
    assert_eq!(state, "paused\n");
    assert_eq!(ok(&remote(host, &["unpause", &name])), format!("{name}\n"));
    let renamed = format!("{name}2");
    ok(&remote(host, &["rename", &name, &renamed]));
    ok(&remote(host, &["rename", &renamed, &name]));
    let restarted = remote(host, &["restart", "-t", "1", &name]);
    assert_eq!(ok(&restarted), format!("{name}\n"));
    // create, start, kill, wait: the exit code of a process killed by SIGKILL.
    let once = format!("skiff-{TAG}-once");
    let created = ok(&remote(
        host,
        &[
            "create",
            "--name",
            &once,
            "--network",
            "none",
            "skiff-lab",
            "sleep",
            "60",
        ],
    ));
    assert_eq!(
        created.trim().len(),
        64,
        "create prints the id: {created:?}"
    );
    assert_eq!(ok(&remote(host, &["start", &once])), format!("{once}\n"));
    assert_eq!(ok(&remote(host, &["kill", &once])), format!("{once}\n"));
    assert_eq!(ok(&remote(host, &["wait", &once])), "137\n");
    ok(&remote(host, &["rm", &once]));
    assert_eq!(
        ok(&remote(host, &["stop", "-t", "1", &name])),
        format!("{name}\n")
    );
    let state = ok(&remote(
        host,
        &[
            "ps",
            "-a",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.State}}",
        ],
    ));
    assert_eq!(state, "exited\n");
    assert_eq!(ok(&remote(host, &["rm", &name])), format!("{name}\n"));
    // attach: the output from now on, and the container's exit code as ours.
    let late = format!("skiff-{TAG}-late");
    ok(&remote(
        host,
        &[
            "run",
            "-d",
            "--name",
            &late,
            "--network",
            "none",
            "skiff-lab",
            "sh",
            "-c",
            "sleep 2; echo bye; exit 5",
        ],
    ));
    // Meanwhile `logs -f` follows the same output, a chunked answer that ends with the
    // container.
    let following = Command::new(SKIFF)
        .args(["-H", host, "logs", "-f", &late])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start logs -f");
    let attached = remote(host, &["attach", &late]);
    assert_eq!(attached.status.code(), Some(5), "{attached:?}");
    assert_eq!(text(&attached.stdout), "bye\n");
    let followed = within_child(following, Duration::from_secs(20));
    assert_eq!(text(&followed.stdout), "bye\n", "{followed:?}");
    ok(&remote(host, &["rm", &late]));
    // --sig-proxy: a SIGTERM to the client reaches the container, whose exit code is ours.
    let mut command = Command::new(SKIFF);
    command.args([
        "-H",
        host,
        "run",
        "--rm",
        "--network",
        "none",
        "skiff-lab",
        "sh",
        "-c",
        "trap 'echo got-term; exit 9' TERM; echo ready; while true; do sleep 1; done",
    ]);
    let proxied = signalled_when_ready(command);
    assert_eq!(proxied.status.code(), Some(9), "{proxied:?}");
    assert_eq!(text(&proxied.stdout), "ready\ngot-term\n");
    // events: the past, up to now, streamed and ended by --until.
    let events = ok(&remote(host, &["events", "--since", "5m", "--until", "0s"]));
    assert!(
        events
            .lines()
            .any(|l| l.contains(" container start ") && l.contains(&format!("name={late}"))),
        "{events}"
    );
    // -it: a terminal both ways, in raw mode, with this terminal's size.
    let run_it = ["run", "-it", "--rm", "--network", "none", "skiff-lab", "sh"];
    let session = in_terminal(host, &run_it, b"stty size; exit 7\r");
    assert_eq!(session.0, Some(7), "{}", session.1);
    assert!(
        session.1.contains("40 100"),
        "the container's terminal size: {}",
        session.1
    );
    // An error in Docker's words, and its exit code.
    let missing = remote(host, &["rm", &name]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert_eq!(
        text(&missing.stderr),
        format!("Error response from daemon: No such container: {name}\n")
    );
    // images.
    let images = ok(&remote(
        host,
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    ));
    assert!(images.lines().any(|l| l == "skiff-lab:latest"), "{images}");
    let tag = format!("skiff-{TAG}-tag:v1");
    ok(&remote(host, &["tag", "skiff-lab", &tag]));
    let images = ok(&remote(
        host,
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    ));
    assert!(images.lines().any(|l| l == tag), "{images}");
    assert_eq!(
        ok(&remote(host, &["rmi", &tag])),
        format!("Untagged: {tag}\n")
    );
    // Volumes and networks: create, list, remove.
    let volume = format!("skiff-{TAG}-vol");
    assert_eq!(
        ok(&remote(host, &["volume", "create", &volume])),
        format!("{volume}\n")
    );
    let volumes = ok(&remote(host, &["volume", "ls", "-q"]));
    assert!(volumes.lines().any(|l| l == volume), "{volumes}");
    // issue 10: Docker's row, its keys and their values (Links is N/A in a list, not 0).
    let filter = format!("name={volume}");
    let row = ok(&remote(
        host,
        &["volume", "ls", "-f", &filter, "--format", "{{json .}}"],
    ));
    let row: serde_json::Value = serde_json::from_str(&row).expect("volume ls's JSON");
    let mountpoint = row["Mountpoint"].as_str().unwrap_or_default();
    assert!(mountpoint.ends_with("/_data"), "{row}");
    let docker = format!(
        r#"{{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"","Links":"N/A","Mountpoint":"{mountpoint}","Name":"{volume}","Scope":"local","Size":"N/A","Status":"N/A"}}"#
    );
    assert_eq!(row.to_string(), docker);
    assert_eq!(
        ok(&remote(host, &["volume", "rm", &volume])),
        format!("{volume}\n")
    );
    let volumes = ok(&remote(host, &["volume", "ls", "-q"]));
    assert!(!volumes.lines().any(|l| l == volume), "{volumes}");
    // prune: never more than asked for; with -a, every unused volume, reported.
    ok(&remote(host, &["volume", "create", &volume]));
    let refused = remote(host, &["volume", "prune"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(text(&refused.stderr).contains("give -a"), "{refused:?}");
    let pruned = ok(&remote(host, &["volume", "prune", "-a"]));
    assert!(
        pruned.starts_with("Deleted Volumes:\n") && pruned.lines().any(|l| l == volume),
        "{pruned}"
    );
    let network = format!("sk-{TAG}");
    let mut create = vec!["network", "create"];
    create.extend_from_slice(network_options);
    create.push(&network);
    let network_id = ok(&remote(host, &create));
    let networks = ok(&remote(host, &["network", "ls"]));
    let line = networks
        .lines()
        .find(|l| l.contains(&network))
        .unwrap_or_else(|| panic!("{network} not listed: {networks}"));
    assert!(
        line.starts_with(&network_id[..12]) && line.contains("bridge"),
        "{line}"
    );
    // issue 10: `CreatedAt` is Go's time string of the RFC 3339 `Created` inspect gives.
    let filter = format!("name={network}");
    let created_at = ok(&remote(
        host,
        &["network", "ls", "-f", &filter, "--format", "{{.CreatedAt}}"],
    ));
    let inspected = ok(&remote(host, &["network", "inspect", &network]));
    let inspected: serde_json::Value = serde_json::from_str(&inspected).expect("inspect's JSON");
    let created = inspected[0]["Created"].as_str().unwrap_or_default();
    assert!(created.contains('T'), "{created}");
    let go = images::human::go_time_string(created).expect("an RFC 3339 time");
    assert_eq!(created_at, format!("{go}\n"));
    assert_eq!(
        ok(&remote(host, &["network", "rm", &network])),
        format!("{network}\n")
    );
    // A command that has no request yet says so, by name, and runs nothing locally.
    let login = remote(host, &["login", "localhost:5000"]);
    assert_eq!(login.status.code(), Some(1), "{login:?}");
    assert!(
        text(&login.stderr).contains("`skiff login` works on the local store only"),
        "{login:?}"
    );
}
// ANCHOR_END: drive

#[test]
fn skiff_h_drives_skiffs_own_service_as_its_local_commands() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    let dir = temp_dir("service");
    let root = dir.path().join("store");
    ok(&local(
        &root,
        &["load", "-q", "-i", &lab_image().to_string_lossy()],
    ));
    let socket = dir.path().join("api.sock");
    let child = Command::new(SKIFF)
        .args(["system", "service", "--time", "120", "--root"])
        .arg(&root)
        .arg(format!("unix://{}", socket.display()))
        // A shell set up for clients of this very service: the service, and the skiff
        // processes it starts (exec's helpers), must still work on its store.
        .env("SKIFF_HOST", format!("unix://{}", socket.display()))
        .stdin(Stdio::null())
        .spawn()
        .expect("start skiff system service");
    let name = format!("skiff-{TAG}-web");
    let mut service = Daemon {
        child,
        socket,
        cleanup: vec![
            vec!["network".into(), "rm".into(), format!("sk-{TAG}")],
            vec!["volume".into(), "rm".into(), format!("skiff-{TAG}-vol")],
            vec!["rmi".into(), format!("skiff-{TAG}-tag:v1")],
        ],
    };
    assert!(
        service.ready(Duration::from_secs(10)),
        "the service never answered"
    );
    let host = service.host();
    let subnet = format!("10.219.{}.0/24", std::process::id() % 120 * 2 + 1);
    drive(&host, &["--subnet", &subnet]);
    // The same store seen both ways prints the same: remote rows go through local printers.
    ok(&remote(
        &host,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "-l",
            "a=b",
            "skiff-lab",
            "sleep",
            "60",
        ],
    ));
    // A volume with labels, for volume ls's rows.
    let volume = format!("skiff-{TAG}-vol");
    ok(&local(
        &root,
        &[
            "volume", "create", "--label", "a=b", "--label", "c=d", &volume,
        ],
    ));
    for args in [
        &["images"][..],
        &["images", "--format", "{{json .}}"],
        &["volume", "ls", "--format", "{{json .}}"],
        &[
            "volume",
            "ls",
            "--format",
            "table {{.Name}}\t{{.Labels}}\t{{.Links}}\t{{.Status}}",
        ],
        // Not CREATED (`RunningFor`): the API gives whole seconds, so a container 0.6 s old
        // that started at x.9 s is "1 second ago" to any client of the API, docker's too.
        &[
            "ps",
            "-a",
            "--no-trunc",
            "--format",
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedAt}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
        ],
        &[
            "ps",
            "--format",
            "table {{.ID}}\t{{.Names}}\t{{.Labels}}\t{{.State}}",
        ],
        &["ps", "-q"],
        &["network", "ls"],
    ] {
        // "Up Less than a second" turns "Up 1 second" between two looks: look again then.
        let mut tries = 0;
        loop {
            let (there, here) = (remote(&host, args), local(&root, args));
            assert!(there.status.success() && here.status.success(), "{args:?}");
            tries += 1;
            if there.stdout == here.stdout || tries == 3 {
                assert_eq!(text(&there.stdout), text(&here.stdout), "skiff -H {args:?}");
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    // Not `-H`, the environment: SKIFF_HOST first, DOCKER_HOST when it is the only one.
    let by_env = |var: &str| {
        let mut command = Command::new(SKIFF);
        command
            .args(["ps", "--format", "{{.Names}}"])
            .env_remove("SKIFF_HOST")
            .env_remove("DOCKER_HOST")
            // A local store with nothing in it: an answer naming the container came remotely.
            .env("SKIFF_ROOT", dir.path().join("empty"))
            .env(var, &host);
        text(&within(command, Duration::from_secs(30)).stdout)
    };
    assert_eq!(by_env("SKIFF_HOST"), format!("{name}\n"));
    assert_eq!(by_env("DOCKER_HOST"), format!("{name}\n"));
    ok(&remote(&host, &["rm", "-f", &name]));
    drop(service);
}

/// A dockerd of the test's own, or why there cannot be one here.
fn start_dockerd(dir: &Path) -> Result<Daemon, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("dockerd needs root".into());
    }
    let Some(dockerd) = on_path("dockerd") else {
        return Err("no dockerd (Debian's docker.io provides it)".into());
    };
    let socket = dir.join("d.sock");
    let log = std::fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
    let child = Command::new(dockerd)
        .arg("--host")
        .arg(format!("unix://{}", socket.display()))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("x"))
        .arg("--pidfile")
        .arg(dir.join("d.pid"))
        // Nothing host-wide: no docker0, no firewall rules, no change to ip_forward.
        .args([
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
        ])
        // Should it share a containerd already running (another dockerd's), its containers
        // live in namespaces of their own.
        .arg(format!("--containerd-namespace=skiff-{TAG}"))
        .arg(format!(
            "--containerd-plugins-namespace=skiff-{TAG}-plugins"
        ))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("dockerd did not start: {e}"))?;
    let mut daemon = Daemon {
        child,
        socket,
        cleanup: vec![
            vec!["network".into(), "rm".into(), format!("sk-{TAG}")],
            vec!["volume".into(), "rm".into(), format!("skiff-{TAG}-vol")],
            vec!["rmi".into(), format!("skiff-{TAG}-tag:v1")],
        ],
    };
    if !daemon.ready(Duration::from_secs(20)) {
        let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
        let last: Vec<&str> = log.lines().rev().take(3).collect();
        return Err(format!("dockerd did not answer on its socket: {last:?}"));
    }
    Ok(daemon)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.exists())
}

#[test]
fn skiff_h_drives_a_real_dockerd() {
    let dir = temp_dir("dockerd");
    let daemon = match start_dockerd(dir.path()) {
        Ok(daemon) => daemon,
        Err(reason) => {
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let host = daemon.host();
    // The lab image, saved by skiff from its store and loaded into dockerd through the API.
    let store = dir.path().join("store");
    ok(&local(
        &store,
        &["load", "-q", "-i", &lab_image().to_string_lossy()],
    ));
    let tar = dir.path().join("lab.tar");
    ok(&local(
        &store,
        &["save", "-o", &tar.to_string_lossy(), "skiff-lab"],
    ));
    let loaded = ok(&remote(&host, &["load", "-i", &tar.to_string_lossy()]));
    assert_eq!(loaded, "Loaded image: skiff-lab:latest\n");
    // issue 10: the image's CreatedAt, from dockerd's whole seconds and from the store's
    // RFC 3339, is the same Go time string (`2024-05-01 10:11:12 +0000 UTC`).
    let args = [
        "images",
        "-f",
        "reference=skiff-lab",
        "--format",
        "{{.CreatedAt}}",
    ];
    let (there, here) = (ok(&remote(&host, &args)), ok(&local(&store, &args)));
    assert_eq!(there, here);
    assert!(
        here.ends_with(" +0000 UTC\n") && here.as_bytes().get(10) == Some(&b' '),
        "{here}"
    );
    // The same image's history, from dockerd and from the store, printed alike.
    for args in [
        &["history", "skiff-lab"][..],
        &["history", "--no-trunc", "skiff-lab"],
    ] {
        let (there, here) = (ok(&remote(&host, args)), ok(&local(&store, args)));
        assert_eq!(there, here, "{args:?}");
    }
    // And back: dockerd's archive of it loads into a new store of skiff's.
    let back = dir.path().join("back.tar");
    ok(&remote(
        &host,
        &["save", "-o", &back.to_string_lossy(), "skiff-lab"],
    ));
    let reloaded = ok(&local(
        &dir.path().join("store2"),
        &["load", "-i", &back.to_string_lossy()],
    ));
    assert_eq!(reloaded, "Loaded image: skiff-lab:latest\n");
    // dockerd names a bridge after its network unless told: this one carries the test's tag.
    let bridge = format!("com.docker.network.bridge.name=sk-{TAG}");
    // And a subnet of the test's own, not one from dockerd's pools another dockerd may take.
    let subnet = format!("10.219.{}.0/24", std::process::id() % 120 * 2 + 2);
    drive(&host, &["-o", &bridge, "--subnet", &subnet]);
    // network prune (skiff's service has no prune yet): the unused network goes, named as the
    // local prune names it.
    let network = format!("sk-{TAG}");
    ok(&remote(
        &host,
        &[
            "network", "create", "-o", &bridge, "--subnet", &subnet, &network,
        ],
    ));
    let pruned = ok(&remote(&host, &["network", "prune", "-f"]));
    assert!(
        pruned.starts_with("Deleted Networks:\n") && pruned.lines().any(|l| l == network),
        "{pruned}"
    );
    // build: the context sent as a tar stream, the daemon's steps printed as they come.
    let context = dir.path().join("context");
    std::fs::create_dir(&context).expect("a context");
    std::fs::write(context.join("hello.txt"), "hello from the context\n").expect("a file");
    std::fs::write(
        context.join("Dockerfile"),
        "FROM skiff-lab\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n",
    )
    .expect("a Dockerfile");
    let built = format!("skiff-{TAG}-built:v1");
    let output = ok(&remote(
        &host,
        &["build", "-t", &built, &context.to_string_lossy()],
    ));
    assert!(
        output.contains(&format!("Successfully tagged {built}")),
        "{output}"
    );
    let ran = ok(&remote(
        &host,
        &["run", "--rm", "--network", "none", &built],
    ));
    assert_eq!(ran, "hello from the context\n");
    ok(&remote(&host, &["rmi", &built]));
    std::fs::write(
        context.join("Dockerfile"),
        "FROM skiff-lab\nCOPY missing.txt /\n",
    )
    .expect("a Dockerfile");
    let failed = remote(&host, &["build", &context.to_string_lossy()]);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    assert!(text(&failed.stderr).contains("missing.txt"), "{failed:?}");
    // system df: the daemon's usage in the local summary's table.
    let df = ok(&remote(&host, &["system", "df"]));
    let kinds: Vec<&str> = df
        .lines()
        .map(|l| l.split("  ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "TYPE",
            "Images",
            "Containers",
            "Local Volumes",
            "Build Cache"
        ],
        "{df}"
    );
    assert!(
        df.lines()
            .nth(1)
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("1")),
        "{df}"
    );
    // container prune: the stopped container goes, reported as the local prune reports.
    let stopped = ok(&remote(
        &host,
        &["create", "--network", "none", "skiff-lab", "true"],
    ));
    let pruned = ok(&remote(&host, &["container", "prune", "-f"]));
    assert!(
        pruned.starts_with(&format!(
            "Deleted Containers:\n{}\n\nTotal reclaimed space: ",
            stopped.trim()
        )),
        "{pruned}"
    );
    // Limits: run's flags reach HostConfig, and update changes them on a running container.
    let limited = format!("skiff-{TAG}-limited");
    ok(&remote(
        &host,
        &[
            "run",
            "-d",
            "--name",
            &limited,
            "--network",
            "none",
            "--memory",
            "64m",
            "--pids-limit",
            "20",
            "skiff-lab",
            "sleep",
            "60",
        ],
    ));
    let limits =
        "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}";
    let shown = ok(&remote(&host, &["inspect", "-f", limits, &limited]));
    assert_eq!(shown, "67108864 20 no\n");
    let stats = ok(&remote(
        &host,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}} {{.MemUsage}}",
            &limited,
        ],
    ));
    assert!(
        stats.starts_with(&format!("{limited} 1 ")) && stats.ends_with(" / 64MiB\n"),
        "{stats}"
    );
    let updated = ok(&remote(
        &host,
        &[
            "update",
            "--memory",
            "32m",
            "--restart",
            "on-failure:2",
            &limited,
        ],
    ));
    assert_eq!(updated, format!("{limited}\n"));
    let shown = ok(&remote(&host, &["inspect", "-f", limits, &limited]));
    assert_eq!(shown, "33554432 20 on-failure\n");
    ok(&remote(&host, &["rm", "-f", &limited]));
    // cp, both ways, by Docker's rules of where a copy lands.
    let files = format!("skiff-{TAG}-files");
    ok(&remote(
        &host,
        &[
            "run",
            "-d",
            "--name",
            &files,
            "--network",
            "none",
            "skiff-lab",
            "sh",
            "-c",
            "mkdir -p /d/sub; echo f1 > /d/f; echo s > /d/sub/s; touch /ready; exec sleep 60",
        ],
    ));
    let until = Instant::now() + Duration::from_secs(10);
    while !remote(&host, &["exec", &files, "test", "-e", "/ready"])
        .status
        .success()
    {
        assert!(Instant::now() < until, "the container never made its files");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("a directory");
    let out_text = out.to_string_lossy().into_owned();
    ok(&remote(&host, &["cp", &format!("{files}:/d"), &out_text]));
    assert_eq!(
        std::fs::read_to_string(out.join("d/sub/s")).ok().as_deref(),
        Some("s\n")
    );
    ok(&remote(
        &host,
        &[
            "cp",
            &format!("{files}:/d/f"),
            &format!("{out_text}/renamed"),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(out.join("renamed")).ok().as_deref(),
        Some("f1\n")
    );
    std::fs::write(out.join("host.txt"), "from the host\n").expect("a file");
    ok(&remote(
        &host,
        &[
            "cp",
            &format!("{out_text}/host.txt"),
            &format!("{files}:/d/"),
        ],
    ));
    ok(&remote(
        &host,
        &["cp", &format!("{out_text}/d"), &format!("{files}:/copied")],
    ));
    let inside = ok(&remote(
        &host,
        &["exec", &files, "cat", "/d/host.txt", "/copied/sub/s"],
    ));
    assert_eq!(inside, "from the host\ns\n");
    let missing = remote(&host, &["cp", &format!("{files}:/nope"), &out_text]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert_eq!(
        text(&missing.stderr),
        format!("Error response from daemon: Could not find the file /nope in container {files}\n")
    );
    ok(&remote(&host, &["rm", "-f", &files]));
    // A container's files: diff, export, commit.
    let changed = format!("skiff-{TAG}-changed");
    ok(&remote(
        &host,
        &[
            "run",
            "--name",
            &changed,
            "--network",
            "none",
            "skiff-lab",
            "sh",
            "-c",
            "echo data > /new",
        ],
    ));
    let diff = ok(&remote(&host, &["diff", &changed]));
    assert!(diff.lines().any(|l| l == "A /new"), "{diff}");
    let exported = dir.path().join("export.tar");
    ok(&remote(
        &host,
        &["export", "-o", &exported.to_string_lossy(), &changed],
    ));
    // The export imported again is an image of its own that runs.
    let imported = format!("skiff-{TAG}-imported:v1");
    let id = ok(&remote(
        &host,
        &["import", &exported.to_string_lossy(), &imported],
    ));
    assert!(id.starts_with("sha256:") && id.len() == 72, "{id:?}");
    let from_import = remote(
        &host,
        &["run", "--rm", "--network", "none", &imported, "cat", "/new"],
    );
    assert_eq!(text(&from_import.stdout), "data\n", "{from_import:?}");
    ok(&remote(&host, &["rmi", &imported]));
    let file = std::fs::File::open(&exported).expect("the exported tarball");
    let names: Vec<String> = tar::Archive::new(file)
        .entries()
        .expect("a tarball")
        .filter_map(|e| Some(e.ok()?.path().ok()?.to_string_lossy().into_owned()))
        .collect();
    assert!(
        names.iter().any(|n| n.trim_start_matches("./") == "new"),
        "{names:?}"
    );
    let image = format!("skiff-{TAG}-commit:v1");
    let id = ok(&remote(&host, &["commit", &changed, &image]));
    assert!(id.starts_with("sha256:"), "{id}");
    let from_commit = ok(&remote(
        &host,
        &["run", "--rm", "--network", "none", &image, "cat", "/new"],
    ));
    assert_eq!(from_commit, "data\n");
    ok(&remote(&host, &["rm", &changed]));
    ok(&remote(&host, &["rmi", &image]));
    // system prune: containers, then networks, then images, reported in that order.
    let stopped = ok(&remote(
        &host,
        &["create", "--network", "none", "skiff-lab", "true"],
    ));
    ok(&remote(
        &host,
        &[
            "network", "create", "-o", &bridge, "--subnet", &subnet, &network,
        ],
    ));
    let pruned = ok(&remote(&host, &["system", "prune", "-f"]));
    let expected = format!(
        "Deleted Containers:\n{}\n\nDeleted Networks:\n{network}\n\n",
        stopped.trim()
    );
    assert!(pruned.starts_with(&expected), "{pruned}");
    assert!(pruned.contains("Total reclaimed space: "), "{pruned}");
    let version = ok(&remote(&host, &["version"]));
    assert!(version.contains("Server: Docker Engine"), "{version}");
    drop(daemon);
    // Nothing of dockerd's is left mounted under the directory about to be removed.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&*dir.path().to_string_lossy()))
        .collect();
    assert!(left.is_empty(), "dockerd left mounts: {left:?}");
}
