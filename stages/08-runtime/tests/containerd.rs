//! A real caller: containerd 1.6 and its runc shim (`io.containerd.runc.v2`) drive the runtime
//! through `ctr run --runc-binary`. containerd runs on a private socket with its root and state
//! in a temporary directory and the cri plugin off; the image is the lab fixture, loaded into a
//! skiff store and written out by stage 04's `save` (what `skiff save` does), then imported with
//! `ctr images import`. The same checks run against runc, which proves them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Runtime, explain, stdout};

const IMAGE: &str = "docker.io/library/skiff-lab:latest";

/// A containerd of this test's own. Dropping it removes every task and container it ran, stops
/// it, unmounts what is left under its directory and deletes the directory.
struct Containerd {
    dir: PathBuf,
    daemon: Child,
    runtime: Runtime,
    ids: Vec<String>,
}

impl Containerd {
    fn start(runtime: Runtime) -> Containerd {
        let dir =
            std::env::temp_dir().join(format!("i15-ctd-{}-{}", runtime.name(), std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make the containerd dir");
        let d = dir.display();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n"
        );
        std::fs::write(dir.join("config.toml"), config).expect("write config.toml");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("containerd.log");
        let daemon = Command::new(common::find_tool("containerd").expect("containerd"))
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let containerd = Containerd {
            dir,
            daemon,
            runtime,
            ids: Vec::new(),
        };
        let began = Instant::now();
        while !containerd.ctr(&["version"]).status.success() {
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "containerd did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        containerd
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new(common::find_tool("ctr").expect("ctr"))
            .arg("--address")
            .arg(self.dir.join("containerd.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ctr")
    }

    /// `ctr run --rm --runc-binary RUNTIME [flags] IMAGE ID ARGS...`.
    fn run(&mut self, flags: &[&str], id: &str, args: &[&str]) -> Output {
        self.ids.push(id.to_string());
        let mut all = vec!["run", "--runc-binary", self.runtime.binary()];
        all.extend(flags);
        all.extend([IMAGE, id]);
        all.extend(args);
        self.ctr(&all)
    }

    /// Imports the lab image as `skiff save` writes it.
    fn import_image(&self) {
        let saved = common::saved_lab_image(&self.dir);
        let out = self.ctr(&["images", "import", &saved.display().to_string()]);
        assert!(
            out.status.success(),
            "import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.ids.clone() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
            let _ = self.ctr(&["task", "rm", "-f", &id]);
            let _ = self.ctr(&["container", "rm", &id]);
        }
        common::stop_daemon(&mut self.daemon, Duration::from_secs(5));
        common::unmount_below(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        // containerd's namespace is the cgroup parent `default`: it goes once empty.
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(hierarchy.path().join("default"));
        }
        common::remove_empty_run_containerd();
    }
}

fn ctr_runs_containers(runtime: Runtime) {
    let mut containerd = Containerd::start(runtime);
    containerd.import_image();
    let unique = format!("i15-{}-{}", runtime.name(), std::process::id());

    // echo, and the exit code passed back.
    let out = containerd.run(&["--rm"], &format!("{unique}-echo"), &["/bin/echo", "hi"]);
    assert_eq!(stdout(&out), "hi\n", "{}", explain(&out));
    assert_eq!(out.status.code(), Some(0));
    let out = containerd.run(
        &["--rm"],
        &format!("{unique}-exit"),
        &["/bin/sh", "-c", "exit 7"],
    );
    assert_eq!(out.status.code(), Some(7), "{}", explain(&out));

    // PID 1, and Docker's default capabilities (containerd's default spec asks for them).
    let out = containerd.run(
        &["--rm"],
        &format!("{unique}-pid1"),
        &["/bin/sh", "-c", "echo $$; grep CapBnd /proc/self/status"],
    );
    let text = stdout(&out);
    assert!(text.starts_with("1\n"), "{}", explain(&out));
    assert!(text.contains("00000000a80425fb"), "{}", explain(&out));

    // -d, a memory limit visible in the task's cgroup, task ls, exec, ps, pause, resume, kill,
    // rm.
    let id = format!("{unique}-bg");
    let out = containerd.run(
        &["-d", "--memory-limit", "67108864"],
        &id,
        &["/bin/sleep", "1000"],
    );
    assert!(out.status.success(), "{}", explain(&out));
    let tasks = stdout(&containerd.ctr(&["task", "ls"]));
    assert!(
        tasks
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("RUNNING")),
        "{tasks}"
    );
    let limit = Path::new("/sys/fs/cgroup/memory/default")
        .join(&id)
        .join("memory.limit_in_bytes");
    if Path::new("/sys/fs/cgroup/memory").exists() {
        let value = std::fs::read_to_string(&limit).expect("the task's memory cgroup");
        assert_eq!(value.trim(), "67108864");
    }
    // exec: one more process, in the container's pid namespace (its PID 1 is the sleep; the
    // new one is another), its exit code passed back.
    let out = containerd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "/bin/sh",
        "-c",
        "echo $$; cat /proc/1/cmdline; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", explain(&out));
    let text = stdout(&out);
    assert!(
        !text.starts_with("1\n") && text.contains("/bin/sleep"),
        "{}",
        explain(&out)
    );
    // ps, pause, resume.
    let out = containerd.ctr(&["task", "ps", &id]);
    assert!(out.status.success(), "{}", explain(&out));
    let task_line = |ctr: &Containerd| {
        stdout(&ctr.ctr(&["task", "ls"]))
            .lines()
            .find(|l| l.starts_with(&id))
            .map(str::to_string)
            .unwrap_or_default()
    };
    let out = containerd.ctr(&["task", "pause", &id]);
    assert!(out.status.success(), "{}", explain(&out));
    assert!(
        task_line(&containerd).contains("PAUSED"),
        "{}",
        task_line(&containerd)
    );
    let out = containerd.ctr(&["task", "resume", &id]);
    assert!(out.status.success(), "{}", explain(&out));
    assert!(
        task_line(&containerd).contains("RUNNING"),
        "{}",
        task_line(&containerd)
    );

    let out = containerd.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
    assert!(out.status.success(), "{}", explain(&out));
    let began = Instant::now();
    while !stdout(&containerd.ctr(&["task", "ls"]))
        .lines()
        .any(|l| l.starts_with(&id) && l.contains("STOPPED"))
    {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "the task never stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = containerd.ctr(&["task", "rm", &id]);
    assert!(out.status.success(), "{}", explain(&out));
    let out = containerd.ctr(&["container", "rm", &id]);
    assert!(out.status.success(), "{}", explain(&out));

    // -t on a real terminal: `script` gives ctr a pseudo-terminal, ctr asks the runtime for a
    // console (the console socket), and the container's shell sees a terminal of its own.
    if let Some(script) = common::find_tool("script") {
        let id = format!("{unique}-tty");
        containerd.ids.push(id.clone());
        let line = format!(
            "{} --address {} run --rm -t --runc-binary {} {IMAGE} {id} /bin/sh -c 'tty; [ -t 0 ] && echo stdin-is-a-terminal; exit 3'",
            common::find_tool("ctr").expect("ctr").display(),
            containerd.dir.join("containerd.sock").display(),
            containerd.runtime.binary(),
        );
        let out = Command::new(script)
            .args(["-qfec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("run script");
        let text = stdout(&out);
        assert!(text.contains("/dev/pts/"), "{}", explain(&out));
        assert!(text.contains("stdin-is-a-terminal"), "{}", explain(&out));
        assert!(
            text.contains("\r\n"),
            "no terminal's line endings: {}",
            explain(&out)
        );
        assert_eq!(out.status.code(), Some(3), "{}", explain(&out));
    } else {
        eprintln!("skipped the -t part: no script(1) (util-linux provides it)");
    }

    // Nothing left: no task, no cgroup.
    let tasks = stdout(&containerd.ctr(&["task", "ls"]));
    assert_eq!(tasks.lines().count(), 1, "tasks left: {tasks}");
    assert!(
        !limit.parent().is_some_and(Path::exists),
        "the cgroup is left"
    );
}

both!(&["containerd", "ctr", "containerd-shim-runc-v2"]; ctr_runs_containers);
