//! Real cgroups on this host: real limits, real processes (the static probe of the labs), real
//! OOM kills. They need root; without it each test says so and passes without doing anything.
//!
//! Every container gets a unique id (`skiff-test-...`), and every test checks that its cgroup
//! directories are gone afterwards.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use cgroups::{CgroupArgs, CgroupFeature, CgroupPath, Host, Limits, Setup, open};
use chroot::{ChangeRoot, Exit, Feature, FeatureError, Plan, Process, Step, launch};

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: real cgroup tests need root");
    false
}

/// A container id no other test (or test run) uses.
fn unique_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "skiff-test-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

fn host() -> &'static Host {
    Host::detect().expect("detect this host's cgroups")
}

/// The container's cgroup directories, as the library computes them.
fn paths_of(id: &str) -> Vec<PathBuf> {
    open(host(), CgroupPath::skiff(id).expect("a valid id")).paths()
}

fn assert_gone(id: &str) {
    for path in paths_of(id) {
        assert!(!path.exists(), "{} is left behind", path.display());
    }
}

fn limits(flags: &[(&str, &str)]) -> Limits {
    let mut args = CgroupArgs::default();
    for (flag, value) in flags {
        let value = Some(value.to_string());
        match *flag {
            "--memory" => args.memory = value,
            "--memory-swap" => args.memory_swap = value,
            "--cpus" => args.cpus = value,
            "--cpu-shares" => args.cpu_shares = value,
            "--cpuset-cpus" => args.cpuset_cpus = value,
            "--pids-limit" => args.pids_limit = value,
            "--blkio-weight" => args.blkio_weight = value,
            other => panic!("unknown flag {other}"),
        }
    }
    args.limits().expect("valid limits")
}

fn probe() -> String {
    labs::fixtures::probe_path().display().to_string()
}

/// A shell command line run in the container (whose root is the host's `/`), its stdout and
/// stderr going to a file we read afterwards.
fn shell(script: &str, out: &Path) -> Process {
    Process::new(vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("{{ {script}; }} > {} 2>&1", out.display()),
    ])
}

/// Runs `process` in a cgroup `id` with `limits`; the root is the host's `/`.
fn run(id: &str, limits: Limits, stats: bool, process: &Process) -> Exit {
    let mut feature = CgroupFeature::new(id, limits);
    feature.report_usage = stats;
    let mut features: Vec<Box<dyn Feature>> =
        vec![Box::new(ChangeRoot::new("/")), Box::new(feature)];
    let exit = launch::run(process, &mut features).expect("launch");
    assert!(
        exit.warnings.is_empty(),
        "cleanup warnings: {:?}",
        exit.warnings
    );
    exit
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn real_limits_reach_the_kernel_and_the_cgroup_goes_away() {
    if !is_root() {
        return;
    }
    let id = unique_id();
    let limits = limits(&[
        ("--memory", "32m"),
        ("--cpus", "0.5"),
        ("--cpu-shares", "512"),
        ("--cpuset-cpus", "0"),
        ("--pids-limit", "10"),
    ]);
    let mut cgroup = open(host(), CgroupPath::skiff(&id).unwrap());
    cgroup.create(&limits).unwrap();
    let file = |name: &str| -> String {
        let found = cgroup
            .paths()
            .into_iter()
            .map(|d| d.join(name))
            .find(|p| p.exists());
        read(&found.unwrap_or_else(|| panic!("no {name} in {:?}", cgroup.paths())))
            .trim()
            .to_string()
    };
    match host().setup {
        Setup::Legacy | Setup::Hybrid => {
            assert_eq!(file("memory.limit_in_bytes"), "33554432");
            if cgroup
                .paths()
                .iter()
                .any(|d| d.join("memory.memsw.limit_in_bytes").exists())
            {
                assert_eq!(file("memory.memsw.limit_in_bytes"), "33554432");
            }
            assert_eq!(file("cpu.cfs_quota_us"), "50000");
            assert_eq!(file("cpu.cfs_period_us"), "100000");
            assert_eq!(file("cpu.shares"), "512");
            // Filled from the parent, then narrowed to the flag's CPUs.
            assert_eq!(file("cpuset.cpus"), "0");
            assert!(!file("cpuset.mems").is_empty());
        }
        Setup::Unified => {
            assert_eq!(file("memory.max"), "33554432");
            assert_eq!(file("cpu.max"), "50000 100000");
            assert_eq!(file("cpu.weight"), "20");
            assert_eq!(file("cpuset.cpus"), "0");
        }
    }
    assert_eq!(file("pids.max"), "10");
    assert_eq!(cgroup.oom_kills().unwrap(), Some(0));
    cgroup.remove().unwrap();
    assert_gone(&id);
}

#[test]
fn blkio_weight_is_set_where_the_host_has_a_weight_file() {
    if !is_root() {
        return;
    }
    let id = unique_id();
    let mut cgroup = open(host(), CgroupPath::skiff(&id).unwrap());
    let result = cgroup.create(&limits(&[("--blkio-weight", "500")]));
    match result {
        Ok(()) => {
            let weight = [
                "blkio.weight",
                "blkio.bfq.weight",
                "io.bfq.weight",
                "io.weight",
            ]
            .iter()
            .flat_map(|f| cgroup.paths().into_iter().map(move |d| d.join(f)))
            .find(|p| p.exists())
            .expect("a weight file");
            let text = read(&weight);
            assert!(text.contains("500") || text.contains("4950"), "{text}");
        }
        // No scheduler with weights on this host: the error says what to do.
        Err(err) => assert!(err.to_string().contains("drop --blkio-weight"), "{err}"),
    }
    cgroup.remove().unwrap();
    assert_gone(&id);
}

#[test]
fn a_memory_hog_is_oom_killed_and_the_note_says_so() {
    if !is_root() {
        return;
    }
    let id = unique_id();
    let process = Process::new(vec![probe(), "alloc".into(), "64m".into()]);
    let exit = run(&id, limits(&[("--memory", "32m")]), false, &process);
    assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
    assert_eq!(exit.code(), 137);
    assert_eq!(
        exit.notes,
        ["killed by the OOM killer: the container reached its memory limit of 32 MiB (--memory)"]
    );
    assert_gone(&id);
}

#[test]
fn within_the_limit_nothing_is_killed_and_usage_is_noted() {
    if !is_root() {
        return;
    }
    let id = unique_id();
    let out = tempfile::NamedTempFile::new().unwrap();
    let process = shell(&format!("exec {} alloc 16m", probe()), out.path());
    let exit = run(&id, limits(&[("--memory", "32m")]), true, &process);
    assert_eq!(exit.code(), 0, "{exit:?} {}", read(out.path()));
    assert_eq!(read(out.path()), "allocated 16 MiB\n");
    assert_eq!(exit.notes.len(), 1, "{:?}", exit.notes);
    let note = &exit.notes[0];
    assert!(note.starts_with("usage: cpu "), "{note}");
    // 16 MiB were touched: the peak says at least that.
    let peak: f64 = note
        .split("memory peak ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no memory peak in {note}"));
    assert!((16.0..32.0).contains(&peak), "{note}");
    assert_gone(&id);
}

#[test]
fn a_pids_limit_stops_a_fork_bomb() {
    if !is_root() {
        return;
    }
    let id = unique_id();
    let out = tempfile::NamedTempFile::new().unwrap();
    let process = shell(&format!("exec {} fork 50", probe()), out.path());
    let exit = run(&id, limits(&[("--pids-limit", "10")]), false, &process);
    let text = read(out.path());
    assert_eq!(exit.code(), 0, "{text}");
    // The probe itself is one of the ten.
    let forked: u32 = text
        .strip_prefix("forked ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {text:?}"));
    assert!(forked <= 9, "{text}");
    assert!(text.contains("fork failed"), "{text}");
    assert_gone(&id);

    // Without the limit all fifty start.
    let id = unique_id();
    let exit = run(&id, Limits::default(), false, &process);
    assert_eq!(exit.code(), 0);
    assert!(
        read(out.path()).starts_with("forked 50 of 50"),
        "{}",
        read(out.path())
    );
    assert_gone(&id);
}

#[test]
fn a_cpu_quota_throttles() {
    if !is_root() {
        return;
    }
    let id = unique_id();
    let out = tempfile::NamedTempFile::new().unwrap();
    let process = shell(&format!("exec {} burn 1s", probe()), out.path());
    run(&id, limits(&[("--cpus", "0.5")]), false, &process);
    let text = read(out.path());
    let ms: u64 = text
        .trim()
        .strip_prefix("cpu ")
        .and_then(|rest| rest.strip_suffix("ms"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {text:?}"));
    // Half a CPU for one second of wall time: about 500 ms of CPU.
    assert!(ms <= 650, "{text}");
    assert_gone(&id);
}

#[test]
fn a_cpuset_pins_the_container() {
    if !is_root() {
        return;
    }
    let online = cgroups::CpuList::online();
    let cpu = if online.len() > 1 { "1" } else { "0" };
    let id = unique_id();
    let out = tempfile::NamedTempFile::new().unwrap();
    let process = shell(&format!("exec {} cpus", probe()), out.path());
    run(&id, limits(&[("--cpuset-cpus", cpu)]), false, &process);
    assert_eq!(read(out.path()), format!("{cpu}\n"));
    assert_gone(&id);
}

#[test]
fn a_left_behind_process_is_killed_and_the_cgroup_removed() {
    if !is_root() {
        return;
    }
    let id = unique_id();
    let out = tempfile::NamedTempFile::new().unwrap();
    let process = shell("sleep 300 </dev/null >/dev/null 2>&1 & echo $!", out.path());
    let exit = run(&id, limits(&[("--pids-limit", "20")]), false, &process);
    assert_eq!(exit.code(), 0);
    let pid: i32 = read(out.path()).trim().parse().expect("the background pid");
    // Killed: gone, or a zombie waiting for its new parent to reap it.
    let state = read(Path::new(&format!("/proc/{pid}/stat")));
    let alive = state
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|s| s != 'Z' && s != 'X');
    assert!(!alive, "sleep {pid} survived: {state}");
    assert_gone(&id);
}

#[test]
fn a_container_killed_by_a_signal_is_cleaned_up() {
    if !is_root() {
        return;
    }
    let id = unique_id();
    let mut features: Vec<Box<dyn Feature>> = vec![
        Box::new(ChangeRoot::new("/")),
        Box::new(CgroupFeature::new(&id, limits(&[("--memory", "64m")]))),
    ];
    let process = Process::new(vec![probe(), "sleep".into(), "30s".into()]);
    let running = launch::spawn(&process, &mut features).unwrap();
    // While it runs, the cgroup exists in every hierarchy it joins and holds the process.
    let pid = running.pid().as_raw();
    let joined = cgroups::v1::narrow(host(), &limits(&[("--memory", "64m")]));
    for dir in open(&joined, CgroupPath::skiff(&id).expect("a valid id")).paths() {
        let procs = read(&dir.join("cgroup.procs"));
        assert_eq!(procs.trim(), pid.to_string(), "{}", dir.display());
    }
    assert!(cgroups::usage(&id).unwrap().memory_current.is_some());
    nix::sys::signal::kill(running.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    let exit = running.wait().unwrap();
    assert_eq!(exit.code(), 137);
    // Killed, but not by the OOM killer: no note claims so.
    assert!(exit.notes.is_empty(), "{:?}", exit.notes);
    assert_gone(&id);
}

#[test]
fn bad_flags_fail_before_anything_exists() {
    for (flag, value) in [
        ("--memory", "abc"),
        ("--memory", "1k"),
        ("--cpus", "-1"),
        ("--cpuset-cpus", "99"),
    ] {
        let mut args = CgroupArgs::default();
        match flag {
            "--memory" => args.memory = Some(value.into()),
            "--cpus" => args.cpus = Some(value.into()),
            _ => args.cpuset_cpus = Some(value.into()),
        }
        let err = args.feature("never-made").err().expect("an error");
        assert_eq!(err.flag, flag);
        assert!(err.to_string().contains(value), "{err}");
    }
    assert_gone("never-made");
}

#[test]
fn concurrent_containers_share_the_parent() {
    if !is_root() {
        return;
    }
    let ids: Vec<String> = (0..16).map(|_| unique_id()).collect();
    std::thread::scope(|scope| {
        for id in &ids {
            scope.spawn(move || {
                let process = Process::new(vec![probe(), "exit".into(), "3".into()]);
                let exit = run(
                    id,
                    limits(&[("--memory", "32m"), ("--pids-limit", "5")]),
                    false,
                    &process,
                );
                assert_eq!(exit.code(), 3);
            });
        }
    });
    for id in &ids {
        assert_gone(id);
    }
}

/// Stage 02's part, for this test only: a mount namespace whose mounts stay private, a rootfs
/// that is a recursive bind mount of the host's `/` (so the host's own `/sys/fs/cgroup` stays
/// where it is), and a cgroup namespace entered by the child once it is in its cgroup.
struct Namespaces {
    cgroup: bool,
}

impl Feature for Namespaces {
    fn name(&self) -> &'static str {
        "test namespaces"
    }

    // It binds the host's `/` onto the rootfs, so it comes after the change of root that names
    // the rootfs (the same slot, added after it) and before the cgroup, whose view is mounted
    // into it.
    fn slot(&self) -> chroot::Slot {
        chroot::Slot::Root
    }

    fn prepare(&mut self, plan: &mut Plan) -> Result<(), FeatureError> {
        plan.clone_flags |= u64::from(libc::CLONE_NEWNS.unsigned_abs());
        plan.before_root.push(Step::Mount {
            source: None,
            target: c"/".into(),
            fstype: None,
            flags: nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            data: None,
        });
        plan.before_root.push(Step::Mount {
            source: Some(c"/".into()),
            target: chroot::plan::cstr(&plan.rootfs)
                .map_err(|e| FeatureError::msg(e.to_string()))?,
            fstype: None,
            flags: nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_BIND,
            data: None,
        });
        if self.cgroup {
            plan.before_root.push(Step::Unshare(libc::CLONE_NEWCGROUP));
        }
        Ok(())
    }
}

fn run_inside(cgroupns: bool, script: &str) -> String {
    let id = unique_id();
    let out = tempfile::NamedTempFile::new().expect("a temporary file");
    let rootfs = tempfile::tempdir().expect("a temporary directory");
    let mut features: Vec<Box<dyn Feature>> = vec![
        Box::new(ChangeRoot::new(rootfs.path())),
        Box::new(Namespaces { cgroup: cgroupns }),
        Box::new(CgroupFeature::new(
            &id,
            limits(&[("--memory", "32m"), ("--pids-limit", "7")]),
        )),
    ];
    let exit = launch::run(&shell(script, out.path()), &mut features).expect("launch");
    assert!(exit.warnings.is_empty(), "{:?}", exit.warnings);
    assert_gone(&id);
    read(out.path())
}

#[test]
fn the_container_sees_its_own_cgroup_read_only() {
    if !is_root() {
        return;
    }
    let (memory, pids) = match host().setup {
        Setup::Unified => ("memory.max", "pids.max"),
        _ => ("memory/memory.limit_in_bytes", "pids/pids.max"),
    };
    let script = format!(
        "cat /proc/self/cgroup; cat /sys/fs/cgroup/{memory} /sys/fs/cgroup/{pids}; \
         mkdir /sys/fs/cgroup/x || echo refused; echo 1 > /sys/fs/cgroup/{pids} || echo refused"
    );
    for cgroupns in [true, false] {
        let text = run_inside(cgroupns, &script);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"33554432"), "cgroupns {cgroupns}: {text}");
        assert!(lines.contains(&"7"), "cgroupns {cgroupns}: {text}");
        assert_eq!(
            lines.iter().filter(|l| **l == "refused").count(),
            2,
            "cgroupns {cgroupns}: {text}"
        );
        if cgroupns {
            // Inside its cgroup namespace, the container's own cgroup is the root of each tree.
            let cgroup_lines: Vec<&&str> = lines
                .iter()
                .filter(|l| l.split(':').count() == 3)
                .filter(|l| {
                    l.split(':')
                        .next()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .collect();
            assert!(!cgroup_lines.is_empty(), "{text}");
            for line in cgroup_lines {
                assert!(line.ends_with(":/"), "{line} in {text}");
            }
        }
    }
    // The host's own /sys/fs/cgroup was not touched.
    assert_eq!(
        cgroups::detect::FsKind::of(Path::new("/sys/fs/cgroup")).unwrap(),
        match host().setup {
            Setup::Unified => cgroups::detect::FsKind::Cgroup2,
            _ => cgroups::detect::FsKind::Tmpfs,
        }
    );
}
