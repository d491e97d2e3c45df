//! The other real caller: dockerd, which hands its containers to containerd's runc shim with the
//! runtime named by `--runtime`. The test starts a dockerd of its own (a private socket, its own
//! data root, exec root and cgroup parent, no bridge, no iptables), loads the lab image as
//! `skiff save` writes it, and runs containers with `--add-runtime test=RUNTIME`. The same
//! checks run with runc as that runtime, which proves them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Runtime, explain, stdout};

/// A dockerd of this test's own, stopped and removed with all it made when dropped.
struct Dockerd {
    dir: PathBuf,
    daemon: Child,
    cgroup_parent: String,
}

impl Dockerd {
    fn start(runtime: Runtime) -> Dockerd {
        let unique = format!("i15-dockerd-{}-{}", runtime.name(), std::process::id());
        let dir = std::env::temp_dir().join(&unique);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("make the dockerd dir");
        std::fs::write(dir.join("daemon.json"), "{}").expect("daemon.json");
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("dockerd.log");
        let at = |name: &str| dir.join(name).display().to_string();
        let daemon = Command::new(common::find_tool("dockerd").expect("dockerd"))
            .args(["--config-file", &at("daemon.json")])
            .args(["-H", &format!("unix://{}", at("docker.sock"))])
            .args(["--data-root", &at("data"), "--exec-root", &at("exec")])
            .args(["--pidfile", &at("docker.pid")])
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .args(["--ip-masq=false", "--userland-proxy=false"])
            // Absolute: a relative parent is relative to the runtime's own cgroup for runc.
            .args(["--cgroup-parent", &format!("/{unique}")])
            .args(["--add-runtime", &format!("test={}", runtime.binary())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let dockerd = Dockerd {
            dir,
            daemon,
            cgroup_parent: unique,
        };
        let began = Instant::now();
        while !dockerd.docker(&["version"]).status.success() {
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "dockerd did not come up: {}",
                std::fs::read_to_string(dockerd.dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        dockerd
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(common::find_tool("docker").expect("docker"))
            .arg("-H")
            .arg(format!("unix://{}", self.dir.join("docker.sock").display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let all = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&all.stdout).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        common::stop_daemon(&mut self.daemon, Duration::from_secs(20));
        // The containerd dockerd started, should it have outlived it.
        let containerd_pid = self.dir.join("exec/containerd/containerd.pid");
        if let Some(pid) = std::fs::read_to_string(containerd_pid)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        common::unmount_below(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        common::remove_empty_run_containerd();
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(hierarchy.path().join(&self.cgroup_parent));
        }
    }
}

fn docker_runs_containers(runtime: Runtime) {
    let dockerd = Dockerd::start(runtime);
    let saved = common::saved_lab_image(&dockerd.dir);
    let out = dockerd.docker(&["load", "-i", &saved.display().to_string()]);
    assert!(out.status.success(), "{}", explain(&out));
    let run = ["run", "--runtime", "test", "--network", "none"];

    // echo, the exit code, PID 1, Docker's default capabilities.
    let out = dockerd.docker(&[&run[..], &["--rm", "skiff-lab", "/bin/echo", "hi"]].concat());
    assert_eq!(stdout(&out), "hi\n", "{}", explain(&out));
    let script = "echo $$; grep CapBnd /proc/self/status; exit 3";
    let out = dockerd.docker(&[&run[..], &["--rm", "skiff-lab", "/bin/sh", "-c", script]].concat());
    assert_eq!(out.status.code(), Some(3), "{}", explain(&out));
    let text = stdout(&out);
    assert!(text.starts_with("1\n"), "{}", explain(&out));
    assert!(text.contains("00000000a80425fb"), "{}", explain(&out));

    // --device: dockerd passes linux.devices and a device rule; the node is there and opens.
    let script = "stat -c '%t %T' /dev/fuse; (exec 3</dev/fuse) && echo opened";
    let out = dockerd.docker(
        &[
            &run[..],
            &[
                "--rm",
                "--device",
                "/dev/fuse",
                "skiff-lab",
                "/bin/sh",
                "-c",
                script,
            ],
        ]
        .concat(),
    );
    assert_eq!(stdout(&out), "a e5\nopened\n", "{}", explain(&out));

    // -d with a memory limit on the container's cgroup; exec; rm -f leaves no cgroup.
    let out = dockerd.docker(
        &[
            &run[..],
            &["-d", "-m", "64m", "skiff-lab", "/bin/sleep", "1000"],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", explain(&out));
    let id = stdout(&out).trim().to_string();
    // Where the container's process is counted: its memory cgroup, from /proc/PID/cgroup.
    let out = dockerd.docker(&["inspect", "-f", "{{.State.Pid}}", &id]);
    let pid = stdout(&out).trim().to_string();
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let memory = cgroups
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, path)| path.to_string()));
    let cgroup =
        memory.map(|path| Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')));
    if let Some(cgroup) = &cgroup {
        assert!(
            cgroup.starts_with(Path::new("/sys/fs/cgroup/memory").join(&dockerd.cgroup_parent)),
            "{} is not below --cgroup-parent",
            cgroup.display()
        );
        let limit = std::fs::read_to_string(cgroup.join("memory.limit_in_bytes"))
            .expect("the container's memory cgroup");
        assert_eq!(limit.trim(), "67108864");
    }
    let out = dockerd.docker(&["exec", &id, "/bin/sh", "-c", "cat /proc/1/cmdline; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", explain(&out));
    assert!(stdout(&out).contains("/bin/sleep"), "{}", explain(&out));
    // -it on a real terminal (`script` gives docker a pseudo-terminal): run's and exec's shell
    // each see a terminal of their own, and their exit codes come back.
    if let Some(script) = common::find_tool("script") {
        let docker = format!(
            "{} -H unix://{}",
            common::find_tool("docker").expect("docker").display(),
            dockerd.dir.join("docker.sock").display()
        );
        let probe = "/bin/sh -c 'tty; [ -t 0 ] && echo stdin-is-a-terminal; exit 3'";
        for line in [
            format!("{docker} run --rm -it --runtime test --network none skiff-lab {probe}"),
            format!("{docker} exec -it {id} {probe}"),
        ] {
            let out = Command::new(&script)
                .args(["-qfec", &line, "/dev/null"])
                .stdin(Stdio::null())
                .output()
                .expect("run script");
            let text = stdout(&out);
            assert!(text.contains("/dev/pts/"), "{line}: {}", explain(&out));
            assert!(
                text.contains("stdin-is-a-terminal"),
                "{line}: {}",
                explain(&out)
            );
            assert_eq!(out.status.code(), Some(3), "{line}: {}", explain(&out));
        }
    } else {
        eprintln!("skipped the -it part: no script(1) (util-linux provides it)");
    }
    let out = dockerd.docker(&["rm", "-f", &id]);
    assert!(out.status.success(), "{}", explain(&out));
    assert!(!cgroup.is_some_and(|c| c.exists()), "the cgroup is left");
}

both!(
    &["dockerd", "docker", "containerd", "containerd-shim-runc-v2"];
    docker_runs_containers
);
