//! The OCI runtime command line, black-box: every test runs against `skiff-runtime` and, as the
//! control that proves the test itself, against runc when it is installed. A bundle is the lab
//! fixture's busybox rootfs and a config.json that `skiff-runtime spec` wrote, adjusted here.
//! Root only: each test says why it skipped otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Runtime;
use serde_json::Value;

/// A bundle and a state root of one test, removed with everything the test made — also when
/// it fails: the container is deleted by force, the cgroup parent removed, the dirs deleted.
struct Bundle {
    runtime: Runtime,
    dir: PathBuf,
    root: PathBuf,
    id: String,
    cgroup_parent: String,
}

impl Bundle {
    fn new(runtime: Runtime, test: &str) -> Bundle {
        let unique = format!("i15-{}-{test}-{}", runtime.name(), std::process::id());
        let dir = std::env::temp_dir().join(format!("{unique}-bundle"));
        let root = std::env::temp_dir().join(format!("{unique}-state"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make the bundle dir");
        let bundle = Bundle {
            runtime,
            dir,
            root,
            id: format!("{test}-{}", std::process::id()),
            cgroup_parent: unique,
        };
        // The config: skiff-runtime's `spec`, for both runtimes.
        let out = Command::new(Runtime::Skiff.binary())
            .arg("spec")
            .current_dir(&bundle.dir)
            .output()
            .expect("run skiff-runtime spec");
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rootfs = labs::fixtures().expect("the lab fixtures").rootfs.clone();
        bundle.edit(|c| {
            c["root"]["path"] = Value::from(rootfs.display().to_string());
            c["linux"]["cgroupsPath"] =
                Value::from(format!("/{}/{}", bundle.cgroup_parent, bundle.id));
        });
        bundle
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn edit(&self, change: impl FnOnce(&mut Value)) {
        let text = std::fs::read_to_string(self.config_path()).expect("read config.json");
        let mut config: Value = serde_json::from_str(&text).expect("parse config.json");
        change(&mut config);
        std::fs::write(self.config_path(), config.to_string()).expect("write config.json");
    }

    fn args(&self, args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    /// `runtime --root ROOT ARGS...`, waited for, output captured.
    fn call(&self, args: &[&str]) -> Output {
        Command::new(self.runtime.binary())
            .arg("--root")
            .arg(&self.root)
            .args(self.args(args))
            .current_dir(&self.dir)
            .output()
            .expect("run the runtime")
    }

    /// `create`: its stdio goes to files, since the container keeps them open after it returns.
    fn create(&self) -> (bool, String) {
        self.create_with(&[])
    }

    /// `create`, which must fail and leave no state behind: what it said.
    fn create_refused(&self) -> String {
        let (ok, message) = self.create();
        assert!(!ok, "create succeeded");
        assert!(!self.root.join(&self.id).exists(), "state left behind");
        message
    }

    /// `create` with more flags.
    fn create_with(&self, flags: &[&str]) -> (bool, String) {
        let err_path = self.dir.join("create.err");
        let err = std::fs::File::create(&err_path).expect("create.err");
        let status = Command::new(self.runtime.binary())
            .arg("--root")
            .arg(&self.root)
            .args(["create", "--bundle"])
            .arg(&self.dir)
            .args(flags)
            .arg("--pid-file")
            .arg(self.dir.join("pid"))
            .arg(&self.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .expect("run create");
        let message = std::fs::read_to_string(&err_path).unwrap_or_default();
        (status.success(), message)
    }

    /// `run --bundle DIR ID`, in the foreground.
    fn run(&self) -> Output {
        let dir = self.dir.display().to_string();
        self.call(&["run", "--bundle", &dir, &self.id])
    }

    fn state(&self) -> Value {
        let out = self.call(&["state", &self.id]);
        assert!(
            out.status.success(),
            "state: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("state is JSON")
    }

    fn wait_for_status(&self, status: &str) -> Value {
        let began = Instant::now();
        loop {
            let state = self.state();
            if state["status"] == status {
                return state;
            }
            assert!(
                began.elapsed() < Duration::from_secs(10),
                "still {state} after 10s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the container's cgroup is still there, in the memory or pids hierarchy (v1) or
    /// the v2 tree.
    fn cgroup_left(&self) -> bool {
        ["memory", "pids", "unified"].iter().any(|c| {
            Path::new("/sys/fs/cgroup")
                .join(c)
                .join(&self.cgroup_parent)
                .join(&self.id)
                .exists()
        })
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.call(&["delete", "--force", &self.id]);
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let parent = hierarchy.path().join(&self.cgroup_parent);
            let _ = std::fs::remove_dir(parent.join(&self.id));
            let _ = std::fs::remove_dir(parent);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn set_args(bundle: &Bundle, args: &[&str]) {
    bundle.edit(|c| c["process"]["args"] = Value::from(args.to_vec()));
}

/// `run` prints what the program prints and passes its exit code back.
fn run_passes_output_and_exit_codes(runtime: Runtime) {
    let bundle = Bundle::new(runtime, "run");
    set_args(&bundle, &["/bin/echo", "hello from the bundle"]);
    let out = bundle.run();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the bundle\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    set_args(&bundle, &["/bin/sh", "-c", "exit 3"]);
    let out = bundle.run();
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing of the container is left once `run` returned.
    assert!(!bundle.cgroup_left(), "the cgroup is left");

    // `run --detach`: started, not waited for.
    set_args(&bundle, &["/bin/sleep", "1000"]);
    let dir = bundle.dir.display().to_string();
    let out = Command::new(bundle.runtime.binary())
        .arg("--root")
        .arg(&bundle.root)
        .args(["run", "--detach", "--bundle", &dir, &bundle.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run --detach");
    assert!(out.success(), "run --detach failed");
    bundle.wait_for_status("running");
}

/// Hooks run at their points of the lifecycle, each reading the state JSON on stdin.
fn hooks_get_the_state(runtime: Runtime) {
    let bundle = Bundle::new(runtime, "hooks");
    // Long enough for runc, which reads the state anew for poststart, to find it running.
    set_args(&bundle, &["/bin/sleep", "0.3"]);
    let hook = |name: &str| {
        let file = bundle.dir.join(format!("{name}.json"));
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}", file.display())],
        })
    };
    bundle.edit(|c| {
        c["hooks"] = serde_json::json!({
            "prestart": [hook("prestart")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    let out = bundle.run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["prestart", "poststart", "poststop"] {
        let text = std::fs::read_to_string(bundle.dir.join(format!("{name}.json")))
            .unwrap_or_else(|e| panic!("the {name} hook did not run: {e}"));
        let state: Value = serde_json::from_str(&text).expect("the state JSON");
        assert_eq!(state["id"], bundle.id.as_str(), "{name}: {state}");
        // The spec requires a pid while the process exists; after it, runc leaves it out.
        if name != "poststop" {
            assert!(
                state["pid"].as_i64().is_some_and(|p| p > 0),
                "{name}: {state}"
            );
        }
    }
}

/// `create` leaves the process waiting before the program; `start` runs it; `kill` and
/// `delete` leave no process, cgroup or state behind.
fn create_start_kill_delete(runtime: Runtime) {
    let bundle = Bundle::new(runtime, "life");
    set_args(&bundle, &["/bin/sleep", "1000"]);
    bundle.edit(|c| {
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 64 * 1024 * 1024});
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 32});
        c["linux"]["resources"]["cpu"] = serde_json::json!({"quota": 50000, "period": 100000});
    });
    let (ok, message) = bundle.create();
    assert!(ok, "create failed: {message}");

    let state = bundle.state();
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["id"], bundle.id.as_str());
    assert!(state["ociVersion"].is_string(), "{state}");
    let pid = state["pid"].as_i64().expect("a pid");
    let pid_file = std::fs::read_to_string(bundle.dir.join("pid")).expect("the pid file");
    assert_eq!(pid_file.trim(), pid.to_string());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(
        !cmdline.starts_with(b"/bin/sleep"),
        "the program runs before start: {}",
        String::from_utf8_lossy(&cmdline)
    );
    // The limits are on the cgroup already.
    let memory = Path::new("/sys/fs/cgroup/memory")
        .join(&bundle.cgroup_parent)
        .join(&bundle.id)
        .join("memory.limit_in_bytes");
    if let Ok(limit) = std::fs::read_to_string(&memory) {
        assert_eq!(limit.trim(), (64 * 1024 * 1024).to_string());
    }
    // Half a CPU: a quota of 50 ms in every 100 ms (`docker run --cpus 0.5`).
    let quota = ["cpu,cpuacct", "cpu"]
        .iter()
        .map(|h| {
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join(&bundle.cgroup_parent)
                .join(&bundle.id)
                .join("cpu.cfs_quota_us")
        })
        .find(|p| p.exists());
    assert!(
        quota.is_some() || !Path::new("/sys/fs/cgroup/cpu").exists(),
        "no cpu.cfs_quota_us for the container on this cgroup v1 host"
    );
    if let Some(quota) = quota {
        let value = std::fs::read_to_string(&quota).expect("cpu.cfs_quota_us");
        assert_eq!(value.trim(), "50000", "{}", quota.display());
    }

    let out = bundle.call(&["start", &bundle.id]);
    assert!(
        out.status.success(),
        "start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bundle.wait_for_status("running");
    let began = Instant::now();
    while !std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .starts_with(b"/bin/sleep\x001000")
    {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "the program never ran"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // exec: a second process in the container, its output and exit code passed back.
    let out = bundle.call(&[
        "exec",
        &bundle.id,
        "/bin/sh",
        "-c",
        "echo $$; cat /proc/1/cmdline; exit 4",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "exec: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.starts_with("1\n") && text.contains("/bin/sleep"),
        "{text}"
    );
    // ps: ps(1)'s table, the header and the container's processes only.
    let out = bundle.call(&["ps", &bundle.id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.contains("PID") && header.contains("CMD"),
        "ps: {text}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(
        rows.len(),
        1,
        "ps lists more than the container's one process:\n{text}"
    );
    assert!(
        rows[0].contains("sleep 1000") && rows[0].contains(&pid.to_string()),
        "ps: {text}"
    );
    let out = bundle.call(&["ps", &bundle.id, "-o", "pid,comm"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines()
            .nth(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec![pid.to_string().as_str(), "sleep"]),
        "ps -o: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bundle.call(&["ps", "--format", "json", &bundle.id]);
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).expect("ps --format json");
    assert_eq!(pids, vec![pid]);
    // update: a new memory limit, live.
    let resources = bundle.dir.join("resources.json");
    std::fs::write(&resources, r#"{"memory": {"limit": 100663296}}"#).expect("resources.json");
    let out = bundle.call(&[
        "update",
        "--resources",
        &resources.display().to_string(),
        &bundle.id,
    ]);
    assert!(
        out.status.success(),
        "update: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Ok(limit) = std::fs::read_to_string(&memory) {
        assert_eq!(limit.trim(), "100663296");
    }
    // events --stats: the usage, runc's way.
    let out = bundle.call(&["events", "--stats", &bundle.id]);
    assert!(
        out.status.success(),
        "events: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let event: Value = serde_json::from_slice(&out.stdout).expect("an event");
    assert_eq!(event["type"], "stats", "{event}");
    assert!(
        event["data"]["memory"]["usage"]["usage"]
            .as_u64()
            .is_some_and(|u| u > 0),
        "{event}"
    );
    // pause and resume.
    let out = bundle.call(&["pause", &bundle.id]);
    assert!(
        out.status.success(),
        "pause: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(bundle.state()["status"], "paused");
    let out = bundle.call(&["resume", &bundle.id]);
    assert!(
        out.status.success(),
        "resume: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(bundle.state()["status"], "running");

    // A running container is not deleted without --force.
    let out = bundle.call(&["delete", &bundle.id]);
    assert!(
        !out.status.success(),
        "delete of a running container succeeded"
    );

    let out = bundle.call(&["kill", &bundle.id, "KILL"]);
    assert!(
        out.status.success(),
        "kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = bundle.wait_for_status("stopped");
    assert_eq!(state["id"], bundle.id.as_str());
    let out = bundle.call(&["delete", &bundle.id]);
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = bundle.call(&["state", &bundle.id]);
    assert!(!out.status.success(), "state after delete succeeded");
    assert!(!bundle.cgroup_left(), "the cgroup is left");
    let alive =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(!alive, "process {pid} is left");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&bundle.id), "a mount is left:\n{mounts}");
}

/// `process.terminal`: the program's stdio is a terminal of the container's own, whose master
/// the runtime sends over `--console-socket` (as containerd's shim receives it for `-t`).
fn terminal_goes_to_the_console_socket(runtime: Runtime) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::net::UnixListener;

    let bundle = Bundle::new(runtime, "tty");
    set_args(
        &bundle,
        &[
            "/bin/sh",
            "-c",
            "tty; stty size; test -t 0 && echo stdin-is-a-tty",
        ],
    );
    bundle.edit(|c| {
        c["process"]["terminal"] = Value::from(true);
        c["process"]["consoleSize"] = serde_json::json!({"height": 33, "width": 101});
    });
    let socket_path = bundle.dir.join("console.sock");
    let listener = UnixListener::bind(&socket_path).expect("bind the console socket");
    let socket = socket_path.display().to_string();
    let (ok, message) = bundle.create_with(&["--console-socket", &socket]);
    assert!(ok, "create failed: {message}");

    // The master, as SCM_RIGHTS.
    let (stream, _) = listener.accept().expect("the runtime connects");
    let mut name = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::empty(),
    )
    .expect("recvmsg");
    let master = msg
        .cmsgs()
        .expect("control messages")
        .find_map(|c| match c {
            nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("a descriptor in SCM_RIGHTS");
    // SAFETY: the kernel just installed this descriptor in this process for us alone.
    let master = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(master) });

    let out = bundle.call(&["start", &bundle.id]);
    assert!(
        out.status.success(),
        "start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Read until the last slave closes (EIO) or end of file.
    let mut text = Vec::new();
    let mut buf = [0u8; 512];
    let mut master = master;
    loop {
        use std::io::Read;
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("33 101"), "{text}");
    assert!(text.contains("stdin-is-a-tty"), "{text}");
    bundle.wait_for_status("stopped");
}

/// `create` of a bundle with a field no feature maps (an NIS domain name) fails,
/// names the field, and leaves no state behind: it is refused, not ignored.
#[test]
fn skiff_refuses_what_it_does_not_map() {
    if let Some(reason) = common::skip_reason(Runtime::Skiff, &[]) {
        eprintln!("skipped: {reason}");
        return;
    }
    let bundle = Bundle::new(Runtime::Skiff, "refuse");
    bundle.edit(|c| {
        c["domainname"] = Value::from("example.org");
    });
    let message = bundle.create_refused();
    assert!(message.contains("domainname"), "{message}");
}

/// A user namespace: root inside is an unprivileged range of host ids.
fn a_user_namespace_maps_root_to_a_host_range(runtime: Runtime) {
    let bundle = Bundle::new(runtime, "userns");
    set_args(
        &bundle,
        &[
            "/bin/sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u",
        ],
    );
    bundle.edit(|c| {
        let range = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = range.clone();
        c["linux"]["gidMappings"] = range;
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(serde_json::json!({"type": "user"}));
    });
    let out = bundle.run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "100000", "65536", "0", "100000", "65536", "0"],
        "{text}"
    );
}

/// A program that is not there fails `create`, with its name, and leaves nothing behind.
fn a_missing_program_fails_create(runtime: Runtime) {
    let bundle = Bundle::new(runtime, "missing");
    set_args(&bundle, &["/bin/no-such-program"]);
    let (ok, message) = bundle.create();
    assert!(!ok, "create succeeded");
    assert!(message.contains("no-such-program"), "{message}");
    assert!(!bundle.cgroup_left(), "the cgroup is left");
    let out = bundle.call(&["state", &bundle.id]);
    assert!(!out.status.success(), "a container is left");
}

#[test]
fn skiff_systemd_cgroup_is_refused_clearly() {
    if let Some(reason) = common::skip_reason(Runtime::Skiff, &[]) {
        eprintln!("skipped: {reason}");
        return;
    }
    let out = Command::new(Runtime::Skiff.binary())
        .args(["--systemd-cgroup", "list"])
        .output()
        .expect("run skiff-runtime");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--systemd-cgroup is not supported"));
}

/// `linux.resources.devices` is in effect: a device the rules do not allow (fuse, 10:229) cannot
/// be made or opened (EPERM, with CAP_MKNOD held); once a rule in config.json allows it, it
/// opens; a later deny of it takes that back.
fn device_rules_from_the_config_are_in_effect(runtime: Runtime) {
    let bundle = Bundle::new(runtime, "dev");
    set_args(
        &bundle,
        &[
            "/bin/sh",
            "-c",
            "mknod /dev/skf c 10 229 2>&1; (exec 3</dev/skf) 2>&1; echo rc=$?",
        ],
    );
    // CAP_MKNOD, so that an EPERM can only be the device cgroup's.
    bundle.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .expect("a capability set")
                .push(Value::from("CAP_MKNOD"));
        }
    });
    let open = |rules: Value| {
        bundle.edit(|c| c["linux"]["resources"]["devices"] = rules);
        let out = bundle.run();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains("rc="),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let deny_all = serde_json::json!({"allow": false, "access": "rwm"});
    let fuse = |allow: bool| serde_json::json!({"allow": allow, "type": "c", "major": 10, "minor": 229, "access": "rwm"});
    let text = open(serde_json::json!([deny_all]));
    assert!(
        text.contains("rc=1") && text.contains("Operation not permitted"),
        "not denied: {text}"
    );
    let text = open(serde_json::json!([deny_all, fuse(true)]));
    assert!(text.contains("rc=0"), "not allowed: {text}");
    let text = open(serde_json::json!([deny_all, fuse(true), fuse(false)]));
    assert!(
        text.contains("Operation not permitted"),
        "the deny is ignored: {text}"
    );
}

/// `events` reports an OOM kill as runc does, `{"type":"oom","id":ID}`: a program that reads past
/// the container's memory limit is killed by the kernel, and the event comes while `events` runs.
fn events_report_oom_kills(runtime: Runtime) {
    use std::io::BufRead;
    let bundle = Bundle::new(runtime, "oom");
    set_args(
        &bundle,
        &[
            "/bin/sh",
            "-c",
            "sleep 1; head -c 200m /dev/zero | tail; sleep 30",
        ],
    );
    bundle.edit(|c| {
        c["linux"]["resources"]["memory"] =
            serde_json::json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
    });
    let dir = bundle.dir.display().to_string();
    let out = Command::new(bundle.runtime.binary())
        .arg("--root")
        .arg(&bundle.root)
        .args(["run", "--detach", "--bundle", &dir, &bundle.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run --detach");
    assert!(out.success(), "run --detach failed");
    let mut events = Command::new(bundle.runtime.binary())
        .arg("--root")
        .arg(&bundle.root)
        .args(["events", "--interval", "1s", &bundle.id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run events");
    let stdout = events.stdout.take().expect("events' stdout");
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let began = Instant::now();
    let mut seen = Vec::new();
    let oom = loop {
        match receive.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                let event: Value = serde_json::from_str(&line).expect("an event");
                if event["type"] == "oom" {
                    break Some(event);
                }
                seen.push(event["type"].to_string());
            }
            Err(_) if began.elapsed() > Duration::from_secs(15) => break None,
            Err(_) => {}
        }
    };
    let _ = events.kill();
    let _ = events.wait();
    let _ = bundle.call(&["kill", &bundle.id, "KILL"]);
    let oom = oom.unwrap_or_else(|| panic!("no oom event in 15 s; saw {seen:?}"));
    assert_eq!(oom["id"], bundle.id.as_str(), "{oom}");
}

/// checkpoint and restore need CRIU, which skiff-runtime does not drive: both are refused with
/// a message that says so, and a non-zero exit, before anything is touched.
#[test]
fn skiff_checkpoint_and_restore_are_refused_clearly() {
    if let Some(reason) = common::skip_reason(Runtime::Skiff, &[]) {
        eprintln!("skipped: {reason}");
        return;
    }
    for command in ["checkpoint", "restore"] {
        let out = Command::new(Runtime::Skiff.binary())
            .args([command, "--image-path", "/nonexistent", "some-id"])
            .output()
            .expect("run skiff-runtime");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("{command} is not supported")) && stderr.contains("CRIU"),
            "{command}: {stderr}"
        );
    }
}

/// CVE-2019-5736: the runtime process waiting inside a created container runs from a read-only
/// mount of skiff-runtime, so its `/proc/PID/exe` (the door a container used to overwrite the
/// host's runc) cannot be opened for writing, while the binary on the host is on a writable
/// mount (without the defence, the exe would be that binary).
#[test]
fn skiff_runs_from_a_read_only_mount_of_its_binary_inside_the_container() {
    use nix::sys::statvfs::{FsFlags, statvfs};
    if let Some(reason) = common::skip_reason(Runtime::Skiff, &[]) {
        eprintln!("skipped: {reason}");
        return;
    }
    let host = statvfs(Path::new(&Runtime::Skiff.binary())).expect("statvfs of the binary");
    assert!(
        !host.flags().contains(FsFlags::ST_RDONLY),
        "the binary under test is on a read-only filesystem: this test proves nothing here"
    );
    let bundle = Bundle::new(Runtime::Skiff, "sealed");
    set_args(&bundle, &["/bin/sleep", "1000"]);
    let (ok, message) = bundle.create();
    assert!(ok, "create failed: {message}");
    let pid = bundle.state()["pid"].as_i64().expect("a pid");
    let exe = format!("/proc/{pid}/exe");
    let target = std::fs::read_link(&exe).expect("readlink of the waiting runtime's exe");
    // A file that is a detached mount's root reads as "/": not the host's path of the binary.
    let binary = std::fs::canonicalize(Runtime::Skiff.binary()).expect("the binary's path");
    assert_ne!(target, binary, "{exe} is the host's binary itself");
    let inside = statvfs(Path::new(&exe)).expect("statvfs of the exe");
    assert!(
        inside.flags().contains(FsFlags::ST_RDONLY),
        "{exe} is on a writable mount: a container could overwrite skiff-runtime through it"
    );
    let out = bundle.call(&["delete", "--force", &bundle.id]);
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A pid namespace joined by path (a pod that shares its processes): the second container is
/// born in the first one's pid namespace, so it sees the first one's program as PID 1 and is
/// not PID 1 itself.
fn a_pid_namespace_is_joined_by_path(runtime: Runtime) {
    let first = Bundle::new(runtime, "pidA");
    set_args(&first, &["/bin/sleep", "1000"]);
    let (ok, message) = first.create();
    assert!(ok, "create failed: {message}");
    let pid = first.state()["pid"].as_i64().expect("a pid");
    let out = first.call(&["start", &first.id]);
    assert!(out.status.success(), "start: {}", common::explain(&out));
    first.wait_for_status("running");

    let second = Bundle::new(runtime, "pidB");
    set_args(
        &second,
        &[
            "/bin/sh",
            "-c",
            "echo pid=$$; tr '\\0' ' ' < /proc/1/cmdline; echo",
        ],
    );
    second.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().expect("namespaces") {
            if ns["type"] == "pid" {
                ns["path"] = Value::from(format!("/proc/{pid}/ns/pid"));
            }
        }
    });
    let out = second.run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        common::explain(&out)
    );
    assert!(
        text.contains("/bin/sleep 1000"),
        "PID 1 is not the first container's: {text}"
    );
    assert!(
        !text.contains("pid=1\n"),
        "born in a pid namespace of its own: {text}"
    );
    let _ = first.call(&["kill", &first.id, "KILL"]);
}

/// `--preserve-fds 1`: the caller's descriptor 3 reaches the program, open; one that is not open
/// is refused by name before anything is made.
fn preserved_descriptors_reach_the_program(runtime: Runtime) {
    use std::os::unix::process::CommandExt;
    let bundle = Bundle::new(runtime, "fds");
    set_args(
        &bundle,
        &["/bin/sh", "-c", "echo through-fd-3 >&3; ls /proc/self/fd"],
    );
    let file = bundle.dir.join("fd3.out");
    let out_file = std::fs::File::create(&file).expect("fd3.out");
    let run = |count: &str| {
        let dir = bundle.dir.display().to_string();
        let mut command = Command::new(bundle.runtime.binary());
        command.arg("--root").arg(&bundle.root).args([
            "run",
            "--preserve-fds",
            count,
            "--bundle",
            &dir,
            &bundle.id,
        ]);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&out_file);
        // SAFETY: dup2 between fork and exec, on descriptors this process owns.
        unsafe {
            command.pre_exec(move || {
                // dup2 onto itself would keep close-on-exec: clear it instead.
                let rc = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.output().expect("run the runtime")
    };
    let out = run("1");
    assert_eq!(out.status.code(), Some(0), "{}", common::explain(&out));
    let written = std::fs::read_to_string(&file).expect("fd3.out");
    assert_eq!(written, "through-fd-3\n");
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    // 0, 1, 2, 3 and the one ls opens to read the directory: nothing of the runtime's.
    assert!(
        listed.len() <= 5 && listed.contains(&"3".to_string()),
        "{listed:?}"
    );

    if runtime == Runtime::Skiff {
        let out = run("3");
        assert_ne!(out.status.code(), Some(0), "a closed descriptor was passed");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("descriptor 4 is not open"), "{stderr}");
        assert!(!bundle.root.join(&bundle.id).exists(), "state left behind");
    }
}

/// `createContainer` and `startContainer` hooks run inside the container, before its program:
/// their path is found in the container's root, what they write to its /dev/shm (a tmpfs of
/// the container's) is there for the program, and each read the state on stdin. A failing
/// startContainer hook stops the container before its program (and fails skiff's `start`).
fn hooks_inside_the_container(runtime: Runtime) {
    let bundle = Bundle::new(runtime, "inhooks");
    let program = if runtime == Runtime::Skiff {
        "cat /dev/shm/start.json; echo; cat /dev/shm/create.json"
    } else {
        "cat /dev/shm/start.json"
    };
    set_args(&bundle, &["/bin/sh", "-c", program]);
    // runc runs createContainer before the root changes, where /dev/shm is the host's: that
    // hook is skiff's only.
    let hook = |name: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > /dev/shm/{name}.json")],
        })
    };
    bundle.edit(|c| {
        c["hooks"] = if runtime == Runtime::Skiff {
            serde_json::json!({"createContainer": [hook("create")], "startContainer": [hook("start")]})
        } else {
            serde_json::json!({"startContainer": [hook("start")]})
        };
    });
    let out = bundle.run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        common::explain(&out)
    );
    let mut states = text.lines().filter(|l| !l.trim().is_empty());
    let start: Value = serde_json::from_str(states.next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("startContainer wrote no state ({e}): {text}"));
    assert_eq!(start["id"], bundle.id.as_str(), "{start}");
    if runtime == Runtime::Skiff {
        let create: Value = serde_json::from_str(states.next().unwrap_or_default())
            .unwrap_or_else(|e| panic!("createContainer wrote no state ({e}): {text}"));
        assert_eq!(create["id"], bundle.id.as_str(), "{create}");
    }

    // A startContainer hook that fails: `start` fails, the program never runs.
    set_args(&bundle, &["/bin/sleep", "1000"]);
    bundle.edit(|c| {
        c["hooks"] = serde_json::json!({"startContainer": [{"path": "/bin/false"}]});
    });
    let (ok, message) = bundle.create();
    assert!(ok, "create failed: {message}");
    let out = bundle.call(&["start", &bundle.id]);
    // runc's init runs the hook after `start` returned, so only skiff's `start` can say so.
    if runtime == Runtime::Skiff {
        assert!(!out.status.success(), "start succeeded with a failing hook");
    }
    let state = bundle.wait_for_status("stopped");
    assert_eq!(state["id"], bundle.id.as_str());

    // One that outlives its timeout is killed, and `start` says so.
    if runtime == Runtime::Skiff {
        let _ = bundle.call(&["delete", "--force", &bundle.id]);
        bundle.edit(|c| {
            c["hooks"] = serde_json::json!({"startContainer": [
                {"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}
            ]});
        });
        let (ok, message) = bundle.create();
        assert!(ok, "create failed: {message}");
        let began = Instant::now();
        let out = bundle.call(&["start", &bundle.id]);
        assert!(
            !out.status.success(),
            "start succeeded past the hook's timeout"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("timed out"),
            "{}",
            common::explain(&out)
        );
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the hook was not killed"
        );
    }
}

/// A mount namespace to join by path is refused by name, with what to do instead: the root is
/// built in a new one.
#[test]
fn skiff_refuses_to_join_a_mount_namespace() {
    if let Some(reason) = common::skip_reason(Runtime::Skiff, &[]) {
        eprintln!("skipped: {reason}");
        return;
    }
    let bundle = Bundle::new(Runtime::Skiff, "joinmnt");
    bundle.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().expect("namespaces") {
            if ns["type"] == "mount" {
                ns["path"] = Value::from("/proc/1/ns/mnt");
            }
        }
    });
    // Joining a mount namespace is refused.
    let message = bundle.create_refused();
    assert!(message.contains("remove the \"path\""), "{message}");
}

/// A user namespace joined by path (a Kubernetes pod with `hostUsers: false`: each container
/// joins the pod's): the second container is in the first one's user namespace, root there is
/// host id 100000, and the namespaces it gets are that user namespace's, so it is PID 1 of a
/// pid namespace of its own with its own /proc mounted.
fn a_user_namespace_is_joined_by_path(runtime: Runtime) {
    let first = Bundle::new(runtime, "userA");
    set_args(&first, &["/bin/sleep", "1000"]);
    first.edit(|c| {
        let range = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = range.clone();
        c["linux"]["gidMappings"] = range;
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(serde_json::json!({"type": "user"}));
    });
    let (ok, message) = first.create();
    assert!(ok, "create failed: {message}");
    let pid = first.state()["pid"].as_i64().expect("a pid");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user")).expect("their user ns");

    let second = Bundle::new(runtime, "userB");
    set_args(
        &second,
        &[
            "/bin/sh",
            "-c",
            "readlink /proc/self/ns/user; cat /proc/self/uid_map; id -u; echo pid=$$",
        ],
    );
    second.edit(|c| {
        // The joined namespace's maps, as containerd passes them (runc requires them).
        let range = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = range.clone();
        c["linux"]["gidMappings"] = range;
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(serde_json::json!({"type": "user", "path": format!("/proc/{pid}/ns/user")}));
    });
    let out = second.run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        common::explain(&out)
    );
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words,
        [
            theirs.display().to_string().as_str(),
            "0",
            "100000",
            "65536",
            "0",
            "pid=1"
        ],
        "{text}"
    );
    let _ = first.call(&["delete", "--force", &first.id]);
}

/// `linux.devices` (what `docker run --device /dev/fuse` passes): the node is in the container's
/// `/dev` with the numbers, type, mode and owner asked for, and opens once the device rules
/// allow it.
fn linux_devices_are_made(runtime: Runtime) {
    let bundle = Bundle::new(runtime, "nodes");
    set_args(
        &bundle,
        &[
            "/bin/sh",
            "-c",
            "stat -c '%F %a %t %T %u %g' /dev/fuse /dev/sub/fifo0; (exec 3</dev/fuse) && echo opened",
        ],
    );
    bundle.edit(|c| {
        c["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 0, "gid": 5},
            {"path": "/dev/sub/fifo0", "type": "p", "fileMode": 0o600}
        ]);
        c["linux"]["resources"]["devices"] = serde_json::json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
        ]);
    });
    let out = bundle.run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        common::explain(&out)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "character special file 640 a e5 0 5",
            "fifo 600 0 0 0 0",
            "opened"
        ],
        "{text}"
    );
}

both!(&[]; linux_devices_are_made, a_user_namespace_is_joined_by_path, a_pid_namespace_is_joined_by_path, preserved_descriptors_reach_the_program, hooks_inside_the_container, run_passes_output_and_exit_codes, events_report_oom_kills, device_rules_from_the_config_are_in_effect, create_start_kill_delete, terminal_goes_to_the_console_socket, hooks_get_the_state, a_missing_program_fails_create, a_user_namespace_maps_root_to_a_host_range);
