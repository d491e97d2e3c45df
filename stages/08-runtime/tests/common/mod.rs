//! What the black-box tests share: the runtime under test (skiff-runtime, or runc as the
//! control), why a test cannot run here, the lab image as `skiff save` writes it, and the macro
//! that runs each test against both runtimes. Each test file uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The runtime under test.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// This crate's binary.
    Skiff,
    /// The reference implementation: a check it fails is a wrong check.
    Runc,
}

impl Runtime {
    /// A short name, for ids and paths.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Skiff => "skiff",
            Runtime::Runc => "runc",
        }
    }

    /// The binary.
    pub fn binary(self) -> &'static str {
        match self {
            Runtime::Skiff => env!("CARGO_BIN_EXE_skiff-runtime"),
            Runtime::Runc => "/usr/sbin/runc",
        }
    }
}

/// Why a test of `runtime` that also needs the programs `tools` cannot run here, if it cannot.
pub fn skip_reason(runtime: Runtime, tools: &[&str]) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("containers need root".into());
    }
    if !Path::new(runtime.binary()).exists() {
        return Some(format!("{} is not installed", runtime.binary()));
    }
    tools
        .iter()
        .find(|tool| find_tool(tool).is_none())
        .map(|tool| format!("{tool} is not installed"))
}

/// Where the program `name` is: in `PATH`, or in `/usr/sbin` and `/sbin` (dockerd's place).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs each named test function (taking a [`Runtime`]) as `skiff::NAME` and `runc::NAME`,
/// skipping with a printed reason where root or a tool of the slice `$tools` is missing.
#[macro_export]
macro_rules! both {
    ($tools:expr; $($test:ident),*) => {
        mod skiff {
            $(
                #[test]
                fn $test() {
                    use super::common::{Runtime, skip_reason};
                    match skip_reason(Runtime::Skiff, $tools) {
                        Some(reason) => eprintln!("skipped: {reason}"),
                        None => super::$test(Runtime::Skiff),
                    }
                }
            )*
        }
        /// The same tests against runc: they pass there, so they test the runtime.
        mod runc {
            $(
                #[test]
                fn $test() {
                    use super::common::{Runtime, skip_reason};
                    match skip_reason(Runtime::Runc, $tools) {
                        Some(reason) => eprintln!("skipped: {reason}"),
                        None => super::$test(Runtime::Runc),
                    }
                }
            )*
        }
    };
}

/// The lab image (`skiff-lab:latest`), loaded into a skiff store under `dir` and written out
/// by stage 04's `save` as a docker-archive: what `skiff save` makes.
pub fn saved_lab_image(dir: &Path) -> PathBuf {
    let fixtures = labs::fixtures().expect("the lab fixtures");
    let tar = Path::new(&fixtures.extra["image_tar"]);
    let store = images::store::Store::open(dir.join("skiff-store")).expect("a skiff store");
    images::archive::load(&store, tar).expect("load the lab image");
    let saved = dir.join("saved.tar");
    images::archive::save(
        &store,
        &["skiff-lab:latest"],
        images::archive::SaveFormat::DockerArchive,
        &saved,
    )
    .expect("skiff save");
    saved
}

/// Unmounts whatever is mounted below `dir` (a daemon's leftovers), deepest first.
pub fn unmount_below(dir: &Path) {
    let prefix = dir.display().to_string();
    let mut mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for mount in mounts {
        let _ = nix::mount::umount2(mount.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// containerd's shims keep their sockets (and the runc shim its runtime roots) under
/// `/run/containerd` whatever containerd's own state dir is: the empty dirs a test's daemon
/// made there go; anything of another's stays.
pub fn remove_empty_run_containerd() {
    for dir in ["runc/default", "runc/moby", "runc", "s", "fifo", ""] {
        let _ = std::fs::remove_dir(Path::new("/run/containerd").join(dir));
    }
}

/// Stops a daemon the test started: SIGTERM, up to `grace` to exit, then SIGKILL; reaped.
pub fn stop_daemon(daemon: &mut std::process::Child, grace: std::time::Duration) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(daemon.id()).unwrap_or(0));
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let began = std::time::Instant::now();
    while daemon.try_wait().ok().flatten().is_none() && began.elapsed() < grace {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// A command's stdout, as text.
pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command's status, stdout and stderr, for an assertion's message.
pub fn explain(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    )
}
